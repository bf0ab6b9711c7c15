/*
 * store_runs.c - runs with their plan and apply: create, read, list, the
 * transition step and the per-workspace scheduler step.
 *
 * Every change to a run after its creation goes through store_run_step()
 * (or the scheduler and claim, which are fixed steps): one transaction
 * that locks the workspace row, the run's job rows and the run row in that
 * order, checks the status the step starts from, and then writes the run,
 * its plan, apply, jobs, the workspace and a run event together.  So a
 * crash leaves a run either before or after a transition, never between,
 * and two racing transitions of one run are serialised with the loser
 * answered TR_ERR_CONFLICT.
 *
 * status_timestamps columns are JSON objects of TFE's keys
 * ("plan-queued-at", "queued-at", ...) to ISO times; a key is stamped once
 * and kept.
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/check.h"
#include "store/store_run_int.h"
#include "store/store_ws_int.h"

#define RUN_BASE_COLS                                                          \
    "r.id, r.workspace_id, w.org, r.cv_id, r.status, r.message,"               \
    " r.is_destroy, r.refresh, r.refresh_only, r.plan_only, r.save_plan,"      \
    " r.auto_apply, r.allow_empty_apply, r.has_changes, r.terraform_version,"  \
    " r.target_addrs, r.replace_addrs, r.variables, r.status_timestamps,"      \
    " r.error_message, r.created_by, r.source, r.force_cancel_at,"             \
    " r.cost_estimate_id, r.queue_seq, r.created_at, r.trigger_run_id,"        \
    " p.id AS plan_id,"                                                        \
    " ap.id AS apply_id, w.current_run_id"
/* One run's columns: RUN_BASE_COLS and its place in the queue, the
 * pending non-speculative runs of its workspace queued before it. */
#define RUN_COLS                                                               \
    RUN_BASE_COLS                                                              \
    ","                                                                        \
    " CASE WHEN r.status = 'pending' THEN (SELECT count(*) FROM runs q"        \
    "  WHERE q.workspace_id = r.workspace_id AND q.status = 'pending'"         \
    "  AND q.plan_only = 0 AND q.save_plan = 0"                                \
    "  AND q.queue_seq < r.queue_seq) ELSE 0 END AS ahead"
#define RUN_FROM                                                               \
    " FROM runs r JOIN workspaces w ON w.id = r.workspace_id"                  \
    " LEFT JOIN plans p ON p.run_id = r.id"                                    \
    " LEFT JOIN applies ap ON ap.run_id = r.id"

/* Runs that wait for their workspace: pending non-speculative runs and
 * confirmed saved plans (they plan without it, but apply with it). */
#define WAITING                                                                \
    "r.status IN ('pending', 'confirmed')"                                     \
    " AND ((r.status = 'pending' AND r.plan_only = 0 AND r.save_plan = 0)"     \
    " OR (r.status = 'confirmed' AND r.save_plan = 1))"

static void fill(const struct db_rows *r, int i, struct st_run *o)
{
    o->id = db_get(r, i, "id");
    o->workspace_id = db_get(r, i, "workspace_id");
    o->org = db_get(r, i, "org");
    o->cv_id = db_get(r, i, "cv_id");
    o->status = db_get(r, i, "status");
    o->message = db_get(r, i, "message");
    o->is_destroy = db_get_bool(r, i, "is_destroy");
    o->refresh = db_get_bool(r, i, "refresh");
    o->refresh_only = db_get_bool(r, i, "refresh_only");
    o->plan_only = db_get_bool(r, i, "plan_only");
    o->save_plan = db_get_bool(r, i, "save_plan");
    o->auto_apply = db_get_bool(r, i, "auto_apply");
    o->allow_empty_apply = db_get_bool(r, i, "allow_empty_apply");
    o->has_changes = db_get_bool(r, i, "has_changes");
    o->terraform_version = db_get(r, i, "terraform_version");
    o->target_addrs = db_get(r, i, "target_addrs");
    o->replace_addrs = db_get(r, i, "replace_addrs");
    o->variables = db_get(r, i, "variables");
    o->status_timestamps = db_get(r, i, "status_timestamps");
    o->error_message = db_get(r, i, "error_message");
    o->created_by = db_get(r, i, "created_by");
    o->source = db_get(r, i, "source");
    o->force_cancel_at = db_get(r, i, "force_cancel_at");
    o->cost_estimate_id = db_get(r, i, "cost_estimate_id");
    o->trigger_run_id = db_get(r, i, "trigger_run_id");
    o->queue_seq = db_get_i64(r, i, "queue_seq");
    o->created_at = db_get(r, i, "created_at");
    o->plan_id = db_get(r, i, "plan_id");
    o->apply_id = db_get(r, i, "apply_id");
    o->is_current = util_streq(db_get(r, i, "current_run_id"), o->id);
    o->ahead = db_get_i64(r, i, "ahead");
}

tr_err store_run_load(struct db_conn *c, struct arena *a, const char *id,
                      struct st_run *out, struct tr_errbuf *eb)
{
    struct db_rows *r = NULL;
    tr_err e =
        db_q(c, a, &r, eb, "SELECT " RUN_COLS RUN_FROM " WHERE r.id = $1", id);
    if (e == TR_OK && r->nrows == 0)
        e = tr_fail(eb, TR_ERR_NOT_FOUND, "run %s not found", id);
    if (e == TR_OK)
        fill(r, 0, out);
    return e;
}

tr_err store_run_get(struct db *db, struct arena *a, const char *id,
                     struct st_run *out, struct tr_errbuf *eb)
{
    struct db_conn *c = db_acquire(db);
    tr_err e = store_run_load(c, a, id, out, eb);
    db_release(c);
    return e;
}

char *store_run_stamp(struct arena *a, const char *json,
                      const char *const *keys, int nkeys, const char *now)
{
    json_t *o = json_loads(json != NULL ? json : "{}", 0, NULL);
    if (!json_is_object(o)) {
        json_decref(o);
        o = json_object();
    }
    for (int i = 0; i < nkeys; i++)
        if (keys[i] != NULL && json_object_get(o, keys[i]) == NULL)
            json_object_set_new(o, keys[i], json_string(now));
    char *txt = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
    char *out = arena_strdup(a, txt);
    free(txt);
    json_decref(o);
    return out;
}

static int nkeys(const char *const *keys, int max)
{
    int n = 0;
    while (keys != NULL && n < max && keys[n] != NULL)
        n++;
    return n;
}

tr_err store_run_event_add(struct db_conn *c, struct arena *a,
                           const char *run_id, const char *action,
                           const char *desc, const char *actor,
                           const char *comment_id, const char *now,
                           struct tr_errbuf *eb)
{
    struct db_rows *r = NULL;
    tr_err e = db_q(c, a, &r, eb,
                    "SELECT COALESCE(MAX(seq), 0) + 1 AS n FROM run_events"
                    " WHERE run_id = $1",
                    run_id);
    if (e != TR_OK)
        return e;
    e = db_x(c, a, NULL, eb,
             "INSERT INTO run_events (id, run_id, seq, action, description,"
             " actor_id, comment_id, created_at)"
             " VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
             util_new_id(a, "re"), run_id, db_get(r, 0, "n"), action,
             desc ? desc : "", actor, comment_id, now);
    /* the notifications the event announces, in the same transaction */
    if (e == TR_OK)
        e = store_notify_enqueue(c, a, run_id, action, now, eb);
    return e;
}

tr_err store_job_insert(struct db_conn *c, struct arena *a, const char *run_id,
                        int phase, const char *now, struct tr_errbuf *eb)
{
    const char *id = util_new_id(a, "job");
    tr_err e = db_x(c, a, NULL, eb,
                    "INSERT INTO jobs (id, run_id, phase, status, created_at,"
                    " seq) SELECT $1, $2, $3, 'queued', $4,"
                    " COALESCE(MAX(seq), 0) + 1 FROM jobs",
                    id, run_id, phase == ST_APPLY ? "apply" : "plan", now);
    /* wakes the claimers of every primary (node/wakeup.c) once the
     * transaction commits, and never if it rolls back; the id only */
    if (e == TR_OK && db_conn_kind(c) == DB_PG)
        e = db_x(c, a, NULL, eb, "SELECT pg_notify('terrace_jobs', $1)", id);
    return e;
}

static const char *b(bool v)
{
    return v ? "1" : "0";
}

/* Row lock on the workspace; TR_ERR_NOT_FOUND if it is gone. */
static tr_err lock_ws(struct db_conn *c, struct arena *a, const char *ws_id,
                      struct db_rows **r, struct tr_errbuf *eb)
{
    tr_err e = db_q(c, a, r, eb,
                    arena_printf(a,
                                 "SELECT id, current_run_id, locked,"
                                 " lock_kind, lock_holder FROM workspaces"
                                 " WHERE id = $1%s",
                                 db_for_update(c)),
                    ws_id);
    if (e == TR_OK && (*r)->nrows == 0)
        e = tr_fail(eb, TR_ERR_NOT_FOUND, "workspace %s not found", ws_id);
    return e;
}

tr_err store_run_create(struct db *db, struct arena *a, const struct st_run *in,
                        const char *const *stamps, bool start,
                        struct st_run *out, struct tr_errbuf *eb)
{
    const char *now = util_now_iso(a);
    char *ts = store_run_stamp(a, "{}", stamps, nkeys(stamps, 16), now);
    const char *plan_ts =
        start ? store_run_stamp(a, "{}", (const char *[]){"queued-at"}, 1, now)
              : "{}";
    struct db_conn *c = db_acquire(db);
    struct db_rows *w = NULL, *seq = NULL;
    tr_err e = db_begin(c, eb);
    if (e == TR_OK)
        e = lock_ws(c, a, in->workspace_id, &w, eb);
    if (e == TR_OK)
        e = db_q(c, a, &seq, eb,
                 "SELECT COALESCE(MAX(queue_seq), 0) + 1 AS n FROM runs"
                 " WHERE workspace_id = $1",
                 in->workspace_id);
    if (e == TR_OK)
        e = db_x(c, a, NULL, eb,
                 "INSERT INTO runs (id, workspace_id, cv_id, status, message,"
                 " is_destroy, refresh, refresh_only, plan_only, save_plan,"
                 " auto_apply, allow_empty_apply, terraform_version,"
                 " target_addrs, replace_addrs, variables, status_timestamps,"
                 " created_by, source, cost_estimate_id, queue_seq,"
                 " created_at, trigger_run_id) VALUES ($1, $2, $3, $4, $5,"
                 " $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17,"
                 " $18, $19, $20, $21, $22, $23)",
                 in->id, in->workspace_id, in->cv_id,
                 start ? "plan_queued" : "pending",
                 in->message ? in->message : "", b(in->is_destroy),
                 b(in->refresh), b(in->refresh_only), b(in->plan_only),
                 b(in->save_plan), b(in->auto_apply), b(in->allow_empty_apply),
                 in->terraform_version ? in->terraform_version : "",
                 in->target_addrs ? in->target_addrs : "[]",
                 in->replace_addrs ? in->replace_addrs : "[]",
                 in->variables ? in->variables : "[]", ts, in->created_by,
                 in->source ? in->source : "tfe-api", in->cost_estimate_id,
                 db_get(seq, 0, "n"), now, in->trigger_run_id);
    if (e == TR_OK)
        e = db_x(c, a, NULL, eb,
                 "INSERT INTO plans (id, run_id, status, status_timestamps)"
                 " VALUES ($1, $2, $3, $4)",
                 util_new_id(a, "plan"), in->id, start ? "queued" : "pending",
                 plan_ts);
    if (e == TR_OK)
        e = db_x(c, a, NULL, eb,
                 "INSERT INTO applies (id, run_id, status, status_timestamps)"
                 " VALUES ($1, $2, 'pending', '{}')",
                 util_new_id(a, "apply"), in->id);
    if (e == TR_OK && start)
        e = store_job_insert(c, a, in->id, ST_PLAN, now, eb);
    if (e == TR_OK)
        e = store_run_event_add(c, a, in->id, "created", "Run created",
                                in->created_by, NULL, now, eb);
    if (e == TR_OK && start)
        e = store_run_event_add(c, a, in->id, "plan_queued", "Plan queued",
                                NULL, NULL, now, eb);
    if (e == TR_OK && out != NULL)
        e = store_run_load(c, a, in->id, out, eb);
    if (e == TR_OK)
        e = db_commit(c, eb);
    db_release(c);
    return e;
}

/* ---- list -------------------------------------------------------------- */

/* " OR <condition>" for one TFE run operation ("" if unknown). */
static const char *operation_sql(const char *op)
{
    static const char *const ops[][2] = {
        {"plan_only", " OR r.plan_only = 1"},
        {"save_plan", " OR r.save_plan = 1"},
        {"destroy", " OR r.is_destroy = 1"},
        {"refresh_only", " OR r.refresh_only = 1"},
        {"empty_apply", " OR (r.allow_empty_apply = 1 AND r.plan_only = 0)"},
        {"plan_and_apply",
         " OR (r.plan_only = 0 AND r.save_plan = 0 AND r.is_destroy = 0"
         " AND r.refresh_only = 0 AND r.allow_empty_apply = 0)"},
    };
    for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++)
        if (strcmp(op, ops[i][0]) == 0)
            return ops[i][1];
    return "";
}

/* " WHERE ..." of a run list. */
static void list_where(struct sqlb *q, const struct st_run_filter *f)
{
    if (f->workspace_id != NULL)
        sqlb_addv(q, " WHERE r.workspace_id = ?", 1, f->workspace_id);
    else
        sqlb_addv(q, " WHERE w.org = ?", 1, f->org);
    if (f->nstatuses > 0) {
        sqlb_add(q, " AND r.status");
        sqlb_in(q, f->statuses, f->nstatuses);
    }
    if (f->noperations > 0) {
        sqlb_add(q, " AND (1 = 0");
        for (int i = 0; i < f->noperations; i++)
            sqlb_add(q, operation_sql(f->operations[i]));
        sqlb_add(q, ")");
    }
    if (f->nsources > 0) {
        sqlb_add(q, " AND r.source");
        sqlb_in(q, f->sources, f->nsources);
    }
    if (f->user_id != NULL)
        sqlb_addv(q, " AND r.created_by = ?", 1, f->user_id);
    if (f->search != NULL && *f->search != '\0') {
        const char *pat = store_like(q->a, "%", f->search, "%", false);
        sqlb_addv(q,
                  " AND (lower(r.id) LIKE lower(?) ESCAPE '\\'"
                  " OR lower(r.message) LIKE lower(?) ESCAPE '\\')",
                  2, pat, pat);
    }
}

/* The places in the queue of a page's pending runs (RUN_COLS's "ahead",
 * which a list does not select: counted per run, a page of 100 pending
 * runs is 100 scans of up to 100 entries): the queues of their
 * workspaces in one statement on the runs_ahead index, counted here. */
static tr_err queue_places(struct db_conn *c, struct arena *a,
                           struct st_run *runs, int n, struct tr_errbuf *eb)
{
    const char **ws = arena_alloc(a, sizeof(char *) * (size_t)(n + 1));
    int nws = 0;
    for (int i = 0; i < n; i++) {
        if (!util_streq(runs[i].status, "pending"))
            continue;
        int k = 0;
        while (k < nws && !util_streq(ws[k], runs[i].workspace_id))
            k++;
        if (k == nws)
            ws[nws++] = runs[i].workspace_id;
    }
    if (nws == 0)
        return TR_OK;
    struct sqlb q;
    sqlb_init(&q, a,
              "SELECT workspace_id, queue_seq FROM runs WHERE status ="
              " 'pending' AND plan_only = 0 AND save_plan = 0"
              " AND workspace_id");
    sqlb_in(&q, ws, nws);
    struct db_rows *r = NULL;
    tr_err e = sqlb_query(c, &q, &r, NULL, eb);
    for (int i = 0; e == TR_OK && i < n; i++) {
        if (!util_streq(runs[i].status, "pending"))
            continue;
        for (int k = 0; k < r->nrows; k++)
            runs[i].ahead += util_streq(db_get(r, k, "workspace_id"),
                                        runs[i].workspace_id) &&
                             db_get_i64(r, k, "queue_seq") < runs[i].queue_seq;
    }
    return e;
}

tr_err store_run_list(struct db *db, struct arena *a,
                      const struct st_run_filter *f, int offset, int limit,
                      struct st_run **out, int *n, int64_t *total,
                      struct tr_errbuf *eb)
{
    struct sqlb w;
    sqlb_init(&w, a, "");
    list_where(&w, f);
    tr_err e = sqlb_check(&w, eb);
    if (e != TR_OK)
        return e;
    const char *sel = arena_printf(
        a, "SELECT " RUN_BASE_COLS ", 0 AS ahead" RUN_FROM "%s ORDER BY %s",
        w.sql,
        f->oldest_first ? "r.created_at, r.queue_seq, r.id"
                        : "r.created_at DESC, r.queue_seq DESC, r.id DESC");
    const char *count =
        arena_printf(a,
                     "SELECT count(*) AS n FROM runs r"
                     " JOIN workspaces w ON w.id = r.workspace_id%s",
                     w.sql);
    struct db_conn *c = db_acquire(db);
    struct db_rows *r = NULL;
    e = db_page(c, a, sel, count, w.n, w.params, offset, limit, &r, total, eb);
    struct st_run *runs = NULL;
    if (e == TR_OK) {
        runs = arena_alloc(a, sizeof(*runs) * (size_t)(r->nrows + 1));
        for (int i = 0; i < r->nrows; i++)
            fill(r, i, &runs[i]);
        e = queue_places(c, a, runs, r->nrows, eb);
    }
    db_release(c);
    if (e != TR_OK)
        return e;
    *out = runs;
    *n = r->nrows;
    return TR_OK;
}

tr_err store_run_by_cost_estimate(struct db *db, struct arena *a,
                                  const char *ce_id, struct st_run *out,
                                  struct tr_errbuf *eb)
{
    struct db_conn *c = db_acquire(db);
    struct db_rows *r = NULL;
    tr_err e = db_q(
        c, a, &r, eb,
        "SELECT " RUN_COLS RUN_FROM " WHERE r.cost_estimate_id = $1", ce_id);
    db_release(c);
    if (e == TR_OK && r->nrows == 0)
        e = tr_fail(eb, TR_ERR_NOT_FOUND, "cost estimate %s not found", ce_id);
    if (e == TR_OK)
        fill(r, 0, out);
    return e;
}

/* ---- plans and applies ------------------------------------------------- */

#define PHASE_COLS                                                             \
    "id, run_id, status, additions, changes, destructions, imports,"           \
    " log_blob_key, status_timestamps"

/* The node that ran a phase of table t: its registry name, else what
 * the claimer called itself (an in-process worker). */
#define PHASE_NODE(t, phase)                                                   \
    "(SELECT COALESCE(n.name, j.node) FROM jobs j"                             \
    " LEFT JOIN nodes n ON n.id = j.node WHERE j.run_id = " t ".run_id"        \
    " AND j.phase = '" phase "' AND j.node IS NOT NULL"                        \
    " ORDER BY j.seq DESC LIMIT 1) AS execution_node"

tr_err store_phase_get(struct db *db, struct arena *a, const char *id,
                       struct st_phase *out, struct tr_errbuf *eb)
{
    bool plan = strncmp(id, "plan-", 5) == 0;
    static const char plan_sql[] =
        "SELECT " PHASE_COLS ", has_changes, plan_blob_key, json_blob_key,"
        " redacted_json_blob_key, " PHASE_NODE(
            "plans", "plan") " FROM plans WHERE id = $1";
    static const char apply_sql[] =
        "SELECT " PHASE_COLS
        ", " PHASE_NODE("applies", "apply") " FROM applies WHERE id = $1";
    const char *sql = plan ? plan_sql : apply_sql;
    struct db_conn *c = db_acquire(db);
    struct db_rows *r = NULL;
    tr_err e = db_q(c, a, &r, eb, sql, id);
    db_release(c);
    if (e == TR_OK && r->nrows == 0)
        e = tr_fail(eb, TR_ERR_NOT_FOUND, "%s %s not found",
                    plan ? "plan" : "apply", id);
    if (e != TR_OK)
        return e;
    *out = (struct st_phase){
        .id = db_get(r, 0, "id"),
        .run_id = db_get(r, 0, "run_id"),
        .is_plan = plan,
        .status = db_get(r, 0, "status"),
        .additions = db_get_i64(r, 0, "additions"),
        .changes = db_get_i64(r, 0, "changes"),
        .destructions = db_get_i64(r, 0, "destructions"),
        .imports = db_get_i64(r, 0, "imports"),
        .has_changes = db_get_bool(r, 0, "has_changes"),
        .log_blob_key = db_get(r, 0, "log_blob_key"),
        .plan_blob_key = db_get(r, 0, "plan_blob_key"),
        .json_blob_key = db_get(r, 0, "json_blob_key"),
        .redacted_json_blob_key = db_get(r, 0, "redacted_json_blob_key"),
        .status_timestamps = db_get(r, 0, "status_timestamps"),
        .execution_node = db_get(r, 0, "execution_node"),
    };
    return TR_OK;
}

/* On c: the JSON plans of run_id's plan, unless it has them; *n (nullable)
 * gets the rows changed. */
static tr_err plan_json_set_on(struct db_conn *c, struct arena *a,
                               const char *run_id, const char *json_key,
                               const char *redacted_key, int64_t *n,
                               struct tr_errbuf *eb)
{
    return db_x(c, a, n, eb,
                "UPDATE plans SET json_blob_key = $2,"
                " redacted_json_blob_key = $3 WHERE run_id = $1"
                " AND json_blob_key IS NULL",
                run_id, json_key, redacted_key);
}

tr_err store_plan_json_set(struct db *db, struct arena *a, const char *run_id,
                           const char *json_key, const char *redacted_key,
                           struct tr_errbuf *eb)
{
    struct db_conn *c = db_acquire(db);
    int64_t n = 0;
    tr_err e = plan_json_set_on(c, a, run_id, json_key, redacted_key, &n, eb);
    db_release(c);
    if (e == TR_OK && n == 0)
        e = tr_fail(eb, TR_ERR_CONFLICT,
                    "the plan of run %s has its JSON plan already", run_id);
    return e;
}

/* ---- the step ---------------------------------------------------------- */

static bool status_in(const char *status, const char *const *from)
{
    for (int i = 0; from != NULL && from[i] != NULL; i++)
        if (util_streq(status, from[i]))
            return true;
    return false;
}

tr_err store_phase_set(struct db_conn *c, struct arena *a, bool plan,
                       const char *run_id, const char *status,
                       const char *stamp, const char *now, struct tr_errbuf *eb)
{
    const char *table = plan ? "plans" : "applies";
    struct db_rows *r = NULL;
    tr_err e = db_q(c, a, &r, eb,
                    arena_printf(a,
                                 "SELECT status_timestamps FROM %s"
                                 " WHERE run_id = $1",
                                 table),
                    run_id);
    if (e != TR_OK || r->nrows == 0)
        return e;
    char *ts = store_run_stamp(a, db_get(r, 0, "status_timestamps"),
                               (const char *[]){stamp}, 1, now);
    return db_x(c, a, NULL, eb,
                arena_printf(a,
                             "UPDATE %s SET status = $2,"
                             " status_timestamps = $3 WHERE run_id = $1",
                             table),
                run_id, status, ts);
}

static tr_err step_plan_result(struct db_conn *c, struct arena *a,
                               const char *run_id,
                               const struct st_plan_result *p,
                               struct tr_errbuf *eb)
{
    char n[4][24];
    const int64_t v[4] = {p->additions, p->changes, p->destructions,
                          p->imports};
    for (int i = 0; i < 4; i++)
        snprintf(n[i], sizeof(n[i]), "%lld", (long long)v[i]);
    tr_err e =
        db_x(c, a, NULL, eb,
             "UPDATE plans SET has_changes = $2, additions = $3,"
             " changes = $4, destructions = $5, imports = $6,"
             " plan_blob_key = $7, json_blob_key = $8,"
             " redacted_json_blob_key = $9 WHERE run_id = $1",
             run_id, b(p->has_changes), n[0], n[1], n[2], n[3],
             p->plan_blob_key, p->json_blob_key, p->redacted_json_blob_key);
    if (e == TR_OK)
        e = db_x(c, a, NULL, eb,
                 "UPDATE runs SET has_changes = $2 WHERE id = $1", run_id,
                 b(p->has_changes));
    return e;
}

static tr_err step_log(struct db_conn *c, struct arena *a, bool plan,
                       const char *run_id, const char *key,
                       struct tr_errbuf *eb)
{
    const char *table = plan ? "plans" : "applies";
    tr_err e = db_x(c, a, NULL, eb,
                    arena_printf(a,
                                 "DELETE FROM log_chunks WHERE phase_id ="
                                 " (SELECT id FROM %s WHERE run_id = $1)",
                                 table),
                    run_id);
    if (e == TR_OK)
        e = db_x(c, a, NULL, eb,
                 arena_printf(a,
                              "UPDATE %s SET log_blob_key = $2"
                              " WHERE run_id = $1",
                              table),
                 run_id, key);
    return e;
}

/* The run gives its workspace back: current_run_id, and the lock if the
 * run holds it (a pending state version of the run's dies with it). */
static tr_err release_ws(struct db_conn *c, struct arena *a, const char *ws_id,
                         const char *run_id, struct tr_errbuf *eb)
{
    int64_t n = 0;
    tr_err e = db_x(c, a, NULL, eb,
                    "UPDATE workspaces SET current_run_id = NULL"
                    " WHERE id = $1 AND current_run_id = $2",
                    ws_id, run_id);
    if (e == TR_OK)
        e = db_x(c, a, &n, eb,
                 "UPDATE workspaces SET locked = 0, lock_kind = NULL,"
                 " lock_holder = NULL, lock_reason = ''"
                 " WHERE id = $1 AND locked = 1 AND lock_kind = 'run'"
                 " AND lock_holder = $2",
                 ws_id, run_id);
    if (e == TR_OK && n > 0)
        e = db_x(c, a, NULL, eb,
                 "UPDATE state_versions SET status = 'discarded'"
                 " WHERE workspace_id = $1 AND status = 'pending'",
                 ws_id);
    return e;
}

/* Locks and checks the start condition of s; *cur gets the run row. */
static tr_err step_check(struct db_conn *c, struct arena *a,
                         const struct st_run_step *s, const char *ws_id,
                         struct db_rows **cur, struct tr_errbuf *eb)
{
    struct db_rows *w = NULL, *jobs = NULL;
    tr_err e = lock_ws(c, a, ws_id, &w, eb);
    if (e == TR_OK)
        e = db_q(c, a, &jobs, eb,
                 arena_printf(a,
                              "SELECT id, status, lease_until FROM jobs"
                              " WHERE run_id = $1 ORDER BY id%s",
                              db_for_update(c)),
                 s->run_id);
    if (e == TR_OK)
        e = db_q(c, a, cur, eb,
                 arena_printf(a,
                              "SELECT status, status_timestamps, queue_seq"
                              " FROM runs WHERE id = $1%s",
                              db_for_update(c)),
                 s->run_id);
    if (e == TR_OK && (*cur)->nrows == 0)
        return tr_fail(eb, TR_ERR_NOT_FOUND, "run %s not found", s->run_id);
    if (e != TR_OK)
        return e;
    const char *status = db_get(*cur, 0, "status");
    if (!status_in(status, s->from))
        return tr_fail(eb, TR_ERR_CONFLICT, "run is %s", status);
    if (s->job_id == NULL)
        return TR_OK;
    for (int i = 0; i < jobs->nrows; i++) {
        if (!util_streq(db_get(jobs, i, "id"), s->job_id))
            continue;
        if (!util_streq(db_get(jobs, i, "status"), "running"))
            break;
        if (s->expired_before > 0 &&
            db_get_i64(jobs, i, "lease_until") >= s->expired_before)
            return tr_fail(eb, TR_ERR_CONFLICT, "job lease is still valid");
        return TR_OK;
    }
    return tr_fail(eb, TR_ERR_CONFLICT, "job is no longer running");
}

/* The run's own row: status, stamps, error, cancel time, queue place. */
static tr_err step_run_row(struct db_conn *c, struct arena *a,
                           const struct st_run_step *s, const char *ws_id,
                           const struct db_rows *cur, const char *now,
                           struct tr_errbuf *eb)
{
    char *ts = store_run_stamp(a, db_get(cur, 0, "status_timestamps"),
                               s->stamps, nkeys(s->stamps, 6), now);
    tr_err e = db_x(c, a, NULL, eb,
                    "UPDATE runs SET status = $2, status_timestamps = $3"
                    " WHERE id = $1",
                    s->run_id, s->to, ts);
    if (e == TR_OK && s->error != NULL)
        e = db_x(c, a, NULL, eb,
                 "UPDATE runs SET error_message = $2 WHERE id = $1", s->run_id,
                 s->error);
    if (e == TR_OK && s->force_cancel_at != NULL)
        e = db_x(c, a, NULL, eb,
                 "UPDATE runs SET force_cancel_at = $2 WHERE id = $1",
                 s->run_id, s->force_cancel_at);
    if (e == TR_OK && s->requeue)
        e = db_x(c, a, NULL, eb,
                 "UPDATE runs SET queue_seq = (SELECT MAX(queue_seq) + 1"
                 " FROM runs WHERE workspace_id = $2) WHERE id = $1",
                 s->run_id, ws_id);
    return e;
}

/* Jobs, token and workspace. */
static tr_err step_jobs(struct db_conn *c, struct arena *a,
                        const struct st_run_step *s, const char *ws_id,
                        const char *now, struct tr_errbuf *eb)
{
    tr_err e = TR_OK;
    if (s->cancel > 0)
        e = db_x(c, a, NULL, eb,
                 "UPDATE jobs SET cancel = $2 WHERE run_id = $1"
                 " AND status = 'running' AND cancel < $2",
                 s->run_id, s->cancel >= 2 ? "2" : "1");
    if (e == TR_OK && s->end_jobs)
        e = db_x(c, a, NULL, eb,
                 "UPDATE jobs SET status = 'done' WHERE run_id = $1"
                 " AND status <> 'done'",
                 s->run_id);
    if (e == TR_OK && s->end_jobs)
        e = db_x(c, a, NULL, eb,
                 "DELETE FROM tokens WHERE kind = 'run' AND subject = $1",
                 s->run_id);
    if (e == TR_OK && s->enqueue != 0)
        e = store_job_insert(c, a, s->run_id, s->enqueue, now, eb);
    if (e == TR_OK && s->release)
        e = release_ws(c, a, ws_id, s->run_id, eb);
    return e;
}

static tr_err step_apply(struct db_conn *c, struct arena *a,
                         const struct st_run_step *s, const char *ws_id,
                         const struct db_rows *cur, struct tr_errbuf *eb)
{
    const char *now = util_now_iso(a);
    tr_err e = step_run_row(c, a, s, ws_id, cur, now, eb);
    if (e == TR_OK && s->plan_result != NULL)
        e = step_plan_result(c, a, s->run_id, s->plan_result, eb);
    if (e == TR_OK && s->plan_json_key != NULL)
        e = plan_json_set_on(c, a, s->run_id, s->plan_json_key,
                             s->plan_redacted_key, NULL, eb);
    if (e == TR_OK && s->plan_status != NULL)
        e = store_phase_set(c, a, true, s->run_id, s->plan_status,
                            s->plan_stamp, now, eb);
    if (e == TR_OK && s->apply_status != NULL)
        e = store_phase_set(c, a, false, s->run_id, s->apply_status,
                            s->apply_stamp, now, eb);
    if (e == TR_OK && s->apply_counts)
        e = db_x(c, a, NULL, eb,
                 "UPDATE applies SET"
                 " additions = (SELECT additions FROM plans WHERE run_id = $1),"
                 " changes = (SELECT changes FROM plans WHERE run_id = $1),"
                 " destructions = (SELECT destructions FROM plans"
                 "  WHERE run_id = $1),"
                 " imports = (SELECT imports FROM plans WHERE run_id = $1)"
                 " WHERE run_id = $1",
                 s->run_id);
    if (e == TR_OK && s->plan_log_key != NULL)
        e = step_log(c, a, true, s->run_id, s->plan_log_key, eb);
    if (e == TR_OK && s->apply_log_key != NULL)
        e = step_log(c, a, false, s->run_id, s->apply_log_key, eb);
    if (e == TR_OK)
        e = step_jobs(c, a, s, ws_id, now, eb);
    if (e == TR_OK && s->triggers)
        e = db_x(c, a, NULL, eb,
                 "UPDATE runs SET triggers_pending = 1 WHERE id = $1"
                 " AND EXISTS (SELECT 1 FROM run_triggers t"
                 " WHERE t.source_id = $2)",
                 s->run_id, ws_id);
    if (e == TR_OK && s->event != NULL)
        e = store_run_event_add(c, a, s->run_id, s->event, s->event_desc,
                                s->actor, NULL, now, eb);
    return e;
}

tr_err store_run_step(struct db *db, struct arena *a,
                      const struct st_run_step *s, struct st_run *out,
                      struct tr_errbuf *eb)
{
    TR_ASSERT(s->run_id != NULL && s->to != NULL && s->from != NULL);
    struct st_run before;
    struct db_rows *cur = NULL;
    struct db_conn *c = db_acquire(db);
    /* the workspace id never changes, so it is read before locking */
    tr_err e = store_run_load(c, a, s->run_id, &before, eb);
    if (e == TR_OK)
        e = db_begin(c, eb);
    if (e == TR_OK)
        e = step_check(c, a, s, before.workspace_id, &cur, eb);
    if (e == TR_OK)
        e = step_apply(c, a, s, before.workspace_id, cur, eb);
    if (e == TR_OK && out != NULL)
        e = store_run_load(c, a, s->run_id, out, eb);
    if (e == TR_OK)
        e = db_commit(c, eb);
    db_release(c);
    return e;
}

/* ---- scheduler --------------------------------------------------------- */

/* Starts run (row r of the waiting query) as the workspace's current run. */
static tr_err take_workspace(struct db_conn *c, struct arena *a,
                             const char *ws_id, const struct db_rows *r,
                             struct tr_errbuf *eb)
{
    const char *id = db_get(r, 0, "id");
    bool apply = util_streq(db_get(r, 0, "status"), "confirmed");
    const char *now = util_now_iso(a);
    const char *key = apply ? "apply-queued-at" : "plan-queued-at";
    char *ts = store_run_stamp(a, db_get(r, 0, "status_timestamps"),
                               (const char *[]){key}, 1, now);
    tr_err e = db_x(c, a, NULL, eb,
                    "UPDATE workspaces SET locked = 1, lock_kind = 'run',"
                    " lock_holder = $2, lock_reason = 'Locked by run',"
                    " current_run_id = $2 WHERE id = $1",
                    ws_id, id);
    if (e == TR_OK)
        e = db_x(c, a, NULL, eb,
                 "UPDATE runs SET status = $2, status_timestamps = $3"
                 " WHERE id = $1",
                 id, apply ? "apply_queued" : "plan_queued", ts);
    if (e == TR_OK)
        e = store_phase_set(c, a, !apply, id, "queued", "queued-at", now, eb);
    if (e == TR_OK)
        e = store_job_insert(c, a, id, apply ? ST_APPLY : ST_PLAN, now, eb);
    if (e == TR_OK)
        e = store_run_event_add(
            c, a, id, apply ? "apply_queued" : "plan_queued",
            apply ? "Apply queued" : "Plan queued", NULL, NULL, now, eb);
    return e;
}

tr_err store_run_schedule(struct db *db, struct arena *a, const char *ws_id,
                          const char **started, struct tr_errbuf *eb)
{
    struct db_conn *c = db_acquire(db);
    struct db_rows *w = NULL, *r = NULL;
    const char *run = NULL;
    tr_err e = db_begin(c, eb);
    if (e == TR_OK)
        e = lock_ws(c, a, ws_id, &w, eb);
    if (e == TR_OK && db_get(w, 0, "current_run_id") == NULL)
        e = db_q(c, a, &r, eb,
                 arena_printf(a,
                              "SELECT r.id, r.status, r.status_timestamps"
                              " FROM runs r WHERE r.workspace_id = $1"
                              " AND " WAITING " ORDER BY r.queue_seq LIMIT 1%s",
                              db_for_update(c)),
                 ws_id);
    if (e == TR_OK && r != NULL && r->nrows == 1) {
        const char *id = db_get(r, 0, "id");
        bool free_ = !db_get_bool(w, 0, "locked") ||
                     (util_streq(db_get(w, 0, "lock_kind"), "run") &&
                      util_streq(db_get(w, 0, "lock_holder"), id));
        if (free_) {
            e = take_workspace(c, a, ws_id, r, eb);
            run = id;
        }
    }
    if (e == TR_OK)
        e = db_commit(c, eb);
    db_release(c);
    if (e == TR_OK && started != NULL)
        *started = run;
    return e;
}

tr_err store_run_waiting_workspaces(struct db *db, struct arena *a,
                                    const char ***ids, int *n,
                                    struct tr_errbuf *eb)
{
    struct db_conn *c = db_acquire(db);
    struct db_rows *r = NULL;
    tr_err e = db_q(c, a, &r, eb,
                    "SELECT DISTINCT r.workspace_id FROM runs r"
                    " JOIN workspaces w ON w.id = r.workspace_id"
                    " WHERE w.current_run_id IS NULL AND " WAITING " LIMIT $1",
                    "1000");
    db_release(c);
    if (e != TR_OK)
        return e;
    const char **out = arena_alloc(a, sizeof(char *) * (size_t)(r->nrows + 1));
    for (int i = 0; i < r->nrows; i++)
        out[i] = db_get(r, i, "workspace_id");
    *ids = out;
    *n = r->nrows;
    return TR_OK;
}

tr_err store_run_ws_runs(struct db *db, struct arena *a, const char *ws_id,
                         const char **current, const char **latest,
                         struct tr_errbuf *eb)
{
    struct db_conn *c = db_acquire(db);
    struct db_rows *r = NULL;
    tr_err e = db_q(c, a, &r, eb,
                    "SELECT w.current_run_id, (SELECT id FROM runs"
                    " WHERE workspace_id = w.id ORDER BY queue_seq DESC"
                    " LIMIT 1) AS latest FROM workspaces w WHERE w.id = $1",
                    ws_id);
    db_release(c);
    if (e == TR_OK && r->nrows == 0)
        e = tr_fail(eb, TR_ERR_NOT_FOUND, "workspace %s not found", ws_id);
    if (e != TR_OK)
        return e;
    *current = db_get(r, 0, "current_run_id");
    *latest = db_get(r, 0, "latest");
    return TR_OK;
}

tr_err store_run_ws_shown(struct db *db, struct arena *a, const char *ws_id,
                          const char **run_id, struct tr_errbuf *eb)
{
    struct db_conn *c = db_acquire(db);
    struct db_rows *r = NULL;
    tr_err e = db_q(c, a, &r, eb,
                    "SELECT " STORE_WS_CURRENT_RUN_SQL " AS shown"
                    " FROM workspaces w WHERE w.id = $1",
                    ws_id);
    db_release(c);
    if (e == TR_OK && r->nrows == 0)
        e = tr_fail(eb, TR_ERR_NOT_FOUND, "workspace %s not found", ws_id);
    if (e == TR_OK)
        *run_id = db_get(r, 0, "shown");
    return e;
}
