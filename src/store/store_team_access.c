/*
 * store_team_access.c - a team's access to workspaces (team_workspaces,
 * "tws-...") and to projects (team_projects, "tprj-...").
 *
 * Both tables have the same shape: one row per (team, target) with an
 * access level and, for the custom level, the permissions as a JSON object
 * the API layer has checked.  The rows go with their team, workspace or
 * project (foreign keys cascade).
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#include <string.h>

#include "store/store.h"

struct ta_table {
    const char *table;
    const char *target; /* the target's column */
    const char *prefix; /* of ids */
    const char *what;   /* in messages */
};

static const struct ta_table tables[] = {
    [ST_TA_WS] = {"team_workspaces", "workspace_id", "tws", "workspace"},
    [ST_TA_PRJ] = {"team_projects", "project_id", "tprj", "project"},
};

static const char *read_sql(struct arena *a, const struct ta_table *t)
{
    return arena_printf(a,
                        "SELECT x.id, x.team_id, x.%s AS target_id, x.access,"
                        " x.perms, x.created_at, t.org FROM %s x"
                        " JOIN teams t ON t.id = x.team_id",
                        t->target, t->table);
}

static void fill(const struct db_rows *r, int i, struct st_team_access *o)
{
    o->id = db_get(r, i, "id");
    o->team_id = db_get(r, i, "team_id");
    o->target_id = db_get(r, i, "target_id");
    o->access = db_get(r, i, "access");
    o->perms = db_get(r, i, "perms");
    o->created_at = db_get(r, i, "created_at");
    o->org = db_get(r, i, "org");
}

tr_err store_ta_create(struct db *db, struct arena *a, enum st_ta_kind kind,
                       struct st_team_access *o, struct tr_errbuf *eb)
{
    const struct ta_table *t = &tables[kind];
    o->id = util_new_id(a, t->prefix);
    o->created_at = util_now_iso(a);
    if (o->perms == NULL)
        o->perms = "{}";
    struct db_conn *c = db_acquire(db);
    tr_err e = db_x(c, a, NULL, eb,
                    arena_printf(a,
                                 "INSERT INTO %s (id, team_id, %s, access,"
                                 " perms, created_at)"
                                 " VALUES ($1,$2,$3,$4,$5,$6)",
                                 t->table, t->target),
                    o->id, o->team_id, o->target_id, o->access, o->perms,
                    o->created_at);
    db_release(c);
    if (e == TR_ERR_CONFLICT)
        e = tr_fail(eb, TR_ERR_INVALID,
                    "the team already has access to this %s", t->what);
    return e;
}

tr_err store_ta_get(struct db *db, struct arena *a, enum st_ta_kind kind,
                    const char *id, struct st_team_access *out,
                    struct tr_errbuf *eb)
{
    const struct ta_table *t = &tables[kind];
    struct db_conn *c = db_acquire(db);
    struct db_rows *r = NULL;
    tr_err e = db_q(c, a, &r, eb,
                    arena_printf(a, "%s WHERE x.id = $1", read_sql(a, t)), id);
    db_release(c);
    if (e == TR_OK && r->nrows == 0)
        e = tr_fail(eb, TR_ERR_NOT_FOUND, "team %s access not found", t->what);
    if (e == TR_OK)
        fill(r, 0, out);
    return e;
}

tr_err store_ta_list(struct db *db, struct arena *a, enum st_ta_kind kind,
                     const char *target_id, const char *team_id, int offset,
                     int limit, struct st_team_access **out, int *n,
                     int64_t *total, struct tr_errbuf *eb)
{
    const struct ta_table *t = &tables[kind];
    const char *where = arena_printf(a,
                                     " WHERE (CAST($1 AS TEXT) IS NULL OR"
                                     " x.%s = $1) AND (CAST($2 AS TEXT) IS"
                                     " NULL OR x.team_id = $2)",
                                     t->target);
    const char *params[] = {target_id, team_id};
    struct db_conn *c = db_acquire(db);
    struct db_rows *r = NULL;
    tr_err e = db_page(
        c, a, arena_printf(a, "%s%s ORDER BY t.name", read_sql(a, t), where),
        arena_printf(a,
                     "SELECT count(*) AS n FROM %s x"
                     " JOIN teams t ON t.id = x.team_id%s",
                     t->table, where),
        2, params, offset, limit, &r, total, eb);
    db_release(c);
    if (e != TR_OK)
        return e;
    *out =
        arena_alloc(a, sizeof(struct st_team_access) * (size_t)(r->nrows + 1));
    for (int i = 0; i < r->nrows; i++)
        fill(r, i, &(*out)[i]);
    *n = r->nrows;
    return TR_OK;
}

tr_err store_ta_update(struct db *db, struct arena *a, enum st_ta_kind kind,
                       const char *id, const char *access, const char *perms,
                       struct tr_errbuf *eb)
{
    const struct ta_table *t = &tables[kind];
    struct db_conn *c = db_acquire(db);
    int64_t n = 0;
    tr_err e = db_x(c, a, &n, eb,
                    arena_printf(a,
                                 "UPDATE %s SET access = COALESCE($2, access),"
                                 " perms = COALESCE($3, perms) WHERE id = $1",
                                 t->table),
                    id, access, perms);
    db_release(c);
    if (e == TR_OK && n == 0)
        e = tr_fail(eb, TR_ERR_NOT_FOUND, "team %s access not found", t->what);
    return e;
}

tr_err store_ta_delete(struct db *db, struct arena *a, enum st_ta_kind kind,
                       const char *id, struct tr_errbuf *eb)
{
    const struct ta_table *t = &tables[kind];
    struct db_conn *c = db_acquire(db);
    int64_t n = 0;
    tr_err e =
        db_x(c, a, &n, eb,
             arena_printf(a, "DELETE FROM %s WHERE id = $1", t->table), id);
    db_release(c);
    if (e == TR_OK && n == 0)
        e = tr_fail(eb, TR_ERR_NOT_FOUND, "team %s access not found", t->what);
    return e;
}
