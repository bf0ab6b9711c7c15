/*
 * server.c - libmicrohttpd glue: request lifecycle, body intake, response
 * and the access log.
 *
 * Lifecycle of one request (all on one MHD worker thread):
 *   first callback   - arena made, route matched, size limit and auth
 *                      checked; early errors are answered before the body
 *                      is read
 *   upload callbacks - body appended to memory (JSON), a spool file or
 *                      the descriptor a ROUTE_STREAM handler chose in its
 *                      early call (or dropped when that call refused the
 *                      request), counting bytes against the limit
 *   last callback    - handler runs, response queued
 *   completed        - access log line, arena destroyed (with every
 *                      resource registered on it)
 *
 * Connections: the guard (guard.c) accepts or refuses each new one and
 * shuts down any that has not sent a whole request header header-timeout
 * seconds after being accepted (TLS handshake included); after a request,
 * libmicrohttpd closes a connection silent for idle-timeout seconds.
 * One closed before its request was read whole lingers (linger.c).
 * TLS is 1.2 or 1.3 only.
 *
 * With TLS the workers wait in poll(), without it in epoll.  In epoll
 * mode libmicrohttpd 0.9.75 (Debian 12) spins on a connection whose TLS
 * handshake waits for the client (recv() answering EAGAIN, then
 * epoll_wait() with a zero timeout, again and again) until the
 * handshake ends: four connections stopped half-way through their
 * handshakes kept one or both cores of a 2-core node busy until the
 * header timeout, and every handshake held a core while the client
 * computed its part.  poll() costs a worker time in the number of its
 * connections (a fifth to a third fewer answers per second with 2,000
 * idle ones open), the price of not spinning.
 *
 * Every response says X-Content-Type-Options: nosniff and, unless the
 * handler chose otherwise, Cache-Control: no-store (tokens, state and
 * run output must not sit in a cache; nothing served here benefits from
 * one), plus Strict-Transport-Security when clients reach the node over
 * HTTPS (its own TLS, or an https external URL: TLS at a load balancer).
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#include <arpa/inet.h>
#include <errno.h>
#include <malloc.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "blob/blob.h"
#include "core/log.h"
#include "core/util.h"
#include "http/http.h"
#include "http/http_int.h"
#include "http/metrics.h"
#include "store/db.h"
#include "store/read_cache.h"

#define API_VERSION "2.6"
#define APP_NAME "Terraform Enterprise"
#define TFE_VERSION "v202410-1"
#define BIG_BODY (8u << 20)
/* body bytes gathered before one write to a spool or a stream */
#define HTTP_STAGE (256u << 10)
/* GnuTLS priorities: its defaults, less everything before TLS 1.2 */
#define TLS_PRIORITIES "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2"
#define HSTS "max-age=31536000"
/* descriptors kept for everything but client connections: database,
 * blobs, spool files, runs */
#define FD_MARGIN 256
/* an address counts as authenticated this long after its last token */
#define SEEN_TTL_MS (3600 * 1000)
#define GUARD_REPORT_MS 10000
/* libmicrohttpd's memory pool per connection: the request line and
 * headers (so their size limit, less the parsed header list), the read
 * buffer bodies pass through (half the pool after each request: one
 * whole 16 KiB TLS record) and the response headers.  libmicrohttpd
 * (0.9.75) mallocs a pool of up to 32 KiB and maps a larger one with
 * mmap: a mapped pool is resident only in the pages a request touched
 * and goes back to the system when its connection closes.  A parked
 * long poll on a new connection (each claim of an idle secondary)
 * touches a few of its ten pages (2-4), where a malloc'd pool came out
 * of the heap already resident and left holes in it (RESULTS.md,
 * 2026-12-07: primary RSS with idle secondaries).  After a keep-alive
 * request libmicrohttpd clears the whole pool, so a connection idle
 * between requests holds all of it, as before. */
#define CONN_MEMORY (40u << 10)

struct req_box {
    struct http_req req;
    int64_t start_ms;
    int64_t start_us; /* monotonic, for the latency histogram */
    bool queued;
};

static uint64_t body_limit(const struct http_req *r)
{
    const struct cfg *c = &r->srv->cfg;
    if (r->route == NULL)
        return 0;
    if (r->route->flags & (ROUTE_SPOOL | ROUTE_STREAM))
        return (uint64_t)c->max_state;
    if (r->route->flags & ROUTE_BIG_JSON)
        return (uint64_t)c->max_state * 2 + (uint64_t)c->max_body;
    return (uint64_t)c->max_body;
}

/* A response body read from an object (http_reply_blob()). */
static ssize_t blob_chunk(void *cls, uint64_t pos, char *buf, size_t max)
{
    size_t got = 0;
    struct tr_errbuf eb = {{0}};
    tr_err e = blob_reader_pread(cls, buf, max, pos, &got, &eb);
    if (e != TR_OK) {
        log_error("cannot send an object at offset %llu: %s",
                  (unsigned long long)pos, tr_errbuf_msg(&eb, e));
        return MHD_CONTENT_READER_END_WITH_ERROR;
    }
    return got == 0 ? MHD_CONTENT_READER_END_OF_STREAM : (ssize_t)got;
}

static void blob_done(void *cls)
{
    blob_reader_close(cls);
}

/* Whether clients reach this node over HTTPS. */
static bool https(const struct terrace_server *srv)
{
    return strcmp(srv->cfg.tls, "on") == 0 ||
           strncmp(srv->external_url, "https://", 8) == 0;
}

static enum MHD_Result queue(struct req_box *box)
{
    struct http_req *r = &box->req;
    struct MHD_Response *resp;
    if (r->status == 0)
        http_error(r, 500, "internal error", "the handler gave no response");
    int fd = r->resp_blob ? blob_reader_fd(r->resp_blob) : -1;
    if (r->resp_fd >= 0) { /* a file: libmicrohttpd closes it */
        resp = MHD_create_response_from_fd64(r->resp_fd_size, r->resp_fd);
        if (resp != NULL)
            r->resp_fd = -1;
    } else if (fd >= 0 && (fd = dup(fd)) >= 0) { /* in the clear */
        resp = MHD_create_response_from_fd64(r->resp_blob_size, fd);
        if (resp == NULL)
            close(fd);
    } else if (r->resp_blob != NULL) {
        resp = MHD_create_response_from_callback(
            r->resp_blob_size, 64 * 1024, blob_chunk, r->resp_blob, blob_done);
        if (resp != NULL)
            r->resp_blob = NULL; /* MHD closes it (blob_done) */
    } else {
        resp = MHD_create_response_from_buffer(
            r->resp_len, (void *)(r->resp_body ? r->resp_body : ""),
            MHD_RESPMEM_PERSISTENT);
    }
    if (resp == NULL)
        return MHD_NO;
    if (r->content_type != NULL)
        MHD_add_response_header(resp, "Content-Type", r->content_type);
    MHD_add_response_header(resp, "X-Request-Id", r->request_id);
    MHD_add_response_header(resp, "TFP-API-Version", API_VERSION);
    MHD_add_response_header(resp, "TFP-AppName", APP_NAME);
    MHD_add_response_header(resp, "X-TFE-Version", TFE_VERSION);
    MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
#ifdef TR_DEBUG
    char nst[24];
    snprintf(nst, sizeof(nst), "%ld", r->db_statements);
    MHD_add_response_header(resp, "X-Terrace-Statements", nst);
#endif
    if (https(r->srv))
        MHD_add_response_header(resp, "Strict-Transport-Security", HSTS);
    bool cache_set = false;
    for (int i = 0; i < r->nheaders; i++) {
        MHD_add_response_header(resp, r->hnames[i], r->hvalues[i]);
        cache_set |= strcasecmp(r->hnames[i], "Cache-Control") == 0;
    }
    if (!cache_set)
        MHD_add_response_header(resp, "Cache-Control", "no-store");
    enum MHD_Result ok = MHD_queue_response(r->conn, (unsigned)r->status, resp);
    MHD_destroy_response(resp);
    box->queued = true;
    return ok;
}

static void req_cleanup(void *p)
{
    struct http_req *r = p;
    buf_free(&r->body);
    blob_reader_close(r->resp_blob);
    if (r->resp_fd >= 0)
        close(r->resp_fd);
}

static struct req_box *begin(struct terrace_server *srv,
                             struct MHD_Connection *conn, const char *url,
                             const char *method)
{
    struct arena *a = arena_new();
    struct req_box *box = arena_alloc(a, sizeof(*box));
    struct http_req *r = &box->req;
    box->start_ms = util_now_ms();
    box->start_us = util_mono_us();
    r->srv = srv;
    r->arena = a;
    r->conn = conn;
    r->method = arena_strdup(a, method);
    r->path = arena_strdup(a, url);
    r->spool_fd = -1;
    r->resp_fd = -1;
    atomic_fetch_add(&srv->in_flight, 1);
    unsigned char rnd[8];
    util_random(rnd, sizeof(rnd));
    r->request_id =
        arena_printf(a, "%02x%02x%02x%02x%02x%02x%02x%02x", rnd[0], rnd[1],
                     rnd[2], rnd[3], rnd[4], rnd[5], rnd[6], rnd[7]);
    buf_init(&r->body, 0);
    arena_on_destroy(a, req_cleanup, r);
    return box;
}

/* The length of a client address libmicrohttpd hands over without one. */
static socklen_t addr_len(const struct sockaddr *sa)
{
    if (sa == NULL)
        return 0;
    if (sa->sa_family == AF_INET)
        return sizeof(struct sockaddr_in);
    if (sa->sa_family == AF_INET6)
        return sizeof(struct sockaddr_in6);
    return 0;
}

const struct sockaddr *http_peer(const struct http_req *r)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    return ci != NULL ? ci->client_addr : NULL;
}

const char *http_client_ip(struct http_req *r)
{
    const struct sockaddr *sa = http_peer(r);
    char buf[INET6_ADDRSTRLEN] = "";
    if (sa != NULL && sa->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, buf,
                  sizeof(buf));
    else if (sa != NULL && sa->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, buf,
                  sizeof(buf));
    return arena_strdup(r->arena, buf);
}

/* Route, limits and auth, before any body byte is read.  Returns true if
 * the request may proceed; otherwise a response has been prepared. */
static bool admit(struct http_req *r)
{
    bool exists = false;
    r->route = http_match(r->method, r->path, r->arena, &r->nparams, r->pnames,
                          r->pvalues, &exists);
    if (r->route == NULL) {
        if (exists)
            http_error(r, 405, "method not allowed",
                       "this path does not accept that method");
        else
            http_error(r, 404, "not found", "no such endpoint");
        return false;
    }
    const char *cl =
        MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Content-Length");
    int64_t len = 0;
    if (cl != NULL && util_parse_i64(cl, &len) == TR_OK &&
        (uint64_t)len > body_limit(r)) {
        http_error(r, 413, "payload too large",
                   arena_printf(r->arena,
                                "the request body is larger than the "
                                "limit of %llu bytes",
                                (unsigned long long)body_limit(r)));
        return false;
    }
    if (r->route->flags & (ROUTE_AUTH | ROUTE_NODE)) {
        bool ok = r->route->flags & ROUTE_NODE ? http_authenticate_node(r)
                                               : http_authenticate(r);
        if (!ok)
            return false;
        /* a valid token: this address may use the reserved share */
        const union MHD_ConnectionInfo *ci = MHD_get_connection_info(
            r->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
        if (ci != NULL)
            http_guard_authenticated(r->srv->guard, ci->client_addr,
                                     addr_len(ci->client_addr));
    }
    if (r->who.kind == PRINC_RUN && !(r->route->flags & ROUTE_RUN)) {
        http_error(r, 404, "not found",
                   "no such endpoint for a run's token: it may only reach "
                   "the state of its workspace and state shared with it");
        return false;
    }
    if ((r->route->flags & ROUTE_SIGNED) && !http_check_signature(r))
        return false;
    if (r->route->flags & ROUTE_STREAM) {
        r->early = true;
        r->route->handler(r);
        r->early = false;
        if (r->status != 0) {
            /* a refusal (a finalized version, a bad digest header): the
             * answer waits until the body has been read and dropped, so
             * that a client still sending it reads the answer instead of
             * a connection closed under it */
            r->discard_body = true;
            return true;
        }
        if (r->spool_fd < 0) {
            http_error(r, 500, "internal error",
                       "the upload has nowhere to go");
            return false;
        }
    } else if (r->route->flags & ROUTE_SPOOL) {
        struct tr_errbuf eb = {{0}};
        tr_err e = blob_spool(r->srv->blob, r->arena, &r->spool_fd,
                              &r->spool_path, &eb);
        if (e != TR_OK) {
            http_fail(r, e, &eb);
            return false;
        }
    } else {
        r->body.max = (size_t)body_limit(r);
    }
    return true;
}

/* Writes n bytes to the spool descriptor; false when it fails. */
static bool spool_write(struct http_req *r, const char *data, size_t n)
{
    while (n > 0) {
        ssize_t w = write(r->spool_fd, data, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return false;
        data += w;
        n -= (size_t)w;
    }
    return true;
}

/* Writes out what the stage holds (before the handler's last call). */
static void flush_body(struct http_req *r)
{
    if (r->stage_len > 0 && !r->body_too_large && !r->discard_body &&
        !spool_write(r, r->stage, r->stage_len))
        r->body_too_large = true; /* disk full: reported as 413 */
    r->stage_len = 0;
}

static void take_body(struct http_req *r, const char *data, size_t n)
{
    if (r->body_too_large)
        return;
    if (r->body_len + n > body_limit(r)) {
        r->body_too_large = true;
        return;
    }
    r->body_len += n;
    if (r->discard_body)
        return;
    if (r->spool_fd >= 0) {
        /* one write (and one wake-up of a pipe's reader) per stage, not
         * per TLS record */
        if (r->stage == NULL)
            r->stage = arena_alloc(r->arena, HTTP_STAGE);
        if (r->stage_len + n > HTTP_STAGE)
            flush_body(r);
        if (n >= HTTP_STAGE) {
            if (!r->body_too_large && !spool_write(r, data, n))
                r->body_too_large = true; /* disk full: reported as 413 */
            return;
        }
        memcpy(r->stage + r->stage_len, data, n);
        r->stage_len += n;
    } else if (buf_append(&r->body, data, n) != TR_OK) {
        r->body_too_large = true;
    }
}

/* Whether the request says a body follows its header. */
static bool announces_body(struct MHD_Connection *conn)
{
    const char *cl =
        MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Length");
    return (cl != NULL && strcmp(cl, "0") != 0) ||
           MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                       "Transfer-Encoding") != NULL;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn,
                                  const char *url, const char *method,
                                  const char *version, const char *upload_data,
                                  size_t *upload_size, void **con_cls)
{
    struct terrace_server *srv = cls;
    struct req_box *box = *con_cls;
    if (box == NULL) {
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
        if (ci != NULL)
            http_guard_request(srv->guard, ci->socket_context);
        box = begin(srv, conn, url, method);
        *con_cls = box;
        read_cache_scope(box->start_us);
        bool ok = admit(&box->req);
        read_cache_scope(0);
        if (!ok && ci != NULL && announces_body(conn))
            /* answered before its body: the connection lingers at its
             * close (linger.c) while the rest of the body comes */
            http_guard_refused(srv->guard, ci->socket_context);
        if (!ok)
            return queue(box);
        return MHD_YES;
    }
    if (box->queued) {
        *upload_size = 0;
        return MHD_YES;
    }
    if (*upload_size > 0) {
        take_body(&box->req, upload_data, *upload_size);
        *upload_size = 0;
        return MHD_YES;
    }
    struct http_req *r = &box->req;
    flush_body(r);
    if (r->suspended || r->discard_body) /* its response is ready */
        return queue(box);
    if (r->body_too_large)
        http_error(r, 413, "payload too large",
                   "the request body is larger than the limit");
    else {
        long n0 = db_trace_count();
        read_cache_scope(box->start_us);
        r->route->handler(r);
        read_cache_scope(0);
        /* a workspace read with the token counts as the handler's */
        r->db_statements = db_trace_count() - n0 + r->ws_read_used;
    }
    if (r->park != NULL) {
        /* suspended before anyone may resume it */
        r->suspended = true;
        MHD_suspend_connection(conn);
        r->park(r, r->park_arg);
        return MHD_YES;
    }
    return queue(box);
}

void http_suspend(struct http_req *r, void (*park)(struct http_req *, void *),
                  void *arg)
{
    r->park = park;
    r->park_arg = arg;
}

void http_resume(struct http_req *r)
{
    MHD_resume_connection(r->conn);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    struct terrace_server *srv = cls;
    struct req_box *box = *con_cls;
    if (box == NULL)
        return;
    struct http_req *r = &box->req;
    atomic_fetch_add(&srv->requests, 1);
    http_metrics_observe(srv->metrics, r->route, r->method, r->status,
                         util_mono_us() - box->start_us);
    log_info("%s %s %d %lldms rid=%s%s", http_log_text(r->arena, r->method),
             http_log_path(r->arena, r->path), r->status,
             (long long)(util_now_ms() - box->start_ms), r->request_id,
             toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? "" : " aborted");
    bool big = r->body_len > BIG_BODY;
    size_t weight = arena_used(r->arena) + r->resp_len;
    arena_destroy(r->arena);
    *con_cls = NULL;
    /* Give freed memory back to the system: at once after a large body
     * (a state parsed on this thread leaves its malloc arena grown, so
     * idle memory would ratchet up to threads x largest state), and when
     * the server goes idle after a burst.  Under concurrent load the
     * freed request arenas and response bodies stay in glibc's heaps,
     * which never shrink past a chunk still in use (trim.c says more);
     * the trimmer thread releases them once nothing is in flight. */
    atomic_fetch_sub(&srv->in_flight, 1);
    if (big)
        malloc_trim(0);
    else
        http_trim_note(srv->trim, weight);
}

static char *read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    struct buf b;
    buf_init(&b, 1 << 20);
    char tmp[4096];
    size_t n;
    while ((n = fread(tmp, 1, sizeof(tmp), f)) > 0)
        if (buf_append(&b, tmp, n) != TR_OK)
            break;
    fclose(f);
    return buf_steal(&b, NULL);
}

static tr_err resolve(const char *listen, struct sockaddr_storage *ss,
                      struct tr_errbuf *eb)
{
    char host[128];
    const char *colon = strrchr(listen, ':');
    size_t hl = (size_t)(colon - listen);
    if (hl >= sizeof(host))
        return tr_fail(eb, TR_ERR_CONFIG, "listen host too long");
    memcpy(host, listen, hl);
    host[hl] = '\0';
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *res = NULL;
    const char *h = host;
    if (h[0] == '[') {
        h++;
        host[hl - 1] = '\0';
    }
    int rc = getaddrinfo(*h ? h : NULL, colon + 1, &hints, &res);
    if (rc != 0 || res == NULL)
        return tr_fail(eb, TR_ERR_CONFIG, "cannot resolve listen address %s",
                       listen);
    memcpy(ss, res->ai_addr, res->ai_addrlen);
    freeaddrinfo(res);
    return TR_OK;
}

/* libmicrohttpd's hooks onto the guard (guard.c). */
static enum MHD_Result on_accept(void *cls, const struct sockaddr *addr,
                                 socklen_t len)
{
    struct terrace_server *srv = cls;
    return http_guard_accept(srv->guard, addr, len) ? MHD_YES : MHD_NO;
}

static void on_connection(void *cls, struct MHD_Connection *conn,
                          void **socket_context,
                          enum MHD_ConnectionNotificationCode code)
{
    struct terrace_server *srv = cls;
    const union MHD_ConnectionInfo *fd =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (code == MHD_CONNECTION_NOTIFY_CLOSED) {
        /* before libmicrohttpd closes the fd */
        bool partial = http_guard_close(srv->guard, *socket_context);
        *socket_context = NULL;
        if (fd != NULL)
            http_linger_close(srv->linger, fd->connect_fd, partial);
        return;
    }
    const union MHD_ConnectionInfo *addr =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    const struct sockaddr *sa = addr ? addr->client_addr : NULL;
    if (fd == NULL) { /* cannot happen for an accepted socket */
        *socket_context = NULL;
        return;
    }
    http_guard_open(srv->guard, sa, addr_len(sa), fd->connect_fd,
                    socket_context);
}

/* libmicrohttpd's error messages, into the log without flooding it. */
static void on_lib_log(void *cls, const char *fmt, va_list ap)
{
    struct terrace_server *srv = cls;
    char msg[256];
    vsnprintf(msg, sizeof(msg), fmt, ap);
    size_t n = strlen(msg);
    while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == '.'))
        msg[--n] = '\0';
    if (n > 0 && srv->guard != NULL)
        http_guard_lib_log(srv->guard, msg);
}

/* Raises the open-file limit to its ceiling and returns how many client
 * connections fit under it next to FD_MARGIN other descriptors. */
static int fd_budget(int want)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return want;
    if (rl.rlim_cur < rl.rlim_max) {
        rlim_t was = rl.rlim_cur;
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
            rl.rlim_cur = was;
    }
    if (rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur >= (rlim_t)want + FD_MARGIN)
        return want;
    int fit = rl.rlim_cur > FD_MARGIN + 16 ? (int)rl.rlim_cur - FD_MARGIN : 16;
    log_warn("conn-limit %d does not fit the open-file limit of %llu; "
             "using %d (raise the hard limit, ulimit -Hn, to allow more)",
             want, (unsigned long long)rl.rlim_cur, fit);
    return fit;
}

static tr_err start_guard(struct terrace_server *srv, int limit,
                          struct tr_errbuf *eb)
{
    struct http_guard_conf gc = {
        .limit = limit,
        .reserved = limit / 4,
        .per_ip = srv->cfg.conn_per_ip,
        .header_ms = srv->cfg.header_timeout * 1000,
        .seen_ttl_ms = SEEN_TTL_MS,
        .report_ms = GUARD_REPORT_MS,
    };
    return http_guard_new(&gc, &srv->guard, eb);
}

tr_err http_start(struct terrace_server *srv, struct tr_errbuf *eb)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof(ss));
    tr_err e = resolve(srv->cfg.listen, &ss, eb);
    if (e != TR_OK)
        return e;
    int limit = fd_budget(srv->cfg.conn_limit);
    e = http_metrics_new(srv, &srv->metrics, eb);
    if (e != TR_OK)
        return e;
    e = start_guard(srv, limit, eb);
    if (e != TR_OK) {
        http_metrics_free(srv->metrics);
        srv->metrics = NULL;
        return e;
    }
    e = http_trim_new(&srv->in_flight, &srv->trim, eb);
    if (e == TR_OK) {
        e = http_linger_new(&srv->linger, eb);
        if (e != TR_OK) {
            http_trim_free(srv->trim);
            srv->trim = NULL;
        }
    }
    if (e != TR_OK) {
        http_guard_free(srv->guard);
        srv->guard = NULL;
        http_metrics_free(srv->metrics);
        srv->metrics = NULL;
        return e;
    }
    char *cert = NULL, *key = NULL;
    bool tls = strcmp(srv->cfg.tls, "on") == 0;
    /* poll() with TLS: see the top of this file */
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD |
                     (tls ? MHD_USE_POLL : MHD_USE_EPOLL) | MHD_USE_ERROR_LOG |
                     MHD_ALLOW_SUSPEND_RESUME;
    if (ss.ss_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    if (tls) {
        cert = read_file(srv->cfg.tls_cert);
        key = read_file(srv->cfg.tls_key);
        if (cert == NULL || key == NULL) {
            e = tr_fail(eb, TR_ERR_CONFIG,
                        "cannot read TLS certificate or key");
            goto fail;
        }
        flags |= MHD_USE_TLS;
    }
    /* libmicrohttpd's own limit sits above the guard's, which decides;
     * reaching it would stop accept() for everyone */
    unsigned mhd_limit = (unsigned)limit + (unsigned)srv->cfg.threads + 64;
    struct MHD_OptionItem opts[12];
    int k = 0;
#define OPT(o, v, p) (opts[k++] = (struct MHD_OptionItem){(o), (v), (p)})
    OPT(MHD_OPTION_EXTERNAL_LOGGER, (intptr_t)on_lib_log, srv);
    OPT(MHD_OPTION_NOTIFY_COMPLETED, (intptr_t)on_completed, srv);
    OPT(MHD_OPTION_NOTIFY_CONNECTION, (intptr_t)on_connection, srv);
    OPT(MHD_OPTION_CONNECTION_TIMEOUT, (intptr_t)srv->cfg.idle_timeout, NULL);
    OPT(MHD_OPTION_CONNECTION_LIMIT, (intptr_t)mhd_limit, NULL);
    OPT(MHD_OPTION_CONNECTION_MEMORY_LIMIT, (intptr_t)CONN_MEMORY, NULL);
    OPT(MHD_OPTION_SOCK_ADDR, 0, &ss);
    /* one thread: no pool option (libmicrohttpd warns at a size of 0 or
     * 1 that it uses none) */
    if (srv->cfg.threads > 1)
        OPT(MHD_OPTION_THREAD_POOL_SIZE, srv->cfg.threads, NULL);
    if (tls) {
        OPT(MHD_OPTION_HTTPS_MEM_CERT, 0, cert);
        OPT(MHD_OPTION_HTTPS_MEM_KEY, 0, key);
        OPT(MHD_OPTION_HTTPS_PRIORITIES, 0, (void *)TLS_PRIORITIES);
    }
    OPT(MHD_OPTION_END, 0, NULL);
#undef OPT
    srv->mhd = MHD_start_daemon(flags, 0, on_accept, srv, on_request, srv,
                                MHD_OPTION_ARRAY, opts, MHD_OPTION_END);
    if (srv->mhd == NULL) {
        e = tr_fail(eb, TR_ERR_IO, "cannot listen on %s", srv->cfg.listen);
        goto fail;
    }
    free(cert);
    free(key);
    return TR_OK;
fail:
    free(cert);
    free(key);
    http_linger_free(srv->linger);
    srv->linger = NULL;
    http_trim_free(srv->trim);
    srv->trim = NULL;
    http_guard_free(srv->guard);
    srv->guard = NULL;
    http_metrics_free(srv->metrics);
    srv->metrics = NULL;
    return e;
}

int http_stop_keep_listener(struct terrace_server *srv)
{
    /* the daemon has an inter-thread channel (MHD_ALLOW_SUSPEND_RESUME
     * brings MHD_USE_ITC), which quiescing needs */
    MHD_socket fd =
        srv->mhd != NULL ? MHD_quiesce_daemon(srv->mhd) : MHD_INVALID_SOCKET;
    http_stop(srv);
    return fd == MHD_INVALID_SOCKET ? -1 : (int)fd;
}

void http_stop(struct terrace_server *srv)
{
    if (srv->mhd != NULL) {
        MHD_stop_daemon(srv->mhd);
        srv->mhd = NULL;
    }
    /* after the daemon: closing its connections reports to the guard
     * and may hand sockets to the lingering close */
    http_linger_free(srv->linger);
    srv->linger = NULL;
    http_trim_free(srv->trim);
    srv->trim = NULL;
    http_guard_free(srv->guard);
    srv->guard = NULL;
    http_metrics_free(srv->metrics);
    srv->metrics = NULL;
}
