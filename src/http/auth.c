/*
 * auth.c - Bearer-token authentication.
 *
 * The token's SHA-256 is looked up in the store; a user token resolves to
 * the user (and whether they are a site admin), an organization token to
 * its organization, a team token to its team (and the team's organization),
 * a run token (minted for a worker while a job runs) to
 * its run.  Failures answer 401 with the same text whatever the
 * cause, so a caller cannot probe which tokens exist.
 *
 * A run token sits in the working directory of code Terrace runs for a
 * user, so it reaches only what that run's tofu needs, as in TFE: routes
 * marked ROUTE_RUN (the organization's entitlements, workspaces, state
 * versions and outputs; every other route answers 404), its own
 * workspace in full, and other workspaces of its organization only to
 * read, and only those sharing their state with it (global-remote-state,
 * project-remote-state, remote-state-consumers; api_workspace_access()).
 *
 * On a GET of one workspace or of its parts (ROUTE_WS_READ), the token's
 * statement also reads the workspace, whatever the token may see: it is
 * kept for the handler, which checks access as for any workspace it
 * loads, and nothing of it is used when the token is refused.
 *
 * A cluster node authenticates to the internal API with its own node
 * credential (store_node_by_credential()), never with a token above; the
 * two never overlap, since they are looked up in different tables.
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#include <string.h>
#include <strings.h>

#include "core/fault.h"
#include "http/http.h"
#include "store/store.h"

/* The token whose secret is given; on a ROUTE_WS_READ route (a GET),
 * workspace :id comes in the same statement into r->ws_read, for the
 * handler to check and use. */
static tr_err lookup(struct http_req *r, const char *secret,
                     struct st_token *tok, struct tr_errbuf *eb)
{
    const char *ws_id = http_param(r, "id");
    if (!(r->route->flags & ROUTE_WS_READ) || ws_id == NULL ||
        strcmp(r->method, "GET") != 0)
        return store_token_lookup(r->srv->db, r->arena, secret, tok, eb);
    struct st_workspace *ws = arena_alloc(r->arena, sizeof(*ws));
    bool found = false;
    tr_err e = store_token_lookup_ws(r->srv->db, r->arena, secret, ws_id, tok,
                                     ws, &found, eb);
    r->ws_read = e == TR_OK && found ? ws : NULL;
    return e;
}

bool http_authenticate(struct http_req *r)
{
    const char *h = http_header(r, "Authorization");
    if (h == NULL || strncasecmp(h, "Bearer ", 7) != 0 || h[7] == '\0') {
        http_error(r, 401, "unauthorized",
                   "an API token is required: send Authorization: Bearer "
                   "<token>");
        return false;
    }
    struct st_token tok;
    struct tr_errbuf eb = {{0}};
    tr_err e = fault_hit("auth.lookup")
                   ? tr_fail(&eb, TR_ERR_DB, "injected fault")
                   : lookup(r, h + 7, &tok, &eb);
    if (e == TR_ERR_NOT_FOUND) {
        http_error(r, 401, "unauthorized",
                   "the API token is invalid or has expired");
        return false;
    }
    if (e != TR_OK) {
        http_fail(r, e, &eb);
        return false;
    }
    r->who.token_id = tok.id;
    if (strcmp(tok.kind, "user") == 0) {
        if (tok.user_name == NULL) { /* the user was deleted */
            http_error(r, 401, "unauthorized",
                       "the API token is invalid or has expired");
            return false;
        }
        r->who.kind = PRINC_USER;
        r->who.user_id = tok.subject;
        r->who.username = tok.user_name;
        r->who.is_admin = tok.user_admin;
        return true;
    }
    if (strcmp(tok.kind, "org") == 0) {
        r->who.kind = PRINC_ORG;
        r->who.org = tok.subject;
        return true;
    }
    if (strncmp(tok.kind, "team", 4) == 0 && tok.team_org != NULL) {
        r->who.kind = PRINC_TEAM; /* acts with the team's permissions */
        r->who.team_id = tok.subject;
        r->who.org = tok.team_org;
        return true;
    }
    if (strcmp(tok.kind, "run") == 0) { /* a worker's run-scoped token */
        r->who.kind = PRINC_RUN;
        r->who.run_id = tok.subject;
        return true;
    }
    http_error(r, 401, "unauthorized", "unsupported token kind");
    return false;
}

bool http_authenticate_node(struct http_req *r)
{
    const char *h = http_header(r, "Authorization");
    if (h == NULL || strncasecmp(h, "Bearer ", 7) != 0 || h[7] == '\0') {
        http_error(r, 401, "unauthorized",
                   "a node credential is required: send Authorization: "
                   "Bearer <node credential>");
        return false;
    }
    /* the node's row in an arena of its own: the request keeps its id
     * and name only (an idle secondary's claim keeps its request for
     * as long as it waits for a job) */
    struct arena *a = arena_new();
    struct st_node n;
    struct tr_errbuf eb = {{0}};
    tr_err e = store_node_by_credential(r->srv->db, a, h + 7, &n, &eb);
    if (e == TR_OK) {
        r->who.kind = PRINC_NODE;
        r->who.node_id = arena_strdup(r->arena, n.id);
        r->who.node_name = arena_strdup(r->arena, n.name);
        r->who.node_was_gone = strcmp(n.state, "gone") == 0;
    }
    arena_destroy(a);
    if (e == TR_ERR_NOT_FOUND)
        http_error(r, 401, "unauthorized", tr_errbuf_msg(&eb, e));
    else if (e != TR_OK)
        http_fail(r, e, &eb);
    return e == TR_OK;
}
