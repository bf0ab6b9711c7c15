/*
 * tag_bindings.c - key/value tag bindings of workspaces and projects:
 *
 *   GET   /workspaces/:id/tag-bindings            the workspace's own
 *   PATCH /workspaces/:id/tag-bindings            add keys or change values
 *   GET   /workspaces/:id/effective-tag-bindings  own and inherited
 *   GET   /projects/:id/tag-bindings              (and PATCH, effective-)
 *
 * and the "tag-bindings" relationship of workspace and project create and
 * update bodies, which replaces the owner's bindings ([] removes them all,
 * as go-tfe's DeleteAllTagBindings sends).  A workspace inherits its
 * project's bindings; its own win for the same key.  An inherited entry
 * of an effective list carries links.inherited-from naming the project,
 * which is how the tfe provider tells the two apart.
 *
 * The workspace list filters on effective bindings with
 * filter[tagged][N][key] and [value] (workspaces.c).
 *
 * Keys are 1 to 128 bytes, values at most 256, neither with control
 * characters; an owner has at most ST_TB_MAX (10) bindings, as TFE.  The
 * lists are not paginated (TFE's are not either).
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#include <string.h>

#include "api/workspaces_int.h"

#define TB_MAX_KEY 128
#define TB_MAX_VALUE 256

static bool printable(const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p < 0x20 || *p == 0x7f)
            return false;
    return true;
}

/* One binding of a body (a resource object), checked into *out. */
static bool take_one(struct http_req *r, json_t *item,
                     struct st_tag_binding *out)
{
    json_t *type = json_object_get(item, "type");
    if (type != NULL &&
        !(json_is_string(type) &&
          strcmp(json_string_value(type), "tag-bindings") == 0)) {
        http_error(r, 409, "conflict",
                   "every tag binding's type must be \"tag-bindings\"");
        return false;
    }
    json_t *attrs = json_object_get(item, "attributes");
    json_t *key = json_object_get(attrs, "key");
    json_t *value = json_object_get(attrs, "value");
    if (!json_is_string(key) || json_string_length(key) == 0 ||
        json_string_length(key) > TB_MAX_KEY ||
        !printable(json_string_value(key))) {
        http_error(r, 422, NULL,
                   "every tag binding needs attributes.key: 1 to 128 "
                   "characters, no control characters");
        return false;
    }
    if (value != NULL && !json_is_null(value) &&
        (!json_is_string(value) || json_string_length(value) > TB_MAX_VALUE ||
         !printable(json_string_value(value)))) {
        http_error(r, 422, NULL,
                   arena_printf(r->arena,
                                "tag binding %s: value must be a string of "
                                "at most 256 characters, no control "
                                "characters",
                                json_string_value(key)));
        return false;
    }
    out->key = json_string_value(key);
    out->value = json_is_string(value) ? json_string_value(value) : "";
    return true;
}

/* Every entry of the array items, checked: distinct keys, at most
 * ST_TB_MAX of them. */
static bool take_list(struct http_req *r, json_t *items,
                      struct st_tag_binding **list, int *n)
{
    size_t count = json_array_size(items);
    if (count > ST_TB_MAX) {
        http_error(r, 422, NULL,
                   arena_printf(r->arena,
                                "a workspace or project takes at most %d "
                                "tag bindings; %zu given",
                                ST_TB_MAX, count));
        return false;
    }
    *list = arena_alloc(r->arena, sizeof(**list) * (count + 1));
    *n = 0;
    for (size_t i = 0; i < count; i++) {
        struct st_tag_binding *b = &(*list)[*n];
        if (!take_one(r, json_array_get(items, i), b))
            return false;
        for (int k = 0; k < *n; k++)
            if (strcmp((*list)[k].key, b->key) == 0) {
                http_error(r, 422, NULL,
                           arena_printf(r->arena,
                                        "tag binding key %s is given twice",
                                        b->key));
                return false;
            }
        (*n)++;
    }
    return true;
}

bool api_tb_from_body(struct http_req *r, json_t *data, bool *present,
                      struct st_tag_binding **list, int *n)
{
    json_t *rel =
        json_object_get(json_object_get(data, "relationships"), "tag-bindings");
    *present = false;
    *list = NULL;
    *n = 0;
    if (rel == NULL)
        return true;
    json_t *items = json_object_get(rel, "data");
    if (!json_is_array(items) && !json_is_null(items)) {
        http_error(r, 422, NULL,
                   "relationships.tag-bindings.data must be a list of tag "
                   "bindings");
        return false;
    }
    *present = true;
    return take_list(r, items, list, n);
}

/* ---- documents --------------------------------------------------------- */

json_t *api_tb_json(struct http_req *r, const struct st_tag_binding *b,
                    bool effective)
{
    json_t *j = json_pack("{s:s,s:s,s:{s:s,s:s}}", "id", b->id, "type",
                          effective ? "effective-tag-bindings" : "tag-bindings",
                          "attributes", "key", b->key, "value", b->value);
    if (effective && b->inherited_from != NULL)
        json_object_set_new(
            j, "links",
            json_pack("{s:{s:s,s:s,s:s}}", "inherited-from", "id",
                      b->inherited_from, "type", "projects", "self",
                      arena_printf(r->arena, "/api/v2/projects/%s",
                                   b->inherited_from)));
    return j;
}

bool api_tb_effective(struct http_req *r, enum st_tb_owner kind, const char *id,
                      json_t *rels, json_t *included)
{
    struct st_tag_binding *list = NULL;
    int n = 0;
    struct tr_errbuf eb = {{0}};
    tr_err e =
        kind == ST_TB_WORKSPACE
            ? store_tb_effective(r->srv->db, r->arena, id, &list, &n, &eb)
            : store_tb_list(r->srv->db, r->arena, kind, id, &list, &n, &eb);
    if (e != TR_OK) {
        api_store_fail(r, e, &eb);
        return false;
    }
    json_t *data = json_array();
    for (int i = 0; i < n; i++) {
        json_array_append_new(data,
                              json_pack("{s:s,s:s}", "id", list[i].id, "type",
                                        "effective-tag-bindings"));
        if (included != NULL)
            json_array_append_new(included, api_tb_json(r, &list[i], true));
    }
    json_object_set_new(rels, "effective-tag-bindings",
                        json_pack("{s:o}", "data", data));
    return true;
}

void api_tb_rel_links(struct http_req *r, json_t *rels, const char *base)
{
    json_object_set_new(
        rels, "tag-bindings",
        json_pack("{s:{s:s}}", "links", "related",
                  arena_printf(r->arena, "%s/tag-bindings", base)));
    json_object_set_new(
        rels, "effective-tag-bindings",
        json_pack("{s:{s:s}}", "links", "related",
                  arena_printf(r->arena, "%s/effective-tag-bindings", base)));
}

/* ---- routes ------------------------------------------------------------ */

/* The owner the route names, if the caller may see it (and, to change,
 * write it); *kind and *id get it. */
static bool owner(struct http_req *r, bool write, enum st_tb_owner *kind,
                  const char **id)
{
    if (strncmp(r->path, "/api/v2/projects/", 17) == 0) {
        struct st_project p;
        if (!api_project_access(r, http_param(r, "id"), &p))
            return false;
        *kind = ST_TB_PROJECT;
        *id = p.id;
        return !write || api_project_allow(r, &p, ACC_PRJ_UPDATE, "update");
    } else {
        struct st_workspace w;
        if (!api_workspace_access(r, http_param(r, "id"), &w))
            return false;
        *kind = ST_TB_WORKSPACE;
        *id = w.id;
        return !write || api_ws_allow(r, &w, ACC_WS_ADMIN, "manage tags");
    }
}

static void reply_list(struct http_req *r, const struct st_tag_binding *list,
                       int n, bool effective)
{
    json_t *items = json_array();
    for (int i = 0; i < n; i++)
        json_array_append_new(items, api_tb_json(r, &list[i], effective));
    http_reply_json(r, 200, json_pack("{s:o}", "data", items));
}

/* GET of the bindings, or (effective) of those a workspace has with its
 * project's inherited; a project's effective ones are its own. */
static void tb_reply(struct http_req *r, bool effective)
{
    enum st_tb_owner kind;
    const char *id = NULL;
    if (!owner(r, false, &kind, &id))
        return;
    struct st_tag_binding *list = NULL;
    int n = 0;
    struct tr_errbuf eb = {{0}};
    tr_err e =
        effective && kind == ST_TB_WORKSPACE
            ? store_tb_effective(r->srv->db, r->arena, id, &list, &n, &eb)
            : store_tb_list(r->srv->db, r->arena, kind, id, &list, &n, &eb);
    if (e != TR_OK) {
        api_store_fail(r, e, &eb);
        return;
    }
    reply_list(r, list, n, effective);
}

static void tb_list(struct http_req *r)
{
    tb_reply(r, false);
}

static void tb_effective(struct http_req *r)
{
    tb_reply(r, true);
}

/* PATCH: adds the keys given or changes their values; answers the bindings
 * given, in their order, as stored. */
static void tb_add(struct http_req *r)
{
    enum st_tb_owner kind;
    const char *id = NULL;
    if (!owner(r, true, &kind, &id))
        return;
    json_t *items = api_ws_id_list_body(r, "tag-bindings");
    struct st_tag_binding *in = NULL;
    int n = 0;
    if (items == NULL || !take_list(r, items, &in, &n))
        return;
    struct st_tag_binding *all = NULL;
    int nall = 0;
    struct tr_errbuf eb = {{0}};
    tr_err e = store_tb_set(r->srv->db, r->arena, kind, id, in, n, false, &all,
                            &nall, &eb);
    if (e != TR_OK) {
        api_store_fail(r, e, &eb);
        return;
    }
    for (int i = 0; i < n; i++)
        for (int k = 0; k < nall; k++)
            if (strcmp(all[k].key, in[i].key) == 0)
                in[i] = all[k];
    reply_list(r, in, n, false);
}

const struct route api_tag_binding_routes[] = {
    {"GET", "/api/v2/workspaces/:id/tag-bindings", tb_list, ROUTE_AUTH},
    {"PATCH", "/api/v2/workspaces/:id/tag-bindings", tb_add, ROUTE_AUTH},
    {"GET", "/api/v2/workspaces/:id/effective-tag-bindings", tb_effective,
     ROUTE_AUTH},
    {"GET", "/api/v2/projects/:id/tag-bindings", tb_list, ROUTE_AUTH},
    {"PATCH", "/api/v2/projects/:id/tag-bindings", tb_add, ROUTE_AUTH},
    {"GET", "/api/v2/projects/:id/effective-tag-bindings", tb_effective,
     ROUTE_AUTH},
    {0},
};
