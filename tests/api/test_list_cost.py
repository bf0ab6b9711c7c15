"""A page of a list costs the same number of SQL statements whatever its
size: lists read each item's parts (runs, configuration versions,
variables, tags, outputs) a page at a time, never with statements per
item.  Debug builds (the ones the tests run) report the statements a
request ran in the X-Terrace-Statements header."""
import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from conftest import unique  # noqa: E402
from terrace import queue_run  # noqa: E402
from test_state_versions import create, lock, make_state, unlock  # noqa: E402

N = 12  # items in the big page


def statements(client, path):
    r = client.get(path)
    assert r.status == 200, r
    h = {k.lower(): v for k, v in r.headers.items()}
    assert "x-terrace-statements" in h, \
        "the daemon must be a debug build (it reports statements)"
    return int(h["x-terrace-statements"]), r.json


def assert_flat(client, path, want_items):
    """The statements of page[size]=1 and of a page of want_items."""
    sep = "&" if "?" in path else "?"
    one, doc1 = statements(client, path + sep + "page%5Bsize%5D=1")
    many, doc = statements(client, path + sep + "page%5Bsize%5D=100")
    assert len(doc1["data"]) == 1, doc1
    assert len(doc["data"]) == want_items, len(doc["data"])
    assert many == one, \
        "%s: %d statements for 1 item, %d for %d" % (path, one, many,
                                                      want_items)
    return many


@pytest.fixture(scope="module")
def busy_org(admin):
    """An organization with N workspaces, each with variables, tags, a
    lock, state versions and pending runs."""
    name = unique("org")
    r = admin.post("/api/v2/organizations", {
        "data": {"type": "organizations",
                 "attributes": {"name": name, "email": "o@example.com"}}})
    assert r.status == 201, r
    ws = []
    for i in range(N):
        r = admin.post("/api/v2/organizations/%s/workspaces" % name, {
            "data": {"type": "workspaces", "attributes": {
                "name": "w%02d" % i, "tag-names": ["a", "b%d" % i]}}})
        assert r.status == 201, r
        w = r.json["data"]["id"]
        ws.append(w)
        for k in ("x", "y"):
            r = admin.post("/api/v2/workspaces/%s/vars" % w, {"data": {
                "type": "vars", "attributes": {
                    "key": k, "value": "v", "category": "terraform"}}})
            assert r.status == 201, r
    first = ws[0]
    # state versions of the first workspace
    lock(admin, first)
    for serial in range(1, N + 1):
        r = create(admin, first, make_state(serial))
        assert r.status == 201, r
    unlock(admin, first)
    # runs stay pending behind a lock held by a user
    lock(admin, first)
    for _ in range(N):
        queue_run(admin, first, b'resource "terraform_data" "a" {}\n')
    yield name, ws
    unlock(admin, first)
    admin.delete("/api/v2/organizations/" + name)


def test_workspace_list(admin, busy_org):
    org, _ = busy_org
    assert_flat(admin, "/api/v2/organizations/%s/workspaces" % org, N)
    # the items still carry what was read per page
    _, doc = statements(admin, "/api/v2/organizations/%s/workspaces"
                        "?search%%5Bname%%5D=w00" % org)
    w = doc["data"][0]
    assert len(w["relationships"]["vars"]["data"]) == 2, w
    assert sorted(w["attributes"]["tag-names"]) == ["a", "b0"], w
    assert w["relationships"]["current-run"]["data"] is not None, w
    assert w["relationships"]["latest-run"]["data"] is not None, w
    assert w["relationships"]["current-configuration-version"][
        "data"] is not None, w


def test_page_items_are_the_reads(admin, busy_org):
    """A page reads its workspaces' runs, configuration versions, tags
    and variables for the whole page (on PostgreSQL by one aggregate per
    table, not the read's per-row subqueries): every item is the same
    document as the workspace's own read, the locked one with pending
    runs included."""
    org, ws = busy_org
    # one more workspace, its tags and variables in another order
    r = admin.post("/api/v2/organizations/%s/workspaces" % org, {
        "data": {"type": "workspaces", "attributes": {
            "name": "w99", "tag-names": ["z", "a-b", "m"]}}})
    assert r.status == 201, r
    extra = r.json["data"]["id"]
    for k in ("b", "a", "c"):
        r = admin.post("/api/v2/workspaces/%s/vars" % extra, {"data": {
            "type": "vars", "attributes": {
                "key": k, "value": "v", "category": "env"}}})
        assert r.status == 201, r
    try:
        for order in ("", "&sort=name", "&sort=-name",
                      "&sort=-current-run.created-at",
                      "&sort=latest-change-at"):
            _, doc = statements(admin, "/api/v2/organizations/%s/workspaces"
                                "?page%%5Bsize%%5D=100%s" % (org, order))
            assert len(doc["data"]) == N + 1, (order, doc)
            for item in doc["data"]:
                _, one = statements(admin, "/api/v2/workspaces/" + item["id"])
                assert item == one["data"], (order, item, one["data"])
        _, doc = statements(admin, "/api/v2/organizations/%s/workspaces"
                            "?page%%5Bsize%%5D=5&page%%5Bnumber%%5D=2"
                            "&sort=name" % org)
        assert [w["attributes"]["name"] for w in doc["data"]] == \
            ["w05", "w06", "w07", "w08", "w09"], doc
    finally:
        admin.delete("/api/v2/workspaces/" + extra)


def test_one_workspace_costs_what_a_page_costs(admin, busy_org):
    org, ws = busy_org
    one, _ = statements(admin, "/api/v2/workspaces/" + ws[1])
    page, _ = statements(admin, "/api/v2/organizations/%s/workspaces"
                         "?page%%5Bsize%%5D=100" % org)
    # a list adds its count; nothing per item
    assert page <= one + 2, (one, page)


def test_run_list(admin, busy_org):
    _, ws = busy_org
    assert_flat(admin, "/api/v2/workspaces/%s/runs" % ws[0], N)


def test_state_version_list(admin, busy_org):
    org, _ = busy_org
    assert_flat(admin, "/api/v2/state-versions?filter%%5Borganization%%5D"
                "%%5Bname%%5D=%s&filter%%5Bworkspace%%5D%%5Bname%%5D=w00"
                % org, N)


def test_variable_list(admin, busy_org):
    _, ws = busy_org
    for i in range(N):
        r = admin.post("/api/v2/workspaces/%s/vars" % ws[2], {"data": {
            "type": "vars", "attributes": {
                "key": "k%d" % i, "value": "v", "category": "env"}}})
        assert r.status == 201, r
    few, doc = statements(admin, "/api/v2/workspaces/%s/vars" % ws[1])
    assert len(doc["data"]) == 2, doc
    many, doc = statements(admin, "/api/v2/workspaces/%s/vars" % ws[2])
    assert len(doc["data"]) == N + 2, doc
    assert many == few, (few, many)


def test_team_member_lists_cost_the_same(admin, busy_org):
    """A user who sees the workspaces through a team (not a site admin):
    the permission facts are read for the page, not per workspace."""
    org, ws = busy_org
    name = unique("u")
    r = admin.post("/api/v2/admin/users", {"data": {"type": "users",
                   "attributes": {"username": name,
                                  "email": name + "@example.com"}}})
    assert r.status == 201, r
    uid = r.json["data"]["id"]
    r = admin.post("/api/v2/admin/users/%s/authentication-tokens" % uid, {})
    assert r.status == 201, r
    user = admin.with_token(r.json["data"]["attributes"]["token"])
    try:
        r = admin.post("/api/v2/organizations/%s/organization-memberships"
                       % org, {"data": {"type": "organization-memberships",
                                        "attributes": {"email": name +
                                                       "@example.com"}}})
        assert r.status == 201, r
        r = user.post("/api/v2/organization-memberships/%s/actions/accept"
                      % r.json["data"]["id"], {})
        assert r.status == 200, r
        r = admin.post("/api/v2/organizations/%s/teams" % org, {"data": {
            "type": "teams", "attributes": {"name": unique("t")}}})
        assert r.status == 201, r
        team = r.json["data"]["id"]
        r = admin.post("/api/v2/teams/%s/relationships/users" % team,
                       {"data": [{"type": "users", "id": name}]})
        assert r.status == 204, r
        for w in ws:
            r = admin.post("/api/v2/team-workspaces", {"data": {
                "type": "team-workspaces", "attributes": {"access": "read"},
                "relationships": {
                    "team": {"data": {"type": "teams", "id": team}},
                    "workspace": {"data": {"type": "workspaces",
                                           "id": w}}}}})
            assert r.status == 201, r
        assert_flat(user, "/api/v2/organizations/%s/workspaces" % org, N)
        _, doc = statements(user, "/api/v2/workspaces/" + ws[3])
        p = doc["data"]["attributes"]["permissions"]
        assert p["can-update"] is False and p["can-read-settings"] is True, p
    finally:
        admin.delete("/api/v2/admin/users/" + uid)


def test_membership_list_include_teams(admin):
    """include=teams on the membership list reads the page's teams with
    one query, not one per team: N members, each in a team of its own."""
    org = unique("org")
    r = admin.post("/api/v2/organizations", {"data": {
        "type": "organizations",
        "attributes": {"name": org, "email": "o@example.com"}}})
    assert r.status == 201, r
    uids, teams = [], set()
    try:
        for _ in range(N):
            name = unique("u")
            r = admin.post("/api/v2/admin/users", {"data": {
                "type": "users", "attributes": {
                    "username": name, "email": name + "@example.com"}}})
            assert r.status == 201, r
            uids.append(r.json["data"]["id"])
            r = admin.post("/api/v2/admin/users/%s/authentication-tokens"
                           % uids[-1], {})
            assert r.status == 201, r
            user = admin.with_token(r.json["data"]["attributes"]["token"])
            r = admin.post("/api/v2/organizations/%s/organization-memberships"
                           % org, {"data": {
                               "type": "organization-memberships",
                               "attributes": {"email": name +
                                              "@example.com"}}})
            assert r.status == 201, r
            r = user.post("/api/v2/organization-memberships/%s/actions/"
                          "accept" % r.json["data"]["id"], {})
            assert r.status == 200, r
            r = admin.post("/api/v2/organizations/%s/teams" % org, {"data": {
                "type": "teams", "attributes": {"name": unique("t")}}})
            assert r.status == 201, r
            teams.add(r.json["data"]["id"])
            r = admin.post("/api/v2/teams/%s/relationships/users"
                           % r.json["data"]["id"],
                           {"data": [{"type": "users", "id": name}]})
            assert r.status == 204, r
        path = "/api/v2/organizations/%s/organization-memberships" \
            "?include=teams" % org
        assert_flat(admin, path, N + 1)  # and the owner
        _, doc = statements(admin, path + "&page%5Bsize%5D=100")
        got = {t["id"]: t for t in doc["included"]}
        assert teams <= set(got), (teams, set(got))
        assert len(got) == len(doc["included"])  # each team once
        for m in doc["data"]:
            for t in m["relationships"]["teams"]["data"]:
                assert t["id"] in got
        some = got[sorted(teams)[0]]
        assert some["type"] == "teams"
        assert some["attributes"]["users-count"] == 1
        assert some["relationships"]["organization"]["data"]["id"] == org
    finally:
        for uid in uids:
            admin.delete("/api/v2/admin/users/" + uid)
        admin.delete("/api/v2/organizations/" + org)
