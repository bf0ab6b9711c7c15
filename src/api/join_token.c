/*
 * join_token.c - the cluster's join token for site admins (Terrace's own
 * endpoints, served by primaries):
 *
 *   GET  /api/v2/admin/join-token   the current token (200)
 *   POST /api/v2/admin/join-token   a fresh token replaces it (201)
 *
 * Both answer {"data":{"id":"join-token","type":"join-tokens",
 * "attributes":{"token":"..."}}}.  Anyone else gets 404, as for the other
 * admin resources.  The token is a secret: it is never logged.
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#include "api/api.h"
#include "domain/join_token.h"

static bool need_admin(struct http_req *r)
{
    if (r->who.kind == PRINC_USER && r->who.is_admin)
        return true;
    http_error(r, 404, "not found", "resource not found");
    return false;
}

static void reply(struct http_req *r, int status, tr_err e, const char *token,
                  const struct tr_errbuf *eb)
{
    if (e != TR_OK) {
        api_store_fail(r, e, eb);
        return;
    }
    http_reply_json(r, status,
                    json_pack("{s:{s:s,s:s,s:{s:s}}}", "data", "id",
                              "join-token", "type", "join-tokens", "attributes",
                              "token", token));
}

static void show(struct http_req *r)
{
    if (!need_admin(r))
        return;
    char *token = NULL;
    struct tr_errbuf eb = {{0}};
    tr_err e = join_token_get(r->srv, r->arena, &token, &eb);
    reply(r, 200, e, token, &eb);
}

static void rotate(struct http_req *r)
{
    if (!need_admin(r))
        return;
    char *token = NULL;
    struct tr_errbuf eb = {{0}};
    tr_err e = join_token_rotate(r->srv, r->arena, &token, &eb);
    reply(r, 201, e, token, &eb);
}

const struct route api_join_token_routes[] = {
    {"GET", "/api/v2/admin/join-token", show, ROUTE_AUTH},
    {"POST", "/api/v2/admin/join-token", rotate, ROUTE_AUTH},
    {0},
};
