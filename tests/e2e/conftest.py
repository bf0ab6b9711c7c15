"""End-to-end fixtures: the real OpenTofu CLI against a real terraced.

The `daemon` fixture is parametrized by backend (sqlite = demo role,
pg = primary role on a throwaway PostgreSQL; TERRACE_E2E_BACKENDS limits
the list; cluster = `terrace cluster up` with three primaries and two
secondaries behind HAProxy, running CLUSTER_TESTS only and checking that
every phase ran on a secondary).  `tofu` gives a per-test working directory with its own HOME,
CLI config (credentials for 127.0.0.1:PORT), SSL_CERT_FILE pointing at the
daemon's CA and a dead HTTPS proxy, so anything but loopback fails fast.

SPDX-License-Identifier: MPL-2.0
"""
import itertools
import json
import os
import re
import subprocess
import sys
import time
import uuid

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from terrace import Daemon  # noqa: E402
from cluster import Cluster  # noqa: E402

CACHE = os.environ.get("TERRACE_CACHE",
                       os.path.join(os.path.expanduser("~"), ".cache",
                                    "terrace"))
TOFU_BIN = os.environ.get("TOFU_BIN",
                          os.path.join(CACHE, "tofu-1.10.10", "tofu"))
TIMEOUT = int(os.environ.get("TERRACE_E2E_TIMEOUT", "120"))
BACKENDS = [b for b in os.environ.get("TERRACE_E2E_BACKENDS",
                                      "sqlite,pg").split(",") if b]
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def unique(prefix="e2e"):
    return "%s-%s" % (prefix, uuid.uuid4().hex[:10])


# What the cluster backend runs (about two minutes): remote plans and
# applies, state and locking through HAProxy.  Tests reading a node's data
# directory or restarting the daemon have no meaning there.
CLUSTER_TESTS = {
    "test_remote.py": {"test_plan_streams_into_terminal",
                       "test_apply_yes_then_output",
                       "test_auto_approve_and_destroy",
                       "test_saved_plan_show_and_apply",
                       "test_config_error_errors",
                       "test_ctrl_c_cancels_run",
                       "test_speculative_plan_while_run_queued"},
    "test_ssh_keys.py": {
        "test_a_run_fetches_a_git_module_with_the_workspace_key"},
    "test_tofu.py": {"test_name_strategy_autocreate",
                     "test_lock_held_by_running_apply",
                     "test_lock_via_api_and_force_unlock",
                     "test_state_push",
                     "test_state_push_force_stale_refused"},
}


def _cluster_item(item):
    cs = getattr(item, "callspec", None)
    return cs is not None and cs.params.get("daemon") == "cluster"


def pytest_collection_modifyitems(config, items):
    if not os.access(TOFU_BIN, os.X_OK):
        skip = pytest.mark.skip(reason="tofu binary missing: " + TOFU_BIN)
        for item in items:
            item.add_marker(skip)
    keep, drop = [], []
    for item in items:
        wanted = CLUSTER_TESTS.get(os.path.basename(str(item.fspath)), ())
        if _cluster_item(item) and item.originalname not in wanted:
            drop.append(item)
        else:
            keep.append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


@pytest.fixture(scope="session", params=BACKENDS)
def daemon(request):
    if request.param == "cluster":
        yield from _cluster()
        return
    # a relative --data-dir, as the demo's ./terrace-data: every path the
    # daemon hands to tofu must still resolve
    yield from own_daemon([], backend=request.param)


def own_daemon(extra_args, backend="sqlite", also=None):
    """A daemon started with the tofu binary and extra_args, for a fixture
    to yield from; stopped afterwards, its log checked for sanitizer
    reports (and lines matching the pattern also)."""
    d = Daemon(backend=backend, relative=True,
               extra_args=["--tofu-bin", TOFU_BIN] + list(extra_args))
    try:
        d.start()
    except Exception:
        d.close()
        raise
    yield d
    d.stop()
    log = _daemon_log(d)
    d.close()
    bad = [ln for ln in log.splitlines()
           if SANITIZER.search(ln) or (also is not None and also.search(ln))]
    assert not bad, "sanitizer reports in the daemon log:\n" + \
        "\n".join(bad) + "\n--- the log's end:\n" + log[-8000:]


SANITIZER = re.compile(r"AddressSanitizer|LeakSanitizer|runtime error:|"
                       r"UndefinedBehaviorSanitizer")


def _cluster():
    c = Cluster(primaries=3, secondaries=2, tofu_bin=TOFU_BIN)
    try:
        c.up()
        yield c
    finally:
        c.stop()
        bad = c.sanitizer_lines()
        log = c.log_text(8000) if bad else ""
        c.close()
    assert not bad, "sanitizer reports in the node logs:\n" + log


def _node_logs(d):
    """{name: text} of the daemon's log, or of each node of a cluster
    (HAProxy's aside: its lines are not terraced's)."""
    if isinstance(d, Cluster):
        return {k: v for k, v in d.logs().items() if k != "lb.log"}
    return {"terraced.log": _daemon_log(d)}


def _daemon_log(d):
    if isinstance(d, Cluster):
        return "".join(_node_logs(d).values())
    try:
        with open(os.path.join(d.tmp, "terraced.log"), "rb") as f:
            return f.read().decode(errors="replace")
    except OSError:
        return ""


SERVER_ERROR = re.compile(r" (GET|POST|PATCH|PUT|DELETE) \S+ 5\d\d ")
# a primary sending the tool to as many nodes as it may asks the next to
# come back later (503 + Retry-After): back pressure, not an error
TOOL_BUSY = re.compile(r" GET /api/internal/v1/tools/\S+ 503 ")


@pytest.fixture(autouse=True)
def daemon_healthy(request):
    """Each test ends with the daemon still running, having answered no
    request with a 5xx."""
    d = None
    if "daemon" in request.fixturenames:
        d = request.getfixturevalue("daemon")
        start = {k: len(v) for k, v in _node_logs(d).items()}
    yield
    if d is None:
        return
    assert d.proc.poll() is None, (
        "terraced exited (%s) during the test; log:\n%s" %
        (d.proc.returncode, d.log_text()))
    new = "".join(v[start.get(k, 0):] for k, v in _node_logs(d).items())
    bad = [ln for ln in new.splitlines() if SERVER_ERROR.search(ln) and
           not TOOL_BUSY.search(ln)]
    assert not bad, "server errors during the test:\n" + "\n".join(bad)


@pytest.fixture(autouse=True)
def on_secondaries(request):
    """On the cluster backend: every phase a test's runs executed ran on a
    secondary (its job claimed by a secondary node, and the plan or apply
    naming a secondary as execution-node), and a remote-execution test
    ran at least one."""
    if "daemon" not in request.fixturenames or \
            getattr(request.node, "callspec", None) is None or \
            request.node.callspec.params.get("daemon") != "cluster":
        yield
        return
    c = request.getfixturevalue("daemon")
    if "org" in request.fixturenames:
        # set up first so torn down after this check: deleting the
        # organization deletes its runs
        request.getfixturevalue("org")
    before = {r[0] for r in c.sql("SELECT id FROM jobs")}
    yield
    jobs = [j for j in c.sql(
        "SELECT j.id, j.run_id, j.phase, COALESCE(n.role, '-'),"
        " COALESCE(n.name, '-') FROM jobs j LEFT JOIN nodes n"
        " ON n.id = j.node WHERE j.node IS NOT NULL") if j[0] not in before]
    wrong = [j for j in jobs if j[3] != "secondary"]
    assert not wrong, "phases not run by a secondary: %r" % wrong
    names = {r[0] for r in c.sql(
        "SELECT name FROM nodes WHERE role = 'secondary'")}
    prim = {r[0] for r in c.sql(
        "SELECT name FROM nodes WHERE role = 'primary'")}
    client = c.client()
    for _, run, phase, _, _ in jobs:
        r = client.get("/api/v2/runs/%s/%s" % (run, phase))
        assert r.status == 200, r
        node = r.json["data"]["attributes"].get("execution-node")
        assert node in names and node not in prim, (run, phase, node, names)
    if "remote" in request.fixturenames:
        assert jobs, "no phase of this remote-execution test ran anywhere"
    print("cluster: %d phases ran on secondaries" % len(jobs))


# runs that ended: waiting for another status is over
RUN_ENDED = ("errored", "canceled", "force_canceled", "discarded")


def phase_log(client, run_id, phase):
    """The run's plan or apply log so far, read through the API ("" when
    the phase has none), without ANSI colours or STX/ETX framing."""
    r = client.get("/api/v2/runs/" + run_id)
    assert r.status == 200, r
    rel = r.json["data"]["relationships"].get(phase, {}).get("data")
    if not rel:
        return ""
    out, off = b"", 0
    while True:
        r = client.get("/api/v2/%s/%s/logs?offset=%d&limit=1048576" %
                       (rel["type"], rel["id"], off))
        assert r.status in (200, 404), r
        if r.status == 404 or not r.body:
            break
        out += r.body
        off += len(r.body)
    return ANSI.sub("", out.replace(b"\x02", b"").replace(b"\x03", b"")
                    .decode(errors="replace"))


def run_logs(client, run_id, tail=4000):
    """The run's plan and apply logs for a failure message: what a CI
    failure needs to tell why the run errored.  Never raises."""
    parts = []
    for phase in ("plan", "apply"):
        try:
            text = phase_log(client, run_id, phase)[-tail:]
        except Exception as e:  # the message must still come out
            text = "(cannot read it: %r)" % (e,)
        parts.append("--- %s log of %s ---\n%s" % (phase, run_id,
                                                   text or "(empty)"))
    return "\n".join(parts)


def wait_run_status(client, run_id, want, timeout=90, context=None):
    """The run's document once its status is one of want.  Fails when the
    time is up or the run ended otherwise, printing the status, the plan
    and apply logs and context() (a daemon or agent log tail, say)."""
    deadline = time.time() + timeout
    st = None
    while time.time() < deadline:
        r = client.get("/api/v2/runs/" + run_id)
        assert r.status == 200, r
        st = r.json["data"]["attributes"]["status"]
        if st in want:
            return r.json["data"]
        if st in RUN_ENDED:
            break
        time.sleep(0.2)
    more = ""
    if context is not None:
        try:
            more = "\n" + context()
        except Exception as e:
            more = "\n(no context: %r)" % (e,)
    pytest.fail("run %s is %s, wanted %s\n%s%s" %
                (run_id, st, "/".join(want), run_logs(client, run_id), more),
                pytrace=False)


class Api:
    """JSON:API helpers over the admin client, failing with context."""

    def __init__(self, daemon):
        self.d = daemon
        self.c = daemon.client()

    def ok(self, resp, *statuses):
        assert resp.status in statuses, "%r\n--- daemon log ---\n%s" % (
            resp, self.d.log_text())
        return resp

    def create_org(self):
        name = unique("org")
        self.ok(self.c.post("/api/v2/organizations", {
            "data": {"type": "organizations",
                     "attributes": {"name": name,
                                    "email": "e2e@example.com"}}}), 201)
        return name

    def workspace(self, org, name):
        """The workspace document's data, or None when it is missing."""
        r = self.c.get("/api/v2/organizations/%s/workspaces/%s" %
                       (org, name))
        if r.status == 404:
            return None
        return self.ok(r, 200).json["data"]

    def create_workspace(self, org, name, **attrs):
        a = {"name": name}
        a.update(attrs)
        r = self.ok(self.c.post("/api/v2/organizations/%s/workspaces" % org,
                                {"data": {"type": "workspaces",
                                          "attributes": a}}), 201)
        return r.json["data"]

    def set_local(self, ws_id):
        r = self.ok(self.c.patch("/api/v2/workspaces/" + ws_id, {
            "data": {"type": "workspaces",
                     "attributes": {"execution-mode": "local"}}}), 200)
        assert r.json["data"]["attributes"]["execution-mode"] == "local", r
        return r.json["data"]

    def lock(self, ws_id, reason="e2e"):
        return self.ok(self.c.post(
            "/api/v2/workspaces/%s/actions/lock" % ws_id,
            {"reason": reason}), 200).json["data"]

    def current_state(self, ws_id):
        """(state-version attributes, raw state bytes), or None."""
        r = self.c.get("/api/v2/workspaces/%s/current-state-version" % ws_id)
        if r.status == 404:
            return None
        sv = self.ok(r, 200).json["data"]
        url = sv["attributes"].get("hosted-state-download-url")
        assert url, "no hosted-state-download-url: %r" % sv
        dl = self.ok(self.c.get(url, headers={"Accept": "application/json"}),
                     200)
        return sv, dl.body

    def outputs(self, ws_id):
        r = self.ok(self.c.get(
            "/api/v2/workspaces/%s/current-state-version-outputs" % ws_id),
            200)
        return r.json["data"]

    def output(self, out_id):
        return self.ok(self.c.get("/api/v2/state-version-outputs/" + out_id),
                       200).json["data"]


@pytest.fixture(scope="session")
def api(daemon):
    return Api(daemon)


@pytest.fixture
def org(api):
    name = api.create_org()
    yield name
    api.c.delete("/api/v2/organizations/" + name)


class Result:
    def __init__(self, args, rc, out, err):
        self.args, self.rc = args, rc
        self.out, self.err = ANSI.sub("", out), ANSI.sub("", err)

    @property
    def text(self):
        return self.out + self.err


class Tofu:
    """Runs the tofu CLI in one working directory against one daemon."""

    def __init__(self, daemon, root):
        self.d = daemon
        self.root = str(root)
        self.wd = os.path.join(self.root, "work")
        self.home = os.path.join(self.root, "home")
        self.logs = os.path.join(self.root, "tflogs")
        for p in (self.wd, self.home, self.logs):
            os.makedirs(p, exist_ok=True)
        self.host = "127.0.0.1:%d" % daemon.port
        self.cli_config = os.path.join(self.home, "tofurc")
        self.set_token(daemon.admin_token)
        self.seq = itertools.count(1)

    def set_token(self, token):
        """Rewrite the CLI config with credentials for the daemon."""
        with open(self.cli_config, "w") as f:
            f.write('disable_checkpoint = true\n'
                    'credentials "%s" {\n  token = "%s"\n}\n' %
                    (self.host, token))

    def env(self, extra=None):
        e = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": self.home,
            "TF_CLI_CONFIG_FILE": self.cli_config,
            "SSL_CERT_FILE": self.d.ca,
            "TF_IN_AUTOMATION": "1",
            "CHECKPOINT_DISABLE": "1",
            # Go never proxies loopback; everything else hits a dead port.
            "HTTPS_PROXY": "http://127.0.0.1:9",
            "HTTP_PROXY": "http://127.0.0.1:9",
            "NO_PROXY": "",
            "TF_LOG": os.environ.get("TERRACE_E2E_TF_LOG", "DEBUG"),
        }
        e.update(extra or {})
        return e

    def write(self, text, name="main.tf"):
        with open(os.path.join(self.wd, name), "w") as f:
            f.write(text)

    def _log_path(self, args):
        return os.path.join(self.logs, "%02d-%s.log" %
                            (next(self.seq), args[0] if args else "x"))

    def report(self, res, log_path, why):
        tail = ""
        try:
            with open(log_path, errors="replace") as f:
                lines = f.read().splitlines()
            tail = "\n--- TF_LOG tail ---\n" + "\n".join(lines[-30:])
        except OSError:
            pass
        return ("%s\n$ tofu %s  (rc=%s)\n--- stdout ---\n%s\n--- stderr ---\n"
                "%s%s\n--- daemon log tail ---\n%s" %
                (why, " ".join(res.args), res.rc, res.out, res.err, tail,
                 self.d.log_text()[-3000:]))

    def run(self, *args, rc=0, input=None, env=None, timeout=TIMEOUT):
        """Run tofu; rc=None accepts any exit code."""
        log_path = self._log_path(args)
        e = self.env(env)
        e["TF_LOG_PATH"] = log_path
        try:
            p = subprocess.run([TOFU_BIN] + list(args), cwd=self.wd, env=e,
                               input=input if input is not None else "",
                               capture_output=True, text=True,
                               timeout=timeout)
            res = Result(args, p.returncode, p.stdout, p.stderr)
        except subprocess.TimeoutExpired as t:
            res = Result(args, "timeout", _s(t.stdout), _s(t.stderr))
            pytest.fail(self.report(res, log_path,
                                    "tofu timed out after %ds" % timeout),
                        pytrace=False)
        res.log_path = log_path
        if rc is not None and res.rc != rc:
            pytest.fail(self.report(res, log_path,
                                    "unexpected exit code (want %d)" % rc),
                        pytrace=False)
        return res

    def start(self, *args, env=None):
        """Start tofu in the background; finish() collects it."""
        log_path = self._log_path(args)
        e = self.env(env)
        e["TF_LOG_PATH"] = log_path
        p = subprocess.Popen([TOFU_BIN] + list(args), cwd=self.wd, env=e,
                             stdin=subprocess.DEVNULL,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True)
        p.e2e_args, p.e2e_log = args, log_path
        return p

    def finish(self, p, rc=0, timeout=TIMEOUT):
        try:
            out, err = p.communicate(timeout=timeout)
            res = Result(p.e2e_args, p.returncode, out, err)
        except subprocess.TimeoutExpired:
            p.kill()
            out, err = p.communicate()
            res = Result(p.e2e_args, "timeout", out, err)
            pytest.fail(self.report(res, p.e2e_log, "background tofu timed "
                                    "out"), pytrace=False)
        if rc is not None and res.rc != rc:
            pytest.fail(self.report(res, p.e2e_log,
                                    "unexpected exit code (want %d)" % rc),
                        pytrace=False)
        return res


def _s(b):
    if b is None:
        return ""
    return b.decode(errors="replace") if isinstance(b, bytes) else b


@pytest.fixture
def tofu(daemon, tmp_path):
    t = Tofu(daemon, tmp_path)
    yield t
    for p in list(getattr(t, "bg", [])):
        if p.poll() is None:
            p.kill()
            p.wait()

