# deploy/azure - a Terrace cluster on Azure: three primaries (virtual
# machines, one per availability zone), secondaries in a virtual
# machine scale set, an Application Gateway in front.  Files by
# concern: variables.tf, secrets.tf (join material in Key Vault),
# network.tf (security groups, the gateway), primaries.tf,
# secondaries.tf, user_data.tf (the node bootstrap as custom data),
# outputs.tf.  The calling configuration sets up the azurerm provider
# (provider "azurerm" { features {} }).

terraform {
  required_version = ">= 1.6"
  required_providers {
    azurerm = {
      source  = "hashicorp/azurerm"
      version = ">= 3.80"
    }
    random = {
      source  = "hashicorp/random"
      version = ">= 3.5"
    }
  }
}
