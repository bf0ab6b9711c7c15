/*
 * test_blob_suite.c - the blob test suite every backend passes, through
 * the public blob.h functions, against the store TERRACE_TEST_BLOB_URL
 * names (default: a fresh file:// directory).  Each case runs on a plain
 * store and again on one that seals objects at rest.
 *
 *   TERRACE_TEST_BLOB_URL    the store (s3://, gs://, azblob://, file://)
 *   TERRACE_TEST_BLOB_BIG=1  also a 200 MB round trip, with the growth of
 *                            the peak RSS checked to stay flat
 *   TERRACE_TEST_BLOB_FAULT  the control URL of tests/blob/faultproxy.py
 *                            standing in front of the store: a server
 *                            that answers 500 then recovers, and one that
 *                            is down (a clear error, nothing visible)
 *
 * Every run writes under a fresh random prefix and removes what it wrote.
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "core/curl_load.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "blob/blob.h"
#include "core/util.h"
#include "crypto/keys.h"
#include "unit_util.h"

static char g_url[1024];
static char g_dir[64];
static char g_spool[128];

struct fx {
    struct blob *b;
    struct arena *a;
    struct keyring *keys;
    char prefix[64];
};

static int setup(void **state)
{
    bool sealed = *state != NULL;
    struct fx *fx = calloc(1, sizeof(*fx));
    if (fx == NULL)
        return -1;
    struct tr_errbuf eb = {{0}};
    if (blob_open_url(g_url, g_spool, &fx->b, &eb) != TR_OK) {
        fprintf(stderr, "blob_open_url %s: %s\n", g_url, eb.msg);
        free(fx);
        return -1;
    }
    if (sealed) {
        unsigned char k[KEYS_KEK_LEN];
        util_random(k, sizeof(k));
        if (keys_open_bytes(k, NULL, &fx->keys, &eb) != TR_OK)
            return -1;
        blob_set_keys(fx->b, fx->keys);
    }
    unsigned char r[6];
    util_random(r, sizeof(r));
    snprintf(fx->prefix, sizeof(fx->prefix), "suite-%02x%02x%02x%02x%02x%02x",
             r[0], r[1], r[2], r[3], r[4], r[5]);
    fx->a = arena_new();
    *state = fx;
    return 0;
}

static tr_err remove_one(void *ctx, const char *key, uint64_t size,
                         int64_t mtime, struct tr_errbuf *eb)
{
    (void)size;
    (void)mtime;
    return blob_remove(ctx, key, eb);
}

static int teardown(void **state)
{
    struct fx *fx = *state;
    blob_list(fx->b, fx->prefix, remove_one, fx->b, NULL);
    blob_close(fx->b);
    keys_close(fx->keys);
    arena_destroy(fx->a);
    free(fx);
    return 0;
}

static const char *key(struct fx *fx, const char *name)
{
    return arena_printf(fx->a, "%s/%s", fx->prefix, name);
}

/* The object under k, whole; TR_ERR_* as blob_get(). */
static tr_err get(struct fx *fx, const char *k, char **data, size_t *len)
{
    return blob_get(fx->b, fx->a, k, 1u << 30, data, len, NULL);
}

/* n bytes of a pattern that differs at every offset of a chunk */
static void pattern(unsigned char *p, size_t n, uint64_t from)
{
    for (size_t i = 0; i < n; i++) {
        uint64_t x = from + i;
        p[i] = (unsigned char)((x * 2654435761u) >> 13 ^ x);
    }
}

static void test_put_get(void **state)
{
    struct fx *fx = *state;
    char *d = NULL;
    size_t n = 0;
    const char *k = key(fx, "a/b/small.json");
    assert_int_equal(blob_put(fx->b, k, "{\"x\":1}", 7, NULL), TR_OK);
    assert_int_equal(get(fx, k, &d, &n), TR_OK);
    assert_int_equal(n, 7);
    assert_memory_equal(d, "{\"x\":1}", 7);
    /* empty */
    const char *e = key(fx, "empty");
    assert_int_equal(blob_put(fx->b, e, "", 0, NULL), TR_OK);
    assert_int_equal(get(fx, e, &d, &n), TR_OK);
    assert_int_equal(n, 0);
    /* overwrite: the new object whole */
    assert_int_equal(blob_put(fx->b, k, "second", 6, NULL), TR_OK);
    assert_int_equal(get(fx, k, &d, &n), TR_OK);
    assert_int_equal(n, 6);
    assert_memory_equal(d, "second", 6);
}

static void test_missing_and_remove(void **state)
{
    struct fx *fx = *state;
    char *d = NULL;
    size_t n = 0;
    const char *k = key(fx, "gone");
    assert_int_equal(get(fx, k, &d, &n), TR_ERR_NOT_FOUND);
    assert_int_equal(blob_remove(fx->b, k, NULL), TR_OK); /* idempotent */
    assert_int_equal(blob_put(fx->b, k, "x", 1, NULL), TR_OK);
    assert_int_equal(blob_remove(fx->b, k, NULL), TR_OK);
    assert_int_equal(get(fx, k, &d, &n), TR_ERR_NOT_FOUND);
    /* a prefix of a key is not an object */
    assert_int_equal(blob_put(fx->b, key(fx, "dir/obj"), "x", 1, NULL), TR_OK);
    assert_int_equal(get(fx, key(fx, "dir"), &d, &n), TR_ERR_NOT_FOUND);
}

static void test_ranged_reads(void **state)
{
    struct fx *fx = *state;
    size_t size = 300 * 1024 + 17; /* several sealing chunks */
    unsigned char *src = arena_alloc(fx->a, size);
    pattern(src, size, 0);
    const char *k = key(fx, "ranged");
    assert_int_equal(blob_put(fx->b, k, src, size, NULL), TR_OK);
    struct blob_reader *r = NULL;
    uint64_t got_size = 0;
    assert_int_equal(blob_reader_open(fx->b, k, &r, &got_size, NULL), TR_OK);
    assert_int_equal(got_size, size);
    /* forwards, backwards, across chunk edges, past the end */
    const uint64_t offs[] = {0, 65535, 65536, 200000, 17, size - 5, 131071};
    unsigned char buf[70000];
    for (size_t i = 0; i < sizeof(offs) / sizeof(offs[0]); i++) {
        size_t got = 0;
        assert_int_equal(
            blob_reader_pread(r, buf, sizeof(buf), offs[i], &got, NULL), TR_OK);
        size_t want = size - offs[i] < sizeof(buf) ? (size_t)(size - offs[i])
                                                   : sizeof(buf);
        assert_int_equal(got, want);
        assert_memory_equal(buf, src + offs[i], want);
    }
    size_t got = 1;
    assert_int_equal(blob_reader_pread(r, buf, 10, size, &got, NULL), TR_OK);
    assert_int_equal(got, 0);
    blob_reader_close(r);
}

/* Sequential reads long enough for a remote backend to stream (from
 * 1 MiB on), then seeks back and forth, then sequential again: the
 * stream is dropped and started over where the reads go, never mixing
 * bytes from the wrong offset. */
static void test_seek_while_streaming(void **state)
{
    struct fx *fx = *state;
    size_t size = 3 * 1024 * 1024 + 17;
    unsigned char *src = arena_alloc(fx->a, size);
    pattern(src, size, 0);
    const char *k = key(fx, "seek");
    assert_int_equal(blob_put(fx->b, k, src, size, NULL), TR_OK);
    struct blob_reader *r = NULL;
    uint64_t got_size = 0;
    assert_int_equal(blob_reader_open(fx->b, k, &r, &got_size, NULL), TR_OK);
    assert_int_equal(got_size, size);
    static unsigned char buf[100000];
    /* 0 to 1.5 MiB in order, back near the start, ahead, then on to the
     * end in order */
    uint64_t offs[64];
    size_t n = 0;
    for (uint64_t o = 0; o < 1536 * 1024; o += sizeof(buf))
        offs[n++] = o;
    offs[n++] = 100;
    offs[n++] = 2 * 1024 * 1024 + 5;
    for (uint64_t o = 1536 * 1024; o < size; o += sizeof(buf))
        offs[n++] = o;
    assert_true(n <= sizeof(offs) / sizeof(offs[0]));
    for (size_t i = 0; i < n; i++) {
        size_t got = 0;
        assert_int_equal(
            blob_reader_pread(r, buf, sizeof(buf), offs[i], &got, NULL), TR_OK);
        size_t want = size - offs[i] < sizeof(buf) ? (size_t)(size - offs[i])
                                                   : sizeof(buf);
        assert_int_equal(got, want);
        assert_memory_equal(buf, src + offs[i], want);
    }
    blob_reader_close(r);
    assert_int_equal(blob_remove(fx->b, k, NULL), TR_OK);
}

struct seen {
    int count;
    bool a, b, other;
};

static tr_err count_key(void *ctx, const char *k, uint64_t size, int64_t mtime,
                        struct tr_errbuf *eb)
{
    (void)eb;
    struct seen *s = ctx;
    s->count++;
    const char *tail = strchr(k, '/');
    if (tail != NULL && strcmp(tail, "/l/one") == 0 && size > 0 &&
        mtime > 1600000000)
        s->a = true;
    else if (tail != NULL && strcmp(tail, "/l/two") == 0)
        s->b = true;
    else
        s->other = true;
    return TR_OK;
}

static void test_list(void **state)
{
    struct fx *fx = *state;
    assert_int_equal(blob_put(fx->b, key(fx, "l/one"), "1", 1, NULL), TR_OK);
    assert_int_equal(blob_put(fx->b, key(fx, "l/two"), "22", 2, NULL), TR_OK);
    assert_int_equal(blob_put(fx->b, key(fx, "m/three"), "3", 1, NULL), TR_OK);
    struct seen s = {0};
    assert_int_equal(blob_list(fx->b, key(fx, "l/"), count_key, &s, NULL),
                     TR_OK);
    assert_int_equal(s.count, 2);
    assert_true(s.a && s.b && !s.other);
    memset(&s, 0, sizeof(s));
    assert_int_equal(blob_list(fx->b, fx->prefix, count_key, &s, NULL), TR_OK);
    assert_int_equal(s.count, 3);
}

static void test_put_file_and_copy(void **state)
{
    struct fx *fx = *state;
    char path[256];
    snprintf(path, sizeof(path), "%s/upload", g_dir);
    assert_true(ut_write_file(path, "from a file"));
    assert_int_equal(blob_put_copy(fx->b, key(fx, "copy"), path, NULL), TR_OK);
    assert_int_equal(access(path, F_OK), 0); /* a copy keeps its source */
    assert_int_equal(blob_put_file(fx->b, key(fx, "moved"), path, NULL), TR_OK);
    assert_int_not_equal(access(path, F_OK), 0); /* consumed */
    char *d = NULL;
    size_t n = 0;
    assert_int_equal(get(fx, key(fx, "moved"), &d, &n), TR_OK);
    assert_int_equal(n, 11);
    assert_memory_equal(d, "from a file", 11);
}

/* A source that gives fewer bytes than it declared. */
static tr_err short_source(void *ctx, void *buf, size_t n, size_t *got,
                           struct tr_errbuf *eb)
{
    (void)eb;
    size_t *left = ctx;
    *got = n < *left ? n : *left;
    memset(buf, 'x', *got);
    *left -= *got;
    return TR_OK;
}

static void test_short_stream_leaves_nothing(void **state)
{
    struct fx *fx = *state;
    const char *k = key(fx, "short");
    assert_int_equal(blob_put(fx->b, k, "old", 3, NULL), TR_OK);
    size_t left = 1000;
    struct tr_errbuf eb = {{0}};
    assert_int_not_equal(
        blob_put_stream(fx->b, k, 5000, short_source, &left, &eb), TR_OK);
    assert_true(eb.msg[0] != '\0');
    char *d = NULL;
    size_t n = 0;
    assert_int_equal(get(fx, k, &d, &n), TR_OK); /* the old one, whole */
    assert_int_equal(n, 3);
    assert_memory_equal(d, "old", 3);
}

/* A source of len bytes that fails once asked past them (an upload
 * refused after its body: bad checksum, bad state), or that ends at
 * short instead (short != 0). */
struct refusing {
    uint64_t len, at, short_at;
};

static tr_err refusing_read(void *ctx, void *buf, size_t n, size_t *got,
                            struct tr_errbuf *eb)
{
    struct refusing *r = ctx;
    uint64_t end = r->short_at ? r->short_at : r->len;
    *got = end - r->at < n ? (size_t)(end - r->at) : n;
    memset(buf, 'r', *got);
    r->at += *got;
    if (*got == 0 && r->short_at == 0)
        return tr_fail(eb, TR_ERR_INVALID, "refused at the end");
    return TR_OK;
}

/* Over one part (8 MiB), so remote backends send it as one streamed
 * request: refused at its end or cut short, it leaves the old object. */
static void test_big_refused_leaves_nothing(void **state)
{
    struct fx *fx = *state;
    const char *k = key(fx, "refused");
    assert_int_equal(blob_put(fx->b, k, "old", 3, NULL), TR_OK);
    const uint64_t len = 12u << 20;
    struct refusing cases[] = {{.len = len},
                               {.len = len, .short_at = 9u << 20}};
    for (size_t i = 0; i < 2; i++) {
        struct tr_errbuf eb = {{0}};
        tr_err e =
            blob_put_stream(fx->b, k, len, refusing_read, &cases[i], &eb);
        assert_int_not_equal(e, TR_OK);
        if (i == 0) /* the source's own error, as it said it */
            assert_non_null(strstr(eb.msg, "refused at the end"));
        char *d = NULL;
        size_t n = 0;
        assert_int_equal(get(fx, k, &d, &n), TR_OK); /* the old one, whole */
        assert_int_equal(n, 3);
        assert_memory_equal(d, "old", 3);
    }
}

/* ---- 200 MB with flat memory -------------------------------------------- */

static long peak_rss_kb(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kb = -1;
    while (f != NULL && fgets(line, sizeof(line), f) != NULL)
        if (strncmp(line, "VmHWM:", 6) == 0)
            kb = atol(line + 6);
    if (f != NULL)
        fclose(f);
    return kb;
}

struct gen {
    uint64_t at, len;
};

static tr_err gen_read(void *ctx, void *buf, size_t n, size_t *got,
                       struct tr_errbuf *eb)
{
    (void)eb;
    struct gen *g = ctx;
    *got = g->len - g->at < n ? (size_t)(g->len - g->at) : n;
    pattern(buf, *got, g->at);
    g->at += *got;
    return TR_OK;
}

static void test_big_round_trip(void **state)
{
    struct fx *fx = *state;
    const char *big = getenv("TERRACE_TEST_BLOB_BIG");
    if (big == NULL || strcmp(big, "1") != 0)
        skip();
    const uint64_t size = 200ull * 1024 * 1024;
    const char *k = key(fx, "big");
    long before = peak_rss_kb();
    struct gen g = {.len = size};
    struct tr_errbuf eb = {{0}};
    tr_err e = blob_put_stream(fx->b, k, size, gen_read, &g, &eb);
    if (e != TR_OK)
        fprintf(stderr, "put: %s\n", eb.msg);
    assert_int_equal(e, TR_OK);
    struct blob_reader *r = NULL;
    uint64_t got_size = 0;
    assert_int_equal(blob_reader_open(fx->b, k, &r, &got_size, NULL), TR_OK);
    assert_int_equal(got_size, size);
    static unsigned char buf[1 << 20], want[1 << 20];
    for (uint64_t off = 0; off < size;) {
        size_t got = 0;
        assert_int_equal(
            blob_reader_pread(r, buf, sizeof(buf), off, &got, NULL), TR_OK);
        assert_true(got > 0);
        pattern(want, got, off);
        assert_memory_equal(buf, want, got);
        off += got;
    }
    blob_reader_close(r);
    long grown = peak_rss_kb() - before;
    fprintf(stderr, "200 MB round trip: peak RSS grew %ld kB\n", grown);
    assert_true(grown < 64 * 1024); /* a part buffer or two, not 200 MB */
    assert_int_equal(blob_remove(fx->b, k, NULL), TR_OK);
}

/* ---- faults through tests/blob/faultproxy.py ------------------------------
 */

static bool fault(const char *what)
{
    const char *base = getenv("TERRACE_TEST_BLOB_FAULT");
    char url[512];
    snprintf(url, sizeof(url), "%s/__fault/%s", base, what);
    CURL *c = curl_easy_init();
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, "");
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 10L);
    long status = 0;
    CURLcode rc = curl_easy_perform(c);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(c);
    return rc == CURLE_OK && status == 200;
}

static void test_server_500_then_recovers(void **state)
{
    struct fx *fx = *state;
    if (getenv("TERRACE_TEST_BLOB_FAULT") == NULL)
        skip();
    const char *k = key(fx, "after-500s");
    assert_true(fault("500?count=2"));
    struct tr_errbuf eb = {{0}};
    tr_err e = blob_put(fx->b, k, "kept", 4, &eb);
    if (e != TR_OK)
        fprintf(stderr, "put: %s\n", eb.msg);
    assert_int_equal(e, TR_OK);
    assert_true(fault("500?count=2"));
    char *d = NULL;
    size_t n = 0;
    assert_int_equal(get(fx, k, &d, &n), TR_OK);
    assert_int_equal(n, 4);
    assert_memory_equal(d, "kept", 4);
}

static void test_server_down(void **state)
{
    struct fx *fx = *state;
    if (getenv("TERRACE_TEST_BLOB_FAULT") == NULL)
        skip();
    const char *k = key(fx, "while-down");
    assert_true(fault("down"));
    struct tr_errbuf eb = {{0}};
    tr_err e = blob_put(fx->b, k, "lost", 4, &eb);
    assert_int_not_equal(e, TR_OK);
    fprintf(stderr, "put while down: %s\n", eb.msg);
    assert_true(eb.msg[0] != '\0');
    char *d = NULL;
    size_t n = 0;
    assert_int_not_equal(get(fx, k, &d, &n), TR_OK);
    assert_true(fault("up"));
    assert_int_equal(get(fx, k, &d, &n), TR_ERR_NOT_FOUND);
}

int main(void)
{
    const char *u = getenv("TERRACE_TEST_BLOB_URL");
    if (!ut_mkdtemp(g_dir, sizeof(g_dir), "test_blob_suite"))
        return 1;
    snprintf(g_spool, sizeof(g_spool), "%s/spool", g_dir);
    if (mkdir(g_spool, 0700) != 0)
        return 1;
    if (u != NULL && u[0] != '\0')
        snprintf(g_url, sizeof(g_url), "%s", u);
    else
        snprintf(g_url, sizeof(g_url), "file://%s/store", g_dir);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    static int sealed = 1;
#define BOTH(t)                                                                \
    cmocka_unit_test_prestate_setup_teardown(t, setup, teardown, NULL),        \
        cmocka_unit_test_prestate_setup_teardown(t, setup, teardown, &sealed)
    const struct CMUnitTest tests[] = {
        BOTH(test_put_get),
        BOTH(test_missing_and_remove),
        BOTH(test_ranged_reads),
        BOTH(test_seek_while_streaming),
        BOTH(test_list),
        BOTH(test_put_file_and_copy),
        BOTH(test_short_stream_leaves_nothing),
        BOTH(test_big_refused_leaves_nothing),
        cmocka_unit_test_prestate_setup_teardown(test_big_round_trip, setup,
                                                 teardown, &sealed),
        cmocka_unit_test_prestate_setup_teardown(test_server_500_then_recovers,
                                                 setup, teardown, NULL),
        cmocka_unit_test_prestate_setup_teardown(test_server_down, setup,
                                                 teardown, NULL),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    ut_rmtree(g_dir);
    curl_global_cleanup();
    return rc;
}
