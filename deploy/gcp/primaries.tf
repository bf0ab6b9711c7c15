# The primaries: three Compute Engine instances, one per zone, each
# told its index; or, with external_services = false, the one demo
# node.  Each is the backend of its own instance group.

locals {
  node_count = var.external_services ? 3 : 1
  zones      = length(var.zones) > 0 ? var.zones : slice(data.google_compute_zones.up.names, 0, 3)
}

data "google_compute_zones" "up" {
  project = var.project
  region  = var.region
  status  = "UP"
}

resource "google_compute_instance" "primary" {
  count        = local.node_count
  project      = var.project
  name         = var.external_services ? "${var.name}-primary-${count.index + 1}" : "${var.name}-demo"
  zone         = element(local.zones, count.index)
  machine_type = var.primary_machine_type
  tags         = ["${var.name}-node"]
  labels       = var.labels

  boot_disk {
    initialize_params {
      image = var.image
      size  = var.boot_disk_size
      type  = "pd-balanced"
    }
  }
  network_interface {
    subnetwork = var.subnetwork
  }
  service_account {
    email  = google_service_account.primary.email
    scopes = ["cloud-platform"]
  }
  shielded_instance_config {
    enable_secure_boot = true
  }
  metadata = {
    startup-script = local.primary_user_data[count.index]
  }

  lifecycle {
    precondition {
      condition     = !var.external_services || (var.postgresql_address != "" && var.gcs_bucket != "")
      error_message = "external_services = true needs postgresql_address and gcs_bucket."
    }
    precondition {
      condition     = var.vault_addr == "" || var.vault_token != "" || (var.vault_role_id != "" && var.vault_secret_id != "")
      error_message = "vault_addr needs vault_token or vault_role_id and vault_secret_id."
    }
  }
  # the secrets are in place before the node asks for them
  depends_on = [google_secret_manager_secret_version.node,
  google_secret_manager_secret_iam_member.reader]
}
