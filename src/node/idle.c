/*
 * idle.c - the lifecycle of terraced-idle (idle.h): the claim thread that
 * long-polls and runs a worker per claimed job, the main thread's node
 * heartbeat and signals, the health answers.
 *
 * Threads: main (heartbeat, signals, the end), claim (long-poll, starts
 * the worker and waits for it: PR_SET_PDEATHSIG follows the thread that
 * forked, and this one outlives every worker it starts), the listener's.
 * Each thread that calls the primaries has its own TLS context.
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#include "node/idle.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "core/log.h"
#include "core/util.h"
#include "node/credential.h"
#include "node/idle_https.h"

#define HEARTBEAT_MS 5000
#define CLAIM_WAIT_MS 25000
#define CALL_TIMEOUT_S 30
#define PAUSE_MS 1000
#define LEAVE_TRY_MS 30000
#define API "/api/internal/v1"

struct idle {
    const struct idle_opts *o;
    char cred[256];
    atomic_bool draining;
    atomic_bool refused; /* the primaries refuse the credential */
    atomic_bool reached; /* the last heartbeat was answered */
    atomic_int worker;   /* its pid while one runs, else 0 */
    atomic_bool claim_done;
};

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

static tr_err read_credential(struct idle *s, struct tr_errbuf *eb)
{
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/%s", s->o->data_dir, NODE_CREDENTIAL_FILE);
    bool found = false;
    tr_err e = node_credential_read(path, s->cred, sizeof(s->cred), &found, eb);
    if (e == TR_OK && !found)
        e = tr_fail(eb, TR_ERR_CONFIG, "%s is missing", path);
    return e;
}

/* One call to the primaries' internal API. */
static tr_err call(struct idle *s, struct idle_tls *t, const char *method,
                   const char *path, const char *body, int timeout_s,
                   struct idle_reply *r, struct tr_errbuf *eb)
{
    char full[256];
    snprintf(full, sizeof(full), "%s%s", API, path);
    return idle_https_call(t, s->o->join_url, method, full, s->cred, body,
                           timeout_s, r, eb);
}

/* What a refusal says: its JSON:API error's detail, or its status. */
static void reply_why(const struct idle_reply *r, char *out, size_t n)
{
    json_t *doc = r->body ? json_loads(r->body, 0, NULL) : NULL;
    json_t *err = json_array_get(json_object_get(doc, "errors"), 0);
    const char *d = json_string_value(json_object_get(err, "detail"));
    if (d == NULL)
        d = json_string_value(json_object_get(err, "title"));
    if (d != NULL)
        snprintf(out, n, "%s", d);
    else
        snprintf(out, n, "HTTP %d", r->status);
    json_decref(doc);
}

/* ---- the worker -------------------------------------------------------- */

/* Starts terraced with the claim reply on a pipe and waits for it.
 * Returns its exit status (-1 if it could not start). */
static int run_worker(struct idle *s, const char *reply, size_t len)
{
    int p[2];
    if (pipe2(p, O_CLOEXEC) != 0) {
        log_error("cannot start a worker: %s", strerror(errno));
        return -1;
    }
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(127);
        /* the pipe as descriptor 3, kept across the exec: dup2 clears
         * close-on-exec, but does nothing when the pipe is 3 already */
        if (p[0] == 3 ? fcntl(3, F_SETFD, 0) != 0 : dup2(p[0], 3) != 3)
            _exit(127);
        setenv("TERRACE_IDLE_HANDOFF", "3", 1);
        if (atomic_load(&s->draining))
            setenv("TERRACE_IDLE_DRAIN", "1", 1);
        execv(s->o->worker[0], s->o->worker);
        _exit(127);
    }
    close(p[0]);
    if (pid < 0) {
        close(p[1]);
        log_error("cannot start a worker: %s", strerror(errno));
        return -1;
    }
    atomic_store(&s->worker, (int)pid);
    if (atomic_load(&s->draining)) /* came while the signal was handled */
        kill(pid, SIGTERM);
    size_t off = 0;
    while (off < len) {
        ssize_t w = write(p[1], reply + off, len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            break; /* the worker is gone: its status says why */
        off += (size_t)w;
    }
    close(p[1]);
    int st = 0;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    atomic_store(&s->worker, 0);
    if (WIFEXITED(st))
        return WEXITSTATUS(st);
    log_warn("the worker ended by signal %d", WTERMSIG(st));
    return 128 + WTERMSIG(st);
}

/* Logs which job came (never the rest of the reply: it holds the run's
 * token). */
static void say_claimed(const struct idle_reply *r)
{
    json_t *doc = json_loadb(r->body ? r->body : "", r->len, 0, NULL);
    json_t *job = json_object_get(doc, "job");
    const char *run = json_string_value(json_object_get(job, "run_id"));
    const char *phase = json_string_value(json_object_get(job, "phase"));
    const char *id = json_string_value(json_object_get(job, "id"));
    log_info("run %s: %s job %s claimed by this node; starting a worker",
             run ? run : "?", phase ? phase : "?", id ? id : "?");
    json_decref(doc);
}

/* ---- the claim thread -------------------------------------------------- */

static void *claim_loop(void *arg)
{
    struct idle *s = arg;
    struct tr_errbuf eb = {{0}};
    struct idle_tls *t = NULL;
    if (strncmp(s->o->join_url, "https://", 8) == 0 &&
        idle_tls_client(s->o->ca_file, &t, &eb) != TR_OK) {
        log_error("cannot claim jobs: %s", eb.msg);
        atomic_store(&s->claim_done, true);
        return NULL;
    }
    bool said = false;
    int failed = 0; /* workers in a row that did not end well */
    char path[64];
    snprintf(path, sizeof(path), "/claim?wait=%d", CLAIM_WAIT_MS);
    while (!atomic_load(&s->draining)) {
        struct idle_reply r;
        tr_err e = call(s, t, "POST", path, "{}",
                        CALL_TIMEOUT_S + CLAIM_WAIT_MS / 1000, &r, &eb);
        if (e == TR_OK && r.status == 200) {
            said = false;
            say_claimed(&r);
            int code = run_worker(s, r.body ? r.body : "", r.len);
            failed = code == 0 ? 0 : failed + 1;
            if (code != 0) {
                /* a node whose worker cannot start must not keep taking
                 * jobs from the queue (each waits for its claim to
                 * lapse): slower claims, up to one per 30 s */
                log_warn("the worker exited with status %d", code);
                sleep_ms(PAUSE_MS * (failed < 30 ? failed : 30));
            }
        } else if (e != TR_OK || r.status != 204) {
            char why[256];
            reply_why(&r, why, sizeof(why));
            if (!said)
                log_warn("cannot claim jobs: %s", e != TR_OK ? eb.msg : why);
            said = true;
            sleep_ms(PAUSE_MS);
        }
        idle_reply_free(&r);
    }
    idle_tls_free(t);
    atomic_store(&s->claim_done, true);
    return NULL;
}

/* ---- heartbeat, health ------------------------------------------------- */

static void heartbeat(struct idle *s, struct idle_tls *t, bool *was_ok)
{
    char body[96];
    snprintf(body, sizeof(body), "{\"running_jobs\":0,\"state\":\"%s\"}",
             atomic_load(&s->draining) ? "draining" : "active");
    struct idle_reply r;
    struct tr_errbuf eb = {{0}};
    tr_err e =
        call(s, t, "POST", "/nodes/heartbeat", body, CALL_TIMEOUT_S, &r, &eb);
    bool ok = e == TR_OK && r.status == 200;
    char why[256];
    reply_why(&r, why, sizeof(why));
    if (e == TR_OK && r.status == 401) {
        log_error("the primaries refuse this node's credential (%s); "
                  "stopping once the jobs in hand end: remove %s from the "
                  "data dir to join again as a new node",
                  why, NODE_CREDENTIAL_FILE);
        atomic_store(&s->refused, true);
    } else if (!ok && *was_ok) {
        log_warn("node heartbeat failed: %s", e != TR_OK ? eb.msg : why);
    } else if (ok && !*was_ok) {
        log_info("node heartbeat answered again");
    }
    *was_ok = ok;
    atomic_store(&s->reached, ok);
    idle_reply_free(&r);
}

static void health(void *arg, const char *path, const char *query, int *status,
                   char **body, bool *owned)
{
    struct idle *s = arg;
    *owned = false;
    if (strcmp(path, "/_health_check") != 0) {
        *status = 404;
        *body = "{\"error\":\"not found\"}";
        return;
    }
    *status = 200;
    if (strstr(query, "ready=1") == NULL) {
        *body = "{\"status\":\"ok\"}";
        return;
    }
    const char *why = atomic_load(&s->draining) ? "draining"
                      : !atomic_load(&s->reached) && !atomic_load(&s->worker)
                          ? "no primary answered the last heartbeat"
                          : NULL;
    json_t *doc = why != NULL
                      ? json_pack("{s:b, s:s}", "ready", 0, "reason", why)
                      : json_pack("{s:b, s:s, s:s, s:b}", "ready", 1, "role",
                                  s->o->agent ? "agent" : "secondary", "node",
                                  s->o->node_id ? s->o->node_id : "", "working",
                                  atomic_load(&s->worker) != 0);
    *body = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
    *owned = *body != NULL;
    json_decref(doc);
    if (why != NULL)
        *status = 503;
}

/* ---- the lifecycle ----------------------------------------------------- */

static void start_drain(struct idle *s, const char *why)
{
    if (atomic_exchange(&s->draining, true))
        return;
    pid_t w = atomic_load(&s->worker);
    log_info("%s; draining: no new jobs%s", why,
             w ? ", the worker's jobs run to their end" : "");
    if (w != 0)
        kill(w, SIGTERM);
}

static void leave(struct idle *s, struct idle_tls *t)
{
    int64_t until = util_now_ms() + LEAVE_TRY_MS;
    struct tr_errbuf eb = {{0}};
    for (;;) {
        struct idle_reply r;
        tr_err e =
            call(s, t, "POST", "/nodes/leave", NULL, CALL_TIMEOUT_S, &r, &eb);
        int st = r.status;
        idle_reply_free(&r);
        if (e == TR_OK && st < 300) {
            log_info("left the cluster");
            return;
        }
        if ((e == TR_OK && st < 500) || util_now_ms() > until) {
            log_warn("cannot leave the cluster (%s); the primaries will mark "
                     "this node gone when its heartbeats stop",
                     e != TR_OK ? eb.msg : "refused");
            return;
        }
        sleep_ms(PAUSE_MS);
    }
}

int idle_run(const struct idle_opts *o)
{
    struct idle s = {.o = o};
    atomic_store(&s.reached, true); /* terraced heartbeated before the exec */
    sigset_t set;
    util_daemon_signals(&set);
    struct tr_errbuf eb = {{0}};
    struct idle_tls *t = NULL, *lt = NULL;
    struct idle_listener *l = NULL;
    tr_err e = read_credential(&s, &eb);
    if (e == TR_OK && strncmp(o->join_url, "https://", 8) == 0)
        e = idle_tls_client(o->ca_file, &t, &eb);
    if (e == TR_OK && o->listen && o->tls_cert && o->tls_key)
        e = idle_tls_server(o->tls_cert, o->tls_key, &lt, &eb);
    if (e == TR_OK && o->listen)
        e = idle_listen(o->listen, o->listen_fd, lt, health, &s, &l, &eb);
    pthread_t claim;
    if (e == TR_OK && pthread_create(&claim, NULL, claim_loop, &s) != 0)
        e = tr_fail(&eb, TR_ERR_IO, "cannot start the claim thread");
    if (e != TR_OK) {
        log_error("%s", eb.msg);
        idle_listener_stop(l);
        idle_tls_free(lt);
        idle_tls_free(t);
        return 1;
    }
    log_info("waiting for jobs (node %s)", o->node_id ? o->node_id : "?");
    int64_t next_hb = util_now_ms() + HEARTBEAT_MS;
    bool was_ok = true;
    while (!atomic_load(&s.claim_done)) {
        /* a running worker sends the node's heartbeats itself */
        if (util_now_ms() >= next_hb && atomic_load(&s.worker) == 0 &&
            !atomic_load(&s.refused)) {
            heartbeat(&s, t, &was_ok);
            if (atomic_load(&s.refused))
                start_drain(&s, "credential refused");
            next_hb = util_now_ms() + HEARTBEAT_MS;
        } else if (atomic_load(&s.worker) != 0) {
            next_hb = util_now_ms() + HEARTBEAT_MS;
        }
        struct timespec ts = {0, 500 * 1000000L};
        int sig = sigtimedwait(&set, NULL, &ts);
        if (sig == SIGTERM || sig == SIGINT) {
            char why[48];
            snprintf(why, sizeof(why), "signal %d received", sig);
            if (atomic_load(&s.draining))
                log_info("%s while draining; the jobs in hand still run to "
                         "their end",
                         why);
            start_drain(&s, why);
            next_hb = 0; /* say "draining" now */
        }
    }
    pthread_join(claim, NULL);
    if (!atomic_load(&s.refused))
        leave(&s, t);
    idle_listener_stop(l);
    idle_tls_free(lt);
    idle_tls_free(t);
    memset(s.cred, 0, sizeof(s.cred));
    if (atomic_load(&s.refused))
        return 1;
    log_info("stopped cleanly");
    return 0;
}
