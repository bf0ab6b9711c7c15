"""Agent pools, agent tokens and agents: pool CRUD with its allowed
workspaces and projects, list filters and include=workspaces; the
agent execution mode of workspaces and its checks; a token's secret
shown once and stored hashed; a pool in use is not deleted; refusals
change nothing.  Then the internal API as an agent speaks it: an agent
registers with its token, claims only the jobs of its pool's
workspaces (never another pool's, never a remote workspace's), shows
in its pool's agents, and stops authenticating once its token is
revoked.  A real agent process running tofu is tests/e2e/test_agents.py.
"""
import hashlib
import json
import os

import pytest

from conftest import assert_error, temp_org, unique
from terrace import Daemon, config_tgz
from test_at_rest import sql

API = "/api/v2"
INT = "/api/internal/v1"


@pytest.fixture(scope="module")
def d():
    """A daemon of its own without workers: only the test's agents claim."""
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


@pytest.fixture(scope="module")
def tool(c, d):
    """A registered stand-in tool version, so claims resolve a binary."""
    text = "#!/bin/sh\necho stand-in tofu\n"
    path = os.path.join(d.tmp, "tofu-agent-stand-in")
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, 0o755)
    sha = hashlib.sha256(text.encode()).hexdigest()
    r = c.post(API + "/admin/terraform-versions", {"data": {
        "type": "terraform-versions",
        "attributes": {"version": "1.9.8", "path": path, "sha": sha}}})
    assert r.status == 201, r
    return "1.9.8"


# ---- helpers -----------------------------------------------------------------

def pool_body(name=None, scoped=None, ws=None, prj=None):
    attrs = {}
    if name is not None:
        attrs["name"] = name
    if scoped is not None:
        attrs["organization-scoped"] = scoped
    data = {"type": "agent-pools", "attributes": attrs}
    rels = {}
    if ws is not None:
        rels["allowed-workspaces"] = {
            "data": [{"type": "workspaces", "id": i} for i in ws]}
    if prj is not None:
        rels["allowed-projects"] = {
            "data": [{"type": "projects", "id": i} for i in prj]}
    if rels:
        data["relationships"] = rels
    return {"data": data}


def make_pool(c, org, **kw):
    kw.setdefault("name", unique("pool"))
    r = c.post("%s/organizations/%s/agent-pools" % (API, org), pool_body(**kw))
    assert r.status == 201, r
    return r.json["data"]


def get_pool(c, pid, **kw):
    r = c.get("%s/agent-pools/%s" % (API, pid), **kw)
    assert r.status == 200, r
    return r.json["data"]


def ids(rel):
    return [x["id"] for x in rel["data"]]


def make_ws(c, org, **attrs):
    attrs.setdefault("name", unique("ws"))
    return c.post("%s/organizations/%s/workspaces" % (API, org),
                  {"data": {"type": "workspaces", "attributes": attrs}})


def ws_pool(c, ws):
    r = c.get("%s/workspaces/%s" % (API, ws))
    assert r.status == 200, r
    d = r.json["data"]
    rel = d["relationships"]["agent-pool"]["data"]
    return d["attributes"]["execution-mode"], rel["id"] if rel else None


def make_token(c, pid, desc="t"):
    r = c.post("%s/agent-pools/%s/authentication-tokens" % (API, pid),
               {"data": {"type": "authentication-tokens",
                         "attributes": {"description": desc}}})
    assert r.status == 201, r
    return r.json["data"]


def post_json(client, path, body):
    return client.post(path, raw=json.dumps(body), ctype="application/json")


def register(c, token, name="agent-1"):
    r = post_json(c.with_token(None), INT + "/agents/join", {
        "agent_token": token, "name": name, "version": "0.1.0",
        "capacity": 1})
    return r


def queue(c, ws):
    r = c.post("%s/workspaces/%s/configuration-versions" % (API, ws),
               {"data": {"type": "configuration-versions",
                         "attributes": {"auto-queue-runs": False}}})
    assert r.status == 201, r
    cv = r.json["data"]["id"]
    u = c.put(r.json["data"]["attributes"]["upload-url"], token=None,
              raw=config_tgz(b'resource "terraform_data" "x" {}\n'))
    assert u.status == 200, u
    r = c.post(API + "/runs", {"data": {"type": "runs", "attributes": {},
                                        "relationships": {
        "workspace": {"data": {"type": "workspaces", "id": ws}},
        "configuration-version": {
            "data": {"type": "configuration-versions", "id": cv}}}}})
    assert r.status == 201, r
    return r.json["data"]["id"]


def run_status(c, run):
    r = c.get("%s/runs/%s" % (API, run))
    assert r.status == 200, r
    return r.json["data"]["attributes"]["status"]


def claim(node):
    return node.post(INT + "/claim?wait=0", raw=b"")


# ---- pools -------------------------------------------------------------------

def test_create_read_update(c, org):
    p = make_pool(c, org, name="build")
    assert p["id"].startswith("apool-")
    a = p["attributes"]
    assert a["name"] == "build" and a["organization-scoped"] is True
    assert a["agent-count"] == 0
    assert p["relationships"]["organization"]["data"]["id"] == org
    assert ids(p["relationships"]["allowed-workspaces"]) == []
    assert get_pool(c, p["id"]) == p
    ws = make_ws(c, org).json["data"]["id"]
    r = c.patch("%s/agent-pools/%s" % (API, p["id"]),
                pool_body(name="build2", scoped=False, ws=[ws]))
    assert r.status == 200, r
    got = get_pool(c, p["id"])
    assert got["attributes"]["name"] == "build2"
    assert got["attributes"]["organization-scoped"] is False
    assert ids(got["relationships"]["allowed-workspaces"]) == [ws]
    # only the name: the allowed workspaces stay
    r = c.patch("%s/agent-pools/%s" % (API, p["id"]), pool_body(name="b3"))
    assert r.status == 200, r
    assert ids(r.json["data"]["relationships"]["allowed-workspaces"]) == [ws]
    # the relationship endpoints replace a list
    prj = c.get("%s/organizations/%s/projects" % (API, org)).json["data"][0]
    r = c.patch("%s/agent-pools/%s/relationships/allowed-projects"
                % (API, p["id"]),
                {"data": [{"type": "projects", "id": prj["id"]}]})
    assert r.status == 200, r
    assert ids(r.json["data"]["relationships"]["allowed-projects"]) == [
        prj["id"]]
    r = c.patch("%s/agent-pools/%s/relationships/allowed-workspaces"
                % (API, p["id"]), {"data": []})
    assert r.status == 200, r
    assert ids(r.json["data"]["relationships"]["allowed-workspaces"]) == []


@pytest.mark.parametrize("body,status", [
    (pool_body(), 422),                              # no name
    (pool_body(name=""), 422),
    (pool_body(name="x" * 256), 422),
    (pool_body(name=5), 422),
    (pool_body(name="ok", scoped="yes"), 422),
    (pool_body(name="ok", ws=["ws-nonexistent"]), 422),
    (pool_body(name="ok", prj=["prj-nonexistent"]), 422),
    ({"data": {"type": "agent-pools", "attributes": {"name": "ok"},
               "relationships": {"allowed-workspaces": {"data": "x"}}}}, 422),
    ({"data": {"type": "workspaces", "attributes": {"name": "ok"}}}, 409),
])
def test_create_refused(c, org, body, status):
    r = c.post("%s/organizations/%s/agent-pools" % (API, org), body)
    assert_error(r, status)
    r = c.get("%s/organizations/%s/agent-pools" % (API, org))
    assert r.json["data"] == []


def test_names_unique_and_other_org_workspaces(c, org):
    make_pool(c, org, name="dup")
    r = c.post("%s/organizations/%s/agent-pools" % (API, org),
               pool_body(name="dup"))
    assert_error(r, 422)
    for other in temp_org(c):
        ws = make_ws(c, other).json["data"]["id"]
        r = c.post("%s/organizations/%s/agent-pools" % (API, org),
                   pool_body(name="x", ws=[ws]))
        assert_error(r, 422)
    r = c.get("%s/organizations/%s/agent-pools" % (API, org))
    assert [p["attributes"]["name"] for p in r.json["data"]] == ["dup"]


def test_list_filters_and_include(c, org):
    w1 = make_ws(c, org).json["data"]
    w2 = make_ws(c, org).json["data"]
    scoped = make_pool(c, org, name="a-scoped")
    p1 = make_pool(c, org, name="b-one", scoped=False, ws=[w1["id"]])
    p2 = make_pool(c, org, name="c-two", scoped=False, ws=[w2["id"]])
    base = "%s/organizations/%s/agent-pools" % (API, org)
    r = c.get(base)
    assert [p["id"] for p in r.json["data"]] == [scoped["id"], p1["id"],
                                                p2["id"]]
    assert r.json["meta"]["pagination"]["total-count"] == 3
    r = c.get(base + "?q=ONE")
    assert [p["id"] for p in r.json["data"]] == [p1["id"]]
    r = c.get(base + "?filter%5Ballowed_workspaces%5D%5Bname%5D=" +
              w1["attributes"]["name"])
    assert sorted(p["id"] for p in r.json["data"]) == sorted(
        [scoped["id"], p1["id"]])
    r = c.get(base + "?page%5Bnumber%5D=99&page%5Bsize%5D=100")
    assert r.json["data"] == []
    assert r.json["meta"]["pagination"]["total-count"] == 3
    assert_error(c.get(base + "?include=agents"), 400)
    # a workspace in the agent mode shows under include=workspaces
    r = make_ws(c, org, **{"execution-mode": "agent",
                           "agent-pool-id": scoped["id"]})
    assert r.status == 201, r
    ws = r.json["data"]["id"]
    r = c.get(base + "?include=workspaces&q=scoped")
    assert ids(r.json["data"][0]["relationships"]["workspaces"]) == [ws]
    assert [i["id"] for i in r.json["included"]] == [ws]
    got = get_pool(c, scoped["id"])
    assert ids(got["relationships"]["workspaces"]) == [ws]
    r = c.get("%s/agent-pools/%s?include=workspaces" % (API, scoped["id"]))
    assert r.json["included"][0]["type"] == "workspaces"


def test_unknown_and_foreign(c, org):
    assert_error(c.get(API + "/agent-pools/apool-nonexistent"), 404)
    assert_error(c.delete(API + "/agent-pools/apool-nonexistent"), 404)
    assert_error(c.get(API + "/agents/agent-nonexistent"), 404)
    assert_error(c.get(API + "/authentication-tokens/agtok-nonexistent"), 404)
    p = make_pool(c, org)
    assert_error(c.get("%s/agent-pools/%s" % (API, p["id"]), token=None), 401)


# ---- workspaces --------------------------------------------------------------

def test_workspace_agent_mode(c, org):
    p = make_pool(c, org)
    r = make_ws(c, org, **{"execution-mode": "agent"})
    assert_error(r, 422)
    assert "agent pool" in r.json["errors"][0]["detail"]
    assert_error(make_ws(c, org, **{"execution-mode": "agent",
                                     "agent-pool-id": "apool-nonexistent"}),
                 422)
    assert_error(make_ws(c, org, **{"execution-mode": "remote",
                                     "agent-pool-id": p["id"]}), 422)
    r = make_ws(c, org, **{"execution-mode": "agent",
                           "agent-pool-id": p["id"]})
    assert r.status == 201, r
    ws = r.json["data"]["id"]
    assert ws_pool(c, ws) == ("agent", p["id"])
    # a pool of another organization
    for other in temp_org(c):
        q = make_pool(c, other)
        r = c.patch("%s/workspaces/%s" % (API, ws), {"data": {
            "type": "workspaces", "attributes": {"agent-pool-id": q["id"]}}})
        assert_error(r, 422)
        assert ws_pool(c, ws) == ("agent", p["id"])
    # the pool is in use: not deleted
    r = c.delete("%s/agent-pools/%s" % (API, p["id"]))
    assert_error(r, 422)
    assert get_pool(c, p["id"])["id"] == p["id"]
    # back to remote clears the pool; then the pool may go
    r = c.patch("%s/workspaces/%s" % (API, ws), {"data": {
        "type": "workspaces", "attributes": {"execution-mode": "remote"}}})
    assert r.status == 200, r
    assert ws_pool(c, ws) == ("remote", None)
    assert c.delete("%s/agent-pools/%s" % (API, p["id"])).status == 204
    assert_error(c.get("%s/agent-pools/%s" % (API, p["id"])), 404)


def test_workspace_must_be_allowed(c, org):
    ws = make_ws(c, org).json["data"]["id"]
    p = make_pool(c, org, scoped=False)
    body = {"data": {"type": "workspaces", "attributes": {
        "execution-mode": "agent", "agent-pool-id": p["id"]}}}
    r = c.patch("%s/workspaces/%s" % (API, ws), body)
    assert_error(r, 422)
    assert "allow" in r.json["errors"][0]["detail"]
    assert ws_pool(c, ws) == ("remote", None)
    r = c.patch("%s/agent-pools/%s" % (API, p["id"]), pool_body(ws=[ws]))
    assert r.status == 200, r
    assert c.patch("%s/workspaces/%s" % (API, ws), body).status == 200
    assert ws_pool(c, ws) == ("agent", p["id"])
    # allowed through its project
    prj = c.get("%s/organizations/%s/projects" % (API, org)).json["data"][0]
    q = make_pool(c, org, scoped=False, prj=[prj["id"]])
    r = make_ws(c, org, **{"execution-mode": "agent",
                           "agent-pool-id": q["id"]})
    assert r.status == 201, r


# ---- tokens ------------------------------------------------------------------

def test_token_shown_once(c, d, org):
    p = make_pool(c, org)
    t = make_token(c, p["id"], desc="ci runners")
    secret = t["attributes"]["token"]
    assert t["id"].startswith("agtok-") and len(secret) > 40
    assert t["attributes"]["description"] == "ci runners"
    assert t["attributes"]["last-used-at"] is None
    r = c.get("%s/authentication-tokens/%s" % (API, t["id"]))
    assert r.status == 200, r
    assert r.json["data"]["attributes"]["token"] is None
    r = c.get("%s/agent-pools/%s/authentication-tokens" % (API, p["id"]))
    assert [x["id"] for x in r.json["data"]] == [t["id"]]
    assert secret not in r.body.decode()
    rows = sql(d, "SELECT hash FROM agent_tokens WHERE id = '%s'" % t["id"])
    assert rows[0][0] == hashlib.sha256(secret.encode()).hexdigest()
    # refusals
    r = c.post("%s/agent-pools/%s/authentication-tokens" % (API, p["id"]),
               {"data": {"type": "authentication-tokens",
                         "attributes": {"description": "x" * 2000}}})
    assert_error(r, 422)
    r = c.post(API + "/agent-pools/apool-nonexistent/authentication-tokens",
               {"data": {"type": "authentication-tokens", "attributes": {}}})
    assert_error(r, 404)
    r = c.get("%s/agent-pools/%s/authentication-tokens" % (API, p["id"]))
    assert len(r.json["data"]) == 1
    assert c.delete("%s/authentication-tokens/%s"
                    % (API, t["id"])).status == 204
    assert_error(c.get("%s/authentication-tokens/%s" % (API, t["id"])), 404)


def member(c, org, team_access=None):
    """A new user who accepted membership of org, in a new team with
    organization-access team_access (no team when None); its client."""
    name = unique("u")
    r = c.post(API + "/admin/users", {"data": {"type": "users", "attributes": {
        "username": name, "email": name + "@example.com"}}})
    assert r.status == 201, r
    r = c.post("%s/admin/users/%s/authentication-tokens"
               % (API, r.json["data"]["id"]), {})
    assert r.status == 201, r
    u = c.with_token(r.json["data"]["attributes"]["token"])
    r = c.post("%s/organizations/%s/organization-memberships" % (API, org),
               {"data": {"type": "organization-memberships",
                         "attributes": {"email": name + "@example.com"}}})
    assert r.status == 201, r
    r = u.post("%s/organization-memberships/%s/actions/accept"
               % (API, r.json["data"]["id"]), {})
    assert r.status == 200, r
    if team_access is not None:
        r = c.post("%s/organizations/%s/teams" % (API, org), {"data": {
            "type": "teams", "attributes": {
                "name": unique("t"), "organization-access": team_access}}})
        assert r.status == 201, r
        r = c.post("%s/teams/%s/relationships/users"
                   % (API, r.json["data"]["id"]),
                   {"data": [{"type": "users", "id": name}]})
        assert r.status == 204, r
    return u


def test_token_list_needs_manage_agent_pools(c, org):
    """As TFE: a pool's token list is for owners and teams that may manage
    agent pools; another member sees the pool but not its tokens (403, as
    for the pool's other administration)."""
    p = make_pool(c, org)
    t = make_token(c, p["id"])
    path = "%s/agent-pools/%s/authentication-tokens" % (API, p["id"])
    manager = member(c, org, {"manage-agent-pools": True})
    plain = member(c, org, {"manage-workspaces": True})
    lone = member(c, org)
    for who in (c, manager):
        r = who.get(path)
        assert r.status == 200, r
        assert [x["id"] for x in r.json["data"]] == [t["id"]]
    for who in (plain, lone):
        assert who.get("%s/agent-pools/%s" % (API, p["id"])).status == 200
        r = who.get(path)
        assert_error(r, 403)
        assert t["id"] not in r.body.decode()


# ---- agents over the internal API -------------------------------------------

def test_agents_claim_only_their_pool(c, d, org, tool):
    pa = make_pool(c, org, name="pool-a")
    pb = make_pool(c, org, name="pool-b")
    ta = make_token(c, pa["id"])["attributes"]["token"]
    tb_ = make_token(c, pb["id"])
    tb = tb_["attributes"]["token"]

    def ws(**attrs):
        r = make_ws(c, org, **{"terraform-version": tool}, **attrs)
        assert r.status == 201, r
        return r.json["data"]["id"]

    wa = ws(**{"execution-mode": "agent", "agent-pool-id": pa["id"]})
    wb = ws(**{"execution-mode": "agent", "agent-pool-id": pb["id"]})
    wr = ws()
    rr = queue(c, wr)
    rb = queue(c, wb)
    ra = queue(c, wa)

    assert_error(register(c, "tragent.wrong"), 401)
    r = register(c, ta, name="runner-a")
    assert r.status == 201, r
    assert r.json["node_id"].startswith("agent-")
    assert r.json["pool_id"] == pa["id"]
    agent_a = c.with_token(r.json["credential"])
    aid = r.json["node_id"]

    # agent A takes pool A's job and nothing else
    r = claim(agent_a)
    assert r.status == 200, r
    job = r.json["job"]
    assert job["run_id"] == ra and job["workspace_id"] == wa
    assert claim(agent_a).status == 204
    assert run_status(c, rb) == "plan_queued"
    assert run_status(c, rr) == "plan_queued"

    r = register(c, tb, name="runner-b")
    assert r.status == 201, r
    agent_b = c.with_token(r.json["credential"])
    r = claim(agent_b)
    assert r.status == 200 and r.json["job"]["run_id"] == rb, r
    assert claim(agent_b).status == 204
    assert run_status(c, rr) == "plan_queued"  # only for non-agents

    # it shows in its pool, with the address it called from
    r = post_json(agent_a, INT + "/nodes/heartbeat", {"running_jobs": 1})
    assert r.status == 200, r
    r = c.get("%s/agent-pools/%s/agents" % (API, pa["id"]))
    assert r.status == 200, r
    assert [x["id"] for x in r.json["data"]] == [aid]
    a = r.json["data"][0]["attributes"]
    assert a["name"] == "runner-a" and a["status"] == "busy"
    assert a["ip-address"] in ("127.0.0.1", "::1", "::ffff:127.0.0.1")
    assert a["last-ping-at"]
    r = c.get("%s/agents/%s" % (API, aid))
    assert r.status == 200 and r.json["data"]["attributes"]["status"] == "busy"
    assert get_pool(c, pa["id"])["attributes"]["agent-count"] == 1
    r = c.get("%s/authentication-tokens/%s" % (API, tb_["id"]))
    assert r.json["data"]["attributes"]["last-used-at"] is not None

    # revoking B's token stops agent B at once
    r = c.delete("%s/authentication-tokens/%s" % (API, tb_["id"]))
    assert r.status == 204, r
    assert_error(claim(agent_b), 401)
    assert_error(post_json(agent_b, INT + "/nodes/heartbeat", {}), 401)
    assert_error(register(c, tb), 401)
    r = c.get("%s/agent-pools/%s/agents" % (API, pb["id"]))
    assert r.json["data"][0]["attributes"]["status"] == "exited"
    # and agent A goes on
    r = post_json(agent_a, INT + "/nodes/heartbeat", {"running_jobs": 0})
    assert r.status == 200, r


# ---- the organization's default agent pool -----------------------------------

def org_patch(c, org, mode=None, pool=...):
    data = {"type": "organizations", "attributes": {}}
    if mode is not None:
        data["attributes"]["default-execution-mode"] = mode
    if pool is not ...:
        data["relationships"] = {"default-agent-pool": {
            "data": {"type": "agent-pools", "id": pool} if pool else None}}
    return c.patch("%s/organizations/%s" % (API, org), {"data": data})


def org_default(c, org):
    r = c.get("%s/organizations/%s" % (API, org))
    assert r.status == 200, r
    d = r.json["data"]
    rel = d["relationships"]["default-agent-pool"]["data"]
    return d["attributes"]["default-execution-mode"], rel["id"] if rel else None


def test_org_default_agent_pool(c, org):
    assert org_default(c, org) == ("remote", None)
    p = make_pool(c, org)
    assert_error(org_patch(c, org, mode="agent"), 422)
    assert_error(org_patch(c, org, mode="remote", pool=p["id"]), 422)
    assert_error(org_patch(c, org, mode="agent", pool="apool-nonexistent"),
                 422)
    for other in temp_org(c):
        q = make_pool(c, other)
        assert_error(org_patch(c, org, mode="agent", pool=q["id"]), 422)
    assert org_default(c, org) == ("remote", None)
    r = org_patch(c, org, mode="agent", pool=p["id"])
    assert r.status == 200, r
    assert org_default(c, org) == ("agent", p["id"])
    # a workspace that inherits the mode takes the pool
    r = make_ws(c, org, **{"setting-overwrites": {"execution-mode": False,
                                                  "agent-pool": False}})
    assert r.status == 201, r
    assert ws_pool(c, r.json["data"]["id"]) == ("agent", p["id"])
    r = make_ws(c, org, **{"execution-mode": "local"})
    assert ws_pool(c, r.json["data"]["id"]) == ("local", None)
    # the default pool is not deleted
    q = make_pool(c, org)
    assert org_patch(c, org, pool=q["id"]).status == 200
    assert org_default(c, org) == ("agent", q["id"])
    r = c.delete("%s/agent-pools/%s" % (API, q["id"]))
    assert_error(r, 422)
    assert "default agent pool" in r.json["errors"][0]["detail"]
    # leaving the agent mode drops the default pool
    r = org_patch(c, org, mode="remote")
    assert r.status == 200, r
    assert org_default(c, org) == ("remote", None)
    assert c.delete("%s/agent-pools/%s" % (API, q["id"])).status == 204


def test_org_with_agent_workspaces_is_deleted(c):
    for org in temp_org(c):
        p = make_pool(c, org)
        make_token(c, p["id"])
        r = make_ws(c, org, **{"execution-mode": "agent",
                               "agent-pool-id": p["id"]})
        assert r.status == 201, r
        assert c.delete("%s/organizations/%s" % (API, org)).status == 204
        assert_error(c.get("%s/agent-pools/%s" % (API, p["id"])), 404)
