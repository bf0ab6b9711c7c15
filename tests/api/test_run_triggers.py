"""Run triggers: create, show, list inbound and outbound (paginated, with
include=sourceable,workspace), delete, the bad-input matrix (each refusal
followed by a read proving nothing changed), access from outside the
organization, and the triggers firing: an apply in the source queues a
run in each follower, applied on its own only where the follower has
auto-apply-run-trigger, and nothing for a follower without a
configuration or for a source run that did not apply."""
import time

import pytest

from conftest import assert_error, temp_org, unique
from test_run_logs import flow, flow_daemon  # noqa: F401 (fixture)
from test_runs import (API, make_cv, make_ws, new_run, read, status,
                       wait_status)
from test_workspaces import make_user


def add(c, ws, source, typ="workspaces"):
    return c.post("%s/workspaces/%s/run-triggers" % (API, ws), {"data": {
        "type": "run-triggers",
        "relationships": {"sourceable": {"data": {"type": typ,
                                                  "id": source}}}}})


def listing(c, ws, kind, query=""):
    r = c.get("%s/workspaces/%s/run-triggers?filter[run-trigger][type]=%s%s"
              % (API, ws, kind, query))
    assert r.status == 200, r
    return r.json


def count(c, ws, kind="inbound"):
    return listing(c, ws, kind)["meta"]["pagination"]["total-count"]


@pytest.fixture
def other_org(admin):
    yield from temp_org(admin)


def test_create_show_list_delete(admin, org):
    c = admin
    ws, s1, s2 = make_ws(c, org), make_ws(c, org), make_ws(c, org)
    names = {w: c.get("%s/workspaces/%s" % (API, w)).json["data"]
             ["attributes"]["name"] for w in (ws, s1, s2)}
    r = add(c, ws, s1)
    assert r.status == 201, r
    t1 = r.json["data"]
    assert t1["type"] == "run-triggers" and t1["id"].startswith("rt-")
    a = t1["attributes"]
    assert a["workspace-name"] == names[ws]
    assert a["sourceable-name"] == names[s1]
    assert a["created-at"].endswith("Z")
    rel = t1["relationships"]
    assert rel["workspace"]["data"] == {"id": ws, "type": "workspaces"}
    assert rel["sourceable"]["data"] == {"id": s1, "type": "workspaces"}
    t2 = add(c, ws, s2).json["data"]
    # show answers what create answered
    r = c.get("%s/run-triggers/%s" % (API, t1["id"]))
    assert r.status == 200 and r.json["data"] == t1, r
    # inbound on the follower, outbound on each source
    doc = listing(c, ws, "inbound")
    assert {t["id"] for t in doc["data"]} == {t1["id"], t2["id"]}
    assert doc["meta"]["pagination"]["total-count"] == 2
    assert [t["id"] for t in listing(c, s1, "outbound")["data"]] == [t1["id"]]
    assert listing(c, ws, "outbound")["data"] == []
    # a page past the end is empty but counted
    doc = listing(c, ws, "inbound", "&page[number]=999&page[size]=100")
    assert doc["data"] == []
    assert doc["meta"]["pagination"]["current-page"] == 999
    assert doc["meta"]["pagination"]["total-count"] == 2
    # include: the workspaces, each once
    doc = listing(c, ws, "inbound", "&include=sourceable,workspace")
    inc = {(i["type"], i["id"]) for i in doc["included"]}
    assert inc == {("workspaces", ws), ("workspaces", s1),
                   ("workspaces", s2)}
    assert len(doc["included"]) == 3
    # delete
    r = c.delete("%s/run-triggers/%s" % (API, t1["id"]))
    assert r.status == 204, r
    assert_error(c.get("%s/run-triggers/%s" % (API, t1["id"])), 404)
    assert_error(c.delete("%s/run-triggers/%s" % (API, t1["id"])), 404)
    assert [t["id"] for t in listing(c, ws, "inbound")["data"]] == [t2["id"]]
    # deleting a source workspace removes its triggers
    assert c.delete("%s/workspaces/%s" % (API, s2)).status in (200, 204)
    assert count(c, ws) == 0


def test_bad_input(admin, org, other_org):
    c = admin
    ws, src = make_ws(c, org), make_ws(c, org)
    foreign = make_ws(c, other_org)
    assert add(c, ws, src).status == 201
    base = "%s/workspaces/%s/run-triggers" % (API, ws)
    for q in ("", "?filter[run-trigger][type]=sideways"):
        assert_error(c.get(base + q), 400)
    assert_error(c.get(base + "?filter[run-trigger][type]=inbound"
                       "&include=runs"), 400)
    cases = [
        ({"data": {"type": "run-triggers"}}, 422),
        ({"data": {"type": "run-triggers", "relationships": {
            "sourceable": {"data": None}}}}, 422),
        ({"data": {"type": "run-triggers", "relationships": {
            "sourceable": {"data": {"type": "workspaces", "id": ""}}}}},
         422),
        ({"data": {"type": "run-triggers", "relationships": {
            "sourceable": {"data": {"type": "projects", "id": src}}}}},
         422),
        ({"data": {"type": "workspaces", "relationships": {
            "sourceable": {"data": {"type": "workspaces", "id": src}}}}},
         409),
        ({"data": []}, 422),
    ]
    for body, want in cases:
        r = c.post(base, body)
        assert r.status in (want, 400), (body, r)
        assert_error(r, r.status)
    assert_error(c.post(base, raw=b"{not json", ctype="application/json"),
                 400)
    assert_error(add(c, ws, ws), 422)            # itself
    assert_error(add(c, ws, src), 422)           # twice
    assert_error(add(c, ws, foreign), 404)       # another organization
    assert_error(add(c, ws, "ws-doesnotexist00"), 404)
    assert_error(add(c, "ws-doesnotexist00", src), 404)
    assert count(c, ws) == 1
    assert count(c, foreign, "outbound") == 0
    assert_error(c.get(API + "/run-triggers/rt-doesnotexist00"), 404)


def test_at_most_twenty_sources(admin, org):
    c = admin
    ws = make_ws(c, org)
    for _ in range(20):
        assert add(c, ws, make_ws(c, org)).status == 201
    r = add(c, ws, make_ws(c, org))
    assert_error(r, 422)
    assert "20" in r.json["errors"][0]["detail"]
    assert count(c, ws) == 20


def test_outsiders_see_nothing(admin, org):
    ws, src = make_ws(admin, org), make_ws(admin, org)
    t = add(admin, ws, src).json["data"]["id"]
    _, _, stranger = make_user(admin)
    assert_error(stranger.get("%s/run-triggers/%s" % (API, t)), 404)
    assert_error(stranger.delete("%s/run-triggers/%s" % (API, t)), 404)
    assert_error(stranger.get("%s/workspaces/%s/run-triggers?filter"
                              "[run-trigger][type]=inbound" % (API, ws)), 404)
    assert_error(add(stranger, ws, src), 404)
    assert count(admin, ws) == 1


def runs_of(c, ws):
    r = c.get("%s/workspaces/%s/runs" % (API, ws))
    assert r.status == 200, r
    return r.json["data"]


def wait_runs(c, ws, n, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline and len(runs_of(c, ws)) < n:
        time.sleep(0.1)
    runs = runs_of(c, ws)
    assert len(runs) >= n, runs
    return runs


def test_an_apply_fires_the_triggers(flow):  # noqa: F811
    _, c, org = flow
    src = make_ws(c, org)
    auto = make_ws(c, org, **{"auto-apply-run-trigger": True})
    manual = make_ws(c, org, **{"auto-apply": True})
    bare = make_ws(c, org)
    for f in (auto, manual):
        make_cv(c, f)
    for f in (auto, manual, bare):
        assert add(c, f, src).status == 201
    # a plan that never applies fires nothing
    spec = new_run(c, src, make_cv(c, src), **{"plan-only": True})["id"]
    wait_status(c, spec, "planned_and_finished", 30)
    # an apply fires every follower
    run = new_run(c, src, make_cv(c, src), **{"auto-apply": True})["id"]
    wait_status(c, run, "applied", 30)
    got = wait_runs(c, auto, 1)[0]
    assert run in got["attributes"]["message"]
    wait_status(c, got["id"], "applied", 30)
    # without auto-apply-run-trigger it waits for confirmation, even on
    # a workspace that auto-applies its own runs (as TFE)
    got = wait_runs(c, manual, 1)[0]
    wait_status(c, got["id"], "planned", 30)
    assert read(c, got["id"])["data"]["attributes"]["auto-apply"] is False
    # the follower without a configuration got nothing, and each
    # follower got exactly one run (the plan-only run fired none)
    assert runs_of(c, bare) == []
    assert len(runs_of(c, auto)) == 1 and len(runs_of(c, manual)) == 1
    assert status(c, run) == "applied"


def test_a_crash_before_firing_loses_nothing():
    """The node dies (SIGKILL) after recording the apply and before
    firing; once restarted, the reaper's sweep fires, exactly once."""
    d = flow_daemon(env={"TERRACE_FAULT": "run.trigger:1:kill"})
    if d is None:
        pytest.skip("the daemon runs no workers")
    try:
        c, org = d.client(), d.flow_org
        src, follower = make_ws(c, org), make_ws(c, org)
        make_cv(c, follower)
        assert add(c, follower, src).status == 201
        run = new_run(c, src, make_cv(c, src), **{"auto-apply": True})["id"]
        assert d.proc.wait(timeout=60) == -9, d.log_text()
        assert runs_of_db(d, follower) == 0
        d.env = None
        d.start()
        c = d.client()
        assert status(c, run) == "applied"
        got = wait_runs(c, follower, 1)
        assert len(got) == 1 and run in got[0]["attributes"]["message"]
        # the mark is cleared once the follower has its run, and a run
        # fired twice would have hit the unique (workspace, source run)
        deadline = time.time() + 30
        while time.time() < deadline and pending(d, run):
            time.sleep(0.1)
        assert not pending(d, run)
        assert len(runs_of(c, follower)) == 1
    finally:
        d.close()


def pending(d, run):
    from test_at_rest import sql
    return sql(d, "SELECT triggers_pending FROM runs WHERE id = '%s'"
               % run)[0][0] == "1"


def runs_of_db(d, ws):
    from test_at_rest import sql
    return int(sql(d, "SELECT count(*) FROM runs WHERE workspace_id = '%s'"
                   % ws)[0][0])
