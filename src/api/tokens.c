/*
 * tokens.c - organization and user API tokens (TFE's
 * "authentication-tokens").
 *
 *   GET/POST/DELETE /organizations/:name/authentication-token
 *   GET/POST        /users/:id/authentication-tokens
 *   GET/DELETE      /authentication-tokens/:id  (user and team tokens)
 *   POST            /admin/users/:id/authentication-tokens  (Terrace)
 *
 * An organization has at most one token: POST replaces it.  A user manages
 * only their own tokens; a site admin manages anyone's.  The plain token
 * appears only in the response that created it; afterwards "token" is
 * null.  expired-at is RFC 3339 in the request, must lie in the future,
 * and is kept to the second.
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#include <string.h>

#include "api/accounts.h"
#include "core/log.h"
#include "core/rfc3339.h"

#define MAX_DESCRIPTION 1024

/* The created-by relationship: the creating user, else the subject. */
static json_t *created_by(const struct st_token *t)
{
    const char *type = "users", *id = t->created_by;
    if (id == NULL) {
        id = t->subject;
        if (strcmp(t->kind, "org") == 0)
            type = "organizations";
        else if (strncmp(t->kind, "team", 4) == 0)
            type = "teams";
    }
    return json_pack("{s:{s:s,s:s}}", "data", "type", type, "id", id);
}

json_t *api_token_json(const struct st_token *t, const char *secret)
{
    json_t *attrs =
        json_pack("{s:s,s:o,s:s,s:o,s:o}", "created-at", t->created_at,
                  "last-used-at", api_time(t->last_used_at), "description",
                  t->description ? t->description : "", "expired-at",
                  api_time(t->expired_at), "token",
                  secret ? json_string(secret) : json_null());
    return json_pack("{s:s,s:s,s:o,s:{s:o}}", "id", t->id, "type",
                     "authentication-tokens", "attributes", attrs,
                     "relationships", "created-by", created_by(t));
}

void api_reply_token(struct http_req *r, int status, const struct st_token *t,
                     const char *secret)
{
    http_reply_json(r, status,
                    json_pack("{s:o}", "data", api_token_json(t, secret)));
}

/* Token-create options from the body: description and expired-at.  The
 * body may be empty or "{}"; go-tfe sends data.type "" for these requests
 * and pytfe "authentication-token", so both are accepted besides
 * "authentication-tokens".  Returns false after answering an error. */
bool api_token_opts(struct http_req *r, const char **description,
                    const char **expired_at)
{
    *description = NULL;
    *expired_at = NULL;
    if (r->body.len == 0)
        return true;
    json_t *doc = json_loadb(r->body.data, r->body.len, 0, NULL);
    bool empty = json_is_object(doc) && json_object_size(doc) == 0;
    json_decref(doc);
    if (empty) /* "{}": no options either */
        return true;
    json_t *data = jsonapi_body(r, NULL);
    if (data == NULL)
        return false;
    json_t *type = json_object_get(data, "type");
    const char *ts = json_string_value(type);
    if (type != NULL && !json_is_null(type) &&
        !(ts != NULL &&
          (ts[0] == '\0' || strcmp(ts, "authentication-tokens") == 0 ||
           strcmp(ts, "authentication-token") == 0))) {
        http_error(r, 409, "conflict",
                   "data.type must be \"authentication-tokens\"");
        return false;
    }
    const char *exp = NULL;
    if (!jsonapi_attr_str(r, data, "description", description) ||
        !jsonapi_attr_str(r, data, "expired-at", &exp))
        return false;
    if (*description != NULL && strlen(*description) > MAX_DESCRIPTION) {
        http_error(r, 422, NULL,
                   "description is too long (at most 1024 "
                   "characters)");
        return false;
    }
    if (exp != NULL) {
        int64_t t = 0;
        if (rfc3339_parse(exp, &t, NULL) != TR_OK) {
            http_error(r, 422, NULL,
                       "expired-at must be an RFC 3339 time such as "
                       "2030-01-02T15:04:05Z");
            return false;
        }
        if (t <= util_now_unix()) {
            http_error(r, 422, NULL, "expired-at must be in the future");
            return false;
        }
        *expired_at = util_iso_from_unix(r->arena, t);
    }
    return true;
}

/* The caller's user id, or NULL for an organization token. */
static const char *creator(const struct http_req *r)
{
    return r->who.kind == PRINC_USER ? r->who.user_id : NULL;
}

/* ---- organization token ---------------------------------------------- */

/* Loads the organization named in the path if the caller may manage its
 * token; otherwise answers 404. */
static bool org_token_access(struct http_req *r, struct st_org *o)
{
    const char *name = http_param(r, "name");
    if (!api_org_access(r, name, o))
        return false;
    if (!api_org_admin(r, o->name)) {
        http_error(r, 404, "not found",
                   arena_printf(r->arena, "organization %s not found", name));
        return false;
    }
    return true;
}

/* The organization's current token; answers 404 if it has none. */
static bool org_token_find(struct http_req *r, const char *org,
                           struct st_token *out)
{
    struct tr_errbuf eb = {{0}};
    struct st_token *list = NULL;
    int n = 0;
    tr_err e =
        store_token_list(r->srv->db, r->arena, "org", org, &list, &n, &eb);
    if (e != TR_OK) {
        api_store_fail(r, e, &eb);
        return false;
    }
    if (n == 0) {
        http_error(r, 404, "not found",
                   arena_printf(r->arena, "organization %s has no token", org));
        return false;
    }
    *out = list[n - 1];
    return true;
}

void api_org_token_get(struct http_req *r)
{
    struct st_org o;
    struct st_token t;
    if (!org_token_access(r, &o) || !org_token_find(r, o.name, &t))
        return;
    api_reply_token(r, 200, &t, NULL);
}

void api_org_token_create(struct http_req *r)
{
    struct st_org o;
    const char *desc, *exp;
    if (!org_token_access(r, &o) || !api_token_opts(r, &desc, &exp))
        return;
    struct tr_errbuf eb = {{0}};
    struct st_token t;
    char *secret = NULL;
    tr_err e = store_token_replace(r->srv->db, r->arena, "org", o.name, desc,
                                   creator(r), exp, &t, &secret, &eb);
    if (e != TR_OK) {
        api_store_fail(r, e, &eb);
        return;
    }
    log_info("rid=%s organization token %s created for %s", r->request_id, t.id,
             o.name);
    api_reply_token(r, 201, &t, secret);
}

void api_org_token_delete(struct http_req *r)
{
    struct st_org o;
    struct st_token t;
    if (!org_token_access(r, &o) || !org_token_find(r, o.name, &t))
        return;
    struct tr_errbuf eb = {{0}};
    tr_err e =
        store_token_delete_subject(r->srv->db, r->arena, "org", o.name, &eb);
    if (e != TR_OK) {
        api_store_fail(r, e, &eb);
        return;
    }
    http_reply(r, 204, NULL, "", 0);
}

/* ---- user tokens ------------------------------------------------------ */

/* The user named by :id if the caller may manage their tokens (the user
 * themself or a site admin); otherwise answers 404. */
static bool user_token_access(struct http_req *r, struct st_user *u)
{
    const char *id = http_param(r, "id");
    if (!api_need_user(r, false))
        return false;
    if (!r->who.is_admin && strcmp(id, r->who.user_id) != 0) {
        http_error(r, 404, "not found", "user not found");
        return false;
    }
    struct tr_errbuf eb = {{0}};
    tr_err e = store_user_get(r->srv->db, r->arena, id, u, &eb);
    if (e != TR_OK) {
        api_store_fail(r, e, &eb);
        return false;
    }
    return true;
}

void api_user_tokens_list(struct http_req *r)
{
    struct st_user u;
    struct page p;
    if (!user_token_access(r, &u) || !jsonapi_page(r, &p))
        return;
    struct tr_errbuf eb = {{0}};
    struct st_token *list = NULL;
    int n = 0;
    tr_err e =
        store_token_list(r->srv->db, r->arena, "user", u.id, &list, &n, &eb);
    if (e != TR_OK) {
        api_store_fail(r, e, &eb);
        return;
    }
    json_t *items = json_array();
    int64_t first = (int64_t)(p.number - 1) * p.size;
    for (int64_t i = first; i < n && i < first + p.size; i++)
        json_array_append_new(items, api_token_json(&list[i], NULL));
    http_reply_json(r, 200, jsonapi_list_doc(items, &p, n));
}

static void create_for(struct http_req *r, const struct st_user *u)
{
    const char *desc, *exp;
    if (!api_token_opts(r, &desc, &exp))
        return;
    struct tr_errbuf eb = {{0}};
    struct st_token t;
    char *secret = NULL;
    tr_err e = store_token_create(r->srv->db, r->arena, "user", u->id, desc,
                                  creator(r), exp, &t, &secret, &eb);
    if (e != TR_OK) {
        api_store_fail(r, e, &eb);
        return;
    }
    log_info("rid=%s user token %s created for %s by %s", r->request_id, t.id,
             u->username, r->who.username);
    api_reply_token(r, 201, &t, secret);
}

void api_user_token_create(struct http_req *r)
{
    struct st_user u;
    if (user_token_access(r, &u))
        create_for(r, &u);
}

void api_admin_user_token_create(struct http_req *r)
{
    if (!api_need_user(r, true))
        return;
    struct st_user u;
    struct tr_errbuf eb = {{0}};
    tr_err e =
        store_user_get(r->srv->db, r->arena, http_param(r, "id"), &u, &eb);
    if (e != TR_OK) {
        api_store_fail(r, e, &eb);
        return;
    }
    create_for(r, &u);
}

/* The user token :id if the caller owns it or is a site admin, or the team
 * token :id if the caller may manage its team's tokens; otherwise answers
 * 404 (organization tokens are not reachable here). */
static bool token_access(struct http_req *r, struct st_token *t)
{
    struct tr_errbuf eb = {{0}};
    tr_err e =
        store_token_get(r->srv->db, r->arena, http_param(r, "id"), t, &eb);
    if (e == TR_OK && strncmp(t->kind, "team", 4) == 0) {
        if (api_team_token_may(r, t->subject))
            return true;
        e = tr_fail(&eb, TR_ERR_NOT_FOUND, "token not found");
    }
    if (e == TR_OK && !api_need_user(r, false))
        return false;
    if (e == TR_OK &&
        (strcmp(t->kind, "user") != 0 ||
         (!r->who.is_admin && strcmp(t->subject, r->who.user_id) != 0)))
        e = tr_fail(&eb, TR_ERR_NOT_FOUND, "token not found");
    if (e != TR_OK) {
        api_store_fail(r, e, &eb);
        return false;
    }
    return true;
}

void api_token_get(struct http_req *r)
{
    if (api_agent_token_id(http_param(r, "id"))) {
        api_agent_token_get(r);
        return;
    }
    struct st_token t;
    if (token_access(r, &t))
        api_reply_token(r, 200, &t, NULL);
}

void api_token_delete(struct http_req *r)
{
    if (api_agent_token_id(http_param(r, "id"))) {
        api_agent_token_delete(r);
        return;
    }
    struct st_token t;
    if (!token_access(r, &t))
        return;
    struct tr_errbuf eb = {{0}};
    tr_err e = store_token_delete(r->srv->db, r->arena, t.id, &eb);
    if (e != TR_OK) {
        api_store_fail(r, e, &eb);
        return;
    }
    log_info("rid=%s token %s deleted by %s", r->request_id, t.id,
             r->who.username);
    http_reply(r, 204, NULL, "", 0);
}
