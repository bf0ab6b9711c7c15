/*
 * test_state_upload.c - unit tests for the one-pass state upload
 * (src/domain/state_upload.c) on a sealing filesystem blob store: an
 * accepted state is stored whole and readable, with its digests and
 * facts; a refused one (bad JSON, or refused by the caller after a good
 * check), a short body and an upload freed half-way leave no object and
 * no temporary file behind; the body may arrive in pieces of any size.
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
#include "crypto/digest.h"
#include "crypto/keys.h"
#include "domain/state_upload.h"
#include "unit_util.h"

#define KEY "state/ws-1/sv-1.tfstate"

struct fx {
    char dir[64];
    char objects[128];
    char tmp[128];
    struct blob *b;
    struct keyring *keys;
    struct arena *a;
};

static int setup(void **state)
{
    struct fx *fx = calloc(1, sizeof(*fx));
    if (fx == NULL || !ut_mkdtemp(fx->dir, sizeof(fx->dir), "test_upl"))
        return -1;
    snprintf(fx->objects, sizeof(fx->objects), "%s/objects", fx->dir);
    snprintf(fx->tmp, sizeof(fx->tmp), "%s/tmp", fx->dir);
    struct tr_errbuf eb = {{0}};
    if (blob_open_fs(fx->dir, &fx->b, &eb) != TR_OK)
        return -1;
    unsigned char kek[KEYS_KEK_LEN] = {9, 9, 9};
    if (keys_open_bytes(kek, "test-kek", &fx->keys, &eb) != TR_OK)
        return -1;
    blob_set_keys(fx->b, fx->keys);
    fx->a = arena_new();
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    struct fx *fx = *state;
    arena_destroy(fx->a);
    blob_close(fx->b);
    keys_close(fx->keys);
    int rc = ut_rmtree(fx->dir);
    free(fx);
    return rc;
}

/* A state of about n bytes: a header, then resources padded to size. */
static char *make_state(struct arena *a, size_t n, const char *lineage,
                        size_t *len)
{
    struct buf b;
    buf_init(&b, 0);
    buf_printf(&b,
               "{\"version\":4,\"terraform_version\":\"1.6.2\",\"serial\":3,"
               "\"lineage\":\"%s\",\"outputs\":{\"o\":{\"value\":\"v\","
               "\"type\":\"string\"}},\"resources\":[",
               lineage);
    for (int i = 0; b.len < n; i++)
        buf_printf(&b,
                   "%s{\"mode\":\"managed\",\"type\":\"null_resource\","
                   "\"name\":\"r%d\",\"instances\":[{\"attributes\":"
                   "{\"pad\":\"%0900d\"}}]}",
                   i ? "," : "", i, i);
    buf_puts(&b, "]}\n");
    char *s = arena_memdup(a, b.data, b.len);
    *len = b.len;
    buf_free(&b);
    return s;
}

/* Writes data into fd in pieces of step bytes. */
static void feed(int fd, const char *data, size_t len, size_t step)
{
    for (size_t off = 0; off < len;) {
        size_t n = len - off < step ? len - off : step;
        ssize_t w = write(fd, data + off, n);
        assert_true(w > 0);
        off += (size_t)w;
    }
}

static bool stored(struct fx *fx)
{
    char path[256];
    snprintf(path, sizeof(path), "%s/%s", fx->objects, KEY);
    return access(path, F_OK) == 0;
}

static void test_accepted(void **state)
{
    struct fx *fx = *state;
    size_t steps[] = {1, 4093, 1 << 20};
    for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
        size_t len = 0;
        char *st = make_state(fx->a, 3 << 20, "lin-a", &len);
        struct state_upload *u = NULL;
        int fd = -1;
        struct tr_errbuf eb = {{0}};
        assert_int_equal(state_upload_start(fx->b, KEY, len, &u, &fd, &eb),
                         TR_OK);
        feed(fd, st, steps[i] == 1 ? 64 : 0, 1); /* a few single bytes */
        feed(fd, st + (steps[i] == 1 ? 64 : 0), len - (steps[i] == 1 ? 64 : 0),
             steps[i] == 1 ? 65536 : steps[i]);
        struct state_info si;
        char *md5 = NULL, *sha = NULL;
        assert_int_equal(state_upload_checked(u, &si, &md5, &sha, &eb), TR_OK);
        assert_string_equal(si.lineage, "lin-a");
        assert_int_equal(si.serial, 3);
        assert_int_equal(si.noutputs, 1);
        assert_string_equal(md5, digest_md5_hex(fx->a, st, len));
        /* taken by the store thread, final once checked */
        assert_string_equal(sha, digest_sha256_hex(fx->a, st, len));
        assert_false(stored(fx)); /* nothing before the verdict */
        assert_int_equal(state_upload_finish(u, true, &eb), TR_OK);
        state_upload_free(u);
        char *back = NULL;
        size_t blen = 0;
        assert_int_equal(blob_get(fx->b, fx->a, KEY, len, &back, &blen, &eb),
                         TR_OK);
        assert_int_equal(blen, len);
        assert_memory_equal(back, st, len);
        assert_int_equal(blob_remove(fx->b, KEY, &eb), TR_OK);
    }
    assert_int_equal(ut_count_entries(fx->tmp), 0);
}

static void test_refused_leaves_nothing(void **state)
{
    struct fx *fx = *state;
    size_t len = 0;
    char *st = make_state(fx->a, 20 << 20, "lin-a", &len);
    /* not JSON at 90 %: the check fails, the object is aborted */
    char *bad = arena_memdup(fx->a, st, len);
    bad[len / 10 * 9] = 0x01; /* refused inside a string or out of one */
    struct state_upload *u = NULL;
    int fd = -1;
    struct tr_errbuf eb = {{0}};
    assert_int_equal(state_upload_start(fx->b, KEY, len, &u, &fd, &eb), TR_OK);
    feed(fd, bad, len, 1 << 16);
    struct state_info si;
    char *md5 = NULL, *sha = NULL;
    assert_int_equal(state_upload_checked(u, &si, &md5, &sha, &eb),
                     TR_ERR_INVALID);
    assert_non_null(strstr(eb.msg, "not valid JSON"));
    assert_string_equal(md5, digest_md5_hex(fx->a, bad, len));
    assert_int_equal(state_upload_finish(u, false, &eb), TR_OK);
    state_upload_free(u);
    assert_false(stored(fx));

    /* a good check that the caller refuses (say, the successor rule) */
    assert_int_equal(state_upload_start(fx->b, KEY, len, &u, &fd, &eb), TR_OK);
    feed(fd, st, len, 1 << 16);
    assert_int_equal(state_upload_checked(u, &si, &md5, &sha, &eb), TR_OK);
    assert_int_equal(state_upload_finish(u, false, &eb), TR_OK);
    state_upload_free(u);
    assert_false(stored(fx));

    /* a body shorter than declared */
    assert_int_equal(state_upload_start(fx->b, KEY, len + 10, &u, &fd, &eb),
                     TR_OK);
    feed(fd, st, len, 1 << 16);
    assert_int_equal(state_upload_checked(u, &si, &md5, &sha, &eb), TR_OK);
    assert_int_not_equal(state_upload_finish(u, true, &eb), TR_OK);
    state_upload_free(u);
    assert_false(stored(fx));

    /* freed half-way, as when the client goes away */
    assert_int_equal(state_upload_start(fx->b, KEY, len, &u, &fd, &eb), TR_OK);
    feed(fd, st, len / 2, 1 << 16);
    state_upload_free(u);
    assert_false(stored(fx));
    assert_int_equal(ut_count_entries(fx->tmp), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_accepted, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refused_leaves_nothing, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
