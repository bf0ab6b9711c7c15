"""`terrace admin blob copy --to URL` (src/cli/blob_copy.c): the move from
the demo's blob directory to another store.  A demo writes sealed state
and configuration objects and stops; the copy goes to a file:// URL; a
node started on the copy (--blob-url) serves the same state.  Running
the copy again skips everything; an object damaged at the destination is
copied again; an object that cannot be written fails the copy (exit 1)
and names the key; bad arguments exit 2 and copy nothing.

The CLI reads no database, so this runs on SQLite whatever
TERRACE_TEST_BACKEND says.  Remote backends add their URLs here.
"""
import base64
import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile

from conftest import unique
from terrace import BUILD, Daemon

API = "/api/v2"
LINEAGE = "7d2e0c55-3f1a-4b8e-a6d1-2c9e7f0b4a63"


def terrace(*args):
    p = subprocess.run([os.path.join(BUILD, "terrace"), "admin", "blob",
                        "copy"] + list(args), capture_output=True,
                       text=True, timeout=120,
                       env={k: v for k, v in os.environ.items()
                            if not k.startswith("TERRACE_")})
    return p.returncode, p.stdout, p.stderr


def counts(out):
    m = re.search(r"(\d+) objects: (\d+) copied \((\d+) bytes\), (\d+) "
                  r"already there \((\d+) bytes\), (\d+) failed", out)
    assert m, out
    return tuple(int(x) for x in m.groups())


def files(root):
    out = {}
    for dirpath, _, names in os.walk(os.path.join(root, "objects")):
        for n in names:
            p = os.path.join(dirpath, n)
            with open(p, "rb") as f:
                out[os.path.relpath(p, root)] = f.read()
    return out


def write_state(c, ws, serial, tag):
    st = (json.dumps({"version": 4, "terraform_version": "1.6.2",
                      "serial": serial, "lineage": LINEAGE,
                      "outputs": {"tag": {"value": tag, "type": "string"}},
                      "resources": []}) + "\n").encode()
    r = c.post("%s/workspaces/%s/state-versions" % (API, ws), {"data": {
        "type": "state-versions", "attributes": {
            "serial": serial, "md5": hashlib.md5(st).hexdigest(),
            "lineage": LINEAGE, "state": base64.b64encode(st).decode()}}})
    assert r.status == 201, r
    return st


def current(c, ws):
    r = c.get("%s/workspaces/%s/current-state-version" % (API, ws))
    assert r.status == 200, r
    got = c.get(r.json["data"]["attributes"]["hosted-state-download-url"])
    assert got.status == 200, got
    return got.body


def test_copy_then_serve_from_the_copy():
    d = Daemon(backend="sqlite").start()
    dst = tempfile.mkdtemp(prefix="terrace-blobcopy-")
    d2 = None
    try:
        c = d.client()
        org = unique("org")
        assert c.post(API + "/organizations", {"data": {
            "type": "organizations", "attributes": {
                "name": org, "email": "o@example.com"}}}).status == 201
        states = {}
        for i in range(3):
            r = c.post("%s/organizations/%s/workspaces" % (API, org),
                       {"data": {"type": "workspaces",
                                 "attributes": {"name": "w%d" % i}}})
            assert r.status == 201, r
            ws = r.json["data"]["id"]
            assert c.post("%s/workspaces/%s/actions/lock" % (API, ws),
                          {}).status == 200
            write_state(c, ws, 1, "one-%d" % i)
            states[ws] = write_state(c, ws, 2, "two-%d" % i)
        d.stop()
        src = os.path.join(d.data_dir, "blobs")
        before = files(src)
        n = len(before)
        assert len([k for k in before if k.startswith("objects/state/")]) \
            == 6, before
        # sealed at rest: no state appears in the clear
        assert not any(b"two-0" in b for b in before.values())
        total = sum(len(b) for b in before.values())

        url = "file://" + dst
        rc, out, err = terrace("--to", url, "--data-dir", d.data_dir)
        assert rc == 0, err
        assert counts(out) == (n, n, total, 0, 0, 0)
        assert files(dst) == before  # raw: the sealed bytes as they are
        assert files(src) == before  # the source is only read

        # resumable: a second run skips what is there and the same
        rc, out, err = terrace("--to", url, "--data-dir", d.data_dir)
        assert rc == 0, err
        assert counts(out) == (n, 0, 0, n, total, 0)

        # a damaged copy of the same size is copied again
        key = sorted(before)[0]
        p = os.path.join(dst, key)
        with open(p, "r+b") as f:
            f.seek(len(before[key]) // 2)
            b = f.read(1)
            f.seek(-1, 1)
            f.write(bytes([b[0] ^ 0xFF]))
        rc, out, err = terrace("--to", url, "--data-dir", d.data_dir)
        assert rc == 0, err
        assert counts(out)[1:4] == (1, len(before[key]), n - 1)
        assert files(dst) == before

        # a node on the copy serves every state (same key file, same db)
        d2 = Daemon(backend="sqlite", data_dir=d.data_dir,
                    extra_args=["--blob-url", url])
        shutil.rmtree(src)
        d2.start()
        c2 = d2.client()
        for ws, st in states.items():
            assert current(c2, ws) == st
    finally:
        if d2 is not None:
            d2.stop()
            shutil.rmtree(d2.tmp, ignore_errors=True)
        d.close()
        shutil.rmtree(dst, ignore_errors=True)


def test_copy_failures_and_bad_arguments():
    d = Daemon(backend="sqlite").start()
    dst = tempfile.mkdtemp(prefix="terrace-blobcopy-")
    try:
        c = d.client()
        org = unique("org")
        assert c.post(API + "/organizations", {"data": {
            "type": "organizations", "attributes": {
                "name": org, "email": "o@example.com"}}}).status == 201
        r = c.post("%s/organizations/%s/workspaces" % (API, org),
                   {"data": {"type": "workspaces",
                             "attributes": {"name": "w"}}})
        ws = r.json["data"]["id"]
        assert c.post("%s/workspaces/%s/actions/lock" % (API, ws),
                      {}).status == 200
        write_state(c, ws, 1, "a")
        write_state(c, ws, 2, "b")
        d.stop()
        src = os.path.join(d.data_dir, "blobs")
        keys = sorted(files(src))
        url = "file://" + dst

        # bad arguments: usage errors, nothing written
        for args in ([], ["--data-dir", d.data_dir],
                     ["--to", "ftp://x/y", "--data-dir", d.data_dir],
                     ["--to", "file://" + src, "--data-dir", d.data_dir],
                     ["--to", url, "--data-dir", d.data_dir, "--bogus", "1"],
                     ["--to", url, "--data-dir", dst + "/none"]):
            rc, out, err = terrace(*args)
            assert rc == 2, (args, rc, out, err)
            assert err.strip(), args
            assert files(dst) == {}, args

        # an object the destination cannot store fails the copy, names
        # the key, and the others are still copied
        blocked = keys[0]
        os.makedirs(os.path.join(dst, blocked, "in-the-way"))
        rc, out, err = terrace("--to", url, "--data-dir", d.data_dir)
        assert rc == 1, (out, err)
        assert blocked.split("objects/", 1)[1] in err
        n, copied, _, skipped, _, failed = counts(out)
        assert (n, copied, skipped, failed) == (len(keys), len(keys) - 1,
                                                0, 1)
        # cleared, the next run copies only that one
        shutil.rmtree(os.path.join(dst, blocked))
        rc, out, err = terrace("--to", url, "--data-dir", d.data_dir)
        assert rc == 0, err
        n, copied, _, skipped, _, failed = counts(out)
        assert (copied, skipped, failed) == (1, len(keys) - 1, 0)
        assert files(dst) == files(src)
    finally:
        d.close()
        shutil.rmtree(dst, ignore_errors=True)
