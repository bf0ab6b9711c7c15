"""Large state uploads through the one-pass path (check, digest, seal and
store while the body arrives): a state refused late in its body leaves no
object and no change behind, and the daemon's memory stays flat in the
state's size.  Runs on the blob store TERRACE_TEST_BLOB names."""
import hashlib
import http.client
import json
import os
import ssl
import tempfile
import urllib.parse

import pytest

from conftest import assert_error, unique
from terrace import Daemon

LINEAGE = "5e2d8c41-0a7b-4f63-9d1e-2c3b4a5f6e70"
MB = 1 << 20


def write_state(path, mb, serial, lineage=LINEAGE, corrupt_at=None):
    """Writes a v4 state of about mb MiB to path (resources with large
    attributes) and returns its md5.  corrupt_at: a fraction of the size
    where the text stops being JSON."""
    head = json.dumps({"version": 4, "terraform_version": "1.6.2",
                       "serial": serial, "lineage": lineage,
                       "outputs": {"o": {"value": "v", "type": "string"}}})
    blob = "x" * 4000
    h = hashlib.md5()
    size = 0
    bad_at = int(corrupt_at * mb * MB) if corrupt_at is not None else None
    with open(path, "wb") as f:
        def put(s):
            nonlocal size
            b = s.encode()
            f.write(b)
            h.update(b)
            size += len(b)
        put(head[:-1] + ', "resources": [')
        i = 0
        while size < mb * MB:
            if bad_at is not None and size >= bad_at:
                put('{"mode": "managed", "type": ]')
                bad_at = None
            r = {"mode": "managed", "type": "null_resource",
                 "name": "r%d" % i, "provider": "provider[\"null\"]",
                 "instances": [{"attributes": {"id": str(i),
                                               "blob": blob}}]}
            put(("," if i else "") + json.dumps(r))
            i += 1
        put("]}\n")
    return h.hexdigest()


def put_file(daemon, url, path):
    """PUTs the file at path to url (streamed, with a Content-Length);
    returns (status, body)."""
    u = urllib.parse.urlparse(url)
    ctx = ssl.create_default_context(cafile=daemon.ca)
    conn = http.client.HTTPSConnection(u.hostname, u.port, context=ctx,
                                       timeout=300)
    with open(path, "rb") as f:
        conn.request("PUT", u.path + "?" + u.query, body=f, headers={
            "Content-Length": str(os.path.getsize(path)),
            "Content-Type": "application/octet-stream"})
        resp = conn.getresponse()
        body = resp.read()
    conn.close()
    return resp.status, body


def hwm_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    raise AssertionError("no VmHWM for pid %d" % pid)


@pytest.fixture(scope="module")
def big(tmp_path_factory):
    """A daemon of its own (its peak RSS is this module's alone), an
    organization and a locked workspace in it."""
    d = Daemon(backend=os.environ.get("TERRACE_TEST_BACKEND", "sqlite"))
    d.start()
    c = d.client()
    org = unique("org")
    assert c.post("/api/v2/organizations", {"data": {
        "type": "organizations",
        "attributes": {"name": org, "email": "o@example.com"}}}).status == 201
    r = c.post("/api/v2/organizations/%s/workspaces" % org, {"data": {
        "type": "workspaces", "attributes": {"name": unique("ws")}}})
    assert r.status == 201, r
    ws = r.json["data"]["id"]
    assert c.post("/api/v2/workspaces/%s/actions/lock" % ws, {}).status == 200
    yield d, c, ws, tmp_path_factory.mktemp("states")
    d.close()


def pending(c, ws, serial, md5, lineage=LINEAGE):
    a = {"serial": serial, "md5": md5}
    if lineage is not None:
        a["lineage"] = lineage
    r = c.post("/api/v2/workspaces/%s/state-versions" % ws,
               {"data": {"type": "state-versions", "attributes": a}})
    assert r.status == 201, r
    return r.json["data"]["id"], \
        r.json["data"]["attributes"]["hosted-state-upload-url"]


def facts(d, c, ws):
    """What a refused upload must leave as it was: the stored objects,
    the versions and the current one."""
    lst = c.get("/api/v2/workspaces/%s/state-versions?page[size]=100" % ws)
    cur = c.get("/api/v2/workspaces/%s/current-state-version" % ws)
    return (d.blob_keys("state/"),
            [(s["id"], s["attributes"]["status"]) for s in lst.json["data"]],
            cur.json["data"]["id"] if cur.status == 200 else None)


def test_refused_late_leaves_nothing(big):
    d, c, ws, tmp = big
    path = str(tmp / "first.json")
    md5 = write_state(path, 4, 1)
    sv, url = pending(c, ws, 1, md5)
    assert put_file(d, url, path)[0] == 200
    first = c.get("/api/v2/state-versions/" + sv).json["data"]["attributes"]
    assert first["status"] == "finalized"

    # not JSON at 90 % of 100 MiB: the check fails after the backend has
    # been sent most of it
    path = str(tmp / "bad.json")
    md5 = write_state(path, 100, 2, corrupt_at=0.9)
    sv, url = pending(c, ws, 2, md5)
    before = facts(d, c, ws)
    status, body = put_file(d, url, path)
    assert status == 422, body
    assert b"not valid JSON" in body, body
    assert facts(d, c, ws) == before
    assert c.get("/api/v2/state-versions/" + sv).json["data"]["attributes"][
        "status"] == "pending"

    # a well-formed state of another lineage, its version declaring none:
    # refused by the successor rule once the lineage is read
    path = str(tmp / "other.json")
    md5 = write_state(path, 20, 3, lineage="other-lineage")
    sv2, url2 = pending(c, ws, 3, md5, lineage=None)
    before = facts(d, c, ws)
    status, body = put_file(d, url2, path)
    assert_error(type("R", (), {"status": status,
                                "json": json.loads(body)})(), 409)
    assert b"lineage" in body, body
    assert facts(d, c, ws) == before

    # the first refused version still takes its state when it is right
    path = str(tmp / "good.json")
    md5 = write_state(path, 4, 2)
    sv3, url3 = pending(c, ws, 2, md5)
    assert put_file(d, url3, path)[0] == 200
    cur = c.get("/api/v2/workspaces/%s/current-state-version" % ws)
    assert cur.json["data"]["id"] == sv3
    assert c.get(cur.json["data"]["attributes"]
                 ["hosted-state-download-url"]).body == open(path, "rb").read()


def test_memory_flat_for_200mb(big):
    d, c, ws, tmp = big
    path = str(tmp / "big.json")
    serial = 10
    md5 = write_state(path, 200, serial)
    sv, url = pending(c, ws, serial, md5)
    before = hwm_kb(d.proc.pid)
    status, body = put_file(d, url, path)
    assert status == 200, body
    after = hwm_kb(d.proc.pid)
    a = c.get("/api/v2/state-versions/" + sv).json["data"]["attributes"]
    assert a["status"] == "finalized" and a["size"] == os.path.getsize(path)
    # the state's bytes pass through two pipes, a parser block and one
    # backend part; the whole state would be 200 MiB
    assert after - before < 48 * 1024, (before, after)
    os.unlink(path)


def test_second_upload_is_answered_after_its_body(big):
    """A retried upload to a version already finalized is refused before
    its body is read; the client still sending the body must read the
    409, not a connection closed under it (a retry after a crash)."""
    d, c, ws, tmp = big
    path = str(tmp / "retry.json")
    write_state(path, 8, 900)
    with open(path, "rb") as f:
        md5 = hashlib.md5(f.read()).hexdigest()
    _, url = pending(c, ws, 900, md5)
    status, body = put_file(d, url, path)
    assert status == 200, body
    for _ in range(3):
        status, body = put_file(d, url, path)
        assert status == 409, body
        assert json.loads(body)["errors"][0]["status"] == "409"
