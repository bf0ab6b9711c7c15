/*
 * store_run_triggers.c - run triggers: a workspace follows others of its
 * organization, and an apply in one of them queues a run in it.
 *
 * One row per (workspace, source).  Create checks the source, the
 * duplicate and the limit inside the transaction that inserts, so two
 * concurrent creates cannot both pass the limit on SQLite (one writer)
 * and, on PostgreSQL, the workspace row is locked first.
 *
 * Firing is durable: the step that records an apply marks the run
 * (runs.triggers_pending) when its workspace has followers; the mark is
 * cleared after every follower has its run, and a follower's run records
 * the source run (runs.trigger_run_id, unique per workspace), so firing
 * again after a crash creates nothing twice.
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#include "store/store_ws_int.h"

#define RT_COLS                                                                \
    "t.id, t.workspace_id, w.name AS workspace_name, t.source_id,"             \
    " s.name AS source_name, t.created_at"
#define RT_FROM                                                                \
    " FROM run_triggers t JOIN workspaces w ON w.id = t.workspace_id"          \
    " JOIN workspaces s ON s.id = t.source_id"

static void fill(const struct db_rows *r, int i, struct st_run_trigger *t)
{
    t->id = db_get(r, i, "id");
    t->workspace_id = db_get(r, i, "workspace_id");
    t->workspace_name = db_get(r, i, "workspace_name");
    t->source_id = db_get(r, i, "source_id");
    t->source_name = db_get(r, i, "source_name");
    t->created_at = db_get(r, i, "created_at");
}

static tr_err check_new(struct db_conn *c, struct arena *a, const char *ws_id,
                        const char *source_id, struct tr_errbuf *eb)
{
    const char *org = NULL, *sorg = NULL;
    tr_err e = store_ws_org_locked(c, a, ws_id, &org, eb);
    if (e == TR_OK)
        e = store_ws_org_locked(c, a, source_id, &sorg, eb);
    if (e == TR_OK && strcmp(org, sorg) != 0)
        e = tr_fail(eb, TR_ERR_NOT_FOUND, "workspace %s not found", source_id);
    if (e == TR_OK && strcmp(ws_id, source_id) == 0)
        e = tr_fail(eb, TR_ERR_INVALID,
                    "a workspace cannot trigger runs in itself");
    struct db_rows *r = NULL;
    if (e == TR_OK)
        e = db_q(c, a, &r, eb,
                 "SELECT count(*) AS n, COALESCE(sum(CASE WHEN source_id = $2"
                 " THEN 1 ELSE 0 END), 0) AS dup"
                 " FROM run_triggers WHERE workspace_id = $1",
                 ws_id, source_id);
    if (e == TR_OK && db_get_i64(r, 0, "dup") > 0)
        e = tr_fail(eb, TR_ERR_INVALID,
                    "workspace %s already triggers runs in this workspace",
                    source_id);
    if (e == TR_OK && db_get_i64(r, 0, "n") >= ST_RT_MAX_SOURCES)
        e = tr_fail(eb, TR_ERR_INVALID,
                    "a workspace takes at most %d run trigger sources; "
                    "remove one first",
                    ST_RT_MAX_SOURCES);
    return e;
}

static tr_err get(struct db_conn *c, struct arena *a, const char *id,
                  struct st_run_trigger *out, struct tr_errbuf *eb)
{
    struct db_rows *r = NULL;
    tr_err e =
        db_q(c, a, &r, eb, "SELECT " RT_COLS RT_FROM " WHERE t.id = $1", id);
    if (e == TR_OK && r->nrows == 0)
        e = tr_fail(eb, TR_ERR_NOT_FOUND, "run trigger %s not found", id);
    if (e == TR_OK)
        fill(r, 0, out);
    return e;
}

tr_err store_rt_create(struct db *db, struct arena *a, const char *ws_id,
                       const char *source_id, struct st_run_trigger *out,
                       struct tr_errbuf *eb)
{
    struct db_conn *c = db_acquire(db);
    const char *id = util_new_id(a, "rt");
    tr_err e = db_begin(c, eb);
    if (e == TR_OK)
        e = check_new(c, a, ws_id, source_id, eb);
    if (e == TR_OK)
        e = db_x(c, a, NULL, eb,
                 "INSERT INTO run_triggers (id, workspace_id, source_id,"
                 " created_at) VALUES ($1, $2, $3, $4)",
                 id, ws_id, source_id, util_now_iso(a));
    if (e == TR_OK)
        e = get(c, a, id, out, eb);
    if (e == TR_OK)
        e = db_commit(c, eb);
    else
        db_rollback(c);
    db_release(c);
    return e;
}

tr_err store_rt_get(struct db *db, struct arena *a, const char *id,
                    struct st_run_trigger *out, struct tr_errbuf *eb)
{
    struct db_conn *c = db_acquire(db);
    tr_err e = get(c, a, id, out, eb);
    db_release(c);
    return e;
}

tr_err store_rt_delete(struct db *db, struct arena *a, const char *id,
                       struct tr_errbuf *eb)
{
    struct db_conn *c = db_acquire(db);
    int64_t n = 0;
    tr_err e = db_x(c, a, &n, eb, "DELETE FROM run_triggers WHERE id = $1", id);
    db_release(c);
    if (e == TR_OK && n == 0)
        e = tr_fail(eb, TR_ERR_NOT_FOUND, "run trigger %s not found", id);
    return e;
}

tr_err store_rt_list(struct db *db, struct arena *a, const char *ws_id,
                     bool inbound, int offset, int limit,
                     struct st_run_trigger **out, int *n, int64_t *total,
                     struct tr_errbuf *eb)
{
    struct sqlb w;
    sqlb_init(&w, a, RT_FROM);
    sqlb_add(&w,
             inbound ? " WHERE t.workspace_id = " : " WHERE t.source_id = ");
    sqlb_add(&w, sqlb_param(&w, ws_id));
    struct db_conn *c = db_acquire(db);
    struct db_rows *r = NULL;
    tr_err e = sqlb_page(
        c, &w,
        arena_printf(a, "SELECT " RT_COLS "%s ORDER BY t.created_at, t.id",
                     w.sql),
        offset, limit, &r, total, eb);
    db_release(c);
    if (e != TR_OK)
        return e;
    *out = arena_alloc(a, sizeof(**out) * (size_t)(r->nrows + 1));
    for (int i = 0; i < r->nrows; i++)
        fill(r, i, &(*out)[i]);
    *n = r->nrows;
    return TR_OK;
}

tr_err store_rt_pending(struct db *db, struct arena *a, int limit,
                        const char ***run_ids, int *n, struct tr_errbuf *eb)
{
    char lim[16];
    snprintf(lim, sizeof(lim), "%d", limit);
    struct db_conn *c = db_acquire(db);
    struct db_rows *r = NULL;
    tr_err e = db_q(c, a, &r, eb,
                    "SELECT id FROM runs WHERE triggers_pending = 1"
                    " ORDER BY id LIMIT $1",
                    lim);
    db_release(c);
    if (e != TR_OK)
        return e;
    *run_ids = arena_alloc(a, sizeof(char *) * (size_t)(r->nrows + 1));
    for (int i = 0; i < r->nrows; i++)
        (*run_ids)[i] = db_get(r, i, "id");
    *n = r->nrows;
    return TR_OK;
}

tr_err store_rt_fired(struct db *db, struct arena *a, const char *run_id,
                      struct tr_errbuf *eb)
{
    struct db_conn *c = db_acquire(db);
    tr_err e =
        db_x(c, a, NULL, eb,
             "UPDATE runs SET triggers_pending = 0 WHERE id = $1", run_id);
    db_release(c);
    return e;
}
