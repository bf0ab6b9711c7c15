/*
 * metrics.c - request counters and the Prometheus exposition of
 * GET /metrics (see metrics.h for the contract).
 *
 * Layout: stats[] holds one struct route_stats per route of the router's
 * tables (by http_route_index()), then one per method of unmatched
 * requests.  A slot's counters only ever grow; readers may see a request
 * in a code counter before it reaches the histogram, which Prometheus
 * tolerates (each series is read atomically on its own).  A route whose
 * method and pattern repeat an earlier one can never match and is left
 * out of the output, so no two series carry the same labels.
 *
 * Series (label values are route patterns, method names, status codes,
 * run statuses and node names: never a path, organization or secret):
 *   terrace_http_requests_total{route,method,code}        counter
 *   terrace_http_request_duration_seconds{route,method}   histogram
 *   terrace_runs{status}, terrace_queue_depth, terrace_jobs_running,
 *   terrace_node_jobs_running{node}                        from the db
 *   terrace_database_up, terrace_executor_capacity, terrace_leader,
 *   terrace_draining, terrace_db_pool_in_use, terrace_db_pool_size,
 *   process_resident_memory_bytes, process_start_time_seconds
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#include "http/metrics.h"

#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/log.h"
#include "core/util.h"
#include "http/http.h"
#include "http/http_int.h"
#include "store/read_cache.h"
#include "store/store.h"

/* database gauges are read at most this often */
#define CACHE_MS 5000

static const int codes[] = {200, 201, 202, 204, 301, 302, 303, 304, 307, 308,
                            400, 401, 403, 404, 405, 406, 409, 410, 412, 413,
                            415, 416, 422, 423, 429, 500, 501, 502, 503, 504};
#define NCODES ((int)(sizeof(codes) / sizeof(codes[0])))
/* then "1xx".."5xx" for other codes, then "none" (no response) */
#define NSLOTS (NCODES + 6)

/* upper bounds, seconds: API calls take milliseconds, uploads and
 * long-polls seconds */
static const double bounds[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                0.5,   1,    2.5,   5,    10,  30};
#define NBOUNDS ((int)(sizeof(bounds) / sizeof(bounds[0])))

static const char *const methods[] = {"GET",   "HEAD",   "POST",    "PUT",
                                      "PATCH", "DELETE", "OPTIONS", "other"};
#define NMETHODS ((int)(sizeof(methods) / sizeof(methods[0])))

/* run statuses always reported, 0 when no run has them */
static const char *const run_statuses[] = {
    "pending",        "plan_queued",       "planning",
    "planned",        "planned_and_saved", "planned_and_finished",
    "cost_estimated", "confirmed",         "apply_queued",
    "applying",       "applied",           "discarded",
    "errored",        "canceled",          "force_canceled"};
#define NSTATUSES ((int)(sizeof(run_statuses) / sizeof(run_statuses[0])))

struct route_stats {
    atomic_ulong codes[NSLOTS];
    atomic_ulong buckets[NBOUNDS]; /* not cumulative: one per bound */
    atomic_ulong count;
    atomic_ullong sum_us;
};

struct http_metrics {
    int nroutes;
    struct route_stats *stats; /* nroutes + NMETHODS */
    bool *skip;                /* route repeats an earlier one */
    int64_t start_time;        /* unix seconds */
    struct http_probe *probe;  /* NULL without a database */
    pthread_mutex_t mu;        /* guards the cache below */
    int64_t fetched_ms;
    bool cache_ok;
    struct arena *cache_arena;
    struct st_metrics cache;
};

static int code_slot(int status)
{
    for (int i = 0; i < NCODES; i++)
        if (codes[i] == status)
            return i;
    if (status >= 100 && status < 600)
        return NCODES + status / 100 - 1;
    return NCODES + 5;
}

static const char *slot_label(int slot, char *tmp, size_t n)
{
    if (slot < NCODES)
        snprintf(tmp, n, "%d", codes[slot]);
    else if (slot < NCODES + 5)
        snprintf(tmp, n, "%dxx", slot - NCODES + 1);
    else
        snprintf(tmp, n, "none");
    return tmp;
}

static int method_slot(const char *method)
{
    for (int i = 0; i < NMETHODS - 1; i++)
        if (method != NULL && strcmp(methods[i], method) == 0)
            return i;
    return NMETHODS - 1;
}

/* The process's start, from /proc (boot time plus its start in clock
 * ticks); now if /proc cannot say. */
static int64_t process_start(void)
{
    int64_t btime = 0;
    unsigned long long ticks = 0;
    char line[256];
    FILE *f = fopen("/proc/stat", "r");
    while (f != NULL && fgets(line, sizeof(line), f) != NULL)
        if (sscanf(line, "btime %lld", (long long *)&btime) == 1)
            break;
    if (f != NULL)
        fclose(f);
    char stat[1024] = "";
    f = fopen("/proc/self/stat", "r");
    size_t n = f != NULL ? fread(stat, 1, sizeof(stat) - 1, f) : 0;
    if (f != NULL)
        fclose(f);
    stat[n] = '\0';
    /* after the command's closing parenthesis: field 3 onwards; the
     * start time is field 22 */
    const char *p = strrchr(stat, ')');
    int field = 2;
    while (p != NULL && *p != '\0' && field < 22) {
        p = strchr(p + 1, ' ');
        if (p != NULL)
            field++;
    }
    long hz = sysconf(_SC_CLK_TCK);
    if (p == NULL || btime <= 0 || hz <= 0 ||
        sscanf(p + 1, "%llu", &ticks) != 1)
        return util_now_unix();
    return btime + (int64_t)(ticks / (unsigned long long)hz);
}

int64_t http_metrics_start_time(const struct http_metrics *m)
{
    return m != NULL ? m->start_time : util_now_unix();
}

tr_err http_metrics_new(struct terrace_server *srv, struct http_metrics **out,
                        struct tr_errbuf *eb)
{
    struct http_metrics *m = calloc(1, sizeof(*m));
    if (m == NULL)
        return tr_fail(eb, TR_ERR_NOMEM, "out of memory");
    pthread_mutex_init(&m->mu, NULL);
    m->nroutes = http_route_count();
    size_t n = (size_t)m->nroutes + NMETHODS;
    m->stats = calloc(n, sizeof(*m->stats));
    m->skip = calloc(n, sizeof(*m->skip));
    if (m->stats == NULL || m->skip == NULL) {
        http_metrics_free(m);
        return tr_fail(eb, TR_ERR_NOMEM, "out of memory");
    }
    for (int i = 0; i < m->nroutes; i++) {
        const struct route *r = http_route_at(i);
        for (int j = 0; j < i && !m->skip[i]; j++) {
            const struct route *o = http_route_at(j);
            m->skip[i] = strcmp(r->method, o->method) == 0 &&
                         strcmp(r->pattern, o->pattern) == 0;
        }
    }
    m->start_time = process_start();
    if (srv != NULL && srv->db != NULL) {
        tr_err e = http_probe_new(srv->db, &m->probe, eb);
        if (e != TR_OK) {
            http_metrics_free(m);
            return e;
        }
    }
    *out = m;
    return TR_OK;
}

void http_metrics_free(struct http_metrics *m)
{
    if (m == NULL)
        return;
    http_probe_free(m->probe);
    arena_destroy(m->cache_arena);
    pthread_mutex_destroy(&m->mu);
    free(m->stats);
    free(m->skip);
    free(m);
}

struct http_probe *http_metrics_probe(struct http_metrics *m)
{
    return m != NULL ? m->probe : NULL;
}

void http_metrics_observe(struct http_metrics *m, const struct route *route,
                          const char *method, int status, int64_t usec)
{
    if (m == NULL)
        return;
    int i = route != NULL ? http_route_index(route) : -1;
    if (i < 0 || i >= m->nroutes)
        i = m->nroutes + method_slot(method);
    struct route_stats *s = &m->stats[i];
    if (usec < 0)
        usec = 0;
    atomic_fetch_add_explicit(&s->codes[code_slot(status)], 1,
                              memory_order_relaxed);
    double secs = (double)usec / 1e6;
    for (int b = 0; b < NBOUNDS; b++) {
        if (secs <= bounds[b]) {
            atomic_fetch_add_explicit(&s->buckets[b], 1, memory_order_relaxed);
            break;
        }
    }
    atomic_fetch_add_explicit(&s->sum_us, (unsigned long long)usec,
                              memory_order_relaxed);
    atomic_fetch_add_explicit(&s->count, 1, memory_order_relaxed);
}

/* A label value with \, " and newline escaped as the format wants. */
static void put_label(struct buf *b, const char *s)
{
    for (; *s != '\0'; s++) {
        if (*s == '\\')
            buf_puts(b, "\\\\");
        else if (*s == '"')
            buf_puts(b, "\\\"");
        else if (*s == '\n')
            buf_puts(b, "\\n");
        else
            buf_append(b, s, 1);
    }
}

static void head(struct buf *b, const char *name, const char *type,
                 const char *help)
{
    buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* The read cache's counters (store/read_cache.h), when there is one. */
static void read_cache_metrics(struct buf *b, struct read_cache *rc)
{
    if (rc == NULL)
        return;
    struct read_cache_stats st;
    read_cache_stats(rc, &st);
    const struct {
        const char *name, *help;
        uint64_t v;
    } m[] = {
        {"terrace_read_cache_hits_total",
         "token lookups and workspace reads answered from the read cache",
         st.hits},
        {"terrace_read_cache_misses_total",
         "token lookups and workspace reads the read cache did not hold",
         st.misses},
        {"terrace_read_cache_polls_total",
         "polls of the change records before the read cache is used", st.polls},
        {"terrace_read_cache_poll_failures_total",
         "failed polls (the requests waiting on them read the database)",
         st.poll_failures},
        {"terrace_read_cache_invalidations_total",
         "change records applied to the read cache", st.invalidations},
        {"terrace_read_cache_flushes_total",
         "times the read cache was emptied because its primary's record "
         "had been pruned",
         st.flushes},
    };
    for (size_t i = 0; i < sizeof(m) / sizeof(m[0]); i++) {
        head(b, m[i].name, "counter", m[i].help);
        buf_printf(b, "%s %llu\n", m[i].name, (unsigned long long)m[i].v);
    }
}

/* name{route="...",method="..."  (the caller closes the braces) */
static void route_labels(struct buf *b, const char *name,
                         const struct http_metrics *m, int i)
{
    const struct route *r = i < m->nroutes ? http_route_at(i) : NULL;
    buf_printf(b, "%s{route=\"", name);
    put_label(b, r != NULL ? r->pattern : "unmatched");
    buf_puts(b, "\",method=\"");
    put_label(b, r != NULL ? r->method : methods[i - m->nroutes]);
    buf_puts(b, "\"");
}

static void render_requests(const struct http_metrics *m, struct buf *b)
{
    int n = m->nroutes + NMETHODS;
    head(b, "terrace_http_requests_total", "counter",
         "HTTP requests answered, by route pattern, method and status");
    for (int i = 0; i < n; i++) {
        if (m->skip[i])
            continue;
        for (int c = 0; c < NSLOTS; c++) {
            unsigned long v = atomic_load_explicit(&m->stats[i].codes[c],
                                                   memory_order_relaxed);
            if (v == 0)
                continue;
            char tmp[16];
            route_labels(b, "terrace_http_requests_total", m, i);
            buf_printf(b, ",code=\"%s\"} %lu\n",
                       slot_label(c, tmp, sizeof(tmp)), v);
        }
    }
    const char *hn = "terrace_http_request_duration_seconds";
    head(b, hn, "histogram", "time from request to response, by route");
    for (int i = 0; i < n; i++) {
        const struct route_stats *s = &m->stats[i];
        unsigned long count =
            atomic_load_explicit(&s->count, memory_order_relaxed);
        if (m->skip[i] || count == 0)
            continue;
        unsigned long cum = 0;
        for (int k = 0; k < NBOUNDS; k++) {
            cum += atomic_load_explicit(&s->buckets[k], memory_order_relaxed);
            route_labels(b, "terrace_http_request_duration_seconds_bucket", m,
                         i);
            buf_printf(b, ",le=\"%g\"} %lu\n", bounds[k], cum);
        }
        /* +Inf no lower than the last bound, should a request have been
         * counted in a bucket and not yet in count */
        if (count < cum)
            count = cum;
        route_labels(b, "terrace_http_request_duration_seconds_bucket", m, i);
        buf_printf(b, ",le=\"+Inf\"} %lu\n", count);
        route_labels(b, "terrace_http_request_duration_seconds_sum", m, i);
        buf_printf(
            b, "} %.6f\n",
            (double)atomic_load_explicit(&s->sum_us, memory_order_relaxed) /
                1e6);
        route_labels(b, "terrace_http_request_duration_seconds_count", m, i);
        buf_printf(b, "} %lu\n", count);
    }
}

/* Label values from the database: only plain names are reported. */
static bool plain(const char *s)
{
    if (*s == '\0' || strlen(s) > 128)
        return false;
    for (; *s != '\0'; s++)
        if (*s < 0x21 || *s > 0x7e)
            return false;
    return true;
}

/* Refreshes the cache when older than CACHE_MS; m->mu held. */
static void refresh(struct http_metrics *m, struct terrace_server *srv)
{
    int64_t now = util_now_ms();
    if (m->fetched_ms != 0 && now - m->fetched_ms < CACHE_MS)
        return;
    struct arena *a = arena_new();
    struct st_metrics c = {0};
    struct tr_errbuf eb = {{0}};
    tr_err e = store_metrics_counts(srv->db, a, &c, &eb);
    bool first = m->fetched_ms == 0;
    m->fetched_ms = now;
    if (e != TR_OK) {
        if (m->cache_ok || first) /* once per failure, not per scrape */
            log_warn("metrics: cannot count runs and jobs: %s",
                     tr_errbuf_msg(&eb, e));
        arena_destroy(a);
        m->cache_ok = false;
        return;
    }
    arena_destroy(m->cache_arena);
    m->cache_arena = a;
    m->cache = c;
    m->cache_ok = true;
}

static void render_db(struct http_metrics *m, struct terrace_server *srv,
                      struct buf *b)
{
    pthread_mutex_lock(&m->mu);
    refresh(m, srv);
    head(b, "terrace_database_up", "gauge",
         "1 when the last count of runs and jobs could be read");
    buf_printf(b, "terrace_database_up %d\n", m->cache_ok ? 1 : 0);
    if (!m->cache_ok)
        goto out;
    const struct st_metrics *c = &m->cache;
    head(b, "terrace_runs", "gauge", "runs by status");
    for (int i = 0; i < NSTATUSES; i++) {
        int64_t n = 0;
        for (int k = 0; k < c->nruns; k++)
            if (strcmp(c->runs[k].key, run_statuses[i]) == 0)
                n = c->runs[k].n;
        buf_printf(b, "terrace_runs{status=\"%s\"} %lld\n", run_statuses[i],
                   (long long)n);
    }
    for (int k = 0; k < c->nruns; k++) {
        bool known = false;
        for (int i = 0; i < NSTATUSES && !known; i++)
            known = strcmp(c->runs[k].key, run_statuses[i]) == 0;
        if (known || !plain(c->runs[k].key))
            continue;
        buf_puts(b, "terrace_runs{status=\"");
        put_label(b, c->runs[k].key);
        buf_printf(b, "\"} %lld\n", (long long)c->runs[k].n);
    }
    head(b, "terrace_queue_depth", "gauge", "jobs waiting for a worker");
    buf_printf(b, "terrace_queue_depth %lld\n", (long long)c->jobs_queued);
    head(b, "terrace_jobs_running", "gauge",
         "jobs running on all nodes together");
    buf_printf(b, "terrace_jobs_running %lld\n", (long long)c->jobs_running);
    head(b, "terrace_node_jobs_running", "gauge", "jobs running, by node");
    for (int k = 0; k < c->nnodes; k++) {
        if (!plain(c->nodes[k].key))
            continue;
        buf_puts(b, "terrace_node_jobs_running{node=\"");
        put_label(b, c->nodes[k].key);
        buf_printf(b, "\"} %lld\n", (long long)c->nodes[k].n);
    }
out:
    pthread_mutex_unlock(&m->mu);
}

/* Resident set size from /proc/self/statm; -1 if unreadable. */
static long long resident_bytes(void)
{
    long long size = 0, resident = -1;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f == NULL)
        return -1;
    if (fscanf(f, "%lld %lld", &size, &resident) != 2)
        resident = -1;
    fclose(f);
    long page = sysconf(_SC_PAGESIZE);
    return resident < 0 || page <= 0 ? -1 : resident * page;
}

static void render_node(struct http_metrics *m, struct terrace_server *srv,
                        struct buf *b)
{
    head(b, "terrace_executor_capacity", "gauge",
         "jobs this node runs at once");
    buf_printf(b, "terrace_executor_capacity %d\n", srv->cfg.executors);
    head(b, "terrace_leader", "gauge", "1 while this node is the leader");
    buf_printf(b, "terrace_leader %d\n", atomic_load(&srv->is_leader) ? 1 : 0);
    head(b, "terrace_draining", "gauge", "1 while this node is draining");
    buf_printf(b, "terrace_draining %d\n", atomic_load(&srv->draining) ? 1 : 0);
    if (srv->db != NULL) {
        int used = 0, size = 0;
        db_pool_stats(srv->db, &used, &size);
        head(b, "terrace_db_pool_in_use", "gauge",
             "database connections in use");
        buf_printf(b, "terrace_db_pool_in_use %d\n", used);
        head(b, "terrace_db_pool_size", "gauge",
             "database connections in the pool");
        buf_printf(b, "terrace_db_pool_size %d\n", size);
        read_cache_metrics(b, db_read_cache(srv->db));
    }
    static const struct {
        const char *name, *help;
        size_t off;
    } gc[] = {
        {"terrace_blob_gc_passes_total", "blob garbage collection passes",
         offsetof(struct terrace_server, gc.passes)},
        {"terrace_blob_gc_removed_total", "unreferenced objects removed",
         offsetof(struct terrace_server, gc.removed)},
        {"terrace_blob_gc_removed_bytes_total",
         "stored bytes of the objects removed",
         offsetof(struct terrace_server, gc.removed_bytes)},
        {"terrace_blob_gc_failures_total",
         "object removals that failed (tried again)",
         offsetof(struct terrace_server, gc.failed)},
        {"terrace_blob_gc_errors_total", "passes cut short by an error",
         offsetof(struct terrace_server, gc.errors)},
    };
    for (size_t i = 0; i < sizeof(gc) / sizeof(gc[0]); i++) {
        head(b, gc[i].name, "counter", gc[i].help);
        buf_printf(b, "%s %lu\n", gc[i].name,
                   atomic_load((atomic_ulong *)((char *)srv + gc[i].off)));
    }
    long long rss = resident_bytes();
    if (rss >= 0) {
        head(b, "process_resident_memory_bytes", "gauge",
             "resident memory size in bytes");
        buf_printf(b, "process_resident_memory_bytes %lld\n", rss);
    }
    head(b, "process_start_time_seconds", "gauge",
         "start time of the process since the epoch in seconds");
    buf_printf(b, "process_start_time_seconds %lld\n",
               (long long)m->start_time);
}

void http_metrics_render(struct http_metrics *m, struct terrace_server *srv,
                         struct buf *b)
{
    render_requests(m, b);
    render_node(m, srv, b);
    if (srv->db != NULL)
        render_db(m, srv, b);
}

bool http_metrics_allowed(const char *mode, const struct sockaddr *peer,
                          bool proxied)
{
    if (strcmp(mode, "on") == 0)
        return true;
    if (strcmp(mode, "loopback") != 0 || peer == NULL || proxied)
        return false;
    if (peer->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)peer;
        return (ntohl(in->sin_addr.s_addr) >> 24) == 127;
    }
    if (peer->sa_family == AF_INET6) {
        const struct in6_addr *a6 =
            &((const struct sockaddr_in6 *)peer)->sin6_addr;
        if (IN6_IS_ADDR_LOOPBACK(a6))
            return true;
        return IN6_IS_ADDR_V4MAPPED(a6) && a6->s6_addr[12] == 127;
    }
    return false;
}

void http_metrics_get(struct http_req *r)
{
    static const char *const proxy_headers[] = {"X-Forwarded-For", "Forwarded",
                                                "X-Real-IP"};
    bool proxied = false;
    for (size_t i = 0; i < sizeof(proxy_headers) / sizeof(*proxy_headers); i++)
        proxied |= http_header(r, proxy_headers[i]) != NULL;
    if (!http_metrics_allowed(r->srv->cfg.metrics, http_peer(r), proxied) ||
        r->srv->metrics == NULL) {
        http_error(r, 404, "not found", "no such endpoint");
        return;
    }
    struct buf b;
    buf_init(&b, 0);
    http_metrics_render(r->srv->metrics, r->srv, &b);
    char *body = arena_strndup(r->arena, b.data ? b.data : "", b.len);
    size_t len = b.len;
    buf_free(&b);
    http_reply(r, 200, "text/plain; version=0.0.4; charset=utf-8", body, len);
}
