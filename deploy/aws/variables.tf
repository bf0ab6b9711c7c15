# Inputs of deploy/aws.  Required: hostname, package_url,
# package_sha256, vpc_id, lb_subnet_ids, node_subnet_ids,
# certificate_arn; with external_services = true also the PostgreSQL
# and S3 settings.

variable "name" {
  type        = string
  default     = "terrace"
  description = "Prefix of every resource's name (and the Secrets Manager secrets' path)."
}

variable "hostname" {
  type        = string
  description = "DNS name clients use (https://HOSTNAME). Point it at the load balancer (output lb_dns_name); the certificate must cover it."
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
  description = "false: the one-node demo (SQLite and blobs on the node's disk, runs on the node itself), nothing else needed. true: three primaries on PostgreSQL and S3 and secondary_count secondaries."
}

variable "secondary_count" {
  type        = number
  default     = 2
  description = "Secondaries (workers) in the auto scaling group. Change it and re-apply to scale; a removed secondary drains first (lifecycle hook)."
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

variable "primary_instance_type" {
  type        = string
  default     = "m6i.large"
  description = "EC2 instance type of the primaries (and of the demo node)."
}

variable "secondary_instance_type" {
  type        = string
  default     = "m6i.xlarge"
  description = "EC2 instance type of the secondaries (they run the plans and applies)."
}

variable "ami_id" {
  type        = string
  default     = ""
  description = "AMI of every node (needs bash, curl, systemd and the AWS CLI). Empty: the latest Amazon Linux 2023."
}

variable "root_volume_size" {
  type        = number
  default     = 50
  description = "Root volume of every node, GiB (runs' working directories and provider caches live there)."
}

variable "vpc_id" {
  type        = string
  description = "The VPC every resource goes into."
}

variable "lb_subnet_ids" {
  type        = list(string)
  description = "Public subnets (two or more zones) of the load balancer."
  validation {
    condition     = length(var.lb_subnet_ids) >= 2
    error_message = "lb_subnet_ids needs subnets in at least two zones (an ALB's requirement)."
  }
}

variable "node_subnet_ids" {
  type        = list(string)
  description = "Subnets of the nodes, one per zone; primary N goes into subnet N mod count. They need outbound access (a NAT gateway) to reach the package URL, AWS APIs and the load balancer."
  validation {
    condition     = length(var.node_subnet_ids) > 0
    error_message = "node_subnet_ids needs at least one subnet."
  }
}

variable "allowed_cidrs" {
  type        = list(string)
  default     = ["0.0.0.0/0"]
  description = "Addresses that may reach the load balancer on 443 and 80. Include the nodes' own outbound (NAT) addresses: secondaries join, and runs report, through the application URL."
}

variable "node_port" {
  type        = number
  default     = 8443
  description = "The port every node listens on (TLS). Only the load balancer reaches it."
}

variable "certificate_arn" {
  type        = string
  description = "ACM certificate for hostname, served by the load balancer."
}

variable "postgresql_address" {
  type        = string
  default     = ""
  description = "PostgreSQL HOST:PORT (external_services = true), e.g. an RDS endpoint."
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
  description = "PostgreSQL password (kept in Secrets Manager; only the primaries read it)."
}

variable "postgresql_extra_params" {
  type        = string
  default     = "sslmode=require"
  description = "Extra libpq connection parameters as URL query parameters (a=b&c=d)."
}

variable "s3_bucket" {
  type        = string
  default     = ""
  description = "S3 bucket of the blobs (external_services = true); objects go under the prefix terrace/."
}

variable "s3_region" {
  type        = string
  default     = ""
  description = "Region of s3_bucket. Empty: the provider's region."
}

variable "s3_access_key_id" {
  type        = string
  default     = ""
  description = "Access key for S3. Empty: the primaries' instance profile, which this module grants the bucket."
}

variable "s3_secret_access_key" {
  type        = string
  default     = ""
  sensitive   = true
  description = "Secret of s3_access_key_id (kept in Secrets Manager)."
}

variable "vault_addr" {
  type        = string
  default     = ""
  description = "Vault holding the key-encryption key (transit engine), https://HOST:8200. The primaries also keep the key file the module generates (kept in Secrets Manager), so data sealed under it stays readable until `terrace admin rekey --to vault` has moved it. Empty: the key file alone."
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
  description = "Vault token for the primaries (kept in Secrets Manager). Leave empty to use AppRole."
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
  description = "Vault AppRole secret id (kept in Secrets Manager)."
}

variable "extra_settings" {
  type        = map(string)
  default     = {}
  description = "Other terraced settings for every primary and demo node (`terraced --help`), e.g. { tool-mirror = \"...\" }."
}

variable "tags" {
  type        = map(string)
  default     = {}
  description = "Tags added to every resource."
}
