/*
 * executor.c - the worker threads (claim -> run -> finish) and the tool
 * binary helpers of executor.h.
 *
 * A worker owns one arena per claimed job, destroyed when the job is
 * finished.  Shutdown sets the stopping flag: idle workers return from
 * their claim within claim_wait_ms, busy ones interrupt tofu (tofu.c) and
 * finish their job as errored before they exit.
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#include "executor/executor.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <jansson.h>
#include <limits.h>
#include <openssl/evp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/log.h"
#include "core/util.h"
#include "executor/executor_int.h"

#define VERSION_TIMEOUT_MS 10000
#define VERSION_MAX_OUTPUT (64 << 10)
#define CLAIM_BACKOFF_MS 1000

struct executor {
    struct exec_ctx cx;
    struct arena *arena; /* option strings and paths */
    pthread_t *threads;
    int nthreads;
    pthread_t warm; /* executor_prewarm()'s thread */
    bool warming;
    char **warm_paths; /* in arena */
    int nwarm;
};

void executor_defaults(struct executor_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->workers = 2;
    o->node = "local";
    o->plan_timeout_s = 2 * 3600;
    o->apply_timeout_s = 2 * 3600;
    o->grace_ms = 10000;
    o->lost_grace_ms = 120000;
    o->heartbeat_ms = 2000;
    o->flush_ms = 200;
    o->claim_wait_ms = 1000;
    o->keep_ms = 600000;
    o->run_uid = 1000000000;
    o->run_memory_mb = 4096;
    o->run_tasks = 2048;
    o->run_disk_mb = 20480;
    o->run_cpu_s = 7200;
    o->run_open_files = 4096;
    o->run_gogc = 800;
    o->max_config_size = 512LL * 1024 * 1024;
    o->max_config_ratio = 500;
}

/* ---- worker threads ---------------------------------------------------- */

static void pause_ms(struct exec_ctx *cx, int ms)
{
    for (int t = 0; t < ms && !atomic_load(&cx->stopping); t += 50)
        poll(NULL, 0, 50);
}

static void *worker(void *arg)
{
    struct exec_ctx *cx = arg;
    bool failing = false; /* claims fail: said once, not every second */
    while (!atomic_load(&cx->stopping)) {
        struct arena *a = arena_new();
        struct job j;
        memset(&j, 0, sizeof(j));
        struct tr_errbuf eb = {{0}};
        tr_err e = cx->api.claim(cx->api.ctx, a, cx->o.node,
                                 cx->o.claim_wait_ms, &j, &eb);
        if (failing && (e == TR_OK || e == TR_ERR_NOT_FOUND)) {
            log_info("executor: claims go through again");
            failing = false;
        }
        if (e == TR_OK) {
            tofu_run_job(cx, &j, a);
        } else if (e != TR_ERR_NOT_FOUND) {
            if (!failing)
                log_warn("executor: cannot claim a job, retrying: %s",
                         tr_errbuf_msg(&eb, e));
            failing = true;
            pause_ms(cx, CLAIM_BACKOFF_MS);
        }
        arena_destroy(a);
        keep_sweep(cx, false);
    }
    return NULL;
}

/* Removes what a previous process left in the work directory. */
static void clean_work_dir(struct arena *a, const char *dir)
{
    DIR *d = opendir(dir);
    if (d == NULL)
        return;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        char *p = arena_printf(a, "%s/%s", dir, de->d_name);
        log_info("executor: removing leftover %s", p);
        workdir_remove(p);
    }
    closedir(d);
}

/* The per-process rlimits for o's per-run limits.  RLIMIT_NPROC counts
 * the run user's tasks on the whole node, so it allows every worker its
 * share plus bubblewrap's own; a run over its share is stopped by the
 * monitor. */
static struct sandbox_limits sandbox_limits_of(const struct executor_opts *o)
{
    int64_t mb = 1024 * 1024;
    return (struct sandbox_limits){
        .data_bytes = o->run_memory_mb > 0 ? o->run_memory_mb * mb : 0,
        .tasks = o->run_tasks > 0
                     ? o->run_tasks * (o->workers > 0 ? o->workers : 1) + 64
                     : 0,
        .cpu_s = o->run_cpu_s,
        .open_files = o->run_open_files,
        .file_bytes = o->run_disk_mb > 0 ? o->run_disk_mb * mb : 0,
    };
}

static tr_err ensure_dir(const char *path, struct tr_errbuf *eb)
{
    if (mkdir(path, 0700) != 0 && errno != EEXIST)
        return tr_fail(eb, TR_ERR_IO, "cannot create %s: %s", path,
                       strerror(errno));
    return TR_OK;
}

tr_err executor_start(const struct executor_opts *o, const struct job_api *api,
                      struct executor **out, struct tr_errbuf *eb)
{
    *out = NULL;
    if (o->data_dir == NULL || o->workers < 0 || o->workers > 256)
        return tr_fail(eb, TR_ERR_CONFIG, "bad executor options");
    struct executor *x = calloc(1, sizeof(*x));
    if (x == NULL)
        return tr_fail(eb, TR_ERR_NOMEM, "out of memory");
    x->arena = arena_new();
    struct exec_ctx *cx = &x->cx;
    cx->o = *o;
    cx->o.node = arena_strdup(x->arena, o->node ? o->node : "local");
    cx->o.data_dir = arena_strdup(x->arena, o->data_dir);
    cx->o.provider_mirror = arena_strdup(x->arena, o->provider_mirror);
    cx->o.bwrap = arena_strdup(x->arena, o->bwrap);
    cx->api = *api;
    atomic_init(&cx->stopping, false);
    pthread_mutex_init(&cx->memo_mu, NULL);
    pthread_mutex_init(&cx->keep_mu, NULL);
    pthread_mutex_init(&cx->init_mu, NULL);
    util_random(cx->init_secret, sizeof(cx->init_secret));
    char real[PATH_MAX];
    const char *data = realpath(o->data_dir, real) ? real : o->data_dir;
    cx->work_dir = arena_printf(x->arena, "%s/work", data);
    cx->cache_dir = arena_printf(x->arena, "%s/provider-cache", data);
    /* one cache shared by every organization, as earlier versions kept
     * it, is exactly what must not be reused */
    workdir_remove(arena_printf(x->arena, "%s/plugin-cache", data));
    tr_err e = ensure_dir(cx->work_dir, eb);
    if (e == TR_OK)
        e = ensure_dir(cx->cache_dir, eb);
    const char *init_dir = arena_printf(x->arena, "%s/init-cache", data);
    if (e == TR_OK && ensure_dir(init_dir, NULL) == TR_OK) {
        clean_work_dir(x->arena, init_dir);
        cx->init_dir = init_dir;
    }
    if (e == TR_OK) {
        clean_work_dir(x->arena, cx->work_dir);
        e = sandbox_new(
            &(struct sandbox_opts){
                .bwrap = cx->o.bwrap,
                .run_uid = (uid_t)o->run_uid,
                .run_gid = (gid_t)o->run_uid,
                .limits = sandbox_limits_of(o),
                .hide = o->hide,
                .etc_dir = arena_printf(x->arena, "%s/sandbox-etc", data),
            },
            &cx->sb, eb);
    }
    if (e == TR_OK && !sandbox_isolated(cx->sb))
        log_warn("%s", o->allow_unsandboxed
                           ? "runs are NOT isolated: they run as this "
                             "node's user and can read its data, keys and "
                             "other runs (allow-unsandboxed-runs = on)"
                           : "runs are refused: this node has no sandbox; "
                             "set allow-unsandboxed-runs = on to run them "
                             "anyway, at that risk");
    if (e == TR_OK && !sandbox_isolated(cx->sb))
        log_warn("sandbox: %s", sandbox_reason(cx->sb));
    if (e == TR_OK && o->workers > 0) {
        x->threads = calloc((size_t)o->workers, sizeof(*x->threads));
        if (x->threads == NULL)
            e = tr_fail(eb, TR_ERR_NOMEM, "out of memory");
    }
    for (int i = 0; e == TR_OK && i < o->workers; i++) {
        int rc = pthread_create(&x->threads[i], NULL, worker, cx);
        if (rc != 0)
            e = tr_fail(eb, TR_ERR_INTERNAL, "cannot start a worker: %s",
                        strerror(rc));
        else
            x->nthreads++;
    }
    if (e != TR_OK) {
        executor_stop(x);
        return e;
    }
    log_info("executor: %d worker%s, work dir %s", x->nthreads,
             x->nthreads == 1 ? "" : "s", cx->work_dir);
    *out = x;
    return TR_OK;
}

/* Hashes the tools executor_prewarm() named, filling the memo. */
static void *prewarm(void *arg)
{
    struct executor *x = arg;
    for (int i = 0; i < x->nwarm && !atomic_load(&x->cx.stopping); i++) {
        struct arena *a = arena_new();
        char *sha = NULL;
        exec_tool_sha(&x->cx, a, x->warm_paths[i], &sha, NULL);
        arena_destroy(a);
    }
    return NULL;
}

void executor_prewarm(struct executor *x, const char *const *paths, int n)
{
    if (x == NULL || x->warming || n <= 0)
        return;
    x->warm_paths = arena_alloc(x->arena, sizeof(char *) * (size_t)n);
    for (int i = 0; i < n; i++)
        x->warm_paths[i] = arena_strdup(x->arena, paths[i]);
    x->nwarm = n;
    x->warming = pthread_create(&x->warm, NULL, prewarm, x) == 0;
}

void executor_stop(struct executor *x)
{
    if (x == NULL)
        return;
    atomic_store(&x->cx.stopping, true);
    if (x->warming)
        pthread_join(x->warm, NULL);
    for (int i = 0; i < x->nthreads; i++)
        pthread_join(x->threads[i], NULL);
    free(x->threads);
    keep_sweep(&x->cx, true);
    init_memo_clear(&x->cx);
    sandbox_free(x->cx.sb);
    pthread_mutex_destroy(&x->cx.memo_mu);
    pthread_mutex_destroy(&x->cx.keep_mu);
    pthread_mutex_destroy(&x->cx.init_mu);
    arena_destroy(x->arena);
    free(x);
}

int executor_kept(struct executor *x)
{
    if (x == NULL)
        return 0;
    int n = 0;
    pthread_mutex_lock(&x->cx.keep_mu);
    for (int i = 0; i < EXEC_KEEP_MAX; i++)
        n += x->cx.keep[i].root != NULL;
    pthread_mutex_unlock(&x->cx.keep_mu);
    return n;
}

bool executor_sandboxed(const struct executor *x)
{
    return x != NULL && sandbox_isolated(x->cx.sb);
}

const char *executor_sandbox_json(const struct executor *x, struct arena *a)
{
    if (x == NULL)
        return "{\"runs\":\"none\"}";
    const struct sandbox *sb = x->cx.sb;
    bool iso = sandbox_isolated(sb);
    json_t *o =
        json_pack("{s:b, s:s, s:s}", "isolated", iso, "user",
                  sandbox_own_user(sb) ? "unprivileged" : "node", "runs",
                  iso || x->cx.o.allow_unsandboxed ? "allowed" : "refused");
    if (o != NULL && !iso)
        json_object_set_new(o, "reason", json_string(sandbox_reason(sb)));
    char *text = o != NULL ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    const char *out = arena_strdup(a, text ? text : "{}");
    free(text);
    return out;
}

/* ---- tool binaries ----------------------------------------------------- */

tr_err exec_file_sha256(struct arena *a, const char *path, char **sha256,
                        struct tr_errbuf *eb)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return tr_fail(eb, TR_ERR_IO, "cannot read %s: %s", path,
                       strerror(errno));
    /* sha256 alone (digest_stream adds md5, doubling the cost for a
     * binary of 100 MB and more) */
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    bool ok = md != NULL && EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1;
    char *chunk = ok ? malloc(1 << 20) : NULL;
    ssize_t n = 0;
    int err = 0;
    while (chunk != NULL && (n = read(fd, chunk, 1 << 20)) != 0) {
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 || EVP_DigestUpdate(md, chunk, (size_t)n) != 1) {
            err = n < 0 ? errno : EIO;
            break;
        }
    }
    unsigned char bin[EVP_MAX_MD_SIZE];
    unsigned int blen = 0;
    ok = chunk != NULL && err == 0 && EVP_DigestFinal_ex(md, bin, &blen) == 1;
    close(fd);
    free(chunk);
    EVP_MD_CTX_free(md);
    if (!ok)
        return tr_fail(eb, TR_ERR_IO, "cannot read %s: %s", path,
                       strerror(err ? err : EIO));
    char *hex = arena_alloc(a, 2 * blen + 1);
    for (unsigned int i = 0; i < blen; i++)
        snprintf(hex + 2 * i, 3, "%02x", bin[i]);
    *sha256 = hex;
    return TR_OK;
}

tr_err executor_tool_check(struct arena *a, const char *path, char **sha256,
                           struct tr_errbuf *eb)
{
    struct stat st;
    if (path == NULL || path[0] != '/')
        return tr_fail(eb, TR_ERR_INVALID, "the path must be absolute");
    if (stat(path, &st) != 0)
        return tr_fail(eb, TR_ERR_INVALID, "%s does not exist", path);
    if (!S_ISREG(st.st_mode))
        return tr_fail(eb, TR_ERR_INVALID, "%s is not a regular file", path);
    if (access(path, X_OK) != 0 || (st.st_mode & 0111) == 0)
        return tr_fail(eb, TR_ERR_INVALID, "%s is not executable", path);
    return exec_file_sha256(a, path, sha256, eb);
}

static bool same_file(const struct tool_memo *m, const char *path,
                      const struct stat *st)
{
    return strcmp(m->path, path) == 0 && m->dev == st->st_dev &&
           m->ino == st->st_ino && m->size == st->st_size &&
           m->mtime.tv_sec == st->st_mtim.tv_sec &&
           m->mtime.tv_nsec == st->st_mtim.tv_nsec &&
           m->ctime.tv_sec == st->st_ctim.tv_sec &&
           m->ctime.tv_nsec == st->st_ctim.tv_nsec;
}

/* The sidecar's line for a file as stat() sees it and its checksum. */
static void sidecar_line(char *out, size_t n, const struct stat *st,
                         const char *sha256)
{
    snprintf(out, n, "%s %llu %llu %lld %lld.%09ld\n", sha256,
             (unsigned long long)st->st_dev, (unsigned long long)st->st_ino,
             (long long)st->st_size, (long long)st->st_mtim.tv_sec,
             st->st_mtim.tv_nsec);
}

bool exec_sidecar_read(struct arena *a, const char *path, char **sha256)
{
    struct stat st;
    char line[256], want[256];
    const char *side = arena_printf(a, "%s.sha256", path);
    int fd = open(side, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return false;
    ssize_t got = read(fd, line, sizeof(line) - 1);
    close(fd);
    if (got < 65 || stat(path, &st) != 0 || !S_ISREG(st.st_mode))
        return false;
    line[got] = '\0';
    sidecar_line(want, sizeof(want), &st, "");
    /* the checksum, then the file as it was when it was verified */
    if (line[64] != ' ' || strcmp(line + 64, want) != 0)
        return false;
    *sha256 = arena_strndup(a, line, 64);
    for (int i = 0; i < 64; i++)
        if (!((line[i] >= '0' && line[i] <= '9') ||
              (line[i] >= 'a' && line[i] <= 'f')))
            return false;
    return true;
}

tr_err exec_sidecar_write(struct arena *a, const char *path, const char *sha256,
                          struct tr_errbuf *eb)
{
    struct stat st;
    char line[256];
    if (stat(path, &st) != 0)
        return tr_fail(eb, TR_ERR_IO, "cannot stat %s: %s", path,
                       strerror(errno));
    sidecar_line(line, sizeof(line), &st, sha256);
    const char *side = arena_printf(a, "%s.sha256", path);
    char *tmp = arena_printf(a, "%s.XXXXXX", side);
    int fd = mkstemp(tmp);
    if (fd < 0)
        return tr_fail(eb, TR_ERR_IO, "cannot create %s: %s", tmp,
                       strerror(errno));
    size_t len = strlen(line);
    bool ok = write(fd, line, len) == (ssize_t)len && fsync(fd) == 0;
    ok = close(fd) == 0 && ok;
    ok = ok && rename(tmp, side) == 0;
    if (!ok) {
        int err = errno;
        unlink(tmp);
        return tr_fail(eb, TR_ERR_IO, "cannot write %s: %s", side,
                       strerror(err));
    }
    return TR_OK;
}

tr_err exec_tool_sha(struct exec_ctx *x, struct arena *a, const char *path,
                     char **sha256, struct tr_errbuf *eb)
{
    struct stat before, after;
    bool memo = path != NULL && strlen(path) < sizeof(x->memo[0].path) &&
                stat(path, &before) == 0;
    if (memo) {
        pthread_mutex_lock(&x->memo_mu);
        for (int i = 0; i < EXEC_TOOL_MEMOS; i++)
            if (same_file(&x->memo[i], path, &before)) {
                *sha256 = arena_strdup(a, x->memo[i].sha256);
                pthread_mutex_unlock(&x->memo_mu);
                return TR_OK;
            }
        pthread_mutex_unlock(&x->memo_mu);
    }
    /* a cached tool verified when it was stored (job_http.c) */
    if (memo && S_ISREG(before.st_mode) && access(path, X_OK) == 0 &&
        exec_sidecar_read(a, path, sha256))
        return TR_OK;
    tr_err e = executor_tool_check(a, path, sha256, eb);
    if (e != TR_OK || !memo || stat(path, &after) != 0 ||
        after.st_ctim.tv_sec != before.st_ctim.tv_sec ||
        after.st_ctim.tv_nsec != before.st_ctim.tv_nsec)
        return e; /* changed while hashed: not remembered */
    pthread_mutex_lock(&x->memo_mu);
    struct tool_memo *m = &x->memo[x->memo_next];
    x->memo_next = (x->memo_next + 1) % EXEC_TOOL_MEMOS;
    snprintf(m->path, sizeof(m->path), "%s", path);
    m->dev = before.st_dev;
    m->ino = before.st_ino;
    m->size = before.st_size;
    m->mtime = before.st_mtim;
    m->ctime = before.st_ctim;
    snprintf(m->sha256, sizeof(m->sha256), "%s", *sha256);
    pthread_mutex_unlock(&x->memo_mu);
    return TR_OK;
}

tr_err executor_tool_version(struct arena *a, const char *path, char **version,
                             struct tr_errbuf *eb)
{
    struct sandbox *sb = NULL;
    /* the site admin's binary, run as the node: no sandbox */
    tr_err e = sandbox_new(&(struct sandbox_opts){.bwrap = "none"}, &sb, eb);
    if (e != TR_OK)
        return e;
    const char *const argv[] = {path, "version", "-json", NULL};
    const char *const envp[] = {
        "PATH=/usr/local/bin:/usr/bin:/bin", "HOME=/nonexistent",
        "TF_CLI_CONFIG_FILE=/dev/null", "CHECKPOINT_DISABLE=1", NULL};
    struct sandbox_cmd cmd = {
        .argv = argv, .envp = envp, .cwd = "/", .stdout_fd = -1};
    pid_t pid = -1;
    int fd = -1;
    struct buf out;
    buf_init(&out, VERSION_MAX_OUTPUT);
    e = sandbox_spawn(sb, a, &cmd, &pid, &fd, eb);
    if (e != TR_OK)
        goto done;
    int64_t deadline = util_now_ms() + VERSION_TIMEOUT_MS;
    for (;;) {
        int64_t left = deadline - util_now_ms();
        struct pollfd pf = {.fd = fd, .events = POLLIN};
        if (left <= 0 || poll(&pf, 1, (int)left) <= 0)
            break;
        char chunk[4096];
        ssize_t n = read(fd, chunk, sizeof(chunk));
        if (n < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (n <= 0 || buf_append(&out, chunk, (size_t)n) != TR_OK)
            break;
    }
    kill(-pid, SIGKILL);
    int status = 0;
    waitpid(pid, &status, 0);
    json_t *doc = WIFEXITED(status) && WEXITSTATUS(status) == 0
                      ? json_loadb(out.data ? out.data : "", out.len, 0, NULL)
                      : NULL;
    const char *v =
        json_string_value(json_object_get(doc, "terraform_version"));
    if (v != NULL)
        *version = arena_strdup(a, v);
    else
        e = tr_fail(eb, TR_ERR_INVALID,
                    "%s version -json did not name a version", path);
    json_decref(doc);
done:
    if (fd >= 0)
        close(fd);
    buf_free(&out);
    sandbox_free(sb);
    return e;
}

/* path made absolute in a, if it is an executable regular file. */
static const char *usable(struct arena *a, const char *path)
{
    char real[PATH_MAX];
    struct stat st;
    if (path == NULL || *path == '\0' || realpath(path, real) == NULL ||
        stat(real, &st) != 0 || !S_ISREG(st.st_mode) || access(real, X_OK) != 0)
        return NULL;
    return arena_strdup(a, real);
}

static const char *find_on_path(struct arena *a, const char *name)
{
    const char *path = getenv("PATH");
    char *copy = arena_strdup(a, path ? path : ""), *save = NULL;
    for (char *d = strtok_r(copy, ":", &save); d != NULL;
         d = strtok_r(NULL, ":", &save)) {
        const char *p = usable(a, arena_printf(a, "%s/%s", d, name));
        if (p != NULL && d[0] == '/')
            return p;
    }
    return NULL;
}

static int by_version(const void *x, const void *y)
{
    return strverscmp(*(char *const *)x, *(char *const *)y);
}

const char *executor_find_tofu(struct arena *a, const char *configured)
{
    if (configured != NULL && *configured != '\0') {
        const char *p = usable(a, configured);
        if (p == NULL)
            log_warn("executor: %s is not an executable file", configured);
        return p;
    }
    const char *p = find_on_path(a, "tofu");
    if (p != NULL)
        return p;
    const char *home = getenv("HOME");
    if (home == NULL || *home == '\0')
        return NULL;
    glob_t g;
    const char *pat = arena_printf(a, "%s/.cache/terrace/tofu-*/tofu", home);
    if (glob(pat, 0, NULL, &g) != 0)
        return NULL;
    qsort(g.gl_pathv, g.gl_pathc, sizeof(char *), by_version);
    for (size_t i = g.gl_pathc; p == NULL && i > 0; i--)
        p = usable(a, g.gl_pathv[i - 1]);
    globfree(&g);
    return p;
}
