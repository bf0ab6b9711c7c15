# Join material and every other secret of the nodes, generated here and
# kept in Secret Manager; the instances read them at boot as their
# service accounts, so no secret is in instance metadata.  The
# secondaries' account may read the join token only; the database and
# Vault credentials and the key-encryption key are for the primaries.

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

resource "google_service_account" "primary" {
  project      = var.project
  account_id   = "${var.name}-primary"
  display_name = "Terrace primaries"
}

resource "google_service_account" "secondary" {
  project      = var.project
  account_id   = "${var.name}-secondary"
  display_name = "Terrace secondaries"
}

locals {
  database_url = format("postgresql://%s:%s@%s/%s%s",
    urlencode(var.postgresql_user), urlencode(var.postgresql_password),
    var.postgresql_address, var.postgresql_database,
  var.postgresql_extra_params == "" ? "" : "?${var.postgresql_extra_params}")
  primary_secrets = {
    kek             = var.external_services ? random_id.kek.hex : ""
    database_url    = var.external_services ? local.database_url : ""
    vault_token     = var.vault_token
    vault_secret_id = var.vault_secret_id
  }
  # secret -> its value and who may read it
  secrets = {
    join-token  = { readers = ["primary", "secondary"] }
    admin-token = { readers = ["primary"] }
    primary     = { readers = ["primary"] }
  }
  secret_values = {
    join-token  = random_password.join_token.result
    admin-token = random_password.admin_token.result
    primary     = jsonencode(local.primary_secrets)
  }
  service_accounts = {
    primary   = google_service_account.primary.email
    secondary = google_service_account.secondary.email
  }
  secret_readers = merge([for s, v in local.secrets : {
    for r in v.readers : "${s}/${r}" => { secret = s, reader = r }
  }]...)
}

resource "google_secret_manager_secret" "node" {
  for_each  = local.secrets
  project   = var.project
  secret_id = "${var.name}-${each.key}"
  labels    = var.labels
  replication {
    auto {}
  }
}

resource "google_secret_manager_secret_version" "node" {
  for_each    = local.secrets
  secret      = google_secret_manager_secret.node[each.key].id
  secret_data = local.secret_values[each.key]
}

resource "google_secret_manager_secret_iam_member" "reader" {
  for_each  = local.secret_readers
  project   = var.project
  secret_id = google_secret_manager_secret.node[each.value.secret].secret_id
  role      = "roles/secretmanager.secretAccessor"
  member    = "serviceAccount:${local.service_accounts[each.value.reader]}"
}

resource "google_storage_bucket_iam_member" "blobs" {
  count  = var.gcs_bucket != "" ? 1 : 0
  bucket = var.gcs_bucket
  role   = "roles/storage.objectUser"
  member = "serviceAccount:${google_service_account.primary.email}"
}
