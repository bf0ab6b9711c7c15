"""The secondary role against a real primary (PostgreSQL, --executors 0,
so only a secondary can run a plan), over TLS with the primary's CA:
a run planned and applied on the secondary, a wrong join token, a
credential reused after a crash and refused after a leave, and SIGTERM
during an apply (the apply finishes, the node leaves, exit 0).

Needs the real tofu (tests/e2e's TOFU_BIN); skipped on SQLite.

SPDX-License-Identifier: MPL-2.0
"""
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from terrace import (BUILD, Daemon, free_port, new_workspace,  # noqa: E402
                     queue_run)

API = "/api/v2"
CACHE = os.environ.get("TERRACE_CACHE",
                       os.path.join(os.path.expanduser("~"), ".cache",
                                    "terrace"))
TOFU_BIN = os.environ.get("TOFU_BIN",
                          os.path.join(CACHE, "tofu-1.10.10", "tofu"))

pytestmark = [
    pytest.mark.skipif(
        os.environ.get("TERRACE_TEST_BACKEND", "sqlite") != "pg",
        reason="a cluster needs PostgreSQL"),
    pytest.mark.skipif(not os.access(TOFU_BIN, os.X_OK),
                       reason="tofu binary missing: " + TOFU_BIN),
]


@pytest.fixture(scope="module")
def primary():
    d = Daemon(backend="pg",
               extra_args=["--executors", "0", "--tofu-bin", TOFU_BIN])
    try:
        d.start()
    except Exception:
        d.close()
        raise
    yield d
    d.close()


@pytest.fixture(scope="module")
def c(primary):
    return primary.client()


def join_token(c):
    r = c.get(API + "/admin/join-token")
    assert r.status == 200, r
    return r.json["data"]["attributes"]["token"]


def sql(d, query):
    out = subprocess.check_output(
        ["psql", "-At", "-F", "\x1f", "-d", d.conninfo, "-c", query],
        text=True)
    return [line.split("\x1f") for line in out.splitlines() if line]


class Secondary:
    """A terraced --role secondary process joining primary."""

    def __init__(self, primary, token, data_dir=None, capacity=2):
        self.tmp = tempfile.mkdtemp(prefix="terrace-sec-")
        self.data_dir = data_dir or os.path.join(self.tmp, "data")
        self.port = free_port()
        self.url = "https://127.0.0.1:%d" % self.port
        self.args = [os.path.join(BUILD, "terraced"), "--role", "secondary",
                     "--join-url", primary.url, "--join-token", token,
                     "--ca-file", primary.ca, "--data-dir", self.data_dir,
                     "--listen", "127.0.0.1:%d" % self.port,
                     "--capacity", str(capacity)]
        self.log_path = os.path.join(self.tmp, "secondary.log")
        self.proc = None

    def start(self):
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self.args, stdout=log,
                                     stderr=subprocess.STDOUT)
        log.close()
        return self

    def health(self, query=""):
        """(status, json) of the secondary's /_health_check, or None."""
        ca = os.path.join(self.data_dir, "tls", "ca.pem")
        if not os.path.exists(ca):
            return None
        ctx = ssl.create_default_context(cafile=ca)
        try:
            with urllib.request.urlopen(self.url + "/_health_check" + query,
                                        context=ctx, timeout=5) as r:
                return r.status, json.loads(r.read())
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read())
        except (urllib.error.URLError, ConnectionError, OSError):
            return None

    def wait_ready(self, timeout=30):
        deadline = time.time() + timeout
        while time.time() < deadline:
            assert self.proc.poll() is None, \
                "secondary exited %d: %s" % (self.proc.returncode, self.log())
            h = self.health("?ready=1")
            if h is not None and h[0] == 200:
                return h[1]
            time.sleep(0.1)
        raise AssertionError("secondary not ready: " + self.log())

    def node_id(self):
        return self.wait_ready()["node"]

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
            raise AssertionError("secondary still running after %d s: %s" %
                                 (timeout, self.log()[-3000:]))

    def close(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        log = self.log()
        shutil.rmtree(self.tmp, ignore_errors=True)
        assert "Sanitizer" not in log and "runtime error:" not in log, \
            log[-8000:]


def run_status(c, run):
    r = c.get("%s/runs/%s" % (API, run))
    assert r.status == 200, r
    return r.json["data"]["attributes"]["status"]


def wait_status(c, run, want, timeout=120, sec=None):
    deadline = time.time() + timeout
    s = None
    while time.time() < deadline:
        s = run_status(c, run)
        if s in want:
            return s
        if s in ("errored", "canceled", "force_canceled", "discarded"):
            break
        time.sleep(0.2)
    r = c.get("%s/runs/%s" % (API, run))
    why = r.json["data"]["attributes"].get("error-message") if \
        r.status == 200 else r
    raise AssertionError("run %s is %s (%s), not %s; secondary log: %s" % (
        run, s, why, want, sec.log()[-3000:] if sec else ""))


@pytest.fixture
def org(c):
    name = "org-" + uuid.uuid4().hex[:8]
    r = c.post(API + "/organizations", {
        "data": {"type": "organizations",
                 "attributes": {"name": name, "email": "o@example.com"}}})
    assert r.status == 201, r
    yield name
    c.delete(API + "/organizations/" + name)


@pytest.fixture
def secondary(primary, c):
    s = Secondary(primary, join_token(c)).start()
    yield s
    s.close()


def test_run_on_secondary(primary, c, org, secondary):
    node = secondary.node_id()
    assert node.startswith("node-")
    assert sql(primary, "SELECT role, state FROM nodes WHERE id = '%s'" %
               node) == [["secondary", "active"]]
    ws = new_workspace(c, org)
    run = queue_run(c, ws, b'resource "terraform_data" "x" {\n'
                           b'  input = "from-the-secondary"\n}\n')
    wait_status(c, run, ("applied",), sec=secondary)
    # both phases ran on the secondary: the primary runs no plans
    jobs = sql(primary, "SELECT phase, node FROM jobs WHERE run_id = '%s' "
                        "ORDER BY created_at" % run)
    assert [j[1] for j in jobs] == [node, node], jobs
    assert {j[0] for j in jobs} == {"plan", "apply"}, jobs
    for phase in ("plan", "apply"):
        r = c.get("%s/runs/%s/%s" % (API, run, phase))
        # no --node-name: host name@listen address, unique per machine
        assert r.json["data"]["attributes"]["execution-node"] == \
            "%s@127.0.0.1:%d" % (socket.gethostname(), secondary.port), r
    # the apply reused the plan's working directory on this node
    assert "apply finished in the plan's directory" in secondary.log()
    # the state the apply wrote reached the primaries
    r = c.get("%s/workspaces/%s/current-state-version" % (API, ws))
    assert r.status == 200, r
    # the tool came from the primaries, checked and cached once
    tools = os.listdir(os.path.join(secondary.data_dir, "tools"))
    assert len(tools) == 1 and tools[0].startswith("1.10.10-"), tools
    assert secondary.log().count("fetching tool 1.10.10") == 1
    # the plan's log came through the internal API
    r = c.get("%s/runs/%s/plan" % (API, run))
    logs = c.get(r.json["data"]["attributes"]["log-read-url"], token=None)
    assert b"terraform_data.x" in logs.body, logs


def test_wrong_join_token(primary, c):
    s = Secondary(primary, "not-the-join-token").start()
    try:
        rc = s.wait_exit(30)
        assert rc != 0
        assert "join token is wrong or was rotated" in s.log(), s.log()
        assert not os.path.exists(os.path.join(s.data_dir,
                                               "node-credential"))
        assert "not-the-join-token" not in s.log()
    finally:
        s.close()


def test_credential_reused_then_refused_after_leave(primary, c):
    token = join_token(c)
    s = Secondary(primary, token).start()
    try:
        node = s.node_id()
        cred = os.path.join(s.data_dir, "node-credential")
        assert os.stat(cred).st_mode & 0o777 == 0o600
        s.proc.kill()  # a crash: no leave
        s.proc.wait()
        again = Secondary(primary, token, data_dir=s.data_dir).start()
        try:
            assert again.node_id() == node  # the same node, not a new one
            again.proc.send_signal(signal.SIGTERM)
            assert again.wait_exit(60) == 0, again.log()
        finally:
            again.close()
        assert sql(primary, "SELECT state FROM nodes WHERE id = '%s'" %
                   node) == [["gone"]]
        # the credential stopped working with the leave: said, not rejoined
        third = Secondary(primary, token, data_dir=s.data_dir).start()
        try:
            assert third.wait_exit(30) != 0
            assert "remove that file to join again" in third.log(), \
                third.log()
        finally:
            third.close()
    finally:
        s.close()


def test_sigterm_drains_an_apply(primary, c, org, secondary):
    node = secondary.node_id()
    ws = new_workspace(c, org)
    run = queue_run(c, ws, b'resource "terraform_data" "slow" {\n'
                           b'  provisioner "local-exec" {\n'
                           b'    command = "sleep 6"\n  }\n}\n')
    wait_status(c, run, ("applying",), sec=secondary)
    # the apply is in this node's hands (claimed), not merely queued
    deadline = time.time() + 60
    while time.time() < deadline and sql(
            primary, "SELECT node FROM jobs WHERE run_id = '%s' AND "
            "phase = 'apply'" % run) != [[node]]:
        time.sleep(0.1)
    assert run_status(c, run) == "applying"
    secondary.proc.send_signal(signal.SIGTERM)
    h = None
    deadline = time.time() + 10
    while time.time() < deadline:
        h = secondary.health("?ready=1")
        if h is not None and h[0] == 503:
            break
        time.sleep(0.1)
    assert h is not None and h[0] == 503 and h[1]["reason"] == "draining", h
    secondary.proc.send_signal(signal.SIGTERM)  # does not stop the apply
    assert secondary.wait_exit(90) == 0, secondary.log()
    assert run_status(c, run) == "applied", secondary.log()[-3000:]
    assert sql(primary, "SELECT state FROM nodes WHERE id = '%s'" %
               node) == [["gone"]]
    assert "left the cluster" in secondary.log()


def test_primary_restart_during_apply():
    """The only primary dies (kill -9) while the secondary applies and
    comes back: the secondary retries its logs, heartbeats and finish,
    and the apply ends applied, not errored."""
    p = Daemon(backend="pg",
               extra_args=["--executors", "0", "--tofu-bin", TOFU_BIN])
    try:
        p.start()
        pc = p.client()
        s = Secondary(p, join_token(pc)).start()
        try:
            node = s.node_id()
            name = "org-" + uuid.uuid4().hex[:8]
            r = pc.post(API + "/organizations", {
                "data": {"type": "organizations",
                         "attributes": {"name": name,
                                        "email": "o@example.com"}}})
            assert r.status == 201, r
            ws = new_workspace(pc, name)
            run = queue_run(pc, ws, b'resource "terraform_data" "slow" {\n'
                                    b'  provisioner "local-exec" {\n'
                                    b'    command = "sleep 15"\n  }\n}\n')
            # once tofu is in the provisioner: it has said all it needs
            # to the API until the apply ends (tofu's own calls are not
            # what is tested here)
            deadline = time.time() + 120
            url = None
            while time.time() < deadline:
                a = pc.get("%s/runs/%s/apply" % (API, run)).json["data"]
                url = a["attributes"].get("log-read-url")
                if url and b"sleep 15" in pc.get(url, token=None).body:
                    break
                time.sleep(0.2)
            assert sql(p, "SELECT node FROM jobs WHERE run_id = '%s' AND "
                       "phase = 'apply'" % run) == [[node]]
            p.kill9()
            # down long enough for heartbeats and log flushes to fail
            deadline = time.time() + 3
            while time.time() < deadline:
                assert s.proc.poll() is None
                time.sleep(0.2)
            p.start()
            pc = p.client()
            wait_status(pc, run, ("applied",), sec=s)
            assert "cannot reach the primaries" in s.log()
            s.proc.send_signal(signal.SIGTERM)
            assert s.wait_exit(60) == 0, s.log()
        finally:
            s.close()
    finally:
        p.close()


def test_revoked_credential_stops_the_node(primary, c, secondary):
    node = secondary.node_id()
    sql(primary, "UPDATE nodes SET revoked = 1 WHERE id = '%s'" % node)
    assert secondary.wait_exit(60) != 0
    log = secondary.log()
    assert "the primaries refuse this node's credential" in log, log
    assert "was revoked" in log, log
    assert "left the cluster" not in log


def test_a_node_marked_gone_for_silence_comes_back(primary, c, org,
                                                   secondary):
    """The leader marks a node gone when its heartbeats stop for 30 s (a
    network split, or primaries too starved to answer through the load
    balancer); one that is heard from again is active, and runs jobs."""
    node = secondary.node_id()
    sql(primary, "UPDATE nodes SET state = 'gone' WHERE id = '%s'" % node)
    deadline = time.time() + 30
    while time.time() < deadline and sql(
            primary, "SELECT state FROM nodes WHERE id = '%s'" % node) != \
            [["active"]]:
        assert secondary.proc.poll() is None, secondary.log()
        time.sleep(0.2)
    assert sql(primary, "SELECT state FROM nodes WHERE id = '%s'" %
               node) == [["active"]], secondary.log()
    assert "marked gone after its heartbeats stopped, is heard again" in \
        primary.full_log()
    ws = new_workspace(c, org)
    run = queue_run(c, ws, b'output "o" {\n  value = 1\n}\n')
    wait_status(c, run, ("applied", "planned_and_finished"), sec=secondary)
    jobs = sql(primary, "SELECT node FROM jobs WHERE run_id = '%s'" % run)
    assert jobs and all(j[0] == node for j in jobs), jobs
    assert "refuse this node's credential" not in secondary.log()


def test_cancel_reaches_the_secondary(primary, c, org, secondary):
    node = secondary.node_id()
    ws = new_workspace(c, org)
    run = queue_run(c, ws, b'resource "terraform_data" "slow" {\n'
                           b'  provisioner "local-exec" {\n'
                           b'    command = "sleep 60"\n  }\n}\n')
    deadline = time.time() + 120
    while time.time() < deadline and sql(
            primary, "SELECT node FROM jobs WHERE run_id = '%s' AND "
            "phase = 'apply'" % run) != [[node]]:
        time.sleep(0.1)
    r = c.post("%s/runs/%s/actions/cancel" % (API, run))
    assert r.status == 202, r
    # the job heartbeat brings the cancel; tofu is interrupted, not waited
    # out (the provisioner would sleep 60 s)
    assert wait_status(c, run, ("canceled",), timeout=40,
                       sec=secondary) == "canceled"
    assert "apply canceled" in secondary.log(), secondary.log()[-3000:]
