/*
 * test_state_check_stream.c - unit tests for
 * src/domain/state_check_stream.c: the streaming state reader, from a
 * file and from memory, must accept and refuse exactly what the jansson
 * tree reader (state_parse_tree) does, with the same results.  A corpus of
 * valid and invalid states and a bounded loop of random mutations of a valid
 * one are read both ways and compared; then the reader's own bounds and the
 * block hook.
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
#include <unistd.h>

#include "core/buf.h"
#include "domain/state_check.h"
#include "domain/state_check_int.h"

static const char fixture[] =
    "{\n"
    "  \"version\": 4,\n"
    "  \"terraform_version\": \"1.10.0\",\n"
    "  \"serial\": 2,\n"
    "  \"lineage\": \"b2b54b23-e7ea-5500-7b15-fcb68c1d92bb\",\n"
    "  \"outputs\": {\n"
    "    \"l\": {\"value\": [\"us-west-1a\", 1.5e3],\n"
    "      \"type\": [\"list\", \"string\"]},\n"
    "    \"s\": {\"value\": \"x\\u00e9\\ud83d\\ude00\\n\",\n"
    "      \"type\": \"string\", \"sensitive\": true},\n"
    "    \"o\": {\"value\": {\"foo\": null, \"n\": -0.0},\n"
    "      \"type\": [\"object\", {\"foo\": \"string\"}]},\n"
    "    \"n\": {\"value\": 5, \"type\": \"number\", \"x\": [true, false]},\n"
    "    \"r\": {\"value\": 1000.1, \"type\": \"number\"}\n"
    "  },\n"
    "  \"check_results\": null,\n"
    "  \"resources\": [\n"
    "    {\"mode\": \"managed\", \"type\": \"null_resource\",\n"
    "     \"name\": \"test\", \"provider\": \"provider.null\",\n"
    "     \"instances\": [{\"schema_version\": 0, \"attributes\":\n"
    "       {\"id\": \"9023256633839603543\", \"serial\": 7,\n"
    "        \"deep\": [[[{\"a\": [1, 2, {\"b\": \"\\\"\\\\\\/\"}]}]]]}}]},\n"
    "    {\"module\": \"module.net\", \"mode\": \"data\",\n"
    "     \"type\": \"terraform_remote_state\", \"name\": \"other\",\n"
    "     \"provider\": \"provider[\\\"terraform.io/builtin/t\\\"]\",\n"
    "     \"instances\": [{}, {}]},\n"
    "    {\"type\": \"t\", \"name\": \"n\"}\n"
    "  ]\n"
    "}\n";

static int tmp_fd = -1;
static char tmp_path[64];
static long compared, refused;

static int setup(void **state)
{
    (void)state;
    snprintf(tmp_path, sizeof(tmp_path), "/tmp/test_state_stream.XXXXXX");
    tmp_fd = mkstemp(tmp_path);
    return tmp_fd >= 0 ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    close(tmp_fd);
    unlink(tmp_path);
    return 0;
}

static void to_file(const void *data, size_t len)
{
    assert_int_equal(ftruncate(tmp_fd, 0), 0);
    if (len > 0)
        assert_int_equal(pwrite(tmp_fd, data, len, 0), (ssize_t)len);
    assert_int_equal(lseek(tmp_fd, 0, SEEK_SET), 0);
}

static void same_str(const char *what, const char *a, const char *b,
                     const char *doc, size_t len)
{
    if (strcmp(a, b) != 0)
        fail_msg("%s differs: tree %s, stream %s; doc (%zu bytes): %.*s", what,
                 a, b, len, (int)(len > 400 ? 400 : len), doc);
}

/* Reads data with the tree reader and the streaming one (from a file
 * when fd, else from memory) and fails on any difference. */
static void compare_one(const char *data, size_t len, bool fd)
{
    struct arena *a = arena_new();
    struct state_info t = {0}, s = {0};
    struct tr_errbuf te = {{0}}, se = {{0}};
    tr_err et = state_parse_tree(a, data, len, &t, &te);
    to_file(data, len);
    tr_err es = fd ? state_parse_fd(a, tmp_fd, &s, &se)
                   : state_parse(a, data, len, &s, &se);
    if (et != es)
        fail_msg("tree %d (%s), stream %d (%s); doc (%zu bytes): %.*s", et,
                 te.msg, es, se.msg, len, (int)(len > 400 ? 400 : len), data);
    compared++;
    const char *syn = "state is not valid JSON";
    if (et != TR_OK) {
        refused++;
        if (strncmp(te.msg, syn, strlen(syn)) == 0)
            same_str("syntax error", syn,
                     strncmp(se.msg, syn, strlen(syn)) ? se.msg : syn, data,
                     len);
        else
            same_str("message", te.msg, se.msg, data, len);
    } else {
        assert_int_equal(t.version, s.version);
        assert_int_equal(t.serial, s.serial);
        same_str("lineage", t.lineage, s.lineage, data, len);
        same_str("terraform_version", t.terraform_version, s.terraform_version,
                 data, len);
        assert_int_equal(t.noutputs, s.noutputs);
        for (int i = 0; i < t.noutputs; i++) {
            same_str("output name", t.outputs[i].name, s.outputs[i].name, data,
                     len);
            assert_int_equal(t.outputs[i].sensitive, s.outputs[i].sensitive);
            same_str("output type", t.outputs[i].type, s.outputs[i].type, data,
                     len);
            same_str("output detailed type", t.outputs[i].detailed_type,
                     s.outputs[i].detailed_type, data, len);
            same_str("output value", t.outputs[i].value, s.outputs[i].value,
                     data, len);
        }
        assert_int_equal(t.nresources, s.nresources);
        same_str("resources", t.resources, s.resources, data, len);
    }
    arena_destroy(a);
}

static void compare(const char *data, size_t len)
{
    compare_one(data, len, true);
    compare_one(data, len, false);
    to_file(data, len);
    if (state_is_json(data, len) != state_is_json_fd(tmp_fd))
        fail_msg("state_is_json differs on (%zu bytes): %.*s", len,
                 (int)(len > 400 ? 400 : len), data);
}

static void compare_str(const char *s)
{
    compare(s, strlen(s));
}

/* A state whose resource attributes nest n arrays deep around x. */
static char *nested(int n, const char *x)
{
    struct buf b;
    buf_init(&b, 0);
    buf_puts(&b, "{\"version\":4,\"serial\":1,\"resources\":[{\"type\":"
                 "\"t\",\"name\":\"n\",\"instances\":[");
    for (int i = 0; i < n; i++)
        buf_puts(&b, "[");
    buf_puts(&b, x);
    for (int i = 0; i < n; i++)
        buf_puts(&b, "]");
    buf_puts(&b, "]}]}");
    return buf_steal(&b, NULL);
}

static void test_corpus(void **state)
{
    (void)state;
    static const char *const docs[] = {
        /* from test_state_check.c */
        "",
        "not json",
        "[1,2]",
        "\"str\"",
        "{\"version\":4,\"serial\":1",
        "{\"serial\":1,\"lineage\":\"x\"}",
        "{\"version\":3,\"serial\":1,\"lineage\":\"x\"}",
        "{\"version\":\"4\",\"serial\":1,\"lineage\":\"x\"}",
        "{\"version\":4,\"lineage\":\"x\"}",
        "{\"version\":4,\"serial\":\"1\",\"lineage\":\"x\"}",
        "{\"version\":4,\"serial\":-1,\"lineage\":\"x\"}",
        "{\"version\":4,\"serial\":1.5,\"lineage\":\"x\"}",
        "{\"version\":4,\"serial\":1,\"lineage\":7}",
        "{\"version\":4,\"serial\":1,\"terraform_version\":1}",
        "{\"version\":4,\"serial\":1,\"outputs\":[]}",
        "{\"version\":4,\"serial\":1,\"outputs\":{\"o\":1}}",
        "{\"version\":4,\"serial\":1,\"outputs\":{\"o\":{\"type\":\"s\"}}}",
        "{\"version\":4,\"serial\":1,\"outputs\":{\"o\":{\"value\":1,"
        "\"sensitive\":\"yes\"}}}",
        "{\"version\":4,\"serial\":1,\"outputs\":{\"o\":{\"value\":1,"
        "\"type\":5}}}",
        "{\"version\":4,\"serial\":1,\"resources\":{}}",
        "{\"version\":4,\"serial\":1,\"resources\":[{\"name\":\"n\"}]}",
        "{\"version\":4,\"serial\":1,\"resources\":[{\"name\":\"n\","
        "\"type\":\"t\",\"instances\":{}}]}",
        /* shapes */
        "{}",
        "{\"version\":4,\"serial\":0}",
        " \t\r\n{\"version\":4,\"serial\":0} \n",
        "{\"version\":4,\"serial\":0,\"outputs\":null,\"resources\":null}",
        "{\"version\":4,\"serial\":0,\"resources\":7}",
        "{\"version\":4,\"serial\":0,\"resources\":\"x\"}",
        "{\"version\":4,\"serial\":0,\"resources\":[]}",
        "{\"version\":4,\"serial\":0,\"resources\":[1]}",
        "{\"version\":4,\"serial\":0,\"resources\":[{}]}",
        "{\"version\":4,\"serial\":0,\"resources\":[{\"type\":\"t\","
        "\"name\":\"n\",\"instances\":null}]}",
        "{\"version\":4,\"serial\":0,\"resources\":[{\"type\":\"t\","
        "\"name\":\"n\"},{\"type\":1,\"name\":\"n\"},[]]}",
        "{\"version\":4,\"serial\":0,\"resources\":[{\"type\":\"t\","
        "\"name\":\"n\",\"mode\":7,\"module\":[],\"provider\":{}}]}",
        "{\"version\":4,\"serial\":0,\"resources\":[{\"type\":\"t\","
        "\"name\":\"n\",\"mode\":\"data\\u0000x\",\"module\":\"m\\u0000\"}]}",
        "{\"version\":4,\"serial\":0,\"outputs\":{},\"lineage\":\"\"}",
        "{\"version\":4,\"serial\":0,\"lineage\":{\"a\":1}}",
        "{\"version\":[4],\"serial\":0}",
        "{\"version\":{},\"serial\":0}",
        "{\"version\":null,\"serial\":0}",
        "{\"version\":true,\"serial\":0}",
        "{\"version\":4,\"serial\":0,\"terraform_version\":null}",
        "{\"version\":4,\"serial\":0,\"lineage\":\"a\\u0000b\"}",
        /* duplicate keys: the last wins, in the first one's place */
        "{\"version\":3,\"version\":4,\"serial\":0}",
        "{\"version\":4,\"version\":3,\"serial\":0}",
        "{\"version\":4,\"serial\":0,\"serial\":9}",
        "{\"version\":4,\"serial\":0,\"outputs\":{\"a\":{\"value\":1},"
        "\"b\":{\"value\":2},\"a\":{\"value\":3}}}",
        "{\"version\":4,\"serial\":0,\"outputs\":{\"a\":1},"
        "\"outputs\":{\"b\":{\"value\":2}}}",
        "{\"version\":4,\"serial\":0,\"outputs\":{\"b\":{\"value\":2}},"
        "\"outputs\":7}",
        "{\"version\":4,\"serial\":0,\"resources\":[1],\"resources\":[]}",
        "{\"version\":4,\"serial\":0,\"resources\":[],\"resources\":{}}",
        "{\"version\":4,\"serial\":0,\"resources\":[{\"type\":\"a\","
        "\"type\":\"b\",\"name\":\"n\",\"instances\":[1],"
        "\"instances\":[1,2,3]}]}",
        "{\"version\":4,\"serial\":0,\"resources\":[{\"type\":\"a\","
        "\"type\":5,\"name\":\"n\"}]}",
        "{\"version\":4,\"serial\":0,\"resources\":[{\"type\":\"a\","
        "\"name\":\"n\",\"instances\":{},\"instances\":[]}]}",
        /* escaped keys are the same keys */
        "{\"\\u0076ersion\":4,\"seria\\u006c\":3}",
        "{\"version\":4,\"serial\":0,\"resources\":[{\"typ\\u0065\":\"t\","
        "\"\\u006eame\":\"\\u00e9\"}]}",
        "{\"ver\\u0000sion\":4,\"serial\":0}",
        "{\"version\":4,\"serial\":0,\"x\":{\"k\\u0000\":1}}",
        /* numbers */
        "{\"version\":4.0,\"serial\":1e2}",
        "{\"version\":4,\"serial\":9223372036854775807}",
        "{\"version\":4,\"serial\":9223372036854775808}",
        "{\"version\":4,\"serial\":9007199254740993}",
        "{\"version\":4,\"serial\":9007199254740993,\"x\":"
        "99999999999999999999}",
        "{\"version\":4,\"serial\":9007199254740992,\"x\":"
        "-99999999999999999999}",
        "{\"version\":4,\"serial\":0,\"x\":-9223372036854775808}",
        "{\"version\":4,\"serial\":0,\"x\":-9223372036854775809}",
        "{\"version\":4,\"serial\":0,\"x\":1e308}",
        "{\"version\":4,\"serial\":0,\"x\":1e309}",
        "{\"version\":4,\"serial\":0,\"x\":-1e309}",
        "{\"version\":4,\"serial\":0,\"x\":1e-400}",
        "{\"version\":4,\"serial\":0,\"outputs\":{\"o\":{\"value\":"
        "[100000000000000000,1,2.5]}},\"x\":123456789012345678901}",
        "{\"version\":4,\"serial\":0,\"outputs\":{\"o\":{\"value\":"
        "100000000000000000}}}",
        "{\"version\":4,\"serial\":0,\"x\":-0}",
        "{\"version\":4,\"serial\":0,\"x\":01}",
        "{\"version\":4,\"serial\":0,\"x\":-01}",
        "{\"version\":4,\"serial\":0,\"x\":-}",
        "{\"version\":4,\"serial\":0,\"x\":1.}",
        "{\"version\":4,\"serial\":0,\"x\":.5}",
        "{\"version\":4,\"serial\":0,\"x\":+1}",
        "{\"version\":4,\"serial\":0,\"x\":1e}",
        "{\"version\":4,\"serial\":0,\"x\":1e+}",
        "{\"version\":4,\"serial\":0,\"x\":1E-2}",
        "{\"version\":4,\"serial\":0,\"x\":1.5.2}",
        "{\"version\":4,\"serial\":0,\"x\":0x10}",
        "{\"version\":4,\"serial\":0,\"x\":1true}",
        "{\"version\":4,\"serial\":0,\"x\":NaN}",
        "{\"version\":4,\"serial\":0,\"x\":Infinity}",
        /* literals */
        "{\"version\":4,\"serial\":0,\"x\":[true,false,null]}",
        "{\"version\":4,\"serial\":0,\"x\":True}",
        "{\"version\":4,\"serial\":0,\"x\":nul}",
        "{\"version\":4,\"serial\":0,\"x\":nulll}",
        "{\"version\":4,\"serial\":0,\"x\":truefalse}",
        /* structure */
        "{\"version\":4,\"serial\":0,}",
        "{\"version\":4,\"serial\":0,\"x\":[1,]}",
        "{\"version\":4,\"serial\":0,\"x\":[,1]}",
        "{\"version\":4,\"serial\":0,\"x\":{,}}",
        "{\"version\":4,\"serial\":0,\"x\":{\"a\"}}",
        "{\"version\":4,\"serial\":0,\"x\":{\"a\":}}",
        "{\"version\":4,\"serial\":0,\"x\":{1:2}}",
        "{\"version\":4,\"serial\":0,\"x\":[1 2]}",
        "{\"version\":4,\"serial\":0}}",
        "{\"version\":4,\"serial\":0} x",
        "{\"version\":4,\"serial\":0}{}",
        "{\"version\":4 \"serial\":0}",
        "{'version':4}",
        "{\"version\":4,\"serial\":0,\"x\":[}",
        "{\"version\":4,\"serial\":0,\"x\":[[[[[",
        /* strings */
        "{\"version\":4,\"serial\":0,\"x\":\"a\\qb\"}",
        "{\"version\":4,\"serial\":0,\"x\":\"\\u12\"}",
        "{\"version\":4,\"serial\":0,\"x\":\"\\u12G4\"}",
        "{\"version\":4,\"serial\":0,\"x\":\"\\uD83D\\uDE00\"}",
        "{\"version\":4,\"serial\":0,\"x\":\"\\uD83D\"}",
        "{\"version\":4,\"serial\":0,\"x\":\"\\uD83Dx\"}",
        "{\"version\":4,\"serial\":0,\"x\":\"\\uD83D\\u0041\"}",
        "{\"version\":4,\"serial\":0,\"x\":\"\\uDE00\"}",
        "{\"version\":4,\"serial\":0,\"x\":\"\\uD83D\\n\"}",
        "{\"version\":4,\"serial\":0,\"x\":\"tab\there\"}",
        "{\"version\":4,\"serial\":0,\"x\":\"nl\nhere\"}",
        "{\"version\":4,\"serial\":0,\"x\":\"del\x7fok\"}",
        "{\"version\":4,\"serial\":0,\"x\":\"unterminated}",
        "{\"version\":4,\"serial\":0,\"x\":\"\xc3\xa9\xe2\x82\xac"
        "\xf0\x9f\x98\x80\"}",
        "{\"version\":4,\"serial\":0,\"x\":\"\xc0\x80\"}",
        "{\"version\":4,\"serial\":0,\"x\":\"\xc1\xbf\"}",
        "{\"version\":4,\"serial\":0,\"x\":\"\xe0\x80\x80\"}",
        "{\"version\":4,\"serial\":0,\"x\":\"\xed\xa0\x80\"}",
        "{\"version\":4,\"serial\":0,\"x\":\"\xf0\x80\x80\x80\"}",
        "{\"version\":4,\"serial\":0,\"x\":\"\xf4\x90\x80\x80\"}",
        "{\"version\":4,\"serial\":0,\"x\":\"\xf5\x80\x80\x80\"}",
        "{\"version\":4,\"serial\":0,\"x\":\"\x80\"}",
        "{\"version\":4,\"serial\":0,\"x\":\"\xc3\"}",
        "{\"version\":4,\"serial\":0,\"x\":\"\xe2\x82\"}",
        "{\"version\":4,\"serial\":0,\"x\":\"\xff\"}",
        "{\"version\":4,\"serial\":0,\"x\":\xc3\xa9}",
        "\xef\xbb\xbf{\"version\":4,\"serial\":0}",
        "{\"version\":4,\"serial\":0,\"lineage\":\"\\u00e9\\/\\b\\f\\r\\t\"}",
    };
    for (size_t i = 0; i < sizeof(docs) / sizeof(docs[0]); i++)
        compare_str(docs[i]);
    /* NUL bytes in the text itself */
    static const char nul[] = "{\"version\":4,\"serial\":0,\"x\":\"a\0b\"}";
    compare(nul, sizeof(nul) - 1);
    static const char nul2[] = "{\"version\":4,\"serial\":0}\0";
    compare(nul2, sizeof(nul2) - 1);
    /* the fixture and every prefix of it */
    compare_str(fixture);
    for (size_t n = 0; n < strlen(fixture); n++)
        compare(fixture, n);
    /* nesting around jansson's limit of 2048 values deep: the resource's
     * instance list is at depth 4 */
    static const int depths[] = {2040, 2043, 2044, 2045, 2046, 3000};
    for (size_t i = 0; i < sizeof(depths) / sizeof(depths[0]); i++) {
        char *d = nested(depths[i], "");
        compare_str(d);
        free(d);
        d = nested(depths[i], "1");
        compare_str(d);
        free(d);
    }
}

/* Random edits of the fixture, read both ways (bounded; the seed is
 * fixed so a failure reproduces). */
static void test_mutations(void **state)
{
    (void)state;
    static const char alphabet[] = "{}[],:\"\\0123456789-+.eEtrufalsn \n\t"
                                   "u/\x00\x01\x7f\x80\xbf\xc3\xe2\xed\xf0"
                                   "\xf4\xff";
    size_t flen = strlen(fixture);
    char *doc = malloc(flen * 2 + 64);
    srand(1013);
    for (int iter = 0; iter < 4000; iter++) {
        size_t len = flen;
        memcpy(doc, fixture, flen);
        int edits = 1 + rand() % 3;
        for (int k = 0; k < edits && len > 1; k++) {
            size_t at = (size_t)rand() % len;
            char c = alphabet[rand() % (sizeof(alphabet) - 1)];
            switch (rand() % 4) {
            case 0: /* replace */
                doc[at] = c;
                break;
            case 1: /* delete */
                memmove(doc + at, doc + at + 1, len - at - 1);
                len--;
                break;
            case 2: /* insert */
                memmove(doc + at + 1, doc + at, len - at);
                doc[at] = c;
                len++;
                break;
            default: { /* copy a short slice elsewhere */
                size_t from = (size_t)rand() % len;
                size_t n = 1 + (size_t)rand() % 16;
                if (from + n > len)
                    n = len - from;
                if (len + n < flen * 2 + 64) {
                    memmove(doc + at + n, doc + at, len - at);
                    memmove(doc + at, doc + (from >= at ? from + n : from), n);
                    len += n;
                }
                break;
            }
            }
        }
        compare(doc, len);
    }
    free(doc);
    /* some mutations must have been accepted and some refused */
    assert_true(refused > 0 && refused < compared);
}

/* Strings of every length up to 40 with one byte that ends a run of
 * plain text at every place in them, so the reader meets each stop in
 * every position of a 16-byte window, and strings without one; as a
 * resource's name (decoded into the summary) and as an attribute
 * (checked only), read both ways. */
static void test_string_runs(void **state)
{
    (void)state;
    static const char *stops[] = {"\"",   "\\n",      "\\u00e9",      "\x01",
                                  "\n",   "\xc3\xa9", "\xe2\x82\xac", "\xff",
                                  "\x7f", "\xc3"};
    char text[96], doc[512];
    for (int len = 0; len <= 40; len++) {
        for (size_t k = 0; k <= sizeof(stops) / sizeof(stops[0]); k++) {
            for (int at = 0; at <= len; at++) {
                memset(text, 'a' + len % 26, (size_t)len);
                text[len] = '\0';
                if (k < sizeof(stops) / sizeof(stops[0])) {
                    memmove(text + at + strlen(stops[k]), text + at,
                            (size_t)(len - at) + 1);
                    memcpy(text + at, stops[k], strlen(stops[k]));
                } else if (at > 0) {
                    break; /* no stop: one string of this length */
                }
                snprintf(doc, sizeof(doc),
                         "{\"version\":4,\"serial\":1,\"resources\":[{"
                         "\"type\":\"t\",\"name\":\"%s\",\"instances\":[{"
                         "\"attributes\":{\"v\":\"%s\"}}]}]}",
                         text, text);
                compare_str(doc);
            }
        }
    }
}

/* The hook sees every byte once, in order, even for a refused state. */
static void block_sum(void *arg, const void *data, size_t len)
{
    struct buf *b = arg;
    buf_append(b, data, len);
}

static void test_hook_and_bounds(void **state)
{
    (void)state;
    struct arena *a = arena_new();
    struct state_info si;
    struct tr_errbuf eb = {{0}};
    /* a 3 MB state: many blocks; the hook gets all of it */
    struct buf doc;
    buf_init(&doc, 0);
    buf_puts(&doc, "{\"version\":4,\"serial\":5,\"resources\":[");
    for (int i = 0; i < 3000; i++) {
        buf_printf(&doc,
                   "%s{\"type\":\"t\",\"name\":\"r%d\",\"instances\":"
                   "[{\"attributes\":{\"v\":\"",
                   i ? "," : "", i);
        for (int k = 0; k < 1000; k++)
            buf_puts(&doc, k % 100 ? "a" : "\\u00e9");
        buf_puts(&doc, "\"}}]}");
    }
    buf_puts(&doc, "]}");
    to_file(doc.data, doc.len);
    struct buf seen;
    buf_init(&seen, 0);
    assert_int_equal(state_parse_fd_with(a, tmp_fd, block_sum, &seen, &si, &eb),
                     TR_OK);
    assert_int_equal(si.nresources, 3000);
    assert_int_equal(seen.len, doc.len);
    assert_memory_equal(seen.data, doc.data, doc.len);
    compare(doc.data, doc.len);
    /* refused early: the hook still sees the whole file */
    doc.data[1] = 'x';
    to_file(doc.data, doc.len);
    buf_reset(&seen);
    assert_int_equal(state_parse_fd_with(a, tmp_fd, block_sum, &seen, &si, &eb),
                     TR_ERR_INVALID);
    assert_int_equal(seen.len, doc.len);
    buf_free(&seen);

    /* outputs over 16 MB: 413 with a message */
    buf_reset(&doc);
    buf_puts(&doc, "{\"version\":4,\"serial\":5,\"outputs\":{\"o\":"
                   "{\"value\":\"");
    for (int i = 0; i < 17 * 1024; i++)
        buf_printf(&doc, "%01024d", i);
    buf_puts(&doc, "\"}}}");
    to_file(doc.data, doc.len);
    assert_int_equal(state_parse_fd(a, tmp_fd, &si, &eb), TR_ERR_TOO_LARGE);
    assert_non_null(strstr(eb.msg, "outputs are larger than 16 MB"));
    /* a number over 4096 characters */
    buf_reset(&doc);
    buf_puts(&doc, "{\"version\":4,\"serial\":5,\"x\":0.");
    for (int i = 0; i < 5000; i++)
        buf_puts(&doc, "1");
    buf_puts(&doc, "}");
    to_file(doc.data, doc.len);
    assert_int_equal(state_parse_fd(a, tmp_fd, &si, &eb), TR_ERR_INVALID);
    assert_non_null(strstr(eb.msg, "number longer than"));
    buf_free(&doc);
    arena_destroy(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_corpus),
        cmocka_unit_test(test_mutations),
        cmocka_unit_test(test_string_runs),
        cmocka_unit_test(test_hook_and_bounds),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
