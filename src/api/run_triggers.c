/*
 * run_triggers.c - run triggers: a workspace follows others, and an apply
 * in one of them queues a run in it (src/domain/run_trigger.c).
 *
 *   GET    /workspaces/:id/run-triggers?filter[run-trigger][type]=T
 *          T inbound: the workspace's sources; outbound: its followers;
 *          include=sourceable,workspace adds the workspaces
 *   POST   /workspaces/:id/run-triggers   relationships.sourceable names
 *          a workspace of the same organization
 *   GET    /run-triggers/:id
 *   DELETE /run-triggers/:id
 *
 * Reading needs sight of the following workspace; creating and deleting
 * need the right to change it (and sight of the source: another
 * organization's workspace is 404).  A workspace cannot follow itself,
 * follow one source twice, or have more than ST_RT_MAX_SOURCES sources
 * (422).
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#include <string.h>

#include "api/workspaces_int.h"

enum { INC_SOURCE = 1, INC_WORKSPACE = 2 };

static json_t *ws_ref(const char *id)
{
    return json_pack("{s:{s:s,s:s}}", "data", "id", id, "type", "workspaces");
}

static json_t *rt_json(struct http_req *r, const struct st_run_trigger *t)
{
    return json_pack("{s:s,s:s,s:{s:s,s:s,s:s},s:{s:o,s:o},s:{s:s}}", "id",
                     t->id, "type", "run-triggers", "attributes",
                     "workspace-name", t->workspace_name, "sourceable-name",
                     t->source_name, "created-at", t->created_at,
                     "relationships", "workspace", ws_ref(t->workspace_id),
                     "sourceable", ws_ref(t->source_id), "links", "self",
                     arena_printf(r->arena, "/api/v2/run-triggers/%s", t->id));
}

/* include=: a comma list of sourceable and workspace; false after 400. */
static bool parse_include(struct http_req *r, int *flags)
{
    const char *inc = http_query(r, "include");
    *flags = 0;
    if (inc == NULL)
        return true;
    char *copy = arena_strdup(r->arena, inc), *save = NULL;
    for (char *t = strtok_r(copy, ",", &save); t != NULL;
         t = strtok_r(NULL, ",", &save)) {
        if (strcmp(t, "sourceable") == 0)
            *flags |= INC_SOURCE;
        else if (strcmp(t, "workspace") == 0)
            *flags |= INC_WORKSPACE;
        else {
            http_error(r, 400, NULL,
                       arena_printf(r->arena,
                                    "include: unknown relationship \"%s\" "
                                    "(sourceable or workspace)",
                                    t));
            return false;
        }
    }
    return true;
}

/* Appends workspace id to included unless it is already there. */
static bool include_ws(struct http_req *r, json_t *included, const char *id)
{
    size_t i;
    json_t *v;
    json_array_foreach(included, i, v)
    {
        if (strcmp(json_string_value(json_object_get(v, "id")), id) == 0)
            return true;
    }
    struct st_workspace w;
    struct tr_errbuf eb = {{0}};
    tr_err e = store_ws_get(r->srv->db, r->arena, id, &w, &eb);
    if (e != TR_OK) {
        api_store_fail(r, e, &eb);
        return false;
    }
    json_array_append_new(included, api_ws_json(r, &w));
    return true;
}

static void rt_list(struct http_req *r)
{
    struct st_workspace w;
    struct page p;
    int flags = 0;
    if (!api_ws_from_route(r, &w) || !jsonapi_page(r, &p) ||
        !parse_include(r, &flags))
        return;
    const char *type = http_query(r, "filter[run-trigger][type]");
    if (type == NULL ||
        (strcmp(type, "inbound") != 0 && strcmp(type, "outbound") != 0)) {
        http_error(r, 400, NULL,
                   "filter[run-trigger][type] is required: inbound (the "
                   "workspaces that trigger this one) or outbound (the "
                   "ones it triggers)");
        return;
    }
    struct st_run_trigger *list = NULL;
    int n = 0;
    int64_t total = 0;
    struct tr_errbuf eb = {{0}};
    tr_err e =
        store_rt_list(r->srv->db, r->arena, w.id, strcmp(type, "inbound") == 0,
                      (p.number - 1) * p.size, p.size, &list, &n, &total, &eb);
    if (e != TR_OK) {
        api_store_fail(r, e, &eb);
        return;
    }
    json_t *items = json_array();
    json_t *doc = jsonapi_list_doc(items, &p, total);
    json_t *included = flags != 0 ? json_array() : NULL;
    if (included != NULL)
        json_object_set_new(doc, "included", included);
    http_json_own(r, doc);
    for (int i = 0; i < n; i++) {
        json_array_append_new(items, rt_json(r, &list[i]));
        if (((flags & INC_SOURCE) &&
             !include_ws(r, included, list[i].source_id)) ||
            ((flags & INC_WORKSPACE) &&
             !include_ws(r, included, list[i].workspace_id)))
            return;
    }
    http_reply_json(r, 200, json_incref(doc));
}

static void rt_create(struct http_req *r)
{
    struct st_workspace w;
    if (!api_ws_from_route(r, &w) ||
        !api_ws_allow(r, &w, ACC_WS_ADMIN, "manage run triggers"))
        return;
    json_t *data = jsonapi_body(r, "run-triggers");
    if (data == NULL)
        return;
    json_t *d = json_object_get(
        json_object_get(json_object_get(data, "relationships"), "sourceable"),
        "data");
    const char *sid = json_string_value(json_object_get(d, "id"));
    const char *stype = json_string_value(json_object_get(d, "type"));
    if (!json_is_object(d) || sid == NULL || *sid == '\0' || strlen(sid) > 64) {
        http_error(r, 422, NULL,
                   "relationships.sourceable must name the workspace whose "
                   "applies trigger runs here: {\"data\": {\"id\": "
                   "\"ws-...\", \"type\": \"workspaces\"}}");
        return;
    }
    if (stype != NULL && strcmp(stype, "workspaces") != 0) {
        http_error(r, 422, NULL,
                   "relationships.sourceable must be of type \"workspaces\"");
        return;
    }
    struct st_run_trigger t;
    struct tr_errbuf eb = {{0}};
    tr_err e = store_rt_create(r->srv->db, r->arena, w.id, sid, &t, &eb);
    if (e != TR_OK) {
        api_store_fail(r, e, &eb);
        return;
    }
    http_reply_json(r, 201, json_pack("{s:o}", "data", rt_json(r, &t)));
}

/* The trigger the route names, if the caller may see its workspace (and,
 * write, change it). */
static bool rt_from_route(struct http_req *r, bool write,
                          struct st_run_trigger *t)
{
    struct st_workspace w;
    struct tr_errbuf eb = {{0}};
    tr_err e = store_rt_get(r->srv->db, r->arena, http_param(r, "id"), t, &eb);
    if (e != TR_OK) {
        api_store_fail(r, e, &eb);
        return false;
    }
    /* a workspace the caller cannot see answers as a missing trigger */
    if (!api_workspace_access(r, t->workspace_id, &w))
        return false;
    return !write || api_ws_allow(r, &w, ACC_WS_ADMIN, "manage run triggers");
}

static void rt_show(struct http_req *r)
{
    struct st_run_trigger t;
    if (rt_from_route(r, false, &t))
        http_reply_json(r, 200, json_pack("{s:o}", "data", rt_json(r, &t)));
}

static void rt_delete(struct http_req *r)
{
    struct st_run_trigger t;
    if (!rt_from_route(r, true, &t))
        return;
    struct tr_errbuf eb = {{0}};
    tr_err e = store_rt_delete(r->srv->db, r->arena, t.id, &eb);
    if (e != TR_OK) {
        api_store_fail(r, e, &eb);
        return;
    }
    http_reply(r, 204, NULL, "", 0);
}

const struct route api_run_trigger_routes[] = {
    {"GET", "/api/v2/workspaces/:id/run-triggers", rt_list,
     ROUTE_AUTH | ROUTE_WS_READ},
    {"POST", "/api/v2/workspaces/:id/run-triggers", rt_create, ROUTE_AUTH},
    {"GET", "/api/v2/run-triggers/:id", rt_show, ROUTE_AUTH},
    {"DELETE", "/api/v2/run-triggers/:id", rt_delete, ROUTE_AUTH},
    {0},
};
