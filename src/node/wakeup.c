/*
 * wakeup.c - wake-ups across primaries: LISTEN terrace_jobs (leader.h).
 *
 * A job is queued with NOTIFY terrace_jobs carrying its id, in the
 * transaction that queues it (store_job_insert()).  Each primary listens
 * on a connection of its own and, on any notification, wakes its local
 * claimers through srv->run_signal; they look in the database for what
 * there is, so the payload is never trusted nor needed.  A notification
 * lost while the connection was down only delays a claim: the claim
 * loops still sweep periodically, and a reconnect wakes them once.
 *
 * The connection is pinged every WAKEUP_PING_MS, which both finds a dead
 * connection and keeps the server's idle_session_timeout (pgconn.c) from
 * ending a session that only listens.
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>

#include "core/log.h"
#include "core/util.h"
#include "domain/run.h"
#include "node/leader.h"
#include "node/pgconn.h"

#define WAKEUP_SLICE_MS 500 /* longest a stop waits */
#define WAKEUP_PING_MS 2000

struct wakeup {
    struct terrace_server *srv;
    pthread_t thread;
    atomic_bool stop;
};

static void nap(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* A listening connection, or NULL (warned once per outage). */
static struct pgconn *listen_conn(struct wakeup *w, bool *warned)
{
    struct tr_errbuf eb = {{0}};
    struct pgconn *pc = NULL;
    tr_err e = pgconn_open(w->srv->cfg.database_url, &pc, &eb);
    if (e == TR_OK)
        e = pgconn_exec(pc, "LISTEN terrace_jobs", 3000, NULL, 0, &eb);
    if (e != TR_OK) {
        pgconn_close(pc);
        if (!*warned)
            log_warn("job wake-ups from other primaries paused: %s", eb.msg);
        *warned = true;
        return NULL;
    }
    if (*warned)
        log_info("job wake-ups from other primaries resumed");
    *warned = false;
    return pc;
}

static void *loop(void *arg)
{
    struct wakeup *w = arg;
    struct pgconn *pc = NULL;
    bool warned = false;
    int64_t pinged = 0;
    while (!atomic_load(&w->stop)) {
        if (pc == NULL) {
            pc = listen_conn(w, &warned);
            if (pc == NULL) {
                for (int i = 0;
                     i < 1000 / WAKEUP_SLICE_MS && !atomic_load(&w->stop); i++)
                    nap(WAKEUP_SLICE_MS);
                continue;
            }
            pinged = util_now_ms();
            run_signal_notify(w->srv->run_signal); /* may have missed one */
        }
        struct tr_errbuf eb = {{0}};
        int n = 0;
        tr_err e = pgconn_wait(pc, WAKEUP_SLICE_MS, &n, &eb);
        if (e == TR_OK && n > 0) {
            log_debug("%d job wake-up(s) from postgresql", n);
            run_signal_notify(w->srv->run_signal);
        }
        if (e == TR_OK && util_now_ms() - pinged >= WAKEUP_PING_MS) {
            e = pgconn_exec(pc, "SELECT 1", WAKEUP_PING_MS, NULL, 0, &eb);
            pinged = util_now_ms();
        }
        if (e != TR_OK) {
            log_warn("job wake-ups from other primaries paused: %s", eb.msg);
            warned = true;
            pgconn_close(pc);
            pc = NULL;
        }
    }
    pgconn_close(pc);
    return NULL;
}

tr_err wakeup_start(struct terrace_server *srv, struct wakeup **out,
                    struct tr_errbuf *eb)
{
    struct wakeup *w = calloc(1, sizeof(*w));
    if (w == NULL)
        return tr_fail(eb, TR_ERR_NOMEM, "out of memory");
    w->srv = srv;
    atomic_init(&w->stop, false);
    if (pthread_create(&w->thread, NULL, loop, w) != 0) {
        free(w);
        return tr_fail(eb, TR_ERR_INTERNAL,
                       "cannot start the job wake-up thread");
    }
    *out = w;
    return TR_OK;
}

void wakeup_stop(struct wakeup *w)
{
    if (w == NULL)
        return;
    atomic_store(&w->stop, true);
    pthread_join(w->thread, NULL);
    free(w);
}
