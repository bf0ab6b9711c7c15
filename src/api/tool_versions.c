/*
 * tool_versions.c - site administration of the tofu/terraform binaries
 * runs may use, as TFE's admin terraform-versions API:
 *
 *   GET    /admin/terraform-versions       filter[version], search[version]
 *   POST   /admin/terraform-versions
 *   GET    /admin/terraform-versions/:id
 *   PATCH  /admin/terraform-versions/:id
 *   DELETE /admin/terraform-versions/:id   (422 while workspaces pin it)
 *
 * TFE downloads a zip from `url`; Terrace runs local binaries, so a
 * version names one with the `path` attribute (a file:// `url` is taken as
 * a path too, and `url` is answered as file://<path>), and `sha` is the
 * sha256 of that file.  Every write checks the file on this node: path
 * absolute, an executable regular file whose sha256 equals `sha`, or 422.
 * Only site admins see these routes; everyone else gets 404.
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#include <ctype.h>
#include <string.h>

#include "api/api.h"
#include "core/log.h"
#include "executor/executor.h"

#define MAX_REASON 1024

static bool need_admin(struct http_req *r)
{
    if (r->who.kind == PRINC_USER && r->who.is_admin)
        return true;
    http_error(r, 404, "not found", "resource not found");
    return false;
}

static json_t *tool_json(struct http_req *r, const struct st_tool *t)
{
    json_t *attrs = json_pack(
        "{s:s,s:s,s:s,s:s,s:b,s:b,s:b,s:b,s:I,s:o}", "version", t->version,
        "url", arena_printf(r->arena, "file://%s", t->path), "path", t->path,
        "sha", t->sha256, "deprecated", t->deprecated, "official", t->official,
        "enabled", t->enabled, "beta", t->beta, "usage", (json_int_t)t->usage,
        "created-at", api_time(t->created_at));
    json_object_set_new(attrs, "deprecated-reason",
                        t->deprecated_reason ? json_string(t->deprecated_reason)
                                             : json_null());
    return json_pack(
        "{s:s,s:s,s:o,s:{s:s}}", "id", t->id, "type", "terraform-versions",
        "attributes", attrs, "links", "self",
        arena_printf(r->arena, "/api/v2/admin/terraform-versions/%s", t->id));
}

static void reply_tool(struct http_req *r, int status, const char *id)
{
    struct st_tool t;
    struct tr_errbuf eb = {{0}};
    tr_err e = store_tool_get(r->srv->db, r->arena, id, &t, &eb);
    if (e != TR_OK) {
        api_store_fail(r, e, &eb);
        return;
    }
    http_reply_json(r, status, json_pack("{s:o}", "data", tool_json(r, &t)));
}

static void tools_list(struct http_req *r)
{
    struct page p;
    if (!need_admin(r) || !jsonapi_page(r, &p))
        return;
    struct st_tool *items = NULL;
    int n = 0;
    int64_t total = 0;
    struct tr_errbuf eb = {{0}};
    tr_err e = store_tool_list(
        r->srv->db, r->arena, http_query(r, "filter[version]"),
        http_query(r, "search[version]"), (p.number - 1) * p.size, p.size,
        &items, &n, &total, &eb);
    if (e != TR_OK) {
        api_store_fail(r, e, &eb);
        return;
    }
    json_t *data = json_array();
    for (int i = 0; i < n; i++)
        json_array_append_new(data, tool_json(r, &items[i]));
    http_reply_json(r, 200, jsonapi_list_doc(data, &p, total));
}

static void tool_show(struct http_req *r)
{
    if (need_admin(r))
        reply_tool(r, 200, http_param(r, "id"));
}

/* Reads the attributes of a create (t zeroed with defaults) or update (t
 * the stored row) into t; false after answering 422. */
static bool read_attrs(struct http_req *r, json_t *data, struct st_tool *t,
                       bool *file_changed)
{
    const char *version = NULL, *url = NULL, *path = NULL, *sha = NULL;
    int enabled = -1, official = -1, beta = -1, deprecated = -1;
    if (!jsonapi_attr_str(r, data, "version", &version) ||
        !jsonapi_attr_str(r, data, "url", &url) ||
        !jsonapi_attr_str(r, data, "path", &path) ||
        !jsonapi_attr_str(r, data, "sha", &sha) ||
        !jsonapi_attr_bool(r, data, "enabled", &enabled) ||
        !jsonapi_attr_bool(r, data, "official", &official) ||
        !jsonapi_attr_bool(r, data, "beta", &beta) ||
        !jsonapi_attr_bool(r, data, "deprecated", &deprecated))
        return false;
    json_t *reason = json_object_get(jsonapi_attrs(data), "deprecated-reason");
    if (reason != NULL && !json_is_null(reason) &&
        (!json_is_string(reason) ||
         strlen(json_string_value(reason)) > MAX_REASON)) {
        http_error(r, 422, NULL,
                   "deprecated-reason must be a string of at most 1024 "
                   "characters or null");
        return false;
    }
    if (version != NULL && !store_tool_valid_version(version)) {
        http_error(r, 422, NULL,
                   arena_printf(r->arena,
                                "version %.80s is not a semantic version "
                                "(MAJOR.MINOR.PATCH)",
                                version));
        return false;
    }
    if (path == NULL && url != NULL) {
        if (strncmp(url, "file://", 7) != 0) {
            http_error(r, 422, NULL,
                       "url must be a file:// URL: Terrace runs local "
                       "binaries (or give path)");
            return false;
        }
        path = url + 7;
    }
    if (sha != NULL) {
        bool hex = strlen(sha) == 64;
        for (const char *c = sha; hex && *c; c++)
            hex = isxdigit((unsigned char)*c) != 0;
        if (!hex) {
            http_error(r, 422, NULL,
                       "sha must be the 64 hex digits of a sha256");
            return false;
        }
        char *low = arena_strdup(r->arena, sha);
        for (char *c = low; *c; c++)
            *c = (char)tolower((unsigned char)*c);
        sha = low;
    }
    *file_changed = (path != NULL && !util_streq(path, t->path)) ||
                    (sha != NULL && !util_streq(sha, t->sha256));
    if (version != NULL)
        t->version = version;
    if (path != NULL)
        t->path = path;
    if (sha != NULL)
        t->sha256 = sha;
    if (enabled >= 0)
        t->enabled = enabled;
    if (official >= 0)
        t->official = official;
    if (beta >= 0)
        t->beta = beta;
    if (deprecated >= 0)
        t->deprecated = deprecated;
    if (reason != NULL)
        t->deprecated_reason = json_string_value(reason);
    if (!t->deprecated)
        t->deprecated_reason = NULL;
    return true;
}

/* The file at t->path must be an executable whose sha256 is t->sha256. */
static bool check_file(struct http_req *r, const struct st_tool *t)
{
    char *sha = NULL;
    struct tr_errbuf eb = {{0}};
    tr_err e = executor_tool_check(r->arena, t->path, &sha, &eb);
    if (e != TR_OK) {
        http_error(r, 422, NULL,
                   arena_printf(r->arena, "path: %s", tr_errbuf_msg(&eb, e)));
        return false;
    }
    if (strcmp(sha, t->sha256) != 0) {
        http_error(r, 422, NULL,
                   arena_printf(r->arena,
                                "sha does not match the file: %s has "
                                "sha256 %s",
                                t->path, sha));
        return false;
    }
    return true;
}

static void tool_write_fail(struct http_req *r, tr_err e, struct tr_errbuf *eb)
{
    if (e == TR_ERR_CONFLICT)
        e = TR_ERR_INVALID; /* a taken version is invalid input */
    api_store_fail(r, e, eb);
}

static void tool_create(struct http_req *r)
{
    if (!need_admin(r))
        return;
    json_t *data = jsonapi_body(r, "terraform-versions");
    struct st_tool t = {.enabled = true};
    bool changed = false;
    if (data == NULL || !read_attrs(r, data, &t, &changed))
        return;
    const char *missing = t.version == NULL  ? "version"
                          : t.path == NULL   ? "path (or a file:// url)"
                          : t.sha256 == NULL ? "sha"
                                             : NULL;
    if (missing != NULL) {
        http_error(r, 422, NULL,
                   arena_printf(r->arena, "%s is required", missing));
        return;
    }
    if (!check_file(r, &t))
        return;
    struct st_tool out;
    struct tr_errbuf eb = {{0}};
    tr_err e = store_tool_create(r->srv->db, r->arena, &t, &out, &eb);
    if (e != TR_OK) {
        tool_write_fail(r, e, &eb);
        return;
    }
    log_info("rid=%s tool version %s (%s) registered: %s", r->request_id,
             out.version, out.id, out.path);
    http_reply_json(r, 201, json_pack("{s:o}", "data", tool_json(r, &out)));
}

static void tool_update(struct http_req *r)
{
    if (!need_admin(r))
        return;
    struct st_tool t;
    struct tr_errbuf eb = {{0}};
    tr_err e =
        store_tool_get(r->srv->db, r->arena, http_param(r, "id"), &t, &eb);
    if (e != TR_OK) {
        api_store_fail(r, e, &eb);
        return;
    }
    json_t *data = jsonapi_body(r, "terraform-versions");
    bool changed = false;
    if (data == NULL || !read_attrs(r, data, &t, &changed))
        return;
    if (changed && !check_file(r, &t))
        return;
    e = store_tool_update(r->srv->db, r->arena, t.id, &t, &eb);
    if (e != TR_OK) {
        tool_write_fail(r, e, &eb);
        return;
    }
    reply_tool(r, 200, t.id);
}

static void tool_delete(struct http_req *r)
{
    if (!need_admin(r))
        return;
    struct st_tool t;
    struct tr_errbuf eb = {{0}};
    tr_err e =
        store_tool_get(r->srv->db, r->arena, http_param(r, "id"), &t, &eb);
    if (e == TR_OK && t.usage > 0) {
        http_error(r, 422, NULL,
                   arena_printf(
                       r->arena, "version %s is used by %lld workspace%s",
                       t.version, (long long)t.usage, t.usage == 1 ? "" : "s"));
        return;
    }
    if (e == TR_OK)
        e = store_tool_delete(r->srv->db, r->arena, t.id, &eb);
    if (e != TR_OK) {
        api_store_fail(r, e, &eb);
        return;
    }
    log_info("rid=%s tool version %s (%s) deleted", r->request_id, t.version,
             t.id);
    http_reply(r, 204, NULL, "", 0);
}

const struct route api_tool_routes[] = {
    {"GET", "/api/v2/admin/terraform-versions", tools_list, ROUTE_AUTH},
    {"POST", "/api/v2/admin/terraform-versions", tool_create, ROUTE_AUTH},
    {"GET", "/api/v2/admin/terraform-versions/:id", tool_show, ROUTE_AUTH},
    {"PATCH", "/api/v2/admin/terraform-versions/:id", tool_update, ROUTE_AUTH},
    {"DELETE", "/api/v2/admin/terraform-versions/:id", tool_delete, ROUTE_AUTH},
    {0},
};
