/*
 * plans_applies.c - the plan and the apply of a run:
 *
 *   GET /plans/:id, GET /applies/:id
 *   GET /runs/:id/plan, GET /runs/:id/apply
 *   GET /plans/:id/json-output             the JSON plan, secrets removed
 *   GET /plans/:id/json-output-redacted    TFE's shape the CLI renders
 *   GET /runs/:id/plan/json-output(-redacted)   the same, by run
 *
 * A phase that ran shows the node that ran it as execution-node (its
 * name in the cluster's registry, or the in-process worker's), a Terrace
 * extension absent for runs from before it was recorded.
 *
 * Both JSON plans are plain application/json and stored only after
 * plan_redact() took sensitive values out (domain/run_worker.c); they
 * answer 404 until the plan has finished.  As in TFE, json-output needs
 * admin access to the workspace, json-output-redacted (what the CLI
 * renders) only sight of its runs.  A phase's log is read from its
 * log-read-url (run_logs.c).
 *
 * An auto-apply plan is stored without its JSON plans, which its apply
 * makes (job.defer_json, job.make_json); the executor stores them a
 * moment after the apply has ended.  In that moment (JSON_LATE_S after
 * the apply's end at most) a request for them is parked until they are
 * stored (json_wait.c), up to JSON_WAIT_MS, instead of answering 404 to
 * a client that just saw the run applied.
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#include <string.h>

#include "api/runs_int.h"
#include "blob/blob.h"
#include "core/rfc3339.h"
#include "core/util.h"

#define JSON_WAIT_MS 5000 /* longest a request waits for a JSON plan */
#define JSON_LATE_S 60    /* ... and only this long after the apply ended */

bool api_phase_access(struct http_req *r, const char *id, struct st_phase *p,
                      struct st_run *run)
{
    struct tr_errbuf eb = {{0}};
    bool plan = strncmp(id, "plan-", 5) == 0;
    bool apply = strncmp(id, "apply-", 6) == 0;
    tr_err e = plan || apply ? store_phase_get(r->srv->db, r->arena, id, p, &eb)
                             : TR_ERR_NOT_FOUND;
    if (e == TR_OK && !api_run_access(r, p->run_id, run, NULL)) {
        if (r->status != 404)
            return false;
        e = TR_ERR_NOT_FOUND;
    }
    if (e == TR_ERR_NOT_FOUND) {
        http_error(r, 404, "not found",
                   arena_printf(r->arena, "%s %s not found",
                                apply ? "apply" : "plan", id));
        return false;
    }
    if (e != TR_OK) {
        api_store_fail(r, e, &eb);
        return false;
    }
    return true;
}

json_t *api_phase_json(struct http_req *r, const struct st_phase *p)
{
    const char *kind = p->is_plan ? "plans" : "applies";
    const char *self = arena_printf(r->arena, "/api/v2/%s/%s", kind, p->id);
    json_t *ts =
        json_loads(p->status_timestamps ? p->status_timestamps : "{}", 0, NULL);
    json_t *attrs = json_pack(
        "{s:s,s:o,s:s,s:I,s:I,s:I,s:I,s:{s:s}}", "status", p->status,
        "status-timestamps", ts != NULL ? ts : json_object(), "log-read-url",
        api_log_read_url(r, p->id), "resource-additions",
        (json_int_t)p->additions, "resource-changes", (json_int_t)p->changes,
        "resource-destructions", (json_int_t)p->destructions,
        "resource-imports", (json_int_t)p->imports, "execution-details", "mode",
        "remote");
    if (p->execution_node != NULL) /* a Terrace extension */
        json_object_set_new(attrs, "execution-node",
                            json_string(p->execution_node));
    json_t *links = json_pack("{s:s}", "self", self);
    json_t *rels = json_object();
    if (p->is_plan) {
        json_object_set_new(attrs, "has-changes", json_boolean(p->has_changes));
        json_object_set_new(attrs, "generated-configuration", json_false());
        json_object_set_new(
            links, "json-output",
            json_string(arena_printf(r->arena, "%s/json-output", self)));
        json_object_set_new(links, "json-output-redacted",
                            json_string(arena_printf(
                                r->arena, "%s/json-output-redacted", self)));
        json_object_set_new(rels, "exports", json_pack("{s:[]}", "data"));
    }
    return json_pack("{s:s,s:s,s:o,s:o,s:o}", "id", p->id, "type", kind,
                     "attributes", attrs, "relationships", rels, "links",
                     links);
}

static void reply_phase(struct http_req *r, const struct st_phase *p)
{
    http_reply_json(r, 200, json_pack("{s:o}", "data", api_phase_json(r, p)));
}

static void phase_show(struct http_req *r)
{
    struct st_phase p;
    struct st_run run;
    const char *id = http_param(r, "id");
    bool plans = strncmp(r->path, "/api/v2/plans/", 14) == 0;
    if (strncmp(id, plans ? "plan-" : "apply-", plans ? 5 : 6) != 0) {
        http_error(r, 404, "not found",
                   arena_printf(r->arena, "%s %s not found",
                                plans ? "plan" : "apply", id));
        return;
    }
    if (api_phase_access(r, id, &p, &run))
        reply_phase(r, &p);
}

/* GET /runs/:id/plan and /runs/:id/apply. */
static void run_phase(struct http_req *r, bool plan)
{
    struct st_run run;
    struct st_phase p;
    struct tr_errbuf eb = {{0}};
    if (!api_run_access(r, http_param(r, "id"), &run, NULL))
        return;
    tr_err e = store_phase_get(r->srv->db, r->arena,
                               plan ? run.plan_id : run.apply_id, &p, &eb);
    if (e != TR_OK) {
        api_store_fail(r, e, &eb);
        return;
    }
    reply_phase(r, &p);
}

static void run_plan(struct http_req *r)
{
    run_phase(r, true);
}

static void run_apply_h(struct http_req *r)
{
    run_phase(r, false);
}

/* While the plan's JSON plans may still come from its apply (it was
 * stored without them and the apply ended less than JSON_LATE_S ago):
 * until when (unix ms) a request waits for them, at most JSON_WAIT_MS
 * from now.  0 when they will not come. */
static int64_t json_due(struct http_req *r, const struct st_phase *p,
                        const struct st_run *run)
{
    struct st_phase ap;
    struct tr_errbuf eb = {{0}};
    if (p->plan_blob_key == NULL || p->json_blob_key != NULL ||
        run->apply_id == NULL ||
        store_phase_get(r->srv->db, r->arena, run->apply_id, &ap, &eb) !=
            TR_OK ||
        ap.status_timestamps == NULL)
        return 0;
    const char *stamp = util_streq(ap.status, "finished")  ? "finished-at"
                        : util_streq(ap.status, "errored") ? "errored-at"
                                                           : NULL;
    json_t *ts =
        stamp != NULL ? json_loads(ap.status_timestamps, 0, NULL) : NULL;
    int64_t ended = 0;
    bool ok = rfc3339_parse(json_string_value(json_object_get(ts, stamp)),
                            &ended, NULL) == TR_OK;
    json_decref(ts);
    int64_t now = util_now_ms(), late = (ended + JSON_LATE_S) * 1000;
    if (!ok || now >= late)
        return 0;
    return now + JSON_WAIT_MS < late ? now + JSON_WAIT_MS : late;
}

static void json_output(struct http_req *r, bool redacted)
{
    struct st_phase p;
    struct st_run run;
    const char *id = http_param(r, "id");
    if (strncmp(r->path, "/api/v2/runs/", 13) == 0) {
        /* the run-level alias: the run's plan */
        if (!api_run_access(r, id, &run, NULL))
            return;
        id = run.plan_id;
    }
    if (strncmp(id, "plan-", 5) != 0) {
        http_error(r, 404, "not found",
                   arena_printf(r->arena, "plan %s not found", id));
        return;
    }
    if (!api_phase_access(r, id, &p, &run))
        return;
    /* TFE: the full JSON plan needs admin access to the workspace */
    struct st_workspace ws;
    if (!redacted &&
        (!api_run_access(r, run.id, &run, &ws) ||
         !api_ws_allow(r, &ws, ACC_WS_ADMIN, "read the full JSON plan")))
        return;
    int64_t due = r->srv->json_wait != NULL ? json_due(r, &p, &run) : 0;
    if (due > 0) {
        struct api_json_want *w = arena_alloc(r->arena, sizeof(*w));
        *w = (struct api_json_want){
            .plan = p, .redacted = redacted, .deadline_ms = due};
        http_suspend(r, api_json_wait_park, w);
        return;
    }
    api_json_answer(r, &p, redacted, util_streq(run.status, "applied"));
}

void api_json_answer(struct http_req *r, const struct st_phase *p,
                     bool redacted, bool ended)
{
    const char *key = redacted ? p->redacted_json_blob_key : p->json_blob_key;
    if (key == NULL) {
        /* an auto-apply plan's JSON is made with its apply (defer_json) */
        http_error(r, 404, "not found",
                   strcmp(p->status, "finished") != 0
                       ? "the JSON plan is not available: the plan has "
                         "not finished"
                   : ended ? "the JSON plan is not available: the apply "
                             "that was to make it ended without storing "
                             "it (the node's log says why)"
                           : "the JSON plan is not available: it is made "
                             "with the apply");
        return;
    }
    api_reply_object(r, key, "application/json");
}

static void plan_json(struct http_req *r)
{
    json_output(r, false);
}

static void plan_json_redacted(struct http_req *r)
{
    json_output(r, true);
}

const struct route api_plan_apply_routes[] = {
    {"GET", "/api/v2/plans/:id", phase_show, ROUTE_AUTH},
    {"GET", "/api/v2/applies/:id", phase_show, ROUTE_AUTH},
    {"GET", "/api/v2/runs/:id/plan", run_plan, ROUTE_AUTH},
    {"GET", "/api/v2/runs/:id/apply", run_apply_h, ROUTE_AUTH},
    {"GET", "/api/v2/plans/:id/json-output", plan_json, ROUTE_AUTH},
    {"GET", "/api/v2/plans/:id/json-output-redacted", plan_json_redacted,
     ROUTE_AUTH},
    {"GET", "/api/v2/runs/:id/plan/json-output", plan_json, ROUTE_AUTH},
    {"GET", "/api/v2/runs/:id/plan/json-output-redacted", plan_json_redacted,
     ROUTE_AUTH},
    {0},
};
