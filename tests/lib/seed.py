"""A database of a busy installation, written straight into a migrated
Terrace database (SQLite or PostgreSQL): organizations with their
default projects, workspaces, configuration versions, state versions
with an output each, runs with their plans and applies, jobs, run
events, log chunks, variables and variable sets.  Names start with
"seed" ("seed-o1", "ws-seed1", ...).  Used by tests/api/test_query_plans.py
(the plans of the hot statements at this size) and bench/cost_growth.sh
(latency as the tables grow)."""
import os
import sqlite3
import subprocess

# the sizes test_query_plans.py seeds: 10,000 workspaces
BUSY = {"orgs": 50, "ws": 10000, "sv": 100000, "cv": 20000, "runs": 50000,
        "jobs": 100000, "chunks": 1000000, "events": 100000, "vars": 20000,
        "sets": 100}
T = "'2026-01-01T00:00:00.000Z'"
LINEAGE = "a7b3c1d2-0000-4000-8000-000000000001"


def scaled(ws):
    """BUSY's proportions for ws workspaces (200 to an organization, 10
    state versions, 5 runs and 500 log chunks to a workspace)."""
    k = ws / BUSY["ws"]
    n = {key: max(1, int(v * k)) for key, v in BUSY.items()}
    n["ws"] = ws
    n["orgs"] = max(1, ws // 200)
    n["sets"] = max(1, ws // 100)
    return n


def numbers(upto):
    return ("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n"
            " WHERE i < %d) " % upto)


def seed_sql(n=BUSY, lineage=LINEAGE):
    """The statements that seed n (a dict as BUSY), then ANALYZE."""
    ws = "((i - 1) %% %d + 1)" % n["ws"]
    run = "((i - 1) %% %d + 1)" % n["runs"]
    org_of = "((i - 1) / %d + 1)" % max(1, n["ws"] // n["orgs"])
    return [
        numbers(n["orgs"]) + "INSERT INTO organizations (name, id, email,"
        " created_at) SELECT 'seed-o' || i, 'org-seed' || i,"
        " 'seed@example.com', %s FROM n" % T,
        numbers(n["orgs"]) + "INSERT INTO projects (id, org, name,"
        " is_default, created_at) SELECT 'prj-seed' || i, 'seed-o' || i,"
        " 'Default Project', 1, %s FROM n" % T,
        numbers(n["ws"]) + "INSERT INTO workspaces (id, org, name,"
        " project_id, created_at, updated_at, seq) SELECT 'ws-seed' || i,"
        " 'seed-o' || %s, 'w' || i, 'prj-seed' || %s, %s, %s, 1000000 + i"
        " FROM n" % (org_of, org_of, T, T),
        numbers(n["cv"]) + "INSERT INTO configuration_versions (id,"
        " workspace_id, status, blob_key, created_at) SELECT 'cv-seed' || i,"
        " 'ws-seed' || %s, 'uploaded', 'k', %s FROM n" % (ws, T),
        numbers(n["sv"]) + "INSERT INTO state_versions (id, workspace_id,"
        " seq, serial, lineage, md5, status, blob_key, created_at)"
        " SELECT 'sv-seed' || i, 'ws-seed' || %s, (i - 1) / %d + 1,"
        " (i - 1) / %d + 1, '%s', 'm', 'finalized', 'k', %s FROM n"
        % (ws, n["ws"], n["ws"], lineage, T),
        numbers(n["runs"]) + "INSERT INTO runs (id, workspace_id, cv_id,"
        " status, queue_seq, created_at) SELECT 'run-seed' || i,"
        " 'ws-seed' || %s, 'cv-seed' || %s, CASE WHEN i %% 100 = 0 THEN"
        " 'planning' ELSE 'applied' END, i, %s FROM n"
        % (ws, ws, T),
        numbers(n["runs"]) + "INSERT INTO plans (id, run_id, status)"
        " SELECT 'plan-seed' || i, 'run-seed' || i, 'running' FROM n",
        numbers(n["runs"]) + "INSERT INTO applies (id, run_id, status)"
        " SELECT 'apply-seed' || i, 'run-seed' || i, 'pending' FROM n",
        numbers(n["jobs"]) + "INSERT INTO jobs (id, run_id, phase, status,"
        " created_at, seq) SELECT 'job-seed' || i, 'run-seed' || %s,"
        " 'plan', 'done', %s, i FROM n" % (run, T),
        numbers(n["chunks"]) + "INSERT INTO log_chunks (phase_id, seq,"
        " byte_offset, len, data) SELECT 'plan-seed' || ((i - 1) / 20 + 1),"
        " (i - 1) % 20, (i - 1) % 20, 1, 'x' FROM n",
        numbers(n["events"]) + "INSERT INTO run_events (id, run_id, seq,"
        " action, created_at) SELECT 'ev-seed' || i, 'run-seed' || %s,"
        " (i - 1) / %d, 'queued', %s FROM n" % (run, n["runs"], T),
        numbers(n["sets"]) + "INSERT INTO varsets (id, org, name,"
        " created_at, updated_at) SELECT 'varset-seed' || i, 'seed-o' ||"
        " ((i - 1) %% %d + 1), 'set' || i, %s, %s FROM n"
        % (n["orgs"], T, T),
        numbers(n["sets"] * 20) + "INSERT INTO variables (id, varset_id,"
        " key, category, version_id, created_at) SELECT 'svar-seed' || i,"
        " 'varset-seed' || ((i - 1) / 20 + 1), 'k' || i, 'env', 'v', %s"
        " FROM n" % T,
        numbers(n["vars"]) + "INSERT INTO variables (id, workspace_id, key,"
        " category, version_id, created_at) SELECT 'var-seed' || i,"
        " 'ws-seed' || %s, 'k' || ((i - 1) / %d), 'terraform', 'v', %s"
        " FROM n" % (ws, n["ws"], T),
        numbers(n["sv"]) + "INSERT INTO state_version_outputs (id, sv_id,"
        " name, type, detailed_type, value) SELECT 'wsout-seed' || i,"
        " 'sv-seed' || i, 'o', 'string', '\"string\"', '\"v\"' FROM n",
        "UPDATE workspaces SET current_sv = 'sv-seed' ||"
        " (CAST(substr(id, 8) AS INTEGER) + %d),"
        " current_run_id = 'run-seed' ||"
        " (CAST(substr(id, 8) AS INTEGER) + %d) WHERE id LIKE 'ws-seed%%'"
        % (n["sv"] - n["ws"], n["runs"] - n["ws"]),
        "ANALYZE",
    ]


def run_sql(statements, conninfo=None, sqlite_path=None):
    """Runs statements on PostgreSQL (conninfo, through psql) or on the
    SQLite database file sqlite_path, in one transaction."""
    if conninfo is not None:
        script = ";\n".join(statements) + ";\n"
        subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d",
                        conninfo], input=script, text=True, check=True,
                       capture_output=True)
        return
    db = sqlite3.connect(sqlite_path, timeout=30)
    db.execute("PRAGMA foreign_keys=ON")
    with db:
        for s in statements:
            db.execute(s)
    db.close()


def main(argv):
    """seed.py WORKSPACES (pg CONNINFO | sqlite PATH)"""
    if len(argv) != 4 or argv[2] not in ("pg", "sqlite"):
        raise SystemExit(main.__doc__)
    stmts = seed_sql(scaled(int(argv[1])))
    if argv[2] == "pg":
        run_sql(stmts, conninfo=argv[3])
    else:
        run_sql(stmts, sqlite_path=os.path.abspath(argv[3]))


if __name__ == "__main__":
    import sys
    main(sys.argv)
