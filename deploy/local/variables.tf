# Inputs of deploy/local.  Every one has a working default: from a
# checkout where ./scripts/demo.sh built build-release,
# `tofu init && tofu apply` needs no -var.

variable "secondary_count" {
  type        = number
  default     = 2
  description = "Secondaries (workers) to run. Change it and re-apply to scale: removed secondaries drain first, so a running apply finishes."
  validation {
    condition     = var.secondary_count >= 0 && var.secondary_count <= 200 && floor(var.secondary_count) == var.secondary_count
    error_message = "secondary_count must be a whole number from 0 to 200."
  }
}

variable "external_services" {
  type        = bool
  default     = true
  description = "true: three primaries on PostgreSQL, secondaries and HAProxy. false: the one-node demo (SQLite, runs on the node itself), no external service."
}

variable "database_url" {
  type        = string
  default     = ""
  sensitive   = true
  description = "PostgreSQL connection string for the primaries (libpq). Empty: a PostgreSQL server is started in work_dir/pg (needs the postgresql package)."
}

variable "blob_url" {
  type        = string
  default     = ""
  description = "Blob store shared by the primaries. Empty: file://WORK_DIR/blobs."
}

variable "s3_server" {
  type        = bool
  default     = false
  description = "Reserved: start a local S3-compatible server and keep the blobs there. Not available yet; must stay false."
  validation {
    condition     = !var.s3_server
    error_message = "s3_server is not available yet: leave it false and use blob_url to name a store."
  }
}

variable "work_dir" {
  type        = string
  default     = ""
  description = "Where everything of the deployment lives (packages, keys, nodes, logs, PostgreSQL). Empty: .terrace-local beside this module."
}

variable "terrace_build_dir" {
  type        = string
  default     = ""
  description = "A build directory (holding terraced and terrace) or an install prefix (bin/terraced). Empty: the checkout's build-release, build, then /opt/terrace and /usr/local."
}

variable "tofu_bin" {
  type        = string
  default     = ""
  description = "The tofu the primaries offer runs. Empty: the newest in ~/.cache/terrace, then tofu on PATH."
}

variable "lb_listen" {
  type        = string
  default     = "127.0.0.1:9443"
  description = "Loopback ADDRESS:PORT of the load balancer (the demo's own listener when external_services is false)."
  validation {
    condition     = can(regex("^127\\.[0-9]+\\.[0-9]+\\.[0-9]+:[0-9]+$", var.lb_listen))
    error_message = "lb_listen must be a loopback address and port, 127.x.x.x:PORT."
  }
}

variable "primary_address_prefix" {
  type        = string
  default     = "127.0.11"
  description = "Primaries listen on PREFIX.1 to PREFIX.3 (loopback)."
  validation {
    condition     = can(regex("^127\\.[0-9]+\\.[0-9]+$", var.primary_address_prefix))
    error_message = "primary_address_prefix must look like 127.x.y."
  }
}

variable "secondary_address_prefix" {
  type        = string
  default     = "127.0.12"
  description = "Secondary N listens on PREFIX.N (loopback)."
  validation {
    condition     = can(regex("^127\\.[0-9]+\\.[0-9]+$", var.secondary_address_prefix))
    error_message = "secondary_address_prefix must look like 127.x.y."
  }
}

variable "node_port" {
  type        = number
  default     = 8443
  description = "The port every node listens on (each on its own address)."
}

variable "secondary_capacity" {
  type        = number
  default     = 2
  description = "Plans and applies each secondary runs at once."
}
