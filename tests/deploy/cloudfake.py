#!/usr/bin/env python3
"""cloudfake.py - stands in for the cloud a node's user data talks to,
so test_userdata.py can run each cloud's templates/node.sh and the
bootstrap behind it on this machine.  Installed under the names the
scripts call:

  aws        `aws secretsmanager get-secret-value --secret-id ARN ...`
             prints the secret; `aws autoscaling
             complete-lifecycle-action ...` is logged with whether the
             node's terraced still ran ($CLOUDFAKE_PIDFILE)
  curl       answered here: EC2's IMDSv2 (token, instance-id,
             autoscaling/target-lifecycle-state from the file
             lifecycle-state), the GCP metadata token and Secret
             Manager, Azure's identity token, Key Vault secrets, the
             VM's name and scheduled events (events.json; a POST is
             logged); each checks the header or token it must carry.
             Any other URL goes to the real curl
  systemctl  `enable --now UNIT` starts the unit's ExecStart with its
             EnvironmentFile, detached (pid in UNIT.pid); the rest
             is only logged

Secrets are files in $CLOUDFAKE_DIR/secrets/NAME (for AWS, NAME is the
ARN's last part); every call is appended to $CLOUDFAKE_DIR/calls.

SPDX-License-Identifier: MPL-2.0
"""
import base64
import json
import os
import re
import subprocess
import sys

DIR = os.environ["CLOUDFAKE_DIR"]
TOKEN = "fake-access-token"


def secret(name):
    with open(os.path.join(DIR, "secrets", name)) as f:
        return f.read()


def log(*words):
    with open(os.path.join(DIR, "calls"), "a") as f:
        f.write(" ".join(words) + "\n")


def running():
    """Whether the node's terraced runs (its pid file's process)."""
    try:
        pid = int(open(os.environ["CLOUDFAKE_PIDFILE"]).read())
        return open("/proc/%d/stat" % pid).read().split()[2] != "Z"
    except (KeyError, OSError, ValueError):
        return False


def state(name, default):
    try:
        with open(os.path.join(DIR, name)) as f:
            return f.read()
    except OSError:
        return default


def aws(args):
    if args[:2] == ["autoscaling", "complete-lifecycle-action"]:
        log("aws complete-lifecycle-action", " ".join(args[2:]),
            "node-running=%s" % running())
        return
    if args[:2] != ["secretsmanager", "get-secret-value"]:
        sys.exit("cloudfake: aws %s not faked" % " ".join(args))
    arn = args[args.index("--secret-id") + 1]
    log("aws", arn)
    sys.stdout.write(secret(arn.rsplit(":", 1)[-1]))


def systemctl(args):
    log("systemctl", *args)
    if args[:2] != ["enable", "--now"]:
        return
    env, cmd = dict(os.environ), None
    with open("/etc/systemd/system/" + args[2]) as f:
        for line in f.read().splitlines():
            key, _, val = line.partition("=")
            if key == "EnvironmentFile":
                with open(val.lstrip("-")) as e:
                    env.update(dict(v.strip().split("=", 1) for v in e
                                    if "=" in v))
            elif key == "ExecStart":
                cmd = val.split()
    with open(os.path.join(DIR, args[2] + ".log"), "a") as out:
        p = subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL,
                             stdout=out, stderr=out, start_new_session=True)
    with open(os.path.join(DIR, args[2] + ".pid"), "w") as f:
        f.write(str(p.pid))


def curl(args):
    url = next((a for a in args if re.match(r"https?://", a)), "")
    headers = [args[i + 1] for i, a in enumerate(args[:-1]) if a == "-H"]
    gcp_token = "computeMetadata/v1/instance/service-accounts/default/token"
    gcp_secret = re.match(r"https://secretmanager\.googleapis\.com/v1/"
                          r"projects/([^/]+)/secrets/([^/]+)/versions/"
                          r"latest:access$", url)
    az_token = url.startswith("http://169.254.169.254/metadata/identity/")
    az_secret = re.match(r"https://vault\.test/secrets/([^?]+)\?", url)
    imds = "http://169.254.169.254/latest/"
    az_md = "http://169.254.169.254/metadata/"
    if url == imds + "api/token":
        if "-X" not in args or "PUT" not in args:
            sys.exit(22)
        print("fake-imds-token", end="")
    elif url.startswith(imds + "meta-data/"):
        if "X-aws-ec2-metadata-token: fake-imds-token" not in headers:
            sys.exit(22)
        item = url[len(imds + "meta-data/"):]
        if item == "instance-id":
            print("i-0123456789", end="")
        elif item == "autoscaling/target-lifecycle-state":
            print(state("lifecycle-state", "InService"), end="")
        else:
            sys.exit(22)
    elif url.startswith(az_md + "instance/compute/name"):
        if "Metadata:true" not in headers:
            sys.exit(22)
        print("terrace-secondaries_0", end="")
    elif url.startswith(az_md + "scheduledevents"):
        if "Metadata:true" not in headers:
            sys.exit(22)
        if "POST" in args:
            log("azure-approve", args[args.index("-d") + 1],
                "node-running=%s" % running())
        else:
            print(state("events.json", '{"Events": []}'))
    elif gcp_token in url:
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
    {"aws": aws, "curl": curl, "systemctl": systemctl}[
        os.path.basename(sys.argv[0])](sys.argv[1:])
