"""Workspace locking: lock, unlock, force-unlock, who holds the lock, the
409s go-tfe and the CLI read, bad bodies, and concurrent lockers."""
import threading

import pytest

from conftest import assert_error
from test_workspaces import API, add_member, add_owner, create_ws, \
    get_ws, make_user, org_token


def act(client, ws_id, action, body=None, raw=None):
    path = "%s/workspaces/%s/actions/%s" % (API, ws_id, action)
    if raw is not None:
        return client.post(path, raw=raw, ctype="application/vnd.api+json")
    return client.post(path, body)


def me(admin):
    r = admin.get(API + "/account/details")
    assert r.status == 200, r
    return r.json["data"]["id"]


@pytest.fixture
def ws(admin, org):
    return create_ws(admin, org)


def test_lock_unlock_cycle(admin, ws):
    wid = ws["id"]
    r = act(admin, wid, "lock", {"data": {"attributes": {
        "reason": "Locked by Terraform"}}})
    assert r.status == 200, r
    d = r.json["data"]
    assert d["id"] == wid and d["attributes"]["locked"] is True
    assert d["relationships"]["locked-by"]["data"] == {
        "type": "users", "id": me(admin)}
    assert get_ws(admin, wid)["attributes"]["locked"] is True
    r = act(admin, wid, "lock", {})
    assert_error(r, 409)
    assert "already locked" in r.json["errors"][0]["detail"]
    r = act(admin, wid, "unlock")
    assert r.status == 200, r
    assert r.json["data"]["attributes"]["locked"] is False
    assert r.json["data"]["relationships"]["locked-by"]["data"] is None
    r = act(admin, wid, "unlock")
    assert_error(r, 409)
    detail = r.json["errors"][0]["detail"]
    assert "unlocked" in detail and "is locked by" not in detail
    assert_error(act(admin, wid, "force-unlock"), 409)


@pytest.mark.parametrize("label,kw", [
    ("no body", {}),
    ("empty object", {"body": {}}),
    ("json:api reason", {"body": {"data": {"type": "workspaces",
                                           "attributes": {"reason": "r"}}}}),
    ("plain reason", {"body": {"reason": "Locked by Terraform"}}),
    ("null reason", {"body": {"reason": None}}),
])
def test_lock_bodies_accepted(admin, ws, label, kw):
    r = act(admin, ws["id"], "lock", **kw)
    assert r.status == 200, r
    assert act(admin, ws["id"], "unlock").status == 200


@pytest.mark.parametrize("label,kw,status", [
    ("malformed", {"raw": b"{reason"}, 400),
    ("reason type", {"body": {"reason": 5}}, 422),
    ("json:api reason type", {"body": {"data": {"attributes": {
        "reason": ["x"]}}}}, 422),
    ("reason too long", {"body": {"reason": "x" * 2000}}, 422),
])
def test_lock_bad_bodies(admin, ws, label, kw, status):
    assert_error(act(admin, ws["id"], "lock", **kw), status)
    assert get_ws(admin, ws["id"])["attributes"]["locked"] is False


def test_unknown_workspace(admin):
    for a in ("lock", "unlock", "force-unlock"):
        assert_error(act(admin, "ws-nope", a, {}), 404)


def test_unauthenticated(anon, admin, ws):
    for a in ("lock", "unlock", "force-unlock"):
        assert_error(act(anon, ws["id"], a, {}), 401)
    assert get_ws(admin, ws["id"])["attributes"]["locked"] is False


def test_other_user_needs_force_unlock(admin, org, ws):
    uid, uname, user = make_user(admin)
    try:
        add_member(admin, org, uname, user)
        add_owner(admin, org, uname)  # may lock and force-unlock
        wid = ws["id"]
        r = act(user, wid, "lock", {})
        assert r.status == 200, r
        assert r.json["data"]["relationships"]["locked-by"]["data"] == {
            "type": "users", "id": uid}
        # the site admin is not the holder: unlock is refused
        r = act(admin, wid, "unlock")
        assert_error(r, 409)
        assert "is locked by User" in r.json["errors"][0]["detail"]
        assert_error(act(admin, wid, "lock", {}), 409)
        assert get_ws(admin, wid)["attributes"]["locked"] is True
        # force-unlock works for anyone who may change the workspace
        r = act(admin, wid, "force-unlock")
        assert r.status == 200, r
        assert r.json["data"]["attributes"]["locked"] is False
        # another token of the same user is the same holder
        assert act(admin, wid, "lock", {}).status == 200
        assert_error(act(user, wid, "unlock"), 409)
        assert act(user, wid, "force-unlock").status == 200
    finally:
        admin.delete("%s/admin/users/%s" % (API, uid))


def test_org_token_holds_its_own_lock(admin, org, ws):
    ot = org_token(admin, org)
    wid = ws["id"]
    r = act(ot, wid, "lock", {})
    assert r.status == 200, r
    locked_by = r.json["data"]["relationships"]["locked-by"]["data"]
    assert locked_by["type"] == "authentication-tokens"
    r = act(admin, wid, "unlock")
    assert_error(r, 409)
    assert "is locked by" in r.json["errors"][0]["detail"]
    assert act(ot, wid, "unlock").status == 200
    assert act(admin, wid, "lock", {}).status == 200
    assert_error(act(ot, wid, "unlock"), 409)
    assert act(ot, wid, "force-unlock").status == 200


def test_concurrent_lock_has_one_winner(admin, ws):
    """Ten clients lock at once: exactly one gets 200, the others 409."""
    n = 10
    barrier = threading.Barrier(n)
    results = [None] * n

    def worker(i):
        barrier.wait()
        results[i] = act(admin, ws["id"], "lock", {}).status

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(results) == [200] + [409] * (n - 1), results
    # and concurrent unlocks: one winner again
    barrier = threading.Barrier(n)

    def unlocker(i):
        barrier.wait()
        results[i] = act(admin, ws["id"], "unlock").status

    threads = [threading.Thread(target=unlocker, args=(i,))
               for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(results) == [200] + [409] * (n - 1), results
    assert get_ws(admin, ws["id"])["attributes"]["locked"] is False


def test_lock_repeated_concurrency_rounds(admin, org):
    """Several rounds on fresh workspaces, to catch a lucky interleaving."""
    for _ in range(5):
        d = create_ws(admin, org)
        barrier = threading.Barrier(8)
        results = []
        lock = threading.Lock()

        def worker():
            barrier.wait()
            s = act(admin, d["id"], "lock", {}).status
            with lock:
                results.append(s)

        threads = [threading.Thread(target=worker) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert sorted(results) == [200] + [409] * 7, results
