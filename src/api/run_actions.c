/*
 * run_actions.c - what is done to a run and what is said about it:
 *
 *   POST /runs/:id/actions/apply|discard|cancel|force-cancel|force-execute
 *   GET  /runs/:id/comments, POST /runs/:id/comments, GET /comments/:id
 *   GET  /runs/:id/run-events, GET /run-events/:id  (include actor, comment)
 *   GET  /runs/:id/task-stages, GET /runs/:id/policy-checks  (always empty)
 *   GET  /cost-estimates/:id
 *
 * Action bodies are plain JSON, {"comment": "..."} or nothing (go-tfe's
 * RunApplyOptions and friends use json tags, not JSON:API); a JSON:API
 * body with data.attributes.comment is accepted too.  An action the run's
 * state does not allow answers 409 "transition not allowed" and changes
 * nothing; an accepted one answers 202 with no body, as TFE does.
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#include <string.h>

#include "api/runs_int.h"
#include "api/workspaces_int.h"

#define MAX_COMMENT (64 * 1024)

/* ---- actions ------------------------------------------------------------- */

/* The optional comment of an action body; false after writing 400/422. */
static bool action_comment(struct http_req *r, const char **comment)
{
    return api_body_opt_string(
        r, "comment", MAX_COMMENT,
        "comment must be a string of at most 65536 bytes", comment);
}

/* Loads the run of the route for an action: visible, writable, and the
 * caller not a run token. */
static bool action_target(struct http_req *r, struct st_run *run,
                          const char **comment)
{
    struct st_workspace w;
    if (!api_run_access(r, http_param(r, "id"), run, &w))
        return false;
    if (r->who.kind == PRINC_RUN) {
        http_error(r, 403, "forbidden", "a run token cannot act on runs");
        return false;
    }
    return api_ws_allow(r, &w, ACC_WS_APPLY, "act on runs") &&
           action_comment(r, comment);
}

typedef tr_err (*action_fn)(struct terrace_server *srv, struct arena *a,
                            const char *id, const char *actor,
                            const char *comment, struct tr_errbuf *eb);

static void do_action(struct http_req *r, action_fn fn)
{
    struct st_run run;
    const char *comment = NULL;
    if (!action_target(r, &run, &comment))
        return;
    struct tr_errbuf eb = {{0}};
    tr_err e = fn(r->srv, r->arena, run.id, r->who.user_id, comment, &eb);
    if (e != TR_OK) {
        api_run_fail(r, e, &eb);
        return;
    }
    http_reply(r, 202, NULL, "", 0);
}

static void act_apply(struct http_req *r)
{
    do_action(r, run_apply);
}

static void act_discard(struct http_req *r)
{
    do_action(r, run_discard);
}

static void act_cancel(struct http_req *r)
{
    do_action(r, run_cancel);
}

static void act_force_cancel(struct http_req *r)
{
    do_action(r, run_force_cancel);
}

static void act_force_execute(struct http_req *r)
{
    struct st_run run;
    const char *comment = NULL;
    if (!action_target(r, &run, &comment))
        return;
    struct tr_errbuf eb = {{0}};
    tr_err e = run_force_execute(r->srv, r->arena, run.id, r->who.user_id, &eb);
    if (e != TR_OK) {
        api_run_fail(r, e, &eb);
        return;
    }
    http_reply(r, 202, NULL, "", 0);
}

/* ---- comments ------------------------------------------------------------ */

static json_t *comment_json(struct http_req *r, const struct st_comment *c)
{
    return json_pack("{s:s,s:s,s:{s:s,s:o},s:{s:o,s:o},s:{s:s}}", "id", c->id,
                     "type", "comments", "attributes", "body", c->body,
                     "created-at", api_time(c->created_at), "relationships",
                     "run-event", api_rel("run-events", NULL), "created-by",
                     api_rel("users", c->created_by), "links", "self",
                     arena_printf(r->arena, "/api/v2/comments/%s", c->id));
}

static void comments_list(struct http_req *r)
{
    struct st_run run;
    struct st_comment *cm = NULL;
    int n = 0;
    struct tr_errbuf eb = {{0}};
    if (!api_run_access(r, http_param(r, "id"), &run, NULL))
        return;
    tr_err e = store_comment_list(r->srv->db, r->arena, run.id, &cm, &n, &eb);
    if (e != TR_OK) {
        api_store_fail(r, e, &eb);
        return;
    }
    json_t *items = json_array();
    for (int i = 0; i < n; i++)
        json_array_append_new(items, comment_json(r, &cm[i]));
    struct page p = {.number = 1, .size = n > 0 ? n : 1};
    http_reply_json(r, 200, jsonapi_list_doc(items, &p, n));
}

static void comment_create(struct http_req *r)
{
    struct st_run run;
    struct st_workspace w;
    const char *body = NULL;
    if (!api_run_access(r, http_param(r, "id"), &run, &w))
        return;
    if (r->who.kind == PRINC_RUN) {
        http_error(r, 403, "forbidden", "a run token cannot comment");
        return;
    }
    if (!api_ws_allow(r, &w, ACC_WS_PLAN, "comment on runs"))
        return;
    json_t *data = jsonapi_body(r, "comments");
    if (data == NULL || !jsonapi_attr_str(r, data, "body", &body))
        return;
    if (body == NULL || *body == '\0' || strlen(body) > MAX_COMMENT) {
        http_error(r, 422, NULL,
                   "Body can't be blank: attribute body is a string of 1 "
                   "to 65536 bytes");
        return;
    }
    struct st_comment c;
    struct tr_errbuf eb = {{0}};
    tr_err e = store_comment_create(r->srv->db, r->arena, run.id, body,
                                    r->who.user_id, &c, &eb);
    if (e != TR_OK) {
        api_store_fail(r, e, &eb);
        return;
    }
    http_reply_json(r, 201, json_pack("{s:o}", "data", comment_json(r, &c)));
}

static void comment_show(struct http_req *r)
{
    struct st_comment c;
    struct st_run run;
    struct tr_errbuf eb = {{0}};
    const char *id = http_param(r, "id");
    tr_err e = store_comment_get(r->srv->db, r->arena, id, &c, &eb);
    if (e != TR_OK) {
        api_store_fail(r, e, &eb);
        return;
    }
    if (!api_run_access(r, c.run_id, &run, NULL)) {
        if (r->status == 404)
            http_error(r, 404, "not found",
                       arena_printf(r->arena, "comment %s not found", id));
        return;
    }
    http_reply_json(r, 200, json_pack("{s:o}", "data", comment_json(r, &c)));
}

/* ---- run events ---------------------------------------------------------- */

enum { EV_ACTOR = 1, EV_COMMENT = 2 };

static bool event_include(struct http_req *r, int *flags)
{
    *flags = 0;
    const char *inc = http_query(r, "include");
    if (inc == NULL || *inc == '\0')
        return true;
    char *copy = arena_strdup(r->arena, inc), *save = NULL;
    for (char *t = strtok_r(copy, ",", &save); t != NULL;
         t = strtok_r(NULL, ",", &save)) {
        if (strcmp(t, "actor") == 0) {
            *flags |= EV_ACTOR;
        } else if (strcmp(t, "comment") == 0) {
            *flags |= EV_COMMENT;
        } else {
            http_error(
                r, 400, "Invalid include parameter",
                arena_printf(r->arena, "Invalid include parameter: %.100s", t));
            return false;
        }
    }
    return true;
}

static json_t *event_json(struct http_req *r, const struct st_run_event *ev)
{
    return json_pack("{s:s,s:s,s:{s:s,s:s,s:o},s:{s:o,s:o}}", "id", ev->id,
                     "type", "run-events", "attributes", "action", ev->action,
                     "description", ev->description, "created-at",
                     api_time(ev->created_at), "relationships", "actor",
                     api_rel("users", ev->actor_id), "comment",
                     api_rel("comments", ev->comment_id));
}

/* The include= objects of events evs. */
static json_t *event_included(struct http_req *r, int flags,
                              const struct st_run_event *evs, int n)
{
    json_t *inc = json_array();
    for (int i = 0; i < n; i++) {
        json_t *u =
            (flags & EV_ACTOR) ? api_run_user_json(r, evs[i].actor_id) : NULL;
        if (u != NULL)
            json_array_append_new(inc, u);
        struct st_comment c;
        if ((flags & EV_COMMENT) && evs[i].comment_id != NULL &&
            store_comment_get(r->srv->db, r->arena, evs[i].comment_id, &c,
                              NULL) == TR_OK)
            json_array_append_new(inc, comment_json(r, &c));
    }
    return inc;
}

static void events_list(struct http_req *r)
{
    struct st_run run;
    struct st_run_event *ev = NULL;
    int n = 0, flags = 0;
    struct page p;
    struct tr_errbuf eb = {{0}};
    if (!api_run_access(r, http_param(r, "id"), &run, NULL) ||
        !jsonapi_page(r, &p) || !event_include(r, &flags))
        return;
    tr_err e = store_run_events(r->srv->db, r->arena, run.id, &ev, &n, &eb);
    if (e != TR_OK) {
        api_store_fail(r, e, &eb);
        return;
    }
    int from = (p.number - 1) * p.size;
    int to = from + p.size < n ? from + p.size : n;
    json_t *items = json_array();
    for (int i = from; i < to; i++)
        json_array_append_new(items, event_json(r, &ev[i]));
    json_t *doc = jsonapi_list_doc(items, &p, n);
    if (flags != 0 && to > from)
        json_object_set_new(doc, "included",
                            event_included(r, flags, ev + from, to - from));
    http_reply_json(r, 200, doc);
}

static void event_show(struct http_req *r)
{
    struct st_run_event ev;
    struct st_run run;
    int flags = 0;
    struct tr_errbuf eb = {{0}};
    const char *id = http_param(r, "id");
    if (!event_include(r, &flags))
        return;
    tr_err e = store_run_event_get(r->srv->db, r->arena, id, &ev, &eb);
    if (e != TR_OK) {
        api_store_fail(r, e, &eb);
        return;
    }
    if (!api_run_access(r, ev.run_id, &run, NULL)) {
        if (r->status == 404)
            http_error(r, 404, "not found",
                       arena_printf(r->arena, "run event %s not found", id));
        return;
    }
    json_t *doc = json_pack("{s:o}", "data", event_json(r, &ev));
    if (flags != 0)
        json_object_set_new(doc, "included", event_included(r, flags, &ev, 1));
    http_reply_json(r, 200, doc);
}

/* ---- empty lists and cost estimates -------------------------------------- */

static void empty_list(struct http_req *r)
{
    struct st_run run;
    struct page p;
    if (!api_run_access(r, http_param(r, "id"), &run, NULL) ||
        !jsonapi_page(r, &p))
        return;
    http_reply_json(r, 200, jsonapi_list_doc(json_array(), &p, 0));
}

static void cost_estimate_show(struct http_req *r)
{
    struct st_run run;
    struct st_phase plan;
    struct tr_errbuf eb = {{0}};
    const char *id = http_param(r, "id");
    tr_err e = store_run_by_cost_estimate(r->srv->db, r->arena, id, &run, &eb);
    if (e == TR_OK)
        e = store_phase_get(r->srv->db, r->arena, run.plan_id, &plan, &eb);
    if (e != TR_OK) {
        api_store_fail(r, e, &eb);
        return;
    }
    struct st_run vis;
    if (!api_run_access(r, run.id, &vis, NULL)) {
        if (r->status == 404)
            http_error(
                r, 404, "not found",
                arena_printf(r->arena, "cost estimate %s not found", id));
        return;
    }
    const char *status = run_cost_estimate_status(&run);
    json_t *ts = json_object();
    json_t *rts = json_loads(run.status_timestamps, 0, NULL);
    json_t *q = json_object_get(rts, "plan-queued-at");
    json_t *f = json_object_get(rts, "cost-estimated-at");
    if (q != NULL)
        json_object_set(ts, "queued-at", q);
    if (f != NULL)
        json_object_set(ts, "finished-at", f);
    json_decref(rts);
    json_int_t count = (json_int_t)(plan.additions + plan.changes);
    http_reply_json(
        r, 200,
        json_pack("{s:{s:s,s:s,s:{s:s,s:n,s:I,s:s,s:s,s:I,s:s,s:o,s:I},"
                  "s:{s:s}}}",
                  "data", "id", id, "type", "cost-estimates", "attributes",
                  "delta-monthly-cost", "0.00", "error-message",
                  "matched-resources-count", (json_int_t)0,
                  "prior-monthly-cost", "0.00", "proposed-monthly-cost", "0.00",
                  "resources-count", count, "status", status,
                  "status-timestamps", ts, "unmatched-resources-count", count,
                  "links", "self",
                  arena_printf(r->arena, "/api/v2/cost-estimates/%s", id)));
}

#define RUN "/api/v2/runs/:id"

const struct route api_run_action_routes[] = {
    {"POST", RUN "/actions/apply", act_apply, ROUTE_AUTH},
    {"POST", RUN "/actions/discard", act_discard, ROUTE_AUTH},
    {"POST", RUN "/actions/cancel", act_cancel, ROUTE_AUTH},
    {"POST", RUN "/actions/force-cancel", act_force_cancel, ROUTE_AUTH},
    {"POST", RUN "/actions/force-execute", act_force_execute, ROUTE_AUTH},
    {"GET", RUN "/comments", comments_list, ROUTE_AUTH},
    {"POST", RUN "/comments", comment_create, ROUTE_AUTH},
    {"GET", "/api/v2/comments/:id", comment_show, ROUTE_AUTH},
    {"GET", RUN "/run-events", events_list, ROUTE_AUTH},
    {"GET", "/api/v2/run-events/:id", event_show, ROUTE_AUTH},
    {"GET", RUN "/task-stages", empty_list, ROUTE_AUTH},
    {"GET", RUN "/policy-checks", empty_list, ROUTE_AUTH},
    {"GET", "/api/v2/cost-estimates/:id", cost_estimate_show, ROUTE_AUTH},
    {0},
};
