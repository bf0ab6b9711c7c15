# User data: the node's settings as shell assignments (TB_* for the
# bootstrap, TA_* for templates/node.sh), then templates/node.sh
# (secrets from Secrets Manager, the drain watcher), then the one node
# bootstrap, ../node/bootstrap.sh, read here as it is: every cloud and
# deploy/local run the same file.  Gzipped, since the bootstrap alone
# nears EC2's 16 KiB; cloud-init unpacks it.

locals {
  bootstrap = file("${path.module}/../node/bootstrap.sh")
  node_sh   = file("${path.module}/templates/node.sh")
  app_url   = "https://${var.hostname}"
  s3_region = var.s3_region != "" ? var.s3_region : data.aws_region.current.name

  # settings of every node
  common = {
    TB_LISTEN         = "0.0.0.0:${var.node_port}"
    TB_EXTERNAL_URL   = local.app_url
    TB_INSTALL_FROM   = var.package_url
    TB_SHA256         = var.package_sha256
    TA_REGION         = data.aws_region.current.name
    TA_JOIN_SECRET    = aws_secretsmanager_secret.join.arn
    TA_ADMIN_SECRET   = aws_secretsmanager_secret.admin.arn
    TA_PRIMARY_SECRET = aws_secretsmanager_secret.primary.arn
    TA_GROUP          = local.asg_name
    TA_HOOK           = local.hook_name
    TA_S3_ACCESS_KEY  = var.s3_access_key_id
    TA_VAULT_ROLE_ID  = var.vault_role_id
    TB_JOIN_URL       = ""
    TB_CAPACITY       = ""
    TB_INDEX          = ""
    TB_BLOB_URL       = ""
    TB_VAULT_ADDR     = ""
    TB_VAULT_KEY      = ""
    TB_SET            = ""
    TB_ROLE           = ""
    TB_READY_TIMEOUT  = "600"
    TA_VAULT_ADDR     = var.vault_addr
    TA_EXTRA_SETTINGS = join("\n", [for k, v in var.extra_settings : "${k}=${v}"])
  }

  primary_settings = [for i in range(local.node_count) : merge(local.common, {
    TB_ROLE       = var.external_services ? "primary" : "demo"
    TB_INDEX      = tostring(i + 1)
    TB_BLOB_URL   = var.external_services ? "s3://${var.s3_bucket}/terrace?region=${local.s3_region}" : ""
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

data "aws_region" "current" {}
