"""The internal API secondaries call on a primary (/api/internal/v1/),
driven with plain HTTP as a secondary would: joining with a wrong, a
rotated and the current join token; claiming the job of a real queued
run, heartbeating, logging, fetching its configuration and tool, and
finishing it, checked through the public API; a node that left is
refused; user tokens and node credentials each stay on their own API;
bad input gets the right 4xx and changes nothing (checked in the
database itself).  Also the join token's admin endpoints and
`terrace admin join-token`.

Always a primary on PostgreSQL (the internal API exists only there),
started with --executors 0 so no local worker takes a job."""
import hashlib
import http.client
import json
import os
import ssl
import subprocess
import threading
import time
import urllib.parse

import pytest

from conftest import assert_error, unique
from terrace import BUILD, Daemon, config_tgz

API = "/api/v2"
INT = "/api/internal/v1"
MAX_BODY = 1 << 20


@pytest.fixture(scope="module")
def d():
    dm = Daemon(backend="pg",
                extra_args=["--executors", "0", "--max-body", str(MAX_BODY)])
    dm.start()
    yield dm
    rc = dm.stop()
    with open(os.path.join(dm.tmp, "terraced.log"), errors="replace") as f:
        log = f.read()
    dm.close()
    # a clean stop: no leak or sanitizer report from any of the above
    assert rc == 0 and "Sanitizer" not in log, log[-4000:]


@pytest.fixture(scope="module")
def c(d):
    return d.client()


@pytest.fixture(scope="module")
def tool(c, d):
    return register_tool(c, d)


def register_tool(c, d):
    """A registered tool version (a stand-in binary the claim resolves)."""
    text = "#!/bin/sh\necho stand-in tofu\n"
    path = os.path.join(d.tmp, "tofu-stand-in")
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, 0o755)
    sha = hashlib.sha256(text.encode()).hexdigest()
    r = c.post(API + "/admin/terraform-versions", {"data": {
        "type": "terraform-versions",
        "attributes": {"version": "1.9.7", "path": path, "sha": sha}}})
    assert r.status == 201, r
    return {"version": "1.9.7", "sha": sha, "bytes": text.encode()}


@pytest.fixture
def org(c):
    name = unique("org")
    r = c.post(API + "/organizations", {"data": {
        "type": "organizations",
        "attributes": {"name": name, "email": "o@example.com"}}})
    assert r.status == 201, r
    yield name
    c.delete(API + "/organizations/" + name)


# ---- helpers -----------------------------------------------------------------

def sql(d, query):
    """One value from the primary's database."""
    out = subprocess.check_output(["psql", "-XAtq", d.conninfo, "-c", query],
                                  text=True)
    return out.strip()


def post_json(client, path, body, raw=None):
    data = raw if raw is not None else json.dumps(body)
    return client.post(path, raw=data, ctype="application/json")


def join_token(c):
    r = c.get(API + "/admin/join-token")
    assert r.status == 200, r
    return r.json["data"]["attributes"]["token"]


def join(c, d, name=None, token=None):
    """Joins a node; returns (node id, a client holding its credential)."""
    name = name or unique("s")
    r = post_json(c.with_token(None), INT + "/join", {
        "join_token": token or join_token(c), "name": name,
        "address": "127.0.2.1", "version": "0.1.0", "capacity": 2})
    assert r.status == 201, r
    assert r.json["node_id"].startswith("node-")
    assert r.json["credential"].startswith("trnode")
    node = c.with_token(r.json["credential"])
    node.name = name
    return r.json["node_id"], node


def tgz():
    return config_tgz(b'resource "terraform_data" "x" {}\n')


def queued_run(c, org, vars_=(), waiting=False, auto_apply=False):
    """A workspace with an uploaded configuration and a queued run."""
    r = c.post("%s/organizations/%s/workspaces" % (API, org), {"data": {
        "type": "workspaces", "attributes": {"name": unique("ws"),
                                             "auto-apply": auto_apply}}})
    assert r.status == 201, r
    ws = r.json["data"]["id"]
    for key, value in vars_:
        r = c.post("%s/workspaces/%s/vars" % (API, ws), {"data": {
            "type": "vars", "attributes": {
                "key": key, "value": value, "category": "terraform"}}})
        assert r.status == 201, r
    r = c.post("%s/workspaces/%s/configuration-versions" % (API, ws),
               {"data": {"type": "configuration-versions",
                         "attributes": {"auto-queue-runs": False}}})
    assert r.status == 201, r
    cv = r.json["data"]["id"]
    config = tgz()
    u = c.put(r.json["data"]["attributes"]["upload-url"], raw=config,
              token=None)
    assert u.status == 200, u
    r = c.post(API + "/runs", {"data": {"type": "runs", "attributes": {},
                                        "relationships": {
        "workspace": {"data": {"type": "workspaces", "id": ws}},
        "configuration-version": {
            "data": {"type": "configuration-versions", "id": cv}}}}})
    assert r.status == 201, r
    run = r.json["data"]
    # waiting: a parked claim may take it at once
    assert run_status(c, run["id"]) in (
        ("plan_queued", "planning") if waiting else ("plan_queued",))
    return run, config


def run_status(c, run_id):
    r = c.get("%s/runs/%s" % (API, run_id))
    assert r.status == 200, r
    return r.json["data"]["attributes"]["status"]


def claim(node, run_id, wait=5000):
    """Claims until the job of run_id comes (other tests' jobs are not
    left queued, but be sure); returns the job object."""
    for _ in range(10):
        r = node.post("%s/claim?wait=%d" % (INT, wait), raw=b"")
        assert r.status == 200, r
        job = r.json["job"]
        if job["run_id"] == run_id:
            return job
        finish(node, job["id"], outcome="errored", error="not this test's")
    raise AssertionError("the run's job never came")


def finish(node, job_id, **body):
    body.setdefault("outcome", "finished")
    return post_json(node, "%s/jobs/%s/finish" % (INT, job_id), body)


def job_row(d, job_id):
    return sql(d, "SELECT status || '|' || COALESCE(node, '') || '|' || "
                  "lease_until FROM jobs WHERE id = '%s'" % job_id)


# ---- join --------------------------------------------------------------------

def test_join_token_admin_endpoints(c, d):
    a = join_token(c)
    assert a.startswith("trjoin") and len(a) == 70
    assert join_token(c) == a  # stable until rotated
    # sealed under the KEK in the database, never in clear
    stored = sql(d, "SELECT value FROM site_settings WHERE key = "
                    "'join-token'")
    assert stored and a not in stored
    assert_error(c.get(API + "/admin/join-token", token=None), 401)
    r = c.post("%s/admin/users" % API, {"data": {"type": "users", "attributes": {
        "username": unique("u"), "email": "u@example.com"}}})
    assert r.status == 201, r
    uid = r.json["data"]["id"]
    r = c.post("%s/admin/users/%s/authentication-tokens" % (API, uid),
               {"data": {"type": "authentication-tokens", "attributes": {}}})
    assert r.status == 201, r
    plain = c.with_token(r.json["data"]["attributes"]["token"])
    assert_error(plain.get(API + "/admin/join-token"), 404)
    assert_error(plain.post(API + "/admin/join-token"), 404)
    assert join_token(c) == a  # the refused rotation changed nothing
    r = c.post(API + "/admin/join-token")
    assert r.status == 201, r
    doc = r.json["data"]
    assert doc["id"] == "join-token" and doc["type"] == "join-tokens"
    assert doc["attributes"]["token"] != a
    assert join_token(c) == doc["attributes"]["token"]


def test_join_wrong_and_rotated_token(c, d):
    nodes = sql(d, "SELECT count(*) FROM nodes")
    anon = c.with_token(None)
    body = {"name": unique("s"), "address": "127.0.2.1", "version": "0.1.0",
            "capacity": 1}
    for wrong in ("trjoin" + "0" * 64, "x", join_token(c) + "x"):
        r = post_json(anon, INT + "/join", dict(body, join_token=wrong))
        assert_error(r, 401)
        assert "terrace admin join-token" in r.json["errors"][0]["detail"]
    old = join_token(c)
    assert c.post(API + "/admin/join-token").status == 201
    r = post_json(anon, INT + "/join", dict(body, join_token=old))
    assert_error(r, 401)
    assert "rotated" in r.json["errors"][0]["detail"]
    assert sql(d, "SELECT count(*) FROM nodes") == nodes
    node_id, node = join(c, d)
    assert sql(d, "SELECT role || ',' || state || ',' || capacity FROM "
                  "nodes WHERE id = '%s'" % node_id) == "secondary,active,2"
    r = post_json(node, INT + "/nodes/heartbeat",
                  {"running_jobs": 1, "state": "draining"})
    assert r.status == 200, r
    assert r.json == {"node_id": node_id}
    assert sql(d, "SELECT state || ',' || running_jobs FROM nodes WHERE "
                  "id = '%s'" % node_id) == "draining,1"


def test_join_bad_input(c, d):
    nodes = sql(d, "SELECT count(*) FROM nodes")
    anon = c.with_token(None)
    good = {"join_token": join_token(c), "name": unique("s"), "capacity": 1}
    assert_error(post_json(anon, INT + "/join", None, raw="{not json"), 400)
    assert_error(post_json(anon, INT + "/join", None, raw="[1]"), 400)
    for bad in ({"name": 7}, {"name": ""}, {"capacity": -1},
                {"capacity": "2"}, {"capacity": 5000}, {"address": []},
                {"join_token": 5}):
        assert_error(post_json(anon, INT + "/join", dict(good, **bad)), 422)
    missing = dict(good)
    del missing["join_token"]
    assert_error(post_json(anon, INT + "/join", missing), 422)
    assert sql(d, "SELECT count(*) FROM nodes") == nodes


# ---- jobs --------------------------------------------------------------------

def test_claim_run_and_finish(c, d, org, tool):
    run, config = queued_run(c, org, vars_=[("greeting", "hi")])
    node_id, node = join(c, d)
    job = claim(node, run["id"])
    assert job["phase"] == "plan" and job["run_id"] == run["id"]
    assert job["phase_id"] == run["relationships"]["plan"]["data"]["id"]
    assert job["org"] == org and job["workspace_id"]
    assert job["tool_version"] == tool["version"]
    assert job["tool_sha256"] == tool["sha"]
    assert job["token"] and job["api_url"] == d.url
    assert "tool_path" not in job and "ca_file" not in job
    assert {"key": "greeting", "value": "hi", "env": False, "hcl": False,
            "sensitive": False} in job["vars"]
    assert job["targets"] == [] and job["replaces"] == []
    assert job_row(d, job["id"]).startswith("running|%s|" % node_id)
    assert run_status(c, run["id"]) == "planning"
    # the run token reaches the public API like a worker's
    r = c.get("%s/workspaces/%s" % (API, job["workspace_id"]),
              token=job["token"])
    assert r.status == 200, r

    lease = int(job_row(d, job["id"]).split("|")[2])
    r = node.post("%s/jobs/%s/heartbeat" % (INT, job["id"]), raw=b"")
    assert r.status == 200, r
    assert r.json == {"cancel": 0}
    assert int(job_row(d, job["id"]).split("|")[2]) >= lease

    r = node.post("%s/jobs/%s/log" % (INT, job["id"]),
                  raw=b"hello from a secondary\n")
    assert r.status == 204, r
    # with offsets: sent again with what followed, stored once
    for body in (b"one\n", b"one\ntwo\n"):
        r = node.post("%s/jobs/%s/log?offset=0" % (INT, job["id"]),
                      raw=body)
        assert r.status == 204, r
    r = node.get("%s/jobs/%s/config" % (INT, job["id"]))
    assert r.status == 200 and r.body == config
    # a plan job has no saved plan to fetch
    assert_error(node.get("%s/jobs/%s/plan" % (INT, job["id"])), 404)

    r = node.get("%s/tools/%s" % (INT, tool["version"]))
    assert r.status == 200, r
    assert r.headers["X-Terrace-Sha256"] == tool["sha"]
    assert r.body == tool["bytes"]
    assert_error(node.get(INT + "/tools/9.9.9"), 404)

    r = node.get("%s/runs/%s/final" % (INT, run["id"]))
    assert r.status == 200 and r.json == {"final": False}

    r = finish(node, job["id"], outcome="finished", has_changes=False,
               additions=0, changes=0, destructions=0, imports=0)
    assert r.status == 204, r
    assert run_status(c, run["id"]) == "planned_and_finished"
    r = node.get("%s/runs/%s/final" % (INT, run["id"]))
    assert r.json == {"final": True}
    plan = c.get("%s/plans/%s" % (API, job["phase_id"]))
    assert plan.status == 200, plan
    assert plan.json["data"]["attributes"]["execution-node"] == node.name
    log = c.get("%s/plans/%s/logs" % (API, job["phase_id"]))
    assert log.status == 200 and b"hello from a secondary" in log.body
    assert log.body.count(b"one\n") == 1 and b"one\ntwo\n" in log.body, \
        log.body
    # the job is over: it is no longer this node's
    r = node.post("%s/jobs/%s/heartbeat" % (INT, job["id"]), raw=b"")
    assert_error(r, 409)
    assert "no longer this node's" in r.json["errors"][0]["detail"]
    assert_error(node.post("%s/jobs/%s/log" % (INT, job["id"]), raw=b"x"),
                 409)


def test_errored_finish_reaches_the_run(c, d, org, tool):
    run, _ = queued_run(c, org)
    _, node = join(c, d)
    job = claim(node, run["id"])
    r = finish(node, job["id"], outcome="errored", error="tofu crashed")
    assert r.status == 204, r
    assert run_status(c, run["id"]) == "errored"


def test_another_nodes_job_and_bad_input(c, d, org, tool):
    run, _ = queued_run(c, org)
    a_id, a = join(c, d)
    _, b = join(c, d)
    job = claim(a, run["id"])
    before = job_row(d, job["id"])
    logs = sql(d, "SELECT count(*) FROM log_chunks")
    jp = "%s/jobs/%s" % (INT, job["id"])
    # another node's job: refused, nothing changes
    assert_error(b.post(jp + "/heartbeat", raw=b""), 409)
    assert_error(b.post(jp + "/log", raw=b"not mine"), 409)
    assert_error(b.get(jp + "/config"), 409)
    assert_error(b.put(jp + "/files/json-plan", raw=b"{}"), 409)
    assert_error(finish(b, job["id"]), 409)
    # unknown job
    for path in ("/heartbeat", "/log", "/finish"):
        assert_error(a.post(INT + "/jobs/job-doesnotexist" + path,
                            raw=b'{"outcome": "finished"}',
                            ctype="application/json"), 404)
    assert_error(a.get(INT + "/jobs/job-doesnotexist/config"), 404)
    # bad finish bodies
    assert_error(post_json(a, jp + "/finish", None, raw="{oops"), 400)
    for bad in ({"outcome": "done"}, {"outcome": 1}, {},
                {"outcome": "finished", "additions": -1},
                {"outcome": "finished", "has_changes": "yes"},
                {"outcome": "finished", "changes": 1.5}):
        assert_error(post_json(a, jp + "/finish", bad), 422)
    assert_error(a.put(jp + "/files/state", raw=b"x"), 404)
    # huge bodies
    try:
        assert_error(a.post(jp + "/log", raw=b"x" * (MAX_BODY + 1)), 413)
    except OSError:
        pass  # the server may close while the client is still sending
    # bad log offsets
    for off in ("abc", "-1", "1.5", "", "99999999999999999999"):
        assert_error(a.post(jp + "/log?offset=" + off, raw=b"bad offset"),
                     400)
    # bad wait
    for w in ("abc", "-1", "30001"):
        assert_error(a.post(INT + "/claim?wait=" + w, raw=b""), 400)
    assert run_status(c, run["id"]) == "planning"
    assert job_row(d, job["id"]) == before
    assert sql(d, "SELECT count(*) FROM log_chunks") == logs
    assert a_id in before
    assert finish(a, job["id"], outcome="errored", error="end").status == 204


def test_uploaded_plan_files_reach_the_run(c, d, org, tool):
    run, _ = queued_run(c, org)
    _, node = join(c, d)
    job = claim(node, run["id"])
    jp = "%s/jobs/%s" % (INT, job["id"])
    plan_json = json.dumps({"format_version": "1.2", "resource_changes": []})
    assert node.put(jp + "/files/plan", raw=b"PK binary plan").status == 204
    assert node.put(jp + "/files/json-plan", raw=plan_json).status == 204
    kept = "jobs/%s/" % job["id"]
    assert d.blob_keys(kept) == [kept + "json-plan", kept + "plan"]
    r = finish(node, job["id"], outcome="finished", has_changes=False)
    assert r.status == 204, r
    plan = c.get("%s/plans/%s" % (API, job["phase_id"]))
    assert plan.status == 200, plan
    r = c.get("%s/plans/%s/json-output" % (API, job["phase_id"]))
    assert r.status in (200, 307), r
    # the kept copies are gone once the finish has taken them
    assert d.blob_keys(kept) == []


def planned_without_json(c, org, a):
    """An auto-apply run planned by node a, its plan stored without the
    JSON plan (defer_json): returns (run, plan job)."""
    run, _ = queued_run(c, org, auto_apply=True)
    job = claim(a, run["id"])
    assert job["defer_json"] is True, job
    jp = "%s/jobs/%s" % (INT, job["id"])
    assert a.put(jp + "/files/plan", raw=b"PK binary plan").status == 204
    r = finish(a, job["id"], outcome="finished", has_changes=True,
               additions=1)
    assert r.status == 204, r
    return run, job


def applied_without_json(c, d, org, a):
    """The same run applied by node a, which has not sent the JSON plan
    yet: returns (run, plan job, apply job)."""
    run, job = planned_without_json(c, org, a)
    apply_job = claim(a, run["id"])
    assert apply_job["phase"] == "apply" and apply_job["make_json"] is True
    r = finish(a, apply_job["id"], outcome="finished", has_changes=True,
               additions=1)
    assert r.status == 204, r
    assert run_status(c, run["id"]) == "applied"
    return run, job, apply_job


def test_stop_answers_json_waits():
    # (a small max-state: a JSON plan over it is refused)
    dm = Daemon(backend="pg",
                extra_args=["--executors", "0", "--max-state", "65536"])
    dm.start()
    try:
        c = dm.client()
        register_tool(c, dm)
        org = unique("org")
        assert c.post(API + "/organizations", {"data": {
            "type": "organizations", "attributes": {
                "name": org, "email": "o@example.com"}}}).status == 201
        _, a = join(c, dm)
        _, job, apply_job = applied_without_json(c, dm, org, a)
        # a JSON plan larger than the node takes: 413, nothing stored
        try:
            r = a.put("%s/jobs/%s/json-plan" % (INT, apply_job["id"]),
                      raw=b'{"x":"' + b"a" * 70000 + b'"}')
            assert_error(r, 413)
        except OSError:
            pass  # the server may close while the client is still sending
        r = c.get("%s/plans/%s" % (API, job["phase_id"]))
        assert r.status == 200, r
        assert sql(dm, "SELECT COALESCE(json_blob_key, 'none') FROM plans"
                       " WHERE id = '%s'" % job["phase_id"]) == "none"
        got = []

        def read():
            try:
                got.append(c.get("%s/plans/%s/json-output" %
                                 (API, job["phase_id"])))
            except (http.client.HTTPException, OSError) as e:
                got.append(e)  # closed as the server stopped

        reader = threading.Thread(target=read)
        reader.start()
        time.sleep(0.3)
        assert not got, "answered before the JSON plan came"
        # a parked reader must not keep the server from stopping
        t0 = time.monotonic()
        assert dm.stop() == 0
        assert time.monotonic() - t0 < 10
        reader.join(10)
        assert not reader.is_alive() and len(got) == 1, got
        assert not hasattr(got[0], "status") or got[0].status == 404, got
        with open(os.path.join(dm.tmp, "terraced.log"),
                  errors="replace") as f:
            log = f.read()
        assert "Sanitizer" not in log, log[-4000:]
    finally:
        dm.close()


def test_apply_brings_its_json_plan_after_the_finish(c, d, org, tool):
    # an auto-apply plan stored without its JSON plan: the apply makes it
    # and sends it after its finish (the run is applied without waiting)
    _, a = join(c, d)
    _, b = join(c, d)
    run, job = planned_without_json(c, org, a)
    jp = "%s/jobs/%s" % (INT, job["id"])
    plan_id = job["phase_id"]
    out = "%s/plans/%s/json-output" % (API, plan_id)
    r = c.get(out)
    assert_error(r, 404)
    assert "made with the apply" in r.json["errors"][0]["detail"], r
    apply_job = claim(a, run["id"])
    assert apply_job["phase"] == "apply" and apply_job["make_json"] is True
    ap = "%s/jobs/%s" % (INT, apply_job["id"])
    plan_json = json.dumps({"format_version": "1.2", "resource_changes": [
        {"address": "terraform_data.x", "change": {"actions": ["create"]}}]})
    # not before the finish, not a plan job's, not another node's
    assert_error(a.put(ap + "/json-plan", raw=plan_json), 409)
    assert_error(a.put(jp + "/json-plan", raw=plan_json), 409)
    r = finish(a, apply_job["id"], outcome="finished", has_changes=True,
               additions=1)
    assert r.status == 204, r
    assert run_status(c, run["id"]) == "applied"
    assert_error(b.put(ap + "/json-plan", raw=plan_json), 409)
    assert_error(a.put(INT + "/jobs/job-doesnotexist/json-plan",
                       raw=plan_json), 404)
    # a body that is no JSON plan is refused and changes nothing
    assert_error(a.put(ap + "/json-plan", raw=b"{not json"), 422)
    # readers who just saw the run applied wait for the JSON plan, more of
    # them than the server has HTTP threads (8), holding none of them
    got = []

    def read():
        t0 = time.monotonic()
        resp = c.get(out)
        got.append((resp, time.monotonic() - t0))

    readers = [threading.Thread(target=read) for _ in range(10)]
    for t in readers:
        t.start()
    time.sleep(0.3)
    t0 = time.monotonic()
    assert c.get("%s/organizations/%s" % (API, org)).status == 200
    assert time.monotonic() - t0 < 2.0, "a request waited on the readers"
    assert not got, "a reader was answered before the JSON plan came"
    assert a.put(ap + "/json-plan", raw=plan_json).status == 204
    for t in readers:
        t.join(10)
    assert len(got) == 10, got
    for r, waited in got:
        assert r.status in (200, 307), r
        if r.status == 200:
            assert json.loads(r.body)["resource_changes"][0]["address"] \
                == "terraform_data.x"
        assert waited >= 0.25, got
    # once
    assert_error(a.put(ap + "/json-plan", raw=plan_json), 409)
    r = c.get("%s/plans/%s/json-output-redacted" % (API, plan_id))
    assert r.status in (200, 307), r


def test_json_plan_that_never_comes(c, d, org, tool):
    # the node that applied the run finishes and is gone before it sends
    # the JSON plan (killed, or its show -json failed): a reader waits a
    # bounded time, then is told the plan will not come, and nothing
    # stays parked
    _, a = join(c, d)
    run, job = planned_without_json(c, org, a)
    out = "%s/plans/%s/json-output" % (API, job["phase_id"])
    apply_job = claim(a, run["id"])
    r = finish(a, apply_job["id"], outcome="finished", has_changes=True,
               additions=1)
    assert r.status == 204, r
    assert run_status(c, run["id"]) == "applied"
    t0 = time.monotonic()
    r = c.get(out)
    waited = time.monotonic() - t0
    assert_error(r, 404)
    assert "ended without storing it" in r.json["errors"][0]["detail"], r
    assert 4.0 <= waited < 9.0, waited   # the wait is 5 s at most
    assert run_status(c, run["id"]) == "applied"


def test_left_node_is_refused(c, d, org, tool):
    node_id, node = join(c, d)
    r = node.post(INT + "/nodes/leave", raw=b"")
    assert r.status == 204, r
    assert sql(d, "SELECT state FROM nodes WHERE id = '%s'" % node_id) == \
        "gone"
    run, _ = queued_run(c, org)
    r = node.post(INT + "/claim?wait=0", raw=b"")
    assert_error(r, 401)
    assert "left the cluster" in r.json["errors"][0]["detail"]
    assert run_status(c, run["id"]) == "plan_queued"
    # revoked: the same for its next claim
    other_id, other = join(c, d)
    sql(d, "UPDATE nodes SET revoked = 1, state = 'gone' WHERE id = '%s'"
        % other_id)
    r = other.post(INT + "/claim?wait=0", raw=b"")
    assert_error(r, 401)
    assert "revoked" in r.json["errors"][0]["detail"]
    assert run_status(c, run["id"]) == "plan_queued"
    _, taker = join(c, d)  # leaves no queued job behind
    job = claim(taker, run["id"])
    assert finish(taker, job["id"], outcome="errored",
                  error="end").status == 204


def test_tokens_stay_on_their_own_api(c, d):
    _, node = join(c, d)
    # a user token on the internal API
    r = c.post(INT + "/claim?wait=0", raw=b"")
    assert_error(r, 401)
    assert_error(c.post(INT + "/nodes/heartbeat", raw=b"{}"), 401)
    assert_error(c.with_token(None).post(INT + "/claim", raw=b""), 401)
    # a node credential on the public API
    assert_error(node.get(API + "/organizations"), 401)
    assert_error(node.get(API + "/admin/join-token"), 401)
    assert_error(node.get(API + "/account/details"), 401)


def test_cli_join_token(c, d):
    base = [os.path.join(BUILD, "terrace"), "admin", "--url", d.url,
            "--token-file", os.path.join(d.data_dir, "admin-token"),
            "--ca-file", d.ca]
    out = subprocess.run(base + ["join-token"], capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == join_token(c)
    out = subprocess.run(base + ["join-token", "--rotate"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    fresh = out.stdout.strip()
    assert fresh.startswith("trjoin") and fresh == join_token(c)


def planned_run(c, d, org, node):
    """A run whose plan node ran (with changes), confirmed: apply_queued;
    returns the run id and the apply job's id."""
    run, _ = queued_run(c, org)
    job = claim(node, run["id"])
    r = finish(node, job["id"], outcome="finished", has_changes=True,
               additions=1)
    assert r.status == 204, r
    assert run_status(c, run["id"]) == "planned"
    r = c.post("%s/runs/%s/actions/apply" % (API, run["id"]), raw=b"",
               ctype="application/json")
    assert r.status == 202, r
    assert run_status(c, run["id"]) == "apply_queued"
    job = sql(d, "SELECT id FROM jobs WHERE run_id = '%s' AND phase = "
                 "'apply'" % run["id"])
    return run["id"], job


def test_apply_prefers_the_plans_node(c, d, org, tool):
    _, a = join(c, d)
    _, b = join(c, d)
    run, apply_job = planned_run(c, d, org, a)
    # another node passes over it while the plan's node is there
    r = b.post(INT + "/claim?wait=300", raw=b"")
    assert r.status == 204, r
    assert job_row(d, apply_job).startswith("queued|")
    job = claim(a, run)
    assert job["id"] == apply_job and job["phase"] == "apply"
    assert finish(a, job["id"], outcome="finished").status == 204
    assert run_status(c, run) == "applied"
    r = c.get("%s/applies/%s" % (API, job["phase_id"]))
    assert r.json["data"]["attributes"]["execution-node"] == a.name


def test_apply_goes_elsewhere_when_its_node_left_or_waited(c, d, org, tool):
    _, a = join(c, d)
    _, b = join(c, d)
    run, apply_job = planned_run(c, d, org, a)
    assert a.post(INT + "/nodes/leave", raw=b"").status == 204
    job = claim(b, run)
    assert job["id"] == apply_job
    assert finish(b, job["id"], outcome="errored", error="end").status == 204
    # the wait for the plan's node ends
    _, a2 = join(c, d)
    run, apply_job = planned_run(c, d, org, a2)
    assert b.post(INT + "/claim?wait=0", raw=b"").status == 204
    sql(d, "UPDATE jobs SET created_at = '2000-01-01T00:00:00.000Z' "
           "WHERE id = '%s'" % apply_job)
    job = claim(b, run)
    assert job["id"] == apply_job
    assert finish(b, job["id"], outcome="errored", error="end").status == 204


def send_claim(d, node, wait):
    """Sends a claim on a connection of its own; the caller reads it."""
    u = urllib.parse.urlparse(d.url)
    conn = http.client.HTTPSConnection(
        u.hostname, u.port, timeout=60,
        context=ssl.create_default_context(cafile=d.ca))
    conn.request("POST", "%s/claim?wait=%d" % (INT, wait), body=b"",
                 headers={"Authorization": "Bearer " + node.token})
    return conn


def test_long_polls_hold_no_worker_thread(c, d, org, tool):
    _, node = join(c, d)
    # more waiting claims than the server has HTTP threads (8)
    start = time.monotonic()
    # each send waits for its TLS handshake, which a server whose
    # threads all sit in claims cannot do
    polls = [send_claim(d, node, 4000) for _ in range(12)]
    r = c.get(API + "/organizations/" + org)
    assert r.status == 200, r
    assert time.monotonic() - start < 2.5, "requests waited on long polls"
    for conn in polls:
        resp = conn.getresponse()
        assert resp.status == 204
        resp.read()
        conn.close()
    assert time.monotonic() - start >= 3.5  # they did wait


def test_long_poll_gets_a_job_queued_later(c, d, org, tool):
    _, node = join(c, d)
    conn = send_claim(d, node, 20000)
    run, _ = queued_run(c, org, waiting=True)
    resp = conn.getresponse()
    assert resp.status == 200
    job = json.loads(resp.read())["job"]
    conn.close()
    assert job["run_id"] == run["id"]
    assert run_status(c, run["id"]) == "planning"
    assert finish(node, job["id"], outcome="errored",
                  error="end").status == 204


def test_stop_ends_long_polls():
    dm = Daemon(backend="pg", extra_args=["--executors", "0"])
    dm.start()
    try:
        c = dm.client()
        _, node = join(c, dm)
        conn = send_claim(dm, node, 30000)
        t0 = time.monotonic()
        assert post_json(node, INT + "/nodes/heartbeat", {}).status == 200
        # a parked claim must not keep the server from stopping
        assert dm.stop() == 0
        assert time.monotonic() - t0 < 20
        try:
            resp = conn.getresponse()
            assert resp.status == 204
        except (http.client.HTTPException, OSError):
            pass  # closed as the server stopped
    finally:
        dm.close()


def test_tool_missing_here_is_installed_from_the_mirror():
    """A registered official version whose binary this primary lacks
    (another primary installed it) is fetched from the release mirror,
    checked against the registered sha256 and served."""
    from test_tool_install import Mirror, amd64
    if not amd64():
        pytest.skip("the releases built here are linux_amd64")
    mirror = Mirror()
    dm = Daemon(backend="pg", extra_args=["--executors", "0",
                                          "--tool-mirror", mirror.template])
    try:
        dm.start()
        c = dm.client()
        content = b"#!/bin/sh\necho mirrored tofu\n"
        sha = mirror.publish("1.8.3", content=content)
        bad = mirror.publish("1.8.4", content=b"#!/bin/sh\necho other\n")
        for version, text in (("1.8.3", content), ("1.8.4", content)):
            path = os.path.join(dm.tmp, "elsewhere-" + version)
            with open(path, "wb") as f:
                f.write(text)
            os.chmod(path, 0o755)
            r = c.post(API + "/admin/terraform-versions", {"data": {
                "type": "terraform-versions", "attributes": {
                    "version": version, "path": path, "official": True,
                    "sha": hashlib.sha256(text).hexdigest()}}})
            assert r.status == 201, r
            os.unlink(path)  # on another primary only
        _, node = join(c, dm)
        r = node.get(INT + "/tools/1.8.3")
        assert r.status == 200, r
        assert r.body == content and r.headers["X-Terrace-Sha256"] == sha
        # the mirror's 1.8.4 is another binary than the registered one
        r = node.get(INT + "/tools/1.8.4")
        assert_error(r, 404)
        assert "is not the registered binary" in \
            r.json["errors"][0]["detail"], (r, bad)
    finally:
        dm.close()
        mirror.close()


# ---- claims need confirming --------------------------------------------------

def wait_job(d, job_id, prefix, timeout):
    """Polls the job's row until it starts with prefix; returns the time it
    took."""
    t0 = time.monotonic()
    while not job_row(d, job_id).startswith(prefix):
        assert time.monotonic() - t0 < timeout, job_row(d, job_id)
        time.sleep(0.1)
    return time.monotonic() - t0


def test_unconfirmed_claim_is_queued_again(c, d, org, tool):
    run, _ = queued_run(c, org)
    _, a = join(c, d)
    b_id, b = join(c, d)
    # a takes the job and never confirms it (the reply did not reach it)
    job = claim(a, run["id"])
    assert run_status(c, run["id"]) == "planning"
    took = wait_job(d, job["id"], "queued||", 20)
    assert took < 13, "queued again after %.1f s" % took
    assert run_status(c, run["id"]) == "plan_queued"
    # the claim's run token went with it
    r = c.get("%s/workspaces/%s" % (API, job["workspace_id"]),
              token=job["token"])
    assert r.status == 401, r
    # a's late confirmation is refused: it must not run the job
    r = a.post("%s/jobs/%s/heartbeat" % (INT, job["id"]), raw=b"")
    assert_error(r, 409)
    # b gets the same job and confirms it; a confirmed claim stays
    again = claim(b, run["id"])
    assert again["id"] == job["id"] and again["token"] != job["token"]
    r = b.post("%s/jobs/%s/heartbeat" % (INT, job["id"]), raw=b"")
    assert r.status == 200, r
    t0 = time.monotonic()
    while time.monotonic() - t0 < 12:  # past the confirmation window
        assert job_row(d, job["id"]).startswith("running|%s|" % b_id)
        time.sleep(0.5)
    assert finish(b, job["id"], outcome="errored", error="end").status == 204
    assert run_status(c, run["id"]) == "errored"
    assert sql(d, "SELECT count(*) FROM jobs WHERE run_id = '%s'" %
               run["id"]) == "1"
    plan = c.get("%s/plans/%s" % (API, job["phase_id"]))
    assert plan.json["data"]["attributes"]["execution-node"] == b.name


def test_hang_up_during_a_long_poll(c, d, org, tool):
    """A node hangs up while its claim is parked: the primary hands it the
    job all the same (nothing tells it the reply is lost), then takes it
    back, and another node runs it once."""
    a_id, a = join(c, d)
    b_id, b = join(c, d)
    conn = send_claim(d, a, 20000)
    run, _ = queued_run(c, org, waiting=True)
    job_id = None
    t0 = time.monotonic()
    while job_id is None:
        job_id = sql(d, "SELECT id FROM jobs WHERE run_id = '%s' AND node ="
                        " '%s'" % (run["id"], a_id)) or None
        assert time.monotonic() - t0 < 15, "the parked claim got no job"
        time.sleep(0.1)
    conn.close()  # a is gone before it read its job
    wait_job(d, job_id, "queued||", 15)
    job = claim(b, run["id"])
    assert job["id"] == job_id
    r = b.post("%s/jobs/%s/heartbeat" % (INT, job_id), raw=b"")
    assert r.status == 200, r
    assert finish(b, job_id, outcome="errored", error="end").status == 204
    assert run_status(c, run["id"]) == "errored"
    ev = c.get("%s/runs/%s/run-events" % (API, run["id"]))
    if ev.status == 200:  # "Plan started" once per claim, never more
        starts = [e for e in ev.json["data"]
                  if e["attributes"].get("action") == "planning"]
        assert len(starts) <= 2, starts


def test_tool_versions_and_download_limit(c, d, tool):
    _, node = join(c, d)
    r = node.get(INT + "/tool-versions/latest")
    assert r.status == 200, r
    assert r.json["sha256"] and r.json["version"]
    r = node.get("%s/tool-versions/%s" % (INT, tool["version"]))
    assert r.status == 200 and r.json == {"version": tool["version"],
                                           "sha256": tool["sha"]}, r
    assert_error(node.get(INT + "/tool-versions/9.9.9"), 404)
    assert_error(node.get(INT + "/tool-versions/not-a-version"), 404)
    assert_error(c.get(INT + "/tool-versions/latest"), 401)


def test_tool_downloads_beyond_the_limit_wait(c, d):
    """--tool-downloads (2 here): a third download while two are being sent
    is answered 503 with Retry-After, and comes through once one ends."""
    path = os.path.join(d.tmp, "tofu-big")
    chunk = b"#!/bin/sh\n" + b"#" * (1 << 20)
    with open(path, "wb") as f:
        for _ in range(48):  # far more than the socket buffers hold
            f.write(chunk)
    os.chmod(path, 0o755)
    h = hashlib.sha256()
    with open(path, "rb") as f:
        h.update(f.read())
    r = c.post(API + "/admin/terraform-versions", {"data": {
        "type": "terraform-versions",
        "attributes": {"version": "1.9.8", "path": path,
                       "sha": h.hexdigest()}}})
    assert r.status == 201, r
    tv = r.json["data"]["id"]
    _, node = join(c, d)
    u = urllib.parse.urlparse(d.url)
    slow = []
    for _ in range(2):  # read a little, then nothing: the send stays open
        conn = http.client.HTTPSConnection(
            u.hostname, u.port, timeout=60,
            context=ssl.create_default_context(cafile=d.ca))
        conn.request("GET", INT + "/tools/1.9.8",
                     headers={"Authorization": "Bearer " + node.token})
        resp = conn.getresponse()
        assert resp.status == 200
        assert resp.read(4096)
        slow.append((conn, resp))
    r = node.get(INT + "/tools/1.9.8")
    assert_error(r, 503)
    assert int(r.headers["Retry-After"]) > 0
    assert "try again" in r.json["errors"][0]["detail"]
    # heartbeats and claims are not held up meanwhile
    assert post_json(node, INT + "/nodes/heartbeat", {}).status == 200
    # one send ends (the node hangs up): the next download comes through
    slow[0][0].close()
    t0 = time.monotonic()
    while True:
        r = node.get(INT + "/tools/1.9.8")
        if r.status == 200:
            break
        assert r.status == 503 and time.monotonic() - t0 < 30, r
        time.sleep(0.2)
    assert hashlib.sha256(r.body).hexdigest() == h.hexdigest()
    slow[1][0].close()
    # "latest" again the version the other tests registered
    assert c.delete(API + "/admin/terraform-versions/" + tv).status == 204
