"""Data safety: kill -9 the daemon while state is being written, restart it
on the same data, and check that no state was lost or corrupted.

Each iteration starts an inline write and an upload-URL write (each with
a state of random size and unique content), kills the daemon at a random
moment, restarts it and asserts:
  - the current state version is the previous one or one of the two new
    ones, and its download is byte-for-byte a state we sent (md5 match);
  - its serial attribute, the serial in its bytes and its outputs agree,
    so row, blob and outputs come from one write;
  - every finalized version downloads intact; pending and discarded ones
    are never current;
  - a retry of the interrupted upload afterwards either finalizes or is
    refused with 409, never anything else.
Runs on the backend named by TERRACE_TEST_BACKEND (run_api_sqlite.sh and run_api_pg.sh run it on each).
"""
import base64
import hashlib
import json
import os
import random
import threading
import time

from conftest import unique
from terrace import Daemon

ITERATIONS = 20
LINEAGE = "5f0e3a52-9d59-4c39-8f8e-0c2f3b1d7a40"


def state(serial, tag, size):
    pad = "".join(random.choice("abcdefghij") for _ in range(64))
    doc = {"version": 4, "terraform_version": "1.6.2", "serial": serial,
           "lineage": LINEAGE,
           "outputs": {"tag": {"value": tag, "type": "string"}},
           "resources": [{"mode": "managed", "type": "null_resource",
                          "name": "r%d" % i, "provider": "provider.null",
                          "instances": [{"attributes": {"pad": pad}}]}
                         for i in range(max(1, size // 200))]}
    return (json.dumps(doc, indent=2) + "\n").encode()


def md5(b):
    return hashlib.md5(b).hexdigest()


def quietly(fn):
    """Runs fn in a thread, swallowing the errors a killed server causes."""
    def run():
        try:
            fn()
        except Exception:  # noqa: BLE001 - the server dies mid-request
            pass
    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


def body(serial, st, inline):
    a = {"serial": serial, "md5": md5(st), "lineage": LINEAGE}
    if inline:
        a["state"] = base64.b64encode(st).decode()
    return {"data": {"type": "state-versions", "attributes": a}}


def check(c, ws, known, allowed, verified):
    """The invariants after a restart; returns the current state's md5.
    verified: ids of finalized versions already downloaded intact."""
    cur = c.get("/api/v2/workspaces/%s/current-state-version" % ws)
    assert cur.status == 200, cur
    d = cur.json["data"]
    a = d["attributes"]
    assert a["status"] == "finalized"
    got = c.get(a["hosted-state-download-url"])
    assert got.status == 200, got
    h = md5(got.body)
    assert h in known, "current state is not one we sent"
    assert got.body == known[h]
    assert h in allowed, "current state is neither the old nor a new one"
    doc = json.loads(got.body)
    assert doc["serial"] == a["serial"]
    outs = c.get("/api/v2/workspaces/%s/current-state-version-outputs" % ws)
    assert outs.status == 200
    vals = {o["attributes"]["name"]: o["attributes"]["value"]
            for o in outs.json["data"]}
    assert vals == {"tag": doc["outputs"]["tag"]["value"]}
    lst = c.get("/api/v2/workspaces/%s/state-versions?page[size]=100" % ws)
    for sv in lst.json["data"]:
        sa = sv["attributes"]
        assert sa["status"] in ("finalized", "pending", "discarded")
        if sa["status"] == "finalized":
            if sv["id"] not in verified:
                b = c.get(sa["hosted-state-download-url"]).body
                assert md5(b) in known and b == known[md5(b)]
                verified.add(sv["id"])
        else:
            assert sa["hosted-state-download-url"] is None
    return h


def test_kill9_during_state_writes():
    rnd_seed = int(os.environ.get("TERRACE_CRASH_SEED", time.time()))
    random.seed(rnd_seed)
    d = Daemon(backend=os.environ.get("TERRACE_TEST_BACKEND", "sqlite"))
    d.start()
    try:
        c = d.client()
        anon = d.client(token=None)
        org = unique("org")
        r = c.post("/api/v2/organizations", {"data": {
            "type": "organizations",
            "attributes": {"name": org, "email": "o@example.com"}}})
        assert r.status == 201, r
        r = c.post("/api/v2/organizations/%s/workspaces" % org, {"data": {
            "type": "workspaces", "attributes": {"name": "crash"}}})
        assert r.status == 201, r
        ws = r.json["data"]["id"]
        assert c.post("/api/v2/workspaces/%s/actions/lock" % ws,
                      {}).status == 200
        path = "/api/v2/workspaces/%s/state-versions" % ws
        known = {}
        st = state(1, "initial", 1000)
        known[md5(st)] = st
        assert c.post(path, body(1, st, True)).status == 201
        current = md5(st)
        serial = 1
        outcomes = {"old": 0, "inline": 0, "upload": 0}
        verified = set()
        for i in range(ITERATIONS):
            s_in, s_up = serial + 1, serial + 2
            st_in = state(s_in, "inline-%d" % i, random.randint(1000, 400000))
            st_up = state(s_up, "upload-%d" % i, random.randint(1000, 400000))
            known[md5(st_in)] = st_in
            known[md5(st_up)] = st_up
            r = c.post(path, body(s_up, st_up, False))
            assert r.status == 201, r
            up = r.json["data"]["attributes"]["hosted-state-upload-url"]
            threads = [quietly(lambda: c.post(path, body(s_in, st_in, True))),
                       quietly(lambda: anon.put(up, raw=st_up))]
            time.sleep(random.uniform(0, 0.5))
            d.kill9()
            for t in threads:
                t.join(timeout=30)
            d.start()
            allowed = {current, md5(st_in), md5(st_up)}
            h = check(c, ws, known, allowed, verified)
            outcomes["old" if h == current else
                     "inline" if h == md5(st_in) else "upload"] += 1
            # retrying the interrupted upload is safe
            r = anon.put(up, raw=st_up)
            assert r.status in (200, 409), (r, rnd_seed)
            current = check(c, ws, known, allowed, verified)
            serial = s_up
        print("seed %d outcomes %s" % (rnd_seed, outcomes))
    finally:
        d.close()
