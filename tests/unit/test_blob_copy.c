/*
 * test_blob_copy.c - unit tests for the raw blob access in
 * src/blob/blob.c (blob_copy_raw(), blob_raw_sha256()) that `terrace
 * admin blob copy` uses: objects copied from the store
 * TERRACE_TEST_BLOB_URL names (default: a fresh file:// directory) to a
 * local directory and back keep their sealed bytes, their checksum and
 * their plaintext.
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

#include "blob/blob.h"
#include "core/file.h"
#include "core/util.h"
#include "crypto/digest.h"
#include "crypto/keys.h"
#include "unit_util.h"

struct fx {
    struct blob *remote; /* the store under test, sealing */
    struct blob *local;  /* a fresh directory, sealing with the same key */
    struct blob *bare;   /* the same directory, without a keyring */
    struct keyring *keys;
    struct arena *a;
    char dir[64], rdir[64];
    char prefix[64];
};

static int setup(void **state)
{
    struct fx *fx = calloc(1, sizeof(*fx));
    struct tr_errbuf eb = {{0}};
    if (fx == NULL || !ut_mkdtemp(fx->dir, sizeof(fx->dir), "blobcopy"))
        return -1;
    const char *url = getenv("TERRACE_TEST_BLOB_URL");
    char buf[128];
    if (url == NULL || *url == '\0') {
        if (!ut_mkdtemp(fx->rdir, sizeof(fx->rdir), "blobcopy-src"))
            return -1;
        snprintf(buf, sizeof(buf), "file://%s", fx->rdir);
        url = buf;
    }
    unsigned char k[KEYS_KEK_LEN];
    util_random(k, sizeof(k));
    if (blob_open_url(url, fx->dir, &fx->remote, &eb) != TR_OK ||
        blob_open_fs(fx->dir, &fx->local, &eb) != TR_OK ||
        blob_open_fs(fx->dir, &fx->bare, &eb) != TR_OK ||
        keys_open_bytes(k, NULL, &fx->keys, &eb) != TR_OK) {
        fprintf(stderr, "setup: %s\n", eb.msg);
        return -1;
    }
    blob_set_keys(fx->remote, fx->keys);
    blob_set_keys(fx->local, fx->keys);
    unsigned char r[6];
    util_random(r, sizeof(r));
    snprintf(fx->prefix, sizeof(fx->prefix), "copy-%02x%02x%02x%02x%02x%02x",
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
    blob_list(fx->remote, fx->prefix, remove_one, fx->remote, NULL);
    blob_close(fx->remote);
    blob_close(fx->local);
    blob_close(fx->bare);
    keys_close(fx->keys);
    arena_destroy(fx->a);
    ut_rmtree(fx->dir);
    if (fx->rdir[0])
        ut_rmtree(fx->rdir);
    free(fx);
    return 0;
}

static const char *hex(struct arena *a, const unsigned char sha[32])
{
    char *s = arena_alloc(a, 65);
    for (int i = 0; i < 32; i++)
        snprintf(s + 2 * i, 3, "%02x", sha[i]);
    return s;
}

static void round_trip(struct fx *fx, const char *name, size_t n)
{
    struct tr_errbuf eb = {{0}};
    const char *k = arena_printf(fx->a, "%s/%s", fx->prefix, name);
    unsigned char *data = arena_alloc(fx->a, n + 1);
    util_random(data, n);
    assert_int_equal(blob_put(fx->remote, k, data, n, &eb), TR_OK);

    uint64_t size = 0, size2 = 0;
    unsigned char sha[32], sha2[32];
    assert_int_equal(blob_copy_raw(fx->remote, fx->local, k, &size, sha, &eb),
                     TR_OK);
    assert_true(size > n); /* sealed: header and tags */
    /* the checksum is of the bytes now stored at the destination */
    char *raw = NULL;
    size_t rawlen = 0;
    char path[256];
    snprintf(path, sizeof(path), "%s/objects/%s", fx->dir, k);
    assert_int_equal(file_read_all(fx->a, path, 1 << 30, &raw, &rawlen, &eb),
                     TR_OK);
    assert_int_equal(rawlen, size);
    assert_string_equal(hex(fx->a, sha), digest_sha256_hex(fx->a, raw, rawlen));
    assert_int_equal(blob_raw_sha256(fx->remote, k, &size2, sha2, &eb), TR_OK);
    assert_int_equal(size2, size);
    assert_memory_equal(sha, sha2, 32);
    /* still sealed: no keyring, no plaintext; the key opens it */
    char *got = NULL;
    size_t len = 0;
    assert_int_equal(blob_get(fx->bare, fx->a, k, 1 << 30, &got, &len, NULL),
                     TR_ERR_CRYPTO);
    assert_int_equal(blob_get(fx->local, fx->a, k, 1 << 30, &got, &len, &eb),
                     TR_OK);
    assert_int_equal(len, n);
    assert_memory_equal(got, data, n);

    /* and back, over a removed original */
    assert_int_equal(blob_remove(fx->remote, k, &eb), TR_OK);
    assert_int_equal(blob_copy_raw(fx->local, fx->remote, k, &size2, sha2, &eb),
                     TR_OK);
    assert_memory_equal(sha, sha2, 32);
    assert_int_equal(blob_get(fx->remote, fx->a, k, 1 << 30, &got, &len, &eb),
                     TR_OK);
    assert_int_equal(len, n);
    assert_memory_equal(got, data, n);
}

static void test_copy_small_and_empty(void **state)
{
    round_trip(*state, "empty", 0);
    round_trip(*state, "small", 1000);
}

static void test_copy_several_chunks(void **state)
{
    round_trip(*state, "big", 3 * 1024 * 1024 + 17);
}

static void test_missing(void **state)
{
    struct fx *fx = *state;
    struct tr_errbuf eb = {{0}};
    const char *k = arena_printf(fx->a, "%s/none", fx->prefix);
    uint64_t size = 0;
    unsigned char sha[32];
    assert_int_equal(blob_copy_raw(fx->remote, fx->local, k, &size, sha, &eb),
                     TR_ERR_NOT_FOUND);
    assert_int_equal(blob_raw_sha256(fx->local, k, &size, sha, &eb),
                     TR_ERR_NOT_FOUND);
    assert_int_equal(blob_raw_sha256(fx->local, "../escape", &size, sha, &eb),
                     TR_ERR_NOT_FOUND);
    char path[256];
    snprintf(path, sizeof(path), "%s/objects/%s", fx->dir, k);
    assert_int_not_equal(access(path, F_OK), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_copy_small_and_empty, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_copy_several_chunks, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_missing, setup, teardown),
    };
    return cmocka_run_group_tests_name("blob_copy", tests, NULL, NULL);
}
