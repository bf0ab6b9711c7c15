/*
 * test_blob_azure_xml.c - unit tests for the Azure Blob answer reader
 * (src/blob/blob_azure_xml.c): List Blobs pages with and without a next
 * marker, entities in names, names the service had to encode (skipped),
 * the callback's error stopping the walk, error bodies, HTTP dates, and
 * every truncation of a valid answer refused or read without running
 * past its end (each copy is malloc'd to its exact size, so ASan sees an
 * overread).
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

#include "blob/blob_azure_xml.h"

static const char page1[] =
    "<?xml version=\"1.0\" encoding=\"utf-8\"?>"
    "<EnumerationResults ServiceEndpoint=\"http://h/\" ContainerName=\"c\">"
    "<Prefix>p/</Prefix><MaxResults>2</MaxResults><Blobs>"
    "<Blob><Name>p/a&amp;b</Name><Properties>"
    "<Last-Modified>Sat, 05 Dec 2026 17:15:43 GMT</Last-Modified>"
    "<Content-Length>5</Content-Length><BlobType>BlockBlob</BlobType>"
    "</Properties></Blob>"
    "<Blob><Name Encoded=\"true\">p%2Fodd%00</Name><Properties>"
    "<Last-Modified>Sat, 05 Dec 2026 17:15:43 GMT</Last-Modified>"
    "<Content-Length>1</Content-Length></Properties></Blob>"
    "<Blob><Name>p/&#x263A;&#65;</Name><Properties>"
    "<Creation-Time>Thu, 01 Jan 1970 00:00:00 GMT</Creation-Time>"
    "<Last-Modified>Thu, 01 Jan 1970 00:01:00 GMT</Last-Modified>"
    "<Content-Length>0</Content-Length></Properties></Blob>"
    "</Blobs><NextMarker>2!72!MDAw&lt;x</NextMarker></EnumerationResults>";

static const char last_page[] =
    "<?xml version=\"1.0\"?><EnumerationResults ContainerName=\"c\">"
    "<Blobs/><NextMarker/></EnumerationResults>";

struct seen {
    int n;
    char names[4][64];
    uint64_t sizes[4];
    int64_t mtimes[4];
    int fail_at; /* 1-based; 0: never */
};

static tr_err on_blob(void *ctx, const char *name, uint64_t size, int64_t mtime,
                      struct tr_errbuf *eb)
{
    struct seen *s = ctx;
    if (s->n < 4) {
        snprintf(s->names[s->n], sizeof(s->names[0]), "%s", name);
        s->sizes[s->n] = size;
        s->mtimes[s->n] = mtime;
    }
    s->n++;
    if (s->n == s->fail_at)
        return tr_fail(eb, TR_ERR_CONFLICT, "stop here");
    return TR_OK;
}

static void test_list_page(void **state)
{
    struct seen s = {0};
    struct buf next;
    buf_init(&next, 0);
    struct tr_errbuf eb = {{0}};
    assert_int_equal(azx_list(page1, strlen(page1), on_blob, &s, &next, &eb),
                     TR_OK);
    assert_int_equal(s.n, 2);
    assert_string_equal(s.names[0], "p/a&b");
    assert_int_equal(s.sizes[0], 5);
    assert_int_equal(s.mtimes[0], 1796490943);
    assert_string_equal(s.names[1], "p/\xe2\x98\xba"
                                    "A");
    assert_int_equal(s.sizes[1], 0);
    assert_int_equal(s.mtimes[1], 60);
    assert_string_equal(next.data, "2!72!MDAw<x");
    buf_free(&next);
}

static void test_list_last_page(void **state)
{
    struct seen s = {0};
    struct buf next;
    buf_init(&next, 0);
    buf_puts(&next, "stale");
    struct tr_errbuf eb = {{0}};
    assert_int_equal(
        azx_list(last_page, strlen(last_page), on_blob, &s, &next, &eb), TR_OK);
    assert_int_equal(s.n, 0);
    assert_int_equal(next.len, 0);
    buf_free(&next);
}

static void test_list_stops_at_callback_error(void **state)
{
    struct seen s = {.fail_at = 1};
    struct buf next;
    buf_init(&next, 0);
    struct tr_errbuf eb = {{0}};
    assert_int_equal(azx_list(page1, strlen(page1), on_blob, &s, &next, &eb),
                     TR_ERR_CONFLICT);
    assert_int_equal(s.n, 1);
    assert_string_equal(eb.msg, "stop here");
    buf_free(&next);
}

static void test_list_refuses_garbage(void **state)
{
    static const char *bad[] = {
        "",
        "<html>hello</html>",
        "<EnumerationResults><Blobs><Blob><Name>x</Name><Properties>"
        "<Content-Length>-1</Content-Length><Last-Modified>Sat, 05 Dec 2026 "
        "17:15:43 GMT</Last-Modified></Properties></Blob></Blobs>"
        "</EnumerationResults>",
        "<EnumerationResults><Blobs><Blob><Name>x</Name><Properties>"
        "<Content-Length>1</Content-Length><Last-Modified>yesterday"
        "</Last-Modified></Properties></Blob></Blobs></EnumerationResults>",
        "<EnumerationResults><Blobs><Blob><Name>a&bogus;</Name><Properties>"
        "<Content-Length>1</Content-Length></Properties></Blob></Blobs>"
        "</EnumerationResults>",
        "<EnumerationResults><Blobs><Blob><Name>&#0;</Name></Blob></Blobs>"
        "</EnumerationResults>",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct seen s = {0};
        struct buf next;
        buf_init(&next, 0);
        struct tr_errbuf eb = {{0}};
        assert_int_equal(
            azx_list(bad[i], strlen(bad[i]), on_blob, &s, &next, &eb),
            TR_ERR_IO);
        assert_int_equal(s.n, 0);
        assert_true(strncmp(eb.msg, "azure blob: list: ", 18) == 0);
        buf_free(&next);
    }
}

/* Every prefix of a valid page: a clean error or a shorter walk, never a
 * read past the end (the copy has no NUL and no slack). */
static void test_list_truncated(void **state)
{
    size_t len = strlen(page1);
    for (size_t n = 0; n < len; n++) {
        char *copy = malloc(n > 0 ? n : 1);
        assert_non_null(copy);
        memcpy(copy, page1, n);
        struct seen s = {0};
        struct buf next;
        buf_init(&next, 0);
        struct tr_errbuf eb = {{0}};
        tr_err e = azx_list(copy, n, on_blob, &s, &next, &eb);
        assert_true(e == TR_OK || e == TR_ERR_IO);
        assert_true(s.n <= 2);
        if (e == TR_OK)
            assert_int_equal(next.len, 0); /* marker cut off: last page */
        buf_free(&next);
        free(copy);
    }
}

static void test_error_text(void **state)
{
    static const char body[] =
        "<?xml version=\"1.0\" encoding=\"utf-8\"?><Error>"
        "<Code>AuthenticationFailed</Code><Message>Server failed to "
        "authenticate the request &quot;x&quot;</Message></Error>";
    char code[64], msg[128], tiny[4];
    assert_true(azx_text(body, strlen(body), "Code", code, sizeof(code)));
    assert_string_equal(code, "AuthenticationFailed");
    assert_true(azx_text(body, strlen(body), "Message", msg, sizeof(msg)));
    assert_string_equal(msg, "Server failed to authenticate the request "
                             "\"x\"");
    assert_false(azx_text(body, strlen(body), "Code", tiny, sizeof(tiny)));
    assert_false(azx_text(body, strlen(body), "Detail", code, sizeof(code)));
    assert_false(azx_text("<Code>open", 10, "Code", code, sizeof(code)));
    /* a longer tag sharing the name's start is not the tag */
    assert_false(azx_text("<Codes>x</Codes>", 16, "Code", code, sizeof(code)));
}

static void test_http_date(void **state)
{
    assert_int_equal(azx_http_date("Thu, 01 Jan 1970 00:00:00 GMT"), 0);
    assert_int_equal(azx_http_date("Sat, 05 Dec 2026 17:15:43 GMT"),
                     1796490943);
    assert_int_equal(azx_http_date("Tue, 29 Feb 2028 23:59:59 GMT"),
                     1835481599);
    assert_int_equal(azx_http_date("Sat, 05 Dek 2026 17:15:43 GMT"), -1);
    assert_int_equal(azx_http_date("Sat, 05 Dec 2026 17:15:43"), -1);
    assert_int_equal(azx_http_date("Sat, 05 Dec 2026 25:15:43 GMT"), -1);
    assert_int_equal(azx_http_date("Sat, 05 Dec 2026 17:15:43 GMT junk"), -1);
    assert_int_equal(azx_http_date(""), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_list_page),
        cmocka_unit_test(test_list_last_page),
        cmocka_unit_test(test_list_stops_at_callback_error),
        cmocka_unit_test(test_list_refuses_garbage),
        cmocka_unit_test(test_list_truncated),
        cmocka_unit_test(test_error_text),
        cmocka_unit_test(test_http_date),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
