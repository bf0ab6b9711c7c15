/*
 * workspace_consumers.c - a workspace's remote state consumers: the other
 * workspaces of its organization whose runs may read its state (with
 * global-remote-state off; see auth.c for what a run's token reaches).
 *
 *   GET    /workspaces/:id/relationships/remote-state-consumers  list
 *   POST   ...  add      PATCH ...  replace      DELETE ...  remove
 *
 * The changes take a JSON:API list of workspace identifiers (1 to
 * API_WS_MAX_ITEMS) and answer 204; an id that is not a workspace of the
 * organization is 404 and changes nothing.  The list answers workspace
 * documents, paginated, oldest first.
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#include "api/workspaces_int.h"

void api_ws_consumers_list(struct http_req *r)
{
    struct st_workspace w;
    struct page p;
    if (!api_ws_from_route(r, &w) || !jsonapi_page(r, &p))
        return;
    struct st_ws_filter f = {.org = w.org, .consumers_of = w.id};
    api_ws_list_reply(r, &f, &p);
}

static void change(struct http_req *r, enum st_consumer_op op)
{
    struct st_workspace w;
    const char **ids = NULL;
    int n = 0;
    if (!api_ws_from_route(r, &w) ||
        !api_ws_allow(r, &w, ACC_WS_ADMIN, "change state sharing") ||
        !api_ws_ids(r, "workspaces", &ids, &n))
        return;
    struct tr_errbuf eb = {{0}};
    tr_err e =
        store_consumers_change(r->srv->db, r->arena, w.id, op, ids, n, &eb);
    if (e != TR_OK) {
        api_store_fail(r, e, &eb);
        return;
    }
    http_reply(r, 204, NULL, "", 0);
}

void api_ws_consumers_add(struct http_req *r)
{
    change(r, ST_CONSUMERS_ADD);
}

void api_ws_consumers_set(struct http_req *r)
{
    change(r, ST_CONSUMERS_SET);
}

void api_ws_consumers_remove(struct http_req *r)
{
    change(r, ST_CONSUMERS_REMOVE);
}
