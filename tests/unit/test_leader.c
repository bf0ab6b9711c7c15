/*
 * test_leader.c - unit tests for src/node/leader.c: the readiness verdict
 * cluster_not_ready() on SQLite and PostgreSQL (no leader, a leader flagged
 * with a fresh or a stale heartbeat, this node leading), and, on PostgreSQL,
 * two primaries electing one leader, the registry showing it, and the other
 * taking over when it stops (its row then gone).
 *
 * PostgreSQL runs need TERRACE_TEST_PG_URL and skip without it.
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
#include <time.h>

#include "core/log.h"
#include "node/leader.h"
#include "store/store.h"
#include "unit_util.h"

struct fx {
    struct ut_store st;
    struct arena *a;
};

static int setup(void **state, enum db_kind kind)
{
    struct fx *f = calloc(1, sizeof(*f));
    *state = f;
    if (f == NULL)
        return -1;
    if (kind == DB_PG && ut_pg_url() == NULL)
        return 0; /* the tests skip */
    if (ut_store_open(&f->st, kind, 4, "test_leader") != 0)
        return -1;
    f->a = arena_new();
    return 0;
}

static int setup_sqlite(void **state)
{
    return setup(state, DB_SQLITE);
}

static int setup_pg(void **state)
{
    return setup(state, DB_PG);
}

static int teardown(void **state)
{
    struct fx *f = *state;
    if (f == NULL)
        return 0;
    arena_destroy(f->a);
    int rc = ut_store_close(&f->st);
    free(f);
    return rc;
}

static struct fx *fixture(void **state)
{
    struct fx *f = *state;
    if (f->st.db == NULL)
        skip();
    return f;
}

static void exec_sql(struct fx *f, const char *sql)
{
    struct db_conn *c = db_acquire(f->st.db);
    struct tr_errbuf eb = {{0}};
    tr_err e = db_query(c, f->a, sql, 0, NULL, NULL, NULL, &eb);
    db_release(c);
    if (e != TR_OK)
        fail_msg("%s: %s", sql, eb.msg);
}

static void test_not_ready(void **state)
{
    struct fx *f = fixture(state);
    static struct terrace_server one; /* static: no leak on a failure */
    struct terrace_server *srv = &one;
    memset(srv, 0, sizeof(*srv));
    assert_string_equal(cluster_not_ready(srv), "the database is not open");
    srv->db = f->st.db;
    atomic_store(&srv->is_leader, 1);
    assert_null(cluster_not_ready(srv));
    atomic_store(&srv->is_leader, 0);
    assert_string_equal(cluster_not_ready(srv), "no leader elected");

    struct tr_errbuf eb = {{0}};
    struct st_node in = {.name = "p", .role = "primary"}, p;
    assert_int_equal(store_node_register(f->st.db, f->a, &in, &p, NULL, &eb),
                     TR_OK);
    assert_int_equal(store_node_set_leader(f->st.db, f->a, p.id, &eb), TR_OK);
    assert_null(cluster_not_ready(srv));
    /* a leader not heard from for LEADER_KNOWN_S is not known */
    exec_sql(f, "UPDATE nodes SET last_heartbeat_at = "
                "'2000-01-01T00:00:00.000Z'");
    assert_string_equal(cluster_not_ready(srv), "no leader elected");
    assert_int_equal(store_node_heartbeat(f->st.db, f->a, p.id, 0, &eb), TR_OK);
    assert_null(cluster_not_ready(srv));
    /* migrations are readiness's own check (src/http/ready.c), made
     * before the hook: a schema behind does not show here */
    exec_sql(f, "DELETE FROM schema_migrations WHERE version = 10");
    atomic_store(&srv->is_leader, 1);
    assert_null(cluster_not_ready(srv));
    exec_sql(f, "DELETE FROM nodes");
    assert_int_equal(store_migrate(f->st.db, &eb), TR_OK);
    assert_null(cluster_not_ready(srv));
}

static struct terrace_server *primary(struct fx *f, struct terrace_server *srv,
                                      const char *listen)
{
    memset(srv, 0, sizeof(*srv));
    srv->db = f->st.db;
    snprintf(srv->cfg.database_url, sizeof(srv->cfg.database_url), "%s",
             f->st.target);
    snprintf(srv->cfg.listen, sizeof(srv->cfg.listen), "%s", listen);
    snprintf(srv->external_url, sizeof(srv->external_url), "https://%s",
             listen);
    return srv;
}

/* Waits up to ms for srv to lead (or, lead false, not to). */
static bool wait_leading(struct terrace_server *srv, bool lead, int ms)
{
    int64_t deadline = util_now_ms() + ms;
    while ((atomic_load(&srv->is_leader) != 0) != lead) {
        if (util_now_ms() > deadline)
            return false;
        struct timespec ts = {0, 20 * 1000000L};
        nanosleep(&ts, NULL);
    }
    return true;
}

/* The registry row of srv (by address), with a fresh arena's memory. */
static struct st_node row(struct fx *f, struct terrace_server *srv)
{
    struct st_node *l = NULL;
    int n = 0;
    assert_int_equal(store_node_list(f->st.db, f->a, true, &l, &n, NULL),
                     TR_OK);
    for (int i = 0; i < n; i++)
        if (strcmp(l[i].address, srv->external_url) == 0)
            return l[i];
    fail_msg("no node at %s", srv->external_url);
    return l[0];
}

static void test_election(void **state)
{
    struct fx *f = fixture(state);
    if (f->st.kind != DB_PG)
        skip();
    static struct terrace_server one, two;
    struct terrace_server *s1 = primary(f, &one, "127.0.2.1:1"),
                          *s2 = primary(f, &two, "127.0.2.2:1");
    struct leader *l1 = NULL, *l2 = NULL;
    struct tr_errbuf eb = {{0}};
    assert_int_equal(leader_start(s1, &l1, &eb), TR_OK);
    assert_true(wait_leading(s1, true, 5000));
    assert_int_equal(leader_start(s2, &l2, &eb), TR_OK);
    /* s2 tries every second and must not win while s1 holds the lock */
    assert_false(wait_leading(s2, true, 2500));
    assert_true(atomic_load(&s1->is_leader) != 0);
    int64_t deadline = util_now_ms() + 5000;
    while (!row(f, s1).leader && util_now_ms() < deadline)
        nanosleep(&(struct timespec){0, 20 * 1000000L}, NULL);
    assert_true(row(f, s1).leader);
    assert_false(row(f, s2).leader);
    assert_null(cluster_not_ready(s2)); /* it knows who leads */

    leader_stop(l1); /* steps down, lock released, row gone */
    assert_int_equal(atomic_load(&s1->is_leader), 0);
    assert_string_equal(row(f, s1).state, "gone");
    assert_false(row(f, s1).leader);
    assert_true(wait_leading(s2, true, 5000));
    deadline = util_now_ms() + 5000;
    while (!row(f, s2).leader && util_now_ms() < deadline)
        nanosleep(&(struct timespec){0, 20 * 1000000L}, NULL);
    assert_true(row(f, s2).leader);
    leader_stop(l2);
    assert_string_equal(row(f, s2).state, "gone");
}

int main(void)
{
    log_set_level(LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_not_ready),
        cmocka_unit_test(test_election),
    };
    int failed = cmocka_run_group_tests_name("leader_sqlite", tests,
                                             setup_sqlite, teardown);
    failed +=
        cmocka_run_group_tests_name("leader_pg", tests, setup_pg, teardown);
    return failed != 0;
}
