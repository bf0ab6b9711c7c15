/*
 * ssh_keys.c - organization SSH keys, and the one a workspace's runs use
 * for git over SSH when `tofu init` fetches modules:
 *
 *   GET    /organizations/:org/ssh-keys      list (paginated, by name)
 *   POST   /organizations/:org/ssh-keys      create {name, value}
 *   GET    /ssh-keys/:id    PATCH /ssh-keys/:id    DELETE /ssh-keys/:id
 *   PATCH  /workspaces/:id/relationships/ssh-key   {attributes: {id}}
 *          assigns the key; with id null, unassigns it
 *
 * The value is write-only: sealed at rest (envelope.h), never in a
 * response or a log, opened only for a run's job.  As in Terraform
 * Enterprise its format is not checked (an unusable key fails the run's
 * git clone, which says why); it is at most SSH_KEY_MAX bytes of text.
 * Reading needs sight of the organization; changing keys and assigning
 * one needs manage-vcs-settings (owners have it).
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#include <string.h>

#include "api/workspaces_int.h"
#include "crypto/envelope.h"

#define SSH_KEY_MAX (64 * 1024)
#define SSH_NAME_MAX 255

static json_t *key_json(struct http_req *r, const struct st_ssh_key *k)
{
    return json_pack("{s:s,s:s,s:{s:s},s:{s:s}}", "id", k->id, "type",
                     "ssh-keys", "attributes", "name", k->name, "links", "self",
                     arena_printf(r->arena, "/api/v2/ssh-keys/%s", k->id));
}

static bool may_admin(struct http_req *r, const char *org)
{
    if (api_org_may(r, org, ACC_ORG_MANAGE_VCS))
        return true;
    http_error(r, 403, "forbidden",
               "you may not manage the SSH keys of this organization");
    return false;
}

/* The name and value attributes of data; each NULL when absent (create
 * requires both).  False after writing 422. */
static bool parse(struct http_req *r, json_t *data, bool create,
                  const char **name, const char **value)
{
    json_t *attrs = json_object_get(data, "attributes");
    json_t *n = json_object_get(attrs, "name");
    json_t *v = json_object_get(attrs, "value");
    *name = *value = NULL;
    if ((n != NULL && !json_is_null(n)) || create) {
        if (!json_is_string(n) || json_string_length(n) == 0 ||
            json_string_length(n) > SSH_NAME_MAX) {
            http_error(r, 422, NULL,
                       "name is required: 1 to 255 characters naming the "
                       "key");
            return false;
        }
        *name = json_string_value(n);
    }
    if ((v != NULL && !json_is_null(v)) || create) {
        if (!json_is_string(v) || json_string_length(v) == 0 ||
            json_string_length(v) > SSH_KEY_MAX ||
            strlen(json_string_value(v)) != json_string_length(v)) {
            http_error(r, 422, NULL,
                       "value is required: the private key's text (PEM or "
                       "OpenSSH format), at most 64 KiB");
            return false;
        }
        *value = json_string_value(v);
    }
    return true;
}

static bool seal(struct http_req *r, const char *value, const char **out)
{
    struct tr_errbuf eb = {{0}};
    char *sealed = NULL;
    *out = NULL;
    if (value == NULL)
        return true;
    tr_err e = envelope_seal(r->srv->keys, r->arena, value, strlen(value),
                             &sealed, &eb);
    if (e != TR_OK) {
        api_store_fail(r, e, &eb);
        return false;
    }
    *out = sealed;
    return true;
}

static void key_list(struct http_req *r)
{
    struct st_org o;
    struct page p;
    if (!api_org_access(r, http_param(r, "org"), &o) || !jsonapi_page(r, &p))
        return;
    struct st_ssh_key *keys = NULL;
    int n = 0;
    int64_t total = 0;
    struct tr_errbuf eb = {{0}};
    tr_err e = store_ssh_key_list(r->srv->db, r->arena, o.name,
                                  (p.number - 1) * p.size, p.size, &keys, &n,
                                  &total, &eb);
    if (e != TR_OK) {
        api_store_fail(r, e, &eb);
        return;
    }
    json_t *items = json_array();
    for (int i = 0; i < n; i++)
        json_array_append_new(items, key_json(r, &keys[i]));
    http_reply_json(r, 200, jsonapi_list_doc(items, &p, total));
}

static void key_create(struct http_req *r)
{
    struct st_org o;
    const char *name, *value, *sealed;
    if (!api_org_access(r, http_param(r, "org"), &o) || !may_admin(r, o.name))
        return;
    json_t *data = jsonapi_body(r, "ssh-keys");
    if (data == NULL || !parse(r, data, true, &name, &value) ||
        !seal(r, value, &sealed))
        return;
    struct st_ssh_key k;
    struct tr_errbuf eb = {{0}};
    tr_err e = store_ssh_key_create(r->srv->db, r->arena, o.name, name, sealed,
                                    &k, &eb);
    if (e != TR_OK) {
        api_store_fail(r, e, &eb);
        return;
    }
    http_reply_json(r, 201, json_pack("{s:o}", "data", key_json(r, &k)));
}

/* The key the route names if the caller may see its organization (and,
 * admin, administer it); 404 otherwise. */
static bool key_from_route(struct http_req *r, bool admin, struct st_ssh_key *k)
{
    struct tr_errbuf eb = {{0}};
    tr_err e =
        store_ssh_key_get(r->srv->db, r->arena, http_param(r, "id"), k, &eb);
    if (e != TR_OK) {
        api_store_fail(r, e, &eb);
        return false;
    }
    if (!api_org_access(r, k->org, NULL)) /* wrote 404 */
        return false;
    return !admin || may_admin(r, k->org);
}

static void key_show(struct http_req *r)
{
    struct st_ssh_key k;
    if (key_from_route(r, false, &k))
        http_reply_json(r, 200, json_pack("{s:o}", "data", key_json(r, &k)));
}

static void key_update(struct http_req *r)
{
    struct st_ssh_key k;
    const char *name, *value, *sealed;
    if (!key_from_route(r, true, &k))
        return;
    json_t *data = jsonapi_body(r, "ssh-keys");
    if (data == NULL || !parse(r, data, false, &name, &value) ||
        !seal(r, value, &sealed))
        return;
    struct tr_errbuf eb = {{0}};
    tr_err e =
        store_ssh_key_update(r->srv->db, r->arena, k.id, name, sealed, &eb);
    if (e == TR_OK)
        e = store_ssh_key_get(r->srv->db, r->arena, k.id, &k, &eb);
    if (e != TR_OK) {
        api_store_fail(r, e, &eb);
        return;
    }
    http_reply_json(r, 200, json_pack("{s:o}", "data", key_json(r, &k)));
}

static void key_delete(struct http_req *r)
{
    struct st_ssh_key k;
    if (!key_from_route(r, true, &k))
        return;
    struct tr_errbuf eb = {{0}};
    tr_err e = store_ssh_key_delete(r->srv->db, r->arena, k.id, &eb);
    if (e != TR_OK) {
        api_store_fail(r, e, &eb);
        return;
    }
    http_reply(r, 204, NULL, "", 0);
}

/* Assigns the key data.attributes.id names, or none when it is null;
 * answers the workspace. */
static void ws_key(struct http_req *r)
{
    struct st_workspace w;
    if (!api_ws_from_route(r, &w) || !may_admin(r, w.org))
        return;
    json_t *data = jsonapi_body(r, NULL);
    if (data == NULL)
        return;
    json_t *attrs = json_object_get(data, "attributes");
    json_t *id = json_object_get(attrs, "id");
    const char *key = json_string_value(id);
    bool assign = key != NULL;
    if (!json_is_object(attrs) || id == NULL ||
        (!json_is_null(id) &&
         (key == NULL || *key == '\0' || strlen(key) > 64))) {
        http_error(r, 422, NULL,
                   "attributes.id is required: the id of an SSH key of the "
                   "workspace's organization (sshkey-...), or null for "
                   "none");
        return;
    }
    struct tr_errbuf eb = {{0}};
    tr_err e = store_ws_set_ssh_key(r->srv->db, r->arena, w.id,
                                    assign ? key : NULL, &eb);
    if (e == TR_OK)
        e = store_ws_get(r->srv->db, r->arena, w.id, &w, &eb);
    if (e != TR_OK) {
        api_store_fail(r, e, &eb);
        return;
    }
    api_ws_reply(r, 200, &w);
}

const struct route api_ssh_key_routes[] = {
    {"GET", "/api/v2/organizations/:org/ssh-keys", key_list, ROUTE_AUTH},
    {"POST", "/api/v2/organizations/:org/ssh-keys", key_create, ROUTE_AUTH},
    {"GET", "/api/v2/ssh-keys/:id", key_show, ROUTE_AUTH},
    {"PATCH", "/api/v2/ssh-keys/:id", key_update, ROUTE_AUTH},
    {"DELETE", "/api/v2/ssh-keys/:id", key_delete, ROUTE_AUTH},
    {"PATCH", "/api/v2/workspaces/:id/relationships/ssh-key", ws_key,
     ROUTE_AUTH},
    {0},
};
