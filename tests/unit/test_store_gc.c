/*
 * test_store_gc.c - unit tests for src/store/store_gc.c (which blob keys
 * rows reference, stale log chunks) and a whole garbage collection pass
 * (src/domain/blob_gc.c) over a filesystem blob store, on SQLite and,
 * when TERRACE_TEST_PG_URL is set, on PostgreSQL.
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <utime.h>

#include "blob/blob.h"
#include "core/server.h"
#include "domain/blob_gc.h"
#include "store/store.h"
#include "unit_util.h"

struct fx {
    struct ut_store st;
    struct db *db; /* st.db */
    struct arena *a;
};

static const enum db_kind k_sqlite = DB_SQLITE;
static const enum db_kind k_pg = DB_PG;

/* Two workspaces' rows: every kind of key a row may name. */
static const char *const fixtures[] = {
    "INSERT INTO organizations (name, id, email, created_at)"
    " VALUES ('o', 'org-1', 'o@x', 'now')",
    "INSERT INTO projects (id, org, name, is_default, created_at)"
    " VALUES ('prj-1', 'o', 'Default Project', 1, 'now')",
    "INSERT INTO workspaces (id, org, name, project_id, created_at,"
    " updated_at) VALUES ('ws-A', 'o', 'w1', 'prj-1', 'now', 'now')",
    "INSERT INTO state_versions (id, workspace_id, seq, serial, lineage,"
    " md5, status, blob_key, json_blob_key, created_at) VALUES"
    " ('sv-1', 'ws-A', 1, 1, 'L', 'm', 'finalized',"
    " 'state/ws-A/sv-1.tfstate', 'state/ws-A/sv-1-j-9.json', 'now')",
    "INSERT INTO configuration_versions (id, workspace_id, status,"
    " blob_key, created_at) VALUES ('cv-1', 'ws-A', 'uploaded',"
    " 'config/ws-A/cv-1-u-2.tar.gz', 'now')",
    "INSERT INTO runs (id, workspace_id, status, queue_seq, created_at)"
    " VALUES ('run-1', 'ws-A', 'applying', 1, 'now')",
    "INSERT INTO plans (id, run_id, status, log_blob_key, plan_blob_key,"
    " json_blob_key, redacted_json_blob_key) VALUES ('plan-1', 'run-1',"
    " 'finished', 'logs/plan-1.log', 'runs/run-1/plan.tfplan',"
    " 'runs/run-1/plan.json', 'runs/run-1/plan-redacted.json')",
    "INSERT INTO applies (id, run_id, status) VALUES"
    " ('apply-1', 'run-1', 'running')",
    "INSERT INTO jobs (id, run_id, phase, status, created_at) VALUES"
    " ('job-1', 'run-1', 'apply', 'running', 'now'),"
    " ('job-0', 'run-1', 'plan', 'done', 'now')",
    "INSERT INTO log_chunks (phase_id, seq, byte_offset, len, data) VALUES"
    " ('apply-1', 1, 0, 2, 'ab'), ('plan-1', 1, 0, 2, 'ab'),"
    " ('plan-gone', 1, 0, 2, 'ab'), ('plan-gone', 2, 2, 2, 'cd')",
};

static int setup(void **state)
{
    const enum db_kind *kind = *state;
    struct fx *fx = calloc(1, sizeof(*fx));
    *state = fx;
    int rc = ut_store_open(&fx->st, *kind, 2, "test_store_gc");
    if (rc != 0)
        return rc > 0 ? 0 : -1; /* 1: the test skips */
    fx->db = fx->st.db;
    fx->a = arena_new();
    return ut_run_sql(fx->db, fx->a, fixtures,
                      sizeof(fixtures) / sizeof(fixtures[0]));
}

static int teardown(void **state)
{
    struct fx *fx = *state;
    arena_destroy(fx->a);
    int rc = ut_store_close(&fx->st);
    free(fx);
    return rc;
}

static struct fx *fixture(void **state)
{
    struct fx *fx = *state;
    if (fx->db == NULL)
        skip();
    return fx;
}

static void test_refs(void **state)
{
    struct fx *fx = fixture(state);
    static const struct {
        const char *key;
        bool ref;
    } cases[] = {
        {"state/ws-A/sv-1.tfstate", true},
        {"state/ws-A/sv-1-j-9.json", true},
        {"state/ws-A/sv-1.json", false},     /* not the recorded JSON */
        {"state/ws-A/sv-1-j-8.json", false}, /* a losing upload */
        {"state/ws-B/sv-2.tfstate", false},  /* its workspace is gone */
        {"config/ws-A/cv-1-u-2.tar.gz", true},
        {"config/ws-A/cv-1-u-1.tar.gz", false}, /* replaced */
        {"config/ws-A/cv-7-u-1.tar.gz", false}, /* never recorded */
        {"runs/run-1/plan.tfplan", true},
        {"runs/run-1/plan.json", true},
        {"runs/run-1/plan-redacted.json", true},
        {"runs/run-2/plan.tfplan", false},
        {"logs/plan-1.log", true},
        {"logs/apply-1.log", false}, /* not compacted (yet) */
        {"logs/plan-3.log", false},
        {"jobs/job-1/plan", true},  /* running */
        {"jobs/job-0/plan", false}, /* done */
        {"jobs/job-5/schemas", false},
        /* forms it does not know: kept */
        {"health/probe", true},
        {"state/sv-1.tfstate", true},
        {"state/ws-A/xx-1.tfstate", true},
        {"runs/run-/plan.json", true},
        {"logs/plan-1", true},
        {"registry/x/y.zip", true},
    };
    int n = (int)(sizeof(cases) / sizeof(cases[0]));
    const char *keys[64];
    bool ref[64];
    for (int i = 0; i < n; i++) {
        keys[i] = cases[i].key;
        ref[i] = !cases[i].ref; /* must be overwritten */
    }
    struct tr_errbuf eb = {{0}};
    assert_int_equal(store_blob_refs(fx->db, fx->a, keys, n, ref, &eb), TR_OK);
    for (int i = 0; i < n; i++) {
        if (ref[i] != cases[i].ref)
            fail_msg("%s: referenced %d, want %d", keys[i], ref[i],
                     cases[i].ref);
    }
    /* an empty page asks nothing */
    assert_int_equal(store_blob_refs(fx->db, fx->a, keys, 0, ref, &eb), TR_OK);
}

/* A full page: the IN lists hold STORE_GC_PAGE ids, duplicates too. */
static void test_refs_full_page(void **state)
{
    struct fx *fx = fixture(state);
    const char **keys = arena_alloc(fx->a, sizeof(char *) * STORE_GC_PAGE);
    bool *ref = arena_alloc(fx->a, sizeof(bool) * STORE_GC_PAGE);
    for (int i = 0; i < STORE_GC_PAGE; i++)
        keys[i] = i % 7 == 0 ? "state/ws-A/sv-1.tfstate"
                  : i % 2    ? arena_printf(fx->a, "logs/plan-x%d.log", i)
                             : arena_printf(fx->a, "runs/run-%d/plan.json", i);
    struct tr_errbuf eb = {{0}};
    assert_int_equal(
        store_blob_refs(fx->db, fx->a, keys, STORE_GC_PAGE, ref, &eb), TR_OK);
    for (int i = 0; i < STORE_GC_PAGE; i++)
        assert_int_equal(ref[i], i % 7 == 0);
}

static void test_log_chunks(void **state)
{
    struct fx *fx = fixture(state);
    struct tr_errbuf eb = {{0}};
    int64_t n = -1, total = 0;
    const char *next = NULL;
    /* one phase a batch, in id order: apply-1 (live), plan-1 (compacted),
     * plan-gone (no phase), then the end */
    const char *after = "";
    const char *want[] = {"apply-1", "plan-1", "plan-gone"};
    for (int i = 0; i < 3; i++) {
        assert_int_equal(
            store_log_chunks_gc(fx->db, fx->a, after, 1, &next, &n, &eb),
            TR_OK);
        assert_non_null(next);
        assert_string_equal(next, want[i]);
        total += n;
        after = next;
    }
    assert_int_equal(
        store_log_chunks_gc(fx->db, fx->a, after, 1, &next, &n, &eb), TR_OK);
    assert_null(next);
    assert_int_equal(n, 0);
    assert_int_equal(total, 3);
    assert_int_equal(
        ut_count(fx->db, fx->a, "SELECT count(*) AS n FROM log_chunks"), 1);
    assert_int_equal(ut_count(fx->db, fx->a,
                              "SELECT count(*) AS n FROM log_chunks"
                              " WHERE phase_id = 'apply-1'"),
                     1);
    /* a batch larger than what is left ends the sweep at once */
    assert_int_equal(
        store_log_chunks_gc(fx->db, fx->a, "", 100, &next, &n, &eb), TR_OK);
    assert_null(next);
    assert_int_equal(n, 0);
}

/* Writes key with a last-write time age seconds ago. */
static void put_aged(struct blob *b, const char *dir, const char *key, int age)
{
    struct tr_errbuf eb = {{0}};
    assert_int_equal(blob_put(b, key, "0123456789", 10, &eb), TR_OK);
    char path[512];
    snprintf(path, sizeof(path), "%s/objects/%s", dir, key);
    time_t t = time(NULL) - age;
    struct utimbuf ub = {.actime = t, .modtime = t};
    assert_int_equal(utime(path, &ub), 0);
}

static bool present(const char *dir, const char *key)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/objects/%s", dir, key);
    return access(path, F_OK) == 0;
}

static void test_pass(void **state)
{
    struct fx *fx = fixture(state);
    char dir[128];
    assert_true(ut_mkdtemp(dir, sizeof(dir), "test_store_gc_blob"));
    struct terrace_server *srv = calloc(1, sizeof(*srv));
    struct tr_errbuf eb = {{0}};
    srv->db = fx->db;
    assert_int_equal(blob_open_fs(dir, &srv->blob, &eb), TR_OK);
    static const char *const keep[] = {
        "state/ws-A/sv-1.tfstate", "runs/run-1/plan.tfplan",
        "jobs/job-1/plan",         "health/probe",
        "state/ws-A/sv-9.tfstate", /* unreferenced but young */
    };
    static const char *const drop[] = {
        "state/ws-B/sv-2.tfstate",
        "state/ws-B/sv-2.json",
        "config/ws-A/cv-1-u-1.tar.gz",
        "jobs/job-0/plan",
        "logs/plan-3.log",
    };
    for (size_t i = 0; i < 4; i++)
        put_aged(srv->blob, dir, keep[i], 100);
    put_aged(srv->blob, dir, keep[4], 5);
    for (size_t i = 0; i < 5; i++)
        put_aged(srv->blob, dir, drop[i], 100);
    struct blob_gc_stats st;
    assert_int_equal(blob_gc_pass(srv, 60, &st, &eb), TR_OK);
    assert_int_equal(st.listed, 11); /* and gc/database-id, just made */
    assert_int_equal(st.young, 2);
    assert_int_equal(st.removed, 5);
    assert_int_equal(st.removed_bytes, 50);
    assert_int_equal(st.failed, 0);
    for (size_t i = 0; i < 5; i++) {
        if (!present(dir, keep[i]))
            fail_msg("%s was removed", keep[i]);
        if (present(dir, drop[i]))
            fail_msg("%s was kept", drop[i]);
    }
    /* with no grace at all the young orphan goes too */
    assert_int_equal(blob_gc_pass(srv, 0, &st, &eb), TR_OK);
    assert_int_equal(st.removed, 1);
    assert_false(present(dir, keep[4]));
    assert_true(present(dir, keep[0]));
    assert_true(present(dir, "gc/database-id"));
    /* a store marked by another database is left alone */
    assert_int_equal(blob_put(srv->blob, "gc/database-id", "db-other", 8, &eb),
                     TR_OK);
    put_aged(srv->blob, dir, drop[0], 100);
    assert_int_equal(blob_gc_pass(srv, 0, &st, &eb), TR_ERR_CONFLICT);
    assert_non_null(strstr(eb.msg, "another database"));
    assert_int_equal(st.removed, 0);
    assert_true(present(dir, drop[0]));
    blob_close(srv->blob);
    free(srv);
    ut_rmtree(dir);
}

#define GROUP(kind)                                                            \
    {                                                                          \
        cmocka_unit_test_prestate_setup_teardown(test_refs, setup, teardown,   \
                                                 (void *)&kind),               \
            cmocka_unit_test_prestate_setup_teardown(                          \
                test_refs_full_page, setup, teardown, (void *)&kind),          \
            cmocka_unit_test_prestate_setup_teardown(test_log_chunks, setup,   \
                                                     teardown, (void *)&kind), \
            cmocka_unit_test_prestate_setup_teardown(test_pass, setup,         \
                                                     teardown, (void *)&kind), \
    }

int main(void)
{
    const struct CMUnitTest sqlite[] = GROUP(k_sqlite);
    const struct CMUnitTest pg[] = GROUP(k_pg);
    int rc = cmocka_run_group_tests_name("store_gc sqlite", sqlite, NULL, NULL);
    rc |= cmocka_run_group_tests_name("store_gc pg", pg, NULL, NULL);
    return rc;
}
