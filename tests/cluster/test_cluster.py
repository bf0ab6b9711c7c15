"""The local cluster launcher end to end: `terrace cluster up` (three
primaries on a throwaway PostgreSQL, HAProxy in front), a real
`tofu init && tofu apply` through the load balancer with the files the
launcher wrote, a kill -9 of a primary while the API is read through
HAProxy, and `terrace cluster down` leaving no process behind.

SPDX-License-Identifier: MPL-2.0
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import uuid

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from terrace import BUILD, Client, new_workspace, queue_run  # noqa: E402

TOFU_BIN = os.environ["TOFU_BIN"]
SECONDARIES = int(os.environ.get("TERRACE_CLUSTER_SECONDARIES", "0"))
TERRACED = os.environ.get("TERRACE_CLUSTER_TERRACED")  # another build's
UP = {}
ANSI = re.compile(r"\x1b\[[0-9;]*m")
SANITIZER = re.compile(r"AddressSanitizer|LeakSanitizer|runtime error:|"
                       r"UndefinedBehaviorSanitizer")


def terrace(*args, timeout=60, check=True):
    r = subprocess.run([os.path.join(BUILD, "terrace")] + list(args),
                       capture_output=True, text=True, timeout=timeout)
    if check:
        assert r.returncode == 0, "terrace %s: rc=%d\n%s%s" % (
            " ".join(args), r.returncode, r.stdout, r.stderr)
    return r


def nodes(d):
    """[(name, pid, role, address)] from DIR/nodes."""
    with open(os.path.join(d, "nodes")) as f:
        return [(n, int(p), r, a) for n, p, r, a in
                (ln.split() for ln in f if ln.strip())]


def alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


def procs_under(d):
    """Pids of live processes with d on their command line."""
    found = []
    for p in os.listdir("/proc"):
        if not p.isdigit() or int(p) == os.getpid():
            continue
        try:
            with open("/proc/%s/cmdline" % p, "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if d in cmd and alive(int(p)):
            found.append((int(p), cmd))
    return found


def logs(d):
    out = []
    ldir = os.path.join(d, "logs")
    for name in sorted(os.listdir(ldir)):
        with open(os.path.join(ldir, name), "rb") as f:
            text = f.read().decode(errors="replace")
        out.append("--- %s ---\n%s" % (name, text[-3000:]))
    return "\n".join(out)


@pytest.fixture(scope="module")
def cluster():
    # short: PostgreSQL's socket path lives inside it
    d = tempfile.mkdtemp(prefix="tcl-")
    t0 = time.monotonic()
    args = ["cluster", "up", "--dir", d, "--primaries", "3",
            "--secondaries", str(SECONDARIES), "--tofu-bin", TOFU_BIN]
    if TERRACED:
        args += ["--terraced", TERRACED]
    r = terrace(*args, timeout=180, check=False)
    UP["stderr"] = r.stderr
    print("cluster up: %.1f s" % (time.monotonic() - t0))
    try:
        assert r.returncode == 0, "cluster up: rc=%d\n%s%s\n%s" % (
            r.returncode, r.stdout, r.stderr, logs(d))
        yield d
    finally:
        left = procs_under(d)
        if left or os.path.exists(os.path.join(d, "pg", "data",
                                               "postmaster.pid")):
            terrace("cluster", "down", "--dir", d, check=False, timeout=120)
        text = logs(d)
        shutil.rmtree(d, ignore_errors=True)
        bad = [ln for ln in text.splitlines() if SANITIZER.search(ln)]
        assert not bad, "sanitizer reports in the node logs:\n" + text


def client(d):
    with open(os.path.join(d, "url")) as f:
        url = f.read().strip()
    with open(os.path.join(d, "admin-token")) as f:
        token = f.read().strip()
    return Client(url, os.path.join(d, "tls", "ca.pem"), token)


def tofu(d, wd, *args):
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": wd,
        "TF_CLI_CONFIG_FILE": os.path.join(d, "tofu.tfrc"),
        "SSL_CERT_FILE": os.path.join(d, "tls", "ca.pem"),
        "TF_IN_AUTOMATION": "1",
        "CHECKPOINT_DISABLE": "1",
        # Go never proxies loopback; anything else hits a dead port
        "HTTPS_PROXY": "http://127.0.0.1:9",
        "HTTP_PROXY": "http://127.0.0.1:9",
        "NO_PROXY": "",
    }
    r = subprocess.run([TOFU_BIN] + list(args), cwd=wd, env=env,
                       capture_output=True, text=True, timeout=120)
    out = ANSI.sub("", r.stdout + r.stderr)
    assert r.returncode == 0, "tofu %s: rc=%d\n%s\n%s" % (
        " ".join(args), r.returncode, out, logs(d))
    return out


def write_config(d, wd, org, value):
    with open(os.path.join(d, "url")) as f:
        host = f.read().strip().split("://", 1)[1]
    with open(os.path.join(wd, "main.tf"), "w") as f:
        f.write('terraform {\n  cloud {\n    hostname = "%s"\n'
                '    organization = "%s"\n'
                '    workspaces { name = "ws" }\n  }\n}\n'
                'resource "terraform_data" "x" { input = "%s" }\n'
                'output "v" { value = terraform_data.x.input }\n' %
                (host, org, value))


def test_launcher_files_and_nodes(cluster):
    d = cluster
    for name in ("url", "admin-token", "tofu.tfrc", "tls/ca.pem", "nodes",
                 "haproxy.cfg", "kek"):
        assert os.path.exists(os.path.join(d, name)), name
    for name in ("admin-token", "kek", "tofu.tfrc"):
        mode = os.stat(os.path.join(d, name)).st_mode & 0o777
        assert mode == 0o600, "%s has mode %o" % (name, mode)
    ns = nodes(d)
    roles = sorted(r for _, _, r, _ in ns)
    assert roles.count("primary") == 3, ns
    assert roles.count("lb") == 1 and roles.count("postgres") == 1, ns
    # secondaries, unless this terraced has none (the launcher says so)
    if roles.count("secondary") != SECONDARIES:
        assert roles.count("secondary") == 0, ns
        assert "no secondaries started" in UP["stderr"], UP["stderr"]
    for name, pid, role, _ in ns:
        assert alive(pid), "%s (pid %d) is not running" % (name, pid)
    # every primary answers on its own address, through the cluster CA
    for name, _, role, addr in ns:
        if role == "primary":
            r = Client(addr, os.path.join(d, "tls", "ca.pem")).get(
                "/_health_check?ready=1")
            assert r.status == 200, (name, r)
    st = terrace("cluster", "status", "--dir", d)
    assert "p3" in st.stdout and " down " not in st.stdout, st.stdout
    # with a node registry (issue 9): every primary active, one leader
    # (the election may still be under way: up to 10 s)
    deadline = time.monotonic() + 10
    while True:
        reg = client(d).get("/api/v2/admin/nodes")
        if reg.status == 404:
            break
        assert reg.status == 200, reg
        prim = [n["attributes"] for n in reg.json["data"]
                if n["attributes"]["role"] == "primary"]
        ok = len(prim) == 3 and all(a["state"] == "active" for a in prim) \
            and sum(1 for a in prim if a["leader"]) == 1
        if ok:
            # named by the launcher (--node-name): readable and unique
            assert sorted(a["name"] for a in prim) == \
                ["primary-1", "primary-2", "primary-3"], prim
            sec = [n["attributes"]["name"] for n in reg.json["data"]
                   if n["attributes"]["role"] == "secondary"
                   and n["attributes"]["state"] == "active"]
            assert sorted(sec) == ["secondary-%d" % (i + 1) for i in
                                   range(len(sec))], sec
            break
        assert time.monotonic() < deadline, prim


def test_reads_see_writes_made_on_another_primary(cluster):
    """Every primary keeps token lookups and workspace reads in its read
    cache (and serves lists' workspaces from it); a change made through
    one primary is seen by the very next read or list through another, and a token revoked on one is refused at once
    by the others."""
    d = cluster
    ca = os.path.join(d, "tls", "ca.pem")
    with open(os.path.join(d, "admin-token")) as f:
        token = f.read().strip()
    ps = [Client(a, ca, token) for _, _, r, a in nodes(d) if r == "primary"]
    assert len(ps) == 3
    org = "rc-" + uuid.uuid4().hex[:8]
    r = ps[0].post("/api/v2/organizations", {"data": {
        "type": "organizations",
        "attributes": {"name": org, "email": "rc@example.com"}}})
    assert r.status == 201, r
    ws = new_workspace(ps[0], org)
    path = "/api/v2/workspaces/" + ws

    def attrs(c):
        # the organization's list first (its items come from the same
        # cache), then the read: both must show the change
        r = c.get("/api/v2/organizations/%s/workspaces" % org)
        assert r.status == 200, r
        listed = [x for x in r.json["data"] if x["id"] == ws]
        r = c.get(path)
        assert r.status == 200, r
        assert listed == [r.json["data"]]
        return r.json["data"]

    for c in ps + ps:  # read, so that every primary holds it
        attrs(c)
    for i in range(9):
        w, rd = ps[i % 3], ps[(i + 1) % 3]
        r = w.post(path + "/actions/lock", {"reason": "r%d" % i})
        assert r.status == 200, r
        assert attrs(rd)["attributes"]["locked"] is True, i
        r = rd.post(path + "/actions/unlock")
        assert r.status == 200, r
        assert attrs(w)["attributes"]["locked"] is False, i
        r = w.patch(path, {"data": {"type": "workspaces", "attributes": {
            "description": "d%d" % i}}})
        assert r.status == 200, r
        assert attrs(rd)["attributes"]["description"] == "d%d" % i
    r = ps[1].post(path + "/relationships/tags", {"data": [
        {"type": "tags", "attributes": {"name": "blue"}}]})
    assert r.status == 204, r
    assert attrs(ps[2])["attributes"]["tag-names"] == ["blue"]
    r = ps[2].post(path + "/vars", {"data": {"type": "vars", "attributes": {
        "key": "k", "value": "v", "category": "terraform"}}})
    assert r.status == 201, r
    var = r.json["data"]["id"]
    got = attrs(ps[0])["relationships"]["vars"]["data"]
    assert [v["id"] for v in got] == [var]
    run = queue_run(ps[0], ws, b'resource "terraform_data" "x" {}\n')
    got = attrs(ps[1])["relationships"]["latest-run"]["data"]
    assert got is not None and got["id"] == run
    # an organization token, looked up (and cached) on every primary,
    # then revoked through one of them
    tpath = "/api/v2/organizations/%s/authentication-token" % org
    r = ps[0].post(tpath)
    assert r.status == 201, r
    ot = [c.with_token(r.json["data"]["attributes"]["token"]) for c in ps]
    for c in ot + ot:
        assert c.get(path).status == 200
    assert ps[2].delete(tpath).status == 204
    for c in ot:
        r = c.get(path)
        assert r.status == 401, r
    for c in ps:  # the cache was used, not passed over
        m = c.get("/metrics", token=None).body
        hits = re.search(rb"^terrace_read_cache_hits_total (\d+)$", m, re.M)
        assert hits and int(hits.group(1)) > 0, m[-2000:]


def test_apply_then_kill_a_primary(cluster, tmp_path):
    d = cluster
    c = client(d)
    org = "org-" + uuid.uuid4().hex[:8]
    r = c.post("/api/v2/organizations", {"data": {
        "type": "organizations",
        "attributes": {"name": org, "email": "cluster@example.com"}}})
    assert r.status == 201, r
    wd = str(tmp_path)
    write_config(d, wd, org, "one")
    tofu(d, wd, "init", "-input=false")
    out = tofu(d, wd, "apply", "-auto-approve", "-input=false")
    assert 'v = "one"' in out, out
    ws = c.get("/api/v2/organizations/%s/workspaces/ws" % org)
    assert ws.status == 200, ws
    ws_path = "/api/v2/workspaces/%s/current-state-version" % \
        ws.json["data"]["id"]
    serial = c.get(ws_path).json["data"]["attributes"]["serial"]

    # kill -9 one primary while reading through HAProxy: every read
    # answers (HAProxy retries a refused connection on another primary)
    # and HAProxy takes the dead primary out within the check interval
    lb_log = os.path.join(d, "logs", "lb.log")
    with open(lb_log, "rb") as f:
        start = len(f.read())
    victim = "p2"
    t0 = time.monotonic()
    terrace("cluster", "kill", "--dir", d, victim)
    statuses, detected = [], None
    while time.monotonic() - t0 < 10:
        statuses.append(c.get(ws_path).status)
        with open(lb_log, "rb") as f:
            tail = f.read()[start:].decode(errors="replace")
        if detected is None and "primaries/%s is DOWN" % victim in tail:
            detected = time.monotonic() - t0
        if detected is not None and len(statuses) >= 20:
            break
    failed = [s for s in statuses if s != 200]
    print("kill -9 %s: HAProxy marked it down after %s s; %d reads, "
          "%d failed" % (victim, "%.2f" % detected if detected else "-",
                         len(statuses), len(failed)))
    assert detected is not None and detected <= 5, (
        "HAProxy did not mark %s down within 5 s:\n%s" % (victim, tail))
    assert not failed, "reads through HAProxy failed: %r" % failed
    st = terrace("cluster", "status", "--dir", d, check=False)
    assert st.returncode == 1 and re.search(r"^%s .* down " % victim,
                                            st.stdout, re.M), st.stdout

    # writes go on with two primaries: a second apply, a new state
    write_config(d, wd, org, "two")
    out = tofu(d, wd, "apply", "-auto-approve", "-input=false")
    assert 'v = "two"' in out, out
    sv = c.get(ws_path)
    assert sv.status == 200 and sv.json["data"]["attributes"]["serial"] > \
        serial, sv


def test_refusals_change_nothing(cluster):
    d = cluster
    with open(os.path.join(d, "nodes")) as f:
        before = f.read()
    r = terrace("cluster", "up", "--dir", d, check=False)
    assert r.returncode == 1 and "already runs" in r.stderr, r
    for args, want in ((["kill", "--dir", d, "nosuch"], "no node nosuch"),
                       (["drain", "--dir", d, "p1"], "only secondaries"),
                       (["kill", "--dir", d, "p1", "--signal", "HUP"],
                        "KILL or TERM"),
                       (["up", "--dir", d, "--primaries", "0"], "1..9"),
                       (["up", "--dir", d, "--listen", "0.0.0.0:8443"],
                        "loopback"),
                       (["up", "--primaries", "3"], "--dir D is required")):
        r = terrace("cluster", *args, check=False)
        assert r.returncode == 2 and want in r.stderr, (args, r)
    with open(os.path.join(d, "nodes")) as f:
        assert f.read() == before
    for name, pid, _, _ in nodes(d):
        if name != "p2":  # killed above
            assert alive(pid), name


def test_missing_haproxy_starts_nothing(tmp_path):
    d = str(tmp_path / "c")
    r = terrace("cluster", "up", "--dir", d, "--haproxy",
                str(tmp_path / "no-haproxy"), check=False)
    assert r.returncode == 1 and "haproxy not found" in r.stderr, r
    assert procs_under(d) == []
    assert not os.path.exists(os.path.join(d, "pg"))
    r = terrace("cluster", "status", "--dir", d + "-none", check=False)
    assert r.returncode == 1 and "no cluster" in r.stderr, r


def test_down_leaves_no_process(cluster):
    d = cluster
    ns = nodes(d)
    t0 = time.monotonic()
    r = terrace("cluster", "down", "--dir", d, timeout=120)
    print("cluster down: %.1f s" % (time.monotonic() - t0))
    assert "no process left" in r.stdout, r.stdout
    for name, pid, _, _ in ns:
        assert not alive(pid), "%s (pid %d) still runs" % (name, pid)
    assert procs_under(d) == []
    assert not os.path.exists(os.path.join(d, "pg", "data",
                                           "postmaster.pid"))
    # a second down finds nothing to stop and says so without error
    terrace("cluster", "down", "--dir", d)
