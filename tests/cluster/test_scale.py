"""Scale while runs are queued: a cluster of three primaries and two
secondaries (capacity 2) gets 100 plan-only runs of a tiny configuration
through the API, grows to eight secondaries while they are queued, then
shrinks to one while they run.  Every run must end planned_and_finished,
each executed exactly once: one plan job per run, claimed by a secondary,
and one "plan of run R started" line in all the secondaries' logs
together; the drained secondaries leave the registry; nothing is stuck.  Then the
last, idle, secondary drains within seconds.

SPDX-License-Identifier: MPL-2.0
"""
import collections
import concurrent.futures
import io
import os
import re
import sys
import tarfile
import time
import uuid

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from cluster import Cluster, alive  # noqa: E402

TOFU_BIN = os.environ["TOFU_BIN"]
# minutes of its own: run by run_scale.sh, not with the other cluster tests
pytestmark = pytest.mark.skipif(
    os.environ.get("TERRACE_CLUSTER_SCALE") != "1",
    reason="run by tests/cluster/run_scale.sh (TERRACE_CLUSTER_SCALE=1)")
RUNS = int(os.environ.get("TERRACE_SCALE_RUNS", "100"))
API = "/api/v2"
MAIN_TF = b'resource "terraform_data" "x" {\n  input = "scale"\n}\n'
STARTED = re.compile(r"executor: job (\S+): plan of run (\S+) started")
SERVER_ERROR = re.compile(r" (GET|POST|PATCH|PUT|DELETE) \S+ 5\d\d ")
# a primary sending the tool to as many nodes as it may asks the next to
# come back later (503 + Retry-After): back pressure, not an error
TOOL_BUSY = re.compile(r" GET /api/internal/v1/tools/\S+ 503 ")
FINAL = ("planned_and_finished", "errored", "canceled", "force_canceled",
         "discarded")


def tgz(text):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as t:
        ti = tarfile.TarInfo("main.tf")
        ti.size = len(text)
        t.addfile(ti, io.BytesIO(text))
    return buf.getvalue()


def ok(r, *statuses):
    assert r.status in statuses, r
    return r


@pytest.fixture(scope="module")
def cluster():
    c = Cluster(primaries=3, secondaries=2, capacity=2, tofu_bin=TOFU_BIN)
    try:
        c.up()
        yield c
    finally:
        c.stop()
        bad = c.sanitizer_lines()
        text = c.log_text(3000) if bad else ""
        c.close()
    assert not bad, "sanitizer reports in the node logs:\n" + text


def queue_runs(c, n):
    """n plan-only runs of one uploaded configuration version."""
    org = "scale-" + uuid.uuid4().hex[:8]
    ok(c.post(API + "/organizations", {"data": {
        "type": "organizations",
        "attributes": {"name": org, "email": "scale@example.com"}}}), 201)
    ws = ok(c.post("%s/organizations/%s/workspaces" % (API, org), {"data": {
        "type": "workspaces", "attributes": {"name": "ws"}}}),
        201).json["data"]["id"]
    cv = ok(c.post("%s/workspaces/%s/configuration-versions" % (API, ws),
                   {"data": {"type": "configuration-versions",
                             "attributes": {"auto-queue-runs": False}}}),
            201).json["data"]
    ok(c.put(cv["attributes"]["upload-url"], raw=tgz(MAIN_TF), token=None),
       200)
    body = {"data": {
        "type": "runs", "attributes": {"plan-only": True},
        "relationships": {
            "workspace": {"data": {"type": "workspaces", "id": ws}},
            "configuration-version": {"data": {
                "type": "configuration-versions", "id": cv["id"]}}}}}

    def one(_):
        return ok(c.post(API + "/runs", body), 201).json["data"]["id"]
    # several at once: queued one by one on a loaded machine, the first
    # two secondaries would plan them as fast as they came
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        runs = list(pool.map(one, range(n)))
    return org, runs


def statuses(c, org):
    """{run id: status} of the organization's runs, from the database
    (100 API reads a second would load the machine more than the runs)."""
    return dict(c.sql(
        "SELECT r.id, r.status FROM runs r JOIN workspaces w"
        " ON w.id = r.workspace_id WHERE w.org = '%s'" % org))


def wait_until(c, org, pred, timeout, what):
    deadline = time.monotonic() + timeout
    st = {}
    while time.monotonic() < deadline:
        st = statuses(c, org)
        if pred(st):
            return st
        time.sleep(0.5)
    counts = collections.Counter(st.values())
    pytest.fail("%s not reached in %d s: %r\n%s" % (
        what, timeout, dict(counts), c.log_text(1500)))


def registry(c):
    r = ok(c.client().get(API + "/admin/nodes"), 200)
    return [n["attributes"] for n in r.json["data"]]


def test_scale_2_8_1_while_runs_are_queued(cluster):
    c = cluster
    api = c.client()
    t0 = time.monotonic()
    org, runs = queue_runs(api, RUNS)
    print("queued %d runs in %.1f s" % (RUNS, time.monotonic() - t0))

    c.scale(8)
    st = statuses(c, org)
    done = sum(1 for s in st.values() if s in FINAL)
    print("scaled to 8 at %.1f s; %d runs finished" % (
        time.monotonic() - t0, done))
    assert done < RUNS, "every run finished before the scale-up"
    # the new secondaries take jobs: more than the first two run plans
    wait_until(c, org, lambda s: sum(1 for v in s.values() if v in FINAL)
               >= RUNS // 2, 240, "half of the runs finished")
    c.scale(1)
    left = RUNS - sum(1 for v in statuses(c, org).values() if v in FINAL)
    print("scaled to 1 at %.1f s; %d runs not finished" % (
        time.monotonic() - t0, left))
    st = wait_until(c, org, lambda s: all(v in FINAL for v in s.values()),
                    240, "every run finished")
    print("all %d runs finished at %.1f s" % (RUNS, time.monotonic() - t0))

    assert set(st) == set(runs), "runs appeared or vanished"
    wrong = {r: s for r, s in st.items() if s != "planned_and_finished"}
    assert not wrong, "runs not planned_and_finished: %r" % wrong

    # one plan job per run, done, claimed by a secondary
    jobs = c.sql("SELECT j.run_id, j.phase, j.status, COALESCE(n.role, '-'),"
                 " COALESCE(j.node, '-') FROM jobs j JOIN runs r"
                 " ON r.id = j.run_id JOIN workspaces w"
                 " ON w.id = r.workspace_id LEFT JOIN nodes n"
                 " ON n.id = j.node WHERE w.org = '%s'" % org)
    per_run = collections.Counter(j[0] for j in jobs)
    assert all(per_run[r] == 1 for r in runs), \
        "runs without exactly one job: %r" % {
            r: per_run[r] for r in runs if per_run[r] != 1}
    bad = [j for j in jobs if j[1:4] != ["plan", "done", "secondary"]]
    assert not bad, "jobs not a finished plan of a secondary: %r" % bad
    nodes_used = collections.Counter(j[4] for j in jobs)
    print("plans per secondary: %s" % sorted(nodes_used.values()))
    assert len(nodes_used) > 2, "the added secondaries ran nothing: %r" % \
        nodes_used

    # the secondaries' own account: each run's plan started exactly once
    logs = c.logs()
    started = collections.Counter()
    for name, text in logs.items():
        if name.startswith("s"):
            for m in STARTED.finditer(text):
                started[m.group(2)] += 1
    twice = {r: n for r, n in started.items() if r in st and n != 1}
    assert not twice, "plans started more than once: %r" % twice
    missing = [r for r in runs if started[r] == 0]
    assert not missing, "plans no secondary started: %r" % missing[:5]

    # the drained secondaries finished and left; one stays active
    deadline = time.monotonic() + 60
    while True:
        sec = [n for n in registry(c) if n["role"] == "secondary"]
        active = [n for n in sec if n["state"] == "active"]
        if len(active) == 1 and all(n["state"] in ("active", "gone")
                                    for n in sec):
            break
        assert time.monotonic() < deadline, sec
        time.sleep(0.5)
    alive_s = [n for n in c.nodes() if n[2] == "secondary"]
    assert len(alive_s) == 1, c.nodes()

    # readiness answers 503 while a node starts or drains: not an error
    # an idle secondary drains at once: its parked long poll (25 s) ends
    # when the primaries see it draining, not at its deadline
    pid = alive_s[0][1]
    t1 = time.monotonic()
    c.scale(0)
    while alive(pid) and \
            time.monotonic() - t1 < 30:
        time.sleep(0.1)
    drained = time.monotonic() - t1
    print("idle secondary drained and left in %.1f s" % drained)
    assert drained < 10, "an idle secondary took %.1f s to drain" % drained

    errors = [ln for name, text in logs.items() if name != "lb.log"
              for ln in text.splitlines() if SERVER_ERROR.search(ln) and
              "/_health_check" not in ln and not TOOL_BUSY.search(ln)]
    assert not errors, "server errors:\n" + "\n".join(errors[:20])
