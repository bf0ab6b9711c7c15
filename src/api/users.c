/*
 * users.c - the calling account, users, and site administration of users.
 *
 *   GET   /account/details            the caller (a user token)
 *   PATCH /account/update             change own username / email
 *   GET   /users/:id                  any user (email only to self/admin)
 *   GET   /admin/users                site admins: list, q, filter[admin]
 *   POST  /admin/users                site admins: create (Terrace)
 *   DELETE /admin/users/:id
 *   POST  /admin/users/:id/actions/grant_admin | revoke_admin
 *
 * and the user-token routes of tokens.c.  Organization tokens are not
 * users: the account and admin routes answer them 404, as they answer a
 * user who is not a site admin on /admin routes.  An admin cannot delete
 * their own account or revoke their own rights, so a site never loses its
 * last admin by accident.
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#include <ctype.h>
#include <string.h>

#include "api/accounts.h"
#include "core/log.h"
#include "crypto/digest.h"

#define MAX_EMAIL 254

bool api_need_user(struct http_req *r, bool admin)
{
    if (r->who.kind == PRINC_USER && (!admin || r->who.is_admin))
        return true;
    http_error(r, 404, "not found", "resource not found");
    return false;
}

bool api_valid_email(const char *s)
{
    const char *at = strchr(s, '@');
    size_t n = strlen(s);
    if (at == NULL || at == s || at[1] == '\0' || strchr(at + 1, '@') ||
        n > MAX_EMAIL)
        return false;
    for (const char *p = s; *p; p++)
        if (!isgraph((unsigned char)*p))
            return false;
    return true;
}

json_t *api_user_json(struct http_req *r, const struct st_user *u,
                      enum user_view view, const char *const *orgs, int norgs)
{
    const char *email = u->email ? u->email : "";
    char *lower = arena_strdup(r->arena, email);
    for (char *p = lower; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    json_t *attrs = json_pack(
        "{s:s,s:s,s:b,s:s,s:b,s:b,s:b,s:{s:b,s:b},s:n}", "username",
        u->username, "avatar-url",
        arena_printf(r->arena, "https://www.gravatar.com/avatar/%s?s=100&d=mm",
                     digest_md5_hex(r->arena, lower, strlen(lower))),
        "is-service-account", 0, "auth-method", "tfe", "v2-only", 0,
        "is-site-admin", u->is_admin, "is-sso-login", 0, "two-factor",
        "enabled", 0, "verified", 0, "unconfirmed-email");
    if (view >= USER_VIEW_SELF) {
        json_object_set_new(attrs, "email", json_string(email));
        json_object_set_new(
            attrs, "permissions",
            json_pack("{s:b,s:b,s:b,s:b,s:b,s:b}", "can-create-organizations",
                      1, "can-change-email", 1, "can-change-username", 1,
                      "can-manage-user-tokens", 1, "can-view2fa-settings", 0,
                      "can-manage-hcp-account", 0));
    }
    json_t *rels = json_pack(
        "{s:{s:{s:s}}}", "authentication-tokens", "links", "related",
        arena_printf(r->arena, "/api/v2/users/%s/authentication-tokens",
                     u->id));
    if (view == USER_VIEW_ADMIN) {
        json_object_set_new(attrs, "is-admin", json_boolean(u->is_admin));
        json_object_set_new(attrs, "is-suspended", json_false());
        json_t *data = json_array();
        for (int i = 0; i < norgs; i++)
            json_array_append_new(
                data,
                json_pack("{s:s,s:s}", "type", "organizations", "id", orgs[i]));
        json_object_set_new(rels, "organizations",
                            json_pack("{s:o}", "data", data));
    }
    return json_pack("{s:s,s:s,s:o,s:o,s:{s:s}}", "id", u->id, "type", "users",
                     "attributes", attrs, "relationships", rels, "links",
                     "self", arena_printf(r->arena, "/api/v2/users/%s", u->id));
}

static void reply_user(struct http_req *r, int status, const struct st_user *u,
                       enum user_view view)
{
    json_t *obj = NULL;
    if (view == USER_VIEW_ADMIN) {
        const char **orgs = NULL;
        int n = 0;
        struct tr_errbuf eb = {{0}};
        tr_err e = store_user_orgs(r->srv->db, r->arena, u->id, &orgs, &n, &eb);
        if (e != TR_OK) {
            api_store_fail(r, e, &eb);
            return;
        }
        obj = api_user_json(r, u, view, orgs, n);
    } else {
        obj = api_user_json(r, u, view, NULL, 0);
    }
    http_reply_json(r, status, json_pack("{s:o}", "data", obj));
}

/* Store failures of user writes: duplicates are invalid input (422). */
static void user_write_fail(struct http_req *r, tr_err e, struct tr_errbuf *eb)
{
    if (e == TR_ERR_CONFLICT)
        e = TR_ERR_INVALID;
    api_store_fail(r, e, eb);
}

/* Reads and checks username / email attributes; NULL when absent.
 * Returns false after answering 422. */
static bool user_attrs(struct http_req *r, json_t *data, const char **username,
                       const char **email)
{
    *username = NULL;
    *email = NULL;
    if (!jsonapi_attr_str(r, data, "username", username) ||
        !jsonapi_attr_str(r, data, "email", email))
        return false;
    if (*username != NULL && !util_valid_name(*username)) {
        http_error(r, 422, NULL,
                   "username must be 1 to 90 letters, digits, '-' or '_'");
        return false;
    }
    if (*email != NULL && !api_valid_email(*email)) {
        http_error(
            r, 422, NULL,
            arena_printf(r->arena, "email %s is not a valid address", *email));
        return false;
    }
    return true;
}

/* Loads the caller's own user row. */
static bool load_self(struct http_req *r, struct st_user *u)
{
    struct tr_errbuf eb = {{0}};
    tr_err e = store_user_get(r->srv->db, r->arena, r->who.user_id, u, &eb);
    if (e != TR_OK) {
        api_store_fail(r, e, &eb);
        return false;
    }
    return true;
}

static void account_details(struct http_req *r)
{
    struct st_user u;
    if (api_need_user(r, false) && load_self(r, &u))
        reply_user(r, 200, &u, USER_VIEW_SELF);
}

static void account_update(struct http_req *r)
{
    if (!api_need_user(r, false))
        return;
    json_t *data = jsonapi_body(r, "users");
    const char *username, *email;
    if (data == NULL || !user_attrs(r, data, &username, &email))
        return;
    struct tr_errbuf eb = {{0}};
    tr_err e = store_user_update(r->srv->db, r->arena, r->who.user_id, username,
                                 email, -1, &eb);
    if (e != TR_OK) {
        user_write_fail(r, e, &eb);
        return;
    }
    struct st_user u;
    if (load_self(r, &u))
        reply_user(r, 200, &u, USER_VIEW_SELF);
}

static void user_show(struct http_req *r)
{
    struct st_user u;
    struct tr_errbuf eb = {{0}};
    tr_err e =
        store_user_get(r->srv->db, r->arena, http_param(r, "id"), &u, &eb);
    if (e != TR_OK) {
        api_store_fail(r, e, &eb);
        return;
    }
    bool self = r->who.kind == PRINC_USER &&
                (r->who.is_admin || strcmp(r->who.user_id, u.id) == 0);
    reply_user(r, 200, &u, self ? USER_VIEW_SELF : USER_VIEW_PUBLIC);
}

/* "true"/"false" query filters: 1, 0, or -1 when absent.  Answers 400 on
 * anything else and returns -2. */
static int bool_filter(struct http_req *r, const char *key)
{
    const char *v = http_query(r, key);
    if (v == NULL || *v == '\0')
        return -1;
    if (strcmp(v, "true") == 0)
        return 1;
    if (strcmp(v, "false") == 0)
        return 0;
    http_error(r, 400, NULL,
               arena_printf(r->arena, "%s must be true or false", key));
    return -2;
}

/* include= for /admin/users: only "organizations" (always rendered as a
 * relationship).  Answers 400 on anything else. */
static bool admin_include_ok(struct http_req *r)
{
    const char *inc = http_query(r, "include");
    if (inc == NULL || *inc == '\0')
        return true;
    char *copy = arena_strdup(r->arena, inc), *save = NULL;
    for (char *t = strtok_r(copy, ",", &save); t != NULL;
         t = strtok_r(NULL, ",", &save)) {
        if (strcmp(t, "organizations") != 0) {
            http_error(
                r, 400, "bad request",
                arena_printf(r->arena, "Invalid include parameter: %s", t));
            return false;
        }
    }
    return true;
}

static void admin_users_list(struct http_req *r)
{
    struct page p;
    if (!api_need_user(r, true) || !jsonapi_page(r, &p) || !admin_include_ok(r))
        return;
    int admin = bool_filter(r, "filter[admin]");
    int suspended = bool_filter(r, "filter[suspended]");
    if (admin == -2 || suspended == -2)
        return;
    struct st_user *users = NULL;
    int n = 0;
    int64_t total = 0;
    struct tr_errbuf eb = {{0}};
    tr_err e = TR_OK;
    if (suspended != 1) /* nobody is suspended */
        e = store_user_search(r->srv->db, r->arena, http_query(r, "q"), admin,
                              (p.number - 1) * p.size, p.size, &users, &n,
                              &total, &eb);
    json_t *items = json_array();
    for (int i = 0; e == TR_OK && i < n; i++) {
        const char **orgs = NULL;
        int norgs = 0;
        e = store_user_orgs(r->srv->db, r->arena, users[i].id, &orgs, &norgs,
                            &eb);
        if (e == TR_OK)
            json_array_append_new(
                items,
                api_user_json(r, &users[i], USER_VIEW_ADMIN, orgs, norgs));
    }
    if (e != TR_OK) {
        json_decref(items);
        api_store_fail(r, e, &eb);
        return;
    }
    http_reply_json(r, 200, jsonapi_list_doc(items, &p, total));
}

static void admin_user_create(struct http_req *r)
{
    if (!api_need_user(r, true))
        return;
    json_t *data = jsonapi_body(r, "users");
    const char *username, *email;
    int is_admin = 0;
    if (data == NULL || !user_attrs(r, data, &username, &email) ||
        !jsonapi_attr_bool(r, data, "is-admin", &is_admin))
        return;
    if (username == NULL || email == NULL) {
        http_error(r, 422, NULL,
                   username == NULL ? "username is required"
                                    : "email is required");
        return;
    }
    struct st_user u;
    struct tr_errbuf eb = {{0}};
    tr_err e = store_user_create(r->srv->db, r->arena, username, email,
                                 is_admin == 1, &u, &eb);
    if (e != TR_OK) {
        user_write_fail(r, e, &eb);
        return;
    }
    log_info("rid=%s user %s (%s) created by %s%s", r->request_id, u.id,
             u.username, r->who.username, u.is_admin ? " as site admin" : "");
    reply_user(r, 201, &u, USER_VIEW_ADMIN);
}

/* The user :id for an admin action that must not target the caller. */
static bool admin_target(struct http_req *r, const char *what,
                         struct st_user *u)
{
    if (!api_need_user(r, true))
        return false;
    struct tr_errbuf eb = {{0}};
    tr_err e =
        store_user_get(r->srv->db, r->arena, http_param(r, "id"), u, &eb);
    if (e != TR_OK) {
        api_store_fail(r, e, &eb);
        return false;
    }
    if (what != NULL && strcmp(u->id, r->who.user_id) == 0) {
        http_error(r, 422, NULL,
                   arena_printf(r->arena, "you cannot %s yourself", what));
        return false;
    }
    return true;
}

static void admin_user_delete(struct http_req *r)
{
    struct st_user u;
    if (!admin_target(r, "delete", &u))
        return;
    struct tr_errbuf eb = {{0}};
    tr_err e = store_user_delete(r->srv->db, r->arena, u.id, &eb);
    if (e != TR_OK) {
        api_store_fail(r, e, &eb);
        return;
    }
    log_info("rid=%s user %s (%s) deleted by %s", r->request_id, u.id,
             u.username, r->who.username);
    http_reply(r, 204, NULL, "", 0);
}

static void set_admin(struct http_req *r, bool grant)
{
    struct st_user u;
    if (!admin_target(r, grant ? NULL : "revoke site-admin rights from", &u))
        return;
    struct tr_errbuf eb = {{0}};
    tr_err e = store_user_update(r->srv->db, r->arena, u.id, NULL, NULL,
                                 grant ? 1 : 0, &eb);
    if (e != TR_OK) {
        api_store_fail(r, e, &eb);
        return;
    }
    log_info("rid=%s site-admin rights %s %s (%s) by %s", r->request_id,
             grant ? "granted to" : "revoked from", u.id, u.username,
             r->who.username);
    u.is_admin = grant;
    reply_user(r, 200, &u, USER_VIEW_ADMIN);
}

static void admin_grant(struct http_req *r)
{
    set_admin(r, true);
}

static void admin_revoke(struct http_req *r)
{
    set_admin(r, false);
}

const struct route api_user_routes[] = {
    {"GET", "/api/v2/account/details", account_details, ROUTE_AUTH},
    {"PATCH", "/api/v2/account/update", account_update, ROUTE_AUTH},
    {"GET", "/api/v2/users/:id", user_show, ROUTE_AUTH},
    {"GET", "/api/v2/users/:id/authentication-tokens", api_user_tokens_list,
     ROUTE_AUTH},
    {"POST", "/api/v2/users/:id/authentication-tokens", api_user_token_create,
     ROUTE_AUTH},
    {"GET", "/api/v2/authentication-tokens/:id", api_token_get, ROUTE_AUTH},
    {"DELETE", "/api/v2/authentication-tokens/:id", api_token_delete,
     ROUTE_AUTH},
    {"GET", "/api/v2/admin/users", admin_users_list, ROUTE_AUTH},
    {"POST", "/api/v2/admin/users", admin_user_create, ROUTE_AUTH},
    {"DELETE", "/api/v2/admin/users/:id", admin_user_delete, ROUTE_AUTH},
    {"POST", "/api/v2/admin/users/:id/actions/grant_admin", admin_grant,
     ROUTE_AUTH},
    {"POST", "/api/v2/admin/users/:id/actions/revoke_admin", admin_revoke,
     ROUTE_AUTH},
    {"POST", "/api/v2/admin/users/:id/authentication-tokens",
     api_admin_user_token_create, ROUTE_AUTH},
    {0},
};
