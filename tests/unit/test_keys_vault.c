/*
 * test_keys_vault.c - unit tests for src/crypto/keys_vault.c against a
 * real Vault server (tests/lib/vault.sh; tests/vault/run_vault.sh starts
 * one and sets TERRACE_TEST_VAULT_ADDR, _TOKEN (root), _ROLE_ID and
 * _SECRET_ID; without them every test skips).
 *
 * Covered: data keys wrapped and unwrapped through transit (envelope and
 * sealed objects on top), tampered and foreign ciphertext refused, keys
 * derived through transit's HMAC that survive a key rotation, the key
 * version a rekey looks at, a keyring holding an old local key, AppRole
 * login (and a refused one), a short-lived token renewed on use, and
 * Vault unreachable, a missing key and a bad token at open.
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "core/curl_load.h"
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "blob/blob.h"
#include "unit_util.h"
#include "crypto/envelope.h"
#include "crypto/keys.h"
#include "crypto/sealed.h"

static const char *env(const char *name)
{
    const char *v = getenv(name);
    return v != NULL && *v != '\0' ? v : NULL;
}

#define ADDR env("TERRACE_TEST_VAULT_ADDR")
#define ROOT env("TERRACE_TEST_VAULT_TOKEN")

static size_t sink(char *p, size_t size, size_t n, void *arg)
{
    json_t **out = arg;
    json_decref(*out);
    *out = json_loadb(p, size * n, 0, NULL);
    return size * n;
}

/* A request to Vault with the root token; the reply's JSON (or NULL). */
static json_t *root_call(const char *method, const char *path, const char *body)
{
    char url[512], hdr[512];
    snprintf(url, sizeof(url), "%s/v1/%s", ADDR, path);
    snprintf(hdr, sizeof(hdr), "X-Vault-Token: %s", ROOT);
    struct curl_slist *h = curl_slist_append(NULL, hdr);
    json_t *out = NULL;
    CURL *c = curl_easy_init();
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, sink);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &out);
    if (body != NULL)
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    long status = 0;
    assert_int_equal(curl_easy_perform(c), CURLE_OK);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(c);
    curl_slist_free_all(h);
    assert_true(status >= 200 && status < 300);
    return out;
}

/* A fresh transit key of its own for a test that rotates it. */
static void new_key(char *name, size_t n)
{
    snprintf(name, n, "unit-%ld-%d", (long)time(NULL), rand() % 100000);
    char path[256];
    snprintf(path, sizeof(path), "transit/keys/%s", name);
    json_decref(root_call("POST", path, "{\"type\":\"aes256-gcm96\"}"));
}

static struct keyring *open_token(const char *token, const char *key)
{
    struct keys_vault_cfg vc = {
        .addr = ADDR, .token = token, .mount = "transit", .key = key};
    struct keyring *k = NULL;
    struct tr_errbuf eb = {{0}};
    tr_err e = keys_open_vault(&vc, &k, &eb);
    if (e != TR_OK)
        fail_msg("keys_open_vault: %s", eb.msg);
    return k;
}

static int need_vault(void **state)
{
    (void)state;
    if (ADDR == NULL || ROOT == NULL) {
        fprintf(stderr, "no TERRACE_TEST_VAULT_ADDR: skipped "
                        "(tests/vault/run_vault.sh starts a Vault)\n");
        exit(77);
    }
    return 0;
}

static void test_wrap_round_trip(void **state)
{
    (void)state;
    struct keyring *k = open_token(ROOT, "terrace");
    assert_int_equal(strncmp(keys_id(k), "vault-terrace-", 14), 0);
    struct arena *a = arena_new();
    unsigned char dek[KEYS_DEK_LEN], back[KEYS_DEK_LEN];
    for (size_t i = 0; i < sizeof(dek); i++)
        dek[i] = (unsigned char)(i * 13 + 5);
    unsigned char *w = NULL;
    size_t wlen = 0;
    assert_int_equal(keys_wrap(k, a, dek, sizeof(dek), &w, &wlen, NULL), TR_OK);
    assert_true(wlen > 8 && memcmp(w, "vault:v", 7) == 0);
    /* the plaintext key is nowhere in what is stored */
    assert_null(memmem(w, wlen, dek, sizeof(dek)));
    assert_int_equal(
        keys_unwrap(k, keys_id(k), w, wlen, back, sizeof(back), NULL), TR_OK);
    assert_memory_equal(dek, back, sizeof(dek));
    assert_true(keys_is_current(k, keys_id(k), w, wlen));
    /* a changed character of the ciphertext: refused by Vault */
    unsigned char *bad = arena_memdup(a, w, wlen);
    bad[wlen - 3] = bad[wlen - 3] == 'A' ? 'B' : 'A';
    struct tr_errbuf eb = {{0}};
    assert_int_equal(
        keys_unwrap(k, keys_id(k), bad, wlen, back, sizeof(back), &eb),
        TR_ERR_CRYPTO);
    assert_non_null(strstr(eb.msg, "decrypt"));
    /* another key id, and something that is not transit ciphertext */
    assert_int_equal(keys_unwrap(k, "local-0011223344556677", w, wlen, back,
                                 sizeof(back), NULL),
                     TR_ERR_CRYPTO);
    assert_int_equal(keys_unwrap(k, keys_id(k), (const unsigned char *)"xx", 2,
                                 back, sizeof(back), NULL),
                     TR_ERR_CRYPTO);
    /* values and objects sealed through it */
    char *text = NULL, *plain = NULL;
    assert_int_equal(envelope_seal(k, a, "secret", 6, &text, NULL), TR_OK);
    assert_non_null(strstr(text, keys_id(k)));
    assert_int_equal(envelope_open(k, a, text, &plain, NULL, NULL), TR_OK);
    assert_string_equal(plain, "secret");
    arena_destroy(a);
    keys_close(k);
}

static void test_sealed_object(void **state)
{
    (void)state;
    struct keyring *k = open_token(ROOT, "terrace");
    char dir[] = "/tmp/terrace-kv-XXXXXX";
    assert_non_null(mkdtemp(dir));
    struct blob *b = NULL;
    assert_int_equal(blob_open_fs(dir, &b, NULL), TR_OK);
    blob_set_keys(b, k);
    static char data[200000];
    for (size_t i = 0; i < sizeof(data); i++)
        data[i] = (char)(i % 251);
    assert_int_equal(blob_put(b, "obj", data, sizeof(data), NULL), TR_OK);
    struct arena *a = arena_new();
    char *back = NULL;
    size_t got = 0;
    assert_int_equal(blob_get(b, a, "obj", sizeof(data), &back, &got, NULL),
                     TR_OK);
    assert_int_equal(got, sizeof(data));
    assert_memory_equal(back, data, sizeof(data));
    arena_destroy(a);
    blob_close(b);
    ut_rmtree(dir);
    keys_close(k);
}

static void test_rotation_and_derive(void **state)
{
    (void)state;
    char name[64];
    new_key(name, sizeof(name));
    struct keyring *k = open_token(ROOT, name);
    struct arena *a = arena_new();
    unsigned char d1[KEYS_DERIVED_LEN], d2[KEYS_DERIVED_LEN];
    unsigned char d3[KEYS_DERIVED_LEN];
    assert_int_equal(keys_derive(k, "url-signing", "salt", 4, d1, NULL), TR_OK);
    assert_int_equal(keys_derive(k, "url-signing", "salt2", 5, d3, NULL),
                     TR_OK);
    assert_memory_not_equal(d1, d3, sizeof(d1));
    unsigned char dek[KEYS_DEK_LEN] = {1, 2, 3}, back[KEYS_DEK_LEN];
    unsigned char *w1 = NULL, *w2 = NULL;
    size_t l1 = 0, l2 = 0;
    assert_int_equal(keys_wrap(k, a, dek, sizeof(dek), &w1, &l1, NULL), TR_OK);
    assert_int_equal(memcmp(w1, "vault:v1:", 9), 0);
    char path[256];
    snprintf(path, sizeof(path), "transit/keys/%s/rotate", name);
    json_decref(root_call("POST", path, "{}"));
    /* not seen until read again: then the old wrap is no longer current */
    assert_true(keys_is_current(k, keys_id(k), w1, l1));
    assert_int_equal(keys_refresh(k, NULL), TR_OK);
    assert_false(keys_is_current(k, keys_id(k), w1, l1));
    assert_int_equal(keys_wrap(k, a, dek, sizeof(dek), &w2, &l2, NULL), TR_OK);
    assert_int_equal(memcmp(w2, "vault:v2:", 9), 0);
    assert_true(keys_is_current(k, keys_id(k), w2, l2));
    assert_int_equal(
        keys_unwrap(k, keys_id(k), w1, l1, back, sizeof(back), NULL), TR_OK);
    assert_memory_equal(back, dek, sizeof(dek));
    /* derived keys stay what they were: version 1 is pinned */
    assert_int_equal(keys_derive(k, "url-signing", "salt", 4, d2, NULL), TR_OK);
    assert_memory_equal(d1, d2, sizeof(d1));
    /* another keyring on the same key derives the same */
    struct keyring *k2 = open_token(ROOT, name);
    assert_int_equal(keys_derive(k2, "url-signing", "salt", 4, d2, NULL),
                     TR_OK);
    assert_memory_equal(d1, d2, sizeof(d1));
    assert_string_equal(keys_id(k), keys_id(k2));
    keys_close(k2);
    arena_destroy(a);
    keys_close(k);
}

static void test_old_local_key(void **state)
{
    (void)state;
    unsigned char kek[KEYS_KEK_LEN];
    memset(kek, 0x42, sizeof(kek));
    struct keyring *local = NULL, *local2 = NULL;
    assert_int_equal(keys_open_bytes(kek, NULL, &local, NULL), TR_OK);
    assert_int_equal(keys_open_bytes(kek, NULL, &local2, NULL), TR_OK);
    struct arena *a = arena_new();
    char *old = NULL, *plain = NULL;
    assert_int_equal(envelope_seal(local, a, "old value", 9, &old, NULL),
                     TR_OK);
    struct keyring *k = open_token(ROOT, "terrace");
    /* without the old key: refused, naming the key */
    struct tr_errbuf eb = {{0}};
    assert_int_equal(envelope_open(k, a, old, &plain, NULL, &eb),
                     TR_ERR_CRYPTO);
    assert_non_null(strstr(eb.msg, keys_id(local)));
    assert_false(keys_holds(k, keys_id(local)));
    keys_add_old(k, local2);
    assert_true(keys_holds(k, keys_id(local)));
    assert_true(keys_holds(k, keys_id(k)));
    assert_int_equal(envelope_open(k, a, old, &plain, NULL, NULL), TR_OK);
    assert_string_equal(plain, "old value");
    /* new values go under Vault */
    char *fresh = NULL;
    assert_int_equal(envelope_seal(k, a, "new", 3, &fresh, NULL), TR_OK);
    assert_int_equal(strncmp(fresh + 5, "vault-", 6), 0);
    assert_int_equal(envelope_open(local, a, fresh, &plain, NULL, NULL),
                     TR_ERR_CRYPTO);
    keys_close(k);
    keys_close(local);
    arena_destroy(a);
}

static void test_approle(void **state)
{
    (void)state;
    const char *role = env("TERRACE_TEST_VAULT_ROLE_ID");
    const char *secret = env("TERRACE_TEST_VAULT_SECRET_ID");
    if (role == NULL || secret == NULL)
        skip();
    struct keys_vault_cfg vc = {
        .addr = ADDR, .role_id = role, .secret_id = secret, .key = "terrace"};
    struct keyring *k = NULL;
    struct tr_errbuf eb = {{0}};
    assert_int_equal(keys_open_vault(&vc, &k, &eb), TR_OK);
    struct arena *a = arena_new();
    char *text = NULL, *plain = NULL;
    assert_int_equal(envelope_seal(k, a, "approle", 7, &text, NULL), TR_OK);
    assert_int_equal(envelope_open(k, a, text, &plain, NULL, NULL), TR_OK);
    assert_string_equal(plain, "approle");
    /* the policy vault.sh gives the role allows what a node does */
    unsigned char d[KEYS_DERIVED_LEN];
    assert_int_equal(keys_derive(k, "url-signing", "s", 1, d, &eb), TR_OK);
    assert_int_equal(keys_refresh(k, &eb), TR_OK);
    keys_close(k);
    /* a wrong secret id: refused at open, saying so */
    vc.secret_id = "00000000-0000-0000-0000-000000000000";
    assert_int_equal(keys_open_vault(&vc, &k, &eb), TR_ERR_CONFIG);
    assert_non_null(strstr(eb.msg, "approle login refused"));
    assert_null(strstr(eb.msg, vc.secret_id));
    arena_destroy(a);
}

static void test_token_renewed(void **state)
{
    (void)state;
    /* a token living 6 s unless renewed, allowed to renew up to 60 s */
    json_t *r = root_call("POST", "auth/token/create",
                          "{\"ttl\":\"6s\",\"explicit_max_ttl\":\"60s\","
                          "\"renewable\":true}");
    const char *tok = json_string_value(
        json_object_get(json_object_get(r, "auth"), "client_token"));
    assert_non_null(tok);
    struct keyring *k = open_token(tok, "terrace");
    struct arena *a = arena_new();
    unsigned char dek[KEYS_DEK_LEN] = {9}, *w = NULL;
    size_t wlen = 0;
    /* past two thirds of the TTL: this use renews it */
    usleep(4500 * 1000);
    assert_int_equal(keys_wrap(k, a, dek, sizeof(dek), &w, &wlen, NULL), TR_OK);
    /* past the first TTL: works only because it was renewed */
    usleep(3000 * 1000);
    struct tr_errbuf eb = {{0}};
    tr_err e = keys_wrap(k, a, dek, sizeof(dek), &w, &wlen, &eb);
    if (e != TR_OK)
        fail_msg("after renewal: %s", eb.msg);
    keys_close(k);
    arena_destroy(a);
    json_decref(r);
}

static void test_open_refused(void **state)
{
    (void)state;
    struct keyring *k = NULL;
    struct tr_errbuf eb = {{0}};
    /* nothing listens there */
    struct keys_vault_cfg vc = {
        .addr = "http://127.0.0.1:9", .token = ROOT, .key = "terrace"};
    assert_int_equal(keys_open_vault(&vc, &k, &eb), TR_ERR_UNAVAILABLE);
    assert_non_null(strstr(eb.msg, "cannot reach vault at http://127.0.0.1:9"));
    /* no such key */
    vc.addr = ADDR;
    vc.key = "no-such-key";
    assert_int_equal(keys_open_vault(&vc, &k, &eb), TR_ERR_CONFIG);
    assert_non_null(strstr(eb.msg, "no transit key no-such-key"));
    /* a token Vault does not know */
    vc.key = "terrace";
    vc.token = "hvs.notatoken";
    assert_int_equal(keys_open_vault(&vc, &k, &eb), TR_ERR_CONFIG);
    assert_non_null(strstr(eb.msg, "refused the token"));
    assert_null(strstr(eb.msg, "hvs.notatoken"));
    /* settings */
    vc.addr = "127.0.0.1:8200";
    assert_int_equal(keys_open_vault(&vc, &k, &eb), TR_ERR_CONFIG);
    vc.addr = ADDR;
    vc.token = NULL;
    assert_int_equal(keys_open_vault(&vc, &k, &eb), TR_ERR_CONFIG);
    assert_non_null(strstr(eb.msg, "needs a token"));
}

int main(void)
{
    srand((unsigned)time(NULL) ^ (unsigned)getpid());
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_wrap_round_trip),
        cmocka_unit_test(test_sealed_object),
        cmocka_unit_test(test_rotation_and_derive),
        cmocka_unit_test(test_old_local_key),
        cmocka_unit_test(test_approle),
        cmocka_unit_test(test_token_renewed),
        cmocka_unit_test(test_open_refused),
    };
    int rc = cmocka_run_group_tests(tests, need_vault, NULL);
    curl_global_cleanup();
    return rc;
}
