"""Vault as the key-encryption key, against a real Vault server that
tests/vault/run_vault.sh starts (TERRACE_TEST_VAULT_ADDR, _TOKEN; the
tests skip without it): a primary started with the key file is moved to
Vault by `terrace admin rekey --to vault` while it runs, everything it
stored reads back the same with the key file gone, a second rekey finds
nothing to do, and a node refuses to start when its Vault cannot be
reached or when it lacks the key the data is sealed under.  The rekey
runs again with the node's blobs on each remote backend that
run_vault.sh starts (TERRACE_TEST_REKEY_BLOBS: S3, GCS, Azure), with an
object large enough to go up in several parts."""
import base64
import hashlib
import json
import os
import re
import shutil
import subprocess
import time

import pytest

from conftest import unique
from terrace import BUILD, Daemon, free_port

API = "/api/v2"
ADDR = os.environ.get("TERRACE_TEST_VAULT_ADDR")
TOKEN = os.environ.get("TERRACE_TEST_VAULT_TOKEN")
LINEAGE = "6c1f1b0e-8a7b-4d36-9b36-0d8c1e0c2b11"

pytestmark = pytest.mark.skipif(
    not ADDR, reason="no Vault (tests/vault/run_vault.sh starts one)")


def vault_args(key="terrace"):
    return ["--vault-addr", ADDR, "--vault-key", key]


def vault_env():
    return {"VAULT_TOKEN": TOKEN}


def remote_blobs():
    """[(name, blob URL, environment)] of the remote stores run_vault.sh
    started, or []."""
    spec = os.environ.get("TERRACE_TEST_REKEY_BLOBS")
    return [(b["name"], b["url"], b["env"]) for b in json.loads(spec)] \
        if spec else []


def backend():
    return os.environ.get("TERRACE_TEST_BACKEND", "pg")


def sql(d, query):
    if d.backend == "pg":
        out = subprocess.check_output(
            ["psql", "-At", "-d", d.conninfo, "-c", query], text=True)
    else:
        out = subprocess.check_output(
            ["sqlite3", os.path.join(d.data_dir, "terrace.db"), query],
            text=True)
    return out.splitlines()


def sealed_values(d):
    """Key ids of the sealed values in the columns this test fills."""
    rows = sql(d, "SELECT value FROM variables WHERE value LIKE 'tre1:%' "
                  "UNION ALL SELECT value FROM state_version_outputs "
                  "WHERE value LIKE 'tre1:%'")
    return [r.split(":")[1] for r in rows]


def blob_url(d):
    """The node's --blob-url, or None (its data dir)."""
    a = d.extra_args
    return a[a.index("--blob-url") + 1] if "--blob-url" in a else None


def object_key_ids(d):
    """The key id in the header of every stored object, read from the
    store itself: a remote one is copied raw to a directory first."""
    root = os.path.join(d.data_dir, "blobs")
    if blob_url(d):
        root = os.path.join(d.tmp, "snapshot-%s" % unique("s"))
        args = [os.path.join(BUILD, "terrace"), "admin", "blob", "copy",
                "--to", "file://" + root, "--data-dir", d.data_dir,
                "--blob-url", blob_url(d)]
        r = subprocess.run(args, capture_output=True, text=True,
                           env=dict(os.environ, **(d.env or {})),
                           timeout=120)
        assert r.returncode == 0, r.stderr + r.stdout
    ids = []
    for dirpath, _, files in os.walk(os.path.join(root, "objects")):
        for f in files:
            with open(os.path.join(dirpath, f), "rb") as fh:
                h = fh.read(80)
            if h[:4] == b"TRB1":
                ids.append(h[5:5 + h[4]].decode())
    return ids


def rekey(d, *extra, fault=None):
    args = [os.path.join(BUILD, "terrace"), "admin", "rekey", "--to",
            "vault", "--data-dir", d.data_dir] + vault_args() + list(extra)
    if d.backend == "pg":
        args += ["--role", "primary", "--database-url", d.conninfo]
    if blob_url(d):
        args += ["--blob-url", blob_url(d)]
    env = dict(os.environ)
    env.update(d.env or {})
    env.update(vault_env())
    if fault:
        env["TERRACE_FAULT"] = fault
    return subprocess.run(args, capture_output=True, text=True, env=env,
                          timeout=300)


def state_file(serial, pad=0):
    doc = {"version": 4, "terraform_version": "1.6.2", "serial": serial,
           "lineage": LINEAGE,
           "outputs": {"pw": {"value": "hunter2-%d" % serial,
                              "type": "string", "sensitive": True}},
           "resources": [], "check_results": None}
    if pad:
        # incompressible text: a sealed object of several upload parts
        doc["outputs"]["pad"] = {"value": base64.b64encode(
            os.urandom(pad * 3 // 4)).decode(), "type": "string"}
    return (json.dumps(doc, indent=2) + "\n").encode()


def workspace(c):
    org = unique("org")
    assert c.post(API + "/organizations", {"data": {
        "type": "organizations",
        "attributes": {"name": org, "email": "o@example.com"}}}).status == 201
    r = c.post("%s/organizations/%s/workspaces" % (API, org), {"data": {
        "type": "workspaces", "attributes": {"name": "w"}}})
    assert r.status == 201, r
    return r.json["data"]["id"]


def put_state(c, ws, serial, pad=0):
    st = state_file(serial, pad)
    assert c.post("%s/workspaces/%s/actions/lock" % (API, ws),
                  {}).status == 200
    r = c.post("%s/workspaces/%s/state-versions" % (API, ws), {"data": {
        "type": "state-versions",
        "attributes": {"serial": serial, "md5": hashlib.md5(st).hexdigest(),
                       "lineage": LINEAGE,
                       "state": base64.b64encode(st).decode()}}})
    assert r.status == 201, r
    assert c.post("%s/workspaces/%s/actions/unlock" % (API, ws),
                  {}).status == 200
    return r.json["data"]["id"], st


def put_var(c, ws, key, value):
    r = c.post("%s/workspaces/%s/vars" % (API, ws), {"data": {
        "type": "vars", "attributes": {"key": key, "value": value,
                                       "category": "terraform",
                                       "sensitive": True}}})
    assert r.status == 201, r


def read_back(d, svs):
    """Every state version's file and sensitive output, as the API gives
    them."""
    c, anon = d.client(), d.client(token=None)
    for sv, st in svs:
        r = c.get("%s/state-versions/%s" % (API, sv))
        assert r.status == 200, r
        url = r.json["data"]["attributes"]["hosted-state-download-url"]
        got = anon.get(url)
        assert got.status == 200 and got.body == st, got
        r = c.get("%s/state-versions/%s/outputs" % (API, sv))
        assert r.status == 200, r
        out = [o for o in r.json["data"]
               if o["attributes"]["name"] == "pw"][0]
        r = c.get("%s/state-version-outputs/%s" % (API, out["id"]))
        assert r.status == 200, r
        want = json.loads(st)["outputs"]["pw"]["value"]
        assert r.json["data"]["attributes"]["value"] == want, r


def first_gc_pass(d, timeout=30):
    """Waits for the node's first blob GC pass: it writes the store's
    owner mark (an object) then, and the objects counted below must not
    change under the test's feet."""
    c = d.client()
    deadline = time.monotonic() + timeout
    while True:
        r = c.get("/metrics", token=None)
        assert r.status == 200, r
        m = re.search(rb"^terrace_blob_gc_passes_total (\d+)$", r.body, re.M)
        assert m, "no gc pass counter in /metrics"
        if int(m.group(1)) >= 1:
            return
        assert time.monotonic() < deadline, "no blob GC pass in %d s" % timeout
        time.sleep(0.1)


def rekey_file_to_vault(d, pad=0, blob_env=None):
    """Fills d under the key file, moves it to Vault with rekey while it
    runs, checks every value and object, and leaves d running on Vault
    alone (its key file removed)."""
    d.start()
    first_gc_pass(d)
    c = d.client()
    ws = workspace(c)
    svs = [put_state(c, ws, 1, pad)]
    put_var(c, ws, "old_secret", "s3cret-old")
    local = [k for k in sealed_values(d)]
    assert local and all(k.startswith("local-") for k in local)
    assert object_key_ids(d) and \
        all(k.startswith("local-") for k in object_key_ids(d))

    # restarted with Vault and still the key file: reads the old,
    # writes under Vault
    d.stop()
    d.extra_args += vault_args()
    d.env = dict(blob_env or {}, **vault_env())
    d.start()
    read_back(d, svs)
    svs.append(put_state(c, ws, 2))
    put_var(c, ws, "new_secret", "s3cret-new")
    ids = sealed_values(d)
    assert any(k.startswith("vault-terrace-") for k in ids)
    assert any(k.startswith("local-") for k in ids)

    # the put of the first object is abandoned at its last bytes: that
    # object stays as it was, still read; the run fails, saying so
    objs = len(object_key_ids(d))
    r = rekey(d, fault="rekey.check:1")
    assert r.returncode == 1, r.stderr + r.stdout
    assert re.search(r"blob objects: \d+ sealed again, \d+ already under "
                     r"the new key, 0 changed meanwhile by a node, 1 failed",
                     r.stdout), r.stdout + r.stderr
    assert "run it again" in r.stderr, r.stderr
    ids = object_key_ids(d)
    assert len(ids) == objs, ids
    assert sum(k.startswith("local-") for k in ids) >= 1, ids
    read_back(d, svs)
    # killed in the middle of an object: nothing half-written is seen
    r = rekey(d, fault="rekey.check:1:kill")
    assert r.returncode == -9, r.stderr + r.stdout
    assert len(object_key_ids(d)) == objs
    read_back(d, svs)

    # rekey while it runs: finishes what the runs above left
    r = rekey(d)
    assert r.returncode == 0, r.stderr + r.stdout
    assert "installation key is now vault-terrace-" in r.stdout, r.stdout
    m = re.search(r"blob objects: (\d+) sealed again, \d+ already under "
                  r"the new key, \d+ changed meanwhile by a node, 0 failed",
                  r.stdout)
    assert m and int(m.group(1)) >= 1, r.stdout
    ids = sealed_values(d)
    assert ids and all(k.startswith("vault-terrace-") for k in ids), ids
    objs = object_key_ids(d)
    assert objs and all(k.startswith("vault-terrace-") for k in objs)
    read_back(d, svs)

    # a second run: nothing left to do
    r = rekey(d)
    assert r.returncode == 0, r.stderr
    assert "database values: 0 sealed again" in r.stdout, r.stdout
    assert "blob objects: 0 sealed again" in r.stdout, r.stdout

    # the key file is no longer needed
    d.stop()
    os.unlink(os.path.join(d.data_dir, "kek"))
    d.start()
    read_back(d, svs)


def test_rekey_file_to_vault(tmp_path):
    d = Daemon(backend=backend(), extra_args=["--executors", "0"])
    try:
        rekey_file_to_vault(d)
        # a node without the vault settings is refused, saying why
        d.stop()
        d.extra_args = ["--executors", "0"]
        d.env = None
        with pytest.raises(RuntimeError) as ei:
            d.start()
        assert "sealed under vault key vault-terrace-" in str(ei.value)
        assert d.proc.returncode != 0
    finally:
        d.close()


def test_vault_down_at_start_is_refused():
    port = free_port()  # nothing listens there
    d = Daemon(backend=backend(),
               extra_args=["--executors", "0", "--vault-addr",
                           "http://127.0.0.1:%d" % port,
                           "--vault-key", "terrace"],
               env=vault_env())
    try:
        with pytest.raises(RuntimeError) as ei:
            d.start()
        assert d.proc.returncode != 0
        msg = str(ei.value)
        assert "cannot reach vault at http://127.0.0.1:%d" % port in msg
        assert "not starting" in msg
        assert TOKEN not in msg
    finally:
        d.close()


def test_vault_missing_key_is_refused():
    d = Daemon(backend=backend(),
               extra_args=["--executors", "0"] + vault_args("no-such-key"),
               env=vault_env())
    try:
        with pytest.raises(RuntimeError) as ei:
            d.start()
        assert "no transit key no-such-key" in str(ei.value)
    finally:
        d.close()


@pytest.mark.parametrize("name,url,env", remote_blobs() or [
    pytest.param(None, None, None, marks=pytest.mark.skip(
        reason="no remote blob stores (run_vault.sh starts them)"))])
def test_rekey_remote_blob_store(name, url, env):
    """The same move with the node's objects on S3, GCS or Azure: every
    object, a 12 MiB one too, is streamed back sealed under Vault."""
    d = Daemon(backend=backend(),
               extra_args=["--executors", "0", "--blob-url", url], env=env)
    try:
        rekey_file_to_vault(d, pad=12 << 20, blob_env=env)
    finally:
        d.close()
