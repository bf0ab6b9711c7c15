# Join material and every other secret of the nodes, generated here and
# kept in the given Key Vault (the applying identity needs Key Vault
# Secrets Officer on it).  The nodes read them at boot with their
# user-assigned identities, each allowed exactly the secrets it needs
# (Key Vault Secrets User on single secrets): secondaries the join
# token; primaries also the admin token, their settings and the TLS
# certificate; the gateway the certificate.

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
  # /subscriptions/S/resourceGroups/RG/providers/Microsoft.KeyVault/vaults/NAME
  kv_parts = split("/", var.key_vault_id)
  database_url = format("postgresql://%s:%s@%s/%s%s",
    urlencode(var.postgresql_user), urlencode(var.postgresql_password),
    var.postgresql_address, var.postgresql_database,
  var.postgresql_extra_params == "" ? "" : "?${var.postgresql_extra_params}")
  primary_secrets = {
    kek                 = var.external_services ? random_id.kek.hex : ""
    database_url        = var.external_services ? local.database_url : ""
    storage_account_key = var.storage_account_key
    vault_token         = var.vault_token
    vault_secret_id     = var.vault_secret_id
  }
  # secret -> who may read it
  secrets = {
    join-token  = ["primary", "secondary"]
    admin-token = ["primary"]
    primary     = ["primary"]
  }
  secret_values = {
    join-token  = random_password.join_token.result
    admin-token = random_password.admin_token.result
    primary     = jsonencode(local.primary_secrets)
  }
  principals = {
    primary   = azurerm_user_assigned_identity.primary.principal_id
    secondary = azurerm_user_assigned_identity.secondary.principal_id
    gateway   = azurerm_user_assigned_identity.gateway.principal_id
  }
  secret_readers = merge([for s, readers in local.secrets : {
    for r in readers : "${s}/${r}" => { secret = s, reader = r }
  }]...)
  certificate_secret = "${var.key_vault_id}/secrets/${var.certificate_name}"
}

data "azurerm_key_vault" "kv" {
  name                = local.kv_parts[8]
  resource_group_name = local.kv_parts[4]
}

resource "azurerm_user_assigned_identity" "primary" {
  name                = "${var.name}-primary"
  resource_group_name = var.resource_group_name
  location            = var.location
  tags                = var.tags
}

resource "azurerm_user_assigned_identity" "secondary" {
  name                = "${var.name}-secondary"
  resource_group_name = var.resource_group_name
  location            = var.location
  tags                = var.tags
}

resource "azurerm_user_assigned_identity" "gateway" {
  name                = "${var.name}-gateway"
  resource_group_name = var.resource_group_name
  location            = var.location
  tags                = var.tags
}

resource "azurerm_key_vault_secret" "node" {
  for_each     = local.secrets
  name         = "${var.name}-${each.key}"
  value        = local.secret_values[each.key]
  key_vault_id = var.key_vault_id
  content_type = "terrace"
  tags         = var.tags
}

resource "azurerm_role_assignment" "secret_reader" {
  for_each             = local.secret_readers
  scope                = azurerm_key_vault_secret.node[each.value.secret].resource_versionless_id
  role_definition_name = "Key Vault Secrets User"
  principal_id         = local.principals[each.value.reader]
}

# the certificate's secret: the primaries install it, the gateway
# serves it
resource "azurerm_role_assignment" "certificate_reader" {
  for_each             = toset(["primary", "gateway"])
  scope                = local.certificate_secret
  role_definition_name = "Key Vault Secrets User"
  principal_id         = local.principals[each.key]
}

data "azurerm_key_vault_certificate" "tls" {
  name         = var.certificate_name
  key_vault_id = var.key_vault_id
}
