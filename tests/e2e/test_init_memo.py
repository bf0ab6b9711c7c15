"""`tofu init` remembered per workspace (src/executor/init_memo.c), with
the real tofu and a real provider (the stand-in `hashicorp/null` of
scripts/build-provider-null.sh, given to the daemon as its provider
mirror): a plan whose configuration pins its providers with a lock file
and has only local modules skips init the second time; one without a
lock file inits every time (init chooses the provider version); and a
provider package replaced in the organization's cache after the first
plan is refused by tofu's own check against the lock file, never run.

Each plan is a speculative run queued through the API, its tarball packed
afresh.

SPDX-License-Identifier: MPL-2.0
"""
import os
import shutil
import subprocess

import pytest

from conftest import (TOFU_BIN, _daemon_log, own_daemon, phase_log, unique,
                      wait_run_status)
from terrace import SRC, config_tgz

MAIN = '''
terraform {
  required_providers {
    null = {
      source  = "hashicorp/null"
      version = "3.2.4"
    }
  }
}

module "m" {
  source = "./m"
}

resource "null_resource" "x" {
  triggers = {
    v = module.m.v
  }
}
'''

MODULE = '''
output "v" {
  value = "local-module"
}
'''

POISON = "#!/bin/sh\necho POISONED-PROVIDER-RAN >&2\nexit 1\n"


@pytest.fixture(scope="module")
def mirror():
    r = subprocess.run(["bash", os.path.join(SRC, "scripts",
                                             "build-provider-null.sh")],
                       capture_output=True, text=True, timeout=1800)
    assert r.returncode == 0, r.stderr[-3000:]
    return r.stdout.strip()


@pytest.fixture(scope="module")
def lock_file(mirror, tmp_path_factory):
    """The lock file `tofu providers lock` writes from the mirror."""
    d = tmp_path_factory.mktemp("lock")
    (d / "main.tf").write_text(MAIN.replace('module "m" {\n  source = '
                                            '"./m"\n}\n', ""))
    r = subprocess.run([TOFU_BIN, "providers", "lock", "-fs-mirror=" + mirror,
                        "-platform=linux_amd64"], cwd=str(d),
                       capture_output=True, text=True, timeout=300,
                       env=dict(os.environ, TF_CLI_CONFIG_FILE="/dev/null"))
    assert r.returncode == 0, r.stdout + r.stderr
    return (d / ".terraform.lock.hcl").read_text()


@pytest.fixture(scope="module")
def memo_daemon(mirror):
    yield from own_daemon(["--provider-mirror", mirror])


class Org:
    def __init__(self, d):
        self.d = d
        self.c = d.client()
        self.name = unique("memo")
        r = self.c.post("/api/v2/organizations", {"data": {
            "type": "organizations",
            "attributes": {"name": self.name, "email": "m@example.com"}}})
        assert r.status == 201, r

    def workspace(self):
        r = self.c.post("/api/v2/organizations/%s/workspaces" % self.name,
                        {"data": {"type": "workspaces",
                                  "attributes": {"name": unique("ws")}}})
        assert r.status == 201, r
        return r.json["data"]["id"]

    def plan(self, ws, files):
        """A speculative plan of files in ws, waited for; (status, log)."""
        c = self.c
        r = c.post("/api/v2/workspaces/%s/configuration-versions" % ws,
                   {"data": {"type": "configuration-versions",
                             "attributes": {"auto-queue-runs": False,
                                            "speculative": True}}})
        assert r.status == 201, r
        u = c.put(r.json["data"]["attributes"]["upload-url"],
                  raw=config_tgz(files=files), token=None)
        assert u.status == 200, u
        cv = r.json["data"]["id"]
        r = c.post("/api/v2/runs", {"data": {
            "type": "runs", "attributes": {"plan-only": True},
            "relationships": {
                "workspace": {"data": {"type": "workspaces", "id": ws}},
                "configuration-version": {
                    "data": {"type": "configuration-versions",
                             "id": cv}}}}})
        assert r.status == 201, r
        run = r.json["data"]["id"]
        doc = wait_run_status(c, run, ("planned_and_finished", "errored"),
                              timeout=120)
        return doc["attributes"]["status"], phase_log(c, run, "plan")


def reuses(d, ws):
    return sum(1 for ln in _daemon_log(d).splitlines()
               if "init of an earlier plan of workspace %s reused" % ws in ln)


def test_locked_config_skips_init(memo_daemon, lock_file):
    org = Org(memo_daemon)
    ws = org.workspace()
    files = {"main.tf": MAIN, "m/main.tf": MODULE,
             ".terraform.lock.hcl": lock_file}
    for i in range(2):
        status, log = org.plan(ws, files)
        assert status == "planned_and_finished", log
        assert "1 to add" in log, log
    assert reuses(memo_daemon, ws) == 1, _daemon_log(memo_daemon)[-4000:]


def test_unlocked_config_inits_every_time(memo_daemon):
    """... and after its first init wrote the lock file, the next plans
    do not even key (hash) the configuration: the refusal is logged
    once, not at every plan."""
    org = Org(memo_daemon)
    ws = org.workspace()
    files = {"main.tf": MAIN, "m/main.tf": MODULE}
    for i in range(3):
        status, log = org.plan(ws, files)
        assert status == "planned_and_finished", log
    assert reuses(memo_daemon, ws) == 0
    refused = [ln for ln in _daemon_log(memo_daemon).splitlines()
               if "init wrote the lock file; workspace %s's" % ws in ln]
    assert len(refused) == 1, refused


def test_poisoned_cache_refused(memo_daemon, lock_file):
    """A provider package swapped in the organization's cache (runs of
    the organization can write there) after the init was remembered: the
    next plan takes the remembered directory, and tofu refuses the
    package against the lock file instead of running it."""
    org = Org(memo_daemon)
    ws = org.workspace()
    files = {"main.tf": MAIN, "m/main.tf": MODULE,
             ".terraform.lock.hcl": lock_file}
    caches = os.path.join(memo_daemon.data_dir, "provider-cache")
    before = set(os.listdir(caches))
    status, log = org.plan(ws, files)
    assert status == "planned_and_finished", log
    ours = set(os.listdir(caches)) - before  # the organization's cache
    assert len(ours) == 1, ours
    plat = os.path.join(caches, ours.pop(), "registry.opentofu.org",
                        "hashicorp", "null", "3.2.4", "linux_amd64")
    st = os.lstat(plat)
    if os.path.islink(plat):
        os.unlink(plat)
    else:
        shutil.rmtree(plat)
    os.mkdir(plat, 0o755)
    exe = os.path.join(plat, "terraform-provider-null_v3.2.4")
    with open(exe, "w") as f:
        f.write(POISON)
    os.chmod(exe, 0o755)
    for p in (plat, exe):
        os.lchown(p, st.st_uid, st.st_gid)
    status, log = org.plan(ws, files)
    assert reuses(memo_daemon, ws) == 1
    assert "POISONED-PROVIDER-RAN" not in log, log
    assert status == "errored", log
    assert "does not match" in log or "checksum" in log, log


# A module source from a variable, written so the line scan misses it
# (OpenTofu evaluates it in init): the first plan after the value changes
# takes a directory that does not fit, and runs init and plans again;
# from then on the workspace's key has its variables, so changing the
# value back finds no entry instead of failing a second time.
MISFIT = '''
variable "which" {
  type = string
}

module "m" {
  source = (
    var.which
  )
}

output "v" {
  value = module.m.v
}
'''


def test_misfit_keys_by_variables(memo_daemon):
    org = Org(memo_daemon)
    ws = org.workspace()
    files = {"main.tf": MISFIT,
             "a/main.tf": 'output "v" {\n  value = "from-a"\n}\n',
             "b/main.tf": 'output "v" {\n  value = "from-b"\n}\n'}
    r = org.c.post("/api/v2/workspaces/%s/vars" % ws, {"data": {
        "type": "vars", "attributes": {"key": "which", "value": "./a",
                                       "category": "terraform"}}})
    assert r.status == 201, r
    var = r.json["data"]["id"]

    def plan(which):
        r = org.c.patch("/api/v2/workspaces/%s/vars/%s" % (ws, var),
                        {"data": {"type": "vars", "id": var,
                                  "attributes": {"value": which}}})
        assert r.status == 200, r
        status, log = org.plan(ws, files)
        assert status == "planned_and_finished", log
        assert "from-" + which[2:] in log, log
        return log

    plan("./a")
    assert "does not fit" in plan("./b")
    misfits = reuses(memo_daemon, ws)
    assert "does not fit" not in plan("./a")
    assert reuses(memo_daemon, ws) == misfits  # keyed by the value now
    assert "does not fit" not in plan("./a")
    assert reuses(memo_daemon, ws) == misfits + 1
