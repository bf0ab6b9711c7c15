/*
 * test_util.c - unit tests for src/core/util.c: ids, timestamps, name
 * checks, the strict integer parser and checked arithmetic.
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
#include <time.h>

#include "core/util.h"

static const char base58[] =
    "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";

static int cmp_str(const void *x, const void *y)
{
    return strcmp(*(char *const *)x, *(char *const *)y);
}

static void test_id_shape(void **state)
{
    (void)state;
    struct arena *a = arena_new();
    const char *prefixes[] = {"ws", "org", "at", "user", "sv", "x"};
    for (size_t p = 0; p < sizeof(prefixes) / sizeof(prefixes[0]); p++) {
        size_t plen = strlen(prefixes[p]);
        for (int i = 0; i < 50; i++) {
            char *id = util_new_id(a, prefixes[p]);
            assert_int_equal(strlen(id), plen + 1 + 16);
            assert_memory_equal(id, prefixes[p], plen);
            assert_int_equal(id[plen], '-');
            for (size_t k = plen + 1; k < plen + 17; k++)
                assert_non_null(strchr(base58, id[k]));
        }
    }
    arena_destroy(a);
}

static void test_id_unique(void **state)
{
    (void)state;
    enum { N = 20000 };
    struct arena *a = arena_new();
    char **ids = arena_alloc(a, sizeof(char *) * N);
    for (int i = 0; i < N; i++)
        ids[i] = util_new_id(a, "run");
    qsort(ids, N, sizeof(char *), cmp_str);
    for (int i = 1; i < N; i++)
        assert_string_not_equal(ids[i - 1], ids[i]);
    /* every alphabet character shows up in 320,000 random characters,
     * and none dominates */
    int counts[128] = {0};
    for (int i = 0; i < N; i++)
        for (const char *p = ids[i] + 4; *p; p++)
            counts[(unsigned char)*p]++;
    for (const char *c = base58; *c; c++)
        assert_in_range(counts[(unsigned char)*c], 3000, 9000);
    arena_destroy(a);
}

static void test_random(void **state)
{
    (void)state;
    unsigned char a[64] = {0}, b[64] = {0};
    util_random(a, sizeof(a));
    util_random(b, sizeof(b));
    assert_memory_not_equal(a, b, sizeof(a));
    util_random(a, 0); /* no-op */
}

static void test_times(void **state)
{
    (void)state;
    struct arena *a = arena_new();
    assert_string_equal(util_iso_from_unix(a, 0), "1970-01-01T00:00:00.000Z");
    assert_string_equal(util_iso_from_unix(a, 1714566896),
                        "2024-05-01T12:34:56.000Z");
    char *now = util_now_iso(a);
    assert_int_equal(strlen(now), 24);
    assert_int_equal(now[4], '-');
    assert_int_equal(now[10], 'T');
    assert_int_equal(now[19], '.');
    assert_int_equal(now[23], 'Z');
    int64_t t = util_now_unix();
    assert_true(llabs(t - (int64_t)time(NULL)) <= 1);
    assert_true(llabs(util_now_ms() / 1000 - t) <= 1);
    /* the date part of now agrees with util_iso_from_unix */
    char *from = util_iso_from_unix(a, util_now_unix());
    assert_memory_equal(now, from, 10);
    arena_destroy(a);
}

static void test_valid_name(void **state)
{
    (void)state;
    const char *good[] = {"a", "Z", "0", "my-org", "my_org", "Org-123_x", "a-"};
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
        assert_true(util_valid_name(good[i]));
    const char *bad[] = {NULL,   "",     "a b",         "a.b",
                         "a/b",  "a\tb", "caf\xc3\xa9", "a\nb",
                         "org!", "../x", "name;",       "\"q\""};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_false(util_valid_name(bad[i]));
    char s[100];
    memset(s, 'n', sizeof(s));
    s[90] = '\0';
    assert_true(util_valid_name(s)); /* 90 characters */
    s[90] = 'n';
    s[91] = '\0';
    assert_false(util_valid_name(s)); /* 91 */
}

static void test_streq(void **state)
{
    (void)state;
    assert_true(util_streq(NULL, NULL));
    assert_false(util_streq("a", NULL));
    assert_false(util_streq(NULL, "a"));
    assert_true(util_streq("", ""));
    assert_true(util_streq("abc", "abc"));
    assert_false(util_streq("abc", "abd"));
    assert_false(util_streq("abc", "ab"));
}

static void test_parse_i64(void **state)
{
    (void)state;
    struct {
        const char *s;
        int64_t v;
    } good[] = {
        {"0", 0},
        {"-0", 0},
        {"7", 7},
        {"007", 7},
        {"-42", -42},
        {"9223372036854775807", INT64_MAX},
        {"-9223372036854775808", INT64_MIN},
    };
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        int64_t v = 12345;
        assert_int_equal(util_parse_i64(good[i].s, &v), TR_OK);
        assert_true(v == good[i].v);
    }
    const char *bad[] = {
        NULL,
        "",
        "-",
        "+",
        " ",
        "abc",
        "12a",
        "a12",
        "1.0",
        "1e3",
        "0x1f",
        " 1",
        "1 ",
        "\t1",
        "1\n",
        "+1",
        "--1",
        "- 1",
        "9223372036854775808",  /* INT64_MAX + 1 */
        "-9223372036854775809", /* INT64_MIN - 1 */
        "99999999999999999999999",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int64_t v = 12345;
        assert_int_equal(util_parse_i64(bad[i], &v), TR_ERR_INVALID);
        assert_int_equal(v, 12345); /* out untouched on error */
    }
}

static void test_checked_arithmetic(void **state)
{
    (void)state;
    int64_t r = 7;
    assert_true(util_add_i64(INT64_MAX - 1, 1, &r));
    assert_true(r == INT64_MAX);
    assert_false(util_add_i64(INT64_MAX, 1, &r));
    assert_false(util_add_i64(INT64_MIN, -1, &r));
    assert_true(util_add_i64(INT64_MIN, INT64_MAX, &r));
    assert_true(r == -1);
    assert_true(util_sub_i64(0, INT64_MAX, &r));
    assert_true(r == -INT64_MAX);
    assert_false(util_sub_i64(INT64_MIN, 1, &r));
    assert_false(util_sub_i64(0, INT64_MIN, &r));
    assert_true(util_mul_i64(1000000, 100, &r));
    assert_true(r == 100000000);
    assert_false(util_mul_i64(INT64_MAX / 2 + 1, 2, &r));
    assert_false(util_mul_i64(INT64_MIN, -1, &r));
    assert_true(util_mul_i64(INT64_MIN, 1, &r));
    assert_true(util_sat_add_i64(INT64_MAX, 1048576) == INT64_MAX);
    assert_true(util_sat_add_i64(INT64_MAX - 5, 5) == INT64_MAX);
    assert_true(util_sat_add_i64(INT64_MIN, -1) == INT64_MIN);
    assert_true(util_sat_add_i64(40, 2) == 42);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_id_shape),
        cmocka_unit_test(test_id_unique),
        cmocka_unit_test(test_random),
        cmocka_unit_test(test_times),
        cmocka_unit_test(test_valid_name),
        cmocka_unit_test(test_streq),
        cmocka_unit_test(test_parse_i64),
        cmocka_unit_test(test_checked_arithmetic),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
