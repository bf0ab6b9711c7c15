/*
 * variables.c - workspace variables: list, create, read, update and
 * delete under /workspaces/:id/vars, the deprecated /vars endpoints, and
 * the variable document and attribute checks that varsets.c shares.
 *
 * Sensitive values are write-only: every response carries "value": null
 * for them, including the response to the request that set the value, and
 * they are stored sealed (store_vars.c).  Nothing here logs a value.
 *
 * Keys: a terraform variable's key may hold letters, digits, '-' and '_'
 * (Terraform's identifier characters; a leading digit is accepted since
 * TFE accepts the UUID keys go-tfe's tests create); an environment
 * variable's key anything printable but '=' and spaces.  Both at most
 * API_VAR_MAX_KEY bytes.  An environment variable may not take a name
 * that core/env_names.h refuses (set by Terrace for every run, or read by
 * the loader, the C library, shells or interpreters as they start): not on
 * create, nor by a rename or a change of category to env (422).  A
 * variable of an organization the caller cannot see answers 404 like a
 * missing one.
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#include <string.h>

#include "api/vars_int.h"
#include "core/env_names.h"

/* ---- attributes -------------------------------------------------------- */

static bool valid_key(const char *key, const char *category)
{
    size_t n = strlen(key);
    if (n == 0 || n > API_VAR_MAX_KEY)
        return false;
    bool tf = strcmp(category, "terraform") == 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)key[i];
        bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                     (c >= '0' && c <= '9');
        if (tf ? !(alnum || c == '-' || c == '_')
               : (c <= ' ' || c == '=' || c == 0x7f))
            return false;
    }
    return true;
}

/* A string attribute that may also be JSON null (= not given). */
static bool str_attr(struct http_req *r, json_t *data, const char *name,
                     const char **out)
{
    json_t *v = json_object_get(jsonapi_attrs(data), name);
    if (json_is_null(v))
        return true;
    return jsonapi_attr_str(r, data, name, out);
}

bool api_var_parse(struct http_req *r, json_t *data, const struct st_var *cur,
                   struct var_in *in)
{
    *in = (struct var_in){.hcl = -1, .sensitive = -1};
    json_t *attrs = jsonapi_attrs(data);
    if (attrs != NULL && !json_is_object(attrs)) {
        http_error(r, 422, NULL, "data.attributes must be an object");
        return false;
    }
    if (!str_attr(r, data, "key", &in->key) ||
        !str_attr(r, data, "value", &in->value) ||
        !str_attr(r, data, "category", &in->category) ||
        !str_attr(r, data, "description", &in->description) ||
        !jsonapi_attr_bool(r, data, "hcl", &in->hcl) ||
        !jsonapi_attr_bool(r, data, "sensitive", &in->sensitive))
        return false;
    if (cur == NULL && (in->key == NULL || *in->key == '\0')) {
        http_error(r, 422, NULL, "Key can't be blank");
        return false;
    }
    if (cur == NULL && in->category == NULL) {
        http_error(r, 422, NULL,
                   "Category can't be blank: it must be terraform or env");
        return false;
    }
    if (in->category != NULL && strcmp(in->category, "terraform") != 0 &&
        strcmp(in->category, "env") != 0) {
        http_error(r, 422, NULL, "Category must be terraform or env");
        return false;
    }
    const char *key = in->key ? in->key : cur->key;
    const char *cat = in->category ? in->category : cur->category;
    if (!valid_key(key, cat)) {
        http_error(r, 422, NULL,
                   strcmp(cat, "terraform") == 0
                       ? "Key must be 1 to 255 letters, digits, '-' or '_' "
                         "for a terraform variable"
                       : "Key must be 1 to 255 printable characters without "
                         "spaces or '=' for an environment variable");
        return false;
    }
    const char *why = NULL;
    if (strcmp(cat, "env") == 0 && env_name_refused(key, &why)) {
        http_error(r, 422, NULL,
                   arena_printf(r->arena,
                                "%s cannot be an environment variable: %s", key,
                                why));
        return false;
    }
    if (in->description != NULL &&
        strlen(in->description) > API_VAR_MAX_DESCRIPTION) {
        http_error(r, 422, NULL,
                   "Description is too long (maximum is 512 characters)");
        return false;
    }
    if (cur != NULL && cur->sensitive && in->sensitive == 0) {
        http_error(r, 422, NULL,
                   "a sensitive variable cannot be made non-sensitive; "
                   "delete it and create it again");
        return false;
    }
    return true;
}

struct st_var api_var_new(const struct var_in *in)
{
    return (struct st_var){.key = in->key,
                           .value = in->value,
                           .category = in->category,
                           .description = in->description,
                           .hcl = in->hcl == 1,
                           .sensitive = in->sensitive == 1};
}

struct st_var_update api_var_update(const struct var_in *in)
{
    return (struct st_var_update){.key = in->key,
                                  .value = in->value,
                                  .category = in->category,
                                  .description = in->description,
                                  .hcl = in->hcl,
                                  .sensitive = in->sensitive};
}

/* ---- documents --------------------------------------------------------- */

/* key: {"data": {"id": id, "type": type}, "links": {"related": ...}},
 * the link being prefix + a [+ "/workspaces/" + b]. */
static void owner_rel(struct jw *j, const char *key, const char *id,
                      const char *type, const char *prefix, const char *a,
                      const char *b)
{
    jw_key(j, key);
    jw_obj(j);
    jw_key(j, "data");
    jw_obj(j);
    jw_kstr(j, "id", id);
    jw_kstr(j, "type", type);
    jw_obj_end(j);
    jw_key(j, "links");
    jw_obj(j);
    jw_key(j, "related");
    jw_str_begin(j);
    jw_str_add(j, prefix);
    jw_str_add(j, a);
    if (b != NULL) {
        jw_str_add(j, "/workspaces/");
        jw_str_add(j, b);
    }
    jw_str_end(j);
    jw_obj_end(j);
    jw_obj_end(j);
}

void api_var_write(struct http_req *r, struct jw *j, const struct st_var *v,
                   const struct st_workspace *ws)
{
    (void)r;
    jw_obj(j);
    jw_kstr(j, "id", v->id);
    jw_kstr(j, "type", "vars");
    jw_key(j, "attributes");
    jw_obj(j);
    jw_kstr(j, "key", v->key);
    jw_kstr(j, "value", v->sensitive ? NULL : v->value);
    jw_kstr(j, "description", v->description);
    jw_kstr(j, "category", v->category);
    jw_kbool(j, "hcl", v->hcl);
    jw_kbool(j, "sensitive", v->sensitive);
    jw_kstr(j, "version-id", v->version_id);
    jw_kstr(j, "created-at", v->created_at);
    jw_obj_end(j);
    jw_key(j, "relationships");
    jw_obj(j);
    if (v->workspace_id == NULL)
        owner_rel(j, "varset", v->varset_id, "varsets", "/api/v2/varsets/",
                  v->varset_id, NULL);
    else if (ws != NULL)
        owner_rel(j, "configurable", v->workspace_id, "workspaces",
                  "/api/v2/organizations/", ws->org, ws->name);
    else
        owner_rel(j, "configurable", v->workspace_id, "workspaces",
                  "/api/v2/workspaces/", v->workspace_id, NULL);
    jw_obj_end(j);
    jw_key(j, "links");
    jw_obj(j);
    jw_key(j, "self");
    jw_str_begin(j);
    if (v->workspace_id != NULL) {
        jw_str_add(j, "/api/v2/workspaces/");
        jw_str_add(j, v->workspace_id);
        jw_str_add(j, "/vars/");
    } else {
        jw_str_add(j, "/api/v2/vars/");
    }
    jw_str_add(j, v->id);
    jw_str_end(j);
    jw_obj_end(j);
    jw_obj_end(j);
}

json_t *api_var_json(struct http_req *r, const struct st_var *v,
                     const struct st_workspace *ws)
{
    struct buf b;
    buf_init(&b, 0);
    struct jw j;
    jw_init(&j, &b);
    api_var_write(r, &j, v, ws);
    return api_jw_tree(&j, &b);
}

static void reply(struct http_req *r, int status, const struct st_var *v,
                  const struct st_workspace *ws)
{
    struct jw j;
    http_jw_start(r, &j);
    jw_obj(&j);
    jw_key(&j, "data");
    api_var_write(r, &j, v, ws);
    jw_obj_end(&j);
    http_reply_jw(r, status, &j);
}

/* ---- access ------------------------------------------------------------ */

static void var_not_found(struct http_req *r, const char *id)
{
    http_error(r, 404, "not found",
               arena_printf(r->arena, "variable %s not found", id));
}

/* Loads variable `id` of workspace ws (already visible); 404 otherwise. */
static bool ws_var(struct http_req *r, const struct st_workspace *ws,
                   const char *id, struct st_var *out)
{
    if (!api_ws_allow(r, ws, ACC_WS_VARS_READ, "read variables"))
        return false;
    struct tr_errbuf eb = {{0}};
    tr_err e = store_var_get(r->srv->db, r->arena, id, out, &eb);
    if (e == TR_OK && !util_streq(out->workspace_id, ws->id))
        e = TR_ERR_NOT_FOUND;
    if (e == TR_ERR_NOT_FOUND)
        var_not_found(r, id);
    else if (e != TR_OK)
        api_store_fail(r, e, &eb);
    return e == TR_OK;
}

/* Loads variable `id` of any workspace the caller may see (the /vars
 * endpoints); *ws gets its workspace. */
static bool any_ws_var(struct http_req *r, const char *id, struct st_var *out,
                       struct st_workspace *ws)
{
    struct tr_errbuf eb = {{0}};
    tr_err e = store_var_get(r->srv->db, r->arena, id, out, &eb);
    if (e == TR_OK && out->workspace_id == NULL)
        e = TR_ERR_NOT_FOUND; /* variables of sets live under /varsets */
    if (e == TR_OK)
        e = store_ws_get(r->srv->db, r->arena, out->workspace_id, ws, &eb);
    if (e == TR_OK && !(api_ws_perms(r, ws) & ACC_WS_SEE)) {
        var_not_found(r, id);
        return false;
    }
    if (e == TR_OK && !api_ws_allow(r, ws, ACC_WS_VARS_READ, "read variables"))
        return false;
    if (e == TR_ERR_NOT_FOUND)
        var_not_found(r, id);
    else if (e != TR_OK)
        api_store_fail(r, e, &eb);
    return e == TR_OK;
}

/* The data.id of an update body, if given, must name the variable. */
static bool same_id(struct http_req *r, json_t *data, const char *id)
{
    json_t *given = json_object_get(data, "id");
    if (given == NULL || json_is_null(given) ||
        (json_is_string(given) && strcmp(json_string_value(given), id) == 0))
        return true;
    http_error(r, 409, "conflict", "data.id does not match the URL");
    return false;
}

/* ---- handlers ---------------------------------------------------------- */

static void list_of(struct http_req *r, const struct st_workspace *ws)
{
    if (!api_ws_allow(r, ws, ACC_WS_VARS_READ, "read variables"))
        return;
    struct st_var *vars = NULL;
    int n = 0;
    struct tr_errbuf eb = {{0}};
    tr_err e =
        store_var_list(r->srv->db, r->arena, ws->id, NULL, &vars, &n, &eb);
    if (e != TR_OK) {
        api_store_fail(r, e, &eb);
        return;
    }
    struct jw j;
    http_jw_start(r, &j);
    jw_obj(&j);
    jw_key(&j, "data");
    jw_arr(&j);
    for (int i = 0; i < n; i++)
        api_var_write(r, &j, &vars[i], ws);
    jw_arr_end(&j);
    /* TFE does not page workspace variables: one page holds them all */
    struct page p = {.number = 1, .size = n > 0 ? n : 1};
    jsonapi_write_meta(&j, &p, n);
    jw_obj_end(&j);
    http_reply_jw(r, 200, &j);
}

static void create_in(struct http_req *r, const struct st_workspace *ws,
                      json_t *data)
{
    struct var_in in;
    if (!api_var_parse(r, data, NULL, &in))
        return;
    struct st_var v = api_var_new(&in), out;
    v.workspace_id = ws->id;
    struct tr_errbuf eb = {{0}};
    tr_err e =
        store_var_create(r->srv->db, r->srv->keys, r->arena, &v, &out, &eb);
    if (e == TR_ERR_NOT_FOUND)
        http_error(r, 404, "not found",
                   arena_printf(r->arena, "workspace %s not found", ws->id));
    else if (e != TR_OK)
        api_store_fail(r, e, &eb);
    else
        reply(r, 201, &out, ws);
}

static void update_of(struct http_req *r, const struct st_workspace *ws,
                      const struct st_var *cur)
{
    if (!api_ws_allow(r, ws, ACC_WS_VARS_WRITE, "change variables"))
        return;
    json_t *data = jsonapi_body(r, "vars");
    struct var_in in;
    if (data == NULL || !same_id(r, data, cur->id) ||
        !api_var_parse(r, data, cur, &in))
        return;
    struct st_var_update u = api_var_update(&in);
    struct st_var out;
    struct tr_errbuf eb = {{0}};
    tr_err e = store_var_update(r->srv->db, r->srv->keys, r->arena, cur->id, &u,
                                &out, &eb);
    if (e == TR_ERR_NOT_FOUND)
        var_not_found(r, cur->id);
    else if (e != TR_OK)
        api_store_fail(r, e, &eb);
    else
        reply(r, 200, &out, ws);
}

static void destroy_of(struct http_req *r, const struct st_workspace *ws,
                       const struct st_var *cur)
{
    if (!api_ws_allow(r, ws, ACC_WS_VARS_WRITE, "change variables"))
        return;
    struct tr_errbuf eb = {{0}};
    tr_err e = store_var_delete(r->srv->db, r->arena, cur->id, &eb);
    if (e == TR_ERR_NOT_FOUND)
        var_not_found(r, cur->id);
    else if (e != TR_OK)
        api_store_fail(r, e, &eb);
    else
        http_reply(r, 204, NULL, "", 0);
}

static void ws_list(struct http_req *r)
{
    struct st_workspace ws;
    if (api_workspace_access(r, http_param(r, "id"), &ws))
        list_of(r, &ws);
}

static void ws_create(struct http_req *r)
{
    struct st_workspace ws;
    if (!api_workspace_access(r, http_param(r, "id"), &ws) ||
        !api_ws_allow(r, &ws, ACC_WS_VARS_WRITE, "change variables"))
        return;
    json_t *data = jsonapi_body(r, "vars");
    if (data != NULL)
        create_in(r, &ws, data);
}

static void ws_show(struct http_req *r)
{
    struct st_workspace ws;
    struct st_var v;
    if (api_workspace_access(r, http_param(r, "id"), &ws) &&
        ws_var(r, &ws, http_param(r, "var_id"), &v))
        reply(r, 200, &v, &ws);
}

static void ws_update(struct http_req *r)
{
    struct st_workspace ws;
    struct st_var v;
    if (api_workspace_access(r, http_param(r, "id"), &ws) &&
        ws_var(r, &ws, http_param(r, "var_id"), &v))
        update_of(r, &ws, &v);
}

static void ws_destroy(struct http_req *r)
{
    struct st_workspace ws;
    struct st_var v;
    if (api_workspace_access(r, http_param(r, "id"), &ws) &&
        ws_var(r, &ws, http_param(r, "var_id"), &v))
        destroy_of(r, &ws, &v);
}

/* ---- the deprecated /vars endpoints ------------------------------------ */

static void legacy_list(struct http_req *r)
{
    const char *org = http_query(r, "filter[organization][name]");
    const char *name = http_query(r, "filter[workspace][name]");
    if (org == NULL || name == NULL || *org == '\0' || *name == '\0') {
        http_error(r, 400, NULL,
                   "filter[organization][name] and filter[workspace][name] "
                   "are both required");
        return;
    }
    struct st_workspace ws;
    if (api_ws_access_name(r, org, name, &ws))
        list_of(r, &ws);
}

/* The workspace of a POST /vars body: relationships.workspace, or the
 * deprecated top-level filter with organization and workspace names. */
static bool legacy_target(struct http_req *r, json_t *data,
                          struct st_workspace *ws)
{
    json_t *rel = json_object_get(
        json_object_get(json_object_get(data, "relationships"), "workspace"),
        "data");
    if (rel != NULL) {
        json_t *type = json_object_get(rel, "type");
        const char *id = json_string_value(json_object_get(rel, "id"));
        if (!json_is_object(rel) || id == NULL ||
            (type != NULL &&
             !util_streq(json_string_value(type), "workspaces"))) {
            http_error(r, 422, NULL,
                       "relationships.workspace.data must be "
                       "{\"type\": \"workspaces\", \"id\": ...}");
            return false;
        }
        return api_workspace_access(r, id, ws);
    }
    /* jsonapi_body() has parsed the document; the filter sits beside data */
    json_t *doc = json_loadb(r->body.data, r->body.len, 0, NULL);
    http_json_own(r, doc);
    json_t *f = json_object_get(doc, "filter");
    const char *org = json_string_value(
        json_object_get(json_object_get(f, "organization"), "name"));
    const char *name = json_string_value(
        json_object_get(json_object_get(f, "workspace"), "name"));
    if (org == NULL || name == NULL) {
        http_error(r, 422, NULL,
                   "relationships.workspace is required: the workspace the "
                   "variable belongs to");
        return false;
    }
    return api_ws_access_name(r, org, name, ws);
}

static void legacy_create(struct http_req *r)
{
    json_t *data = jsonapi_body(r, "vars");
    struct st_workspace ws;
    if (data == NULL || !legacy_target(r, data, &ws) ||
        !api_ws_allow(r, &ws, ACC_WS_VARS_WRITE, "change variables"))
        return;
    create_in(r, &ws, data);
}

static void legacy_show(struct http_req *r)
{
    struct st_workspace ws;
    struct st_var v;
    if (any_ws_var(r, http_param(r, "var_id"), &v, &ws))
        reply(r, 200, &v, &ws);
}

static void legacy_update(struct http_req *r)
{
    struct st_workspace ws;
    struct st_var v;
    if (any_ws_var(r, http_param(r, "var_id"), &v, &ws))
        update_of(r, &ws, &v);
}

static void legacy_destroy(struct http_req *r)
{
    struct st_workspace ws;
    struct st_var v;
    if (any_ws_var(r, http_param(r, "var_id"), &v, &ws))
        destroy_of(r, &ws, &v);
}

const struct route api_var_routes[] = {
    {"GET", "/api/v2/workspaces/:id/vars", ws_list, ROUTE_AUTH | ROUTE_WS_READ},
    {"POST", "/api/v2/workspaces/:id/vars", ws_create, ROUTE_AUTH},
    {"GET", "/api/v2/workspaces/:id/vars/:var_id", ws_show,
     ROUTE_AUTH | ROUTE_WS_READ},
    {"PATCH", "/api/v2/workspaces/:id/vars/:var_id", ws_update, ROUTE_AUTH},
    {"DELETE", "/api/v2/workspaces/:id/vars/:var_id", ws_destroy, ROUTE_AUTH},
    {"GET", "/api/v2/vars", legacy_list, ROUTE_AUTH},
    {"POST", "/api/v2/vars", legacy_create, ROUTE_AUTH},
    {"GET", "/api/v2/vars/:var_id", legacy_show, ROUTE_AUTH},
    {"PATCH", "/api/v2/vars/:var_id", legacy_update, ROUTE_AUTH},
    {"DELETE", "/api/v2/vars/:var_id", legacy_destroy, ROUTE_AUTH},
    {0},
};
