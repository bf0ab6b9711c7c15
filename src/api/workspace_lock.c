/*
 * workspace_lock.c - POST /workspaces/:id/actions/{lock,unlock,force-unlock}.
 *
 * The lock holder is the caller: a user token locks as ("user", user id),
 * an organization token as ("org", token id).  Only the same holder may
 * unlock; anyone who may change the workspace may force-unlock.  The
 * transitions themselves are single conditional UPDATEs in the store
 * (store_ws_lock/store_ws_unlock), so of many concurrent lock requests
 * exactly one succeeds.
 *
 * go-tfe reads the 409s by path and text: lock -> "already locked";
 * unlock -> "is locked by Run" means a run holds it, anything else "not
 * locked"; force-unlock -> not locked.
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#include <string.h>

#include "api/workspaces_int.h"

#define MAX_REASON 1024

/* The optional lock reason: JSON:API {"data":{"attributes":{"reason":..}}}
 * (newer go-tfe), plain {"reason":..} (older) or no body at all. */
static bool lock_reason(struct http_req *r, const char **reason)
{
    if (!api_body_opt_string(
            r, "reason", MAX_REASON,
            "reason must be a string of at most 1024 characters", reason))
        return false;
    if (*reason == NULL)
        *reason = "";
    return true;
}

void api_ws_lock(struct http_req *r)
{
    struct st_workspace w;
    const char *reason, *kind, *who;
    if (!api_ws_from_route(r, &w) ||
        !api_ws_allow(r, &w, ACC_WS_LOCK, "lock the workspace") ||
        !lock_reason(r, &reason))
        return;
    api_lock_identity(r, &kind, &who);
    struct tr_errbuf eb = {{0}};
    tr_err e =
        store_ws_lock(r->srv->db, r->arena, w.id, kind, who, reason, &w, &eb);
    if (e != TR_OK) {
        api_store_fail(r, e, &eb);
        return;
    }
    api_ws_reply(r, 200, &w);
}

static void unlock(struct http_req *r, bool force)
{
    struct st_workspace w;
    const char *kind = NULL, *who = NULL;
    if (!api_ws_from_route(r, &w) ||
        !api_ws_allow(r, &w, force ? ACC_WS_ADMIN : ACC_WS_LOCK,
                      "unlock the workspace"))
        return;
    if (!force)
        api_lock_identity(r, &kind, &who);
    struct tr_errbuf eb = {{0}};
    tr_err e = store_ws_unlock(r->srv->db, r->arena, w.id, kind, who, &w, &eb);
    /* a pending upload belonged to the lock holder: once the lock is
     * gone nobody may finish it, so it is discarded (never made current) */
    if (e == TR_OK)
        e = store_sv_discard_pending(r->srv->db, r->arena, w.id, &eb);
    if (e != TR_OK) {
        api_store_fail(r, e, &eb);
        return;
    }
    api_ws_reply(r, 200, &w);
}

void api_ws_unlock(struct http_req *r)
{
    unlock(r, false);
}

void api_ws_force_unlock(struct http_req *r)
{
    unlock(r, true);
}
