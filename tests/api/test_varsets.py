"""Variable sets: create, list, read, update, delete; their variables,
workspace and project links; the sets a workspace or project sees; the
bad-input matrix and access from outside the organization."""
import pytest

from conftest import assert_error, unique
from test_projects import create_prj
from test_variables import (ALLOWED_ENV, LONG, REFUSED_ENV, _send,
                            assert_refused, var_body)
from test_workspaces import API, create_ws, make_user, org_token


def set_body(name=None, type_="varsets", rels=None, **attrs):
    a = dict(attrs)
    if name is not None:
        a["name"] = name
    d = {"type": type_, "attributes": a}
    if rels:
        d["relationships"] = rels
    return {"data": d}


def refs(type_, *ids):
    return {"data": [{"type": type_, "id": i} for i in ids]}


def create_set(client, org, name=None, **kw):
    kw.setdefault("global", False)
    r = client.post("%s/organizations/%s/varsets" % (API, org),
                    set_body(name or unique("set"), **kw))
    assert r.status == 201, r
    return r.json["data"]


def get_set(client, set_id, q=""):
    r = client.get("%s/varsets/%s%s" % (API, set_id, q))
    assert r.status == 200, r
    return r.json


def set_ids(client, path):
    r = client.get(path)
    assert r.status == 200, r
    return [s["id"] for s in r.json["data"]]


def org_sets(client, org):
    return set_ids(client, "%s/organizations/%s/varsets?page[size]=100"
                   % (API, org))


def rel_ids(doc, name):
    return [x["id"] for x in doc["relationships"][name]["data"]]


def setvars_path(set_id, var_id=None):
    p = "%s/varsets/%s/relationships/vars" % (API, set_id)
    return p + "/" + var_id if var_id else p


@pytest.fixture
def ws(admin, org):
    return create_ws(admin, org)


# ---- sets -----------------------------------------------------------------

def test_create_read(admin, org):
    r = admin.post("%s/organizations/%s/varsets" % (API, org),
                   set_body("creds", description="cloud", **{"global": False},
                            priority=True))
    assert r.status == 201, r
    s = r.json["data"]
    assert s["type"] == "varsets" and s["id"].startswith("varset-")
    a = s["attributes"]
    assert a["name"] == "creds" and a["description"] == "cloud"
    assert a["global"] is False and a["priority"] is True
    assert a["var-count"] == 0 and a["workspace-count"] == 0
    assert a["project-count"] == 0 and a["updated-at"]
    rels = s["relationships"]
    assert rels["organization"]["data"] == {"id": org,
                                            "type": "organizations"}
    assert rels["vars"]["data"] == [] and rels["workspaces"]["data"] == []
    assert rels["projects"]["data"] == []
    assert get_set(admin, s["id"])["data"] == s
    # defaults: description "", global and priority false
    d = create_set(admin, org, "plain")
    assert d["attributes"]["description"] == ""
    assert d["attributes"]["priority"] is False
    assert_error(admin.post("%s/organizations/%s/varsets" % (API, org),
                            set_body("creds")), 422)


def test_create_with_relationships_and_include(admin, org, ws):
    prj = create_prj(admin, org)
    body = set_body("full", rels={
        "workspaces": refs("workspaces", ws["id"]),
        "projects": refs("projects", prj["id"]),
        "vars": {"data": [
            {"type": "vars", "attributes": {"key": "a", "value": "1",
                                            "category": "terraform"}},
            {"type": "vars", "attributes": {"key": "S", "value": "hidden",
                                            "category": "env",
                                            "sensitive": True}}]}},
        **{"global": False})
    r = admin.post("%s/organizations/%s/varsets" % (API, org), body)
    assert r.status == 201, r
    s = r.json["data"]
    assert s["attributes"]["var-count"] == 2
    assert rel_ids(s, "workspaces") == [ws["id"]]
    assert rel_ids(s, "projects") == [prj["id"]]
    assert len(rel_ids(s, "vars")) == 2
    doc = get_set(admin, s["id"], "?include=workspaces,projects,vars")
    inc = {(x["type"], x["id"]): x for x in doc["included"]}
    assert ("workspaces", ws["id"]) in inc and ("projects", prj["id"]) in inc
    vs = [x for x in doc["included"] if x["type"] == "vars"]
    assert {v["attributes"]["key"]: v["attributes"]["value"]
            for v in vs} == {"a": "1", "S": None}
    assert vs[0]["relationships"]["varset"]["data"] == {
        "id": s["id"], "type": "varsets"}
    assert "included" not in get_set(admin, s["id"])
    assert_error(admin.get("%s/varsets/%s?include=owner" % (API, s["id"])),
                 400)
    # a bad variable in the list: nothing is created
    body = set_body("bad-vars", rels={"vars": {"data": [
        {"type": "vars", "attributes": {"key": "a", "category": "terraform"}},
        {"type": "vars", "attributes": {"key": "a",
                                        "category": "terraform"}}]}},
        **{"global": False})
    assert_error(admin.post("%s/organizations/%s/varsets" % (API, org),
                            body), 422)
    assert org_sets(admin, org) == [s["id"]]


def test_list_query_and_pagination(admin, org):
    ids = [create_set(admin, org, n)["id"] for n in ("alpha", "beta", "gamma")]
    base = "%s/organizations/%s/varsets" % (API, org)
    r = admin.get(base)
    assert [s["id"] for s in r.json["data"]] == ids
    assert r.json["meta"]["pagination"]["total-count"] == 3
    r = admin.get(base + "?page[size]=2&page[number]=2")
    assert [s["id"] for s in r.json["data"]] == ids[2:]
    r = admin.get(base + "?page[number]=999&page[size]=100")
    assert r.status == 200 and r.json["data"] == []
    assert r.json["meta"]["pagination"]["current-page"] == 999
    assert r.json["meta"]["pagination"]["total-count"] == 3
    assert set_ids(admin, base + "?q=ETA") == [ids[1]]
    assert set_ids(admin, base + "?q=%25") == []
    assert_error(admin.get(base + "?page[size]=x"), 400)
    assert_error(admin.get(base + "?include=nope"), 400)


def test_update(admin, org, ws):
    s = create_set(admin, org, "before")
    path = "%s/varsets/%s" % (API, s["id"])
    r = admin.patch(path, set_body("after", description="d",
                                   **{"global": True}, priority=True))
    assert r.status == 200, r
    a = r.json["data"]["attributes"]
    assert (a["name"], a["description"], a["global"], a["priority"]) == (
        "after", "d", True, True)
    # go-tfe's UpdateWorkspaces: global false plus the workspace list
    r = admin.patch(path + "?include=workspaces", set_body(
        None, rels={"workspaces": refs("workspaces", ws["id"])},
        **{"global": False}))
    assert r.status == 200, r
    assert rel_ids(r.json["data"], "workspaces") == [ws["id"]]
    assert r.json["included"][0]["id"] == ws["id"]
    r = admin.patch(path, set_body(None, rels={"workspaces": refs(
        "workspaces")}))
    assert rel_ids(r.json["data"], "workspaces") == []
    # a global set cannot be linked; turning global drops the links
    admin.patch(path, set_body(None, rels={"workspaces": refs(
        "workspaces", ws["id"])}))
    assert_error(admin.patch(path, set_body(
        None, rels={"workspaces": refs("workspaces", ws["id"])},
        **{"global": True})), 422)
    r = admin.patch(path, set_body(None, **{"global": True}))
    assert r.json["data"]["attributes"]["global"] is True
    assert rel_ids(r.json["data"], "workspaces") == []
    # PUT works as PATCH
    r = admin.request("PUT", path, body=set_body("renamed"))
    assert r.status == 200 and r.json["data"]["attributes"]["name"] == \
        "renamed"
    # duplicate name
    create_set(admin, org, "taken")
    assert_error(admin.patch(path, set_body("taken")), 422)
    assert get_set(admin, s["id"])["data"]["attributes"]["name"] == "renamed"


def test_delete(admin, org, ws):
    s = create_set(admin, org)
    v = admin.post(setvars_path(s["id"]), var_body("k", "v")).json["data"]
    path = "%s/varsets/%s" % (API, s["id"])
    assert admin.delete(path).status == 204
    assert_error(admin.get(path), 404)
    assert_error(admin.delete(path), 404)
    assert_error(admin.get(setvars_path(s["id"], v["id"])), 404)
    assert org_sets(admin, org) == []


# ---- links ----------------------------------------------------------------

def test_apply_and_remove(admin, org, ws):
    s = create_set(admin, org)
    w2 = create_ws(admin, org)
    prj = create_prj(admin, org)
    base = "%s/varsets/%s/relationships" % (API, s["id"])
    r = admin.post(base + "/workspaces", refs("workspaces", ws["id"]))
    assert r.status == 204, r
    assert rel_ids(get_set(admin, s["id"])["data"], "workspaces") == [
        ws["id"]]
    assert admin.post(base + "/workspaces",
                      refs("workspaces", w2["id"], ws["id"])).status == 204
    d = get_set(admin, s["id"])["data"]
    assert sorted(rel_ids(d, "workspaces")) == sorted([ws["id"], w2["id"]])
    assert d["attributes"]["workspace-count"] == 2
    assert admin.request("DELETE", base + "/workspaces",
                         body=refs("workspaces", ws["id"])).status == 204
    assert rel_ids(get_set(admin, s["id"])["data"], "workspaces") == [
        w2["id"]]
    assert admin.post(base + "/projects",
                      refs("projects", prj["id"])).status == 204
    assert rel_ids(get_set(admin, s["id"])["data"], "projects") == [
        prj["id"]]
    assert admin.request("DELETE", base + "/projects",
                         body=refs("projects", prj["id"])).status == 204
    assert rel_ids(get_set(admin, s["id"])["data"], "projects") == []


def test_sets_of_workspace_and_project(admin, org):
    prj = create_prj(admin, org)
    r = admin.post("%s/organizations/%s/workspaces" % (API, org), {
        "data": {"type": "workspaces",
                 "attributes": {"name": unique("ws")},
                 "relationships": {"project": {"data": {
                     "type": "projects", "id": prj["id"]}}}}})
    assert r.status == 201, r
    w = r.json["data"]
    g = create_set(admin, org, "g", **{"global": True})
    direct = create_set(admin, org, "direct")
    via = create_set(admin, org, "via-project")
    create_set(admin, org, "unrelated")
    admin.post("%s/varsets/%s/relationships/workspaces" % (API, direct["id"]),
               refs("workspaces", w["id"]))
    admin.post("%s/varsets/%s/relationships/projects" % (API, via["id"]),
               refs("projects", prj["id"]))
    assert sorted(set_ids(admin, "%s/workspaces/%s/varsets"
                          % (API, w["id"]))) == sorted(
        [g["id"], direct["id"], via["id"]])
    assert sorted(set_ids(admin, "%s/projects/%s/varsets"
                          % (API, prj["id"]))) == sorted([g["id"], via["id"]])
    r = admin.get("%s/workspaces/%s/varsets?page[size]=1" % (API, w["id"]))
    assert len(r.json["data"]) == 1
    assert r.json["meta"]["pagination"]["total-count"] == 3
    assert_error(admin.get("%s/workspaces/ws-nope/varsets" % API), 404)
    assert_error(admin.get("%s/projects/prj-nope/varsets" % API), 404)


LINK_BAD = [
    ("malformed", b"{x", 400),
    ("empty body", b"", 400),
    ("data not a list", {"data": {"type": "workspaces", "id": "ws-x"}}, 422),
    ("empty list", {"data": []}, 422),
    ("wrong type", refs("projects", "ws-x"), 409),
    ("missing id", {"data": [{"type": "workspaces"}]}, 422),
    ("unknown workspace", refs("workspaces", "ws-nope"), 404),
]


@pytest.mark.parametrize("label,body,status", LINK_BAD,
                         ids=[b[0] for b in LINK_BAD])
@pytest.mark.parametrize("method", ["POST", "DELETE"])
def test_link_bad_input(admin, org, ws, method, label, body, status):
    s = create_set(admin, org)
    path = "%s/varsets/%s/relationships/workspaces" % (API, s["id"])
    admin.post(path, refs("workspaces", ws["id"]))
    before = get_set(admin, s["id"])["data"]
    assert_error(_send(admin, method, path, body), status)
    assert get_set(admin, s["id"])["data"] == before


def test_link_refusals(admin, org, ws):
    s = create_set(admin, org)
    base = "%s/varsets/%s/relationships" % (API, s["id"])
    other = unique("org")
    assert admin.post(API + "/organizations", {"data": {
        "type": "organizations",
        "attributes": {"name": other, "email": "o@example.com"}}}).status \
        == 201
    try:
        foreign = create_ws(admin, other)
        # one foreign id spoils the whole list
        assert_error(admin.post(base + "/workspaces", refs(
            "workspaces", ws["id"], foreign["id"])), 404)
        assert_error(admin.post(base + "/projects", refs(
            "projects", "prj-nope")), 404)
        d = get_set(admin, s["id"])["data"]
        assert rel_ids(d, "workspaces") == [] and rel_ids(d, "projects") == []
        assert_error(admin.patch("%s/varsets/%s" % (API, s["id"]), set_body(
            None, rels={"workspaces": refs("workspaces", foreign["id"])})),
            404)
        # a global set is applied to everything already
        g = create_set(admin, org, **{"global": True})
        assert_error(admin.post("%s/varsets/%s/relationships/workspaces"
                                % (API, g["id"]),
                                refs("workspaces", ws["id"])), 422)
        assert_error(admin.post("%s/varsets/varset-nope/relationships/"
                                "workspaces" % API,
                                refs("workspaces", ws["id"])), 404)
    finally:
        admin.delete(API + "/organizations/" + other)


# ---- variables of a set ---------------------------------------------------

def test_set_variables(admin, org):
    s = create_set(admin, org)
    r = admin.post(setvars_path(s["id"]), var_body("region", "eu",
                                                   description="d"))
    assert r.status == 201, r
    v = r.json["data"]
    a = v["attributes"]
    assert a["key"] == "region" and a["value"] == "eu" and a["version-id"]
    assert v["relationships"]["varset"]["data"] == {"id": s["id"],
                                                    "type": "varsets"}
    assert v["links"]["self"] == "%s/vars/%s" % (API, v["id"])
    r = admin.get(setvars_path(s["id"], v["id"]))
    assert r.status == 200 and r.json["data"] == v
    sec = admin.post(setvars_path(s["id"]), var_body(
        "token", "t0p", category="env", sensitive=True)).json["data"]
    assert sec["attributes"]["value"] is None
    r = admin.get(setvars_path(s["id"]))
    assert r.status == 200 and [x["id"] for x in r.json["data"]] == [
        v["id"], sec["id"]]
    assert rel_ids(get_set(admin, s["id"])["data"], "vars") == [
        v["id"], sec["id"]]
    r = admin.patch(setvars_path(s["id"], v["id"]),
                    var_body("zone", "eu-1", category=None, hcl=True))
    assert r.status == 200, r
    b = r.json["data"]["attributes"]
    assert (b["key"], b["value"], b["hcl"]) == ("zone", "eu-1", True)
    assert b["version-id"] != a["version-id"]
    r = admin.patch(setvars_path(s["id"], v["id"]),
                    var_body(None, None, category=None, sensitive=True))
    assert r.json["data"]["attributes"]["value"] is None
    assert_error(admin.post(setvars_path(s["id"]), var_body("zone", "x")),
                 422)
    # variables of one set are not reachable through another
    s2 = create_set(admin, org)
    assert_error(admin.get(setvars_path(s2["id"], v["id"])), 404)
    assert_error(admin.patch(setvars_path(s2["id"], v["id"]),
                             var_body(None, "x", category=None)), 404)
    assert_error(admin.delete(setvars_path(s2["id"], v["id"])), 404)
    assert admin.delete(setvars_path(s["id"], v["id"])).status == 204
    assert_error(admin.get(setvars_path(s["id"], v["id"])), 404)
    assert get_set(admin, s["id"])["data"]["attributes"]["var-count"] == 1
    # workspace variable endpoints do not reach set variables
    assert_error(admin.get("%s/vars/%s" % (API, sec["id"])), 404)


def test_refused_env_names(admin, org):
    path = "%s/organizations/%s/varsets" % (API, org)
    s = create_set(admin, org)
    env = admin.post(setvars_path(s["id"]), var_body(
        "SAFE", "v", category="env")).json["data"]
    tf = admin.post(setvars_path(s["id"]), var_body(
        "GLIBC_TUNABLES", "v")).json["data"]
    for name, why in REFUSED_ENV:
        # in a new set's list of variables: no set is made
        body = set_body(unique("set"), rels={"vars": {"data": [
            {"type": "vars", "attributes": {"key": "ok", "value": "1",
                                            "category": "env"}},
            {"type": "vars", "attributes": {"key": name, "value": "x",
                                            "category": "env"}}]}},
            **{"global": False})
        assert_refused(admin.post(path, body), name, why)
        assert_refused(admin.post(setvars_path(s["id"]), var_body(
            name, "/evil.so", category="env")), name, why)
        assert_refused(admin.patch(setvars_path(s["id"], env["id"]),
                                   var_body(name, None, category=None)),
                       name, why)
    assert_refused(admin.patch(setvars_path(s["id"], tf["id"]), var_body(
        None, None, category="env")), "GLIBC_TUNABLES", "C library")
    assert org_sets(admin, org) == [s["id"]]
    r = admin.get(setvars_path(s["id"]))
    assert r.json["data"] == [env, tf]
    # names users need pass; a rename on the way to env is fine
    for name in ALLOWED_ENV:
        r = admin.post(setvars_path(s["id"]), var_body(name, "v",
                                                       category="env"))
        assert r.status == 201, r
    r = admin.patch(setvars_path(s["id"], tf["id"]), var_body(
        "TF_LOG", None, category="env"))
    assert_error(r, 422)  # a key the set has, not a refused one
    assert "taken" in r.json["errors"][0]["detail"], r
    r = admin.patch(setvars_path(s["id"], tf["id"]), var_body(
        "AWS_PROFILE", None, category="env"))
    assert r.status == 200, r
    assert r.json["data"]["attributes"]["category"] == "env"


# ---- bad input ------------------------------------------------------------

BAD_CREATE = [
    ("malformed", b"{x", 400),
    ("empty body", b"", 400),
    ("no data", {"x": 1}, 422),
    ("wrong type", set_body("n", type_="vars"), 409),
    ("attributes not object", {"data": {"type": "varsets",
                                        "attributes": "x"}}, 422),
    ("missing name", set_body(None, description="d"), 422),
    ("empty name", set_body(""), 422),
    ("long name", set_body("n" * 129), 422),
    ("control char", set_body("a\nb"), 422),
    ("name type", set_body(7), 422),
    ("global type", set_body("n", **{"global": "yes"}), 422),
    ("priority type", set_body("n", priority=0), 422),
    ("description type", set_body("n", description=1), 422),
    ("long description", set_body("n", description=LONG), 422),
    ("workspaces not list", set_body("n", rels={"workspaces": {
        "data": {"type": "workspaces", "id": "x"}}}), 422),
    ("workspace wrong type", set_body("n", rels={"workspaces": refs(
        "projects", "x")}), 409),
    ("unknown workspace", set_body("n", rels={"workspaces": refs(
        "workspaces", "ws-nope")}), 404),
    ("unknown project", set_body("n", rels={"projects": refs(
        "projects", "prj-nope")}), 404),
    ("global with workspaces", set_body("n", rels={"workspaces": refs(
        "workspaces", "WS")}, **{"global": True}), 422),
    ("var wrong type", set_body("n", rels={"vars": {"data": [
        {"type": "varsets", "attributes": {"key": "k",
                                           "category": "env"}}]}}), 409),
    ("var bad key", set_body("n", rels={"vars": {"data": [
        {"type": "vars", "attributes": {"key": "a b",
                                        "category": "terraform"}}]}}), 422),
    ("var no category", set_body("n", rels={"vars": {"data": [
        {"type": "vars", "attributes": {"key": "k"}}]}}), 422),
]


def _fix(body, ws):
    """Replaces the placeholder workspace id WS in body."""
    import json
    if isinstance(body, bytes):
        return body
    return json.loads(json.dumps(body).replace('"WS"', '"%s"' % ws["id"]))


@pytest.mark.parametrize("label,body,status", BAD_CREATE,
                         ids=[b[0] for b in BAD_CREATE])
def test_create_bad_input(admin, org, ws, label, body, status):
    existing = create_set(admin, org, "existing")
    path = "%s/organizations/%s/varsets" % (API, org)
    assert_error(_send(admin, "POST", path, _fix(body, ws)), status)
    assert org_sets(admin, org) == [existing["id"]]


BAD_UPDATE = [b for b in BAD_CREATE if b[0] != "missing name"] + [
    ("taken name", set_body("taken"), 422),
]


@pytest.mark.parametrize("label,body,status", BAD_UPDATE,
                         ids=[b[0] for b in BAD_UPDATE])
def test_update_bad_input(admin, org, ws, label, body, status):
    s = create_set(admin, org, "stable", description="same")
    create_set(admin, org, "taken")
    admin.post("%s/varsets/%s/relationships/workspaces" % (API, s["id"]),
               refs("workspaces", ws["id"]))
    admin.post(setvars_path(s["id"]), var_body("k", "v"))
    before = get_set(admin, s["id"])["data"]
    path = "%s/varsets/%s" % (API, s["id"])
    assert_error(_send(admin, "PATCH", path, _fix(body, ws)), status)
    assert get_set(admin, s["id"])["data"] == before


BAD_VAR = [
    ("malformed", b"{x", 400),
    ("wrong type", var_body("k", "v", type_="varsets"), 409),
    ("missing key", var_body(None, "v"), 422),
    ("bad key", var_body("a b", "v"), 422),
    ("missing category", var_body("k", "v", category=None), 422),
    ("bad category", var_body("k", "v", category="x"), 422),
    ("value type", var_body("k", 1), 422),
    ("sensitive type", var_body("k", "v", sensitive="no"), 422),
    ("long description", var_body("k", "v", description=LONG), 422),
    ("duplicate", var_body("dup", "v"), 422),
]


@pytest.mark.parametrize("label,body,status", BAD_VAR,
                         ids=[b[0] for b in BAD_VAR])
def test_set_variable_bad_input(admin, org, label, body, status):
    s = create_set(admin, org)
    v = admin.post(setvars_path(s["id"]), var_body("dup", "1",
                                                   sensitive=True)).json[
        "data"]
    other = admin.post(setvars_path(s["id"]), var_body("other", "2")).json[
        "data"]
    assert_error(_send(admin, "POST", setvars_path(s["id"]), body), status)
    if label not in ("missing key", "missing category", "duplicate"):
        assert_error(_send(admin, "PATCH", setvars_path(s["id"], other["id"]),
                           body), status)
    assert_error(admin.patch(setvars_path(s["id"], v["id"]), var_body(
        None, None, category=None, sensitive=False)), 422)
    r = admin.get(setvars_path(s["id"]))
    assert r.json["data"] == [v, other]


def test_too_large_and_no_token(admin, anon, org):
    s = create_set(admin, org)
    big = set_body("n" * 10, description="x" * (16 * 1024 * 1024 + 10))
    for method, path in (("POST", "%s/organizations/%s/varsets" % (API, org)),
                         ("PATCH", "%s/varsets/%s" % (API, s["id"])),
                         ("POST", setvars_path(s["id"]))):
        try:
            assert_error(admin.request(method, path, body=big), 413)
        except (ConnectionError, OSError):
            pass
        assert_error(anon.request(method, path, body=set_body("x")), 401)
    assert_error(anon.get("%s/varsets/%s" % (API, s["id"])), 401)
    assert_error(anon.get("%s/organizations/%s/varsets" % (API, org)), 401)
    assert get_set(admin, s["id"])["data"] == s


def test_outsiders_see_nothing(admin, org, ws):
    s = create_set(admin, org, rels={"workspaces": refs("workspaces",
                                                        ws["id"])})
    v = admin.post(setvars_path(s["id"]), var_body("k", "v")).json["data"]
    before = get_set(admin, s["id"])["data"]
    other = unique("org")
    assert admin.post(API + "/organizations", {"data": {
        "type": "organizations",
        "attributes": {"name": other, "email": "o@example.com"}}}).status \
        == 201
    _, _, user = make_user(admin)
    try:
        for c in (org_token(admin, other), user):
            sp = "%s/varsets/%s" % (API, s["id"])
            assert_error(c.get(sp), 404)
            assert_error(c.patch(sp, set_body("stolen")), 404)
            assert_error(c.delete(sp), 404)
            assert_error(c.get("%s/organizations/%s/varsets" % (API, org)),
                         404)
            assert_error(c.post("%s/organizations/%s/varsets" % (API, org),
                                set_body("x", **{"global": False})), 404)
            assert_error(c.get(setvars_path(s["id"])), 404)
            assert_error(c.post(setvars_path(s["id"]), var_body("a", "b")),
                         404)
            assert_error(c.get(setvars_path(s["id"], v["id"])), 404)
            assert_error(c.delete(setvars_path(s["id"], v["id"])), 404)
            assert_error(c.post(sp + "/relationships/workspaces",
                                refs("workspaces", ws["id"])), 404)
            assert_error(c.get("%s/workspaces/%s/varsets" % (API, ws["id"])),
                         404)
        assert get_set(admin, s["id"])["data"] == before
    finally:
        admin.delete(API + "/organizations/" + other)
