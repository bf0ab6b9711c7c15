/*
 * store_consumers.c - remote state consumers: the workspaces whose runs may
 * read a workspace's state.
 *
 * One row per (workspace, consumer).  A change checks every id first (a
 * workspace of the same organization) inside the transaction that makes
 * it, so it changes nothing if one is unknown; adding a consumer twice or
 * removing one that is not there is not an error.
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#include "store/store_ws_int.h"

tr_err store_consumers_change(struct db *db, struct arena *a, const char *ws_id,
                              enum st_consumer_op op, const char *const *ids,
                              int n, struct tr_errbuf *eb)
{
    struct db_conn *c = db_acquire(db);
    const char *org = NULL;
    tr_err e = db_begin(c, eb);
    if (e == TR_OK)
        e = store_ws_org_locked(c, a, ws_id, &org, eb);
    for (int i = 0; e == TR_OK && i < n; i++) {
        const char *other = NULL;
        e = store_ws_org_locked(c, a, ids[i], &other, eb);
        if (e == TR_OK && strcmp(other, org) != 0)
            e = tr_fail(eb, TR_ERR_NOT_FOUND, "workspace %s not found", ids[i]);
    }
    if (e == TR_OK && op == ST_CONSUMERS_SET)
        e = db_x(c, a, NULL, eb,
                 "DELETE FROM remote_state_consumers WHERE workspace_id = $1",
                 ws_id);
    for (int i = 0; e == TR_OK && i < n; i++)
        e = db_x(c, a, NULL, eb,
                 op == ST_CONSUMERS_REMOVE
                     ? "DELETE FROM remote_state_consumers"
                       " WHERE workspace_id = $1 AND consumer_id = $2"
                     : "INSERT INTO remote_state_consumers (workspace_id,"
                       " consumer_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                 ws_id, ids[i]);
    if (e == TR_OK)
        e = db_commit(c, eb);
    else
        db_rollback(c);
    db_release(c);
    return e;
}

tr_err store_consumer_allowed(struct db *db, struct arena *a, const char *ws_id,
                              const char *consumer_id, bool *ok,
                              struct tr_errbuf *eb)
{
    struct db_conn *c = db_acquire(db);
    struct db_rows *r = NULL;
    tr_err e = db_q(c, a, &r, eb,
                    "SELECT 1 AS x FROM remote_state_consumers"
                    " WHERE workspace_id = $1 AND consumer_id = $2",
                    ws_id, consumer_id);
    db_release(c);
    *ok = e == TR_OK && r->nrows > 0;
    return e;
}
