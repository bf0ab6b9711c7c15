/*
 * init_memo.c - `tofu init` remembered per workspace, so a plan whose
 * init would only redo what the workspace's last one did skips it.
 *
 * A plan runs `tofu init` in a fresh directory: a whole tofu process
 * (about 25 ms of Go start-up alone) and a sandbox, even with nothing to
 * install.  When init succeeds, the driver (tofu.c) offers the
 * .terraform directory it made; it is remembered (one entry per
 * workspace, EXEC_INIT_MAX in all, the oldest dropped first) only when
 * another init from the same inputs must make the same directory:
 *   - every module is the configuration's own (modules.json names no
 *     directory under .terraform/modules and no registry version): a
 *     remote module's source may move, a branch or a version range;
 *   - the dependency lock file is the configuration's, unchanged by init,
 *     or there is none before or after: init chose no provider version
 *     itself, so a newer release cannot change what it would choose;
 *   - the directory holds only directories, files and links, within
 *     INIT_MEMO_BYTES and INIT_MEMO_ENTRIES, and every link points into
 *     the organization's provider cache.
 * When init writes the lock file (the configuration brings none, or one
 * init had to complete), that is noted for the workspace, and for
 * INIT_NEVER_MS its plans with the same lock file (or none) skip the key,
 * and so hashing the configuration, altogether.
 * Nothing is remembered when the workspace sets TF_DATA_DIR, TF_CLI_ARGS
 * or TF_CLI_ARGS_init (init elsewhere, or with its own arguments, such as
 * -upgrade, which asks for a fresh choice each time).
 * The key is an HMAC under a key of this process (so nothing on disk
 * hints at a variable's value) over what init reads: the tool's sha256,
 * the extracted configuration's content (names, types and bytes, walked
 * in name order, Terrace's variables file left out), the working
 * directory, the API URL,
 * organization and workspace (the override's cloud block), the provider
 * mirror, the workspace's environment variables, and its terraform
 * variables when a line of the configuration names a module source or
 * version beside "var." or "local." (OpenTofu evaluates those in init).
 *
 * Taking an entry copies it into the job's directory and hands the copy
 * to the run user: entries are the node's (DATA/init-cache, 0700) and no
 * run ever writes to one.  Each provider link must still resolve in the
 * cache; tofu plan itself then checks every provider package against the
 * lock file, as it does after a fresh init.  A plan that took an entry
 * and fails naming init (a source depending on a variable in a way the
 * line scan missed) drops the entry and runs again after a real init
 * (tofu.c); the workspace's key then includes its terraform variables
 * from then on (init_memo_misfit()), so a later change of such a value
 * finds no entry instead of failing again.  Entries live in this process
 * only: the directory is emptied when the executor starts and stops.
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "core/buf.h"
#include "core/file.h"
#include "core/log.h"
#include "core/util.h"
#include "crypto/digest.h"
#include "executor/executor_int.h"

#define INIT_MEMO_BYTES (4 << 20) /* regular file bytes in one entry */
#define INIT_MEMO_ENTRIES 4096    /* files, directories and links */
#define INIT_MEMO_DEPTH 32
#define SCAN_FILE_MAX (4 << 20) /* a larger .tf file counts as naming vars */
#define SCAN_ENTRIES_MAX 100000
#define INIT_NEVER_MS (3600 * 1000) /* see never() */
#define MODULES_JSON_MAX (1 << 20)

/* ---- the key ----------------------------------------------------------- */

static bool has_suffix(const char *s, const char *suf)
{
    size_t n = strlen(s), m = strlen(suf);
    return n >= m && strcmp(s + n - m, suf) == 0;
}

static bool config_file(const char *name)
{
    return has_suffix(name, ".tf") || has_suffix(name, ".tofu") ||
           has_suffix(name, ".tf.json") || has_suffix(name, ".tofu.json");
}

/* True if a line of text names a module source or version beside a
 * variable or a local value. */
static bool names_vars(const char *p, size_t n)
{
    const char *end = p + n;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t len = (size_t)((nl != NULL ? nl : end) - p);
        if ((memmem(p, len, "source", 6) != NULL ||
             memmem(p, len, "version", 7) != NULL) &&
            (memmem(p, len, "var.", 4) != NULL ||
             memmem(p, len, "local.", 6) != NULL))
            return true;
        p += len + 1;
    }
    return false;
}

/* Reads a regular file below dfd, never through a link; false if it
 * is not one or is larger than max. */
static bool read_small(int dfd, const char *name, size_t max, struct buf *b)
{
    int fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    struct stat st;
    bool ok = fd >= 0 && fstat(fd, &st) == 0 && S_ISREG(st.st_mode) &&
              (uint64_t)st.st_size <= max;
    buf_reset(b);
    char chunk[16384];
    ssize_t r = 0;
    while (ok && (r = read(fd, chunk, sizeof(chunk))) != 0) {
        if (r < 0 && errno == EINTR)
            continue;
        ok = r > 0 && b->len + (size_t)r <= max &&
             buf_append(b, chunk, (size_t)r) == TR_OK;
    }
    if (fd >= 0)
        close(fd);
    return ok;
}

/* The configuration as extracted, walked in name order: every entry's
 * path, type and content go into the digest (so the key does not depend
 * on how the tarball was packed: timestamps, compression), and each
 * configuration file is scanned for variables init may read. */
struct walk {
    EVP_MD_CTX *md;
    int fd_skip;      /* the directory holding skip, or -1 */
    const char *skip; /* Terrace's variables file: keyed by the values */
    bool vars;        /* a configuration file may feed init variables */
    bool bad;         /* something could not be read: no key */
    int entries;
    struct buf text;
};

static void mix(struct walk *w, const void *p, size_t n)
{
    if (EVP_DigestUpdate(w->md, p, n) != 1)
        w->bad = true;
}

static void mix_str(struct walk *w, const char *s)
{
    mix(w, s, strlen(s) + 1);
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The file name below dfd into the digest, content and all. */
static void walk_file(struct walk *w, int dfd, const char *name)
{
    int fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    bool scan = config_file(name);
    buf_reset(&w->text);
    char chunk[16384];
    ssize_t r = fd >= 0 ? 1 : -1;
    while (fd >= 0 && (r = read(fd, chunk, sizeof(chunk))) != 0) {
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            break;
        mix(w, chunk, (size_t)r);
        if (scan && w->text.len + (size_t)r > SCAN_FILE_MAX)
            w->vars = true; /* too large to scan: counts as naming */
        else if (scan)
            buf_append(&w->text, chunk, (size_t)r);
    }
    if (fd >= 0)
        close(fd);
    if (r != 0)
        w->bad = true;
    if (scan && !w->vars && names_vars(w->text.data, w->text.len))
        w->vars = true;
}

static bool same_dir(int a, int b)
{
    struct stat sa, sb;
    return fstat(a, &sa) == 0 && fstat(b, &sb) == 0 && sa.st_dev == sb.st_dev &&
           sa.st_ino == sb.st_ino;
}

/* Walks the directory dfd (closed here). */
static void walk_dir(struct walk *w, int dfd, int depth)
{
    DIR *d = fdopendir(dfd);
    if (d == NULL) {
        close(dfd);
        w->bad = true;
        return;
    }
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *de;
    while (!w->bad && (de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        if (++w->entries > SCAN_ENTRIES_MAX) {
            w->bad = true;
            break;
        }
        if (n == cap) {
            cap = cap ? 2 * cap : 16;
            char **nn = realloc(names, cap * sizeof(*names));
            if (nn == NULL) {
                w->bad = true;
                break;
            }
            names = nn;
        }
        if ((names[n] = strdup(de->d_name)) == NULL)
            w->bad = true;
        else
            n++;
    }
    if (n > 1)
        qsort(names, n, sizeof(*names), by_name);
    for (size_t i = 0; i < n && !w->bad; i++) {
        const char *name = names[i];
        if (w->fd_skip >= 0 && strcmp(name, w->skip) == 0 &&
            same_dir(dirfd(d), w->fd_skip))
            continue;
        struct stat st;
        if (fstatat(dirfd(d), name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
            w->bad = true;
            break;
        }
        char kind = S_ISDIR(st.st_mode)   ? 'd'
                    : S_ISREG(st.st_mode) ? ((st.st_mode & 0111) ? 'x' : 'f')
                    : S_ISLNK(st.st_mode) ? 'l'
                                          : '?';
        mix(w, &kind, 1);
        mix_str(w, name);
        if (kind == 'd') {
            int sub =
                depth < INIT_MEMO_DEPTH
                    ? openat(dirfd(d), name,
                             O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
                    : -1;
            if (sub < 0)
                w->bad = true;
            else
                walk_dir(w, sub, depth + 1);
            mix(w, "/", 1); /* the directory ends */
        } else if (kind == 'f' || kind == 'x') {
            walk_file(w, dirfd(d), name);
        } else if (kind == 'l') {
            char t[PATH_MAX];
            ssize_t len = readlinkat(dirfd(d), name, t, sizeof(t) - 1);
            if (len < 0)
                w->bad = true;
            else
                mix(w, t, (size_t)len + 1);
        }
    }
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    closedir(d);
}

static tr_err field(struct buf *k, const char *s)
{
    size_t n = s != NULL ? strlen(s) : 0;
    tr_err e = buf_printf(k, "%zu:", n);
    if (e == TR_OK && n > 0)
        e = buf_append(k, s, n);
    return e;
}

/* The sha256 of dir/.terraform.lock.hcl when it is a regular file, ""
 * when there is nothing there, NULL for anything else. */
static const char *lock_sha(struct arena *a, const char *dir)
{
    const char *path = arena_printf(a, "%s/.terraform.lock.hcl", dir);
    struct stat st;
    if (lstat(path, &st) != 0)
        return errno == ENOENT ? "" : NULL;
    if (!S_ISREG(st.st_mode))
        return NULL;
    char *sha = NULL;
    return exec_file_sha256(a, path, &sha, NULL) == TR_OK ? sha : NULL;
}

/* The digest of the configuration below wd->src (hex into out) and
 * whether a file of it may feed init variables; false if some entry
 * could not be read. */
static bool config_digest(const struct workdir *wd, char out[65], bool *vars)
{
    struct walk w = {.md = EVP_MD_CTX_new(),
                     .fd_skip = -1,
                     .skip = "zzz_terrace.auto.tfvars"};
    buf_init(&w.text, SCAN_FILE_MAX + 1);
    w.fd_skip = open(wd->cwd, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    int fd = open(wd->src, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    w.bad = w.md == NULL || fd < 0 ||
            EVP_DigestInit_ex(w.md, EVP_sha256(), NULL) != 1;
    if (!w.bad)
        walk_dir(&w, fd, 0);
    else if (fd >= 0)
        close(fd);
    unsigned char bin[EVP_MAX_MD_SIZE];
    unsigned int blen = 0;
    bool ok = !w.bad && EVP_DigestFinal_ex(w.md, bin, &blen) == 1 && blen == 32;
    for (unsigned i = 0; ok && i < 32; i++)
        snprintf(out + 2 * i, 3, "%02x", bin[i]);
    *vars = w.vars;
    if (w.fd_skip >= 0)
        close(w.fd_skip);
    EVP_MD_CTX_free(w.md);
    buf_free(&w.text);
    return ok;
}

/* True if the workspace's init wrote the lock file over this one (sha256,
 * "" for none) less than INIT_NEVER_MS ago: its init is not remembered,
 * and the configuration need not be hashed. */
static bool never(struct exec_ctx *x, const char *ws, const char *lock)
{
    int64_t now = util_now_ms();
    bool found = false;
    pthread_mutex_lock(&x->init_mu);
    for (int i = 0; i < EXEC_INIT_MAX && !found; i++)
        found = strcmp(x->init_never[i].ws, ws) == 0 &&
                strcmp(x->init_never[i].lock, lock) == 0 &&
                now - x->init_never[i].at_ms < INIT_NEVER_MS;
    pthread_mutex_unlock(&x->init_mu);
    return found;
}

/* Remembers that ws's init wrote the lock file over lock (see never()). */
static void never_put(struct exec_ctx *x, const char *ws, const char *lock)
{
    if (strlen(ws) >= sizeof(x->init_never[0].ws) ||
        strlen(lock) >= sizeof(x->init_never[0].lock))
        return;
    pthread_mutex_lock(&x->init_mu);
    int slot = -1;
    for (int i = 0; i < EXEC_INIT_MAX && slot < 0; i++)
        if (strcmp(x->init_never[i].ws, ws) == 0)
            slot = i;
    if (slot < 0) {
        slot = x->init_never_next;
        x->init_never_next = (x->init_never_next + 1) % EXEC_INIT_MAX;
    }
    snprintf(x->init_never[slot].ws, sizeof(x->init_never[0].ws), "%s", ws);
    snprintf(x->init_never[slot].lock, sizeof(x->init_never[0].lock), "%s",
             lock);
    x->init_never[slot].at_ms = util_now_ms();
    pthread_mutex_unlock(&x->init_mu);
}

bool init_memo_key(struct exec_ctx *x, const struct job *j, struct arena *a,
                   const struct workdir *wd, struct init_key *k)
{
    memset(k, 0, sizeof(*k));
    if (x->init_dir == NULL || j->workspace_id == NULL ||
        strlen(j->workspace_id) >= sizeof(x->inits[0].ws) ||
        j->tool_sha256 == NULL)
        return false;
    struct stat st;
    /* a configuration that brings its own .terraform keeps it */
    if (lstat(arena_printf(a, "%s/.terraform", wd->cwd), &st) == 0 ||
        errno != ENOENT)
        return false;
    /* init elsewhere, or with arguments of the workspace's own (-upgrade
     * asks for a fresh choice every time) */
    for (int i = 0; i < j->nvars; i++)
        if (j->vars[i].env && (strcmp(j->vars[i].key, "TF_DATA_DIR") == 0 ||
                               strcmp(j->vars[i].key, "TF_CLI_ARGS") == 0 ||
                               strcmp(j->vars[i].key, "TF_CLI_ARGS_init") == 0))
            return false;
    k->lock = lock_sha(a, wd->cwd);
    if (k->lock == NULL || never(x, j->workspace_id, k->lock))
        return false;
    char tree[65];
    bool tf_vars = false;
    if (!config_digest(wd, tree, &tf_vars))
        return false;
    pthread_mutex_lock(&x->init_mu);
    for (int i = 0; i < EXEC_INIT_MAX && !tf_vars; i++)
        tf_vars = strcmp(x->init_vars[i], j->workspace_id) == 0;
    pthread_mutex_unlock(&x->init_mu);
    struct buf m;
    buf_init(&m, 0);
    const char *fixed[] = {
        "terrace-init-1",
        j->tool_sha256,
        tree,
        j->working_directory,
        j->api_url,
        j->org,
        j->workspace,
        j->org_id,
        x->o.provider_mirror,
        sandbox_isolated(x->sb) ? "view" : "host",
        tf_vars ? "vars" : "-",
    };
    tr_err e = TR_OK;
    for (size_t i = 0; e == TR_OK && i < sizeof(fixed) / sizeof(*fixed); i++)
        e = field(&m, fixed[i]);
    for (int i = 0; e == TR_OK && i < j->nvars; i++) {
        const struct job_var *v = &j->vars[i];
        if (!v->env && !tf_vars)
            continue;
        e = field(&m, v->env ? "env" : v->hcl ? "hcl" : "tf");
        if (e == TR_OK)
            e = field(&m, v->key);
        if (e == TR_OK)
            e = field(&m, v->value);
    }
    if (e == TR_OK) {
        char *h = digest_hmac_sha256_hex(a, x->init_secret,
                                         sizeof(x->init_secret), m.data, m.len);
        memcpy(k->key, h, sizeof(k->key) - 1);
        k->key[sizeof(k->key) - 1] = '\0';
    }
    explicit_bzero(m.data, m.len);
    buf_free(&m);
    return e == TR_OK;
}

/* ---- copying a .terraform directory ------------------------------------ */

struct copy {
    int entries;
    int64_t bytes;
    const char *prefix; /* every link's target begins with it */
    const char *host;   /* when taking: the host directory prefix names,
                           where each target must exist */
};

static bool link_ok(const struct copy *c, const char *t)
{
    size_t n = strlen(c->prefix);
    if (strncmp(t, c->prefix, n) != 0 || t[n] != '/' || strstr(t, "/..") ||
        strstr(t, "/./"))
        return false;
    if (c->host == NULL)
        return true;
    struct stat st;
    char path[PATH_MAX];
    int w = snprintf(path, sizeof(path), "%s%s", c->host, t + n);
    /* the cache's own entry may be a link into the mirror, which only
     * resolves in the run's view */
    return w > 0 && (size_t)w < sizeof(path) && lstat(path, &st) == 0;
}

static bool copy_file(int sfd, int dfd, const char *name, mode_t mode,
                      struct copy *c)
{
    int in = openat(sfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    struct stat st;
    if (in < 0 || fstat(in, &st) != 0 || !S_ISREG(st.st_mode) ||
        (c->bytes += st.st_size) > INIT_MEMO_BYTES) {
        if (in >= 0)
            close(in);
        return false;
    }
    int out =
        openat(dfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
               (mode & 0777) | 0600);
    bool ok = out >= 0;
    char chunk[16384];
    ssize_t r;
    while (ok && (r = read(in, chunk, sizeof(chunk))) != 0) {
        if (r < 0 && errno == EINTR)
            continue;
        ok = r > 0 && file_write_exact(out, chunk, (size_t)r, NULL) == TR_OK;
    }
    close(in);
    if (out >= 0 && close(out) != 0)
        ok = false;
    return ok;
}

/* Copies the directory sfd into dfd (both closed here). */
static bool copy_tree(int sfd, int dfd, struct copy *c, int depth)
{
    DIR *d = fdopendir(sfd);
    if (d == NULL) {
        close(sfd);
        close(dfd);
        return false;
    }
    bool ok = true;
    struct dirent *de;
    while (ok && (de = readdir(d)) != NULL) {
        const char *name = de->d_name;
        if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
            continue;
        struct stat st;
        ok = ++c->entries <= INIT_MEMO_ENTRIES &&
             fstatat(dirfd(d), name, &st, AT_SYMLINK_NOFOLLOW) == 0;
        if (!ok)
            break;
        if (S_ISDIR(st.st_mode)) {
            ok = depth < INIT_MEMO_DEPTH &&
                 mkdirat(dfd, name, (st.st_mode & 0777) | 0700) == 0;
            int s2 =
                ok ? openat(dirfd(d), name,
                            O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
                   : -1;
            int d2 =
                s2 >= 0
                    ? openat(dfd, name,
                             O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
                    : -1;
            if (s2 >= 0 && d2 < 0)
                close(s2);
            ok = d2 >= 0 && copy_tree(s2, d2, c, depth + 1);
        } else if (S_ISREG(st.st_mode)) {
            ok = copy_file(dirfd(d), dfd, name, st.st_mode, c);
        } else if (S_ISLNK(st.st_mode)) {
            char t[PATH_MAX];
            ssize_t n = readlinkat(dirfd(d), name, t, sizeof(t) - 1);
            ok = n > 0 && (size_t)n < sizeof(t) - 1;
            if (ok)
                t[n] = '\0';
            ok = ok && link_ok(c, t) && symlinkat(t, dfd, name) == 0;
        } else {
            ok = false;
        }
    }
    closedir(d);
    close(dfd);
    return ok;
}

/* Copies the directory from to a new directory to (removed again when
 * the copy fails). */
static bool copy_dir(const char *from, const char *to, struct copy *c)
{
    if (mkdir(to, 0700) != 0)
        return false;
    int s = open(from, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    int d = open(to, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    bool ok = s >= 0 && d >= 0;
    if (ok)
        ok = copy_tree(s, d, c, 0);
    else {
        if (s >= 0)
            close(s);
        if (d >= 0)
            close(d);
    }
    if (!ok)
        workdir_remove(to);
    return ok;
}

/* Where provider links point: the cache as the run sees it. */
static const char *cache_view(const struct exec_ctx *x,
                              const struct workdir *wd)
{
    return sandbox_isolated(x->sb) ? VIEW_CACHE : wd->cache;
}

/* ---- remembering ------------------------------------------------------- */

/* True if modules.json (if any) names only the configuration's own
 * modules. */
static bool modules_local(struct arena *a, const char *dotdir)
{
    const char *dir = arena_printf(a, "%s/modules", dotdir);
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT;
    struct buf b;
    buf_init(&b, MODULES_JSON_MAX);
    bool have = read_small(fd, "modules.json", MODULES_JSON_MAX, &b);
    struct stat st;
    bool absent = !have &&
                  fstatat(fd, "modules.json", &st, AT_SYMLINK_NOFOLLOW) != 0 &&
                  errno == ENOENT;
    close(fd);
    if (!have) {
        buf_free(&b);
        return absent;
    }
    json_t *root = json_loadb(b.data, b.len, 0, NULL);
    buf_free(&b);
    json_t *mods = json_object_get(root, "Modules");
    bool ok = json_is_array(mods);
    size_t i;
    json_t *m;
    json_array_foreach(mods, i, m)
    {
        const char *d = json_string_value(json_object_get(m, "Dir"));
        const char *v = json_string_value(json_object_get(m, "Version"));
        if (d == NULL || d[0] == '/' || strncmp(d, ".terraform", 10) == 0 ||
            (v != NULL && *v != '\0'))
            ok = false;
    }
    json_decref(root);
    return ok;
}

static void entry_free(struct exec_init *e)
{
    free(e->dir);
    memset(e, 0, sizeof(*e));
}

void init_memo_put(struct exec_ctx *x, const struct job *j, struct arena *a,
                   const struct workdir *wd, const struct init_key *k)
{
    if (k->key[0] == '\0')
        return;
    const char *lock = lock_sha(a, wd->cwd);
    const char *dot = arena_printf(a, "%s/.terraform", wd->cwd);
    if (lock != NULL && strcmp(lock, k->lock) != 0) {
        /* init chose provider versions: it will again, every time */
        log_info("executor: job %s: init wrote the lock file; workspace "
                 "%s's init is not remembered while its configuration "
                 "brings %s",
                 j->id, j->workspace_id,
                 *k->lock ? "the same lock file" : "none");
        never_put(x, j->workspace_id, k->lock);
        return;
    }
    if (lock == NULL || !modules_local(a, dot))
        return;
    unsigned char r[8];
    util_random(r, sizeof(r));
    char *to = arena_printf(a, "%s/%s-%02x%02x%02x%02x%02x%02x%02x%02x",
                            x->init_dir, j->workspace_id, r[0], r[1], r[2],
                            r[3], r[4], r[5], r[6], r[7]);
    struct copy c = {.prefix = cache_view(x, wd)};
    if (!copy_dir(dot, to, &c))
        return;
    struct exec_init n = {.dir = strdup(to), .at_ms = util_now_ms()};
    memcpy(n.key, k->key, sizeof(n.key));
    snprintf(n.ws, sizeof(n.ws), "%s", j->workspace_id);
    char *drop = NULL;
    pthread_mutex_lock(&x->init_mu);
    int slot = -1;
    for (int i = 0; i < EXEC_INIT_MAX; i++) {
        struct exec_init *e = &x->inits[i];
        if (e->dir != NULL && strcmp(e->ws, n.ws) == 0) {
            slot = i;
            break;
        }
        if (slot < 0 || (x->inits[slot].dir != NULL &&
                         (e->dir == NULL || e->at_ms < x->inits[slot].at_ms)))
            slot = i;
    }
    drop = x->inits[slot].dir;
    x->inits[slot].dir = NULL;
    entry_free(&x->inits[slot]);
    if (n.dir != NULL)
        x->inits[slot] = n;
    pthread_mutex_unlock(&x->init_mu);
    if (n.dir == NULL)
        workdir_remove(to);
    workdir_remove(drop);
    free(drop);
}

bool init_memo_take(struct exec_ctx *x, const struct job *j, struct arena *a,
                    const struct workdir *wd, const struct init_key *k)
{
    if (k->key[0] == '\0')
        return false;
    const char *to = arena_printf(a, "%s/.terraform", wd->cwd);
    struct copy c = {.prefix = cache_view(x, wd), .host = wd->cache};
    bool found = false, ok = false;
    pthread_mutex_lock(&x->init_mu);
    for (int i = 0; i < EXEC_INIT_MAX && !found; i++) {
        struct exec_init *e = &x->inits[i];
        if (e->dir == NULL || strcmp(e->ws, j->workspace_id) != 0)
            continue;
        found = true;
        ok = strcmp(e->key, k->key) == 0 && copy_dir(e->dir, to, &c);
        if (ok)
            e->at_ms = util_now_ms();
    }
    pthread_mutex_unlock(&x->init_mu);
    if (ok && workdir_give(x, to, true, NULL) != TR_OK) {
        workdir_remove(to);
        ok = false;
    }
    return ok;
}

void init_memo_drop(struct exec_ctx *x, const char *ws)
{
    char *drop = NULL;
    pthread_mutex_lock(&x->init_mu);
    for (int i = 0; i < EXEC_INIT_MAX && ws != NULL; i++) {
        if (x->inits[i].dir != NULL && strcmp(x->inits[i].ws, ws) == 0) {
            drop = x->inits[i].dir;
            x->inits[i].dir = NULL;
            entry_free(&x->inits[i]);
        }
    }
    pthread_mutex_unlock(&x->init_mu);
    workdir_remove(drop);
    free(drop);
}

void init_memo_misfit(struct exec_ctx *x, const char *ws)
{
    init_memo_drop(x, ws);
    if (ws == NULL || strlen(ws) >= sizeof(x->init_vars[0]))
        return;
    pthread_mutex_lock(&x->init_mu);
    bool known = false;
    for (int i = 0; i < EXEC_INIT_MAX && !known; i++)
        known = strcmp(x->init_vars[i], ws) == 0;
    if (!known) {
        snprintf(x->init_vars[x->init_vars_next], sizeof(x->init_vars[0]), "%s",
                 ws);
        x->init_vars_next = (x->init_vars_next + 1) % EXEC_INIT_MAX;
    }
    pthread_mutex_unlock(&x->init_mu);
}

void init_memo_clear(struct exec_ctx *x)
{
    pthread_mutex_lock(&x->init_mu);
    for (int i = 0; i < EXEC_INIT_MAX; i++) {
        workdir_remove(x->inits[i].dir);
        entry_free(&x->inits[i]);
    }
    pthread_mutex_unlock(&x->init_mu);
}
