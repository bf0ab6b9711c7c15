/*
 * notifications.c - notification configurations of workspaces: list and
 * create under /workspaces/:id/notification-configurations, read, update
 * and delete under /notification-configurations/:id, and the
 * verification action (domain/notify.h sends it).
 *
 * As in TFE: destination types generic, slack, microsoft-teams (each
 * needs an http or https url) and email (email-addresses and the users
 * relationship, organization members; a configuration may have neither
 * until one is added).  Saving a configuration that ends up enabled (create
 * or update) sends it a verification first, as TFE does, and the answer
 * carries the delivery response (see verify_saved()).  The token is
 * write-only: no response carries it,
 * it is stored sealed (store_notify.c) and signs generic payloads.  An
 * update of an email configuration sets its users to the relationship
 * given, none when it is left out, as TFE does.  A configuration of a
 * workspace the caller cannot see answers 404 like a missing one.
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#include <string.h>

#include "api/api.h"
#include "api/workspaces_int.h"
#include "domain/notify.h"

#define NC_MAX_NAME 255
#define NC_MAX_TOKEN 1024
#define NC_MAX_LIST 100 /* triggers, addresses or users at most */

static const char *const dest_types[] = {"generic", "slack", "microsoft-teams",
                                         "email", NULL};

/* ---- documents ----------------------------------------------------------- */

static json_t *parsed(const char *txt)
{
    json_t *j = json_loads(txt != NULL ? txt : "[]", 0, NULL);
    return j != NULL ? j : json_array();
}

static json_t *nc_json(struct http_req *r, const struct st_nc *nc)
{
    bool email = strcmp(nc->destination_type, "email") == 0;
    json_t *users = json_array();
    json_t *ids = parsed(nc->email_user_ids);
    for (size_t i = 0; i < json_array_size(ids); i++)
        json_array_append_new(users, json_pack("{s:O,s:s}", "id",
                                               json_array_get(ids, i), "type",
                                               "users"));
    json_decref(ids);
    json_t *attrs = json_pack(
        "{s:s,s:s,s:b,s:o,s:o,s:o,s:o,s:o,s:o}", "name", nc->name,
        "destination-type", nc->destination_type, "enabled", nc->enabled, "url",
        email || nc->url == NULL ? json_null() : json_string(nc->url),
        "triggers", parsed(nc->triggers), "email-addresses",
        parsed(nc->email_addresses), "delivery-responses",
        parsed(nc->delivery_responses), "created-at", api_time(nc->created_at),
        "updated-at", api_time(nc->updated_at));
    return json_pack(
        "{s:s,s:s,s:o,s:{s:{s:{s:s,s:s}},s:{s:o}},s:{s:s}}", "id", nc->id,
        "type", "notification-configurations", "attributes", attrs,
        "relationships", "subscribable", "data", "id", nc->workspace_id, "type",
        "workspaces", "users", "data", users, "links", "self",
        arena_printf(r->arena, "/api/v2/notification-configurations/%s",
                     nc->id));
}

static void reply(struct http_req *r, int status, const struct st_nc *nc)
{
    http_reply_json(r, status, json_pack("{s:o}", "data", nc_json(r, nc)));
}

/* ---- input --------------------------------------------------------------- */

struct nc_in {
    const char *type, *name, *url, *token;
    int enabled;
    const char *triggers;  /* JSON text, NULL: not given */
    const char *addresses; /* JSON text, NULL: not given */
    const char *users;     /* JSON text, NULL: not given */
};

static bool fail(struct http_req *r, const char *msg)
{
    http_error(r, 422, NULL, msg);
    return false;
}

static const char *dump(struct http_req *r, json_t *j)
{
    char *txt = json_dumps(j, JSON_COMPACT);
    const char *out = arena_strdup(r->arena, txt != NULL ? txt : "[]");
    free(txt);
    return out;
}

/* A string attribute that may be JSON null (= not given). */
static bool str_attr(struct http_req *r, json_t *data, const char *name,
                     const char **out)
{
    if (json_is_null(json_object_get(jsonapi_attrs(data), name)))
        return true;
    return jsonapi_attr_str(r, data, name, out);
}

static bool parse_triggers(struct http_req *r, json_t *v, struct nc_in *in)
{
    if (v == NULL || json_is_null(v))
        return true;
    if (!json_is_array(v) || json_array_size(v) > NC_MAX_LIST)
        return fail(r, "triggers must be an array of trigger names");
    json_t *out = http_json_own(r, json_array());
    for (size_t i = 0; i < json_array_size(v); i++) {
        const char *t = json_string_value(json_array_get(v, i));
        if (!notify_trigger_valid(t))
            return fail(
                r, arena_printf(r->arena,
                                "Triggers contains an invalid trigger%s%s: "
                                "use run:created, run:planning, "
                                "run:needs_attention, run:applying, "
                                "run:completed, run:errored or an "
                                "assessment:/workspace: trigger",
                                t != NULL ? " " : "", t != NULL ? t : ""));
        bool seen = false;
        for (size_t k = 0; k < json_array_size(out); k++)
            seen |= strcmp(json_string_value(json_array_get(out, k)), t) == 0;
        if (!seen)
            json_array_append_new(out, json_string(t));
    }
    in->triggers = dump(r, out);
    return true;
}

/* An e-mail address: one '@', no spaces, angle brackets, commas or
 * control characters, at most 254 bytes. */
static bool address_ok(const char *s)
{
    const char *at = s != NULL ? strchr(s, '@') : NULL;
    if (at == NULL || at == s || at[1] == '\0' || strchr(at + 1, '@') ||
        strlen(s) > 254)
        return false;
    for (const char *p = s; *p != '\0'; p++)
        if ((unsigned char)*p <= ' ' || *p == '<' || *p == '>' || *p == ',' ||
            *p == 0x7f)
            return false;
    return true;
}

static bool parse_addresses(struct http_req *r, json_t *v, struct nc_in *in)
{
    if (v == NULL || json_is_null(v))
        return true;
    if (!json_is_array(v) || json_array_size(v) > NC_MAX_LIST)
        return fail(r, "email-addresses must be an array of at most 100 "
                       "e-mail addresses");
    for (size_t i = 0; i < json_array_size(v); i++)
        if (!address_ok(json_string_value(json_array_get(v, i))))
            return fail(r, "email-addresses must hold e-mail addresses "
                           "such as ops@example.com");
    in->addresses = dump(r, v);
    return true;
}

static bool parse_users(struct http_req *r, json_t *data, struct nc_in *in)
{
    json_t *rel =
        json_object_get(json_object_get(data, "relationships"), "users");
    if (rel == NULL || json_is_null(rel))
        return true;
    json_t *list = json_object_get(rel, "data");
    if (!json_is_array(list) || json_array_size(list) > NC_MAX_LIST)
        return fail(r, "relationships.users.data must be an array of "
                       "{\"type\": \"users\", \"id\": ...}");
    json_t *ids = http_json_own(r, json_array());
    for (size_t i = 0; i < json_array_size(list); i++) {
        json_t *u = json_array_get(list, i);
        const char *id = json_string_value(json_object_get(u, "id"));
        json_t *type = json_object_get(u, "type");
        if (id == NULL || *id == '\0' ||
            (type != NULL && !util_streq(json_string_value(type), "users")))
            return fail(r, "relationships.users.data must be an array of "
                           "{\"type\": \"users\", \"id\": ...}");
        json_array_append_new(ids, json_string(id));
    }
    in->users = dump(r, ids);
    return true;
}

static bool parse(struct http_req *r, json_t *data, struct nc_in *in)
{
    *in = (struct nc_in){.enabled = -1};
    json_t *attrs = jsonapi_attrs(data);
    if (attrs != NULL && !json_is_object(attrs))
        return fail(r, "data.attributes must be an object");
    if (!str_attr(r, data, "destination-type", &in->type) ||
        !str_attr(r, data, "name", &in->name) ||
        !str_attr(r, data, "url", &in->url) ||
        !str_attr(r, data, "token", &in->token) ||
        !jsonapi_attr_bool(r, data, "enabled", &in->enabled))
        return false;
    if (!parse_triggers(r, json_object_get(attrs, "triggers"), in) ||
        !parse_addresses(r, json_object_get(attrs, "email-addresses"), in) ||
        !parse_users(r, data, in))
        return false;
    if (in->name != NULL &&
        (*in->name == '\0' || strlen(in->name) > NC_MAX_NAME))
        return fail(r, "Name can't be blank and must be at most 255 "
                       "characters");
    if (in->token != NULL && strlen(in->token) > NC_MAX_TOKEN)
        return fail(r, "token is too long (at most 1024 characters)");
    return true;
}

/* The checks that need the whole configuration: type (the stored one on
 * update), url, addresses and users. */
static bool check(struct http_req *r, const struct nc_in *in, const char *type,
                  const char *url, const char *org)
{
    bool known = false;
    for (int i = 0; dest_types[i] != NULL; i++)
        known |= util_streq(type, dest_types[i]);
    if (!known)
        return fail(r, "Destination type must be one of generic, slack, "
                       "microsoft-teams or email");
    bool email = strcmp(type, "email") == 0;
    const char *why = NULL;
    if (!email && (url == NULL || *url == '\0'))
        return fail(r, arena_printf(r->arena,
                                    "URL can't be blank: a %s destination "
                                    "needs the URL to deliver to",
                                    type));
    if (!email && !notify_url_valid(url, &why))
        return fail(r, why);
    if (!email && ((in->users != NULL && strcmp(in->users, "[]") != 0) ||
                   (in->addresses != NULL && strcmp(in->addresses, "[]") != 0)))
        return fail(r, "email-addresses and users are only for the email "
                       "destination type");
    const char *bad = NULL;
    struct tr_errbuf eb = {{0}};
    tr_err e = in->users == NULL
                   ? TR_OK
                   : store_nc_users_in_org(r->srv->db, r->arena, org, in->users,
                                           &bad, &eb);
    if (e != TR_OK) {
        api_store_fail(r, e, &eb);
        return false;
    }
    if (bad != NULL)
        return fail(r, arena_printf(r->arena,
                                    "user %s is not a member of organization "
                                    "%s",
                                    bad, org));
    return true;
}

/* ---- access -------------------------------------------------------------- */

/* Loads configuration id and its workspace if the caller may see it. */
static bool nc_access(struct http_req *r, struct st_nc *nc,
                      struct st_workspace *ws)
{
    const char *id = http_param(r, "nc_id");
    struct tr_errbuf eb = {{0}};
    tr_err e = store_nc_get(r->srv->db, r->arena, id, nc, &eb);
    if (e == TR_OK)
        e = store_ws_get(r->srv->db, r->arena, nc->workspace_id, ws, &eb);
    if (e == TR_OK && !(api_ws_perms(r, ws) & ACC_WS_SEE))
        e = TR_ERR_NOT_FOUND;
    if (e == TR_ERR_NOT_FOUND)
        http_error(r, 404, "not found",
                   arena_printf(r->arena,
                                "notification configuration %s not found", id));
    else if (e != TR_OK)
        api_store_fail(r, e, &eb);
    return e == TR_OK;
}

/* As TFE: saving a configuration with enabled true sends a verification
 * request to its URL, in the request's thread and bounded by
 * NOTIFY_TIMEOUT_S (what TFE does too: its create and update answer with
 * the delivery response).  nc is reloaded so the answer carries that
 * response.  E-mail configurations have no URL and are verified only on
 * request (actions/verify).  A failed delivery is recorded, not refused:
 * the configuration stays enabled and later deliveries retry, so a
 * receiver that is down when the configuration is saved loses nothing. */
static tr_err verify_saved(struct http_req *r, const struct st_workspace *ws,
                           struct st_nc *nc, struct tr_errbuf *eb)
{
    if (!nc->enabled || strcmp(nc->destination_type, "email") == 0)
        return TR_OK;
    const char *id = nc->id;
    tr_err e = notify_verify(r->srv, r->arena, nc, ws->name, ws->org, eb);
    return e == TR_OK ? store_nc_get(r->srv->db, r->arena, id, nc, eb) : e;
}

/* ---- handlers ------------------------------------------------------------ */

static void ws_list(struct http_req *r)
{
    struct st_workspace ws;
    struct page p;
    if (!api_workspace_access(r, http_param(r, "id"), &ws) ||
        !jsonapi_page(r, &p))
        return;
    struct st_nc *items = NULL;
    int n = 0;
    int64_t total = 0;
    struct tr_errbuf eb = {{0}};
    tr_err e =
        store_nc_list(r->srv->db, r->arena, ws.id, (p.number - 1) * p.size,
                      p.size, &items, &n, &total, &eb);
    if (e != TR_OK) {
        api_store_fail(r, e, &eb);
        return;
    }
    json_t *list = json_array();
    for (int i = 0; i < n; i++)
        json_array_append_new(list, nc_json(r, &items[i]));
    http_reply_json(r, 200, jsonapi_list_doc(list, &p, total));
}

static void ws_create(struct http_req *r)
{
    struct st_workspace ws;
    if (!api_workspace_access(r, http_param(r, "id"), &ws) ||
        !api_ws_allow(r, &ws, ACC_WS_ADMIN, "manage notifications"))
        return;
    json_t *data = jsonapi_body(r, "notification-configurations");
    struct nc_in in;
    if (data == NULL || !parse(r, data, &in))
        return;
    if (in.type == NULL)
        return (void)fail(r, "Destination type can't be blank: use generic, "
                             "slack, microsoft-teams or email");
    if (in.name == NULL)
        return (void)fail(r, "Name can't be blank");
    if (!check(r, &in, in.type, in.url, ws.org))
        return;
    bool email = strcmp(in.type, "email") == 0;
    struct st_nc nc = {
        .workspace_id = ws.id,
        .name = in.name,
        .destination_type = in.type,
        .enabled = in.enabled == 1,
        .url = email ? "" : in.url,
        .token = in.token,
        .triggers = in.triggers,
        .email_addresses = in.addresses,
        .email_user_ids = in.users,
    };
    struct st_nc out;
    struct tr_errbuf eb = {{0}};
    tr_err e =
        store_nc_create(r->srv->db, r->srv->keys, r->arena, &nc, &out, &eb);
    if (e == TR_OK)
        e = verify_saved(r, &ws, &out, &eb);
    if (e != TR_OK)
        api_store_fail(r, e, &eb);
    else
        reply(r, 201, &out);
}

static void nc_show(struct http_req *r)
{
    struct st_nc nc;
    struct st_workspace ws;
    if (nc_access(r, &nc, &ws))
        reply(r, 200, &nc);
}

static void nc_update(struct http_req *r)
{
    struct st_nc cur;
    struct st_workspace ws;
    if (!nc_access(r, &cur, &ws) ||
        !api_ws_allow(r, &ws, ACC_WS_ADMIN, "manage notifications"))
        return;
    json_t *data = jsonapi_body(r, "notification-configurations");
    struct nc_in in;
    if (data == NULL || !parse(r, data, &in))
        return;
    if (in.type != NULL && strcmp(in.type, cur.destination_type) != 0)
        return (void)fail(r, "destination-type cannot be changed: create a "
                             "new notification configuration instead");
    bool email = strcmp(cur.destination_type, "email") == 0;
    if (email && in.users == NULL)
        in.users = "[]";
    if (!check(r, &in, cur.destination_type, in.url ? in.url : cur.url, ws.org))
        return;
    struct st_nc_update u = {
        .name = in.name,
        .enabled = in.enabled,
        .url = email ? NULL : in.url,
        .token = in.token,
        .triggers = in.triggers,
        .email_addresses = in.addresses,
        .email_user_ids = in.users,
    };
    struct st_nc out;
    struct tr_errbuf eb = {{0}};
    tr_err e = store_nc_update(r->srv->db, r->srv->keys, r->arena, cur.id, &u,
                               &out, &eb);
    if (e == TR_OK)
        e = verify_saved(r, &ws, &out, &eb);
    if (e != TR_OK)
        api_store_fail(r, e, &eb);
    else
        reply(r, 200, &out);
}

static void nc_destroy(struct http_req *r)
{
    struct st_nc nc;
    struct st_workspace ws;
    if (!nc_access(r, &nc, &ws) ||
        !api_ws_allow(r, &ws, ACC_WS_ADMIN, "manage notifications"))
        return;
    struct tr_errbuf eb = {{0}};
    tr_err e = store_nc_delete(r->srv->db, r->arena, nc.id, &eb);
    if (e != TR_OK)
        api_store_fail(r, e, &eb);
    else
        http_reply(r, 204, NULL, "", 0);
}

static void nc_verify(struct http_req *r)
{
    struct st_nc nc, out;
    struct st_workspace ws;
    if (!nc_access(r, &nc, &ws) ||
        !api_ws_allow(r, &ws, ACC_WS_ADMIN, "manage notifications"))
        return;
    struct tr_errbuf eb = {{0}};
    tr_err e = notify_verify(r->srv, r->arena, &nc, ws.name, ws.org, &eb);
    if (e == TR_OK)
        e = store_nc_get(r->srv->db, r->arena, nc.id, &out, &eb);
    if (e != TR_OK)
        api_store_fail(r, e, &eb);
    else
        reply(r, 200, &out);
}

const struct route api_notification_routes[] = {
    {"GET", "/api/v2/workspaces/:id/notification-configurations", ws_list,
     ROUTE_AUTH | ROUTE_WS_READ},
    {"POST", "/api/v2/workspaces/:id/notification-configurations", ws_create,
     ROUTE_AUTH},
    {"GET", "/api/v2/notification-configurations/:nc_id", nc_show, ROUTE_AUTH},
    {"PATCH", "/api/v2/notification-configurations/:nc_id", nc_update,
     ROUTE_AUTH},
    {"DELETE", "/api/v2/notification-configurations/:nc_id", nc_destroy,
     ROUTE_AUTH},
    {"POST", "/api/v2/notification-configurations/:nc_id/actions/verify",
     nc_verify, ROUTE_AUTH},
    {0},
};
