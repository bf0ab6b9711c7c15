/*
 * sealed.c - chunked AES-256-GCM objects; the format is in sealed.h.
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#include "crypto/sealed.h"

#include <openssl/crypto.h>
#include <string.h>

#include "core/file.h"
#include "core/util.h"
#include "crypto/envelope.h"

#define SEALED_WRAP_MAX 512
#define HEADER_MAX                                                          \
    (SEALED_MAGIC_LEN + 1 + KEYS_ID_MAX + 2 + SEALED_WRAP_MAX + 8)
#define SEALED_CHUNK_OUT (SEALED_CHUNK + ENVELOPE_OVERHEAD)

bool sealed_is(const void *p, size_t n)
{
    return n >= SEALED_MAGIC_LEN && memcmp(p, SEALED_MAGIC, SEALED_MAGIC_LEN) == 0;
}

static void put_be(unsigned char *p, uint64_t v, int bytes)
{
    for (int i = bytes - 1; i >= 0; i--, v >>= 8)
        p[i] = (unsigned char)(v & 0xff);
}

static uint64_t get_be(const unsigned char *p, int bytes)
{
    uint64_t v = 0;
    for (int i = 0; i < bytes; i++)
        v = (v << 8) | p[i];
    return v;
}

static uint64_t chunks_of(uint64_t len)
{
    return len == 0 ? 1 : (len + SEALED_CHUNK - 1) / SEALED_CHUNK;
}

/* The associated data of chunk i: the header, then i. */
static void set_index(unsigned char *aad, size_t hlen, uint64_t i)
{
    put_be(aad + hlen, i, 8);
}

tr_err sealed_seal(const struct keyring *k, int in_fd, const void *mem,
                   uint64_t len, int out_fd, struct tr_errbuf *eb)
{
    unsigned char dek[KEYS_DEK_LEN];
    unsigned char aad[HEADER_MAX + 8];
    util_random(dek, sizeof(dek));
    struct arena *a = arena_new();
    unsigned char *wrapped = NULL, *in = NULL, *out = NULL;
    size_t wlen = 0, hlen = 0;
    tr_err e = keys_wrap(k, a, dek, sizeof(dek), &wrapped, &wlen, eb);
    const char *id = keys_id(k);
    size_t idlen = strlen(id);
    if (e == TR_OK && (idlen == 0 || idlen > KEYS_ID_MAX ||
                       wlen > SEALED_WRAP_MAX))
        e = tr_fail(eb, TR_ERR_CRYPTO, "unusable key id or wrapped key");
    if (e == TR_OK) {
        memcpy(aad, SEALED_MAGIC, SEALED_MAGIC_LEN);
        hlen = SEALED_MAGIC_LEN;
        aad[hlen++] = (unsigned char)idlen;
        memcpy(aad + hlen, id, idlen);
        hlen += idlen;
        put_be(aad + hlen, wlen, 2);
        hlen += 2;
        memcpy(aad + hlen, wrapped, wlen);
        hlen += wlen;
        put_be(aad + hlen, len, 8);
        hlen += 8;
        e = file_write_exact(out_fd, aad, hlen, eb);
    }
    if (e == TR_OK) {
        in = arena_alloc(a, SEALED_CHUNK);
        out = arena_alloc(a, SEALED_CHUNK_OUT);
    }
    uint64_t n = chunks_of(len), done = 0;
    for (uint64_t i = 0; e == TR_OK && i < n; i++) {
        size_t m = len - done > SEALED_CHUNK ? SEALED_CHUNK
                                             : (size_t)(len - done);
        const unsigned char *src = in;
        if (in_fd >= 0)
            e = file_read_exact(in_fd, in, m, eb);
        else
            src = (const unsigned char *)mem + done;
        set_index(aad, hlen, i);
        if (e == TR_OK)
            e = envelope_aead_seal(dek, aad, hlen + 8, src, m, out, eb);
        if (e == TR_OK)
            e = file_write_exact(out_fd, out, m + ENVELOPE_OVERHEAD, eb);
        done += m;
    }
    OPENSSL_cleanse(dek, sizeof(dek));
    if (in != NULL)
        OPENSSL_cleanse(in, SEALED_CHUNK);
    arena_destroy(a);
    return e;
}

tr_err sealed_open(const struct keyring *k, int in_fd, uint64_t in_size,
                   int out_fd, uint64_t *plain_len, struct tr_errbuf *eb)
{
    unsigned char aad[HEADER_MAX + 8];
    unsigned char dek[KEYS_DEK_LEN];
    char id[KEYS_ID_MAX + 1];
    size_t hlen = SEALED_MAGIC_LEN + 1;
    /* magic and the key id's length, the id and the wrapped key's length,
     * the wrapped key and the plaintext's length */
    tr_err e = in_size < hlen ? tr_fail(eb, TR_ERR_CRYPTO, "truncated object")
                              : file_read_exact(in_fd, aad, hlen, eb);
    size_t idlen = aad[SEALED_MAGIC_LEN];
    if (e == TR_OK && (!sealed_is(aad, hlen) || idlen == 0 ||
                       idlen > KEYS_ID_MAX || in_size < hlen + idlen + 2))
        e = tr_fail(eb, TR_ERR_CRYPTO, "malformed object header");
    if (e == TR_OK)
        e = file_read_exact(in_fd, aad + hlen, idlen + 2, eb);
    size_t wlen = 0;
    if (e == TR_OK) {
        memcpy(id, aad + hlen, idlen);
        id[idlen] = '\0';
        hlen += idlen;
        wlen = (size_t)get_be(aad + hlen, 2);
        hlen += 2;
        if (wlen == 0 || wlen > SEALED_WRAP_MAX || in_size < hlen + wlen + 8)
            e = tr_fail(eb, TR_ERR_CRYPTO, "malformed object header");
    }
    if (e == TR_OK)
        e = file_read_exact(in_fd, aad + hlen, wlen + 8, eb);
    uint64_t len = 0;
    if (e == TR_OK) {
        const unsigned char *wrapped = aad + hlen;
        hlen += wlen;
        len = get_be(aad + hlen, 8);
        hlen += 8;
        /* the size the header promises, chunk by chunk */
        uint64_t n = chunks_of(len);
        if (len > in_size ||
            in_size - hlen != len + n * (uint64_t)ENVELOPE_OVERHEAD)
            e = tr_fail(eb, TR_ERR_CRYPTO,
                        "object size does not match its header");
        if (e == TR_OK)
            e = keys_unwrap(k, id, wrapped, wlen, dek, sizeof(dek), eb);
    }
    unsigned char *in = NULL, *out = NULL;
    struct arena *a = arena_new();
    if (e == TR_OK) {
        in = arena_alloc(a, SEALED_CHUNK_OUT);
        out = arena_alloc(a, SEALED_CHUNK);
    }
    uint64_t n = e == TR_OK ? chunks_of(len) : 0, done = 0;
    for (uint64_t i = 0; e == TR_OK && i < n; i++) {
        size_t m = len - done > SEALED_CHUNK ? SEALED_CHUNK
                                             : (size_t)(len - done);
        e = file_read_exact(in_fd, in, m + ENVELOPE_OVERHEAD, eb);
        set_index(aad, hlen, i);
        if (e == TR_OK)
            e = envelope_aead_open(dek, aad, hlen + 8, in,
                                   m + ENVELOPE_OVERHEAD, out, eb);
        if (e == TR_OK)
            e = file_write_exact(out_fd, out, m, eb);
        done += m;
    }
    OPENSSL_cleanse(dek, sizeof(dek));
    if (out != NULL)
        OPENSSL_cleanse(out, SEALED_CHUNK);
    arena_destroy(a);
    if (e == TR_OK)
        *plain_len = len;
    return e;
}
