"""Secrets at rest, seen from outside: what a copy of the database holds
is not enough to forge a signed URL (the URL-signing key is derived from
the key-encryption key, not stored), signed URLs keep working across a
restart of the daemon, and the log chunks of a running phase are stored
sealed.  Each test starts its own daemon so it can stop it and read the
database behind it (sqlite3 on the demo's file, psql on PostgreSQL)."""
import base64
import hashlib
import hmac
import json
import os
import subprocess
import time
import urllib.parse

import pytest

from conftest import assert_error, unique
from terrace import Daemon

API = "/api/v2"


def backend():
    return os.environ.get("TERRACE_TEST_BACKEND", "sqlite")


@pytest.fixture
def d():
    dm = Daemon(backend=backend(), extra_args=["--executors", "0"])
    dm.start()
    yield dm
    dm.close()


def sql(d, query):
    """Rows of query on the daemon's database, as lists of text."""
    if d.backend == "pg":
        out = subprocess.check_output(
            ["psql", "-At", "-F", "\x1f", "-d", d.conninfo, "-c", query],
            text=True)
    else:
        out = subprocess.check_output(
            ["sqlite3", "-separator", "\x1f",
             os.path.join(d.data_dir, "terrace.db"), query], text=True)
    return [line.split("\x1f") for line in out.splitlines() if line]


def state_file(serial):
    doc = {"version": 4, "terraform_version": "1.6.2", "serial": serial,
           "lineage": "6c1f1b0e-8a7b-4d36-9b36-0d8c1e0c2b11",
           "outputs": {}, "resources": [], "check_results": None}
    return (json.dumps(doc, indent=2) + "\n").encode()


def new_state(c):
    org = unique("org")
    r = c.post(API + "/organizations", {"data": {
        "type": "organizations",
        "attributes": {"name": org, "email": "o@example.com"}}})
    assert r.status == 201, r
    r = c.post("%s/organizations/%s/workspaces" % (API, org), {"data": {
        "type": "workspaces", "attributes": {"name": "w"}}})
    assert r.status == 201, r
    ws = r.json["data"]["id"]
    assert c.post("%s/workspaces/%s/actions/lock" % (API, ws),
                  {}).status == 200
    st = state_file(1)
    r = c.post("%s/workspaces/%s/state-versions" % (API, ws), {"data": {
        "type": "state-versions",
        "attributes": {"serial": 1, "md5": hashlib.md5(st).hexdigest(),
                       "lineage": "6c1f1b0e-8a7b-4d36-9b36-0d8c1e0c2b11",
                       "state": base64.b64encode(st).decode()}}})
    assert r.status == 201, r
    return r.json["data"], st


def test_signed_urls_survive_a_restart(d):
    c = d.client()
    anon = d.client(token=None)
    sv, st = new_state(c)
    url = sv["attributes"]["hosted-state-download-url"]
    r = anon.get(url)
    assert r.status == 200 and r.body == st, r
    d.stop()
    d.start()
    r = anon.get(url)
    assert r.status == 200 and r.body == st, r
    # and a URL made after the restart too, the same way
    r = c.get("%s/state-versions/%s" % (API, sv["id"]))
    assert r.status == 200, r
    url2 = r.json["data"]["attributes"]["hosted-state-download-url"]
    assert anon.get(url2).body == st


def test_database_copy_forges_nothing(d):
    """The reported attack: with only the database, sign a download URL of
    another organization's state valid for a century.  Every value in
    site_settings is tried as the key; none works."""
    c = d.client()
    anon = d.client(token=None)
    sv, st = new_state(c)
    url = sv["attributes"]["hosted-state-download-url"]
    path = urllib.parse.urlsplit(url).path
    exp = "4102444800"  # 2100-01-01
    rows = sql(d, "SELECT key, value FROM site_settings")
    assert rows, "site_settings is empty"
    assert "url-signing-key" not in [k for k, _ in rows]
    for _, value in rows:
        sig = hmac.new(value.encode(), ("%s\n%s" % (path, exp)).encode(),
                       hashlib.sha256).hexdigest()
        forged = "%s%s?expires=%s&sig=%s" % (d.url, path, exp, sig)
        assert_error(anon.get(forged), 404)
    # the genuine URL still works
    assert anon.get(url).body == st


# ---- log chunks of a running phase ------------------------------------------

MARKER = "at-rest-marker-7f3a9c"

# A stand-in for tofu whose plan prints MARKER, then keeps running (until
# the run is canceled) so the log stays in the database as chunks.
FAKE_TOFU = r"""#!/bin/sh
case "$1" in
version)
    echo '{"terraform_version":"1.8.0","platform":"linux_amd64"}'
    exit 0 ;;
init)
    echo "Initializing the backend..."
    exit 0 ;;
plan)
    echo "planning with %s"
    exec sleep 120 ;;
esac
exit 1
""" % MARKER


@pytest.fixture
def running(tmp_path):
    tofu = tmp_path / "tofu"
    tofu.write_text(FAKE_TOFU)
    tofu.chmod(0o755)
    tmp_path.chmod(0o755)
    dm = Daemon(backend=backend(),
                extra_args=["--executors", "1", "--tofu-bin", str(tofu)])
    dm.start()
    c = dm.client()
    r = c.get(API + "/admin/terraform-versions")
    if r.status == 200 and not r.json["data"]:  # a primary: register it
        sha = hashlib.sha256(tofu.read_bytes()).hexdigest()
        r = c.post(API + "/admin/terraform-versions", {"data": {
            "type": "terraform-versions",
            "attributes": {"version": "1.8.0", "path": str(tofu),
                           "sha": sha, "enabled": True}}})
        assert r.status == 201, r
    yield dm
    dm.close()


def test_running_log_chunks_are_sealed(running):
    from test_runs import make_cv, make_ws, new_run, status
    c = running.client()
    org = unique("org")
    r = c.post(API + "/organizations", {"data": {
        "type": "organizations",
        "attributes": {"name": org, "email": "o@example.com"}}})
    assert r.status == 201, r
    ws = make_ws(c, org)
    run = new_run(c, ws, make_cv(c, ws))
    plan = run["relationships"]["plan"]["data"]["id"]
    # read the log as a client does until the marker has arrived: it is
    # then in the database, as chunks of the running plan
    log = b""
    for _ in range(600):
        r = c.get("%s/plans/%s/logs?offset=0&limit=65536" % (API, plan))
        assert r.status == 200, r
        log = r.body
        if MARKER.encode() in log:
            break
        assert status(c, run["id"]) in ("pending", "plan_queued",
                                        "planning"), log
        time.sleep(0.1)
    assert MARKER.encode() in log, log
    rows = sql(running, "SELECT data FROM log_chunks WHERE phase_id = '%s'"
               % plan)
    assert rows
    for (data,) in rows:
        # sealed (clear chunks were base64, which has no ':')
        assert data.startswith("tre1:"), data[:40]
        assert MARKER not in data
    assert c.post("%s/runs/%s/actions/cancel" % (API, run["id"]),
                  {}).status == 202
