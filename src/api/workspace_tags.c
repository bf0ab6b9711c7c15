/*
 * workspace_tags.c - tags: a workspace's tags (/workspaces/:id/
 * relationships/tags), an organization's tags (/organizations/:org/tags)
 * and tagging workspaces from the tag's side (/tags/:id/relationships/
 * workspaces).
 *
 * Bodies are lists of resource identifiers: {"data": [{"type": "tags",
 * "attributes": {"name": "x"}} or {"type": "tags", "id": "tag-..."}]}.
 * Names given to add must be valid tag names; names given to remove need
 * only be strings (unknown ones are ignored, as TFE does).  A request that
 * names an unknown id changes nothing.
 *
 * Key/value tag bindings are another thing (tag_bindings.c).
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#include <string.h>

#include "api/workspaces_int.h"

bool api_tag_name_valid(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 255)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
              c == '_' || c == ':'))
            return false;
    }
    return true;
}

json_t *api_ws_id_list_body(struct http_req *r, const char *type)
{
    json_error_t jerr;
    if (r->body.len == 0) {
        http_error(r, 400, NULL, "the request needs a JSON:API body");
        return NULL;
    }
    json_t *doc =
        http_json_own(r, json_loadb(r->body.data, r->body.len, 0, &jerr));
    if (doc == NULL) {
        http_error(r, 400, NULL,
                   arena_printf(r->arena, "malformed JSON: %s at line %d",
                                jerr.text, jerr.line));
        return NULL;
    }
    json_t *data = json_object_get(doc, "data");
    size_t n = json_array_size(data);
    if (!json_is_array(data) || n == 0 || n > API_WS_MAX_ITEMS) {
        http_error(r, 422, NULL,
                   arena_printf(r->arena,
                                "\"data\" must be a list of 1 to %d %s",
                                API_WS_MAX_ITEMS, type));
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        json_t *t = json_object_get(json_array_get(data, i), "type");
        if (!json_is_string(t) || strcmp(json_string_value(t), type) != 0) {
            http_error(r, 409, "conflict",
                       arena_printf(r->arena,
                                    "every data[].type must be \"%s\"", type));
            return NULL;
        }
    }
    return data;
}

static json_t *tag_json(struct http_req *r, const struct st_tag *t)
{
    return json_pack("{s:s,s:s,s:{s:s,s:I,s:o},s:{s:{s:{s:s,s:s}}}}", "id",
                     t->id, "type", "tags", "attributes", "name", t->name,
                     "instance-count", (json_int_t)t->instance_count,
                     "created-at", api_time(t->created_at), "relationships",
                     "organization", "data", "id", t->org, "type",
                     "organizations");
}

static void reply_tags(struct http_req *r, const struct page *p,
                       const struct st_tag *tags, int n, int64_t total)
{
    json_t *items = json_array();
    for (int i = 0; i < n; i++)
        json_array_append_new(items, tag_json(r, &tags[i]));
    http_reply_json(r, 200, jsonapi_list_doc(items, p, total));
}

void api_ws_tags_list(struct http_req *r)
{
    struct st_workspace w;
    struct page p;
    if (!api_ws_from_route(r, &w) || !jsonapi_page(r, &p))
        return;
    struct st_tag *tags = NULL;
    int n = 0;
    int64_t total = 0;
    struct tr_errbuf eb = {{0}};
    tr_err e = store_ws_tag_list(r->srv->db, r->arena, w.id,
                                 http_query(r, "name"), (p.number - 1) * p.size,
                                 p.size, &tags, &n, &total, &eb);
    if (e != TR_OK) {
        api_store_fail(r, e, &eb);
        return;
    }
    reply_tags(r, &p, tags, n, total);
}

/* The tag references of a body; names are checked when strict. */
static bool tag_refs(struct http_req *r, bool strict, struct st_tag_ref **out,
                     int *n)
{
    json_t *data = api_ws_id_list_body(r, "tags");
    if (data == NULL)
        return false;
    *n = (int)json_array_size(data);
    *out = arena_alloc(r->arena, sizeof(**out) * (size_t)(*n + 1));
    for (int i = 0; i < *n; i++) {
        json_t *t = json_array_get(data, (size_t)i);
        json_t *id = json_object_get(t, "id");
        json_t *name =
            json_object_get(json_object_get(t, "attributes"), "name");
        if (json_is_string(id) && json_string_length(id) > 0) {
            (*out)[i].id = json_string_value(id);
            continue;
        }
        const char *s = json_string_value(name);
        if (s == NULL || *s == '\0' || (strict && !api_tag_name_valid(s))) {
            http_error(r, 422, NULL,
                       arena_printf(r->arena,
                                    "invalid tag name %s: use lower-case "
                                    "letters, digits, '-', '_' and ':' (at "
                                    "most 255)",
                                    s ? s : "(not a string)"));
            return false;
        }
        (*out)[i].name = s;
    }
    return true;
}

static void change_tags(struct http_req *r, bool add)
{
    struct st_workspace w;
    struct st_tag_ref *refs = NULL;
    int n = 0;
    if (!api_ws_from_route(r, &w) ||
        !api_ws_allow(r, &w, ACC_WS_ADMIN, "manage tags") ||
        !tag_refs(r, add, &refs, &n))
        return;
    struct tr_errbuf eb = {{0}};
    tr_err e =
        add ? store_ws_tag_add(r->srv->db, r->arena, w.id, refs, n, &eb)
            : store_ws_tag_remove(r->srv->db, r->arena, w.id, refs, n, &eb);
    if (e != TR_OK) {
        api_store_fail(r, e, &eb);
        return;
    }
    http_reply(r, 204, NULL, "", 0);
}

void api_ws_tags_add(struct http_req *r)
{
    change_tags(r, true);
}

void api_ws_tags_remove(struct http_req *r)
{
    change_tags(r, false);
}

void api_org_tags_list(struct http_req *r)
{
    struct st_org o;
    struct page p;
    if (!api_org_access(r, http_param(r, "org"), &o) || !jsonapi_page(r, &p))
        return;
    struct st_tag *tags = NULL;
    int n = 0;
    int64_t total = 0;
    struct tr_errbuf eb = {{0}};
    tr_err e =
        store_tag_list(r->srv->db, r->arena, o.name, http_query(r, "q"),
                       http_query(r, "filter[exclude][taggable][id]"),
                       (p.number - 1) * p.size, p.size, &tags, &n, &total, &eb);
    if (e != TR_OK) {
        api_store_fail(r, e, &eb);
        return;
    }
    reply_tags(r, &p, tags, n, total);
}

bool api_ws_ids(struct http_req *r, const char *type, const char ***ids, int *n)
{
    json_t *data = api_ws_id_list_body(r, type);
    if (data == NULL)
        return false;
    *n = (int)json_array_size(data);
    *ids = arena_alloc(r->arena, sizeof(char *) * (size_t)(*n + 1));
    for (int i = 0; i < *n; i++) {
        json_t *id = json_object_get(json_array_get(data, (size_t)i), "id");
        if (!json_is_string(id) || json_string_length(id) == 0) {
            http_error(r, 422, NULL, "every data[] entry needs an id");
            return false;
        }
        (*ids)[i] = json_string_value(id);
    }
    return true;
}

void api_org_tags_delete(struct http_req *r)
{
    struct st_org o;
    const char **ids = NULL;
    int n = 0;
    if (!api_org_access(r, http_param(r, "org"), &o) ||
        !api_org_allow(r, o.name, ACC_ORG_MANAGE_WS, "manage tags") ||
        !api_ws_ids(r, "tags", &ids, &n))
        return;
    struct tr_errbuf eb = {{0}};
    tr_err e = store_tag_delete(r->srv->db, r->arena, o.name, ids, n, &eb);
    if (e != TR_OK) {
        api_store_fail(r, e, &eb);
        return;
    }
    http_reply(r, 204, NULL, "", 0);
}

void api_tag_add_workspaces(struct http_req *r)
{
    const char *id = http_param(r, "id");
    struct st_tag t;
    struct tr_errbuf eb = {{0}};
    tr_err e = store_tag_get(r->srv->db, r->arena, id, &t, &eb);
    if (e != TR_OK) {
        api_store_fail(r, e, &eb);
        return;
    }
    if (!api_org_access(r, t.org, NULL)) {
        if (r->status == 404)
            http_error(r, 404, "not found", "tag not found");
        return;
    }
    const char **ids = NULL;
    int n = 0;
    if (!api_org_allow(r, t.org, ACC_ORG_MANAGE_WS, "manage tags") ||
        !api_ws_ids(r, "workspaces", &ids, &n))
        return;
    e = store_tag_add_workspaces(r->srv->db, r->arena, t.org, t.id, ids, n,
                                 &eb);
    if (e != TR_OK) {
        api_store_fail(r, e, &eb);
        return;
    }
    http_reply(r, 204, NULL, "", 0);
}
