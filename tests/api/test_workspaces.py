"""Workspaces: create, list, read, update, delete, safe-delete, tags and
organization tags, with the bad-input matrix and access checks."""
import base64
import datetime
import hashlib
import json
import uuid

import pytest

from conftest import assert_error, unique

API = "/api/v2"


def ws_body(name=None, type_="workspaces", rels=None, **attrs):
    a = dict(attrs)
    if name is not None:
        a["name"] = name
    d = {"type": type_, "attributes": a}
    if rels:
        d["relationships"] = rels
    return {"data": d}


def create_ws(client, org, name=None, **attrs):
    name = name or unique("ws")
    r = client.post("%s/organizations/%s/workspaces" % (API, org),
                    ws_body(name, **attrs))
    assert r.status == 201, r
    return r.json["data"]


def ws_count(client, org):
    r = client.get("%s/organizations/%s/workspaces" % (API, org))
    assert r.status == 200, r
    return r.json["meta"]["pagination"]["total-count"]


def get_ws(client, ws_id):
    r = client.get("%s/workspaces/%s" % (API, ws_id))
    assert r.status == 200, r
    return r.json["data"]


def tag_body(*tags):
    data = []
    for t in tags:
        if t.startswith("tag-"):
            data.append({"type": "tags", "id": t})
        else:
            data.append({"type": "tags", "attributes": {"name": t}})
    return {"data": data}


def make_user(admin):
    """A new non-admin user and a client with its token, or skip."""
    name = unique("u")
    r = admin.post(API + "/admin/users", {"data": {
        "type": "users",
        "attributes": {"username": name, "email": name + "@example.com"}}})
    if r.status in (404, 405):
        pytest.skip("POST /admin/users is not available")
    assert r.status == 201, r
    uid = r.json["data"]["id"]
    r = admin.post("%s/admin/users/%s/authentication-tokens" % (API, uid),
                   {})
    assert r.status == 201, r
    return uid, name, admin.with_token(r.json["data"]["attributes"]["token"])


def add_member(admin, org, username, user):
    """Invites username to org and has user (its client) accept."""
    r = admin.post("%s/organizations/%s/organization-memberships"
                   % (API, org),
                   {"data": {"type": "organization-memberships",
                             "attributes": {"email":
                                            username + "@example.com"}}})
    if r.status in (404, 405):
        pytest.skip("organization memberships are not available")
    assert r.status == 201, r
    r = user.post("%s/organization-memberships/%s/actions/accept"
                  % (API, r.json["data"]["id"]), {})
    assert r.status == 200, r


def org_token(admin, org):
    r = admin.post("%s/organizations/%s/authentication-token" % (API, org),
                   {})
    if r.status in (404, 405):
        pytest.skip("organization tokens are not available")
    assert r.status == 201, r
    return admin.with_token(r.json["data"]["attributes"]["token"])


@pytest.fixture
def org2(admin):
    """A second organization owned by the admin."""
    name = unique("org")
    r = admin.post(API + "/organizations", {
        "data": {"type": "organizations",
                 "attributes": {"name": name, "email": "o@example.com"}}})
    assert r.status == 201, r
    yield name
    admin.delete(API + "/organizations/" + name)


@pytest.fixture
def ws(admin, org):
    return create_ws(admin, org)


def parse_time(s):
    return datetime.datetime.fromisoformat(s.replace("Z", "+00:00"))


def state_with_resource(serial=1, lineage=None):
    lineage = lineage or str(uuid.uuid4())
    st = {"version": 4, "terraform_version": "1.9.0", "serial": serial,
          "lineage": lineage, "outputs": {},
          "resources": [{"mode": "managed", "type": "null_resource",
                         "name": "x", "provider":
                         "provider[\"registry.terraform.io/hashicorp/null\"]",
                         "instances": [{"schema_version": 0,
                                        "attributes": {"id": "1"}}]}]}
    raw = json.dumps(st).encode()
    return {"data": {"type": "state-versions", "attributes": {
        "serial": serial, "md5": hashlib.md5(raw).hexdigest(),
        "lineage": lineage, "state": base64.b64encode(raw).decode()}}}


# ---- create and read ------------------------------------------------------


def test_create_defaults(admin, org):
    name = unique("ws")
    r = admin.post("%s/organizations/%s/workspaces" % (API, org),
                   ws_body(name))
    assert r.status == 201, r
    d = r.json["data"]
    a = d["attributes"]
    assert d["type"] == "workspaces" and d["id"].startswith("ws-")
    assert a["name"] == name
    assert a["terraform-version"] == "latest"
    assert a["execution-mode"] == "remote" and a["operations"] is True
    assert a["locked"] is False
    assert a["working-directory"] == ""
    assert a["vcs-repo"] is None
    assert a["structured-run-output-enabled"] is False
    assert a["tag-names"] == []
    assert a["actions"] == {"is-destroyable": True}
    assert a["resource-count"] == 0
    assert a["environment"] == "default"
    assert a["auto-apply"] is False and a["allow-destroy-plan"] is True
    for p in ("can-update", "can-destroy", "can-queue-run",
              "can-read-variable", "can-update-variable",
              "can-read-state-versions", "can-read-state-outputs",
              "can-create-state-versions", "can-queue-apply", "can-lock",
              "can-unlock", "can-force-unlock", "can-read-settings",
              "can-manage-tags", "can-queue-destroy", "can-force-delete"):
        assert a["permissions"][p] is True, p
    assert a["setting-overwrites"] == {"execution-mode": False,
                                       "agent-pool": False}
    parse_time(a["created-at"])
    parse_time(a["updated-at"])
    rel = d["relationships"]
    assert rel["organization"]["data"] == {"type": "organizations",
                                           "id": org}
    assert rel["project"]["data"]["type"] == "projects"
    assert rel["current-state-version"]["data"] is None
    assert rel["current-run"]["data"] is None
    assert rel["locked-by"]["data"] is None
    assert d["links"]["self"] == "%s/organizations/%s/workspaces/%s" % (
        API, org, name)
    # the project is the organization's default project
    r = admin.get("%s/projects/%s" % (API, rel["project"]["data"]["id"]))
    assert r.status == 200 and r.json["data"]["attributes"][
        "name"] == "Default Project"
    # read by name and by id give the same document
    r1 = admin.get("%s/organizations/%s/workspaces/%s" % (API, org, name))
    r2 = admin.get("%s/workspaces/%s" % (API, d["id"]))
    assert r1.status == r2.status == 200
    assert r1.json["data"] == r2.json["data"] == d


def test_create_all_attributes(admin, org):
    name = unique("ws")
    attrs = {
        "auto-apply": True, "description": "desc",
        "execution-mode": "local", "terraform-version": "1.9.5",
        "working-directory": "infra/prod", "allow-destroy-plan": False,
        "file-triggers-enabled": False, "global-remote-state": True,
        "project-remote-state": True,
        "queue-all-runs": True, "speculative-enabled": False,
        "structured-run-output-enabled": True, "source-name": "my-app",
        "source-url": "https://example.com/app",
        "trigger-prefixes": ["/modules"], "assessments-enabled": True,
        "auto-destroy-at": "2030-01-01T00:00:00Z",
        "auto-destroy-activity-duration": "14d",
        "tag-names": ["b-tag", "a:tag"],
    }
    d = create_ws(admin, org, name, **attrs)
    a = d["attributes"]
    for k, v in attrs.items():
        if k == "tag-names":
            assert a[k] == sorted(v)
        else:
            assert a[k] == v, k
    assert a["operations"] is False
    assert a["setting-overwrites"]["execution-mode"] is True
    assert a["trigger-patterns"] == []
    assert get_ws(admin, d["id"]) == d


def test_create_with_tags_relationship_and_terraform_constraint(admin, org):
    d = create_ws(admin, org, **{"terraform-version": "~> 1.9"})
    assert d["attributes"]["terraform-version"] == "~> 1.9"
    body = ws_body(unique("ws"), rels={"tags": {"data": [
        {"type": "tags", "attributes": {"name": "one"}},
        {"type": "tags", "attributes": {"name": "two"}}]}})
    r = admin.post("%s/organizations/%s/workspaces" % (API, org), body)
    assert r.status == 201, r
    assert r.json["data"]["attributes"]["tag-names"] == ["one", "two"]
    # a tag by id
    tags = admin.get("%s/organizations/%s/tags" % (API, org)).json["data"]
    one = [t for t in tags if t["attributes"]["name"] == "one"][0]
    body = ws_body(unique("ws"), rels={"tags": {"data": [
        {"type": "tags", "id": one["id"]}]}})
    r = admin.post("%s/organizations/%s/workspaces" % (API, org), body)
    assert r.status == 201, r
    assert r.json["data"]["attributes"]["tag-names"] == ["one"]


def test_create_in_project(admin, org, org2):
    r = admin.post("%s/organizations/%s/projects" % (API, org), {
        "data": {"type": "projects", "attributes": {"name": "Team A"}}})
    assert r.status == 201, r
    prj = r.json["data"]["id"]
    rels = {"project": {"data": {"type": "projects", "id": prj}}}
    r = admin.post("%s/organizations/%s/workspaces" % (API, org),
                   ws_body(unique("ws"), rels=rels))
    assert r.status == 201, r
    assert r.json["data"]["relationships"]["project"]["data"]["id"] == prj
    # a project of another organization, or none at all: 404
    before = ws_count(admin, org2)
    assert_error(admin.post("%s/organizations/%s/workspaces" % (API, org2),
                            ws_body(unique("ws"), rels=rels)), 404)
    rels = {"project": {"data": {"type": "projects", "id": "prj-nope"}}}
    assert_error(admin.post("%s/organizations/%s/workspaces" % (API, org),
                            ws_body(unique("ws"), rels=rels)), 404)
    assert ws_count(admin, org2) == before


def test_create_duplicate_name(admin, org, ws):
    before = ws_count(admin, org)
    r = admin.post("%s/organizations/%s/workspaces" % (API, org),
                   ws_body(ws["attributes"]["name"]))
    assert_error(r, 422)
    assert "taken" in r.json["errors"][0]["detail"]
    assert ws_count(admin, org) == before


BAD_CREATE = [
    ("malformed json", b"{nope", 400),
    ("no data", {"nodata": 1}, 422),
    ("wrong type", ws_body("x1", type_="projects"), 409),
    ("missing name", ws_body(None, description="d"), 422),
    ("empty name", ws_body(""), 422),
    ("invalid name", ws_body("has space"), 422),
    ("long name", ws_body("a" * 91), 422),
    ("name not string", ws_body(12), 422),
    ("bad execution-mode", ws_body("x2", **{"execution-mode": "cloud"}),
     422),
    ("agent without pool", ws_body("x3", **{"execution-mode": "agent"}),
     422),
    ("agent pool id", ws_body("x3b", **{"agent-pool-id": "apool-1"}), 422),
    ("mode and operations", ws_body("x4", operations=True,
                                    **{"execution-mode": "remote"}), 422),
    ("bad terraform-version", ws_body("x5", **{
        "terraform-version": "nonexisting"}), 422),
    ("terraform-version type", ws_body("x6", **{"terraform-version": 1}),
     422),
    ("auto-apply type", ws_body("x7", **{"auto-apply": "yes"}), 422),
    ("bool setting type", ws_body("x8", **{"queue-all-runs": 1}), 422),
    ("workdir escapes", ws_body("x9", **{"working-directory": "../x"}),
     422),
    ("workdir absolute", ws_body("x10", **{"working-directory": "/etc"}),
     422),
    ("prefixes and patterns", ws_body("x11", **{
        "trigger-prefixes": ["/a"], "trigger-patterns": ["/b/**"]}), 422),
    ("prefixes type", ws_body("x12", **{"trigger-prefixes": "/a"}), 422),
    ("bad tag name", ws_body("x13", **{"tag-names": ["Upper"]}), 422),
    ("tag-names type", ws_body("x14", **{"tag-names": "a,b"}), 422),
    ("vcs repo", ws_body("x15", **{"vcs-repo": {"identifier": "a/b"}}),
     422),
    ("bad auto-destroy-at", ws_body("x16", **{"auto-destroy-at": "soon"}),
     422),
    ("bad duration", ws_body("x17", **{
        "auto-destroy-activity-duration": "0d"}), 422),
    ("description type", ws_body("x18", description=["d"]), 422),
    ("overwrites type", ws_body("x19", **{"setting-overwrites": True}),
     422),
    ("project without id", ws_body("x20", rels={
        "project": {"data": {"type": "projects"}}}), 422),
    ("attributes not object", {"data": {"type": "workspaces",
                                        "attributes": []}}, 422),
]


@pytest.mark.parametrize("label,body,status", BAD_CREATE,
                         ids=[b[0] for b in BAD_CREATE])
def test_create_bad_input(admin, org, label, body, status):
    before = ws_count(admin, org)
    path = "%s/organizations/%s/workspaces" % (API, org)
    if isinstance(body, bytes):
        r = admin.post(path, raw=body, ctype="application/vnd.api+json")
    else:
        r = admin.post(path, body)
    assert_error(r, status)
    assert ws_count(admin, org) == before
    r = admin.get("%s/organizations/%s/tags" % (API, org))
    assert r.json["data"] == []


def raw_post(daemon, token, path, headers, chunks):
    """POST with explicit headers and body chunks over a fresh TLS
    connection; returns (status, body)."""
    import http.client
    import ssl
    ctx = ssl.create_default_context(cafile=daemon.ca)
    conn = http.client.HTTPSConnection("127.0.0.1", daemon.port,
                                       context=ctx, timeout=60)
    try:
        conn.putrequest("POST", path)
        conn.putheader("Authorization", "Bearer " + token)
        conn.putheader("Content-Type", "application/vnd.api+json")
        for k, v in headers.items():
            conn.putheader(k, v)
        conn.endheaders()
        try:
            for c in chunks:
                conn.send(b"%x\r\n%s\r\n" % (len(c), c))
            if chunks:
                conn.send(b"0\r\n\r\n")
        except OSError:
            pass  # the server may answer and close before the end
        r = conn.getresponse()
        return r.status, json.loads(r.read())
    finally:
        conn.close()


def test_create_oversized(daemon, admin, org):
    before = ws_count(admin, org)
    path = "%s/organizations/%s/workspaces" % (API, org)
    # announced too large: refused before the body is read
    status, doc = raw_post(daemon, daemon.admin_token, path,
                           {"Content-Length": str(16 * 1024 * 1024 + 1)},
                           [])
    assert status == 413 and doc["errors"][0]["status"] == "413"
    # streamed (chunked) past the limit
    head = b'{"data":{"type":"workspaces","attributes":{"name":"big",' \
        b'"description":"'
    chunk = b"x" * (1024 * 1024)
    status, doc = raw_post(daemon, daemon.admin_token, path,
                           {"Transfer-Encoding": "chunked"},
                           [head] + [chunk] * 17 + [b'"}}}'])
    assert status == 413 and doc["errors"][0]["status"] == "413"
    assert ws_count(admin, org) == before


def test_create_unauthenticated_and_unknown_org(admin, anon, org):
    before = ws_count(admin, org)
    assert_error(anon.post("%s/organizations/%s/workspaces" % (API, org),
                           ws_body("anon")), 401)
    bad = admin.with_token("nope.atlasv1.nope")
    assert_error(bad.post("%s/organizations/%s/workspaces" % (API, org),
                          ws_body("anon")), 401)
    assert_error(anon.get("%s/organizations/%s/workspaces" % (API, org)),
                 401)
    assert_error(admin.post("%s/organizations/%s/workspaces"
                            % (API, unique("nope")), ws_body("x")), 404)
    assert ws_count(admin, org) == before


def test_read_missing(admin, org, ws):
    assert_error(admin.get("%s/workspaces/ws-nope" % API), 404)
    assert_error(admin.get("%s/organizations/%s/workspaces/nope"
                           % (API, org)), 404)
    assert_error(admin.get("%s/organizations/%s/workspaces/%s"
                           % (API, unique("nope"), ws["attributes"][
                               "name"])), 404)


def test_read_by_id_checks_the_token_first(daemon, admin, anon, org, ws):
    """GET /workspaces/:id reads the workspace in the token's statement
    (ROUTE_WS_READ): a refused token still answers 401 whether or not
    the workspace exists, a caller who may not see it gets the 404 of a
    missing one, and the document is the same as a list's."""
    bad = admin.with_token("nope.atlasv1.nope")
    for c in (anon, bad):
        assert_error(c.get("%s/workspaces/%s" % (API, ws["id"])), 401)
        assert_error(c.get("%s/workspaces/ws-nope" % API), 401)
    _, _, user = make_user(admin)
    hidden = user.get("%s/workspaces/%s" % (API, ws["id"]))
    assert_error(hidden, 404)
    missing = user.get("%s/workspaces/ws-nope" % API)
    assert_error(missing, 404)
    assert hidden.json["errors"][0]["detail"] == \
        missing.json["errors"][0]["detail"].replace("ws-nope", ws["id"])
    # tags (byte order) and variables (creation order) come in that read
    tags = ["b-1", "a_", "b", "a:x", "a"]
    w = create_ws(admin, org, **{"tag-names": tags})
    vids = []
    for k in ("y", "x"):
        r = admin.post("%s/workspaces/%s/vars" % (API, w["id"]), {"data": {
            "type": "vars", "attributes": {
                "key": k, "value": "v", "category": "terraform"}}})
        assert r.status == 201, r
        vids.append(r.json["data"]["id"])
    one = get_ws(admin, w["id"])
    assert one["attributes"]["tag-names"] == sorted(tags), one
    assert [v["id"] for v in one["relationships"]["vars"]["data"]] == vids
    r = admin.get("%s/organizations/%s/workspaces?search%%5Bname%%5D=%s"
                  % (API, org, w["attributes"]["name"]))
    assert r.status == 200, r
    listed = [d for d in r.json["data"] if d["id"] == w["id"]]
    assert listed and listed[0]["attributes"]["tag-names"] == \
        one["attributes"]["tag-names"], r.json
    assert listed[0]["relationships"]["vars"] == one["relationships"]["vars"]


# ---- list -------------------------------------------------------------------


def test_list_pagination_and_search(admin, org):
    names = ["alpha-prod", "beta-prod", "gamma-dev", "delta_x"]
    ids = {}
    for n in names:
        ids[n] = create_ws(admin, org, n)["id"]
    base = "%s/organizations/%s/workspaces" % (API, org)
    # without sort: oldest first (TFE promises only a stable order; go-tfe's
    # tests expect the first workspace created to come first)
    r = admin.get(base + "?page[size]=3")
    assert r.status == 200
    assert [w["attributes"]["name"] for w in r.json["data"]] == names[:3]
    pg = r.json["meta"]["pagination"]
    assert pg["total-count"] == 4 and pg["total-pages"] == 2
    assert pg["current-page"] == 1 and pg["next-page"] == 2
    r = admin.get(base + "?page[size]=3&page[number]=2")
    assert [w["attributes"]["name"] for w in r.json["data"]] == names[3:]
    r = admin.get(base + "?sort=name&page[size]=3")
    assert [w["attributes"]["name"] for w in r.json["data"]] == sorted(
        names)[:3]
    r = admin.get(base + "?page[number]=999&page[size]=100")
    assert r.json["data"] == []
    assert r.json["meta"]["pagination"]["current-page"] == 999
    assert r.json["meta"]["pagination"]["total-count"] == 4
    # search[name] is a case-insensitive substring; '_' is literal
    r = admin.get(base + "?search[name]=PROD")
    assert sorted(w["attributes"]["name"] for w in r.json["data"]) == [
        "alpha-prod", "beta-prod"]
    r = admin.get(base + "?search[name]=a_x")
    assert [w["attributes"]["name"] for w in r.json["data"]] == ["delta_x"]
    r = admin.get(base + "?search[name]=a%25")
    assert r.json["data"] == []
    # wildcard names
    r = admin.get(base + "?search[wildcard-name]=*-prod")
    assert r.json["meta"]["pagination"]["total-count"] == 2
    r = admin.get(base + "?search[wildcard-name]=gamma-*")
    assert [w["id"] for w in r.json["data"]] == [ids["gamma-dev"]]
    r = admin.get(base + "?search[wildcard-name]=*-staging")
    assert r.json["meta"]["pagination"]["total-count"] == 0
    # sort
    r = admin.get(base + "?sort=-name")
    assert [w["attributes"]["name"] for w in r.json["data"]] == sorted(
        names, reverse=True)
    # latest-change-at: a new state version moves a workspace last
    path = "%s/workspaces/%s" % (API, ids["alpha-prod"])
    assert admin.post(path + "/actions/lock", {}).status == 200
    assert admin.post(path + "/state-versions",
                      state_with_resource()).status == 201
    assert admin.post(path + "/actions/unlock").status == 200
    r = admin.get(base + "?sort=latest-change-at")
    assert [w["attributes"]["name"] for w in r.json["data"]] == names[1:] + [
        "alpha-prod"]
    r = admin.get(base + "?sort=-latest-change-at")
    assert [w["attributes"]["name"] for w in r.json["data"]][0] == "alpha-prod"
    for bad in ("bogus", "-", "", "created-at"):
        assert_error(admin.get(base + "?sort=" + bad), 400)
    assert_error(admin.get(base + "?page[size]=0"), 400)
    assert_error(admin.get(base + "?page[number]=x"), 400)


def test_list_by_tags_and_project(admin, org):
    a = create_ws(admin, org, "wa", **{"tag-names": ["app", "prod"]})
    b = create_ws(admin, org, "wb", **{"tag-names": ["app", "dev"]})
    c = create_ws(admin, org, "wc")
    base = "%s/organizations/%s/workspaces" % (API, org)

    def ids(q):
        r = admin.get(base + q)
        assert r.status == 200, r
        return sorted(w["id"] for w in r.json["data"])

    assert ids("?search[tags]=app") == sorted([a["id"], b["id"]])
    assert ids("?search[tags]=app,prod") == [a["id"]]
    assert ids("?search[tags]=app,%20dev") == [b["id"]]
    assert ids("?search[tags]=nope") == []
    assert ids("?search[exclude-tags]=prod") == sorted([b["id"], c["id"]])
    assert ids("?search[exclude-tags]=prod,dev") == [c["id"]]
    assert ids("?search[tags]=app&search[exclude-tags]=dev") == [a["id"]]
    r = admin.post("%s/organizations/%s/projects" % (API, org), {
        "data": {"type": "projects", "attributes": {"name": "Apps"}}})
    prj = r.json["data"]["id"]
    assert ids("?filter[project][id]=" + prj) == []
    r = admin.patch("%s/workspaces/%s" % (API, c["id"]), ws_body(
        rels={"project": {"data": {"type": "projects", "id": prj}}}))
    assert r.status == 200, r
    assert ids("?filter[project][id]=" + prj) == [c["id"]]


def test_list_includes(admin, org, ws):
    base = "%s/organizations/%s/workspaces" % (API, org)
    r = admin.get(base + "?include=organization,project")
    assert r.status == 200, r
    inc = {(x["type"], x["id"]): x for x in r.json["included"]}
    assert ("organizations", org) in inc
    assert inc[("organizations", org)]["attributes"]["email"]
    prj = ws["relationships"]["project"]["data"]["id"]
    assert inc[("projects", prj)]["attributes"]["name"] == "Default Project"
    r = admin.get("%s/workspaces/%s?include=organization" % (API, ws["id"]))
    assert r.status == 200 and r.json["included"][0]["id"] == org
    # TFE's other includes are accepted; unknown ones are 400
    assert admin.get(base + "?include=current_run").status == 200
    r = admin.get(base + "?include=bogus")
    assert_error(r, 400)
    assert "Invalid include parameter" in r.json["errors"][0]["detail"]


# ---- update -------------------------------------------------------------------


def test_update_by_id_and_name(admin, org, ws):
    wid = ws["id"]
    name = ws["attributes"]["name"]
    new = unique("ws")
    r = admin.patch("%s/organizations/%s/workspaces/%s" % (API, org, name),
                    ws_body(new, **{"auto-apply": True,
                                    "terraform-version": "1.8.0",
                                    "description": "changed",
                                    "trigger-patterns": ["/a/**"]}))
    assert r.status == 200, r
    a = r.json["data"]["attributes"]
    assert a["name"] == new and a["auto-apply"] is True
    assert a["terraform-version"] == "1.8.0"
    assert a["description"] == "changed"
    assert a["trigger-patterns"] == ["/a/**"] and a["trigger-prefixes"] == []
    assert r.json["data"]["links"]["self"].endswith("/workspaces/" + new)
    assert_error(admin.get("%s/organizations/%s/workspaces/%s"
                           % (API, org, name)), 404)
    # untouched attributes keep their values
    r = admin.patch("%s/workspaces/%s" % (API, wid),
                    ws_body(**{"working-directory": "sub/dir"}))
    assert r.status == 200, r
    a = r.json["data"]["attributes"]
    assert a["name"] == new and a["description"] == "changed"
    assert a["working-directory"] == "sub/dir"
    assert parse_time(a["updated-at"]) >= parse_time(a["created-at"])
    assert get_ws(admin, wid) == r.json["data"]


def test_update_execution_mode_and_overwrites(admin, org, ws):
    path = "%s/workspaces/%s" % (API, ws["id"])
    r = admin.patch(path, ws_body(operations=False))
    a = r.json["data"]["attributes"]
    assert a["execution-mode"] == "local" and a["operations"] is False
    assert a["setting-overwrites"]["execution-mode"] is True
    r = admin.patch(path, ws_body(**{"execution-mode": "remote"}))
    assert r.json["data"]["attributes"]["execution-mode"] == "remote"
    # falling back to the organization's default
    r = admin.patch("%s/organizations/%s" % (API, org), {"data": {
        "type": "organizations",
        "attributes": {"default-execution-mode": "local"}}})
    if r.status != 200:
        pytest.skip("organization default-execution-mode not updatable")
    r = admin.patch(path, ws_body(**{"setting-overwrites": {
        "execution-mode": False, "agent-pool": False}}))
    assert r.status == 200, r
    a = r.json["data"]["attributes"]
    assert a["execution-mode"] == "local"
    assert a["setting-overwrites"] == {"execution-mode": False,
                                       "agent-pool": False}
    # a new workspace inherits it
    d = create_ws(admin, org)
    assert d["attributes"]["execution-mode"] == "local"


def test_update_tags_replace(admin, org):
    d = create_ws(admin, org, **{"tag-names": ["a", "b"]})
    r = admin.patch("%s/workspaces/%s" % (API, d["id"]),
                    ws_body(**{"tag-names": ["c", "b"]}))
    assert r.status == 200, r
    assert r.json["data"]["attributes"]["tag-names"] == ["b", "c"]
    r = admin.patch("%s/workspaces/%s" % (API, d["id"]),
                    ws_body(**{"tag-names": []}))
    assert r.json["data"]["attributes"]["tag-names"] == []


def test_update_rename_conflict_changes_nothing(admin, org):
    a = create_ws(admin, org)
    b = create_ws(admin, org)
    r = admin.patch("%s/workspaces/%s" % (API, b["id"]),
                    ws_body(a["attributes"]["name"], description="zzz",
                            **{"tag-names": ["x"]}))
    assert_error(r, 422)
    assert get_ws(admin, b["id"]) == b


BAD_UPDATE = [
    ("malformed json", b"{", 400),
    ("wrong type", ws_body("y", type_="organizations"), 409),
    ("invalid name", ws_body("bad name"), 422),
    ("empty name", ws_body(""), 422),
    ("bad mode", ws_body(**{"execution-mode": "x"}), 422),
    ("bad version", ws_body(**{"terraform-version": "v1"}), 422),
    ("bool type", ws_body(**{"auto-apply": 1}), 422),
    ("bad tag", ws_body(**{"tag-names": ["a b"]}), 422),
    ("unknown project", ws_body(rels={"project": {"data": {
        "type": "projects", "id": "prj-nope"}}}), 404),
    ("workdir", ws_body(**{"working-directory": "a/../../b"}), 422),
]


@pytest.mark.parametrize("label,body,status", BAD_UPDATE,
                         ids=[b[0] for b in BAD_UPDATE])
def test_update_bad_input(admin, org, label, body, status):
    d = create_ws(admin, org, **{"tag-names": ["keep"]})
    path = "%s/workspaces/%s" % (API, d["id"])
    if isinstance(body, bytes):
        r = admin.patch(path, raw=body, ctype="application/vnd.api+json")
    else:
        r = admin.patch(path, body)
    assert_error(r, status)
    assert get_ws(admin, d["id"]) == d


def test_update_unknown(admin, org):
    assert_error(admin.patch("%s/workspaces/ws-nope" % API,
                             ws_body("x")), 404)
    assert_error(admin.patch("%s/organizations/%s/workspaces/nope"
                             % (API, org), ws_body("x")), 404)


# ---- delete -------------------------------------------------------------------


def test_delete_by_id_and_name(admin, org):
    a = create_ws(admin, org, **{"tag-names": ["t1"]})
    b = create_ws(admin, org)
    assert admin.delete("%s/workspaces/%s" % (API, a["id"])).status == 204
    assert_error(admin.get("%s/workspaces/%s" % (API, a["id"])), 404)
    r = admin.delete("%s/organizations/%s/workspaces/%s"
                     % (API, org, b["attributes"]["name"]))
    assert r.status == 204
    assert_error(admin.get("%s/workspaces/%s" % (API, b["id"])), 404)
    assert_error(admin.delete("%s/workspaces/%s" % (API, a["id"])), 404)
    assert ws_count(admin, org) == 0
    # the tag stays in the organization, with no workspace
    tags = admin.get("%s/organizations/%s/tags" % (API, org)).json["data"]
    assert [(t["attributes"]["name"], t["attributes"]["instance-count"])
            for t in tags] == [("t1", 0)]


def test_safe_delete(admin, org):
    a = create_ws(admin, org)
    r = admin.post("%s/workspaces/%s/actions/safe-delete" % (API, a["id"]))
    assert r.status == 204, r
    assert_error(admin.get("%s/workspaces/%s" % (API, a["id"])), 404)
    b = create_ws(admin, org)
    r = admin.post("%s/organizations/%s/workspaces/%s/actions/safe-delete"
                   % (API, org, b["attributes"]["name"]))
    assert r.status == 204, r
    assert_error(admin.post("%s/workspaces/%s/actions/safe-delete"
                            % (API, b["id"])), 404)


def test_safe_delete_refuses_locked(admin, org, ws):
    path = "%s/workspaces/%s" % (API, ws["id"])
    assert admin.post(path + "/actions/lock", {}).status == 200
    r = admin.post(path + "/actions/safe-delete")
    assert_error(r, 409)
    assert "locked" in r.json["errors"][0]["detail"]
    assert admin.get(path).status == 200
    assert admin.post(path + "/actions/unlock").status == 200
    assert admin.post(path + "/actions/safe-delete").status == 204


def test_safe_delete_refuses_resources(admin, org, ws):
    path = "%s/workspaces/%s" % (API, ws["id"])
    assert admin.post(path + "/actions/lock", {}).status == 200
    r = admin.post(path + "/state-versions", state_with_resource())
    if r.status in (404, 405):
        pytest.skip("state versions are not available")
    assert r.status == 201, r
    assert admin.post(path + "/actions/unlock").status == 200
    d = get_ws(admin, ws["id"])
    assert d["attributes"]["resource-count"] == 1
    assert d["relationships"]["current-state-version"]["data"]["id"] == \
        r.json["data"]["id"]
    r = admin.post(path + "/actions/safe-delete")
    assert_error(r, 409)
    detail = r.json["errors"][0]["detail"]
    assert "resources" in detail and "locked" not in detail
    assert admin.get(path).status == 200
    # a plain delete still works
    assert admin.delete(path).status == 204


# ---- tags ---------------------------------------------------------------------


def test_workspace_tags(admin, org, ws):
    path = "%s/workspaces/%s/relationships/tags" % (API, ws["id"])
    assert admin.post(path, tag_body("tag1", "tag2", "tag3")).status == 204
    r = admin.get(path)
    assert r.status == 200
    names = [t["attributes"]["name"] for t in r.json["data"]]
    assert names == ["tag1", "tag2", "tag3"]
    assert r.json["meta"]["pagination"]["total-count"] == 3
    assert get_ws(admin, ws["id"])["attributes"]["tag-names"] == names
    r = admin.get(path + "?name=2")
    assert [t["attributes"]["name"] for t in r.json["data"]] == ["tag2"]
    # by id, from another workspace
    other = create_ws(admin, org, **{"tag-names": ["byid"]})
    r = admin.get("%s/workspaces/%s/relationships/tags" % (API, other["id"]))
    tid = r.json["data"][0]["id"]
    assert admin.post(path, tag_body(tid)).status == 204
    # adding twice is harmless
    assert admin.post(path, tag_body("tag1", tid)).status == 204
    r = admin.get(path)
    assert [t["id"] for t in r.json["data"]][0] == tid
    assert len(r.json["data"]) == 4
    # remove by name and id; unknown names are ignored
    r = admin.delete(path, body=tag_body("tag1", tid, "NonExistentTag"))
    assert r.status == 204, r
    assert get_ws(admin, ws["id"])["attributes"]["tag-names"] == [
        "tag2", "tag3"]


BAD_TAGS = [
    ("malformed", b"[", 400),
    ("data object", {"data": {"type": "tags"}}, 422),
    ("empty list", {"data": []}, 422),
    ("wrong type", {"data": [{"type": "workspaces",
                              "attributes": {"name": "a"}}]}, 409),
    ("upper case", tag_body("Upper"), 422),
    ("space", tag_body("a b"), 422),
    ("too long", tag_body("a" * 256), 422),
    ("no name", {"data": [{"type": "tags", "attributes": {}}]}, 422),
    ("name type", {"data": [{"type": "tags", "attributes": {"name": 1}}]},
     422),
    ("unknown id", tag_body("ok", "tag-nope"), 404),
    ("too many", tag_body(*["t%d" % i for i in range(101)]), 422),
]


@pytest.mark.parametrize("label,body,status", BAD_TAGS,
                         ids=[b[0] for b in BAD_TAGS])
def test_workspace_tags_bad_input(admin, org, ws, label, body, status):
    path = "%s/workspaces/%s/relationships/tags" % (API, ws["id"])
    if isinstance(body, bytes):
        r = admin.post(path, raw=body, ctype="application/vnd.api+json")
    else:
        r = admin.post(path, body)
    assert_error(r, status)
    assert admin.get(path).json["data"] == []
    assert admin.get("%s/organizations/%s/tags" % (API, org)).json[
        "data"] == []


def test_organization_tags(admin, org):
    a = create_ws(admin, org, **{"tag-names": ["t0", "t1", "t2"]})
    b = create_ws(admin, org, **{"tag-names": ["t1"]})
    c = create_ws(admin, org)
    base = "%s/organizations/%s/tags" % (API, org)
    r = admin.get(base)
    assert r.status == 200
    got = [(t["attributes"]["name"], t["attributes"]["instance-count"])
           for t in r.json["data"]]
    assert got == [("t0", 1), ("t1", 2), ("t2", 1)]
    t = r.json["data"][0]
    assert t["type"] == "tags" and t["id"].startswith("tag-")
    assert t["relationships"]["organization"]["data"]["id"] == org
    ids = {x["attributes"]["name"]: x["id"] for x in r.json["data"]}
    r = admin.get(base + "?q=1")
    assert [x["attributes"]["name"] for x in r.json["data"]] == ["t1"]
    r = admin.get(base + "?filter[exclude][taggable][id]=" + b["id"])
    assert [x["attributes"]["name"] for x in r.json["data"]] == ["t0", "t2"]
    r = admin.get(base + "?page[size]=2")
    assert len(r.json["data"]) == 2
    assert r.json["meta"]["pagination"]["total-pages"] == 2
    # tag workspaces from the tag's side
    path = "%s/tags/%s/relationships/workspaces" % (API, ids["t2"])
    body = {"data": [{"type": "workspaces", "id": b["id"]},
                     {"type": "workspaces", "id": c["id"]}]}
    assert admin.post(path, body).status == 204
    assert get_ws(admin, c["id"])["attributes"]["tag-names"] == ["t2"]
    # an unknown workspace: nothing changes
    body = {"data": [{"type": "workspaces", "id": a["id"]},
                     {"type": "workspaces", "id": "ws-nope"}]}
    assert_error(admin.post(path, body), 404)
    assert_error(admin.post(path, {"data": [{"type": "tags",
                                             "id": a["id"]}]}), 409)
    assert_error(admin.post("%s/tags/tag-nope/relationships/workspaces"
                            % API, {"data": [{"type": "workspaces",
                                              "id": a["id"]}]}), 404)
    # delete tags: all or nothing
    body = {"data": [{"type": "tags", "id": ids["t0"]},
                     {"type": "tags", "id": "tag-nope"}]}
    assert_error(admin.delete(base, body=body), 404)
    assert len(admin.get(base).json["data"]) == 3
    assert_error(admin.delete(base, body={"data": []}), 422)
    assert_error(admin.delete(base, raw=b"nope",
                              ctype="application/vnd.api+json"), 400)
    body = {"data": [{"type": "tags", "id": ids["t0"]},
                     {"type": "tags", "id": ids["t1"]}]}
    assert admin.delete(base, body=body).status == 204
    r = admin.get(base)
    assert [x["attributes"]["name"] for x in r.json["data"]] == ["t2"]
    assert get_ws(admin, a["id"])["attributes"]["tag-names"] == ["t2"]


# ---- who may see what -------------------------------------------------------


def test_other_organization_is_invisible(admin, org, org2):
    """An organization token of org2 and a user who is no member of org see
    org's workspaces, projects and tags as missing, and change nothing."""
    ws = create_ws(admin, org, **{"tag-names": ["secret"]})
    wid, name = ws["id"], ws["attributes"]["name"]
    tags = admin.get("%s/organizations/%s/tags" % (API, org)).json["data"]
    tid = tags[0]["id"]
    prj = ws["relationships"]["project"]["data"]["id"]
    callers = [org_token(admin, org2)]
    uid, uname, user = make_user(admin)
    callers.append(user)
    try:
        for c in callers:
            for path in ("/workspaces/" + wid,
                         "/organizations/%s/workspaces/%s" % (org, name),
                         "/organizations/%s/workspaces" % org,
                         "/workspaces/%s/relationships/tags" % wid,
                         "/organizations/%s/tags" % org,
                         "/projects/" + prj,
                         "/organizations/%s/projects" % org):
                assert_error(c.get(API + path), 404)
            assert_error(c.patch("%s/workspaces/%s" % (API, wid),
                                 ws_body("stolen")), 404)
            assert_error(c.delete("%s/workspaces/%s" % (API, wid)), 404)
            for act in ("lock", "unlock", "force-unlock", "safe-delete"):
                assert_error(c.post("%s/workspaces/%s/actions/%s"
                                    % (API, wid, act), {}), 404)
            assert_error(c.post("%s/workspaces/%s/relationships/tags"
                                % (API, wid), tag_body("x")), 404)
            assert_error(c.post("%s/organizations/%s/workspaces"
                                % (API, org), ws_body("intruder")), 404)
            assert_error(c.delete("%s/organizations/%s/tags" % (API, org),
                                  body={"data": [{"type": "tags",
                                                  "id": tid}]}), 404)
            assert_error(c.post("%s/tags/%s/relationships/workspaces"
                                % (API, tid), {"data": [{
                                    "type": "workspaces", "id": wid}]}),
                         404)
        # an org2 tag cannot be attached to org's workspace by id
        w2 = create_ws(admin, org2, **{"tag-names": ["other"]})
        t2 = admin.get("%s/workspaces/%s/relationships/tags"
                       % (API, w2["id"])).json["data"][0]["id"]
        assert_error(admin.post("%s/workspaces/%s/relationships/tags"
                                % (API, wid), tag_body(t2)), 404)
        assert get_ws(admin, wid) == ws
        assert ws_count(admin, org) == 1
    finally:
        admin.delete("%s/admin/users/%s" % (API, uid))


def add_owner(admin, org, username):
    """Puts a member into the organization's owners team."""
    r = admin.get("%s/organizations/%s/teams?filter[names]=owners"
                  % (API, org))
    assert r.status == 200, r
    tid = r.json["data"][0]["id"]
    r = admin.post("%s/teams/%s/relationships/users" % (API, tid),
                   {"data": [{"type": "users", "id": username}]})
    assert r.status == 204, r


def test_plain_member_sees_no_workspace(admin, org):
    uid, uname, user = make_user(admin)
    try:
        add_member(admin, org, uname, user)
        wid = create_ws(admin, org)["id"]
        assert_error(user.get("%s/workspaces/%s" % (API, wid)), 404)
        assert_error(user.post("%s/organizations/%s/workspaces" % (API, org),
                               ws_body(unique("ws"))), 403)
        assert ws_count(admin, org) == 1
        r = user.get("%s/organizations/%s/workspaces" % (API, org))
        assert r.status == 200 and r.json["data"] == [], r
    finally:
        admin.delete("%s/admin/users/%s" % (API, uid))


def test_owner_and_org_token_may_use_workspaces(admin, org):
    uid, uname, user = make_user(admin)
    try:
        add_member(admin, org, uname, user)
        add_owner(admin, org, uname)
        d = create_ws(user, org)
        assert d["attributes"]["permissions"]["can-update"] is True
        ot = org_token(admin, org)
        assert ot.get("%s/workspaces/%s" % (API, d["id"])).status == 200
        r = ot.patch("%s/workspaces/%s" % (API, d["id"]),
                     ws_body(description="by token"))
        assert r.status == 200, r
        assert user.delete("%s/workspaces/%s" % (API, d["id"])).status == 204
    finally:
        admin.delete("%s/admin/users/%s" % (API, uid))


# ---- remote state consumers -------------------------------------------------


def test_remote_state_consumers(daemon, admin, anon, org, org2):
    prod = create_ws(admin, org)["id"]
    a, b = create_ws(admin, org)["id"], create_ws(admin, org)["id"]
    foreign = create_ws(admin, org2)["id"]
    rel = "%s/workspaces/%s/relationships/remote-state-consumers" % (API, prod)

    def body(*ids):
        return {"data": [{"type": "workspaces", "id": i} for i in ids]}

    def listed():
        r = admin.get(rel)
        assert r.status == 200, r
        return [w["id"] for w in r.json["data"]]

    assert listed() == []
    assert admin.post(rel, body(a, b)).status == 204
    assert admin.post(rel, body(a)).status == 204  # twice is fine
    assert listed() == [a, b]
    r = admin.get(rel + "?page[size]=1")
    assert [w["id"] for w in r.json["data"]] == [a]
    assert r.json["meta"]["pagination"]["total-count"] == 2
    assert admin.delete(rel, body=body(a)).status == 204
    assert listed() == [b]
    assert admin.patch(rel, body(a)).status == 204
    assert listed() == [a]
    # bad input changes nothing
    for method, b_, status in (
            ("post", body(foreign), 404),             # another organization
            ("post", body(a, "ws-nope"), 404),        # one unknown: none added
            ("patch", body("ws-nope"), 404),
            ("post", {"data": []}, 422),
            ("post", {"data": {"type": "workspaces", "id": b}}, 422),
            ("post", {"data": [{"type": "tags", "id": b}]}, 409),
            ("post", {"data": [{"type": "workspaces"}]}, 422),
            ("post", None, 400)):
        r = getattr(admin, method)(rel, b_) if b_ is not None else \
            admin.post(rel)
        assert_error(r, status)
        assert listed() == [a], (method, b_)
    assert_error(admin.post(rel, body(*([b] * 101))), 422)  # over the limit
    assert listed() == [a]
    # an oversized body is refused before it is read, and changes nothing
    status, doc = raw_post(daemon, daemon.admin_token, rel,
                           {"Content-Length": str(16 * 1024 * 1024 + 1)}, [])
    assert status == 413 and doc["errors"][0]["status"] == "413"
    assert listed() == [a]
    assert_error(admin.get(rel.replace(prod, "ws-nope")), 404)
    assert_error(admin.post(rel.replace(prod, "ws-nope"), body(a)), 404)
    assert_error(anon.get(rel), 401)
    assert_error(anon.post(rel, body(b)), 401)
    assert listed() == [a]
    # a deleted consumer leaves the list
    assert admin.delete("%s/workspaces/%s" % (API, a)).status in (200, 204)
    assert listed() == []
