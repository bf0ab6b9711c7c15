"""Readiness (/_health_check?ready=1) and Prometheus metrics (/metrics)
against a real daemon: counters read before and after requests (the
exposition parsed, not grepped), the route pattern and never a name in
the labels, runs and queue depth from the database, the metrics setting
(loopback, on, off, a proxied request), and readiness turning to 503
when the database's schema is behind the binary or the database is
gone, and back."""
import os
import re
import sqlite3
import subprocess
import time

import pytest

from conftest import assert_error, unique
from terrace import Daemon
from test_runs import make_cv

API = "/api/v2"
BACKEND = os.environ.get("TERRACE_TEST_BACKEND", "sqlite")

# one sample line: name, optional {labels}, value
SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})? (\S+)$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"(,|$)')


def parse(text):
    """{(name, frozenset of (label, value)): value}, checking the syntax
    of every line and that each family is typed before its samples."""
    out, typed = {}, {}
    assert text.endswith("\n")
    for line in text.splitlines():
        if line.startswith("# HELP "):
            continue
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ")
            assert kind in ("counter", "gauge", "histogram")
            assert name not in typed
            typed[name] = kind
            continue
        m = SAMPLE.match(line)
        assert m, line
        name, labels, value = m.group(1), m.group(2), m.group(3)
        base = re.sub(r"_(bucket|sum|count)$", "", name)
        assert name in typed or typed.get(base) == "histogram", line
        pairs = []
        if labels:
            inner = labels[1:-1]
            pos = 0
            while pos < len(inner):
                lm = LABEL.match(inner, pos)
                assert lm, line
                pairs.append((lm.group(1), lm.group(2)))
                pos = lm.end()
        key = (name, frozenset(pairs))
        assert key not in out, "series twice: " + line
        out[key] = float(value)
    return out


def val(series, name, **labels):
    return series.get((name, frozenset(labels.items())), 0.0)


@pytest.fixture(scope="module")
def d():
    """A daemon of its own without workers: runs wait in the queue."""
    dm = Daemon(backend=BACKEND, extra_args=["--executors", "0"])
    dm.start()
    yield dm
    dm.close()


@pytest.fixture(scope="module")
def c(d):
    return d.client()


def scrape(c, **kw):
    r = c.get("/metrics", token=None, **kw)
    assert r.status == 200, r
    assert r.headers["Content-Type"].startswith(
        "text/plain; version=0.0.4")
    return r.body.decode(), parse(r.body.decode())


def test_requests_counted_by_route_and_code(c):
    name = unique("org")
    r = c.post(API + "/organizations", {"data": {
        "type": "organizations",
        "attributes": {"name": name, "email": "o@example.com"}}})
    assert r.status == 201, r
    _, before = scrape(c)
    for _ in range(3):
        assert c.get(API + "/organizations/" + name).status == 200
    assert c.get(API + "/organizations/" + name, token=None).status == 401
    assert c.get(API + "/no-such-thing/" + name).status == 404
    assert c.request("BREW", API + "/ping").status in (404, 405)
    text, after = scrape(c)
    route = "/api/v2/organizations/:name"

    def delta(metric, **labels):
        return val(after, metric, **labels) - val(before, metric, **labels)

    total = "terrace_http_requests_total"
    assert delta(total, route=route, method="GET", code="200") == 3
    assert delta(total, route=route, method="GET", code="401") == 1
    assert delta(total, route="unmatched", method="GET", code="404") == 1
    assert delta(total, route="/metrics", method="GET", code="200") == 1
    hist = "terrace_http_request_duration_seconds"
    assert delta(hist + "_count", route=route, method="GET") == 4
    assert delta(hist + "_sum", route=route, method="GET") > 0
    inf = val(after, hist + "_bucket", route=route, method="GET", le="+Inf")
    assert inf == val(after, hist + "_count", route=route, method="GET")
    # the raw path, the organization's name and the odd method stay out
    assert name not in text
    assert "no-such-thing" not in text and "BREW" not in text
    c.delete(API + "/organizations/" + name)


def test_runs_and_queue_from_database(c):
    org = unique("org")
    assert c.post(API + "/organizations", {"data": {
        "type": "organizations",
        "attributes": {"name": org, "email": "o@example.com"}}}).status == 201
    r = c.post("%s/organizations/%s/workspaces" % (API, org),
               {"data": {"type": "workspaces",
                         "attributes": {"name": unique("ws")}}})
    assert r.status == 201, r
    ws = r.json["data"]["id"]
    _, before = scrape(c)
    assert val(before, "terrace_database_up") == 1
    queued0 = val(before, "terrace_runs", status="plan_queued")
    depth0 = val(before, "terrace_queue_depth")
    cv = make_cv(c, ws)
    r = c.post(API + "/runs", {"data": {
        "type": "runs", "attributes": {},
        "relationships": {
            "workspace": {"data": {"type": "workspaces", "id": ws}},
            "configuration-version": {
                "data": {"type": "configuration-versions", "id": cv}}}}})
    assert r.status == 201, r
    # the database gauges are cached for a few seconds: wait them out
    deadline = time.time() + 20
    while True:
        _, now = scrape(c)
        if val(now, "terrace_runs", status="plan_queued") == queued0 + 1:
            break
        assert time.time() < deadline, "terrace_runs did not move"
        time.sleep(0.5)
    assert val(now, "terrace_queue_depth") == depth0 + 1
    assert val(now, "terrace_jobs_running") == 0
    assert val(now, "terrace_executor_capacity") == 0
    assert val(now, "terrace_leader") == 1
    assert val(now, "terrace_db_pool_size") >= 1
    assert 0 <= val(now, "terrace_db_pool_in_use") <= val(
        now, "terrace_db_pool_size")
    assert val(now, "process_resident_memory_bytes") > 1e6
    assert abs(val(now, "process_start_time_seconds") - time.time()) < 3600
    assert org not in scrape(c)[0]
    c.delete(API + "/organizations/" + org)


def test_proxied_request_is_refused_on_loopback(c):
    for h in ("X-Forwarded-For", "Forwarded", "X-Real-IP"):
        assert_error(c.get("/metrics", token=None,
                           headers={h: "203.0.113.9"}), 404)


def test_metrics_off_and_on():
    off = Daemon(backend="sqlite", extra_args=["--metrics", "off"])
    on = Daemon(backend="sqlite", extra_args=["--metrics", "on"])
    try:
        off.start()
        assert_error(off.client().get("/metrics"), 404)
        on.start()
        r = on.client().get("/metrics", token=None,
                            headers={"X-Forwarded-For": "203.0.113.9"})
        assert r.status == 200 and "terrace_leader 1" in r.body.decode()
    finally:
        off.close()
        on.close()


def test_metrics_bad_setting():
    bad = Daemon(backend="sqlite", extra_args=["--metrics", "public"])
    try:
        with pytest.raises(RuntimeError) as e:
            bad.start()
        assert "metrics must be loopback, on or off" in str(e.value)
    finally:
        bad.close()


# ---- readiness ----------------------------------------------------------


def test_liveness_and_readiness(c):
    r = c.get("/_health_check", token=None)
    assert r.status == 200 and r.json == {"status": "ok"}
    r = c.get("/_health_check?ready=1", token=None)
    assert r.status == 200, r
    assert r.json["ready"] is True
    assert r.json["role"] == ("demo" if BACKEND == "sqlite" else "primary")
    assert r.json["checks"]["database"] == "ok"
    assert r.json["checks"]["migrations"] == "ok"
    assert r.json["checks"]["draining"] is False
    # ?full=1 is as it was
    r = c.get("/_health_check?full=1", token=None)
    assert r.status == 200 and r.json["blob"] == "ok"


def sql(d, statement):
    """Runs one statement on the daemon's database from outside."""
    if d.backend == "sqlite":
        db = sqlite3.connect(os.path.join(d.data_dir, "terrace.db"),
                             timeout=30)
        try:
            cur = db.execute(statement)
            rows = cur.fetchall()
            db.commit()
            return rows
        finally:
            db.close()
    out = subprocess.check_output(
        ["psql", d.conninfo, "-At", "-c", statement], text=True)
    return [tuple(line.split("|")) for line in out.splitlines() if line]


def wait_ready(c, status, timeout=20):
    deadline = time.time() + timeout
    while True:
        r = c.get("/_health_check?ready=1", token=None)
        if r.status == status:
            return r
        assert time.time() < deadline, r
        time.sleep(0.2)


def test_not_ready_while_migrations_pending(d, c):
    wait_ready(c, 200)
    top = int(sql(d, "SELECT max(version) FROM schema_migrations")[0][0])
    row = sql(d, "SELECT version, applied_at FROM schema_migrations"
                 " WHERE version = %d" % top)[0]
    sql(d, "DELETE FROM schema_migrations WHERE version = %d" % top)
    try:
        r = wait_ready(c, 503)
        assert r.json["ready"] is False
        assert "migrations pending" in r.json["reason"], r
        assert str(top) in r.json["reason"]
        # liveness is untouched
        assert c.get("/_health_check", token=None).status == 200
    finally:
        sql(d, "INSERT INTO schema_migrations (version, applied_at)"
               " VALUES (%d, '%s')" % (top, row[1]))
    assert wait_ready(c, 200).json["checks"]["migrations"] == "ok"


@pytest.mark.skipif(BACKEND != "pg", reason="stops PostgreSQL")
def test_not_ready_while_database_down():
    dm = Daemon(backend="pg", extra_args=["--executors", "0"])
    dm.start()
    try:
        cl = dm.client()
        wait_ready(cl, 200)
        bindir = sorted(
            d for d in os.listdir("/usr/lib/postgresql"))[-1]
        pg_ctl = os.path.join("/usr/lib/postgresql", bindir, "bin", "pg_ctl")
        as_pg = ["runuser", "-u", "postgres", "--"] if os.getuid() == 0 \
            else []
        subprocess.check_call(as_pg + [pg_ctl, "-D", dm.pg_dir + "/data",
                                       "-m", "immediate", "-w", "stop"],
                              stdout=subprocess.DEVNULL)
        t0 = time.time()
        r = wait_ready(cl, 503)
        # bounded: the probe answers within its wait, the poll adds little
        assert time.time() - t0 < 10
        assert "database" in r.json["reason"], r
        assert "host=" not in r.json["reason"]
        assert cl.get("/_health_check", token=None).status == 200
        subprocess.check_call(as_pg + [
            pg_ctl, "-D", dm.pg_dir + "/data", "-l",
            dm.pg_dir + "/server.log", "-w", "-o",
            "-c listen_addresses='' -c unix_socket_directories='%s'"
            " -c fsync=off -c max_connections=200" % dm.pg_dir, "start"],
            stdout=subprocess.DEVNULL)
        wait_ready(cl, 200, timeout=30)
    finally:
        dm.close()
