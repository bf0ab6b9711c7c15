# deploy/aws - a Terrace cluster on AWS: three primaries (EC2
# instances, one per subnet/zone), secondaries in an auto scaling group,
# an application load balancer in front.  Files by concern:
# variables.tf, secrets.tf (join material in Secrets Manager),
# network.tf (security groups, load balancer), primaries.tf,
# secondaries.tf, user_data.tf (the node bootstrap as user data),
# outputs.tf.

terraform {
  required_version = ">= 1.6"
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.30"
    }
    random = {
      source  = "hashicorp/random"
      version = ">= 3.5"
    }
  }
}
