# The firewall and the global HTTPS load balancer.  Clients reach the
# balancer on 443 (80 only redirects), with a Google-managed
# certificate for hostname; the nodes accept node_port from the
# balancer and its health checks alone.  Secondaries reach the
# primaries through the balancer, as clients do.

locals {
  # where Google's load balancers and health checks connect from
  google_lb_ranges = ["130.211.0.0/22", "35.191.0.0/16"]
  armor            = !contains(var.allowed_cidrs, "0.0.0.0/0")
}

resource "google_compute_firewall" "node" {
  project       = var.project
  name          = "${var.name}-node"
  network       = var.network
  direction     = "INGRESS"
  source_ranges = local.google_lb_ranges
  target_tags   = ["${var.name}-node"]
  allow {
    protocol = "tcp"
    ports    = [tostring(var.node_port)]
  }
}

resource "google_compute_global_address" "app" {
  project = var.project
  name    = "${var.name}-app"
}

resource "google_compute_managed_ssl_certificate" "app" {
  project = var.project
  name    = "${var.name}-app"
  managed {
    domains = [var.hostname]
  }
}

resource "google_compute_health_check" "app" {
  project             = var.project
  name                = "${var.name}-app"
  check_interval_sec  = 10
  timeout_sec         = 5
  healthy_threshold   = 2
  unhealthy_threshold = 2
  https_health_check {
    port         = var.node_port
    request_path = "/_health_check"
  }
}

# one unmanaged group per primary (or the demo node): a backend
resource "google_compute_instance_group" "primary" {
  count     = local.node_count
  project   = var.project
  name      = "${var.name}-primary-${count.index + 1}"
  zone      = google_compute_instance.primary[count.index].zone
  instances = [google_compute_instance.primary[count.index].self_link]
  named_port {
    name = "terrace"
    port = var.node_port
  }
}

resource "google_compute_security_policy" "app" {
  count   = local.armor ? 1 : 0
  project = var.project
  name    = "${var.name}-app"
  rule {
    action   = "allow"
    priority = 1000
    match {
      versioned_expr = "SRC_IPS_V1"
      config {
        src_ip_ranges = var.allowed_cidrs
      }
    }
  }
  rule {
    action   = "deny(403)"
    priority = 2147483647
    match {
      versioned_expr = "SRC_IPS_V1"
      config {
        src_ip_ranges = ["*"]
      }
    }
  }
}

resource "google_compute_backend_service" "app" {
  project               = var.project
  name                  = "${var.name}-app"
  protocol              = "HTTPS"
  port_name             = "terrace"
  load_balancing_scheme = "EXTERNAL_MANAGED"
  # long polls of secondaries and streamed logs
  timeout_sec     = 3600
  health_checks   = [google_compute_health_check.app.id]
  security_policy = local.armor ? google_compute_security_policy.app[0].id : null
  dynamic "backend" {
    for_each = google_compute_instance_group.primary
    content {
      group           = backend.value.id
      balancing_mode  = "UTILIZATION"
      capacity_scaler = 1
    }
  }
}

resource "google_compute_url_map" "app" {
  project         = var.project
  name            = "${var.name}-app"
  default_service = google_compute_backend_service.app.id
}

resource "google_compute_target_https_proxy" "app" {
  project          = var.project
  name             = "${var.name}-app"
  url_map          = google_compute_url_map.app.id
  ssl_certificates = [google_compute_managed_ssl_certificate.app.id]
}

resource "google_compute_global_forwarding_rule" "https" {
  project               = var.project
  name                  = "${var.name}-https"
  ip_address            = google_compute_global_address.app.address
  port_range            = "443"
  target                = google_compute_target_https_proxy.app.id
  load_balancing_scheme = "EXTERNAL_MANAGED"
}

# port 80: a redirect to https, nothing else
resource "google_compute_url_map" "redirect" {
  project = var.project
  name    = "${var.name}-redirect"
  default_url_redirect {
    https_redirect         = true
    redirect_response_code = "MOVED_PERMANENTLY_DEFAULT"
    strip_query            = false
  }
}

resource "google_compute_target_http_proxy" "redirect" {
  project = var.project
  name    = "${var.name}-redirect"
  url_map = google_compute_url_map.redirect.id
}

resource "google_compute_global_forwarding_rule" "http" {
  project               = var.project
  name                  = "${var.name}-http"
  ip_address            = google_compute_global_address.app.address
  port_range            = "80"
  target                = google_compute_target_http_proxy.redirect.id
  load_balancing_scheme = "EXTERNAL_MANAGED"
}
