# Inputs of deploy/gcp.  Required: project, region, network,
# subnetwork, hostname, package_url, package_sha256; with
# external_services = true also the PostgreSQL settings and gcs_bucket.

variable "name" {
  type        = string
  default     = "terrace"
  description = "Prefix of every resource's name."
}

variable "project" {
  type        = string
  description = "The Google Cloud project."
}

variable "region" {
  type        = string
  description = "Region of the instances and the secondaries' group."
}

variable "zones" {
  type        = list(string)
  default     = []
  description = "Zones of the nodes; primary N goes into zone N mod count. Empty: the region's first three zones that are up."
}

variable "network" {
  type        = string
  description = "VPC network (name or self link) of the nodes."
}

variable "subnetwork" {
  type        = string
  description = "Subnetwork (self link) of the nodes, in region. The nodes have no public address: give it Cloud NAT, so they reach the package URL, Google APIs and the load balancer."
}

variable "hostname" {
  type        = string
  description = "DNS name clients use (https://HOSTNAME). Point its A record at the output lb_address; the Google-managed certificate is issued once it resolves there."
}

variable "package_url" {
  type        = string
  description = "https URL of the Terrace package: a .tar.gz of the `cmake --install` tree (bin/terraced, share/terrace)."
}

variable "package_sha256" {
  type        = string
  description = "SHA-256 of the package; every node checks it before installing."
  validation {
    condition     = can(regex("^[0-9a-f]{64}$", var.package_sha256))
    error_message = "package_sha256 must be 64 lower-case hex digits."
  }
}

variable "external_services" {
  type        = bool
  default     = false
  description = "false: the one-node demo (SQLite and blobs on the node's disk, runs on the node itself), nothing else needed. true: three primaries on PostgreSQL and Cloud Storage and secondary_count secondaries."
}

variable "secondary_count" {
  type        = number
  default     = 2
  description = "Secondaries (workers) in the managed instance group. Change it and re-apply to scale; a removed secondary drains in its shutdown script."
  validation {
    condition     = var.secondary_count >= 0 && floor(var.secondary_count) == var.secondary_count
    error_message = "secondary_count must be a whole number, 0 or more."
  }
}

variable "secondary_capacity" {
  type        = number
  default     = 2
  description = "Plans and applies each secondary runs at once."
}

variable "primary_machine_type" {
  type        = string
  default     = "n2-standard-2"
  description = "Machine type of the primaries (and of the demo node)."
}

variable "secondary_machine_type" {
  type        = string
  default     = "n2-standard-4"
  description = "Machine type of the secondaries (they run the plans and applies)."
}

variable "image" {
  type        = string
  default     = "ubuntu-os-cloud/ubuntu-2404-lts-amd64"
  description = "Boot image of every node (needs bash, curl, python3, systemd and apt for bubblewrap)."
}

variable "boot_disk_size" {
  type        = number
  default     = 50
  description = "Boot disk of every node, GB (runs' working directories and provider caches live there)."
}

variable "allowed_cidrs" {
  type        = list(string)
  default     = ["0.0.0.0/0"]
  description = "Addresses that may use the load balancer (a Cloud Armor policy when not everyone; at most 10). Include the nodes' Cloud NAT addresses: secondaries join, and runs report, through the application URL."
  validation {
    condition     = contains(var.allowed_cidrs, "0.0.0.0/0") || (length(var.allowed_cidrs) > 0 && length(var.allowed_cidrs) <= 10)
    error_message = "allowed_cidrs: 1 to 10 ranges (one Cloud Armor rule), or 0.0.0.0/0 for everyone."
  }
}

variable "node_port" {
  type        = number
  default     = 8443
  description = "The port every node listens on (TLS). Only the load balancer and its health checks reach it."
}

variable "postgresql_address" {
  type        = string
  default     = ""
  description = "PostgreSQL HOST:PORT (external_services = true), e.g. a Cloud SQL private address."
}

variable "postgresql_database" {
  type        = string
  default     = "terrace"
  description = "PostgreSQL database name."
}

variable "postgresql_user" {
  type        = string
  default     = "terrace"
  description = "PostgreSQL user."
}

variable "postgresql_password" {
  type        = string
  default     = ""
  sensitive   = true
  description = "PostgreSQL password (kept in Secret Manager; only the primaries read it)."
}

variable "postgresql_extra_params" {
  type        = string
  default     = "sslmode=require"
  description = "Extra libpq connection parameters as URL query parameters (a=b&c=d)."
}

variable "gcs_bucket" {
  type        = string
  default     = ""
  description = "Cloud Storage bucket of the blobs (external_services = true); objects go under terrace/. The primaries' service account gets roles/storage.objectUser on it."
}

variable "vault_addr" {
  type        = string
  default     = ""
  description = "Vault holding the key-encryption key (transit engine), https://HOST:8200. The primaries also keep the key file the module generates (kept in Secret Manager), so data sealed under it stays readable until `terrace admin rekey --to vault` has moved it. Empty: the key file alone."
}

variable "vault_key" {
  type        = string
  default     = "terrace"
  description = "Name of the transit key (aes256-gcm96) when vault_addr is set."
}

variable "vault_token" {
  type        = string
  default     = ""
  sensitive   = true
  description = "Vault token for the primaries (kept in Secret Manager). Leave empty to use AppRole."
}

variable "vault_role_id" {
  type        = string
  default     = ""
  description = "Vault AppRole role id (with vault_secret_id), instead of vault_token."
}

variable "vault_secret_id" {
  type        = string
  default     = ""
  sensitive   = true
  description = "Vault AppRole secret id (kept in Secret Manager)."
}

variable "extra_settings" {
  type        = map(string)
  default     = {}
  description = "Other terraced settings for every primary and demo node (`terraced --help`), e.g. { tool-mirror = \"...\" }."
}

variable "labels" {
  type        = map(string)
  default     = {}
  description = "Labels added to the instances and secrets."
}
