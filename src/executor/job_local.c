/*
 * job_local.c - struct job_api in-process (see job_local.h).
 *
 * claim() turns a claimed job and its run into a struct job: the
 * workspace's name and working directory, the tool binary resolved from
 * the run's or the workspace's terraform-version (job_tool.c, which may
 * install it first), the effective variables
 * (the workspace's and its variable sets', decrypted; the run's own
 * variables win), and the run token minted by the claim.  If that fails
 * the reason goes to the phase's log, the job is finished errored at once
 * and claim() looks for the next one: the worker never sees a half-made
 * job.
 *
 * Every other operation first checks that the job is still running, so a
 * worker whose lease was lost (reaped, force-canceled) is told so
 * (TR_ERR_NOT_FOUND from heartbeat(), as job.h's executor expects) and
 * cannot touch the run any more.
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#include "executor/job_local.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "blob/blob.h"
#include "core/file.h"
#include "core/log.h"
#include "domain/run.h"
#include "executor/job_tool.h"
#include "store/store.h"

struct job_local {
    struct terrace_server *srv;
    struct job_local_opts o;
    struct job_api api;
};

void job_local_defaults(struct job_local_opts *o)
{
    memset(o, 0, sizeof(*o)); /* lease_ms 0: the node's job-lease */
}

/* ---- claim --------------------------------------------------------------- */

/* A JSON array text of strings into a C array in a. */
static const char **str_array(struct arena *a, const char *text, int *n)
{
    json_t *arr = json_loads(text != NULL ? text : "[]", 0, NULL);
    size_t len = json_is_array(arr) ? json_array_size(arr) : 0;
    const char **out = arena_alloc(a, sizeof(char *) * (len + 1));
    *n = 0;
    for (size_t i = 0; i < len; i++) {
        json_t *s = json_array_get(arr, i);
        if (json_is_string(s))
            out[(*n)++] = arena_strdup(a, json_string_value(s));
    }
    json_decref(arr);
    return out;
}

/* Effective variables: the workspace's (with sets), then the run's own
 * (terraform, HCL literals) replacing terraform variables of the same
 * key. */
static tr_err job_vars(struct terrace_server *srv, struct arena *a,
                       const struct st_run *r, struct job *j,
                       struct tr_errbuf *eb)
{
    struct st_var *vars = NULL;
    int nv = 0;
    tr_err e = store_vars_for_run(srv->db, srv->keys, a, r->workspace_id, &vars,
                                  &nv, eb);
    if (e != TR_OK)
        return e;
    const char *run_vars = "[]";
    e = run_variables(srv, a, r, &run_vars, eb);
    if (e != TR_OK)
        return e;
    json_t *rv = json_loads(run_vars, 0, NULL);
    size_t nr = json_is_array(rv) ? json_array_size(rv) : 0;
    j->vars = arena_alloc(a, sizeof(struct job_var) * ((size_t)nv + nr + 1));
    for (int i = 0; i < nv; i++)
        j->vars[j->nvars++] = (struct job_var){
            .key = vars[i].key,
            .value = vars[i].value ? vars[i].value : "",
            .env = util_streq(vars[i].category, "env"),
            .hcl = vars[i].hcl,
            .sensitive = vars[i].sensitive,
        };
    for (size_t k = 0; k < nr; k++) {
        json_t *o = json_array_get(rv, k);
        const char *key = json_string_value(json_object_get(o, "key"));
        const char *val = json_string_value(json_object_get(o, "value"));
        if (key == NULL || val == NULL)
            continue;
        struct job_var v = {.key = arena_strdup(a, key),
                            .value = arena_strdup(a, val),
                            .hcl = true};
        int at = j->nvars;
        for (int i = 0; i < j->nvars; i++)
            if (!j->vars[i].env && strcmp(j->vars[i].key, key) == 0)
                at = i;
        if (at == j->nvars)
            j->nvars++;
        j->vars[at] = v;
    }
    json_decref(rv);
    return TR_OK;
}

static tr_err fill_job(struct job_local *jl, struct arena *a,
                       const struct st_job *sj, const struct st_run *r,
                       char *token, struct job *j, struct tr_errbuf *eb)
{
    struct terrace_server *srv = jl->srv;
    struct st_workspace w;
    tr_err e = store_ws_get(srv->db, a, r->workspace_id, &w, eb);
    if (e != TR_OK)
        return e;
    struct st_org org;
    e = store_org_get(srv->db, a, w.org, &org, eb);
    if (e != TR_OK)
        return e;
    bool apply = util_streq(sj->phase, "apply");
    bool structured =
        store_settings_flag(w.settings, "structured-run-output-enabled");
    *j = (struct job){
        .id = sj->id,
        .phase = apply ? JOB_APPLY : JOB_PLAN,
        .run_id = r->id,
        .phase_id = sj->phase_id,
        .org = w.org,
        .org_id = org.id,
        .workspace = w.name,
        .workspace_id = w.id,
        .cv_id = r->cv_id,
        .working_directory = w.working_directory ? w.working_directory : "",
        .token = token,
        .api_url = srv->external_url,
        .ca_file = jl->o.ca_file,
        .speculative = r->plan_only,
        .is_destroy = r->is_destroy,
        .refresh = r->refresh,
        .refresh_only = r->refresh_only,
        .save_plan = r->save_plan,
        .structured = structured,
        .want_schemas = r->save_plan || structured,
        .timeout_s = apply ? jl->o.apply_timeout_s : jl->o.plan_timeout_s,
    };
    const char *want = r->terraform_version != NULL && *r->terraform_version
                           ? r->terraform_version
                           : w.terraform_version;
    e = job_tool_resolve(srv, a, sj->id, jl->o.lease_ms, want, &j->tool_path,
                         &j->tool_sha256, &j->tool_version, eb);
    if (e != TR_OK)
        return e;
    j->targets = str_array(a, r->target_addrs, &j->ntargets);
    j->replaces = str_array(a, r->replace_addrs, &j->nreplaces);
    return job_vars(srv, a, r, j, eb);
}

static tr_err jl_claim(void *ctx, struct arena *a, const char *node,
                       int wait_ms, struct job *out, struct tr_errbuf *eb)
{
    struct job_local *jl = ctx;
    struct terrace_server *srv = jl->srv;
    int64_t deadline = util_now_ms() + (wait_ms > 0 ? wait_ms : 0);
    for (;;) {
        uint64_t gen = run_signal_gen(srv->run_signal);
        struct st_job sj;
        struct st_run r;
        char *token = NULL;
        tr_err e = run_claim(srv, a, node, jl->o.lease_ms, &sj, &r, &token, eb);
        if (e == TR_OK) {
            struct tr_errbuf why = {{0}};
            e = fill_job(jl, a, &sj, &r, token, out, &why);
            if (e == TR_OK)
                return TR_OK;
            /* the worker never sees a job it cannot run */
            log_warn("run %s: job %s cannot start: %s", r.id, sj.id,
                     tr_errbuf_msg(&why, e));
            /* the user reads why in the phase's log */
            job_tool_log(srv, sj.id,
                         arena_printf(a, "Error: the run cannot start: %s\n",
                                      tr_errbuf_msg(&why, e)));
            struct run_result res = {.outcome = RUN_OUT_ERRORED,
                                     .error = tr_errbuf_msg(&why, e)};
            struct tr_errbuf eb2 = {{0}};
            run_finish(srv, a, sj.id, &res, &eb2);
            continue;
        }
        if (e != TR_ERR_NOT_FOUND)
            return e;
        int64_t left = deadline - util_now_ms();
        if (left <= 0)
            return tr_fail(eb, TR_ERR_NOT_FOUND, "no job is queued");
        run_signal_wait(srv->run_signal, gen, left > 60000 ? 60000 : (int)left);
    }
}

/* ---- the other operations ------------------------------------------------ */

/* The job if it is still running; TR_ERR_NOT_FOUND otherwise. */
static tr_err running_job(struct job_local *jl, struct arena *a, const char *id,
                          struct st_job *j, struct tr_errbuf *eb)
{
    tr_err e = store_job_get(jl->srv->db, a, id, j, eb);
    if (e == TR_OK && !util_streq(j->status, "running"))
        e = tr_fail(eb, TR_ERR_NOT_FOUND, "job %s is no longer running", id);
    return e;
}

static tr_err jl_heartbeat(void *ctx, const char *job_id, int *cancel,
                           struct tr_errbuf *eb)
{
    struct job_local *jl = ctx;
    struct arena *a = arena_new();
    tr_err e = run_heartbeat(jl->srv, a, job_id, jl->o.lease_ms, cancel, eb);
    arena_destroy(a);
    if (e == TR_ERR_CONFLICT) /* reaped or force-canceled: stop at once */
        e = tr_fail(eb, TR_ERR_NOT_FOUND, "job %s is no longer running",
                    job_id);
    return e;
}

static tr_err jl_append_log(void *ctx, const char *job_id, const char *data,
                            size_t len, struct tr_errbuf *eb)
{
    struct job_local *jl = ctx;
    struct arena *a = arena_new();
    tr_err e =
        store_log_append(jl->srv->db, jl->srv->keys, a, job_id, data, len, eb);
    arena_destroy(a);
    if (e == TR_ERR_CONFLICT)
        e = tr_fail(eb, TR_ERR_NOT_FOUND, "job %s is no longer running",
                    job_id);
    return e;
}

/* Writes blob key to dest_path (created 0600, replaced if present). */
static tr_err blob_to_file(struct blob *b, const char *key,
                           const char *dest_path, struct tr_errbuf *eb)
{
    struct blob_reader *in = NULL;
    uint64_t size = 0;
    tr_err e = blob_reader_open(b, key, &in, &size, eb);
    if (e != TR_OK)
        return e;
    int out = open(dest_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (out < 0) {
        blob_reader_close(in);
        return tr_fail(eb, TR_ERR_IO, "cannot create %s: %s", dest_path,
                       strerror(errno));
    }
    char buf[65536];
    for (uint64_t off = 0; e == TR_OK && off < size;) {
        size_t n = 0;
        e = blob_reader_pread(in, buf, sizeof(buf), off, &n, eb);
        if (e == TR_OK && n == 0)
            e = tr_fail(eb, TR_ERR_IO, "an object shrank while read");
        if (e == TR_OK)
            e = file_write_exact(out, buf, n, eb);
        off += n;
    }
    blob_reader_close(in);
    if (close(out) != 0 && e == TR_OK)
        e = tr_fail(eb, TR_ERR_IO, "cannot write %s", dest_path);
    return e;
}

static tr_err jl_fetch_config(void *ctx, const char *job_id,
                              const char *dest_path, struct tr_errbuf *eb)
{
    struct job_local *jl = ctx;
    struct arena *a = arena_new();
    struct st_job j;
    struct st_run r;
    struct st_cv cv;
    tr_err e = running_job(jl, a, job_id, &j, eb);
    if (e == TR_OK)
        e = store_run_get(jl->srv->db, a, j.run_id, &r, eb);
    if (e == TR_OK && r.cv_id == NULL)
        e = tr_fail(eb, TR_ERR_NOT_FOUND, "the run has no configuration");
    if (e == TR_OK)
        e = store_cv_get(jl->srv->db, a, r.cv_id, &cv, eb);
    if (e == TR_OK && cv.blob_key == NULL)
        e = tr_fail(eb, TR_ERR_NOT_FOUND,
                    "configuration version %s has no uploaded configuration",
                    cv.id);
    if (e == TR_OK)
        e = blob_to_file(jl->srv->blob, cv.blob_key, dest_path, eb);
    arena_destroy(a);
    return e;
}

static tr_err jl_fetch_plan(void *ctx, const char *job_id,
                            const char *dest_path, struct tr_errbuf *eb)
{
    struct job_local *jl = ctx;
    struct arena *a = arena_new();
    struct st_job j;
    struct st_run r;
    struct st_phase p;
    tr_err e = running_job(jl, a, job_id, &j, eb);
    if (e == TR_OK && !util_streq(j.phase, "apply"))
        e = tr_fail(eb, TR_ERR_INVALID, "only an apply job has a plan");
    if (e == TR_OK)
        e = store_run_get(jl->srv->db, a, j.run_id, &r, eb);
    if (e == TR_OK)
        e = store_phase_get(jl->srv->db, a, r.plan_id, &p, eb);
    if (e == TR_OK && p.plan_blob_key == NULL)
        e = tr_fail(eb, TR_ERR_NOT_FOUND, "the plan file was not stored");
    if (e == TR_OK)
        e = blob_to_file(jl->srv->blob, p.plan_blob_key, dest_path, eb);
    arena_destroy(a);
    return e;
}

static tr_err jl_finish(void *ctx, const char *job_id,
                        const struct job_result *res, struct tr_errbuf *eb)
{
    struct job_local *jl = ctx;
    static const enum run_outcome map[] = {
        [JOB_FINISHED] = RUN_OUT_FINISHED,
        [JOB_ERRORED] = RUN_OUT_ERRORED,
        [JOB_CANCELED] = RUN_OUT_CANCELED,
        [JOB_FORCE_CANCELED] = RUN_OUT_FORCE_CANCELED,
    };
    bool known =
        res->outcome >= JOB_FINISHED && res->outcome <= JOB_FORCE_CANCELED;
    struct run_result rr = {
        .outcome = known ? map[res->outcome] : RUN_OUT_ERRORED,
        .error = res->error,
        .has_changes = res->has_changes,
        .additions = res->additions,
        .changes = res->changes,
        .destructions = res->destructions,
        .imports = res->imports,
        .plan_file = res->plan_file,
        .json_plan_file = res->json_plan_file,
        .schemas_file = res->schemas_file,
    };
    struct arena *a = arena_new();
    tr_err e = run_finish(jl->srv, a, job_id, &rr, eb);
    arena_destroy(a);
    return e;
}

static tr_err jl_run_final(void *ctx, const char *run_id, bool *final,
                           struct tr_errbuf *eb)
{
    struct job_local *jl = ctx;
    struct arena *a = arena_new();
    struct st_run r;
    tr_err e = store_run_get(jl->srv->db, a, run_id, &r, eb);
    if (e == TR_ERR_NOT_FOUND) { /* its workspace was deleted */
        *final = true;
        e = TR_OK;
    } else if (e == TR_OK) {
        *final = run_is_final(r.status);
    }
    arena_destroy(a);
    return e;
}

tr_err job_local_new(struct terrace_server *srv, const struct job_local_opts *o,
                     struct job_local **out, struct tr_errbuf *eb)
{
    struct job_local *jl = calloc(1, sizeof(*jl));
    if (jl == NULL)
        return tr_fail(eb, TR_ERR_NOMEM, "out of memory");
    jl->srv = srv;
    jl->o = *o;
    if (jl->o.lease_ms <= 0)
        jl->o.lease_ms =
            srv->cfg.job_lease > 0 ? srv->cfg.job_lease * 1000 : 30000;
    jl->api = (struct job_api){
        .ctx = jl,
        .claim = jl_claim,
        .heartbeat = jl_heartbeat,
        .append_log = jl_append_log,
        .fetch_config = jl_fetch_config,
        .fetch_plan = jl_fetch_plan,
        .finish = jl_finish,
        .run_final = jl_run_final,
    };
    *out = jl;
    return TR_OK;
}

void job_local_free(struct job_local *jl)
{
    free(jl);
}

struct job_api *job_local_api(struct job_local *jl)
{
    return &jl->api;
}
