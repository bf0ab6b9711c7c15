"""Organization SSH keys: create, show, list, update, delete; the value
write-only (never in a response, sealed in the database); assigning a
key to a workspace and unassigning it; deleting a key unassigns it; the
bad-input matrix with a read after each refusal; access from outside the
organization.  Their use in runs is tests/e2e/test_ssh_keys.py."""
import pytest

from conftest import assert_error, temp_org
from test_at_rest import sql
from test_runs import API, make_ws
from test_workspaces import make_user

VALUE = ("-----BEGIN OPENSSH PRIVATE KEY-----\n"
         "c2VjcmV0LWtleS1tYXRlcmlhbC1mb3ItdGVzdHM=\n"
         "-----END OPENSSH PRIVATE KEY-----\n")


def create(c, org, **attrs):
    return c.post("%s/organizations/%s/ssh-keys" % (API, org),
                  {"data": {"type": "ssh-keys", "attributes": attrs}})


def names(c, org):
    r = c.get("%s/organizations/%s/ssh-keys" % (API, org))
    assert r.status == 200, r
    return sorted(k["attributes"]["name"] for k in r.json["data"])


def assign(c, ws, key_id, attrs=None):
    return c.patch("%s/workspaces/%s/relationships/ssh-key" % (API, ws),
                   {"data": {"type": "workspaces",
                             "attributes": ({"id": key_id} if attrs is None
                                            else attrs)}})


def ws_key(c, ws):
    r = c.get("%s/workspaces/%s" % (API, ws))
    assert r.status == 200, r
    d = r.json["data"]["relationships"]["ssh-key"]["data"]
    return d["id"] if d else None


@pytest.fixture
def other_org(admin):
    yield from temp_org(admin)


def test_crud_and_write_only(admin, org, daemon):
    c = admin
    r = create(c, org, name="deploy", value=VALUE)
    assert r.status == 201, r
    k = r.json["data"]
    assert k["type"] == "ssh-keys" and k["id"].startswith("sshkey-")
    assert k["attributes"] == {"name": "deploy"}
    assert b"c2VjcmV0" not in r.body
    r = c.get("%s/ssh-keys/%s" % (API, k["id"]))
    assert r.status == 200 and r.json["data"] == k, r
    assert create(c, org, name="b-key", value=VALUE).status == 201
    assert names(c, org) == ["b-key", "deploy"]
    r = c.get("%s/organizations/%s/ssh-keys?page[size]=1&page[number]=2"
              % (API, org))
    assert [x["attributes"]["name"] for x in r.json["data"]] == ["deploy"]
    assert r.json["meta"]["pagination"]["total-count"] == 2
    # sealed in the database: the stored text is an envelope
    stored = sql(daemon, "SELECT value FROM ssh_keys WHERE id = '%s'"
                 % k["id"])[0][0]
    assert "c2VjcmV0" not in stored and stored.startswith("tre1:")
    # update the name, then the value (the name stays)
    r = c.patch("%s/ssh-keys/%s" % (API, k["id"]), {"data": {
        "type": "ssh-keys", "attributes": {"name": "renamed"}}})
    assert r.status == 200 and r.json["data"]["attributes"] == {
        "name": "renamed"}, r
    r = c.patch("%s/ssh-keys/%s" % (API, k["id"]), {"data": {
        "type": "ssh-keys", "attributes": {"value": VALUE + "\n"}}})
    assert r.status == 200 and r.json["data"]["attributes"] == {
        "name": "renamed"}, r
    assert sql(daemon, "SELECT value FROM ssh_keys WHERE id = '%s'"
               % k["id"])[0][0] != stored
    r = c.delete("%s/ssh-keys/%s" % (API, k["id"]))
    assert r.status == 204, r
    assert_error(c.get("%s/ssh-keys/%s" % (API, k["id"])), 404)
    assert_error(c.delete("%s/ssh-keys/%s" % (API, k["id"])), 404)
    assert names(c, org) == ["b-key"]


def test_assign_unassign_and_delete(admin, org):
    c = admin
    ws = make_ws(c, org)
    key = create(c, org, name="k", value=VALUE).json["data"]["id"]
    assert ws_key(c, ws) is None
    r = assign(c, ws, key)
    assert r.status == 200, r
    assert r.json["data"]["relationships"]["ssh-key"]["data"] == {
        "id": key, "type": "ssh-keys"}
    assert ws_key(c, ws) == key
    r = assign(c, ws, None)
    assert r.status == 200, r
    assert r.json["data"]["relationships"]["ssh-key"]["data"] is None
    assert assign(c, ws, key).status == 200
    assert c.delete("%s/ssh-keys/%s" % (API, key)).status == 204
    assert ws_key(c, ws) is None


def test_bad_input(admin, org, other_org):
    c = admin
    ws = make_ws(c, org)
    key = create(c, org, name="k", value=VALUE).json["data"]["id"]
    foreign = create(c, other_org, name="f", value=VALUE).json["data"]["id"]
    for attrs in ({}, {"name": "x"}, {"value": VALUE}, {"name": "", "value":
                  VALUE}, {"name": "x" * 256, "value": VALUE},
                  {"name": "x", "value": ""}, {"name": "x", "value": 5},
                  {"name": 7, "value": VALUE},
                  {"name": "x", "value": "k" * (64 * 1024 + 1)}):
        assert_error(create(c, org, **attrs), 422)
    assert_error(c.post("%s/organizations/%s/ssh-keys" % (API, org), {
        "data": {"type": "workspaces", "attributes": {
            "name": "x", "value": VALUE}}}), 409)
    assert_error(c.post("%s/organizations/%s/ssh-keys" % (API, org),
                        raw=b"{nope", ctype="application/json"), 400)
    assert_error(create(c, "no-such-org-xyz", name="x", value=VALUE), 404)
    assert names(c, org) == ["k"]
    r = c.patch("%s/ssh-keys/%s" % (API, key), {"data": {
        "type": "ssh-keys", "attributes": {"name": ""}}})
    assert_error(r, 422)
    assert names(c, org) == ["k"]
    # assigning: a missing or bad id, another organization's key, no such
    # key; each leaves the key assigned before
    assert assign(c, ws, key).status == 200
    for attrs in ({}, {"id": ""}, {"id": 5}, {"id": "x" * 65}):
        assert_error(assign(c, ws, None, attrs), 422)
    assert_error(assign(c, ws, foreign), 404)
    assert_error(assign(c, ws, "sshkey-doesnotexist0"), 404)
    assert_error(c.post("%s/workspaces/%s/relationships/ssh-key" % (API, ws),
                        {"data": {"type": "workspaces",
                                  "attributes": {"id": key}}}), 405)
    assert ws_key(c, ws) == key
    assert_error(c.get(API + "/ssh-keys/sshkey-doesnotexist0"), 404)


def test_outsiders_see_nothing(admin, org):
    key = create(admin, org, name="k", value=VALUE).json["data"]["id"]
    ws = make_ws(admin, org)
    _, _, stranger = make_user(admin)
    assert_error(stranger.get("%s/ssh-keys/%s" % (API, key)), 404)
    assert_error(stranger.patch("%s/ssh-keys/%s" % (API, key), {"data": {
        "type": "ssh-keys", "attributes": {"name": "mine"}}}), 404)
    assert_error(stranger.delete("%s/ssh-keys/%s" % (API, key)), 404)
    assert_error(stranger.get("%s/organizations/%s/ssh-keys" % (API, org)),
                 404)
    assert_error(create(stranger, org, name="x", value=VALUE), 404)
    assert_error(assign(stranger, ws, key), 404)
    assert names(admin, org) == ["k"]
    assert ws_key(admin, ws) is None
