/*
 * migrate.c - numbered schema migrations embedded in the binary.
 *
 * Each migration runs in its own transaction and records its number in
 * schema_migrations.  On PostgreSQL an advisory lock serialises primaries
 * starting together; on SQLite BEGIN IMMEDIATE does the same.  Migrations
 * are appended, never edited once released.  The SQL is the portable
 * subset: TEXT, BIGINT, INTEGER 0/1 for booleans, ISO-8601 text times.
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#include <stdio.h>
#include <string.h>

#include "core/log.h"
#include "store/store.h"

struct migration {
    int version;
    const char *sql;
};

static const struct migration migrations[] = {
    {1,
     "CREATE TABLE site_settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);"
     "CREATE TABLE users ("
     " id TEXT PRIMARY KEY, username TEXT NOT NULL UNIQUE,"
     " email TEXT NOT NULL DEFAULT '', is_admin INTEGER NOT NULL DEFAULT 0,"
     " created_at TEXT NOT NULL);"
     "CREATE TABLE tokens ("
     " id TEXT PRIMARY KEY, kind TEXT NOT NULL, subject TEXT NOT NULL,"
     " hash TEXT NOT NULL UNIQUE, description TEXT NOT NULL DEFAULT '',"
     " created_by TEXT, created_at TEXT NOT NULL, last_used_at TEXT,"
     " expired_at TEXT);"
     "CREATE INDEX tokens_subject ON tokens (kind, subject);"
     "CREATE TABLE organizations ("
     " name TEXT PRIMARY KEY, id TEXT NOT NULL UNIQUE,"
     " email TEXT NOT NULL, settings TEXT NOT NULL DEFAULT '{}',"
     " created_at TEXT NOT NULL);"
     "CREATE TABLE org_members ("
     " org TEXT NOT NULL REFERENCES organizations(name)"
     "   ON DELETE CASCADE ON UPDATE CASCADE,"
     " user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,"
     " PRIMARY KEY (org, user_id));"
     "CREATE TABLE projects ("
     " id TEXT PRIMARY KEY, org TEXT NOT NULL REFERENCES organizations(name)"
     "   ON DELETE CASCADE ON UPDATE CASCADE,"
     " name TEXT NOT NULL, description TEXT NOT NULL DEFAULT '',"
     " is_default INTEGER NOT NULL DEFAULT 0, created_at TEXT NOT NULL,"
     " UNIQUE (org, name));"
     "CREATE TABLE workspaces ("
     " id TEXT PRIMARY KEY, org TEXT NOT NULL REFERENCES organizations(name)"
     "   ON DELETE CASCADE ON UPDATE CASCADE,"
     " name TEXT NOT NULL, project_id TEXT NOT NULL REFERENCES projects(id),"
     " description TEXT NOT NULL DEFAULT '',"
     " execution_mode TEXT NOT NULL DEFAULT 'remote',"
     " terraform_version TEXT NOT NULL DEFAULT 'latest',"
     " auto_apply INTEGER NOT NULL DEFAULT 0,"
     " working_directory TEXT NOT NULL DEFAULT '',"
     " locked INTEGER NOT NULL DEFAULT 0, lock_kind TEXT, lock_holder TEXT,"
     " lock_reason TEXT NOT NULL DEFAULT '',"
     " current_sv TEXT, settings TEXT NOT NULL DEFAULT '{}',"
     " created_at TEXT NOT NULL, updated_at TEXT NOT NULL,"
     " UNIQUE (org, name));"
     "CREATE TABLE tags ("
     " id TEXT PRIMARY KEY, org TEXT NOT NULL REFERENCES organizations(name)"
     "   ON DELETE CASCADE ON UPDATE CASCADE,"
     " name TEXT NOT NULL, created_at TEXT NOT NULL, UNIQUE (org, name));"
     "CREATE TABLE workspace_tags ("
     " workspace_id TEXT NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,"
     " tag_id TEXT NOT NULL REFERENCES tags(id) ON DELETE CASCADE,"
     " PRIMARY KEY (workspace_id, tag_id));"
     "CREATE TABLE state_versions ("
     " id TEXT PRIMARY KEY,"
     " workspace_id TEXT NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,"
     " seq BIGINT NOT NULL, serial BIGINT NOT NULL, lineage TEXT NOT NULL,"
     " md5 TEXT NOT NULL, sha256 TEXT NOT NULL DEFAULT '',"
     " size BIGINT NOT NULL DEFAULT 0, status TEXT NOT NULL,"
     " blob_key TEXT NOT NULL, json_blob_key TEXT,"
     " run_id TEXT, created_by TEXT, terraform_version TEXT NOT NULL DEFAULT '',"
     " resources TEXT NOT NULL DEFAULT '[]',"
     " created_at TEXT NOT NULL, UNIQUE (workspace_id, seq));"
     "CREATE TABLE state_version_outputs ("
     " id TEXT PRIMARY KEY,"
     " sv_id TEXT NOT NULL REFERENCES state_versions(id) ON DELETE CASCADE,"
     " name TEXT NOT NULL, sensitive INTEGER NOT NULL DEFAULT 0,"
     " type TEXT NOT NULL, detailed_type TEXT NOT NULL, value TEXT NOT NULL);"
     "CREATE INDEX svo_sv ON state_version_outputs (sv_id);"},
    /* 2: a pending state version remembers whether it was created with
     * force, so its upload is finalized under the same rules */
    {2,
     "ALTER TABLE state_versions"
     " ADD COLUMN forced INTEGER NOT NULL DEFAULT 0;"},
};

#define NMIGRATIONS ((int)(sizeof(migrations) / sizeof(migrations[0])))

/* Splits on ';' (our migrations contain no ';' inside literals). */
static tr_err run_script(struct db_conn *c, struct arena *a, const char *sql,
                         struct tr_errbuf *eb)
{
    char *copy = arena_strdup(a, sql);
    char *save = NULL;
    for (char *s = strtok_r(copy, ";", &save); s != NULL;
         s = strtok_r(NULL, ";", &save)) {
        while (*s == ' ' || *s == '\n')
            s++;
        if (*s == '\0')
            continue;
        tr_err e = db_query(c, a, s, 0, NULL, NULL, NULL, eb);
        if (e != TR_OK)
            return e;
    }
    return TR_OK;
}

tr_err store_migrate(struct db *db, struct tr_errbuf *eb)
{
    struct db_conn *c = db_acquire(db);
    struct arena *a = arena_new();
    tr_err e;
    bool pg = db_kind(db) == DB_PG;
    if (pg) {
        e = db_q(c, a, NULL, eb, "SELECT pg_advisory_lock($1)", "7410001");
        if (e != TR_OK)
            goto out;
    }
    e = db_query(c, a,
                 "CREATE TABLE IF NOT EXISTS schema_migrations ("
                 " version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)",
                 0, NULL, NULL, NULL, eb);
    if (e != TR_OK)
        goto unlock;
    for (int i = 0; i < NMIGRATIONS; i++) {
        char ver[16];
        snprintf(ver, sizeof(ver), "%d", migrations[i].version);
        struct db_rows *r = NULL;
        e = db_begin(c, eb);
        if (e != TR_OK)
            goto unlock;
        e = db_q(c, a, &r, eb,
                 "SELECT version FROM schema_migrations WHERE version = $1",
                 ver);
        if (e == TR_OK && r->nrows == 0) {
            log_info("applying schema migration %d", migrations[i].version);
            e = run_script(c, a, migrations[i].sql, eb);
            if (e == TR_OK)
                e = db_x(c, a, NULL, eb,
                         "INSERT INTO schema_migrations (version, applied_at)"
                         " VALUES ($1, $2)",
                         ver, util_now_iso(a));
        }
        if (e != TR_OK) {
            db_rollback(c);
            goto unlock;
        }
        e = db_commit(c, eb);
        if (e != TR_OK)
            goto unlock;
    }
unlock:
    if (pg)
        db_q(c, a, NULL, NULL, "SELECT pg_advisory_unlock($1)", "7410001");
out:
    arena_destroy(a);
    db_release(c);
    return e;
}
