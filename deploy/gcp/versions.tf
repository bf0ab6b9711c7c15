# deploy/gcp - a Terrace cluster on Google Cloud: three primaries
# (Compute Engine instances, one per zone), secondaries in a regional
# managed instance group, a global HTTPS load balancer in front.  Files
# by concern: variables.tf, secrets.tf (join material in Secret
# Manager), network.tf (firewall, load balancer), primaries.tf,
# secondaries.tf, user_data.tf (the node bootstrap as startup script),
# outputs.tf.

terraform {
  required_version = ">= 1.6"
  required_providers {
    google = {
      source  = "hashicorp/google"
      version = ">= 5.0"
    }
    random = {
      source  = "hashicorp/random"
      version = ">= 3.5"
    }
  }
}
