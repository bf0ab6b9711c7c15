"""RFC 3339 timestamps in requests: token expired-at and workspace
auto-destroy-at go through one parser (src/core/rfc3339.c), so both refuse
the same odd inputs with 422, change nothing, and take the same odd but
valid ones."""
import pytest

from conftest import assert_error, unique

API = "/api/v2"

# Each would lie in the future if a lenient parser took it, so a 422 here
# comes from the parser, not from the expiry rule.
BAD = [
    "2099-02-29T00:00:00Z",         # 2099 is not a leap year
    "2100-02-29T00:00:00Z",         # nor is 2100 (century)
    "2099-04-31T00:00:00Z",         # April has 30 days
    "2099-02-30T00:00:00Z",
    "-001-01-01T00:00:00Z",         # no sign, four digits
    "+2099-01-01T00:00:00Z",
    "20999-01-01T00:00:00Z",
    "99999999999-01-01T00:00:00Z",
    "2099-01-01 00:00:00Z",         # a space for the T is refused
    "2099-01-01T24:00:00Z",
    "2099-01-01T12:00:60Z",         # a leap second only ends a month
    "2099-01-01T00:00:00.Z",
    "2099-01-01T00:00:00+24:00",
    "2099-01-01T00:00:00+23:60",
    "2099-01-01T00:00:00+0100",
    "2099-01-01T00:00:00",          # the offset is required
    "2099-01-01T00:00Z",
    "2099-01-01",
    "2099-01-01T00:00:00Z junk",
    " 2099-01-01T00:00:00Z",
    "",
]

# Odd but valid, with the instant each names.
GOOD = [
    ("2099-12-31t23:59:60z", "2100-01-01T00:00:00"),
    ("2096-02-29T00:00:00.123456789-00:00", "2096-02-29T00:00:00"),
    ("2099-06-30T19:59:60-04:00", "2099-07-01T00:00:00"),
    ("2099-03-01T01:30:00.5+01:30", "2099-03-01T00:00:00"),
]


@pytest.fixture(scope="module")
def me(admin):
    r = admin.get(API + "/account/details")
    assert r.status == 200, r
    return r.json["data"]["id"]


def token_ids(admin, uid):
    r = admin.get("%s/users/%s/authentication-tokens?page[size]=100"
                  % (API, uid))
    assert r.status == 200, r
    return sorted(t["id"] for t in r.json["data"])


def tok_body(expired_at):
    return {"data": {"type": "authentication-tokens",
                     "attributes": {"expired-at": expired_at}}}


def detail(r):
    return r.json["errors"][0].get("detail", "")


@pytest.mark.parametrize("value", BAD, ids=range(len(BAD)))
def test_token_expired_at_refused(admin, me, value):
    before = token_ids(admin, me)
    r = admin.post("%s/users/%s/authentication-tokens" % (API, me),
                   tok_body(value))
    assert_error(r, 422)
    assert "RFC 3339" in detail(r), r
    assert token_ids(admin, me) == before


@pytest.mark.parametrize("value", ["0000-01-01T00:00:00Z",
                                   "1970-01-01T00:00:00Z"])
def test_token_expired_at_parsed_but_past(admin, me, value):
    before = token_ids(admin, me)
    r = admin.post("%s/users/%s/authentication-tokens" % (API, me),
                   tok_body(value))
    assert_error(r, 422)
    assert detail(r) == "expired-at must be in the future", r
    assert token_ids(admin, me) == before


@pytest.mark.parametrize("value,instant", GOOD, ids=range(len(GOOD)))
def test_token_expired_at_odd_but_valid(admin, me, value, instant):
    r = admin.post("%s/users/%s/authentication-tokens" % (API, me),
                   tok_body(value))
    assert r.status == 201, r
    d = r.json["data"]
    try:
        assert d["attributes"]["expired-at"] == instant + ".000Z"
    finally:
        admin.delete("%s/authentication-tokens/%s" % (API, d["id"]))


def test_org_token_expired_at_refused(admin, org):
    path = "%s/organizations/%s/authentication-token" % (API, org)
    r = admin.post(path, {})
    assert r.status == 201, r
    keep = r.json["data"]["id"]
    for value in BAD:
        r = admin.post(path, tok_body(value))
        assert_error(r, 422)
        assert "RFC 3339" in detail(r), (value, r)
    # the token that was there survives every refused regeneration
    r = admin.get(path)
    assert r.status == 200 and r.json["data"]["id"] == keep, r


def ws_body(**attrs):
    return {"data": {"type": "workspaces", "attributes": attrs}}


def ws_count(admin, org):
    r = admin.get("%s/organizations/%s/workspaces" % (API, org))
    assert r.status == 200, r
    return r.json["meta"]["pagination"]["total-count"]


def test_workspace_auto_destroy_at(admin, org):
    path = "%s/organizations/%s/workspaces" % (API, org)
    # create: refused, and no workspace appears
    for value in BAD:
        r = admin.post(path, ws_body(name=unique("ws"),
                                     **{"auto-destroy-at": value}))
        assert_error(r, 422)
        assert "RFC 3339" in detail(r), (value, r)
    assert ws_count(admin, org) == 0
    # update: refused, and the value set before stays
    first = "2030-01-01T00:00:00Z"
    r = admin.post(path, ws_body(name=unique("ws"),
                                 **{"auto-destroy-at": first}))
    assert r.status == 201, r
    ws = "%s/workspaces/%s" % (API, r.json["data"]["id"])
    for value in BAD:
        r = admin.patch(ws, ws_body(**{"auto-destroy-at": value}))
        assert_error(r, 422)
        assert "RFC 3339" in detail(r), (value, r)
    r = admin.get(ws)
    assert r.json["data"]["attributes"]["auto-destroy-at"] == first
    # odd but valid values are taken as given
    for value, _ in GOOD:
        r = admin.patch(ws, ws_body(**{"auto-destroy-at": value}))
        assert r.status == 200, (value, r)
        got = admin.get(ws).json["data"]["attributes"]["auto-destroy-at"]
        assert got == value
