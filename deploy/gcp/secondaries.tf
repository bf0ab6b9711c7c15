# The secondaries: one regional managed instance group of identical
# instances (one template, one startup script), sized by
# secondary_count and spread over the zones.  When the group removes
# an instance, its shutdown script drains the node: SIGTERM, then it
# waits for the plans and applies in hand.  Google bounds that wait
# (see README: what is verified).

resource "google_compute_instance_template" "secondary" {
  count        = var.external_services ? 1 : 0
  project      = var.project
  name_prefix  = "${var.name}-secondary-"
  machine_type = var.secondary_machine_type
  tags         = ["${var.name}-node"]
  labels       = var.labels

  disk {
    source_image = var.image
    disk_size_gb = var.boot_disk_size
    disk_type    = "pd-balanced"
    boot         = true
    auto_delete  = true
  }
  network_interface {
    subnetwork = var.subnetwork
  }
  service_account {
    email  = google_service_account.secondary.email
    scopes = ["cloud-platform"]
  }
  shielded_instance_config {
    enable_secure_boot = true
  }
  metadata = {
    startup-script  = local.secondary_user_data
    shutdown-script = "#!/bin/bash\n/opt/terrace/share/terrace/node/bootstrap.sh drain --name secondary\n"
  }
  lifecycle {
    create_before_destroy = true
  }
}

resource "google_compute_region_instance_group_manager" "secondary" {
  count                     = var.external_services ? 1 : 0
  project                   = var.project
  name                      = "${var.name}-secondaries"
  region                    = var.region
  base_instance_name        = "${var.name}-secondary"
  distribution_policy_zones = local.zones
  target_size               = var.secondary_count

  version {
    instance_template = google_compute_instance_template.secondary[0].id
  }
  # the primaries answer before the first secondary joins
  depends_on = [google_compute_global_forwarding_rule.https,
  google_compute_instance.primary]
}
