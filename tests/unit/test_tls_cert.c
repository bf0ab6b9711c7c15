/*
 * test_tls_cert.c - unit tests for src/crypto/tls_cert.c.
 *
 * Each test gets a fresh mkdtemp directory (removed in teardown) and
 * generates into a not-yet-existing "certs" subdirectory of it.
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "crypto/tls_cert.h"

static const char *const files[] = {"ca.pem", "ca-key.pem", "server.pem",
                                    "server-key.pem"};
static const char *const names[] = {"myhost.example", "10.1.2.3"};

#define PATH_LEN 512

struct fixture {
    char tmp[64];
    char dir[128];
};

static int rm_entry(const char *path, const struct stat *st, int flag,
                    struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static int setup(void **state)
{
    struct fixture *fx = calloc(1, sizeof(*fx));

    if (fx == NULL)
        return -1;
    strcpy(fx->tmp, "/tmp/test_tls_cert.XXXXXX");
    if (mkdtemp(fx->tmp) == NULL) {
        free(fx);
        return -1;
    }
    snprintf(fx->dir, sizeof(fx->dir), "%s/certs", fx->tmp);
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *fx = *state;
    int rc = nftw(fx->tmp, rm_entry, 16, FTW_DEPTH | FTW_PHYS);

    free(fx);
    return rc;
}

static void path_of(char *out, const struct fixture *fx, const char *name)
{
    snprintf(out, PATH_LEN, "%s/%s", fx->dir, name);
}

static void generate(const struct fixture *fx)
{
    struct tr_errbuf eb = {{0}};
    tr_err rc = tls_ensure_certs(fx->dir, names, 2, &eb);

    if (rc != TR_OK)
        fail_msg("tls_ensure_certs: %s", tr_errbuf_msg(&eb, rc));
}

/* Reads a whole file into a malloc'd buffer; the caller frees it. */
static char *slurp(const struct fixture *fx, const char *name, long *len)
{
    char path[PATH_LEN];
    FILE *f;
    char *buf;

    path_of(path, fx, name);
    f = fopen(path, "rb");
    assert_non_null(f);
    assert_int_equal(fseek(f, 0, SEEK_END), 0);
    *len = ftell(f);
    rewind(f);
    buf = malloc((size_t)*len + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)*len, f), (size_t)*len);
    fclose(f);
    return buf;
}

static X509 *load_cert(const struct fixture *fx, const char *name)
{
    char path[PATH_LEN];
    FILE *f;
    X509 *cert;

    path_of(path, fx, name);
    f = fopen(path, "r");
    assert_non_null(f);
    cert = PEM_read_X509(f, NULL, NULL, NULL);
    fclose(f);
    assert_non_null(cert);
    return cert;
}

static EVP_PKEY *load_key(const struct fixture *fx, const char *name)
{
    char path[PATH_LEN];
    FILE *f;
    EVP_PKEY *key;

    path_of(path, fx, name);
    f = fopen(path, "r");
    assert_non_null(f);
    key = PEM_read_PrivateKey(f, NULL, NULL, NULL);
    fclose(f);
    assert_non_null(key);
    return key;
}

static int validity_days(X509 *cert)
{
    int days = 0, secs = 0;

    assert_int_equal(ASN1_TIME_diff(&days, &secs, X509_get0_notBefore(cert),
                                    X509_get0_notAfter(cert)),
                     1);
    return days;
}

static void assert_p256(EVP_PKEY *key)
{
    char group[32];

    assert_int_equal(EVP_PKEY_get_base_id(key), EVP_PKEY_EC);
    assert_int_equal(EVP_PKEY_get_group_name(key, group, sizeof(group), NULL),
                     1);
    assert_string_equal(group, "prime256v1");
}

/* server.pem chains to ca.pem, matches server-key.pem, has the right
 * names, lifetime, serial and key usage. */
static void verify_server(const struct fixture *fx)
{
    const unsigned int noc = X509_CHECK_FLAG_NEVER_CHECK_SUBJECT;
    X509 *ca = load_cert(fx, "ca.pem");
    X509 *srv = load_cert(fx, "server.pem");
    EVP_PKEY *key = load_key(fx, "server-key.pem");
    X509_STORE *store = X509_STORE_new();
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    BIGNUM *serial = ASN1_INTEGER_to_BN(X509_get0_serialNumber(srv), NULL);

    assert_non_null(store);
    assert_non_null(ctx);
    assert_int_equal(X509_STORE_add_cert(store, ca), 1);
    assert_int_equal(X509_STORE_CTX_init(ctx, store, srv, NULL), 1);
    assert_int_equal(X509_STORE_CTX_set_purpose(ctx, X509_PURPOSE_SSL_SERVER),
                     1);
    if (X509_verify_cert(ctx) != 1)
        fail_msg("verify: %s",
                 X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx)));

    assert_int_equal(X509_check_private_key(srv, key), 1);
    assert_p256(key);
    assert_int_equal(X509_check_host(srv, "localhost", 0, noc, NULL), 1);
    assert_int_equal(X509_check_host(srv, "myhost.example", 0, noc, NULL), 1);
    assert_int_equal(X509_check_host(srv, "other.example", 0, noc, NULL), 0);
    assert_int_equal(X509_check_ip_asc(srv, "127.0.0.1", 0), 1);
    assert_int_equal(X509_check_ip_asc(srv, "::1", 0), 1);
    assert_int_equal(X509_check_ip_asc(srv, "10.1.2.3", 0), 1);
    assert_int_equal(X509_check_ip_asc(srv, "10.1.2.4", 0), 0);
    assert_true(X509_get_extended_key_usage(srv) & XKU_SSL_SERVER);
    assert_int_equal(X509_check_ca(srv), 0);
    assert_int_equal(validity_days(srv), 825);
    assert_non_null(serial);
    assert_int_equal(BN_num_bits(serial), 128);

    BN_free(serial);
    X509_STORE_CTX_free(ctx);
    X509_STORE_free(store);
    EVP_PKEY_free(key);
    X509_free(srv);
    X509_free(ca);
}

static void test_generates_valid_set(void **state)
{
    struct fixture *fx = *state;
    char path[PATH_LEN], cn[64];
    struct stat st;

    generate(fx);
    assert_int_equal(stat(fx->dir, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0700);
    for (size_t i = 0; i < 4; i++) {
        path_of(path, fx, files[i]);
        assert_int_equal(stat(path, &st), 0);
        assert_true(S_ISREG(st.st_mode));
        if (strstr(files[i], "key") != NULL)
            assert_int_equal(st.st_mode & 0777, 0600);
    }
    verify_server(fx);

    X509 *ca = load_cert(fx, "ca.pem");
    EVP_PKEY *cakey = load_key(fx, "ca-key.pem");
    X509_NAME_get_text_by_NID(X509_get_subject_name(ca), NID_commonName, cn,
                              sizeof(cn));
    assert_string_equal(cn, "Terrace local CA");
    assert_int_equal(X509_check_ca(ca), 1);
    assert_int_equal(X509_check_private_key(ca, cakey), 1);
    assert_int_equal(validity_days(ca), 3650);
    assert_p256(cakey);
    X509 *srv = load_cert(fx, "server.pem");
    X509_NAME_get_text_by_NID(X509_get_subject_name(srv), NID_commonName, cn,
                              sizeof(cn));
    assert_string_equal(cn, "myhost.example");
    X509_free(srv);
    EVP_PKEY_free(cakey);
    X509_free(ca);
}

static void test_second_call_changes_nothing(void **state)
{
    struct fixture *fx = *state;
    struct stat before[4], after[4];
    char *data[4];
    long len[4];
    char path[PATH_LEN];

    generate(fx);
    for (size_t i = 0; i < 4; i++) {
        path_of(path, fx, files[i]);
        assert_int_equal(stat(path, &before[i]), 0);
        data[i] = slurp(fx, files[i], &len[i]);
    }
    generate(fx);
    for (size_t i = 0; i < 4; i++) {
        long n;
        char *now = slurp(fx, files[i], &n);
        path_of(path, fx, files[i]);
        assert_int_equal(stat(path, &after[i]), 0);
        assert_int_equal(after[i].st_ino, before[i].st_ino);
        assert_int_equal(after[i].st_mtim.tv_sec, before[i].st_mtim.tv_sec);
        assert_int_equal(after[i].st_mtim.tv_nsec, before[i].st_mtim.tv_nsec);
        assert_int_equal(n, len[i]);
        assert_memory_equal(now, data[i], (size_t)n);
        free(now);
        free(data[i]);
    }
}

static void test_missing_server_reuses_ca(void **state)
{
    struct fixture *fx = *state;
    char path[PATH_LEN];
    long calen, keylen, srvlen, n;

    generate(fx);
    char *ca = slurp(fx, "ca.pem", &calen);
    char *cakey = slurp(fx, "ca-key.pem", &keylen);
    char *srvkey = slurp(fx, "server-key.pem", &srvlen);
    path_of(path, fx, "server.pem");
    assert_int_equal(unlink(path), 0);

    generate(fx);
    verify_server(fx);
    char *now = slurp(fx, "ca.pem", &n);
    assert_int_equal(n, calen);
    assert_memory_equal(now, ca, (size_t)n);
    free(now);
    now = slurp(fx, "ca-key.pem", &n);
    assert_int_equal(n, keylen);
    assert_memory_equal(now, cakey, (size_t)n);
    free(now);
    now = slurp(fx, "server-key.pem", &n);
    assert_false(n == srvlen && memcmp(now, srvkey, (size_t)n) == 0);
    free(now);
    free(srvkey);
    free(cakey);
    free(ca);
}

static void test_mismatched_ca_is_refused(void **state)
{
    struct fixture *fx = *state;
    char from[PATH_LEN], to[PATH_LEN];
    struct tr_errbuf eb = {{0}};

    generate(fx);
    path_of(from, fx, "server-key.pem");
    path_of(to, fx, "ca-key.pem");
    assert_int_equal(rename(from, to), 0);
    assert_int_equal(tls_ensure_certs(fx->dir, names, 2, &eb), TR_ERR_CRYPTO);
    assert_string_not_equal(eb.msg, "");
    path_of(to, fx, "server.pem");
    assert_int_equal(access(to, F_OK), 0); /* left alone */
}

static void test_uncreatable_dir_fails(void **state)
{
    struct fixture *fx = *state;
    char file[128], dir[PATH_LEN];
    struct tr_errbuf eb = {{0}};
    FILE *f;

    snprintf(file, sizeof(file), "%s/plain", fx->tmp);
    f = fopen(file, "w");
    assert_non_null(f);
    fclose(f);
    snprintf(dir, sizeof(dir), "%s/sub/certs", file);
    assert_int_equal(tls_ensure_certs(dir, names, 2, &eb), TR_ERR_IO);
    assert_string_not_equal(eb.msg, "");
    assert_int_equal(tls_ensure_certs(file, NULL, 0, NULL), TR_ERR_IO);
}

static void test_bad_name_is_invalid(void **state)
{
    struct fixture *fx = *state;
    const char *const bad[][1] = {
        {"bad name"}, {"a..b"}, {""}, {"x,IP:1.2.3.4"}};
    struct tr_errbuf eb = {{0}};

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(tls_ensure_certs(fx->dir, bad[i], 1, &eb),
                         TR_ERR_INVALID);
    assert_int_equal(access(fx->dir, F_OK), -1); /* nothing created */
}

static void test_no_names(void **state)
{
    struct fixture *fx = *state;
    X509 *srv;
    char cn[64];

    assert_int_equal(tls_ensure_certs(fx->dir, NULL, 0, NULL), TR_OK);
    srv = load_cert(fx, "server.pem");
    X509_NAME_get_text_by_NID(X509_get_subject_name(srv), NID_commonName, cn,
                              sizeof(cn));
    assert_string_equal(cn, "localhost");
    assert_int_equal(X509_check_ip_asc(srv, "::1", 0), 1);
    X509_free(srv);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_generates_valid_set, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_second_call_changes_nothing, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_missing_server_reuses_ca, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_mismatched_ca_is_refused, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_uncreatable_dir_fails, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_bad_name_is_invalid, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_no_names, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
