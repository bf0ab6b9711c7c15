/*
 * sealed.c - chunked AES-256-GCM objects; the format is in sealed.h.
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#include "crypto/sealed.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/file.h"
#include "core/util.h"
#include "crypto/envelope.h"

#define SEALED_WRAP_MAX 512
#define HEADER_MAX                                                             \
    (SEALED_MAGIC_LEN + 1 + KEYS_ID_MAX + 2 + SEALED_WRAP_MAX + 8)
#define SEALED_CHUNK_OUT (SEALED_CHUNK + ENVELOPE_OVERHEAD)
/* Sealed chunks a sequential reader fetches at once, at most: one read
 * of ~512 KiB instead of eight of 64 KiB, so that a remote backend's
 * stream (blob_http.c) hands its bytes straight into this buffer instead
 * of through its spill, one copy fewer per byte */
#define AHEAD_MAX 8

bool sealed_is(const void *p, size_t n)
{
    return n >= SEALED_MAGIC_LEN &&
           memcmp(p, SEALED_MAGIC, SEALED_MAGIC_LEN) == 0;
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

struct sealed_sealer {
    sealed_source_fn src;
    void *src_ctx;
    uint64_t len;     /* plaintext bytes */
    uint64_t done;    /* plaintext bytes sealed so far */
    uint64_t next;    /* the next chunk to seal */
    bool src_checked; /* src was seen to end at len */
    size_t hlen;
    unsigned char aad[HEADER_MAX + 8];
    unsigned char dek[KEYS_DEK_LEN];
    unsigned char in[SEALED_CHUNK];
    unsigned char out[SEALED_CHUNK_OUT]; /* bytes to hand out */
    size_t out_len, out_pos;
};

tr_err sealed_sealer_open(const struct keyring *k, uint64_t len,
                          sealed_source_fn src, void *src_ctx,
                          struct sealed_sealer **out, uint64_t *sealed_len,
                          struct tr_errbuf *eb)
{
    struct sealed_sealer *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return tr_fail(eb, TR_ERR_NOMEM, "out of memory");
    s->src = src;
    s->src_ctx = src_ctx;
    s->len = len;
    util_random(s->dek, sizeof(s->dek));
    struct arena *a = arena_new();
    unsigned char *wrapped = NULL;
    size_t wlen = 0;
    tr_err e = keys_wrap(k, a, s->dek, sizeof(s->dek), &wrapped, &wlen, eb);
    const char *id = keys_id(k);
    size_t idlen = strlen(id);
    if (e == TR_OK &&
        (idlen == 0 || idlen > KEYS_ID_MAX || wlen > SEALED_WRAP_MAX))
        e = tr_fail(eb, TR_ERR_CRYPTO, "unusable key id or wrapped key");
    if (e == TR_OK) {
        unsigned char *h = s->aad;
        size_t n = 0;
        memcpy(h, SEALED_MAGIC, SEALED_MAGIC_LEN);
        n = SEALED_MAGIC_LEN;
        h[n++] = (unsigned char)idlen;
        memcpy(h + n, id, idlen);
        n += idlen;
        put_be(h + n, wlen, 2);
        n += 2;
        memcpy(h + n, wrapped, wlen);
        n += wlen;
        put_be(h + n, len, 8);
        n += 8;
        s->hlen = n;
        memcpy(s->out, h, n); /* the header goes out first */
        s->out_len = n;
    }
    arena_destroy(a);
    if (e != TR_OK) {
        sealed_sealer_close(s);
        return e;
    }
    *sealed_len = s->hlen + len + chunks_of(len) * (uint64_t)ENVELOPE_OVERHEAD;
    *out = s;
    return TR_OK;
}

/* Reads exactly n bytes from the sealer's source. */
static tr_err source_exact(struct sealed_sealer *s, unsigned char *p, size_t n,
                           struct tr_errbuf *eb)
{
    for (size_t have = 0; have < n;) {
        size_t got = 0;
        tr_err e = s->src(s->src_ctx, p + have, n - have, &got, eb);
        if (e != TR_OK)
            return e;
        if (got == 0)
            return tr_fail(eb, TR_ERR_IO, "the data ended early");
        have += got;
    }
    return TR_OK;
}

/* Seals the next chunk into s->out. */
static tr_err seal_next(struct sealed_sealer *s, struct tr_errbuf *eb)
{
    uint64_t left = s->len - s->done;
    size_t m = left > SEALED_CHUNK ? SEALED_CHUNK : (size_t)left;
    tr_err e = source_exact(s, s->in, m, eb);
    set_index(s->aad, s->hlen, s->next);
    if (e == TR_OK)
        e = envelope_aead_seal(s->dek, s->aad, s->hlen + 8, s->in, m, s->out,
                               eb);
    if (e != TR_OK)
        return e;
    s->out_len = m + ENVELOPE_OVERHEAD;
    s->out_pos = 0;
    s->done += m;
    s->next++;
    return TR_OK;
}

tr_err sealed_sealer_read(void *sealer, void *buf, size_t n, size_t *got,
                          struct tr_errbuf *eb)
{
    struct sealed_sealer *s = sealer;
    unsigned char *p = buf;
    *got = 0;
    while (*got < n) {
        if (s->out_pos == s->out_len) {
            if (s->next == chunks_of(s->len))
                break;
            tr_err e = seal_next(s, eb);
            if (e != TR_OK)
                return e;
        }
        size_t take = s->out_len - s->out_pos;
        if (take > n - *got)
            take = n - *got;
        memcpy(p + *got, s->out + s->out_pos, take);
        s->out_pos += take;
        *got += take;
    }
    if (*got == 0 && !s->src_checked) { /* the end: src must end too */
        unsigned char extra;
        size_t more = 0;
        tr_err e = s->src(s->src_ctx, &extra, 1, &more, eb);
        if (e != TR_OK)
            return e;
        if (more != 0)
            return tr_fail(eb, TR_ERR_IO, "the data is longer than declared");
        s->src_checked = true;
    }
    return TR_OK;
}

void sealed_sealer_close(struct sealed_sealer *s)
{
    if (s == NULL)
        return;
    OPENSSL_cleanse(s->dek, sizeof(s->dek));
    OPENSSL_cleanse(s->in, sizeof(s->in));
    free(s);
}

struct sealed_reader {
    sealed_pread_fn rd;
    void *ctx;
    uint64_t len; /* plaintext bytes */
    size_t hlen;  /* header bytes, the start of chunk 0 */
    unsigned char aad[HEADER_MAX + 8];
    unsigned char dek[KEYS_DEK_LEN];
    unsigned char in[SEALED_CHUNK_OUT];
    unsigned char out[SEALED_CHUNK]; /* chunk `have`, decrypted */
    int64_t have;                    /* -1: none */
    uint64_t size;                   /* sealed bytes */
    /* Read-ahead: sealed bytes [win_off, win_off + win_len) in win
     * (AHEAD_MAX chunks, allocated on the first sequential read).  ahead
     * doubles while chunks are asked in order (next), from 1 to
     * AHEAD_MAX, and drops to 1 on a seek. */
    unsigned char *win;
    uint64_t win_off;
    size_t win_len;
    uint64_t next;
    unsigned ahead;
};

/* Reads exactly n bytes at off. */
static tr_err pread_exact(struct sealed_reader *r, void *p, size_t n,
                          uint64_t off, struct tr_errbuf *eb)
{
    size_t got = 0;
    tr_err e = r->rd(r->ctx, p, n, off, &got, eb);
    if (e == TR_OK && got != n)
        e = tr_fail(eb, TR_ERR_IO,
                    "cannot read a sealed object: "
                    "unexpected end");
    return e;
}

tr_err sealed_reader_open(const struct keyring *k, sealed_pread_fn rd,
                          void *ctx, uint64_t in_size,
                          struct sealed_reader **out, uint64_t *plain_len,
                          struct tr_errbuf *eb)
{
    struct sealed_reader *r = calloc(1, sizeof(*r));
    if (r == NULL)
        return tr_fail(eb, TR_ERR_NOMEM, "out of memory");
    r->rd = rd;
    r->ctx = ctx;
    r->have = -1;
    r->size = in_size;
    r->ahead = 1;
    unsigned char *h = r->aad;
    char id[KEYS_ID_MAX + 1];
    size_t hlen = SEALED_MAGIC_LEN + 1;
    /* magic and the key id's length, the id and the wrapped key's length,
     * the wrapped key and the plaintext's length */
    tr_err e = in_size < hlen ? tr_fail(eb, TR_ERR_CRYPTO, "truncated object")
                              : pread_exact(r, h, hlen, 0, eb);
    size_t idlen = h[SEALED_MAGIC_LEN];
    if (e == TR_OK && (!sealed_is(h, hlen) || idlen == 0 ||
                       idlen > KEYS_ID_MAX || in_size < hlen + idlen + 2))
        e = tr_fail(eb, TR_ERR_CRYPTO, "malformed object header");
    if (e == TR_OK)
        e = pread_exact(r, h + hlen, idlen + 2, hlen, eb);
    size_t wlen = 0;
    if (e == TR_OK) {
        memcpy(id, h + hlen, idlen);
        id[idlen] = '\0';
        hlen += idlen;
        wlen = (size_t)get_be(h + hlen, 2);
        hlen += 2;
        if (wlen == 0 || wlen > SEALED_WRAP_MAX || in_size < hlen + wlen + 8)
            e = tr_fail(eb, TR_ERR_CRYPTO, "malformed object header");
    }
    if (e == TR_OK)
        e = pread_exact(r, h + hlen, wlen + 8, hlen, eb);
    if (e == TR_OK) {
        const unsigned char *wrapped = h + hlen;
        hlen += wlen;
        r->len = get_be(h + hlen, 8);
        hlen += 8;
        r->hlen = hlen;
        /* the size the header promises, chunk by chunk */
        uint64_t n = chunks_of(r->len);
        if (r->len > in_size ||
            in_size - hlen != r->len + n * (uint64_t)ENVELOPE_OVERHEAD)
            e = tr_fail(eb, TR_ERR_CRYPTO,
                        "object size does not match its header");
        if (e == TR_OK)
            e = keys_unwrap(k, id, wrapped, wlen, r->dek, sizeof(r->dek), eb);
    }
    if (e != TR_OK) {
        sealed_reader_close(r);
        return e;
    }
    *out = r;
    *plain_len = r->len;
    return TR_OK;
}

/* The plaintext length of chunk i. */
static size_t chunk_len(const struct sealed_reader *r, uint64_t i)
{
    uint64_t start = i * SEALED_CHUNK;
    return r->len - start > SEALED_CHUNK ? SEALED_CHUNK
                                         : (size_t)(r->len - start);
}

/* The sealed bytes of chunk i (n of them, at off): from the read-ahead
 * window, else read now, with the chunks after it when reads go in order.
 * *src points into r->win or r->in. */
static tr_err fetch_chunk(struct sealed_reader *r, uint64_t i, size_t n,
                          const unsigned char **src, struct tr_errbuf *eb)
{
    uint64_t off = r->hlen + i * (uint64_t)SEALED_CHUNK_OUT;
    bool seq = i == r->next;
    r->next = i + 1;
    if (r->win_len > 0 && off >= r->win_off &&
        off + n <= r->win_off + r->win_len) {
        *src = r->win + (off - r->win_off);
        return TR_OK;
    }
    r->ahead = seq ? (r->ahead * 2 > AHEAD_MAX ? AHEAD_MAX : r->ahead * 2) : 1;
    r->win_len = 0;
    if (r->ahead > 1 && r->win == NULL)
        r->win = malloc((size_t)AHEAD_MAX * SEALED_CHUNK_OUT);
    if (r->ahead == 1 || r->win == NULL) { /* no memory: one at a time */
        *src = r->in;
        return pread_exact(r, r->in, n, off, eb);
    }
    uint64_t want = (uint64_t)r->ahead * SEALED_CHUNK_OUT;
    if (want > r->size - off)
        want = r->size - off; /* the last chunk may be short */
    tr_err e = pread_exact(r, r->win, (size_t)want, off, eb);
    if (e != TR_OK)
        return e;
    r->win_off = off;
    r->win_len = (size_t)want;
    *src = r->win;
    return TR_OK;
}

/* Decrypts chunk i into dst (r->out, or a caller's buffer of at least
 * its plaintext length); that length in *m. */
static tr_err open_chunk(struct sealed_reader *r, uint64_t i,
                         unsigned char *dst, size_t *m, struct tr_errbuf *eb)
{
    *m = chunk_len(r, i);
    const unsigned char *src = NULL;
    tr_err e = fetch_chunk(r, i, *m + ENVELOPE_OVERHEAD, &src, eb);
    set_index(r->aad, r->hlen, i);
    if (e == TR_OK)
        e = envelope_aead_open(r->dek, r->aad, r->hlen + 8, src,
                               *m + ENVELOPE_OVERHEAD, dst, eb);
    return e;
}

/* Decrypts chunk i into r->out (kept for the next read); its plaintext
 * length in *m. */
static tr_err load_chunk(struct sealed_reader *r, uint64_t i, size_t *m,
                         struct tr_errbuf *eb)
{
    if (r->have == (int64_t)i) {
        *m = chunk_len(r, i);
        return TR_OK;
    }
    r->have = -1;
    tr_err e = open_chunk(r, i, r->out, m, eb);
    if (e == TR_OK)
        r->have = (int64_t)i;
    return e;
}

tr_err sealed_reader_pread(struct sealed_reader *r, void *buf, size_t n,
                           uint64_t off, size_t *got, struct tr_errbuf *eb)
{
    unsigned char *p = buf;
    size_t m = 0;
    tr_err e = TR_OK;
    *got = 0;
    while (e == TR_OK && *got < n && off < r->len) {
        uint64_t i = off / SEALED_CHUNK;
        if (off == i * SEALED_CHUNK && n - *got >= chunk_len(r, i) &&
            r->have != (int64_t)i) {
            /* a whole chunk wanted: opened straight into the caller's
             * buffer, one copy fewer */
            e = open_chunk(r, i, p + *got, &m, eb);
            if (e != TR_OK)
                break;
            *got += m;
            off += m;
            continue;
        }
        e = load_chunk(r, i, &m, eb);
        if (e != TR_OK)
            break;
        size_t at = (size_t)(off - i * SEALED_CHUNK);
        size_t take = m - at < n - *got ? m - at : n - *got;
        memcpy(p + *got, r->out + at, take);
        *got += take;
        off += take;
    }
    if (e == TR_OK && r->len == 0 && r->have < 0) /* the empty object's */
        e = load_chunk(r, 0, &m, eb);             /* one chunk */
    return e;
}

void sealed_reader_close(struct sealed_reader *r)
{
    if (r == NULL)
        return;
    OPENSSL_cleanse(r->dek, sizeof(r->dek));
    OPENSSL_cleanse(r->out, sizeof(r->out));
    free(r->win);
    free(r);
}
