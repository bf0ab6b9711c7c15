# The startup script: the node's settings as shell assignments (TB_*
# for the bootstrap, TG_* for templates/node.sh), then templates/node.sh
# (secrets from Secret Manager), then the one node bootstrap,
# ../node/bootstrap.sh, read here as it is: every cloud and
# deploy/local run the same file.  It runs at every boot; the
# bootstrap installs only what changed and restarts the node.

locals {
  bootstrap = file("${path.module}/../node/bootstrap.sh")
  node_sh   = file("${path.module}/templates/node.sh")
  app_url   = "https://${var.hostname}"

  # settings of every node
  common = {
    TB_LISTEN         = "0.0.0.0:${var.node_port}"
    TB_EXTERNAL_URL   = local.app_url
    TB_INSTALL_FROM   = var.package_url
    TB_SHA256         = var.package_sha256
    TB_READY_TIMEOUT  = "600"
    TB_ROLE           = ""
    TB_INDEX          = ""
    TB_JOIN_URL       = ""
    TB_CAPACITY       = ""
    TB_BLOB_URL       = ""
    TB_VAULT_ADDR     = ""
    TB_VAULT_KEY      = ""
    TB_SET            = ""
    TG_PROJECT        = var.project
    TG_JOIN_SECRET    = google_secret_manager_secret.node["join-token"].secret_id
    TG_ADMIN_SECRET   = google_secret_manager_secret.node["admin-token"].secret_id
    TG_PRIMARY_SECRET = google_secret_manager_secret.node["primary"].secret_id
    TG_VAULT_ADDR     = var.vault_addr
    TG_VAULT_ROLE_ID  = var.vault_role_id
    TG_EXTRA_SETTINGS = join("\n", [for k, v in var.extra_settings : "${k}=${v}"])
  }

  primary_settings = [for i in range(local.node_count) : merge(local.common, {
    TB_ROLE       = var.external_services ? "primary" : "demo"
    TB_INDEX      = tostring(i + 1)
    TB_BLOB_URL   = var.external_services ? "gs://${var.gcs_bucket}/terrace" : ""
    TB_VAULT_ADDR = var.vault_addr
    TB_VAULT_KEY  = var.vault_key
  })]
  secondary_settings = merge(local.common, {
    TB_ROLE     = "secondary"
    TB_JOIN_URL = local.app_url
    TB_CAPACITY = tostring(var.secondary_capacity)
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
