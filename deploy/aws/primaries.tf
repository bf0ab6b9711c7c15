# The primaries: three EC2 instances, one per node subnet (and so per
# zone), each told its index; or, with external_services = false, the
# one demo node.  They sit behind the load balancer.

locals {
  node_count = var.external_services ? 3 : 1
  ami        = var.ami_id != "" ? var.ami_id : data.aws_ssm_parameter.al2023[0].insecure_value
}

data "aws_ssm_parameter" "al2023" {
  count = var.ami_id == "" ? 1 : 0
  name  = "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64"
}

resource "aws_instance" "primary" {
  count                  = local.node_count
  ami                    = local.ami
  instance_type          = var.primary_instance_type
  subnet_id              = element(var.node_subnet_ids, count.index)
  vpc_security_group_ids = [aws_security_group.node.id]
  iam_instance_profile   = aws_iam_instance_profile.primary.name
  user_data_base64       = base64gzip(local.primary_user_data[count.index])
  # user data runs once: new settings (a package, the demo switch) make
  # a new instance
  user_data_replace_on_change = true

  metadata_options {
    http_tokens                 = "required"
    http_put_response_hop_limit = 1
  }
  root_block_device {
    volume_size = var.root_volume_size
    volume_type = "gp3"
    encrypted   = true
  }
  tags = merge(var.tags, {
    Name = var.external_services ? "${var.name}-primary-${count.index + 1}" : "${var.name}-demo"
  })

  lifecycle {
    precondition {
      condition     = !var.external_services || (var.postgresql_address != "" && var.s3_bucket != "")
      error_message = "external_services = true needs postgresql_address and s3_bucket."
    }
    precondition {
      condition     = var.vault_addr == "" || var.vault_token != "" || (var.vault_role_id != "" && var.vault_secret_id != "")
      error_message = "vault_addr needs vault_token or vault_role_id and vault_secret_id."
    }
  }
  # the secrets are in place before the node asks for them
  depends_on = [aws_secretsmanager_secret_version.join,
    aws_secretsmanager_secret_version.admin,
  aws_secretsmanager_secret_version.primary]
}
