/*
 * nodes.c - site administration of the cluster's node registry:
 *
 *   GET  /admin/nodes                      filter[state], filter[role]
 *   GET  /admin/nodes/:id
 *   POST /admin/nodes/:id/actions/revoke   a secondary's credential
 *
 * Nodes are listed whatever their state (gone ones until the leader
 * forgets them, 7 days after their last heartbeat), primaries first.
 * Revoking refuses every later use of the node's credential, so its next
 * claim fails, and marks it gone; a primary holds no credential and is
 * stopped instead.  Only site admins see these routes; everyone else gets
 * 404.
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#include <string.h>

#include "api/api.h"
#include "core/log.h"

static bool need_admin(struct http_req *r)
{
    if (r->who.kind == PRINC_USER && r->who.is_admin)
        return true;
    http_error(r, 404, "not found", "resource not found");
    return false;
}

static json_t *node_json(struct http_req *r, const struct st_node *n)
{
    json_t *attrs = json_pack(
        "{s:s,s:s,s:s,s:s,s:I,s:I,s:o,s:b,s:s,s:b,s:o}", "name", n->name,
        "role", n->role, "address", n->address, "version", n->version,
        "capacity", (json_int_t)n->capacity, "running-jobs",
        (json_int_t)n->running_jobs, "last-heartbeat-at",
        api_time(n->last_heartbeat_at), "leader", n->leader, "state", n->state,
        "revoked", n->revoked, "created-at", api_time(n->created_at));
    return json_pack("{s:s,s:s,s:o,s:{s:s}}", "id", n->id, "type", "nodes",
                     "attributes", attrs, "links", "self",
                     arena_printf(r->arena, "/api/v2/admin/nodes/%s", n->id));
}

/* A filter[...] query value: NULL when absent, else one of allowed;
 * false after answering 400. */
static bool one_of(struct http_req *r, const char *key,
                   const char *const *allowed, const char **out)
{
    const char *v = http_query(r, key);
    *out = NULL;
    if (v == NULL || *v == '\0')
        return true;
    for (int i = 0; allowed[i] != NULL; i++)
        if (strcmp(v, allowed[i]) == 0) {
            *out = allowed[i];
            return true;
        }
    http_error(r, 400, NULL,
               arena_printf(r->arena, "%s must be one of: %s", key,
                            strcmp(key, "filter[role]") == 0
                                ? "primary, secondary, agent"
                                : "active, draining, gone"));
    return false;
}

static void nodes_list(struct http_req *r)
{
    static const char *const states[] = {"active", "draining", "gone", NULL};
    static const char *const roles[] = {"primary", "secondary", "agent", NULL};
    struct page p;
    const char *state = NULL, *role = NULL;
    if (!need_admin(r) || !jsonapi_page(r, &p) ||
        !one_of(r, "filter[state]", states, &state) ||
        !one_of(r, "filter[role]", roles, &role))
        return;
    struct st_node *items = NULL;
    int n = 0;
    struct tr_errbuf eb = {{0}};
    tr_err e = store_node_list(r->srv->db, r->arena, true, &items, &n, &eb);
    if (e != TR_OK) {
        api_store_fail(r, e, &eb);
        return;
    }
    json_t *data = json_array();
    int64_t total = 0, first = (int64_t)(p.number - 1) * p.size;
    for (int i = 0; i < n; i++) {
        if ((state != NULL && !util_streq(items[i].state, state)) ||
            (role != NULL && !util_streq(items[i].role, role)))
            continue;
        if (total >= first && total < first + p.size)
            json_array_append_new(data, node_json(r, &items[i]));
        total++;
    }
    http_reply_json(r, 200, jsonapi_list_doc(data, &p, total));
}

static bool load_node(struct http_req *r, struct st_node *out)
{
    struct tr_errbuf eb = {{0}};
    tr_err e =
        store_node_get(r->srv->db, r->arena, http_param(r, "id"), out, &eb);
    if (e != TR_OK)
        api_store_fail(r, e, &eb);
    return e == TR_OK;
}

static void node_show(struct http_req *r)
{
    struct st_node n;
    if (need_admin(r) && load_node(r, &n))
        http_reply_json(r, 200, json_pack("{s:o}", "data", node_json(r, &n)));
}

static void node_revoke(struct http_req *r)
{
    struct st_node n;
    if (!need_admin(r) || !load_node(r, &n))
        return;
    if (util_streq(n.role, "primary")) {
        http_error(r, 422, NULL,
                   "a primary has no node credential to revoke; stop the "
                   "primary instead");
        return;
    }
    struct tr_errbuf eb = {{0}};
    tr_err e = store_node_revoke(r->srv->db, r->arena, n.id, &eb);
    if (e == TR_OK)
        e = store_node_get(r->srv->db, r->arena, n.id, &n, &eb);
    if (e != TR_OK) {
        api_store_fail(r, e, &eb);
        return;
    }
    log_info("rid=%s node %s (%s) revoked by %s", r->request_id, n.id, n.name,
             r->who.username);
    http_reply_json(r, 200, json_pack("{s:o}", "data", node_json(r, &n)));
}

const struct route api_node_routes[] = {
    {"GET", "/api/v2/admin/nodes", nodes_list, ROUTE_AUTH},
    {"GET", "/api/v2/admin/nodes/:id", node_show, ROUTE_AUTH},
    {"POST", "/api/v2/admin/nodes/:id/actions/revoke", node_revoke, ROUTE_AUTH},
    {0},
};
