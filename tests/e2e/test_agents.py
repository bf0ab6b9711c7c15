"""A real `terraced --role agent` serving an agent pool of a demo (or a
primary on PostgreSQL): a tofu run of a workspace in the agent execution
mode is planned and applied by the agent, while an older queued run of a
workspace of another pool is passed over by it and by the daemon's own
executor; revoking the agent's token stops it (no more claims, it exits
saying why); SIGTERM drains it and it leaves; `tofu apply` with a cloud
block on an agent-mode workspace streams the agent's run back.

SPDX-License-Identifier: MPL-2.0
"""
import json
import os
import shutil
import signal
import ssl
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
import uuid

import pytest

from conftest import wait_run_status
from terrace import BUILD, free_port, queue_run

API = "/api/v2"


def unique(prefix):
    return "%s-%s" % (prefix, uuid.uuid4().hex[:8])


class Agent:
    """A terraced --role agent process serving d with token."""

    def __init__(self, d, token, name):
        self.tmp = tempfile.mkdtemp(prefix="terrace-agent-")
        self.data_dir = os.path.join(self.tmp, "data")
        self.port = free_port()
        self.args = [os.path.join(BUILD, "terraced"), "--role", "agent",
                     "--url", d.url, "--token", token, "--ca-file", d.ca,
                     "--data-dir", self.data_dir, "--node-name", name,
                     "--listen", "127.0.0.1:%d" % self.port,
                     "--capacity", "1"]
        self.log_path = os.path.join(self.tmp, "agent.log")
        self.proc = None

    def start(self):
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(self.args, stdout=log,
                                         stderr=subprocess.STDOUT)
        return self

    def health(self):
        ca = os.path.join(self.data_dir, "tls", "ca.pem")
        if not os.path.exists(ca):
            return None
        ctx = ssl.create_default_context(cafile=ca)
        url = "https://127.0.0.1:%d/_health_check?ready=1" % self.port
        try:
            with urllib.request.urlopen(url, context=ctx, timeout=5) as r:
                return r.status, json.loads(r.read())
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read())
        except (urllib.error.URLError, ConnectionError, OSError):
            return None

    def wait_ready(self, timeout=30):
        deadline = time.time() + timeout
        while time.time() < deadline:
            assert self.proc.poll() is None, \
                "agent exited %d: %s" % (self.proc.returncode, self.log())
            h = self.health()
            if h is not None and h[0] == 200:
                return h[1]
            time.sleep(0.1)
        raise AssertionError("agent not ready: " + self.log())

    def log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode(errors="replace")
        except OSError:
            return ""

    def wait_exit(self, timeout):
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError("agent still running after %d s: %s" %
                                 (timeout, self.log()[-3000:]))

    def close(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        log = self.log()
        shutil.rmtree(self.tmp, ignore_errors=True)
        assert "Sanitizer" not in log and "runtime error:" not in log, \
            log[-8000:]


@pytest.fixture
def c(daemon):
    return daemon.client()


@pytest.fixture
def org(c):
    name = unique("org")
    r = c.post(API + "/organizations", {"data": {
        "type": "organizations",
        "attributes": {"name": name, "email": "o@example.com"}}})
    assert r.status == 201, r
    yield name
    c.delete(API + "/organizations/" + name)


def pool(c, org):
    r = c.post("%s/organizations/%s/agent-pools" % (API, org), {"data": {
        "type": "agent-pools", "attributes": {"name": unique("pool")}}})
    assert r.status == 201, r
    pid = r.json["data"]["id"]
    r = c.post("%s/agent-pools/%s/authentication-tokens" % (API, pid),
               {"data": {"type": "authentication-tokens",
                         "attributes": {"description": "e2e"}}})
    assert r.status == 201, r
    return pid, r.json["data"]["id"], r.json["data"]["attributes"]["token"]


def agent_ws(c, org, pid):
    r = c.post("%s/organizations/%s/workspaces" % (API, org), {"data": {
        "type": "workspaces", "attributes": {
            "name": unique("ws"), "auto-apply": True,
            "execution-mode": "agent", "agent-pool-id": pid}}})
    assert r.status == 201, r
    return r.json["data"]["id"]


def status(c, run):
    r = c.get("%s/runs/%s" % (API, run))
    assert r.status == 200, r
    return r.json["data"]["attributes"]["status"]


def wait_status(c, run, want, agent, timeout=180):
    return wait_run_status(c, run, want, timeout, lambda: (
        "--- agent log ---\n" + agent.log()[-3000:]))["attributes"]["status"]


TF = b'resource "terraform_data" "x" {\n  input = "from-an-agent"\n}\n'


def test_agent_runs_its_pool_only_until_revoked(daemon, c, org):
    pa, ta_id, ta = pool(c, org)
    pb, _, _ = pool(c, org)
    wa = agent_ws(c, org, pa)
    wb = agent_ws(c, org, pb)
    # queued first: whoever could take it would take it before wa's
    rb = queue_run(c, wb, TF)
    agent = Agent(daemon, ta, "agent-e2e-a").start()
    try:
        me = agent.wait_ready()
        assert me["role"] == "agent" and me["node"].startswith("agent-")
        ra = queue_run(c, wa, TF)
        wait_status(c, ra, ("applied",), agent)
        # both phases ran on the agent
        for phase in ("plan", "apply"):
            r = c.get("%s/runs/%s/%s" % (API, ra, phase))
            assert r.json["data"]["attributes"]["execution-node"] == \
                "agent-e2e-a", r
        r = c.get("%s/workspaces/%s/current-state-version" % (API, wa))
        assert r.status == 200, r
        # the other pool's older run was never claimed, by anyone
        assert status(c, rb) == "plan_queued"
        r = c.get("%s/agent-pools/%s/agents" % (API, pa))
        assert [a["attributes"]["name"] for a in r.json["data"]] == [
            "agent-e2e-a"]
        assert r.json["data"][0]["attributes"]["status"] in ("idle", "busy")
        # revoking its token stops it: it says why and exits
        r = c.delete("%s/authentication-tokens/%s" % (API, ta_id))
        assert r.status == 204, r
        rc = agent.wait_exit(60)
        assert rc != 0, agent.log()
        assert "refuse this node's credential" in agent.log()
        assert ta not in agent.log()
        r = c.get("%s/agent-pools/%s/agents" % (API, pa))
        assert r.json["data"][0]["attributes"]["status"] == "exited"
        ra2 = queue_run(c, wa, TF)
        assert status(c, ra2) == "plan_queued"
        assert status(c, rb) == "plan_queued"
    finally:
        agent.close()


def test_sigterm_drains_and_leaves(daemon, c, org):
    pa, _, ta = pool(c, org)
    agent = Agent(daemon, ta, "agent-e2e-b").start()
    try:
        agent.wait_ready()
        agent.proc.send_signal(signal.SIGTERM)
        assert agent.wait_exit(60) == 0, agent.log()
        assert "left the cluster" in agent.log()
        r = c.get("%s/agent-pools/%s/agents" % (API, pa))
        assert r.json["data"][0]["attributes"]["status"] == "exited"
    finally:
        agent.close()


def test_tofu_cli_apply_runs_on_the_agent(daemon, c, org, tofu):
    """`tofu apply` with a cloud block: the CLI sees remote execution, the
    agent runs it, and the output streams back to the terminal."""
    pa, _, ta = pool(c, org)
    ws = unique("ws")
    r = c.post("%s/organizations/%s/workspaces" % (API, org), {"data": {
        "type": "workspaces", "attributes": {
            "name": ws, "execution-mode": "agent", "agent-pool-id": pa}}})
    assert r.status == 201, r
    agent = Agent(daemon, ta, "agent-e2e-cli").start()
    try:
        agent.wait_ready()
        tofu.write('''
terraform {
  cloud {
    hostname     = "%s"
    organization = "%s"
    workspaces {
      name = "%s"
    }
  }
}
''' % (tofu.host, org, ws) + TF.decode() +
            'output "x" {\n  value = terraform_data.x.output\n}\n')
        tofu.run("init", "-input=false", "-no-color")
        r = tofu.run("apply", "-auto-approve", "-no-color")
        assert "Apply complete! Resources: 1 added" in r.text, r.text
        out = tofu.run("output", "-json")
        assert json.loads(out.out)["x"]["value"] == "from-an-agent"
        r = c.get("%s/organizations/%s/workspaces/%s" % (API, org, ws))
        wid = r.json["data"]["id"]
        r = c.get("%s/workspaces/%s/runs" % (API, wid))
        run = r.json["data"][0]["id"]
        r = c.get("%s/runs/%s/apply" % (API, run))
        assert r.json["data"]["attributes"]["execution-node"] == \
            "agent-e2e-cli", r
    finally:
        agent.close()
