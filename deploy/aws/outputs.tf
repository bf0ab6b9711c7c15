output "application_url" {
  description = "Where clients reach Terrace (point hostname's DNS record at lb_dns_name)."
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

output "lb_dns_name" {
  description = "The load balancer's DNS name: the target of hostname's CNAME (or alias) record."
  value       = aws_lb.app.dns_name
}

output "admin_token_command" {
  description = "Prints the initial site admin's API token (user admin), kept in Secrets Manager."
  value       = "aws secretsmanager get-secret-value --region ${data.aws_region.current.name} --secret-id ${aws_secretsmanager_secret.admin.arn} --query SecretString --output text"
}

output "admin_token" {
  description = "The initial site admin's API token (tofu output -raw admin_token)."
  value       = random_password.admin_token.result
  sensitive   = true
}

output "join_token_secret" {
  description = "ARN of the Secrets Manager secret holding the cluster join token."
  value       = aws_secretsmanager_secret.join.arn
}

output "primary_private_ips" {
  description = "Private addresses of the primaries (or of the demo node)."
  value       = aws_instance.primary[*].private_ip
}
