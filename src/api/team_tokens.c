/*
 * team_tokens.c - team API tokens, as TFE's:
 *
 *   GET/POST        /teams/:id/authentication-tokens   several per team,
 *                                                      description,
 *                                                      expired-at
 *   GET/POST/DELETE /teams/:id/authentication-token    the legacy single
 *                                                      token (POST
 *                                                      replaces it)
 *   GET/DELETE      /authentication-tokens/:id         (tokens.c)
 *
 * Tokens are rows of `tokens` of kind "team" (and "team-legacy" for the
 * legacy one) with the team id as subject; a request made with one acts
 * with the team's permissions (auth.c, domain/access.c).  Managing them
 * needs manage-teams, or membership of a team that allows its members to
 * manage tokens.  The plain token appears only in the create response.
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#include <string.h>

#include "api/teams_int.h"
#include "core/log.h"

#define LEGACY "team-legacy"

bool api_team_token_may(struct http_req *r, const char *team_id)
{
    struct st_team t;
    access_t f = 0;
    struct access_caller who = api_caller(r);
    if (store_team_get(r->srv->db, r->arena, team_id, &t, NULL) != TR_OK ||
        access_org(r->srv->db, r->arena, &who, t.org, &f, NULL) != TR_OK)
        return false;
    if (f & ACC_ORG_MANAGE_TEAMS)
        return true;
    if (!t.allow_member_tokens || r->who.kind != PRINC_USER)
        return false;
    struct st_user *users = NULL;
    int n = 0;
    if (store_team_members(r->srv->db, r->arena, t.id, &users, &n, NULL) !=
        TR_OK)
        return false;
    for (int i = 0; i < n; i++)
        if (strcmp(users[i].id, r->who.user_id) == 0)
            return true;
    return false;
}

/* Loads the route's team if the caller may manage its tokens: 404 when it
 * cannot see the team, 403 when it may not manage them. */
static bool token_team(struct http_req *r, struct st_team *t)
{
    if (!api_team_access(r, http_param(r, "id"), t, NULL, NULL))
        return false;
    if (api_team_token_may(r, t->id))
        return true;
    http_error(r, 403, "forbidden",
               arena_printf(r->arena,
                            "you may not manage the tokens of team %s",
                            t->name));
    return false;
}

static const char *creator(const struct http_req *r)
{
    return r->who.kind == PRINC_USER ? r->who.user_id : NULL;
}

static void tokens_list(struct http_req *r)
{
    struct st_team t;
    struct page p;
    if (!token_team(r, &t) || !jsonapi_page(r, &p))
        return;
    struct st_token *list = NULL;
    int n = 0;
    struct tr_errbuf eb = {{0}};
    tr_err e =
        store_token_list(r->srv->db, r->arena, "team", t.id, &list, &n, &eb);
    if (e != TR_OK) {
        api_store_fail(r, e, &eb);
        return;
    }
    json_t *items = json_array();
    int from = (p.number - 1) * p.size;
    for (int i = from; i < n && i < from + p.size; i++)
        json_array_append_new(items, api_token_json(&list[i], NULL));
    http_reply_json(r, 200, jsonapi_list_doc(items, &p, n));
}

static void token_create(struct http_req *r, bool legacy)
{
    struct st_team t;
    const char *desc = NULL, *exp = NULL;
    if (!token_team(r, &t) || !api_token_opts(r, &desc, &exp))
        return;
    struct st_token tok;
    char *secret = NULL;
    struct tr_errbuf eb = {{0}};
    tr_err e =
        legacy ? store_token_replace(r->srv->db, r->arena, LEGACY, t.id, desc,
                                     creator(r), exp, &tok, &secret, &eb)
               : store_token_create(r->srv->db, r->arena, "team", t.id, desc,
                                    creator(r), exp, &tok, &secret, &eb);
    if (e != TR_OK) {
        api_store_fail(r, e, &eb);
        return;
    }
    log_info("rid=%s token %s created for team %s", r->request_id, tok.id,
             t.id);
    api_reply_token(r, 201, &tok, secret);
}

static void tokens_create(struct http_req *r)
{
    token_create(r, false);
}

static void legacy_create(struct http_req *r)
{
    token_create(r, true);
}

static void legacy_show(struct http_req *r)
{
    struct st_team t;
    if (!token_team(r, &t))
        return;
    struct st_token *list = NULL;
    int n = 0;
    struct tr_errbuf eb = {{0}};
    tr_err e =
        store_token_list(r->srv->db, r->arena, LEGACY, t.id, &list, &n, &eb);
    if (e == TR_OK && n == 0)
        e = tr_fail(&eb, TR_ERR_NOT_FOUND, "team %s has no token", t.name);
    if (e != TR_OK) {
        api_store_fail(r, e, &eb);
        return;
    }
    api_reply_token(r, 200, &list[0], NULL);
}

static void legacy_delete(struct http_req *r)
{
    struct st_team t;
    if (!token_team(r, &t))
        return;
    struct st_token *list = NULL;
    int n = 0;
    struct tr_errbuf eb = {{0}};
    tr_err e =
        store_token_list(r->srv->db, r->arena, LEGACY, t.id, &list, &n, &eb);
    if (e == TR_OK && n == 0)
        e = tr_fail(&eb, TR_ERR_NOT_FOUND, "team %s has no token", t.name);
    if (e == TR_OK)
        e = store_token_delete_subject(r->srv->db, r->arena, LEGACY, t.id, &eb);
    if (e != TR_OK) {
        api_store_fail(r, e, &eb);
        return;
    }
    http_reply(r, 204, NULL, "", 0);
}

const struct route api_team_token_routes[] = {
    {"GET", "/api/v2/teams/:id/authentication-tokens", tokens_list, ROUTE_AUTH},
    {"POST", "/api/v2/teams/:id/authentication-tokens", tokens_create,
     ROUTE_AUTH},
    {"GET", "/api/v2/teams/:id/authentication-token", legacy_show, ROUTE_AUTH},
    {"POST", "/api/v2/teams/:id/authentication-token", legacy_create,
     ROUTE_AUTH},
    {"DELETE", "/api/v2/teams/:id/authentication-token", legacy_delete,
     ROUTE_AUTH},
    {0},
};
