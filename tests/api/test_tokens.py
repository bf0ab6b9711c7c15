"""User tokens, organization tokens and the admin token-issuing endpoint."""
import datetime
import time

import pytest

from conftest import assert_error, unique


def iso(dt):
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


def now():
    return datetime.datetime.now(datetime.timezone.utc).replace(
        microsecond=0)


def tok_body(**attrs):
    return {"data": {"type": "authentication-tokens", "attributes": attrs}}


@pytest.fixture
def user(admin):
    name = unique("u")
    r = admin.post("/api/v2/admin/users", {"data": {"type": "users",
        "attributes": {"username": name, "email": name + "@example.com"}}})
    assert r.status == 201, r
    uid = r.json["data"]["id"]
    r = admin.post("/api/v2/admin/users/%s/authentication-tokens" % uid, {})
    assert r.status == 201, r
    yield uid, admin.with_token(r.json["data"]["attributes"]["token"])
    admin.delete("/api/v2/admin/users/" + uid)


def token_ids(client, uid):
    r = client.get("/api/v2/users/%s/authentication-tokens?page[size]=100"
                   % uid)
    assert r.status == 200, r
    return [t["id"] for t in r.json["data"]]


def test_user_token_lifecycle(user):
    uid, client = user
    r = client.post("/api/v2/users/%s/authentication-tokens" % uid,
                    tok_body(description="ci"))
    assert r.status == 201, r
    d = r.json["data"]
    assert d["type"] == "authentication-tokens" and d["id"].startswith("at-")
    a = d["attributes"]
    assert a["description"] == "ci" and a["expired-at"] is None
    assert a["last-used-at"] is None
    secret = a["token"]
    assert ".atlasv1." in secret
    assert d["relationships"]["created-by"]["data"] == {"type": "users",
                                                         "id": uid}
    # the value is never shown again
    r2 = client.get("/api/v2/authentication-tokens/" + d["id"])
    assert r2.status == 200 and r2.json["data"]["attributes"]["token"] is None
    d2 = dict(r2.json["data"])
    d2["attributes"] = dict(d2["attributes"], token=secret)
    assert d2 == d
    assert d["id"] in token_ids(client, uid)
    listed = client.get("/api/v2/users/%s/authentication-tokens" % uid)
    assert all(t["attributes"]["token"] is None
               for t in listed.json["data"])
    # the new token works, and records its use
    new = client.with_token(secret)
    assert new.get("/api/v2/account/details").json["data"]["id"] == uid
    r3 = client.get("/api/v2/authentication-tokens/" + d["id"])
    assert r3.json["data"]["attributes"]["last-used-at"] is not None
    assert client.delete("/api/v2/authentication-tokens/"
                         + d["id"]).status == 204
    assert_error(new.get("/api/v2/account/details"), 401)
    assert_error(client.get("/api/v2/authentication-tokens/" + d["id"]), 404)
    assert d["id"] not in token_ids(client, uid)


def test_create_with_empty_bodies(user):
    uid, client = user
    path = "/api/v2/users/%s/authentication-tokens" % uid
    for body in (None, {}, {"data": {"type": ""}},
                 {"data": {"type": "authentication-tokens"}}):
        r = client.post(path, body)
        assert r.status == 201, (body, r)
        assert r.json["data"]["attributes"]["description"] == ""


def test_expiry(user):
    uid, client = user
    path = "/api/v2/users/%s/authentication-tokens" % uid
    later = now() + datetime.timedelta(days=1)
    r = client.post(path, tok_body(**{"expired-at": iso(later)}))
    assert r.status == 201, r
    got = r.json["data"]["attributes"]["expired-at"]
    assert datetime.datetime.fromisoformat(got.replace("Z", "+00:00")) \
        == later
    # offsets are understood
    r = client.post(path, tok_body(**{"expired-at": "2099-01-01T02:00:00.5"
                                      "+02:00"}))
    assert r.status == 201
    assert r.json["data"]["attributes"]["expired-at"].startswith(
        "2099-01-01T00:00:00")
    # a token expiring in two seconds stops working
    soon = now() + datetime.timedelta(seconds=2)
    r = client.post(path, tok_body(**{"expired-at": iso(soon)}))
    assert r.status == 201
    short = client.with_token(r.json["data"]["attributes"]["token"])
    assert short.get("/api/v2/account/details").status == 200
    time.sleep(max(0.0, (soon - now()).total_seconds()) + 1.2)
    assert_error(short.get("/api/v2/account/details"), 401)


@pytest.mark.parametrize("body,status", [
    ("{nope", 400),
    ({"data": {"type": "users", "attributes": {}}}, 409),
    ({"data": {"type": 7}}, 409),
    ({"data": "x"}, 422),
    ({"data": {"type": "authentication-tokens",
               "attributes": {"expired-at": "2000-01-01T00:00:00Z"}}}, 422),
    ({"data": {"type": "authentication-tokens",
               "attributes": {"expired-at": "tomorrow"}}}, 422),
    ({"data": {"type": "authentication-tokens",
               "attributes": {"expired-at": "2099-02-30T00:00:00Z"}}}, 422),
    ({"data": {"type": "authentication-tokens",
               "attributes": {"expired-at": "2099-01-01T00:00:00"}}}, 422),
    ({"data": {"type": "authentication-tokens",
               "attributes": {"expired-at": 4102444800}}}, 422),
    ({"data": {"type": "authentication-tokens",
               "attributes": {"description": 5}}}, 422),
    ({"data": {"type": "authentication-tokens",
               "attributes": {"description": "d" * 1025}}}, 422),
])
def test_user_token_bad_input(user, body, status):
    uid, client = user
    before = token_ids(client, uid)
    path = "/api/v2/users/%s/authentication-tokens" % uid
    if isinstance(body, str):
        r = client.request("POST", path, raw=body,
                           ctype="application/vnd.api+json")
    else:
        r = client.post(path, body)
    assert_error(r, status)
    assert token_ids(client, uid) == before


def test_users_manage_only_their_own(admin, user, anon):
    uid, client = user
    me = admin.get("/api/v2/account/details").json["data"]["id"]
    r = admin.post("/api/v2/users/%s/authentication-tokens" % me,
                   tok_body(description=unique("mine")))
    tid = r.json["data"]["id"]
    try:
        assert_error(client.get("/api/v2/users/%s/authentication-tokens"
                                % me), 404)
        assert_error(client.post("/api/v2/users/%s/authentication-tokens"
                                 % me, tok_body()), 404)
        assert_error(client.get("/api/v2/authentication-tokens/" + tid), 404)
        assert_error(client.delete("/api/v2/authentication-tokens/" + tid),
                     404)
        assert tid in token_ids(admin, me)
        # a site admin manages anyone's tokens
        r = admin.post("/api/v2/users/%s/authentication-tokens" % uid,
                       tok_body(description="by admin"))
        assert r.status == 201
        other = r.json["data"]
        assert other["relationships"]["created-by"]["data"]["id"] == me
        assert other["id"] in token_ids(client, uid)
        assert admin.get("/api/v2/authentication-tokens/"
                         + other["id"]).status == 200
        assert admin.delete("/api/v2/authentication-tokens/"
                            + other["id"]).status == 204
        assert_error(anon.get("/api/v2/authentication-tokens/" + tid), 401)
        assert_error(admin.get("/api/v2/users/user-nope000000000000/"
                               "authentication-tokens"), 404)
    finally:
        admin.delete("/api/v2/authentication-tokens/" + tid)


def test_admin_issue_token(admin, user):
    uid, client = user
    r = admin.post("/api/v2/admin/users/%s/authentication-tokens" % uid,
                   tok_body(description="ci bootstrap"))
    assert r.status == 201, r
    t = admin.with_token(r.json["data"]["attributes"]["token"])
    assert t.get("/api/v2/account/details").json["data"]["id"] == uid
    assert_error(admin.post("/api/v2/admin/users/user-nope0000000000000/"
                            "authentication-tokens", {}), 404)
    assert_error(client.post("/api/v2/admin/users/%s/authentication-tokens"
                             % uid, {}), 404)


def org_token_path(org):
    return "/api/v2/organizations/%s/authentication-token" % org


def test_org_token_lifecycle(admin, org):
    assert_error(admin.get(org_token_path(org)), 404)
    r = admin.post(org_token_path(org), {})
    assert r.status == 201, r
    first = r.json["data"]
    secret = first["attributes"]["token"]
    assert secret
    assert first["relationships"]["created-by"]["data"]["type"] == "users"
    ot = admin.with_token(secret)
    assert ot.get("/api/v2/organizations/" + org).status == 200
    r = admin.get(org_token_path(org))
    assert r.status == 200 and r.json["data"]["id"] == first["id"]
    assert r.json["data"]["attributes"]["token"] is None
    # regenerating replaces the old token
    later = now() + datetime.timedelta(days=2)
    r = admin.post(org_token_path(org),
                   {"data": {"type": "", "attributes": {
                       "expired-at": iso(later)}}})
    assert r.status == 201
    second = r.json["data"]
    assert second["id"] != first["id"]
    assert second["attributes"]["token"] != secret
    assert second["attributes"]["expired-at"].startswith(iso(later)[:19])
    assert_error(ot.get("/api/v2/organizations/" + org), 401)
    ot2 = admin.with_token(second["attributes"]["token"])
    assert ot2.get("/api/v2/organizations/" + org).status == 200
    # an organization token is not a user token
    assert_error(ot2.get("/api/v2/authentication-tokens/" + second["id"]),
                 404)
    assert_error(admin.get("/api/v2/authentication-tokens/" + second["id"]),
                 404)
    # the organization token may regenerate itself (its old value dies)
    r = ot2.post(org_token_path(org), {})
    assert r.status == 201
    assert r.json["data"]["relationships"]["created-by"]["data"] == {
        "type": "organizations", "id": org}
    third = admin.with_token(r.json["data"]["attributes"]["token"])
    assert admin.delete(org_token_path(org)).status == 204
    assert_error(third.get("/api/v2/organizations/" + org), 401)
    assert_error(admin.get(org_token_path(org)), 404)
    assert_error(admin.delete(org_token_path(org)), 404)


def test_org_token_follows_rename(admin):
    name = unique("org")
    assert admin.post("/api/v2/organizations", {"data": {
        "type": "organizations",
        "attributes": {"name": name, "email": "a@b.c"}}}).status == 201
    new = unique("ren")
    try:
        r = admin.post(org_token_path(name), {})
        ot = admin.with_token(r.json["data"]["attributes"]["token"])
        assert admin.patch("/api/v2/organizations/" + name, {"data": {
            "type": "organizations",
            "attributes": {"name": new}}}).status == 200
        assert ot.get("/api/v2/organizations/" + new).status == 200
        assert admin.get(org_token_path(new)).status == 200
    finally:
        admin.delete("/api/v2/organizations/" + new)
        admin.delete("/api/v2/organizations/" + name)


def test_org_token_access(admin, org, user):
    uid, client = user
    for m in ("get", "delete"):
        assert_error(getattr(client, m)(org_token_path(org)), 404)
    assert_error(client.post(org_token_path(org), {}), 404)
    assert_error(admin.post(org_token_path(unique("none")), {}), 404)


@pytest.mark.parametrize("body,status", [
    ("[", 400),
    ({"data": {"type": "organizations"}}, 409),
    ({"data": {"type": "authentication-tokens",
               "attributes": {"expired-at": "1999-12-31T23:59:59Z"}}}, 422),
    ({"data": {"type": "authentication-tokens",
               "attributes": {"expired-at": "soon"}}}, 422),
])
def test_org_token_bad_input(admin, org, body, status):
    r = admin.post(org_token_path(org), {})
    keep = admin.with_token(r.json["data"]["attributes"]["token"])
    if isinstance(body, str):
        r = admin.request("POST", org_token_path(org), raw=body,
                          ctype="application/vnd.api+json")
    else:
        r = admin.post(org_token_path(org), body)
    assert_error(r, status)
    # the existing token survives a rejected regeneration
    assert keep.get("/api/v2/organizations/" + org).status == 200
