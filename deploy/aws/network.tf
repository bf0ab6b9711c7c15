# Security groups and the application load balancer.  Clients reach
# the balancer on 443 (80 only redirects); the nodes accept node_port
# from the balancer alone.  Secondaries reach the primaries through
# the balancer, as clients do.

resource "aws_security_group" "lb" {
  name_prefix = "${var.name}-lb-"
  description = "Terrace load balancer"
  vpc_id      = var.vpc_id
  tags        = var.tags

  ingress {
    description = "HTTPS from clients"
    from_port   = 443
    to_port     = 443
    protocol    = "tcp"
    cidr_blocks = var.allowed_cidrs
  }
  ingress {
    description = "HTTP, redirected to HTTPS"
    from_port   = 80
    to_port     = 80
    protocol    = "tcp"
    cidr_blocks = var.allowed_cidrs
  }
  egress {
    description     = "to the nodes"
    from_port       = var.node_port
    to_port         = var.node_port
    protocol        = "tcp"
    security_groups = [aws_security_group.node.id]
  }
}

resource "aws_security_group" "node" {
  name_prefix = "${var.name}-node-"
  description = "Terrace nodes"
  vpc_id      = var.vpc_id
  tags        = var.tags

  egress {
    description = "package, AWS APIs, PostgreSQL, S3, Vault, the load balancer, providers"
    from_port   = 0
    to_port     = 0
    protocol    = "-1"
    cidr_blocks = ["0.0.0.0/0"]
  }
}

# a rule of its own: the two groups name each other
resource "aws_security_group_rule" "node_from_lb" {
  type                     = "ingress"
  description              = "Terrace from the load balancer"
  security_group_id        = aws_security_group.node.id
  source_security_group_id = aws_security_group.lb.id
  from_port                = var.node_port
  to_port                  = var.node_port
  protocol                 = "tcp"
}

resource "aws_lb" "app" {
  name_prefix        = "trc-"
  load_balancer_type = "application"
  subnets            = var.lb_subnet_ids
  security_groups    = [aws_security_group.lb.id]
  # long polls of secondaries and streamed logs
  idle_timeout = 3600
  tags         = var.tags
}

# The primaries (or the demo node); a node's certificate is its own,
# which the balancer does not verify.
resource "aws_lb_target_group" "app" {
  name_prefix          = "trc-"
  port                 = var.node_port
  protocol             = "HTTPS"
  vpc_id               = var.vpc_id
  deregistration_delay = 30
  tags                 = var.tags

  health_check {
    protocol            = "HTTPS"
    path                = "/_health_check"
    matcher             = "200"
    interval            = 10
    timeout             = 5
    healthy_threshold   = 2
    unhealthy_threshold = 2
  }
}

resource "aws_lb_target_group_attachment" "primary" {
  count            = local.node_count
  target_group_arn = aws_lb_target_group.app.arn
  target_id        = aws_instance.primary[count.index].id
  port             = var.node_port
}

resource "aws_lb_listener" "https" {
  load_balancer_arn = aws_lb.app.arn
  port              = 443
  protocol          = "HTTPS"
  ssl_policy        = "ELBSecurityPolicy-TLS13-1-2-2021-06"
  certificate_arn   = var.certificate_arn

  default_action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.app.arn
  }
}

resource "aws_lb_listener" "http" {
  load_balancer_arn = aws_lb.app.arn
  port              = 80
  protocol          = "HTTP"

  default_action {
    type = "redirect"
    redirect {
      protocol    = "HTTPS"
      port        = "443"
      status_code = "HTTP_301"
    }
  }
}
