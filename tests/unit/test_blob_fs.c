/*
 * test_blob_fs.c - unit tests for the filesystem blob store (src/blob/
 * blob.c and blob_fs.c): put/get/open_read/remove, key validation,
 * spooling, put_file consuming its source, atomic replacement (readers see
 * the old or the new object, never a mix; no temp files left behind),
 * several objects stored at once (blob_put_all()) and the "blob.put"
 * fault site.  The same tests run again on a store that
 * seals objects at rest (blob_set_keys()), and more check the sealing
 * itself: nothing in the clear on disk, every size around the chunk
 * boundary, tampering, a wrong or missing keyring, and objects stored in
 * the clear before still read.
 *
 * Each test gets a fresh store in a temporary directory.
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "blob/blob.h"
#include "core/fault.h"
#include "crypto/keys.h"
#include "crypto/sealed.h"
#include "unit_util.h"

struct fx {
    char dir[64];
    char objects[128];
    char tmp[128];
    struct blob *b;
    struct arena *a;
    struct keyring *keys; /* set on the sealing store */
};

static int setup(void **state)
{
    bool sealed = *state != NULL;
    struct fx *fx = calloc(1, sizeof(*fx));
    if (fx == NULL || !ut_mkdtemp(fx->dir, sizeof(fx->dir), "test_blob"))
        return -1;
    snprintf(fx->objects, sizeof(fx->objects), "%s/objects", fx->dir);
    snprintf(fx->tmp, sizeof(fx->tmp), "%s/tmp", fx->dir);
    struct tr_errbuf eb = {{0}};
    if (blob_open_fs(fx->dir, &fx->b, &eb) != TR_OK) {
        fprintf(stderr, "blob_open_fs: %s\n", eb.msg);
        return -1;
    }
    fx->a = arena_new();
    unsigned char kek[KEYS_KEK_LEN] = {7, 7, 7};
    if (sealed) {
        if (keys_open_bytes(kek, "test-kek", &fx->keys, &eb) != TR_OK)
            return -1;
        blob_set_keys(fx->b, fx->keys);
    }
    *state = fx;
    return 0;
}

static const int sealed_mode = 1;

static int teardown(void **state)
{
    struct fx *fx = *state;
    fault_reset();
    arena_destroy(fx->a);
    blob_close(fx->b);
    keys_close(fx->keys);
    int rc = ut_rmtree(fx->dir);
    free(fx);
    return rc;
}

static bool exists(const char *path)
{
    return access(path, F_OK) == 0;
}

static void test_open_makes_dirs(void **state)
{
    struct fx *fx = *state;
    assert_true(exists(fx->objects));
    assert_true(exists(fx->tmp));
    assert_string_equal(fx->b->tmp_dir, fx->tmp);
    /* nested, not-yet-existing directories */
    char nested[192];
    snprintf(nested, sizeof(nested), "%s/x/y/z", fx->dir);
    struct blob *b = NULL;
    struct tr_errbuf eb = {{0}};
    assert_int_equal(blob_open_fs(nested, &b, &eb), TR_OK);
    char p[256];
    snprintf(p, sizeof(p), "%s/objects", nested);
    assert_true(exists(p));
    blob_close(b);
    blob_close(NULL);
    /* a path where a file blocks the directory */
    char file[192];
    snprintf(file, sizeof(file), "%s/plainfile", fx->dir);
    assert_true(ut_write_file(file, "x"));
    b = NULL;
    assert_int_equal(blob_open_fs(file, &b, &eb), TR_ERR_IO);
    assert_null(b);
}

static void test_put_get(void **state)
{
    struct fx *fx = *state;
    struct tr_errbuf eb = {{0}};
    const char *text = "{\"version\": 4}";
    assert_int_equal(
        blob_put(fx->b, "state/ws-1/sv-1.json", text, strlen(text), &eb),
        TR_OK);
    char *data = NULL;
    size_t len = 0;
    assert_int_equal(
        blob_get(fx->b, fx->a, "state/ws-1/sv-1.json", 1024, &data, &len, &eb),
        TR_OK);
    assert_int_equal(len, strlen(text));
    assert_string_equal(data, text); /* NUL-terminated */
    /* binary data and the empty object */
    unsigned char bin[4096];
    for (size_t i = 0; i < sizeof(bin); i++)
        bin[i] = (unsigned char)(i * 7);
    assert_int_equal(blob_put(fx->b, "bin", bin, sizeof(bin), &eb), TR_OK);
    assert_int_equal(
        blob_get(fx->b, fx->a, "bin", sizeof(bin), &data, &len, &eb), TR_OK);
    assert_int_equal(len, sizeof(bin));
    assert_memory_equal(data, bin, sizeof(bin));
    assert_int_equal(blob_put(fx->b, "empty", "", 0, &eb), TR_OK);
    assert_int_equal(blob_get(fx->b, fx->a, "empty", 0, &data, &len, &eb),
                     TR_OK);
    assert_int_equal(len, 0);
    assert_string_equal(data, "");
    /* the size limit */
    assert_int_equal(
        blob_get(fx->b, fx->a, "bin", sizeof(bin) - 1, &data, &len, &eb),
        TR_ERR_TOO_LARGE);
    /* missing objects */
    assert_int_equal(blob_get(fx->b, fx->a, "nope", 10, &data, &len, &eb),
                     TR_ERR_NOT_FOUND);
    assert_int_equal(
        blob_get(fx->b, fx->a, "state/ws-2/x", 10, &data, &len, &eb),
        TR_ERR_NOT_FOUND);
    /* no temp files left */
    assert_int_equal(ut_count_entries(fx->tmp), 0);
}

static void test_open_read(void **state)
{
    struct fx *fx = *state;
    struct tr_errbuf eb = {{0}};
    assert_int_equal(blob_put(fx->b, "logs/run-1", "hello log", 9, &eb), TR_OK);
    struct blob_reader *rd = NULL;
    uint64_t size = 0;
    size_t got = 0;
    assert_int_equal(blob_reader_open(fx->b, "logs/run-1", &rd, &size, &eb),
                     TR_OK);
    assert_int_equal(size, 9);
    char buf[32] = {0};
    assert_int_equal(blob_reader_pread(rd, buf, sizeof(buf), 0, &got, &eb),
                     TR_OK);
    assert_int_equal(got, 9);
    assert_string_equal(buf, "hello log");
    /* at an offset, and past the end */
    memset(buf, 0, sizeof(buf));
    assert_int_equal(blob_reader_pread(rd, buf, 3, 6, &got, &eb), TR_OK);
    assert_int_equal(got, 3);
    assert_string_equal(buf, "log");
    assert_int_equal(blob_reader_pread(rd, buf, 3, 9, &got, &eb), TR_OK);
    assert_int_equal(got, 0);
    assert_int_equal(blob_reader_fd(rd) >= 0, fx->keys == NULL);
    blob_reader_close(rd);
    rd = NULL;
    assert_int_equal(blob_reader_open(fx->b, "logs/run-2", &rd, &size, &eb),
                     TR_ERR_NOT_FOUND);
    assert_null(rd);
    /* a reader opened before a replace keeps reading the old bytes */
    assert_int_equal(blob_reader_open(fx->b, "logs/run-1", &rd, &size, &eb),
                     TR_OK);
    assert_int_equal(blob_put(fx->b, "logs/run-1", "new", 3, &eb), TR_OK);
    memset(buf, 0, sizeof(buf));
    assert_int_equal(blob_reader_pread(rd, buf, sizeof(buf), 0, &got, &eb),
                     TR_OK);
    assert_string_equal(buf, "hello log");
    blob_reader_close(rd);
    blob_reader_close(NULL);
}

static void test_remove(void **state)
{
    struct fx *fx = *state;
    struct tr_errbuf eb = {{0}};
    assert_int_equal(blob_put(fx->b, "a/b", "x", 1, &eb), TR_OK);
    assert_int_equal(blob_remove(fx->b, "a/b", &eb), TR_OK);
    char *data = NULL;
    size_t len = 0;
    assert_int_equal(blob_get(fx->b, fx->a, "a/b", 10, &data, &len, &eb),
                     TR_ERR_NOT_FOUND);
    /* removing what is not there is not an error */
    assert_int_equal(blob_remove(fx->b, "a/b", &eb), TR_OK);
    assert_int_equal(blob_remove(fx->b, "never/was", &eb), TR_OK);
    /* the key can be written again */
    assert_int_equal(blob_put(fx->b, "a/b", "y", 1, &eb), TR_OK);
    assert_int_equal(blob_get(fx->b, fx->a, "a/b", 10, &data, &len, &eb),
                     TR_OK);
    assert_string_equal(data, "y");
}

static void test_valid_keys(void **state)
{
    struct fx *fx = *state;
    const char *good[] = {"a",        "a/b/c", "state/ws-1/sv-ABC.json",
                          "x.tar.gz", "_-.",   "a.b/c_d-e",
                          "file."};
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
        assert_true(blob_valid_key(good[i]));
    char longkey[402];
    memset(longkey, 'k', sizeof(longkey));
    longkey[400] = '\0';
    assert_true(blob_valid_key(longkey)); /* 400 characters */
    longkey[400] = 'k';
    longkey[401] = '\0';
    const char *bad[] = {NULL,    "",     "/abs", "../up",       "a/../b",
                         "a/..",  "..",   "a..b", "a//b",        "a b",
                         "a\\b",  "a\nb", "a:b",  "caf\xc3\xa9", "a?b",
                         "a%2fb", "~",    longkey};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_false(blob_valid_key(bad[i]));
    /* every entry point refuses them and nothing is written */
    struct tr_errbuf eb = {{0}};
    const char *refused[] = {"../escape", "/etc/passwd", "a//b", "", "a b"};
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        const char *k = refused[i];
        assert_int_not_equal(blob_put(fx->b, k, "x", 1, &eb), TR_OK);
        char src[192];
        snprintf(src, sizeof(src), "%s/src", fx->dir);
        assert_true(ut_write_file(src, "x"));
        assert_int_not_equal(blob_put_file(fx->b, k, src, &eb), TR_OK);
        unlink(src);
        struct blob_reader *rd = NULL;
        uint64_t size = 0;
        assert_int_equal(blob_reader_open(fx->b, k, &rd, &size, &eb),
                         TR_ERR_NOT_FOUND);
        char *data = NULL;
        size_t len = 0;
        assert_int_equal(blob_get(fx->b, fx->a, k, 10, &data, &len, &eb),
                         TR_ERR_NOT_FOUND);
        assert_int_equal(blob_remove(fx->b, k, &eb), TR_ERR_NOT_FOUND);
    }
    assert_int_equal(ut_count_entries(fx->objects), 0);
    assert_int_equal(ut_count_entries(fx->tmp), 0);
    char outside[192];
    snprintf(outside, sizeof(outside), "%s/escape", fx->dir);
    assert_false(exists(outside));
}

static void test_spool_cleanup(void **state)
{
    struct fx *fx = *state;
    struct tr_errbuf eb = {{0}};
    struct arena *a = arena_new();
    int fd1 = -1, fd2 = -1;
    char *p1 = NULL, *p2 = NULL;
    assert_int_equal(blob_spool(fx->b, a, &fd1, &p1, &eb), TR_OK);
    assert_int_equal(blob_spool(fx->b, a, &fd2, &p2, &eb), TR_OK);
    assert_string_not_equal(p1, p2);
    assert_int_equal(strncmp(p1, fx->tmp, strlen(fx->tmp)), 0);
    assert_int_equal(write(fd1, "spooled", 7), 7);
    assert_true(exists(p1));
    assert_true(exists(p2));
    assert_int_equal(ut_count_files(fx->tmp, ""), 2);
    char *copy1 = strdup(p1);
    arena_destroy(a);
    /* files removed; fds closed (fcntl fails on a closed fd) */
    assert_false(exists(copy1));
    assert_int_equal(ut_count_entries(fx->tmp), 0);
    assert_int_equal(fcntl(fd1, F_GETFD), -1);
    assert_int_equal(fcntl(fd2, F_GETFD), -1);
    free(copy1);
}

static void test_put_file_consumes(void **state)
{
    struct fx *fx = *state;
    struct tr_errbuf eb = {{0}};
    /* from a spool file, as upload routes do */
    struct arena *a = arena_new();
    int fd = -1;
    char *path = NULL;
    assert_int_equal(blob_spool(fx->b, a, &fd, &path, &eb), TR_OK);
    assert_int_equal(write(fd, "tarball bytes", 13), 13);
    assert_int_equal(blob_put_file(fx->b, "cv/cv-1.tar.gz", path, &eb), TR_OK);
    assert_false(exists(path));
    arena_destroy(a); /* the spool cleanup copes with the moved file */
    char *data = NULL;
    size_t len = 0;
    assert_int_equal(
        blob_get(fx->b, fx->a, "cv/cv-1.tar.gz", 100, &data, &len, &eb), TR_OK);
    assert_string_equal(data, "tarball bytes");
    assert_int_equal(ut_count_entries(fx->tmp), 0);
    /* from a plain file in the store's tmp dir, replacing an object */
    char src[192];
    snprintf(src, sizeof(src), "%s/upload", fx->tmp);
    assert_true(ut_write_file(src, "second"));
    assert_int_equal(blob_put_file(fx->b, "cv/cv-1.tar.gz", src, &eb), TR_OK);
    assert_false(exists(src));
    assert_int_equal(
        blob_get(fx->b, fx->a, "cv/cv-1.tar.gz", 100, &data, &len, &eb), TR_OK);
    assert_string_equal(data, "second");
    /* a missing source is an I/O error and creates nothing */
    assert_int_equal(blob_put_file(fx->b, "cv/cv-2.tar.gz", src, &eb),
                     TR_ERR_IO);
    assert_int_equal(
        blob_get(fx->b, fx->a, "cv/cv-2.tar.gz", 100, &data, &len, &eb),
        TR_ERR_NOT_FOUND);
}

static void test_replace_no_temp_files(void **state)
{
    struct fx *fx = *state;
    struct tr_errbuf eb = {{0}};
    for (int i = 0; i < 20; i++) {
        char body[64];
        int n = snprintf(body, sizeof(body), "version %d", i);
        assert_int_equal(blob_put(fx->b, "ws/state", body, (size_t)n, &eb),
                         TR_OK);
    }
    char *data = NULL;
    size_t len = 0;
    assert_int_equal(blob_get(fx->b, fx->a, "ws/state", 100, &data, &len, &eb),
                     TR_OK);
    assert_string_equal(data, "version 19");
    /* exactly the one object under objects/, and nothing in tmp/ */
    assert_int_equal(ut_count_files(fx->objects, ""), 1);
    assert_int_equal(ut_count_entries(fx->tmp), 0);
}

/* ---- atomicity under a concurrent reader ------------------------------ */

#define SMALL 100000
#define LARGE 300000

struct writer {
    struct blob *b;
    atomic_bool stop;
    atomic_int puts;
    atomic_int errors;
};

static void *write_loop(void *p)
{
    struct writer *w = p;
    char *small = malloc(SMALL), *large = malloc(LARGE);
    memset(small, 's', SMALL);
    memset(large, 'L', LARGE);
    for (int i = 0; !atomic_load(&w->stop) || i < 4; i++) {
        tr_err e = i % 2 ? blob_put(w->b, "hot/key", small, SMALL, NULL)
                         : blob_put(w->b, "hot/key", large, LARGE, NULL);
        if (e != TR_OK)
            atomic_fetch_add(&w->errors, 1);
        atomic_fetch_add(&w->puts, 1);
    }
    free(small);
    free(large);
    return NULL;
}

static void test_atomic_replace(void **state)
{
    struct fx *fx = *state;
    struct tr_errbuf eb = {{0}};
    assert_int_equal(blob_put(fx->b, "hot/key", "", 0, &eb), TR_OK);
    struct writer w = {.b = fx->b};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, write_loop, &w), 0);
    int reads = 0, torn = 0;
    while (reads < 300 || atomic_load(&w.puts) < 20) {
        struct arena *a = arena_new();
        char *data = NULL;
        size_t len = 0;
        tr_err e = blob_get(fx->b, a, "hot/key", LARGE, &data, &len, &eb);
        if (e != TR_OK) {
            torn++; /* the key must never be missing */
        } else if (len != 0) {
            char want = len == SMALL ? 's' : len == LARGE ? 'L' : '?';
            if (want == '?' || data[0] != want || data[len - 1] != want ||
                memchr(data, want == 's' ? 'L' : 's', len) != NULL)
                torn++;
        }
        arena_destroy(a);
        reads++;
    }
    atomic_store(&w.stop, true);
    pthread_join(th, NULL);
    assert_int_equal(atomic_load(&w.errors), 0);
    assert_int_equal(torn, 0);
    assert_int_equal(ut_count_files(fx->objects, ""), 1);
    assert_int_equal(ut_count_entries(fx->tmp), 0);
}

/* ---- fault injection ---------------------------------------------------- */

static void test_put_fault(void **state)
{
    struct fx *fx = *state;
    struct tr_errbuf eb = {{0}};
    assert_int_equal(blob_put(fx->b, "k", "old", 3, &eb), TR_OK);
    /* blob_put: the temp file is written, then the injected failure */
    fault_arm("blob.put", 1);
    assert_int_equal(blob_put(fx->b, "k", "new", 3, &eb), TR_ERR_IO);
    assert_true(fault_fired());
    assert_string_equal(eb.msg, "injected fault");
    assert_int_equal(ut_count_entries(fx->tmp), 0);
    char *data = NULL;
    size_t len = 0;
    assert_int_equal(blob_get(fx->b, fx->a, "k", 10, &data, &len, &eb), TR_OK);
    assert_string_equal(data, "old");
    /* a fresh key: nothing appears */
    fault_arm("blob.put", 1);
    assert_int_equal(blob_put(fx->b, "fresh", "new", 3, &eb), TR_ERR_IO);
    assert_int_equal(blob_get(fx->b, fx->a, "fresh", 10, &data, &len, &eb),
                     TR_ERR_NOT_FOUND);
    /* blob_put_file from a spool file: the arena still removes it */
    struct arena *a = arena_new();
    int fd = -1;
    char *path = NULL;
    assert_int_equal(blob_spool(fx->b, a, &fd, &path, &eb), TR_OK);
    assert_int_equal(write(fd, "new", 3), 3);
    fault_arm("blob.put", 1);
    assert_int_equal(blob_put_file(fx->b, "k", path, &eb), TR_ERR_IO);
    arena_destroy(a);
    assert_int_equal(ut_count_entries(fx->tmp), 0);
    assert_int_equal(blob_get(fx->b, fx->a, "k", 10, &data, &len, &eb), TR_OK);
    assert_string_equal(data, "old");
    /* the Nth call: the first two succeed, the third fails, then fine */
    fault_arm("blob.put", 3);
    assert_int_equal(blob_put(fx->b, "n1", "1", 1, &eb), TR_OK);
    assert_int_equal(blob_put(fx->b, "n2", "2", 1, &eb), TR_OK);
    assert_int_equal(blob_put(fx->b, "n3", "3", 1, &eb), TR_ERR_IO);
    assert_int_equal(blob_put(fx->b, "n4", "4", 1, &eb), TR_OK);
    assert_int_equal(fault_calls(), 4);
    fault_reset();
    assert_int_equal(ut_count_files(fx->objects, ""), 4); /* k n1 n2 n4 */
    assert_int_equal(ut_count_entries(fx->tmp), 0);
}

/* put_copy stores a file and leaves it where it was. */
static void test_put_copy_keeps_source(void **state)
{
    struct fx *fx = *state;
    char src[192];
    snprintf(src, sizeof(src), "%s/plan.bin", fx->dir);
    size_t n = 3 * 65536 + 11; /* more than one copy buffer */
    char *text = arena_alloc(fx->a, n + 1);
    for (size_t i = 0; i < n; i++)
        text[i] = (char)('a' + i % 23);
    text[n] = '\0';
    assert_true(ut_write_file(src, text));
    assert_int_equal(blob_put_copy(fx->b, "runs/r/plan", src, NULL), TR_OK);
    assert_true(exists(src));
    char *back = NULL;
    size_t len = 0;
    assert_int_equal(
        blob_get(fx->b, fx->a, "runs/r/plan", n, &back, &len, NULL), TR_OK);
    assert_int_equal(len, n);
    assert_memory_equal(back, text, n);
    char missing[192];
    snprintf(missing, sizeof(missing), "%s/nope", fx->dir);
    assert_int_equal(blob_put_copy(fx->b, "runs/r/x", missing, NULL),
                     TR_ERR_IO);
    assert_int_equal(blob_put_copy(fx->b, "../x", src, NULL), TR_ERR_INTERNAL);
    assert_int_equal(ut_count_entries(fx->tmp), 0);
}

/* What a process that died left in tmp goes when the store is opened:
 * files untouched for over a day (another primary sharing the directory
 * may be writing a fresh one). */
static void test_open_cleans_tmp(void **state)
{
    struct fx *fx = *state;
    const char *names[] = {"spool-abc", "put-def", "seal-ghi", "keep.me",
                           "spool-fresh"};
    char p[256];
    struct timeval old[2] = {{.tv_sec = time(NULL) - 2 * 24 * 3600},
                             {.tv_sec = time(NULL) - 2 * 24 * 3600}};
    for (int i = 0; i < 5; i++) {
        snprintf(p, sizeof(p), "%s/%s", fx->tmp, names[i]);
        assert_true(ut_write_file(p, "left over"));
        if (i < 4)
            assert_int_equal(utimes(p, old), 0);
    }
    struct blob *b = NULL;
    assert_int_equal(blob_open_fs(fx->dir, &b, NULL), TR_OK);
    assert_int_equal(ut_count_entries(fx->tmp), 2);
    snprintf(p, sizeof(p), "%s/keep.me", fx->tmp);
    assert_true(exists(p));
    unlink(p);
    snprintf(p, sizeof(p), "%s/spool-fresh", fx->tmp);
    assert_true(exists(p));
    unlink(p);
    blob_close(b);
}

/* ---- sealing at rest ----------------------------------------------------- */

/* The object file of key as stored on disk. */
static char *raw_object(struct fx *fx, const char *key, size_t *len)
{
    char path[256];
    snprintf(path, sizeof(path), "%s/%s", fx->objects, key);
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *p = arena_alloc(fx->a, (size_t)n + 1);
    assert_int_equal(fread(p, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *len = (size_t)n;
    return p;
}

static void write_raw(struct fx *fx, const char *key, const void *p, size_t n)
{
    char path[256];
    snprintf(path, sizeof(path), "%s/%s", fx->objects, key);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(p, 1, n, f), n);
    fclose(f);
}

static void test_sealed_sizes(void **state)
{
    struct fx *fx = *state;
    size_t sizes[] = {0,
                      1,
                      100,
                      SEALED_CHUNK - 1,
                      SEALED_CHUNK,
                      SEALED_CHUNK + 1,
                      3 * SEALED_CHUNK + 17};
    for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
        size_t n = sizes[k];
        char *plain = arena_alloc(fx->a, n + 1);
        for (size_t i = 0; i < n; i++)
            plain[i] = (char)('a' + (i * 31 + k) % 26);
        assert_int_equal(blob_put(fx->b, "obj", plain, n, NULL), TR_OK);
        size_t rlen = 0;
        char *raw = raw_object(fx, "obj", &rlen);
        assert_memory_equal(raw, SEALED_MAGIC, SEALED_MAGIC_LEN);
        assert_true(rlen > n);
        if (n >= 16) /* the plaintext appears nowhere on disk */
            assert_null(memmem(raw, rlen, plain, 16));
        char *back = NULL;
        size_t blen = 0;
        assert_int_equal(blob_get(fx->b, fx->a, "obj", n, &back, &blen, NULL),
                         TR_OK);
        assert_int_equal(blen, n);
        assert_memory_equal(back, plain, n);
        /* a reader reports the plaintext's size and reads any range,
         * across chunk boundaries too */
        struct blob_reader *rd = NULL;
        uint64_t size = 0;
        assert_int_equal(blob_reader_open(fx->b, "obj", &rd, &size, NULL),
                         TR_OK);
        assert_int_equal(size, n);
        assert_int_equal(blob_reader_fd(rd), -1);
        uint64_t offs[] = {0,
                           1,
                           SEALED_CHUNK - 3,
                           SEALED_CHUNK,
                           2 * SEALED_CHUNK + 5,
                           n > 0 ? n - 1 : 0,
                           n};
        char part[300];
        for (size_t o = 0; o < sizeof(offs) / sizeof(offs[0]); o++) {
            if (offs[o] > n)
                continue;
            size_t got = 0;
            assert_int_equal(
                blob_reader_pread(rd, part, sizeof(part), offs[o], &got, NULL),
                TR_OK);
            size_t want =
                n - offs[o] < sizeof(part) ? n - offs[o] : sizeof(part);
            assert_int_equal(got, want);
            assert_memory_equal(part, plain + offs[o], got);
        }
        blob_reader_close(rd);
    }
    /* put_file seals what it consumes */
    char src[192];
    snprintf(src, sizeof(src), "%s/upload", fx->dir);
    assert_true(ut_write_file(src, "secret-state-bytes"));
    assert_int_equal(blob_put_file(fx->b, "file", src, NULL), TR_OK);
    assert_false(exists(src));
    size_t rlen = 0;
    char *raw = raw_object(fx, "file", &rlen);
    assert_null(memmem(raw, rlen, "secret", 6));
    char *back = NULL;
    size_t blen = 0;
    assert_int_equal(blob_get(fx->b, fx->a, "file", 100, &back, &blen, NULL),
                     TR_OK);
    assert_string_equal(back, "secret-state-bytes");
    assert_int_equal(ut_count_entries(fx->tmp), 0);
}

/* Reads of a sealed object in order fetch several chunks at once
 * (sealed.c's read-ahead window); seeks back into the window, forward
 * past it, and the short last chunk must all read what was written. */
static void test_sealed_read_ahead(void **state)
{
    struct fx *fx = *state;
    size_t n = 20 * SEALED_CHUNK + 123;
    unsigned char *plain = arena_alloc(fx->a, n);
    for (size_t i = 0; i < n; i++)
        plain[i] = (unsigned char)((i * 2654435761u) >> 13 ^ i);
    assert_int_equal(blob_put(fx->b, "ra", plain, n, NULL), TR_OK);
    struct blob_reader *rd = NULL;
    uint64_t size = 0;
    assert_int_equal(blob_reader_open(fx->b, "ra", &rd, &size, NULL), TR_OK);
    assert_int_equal(size, n);
    unsigned char *buf = arena_alloc(fx->a, 2 * SEALED_CHUNK);
    /* {offset, length}: whole chunks in order (the window grows), a
     * seek back into it, pieces across chunk boundaries, a seek far
     * ahead, a seek back before the window, the end */
    size_t steps[][2] = {{0, SEALED_CHUNK},
                         {SEALED_CHUNK, SEALED_CHUNK},
                         {2 * SEALED_CHUNK, SEALED_CHUNK},
                         {3 * SEALED_CHUNK, 2 * SEALED_CHUNK},
                         {5 * SEALED_CHUNK, SEALED_CHUNK},
                         {SEALED_CHUNK + 7, 1000},
                         {4 * SEALED_CHUNK - 10, 2 * SEALED_CHUNK},
                         {6 * SEALED_CHUNK - 1, SEALED_CHUNK},
                         {17 * SEALED_CHUNK + 3, SEALED_CHUNK},
                         {18 * SEALED_CHUNK, 2 * SEALED_CHUNK},
                         {20 * SEALED_CHUNK, SEALED_CHUNK},
                         {2 * SEALED_CHUNK + 1, 999},
                         {3 * SEALED_CHUNK, SEALED_CHUNK},
                         {4 * SEALED_CHUNK, SEALED_CHUNK}};
    for (size_t k = 0; k < sizeof(steps) / sizeof(steps[0]); k++) {
        size_t off = steps[k][0], len = steps[k][1], got = 0;
        assert_int_equal(blob_reader_pread(rd, buf, len, off, &got, NULL),
                         TR_OK);
        assert_int_equal(got, n - off < len ? n - off : len);
        assert_memory_equal(buf, plain + off, got);
    }
    /* the whole object in order, a chunk a read, as a download reads */
    for (size_t off = 0; off < n; off += SEALED_CHUNK) {
        size_t got = 0;
        assert_int_equal(
            blob_reader_pread(rd, buf, SEALED_CHUNK, off, &got, NULL), TR_OK);
        assert_memory_equal(buf, plain + off, got);
    }
    blob_reader_close(rd);
}

static void test_sealed_tampering(void **state)
{
    struct fx *fx = *state;
    size_t n = SEALED_CHUNK + 500;
    char *plain = arena_alloc(fx->a, n);
    memset(plain, 'x', n);
    assert_int_equal(blob_put(fx->b, "t", plain, n, NULL), TR_OK);
    size_t rlen = 0;
    char *good = raw_object(fx, "t", &rlen);
    char *bad = arena_alloc(fx->a, rlen + 64);
    char *back = NULL;
    size_t blen = 0;
    /* a flipped bit anywhere: magic, key id, wrapped key, length, chunks */
    size_t at[] = {1, 6, 20, 60, 80, rlen / 2, rlen - 1};
    for (size_t k = 0; k < sizeof(at) / sizeof(at[0]); k++) {
        memcpy(bad, good, rlen);
        bad[at[k]] ^= 0x01;
        write_raw(fx, "t", bad, rlen);
        tr_err e = blob_get(fx->b, fx->a, "t", rlen, &back, &blen, NULL);
        if (at[k] < SEALED_MAGIC_LEN) /* no longer sealed: read as is */
            assert_true(e == TR_OK && blen == rlen);
        else
            assert_int_equal(e, TR_ERR_CRYPTO);
    }
    /* truncated, extended, the two chunks swapped */
    write_raw(fx, "t", good, rlen - 10);
    assert_int_equal(blob_get(fx->b, fx->a, "t", n, &back, &blen, NULL),
                     TR_ERR_CRYPTO);
    memcpy(bad, good, rlen);
    memset(bad + rlen, 0, 64);
    write_raw(fx, "t", bad, rlen + 64);
    assert_int_equal(blob_get(fx->b, fx->a, "t", n, &back, &blen, NULL),
                     TR_ERR_CRYPTO);
    /* another object's chunk in place of this one's */
    assert_int_equal(blob_put(fx->b, "u", plain, n, NULL), TR_OK);
    size_t ulen = 0;
    char *other = raw_object(fx, "u", &ulen);
    assert_int_equal(ulen, rlen);
    size_t hdr = rlen - (n + 2 * 28);
    memcpy(bad, good, rlen);
    memcpy(bad + hdr, other + hdr, SEALED_CHUNK + 28);
    write_raw(fx, "t", bad, rlen);
    assert_int_equal(blob_get(fx->b, fx->a, "t", n, &back, &blen, NULL),
                     TR_ERR_CRYPTO);
    write_raw(fx, "t", good, rlen);
    assert_int_equal(blob_get(fx->b, fx->a, "t", n, &back, &blen, NULL), TR_OK);
}

static void test_sealed_keys(void **state)
{
    struct fx *fx = *state;
    assert_int_equal(blob_put(fx->b, "k", "hello", 5, NULL), TR_OK);
    /* stored in the clear before sealing began: read as it is */
    write_raw(fx, "legacy", "plain old bytes", 15);
    char *back = NULL;
    size_t blen = 0;
    assert_int_equal(blob_get(fx->b, fx->a, "legacy", 100, &back, &blen, NULL),
                     TR_OK);
    assert_string_equal(back, "plain old bytes");
    /* another keyring cannot open it, nor can a store without one */
    unsigned char other[KEYS_KEK_LEN] = {9};
    struct keyring *k2 = NULL;
    assert_int_equal(keys_open_bytes(other, "other-kek", &k2, NULL), TR_OK);
    blob_set_keys(fx->b, k2);
    assert_int_equal(blob_get(fx->b, fx->a, "k", 100, &back, &blen, NULL),
                     TR_ERR_CRYPTO);
    blob_set_keys(fx->b, NULL);
    assert_int_equal(blob_get(fx->b, fx->a, "k", 100, &back, &blen, NULL),
                     TR_ERR_CRYPTO);
    blob_set_keys(fx->b, fx->keys);
    keys_close(k2);
    assert_int_equal(blob_get(fx->b, fx->a, "k", 100, &back, &blen, NULL),
                     TR_OK);
    assert_string_equal(back, "hello");
}

/* blob_put_all(): every item stored, files and bytes alike; a failing
 * item reports its own error and the others are stored all the same. */
static void test_put_all(void **state)
{
    struct fx *fx = *state;
    struct tr_errbuf eb = {{0}};
    char src[192];
    snprintf(src, sizeof(src), "%s/plan.tfplan", fx->dir);
    assert_true(ut_write_file(src, "binary plan"));
    struct blob_put_item it[5] = {
        {.key = "runs/run-1/plan.tfplan", .path = src},
        {.key = "runs/run-1/plan.json", .data = "{\"a\":1}", .len = 7},
        {.key = "runs/run-1/plan-redacted.json", .data = "{}", .len = 2},
        {.key = "logs/plan-1.log", .data = "log", .len = 3},
        {.key = "runs/run-1/empty", .data = "", .len = 0},
    };
    assert_int_equal(blob_put_all(fx->b, it, 5, &eb), TR_OK);
    const char *want[] = {"binary plan", "{\"a\":1}", "{}", "log", ""};
    for (int i = 0; i < 5; i++) {
        char *data = NULL;
        size_t len = 0;
        assert_int_equal(it[i].e, TR_OK);
        assert_int_equal(
            blob_get(fx->b, fx->a, it[i].key, 100, &data, &len, &eb), TR_OK);
        assert_string_equal(data, want[i]);
    }
    assert_true(exists(src)); /* copied, not consumed */
    /* one bad key and one missing file among good items */
    struct blob_put_item bad[3] = {
        {.key = "ok/one", .data = "1", .len = 1},
        {.key = "../escape", .data = "x", .len = 1},
        {.key = "ok/two", .path = "/nonexistent/terrace-file"},
    };
    tr_err e = blob_put_all(fx->b, bad, 3, &eb);
    assert_int_not_equal(e, TR_OK);
    assert_int_equal(bad[0].e, TR_OK);
    assert_int_not_equal(bad[1].e, TR_OK);
    assert_int_equal(bad[2].e, TR_ERR_IO);
    assert_non_null(strstr(bad[2].eb.msg, "nonexistent"));
    char *data = NULL;
    size_t len = 0;
    assert_int_equal(blob_get(fx->b, fx->a, "ok/one", 10, &data, &len, &eb),
                     TR_OK);
    assert_int_equal(blob_get(fx->b, fx->a, "ok/two", 10, &data, &len, NULL),
                     TR_ERR_NOT_FOUND);
    /* nothing to store */
    assert_int_equal(blob_put_all(fx->b, NULL, 0, &eb), TR_OK);
}

#define BOTH(t)                                                                \
    cmocka_unit_test_setup_teardown(t, setup, teardown),                       \
        cmocka_unit_test_prestate_setup_teardown(t, setup, teardown,           \
                                                 (void *)&sealed_mode)
#define SEALED(t)                                                              \
    cmocka_unit_test_prestate_setup_teardown(t, setup, teardown,               \
                                             (void *)&sealed_mode)

int main(void)
{
    const struct CMUnitTest tests[] = {
        BOTH(test_open_makes_dirs),
        BOTH(test_put_get),
        BOTH(test_open_read),
        BOTH(test_remove),
        BOTH(test_valid_keys),
        BOTH(test_spool_cleanup),
        BOTH(test_put_file_consumes),
        BOTH(test_replace_no_temp_files),
        BOTH(test_atomic_replace),
        BOTH(test_put_fault),
        BOTH(test_open_cleans_tmp),
        BOTH(test_put_copy_keeps_source),
        BOTH(test_put_all),
        SEALED(test_sealed_sizes),
        SEALED(test_sealed_read_ahead),
        SEALED(test_sealed_tampering),
        SEALED(test_sealed_keys),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
