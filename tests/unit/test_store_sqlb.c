/*
 * test_store_sqlb.c - unit tests for the statement builder in
 * src/store/store_ws_int.h: a statement that binds more values than the
 * builder holds (SQLB_MAX_PARAMS) answers TR_ERR_INVALID and is not run,
 * both directly (an INSERT whose rows must not appear) and through a
 * store list function; one value fewer still runs.  sqlb_in() numbers
 * its placeholders after those already bound and matches nothing when
 * the list is empty.
 *
 * Every test runs on SQLite and, when TERRACE_TEST_PG_URL is set, on
 * PostgreSQL, each in a fresh migrated store (unit_util.h).
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

#include "store/store_ws_int.h"
#include "unit_util.h"

struct fx {
    struct ut_store st;
    struct arena *a;
};

static const enum db_kind k_sqlite = DB_SQLITE;
static const enum db_kind k_pg = DB_PG;

static int setup(void **state)
{
    const enum db_kind *kind = *state;
    struct fx *fx = calloc(1, sizeof(*fx));
    *state = fx;
    int rc = ut_store_open(&fx->st, *kind, 2, "test_store_sqlb");
    if (rc != 0)
        return rc > 0 ? 0 : -1;
    fx->a = arena_new();
    struct db_conn *c = db_acquire(fx->st.db);
    tr_err e = db_q(c, fx->a, NULL, NULL, "CREATE TABLE sq (k TEXT)", );
    db_release(c);
    return e == TR_OK ? 0 : -1;
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
    if (fx->st.db == NULL)
        skip();
    return fx;
}

/* "INSERT INTO sq (k) VALUES ($1), ($2), ..." with n values v0, v1, ... */
static void build_insert(struct sqlb *q, struct arena *a, int n)
{
    sqlb_init(q, a, "INSERT INTO sq (k) VALUES ");
    for (int i = 0; i < n; i++) {
        if (i > 0)
            sqlb_add(q, ", ");
        sqlb_addv(q, "(?)", 1, arena_printf(a, "v%d", i));
    }
}

static void test_overflow_not_run(void **state)
{
    struct fx *fx = fixture(state);
    struct db_conn *c = db_acquire(fx->st.db);
    struct tr_errbuf eb = {{0}};
    int sizes[] = {SQLB_MAX_PARAMS + 1, SQLB_MAX_PARAMS + 2, 1000};
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        struct sqlb q;
        build_insert(&q, fx->a, sizes[i]);
        int64_t affected = -1;
        memset(&eb, 0, sizeof(eb));
        assert_int_equal(sqlb_query(c, &q, NULL, &affected, &eb),
                         TR_ERR_INVALID);
        assert_string_equal(eb.msg,
                            "too many values in one request (at most 256)");
        assert_int_equal(affected, -1);
    }
    db_release(c);
    /* nothing was inserted, not even the first 256 rows */
    assert_int_equal(ut_count(fx->st.db, fx->a, "SELECT count(*) AS n FROM sq"),
                     0);
}

static void test_limit_runs(void **state)
{
    struct fx *fx = fixture(state);
    struct db_conn *c = db_acquire(fx->st.db);
    struct tr_errbuf eb = {{0}};
    struct sqlb q;
    build_insert(&q, fx->a, SQLB_MAX_PARAMS);
    int64_t affected = -1;
    assert_int_equal(sqlb_query(c, &q, NULL, &affected, &eb), TR_OK);
    assert_int_equal(affected, SQLB_MAX_PARAMS);
    db_release(c);
    assert_int_equal(ut_count(fx->st.db, fx->a,
                              "SELECT count(*) AS n FROM sq WHERE k = 'v255'"),
                     1);
    assert_int_equal(ut_count(fx->st.db, fx->a, "SELECT count(*) AS n FROM sq"),
                     SQLB_MAX_PARAMS);
}

/* count(*) of sq rows whose k is one of the n values, after k <> $1. */
static int64_t count_in(struct fx *fx, const char *const *v, int n,
                        const char **sql)
{
    struct sqlb q;
    sqlb_init(&q, fx->a, "");
    sqlb_addv(&q, "SELECT count(*) AS n FROM sq WHERE k <> ? AND k", 1, "x");
    sqlb_in(&q, v, n);
    *sql = q.sql;
    struct db_conn *c = db_acquire(fx->st.db);
    struct db_rows *r = NULL;
    struct tr_errbuf eb = {{0}};
    tr_err e = sqlb_query(c, &q, &r, NULL, &eb);
    db_release(c);
    assert_int_equal(e, TR_OK);
    return db_get_i64(r, 0, "n");
}

static void test_in_list(void **state)
{
    struct fx *fx = fixture(state);
    struct db_conn *c = db_acquire(fx->st.db);
    struct sqlb q;
    build_insert(&q, fx->a, 5);
    assert_int_equal(sqlb_query(c, &q, NULL, NULL, NULL), TR_OK);
    db_release(c);
    const char *sql = NULL;
    const char *some[] = {"v1", "v3", "nope", "v1"};
    assert_int_equal(count_in(fx, some, 4, &sql), 2);
    assert_string_equal(sql, "SELECT count(*) AS n FROM sq WHERE k <> $1 AND"
                             " k IN ($2, $3, $4, $5)");
    assert_int_equal(count_in(fx, some, 1, &sql), 1);
    assert_int_equal(count_in(fx, NULL, 0, &sql), 0);
    assert_string_equal(sql, "SELECT count(*) AS n FROM sq WHERE k <> $1 AND"
                             " k IN (NULL)");
}

/* A page query: the organization plus n project names. */
static tr_err list_projects(struct fx *fx, int nnames, int64_t *total,
                            struct tr_errbuf *eb)
{
    const char **names = arena_alloc(fx->a, sizeof(char *) * (size_t)nnames);
    for (int i = 0; i < nnames; i++)
        names[i] = arena_printf(fx->a, "p%d", i);
    struct st_project *out = NULL;
    int n = -1;
    return store_project_list(fx->st.db, fx->a, "acme", names, nnames, NULL,
                              NULL, NULL, 0, 20, &out, &n, total, eb);
}

static void test_page_overflow(void **state)
{
    struct fx *fx = fixture(state);
    struct tr_errbuf eb = {{0}};
    struct st_project p;
    assert_int_equal(store_org_create(fx->st.db, fx->a, "acme", "a@example.com",
                                      NULL, NULL, NULL, &eb),
                     TR_OK);
    assert_int_equal(store_project_create(fx->st.db, fx->a, "acme", "p7", NULL,
                                          NULL, &p, &eb),
                     TR_OK);
    int64_t total = -1;
    /* 1 + 255 values: at the limit, runs and finds p7 */
    assert_int_equal(list_projects(fx, SQLB_MAX_PARAMS - 1, &total, &eb),
                     TR_OK);
    assert_int_equal(total, 1);
    /* 1 + 256 values: refused */
    total = -1;
    memset(&eb, 0, sizeof(eb));
    assert_int_equal(list_projects(fx, SQLB_MAX_PARAMS, &total, &eb),
                     TR_ERR_INVALID);
    assert_string_equal(eb.msg, "too many values in one request (at most 256)");
    assert_int_equal(total, -1);
}

#define BOTH(f)                                                                \
    {"sqlite/" #f, f, setup, teardown, (void *)&k_sqlite},                     \
    {                                                                          \
        "pg/" #f, f, setup, teardown, (void *)&k_pg                            \
    }

int main(void)
{
    const struct CMUnitTest tests[] = {
        BOTH(test_overflow_not_run),
        BOTH(test_limit_runs),
        BOTH(test_page_overflow),
        BOTH(test_in_list),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
