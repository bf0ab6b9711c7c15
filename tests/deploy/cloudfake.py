#!/usr/bin/env python3
"""cloudfake.py - stands in for the cloud a node's user data talks to,
so test_userdata.py can run each cloud's templates/node.sh and the
bootstrap behind it on this machine.  Installed under the names the
scripts call:

  aws   `aws secretsmanager get-secret-value --secret-id ARN ...`
        prints the secret (others fail)
  curl  the GCP metadata token and Secret Manager access, the Azure
        identity token and Key Vault secret reads are answered here,
        each checking the token or identity it must carry; any other
        URL goes to the real curl

Secrets are files in $CLOUDFAKE_DIR/secrets/NAME (for AWS, NAME is the
ARN's last part); every call is appended to $CLOUDFAKE_DIR/calls.

SPDX-License-Identifier: MPL-2.0
"""
import base64
import json
import os
import re
import sys

DIR = os.environ["CLOUDFAKE_DIR"]
TOKEN = "fake-access-token"


def secret(name):
    with open(os.path.join(DIR, "secrets", name)) as f:
        return f.read()


def log(*words):
    with open(os.path.join(DIR, "calls"), "a") as f:
        f.write(" ".join(words) + "\n")


def aws(args):
    if args[:2] != ["secretsmanager", "get-secret-value"]:
        sys.exit("cloudfake: aws %s not faked" % " ".join(args))
    arn = args[args.index("--secret-id") + 1]
    log("aws", arn)
    sys.stdout.write(secret(arn.rsplit(":", 1)[-1]))


def curl(args):
    url = next((a for a in args if re.match(r"https?://", a)), "")
    headers = [args[i + 1] for i, a in enumerate(args[:-1]) if a == "-H"]
    gcp_token = "computeMetadata/v1/instance/service-accounts/default/token"
    gcp_secret = re.match(r"https://secretmanager\.googleapis\.com/v1/"
                          r"projects/([^/]+)/secrets/([^/]+)/versions/"
                          r"latest:access$", url)
    az_token = url.startswith("http://169.254.169.254/metadata/identity/")
    az_secret = re.match(r"https://vault\.test/secrets/([^?]+)\?", url)
    if gcp_token in url:
        if "Metadata-Flavor: Google" not in headers:
            sys.exit(22)
        log("gcp-token")
        print(json.dumps({"access_token": TOKEN}))
    elif gcp_secret:
        if "Authorization: Bearer " + TOKEN not in headers:
            sys.exit(22)
        log("gcp-secret", gcp_secret.group(1), gcp_secret.group(2))
        data = base64.b64encode(secret(gcp_secret.group(2)).encode())
        print(json.dumps({"payload": {"data": data.decode()}}))
    elif az_token:
        if "Metadata:true" not in headers or \
                "client_id=" + os.environ["CLOUDFAKE_CLIENT_ID"] not in url:
            sys.exit(22)
        log("azure-token")
        print(json.dumps({"access_token": TOKEN}))
    elif az_secret:
        if "Authorization: Bearer " + TOKEN not in headers:
            sys.exit(22)
        log("azure-secret", az_secret.group(1))
        print(json.dumps({"value": secret(az_secret.group(1))}))
    else:
        os.execv("/usr/bin/curl", ["curl"] + args)


if __name__ == "__main__":
    {"aws": aws, "curl": curl}[os.path.basename(sys.argv[0])](sys.argv[1:])
