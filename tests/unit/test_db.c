/*
 * test_db.c - unit tests for src/store/db.c and its two backends
 * (db_sqlite.c, db_pg.c): queries and placeholders, NULL parameters and
 * cells, transactions, unique violations as TR_ERR_CONFLICT, the db_get
 * helpers, and the connection pool under several threads.
 *
 * Every test runs twice: on SQLite in a fresh temporary directory, and on
 * PostgreSQL when TERRACE_TEST_PG_URL is set (otherwise the PostgreSQL
 * runs call skip()), in a throwaway database of its own (unit_util.h);
 * each test creates its tables.
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "store/db.h"
#include "unit_util.h"

#define POOL 4

struct fx {
    struct ut_store st; /* prepared, not migrated */
    struct db *db;      /* st.db */
    struct arena *a;
};

static const enum db_kind k_sqlite = DB_SQLITE;
static const enum db_kind k_pg = DB_PG;

static const char *const schema[] = {
    "DROP TABLE IF EXISTS kv",
    "CREATE TABLE kv (k TEXT PRIMARY KEY, v TEXT, n BIGINT,"
    " flag INTEGER NOT NULL DEFAULT 0, u TEXT UNIQUE)",
    "DROP TABLE IF EXISTS counter",
    "CREATE TABLE counter (id INTEGER PRIMARY KEY, n BIGINT NOT NULL)",
    "INSERT INTO counter (id, n) VALUES (1, 0)",
};

static int setup(void **state)
{
    const enum db_kind *kind = *state;
    struct fx *fx = calloc(1, sizeof(*fx));
    *state = fx;
    /* a URL given but unusable fails loudly (-1), no URL skips (1) */
    int rc = ut_store_prepare(&fx->st, *kind, "test_db");
    if (rc != 0)
        return rc > 0 ? 0 : -1;
    struct tr_errbuf eb = {{0}};
    if (db_open(*kind, fx->st.target, POOL, &fx->st.db, &eb) != TR_OK) {
        fprintf(stderr, "db_open: %s\n", eb.msg);
        return -1;
    }
    fx->db = fx->st.db;
    fx->a = arena_new();
    struct db_conn *c = db_acquire(fx->db);
    for (size_t i = 0; i < sizeof(schema) / sizeof(schema[0]); i++) {
        if (db_query(c, fx->a, schema[i], 0, NULL, NULL, NULL, &eb) != TR_OK) {
            fprintf(stderr, "schema: %s\n", eb.msg);
            db_release(c);
            return -1;
        }
    }
    db_release(c);
    return 0;
}

static int teardown(void **state)
{
    struct fx *fx = *state;
    arena_destroy(fx->a);
    int rc = ut_store_close(&fx->st);
    free(fx);
    return rc;
}

/* The fixture, or skip() for PostgreSQL runs without a server. */
static struct fx *fixture(void **state)
{
    struct fx *fx = *state;
    if (fx->db == NULL)
        skip();
    return fx;
}

static int64_t count_rows(struct fx *fx, struct db_conn *c)
{
    struct db_rows *r = NULL;
    tr_err e = db_q(c, fx->a, &r, NULL, "SELECT count(*) AS n FROM kv", );
    assert_int_equal(e, TR_OK);
    return db_get_i64(r, 0, "n");
}

static void test_basic_query(void **state)
{
    struct fx *fx = fixture(state);
    struct tr_errbuf eb = {{0}};
    struct db_conn *c = db_acquire(fx->db);
    assert_int_equal(db_kind(fx->db), fx->st.kind);
    assert_int_equal(db_conn_kind(c), fx->st.kind);

    int64_t affected = -1;
    assert_int_equal(db_x(c, fx->a, &affected, &eb,
                          "INSERT INTO kv (k, v, n) VALUES ($1, $2, $3)", "a",
                          "apple", "1"),
                     TR_OK);
    assert_int_equal(affected, 1);
    assert_int_equal(db_x(c, fx->a, NULL, &eb,
                          "INSERT INTO kv (k, v, n) VALUES ($1, $2, $3)", "b",
                          "banana", "-2"),
                     TR_OK);

    struct db_rows *r = NULL;
    assert_int_equal(
        db_q(c, fx->a, &r, &eb, "SELECT k, v, n, flag FROM kv ORDER BY k", ),
        TR_OK);
    assert_int_equal(r->nrows, 2);
    assert_int_equal(r->ncols, 4);
    assert_string_equal(r->cols[0], "k");
    assert_string_equal(r->cols[3], "flag");
    assert_string_equal(db_cell(r, 0, 0), "a");
    assert_string_equal(db_cell(r, 1, 1), "banana");
    assert_string_equal(db_get(r, 0, "v"), "apple");
    assert_string_equal(db_get(r, 1, "n"), "-2");
    assert_string_equal(db_get(r, 1, "flag"), "0");
    assert_int_equal(db_get_i64(r, 1, "n"), -2);

    /* no rows: a result with columns and nrows 0 */
    r = NULL;
    assert_int_equal(
        db_q(c, fx->a, &r, &eb, "SELECT k, v FROM kv WHERE k = $1", "zzz"),
        TR_OK);
    assert_non_null(r);
    assert_int_equal(r->nrows, 0);
    assert_int_equal(r->ncols, 2);
    assert_string_equal(r->cols[1], "v");
    assert_null(db_get(r, 0, "v"));

    /* UPDATE and DELETE report the rows they changed */
    assert_int_equal(db_x(c, fx->a, &affected, &eb,
                          "UPDATE kv SET flag = 1 WHERE n < $1", "100"),
                     TR_OK);
    assert_int_equal(affected, 2);
    assert_int_equal(db_x(c, fx->a, &affected, &eb,
                          "UPDATE kv SET flag = 1 WHERE k = $1", "none"),
                     TR_OK);
    assert_int_equal(affected, 0);
    assert_int_equal(
        db_x(c, fx->a, &affected, &eb, "DELETE FROM kv WHERE k = $1", "a"),
        TR_OK);
    assert_int_equal(affected, 1);
    assert_int_equal(count_rows(fx, c), 1);
    db_release(c);
}

static void test_placeholders(void **state)
{
    struct fx *fx = fixture(state);
    struct tr_errbuf eb = {{0}};
    struct db_conn *c = db_acquire(fx->db);
    /* out of order, and one parameter used twice */
    assert_int_equal(db_x(c, fx->a, NULL, &eb,
                          "INSERT INTO kv (k, v, u) VALUES ($2, $1, $2)",
                          "value", "key"),
                     TR_OK);
    struct db_rows *r = NULL;
    assert_int_equal(
        db_q(c, fx->a, &r, &eb, "SELECT v, u FROM kv WHERE k = $1", "key"),
        TR_OK);
    assert_int_equal(r->nrows, 1);
    assert_string_equal(db_get(r, 0, "v"), "value");
    assert_string_equal(db_get(r, 0, "u"), "key");
    /* two-digit placeholders are not read as $1 followed by a digit */
    assert_int_equal(
        db_q(c, fx->a, &r, &eb,
             "SELECT k FROM kv WHERE k IN ($1, $2, $3, $4, $5, $6, $7, $8,"
             " $9, $10, $11, $12)",
             "x1", "x2", "x3", "x4", "x5", "x6", "x7", "x8", "x9", "x10", "x11",
             "key"),
        TR_OK);
    assert_int_equal(r->nrows, 1);
    /* text that looks like SQL, quotes, UTF-8 and a 1 MB value survive */
    const char *odd = "it's \"quoted\"; DROP TABLE kv; -- caf\xc3\xa9 $1 ?1";
    assert_int_equal(db_x(c, fx->a, NULL, &eb,
                          "INSERT INTO kv (k, v) VALUES ($1, $2)", "odd", odd),
                     TR_OK);
    char *big = arena_alloc(fx->a, 1 << 20);
    memset(big, 'b', (1 << 20) - 1);
    assert_int_equal(db_x(c, fx->a, NULL, &eb,
                          "INSERT INTO kv (k, v) VALUES ($1, $2)", "big", big),
                     TR_OK);
    assert_int_equal(db_q(c, fx->a, &r, &eb,
                          "SELECT k, v FROM kv WHERE k IN ($1, $2)"
                          " ORDER BY k",
                          "odd", "big"),
                     TR_OK);
    assert_int_equal(r->nrows, 2);
    assert_string_equal(db_get(r, 0, "v"), big);
    assert_string_equal(db_get(r, 1, "v"), odd);
    /* a wrong number of parameters is an error, not a silent NULL */
    assert_int_not_equal(
        db_q(c, fx->a, &r, &eb, "SELECT k FROM kv WHERE k = $1", "a", "b"),
        TR_OK);
    db_release(c);
}

static void test_null_params(void **state)
{
    struct fx *fx = fixture(state);
    struct tr_errbuf eb = {{0}};
    struct db_conn *c = db_acquire(fx->db);
    assert_int_equal(db_x(c, fx->a, NULL, &eb,
                          "INSERT INTO kv (k, v, n) VALUES ($1, $2, $3)",
                          "null", NULL, NULL),
                     TR_OK);
    assert_int_equal(db_x(c, fx->a, NULL, &eb,
                          "INSERT INTO kv (k, v, n) VALUES ($1, $2, $3)",
                          "empty", "", "0"),
                     TR_OK);
    struct db_rows *r = NULL;
    assert_int_equal(
        db_q(c, fx->a, &r, &eb, "SELECT k, v, n FROM kv ORDER BY k", ), TR_OK);
    assert_int_equal(r->nrows, 2);
    /* "empty" sorts first: '' and NULL stay distinct */
    assert_string_equal(db_get(r, 0, "k"), "empty");
    assert_non_null(db_get(r, 0, "v"));
    assert_string_equal(db_get(r, 0, "v"), "");
    assert_string_equal(db_get(r, 1, "k"), "null");
    assert_null(db_get(r, 1, "v"));
    assert_null(db_cell(r, 1, 2));
    assert_int_equal(db_get_i64(r, 1, "n"), 0);
    /* NULL in a "$n IS NULL OR ..." filter, as the store's list queries
     * do; PostgreSQL needs the CAST to type a parameter that first appears
     * in "$1 IS NULL" */
    const char *filter = "SELECT k FROM kv WHERE (CAST($1 AS TEXT) IS NULL"
                         " OR v = $1) ORDER BY k";
    assert_int_equal(db_q(c, fx->a, &r, &eb, filter, NULL), TR_OK);
    assert_int_equal(r->nrows, 2);
    assert_int_equal(db_q(c, fx->a, &r, &eb, filter, ""), TR_OK);
    assert_int_equal(r->nrows, 1);
    /* COALESCE keeps the old value for NULL, as the store's updates do */
    assert_int_equal(db_x(c, fx->a, NULL, &eb,
                          "UPDATE kv SET v = COALESCE($2, v) WHERE k = $1",
                          "empty", NULL),
                     TR_OK);
    assert_int_equal(
        db_q(c, fx->a, &r, &eb, "SELECT v FROM kv WHERE k = $1", "empty"),
        TR_OK);
    assert_string_equal(db_get(r, 0, "v"), "");
    /* a NULL into a NOT NULL column is a database error, not a conflict */
    assert_int_equal(db_x(c, fx->a, NULL, &eb,
                          "INSERT INTO kv (k, flag) VALUES ($1, $2)", "nn",
                          NULL),
                     TR_ERR_DB);
    db_release(c);
}

static void test_transactions(void **state)
{
    struct fx *fx = fixture(state);
    struct tr_errbuf eb = {{0}};
    struct db_conn *c = db_acquire(fx->db);
    struct db_conn *other = db_acquire(fx->db);
    assert_ptr_not_equal(c, other);

    /* commit: visible to another connection afterwards */
    assert_int_equal(db_begin(c, &eb), TR_OK);
    assert_int_equal(db_x(c, fx->a, NULL, &eb, "INSERT INTO kv (k) VALUES ($1)",
                          "committed"),
                     TR_OK);
    assert_int_equal(count_rows(fx, c), 1);     /* own writes */
    assert_int_equal(count_rows(fx, other), 0); /* not yet for others */
    assert_int_equal(db_commit(c, &eb), TR_OK);
    assert_int_equal(count_rows(fx, other), 1);

    /* rollback: gone */
    assert_int_equal(db_begin(c, &eb), TR_OK);
    assert_int_equal(
        db_x(c, fx->a, NULL, &eb, "INSERT INTO kv (k) VALUES ($1)", "rolled"),
        TR_OK);
    assert_int_equal(db_x(c, fx->a, NULL, &eb,
                          "UPDATE counter SET n = n + 1 WHERE id = 1", ),
                     TR_OK);
    db_rollback(c);
    assert_int_equal(count_rows(fx, c), 1);
    assert_int_equal(count_rows(fx, other), 1);
    struct db_rows *r = NULL;
    assert_int_equal(db_q(c, fx->a, &r, &eb, "SELECT n FROM counter", ), TR_OK);
    assert_int_equal(db_get_i64(r, 0, "n"), 0);

    /* a transaction can follow a rollback on the same connection */
    assert_int_equal(db_begin(c, &eb), TR_OK);
    assert_int_equal(db_commit(c, &eb), TR_OK);

    /* releasing a connection with an open transaction rolls it back */
    assert_int_equal(db_begin(c, &eb), TR_OK);
    assert_int_equal(db_x(c, fx->a, NULL, &eb, "INSERT INTO kv (k) VALUES ($1)",
                          "abandoned"),
                     TR_OK);
    db_release(c);
    assert_int_equal(count_rows(fx, other), 1);
    /* ... and the connection is clean for its next user */
    c = db_acquire(fx->db);
    assert_int_equal(db_begin(c, &eb), TR_OK);
    assert_int_equal(
        db_x(c, fx->a, NULL, &eb, "INSERT INTO kv (k) VALUES ($1)", "next"),
        TR_OK);
    assert_int_equal(db_commit(c, &eb), TR_OK);
    assert_int_equal(count_rows(fx, other), 2);

    db_release(other);
    db_release(c);
}

static void test_unique_conflict(void **state)
{
    struct fx *fx = fixture(state);
    struct tr_errbuf eb = {{0}};
    struct db_conn *c = db_acquire(fx->db);
    const char *ins = "INSERT INTO kv (k, u) VALUES ($1, $2)";
    assert_int_equal(db_x(c, fx->a, NULL, &eb, ins, "k1", "u1"), TR_OK);
    /* primary key */
    eb.msg[0] = '\0';
    assert_int_equal(db_x(c, fx->a, NULL, &eb, ins, "k1", "u2"),
                     TR_ERR_CONFLICT);
    assert_true(eb.msg[0] != '\0');
    /* UNIQUE column */
    assert_int_equal(db_x(c, fx->a, NULL, &eb, ins, "k2", "u1"),
                     TR_ERR_CONFLICT);
    /* UPDATE into a taken value */
    assert_int_equal(db_x(c, fx->a, NULL, &eb, ins, "k3", "u3"), TR_OK);
    assert_int_equal(db_x(c, fx->a, NULL, &eb,
                          "UPDATE kv SET u = $1 WHERE k = $2", "u1", "k3"),
                     TR_ERR_CONFLICT);
    /* ON CONFLICT DO NOTHING is not an error, and changes nothing */
    int64_t affected = -1;
    assert_int_equal(db_x(c, fx->a, &affected, &eb,
                          "INSERT INTO kv (k, u) VALUES ($1, $2)"
                          " ON CONFLICT DO NOTHING",
                          "k1", "u9"),
                     TR_OK);
    assert_int_equal(affected, 0);

    /* inside a transaction: the caller rolls back, and earlier writes of
     * that transaction go with it */
    assert_int_equal(db_begin(c, &eb), TR_OK);
    assert_int_equal(db_x(c, fx->a, NULL, &eb, ins, "k4", "u4"), TR_OK);
    assert_int_equal(db_x(c, fx->a, NULL, &eb, ins, "k1", "u5"),
                     TR_ERR_CONFLICT);
    db_rollback(c);
    assert_int_equal(count_rows(fx, c), 2);

    /* other errors are TR_ERR_DB with a message */
    eb.msg[0] = '\0';
    assert_int_equal(db_x(c, fx->a, NULL, &eb, "SELEKT 1", ), TR_ERR_DB);
    assert_true(eb.msg[0] != '\0');
    assert_int_equal(db_x(c, fx->a, NULL, &eb, "SELECT nope FROM kv", ),
                     TR_ERR_DB);
    assert_int_equal(
        db_x(c, fx->a, NULL, &eb, "INSERT INTO missing (k) VALUES ($1)", "x"),
        TR_ERR_DB);
    /* two statements in one call are refused on both backends */
    assert_int_equal(db_x(c, fx->a, NULL, &eb,
                          "INSERT INTO kv (k) VALUES ('s1');"
                          " INSERT INTO kv (k) VALUES ('s2')", ),
                     TR_ERR_DB);
    assert_int_equal(count_rows(fx, c), 2);
    /* a trailing semicolon or comment is fine */
    assert_int_equal(db_x(c, fx->a, NULL, &eb, "SELECT 1; -- done", ), TR_OK);
    assert_int_equal(db_x(c, fx->a, NULL, &eb, "SELECT 1;", ), TR_OK);
    /* the connection is still usable after all those errors */
    assert_int_equal(db_x(c, fx->a, NULL, &eb, ins, "k5", "u5"), TR_OK);
    db_release(c);
}

static void test_get_helpers(void **state)
{
    struct fx *fx = fixture(state);
    struct tr_errbuf eb = {{0}};
    struct db_conn *c = db_acquire(fx->db);
    struct db_rows *r = NULL;
    assert_int_equal(
        db_q(c, fx->a, &r, &eb,
             "SELECT 42 AS i, -7 AS neg, 9223372036854775807 AS big,"
             " 1 = 1 AS truth, 1 = 0 AS lie, NULL AS absent, 'x' AS s", ),
        TR_OK);
    assert_int_equal(r->nrows, 1);
    assert_int_equal(db_get_i64(r, 0, "i"), 42);
    assert_int_equal(db_get_i64(r, 0, "neg"), -7);
    assert_true(db_get_i64(r, 0, "big") == INT64_MAX);
    /* booleans: "t"/"f" on PostgreSQL, "1"/"0" on SQLite */
    assert_true(db_get_bool(r, 0, "truth"));
    assert_false(db_get_bool(r, 0, "lie"));
    assert_false(db_get_bool(r, 0, "absent"));
    assert_null(db_get(r, 0, "absent"));
    assert_int_equal(db_get_i64(r, 0, "absent"), 0);
    /* unknown column, rows out of range, no result */
    assert_null(db_get(r, 0, "missing"));
    assert_int_equal(db_get_i64(r, 0, "missing"), 0);
    assert_false(db_get_bool(r, 0, "missing"));
    assert_null(db_get(r, 1, "s"));
    assert_null(db_get(r, -1, "s"));
    assert_null(db_get(NULL, 0, "s"));
    assert_string_equal(db_get(r, 0, "s"), "x");
    /* INTEGER 0/1 columns, as the schema stores booleans */
    assert_int_equal(db_x(c, fx->a, NULL, &eb,
                          "INSERT INTO kv (k, flag) VALUES ($1, $2), ($3, $4)",
                          "on", "1", "off", "0"),
                     TR_OK);
    assert_int_equal(
        db_q(c, fx->a, &r, &eb, "SELECT k, flag FROM kv ORDER BY k", ), TR_OK);
    assert_false(db_get_bool(r, 0, "flag")); /* off */
    assert_true(db_get_bool(r, 1, "flag"));  /* on */
    /* db_for_update() splices into a SELECT on either backend */
    const char *fu = db_for_update(c);
    assert_string_equal(fu, fx->st.kind == DB_PG ? " FOR UPDATE" : "");
    assert_int_equal(db_begin(c, &eb), TR_OK);
    assert_int_equal(
        db_q(c, fx->a, &r, &eb,
             arena_printf(fx->a, "SELECT n FROM counter WHERE id = $1%s", fu),
             "1"),
        TR_OK);
    assert_int_equal(r->nrows, 1);
    assert_int_equal(db_commit(c, &eb), TR_OK);
    db_release(c);
}

/* ---- the pool under threads ------------------------------------------- */

struct worker {
    struct fx *fx;
    int id;
    int iterations;
};

static atomic_int holders;     /* connections held right now */
static atomic_int max_holders; /* most ever held at once */
static atomic_int failures;
static pthread_mutex_t seen_mu = PTHREAD_MUTEX_INITIALIZER;
static struct db_conn *in_use[64];

static void mark(struct db_conn *c, bool take)
{
    pthread_mutex_lock(&seen_mu);
    bool found = false;
    for (int i = 0; i < 64; i++) {
        if (take && in_use[i] == c)
            atomic_fetch_add(&failures, 1); /* handed out twice */
        if (!take && in_use[i] == c && !found) {
            in_use[i] = NULL;
            found = true;
        }
    }
    for (int i = 0; take && i < 64; i++) {
        if (in_use[i] == NULL) {
            in_use[i] = c;
            break;
        }
    }
    pthread_mutex_unlock(&seen_mu);
}

static void *work(void *p)
{
    struct worker *w = p;
    struct arena *a = arena_new();
    for (int i = 0; i < w->iterations; i++) {
        struct db_conn *c = db_acquire(w->fx->db);
        mark(c, true);
        int now = atomic_fetch_add(&holders, 1) + 1;
        int prev = atomic_load(&max_holders);
        while (now > prev &&
               !atomic_compare_exchange_weak(&max_holders, &prev, now))
            ;
        struct tr_errbuf eb = {{0}};
        char key[32];
        snprintf(key, sizeof(key), "w%d-%d", w->id, i);
        tr_err e = db_begin(c, &eb);
        if (e == TR_OK)
            e = db_x(c, a, NULL, &eb, "INSERT INTO kv (k, n) VALUES ($1, $2)",
                     key, "1");
        if (e == TR_OK)
            e = db_x(c, a, NULL, &eb,
                     "UPDATE counter SET n = n + 1 WHERE id = 1", );
        if (e == TR_OK)
            e = db_commit(c, &eb);
        if (e != TR_OK) {
            fprintf(stderr, "worker %d: %s\n", w->id, eb.msg);
            atomic_fetch_add(&failures, 1);
        }
        atomic_fetch_sub(&holders, 1);
        mark(c, false);
        db_release(c);
    }
    arena_destroy(a);
    return NULL;
}

static void test_pool_threads(void **state)
{
    struct fx *fx = fixture(state);
    enum { THREADS = 10, ITER = 40 };
    atomic_store(&holders, 0);
    atomic_store(&max_holders, 0);
    atomic_store(&failures, 0);
    memset(in_use, 0, sizeof(in_use));
    pthread_t th[THREADS];
    struct worker w[THREADS];
    for (int i = 0; i < THREADS; i++) {
        w[i] = (struct worker){fx, i, ITER};
        assert_int_equal(pthread_create(&th[i], NULL, work, &w[i]), 0);
    }
    for (int i = 0; i < THREADS; i++)
        pthread_join(th[i], NULL);
    assert_int_equal(atomic_load(&failures), 0);
    assert_true(atomic_load(&max_holders) <= POOL);
    assert_true(atomic_load(&max_holders) >= 1);
    struct db_conn *c = db_acquire(fx->db);
    assert_int_equal(count_rows(fx, c), THREADS * ITER);
    struct db_rows *r = NULL;
    assert_int_equal(db_q(c, fx->a, &r, NULL, "SELECT n FROM counter", ),
                     TR_OK);
    assert_int_equal(db_get_i64(r, 0, "n"), THREADS * ITER);
    db_release(c);
}

struct blocker {
    struct db *db;
    atomic_int got;
};

static void *acquire_one(void *p)
{
    struct blocker *b = p;
    struct db_conn *c = db_acquire(b->db);
    atomic_store(&b->got, 1);
    db_release(c);
    return NULL;
}

static void test_pool_blocks_until_release(void **state)
{
    struct fx *fx = fixture(state);
    struct db_conn *held[POOL];
    for (int i = 0; i < POOL; i++)
        held[i] = db_acquire(fx->db);
    for (int i = 0; i < POOL; i++)
        for (int j = 0; j < i; j++)
            assert_ptr_not_equal(held[i], held[j]);
    struct blocker b = {fx->db, 0};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, acquire_one, &b), 0);
    struct timespec ts = {0, 100 * 1000 * 1000};
    nanosleep(&ts, NULL);
    assert_int_equal(atomic_load(&b.got), 0); /* pool exhausted: waiting */
    db_release(held[2]);
    pthread_join(th, NULL);
    assert_int_equal(atomic_load(&b.got), 1);
    held[2] = db_acquire(fx->db);
    for (int i = 0; i < POOL; i++)
        db_release(held[i]);
    db_release(NULL); /* harmless */
}

/* Connections opened for a burst are closed once unused for the idle
 * time, last first, down to one; the pool still works and grows again. */
static void test_pool_shrinks_when_idle(void **state)
{
    struct fx *fx = fixture(state);
    struct db_conn *held[3];
    for (int i = 0; i < 3; i++)
        held[i] = db_acquire(fx->db);
    int open = db_pool_open(fx->db);
    assert_true(open >= 3);
    for (int i = 0; i < 3; i++)
        db_release(held[i]);
    struct db_conn *c = db_acquire(fx->db);
    db_release(c);
    assert_int_equal(db_pool_open(fx->db), open); /* a minute by default */
    db_set_idle_close(fx->db, 20);
    struct timespec ts = {0, 60 * 1000 * 1000};
    nanosleep(&ts, NULL);
    for (int i = 0; i < open + 2; i++) { /* one closed per release */
        c = db_acquire(fx->db);
        db_release(c);
    }
    assert_int_equal(db_pool_open(fx->db), 1);
    c = db_acquire(fx->db);
    assert_int_equal(count_rows(fx, c), 0);
    struct db_conn *d = db_acquire(fx->db); /* grows again */
    assert_ptr_not_equal(c, d);
    assert_int_equal(db_pool_open(fx->db), 2);
    assert_int_equal(count_rows(fx, d), 0);
    db_release(d);
    db_release(c);
}

static void test_open_errors(void **state)
{
    struct fx *fx = fixture(state);
    struct tr_errbuf eb = {{0}};
    struct db *db = NULL;
    if (fx->st.kind == DB_SQLITE) {
        char bad[128];
        snprintf(bad, sizeof(bad), "%s/no/such/dir/t.db", fx->st.dir);
        assert_int_equal(db_open(DB_SQLITE, bad, 2, &db, &eb), TR_ERR_DB);
    } else {
        assert_int_equal(db_open(DB_PG,
                                 "host=/nonexistent-socket-dir dbname=x"
                                 " connect_timeout=2",
                                 2, &db, &eb),
                         TR_ERR_DB);
    }
    assert_null(db);
    assert_non_null(strstr(eb.msg, fx->st.kind == DB_PG ? "cannot connect"
                                                        : "cannot open"));
    /* a pool size below one still gives one connection */
    assert_int_equal(db_open(fx->st.kind, fx->st.target, 0, &db, &eb), TR_OK);
    struct db_conn *c = db_acquire(db);
    assert_int_equal(db_x(c, fx->a, NULL, &eb, "SELECT 1", ), TR_OK);
    db_release(c);
    db_close(db);
    db_close(NULL);
}

#define BOTH(f)                                                                \
    {"sqlite/" #f, f, setup, teardown, (void *)&k_sqlite},                     \
    {                                                                          \
        "pg/" #f, f, setup, teardown, (void *)&k_pg                            \
    }

int main(void)
{
    const struct CMUnitTest tests[] = {
        BOTH(test_basic_query),
        BOTH(test_placeholders),
        BOTH(test_null_params),
        BOTH(test_transactions),
        BOTH(test_unique_conflict),
        BOTH(test_get_helpers),
        BOTH(test_pool_threads),
        BOTH(test_pool_blocks_until_release),
        BOTH(test_pool_shrinks_when_idle),
        BOTH(test_open_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
