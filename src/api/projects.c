/*
 * projects.c - the projects API: list and create in an organization, read,
 * update and delete by id.
 *
 * Project names follow TFE: 3 to 40 letters, digits, spaces, '-' and '_',
 * not starting or ending with a space; descriptions up to 256 characters.
 * The default project cannot be deleted, nor can a project that still
 * holds workspaces (409).  A project of an organization the caller cannot
 * see answers 404 like a missing one.  Key/value tag bindings ride along
 * (tag_bindings.c): the "tag-bindings" relationship of a create or update
 * replaces them and include=effective_tag_bindings adds them.
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#include <string.h>

#include "api/workspaces_int.h"

#define MAX_DESCRIPTION 256

json_t *api_project_json(struct http_req *r, const struct st_project *p)
{
    access_t f = api_project_perms(r, p);
    bool w = f & ACC_PRJ_UPDATE;
    const char *self = arena_printf(r->arena, "/api/v2/projects/%s", p->id);
    json_t *j = json_pack(
        "{s:s,s:s,s:{s:s,s:s,s:b,s:I,s:o,s:{s:b,s:b,s:b,s:b,s:b}},"
        "s:{s:{s:{s:s,s:s}}},s:{s:s}}",
        "id", p->id, "type", "projects", "attributes", "name", p->name,
        "description", p->description, "is-default", p->is_default,
        "workspace-count", (json_int_t)p->workspace_count, "created-at",
        api_time(p->created_at), "permissions", "can-read", 1, "can-update", w,
        "can-destroy", (f & ACC_PRJ_DELETE) && !p->is_default,
        "can-create-workspace", (f & ACC_PRJ_WS_CREATE) != 0,
        "can-move-workspace", (f & ACC_PRJ_WS_MOVE) != 0, "relationships",
        "organization", "data", "id", p->org, "type", "organizations", "links",
        "self", self);
    api_tb_rel_links(r, json_object_get(j, "relationships"), self);
    return j;
}

/* include=effective_tag_bindings (TFE's only project include); anything
 * else is 400. */
static bool parse_include(struct http_req *r, bool *etb)
{
    const char *inc = http_query(r, "include");
    *etb = false;
    if (inc == NULL)
        return true;
    char *copy = arena_strdup(r->arena, inc);
    char *save = NULL;
    for (char *t = strtok_r(copy, ",", &save); t != NULL;
         t = strtok_r(NULL, ",", &save)) {
        if (strcmp(t, "effective_tag_bindings") != 0) {
            http_error(
                r, 400, "bad request",
                arena_printf(r->arena, "Invalid include parameter: %s", t));
            return false;
        }
        *etb = true;
    }
    return true;
}

/* The document of projects prj (n; one: a single resource), with their
 * effective tag bindings included when asked; NULL after answering a
 * store failure. */
static json_t *projects_doc(struct http_req *r, const struct st_project *prj,
                            int n, bool one, bool etb, const struct page *p,
                            int64_t total)
{
    json_t *items = json_array();
    json_t *inc = etb ? json_array() : NULL;
    for (int i = 0; i < n; i++) {
        json_t *j = api_project_json(r, &prj[i]);
        json_array_append_new(items, j);
        if (etb &&
            !api_tb_effective(r, ST_TB_PROJECT, prj[i].id,
                              json_object_get(j, "relationships"), inc)) {
            json_decref(items);
            json_decref(inc);
            return NULL;
        }
    }
    json_t *doc = one ? json_pack("{s:O}", "data", json_array_get(items, 0))
                      : jsonapi_list_doc(json_incref(items), p, total);
    json_decref(items);
    if (inc != NULL)
        json_object_set_new(doc, "included", inc);
    return doc;
}

static bool valid_project_name(const char *s)
{
    size_t n = strlen(s);
    if (n < 3 || n > 40 || s[0] == ' ' || s[n - 1] == ' ')
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                  (c >= '0' && c <= '9') || c == '-' || c == '_' || c == ' ';
        if (!ok)
            return false;
    }
    return true;
}

/* What a create or update body asks for; NULL / absent: keep. */
struct prj_in {
    const char *name;
    const char *description;
    bool has_tb; /* relationships.tag-bindings given */
    struct st_tb_list tb;
};

/* name, description and tag bindings of a create or update body,
 * checked. */
static bool parse(struct http_req *r, json_t *data, struct prj_in *in)
{
    memset(in, 0, sizeof(*in));
    struct st_tag_binding *list = NULL;
    const char **name = &in->name, **description = &in->description;
    if (!jsonapi_attr_str(r, data, "name", name) ||
        !jsonapi_attr_str(r, data, "description", description) ||
        !api_tb_from_body(r, data, &in->has_tb, &list, &in->tb.n))
        return false;
    in->tb.items = list;
    if (*name != NULL && !valid_project_name(*name)) {
        http_error(r, 422, NULL,
                   "Name may only contain letters, numbers, spaces, -, and "
                   "_, must not start or end with a space, and must be 3 "
                   "to 40 characters long");
        return false;
    }
    if (*description != NULL && strlen(*description) > MAX_DESCRIPTION) {
        http_error(r, 422, NULL,
                   "description must be at most 256 characters long");
        return false;
    }
    return true;
}

static void reply(struct http_req *r, int status, const struct st_project *p)
{
    http_reply_json(r, status,
                    json_pack("{s:o}", "data", api_project_json(r, p)));
}

access_t api_project_perms(struct http_req *r, const struct st_project *p)
{
    access_t f = api_perms_cached(r, p->id);
    if (f != 0)
        return f;
    struct access_caller who = api_caller(r);
    if (access_project(r->srv->db, r->arena, &who, p, &f, NULL) != TR_OK)
        return 0;
    api_perms_cache(r, p->id, f);
    return f;
}

bool api_project_access(struct http_req *r, const char *id,
                        struct st_project *out)
{
    struct tr_errbuf eb = {{0}};
    tr_err e = store_project_get(r->srv->db, r->arena, id, out, &eb);
    if (e == TR_OK && (api_project_perms(r, out) & ACC_PRJ_SEE))
        return true;
    if (e == TR_OK || e == TR_ERR_NOT_FOUND)
        http_error(r, 404, "not found",
                   arena_printf(r->arena, "project %s not found", id));
    else
        api_store_fail(r, e, &eb);
    return false;
}

bool api_project_allow(struct http_req *r, const struct st_project *p,
                       access_t need, const char *what)
{
    if ((api_project_perms(r, p) & need) == need)
        return true;
    http_error(
        r, 403, "forbidden",
        arena_printf(r->arena, "you may not %s project %s", what, p->name));
    return false;
}

static void list(struct http_req *r)
{
    struct st_org o;
    struct page p;
    if (!api_org_access(r, http_param(r, "org"), &o) || !jsonapi_page(r, &p))
        return;
    const char *names = http_query(r, "filter[names]");
    const char **list = NULL;
    int nlist = 0;
    if (names != NULL) {
        list = arena_alloc(r->arena, sizeof(char *) * (API_WS_MAX_ITEMS + 1));
        char *copy = arena_strdup(r->arena, names);
        char *save = NULL;
        for (char *t = strtok_r(copy, ",", &save); t != NULL;
             t = strtok_r(NULL, ",", &save)) {
            if (nlist >= API_WS_MAX_ITEMS) {
                http_error(r, 400, NULL, "filter[names] lists too many names");
                return;
            }
            list[nlist++] = t;
        }
    }
    struct st_project *prj = NULL;
    int n = 0;
    int64_t total = 0;
    bool etb = false;
    if (!parse_include(r, &etb))
        return;
    struct tr_errbuf eb = {{0}};
    const char *vu = NULL, *vt = NULL;
    api_visible_to(r, o.name, ACC_ORG_READ_PRJ, &vu, &vt);
    tr_err e = store_project_list(
        r->srv->db, r->arena, o.name, list, nlist, http_query(r, "q"), vu, vt,
        (p.number - 1) * p.size, p.size, &prj, &n, &total, &eb);
    if (e != TR_OK) {
        api_store_fail(r, e, &eb);
        return;
    }
    json_t *doc = projects_doc(r, prj, n, false, etb, &p, total);
    if (doc != NULL)
        http_reply_json(r, 200, doc);
}

static void create(struct http_req *r)
{
    struct st_org o;
    struct prj_in in;
    if (!api_org_access(r, http_param(r, "org"), &o) ||
        !api_org_allow(r, o.name, ACC_ORG_MANAGE_PRJ, "create projects"))
        return;
    json_t *data = jsonapi_body(r, "projects");
    if (data == NULL || !parse(r, data, &in))
        return;
    if (in.name == NULL) {
        http_error(r, 422, NULL, "Name can't be blank: name is required");
        return;
    }
    struct st_project p;
    struct tr_errbuf eb = {{0}};
    tr_err e = store_project_create(r->srv->db, r->arena, o.name, in.name,
                                    in.description, in.has_tb ? &in.tb : NULL,
                                    &p, &eb);
    if (e != TR_OK) {
        api_store_fail(r, e, &eb);
        return;
    }
    reply(r, 201, &p);
}

static void show(struct http_req *r)
{
    struct st_project p;
    bool etb = false;
    if (!api_project_access(r, http_param(r, "id"), &p) ||
        !parse_include(r, &etb))
        return;
    json_t *doc = projects_doc(r, &p, 1, true, etb, NULL, 0);
    if (doc != NULL)
        http_reply_json(r, 200, doc);
}

static void update(struct http_req *r)
{
    struct st_project p;
    struct prj_in in;
    if (!api_project_access(r, http_param(r, "id"), &p) ||
        !api_project_allow(r, &p, ACC_PRJ_UPDATE, "update"))
        return;
    json_t *data = jsonapi_body(r, "projects");
    if (data == NULL || !parse(r, data, &in))
        return;
    struct tr_errbuf eb = {{0}};
    tr_err e =
        store_project_update(r->srv->db, r->arena, p.id, in.name,
                             in.description, in.has_tb ? &in.tb : NULL, &eb);
    if (e == TR_OK)
        e = store_project_get(r->srv->db, r->arena, p.id, &p, &eb);
    if (e != TR_OK) {
        api_store_fail(r, e, &eb);
        return;
    }
    reply(r, 200, &p);
}

static void destroy(struct http_req *r)
{
    struct st_project p;
    if (!api_project_access(r, http_param(r, "id"), &p) ||
        !api_project_allow(r, &p, ACC_PRJ_DELETE, "delete"))
        return;
    struct tr_errbuf eb = {{0}};
    tr_err e = store_project_delete(r->srv->db, r->arena, p.id, &eb);
    if (e != TR_OK) {
        api_store_fail(r, e, &eb);
        return;
    }
    http_reply(r, 204, NULL, "", 0);
}

const struct route api_project_routes[] = {
    {"GET", "/api/v2/organizations/:org/projects", list, ROUTE_AUTH},
    {"POST", "/api/v2/organizations/:org/projects", create, ROUTE_AUTH},
    {"GET", "/api/v2/projects/:id", show, ROUTE_AUTH},
    {"PATCH", "/api/v2/projects/:id", update, ROUTE_AUTH},
    {"DELETE", "/api/v2/projects/:id", destroy, ROUTE_AUTH},
    {0},
};
