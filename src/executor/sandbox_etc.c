/*
 * sandbox_etc.c - the /etc a sandbox shows, prepared once as one
 * directory (executor_int.h), so that bubblewrap binds one directory at
 * each start instead of creating /etc and binding two dozen entries one
 * at a time.
 *
 * The directory holds copies of the host's /etc entries on the list
 * sandbox.c gives and nothing else: regular files keep their mode (a
 * file the node cannot read is left out, so nothing unreadable before
 * becomes readable), directories are copied level by level, and links
 * inside them are copied as links, never followed, so they point where
 * they pointed (into /usr, or nowhere the sandbox shows).  An entry that
 * is itself a link is followed, as a bind of it was.  Paths under a
 * hidden path (the node's data, configuration and keys) are never
 * copied.  Empty passwd and group files are the mount points of the
 * synthetic ones bubblewrap adds on top.
 *
 * Freshness: each sandbox_etc_dir() stats the entries (a few
 * microseconds) and, when one changed since the copy (inode, size,
 * mtime, ctime: a file rewritten, a certificate added to or removed
 * from a directory, which changes the directory),
 * makes a new copy in a new directory, so a sandbox already running
 * keeps the one it bound.  A generation is removed once it has been
 * superseded for keep_ms (longer than any run lasts), or when the next
 * node process starts; at most OLD_MAX superseded ones are kept.  A file
 * rewritten in place inside a listed directory (which leaves the
 * directory as it was) is not noticed until another change or a restart.
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/log.h"
#include "core/util.h"
#include "executor/executor_int.h"

#define COPY_DEPTH 4
#define COPY_FILE_MAX (16 << 20)
#define OLD_MAX 32 /* superseded generations kept at most */

struct sandbox_etc {
    pthread_mutex_t mu;
    char *base; /* where generations are made */
    char *src;  /* the host's /etc (another directory in tests) */
    char *cur;  /* the current generation, or NULL */
    unsigned long long sig;
    unsigned gen;
    int64_t keep_ms;
    struct {
        char *dir;
        int64_t since_ms; /* superseded then */
    } old[OLD_MAX];
    int nold;
    const char *const *entries;
    int nentries;
    char *const *hide;
    int nhide;
};

static bool under(const char *path, const char *dir)
{
    size_t n = strlen(dir);
    return strncmp(path, dir, n) == 0 && (path[n] == '/' || path[n] == '\0');
}

static bool hidden(const struct sandbox_etc *se, const char *path)
{
    for (int i = 0; i < se->nhide; i++)
        if (under(path, se->hide[i]))
            return true;
    return false;
}

static void mix(unsigned long long *h, unsigned long long v)
{
    *h ^= v + 0x9e3779b97f4a7c15ULL + (*h << 6) + (*h >> 2);
}

/* What the entries look like now: a change of any gives another value. */
static unsigned long long signature(const struct sandbox_etc *se)
{
    unsigned long long h = 0;
    for (int i = 0; i < se->nentries; i++) {
        char path[256];
        struct stat st, lst;
        snprintf(path, sizeof(path), "%s/%s", se->src, se->entries[i]);
        mix(&h, (unsigned long long)i);
        if (lstat(path, &lst) == 0) {
            mix(&h, (unsigned long long)lst.st_ino);
            mix(&h, (unsigned long long)lst.st_ctim.tv_nsec);
        }
        if (stat(path, &st) != 0)
            continue;
        mix(&h, (unsigned long long)st.st_ino);
        mix(&h, (unsigned long long)st.st_size);
        mix(&h, (unsigned long long)st.st_mtim.tv_sec);
        mix(&h, (unsigned long long)st.st_mtim.tv_nsec);
        mix(&h, (unsigned long long)st.st_ctim.tv_sec);
        mix(&h, (unsigned long long)st.st_ctim.tv_nsec);
    }
    return h;
}

/* Copies the regular file src (already stat'ed: st) to dst with its
 * mode; a file that cannot be read is left out (true). */
static bool copy_file(const char *src, const struct stat *st, const char *dst)
{
    if (st->st_size > COPY_FILE_MAX)
        return true;
    int in = open(src, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (in < 0)
        return true;
    mode_t mode = st->st_mode & 0777;
    int out =
        open(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    bool ok = out >= 0;
    char buf[65536];
    while (ok) {
        ssize_t n = read(in, buf, sizeof(buf));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            ok = n == 0;
            break;
        }
        ok = write(out, buf, (size_t)n) == n;
    }
    ok = ok && fchmod(out, mode) == 0;
    if (out >= 0)
        ok = close(out) == 0 && ok;
    close(in);
    return ok;
}

static bool copy_tree(const struct sandbox_etc *se, const char *src,
                      const char *dst, mode_t mode, int depth);

/* Copies the directory entry name of src into dst: a link as a link,
 * a file or directory as copy_file() and copy_tree() do. */
static bool copy_entry(const struct sandbox_etc *se, const char *src,
                       const char *dst, const char *name, int depth)
{
    char s[4096], d[4096];
    if (snprintf(s, sizeof(s), "%s/%s", src, name) >= (int)sizeof(s) ||
        snprintf(d, sizeof(d), "%s/%s", dst, name) >= (int)sizeof(d))
        return true;
    struct stat st;
    if (hidden(se, s) || lstat(s, &st) != 0)
        return true;
    if (S_ISLNK(st.st_mode)) {
        char target[4096];
        ssize_t n = readlink(s, target, sizeof(target) - 1);
        if (n <= 0)
            return true;
        target[n] = '\0';
        return symlink(target, d) == 0;
    }
    if (S_ISREG(st.st_mode))
        return copy_file(s, &st, d);
    if (S_ISDIR(st.st_mode) && depth < COPY_DEPTH)
        return copy_tree(se, s, d, st.st_mode & 0777, depth + 1);
    return true;
}

static bool copy_tree(const struct sandbox_etc *se, const char *src,
                      const char *dst, mode_t mode, int depth)
{
    DIR *dir = opendir(src);
    if (dir == NULL)
        return true; /* unreadable: left out */
    bool ok = mkdir(dst, 0700) == 0;
    struct dirent *de;
    while (ok && (de = readdir(dir)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        ok = copy_entry(se, src, dst, de->d_name, depth);
    }
    closedir(dir);
    return ok && chmod(dst, mode) == 0;
}

/* mkdir -p of the parents of path under root (0755). */
static bool parents(const char *root, const char *rel)
{
    char p[4096];
    if (snprintf(p, sizeof(p), "%s/%s", root, rel) >= (int)sizeof(p))
        return false;
    for (char *s = strchr(p + strlen(root) + 1, '/'); s != NULL;
         s = strchr(s + 1, '/')) {
        *s = '\0';
        if (mkdir(p, 0755) != 0 && errno != EEXIST)
            return false;
        *s = '/';
    }
    return true;
}

static bool empty_file(const char *dir, const char *name)
{
    char p[4096];
    snprintf(p, sizeof(p), "%s/%s", dir, name);
    int fd = open(p, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0)
        return false;
    bool ok = fchmod(fd, 0644) == 0;
    return close(fd) == 0 && ok;
}

/* One generation: the listed entries copied into a new directory dir. */
static bool build(const struct sandbox_etc *se, const char *dir)
{
    if (mkdir(dir, 0700) != 0)
        return false;
    bool ok = empty_file(dir, "passwd") && empty_file(dir, "group");
    for (int i = 0; ok && i < se->nentries; i++) {
        const char *rel = se->entries[i];
        char src[4096], dst[4096];
        snprintf(src, sizeof(src), "%s/%s", se->src, rel);
        snprintf(dst, sizeof(dst), "%s/%s", dir, rel);
        struct stat st;
        ok = parents(dir, rel);
        if (!ok || hidden(se, src) || stat(src, &st) != 0)
            continue; /* absent: as bubblewrap's --ro-bind-try */
        if (S_ISREG(st.st_mode))
            ok = copy_file(src, &st, dst);
        else if (S_ISDIR(st.st_mode))
            ok = copy_tree(se, src, dst, st.st_mode & 0777, 1);
    }
    return ok && chmod(dir, 0755) == 0;
}

static int rm_entry(const char *path, const struct stat *st, int flag,
                    struct FTW *ftw)
{
    (void)st;
    (void)ftw;
    if (flag == FTW_DP || flag == FTW_D)
        rmdir(path);
    else
        unlink(path);
    return 0;
}

/* Retires the current generation (if any) and removes the superseded
 * ones whose time is up. */
static void retire(struct sandbox_etc *se)
{
    int64_t now = util_now_ms();
    if (se->cur != NULL && se->nold == OLD_MAX) {
        /* full: the oldest goes early */
        nftw(se->old[0].dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
        free(se->old[0].dir);
        memmove(&se->old[0], &se->old[1], sizeof(se->old[0]) * (OLD_MAX - 1));
        se->nold--;
    }
    if (se->cur != NULL) {
        se->old[se->nold].dir = se->cur;
        se->old[se->nold].since_ms = now;
        se->nold++;
        se->cur = NULL;
    }
    int k = 0;
    for (int i = 0; i < se->nold; i++) {
        if (now - se->old[i].since_ms >= se->keep_ms) {
            nftw(se->old[i].dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
            free(se->old[i].dir);
        } else {
            se->old[k++] = se->old[i];
        }
    }
    se->nold = k;
}

tr_err sandbox_etc_open(const char *base, const char *src,
                        const char *const *entries, int nentries,
                        char *const *hide, int nhide, int64_t keep_ms,
                        struct sandbox_etc **out, struct tr_errbuf *eb)
{
    *out = NULL;
    struct sandbox_etc *se = calloc(1, sizeof(*se));
    if (se == NULL || (se->base = strdup(base)) == NULL ||
        (se->src = strdup(src)) == NULL) {
        if (se != NULL)
            free(se->base);
        free(se);
        return tr_fail(eb, TR_ERR_NOMEM, "out of memory");
    }
    pthread_mutex_init(&se->mu, NULL);
    se->entries = entries;
    se->nentries = nentries;
    se->hide = hide;
    se->nhide = nhide;
    se->keep_ms = keep_ms;
    /* generations of an earlier process: no sandbox of it runs now */
    nftw(base, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    if (mkdir(base, 0700) != 0) {
        tr_err e = tr_fail(eb, TR_ERR_IO, "cannot create %s: %s", base,
                           strerror(errno));
        sandbox_etc_free(se);
        return e;
    }
    *out = se;
    return TR_OK;
}

const char *sandbox_etc_dir(struct sandbox_etc *se, struct arena *a)
{
    unsigned long long sig = signature(se);
    pthread_mutex_lock(&se->mu);
    if (se->cur == NULL || sig != se->sig) {
        char *dir = NULL;
        if (asprintf(&dir, "%s/etc-%u", se->base, se->gen++) < 0)
            dir = NULL;
        if (se->cur != NULL)
            log_info("sandbox: /etc changed; its copy for runs is made "
                     "again");
        retire(se); /* the old copy may be out of date */
        if (dir != NULL && build(se, dir)) {
            se->cur = dir;
            se->sig = sig;
        } else {
            if (dir != NULL) {
                log_warn("sandbox: cannot prepare %s: %s", dir,
                         strerror(errno));
                nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
            }
            free(dir);
        }
    }
    const char *cur = se->cur != NULL ? arena_strdup(a, se->cur) : NULL;
    pthread_mutex_unlock(&se->mu);
    return cur;
}

void sandbox_etc_free(struct sandbox_etc *se)
{
    if (se == NULL)
        return;
    pthread_mutex_destroy(&se->mu);
    for (int i = 0; i < se->nold; i++)
        free(se->old[i].dir);
    free(se->base);
    free(se->src);
    free(se->cur);
    free(se);
}
