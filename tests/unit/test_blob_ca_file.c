/*
 * test_blob_ca_file.c - the ca-file= option of the remote blob URLs
 * (s3://, gs://, azblob://): a readable file is taken, a missing one is
 * refused at open with TR_ERR_CONFIG naming it, for each backend and for
 * the shared HTTP client itself (src/blob/blob_http.c).  That the named
 * CA is then trusted, and the system's alone is not enough, is tested
 * against each test server over TLS by tests/blob/run_<name>.sh.
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

#include "blob/blob.h"
#include "blob/blob_http.h"
#include "unit_util.h"

#define DEV_KEY                                                                \
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/"          \
    "K1SZFPTOtr/KBHBeksoGMGw=="

static char g_dir[64];
static char g_ca[128];

/* The three remote URLs with ca-file=file, into out[3]. */
static void urls(const char *file, char out[3][512])
{
    snprintf(out[0], 512,
             "s3://bkt/p?endpoint=https://127.0.0.1:9&force-path-style=true"
             "&ca-file=%s",
             file);
    snprintf(out[1], 512, "gs://bkt/p?endpoint=https://127.0.0.1:9&ca-file=%s",
             file);
    snprintf(out[2], 512,
             "azblob://bkt/p?account=devstoreaccount1&endpoint=https://"
             "127.0.0.1:9/devstoreaccount1&ca-file=%s",
             file);
}

static int setup(void **state)
{
    (void)state;
    snprintf(g_dir, sizeof(g_dir), "/tmp/tr-cafile-XXXXXX");
    if (mkdtemp(g_dir) == NULL)
        return -1;
    snprintf(g_ca, sizeof(g_ca), "%s/ca.pem", g_dir);
    FILE *f = fopen(g_ca, "w");
    if (f == NULL)
        return -1;
    /* read only when a request is made, so any text opens */
    fputs("-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n", f);
    fclose(f);
    setenv("AWS_ACCESS_KEY_ID", "test", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "test-secret", 1);
    unsetenv("AWS_SESSION_TOKEN");
    setenv("AZURE_STORAGE_KEY", DEV_KEY, 1);
    unsetenv("GOOGLE_APPLICATION_CREDENTIALS");
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    unlink(g_ca);
    rmdir(g_dir);
    return 0;
}

static void test_readable_file_opens(void **state)
{
    (void)state;
    char u[3][512];
    urls(g_ca, u);
    for (int i = 0; i < 3; i++) {
        struct blob *b = NULL;
        struct tr_errbuf eb = {{0}};
        tr_err e = blob_open_url(u[i], "/tmp", &b, &eb);
        if (e != TR_OK)
            fprintf(stderr, "%s: %s\n", u[i], eb.msg);
        assert_int_equal(e, TR_OK);
        blob_close(b);
    }
}

static void test_missing_file_refused(void **state)
{
    (void)state;
    char missing[160], u[3][512];
    snprintf(missing, sizeof(missing), "%s/absent.pem", g_dir);
    urls(missing, u);
    for (int i = 0; i < 3; i++) {
        struct blob *b = NULL;
        struct tr_errbuf eb = {{0}};
        tr_err e = blob_open_url(u[i], "/tmp", &b, &eb);
        fprintf(stderr, "%s -> %s\n", u[i], eb.msg);
        assert_int_equal(e, TR_ERR_CONFIG);
        assert_non_null(strstr(eb.msg, "cannot read ca-file"));
        assert_non_null(strstr(eb.msg, "absent.pem"));
        assert_null(b);
    }
}

static void test_client_copies_path(void **state)
{
    (void)state;
    char path[128];
    snprintf(path, sizeof(path), "%s", g_ca);
    struct blob_http_opts o = {.name = "t", .ca_file = path};
    struct blob_http *h = NULL;
    struct tr_errbuf eb = {{0}};
    assert_int_equal(blob_http_new(&o, &h, &eb), TR_OK);
    memset(path, 'x', sizeof(path) - 1); /* the caller's copy may go */
    assert_string_equal(blob_http_opts(h)->ca_file, g_ca);
    blob_http_free(h);
    o.ca_file = NULL;
    assert_int_equal(blob_http_new(&o, &h, &eb), TR_OK);
    assert_null(blob_http_opts(h)->ca_file);
    blob_http_free(h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_readable_file_opens),
        cmocka_unit_test(test_missing_file_refused),
        cmocka_unit_test(test_client_copies_path),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
