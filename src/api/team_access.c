/*
 * team_access.c - a team's access to workspaces and projects, as TFE's
 * team-workspaces and team-projects APIs:
 *
 *   GET  /team-workspaces?filter[workspace][id]=ws-..   POST /team-workspaces
 *   GET/PATCH/DELETE /team-workspaces/:id
 *   GET  /team-projects?filter[project][id]=prj-..      POST /team-projects
 *   GET/PATCH/DELETE /team-projects/:id
 *
 * A level (read, plan, write, admin; read, write, maintain, admin for
 * projects) fixes every permission; "custom" takes each one from the
 * request, and only custom does.  Documents always show every permission
 * the level gives.  What the permissions allow is domain/access.c's.
 * Managing a workspace's team access needs admin on it (ACC_WS_TEAMS), a
 * project's needs its teams "manage" (ACC_PRJ_TEAMS_MANAGE); the team must
 * belong to the target's organization.
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#include <string.h>

#include "api/teams_int.h"

/* One permission attribute: an enum (values listed) or a boolean. */
struct perm {
    const char *name;
    const char *const *values; /* NULL: boolean */
};

static const char *const runs_v[] = {"read", "plan", "apply", NULL};
static const char *const vars_v[] = {"none", "read", "write", NULL};
static const char *const sv_v[] = {"none", "read-outputs", "read", "write",
                                   NULL};
static const char *const mocks_v[] = {"none", "read", NULL};
static const char *const settings_v[] = {"read", "update", "delete", NULL};
static const char *const teams_v[] = {"none", "read", "manage", NULL};

static const struct perm ws_perms[] = {
    {"runs", runs_v},
    {"variables", vars_v},
    {"state-versions", sv_v},
    {"sentinel-mocks", mocks_v},
    {"workspace-locking", NULL},
    {"run-tasks", NULL},
    {NULL, NULL},
};

static const struct perm prj_perms[] = {
    {"settings", settings_v},
    {"teams", teams_v},
    {NULL, NULL},
};

static const struct perm prj_ws_perms[] = {
    {"runs", runs_v},         {"sentinel-mocks", mocks_v},
    {"state-versions", sv_v}, {"variables", vars_v},
    {"create", NULL},         {"locking", NULL},
    {"move", NULL},           {"delete", NULL},
    {"run-tasks", NULL},      {NULL, NULL},
};

/* Each level's permissions, as JSON text. */
struct level {
    const char *name;
    const char *perms;
};

static const struct level ws_levels[] = {
    {"read", "{\"runs\":\"read\",\"variables\":\"read\",\"state-versions\":"
             "\"read\",\"sentinel-mocks\":\"none\",\"workspace-locking\":"
             "false,\"run-tasks\":false}"},
    {"plan", "{\"runs\":\"plan\",\"variables\":\"read\",\"state-versions\":"
             "\"read\",\"sentinel-mocks\":\"none\",\"workspace-locking\":"
             "false,\"run-tasks\":false}"},
    {"write", "{\"runs\":\"apply\",\"variables\":\"write\",\"state-versions\":"
              "\"write\",\"sentinel-mocks\":\"read\",\"workspace-locking\":"
              "true,\"run-tasks\":false}"},
    {"admin", "{\"runs\":\"apply\",\"variables\":\"write\",\"state-versions\":"
              "\"write\",\"sentinel-mocks\":\"read\",\"workspace-locking\":"
              "true,\"run-tasks\":true}"},
    /* custom: what is not given */
    {"custom", "{\"runs\":\"read\",\"variables\":\"none\",\"state-versions\":"
               "\"none\",\"sentinel-mocks\":\"none\",\"workspace-locking\":"
               "false,\"run-tasks\":false}"},
    {NULL, NULL},
};

#define PRJ_WS(runs, mocks, sv, vars, create, lock, move, del, tasks)          \
    "\"workspace-access\":{\"runs\":\"" runs "\",\"sentinel-mocks\":\"" mocks  \
    "\",\"state-versions\":\"" sv "\",\"variables\":\"" vars                   \
    "\",\"create\":" create ",\"locking\":" lock ",\"move\":" move             \
    ",\"delete\":" del ",\"run-tasks\":" tasks "}"

static const struct level prj_levels[] = {
    {"read",
     "{\"project-access\":{\"settings\":\"read\",\"teams\":\"none\"}," PRJ_WS(
         "read", "none", "read", "read", "false", "false", "false", "false",
         "false") "}"},
    {"write",
     "{\"project-access\":{\"settings\":\"read\",\"teams\":\"none\"}," PRJ_WS(
         "apply", "read", "write", "write", "false", "true", "false", "false",
         "false") "}"},
    {"maintain",
     "{\"project-access\":{\"settings\":\"read\",\"teams\":\"none\"}," PRJ_WS(
         "apply", "read", "write", "write", "true", "true", "false", "true",
         "true") "}"},
    {"admin", "{\"project-access\":{\"settings\":\"delete\",\"teams\":"
              "\"manage\"}," PRJ_WS("apply", "read", "write", "write", "true",
                                    "true", "true", "true", "true") "}"},
    {"custom",
     "{\"project-access\":{\"settings\":\"read\",\"teams\":\"none\"}," PRJ_WS(
         "read", "none", "none", "none", "false", "false", "false", "false",
         "false") "}"},
    {NULL, NULL},
};

/* What differs between the two resources. */
struct kind {
    enum st_ta_kind store;
    const char *type;   /* "team-workspaces" */
    const char *target; /* relationship: "workspace" */
    const char *target_type;
    const char *filter; /* "filter[workspace][id]" */
    const struct level *levels;
};

static const struct kind ws_kind = {
    ST_TA_WS,     "team-workspaces",       "workspace",
    "workspaces", "filter[workspace][id]", ws_levels};
static const struct kind prj_kind = {
    ST_TA_PRJ,  "team-projects",       "project",
    "projects", "filter[project][id]", prj_levels};

static const struct level *find_level(const struct kind *k, const char *name)
{
    for (const struct level *l = k->levels; l->name; l++)
        if (name != NULL && strcmp(l->name, name) == 0)
            return l;
    return NULL;
}

/* ---- documents ---------------------------------------------------------- */

/* The permissions of t: its level's, with t's custom ones over them. */
static json_t *effective(const struct kind *k, const struct st_team_access *t)
{
    const struct level *l = find_level(k, t->access);
    json_t *p = json_loads(l ? l->perms : "{}", 0, NULL);
    if (l != NULL && strcmp(l->name, "custom") == 0) {
        json_t *c = json_loads(t->perms ? t->perms : "{}", 0, NULL);
        if (k->store == ST_TA_WS) {
            json_object_update(p, c);
        } else {
            json_object_update(json_object_get(p, "project-access"),
                               json_object_get(c, "project-access"));
            json_object_update(json_object_get(p, "workspace-access"),
                               json_object_get(c, "workspace-access"));
        }
        json_decref(c);
    }
    return p;
}

static json_t *ta_json(const struct kind *k, const struct st_team_access *t)
{
    json_t *attrs = effective(k, t);
    json_object_set_new(attrs, "access", json_string(t->access));
    return json_pack("{s:s,s:s,s:o,s:{s:{s:{s:s,s:s}},s:{s:{s:s,s:s}}}}", "id",
                     t->id, "type", k->type, "attributes", attrs,
                     "relationships", "team", "data", "type", "teams", "id",
                     t->team_id, k->target, "data", "type", k->target_type,
                     "id", t->target_id);
}

static void reply(struct http_req *r, int status, const struct kind *k,
                  const struct st_team_access *t)
{
    http_reply_json(r, status, json_pack("{s:o}", "data", ta_json(k, t)));
}

/* ---- access ------------------------------------------------------------- */

/* Loads target id of kind k if the caller may see it; *org gets its
 * organization.  manage: and may manage its team access (403).  404 when
 * it cannot be seen. */
static bool target_access(struct http_req *r, const struct kind *k,
                          const char *id, bool manage, const char **org)
{
    if (k->store == ST_TA_WS) {
        struct st_workspace w;
        if (!api_workspace_access(r, id, &w))
            return false;
        *org = w.org;
        return !manage ||
               api_ws_allow(r, &w, ACC_WS_TEAMS, "manage team access");
    }
    struct st_project p;
    if (!api_project_access(r, id, &p))
        return false;
    *org = p.org;
    if (manage)
        return api_project_allow(r, &p, ACC_PRJ_TEAMS_MANAGE,
                                 "manage team access of");
    return api_project_allow(r, &p, ACC_PRJ_TEAMS_READ, "read team access of");
}

/* Loads :id of kind k if the caller may see its target. */
static bool ta_access(struct http_req *r, const struct kind *k, bool manage,
                      struct st_team_access *t)
{
    const char *id = http_param(r, "id");
    struct tr_errbuf eb = {{0}};
    tr_err e = store_ta_get(r->srv->db, r->arena, k->store, id, t, &eb);
    if (e == TR_ERR_NOT_FOUND) {
        http_error(r, 404, "not found",
                   arena_printf(r->arena, "%s %s not found", k->type, id));
        return false;
    }
    if (e != TR_OK) {
        api_store_fail(r, e, &eb);
        return false;
    }
    const char *org = NULL;
    if (target_access(r, k, t->target_id, manage, &org))
        return true;
    if (r->status == 404)
        http_error(r, 404, "not found",
                   arena_printf(r->arena, "%s %s not found", k->type, id));
    return false;
}

/* ---- input -------------------------------------------------------------- */

/* Checks the permissions of table ps in object in (nullable) and copies
 * them to out; 422 on an unknown value or a wrong type. */
static bool parse_perms(struct http_req *r, const struct perm *ps, json_t *in,
                        json_t *out, const char *where, const char **first)
{
    for (const struct perm *p = ps; p->name; p++) {
        json_t *v = json_object_get(in, p->name);
        if (v == NULL || json_is_null(v))
            continue;
        bool ok = false;
        if (p->values == NULL) {
            ok = json_is_boolean(v);
        } else if (json_is_string(v)) {
            for (const char *const *s = p->values; *s && !ok; s++)
                ok = strcmp(*s, json_string_value(v)) == 0;
        }
        if (!ok) {
            http_error(r, 422, NULL,
                       arena_printf(r->arena, "%s%s is not a valid value",
                                    where, p->name));
            return false;
        }
        json_object_set(out, p->name, v);
        if (*first == NULL)
            *first = p->name;
    }
    return true;
}

/* "State versions" for "state-versions": how TFE names an attribute in
 * messages. */
static const char *label(struct http_req *r, const char *name)
{
    char *s = arena_strdup(r->arena, name);
    for (char *p = s; *p; p++)
        if (*p == '-')
            *p = ' ';
    if (*s >= 'a' && *s <= 'z')
        *s = (char)(*s - 'a' + 'A');
    return s;
}

/* Reads access and the custom permissions of a create or update body:
 * *level (NULL: not given), *perms (JSON text, NULL: none given). */
static bool parse_ta(struct http_req *r, const struct kind *k, json_t *data,
                     const char *cur_level, const char **level,
                     const char **perms)
{
    json_t *attrs = jsonapi_attrs(data);
    *level = NULL;
    *perms = NULL;
    if (!jsonapi_attr_str(r, data, "access", level))
        return false;
    if (*level != NULL && find_level(k, *level) == NULL) {
        http_error(r, 422, NULL,
                   arena_printf(r->arena, "access must be one of %s",
                                k->store == ST_TA_WS
                                    ? "read, plan, write, admin, custom"
                                    : "read, write, maintain, admin, custom"));
        return false;
    }
    json_t *out = http_json_own(r, json_object());
    bool given = false;
    const char *first = NULL;
    if (k->store == ST_TA_WS) {
        if (!parse_perms(r, ws_perms, attrs, out, "", &first))
            return false;
        given = json_object_size(out) > 0;
    } else {
        json_t *pa = json_object_get(attrs, "project-access");
        json_t *wa = json_object_get(attrs, "workspace-access");
        json_t *po = json_object(), *wo = json_object();
        json_object_set_new(out, "project-access", po);
        json_object_set_new(out, "workspace-access", wo);
        if ((pa != NULL && !json_is_null(pa) && !json_is_object(pa)) ||
            (wa != NULL && !json_is_null(wa) && !json_is_object(wa))) {
            http_error(r, 422, NULL,
                       "project-access and workspace-access must be objects");
            return false;
        }
        if (!parse_perms(r, prj_perms, pa, po, "project-access.", &first) ||
            !parse_perms(r, prj_ws_perms, wa, wo, "workspace-access.", &first))
            return false;
        given = json_object_size(po) + json_object_size(wo) > 0;
    }
    const char *eff = *level != NULL ? *level : cur_level;
    if (given && (eff == NULL || strcmp(eff, "custom") != 0)) {
        /* TFE's words, which go-tfe's tests compare */
        http_error(r, 422, NULL,
                   arena_printf(r->arena,
                                "%s is read-only when access level is '%s'; "
                                "use the 'custom' access level to set this "
                                "attribute.",
                                label(r, first), eff ? eff : "unset"));
        return false;
    }
    if (given || (*level != NULL && strcmp(*level, "custom") != 0))
        *perms = api_ws_dump(r, out); /* a fixed level clears custom ones */
    return true;
}

/* ---- handlers ----------------------------------------------------------- */

static void list(struct http_req *r, const struct kind *k)
{
    struct page p;
    const char *target = http_query(r, k->filter);
    if (!jsonapi_page(r, &p))
        return;
    if (target == NULL || *target == '\0') {
        http_error(r, 400, NULL,
                   arena_printf(r->arena, "%s is required", k->filter));
        return;
    }
    const char *org = NULL;
    if (!target_access(r, k, target, false, &org))
        return;
    struct st_team_access *rows = NULL;
    int n = 0;
    int64_t total = 0;
    struct tr_errbuf eb = {{0}};
    tr_err e =
        store_ta_list(r->srv->db, r->arena, k->store, target, NULL,
                      (p.number - 1) * p.size, p.size, &rows, &n, &total, &eb);
    if (e != TR_OK) {
        api_store_fail(r, e, &eb);
        return;
    }
    json_t *items = json_array();
    for (int i = 0; i < n; i++)
        json_array_append_new(items, ta_json(k, &rows[i]));
    http_reply_json(r, 200, jsonapi_list_doc(items, &p, total));
}

static void create(struct http_req *r, const struct kind *k)
{
    json_t *data = jsonapi_body(r, k->type);
    if (data == NULL)
        return;
    const char *target = jsonapi_rel_id(data, k->target);
    const char *team_id = jsonapi_rel_id(data, "team");
    if (target == NULL || team_id == NULL) {
        http_error(r, 422, NULL,
                   arena_printf(r->arena,
                                "relationships team and %s are required",
                                k->target));
        return;
    }
    const char *org = NULL, *level = NULL, *perms = NULL;
    struct st_team team;
    if (!target_access(r, k, target, true, &org) ||
        !api_team_access(r, team_id, &team, NULL, NULL))
        return;
    if (strcmp(team.org, org) != 0) {
        http_error(r, 422, NULL,
                   arena_printf(r->arena,
                                "team %s is not in the %s's organization",
                                team_id, k->target));
        return;
    }
    if (!parse_ta(r, k, data, NULL, &level, &perms))
        return;
    if (level == NULL) {
        http_error(r, 422, NULL, "access is required");
        return;
    }
    struct st_team_access t = {.team_id = team.id,
                               .target_id = target,
                               .access = level,
                               .perms = perms};
    struct tr_errbuf eb = {{0}};
    tr_err e = store_ta_create(r->srv->db, r->arena, k->store, &t, &eb);
    if (e != TR_OK) {
        api_store_fail(r, e, &eb);
        return;
    }
    reply(r, 201, k, &t);
}

static void show(struct http_req *r, const struct kind *k)
{
    struct st_team_access t;
    if (ta_access(r, k, false, &t))
        reply(r, 200, k, &t);
}

static void update(struct http_req *r, const struct kind *k)
{
    struct st_team_access t;
    const char *level = NULL, *perms = NULL;
    if (!ta_access(r, k, true, &t))
        return;
    json_t *data = jsonapi_body(r, k->type);
    if (data == NULL || !parse_ta(r, k, data, t.access, &level, &perms))
        return;
    struct tr_errbuf eb = {{0}};
    if (perms != NULL && (level == NULL || strcmp(level, "custom") == 0) &&
        t.perms != NULL) {
        /* custom permissions, alone or with access "custom", are merged
         * over the stored ones: what is not given is kept (the tfe
         * provider sends only the ones that changed); a fixed level
         * stored none, so there is nothing to keep */
        json_t *cur = http_json_own(r, json_loads(t.perms, 0, NULL));
        json_t *add = http_json_own(r, json_loads(perms, 0, NULL));
        if (cur != NULL && add != NULL) {
            if (k->store == ST_TA_WS) {
                json_object_update(cur, add);
            } else {
                const char *blocks[] = {"project-access", "workspace-access"};
                for (int i = 0; i < 2; i++) {
                    json_t *b = json_object_get(cur, blocks[i]);
                    if (b == NULL)
                        json_object_set(cur, blocks[i],
                                        json_object_get(add, blocks[i]));
                    else
                        json_object_update(b, json_object_get(add, blocks[i]));
                }
            }
            perms = api_ws_dump(r, cur);
        }
    }
    tr_err e = store_ta_update(r->srv->db, r->arena, k->store, t.id, level,
                               perms, &eb);
    if (e == TR_OK)
        e = store_ta_get(r->srv->db, r->arena, k->store, t.id, &t, &eb);
    if (e != TR_OK) {
        api_store_fail(r, e, &eb);
        return;
    }
    reply(r, 200, k, &t);
}

static void destroy(struct http_req *r, const struct kind *k)
{
    struct st_team_access t;
    if (!ta_access(r, k, true, &t))
        return;
    struct tr_errbuf eb = {{0}};
    tr_err e = store_ta_delete(r->srv->db, r->arena, k->store, t.id, &eb);
    if (e != TR_OK) {
        api_store_fail(r, e, &eb);
        return;
    }
    http_reply(r, 204, NULL, "", 0);
}

/* clang-format off */
static void tw_list(struct http_req *r) { list(r, &ws_kind); }
static void tw_create(struct http_req *r) { create(r, &ws_kind); }
static void tw_show(struct http_req *r) { show(r, &ws_kind); }
static void tw_update(struct http_req *r) { update(r, &ws_kind); }
static void tw_destroy(struct http_req *r) { destroy(r, &ws_kind); }
static void tp_list(struct http_req *r) { list(r, &prj_kind); }
static void tp_create(struct http_req *r) { create(r, &prj_kind); }
static void tp_show(struct http_req *r) { show(r, &prj_kind); }
static void tp_update(struct http_req *r) { update(r, &prj_kind); }
static void tp_destroy(struct http_req *r) { destroy(r, &prj_kind); }
/* clang-format on */

const struct route api_team_access_routes[] = {
    {"GET", "/api/v2/team-workspaces", tw_list, ROUTE_AUTH},
    {"POST", "/api/v2/team-workspaces", tw_create, ROUTE_AUTH},
    {"GET", "/api/v2/team-workspaces/:id", tw_show, ROUTE_AUTH},
    {"PATCH", "/api/v2/team-workspaces/:id", tw_update, ROUTE_AUTH},
    {"DELETE", "/api/v2/team-workspaces/:id", tw_destroy, ROUTE_AUTH},
    {"GET", "/api/v2/team-projects", tp_list, ROUTE_AUTH},
    {"POST", "/api/v2/team-projects", tp_create, ROUTE_AUTH},
    {"GET", "/api/v2/team-projects/:id", tp_show, ROUTE_AUTH},
    {"PATCH", "/api/v2/team-projects/:id", tp_update, ROUTE_AUTH},
    {"DELETE", "/api/v2/team-projects/:id", tp_destroy, ROUTE_AUTH},
    {0},
};
