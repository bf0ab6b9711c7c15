"""Primaries sharing one PostgreSQL: three terraced --role primary on
127.0.1.1..3 with the same --kek-file and --blob-url, started at once on
an empty database.  Migrations and the first admin must be race-free, one
primary leads, the node registry API shows them, signed URLs made by one
primary verify on another, a queued job wakes the other primaries
(NOTIFY with the job id only), and after kill -9 of the leader another
takes over within 5 seconds.

Runs on PostgreSQL only (skipped on the SQLite backend): the cluster is
defined by its shared database."""
import hashlib
import json
import os
import re
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
import urllib.error
import urllib.request

import pytest

from conftest import assert_error, unique
from terrace import BUILD, SRC, Client, config_tgz

API = "/api/v2"

pytestmark = pytest.mark.skipif(
    os.environ.get("TERRACE_TEST_BACKEND", "sqlite") != "pg",
    reason="a cluster needs PostgreSQL (TERRACE_TEST_BACKEND=pg)")


def free_port(host):
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def last_migration():
    """The highest migration number compiled into the binary."""
    with open(os.path.join(SRC, "src/store/migrate.c")) as f:
        return max(int(n) for n in re.findall(r"^\s*\{(\d+),", f.read(),
                                              re.M))


class Primary:
    def __init__(self, tmp, n, conninfo, kek, blobs, extra=()):
        self.host = "127.0.1.%d" % n
        self.port = free_port(self.host)
        self.url = "https://%s:%d" % (self.host, self.port)
        self.dir = os.path.join(tmp, "p%d" % n)
        self.logpath = os.path.join(tmp, "p%d.log" % n)
        self.args = [os.path.join(BUILD, "terraced"), "--role", "primary",
                     "--database-url", conninfo, "--kek-file", kek,
                     "--blob-url", "file://" + blobs, "--executors", "0",
                     "--data-dir", self.dir, "--tool-mirror", "off",
                     "--listen", "%s:%d" % (self.host, self.port),
                     "--external-url", self.url] + list(extra)
        self.proc = None

    def start(self):
        self.log = open(self.logpath, "ab")
        self.proc = subprocess.Popen(self.args, stdout=self.log,
                                     stderr=subprocess.STDOUT)

    def log_text(self):
        with open(self.logpath, "rb") as f:
            return f.read().decode(errors="replace")

    def wait_ready(self, deadline):
        ca = os.path.join(self.dir, "tls", "ca.pem")
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("primary %s exited: %s" %
                                   (self.host, self.log_text()[-3000:]))
            if os.path.exists(ca):
                try:
                    ctx = ssl.create_default_context(cafile=ca)
                    urllib.request.urlopen(self.url + "/_health_check",
                                           context=ctx, timeout=2).read()
                    self.ca = ca
                    return
                except (urllib.error.URLError, OSError):
                    pass
            time.sleep(0.05)
        raise RuntimeError("primary %s not ready: %s" %
                           (self.host, self.log_text()[-3000:]))

    def client(self, token):
        return Client(self.url, self.ca, token)

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


def psql_bin():
    ver = sorted(os.listdir("/usr/lib/postgresql"),
                 key=lambda v: [int(x) for x in v.split(".")])[-1]
    return os.path.join("/usr/lib/postgresql", ver, "bin", "psql")


def psql(conninfo, sql, timeout=20):
    return subprocess.run([psql_bin(), "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1",
                           "-d", conninfo, "-c", sql], check=True,
                          capture_output=True, text=True,
                          timeout=timeout).stdout.strip()


@pytest.fixture(scope="module")
def cluster():
    tmp = tempfile.mkdtemp(prefix="terrace-leader-")
    pg_dir = tempfile.mkdtemp(prefix="terrace-pg-")
    os.chmod(pg_dir, 0o755)
    conninfo = subprocess.check_output(
        ["bash", os.path.join(SRC, "tests/lib/pg.sh"), "start", pg_dir],
        text=True).strip()
    kek = os.path.join(tmp, "kek")
    with open(os.open(kek, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600),
              "w") as f:
        f.write(secrets.token_hex(32) + "\n")
    blobs = os.path.join(tmp, "blobs")
    os.mkdir(blobs, 0o700)
    ps = [Primary(tmp, n, conninfo, kek, blobs,
                  extra=["--log-level", "debug"] if n == 3 else [])
          for n in (1, 2, 3)]
    try:
        for p in ps:  # at once, on an empty database
            p.start()
        deadline = time.time() + 60
        for p in ps:
            p.wait_ready(deadline)
        tokens = [p for p in ps
                  if os.path.exists(os.path.join(p.dir, "admin-token"))]
        assert len(tokens) == 1, "admin-token written by %d primaries" % \
            len(tokens)
        with open(os.path.join(tokens[0].dir, "admin-token")) as f:
            token = f.read().strip()
        yield {"primaries": ps, "token": token, "conninfo": conninfo,
               "kek": kek, "blobs": blobs, "tmp": tmp}
    finally:
        codes = {}
        for p in ps:
            if p.proc is not None:
                p.stop()
                codes[p.host] = p.proc.returncode
        dirty = [p.host for p in ps if "Sanitizer" in p.log_text()]
        subprocess.call(["bash", os.path.join(SRC, "tests/lib/pg.sh"),
                         "stop", pg_dir])
        shutil.rmtree(tmp, ignore_errors=True)
    # killed (-9) or stopped cleanly (0); never a sanitizer report
    assert all(rc in (0, -9) for rc in codes.values()), codes
    assert dirty == [], dirty


def nodes(c, query=""):
    r = c.get(API + "/admin/nodes" + query)
    assert r.status == 200, r
    return r.json["data"]


def leaders(c):
    return [n for n in nodes(c) if n["attributes"]["leader"]]


def wait_for(what, fn, timeout=20):
    deadline = time.time() + timeout
    while True:
        v = fn()
        if v:
            return v
        assert time.time() < deadline, "timed out waiting for " + what
        time.sleep(0.1)


def test_started_at_once(cluster):
    ps, token = cluster["primaries"], cluster["token"]
    # one admin, whichever primary is asked
    for p in ps:
        r = p.client(token).get(API + "/admin/users")
        assert r.status == 200, r
        assert [u["attributes"]["username"] for u in r.json["data"]] == \
            ["admin"]
    # the schema is at the last version, each migration applied once
    last = last_migration()
    got = psql(cluster["conninfo"],
               "SELECT max(version) || ' ' || count(*) FROM schema_migrations")
    assert got == "%d %d" % (last, last)
    applied = sum(p.log_text().count("applying schema migration 1\n")
                  for p in ps)
    assert applied == 1
    # one key for all: the installation's key id is the shared file's
    assert psql(cluster["conninfo"], "SELECT count(*) FROM site_settings"
                " WHERE key = 'kek-id'") == "1"
    # the blob directory is the shared one, not a data dir's
    for p in ps:
        assert not os.path.exists(os.path.join(p.dir, "blobs"))


def test_registry(cluster):
    ps, token = cluster["primaries"], cluster["token"]
    c = ps[0].client(token)
    wait_for("a leader", lambda: len(leaders(c)) == 1)
    for p in ps:
        items = nodes(p.client(token))
        assert sorted(n["attributes"]["address"] for n in items) == \
            sorted(q.url for q in ps)
        for n in items:
            a = n["attributes"]
            assert n["type"] == "nodes" and n["id"].startswith("node-")
            assert a["role"] == "primary" and a["state"] == "active"
            assert a["capacity"] == 0 and a["running-jobs"] == 0
            assert a["version"] and a["last-heartbeat-at"]
            assert a["name"].endswith("@%s" % a["address"].split("//")[1])
        assert sum(n["attributes"]["leader"] for n in items) == 1
    one = nodes(c)[0]
    r = c.get(API + "/admin/nodes/" + one["id"])
    assert r.status == 200 and r.json["data"]["id"] == one["id"], r
    # filters, and what they refuse
    assert len(nodes(c, "?filter[role]=primary")) == 3
    assert nodes(c, "?filter[role]=secondary") == []
    assert nodes(c, "?filter[state]=gone") == []
    assert len(nodes(c, "?page[size]=2")) == 2
    assert_error(c.get(API + "/admin/nodes?filter[state]=dead"), 400)
    assert_error(c.get(API + "/admin/nodes/node-nope"), 404)
    # heartbeats move on
    before = one["attributes"]["last-heartbeat-at"]
    wait_for("a heartbeat", lambda: c.get(API + "/admin/nodes/" + one["id"])
             .json["data"]["attributes"]["last-heartbeat-at"] > before)


def test_registry_is_for_site_admins(cluster):
    ps, token = cluster["primaries"], cluster["token"]
    c = ps[0].client(token)
    name = unique("u")
    r = c.post(API + "/admin/users", {"data": {"type": "users", "attributes": {
        "username": name, "email": name + "@example.com"}}})
    assert r.status == 201, r
    uid = r.json["data"]["id"]
    r = c.post(API + "/admin/users/%s/authentication-tokens" % uid,
               {"data": {"type": "authentication-tokens", "attributes": {}}})
    assert r.status == 201, r
    user = ps[1].client(r.json["data"]["attributes"]["token"])
    some = nodes(c)[0]["id"]
    assert_error(user.get(API + "/admin/nodes"), 404)
    assert_error(user.get(API + "/admin/nodes/" + some), 404)
    assert_error(user.post(API + "/admin/nodes/%s/actions/revoke" % some),
                 404)
    assert ps[1].client(None).get(API + "/admin/nodes").status == 401
    assert nodes(c)[0]["attributes"]["state"] == "active"


def test_revoke(cluster):
    ps, token, ci = cluster["primaries"], cluster["token"], cluster["conninfo"]
    c = ps[1].client(token)
    # a secondary as the internal API registers one
    psql(ci, "INSERT INTO nodes (id, name, role, capacity, credential_hash,"
         " created_at, last_heartbeat_at) VALUES ('node-sec1', 'worker-1',"
         " 'secondary', 4, 'x', to_char(now() at time zone 'utc',"
         " 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'), to_char(now() at time zone"
         " 'utc', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'))")
    sec = c.get(API + "/admin/nodes/node-sec1").json["data"]["attributes"]
    assert sec["state"] == "active" and sec["revoked"] is False
    assert sec["capacity"] == 4
    r = c.post(API + "/admin/nodes/node-sec1/actions/revoke")
    assert r.status == 200, r
    a = r.json["data"]["attributes"]
    assert a["state"] == "gone" and a["revoked"] is True
    assert psql(ci, "SELECT revoked || state FROM nodes"
                " WHERE id = 'node-sec1'") == "1gone"
    assert [n["id"] for n in nodes(c, "?filter[state]=gone")] == \
        ["node-sec1"]
    # a primary has no credential: refused, nothing changes
    prim = nodes(c, "?filter[role]=primary")[0]
    assert_error(c.post(API + "/admin/nodes/%s/actions/revoke" %
                        prim["id"]), 422)
    a = c.get(API + "/admin/nodes/" + prim["id"]).json["data"]["attributes"]
    assert a["state"] == "active" and a["revoked"] is False
    assert_error(c.post(API + "/admin/nodes/node-nope/actions/revoke"), 404)


def tgz():
    return config_tgz(b'resource "terraform_data" "x" {}\n')


def make_org_ws(c):
    org = unique("org")
    r = c.post(API + "/organizations", {"data": {
        "type": "organizations",
        "attributes": {"name": org, "email": "o@example.com"}}})
    assert r.status == 201, r
    r = c.post("%s/organizations/%s/workspaces" % (API, org),
               {"data": {"type": "workspaces",
                         "attributes": {"name": unique("ws")}}})
    assert r.status == 201, r
    return org, r.json["data"]["id"]


def on(p, url):
    """url (made by some primary) pointed at primary p instead."""
    path = url.split("://", 1)[1].split("/", 1)[1]
    return p.url + "/" + path


def test_signed_urls_across_primaries(cluster):
    ps, token = cluster["primaries"], cluster["token"]
    c1, c2, c3 = (p.client(token) for p in ps)
    anon2 = ps[1].client(None)
    _, ws = make_org_ws(c1)
    # a state version created on 1, uploaded through 2, read through 3
    state = json.dumps({"version": 4, "serial": 1, "lineage": "l-" + unique(),
                        "terraform_version": "1.10.0", "outputs": {},
                        "resources": []}).encode()
    r = c1.post("%s/workspaces/%s/actions/lock" % (API, ws),
                raw=b"{}", ctype="application/json")
    assert r.status == 200, r
    r = c1.post("%s/workspaces/%s/state-versions" % (API, ws), {"data": {
        "type": "state-versions", "attributes": {
            "serial": 1, "md5": hashlib.md5(state).hexdigest(),
            "lineage": json.loads(state)["lineage"]}}})
    assert r.status == 201, r
    sv = r.json["data"]["id"]
    up = r.json["data"]["attributes"]["hosted-state-upload-url"]
    assert up.startswith(ps[0].url)
    assert anon2.put(on(ps[1], up), raw=state).status == 200
    a = c3.get(API + "/state-versions/" + sv).json["data"]["attributes"]
    assert a["status"] == "finalized"
    down = a["hosted-state-download-url"]
    assert down.startswith(ps[2].url)
    for p in ps:  # made by 3, valid on every primary
        assert p.client(None).get(on(p, down)).body == state
    # a forged signature is refused everywhere
    bad = re.sub(r"sig=[0-9a-f]+", "sig=" + "0" * 64, on(ps[0], down))
    assert ps[0].client(None).get(bad).status in (403, 404)


def test_queued_job_wakes_other_primaries(cluster):
    ps, token, ci = cluster["primaries"], cluster["token"], cluster["conninfo"]
    c1 = ps[0].client(token)
    _, ws = make_org_ws(c1)
    r = c1.post("%s/workspaces/%s/configuration-versions" % (API, ws),
                {"data": {"type": "configuration-versions",
                          "attributes": {"auto-queue-runs": False}}})
    assert r.status == 201, r
    cv = r.json["data"]["id"]
    up = r.json["data"]["attributes"]["upload-url"]
    assert ps[1].client(None).put(on(ps[1], up), raw=tgz()).status == 200
    # listen as another primary would, while primary 1 queues a run
    listener = subprocess.Popen(
        [psql_bin(), "-X", "-d", ci, "-c", "LISTEN terrace_jobs",
         "-c", "SELECT pg_sleep(6)", "-c", "SELECT 1"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    # its LISTEN is in place once it sleeps
    wait_for("the listener", lambda: psql(
        ci, "SELECT count(*) FROM pg_stat_activity"
        " WHERE query = 'SELECT pg_sleep(6)'") == "1")
    woken_before = ps[2].log_text().count("job wake-up(s) from postgresql")
    r = c1.post(API + "/runs", {"data": {
        "type": "runs", "attributes": {"plan-only": True},
        "relationships": {
            "workspace": {"data": {"type": "workspaces", "id": ws}},
            "configuration-version": {
                "data": {"type": "configuration-versions", "id": cv}}}}})
    assert r.status == 201, r
    out, _ = listener.communicate(timeout=30)
    got = re.findall(r'notification "terrace_jobs" with payload "([^"]*)"',
                     out)
    assert len(got) == 1, out
    # the payload is the queued job's id and nothing else
    assert re.fullmatch(r"job-[0-9A-Za-z]+", got[0]), got
    assert psql(ci, "SELECT run_id FROM jobs WHERE id = '%s'" % got[0]) == \
        r.json["data"]["id"]
    # primary 3 heard it and woke its claimers
    wait_for("primary 3's wake-up", lambda: ps[2].log_text().count(
        "job wake-up(s) from postgresql") > woken_before)


def test_bad_shared_settings(cluster, tmp_path):
    """Refused at start, with a message that says what to do."""
    def start(*extra):
        args = [os.path.join(BUILD, "terraced"), "--role", "primary",
                "--database-url", cluster["conninfo"],
                "--data-dir", str(tmp_path / "d"), "--tool-mirror", "off",
                "--listen", "127.0.1.4:%d" % free_port("127.0.1.4")]
        p = subprocess.run(args + list(extra), capture_output=True,
                           text=True, timeout=30)
        assert p.returncode != 0
        return p.stdout + p.stderr
    out = start("--kek-file", str(tmp_path / "missing"))
    assert "kek-file" in out and "missing" in out
    loose = tmp_path / "loose"
    loose.write_text(secrets.token_hex(32) + "\n")
    loose.chmod(0o644)
    assert "loose" in start("--kek-file", str(loose))
    other = tmp_path / "other"
    other.write_text(secrets.token_hex(32) + "\n")
    other.chmod(0o600)
    out = start("--kek-file", str(other))
    assert "sealed under key" in out
    out = start("--blob-url", "ftp://bucket/prefix")
    assert "ftp" in out and "not supported" in out
    assert "absolute" in start("--blob-url", "file://relative/dir")
    # nothing of it reached the registry
    assert psql(cluster["conninfo"], "SELECT count(*) FROM nodes"
                " WHERE address LIKE '%127.0.1.4%'") == "0"


def test_leader_steps_down_on_lost_connection(cluster):
    """The leader's election session ends (as when the database drops
    it): that primary stops leading at once, and a leader is back within
    5 s (it or another)."""
    ps, token, ci = cluster["primaries"], cluster["token"], cluster["conninfo"]
    c = ps[0].client(token)
    wait_for("a leader", lambda: len(leaders(c)) == 1)
    old = leaders(c)[0]
    holder = [p for p in ps if p.url == old["attributes"]["address"]][0]
    before = holder.log_text().count("no longer leading the cluster")
    t0 = time.monotonic()
    assert psql(ci, "SELECT count(pg_terminate_backend(pid)) FROM pg_locks"
                " WHERE locktype = 'advisory' AND objid = 7410002"
                " AND granted") == "1"
    wait_for("the step-down", lambda: holder.log_text().count(
        "no longer leading the cluster") > before, timeout=5)

    def held():
        return psql(ci, "SELECT count(*) FROM pg_locks WHERE locktype ="
                    " 'advisory' AND objid = 7410002 AND granted") == "1"
    wait_for("the lock taken again", held, timeout=5)
    took = time.monotonic() - t0
    print("\nleader lock held again after %.2f s" % took)
    assert took < 5.0
    wait_for("a leader in the registry", lambda: len(leaders(c)) == 1)


def test_admin_bootstrap_race(tmp_path):
    """Three primaries create the first admin at the same moment: the
    schema is there already and a session holds the users table against
    writes (reads pass) until all three wait to insert.  One creates the
    admin and writes its token; the others find it taken and start
    without one."""
    pg_dir = tempfile.mkdtemp(prefix="terrace-pg-")
    os.chmod(pg_dir, 0o755)
    ci = subprocess.check_output(
        ["bash", os.path.join(SRC, "tests/lib/pg.sh"), "start", pg_dir],
        text=True).strip()
    kek = tmp_path / "kek"
    kek.write_text(secrets.token_hex(32) + "\n")
    kek.chmod(0o600)
    blobs = tmp_path / "blobs"
    blobs.mkdir()
    ps, holder, lost = [], None, 0
    try:
        for rnd in range(2):
            base = str(tmp_path / ("r%d" % rnd))
            os.mkdir(base)
            ps = [Primary(base, n, ci, str(kek), str(blobs))
                  for n in (1, 2, 3)]
            if rnd == 0:  # the schema first, by a primary of its own
                os.mkdir(str(tmp_path / "schema"))
                first = Primary(str(tmp_path / "schema"), 4, ci, str(kek),
                                str(blobs))
                first.start()
                first.wait_ready(time.time() + 60)
                first.stop()
            psql(ci, "DELETE FROM tokens; DELETE FROM users;"
                 " DELETE FROM nodes")
            holder = subprocess.Popen(
                [psql_bin(), "-X", "-d", ci, "-c",
                 "BEGIN; LOCK TABLE users IN EXCLUSIVE MODE;"
                 " SELECT pg_sleep(60); COMMIT;"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            waiting = ("SELECT count(*) FROM pg_locks l JOIN pg_class c"
                       " ON c.oid = l.relation WHERE c.relname = 'users'"
                       " AND %s l.granted")
            wait_for("the lock", lambda: psql(ci, waiting % "") == "1")
            for p in ps:
                p.start()
            wait_for("three waiters",
                     lambda: psql(ci, waiting % "NOT") == "3", timeout=60)
            psql(ci, "SELECT pg_cancel_backend(pid) FROM pg_stat_activity"
                 " WHERE query LIKE '%pg_sleep(60)%' AND pid <>"
                 " pg_backend_pid()")
            holder.wait(timeout=30)
            deadline = time.time() + 60
            for p in ps:
                p.wait_ready(deadline)
            wrote = [p for p in ps
                     if os.path.exists(os.path.join(p.dir, "admin-token"))]
            assert len(wrote) == 1, [p.host for p in wrote]
            assert psql(ci, "SELECT string_agg(username, ',') FROM users") \
                == "admin"
            lost += sum("created by another primary" in p.log_text()
                        for p in ps)
            with open(os.path.join(wrote[0].dir, "admin-token")) as f:
                token = f.read().strip()
            for p in ps:
                r = p.client(token).get(API + "/account/details")
                assert r.status == 200, r
            for p in ps:
                p.stop()
                assert p.proc.returncode == 0, p.log_text()[-2000:]
        # every round, all three saw no user and two lost the insert
        assert lost == 4
    finally:
        if holder is not None and holder.poll() is None:
            holder.kill()
            holder.wait()
        for p in ps:
            if p.proc is not None and p.proc.poll() is None:
                p.stop()
        subprocess.call(["bash", os.path.join(SRC, "tests/lib/pg.sh"),
                         "stop", pg_dir])


def test_leader_failover(cluster):
    """Last: kills the leader.  A new leader within 5 s, shown in the
    registry; a clean stop marks a primary gone."""
    ps, token = cluster["primaries"], cluster["token"]
    c = ps[0].client(token)
    wait_for("a leader", lambda: len(leaders(c)) == 1)
    old = leaders(c)[0]
    victim = [p for p in ps if p.url == old["attributes"]["address"]][0]
    rest = [p for p in ps if p is not victim]
    watch = rest[0].client(token)
    t0 = time.monotonic()
    victim.proc.send_signal(signal.SIGKILL)
    victim.proc.wait()

    def new_leader():
        ls = leaders(watch)
        return ls if ls and ls[0]["id"] != old["id"] else None
    ls = wait_for("a new leader", new_leader, timeout=10)
    took = time.monotonic() - t0
    print("\nnew leader %s after %.2f s" % (ls[0]["attributes"]["address"],
                                             took))
    assert took < 5.0, "failover took %.2f s" % took
    assert len(ls) == 1
    assert ls[0]["attributes"]["address"] in [p.url for p in rest]
    a = watch.get(API + "/admin/nodes/" + old["id"]).json["data"]
    assert a["attributes"]["leader"] is False
    # the survivors agree, and both still serve
    other = rest[1].client(token)
    assert [n["id"] for n in leaders(other)] == [ls[0]["id"]]
    # a clean stop: the node says it is gone, and leadership stays put or
    # moves, but exists
    follower = [p for p in rest
                if p.url != ls[0]["attributes"]["address"]][0]
    fid = [n["id"] for n in nodes(watch)
           if n["attributes"]["address"] == follower.url][0]
    follower.stop()
    assert follower.proc.returncode == 0
    leader_p = [p for p in rest if p is not follower][0]
    lc = leader_p.client(token)
    assert lc.get(API + "/admin/nodes/" + fid).json["data"][
        "attributes"]["state"] == "gone"
    assert len(leaders(lc)) == 1
