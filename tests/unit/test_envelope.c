/*
 * test_envelope.c - unit tests for src/crypto/envelope.c and keys.c:
 * round trips (empty, small, binary, large), tampering with each field of
 * the text, wrong keys (other id, same id with other bytes), malformed
 * text, the key file (creation mode, reuse, hex form, bad files), and
 * keys derived from the KEK (same inputs same key, any other input
 * another key, bad inputs refused).
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "crypto/envelope.h"
#include "crypto/keys.h"
#include "unit_util.h"

struct fx {
    struct arena *a;
    struct keyring *k;
};

static int setup(void **state)
{
    struct fx *fx = calloc(1, sizeof(*fx));
    unsigned char key[KEYS_KEK_LEN];
    for (int i = 0; i < KEYS_KEK_LEN; i++)
        key[i] = (unsigned char)(i * 7 + 1);
    fx->a = arena_new();
    if (keys_open_bytes(key, NULL, &fx->k, NULL) != TR_OK)
        return -1;
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    struct fx *fx = *state;
    keys_close(fx->k);
    arena_destroy(fx->a);
    free(fx);
    return 0;
}

static void round_trip(struct fx *fx, const void *p, size_t n)
{
    char *text = NULL, *back = NULL;
    size_t len = 99;
    assert_int_equal(envelope_seal(fx->k, fx->a, p, n, &text, NULL), TR_OK);
    assert_true(envelope_is_sealed(text));
    assert_int_equal(envelope_open(fx->k, fx->a, text, &back, &len, NULL),
                     TR_OK);
    assert_int_equal(len, n);
    assert_memory_equal(back, p, n);
    assert_int_equal(back[n], '\0');
}

static void test_round_trip(void **state)
{
    struct fx *fx = *state;
    round_trip(fx, "", 0);
    round_trip(fx, "hunter2", 7);
    const unsigned char bin[] = {0, 1, 2, 0xff, ':', 0, '\n'};
    round_trip(fx, bin, sizeof(bin));
    /* large: 5 MB of a pattern */
    size_t big = 5u * 1024 * 1024;
    char *p = malloc(big);
    for (size_t i = 0; i < big; i++)
        p[i] = (char)(i * 31 + (i >> 9));
    round_trip(fx, p, big);
    free(p);
}

static void test_format_and_freshness(void **state)
{
    struct fx *fx = *state;
    char *t1 = NULL, *t2 = NULL;
    assert_int_equal(envelope_seal(fx->k, fx->a, "same", 4, &t1, NULL), TR_OK);
    assert_int_equal(envelope_seal(fx->k, fx->a, "same", 4, &t2, NULL), TR_OK);
    /* fresh data key and nonce: equal values never look equal */
    assert_string_not_equal(t1, t2);
    assert_null(strstr(t1, "same"));
    char prefix[128];
    snprintf(prefix, sizeof(prefix), "tre1:%s:", keys_id(fx->k));
    assert_true(strncmp(t1, prefix, strlen(prefix)) == 0);
    int colons = 0;
    for (const char *p = t1; *p; p++)
        colons += *p == ':';
    assert_int_equal(colons, 4);
    assert_true(strncmp(keys_id(fx->k), "local-", 6) == 0);
    assert_int_equal(strlen(keys_id(fx->k)), 6 + 16);
}

/* A different base64 character at position i of text (same alphabet). */
static char *flip(struct arena *a, const char *text, size_t i)
{
    char *t = arena_strdup(a, text);
    t[i] = t[i] == 'A' ? 'B' : 'A';
    return t;
}

static void test_tamper_each_part(void **state)
{
    struct fx *fx = *state;
    char *text = NULL, *out = NULL;
    assert_int_equal(
        envelope_seal(fx->k, fx->a, "secret value", 12, &text, NULL), TR_OK);
    /* field starts: 0 "tre1", 1 kek id, 2 wrapped, 3 nonce, 4 body */
    size_t start[5] = {0};
    int f = 1;
    for (size_t i = 0; text[i] && f < 5; i++)
        if (text[i] == ':')
            start[f++] = i + 1;
    struct tr_errbuf eb = {{0}};
    /* the version tag */
    char *t = arena_strdup(fx->a, text);
    t[3] = '2';
    assert_int_equal(envelope_open(fx->k, fx->a, t, &out, NULL, &eb),
                     TR_ERR_CRYPTO);
    /* the key id: unknown key */
    t = arena_strdup(fx->a, text);
    t[start[1] + 6] = t[start[1] + 6] == '0' ? '1' : '0';
    assert_int_equal(envelope_open(fx->k, fx->a, t, &out, NULL, &eb),
                     TR_ERR_CRYPTO);
    /* first, middle and last data character of wrapped, nonce, body */
    for (int k = 2; k < 5; k++) {
        size_t end = k < 4 ? start[k + 1] - 1 : strlen(text);
        while (end > start[k] && text[end - 1] == '=')
            end--;
        size_t pos[3] = {start[k], (start[k] + end) / 2, end - 2};
        for (int j = 0; j < 3; j++) {
            t = flip(fx->a, text, pos[j]);
            eb.msg[0] = '\0';
            assert_int_equal(envelope_open(fx->k, fx->a, t, &out, NULL, &eb),
                             TR_ERR_CRYPTO);
            assert_null(strstr(eb.msg, "secret"));
        }
    }
    /* truncations and extra fields */
    t = arena_strndup(fx->a, text, strlen(text) - 4);
    assert_int_equal(envelope_open(fx->k, fx->a, t, &out, NULL, NULL),
                     TR_ERR_CRYPTO);
    t = arena_printf(fx->a, "%s:AAAA", text);
    assert_int_equal(envelope_open(fx->k, fx->a, t, &out, NULL, NULL),
                     TR_ERR_CRYPTO);
    /* swapping the body of another value under the same key */
    char *other = NULL;
    assert_int_equal(
        envelope_seal(fx->k, fx->a, "other value!", 12, &other, NULL), TR_OK);
    /* header of text + nonce/body of other */
    size_t ostart3 = 0;
    int cnt = 0;
    for (size_t i = 0; other[i]; i++)
        if (other[i] == ':' && ++cnt == 3)
            ostart3 = i + 1;
    t = arena_printf(fx->a, "%.*s%s", (int)start[3], text, other + ostart3);
    assert_int_equal(envelope_open(fx->k, fx->a, t, &out, NULL, NULL),
                     TR_ERR_CRYPTO);
    /* and the original still opens */
    assert_int_equal(envelope_open(fx->k, fx->a, text, &out, NULL, NULL),
                     TR_OK);
    assert_string_equal(out, "secret value");
}

static void test_wrong_kek(void **state)
{
    struct fx *fx = *state;
    char *text = NULL, *out = NULL;
    assert_int_equal(envelope_seal(fx->k, fx->a, "v", 1, &text, NULL), TR_OK);
    unsigned char key[KEYS_KEK_LEN];
    memset(key, 0x42, sizeof(key));
    /* another key: another id, refused before any decryption */
    struct keyring *other = NULL;
    assert_int_equal(keys_open_bytes(key, NULL, &other, NULL), TR_OK);
    assert_string_not_equal(keys_id(other), keys_id(fx->k));
    struct tr_errbuf eb = {{0}};
    assert_int_equal(envelope_open(other, fx->a, text, &out, NULL, &eb),
                     TR_ERR_CRYPTO);
    assert_non_null(strstr(eb.msg, keys_id(fx->k)));
    keys_close(other);
    /* another key under the same id: authentication fails */
    assert_int_equal(keys_open_bytes(key, keys_id(fx->k), &other, NULL), TR_OK);
    assert_int_equal(envelope_open(other, fx->a, text, &out, NULL, NULL),
                     TR_ERR_CRYPTO);
    keys_close(other);
    /* bad explicit ids */
    assert_int_equal(keys_open_bytes(key, "a:b", &other, NULL), TR_ERR_CONFIG);
    assert_int_equal(keys_open_bytes(key, "", &other, NULL), TR_ERR_CONFIG);
}

static void test_malformed(void **state)
{
    struct fx *fx = *state;
    char *out = NULL;
    const char *bad[] = {
        "",
        "plain text",
        "tre1:",
        "tre1::::",
        "tre1:x:AAAA:AAAA:AAAA",
        "tre1:local-0000000000000000:!!:AAAA:AAAA",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(envelope_open(fx->k, fx->a, bad[i], &out, NULL, NULL),
                         TR_ERR_CRYPTO);
    assert_int_equal(envelope_open(fx->k, fx->a, NULL, &out, NULL, NULL),
                     TR_ERR_CRYPTO);
    assert_false(envelope_is_sealed("hello"));
    assert_false(envelope_is_sealed(NULL));
}

static void test_aead_primitive(void **state)
{
    (void)state;
    unsigned char key[32] = {1}, buf[5 + ENVELOPE_OVERHEAD], back[5];
    assert_int_equal(envelope_aead_seal(key, "ad", 2, "hello", 5, buf, NULL),
                     TR_OK);
    assert_int_equal(
        envelope_aead_open(key, "ad", 2, buf, sizeof(buf), back, NULL), TR_OK);
    assert_memory_equal(back, "hello", 5);
    /* other associated data */
    assert_int_equal(
        envelope_aead_open(key, "ae", 2, buf, sizeof(buf), back, NULL),
        TR_ERR_CRYPTO);
    /* too short to hold nonce and tag */
    assert_int_equal(envelope_aead_open(key, NULL, 0, buf, 10, back, NULL),
                     TR_ERR_CRYPTO);
}

static void test_key_file(void **state)
{
    struct fx *fx = *state;
    char dir[64], path[128];
    assert_true(ut_mkdtemp(dir, sizeof(dir), "test_envelope"));
    snprintf(path, sizeof(path), "%s/kek", dir);
    struct keyring *k1 = NULL, *k2 = NULL;
    assert_int_equal(keys_open_file(path, &k1, NULL), TR_OK);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(st.st_size, KEYS_KEK_LEN);
    /* only the key is left behind, no temporary files */
    assert_int_equal(ut_count_entries(dir), 1);
    /* opened again: the same key */
    assert_int_equal(keys_open_file(path, &k2, NULL), TR_OK);
    assert_string_equal(keys_id(k1), keys_id(k2));
    char *text = NULL, *out = NULL;
    assert_int_equal(envelope_seal(k1, fx->a, "x", 1, &text, NULL), TR_OK);
    assert_int_equal(envelope_open(k2, fx->a, text, &out, NULL, NULL), TR_OK);
    keys_close(k2);
    /* the hex form names the same key */
    int fd = open(path, O_RDONLY);
    unsigned char raw[KEYS_KEK_LEN];
    assert_int_equal(read(fd, raw, sizeof(raw)), KEYS_KEK_LEN);
    close(fd);
    char hexpath[160], hex[KEYS_KEK_LEN * 2 + 2];
    for (int i = 0; i < KEYS_KEK_LEN; i++)
        snprintf(hex + 2 * i, 3, "%02x", raw[i]);
    strcat(hex, "\n");
    snprintf(hexpath, sizeof(hexpath), "%s/hexkek", dir);
    assert_true(ut_write_file(hexpath, hex));
    chmod(hexpath, 0600);
    assert_int_equal(keys_open_file(hexpath, &k2, NULL), TR_OK);
    assert_string_equal(keys_id(k1), keys_id(k2));
    keys_close(k2);
    /* readable by others: refused */
    chmod(hexpath, 0644);
    assert_int_equal(keys_open_file(hexpath, &k2, NULL), TR_ERR_CONFIG);
    /* wrong length: refused */
    assert_true(ut_write_file(hexpath, "short"));
    chmod(hexpath, 0600);
    assert_int_equal(keys_open_file(hexpath, &k2, NULL), TR_ERR_CONFIG);
    /* a directory that does not exist */
    assert_int_equal(keys_open_file("/nonexistent-dir/kek", &k2, NULL),
                     TR_ERR_IO);
    keys_close(k1);
    keys_close(NULL);
    assert_int_equal(ut_rmtree(dir), 0);
}

static void test_derive(void **state)
{
    struct fx *fx = *state;
    unsigned char k1[KEYS_DERIVED_LEN], k2[KEYS_DERIVED_LEN];
    const unsigned char zero[KEYS_DERIVED_LEN] = {0};
    assert_int_equal(keys_derive(fx->k, "url-signing", "salt", 4, k1, NULL),
                     TR_OK);
    assert_memory_not_equal(k1, zero, sizeof(k1));
    /* the same KEK, purpose and salt: the same key (every node) */
    unsigned char kek[KEYS_KEK_LEN];
    for (int i = 0; i < KEYS_KEK_LEN; i++)
        kek[i] = (unsigned char)(i * 7 + 1); /* setup()'s key */
    struct keyring *same = NULL, *other = NULL;
    assert_int_equal(keys_open_bytes(kek, "another-id", &same, NULL), TR_OK);
    assert_int_equal(keys_derive(same, "url-signing", "salt", 4, k2, NULL),
                     TR_OK);
    assert_memory_equal(k1, k2, sizeof(k1));
    /* another KEK, purpose or salt: another key */
    kek[0] ^= 1;
    assert_int_equal(keys_open_bytes(kek, NULL, &other, NULL), TR_OK);
    assert_int_equal(keys_derive(other, "url-signing", "salt", 4, k2, NULL),
                     TR_OK);
    assert_memory_not_equal(k1, k2, sizeof(k1));
    assert_int_equal(keys_derive(fx->k, "url-signinG", "salt", 4, k2, NULL),
                     TR_OK);
    assert_memory_not_equal(k1, k2, sizeof(k1));
    assert_int_equal(keys_derive(fx->k, "url-signing", "salT", 4, k2, NULL),
                     TR_OK);
    assert_memory_not_equal(k1, k2, sizeof(k1));
    /* purpose and salt cannot run into each other */
    assert_int_equal(keys_derive(fx->k, "url", "-signing\nsalt", 13, k2, NULL),
                     TR_OK);
    assert_memory_not_equal(k1, k2, sizeof(k1));
    /* the derived key is not the KEK */
    assert_memory_not_equal(k1, kek, sizeof(k1));
    /* bad inputs: refused, out zeroed */
    char longp[KEYS_PURPOSE_MAX + 2];
    memset(longp, 'p', sizeof(longp) - 1);
    longp[sizeof(longp) - 1] = '\0';
    unsigned char big[KEYS_SALT_MAX + 1] = {0};
    const char *purposes[] = {"", "a\nb", longp, NULL};
    for (int i = 0; i < 4; i++) {
        memset(k2, 0xaa, sizeof(k2));
        assert_int_equal(keys_derive(fx->k, purposes[i], "s", 1, k2, NULL),
                         TR_ERR_INTERNAL);
        assert_memory_equal(k2, zero, sizeof(k2));
    }
    assert_int_equal(keys_derive(fx->k, "p", "s", 0, k2, NULL),
                     TR_ERR_INTERNAL);
    assert_int_equal(keys_derive(fx->k, "p", NULL, 1, k2, NULL),
                     TR_ERR_INTERNAL);
    assert_int_equal(keys_derive(fx->k, "p", big, sizeof(big), k2, NULL),
                     TR_ERR_INTERNAL);
    assert_int_equal(keys_derive(fx->k, "p", big, sizeof(big) - 1, k2, NULL),
                     TR_OK);
    keys_close(same);
    keys_close(other);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_format_and_freshness, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_tamper_each_part, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wrong_kek, setup, teardown),
        cmocka_unit_test_setup_teardown(test_malformed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_aead_primitive, setup, teardown),
        cmocka_unit_test_setup_teardown(test_key_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_derive, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
