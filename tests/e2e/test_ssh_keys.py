"""Workspace SSH keys in real runs: `tofu init` in a remote run fetches a
git module over SSH from a loopback server (tests/lib/sshgit.py) with
the key assigned to the workspace, and the same run without the key is
refused by that server; the key never appears in the run's logs or the
daemon's.

SPDX-License-Identifier: MPL-2.0
"""
import os
import subprocess
import sys
import tempfile
import time

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from terrace import SRC, queue_run  # noqa: E402

from conftest import unique  # noqa: E402
from test_remote import wait_status  # noqa: E402

PY = "/usr/bin/python3"  # Debian's, with python3-paramiko


def have_paramiko():
    return subprocess.run([PY, "-c", "import paramiko"],
                          capture_output=True).returncode == 0


@pytest.fixture(scope="module")
def git_server():
    if not have_paramiko():
        if os.environ.get("CI") == "true":
            pytest.fail("python3-paramiko missing (scripts/deps.sh test)")
        pytest.skip("python3-paramiko missing (scripts/deps.sh test)")
    tmp = tempfile.mkdtemp(prefix="terrace-sshgit-")
    key = os.path.join(tmp, "id")
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C",
                    "e2e", "-f", key], check=True)
    work, root = os.path.join(tmp, "work"), os.path.join(tmp, "srv")
    os.makedirs(work)
    os.makedirs(root)
    with open(os.path.join(work, "main.tf"), "w") as f:
        f.write('output "greeting" {\n  value = "hello from git"\n}\n')
    git = ["git", "-c", "user.name=e2e", "-c", "user.email=e2e@example.com"]
    subprocess.run(git + ["init", "-q", work], check=True)
    subprocess.run(git + ["-C", work, "add", "."], check=True)
    subprocess.run(git + ["-C", work, "commit", "-q", "-m", "m"], check=True)
    subprocess.run(["git", "clone", "-q", "--bare", work,
                    os.path.join(root, "mod.git")], check=True)
    port_file, log = os.path.join(tmp, "port"), os.path.join(tmp, "log")
    p = subprocess.Popen([PY, os.path.join(SRC, "tests/lib/sshgit.py"),
                          "--root", root, "--authorized-key", key + ".pub",
                          "--port-file", port_file, "--log", log])
    deadline = time.time() + 30
    while not os.path.exists(port_file) and p.poll() is None and \
            time.time() < deadline:
        time.sleep(0.05)
    assert os.path.exists(port_file), "sshgit.py did not start"
    port = int(open(port_file).read())
    yield {"key": open(key).read(), "port": port, "log": log}
    p.kill()
    p.wait()


def log_lines(srv):
    if not os.path.exists(srv["log"]):
        return []
    return open(srv["log"]).read().splitlines()


def config(port):
    return ('module "m" {\n'
            '  source = "git::ssh://git@127.0.0.1:%d/mod.git"\n'
            '}\n'
            'output "o" {\n  value = module.m.greeting\n}\n' % port).encode()


def plan_log(api, run_id):
    run = api.ok(api.c.get("/api/v2/runs/%s?include=plan" % run_id), 200)
    plan = run.json["included"][0]["attributes"]
    return api.ok(api.c.get(plan["log-read-url"]), 200).body


def test_a_run_fetches_a_git_module_with_the_workspace_key(api, org,
                                                           git_server):
    c = api.c
    r = api.ok(c.post("/api/v2/organizations/%s/ssh-keys" % org, {
        "data": {"type": "ssh-keys",
                 "attributes": {"name": "deploy",
                                "value": git_server["key"]}}}), 201)
    key_id = r.json["data"]["id"]
    assert "value" not in r.json["data"]["attributes"]
    ws = api.create_workspace(org, unique("ssh"), **{"auto-apply": True})
    r = api.ok(c.patch("/api/v2/workspaces/%s/relationships/ssh-key" %
                      ws["id"], {"data": {"type": "workspaces",
                                          "attributes": {"id": key_id}}}),
               200)
    assert r.json["data"]["relationships"]["ssh-key"]["data"]["id"] == \
        key_id
    before = len(log_lines(git_server))
    run = queue_run(c, ws["id"], config(git_server["port"]))
    wait_status(api, run, ("applied",), timeout=120)
    out = api.outputs(ws["id"])
    assert [o["attributes"]["value"] for o in out] == ["hello from git"]
    lines = log_lines(git_server)[before:]
    assert "auth ok git" in lines, lines
    assert any(ln.startswith("exec git-upload-pack") for ln in lines), lines
    secret = git_server["key"].split("\n")[1]
    assert secret.encode() not in plan_log(api, run)
    assert secret not in api.d.full_log()

    # without the key the server refuses the run's clone, and says so
    api.ok(c.patch("/api/v2/workspaces/%s/relationships/ssh-key" % ws["id"],
                   {"data": {"type": "workspaces",
                             "attributes": {"id": None}}}), 200)
    before = len(log_lines(git_server))
    run = queue_run(c, ws["id"], config(git_server["port"]))
    wait_status(api, run, ("errored",), timeout=120)
    assert "auth ok git" not in log_lines(git_server)[before:]
    assert b"mod.git" in plan_log(api, run)
