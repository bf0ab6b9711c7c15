/*
 * tofu.c - the phase driver: runs one plan or apply job with tofu.
 *
 *   plan:  init (output kept back unless it fails), plan -out, show -json,
 *          and providers schema -json when the plan will be rendered
 *          from its JSON (a saved plan, structured run output); init is
 *          skipped when the workspace's last one made what it would make
 *          again (init_memo.c), and run after all, with the plan again,
 *          when the plan then fails naming init
 *   apply: fetch the saved plan, init, apply -auto-approve <plan>
 *          or, in the plan's directory kept on this node (keep.c), just
 *          apply -auto-approve <plan>
 *
 * A run that applies at once, whose JSON plan nothing reads before its
 * apply (job.defer_json: auto-apply, not rendered from JSON, not saved,
 * not refresh-only), plans with -detailed-exitcode: with changes, the
 * counts come from tofu's "Plan: ..." line and show -json is left to the
 * apply (job.make_json), which runs it in its own sandbox once the
 * apply's finish is reported and then stores the JSON
 * (job_api.attach_json), so the run is applied without waiting for it
 * or for its process's start; without changes, or
 * without a summary that reads, the plan runs show -json as above.  So the run
 * is planned, and its apply starts, one tofu process sooner.  Such a plan also
 * starts its apply's process before it runs tofu plan (warm.c): the process
 * starts up beside the plan and waits for the node; the apply job, when it
 * comes to this node, takes it over instead of starting tofu (warm_take()).
 * A sandboxed plan job starts its own tofu plan that way too, first thing
 * (early_plan_start()), while the node fetches the configuration and
 * runs or remembers init.
 *
 * With structured run output, plan and apply write JSON logs (-json),
 * which the CLI renders itself, as with TFE.
 *
 * Both phases run in a fresh working directory (workdir.c), with -lock=false
 * because the run already holds the workspace lock.  The log starts with
 * the three-line banner TFE writes (the CLI skips three lines of an apply
 * log), then tofu's output as it arrives.
 *
 * One command at a time runs in the sandbox; the driver's loop polls its
 * output pipe and a pidfd, and on timers:
 *   - passes output through the scrubber (every sensitive value and the
 *     run token become "***", also across read boundaries: bytes that may
 *     begin a secret are held until they are decided) to append_log(),
 *     batched: a send at most every flush_ms or 16 KiB;
 *   - heartbeats every heartbeat_ms; a heartbeat that fails (the server
 *     or its database out of reach) changes nothing: tofu keeps running
 *     and the next heartbeat tries again.  Cancel 1 sends SIGINT to the
 *     process group and keeps reading while tofu stops gracefully (and
 *     writes its state); cancel 2 (force-cancel) SIGKILLs the group;
 *   - a lost lease (the server says the job ended) sends SIGINT, then
 *     SIGKILL only after lost_grace_ms; the phase timeout or executor
 *     shutdown sends SIGINT, then SIGKILL after grace_ms;
 *   - log chunks the server could not take are kept (up to LOG_KEEP_MAX)
 *     and sent again with the next flush, and finish() is retried while
 *     the server is unavailable, heartbeating meanwhile.
 * When the command's process exits, the rest of its group is killed before
 * it is reaped (the zombie keeps the group id from being reused), then the
 * pipe is drained.  Outcomes: cancel -> JOB_CANCELED, force-cancel ->
 * JOB_FORCE_CANCELED, timeout, crash, nonzero exit or any local failure
 * -> JOB_ERRORED with the reason also in the log.  finish() is called
 * before the directory is removed (or kept), since it uploads the plan
 * files.
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/env_names.h"
#include "core/fault.h"
#include "core/log.h"
#include "core/util.h"
#include "executor/executor_int.h"

#define FLUSH_MAX (16 << 10)       /* send the log at this size */
#define CAPTURE_MAX (64 << 10)     /* init output kept for a failure */
#define TAIL_MAX (8 << 10)         /* apply output kept for its summary */
#define LOG_KEEP_MAX (1 << 20)     /* unsent log kept while the server is out */
#define FINISH_RETRY_MS 1000       /* between attempts to report the outcome */
#define FINISH_RETRY_MAX (30 * 60) /* attempts (about half an hour) */
#define READ_CHUNK (64 << 10)
#define DRAIN_MS 2000 /* reading the pipe after the exit */
#define STOP_CHECK_MS 250

/* `show -json` of a plan stored without its JSON, run after the apply
 * (job.make_json): its stdout into the node's file wd.json_plan, its
 * other output kept back unless it fails. */
struct side {
    pid_t pid;
    int fd;
};

struct phase {
    struct exec_ctx *x;
    const struct job *j;
    struct arena *a;
    struct workdir wd;
    const char *what;      /* "plan" | "apply" */
    const char *tool;      /* the tool's name in messages */
    struct workdir view;   /* wd as the run sees it */
    const char *tool_view; /* the tool binary as the run sees it */
    const char **env;
    struct sandbox_mount mounts[4];
    int nmounts;
    struct monitor mon;
    enum monitor_hit hit;   /* the limit the run went over */
    bool reused;            /* apply: in the plan's kept directory (keep.c) */
    bool detailed;          /* the step runs with -detailed-exitcode */
    bool plan_diff;         /* ... and exited 2: the plan has changes */
    bool keep;              /* plan: keep the directory for the apply */
    struct init_key ik;     /* plan: what a remembered init is keyed by */
    bool memo_hit;          /* plan: .terraform came from init_memo.c */
    struct exec_warm warm;  /* the run's apply, started early (warm.c) */
    struct exec_warm early; /* plan: its tofu plan, started first thing */
    const char *early_cwd;  /* ... which changes to this directory */
    pid_t adopt_pid;        /* run() takes this process instead of starting */
    int adopt_fd;
    bool late_due; /* apply: show -json to run after the finish */
    /* log */
    struct buf raw;      /* output held by the scrubber */
    struct buf out;      /* scrubbed output not yet sent */
    uint64_t out_at;     /* where out starts in the job's log stream */
    struct buf *capture; /* non-NULL: output is kept here instead */
    struct buf tail;
    const char **secrets; /* longest first */
    size_t *slens;
    int nsecrets;
    int64_t last_flush;
    bool log_failed;
    /* control */
    int64_t next_hb;
    int64_t deadline;
    int64_t timeout_s;
    int cancel; /* the highest request seen: 0, 1, 2 */
    bool lease_lost, timed_out, stopping;
    bool hb_failing; /* the last heartbeat failed (logged once) */
    /* the running command */
    pid_t pid;
    bool int_sent, kill_sent;
    int64_t kill_at;
};

/* ---- output: scrubbing and batching ------------------------------------ */

/* Appends p to b keeping at most max bytes (the newest). */
static void keep_last(struct buf *b, const char *p, size_t n, size_t max)
{
    if (n >= max) {
        buf_reset(b);
        buf_append(b, p + n - max, max);
        return;
    }
    if (b->len + n > max) {
        size_t drop = b->len + n - max;
        memmove(b->data, b->data + drop, b->len - drop);
        b->len -= drop;
        b->data[b->len] = '\0';
    }
    buf_append(b, p, n);
}

static void emit(struct phase *ph, const char *p, size_t n)
{
    if (n == 0)
        return;
    if (ph->capture != NULL) {
        keep_last(ph->capture, p, n, CAPTURE_MAX);
        return;
    }
    buf_append(&ph->out, p, n);
    keep_last(&ph->tail, p, n, TAIL_MAX);
}

/* At p (rem bytes left): the index of the longest secret found whole,
 * -2 when a secret may begin here but the bytes end first, -1 if none. */
static int match(const struct phase *ph, const char *p, size_t rem)
{
    for (int k = 0; k < ph->nsecrets; k++) {
        size_t n = ph->slens[k];
        if (n <= rem) {
            if (memcmp(p, ph->secrets[k], n) == 0)
                return k;
        } else if (memcmp(p, ph->secrets[k], rem) == 0) {
            return -2;
        }
    }
    return -1;
}

/* Scrubs p into the output.  Unless final, a tail that may be the start
 * of a secret stays in ph->raw for the next call. */
static void feed(struct phase *ph, const char *p, size_t n, bool final)
{
    if (ph->nsecrets == 0) {
        emit(ph, p, n);
        return;
    }
    if (n > 0 && buf_append(&ph->raw, p, n) != TR_OK)
        return;
    const char *d = ph->raw.data;
    size_t len = ph->raw.len, i = 0, start = 0;
    while (i < len) {
        int k = match(ph, d + i, len - i);
        if (k >= 0) {
            emit(ph, d + start, i - start);
            emit(ph, "***", 3);
            i += ph->slens[k];
            start = i;
        } else if (k == -2 && !final) {
            break;
        } else {
            i++;
        }
    }
    emit(ph, d + start, i - start);
    if (len > 0) {
        memmove(ph->raw.data, d + i, len - i);
        ph->raw.len = len - i;
        ph->raw.data[ph->raw.len] = '\0';
    }
}

/* A message of Terrace's own into the log. */
static void say(struct phase *ph, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void say(struct phase *ph, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *s = arena_vprintf(ph->a, fmt, ap);
    va_end(ap);
    feed(ph, s, strlen(s), false);
}

static void flush(struct phase *ph, bool force)
{
    int64_t now = util_now_ms();
    /* after a failed send, wait a second whatever is pending */
    int64_t wait = ph->log_failed ? 1000 : ph->x->o.flush_ms;
    if (ph->out.len == 0 ||
        (!force && (ph->log_failed || ph->out.len < FLUSH_MAX) &&
         now - ph->last_flush < wait))
        return;
    struct tr_errbuf eb = {{0}};
    tr_err e = ph->x->api.append_log(ph->x->api.ctx, ph->j->id, ph->out.data,
                                     ph->out.len, ph->out_at, &eb);
    if (e != TR_OK && !ph->log_failed) {
        log_warn("executor: job %s: cannot append to the log: %s", ph->j->id,
                 tr_errbuf_msg(&eb, e));
        ph->log_failed = true;
    }
    ph->last_flush = now;
    /* the server out of reach: keep the chunk for the next flush */
    if (e != TR_OK && e != TR_ERR_NOT_FOUND && ph->out.len < LOG_KEEP_MAX)
        return;
    if (e == TR_OK)
        ph->log_failed = false;
    ph->out_at += ph->out.len; /* sent, or given up: the stream goes on */
    buf_reset(&ph->out);
}

static void add_secret(struct phase *ph, const char *s, size_t n)
{
    if (n == 0)
        return;
    int k = ph->nsecrets++;
    ph->secrets[k] = arena_strndup(ph->a, s, n);
    ph->slens[k] = n;
    /* keep longest first, so a secret containing another wins */
    while (k > 0 && ph->slens[k - 1] < ph->slens[k]) {
        const char *ts = ph->secrets[k];
        size_t tn = ph->slens[k];
        ph->secrets[k] = ph->secrets[k - 1];
        ph->slens[k] = ph->slens[k - 1];
        ph->secrets[k - 1] = ts;
        ph->slens[k - 1] = tn;
        k--;
    }
}

/* Sensitive values, their HCL-escaped forms (tofu quotes source lines of
 * the tfvars file in diagnostics) and the run token. */
static void secrets_init(struct phase *ph)
{
    const struct job *j = ph->j;
    size_t max = 2 * (size_t)j->nvars + 1;
    ph->secrets = arena_alloc(ph->a, sizeof(*ph->secrets) * max);
    ph->slens = arena_alloc(ph->a, sizeof(*ph->slens) * max);
    for (int i = 0; i < j->nvars; i++) {
        const char *v = j->vars[i].value;
        if (!j->vars[i].sensitive || v == NULL || *v == '\0')
            continue;
        add_secret(ph, v, strlen(v));
        struct buf esc;
        buf_init(&esc, 0);
        if (workdir_hcl_string(&esc, v) == TR_OK && esc.len >= 2 &&
            (esc.len - 2 != strlen(v) || memcmp(esc.data + 1, v, esc.len - 2)))
            add_secret(ph, esc.data + 1, esc.len - 2);
        buf_free(&esc);
    }
    if (j->token != NULL)
        add_secret(ph, j->token, strlen(j->token));
}

/* ---- control: heartbeats, cancel, timeout ------------------------------ */

static void heartbeat(struct phase *ph, bool force)
{
    int64_t now = util_now_ms();
    if (!force && now < ph->next_hb)
        return;
    ph->next_hb = now + ph->x->o.heartbeat_ms;
    int cancel = 0;
    struct tr_errbuf eb = {{0}};
    tr_err e = ph->x->api.heartbeat(ph->x->api.ctx, ph->j->id, &cancel, &eb);
    if (e == TR_OK && ph->hb_failing)
        log_info("executor: job %s: heartbeats go through again", ph->j->id);
    if (e == TR_OK)
        ph->hb_failing = false;
    if (e == TR_OK && cancel > ph->cancel)
        ph->cancel = cancel > 2 ? 2 : cancel;
    else if (e == TR_ERR_NOT_FOUND && !ph->lease_lost) {
        log_warn("executor: job %s: the lease was lost: %s", ph->j->id,
                 tr_errbuf_msg(&eb, e));
        ph->lease_lost = true;
    } else if (e != TR_OK && e != TR_ERR_NOT_FOUND && !ph->hb_failing) {
        /* the job goes on; the next heartbeat tries again */
        log_warn("executor: job %s: heartbeat failed, retrying: %s", ph->j->id,
                 tr_errbuf_msg(&eb, e));
        ph->hb_failing = true;
    }
}

static void signal_group(struct phase *ph, int sig)
{
    if (ph->pid > 0)
        kill(-ph->pid, sig);
}

/* Notices timeouts and shutdown, and signals the running command as the
 * requests so far demand. */
static void control(struct phase *ph)
{
    int64_t now = util_now_ms();
    if (!ph->timed_out && now >= ph->deadline) {
        ph->timed_out = true;
        say(ph, "\nterrace: the %s timed out after %lld s; stopping\n",
            ph->what, (long long)ph->timeout_s);
    }
    if (!ph->stopping && atomic_load(&ph->x->stopping)) {
        ph->stopping = true;
        say(ph, "\nterrace: the worker is shutting down; stopping\n");
    }
    if (ph->pid <= 0)
        return;
    if (ph->cancel >= 2 && !ph->kill_sent) {
        signal_group(ph, SIGKILL);
        ph->kill_sent = true;
    }
    /* SIGINT first, so tofu stops between resources and writes its state */
    if ((ph->cancel == 1 || ph->lease_lost || ph->timed_out || ph->stopping) &&
        !ph->int_sent) {
        signal_group(ph, SIGINT);
        ph->int_sent = true;
    }
    if (ph->lease_lost && ph->kill_at == 0)
        ph->kill_at = now + ph->x->o.lost_grace_ms;
    if ((ph->timed_out || ph->stopping) &&
        (ph->kill_at == 0 || ph->kill_at > now + ph->x->o.grace_ms))
        ph->kill_at = now + ph->x->o.grace_ms;
    if (ph->kill_at != 0 && now >= ph->kill_at && !ph->kill_sent) {
        signal_group(ph, SIGKILL);
        ph->kill_sent = true;
    }
}

static bool interrupted(const struct phase *ph)
{
    return ph->cancel > 0 || ph->lease_lost || ph->timed_out || ph->stopping ||
           ph->hit != MONITOR_OK;
}

/* "the run exceeded its ... limit (...)", for the limit h. */
static const char *limit_error(const struct phase *ph, enum monitor_hit h)
{
    const struct executor_opts *o = &ph->x->o;
    switch (h) {
    case MONITOR_MEMORY:
        return arena_printf(ph->a,
                            "the run exceeded its memory limit (%lld MiB)",
                            (long long)o->run_memory_mb);
    case MONITOR_TASKS:
        return arena_printf(ph->a,
                            "the run exceeded its process limit (%lld "
                            "processes and threads)",
                            (long long)o->run_tasks);
    case MONITOR_DISK:
        return arena_printf(ph->a, "the run exceeded its disk limit (%lld MiB)",
                            (long long)o->run_disk_mb);
    default:
        return "the run exceeded a limit";
    }
}

/* The outcome of an interrupted phase. */
static void stop_result(struct phase *ph, struct job_result *res)
{
    if (ph->hit != MONITOR_OK) {
        res->outcome = JOB_ERRORED;
        res->error = limit_error(ph, ph->hit);
    } else if (ph->lease_lost) {
        res->outcome = JOB_ERRORED;
        res->error = "the job's lease was lost";
    } else if (ph->cancel >= 2) {
        res->outcome = JOB_FORCE_CANCELED;
        res->error = "force-canceled";
    } else if (ph->cancel == 1) {
        res->outcome = JOB_CANCELED;
        res->error = "canceled";
    } else if (ph->timed_out) {
        res->outcome = JOB_ERRORED;
        res->error = arena_printf(ph->a, "%s timed out after %lld s", ph->what,
                                  (long long)ph->timeout_s);
    } else {
        res->outcome = JOB_ERRORED;
        res->error =
            arena_printf(ph->a, "the worker shut down during the %s", ph->what);
    }
}

/* finish(), tried again while the server or its database is out of
 * reach (the outcome must not be lost to an outage): between attempts the
 * unsent log goes again and the lease is renewed.  Gives up when the job
 * is gone, the worker stops, or after FINISH_RETRY_MAX attempts. */
static tr_err report(struct phase *ph, const struct job_result *res,
                     struct tr_errbuf *eb)
{
    struct exec_ctx *x = ph->x;
    for (int i = 0;; i++) {
        if (i > 0) {
            struct timespec ts = {FINISH_RETRY_MS / 1000,
                                  (FINISH_RETRY_MS % 1000) * 1000000L};
            nanosleep(&ts, NULL);
            heartbeat(ph, true);
        }
        /* the log first: once finished, the job takes no more of it */
        flush(ph, true);
        tr_err e = ph->out.len > 0
                       ? tr_fail(eb, TR_ERR_UNAVAILABLE,
                                 "the log could not be sent yet")
                       : x->api.finish(x->api.ctx, ph->j->id, res, eb);
        if (e != TR_ERR_UNAVAILABLE && e != TR_ERR_BUSY)
            return e;
        if (i >= FINISH_RETRY_MAX || ph->lease_lost ||
            atomic_load(&x->stopping))
            return e;
        if (i == 0)
            log_warn("executor: job %s: cannot report the outcome yet, "
                     "retrying: %s",
                     ph->j->id, tr_errbuf_msg(eb, e));
    }
}

/* Stops the run when it goes over a limit (monitor.c). */
static void watch(struct phase *ph)
{
    if (ph->hit != MONITOR_OK || ph->pid <= 0)
        return;
    enum monitor_hit h = monitor_check(&ph->mon, util_now_ms());
    if (h == MONITOR_OK)
        return;
    ph->hit = h;
    signal_group(ph, SIGKILL);
    ph->kill_sent = true;
    say(ph, "\nterrace: %s; stopping\n", limit_error(ph, h));
}

/* Milliseconds poll() may sleep before a timer is due. */
static int next_wait(const struct phase *ph, bool no_pidfd)
{
    int64_t now = util_now_ms(), w = STOP_CHECK_MS;
    int64_t due[3] = {
        ph->next_hb - now,
        ph->out.len > 0 ? ph->last_flush + ph->x->o.flush_ms - now : w,
        !ph->timed_out ? ph->deadline - now : w,
    };
    for (int i = 0; i < 3; i++)
        if (due[i] < w)
            w = due[i];
    if (ph->kill_at != 0 && !ph->kill_sent && ph->kill_at - now < w)
        w = ph->kill_at - now;
    if (no_pidfd && w > 50)
        w = 50;
    return w < 0 ? 0 : (int)w;
}

/* ---- running one command ----------------------------------------------- */

/* Reads what the pipe has (up to a bound, so timers keep running); true
 * at end of file. */
static bool drain(struct phase *ph, int fd)
{
    char chunk[READ_CHUNK];
    for (int rounds = 0; rounds < 16; rounds++) {
        ssize_t n = read(fd, chunk, sizeof(chunk));
        if (n > 0) {
            feed(ph, chunk, (size_t)n, false);
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        return !(n < 0 && errno == EAGAIN);
    }
    return false;
}

/* argv as a command of this phase's sandbox: its environment, view,
 * mounts and temporary directories. */
static struct sandbox_cmd phase_cmd(const struct phase *ph,
                                    const char *const *argv, int stdout_fd)
{
    return (struct sandbox_cmd){
        .argv = argv,
        .envp = ph->env,
        .cwd = ph->view.cwd,
        .mounts = ph->mounts,
        .nmounts = ph->nmounts,
        .tmp = ph->wd.tmp,
        .shm = ph->wd.shm,
        .home = ph->view.home,
        .stdout_fd = stdout_fd,
    };
}

/* Runs argv to its end; *status gets its wait status.  Fails only if it
 * could not be started. */
static tr_err run(struct phase *ph, const char *const *argv, int stdout_fd,
                  int *status, struct tr_errbuf *eb)
{
    struct sandbox_cmd cmd = phase_cmd(ph, argv, stdout_fd);
    pid_t pid = ph->adopt_pid;
    int fd = ph->adopt_fd;
    ph->adopt_pid = 0;
    if (pid <= 0) {
        tr_err e = sandbox_spawn(ph->x->sb, ph->a, &cmd, &pid, &fd, eb);
        if (e != TR_OK)
            return e;
    }
    ph->pid = pid;
    ph->int_sent = ph->kill_sent = false;
    ph->kill_at = 0;
    int pidfd = pidfd_open(pid, 0);
    monitor_begin(&ph->mon, pid, sandbox_isolated(ph->x->sb));
    bool eof = false, exited = false;
    while (!exited) {
        control(ph);
        watch(ph);
        struct pollfd pf[2];
        int n = 0, ifd = -1;
        if (!eof) {
            pf[n] = (struct pollfd){.fd = fd, .events = POLLIN};
            ifd = n++;
        }
        if (pidfd >= 0)
            pf[n++] = (struct pollfd){.fd = pidfd, .events = POLLIN};
        int r = poll(pf, (nfds_t)n, next_wait(ph, pidfd < 0));
        if (r > 0 && ifd >= 0 && pf[ifd].revents != 0)
            eof = drain(ph, fd);
        siginfo_t si = {0};
        int w = waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT);
        if ((w == 0 && si.si_pid == pid) || (w < 0 && errno == ECHILD))
            exited = true;
        heartbeat(ph, false);
        flush(ph, false);
    }
    /* strays of the group die while the unreaped leader holds its id */
    kill(-pid, SIGKILL);
    if (ph->hit == MONITOR_OK) {
        ph->hit = monitor_final(&ph->mon);
        if (ph->hit != MONITOR_OK)
            say(ph, "\nterrace: %s\n", limit_error(ph, ph->hit));
    }
    *status = SIGKILL; /* as if killed, should waitpid() fail */
    while (waitpid(pid, status, 0) < 0 && errno == EINTR)
        ;
    ph->pid = 0;
    int64_t until = util_now_ms() + DRAIN_MS;
    while (!eof) {
        int64_t left = until - util_now_ms();
        struct pollfd pf = {.fd = fd, .events = POLLIN};
        if (left <= 0 || poll(&pf, 1, (int)left) <= 0)
            break;
        eof = drain(ph, fd);
    }
    close(fd);
    if (pidfd >= 0)
        close(pidfd);
    feed(ph, NULL, 0, true);
    flush(ph, true);
    return TR_OK;
}

/* True if the output kept so far (the tail, or the captured init
 * output) holds s. */
static bool output_has(const struct phase *ph, const char *s)
{
    const struct buf *b[2] = {&ph->tail, ph->capture};
    for (int i = 0; i < 2; i++)
        if (b[i] != NULL && b[i]->len > 0 &&
            memmem(b[i]->data, b[i]->len, s, strlen(s)) != NULL)
            return true;
    return false;
}

/* A step failed: when its output shows a per-process limit refusing
 * something (an allocation, a fork, a descriptor), name the limit, in
 * the log and as the run's error. */
static void limit_hint(struct phase *ph, struct job_result *res)
{
    const struct executor_opts *o = &ph->x->o;
    const struct monitor *m = &ph->mon;
    const char *why = NULL;
    /* the run's own processes and threads were at the limit */
    if (m->task_limit > 0 && m->peak_tasks >= m->task_limit)
        why = limit_error(ph, MONITOR_TASKS);
    else if (output_has(ph, "memory exhausted") ||
             output_has(ph, "out of memory") ||
             output_has(ph, "annot allocate memory"))
        why = arena_printf(ph->a,
                           "a process of the run ran out of memory: "
                           "the run's memory limit is %lld MiB",
                           (long long)o->run_memory_mb);
    else if (output_has(ph, "Resource temporarily unavailable") ||
             output_has(ph, "Cannot fork") || output_has(ph, "fork:"))
        why = arena_printf(ph->a,
                           "the run could not start more processes: "
                           "its process limit is %lld processes and "
                           "threads",
                           (long long)o->run_tasks);
    else if (output_has(ph, "Too many open files"))
        why = arena_printf(ph->a,
                           "a process of the run opened too many "
                           "files: the limit is %lld per process",
                           (long long)o->run_open_files);
    if (why == NULL)
        return;
    res->error = why;
    say(ph, "terrace: %s\n", why);
}

/* Runs one step of the phase; true if it exited 0.  Otherwise res says
 * why and the log has a line about it. */
static bool step(struct phase *ph, const char *const *argv, int stdout_fd,
                 const char *name, struct job_result *res)
{
    if (interrupted(ph)) {
        stop_result(ph, res);
        return false;
    }
    int status = 0;
    struct tr_errbuf eb = {{0}};
    tr_err e = run(ph, argv, stdout_fd, &status, &eb);
    if (e != TR_OK) {
        say(ph, "\nError: %s\n", tr_errbuf_msg(&eb, e));
        res->outcome = JOB_ERRORED;
        res->error = arena_printf(ph->a, "cannot start %s: %s", ph->tool,
                                  tr_errbuf_msg(&eb, e));
        return false;
    }
    if (interrupted(ph)) {
        stop_result(ph, res);
        /* timeouts, shutdown and limits said so already */
        if (!ph->timed_out && !ph->stopping && ph->hit == MONITOR_OK)
            say(ph, "\nterrace: %s\n", res->error);
        return false;
    }
    int sig = sandbox_exit_signal(ph->x->sb, status);
    int code = sandbox_exit_code(status);
    if (sig == 0 && code == 0)
        return true;
    if (sig == 0 && code == 2 && ph->detailed) {
        ph->plan_diff = true;
        return true;
    }
    res->outcome = JOB_ERRORED;
    const struct executor_opts *o = &ph->x->o;
    if (sig == SIGXCPU) {
        res->error = arena_printf(ph->a,
                                  "%s %s exceeded its CPU time limit (%lld s "
                                  "per process)",
                                  ph->tool, name, (long long)o->run_cpu_s);
        say(ph, "\nterrace: %s\n", res->error);
    } else if (sig == SIGXFSZ) {
        res->error = arena_printf(ph->a,
                                  "%s %s wrote a file over the run's disk "
                                  "limit (%lld MiB)",
                                  ph->tool, name, (long long)o->run_disk_mb);
        say(ph, "\nterrace: %s\n", res->error);
    } else if (sig != 0) {
        const char *abbrev = sigabbrev_np(sig);
        res->error = arena_printf(ph->a, "%s %s was killed by signal %d",
                                  ph->tool, name, sig);
        say(ph, "\nterrace: %s (SIG%s)\n", res->error, abbrev ? abbrev : "?");
    } else {
        res->error = arena_printf(ph->a, "%s %s exited with status %d",
                                  ph->tool, name, code);
        say(ph, "\nterrace: %s\n", res->error);
    }
    limit_hint(ph, res);
    return false;
}

/* ---- the environment --------------------------------------------------- */

/* A file name of letters, digits, '.', '_' and '-'. */
static bool safe_name(const char *s)
{
    if (*s == '\0' || *s == '.' || strlen(s) > 64)
        return false;
    for (const char *p = s; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
              (*p >= '0' && *p <= '9') || *p == '.' || *p == '_' || *p == '-'))
            return false;
    return true;
}

static bool env_name_ok(const char *s)
{
    if (s == NULL ||
        !((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || *s == '_'))
        return false;
    for (const char *p = s; *p; p++)
        if (!((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
              (*p >= '0' && *p <= '9') || *p == '_'))
            return false;
    return true;
}

/* Variables Terrace sets only for some runs: the workspace's own value
 * is kept in the others. */
static bool optional_ours(const char *name)
{
    return strcmp(name, "GIT_SSH_COMMAND") == 0 ||
           strcmp(name, "SSL_CERT_DIR") == 0 || strcmp(name, "GOGC") == 0 ||
           strcmp(name, "GOMEMLIMIT") == 0;
}

/* True if the job's environment variables name name. */
static bool job_env_set(const struct job *j, const char *name)
{
    for (int i = 0; i < j->nvars; i++)
        if (j->vars[i].env && strcmp(j->vars[i].key, name) == 0)
            return true;
    return false;
}

/* GOGC and GOMEMLIMIT for the run's Go processes (tofu and its
 * providers), unless the workspace sets either or the node sets neither.
 * Go's default collects from a 4 MiB heap on; a plan or an apply of a
 * small configuration allocates some 20-30 MiB in all, and its few
 * collections cost a remote apply ~30 ms of ~190 on 2 cores
 * (bench/RESULTS.md).  GOGC=800 lets a heap grow to 9 times what it
 * keeps; GOMEMLIMIT (an eighth of the run's memory) caps that, so a
 * process holds at most about the larger of that eighth and its live
 * heap, where Go's default holds about twice its live heap: more for a
 * mid-sized process that makes much garbage, less for a large one.  On
 * a plan whose live heap was ~90 MiB: GOGC=800 alone took 4 times the
 * memory; with a limit of 2.7 times the live heap it ran 10 % faster in
 * 309 MB against 273-281, at 1.7 times as fast as Go's default in less,
 * at 1.1 times 40 % slower.  A process whose live heap passes half the
 * limit collects more often than with Go's default, and one near it is
 * slowed: a workspace can set GOGC or GOMEMLIMIT itself. */
static void go_gc_env(struct phase *ph, const char **gogc, const char **limit)
{
    const struct executor_opts *o = &ph->x->o;
    *gogc = *limit = NULL;
    if (o->run_gogc <= 0 || job_env_set(ph->j, "GOGC") ||
        job_env_set(ph->j, "GOMEMLIMIT"))
        return;
    *gogc = arena_printf(ph->a, "%lld", (long long)o->run_gogc);
    int64_t mib = o->run_memory_mb > 0 ? o->run_memory_mb / 8 : 512;
    *limit = arena_printf(ph->a, "%lldMiB", (long long)(mib > 0 ? mib : 1));
}

/* The environment: Terrace's own variables, which always win, then the
 * workspace's environment variables.  Paths are the run's view. */
static void env_build(struct phase *ph)
{
    const struct job *j = ph->j;
    const struct workdir *v = &ph->view;
    const char *gogc, *memlimit;
    go_gc_env(ph, &gogc, &memlimit);
    const char *ours[] = {
        "TF_CLI_CONFIG_FILE",
        v->cli_config,
        "TF_FORCE_LOCAL_BACKEND",
        "1",
        "TFE_RUN_ID",
        j->run_id ? j->run_id : "",
        "TF_IN_AUTOMATION",
        "1",
        "TF_INPUT",
        "0",
        "PATH",
        "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "HOME",
        v->home,
        "TMPDIR",
        v->tmp,
        "TF_PLUGIN_CACHE_DIR",
        v->cache,
        "TF_PLUGIN_CACHE_MAY_BREAK_DEPENDENCY_LOCK_FILE",
        "1",
        "SSL_CERT_FILE",
        v->roots ? v->ca : NULL,
        /* ca.pem holds every root: no directory to read (workdir.c),
         * unless the workspace names one */
        "SSL_CERT_DIR",
        v->roots_all && !job_env_set(j, "SSL_CERT_DIR") ? v->no_certs : NULL,
        "GOGC",
        gogc,
        "GOMEMLIMIT",
        memlimit,
        /* git over SSH with the workspace's key, in batch mode; host keys
         * are taken on first sight, as no known_hosts can be given */
        "GIT_SSH_COMMAND",
        j->ssh_key != NULL && *j->ssh_key
            ? arena_printf(ph->a,
                           "ssh -F /dev/null -i %s -o IdentitiesOnly=yes"
                           " -o BatchMode=yes -o StrictHostKeyChecking=no"
                           " -o UserKnownHostsFile=/dev/null",
                           v->ssh_key)
            : NULL,
    };
    int nours = (int)(sizeof(ours) / sizeof(ours[0])) / 2;
    const char **env =
        arena_alloc(ph->a, sizeof(*env) * (size_t)(nours + j->nvars + 1));
    int n = 0;
    for (int i = 0; i < nours; i++)
        if (ours[2 * i + 1] != NULL)
            env[n++] =
                arena_printf(ph->a, "%s=%s", ours[2 * i], ours[2 * i + 1]);
    int protected = n;
    for (int i = 0; i < j->nvars; i++) {
        const struct job_var *var = &j->vars[i];
        if (!var->env)
            continue;
        if (!env_name_ok(var->key)) {
            say(ph,
                "terrace: ignoring environment variable \"%.64s\": not "
                "a valid name\n",
                var->key);
            continue;
        }
        /* refused by the API; a row from before may still hold one */
        const char *why = NULL;
        bool theirs = !env_name_refused(var->key, &why);
        for (int k = 0; theirs && k < nours; k++)
            if (strcmp(var->key, ours[2 * k]) == 0 &&
                !(ours[2 * k + 1] == NULL && optional_ours(ours[2 * k]))) {
                theirs = false;
                why = "it is set by Terrace for every run";
            }
        if (!theirs) {
            say(ph, "terrace: ignoring environment variable %s: %s\n", var->key,
                why);
            continue;
        }
        size_t kl = strlen(var->key);
        int slot = n;
        for (int k = protected; k < n; k++)
            if (strncmp(env[k], var->key, kl) == 0 && env[k][kl] == '=')
                slot = k;
        env[slot] = arena_printf(ph->a, "%s=%s", var->key,
                                 var->value ? var->value : "");
        if (slot == n)
            n++;
    }
    env[n] = NULL;
    ph->env = env;
}

/* The run's view of its paths, and the mounts behind them. */
static void paths_build(struct phase *ph)
{
    const struct exec_ctx *x = ph->x;
    workdir_view(x, ph->a, &ph->wd, &ph->view);
    ph->tool_view = ph->j->tool_path;
    if (!sandbox_isolated(x->sb))
        return;
    const char *base = strrchr(ph->j->tool_path, '/');
    base = base != NULL ? base + 1 : ph->j->tool_path;
    if (!safe_name(base))
        base = "tool";
    ph->tool_view = arena_printf(ph->a, "%s/%s", VIEW_BIN, base);
    int n = 0;
    ph->mounts[n++] = (struct sandbox_mount){ph->wd.root, VIEW_JOB, true};
    ph->mounts[n++] = (struct sandbox_mount){ph->wd.cache, VIEW_CACHE, true};
    ph->mounts[n++] =
        (struct sandbox_mount){ph->j->tool_path, ph->tool_view, false};
    const char *mirror = x->o.provider_mirror;
    if (mirror != NULL && *mirror != '\0')
        ph->mounts[n++] = (struct sandbox_mount){mirror, VIEW_MIRROR, false};
    ph->nmounts = n;
}

/* ---- the phases -------------------------------------------------------- */

static const char **args(struct phase *ph, int extra)
{
    const char **v = arena_alloc(ph->a, sizeof(*v) * (size_t)(extra + 8));
    v[0] = ph->tool_view;
    return v;
}

/* tofu init, its output shown only if it fails. */
static bool init(struct phase *ph, struct job_result *res)
{
    const char **v = args(ph, 0);
    v[1] = "init";
    v[2] = "-input=false";
    struct buf cap;
    buf_init(&cap, 0);
    ph->capture = &cap;
    bool ok = step(ph, v, -1, "init", res);
    ph->capture = NULL;
    if (!ok && !interrupted(ph)) {
        /* the error line of step() went to the capture; show it all */
        emit(ph, cap.data, cap.len);
        flush(ph, true);
    } else if (!ok) {
        say(ph, "\nterrace: %s\n", res->error);
    }
    buf_free(&cap);
    return ok;
}

/* Runs `tofu <sub...>` (NULL-terminated) with its stdout into a new file
 * at path; true if it exited 0. */
static bool to_file(struct phase *ph, const char *const *sub, const char *path,
                    const char *what, struct job_result *res)
{
    int fd =
        open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) {
        res->outcome = JOB_ERRORED;
        res->error =
            arena_printf(ph->a, "cannot create %s: %s", what, strerror(errno));
        say(ph, "\nError: %s\n", res->error);
        return false;
    }
    const char **v = args(ph, 4);
    int n = 1;
    for (; sub[n - 1] != NULL; n++)
        v[n] = sub[n - 1];
    v[n] = NULL;
    bool ok = step(ph, v, fd, sub[0], res);
    close(fd);
    return ok;
}

/* An empty plan file of the run user's, for tofu to write: the
 * directory it sits in is the node's. */
static bool plan_file_ready(struct phase *ph, struct job_result *res)
{
    struct tr_errbuf eb = {{0}};
    int fd = open(ph->wd.plan_file,
                  O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    tr_err e = fd < 0 ? tr_fail(&eb, TR_ERR_IO, "cannot create %s: %s",
                                ph->wd.plan_file, strerror(errno))
                      : workdir_give(ph->x, ph->wd.plan_file, false, &eb);
    if (fd >= 0)
        close(fd);
    if (e == TR_OK)
        return true;
    res->outcome = JOB_ERRORED;
    res->error = arena_strdup(ph->a, tr_errbuf_msg(&eb, e));
    say(ph, "\nError: %s\n", res->error);
    return false;
}

/* tofu init, or the workspace's remembered .terraform when an init
 * would only make it again (init_memo.c). */
static bool initialize(struct phase *ph, struct job_result *res)
{
    const struct job *j = ph->j;
    bool keyed = init_memo_key(ph->x, j, ph->a, &ph->wd, &ph->ik);
    if (keyed && init_memo_take(ph->x, j, ph->a, &ph->wd, &ph->ik)) {
        ph->memo_hit = true;
        log_info("executor: job %s: %s init of an earlier plan of workspace "
                 "%s reused",
                 j->id, ph->tool, j->workspace_id);
        return true;
    }
    if (!init(ph, res))
        return false;
    if (keyed)
        init_memo_put(ph->x, j, ph->a, &ph->wd, &ph->ik);
    return true;
}

/* A plan that failed in a remembered .terraform and names init in its
 * output (it did not fit: a module source depending on a variable in a
 * way the key missed): forgets the entry, keys the workspace by its
 * variables from now on and runs init; true if the plan should run
 * again. */
static bool init_again(struct phase *ph, struct job_result *res)
{
    char want[32];
    snprintf(want, sizeof(want), "%s init", ph->tool);
    if (!ph->memo_hit || interrupted(ph) || !output_has(ph, want))
        return false;
    ph->memo_hit = false;
    init_memo_misfit(ph->x, ph->j->workspace_id);
    log_info("executor: job %s: the reused init did not fit; running %s "
             "init",
             ph->j->id, ph->tool);
    say(ph,
        "\nterrace: the initialization reused from an earlier plan does "
        "not fit this one; running %s init and planning again\n\n",
        ph->tool);
    workdir_remove(arena_printf(ph->a, "%s/.terraform", ph->wd.cwd));
    /* its key, now with the variables, for the init made below */
    if (!init_memo_key(ph->x, ph->j, ph->a, &ph->wd, &ph->ik))
        ph->ik.key[0] = '\0';
    unlink(ph->wd.plan_file);
    buf_reset(&ph->tail);
    ph->plan_diff = false;
    *res = (struct job_result){.outcome = JOB_ERRORED};
    if (!plan_file_ready(ph, res) || !init(ph, res))
        return false;
    init_memo_put(ph->x, ph->j, ph->a, &ph->wd, &ph->ik);
    return true;
}

static void warm_begin(struct phase *ph);

static void early_plan_take(struct phase *ph);

/* `tofu plan` with the job's options; chdir (NULL: none) goes first, as
 * -chdir= (an early plan's working directory, not there yet when it
 * starts). */
static const char **plan_argv(struct phase *ph, const char *chdir)
{
    const struct job *j = ph->j;
    const char **v = args(ph, j->ntargets + j->nreplaces + 5);
    int n = 1;
    if (chdir != NULL)
        v[n++] = arena_printf(ph->a, "-chdir=%s", chdir);
    v[n++] = "plan";
    v[n++] = "-input=false";
    v[n++] = "-lock=false";
    if (j->structured)
        v[n++] = "-json";
    v[n++] = arena_printf(ph->a, "-out=%s", ph->view.plan_file);
    if (j->is_destroy)
        v[n++] = "-destroy";
    if (j->refresh_only)
        v[n++] = "-refresh-only";
    else if (!j->refresh)
        v[n++] = "-refresh=false";
    for (int i = 0; i < j->ntargets; i++)
        v[n++] = arena_printf(ph->a, "-target=%s", j->targets[i]);
    for (int i = 0; i < j->nreplaces; i++)
        v[n++] = arena_printf(ph->a, "-replace=%s", j->replaces[i]);
    if (j->defer_json)
        v[n++] = "-detailed-exitcode";
    v[n] = NULL;
    return v;
}

static void plan_phase(struct phase *ph, struct job_result *res)
{
    if (!plan_file_ready(ph, res) || !initialize(ph, res))
        return;
    warm_begin(ph);
    const struct job *j = ph->j;
    const char **v = plan_argv(ph, NULL);
    ph->detailed = j->defer_json;
    early_plan_take(ph);
    bool ok = step(ph, v, -1, "plan", res);
    if (!ok && init_again(ph, res))
        ok = step(ph, v, -1, "plan", res);
    ph->detailed = false;
    if (!ok)
        return;
    /* changes, and the run applies at once: the counts from tofu's own
     * summary, the JSON made after the apply (make_json) */
    if (ph->plan_diff &&
        tofu_plan_summary(ph->a, ph->tail.data, ph->tail.len, res)) {
        res->outcome = JOB_FINISHED;
        res->plan_file = ph->wd.plan_file;
        ph->keep = !j->speculative;
        return;
    }
    const char *show[] = {"show", "-json", ph->view.plan_file, NULL};
    if (!to_file(ph, show, ph->wd.json_plan, "the JSON plan", res))
        return;
    /* what the CLI needs to render the plan from its JSON */
    const char *schema[] = {"providers", "schema", "-json", NULL};
    if (j->want_schemas &&
        !to_file(ph, schema, ph->wd.schemas, "the provider schemas", res))
        return;
    struct tr_errbuf eb = {{0}};
    tr_err e = tofu_count_plan(ph->wd.json_plan, ph->j->refresh_only, res, &eb);
    if (e != TR_OK) {
        res->outcome = JOB_ERRORED;
        res->error = arena_strdup(ph->a, tr_errbuf_msg(&eb, e));
        say(ph, "\nError: %s\n", res->error);
        return;
    }
    res->outcome = JOB_FINISHED;
    res->plan_file = ph->wd.plan_file;
    res->json_plan_file = ph->wd.json_plan;
    res->schemas_file = j->want_schemas ? ph->wd.schemas : NULL;
    ph->keep = !j->speculative && res->has_changes;
}

/* ---- the apply started beside its plan (warm.c) ----------------------- */

/* `tofu apply` of the plan at plan (the run's view). */
static const char **apply_argv(struct phase *ph, const char *plan)
{
    const char **v = args(ph, 1);
    int n = 1;
    v[n++] = "apply";
    v[n++] = "-input=false";
    v[n++] = "-lock=false";
    v[n++] = "-auto-approve";
    if (ph->j->structured)
        v[n++] = "-json";
    v[n++] = plan;
    v[n] = NULL;
    return v;
}

/* The phase's environment with TF_CLI_CONFIG_FILE=dir/WARM_CONFIG. */
static const char **env_config_in(struct phase *ph, const char *dir)
{
    static const char key[] = "TF_CLI_CONFIG_FILE=";
    int n = 0;
    while (ph->env[n] != NULL)
        n++;
    const char **env = arena_alloc(ph->a, sizeof(*env) * (size_t)(n + 1));
    for (int i = 0; i <= n; i++)
        env[i] =
            ph->env[i] != NULL && strncmp(ph->env[i], key, sizeof(key) - 1) == 0
                ? arena_printf(ph->a, "%s%s/" WARM_CONFIG, key, dir)
                : ph->env[i];
    return env;
}

/* The apply as it is started early: its plan and CLI configuration in
 * VIEW_WARM, everything else as the apply job will have it. */
static struct sandbox_cmd warm_cmd(struct phase *ph)
{
    struct sandbox_cmd c =
        phase_cmd(ph, apply_argv(ph, VIEW_WARM "/" WARM_PLAN), -1);
    c.envp = env_config_in(ph, VIEW_WARM);
    return c;
}

/* A plan whose run applies at once, on a node that keeps plans for
 * their applies: its apply's process starts now and waits. */
static void warm_begin(struct phase *ph)
{
    const struct job *j = ph->j;
    if (!j->defer_json || j->speculative || ph->x->o.keep_ms <= 0 ||
        !sandbox_isolated(ph->x->sb))
        return;
    struct sandbox_cmd c = warm_cmd(ph);
    warm_start(ph->x, ph->a, &c, arena_printf(ph->a, "%s.warm", ph->wd.root),
               VIEW_WARM, &ph->warm);
}

/* ---- the plan's own process, started first thing (warm.c) ------------- */

/* A plan job's tofu plan, started before the configuration is there: it
 * spends its start-up while the node fetches and extracts the
 * configuration and runs or remembers init, and waits at its CLI
 * configuration (VIEW_START) until early_plan_take().  It changes to its
 * working directory (-chdir) only after that.  ph has its directory
 * begun, paths and environment built. */
static void early_plan_start(struct phase *ph)
{
    const struct job *j = ph->j;
    if (j->phase != JOB_PLAN || !sandbox_isolated(ph->x->sb))
        return;
    const char *wdir = j->working_directory != NULL ? j->working_directory : "";
    size_t n = strlen(wdir);
    while (n > 0 && wdir[n - 1] == '/') /* find_cwd() takes "sub/" too */
        n--;
    ph->early_cwd =
        n > 0 ? arena_printf(ph->a, "%s/%.*s", ph->view.src, (int)n, wdir)
              : ph->view.src;
    struct sandbox_cmd c = phase_cmd(ph, plan_argv(ph, ph->early_cwd), -1);
    c.envp = env_config_in(ph, VIEW_START);
    c.cwd = ph->view.src;
    warm_start(ph->x, ph->a, &c, arena_printf(ph->a, "%s.plan", ph->wd.root),
               VIEW_START, &ph->early);
}

/* The plan step takes the early plan when it will run where the plan
 * runs (a working directory reached through a link is found there only
 * afterwards) and reads the plan's CLI configuration; otherwise it is
 * killed and the plan starts as usual. */
static void early_plan_take(struct phase *ph)
{
    if (ph->early.pid <= 0)
        return;
    struct tr_errbuf eb = {{0}};
    tr_err e = strcmp(ph->early_cwd, ph->view.cwd) == 0
                   ? warm_release(ph->x, ph->a, &ph->early, NULL,
                                  ph->wd.cli_config, &eb)
                   : tr_fail(&eb, TR_ERR_INVALID,
                             "its working directory is reached through a "
                             "link");
    if (e != TR_OK) {
        log_info("executor: job %s: the plan started first is not used: %s",
                 ph->j->id, tr_errbuf_msg(&eb, e));
        warm_kill(&ph->early);
        return;
    }
    ph->adopt_pid = ph->early.pid;
    ph->adopt_fd = ph->early.fd;
    ph->early.pid = 0;
    ph->early.fd = -1;
}

/* The apply: takes the process started beside the plan, when it was
 * started as exactly this apply and reads its configuration; otherwise
 * kills it (the apply then starts as usual). */
static void warm_take(struct phase *ph)
{
    struct sandbox_cmd c = warm_cmd(ph);
    struct tr_errbuf eb = {{0}};
    tr_err e = TR_ERR_INVALID;
    if (!warm_matches(&ph->warm, &c))
        tr_fail(&eb, e,
                "it was started with other arguments or "
                "environment");
    else
        e = warm_release(ph->x, ph->a, &ph->warm, ph->wd.plan_file,
                         ph->wd.cli_config, &eb);
    if (e != TR_OK) {
        log_info("executor: job %s: the apply started beside the plan is "
                 "not used: %s",
                 ph->j->id, tr_errbuf_msg(&eb, e));
        warm_kill(&ph->warm);
        return;
    }
    log_info("executor: job %s: the apply started beside the plan goes on",
             ph->j->id);
    ph->adopt_pid = ph->warm.pid;
    ph->adopt_fd = ph->warm.fd;
    ph->warm.pid = 0;
    ph->warm.fd = -1;
}

/* Says why the JSON plan was not made: in the run's log, or, late (the
 * job has finished and takes no more of the run's log), in the node's. */
static void side_failed(struct phase *ph, bool late, const char *why)
{
    if (late)
        log_warn("executor: job %s: no JSON plan: %s", ph->j->id, why);
    else
        say(ph, "terrace: the JSON plan could not be made: %s\n", why);
}

static void side_start(struct phase *ph, struct side *sd, bool late)
{
    unlink(ph->wd.json_plan);
    int out = open(ph->wd.json_plan,
                   O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (out < 0) {
        side_failed(ph, late, "cannot create its file");
        return;
    }
    const char *argv[] = {ph->tool_view, "show", "-json", ph->view.plan_file,
                          NULL};
    struct sandbox_cmd cmd = phase_cmd(ph, argv, out);
    struct tr_errbuf eb = {{0}};
    tr_err e = sandbox_spawn(ph->x->sb, ph->a, &cmd, &sd->pid, &sd->fd, &eb);
    close(out);
    if (e != TR_OK) {
        sd->pid = -1;
        side_failed(ph, late, tr_errbuf_msg(&eb, e));
    }
}

/* Waits for the side process (killed if the phase was stopped), reaps
 * it and, when it succeeded, reports its JSON plan in res.  A failure is
 * said in the log; the apply's outcome stays its own.  late: the job has
 * finished, so no heartbeat and nothing more in the run's log. */
static void side_end(struct phase *ph, struct side *sd, struct job_result *res,
                     bool late)
{
    if (sd->pid <= 0)
        return;
    struct buf cap;
    buf_init(&cap, 0);
    int pidfd = pidfd_open(sd->pid, 0);
    bool eof = false, killed = false;
    for (;;) {
        if (!killed && (interrupted(ph) || util_now_ms() >= ph->deadline)) {
            kill(-sd->pid, SIGKILL);
            killed = true;
        }
        siginfo_t si = {0};
        int w = waitid(P_PID, (id_t)sd->pid, &si, WEXITED | WNOHANG | WNOWAIT);
        if ((w == 0 && si.si_pid == sd->pid) || (w < 0 && errno == ECHILD))
            break;
        struct pollfd pf[2];
        int n = 0;
        if (!eof)
            pf[n++] = (struct pollfd){.fd = sd->fd, .events = POLLIN};
        if (pidfd >= 0)
            pf[n++] = (struct pollfd){.fd = pidfd, .events = POLLIN};
        poll(pf, (nfds_t)n, pidfd >= 0 ? STOP_CHECK_MS : 50);
        char chunk[4096];
        ssize_t r = -1;
        while (!eof && (r = read(sd->fd, chunk, sizeof(chunk))) != 0) {
            if (r < 0) {
                eof = errno != EAGAIN && errno != EINTR;
                break;
            }
            keep_last(&cap, chunk, (size_t)r, CAPTURE_MAX);
        }
        if (r == 0)
            eof = true;
        if (!late)
            heartbeat(ph, false);
    }
    kill(-sd->pid, SIGKILL); /* strays of its group */
    int status = SIGKILL;
    while (waitpid(sd->pid, &status, 0) < 0 && errno == EINTR)
        ;
    char chunk[4096];
    ssize_t r;
    while ((r = read(sd->fd, chunk, sizeof(chunk))) > 0)
        keep_last(&cap, chunk, (size_t)r, CAPTURE_MAX);
    close(sd->fd);
    if (pidfd >= 0)
        close(pidfd);
    int sig = sandbox_exit_signal(ph->x->sb, status);
    int code = sandbox_exit_code(status);
    if (!killed && sig == 0 && code == 0) {
        res->json_plan_file = ph->wd.json_plan;
    } else if (!killed) {
        if (!late) {
            say(ph,
                "\nterrace: the JSON plan could not be made: %s show %s %d\n",
                ph->tool,
                sig != 0 ? "was killed by signal" : "exited with status",
                sig != 0 ? sig : code);
            feed(ph, cap.data, cap.len, false);
        }
        log_warn("executor: job %s: no JSON plan: %s show %s %d", ph->j->id,
                 ph->tool, sig != 0 ? "killed by signal" : "exit status",
                 sig != 0 ? sig : code);
    }
    buf_free(&cap);
    sd->pid = -1;
    sd->fd = -1;
}

/* `tofu show -json` of the applied plan, run to its end: its file in
 * res->json_plan_file when it succeeded; late as for side_failed(). */
static void json_side(struct phase *ph, struct job_result *res, bool late)
{
    struct side sd = {.pid = -1, .fd = -1};
    side_start(ph, &sd, late);
    side_end(ph, &sd, res, late);
}

static void apply_phase(struct phase *ph, struct job_result *res)
{
    struct tr_errbuf eb = {{0}};
    tr_err e = ph->reused ? TR_OK
                          : ph->x->api.fetch_plan(ph->x->api.ctx, ph->j->id,
                                                  ph->wd.plan_file, &eb);
    if (e == TR_OK && !ph->reused)
        e = workdir_give(ph->x, ph->wd.plan_file, false, &eb);
    if (e != TR_OK) {
        res->outcome = JOB_ERRORED;
        res->error = arena_printf(ph->a, "cannot fetch the plan: %s",
                                  tr_errbuf_msg(&eb, e));
        say(ph, "\nError: %s\n", res->error);
        return;
    }
    if (!ph->reused && !init(ph, res))
        return;
    if (ph->reused && ph->warm.pid > 0)
        warm_take(ph);
    bool ok = step(ph, apply_argv(ph, ph->view.plan_file), -1, "apply", res);
    /* the JSON plan: made after the apply, so that the two do not share
     * the CPU; where the job API can take it later, made and stored
     * after the finish (late_json), so that the run waits neither for
     * it nor for its process's start */
    if (ph->j->make_json && !interrupted(ph)) {
        if (ph->x->api.attach_json != NULL)
            ph->late_due = true;
        else
            json_side(ph, res, false);
    }
    if (!ok)
        return;
    res->outcome = JOB_FINISHED;
    tofu_apply_summary(ph->a, ph->tail.data, ph->tail.len, res);
}

/* After a finish reported (finished TR_OK): makes the JSON plan of the
 * applied plan and has it stored on the run's plan.  Nothing here
 * changes the run; a failure leaves the plan without its JSON plan, as
 * when show -json fails during the apply. */
static void late_json(struct phase *ph, tr_err finished)
{
    if (finished != TR_OK || interrupted(ph))
        return;
    if (fault_hit("executor.late_json")) {
        side_failed(ph, true, "fault injected (TERRACE_FAULT)");
        return;
    }
    struct job_result r = {.outcome = JOB_FINISHED};
    json_side(ph, &r, true);
    if (r.json_plan_file == NULL)
        return;
    struct tr_errbuf eb = {{0}};
    tr_err e = ph->x->api.attach_json(ph->x->api.ctx, ph->j->id,
                                      r.json_plan_file, &eb);
    if (e != TR_OK)
        log_warn("executor: job %s: the JSON plan made after the apply "
                 "was not stored: %s",
                 ph->j->id, tr_errbuf_msg(&eb, e));
}

/* ---- one job ----------------------------------------------------------- */

static void banner(struct phase *ph)
{
    struct utsname u;
    const char *arch = "amd64";
    if (uname(&u) == 0 && strcmp(u.machine, "x86_64") != 0)
        arch = strcmp(u.machine, "aarch64") == 0
                   ? "arm64"
                   : arena_strdup(ph->a, u.machine);
    const char *base = strrchr(ph->j->tool_path, '/');
    base = base ? base + 1 : ph->j->tool_path;
    say(ph, "%s v%s\non linux_%s\nInitializing plugins and modules...\n",
        strstr(base, "terraform") != NULL ? "Terraform" : "OpenTofu",
        ph->j->tool_version ? ph->j->tool_version : "", arch);
    ph->tool = strstr(base, "terraform") != NULL ? "terraform" : "tofu";
}

/* The registered checksum must match before the binary runs. */
static bool tool_ok(struct phase *ph, struct job_result *res)
{
    struct tr_errbuf eb = {{0}};
    char *sha = NULL;
    tr_err e = exec_tool_sha(ph->x, ph->a, ph->j->tool_path, &sha, &eb);
    if (e != TR_OK) {
        res->outcome = JOB_ERRORED;
        res->error = arena_printf(ph->a, "the tool binary is unusable: %s",
                                  tr_errbuf_msg(&eb, e));
    } else if (ph->j->tool_sha256 == NULL ||
               strcasecmp(sha, ph->j->tool_sha256) != 0) {
        res->outcome = JOB_ERRORED;
        res->error = "tool checksum mismatch";
        log_error("executor: job %s: %s has sha256 %s, not the registered "
                  "%s; refusing to run it",
                  ph->j->id, ph->j->tool_path, sha,
                  ph->j->tool_sha256 ? ph->j->tool_sha256 : "(none)");
    } else {
        return true;
    }
    say(ph, "\nError: %s\n", res->error);
    return false;
}

/* The run's limits for the monitor, and the cache size it starts from. */
static void monitor_limits(struct phase *ph)
{
    const struct executor_opts *o = &ph->x->o;
    int64_t mb = 1024 * 1024;
    ph->mon.mem_limit = o->run_memory_mb > 0 ? o->run_memory_mb * mb : 0;
    ph->mon.task_limit = o->run_tasks;
    ph->mon.disk_limit = o->run_disk_mb > 0 ? o->run_disk_mb * mb : 0;
    ph->mon.work = ph->wd.root;
    ph->mon.cache = ph->wd.cache;
    ph->mon.cache_base = monitor_disk_usage(ph->wd.cache);
}

void tofu_run_job(struct exec_ctx *x, const struct job *j, struct arena *a)
{
    struct phase ph = {
        .x = x,
        .j = j,
        .a = a,
        .what = j->phase == JOB_APPLY ? "apply" : "plan",
        .tool = "tofu",
        .warm = EXEC_WARM_NONE,
        .early = EXEC_WARM_NONE,
        .adopt_fd = -1,
    };
    buf_init(&ph.raw, 0);
    buf_init(&ph.out, 0);
    buf_init(&ph.tail, 0);
    ph.timeout_s = j->timeout_s > 0        ? j->timeout_s
                   : j->phase == JOB_APPLY ? x->o.apply_timeout_s
                                           : x->o.plan_timeout_s;
    ph.deadline = util_now_ms() + ph.timeout_s * 1000;
    secrets_init(&ph);
    struct job_result res = {.outcome = JOB_ERRORED};
    log_info("executor: job %s: %s of run %s started", j->id, ph.what,
             j->run_id ? j->run_id : "?");
    /* the claim just set the lease and read the run: the first
     * heartbeat goes out one interval later, like the others */
    ph.next_hb = util_now_ms() + x->o.heartbeat_ms;
    banner(&ph);
    struct tr_errbuf eb = {{0}};
    if (interrupted(&ph)) {
        stop_result(&ph, &res);
    } else if (!sandbox_isolated(x->sb) && !x->o.allow_unsandboxed) {
        res.error = arena_printf(a,
                                 "runs are refused on this node: it has no "
                                 "sandbox (%s); an operator may set "
                                 "allow-unsandboxed-runs = on to accept the "
                                 "risk",
                                 sandbox_reason(x->sb));
        say(&ph, "\nError: %s\n", res.error);
    } else if (tool_ok(&ph, &res)) {
        tr_err e = TR_ERR_NOT_FOUND;
        if (j->phase == JOB_APPLY &&
            keep_take(x, a, j->run_id, &ph.wd, &ph.warm)) {
            e = workdir_reuse(x, j, a, &ph.wd, &eb);
            if (e != TR_OK) {
                log_warn("executor: job %s: cannot reuse the plan's "
                         "directory: %s",
                         j->id, tr_errbuf_msg(&eb, e));
                workdir_remove(ph.wd.root);
                warm_kill(&ph.warm);
            }
            ph.reused = e == TR_OK;
        }
        if (!ph.reused)
            e = workdir_begin(x, j, a, &ph.wd, &eb);
        if (e == TR_OK) {
            paths_build(&ph);
            env_build(&ph);
        }
        if (e == TR_OK && !ph.reused) {
            early_plan_start(&ph);
            e = workdir_fill(x, j, a, &ph.wd, &eb);
            if (e == TR_OK)
                paths_build(&ph); /* with the working directory */
        }
        if (e != TR_OK) {
            res.error = arena_strdup(a, tr_errbuf_msg(&eb, e));
            say(&ph, "\nError: %s\n", res.error);
        } else {
            monitor_limits(&ph);
            if (j->phase == JOB_APPLY)
                apply_phase(&ph, &res);
            else
                plan_phase(&ph, &res);
        }
    }
    feed(&ph, NULL, 0, true);
    flush(&ph, true);
    char *plan_sha = NULL;
    if (ph.keep && res.outcome == JOB_FINISHED &&
        exec_file_sha256(a, ph.wd.plan_file, &plan_sha, &eb) != TR_OK)
        plan_sha = NULL;
    struct tr_errbuf feb = {{0}};
    tr_err fe = report(&ph, &res, &feb);
    if (fe != TR_OK)
        log_error("executor: job %s: cannot finish: %s", j->id,
                  tr_errbuf_msg(&feb, fe));
    log_info("executor: job %s: %s %s%s%s%s (peak: %lld MiB memory, %lld "
             "tasks, %lld MiB disk)",
             j->id, ph.what,
             res.outcome == JOB_FINISHED         ? "finished"
             : res.outcome == JOB_CANCELED       ? "canceled"
             : res.outcome == JOB_FORCE_CANCELED ? "force-canceled"
                                                 : "errored",
             ph.reused ? " in the plan's directory" : "", res.error ? ": " : "",
             res.error ? res.error : "", (long long)(ph.mon.peak_mem >> 20),
             (long long)ph.mon.peak_tasks, (long long)(ph.mon.peak_disk >> 20));
    if (ph.late_due)
        late_json(&ph, fe);
    if (ph.adopt_pid > 0) { /* taken over, then never run (stopped) */
        struct exec_warm *w = j->phase == JOB_PLAN ? &ph.early : &ph.warm;
        w->pid = ph.adopt_pid;
        w->fd = ph.adopt_fd;
    }
    if (fe == TR_OK && plan_sha != NULL)
        keep_put(x, j->run_id, &ph.wd, plan_sha, &ph.warm);
    else
        workdir_remove(ph.wd.root);
    warm_kill(&ph.warm);
    warm_kill(&ph.early);
    buf_free(&ph.raw);
    buf_free(&ph.out);
    buf_free(&ph.tail);
}
