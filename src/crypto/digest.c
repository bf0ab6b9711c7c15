/*
 * digest.c - libcrypto wrappers for hashing, HMAC and base64.
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#include "crypto/digest.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <string.h>

static char *hex(struct arena *a, const unsigned char *p, size_t n)
{
    static const char digits[] = "0123456789abcdef";
    char *s = arena_alloc(a, n * 2 + 1);
    for (size_t i = 0; i < n; i++) {
        s[i * 2] = digits[p[i] >> 4];
        s[i * 2 + 1] = digits[p[i] & 15];
    }
    return s;
}

static char *hash_hex(struct arena *a, const EVP_MD *md, const void *p,
                      size_t n)
{
    unsigned char out[EVP_MAX_MD_SIZE];
    unsigned int olen = 0;
    if (EVP_Digest(p, n, out, &olen, md, NULL) != 1)
        return arena_strdup(a, "");
    return hex(a, out, olen);
}

char *digest_sha256_hex(struct arena *a, const void *p, size_t n)
{
    return hash_hex(a, EVP_sha256(), p, n);
}

char *digest_md5_hex(struct arena *a, const void *p, size_t n)
{
    return hash_hex(a, EVP_md5(), p, n);
}

char *digest_hmac_sha256_hex(struct arena *a, const void *key, size_t klen,
                             const void *msg, size_t n)
{
    unsigned char out[EVP_MAX_MD_SIZE];
    unsigned int olen = 0;
    if (HMAC(EVP_sha256(), key, (int)klen, msg, n, out, &olen) == NULL)
        return arena_strdup(a, "");
    return hex(a, out, olen);
}

char *digest_hmac_sha512_hex(struct arena *a, const void *key, size_t klen,
                             const void *msg, size_t n)
{
    unsigned char out[EVP_MAX_MD_SIZE];
    unsigned int olen = 0;
    if (HMAC(EVP_sha512(), key, (int)klen, msg, n, out, &olen) == NULL)
        return arena_strdup(a, "");
    return hex(a, out, olen);
}

struct digest_stream {
    EVP_MD_CTX *md5;
    EVP_MD_CTX *sha;
};

static void stream_free(void *p)
{
    struct digest_stream *d = p;
    EVP_MD_CTX_free(d->md5);
    EVP_MD_CTX_free(d->sha);
}

struct digest_stream *digest_stream_new(struct arena *a)
{
    struct digest_stream *d = arena_alloc(a, sizeof(*d));
    d->md5 = EVP_MD_CTX_new();
    d->sha = EVP_MD_CTX_new();
    arena_on_destroy(a, stream_free, d);
    EVP_DigestInit_ex(d->md5, EVP_md5(), NULL);
    EVP_DigestInit_ex(d->sha, EVP_sha256(), NULL);
    return d;
}

void digest_stream_update(struct digest_stream *d, const void *p, size_t n)
{
    EVP_DigestUpdate(d->md5, p, n);
    EVP_DigestUpdate(d->sha, p, n);
}

void digest_stream_md5(struct digest_stream *d, const void *p, size_t n)
{
    EVP_DigestUpdate(d->md5, p, n);
}

void digest_stream_sha256(struct digest_stream *d, const void *p, size_t n)
{
    EVP_DigestUpdate(d->sha, p, n);
}

static char *final_hex(EVP_MD_CTX *ctx, struct arena *a)
{
    unsigned char out[EVP_MAX_MD_SIZE];
    unsigned int olen = 0;
    EVP_DigestFinal_ex(ctx, out, &olen);
    return hex(a, out, olen);
}

char *digest_stream_md5_final(struct digest_stream *d, struct arena *a)
{
    return final_hex(d->md5, a);
}

char *digest_stream_sha256_final(struct digest_stream *d, struct arena *a)
{
    return final_hex(d->sha, a);
}

void digest_stream_final(struct digest_stream *d, struct arena *a,
                         char **md5_hex, char **sha256_hex)
{
    *md5_hex = final_hex(d->md5, a);
    *sha256_hex = final_hex(d->sha, a);
}

char *digest_b64_encode(struct arena *a, const void *p, size_t n)
{
    char *s = arena_alloc(a, 4 * ((n + 2) / 3) + 1);
    EVP_EncodeBlock((unsigned char *)s, p, (int)n);
    return s;
}

static int b64val(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+' || c == '-')
        return 62;
    if (c == '/' || c == '_')
        return 63;
    return -1;
}

tr_err digest_b64_decode(struct arena *a, const char *s, size_t slen,
                         unsigned char **out, size_t *outlen)
{
    unsigned char *o = arena_alloc(a, slen / 4 * 3 + 4);
    size_t n = 0;
    unsigned acc = 0;
    int bits = 0;
    size_t pad = 0;
    for (size_t i = 0; i < slen; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '\n' || c == '\r')
            continue;
        if (c == '=') {
            pad++;
            continue;
        }
        int v = b64val(c);
        if (v < 0 || pad > 0)
            return TR_ERR_INVALID;
        acc = (acc << 6) | (unsigned)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            o[n++] = (unsigned char)(acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    /* padding must account exactly for the leftover bits */
    if (pad > 2 || bits >= 6 || (pad > 0 && pad != (size_t)bits / 2))
        return TR_ERR_INVALID;
    o[n] = '\0';
    *out = o;
    *outlen = n;
    return TR_OK;
}

bool digest_equal(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la != lb)
        return false;
    return CRYPTO_memcmp(a, b, la) == 0;
}
