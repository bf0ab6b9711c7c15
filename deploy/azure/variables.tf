# Inputs of deploy/azure.  Required: resource_group_name, location,
# node_subnet_id, gateway_subnet_id, key_vault_id, certificate_name,
# ssh_public_key, hostname, package_url, package_sha256; with
# external_services = true also the PostgreSQL and storage settings.

variable "name" {
  type        = string
  default     = "terrace"
  description = "Prefix of every resource's name (and of the Key Vault secrets)."
}

variable "resource_group_name" {
  type        = string
  description = "Existing resource group every resource goes into."
}

variable "location" {
  type        = string
  description = "Azure region, e.g. westeurope."
}

variable "zones" {
  type        = list(string)
  default     = ["1", "2", "3"]
  description = "Availability zones of the nodes; primary N goes into zone N mod count."
}

variable "node_subnet_id" {
  type        = string
  description = "Subnet of the nodes. They have no public address: give it outbound access (a NAT gateway), so they reach the package URL, Key Vault and the gateway."
}

variable "gateway_subnet_id" {
  type        = string
  description = "Subnet dedicated to the Application Gateway (this module puts a network security group on it)."
}

variable "key_vault_id" {
  type        = string
  description = "Existing Key Vault (Azure RBAC authorization) holding the TLS certificate; the module keeps the nodes' secrets in it."
}

variable "certificate_name" {
  type        = string
  description = "Key Vault certificate for hostname, issued by a public CA: the gateway serves it and every primary reads it from Key Vault at boot (the gateway checks the primaries' certificate against hostname)."
}

variable "ssh_public_key" {
  type        = string
  description = "OpenSSH public key of the nodes' admin user (azureuser)."
}

variable "hostname" {
  type        = string
  description = "DNS name clients use (https://HOSTNAME). Point it at the output lb_address."
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
  description = "false: the one-node demo (SQLite and blobs on the node's disk, runs on the node itself), nothing else needed. true: three primaries on PostgreSQL and Blob Storage and secondary_count secondaries."
}

variable "secondary_count" {
  type        = number
  default     = 2
  description = "Secondaries (workers) in the scale set. Change it and re-apply to scale; a removed secondary drains first (termination notification)."
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

variable "primary_vm_size" {
  type        = string
  default     = "Standard_D2s_v5"
  description = "VM size of the primaries (and of the demo node)."
}

variable "secondary_vm_size" {
  type        = string
  default     = "Standard_D4s_v5"
  description = "VM size of the secondaries (they run the plans and applies)."
}

variable "os_disk_size" {
  type        = number
  default     = 64
  description = "OS disk of every node, GB (runs' working directories and provider caches live there)."
}

variable "allowed_cidrs" {
  type        = list(string)
  default     = ["0.0.0.0/0"]
  description = "Addresses that may reach the gateway on 443 and 80. Include the nodes' outbound (NAT) addresses: secondaries join, and runs report, through the application URL."
}

variable "node_port" {
  type        = number
  default     = 8443
  description = "The port every node listens on (TLS). Only the gateway reaches it."
}

variable "postgresql_address" {
  type        = string
  default     = ""
  description = "PostgreSQL HOST:PORT (external_services = true), e.g. an Azure Database for PostgreSQL server."
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
  description = "PostgreSQL password (kept in Key Vault; only the primaries read it)."
}

variable "postgresql_extra_params" {
  type        = string
  default     = "sslmode=require"
  description = "Extra libpq connection parameters as URL query parameters (a=b&c=d)."
}

variable "storage_account" {
  type        = string
  default     = ""
  description = "Storage account of the blobs (external_services = true)."
}

variable "storage_account_key" {
  type        = string
  default     = ""
  sensitive   = true
  description = "Access key of storage_account (kept in Key Vault; only the primaries read it)."
}

variable "storage_container" {
  type        = string
  default     = "terrace"
  description = "Existing blob container in storage_account; objects go under terrace/."
}

variable "vault_addr" {
  type        = string
  default     = ""
  description = "Vault holding the key-encryption key (transit engine), https://HOST:8200. The primaries also keep the key file the module generates (kept in Key Vault), so data sealed under it stays readable until `terrace admin rekey --to vault` has moved it. Empty: the key file alone."
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
  description = "Vault token for the primaries (kept in Key Vault). Leave empty to use AppRole."
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
  description = "Vault AppRole secret id (kept in Key Vault)."
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
