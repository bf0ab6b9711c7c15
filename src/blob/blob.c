/*
 * blob.c - backend-neutral parts of the blob store: key checks, sealing
 * objects at rest, spooling, whole-object reads.
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

/* Copies len bytes from in_fd (from its current position) to out_fd. */
static tr_err copy_fd(int in_fd, uint64_t len, int out_fd, struct tr_errbuf *eb)
{
    char buf[65536];
    tr_err e = TR_OK;
    for (uint64_t done = 0; e == TR_OK && done < len;) {
        size_t m =
            len - done > sizeof(buf) ? sizeof(buf) : (size_t)(len - done);
        e = file_read_exact(in_fd, buf, m, eb);
        if (e == TR_OK)
            e = file_write_exact(out_fd, buf, m, eb);
        done += m;
    }
    return e;
}

/* Stores len bytes (from in_fd, or mem) under key through a new file of
 * the tmp dir, sealed when the store has a keyring. */
static tr_err put_via_tmp(struct blob *b, const char *key, int in_fd,
                          const void *mem, uint64_t len, struct tr_errbuf *eb)
{
    char tmp[PATH_MAX];
    if (snprintf(tmp, sizeof(tmp), "%s/seal-XXXXXX", b->tmp_dir) >=
        (int)sizeof(tmp))
        return tr_fail(eb, TR_ERR_IO, "spool path too long");
    int fd = mkostemp(tmp, O_CLOEXEC);
    if (fd < 0)
        return tr_fail(eb, TR_ERR_IO, "cannot create temp file: %s",
                       strerror(errno));
    tr_err e = b->keys != NULL ? sealed_seal(b->keys, in_fd, mem, len, fd, eb)
               : in_fd >= 0    ? copy_fd(in_fd, len, fd, eb)
                               : file_write_exact(fd, mem, (size_t)len, eb);
    if (close(fd) != 0 && e == TR_OK)
        e = tr_fail(eb, TR_ERR_IO, "cannot write temp file: %s",
                    strerror(errno));
    if (e == TR_OK)
        e = b->ops->put_file(b, key, tmp, eb);
    if (e != TR_OK)
        unlink(tmp);
    return e;
}

tr_err blob_put_copy(struct blob *b, const char *key, const char *path,
                     struct tr_errbuf *eb)
{
    if (!blob_valid_key(key))
        return tr_fail(eb, TR_ERR_INTERNAL, "bad blob key");
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return tr_fail(eb, TR_ERR_IO, "cannot open %s: %s", path,
                       strerror(errno));
    struct stat st;
    tr_err e = fstat(fd, &st) == 0
                   ? put_via_tmp(b, key, fd, NULL, (uint64_t)st.st_size, eb)
                   : tr_fail(eb, TR_ERR_IO, "cannot stat %s: %s", path,
                             strerror(errno));
    close(fd);
    return e;
}

tr_err blob_put_file(struct blob *b, const char *key, const char *path,
                     struct tr_errbuf *eb)
{
    if (!blob_valid_key(key))
        return tr_fail(eb, TR_ERR_INTERNAL, "bad blob key");
    if (b->keys == NULL) /* the backend moves the file into place */
        return b->ops->put_file(b, key, path, eb);
    tr_err e = blob_put_copy(b, key, path, eb);
    if (e == TR_OK)
        unlink(path); /* consumed, as a backend's rename would */
    return e;
}

tr_err blob_put(struct blob *b, const char *key, const void *data, size_t len,
                struct tr_errbuf *eb)
{
    if (!blob_valid_key(key))
        return tr_fail(eb, TR_ERR_INTERNAL, "bad blob key");
    if (b->keys == NULL)
        return b->ops->put(b, key, data, len, eb);
    return put_via_tmp(b, key, -1, data, len, eb);
}

struct blob_reader {
    int fd;                   /* the object in the clear, or -1 */
    struct sealed_reader *sr; /* or sealed */
};

tr_err blob_reader_open(struct blob *b, const char *key,
                        struct blob_reader **out, uint64_t *size,
                        struct tr_errbuf *eb)
{
    if (!blob_valid_key(key))
        return tr_fail(eb, TR_ERR_NOT_FOUND, "no such object");
    int raw = -1;
    uint64_t rsize = 0;
    tr_err e = b->ops->open_read(b, key, &raw, &rsize, eb);
    if (e != TR_OK)
        return e;
    struct blob_reader *r = calloc(1, sizeof(*r));
    if (r == NULL) {
        close(raw);
        return tr_fail(eb, TR_ERR_NOMEM, "out of memory");
    }
    r->fd = -1;
    unsigned char magic[SEALED_MAGIC_LEN];
    ssize_t got = pread(raw, magic, sizeof(magic), 0);
    if (got < 0 || !sealed_is(magic, (size_t)got)) { /* stored in the clear */
        r->fd = raw;
        *size = rsize;
    } else if (b->keys == NULL) {
        e = tr_fail(eb, TR_ERR_CRYPTO,
                    "object %s is sealed and no keyring is loaded", key);
    } else {
        e = sealed_reader_open(b->keys, raw, rsize, &r->sr, size, eb);
    }
    if (e != TR_OK) {
        close(raw);
        free(r);
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
    return file_pread(r->fd, buf, n, off, got, eb);
}

int blob_reader_fd(const struct blob_reader *r)
{
    return r->sr == NULL ? r->fd : -1;
}

void blob_reader_close(struct blob_reader *r)
{
    if (r == NULL)
        return;
    if (r->sr != NULL)
        sealed_reader_close(r->sr);
    else if (r->fd >= 0)
        close(r->fd);
    free(r);
}

tr_err blob_remove(struct blob *b, const char *key, struct tr_errbuf *eb)
{
    if (!blob_valid_key(key))
        return tr_fail(eb, TR_ERR_NOT_FOUND, "no such object");
    return b->ops->remove(b, key, eb);
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
