/*
 * warm.c - a run's apply started while its plan still runs.
 *
 * A tofu process spends its first 20-30 ms starting (Go's runtime and
 * package initialization) before it reads anything.  When a run will
 * apply at once (auto-apply), tofu.c starts the apply's process beside
 * the plan, in a sandbox of its own with the apply's arguments and
 * environment, and the process waits at the first file it reads: its CLI
 * configuration.  TF_CLI_CONFIG_FILE names a FIFO in a directory of the
 * node's (the job's root with ".warm" appended), shown read-only at
 * VIEW_WARM to that sandbox only, and the plan file it is to apply is a
 * name in that directory which does not exist yet.  The plan's own
 * processes, the tenant's code among them, never see the directory, so
 * nothing but the node can let the process go on or give it a plan.
 *
 * The process goes with the plan's directory to keep.c.  When the run's
 * apply job comes to this node, warm_matches() checks that the command
 * it would start is exactly the waiting one (a digest of argv, the
 * environment, the mounts and directories), and warm_release() links the
 * verified plan file into the directory and gives the process the apply's
 * CLI configuration, which holds the apply's own run token (the plan's
 * is revoked when the apply is claimed).  The process then runs on as if
 * just started.  Anything else, or a process that is gone, is killed and
 * the apply starts the usual way.
 *
 * The configuration is handed over without a race: tofu opens the file
 * once to see that it exists and again to read it.  The node opens the
 * FIFO read-write (which never blocks and lets a waiting open return),
 * writes the text into it, then renames a regular file with the same
 * text over the FIFO's name; an open that finds the FIFO reads the text
 * from the pipe, a later one reads the file.  The node holds its end
 * open until inotify reports a read of that name (the pipe then ends for
 * its reader), so the text is never lost between the two opens.  Before
 * that read the process has done nothing with the plan, so when it dies
 * or does not read within WARM_RELEASE_MS it is killed and the apply
 * starts afresh; after it, the process is the apply.
 *
 * A plan job starts its own `tofu plan` the same way, first thing, with
 * its directory shown at VIEW_START (tofu.c, early_plan_start()): the
 * process starts up while the node fetches and extracts the
 * configuration and runs or remembers init, and warm_release() (no plan
 * file to link) lets it go on.  It is the plan's own process, seeing
 * what the plan sees, so nothing is checked beyond its working
 * directory.
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/pidfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "core/file.h"
#include "core/log.h"
#include "core/util.h"
#include "executor/executor_int.h"

#define WARM_RELEASE_MS 10000
#define WARM_TEXT_MAX 16384 /* well under a pipe's capacity */
#define WARM_GONE_MS 2000

/* ---- the command's digest --------------------------------------------- */

static void put_str(EVP_MD_CTX *c, const char *s)
{
    s = s != NULL ? s : "";
    EVP_DigestUpdate(c, s, strlen(s) + 1);
}

static void put_list(EVP_MD_CTX *c, const char *const *v)
{
    for (int i = 0; v != NULL && v[i] != NULL; i++)
        put_str(c, v[i]);
    EVP_DigestUpdate(c, "\x01", 1);
}

/* Everything of cmd that decides what the program does, stdout aside;
 * false if the digest cannot be made. */
static bool cmd_digest(const struct sandbox_cmd *cmd, unsigned char out[32])
{
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    if (c == NULL || EVP_DigestInit_ex(c, EVP_sha256(), NULL) != 1) {
        EVP_MD_CTX_free(c);
        return false;
    }
    put_list(c, cmd->argv);
    put_list(c, cmd->envp);
    put_str(c, cmd->cwd);
    for (int i = 0; i < cmd->nmounts; i++) {
        put_str(c, cmd->mounts[i].host);
        put_str(c, cmd->mounts[i].view);
        put_str(c, cmd->mounts[i].rw ? "rw" : "ro");
    }
    put_str(c, cmd->tmp);
    put_str(c, cmd->shm);
    put_str(c, cmd->home);
    unsigned int n = 0;
    bool ok = EVP_DigestFinal_ex(c, out, &n) == 1 && n == 32;
    EVP_MD_CTX_free(c);
    return ok;
}

/* ---- start, match, kill ------------------------------------------------- */

bool warm_start(struct exec_ctx *x, struct arena *a,
                const struct sandbox_cmd *cmd, const char *dir,
                const char *view, struct exec_warm *w)
{
    *w = EXEC_WARM_NONE;
    if (cmd->nmounts >= WARM_MOUNTS_MAX || !cmd_digest(cmd, w->digest))
        return false;
    char *fifo = arena_printf(a, "%s/" WARM_CONFIG, dir);
    struct tr_errbuf eb = {{0}};
    if (mkdir(dir, 0755) != 0 || chmod(dir, 0755) != 0 ||
        mkfifo(fifo, 0644) != 0 || chmod(fifo, 0644) != 0) {
        log_warn("executor: cannot prepare %s for an early start: %s", dir,
                 strerror(errno));
        workdir_remove(dir);
        return false;
    }
    struct sandbox_mount mounts[WARM_MOUNTS_MAX];
    memcpy(mounts, cmd->mounts, sizeof(*mounts) * (size_t)cmd->nmounts);
    mounts[cmd->nmounts] = (struct sandbox_mount){dir, view, false};
    struct sandbox_cmd c = *cmd;
    c.mounts = mounts;
    c.nmounts = cmd->nmounts + 1;
    c.stdout_fd = -1;
    tr_err e = sandbox_spawn(x->sb, a, &c, &w->pid, &w->fd, &eb);
    if (e != TR_OK) {
        log_warn("executor: cannot start a process early: %s",
                 tr_errbuf_msg(&eb, e));
        workdir_remove(dir);
        *w = EXEC_WARM_NONE;
        return false;
    }
    w->dir = strdup(dir);
    if (w->dir == NULL) {
        warm_kill(w);
        workdir_remove(dir);
        return false;
    }
    return true;
}

bool warm_matches(const struct exec_warm *w, const struct sandbox_cmd *cmd)
{
    unsigned char d[32];
    return w->pid > 0 && cmd_digest(cmd, d) && memcmp(d, w->digest, 32) == 0;
}

void warm_kill(struct exec_warm *w)
{
    if (w->pid > 0) {
        kill(-w->pid, SIGKILL);
        kill(w->pid, SIGKILL);
        int status;
        while (waitpid(w->pid, &status, 0) < 0 && errno == EINTR)
            ;
        /* the sandbox's own processes die with it, but not at once:
         * wait (WARM_GONE_MS at most) until none of the group is left */
        for (int64_t until = util_now_ms() + WARM_GONE_MS;
             kill(-w->pid, 0) == 0 && util_now_ms() < until;)
            nanosleep(&(struct timespec){.tv_nsec = 1000000}, NULL);
    }
    if (w->fd >= 0)
        close(w->fd);
    if (w->dir != NULL) {
        workdir_remove(w->dir);
        free(w->dir);
    }
    *w = EXEC_WARM_NONE;
}

/* ---- release ------------------------------------------------------------ */

/* True once inotify fd ino reported a read of the FIFO (watch fifo_wd)
 * or of a file named WARM_CONFIG in the directory. */
static bool config_read(int ino, int fifo_wd)
{
    char ev[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
    bool seen = false;
    ssize_t n;
    while ((n = read(ino, ev, sizeof(ev))) > 0)
        for (char *p = ev; p < ev + n;) {
            const struct inotify_event *e = (const struct inotify_event *)p;
            if ((e->mask & IN_ACCESS) != 0 &&
                (e->wd == fifo_wd ||
                 (e->len > 0 && strcmp(e->name, WARM_CONFIG) == 0)))
                seen = true;
            p += sizeof(*e) + e->len;
        }
    return seen;
}

/* True if pid has exited (not reaped). */
static bool exited(pid_t pid)
{
    siginfo_t si = {0};
    int r = waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT);
    return (r == 0 && si.si_pid == pid) || (r < 0 && errno == ECHILD);
}

/* Writes the text to path (a new file, 0600) and hands it to the run
 * user. */
static tr_err write_text(const struct exec_ctx *x, const char *path,
                         const char *text, size_t len, struct tr_errbuf *eb)
{
    int fd =
        open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0)
        return tr_fail(eb, TR_ERR_IO, "cannot create %s: %s", path,
                       strerror(errno));
    tr_err e = file_write_exact(fd, text, len, eb);
    if (close(fd) != 0 && e == TR_OK)
        e = tr_fail(eb, TR_ERR_IO, "cannot write %s: %s", path,
                    strerror(errno));
    if (e == TR_OK)
        e = workdir_give(x, path, false, eb);
    return e;
}

tr_err warm_release(const struct exec_ctx *x, struct arena *a,
                    struct exec_warm *w, const char *plan_file,
                    const char *cli_config, struct tr_errbuf *eb)
{
    char *text = NULL;
    size_t len = 0;
    char *plan = arena_printf(a, "%s/" WARM_PLAN, w->dir);
    char *fifo = arena_printf(a, "%s/" WARM_CONFIG, w->dir);
    char *file = arena_printf(a, "%s/.config", w->dir);
    if (w->pid <= 0 || exited(w->pid))
        return tr_fail(eb, TR_ERR_UNAVAILABLE, "the process is gone");
    tr_err e = file_read_all(a, cli_config, WARM_TEXT_MAX, &text, &len, eb);
    if (e == TR_OK && plan_file != NULL && link(plan_file, plan) != 0)
        e = tr_fail(eb, TR_ERR_IO, "cannot link the plan: %s", strerror(errno));
    if (e == TR_OK)
        e = write_text(x, file, text, len, eb);
    if (e != TR_OK)
        return e;
    int ino = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    int fifo_wd = ino >= 0 ? inotify_add_watch(ino, fifo, IN_ACCESS) : -1;
    if (fifo_wd < 0 || inotify_add_watch(ino, w->dir, IN_ACCESS) < 0) {
        e = tr_fail(eb, TR_ERR_IO, "inotify: %s", strerror(errno));
        if (ino >= 0)
            close(ino);
        return e;
    }
    int rw = open(fifo, O_RDWR | O_NONBLOCK | O_CLOEXEC);
    ssize_t wrote = rw >= 0 ? write(rw, text, len) : -1;
    if (rw < 0 || wrote != (ssize_t)len || rename(file, fifo) != 0) {
        e = tr_fail(eb, TR_ERR_IO, "cannot hand over the CLI configuration: %s",
                    strerror(errno));
    } else {
        int pidfd = pidfd_open(w->pid, 0);
        int64_t until = util_now_ms() + WARM_RELEASE_MS;
        e = TR_ERR_UNAVAILABLE;
        for (;;) {
            if (config_read(ino, fifo_wd)) {
                e = TR_OK;
                break;
            }
            int64_t left = until - util_now_ms();
            if (exited(w->pid) || left <= 0)
                break;
            struct pollfd pf[2] = {{.fd = ino, .events = POLLIN},
                                   {.fd = pidfd, .events = POLLIN}};
            poll(pf, pidfd >= 0 ? 2 : 1, pidfd >= 0 ? (int)left : 10);
        }
        if (e != TR_OK)
            tr_fail(eb, e, "the process did not read its configuration");
        if (pidfd >= 0)
            close(pidfd);
    }
    explicit_bzero(text, len);
    if (rw >= 0)
        close(rw);
    close(ino);
    return e;
}
