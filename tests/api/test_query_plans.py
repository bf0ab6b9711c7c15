"""The query plans of what the store really runs, on a database of the
size a busy installation reaches (issue: cost growth).

A daemon built with TR_DEBUG writes every distinct statement it runs to
TERRACE_TEST_SQL_TRACE (src/store/db_trace.c).  The test seeds 10,000
workspaces in 50 organizations, 100,000 state versions, 50,000 runs with
their plans and applies, 100,000 jobs and run events and 1,000,000 log
chunks, refreshes the planner's statistics, drives the API's read and
list paths and whole runs (a fake tofu, as test_run_logs.py), then asks
the database for the plan of every statement it saw: SQLite's EXPLAIN
QUERY PLAN, PostgreSQL's generic plan (what a prepared statement gets
whatever its values).  A full scan of a large table fails the test,
unless EXEMPT names the statement's purpose and why the scan is right.
"""
import json
import os
import re
import sqlite3
import subprocess
import tempfile
import time

import pytest

import seed
from conftest import unique
from terrace import Daemon
from test_run_logs import backend, flow_daemon
from test_runs import API, make_cv, make_ws, new_run, status
from test_state_versions import create as create_sv
from test_state_versions import LINEAGE, lock, make_state, unlock

LARGE = {"workspaces", "state_versions", "state_version_outputs", "runs",
         "plans", "applies", "jobs", "log_chunks", "run_events",
         "configuration_versions", "variables", "read_cache_changes"}

# Statements that scan a large table on purpose: (pattern, why).
EXEMPT = [
    (r"^UPDATE (workspaces|jobs) SET seq = \(SELECT count",
     "schema migrations 7 and 8 number existing rows once"),
    (r"^DELETE FROM read_cache_changes WHERE xid <",
     "a primary's read cache prunes the change records every reader has "
     "read once a minute (read_cache.c), whatever the plan"),
    (r"AS usage FROM tool_versions",
     "the admin API's usage of a tool version counts the workspaces "
     "pinned to it (TFE's attribute); admin pages only, never a run's path"),
]

N = seed.BUSY


def run_sql(d, statements):
    if d.backend == "pg":
        seed.run_sql(statements, conninfo=d.conninfo)
    else:
        seed.run_sql(statements,
                     sqlite_path=os.path.join(d.data_dir, "terrace.db"))


@pytest.fixture(scope="module")
def seeded():
    trace = tempfile.mktemp(prefix="terrace-sqltrace-")
    d = flow_daemon(env={"TERRACE_TEST_SQL_TRACE": trace})
    if d is None:
        pytest.skip("the daemon runs no workers")
    t0 = time.time()
    run_sql(d, seed.seed_sql(seed.BUSY, LINEAGE))
    print("seeded in %.1f s" % (time.time() - t0))
    yield d, trace
    d.close()


def drive(d, c, org):
    """The API's read and list paths, and whole runs."""
    seed_ws = "ws-seed%d" % (N["ws"] // 2)
    gets = [
        "/organizations/seed-o7/workspaces?page[size]=100",
        "/organizations/seed-o7/workspaces?search[name]=w13",
        "/organizations/seed-o7/workspaces/w1234",
        "/workspaces/" + seed_ws,
        "/workspaces/%s/runs?page[size]=100" % seed_ws,
        "/workspaces/%s/current-state-version" % seed_ws,
        "/workspaces/%s/vars" % seed_ws,
        "/workspaces/%s/configuration-versions" % seed_ws,
        "/state-versions?filter[workspace][name]=w5000"
        "&filter[organization][name]=seed-o25",
        "/runs/run-seed777",
        "/runs/run-seed777?include=plan,apply",
        "/plans/plan-seed777",
        "/applies/apply-seed777",
        "/organizations/seed-o7/projects",
        "/organizations/seed-o7",
        "/organizations",
    ]
    for g in gets:
        r = c.get(API + g)
        assert r.status in (200, 204, 307), (g, r, d.log_text()[-1500:])
    ws = make_ws(c, org)
    run = new_run(c, ws, make_cv(c, ws), **{"auto-apply": True})["id"]
    deadline = time.time() + 60
    while time.time() < deadline and status(c, run) not in (
            "applied", "errored"):
        time.sleep(0.2)
    assert status(c, run) == "applied"
    for g in ("/runs/%s" % run, "/workspaces/%s/runs" % ws,
              "/workspaces/%s" % ws):
        assert c.get(API + g).status == 200
    # the CLI's state path in one of the seeded workspaces: lock, push
    # two versions, read back, unlock
    sw = "ws-seed%d" % (N["ws"] // 3)
    lock(c, sw)
    for serial in (1000, 1001):
        r = create_sv(c, sw, make_state(serial))
        assert r.status == 201, r
    for g in ("/workspaces/%s/current-state-version" % sw,
              "/workspaces/%s/current-state-version-outputs" % sw,
              "/state-versions?filter[workspace][name]=w%d"
              "&filter[organization][name]=seed-o%d"
              % (N["ws"] // 3, (N["ws"] // 3 - 1) // (N["ws"] // N["orgs"])
                 + 1)):
        r = c.get(API + g)
        assert r.status == 200, (g, r)
    unlock(c, sw)
    # its logs, read as the CLI reads them (seeded chunks are not sealed)
    doc = c.get(API + "/runs/%s?include=plan" % run).json
    url = doc["included"][0]["attributes"]["log-read-url"]
    assert c.get(url + "?offset=0&limit=65536").status == 200


SKIP = re.compile(r"^\s*(BEGIN|COMMIT|ROLLBACK|PRAGMA|CREATE|ALTER|DROP|SET|"
                  r"LISTEN|NOTIFY|UNLISTEN|ANALYZE|SAVEPOINT|RELEASE|"
                  r"SELECT (pg_(?!current_snapshot)|set_config|1\b|"
                  r"version))", re.I)
ALIAS = re.compile(r"\b(?:FROM|JOIN|UPDATE|INTO)\s+([a-z_]+)(?:\s+(?:AS\s+)?"
                   r"(?!WHERE|ON|JOIN|LEFT|SET|ORDER|GROUP|LIMIT|USING|"
                   r"VALUES|SELECT)([a-z_]+))?", re.I)


def tables_of(sql):
    out = {}
    for t, a in ALIAS.findall(sql):
        out[t] = t
        if a:
            out[a] = t
    return out


def sqlite_scans(path, sql, n):
    """The plan's full scans of large tables; a scan of a partial index
    (over a queue's few live rows) is not one."""
    db = sqlite3.connect("file:%s?mode=ro" % path, uri=True)
    try:
        partial = {r[0] for r in db.execute(
            "SELECT name FROM sqlite_master WHERE type = 'index'"
            " AND sql LIKE '% WHERE %'")}
        q = re.sub(r"\$(\d+)", r"?\1", sql)
        rows = db.execute("EXPLAIN QUERY PLAN " + q,
                          [None] * n).fetchall()
    finally:
        db.close()
    names = tables_of(sql)
    bad = []
    for row in rows:
        m = re.match(r"SCAN (\w+)(?: USING (?:COVERING )?INDEX (\w+))?",
                     row[-1])
        if m and names.get(m.group(1), m.group(1)) in LARGE and \
                m.group(2) not in partial:
            bad.append(row[-1])
    return bad


def pg_scans(conninfo, sql, n):
    args = "(%s)" % ", ".join(["NULL"] * n) if n else ""
    script = ("SET plan_cache_mode = force_generic_plan;\n"
              "PREPARE q AS %s;\nEXPLAIN EXECUTE q%s;\n" % (sql, args))
    p = subprocess.run(["psql", "-X", "-q", "-A", "-t", "-v",
                        "ON_ERROR_STOP=1", "-d", conninfo], input=script,
                       text=True, capture_output=True)
    if p.returncode != 0:
        return None
    return [ln.strip() for ln in p.stdout.splitlines()
            if re.search(r"Seq Scan on (\w+)", ln) and
            re.search(r"Seq Scan on (\w+)", ln).group(1) in LARGE]


def exempt(sql):
    return any(re.search(p, sql) for p, _ in EXEMPT)


def test_no_full_scan_of_a_large_table(seeded):
    d, trace = seeded
    c = d.client()
    org = unique("org")
    r = c.post(API + "/organizations", {"data": {
        "type": "organizations",
        "attributes": {"name": org, "email": "o@example.com"}}})
    assert r.status == 201, r
    drive(d, c, org)
    seen = [json.loads(ln) for ln in open(trace)]
    checked, unplanned, bad, planned = 0, [], [], []
    for s in seen:
        sql = s["sql"]
        if SKIP.match(sql) or exempt(sql):
            continue
        if re.match(r"\s*INSERT\b", sql, re.I) and \
                not re.search(r"\bSELECT\b", sql, re.I):
            continue
        if d.backend == "pg":
            scans = pg_scans(d.conninfo, sql, s["n"])
        else:
            scans = sqlite_scans(os.path.join(d.data_dir, "terrace.db"),
                                 sql, s["n"])
        if scans is None:
            unplanned.append(sql)
            continue
        checked += 1
        planned.append(sql)
        if scans:
            bad.append((sql, scans))
    print("%d statements seen, %d planned, %d not plannable" %
          (len(seen), checked, len(unplanned)))
    for sql in unplanned:
        print("not plannable: " + sql[:200])
    assert checked > 40, "too few statements were checked"
    # the page of workspaces, the hot list: on PostgreSQL its facts come
    # from one aggregate per table over the page (store_workspaces.c)
    page = r"FROM p JOIN workspaces w" if d.backend == "pg" else \
        r"^SELECT w\.id, .* WHERE w\.org = \$1 ORDER BY w\.seq"
    assert any(re.search(page, sql) for sql in planned), \
        "the page of workspaces was not planned"
    assert not bad, "\n\n".join("%s\n  -> %s" % (sql, "; ".join(sc))
                                for sql, sc in bad)
