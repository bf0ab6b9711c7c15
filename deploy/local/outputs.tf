output "application_url" {
  description = "Where clients reach Terrace (the load balancer, or the demo node)."
  value       = "https://${var.lb_listen}"
  depends_on  = [terraform_data.lb, terraform_data.demo]
}

output "health_check_url" {
  description = "Readiness through the load balancer (plain /_health_check is liveness)."
  value       = "https://${var.lb_listen}/_health_check?ready=1"
}

output "ca_cert_file" {
  description = "The CA that signed every certificate of the deployment (SSL_CERT_FILE for tofu)."
  value       = "${local.dir}/tls/ca.pem"
}

output "admin_token_file" {
  description = "The site admin's API token (user admin), mode 0600."
  value       = "${local.dir}/admin-token"
  depends_on  = [terraform_data.lb, terraform_data.demo]
}

output "tofu_cli_config_file" {
  description = "A CLI configuration with the admin's credentials for the application host (TF_CLI_CONFIG_FILE)."
  value       = "${local.dir}/tofu.tfrc"
  depends_on  = [terraform_data.lb, terraform_data.demo]
}

output "join_url" {
  description = "The URL secondaries join (the load balancer)."
  value       = var.external_services ? "https://${var.lb_listen}" : null
}
