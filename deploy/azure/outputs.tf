output "application_url" {
  description = "Where clients reach Terrace (point hostname's DNS record at lb_address)."
  value       = local.app_url
}

output "health_check_url" {
  description = "Liveness through the gateway; add ?ready=1 for readiness."
  value       = "${local.app_url}/_health_check"
}

output "join_url" {
  description = "The URL secondaries join (the gateway); null for the demo."
  value       = var.external_services ? local.app_url : null
}

output "lb_address" {
  description = "The gateway's public address: the target of hostname's A record."
  value       = azurerm_public_ip.app.ip_address
}

output "admin_token_command" {
  description = "Prints the initial site admin's API token (user admin), kept in Key Vault."
  value       = "az keyvault secret show --vault-name ${data.azurerm_key_vault.kv.name} --name ${azurerm_key_vault_secret.node["admin-token"].name} --query value --output tsv"
}

output "admin_token" {
  description = "The initial site admin's API token (tofu output -raw admin_token)."
  value       = random_password.admin_token.result
  sensitive   = true
}

output "join_token_secret" {
  description = "The Key Vault secret holding the cluster join token."
  value       = azurerm_key_vault_secret.node["join-token"].versionless_id
}

output "primary_private_ips" {
  description = "Private addresses of the primaries (or of the demo node)."
  value       = azurerm_network_interface.primary[*].private_ip_address
}
