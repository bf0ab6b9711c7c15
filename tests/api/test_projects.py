"""Projects: list, create, read, update, delete, the default project, the
bad-input matrix and access from outside the organization."""
import pytest

from conftest import assert_error, unique
from test_workspaces import API, create_ws, make_user, org_token, ws_body


def prj_body(name=None, type_="projects", **attrs):
    a = dict(attrs)
    if name is not None:
        a["name"] = name
    return {"data": {"type": type_, "attributes": a}}


def create_prj(client, org, name=None, **attrs):
    r = client.post("%s/organizations/%s/projects" % (API, org),
                    prj_body(name or unique("p"), **attrs))
    assert r.status == 201, r
    return r.json["data"]


def prj_names(client, org, q=""):
    r = client.get("%s/organizations/%s/projects?page[size]=100%s"
                   % (API, org, q))
    assert r.status == 200, r
    return [p["attributes"]["name"] for p in r.json["data"]]


def test_default_project_and_create(admin, org):
    assert prj_names(admin, org) == ["Default Project"]
    r = admin.post("%s/organizations/%s/projects" % (API, org),
                   prj_body("Team One", description="first"))
    assert r.status == 201, r
    d = r.json["data"]
    assert d["type"] == "projects" and d["id"].startswith("prj-")
    assert d["attributes"]["name"] == "Team One"
    assert d["attributes"]["description"] == "first"
    assert d["relationships"]["organization"]["data"] == {
        "type": "organizations", "id": org}
    assert d["links"]["self"] == "%s/projects/%s" % (API, d["id"])
    r = admin.get("%s/projects/%s" % (API, d["id"]))
    assert r.status == 200 and r.json["data"] == d
    assert prj_names(admin, org) == ["Default Project", "Team One"]


def test_list_filters_and_pagination(admin, org):
    for n in ("alpha", "beta", "gamma_1"):
        create_prj(admin, org, n)
    base = "%s/organizations/%s/projects" % (API, org)
    r = admin.get(base)
    assert r.json["meta"]["pagination"]["total-count"] == 4
    # names sort byte-wise on both backends: upper case first
    r = admin.get(base + "?page[size]=2&page[number]=2")
    assert [p["attributes"]["name"] for p in r.json["data"]] == [
        "beta", "gamma_1"]
    assert r.json["meta"]["pagination"]["current-page"] == 2
    assert prj_names(admin, org, "&q=default") == ["Default Project"]
    assert prj_names(admin, org, "&q=A_1") == ["gamma_1"]
    assert prj_names(admin, org, "&filter[names]=alpha,beta") == [
        "alpha", "beta"]
    assert prj_names(admin, org, "&filter[names]=Default%20Project") == [
        "Default Project"]
    assert prj_names(admin, org, "&filter[names]=nope") == []
    r = admin.get(base + "?page[number]=50")
    assert r.status == 200 and r.json["data"] == []
    assert_error(admin.get(base + "?page[size]=-1"), 400)


def test_update(admin, org):
    d = create_prj(admin, org, "before", description="x")
    r = admin.patch("%s/projects/%s" % (API, d["id"]),
                    prj_body("after name", description="updated"))
    assert r.status == 200, r
    a = r.json["data"]["attributes"]
    assert a["name"] == "after name" and a["description"] == "updated"
    r = admin.patch("%s/projects/%s" % (API, d["id"]), prj_body(
        description="only this"))
    assert r.json["data"]["attributes"]["name"] == "after name"
    # the default project may be renamed
    default = [p for p in admin.get("%s/organizations/%s/projects"
                                    % (API, org)).json["data"]
               if p["attributes"]["name"] == "Default Project"][0]
    r = admin.patch("%s/projects/%s" % (API, default["id"]),
                    prj_body("Main"))
    assert r.status == 200, r


BAD = [
    ("malformed", b"{x", 400),
    ("no data", {"x": 1}, 422),
    ("wrong type", prj_body("okname", type_="workspaces"), 409),
    ("missing name", prj_body(None, description="d"), 422),
    ("short name", prj_body("ab"), 422),
    ("long name", prj_body("a" * 41), 422),
    ("bad char", prj_body("a/b/c"), 422),
    ("leading space", prj_body(" abc"), 422),
    ("name type", prj_body(123), 422),
    ("description type", prj_body("okname", description=5), 422),
    ("long description", prj_body("okname", description="d" * 257), 422),
]


@pytest.mark.parametrize("label,body,status", BAD, ids=[b[0] for b in BAD])
def test_create_bad_input(admin, org, label, body, status):
    path = "%s/organizations/%s/projects" % (API, org)
    if isinstance(body, bytes):
        r = admin.post(path, raw=body, ctype="application/vnd.api+json")
    else:
        r = admin.post(path, body)
    assert_error(r, status)
    assert prj_names(admin, org) == ["Default Project"]


def test_invalid_name_message(admin, org):
    r = admin.post("%s/organizations/%s/projects" % (API, org),
                   prj_body("! / nope"))
    assert_error(r, 422)
    e = r.json["errors"][0]
    assert e["title"] == "invalid attribute"
    assert e["detail"].startswith("Name may only contain")


@pytest.mark.parametrize("label,body,status", [
    b for b in BAD if b[0] not in ("missing name",)],
    ids=[b[0] for b in BAD if b[0] not in ("missing name",)])
def test_update_bad_input(admin, org, label, body, status):
    d = create_prj(admin, org, "stable", description="same")
    path = "%s/projects/%s" % (API, d["id"])
    if isinstance(body, bytes):
        r = admin.patch(path, raw=body, ctype="application/vnd.api+json")
    else:
        r = admin.patch(path, body)
    assert_error(r, status)
    assert admin.get(path).json["data"] == d


def test_duplicate_name(admin, org):
    create_prj(admin, org, "twin")
    assert_error(admin.post("%s/organizations/%s/projects" % (API, org),
                            prj_body("twin")), 422)
    d = create_prj(admin, org, "other")
    assert_error(admin.patch("%s/projects/%s" % (API, d["id"]),
                             prj_body("twin")), 422)
    assert sorted(prj_names(admin, org)) == ["Default Project", "other",
                                             "twin"]


def test_delete(admin, org):
    d = create_prj(admin, org)
    assert admin.delete("%s/projects/%s" % (API, d["id"])).status == 204
    assert_error(admin.get("%s/projects/%s" % (API, d["id"])), 404)
    assert_error(admin.delete("%s/projects/%s" % (API, d["id"])), 404)
    assert_error(admin.get("%s/projects/prj-nope" % API), 404)
    assert_error(admin.patch("%s/projects/prj-nope" % API,
                             prj_body("whatever")), 404)


def test_delete_refusals(admin, org):
    default = admin.get("%s/organizations/%s/projects" % (API, org)).json[
        "data"][0]
    assert_error(admin.delete("%s/projects/%s" % (API, default["id"])), 409)
    d = create_prj(admin, org)
    rels = {"project": {"data": {"type": "projects", "id": d["id"]}}}
    r = admin.post("%s/organizations/%s/workspaces" % (API, org),
                   ws_body(unique("ws"), rels=rels))
    assert r.status == 201, r
    wid = r.json["data"]["id"]
    r = admin.delete("%s/projects/%s" % (API, d["id"]))
    assert_error(r, 409)
    assert "workspaces" in r.json["errors"][0]["detail"]
    assert admin.get("%s/projects/%s" % (API, d["id"])).status == 200
    # after moving the workspace away, the project can go
    r = admin.patch("%s/workspaces/%s" % (API, wid), ws_body(rels={
        "project": {"data": {"type": "projects", "id": default["id"]}}}))
    assert r.status == 200, r
    assert admin.delete("%s/projects/%s" % (API, d["id"])).status == 204
    assert sorted(prj_names(admin, org)) == ["Default Project"]


def test_outsiders_see_nothing(admin, anon, org):
    d = create_prj(admin, org, "hidden")
    other = unique("org")
    r = admin.post(API + "/organizations", {"data": {
        "type": "organizations",
        "attributes": {"name": other, "email": "o@example.com"}}})
    assert r.status == 201
    uid, uname, user = make_user(admin)
    try:
        for c in (org_token(admin, other), user):
            assert_error(c.get("%s/projects/%s" % (API, d["id"])), 404)
            assert_error(c.patch("%s/projects/%s" % (API, d["id"]),
                                 prj_body("stolen")), 404)
            assert_error(c.delete("%s/projects/%s" % (API, d["id"])), 404)
            assert_error(c.get("%s/organizations/%s/projects"
                               % (API, org)), 404)
            assert_error(c.post("%s/organizations/%s/projects" % (API, org),
                                prj_body("intruder")), 404)
        assert_error(anon.get("%s/projects/%s" % (API, d["id"])), 401)
        assert admin.get("%s/projects/%s" % (API, d["id"])).json[
            "data"] == d
        assert sorted(prj_names(admin, org)) == ["Default Project", "hidden"]
    finally:
        admin.delete("%s/admin/users/%s" % (API, uid))
        admin.delete(API + "/organizations/" + other)


def test_workspace_count(admin, org):
    d = create_prj(admin, org)
    rels = {"project": {"data": {"type": "projects", "id": d["id"]}}}
    for _ in range(2):
        r = admin.post("%s/organizations/%s/workspaces" % (API, org),
                       ws_body(unique("ws"), rels=rels))
        assert r.status == 201
    r = admin.get("%s/projects/%s" % (API, d["id"]))
    assert r.json["data"]["attributes"]["workspace-count"] == 2
    assert create_ws(admin, org)["relationships"]["project"]["data"][
        "id"] != d["id"]
