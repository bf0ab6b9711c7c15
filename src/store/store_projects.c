/*
 * store_projects.c - projects: named groups of workspaces inside an
 * organization.
 *
 * The default project is made with the organization (store_orgs.c) and is
 * never deleted; a project that still holds workspaces is not deleted
 * either.  Both checks run inside the deleting transaction.
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#include <stdio.h>

#include "store/store_ws_int.h"

#define PRJ_COLS                                                               \
    "p.id, p.org, p.name, p.description, p.is_default, p.created_at,"          \
    " (SELECT count(*) FROM workspaces w WHERE w.project_id = p.id)"           \
    " AS workspace_count"

static void fill(const struct db_rows *r, int i, struct st_project *p)
{
    p->id = db_get(r, i, "id");
    p->org = db_get(r, i, "org");
    p->name = db_get(r, i, "name");
    p->description = db_get(r, i, "description");
    p->is_default = db_get_bool(r, i, "is_default");
    p->created_at = db_get(r, i, "created_at");
    p->workspace_count = db_get_i64(r, i, "workspace_count");
}

static tr_err taken(struct tr_errbuf *eb, const char *name)
{
    return tr_fail(eb, TR_ERR_INVALID, "name %s has already been taken", name);
}

tr_err store_project_create(struct db *db, struct arena *a, const char *org,
                            const char *name, const char *description,
                            const struct st_tb_list *tb, struct st_project *out,
                            struct tr_errbuf *eb)
{
    struct st_project p = {
        .id = util_new_id(a, "prj"),
        .org = arena_strdup(a, org),
        .name = arena_strdup(a, name),
        .description = arena_strdup(a, description ? description : ""),
        .created_at = util_now_iso(a),
    };
    struct db_conn *c = db_acquire(db);
    struct db_rows *r = NULL;
    tr_err e = db_begin(c, eb);
    if (e == TR_OK)
        e = db_q(c, a, &r, eb, "SELECT 1 FROM organizations WHERE name = $1",
                 org);
    if (e == TR_OK && r->nrows == 0)
        e = tr_fail(eb, TR_ERR_NOT_FOUND, "organization %s not found", org);
    if (e == TR_OK)
        e = db_x(c, a, NULL, eb,
                 "INSERT INTO projects (id, org, name, description,"
                 " is_default, created_at) VALUES ($1, $2, $3, $4, 0, $5)",
                 p.id, p.org, p.name, p.description, p.created_at);
    if (e == TR_ERR_CONFLICT)
        e = taken(eb, name);
    if (e == TR_OK && tb != NULL)
        e = store_tb_set_in(c, a, ST_TB_PROJECT, p.id, tb->items, tb->n, true,
                            eb);
    if (e == TR_OK)
        e = db_commit(c, eb);
    db_release(c);
    if (e == TR_OK && out != NULL)
        *out = p;
    return e;
}

static tr_err get_where(struct db *db, struct arena *a, const char *where,
                        const char *arg, struct st_project *out,
                        struct tr_errbuf *eb)
{
    struct db_conn *c = db_acquire(db);
    struct db_rows *r = NULL;
    tr_err e = db_q(c, a, &r, eb,
                    arena_printf(a,
                                 "SELECT " PRJ_COLS " FROM projects p"
                                 " WHERE %s",
                                 where),
                    arg);
    db_release(c);
    if (e == TR_OK && r->nrows == 0)
        e = tr_fail(eb, TR_ERR_NOT_FOUND, "project not found");
    if (e == TR_OK)
        fill(r, 0, out);
    return e;
}

tr_err store_project_get(struct db *db, struct arena *a, const char *id,
                         struct st_project *out, struct tr_errbuf *eb)
{
    return get_where(db, a, "p.id = $1", id, out, eb);
}

tr_err store_project_default(struct db *db, struct arena *a, const char *org,
                             struct st_project *out, struct tr_errbuf *eb)
{
    return get_where(db, a, "p.org = $1 AND p.is_default = 1", org, out, eb);
}

tr_err store_project_list(struct db *db, struct arena *a, const char *org,
                          const char *const *names, int nnames,
                          const char *query, const char *visible_user,
                          const char *visible_team, int offset, int limit,
                          struct st_project **out, int *n, int64_t *total,
                          struct tr_errbuf *eb)
{
    struct sqlb w;
    sqlb_init(&w, a, " FROM projects p WHERE p.org = ");
    sqlb_add(&w, sqlb_param(&w, org));
    if (nnames > 0) {
        sqlb_add(&w, " AND p.name");
        sqlb_in(&w, names, nnames);
    }
    if (query != NULL && *query != '\0')
        sqlb_addv(&w, " AND lower(p.name) LIKE lower(?) ESCAPE '\\'", 1,
                  store_like(a, "%", query, "%", false));
    if (visible_user != NULL || visible_team != NULL)
        sqlb_addv(&w,
                  " AND p.id IN (SELECT x.project_id FROM team_projects x"
                  " WHERE x.team_id IN (SELECT m.team_id FROM team_members m"
                  " WHERE m.user_id = ?) OR x.team_id = ?)",
                  2, visible_user, visible_team);
    struct db_conn *c = db_acquire(db);
    struct db_rows *r = NULL;
    tr_err e =
        sqlb_page(c, &w,
                  arena_printf(a, "SELECT " PRJ_COLS "%s ORDER BY p.name%s",
                               w.sql, store_bytes_order(c)),
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

tr_err store_project_update(struct db *db, struct arena *a, const char *id,
                            const char *name, const char *description,
                            const struct st_tb_list *tb, struct tr_errbuf *eb)
{
    struct db_conn *c = db_acquire(db);
    int64_t n = 0;
    tr_err e = db_begin(c, eb);
    if (e == TR_OK)
        e = db_x(c, a, &n, eb,
                 "UPDATE projects SET name = COALESCE($2, name),"
                 " description = COALESCE($3, description) WHERE id = $1",
                 id, name, description);
    if (e == TR_ERR_CONFLICT)
        e = taken(eb, name);
    if (e == TR_OK && n == 0)
        e = tr_fail(eb, TR_ERR_NOT_FOUND, "project not found");
    if (e == TR_OK && tb != NULL)
        e = store_tb_set_in(c, a, ST_TB_PROJECT, id, tb->items, tb->n, true,
                            eb);
    if (e == TR_OK)
        e = db_commit(c, eb);
    db_release(c); /* rolls back an open transaction */
    return e;
}

tr_err store_project_delete(struct db *db, struct arena *a, const char *id,
                            struct tr_errbuf *eb)
{
    struct db_conn *c = db_acquire(db);
    struct db_rows *r = NULL;
    tr_err e = db_begin(c, eb);
    if (e == TR_OK)
        e = db_q(c, a, &r, eb,
                 arena_printf(a,
                              "SELECT " PRJ_COLS " FROM projects p"
                              " WHERE p.id = $1%s",
                              db_for_update(c)),
                 id);
    if (e == TR_OK && r->nrows == 0)
        e = tr_fail(eb, TR_ERR_NOT_FOUND, "project not found");
    if (e == TR_OK && db_get_bool(r, 0, "is_default"))
        e = tr_fail(eb, TR_ERR_CONFLICT,
                    "the default project of an organization cannot be "
                    "deleted");
    if (e == TR_OK && db_get_i64(r, 0, "workspace_count") > 0)
        e = tr_fail(eb, TR_ERR_CONFLICT,
                    "project still contains workspaces; move or delete "
                    "them first");
    if (e == TR_OK)
        e = db_x(c, a, NULL, eb, "DELETE FROM projects WHERE id = $1", id);
    if (e == TR_OK)
        e = db_commit(c, eb);
    db_release(c);
    return e;
}
