/*
 * varsets.c - the variable sets API: sets of an organization (list,
 * create, read, update, delete), their variables
 * (/varsets/:id/relationships/vars), their workspace and project links,
 * and the sets that apply to a workspace or a project.
 *
 * A set document always carries its organization, vars, workspaces and
 * projects relationships (go-tfe reads the links without include);
 * include=workspaces,projects,vars adds the full objects to "included",
 * with sensitive values null as everywhere.  Writes need the right to
 * change workspaces of the organization; a set of an organization the
 * caller cannot see answers 404 like a missing one.  Names are 1 to 128
 * printable characters, unique in the organization.
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#include <string.h>

#include "api/vars_int.h"

#define MAX_NAME 128
#define MAX_VARS 100 /* variables one create or update request may add */

/* ---- documents --------------------------------------------------------- */

static json_t *id_list(const char *type, const char *const *ids, int n)
{
    json_t *a = json_array();
    for (int i = 0; i < n; i++)
        json_array_append_new(
            a, json_pack("{s:s,s:s}", "id", ids[i], "type", type));
    return json_pack("{s:o}", "data", a);
}

enum { INC_WS = 1, INC_PRJ = 2, INC_VARS = 4 };

/* Loads what a set's document needs; false after writing the error. */
struct set_parts {
    const char **ws;
    int nws;
    const char **prj;
    int nprj;
    struct st_var *vars;
    int nvars;
};

static bool load_parts(struct http_req *r, const char *id, struct set_parts *p)
{
    struct tr_errbuf eb = {{0}};
    tr_err e = store_varset_links(r->srv->db, r->arena, id, &p->ws, &p->nws,
                                  &p->prj, &p->nprj, &eb);
    if (e == TR_OK)
        e = store_var_list(r->srv->db, r->arena, NULL, id, &p->vars, &p->nvars,
                           &eb);
    if (e != TR_OK)
        api_store_fail(r, e, &eb);
    return e == TR_OK;
}

static json_t *set_json(struct http_req *r, const struct st_varset *s,
                        const struct set_parts *p)
{
    const char **var_ids =
        arena_alloc(r->arena, sizeof(char *) * (size_t)(p->nvars + 1));
    for (int i = 0; i < p->nvars; i++)
        var_ids[i] = p->vars[i].id;
    return json_pack(
        "{s:s,s:s,s:{s:s,s:s,s:b,s:b,s:o,s:o,s:I,s:I,s:I},"
        "s:{s:{s:{s:s,s:s}},s:o,s:o,s:o},s:{s:s}}",
        "id", s->id, "type", "varsets", "attributes", "name", s->name,
        "description", s->description, "global", s->global, "priority",
        s->priority, "created-at", api_time(s->created_at), "updated-at",
        api_time(s->updated_at), "var-count", (json_int_t)s->var_count,
        "workspace-count", (json_int_t)s->workspace_count, "project-count",
        (json_int_t)s->project_count, "relationships", "organization", "data",
        "id", s->org, "type", "organizations", "vars",
        id_list("vars", var_ids, p->nvars), "workspaces",
        id_list("workspaces", p->ws, p->nws), "projects",
        id_list("projects", p->prj, p->nprj), "links", "self",
        arena_printf(r->arena, "/api/v2/varsets/%s", s->id));
}

/* Appends the included objects of one set to inc (skipping ids in seen,
 * an object of ids already included). */
static bool add_included(struct http_req *r, json_t *inc, json_t *seen,
                         int flags, const struct set_parts *p)
{
    struct tr_errbuf eb = {{0}};
    for (int i = 0; (flags & INC_WS) && i < p->nws; i++) {
        struct st_workspace w;
        if (json_object_get(seen, p->ws[i]) != NULL)
            continue;
        tr_err e = store_ws_get(r->srv->db, r->arena, p->ws[i], &w, &eb);
        if (e == TR_ERR_NOT_FOUND)
            continue; /* deleted meanwhile */
        if (e != TR_OK) {
            api_store_fail(r, e, &eb);
            return false;
        }
        json_object_set_new(seen, p->ws[i], json_true());
        json_array_append_new(inc, api_ws_json(r, &w));
    }
    for (int i = 0; (flags & INC_PRJ) && i < p->nprj; i++) {
        struct st_project prj;
        if (json_object_get(seen, p->prj[i]) != NULL)
            continue;
        tr_err e =
            store_project_get(r->srv->db, r->arena, p->prj[i], &prj, &eb);
        if (e == TR_ERR_NOT_FOUND)
            continue;
        if (e != TR_OK) {
            api_store_fail(r, e, &eb);
            return false;
        }
        json_object_set_new(seen, p->prj[i], json_true());
        json_array_append_new(inc, api_project_json(r, &prj));
    }
    for (int i = 0; (flags & INC_VARS) && i < p->nvars; i++)
        json_array_append_new(inc, api_var_json(r, &p->vars[i], NULL));
    return true;
}

/* include=workspaces,projects,vars; anything else is 400. */
static bool parse_include(struct http_req *r, int *flags)
{
    *flags = 0;
    const char *s = http_query(r, "include");
    if (s == NULL)
        return true;
    char *copy = arena_strdup(r->arena, s);
    char *save = NULL;
    for (char *t = strtok_r(copy, ",", &save); t != NULL;
         t = strtok_r(NULL, ",", &save)) {
        if (strcmp(t, "workspaces") == 0)
            *flags |= INC_WS;
        else if (strcmp(t, "projects") == 0)
            *flags |= INC_PRJ;
        else if (strcmp(t, "vars") == 0)
            *flags |= INC_VARS;
        else {
            http_error(
                r, 400, "bad request",
                arena_printf(r->arena, "Invalid include parameter: %s", t));
            return false;
        }
    }
    return true;
}

static void reply_set(struct http_req *r, int status, const struct st_varset *s,
                      int flags)
{
    struct set_parts p;
    if (!load_parts(r, s->id, &p))
        return;
    json_t *doc = json_pack("{s:o}", "data", set_json(r, s, &p));
    if (flags != 0) {
        json_t *inc = json_array(), *seen = json_object();
        json_object_set_new(doc, "included", inc);
        bool ok = add_included(r, inc, seen, flags, &p);
        json_decref(seen);
        if (!ok) {
            json_decref(doc);
            return;
        }
    }
    http_reply_json(r, status, doc);
}

/* ---- access ------------------------------------------------------------ */

static void set_not_found(struct http_req *r, const char *id)
{
    http_error(r, 404, "not found",
               arena_printf(r->arena, "variable set %s not found", id));
}

/* Loads set :id if the caller may read the sets of its organization
 * (read-workspaces); otherwise answers 404. */
static bool access_set(struct http_req *r, struct st_varset *out)
{
    const char *id = http_param(r, "id");
    struct tr_errbuf eb = {{0}};
    tr_err e = store_varset_get(r->srv->db, r->arena, id, out, &eb);
    if (e == TR_OK) {
        /* sets reach every workspace: reading them takes read-workspaces */
        if (api_org_may(r, out->org, ACC_ORG_SEE | ACC_ORG_READ_WS))
            return true;
        set_not_found(r, id);
        return false;
    }
    if (e == TR_ERR_NOT_FOUND)
        set_not_found(r, id);
    else
        api_store_fail(r, e, &eb);
    return false;
}

static bool access_set_write(struct http_req *r, struct st_varset *out)
{
    return access_set(r, out) && api_org_allow(r, out->org, ACC_ORG_MANAGE_WS,
                                               "manage variable sets");
}

/* ---- request bodies ---------------------------------------------------- */

static bool valid_name(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > MAX_NAME)
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < ' ' || s[i] == 0x7f)
            return false;
    return true;
}

/* relationships.<name>.data as a list of ids of type `type`; *given is
 * false when the relationship is absent. */
static bool rel_ids(struct http_req *r, json_t *data, const char *name,
                    const char *type, bool *given, const char ***ids, int *n)
{
    json_t *rel = json_object_get(json_object_get(data, "relationships"), name);
    *given = rel != NULL;
    *n = 0;
    if (rel == NULL)
        return true;
    json_t *list = json_object_get(rel, "data");
    size_t len = json_array_size(list);
    if (!json_is_array(list) || len > API_WS_MAX_ITEMS) {
        http_error(r, 422, NULL,
                   arena_printf(r->arena,
                                "relationships.%s.data must be a list of at "
                                "most %d %s",
                                name, API_WS_MAX_ITEMS, type));
        return false;
    }
    *ids = arena_alloc(r->arena, sizeof(char *) * (len + 1));
    for (size_t i = 0; i < len; i++) {
        json_t *item = json_array_get(list, i);
        const char *t = json_string_value(json_object_get(item, "type"));
        const char *id = json_string_value(json_object_get(item, "id"));
        if (t == NULL || strcmp(t, type) != 0) {
            http_error(r, 409, "conflict",
                       arena_printf(r->arena,
                                    "relationships.%s.data[].type must be "
                                    "\"%s\"",
                                    name, type));
            return false;
        }
        if (id == NULL || *id == '\0') {
            http_error(r, 422, NULL,
                       arena_printf(r->arena,
                                    "relationships.%s.data[].id is required",
                                    name));
            return false;
        }
        (*ids)[(*n)++] = id;
    }
    return true;
}

/* relationships.vars.data: complete variable definitions to add. */
static bool rel_vars(struct http_req *r, json_t *data, struct st_var **vars,
                     int *n)
{
    json_t *list = json_object_get(
        json_object_get(json_object_get(data, "relationships"), "vars"),
        "data");
    *n = 0;
    if (list == NULL)
        return true;
    size_t len = json_array_size(list);
    if (!json_is_array(list) || len > MAX_VARS) {
        http_error(r, 422, NULL,
                   "relationships.vars.data must be a list of at most 100 "
                   "variables");
        return false;
    }
    *vars = arena_alloc(r->arena, sizeof(struct st_var) * (len + 1));
    for (size_t i = 0; i < len; i++) {
        json_t *item = json_array_get(list, i);
        const char *t = json_string_value(json_object_get(item, "type"));
        struct var_in in;
        if (t == NULL || strcmp(t, "vars") != 0) {
            http_error(r, 409, "conflict",
                       "relationships.vars.data[].type must be \"vars\"");
            return false;
        }
        if (!api_var_parse(r, item, NULL, &in))
            return false;
        (*vars)[(*n)++] = api_var_new(&in);
    }
    return true;
}

/* Every attribute and relationship of a create (create) or update body. */
static bool parse_set(struct http_req *r, json_t *data, bool create,
                      struct st_varset_in *in)
{
    *in = (struct st_varset_in){.global = -1, .priority = -1};
    struct st_var *vars = NULL;
    const char **ws = NULL, **prj = NULL;
    if (!jsonapi_attr_str(r, data, "name", &in->name) ||
        !jsonapi_attr_str(r, data, "description", &in->description) ||
        !jsonapi_attr_bool(r, data, "global", &in->global) ||
        !jsonapi_attr_bool(r, data, "priority", &in->priority) ||
        !rel_ids(r, data, "workspaces", "workspaces", &in->set_workspaces, &ws,
                 &in->nworkspaces) ||
        !rel_ids(r, data, "projects", "projects", &in->set_projects, &prj,
                 &in->nprojects) ||
        !rel_vars(r, data, &vars, &in->nvars))
        return false;
    in->workspace_ids = ws;
    in->project_ids = prj;
    in->vars = vars;
    if (create && in->name == NULL) {
        http_error(r, 422, NULL, "Name can't be blank");
        return false;
    }
    if (in->name != NULL && !valid_name(in->name)) {
        http_error(r, 422, NULL,
                   "Name must be 1 to 128 characters without control "
                   "characters");
        return false;
    }
    if (in->description != NULL &&
        strlen(in->description) > API_VAR_MAX_DESCRIPTION) {
        http_error(r, 422, NULL,
                   "Description is too long (maximum is 512 characters)");
        return false;
    }
    return true;
}

/* Store errors of a set write: a missing linked object is 404 with the
 * store's text; others as usual. */
static void write_fail(struct http_req *r, tr_err e, const struct tr_errbuf *eb)
{
    if (e == TR_ERR_NOT_FOUND)
        http_error(r, 404, "not found", eb->msg);
    else
        api_store_fail(r, e, eb);
}

/* ---- sets -------------------------------------------------------------- */

static void list_scope(struct http_req *r, enum st_varset_scope scope,
                       const char *key)
{
    struct page p;
    int flags = 0;
    if (!jsonapi_page(r, &p) || !parse_include(r, &flags))
        return;
    struct st_varset *sets = NULL;
    int n = 0;
    int64_t total = 0;
    struct tr_errbuf eb = {{0}};
    tr_err e = store_varset_list(r->srv->db, r->arena, scope, key,
                                 http_query(r, "q"), (p.number - 1) * p.size,
                                 p.size, &sets, &n, &total, &eb);
    if (e != TR_OK) {
        api_store_fail(r, e, &eb);
        return;
    }
    json_t *items = json_array();
    json_t *inc = json_array(), *seen = json_object();
    bool ok = true;
    for (int i = 0; i < n && ok; i++) {
        struct set_parts parts;
        ok = load_parts(r, sets[i].id, &parts);
        if (ok)
            json_array_append_new(items, set_json(r, &sets[i], &parts));
        if (ok && flags != 0)
            ok = add_included(r, inc, seen, flags, &parts);
    }
    json_decref(seen);
    json_t *doc = jsonapi_list_doc(items, &p, total);
    if (flags != 0)
        json_object_set_new(doc, "included", inc);
    else
        json_decref(inc);
    if (ok)
        http_reply_json(r, 200, doc);
    else
        json_decref(doc);
}

static void org_list(struct http_req *r)
{
    struct st_org o;
    if (api_org_access(r, http_param(r, "org"), &o) &&
        api_org_allow(r, o.name, ACC_ORG_READ_WS, "read variable sets"))
        list_scope(r, VARSET_ORG, o.name);
}

static void ws_list(struct http_req *r)
{
    struct st_workspace ws;
    if (api_workspace_access(r, http_param(r, "id"), &ws))
        list_scope(r, VARSET_WORKSPACE, ws.id);
}

static void project_list(struct http_req *r)
{
    const char *id = http_param(r, "id");
    struct st_project prj;
    struct tr_errbuf eb = {{0}};
    tr_err e = store_project_get(r->srv->db, r->arena, id, &prj, &eb);
    if (e == TR_OK && !(api_project_perms(r, &prj) & ACC_PRJ_SEE))
        e = TR_ERR_NOT_FOUND;
    if (e == TR_ERR_NOT_FOUND)
        http_error(r, 404, "not found",
                   arena_printf(r->arena, "project %s not found", id));
    else if (e != TR_OK)
        api_store_fail(r, e, &eb);
    else
        list_scope(r, VARSET_PROJECT, prj.id);
}

static void create(struct http_req *r)
{
    struct st_org o;
    if (!api_org_access(r, http_param(r, "org"), &o) ||
        !api_org_allow(r, o.name, ACC_ORG_MANAGE_WS, "manage variable sets"))
        return;
    json_t *data = jsonapi_body(r, "varsets");
    struct st_varset_in in;
    if (data == NULL || !parse_set(r, data, true, &in))
        return;
    struct st_varset s;
    struct tr_errbuf eb = {{0}};
    tr_err e = store_varset_create(r->srv->db, r->srv->keys, r->arena, o.name,
                                   &in, &s, &eb);
    if (e != TR_OK)
        write_fail(r, e, &eb);
    else
        reply_set(r, 201, &s, 0);
}

static void show(struct http_req *r)
{
    struct st_varset s;
    int flags = 0;
    if (access_set(r, &s) && parse_include(r, &flags))
        reply_set(r, 200, &s, flags);
}

static void update(struct http_req *r)
{
    struct st_varset s;
    int flags = 0;
    if (!access_set_write(r, &s) || !parse_include(r, &flags))
        return;
    json_t *data = jsonapi_body(r, "varsets");
    struct st_varset_in in;
    if (data == NULL || !parse_set(r, data, false, &in))
        return;
    struct tr_errbuf eb = {{0}};
    tr_err e = store_varset_update(r->srv->db, r->srv->keys, r->arena, s.id,
                                   &in, &s, &eb);
    if (e != TR_OK)
        write_fail(r, e, &eb);
    else
        reply_set(r, 200, &s, flags);
}

static void destroy(struct http_req *r)
{
    struct st_varset s;
    if (!access_set_write(r, &s))
        return;
    struct tr_errbuf eb = {{0}};
    tr_err e = store_varset_delete(r->srv->db, r->arena, s.id, &eb);
    if (e == TR_ERR_NOT_FOUND)
        set_not_found(r, s.id);
    else if (e != TR_OK)
        api_store_fail(r, e, &eb);
    else
        http_reply(r, 204, NULL, "", 0);
}

/* POST / DELETE /varsets/:id/relationships/{workspaces,projects} */
static void set_links(struct http_req *r, bool projects, bool add)
{
    struct st_varset s;
    if (!access_set_write(r, &s))
        return;
    const char *type = projects ? "projects" : "workspaces";
    json_t *data = api_ws_id_list_body(r, type);
    if (data == NULL)
        return;
    int n = (int)json_array_size(data);
    const char **ids = arena_alloc(r->arena, sizeof(char *) * (size_t)(n + 1));
    for (int i = 0; i < n; i++) {
        ids[i] = json_string_value(
            json_object_get(json_array_get(data, (size_t)i), "id"));
        if (ids[i] == NULL || *ids[i] == '\0') {
            http_error(r, 422, NULL, "every data[].id is required");
            return;
        }
    }
    struct tr_errbuf eb = {{0}};
    tr_err e = store_varset_link(r->srv->db, r->arena, s.id, projects, add, ids,
                                 n, &eb);
    if (e != TR_OK)
        write_fail(r, e, &eb);
    else
        http_reply(r, 204, NULL, "", 0);
}

static void ws_add(struct http_req *r)
{
    set_links(r, false, true);
}

static void ws_remove(struct http_req *r)
{
    set_links(r, false, false);
}

static void prj_add(struct http_req *r)
{
    set_links(r, true, true);
}

static void prj_remove(struct http_req *r)
{
    set_links(r, true, false);
}

/* ---- variables of a set ------------------------------------------------ */

/* Loads variable :var_id of set s; 404 otherwise. */
static bool set_var(struct http_req *r, const struct st_varset *s,
                    struct st_var *out)
{
    const char *id = http_param(r, "var_id");
    struct tr_errbuf eb = {{0}};
    tr_err e = store_var_get(r->srv->db, r->arena, id, out, &eb);
    if (e == TR_OK && !util_streq(out->varset_id, s->id))
        e = TR_ERR_NOT_FOUND;
    if (e == TR_ERR_NOT_FOUND)
        http_error(r, 404, "not found",
                   arena_printf(r->arena, "variable %s not found", id));
    else if (e != TR_OK)
        api_store_fail(r, e, &eb);
    return e == TR_OK;
}

static void reply_var(struct http_req *r, int status, const struct st_var *v)
{
    http_reply_json(r, status,
                    json_pack("{s:o}", "data", api_var_json(r, v, NULL)));
}

static void vars_list(struct http_req *r)
{
    struct st_varset s;
    if (!access_set(r, &s))
        return;
    struct st_var *vars = NULL;
    int n = 0;
    struct tr_errbuf eb = {{0}};
    tr_err e = store_var_list(r->srv->db, r->arena, NULL, s.id, &vars, &n, &eb);
    if (e != TR_OK) {
        api_store_fail(r, e, &eb);
        return;
    }
    json_t *items = json_array();
    for (int i = 0; i < n; i++)
        json_array_append_new(items, api_var_json(r, &vars[i], NULL));
    struct page p = {.number = 1, .size = n > 0 ? n : 1};
    http_reply_json(r, 200, jsonapi_list_doc(items, &p, n));
}

static void var_create(struct http_req *r)
{
    struct st_varset s;
    if (!access_set_write(r, &s))
        return;
    json_t *data = jsonapi_body(r, "vars");
    struct var_in in;
    if (data == NULL || !api_var_parse(r, data, NULL, &in))
        return;
    struct st_var v = api_var_new(&in), out;
    v.varset_id = s.id;
    struct tr_errbuf eb = {{0}};
    tr_err e =
        store_var_create(r->srv->db, r->srv->keys, r->arena, &v, &out, &eb);
    if (e == TR_ERR_NOT_FOUND)
        set_not_found(r, s.id);
    else if (e != TR_OK)
        api_store_fail(r, e, &eb);
    else
        reply_var(r, 201, &out);
}

static void var_show(struct http_req *r)
{
    struct st_varset s;
    struct st_var v;
    if (access_set(r, &s) && set_var(r, &s, &v))
        reply_var(r, 200, &v);
}

static void var_update(struct http_req *r)
{
    struct st_varset s;
    struct st_var v, out;
    if (!access_set_write(r, &s) || !set_var(r, &s, &v))
        return;
    json_t *data = jsonapi_body(r, "vars");
    struct var_in in;
    if (data == NULL || !api_var_parse(r, data, &v, &in))
        return;
    json_t *given = json_object_get(data, "id");
    if (json_is_string(given) && strcmp(json_string_value(given), v.id) != 0) {
        http_error(r, 409, "conflict", "data.id does not match the URL");
        return;
    }
    struct st_var_update u = api_var_update(&in);
    struct tr_errbuf eb = {{0}};
    tr_err e = store_var_update(r->srv->db, r->srv->keys, r->arena, v.id, &u,
                                &out, &eb);
    if (e != TR_OK)
        api_store_fail(r, e, &eb);
    else
        reply_var(r, 200, &out);
}

static void var_destroy(struct http_req *r)
{
    struct st_varset s;
    struct st_var v;
    if (!access_set_write(r, &s) || !set_var(r, &s, &v))
        return;
    struct tr_errbuf eb = {{0}};
    tr_err e = store_var_delete(r->srv->db, r->arena, v.id, &eb);
    if (e != TR_OK)
        api_store_fail(r, e, &eb);
    else
        http_reply(r, 204, NULL, "", 0);
}

const struct route api_varset_routes[] = {
    {"GET", "/api/v2/organizations/:org/varsets", org_list, ROUTE_AUTH},
    {"POST", "/api/v2/organizations/:org/varsets", create, ROUTE_AUTH},
    {"GET", "/api/v2/varsets/:id", show, ROUTE_AUTH},
    {"PATCH", "/api/v2/varsets/:id", update, ROUTE_AUTH},
    {"PUT", "/api/v2/varsets/:id", update, ROUTE_AUTH},
    {"DELETE", "/api/v2/varsets/:id", destroy, ROUTE_AUTH},
    {"GET", "/api/v2/varsets/:id/relationships/vars", vars_list, ROUTE_AUTH},
    {"POST", "/api/v2/varsets/:id/relationships/vars", var_create, ROUTE_AUTH},
    {"GET", "/api/v2/varsets/:id/relationships/vars/:var_id", var_show,
     ROUTE_AUTH},
    {"PATCH", "/api/v2/varsets/:id/relationships/vars/:var_id", var_update,
     ROUTE_AUTH},
    {"DELETE", "/api/v2/varsets/:id/relationships/vars/:var_id", var_destroy,
     ROUTE_AUTH},
    {"POST", "/api/v2/varsets/:id/relationships/workspaces", ws_add,
     ROUTE_AUTH},
    {"DELETE", "/api/v2/varsets/:id/relationships/workspaces", ws_remove,
     ROUTE_AUTH},
    {"POST", "/api/v2/varsets/:id/relationships/projects", prj_add, ROUTE_AUTH},
    {"DELETE", "/api/v2/varsets/:id/relationships/projects", prj_remove,
     ROUTE_AUTH},
    {"GET", "/api/v2/workspaces/:id/varsets", ws_list,
     ROUTE_AUTH | ROUTE_WS_READ},
    {"GET", "/api/v2/projects/:id/varsets", project_list, ROUTE_AUTH},
    {0},
};
