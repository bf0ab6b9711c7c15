/*
 * test_pgconn.c - unit tests for src/node/pgconn.c, the dedicated
 * PostgreSQL connection leader election and LISTEN use: a refused
 * connection and a dead session fail with a one-line message, a
 * statement past its deadline fails within it, the session carries its
 * server-side timeouts, notifications arrive, and the advisory lock the
 * election takes is held by one session at a time and freed when that
 * session closes.
 *
 * Needs TERRACE_TEST_PG_URL (a server tests/lib/pg.sh started); skips
 * without it.
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/util.h"
#include "node/pgconn.h"
#include "unit_util.h"

static struct pgconn *open_or_skip(void)
{
    const char *url = ut_pg_url();
    if (url == NULL)
        skip();
    struct pgconn *pc = NULL;
    struct tr_errbuf eb = {{0}};
    tr_err e = pgconn_open(url, &pc, &eb);
    if (e != TR_OK)
        fail_msg("pgconn_open: %s", eb.msg);
    return pc;
}

static void test_connect_refused(void **state)
{
    (void)state;
    struct pgconn *pc = NULL;
    struct tr_errbuf eb = {{0}};
    assert_int_equal(pgconn_open("host=/nonexistent-terrace-dir user=x"
                                 " dbname=x",
                                 &pc, &eb),
                     TR_ERR_DB);
    assert_null(pc);
    assert_non_null(strstr(eb.msg, "cannot connect to postgresql: "));
    assert_null(strchr(eb.msg, '\n'));
}

static void test_exec_and_deadline(void **state)
{
    (void)state;
    struct pgconn *pc = open_or_skip();
    struct tr_errbuf eb = {{0}};
    char v[32];
    assert_int_equal(pgconn_exec(pc, "SELECT 41 + 1", 1000, v, sizeof v, &eb),
                     TR_OK);
    assert_string_equal(v, "42");
    /* a statement that fails is an error, with the server's words */
    assert_int_equal(pgconn_exec(pc, "SELECT nope", 1000, v, sizeof v, &eb),
                     TR_ERR_DB);
    assert_non_null(strstr(eb.msg, "nope"));
    pgconn_close(pc);

    pc = open_or_skip();
    int64_t t0 = util_now_ms();
    assert_int_equal(
        pgconn_exec(pc, "SELECT pg_sleep(3)", 200, v, sizeof v, &eb),
        TR_ERR_DB);
    int64_t took = util_now_ms() - t0;
    assert_true(took >= 190 && took < 1000);
    assert_string_equal(eb.msg, "postgresql did not answer within 200 ms");
    pgconn_close(pc);
}

static void test_session_timeouts(void **state)
{
    (void)state;
    struct pgconn *pc = open_or_skip();
    struct tr_errbuf eb = {{0}};
    char v[32], num[32];
    assert_int_equal(
        pgconn_exec(pc, "SHOW statement_timeout", 1000, v, sizeof v, &eb),
        TR_OK);
    assert_string_equal(v, "5s");
    assert_int_equal(
        pgconn_exec(pc, "SHOW server_version_num", 1000, num, sizeof num, &eb),
        TR_OK);
    if (atoi(num) >= 140000) {
        assert_int_equal(pgconn_exec(pc, "SHOW idle_session_timeout", 1000, v,
                                     sizeof v, &eb),
                         TR_OK);
        assert_string_equal(v, "5s");
    }
    pgconn_close(pc);
}

static void test_notifications(void **state)
{
    (void)state;
    struct pgconn *lis = open_or_skip(), *pub = open_or_skip();
    struct tr_errbuf eb = {{0}};
    int n = -1;
    assert_int_equal(
        pgconn_exec(lis, "LISTEN terrace_jobs", 1000, NULL, 0, &eb), TR_OK);
    /* nothing yet: the wait times out quietly */
    assert_int_equal(pgconn_wait(lis, 100, &n, &eb), TR_OK);
    assert_int_equal(n, 0);
    assert_int_equal(pgconn_exec(pub,
                                 "SELECT pg_notify('terrace_jobs', 'job-1'),"
                                 " pg_notify('other', 'x')",
                                 1000, NULL, 0, &eb),
                     TR_OK);
    assert_int_equal(pgconn_wait(lis, 5000, &n, &eb), TR_OK);
    assert_int_equal(n, 1);
    assert_int_equal(pgconn_wait(lis, 100, &n, &eb), TR_OK);
    assert_int_equal(n, 0);
    pgconn_close(pub);
    pgconn_close(lis);
}

static void test_dead_session(void **state)
{
    (void)state;
    struct pgconn *pc = open_or_skip(), *admin = open_or_skip();
    struct tr_errbuf eb = {{0}};
    char pid[32], sql[96];
    int n = 0;
    assert_int_equal(
        pgconn_exec(pc, "SELECT pg_backend_pid()", 1000, pid, sizeof pid, &eb),
        TR_OK);
    snprintf(sql, sizeof sql, "SELECT pg_terminate_backend(%s)", pid);
    assert_int_equal(pgconn_exec(admin, sql, 1000, NULL, 0, &eb), TR_OK);
    assert_int_equal(pgconn_exec(pc, "SELECT 1", 1000, NULL, 0, &eb),
                     TR_ERR_DB);
    assert_null(strchr(eb.msg, '\n'));
    assert_int_equal(pgconn_wait(pc, 100, &n, &eb), TR_ERR_DB);
    pgconn_close(pc);
    pgconn_close(admin);
}

static void test_advisory_lock(void **state)
{
    (void)state;
    struct pgconn *a = open_or_skip(), *b = open_or_skip();
    struct tr_errbuf eb = {{0}};
    const char *try = "SELECT pg_try_advisory_lock(7419999)";
    char v[8];
    assert_int_equal(pgconn_exec(a, try, 1000, v, sizeof v, &eb), TR_OK);
    assert_string_equal(v, "t");
    assert_int_equal(pgconn_exec(b, try, 1000, v, sizeof v, &eb), TR_OK);
    assert_string_equal(v, "f");
    pgconn_close(a); /* the session ends, and its lock with it */
    int64_t deadline = util_now_ms() + 5000;
    do
        assert_int_equal(pgconn_exec(b, try, 1000, v, sizeof v, &eb), TR_OK);
    while (strcmp(v, "t") != 0 && util_now_ms() < deadline);
    assert_string_equal(v, "t");
    pgconn_close(b);
}

int main(void)
{
    log_set_level(LOG_WARN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_connect_refused),
        cmocka_unit_test(test_exec_and_deadline),
        cmocka_unit_test(test_session_timeouts),
        cmocka_unit_test(test_notifications),
        cmocka_unit_test(test_dead_session),
        cmocka_unit_test(test_advisory_lock),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
