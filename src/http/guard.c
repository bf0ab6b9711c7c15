/*
 * guard.c - the connection guard: per-address and global connection
 * limits, a share of the global limit kept for authenticated clients, and
 * the deadline for a connection's first request header (http_int.h has
 * the contract).
 *
 * Why not libmicrohttpd's own settings: its connection timeout (0.9.75)
 * counts from the last byte received, so a client that trickles a byte
 * every few seconds keeps a connection for as long as it likes, and its
 * connection limit, once reached, stops accept() altogether so every new
 * client waits in the kernel's backlog until an old connection goes.  The
 * guard instead refuses (accepts and closes at once) what is over a
 * limit, and a timer thread shuts down, with shutdown(2), the sockets of
 * connections whose header deadline passed; libmicrohttpd then sees the
 * end of the stream and closes them itself.  The fd cannot be reused
 * under the timer: libmicrohttpd reports the close (http_guard_close(),
 * which takes the lock) before it closes the fd.
 *
 * Tables, all under g->mu:
 *   counts - open connections per address key, open addressing with
 *            linear probing and backward-shift deletion; sized to twice
 *            the most keys that can be open at once, so a probe ends,
 *            and hashed with a random seed, so clients cannot pick
 *            addresses that pile onto one probe chain;
 *   seen   - addresses that sent a valid token, with when; a bounded
 *            table where a new address replaces the oldest entry in its
 *            probe window, so it never grows;
 *   wait   - connections still waiting for their first request header,
 *            oldest first (every one has the same header_ms, and they
 *            are appended in time order), so the timer looks only at the
 *            head.
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "core/cond.h"
#include "core/log.h"
#include "core/util.h"
#include "http/http_int.h"

#define SEEN_SLOTS 1024 /* power of two */
#define SEEN_PROBE 8
#define OVERSHOOT 256 /* accepts in flight on all threads, at most */
#define LIB_LINES 20  /* libmicrohttpd messages logged per period */

/* A client address as the limits see it: IPv4 (also when v4-mapped in
 * IPv6), or the /64 of an IPv6 address, since one IPv6 host usually has
 * a whole /64 to pick from. */
struct key {
    uint8_t len; /* 4 or 8; 0: empty slot */
    uint8_t b[8];
};

struct count_slot {
    struct key key;
    int n;
};

struct seen_slot {
    struct key key;
    int64_t at_ms;
};

struct gconn {
    struct key key;
    bool keyed;     /* the address was IP: counted in counts */
    bool waiting;   /* in the wait list */
    bool timed_out; /* shut down for a late header */
    bool refused;   /* a request answered before its body was read */
    int fd;
    int64_t deadline_ms;
    struct gconn *prev, *next;
};

struct http_guard {
    struct http_guard_conf conf;
    uint64_t seed; /* random: clients cannot aim at one probe chain */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pthread_t thread;
    bool stop;
    int open;
    struct count_slot *counts;
    size_t count_mask;
    struct seen_slot seen[SEEN_SLOTS];
    struct gconn *wait_head, *wait_tail;
    struct http_guard_stats total;    /* since start */
    struct http_guard_stats reported; /* at the last summary */
    int lib_lines;                    /* logged this period */
    unsigned long lib_dropped;        /* not logged this period */
};

static bool key_of(const struct sockaddr *sa, socklen_t len, struct key *k)
{
    memset(k, 0, sizeof(*k));
    if (sa == NULL)
        return false;
    if (sa->sa_family == AF_INET && len >= sizeof(struct sockaddr_in)) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        memcpy(k->b, &in->sin_addr, 4);
        k->len = 4;
        return true;
    }
    if (sa->sa_family == AF_INET6 && len >= sizeof(struct sockaddr_in6)) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        const uint8_t *a = in6->sin6_addr.s6_addr;
        if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr)) {
            memcpy(k->b, a + 12, 4);
            k->len = 4;
        } else {
            memcpy(k->b, a, 8);
            k->len = 8;
        }
        return true;
    }
    return false;
}

static bool key_eq(const struct key *a, const struct key *b)
{
    return a->len == b->len && memcmp(a->b, b->b, a->len) == 0;
}

static size_t key_hash(const struct http_guard *g, const struct key *k)
{
    uint64_t h = 1469598103934665603ULL ^ g->seed; /* FNV-1a, seeded */
    h = (h ^ k->len) * 1099511628211ULL;
    for (int i = 0; i < k->len; i++)
        h = (h ^ k->b[i]) * 1099511628211ULL;
    return (size_t)(h ^ (h >> 29));
}

/* ---- counts -------------------------------------------------------------- */

/* The slot holding k, or the empty slot where it would go. */
static size_t count_find(const struct http_guard *g, const struct key *k)
{
    size_t i = key_hash(g, k) & g->count_mask;
    while (g->counts[i].n != 0 && !key_eq(&g->counts[i].key, k))
        i = (i + 1) & g->count_mask;
    return i;
}

static int count_get(const struct http_guard *g, const struct key *k)
{
    return g->counts[count_find(g, k)].n;
}

static void count_add(struct http_guard *g, const struct key *k)
{
    size_t i = count_find(g, k);
    g->counts[i].key = *k;
    g->counts[i].n++;
}

/* Decrements k; an entry that drops to zero is removed by shifting back
 * the entries after it that probed past it. */
static void count_del(struct http_guard *g, const struct key *k)
{
    size_t i = count_find(g, k);
    if (g->counts[i].n == 0) /* never: every close follows its open */
        return;
    if (--g->counts[i].n > 0)
        return;
    size_t j = i;
    for (;;) {
        j = (j + 1) & g->count_mask;
        if (g->counts[j].n == 0)
            break;
        size_t home = key_hash(g, &g->counts[j].key) & g->count_mask;
        /* the entry at j may move to i unless its home lies in (i, j] */
        bool stays = i <= j ? (home > i && home <= j) : (home > i || home <= j);
        if (!stays) {
            g->counts[i] = g->counts[j];
            i = j;
        }
    }
    memset(&g->counts[i], 0, sizeof(g->counts[i]));
}

/* ---- recently authenticated addresses ------------------------------------ */

static bool seen_recent(const struct http_guard *g, const struct key *k,
                        int64_t now)
{
    size_t h = key_hash(g, k);
    for (size_t p = 0; p < SEEN_PROBE; p++) {
        const struct seen_slot *s = &g->seen[(h + p) & (SEEN_SLOTS - 1)];
        if (key_eq(&s->key, k))
            return now - s->at_ms < g->conf.seen_ttl_ms;
    }
    return false;
}

static void seen_note(struct http_guard *g, const struct key *k, int64_t now)
{
    size_t h = key_hash(g, k);
    struct seen_slot *victim = NULL; /* an empty slot, else the oldest */
    for (size_t p = 0; p < SEEN_PROBE; p++) {
        struct seen_slot *s = &g->seen[(h + p) & (SEEN_SLOTS - 1)];
        if (key_eq(&s->key, k)) {
            s->at_ms = now;
            return;
        }
        if (victim == NULL || (victim->key.len != 0 &&
                               (s->key.len == 0 || s->at_ms < victim->at_ms)))
            victim = s;
    }
    victim->key = *k;
    victim->at_ms = now;
}

/* ---- the wait list ------------------------------------------------------- */

static void wait_unlink(struct http_guard *g, struct gconn *c)
{
    if (!c->waiting)
        return;
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        g->wait_head = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    else
        g->wait_tail = c->prev;
    c->prev = c->next = NULL;
    c->waiting = false;
}

static void wait_append(struct http_guard *g, struct gconn *c)
{
    c->prev = g->wait_tail;
    c->next = NULL;
    if (g->wait_tail != NULL)
        g->wait_tail->next = c;
    else
        g->wait_head = c;
    g->wait_tail = c;
    c->waiting = true;
}

/* ---- the timer thread ---------------------------------------------------- */

/* What happened in one summary period. */
struct summary {
    unsigned long ip, full, late, dropped;
    int open;
};

/* Takes the period's numbers and opens a new period (with g->mu held);
 * returns whether there is anything to say. */
static bool take_summary(struct http_guard *g, struct summary *s)
{
    struct http_guard_stats *t = &g->total, *r = &g->reported;
    s->ip = t->refused_ip - r->refused_ip;
    s->full = t->refused_full - r->refused_full;
    s->late = t->timed_out - r->timed_out;
    s->dropped = g->lib_dropped;
    s->open = g->open;
    *r = *t;
    g->lib_lines = 0;
    g->lib_dropped = 0;
    return s->ip != 0 || s->full != 0 || s->late != 0 || s->dropped != 0;
}

/* Logs a summary, without g->mu held: the log may block. */
static void log_summary(const struct summary *s, int period_ms)
{
    if (s->ip != 0 || s->full != 0 || s->late != 0)
        log_warn("connections in the last %d s: refused %lu over the "
                 "per-address limit and %lu over the connection limit; "
                 "closed %lu that sent no request header in time (open "
                 "now: %d)",
                 period_ms / 1000, s->ip, s->full, s->late, s->open);
    if (s->dropped != 0)
        log_warn("libmicrohttpd: %lu more messages in the last %d s not "
                 "logged",
                 s->dropped, period_ms / 1000);
}

static void *timer(void *arg)
{
    struct http_guard *g = arg;
    int64_t next_report = util_mono_ms() + g->conf.report_ms;
    pthread_mutex_lock(&g->mu);
    while (!g->stop) {
        int64_t now = util_mono_ms();
        while (g->wait_head != NULL && g->wait_head->deadline_ms <= now) {
            struct gconn *c = g->wait_head;
            shutdown(c->fd, SHUT_RDWR);
            c->timed_out = true;
            wait_unlink(g, c);
            g->total.timed_out++;
        }
        if (now >= next_report) {
            struct summary sum;
            next_report = now + g->conf.report_ms;
            if (take_summary(g, &sum)) {
                pthread_mutex_unlock(&g->mu);
                log_summary(&sum, g->conf.report_ms);
                pthread_mutex_lock(&g->mu);
                continue;
            }
        }
        int64_t wake = next_report;
        if (g->wait_head != NULL && g->wait_head->deadline_ms < wake)
            wake = g->wait_head->deadline_ms;
        struct timespec until = cond_at(wake);
        int rc = pthread_cond_timedwait(&g->cv, &g->mu, &until);
        if (rc != 0 && rc != ETIMEDOUT && rc != EINTR)
            break;
    }
    pthread_mutex_unlock(&g->mu);
    return NULL;
}

/* ---- the contract -------------------------------------------------------- */

tr_err http_guard_new(const struct http_guard_conf *conf,
                      struct http_guard **out, struct tr_errbuf *eb)
{
    if (conf->limit < 1 || conf->reserved < 0 ||
        conf->reserved >= conf->limit || conf->per_ip < 0)
        return tr_fail(eb, TR_ERR_CONFIG, "bad connection limits");
    struct http_guard *g = calloc(1, sizeof(*g));
    if (g == NULL)
        return tr_fail(eb, TR_ERR_NOMEM, "out of memory");
    g->conf = *conf;
    util_random(&g->seed, sizeof(g->seed));
    if (g->conf.report_ms < 1000)
        g->conf.report_ms = 1000;
    size_t cap = 64;
    while (cap < 2 * ((size_t)conf->limit + OVERSHOOT))
        cap *= 2;
    g->counts = calloc(cap, sizeof(*g->counts));
    if (g->counts == NULL) {
        free(g);
        return tr_fail(eb, TR_ERR_NOMEM, "out of memory");
    }
    g->count_mask = cap - 1;
    pthread_mutex_init(&g->mu, NULL);
    cond_init_mono(&g->cv);
    if (pthread_create(&g->thread, NULL, timer, g) != 0) {
        pthread_mutex_destroy(&g->mu);
        pthread_cond_destroy(&g->cv);
        free(g->counts);
        free(g);
        return tr_fail(eb, TR_ERR_INTERNAL,
                       "cannot start the connection timer thread");
    }
    *out = g;
    return TR_OK;
}

void http_guard_free(struct http_guard *g)
{
    if (g == NULL)
        return;
    pthread_mutex_lock(&g->mu);
    g->stop = true;
    pthread_cond_signal(&g->cv);
    pthread_mutex_unlock(&g->mu);
    pthread_join(g->thread, NULL);
    struct summary sum;
    if (take_summary(g, &sum))
        log_summary(&sum, g->conf.report_ms);
    pthread_mutex_destroy(&g->mu);
    pthread_cond_destroy(&g->cv);
    free(g->counts);
    free(g);
}

bool http_guard_accept(struct http_guard *g, const struct sockaddr *addr,
                       socklen_t len)
{
    struct key k;
    bool keyed = key_of(addr, len, &k);
    bool ok = true;
    pthread_mutex_lock(&g->mu);
    if (keyed && g->conf.per_ip > 0 && count_get(g, &k) >= g->conf.per_ip) {
        g->total.refused_ip++;
        ok = false;
    } else if (g->open >= g->conf.limit ||
               (g->open >= g->conf.limit - g->conf.reserved &&
                !(keyed && seen_recent(g, &k, util_mono_ms())))) {
        g->total.refused_full++;
        ok = false;
    }
    pthread_mutex_unlock(&g->mu);
    return ok;
}

void http_guard_open(struct http_guard *g, const struct sockaddr *addr,
                     socklen_t len, int fd, void **ctx)
{
    struct gconn *c = calloc(1, sizeof(*c));
    *ctx = c;
    if (c == NULL)
        return;
    c->keyed = key_of(addr, len, &c->key);
    c->fd = fd;
    pthread_mutex_lock(&g->mu);
    g->open++;
    if (c->keyed)
        count_add(g, &c->key);
    c->deadline_ms = util_mono_ms() + g->conf.header_ms;
    bool was_empty = g->wait_head == NULL;
    wait_append(g, c);
    if (was_empty) /* the timer may be asleep until the next summary */
        pthread_cond_signal(&g->cv);
    pthread_mutex_unlock(&g->mu);
}

void http_guard_request(struct http_guard *g, void *ctx)
{
    struct gconn *c = ctx;
    if (c == NULL)
        return;
    pthread_mutex_lock(&g->mu);
    wait_unlink(g, c);
    pthread_mutex_unlock(&g->mu);
}

void http_guard_refused(struct http_guard *g, void *ctx)
{
    struct gconn *c = ctx;
    if (c == NULL)
        return;
    pthread_mutex_lock(&g->mu);
    c->refused = true;
    pthread_mutex_unlock(&g->mu);
}

bool http_guard_close(struct http_guard *g, void *ctx)
{
    struct gconn *c = ctx;
    if (c == NULL)
        return false;
    pthread_mutex_lock(&g->mu);
    bool partial = (c->waiting && !c->timed_out) || c->refused;
    wait_unlink(g, c);
    g->open--;
    if (c->keyed)
        count_del(g, &c->key);
    pthread_mutex_unlock(&g->mu);
    free(c);
    return partial;
}

void http_guard_authenticated(struct http_guard *g, const struct sockaddr *addr,
                              socklen_t len)
{
    struct key k;
    if (!key_of(addr, len, &k))
        return;
    pthread_mutex_lock(&g->mu);
    seen_note(g, &k, util_mono_ms());
    pthread_mutex_unlock(&g->mu);
}

void http_guard_stats(struct http_guard *g, struct http_guard_stats *st)
{
    pthread_mutex_lock(&g->mu);
    *st = g->total;
    st->open = g->open;
    pthread_mutex_unlock(&g->mu);
}

void http_guard_lib_log(struct http_guard *g, const char *msg)
{
    pthread_mutex_lock(&g->mu);
    bool show = g->lib_lines < LIB_LINES;
    if (show)
        g->lib_lines++;
    else
        g->lib_dropped++;
    pthread_mutex_unlock(&g->mu);
    if (show)
        log_warn("libmicrohttpd: %s", msg);
}
