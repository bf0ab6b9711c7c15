"""Blob garbage collection (src/domain/blob_gc.c) in a real daemon with a
grace period of a few seconds and a pass every second:

  - deleting a workspace makes its state, JSON state and configuration
    objects go, while a live workspace's objects stay and still download;
  - a configuration upload replaced by a second one leaves its first
    object behind only until the collector runs;
  - a crash (kill -9 at the fault site "blob.written", between storing an
    object and recording it) leaves an orphan that is removed only once it
    is older than the grace period, and nothing referenced is removed;
  - a store marked by another database (gc/database-id) is left alone.

Progress is observed, not waited for: /metrics counts passes, and each
check polls until a pass that started after the change has ended.
Runs on the backend named by TERRACE_TEST_BACKEND.
"""
import base64
import hashlib
import json
import os
import re
import time

from conftest import unique
from terrace import Daemon, config_tgz

API = "/api/v2"
GRACE = 3
OWNER = "gc/database-id"
LINEAGE = "0b7c3f4e-2a41-4d7e-9a36-6c1f0d2e8b15"


def daemon():
    return Daemon(backend=os.environ.get("TERRACE_TEST_BACKEND", "sqlite"),
                  extra_args=["--blob-gc-grace", str(GRACE),
                              "--blob-gc-interval", "1", "--executors", "0"])


def objects(d):
    """Every stored key with its file's mtime."""
    root = os.path.join(d.data_dir, "blobs", "objects")
    out = {}
    for dirpath, _, files in os.walk(root):
        for f in files:
            p = os.path.join(dirpath, f)
            out[os.path.relpath(p, root)] = os.stat(p).st_mtime
    return out


def passes(c):
    r = c.get("/metrics", token=None)
    assert r.status == 200, r
    m = re.search(rb"^terrace_blob_gc_passes_total (\d+)$", r.body, re.M)
    assert m, "no gc pass counter in /metrics"
    return int(m.group(1))


def after_pass(c, cond, timeout=30):
    """Polls until a collector pass that began after this call has ended
    and cond() holds; returns cond()'s last value."""
    start = passes(c)
    deadline = time.time() + timeout
    while time.time() < deadline:
        if passes(c) >= start + 2 and cond():
            return True
        time.sleep(0.1)
    return cond()


def wait_old(c, keys):
    """Returns once a whole pass ran after every object in keys (a dict
    of key: mtime) was older than the grace period."""
    newest = max(keys.values())
    assert after_pass(c, lambda: time.time() - newest > GRACE + 1)
    assert after_pass(c, lambda: True)


def state(serial, tag):
    doc = {"version": 4, "terraform_version": "1.6.2", "serial": serial,
           "lineage": LINEAGE,
           "outputs": {"tag": {"value": tag, "type": "string"}},
           "resources": []}
    return (json.dumps(doc) + "\n").encode()


def new_org(c):
    org = unique("org")
    r = c.post(API + "/organizations", {"data": {
        "type": "organizations",
        "attributes": {"name": org, "email": "o@example.com"}}})
    assert r.status == 201, r
    return org


def new_ws(c, org):
    r = c.post("%s/organizations/%s/workspaces" % (API, org), {"data": {
        "type": "workspaces", "attributes": {"name": unique("ws")}}})
    assert r.status == 201, r
    ws = r.json["data"]["id"]
    assert c.post("%s/workspaces/%s/actions/lock" % (API, ws),
                  {}).status == 200
    return ws


def post_state(c, ws, serial, tag, with_json=True):
    st = state(serial, tag)
    a = {"serial": serial, "md5": hashlib.md5(st).hexdigest(),
         "lineage": LINEAGE, "state": base64.b64encode(st).decode()}
    if with_json:
        a["json-state"] = base64.b64encode(b'{"values":{}}').decode()
    return c.post("%s/workspaces/%s/state-versions" % (API, ws),
                  {"data": {"type": "state-versions", "attributes": a}}), st


def tgz():
    return config_tgz(b'variable "x" {}\n')


def upload_config(c, anon, ws, times=1):
    r = c.post("%s/workspaces/%s/configuration-versions" % (API, ws),
               {"data": {"type": "configuration-versions",
                         "attributes": {"auto-queue-runs": False}}})
    assert r.status == 201, r
    url = r.json["data"]["attributes"]["upload-url"]
    for _ in range(times):
        r = anon.put(url, raw=tgz())
        assert r.status == 200, r
    return r


def current_state(c, ws):
    r = c.get("%s/workspaces/%s/current-state-version" % (API, ws))
    assert r.status == 200, r
    a = r.json["data"]["attributes"]
    got = c.get(a["hosted-state-download-url"])
    assert got.status == 200, got
    return a["serial"], got.body


def of(keys, ws):
    return {k for k in keys if "/%s/" % ws in k}


def test_deleted_workspace_objects_go_live_ones_stay():
    d = daemon().start()
    try:
        c, anon = d.client(), d.client(token=None)
        org = new_org(c)
        dead, live = new_ws(c, org), new_ws(c, org)
        for ws in (dead, live):
            r, _ = post_state(c, ws, 1, ws)
            assert r.status == 201, r
            upload_config(c, anon, ws)
        keys = objects(d)
        # state, JSON state and configuration of each
        assert len(of(keys, dead)) == 3, keys
        assert len(of(keys, live)) == 3, keys
        removed0 = metric(c, "terrace_blob_gc_removed_total")
        assert c.delete("%s/workspaces/%s" % (API, dead)).status in (200,
                                                                      204)
        gone = after_pass(c, lambda: not of(objects(d), dead))
        assert gone, "deleted workspace's objects remain: %s" % objects(d)
        # the live workspace's objects outlive passes made once they were
        # older than the grace period, and still serve its state
        wait_old(c, keys)
        assert of(objects(d), live) == of(keys, live)
        assert metric(c, "terrace_blob_gc_removed_total") >= removed0 + 3
        assert current_state(c, live) == (1, state(1, live))
    finally:
        d.close()


def metric(c, name):
    r = c.get("/metrics", token=None)
    m = re.search(rb"^" + name.encode() + rb" (\d+)$", r.body, re.M)
    assert m, name
    return int(m.group(1))


def test_unacknowledged_configuration_upload_goes():
    d = daemon().start()
    try:
        c, anon = d.client(), d.client(token=None)
        # the collector has marked the store as this database's
        assert after_pass(c, lambda: OWNER in objects(d))
        d.stop()
        # the object is stored but its write reported failed (a lost
        # acknowledgement): the upload fails and nothing records it
        d.env = {"TERRACE_FAULT": "blob.written:1"}
        d.start()
        ws = new_ws(c, new_org(c))
        r = c.post("%s/workspaces/%s/configuration-versions" % (API, ws),
                   {"data": {"type": "configuration-versions",
                             "attributes": {"auto-queue-runs": False}}})
        assert r.status == 201, r
        url = r.json["data"]["attributes"]["upload-url"]
        assert anon.put(url, raw=tgz()).status >= 500
        (orphan, written), = [(k, t) for k, t in objects(d).items()
                              if k != OWNER]
        assert orphan.startswith("config/%s/" % ws), orphan
        # the client retries; this one is recorded
        body = tgz()
        assert anon.put(url, raw=body).status == 200
        kept = set(objects(d)) - {orphan}
        assert len(kept) == 2, objects(d)  # the upload and the mark
        assert after_pass(c, lambda: orphan not in objects(d))
        assert time.time() - written >= GRACE
        wait_old(c, objects(d))
        assert set(objects(d)) == kept
        cv = r.json["data"]["id"]
        got = c.get("%s/configuration-versions/%s/download" % (API, cv))
        assert got.status == 200 and got.body == body, got
    finally:
        d.close()


def test_crash_between_write_and_record():
    d = daemon().start()
    try:
        c = d.client()
        ws = new_ws(c, new_org(c))
        r, st1 = post_state(c, ws, 1, "first", with_json=False)
        assert r.status == 201, r
        assert after_pass(c, lambda: OWNER in objects(d))
        recorded = objects(d)
        assert len(of(recorded, ws)) == 1
        d.stop()
        # the next object written kills the server before it is recorded
        d.env = {"TERRACE_FAULT": "blob.written:1:kill"}
        d.start()
        try:
            post_state(c, ws, 2, "second", with_json=False)
        except Exception:  # noqa: BLE001 - the server died mid-request
            pass
        d.proc.wait(timeout=30)
        assert d.proc.returncode == -9, d.log_text()
        orphans = {k: t for k, t in objects(d).items() if k not in recorded}
        assert len(orphans) == 1, objects(d)
        (orphan, written), = orphans.items()
        d.env = None
        d.start()
        c = d.client()
        # the crash lost the write, not the data before it
        assert current_state(c, ws) == (1, st1)
        deadline = time.time() + 30
        while orphan in objects(d) and time.time() < deadline:
            time.sleep(0.1)
        assert orphan not in objects(d), "the orphan was never removed"
        # ...and not before the grace period
        assert time.time() - written >= GRACE
        wait_old(c, recorded)
        for k in recorded:
            assert k in objects(d), "%s was removed" % k
        assert current_state(c, ws) == (1, st1)
        # the workspace takes the write again
        r, st2 = post_state(c, ws, 2, "again", with_json=False)
        assert r.status == 201, r
        assert current_state(c, ws) == (2, st2)
    finally:
        d.close()


def test_store_of_another_database_is_left_alone():
    d = daemon().start()
    try:
        c = d.client()
        ws = new_ws(c, new_org(c))
        r, _ = post_state(c, ws, 1, "x")
        assert r.status == 201, r
        assert after_pass(c, lambda: OWNER in objects(d))
        # another database's mark (as a store copied to a fresh database
        # would carry): deleting the workspace must not empty the store
        mark = os.path.join(d.data_dir, "blobs", "objects", OWNER)
        with open(mark, "wb") as f:
            f.write(b"db-someoneelse")
        errors0 = metric(c, "terrace_blob_gc_errors_total")
        before = of(objects(d), ws)
        assert c.delete("%s/workspaces/%s" % (API, ws)).status in (200, 204)
        wait_old(c, objects(d))
        assert of(objects(d), ws) == before
        assert metric(c, "terrace_blob_gc_errors_total") > errors0
        assert "belongs to another database" in d.log_text()
        # removing the mark hands the store to this database
        os.unlink(mark)
        assert after_pass(c, lambda: not of(objects(d), ws))
    finally:
        d.close()
