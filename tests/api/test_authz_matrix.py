"""The authorization matrix: every route below, called by each kind of
caller -- an owner, members of teams with read, plan, write and admin
access to the workspace, a member of no team, the owner of another
organization, no token, and a run's token (of another workspace of the
organization) -- answers the expected status, and a refusal changes
nothing (a snapshot of what the site admin sees is taken before and
after each run of refused calls).  test_complete reads the route tables
src/api/routes.c gathers and fails naming every public route that is
neither in the matrix nor in EXEMPT with its reason.

Its own daemon, started with --executors 0 so runs stay queued.  The run
token comes from claiming a run's job over the internal API, which only a
primary on PostgreSQL serves: on SQLite that column is skipped."""
import base64
import hashlib
import json
import os
import re
from concurrent.futures import ThreadPoolExecutor

import pytest

from conftest import unique
from terrace import Daemon, config_tgz

API = "/api/v2"
INT = "/api/internal/v1"
BACKEND = os.environ.get("TERRACE_TEST_BACKEND", "sqlite")
LEVELS = ["read", "plan", "write", "admin"]
CALLERS = ["owner"] + LEVELS + ["none", "other", "anon", "run"]
RANK = {"read": 1, "plan": 2, "write": 3, "admin": 4, "owner": 5}


@pytest.fixture(scope="module")
def d():
    dm = Daemon(backend=BACKEND, extra_args=["--executors", "0"])
    dm.start()
    yield dm
    dm.close()


def ok(r, *status):
    assert r.status in status, r
    return r.json


def make_user(admin):
    name = unique("u")
    r = admin.post(API + "/admin/users", {"data": {
        "type": "users",
        "attributes": {"username": name, "email": name + "@example.com"}}})
    uid = ok(r, 201)["data"]["id"]
    r = admin.post("%s/admin/users/%s/authentication-tokens" % (API, uid), {})
    token = ok(r, 201)["data"]["attributes"]["token"]
    c = admin.with_token(token)
    c.user_id = uid
    return name, c


def new_org(client):
    name = unique("org")
    ok(client.post(API + "/organizations", {"data": {
        "type": "organizations",
        "attributes": {"name": name, "email": "o@example.com"}}}), 201)
    return name


def new_ws(client, org):
    r = client.post("%s/organizations/%s/workspaces" % (API, org), {"data": {
        "type": "workspaces", "attributes": {"name": unique("ws")}}})
    return ok(r, 201)["data"]["id"]


def upload_cv(admin, ws):
    r = admin.post("%s/workspaces/%s/configuration-versions" % (API, ws),
                   {"data": {"type": "configuration-versions",
                             "attributes": {"auto-queue-runs": False}}})
    cv = ok(r, 201)["data"]
    u = admin.put(cv["attributes"]["upload-url"],
                  raw=config_tgz(b'resource "terraform_data" "x" {}\n'),
                  token=None)
    assert u.status == 200, u
    return cv["id"]


def register_tool(d, admin):
    """A registered tool version (a stand-in binary) for jobs to name."""
    text = "#!/bin/sh\necho stand-in tofu\n"
    path = os.path.join(d.tmp, "tofu-stand-in")
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, 0o755)
    r = admin.post(API + "/admin/terraform-versions", {"data": {
        "type": "terraform-versions", "attributes": {
            "version": "1.9.7", "path": path,
            "sha": hashlib.sha256(text.encode()).hexdigest()}}})
    return ok(r, 201)["data"]["id"]


def make_state(admin, ws):
    """A state version (with its JSON state and an output) made current in
    ws; its id."""
    st = (json.dumps({"version": 4, "terraform_version": "1.9.7",
                      "serial": 1, "lineage": "matrix-lineage",
                      "outputs": {"o": {"value": "v", "type": "string"}},
                      "resources": [], "check_results": None},
                     indent=2) + "\n").encode()
    ok(admin.post("%s/workspaces/%s/actions/lock" % (API, ws), {}), 200)
    r = admin.post("%s/workspaces/%s/state-versions" % (API, ws), {"data": {
        "type": "state-versions", "attributes": {
            "serial": 1, "md5": hashlib.md5(st).hexdigest(),
            "lineage": "matrix-lineage",
            "state": base64.b64encode(st).decode(),
            "json-state": base64.b64encode(b'{"format_version":"1.0"}')
            .decode()}}})
    sv = ok(r, 201)["data"]["id"]
    ok(admin.post("%s/workspaces/%s/actions/unlock" % (API, ws), {}), 200)
    return sv


def queue_run(admin, ws, cv=None):
    cv = cv or upload_cv(admin, ws)
    r = admin.post(API + "/runs", {"data": {
        "type": "runs", "attributes": {}, "relationships": {
            "workspace": {"data": {"type": "workspaces", "id": ws}},
            "configuration-version": {"data": {
                "type": "configuration-versions", "id": cv}}}}})
    return ok(r, 201)["data"]["id"]


def run_token(d, admin, org):
    """The token of a claimed job of a run in a new workspace of org (with
    a state version), the node holding it, the job's id and the
    workspace."""
    if BACKEND != "pg":
        return None
    r = admin.get(API + "/admin/join-token")
    jt = ok(r, 200)["data"]["attributes"]["token"]
    r = admin.with_token(None).post(
        INT + "/join", raw=json.dumps({
            "join_token": jt, "name": unique("s"), "address": "127.0.2.1",
            "version": "0.1.0", "capacity": 1}),
        ctype="application/json")
    node = admin.with_token(ok(r, 201)["credential"])
    ws = new_ws(admin, org)
    make_state(admin, ws)
    run = queue_run(admin, ws)
    for _ in range(10):
        r = node.post(INT + "/claim?wait=5000", raw=b"")
        if r.status == 204:
            continue
        job = ok(r, 200)["job"]
        if job["run_id"] == run:
            return job["token"], node, job["id"], ws
        # another test's queued run: ended now, so nothing changes later
        ok(node.post("%s/jobs/%s/finish" % (INT, job["id"]),
                     raw=json.dumps({"outcome": "errored",
                                     "error": "not this test's"}),
                     ctype="application/json"), 200, 204)
    raise AssertionError("the run's job never came")


@pytest.fixture(scope="module")
def world(d):
    admin = d.client()
    org = new_org(admin)
    w = {"admin": admin, "org": org, "clients": {}}
    name, owner = make_user(admin)
    w["clients"]["owner"] = owner
    members = []
    for who in LEVELS + ["none"]:
        uname, c = make_user(admin)
        w["clients"][who] = c
        members.append((who, uname))
    w["mships"] = {}
    for who, uname in [("owner", name)] + members:
        m = ok(admin.post("%s/organizations/%s/organization-memberships"
                          % (API, org), {"data": {
                              "type": "organization-memberships",
                              "attributes": {"email":
                                             uname + "@example.com"}}}), 201)
        ok(w["clients"][who].post(
            "%s/organization-memberships/%s/actions/accept"
            % (API, m["data"]["id"]), {}), 200)
        w["mships"][who] = m["data"]["id"]
    teams = {t["attributes"]["name"]: t["id"] for t in ok(admin.get(
        "%s/organizations/%s/teams" % (API, org)), 200)["data"]}
    ok(admin.post("%s/teams/%s/relationships/users" % (API, teams["owners"]),
                  {"data": [{"type": "users", "id": name}]}), 204)
    w["ws"] = new_ws(admin, org)
    w["teams"] = {}
    for who, uname in members:
        if who == "none":
            continue
        r = admin.post("%s/organizations/%s/teams" % (API, org), {"data": {
            "type": "teams", "attributes": {"name": "team-" + who}}})
        tid = ok(r, 201)["data"]["id"]
        w["teams"][who] = tid
        ok(admin.post("%s/teams/%s/relationships/users" % (API, tid),
                      {"data": [{"type": "users", "id": uname}]}), 204)
    grant(w, w["ws"])
    w["sv"] = make_state(admin, w["ws"])  # before a run holds the lock
    _, other = make_user(admin)
    new_org(other)
    w["clients"]["other"] = other
    w["clients"]["anon"] = admin.with_token(None)
    w["d"] = d
    # fixtures the routes act on
    r = admin.post("%s/workspaces/%s/vars" % (API, w["ws"]), {"data": {
        "type": "vars", "attributes": {"key": "k0", "value": "v",
                                       "category": "terraform"}}})
    w["var"] = ok(r, 201)["data"]["id"]
    w["cv"] = upload_cv(admin, w["ws"])
    # a run with a cost estimate
    ok(admin.patch("%s/organizations/%s" % (API, org), {"data": {
        "type": "organizations",
        "attributes": {"cost-estimation-enabled": True}}}), 200)
    w["run"] = queue_run(admin, w["ws"], w["cv"])
    w["nc"] = new_nc(w)
    w["sshkey"] = new_sshkey(w)
    w["vis_team"] = new_team(w)
    r = admin.post("%s/organizations/%s/agent-pools" % (API, org), {
        "data": {"type": "agent-pools", "attributes": {"name": unique("ap")}}})
    w["pool"] = ok(r, 201)["data"]["id"]
    w["src"] = fresh_ws(w)
    w["trigger"] = new_trigger(w, w["ws"], fresh_ws(w))
    rel = ok(admin.get("%s/runs/%s" % (API, w["run"])), 200)["data"][
        "relationships"]
    w["plan"] = rel["plan"]["data"]["id"]
    w["apply"] = rel["apply"]["data"]["id"]
    r = admin.post("%s/organizations/%s/projects" % (API, org), {"data": {
        "type": "projects", "attributes": {"name": unique("prj")}}})
    w["project"] = ok(r, 201)["data"]["id"]
    more_fixtures(w, name, owner)
    return w


def more_fixtures(w, name, owner):
    admin, org, ws = w["admin"], w["org"], w["ws"]
    r = admin.get("%s/workspaces/%s" % (API, ws))
    w["wsname"] = ok(r, 200)["data"]["attributes"]["name"]
    w["owner_name"], w["owner_id"] = name, owner.user_id
    w["none_id"] = w["clients"]["none"].user_id
    w["mship"] = w["mships"]["none"]
    w["tool"] = register_tool(w["d"], admin)
    r = admin.get("%s/state-versions/%s/outputs" % (API, w["sv"]))
    w["svout"] = ok(r, 200)["data"][0]["id"]
    r = admin.post("%s/organizations/%s/varsets" % (API, org), {"data": {
        "type": "varsets", "attributes": {"name": unique("vs")}}})
    w["varset"] = ok(r, 201)["data"]["id"]
    w["vsvar"] = new_vsvar(w)
    r = admin.post("%s/runs/%s/comments" % (API, w["run"]), {"data": {
        "type": "comments", "attributes": {"body": "c"}}})
    w["comment"] = ok(r, 201)["data"]["id"]
    r = admin.get("%s/runs/%s/run-events" % (API, w["run"]))
    w["event"] = ok(r, 200)["data"][0]["id"]
    r = admin.get("%s/team-workspaces?filter[workspace][id]=%s" % (API, ws))
    w["tw"] = [t["id"] for t in ok(r, 200)["data"]
               if t["relationships"]["team"]["data"]["id"] ==
               w["teams"]["read"]][0]
    w["tp"] = new_tp(w)
    w["tag"] = new_tag(w)
    w["atoken"] = new_atoken(w)
    r = admin.post("%s/agent-pools/%s/authentication-tokens"
                   % (API, w["pool"]), {"data": {
                       "type": "authentication-tokens",
                       "attributes": {"description": "agent"}}})
    secret = ok(r, 201)["data"]["attributes"]["token"]
    r = admin.with_token(None).post(
        INT + "/agents/join", raw=json.dumps({
            "agent_token": secret, "name": unique("agent"),
            "version": "0.1.0", "capacity": 1}),
        ctype="application/json")
    ok(r, 201)
    r = admin.get("%s/agent-pools/%s/agents" % (API, w["pool"]))
    w["agent"] = ok(r, 200)["data"][0]["id"]
    r = owner.get("%s/users/%s/authentication-tokens" % (API, owner.user_id))
    w["utoken"] = ok(r, 200)["data"][0]["id"]
    r = admin.get(API + "/admin/nodes")
    nodes = ok(r, 200)["data"]
    w["node"] = nodes[0]["id"] if nodes else "node-0000000000000000"
    r = admin.get("%s/runs/%s" % (API, w["run"]))
    rel = ok(r, 200)["data"]["relationships"]
    w["cost"] = rel["cost-estimate"]["data"]["id"]


def new_vsvar(w):
    r = w["admin"].post("%s/varsets/%s/relationships/vars"
                        % (API, w["varset"]), var_body())
    return ok(r, 201)["data"]["id"]


def new_varset(w):
    r = w["admin"].post("%s/organizations/%s/varsets" % (API, w["org"]), {
        "data": {"type": "varsets", "attributes": {"name": unique("vs")}}})
    return ok(r, 201)["data"]["id"]


def new_tp(w):
    r = w["admin"].post(API + "/team-projects", {"data": {
        "type": "team-projects", "attributes": {"access": "read"},
        "relationships": {
            "team": {"data": {"type": "teams", "id": new_team(w)}},
            "project": {"data": {"type": "projects",
                                 "id": w["project"]}}}}})
    return ok(r, 201)["data"]["id"]


def new_tw(w):
    r = w["admin"].post(API + "/team-workspaces", {"data": {
        "type": "team-workspaces", "attributes": {"access": "read"},
        "relationships": {
            "team": {"data": {"type": "teams", "id": new_team(w)}},
            "workspace": {"data": {"type": "workspaces", "id": w["ws"]}}}}})
    return ok(r, 201)["data"]["id"]


def new_tag(w):
    """A tag of the organization (on a workspace of its own); its id."""
    name = unique("tag")
    ws = new_ws(w["admin"], w["org"])
    ok(w["admin"].post("%s/workspaces/%s/relationships/tags" % (API, ws), {
        "data": [{"type": "tags", "attributes": {"name": name}}]}), 204)
    r = w["admin"].get("%s/organizations/%s/tags?q=%s&page[size]=100"
                       % (API, w["org"], name))
    return [t["id"] for t in ok(r, 200)["data"]
            if t["attributes"]["name"] == name][0]


def new_atoken(w):
    r = w["admin"].post("%s/agent-pools/%s/authentication-tokens"
                        % (API, w["pool"]), {"data": {
                            "type": "authentication-tokens",
                            "attributes": {"description": unique("d")}}})
    return ok(r, 201)["data"]["id"]


def new_utoken(w):
    """A token of the owner user (not the one the owner calls with)."""
    r = w["admin"].post("%s/admin/users/%s/authentication-tokens"
                        % (API, w["owner_id"]), {})
    return ok(r, 201)["data"]["id"]


def new_mship(w):
    """A pending invitation of a new address."""
    r = w["admin"].post("%s/organizations/%s/organization-memberships"
                        % (API, w["org"]), {"data": {
                            "type": "organization-memberships",
                            "attributes": {
                                "email": unique("i") + "@example.com"}}})
    return ok(r, 201)["data"]["id"]


def new_pool(w):
    r = w["admin"].post("%s/organizations/%s/agent-pools" % (API, w["org"]), {
        "data": {"type": "agent-pools", "attributes": {"name": unique("ap")}}})
    return ok(r, 201)["data"]["id"]


def new_wsname(w):
    """A new workspace, every team granted on it; its name."""
    ws = fresh_ws(w)
    r = w["admin"].get("%s/workspaces/%s" % (API, ws))
    return ok(r, 200)["data"]["attributes"]["name"]


def new_src_trigger(w):
    return new_trigger(w, w["ws"], new_ws(w["admin"], w["org"]))


def new_cv(w):
    """An uploaded configuration version that is no longer the latest."""
    cv = upload_cv(w["admin"], w["ws"])
    upload_cv(w["admin"], w["ws"])
    return cv


def grant(w, ws):
    for level, tid in w["teams"].items():
        ok(w["admin"].post(API + "/team-workspaces", {"data": {
            "type": "team-workspaces", "attributes": {"access": level},
            "relationships": {
                "team": {"data": {"type": "teams", "id": tid}},
                "workspace": {"data": {"type": "workspaces", "id": ws}}}}}),
           201)


def fresh_ws(w):
    ws = new_ws(w["admin"], w["org"])
    grant(w, ws)
    return ws


def fresh_var(w):
    r = w["admin"].post("%s/workspaces/%s/vars" % (API, w["ws"]), {"data": {
        "type": "vars", "attributes": {"key": unique("k").replace("-", "_"),
                                       "value": "v",
                                       "category": "terraform"}}})
    return ok(r, 201)["data"]["id"]


def new_nc(w):
    r = w["admin"].post("%s/workspaces/%s/notification-configurations"
                        % (API, w["ws"]), {"data": {
                            "type": "notification-configurations",
                            "attributes": {
                                "name": unique("n"),
                                "destination-type": "generic",
                                "url": "http://127.0.0.1:9/hook",
                                "enabled": False}}})
    return ok(r, 201)["data"]["id"]


def new_project(w):
    r = w["admin"].post("%s/organizations/%s/projects" % (API, w["org"]), {
        "data": {"type": "projects", "attributes": {"name": unique("prj")}}})
    return ok(r, 201)["data"]["id"]


def new_sshkey(w):
    r = w["admin"].post("%s/organizations/%s/ssh-keys" % (API, w["org"]), {
        "data": {"type": "ssh-keys", "attributes": {
            "name": unique("k"), "value": "not a real key"}}})
    return ok(r, 201)["data"]["id"]


def new_team(w):
    r = w["admin"].post("%s/organizations/%s/teams" % (API, w["org"]), {
        "data": {"type": "teams", "attributes": {
            "name": unique("t"), "visibility": "organization"}}})
    return ok(r, 201)["data"]["id"]


def new_trigger(w, target, source):
    r = w["admin"].post("%s/workspaces/%s/run-triggers" % (API, target), {
        "data": {"type": "run-triggers", "relationships": {
            "sourceable": {"data": {"type": "workspaces", "id": source}}}}})
    return ok(r, 201)["data"]["id"]


def drop_trigger(w):
    """Delete the trigger from w["src"] the route made, so the next caller
    can make it again."""
    r = w["admin"].get("%s/workspaces/%s/run-triggers"
                       "?filter[run-trigger][type]=inbound" % (API, w["ws"]))
    for t in ok(r, 200)["data"]:
        if t["relationships"]["sourceable"]["data"]["id"] == w["src"]:
            ok(w["admin"].delete("%s/run-triggers/%s" % (API, t["id"])), 204)


def unlock(w):
    w["admin"].post("%s/workspaces/%s/actions/force-unlock"
                    % (API, w["ws"]), {})


def readd_owner(w):
    """Put the owner user back in the visible team a route took them out
    of."""
    ok(w["admin"].post("%s/teams/%s/relationships/users"
                       % (API, w["vis_team"]), {"data": [{
                           "type": "users", "id": w["owner_name"]}]}), 204)


def legacy_token(w):
    ok(w["admin"].post("%s/teams/%s/authentication-token"
                       % (API, w["vis_team"]), {}), 201)


def org_token(w):
    ok(w["admin"].post("%s/organizations/%s/authentication-token"
                       % (API, w["org"]), {}), 201)


def ws_body(**a):
    return {"data": {"type": "workspaces", "attributes": a}}


def var_body(key=None, **a):
    a.setdefault("value", "v")
    a.setdefault("category", "terraform")
    a["key"] = key or unique("k").replace("-", "_")
    return {"data": {"type": "vars", "attributes": a}}


# (name, method, path, body, needs, success statuses, cleanup)
# needs: read/plan/write/admin (team access to the workspace), "owner"
# (organization-wide), "owner-hidden" (the same, and 404 to others),
# "member" (anyone in the organization), "project" (only those with
# access to the project: the owner here).
ROUTES = [
    ("ws show", "GET", "/workspaces/{ws}", None, "read", (200,), None),
    ("ws by name", "GET", "/organizations/{org}/workspaces/{wsname}", None,
     "read", (200,), None),
    ("ws update", "PATCH", "/workspaces/{ws}", lambda w: ws_body(
        description=unique("d")), "admin", (200,), None),
    ("ws delete", "DELETE", "/workspaces/{fresh_ws}", None, "admin", (204,),
     None),
    # the queued run may hold the lock: 409 passed the permission check
    ("ws lock", "POST", "/workspaces/{ws}/actions/lock", lambda w: {},
     "write", (200, 409), unlock),
    ("ws force-unlock", "POST", "/workspaces/{ws}/actions/force-unlock",
     lambda w: {}, "admin", (200, 409), None),
    ("vars list", "GET", "/workspaces/{ws}/vars", None, "read", (200,), None),
    ("var create", "POST", "/workspaces/{ws}/vars", lambda w: var_body(),
     "write", (201,), None),
    ("var update", "PATCH", "/workspaces/{ws}/vars/{var}", lambda w: {
        "data": {"type": "vars", "id": w["var"],
                 "attributes": {"value": unique("v")}}}, "write", (200,),
     None),
    ("var delete", "DELETE", "/workspaces/{ws}/vars/{fresh_var}", None,
     "write", (204,), None),
    ("state list", "GET", "/workspaces/{ws}/state-versions", None, "read",
     (200,), None),
    ("state create", "POST", "/workspaces/{ws}/state-versions", lambda w: {
        "data": {"type": "state-versions", "attributes": {
            "serial": 1, "md5": "0" * 32, "lineage": "l"}}}, "write",
     (409,), None),  # passes the permission check, then needs the lock
    ("runs list", "GET", "/workspaces/{ws}/runs", None, "read", (200,),
     None),
    ("run show", "GET", "/runs/{run}", None, "read", (200,), None),
    ("run create", "POST", "/runs", lambda w: {"data": {
        "type": "runs", "attributes": {"plan-only": True},
        "relationships": {"workspace": {"data": {
            "type": "workspaces", "id": w["ws"]}},
            "configuration-version": {"data": {
                "type": "configuration-versions", "id": w["cv"]}}}}},
     "plan", (201,), None),
    ("run discard", "POST", "/runs/{run}/actions/discard", lambda w: {},
     "write", (202, 409), None),
    # runs, plans and applies, run actions
    ("run plan", "GET", "/runs/{run}/plan", None, "read", (200,), None),
    ("run apply", "GET", "/runs/{run}/apply", None, "read", (200,), None),
    ("plan show", "GET", "/plans/{plan}", None, "read", (200,), None),
    ("apply show", "GET", "/applies/{apply}", None, "read", (200,), None),
    ("run events", "GET", "/runs/{run}/run-events", None, "read", (200,),
     None),
    ("run comments", "GET", "/runs/{run}/comments", None, "read", (200,),
     None),
    ("comment create", "POST", "/runs/{run}/comments", lambda w: {"data": {
        "type": "comments", "attributes": {"body": unique("c")}}}, "plan",
     (201,), None),
    ("run policy checks", "GET", "/runs/{run}/policy-checks", None, "read",
     (200,), None),
    ("run task stages", "GET", "/runs/{run}/task-stages", None, "read",
     (200,), None),
    # a queued run's actions: 409 passed the permission check
    ("run apply action", "POST", "/runs/{run}/actions/apply", lambda w: {},
     "write", (202, 409), None),
    ("run force-execute", "POST", "/runs/{run}/actions/force-execute",
     lambda w: {}, "write", (202, 409), None),
    ("run force-cancel", "POST", "/runs/{run}/actions/force-cancel",
     lambda w: {}, "write", (202, 409), None),
    ("run cancel", "POST", "/runs/{fresh_run}/actions/cancel", lambda w: {},
     "write", (202, 409), None),
    # configuration versions
    ("cvs list", "GET", "/workspaces/{ws}/configuration-versions", None,
     "read", (200,), None),
    ("cv show", "GET", "/configuration-versions/{cv}", None, "read", (200,),
     None),
    # variables: the workspace's routes and the flat /vars ones
    ("var show", "GET", "/workspaces/{ws}/vars/{var}", None, "read", (200,),
     None),
    ("vars filter", "GET", "/vars?filter[organization][name]={org}"
     "&filter[workspace][name]={wsname}", None, "read", (200,), None),
    ("var show flat", "GET", "/vars/{var}", None, "read", (200,), None),
    ("var create flat", "POST", "/vars", lambda w: dict(var_body(), **{
        "data": dict(var_body()["data"], relationships={"workspace": {
            "data": {"type": "workspaces", "id": w["ws"]}}})}), "write",
     (201,), None),
    ("var update flat", "PATCH", "/vars/{var}", lambda w: {
        "data": {"type": "vars", "id": w["var"],
                 "attributes": {"value": unique("v")}}}, "write", (200,),
     None),
    ("var delete flat", "DELETE", "/vars/{fresh_var}", None, "write", (204,),
     None),
    ("ws varsets", "GET", "/workspaces/{ws}/varsets", None, "read", (200,),
     None),
    ("varsets list", "GET", "/organizations/{org}/varsets", None, "owner",
     (200,), None),
    # state
    ("state filter", "GET", "/state-versions?filter[organization][name]="
     "{org}&filter[workspace][name]={wsname}", None, "read", (200,), None),
    # notifications
    ("notification show", "GET", "/notification-configurations/{nc}", None,
     "read", (200,), None),
    ("notification update", "PATCH", "/notification-configurations/{nc}",
     lambda w: {"data": {"type": "notification-configurations",
                         "attributes": {"name": unique("n")}}}, "admin",
     (200,), None),
    ("notification delete", "DELETE",
     "/notification-configurations/{fresh_nc}", None, "admin", (204,), None),
    # run triggers and state sharing
    ("run trigger show", "GET", "/run-triggers/{trigger}", None, "read",
     (200,), None),
    ("run trigger create", "POST", "/workspaces/{ws}/run-triggers",
     lambda w: {"data": {"type": "run-triggers", "relationships": {
         "sourceable": {"data": {"type": "workspaces", "id": w["src"]}}}}},
     "admin", (201,),
     drop_trigger),
    ("consumers add", "POST",
     "/workspaces/{ws}/relationships/remote-state-consumers", lambda w: {
         "data": [{"type": "workspaces", "id": w["src"]}]}, "admin", (204,),
     None),
    # tags and tag bindings
    ("ws tags", "GET", "/workspaces/{ws}/relationships/tags", None, "read",
     (200,), None),
    ("ws tags add", "POST", "/workspaces/{ws}/relationships/tags",
     lambda w: {"data": [{"type": "tags", "attributes": {
         "name": unique("t")}}]}, "admin", (204,), None),
    ("tag bindings", "GET", "/workspaces/{ws}/tag-bindings", None, "read",
     (200,), None),
    ("effective tag bindings", "GET",
     "/workspaces/{ws}/effective-tag-bindings", None, "read", (200,), None),
    ("tag bindings update", "PATCH", "/workspaces/{ws}/tag-bindings",
     lambda w: {"data": [{"type": "tag-bindings", "attributes": {
         "key": "k", "value": unique("v")}}]}, "admin", (200,), None),
    ("cv create", "POST", "/workspaces/{ws}/configuration-versions",
     lambda w: {"data": {"type": "configuration-versions",
                         "attributes": {"auto-queue-runs": False}}}, "plan",
     (201,), None),
    ("notifications list", "GET",
     "/workspaces/{ws}/notification-configurations", None, "read", (200,),
     None),
    ("notification create", "POST",
     "/workspaces/{ws}/notification-configurations", lambda w: {"data": {
         "type": "notification-configurations", "attributes": {
             "name": unique("n"), "destination-type": "generic",
             "url": "http://127.0.0.1:9/hook", "enabled": False}}},
     "admin", (201,), None),
    ("run triggers list", "GET",
     "/workspaces/{ws}/run-triggers?filter[run-trigger][type]=inbound",
     None, "read", (200,), None),
    ("consumers list", "GET",
     "/workspaces/{ws}/relationships/remote-state-consumers", None, "read",
     (200,), None),
    ("ssh key assign", "PATCH", "/workspaces/{ws}/relationships/ssh-key",
     lambda w: {"data": {"type": "workspaces",
                         "attributes": {"id": None}}}, "owner", (200,),
     None),
    ("org show", "GET", "/organizations/{org}", None, "member", (200,), None),
    ("org update", "PATCH", "/organizations/{org}", lambda w: {"data": {
        "type": "organizations",
        "attributes": {"email": unique("e") + "@example.com"}}}, "owner",
     (200,), None),
    ("org workspaces", "GET", "/organizations/{org}/workspaces", None,
     "member", (200,), None),
    ("ws create", "POST", "/organizations/{org}/workspaces",
     lambda w: ws_body(name=unique("ws")), "owner", (201,), None),
    ("project create", "POST", "/organizations/{org}/projects", lambda w: {
        "data": {"type": "projects", "attributes": {"name": unique("p")}}},
     "owner", (201,), None),
    ("project show", "GET", "/projects/{project}", None, "project", (200,),
     None),
    ("project update", "PATCH", "/projects/{project}", lambda w: {"data": {
        "type": "projects", "attributes": {"description": unique("d")}}},
     "project", (200,), None),
    ("varset create", "POST", "/organizations/{org}/varsets", lambda w: {
        "data": {"type": "varsets", "attributes": {"name": unique("vs")}}},
     "owner", (201,), None),
    ("ssh keys list", "GET", "/organizations/{org}/ssh-keys", None, "member",
     (200,), None),
    ("ssh key create", "POST", "/organizations/{org}/ssh-keys", lambda w: {
        "data": {"type": "ssh-keys", "attributes": {
            "name": unique("k"), "value": "not a real key"}}}, "owner",
     (201,), None),
    ("teams list", "GET", "/organizations/{org}/teams", None, "member",
     (200,), None),
    ("team create", "POST", "/organizations/{org}/teams", lambda w: {
        "data": {"type": "teams", "attributes": {"name": unique("t")}}},
     "owner", (201,), None),
    ("team access list", "GET",
     "/team-workspaces?filter[workspace][id]={ws}", None, "read", (200,),
     None),
    ("team access create", "POST", "/team-workspaces", lambda w: {"data": {
        "type": "team-workspaces", "attributes": {"access": "read"},
        "relationships": {
            "team": {"data": {"type": "teams", "id": w["new_team"]}},
            "workspace": {"data": {"type": "workspaces",
                                   "id": w["ws"]}}}}}, "admin", (201,),
     None),
    # projects and team access to them
    ("projects list", "GET", "/organizations/{org}/projects", None, "member",
     (200,), None),
    ("project varsets", "GET", "/projects/{project}/varsets", None,
     "project", (200,), None),
    ("project tag bindings", "GET", "/projects/{project}/tag-bindings", None,
     "project", (200,), None),
    ("project delete", "DELETE", "/projects/{fresh_project}", None,
     "project", (204,), None),
    ("team-projects list", "GET", "/team-projects?filter[project][id]="
     "{project}", None, "project", (200,), None),
    ("team-project create", "POST", "/team-projects", lambda w: {"data": {
        "type": "team-projects", "attributes": {"access": "read"},
        "relationships": {
            "team": {"data": {"type": "teams", "id": w["new_team"]}},
            "project": {"data": {"type": "projects",
                                 "id": w["project"]}}}}}, "project", (201,),
     None),
    # SSH keys
    ("ssh key show", "GET", "/ssh-keys/{sshkey}", None, "member", (200,),
     None),
    ("ssh key update", "PATCH", "/ssh-keys/{sshkey}", lambda w: {"data": {
        "type": "ssh-keys", "attributes": {"name": unique("k")}}}, "owner",
     (200,), None),
    ("ssh key delete", "DELETE", "/ssh-keys/{fresh_sshkey}", None, "owner",
     (204,), None),
    # agent pools
    ("agent pools list", "GET", "/organizations/{org}/agent-pools", None,
     "member", (200,), None),
    ("agent pool create", "POST", "/organizations/{org}/agent-pools",
     lambda w: {"data": {"type": "agent-pools",
                         "attributes": {"name": unique("ap")}}}, "owner",
     (201,), None),
    ("agent pool show", "GET", "/agent-pools/{pool}", None, "member", (200,),
     None),
    ("agent pool update", "PATCH", "/agent-pools/{pool}", lambda w: {
        "data": {"type": "agent-pools", "attributes": {
            "name": unique("ap")}}}, "owner", (200,), None),
    # an agent pool's tokens are the organization owners' (TFE: owners and
    # teams that manage agent pools); other members see the pool and get
    # 403 for its tokens, as for the pool's other administration
    ("agent pool tokens", "GET", "/agent-pools/{pool}/authentication-tokens",
     None, "owner", (200,), None),
    # teams and their tokens
    ("team show", "GET", "/teams/{vis_team}", None, "member", (200,), None),
    ("team update", "PATCH", "/teams/{vis_team}", lambda w: {"data": {
        "type": "teams", "attributes": {"name": unique("t")}}}, "owner",
     (200,), None),
    ("team delete", "DELETE", "/teams/{fresh_team}", None, "owner", (204,),
     None),
    ("team tokens list", "GET", "/teams/{vis_team}/authentication-tokens",
     None, "owner", (200,), None),
    ("team token create", "POST", "/teams/{vis_team}/authentication-tokens",
     lambda w: {"data": {"type": "authentication-tokens",
                         "attributes": {"description": unique("d")}}},
     "owner", (201,), None),
    # memberships and organization settings
    ("memberships list", "GET",
     "/organizations/{org}/organization-memberships", None, "member", (200,),
     None),
    ("membership invite", "POST",
     "/organizations/{org}/organization-memberships", lambda w: {"data": {
         "type": "organization-memberships", "attributes": {
             "email": unique("i") + "@example.com"}}}, "owner", (201,),
     None),
    ("entitlement set", "GET", "/organizations/{org}/entitlement-set", None,
     "member", (200,), None),
    ("run queue", "GET", "/organizations/{org}/runs/queue", None, "owner",
     (200,), None),
    ("capacity", "GET", "/organizations/{org}/capacity", None, "member",
     (200,), None),
    ("org tags", "GET", "/organizations/{org}/tags", None, "member", (200,),
     None),
    # the organization token's routes hide the organization from non-owners
    ("org token", "POST", "/organizations/{org}/authentication-token",
     lambda w: {}, "owner-hidden", (201,), None),
    ("org token show", "GET", "/organizations/{org}/authentication-token",
     None, "owner-hidden", (200,), None),
]

VS = "owner-hidden"  # variable sets

# the second half: every other route the router serves (test_complete
# holds the two lists to the route tables)
ROUTES += [
    # workspaces by name, deletion, locks
    ("ws update by name", "PATCH", "/organizations/{org}/workspaces/{wsname}",
     lambda w: ws_body(description=unique("d")), "admin", (200,), None),
    ("ws delete by name", "DELETE",
     "/organizations/{org}/workspaces/{fresh_wsname}", None, "admin", (204,),
     None),
    ("ws safe-delete by name", "POST",
     "/organizations/{org}/workspaces/{fresh_wsname}/actions/safe-delete",
     lambda w: {}, "admin", (204,), None),
    ("ws safe-delete", "POST", "/workspaces/{fresh_ws}/actions/safe-delete",
     lambda w: {}, "admin", (204,), None),
    # locked by the queued run, or not locked: 409 passed the check
    ("ws unlock", "POST", "/workspaces/{ws}/actions/unlock", lambda w: {},
     "write", (200, 409), None),
    ("ws resources", "GET", "/workspaces/{ws}/resources", None, "read",
     (200,), None),
    # tags and remote state consumers
    ("ws tags remove", "DELETE", "/workspaces/{ws}/relationships/tags",
     lambda w: {"data": [{"type": "tags", "attributes": {
         "name": "not-there"}}]}, "admin", (204,), None),
    ("consumers set", "PATCH",
     "/workspaces/{ws}/relationships/remote-state-consumers", lambda w: {
         "data": [{"type": "workspaces", "id": w["src"]}]}, "admin", (204,),
     None),
    ("consumers remove", "DELETE",
     "/workspaces/{ws}/relationships/remote-state-consumers", lambda w: {
         "data": [{"type": "workspaces", "id": w["src"]}]}, "admin", (204,),
     None),
    ("org tags delete", "DELETE", "/organizations/{org}/tags", lambda w: {
        "data": [{"type": "tags", "id": new_tag(w)}]}, "owner", (204,),
     None),
    ("tag add workspaces", "POST", "/tags/{tag}/relationships/workspaces",
     lambda w: {"data": [{"type": "workspaces", "id": w["ws"]}]}, "owner",
     (204,), None),
    # configuration versions
    ("cv download", "GET", "/configuration-versions/{cv}/download", None,
     "read", (200,), None),
    ("cv archive", "POST",
     "/configuration-versions/{fresh_cv}/actions/archive",
     lambda w: {}, "plan", (202,), None),
    # the JSON plans (the run's plan has not finished: 404 passed the
    # check) and the logs
    ("plan json", "GET", "/plans/{plan}/json-output", None, "admin", (404,),
     None),
    ("plan json redacted", "GET", "/plans/{plan}/json-output-redacted", None,
     "read", (404,), None),
    ("run plan json", "GET", "/runs/{run}/plan/json-output", None, "admin",
     (404,), None),
    ("run plan json redacted", "GET",
     "/runs/{run}/plan/json-output-redacted", None, "read", (404,), None),
    ("plan logs", "GET", "/plans/{plan}/logs", None, "read", (200,), None),
    ("apply logs", "GET", "/applies/{apply}/logs", None, "read", (200,),
     None),
    ("comment show", "GET", "/comments/{comment}", None, "read", (200,),
     None),
    ("run event show", "GET", "/run-events/{event}", None, "read", (200,),
     None),
    ("cost estimate show", "GET", "/cost-estimates/{cost}", None, "read",
     (200,), None),
    # state versions and outputs
    ("sv show", "GET", "/state-versions/{sv}", None, "read", (200,), None),
    ("sv outputs", "GET", "/state-versions/{sv}/outputs", None, "read",
     (200,), None),
    ("sv download", "GET", "/state-versions/{sv}/download", None, "read",
     (200,), None),
    ("sv json download", "GET", "/state-versions/{sv}/json-download", None,
     "read", (200,), None),
    ("current sv", "GET", "/workspaces/{ws}/current-state-version", None,
     "read", (200,), None),
    ("current outputs", "GET",
     "/workspaces/{ws}/current-state-version-outputs", None, "read", (200,),
     None),
    ("sv output show", "GET", "/state-version-outputs/{svout}", None, "read",
     (200,), None),
    # a rollback to the current version needs the lock: 409 passed
    ("sv rollback", "PATCH", "/workspaces/{ws}/state-versions", lambda w: {
        "data": {"type": "state-versions", "relationships": {
            "rollback-state-version": {"data": {
                "type": "state-versions", "id": w["sv"]}}}}}, "write",
     (409,), None),
    # notifications and run triggers
    ("notification verify", "POST",
     "/notification-configurations/{nc}/actions/verify", lambda w: {},
     "admin", (200,), None),
    ("run trigger delete", "DELETE", "/run-triggers/{fresh_trigger}", None,
     "admin", (204,), None),
    # projects
    ("project tag bindings update", "PATCH",
     "/projects/{project}/tag-bindings", lambda w: {"data": [{
         "type": "tag-bindings", "attributes": {
             "key": "k", "value": unique("v")}}]}, "project", (200,), None),
    ("project effective tag bindings", "GET",
     "/projects/{project}/effective-tag-bindings", None, "project", (200,),
     None),
    # variable sets: the organization's owners manage them, and other
    # members do not see them (404)
    ("varset show", "GET", "/varsets/{varset}", None, VS, (200,), None),
    ("varset update", "PATCH", "/varsets/{varset}", lambda w: {"data": {
        "type": "varsets", "attributes": {"description": unique("d")}}},
     VS, (200,), None),
    ("varset put", "PUT", "/varsets/{varset}", lambda w: {"data": {
        "type": "varsets", "attributes": {"description": unique("d")}}},
     VS, (200,), None),
    ("varset delete", "DELETE", "/varsets/{fresh_varset}", None, VS,
     (204,), None),
    ("varset vars", "GET", "/varsets/{varset}/relationships/vars", None,
     VS, (200,), None),
    ("varset var create", "POST", "/varsets/{varset}/relationships/vars",
     lambda w: var_body(), VS, (201,), None),
    ("varset var show", "GET", "/varsets/{varset}/relationships/vars/{vsvar}",
     None, VS, (200,), None),
    ("varset var update", "PATCH",
     "/varsets/{varset}/relationships/vars/{vsvar}", lambda w: {"data": {
         "type": "vars", "attributes": {"value": unique("v")}}}, VS,
     (200,), None),
    ("varset var delete", "DELETE",
     "/varsets/{varset}/relationships/vars/{fresh_vsvar}", None, VS,
     (204,), None),
    ("varset ws add", "POST", "/varsets/{varset}/relationships/workspaces",
     lambda w: {"data": [{"type": "workspaces", "id": w["ws"]}]}, VS,
     (204,), None),
    ("varset ws remove", "DELETE",
     "/varsets/{varset}/relationships/workspaces", lambda w: {
         "data": [{"type": "workspaces", "id": w["ws"]}]}, VS, (204,),
     None),
    ("varset prj add", "POST", "/varsets/{varset}/relationships/projects",
     lambda w: {"data": [{"type": "projects", "id": w["project"]}]}, VS,
     (204,), None),
    ("varset prj remove", "DELETE",
     "/varsets/{varset}/relationships/projects", lambda w: {
         "data": [{"type": "projects", "id": w["project"]}]}, VS, (204,),
     None),
    # team members, by user name and by organization membership
    ("team users add", "POST", "/teams/{vis_team}/relationships/users",
     lambda w: {"data": [{"type": "users", "id": w["owner_name"]}]}, "owner",
     (204,), None),
    ("team users remove", "DELETE", "/teams/{vis_team}/relationships/users",
     lambda w: {"data": [{"type": "users", "id": w["owner_name"]}]}, "owner",
     (204,), readd_owner),
    ("team mships add", "POST",
     "/teams/{vis_team}/relationships/organization-memberships", lambda w: {
         "data": [{"type": "organization-memberships",
                   "id": w["mships"]["owner"]}]}, "owner", (204,), None),
    ("team mships remove", "DELETE",
     "/teams/{vis_team}/relationships/organization-memberships", lambda w: {
         "data": [{"type": "organization-memberships",
                   "id": w["mships"]["owner"]}]}, "owner", (204,),
     readd_owner),
    # team access to the workspace and to the project
    ("team access show", "GET", "/team-workspaces/{tw}", None, "read", (200,),
     None),
    ("team access update", "PATCH", "/team-workspaces/{tw}", lambda w: {
        "data": {"type": "team-workspaces", "attributes": {
            "access": "read"}}}, "admin", (200,), None),
    ("team access delete", "DELETE", "/team-workspaces/{fresh_tw}", None,
     "admin", (204,), None),
    ("team-project show", "GET", "/team-projects/{tp}", None, "project",
     (200,), None),
    ("team-project update", "PATCH", "/team-projects/{tp}", lambda w: {
        "data": {"type": "team-projects", "attributes": {
            "access": "read"}}}, "project", (200,), None),
    ("team-project delete", "DELETE", "/team-projects/{fresh_tp}", None,
     "project", (204,), None),
    # a team's legacy token (one per team)
    ("team token legacy create", "POST",
     "/teams/{vis_team}/authentication-token", lambda w: {}, "owner", (201,),
     None),
    ("team token legacy show", "GET", "/teams/{vis_team}/authentication-token",
     None, "owner", (200,), None),
    ("team token legacy delete", "DELETE",
     "/teams/{vis_team}/authentication-token", None, "owner", (204,),
     legacy_token),
    # memberships
    ("membership show", "GET", "/organization-memberships/{mship}", None,
     "member", (200,), None),
    ("membership delete", "DELETE", "/organization-memberships/{fresh_mship}",
     None, "owner", (204,), None),
    ("own memberships", "GET", "/organization-memberships", None, "user",
     (200,), None),
    # only the invited user accepts an invitation
    ("membership accept", "POST",
     "/organization-memberships/{fresh_mship}/actions/accept", lambda w: {},
     "nobody", (200,), None),
    # organizations
    ("orgs list", "GET", "/organizations", None, "user", (200,), None),
    ("org create", "POST", "/organizations", lambda w: {"data": {
        "type": "organizations", "attributes": {
            "name": unique("org"), "email": "o@example.com"}}}, "user",
     (201,), None),
    # the owner deletes an organization of their own; the others try the
    # matrix's organization
    ("org delete", "DELETE", "/organizations/{doomed_org}", None, "owner",
     (204,), None),
    ("org token delete", "DELETE", "/organizations/{org}/authentication-token",
     None, "owner-hidden", (204,), org_token),
    # agent pools, their tokens and agents
    ("agent pool delete", "DELETE", "/agent-pools/{fresh_pool}", None,
     "owner", (204,), None),
    ("pool allowed workspaces", "PATCH",
     "/agent-pools/{pool}/relationships/allowed-workspaces", lambda w: {
         "data": []}, "owner", (200,), None),
    ("pool allowed projects", "PATCH",
     "/agent-pools/{pool}/relationships/allowed-projects", lambda w: {
         "data": []}, "owner", (200,), None),
    ("agent token create", "POST", "/agent-pools/{pool}/authentication-tokens",
     lambda w: {"data": {"type": "authentication-tokens",
                         "attributes": {"description": unique("d")}}},
     "owner", (201,), None),
    ("agent token show", "GET", "/authentication-tokens/{atoken}", None,
     "owner", (200,), None),
    ("agent token delete", "DELETE", "/authentication-tokens/{fresh_atoken}",
     None, "owner", (204,), None),
    ("pool agents", "GET", "/agent-pools/{pool}/agents", None, "member",
     (200,), None),
    ("agent show", "GET", "/agents/{agent}", None, "member", (200,), None),
    # users and their tokens: a user's own
    ("user show", "GET", "/users/{owner_id}", None, "user", (200,), None),
    ("user tokens", "GET", "/users/{owner_id}/authentication-tokens", None,
     "self", (200,), None),
    ("user token create", "POST", "/users/{owner_id}/authentication-tokens",
     lambda w: {"data": {"type": "authentication-tokens",
                         "attributes": {"description": unique("d")}}},
     "self", (201,), None),
    ("user token show", "GET", "/authentication-tokens/{utoken}", None,
     "self", (200,), None),
    ("user token delete", "DELETE", "/authentication-tokens/{fresh_utoken}",
     None, "self", (204,), None),
    ("account details", "GET", "/account/details", None, "user", (200,),
     None),
    ("account update", "PATCH", "/account/update", lambda w: {"data": {
        "type": "users", "attributes": {}}}, "user", (200,), None),
    # site administration: no caller here is a site admin
    ("admin users", "GET", "/admin/users", None, "siteadmin", (200,), None),
    ("admin user create", "POST", "/admin/users", lambda w: {"data": {
        "type": "users", "attributes": {
            "username": unique("u"),
            "email": unique("u") + "@example.com"}}}, "siteadmin", (201,),
     None),
    ("admin user delete", "DELETE", "/admin/users/{none_id}", None,
     "siteadmin", (204,), None),
    ("admin grant", "POST", "/admin/users/{none_id}/actions/grant_admin",
     lambda w: {}, "siteadmin", (200,), None),
    ("admin revoke", "POST", "/admin/users/{none_id}/actions/revoke_admin",
     lambda w: {}, "siteadmin", (200,), None),
    ("admin user token", "POST",
     "/admin/users/{none_id}/authentication-tokens", lambda w: {},
     "siteadmin", (201,), None),
    ("admin tools", "GET", "/admin/terraform-versions", None, "siteadmin",
     (200,), None),
    ("admin tool create", "POST", "/admin/terraform-versions", lambda w: {
        "data": {"type": "terraform-versions", "attributes": {
            "version": "9.9.9", "url": "http://127.0.0.1:9/x.zip",
            "sha": "0" * 64}}}, "siteadmin", (201,), None),
    ("admin tool show", "GET", "/admin/terraform-versions/{tool}", None,
     "siteadmin", (200,), None),
    ("admin tool update", "PATCH", "/admin/terraform-versions/{tool}",
     lambda w: {"data": {"type": "terraform-versions", "attributes": {
         "deprecated": True}}}, "siteadmin", (200,), None),
    ("admin tool delete", "DELETE", "/admin/terraform-versions/{tool}", None,
     "siteadmin", (204,), None),
    ("admin nodes", "GET", "/admin/nodes", None, "siteadmin", (200,), None),
    ("admin node show", "GET", "/admin/nodes/{node}", None, "siteadmin",
     (200,), None),
    ("admin node revoke", "POST", "/admin/nodes/{node}/actions/revoke",
     lambda w: {}, "siteadmin", (200,), None),
    ("admin feature sets", "GET", "/admin/feature-sets", None, "siteadmin",
     (200,), None),
    ("admin subscription", "POST", "/admin/organizations/{org}/subscription",
     lambda w: {"data": {"type": "subscriptions", "attributes": {}}},
     "siteadmin", (201,), None),
    # a primary's (PostgreSQL) only
    ("admin join token", "GET", "/admin/join-token", None, "siteadmin-pg",
     (200,), None),
    ("admin join token rotate", "POST", "/admin/join-token", lambda w: {},
     "siteadmin-pg", (201,), None),
]

# Routes of the tables that the matrix does not call, each with its reason.
EXEMPT = {
    ("GET", "/.well-known/terraform.json"):
        "public by design: service discovery for `tofu login`",
    ("GET", "/api/v2/ping"): "public by design: the CLI's ping",
    ("GET", "/_health_check"): "public by design: liveness for balancers",
    ("GET", "/api/meta/ip-ranges"): "public by design, as TFE's",
    ("GET", "/metrics"):
        "operator's: answered only to the networks --metrics allows, no "
        "tenant data (test_metrics.py)",
    ("PUT", "/api/v2/configuration-versions/:id/upload"):
        "a signed URL authorizes it, not a token (test_config_versions.py)",
    ("PUT", "/api/v2/state-versions/:id/upload"):
        "a signed URL authorizes it, not a token (test_state_versions.py)",
    ("PUT", "/api/v2/state-versions/:id/json-upload"):
        "a signed URL authorizes it, not a token (test_state_versions.py)",
    ("GET", "/api/v2/logs/:id/:expires/:sig"):
        "a signed URL authorizes it, not a token (test_run_logs.py)",
}

# what a run token gets: its routes are few (ROUTE_RUN), and this run's
# workspace is another one
RUN_EXPECT = {"org show": 200, "entitlement set": 200}


# without an Authorization header a state download is a signed URL: an
# unsigned one is not a valid URL (404), as state_transfer.c says
ANON_EXPECT = {"/state-versions/{sv}/download": 404,
               "/state-versions/{sv}/json-download": 404}


# placeholders naming something of the workspace: a member of no team
# does not see it (404)
WS_KEYS = ["ws", "run", "var", "fresh_var", "fresh_run", "plan", "apply", "cv",
           "nc", "fresh_nc", "trigger", "wsname", "fresh_wsname", "fresh_cv",
           "sv", "svout", "comment", "event", "cost", "tw", "fresh_tw",
           "fresh_trigger"]


def expected(caller, needs, success, path):
    """needs, besides the workspace levels and those above: "user" (any
    signed-in user, acting on their own things), "self" (only the owner
    user, whose things the path names: 404 to everyone else), "nobody"
    (403 to every member, 404 to others), "siteadmin" (404 to every
    caller here: site administration answers 404 to everyone else)."""
    if caller == "anon":
        return ANON_EXPECT.get(path, 401)
    if needs == "user" and caller != "run":
        return success
    if caller == "other":
        return 404
    if caller == "run":
        return None  # RUN_EXPECT or 404
    if needs in ("siteadmin", "siteadmin-pg"):
        return 404
    if needs == "nobody":
        return 403
    if needs == "self":
        return success if caller == "owner" else 404
    if caller == "owner":
        return success
    if needs == "member":
        return success
    if needs in ("project", "owner-hidden"):
        return 404
    in_ws = any("{%s}" % k in path for k in WS_KEYS)
    if caller == "none":
        return 403 if needs == "owner" and not in_ws else 404
    if needs == "owner":
        return 403
    return success if RANK[caller] >= RANK[needs] else 403


def snapshot(w):
    """What the site admin sees of everything the routes may change."""
    org, ws = w["org"], w["ws"]
    paths = ["/organizations/%s" % org,
             "/organizations/%s/workspaces?page[size]=100" % org,
             "/workspaces/%s" % ws, "/workspaces/%s/vars" % ws,
             "/workspaces/%s/runs" % ws,
             "/workspaces/%s/state-versions" % ws,
             "/workspaces/%s/current-state-version" % ws,
             "/workspaces/%s/notification-configurations" % ws,
             "/workspaces/%s/run-triggers?filter[run-trigger][type]=inbound"
             % ws,
             "/workspaces/%s/relationships/remote-state-consumers" % ws,
             "/workspaces/%s/relationships/tags" % ws,
             "/workspaces/%s/tag-bindings" % ws,
             "/workspaces/%s/varsets" % ws,
             "/configuration-versions/%s" % w["cv"],
             "/organizations/%s/projects" % org,
             "/projects/%s" % w["project"],
             "/projects/%s/tag-bindings" % w["project"],
             "/projects/%s/varsets" % w["project"],
             "/organizations/%s/varsets" % org,
             "/varsets/%s" % w["varset"],
             "/varsets/%s/relationships/vars" % w["varset"],
             "/organizations/%s/ssh-keys" % org,
             "/organizations/%s/tags?page[size]=100" % org,
             "/organizations/%s/teams" % org,
             "/team-workspaces?filter[workspace][id]=%s" % ws,
             "/team-workspaces/%s" % w["tw"],
             "/organizations/%s/authentication-token" % org,
             "/organizations/%s/agent-pools" % org,
             "/agent-pools/%s" % w["pool"],
             "/agent-pools/%s/authentication-tokens" % w["pool"],
             "/agent-pools/%s/agents" % w["pool"],
             "/ssh-keys/%s" % w["sshkey"],
             "/teams/%s" % w["vis_team"],
             "/teams/%s/authentication-tokens" % w["vis_team"],
             "/teams/%s/authentication-token" % w["vis_team"],
             "/team-projects?filter[project][id]=%s" % w["project"],
             "/organizations/%s/organization-memberships?page[size]=100"
             % org,
             "/users/%s/authentication-tokens" % w["owner_id"],
             "/admin/users?page[size]=100",
             "/admin/terraform-versions?page[size]=100",
             "/admin/nodes"]
    if BACKEND == "pg":
        paths.append("/admin/join-token")
    with ThreadPoolExecutor(4) as pool:
        got = list(pool.map(lambda p: w["admin"].get(API + p), paths))
    out = {}
    for p, r in zip(paths, got):
        doc = r.json if r.body else None
        if doc and p.endswith(("/agents", "/admin/nodes")):
            # heartbeats and the clock move these: ids and revocation only
            doc = [(n["id"], n["attributes"].get("revoked"))
                   for n in doc["data"]]
        out[p] = (r.status, steady(doc))
    return out


def steady(doc):
    """doc without what moves with the clock: signed URLs (their expiry)
    and a pool's agent-count (agents that stop heartbeating leave it)."""
    if isinstance(doc, dict):
        return {k: "<moves>" if (k.endswith("-url") and v) or
                k == "agent-count" else steady(v)
                for k, v in doc.items()}
    if isinstance(doc, list):
        return [steady(v) for v in doc]
    return doc


FRESH = (("fresh_project", new_project), ("fresh_sshkey", new_sshkey),
         ("fresh_team", new_team), ("fresh_wsname", new_wsname),
         ("fresh_cv", new_cv), ("fresh_trigger", new_src_trigger),
         ("fresh_varset", new_varset), ("fresh_vsvar", new_vsvar),
         ("fresh_tw", new_tw), ("fresh_tp", new_tp),
         ("fresh_mship", new_mship), ("fresh_pool", new_pool),
         ("fresh_atoken", new_atoken), ("fresh_utoken", new_utoken))


def fill(w, path, caller):
    """The path with its placeholders filled; fresh ones are made now."""
    if "{doomed_org}" in path:
        # an organization of the owner's own, or the matrix's
        org = new_org(w["clients"]["owner"]) if caller == "owner" \
            else w["org"]
        path = path.replace("{doomed_org}", org)
    if "{fresh_ws}" in path:
        path = path.replace("{fresh_ws}", fresh_ws(w))
    if "{fresh_run}" in path:
        path = path.replace("{fresh_run}", queue_run(w["admin"], w["ws"],
                                                     w["cv"]))
    if "{fresh_nc}" in path:
        path = path.replace("{fresh_nc}", new_nc(w))
    for key, make in FRESH:
        if "{%s}" % key in path:
            path = path.replace("{%s}" % key, make(w))
    if "{fresh_var}" in path:
        path = path.replace("{fresh_var}", fresh_var(w))
    ids = {k: v for k, v in w.items() if isinstance(v, str)}
    return path.format(**ids)


RUN_LEN = 12  # refusals per snapshot: a change names its run's routes


@pytest.mark.parametrize("caller", CALLERS)
def test_matrix(world, caller):
    w = world
    node = job = None
    if caller == "run":
        if BACKEND != "pg":
            pytest.skip("run tokens come from the internal API (PostgreSQL)")
        tok, node, job, _ = run_token(w["d"], w["admin"], w["org"])
        client = w["admin"].with_token(tok)
    else:
        client = w["clients"][caller]
    # every call's path and body first (fresh things are made now); then
    # the calls that should pass, then the refusals in runs of RUN_LEN, one
    # snapshot taken before each run and compared after it
    calls = []
    for name, method, path, body, needs, success, cleanup in ROUTES:
        if needs == "siteadmin-pg" and BACKEND != "pg":
            continue  # a primary's route: the demo does not serve it
        if name in ("team access create", "team-project create"):
            w["new_team"] = new_team(w)
        want = expected(caller, needs, success, path)
        if caller == "run":
            want = (RUN_EXPECT.get(name, 404),)
        elif isinstance(want, int):
            want = (want,)
        p = fill(w, path, caller)
        p = p if p.startswith("/api/") else API + p
        calls.append((name, method, p, body(w) if body else None, want,
                      cleanup))
    calls.sort(key=lambda c: c[4][0] >= 400 and c[4][0] != 409)
    wrong = []
    base, batch = None, []

    def close_run():
        if batch:
            after = snapshot(w)
            changed = [k for k in base if base[k] != after[k]]
            if changed:
                wrong.append("%s: one of %s changed %s" % (
                    caller, batch, changed))
        batch.clear()

    for name, method, p, b, want, cleanup in calls:
        if node is not None:  # the token lives while its job (and node) do
            ok(node.post(INT + "/nodes/heartbeat",
                         raw=json.dumps({"running_jobs": 1}),
                         ctype="application/json"), 200)
            ok(node.post("%s/jobs/%s/heartbeat" % (INT, job), raw=b""), 200)
        refused = want[0] >= 400 and want[0] != 409
        if not refused or len(batch) >= RUN_LEN:
            close_run()
            base = None
        if refused and base is None:
            base = snapshot(w)
        r = client.request(method, p, b)
        if r.status not in want:
            wrong.append("%s %s %s: %d, want %s: %s" % (
                caller, method, p, r.status, want, r.body[:200]))
        if refused:
            batch.append(name)
            err = r.json.get("errors") if r.body and r.status >= 400 \
                else None
            if r.status != 401 and not err:
                wrong.append("%s %s: no JSON:API error" % (caller, name))
        if cleanup and r.status < 400:
            cleanup(w)
    close_run()
    assert not wrong, "\n".join(wrong)


def test_agent_pool_managers(world):
    """A team whose organization access manages agent pools reads and
    makes the pool's tokens, as the owners do; a member without it may
    not (403 in the matrix)."""
    w = world
    admin = w["admin"]
    uname, c = make_user(admin)
    m = ok(admin.post("%s/organizations/%s/organization-memberships"
                      % (API, w["org"]), {"data": {
                          "type": "organization-memberships",
                          "attributes": {"email": uname + "@example.com"}}}),
           201)
    ok(c.post("%s/organization-memberships/%s/actions/accept"
              % (API, m["data"]["id"]), {}), 200)
    r = admin.post("%s/organizations/%s/teams" % (API, w["org"]), {"data": {
        "type": "teams", "attributes": {
            "name": unique("pools"),
            "organization-access": {"manage-agent-pools": True}}}})
    tid = ok(r, 201)["data"]["id"]
    pool = "%s/agent-pools/%s" % (API, w["pool"])
    tok = "%s/authentication-tokens/%s" % (API, w["atoken"])
    assert c.get(pool + "/authentication-tokens").status == 403
    ok(admin.post("%s/teams/%s/relationships/users" % (API, tid),
                  {"data": [{"type": "users", "id": uname}]}), 204)
    ok(c.get(pool + "/authentication-tokens"), 200)
    ok(c.get(tok), 200)
    r = c.post(pool + "/authentication-tokens", {"data": {
        "type": "authentication-tokens", "attributes": {"description": "m"}}})
    made = ok(r, 201)["data"]["id"]
    ok(c.delete("%s/authentication-tokens/%s" % (API, made)), 204)
    ok(c.patch(pool, {"data": {"type": "agent-pools", "attributes": {
        "name": unique("ap")}}}), 200)


def test_run_token_own_workspace(world):
    """A run's token reads its own workspace's state and outputs (the
    matrix shows it gets 404 for every other workspace's), and nothing
    else of it."""
    if BACKEND != "pg":
        pytest.skip("run tokens come from the internal API (PostgreSQL)")
    w = world
    tok, node, job, ws = run_token(w["d"], w["admin"], w["org"])
    c = w["admin"].with_token(tok)
    r = c.get("%s/workspaces/%s/current-state-version" % (API, ws))
    sv = ok(r, 200)["data"]["id"]
    out = ok(c.get("%s/state-versions/%s/outputs" % (API, sv)),
             200)["data"][0]["id"]
    for path in ("/workspaces/%s" % ws,
                 "/workspaces/%s/state-versions" % ws,
                 "/workspaces/%s/current-state-version-outputs" % ws,
                 "/state-versions/%s" % sv,
                 "/state-versions/%s/download" % sv,
                 "/state-version-outputs/%s" % out):
        r = c.get(API + path)
        assert r.status == 200, (path, r)
    for method, path in (("GET", "/workspaces/%s/vars" % ws),
                         ("GET", "/workspaces/%s/runs" % ws),
                         ("PATCH", "/workspaces/%s" % ws),
                         ("POST", "/workspaces/%s/actions/force-unlock"
                          % ws)):
        r = c.request(method, API + path, {} if method != "GET" else None)
        assert r.status == 404, (path, r)
    ok(node.post("%s/jobs/%s/finish" % (INT, job),
                 raw=json.dumps({"outcome": "errored", "error": "done"}),
                 ctype="application/json"), 200, 204)

# Tables of the internal API (cluster nodes and agents, authenticated by
# node credentials, never by tenants' tokens): test_internal_api.py.
INTERNAL_TABLES = {"api_internal_routes", "api_internal_job_routes"}
SRC = os.environ.get("TERRACE_SRC_DIR") or os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", "..")


def router_routes():
    """(method, pattern) of every public route, read from the route tables
    src/api/routes.c gathers."""
    api = os.path.join(SRC, "src", "api")
    with open(os.path.join(api, "routes.c")) as f:
        gather = f.read()
    lists = set(re.findall(r"const struct route \*const (\w+)\[\]", gather))
    tables = set(re.findall(r"\bapi_\w+_routes\b", gather)) - lists
    found, routes = set(), []
    for fn in sorted(os.listdir(api)):
        if not fn.endswith(".c"):
            continue
        with open(os.path.join(api, fn)) as f:
            text = f.read()
        macros = dict(re.findall(r'#define (\w+) ("[^"\n]*")', text))
        for name, body in re.findall(
                r"const struct route (api_\w+_routes)\[\] = \{(.*?)\n\};",
                text, re.S):
            found.add(name)
            if name not in tables or name in INTERNAL_TABLES:
                continue
            for method, expr in re.findall(r'\{\s*"([A-Z]+)",\s*([^,]+),',
                                           body):
                parts = [macros.get(t, t)
                         for t in re.findall(r'"[^"]*"|\w+', expr)]
                assert all(x.startswith('"') for x in parts), (name, expr)
                routes.append((method, "".join(x[1:-1] for x in parts)))
    assert tables <= found, "route tables not found: %s" % (tables - found)
    return routes


def test_complete():
    """Every public route is in the matrix or exempt with its reason."""
    routes = router_routes()
    assert len(routes) > 150, len(routes)
    called = []
    for _, method, path, *_ in ROUTES:
        path = re.sub(r"\{\w+\}", "x", path.split("?")[0])
        called.append((method, path if path.startswith("/api/")
                       else API + path))
    missing = []
    for method, pattern in routes:
        rx = re.compile("^" + re.sub(r":\w+", "[^/]+", pattern) + "$")
        covered = any(m == method and rx.match(p) for m, p in called)
        if not covered and (method, pattern) not in EXEMPT:
            missing.append("%s %s" % (method, pattern))
    stale = [k for k in EXEMPT if k not in routes]
    assert not missing, "routes neither in the matrix nor exempt:\n" + \
        "\n".join(missing)
    assert not stale, "exempt routes the router does not serve: %s" % stale
