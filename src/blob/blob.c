/*
 * blob.c - backend-neutral parts of the blob store: key checks, spooling,
 * whole-object reads.
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#include "blob/blob.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

bool blob_valid_key(const char *key)
{
    if (key == NULL || *key == '\0' || *key == '/' || strlen(key) > 400)
        return false;
    if (strstr(key, "..") != NULL || strstr(key, "//") != NULL)
        return false;
    for (const char *p = key; *p; p++) {
        char c = *p;
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                  (c >= '0' && c <= '9') || c == '.' || c == '_' ||
                  c == '-' || c == '/';
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

tr_err blob_put_file(struct blob *b, const char *key, const char *path,
                     struct tr_errbuf *eb)
{
    if (!blob_valid_key(key))
        return tr_fail(eb, TR_ERR_INTERNAL, "bad blob key");
    return b->ops->put_file(b, key, path, eb);
}

tr_err blob_put(struct blob *b, const char *key, const void *data,
                size_t len, struct tr_errbuf *eb)
{
    if (!blob_valid_key(key))
        return tr_fail(eb, TR_ERR_INTERNAL, "bad blob key");
    return b->ops->put(b, key, data, len, eb);
}

tr_err blob_open_read(struct blob *b, const char *key, int *fd,
                      uint64_t *size, struct tr_errbuf *eb)
{
    if (!blob_valid_key(key))
        return tr_fail(eb, TR_ERR_NOT_FOUND, "no such object");
    return b->ops->open_read(b, key, fd, size, eb);
}

tr_err blob_remove(struct blob *b, const char *key, struct tr_errbuf *eb)
{
    if (!blob_valid_key(key))
        return tr_fail(eb, TR_ERR_NOT_FOUND, "no such object");
    return b->ops->remove(b, key, eb);
}

tr_err blob_get(struct blob *b, struct arena *a, const char *key,
                size_t max, char **data, size_t *len, struct tr_errbuf *eb)
{
    int fd = -1;
    uint64_t size = 0;
    tr_err e = blob_open_read(b, key, &fd, &size, eb);
    if (e != TR_OK)
        return e;
    if (size > max) {
        close(fd);
        return tr_fail(eb, TR_ERR_TOO_LARGE, "object is too large");
    }
    char *p = arena_alloc(a, (size_t)size + 1);
    size_t got = 0;
    while (got < size) {
        ssize_t n = read(fd, p + got, (size_t)size - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            close(fd);
            return tr_fail(eb, TR_ERR_IO, "cannot read object");
        }
        got += (size_t)n;
    }
    close(fd);
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
