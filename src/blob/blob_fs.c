/*
 * blob_fs.c - local filesystem blob backend.
 *
 * Objects live at DIR/objects/<key>.  put: write a temp file in DIR/tmp,
 * fsync it, rename over the target, fsync the target's directory.  tmp and
 * objects share a filesystem so rename is atomic.
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
#include <unistd.h>

#include "blob/blob.h"
#include "core/fault.h"

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

static tr_err fs_put(struct blob *b, const char *key, const void *data,
                     size_t len, struct tr_errbuf *eb)
{
    char tmp[PATH_MAX];
    snprintf(tmp, sizeof(tmp), "%s/put-XXXXXX", b->tmp_dir);
    int fd = mkostemp(tmp, O_CLOEXEC);
    if (fd < 0)
        return tr_fail(eb, TR_ERR_IO, "cannot create temp file: %s",
                       strerror(errno));
    const char *p = data;
    size_t left = len;
    while (left > 0) {
        ssize_t n = write(fd, p, left);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            tr_err e = tr_fail(eb, TR_ERR_IO, "cannot write object: %s",
                               strerror(errno));
            close(fd);
            unlink(tmp);
            return e;
        }
        p += n;
        left -= (size_t)n;
    }
    close(fd);
    tr_err e = fs_put_file(b, key, tmp, eb);
    if (e != TR_OK)
        unlink(tmp);
    return e;
}

static tr_err fs_open_read(struct blob *b, const char *key, int *fd,
                           uint64_t *size, struct tr_errbuf *eb)
{
    struct blob_fs *fs = (struct blob_fs *)b;
    char path[PATH_MAX];
    tr_err e = object_path(fs, key, path, sizeof(path), false, eb);
    if (e != TR_OK)
        return e;
    int f = open(path, O_RDONLY | O_CLOEXEC);
    if (f < 0) {
        if (errno == ENOENT)
            return tr_fail(eb, TR_ERR_NOT_FOUND, "no such object");
        return tr_fail(eb, TR_ERR_IO, "cannot open object: %s",
                       strerror(errno));
    }
    struct stat st;
    if (fstat(f, &st) != 0) {
        close(f);
        return tr_fail(eb, TR_ERR_IO, "cannot stat object");
    }
    *fd = f;
    *size = (uint64_t)st.st_size;
    return TR_OK;
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

static void fs_close(struct blob *b)
{
    free(b);
}

/* Spool and temp files a process that died left behind: the tmp dir is
 * this node's alone, so at open every one of ours is stale. */
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
        if (snprintf(p, sizeof(p), "%s/%s", tmp, n) < (int)sizeof(p))
            unlink(p);
    }
    if (d != NULL)
        closedir(d);
}

static const struct blob_ops fs_ops = {
    .put_file = fs_put_file,
    .put = fs_put,
    .open_read = fs_open_read,
    .remove = fs_remove,
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
