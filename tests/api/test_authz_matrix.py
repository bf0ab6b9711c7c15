"""The authorization matrix: every route below, called by each kind of
caller -- an owner, members of teams with read, plan, write and admin
access to the workspace, a member of no team, the owner of another
organization, no token, and a run's token (of another workspace of the
organization) -- answers the expected status, and a refusal changes
nothing (a snapshot of what the site admin sees is taken before and
after each refused call).

Its own daemon, started with --executors 0 so runs stay queued.  The run
token comes from claiming a run's job over the internal API, which only a
primary on PostgreSQL serves: on SQLite that column is skipped."""
import hashlib
import json
import os

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
    return name, admin.with_token(token)


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


def queue_run(admin, ws, cv=None):
    cv = cv or upload_cv(admin, ws)
    r = admin.post(API + "/runs", {"data": {
        "type": "runs", "attributes": {}, "relationships": {
            "workspace": {"data": {"type": "workspaces", "id": ws}},
            "configuration-version": {"data": {
                "type": "configuration-versions", "id": cv}}}}})
    return ok(r, 201)["data"]["id"]


def run_token(d, admin, org):
    """The token of a claimed job of a run in a new workspace of org, the
    node holding it and the job's id."""
    if BACKEND != "pg":
        return None
    # a registered tool version (a stand-in binary) for the job to name
    text = "#!/bin/sh\necho stand-in tofu\n"
    path = os.path.join(d.tmp, "tofu-stand-in")
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, 0o755)
    ok(admin.post(API + "/admin/terraform-versions", {"data": {
        "type": "terraform-versions", "attributes": {
            "version": "1.9.7", "path": path,
            "sha": hashlib.sha256(text.encode()).hexdigest()}}}), 201)
    r = admin.get(API + "/admin/join-token")
    jt = ok(r, 200)["data"]["attributes"]["token"]
    r = admin.with_token(None).post(
        INT + "/join", raw=json.dumps({
            "join_token": jt, "name": unique("s"), "address": "127.0.2.1",
            "version": "0.1.0", "capacity": 1}),
        ctype="application/json")
    node = admin.with_token(ok(r, 201)["credential"])
    run = queue_run(admin, new_ws(admin, org))
    for _ in range(10):
        r = node.post(INT + "/claim?wait=5000", raw=b"")
        if r.status == 204:
            continue
        job = ok(r, 200)["job"]
        if job["run_id"] == run:
            return job["token"], node, job["id"]
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
    for who, uname in [("owner", name)] + members:
        m = ok(admin.post("%s/organizations/%s/organization-memberships"
                          % (API, org), {"data": {
                              "type": "organization-memberships",
                              "attributes": {"email":
                                             uname + "@example.com"}}}), 201)
        ok(w["clients"][who].post(
            "%s/organization-memberships/%s/actions/accept"
            % (API, m["data"]["id"]), {}), 200)
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
    return w


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
    # token metadata (never the secret) is read with sight of the
    # organization, as agent_pools.c says
    ("agent pool tokens", "GET", "/agent-pools/{pool}/authentication-tokens",
     None, "member", (200,), None),
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

# what a run token gets: its routes are few (ROUTE_RUN), and this run's
# workspace is another one
RUN_EXPECT = {"org show": 200, "entitlement set": 200}


# placeholders naming something of the workspace: a member of no team
# does not see it (404)
WS_KEYS = ["ws", "run", "var", "fresh_var", "fresh_run", "plan", "apply", "cv",
           "nc", "fresh_nc", "trigger", "wsname"]


def expected(caller, needs, success, path):
    if caller == "anon":
        return 401
    if caller == "other":
        return 404
    if caller == "run":
        return None  # RUN_EXPECT or 404
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
    a, org, ws = w["admin"], w["org"], w["ws"]
    paths = ["/organizations/%s" % org,
             "/organizations/%s/workspaces?page[size]=100" % org,
             "/workspaces/%s" % ws, "/workspaces/%s/vars" % ws,
             "/workspaces/%s/runs" % ws,
             "/workspaces/%s/state-versions" % ws,
             "/workspaces/%s/notification-configurations" % ws,
             "/workspaces/%s/run-triggers?filter[run-trigger][type]=inbound"
             % ws,
             "/workspaces/%s/relationships/remote-state-consumers" % ws,
             "/workspaces/%s/relationships/tags" % ws,
             "/workspaces/%s/tag-bindings" % ws,
             "/organizations/%s/projects" % org,
             "/projects/%s" % w["project"],
             "/organizations/%s/varsets" % org,
             "/organizations/%s/ssh-keys" % org,
             "/organizations/%s/teams" % org,
             "/team-workspaces?filter[workspace][id]=%s" % ws,
             "/organizations/%s/authentication-token" % org,
             "/organizations/%s/agent-pools" % org,
             "/agent-pools/%s" % w["pool"],
             "/ssh-keys/%s" % w["sshkey"],
             "/teams/%s" % w["vis_team"],
             "/teams/%s/authentication-tokens" % w["vis_team"],
             "/team-projects?filter[project][id]=%s" % w["project"],
             "/organizations/%s/organization-memberships" % org]
    out = {}
    for p in paths:
        r = a.get(API + p)
        out[p] = (r.status, r.json if r.body else None)
    return out


def fill(w, path):
    if "{fresh_ws}" in path:
        path = path.replace("{fresh_ws}", fresh_ws(w))
    if "{fresh_run}" in path:
        path = path.replace("{fresh_run}", queue_run(w["admin"], w["ws"],
                                                     w["cv"]))
    if "{fresh_nc}" in path:
        path = path.replace("{fresh_nc}", new_nc(w))
    for key, make in (("fresh_project", new_project),
                      ("fresh_sshkey", new_sshkey),
                      ("fresh_team", new_team)):
        if "{%s}" % key in path:
            path = path.replace("{%s}" % key, make(w))
    if "{fresh_var}" in path:
        path = path.replace("{fresh_var}", fresh_var(w))
    r = w["admin"].get("%s/workspaces/%s" % (API, w["ws"]))
    ids = {k: v for k, v in w.items() if isinstance(v, str)}
    return path.format(wsname=r.json["data"]["attributes"]["name"], **ids)


@pytest.mark.parametrize("caller", CALLERS)
def test_matrix(world, caller):
    w = world
    node = job = None
    if caller == "run":
        if BACKEND != "pg":
            pytest.skip("run tokens come from the internal API (PostgreSQL)")
        tok, node, job = run_token(w["d"], w["admin"], w["org"])
        client = w["admin"].with_token(tok)
    else:
        client = w["clients"][caller]
    wrong = []
    for name, method, path, body, needs, success, cleanup in ROUTES:
        if name in ("team access create", "team-project create"):
            r = w["admin"].post("%s/organizations/%s/teams" % (API, w["org"]),
                                {"data": {"type": "teams", "attributes": {
                                    "name": unique("t"),
                                    "visibility": "organization"}}})
            w["new_team"] = ok(r, 201)["data"]["id"]
        want = expected(caller, needs, success, path)
        if caller == "run":
            want = (RUN_EXPECT.get(name, 404),)
        elif isinstance(want, int):
            want = (want,)
        p = API + fill(w, path)
        refused = want[0] >= 400 and want[0] != 409
        before = snapshot(w) if refused else None
        b = body(w) if body else None
        if node is not None:  # the token lives while its job (and node) do
            ok(node.post(INT + "/nodes/heartbeat",
                         raw=json.dumps({"running_jobs": 1}),
                         ctype="application/json"), 200)
            ok(node.post("%s/jobs/%s/heartbeat" % (INT, job), raw=b""), 200)
        r = client.request(method, p, b)
        if r.status not in want:
            wrong.append("%s %s %s: %d, want %s: %s" % (
                caller, method, p, r.status, want, r.body[:200]))
        if refused and r.status >= 400:
            err = r.json.get("errors") if r.body else None
            if r.status != 401 and not err:
                wrong.append("%s %s: no JSON:API error" % (caller, name))
            after = snapshot(w)
            if after != before:
                changed = [k for k in before if before[k] != after[k]]
                wrong.append("%s %s changed %s" % (caller, name, changed))
        if cleanup and r.status < 400:
            cleanup(w)
    assert not wrong, "\n".join(wrong)
