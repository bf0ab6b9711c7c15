/*
 * secondary.c - the secondary role of secondary.h: join, the node
 * heartbeat, the executor over the HTTP job API, its health listener and
 * the drain on SIGTERM.
 *
 * The main thread owns the lifecycle: it joins, starts the listener and
 * the executor, then loops on sigtimedwait() so one thread both sends the
 * node heartbeat every HEARTBEAT_MS and reacts to signals.  The state the
 * health route reads (struct secondary) is atomic.
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#include "node/secondary.h"

#include "core/curl_load.h"
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/log.h"
#include "core/server.h"
#include "core/util.h"
#include "crypto/tls_cert.h"
#include "executor/executor.h"
#include "executor/job_http.h"
#include "http/http.h"
#include "node/credential.h"
#include "node/node.h"

#define HEARTBEAT_MS 5000
#define WAIT_FIRST_MS 1000 /* primaries unreachable at start: retry */
#define WAIT_MAX_MS 10000
#define LEAVE_RETRY_MS 30000
#define IDLE_BINARY "terraced-idle" /* beside terraced: node/idle.h */
#define IDLE_EXIT_MS 20000          /* a worker with no job this long exits */
#define HANDOFF_MAX (8 << 20)

struct secondary {
    struct job_http *jh;
    struct executor *exec;
    bool agent;  /* the agent role: joins with an agent token */
    bool worker; /* started by terraced-idle with a job it claimed */
    atomic_bool joined;
    atomic_bool reached; /* the last node heartbeat was answered */
    atomic_bool draining;
    char node_id[64]; /* set before the listener starts */
};

/* ---- the listener: health only ----------------------------------------- */

#define REPLY_LIT(r, status, lit)                                              \
    http_reply((r), (status), "application/json", (lit), sizeof(lit) - 1)

static void health(struct http_req *r)
{
    struct secondary *s = r->srv->secondary;
    const char *ready = http_query(r, "ready");
    if (ready == NULL || strcmp(ready, "1") != 0) {
        REPLY_LIT(r, 200, "{\"status\":\"ok\"}");
        return;
    }
    const char *why = !atomic_load(&s->joined)    ? "not joined to the cluster"
                      : atomic_load(&s->draining) ? "draining"
                      : !atomic_load(&s->reached)
                          ? "no primary answered the last heartbeat"
                          : NULL;
    json_t *doc =
        why != NULL
            ? json_pack("{s:b, s:s}", "ready", 0, "reason", why)
            : json_pack("{s:b, s:s, s:s, s:i}", "ready", 1, "role",
                        s->agent ? "agent" : "secondary", "node", s->node_id,
                        "running_jobs", job_http_running(s->jh));
    char *text = doc != NULL ? json_dumps(doc, JSON_COMPACT) : NULL;
    json_decref(doc);
    const char *body = arena_strdup(r->arena, text ? text : "{}");
    free(text);
    http_reply(r, why != NULL ? 503 : 200, "application/json", body,
               strlen(body));
}

static const struct route secondary_routes[] = {
    {"GET", "/_health_check", health, 0},
    {0},
};

static const struct route *const secondary_tables[] = {secondary_routes, NULL};

/* ---- talking to the primaries ------------------------------------------ */

static void host_of(const char *listen, char *out, size_t n)
{
    const char *colon = strrchr(listen, ':');
    size_t len = colon ? (size_t)(colon - listen) : strlen(listen);
    if (len >= 2 && listen[0] == '[')
        snprintf(out, n, "%.*s", (int)(len - 2), listen + 1);
    else
        snprintf(out, n, "%.*s", (int)len, listen);
}

static tr_err join(struct secondary *s, const struct cfg *c, const char *path,
                   struct tr_errbuf *eb)
{
    char name[128], addr[128], host[256];
    cfg_node_name(c, name, sizeof(name));
    if (gethostname(host, sizeof(host)) != 0)
        snprintf(host, sizeof(host), "secondary");
    host[sizeof(host) - 1] = '\0';
    host_of(c->listen, addr, sizeof(addr));
    if (strcmp(addr, "0.0.0.0") == 0 || strcmp(addr, "::") == 0 ||
        addr[0] == '\0')
        snprintf(addr, sizeof(addr), "%.127s", host);
    /* an agent names itself by its host (or --node-name): it has no
     * address the primaries reach, they record the one it calls from */
    if (s->agent && c->node_name[0] == '\0')
        snprintf(name, sizeof(name), "%.127s", host);
    json_t *body =
        s->agent
            ? json_pack("{s:s, s:s, s:s, s:i}", "agent_token", c->agent_token,
                        "name", name, "version", TERRACE_VERSION, "capacity",
                        c->capacity)
            : json_pack("{s:s, s:s, s:s, s:s, s:i}", "join_token",
                        c->join_token, "name", name, "address", addr, "version",
                        TERRACE_VERSION, "capacity", c->capacity);
    char *text = body != NULL ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    if (text == NULL)
        return tr_fail(eb, TR_ERR_NOMEM, "out of memory");
    json_t *reply = NULL;
    tr_err e = job_http_call(s->jh, "POST", s->agent ? "/agents/join" : "/join",
                             text, 0, NULL, &reply, eb);
    memset(text, 0, strlen(text)); /* it held the join or agent token */
    free(text);
    if (e == TR_ERR_UNAUTHORIZED || e == TR_ERR_FORBIDDEN) {
        char why[TR_ERRBUF_SIZE];
        snprintf(why, sizeof(why), "%s", tr_errbuf_msg(eb, e));
        e = tr_fail(eb, e, "cannot %s at %s: %s",
                    s->agent ? "register as an agent" : "join the cluster",
                    c->join_url, why);
    }
    const char *cred = json_string_value(json_object_get(reply, "credential"));
    const char *id = json_string_value(json_object_get(reply, "node_id"));
    if (e == TR_OK && (cred == NULL || *cred == '\0'))
        e = tr_fail(eb, TR_ERR_INTERNAL,
                    "the primaries' join reply holds no credential");
    if (e == TR_OK)
        e = node_credential_write(path, cred, eb);
    if (e == TR_OK) {
        job_http_set_credential(s->jh, cred);
        snprintf(s->node_id, sizeof(s->node_id), "%s", id ? id : "");
        if (s->agent)
            log_info("registered at %s as agent %s of pool %s", c->join_url,
                     s->node_id,
                     json_string_value(json_object_get(reply, "pool_id")));
        else
            log_info("joined the cluster at %s as node %s", c->join_url,
                     s->node_id);
    }
    json_decref(reply);
    return e;
}

/* POST /nodes/heartbeat; records whether a primary answered. */
static tr_err heartbeat(struct secondary *s, struct tr_errbuf *eb)
{
    char body[96];
    snprintf(body, sizeof(body), "{\"running_jobs\":%d,\"state\":\"%s\"}",
             job_http_running(s->jh),
             atomic_load(&s->draining) ? "draining" : "active");
    json_t *reply = NULL;
    tr_err e = job_http_call(s->jh, "POST", "/nodes/heartbeat", body, 0, NULL,
                             &reply, eb);
    const char *id = json_string_value(json_object_get(reply, "node_id"));
    if (e == TR_OK && id != NULL && s->node_id[0] == '\0')
        snprintf(s->node_id, sizeof(s->node_id), "%s", id);
    json_decref(reply);
    atomic_store(&s->reached, e == TR_OK);
    return e;
}

/* The signal that came within ms, or 0. */
static int wait_signal(const sigset_t *set, int ms)
{
    struct timespec ts = {.tv_sec = ms / 1000,
                          .tv_nsec = (long)(ms % 1000) * 1000000L};
    int sig = sigtimedwait(set, NULL, &ts);
    return sig > 0 ? sig : 0;
}

/* Joins, or checks the stored credential, waiting for the primaries as
 * long as they cannot be reached.  *stopped when a signal came first. */
static tr_err contact(struct secondary *s, const struct cfg *c,
                      const sigset_t *set, bool *stopped, struct tr_errbuf *eb)
{
    char path[PATH_MAX], cred[256];
    snprintf(path, sizeof(path), "%s/%s", c->data_dir, NODE_CREDENTIAL_FILE);
    bool have = false;
    tr_err e = node_credential_read(path, cred, sizeof(cred), &have, eb);
    if (e != TR_OK)
        return e;
    if (have)
        job_http_set_credential(s->jh, cred);
    memset(cred, 0, sizeof(cred));
    *stopped = false;
    bool said = false;
    for (int wait = WAIT_FIRST_MS;;) {
        e = have ? heartbeat(s, eb) : join(s, c, path, eb);
        if (e != TR_ERR_BUSY)
            break;
        if (!said)
            log_warn("%s; waiting for them", tr_errbuf_msg(eb, e));
        said = true;
        int sig = wait_signal(set, wait);
        if (sig == SIGTERM || sig == SIGINT) {
            *stopped = true;
            return TR_OK;
        }
        wait = wait * 2 > WAIT_MAX_MS ? WAIT_MAX_MS : wait * 2;
    }
    if (have && e == TR_ERR_UNAUTHORIZED) {
        char why[TR_ERRBUF_SIZE];
        snprintf(why, sizeof(why), "%s", tr_errbuf_msg(eb, e));
        return tr_fail(eb, e,
                       "the primaries refuse this node's credential (%s): "
                       "%s; remove that file to join again as a new node",
                       path, why);
    }
    if (e == TR_OK && have)
        log_info("rejoined the cluster at %s as node %s", c->join_url,
                 s->node_id);
    if (e == TR_OK)
        atomic_store(&s->joined, true);
    return e;
}

/* ---- the executor and the listener ------------------------------------- */

static tr_err start_executor(const struct cfg *c, struct secondary *s,
                             struct executor **x, struct tr_errbuf *eb)
{
    char node[128];
    const char *hide[5];
    struct executor_opts o;
    node_executor_opts(c, c->capacity, node, hide, &o);
    o.claim_wait_ms = 25000;
    return executor_start(&o, job_http_api(s->jh), x, eb);
}

/* The listener's certificate: made under DATA/tls when TLS is on and
 * none is given. */
static tr_err listener_certs(struct cfg *c, struct tr_errbuf *eb)
{
    if (strcmp(c->tls, "on") == 0 && c->tls_cert[0] == '\0') {
        char dir[PATH_MAX], host[256], lhost[128];
        snprintf(dir, sizeof(dir), "%s/tls", c->data_dir);
        if (gethostname(host, sizeof(host)) != 0)
            snprintf(host, sizeof(host), "localhost");
        host[sizeof(host) - 1] = '\0';
        host_of(c->listen, lhost, sizeof(lhost));
        const char *names[] = {lhost, host};
        tr_err e = tls_ensure_certs(dir, names, 2, eb);
        if (e != TR_OK)
            return e;
        if (snprintf(c->tls_cert, sizeof(c->tls_cert), "%.480s/tls/server.pem",
                     c->data_dir) >= (int)sizeof(c->tls_cert) ||
            snprintf(c->tls_key, sizeof(c->tls_key),
                     "%.480s/tls/server-key.pem",
                     c->data_dir) >= (int)sizeof(c->tls_key))
            return tr_fail(eb, TR_ERR_CONFIG, "data dir path too long");
    }
    return TR_OK;
}

static tr_err start_listener(struct terrace_server *srv, struct tr_errbuf *eb)
{
    struct cfg *c = &srv->cfg;
    bool tls = strcmp(c->tls, "on") == 0;
    snprintf(srv->external_url, sizeof(srv->external_url), "%s://%s",
             tls ? "https" : "http", c->listen);
    tr_err e = listener_certs(c, eb);
    if (e != TR_OK)
        return e;
    http_set_routes(secondary_tables);
    return http_start(srv, eb);
}

/* ---- the lifecycle ----------------------------------------------------- */

/* Starts the drain (once). */
static void drain(struct secondary *s)
{
    atomic_store(&s->draining, true);
    job_http_drain(s->jh);
}

/* Heartbeats and signals until the drain is over.  TR_ERR_UNAUTHORIZED
 * when the primaries stopped accepting the node's credential (revoked):
 * the node then drains and stops without leaving. */
static tr_err serve(struct secondary *s, const sigset_t *set,
                    struct tr_errbuf *eb)
{
    int64_t next_hb = 0, idle_since = 0;
    bool was_ok = true, said_claims = false, idle_exit = false;
    tr_err out = TR_OK;
    for (;;) {
        if (util_now_ms() >= next_hb && out == TR_OK) {
            struct tr_errbuf heb = {{0}};
            tr_err e = heartbeat(s, &heb);
            if (e == TR_ERR_UNAUTHORIZED) {
                out = tr_fail(eb, e,
                              "the primaries refuse this node's credential "
                              "(%s); stopping once the jobs in hand end: "
                              "remove %s from the data dir to join again "
                              "as a new node",
                              tr_errbuf_msg(&heb, e), NODE_CREDENTIAL_FILE);
                log_error("%s", eb->msg);
                drain(s);
            } else if (e != TR_OK && was_ok) {
                log_warn("node heartbeat failed: %s", tr_errbuf_msg(&heb, e));
            } else if (e == TR_OK && !was_ok) {
                log_info("node heartbeat answered again");
            }
            was_ok = e == TR_OK;
            next_hb = util_now_ms() + HEARTBEAT_MS;
        }
        if ((atomic_load(&s->draining) || idle_exit) &&
            job_http_busy(s->jh) == 0)
            return out;
        if (s->worker && !idle_exit && !atomic_load(&s->draining)) {
            /* a worker with nothing to do hands the node back to its idle
             * process: it claims no more, and ends once the claims in
             * flight have returned (and what they brought has run) */
            bool idle =
                job_http_running(s->jh) == 0 && executor_kept(s->exec) == 0;
            if (!idle)
                idle_since = 0;
            else if (idle_since == 0)
                idle_since = util_now_ms();
            else if (util_now_ms() - idle_since >= IDLE_EXIT_MS) {
                log_info("no job for %d s: handing the node back to its idle "
                         "process",
                         IDLE_EXIT_MS / 1000);
                idle_exit = true;
                job_http_drain(s->jh);
            }
        }
        if (atomic_load(&s->draining) && !said_claims &&
            job_http_running(s->jh) == 0) {
            /* a claim answered now would bring a job: it is run */
            log_info("jobs done; waiting for the claims in flight to return");
            said_claims = true;
        }
        int sig = wait_signal(set, 500);
        if (sig != SIGTERM && sig != SIGINT)
            continue;
        if (atomic_load(&s->draining)) {
            log_info("signal %d received while draining; %d job(s) in hand "
                     "still run to their end",
                     sig, job_http_running(s->jh));
            continue;
        }
        log_info("signal %d received; draining: no new jobs, %d job(s) in "
                 "hand run to their end",
                 sig, job_http_running(s->jh));
        drain(s);
        next_hb = 0; /* say "draining" now */
    }
}

static void leave(struct secondary *s)
{
    struct tr_errbuf eb = {{0}};
    tr_err e = job_http_call(s->jh, "POST", "/nodes/leave", NULL,
                             LEAVE_RETRY_MS, NULL, NULL, &eb);
    if (e == TR_OK)
        log_info("left the cluster");
    else
        log_warn("cannot leave the cluster (%s); the primaries will mark "
                 "this node gone when its heartbeats stop",
                 tr_errbuf_msg(&eb, e));
}

static tr_err absolute(char *path, size_t n, struct tr_errbuf *eb)
{
    char real[PATH_MAX];
    if (realpath(path, real) == NULL)
        return tr_fail(eb, TR_ERR_CONFIG, "cannot use %s: %s", path,
                       strerror(errno));
    if (strlen(real) >= n)
        return tr_fail(eb, TR_ERR_CONFIG, "%s: path too long", path);
    memcpy(path, real, strlen(real) + 1);
    return TR_OK;
}

/* ---- the idle process ------------------------------------------------- */

static char *const *self_argv; /* secondary_set_argv() */

void secondary_set_argv(char *const *argv)
{
    self_argv = argv;
}

struct prefetch {
    struct job_http *jh;
    atomic_bool done, stop;
};

static void *prefetch_loop(void *arg)
{
    struct prefetch *p = arg;
    while (!atomic_load(&p->stop) && !job_http_tool_ready(p->jh)) {
        struct timespec ts = {1, 0};
        nanosleep(&ts, NULL);
    }
    atomic_store(&p->done, true);
    return NULL;
}

/* Waits until the primaries' tool is here (job_http_tool_ready(), in a
 * thread of its own), so that terraced-idle claims only what the node
 * can run at once; meanwhile the node heartbeats.  *stopped when a
 * signal came first. */
static void wait_tool(struct secondary *s, const sigset_t *set, bool *stopped)
{
    struct prefetch p = {.jh = s->jh};
    pthread_t t;
    if (pthread_create(&t, NULL, prefetch_loop, &p) != 0) {
        prefetch_loop(&p);
        return;
    }
    int64_t next_hb = 0;
    while (!atomic_load(&p.done)) {
        if (util_now_ms() >= next_hb) {
            struct tr_errbuf eb = {{0}};
            heartbeat(s, &eb);
            next_hb = util_now_ms() + HEARTBEAT_MS;
        }
        int sig = wait_signal(set, 200);
        if (sig == SIGTERM || sig == SIGINT) {
            *stopped = true;
            atomic_store(&p.stop, true);
            job_http_drain(s->jh); /* cuts the download's waits short */
            break;
        }
    }
    pthread_join(t, NULL);
}

/* This program's path and terraced-idle's beside it; false (said once)
 * when there is none. */
static bool idle_binary(char self[PATH_MAX], char idle[PATH_MAX + 16])
{
    ssize_t n = readlink("/proc/self/exe", self, PATH_MAX - 1);
    if (n <= 0 || self_argv == NULL || self_argv[0] == NULL)
        return false;
    self[n] = '\0';
    char *slash = strrchr(self, '/');
    snprintf(idle, PATH_MAX + 16, "%.*s/%s", (int)(slash ? slash - self : 1),
             slash ? self : ".", IDLE_BINARY);
    if (access(idle, X_OK) == 0)
        return true;
    log_info("%s not found beside terraced: the node waits for jobs in "
             "this process",
             IDLE_BINARY);
    return false;
}

/* Execs terraced-idle with the node's settings and the listening socket
 * lfd (when >= 0), which stays open across the exec; returns only when
 * the exec failed. */
static void hand_over(const struct secondary *s, const struct cfg *c,
                      const char *self, const char *idle, int lfd)
{
    const char *args[64];
    char fdnum[16];
    int k = 0;
    args[k++] = idle;
    args[k++] = "--role";
    args[k++] = s->agent ? "agent" : "secondary";
    args[k++] = "--join-url";
    args[k++] = c->join_url;
    args[k++] = "--data-dir";
    args[k++] = c->data_dir;
    args[k++] = "--node-id";
    args[k++] = s->node_id;
    args[k++] = "--log-level";
    args[k++] = c->log_level[0] ? c->log_level : "info";
    if (c->ca_file[0] != '\0') {
        args[k++] = "--ca-file";
        args[k++] = c->ca_file;
    }
    if (c->listen[0] != '\0') {
        args[k++] = "--listen";
        args[k++] = c->listen;
        if (lfd >= 0 && fcntl(lfd, F_SETFD, 0) == 0) { /* kept by exec */
            snprintf(fdnum, sizeof(fdnum), "%d", lfd);
            args[k++] = "--listen-fd";
            args[k++] = fdnum;
        }
    }
    if (strcmp(c->tls, "on") == 0) {
        args[k++] = "--tls-cert";
        args[k++] = c->tls_cert;
        args[k++] = "--tls-key";
        args[k++] = c->tls_key;
    }
    args[k++] = "--";
    args[k++] = self;
    for (int i = 1; self_argv[i] != NULL && k < 63; i++)
        args[k++] = self_argv[i];
    args[k] = NULL;
    log_info("joined; waiting for jobs in %s", IDLE_BINARY);
    execv(idle, (char *const *)args);
    log_warn("cannot start %s (%s): the node waits for jobs in this process",
             idle, strerror(errno));
}

/* A worker's job: the claim reply terraced-idle wrote to the descriptor
 * named by TERRACE_IDLE_HANDOFF, handed to the job API. */
static tr_err take_handoff(struct secondary *s, const char *fdname,
                           struct tr_errbuf *eb)
{
    char *end = NULL;
    long fd = strtol(fdname, &end, 10);
    if (end == fdname || *end != '\0' || fd < 3 || fd > 1024)
        return tr_fail(eb, TR_ERR_CONFIG, "TERRACE_IDLE_HANDOFF: bad fd");
    struct buf b;
    buf_init(&b, HANDOFF_MAX);
    char chunk[16384];
    ssize_t got;
    bool ok = true;
    while (ok && (got = read((int)fd, chunk, sizeof(chunk))) != 0) {
        if (got < 0 && errno == EINTR)
            continue;
        ok = got > 0 && buf_append(&b, chunk, (size_t)got) == TR_OK;
    }
    close((int)fd);
    tr_err e = ok && b.len > 0
                   ? job_http_inject(s->jh, b.data, b.len, eb)
                   : tr_fail(eb, TR_ERR_IO, "no job came from %s", IDLE_BINARY);
    buf_free(&b);
    return e;
}

/* A worker's start: the credential terraced-idle's node already holds. */
static tr_err worker_contact(struct secondary *s, const struct cfg *c,
                             struct tr_errbuf *eb)
{
    char path[PATH_MAX], cred[256];
    snprintf(path, sizeof(path), "%s/%s", c->data_dir, NODE_CREDENTIAL_FILE);
    bool have = false;
    tr_err e = node_credential_read(path, cred, sizeof(cred), &have, eb);
    if (e == TR_OK && !have)
        e = tr_fail(eb, TR_ERR_CONFIG, "%s is missing", path);
    if (e == TR_OK) {
        job_http_set_credential(s->jh, cred);
        atomic_store(&s->joined, true);
        atomic_store(&s->reached, true);
    }
    memset(cred, 0, sizeof(cred));
    return e;
}

tr_err secondary_run(const struct cfg *cfg, struct tr_errbuf *eb)
{
    static struct terrace_server srv; /* the one server struct */
    memset(&srv, 0, sizeof(srv));
    srv.cfg = *cfg;
    struct cfg *c = &srv.cfg;
    sigset_t set;
    util_daemon_signals(&set);
    umask(077);
    curl_global_init(CURL_GLOBAL_DEFAULT);

    const char *handoff = getenv("TERRACE_IDLE_HANDOFF");
    struct secondary s = {.agent = strcmp(c->role, "agent") == 0,
                          .worker = handoff != NULL};
    bool drain_now = getenv("TERRACE_IDLE_DRAIN") != NULL;
    unsetenv("TERRACE_IDLE_DRAIN");
    struct executor *exec = NULL;
    bool stopped = false, listening = false;
    tr_err e = TR_OK;
    if (mkdir(c->data_dir, 0700) != 0 && errno != EEXIST)
        e = tr_fail(eb, TR_ERR_IO, "cannot create %s: %s", c->data_dir,
                    strerror(errno));
    if (e == TR_OK)
        e = absolute(c->data_dir, sizeof(c->data_dir), eb);
    if (e == TR_OK && c->ca_file[0] != '\0')
        e = absolute(c->ca_file, sizeof(c->ca_file), eb);
    struct job_http_opts jo;
    job_http_defaults(&jo);
    jo.base_url = c->join_url;
    jo.ca_file = c->ca_file;
    jo.data_dir = c->data_dir;
    if (e == TR_OK)
        e = job_http_new(&jo, &s.jh, eb);
    srv.secondary = &s;
    if (e == TR_OK && s.worker) {
        e = worker_contact(&s, c, eb);
        if (e == TR_OK)
            e = take_handoff(&s, handoff, eb);
        unsetenv("TERRACE_IDLE_HANDOFF");
    } else if (e == TR_OK) {
        e = contact(&s, c, &set, &stopped, eb);
    }
    if (e == TR_OK && !stopped && !s.worker) {
        e = start_listener(&srv, eb);
        listening = e == TR_OK;
    }
    char self[PATH_MAX], idle[PATH_MAX + 16];
    if (e == TR_OK && !stopped && !s.worker && idle_binary(self, idle)) {
        /* the tool first (health answers meanwhile), then the listener
         * passes to terraced-idle with the rest of the node */
        wait_tool(&s, &set, &stopped);
        if (stopped) /* joined, no job taken yet: leave at once */
            leave(&s);
        else {
            int lfd = http_stop_keep_listener(&srv);
            hand_over(&s, c, self, idle, lfd); /* returns only if it cannot */
            if (lfd >= 0)
                close(lfd); /* listened to again below */
            e = start_listener(&srv, eb);
            listening = e == TR_OK;
        }
    }
    if (e == TR_OK && !stopped)
        e = start_executor(c, &s, &exec, eb);
    s.exec = exec;
    if (e == TR_OK && !stopped && drain_now)
        drain(&s);
    if (e == TR_OK && !stopped) {
        if (s.worker)
            log_info("terrace %s (%s worker) running a job, %d at once",
                     TERRACE_VERSION, c->role, c->capacity);
        else
            log_info("terrace %s (%s) listening on %s, %d job(s) at "
                     "once, primaries at %s",
                     TERRACE_VERSION, c->role, c->listen, c->capacity,
                     c->join_url);
        e = serve(&s, &set, eb);
        executor_stop(exec);         /* idle by now: the drain is over */
        if (e == TR_OK && !s.worker) /* terraced-idle leaves */
            leave(&s);
    }
    if (listening)
        http_stop(&srv);
    job_http_free(s.jh);
    curl_global_cleanup();
    memset(c->join_token, 0, sizeof(c->join_token));
    memset(c->agent_token, 0, sizeof(c->agent_token));
    if (e == TR_OK && s.worker)
        log_info("worker done: the node waits in %s again", IDLE_BINARY);
    else if (e == TR_OK)
        log_info("stopped cleanly");
    return e;
}
