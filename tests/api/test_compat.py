"""The metadata and admin endpoints of src/api/compat.c: IP ranges,
workspace resources, feature sets and organization subscriptions."""
import email.utils
import json
import time

import pytest

from conftest import assert_error, unique
from terrace import Daemon
from test_organizations import make_user
from test_state_versions import create, lock, make_state, make_ws, unlock

RANGES = ("api=192.0.2.0/24, 2001:db8::/32;notifications=198.51.100.7/32;"
          "sentinel=203.0.113.0/28;vcs=")


@pytest.fixture(scope="module")
def ranged():
    d = Daemon(backend="sqlite", extra_args=["--ip-ranges", RANGES])
    d.start()
    yield d
    d.close()


def http_date(secs):
    return email.utils.formatdate(secs, usegmt=True)


def test_ip_ranges_default_empty(anon):
    r = anon.get("/api/meta/ip-ranges")
    assert r.status == 200, r
    assert r.json == {"api": [], "notifications": [], "sentinel": [],
                      "vcs": []}


def test_ip_ranges_configured_and_not_modified(ranged):
    anon = ranged.client(token=None)
    r = anon.get("/api/meta/ip-ranges")
    assert r.status == 200, r
    assert r.json == {"api": ["192.0.2.0/24", "2001:db8::/32"],
                      "notifications": ["198.51.100.7/32"],
                      "sentinel": ["203.0.113.0/28"], "vcs": []}
    modified = email.utils.parsedate_to_datetime(r.headers["Last-Modified"])
    since = modified.timestamp()
    assert since <= time.time() + 1
    # at or after the ranges' time: not modified, no body
    for when in (since, since + 48 * 3600):
        r = anon.get("/api/meta/ip-ranges",
                     headers={"If-Modified-Since": http_date(when)})
        assert r.status == 304, r
        assert r.body == b""
    # before it, or a date that cannot be read: the ranges
    for value in (http_date(since - 1), "yesterday"):
        r = anon.get("/api/meta/ip-ranges",
                     headers={"If-Modified-Since": value})
        assert r.status == 200, r
        assert r.json["sentinel"] == ["203.0.113.0/28"]


@pytest.mark.parametrize("spec", [
    "api=192.0.2.0",             # no prefix length
    "api=192.0.2.0/33",
    "api=2001:db8::/129",
    "api=not-an-address/8",
    "web=192.0.2.0/24",          # unknown kind
    "api=192.0.2.0/24;api=192.0.2.0/25",
    "api",
])
def test_ip_ranges_bad_setting_refused_at_start(spec):
    d = Daemon(backend="sqlite", extra_args=["--ip-ranges", spec])
    try:
        with pytest.raises(RuntimeError):
            d.start()
        assert "ip-ranges" in d.log_text()
    finally:
        d.close()


RESOURCES = [
    {"mode": "managed", "type": "null_resource", "name": "a",
     "provider": "provider[\"registry.terraform.io/hashicorp/null\"]",
     "instances": [{"schema_version": 0, "attributes": {"id": "1"}}]},
    {"mode": "data", "type": "null_data_source", "name": "d",
     "provider": "provider[\"registry.terraform.io/hashicorp/null\"]",
     "instances": [{"schema_version": 0, "attributes": {}}]},
    {"mode": "managed", "type": "random_pet", "name": "p",
     "module": "module.pets",
     "provider": "module.pets.provider[\"registry.terraform.io/hashicorp/"
                 "random\"].other",
     "instances": [{"schema_version": 0, "attributes": {"id": "x"}}]},
    {"mode": "managed", "type": "aws_instance", "name": "old",
     "provider": "provider.aws",
     "instances": []},
]


def test_workspace_resources(admin, org):
    ws = make_ws(admin, org)
    r = admin.get("/api/v2/workspaces/%s/resources" % ws)
    assert r.status == 200, r
    assert r.json["data"] == []
    assert r.json["meta"]["pagination"]["total-count"] == 0

    lock(admin, ws)
    c = create(admin, ws, make_state(1, resources=RESOURCES))
    assert c.status == 201, c
    unlock(admin, ws)
    sv = c.json["data"]["id"]

    r = admin.get("/api/v2/workspaces/%s/resources" % ws)
    assert r.status == 200, r
    items = r.json["data"]
    assert [i["attributes"]["address"] for i in items] == [
        "null_resource.a", "module.pets.random_pet.p", "aws_instance.old"]
    a = items[0]
    assert a["type"] == "resources" and a["id"].startswith("wsr-")
    attrs = a["attributes"]
    assert attrs["name"] == "a" and attrs["module"] == "root"
    assert attrs["provider"] == "hashicorp/null"
    assert attrs["provider-type"] == "null_resource"
    assert attrs["modified-by-state-version-id"] == sv
    assert attrs["name-index"] is None and attrs["created-at"]
    assert items[1]["attributes"]["module"] == "module.pets"
    assert items[1]["attributes"]["provider"] == "hashicorp/random"
    assert items[2]["attributes"]["provider"] == "aws"
    assert r.json["meta"]["pagination"]["total-count"] == 3

    # ids are stable across requests; pages slice the list
    again = admin.get("/api/v2/workspaces/%s/resources" % ws).json["data"]
    assert [i["id"] for i in again] == [i["id"] for i in items]
    r = admin.get("/api/v2/workspaces/%s/resources?page[number]=2"
                  "&page[size]=2" % ws)
    assert r.status == 200, r
    assert [i["attributes"]["address"] for i in r.json["data"]] == [
        "aws_instance.old"]
    r = admin.get("/api/v2/workspaces/%s/resources?page[number]=999" % ws)
    assert r.status == 200 and r.json["data"] == []
    assert r.json["meta"]["pagination"]["total-count"] == 3
    assert r.json["meta"]["pagination"]["current-page"] == 999
    assert_error(admin.get("/api/v2/workspaces/%s/resources?page[size]=x"
                           % ws), 400)


def test_workspace_resources_hidden(admin, anon, org):
    ws = make_ws(admin, org)
    _, _, stranger = make_user(admin)
    assert_error(stranger.get("/api/v2/workspaces/%s/resources" % ws), 404)
    assert_error(admin.get("/api/v2/workspaces/ws-nope/resources"), 404)
    assert anon.get("/api/v2/workspaces/%s/resources" % ws).status == 401


def test_feature_sets(admin):
    r = admin.get("/api/v2/admin/feature-sets")
    assert r.status == 200, r
    names = [f["attributes"]["name"] for f in r.json["data"]]
    assert "Business" in names and "Trial" in names and "Free" in names
    assert all(f["type"] == "feature-sets" for f in r.json["data"])
    r = admin.get("/api/v2/admin/feature-sets?q=busi")
    assert [f["attributes"]["name"] for f in r.json["data"]] == ["Business"]
    r = admin.get("/api/v2/admin/feature-sets?q=nothing-like-it")
    assert r.status == 200 and r.json["data"] == []
    r = admin.get("/api/v2/admin/feature-sets?page[size]=2")
    assert len(r.json["data"]) == 2
    assert r.json["meta"]["pagination"]["total-count"] == len(names)


def sub_body(fs_id, type_="subscription", **attrs):
    d = {"type": type_, "attributes": attrs}
    if fs_id is not None:
        d["relationships"] = {"feature-set": {"data": {
            "type": "feature-sets", "id": fs_id}}}
    return {"data": d}


def business(admin):
    r = admin.get("/api/v2/admin/feature-sets?q=Business")
    assert r.status == 200, r
    return r.json["data"][0]["id"]


def test_subscription_update(admin, org):
    fs = business(admin)
    before = admin.get("/api/v2/organizations/%s/entitlement-set" % org)
    r = admin.post("/api/v2/admin/organizations/%s/subscription" % org,
                   sub_body(fs, **{"runs-ceiling": 10,
                                   "contract-start-at":
                                       "2024-05-01T12:00:00Z",
                                   "contract-user-limit": 1000,
                                   "contract-apply-limit": 5000}))
    assert r.status == 201, r
    d = r.json["data"]
    assert d["type"] == "subscriptions"
    assert d["attributes"]["runs-ceiling"] == 10
    assert d["relationships"]["feature-set"]["data"]["id"] == fs
    assert d["relationships"]["organization"]["data"]["id"] == org
    # there are no plans: every organization keeps every entitlement
    after = admin.get("/api/v2/organizations/%s/entitlement-set" % org)
    assert after.json == before.json


@pytest.mark.parametrize("body,status", [
    (sub_body(None), 422),
    (sub_body("fs-no-such-plan"), 422),
    (sub_body("fs-business", type_="organizations"), 409),
    (sub_body("fs-business", **{"runs-ceiling": 0}), 422),
    (sub_body("fs-business", **{"runs-ceiling": "ten"}), 422),
    (sub_body("fs-business", **{"contract-user-limit": -1}), 422),
    (sub_body("fs-business", **{"contract-start-at": "yesterday"}), 422),
    (sub_body("fs-business", **{"contract-start-at": 5}), 422),
    ({"data": []}, 422),
])
def test_subscription_bad_input(admin, org, body, status):
    assert_error(admin.post("/api/v2/admin/organizations/%s/subscription"
                            % org, body), status)


def test_subscription_malformed_json(admin, org):
    r = admin.request("POST", "/api/v2/admin/organizations/%s/subscription"
                      % org, raw=b"{not json",
                      ctype="application/vnd.api+json")
    assert_error(r, 400)


def test_admin_routes_only_for_site_admins(admin, anon, org):
    fs = business(admin)
    path = "/api/v2/admin/organizations/%s/subscription" % org
    assert_error(admin.post("/api/v2/admin/organizations/%s/subscription"
                            % unique("none"), sub_body(fs)), 404)
    uid, uname, user = make_user(admin)
    assert_error(user.get("/api/v2/admin/feature-sets"), 404)
    assert_error(user.post(path, sub_body(fs)), 404)
    assert anon.get("/api/v2/admin/feature-sets").status == 401
    assert anon.post(path, sub_body(fs)).status == 401


def test_entitlements_true_for_what_is_served(admin, org):
    r = admin.get("/api/v2/organizations/%s/entitlement-set" % org)
    assert r.status == 200, r
    a = r.json["data"]["attributes"]
    for served in ("operations", "state-storage", "cost-estimation", "teams",
                   "agents"):
        assert a[served] is True, served
    assert json.dumps(a)  # every value is a boolean
    assert all(isinstance(v, bool) for v in a.values())
