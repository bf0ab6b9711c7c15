# The secondaries: one auto scaling group of identical instances
# (one launch template, one user data), sized by secondary_count.
# Scale-in goes through the lifecycle hook "drain": the instance's
# drain watcher (templates/node.sh) sees the Terminating:Wait state,
# drains the node (SIGTERM, then waits for the plans and applies in
# hand) and completes the action; the hook gives it up to two hours.

locals {
  asg_name  = "${var.name}-secondaries"
  hook_name = "drain"
}

resource "aws_launch_template" "secondary" {
  count                  = var.external_services ? 1 : 0
  name_prefix            = "${var.name}-secondary-"
  image_id               = local.ami
  instance_type          = var.secondary_instance_type
  user_data              = base64gzip(local.secondary_user_data)
  vpc_security_group_ids = [aws_security_group.node.id]
  tags                   = var.tags

  iam_instance_profile {
    name = aws_iam_instance_profile.secondary.name
  }
  metadata_options {
    http_tokens                 = "required"
    http_put_response_hop_limit = 1
  }
  block_device_mappings {
    device_name = "/dev/xvda"
    ebs {
      volume_size = var.root_volume_size
      volume_type = "gp3"
      encrypted   = true
    }
  }
  tag_specifications {
    resource_type = "instance"
    tags          = merge(var.tags, { Name = "${var.name}-secondary" })
  }
}

resource "aws_autoscaling_group" "secondary" {
  count               = var.external_services ? 1 : 0
  name                = local.asg_name
  min_size            = var.secondary_count
  max_size            = var.secondary_count
  desired_capacity    = var.secondary_count
  vpc_zone_identifier = var.node_subnet_ids
  health_check_type   = "EC2"

  launch_template {
    id      = aws_launch_template.secondary[0].id
    version = aws_launch_template.secondary[0].latest_version
  }
  # a new launch template (package, settings) replaces the instances a
  # few at a time, each drained through the hook
  instance_refresh {
    strategy = "Rolling"
    preferences {
      min_healthy_percentage = 50
    }
  }
  initial_lifecycle_hook {
    name                 = local.hook_name
    lifecycle_transition = "autoscaling:EC2_INSTANCE_TERMINATING"
    heartbeat_timeout    = 7200
    default_result       = "CONTINUE"
  }
  # the secondaries' role may complete lifecycle actions of this group
  tag {
    key                 = "terrace-group"
    value               = local.asg_name
    propagate_at_launch = false
  }
  # the primaries answer before the first secondary joins
  depends_on = [aws_lb_listener.https, aws_instance.primary]
}
