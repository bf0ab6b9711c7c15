/*
 * test_jw.c - unit tests for src/core/jw.c: separators, nesting, string
 * escaping (quotes, backslashes, every control character, UTF-8 passed
 * through), integers at their limits, strings made of pieces, sticky
 * errors on misuse, the same text as jansson's compact dump, and stored
 * JSON copied as is (or its default when it is not one value).
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/jw.h"

/* The text jansson's compact dump gives for j (which is released). */
static char *jansson_text(json_t *j)
{
    assert_non_null(j);
    char *s = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);
    json_decref(j);
    assert_non_null(s);
    return s;
}

static void test_document_shape(void **state)
{
    (void)state;
    struct buf b;
    buf_init(&b, 0);
    struct jw w;
    jw_init(&w, &b);
    jw_obj(&w);
    jw_kstr(&w, "id", "ws-1");
    jw_knull(&w, "none");
    jw_kstr(&w, "nullstr", NULL);
    jw_kbool(&w, "t", true);
    jw_kbool(&w, "f", false);
    jw_kint(&w, "n", 42);
    jw_key(&w, "empty-obj");
    jw_obj(&w);
    jw_obj_end(&w);
    jw_key(&w, "empty-arr");
    jw_arr(&w);
    jw_arr_end(&w);
    jw_key(&w, "arr");
    jw_arr(&w);
    jw_int(&w, 1);
    jw_str(&w, "two");
    jw_obj(&w);
    jw_kint(&w, "three", 3);
    jw_obj_end(&w);
    jw_arr(&w);
    jw_arr_end(&w);
    jw_null(&w);
    jw_arr_end(&w);
    jw_key(&w, "raw");
    jw_raw(&w, "{\"a\":[1,true]}", 14);
    jw_obj_end(&w);
    assert_int_equal(jw_error(&w), TR_OK);
    assert_string_equal(
        b.data,
        "{\"id\":\"ws-1\",\"none\":null,\"nullstr\":null,\"t\":true,"
        "\"f\":false,\"n\":42,\"empty-obj\":{},\"empty-arr\":[],"
        "\"arr\":[1,\"two\",{\"three\":3},[],null],\"raw\":{\"a\":[1,true]}}");
    /* and jansson reads it back */
    json_error_t err;
    json_t *back = json_loads(b.data, 0, &err);
    assert_non_null(back);
    json_decref(back);
    buf_free(&b);
}

/* Each string alone, as jansson would write it. */
static void check_string(const char *s, size_t n)
{
    struct buf b;
    buf_init(&b, 0);
    struct jw w;
    jw_init(&w, &b);
    jw_strn(&w, s, n);
    assert_int_equal(jw_error(&w), TR_OK);
    char *want = jansson_text(json_stringn(s, n));
    assert_string_equal(b.data, want);
    free(want);
    buf_free(&b);
}

static void test_escaping(void **state)
{
    (void)state;
    check_string("plain", 5);
    check_string("", 0);
    check_string("quote \" and backslash \\ and slash /", 35);
    check_string("\\\\\"\"", 4);
    check_string("tab\tnl\ncr\rbs\bff\f", 17);
    /* every control character, and DEL (not escaped) */
    char ctl[34];
    for (int i = 0; i < 32; i++)
        ctl[i] = (char)(i == 0 ? 1 : i);
    ctl[32] = 0x7f;
    ctl[33] = 'x';
    check_string(ctl, sizeof(ctl));
    /* NUL inside a counted string */
    check_string("a\0b", 3);
    /* non-ASCII UTF-8 goes through untouched: é, €, 😀, U+2028 */
    const char *u = "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 \xe2\x80\xa8";
    check_string(u, strlen(u));

    struct buf b;
    buf_init(&b, 0);
    struct jw w;
    jw_init(&w, &b);
    jw_str(&w, "\x01\x1f");
    assert_string_equal(b.data, "\"\\u0001\\u001F\"");
    buf_reset(&b);
    jw_init(&w, &b);
    jw_str(&w, u);
    assert_string_equal(b.data + 1, "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 "
                                    "\xe2\x80\xa8\"");
    /* keys are escaped too */
    buf_reset(&b);
    jw_init(&w, &b);
    jw_obj(&w);
    jw_kstr(&w, "k\"\n", "v");
    jw_obj_end(&w);
    assert_string_equal(b.data, "{\"k\\\"\\n\":\"v\"}");
    buf_free(&b);
}

static void test_integers(void **state)
{
    (void)state;
    const int64_t v[] = {0,   1,         -1,        9,         10,
                         -10, 123456789, INT64_MAX, INT64_MIN, INT64_MIN + 1};
    for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
        struct buf b;
        buf_init(&b, 0);
        struct jw w;
        jw_init(&w, &b);
        jw_int(&w, v[i]);
        char want[32];
        snprintf(want, sizeof(want), "%lld", (long long)v[i]);
        assert_string_equal(b.data, want);
        buf_free(&b);
    }
}

static void test_pieces(void **state)
{
    (void)state;
    struct buf b;
    buf_init(&b, 0);
    struct jw w;
    jw_init(&w, &b);
    jw_arr(&w);
    jw_str(&w, "a");
    jw_str_begin(&w);
    jw_str_add(&w, "/api/v2/organizations/");
    jw_str_add(&w, "o\"rg");
    jw_str_add(&w, NULL);
    jw_str_add(&w, "/workspaces");
    jw_str_end(&w);
    jw_arr_end(&w);
    assert_int_equal(jw_error(&w), TR_OK);
    assert_string_equal(b.data,
                        "[\"a\",\"/api/v2/organizations/o\\\"rg/workspaces\"]");
    buf_free(&b);
}

/* A document built both ways gives the same bytes. */
static void test_same_as_jansson(void **state)
{
    (void)state;
    json_t *j =
        json_pack("{s:s,s:{s:b,s:n,s:I},s:[s,s],s:s}", "id", "ws-\xc3\xa9",
                  "attributes", "locked", 1, "x", "count", (json_int_t)-7,
                  "tags", "a\tb", "c\\d", "z", "\x02");
    char *want = jansson_text(j);
    struct buf b;
    buf_init(&b, 0);
    struct jw w;
    jw_init(&w, &b);
    jw_obj(&w);
    jw_kstr(&w, "id", "ws-\xc3\xa9");
    jw_key(&w, "attributes");
    jw_obj(&w);
    jw_kbool(&w, "locked", true);
    jw_knull(&w, "x");
    jw_kint(&w, "count", -7);
    jw_obj_end(&w);
    jw_key(&w, "tags");
    jw_arr(&w);
    jw_str(&w, "a\tb");
    jw_str(&w, "c\\d");
    jw_arr_end(&w);
    jw_kstr(&w, "z", "\x02");
    jw_obj_end(&w);
    assert_int_equal(jw_error(&w), TR_OK);
    assert_string_equal(b.data, want);
    free(want);
    buf_free(&b);
}

/* Strings of every length up to 40 over bytes that need escapes and
 * bytes that do not (their neighbours, DEL), with the escapes at every place
 * a word-at-a-time scan can meet them: written whole (jw_str) and in
 * pieces (jw_str_add) they are the same text, and parse back to the
 * string. */
static void test_strings_round_trip(void **state)
{
    (void)state;
    static const char alphabet[] = {'a',  '"',  '\\', '\n', 0x01, 0x1f,
                                    0x20, 0x7f, 0x21, 0x5b, 'z',  '/'};
    unsigned seed = 12345;
    for (int round = 0; round < 4000; round++) {
        char s[41];
        size_t n = (size_t)(round % 41);
        for (size_t i = 0; i < n; i++) {
            seed = seed * 1103515245u + 12345u;
            /* mostly plain bytes, so that whole words pass unescaped */
            unsigned r = (seed >> 16) % 64;
            s[i] = r < sizeof(alphabet) ? alphabet[r] : (char)('a' + r % 26);
        }
        s[n] = '\0';
        struct buf whole, pieces;
        buf_init(&whole, 0);
        buf_init(&pieces, 0);
        struct jw w;
        jw_init(&w, &whole);
        jw_strn(&w, s, n);
        assert_int_equal(jw_error(&w), TR_OK);
        jw_init(&w, &pieces);
        jw_str_begin(&w);
        jw_str_add(&w, s);
        jw_str_end(&w);
        assert_string_equal(whole.data, pieces.data);
        for (const char *p = whole.data; *p; p++)
            assert_true((unsigned char)*p >= 0x20);
        json_error_t err;
        json_t *j = json_loads(whole.data, JSON_DECODE_ANY, &err);
        if (j == NULL)
            fail_msg("%s: %s", whole.data, err.text);
        assert_int_equal(json_string_length(j), n);
        assert_memory_equal(json_string_value(j), s, n);
        json_decref(j);
        buf_free(&whole);
        buf_free(&pieces);
    }
}

static void test_misuse_is_sticky(void **state)
{
    (void)state;
    struct buf b;
    buf_init(&b, 0);
    struct jw w;
    /* a value where a key belongs */
    jw_init(&w, &b);
    jw_obj(&w);
    jw_str(&w, "v");
    assert_int_equal(jw_error(&w), TR_ERR_INTERNAL);
    size_t len = b.len;
    jw_kstr(&w, "k", "v"); /* ignored from now on */
    jw_obj_end(&w);
    assert_int_equal(b.len, len);
    /* a key in an array, a key at the top */
    buf_reset(&b);
    jw_init(&w, &b);
    jw_arr(&w);
    jw_key(&w, "k");
    assert_int_equal(jw_error(&w), TR_ERR_INTERNAL);
    jw_init(&w, &b);
    jw_key(&w, "k");
    assert_int_equal(jw_error(&w), TR_ERR_INTERNAL);
    /* two keys in a row; closing with a key pending; wrong closer */
    jw_init(&w, &b);
    jw_obj(&w);
    jw_key(&w, "a");
    jw_key(&w, "b");
    assert_int_equal(jw_error(&w), TR_ERR_INTERNAL);
    jw_init(&w, &b);
    jw_obj(&w);
    jw_key(&w, "a");
    jw_obj_end(&w);
    assert_int_equal(jw_error(&w), TR_ERR_INTERNAL);
    jw_init(&w, &b);
    jw_obj(&w);
    jw_arr_end(&w);
    assert_int_equal(jw_error(&w), TR_ERR_INTERNAL);
    /* unclosed, and closing what was never opened */
    jw_init(&w, &b);
    jw_arr(&w);
    assert_int_equal(jw_error(&w), TR_ERR_INTERNAL);
    jw_init(&w, &b);
    jw_arr_end(&w);
    assert_int_equal(jw_error(&w), TR_ERR_INTERNAL);
    /* too deep */
    jw_init(&w, &b);
    for (int i = 0; i < JW_MAX_DEPTH + 2; i++)
        jw_arr(&w);
    assert_int_equal(jw_error(&w), TR_ERR_INTERNAL);
    buf_free(&b);
}

static void test_buffer_limit(void **state)
{
    (void)state;
    struct buf b;
    buf_init(&b, 16);
    struct jw w;
    jw_init(&w, &b);
    jw_arr(&w);
    jw_str(&w, "0123456789");
    jw_str(&w, "0123456789"); /* over the limit */
    size_t len = b.len;
    jw_str(&w, "x");
    jw_arr_end(&w);
    assert_int_equal(jw_error(&w), TR_ERR_TOO_LARGE);
    assert_int_equal(b.len, len);
    buf_free(&b);
}

/* Stored JSON goes through as written when it is one array or object
 * (as json_loads() would take it), else the default. */
static void check_json(const char *text, const char *want)
{
    struct buf b;
    buf_init(&b, 0);
    struct jw w;
    jw_init(&w, &b);
    jw_json(&w, text, "[\"def\"]");
    assert_int_equal(jw_error(&w), TR_OK);
    assert_string_equal(b.data, want);
    buf_free(&b);
}

static void test_stored_json(void **state)
{
    (void)state;
    check_json("[]", "[]");
    check_json("{\"a\":[1,{\"b\":\"}]\\\"\"}],\"c\":null}",
               "{\"a\":[1,{\"b\":\"}]\\\"\"}],\"c\":null}");
    check_json("  {\"a\": true}\n", "{\"a\": true}");
    check_json(NULL, "[\"def\"]");
    check_json("", "[\"def\"]");
    check_json("\"a string\"", "[\"def\"]");
    check_json("42", "[\"def\"]");
    check_json("[1,2", "[\"def\"]");
    check_json("[\"open]", "[\"def\"]");
    check_json("[1]]", "[\"def\"]");
    check_json("{} {}", "[\"def\"]");
    check_json("[1] x", "[\"def\"]");
    /* the scan itself: where each value ends */
    const char *s = "\"a\\\"b\",1";
    assert_ptr_equal(jw_skip_value(s), s + 6);
    s = "-1.5e3]";
    assert_ptr_equal(jw_skip_value(s), s + 6);
    assert_null(jw_skip_value("]"));
    assert_null(jw_skip_value(""));
    assert_null(jw_skip_value("{\"a\":\"b"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_document_shape),
        cmocka_unit_test(test_escaping),
        cmocka_unit_test(test_integers),
        cmocka_unit_test(test_pieces),
        cmocka_unit_test(test_same_as_jansson),
        cmocka_unit_test(test_strings_round_trip),
        cmocka_unit_test(test_misuse_is_sticky),
        cmocka_unit_test(test_buffer_limit),
        cmocka_unit_test(test_stored_json),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
