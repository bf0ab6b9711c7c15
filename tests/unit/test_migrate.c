/*
 * test_migrate.c - unit tests for src/store/migrate.c: a fresh database
 * gets every migration once, migrating again is a no-op that keeps data,
 * concurrent migrators agree, and a migration cut short by an injected
 * "db.query" fault at any statement leaves a schema a plain re-run can
 * finish (each migration is all or nothing), and the case-insensitive
 * index on organization names (migration 11) neither fails on a database
 * that already holds names differing only in case nor stays missing once
 * they are renamed; store_migrations_pending() says what is left.
 *
 * Runs on SQLite in a temporary directory and, when TERRACE_TEST_PG_URL is
 * set, on PostgreSQL in throwaway databases (otherwise those runs skip).
 * The tests do not hard-code the list of migrations, which grows.
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/fault.h"
#include "core/log.h"
#include "store/store.h"
#include "unit_util.h"

struct fx {
    struct ut_store st; /* not opened: fresh_db() opens databases */
    int seq;            /* SQLite files made: m<seq>.db */
    struct arena *a;
};

static const enum db_kind k_sqlite = DB_SQLITE;
static const enum db_kind k_pg = DB_PG;

static int setup(void **state)
{
    const enum db_kind *kind = *state;
    struct fx *fx = calloc(1, sizeof(*fx));
    fx->a = arena_new();
    *state = fx;
    /* 1: PostgreSQL without a server, fixture() skips */
    return ut_store_prepare(&fx->st, *kind, "test_migrate") < 0 ? -1 : 0;
}

static int teardown(void **state)
{
    struct fx *fx = *state;
    fault_reset();
    int rc = ut_store_close(&fx->st);
    arena_destroy(fx->a);
    free(fx);
    return rc;
}

static struct fx *fixture(void **state)
{
    struct fx *fx = *state;
    if (fx->st.kind == DB_PG && ut_pg_url() == NULL)
        skip();
    return fx;
}

/* Opens an empty database: a new SQLite file, or the test's PostgreSQL
 * database (made by setup) with its public schema wiped. */
static struct db *fresh_db(struct fx *fx, int pool)
{
    struct tr_errbuf eb = {{0}};
    struct db *db = NULL;
    char file[128];
    const char *target = fx->st.target;
    if (fx->st.kind == DB_SQLITE) {
        snprintf(file, sizeof(file), "%s/m%d.db", fx->st.dir, fx->seq++);
        target = file;
    }
    tr_err e = db_open(fx->st.kind, target, pool, &db, &eb);
    if (e != TR_OK)
        fail_msg("db_open: %s", eb.msg);
    if (fx->st.kind == DB_PG) {
        struct db_conn *c = db_acquire(db);
        e = db_x(c, fx->a, NULL, &eb, "DROP SCHEMA public CASCADE", );
        if (e == TR_OK)
            e = db_x(c, fx->a, NULL, &eb, "CREATE SCHEMA public", );
        db_release(c);
        if (e != TR_OK)
            fail_msg("reset schema: %s", eb.msg);
    }
    return db;
}

/* Removes the newest SQLite file (inside loops that make one per round). */
static void drop_last(struct fx *fx)
{
    if (fx->st.kind == DB_PG)
        return; /* fresh_db() wipes the schema */
    const char *suffix[] = {"", "-wal", "-shm"};
    for (int i = 0; i < 3; i++) {
        char path[128];
        snprintf(path, sizeof(path), "%s/m%d.db%s", fx->st.dir, fx->seq - 1,
                 suffix[i]);
        unlink(path);
    }
}

static struct db_rows *query(struct fx *fx, struct db *db, const char *sql)
{
    struct tr_errbuf eb = {{0}};
    struct db_rows *r = NULL;
    struct db_conn *c = db_acquire(db);
    tr_err e = db_query(c, fx->a, sql, 0, NULL, &r, NULL, &eb);
    db_release(c);
    if (e != TR_OK)
        fail_msg("%s: %s", sql, eb.msg);
    return r;
}

static int table_count(struct fx *fx, struct db *db)
{
    const char *sql =
        fx->st.kind == DB_PG
            ? "SELECT count(*) AS n FROM pg_tables WHERE schemaname = 'public'"
            : "SELECT count(*) AS n FROM sqlite_master WHERE type = 'table'";
    return (int)db_get_i64(query(fx, db, sql), 0, "n");
}

static bool has_table(struct fx *fx, struct db *db, const char *name)
{
    const char *sql =
        fx->st.kind == DB_PG
            ? "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
            : "SELECT name AS tablename FROM sqlite_master"
              " WHERE type = 'table'";
    struct db_rows *r = query(fx, db, sql);
    for (int i = 0; i < r->nrows; i++)
        if (strcmp(db_get(r, i, "tablename"), name) == 0)
            return true;
    return false;
}

/* Versions recorded, checked to start at 1, rise, and end at most at
 * the latest.  Numbers are handed out ahead of merging, so a branch may
 * lack one between two it has. */
static int versions(struct fx *fx, struct db *db)
{
    struct db_rows *r =
        query(fx, db, "SELECT version FROM schema_migrations ORDER BY version");
    for (int i = 0; i < r->nrows; i++)
        assert_true(i == 0 ? db_get_i64(r, i, "version") == 1
                           : db_get_i64(r, i, "version") >
                                 db_get_i64(r, i - 1, "version"));
    if (r->nrows > 0)
        assert_true(db_get_i64(r, r->nrows - 1, "version") <=
                    store_schema_latest());
    return r->nrows;
}

static void test_fresh_and_twice(void **state)
{
    struct fx *fx = fixture(state);
    struct db *db = fresh_db(fx, 2);
    struct tr_errbuf eb = {{0}};
    assert_int_equal(store_migrate(db, &eb), TR_OK);
    int nver = versions(fx, db);
    assert_true(nver >= 1);
    int ntables = table_count(fx, db);
    const char *core[] = {
        "schema_migrations", "site_settings",   "users",    "tokens",
        "organizations",     "org_memberships", "projects", "workspaces"};
    for (size_t i = 0; i < sizeof(core) / sizeof(core[0]); i++)
        if (!has_table(fx, db, core[i]))
            fail_msg("table %s missing", core[i]);
    struct db_rows *before =
        query(fx, db,
              "SELECT version, applied_at FROM schema_migrations"
              " ORDER BY version");

    /* data written between runs survives the second run */
    struct st_user u;
    assert_int_equal(
        store_user_create(db, fx->a, "alice", "a@example.com", false, &u, &eb),
        TR_OK);
    assert_int_equal(store_migrate(db, &eb), TR_OK);
    assert_int_equal(store_migrate(db, &eb), TR_OK);
    assert_int_equal(versions(fx, db), nver);
    assert_int_equal(table_count(fx, db), ntables);
    struct db_rows *after =
        query(fx, db,
              "SELECT version, applied_at FROM schema_migrations"
              " ORDER BY version");
    for (int i = 0; i < nver; i++) /* not re-applied */
        assert_string_equal(db_get(before, i, "applied_at"),
                            db_get(after, i, "applied_at"));
    struct st_user got;
    assert_int_equal(store_user_get(db, fx->a, u.id, &got, &eb), TR_OK);
    assert_string_equal(got.username, "alice");
    db_close(db);
}

static void test_reopen(void **state)
{
    struct fx *fx = fixture(state);
    struct tr_errbuf eb = {{0}};
    struct db *db = fresh_db(fx, 1);
    assert_int_equal(store_migrate(db, &eb), TR_OK);
    int nver = versions(fx, db);
    db_close(db);
    /* a restarted demo daemon opens the same file again */
    char path[128];
    snprintf(path, sizeof(path), "%s/m0.db", fx->st.dir);
    assert_int_equal(db_open(DB_SQLITE, path, 2, &db, &eb), TR_OK);
    assert_int_equal(store_migrate(db, &eb), TR_OK);
    assert_int_equal(versions(fx, db), nver);
    db_close(db);
}

struct racer {
    struct db *db;
    tr_err e;
    char msg[TR_ERRBUF_SIZE];
};

static void *race(void *p)
{
    struct racer *r = p;
    struct tr_errbuf eb = {{0}};
    r->e = store_migrate(r->db, &eb);
    memcpy(r->msg, eb.msg, sizeof(r->msg));
    return NULL;
}

static void test_concurrent(void **state)
{
    struct fx *fx = fixture(state);
    enum { N = 4 };
    struct db *db = fresh_db(fx, N);
    pthread_t th[N];
    struct racer r[N];
    for (int i = 0; i < N; i++) {
        r[i] = (struct racer){.db = db};
        assert_int_equal(pthread_create(&th[i], NULL, race, &r[i]), 0);
    }
    for (int i = 0; i < N; i++)
        pthread_join(th[i], NULL);
    for (int i = 0; i < N; i++)
        if (r[i].e != TR_OK)
            fail_msg("migrator %d: %s", i, r[i].msg);
    assert_true(versions(fx, db) >= 1);
    db_close(db);
}

static void test_fault_walk(void **state)
{
    struct fx *fx = fixture(state);
    struct tr_errbuf eb = {{0}};
    /* the reference: a clean run on its own database */
    struct db *ref = fresh_db(fx, 1);
    assert_int_equal(store_migrate(ref, &eb), TR_OK);
    int nver = versions(fx, ref);
    int ntables = table_count(fx, ref);
    db_close(ref);

    for (int n = 1;; n++) {
        /* pool of one: a connection that keeps an advisory lock after an
         * injected unlock failure cannot block a second one */
        struct db *db = fresh_db(fx, 1);
        fault_arm("db.query", n);
        tr_err e = store_migrate(db, &eb);
        bool fired = fault_fired();
        fault_reset();
        if (!fired) {
            assert_int_equal(e, TR_OK);
            assert_int_equal(versions(fx, db), nver);
            db_close(db);
            assert_true(n > 3);
            break;
        }
        /* failed cleanly, or (PostgreSQL) only the final unlock failed */
        if (e == TR_OK)
            assert_int_equal(fx->st.kind, DB_PG);
        else
            assert_int_equal(e, TR_ERR_DB);
        /* all or nothing: no tables of a migration that was not recorded */
        if (has_table(fx, db, "schema_migrations") && versions(fx, db) > 0) {
            assert_true(has_table(fx, db, "users"));
        } else {
            assert_false(has_table(fx, db, "users"));
            assert_false(has_table(fx, db, "organizations"));
            assert_true(table_count(fx, db) <= 1);
        }
        /* and a plain re-run finishes the job */
        if (store_migrate(db, &eb) != TR_OK)
            fail_msg("re-run after fault %d: %s", n, eb.msg);
        assert_int_equal(versions(fx, db), nver);
        assert_int_equal(table_count(fx, db), ntables);
        db_close(db);
        drop_last(fx);
    }
}

static bool has_index(struct fx *fx, struct db *db, const char *name)
{
    const char *sql = fx->st.kind == DB_PG
                          ? "SELECT indexname AS n FROM pg_indexes"
                          : "SELECT name AS n FROM sqlite_master"
                            " WHERE type = 'index'";
    struct db_rows *r = query(fx, db, sql);
    for (int i = 0; i < r->nrows; i++)
        if (strcmp(db_get(r, i, "n"), name) == 0)
            return true;
    return false;
}

static tr_err add_org(struct fx *fx, struct db *db, const char *name)
{
    struct db_conn *c = db_acquire(db);
    tr_err e = db_x(c, fx->a, NULL, NULL,
                    "INSERT INTO organizations (name, id, email, created_at)"
                    " VALUES ($1, $1, 'o@x', '2024-01-01T00:00:00.000Z')",
                    name);
    db_release(c);
    return e;
}

static void test_org_names_any_case(void **state)
{
    struct fx *fx = fixture(state);
    struct tr_errbuf eb = {{0}};
    /* a fresh database: the index holds */
    struct db *db = fresh_db(fx, 1);
    assert_int_equal(store_migrate(db, &eb), TR_OK);
    assert_true(has_index(fx, db, "organizations_lname"));
    assert_int_equal(add_org(fx, db, "Acme"), TR_OK);
    assert_int_equal(add_org(fx, db, "aCME"), TR_ERR_CONFLICT);
    db_close(db);
    drop_last(fx);
    /* a database from before, holding Acme and acme: migrating works */
    db = fresh_db(fx, 1);
    assert_int_equal(store_migrate_to(db, 10, &eb), TR_OK);
    assert_int_equal(add_org(fx, db, "Acme"), TR_OK);
    assert_int_equal(add_org(fx, db, "acme"), TR_OK);
    assert_int_equal(add_org(fx, db, "other"), TR_OK);
    log_set_level(LOG_ERROR); /* the warning is expected */
    assert_int_equal(store_migrate(db, &eb), TR_OK);
    assert_int_equal(store_migrate(db, &eb), TR_OK); /* and every start */
    log_set_level(LOG_WARN);
    assert_false(has_index(fx, db, "organizations_lname"));
    int nver = versions(fx, db);
    /* the store still refuses a third spelling */
    assert_int_equal(
        store_org_create(db, fx->a, "ACME", "o@x", NULL, NULL, NULL, &eb),
        TR_ERR_INVALID);
    assert_string_equal(eb.msg, "name ACME has already been taken");
    assert_int_equal(
        store_org_update(db, fx->a, "other", "ACME", NULL, NULL, &eb),
        TR_ERR_INVALID);
    assert_int_equal(
        store_org_update(db, fx->a, "other", "OTHER", NULL, NULL, &eb), TR_OK);
    /* renamed apart: the next start adds the index */
    assert_int_equal(
        store_org_update(db, fx->a, "acme", "acme-2", NULL, NULL, &eb), TR_OK);
    assert_int_equal(store_migrate(db, &eb), TR_OK);
    assert_true(has_index(fx, db, "organizations_lname"));
    assert_int_equal(versions(fx, db), nver);
    assert_int_equal(add_org(fx, db, "ACME-2"), TR_ERR_CONFLICT);
    db_close(db);
    drop_last(fx);
}

/* store_migrations_pending() counts what this binary has and the
 * database has not recorded; a database never migrated is an error. */
/* Migration 20: members from before keep their membership ids and get
 * the active status; only active memberships give access. */
static void test_memberships_move(void **state)
{
    struct fx *fx = fixture(state);
    struct tr_errbuf eb = {{0}};
    struct db *db = fresh_db(fx, 1);
    assert_int_equal(store_migrate_to(db, 18, &eb), TR_OK);
    struct db_conn *c = db_acquire(db);
    assert_int_equal(
        db_x(c, fx->a, NULL, &eb,
             "INSERT INTO users (id, username, email, created_at) VALUES"
             " ('user-AAAAAAAAAAAAAAAA', 'ann', 'Ann@x.example', '2024'),"
             " ('user-BBBBBBBBBBBBBBBB', 'bob', 'bob@x.example', '2024')", ),
        TR_OK);
    assert_int_equal(
        db_x(c, fx->a, NULL, &eb,
             "INSERT INTO organizations (name, id, email, created_at)"
             " VALUES ('acme', 'org-CCCCCCCCCCCCCCCC', 'o@x',"
             " '2024-01-01T00:00:00.000Z')", ),
        TR_OK);
    assert_int_equal(db_x(c, fx->a, NULL, &eb,
                          "INSERT INTO org_members (org, user_id) VALUES"
                          " ('acme', 'user-AAAAAAAAAAAAAAAA')", ),
                     TR_OK);
    db_release(c);
    assert_int_equal(store_migrate(db, &eb), TR_OK);
    struct st_membership m;
    assert_int_equal(store_membership_get(db, fx->a,
                                          "ou-AAAAAAAAAAAAAAAACCCCCCCCCCCCCCCC",
                                          &m, &eb),
                     TR_OK);
    assert_string_equal(m.status, "active");
    assert_string_equal(m.org, "acme");
    assert_string_equal(m.user_id, "user-AAAAAAAAAAAAAAAA");
    assert_string_equal(m.email, "Ann@x.example");
    assert_string_equal(m.created_at, "2024-01-01T00:00:00.000Z");
    bool member = false;
    assert_int_equal(store_org_is_member(db, fx->a, "acme",
                                         "user-AAAAAAAAAAAAAAAA", &member, &eb),
                     TR_OK);
    assert_true(member);
    /* an invitation is not access */
    assert_int_equal(
        store_membership_invite(db, fx->a, "acme", "BOB@x.example", &m, &eb),
        TR_OK);
    assert_string_equal(m.status, "invited");
    assert_string_equal(m.user_id, "user-BBBBBBBBBBBBBBBB");
    assert_int_equal(store_org_is_member(db, fx->a, "acme",
                                         "user-BBBBBBBBBBBBBBBB", &member, &eb),
                     TR_OK);
    assert_false(member);
    assert_true(has_table(fx, db, "org_memberships"));
    assert_false(has_table(fx, db, "org_members")); /* a view now */
    db_close(db);
    drop_last(fx);
}

static void test_pending(void **state)
{
    struct fx *fx = fixture(state);
    struct db *db = fresh_db(fx, 1);
    struct tr_errbuf eb = {{0}};
    int pending = -1;
    assert_int_not_equal(store_migrations_pending(db, &pending, &eb), TR_OK);
    assert_int_equal(store_migrate_to(db, 3, &eb), TR_OK);
    assert_int_equal(store_migrations_pending(db, &pending, &eb), TR_OK);
    assert_int_equal(store_migrate(db, &eb), TR_OK);
    int nver = versions(fx, db);
    assert_int_equal(pending, nver - 3);
    assert_int_equal(store_migrations_pending(db, &pending, &eb), TR_OK);
    assert_int_equal(pending, 0);
    /* a migration recorded by a newer binary is not pending here */
    query(fx, db,
          "INSERT INTO schema_migrations (version, applied_at)"
          " VALUES (100000, 'x')");
    assert_int_equal(store_migrations_pending(db, &pending, &eb), TR_OK);
    assert_int_equal(pending, 0);
    db_close(db);
    drop_last(fx);
}

#define BOTH(f)                                                                \
    {"sqlite/" #f, f, setup, teardown, (void *)&k_sqlite},                     \
    {                                                                          \
        "pg/" #f, f, setup, teardown, (void *)&k_pg                            \
    }

int main(void)
{
    log_set_level(LOG_WARN);
    const struct CMUnitTest tests[] = {
        BOTH(test_fresh_and_twice),
        /* SQLite only: a restarted demo daemon reopens its file */
        {"sqlite/test_reopen", test_reopen, setup, teardown, (void *)&k_sqlite},
        BOTH(test_concurrent),
        BOTH(test_fault_walk),
        BOTH(test_org_names_any_case),
        BOTH(test_pending),
        BOTH(test_memberships_move),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
