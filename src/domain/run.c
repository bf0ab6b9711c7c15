/*
 * run.c - the run state machine's API-driven transitions, the scheduler
 * and the job signal (see run.h for the drawn machine).
 *
 * Each transition function names the states it starts from and builds
 * one store step (store_run_step), which checks them again inside its
 * transaction.  An action that loses a race against another transition
 * looks at the run again and decides anew, a few times at most.  After a
 * step that queued a job the claimers are woken; after one that gave the
 * workspace back, the workspace's next waiting run is scheduled.
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#include "domain/run.h"

#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/cond.h"
#include "core/check.h"
#include "core/log.h"
#include "core/rfc3339.h"
#include "crypto/envelope.h"
#include "domain/run_int.h"

/* ---- the job signal ------------------------------------------------------ */

struct run_signal {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    uint64_t gen;
};

tr_err run_signal_new(struct run_signal **out)
{
    struct run_signal *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return TR_ERR_NOMEM;
    pthread_mutex_init(&s->mu, NULL);
    cond_init_mono(&s->cv);
    *out = s;
    return TR_OK;
}

void run_signal_free(struct run_signal *s)
{
    if (s == NULL)
        return;
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
    free(s);
}

void run_signal_notify(struct run_signal *s)
{
    if (s == NULL)
        return;
    pthread_mutex_lock(&s->mu);
    s->gen++;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

uint64_t run_signal_gen(struct run_signal *s)
{
    pthread_mutex_lock(&s->mu);
    uint64_t g = s->gen;
    pthread_mutex_unlock(&s->mu);
    return g;
}

bool run_signal_wait(struct run_signal *s, uint64_t seen, int timeout_ms)
{
    struct timespec until = cond_after(timeout_ms);
    pthread_mutex_lock(&s->mu);
    int rc = 0;
    while (s->gen == seen && rc != ETIMEDOUT)
        rc = pthread_cond_timedwait(&s->cv, &s->mu, &until);
    bool changed = s->gen != seen;
    pthread_mutex_unlock(&s->mu);
    return changed;
}

/* ---- states -------------------------------------------------------------- */

static bool in(const char *status, const char *const *set)
{
    for (int i = 0; set[i] != NULL; i++)
        if (util_streq(status, set[i]))
            return true;
    return false;
}

static const char *const final_states[] = {
    "applied",  "planned_and_finished", "discarded", "errored",
    "canceled", "force_canceled",       NULL,
};
/* Waiting for a person: confirm or discard. */
static const char *const confirmable[] = {"planned", "cost_estimated",
                                          "planned_and_saved", NULL};
static const char *const discardable[] = {
    "pending", "planned", "cost_estimated", "planned_and_saved", NULL};
/* Stopped at once by a cancel: no job runs yet. */
static const char *const cancel_now[] = {"pending", "plan_queued", "confirmed",
                                         "apply_queued", NULL};
static const char *const running[] = {"planning", "applying", NULL};

bool run_is_final(const char *status)
{
    return in(status, final_states);
}

/* The RFC 3339 time t as unix seconds (0 if unparsable). */
static int64_t iso_secs(const char *t)
{
    int64_t secs = 0;
    return rfc3339_parse(t, &secs, NULL) == TR_OK ? secs : 0;
}

void run_actions(const struct st_run *r, int64_t now, struct run_actions *out)
{
    bool run = in(r->status, running);
    out->is_cancelable = run || in(r->status, cancel_now);
    out->is_confirmable = !r->plan_only && in(r->status, confirmable);
    out->is_discardable = in(r->status, discardable);
    out->is_force_cancelable = run && r->force_cancel_at != NULL &&
                               now >= iso_secs(r->force_cancel_at);
}

const char *run_cost_estimate_status(const struct st_run *r)
{
    json_t *ts =
        json_loads(r->status_timestamps ? r->status_timestamps : "{}", 0, NULL);
    bool done = json_object_get(ts, "cost-estimated-at") != NULL;
    json_decref(ts);
    if (done)
        return "finished";
    if (util_streq(r->status, "errored"))
        return "errored";
    if (run_is_final(r->status))
        return "canceled";
    return util_streq(r->status, "pending") ? "pending" : "queued";
}

/* ---- steps --------------------------------------------------------------- */

tr_err run_step(struct terrace_server *srv, struct arena *a,
                const struct st_run_step *s, struct st_run *out,
                struct tr_errbuf *eb)
{
    TR_ASSERT(s->run_id != NULL && s->from != NULL && s->from[0] != NULL &&
              s->to != NULL);
    struct st_run r;
    tr_err e = store_run_step(srv->db, a, s, &r, eb);
    if (e != TR_OK)
        return e;
    log_info("run %s: %s", r.id, r.status);
    if (s->enqueue != 0)
        run_signal_notify(srv->run_signal);
    if (s->release || run_is_final(r.status)) {
        struct tr_errbuf eb2 = {{0}};
        tr_err e2 = run_schedule(srv, a, r.workspace_id, &eb2);
        if (e2 != TR_OK) /* the reaper's sweep retries it */
            log_warn("scheduling workspace %s: %s", r.workspace_id,
                     tr_errbuf_msg(&eb2, e2));
    }
    if (out != NULL)
        *out = r;
    return TR_OK;
}

tr_err run_schedule(struct terrace_server *srv, struct arena *a,
                    const char *ws_id, struct tr_errbuf *eb)
{
    const char *started = NULL;
    tr_err e = store_run_schedule(srv->db, a, ws_id, &started, eb);
    if (e == TR_OK && started != NULL) {
        log_info("run %s: owns workspace %s", started, ws_id);
        run_signal_notify(srv->run_signal);
    }
    return e;
}

/* Whether org has cost estimation enabled (its settings JSON). */
static bool org_estimates(struct terrace_server *srv, struct arena *a,
                          const char *org)
{
    struct st_org o;
    if (org == NULL || store_org_get(srv->db, a, org, &o, NULL) != TR_OK)
        return false;
    return store_settings_flag(o.settings, "cost-estimation-enabled");
}

tr_err run_create(struct terrace_server *srv, struct arena *a,
                  const struct st_run *in, struct st_run *out,
                  struct tr_errbuf *eb)
{
    struct st_run r = *in;
    r.id = util_new_id(a, "run");
    if (r.variables != NULL && strcmp(r.variables, "[]") != 0) {
        char *sealed = NULL;
        tr_err e = envelope_seal(srv->keys, a, r.variables, strlen(r.variables),
                                 &sealed, eb);
        if (e != TR_OK)
            return e;
        r.variables = sealed;
    }
    if (org_estimates(srv, a, in->org))
        r.cost_estimate_id = util_new_id(a, "ce");
    /* speculative and saved plans plan without the workspace */
    bool start = r.plan_only || r.save_plan;
    const char *stamps[] = {"plan-queueable-at",
                            start ? "plan-queued-at" : NULL, NULL};
    tr_err e = store_run_create(srv->db, a, &r, stamps, start, out, eb);
    if (e != TR_OK)
        return e;
    log_info("run %s: created in workspace %s (%s)", out->id, out->workspace_id,
             out->status);
    if (start) {
        run_signal_notify(srv->run_signal);
        return TR_OK;
    }
    /* the run exists now: a failed scheduling step is retried by the
     * reaper's sweep rather than reported as a failed create */
    struct tr_errbuf eb2 = {{0}};
    tr_err e2 = run_schedule(srv, a, r.workspace_id, &eb2);
    if (e2 != TR_OK)
        log_warn("scheduling workspace %s: %s", r.workspace_id,
                 tr_errbuf_msg(&eb2, e2));
    return store_run_get(srv->db, a, out->id, out, eb);
}

tr_err run_variables(struct terrace_server *srv, struct arena *a,
                     const struct st_run *r, const char **json,
                     struct tr_errbuf *eb)
{
    *json = "[]";
    if (r->variables == NULL || !envelope_is_sealed(r->variables)) {
        if (r->variables != NULL)
            *json = r->variables;
        return TR_OK;
    }
    char *plain = NULL;
    tr_err e = envelope_open(srv->keys, a, r->variables, &plain, NULL, eb);
    if (e == TR_OK)
        *json = plain;
    return e;
}

/* Runs build() against the current run until its step applies or the
 * action is refused; build returns TR_ERR_CONFLICT to refuse. */
typedef tr_err (*build_fn)(const struct st_run *r, struct st_run_step *s,
                           void *arg, struct arena *a, struct tr_errbuf *eb);

static tr_err act(struct terrace_server *srv, struct arena *a, const char *id,
                  build_fn build, void *arg, struct tr_errbuf *eb)
{
    tr_err e = TR_ERR_CONFLICT;
    for (int tries = 0; tries < 4; tries++) {
        struct st_run r;
        struct st_run_step s;
        memset(&s, 0, sizeof(s));
        e = store_run_get(srv->db, a, id, &r, eb);
        if (e == TR_OK)
            e = build(&r, &s, arg, a, eb);
        if (e == TR_OK)
            e = run_step(srv, a, &s, NULL, eb);
        if (e != TR_ERR_CONFLICT || s.run_id == NULL)
            return e; /* done, or refused by build() */
    }
    return e;
}

struct actor {
    const char *user;
};

static void one_from(struct st_run_step *s, const struct st_run *r,
                     struct arena *a)
{
    TR_ASSERT(r->id != NULL && r->status != NULL && s->run_id == NULL);
    const char **from = arena_alloc(a, sizeof(char *) * 2);
    from[0] = r->status;
    s->from = from;
    s->run_id = r->id;
}

static tr_err not_allowed(struct tr_errbuf *eb, const char *what,
                          const struct st_run *r)
{
    return tr_fail(eb, TR_ERR_CONFLICT, "the run cannot be %s while %s", what,
                   r->status);
}

static tr_err build_apply(const struct st_run *r, struct st_run_step *s,
                          void *arg, struct arena *a, struct tr_errbuf *eb)
{
    const struct actor *who = arg;
    struct run_actions act_;
    run_actions(r, util_now_unix(), &act_);
    if (!act_.is_confirmable)
        return not_allowed(eb, "applied", r);
    one_from(s, r, a);
    s->actor = who->user;
    s->event = "confirmed";
    s->event_desc = "Run confirmed";
    s->stamps[0] = "confirmed-at";
    if (r->save_plan) {
        /* a saved plan takes the workspace now, behind waiting runs */
        s->to = "confirmed";
        s->requeue = true;
        return TR_OK;
    }
    s->to = "apply_queued";
    s->stamps[1] = "apply-queued-at";
    s->apply_status = "queued";
    s->apply_stamp = "queued-at";
    s->enqueue = ST_APPLY;
    return TR_OK;
}

/* Records an action's comment. */
static tr_err add_comment(struct terrace_server *srv, struct arena *a,
                          const char *id, const char *actor,
                          const char *comment, struct tr_errbuf *eb)
{
    if (comment == NULL || *comment == '\0')
        return TR_OK;
    return store_comment_create(srv->db, a, id, comment, actor, NULL, eb);
}

/* An action taken by a person: the transition, then their comment (if
 * any) on the run. */
static tr_err act_commented(struct terrace_server *srv, struct arena *a,
                            const char *id, build_fn build, const char *actor,
                            const char *comment, struct tr_errbuf *eb)
{
    struct actor who = {actor};
    tr_err e = act(srv, a, id, build, &who, eb);
    if (e == TR_OK)
        e = add_comment(srv, a, id, actor, comment, eb);
    return e;
}

tr_err run_apply(struct terrace_server *srv, struct arena *a, const char *id,
                 const char *actor, const char *comment, struct tr_errbuf *eb)
{
    return act_commented(srv, a, id, build_apply, actor, comment, eb);
}

static tr_err build_discard(const struct st_run *r, struct st_run_step *s,
                            void *arg, struct arena *a, struct tr_errbuf *eb)
{
    const struct actor *who = arg;
    if (!in(r->status, discardable))
        return not_allowed(eb, "discarded", r);
    one_from(s, r, a);
    s->actor = who->user;
    s->to = "discarded";
    s->stamps[0] = "discarded-at";
    if (util_streq(r->status, "pending")) {
        s->plan_status = "unreachable";
        s->plan_stamp = "unreachable-at";
    }
    s->apply_status = "unreachable";
    s->apply_stamp = "unreachable-at";
    s->end_jobs = true;
    s->release = true;
    s->event = "discarded";
    s->event_desc = "Run discarded";
    return TR_OK;
}

tr_err run_discard(struct terrace_server *srv, struct arena *a, const char *id,
                   const char *actor, const char *comment, struct tr_errbuf *eb)
{
    return act_commented(srv, a, id, build_discard, actor, comment, eb);
}

static const char *force_cancel_time(struct arena *a)
{
    return util_iso_from_unix(a, util_now_unix() + RUN_FORCE_CANCEL_DELAY);
}

static tr_err build_cancel(const struct st_run *r, struct st_run_step *s,
                           void *arg, struct arena *a, struct tr_errbuf *eb)
{
    const struct actor *who = arg;
    bool now = in(r->status, cancel_now);
    if (!now && !in(r->status, running))
        return not_allowed(eb, "canceled", r);
    one_from(s, r, a);
    s->actor = who->user;
    if (r->force_cancel_at == NULL)
        s->force_cancel_at = force_cancel_time(a);
    if (!now) {
        /* the worker sees the request on its next heartbeat */
        s->to = r->status;
        s->cancel = 1;
        s->event = "cancel_requested";
        s->event_desc = "Cancel requested";
        return TR_OK;
    }
    bool applying = util_streq(r->status, "apply_queued") ||
                    util_streq(r->status, "confirmed");
    s->to = "canceled";
    s->stamps[0] = "canceled-at";
    if (applying) {
        s->apply_status = "canceled";
        s->apply_stamp = "canceled-at";
    } else {
        s->plan_status = "canceled";
        s->plan_stamp = "canceled-at";
        s->apply_status = "unreachable";
        s->apply_stamp = "unreachable-at";
    }
    s->end_jobs = true;
    s->release = true;
    s->event = "canceled";
    s->event_desc = "Run canceled";
    return TR_OK;
}

tr_err run_cancel(struct terrace_server *srv, struct arena *a, const char *id,
                  const char *actor, const char *comment, struct tr_errbuf *eb)
{
    return act_commented(srv, a, id, build_cancel, actor, comment, eb);
}

static tr_err build_force_cancel(const struct st_run *r, struct st_run_step *s,
                                 void *arg, struct arena *a,
                                 struct tr_errbuf *eb)
{
    const struct actor *who = arg;
    struct run_actions act_;
    run_actions(r, util_now_unix(), &act_);
    if (!act_.is_force_cancelable)
        return tr_fail(eb, TR_ERR_CONFLICT,
                       "a run can be force-canceled "
                       "only while planning or applying, after a cancel and "
                       "once force-cancel-available-at has passed");
    bool apply = util_streq(r->status, "applying");
    one_from(s, r, a);
    s->actor = who->user;
    s->to = "force_canceled";
    s->stamps[0] = "force-canceled-at";
    s->plan_status = apply ? NULL : "canceled";
    s->plan_stamp = apply ? NULL : "force-canceled-at";
    s->apply_status = apply ? "canceled" : "unreachable";
    s->apply_stamp = apply ? "force-canceled-at" : "unreachable-at";
    s->cancel = 2; /* the worker kills tofu; the run does not wait */
    s->end_jobs = true;
    s->release = true;
    s->event = "force_canceled";
    s->event_desc = "Run force-canceled";
    return TR_OK;
}

tr_err run_force_cancel(struct terrace_server *srv, struct arena *a,
                        const char *id, const char *actor, const char *comment,
                        struct tr_errbuf *eb)
{
    return act_commented(srv, a, id, build_force_cancel, actor, comment, eb);
}

/* Force-execute: the workspace's current run, if it waits for a person,
 * and every pending run before this one are discarded; then the
 * scheduler starts this one. */
tr_err run_force_execute(struct terrace_server *srv, struct arena *a,
                         const char *id, const char *actor,
                         struct tr_errbuf *eb)
{
    struct st_run r;
    tr_err e = store_run_get(srv->db, a, id, &r, eb);
    if (e != TR_OK)
        return e;
    if (!util_streq(r.status, "pending"))
        return not_allowed(eb, "force-executed", &r);
    const char *cur = NULL, *latest = NULL;
    struct st_run c;
    e = store_run_ws_runs(srv->db, a, r.workspace_id, &cur, &latest, eb);
    if (e == TR_OK && cur != NULL)
        e = store_run_get(srv->db, a, cur, &c, eb);
    if (e == TR_OK && cur != NULL && !in(c.status, discardable))
        return tr_fail(eb, TR_ERR_CONFLICT,
                       "the workspace's current run %s is %s", c.id, c.status);
    /* the runs before it first, so that none of them takes the workspace
     * when the current run lets it go */
    struct st_run_filter f = {.workspace_id = r.workspace_id,
                              .statuses = (const char *[]){"pending"},
                              .nstatuses = 1,
                              .oldest_first = true};
    struct st_run *ahead = NULL;
    int n = 0;
    int64_t total = 0;
    if (e == TR_OK)
        e = store_run_list(srv->db, a, &f, 0, 100, &ahead, &n, &total, eb);
    /* by queue position: creation times tie within a millisecond */
    for (int i = 0; e == TR_OK && i < n; i++)
        if (ahead[i].queue_seq < r.queue_seq && !ahead[i].plan_only &&
            !ahead[i].save_plan)
            e = run_discard(srv, a, ahead[i].id, actor, NULL, eb);
    if (e == TR_OK && cur != NULL)
        e = run_discard(srv, a, cur, actor, NULL, eb);
    if (e == TR_OK)
        e = run_schedule(srv, a, r.workspace_id, eb);
    return e;
}
