"""deploy/local end to end, with the real tofu on both sides: tofu
applies the module (three primaries, PostgreSQL, HAProxy, secondaries,
every node through deploy/node/bootstrap.sh), a remote `tofu apply`
goes through the load balancer, re-applies scale the secondaries
2 -> 4 -> 1 (the last while a remote apply runs, which must still end
applied), `tofu destroy` must leave no process or listening port, and
external_services = false brings up the demo, which takes a remote run
and is then switched to a cluster.

The module is copied with deploy/node and deploy/systemd into a
temporary directory, so the checkout gets no state; each deployment
uses loopback addresses and a port picked for this run.

SPDX-License-Identifier: MPL-2.0
"""
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
import uuid

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from terrace import BUILD, Client, free_port  # noqa: E402

SRC = os.environ.get("TERRACE_SRC_DIR",
                     os.path.join(os.path.dirname(__file__), "..", ".."))
TOFU_BIN = os.environ["TOFU_BIN"]
ANSI = re.compile(r"\x1b\[[0-9;]*m")
SANITIZER = re.compile(r"AddressSanitizer|LeakSanitizer|runtime error:|"
                       r"UndefinedBehaviorSanitizer")


def base_env(home):
    cfg = os.path.join(home, "empty.tfrc")
    open(cfg, "a").close()
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin") + ":/usr/sbin:/sbin",
        "HOME": home,
        "TF_CLI_CONFIG_FILE": cfg,
        "TF_IN_AUTOMATION": "1",
        "CHECKPOINT_DISABLE": "1",
        "TERRACE_CACHE": os.environ.get(
            "TERRACE_CACHE",
            os.path.join(os.path.expanduser("~"), ".cache", "terrace")),
    }


class Deployment:
    """One copy of deploy/local, its state and its inputs."""

    def __init__(self, external=True):
        self.tmp = tempfile.mkdtemp(prefix="terrace-deploy-")
        os.chmod(self.tmp, 0o711)  # the postgres user reaches run/pg
        shutil.copytree(os.path.join(SRC, "deploy"),
                        os.path.join(self.tmp, "deploy"),
                        ignore=shutil.ignore_patterns(
                            ".terraform*", ".terrace-local", "*.tfstate*"))
        self.mod = os.path.join(self.tmp, "deploy", "local")
        self.work = os.path.join(self.tmp, "run")
        self.home = os.path.join(self.tmp, "home")
        os.mkdir(self.home)
        net = random.randrange(100, 250)
        self.prim = "127.%d.1" % net
        self.sec = "127.%d.2" % net
        self.lb = "127.0.0.1:%d" % free_port()
        self.external = external
        self.outputs = {}
        self.tofu("init", "-input=false")

    def args(self, count):
        v = {"work_dir": self.work, "terrace_build_dir": BUILD,
             "tofu_bin": TOFU_BIN, "lb_listen": self.lb,
             "primary_address_prefix": self.prim,
             "secondary_address_prefix": self.sec,
             "secondary_count": count,
             "external_services": "true" if self.external else "false"}
        out = ["-state=" + os.path.join(self.tmp, "terraform.tfstate")]
        for k, val in v.items():
            out += ["-var", "%s=%s" % (k, val)]
        return out

    def tofu(self, *args, timeout=200):
        r = subprocess.run([TOFU_BIN, "-chdir=" + self.mod] + list(args),
                           env=base_env(self.home), capture_output=True,
                           text=True, timeout=timeout)
        out = ANSI.sub("", r.stdout + r.stderr)
        assert r.returncode == 0, "tofu %s: rc=%d\n%s\n%s" % (
            args[0], r.returncode, out[-6000:], self.logs())
        return out

    def apply(self, count):
        out = self.tofu("apply", "-auto-approve", "-input=false",
                        "-no-color", *self.args(count))
        o = self.tofu("output", "-json", "-state=" +
                      os.path.join(self.tmp, "terraform.tfstate"))
        self.outputs = {k: v["value"] for k, v in json.loads(o).items()}
        return out

    def destroy(self, count):
        return self.tofu("destroy", "-auto-approve", "-input=false",
                         "-no-color", *self.args(count))

    def client(self):
        with open(self.outputs["admin_token_file"]) as f:
            token = f.read().strip()
        return Client(self.outputs["application_url"],
                      self.outputs["ca_cert_file"], token)

    def log_files(self):
        found = []
        for root, _, files in os.walk(self.work):
            found += [os.path.join(root, f) for f in files
                      if f.endswith(".log") and "/blobs" not in root
                      and "/pg" not in root]
        return found

    def logs(self, tail=40):
        parts = []
        for p in self.log_files():
            with open(p, errors="replace") as f:
                parts.append("== %s\n%s" % (
                    p, "".join(f.readlines()[-tail:])))
        return "\n".join(parts)

    def sanitizer_lines(self):
        bad = []
        for p in self.log_files():
            with open(p, errors="replace") as f:
                bad += [p + ": " + ln for ln in f if SANITIZER.search(ln)]
        return bad

    def processes(self):
        """Processes whose command line or environment names the
        deployment's directory."""
        left = []
        key = self.work.encode()
        for pid in os.listdir("/proc"):
            if not pid.isdigit() or int(pid) == os.getpid():
                continue
            for what in ("cmdline", "environ"):
                try:
                    with open("/proc/%s/%s" % (pid, what), "rb") as f:
                        if key in f.read():
                            left.append(pid)
                            break
                except OSError:
                    pass
        return left

    def ports(self):
        r = subprocess.run(["ss", "-ltnH"], capture_output=True, text=True)
        return [ln for ln in r.stdout.splitlines()
                if self.prim + "." in ln or self.sec + "." in ln
                or self.lb in ln]

    def close(self):
        if self.processes():
            subprocess.run([TOFU_BIN, "-chdir=" + self.mod, "destroy",
                            "-auto-approve", "-input=false"] + self.args(0),
                           env=base_env(self.home), capture_output=True,
                           timeout=120)
        shutil.rmtree(self.tmp, ignore_errors=True)


def remote_tofu(dep, wd, *args, background=False):
    env = base_env(wd)
    env.update({
        "TF_CLI_CONFIG_FILE": dep.outputs["tofu_cli_config_file"],
        "SSL_CERT_FILE": dep.outputs["ca_cert_file"],
        # Go never proxies loopback; anything else hits a dead port
        "HTTPS_PROXY": "http://127.0.0.1:9",
        "HTTP_PROXY": "http://127.0.0.1:9",
        "NO_PROXY": "",
    })
    cmd = [TOFU_BIN] + list(args)
    if background:
        return subprocess.Popen(cmd, cwd=wd, env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True)
    r = subprocess.run(cmd, cwd=wd, env=env, capture_output=True, text=True,
                       timeout=150)
    out = ANSI.sub("", r.stdout + r.stderr)
    assert r.returncode == 0, "remote tofu %s: rc=%d\n%s\n%s" % (
        args[0], r.returncode, out, dep.logs())
    return out


def new_org(c):
    org = "org-" + uuid.uuid4().hex[:8]
    r = c.post("/api/v2/organizations", {"data": {
        "type": "organizations",
        "attributes": {"name": org, "email": "deploy@example.com"}}})
    assert r.status == 201, r
    return org


def write_config(dep, wd, org, ws, body):
    host = dep.outputs["application_url"].split("://", 1)[1]
    os.makedirs(wd, exist_ok=True)
    with open(os.path.join(wd, "main.tf"), "w") as f:
        f.write('terraform {\n  cloud {\n    hostname = "%s"\n'
                '    organization = "%s"\n'
                '    workspaces { name = "%s" }\n  }\n}\n%s' %
                (host, org, ws, body))


def secondaries(c):
    r = c.get("/api/v2/admin/nodes?filter[role]=secondary&filter[state]=active")
    assert r.status == 200, r
    return sorted(n["attributes"]["address"] for n in r.json["data"])


def wait_for(what, fn, timeout):
    end = time.monotonic() + timeout
    while True:
        v = fn()
        if v:
            return v
        assert time.monotonic() < end, "timed out waiting for " + what
        time.sleep(0.5)


@pytest.fixture(scope="module")
def cluster():
    dep = Deployment()
    yield dep
    dep.close()


def test_apply_two_secondaries_and_a_remote_run(cluster):
    dep = cluster
    dep.apply(2)
    for k in ("application_url", "health_check_url", "ca_cert_file",
              "admin_token_file", "tofu_cli_config_file"):
        assert k in dep.outputs, dep.outputs
    assert oct(os.stat(dep.outputs["admin_token_file"]).st_mode & 0o777) \
        == "0o600"
    c = dep.client()
    r = c.get(dep.outputs["health_check_url"], token=None)
    assert r.status == 200 and r.json["ready"] is True, r
    want = ["%s.%d" % (dep.sec, i) for i in (1, 2)]
    assert wait_for("2 secondaries",
                    lambda: secondaries(c) == want and want, 30), \
        secondaries(c)
    org = new_org(c)
    wd = os.path.join(dep.tmp, "remote")
    write_config(dep, wd, org, "ws", 'resource "terraform_data" "x" '
                 '{ input = "through-the-lb" }\n'
                 'output "v" { value = terraform_data.x.input }\n')
    remote_tofu(dep, wd, "init", "-input=false")
    out = remote_tofu(dep, wd, "apply", "-auto-approve", "-input=false")
    assert 'v = "through-the-lb"' in out, out
    dep.org = org


def test_scale_out_to_four(cluster):
    dep = cluster
    dep.apply(4)
    c = dep.client()
    want = ["%s.%d" % (dep.sec, i) for i in (1, 2, 3, 4)]
    got = wait_for("4 secondaries",
                   lambda: secondaries(c) == want and want, 30)
    assert got == want


def busy_secondaries(c):
    """address -> running jobs, for the active secondaries."""
    r = c.get("/api/v2/admin/nodes?filter[role]=secondary"
              "&filter[state]=active")
    assert r.status == 200, r
    return {n["attributes"]["address"]: n["attributes"]["running-jobs"]
            for n in r.json["data"]}


def test_scale_in_while_applies_run(cluster):
    # three applies of 20 s each on four secondaries of capacity 2:
    # at most two fit on secondary 1, so at least one runs on a node
    # the scale-in to 1 removes, and the re-apply must wait for it
    dep = cluster
    c = dep.client()
    org = new_org(c)
    procs, runs = [], {}
    body = ('resource "terraform_data" "slow" {\n'
            '  provisioner "local-exec" { command = "sleep 20" }\n}\n')
    try:
        for i in range(3):
            wd = os.path.join(dep.tmp, "slow%d" % i)
            write_config(dep, wd, org, "slow%d" % i, body)
            remote_tofu(dep, wd, "init", "-input=false")
            procs.append(remote_tofu(dep, wd, "apply", "-auto-approve",
                                     "-input=false", background=True))

        def all_applying():
            for i in range(3):
                ws = c.get("/api/v2/organizations/%s/workspaces/slow%d" %
                           (org, i))
                if ws.status != 200:
                    return None
                r = c.get("/api/v2/workspaces/%s/runs" %
                          ws.json["data"]["id"])
                d = r.json["data"] if r.status == 200 else []
                if not d or d[0]["attributes"]["status"] != "applying":
                    return None
                runs[i] = d[0]["id"]
            return True
        wait_for("three runs applying", all_applying, 120)
        # the registry counts a node's jobs at its next heartbeat
        busy = wait_for("the registry to count the three jobs",
                        lambda: (lambda b: b if sum(b.values()) >= 3
                                 else None)(busy_secondaries(c)), 30)
        kept = "%s.1" % dep.sec
        on_removed = sum(n for a, n in busy.items() if a != kept)
        print("running jobs per secondary:", busy)
        assert on_removed >= 1, busy
        t0 = time.monotonic()
        dep.apply(1)
        took = time.monotonic() - t0
        print("scale-in took %.1f s" % took)
        # the drained nodes' applies ended before their nodes went
        done = [i for i in runs if c.get("/api/v2/runs/" + runs[i]).json[
            "data"]["attributes"]["status"] == "applied"]
        assert len(done) >= on_removed, (busy, done)
        for p in procs:
            out, _ = p.communicate(timeout=120)
            assert p.returncode == 0, ANSI.sub("", out) + dep.logs()
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    for i in runs:
        r = c.get("/api/v2/runs/" + runs[i])
        assert r.json["data"]["attributes"]["status"] == "applied", r
    assert secondaries(c) == [kept]
    assert not dep.sanitizer_lines(), dep.sanitizer_lines()


def test_destroy_leaves_nothing(cluster):
    dep = cluster
    assert dep.processes(), "nothing runs before destroy"
    assert not dep.sanitizer_lines(), dep.sanitizer_lines()
    dep.destroy(1)
    assert dep.processes() == [], dep.processes()
    assert dep.ports() == [], dep.ports()
    assert not os.path.exists(dep.work)


def test_demo_takes_a_remote_run_then_becomes_a_cluster():
    dep = Deployment(external=False)
    try:
        dep.apply(0)
        c = dep.client()
        r = c.get(dep.outputs["health_check_url"], token=None)
        assert r.status == 200, r
        assert r.json["role"] == "demo", r
        org = new_org(c)
        wd = os.path.join(dep.tmp, "remote")
        write_config(dep, wd, org, "ws", 'resource "terraform_data" "x" '
                     '{ input = "demo" }\n'
                     'output "v" { value = terraform_data.x.input }\n')
        remote_tofu(dep, wd, "init", "-input=false")
        out = remote_tofu(dep, wd, "apply", "-auto-approve", "-input=false")
        assert 'v = "demo"' in out, out
        assert not dep.sanitizer_lines(), dep.sanitizer_lines()
        # the operator's path: the same deployment with external
        # services; the demo stops and its data is kept
        dep.external = True
        dep.apply(1)
        c = dep.client()
        r = c.get(dep.outputs["health_check_url"], token=None)
        assert r.status == 200 and r.json["role"] == "primary", r
        assert secondaries(c) == ["%s.1" % dep.sec]
        retired = os.listdir(os.path.join(dep.work, "retired"))
        assert len(retired) == 1, retired
        assert os.path.exists(os.path.join(dep.work, "retired", retired[0],
                                           "admin-token"))
        dep.destroy(1)
        assert dep.processes() == [], dep.processes()
        assert dep.ports() == [], dep.ports()
    finally:
        dep.close()


def bootstrap(*args, env=None):
    return subprocess.run(
        ["bash", os.path.join(SRC, "deploy", "node", "bootstrap.sh")] +
        list(args), capture_output=True, text=True, timeout=60,
        env=dict(os.environ, **(env or {})))


@pytest.fixture
def package(tmp_path):
    stage = tmp_path / "stage" / "bin"
    stage.mkdir(parents=True)
    shutil.copy(os.path.join(BUILD, "terraced"), stage)
    tgz = str(tmp_path / "terrace.tar.gz")
    subprocess.run(["tar", "-czf", tgz, "-C", str(stage.parent), "."],
                   check=True)
    out = subprocess.run(["sha256sum", tgz], capture_output=True, text=True,
                         check=True).stdout.split()[0]
    return tgz, out


def test_bootstrap_refuses_a_bad_checksum(tmp_path, package):
    tgz, _ = package
    prefix = tmp_path / "opt"
    r = bootstrap("--role", "secondary", "--install-from", tgz,
                  "--sha256", "0" * 64, "--prefix", str(prefix),
                  "--etc-dir", str(tmp_path / "etc"),
                  "--data-dir", str(tmp_path / "data"),
                  "--join-url", "https://127.0.0.1:9", "--join-token", "x",
                  "--supervisor", "process")
    assert r.returncode != 0
    assert "checksum mismatch" in r.stderr, r.stderr
    assert not prefix.exists() and not (tmp_path / "etc").exists()


@pytest.mark.parametrize("args,why", [
    (["--role", "secondary", "--join-url", "https://127.0.0.1:9",
      "--join-token", "x", "--vault-addr", "https://127.0.0.1:9",
      "--vault-key", "k"], "a secondary takes no database, blob, key or Vault"),
    (["--role", "demo", "--vault-addr", "https://127.0.0.1:9"],
     "--vault-addr needs --vault-key"),
    (["--role", "demo", "--vault-addr", "https://127.0.0.1:9",
      "--vault-key", "k", "--vault-role-id", "r"],
     "--vault-role-id needs --vault-secret-id-file"),
])
def test_bootstrap_refuses_bad_vault_settings(tmp_path, package, args, why):
    # refused before anything is installed or written
    tgz, sha = package
    r = bootstrap(*args, "--install-from", tgz, "--sha256", sha,
                  "--prefix", str(tmp_path / "opt"),
                  "--etc-dir", str(tmp_path / "etc"),
                  "--data-dir", str(tmp_path / "data"),
                  "--supervisor", "process")
    assert r.returncode != 0
    assert why in r.stderr, r.stderr
    assert not (tmp_path / "opt").exists()
    assert not (tmp_path / "etc").exists()


def test_bootstrap_not_ready_shows_the_log_then_stops(tmp_path, package):
    # a secondary whose primaries do not answer never gets ready: the
    # bootstrap gives up after its bound with the log's tail, and stop
    # ends the process
    tgz, sha = package
    etc = str(tmp_path / "etc")
    # the settings through TB_* variables, as cloud user data passes them
    r = bootstrap(env={
        "TB_ROLE": "secondary", "TB_NAME": "s-test",
        "TB_INSTALL_FROM": tgz, "TB_SHA256": sha,
        "TB_PREFIX": str(tmp_path / "opt"), "TB_ETC_DIR": etc,
        "TB_DATA_DIR": str(tmp_path / "data"),
        "TB_LISTEN": "127.0.0.1:%d" % free_port(),
        "TB_JOIN_URL": "https://127.0.0.1:9", "TB_JOIN_TOKEN": "t0ken",
        "TB_SUPERVISOR": "process", "TB_READY_TIMEOUT": "4",
        "TB_SET": "tls=off"})
    assert r.returncode == 1, r.stderr
    assert "not ready after 4s" in r.stderr, r.stderr
    assert "last lines of" in r.stderr, r.stderr
    conf = os.path.join(etc, "s-test.conf")
    assert oct(os.stat(conf).st_mode & 0o777) == "0o600"
    with open(tmp_path / "data" / "terraced.pid") as f:
        pid = int(f.read())
    assert os.path.exists("/proc/%d" % pid)
    r = bootstrap("stop", "--name", "s-test", "--etc-dir", etc,
                  "--timeout", "20")
    assert r.returncode == 0, r.stderr
    assert "s-test stopped" in r.stderr, r.stderr
    assert not os.path.exists("/proc/%d" % pid) or \
        open("/proc/%d/stat" % pid).read().split()[2] == "Z"


def test_static_checks(tmp_path):
    """The module is formatted as tofu formats it, and systemd accepts
    the unit (where systemd-analyze is installed)."""
    r = subprocess.run([TOFU_BIN, "fmt", "-check", "-diff", "-recursive",
                        os.path.join(SRC, "deploy")], capture_output=True,
                       text=True, env=base_env(str(tmp_path)))
    assert r.returncode == 0, "tofu fmt -check:\n" + r.stdout + r.stderr
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze not installed")
    with open(os.path.join(SRC, "deploy", "systemd",
                           "terraced@.service")) as f:
        unit = f.read().replace("/opt/terrace/bin/terraced",
                                os.path.join(BUILD, "terraced"))
    path = tmp_path / "terraced@test.service"
    path.write_text(unit)
    r = subprocess.run([analyze, "verify", str(path)], capture_output=True,
                       text=True)
    assert r.returncode == 0 and r.stderr.strip() == "", r.stderr


def test_foreign_work_dir_is_refused_and_kept():
    dep = Deployment()
    try:
        os.makedirs(dep.work)
        keep = os.path.join(dep.work, "precious")
        with open(keep, "w") as f:
            f.write("mine\n")
        r = subprocess.run(
            [TOFU_BIN, "-chdir=" + dep.mod, "apply", "-auto-approve",
             "-input=false", "-no-color"] + dep.args(0),
            env=base_env(dep.home), capture_output=True, text=True,
            timeout=60)
        out = r.stdout + r.stderr
        assert r.returncode != 0, out
        assert "was not made by deploy/local" in out, out
        # the failed step is tainted: destroying it leaves the directory
        dep.destroy(0)
        with open(keep) as f:
            assert f.read() == "mine\n"
        assert dep.processes() == []
    finally:
        dep.close()
