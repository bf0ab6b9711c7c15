/*
 * blob_fs.c - local filesystem blob backend.
 *
 * Objects live at DIR/objects/<key>.  put: write a temp file in DIR/tmp,
 * fsync it, rename over the target, fsync the target's directory.  tmp and
 * objects share a filesystem so rename is atomic.  A streamed put starts
 * the write-back of every FLUSH_AFTER bytes as it goes (sync_file_range,
 * not waited for), so the fsync at its end has little left to write
 * instead of the whole object.
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "blob/blob.h"
#include "core/fault.h"
#include "core/file.h"

#define FLUSH_AFTER (8u << 20)

struct blob_fs {
    struct blob base;
    char root[512];
};

static tr_err mkdirs(const char *path, struct tr_errbuf *eb)
{
    char tmp[PATH_MAX];
    if (snprintf(tmp, sizeof(tmp), "%s", path) >= (int)sizeof(tmp))
        return tr_fail(eb, TR_ERR_IO, "path too long");
    for (char *p = tmp + 1; *p; p++) {
        if (*p == '/') {
            *p = '\0';
            if (mkdir(tmp, 0700) != 0 && errno != EEXIST)
                return tr_fail(eb, TR_ERR_IO, "cannot create %s: %s", tmp,
                               strerror(errno));
            *p = '/';
        }
    }
    if (mkdir(tmp, 0700) != 0 && errno != EEXIST)
        return tr_fail(eb, TR_ERR_IO, "cannot create %s: %s", tmp,
                       strerror(errno));
    return TR_OK;
}

static void fsync_dir_of(const char *path)
{
    char dir[PATH_MAX];
    snprintf(dir, sizeof(dir), "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash == NULL)
        return;
    *slash = '\0';
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
}

static tr_err object_path(struct blob_fs *fs, const char *key, char *out,
                          size_t n, bool make_parent, struct tr_errbuf *eb)
{
    if (snprintf(out, n, "%s/objects/%s", fs->root, key) >= (int)n)
        return tr_fail(eb, TR_ERR_IO, "path too long");
    if (!make_parent)
        return TR_OK;
    char parent[PATH_MAX];
    snprintf(parent, sizeof(parent), "%s", out);
    *strrchr(parent, '/') = '\0';
    return mkdirs(parent, eb);
}

static tr_err fs_put_file(struct blob *b, const char *key, const char *path,
                          struct tr_errbuf *eb)
{
    if (fault_hit("blob.put")) /* also reached from fs_put */
        return tr_fail(eb, TR_ERR_IO, "injected fault");
    struct blob_fs *fs = (struct blob_fs *)b;
    char dst[PATH_MAX];
    tr_err e = object_path(fs, key, dst, sizeof(dst), true, eb);
    if (e != TR_OK)
        return e;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return tr_fail(eb, TR_ERR_IO, "cannot open upload: %s",
                       strerror(errno));
    int rc = fsync(fd);
    close(fd);
    if (rc != 0)
        return tr_fail(eb, TR_ERR_IO, "cannot sync upload: %s",
                       strerror(errno));
    if (rename(path, dst) != 0)
        return tr_fail(eb, TR_ERR_IO, "cannot store object: %s",
                       strerror(errno));
    fsync_dir_of(dst);
    return TR_OK;
}

static tr_err fs_put_stream(struct blob *b, const char *key, uint64_t len,
                            blob_source src, void *ctx, struct tr_errbuf *eb)
{
    char tmp[PATH_MAX];
    snprintf(tmp, sizeof(tmp), "%s/put-XXXXXX", b->tmp_dir);
    int fd = mkostemp(tmp, O_CLOEXEC);
    if (fd < 0)
        return tr_fail(eb, TR_ERR_IO, "cannot create temp file: %s",
                       strerror(errno));
    char buf[65536];
    tr_err e = TR_OK;
    uint64_t flushed = 0;
    for (uint64_t left = len; e == TR_OK && left > 0;) {
        size_t m = left < sizeof(buf) ? (size_t)left : sizeof(buf);
        e = blob_source_exact(src, ctx, buf, m, eb);
        if (e == TR_OK)
            e = file_write_exact(fd, buf, m, eb);
        left -= m;
        if (len - left - flushed >= FLUSH_AFTER) { /* a hint: errors wait */
            (void)sync_file_range(fd, (off_t)flushed,
                                  (off_t)(len - left - flushed),
                                  SYNC_FILE_RANGE_WRITE);
            flushed = len - left;
        }
    }
    if (e == TR_OK)
        e = blob_source_end(src, ctx, eb);
    if (close(fd) != 0 && e == TR_OK)
        e = tr_fail(eb, TR_ERR_IO, "cannot write object: %s", strerror(errno));
    if (e == TR_OK)
        e = fs_put_file(b, key, tmp, eb);
    if (e != TR_OK)
        unlink(tmp);
    return e;
}

struct blob_obj {
    int fd;
};

static tr_err fs_open(struct blob *b, const char *key, struct blob_obj **o,
                      uint64_t *size, struct tr_errbuf *eb)
{
    struct blob_fs *fs = (struct blob_fs *)b;
    char path[PATH_MAX];
    tr_err e = object_path(fs, key, path, sizeof(path), false, eb);
    if (e != TR_OK)
        return e;
    int f = open(path, O_RDONLY | O_CLOEXEC);
    if (f < 0) {
        if (errno == ENOENT || errno == ENOTDIR)
            return tr_fail(eb, TR_ERR_NOT_FOUND, "no such object");
        return tr_fail(eb, TR_ERR_IO, "cannot open object: %s",
                       strerror(errno));
    }
    struct stat st;
    struct blob_obj *obj = NULL;
    if (fstat(f, &st) != 0 || !S_ISREG(st.st_mode) ||
        (obj = malloc(sizeof(*obj))) == NULL) {
        close(f);
        return S_ISDIR(st.st_mode)
                   ? tr_fail(eb, TR_ERR_NOT_FOUND, "no such object")
                   : tr_fail(eb, TR_ERR_IO, "cannot open object");
    }
    obj->fd = f;
    *o = obj;
    *size = (uint64_t)st.st_size;
    return TR_OK;
}

static tr_err fs_read(struct blob_obj *o, void *buf, size_t n, uint64_t off,
                      size_t *got, struct tr_errbuf *eb)
{
    return file_pread(o->fd, buf, n, off, got, eb);
}

static int fs_fd(struct blob_obj *o)
{
    return o->fd;
}

static void fs_obj_close(struct blob_obj *o)
{
    close(o->fd);
    free(o);
}

static tr_err fs_remove(struct blob *b, const char *key, struct tr_errbuf *eb)
{
    struct blob_fs *fs = (struct blob_fs *)b;
    char path[PATH_MAX];
    tr_err e = object_path(fs, key, path, sizeof(path), false, eb);
    if (e != TR_OK)
        return e;
    if (unlink(path) != 0 && errno != ENOENT)
        return tr_fail(eb, TR_ERR_IO, "cannot remove object: %s",
                       strerror(errno));
    return TR_OK;
}

/* Walks dir (the key prefix so far in key, klen bytes of it). */
static tr_err walk(const char *dir, char *key, size_t klen, const char *prefix,
                   blob_list_fn fn, void *ctx, struct tr_errbuf *eb)
{
    DIR *d = opendir(dir);
    if (d == NULL)
        return errno == ENOENT ? TR_OK
                               : tr_fail(eb, TR_ERR_IO, "cannot list %s: %s",
                                         dir, strerror(errno));
    tr_err e = TR_OK;
    struct dirent *de;
    while (e == TR_OK && (de = readdir(d)) != NULL) {
        const char *n = de->d_name;
        size_t nl = strlen(n);
        if (strcmp(n, ".") == 0 || strcmp(n, "..") == 0 ||
            klen + nl + 2 > PATH_MAX)
            continue;
        memcpy(key + klen, n, nl + 1);
        /* skip subtrees that cannot hold the prefix */
        size_t cmp = klen + nl < strlen(prefix) ? klen + nl : strlen(prefix);
        if (strncmp(key, prefix, cmp) != 0)
            continue;
        char path[PATH_MAX];
        if (snprintf(path, sizeof(path), "%s/%s", dir, n) >= (int)sizeof(path))
            continue;
        struct stat st;
        if (lstat(path, &st) != 0)
            continue; /* removed meanwhile */
        if (S_ISDIR(st.st_mode)) {
            key[klen + nl] = '/';
            key[klen + nl + 1] = '\0';
            e = walk(path, key, klen + nl + 1, prefix, fn, ctx, eb);
        } else if (S_ISREG(st.st_mode) &&
                   strncmp(key, prefix, strlen(prefix)) == 0) {
            e = fn(ctx, key, (uint64_t)st.st_size, (int64_t)st.st_mtime, eb);
        }
    }
    closedir(d);
    return e;
}

static tr_err fs_list(struct blob *b, const char *prefix, blob_list_fn fn,
                      void *ctx, struct tr_errbuf *eb)
{
    struct blob_fs *fs = (struct blob_fs *)b;
    char dir[PATH_MAX];
    char key[PATH_MAX] = "";
    snprintf(dir, sizeof(dir), "%s/objects", fs->root);
    return walk(dir, key, 0, prefix, fn, ctx, eb);
}

static void fs_close(struct blob *b)
{
    free(b);
}

/* Spool and temp files a process that died left behind.  Primaries may
 * share the directory (a file:// blob URL on a shared filesystem), so
 * only files untouched for a day are taken as stale: a live upload
 * writes to its file far more often than that. */
static void clean_tmp(const char *tmp)
{
    DIR *d = opendir(tmp);
    struct dirent *de;
    while (d != NULL && (de = readdir(d)) != NULL) {
        const char *n = de->d_name;
        if (strncmp(n, "spool-", 6) != 0 && strncmp(n, "put-", 4) != 0 &&
            strncmp(n, "seal-", 5) != 0)
            continue;
        char p[PATH_MAX];
        struct stat st;
        if (snprintf(p, sizeof(p), "%s/%s", tmp, n) < (int)sizeof(p) &&
            stat(p, &st) == 0 && st.st_mtime < time(NULL) - 24 * 3600)
            unlink(p);
    }
    if (d != NULL)
        closedir(d);
}

static const struct blob_ops fs_ops = {
    .put_stream = fs_put_stream,
    .put_file = fs_put_file,
    .open = fs_open,
    .read = fs_read,
    .fd = fs_fd,
    .obj_close = fs_obj_close,
    .remove = fs_remove,
    .list = fs_list,
    .close = fs_close,
};

tr_err blob_open_fs(const char *dir, struct blob **out, struct tr_errbuf *eb)
{
    struct blob_fs *fs = calloc(1, sizeof(*fs));
    if (fs == NULL)
        return TR_ERR_NOMEM;
    fs->base.ops = &fs_ops;
    if (snprintf(fs->root, sizeof(fs->root), "%s", dir) >=
            (int)sizeof(fs->root) ||
        snprintf(fs->base.tmp_dir, sizeof(fs->base.tmp_dir), "%s/tmp", dir) >=
            (int)sizeof(fs->base.tmp_dir)) {
        free(fs);
        return tr_fail(eb, TR_ERR_CONFIG, "blob directory path too long");
    }
    char objects[PATH_MAX];
    snprintf(objects, sizeof(objects), "%s/objects", dir);
    tr_err e = mkdirs(fs->base.tmp_dir, eb);
    if (e == TR_OK)
        e = mkdirs(objects, eb);
    if (e != TR_OK) {
        free(fs);
        return e;
    }
    clean_tmp(fs->base.tmp_dir);
    *out = &fs->base;
    return TR_OK;
}
