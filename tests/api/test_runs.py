"""Runs: create (attributes, defaults, the workspace's current
configuration version, speculative versions, auto-queue-runs), the
bad-input matrix, read with include, list with filters and pagination,
the per-workspace queue and the organization's run queue, every action
in the states an API test can reach (no worker runs here: the daemon is
started with --executors 0, so runs stop at plan_queued), comments, run
events, task stages, policy checks, cost estimates, plans and applies.
Every rejected request is followed by a read proving nothing changed."""
import os
import time

import pytest

from conftest import assert_error, temp_org, unique
from terrace import Daemon, config_tgz

API = "/api/v2"


@pytest.fixture(scope="module")
def d():
    """A daemon of its own without workers: runs wait where they are."""
    dm = Daemon(backend=os.environ.get("TERRACE_TEST_BACKEND", "sqlite"),
                extra_args=["--executors", "0"])
    dm.start()
    yield dm
    dm.close()


@pytest.fixture(scope="module")
def c(d):
    return d.client()


@pytest.fixture
def org(c):
    yield from temp_org(c)


# ---- helpers -----------------------------------------------------------------

def make_ws(c, org, **attrs):
    attrs.setdefault("name", unique("ws"))
    r = c.post("%s/organizations/%s/workspaces" % (API, org),
               {"data": {"type": "workspaces", "attributes": attrs}})
    assert r.status == 201, r
    return r.json["data"]["id"]


def tgz():
    return config_tgz(b'resource "terraform_data" "x" {}\n')


def make_cv(c, ws, upload=True, **attrs):
    attrs.setdefault("auto-queue-runs", False)
    r = c.post("%s/workspaces/%s/configuration-versions" % (API, ws),
               {"data": {"type": "configuration-versions",
                         "attributes": attrs}})
    assert r.status == 201, r
    cv = r.json["data"]["id"]
    if upload:
        u = c.put(r.json["data"]["attributes"]["upload-url"], raw=tgz(),
                  token=None)
        assert u.status == 200, u
    return cv


def run_body(ws, cv=None, **attrs):
    rels = {"workspace": {"data": {"type": "workspaces", "id": ws}}}
    if cv is not None:
        rels["configuration-version"] = {
            "data": {"type": "configuration-versions", "id": cv}}
    return {"data": {"type": "runs", "attributes": attrs,
                     "relationships": rels}}


def create(c, ws, cv=None, **attrs):
    return c.post(API + "/runs", run_body(ws, cv, **attrs))


def new_run(c, ws, cv=None, **attrs):
    r = create(c, ws, cv, **attrs)
    assert r.status == 201, r
    return r.json["data"]


def read(c, run, query=""):
    r = c.get("%s/runs/%s%s" % (API, run, query))
    assert r.status == 200, r
    return r.json


def status(c, run):
    return read(c, run)["data"]["attributes"]["status"]


def count_runs(c, ws):
    r = c.get("%s/workspaces/%s/runs" % (API, ws))
    assert r.status == 200, r
    return r.json["meta"]["pagination"]["total-count"]


def ws_doc(c, ws, query=""):
    r = c.get("%s/workspaces/%s%s" % (API, ws, query))
    assert r.status == 200, r
    return r.json


def action(c, run, what, body=None, raw=None):
    if raw is None:
        raw = b"" if body is None else __import__("json").dumps(body)
    return c.post("%s/runs/%s/actions/%s" % (API, run, what), raw=raw,
                  ctype="application/json")


def actions(doc):
    a = doc["data"]["attributes"]["actions"]
    return "".join(k for k, n in (("c", "is-cancelable"),
                                  ("a", "is-confirmable"),
                                  ("d", "is-discardable"),
                                  ("f", "is-force-cancelable")) if a[n])


def wait_status(c, run, want, timeout=10):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if status(c, run) == want:
            return
        time.sleep(0.1)
    assert status(c, run) == want


# ---- create ------------------------------------------------------------------

def test_create_defaults(c, org):
    ws = make_ws(c, org)
    cv = make_cv(c, ws)
    assert ws_doc(c, ws)["data"]["attributes"]["runs-count"] == 0
    doc = {"data": new_run(c, ws, cv)}
    d = doc["data"]
    a = d["attributes"]
    assert d["type"] == "runs" and d["id"].startswith("run-")
    assert a["status"] == "plan_queued"
    assert a["refresh"] is True and a["refresh-only"] is False
    assert a["auto-apply"] is False and a["plan-only"] is False
    assert a["is-destroy"] is False and a["save-plan"] is False
    assert a["allow-empty-apply"] is False and a["has-changes"] is False
    assert a["source"] == "tfe-api" and a["trigger-reason"] == "manual"
    assert a["message"] == "Triggered via API"
    assert a["target-addrs"] == [] and a["replace-addrs"] == []
    assert a["variables"] == []
    assert a["created-at"].endswith("Z")
    assert "plan-queueable-at" in a["status-timestamps"]
    assert "plan-queued-at" in a["status-timestamps"]
    assert a["force-cancel-available-at"] is None
    assert a["position-in-queue"] == 0
    assert actions(doc) == "c"
    assert all(a["permissions"][k] for k in (
        "can-apply", "can-cancel", "can-discard", "can-force-execute",
        "can-force-cancel"))
    rel = d["relationships"]
    assert rel["workspace"]["data"] == {"type": "workspaces", "id": ws}
    assert rel["configuration-version"]["data"]["id"] == cv
    assert rel["plan"]["data"]["id"].startswith("plan-")
    assert rel["apply"]["data"]["id"].startswith("apply-")
    assert rel["created-by"]["data"]["type"] == "users"
    assert rel["cost-estimate"]["data"] is None
    assert rel["policy-checks"]["data"] == []
    assert rel["task-stages"]["data"] == []
    assert d["links"]["self"] == "/api/v2/runs/" + d["id"]
    # the run owns the workspace: current run and lock
    w = ws_doc(c, ws)["data"]
    assert w["relationships"]["current-run"]["data"]["id"] == d["id"]
    assert w["relationships"]["latest-run"]["data"]["id"] == d["id"]
    assert w["attributes"]["runs-count"] == 1
    assert w["attributes"]["workspace-kpis-runs-count"] == 1
    assert w["attributes"]["locked"] is True
    assert w["relationships"]["locked-by"]["data"] == {
        "type": "runs", "id": d["id"]}


def test_create_attributes(c, org):
    ws = make_ws(c, org)
    cv = make_cv(c, ws)
    variables = [{"key": "a", "value": '"x"'}, {"key": "b_2", "value": "3"}]
    a = new_run(c, ws, cv, **{
        "message": "hello", "is-destroy": True, "refresh": False,
        "target-addrs": ["null_resource.a", "module.m.x[0]"],
        "replace-addrs": ["null_resource.a"], "variables": variables,
        "auto-apply": True, "allow-empty-apply": True,
        "allow-config-generation": True})["attributes"]
    assert a["message"] == "hello" and a["is-destroy"] is True
    assert a["refresh"] is False and a["auto-apply"] is True
    assert a["allow-empty-apply"] is True
    assert a["target-addrs"] == ["null_resource.a", "module.m.x[0]"]
    assert a["replace-addrs"] == ["null_resource.a"]
    assert a["variables"] == variables
    a = new_run(c, ws, cv, **{"plan-only": True,
                               "terraform-version": "1.0.0"})["attributes"]
    assert a["plan-only"] is True and a["terraform-version"] == "1.0.0"
    a = new_run(c, ws, cv, **{"refresh-only": True})["attributes"]
    assert a["refresh-only"] is True
    a = new_run(c, ws, cv, **{"save-plan": True})["attributes"]
    assert a["save-plan"] is True


def test_create_uses_current_cv(c, org):
    ws = make_ws(c, org)
    make_cv(c, ws)
    cv2 = make_cv(c, ws)
    d = new_run(c, ws)
    assert d["relationships"]["configuration-version"]["data"]["id"] == cv2
    body = run_body(ws)
    body["data"]["relationships"]["configuration-version"] = {"data": None}
    r = c.post(API + "/runs", body)
    assert r.status == 201, r
    assert r.json["data"]["relationships"]["configuration-version"][
        "data"]["id"] == cv2


def test_auto_apply_from_workspace(c, org):
    ws = make_ws(c, org, **{"auto-apply": True})
    cv = make_cv(c, ws)
    assert new_run(c, ws, cv)["attributes"]["auto-apply"] is True
    assert new_run(c, ws, cv, **{"auto-apply": False})[
        "attributes"]["auto-apply"] is False


def test_speculative_runs_do_not_queue(c, org):
    ws = make_ws(c, org)
    cv = make_cv(c, ws)
    first = new_run(c, ws, cv)["id"]
    spec_cv = make_cv(c, ws, speculative=True)
    s1 = new_run(c, ws, spec_cv)
    s2 = new_run(c, ws, cv, **{"plan-only": True})
    for s in (s1, s2):
        assert s["attributes"]["plan-only"] is True
        assert s["attributes"]["status"] == "plan_queued"
    saved = new_run(c, ws, cv, **{"save-plan": True})
    assert saved["attributes"]["status"] == "plan_queued"
    # none of them took the workspace
    w = ws_doc(c, ws)["data"]
    assert w["relationships"]["current-run"]["data"]["id"] == first


def test_auto_queue_runs(c, org):
    ws = make_ws(c, org)
    cv = make_cv(c, ws, **{"auto-queue-runs": True})
    r = c.get("%s/workspaces/%s/runs" % (API, ws))
    assert r.status == 200 and len(r.json["data"]) == 1, r
    d = r.json["data"][0]
    assert d["attributes"]["source"] == "tfe-configuration-version"
    assert d["relationships"]["configuration-version"]["data"]["id"] == cv
    # speculative ones queue a plan-only run; provisional ones queue none
    make_cv(c, ws, **{"auto-queue-runs": True, "speculative": True})
    make_cv(c, ws, **{"auto-queue-runs": True, "provisional": True})
    runs = c.get("%s/workspaces/%s/runs" % (API, ws)).json["data"]
    assert len(runs) == 2
    assert runs[0]["attributes"]["plan-only"] is True


def test_cost_estimate(c, org):
    r = c.patch(API + "/organizations/" + org, {"data": {
        "type": "organizations",
        "attributes": {"cost-estimation-enabled": True}}})
    assert r.status == 200, r
    ws = make_ws(c, org)
    d = new_run(c, ws, make_cv(c, ws))
    ce = d["relationships"]["cost-estimate"]["data"]
    assert ce["type"] == "cost-estimates"
    r = c.get("%s/cost-estimates/%s" % (API, ce["id"]))
    assert r.status == 200, r
    a = r.json["data"]["attributes"]
    assert a["status"] == "queued"
    assert a["proposed-monthly-cost"] == "0.00"
    doc = read(c, d["id"], "?include=cost_estimate")
    assert doc["included"][0]["id"] == ce["id"]
    assert_error(c.get(API + "/cost-estimates/ce-nope"), 404)


# ---- the bad-input matrix ----------------------------------------------------

def test_create_bad_input(c, d, org):
    ws = make_ws(c, org)
    cv = make_cv(c, ws)
    other_ws = make_ws(c, org)
    other_cv = make_cv(c, other_ws)
    pending_cv = make_cv(c, ws, upload=False)
    empty_ws = make_ws(c, org)
    local_ws = make_ws(c, org, **{"execution-mode": "local"})
    make_cv(c, local_ws)

    def check(resp, code, ws_=ws):
        before = count_runs(c, ws_)
        assert_error(resp, code)
        assert count_runs(c, ws_) == before

    check(c.post(API + "/runs", run_body(ws, cv), token=None), 401)
    check(c.post(API + "/runs", raw=b"{nope", ctype="application/json"),
          400)
    check(c.post(API + "/runs", raw=b"", ctype="application/json"), 400)
    body = run_body(ws, cv)
    body["data"]["type"] = "workspaces"
    check(c.post(API + "/runs", body), 409)
    check(c.post(API + "/runs", {"data": {"type": "runs"}}), 422)
    body = run_body(ws, cv)
    body["data"]["relationships"]["workspace"]["data"]["type"] = "projects"
    check(c.post(API + "/runs", body), 409)
    body = run_body(ws, cv)
    body["data"]["relationships"]["workspace"]["data"] = {"type":
                                                          "workspaces"}
    check(c.post(API + "/runs", body), 422)
    body = run_body(ws, cv)
    body["data"]["relationships"]["configuration-version"]["data"][
        "type"] = "runs"
    check(c.post(API + "/runs", body), 409)
    check(create(c, "ws-doesnotexist1234", cv), 404)
    check(create(c, ws, "cv-doesnotexist1234"), 404)
    check(create(c, ws, other_cv), 404)
    check(create(c, ws, pending_cv), 422)
    check(create(c, empty_ws), 422, empty_ws)
    check(create(c, local_ws), 409, local_ws)
    bad_attrs = [
        {"message": 5},
        {"message": "x" * 70000},
        {"is-destroy": "yes"},
        {"refresh": 1},
        {"auto-apply": None},
        {"plan-only": "true"},
        {"target-addrs": "a.b"},
        {"target-addrs": [1]},
        {"target-addrs": [""]},
        {"target-addrs": ["a b"]},
        {"target-addrs": ["a.b"] * 101},
        {"replace-addrs": {"a": 1}},
        {"variables": {"a": "b"}},
        {"variables": ["a"]},
        {"variables": [{"key": 1, "value": "x"}]},
        {"variables": [{"key": "a"}]},
        {"variables": [{"key": "1a", "value": "x"}]},
        {"variables": [{"key": "a", "value": "1"},
                       {"key": "a", "value": "2"}]},
        {"variables": [{"key": "a", "value": "x" * 70000}]},
        {"terraform-version": "1.0.0"},
        {"terraform-version": "latest", "plan-only": True},
        {"terraform-version": 1, "plan-only": True},
        {"refresh-only": True, "is-destroy": True},
        {"refresh-only": True, "refresh": False},
        {"save-plan": True, "plan-only": True},
    ]
    for attrs in bad_attrs:
        check(create(c, ws, cv, **attrs), 422)
    # too big a body (the server may close while the client still sends)
    before = count_runs(c, ws)
    try:
        assert_error(c.post(API + "/runs",
                            raw=b"{" + b" " * (16 * 1024 * 1024 + 10) + b"}",
                            ctype="application/vnd.api+json"), 413)
    except (ConnectionError, OSError):
        pass
    assert count_runs(c, ws) == before
    # another organization's token sees neither the workspace nor its run
    other = unique("org")
    assert c.post(API + "/organizations", {"data": {
        "type": "organizations",
        "attributes": {"name": other, "email": "o@example.com"}}}).status \
        == 201
    try:
        r = c.post("%s/organizations/%s/authentication-token" % (API, other))
        assert r.status == 201, r
        tok = c.with_token(r.json["data"]["attributes"]["token"])
        check(create(tok, ws, cv), 404)
        run = new_run(c, ws, cv)["id"]
        assert_error(tok.get("%s/runs/%s" % (API, run)), 404)
        check(tok.post("%s/runs/%s/actions/cancel" % (API, run), raw=b"",
                       ctype="application/json"), 404)
        assert status(c, run) == "plan_queued"
        assert_error(tok.get("%s/workspaces/%s/runs" % (API, ws)), 404)
    finally:
        c.delete(API + "/organizations/" + other)


# ---- read and list -----------------------------------------------------------

def test_read_include(c, org):
    ws = make_ws(c, org)
    cv = make_cv(c, ws)
    run = new_run(c, ws, cv)["id"]
    doc = read(c, run, "?include=plan,apply,workspace,configuration_version,"
                       "created_by,task_stages")
    types = sorted(x["type"] for x in doc["included"])
    assert types == ["applies", "configuration-versions", "plans", "users",
                     "workspaces"]
    by_type = {x["type"]: x for x in doc["included"]}
    assert by_type["plans"]["attributes"]["status"] == "queued"
    assert by_type["applies"]["attributes"]["status"] == "pending"
    assert by_type["workspaces"]["id"] == ws
    assert by_type["users"]["attributes"]["username"] == "admin"
    assert by_type["configuration-versions"]["id"] == cv
    assert "included" not in read(c, run)
    r = c.get("%s/runs/%s?include=bogus" % (API, run))
    assert_error(r, 400)
    assert "Invalid include parameter" in r.json["errors"][0]["detail"]
    assert_error(c.get(API + "/runs/run-doesnotexist12"), 404)
    assert_error(c.get(API + "/runs/" + run, token=None), 401)


def test_list_filters_and_pages(c, org):
    ws = make_ws(c, org)
    cv = make_cv(c, ws)
    r1 = new_run(c, ws, cv)["id"]
    r2 = new_run(c, ws, cv, **{"is-destroy": True})["id"]
    r3 = new_run(c, ws, cv, **{"plan-only": True})["id"]
    r4 = new_run(c, ws, cv, **{"save-plan": True})["id"]

    def ids(query=""):
        r = c.get("%s/workspaces/%s/runs%s" % (API, ws, query))
        assert r.status == 200, r
        return [x["id"] for x in r.json["data"]], r.json

    got, doc = ids()
    assert got == [r4, r3, r2, r1]  # newest first
    assert doc["meta"]["pagination"]["total-count"] == 4
    got, doc = ids("?page[size]=1&page[number]=2")
    assert got == [r3]
    assert doc["meta"]["pagination"]["total-pages"] == 4
    assert doc["meta"]["pagination"]["next-page"] == 3
    assert ids("?filter[status]=pending")[0] == [r2]
    assert sorted(ids("?filter[status]=plan_queued,pending")[0]) == sorted(
        [r1, r2, r3, r4])
    assert ids("?filter[operation]=plan_only")[0] == [r3]
    assert ids("?filter[operation]=save_plan")[0] == [r4]
    assert ids("?filter[operation]=destroy")[0] == [r2]
    assert ids("?filter[operation]=plan_and_apply")[0] == [r1]
    assert sorted(ids("?filter[operation]=destroy,plan_only")[0]) == sorted(
        [r2, r3])
    assert len(ids("?filter[source]=tfe-api")[0]) == 4
    assert ids("?filter[source]=tfe-ui")[0] == []
    assert len(ids("?search[user]=admin")[0]) == 4
    assert ids("?search[user]=nobody-here")[0] == []
    assert ids("?search[commit]=abc123")[0] == []
    assert ids("?search[basic]=" + r2)[0] == [r2]
    got, doc = ids("?include=workspace")
    assert doc["included"][0]["id"] == ws
    for q in ("?filter[status]=bogus", "?filter[operation]=nope",
              "?page[size]=0", "?page[number]=x", "?include=bogus"):
        assert_error(c.get("%s/workspaces/%s/runs%s" % (API, ws, q)), 400)
    assert_error(c.get(API + "/workspaces/ws-doesnotexist12/runs"), 404)


def test_queue_order_and_org_queue(c, org):
    ws = make_ws(c, org)
    cv = make_cv(c, ws)
    a = new_run(c, ws, cv)["id"]
    b = new_run(c, ws, cv)
    cc = new_run(c, ws, cv)["id"]
    assert b["attributes"]["status"] == "pending"
    assert b["attributes"]["position-in-queue"] == 1
    assert read(c, cc)["data"]["attributes"]["position-in-queue"] == 2
    assert actions({"data": b}) == "cd"
    r = c.get("%s/organizations/%s/runs/queue" % (API, org))
    assert r.status == 200, r
    assert [x["id"] for x in r.json["data"]] == [a, b["id"], cc]
    assert r.json["meta"]["pagination"]["total-count"] == 3
    # a list counts each run's place as its own read does, queue by queue
    ws2 = make_ws(c, org)
    cv2 = make_cv(c, ws2)
    other = [new_run(c, ws2, cv2)["id"] for _ in range(2)]

    def places(url):
        got = c.get(url)
        assert got.status == 200, got
        return {x["id"]: x["attributes"]["position-in-queue"]
                for x in got.json["data"]}

    want = {run: read(c, run)["data"]["attributes"]["position-in-queue"]
            for run in [a, b["id"], cc] + other}
    assert want == {a: 0, b["id"]: 1, cc: 2, other[0]: 0, other[1]: 1}
    queue = "%s/organizations/%s/runs/queue" % (API, org)
    assert places(queue) == want
    assert places("%s/workspaces/%s/runs" % (API, ws)) == {
        k: want[k] for k in (a, b["id"], cc)}
    assert action(c, other[1], "discard").status == 202
    assert action(c, other[0], "cancel").status == 202
    assert_error(c.get(API + "/organizations/nope-nope-nope/runs/queue"), 404)
    cap = c.get("%s/organizations/%s/capacity" % (API, org))
    assert cap.status == 200, cap
    assert cap.json["data"]["attributes"] == {"pending": 3, "running": 0}
    # the first run ends: the next in line takes the workspace
    assert action(c, a, "cancel").status == 202
    assert status(c, a) == "canceled"
    assert status(c, b["id"]) == "plan_queued"
    assert status(c, cc) == "pending"
    w = ws_doc(c, ws)["data"]
    assert w["relationships"]["current-run"]["data"]["id"] == b["id"]
    assert w["relationships"]["locked-by"]["data"]["id"] == b["id"]
    doc = ws_doc(c, ws, "?include=current_run")
    assert doc["included"][0]["id"] == b["id"]
    assert action(c, cc, "discard").status == 202
    assert status(c, cc) == "discarded"
    assert action(c, b["id"], "cancel").status == 202
    w = ws_doc(c, ws)["data"]
    # as in TFE, the newest run that left pending stays the current one
    # after the queue empties; the workspace itself is let go
    assert w["relationships"]["current-run"]["data"]["id"] == cc
    assert w["attributes"]["locked"] is False
    assert c.get("%s/organizations/%s/runs/queue" % (API, org)).json[
        "data"] == []


def test_user_lock_holds_runs(c, org):
    ws = make_ws(c, org)
    cv = make_cv(c, ws)
    r = c.post("%s/workspaces/%s/actions/lock" % (API, ws), {"reason": "me"})
    assert r.status == 200, r
    run = new_run(c, ws, cv)["id"]
    assert status(c, run) == "pending"
    # the CLI tells "waiting for the manually locked workspace" from the
    # workspace's current-run being this pending run, as TFE shows it
    w = ws_doc(c, ws)["data"]
    assert w["relationships"]["current-run"]["data"]["id"] == run
    spec = new_run(c, ws, cv, **{"plan-only": True})["id"]
    assert status(c, spec) == "plan_queued"
    w = ws_doc(c, ws)["data"]
    assert w["relationships"]["current-run"]["data"]["id"] == run
    r = c.post("%s/workspaces/%s/actions/unlock" % (API, ws))
    assert r.status == 200, r
    wait_status(c, run, "plan_queued")  # the scheduler's sweep
    w = ws_doc(c, ws)["data"]
    assert w["relationships"]["locked-by"]["data"]["id"] == run


# ---- actions -----------------------------------------------------------------

def test_action_rules(c, org):
    ws = make_ws(c, org)
    cv = make_cv(c, ws)
    a = new_run(c, ws, cv)["id"]
    b = new_run(c, ws, cv)["id"]
    for what in ("apply", "discard", "force-cancel", "force-execute"):
        r = action(c, a, what)
        assert_error(r, 409)
        assert r.json["errors"][0]["title"] == "transition not allowed"
        assert status(c, a) == "plan_queued"
    # force-execute needs the current run to be waiting for a person
    assert_error(action(c, b, "force-execute"), 409)
    assert_error(action(c, b, "apply"), 409)
    assert status(c, b) == "pending"
    for what in ("apply", "cancel", "discard"):
        assert_error(action(c, "run-doesnotexist12", what), 404)
    assert_error(c.post("%s/runs/%s/actions/cancel" % (API, a), raw=b"",
                        ctype="application/json", token=None), 401)
    assert_error(c.post("%s/runs/%s/actions/explode" % (API, a), raw=b"",
                        ctype="application/json"), 404)
    # cancel: a pending run at once; the force-cancel time is set
    assert action(c, b, "cancel", {"comment": "not now"}).status == 202
    doc = read(c, b)
    assert doc["data"]["attributes"]["status"] == "canceled"
    assert doc["data"]["attributes"]["force-cancel-available-at"] is not None
    assert actions(doc) == ""
    assert "canceled-at" in doc["data"]["attributes"]["status-timestamps"]
    assert len(doc["data"]["relationships"]["comments"]["data"]) == 1
    for what in ("cancel", "discard", "apply", "force-cancel"):
        assert_error(action(c, b, what), 409)
    assert status(c, b) == "canceled"
    # the plan and apply of a canceled run
    plan = doc["data"]["relationships"]["plan"]["data"]["id"]
    apply_ = doc["data"]["relationships"]["apply"]["data"]["id"]
    p = c.get("%s/plans/%s" % (API, plan)).json["data"]["attributes"]
    assert p["status"] == "canceled"
    ap = c.get("%s/applies/%s" % (API, apply_)).json["data"]["attributes"]
    assert ap["status"] == "unreachable"


def test_action_bodies(c, org):
    ws = make_ws(c, org)
    cv = make_cv(c, ws)
    new_run(c, ws, cv)
    bad = [(b"{nope", 400), (b"[1]", 400), (b'"x"', 400),
           (b'{"comment": 5}', 422), (b'{"comment": ["a"]}', 422)]
    run = new_run(c, ws, cv)["id"]
    for raw, code in bad:
        assert_error(action(c, run, "cancel", raw=raw), code)
        assert status(c, run) == "pending"
    for raw in (b"", b"{}", b'{"comment": null}',
                b'{"data": {"attributes": {"comment": "jsonapi"}}}'):
        run = new_run(c, ws, cv)["id"]
        assert action(c, run, "discard", raw=raw).status == 202
        assert status(c, run) == "discarded"
    r = c.get("%s/runs/%s/comments" % (API, run))
    assert [x["attributes"]["body"] for x in r.json["data"]] == ["jsonapi"]


# ---- comments, events, empty lists -------------------------------------------

def test_comments_and_events(c, org):
    ws = make_ws(c, org)
    run = new_run(c, ws, make_cv(c, ws))["id"]
    url = "%s/runs/%s/comments" % (API, run)

    def body(**attrs):
        return {"data": {"type": "comments", "attributes": attrs}}

    r = c.post(url, body(body="first"))
    assert r.status == 201, r
    cid = r.json["data"]["id"]
    assert r.json["data"]["attributes"]["body"] == "first"
    r = c.get("%s/comments/%s" % (API, cid))
    assert r.status == 200 and r.json["data"]["attributes"]["body"] == "first"
    for b, code in ((body(), 422), (body(body=""), 422), (body(body=5), 422),
                    ({"data": {"type": "runs", "attributes": {"body": "x"}}},
                     409)):
        assert_error(c.post(url, b), code)
    assert_error(c.post(url, raw=b"{x", ctype="application/json"), 400)
    assert_error(c.post(url, body(body="x"), token=None), 401)
    assert_error(c.post("%s/runs/run-doesnotexist12/comments" % API,
                        body(body="x")), 404)
    r = c.get(url)
    assert [x["attributes"]["body"] for x in r.json["data"]] == ["first"]
    assert_error(c.get(API + "/comments/wsc-doesnotexist1"), 404)
    r = c.get("%s/runs/%s/run-events" % (API, run))
    assert r.status == 200, r
    acts = [x["attributes"]["action"] for x in r.json["data"]]
    assert acts == ["created", "plan_queued", "commented"]
    ev = r.json["data"][2]
    assert ev["relationships"]["comment"]["data"]["id"] == cid
    r = c.get("%s/runs/%s/run-events?include=actor,comment" % (API, run))
    types = sorted(x["type"] for x in r.json["included"])
    assert "comments" in types and "users" in types
    r = c.get("%s/run-events/%s?include=actor,comment" % (API, ev["id"]))
    assert r.status == 200, r
    assert r.json["data"]["attributes"]["action"] == "commented"
    assert_error(c.get("%s/runs/%s/run-events?include=x" % (API, run)), 400)
    assert_error(c.get(API + "/run-events/re-doesnotexist1"), 404)
    for what in ("task-stages", "policy-checks"):
        r = c.get("%s/runs/%s/%s" % (API, run, what))
        assert r.status == 200 and r.json["data"] == [], r
        assert r.json["meta"]["pagination"]["total-count"] == 0
        assert_error(c.get("%s/runs/run-doesnotexist12/%s" % (API, what)),
                     404)


# ---- plans and applies -------------------------------------------------------

def test_plans_and_applies(c, org):
    ws = make_ws(c, org)
    run = new_run(c, ws, make_cv(c, ws))
    plan = run["relationships"]["plan"]["data"]["id"]
    apply_ = run["relationships"]["apply"]["data"]["id"]
    r = c.get("%s/plans/%s" % (API, plan))
    assert r.status == 200, r
    a = r.json["data"]["attributes"]
    assert r.json["data"]["type"] == "plans"
    assert a["status"] == "queued" and a["has-changes"] is False
    assert a["log-read-url"].startswith("https://")
    for k in ("resource-additions", "resource-changes",
              "resource-destructions", "resource-imports"):
        assert a[k] == 0
    assert "queued-at" in a["status-timestamps"]
    r = c.get("%s/applies/%s" % (API, apply_))
    assert r.status == 200 and r.json["data"]["type"] == "applies", r
    assert r.json["data"]["attributes"]["status"] == "pending"
    assert c.get("%s/runs/%s/plan" % (API, run["id"])).json["data"][
        "id"] == plan
    assert c.get("%s/runs/%s/apply" % (API, run["id"])).json["data"][
        "id"] == apply_
    # the JSON plans exist once the plan finished
    for what in ("json-output", "json-output-redacted"):
        assert_error(c.get("%s/plans/%s/%s" % (API, plan, what)), 404)
        # the run-level alias (pytfe) answers the same
        r = c.get("%s/runs/%s/plan/%s" % (API, run["id"], what))
        assert_error(r, 404)
        assert "has not finished" in r.json["errors"][0]["detail"], r
        assert_error(c.get("%s/runs/run-doesnotexist1/plan/%s" %
                           (API, what)), 404)
    for bad in ("%s/plans/%s" % (API, apply_), "%s/applies/%s" % (API, plan),
                API + "/plans/plan-doesnotexist1",
                API + "/applies/apply-doesnotexist1",
                "%s/plans/%s/json-output" % (API, apply_)):
        assert_error(c.get(bad), 404)
    assert_error(c.get("%s/plans/%s" % (API, plan), token=None), 401)


def test_list_workspaces_by_current_run(c, org):
    """sort=current-run.created-at: workspaces with a current run in the
    order their runs were created, those without one last, either way."""
    idle = make_ws(c, org)
    first = make_ws(c, org)
    second = make_ws(c, org)
    new_run(c, first, make_cv(c, first))
    new_run(c, second, make_cv(c, second))
    base = "/api/v2/organizations/%s/workspaces?sort=" % org
    r = c.get(base + "current-run.created-at")
    assert r.status == 200, r
    ids = [w["id"] for w in r.json["data"]]
    assert ids == [first, second, idle]
    r = c.get(base + "-current-run.created-at")
    ids = [w["id"] for w in r.json["data"]]
    assert ids == [second, first, idle]
    assert c.get(base + "bogus").status == 400
