"""The account endpoints, users, and site administration of users; and
the `terrace admin` client that drives the admin endpoints."""
import os
import subprocess

import pytest

from conftest import assert_error, unique

BUILD = os.environ.get("TERRACE_BUILD_DIR",
                       os.path.join(os.path.dirname(__file__), "..", "..",
                                    "build"))


def user_body(username=None, email=None, type_="users", **extra):
    a = {}
    if username is not None:
        a["username"] = username
    if email is not None:
        a["email"] = email
    a.update(extra)
    return {"data": {"type": type_, "attributes": a}}


def make_user(admin, admin_flag=False):
    name = unique("u")
    r = admin.post("/api/v2/admin/users",
                   user_body(name, name + "@example.com",
                             **{"is-admin": admin_flag}))
    assert r.status == 201, r
    uid = r.json["data"]["id"]
    r = admin.post("/api/v2/admin/users/%s/authentication-tokens" % uid, {})
    assert r.status == 201, r
    return uid, name, admin.with_token(r.json["data"]["attributes"]["token"])


@pytest.fixture
def user(admin):
    uid, name, client = make_user(admin)
    yield uid, name, client
    admin.delete("/api/v2/admin/users/" + uid)


def admin_list(admin, **q):
    path = "/api/v2/admin/users?page[size]=100"
    for k, v in q.items():
        path += "&%s=%s" % (k, v)
    r = admin.get(path)
    assert r.status == 200, r
    return r.json


def test_account_details(admin):
    r = admin.get("/api/v2/account/details")
    assert r.status == 200, r
    d = r.json["data"]
    assert d["type"] == "users" and d["id"].startswith("user-")
    a = d["attributes"]
    assert a["username"] == "admin" and a["is-site-admin"] is True
    assert a["email"] and a["avatar-url"].startswith("https://")
    assert a["two-factor"] == {"enabled": False, "verified": False}
    assert a["permissions"]["can-manage-user-tokens"] is True


def test_account_update(user):
    uid, name, client = user
    new = unique("ren")
    r = client.patch("/api/v2/account/update",
                     user_body(new, new + "@Example.com"))
    assert r.status == 200, r
    a = r.json["data"]["attributes"]
    assert a["username"] == new and a["email"] == new + "@Example.com"
    assert a["is-site-admin"] is False
    r = client.get("/api/v2/account/details")
    assert r.json["data"]["attributes"]["username"] == new
    # an empty update changes nothing
    r2 = client.patch("/api/v2/account/update", user_body())
    assert r2.status == 200 and r2.json["data"] == r.json["data"]


def test_account_update_conflicts(admin, user):
    uid, name, client = user
    other, oname, _ = make_user(admin)
    try:
        before = client.get("/api/v2/account/details").json["data"]
        assert_error(client.patch("/api/v2/account/update",
                                  user_body(oname)), 422)
        assert_error(client.patch("/api/v2/account/update", user_body(
            email=(oname + "@example.com").upper())), 422)
        assert client.get("/api/v2/account/details").json["data"] == before
    finally:
        admin.delete("/api/v2/admin/users/" + other)


@pytest.mark.parametrize("body,status", [
    ("{oops", 400),
    ("", 400),
    ({"data": {"type": "organizations", "attributes": {"username": "x"}}},
     409),
    ({"data": {"type": "users", "attributes": {"username": "bad name"}}},
     422),
    ({"data": {"type": "users", "attributes": {"username": ""}}}, 422),
    ({"data": {"type": "users", "attributes": {"username": 12}}}, 422),
    ({"data": {"type": "users", "attributes": {"email": "notamail"}}}, 422),
    ({"data": {"type": "users", "attributes": {"email": "a b@c"}}}, 422),
    ({"data": {"type": "users", "attributes": {"email": "a@b@c"}}}, 422),
    ({"data": {"type": "users", "attributes": {"email": None}}}, 422),
])
def test_account_update_bad_input(user, body, status):
    uid, name, client = user
    before = client.get("/api/v2/account/details").json["data"]
    if isinstance(body, str):
        r = client.request("PATCH", "/api/v2/account/update", raw=body,
                           ctype="application/vnd.api+json")
    else:
        r = client.patch("/api/v2/account/update", body)
    assert_error(r, status)
    assert client.get("/api/v2/account/details").json["data"] == before


def test_account_needs_user_token(admin, anon, org):
    assert_error(anon.get("/api/v2/account/details"), 401)
    r = admin.post("/api/v2/organizations/%s/authentication-token" % org, {})
    ot = admin.with_token(r.json["data"]["attributes"]["token"])
    assert_error(ot.get("/api/v2/account/details"), 404)
    assert_error(ot.patch("/api/v2/account/update", user_body("x")), 404)


def test_show_user(admin, user):
    uid, name, client = user
    me = admin.get("/api/v2/account/details").json["data"]
    r = client.get("/api/v2/users/" + uid)
    assert r.status == 200 and r.json["data"]["attributes"]["email"]
    # another user's email stays private
    r = client.get("/api/v2/users/" + me["id"])
    assert r.status == 200
    assert r.json["data"]["attributes"]["username"] == "admin"
    assert "email" not in r.json["data"]["attributes"]
    # site admins see it
    r = admin.get("/api/v2/users/" + uid)
    assert r.json["data"]["attributes"]["email"] == name + "@example.com"
    assert_error(admin.get("/api/v2/users/user-doesnotexist0000"), 404)


def test_admin_create_list_delete(admin):
    name = unique("adm")
    r = admin.post("/api/v2/admin/users",
                   user_body(name, name + "@example.com"))
    assert r.status == 201, r
    d = r.json["data"]
    assert d["attributes"]["username"] == name
    assert d["attributes"]["is-admin"] is False
    assert d["relationships"]["organizations"]["data"] == []
    uid = d["id"]
    doc = admin_list(admin, q=name)
    assert [u["id"] for u in doc["data"]] == [uid]
    assert doc["meta"]["pagination"]["total-count"] == 1
    # search by email, case-insensitive
    assert [u["id"] for u in admin_list(admin, q=name.upper() + "@EX")[
        "data"]] == [uid]
    assert uid not in [u["id"] for u in admin_list(
        admin, **{"filter[admin]": "true"})["data"]]
    assert uid in [u["id"] for u in admin_list(
        admin, **{"filter[admin]": "false", "q": name})["data"]]
    assert admin_list(admin, **{"filter[suspended]": "true"})["data"] == []
    assert admin.delete("/api/v2/admin/users/" + uid).status == 204
    assert admin_list(admin, q=name)["data"] == []
    assert_error(admin.delete("/api/v2/admin/users/" + uid), 404)


def test_admin_list_pagination_and_orgs(admin, org):
    me = admin.get("/api/v2/account/details").json["data"]["id"]
    r = admin.get("/api/v2/admin/users?page[size]=1&include=organizations")
    assert r.status == 200
    p = r.json["meta"]["pagination"]
    assert len(r.json["data"]) == 1 and p["total-count"] >= 1
    r = admin.get("/api/v2/admin/users?page[number]=999&page[size]=100")
    assert r.json["data"] == [] and \
        r.json["meta"]["pagination"]["current-page"] == 999
    mine = [u for u in admin_list(admin, q="admin")["data"]
            if u["id"] == me][0]
    orgs = [o["id"] for o in mine["relationships"]["organizations"]["data"]]
    assert org in orgs
    assert_error(admin.get("/api/v2/admin/users?include=teams"), 400)
    assert_error(admin.get("/api/v2/admin/users?filter[admin]=maybe"), 400)
    assert_error(admin.get("/api/v2/admin/users?page[size]=0"), 400)


def test_delete_user_revokes_tokens(admin):
    uid, name, client = make_user(admin)
    assert client.get("/api/v2/account/details").status == 200
    assert admin.delete("/api/v2/admin/users/" + uid).status == 204
    assert_error(client.get("/api/v2/account/details"), 401)


def test_grant_and_revoke_admin(admin, user):
    uid, name, client = user
    assert_error(client.get("/api/v2/admin/users"), 404)
    r = admin.post("/api/v2/admin/users/%s/actions/grant_admin" % uid)
    assert r.status == 200, r
    assert r.json["data"]["attributes"]["is-admin"] is True
    assert client.get("/api/v2/admin/users").status == 200
    assert client.get("/api/v2/account/details").json["data"][
        "attributes"]["is-site-admin"] is True
    r = admin.post("/api/v2/admin/users/%s/actions/revoke_admin" % uid)
    assert r.status == 200
    assert r.json["data"]["attributes"]["is-admin"] is False
    assert_error(client.get("/api/v2/admin/users"), 404)
    assert_error(admin.post("/api/v2/admin/users/user-nope0000000000000/"
                            "actions/grant_admin"), 404)


def test_admin_cannot_remove_self(admin):
    me = admin.get("/api/v2/account/details").json["data"]["id"]
    assert_error(admin.delete("/api/v2/admin/users/" + me), 422)
    assert_error(admin.post("/api/v2/admin/users/%s/actions/revoke_admin"
                            % me), 422)
    assert admin.get("/api/v2/account/details").json["data"][
        "attributes"]["is-site-admin"] is True


def test_admin_routes_hidden_from_others(admin, user, org):
    uid, name, client = user
    r = admin.post("/api/v2/organizations/%s/authentication-token" % org, {})
    ot = admin.with_token(r.json["data"]["attributes"]["token"])
    for c in (client, ot):
        assert_error(c.get("/api/v2/admin/users"), 404)
        assert_error(c.post("/api/v2/admin/users",
                            user_body(unique("x"), "x@y.z")), 404)
        assert_error(c.delete("/api/v2/admin/users/" + uid), 404)
        assert_error(c.post("/api/v2/admin/users/%s/actions/grant_admin"
                            % uid), 404)
        assert_error(c.post("/api/v2/admin/users/%s/authentication-tokens"
                            % uid, {}), 404)
    assert client.get("/api/v2/account/details").json["data"][
        "attributes"]["is-site-admin"] is False


@pytest.mark.parametrize("body,status", [
    ("{", 400),
    ({"data": {"type": "organizations",
               "attributes": {"username": "x", "email": "x@y"}}}, 409),
    ({"data": {"type": "users", "attributes": {"email": "x@y"}}}, 422),
    ({"data": {"type": "users", "attributes": {"username": "x"}}}, 422),
    ({"data": {"type": "users",
               "attributes": {"username": "x y", "email": "x@y"}}}, 422),
    ({"data": {"type": "users",
               "attributes": {"username": "x", "email": "xy"}}}, 422),
    ({"data": {"type": "users",
               "attributes": {"username": "x", "email": "x@y",
                              "is-admin": "yes"}}}, 422),
    ({"data": {"type": "users",
               "attributes": {"username": "admin", "email": "x@y"}}}, 422),
    ({"data": {"type": "users",
               "attributes": {"username": "x",
                              "email": "ADMIN@localhost"}}}, 422),
])
def test_admin_create_bad_input(admin, anon, body, status):
    name = unique("bad")
    total = admin_list(admin)["meta"]["pagination"]["total-count"]

    def fill(v):
        if isinstance(v, dict):
            return {k: fill(x) for k, x in v.items()}
        if isinstance(v, str):
            return v.replace("x", name) if v in ("x", "x@y", "x y") else v
        return v
    if isinstance(body, str):
        r = admin.request("POST", "/api/v2/admin/users", raw=body,
                          ctype="application/vnd.api+json")
    else:
        r = admin.post("/api/v2/admin/users", fill(body))
    assert_error(r, status)
    assert admin_list(admin, q=name)["data"] == []
    assert admin_list(admin)["meta"]["pagination"]["total-count"] == total


def test_admin_needs_token(anon):
    assert_error(anon.get("/api/v2/admin/users"), 401)
    assert_error(anon.post("/api/v2/admin/users",
                           user_body("x", "x@y")), 401)


def terrace_admin(daemon, *args, token_file=None, env=None):
    cmd = [os.path.join(BUILD, "terrace"), "admin", "--url", daemon.url,
           "--token-file",
           token_file or os.path.join(daemon.data_dir, "admin-token")]
    e = dict(os.environ)
    e.pop("TERRACE_TOKEN", None)
    e.update(env or {})
    return subprocess.run(cmd + list(args), capture_output=True, text=True,
                          timeout=60, env=e)


def test_cli_admin(daemon, admin, tmp_path):
    name = unique("cli")
    r = terrace_admin(daemon, "user", "create", "--username", name,
                      "--email", name + "@example.com")
    assert r.returncode == 0, r.stderr
    uid = r.stdout.strip()
    assert uid.startswith("user-")
    try:
        r = terrace_admin(daemon, "user", "list")
        assert r.returncode == 0, r.stderr
        line = [ln for ln in r.stdout.splitlines() if ln.startswith(uid)]
        assert line and line[0].split("\t")[1:] == [
            name, name + "@example.com", "-"]
        # a duplicate: exit 1 with the server's detail
        r = terrace_admin(daemon, "user", "create", "--username", name,
                          "--email", "other@example.com")
        assert r.returncode == 1 and "already taken" in r.stderr
        r = terrace_admin(daemon, "user", "token", "--username", name,
                          "--description", "ci")
        assert r.returncode == 0, r.stderr
        token = r.stdout.strip()
        assert "\n" not in token and ".atlasv1." in token
        user = admin.with_token(token)
        assert user.get("/api/v2/account/details").json["data"]["id"] == uid
        org = unique("cliorg")
        r = terrace_admin(daemon, "org", "create", "--name", org, "--email",
                          "o@example.com", "--owner", name)
        assert r.returncode == 0, r.stderr
        # --owner invites: the organization is the user's once accepted
        assert user.get("/api/v2/organizations/" + org).status == 404
        r = user.get("/api/v2/organization-memberships")
        mid = [m["id"] for m in r.json["data"]
               if m["relationships"]["organization"]["data"]["id"] == org]
        assert len(mid) == 1, r
        assert user.post("/api/v2/organization-memberships/%s/actions/accept"
                         % mid[0], {}).status == 200
        assert user.get("/api/v2/organizations/" + org).status == 200
        admin.delete("/api/v2/organizations/" + org)
        # the user's own token is not a site admin's: exit 1, nothing made
        tf = tmp_path / "tok"
        tf.write_text(token + "\n")
        r = terrace_admin(daemon, "--ca-file", daemon.ca, "user", "create",
                          "--username", unique("x"), "--email", "x@y.z",
                          token_file=str(tf))
        assert r.returncode == 1 and "site admin" in r.stderr
        # TERRACE_TOKEN is used when no --token-file is given
        cmd = [os.path.join(BUILD, "terrace"), "admin", "--url", daemon.url,
               "--ca-file", daemon.ca, "user", "list"]
        env = dict(os.environ, TERRACE_TOKEN=daemon.admin_token)
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=60,
                           env=env)
        assert r.returncode == 0 and uid in r.stdout, r.stderr
        r = terrace_admin(daemon, "user", "token", "--username",
                          unique("nobody"))
        assert r.returncode == 1 and "no user named" in r.stderr
        r = terrace_admin(daemon, "user", "create", "--username", "x")
        assert r.returncode == 2
        r = terrace_admin(daemon, "frobnicate", "it")
        assert r.returncode == 2
        r = terrace_admin(daemon, "user", "list",
                          token_file=str(tmp_path / "missing"))
        assert r.returncode == 1 and "token file" in r.stderr
    finally:
        admin.delete("/api/v2/admin/users/" + uid)
