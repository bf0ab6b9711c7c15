/*
 * store_tags.c - organization tags and their links to workspaces.
 *
 * A tag is created the first time a workspace of its organization is
 * tagged with its name (INSERT ... ON CONFLICT DO NOTHING, so concurrent
 * taggers agree on one row) and lives until deleted through the
 * organization, even with no workspace left.  Operations on several tags
 * or workspaces check every id first and change nothing if one is
 * unknown.
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#include <stdio.h>

#include "store/store_ws_int.h"

#define TAG_COLS                                                               \
    "t.id, t.org, t.name, t.created_at,"                                       \
    " (SELECT count(*) FROM workspace_tags x WHERE x.tag_id = t.id)"           \
    " AS instance_count"

static void fill(const struct db_rows *r, int i, struct st_tag *t)
{
    t->id = db_get(r, i, "id");
    t->org = db_get(r, i, "org");
    t->name = db_get(r, i, "name");
    t->created_at = db_get(r, i, "created_at");
    t->instance_count = db_get_i64(r, i, "instance_count");
}

/* Runs a page query q and its count query w (both built on the same WHERE
 * clause) and fills the tags. */
static tr_err page(struct db *db, struct arena *a, struct sqlb *w,
                   const char *order, int offset, int limit,
                   struct st_tag **out, int *n, int64_t *total,
                   struct tr_errbuf *eb)
{
    struct db_conn *c = db_acquire(db);
    struct db_rows *r = NULL;
    tr_err e = sqlb_page(c, w,
                         arena_printf(a, "SELECT " TAG_COLS "%s ORDER BY %s%s",
                                      w->sql, order, store_bytes_order(c)),
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

tr_err store_tag_get(struct db *db, struct arena *a, const char *id,
                     struct st_tag *out, struct tr_errbuf *eb)
{
    struct db_conn *c = db_acquire(db);
    struct db_rows *r = NULL;
    tr_err e = db_q(c, a, &r, eb,
                    "SELECT " TAG_COLS " FROM tags t WHERE t.id = $1", id);
    db_release(c);
    if (e == TR_OK && r->nrows == 0)
        e = tr_fail(eb, TR_ERR_NOT_FOUND, "tag not found");
    if (e == TR_OK)
        fill(r, 0, out);
    return e;
}

tr_err store_tag_list(struct db *db, struct arena *a, const char *org,
                      const char *query, const char *exclude_ws, int offset,
                      int limit, struct st_tag **out, int *n, int64_t *total,
                      struct tr_errbuf *eb)
{
    struct sqlb w;
    sqlb_init(&w, a, "");
    sqlb_addv(&w, " FROM tags t WHERE t.org = ?", 1, org);
    if (query != NULL && *query != '\0')
        sqlb_addv(&w, " AND lower(t.name) LIKE lower(?) ESCAPE '\\'", 1,
                  store_like(a, "%", query, "%", false));
    if (exclude_ws != NULL)
        sqlb_addv(&w,
                  " AND NOT EXISTS (SELECT 1 FROM workspace_tags x"
                  " WHERE x.tag_id = t.id AND x.workspace_id = ?)",
                  1, exclude_ws);
    return page(db, a, &w, "t.name", offset, limit, out, n, total, eb);
}

tr_err store_ws_tag_list(struct db *db, struct arena *a, const char *ws_id,
                         const char *query, int offset, int limit,
                         struct st_tag **out, int *n, int64_t *total,
                         struct tr_errbuf *eb)
{
    struct sqlb w;
    sqlb_init(&w, a, "");
    sqlb_addv(&w,
              " FROM tags t JOIN workspace_tags wt ON wt.tag_id = t.id"
              " WHERE wt.workspace_id = ?",
              1, ws_id);
    if (query != NULL && *query != '\0')
        sqlb_addv(&w, " AND lower(t.name) LIKE lower(?) ESCAPE '\\'", 1,
                  store_like(a, "%", query, "%", false));
    return page(db, a, &w, "t.name", offset, limit, out, n, total, eb);
}

/* Counts how many of the n ids are rows of table (tags or workspaces) in
 * org; TR_ERR_NOT_FOUND unless all are. */
static tr_err all_in_org(struct db_conn *c, struct arena *a, const char *table,
                         const char *what, const char *org,
                         const char *const *ids, int n, struct tr_errbuf *eb)
{
    struct sqlb q;
    sqlb_init(&q, a, "");
    sqlb_addv(&q,
              arena_printf(a,
                           "SELECT count(DISTINCT id) AS n FROM %s"
                           " WHERE org = ? AND id",
                           table),
              1, org);
    sqlb_in(&q, ids, n);
    struct db_rows *r = NULL;
    tr_err e = sqlb_query(c, &q, &r, NULL, eb);
    if (e != TR_OK)
        return e;
    /* duplicates in ids count once */
    int distinct = 0;
    for (int i = 0; i < n; i++) {
        bool dup = false;
        for (int j = 0; j < i && !dup; j++)
            dup = util_streq(ids[i], ids[j]);
        distinct += dup ? 0 : 1;
    }
    if (db_get_i64(r, 0, "n") != distinct)
        return tr_fail(eb, TR_ERR_NOT_FOUND, "%s not found", what);
    return TR_OK;
}

tr_err store_tag_delete(struct db *db, struct arena *a, const char *org,
                        const char *const *ids, int n, struct tr_errbuf *eb)
{
    struct db_conn *c = db_acquire(db);
    tr_err e = db_begin(c, eb);
    if (e == TR_OK)
        e = all_in_org(c, a, "tags", "tag", org, ids, n, eb);
    for (int i = 0; i < n && e == TR_OK; i++)
        e = db_x(c, a, NULL, eb, "DELETE FROM tags WHERE id = $1 AND org = $2",
                 ids[i], org);
    if (e == TR_OK)
        e = db_commit(c, eb);
    db_release(c);
    return e;
}

static tr_err link_tag(struct db_conn *c, struct arena *a, const char *ws_id,
                       const char *tag_id, struct tr_errbuf *eb)
{
    return db_x(c, a, NULL, eb,
                "INSERT INTO workspace_tags (workspace_id, tag_id)"
                " VALUES ($1, $2) ON CONFLICT DO NOTHING",
                ws_id, tag_id);
}

tr_err store_tag_add_workspaces(struct db *db, struct arena *a, const char *org,
                                const char *tag_id, const char *const *ws_ids,
                                int n, struct tr_errbuf *eb)
{
    struct db_conn *c = db_acquire(db);
    tr_err e = db_begin(c, eb);
    if (e == TR_OK)
        e = all_in_org(c, a, "tags", "tag", org, &tag_id, 1, eb);
    if (e == TR_OK)
        e = all_in_org(c, a, "workspaces", "workspace", org, ws_ids, n, eb);
    for (int i = 0; i < n && e == TR_OK; i++)
        e = link_tag(c, a, ws_ids[i], tag_id, eb);
    if (e == TR_OK)
        e = db_commit(c, eb);
    db_release(c);
    return e;
}

/* The id of tag `name` of org, creating it if needed. */
static tr_err ensure_tag(struct db_conn *c, struct arena *a, const char *org,
                         const char *name, const char **id,
                         struct tr_errbuf *eb)
{
    struct db_rows *r = NULL;
    tr_err e = db_x(c, a, NULL, eb,
                    "INSERT INTO tags (id, org, name, created_at)"
                    " VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
                    util_new_id(a, "tag"), org, name, util_now_iso(a));
    if (e == TR_OK)
        e = db_q(c, a, &r, eb,
                 "SELECT id FROM tags WHERE org = $1 AND name = $2", org, name);
    if (e == TR_OK && r->nrows == 0)
        e = tr_fail(eb, TR_ERR_INTERNAL, "tag %s vanished", name);
    if (e == TR_OK)
        *id = db_get(r, 0, "id");
    return e;
}

tr_err store_ws_tags_set(struct db_conn *c, struct arena *a, const char *org,
                         const char *ws_id, const char *const *names, int n,
                         bool replace, struct tr_errbuf *eb)
{
    tr_err e = TR_OK;
    if (replace)
        e = db_x(c, a, NULL, eb,
                 "DELETE FROM workspace_tags WHERE workspace_id = $1", ws_id);
    for (int i = 0; i < n && e == TR_OK; i++) {
        const char *tag_id = NULL;
        e = ensure_tag(c, a, org, names[i], &tag_id, eb);
        if (e == TR_OK)
            e = link_tag(c, a, ws_id, tag_id, eb);
    }
    return e;
}

/* The workspace's organization, inside the caller's transaction. */
static tr_err ws_org(struct db_conn *c, struct arena *a, const char *ws_id,
                     const char **org, struct tr_errbuf *eb)
{
    struct db_rows *r = NULL;
    tr_err e =
        db_q(c, a, &r, eb, "SELECT org FROM workspaces WHERE id = $1", ws_id);
    if (e == TR_OK && r->nrows == 0)
        e = tr_fail(eb, TR_ERR_NOT_FOUND, "workspace not found");
    if (e == TR_OK)
        *org = db_get(r, 0, "org");
    return e;
}

tr_err store_ws_tag_add(struct db *db, struct arena *a, const char *ws_id,
                        const struct st_tag_ref *refs, int n,
                        struct tr_errbuf *eb)
{
    const char *org = NULL;
    struct db_conn *c = db_acquire(db);
    tr_err e = db_begin(c, eb);
    if (e == TR_OK)
        e = ws_org(c, a, ws_id, &org, eb);
    for (int i = 0; i < n && e == TR_OK; i++) {
        const char *tag_id = refs[i].id;
        if (tag_id != NULL)
            e = all_in_org(c, a, "tags", "tag", org, &tag_id, 1, eb);
        else
            e = ensure_tag(c, a, org, refs[i].name, &tag_id, eb);
        if (e == TR_OK)
            e = link_tag(c, a, ws_id, tag_id, eb);
    }
    if (e == TR_OK)
        e = db_commit(c, eb);
    db_release(c);
    return e;
}

tr_err store_ws_tag_remove(struct db *db, struct arena *a, const char *ws_id,
                           const struct st_tag_ref *refs, int n,
                           struct tr_errbuf *eb)
{
    const char *org = NULL;
    struct db_conn *c = db_acquire(db);
    tr_err e = db_begin(c, eb);
    if (e == TR_OK)
        e = ws_org(c, a, ws_id, &org, eb);
    for (int i = 0; i < n && e == TR_OK; i++) {
        if (refs[i].id != NULL)
            e = db_x(c, a, NULL, eb,
                     "DELETE FROM workspace_tags WHERE workspace_id = $1"
                     " AND tag_id = $2",
                     ws_id, refs[i].id);
        else
            e = db_x(c, a, NULL, eb,
                     "DELETE FROM workspace_tags WHERE workspace_id = $1"
                     " AND tag_id IN (SELECT id FROM tags WHERE org = $2"
                     " AND name = $3)",
                     ws_id, org, refs[i].name);
    }
    if (e == TR_OK)
        e = db_commit(c, eb);
    db_release(c);
    return e;
}
