/*
 * test_blob_prefetch.c - unit tests for the read-ahead thread that
 * serves downloads (src/blob/blob_prefetch.c), on a filesystem store
 * that seals objects at rest: reads in order through an object larger
 * than the read-ahead ring, a read out of order (served directly from
 * then on), a small object (no thread), an object that breaks past the
 * first blocks (the error reaches the read at its offset, not before)
 * and closing while the thread still reads.
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

#include "blob/blob.h"
#include "blob/blob_prefetch.h"
#include "crypto/keys.h"
#include "crypto/sealed.h"
#include "unit_util.h"

#define BIG (5u << 20) /* more than the 2 MiB ring */

struct fx {
    char dir[64];
    struct blob *b;
    struct keyring *keys;
    unsigned char *want; /* BIG bytes of the pattern */
};

static void pattern(unsigned char *p, size_t n, uint64_t from)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (unsigned char)((from + i) * 131 + ((from + i) >> 12));
}

static int setup(void **state)
{
    struct fx *fx = calloc(1, sizeof(*fx));
    if (fx == NULL || !ut_mkdtemp(fx->dir, sizeof(fx->dir), "test_prefetch"))
        return -1;
    struct tr_errbuf eb = {{0}};
    unsigned char kek[KEYS_KEK_LEN] = {9, 9, 9};
    if (blob_open_fs(fx->dir, &fx->b, &eb) != TR_OK ||
        keys_open_bytes(kek, "test-kek", &fx->keys, &eb) != TR_OK)
        return -1;
    blob_set_keys(fx->b, fx->keys);
    fx->want = malloc(BIG);
    if (fx->want == NULL)
        return -1;
    pattern(fx->want, BIG, 0);
    if (blob_put(fx->b, "big", fx->want, BIG, &eb) != TR_OK ||
        blob_put(fx->b, "small", fx->want, 1000, &eb) != TR_OK)
        return -1;
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    struct fx *fx = *state;
    blob_close(fx->b);
    keys_close(fx->keys);
    ut_rmtree(fx->dir);
    free(fx->want);
    free(fx);
    return 0;
}

static struct blob_prefetch *start(struct fx *fx, const char *key,
                                   uint64_t *size)
{
    struct blob_reader *r = NULL;
    assert_int_equal(blob_reader_open(fx->b, key, &r, size, NULL), TR_OK);
    struct blob_prefetch *p = NULL;
    assert_int_equal(blob_prefetch_start(r, *size, &p, NULL), TR_OK);
    return p;
}

/* Reads [off, end) in reads of at most step bytes, checking each. */
static void read_span(struct fx *fx, struct blob_prefetch *p, uint64_t off,
                      uint64_t end, size_t step)
{
    unsigned char *buf = malloc(step);
    assert_non_null(buf);
    while (off < end) {
        size_t n = end - off < step ? (size_t)(end - off) : step;
        size_t got = 0;
        assert_int_equal(blob_prefetch_read(p, buf, n, off, &got, NULL), TR_OK);
        assert_true(got > 0 && got <= n);
        assert_memory_equal(buf, fx->want + off, got);
        off += got;
    }
    free(buf);
}

static void test_in_order(void **state)
{
    struct fx *fx = *state;
    uint64_t size = 0;
    struct blob_prefetch *p = start(fx, "big", &size);
    assert_int_equal(size, BIG);
    read_span(fx, p, 0, size, 100001); /* odd reads across blocks */
    size_t got = 1;
    char c;
    assert_int_equal(blob_prefetch_read(p, &c, 1, size, &got, NULL), TR_OK);
    assert_int_equal(got, 0); /* the end */
    blob_prefetch_close(p);
}

static void test_out_of_order(void **state)
{
    struct fx *fx = *state;
    uint64_t size = 0;
    struct blob_prefetch *p = start(fx, "big", &size);
    read_span(fx, p, 0, 300000, 65536);
    read_span(fx, p, 3u << 20, (3u << 20) + 70000, 65536); /* a seek */
    read_span(fx, p, 0, size, 262144); /* and back: served directly */
    blob_prefetch_close(p);
}

static void test_small_object(void **state)
{
    struct fx *fx = *state;
    uint64_t size = 0;
    struct blob_prefetch *p = start(fx, "small", &size);
    assert_int_equal(size, 1000);
    read_span(fx, p, 0, size, 4096);
    blob_prefetch_close(p);
}

/* A chunk past the first blocks is tampered with: every read before it
 * succeeds, the one that reaches it fails (TR_ERR_CRYPTO). */
static void test_error_reaches_its_offset(void **state)
{
    struct fx *fx = *state;
    char path[160];
    snprintf(path, sizeof(path), "%s/objects/big", fx->dir);
    FILE *f = fopen(path, "r+b");
    assert_non_null(f);
    const long at = (long)(4u << 20); /* in the stored chunks, past 3 MiB */
    assert_int_equal(fseek(f, at, SEEK_SET), 0);
    int c = fgetc(f);
    assert_int_equal(fseek(f, at, SEEK_SET), 0);
    fputc(c ^ 1, f);
    fclose(f);
    uint64_t size = 0;
    struct blob_prefetch *p = start(fx, "big", &size);
    const uint64_t safe = 3u << 20; /* well before the tampered chunk */
    read_span(fx, p, 0, safe, 131072);
    static unsigned char buf[65536];
    tr_err e = TR_OK;
    struct tr_errbuf eb = {{0}};
    for (uint64_t off = safe; e == TR_OK && off < size;) {
        size_t got = 0;
        e = blob_prefetch_read(p, buf, sizeof(buf), off, &got, &eb);
        off += got;
    }
    assert_int_equal(e, TR_ERR_CRYPTO);
    assert_true(eb.msg[0] != '\0');
    blob_prefetch_close(p);
}

static void test_close_while_reading(void **state)
{
    struct fx *fx = *state;
    uint64_t size = 0;
    struct blob_prefetch *p = start(fx, "big", &size);
    read_span(fx, p, 0, 1000, 1000); /* the thread runs ahead, then stops */
    blob_prefetch_close(p);
    p = start(fx, "big", &size); /* and closing before any read */
    blob_prefetch_close(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_in_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_out_of_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_small_object, setup, teardown),
        cmocka_unit_test_setup_teardown(test_error_reaches_its_offset, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_close_while_reading, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
