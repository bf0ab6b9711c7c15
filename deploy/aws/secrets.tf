# Join material and every other secret of the nodes, generated here and
# kept in Secrets Manager: the instances read them at boot with their
# instance role, so no secret is in user data.  Secondaries may read
# the join token only; the database, S3 and Vault credentials and the
# key-encryption key are for the primaries.

resource "random_password" "join_token" {
  length  = 48
  special = false
}

resource "random_password" "admin_token" {
  length  = 48
  special = false
}

# the key-encryption key of the primaries: 32 bytes, written as 64 hex
# digits; with Vault too, so data sealed before a rekey stays readable
resource "random_id" "kek" {
  byte_length = 32
}

locals {
  database_url = format("postgresql://%s:%s@%s/%s%s",
    urlencode(var.postgresql_user), urlencode(var.postgresql_password),
    var.postgresql_address, var.postgresql_database,
  var.postgresql_extra_params == "" ? "" : "?${var.postgresql_extra_params}")
  primary_secrets = {
    kek                   = var.external_services ? random_id.kek.hex : ""
    database_url          = var.external_services ? local.database_url : ""
    aws_secret_access_key = var.s3_secret_access_key
    vault_token           = var.vault_token
    vault_secret_id       = var.vault_secret_id
  }
}

resource "aws_secretsmanager_secret" "join" {
  name_prefix             = "${var.name}/join-token-"
  description             = "Terrace cluster join token"
  recovery_window_in_days = 0
  tags                    = var.tags
}

resource "aws_secretsmanager_secret_version" "join" {
  secret_id     = aws_secretsmanager_secret.join.id
  secret_string = random_password.join_token.result
}

resource "aws_secretsmanager_secret" "admin" {
  name_prefix             = "${var.name}/admin-token-"
  description             = "Terrace initial site admin API token"
  recovery_window_in_days = 0
  tags                    = var.tags
}

resource "aws_secretsmanager_secret_version" "admin" {
  secret_id     = aws_secretsmanager_secret.admin.id
  secret_string = random_password.admin_token.result
}

resource "aws_secretsmanager_secret" "primary" {
  name_prefix             = "${var.name}/primary-"
  description             = "Terrace primaries' database, blob and key settings"
  recovery_window_in_days = 0
  tags                    = var.tags
}

resource "aws_secretsmanager_secret_version" "primary" {
  secret_id     = aws_secretsmanager_secret.primary.id
  secret_string = jsonencode(local.primary_secrets)
}
