/*
 * store_tag_bindings.c - key/value tag bindings of workspaces and projects.
 *
 * One table holds both kinds: a row names either a workspace or a project
 * (a CHECK keeps it to exactly one) and its key is unique for that owner,
 * so setting a key twice updates the row in place (INSERT ... ON CONFLICT
 * DO UPDATE on both databases).  The per-owner limit is checked after the
 * change, inside the same transaction, so a request that would pass it
 * changes nothing.  A workspace's effective bindings are computed on read
 * from its own and its project's, in one statement.
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#include "store/store_ws_int.h"

static const char *owner_col(enum st_tb_owner kind)
{
    return kind == ST_TB_WORKSPACE ? "workspace_id" : "project_id";
}

static const char *owner_name(enum st_tb_owner kind)
{
    return kind == ST_TB_WORKSPACE ? "workspace" : "project";
}

static void fill(const struct db_rows *r, struct arena *a,
                 struct st_tag_binding **out, int *n)
{
    *out = arena_alloc(a, sizeof(**out) * (size_t)(r->nrows + 1));
    for (int i = 0; i < r->nrows; i++) {
        (*out)[i].id = db_get(r, i, "id");
        (*out)[i].key = db_get(r, i, "key");
        (*out)[i].value = db_get(r, i, "value");
        (*out)[i].inherited_from = db_get(r, i, "inherited_from");
    }
    *n = r->nrows;
}

static tr_err list_on(struct db_conn *c, struct arena *a, enum st_tb_owner kind,
                      const char *owner_id, struct st_tag_binding **out, int *n,
                      struct tr_errbuf *eb)
{
    struct db_rows *r = NULL;
    tr_err e = db_q(c, a, &r, eb,
                    arena_printf(a,
                                 "SELECT id, key, value, NULL AS"
                                 " inherited_from FROM tag_bindings"
                                 " WHERE %s = $1 ORDER BY key%s",
                                 owner_col(kind), store_bytes_order(c)),
                    owner_id);
    if (e == TR_OK)
        fill(r, a, out, n);
    return e;
}

tr_err store_tb_list(struct db *db, struct arena *a, enum st_tb_owner kind,
                     const char *owner_id, struct st_tag_binding **out, int *n,
                     struct tr_errbuf *eb)
{
    struct db_conn *c = db_acquire(db);
    tr_err e = list_on(c, a, kind, owner_id, out, n, eb);
    db_release(c);
    return e;
}

tr_err store_tb_effective(struct db *db, struct arena *a, const char *ws_id,
                          struct st_tag_binding **out, int *n,
                          struct tr_errbuf *eb)
{
    struct db_conn *c = db_acquire(db);
    struct db_rows *r = NULL;
    tr_err e =
        db_q(c, a, &r, eb,
             arena_printf(a,
                          "SELECT * FROM ("
                          "SELECT id, key, value, NULL AS inherited_from"
                          " FROM tag_bindings WHERE workspace_id = $1"
                          " UNION ALL"
                          " SELECT b.id, b.key, b.value, b.project_id"
                          " FROM tag_bindings b"
                          " JOIN workspaces w ON w.project_id = b.project_id"
                          " WHERE w.id = $1 AND NOT EXISTS (SELECT 1 FROM"
                          " tag_bindings o WHERE o.workspace_id = $1"
                          " AND o.key = b.key)) t ORDER BY key%s",
                          store_bytes_order(c)),
             ws_id);
    db_release(c);
    if (e == TR_OK)
        fill(r, a, out, n);
    return e;
}

tr_err store_tb_set_in(struct db_conn *c, struct arena *a,
                       enum st_tb_owner kind, const char *owner_id,
                       const struct st_tag_binding *in, int n, bool replace,
                       struct tr_errbuf *eb)
{
    const char *col = owner_col(kind);
    struct db_rows *r = NULL;
    tr_err e =
        db_q(c, a, &r, eb,
             kind == ST_TB_WORKSPACE ? "SELECT 1 FROM workspaces WHERE id = $1"
                                     : "SELECT 1 FROM projects WHERE id = $1",
             owner_id);
    if (e == TR_OK && r->nrows == 0)
        e = tr_fail(eb, TR_ERR_NOT_FOUND, "%s %s not found", owner_name(kind),
                    owner_id);
    if (e == TR_OK && replace)
        e = db_x(c, a, NULL, eb,
                 arena_printf(a, "DELETE FROM tag_bindings WHERE %s = $1", col),
                 owner_id);
    const char *now = util_now_iso(a);
    for (int i = 0; i < n && e == TR_OK; i++)
        e = db_x(c, a, NULL, eb,
                 arena_printf(a,
                              "INSERT INTO tag_bindings (id, %s, key, value,"
                              " created_at) VALUES ($1, $2, $3, $4, $5)"
                              " ON CONFLICT (%s, key) DO UPDATE"
                              " SET value = excluded.value",
                              col, col),
                 util_new_id(a, "tb"), owner_id, in[i].key,
                 in[i].value ? in[i].value : "", now);
    if (e == TR_OK)
        e = db_q(c, a, &r, eb,
                 arena_printf(a,
                              "SELECT count(*) AS n FROM tag_bindings"
                              " WHERE %s = $1",
                              col),
                 owner_id);
    if (e == TR_OK && db_get_i64(r, 0, "n") > ST_TB_MAX)
        e = tr_fail(eb, TR_ERR_INVALID,
                    "a %s takes at most %d tag bindings; this change would "
                    "leave it %lld",
                    owner_name(kind), ST_TB_MAX,
                    (long long)db_get_i64(r, 0, "n"));
    return e;
}

tr_err store_tb_set(struct db *db, struct arena *a, enum st_tb_owner kind,
                    const char *owner_id, const struct st_tag_binding *in,
                    int n, bool replace, struct st_tag_binding **out, int *nout,
                    struct tr_errbuf *eb)
{
    struct db_conn *c = db_acquire(db);
    tr_err e = db_begin(c, eb);
    if (e == TR_OK)
        e = store_tb_set_in(c, a, kind, owner_id, in, n, replace, eb);
    if (e == TR_OK && out != NULL)
        e = list_on(c, a, kind, owner_id, out, nout, eb);
    if (e == TR_OK)
        e = db_commit(c, eb);
    db_release(c); /* rolls back an open transaction */
    return e;
}
