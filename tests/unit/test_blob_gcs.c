/*
 * test_blob_gcs.c - the Google Cloud Storage backend's own cases: gs://
 * URLs and credentials files it must refuse with a message a person can
 * act on, and (when TERRACE_TEST_GCS_STUB names a running
 * tests/blob/gcs_auth_stub.py, as tests/blob/run_gcs.sh arranges) the
 * token cache, a revoked token replaced, and a JWT signed with the wrong
 * key refused; and (when TERRACE_TEST_GCS_URL is a gs:// URL through
 * tests/blob/faultproxy.py, whose base URL TERRACE_TEST_BLOB_FAULT names)
 * resumable uploads that meet 500s or a server gone down between parts,
 * or a source that ends early.  The shared behaviour is
 * tests/unit/test_blob_suite.c's.
 *
 *   TERRACE_TEST_GCS_STUB   the stub's base URL (http://127.0.0.1:P)
 *   TERRACE_TEST_GCS_KEY    a key file the stub trusts (its token_uri is
 *                           the stub's /token)
 *   TERRACE_TEST_GCS_BADKEY the same account signed with another key
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
#include "blob/blob_gcs_int.h"
#include "unit_util.h"

static char g_dir[64];

static tr_err open_url(const char *url, struct blob **b, struct tr_errbuf *eb)
{
    return blob_open_url(url, "/tmp", b, eb);
}

static void refused(const char *url, const char *needle)
{
    struct blob *b = NULL;
    struct tr_errbuf eb = {{0}};
    tr_err e = open_url(url, &b, &eb);
    if (e != TR_ERR_CONFIG || strstr(eb.msg, needle) == NULL)
        fprintf(stderr, "%s -> %d %s\n", url, e, eb.msg);
    assert_int_equal(e, TR_ERR_CONFIG);
    assert_non_null(strstr(eb.msg, needle));
    assert_null(b);
}

static void test_bad_urls(void **state)
{
    (void)state;
    refused("gs://", "bucket name");
    refused("gs://Upper/x?endpoint=http://127.0.0.1:1", "not a bucket");
    refused("gs://ab?endpoint=http://127.0.0.1:1", "not a bucket");
    refused("gs://bkt/a/../b?endpoint=http://127.0.0.1:1", "prefix");
    refused("gs://bkt/a//b?endpoint=http://127.0.0.1:1", "prefix");
    refused("gs://bkt/p?endpoint=ftp://x", "endpoint must start");
    refused("gs://bkt/p?endpoint=http://127.0.0.1:1&region=x",
            "unknown option 'region'");
    refused("gs://bkt/p?endpoint=", "bad value for endpoint");
    refused("gs://bkt/p?endpoint=http://127.0.0.1:1&auth=magic",
            "auth must be");
    refused("gs://bkt/p?endpoint=http://127.0.0.1:1&auth=file",
            "GOOGLE_APPLICATION_CREDENTIALS");
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void test_bad_credentials(void **state)
{
    (void)state;
    char path[128], url[256];
    snprintf(path, sizeof(path), "%s/creds.json", g_dir);
    snprintf(url, sizeof(url), "gs://bkt?credentials=%s", path);
    refused(url, "cannot read credentials file");
    write_file(path, "{not json");
    refused(url, "is not JSON");
    write_file(path, "{\"type\": \"authorized_user\"}");
    refused(url, "use a service-account key file");
    write_file(path, "{\"type\": \"service_account\", \"private_key\": \"x\"}");
    refused(url, "has no client_email");
    write_file(path, "{\"type\": \"service_account\", \"client_email\": "
                     "\"a@b\", \"private_key\": \"-----BEGIN PRIVATE "
                     "KEY-----\\nAAAA\\n-----END PRIVATE KEY-----\\n\"}");
    refused(url, "not an RSA key");
    /* The standard variable names the file when the URL does not. */
    snprintf(path, sizeof(path), "%s/absent.json", g_dir);
    setenv("GOOGLE_APPLICATION_CREDENTIALS", path, 1);
    refused("gs://bkt/p", "absent.json");
    refused("gs://bkt/p?endpoint=http://127.0.0.1:9", "absent.json");
    unsetenv("GOOGLE_APPLICATION_CREDENTIALS");
}

static void test_url_with_prefix_opens(void **state)
{
    (void)state;
    struct blob *b = NULL;
    struct tr_errbuf eb = {{0}};
    assert_int_equal(
        open_url("gs://my-bucket.x/a/b/?endpoint=http://127.0.0.1:9/", &b, &eb),
        TR_OK);
    blob_close(b);
}

/* Off Google Cloud with no key file: the metadata server is the last
 * resort, and its absence must say what to set. */
static void test_no_credentials_says_so(void **state)
{
    (void)state;
    setenv("GCE_METADATA_HOST", "127.0.0.1:1", 1);
    struct blob *b = NULL;
    struct tr_errbuf eb = {{0}};
    assert_int_equal(open_url("gs://bkt/p", &b, &eb), TR_OK);
    tr_err e = blob_put(b, "k", "v", 1, &eb);
    fprintf(stderr, "put without credentials: %s\n", eb.msg);
    assert_int_equal(e, TR_ERR_UNAVAILABLE);
    assert_non_null(strstr(eb.msg, "GOOGLE_APPLICATION_CREDENTIALS"));
    blob_close(b);
    unsetenv("GCE_METADATA_HOST");
}

/* ---- against the token stub -------------------------------------------- */

/* POSTs path to the server whose base URL the variable env holds. */
static bool post(const char *env, const char *path)
{
    char url[512];
    snprintf(url, sizeof(url), "%s%s", getenv(env), path);
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

struct auth_fx {
    struct blob_gcs_http http;
    struct blob_gcs_auth *auth;
};

static tr_err stub_list(struct auth_fx *fx, long *status)
{
    char url[512];
    snprintf(url, sizeof(url), "%s/storage/v1/b/terrace/o?maxResults=1",
             getenv("TERRACE_TEST_GCS_STUB"));
    struct buf out;
    buf_init(&out, 1 << 20);
    struct blob_gcs_req r = {.method = "GET", .url = url, .out = &out};
    struct tr_errbuf eb = {{0}};
    tr_err e = blob_gcs_http_do(&fx->http, &r, &eb);
    if (e != TR_OK)
        fprintf(stderr, "list: %s\n", eb.msg);
    *status = r.status;
    buf_free(&out);
    return e;
}

static void test_token_cached_and_renewed(void **state)
{
    (void)state;
    const char *key = getenv("TERRACE_TEST_GCS_KEY");
    if (getenv("TERRACE_TEST_GCS_STUB") == NULL || key == NULL)
        skip();
    struct auth_fx fx;
    struct tr_errbuf eb = {{0}};
    assert_int_equal(blob_gcs_http_init(&fx.http, NULL, &eb), TR_OK);
    assert_int_equal(
        blob_gcs_auth_new(BLOB_GCS_AUTH_FILE, key, &fx.http, &fx.auth, &eb),
        TR_OK);
    fx.http.auth = fx.auth;
    long status = 0;
    for (int i = 0; i < 5; i++) {
        assert_int_equal(stub_list(&fx, &status), TR_OK);
        assert_int_equal(status, 200);
    }
    assert_int_equal(blob_gcs_auth_fetches(fx.auth), 1);
    /* The service stops honouring the token: one 401, a new token. */
    assert_true(post("TERRACE_TEST_GCS_STUB", "/__revoke"));
    assert_int_equal(stub_list(&fx, &status), TR_OK);
    assert_int_equal(status, 200);
    assert_int_equal(blob_gcs_auth_fetches(fx.auth), 2);
    blob_gcs_auth_free(fx.auth);
    blob_gcs_http_free(&fx.http);
}

static void test_wrong_key_refused(void **state)
{
    (void)state;
    const char *bad = getenv("TERRACE_TEST_GCS_BADKEY");
    if (getenv("TERRACE_TEST_GCS_STUB") == NULL || bad == NULL)
        skip();
    char url[512];
    snprintf(url, sizeof(url), "gs://terrace/x?endpoint=%s&credentials=%s",
             getenv("TERRACE_TEST_GCS_STUB"), bad);
    struct blob *b = NULL;
    struct tr_errbuf eb = {{0}};
    assert_int_equal(open_url(url, &b, &eb), TR_OK);
    tr_err e = blob_put(b, "k", "v", 1, &eb);
    fprintf(stderr, "put with the wrong key: %s\n", eb.msg);
    assert_int_equal(e, TR_ERR_UNAUTHORIZED);
    assert_non_null(strstr(eb.msg, "bad signature"));
    blob_close(b);
}

/* ---- resumable uploads through the fault proxy ------------------------- */

/* A 20 MiB source (three parts) that, once the first part has been
 * pulled and sent, breaks the server as told, or ends early. */
struct src {
    uint64_t len, at;
    const char *fault; /* faultproxy command, or NULL */
    uint64_t end;      /* stop here (short source), or len */
    bool fired;
};

static tr_err src_read(void *ctx, void *buf, size_t n, size_t *got,
                       struct tr_errbuf *eb)
{
    (void)eb;
    struct src *s = ctx;
    if (s->at >= (8u << 20) && !s->fired) {
        s->fired = true;
        if (s->fault != NULL && !post("TERRACE_TEST_BLOB_FAULT", s->fault))
            return tr_fail(eb, TR_ERR_IO, "fault proxy refused");
    }
    uint64_t left = s->end - s->at;
    size_t k = left < n ? (size_t)left : n;
    unsigned char *p = buf;
    for (size_t i = 0; i < k; i++)
        p[i] = (unsigned char)((s->at + i) * 31 + ((s->at + i) >> 16));
    s->at += k;
    *got = k;
    return TR_OK;
}

/* The store behind the fault proxy; resumable: every object over one
 * part goes as a resumable upload (single-put-max=0), else one streamed
 * media upload. */
static struct blob *fault_store(bool resumable)
{
    const char *u = getenv("TERRACE_TEST_GCS_URL");
    if (u == NULL || getenv("TERRACE_TEST_BLOB_FAULT") == NULL)
        return NULL;
    char url[1200];
    snprintf(url, sizeof(url), "%s%s", u,
             resumable
                 ? (strchr(u, '?') ? "&single-put-max=0" : "?single-put-max=0")
                 : "");
    struct blob *b = NULL;
    struct tr_errbuf eb = {{0}};
    assert_int_equal(open_url(url, &b, &eb), TR_OK);
    return b;
}

static void check_object(struct blob *b, const char *key, uint64_t len)
{
    struct blob_reader *r = NULL;
    uint64_t size = 0;
    assert_int_equal(blob_reader_open(b, key, &r, &size, NULL), TR_OK);
    assert_int_equal(size, len);
    static unsigned char buf[1 << 20];
    for (uint64_t off = 0; off < size;) {
        size_t got = 0;
        assert_int_equal(
            blob_reader_pread(r, buf, sizeof(buf), off, &got, NULL), TR_OK);
        assert_true(got > 0);
        for (size_t i = 0; i < got; i++)
            if (buf[i] != (unsigned char)((off + i) * 31 + ((off + i) >> 16)))
                fail_msg("byte %llu differs", (unsigned long long)(off + i));
        off += got;
    }
    blob_reader_close(r);
}

static void test_resumable_part_500s_then_recovers(void **state)
{
    (void)state;
    struct blob *b = fault_store(true);
    if (b == NULL)
        skip();
    const uint64_t len = 20u << 20;
    struct src s = {.len = len, .end = len, .fault = "/__fault/500?count=2"};
    struct tr_errbuf eb = {{0}};
    tr_err e = blob_put_stream(b, "resumable/500s", len, src_read, &s, &eb);
    if (e != TR_OK)
        fprintf(stderr, "put: %s\n", eb.msg);
    assert_int_equal(e, TR_OK);
    assert_true(s.fired);
    check_object(b, "resumable/500s", len);
    assert_int_equal(blob_remove(b, "resumable/500s", NULL), TR_OK);
    blob_close(b);
}

static void test_resumable_server_down_leaves_nothing(void **state)
{
    (void)state;
    struct blob *b = fault_store(true);
    if (b == NULL)
        skip();
    const uint64_t len = 20u << 20;
    struct src s = {.len = len, .end = len, .fault = "/__fault/down"};
    struct tr_errbuf eb = {{0}};
    tr_err e = blob_put_stream(b, "resumable/down", len, src_read, &s, &eb);
    fprintf(stderr, "put while down: %s\n", eb.msg);
    assert_int_not_equal(e, TR_OK);
    assert_true(post("TERRACE_TEST_BLOB_FAULT", "/__fault/up"));
    struct blob_reader *r = NULL;
    uint64_t size = 0;
    assert_int_equal(blob_reader_open(b, "resumable/down", &r, &size, NULL),
                     TR_ERR_NOT_FOUND);
    blob_close(b);
}

static void test_resumable_short_source_leaves_nothing(void **state)
{
    (void)state;
    struct blob *b = fault_store(true);
    if (b == NULL)
        skip();
    const uint64_t len = 20u << 20;
    struct src s = {.len = len, .end = 12u << 20};
    struct tr_errbuf eb = {{0}};
    tr_err e = blob_put_stream(b, "resumable/short", len, src_read, &s, &eb);
    assert_int_not_equal(e, TR_OK);
    struct blob_reader *r = NULL;
    uint64_t size = 0;
    assert_int_equal(blob_reader_open(b, "resumable/short", &r, &size, NULL),
                     TR_ERR_NOT_FOUND);
    blob_close(b);
}

/* One streamed media upload whose source ends early: the service gets a
 * short body and stores nothing. */
static void test_streamed_short_source_leaves_nothing(void **state)
{
    (void)state;
    struct blob *b = fault_store(false);
    if (b == NULL)
        skip();
    const uint64_t len = 20u << 20;
    struct src s = {.len = len, .end = 12u << 20};
    struct tr_errbuf eb = {{0}};
    tr_err e = blob_put_stream(b, "streamed/short", len, src_read, &s, &eb);
    fprintf(stderr, "streamed put, short source: %s\n", eb.msg);
    assert_int_not_equal(e, TR_OK);
    struct blob_reader *r = NULL;
    uint64_t size = 0;
    assert_int_equal(blob_reader_open(b, "streamed/short", &r, &size, NULL),
                     TR_ERR_NOT_FOUND);
    blob_close(b);
}

int main(void)
{
    if (!ut_mkdtemp(g_dir, sizeof(g_dir), "test_blob_gcs"))
        return 1;
    curl_global_init(CURL_GLOBAL_DEFAULT);
    unsetenv("GOOGLE_APPLICATION_CREDENTIALS");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bad_urls),
        cmocka_unit_test(test_bad_credentials),
        cmocka_unit_test(test_url_with_prefix_opens),
        cmocka_unit_test(test_no_credentials_says_so),
        cmocka_unit_test(test_token_cached_and_renewed),
        cmocka_unit_test(test_wrong_key_refused),
        cmocka_unit_test(test_resumable_part_500s_then_recovers),
        cmocka_unit_test(test_resumable_server_down_leaves_nothing),
        cmocka_unit_test(test_resumable_short_source_leaves_nothing),
        cmocka_unit_test(test_streamed_short_source_leaves_nothing),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", g_dir);
    if (system(cmd) != 0)
        rc = rc != 0 ? rc : 1;
    curl_global_cleanup();
    return rc;
}
