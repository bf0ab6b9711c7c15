/*
 * job_local.c - struct job_api in-process (see job_local.h): each
 * operation is a call into the job service (domain/job_service.h), which
 * the internal HTTP API for secondaries shares.
 *
 * In process the claimer is trusted, so no owner is checked beyond the
 * job still running.  A job whose lease was lost (reaped, force-canceled)
 * answers TR_ERR_NOT_FOUND, as job.h's executor expects, and the worker
 * cannot touch the run any more.
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#include "executor/job_local.h"

#include <stdlib.h>
#include <string.h>

#include "blob/blob.h"

struct job_local {
    struct job_service *js;
    const char *ca_file;
    struct job_api api;
};

void job_local_defaults(struct job_local_opts *o)
{
    memset(o, 0, sizeof(*o)); /* lease_ms 0: the node's job-lease */
}

/* A lost job is TR_ERR_NOT_FOUND to the executor. */
static tr_err lost(tr_err e, const char *job_id, struct tr_errbuf *eb)
{
    if (e == TR_ERR_CONFLICT)
        e = tr_fail(eb, TR_ERR_NOT_FOUND, "job %s is no longer running",
                    job_id);
    return e;
}

static tr_err jl_claim(void *ctx, struct arena *a, const char *node,
                       int wait_ms, struct job *out, struct tr_errbuf *eb)
{
    struct job_local *jl = ctx;
    tr_err e = job_service_claim(jl->js, a, node, wait_ms, out, eb);
    if (e == TR_OK)
        out->ca_file = jl->ca_file;
    return e;
}

static tr_err jl_heartbeat(void *ctx, const char *job_id, int *cancel,
                           struct tr_errbuf *eb)
{
    struct job_local *jl = ctx;
    return lost(job_service_heartbeat(jl->js, job_id, NULL, cancel, eb), job_id,
                eb);
}

static tr_err jl_append_log(void *ctx, const char *job_id, const char *data,
                            size_t len, uint64_t offset, struct tr_errbuf *eb)
{
    struct job_local *jl = ctx;
    return lost(job_service_append_log(jl->js, job_id, NULL, data, len,
                                       (int64_t)offset, eb),
                job_id, eb);
}

static tr_err jl_fetch_config(void *ctx, const char *job_id,
                              const char *dest_path, struct tr_errbuf *eb)
{
    struct job_local *jl = ctx;
    struct arena *a = arena_new();
    struct blob_reader *rd = NULL;
    uint64_t size = 0;
    tr_err e = job_service_open_config(jl->js, a, job_id, NULL, &rd, &size, eb);
    if (e == TR_OK) {
        e = job_service_reader_to_file(rd, size, dest_path, eb);
        blob_reader_close(rd);
    }
    arena_destroy(a);
    return lost(e, job_id, eb);
}

static tr_err jl_fetch_plan(void *ctx, const char *job_id,
                            const char *dest_path, struct tr_errbuf *eb)
{
    struct job_local *jl = ctx;
    struct arena *a = arena_new();
    struct blob_reader *rd = NULL;
    uint64_t size = 0;
    tr_err e = job_service_open_plan(jl->js, a, job_id, NULL, &rd, &size, eb);
    if (e == TR_OK) {
        e = job_service_reader_to_file(rd, size, dest_path, eb);
        blob_reader_close(rd);
    }
    arena_destroy(a);
    return lost(e, job_id, eb);
}

static tr_err jl_finish(void *ctx, const char *job_id,
                        const struct job_result *res, struct tr_errbuf *eb)
{
    struct job_local *jl = ctx;
    return job_service_finish(jl->js, job_id, NULL, res, eb);
}

static tr_err jl_attach_json(void *ctx, const char *job_id, const char *path,
                             struct tr_errbuf *eb)
{
    struct job_local *jl = ctx;
    return job_service_attach_json(jl->js, job_id, NULL, path, eb);
}

static tr_err jl_run_final(void *ctx, const char *run_id, bool *final,
                           struct tr_errbuf *eb)
{
    struct job_local *jl = ctx;
    return job_service_run_final(jl->js, run_id, final, eb);
}

tr_err job_local_new(struct terrace_server *srv, const struct job_local_opts *o,
                     struct job_local **out, struct tr_errbuf *eb)
{
    struct job_local *jl = calloc(1, sizeof(*jl));
    if (jl == NULL)
        return tr_fail(eb, TR_ERR_NOMEM, "out of memory");
    struct job_service_opts so;
    job_service_defaults(&so);
    so.lease_ms = o->lease_ms; /* 0: the node's job-lease setting */
    so.plan_timeout_s = o->plan_timeout_s;
    so.apply_timeout_s = o->apply_timeout_s;
    if (o->sweep_ms > 0)
        so.sweep_ms = o->sweep_ms;
    tr_err e = job_service_new(srv, &so, &jl->js, eb);
    if (e != TR_OK) {
        free(jl);
        return e;
    }
    jl->ca_file = o->ca_file;
    jl->api = (struct job_api){
        .ctx = jl,
        .claim = jl_claim,
        .heartbeat = jl_heartbeat,
        .append_log = jl_append_log,
        .fetch_config = jl_fetch_config,
        .fetch_plan = jl_fetch_plan,
        .finish = jl_finish,
        .attach_json = jl_attach_json,
        .run_final = jl_run_final,
    };
    *out = jl;
    return TR_OK;
}

void job_local_free(struct job_local *jl)
{
    if (jl == NULL)
        return;
    job_service_free(jl->js);
    free(jl);
}

struct job_api *job_local_api(struct job_local *jl)
{
    return &jl->api;
}

struct job_service *job_local_service(struct job_local *jl)
{
    return jl->js;
}
