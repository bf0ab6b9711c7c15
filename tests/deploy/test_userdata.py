"""Each cloud's user data, run: the cloud module's templates/node.sh
followed by deploy/node/bootstrap.sh, as the module joins them, with
the settings its user_data.tf passes, for the demo node.  The cloud is
cloudfake.py (aws CLI, metadata servers, Secret Manager, Key Vault);
the node is the real terraced from the build, installed from a
package through the bootstrap.  The scripts write /etc/terrace and
/etc/systemd, so each runs in a mount namespace of its own with a copy
of /etc; the node listens on loopback.

Checked: the node comes up; the admin token the fake secret store
holds is the site admin's (a wrong one is refused); an extra setting
reaches terraced (metrics = off answers 404 where the default serves
loopback); the secret files are mode 0600; on Azure the node serves
the Key Vault certificate (PEM and PFX), read with its identity.

SPDX-License-Identifier: MPL-2.0
"""
import base64
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import time

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from terrace import BUILD, Client, free_port  # noqa: E402

SRC = os.path.abspath(os.environ.get(
    "TERRACE_SRC_DIR", os.path.join(os.path.dirname(__file__), "..", "..")))
HERE = os.path.dirname(os.path.abspath(__file__))
ADMIN = "Adm1nTokenFromTheSecretStore0123456789abcdefXYZ"
JOIN = "J0inTokenFromTheSecretStore0123456789abcdefXYZ"
CLIENT_ID = "00000000-test-client-id"
# settings only the test sets: where to install, supervision
TEST_ONLY = {"TB_PREFIX", "TB_DATA_DIR", "TB_SUPERVISOR"}


def module_keys(cloud):
    """The TB_/TA_/TG_/TZ_ settings the module's user_data.tf sets."""
    with open(os.path.join(SRC, "deploy", cloud, "user_data.tf")) as f:
        return set(re.findall(r"^\s*(T[ABGZ]_[A-Z0-9_]+)\s*=", f.read(),
                              re.M))


def settings(cloud, tmp, listen):
    """What user_data.tf renders for the demo node, for this test."""
    pkg, sha = package(tmp)
    s = {
        "TB_LISTEN": listen, "TB_EXTERNAL_URL": "https://" + listen,
        "TB_INSTALL_FROM": pkg, "TB_SHA256": sha,
        "TB_READY_TIMEOUT": "60", "TB_ROLE": "demo", "TB_INDEX": "1",
        "TB_JOIN_URL": "", "TB_CAPACITY": "", "TB_BLOB_URL": "",
        "TB_SET": "",
        "TB_PREFIX": os.path.join(tmp, "opt"),
        "TB_DATA_DIR": os.path.join(tmp, "data"),
        "TB_SUPERVISOR": "process",
    }
    arn = "arn:aws:secretsmanager:eu-test-1:123456789012:secret:"
    if cloud == "aws":
        s.update({
            "TA_REGION": "eu-test-1", "TA_JOIN_SECRET": arn + "join",
            "TA_ADMIN_SECRET": arn + "admin",
            "TA_PRIMARY_SECRET": arn + "primary",
            "TA_GROUP": "terrace-secondaries", "TA_HOOK": "drain",
            "TA_S3_ACCESS_KEY": "", "TA_VAULT_ROLE_ID": "",
            "TA_VAULT_ADDR": "", "TA_EXTRA_SETTINGS": "metrics=off"})
    elif cloud == "gcp":
        s.update({
            "TG_PROJECT": "test-project", "TG_JOIN_SECRET": "join",
            "TG_ADMIN_SECRET": "admin", "TG_PRIMARY_SECRET": "primary",
            "TG_VAULT_ADDR": "", "TG_VAULT_ROLE_ID": "",
            "TG_EXTRA_SETTINGS": "metrics=off"})
    else:
        s.update({
            "TZ_VAULT_URI": "https://vault.test/", "TZ_JOIN_SECRET": "join",
            "TZ_ADMIN_SECRET": "admin", "TZ_PRIMARY_SECRET": "primary",
            "TZ_CERT_SECRET": "cert", "TZ_CLIENT_ID": CLIENT_ID,
            "TZ_STORAGE_ACCOUNT": "", "TZ_VAULT_ADDR": "",
            "TZ_VAULT_ROLE_ID": "", "TZ_EXTRA_SETTINGS": "metrics=off"})
    return s


def package(tmp):
    stage = os.path.join(tmp, "stage")
    os.makedirs(os.path.join(stage, "bin"))
    for b in ("terraced", "terrace"):
        shutil.copy(os.path.join(BUILD, b), os.path.join(stage, "bin"))
    tgz = os.path.join(tmp, "terrace.tar.gz")
    subprocess.run(["tar", "-czf", tgz, "-C", stage, "."], check=True)
    sha = subprocess.run(["sha256sum", tgz], capture_output=True, text=True,
                         check=True).stdout.split()[0]
    return "file://" + tgz, sha


def user_data(cloud, s):
    """Header, the cloud's node.sh, the bootstrap: as user_data.tf."""
    quoted = "\n".join("%s='%s'" % (k, v.replace("'", "'\\''"))
                       for k, v in s.items())
    parts = [os.path.join(SRC, "deploy", cloud, "templates", "node.sh"),
             os.path.join(SRC, "deploy", "node", "bootstrap.sh")]
    return "\n".join(["#!/bin/bash", quoted] +
                     [open(p).read() for p in parts])


def certificate(tmp, listen, form):
    """A certificate for the node's address, as Key Vault returns a
    certificate's secret (PEM: key then certificate; PFX: base64)."""
    ip = listen.split(":")[0]
    key, crt = os.path.join(tmp, "kv.key"), os.path.join(tmp, "kv.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec",
                    "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                    "-keyout", key, "-out", crt, "-days", "2",
                    "-subj", "/CN=" + ip, "-addext",
                    "subjectAltName=IP:" + ip],
                   check=True, capture_output=True)
    if form == "pem":
        return open(key).read() + open(crt).read(), crt
    pfx = os.path.join(tmp, "kv.pfx")
    subprocess.run(["openssl", "pkcs12", "-export", "-inkey", key,
                    "-in", crt, "-out", pfx, "-passout", "pass:"],
                   check=True, capture_output=True)
    return base64.b64encode(open(pfx, "rb").read()).decode(), crt


@pytest.mark.parametrize("cloud,form", [("aws", None), ("gcp", None),
                                        ("azure", "pem"), ("azure", "pfx")])
def test_demo_node_user_data(tmp_path, cloud, form):
    tmp = str(tmp_path)
    listen = "127.0.0.1:%d" % free_port()
    s = settings(cloud, tmp, listen)
    # the test passes exactly what the module's user_data.tf sets
    assert module_keys(cloud) == set(s) - TEST_ONLY, \
        "user_data.tf and this test set different settings"

    fake = os.path.join(tmp, "fake")
    os.makedirs(os.path.join(fake, "secrets"))
    os.makedirs(os.path.join(fake, "bin"))
    for name in ("aws", "curl"):
        os.symlink(os.path.join(HERE, "cloudfake.py"),
                   os.path.join(fake, "bin", name))
    secrets = {"join": JOIN, "admin": ADMIN,
               "primary": '{"kek": "", "database_url": "", '
                          '"aws_secret_access_key": "", '
                          '"storage_account_key": "", '
                          '"vault_token": "", "vault_secret_id": ""}'}
    ca = None
    if cloud == "azure":
        secrets["cert"], ca = certificate(tmp, listen, form)
    for k, v in secrets.items():
        with open(os.path.join(fake, "secrets", k), "w") as f:
            f.write(v)
    script = os.path.join(tmp, "user-data.sh")
    with open(script, "w") as f:
        f.write(user_data(cloud, s))

    # a namespace with a copy of /etc and its own /usr/local/sbin
    etc, sbin = os.path.join(tmp, "etc"), os.path.join(tmp, "sbin")
    subprocess.run(["cp", "-a", "/etc", etc], check=True)
    os.makedirs(sbin)
    env = dict(os.environ, CLOUDFAKE_DIR=fake, CLOUDFAKE_CLIENT_ID=CLIENT_ID,
               PATH=os.path.join(fake, "bin") + ":" + os.environ["PATH"])
    for k in [k for k in env if k.startswith("TB_")]:
        del env[k]
    pidfile = os.path.join(tmp, "data", "terraced.pid")
    try:
        r = subprocess.run(
            ["unshare", "-m", "--propagation", "private", "bash", "-c",
             'mount --bind "$1" /etc && mount --bind "$2" /usr/local/sbin '
             '&& exec bash "$3"', "ns", etc, sbin, script],
            env=env, capture_output=True, text=True, timeout=240)
        assert r.returncode == 0, r.stdout + r.stderr
        assert "demo is ready" in r.stderr, r.stderr
        pid = int(open(pidfile).read())
        root = "/proc/%d/root" % pid

        if ca is None:
            ca = os.path.join(tmp, "data", "tls", "ca.pem")
        # on Azure this also proves the node serves the Key Vault
        # certificate: the client trusts that one alone
        c = Client("https://" + listen, ca, token=ADMIN)
        assert c.get("/api/v2/account/details").status == 200
        assert c.get("/api/v2/account/details",
                     token=ADMIN[:-1] + "Q").status == 401
        assert c.get("/metrics", token=None).status == 404

        for f in ("admin-token", "join-token"):
            p = os.path.join(root, "etc", "terrace", f)
            assert stat.S_IMODE(os.stat(p).st_mode) == 0o600, f
        assert not os.path.exists(os.path.join(root, "etc", "terrace",
                                               "primary.json"))
        calls = open(os.path.join(fake, "calls")).read()
        want = {"aws": "aws " + s.get("TA_ADMIN_SECRET", ""),
                "gcp": "gcp-secret test-project admin",
                "azure": "azure-secret admin"}[cloud]
        assert want in calls, calls
    finally:
        try:
            pid = int(open(pidfile).read())
            os.kill(pid, signal.SIGTERM)
            for _ in range(300):
                if not os.path.exists("/proc/%d" % pid) or open(
                        "/proc/%d/stat" % pid).read().split()[2] == "Z":
                    break
                time.sleep(0.1)
            else:
                os.kill(pid, signal.SIGKILL)
        except (OSError, ValueError):
            pass
