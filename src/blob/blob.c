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

tr_err blob_put_stream(struct blob *b, const char *key, uint64_t len,
                       blob_source src, void *ctx, struct tr_errbuf *eb)
{
    if (!blob_valid_key(key))
        return tr_fail(eb, TR_ERR_INTERNAL, "bad blob key");
    if (b->keys == NULL)
        return b->ops->put_stream(b, key, len, src, ctx, eb);
    struct sealed_sealer *s = NULL;
    uint64_t sealed_len = 0;
    tr_err e = sealed_sealer_open(b->keys, len, src, ctx, &s, &sealed_len, eb);
    if (e == TR_OK)
        e = b->ops->put_stream(b, key, sealed_len, sealed_sealer_read, s, eb);
    sealed_sealer_close(s);
    return e;
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
    if (b->keys == NULL && b->ops->put_file != NULL)
        return b->ops->put_file(b, key, path, eb); /* moved into place */
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

struct blob_reader {
    struct blob *b;
    struct blob_obj *obj;     /* the stored object */
    struct sealed_reader *sr; /* set: it is sealed */
};

/* A sealed_pread_fn reading the stored object. */
static tr_err obj_pread(void *ctx, void *buf, size_t n, uint64_t off,
                        size_t *got, struct tr_errbuf *eb)
{
    struct blob_reader *r = ctx;
    return r->b->ops->read(r->obj, buf, n, off, got, eb);
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
    unsigned char magic[SEALED_MAGIC_LEN];
    size_t got = 0;
    e = obj_pread(r, magic, sizeof(magic), 0, &got, eb);
    if (e == TR_OK && !sealed_is(magic, got)) { /* stored in the clear */
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
