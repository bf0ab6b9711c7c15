/*
 * test_buf.c - unit tests for src/core/buf.c: growth, the NUL terminator,
 * the size limit (contents unchanged on refusal), printf and steal.
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

#include "core/buf.h"

static void test_append_grows(void **state)
{
    (void)state;
    struct buf b;
    buf_init(&b, 0);
    assert_int_equal(b.len, 0);
    for (int i = 0; i < 10000; i++)
        assert_int_equal(buf_append(&b, "abc", 3), TR_OK);
    assert_int_equal(b.len, 30000);
    assert_int_equal(b.data[b.len], '\0');
    assert_true(b.cap > b.len);
    assert_memory_equal(b.data + 29997, "abc", 3);
    assert_int_equal(strlen(b.data), 30000);
    buf_free(&b);
    assert_null(b.data);
    assert_int_equal(b.len, 0);
    buf_free(&b); /* twice is harmless */
}

static void test_binary_and_empty(void **state)
{
    (void)state;
    struct buf b;
    buf_init(&b, 0);
    assert_int_equal(buf_append(&b, "", 0), TR_OK);
    assert_non_null(b.data);
    assert_string_equal(b.data, "");
    const char bin[4] = {'a', '\0', 'b', '\0'};
    assert_int_equal(buf_append(&b, bin, 4), TR_OK);
    assert_int_equal(b.len, 4);
    assert_memory_equal(b.data, bin, 4);
    assert_int_equal(b.data[4], '\0');
    buf_free(&b);
}

static void test_puts_printf(void **state)
{
    (void)state;
    struct buf b;
    buf_init(&b, 0);
    assert_int_equal(buf_puts(&b, "x="), TR_OK);
    assert_int_equal(buf_printf(&b, "%d,%s", 42, "y"), TR_OK);
    assert_string_equal(b.data, "x=42,y");
    assert_int_equal(b.len, 6);
    /* printf that needs growth */
    assert_int_equal(buf_printf(&b, "%5000s", "z"), TR_OK);
    assert_int_equal(b.len, 5006);
    assert_int_equal(b.data[5005], 'z');
    assert_int_equal(b.data[5006], '\0');
    /* printf into a fresh buffer */
    struct buf c;
    buf_init(&c, 0);
    assert_int_equal(buf_printf(&c, "%s", ""), TR_OK);
    assert_string_equal(c.data, "");
    buf_free(&c);
    buf_free(&b);
}

static void test_limit(void **state)
{
    (void)state;
    struct buf b;
    buf_init(&b, 10);
    assert_int_equal(buf_puts(&b, "0123456789"), TR_OK); /* exactly max */
    assert_int_equal(b.len, 10);
    assert_int_equal(buf_append(&b, "x", 1), TR_ERR_TOO_LARGE);
    assert_int_equal(b.len, 10);
    assert_string_equal(b.data, "0123456789");
    assert_int_equal(buf_printf(&b, "%d", 1), TR_ERR_TOO_LARGE);
    assert_string_equal(b.data, "0123456789");
    /* empty appends still work at the limit */
    assert_int_equal(buf_append(&b, "", 0), TR_OK);
    buf_reset(&b);
    assert_int_equal(b.len, 0);
    assert_string_equal(b.data, "");
    assert_int_equal(buf_puts(&b, "01234567890"), TR_ERR_TOO_LARGE);
    assert_int_equal(b.len, 0);
    assert_string_equal(b.data, "");
    buf_free(&b);
}

static void test_overflow_refused(void **state)
{
    (void)state;
    struct buf b;
    buf_init(&b, 0);
    assert_int_equal(buf_puts(&b, "abc"), TR_OK);
    /* sizes that would wrap around are refused before any arithmetic */
    assert_int_equal(buf_append(&b, "x", SIZE_MAX), TR_ERR_TOO_LARGE);
    assert_int_equal(buf_append(&b, "x", SIZE_MAX - 3), TR_ERR_TOO_LARGE);
    assert_string_equal(b.data, "abc");
    buf_free(&b);
}

static void test_reset_empty(void **state)
{
    (void)state;
    struct buf b;
    buf_init(&b, 0);
    buf_reset(&b); /* no data yet */
    assert_null(b.data);
    assert_int_equal(buf_puts(&b, "abc"), TR_OK);
    size_t cap = b.cap;
    buf_reset(&b);
    assert_int_equal(b.cap, cap); /* memory kept for reuse */
    assert_int_equal(buf_puts(&b, "de"), TR_OK);
    assert_string_equal(b.data, "de");
    buf_free(&b);
}

static void test_steal(void **state)
{
    (void)state;
    struct buf b;
    buf_init(&b, 0);
    assert_int_equal(buf_puts(&b, "stolen"), TR_OK);
    size_t len = 0;
    char *s = buf_steal(&b, &len);
    assert_string_equal(s, "stolen");
    assert_int_equal(len, 6);
    assert_null(b.data);
    assert_int_equal(b.len, 0);
    free(s);
    /* stealing an empty buffer gives an empty string, not NULL */
    char *e = buf_steal(&b, NULL);
    assert_non_null(e);
    assert_string_equal(e, "");
    free(e);
    /* the buffer is reusable after a steal */
    assert_int_equal(buf_puts(&b, "again"), TR_OK);
    assert_string_equal(b.data, "again");
    buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_append_grows),
        cmocka_unit_test(test_binary_and_empty),
        cmocka_unit_test(test_puts_printf),
        cmocka_unit_test(test_limit),
        cmocka_unit_test(test_overflow_refused),
        cmocka_unit_test(test_reset_empty),
        cmocka_unit_test(test_steal),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
