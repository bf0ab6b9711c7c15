# Custom data: the node's settings as shell assignments (TB_* for the
# bootstrap, TZ_* for templates/node.sh), then templates/node.sh
# (secrets and the certificate from Key Vault, the drain watcher),
# then the one node bootstrap, ../node/bootstrap.sh, read here as it
# is: every cloud and deploy/local run the same file.  cloud-init runs
# it once, at the first boot.

locals {
  bootstrap = file("${path.module}/../node/bootstrap.sh")
  node_sh   = file("${path.module}/templates/node.sh")
  app_url   = "https://${var.hostname}"

  # settings of every node
  common = {
    TB_LISTEN          = "0.0.0.0:${var.node_port}"
    TB_EXTERNAL_URL    = local.app_url
    TB_INSTALL_FROM    = var.package_url
    TB_SHA256          = var.package_sha256
    TB_READY_TIMEOUT   = "600"
    TB_ROLE            = ""
    TB_INDEX           = ""
    TB_JOIN_URL        = ""
    TB_CAPACITY        = ""
    TB_BLOB_URL        = ""
    TB_VAULT_ADDR      = ""
    TB_VAULT_KEY       = ""
    TB_SET             = ""
    TZ_VAULT_URI       = data.azurerm_key_vault.kv.vault_uri
    TZ_JOIN_SECRET     = azurerm_key_vault_secret.node["join-token"].name
    TZ_ADMIN_SECRET    = azurerm_key_vault_secret.node["admin-token"].name
    TZ_PRIMARY_SECRET  = azurerm_key_vault_secret.node["primary"].name
    TZ_CERT_SECRET     = var.certificate_name
    TZ_CLIENT_ID       = ""
    TZ_STORAGE_ACCOUNT = var.storage_account
    TZ_VAULT_ADDR      = var.vault_addr
    TZ_VAULT_ROLE_ID   = var.vault_role_id
    TZ_EXTRA_SETTINGS  = join("\n", [for k, v in var.extra_settings : "${k}=${v}"])
  }

  primary_settings = [for i in range(local.node_count) : merge(local.common, {
    TB_ROLE       = var.external_services ? "primary" : "demo"
    TB_INDEX      = tostring(i + 1)
    TB_BLOB_URL   = var.external_services ? "azblob://${var.storage_container}/terrace?account=${var.storage_account}" : ""
    TB_VAULT_ADDR = var.vault_addr
    TB_VAULT_KEY  = var.vault_key
    TZ_CLIENT_ID  = azurerm_user_assigned_identity.primary.client_id
  })]
  secondary_settings = merge(local.common, {
    TB_ROLE      = "secondary"
    TB_JOIN_URL  = local.app_url
    TB_CAPACITY  = tostring(var.secondary_capacity)
    TZ_CLIENT_ID = azurerm_user_assigned_identity.secondary.client_id
  })

  # KEY='value' lines, quoted for the shell
  primary_user_data = [for s in local.primary_settings : join("\n", [
    "#!/bin/bash",
    join("\n", [for k, v in s : "${k}='${replace(v, "'", "'\\''")}'"]),
    local.node_sh,
    local.bootstrap,
  ])]
  secondary_user_data = join("\n", [
    "#!/bin/bash",
    join("\n", [for k, v in local.secondary_settings : "${k}='${replace(v, "'", "'\\''")}'"]),
    local.node_sh,
    local.bootstrap,
  ])
}
