/*
 * store_orgs.c - organizations and their members.
 *
 * An organization is addressed by its name (TFE's rule); renaming cascades
 * through the foreign keys.  Creating one also creates its default project
 * and the owner's membership in the same transaction.
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#include <stdio.h>

#include "store/store.h"

#define ORG_COLS "name, id, email, settings, created_at"

static void fill(const struct db_rows *r, int i, struct st_org *o)
{
    o->name = db_get(r, i, "name");
    o->id = db_get(r, i, "id");
    o->email = db_get(r, i, "email");
    o->settings = db_get(r, i, "settings");
    o->created_at = db_get(r, i, "created_at");
}

tr_err store_org_create(struct db *db, struct arena *a, const char *name,
                        const char *email, const char *settings,
                        const char *owner_user_id, struct st_org *out,
                        struct tr_errbuf *eb)
{
    struct st_org o = {
        .name = arena_strdup(a, name),
        .id = util_new_id(a, "org"),
        .email = arena_strdup(a, email),
        .settings = arena_strdup(a, settings ? settings : "{}"),
        .created_at = util_now_iso(a),
    };
    struct db_conn *c = db_acquire(db);
    tr_err e = db_begin(c, eb);
    if (e == TR_OK)
        e = db_x(c, a, NULL, eb,
                 "INSERT INTO organizations (" ORG_COLS ")"
                 " VALUES ($1,$2,$3,$4,$5)",
                 o.name, o.id, o.email, o.settings, o.created_at);
    if (e == TR_ERR_CONFLICT)
        e = tr_fail(eb, TR_ERR_INVALID, "name %s has already been taken",
                    name);
    if (e == TR_OK)
        e = db_x(c, a, NULL, eb,
                 "INSERT INTO projects (id, org, name, is_default, created_at)"
                 " VALUES ($1, $2, 'Default Project', 1, $3)",
                 util_new_id(a, "prj"), o.name, o.created_at);
    if (e == TR_OK && owner_user_id != NULL)
        e = db_x(c, a, NULL, eb,
                 "INSERT INTO org_members (org, user_id) VALUES ($1, $2)",
                 o.name, owner_user_id);
    if (e == TR_OK)
        e = db_commit(c, eb);
    db_release(c);
    if (e == TR_OK && out != NULL)
        *out = o;
    return e;
}

tr_err store_org_get(struct db *db, struct arena *a, const char *name,
                     struct st_org *out, struct tr_errbuf *eb)
{
    struct db_conn *c = db_acquire(db);
    struct db_rows *r = NULL;
    tr_err e = db_q(c, a, &r, eb,
                    "SELECT " ORG_COLS " FROM organizations WHERE name = $1",
                    name);
    db_release(c);
    if (e == TR_OK && r->nrows == 0)
        e = tr_fail(eb, TR_ERR_NOT_FOUND, "organization %s not found", name);
    if (e == TR_OK)
        fill(r, 0, out);
    return e;
}

tr_err store_org_list(struct db *db, struct arena *a,
                      const char *member_user_id, const char *name_query,
                      int offset, int limit, struct st_org **out, int *n,
                      int64_t *total, struct tr_errbuf *eb)
{
    char off[24], lim[24];
    snprintf(off, sizeof(off), "%d", offset);
    snprintf(lim, sizeof(lim), "%d", limit);
    const char *q = name_query && *name_query
                        ? arena_printf(a, "%%%s%%", name_query)
                        : NULL;
    const char *where =
        " WHERE ($1 IS NULL OR name IN (SELECT org FROM org_members"
        " WHERE user_id = $1)) AND ($2 IS NULL OR lower(name) LIKE"
        " lower($2) OR lower(email) LIKE lower($2))";
    struct db_conn *c = db_acquire(db);
    struct db_rows *r = NULL, *cnt = NULL;
    tr_err e = db_q(c, a, &r, eb,
                    arena_printf(a, "SELECT " ORG_COLS " FROM organizations%s"
                                    " ORDER BY name LIMIT $3 OFFSET $4",
                                 where),
                    member_user_id, q, lim, off);
    if (e == TR_OK)
        e = db_q(c, a, &cnt, eb,
                 arena_printf(a, "SELECT count(*) AS n FROM organizations%s",
                              where),
                 member_user_id, q);
    db_release(c);
    if (e != TR_OK)
        return e;
    *out = arena_alloc(a, sizeof(struct st_org) * (size_t)(r->nrows + 1));
    for (int i = 0; i < r->nrows; i++)
        fill(r, i, &(*out)[i]);
    *n = r->nrows;
    *total = db_get_i64(cnt, 0, "n");
    return TR_OK;
}

tr_err store_org_update(struct db *db, struct arena *a, const char *name,
                        const char *new_name, const char *email,
                        const char *settings, struct tr_errbuf *eb)
{
    struct db_conn *c = db_acquire(db);
    int64_t n = 0;
    tr_err e = db_x(c, a, &n, eb,
                    "UPDATE organizations SET name = COALESCE($2, name),"
                    " email = COALESCE($3, email),"
                    " settings = COALESCE($4, settings) WHERE name = $1",
                    name, new_name, email, settings);
    db_release(c);
    if (e == TR_ERR_CONFLICT)
        return tr_fail(eb, TR_ERR_INVALID, "name %s has already been taken",
                       new_name);
    if (e == TR_OK && n == 0)
        return tr_fail(eb, TR_ERR_NOT_FOUND, "organization %s not found",
                       name);
    return e;
}

tr_err store_org_delete(struct db *db, struct arena *a, const char *name,
                        struct tr_errbuf *eb)
{
    struct db_conn *c = db_acquire(db);
    int64_t n = 0;
    tr_err e = db_begin(c, eb);
    if (e == TR_OK)
        e = db_x(c, a, NULL, eb,
                 "DELETE FROM tokens WHERE kind = 'org' AND subject = $1",
                 name);
    if (e == TR_OK)
        e = db_x(c, a, NULL, eb, "DELETE FROM workspaces WHERE org = $1",
                 name);
    if (e == TR_OK)
        e = db_x(c, a, &n, eb, "DELETE FROM organizations WHERE name = $1",
                 name);
    if (e == TR_OK && n == 0)
        e = tr_fail(eb, TR_ERR_NOT_FOUND, "organization %s not found", name);
    if (e == TR_OK)
        e = db_commit(c, eb);
    db_release(c);
    return e;
}

tr_err store_org_is_member(struct db *db, struct arena *a, const char *org,
                           const char *user_id, bool *member,
                           struct tr_errbuf *eb)
{
    struct db_conn *c = db_acquire(db);
    struct db_rows *r = NULL;
    tr_err e = db_q(c, a, &r, eb,
                    "SELECT 1 FROM org_members WHERE org = $1 AND user_id = $2",
                    org, user_id);
    db_release(c);
    if (e == TR_OK)
        *member = r->nrows > 0;
    return e;
}

tr_err store_org_add_member(struct db *db, struct arena *a, const char *org,
                            const char *user_id, struct tr_errbuf *eb)
{
    struct db_conn *c = db_acquire(db);
    tr_err e = db_x(c, a, NULL, eb,
                    "INSERT INTO org_members (org, user_id) VALUES ($1, $2)"
                    " ON CONFLICT DO NOTHING",
                    org, user_id);
    db_release(c);
    return e;
}
