/*
 * reaper.c - lease expiry: run_expire() and the thread that calls it.
 *
 * A job whose lease ended (its worker stopped heartbeating: crashed,
 * partitioned, killed) errors its run with "the worker running this job
 * stopped responding"; the store step checks the lease again inside its
 * transaction, so a heartbeat that lands first wins.  Whatever the worker
 * had logged is compacted and kept.  An apply is never re-run: the run
 * ends errored, and the state the apply had written stays (state versions
 * are written by tofu itself as it goes).
 *
 * The lease clock stands still while no leader can reach the database:
 * workers cannot heartbeat then either (their server is the same), so
 * every lease would seem to end at once when it comes back and every
 * apply in flight would be errored with tofu still running.  Each pass
 * first ticks a clock kept in the database (store_job_lease_tick()): when
 * the last tick, by this leader or another, lies further back than a
 * tick, the leases of all running jobs are extended by the gap, giving
 * each worker a whole lease to heartbeat again; if that fails, the pass
 * reaps nothing.  Kept in the database, the clock also covers a leader
 * that lost the database and was elected again, and a follower that
 * takes over after an outage, which knew nothing of the last tick.

 * The thread sleeps on a condition variable with a timeout (so stopping it
 * is immediate); it is not on the dispatch path, which is woken by the
 * run signal.  Its passes run only while srv->is_leader is set: in a
 * cluster one primary reaps and schedules, the others idle.
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#include "domain/reaper.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <time.h>

#include "core/cond.h"
#include "core/log.h"
#include "domain/run_int.h"

#define REAPED_MSG "the worker running this job stopped responding"

/* Errors the run of one expired job. */
static tr_err reap(struct terrace_server *srv, struct arena *a,
                   const struct st_job *j, int64_t now_ms, bool *done,
                   struct tr_errbuf *eb)
{
    bool plan = util_streq(j->phase, "plan");
    const char *log_key = NULL;
    struct tr_errbuf eb2 = {{0}};
    if (run_compact_log(srv, a, j->phase_id, &log_key, &eb2) != TR_OK)
        log_warn("run %s: log not compacted: %s", j->run_id, eb2.msg);
    struct st_run_step s = {
        .run_id = j->run_id,
        .from = (const char *[]){plan ? "planning" : "applying", NULL},
        .job_id = j->id,
        .expired_before = now_ms,
        .to = "errored",
        .stamps = {"errored-at"},
        .plan_status = plan ? "errored" : NULL,
        .plan_stamp = plan ? "errored-at" : NULL,
        .apply_status = plan ? "unreachable" : "errored",
        .apply_stamp = plan ? "unreachable-at" : "errored-at",
        .plan_log_key = plan ? log_key : NULL,
        .apply_log_key = plan ? NULL : log_key,
        .end_jobs = true,
        .release = true,
        .error = REAPED_MSG,
        .event = "errored",
        .event_desc = REAPED_MSG,
    };
    tr_err e = run_step(srv, a, &s, NULL, eb);
    *done = e == TR_OK;
    if (e == TR_ERR_CONFLICT) /* a heartbeat or finish came first */
        return TR_OK;
    if (e == TR_OK)
        log_warn("run %s: %s job %s lease ended; run errored", j->run_id,
                 j->phase, j->id);
    return e;
}

tr_err run_expire(struct terrace_server *srv, struct arena *a, int64_t now_ms,
                  int *reaped, struct tr_errbuf *eb)
{
    struct st_job *jobs = NULL;
    int n = 0, count = 0;
    tr_err e = store_job_expired(srv->db, a, now_ms, &jobs, &n, eb);
    for (int i = 0; e == TR_OK && i < n; i++) {
        bool done = false;
        e = reap(srv, a, &jobs[i], now_ms, &done, eb);
        count += done;
    }
    const char **ws = NULL;
    int nws = 0;
    if (e == TR_OK)
        e = store_run_waiting_workspaces(srv->db, a, &ws, &nws, eb);
    for (int i = 0; e == TR_OK && i < nws; i++)
        e = run_schedule(srv, a, ws[i], eb);
    if (e == TR_OK)
        e = run_triggers_sweep(srv, a, eb);
    if (reaped != NULL)
        *reaped = count;
    return e;
}

/* ---- the thread ---------------------------------------------------------- */

struct reaper {
    struct terrace_server *srv;
    int interval_ms;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool stop;
};

/* One pass: the lease clock ticked (leases extended by the time no leader
 * reached the database), then run_expire(). */
static void pass(struct reaper *r, bool *failing)
{
    struct arena *a = arena_new();
    struct tr_errbuf eb = {{0}};
    int64_t now = util_now_ms(), gap = 0, n = 0;
    tr_err e =
        store_job_lease_tick(r->srv->db, a, now, r->interval_ms, &gap, &n, &eb);
    if (e == TR_OK && n > 0)
        log_warn("reaper: no leader reached the database for %lld ms; the "
                 "leases of %lld running jobs extended by as much",
                 (long long)gap, (long long)n);
    if (e == TR_OK)
        e = run_expire(r->srv, a, now, NULL, &eb);
    if (e == TR_OK) {
        if (*failing)
            log_info("reaper: the database is back");
        *failing = false;
    } else if (!*failing) { /* once per outage, not every tick */
        log_warn("reaper: %s", tr_errbuf_msg(&eb, e));
        *failing = true;
    }
    arena_destroy(a);
}

static void *loop(void *arg)
{
    struct reaper *r = arg;
    bool failing = false;
    pthread_mutex_lock(&r->mu);
    while (!r->stop) {
        pthread_mutex_unlock(&r->mu);
        /* a singleton loop: only the leader runs it (node/leader.h) */
        if (atomic_load(&r->srv->is_leader))
            pass(r, &failing);
        struct timespec until = cond_after(r->interval_ms);
        pthread_mutex_lock(&r->mu);
        int rc = 0;
        while (!r->stop && rc != ETIMEDOUT)
            rc = pthread_cond_timedwait(&r->cv, &r->mu, &until);
    }
    pthread_mutex_unlock(&r->mu);
    return NULL;
}

tr_err reaper_start(struct terrace_server *srv, int interval_ms,
                    struct reaper **out, struct tr_errbuf *eb)
{
    struct reaper *r = calloc(1, sizeof(*r));
    if (r == NULL)
        return TR_ERR_NOMEM;
    r->srv = srv;
    r->interval_ms = interval_ms < 10 ? 10 : interval_ms;
    pthread_mutex_init(&r->mu, NULL);
    cond_init_mono(&r->cv);
    if (pthread_create(&r->thread, NULL, loop, r) != 0) {
        pthread_mutex_destroy(&r->mu);
        pthread_cond_destroy(&r->cv);
        free(r);
        return tr_fail(eb, TR_ERR_INTERNAL, "cannot start the reaper thread");
    }
    *out = r;
    return TR_OK;
}

void reaper_stop(struct reaper *r)
{
    if (r == NULL)
        return;
    pthread_mutex_lock(&r->mu);
    r->stop = true;
    pthread_cond_signal(&r->cv);
    pthread_mutex_unlock(&r->mu);
    pthread_join(r->thread, NULL);
    pthread_mutex_destroy(&r->mu);
    pthread_cond_destroy(&r->cv);
    free(r);
}
