/*
 * test_trim.c - unit tests for src/http/trim.c, the memory trimmer: it
 * trims once requests have used 1 MiB since the last trim, not before;
 * at an idle moment, or after 2 s of requests in flight at the latest;
 * never twice within a second; and a pending trim does not hold up
 * http_trim_free.
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdatomic.h>
#include <time.h>

#include "http/http_int.h"

#define MIB (1u << 20)

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Polls until t has done n trims or ms pass; true if it did. */
static bool wait_trims(struct http_trim *t, unsigned long n, int ms)
{
    int64_t until = now_ms() + ms;
    while (http_trim_count(t) < n) {
        if (now_ms() > until)
            return false;
        struct timespec ts = {0, 5 * 1000000};
        nanosleep(&ts, NULL);
    }
    return true;
}

static void test_threshold(void **state)
{
    atomic_int in_flight = 0;
    struct http_trim *t = NULL;
    assert_int_equal(http_trim_new(&in_flight, &t, NULL), TR_OK);
    http_trim_note(t, MIB / 2);
    http_trim_note(t, MIB / 2 - 1);
    /* 1 byte short of 1 MiB: no trim within 1.5 s (a trim would come
     * within milliseconds: nothing is in flight) */
    assert_false(wait_trims(t, 1, 1500));
    http_trim_note(t, 1);
    assert_true(wait_trims(t, 1, 3000));
    /* the count restarted at the trim */
    http_trim_note(t, MIB - 1);
    assert_false(wait_trims(t, 2, 1500));
    assert_int_equal(http_trim_count(t), 1);
    http_trim_free(t);
}

static void test_waits_for_idle(void **state)
{
    atomic_int in_flight = 3;
    struct http_trim *t = NULL;
    assert_int_equal(http_trim_new(&in_flight, &t, NULL), TR_OK);
    int64_t start = now_ms();
    http_trim_note(t, 2 * MIB);
    /* busy: not before an idle moment, or 2 s at the latest */
    assert_false(wait_trims(t, 1, 500));
    atomic_store(&in_flight, 0);
    assert_true(wait_trims(t, 1, 1000));
    assert_true(now_ms() - start < 2000);
    http_trim_free(t);
}

static void test_busy_trims_anyway(void **state)
{
    atomic_int in_flight = 1; /* a long-poll that never ends */
    struct http_trim *t = NULL;
    assert_int_equal(http_trim_new(&in_flight, &t, NULL), TR_OK);
    int64_t start = now_ms();
    http_trim_note(t, 2 * MIB);
    assert_true(wait_trims(t, 1, 5000));
    assert_true(now_ms() - start >= 1900);
    http_trim_free(t);
}

static void test_once_a_second(void **state)
{
    atomic_int in_flight = 0;
    struct http_trim *t = NULL;
    assert_int_equal(http_trim_new(&in_flight, &t, NULL), TR_OK);
    http_trim_note(t, 2 * MIB);
    assert_true(wait_trims(t, 1, 3000));
    int64_t first = now_ms();
    http_trim_note(t, 2 * MIB);
    assert_true(wait_trims(t, 2, 3000));
    assert_true(now_ms() - first >= 900);
    http_trim_free(t);
}

static void test_free_pending(void **state)
{
    atomic_int in_flight = 1;
    struct http_trim *t = NULL;
    assert_int_equal(http_trim_new(&in_flight, &t, NULL), TR_OK);
    http_trim_note(t, 2 * MIB); /* waits up to 2 s for an idle moment */
    int64_t start = now_ms();
    http_trim_free(t);
    assert_true(now_ms() - start < 500);
    http_trim_note(NULL, 2 * MIB); /* no trimmer: nothing */
    assert_int_equal(http_trim_count(NULL), 0);
    http_trim_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_threshold),
        cmocka_unit_test(test_waits_for_idle),
        cmocka_unit_test(test_busy_trims_anyway),
        cmocka_unit_test(test_once_a_second),
        cmocka_unit_test(test_free_pending),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
