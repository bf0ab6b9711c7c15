/*
 * sandbox.c - spawning tofu under bubblewrap or directly (see sandbox.h).
 *
 * Everything the child needs (argv, environment, descriptors) is built
 * before fork(); between fork() and execve() the child makes only
 * async-signal-safe system calls, as a child of a multi-threaded process
 * must.  An exec failure travels back through a close-on-exec pipe as an
 * errno, so sandbox_spawn() can tell "cannot run" from "ran and failed".
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#include "executor/sandbox.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/log.h"
#include "core/util.h"

#define NOFILE_CAP 8192
#define NPROC_CAP 8192
#define FSIZE_CAP (16ULL << 30)
#define PROBE_TIMEOUT_MS 10000
#define MAX_ARGS 4096

struct sandbox {
    char *bwrap; /* NULL: run directly */
    char *env;   /* env(1) that can reset SIGINT */
};

/* What the child does between fork() and execve(). */
struct plan {
    const char *const *argv;
    const char *const *envp;
    const char *cwd;
    int devnull, out_fd, pipe_w, err_w;
    bool ignore_int;
    pid_t parent;
};

static void set_limit(int res, rlim_t cap)
{
    struct rlimit rl;
    if (getrlimit(res, &rl) != 0)
        return;
    if (rl.rlim_max == RLIM_INFINITY || rl.rlim_max > cap)
        rl.rlim_max = cap;
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
    struct rlimit core0 = {0, 0};
    setrlimit(RLIMIT_CORE, &core0);
    set_limit(RLIMIT_NOFILE, NOFILE_CAP);
    set_limit(RLIMIT_NPROC, NPROC_CAP);
    set_limit(RLIMIT_FSIZE, FSIZE_CAP);
    if (chdir(p->cwd) != 0)
        goto fail;
    execve(p->argv[0], (char *const *)p->argv, (char *const *)p->envp);
fail:
    err = errno;
    if (write(p->err_w, &err, sizeof(err)) < 0)
        _exit(126);
    _exit(127);
}

/* Forks and execs p (argv, envp, cwd, out_fd and ignore_int set by the
 * caller); fills the descriptors itself. */
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

/* The bubblewrap options every sandboxed command shares. */
static const char *const bwrap_fixed[] = {
    "--unshare-pid",
    "--unshare-ipc",
    "--unshare-uts",
    "--die-with-parent",
    "--ro-bind",
    "/",
    "/",
    "--proc",
    "/proc",
    "--dev",
    "/dev",
    "--tmpfs",
    "/tmp",
};
#define NFIXED ((int)(sizeof(bwrap_fixed) / sizeof(bwrap_fixed[0])))

static int count(const char *const *v)
{
    int n = 0;
    while (v != NULL && v[n] != NULL)
        n++;
    return n;
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
    };
    if (sb->bwrap != NULL) {
        int nargs = count(cmd->argv), nrw = count(cmd->rw),
            nro = count(cmd->ro);
        if (nargs + 3 * (nrw + nro) > MAX_ARGS)
            return tr_fail(eb, TR_ERR_INVALID, "too many arguments");
        const char **v = arena_alloc(
            a, sizeof(*v) * (size_t)(nargs + 3 * (nrw + nro) + NFIXED + 8));
        int n = 0;
        v[n++] = sb->bwrap;
        for (int i = 0; i < NFIXED; i++)
            v[n++] = bwrap_fixed[i];
        for (int i = 0; i < nrw; i++) {
            v[n++] = "--bind";
            v[n++] = cmd->rw[i];
            v[n++] = cmd->rw[i];
        }
        for (int i = 0; i < nro; i++) {
            v[n++] = "--ro-bind";
            v[n++] = cmd->ro[i];
            v[n++] = cmd->ro[i];
        }
        v[n++] = "--chdir";
        v[n++] = cmd->cwd;
        v[n++] = "--";
        v[n++] = sb->env;
        v[n++] = "--default-signal=INT";
        for (int i = 0; i < nargs; i++)
            v[n++] = cmd->argv[i];
        v[n] = NULL;
        p.argv = v;
        p.ignore_int = true;
    }
    return start(&p, pid, out_fd, eb);
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

/* The first executable name on PATH, malloc'd, or NULL. */
static char *on_path(const char *name)
{
    const char *path = getenv("PATH");
    if (path == NULL || *path == '\0')
        path = "/usr/local/bin:/usr/bin:/bin";
    while (*path) {
        size_t n = strcspn(path, ":");
        char buf[4096];
        if (n > 0 && n + strlen(name) + 2 < sizeof(buf)) {
            snprintf(buf, sizeof(buf), "%.*s/%s", (int)n, path, name);
            struct stat st;
            if (buf[0] == '/' && stat(buf, &st) == 0 && S_ISREG(st.st_mode) &&
                access(buf, X_OK) == 0)
                return strdup(buf);
        }
        path += n;
        if (*path == ':')
            path++;
    }
    return NULL;
}

/* Runs the probe command; TR_OK if it exited 0 within the time limit.
 * Up to 200 bytes of its output go into eb otherwise. */
static tr_err probe(struct sandbox *sb, struct tr_errbuf *eb)
{
    struct arena *a = arena_new();
    const char *const argv[] = {
        access("/bin/true", X_OK) == 0 ? "/bin/true" : "/usr/bin/true", NULL};
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

tr_err sandbox_new(const char *bwrap, struct sandbox **out,
                   struct tr_errbuf *eb)
{
    struct sandbox *sb = calloc(1, sizeof(*sb));
    if (sb == NULL)
        return tr_fail(eb, TR_ERR_NOMEM, "out of memory");
    *out = sb;
    if (bwrap != NULL && *bwrap == '\0')
        return TR_OK;
    char *path = bwrap != NULL ? strdup(bwrap) : on_path("bwrap");
    const char *env =
        access("/usr/bin/env", X_OK) == 0 ? "/usr/bin/env" : "/bin/env";
    struct tr_errbuf why = {{0}};
    if (path == NULL || access(path, X_OK) != 0) {
        snprintf(why.msg, sizeof(why.msg), "%s not found",
                 bwrap != NULL ? bwrap : "bwrap");
    } else {
        sb->bwrap = path;
        sb->env = strdup(env);
        path = NULL;
        if (sb->env == NULL || probe(sb, &why) != TR_OK) {
            free(sb->bwrap);
            free(sb->env);
            sb->bwrap = sb->env = NULL;
        }
    }
    free(path);
    if (sb->bwrap == NULL)
        log_warn("bubblewrap unavailable; running tofu without a sandbox "
                 "(%s)",
                 why.msg[0] ? why.msg : "probe failed");
    else
        log_info("sandbox: bubblewrap %s", sb->bwrap);
    return TR_OK;
}

void sandbox_free(struct sandbox *sb)
{
    if (sb == NULL)
        return;
    free(sb->bwrap);
    free(sb->env);
    free(sb);
}
