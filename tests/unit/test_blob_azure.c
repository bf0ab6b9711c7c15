/*
 * test_blob_azure.c - unit tests for the Azure Blob backend
 * (src/blob/blob_azure.c) beyond the shared blob suite.
 *
 * Always: azblob:// URLs and credentials, good and bad (TR_ERR_CONFIG with
 * a message naming what to fix, never the key).  With a server
 * (TERRACE_TEST_AZURE_URL, set by tests/blob/run_azure.sh with its
 * credentials in the environment; otherwise those tests skip): list pages
 * joined through markers, an object replaced while it is read fails the
 * read instead of mixing versions, and an upload of several blocks whose
 * source fails half-way leaves the old object whole and nothing new.
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

#include "core/curl_load.h"

#include "blob/blob.h"

#define DEV_KEY                                                                \
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/"          \
    "K1SZFPTOtr/KBHBeksoGMGw=="

static const char *env_names[] = {"AZURE_STORAGE_ACCOUNT", "AZURE_STORAGE_KEY",
                                  "AZURE_STORAGE_SAS_TOKEN"};
static char *env_saved[3]; /* the server's credentials, from run_azure.sh */

static void clear_env(void)
{
    for (int i = 0; i < 3; i++)
        unsetenv(env_names[i]);
}

static void restore_env(void)
{
    clear_env();
    for (int i = 0; i < 3; i++)
        if (env_saved[i] != NULL)
            setenv(env_names[i], env_saved[i], 1);
}

static tr_err try_open(const char *url, struct tr_errbuf *eb)
{
    struct blob *b = NULL;
    memset(eb, 0, sizeof(*eb));
    tr_err e = blob_open_azure(url, "/tmp", &b, eb);
    if (e == TR_OK)
        b->ops->close(b);
    return e;
}

static void test_url_good(void **state)
{
    struct tr_errbuf eb;
    clear_env();
    setenv("AZURE_STORAGE_KEY", DEV_KEY, 1);
    assert_int_equal(try_open("azblob://terrace?account=acct", &eb), TR_OK);
    assert_int_equal(try_open("azblob://terrace/a/b/?account=acct&endpoint="
                              "http://127.0.0.1:10000/acct",
                              &eb),
                     TR_OK);
    assert_int_equal(try_open("azblob://my-box1/p?endpoint=https%3A%2F%2F"
                              "x.example%2Facct&account=acct",
                              &eb),
                     TR_OK);
    setenv("AZURE_STORAGE_ACCOUNT", "fromenv", 1);
    assert_int_equal(try_open("azblob://terrace", &eb), TR_OK);
    unsetenv("AZURE_STORAGE_KEY");
    setenv("AZURE_STORAGE_SAS_TOKEN", "?sv=2021-08-06&sig=abc%3D", 1);
    assert_int_equal(try_open("azblob://terrace/x", &eb), TR_OK);
    clear_env();
}

static void test_url_bad(void **state)
{
    static const struct {
        const char *url;
        const char *says;
    } bad[] = {
        {"s3://terrace?account=a", "azblob://"},
        {"azblob://Terrace?account=a", "container name"},
        {"azblob://ab?account=a", "container name"},
        {"azblob://a--b?account=a", "container name"},
        {"azblob://terrace/../x?account=a", "prefix"},
        {"azblob://terrace/a b?account=a", "prefix"},
        {"azblob:///x?account=a", "container name"},
        {"azblob://terrace?account=a&region=x", "unknown parameter region"},
        {"azblob://terrace?account=a&endpoint=ftp://h", "endpoint"},
        {"azblob://terrace?account=a&endpoint=http://", "endpoint"},
        {"azblob://terrace?account=a-b", "account"},
        {"azblob://terrace?account=a%zz", "account"},
        {"azblob://terrace", "AZURE_STORAGE_ACCOUNT"},
    };
    struct tr_errbuf eb;
    clear_env();
    setenv("AZURE_STORAGE_KEY", DEV_KEY, 1);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(try_open(bad[i].url, &eb), TR_ERR_CONFIG);
        if (strstr(eb.msg, bad[i].says) == NULL)
            fail_msg("%s: \"%s\" does not say %s", bad[i].url, eb.msg,
                     bad[i].says);
    }
    clear_env();
}

static void test_credentials(void **state)
{
    struct tr_errbuf eb;
    clear_env();
    assert_int_equal(try_open("azblob://terrace?account=a", &eb),
                     TR_ERR_CONFIG);
    assert_non_null(strstr(eb.msg, "AZURE_STORAGE_KEY"));
    assert_non_null(strstr(eb.msg, "AZURE_STORAGE_SAS_TOKEN"));
    setenv("AZURE_STORAGE_KEY", "not base64!", 1);
    assert_int_equal(try_open("azblob://terrace?account=a", &eb),
                     TR_ERR_CONFIG);
    assert_non_null(strstr(eb.msg, "AZURE_STORAGE_KEY"));
    assert_null(strstr(eb.msg, "not base64!"));
    unsetenv("AZURE_STORAGE_KEY");
    setenv("AZURE_STORAGE_SAS_TOKEN", "sv=1&sig=a b", 1);
    assert_int_equal(try_open("azblob://terrace?account=a", &eb),
                     TR_ERR_CONFIG);
    assert_null(strstr(eb.msg, "sig=a"));
    clear_env();
}

/* ---- against a server ------------------------------------------------- */

static struct blob *open_server(void)
{
    const char *url = getenv("TERRACE_TEST_AZURE_URL");
    if (url == NULL || url[0] == '\0')
        skip();
    restore_env();
    struct blob *b = NULL;
    struct tr_errbuf eb = {{0}};
    if (blob_open_azure(url, "/tmp", &b, &eb) != TR_OK)
        fail_msg("open %s: %s", url, eb.msg);
    return b;
}

struct mem_src {
    const char *data;
    size_t len, pos;
    size_t fail_at; /* fail once pos reaches this (0: never) */
};

static tr_err mem_pull(void *ctx, void *buf, size_t n, size_t *got,
                       struct tr_errbuf *eb)
{
    struct mem_src *s = ctx;
    if (s->fail_at > 0 && s->pos >= s->fail_at)
        return tr_fail(eb, TR_ERR_IO, "source failed on purpose");
    size_t k = s->len - s->pos < n ? s->len - s->pos : n;
    memcpy(buf, s->data + s->pos, k);
    s->pos += k;
    *got = k;
    return TR_OK;
}

static tr_err put_mem(struct blob *b, const char *key, const char *data,
                      size_t len, size_t fail_at)
{
    struct mem_src s = {data, len, 0, fail_at};
    struct tr_errbuf eb = {{0}};
    return b->ops->put_stream(b, key, len, mem_pull, &s, &eb);
}

static tr_err count_key(void *ctx, const char *key, uint64_t size,
                        int64_t mtime, struct tr_errbuf *eb)
{
    int *n = ctx;
    if (strncmp(key, "paging/", 7) != 0)
        return tr_fail(eb, TR_ERR_INTERNAL, "unexpected key %s", key);
    (*n)++;
    return TR_OK;
}

static void test_list_pages(void **state)
{
    /* run_azure.sh sets TERRACE_TEST_AZURE_LIST_PAGE=2: 7 keys, 4 pages */
    struct blob *b = open_server();
    char key[32];
    for (int i = 0; i < 7; i++) {
        snprintf(key, sizeof(key), "paging/k%d", i);
        assert_int_equal(put_mem(b, key, "x", 1, 0), TR_OK);
    }
    int n = 0;
    struct tr_errbuf eb = {{0}};
    assert_int_equal(b->ops->list(b, "paging/", count_key, &n, &eb), TR_OK);
    assert_int_equal(n, 7);
    for (int i = 0; i < 7; i++) {
        snprintf(key, sizeof(key), "paging/k%d", i);
        assert_int_equal(b->ops->remove(b, key, &eb), TR_OK);
    }
    n = 0;
    assert_int_equal(b->ops->list(b, "paging/", count_key, &n, &eb), TR_OK);
    assert_int_equal(n, 0);
    b->ops->close(b);
}

static char *pattern(size_t len, unsigned seed)
{
    char *p = malloc(len);
    assert_non_null(p);
    for (size_t i = 0; i < len; i++)
        p[i] = (char)(seed + i * 31 + i / 4093);
    return p;
}

static void test_replaced_while_read(void **state)
{
    struct blob *b = open_server();
    size_t len = 4u << 20;
    char *v1 = pattern(len, 1), *v2 = pattern(len, 2), *got = malloc(len);
    assert_non_null(got);
    assert_int_equal(put_mem(b, "changing", v1, len, 0), TR_OK);
    struct blob_obj *o;
    uint64_t size;
    size_t n;
    struct tr_errbuf eb = {{0}};
    assert_int_equal(b->ops->open(b, "changing", &o, &size, &eb), TR_OK);
    assert_int_equal(size, len);
    assert_int_equal(b->ops->read(o, got, 1000, 0, &n, &eb), TR_OK);
    assert_int_equal(n, 1000);
    assert_memory_equal(got, v1, 1000);
    assert_int_equal(put_mem(b, "changing", v2, len, 0), TR_OK);
    /* past the first window: a new ranged GET of a replaced object */
    tr_err e = b->ops->read(o, got, len - 1000, 1000, &n, &eb);
    assert_int_equal(e, TR_ERR_IO);
    assert_non_null(strstr(eb.msg, "changed while being read"));
    b->ops->obj_close(o);
    assert_int_equal(b->ops->remove(b, "changing", &eb), TR_OK);
    b->ops->close(b);
    free(v1);
    free(v2);
    free(got);
}

static void test_failed_upload_invisible(void **state)
{
    struct blob *b = open_server();
    size_t len = 20u << 20; /* three blocks */
    char *v1 = pattern(100, 3), *v2 = pattern(len, 4), *got = malloc(len);
    assert_non_null(got);
    struct tr_errbuf eb = {{0}};
    assert_int_equal(put_mem(b, "halfway", v1, 100, 0), TR_OK);
    /* the source fails in the second block, after one went up */
    assert_int_equal(put_mem(b, "halfway", v2, len, 10u << 20), TR_ERR_IO);
    assert_int_equal(put_mem(b, "halfway-new", v2, len, 10u << 20), TR_ERR_IO);
    struct blob_obj *o;
    uint64_t size;
    size_t n;
    assert_int_equal(b->ops->open(b, "halfway", &o, &size, &eb), TR_OK);
    assert_int_equal(size, 100);
    assert_int_equal(b->ops->read(o, got, len, 0, &n, &eb), TR_OK);
    assert_int_equal(n, 100);
    assert_memory_equal(got, v1, 100);
    b->ops->obj_close(o);
    assert_int_equal(b->ops->open(b, "halfway-new", &o, &size, &eb),
                     TR_ERR_NOT_FOUND);
    /* and a whole upload of the same key afterwards is read back */
    assert_int_equal(put_mem(b, "halfway", v2, len, 0), TR_OK);
    assert_int_equal(b->ops->open(b, "halfway", &o, &size, &eb), TR_OK);
    assert_int_equal(size, len);
    assert_int_equal(b->ops->read(o, got, len, 0, &n, &eb), TR_OK);
    assert_int_equal(n, len);
    assert_memory_equal(got, v2, len);
    b->ops->obj_close(o);
    assert_int_equal(b->ops->remove(b, "halfway", &eb), TR_OK);
    b->ops->close(b);
    free(v1);
    free(v2);
    free(got);
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    for (int i = 0; i < 3; i++) {
        const char *v = getenv(env_names[i]);
        env_saved[i] = v != NULL ? strdup(v) : NULL;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_url_good),
        cmocka_unit_test(test_url_bad),
        cmocka_unit_test(test_credentials),
        cmocka_unit_test(test_list_pages),
        cmocka_unit_test(test_replaced_while_read),
        cmocka_unit_test(test_failed_upload_invisible),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    for (int i = 0; i < 3; i++)
        free(env_saved[i]);
    return rc;
}
