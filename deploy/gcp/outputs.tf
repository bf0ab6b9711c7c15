output "application_url" {
  description = "Where clients reach Terrace (point hostname's A record at lb_address)."
  value       = local.app_url
}

output "health_check_url" {
  description = "Liveness through the load balancer; add ?ready=1 for readiness."
  value       = "${local.app_url}/_health_check"
}

output "join_url" {
  description = "The URL secondaries join (the load balancer); null for the demo."
  value       = var.external_services ? local.app_url : null
}

output "lb_address" {
  description = "The load balancer's address: the target of hostname's A record."
  value       = google_compute_global_address.app.address
}

output "admin_token_command" {
  description = "Prints the initial site admin's API token (user admin), kept in Secret Manager."
  value       = "gcloud secrets versions access latest --project ${var.project} --secret ${google_secret_manager_secret.node["admin-token"].secret_id}"
}

output "admin_token" {
  description = "The initial site admin's API token (tofu output -raw admin_token)."
  value       = random_password.admin_token.result
  sensitive   = true
}

output "join_token_secret" {
  description = "The Secret Manager secret holding the cluster join token."
  value       = google_secret_manager_secret.node["join-token"].id
}

output "primary_instances" {
  description = "Self links of the primaries (or of the demo node)."
  value       = google_compute_instance.primary[*].self_link
}
