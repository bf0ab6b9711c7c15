/*
 * test_fault.c - unit tests for src/core/fault.c, and the fault walk over
 * store_org_create (STYLE.md rule 13): fail its Nth database call for
 * N = 1, 2, ... until a run finishes without the fault firing, and after
 * every injected failure expect an error, no partial rows (no
 * organization, no default project, no membership) and a pool whose
 * connections carry no leftover transaction.  ASan checks for leaks.
 *
 * The store walk runs on SQLite, and on PostgreSQL when
 * TERRACE_TEST_PG_URL is set (otherwise that run skips).
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/fault.h"
#include "core/log.h"
#include "store/store.h"
#include "unit_util.h"

#define POOL 2

/* ---- the facility ------------------------------------------------------- */

static int reset(void **state)
{
    (void)state;
    fault_reset();
    return 0;
}

static void test_disarmed(void **state)
{
    (void)state;
    for (int i = 0; i < 1000; i++)
        assert_false(fault_hit("db.query"));
    assert_int_equal(fault_calls(), 0);
    assert_false(fault_fired());
}

static void test_nth_call_only(void **state)
{
    (void)state;
    fault_arm("db.query", 3);
    assert_false(fault_fired());
    assert_false(fault_hit("db.query"));
    assert_false(fault_hit("blob.put")); /* other sites do not count */
    assert_false(fault_hit("db.query"));
    assert_true(fault_hit("db.query")); /* the 3rd */
    assert_true(fault_fired());
    for (int i = 0; i < 10; i++) /* one failure, then back to normal */
        assert_false(fault_hit("db.query"));
    assert_int_equal(fault_calls(), 13);
    /* re-arming starts the count again */
    fault_arm("blob.put", 1);
    assert_false(fault_fired());
    assert_int_equal(fault_calls(), 0);
    assert_false(fault_hit("db.query"));
    assert_true(fault_hit("blob.put"));
    fault_reset();
    assert_false(fault_fired());
    assert_int_equal(fault_calls(), 0);
    assert_false(fault_hit("blob.put"));
    /* a site name is matched whole */
    fault_arm("db", 1);
    assert_false(fault_hit("db.query"));
    assert_int_equal(fault_calls(), 0);
}

static void test_arm_spec(void **state)
{
    (void)state;
    const char *bad[] = {
        "",           "db.query",    ":3",          "db.query:",
        "db.query:0", "db.query:-1", "db.query:2x", "x:9999999"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_false(fault_arm_spec(bad[i]));
        assert_false(fault_hit("db.query"));
    }
    assert_true(fault_arm_spec("auth.lookup:2"));
    assert_false(fault_hit("auth.lookup"));
    assert_true(fault_hit("auth.lookup"));
    assert_false(fault_hit("auth.lookup"));
}

/* "site:n:kill": the nth call kills the process, the ones before not. */
static void test_arm_spec_kill(void **state)
{
    (void)state;
    assert_false(fault_arm_spec("blob.written:kill"));
    assert_false(fault_arm_spec("blob.written:0:kill"));
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        if (!fault_arm_spec("blob.written:2:kill") || fault_hit("blob.written"))
            _exit(1);
        fault_hit("blob.written");
        _exit(2); /* not reached */
    }
    int st = 0;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFSIGNALED(st));
    assert_int_equal(WTERMSIG(st), SIGKILL);
    /* a plain spec armed after a kill spec only fails */
    assert_true(fault_arm_spec("blob.written:1"));
    assert_true(fault_hit("blob.written"));
}

static atomic_int hits;

static void *hammer(void *p)
{
    (void)p;
    for (int i = 0; i < 5000; i++)
        if (fault_hit("db.query"))
            atomic_fetch_add(&hits, 1);
    return NULL;
}

static void test_threads(void **state)
{
    (void)state;
    enum { T = 4 };
    atomic_store(&hits, 0);
    fault_arm("db.query", 7777);
    pthread_t th[T];
    for (int i = 0; i < T; i++)
        assert_int_equal(pthread_create(&th[i], NULL, hammer, NULL), 0);
    for (int i = 0; i < T; i++)
        pthread_join(th[i], NULL);
    assert_int_equal(atomic_load(&hits), 1);
    assert_int_equal(fault_calls(), T * 5000);
}

/* ---- store fixture ------------------------------------------------------ */

struct fx {
    struct ut_store st;
    struct db *db; /* st.db */
    struct arena *a;
    struct st_user owner;
};

static const enum db_kind k_sqlite = DB_SQLITE;
static const enum db_kind k_pg = DB_PG;

static int setup(void **state)
{
    const enum db_kind *kind = *state;
    struct fx *fx = calloc(1, sizeof(*fx));
    fx->a = arena_new();
    *state = fx;
    fault_reset();
    int rc = ut_store_open(&fx->st, *kind, POOL, "test_fault");
    if (rc != 0)
        return rc > 0 ? 0 : -1; /* 1: the test skips */
    fx->db = fx->st.db;
    struct tr_errbuf eb = {{0}};
    if (store_user_create(fx->db, fx->a, "owner", "owner@example.com", false,
                          &fx->owner, &eb) != TR_OK) {
        fprintf(stderr, "setup: %s\n", eb.msg);
        return -1;
    }
    return 0;
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
    if (fx->db == NULL)
        skip();
    return fx;
}

static int64_t count(struct fx *fx, const char *sql, const char *arg)
{
    struct tr_errbuf eb = {{0}};
    struct db_rows *r = NULL;
    struct db_conn *c = db_acquire(fx->db);
    tr_err e = db_q(c, fx->a, &r, &eb, sql, arg);
    db_release(c);
    if (e != TR_OK)
        fail_msg("%s: %s", sql, eb.msg);
    return db_get_i64(r, 0, "n");
}

/* Every pooled connection can start and finish a write transaction, so
 * none was left inside one. */
static void assert_pool_clean(struct fx *fx)
{
    struct db_conn *c[POOL];
    struct tr_errbuf eb = {{0}};
    for (int i = 0; i < POOL; i++)
        c[i] = db_acquire(fx->db);
    for (int i = 0; i < POOL; i++) {
        if (db_begin(c[i], &eb) != TR_OK)
            fail_msg("connection %d: %s", i, eb.msg);
        if (db_x(c[i], fx->a, NULL, &eb,
                 "UPDATE users SET email = email WHERE id = $1",
                 fx->owner.id) != TR_OK ||
            db_commit(c[i], &eb) != TR_OK)
            fail_msg("connection %d: %s", i, eb.msg);
    }
    for (int i = 0; i < POOL; i++)
        db_release(c[i]);
}

static void test_db_query_site(void **state)
{
    struct fx *fx = fixture(state);
    struct tr_errbuf eb = {{0}};
    struct db_conn *c = db_acquire(fx->db);
    fault_arm("db.query", 2);
    assert_int_equal(db_x(c, fx->a, NULL, &eb, "SELECT 1", ), TR_OK);
    int64_t affected = -1;
    assert_int_equal(db_x(c, fx->a, &affected, &eb,
                          "DELETE FROM users WHERE id = $1", fx->owner.id),
                     TR_ERR_DB);
    assert_string_equal(eb.msg, "injected fault");
    assert_int_equal(affected, -1); /* out-params untouched */
    db_release(c);
    fault_reset();
    /* the statement never ran */
    assert_int_equal(count(fx,
                           "SELECT count(*) AS n FROM users"
                           " WHERE id = $1",
                           fx->owner.id),
                     1);
    /* a fault at BEGIN or COMMIT leaves no transaction behind */
    c = db_acquire(fx->db);
    fault_arm("db.query", 1);
    assert_int_equal(db_begin(c, &eb), TR_ERR_DB);
    fault_reset();
    assert_int_equal(db_begin(c, &eb), TR_OK);
    assert_int_equal(db_x(c, fx->a, NULL, &eb,
                          "UPDATE users SET email = $1 WHERE id = $2",
                          "changed@example.com", fx->owner.id),
                     TR_OK);
    fault_arm("db.query", 1);
    assert_int_equal(db_commit(c, &eb), TR_ERR_DB);
    fault_reset();
    db_release(c);
    assert_int_equal(count(fx,
                           "SELECT count(*) AS n FROM users"
                           " WHERE email = $1",
                           "changed@example.com"),
                     0);
    assert_pool_clean(fx);
}

static void assert_no_org(struct fx *fx, const char *name)
{
    struct tr_errbuf eb = {{0}};
    struct st_org o;
    assert_int_equal(store_org_get(fx->db, fx->a, name, &o, &eb),
                     TR_ERR_NOT_FOUND);
    assert_int_equal(
        count(fx, "SELECT count(*) AS n FROM projects WHERE org = $1", name),
        0);
    assert_int_equal(
        count(fx, "SELECT count(*) AS n FROM org_members WHERE org = $1", name),
        0);
}

static void test_org_create_walk(void **state)
{
    struct fx *fx = fixture(state);
    struct tr_errbuf eb = {{0}};
    int faults = 0;
    for (int n = 1; n < 1000; n++) {
        struct arena *a = arena_new();
        struct st_org o = {0};
        eb.msg[0] = '\0';
        fault_arm("db.query", n);
        tr_err e = store_org_create(fx->db, a, "acme", "ops@acme.example", NULL,
                                    fx->owner.id, &o, &eb);
        bool fired = fault_fired();
        fault_reset();
        if (!fired) {
            /* ran to the end: everything is there */
            assert_int_equal(e, TR_OK);
            assert_string_equal(o.name, "acme");
            arena_destroy(a);
            break;
        }
        faults++;
        if (e == TR_OK)
            fail_msg("fault %d: store_org_create reported success", n);
        assert_true(eb.msg[0] != '\0');
        assert_null(o.name); /* out untouched on failure */
        arena_destroy(a);
        assert_no_org(fx, "acme");
        assert_pool_clean(fx);
    }
    /* BEGIN, three INSERTs and COMMIT at least */
    assert_true(faults >= 5);
    struct st_org got;
    assert_int_equal(store_org_get(fx->db, fx->a, "acme", &got, &eb), TR_OK);
    assert_string_equal(got.email, "ops@acme.example");
    assert_int_equal(count(fx,
                           "SELECT count(*) AS n FROM projects WHERE org = $1"
                           " AND is_default = 1",
                           "acme"),
                     1);
    bool member = false;
    assert_int_equal(
        store_org_is_member(fx->db, fx->a, "acme", fx->owner.id, &member, &eb),
        TR_OK);
    assert_true(member);
    /* and the name is now taken, faults or not */
    assert_int_equal(store_org_create(fx->db, fx->a, "acme", "x@y.example",
                                      NULL, NULL, NULL, &eb),
                     TR_ERR_INVALID);
    assert_int_equal(
        count(fx, "SELECT count(*) AS n FROM projects WHERE org = $1", "acme"),
        1);
}

static void test_org_create_walk_no_owner(void **state)
{
    struct fx *fx = fixture(state);
    struct tr_errbuf eb = {{0}};
    int n = 1;
    for (;; n++) {
        fault_arm("db.query", n);
        tr_err e = store_org_create(fx->db, fx->a, "solo", "s@example.com",
                                    "{\"k\":1}", NULL, NULL, &eb);
        bool fired = fault_fired();
        fault_reset();
        if (!fired) {
            assert_int_equal(e, TR_OK);
            break;
        }
        assert_int_not_equal(e, TR_OK);
        assert_no_org(fx, "solo");
    }
    assert_true(n >= 5); /* BEGIN, two INSERTs, COMMIT, then the clean run */
    assert_int_equal(
        count(fx, "SELECT count(*) AS n FROM org_members WHERE org = $1",
              "solo"),
        0);
    assert_pool_clean(fx);
}

/* An invitation and the account that takes it over: each fails at every
 * query in turn with an error, leaving nothing half done. */
static void test_invite_and_claim_walk(void **state)
{
    struct fx *fx = fixture(state);
    struct tr_errbuf eb = {{0}};
    assert_int_equal(store_org_create(fx->db, fx->a, "inv", "i@example.com",
                                      NULL, fx->owner.id, NULL, &eb),
                     TR_OK);
    const char *rows = "SELECT count(*) AS n FROM org_memberships"
                       " WHERE org = $1";
    struct st_membership m = {0};
    int n = 1;
    for (;; n++) {
        fault_arm("db.query", n);
        tr_err e = store_membership_invite(fx->db, fx->a, "inv",
                                           "new@example.com", &m, &eb);
        bool fired = fault_fired();
        fault_reset();
        if (!fired) {
            assert_int_equal(e, TR_OK);
            break;
        }
        assert_int_not_equal(e, TR_OK);
        assert_int_equal(count(fx, rows, "inv"), 1);
        assert_pool_clean(fx);
    }
    assert_true(n >= 5);
    assert_int_equal(count(fx, rows, "inv"), 2);
    struct st_user u = {0};
    for (n = 1;; n++) {
        fault_arm("db.query", n);
        tr_err e = store_user_create(fx->db, fx->a, "newbie", "New@example.com",
                                     false, &u, &eb);
        bool fired = fault_fired();
        fault_reset();
        if (!fired) {
            assert_int_equal(e, TR_OK);
            break;
        }
        assert_int_not_equal(e, TR_OK);
        assert_null(u.id);
        assert_int_equal(
            count(fx, "SELECT count(*) AS n FROM users WHERE username = $1",
                  "newbie"),
            0);
        assert_int_equal(count(fx,
                               "SELECT count(*) AS n FROM org_memberships"
                               " WHERE org = $1 AND user_id IS NULL",
                               "inv"),
                         1);
        assert_pool_clean(fx);
    }
    assert_true(n >= 6);
    assert_string_equal(u.id, m.invitee_id);
    assert_int_equal(count(fx,
                           "SELECT count(*) AS n FROM org_memberships"
                           " WHERE org = $1 AND user_id IS NULL",
                           "inv"),
                     0);
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
        cmocka_unit_test_setup_teardown(test_disarmed, reset, reset),
        cmocka_unit_test_setup_teardown(test_nth_call_only, reset, reset),
        cmocka_unit_test_setup_teardown(test_threads, reset, reset),
        cmocka_unit_test_setup_teardown(test_arm_spec, reset, reset),
        cmocka_unit_test_setup_teardown(test_arm_spec_kill, reset, reset),
        BOTH(test_db_query_site),
        BOTH(test_org_create_walk),
        BOTH(test_org_create_walk_no_owner),
        BOTH(test_invite_and_claim_walk),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
