"""Organizations and entitlement sets (memberships: test_memberships.py)."""
import pytest

from conftest import assert_error, unique

BIG = 17 * 1024 * 1024  # over the default 16 MiB JSON body limit


def org_body(name, email="o@example.com", type_="organizations", **attrs):
    a = {"name": name, "email": email}
    a.update(attrs)
    return {"data": {"type": type_, "attributes": a}}


def make_user(admin, prefix="u"):
    """A new non-admin user and a client holding one of its tokens."""
    name = unique(prefix)
    r = admin.post("/api/v2/admin/users", {"data": {"type": "users",
        "attributes": {"username": name, "email": name + "@example.com"}}})
    assert r.status == 201, r
    uid = r.json["data"]["id"]
    r = admin.post("/api/v2/admin/users/%s/authentication-tokens" % uid, {})
    assert r.status == 201, r
    return uid, name, admin.with_token(r.json["data"]["attributes"]["token"])


def org_names(client, **q):
    path = "/api/v2/organizations?page[size]=100"
    for k, v in q.items():
        path += "&%s=%s" % (k, v)
    r = client.get(path)
    assert r.status == 200, r
    return [o["id"] for o in r.json["data"]]


def test_create_read_defaults(admin):
    name = unique("org")
    r = admin.post("/api/v2/organizations", org_body(name, "Me@Example.com"))
    assert r.status == 201, r
    d = r.json["data"]
    assert d["id"] == name and d["type"] == "organizations"
    a = d["attributes"]
    assert a["name"] == name and a["email"] == "Me@Example.com"
    assert a["external-id"].startswith("org-")
    assert a["default-execution-mode"] == "remote"
    # null until set, as TFE: the tfe provider plans clean only then
    assert a["session-timeout"] is None and a["session-remember"] is None
    assert a["speculative-plan-management-enabled"] is True
    assert a["user-tokens-enabled"] is True
    assert a["enforce-hyok"] is False and a["max-ttl-enabled"] is False
    assert a["collaborator-auth-policy"] == "password"
    assert a["cost-estimation-enabled"] is False
    assert a["allow-force-delete-workspaces"] is False
    assert a["permissions"]["can-update"] is True
    assert a["permissions"]["can-destroy"] is True
    assert a["permissions"]["can-create-workspace"] is True
    assert a["created-at"].endswith("Z")
    prj = d["relationships"]["default-project"]["data"]
    assert prj["type"] == "projects" and prj["id"].startswith("prj-")
    # read renders exactly what create returned
    r2 = admin.get("/api/v2/organizations/" + name)
    assert r2.status == 200 and r2.json["data"] == d
    assert admin.delete("/api/v2/organizations/" + name).status == 204
    assert_error(admin.get("/api/v2/organizations/" + name), 404)


def test_create_with_settings(admin):
    name = unique("org")
    r = admin.post("/api/v2/organizations", org_body(
        name, **{"allow-force-delete-workspaces": True,
                 "cost-estimation-enabled": True,
                 "default-execution-mode": "local",
                 "session-timeout": 60}))
    assert r.status == 201, r
    a = r.json["data"]["attributes"]
    assert a["allow-force-delete-workspaces"] is True
    assert a["cost-estimation-enabled"] is True
    assert a["default-execution-mode"] == "local"
    assert a["session-timeout"] == 60
    admin.delete("/api/v2/organizations/" + name)


def test_list_search_and_pagination(admin):
    tag = unique("srch")
    names = sorted("%s-%d" % (tag, i) for i in range(3))
    for n in names:
        assert admin.post("/api/v2/organizations",
                          org_body(n, n + "@mail.example")).status == 201
    try:
        assert sorted(org_names(admin, q=tag)) == names
        assert sorted(org_names(admin, query=tag)) == names
        # email search, case-insensitive
        assert org_names(admin, q=names[1].upper() + "@MAIL") == [names[1]]
        # LIKE wildcards are literal
        assert org_names(admin, q=tag.replace("-", "_")) == []
        r = admin.get("/api/v2/organizations?q=%s&page[size]=2" % tag)
        p = r.json["meta"]["pagination"]
        assert len(r.json["data"]) == 2
        assert p["total-count"] == 3 and p["total-pages"] == 2
        assert p["next-page"] == 2 and p["current-page"] == 1
        r = admin.get("/api/v2/organizations?q=%s&page[size]=2"
                      "&page[number]=2" % tag)
        assert len(r.json["data"]) == 1
        # newest first
        assert org_names(admin, q=tag)[0] == names[-1]
        assert_error(admin.get("/api/v2/organizations?page[number]=x"), 400)
    finally:
        for n in names:
            admin.delete("/api/v2/organizations/" + n)


def test_update_and_rename(admin):
    name = unique("org")
    assert admin.post("/api/v2/organizations", org_body(name)).status == 201
    new = unique("ren")
    r = admin.patch("/api/v2/organizations/" + name, {"data": {
        "type": "organizations", "attributes": {
            "name": new, "email": "new@example.com", "session-timeout": 3600,
            "session-remember": 3600, "default-execution-mode": "local",
            "collaborator-auth-policy": "two_factor_mandatory",
            "owners-team-saml-role-id": "owners"}}})
    assert r.status == 200, r
    a = r.json["data"]["attributes"]
    assert a["name"] == new and a["email"] == "new@example.com"
    assert a["session-timeout"] == 3600 and a["session-remember"] == 3600
    assert a["default-execution-mode"] == "local"
    assert a["collaborator-auth-policy"] == "two_factor_mandatory"
    assert a["owners-team-saml-role-id"] == "owners"
    assert_error(admin.get("/api/v2/organizations/" + name), 404)
    r2 = admin.get("/api/v2/organizations/" + new)
    assert r2.json["data"] == r.json["data"]
    # an empty update keeps everything
    r3 = admin.patch("/api/v2/organizations/" + new,
                     {"data": {"type": "organizations"}})
    assert r3.status == 200 and r3.json["data"] == r.json["data"]
    admin.delete("/api/v2/organizations/" + new)


def test_rename_to_taken_name(admin, org):
    other = unique("org")
    assert admin.post("/api/v2/organizations", org_body(other)).status == 201
    try:
        r = admin.patch("/api/v2/organizations/" + other, {"data": {
            "type": "organizations", "attributes": {"name": org}}})
        assert_error(r, 422)
        assert admin.get("/api/v2/organizations/" + other).status == 200
    finally:
        admin.delete("/api/v2/organizations/" + other)


def test_duplicate_name_422(admin, org):
    assert_error(admin.post("/api/v2/organizations", org_body(org)), 422)


def test_names_unique_regardless_of_case(admin, org):
    """TFE refuses a name that differs from an existing one only in case;
    so does a rename.  Nothing is created or changed."""
    count = admin.get("/api/v2/organizations").json["meta"]["pagination"][
        "total-count"]
    for spelling in (org.upper(), org.capitalize(), org.swapcase()):
        r = admin.post("/api/v2/organizations", org_body(spelling))
        assert_error(r, 422)
        assert r.json["errors"][0]["detail"] == \
            "name %s has already been taken" % spelling
        assert_error(admin.get("/api/v2/organizations/" + spelling), 404)
    assert admin.get("/api/v2/organizations").json["meta"]["pagination"][
        "total-count"] == count
    other = unique("org")
    assert admin.post("/api/v2/organizations", org_body(other)).status == 201
    try:
        r = admin.patch("/api/v2/organizations/" + other, {"data": {
            "type": "organizations", "attributes": {"name": org.upper()}}})
        assert_error(r, 422)
        assert "has already been taken" in r.json["errors"][0]["detail"]
        assert admin.get("/api/v2/organizations/" + other).status == 200
        # an organization may change the case of its own name
        r = admin.patch("/api/v2/organizations/" + other, {"data": {
            "type": "organizations", "attributes": {"name": other.upper()}}})
        assert r.status == 200, r
        assert r.json["data"]["attributes"]["name"] == other.upper()
        other = other.upper()
    finally:
        admin.delete("/api/v2/organizations/" + other)


def test_entitlement_set(admin, org):
    r = admin.get("/api/v2/organizations/%s/entitlement-set" % org)
    assert r.status == 200, r
    d = r.json["data"]
    assert d["type"] == "entitlement-sets" and d["id"].startswith("org-")
    a = d["attributes"]
    assert a["operations"] is True and a["state-storage"] is True
    assert a["teams"] is True and a["sentinel"] is False
    assert_error(admin.get("/api/v2/organizations/%s/entitlement-set"
                           % unique("none")), 404)


def test_agent_execution_mode_needs_pool(admin, org):
    r = admin.patch("/api/v2/organizations/" + org, {"data": {
        "type": "organizations",
        "attributes": {"default-execution-mode": "remote"},
        "relationships": {"default-agent-pool": {
            "data": {"type": "agent-pools", "id": "apool-x"}}}}})
    assert_error(r, 422)
    assert "must not be specified" in r.json["errors"][0]["detail"]
    r = admin.patch("/api/v2/organizations/" + org, {"data": {
        "type": "organizations",
        "attributes": {"default-execution-mode": "agent"}}})
    assert_error(r, 422)
    r = admin.get("/api/v2/organizations/" + org)
    assert r.json["data"]["attributes"]["default-execution-mode"] == "remote"


def test_any_user_may_create_and_sees_only_own(admin, org):
    uid, uname, user = make_user(admin)
    name = unique("mine")
    r = user.post("/api/v2/organizations", org_body(name))
    assert r.status == 201, r
    try:
        mine = org_names(user)
        assert name in mine and org not in mine
        assert user.get("/api/v2/organizations/" + name).status == 200
        for path in ("", "/entitlement-set", "/organization-memberships",
                     "/authentication-token"):
            assert_error(user.get("/api/v2/organizations/" + org + path),
                         404)
        assert_error(user.patch("/api/v2/organizations/" + org, {"data": {
            "type": "organizations", "attributes": {"email": "x@y.z"}}}),
            404)
        assert_error(user.delete("/api/v2/organizations/" + org), 404)
        # the site admin sees both
        names = org_names(admin)
        assert name in names and org in names
        r = admin.get("/api/v2/organizations/" + org)
        assert r.json["data"]["attributes"]["email"] == "o@example.com"
    finally:
        user.delete("/api/v2/organizations/" + name)
        admin.delete("/api/v2/admin/users/" + uid)


def test_org_token_sees_only_its_org(admin, org):
    other = unique("org")
    assert admin.post("/api/v2/organizations", org_body(other)).status == 201
    try:
        r = admin.post("/api/v2/organizations/%s/authentication-token"
                       % org, {})
        ot = admin.with_token(r.json["data"]["attributes"]["token"])
        assert org_names(ot) == [org]
        assert org_names(ot, q="no-such-thing") == []
        assert ot.get("/api/v2/organizations/" + org).status == 200
        assert_error(ot.get("/api/v2/organizations/" + other), 404)
        # not a user: cannot create or delete organizations
        assert_error(ot.post("/api/v2/organizations",
                             org_body(unique("x"))), 404)
        assert_error(ot.delete("/api/v2/organizations/" + org), 403)
        r = ot.get("/api/v2/organizations/" + org)
        assert r.json["data"]["attributes"]["permissions"][
            "can-destroy"] is False
        # it may update its organization
        r = ot.patch("/api/v2/organizations/" + org, {"data": {
            "type": "organizations", "attributes": {"session-timeout": 30}}})
        assert r.status == 200, r
    finally:
        admin.delete("/api/v2/organizations/" + other)


@pytest.mark.parametrize("body,status", [
    ("{not json", 400),
    ({"data": {"type": "workspaces",
               "attributes": {"name": "x", "email": "a@b"}}}, 409),
    ({"data": {"attributes": {"name": "x", "email": "a@b"}}}, 409),
    ({"data": {"type": "organizations", "attributes": {"email": "a@b"}}},
     422),
    ({"data": {"type": "organizations", "attributes": {"name": "x"}}}, 422),
    ({"data": {"type": "organizations",
               "attributes": {"name": "bad name!", "email": "a@b"}}}, 422),
    ({"data": {"type": "organizations",
               "attributes": {"name": "x" * 91, "email": "a@b"}}}, 422),
    ({"data": {"type": "organizations",
               "attributes": {"name": "x", "email": "nope"}}}, 422),
    ({"data": {"type": "organizations",
               "attributes": {"name": 5, "email": "a@b"}}}, 422),
    ({"data": {"type": "organizations",
               "attributes": {"name": "x", "email": "a@b",
                              "session-timeout": "long"}}}, 422),
    ({"data": {"type": "organizations",
               "attributes": {"name": "x", "email": "a@b",
                              "session-timeout": 0}}}, 422),
    ({"data": {"type": "organizations",
               "attributes": {"name": "x", "email": "a@b",
                              "default-execution-mode": "bogus"}}}, 422),
    ({"data": {"type": "organizations",
               "attributes": {"name": "x", "email": "a@b",
                              "cost-estimation-enabled": "yes"}}}, 422),
    ({"data": {"type": "organizations",
               "attributes": {"name": "x", "email": "a@b",
                              "collaborator-auth-policy": "none"}}}, 422),
    ({"data": []}, 422),
])
def test_create_bad_input(admin, body, status):
    name = unique("bad")

    def fill(v):
        if isinstance(v, dict):
            return {k: fill(x) for k, x in v.items()}
        return name if v == "x" else v
    if isinstance(body, str):
        r = admin.request("POST", "/api/v2/organizations", raw=body,
                          ctype="application/vnd.api+json")
    else:
        r = admin.post("/api/v2/organizations", fill(body))
    assert_error(r, status)
    assert_error(admin.get("/api/v2/organizations/" + name), 404)
    assert org_names(admin, q=name) == []


def test_create_no_token_and_too_large(anon, admin):
    name = unique("bad")
    assert_error(anon.post("/api/v2/organizations", org_body(name)), 401)
    assert_error(anon.get("/api/v2/organizations"), 401)
    assert_error(admin.with_token("nope.atlasv1.nope").get(
        "/api/v2/organizations"), 401)
    try:
        r = admin.request("POST", "/api/v2/organizations",
                          raw=b"{" + b" " * BIG + b"}",
                          ctype="application/vnd.api+json")
        assert_error(r, 413)
    except (ConnectionError, OSError):
        pass  # the server may close while the client is still sending
    assert_error(admin.get("/api/v2/organizations/" + name), 404)


@pytest.mark.parametrize("attrs,status", [
    ({"name": "bad name"}, 422),
    ({"name": 3}, 422),
    ({"email": "nope"}, 422),
    ({"session-remember": -1}, 422),
    ({"default-execution-mode": 1}, 422),
    ({"allow-force-delete-workspaces": "true"}, 422),
    ({"owners-team-saml-role-id": 5}, 422),
    # flags of features Terrace does not have take only their default
    ({"user-tokens-enabled": False}, 422),
    ({"enforce-hyok": True}, 422),
    ({"max-ttl-enabled": True}, 422),
    ({"stacks-enabled": True}, 422),
    ({"speculative-plan-management-enabled": "no"}, 422),
])
def test_update_bad_input(admin, org, attrs, status):
    before = admin.get("/api/v2/organizations/" + org).json["data"]
    r = admin.patch("/api/v2/organizations/" + org,
                    {"data": {"type": "organizations", "attributes": attrs}})
    assert_error(r, status)
    assert admin.get("/api/v2/organizations/" + org).json["data"] == before


def test_update_bad_documents(admin, org, anon):
    before = admin.get("/api/v2/organizations/" + org).json["data"]
    path = "/api/v2/organizations/" + org
    assert_error(admin.request("PATCH", path, raw="[",
                               ctype="application/vnd.api+json"), 400)
    assert_error(admin.request("PATCH", path, raw="",
                               ctype="application/vnd.api+json"), 400)
    assert_error(admin.patch(path, {"data": {"type": "users",
                                             "attributes": {}}}), 409)
    assert_error(admin.patch(path, {"data": {"type": "organizations",
                                             "attributes": []}}), 422)
    assert_error(anon.patch(path, {"data": {"type": "organizations",
                                            "attributes": {"email":
                                                           "a@b.c"}}}), 401)
    assert_error(admin.patch("/api/v2/organizations/" + unique("none"),
                             {"data": {"type": "organizations"}}), 404)
    assert admin.get(path).json["data"] == before


def test_delete_unknown_404(admin):
    assert_error(admin.delete("/api/v2/organizations/" + unique("none")),
                 404)
