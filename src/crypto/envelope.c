/*
 * envelope.c - AES-256-GCM envelope encryption (see envelope.h for the
 * text format and its guarantees).
 *
 * Sealing: a fresh DEK from the kernel's random source, wrapped by the
 * keyring; the header "tre1:<kek-id>:<b64 wrapped DEK>" is built first and
 * passed as associated data to the value's encryption.  Opening reverses
 * the steps and checks everything before returning a byte.  DEKs live on
 * the stack and are wiped with OPENSSL_cleanse() on every path; an opened
 * plaintext is wiped when the arena holding it is destroyed.
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#include "crypto/envelope.h"

#include <limits.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <string.h>

#include "core/util.h"
#include "crypto/digest.h"

/* ---- AEAD primitive ---------------------------------------------------- */

tr_err envelope_aead_seal(const unsigned char key[32], const void *aad,
                          size_t aadlen, const void *in, size_t n,
                          unsigned char *out, struct tr_errbuf *eb)
{
    if (n > ENVELOPE_MAX_PLAIN || aadlen > INT_MAX)
        return tr_fail(eb, TR_ERR_TOO_LARGE, "value too large to encrypt");
    unsigned char *nonce = out;
    unsigned char *ct = out + ENVELOPE_NONCE_LEN;
    unsigned char *tag = ct + n;
    util_random(nonce, ENVELOPE_NONCE_LEN);
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    int len = 0, fin = 0;
    bool ok =
        ctx != NULL &&
        EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, key, nonce) == 1 &&
        (aadlen == 0 ||
         EVP_EncryptUpdate(ctx, NULL, &len, aad, (int)aadlen) == 1) &&
        (n == 0 || EVP_EncryptUpdate(ctx, ct, &len, in, (int)n) == 1) &&
        EVP_EncryptFinal_ex(ctx, ct + (n == 0 ? 0 : len), &fin) == 1 &&
        EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, ENVELOPE_TAG_LEN, tag) ==
            1;
    EVP_CIPHER_CTX_free(ctx);
    if (!ok) {
        OPENSSL_cleanse(out, n + ENVELOPE_OVERHEAD);
        return tr_fail(eb, TR_ERR_CRYPTO, "encryption failed");
    }
    return TR_OK;
}

tr_err envelope_aead_open(const unsigned char key[32], const void *aad,
                          size_t aadlen, const unsigned char *in, size_t n,
                          unsigned char *out, struct tr_errbuf *eb)
{
    if (n < ENVELOPE_OVERHEAD)
        return tr_fail(eb, TR_ERR_CRYPTO, "encrypted value is truncated");
    size_t ctlen = n - ENVELOPE_OVERHEAD;
    if (ctlen > ENVELOPE_MAX_PLAIN || aadlen > INT_MAX)
        return tr_fail(eb, TR_ERR_CRYPTO, "encrypted value too large");
    const unsigned char *nonce = in;
    const unsigned char *ct = in + ENVELOPE_NONCE_LEN;
    unsigned char tag[ENVELOPE_TAG_LEN];
    memcpy(tag, ct + ctlen, sizeof(tag));
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    int len = 0, fin = 0;
    bool ok =
        ctx != NULL &&
        EVP_DecryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, key, nonce) == 1 &&
        (aadlen == 0 ||
         EVP_DecryptUpdate(ctx, NULL, &len, aad, (int)aadlen) == 1) &&
        (ctlen == 0 ||
         EVP_DecryptUpdate(ctx, out, &len, ct, (int)ctlen) == 1) &&
        EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, ENVELOPE_TAG_LEN, tag) ==
            1 &&
        EVP_DecryptFinal_ex(ctx, out + (ctlen == 0 ? 0 : len), &fin) == 1;
    EVP_CIPHER_CTX_free(ctx);
    if (!ok) {
        if (ctlen > 0)
            OPENSSL_cleanse(out, ctlen);
        return tr_fail(eb, TR_ERR_CRYPTO,
                       "encrypted value failed authentication");
    }
    return TR_OK;
}

/* ---- the text format --------------------------------------------------- */

bool envelope_is_sealed(const char *text)
{
    return text != NULL &&
           strncmp(text, ENVELOPE_PREFIX, strlen(ENVELOPE_PREFIX)) == 0;
}

tr_err envelope_seal(const struct keyring *keys, struct arena *a,
                     const void *plaintext, size_t len, char **out,
                     struct tr_errbuf *eb)
{
    if (len > ENVELOPE_MAX_PLAIN)
        return tr_fail(eb, TR_ERR_TOO_LARGE, "value too large to encrypt");
    unsigned char dek[KEYS_DEK_LEN];
    unsigned char *wrapped = NULL;
    size_t wlen = 0;
    util_random(dek, sizeof(dek));
    tr_err e = keys_wrap(keys, a, dek, sizeof(dek), &wrapped, &wlen, eb);
    if (e != TR_OK)
        goto fail;
    char *header = arena_printf(a, ENVELOPE_PREFIX "%s:%s", keys_id(keys),
                                digest_b64_encode(a, wrapped, wlen));
    unsigned char *sealed = arena_alloc(a, len + ENVELOPE_OVERHEAD);
    e = envelope_aead_seal(dek, header, strlen(header), plaintext, len, sealed,
                           eb);
    if (e != TR_OK)
        goto fail;
    *out = arena_printf(a, "%s:%s:%s", header,
                        digest_b64_encode(a, sealed, ENVELOPE_NONCE_LEN),
                        digest_b64_encode(a, sealed + ENVELOPE_NONCE_LEN,
                                          len + ENVELOPE_TAG_LEN));
fail:
    OPENSSL_cleanse(dek, sizeof(dek));
    return e;
}

/* Wipes a plaintext when its arena goes away. */
struct wipe {
    void *p;
    size_t n;
};

static void wipe(void *ptr)
{
    struct wipe *w = ptr;
    OPENSSL_cleanse(w->p, w->n);
}

/* Splits text into its five ':'-separated fields (in a copy in a). */
static bool split(struct arena *a, const char *text, char *field[5])
{
    char *copy = arena_strdup(a, text);
    char *p = copy;
    for (int i = 0; i < 5; i++) {
        field[i] = p;
        char *colon = strchr(p, ':');
        if (i < 4) {
            if (colon == NULL)
                return false;
            *colon = '\0';
            p = colon + 1;
        } else if (colon != NULL) {
            return false;
        }
    }
    return strcmp(field[0], "tre1") == 0 && field[1][0] != '\0';
}

static bool b64(struct arena *a, const char *s, unsigned char **out, size_t *n)
{
    return digest_b64_decode(a, s, strlen(s), out, n) == TR_OK;
}

tr_err envelope_open(const struct keyring *keys, struct arena *a,
                     const char *text, char **out, size_t *len,
                     struct tr_errbuf *eb)
{
    char *f[5];
    unsigned char *wrapped = NULL, *nonce = NULL, *body = NULL;
    size_t wlen = 0, nlen = 0, blen = 0;
    if (text == NULL || !split(a, text, f) || !b64(a, f[2], &wrapped, &wlen) ||
        !b64(a, f[3], &nonce, &nlen) || !b64(a, f[4], &body, &blen) ||
        nlen != ENVELOPE_NONCE_LEN || blen < ENVELOPE_TAG_LEN)
        return tr_fail(eb, TR_ERR_CRYPTO, "malformed encrypted value");
    unsigned char dek[KEYS_DEK_LEN];
    tr_err e = keys_unwrap(keys, f[1], wrapped, wlen, dek, sizeof(dek), eb);
    if (e != TR_OK)
        return e;
    /* the header as sealed: the prefix, the key id and the wrapped key */
    size_t hlen = strlen("tre1:") + strlen(f[1]) + 1 + strlen(f[2]);
    unsigned char *sealed = arena_alloc(a, nlen + blen);
    memcpy(sealed, nonce, nlen);
    memcpy(sealed + nlen, body, blen);
    size_t plen = blen - ENVELOPE_TAG_LEN;
    char *plain = arena_alloc(a, plen + 1);
    struct wipe *w = arena_alloc(a, sizeof(*w));
    *w = (struct wipe){.p = plain, .n = plen + 1};
    arena_on_destroy(a, wipe, w);
    e = envelope_aead_open(dek, text, hlen, sealed, nlen + blen,
                           (unsigned char *)plain, eb);
    OPENSSL_cleanse(dek, sizeof(dek));
    if (e != TR_OK)
        return e;
    plain[plen] = '\0';
    *out = plain;
    if (len != NULL)
        *len = plen;
    return TR_OK;
}
