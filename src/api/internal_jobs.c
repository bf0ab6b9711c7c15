/*
 * internal_jobs.c - the internal API's job routes (see internal.c):
 * a claimed job's lease, log, configuration, plan, uploaded plan files
 * and finish, and an ended apply's JSON plan, each a door onto the job
 * service (domain/job_service.h).
 *
 * Every route names the job and is answered only for the node holding
 * it: an unknown job is 404, a job that is no longer running or that
 * another node holds is 409 "the job is no longer this node's" (its
 * lease was lost, or it was canceled and finished), and nothing changes.
 * The one route for a job that has ended, json-plan, is answered for the
 * node that held it last, once.
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#include <string.h>

#include "api/api.h"
#include "api/internal_int.h"
#include "core/util.h"
#include "domain/job_service.h"

#define OCTETS "application/octet-stream"

static void job_heartbeat(struct http_req *r)
{
    int cancel = 0;
    struct tr_errbuf eb = {{0}};
    tr_err e = job_service_heartbeat(r->srv->job_service, http_param(r, "id"),
                                     r->who.node_id, &cancel, &eb);
    if (e != TR_OK) {
        api_store_fail(r, e, &eb);
        return;
    }
    api_internal_reply(r, 200, json_pack("{s:i}", "cancel", cancel));
}

/* POST /jobs/:id/log?offset=N: N is where the body starts in the job's
 * stream of appends (store_log_append); without it (older secondaries)
 * the body is appended as it is. */
static void job_log(struct http_req *r)
{
    struct tr_errbuf eb = {{0}};
    const char *q = http_query(r, "offset");
    int64_t offset = -1;
    if (q != NULL && (util_parse_i64(q, &offset) != TR_OK || offset < 0)) {
        http_error(r, 400, NULL,
                   "offset must be a whole number of bytes, 0 or more");
        return;
    }
    tr_err e = job_service_append_log(
        r->srv->job_service, http_param(r, "id"), r->who.node_id,
        r->body.data != NULL ? r->body.data : "", r->body.len, offset, &eb);
    if (e != TR_OK) {
        api_store_fail(r, e, &eb);
        return;
    }
    http_reply(r, 204, NULL, NULL, 0);
}

static void job_object(struct http_req *r, bool plan)
{
    struct blob_reader *rd = NULL;
    uint64_t size = 0;
    struct tr_errbuf eb = {{0}};
    struct job_service *js = r->srv->job_service;
    const char *id = http_param(r, "id");
    tr_err e = plan ? job_service_open_plan(js, r->arena, id, r->who.node_id,
                                            &rd, &size, &eb)
                    : job_service_open_config(js, r->arena, id, r->who.node_id,
                                              &rd, &size, &eb);
    if (e != TR_OK) {
        api_store_fail(r, e, &eb);
        return;
    }
    http_reply_blob(r, 200, OCTETS, rd, size);
}

static void job_config(struct http_req *r)
{
    job_object(r, false);
}

static void job_plan(struct http_req *r)
{
    job_object(r, true);
}

static void job_file(struct http_req *r)
{
    const char *kind = http_param(r, "kind");
    if (strcmp(kind, "plan") != 0 && strcmp(kind, "json-plan") != 0 &&
        strcmp(kind, "schemas") != 0) {
        http_error(r, 404, NULL,
                   "no such job file: it is plan, json-plan or schemas");
        return;
    }
    struct tr_errbuf eb = {{0}};
    tr_err e =
        job_service_put_file(r->srv->job_service, r->arena, http_param(r, "id"),
                             r->who.node_id, kind, r->spool_path, &eb);
    if (e != TR_OK) {
        api_store_fail(r, e, &eb);
        return;
    }
    http_reply(r, 204, NULL, NULL, 0);
}

/* PUT /jobs/:id/json-plan: after the finish, the JSON plan of an apply
 * job (job_service_attach_json()). */
static void job_json_plan(struct http_req *r)
{
    struct tr_errbuf eb = {{0}};
    tr_err e = job_service_attach_json(r->srv->job_service, http_param(r, "id"),
                                       r->who.node_id, r->spool_path, &eb);
    if (e != TR_OK) {
        api_store_fail(r, e, &eb);
        return;
    }
    http_reply(r, 204, NULL, NULL, 0);
}

static bool parse_outcome(const char *s, enum job_outcome *out)
{
    static const struct {
        const char *name;
        enum job_outcome o;
    } map[] = {{"finished", JOB_FINISHED},
               {"errored", JOB_ERRORED},
               {"canceled", JOB_CANCELED},
               {"force_canceled", JOB_FORCE_CANCELED}};
    for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
        if (strcmp(s, map[i].name) == 0) {
            *out = map[i].o;
            return true;
        }
    return false;
}

static void job_finish(struct http_req *r)
{
    json_t *b = api_internal_body(r);
    const char *outcome = NULL, *error = NULL;
    bool changes = false;
    int64_t n[4] = {0};
    static const char *const counts[] = {"additions", "changes", "destructions",
                                         "imports"};
    if (b == NULL || !api_internal_str(r, b, "outcome", true, 32, &outcome) ||
        !api_internal_str(r, b, "error", false, 4096, &error) ||
        !api_internal_bool(r, b, "has_changes", &changes))
        return;
    for (int i = 0; i < 4; i++)
        if (!api_internal_int(r, b, counts[i], 0, 1 << 30, &n[i]))
            return;
    struct job_result res = {.error = error,
                             .has_changes = changes,
                             .additions = (int)n[0],
                             .changes = (int)n[1],
                             .destructions = (int)n[2],
                             .imports = (int)n[3]};
    if (!parse_outcome(outcome, &res.outcome)) {
        http_error(r, 422, NULL,
                   "outcome must be finished, errored, canceled or "
                   "force_canceled");
        return;
    }
    struct tr_errbuf eb = {{0}};
    tr_err e = job_service_finish(r->srv->job_service, http_param(r, "id"),
                                  r->who.node_id, &res, &eb);
    if (e != TR_OK) {
        api_store_fail(r, e, &eb);
        return;
    }
    http_reply(r, 204, NULL, NULL, 0);
}

#define JOB "/api/internal/v1/jobs/:id"

const struct route api_internal_job_routes[] = {
    {"POST", JOB "/heartbeat", job_heartbeat, ROUTE_NODE},
    {"POST", JOB "/log", job_log, ROUTE_NODE},
    {"GET", JOB "/config", job_config, ROUTE_NODE},
    {"GET", JOB "/plan", job_plan, ROUTE_NODE},
    {"PUT", JOB "/files/:kind", job_file, ROUTE_NODE | ROUTE_SPOOL},
    {"POST", JOB "/finish", job_finish, ROUTE_NODE},
    {"PUT", JOB "/json-plan", job_json_plan, ROUTE_NODE | ROUTE_SPOOL},
    {0},
};
