/*
 * agent_pools.c - agent pools, their agent tokens and their agents
 * (TFE's agent-pools, authentication-tokens of a pool, and agents):
 *
 *   GET    /organizations/:org/agent-pools   list (q, include=workspaces,
 *          filter[allowed_workspaces][name]), paginated by name
 *   POST   /organizations/:org/agent-pools   create {name,
 *          organization-scoped} with relationships allowed-workspaces and
 *          allowed-projects
 *   GET    /agent-pools/:id (include=workspaces)   PATCH /agent-pools/:id
 *   DELETE /agent-pools/:id  (422 while a workspace uses the pool, or
 *          while it is its organization's default agent pool)
 *   PATCH  /agent-pools/:id/relationships/allowed-workspaces | -projects
 *          {data: [{type, id}]} replaces the list
 *   GET    /agent-pools/:id/authentication-tokens   POST (description)
 *   GET    /authentication-tokens/:id   DELETE (agtok-... ids; tokens.c
 *          hands them here, API tokens are at-...)
 *   GET    /agent-pools/:id/agents   GET /agents/:id
 *
 * An agent token's secret is in the create answer only.  Reading needs
 * sight of the organization, except a pool's token list, which as in TFE
 * needs the owners team or manage-agent-pools (others get 404); changing
 * pools and tokens needs the right to administer it.  An agent's status comes
 * from its node registry row: idle or busy by its running jobs, unknown when no
 * heartbeat came for AGENT_UNKNOWN_S, exited once it left or its token was
 * revoked.
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#include <string.h>

#include "api/api.h"
#include "api/workspaces_int.h"
#include "core/log.h"

#define POOL_NAME_MAX 255
#define DESCRIPTION_MAX 1024
#define AGENT_UNKNOWN_S 60

/* ---- documents --------------------------------------------------------- */

static json_t *ref_list(const char *type, const char *const *ids, int n)
{
    json_t *a = json_array();
    for (int i = 0; i < n; i++)
        json_array_append_new(
            a, json_pack("{s:s,s:s}", "id", ids[i], "type", type));
    return json_pack("{s:o}", "data", a);
}

static json_t *pool_json(struct http_req *r, const struct st_agent_pool *p)
{
    const char *self = arena_printf(r->arena, "/api/v2/agent-pools/%s", p->id);
    json_t *rels = json_pack(
        "{s:{s:{s:s,s:s}},s:o,s:o,s:o,s:{s:{s:s}},s:{s:{s:s}}}", "organization",
        "data", "id", p->org, "type", "organizations", "workspaces",
        ref_list("workspaces", p->ws, p->nws), "allowed-workspaces",
        ref_list("workspaces", p->allowed_ws, p->nallowed_ws),
        "allowed-projects",
        ref_list("projects", p->allowed_prj, p->nallowed_prj), "agents",
        "links", "related", arena_printf(r->arena, "%s/agents", self),
        "authentication-tokens", "links", "related",
        arena_printf(r->arena, "%s/authentication-tokens", self));
    return json_pack("{s:s,s:s,s:{s:s,s:o,s:b,s:I},s:o,s:{s:s}}", "id", p->id,
                     "type", "agent-pools", "attributes", "name", p->name,
                     "created-at", api_time(p->created_at),
                     "organization-scoped", p->org_scoped, "agent-count",
                     (json_int_t)p->agent_count, "relationships", rels, "links",
                     "self", self);
}

/* Adds included workspaces of pools[0..n) to doc; false after an error. */
static bool include_ws(struct http_req *r, json_t *doc,
                       const struct st_agent_pool *pools, int n)
{
    json_t *inc = json_array();
    json_object_set_new(doc, "included", inc);
    for (int i = 0; i < n; i++)
        for (int k = 0; k < pools[i].nws; k++) {
            struct st_workspace w;
            struct tr_errbuf eb = {{0}};
            tr_err e =
                store_ws_get(r->srv->db, r->arena, pools[i].ws[k], &w, &eb);
            if (e == TR_ERR_NOT_FOUND)
                continue; /* deleted meanwhile */
            if (e != TR_OK) {
                api_store_fail(r, e, &eb);
                return false;
            }
            json_array_append_new(inc, api_ws_json(r, &w));
        }
    return true;
}

/* include=workspaces (or nothing); false after a 400. */
static bool parse_include(struct http_req *r, bool *ws)
{
    const char *inc = http_query(r, "include");
    *ws = false;
    if (inc == NULL || *inc == '\0')
        return true;
    if (strcmp(inc, "workspaces") != 0) {
        http_error(r, 400, NULL,
                   "include must be workspaces: agent pools include nothing "
                   "else");
        return false;
    }
    *ws = true;
    return true;
}

static bool may_admin(struct http_req *r, const char *org)
{
    if (api_org_admin(r, org))
        return true;
    http_error(r, 403, "forbidden",
               "you may not manage the agent pools of this organization");
    return false;
}

/* ---- request bodies ---------------------------------------------------- */

/* relationships.<name>.data as ids of type; *given false when absent. */
static bool rel_ids(struct http_req *r, json_t *rels, const char *name,
                    const char *type, bool *given, const char ***ids, int *n)
{
    json_t *rel = json_object_get(rels, name);
    *given = false;
    *n = 0;
    if (rel == NULL || json_is_null(rel))
        return true;
    json_t *data = json_object_get(rel, "data");
    if (!json_is_array(data) || json_array_size(data) > STORE_APOOL_MAX_ITEMS) {
        http_error(r, 422, NULL,
                   arena_printf(r->arena,
                                "relationships.%s.data must be a list of at "
                                "most %d %s",
                                name, STORE_APOOL_MAX_ITEMS, type));
        return false;
    }
    *ids = arena_alloc(r->arena, sizeof(char *) * (json_array_size(data) + 1));
    for (size_t i = 0; i < json_array_size(data); i++) {
        json_t *o = json_array_get(data, i);
        json_t *id = json_object_get(o, "id");
        json_t *t = json_object_get(o, "type");
        if (!json_is_string(id) || json_string_length(id) == 0 ||
            json_string_length(id) > 64 ||
            (t != NULL &&
             !(json_is_string(t) && strcmp(json_string_value(t), type) == 0))) {
            http_error(r, 422, NULL,
                       arena_printf(r->arena,
                                    "relationships.%s.data[%zu] must be "
                                    "{\"type\": \"%s\", \"id\": ...}",
                                    name, i, type));
            return false;
        }
        (*ids)[(*n)++] = json_string_value(id);
    }
    *given = true;
    return true;
}

/* Name and organization-scoped of a create (name required) or update. */
static bool parse_attrs(struct http_req *r, json_t *data, bool create,
                        const char **name, int *scoped)
{
    *name = NULL;
    *scoped = -1;
    if (!jsonapi_attr_str(r, data, "name", name) ||
        !jsonapi_attr_bool(r, data, "organization-scoped", scoped))
        return false;
    if ((create && *name == NULL) ||
        (*name != NULL && (**name == '\0' || strlen(*name) > POOL_NAME_MAX))) {
        http_error(r, 422, NULL,
                   "Name can't be blank: name is required, 1 to 255 "
                   "characters");
        return false;
    }
    return true;
}

/* ---- pools ------------------------------------------------------------- */

static void pool_list(struct http_req *r)
{
    struct st_org o;
    struct page p;
    bool inc = false;
    if (!api_org_access(r, http_param(r, "org"), &o) || !jsonapi_page(r, &p) ||
        !parse_include(r, &inc))
        return;
    const char *q = http_query(r, "q");
    const char *ws = http_query(r, "filter[allowed_workspaces][name]");
    if ((q != NULL && strlen(q) > POOL_NAME_MAX) ||
        (ws != NULL && strlen(ws) > POOL_NAME_MAX)) {
        http_error(r, 400, NULL,
                   "q and filter[allowed_workspaces][name] take at most 255 "
                   "characters");
        return;
    }
    struct st_agent_pool *pools = NULL;
    int n = 0;
    int64_t total = 0;
    struct tr_errbuf eb = {{0}};
    tr_err e = store_apool_list(r->srv->db, r->arena, o.name, q, ws,
                                (p.number - 1) * p.size, p.size, &pools, &n,
                                &total, &eb);
    if (e != TR_OK) {
        api_store_fail(r, e, &eb);
        return;
    }
    json_t *items = json_array();
    for (int i = 0; i < n; i++)
        json_array_append_new(items, pool_json(r, &pools[i]));
    json_t *doc = http_json_own(r, jsonapi_list_doc(items, &p, total));
    if (inc && !include_ws(r, doc, pools, n))
        return;
    http_reply_json(r, 200, json_incref(doc));
}

static void pool_create(struct http_req *r)
{
    struct st_org o;
    if (!api_org_access(r, http_param(r, "org"), &o) || !may_admin(r, o.name))
        return;
    json_t *data = jsonapi_body(r, "agent-pools");
    const char *name = NULL;
    int scoped = -1;
    bool gw = false, gp = false;
    struct st_agent_pool in = {.org = o.name};
    json_t *rels = json_object_get(data, "relationships");
    if (data == NULL || !parse_attrs(r, data, true, &name, &scoped) ||
        !rel_ids(r, rels, "allowed-workspaces", "workspaces", &gw,
                 &in.allowed_ws, &in.nallowed_ws) ||
        !rel_ids(r, rels, "allowed-projects", "projects", &gp, &in.allowed_prj,
                 &in.nallowed_prj))
        return;
    in.name = name;
    in.org_scoped = scoped != 0;
    struct st_agent_pool p;
    struct tr_errbuf eb = {{0}};
    tr_err e = store_apool_create(r->srv->db, r->arena, &in, &p, &eb);
    if (e != TR_OK) {
        api_store_fail(r, e, &eb);
        return;
    }
    http_reply_json(r, 201, json_pack("{s:o}", "data", pool_json(r, &p)));
}

/* The pool the route names if the caller may see its organization (and,
 * admin, administer it); 404 otherwise. */
static bool pool_from_route(struct http_req *r, bool admin,
                            struct st_agent_pool *p)
{
    struct tr_errbuf eb = {{0}};
    tr_err e =
        store_apool_get(r->srv->db, r->arena, http_param(r, "id"), p, &eb);
    if (e != TR_OK) {
        api_store_fail(r, e, &eb);
        return false;
    }
    if (!api_org_access(r, p->org, NULL))
        return false;
    return !admin || may_admin(r, p->org);
}

static void reply_pool(struct http_req *r, const char *id, bool inc)
{
    struct st_agent_pool p;
    struct tr_errbuf eb = {{0}};
    tr_err e = store_apool_get(r->srv->db, r->arena, id, &p, &eb);
    if (e != TR_OK) {
        api_store_fail(r, e, &eb);
        return;
    }
    json_t *doc =
        http_json_own(r, json_pack("{s:o}", "data", pool_json(r, &p)));
    if (inc && !include_ws(r, doc, &p, 1))
        return;
    http_reply_json(r, 200, json_incref(doc));
}

static void pool_show(struct http_req *r)
{
    struct st_agent_pool p;
    bool inc = false;
    if (parse_include(r, &inc) && pool_from_route(r, false, &p))
        reply_pool(r, p.id, inc);
}

static void apply_update(struct http_req *r, const char *id,
                         const struct st_apool_update *u)
{
    struct tr_errbuf eb = {{0}};
    tr_err e = store_apool_update(r->srv->db, r->arena, id, u, &eb);
    if (e != TR_OK) {
        api_store_fail(r, e, &eb);
        return;
    }
    reply_pool(r, id, false);
}

static void pool_update(struct http_req *r)
{
    struct st_agent_pool p;
    if (!pool_from_route(r, true, &p))
        return;
    json_t *data = jsonapi_body(r, "agent-pools");
    struct st_apool_update u = {0};
    const char **ws = NULL, **prj = NULL;
    json_t *rels = json_object_get(data, "relationships");
    if (data == NULL || !parse_attrs(r, data, false, &u.name, &u.org_scoped) ||
        !rel_ids(r, rels, "allowed-workspaces", "workspaces", &u.set_ws, &ws,
                 &u.nws) ||
        !rel_ids(r, rels, "allowed-projects", "projects", &u.set_prj, &prj,
                 &u.nprj))
        return;
    u.ws = ws;
    u.prj = prj;
    apply_update(r, p.id, &u);
}

/* PATCH .../relationships/allowed-workspaces or allowed-projects. */
static void pool_allowed(struct http_req *r, bool projects)
{
    struct st_agent_pool p;
    if (!pool_from_route(r, true, &p))
        return;
    json_t *doc =
        r->body.len > 0
            ? http_json_own(r, json_loadb(r->body.data, r->body.len, 0, NULL))
            : NULL;
    if (!json_is_object(doc)) {
        http_error(r, 400, NULL,
                   "the body must be a JSON:API document: {\"data\": "
                   "[{\"type\": ..., \"id\": ...}]}");
        return;
    }
    /* the document is the relationship: {"data": [...]} */
    json_t *rels = http_json_own(
        r,
        json_pack("{s:O}", projects ? "allowed-projects" : "allowed-workspaces",
                  doc));
    struct st_apool_update u = {.org_scoped = -1};
    const char **ids = NULL;
    bool given = false;
    int n = 0;
    if (!rel_ids(r, rels, projects ? "allowed-projects" : "allowed-workspaces",
                 projects ? "projects" : "workspaces", &given, &ids, &n))
        return;
    if (projects) {
        u.set_prj = true, u.prj = ids, u.nprj = n;
    } else {
        u.set_ws = true, u.ws = ids, u.nws = n;
    }
    apply_update(r, p.id, &u);
}

static void pool_allowed_ws(struct http_req *r)
{
    pool_allowed(r, false);
}

static void pool_allowed_prj(struct http_req *r)
{
    pool_allowed(r, true);
}

/* Whether pool p is its organization's default agent pool (kept in the
 * organization's settings by organizations.c). */
static bool org_default(struct http_req *r, const struct st_agent_pool *p)
{
    struct st_org o;
    if (store_org_get(r->srv->db, r->arena, p->org, &o, NULL) != TR_OK)
        return false;
    json_t *s =
        http_json_own(r, json_loads(o.settings ? o.settings : "{}", 0, NULL));
    return util_streq(
        json_string_value(json_object_get(s, "default-agent-pool")), p->id);
}

static void pool_delete(struct http_req *r)
{
    struct st_agent_pool p;
    if (!pool_from_route(r, true, &p))
        return;
    if (org_default(r, &p)) {
        http_error(r, 422, NULL,
                   arena_printf(r->arena,
                                "agent pool %s is the default agent pool of "
                                "organization %s: change the organization's "
                                "default first",
                                p.id, p.org));
        return;
    }
    struct tr_errbuf eb = {{0}};
    tr_err e = store_apool_delete(r->srv->db, r->arena, p.id, &eb);
    if (e == TR_ERR_CONFLICT) {
        http_error(r, 422, NULL, tr_errbuf_msg(&eb, e));
        return;
    }
    if (e != TR_OK) {
        api_store_fail(r, e, &eb);
        return;
    }
    http_reply(r, 204, NULL, "", 0);
}

/* ---- agent tokens ------------------------------------------------------ */

static json_t *token_json(struct http_req *r, const struct st_agent_token *t,
                          const char *secret)
{
    json_t *o = json_pack(
        "{s:s,s:s,s:{s:o,s:o,s:s,s:s?},s:{s:{s:{s:s,s:s}}},s:{s:s}}", "id",
        t->id, "type", "authentication-tokens", "attributes", "created-at",
        api_time(t->created_at), "last-used-at", api_time(t->last_used_at),
        "description", t->description, "token", secret, "relationships",
        "agent-pool", "data", "id", t->pool_id, "type", "agent-pools", "links",
        "self",
        arena_printf(r->arena, "/api/v2/authentication-tokens/%s", t->id));
    if (secret == NULL)
        json_object_set_new(json_object_get(o, "attributes"), "token",
                            json_null());
    if (t->created_by != NULL)
        json_object_set_new(json_object_get(o, "relationships"), "created-by",
                            json_pack("{s:{s:s,s:s}}", "data", "id",
                                      t->created_by, "type", "users"));
    return o;
}

static void token_list(struct http_req *r)
{
    struct st_agent_pool p;
    struct page pg;
    if (!jsonapi_page(r, &pg) || !pool_from_route(r, false, &p))
        return;
    if (!api_org_may(r, p.org, ACC_ORG_MANAGE_AGENTS)) {
        http_error(r, 404, "not found",
                   arena_printf(r->arena, "agent pool %s not found", p.id));
        return;
    }
    struct st_agent_token *toks = NULL;
    int n = 0;
    int64_t total = 0;
    struct tr_errbuf eb = {{0}};
    tr_err e =
        store_atoken_list(r->srv->db, r->arena, p.id, (pg.number - 1) * pg.size,
                          pg.size, &toks, &n, &total, &eb);
    if (e != TR_OK) {
        api_store_fail(r, e, &eb);
        return;
    }
    json_t *items = json_array();
    for (int i = 0; i < n; i++)
        json_array_append_new(items, token_json(r, &toks[i], NULL));
    http_reply_json(r, 200, jsonapi_list_doc(items, &pg, total));
}

static void token_create(struct http_req *r)
{
    struct st_agent_pool p;
    if (!pool_from_route(r, true, &p))
        return;
    json_t *data = jsonapi_body(r, NULL);
    const char *desc = NULL;
    if (data == NULL || !jsonapi_attr_str(r, data, "description", &desc))
        return;
    if (desc != NULL && strlen(desc) > DESCRIPTION_MAX) {
        http_error(r, 422, NULL, "description takes at most 1024 characters");
        return;
    }
    struct st_agent_token t;
    char *secret = NULL;
    struct tr_errbuf eb = {{0}};
    tr_err e = store_atoken_create(r->srv->db, r->arena, p.id, desc,
                                   r->who.user_id, &t, &secret, &eb);
    if (e != TR_OK) {
        api_store_fail(r, e, &eb);
        return;
    }
    log_info("rid=%s agent token %s of pool %s created", r->request_id, t.id,
             p.id);
    http_reply_json(r, 201,
                    json_pack("{s:o}", "data", token_json(r, &t, secret)));
}

bool api_agent_token_id(const char *id)
{
    return id != NULL && strncmp(id, "agtok-", 6) == 0;
}

/* The token the route names and its pool, if the caller may see the
 * pool's organization (and, admin, administer it). */
static bool token_from_route(struct http_req *r, bool admin,
                             struct st_agent_token *t)
{
    struct tr_errbuf eb = {{0}};
    struct st_agent_pool p;
    tr_err e =
        store_atoken_get(r->srv->db, r->arena, http_param(r, "id"), t, &eb);
    if (e == TR_OK)
        e = store_apool_get(r->srv->db, r->arena, t->pool_id, &p, &eb);
    if (e != TR_OK) {
        api_store_fail(r, e, &eb);
        return false;
    }
    if (!api_org_access(r, p.org, NULL))
        return false;
    return !admin || may_admin(r, p.org);
}

void api_agent_token_get(struct http_req *r)
{
    struct st_agent_token t;
    if (token_from_route(r, false, &t))
        http_reply_json(r, 200,
                        json_pack("{s:o}", "data", token_json(r, &t, NULL)));
}

void api_agent_token_delete(struct http_req *r)
{
    struct st_agent_token t;
    if (!token_from_route(r, true, &t))
        return;
    struct tr_errbuf eb = {{0}};
    tr_err e = store_atoken_delete(r->srv->db, r->arena, t.id, &eb);
    if (e != TR_OK) {
        api_store_fail(r, e, &eb);
        return;
    }
    log_info("rid=%s agent token %s revoked", r->request_id, t.id);
    http_reply(r, 204, NULL, "", 0);
}

/* ---- agents ------------------------------------------------------------ */

static const char *agent_status(struct http_req *r, const struct st_node *n)
{
    if (n->revoked || util_streq(n->state, "gone"))
        return "exited";
    const char *stale =
        util_iso_from_unix(r->arena, util_now_unix() - AGENT_UNKNOWN_S);
    if (n->last_heartbeat_at == NULL || strcmp(n->last_heartbeat_at, stale) < 0)
        return "unknown";
    return n->running_jobs > 0 ? "busy" : "idle";
}

static json_t *agent_json(struct http_req *r, const struct st_node *n)
{
    return json_pack(
        "{s:s,s:s,s:{s:s,s:s,s:s,s:o},s:{s:{s:{s:s,s:s}}},s:{s:s}}", "id",
        n->id, "type", "agents", "attributes", "name", n->name, "status",
        agent_status(r, n), "ip-address", n->address, "last-ping-at",
        api_time(n->last_heartbeat_at), "relationships", "agent-pool", "data",
        "id", n->pool_id, "type", "agent-pools", "links", "self",
        arena_printf(r->arena, "/api/v2/agents/%s", n->id));
}

static void agent_list(struct http_req *r)
{
    struct st_agent_pool p;
    struct page pg;
    if (!jsonapi_page(r, &pg) || !pool_from_route(r, false, &p))
        return;
    struct st_node *agents = NULL;
    int n = 0;
    int64_t total = 0;
    struct tr_errbuf eb = {{0}};
    tr_err e =
        store_agent_list(r->srv->db, r->arena, p.id, (pg.number - 1) * pg.size,
                         pg.size, &agents, &n, &total, &eb);
    if (e != TR_OK) {
        api_store_fail(r, e, &eb);
        return;
    }
    json_t *items = json_array();
    for (int i = 0; i < n; i++)
        json_array_append_new(items, agent_json(r, &agents[i]));
    http_reply_json(r, 200, jsonapi_list_doc(items, &pg, total));
}

static void agent_show(struct http_req *r)
{
    struct st_node n;
    struct st_agent_pool p;
    struct tr_errbuf eb = {{0}};
    const char *id = http_param(r, "id");
    tr_err e = strncmp(id, "agent-", 6) == 0
                   ? store_node_get(r->srv->db, r->arena, id, &n, &eb)
                   : tr_fail(&eb, TR_ERR_NOT_FOUND, "agent %s not found", id);
    if (e == TR_OK && n.pool_id == NULL)
        e = tr_fail(&eb, TR_ERR_NOT_FOUND, "agent %s not found", id);
    if (e == TR_OK)
        e = store_apool_get(r->srv->db, r->arena, n.pool_id, &p, &eb);
    if (e != TR_OK) {
        api_store_fail(r, e, &eb);
        return;
    }
    if (!api_org_access(r, p.org, NULL))
        return;
    http_reply_json(r, 200, json_pack("{s:o}", "data", agent_json(r, &n)));
}

#define POOL "/api/v2/agent-pools/:id"

const struct route api_agent_pool_routes[] = {
    {"GET", "/api/v2/organizations/:org/agent-pools", pool_list, ROUTE_AUTH},
    {"POST", "/api/v2/organizations/:org/agent-pools", pool_create, ROUTE_AUTH},
    {"GET", POOL, pool_show, ROUTE_AUTH},
    {"PATCH", POOL, pool_update, ROUTE_AUTH},
    {"DELETE", POOL, pool_delete, ROUTE_AUTH},
    {"PATCH", POOL "/relationships/allowed-workspaces", pool_allowed_ws,
     ROUTE_AUTH},
    {"PATCH", POOL "/relationships/allowed-projects", pool_allowed_prj,
     ROUTE_AUTH},
    {"GET", POOL "/authentication-tokens", token_list, ROUTE_AUTH},
    {"POST", POOL "/authentication-tokens", token_create, ROUTE_AUTH},
    {"GET", POOL "/agents", agent_list, ROUTE_AUTH},
    {"GET", "/api/v2/agents/:id", agent_show, ROUTE_AUTH},
    {0},
};
