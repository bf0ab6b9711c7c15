/*
 * sandbox.c - spawning a tenant's program under bubblewrap (sandbox.h).
 *
 * Everything the child needs (argv, environment, descriptors, the
 * argument file for bwrap) is built before fork(); between fork() and
 * execve() the child makes only async-signal-safe system calls, as a
 * child of a multi-threaded process must.  An exec failure travels back
 * through a close-on-exec pipe as an errno, so sandbox_spawn() can tell
 * "cannot run" from "ran and failed".
 *
 * bubblewrap's options ("--args FD") are NUL-separated in a memfd: the
 * mounts and the --setenv pairs, so that no variable's value is ever on a
 * command line; only the program's argv follows "--" (bwrap takes the
 * command from nowhere else).  The seccomp program and /etc/passwd and
 * /etc/group travel in three more memfds.  All
 * four are close-on-exec until the child clears the flag on them, so a
 * concurrent fork in another thread never inherits them.
 *
 * A run's processes get nice SANDBOX_NICE: on a node short of CPU the
 * daemon's heartbeats and HTTP answers go first.
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#include "executor/sandbox.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/log.h"
#include "core/util.h"
#include "executor/executor_int.h"

#define PROBE_TIMEOUT_MS 10000
/* runs are niced: a run cannot make itself less nice (no CAP_SYS_NICE) */
#define SANDBOX_NICE 10
#define MAX_ARG_BYTES (64 << 20)
/* a superseded copy of /etc stays this long for the runs that bound it
 * (sandbox_etc.c): longer than phases run in practice (the default plan
 * and apply timeouts are hours); a run still going after that sees its
 * copy emptied */
#define SANDBOX_ETC_KEEP_MS ((int64_t)48 * 3600 * 1000)

struct sandbox {
    char *bwrap;   /* NULL: not isolated */
    char *env;     /* env(1), which can reset SIGINT */
    char *setpriv; /* setpriv(1) (root only) */
    bool root;     /* the node runs as root: drop to the run user */
    uid_t uid;
    gid_t gid;
    struct sandbox_limits lim;
    unsigned char *bpf;
    size_t bpf_len;
    char **hide; /* paths to mask inside the sandbox */
    int nhide;
    struct sandbox_etc *etc; /* /etc as one prepared directory, or NULL */
    char reason[256];
};

/* What the child does between fork() and execve(). */
struct plan {
    const char *const *argv;
    const char *const *envp;
    const char *cwd; /* NULL: bwrap changes directory itself */
    int devnull, out_fd, pipe_w, err_w;
    int keep[4]; /* descriptors bwrap reads; -1 unused */
    bool ignore_int;
    bool drop_user; /* setuid to the run user before the exec */
    uid_t uid;
    gid_t gid;
    const struct sandbox_limits *lim;
    pid_t parent;
};

/* ---- the child --------------------------------------------------------- */

static void set_limit(int res, int64_t cap)
{
    struct rlimit rl;
    if (cap <= 0 || getrlimit(res, &rl) != 0)
        return;
    if (rl.rlim_max == RLIM_INFINITY || rl.rlim_max > (rlim_t)cap)
        rl.rlim_max = (rlim_t)cap;
    if (rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur > rl.rlim_max)
        rl.rlim_cur = rl.rlim_max;
    setrlimit(res, &rl);
}

/* A descriptor that is not 0, 1 or 2, so the dup2() calls below cannot
 * clobber one source with another. */
static int high_fd(int fd)
{
    return fd >= 0 && fd < 3 ? fcntl(fd, F_DUPFD_CLOEXEC, 3) : fd;
}

static _Noreturn void child(const struct plan *p)
{
    struct sigaction dfl = {.sa_handler = SIG_DFL};
    for (int s = 1; s < NSIG; s++)
        if (s != SIGKILL && s != SIGSTOP)
            sigaction(s, &dfl, NULL);
    if (p->ignore_int) {
        struct sigaction ign = {.sa_handler = SIG_IGN};
        sigaction(SIGINT, &ign, NULL);
    }
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    int err = 0;
    if (setsid() < 0 || prctl(PR_SET_PDEATHSIG, SIGKILL) != 0)
        goto fail;
    if (getppid() != p->parent)
        _exit(127); /* the parent thread died already */
    int in = high_fd(p->devnull), w = high_fd(p->pipe_w);
    int out = p->out_fd >= 0 ? high_fd(p->out_fd) : w;
    if (in < 0 || w < 0 || out < 0 || dup2(in, 0) < 0 || dup2(out, 1) < 0 ||
        dup2(w, 2) < 0)
        goto fail;
    /* nothing else of the daemon's survives the exec */
    if (close_range(3, ~0U, CLOSE_RANGE_CLOEXEC) != 0)
        goto fail;
    for (int i = 0; i < 4; i++)
        if (p->keep[i] >= 0 && fcntl(p->keep[i], F_SETFD, 0) != 0)
            goto fail;
    struct rlimit core0 = {0, 0};
    setrlimit(RLIMIT_CORE, &core0);
    /* the node's own threads (heartbeats, its HTTP answers, a primary's
     * readiness) come before the tenant's code when the CPU is short */
    setpriority(PRIO_PROCESS, 0, SANDBOX_NICE);
    set_limit(RLIMIT_DATA, p->lim->data_bytes);
    set_limit(RLIMIT_NOFILE, p->lim->open_files);
    set_limit(RLIMIT_NPROC, p->lim->tasks);
    set_limit(RLIMIT_FSIZE, p->lim->file_bytes);
    if (p->lim->cpu_s > 0) {
        /* SIGXCPU at the limit, SIGKILL a little later */
        struct rlimit cpu = {(rlim_t)p->lim->cpu_s, (rlim_t)p->lim->cpu_s + 5};
        setrlimit(RLIMIT_CPU, &cpu);
    }
    if (p->drop_user &&
        (setgroups(0, NULL) != 0 || setresgid(p->gid, p->gid, p->gid) != 0 ||
         setresuid(p->uid, p->uid, p->uid) != 0))
        goto fail;
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
        goto fail;
    if (p->cwd != NULL && chdir(p->cwd) != 0)
        goto fail;
    execve(p->argv[0], (char *const *)p->argv, (char *const *)p->envp);
fail:
    err = errno;
    if (write(p->err_w, &err, sizeof(err)) < 0)
        _exit(126);
    _exit(127);
}

/* Forks and execs p (argv, envp, cwd, out_fd, keep and the user set by
 * the caller); fills the pipe descriptors itself. */
static tr_err start(struct plan *p, pid_t *pid_out, int *out_fd,
                    struct tr_errbuf *eb)
{
    int pipefd[2] = {-1, -1}, errfd[2] = {-1, -1};
    tr_err e = TR_OK;
    int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (devnull < 0 || pipe2(pipefd, O_CLOEXEC) != 0 ||
        pipe2(errfd, O_CLOEXEC) != 0) {
        e = tr_fail(eb, TR_ERR_IO, "cannot create pipes: %s", strerror(errno));
        goto out;
    }
    p->devnull = devnull;
    p->pipe_w = pipefd[1];
    p->err_w = errfd[1];
    p->parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        e = tr_fail(eb, TR_ERR_IO, "cannot fork: %s", strerror(errno));
        goto out;
    }
    if (pid == 0)
        child(p);
    close(pipefd[1]);
    pipefd[1] = -1;
    close(errfd[1]);
    errfd[1] = -1;
    int child_err = 0;
    ssize_t n;
    do {
        n = read(errfd[0], &child_err, sizeof(child_err));
    } while (n < 0 && errno == EINTR);
    if (n == (ssize_t)sizeof(child_err)) {
        waitpid(pid, NULL, 0);
        e = tr_fail(eb, TR_ERR_IO, "cannot run %s: %s", p->argv[0],
                    strerror(child_err));
        goto out;
    }
    fcntl(pipefd[0], F_SETFL, fcntl(pipefd[0], F_GETFL) | O_NONBLOCK);
    *pid_out = pid;
    *out_fd = pipefd[0];
    pipefd[0] = -1;
out:
    for (int i = 0; i < 2; i++) {
        if (pipefd[i] >= 0)
            close(pipefd[i]);
        if (errfd[i] >= 0)
            close(errfd[i]);
    }
    if (devnull >= 0)
        close(devnull);
    return e;
}

/* ---- bubblewrap's arguments -------------------------------------------- */

/* /etc entries a program may need: name resolution, certificates, the
 * dynamic loader, time zones, ssh and git defaults.  Nothing that holds
 * a secret (shadow, ssl/private, ssh host keys, Terrace's own config). */
static const char *const etc_entries[] = {
    "resolv.conf",
    "hosts",
    "host.conf",
    "nsswitch.conf",
    "gai.conf",
    "services",
    "protocols",
    "localtime",
    "timezone",
    "ld.so.cache",
    "ld.so.conf",
    "ld.so.conf.d",
    "alternatives",
    "ssl/certs",
    "ssl/openssl.cnf",
    "ca-certificates",
    "ca-certificates.conf",
    "ssh/ssh_config",
    "ssh/ssh_config.d",
    "gitconfig",
    "mime.types",
    "os-release",
    "debian_version",
};

/* Top-level links or directories that lead into /usr. */
static const char *const usr_links[] = {"bin",   "sbin",  "lib",
                                        "lib32", "lib64", "libx32"};

struct args {
    struct buf b;
    tr_err e;
};

static void arg(struct args *a, const char *s)
{
    if (a->e == TR_OK)
        a->e = buf_append(&a->b, s, strlen(s) + 1);
}

static void arg2(struct args *a, const char *x, const char *y)
{
    arg(a, x);
    arg(a, y);
}

static void arg3(struct args *a, const char *x, const char *y, const char *z)
{
    arg(a, x);
    arg(a, y);
    arg(a, z);
}

static void dir755(struct args *a, const char *path)
{
    arg2(a, "--perms", "0755");
    arg2(a, "--dir", path);
}

/* The system part of the mount tree: /usr and its links, /etc's list
 * (the prepared copy etc, or the entries one by one). */
static void system_mounts(struct args *a, const char *etc)
{
    arg3(a, "--ro-bind", "/usr", "/usr");
    for (size_t i = 0; i < sizeof(usr_links) / sizeof(*usr_links); i++) {
        char path[32], target[256];
        snprintf(path, sizeof(path), "/%s", usr_links[i]);
        ssize_t n = readlink(path, target, sizeof(target) - 1);
        struct stat st;
        if (n > 0) {
            target[n] = '\0';
            arg3(a, "--symlink", target, path);
        } else if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
            arg3(a, "--ro-bind", path, path);
        }
    }
    if (etc != NULL) {
        arg3(a, "--ro-bind", etc, "/etc");
        return;
    }
    dir755(a, "/etc");
    dir755(a, "/etc/ssl");
    dir755(a, "/etc/ssh");
    for (size_t i = 0; i < sizeof(etc_entries) / sizeof(*etc_entries); i++) {
        char path[128];
        snprintf(path, sizeof(path), "/etc/%s", etc_entries[i]);
        arg3(a, "--ro-bind-try", path, path);
    }
}

/* A memfd holding len bytes of p, positioned at 0, close-on-exec; -1 on
 * failure. */
static int memfd_with(const char *name, const void *p, size_t len)
{
    int fd = memfd_create(name, MFD_CLOEXEC);
    if (fd < 0)
        return -1;
    size_t off = 0;
    while (off < len) {
        ssize_t n = write(fd, (const char *)p + off, len - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            close(fd);
            return -1;
        }
        off += (size_t)n;
    }
    if (lseek(fd, 0, SEEK_SET) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static bool under(const char *path, const char *dir)
{
    size_t n = strlen(dir);
    return strncmp(path, dir, n) == 0 && (path[n] == '/' || path[n] == '\0');
}

/* The masks over hidden paths that the system mounts would show (the
 * prepared /etc, etc_copy, has none of them). */
static void hide_mounts(const struct sandbox *sb, struct args *a, bool etc_copy)
{
    for (int i = 0; i < sb->nhide; i++) {
        const char *h = sb->hide[i];
        bool shown = under(h, "/usr");
        for (size_t k = 0; !shown && !etc_copy &&
                           k < sizeof(etc_entries) / sizeof(*etc_entries);
             k++) {
            char e[128];
            snprintf(e, sizeof(e), "/etc/%s", etc_entries[k]);
            shown = under(h, e);
        }
        struct stat st;
        if (!shown || stat(h, &st) != 0)
            continue;
        if (S_ISDIR(st.st_mode))
            arg2(a, "--tmpfs", h);
        else
            arg3(a, "--ro-bind", "/dev/null", h);
    }
}

static void close_keep(int *keep)
{
    for (int i = 0; i < 4; i++)
        if (keep[i] >= 0) {
            close(keep[i]);
            keep[i] = -1;
        }
}

/* Builds bwrap's argument file and the other descriptors into keep[];
 * the plan's argv becomes "bwrap --args FD". */
static tr_err bwrap_plan(const struct sandbox *sb, struct arena *ar,
                         const struct sandbox_cmd *cmd, struct plan *p,
                         struct tr_errbuf *eb)
{
    struct args a = {.e = TR_OK};
    buf_init(&a.b, MAX_ARG_BYTES);
    char num[3][16];
    char *passwd = arena_printf(
        ar,
        "root:x:0:0:root:/root:/usr/sbin/nologin\n"
        "terrace:x:%u:%u:Terrace run:%s:/bin/sh\n"
        "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n",
        (unsigned)sb->uid, (unsigned)sb->gid, cmd->home ? cmd->home : "/");
    char *group = arena_printf(ar,
                               "root:x:0:\nterrace:x:%u:\n"
                               "nogroup:x:65534:\n",
                               (unsigned)sb->gid);
    p->keep[1] = memfd_with("seccomp", sb->bpf, sb->bpf_len);
    p->keep[2] = memfd_with("passwd", passwd, strlen(passwd));
    p->keep[3] = memfd_with("group", group, strlen(group));
    for (int i = 1; i < 4; i++) {
        if (p->keep[i] < 0) {
            buf_free(&a.b);
            return tr_fail(eb, TR_ERR_IO, "cannot prepare the sandbox: %s",
                           strerror(errno));
        }
        snprintf(num[i - 1], sizeof(num[0]), "%d", p->keep[i]);
    }
    arg(&a, "--unshare-pid");
    arg(&a, "--unshare-ipc");
    arg(&a, "--unshare-uts");
    arg(&a, "--unshare-cgroup-try");
    arg2(&a, "--hostname", "terrace");
    arg(&a, "--die-with-parent");
    if (!sb->root) {
        arg(&a, "--unshare-user");
        arg(&a, "--disable-userns");
        arg2(&a, "--cap-drop", "ALL");
    }
    arg(&a, "--clearenv");
    for (int i = 0; cmd->envp != NULL && cmd->envp[i] != NULL; i++) {
        const char *eq = strchr(cmd->envp[i], '=');
        if (eq == NULL)
            continue;
        arg(&a, "--setenv");
        arg(&a, arena_strndup(ar, cmd->envp[i], (size_t)(eq - cmd->envp[i])));
        arg(&a, eq + 1);
    }
    const char *etc = sb->etc != NULL ? sandbox_etc_dir(sb->etc, ar) : NULL;
    system_mounts(&a, etc);
    arg2(&a, "--perms", "0644");
    arg2(&a, "--ro-bind-data", num[1]);
    arg(&a, "/etc/passwd");
    arg2(&a, "--perms", "0644");
    arg2(&a, "--ro-bind-data", num[2]);
    arg(&a, "/etc/group");
    arg2(&a, "--proc", "/proc");
    arg2(&a, "--dev", "/dev");
    for (int i = 0; i < cmd->nmounts; i++) {
        const struct sandbox_mount *m = &cmd->mounts[i];
        /* parents of the mount point: reachable by the run user */
        char *parent = arena_strdup(ar, m->view);
        for (char *s = strchr(parent + 1, '/'); s != NULL;
             s = strchr(s + 1, '/')) {
            *s = '\0';
            dir755(&a, parent);
            *s = '/';
        }
        arg3(&a, m->rw ? "--bind" : "--ro-bind", m->host, m->view);
    }
    if (cmd->tmp != NULL)
        arg3(&a, "--bind", cmd->tmp, "/tmp");
    if (cmd->shm != NULL)
        arg3(&a, "--bind", cmd->shm, "/dev/shm");
    hide_mounts(sb, &a, etc != NULL);
    arg2(&a, "--remount-ro", "/");
    arg2(&a, "--chdir", cmd->cwd);
    arg2(&a, "--seccomp", num[0]);
    if (a.e == TR_OK)
        p->keep[0] = memfd_with("bwrap-args", a.b.data, a.b.len);
    buf_free(&a.b);
    if (a.e != TR_OK || p->keep[0] < 0)
        return tr_fail(eb, a.e != TR_OK ? TR_ERR_INVALID : TR_ERR_IO,
                       a.e != TR_OK ? "the sandbox arguments are too large"
                                    : "cannot prepare the sandbox");
    /* bwrap takes the command itself only from its real command line */
    int nargs = 0;
    while (cmd->argv[nargs] != NULL)
        nargs++;
    const char **v = arena_alloc(ar, sizeof(*v) * (size_t)(nargs + 16));
    int n = 0;
    v[n++] = sb->bwrap;
    v[n++] = "--args";
    v[n++] = arena_printf(ar, "%d", p->keep[0]);
    v[n++] = "--";
    if (sb->root) {
        v[n++] = sb->setpriv;
        v[n++] = arena_printf(ar, "--reuid=%u", (unsigned)sb->uid);
        v[n++] = arena_printf(ar, "--regid=%u", (unsigned)sb->gid);
        v[n++] = "--clear-groups";
        v[n++] = "--no-new-privs";
        v[n++] = "--inh-caps=-all";
        v[n++] = "--bounding-set=-all";
        v[n++] = "--";
    }
    v[n++] = sb->env;
    v[n++] = "--default-signal=INT";
    for (int i = 0; i < nargs; i++)
        v[n++] = cmd->argv[i];
    v[n] = NULL;
    static const char *const no_env[] = {NULL};
    p->argv = v;
    p->envp = no_env;
    p->cwd = NULL;
    p->ignore_int = true;
    return TR_OK;
}

tr_err sandbox_spawn(const struct sandbox *sb, struct arena *a,
                     const struct sandbox_cmd *cmd, pid_t *pid, int *out_fd,
                     struct tr_errbuf *eb)
{
    struct plan p = {
        .argv = cmd->argv,
        .envp = cmd->envp,
        .cwd = cmd->cwd,
        .out_fd = cmd->stdout_fd,
        .keep = {-1, -1, -1, -1},
        .lim = &sb->lim,
        .uid = sb->uid,
        .gid = sb->gid,
    };
    if (sb->bwrap != NULL) {
        tr_err e = bwrap_plan(sb, a, cmd, &p, eb);
        if (e != TR_OK) {
            close_keep(p.keep);
            return e;
        }
    }
    tr_err e = start(&p, pid, out_fd, eb);
    close_keep(p.keep);
    return e;
}

int sandbox_exit_signal(const struct sandbox *sb, int wstatus)
{
    if (WIFSIGNALED(wstatus))
        return WTERMSIG(wstatus);
    if (sb->bwrap != NULL && WIFEXITED(wstatus) && WEXITSTATUS(wstatus) > 128 &&
        WEXITSTATUS(wstatus) < 128 + 65)
        return WEXITSTATUS(wstatus) - 128;
    return 0;
}

int sandbox_exit_code(int wstatus)
{
    return WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : 255;
}

bool sandbox_isolated(const struct sandbox *sb)
{
    return sb != NULL && sb->bwrap != NULL;
}

bool sandbox_own_user(const struct sandbox *sb)
{
    return sandbox_isolated(sb) && sb->root;
}

const char *sandbox_reason(const struct sandbox *sb)
{
    return sb != NULL ? sb->reason : "no sandbox";
}

void sandbox_ids(const struct sandbox *sb, uid_t *uid, gid_t *gid)
{
    *uid = sb->uid;
    *gid = sb->gid;
}

/* ---- start-up ---------------------------------------------------------- */

/* The first executable name on PATH (or in the usual directories),
 * malloc'd, or NULL. */
static char *on_path(const char *name)
{
    const char *path = getenv("PATH");
    if (path == NULL || *path == '\0')
        path = "/usr/local/bin:/usr/bin:/bin";
    char *dirs = NULL;
    if (asprintf(&dirs, "%s:/usr/bin:/bin:/usr/sbin:/sbin", path) < 0)
        return NULL;
    char *found = NULL;
    for (char *d = dirs; found == NULL && *d;) {
        size_t n = strcspn(d, ":");
        char buf[4096];
        if (n > 0 && n + strlen(name) + 2 < sizeof(buf)) {
            snprintf(buf, sizeof(buf), "%.*s/%s", (int)n, d, name);
            struct stat st;
            if (buf[0] == '/' && stat(buf, &st) == 0 && S_ISREG(st.st_mode) &&
                access(buf, X_OK) == 0)
                found = strdup(buf);
        }
        d += n;
        if (*d == ':')
            d++;
    }
    free(dirs);
    return found;
}

/* Runs the probe command; TR_OK if it exited 0 within the time limit.
 * Up to 200 bytes of its output go into eb otherwise. */
static tr_err probe(struct sandbox *sb, struct tr_errbuf *eb)
{
    struct arena *a = arena_new();
    const char *const argv[] = {"/usr/bin/true", NULL};
    const char *const envp[] = {"PATH=/usr/bin:/bin", NULL};
    struct sandbox_cmd cmd = {
        .argv = argv,
        .envp = envp,
        .cwd = "/",
        .stdout_fd = -1,
    };
    pid_t pid = -1;
    int fd = -1;
    char out[201];
    size_t len = 0;
    tr_err e = sandbox_spawn(sb, a, &cmd, &pid, &fd, eb);
    if (e != TR_OK)
        goto done;
    int64_t deadline = util_now_ms() + PROBE_TIMEOUT_MS;
    for (;;) {
        int64_t left = deadline - util_now_ms();
        struct pollfd pf = {.fd = fd, .events = POLLIN};
        if (left <= 0 || poll(&pf, 1, (int)left) == 0) {
            kill(-pid, SIGKILL);
            break;
        }
        char tmp[256];
        ssize_t n = read(fd, tmp, sizeof(tmp));
        if (n < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (n <= 0)
            break;
        size_t take = (size_t)n < sizeof(out) - 1 - len ? (size_t)n
                                                        : sizeof(out) - 1 - len;
        memcpy(out + len, tmp, take);
        len += take;
    }
    int status = 0;
    waitpid(pid, &status, 0);
    out[len] = '\0';
    out[strcspn(out, "\n")] = '\0';
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        e = tr_fail(eb, TR_ERR_IO, "%s",
                    len > 0 ? out : "the probe command failed");
done:
    if (fd >= 0)
        close(fd);
    arena_destroy(a);
    return e;
}

static void set_reason(struct sandbox *sb, const char *fmt, const char *s)
{
    snprintf(sb->reason, sizeof(sb->reason), fmt, s);
}

/* Finds bwrap, env and setpriv and probes them; leaves sb->bwrap NULL
 * with sb->reason set when the sandbox cannot be used. */
static void find_tools(struct sandbox *sb, const char *bwrap)
{
    char *path =
        bwrap != NULL && *bwrap != '\0' ? strdup(bwrap) : on_path("bwrap");
    if (path == NULL || access(path, X_OK) != 0) {
        set_reason(sb, "%s not found",
                   bwrap != NULL && *bwrap ? bwrap : "bwrap (bubblewrap)");
        free(path);
        return;
    }
    if (access("/usr/bin/env", X_OK) != 0) {
        set_reason(sb, "%s", "/usr/bin/env not found");
        free(path);
        return;
    }
    sb->env = strdup("/usr/bin/env");
    if (sb->root) {
        sb->setpriv = strdup("/usr/bin/setpriv");
        if (access("/usr/bin/setpriv", X_OK) != 0) {
            set_reason(sb, "%s", "/usr/bin/setpriv (util-linux) not found");
            free(path);
            return;
        }
    }
    sb->bwrap = path;
    struct tr_errbuf why = {{0}};
    if (sb->env == NULL || (sb->root && sb->setpriv == NULL) ||
        probe(sb, &why) != TR_OK) {
        set_reason(sb, "bubblewrap does not work here: %s",
                   why.msg[0] ? why.msg : "out of memory");
        free(sb->bwrap);
        sb->bwrap = NULL;
    }
}

tr_err sandbox_new(const struct sandbox_opts *o, struct sandbox **out,
                   struct tr_errbuf *eb)
{
    *out = NULL;
    struct sandbox *sb = calloc(1, sizeof(*sb));
    if (sb == NULL)
        return tr_fail(eb, TR_ERR_NOMEM, "out of memory");
    sb->root = geteuid() == 0;
    sb->uid = sb->root ? o->run_uid : geteuid();
    sb->gid = sb->root ? o->run_gid : getegid();
    sb->lim = o->limits;
    int n = 0;
    while (o->hide != NULL && o->hide[n] != NULL)
        n++;
    sb->hide = calloc((size_t)n + 1, sizeof(*sb->hide));
    for (int i = 0; sb->hide != NULL && i < n; i++)
        if ((sb->hide[sb->nhide] = strdup(o->hide[i])) != NULL)
            sb->nhide++;
    tr_err e =
        sb->hide == NULL ? tr_fail(eb, TR_ERR_NOMEM, "out of memory") : TR_OK;
    if (e == TR_OK)
        e = sandbox_seccomp_program(&sb->bpf, &sb->bpf_len, eb);
    if (e != TR_OK) {
        sandbox_free(sb);
        return e;
    }
    if (e == TR_OK && o->etc_dir != NULL && *o->etc_dir != '\0') {
        struct tr_errbuf why = {{0}};
        if (sandbox_etc_open(o->etc_dir, "/etc", etc_entries,
                             (int)(sizeof(etc_entries) / sizeof(*etc_entries)),
                             sb->hide, sb->nhide, SANDBOX_ETC_KEEP_MS, &sb->etc,
                             &why) != TR_OK)
            log_warn("sandbox: /etc entries are bound one by one: %s", why.msg);
    }
    if (sb->root && sb->uid == 0) {
        set_reason(sb, "%s", "the run user must not be root (run-uid 0)");
    } else if (o->bwrap != NULL && strcmp(o->bwrap, "none") == 0) {
        set_reason(sb, "%s", "the sandbox is turned off (bwrap = none)");
    } else {
        find_tools(sb, o->bwrap);
    }
    if (sb->bwrap != NULL)
        log_info("sandbox: bubblewrap %s; runs as %s %u", sb->bwrap,
                 sb->root ? "the run user" : "the node's user",
                 (unsigned)sb->uid);
    *out = sb;
    return TR_OK;
}

void sandbox_free(struct sandbox *sb)
{
    if (sb == NULL)
        return;
    for (int i = 0; i < sb->nhide; i++)
        free(sb->hide[i]);
    free(sb->hide);
    sandbox_etc_free(sb->etc);
    free(sb->bwrap);
    free(sb->env);
    free(sb->setpriv);
    free(sb->bpf);
    free(sb);
}
