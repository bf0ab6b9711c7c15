/*
 * run_worker.c - the transitions workers drive: claiming a job (with its
 * run token), heartbeats, and finishing a phase (plan files, log
 * compaction, the run's next state, auto-apply).
 *
 * Data safety at finish: the plan files and the compacted log are made
 * durable in the blob store first (together: blob_put_all() overlaps
 * their writes); then one store step records their keys and moves the
 * run on.  A crash between leaves unreferenced blobs and the job running,
 * which the reaper then errors once its lease ends.  The JSON plan is
 * stored only after plan_redact() took the secrets out.  An auto-apply
 * plan may come without its JSON plan (job.defer_json): its apply makes
 * it (job.make_json) and brings it after its finish (run_attach_json()),
 * stored the same way and recorded on the plan.
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "blob/blob.h"
#include "core/buf.h"
#include "core/file.h"
#include "core/log.h"
#include "domain/plan_redact.h"
#include "domain/run_int.h"

#define PLAN_FILE_MAX ((size_t)256 * 1024 * 1024)
#define PLAN_JSON_MAX ((size_t)256 * 1024 * 1024)

/* ---- claim and heartbeat ------------------------------------------------- */

tr_err run_claim(struct terrace_server *srv, struct arena *a, const char *node,
                 int64_t lease_ms, struct st_job *job, struct st_run *run,
                 char **token, struct tr_errbuf *eb)
{
    /* the run token is minted in the claim's own transaction */
    const char *exp = util_iso_from_unix(a, util_now_unix() + RUN_TOKEN_TTL);
    tr_err e = store_job_claim(srv->db, a, node, util_now_ms() + lease_ms, job,
                               run, exp, token, eb);
    if (e == TR_OK)
        log_info("run %s: %s job %s claimed by %s", run->id, job->phase,
                 job->id, node);
    return e;
}

tr_err run_heartbeat(struct terrace_server *srv, struct arena *a,
                     const char *job_id, int64_t lease_ms, int *cancel,
                     struct tr_errbuf *eb)
{
    return store_job_heartbeat(srv->db, a, job_id, util_now_ms() + lease_ms,
                               cancel, eb);
}

/* ---- blobs --------------------------------------------------------------- */

/* Names of the workspace's sensitive terraform variables. */
static void secret_vars(struct terrace_server *srv, struct arena *a,
                        const char *ws_id, const char ***names, int *n)
{
    struct st_var *vars = NULL;
    int nv = 0;
    *names = NULL;
    *n = 0;
    if (srv->keys == NULL || store_vars_for_run(srv->db, srv->keys, a, ws_id,
                                                &vars, &nv, NULL) != TR_OK)
        return;
    *names = arena_alloc(a, sizeof(char *) * (size_t)(nv + 1));
    for (int i = 0; i < nv; i++)
        if (vars[i].sensitive)
            (*names)[(*n)++] = vars[i].key;
}

/* The plan file and the redacted JSON plans as blob items (it[*n...]),
 * read and redacted here; stored by the caller. */
static tr_err plan_items(struct terrace_server *srv, struct arena *a,
                         const struct st_run *r, const struct run_result *res,
                         struct blob_put_item *it, int *n, struct tr_errbuf *eb)
{
    if (res->plan_file != NULL) {
        /* sealed at rest by the blob store: it holds variable values */
        struct stat st;
        if (stat(res->plan_file, &st) != 0)
            return tr_fail(eb, TR_ERR_IO, "cannot read %s: %s", res->plan_file,
                           strerror(errno));
        if ((uint64_t)st.st_size > PLAN_FILE_MAX)
            return tr_fail(eb, TR_ERR_TOO_LARGE, "%s is larger than %zu bytes",
                           res->plan_file, PLAN_FILE_MAX);
        it[(*n)++] = (struct blob_put_item){
            .key = arena_printf(a, "runs/%s/plan.tfplan", r->id),
            .path = res->plan_file,
        };
    }
    if (res->json_plan_file == NULL)
        return TR_OK;
    char *json = NULL, *full = NULL, *red = NULL, *schemas = NULL;
    size_t len = 0, flen = 0, rlen = 0, slen = 0;
    const char **names = NULL;
    int nn = 0;
    secret_vars(srv, a, r->workspace_id, &names, &nn);
    tr_err e =
        file_read_all(a, res->json_plan_file, PLAN_JSON_MAX, &json, &len, eb);
    if (e == TR_OK && res->schemas_file != NULL)
        e = file_read_all(a, res->schemas_file, PLAN_JSON_MAX, &schemas, &slen,
                          eb);
    if (e == TR_OK)
        e = plan_redact(a, json, len, schemas, slen, names, nn, &full, &flen,
                        &red, &rlen, eb);
    if (e != TR_OK)
        return e;
    it[(*n)++] = (struct blob_put_item){
        .key = arena_printf(a, "runs/%s/plan.json", r->id),
        .data = full,
        .len = flen,
    };
    it[(*n)++] = (struct blob_put_item){
        .key = arena_printf(a, "runs/%s/plan-redacted.json", r->id),
        .data = red,
        .len = rlen,
    };
    return TR_OK;
}

/* The phase's log as one blob item, or *n unchanged when it is empty. */
static tr_err log_item(struct terrace_server *srv, struct arena *a,
                       const char *phase_id, struct blob_put_item *it, int *n,
                       struct tr_errbuf *eb)
{
    char *data = NULL;
    size_t len = 0;
    tr_err e = store_log_all(srv->db, srv->keys, a, phase_id, &data, &len, eb);
    if (e != TR_OK || len == 0)
        return e;
    it[(*n)++] = (struct blob_put_item){
        .key = arena_printf(a, "logs/%s.log", phase_id),
        .data = data,
        .len = len,
    };
    return TR_OK;
}

tr_err run_compact_log(struct terrace_server *srv, struct arena *a,
                       const char *phase_id, const char **key,
                       struct tr_errbuf *eb)
{
    struct blob_put_item it[1];
    int n = 0;
    *key = NULL;
    tr_err e = log_item(srv, a, phase_id, it, &n, eb);
    if (e == TR_OK && n > 0)
        e = blob_put_all(srv->blob, it, n, eb);
    if (e == TR_OK && n > 0)
        *key = it[0].key;
    return e;
}

/* The blobs of a finished phase, stored together: the plan files (plan,
 * finished) and the compacted log.  *plan_ok false: the plan files could
 * not be made or stored (pr then has no keys); *log_key NULL: the log
 * was not compacted (its chunks stay).  Both are logged here. */
static void store_blobs(struct terrace_server *srv, struct arena *a,
                        const struct st_run *r, const struct st_job *j,
                        const struct run_result *res, bool plan_files,
                        struct st_plan_result *pr, bool *plan_ok,
                        const char **log_key)
{
    struct blob_put_item it[4];
    int n = 0, nplan = 0;
    struct tr_errbuf eb = {{0}};
    *plan_ok = true;
    *log_key = NULL;
    if (plan_files && plan_items(srv, a, r, res, it, &n, &eb) != TR_OK) {
        log_error("run %s: storing the plan: %s", r->id, eb.msg);
        *plan_ok = false;
        n = 0;
    }
    nplan = n;
    if (log_item(srv, a, j->phase_id, it, &n, &eb) != TR_OK)
        log_warn("run %s: log not compacted: %s", r->id, eb.msg);
    blob_put_all(srv->blob, it, n, &eb);
    for (int i = 0; i < nplan; i++)
        if (it[i].e != TR_OK) {
            log_error("run %s: storing the plan: %s", r->id, it[i].eb.msg);
            *plan_ok = false;
        }
    if (n > nplan && it[nplan].e != TR_OK)
        log_warn("run %s: log not compacted: %s", r->id, it[nplan].eb.msg);
    else if (n > nplan)
        *log_key = it[nplan].key;
    if (!*plan_ok || nplan == 0)
        return;
    int k = 0;
    if (res->plan_file != NULL)
        pr->plan_blob_key = it[k++].key;
    if (k < nplan) {
        pr->json_blob_key = it[k++].key;
        pr->redacted_json_blob_key = it[k++].key;
    }
}

tr_err run_attach_json(struct terrace_server *srv, struct arena *a,
                       const char *job_id, const char *owner,
                       const char *json_plan_file, struct tr_errbuf *eb)
{
    struct st_job j;
    struct st_run r;
    struct st_phase p;
    tr_err e = store_job_get(srv->db, a, job_id, &j, eb);
    if (e == TR_ERR_NOT_FOUND)
        return tr_fail(eb, e, "job %s not found", job_id);
    if (e != TR_OK)
        return e;
    if (!util_streq(j.phase, "apply") || !util_streq(j.status, "done") ||
        (owner != NULL && !util_streq(j.node, owner)))
        return tr_fail(eb, TR_ERR_CONFLICT,
                       "job %s is not an ended apply of this node", job_id);
    e = store_run_get(srv->db, a, j.run_id, &r, eb);
    if (e == TR_OK)
        e = store_phase_get(srv->db, a, r.plan_id, &p, eb);
    if (e != TR_OK)
        return e;
    if (p.json_blob_key != NULL)
        return tr_fail(eb, TR_ERR_CONFLICT,
                       "the plan of run %s has its JSON plan already", r.id);
    struct run_result res = {.json_plan_file = json_plan_file};
    struct blob_put_item it[2];
    int n = 0;
    e = plan_items(srv, a, &r, &res, it, &n, eb);
    if (e == TR_OK)
        e = blob_put_all(srv->blob, it, n, eb);
    if (e == TR_OK)
        e = store_plan_json_set(srv->db, a, r.id, it[0].key, it[1].key, eb);
    if (e == TR_OK)
        log_info("run %s: the JSON plan made by its apply is stored", r.id);
    return e;
}

/* ---- finish -------------------------------------------------------------- */

/* Sets s for a phase that did not finish (errored or canceled). */
static void ended_badly(struct st_run_step *s, bool plan,
                        const struct run_result *res)
{
    const char *st = "errored", *stamp = "errored-at";
    if (res->outcome == RUN_OUT_CANCELED) {
        st = "canceled";
        stamp = "canceled-at";
    } else if (res->outcome == RUN_OUT_FORCE_CANCELED) {
        st = "force_canceled";
        stamp = "force-canceled-at";
    }
    bool err = res->outcome == RUN_OUT_ERRORED;
    s->to = st;
    s->stamps[0] = stamp;
    s->event = st;
    s->event_desc =
        err ? (plan ? "Plan errored" : "Apply errored") : "Run canceled";
    if (err)
        s->error = res->error != NULL
                       ? res->error
                       : (plan ? "the plan failed" : "the apply failed");
    const char *phase_st = err ? "errored" : "canceled";
    if (plan) {
        s->plan_status = phase_st;
        s->plan_stamp = stamp;
        s->apply_status = "unreachable";
        s->apply_stamp = "unreachable-at";
    } else {
        s->apply_status = phase_st;
        s->apply_stamp = stamp;
    }
    s->release = true;
}

/* Sets s for a plan that finished: where the run goes next. */
static void planned(struct st_run_step *s, const struct st_run *r,
                    const struct st_plan_result *pr)
{
    int k = 0;
    s->stamps[k++] = "planned-at";
    if (r->cost_estimate_id != NULL) {
        s->stamps[k++] = "cost-estimating-at";
        s->stamps[k++] = "cost-estimated-at";
    }
    s->plan_status = "finished";
    s->plan_stamp = "finished-at";
    s->plan_result = pr;
    s->event = "planned";
    s->event_desc = "Plan finished";
    bool nothing = !pr->has_changes && !r->allow_empty_apply;
    if (r->plan_only || nothing) {
        s->to = "planned_and_finished";
        s->stamps[k++] = "planned-and-finished-at";
        s->apply_status = "unreachable";
        s->apply_stamp = "unreachable-at";
        s->release = true;
    } else if (r->save_plan) {
        s->to = "planned_and_saved";
        s->stamps[k++] = "planned-and-saved-at";
        s->release = true;
    } else if (r->auto_apply) {
        s->to = "apply_queued";
        s->stamps[k++] = "confirmed-at";
        s->stamps[k++] = "apply-queued-at";
        s->apply_status = "queued";
        s->apply_stamp = "queued-at";
        s->enqueue = ST_APPLY;
        s->event = "confirmed";
        s->event_desc = "Plan finished; applying automatically";
    } else {
        s->to = r->cost_estimate_id != NULL ? "cost_estimated" : "planned";
    }
}

static void applied(struct st_run_step *s)
{
    s->to = "applied";
    s->stamps[0] = "applied-at";
    s->apply_status = "finished";
    s->apply_stamp = "finished-at";
    s->apply_counts = true;
    s->release = true;
    s->event = "applied";
    s->event_desc = "Apply finished";
    s->triggers = true;
}

tr_err run_finish(struct terrace_server *srv, struct arena *a,
                  const char *job_id, const struct run_result *res,
                  struct tr_errbuf *eb)
{
    struct st_job j;
    struct st_run r;
    tr_err e = store_job_get(srv->db, a, job_id, &j, eb);
    if (e == TR_OK && !util_streq(j.status, "running"))
        e = tr_fail(eb, TR_ERR_CONFLICT, "job is no longer running");
    if (e == TR_OK)
        e = store_run_get(srv->db, a, j.run_id, &r, eb);
    if (e != TR_OK)
        return e;
    bool plan = util_streq(j.phase, "plan");
    struct run_result out = *res;
    struct st_plan_result pr = {
        .has_changes = res->has_changes,
        .additions = res->additions,
        .changes = res->changes,
        .destructions = res->destructions,
        .imports = res->imports,
    };
    bool plan_ok = true;
    const char *log_key = NULL;
    /* an apply may bring the JSON of a plan stored without it */
    bool files =
        plan ? out.outcome == RUN_OUT_FINISHED : res->json_plan_file != NULL;
    store_blobs(srv, a, &r, &j, res, files, &pr, &plan_ok, &log_key);
    if (!plan_ok && plan) {
        out.outcome = RUN_OUT_ERRORED;
        out.error = "the plan could not be stored";
    }
    struct st_run_step s = {
        .run_id = r.id,
        .from = (const char *[]){plan ? "planning" : "applying", NULL},
        .job_id = j.id,
        .end_jobs = true,
        .plan_log_key = plan ? log_key : NULL,
        .apply_log_key = plan ? NULL : log_key,
        .plan_json_key = plan ? NULL : pr.json_blob_key,
        .plan_redacted_key = plan ? NULL : pr.redacted_json_blob_key,
    };
    if (out.outcome != RUN_OUT_FINISHED)
        ended_badly(&s, plan, &out);
    else if (plan)
        planned(&s, &r, &pr);
    else
        applied(&s);
    tr_err e3 = run_step(srv, a, &s, NULL, eb);
    if (e3 == TR_OK && s.triggers)
        run_triggers_fire(srv, a, &r);
    return e3;
}
