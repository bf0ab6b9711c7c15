"""Each cloud's user data, run: the cloud module's templates/node.sh
followed by deploy/node/bootstrap.sh, as user_data.tf joins them, with
the settings user_data.tf passes.  The cloud is cloudfake.py (aws CLI,
metadata servers, Secret Manager, Key Vault, systemctl); the nodes are
the real terraced from the build, installed from a package through
the bootstrap.  The scripts write /etc, /opt and /usr/local/sbin, so
each node runs in a mount namespace of its own (a machine of its own)
with a copy of /etc; nodes listen on loopback.

test_demo_node: the demo comes up; the admin token the fake secret
store holds is the site admin's (a wrong one is refused); an extra
setting reaches terraced (metrics = off answers 404 where the default
serves loopback); the secret files are mode 0600; on Azure the node
serves the Key Vault certificate (PEM and PFX), read with its
identity.

test_primary_with_vault: a primary whose key-encryption key is in
Vault's transit engine (tests/lib/fake_transit.py), with a token or
AppRole secret id from the secret store: it comes up with the right
one and refuses to start with a wrong one.

test_primary_and_secondary: a primary on PostgreSQL with the
database URL, key and join token from the secret store; a secondary
joins it with the join token it reads; then the cloud removes the
secondary (AWS: lifecycle state Terminated; GCP: the template's
shutdown script; Azure: a Terminate scheduled event): it must drain
and leave before the termination goes on.

SPDX-License-Identifier: MPL-2.0
"""
import base64
import json
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from terrace import BUILD, Client, free_port  # noqa: E402

SRC = os.path.abspath(os.environ.get(
    "TERRACE_SRC_DIR", os.path.join(os.path.dirname(__file__), "..", "..")))
HERE = os.path.dirname(os.path.abspath(__file__))
ADMIN = "Adm1nTokenFromTheSecretStore0123456789abcdefXYZ"
JOIN = "J0inTokenFromTheSecretStore0123456789abcdefXYZ"
KEK = "0f" * 32
CLIENT_ID = "00000000-test-client-id"
ARN = "arn:aws:secretsmanager:eu-test-1:123456789012:secret:"
# settings only the test sets: the data directory (a VM's default is
# /var/lib/terrace/NAME), supervision, and a certificate for loopback
# with its CA (on a cloud the balancer's certificate is a public CA's
# and nodes listen on every address)
TEST_ONLY = {"TB_DATA_DIR", "TB_SUPERVISOR", "TB_CA_FILE", "TB_TLS_CERT",
             "TB_TLS_KEY"}


def module_keys(cloud):
    """The TB_/TA_/TG_/TZ_ settings the module's user_data.tf sets."""
    with open(os.path.join(SRC, "deploy", cloud, "user_data.tf")) as f:
        return set(re.findall(r"^\s*(T[ABGZ]_[A-Z0-9_]+)\s*=", f.read(),
                              re.M))


def package(tmp):
    """The release layout (bin/, share/terrace/) as a tarball."""
    stage = os.path.join(tmp, "stage")
    os.makedirs(os.path.join(stage, "bin"))
    os.makedirs(os.path.join(stage, "share", "terrace"))
    for b in ("terraced", "terrace"):
        shutil.copy(os.path.join(BUILD, b), os.path.join(stage, "bin"))
    for d in ("node", "systemd"):
        shutil.copytree(os.path.join(SRC, "deploy", d),
                        os.path.join(stage, "share", "terrace", d))
    tgz = os.path.join(tmp, "terrace.tar.gz")
    subprocess.run(["tar", "-czf", tgz, "-C", stage, "."], check=True)
    sha = subprocess.run(["sha256sum", tgz], capture_output=True, text=True,
                         check=True).stdout.split()[0]
    return "file://" + tgz, sha


def settings(cloud, pkg, role, listen, data, app_url, extra=""):
    """What user_data.tf renders for a node of this role."""
    s = {
        "TB_LISTEN": listen, "TB_EXTERNAL_URL": app_url,
        "TB_INSTALL_FROM": pkg[0], "TB_SHA256": pkg[1],
        "TB_READY_TIMEOUT": "60", "TB_ROLE": role,
        "TB_INDEX": "" if role == "secondary" else "1",
        "TB_JOIN_URL": app_url if role == "secondary" else "",
        "TB_CAPACITY": "1" if role == "secondary" else "",
        "TB_BLOB_URL": "", "TB_SET": "", "TB_VAULT_ADDR": "",
        "TB_VAULT_KEY": "",
        "TB_DATA_DIR": data, "TB_SUPERVISOR": "process",
    }
    if cloud == "aws":
        s.update({
            "TA_REGION": "eu-test-1", "TA_JOIN_SECRET": ARN + "join",
            "TA_ADMIN_SECRET": ARN + "admin",
            "TA_PRIMARY_SECRET": ARN + "primary",
            "TA_GROUP": "terrace-secondaries", "TA_HOOK": "drain",
            "TA_S3_ACCESS_KEY": "", "TA_VAULT_ROLE_ID": "",
            "TA_VAULT_ADDR": "", "TA_EXTRA_SETTINGS": extra})
    elif cloud == "gcp":
        s.update({
            "TG_PROJECT": "test-project", "TG_JOIN_SECRET": "join",
            "TG_ADMIN_SECRET": "admin", "TG_PRIMARY_SECRET": "primary",
            "TG_VAULT_ADDR": "", "TG_VAULT_ROLE_ID": "",
            "TG_EXTRA_SETTINGS": extra})
    else:
        s.update({
            "TZ_VAULT_URI": "https://vault.test/", "TZ_JOIN_SECRET": "join",
            "TZ_ADMIN_SECRET": "admin", "TZ_PRIMARY_SECRET": "primary",
            "TZ_CERT_SECRET": "cert", "TZ_CLIENT_ID": CLIENT_ID,
            "TZ_STORAGE_ACCOUNT": "", "TZ_VAULT_ADDR": "",
            "TZ_VAULT_ROLE_ID": "", "TZ_EXTRA_SETTINGS": extra})
    # the test passes exactly what the module's user_data.tf sets
    assert module_keys(cloud) == set(s) - TEST_ONLY, \
        "user_data.tf and this test set different settings"
    return s


def certificate(tmp, ip, form):
    """A certificate for ip, as Key Vault returns a certificate's
    secret (PEM: key then certificate; PFX: base64); and its file."""
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


class Cloud:
    """The fake cloud: secrets, call log, fake commands."""

    def __init__(self, tmp, secrets):
        self.dir = os.path.join(tmp, "cloud")
        os.makedirs(os.path.join(self.dir, "secrets"))
        self.bin = os.path.join(self.dir, "bin")
        os.makedirs(self.bin)
        for name in ("aws", "curl", "systemctl"):
            os.symlink(os.path.join(HERE, "cloudfake.py"),
                       os.path.join(self.bin, name))
        for k, v in secrets.items():
            with open(os.path.join(self.dir, "secrets", k), "w") as f:
                f.write(v)

    def calls(self):
        try:
            return open(os.path.join(self.dir, "calls")).read()
        except OSError:
            return ""

    def write(self, name, text):
        with open(os.path.join(self.dir, name + ".tmp"), "w") as f:
            f.write(text)
        os.rename(os.path.join(self.dir, name + ".tmp"),
                  os.path.join(self.dir, name))


class Machine:
    """One VM: its own /etc, /opt and /usr/local/sbin (a mount
    namespace), booting the user data of a cloud module."""

    def __init__(self, tmp, name, cloud, s):
        self.root = os.path.join(tmp, name)
        self.data = s["TB_DATA_DIR"]
        self.cloud = cloud
        os.makedirs(self.root)
        subprocess.run(["cp", "-a", "/etc", os.path.join(self.root, "etc")],
                       check=True)
        for d in ("opt", "sbin"):
            os.makedirs(os.path.join(self.root, d))
        quoted = "\n".join("%s='%s'" % (k, v.replace("'", "'\\''"))
                           for k, v in s.items())
        parts = [os.path.join(SRC, "deploy", cloud_name(s), "templates",
                              "node.sh"),
                 os.path.join(SRC, "deploy", "node", "bootstrap.sh")]
        self.script = os.path.join(self.root, "user-data.sh")
        with open(self.script, "w") as f:
            f.write("\n".join(["#!/bin/bash", quoted] +
                              [open(p).read() for p in parts]))

    def env(self):
        env = dict(os.environ, CLOUDFAKE_DIR=self.cloud.dir,
                   CLOUDFAKE_CLIENT_ID=CLIENT_ID,
                   CLOUDFAKE_PIDFILE=os.path.join(self.data, "terraced.pid"),
                   PATH=self.cloud.bin + ":" + os.environ["PATH"])
        for k in [k for k in env if k.startswith("TB_")]:
            del env[k]
        return env

    def boot(self):
        return subprocess.run(
            ["unshare", "-m", "--propagation", "private", "bash", "-c",
             'mount --bind "$1/etc" /etc && mount --bind "$1/opt" /opt && '
             'mount --bind "$1/sbin" /usr/local/sbin && exec bash "$2"',
             "ns", self.root, self.script],
            env=self.env(), capture_output=True, text=True, timeout=300)

    def pid(self):
        try:
            pid = int(open(os.path.join(self.data, "terraced.pid")).read())
            if open("/proc/%d/stat" % pid).read().split()[2] != "Z":
                return pid
        except (OSError, ValueError):
            pass
        return None

    def run(self, script):
        """A script inside the machine (the node's namespace)."""
        return subprocess.run(
            ["nsenter", "-t", str(self.pid()), "-m", "bash", "-c", script],
            env=self.env(), capture_output=True, text=True, timeout=120)

    def stop(self):
        pid = self.pid()
        if pid is None:
            return
        os.kill(pid, signal.SIGTERM)
        for _ in range(300):
            if self.pid() is None:
                return
            time.sleep(0.1)
        os.kill(pid, signal.SIGKILL)


def cloud_name(s):
    return {"TA_": "aws", "TG_": "gcp", "TZ_": "azure"}[
        next(k[:3] for k in s if k[:3] in ("TA_", "TG_", "TZ_"))]


def primary_secret(database_url="", kek="", vault_token="",
                   vault_secret_id=""):
    return json.dumps({"kek": kek, "database_url": database_url,
                       "aws_secret_access_key": "",
                       "storage_account_key": "",
                       "vault_token": vault_token,
                       "vault_secret_id": vault_secret_id})


@pytest.mark.parametrize("cloud,form", [("aws", None), ("gcp", None),
                                        ("azure", "pem"), ("azure", "pfx")])
def test_demo_node(tmp_path, cloud, form):
    tmp = str(tmp_path)
    listen = "127.0.0.1:%d" % free_port()
    secrets = {"join": JOIN, "admin": ADMIN, "primary": primary_secret()}
    ca = None
    if cloud == "azure":
        secrets["cert"], ca = certificate(tmp, "127.0.0.1", form)
    fake = Cloud(tmp, secrets)
    data = os.path.join(tmp, "data")
    m = Machine(tmp, "demo", fake, settings(
        cloud, package(tmp), "demo", listen, data, "https://" + listen,
        extra="metrics=off"))
    try:
        r = m.boot()
        assert r.returncode == 0, r.stdout + r.stderr
        assert "demo is ready" in r.stderr, r.stderr

        # on Azure this also proves the node serves the Key Vault
        # certificate: the client trusts that one alone
        c = Client("https://" + listen,
                   ca or os.path.join(data, "tls", "ca.pem"), token=ADMIN)
        assert c.get("/api/v2/account/details").status == 200
        assert c.get("/api/v2/account/details",
                     token=ADMIN[:-1] + "Q").status == 401
        assert c.get("/metrics", token=None).status == 404

        etc = "/proc/%d/root/etc/terrace" % m.pid()
        for f in ("admin-token", "join-token"):
            mode = stat.S_IMODE(os.stat(os.path.join(etc, f)).st_mode)
            assert mode == 0o600, f
        assert not os.path.exists(os.path.join(etc, "primary.json"))
        want = {"aws": "aws " + ARN + "admin",
                "gcp": "gcp-secret test-project admin",
                "azure": "azure-secret admin"}[cloud]
        assert want in fake.calls(), fake.calls()
    finally:
        m.stop()


@pytest.fixture
def postgres():
    d = tempfile.mkdtemp(prefix="terrace-ud-pg-")
    os.chmod(d, 0o711)
    r = subprocess.run(["bash", os.path.join(SRC, "tests/lib/pg.sh"),
                        "start", os.path.join(d, "pg")],
                       capture_output=True, text=True)
    if r.returncode == 77:
        shutil.rmtree(d)
        pytest.skip("PostgreSQL server not installed")
    assert r.returncode == 0, r.stderr
    yield r.stdout.strip(), d
    subprocess.call(["bash", os.path.join(SRC, "tests/lib/pg.sh"), "stop",
                     os.path.join(d, "pg")])
    shutil.rmtree(d, ignore_errors=True)


def wait_for(what, pred, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(0.2)
    raise AssertionError("timed out waiting for " + what)


@pytest.mark.parametrize("cloud", ["aws", "gcp", "azure"])
def test_primary_and_secondary(tmp_path, postgres, cloud):
    tmp = str(tmp_path)
    dburl, pgdir = postgres
    blobs = os.path.join(pgdir, "blobs")
    plisten = "127.0.0.1:%d" % free_port()
    app = "https://" + plisten  # the primary stands in for the balancer
    secrets = {"join": JOIN, "admin": ADMIN,
               "primary": primary_secret(dburl, KEK)}
    # one certificate for 127.0.0.1 for every node (Azure's primary
    # reads it from Key Vault), and the CA the secondary trusts
    secrets["cert"], ca = certificate(tmp, "127.0.0.1", "pem")
    tls = {"TB_TLS_CERT": ca, "TB_TLS_KEY": os.path.join(tmp, "kv.key")}
    fake = Cloud(tmp, secrets)
    pkg = package(tmp)
    ps = settings(cloud, pkg, "primary", plisten,
                  os.path.join(tmp, "p-data"), app)
    ps["TB_BLOB_URL"] = "file://" + blobs
    if cloud != "azure":
        ps.update(tls)
    primary = Machine(tmp, "primary", fake, ps)
    secondary = None
    try:
        r = primary.boot()
        assert r.returncode == 0, r.stdout + r.stderr
        c = Client(app, ca, token=ADMIN)
        # the key and join token are the secret store's
        etc = "/proc/%d/root/etc/terrace" % primary.pid()
        assert open(os.path.join(etc, "kek")).read() == KEK
        body = c.get("/api/v2/admin/join-token")
        assert body.status == 200, body.body
        assert JOIN in body.body.decode()

        ss = settings(cloud, pkg, "secondary",
                      "127.0.0.1:%d" % free_port(),
                      os.path.join(tmp, "s-data"), app)
        ss.update(tls, TB_CA_FILE=ca)
        secondary = Machine(tmp, "secondary", fake, ss)
        r = secondary.boot()
        assert r.returncode == 0, r.stdout + r.stderr
        assert "secondary is ready" in r.stderr, r.stderr
        assert not os.path.exists("/proc/%d/root/etc/terrace/primary.json"
                                  % secondary.pid())

        def secondaries(state):
            b = c.get("/api/v2/admin/nodes?filter[role]=secondary"
                      "&filter[state]=" + state)
            assert b.status == 200, b.body
            return json.loads(b.body)["data"]
        assert len(wait_for("the secondary to join",
                            lambda: secondaries("active"))) == 1

        # the cloud removes the secondary
        if cloud == "aws":
            fake.write("lifecycle-state", "Terminated")
            line = wait_for("the lifecycle action", lambda: [
                x for x in fake.calls().splitlines()
                if x.startswith("aws complete-lifecycle-action")])[0]
            assert "--auto-scaling-group-name terrace-secondaries" in line
            assert "--lifecycle-hook-name drain" in line
            assert "--instance-id i-0123456789" in line
            assert "node-running=False" in line, line
        elif cloud == "gcp":
            with open(os.path.join(SRC, "deploy", "gcp",
                                   "secondaries.tf")) as f:
                script = re.search(r'shutdown-script\s*=\s*"(.*)"',
                                   f.read()).group(1)
            r = secondary.run(script.replace("\\n", "\n"))
            assert r.returncode == 0, r.stdout + r.stderr
            assert secondary.pid() is None
        else:
            fake.write("events.json", json.dumps({"Events": [{
                "EventId": "E1", "EventType": "Terminate",
                "Resources": ["terrace-secondaries_0"]}]}))
            line = wait_for("the event's approval", lambda: [
                x for x in fake.calls().splitlines()
                if x.startswith("azure-approve")])[0]
            assert '"EventId": "E1"' in line, line
            assert "node-running=False" in line, line
        assert len(wait_for("the secondary to leave",
                            lambda: secondaries("gone"))) == 1
    finally:
        for name in ("terrace-drain-watch.service.pid",):
            try:
                pid = int(open(os.path.join(fake.dir, name)).read())
                os.kill(pid, signal.SIGKILL)
            except (OSError, ValueError):
                pass
        if secondary is not None:
            secondary.stop()
        primary.stop()


@pytest.fixture
def transit():
    """fake_transit.py on loopback with the key "terrace"."""
    port = free_port()
    p = subprocess.Popen(
        [sys.executable, os.path.join(SRC, "tests/lib/fake_transit.py"),
         str(port), "root-token", "role-id-1", "secret-id-1"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    addr = "http://127.0.0.1:%d" % port
    try:
        import urllib.request
        for _ in range(100):
            try:
                urllib.request.urlopen(addr + "/v1/sys/health", timeout=1)
                break
            except OSError:
                time.sleep(0.1)
        req = urllib.request.Request(
            addr + "/v1/transit/keys/terrace", method="POST",
            data=b'{"type": "aes256-gcm96"}',
            headers={"X-Vault-Token": "root-token",
                     "Content-Type": "application/json"})
        urllib.request.urlopen(req, timeout=5)
        yield addr
    finally:
        p.terminate()
        p.wait(timeout=10)


@pytest.mark.parametrize("cloud,auth,good", [("aws", "approle", True),
                                             ("gcp", "token", True),
                                             ("azure", "token", False)])
def test_primary_with_vault(tmp_path, postgres, transit, cloud, auth, good):
    tmp = str(tmp_path)
    dburl, pgdir = postgres
    listen = "127.0.0.1:%d" % free_port()
    cred = ("" if good else "not-") + \
        ("secret-id-1" if auth == "approle" else "root-token")
    secrets = {"join": JOIN, "admin": ADMIN, "primary": primary_secret(
        dburl, KEK, vault_token=cred if auth == "token" else "",
        vault_secret_id=cred if auth == "approle" else "")}
    secrets["cert"], ca = certificate(tmp, "127.0.0.1", "pem")
    fake = Cloud(tmp, secrets)
    s = settings(cloud, package(tmp), "primary", listen,
                 os.path.join(tmp, "data"), "https://" + listen)
    prefix = {"aws": "TA_", "gcp": "TG_", "azure": "TZ_"}[cloud]
    # as user_data.tf renders vault_addr, vault_key and vault_role_id
    s.update({"TB_BLOB_URL": "file://" + os.path.join(pgdir, "blobs"),
              "TB_VAULT_ADDR": transit, "TB_VAULT_KEY": "terrace",
              prefix + "VAULT_ADDR": transit,
              prefix + "VAULT_ROLE_ID":
                  "role-id-1" if auth == "approle" else ""})
    if cloud != "azure":
        s.update({"TB_TLS_CERT": ca,
                  "TB_TLS_KEY": os.path.join(tmp, "kv.key")})
    m = Machine(tmp, "primary", fake, s)
    try:
        r = m.boot()
        if not good:
            assert r.returncode == 1, r.stdout + r.stderr
            assert "vault" in r.stderr.lower(), r.stderr
            assert m.pid() is None
            return
        assert r.returncode == 0, r.stdout + r.stderr
        c = Client("https://" + listen, ca, token=ADMIN)
        assert c.get("/api/v2/account/details").status == 200
    finally:
        m.stop()
