/*
 * blob.c - backend-neutral parts of the blob store: key checks, sealing
 * objects at rest as they stream to a backend, ranged reads through it,
 * spooling, whole-object reads.
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#include "blob/blob.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "core/fault.h"
#include "core/file.h"
#include "crypto/sealed.h"

bool blob_valid_key(const char *key)
{
    if (key == NULL || *key == '\0' || *key == '/' || strlen(key) > 400)
        return false;
    if (strstr(key, "..") != NULL || strstr(key, "//") != NULL)
        return false;
    for (const char *p = key; *p; p++) {
        char c = *p;
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                  (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-' ||
                  c == '/';
        if (!ok)
            return false;
    }
    return true;
}

void blob_close(struct blob *b)
{
    if (b != NULL)
        b->ops->close(b);
}

void blob_set_keys(struct blob *b, const struct keyring *keys)
{
    b->keys = keys;
}

/* Sources for blob_put_stream(): a file or a block of memory. */
struct fd_source {
    int fd;
};

static tr_err fd_read(void *ctx, void *buf, size_t n, size_t *got,
                      struct tr_errbuf *eb)
{
    struct fd_source *f = ctx;
    for (;;) {
        ssize_t r = read(f->fd, buf, n);
        if (r >= 0) {
            *got = (size_t)r;
            return TR_OK;
        }
        if (errno != EINTR)
            return tr_fail(eb, TR_ERR_IO, "cannot read upload: %s",
                           strerror(errno));
    }
}

struct mem_source {
    const unsigned char *p;
    size_t left;
};

static tr_err mem_read(void *ctx, void *buf, size_t n, size_t *got,
                       struct tr_errbuf *eb)
{
    (void)eb;
    struct mem_source *m = ctx;
    *got = n < m->left ? n : m->left;
    if (*got > 0)
        memcpy(buf, m->p, *got);
    m->p += *got;
    m->left -= *got;
    return TR_OK;
}

/* Every write that stored an object passes here before its caller can
 * record it (the crash tests' fault site). */
static tr_err written(tr_err e, struct tr_errbuf *eb)
{
    if (e == TR_OK && fault_hit("blob.written"))
        return tr_fail(eb, TR_ERR_IO, "injected fault");
    return e;
}

tr_err blob_source_exact(blob_source src, void *ctx, void *buf, size_t n,
                         struct tr_errbuf *eb)
{
    for (size_t have = 0; have < n;) {
        size_t got = 0;
        tr_err e = src(ctx, (char *)buf + have, n - have, &got, eb);
        if (e != TR_OK)
            return e;
        if (got == 0)
            return tr_fail(eb, TR_ERR_IO, "the data ended early");
        have += got;
    }
    return TR_OK;
}

tr_err blob_source_end(blob_source src, void *ctx, struct tr_errbuf *eb)
{
    char extra;
    size_t got = 0;
    tr_err e = src(ctx, &extra, 1, &got, eb);
    if (e == TR_OK && got != 0)
        e = tr_fail(eb, TR_ERR_IO, "the data is longer than declared");
    return e;
}

tr_err blob_put_stream(struct blob *b, const char *key, uint64_t len,
                       blob_source src, void *ctx, struct tr_errbuf *eb)
{
    if (!blob_valid_key(key))
        return tr_fail(eb, TR_ERR_INTERNAL, "bad blob key");
    if (b->keys == NULL)
        return written(b->ops->put_stream(b, key, len, src, ctx, eb), eb);
    struct sealed_sealer *s = NULL;
    uint64_t sealed_len = 0;
    tr_err e = sealed_sealer_open(b->keys, len, src, ctx, &s, &sealed_len, eb);
    if (e == TR_OK)
        e = b->ops->put_stream(b, key, sealed_len, sealed_sealer_read, s, eb);
    sealed_sealer_close(s);
    return written(e, eb);
}

tr_err blob_put_copy(struct blob *b, const char *key, const char *path,
                     struct tr_errbuf *eb)
{
    struct fd_source f = {.fd = open(path, O_RDONLY | O_CLOEXEC)};
    if (f.fd < 0)
        return tr_fail(eb, TR_ERR_IO, "cannot open %s: %s", path,
                       strerror(errno));
    struct stat st;
    tr_err e =
        fstat(f.fd, &st) == 0
            ? blob_put_stream(b, key, (uint64_t)st.st_size, fd_read, &f, eb)
            : tr_fail(eb, TR_ERR_IO, "cannot stat %s: %s", path,
                      strerror(errno));
    close(f.fd);
    return e;
}

tr_err blob_put_file(struct blob *b, const char *key, const char *path,
                     struct tr_errbuf *eb)
{
    if (!blob_valid_key(key))
        return tr_fail(eb, TR_ERR_INTERNAL, "bad blob key");
    if (b->keys == NULL && b->ops->put_file != NULL) /* moved into place */
        return written(b->ops->put_file(b, key, path, eb), eb);
    tr_err e = blob_put_copy(b, key, path, eb);
    if (e == TR_OK)
        unlink(path); /* consumed, as a backend's rename would */
    return e;
}

tr_err blob_put(struct blob *b, const char *key, const void *data, size_t len,
                struct tr_errbuf *eb)
{
    struct mem_source m = {.p = data, .left = len};
    return blob_put_stream(b, key, len, mem_read, &m, eb);
}

/* The stored object's first bytes, read once at open: the magic and a
 * sealed header are read from them, and a remote backend's sequential
 * stream then goes on from their end instead of starting over at 0. */
#define HEAD_BYTES 4096

struct blob_reader {
    struct blob *b;
    struct blob_obj *obj;     /* the stored object */
    struct sealed_reader *sr; /* set: it is sealed */
    uint64_t rsize;           /* stored size */
    unsigned char head[HEAD_BYTES];
    size_t head_len; /* HEAD_BYTES, or rsize when that is less */
};

/* A sealed_pread_fn reading the stored object. */
static tr_err obj_pread(void *ctx, void *buf, size_t n, uint64_t off,
                        size_t *got, struct tr_errbuf *eb)
{
    struct blob_reader *r = ctx;
    size_t k = 0;
    if (off < r->head_len) {
        k = r->head_len - (size_t)off < n ? r->head_len - (size_t)off : n;
        memcpy(buf, r->head + off, k);
        if (k == n || r->head_len == r->rsize) {
            *got = k;
            return TR_OK;
        }
    }
    size_t more = 0;
    tr_err e =
        r->b->ops->read(r->obj, (char *)buf + k, n - k, off + k, &more, eb);
    *got = k + more;
    return e;
}

tr_err blob_reader_open(struct blob *b, const char *key,
                        struct blob_reader **out, uint64_t *size,
                        struct tr_errbuf *eb)
{
    if (!blob_valid_key(key))
        return tr_fail(eb, TR_ERR_NOT_FOUND, "no such object");
    struct blob_reader *r = calloc(1, sizeof(*r));
    if (r == NULL)
        return tr_fail(eb, TR_ERR_NOMEM, "out of memory");
    r->b = b;
    uint64_t rsize = 0;
    tr_err e = b->ops->open(b, key, &r->obj, &rsize, eb);
    if (e != TR_OK) {
        free(r);
        return e;
    }
    r->rsize = rsize;
    e = b->ops->read(r->obj, r->head,
                     rsize < HEAD_BYTES ? (size_t)rsize : HEAD_BYTES, 0,
                     &r->head_len, eb);
    if (e == TR_OK && r->head_len < HEAD_BYTES && r->head_len != rsize)
        e = tr_fail(eb, TR_ERR_IO, "object %s is shorter than its size", key);
    if (e == TR_OK && !sealed_is(r->head, r->head_len)) { /* in the clear */
        *size = rsize;
    } else if (e == TR_OK && b->keys == NULL) {
        e = tr_fail(eb, TR_ERR_CRYPTO,
                    "object %s is sealed and no keyring is loaded", key);
    } else if (e == TR_OK) {
        e = sealed_reader_open(b->keys, obj_pread, r, rsize, &r->sr, size, eb);
    }
    if (e != TR_OK) {
        blob_reader_close(r);
        return e;
    }
    *out = r;
    return TR_OK;
}

tr_err blob_reader_pread(struct blob_reader *r, void *buf, size_t n,
                         uint64_t off, size_t *got, struct tr_errbuf *eb)
{
    if (r->sr != NULL)
        return sealed_reader_pread(r->sr, buf, n, off, got, eb);
    return obj_pread(r, buf, n, off, got, eb);
}

int blob_reader_fd(const struct blob_reader *r)
{
    if (r->sr != NULL || r->b->ops->fd == NULL)
        return -1;
    return r->b->ops->fd(r->obj);
}

void blob_reader_close(struct blob_reader *r)
{
    if (r == NULL)
        return;
    sealed_reader_close(r->sr);
    if (r->obj != NULL)
        r->b->ops->obj_close(r->obj);
    free(r);
}

tr_err blob_remove(struct blob *b, const char *key, struct tr_errbuf *eb)
{
    if (!blob_valid_key(key))
        return tr_fail(eb, TR_ERR_NOT_FOUND, "no such object");
    return b->ops->remove(b, key, eb);
}

tr_err blob_list(struct blob *b, const char *prefix, blob_list_fn fn, void *ctx,
                 struct tr_errbuf *eb)
{
    return b->ops->list(b, prefix != NULL ? prefix : "", fn, ctx, eb);
}

tr_err blob_get(struct blob *b, struct arena *a, const char *key, size_t max,
                char **data, size_t *len, struct tr_errbuf *eb)
{
    struct blob_reader *r = NULL;
    uint64_t size = 0;
    tr_err e = blob_reader_open(b, key, &r, &size, eb);
    if (e != TR_OK)
        return e;
    if (size > max) {
        blob_reader_close(r);
        return tr_fail(eb, TR_ERR_TOO_LARGE, "object is too large");
    }
    char *p = arena_alloc(a, (size_t)size + 1);
    size_t got = 0;
    e = blob_reader_pread(r, p, (size_t)size, 0, &got, eb);
    blob_reader_close(r);
    if (e == TR_OK && got != size)
        e = tr_fail(eb, TR_ERR_IO, "cannot read object: it shrank");
    if (e != TR_OK)
        return e;
    p[size] = '\0';
    *data = p;
    *len = (size_t)size;
    return TR_OK;
}

struct spool {
    int fd;
    char *path;
};

static void spool_cleanup(void *p)
{
    struct spool *s = p;
    if (s->fd >= 0)
        close(s->fd);
    unlink(s->path);
}

tr_err blob_spool(struct blob *b, struct arena *a, int *fd, char **path,
                  struct tr_errbuf *eb)
{
    struct spool *s = arena_alloc(a, sizeof(*s));
    s->path = arena_printf(a, "%s/spool-XXXXXX", b->tmp_dir);
    s->fd = mkostemp(s->path, O_CLOEXEC);
    if (s->fd < 0)
        return tr_fail(eb, TR_ERR_IO, "cannot create spool file: %s",
                       strerror(errno));
    arena_on_destroy(a, spool_cleanup, s);
    *fd = s->fd;
    *path = s->path;
    return TR_OK;
}

/* ---- raw access ---------------------------------------------------------- */

#define RAW_CHUNK (256 * 1024)

/* Reads an open object from its start, hashing what it hands out. */
struct raw_source {
    struct blob *b;
    struct blob_obj *o;
    uint64_t off;
    EVP_MD_CTX *md;
};

static tr_err raw_read(void *ctx, void *buf, size_t n, size_t *got,
                       struct tr_errbuf *eb)
{
    struct raw_source *r = ctx;
    tr_err e = r->b->ops->read(r->o, buf, n, r->off, got, eb);
    if (e != TR_OK)
        return e;
    r->off += *got;
    if (*got > 0 && EVP_DigestUpdate(r->md, buf, *got) != 1)
        return tr_fail(eb, TR_ERR_CRYPTO, "sha-256 failed");
    return TR_OK;
}

/* Opens key of b raw; *r is closed with raw_close(). */
static tr_err raw_open(struct blob *b, const char *key, struct raw_source *r,
                       uint64_t *size, struct tr_errbuf *eb)
{
    *r = (struct raw_source){.b = b};
    if (!blob_valid_key(key))
        return tr_fail(eb, TR_ERR_NOT_FOUND, "no such object");
    r->md = EVP_MD_CTX_new();
    if (r->md == NULL || EVP_DigestInit_ex(r->md, EVP_sha256(), NULL) != 1)
        return tr_fail(eb, TR_ERR_CRYPTO, "sha-256 failed");
    return b->ops->open(b, key, &r->o, size, eb);
}

static tr_err raw_final(struct raw_source *r, uint64_t size,
                        unsigned char sha[32], struct tr_errbuf *eb)
{
    if (r->off != size)
        return tr_fail(eb, TR_ERR_IO, "object changed size while read");
    unsigned int len = 0;
    if (EVP_DigestFinal_ex(r->md, sha, &len) != 1 || len != 32)
        return tr_fail(eb, TR_ERR_CRYPTO, "sha-256 failed");
    return TR_OK;
}

static void raw_close(struct raw_source *r)
{
    if (r->o != NULL)
        r->b->ops->obj_close(r->o);
    EVP_MD_CTX_free(r->md);
}

tr_err blob_raw_sha256(struct blob *b, const char *key, uint64_t *size,
                       unsigned char sha[32], struct tr_errbuf *eb)
{
    struct raw_source r;
    tr_err e = raw_open(b, key, &r, size, eb);
    char *buf = e == TR_OK ? malloc(RAW_CHUNK) : NULL;
    if (e == TR_OK && buf == NULL)
        e = tr_fail(eb, TR_ERR_NOMEM, "out of memory");
    size_t got = 1;
    while (e == TR_OK && got > 0)
        e = raw_read(&r, buf, RAW_CHUNK, &got, eb);
    if (e == TR_OK)
        e = raw_final(&r, *size, sha, eb);
    free(buf);
    raw_close(&r);
    return e;
}

tr_err blob_copy_raw(struct blob *src, struct blob *dst, const char *key,
                     uint64_t *size, unsigned char sha[32],
                     struct tr_errbuf *eb)
{
    struct raw_source r;
    tr_err e = raw_open(src, key, &r, size, eb);
    if (e == TR_OK) /* as stored: no sealing on the way */
        e = written(dst->ops->put_stream(dst, key, *size, raw_read, &r, eb),
                    eb);
    if (e == TR_OK)
        e = raw_final(&r, *size, sha, eb);
    raw_close(&r);
    return e;
}
