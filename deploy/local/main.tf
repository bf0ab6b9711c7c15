# deploy/local - a Terrace cluster on this machine, on loopback: a
# PostgreSQL server (or database_url), three primaries, secondary_count
# secondaries and HAProxy in front; or, with external_services = false,
# the one-node demo.  Only the built-in terraform_data resource is used
# (no provider to download) and the state stays in a local file.  Every
# node is started by ../node/bootstrap.sh, the script the cloud modules
# use as user data; scripts/local.sh does what a cloud would do around
# it (certificates, PostgreSQL, the load balancer).

terraform {
  required_version = ">= 1.6"
}

locals {
  dir       = var.work_dir != "" ? abspath(var.work_dir) : abspath("${path.module}/.terrace-local")
  script    = abspath("${path.module}/scripts/local.sh")
  primaries = var.external_services ? 3 : 0
  own_pg    = var.external_services && var.database_url == ""
  env = {
    TL_DIR              = local.dir
    TL_BUILD            = var.terrace_build_dir
    TL_TOFU_BIN         = var.tofu_bin
    TL_LB_LISTEN        = var.lb_listen
    TL_PRIMARY_PREFIX   = var.primary_address_prefix
    TL_SECONDARY_PREFIX = var.secondary_address_prefix
    TL_NODE_PORT        = tostring(var.node_port)
    TL_PRIMARIES        = tostring(local.primaries)
    TL_CAPACITY         = tostring(var.secondary_capacity)
    TL_BLOB_URL         = var.blob_url
  }
}

# The package (a tar of bin/ and share/terrace, as a release would be),
# the cluster CA, the key-encryption key and the balancer's certificate.
resource "terraform_data" "prepare" {
  input = { script = local.script, env = local.env }
  provisioner "local-exec" {
    command     = "bash '${self.input.script}' prepare"
    environment = self.input.env
  }
  provisioner "local-exec" {
    when        = destroy
    command     = "bash '${self.input.script}' clean"
    environment = self.input.env
  }
}

resource "terraform_data" "postgres" {
  count      = local.own_pg ? 1 : 0
  depends_on = [terraform_data.prepare]
  input      = { script = local.script, env = local.env }
  provisioner "local-exec" {
    command     = "bash '${self.input.script}' postgres start"
    environment = self.input.env
  }
  provisioner "local-exec" {
    when        = destroy
    command     = "bash '${self.input.script}' postgres stop"
    environment = self.input.env
  }
}

# A given database_url is written where the primaries read it (a file,
# so it stays off command lines).
resource "terraform_data" "database_url" {
  count      = var.external_services && !local.own_pg ? 1 : 0
  depends_on = [terraform_data.prepare]
  provisioner "local-exec" {
    command     = "umask 077 && printf '%s\\n' \"$DATABASE_URL\" > '${local.dir}/database-url'"
    environment = { DATABASE_URL = var.database_url }
  }
}

# Primaries: told their index, as the clouds' per-instance user data is.
resource "terraform_data" "primary" {
  count      = local.primaries
  depends_on = [terraform_data.postgres, terraform_data.database_url]
  input = {
    script = local.script
    env    = local.env
    name   = "primary-${count.index + 1}"
  }
  provisioner "local-exec" {
    command     = "bash '${self.input.script}' node primary ${count.index + 1}"
    environment = self.input.env
  }
  provisioner "local-exec" {
    when        = destroy
    command     = "bash '${self.input.script}' node-stop ${self.input.name}"
    environment = self.input.env
  }
}

# HAProxy in front of the primaries; writes admin-token, tofu.tfrc and
# the join token the secondaries read.
resource "terraform_data" "lb" {
  count      = var.external_services ? 1 : 0
  depends_on = [terraform_data.primary]
  input      = { script = local.script, env = local.env }
  provisioner "local-exec" {
    command     = "bash '${self.input.script}' lb start"
    environment = self.input.env
  }
  provisioner "local-exec" {
    when        = destroy
    command     = "bash '${self.input.script}' lb stop"
    environment = self.input.env
  }
}

# Secondaries: identical settings, one resource each, so lowering
# secondary_count destroys the last ones, and destroying drains (SIGTERM,
# then wait: a plan or apply in hand finishes first).
resource "terraform_data" "secondary" {
  count      = var.external_services ? var.secondary_count : 0
  depends_on = [terraform_data.lb]
  input = {
    script = local.script
    env    = local.env
    name   = "secondary-${count.index + 1}"
  }
  provisioner "local-exec" {
    command     = "bash '${self.input.script}' node secondary ${count.index + 1}"
    environment = self.input.env
  }
  provisioner "local-exec" {
    when        = destroy
    command     = "bash '${self.input.script}' node-stop ${self.input.name}"
    environment = self.input.env
  }
}

# The demo: one node, SQLite, runs on itself.
resource "terraform_data" "demo" {
  count      = var.external_services ? 0 : 1
  depends_on = [terraform_data.prepare]
  input      = { script = local.script, env = local.env }
  provisioner "local-exec" {
    command     = "bash '${self.input.script}' node demo 0"
    environment = self.input.env
  }
  provisioner "local-exec" {
    when        = destroy
    command     = "bash '${self.input.script}' node-stop demo"
    environment = self.input.env
  }
}
