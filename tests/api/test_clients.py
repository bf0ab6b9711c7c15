"""What real clients send and read back: the request shapes of the tfe
provider (v0.79) and pytfe (1.5) that TFE accepts, the organization
attributes the provider plans against, the workspace outputs of
include=outputs (the provider's tfe_outputs), and the organization token
type pytfe sends.  Every rejected request is followed by a read proving
nothing changed."""
import pytest

from conftest import assert_error, unique
from test_state_versions import create as create_sv
from test_state_versions import lock, make_state

API = "/api/v2"


def ws_doc(admin, ws_id, query=""):
    r = admin.get("%s/workspaces/%s%s" % (API, ws_id, query))
    assert r.status == 200, r
    return r.json


def create_ws(admin, org, **attrs):
    attrs.setdefault("name", unique("ws"))
    r = admin.post("%s/organizations/%s/workspaces" % (API, org),
                   {"data": {"type": "workspaces", "attributes": attrs}})
    return r


def patch_ws(admin, ws_id, **attrs):
    return admin.patch("%s/workspaces/%s" % (API, ws_id),
                       {"data": {"type": "workspaces", "attributes": attrs}})


# ---- "none" as the clients say it --------------------------------------------

def test_empty_agent_pool_id_and_vcs_repo_mean_none(admin, org):
    # the provider's tfe_workspace_settings sends "agent-pool-id": "";
    # pytfe sends "vcs-repo": {} on every create and update
    r = create_ws(admin, org, **{"agent-pool-id": "", "vcs-repo": {},
                                 "setting-overwrites": {},
                                 "description": "d1"})
    assert r.status == 201, r
    a = r.json["data"]["attributes"]
    assert a["vcs-repo"] is None and a["description"] == "d1"
    assert r.json["data"]["relationships"]["agent-pool"]["data"] is None
    ws_id = r.json["data"]["id"]
    r = patch_ws(admin, ws_id, **{"agent-pool-id": "", "vcs-repo": {},
                                  "execution-mode": "local",
                                  "description": "d2"})
    assert r.status == 200, r
    a = ws_doc(admin, ws_id)["data"]["attributes"]
    assert a["execution-mode"] == "local" and a["description"] == "d2"
    assert a["vcs-repo"] is None


@pytest.mark.parametrize("attrs", [
    {"agent-pool-id": "apool-123"},
    {"agent-pool-id": 5},
    {"vcs-repo": {"identifier": "a/b"}},
    {"vcs-repo": "a/b"},
    {"vcs-repo": []},
], ids=["pool id", "pool id type", "vcs repo", "vcs repo string",
        "vcs repo list"])
def test_real_agent_pool_or_vcs_repo_refused(admin, org, attrs):
    name = unique("ws")
    assert_error(create_ws(admin, org, name=name, **attrs), 422)
    assert_error(admin.get("%s/organizations/%s/workspaces/%s" %
                           (API, org, name)), 404)
    ws_id = create_ws(admin, org).json["data"]["id"]
    before = ws_doc(admin, ws_id)["data"]["attributes"]
    assert_error(patch_ws(admin, ws_id, description="changed", **attrs),
                 422)
    assert ws_doc(admin, ws_id)["data"]["attributes"] == before


# ---- organizations -----------------------------------------------------------

def org_attrs(admin, org):
    r = admin.get("%s/organizations/%s" % (API, org))
    assert r.status == 200, r
    return r.json["data"]["attributes"]


def patch_org(admin, org, **attrs):
    return admin.patch("%s/organizations/%s" % (API, org),
                       {"data": {"type": "organizations",
                                 "attributes": attrs}})


def test_organization_attributes_round_trip(admin, org):
    a = org_attrs(admin, org)
    # never set: null (TFE's answer; the provider then plans clean)
    assert a["session-timeout"] is None and a["session-remember"] is None
    assert a["speculative-plan-management-enabled"] is True
    r = patch_org(admin, org, **{"session-timeout": 60,
                                 "session-remember": 120,
                                 "speculative-plan-management-enabled":
                                 False})
    assert r.status == 200, r
    a = org_attrs(admin, org)
    assert a["session-timeout"] == 60 and a["session-remember"] == 120
    assert a["speculative-plan-management-enabled"] is False
    # what the provider sends for its defaults is accepted and read back
    r = patch_org(admin, org, **{"speculative-plan-management-enabled": True,
                                 "user-tokens-enabled": True,
                                 "enforce-hyok": False,
                                 "max-ttl-enabled": False,
                                 "stacks-enabled": False,
                                 "session-timeout": None})
    assert r.status == 200, r
    a = org_attrs(admin, org)
    assert a["speculative-plan-management-enabled"] is True
    assert a["user-tokens-enabled"] is True and a["enforce-hyok"] is False
    assert a["session-timeout"] is None and a["session-remember"] == 120
    # and a list renders the organization the same way
    r = admin.get("%s/organizations?q=%s" % (API, org))
    assert [o["attributes"] for o in r.json["data"]] == [a]


def test_organization_create_with_provider_attributes(admin):
    name = unique("org")
    r = admin.post(API + "/organizations", {"data": {
        "type": "organizations",
        "attributes": {"name": name, "email": "o@example.com",
                       "speculative-plan-management-enabled": True,
                       "user-tokens-enabled": True, "enforce-hyok": False,
                       "max-ttl-enabled": False}}})
    assert r.status == 201, r
    try:
        a = org_attrs(admin, name)
        assert a["speculative-plan-management-enabled"] is True
        assert a["session-timeout"] is None
    finally:
        admin.delete(API + "/organizations/" + name)


# ---- organization token (pytfe) ----------------------------------------------

@pytest.mark.parametrize("type_,status", [
    ("authentication-token", 201),   # pytfe
    ("authentication-tokens", 201),  # TFE's documented type
    ("", 201),                       # go-tfe
    ("tokens", 409),
])
def test_organization_token_types(admin, org, type_, status):
    path = "%s/organizations/%s/authentication-token" % (API, org)
    before = admin.get(path)
    r = admin.post(path, {"data": {"type": type_, "attributes": {}}})
    if status != 201:
        assert_error(r, status)
        after = admin.get(path)
        assert after.status == before.status
        if before.status == 200:
            assert after.json["data"]["id"] == before.json["data"]["id"]
        return
    assert r.status == 201, r
    tok = r.json["data"]["attributes"]["token"]
    who = admin.with_token(tok).get("%s/organizations/%s" % (API, org))
    assert who.status == 200, who


# ---- include=outputs (the provider's tfe_outputs) ----------------------------

def test_workspace_include_outputs(admin, org):
    ws_id = create_ws(admin, org).json["data"]["id"]
    name = ws_doc(admin, ws_id)["data"]["attributes"]["name"]
    # no state yet: an empty relationship, nothing included
    doc = ws_doc(admin, ws_id, "?include=outputs")
    assert doc["data"]["relationships"]["outputs"]["data"] == []
    assert doc["included"] == []
    secret = unique("s3cr3t")
    lock(admin, ws_id)
    r = create_sv(admin, ws_id, make_state(1, outputs={
        "greeting": {"value": "hello", "type": "string"},
        "secret": {"value": secret, "type": "string", "sensitive": True},
        "real": {"value": 0.1, "type": "number"},
    }))
    assert r.status == 201, r
    for path in ("%s/workspaces/%s?include=outputs" % (API, ws_id),
                 "%s/organizations/%s/workspaces/%s?include=outputs" %
                 (API, org, name)):
        r = admin.get(path)
        assert r.status == 200, r
        rel = r.json["data"]["relationships"]["outputs"]["data"]
        inc = {i["id"]: i for i in r.json["included"]}
        assert sorted(x["id"] for x in rel) == sorted(inc)
        assert {x["type"] for x in rel} == {"workspace-outputs"}
        by = {i["attributes"]["name"]: i for i in inc.values()}
        assert set(by) == {"greeting", "secret", "real"}
        assert by["greeting"]["attributes"]["value"] == "hello"
        assert by["greeting"]["attributes"]["output-type"] == "string"
        # sensitive values stay out; the client reads them by id
        assert by["secret"]["attributes"]["sensitive"] is True
        assert by["secret"]["attributes"]["value"] is None
        assert secret.encode() not in r.body
        assert b'"value":0.1,' in r.body or b'"value":0.1}' in r.body
        o = admin.get("%s/state-version-outputs/%s" %
                      (API, by["secret"]["id"]))
        assert o.status == 200 and o.json["data"]["attributes"][
            "value"] == secret
    # outputs together with the other includes, and in a list
    r = admin.get("%s/organizations/%s/workspaces?include=outputs,"
                  "organization" % (API, org))
    assert r.status == 200, r
    types = sorted({i["type"] for i in r.json["included"]})
    assert types == ["organizations", "workspace-outputs"]
    assert_error(admin.get("%s/workspaces/%s?include=outputz" %
                           (API, ws_id)), 400)
