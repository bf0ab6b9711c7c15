/*
 * job_service.c - the job service (see job_service.h).
 *
 * claim() turns a claimed job and its run into a struct job: the
 * workspace's name and working directory, the tool binary resolved from
 * the run's or the workspace's terraform-version (executor/job_tool.c,
 * which may install it first), the effective variables (the workspace's
 * and its variable sets', decrypted; the run's own variables win), and
 * the run token minted by the claim.  If that fails the reason goes to
 * the phase's log, the job is finished errored at once and claim() looks
 * for the next one: a worker never sees a half-made job.
 *
 * Every other operation first checks that the job is still running and,
 * given an owner, that the owner holds it, so a worker whose lease was
 * lost (reaped, force-canceled) cannot touch the run any more.
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#include "domain/job_service.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "blob/blob.h"
#include "core/fault.h"
#include "core/file.h"
#include "core/log.h"
#include "crypto/envelope.h"
#include "domain/run.h"
#include "executor/job_tool.h"
#include "store/store.h"

/* A parked claim; lives in the claimer's arena. */
struct parked {
    const char *node;
    int64_t deadline_ms;
    job_service_done_fn done;
    void *arg;
    struct parked *next;
};

/* A claim handed to a remote node and not yet known to be confirmed:
 * unless a heartbeat moved its lease by due, it is queued again. */
struct unconfirmed {
    char job[64];
    char node[64];
    int64_t lease_until; /* as the claim set it */
    int64_t due;         /* util_now_ms() clock */
    struct unconfirmed *next;
};

struct job_service {
    struct terrace_server *srv;
    struct job_service_opts o;
    struct unconfirmed *pend; /* under mu; the waiter thread checks it */
    /* parked claims, FIFO, and the waiter thread serving them */
    pthread_mutex_t mu;
    pthread_cond_t cv; /* a claim was parked, or stopping */
    struct parked *head, **tail;
    bool started, stopping;
    pthread_t waiter;
};

void job_service_defaults(struct job_service_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->lease_ms = 0; /* the node's job-lease setting */
    o->sweep_ms = 60000;
    /* the node confirms from a worker it starts for the job: on a busy
     * machine (a hundred nodes on two cores) that took more than 5 s */
    o->confirm_ms = 10000;
}

int64_t job_service_lease_ms(const struct job_service *js)
{
    return js->o.lease_ms;
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

static tr_err fill_job(struct job_service *js, struct arena *a,
                       const struct st_job *sj, const struct st_run *r,
                       char *token, struct job *j, struct tr_errbuf *eb)
{
    struct terrace_server *srv = js->srv;
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
        .speculative = r->plan_only,
        .is_destroy = r->is_destroy,
        .refresh = r->refresh,
        .refresh_only = r->refresh_only,
        .save_plan = r->save_plan,
        .structured = structured,
        .want_schemas = r->save_plan || structured,
        /* nothing reads the JSON of such a plan before its apply */
        .defer_json = !apply && r->auto_apply && !r->plan_only &&
                      !r->save_plan && !structured && !r->refresh_only,
        .timeout_s = apply ? js->o.apply_timeout_s : js->o.plan_timeout_s,
    };
    const char *want = r->terraform_version != NULL && *r->terraform_version
                           ? r->terraform_version
                           : w.terraform_version;
    e = job_tool_resolve(srv, a, sj->id, js->o.lease_ms, want, &j->tool_path,
                         &j->tool_sha256, &j->tool_version, eb);
    if (e != TR_OK)
        return e;
    if (w.ssh_key_id != NULL) {
        const char *sealed = NULL;
        char *key = NULL;
        e = store_ssh_key_value(srv->db, a, w.ssh_key_id, &sealed, eb);
        if (e == TR_OK)
            e = envelope_open(srv->keys, a, sealed, &key, NULL, eb);
        if (e != TR_OK)
            return e;
        j->ssh_key = key;
    }
    if (apply) {
        /* a plan stored without its JSON (defer_json) */
        struct st_phase p;
        e = store_phase_get(srv->db, a, r->plan_id, &p, eb);
        if (e != TR_OK)
            return e;
        j->make_json = p.plan_blob_key != NULL && p.json_blob_key == NULL;
    }
    j->targets = str_array(a, r->target_addrs, &j->ntargets);
    j->replaces = str_array(a, r->replace_addrs, &j->nreplaces);
    return job_vars(srv, a, r, j, eb);
}

/* job_service_claim(); *lease_until (nullable) gets the claim's lease. */
static tr_err claim(struct job_service *js, struct arena *a, const char *node,
                    int wait_ms, struct job *out, int64_t *lease_until,
                    struct tr_errbuf *eb)
{
    struct terrace_server *srv = js->srv;
    int64_t deadline = util_now_ms() + (wait_ms > 0 ? wait_ms : 0);
    for (;;) {
        uint64_t gen = run_signal_gen(srv->run_signal);
        struct st_job sj;
        struct st_run r;
        char *token = NULL;
        tr_err e = run_claim(srv, a, node, js->o.lease_ms, &sj, &r, &token, eb);
        if (e == TR_OK) {
            struct tr_errbuf why = {{0}};
            e = fill_job(js, a, &sj, &r, token, out, &why);
            if (e == TR_OK && lease_until != NULL)
                *lease_until = sj.lease_until;
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
        int slice = js->o.sweep_ms > 0 ? js->o.sweep_ms : 60000;
        run_signal_wait(srv->run_signal, gen, left > slice ? slice : (int)left);
    }
}

tr_err job_service_claim(struct job_service *js, struct arena *a,
                         const char *node, int wait_ms, struct job *out,
                         struct tr_errbuf *eb)
{
    return claim(js, a, node, wait_ms, out, NULL, eb);
}

static void *waiter_main(void *arg);

/* Starts the waiter thread if it is not running; js->mu held. */
static bool start_waiter_locked(struct job_service *js)
{
    if (!js->started && !js->stopping)
        js->started = pthread_create(&js->waiter, NULL, waiter_main, js) == 0;
    return js->started && !js->stopping;
}

/* Remembers a claim handed to node for the confirmation check. */
static void expect_confirm(struct job_service *js, const char *job,
                           const char *node, int64_t lease_until)
{
    struct unconfirmed *u = calloc(1, sizeof(*u));
    if (u == NULL || strlen(job) >= sizeof(u->job) ||
        strlen(node) >= sizeof(u->node)) {
        free(u); /* left to its lease */
        return;
    }
    snprintf(u->job, sizeof(u->job), "%s", job);
    snprintf(u->node, sizeof(u->node), "%s", node);
    u->lease_until = lease_until;
    u->due = util_now_ms() + js->o.confirm_ms;
    pthread_mutex_lock(&js->mu);
    bool ok = start_waiter_locked(js);
    if (ok) {
        u->next = js->pend;
        js->pend = u;
        pthread_cond_signal(&js->cv);
    }
    pthread_mutex_unlock(&js->mu);
    if (!ok)
        free(u);
}

tr_err job_service_claim_remote(struct job_service *js, struct arena *a,
                                const char *node, struct job *out,
                                struct tr_errbuf *eb)
{
    int64_t lease = 0;
    tr_err e = claim(js, a, node, 0, out, &lease, eb);
    if (e == TR_OK && js->o.confirm_ms > 0)
        expect_confirm(js, out->id, node, lease);
    return e;
}

/* Claims past their due time: each one still holding the lease its claim
 * gave is queued again (store_job_requeue()); the others were confirmed
 * or have ended.  Returns the earliest due time left (INT64_MAX: none). */
static int64_t check_confirms(struct job_service *js)
{
    int64_t now = util_now_ms(), next = INT64_MAX;
    struct unconfirmed *due = NULL;
    pthread_mutex_lock(&js->mu);
    for (struct unconfirmed **pp = &js->pend; *pp != NULL;) {
        struct unconfirmed *u = *pp;
        if (u->due <= now || js->stopping) {
            *pp = u->next;
            u->next = due;
            due = u;
            continue;
        }
        if (u->due < next)
            next = u->due;
        pp = &u->next;
    }
    bool stopping = js->stopping;
    pthread_mutex_unlock(&js->mu);
    bool requeued = false;
    for (struct unconfirmed *u = due, *n; u != NULL; u = n) {
        n = u->next;
        struct arena *a = stopping ? NULL : arena_new();
        struct tr_errbuf eb = {{0}};
        tr_err e = a != NULL ? store_job_requeue(js->srv->db, a, u->job,
                                                 u->node, u->lease_until, &eb)
                             : TR_ERR_CONFLICT;
        if (e == TR_OK) {
            log_warn("job %s: node %s did not confirm its claim within %lld "
                     "ms; queued again (it never started)",
                     u->job, u->node, (long long)js->o.confirm_ms);
            requeued = true;
        } else if (e != TR_ERR_CONFLICT) {
            log_warn("job %s: cannot queue an unconfirmed claim again (%s); "
                     "its lease decides",
                     u->job, tr_errbuf_msg(&eb, e));
        }
        if (a != NULL)
            arena_destroy(a);
        free(u);
    }
    if (requeued)
        run_signal_notify(js->srv->run_signal);
    return next;
}

/* ---- the other operations ------------------------------------------------ */

/* The job if it is still running and, with owner, held by owner. */
static tr_err held_job(struct job_service *js, struct arena *a, const char *id,
                       const char *owner, struct st_job *j,
                       struct tr_errbuf *eb)
{
    tr_err e = store_job_get(js->srv->db, a, id, j, eb);
    if (e == TR_ERR_NOT_FOUND)
        return tr_fail(eb, e, "job %s not found", id);
    if (e != TR_OK)
        return e;
    if (!util_streq(j->status, "running") ||
        (owner != NULL && !util_streq(j->node, owner)))
        return tr_fail(eb, TR_ERR_CONFLICT, "the job is no longer this node's");
    return TR_OK;
}

tr_err job_service_heartbeat(struct job_service *js, const char *job_id,
                             const char *owner, int *cancel,
                             struct tr_errbuf *eb)
{
    struct arena *a = arena_new();
    struct st_job j;
    /* in process the store's own running check is enough */
    tr_err e = owner != NULL ? held_job(js, a, job_id, owner, &j, eb) : TR_OK;
    if (e == TR_OK)
        e = run_heartbeat(js->srv, a, job_id, js->o.lease_ms, cancel, eb);
    if (e == TR_ERR_CONFLICT) /* reaped or force-canceled meanwhile */
        e = tr_fail(eb, e, "the job is no longer this node's");
    arena_destroy(a);
    return e;
}

tr_err job_service_append_log(struct job_service *js, const char *job_id,
                              const char *owner, const void *data, size_t len,
                              int64_t offset, struct tr_errbuf *eb)
{
    struct arena *a = arena_new();
    struct st_job j;
    tr_err e = owner != NULL ? held_job(js, a, job_id, owner, &j, eb) : TR_OK;
    if (e == TR_OK)
        e = store_log_append(js->srv->db, js->srv->keys, a, job_id, data, len,
                             offset, eb);
    if (e == TR_OK && fault_hit("log.appended"))
        e = tr_fail(eb, TR_ERR_UNAVAILABLE, "injected fault");
    if (e == TR_ERR_CONFLICT)
        e = tr_fail(eb, e, "the job is no longer this node's");
    arena_destroy(a);
    return e;
}

tr_err job_service_reader_to_file(struct blob_reader *in, uint64_t size,
                                  const char *dest_path, struct tr_errbuf *eb)
{
    int out = open(dest_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (out < 0)
        return tr_fail(eb, TR_ERR_IO, "cannot create %s: %s", dest_path,
                       strerror(errno));
    char buf[65536];
    tr_err e = TR_OK;
    for (uint64_t off = 0; e == TR_OK && off < size;) {
        size_t n = 0;
        e = blob_reader_pread(in, buf, sizeof(buf), off, &n, eb);
        if (e == TR_OK && n == 0)
            e = tr_fail(eb, TR_ERR_IO, "an object shrank while read");
        if (e == TR_OK)
            e = file_write_exact(out, buf, n, eb);
        off += n;
    }
    if (close(out) != 0 && e == TR_OK)
        e = tr_fail(eb, TR_ERR_IO, "cannot write %s", dest_path);
    return e;
}

tr_err job_service_open_config(struct job_service *js, struct arena *a,
                               const char *job_id, const char *owner,
                               struct blob_reader **rd, uint64_t *size,
                               struct tr_errbuf *eb)
{
    struct terrace_server *srv = js->srv;
    struct st_job j;
    struct st_run r;
    struct st_cv cv;
    tr_err e = held_job(js, a, job_id, owner, &j, eb);
    if (e == TR_OK)
        e = store_run_get(srv->db, a, j.run_id, &r, eb);
    if (e == TR_OK && r.cv_id == NULL)
        e = tr_fail(eb, TR_ERR_NOT_FOUND, "the run has no configuration");
    if (e == TR_OK)
        e = store_cv_get(srv->db, a, r.cv_id, &cv, eb);
    if (e == TR_OK && cv.blob_key == NULL)
        e = tr_fail(eb, TR_ERR_NOT_FOUND,
                    "configuration version %s has no uploaded configuration",
                    cv.id);
    if (e == TR_OK)
        e = blob_reader_open(srv->blob, cv.blob_key, rd, size, eb);
    return e;
}

tr_err job_service_open_plan(struct job_service *js, struct arena *a,
                             const char *job_id, const char *owner,
                             struct blob_reader **rd, uint64_t *size,
                             struct tr_errbuf *eb)
{
    struct terrace_server *srv = js->srv;
    struct st_job j;
    struct st_run r;
    struct st_phase p;
    tr_err e = held_job(js, a, job_id, owner, &j, eb);
    if (e == TR_OK && !util_streq(j.phase, "apply"))
        e = tr_fail(eb, TR_ERR_NOT_FOUND, "only an apply job has a plan");
    if (e == TR_OK)
        e = store_run_get(srv->db, a, j.run_id, &r, eb);
    if (e == TR_OK)
        e = store_phase_get(srv->db, a, r.plan_id, &p, eb);
    if (e == TR_OK && p.plan_blob_key == NULL)
        e = tr_fail(eb, TR_ERR_NOT_FOUND, "the plan file was not stored");
    if (e == TR_OK)
        e = blob_reader_open(srv->blob, p.plan_blob_key, rd, size, eb);
    return e;
}

/* ---- uploaded files ------------------------------------------------------ */

static const char *const file_kinds[] = {"plan", "json-plan", "schemas"};

static const char *file_key(struct arena *a, const char *job_id, int kind)
{
    return arena_printf(a, "jobs/%s/%s", job_id, file_kinds[kind]);
}

tr_err job_service_put_file(struct job_service *js, struct arena *a,
                            const char *job_id, const char *owner,
                            const char *kind, const char *path,
                            struct tr_errbuf *eb)
{
    int k = -1;
    for (int i = 0; i < 3; i++)
        if (util_streq(kind, file_kinds[i]))
            k = i;
    if (k < 0)
        return tr_fail(eb, TR_ERR_INVALID,
                       "a job file is plan, json-plan or schemas");
    struct st_job j;
    tr_err e = held_job(js, a, job_id, owner, &j, eb);
    /* an apply brings the JSON of a plan stored without it */
    if (e == TR_OK && !util_streq(j.phase, "plan") && k != 1)
        e = tr_fail(eb, TR_ERR_CONFLICT,
                    "only a plan job uploads files other than json-plan");
    if (e == TR_OK)
        e = blob_put_file(js->srv->blob, file_key(a, job_id, k), path, eb);
    return e;
}

/* The uploaded file of kind k, copied to a local spool file (*path, which
 * a removes), or *path NULL when none was uploaded. */
static tr_err take_file(struct job_service *js, struct arena *a,
                        const char *job_id, int k, const char **path,
                        struct tr_errbuf *eb)
{
    struct blob *b = js->srv->blob;
    struct blob_reader *rd = NULL;
    uint64_t size = 0;
    *path = NULL;
    tr_err e = blob_reader_open(b, file_key(a, job_id, k), &rd, &size, eb);
    if (e == TR_ERR_NOT_FOUND)
        return TR_OK;
    if (e != TR_OK)
        return e;
    int fd = -1;
    char *spool = NULL;
    e = blob_spool(b, a, &fd, &spool, eb);
    if (e == TR_OK)
        e = job_service_reader_to_file(rd, size, spool, eb);
    blob_reader_close(rd);
    if (e == TR_OK)
        *path = spool;
    return e;
}

static void drop_files(struct job_service *js, struct arena *a,
                       const char *job_id)
{
    for (int k = 0; k < 3; k++) {
        tr_err e = blob_remove(js->srv->blob, file_key(a, job_id, k), NULL);
        if (e != TR_OK && e != TR_ERR_NOT_FOUND)
            log_warn("job %s: cannot remove its uploaded %s", job_id,
                     file_kinds[k]);
    }
}

tr_err job_service_finish(struct job_service *js, const char *job_id,
                          const char *owner, const struct job_result *res,
                          struct tr_errbuf *eb)
{
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
    struct st_job j;
    tr_err e = held_job(js, a, job_id, owner, &j, eb);
    bool plan = e == TR_OK && util_streq(j.phase, "plan");
    if (plan && rr.plan_file == NULL)
        e = take_file(js, a, job_id, 0, &rr.plan_file, eb);
    if (e == TR_OK && rr.json_plan_file == NULL)
        e = take_file(js, a, job_id, 1, &rr.json_plan_file, eb);
    if (plan && e == TR_OK && rr.schemas_file == NULL)
        e = take_file(js, a, job_id, 2, &rr.schemas_file, eb);
    if (e == TR_OK)
        e = run_finish(js->srv, a, job_id, &rr, eb);
    if (e == TR_ERR_CONFLICT)
        e = tr_fail(eb, e, "the job is no longer this node's");
    /* kept across a failure that a retry may get past */
    if (e == TR_OK || e == TR_ERR_CONFLICT)
        drop_files(js, a, job_id);
    arena_destroy(a);
    return e;
}

tr_err job_service_attach_json(struct job_service *js, const char *job_id,
                               const char *owner, const char *path,
                               struct tr_errbuf *eb)
{
    struct arena *a = arena_new();
    tr_err e = run_attach_json(js->srv, a, job_id, owner, path, eb);
    arena_destroy(a);
    return e;
}

tr_err job_service_run_final(struct job_service *js, const char *run_id,
                             bool *final, struct tr_errbuf *eb)
{
    struct arena *a = arena_new();
    struct st_run r;
    tr_err e = store_run_get(js->srv->db, a, run_id, &r, eb);
    if (e == TR_ERR_NOT_FOUND) { /* its workspace was deleted */
        *final = true;
        e = TR_OK;
    } else if (e == TR_OK) {
        *final = run_is_final(r.status);
    }
    arena_destroy(a);
    return e;
}

/* ---- parked claims ------------------------------------------------------- */

/* The first parked claim, taken off the list (NULL: none). */
static struct parked *pop_locked(struct job_service *js)
{
    struct parked *p = js->head;
    if (p != NULL) {
        js->head = p->next;
        if (js->head == NULL)
            js->tail = &js->head;
    }
    return p;
}

static void push_front_locked(struct job_service *js, struct parked *p)
{
    p->next = js->head;
    js->head = p;
    if (p->next == NULL)
        js->tail = &p->next;
}

/* Whether node is listed in the registry and not active (draining or
 * gone): its parked claim ends at once, so a draining node that waits for
 * its claims to return is not held for a whole long poll. */
static bool node_leaving(const struct st_node *nodes, int n, const char *node)
{
    for (int i = 0; node != NULL && i < n; i++)
        if (strcmp(nodes[i].id, node) == 0)
            return strcmp(nodes[i].state, "active") != 0;
    return false;
}

/* One pass: parked claims in order get jobs until none is left; then
 * those past their deadline, or of a node that is leaving, end empty.
 * Returns the earliest deadline still waiting (INT64_MAX: none). */
static int64_t serve(struct job_service *js)
{
    for (;;) {
        pthread_mutex_lock(&js->mu);
        struct parked *p = js->stopping ? NULL : pop_locked(js);
        pthread_mutex_unlock(&js->mu);
        if (p == NULL)
            break;
        /* the look's rows and job in an arena of its own: the first
         * claim would otherwise gather one look's worth each second for
         * as long as it waits, in its request's arena */
        struct arena *a = arena_new();
        struct job j;
        struct tr_errbuf eb = {{0}};
        tr_err e = job_service_claim_remote(js, a, p->node, &j, &eb);
        if (e == TR_ERR_NOT_FOUND) { /* nothing queued: back in front */
            arena_destroy(a);
            pthread_mutex_lock(&js->mu);
            push_front_locked(js, p);
            pthread_mutex_unlock(&js->mu);
            break;
        }
        p->done(p->arg, e, e == TR_OK ? &j : NULL, &eb); /* p is gone */
        arena_destroy(a);
    }
    /* the registry once a pass, and only with claims parked */
    struct arena *a = NULL;
    struct st_node *nodes = NULL;
    int nnodes = 0;
    pthread_mutex_lock(&js->mu);
    bool parked = js->head != NULL;
    pthread_mutex_unlock(&js->mu);
    if (parked) {
        struct tr_errbuf eb = {{0}};
        a = arena_new();
        if (a == NULL || store_node_list(js->srv->db, a, true, &nodes, &nnodes,
                                         &eb) != TR_OK)
            nnodes = 0; /* the deadline still ends them */
    }
    int64_t now = util_now_ms(), next = INT64_MAX;
    pthread_mutex_lock(&js->mu);
    struct parked *expired = NULL;
    for (struct parked **pp = &js->head; *pp != NULL;) {
        struct parked *p = *pp;
        if (p->deadline_ms <= now || js->stopping ||
            node_leaving(nodes, nnodes, p->node)) {
            *pp = p->next;
            p->next = expired;
            expired = p;
            continue;
        }
        if (p->deadline_ms < next)
            next = p->deadline_ms;
        pp = &p->next;
    }
    js->tail = &js->head;
    while (*js->tail != NULL)
        js->tail = &(*js->tail)->next;
    pthread_mutex_unlock(&js->mu);
    for (struct parked *p = expired, *n; p != NULL; p = n) {
        n = p->next;
        struct tr_errbuf eb = {{0}};
        p->done(p->arg, tr_fail(&eb, TR_ERR_NOT_FOUND, "no job is queued"),
                NULL, &eb);
    }
    if (a != NULL)
        arena_destroy(a);
    return next;
}

/* Waits on js->cv until a claim is parked, stopping, or due_ms (the
 * next confirmation check; INT64_MAX: none). */
static void wait_for_work(struct job_service *js, int64_t due_ms)
{
    pthread_mutex_lock(&js->mu);
    if (js->head == NULL && !js->stopping) {
        if (due_ms == INT64_MAX && js->pend == NULL) {
            pthread_cond_wait(&js->cv, &js->mu);
        } else {
            int64_t left = due_ms == INT64_MAX ? 1000 : due_ms - util_now_ms();
            if (left > 1000)
                left = 1000;
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_nsec += (long)(left > 0 ? left : 0) * 1000000L;
            ts.tv_sec += ts.tv_nsec / 1000000000L;
            ts.tv_nsec %= 1000000000L;
            if (left > 0)
                pthread_cond_timedwait(&js->cv, &js->mu, &ts);
        }
    }
    pthread_mutex_unlock(&js->mu);
}

static void *waiter_main(void *arg)
{
    struct job_service *js = arg;
    for (;;) {
        wait_for_work(js, check_confirms(js));
        pthread_mutex_lock(&js->mu);
        bool stop = js->stopping, parked = js->head != NULL;
        pthread_mutex_unlock(&js->mu);
        if (!parked && !stop)
            continue;
        uint64_t gen = run_signal_gen(js->srv->run_signal);
        int64_t next = serve(js);
        if (stop) {
            check_confirms(js); /* frees what is left */
            break;
        }
        if (next == INT64_MAX)
            continue;
        /* a job queued here wakes the signal; one queued on another
         * primary is found by the next look, a second away at most */
        int64_t left = next - util_now_ms();
        int slice = left < 1 ? 1 : left > 1000 ? 1000 : (int)left;
        run_signal_wait(js->srv->run_signal, gen, slice);
    }
    return NULL;
}

void job_service_park(struct job_service *js, struct arena *a, const char *node,
                      int64_t deadline_ms, job_service_done_fn done, void *arg)
{
    struct parked *p = arena_alloc(a, sizeof(*p));
    *p = (struct parked){
        .node = node, .deadline_ms = deadline_ms, .done = done, .arg = arg};
    pthread_mutex_lock(&js->mu);
    bool ok = start_waiter_locked(js);
    if (ok) {
        *js->tail = p;
        js->tail = &p->next;
        pthread_cond_signal(&js->cv);
    }
    pthread_mutex_unlock(&js->mu);
    if (!ok) {
        struct tr_errbuf eb = {{0}};
        done(arg, tr_fail(&eb, TR_ERR_NOT_FOUND, "no job is queued"), NULL,
             &eb);
    }
}

void job_service_unpark_all(struct job_service *js)
{
    if (js == NULL)
        return;
    pthread_mutex_lock(&js->mu);
    bool joined = !js->started || js->stopping;
    js->stopping = true;
    pthread_cond_broadcast(&js->cv);
    pthread_mutex_unlock(&js->mu);
    if (!joined)
        pthread_join(js->waiter, NULL);
    serve(js);          /* ends whatever is left (stopping) */
    check_confirms(js); /* left to their leases */
}

tr_err job_service_new(struct terrace_server *srv,
                       const struct job_service_opts *o,
                       struct job_service **out, struct tr_errbuf *eb)
{
    struct job_service *js = calloc(1, sizeof(*js));
    if (js == NULL)
        return tr_fail(eb, TR_ERR_NOMEM, "out of memory");
    js->srv = srv;
    js->o = *o;
    if (js->o.lease_ms <= 0) /* the node's job-lease setting */
        js->o.lease_ms =
            srv->cfg.job_lease > 0 ? srv->cfg.job_lease * 1000 : 30000;
    pthread_mutex_init(&js->mu, NULL);
    pthread_cond_init(&js->cv, NULL);
    js->tail = &js->head;
    *out = js;
    return TR_OK;
}

void job_service_free(struct job_service *js)
{
    if (js == NULL)
        return;
    job_service_unpark_all(js);
    pthread_cond_destroy(&js->cv);
    pthread_mutex_destroy(&js->mu);
    free(js);
}
