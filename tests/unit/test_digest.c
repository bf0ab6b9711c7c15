/*
 * test_digest.c - unit tests for src/crypto/digest.c: SHA-256, MD5 and
 * HMAC-SHA256 against published vectors (FIPS 180-2, RFC 1321, RFC 4231),
 * streaming hashes, base64 (RFC 4648 vectors, round trips, rejection of
 * bad input) and the constant-time compare.
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "core/util.h"
#include "crypto/digest.h"

static void test_sha256_vectors(void **state)
{
    (void)state;
    struct arena *a = arena_new();
    assert_string_equal(
        digest_sha256_hex(a, "", 0),
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    assert_string_equal(
        digest_sha256_hex(a, "abc", 3),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    const char *m = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    assert_string_equal(
        digest_sha256_hex(a, m, strlen(m)),
        "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
    char *million = malloc(1000000);
    memset(million, 'a', 1000000);
    assert_string_equal(
        digest_sha256_hex(a, million, 1000000),
        "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
    free(million);
    arena_destroy(a);
}

static void test_md5_vectors(void **state)
{
    (void)state;
    struct arena *a = arena_new();
    assert_string_equal(digest_md5_hex(a, "", 0),
                        "d41d8cd98f00b204e9800998ecf8427e");
    assert_string_equal(digest_md5_hex(a, "abc", 3),
                        "900150983cd24fb0d6963f7d28e17f72");
    const char *fox = "The quick brown fox jumps over the lazy dog";
    assert_string_equal(digest_md5_hex(a, fox, strlen(fox)),
                        "9e107d9d372bb6826bd81d3542a419d6");
    /* binary input with NULs */
    assert_string_equal(digest_md5_hex(a, "\0", 1),
                        "93b885adfe0da089cdf634904fd59f71");
    arena_destroy(a);
}

static void test_hmac_vectors(void **state)
{
    (void)state;
    struct arena *a = arena_new();
    /* RFC 4231 test case 1 */
    unsigned char k1[20];
    memset(k1, 0x0b, sizeof(k1));
    assert_string_equal(
        digest_hmac_sha256_hex(a, k1, sizeof(k1), "Hi There", 8),
        "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
    /* test case 2 */
    const char *msg = "what do ya want for nothing?";
    assert_string_equal(
        digest_hmac_sha256_hex(a, "Jefe", 4, msg, strlen(msg)),
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
    /* test case 6: key longer than the block size */
    unsigned char k6[131];
    memset(k6, 0xaa, sizeof(k6));
    const char *m6 = "Test Using Larger Than Block-Size Key - Hash Key First";
    assert_string_equal(
        digest_hmac_sha256_hex(a, k6, sizeof(k6), m6, strlen(m6)),
        "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
    /* the key matters */
    assert_string_not_equal(digest_hmac_sha256_hex(a, "k1", 2, "m", 1),
                            digest_hmac_sha256_hex(a, "k2", 2, "m", 1));
    arena_destroy(a);
}

static void test_stream(void **state)
{
    (void)state;
    struct arena *a = arena_new();
    unsigned char data[10000];
    util_random(data, sizeof(data));
    size_t chunks[] = {0, 1, 63, 64, 65, 1000, 4096};
    for (size_t c = 0; c < sizeof(chunks) / sizeof(chunks[0]); c++) {
        struct digest_stream *d = digest_stream_new(a);
        size_t step = chunks[c] ? chunks[c] : sizeof(data);
        digest_stream_update(d, "", 0);
        for (size_t off = 0; off < sizeof(data); off += step) {
            size_t n = sizeof(data) - off < step ? sizeof(data) - off : step;
            digest_stream_update(d, data + off, n);
        }
        char *md5 = NULL, *sha = NULL;
        digest_stream_final(d, a, &md5, &sha);
        assert_string_equal(md5, digest_md5_hex(a, data, sizeof(data)));
        assert_string_equal(sha, digest_sha256_hex(a, data, sizeof(data)));
    }
    /* a stream never finished is still freed by the arena (ASan) */
    struct digest_stream *d = digest_stream_new(a);
    digest_stream_update(d, "x", 1);
    struct digest_stream *e = digest_stream_new(a);
    char *md5 = NULL, *sha = NULL;
    digest_stream_final(e, a, &md5, &sha);
    assert_string_equal(md5, "d41d8cd98f00b204e9800998ecf8427e");
    arena_destroy(a);
}

static void test_b64_vectors(void **state)
{
    (void)state;
    struct arena *a = arena_new();
    const char *plain[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
    const char *enc[] = {"",         "Zg==",     "Zm8=",    "Zm9v",
                         "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"};
    for (int i = 0; i < 7; i++) {
        assert_string_equal(digest_b64_encode(a, plain[i], strlen(plain[i])),
                            enc[i]);
        unsigned char *out = NULL;
        size_t n = 99;
        assert_int_equal(digest_b64_decode(a, enc[i], strlen(enc[i]), &out, &n),
                         TR_OK);
        assert_int_equal(n, strlen(plain[i]));
        assert_memory_equal(out, plain[i], n);
        assert_int_equal(out[n], '\0');
    }
    /* all 64 symbols and both high bits */
    const unsigned char hi[3] = {0xfb, 0xff, 0xbf};
    assert_string_equal(digest_b64_encode(a, hi, 3), "+/+/");
    arena_destroy(a);
}

static void test_b64_round_trip(void **state)
{
    (void)state;
    struct arena *a = arena_new();
    unsigned char data[300];
    util_random(data, sizeof(data));
    for (size_t len = 0; len <= sizeof(data); len++) {
        char *s = digest_b64_encode(a, data, len);
        assert_int_equal(strlen(s), 4 * ((len + 2) / 3));
        unsigned char *out = NULL;
        size_t n = 0;
        assert_int_equal(digest_b64_decode(a, s, strlen(s), &out, &n), TR_OK);
        assert_int_equal(n, len);
        if (len > 0)
            assert_memory_equal(out, data, len);
    }
    /* line breaks (MIME style) are skipped */
    const char *wrapped = "Zm9v\r\nYmFy\n";
    unsigned char *out = NULL;
    size_t n = 0;
    assert_int_equal(digest_b64_decode(a, wrapped, strlen(wrapped), &out, &n),
                     TR_OK);
    assert_int_equal(n, 6);
    assert_memory_equal(out, "foobar", 6);
    /* slen bounds the input: the rest of the string is not read */
    assert_int_equal(digest_b64_decode(a, "Zm9v!!!!", 4, &out, &n), TR_OK);
    assert_int_equal(n, 3);
    arena_destroy(a);
}

static void test_b64_rejects(void **state)
{
    (void)state;
    struct arena *a = arena_new();
    const char *bad[] = {
        "Zg=a",      /* data after padding */
        "Zg==Zg==",  /* padding in the middle */
        "Zm=9v",     /* padding in the middle */
        "=Zm9v",     /* padding first */
        "Zm9v!",     /* not in the alphabet */
        "Zm 9v",     /* space */
        "Zm9v\t",    /* tab */
        "Zm9v\x80",  /* high byte */
        "Z",         /* 6 bits: not a whole byte */
        "Zm9vY",     /* same, after whole groups */
        "Zg===",     /* three pads */
        "====",      /* only padding */
        "Zm9vYmE==", /* two pads where one byte of bits is left */
        "Zg=",       /* one pad where two are due */
        "Zm9v=",     /* pad after a whole group */
        "=",         /* a lone pad */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        unsigned char *out = (unsigned char *)"untouched";
        size_t n = 77;
        tr_err e = digest_b64_decode(a, bad[i], strlen(bad[i]), &out, &n);
        if (e != TR_ERR_INVALID)
            fail_msg("accepted bad base64 \"%s\"", bad[i]);
        assert_int_equal(n, 77);
        assert_string_equal((char *)out, "untouched");
    }
    /* an embedded NUL is not a base64 symbol */
    unsigned char *out = NULL;
    size_t n = 0;
    assert_int_equal(digest_b64_decode(a, "Zm\0v", 4, &out, &n),
                     TR_ERR_INVALID);
    arena_destroy(a);
}

static void test_equal(void **state)
{
    (void)state;
    assert_true(digest_equal("", ""));
    assert_true(digest_equal("abc123", "abc123"));
    assert_false(digest_equal("abc123", "abc124"));
    assert_false(digest_equal("abc", "abc1"));
    assert_false(digest_equal("abc1", "abc"));
    assert_false(digest_equal("", "a"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sha256_vectors),
        cmocka_unit_test(test_md5_vectors),
        cmocka_unit_test(test_hmac_vectors),
        cmocka_unit_test(test_stream),
        cmocka_unit_test(test_b64_vectors),
        cmocka_unit_test(test_b64_round_trip),
        cmocka_unit_test(test_b64_rejects),
        cmocka_unit_test(test_equal),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
