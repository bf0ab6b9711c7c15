# Instance roles: primaries read their secrets and (without access
# keys) the S3 bucket; secondaries read the join token and complete
# their own scale-in lifecycle action.

data "aws_iam_policy_document" "ec2_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["ec2.amazonaws.com"]
    }
  }
}

data "aws_iam_policy_document" "primary" {
  statement {
    actions = ["secretsmanager:GetSecretValue"]
    resources = [aws_secretsmanager_secret.join.arn,
      aws_secretsmanager_secret.admin.arn,
    aws_secretsmanager_secret.primary.arn]
  }
  dynamic "statement" {
    for_each = var.s3_bucket != "" && var.s3_access_key_id == "" ? [1] : []
    content {
      actions   = ["s3:ListBucket"]
      resources = ["arn:aws:s3:::${var.s3_bucket}"]
    }
  }
  dynamic "statement" {
    for_each = var.s3_bucket != "" && var.s3_access_key_id == "" ? [1] : []
    content {
      actions = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject",
      "s3:AbortMultipartUpload"]
      resources = ["arn:aws:s3:::${var.s3_bucket}/terrace/*"]
    }
  }
}

data "aws_iam_policy_document" "secondary" {
  statement {
    actions   = ["secretsmanager:GetSecretValue"]
    resources = [aws_secretsmanager_secret.join.arn]
  }
  statement {
    actions   = ["autoscaling:CompleteLifecycleAction"]
    resources = ["*"]
    condition {
      test     = "StringEquals"
      variable = "autoscaling:ResourceTag/terrace-group"
      values   = [local.asg_name]
    }
  }
}

resource "aws_iam_role" "primary" {
  name_prefix        = "${var.name}-primary-"
  assume_role_policy = data.aws_iam_policy_document.ec2_assume.json
  tags               = var.tags
}

resource "aws_iam_role_policy" "primary" {
  role   = aws_iam_role.primary.id
  policy = data.aws_iam_policy_document.primary.json
}

resource "aws_iam_instance_profile" "primary" {
  name_prefix = "${var.name}-primary-"
  role        = aws_iam_role.primary.name
}

resource "aws_iam_role" "secondary" {
  name_prefix        = "${var.name}-secondary-"
  assume_role_policy = data.aws_iam_policy_document.ec2_assume.json
  tags               = var.tags
}

resource "aws_iam_role_policy" "secondary" {
  role   = aws_iam_role.secondary.id
  policy = data.aws_iam_policy_document.secondary.json
}

resource "aws_iam_instance_profile" "secondary" {
  name_prefix = "${var.name}-secondary-"
  role        = aws_iam_role.secondary.name
}
