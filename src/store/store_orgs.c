/*
 * store_orgs.c - organizations and their members.
 *
 * An organization is addressed by its name (TFE's rule); renaming cascades
 * through the foreign keys.  Creating one also creates its default project
 * its owners team (store_teams.c) and the owner's membership of both in
 * the same transaction.
 *
 * Names are unique regardless of case, as in TFE: creating or renaming to
 * a name another organization has in any case is refused, by name_free()
 * and by a unique index on lower(name) (migration 11; absent while an
 * older database still holds names differing only in case).  A name in a
 * path is matched exactly: TFE also finds an organization spelled in
 * another case, but the name is the foreign key of every organization-
 * scoped row and route here, so that needs the name made canonical at
 * each entry point first (not done yet).
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#include <stdio.h>
#include <string.h>

#include "store/store.h"
#include "store/store_ws_int.h"

#define ORG_COLS "name, id, email, settings, created_at"
/* ORG_COLS plus the default project's id, for reads */
#define ORG_READ                                                               \
    "SELECT name, id, email, settings, created_at,"                            \
    " (SELECT p.id FROM projects p WHERE p.org = organizations.name"           \
    " AND p.is_default = 1 ORDER BY p.created_at LIMIT 1)"                     \
    " AS default_project FROM organizations"

static void fill(const struct db_rows *r, int i, struct st_org *o)
{
    o->name = db_get(r, i, "name");
    o->id = db_get(r, i, "id");
    o->email = db_get(r, i, "email");
    o->settings = db_get(r, i, "settings");
    o->created_at = db_get(r, i, "created_at");
    o->default_project = db_get(r, i, "default_project");
}

/* TR_ERR_INVALID, in TFE's words, when an organization other than self
 * (NULL: none) has name in any case: names are unique regardless of case
 * (migration 11 adds an index for it where the data allows). */
static tr_err name_free(struct db_conn *c, struct arena *a, const char *name,
                        const char *self, struct tr_errbuf *eb)
{
    struct db_rows *r = NULL;
    tr_err e = db_q(c, a, &r, eb,
                    "SELECT name FROM organizations WHERE lower(name) ="
                    " lower($1) AND (CAST($2 AS TEXT) IS NULL OR name <> $2)",
                    name, self);
    if (e == TR_OK && r->nrows > 0)
        e = tr_fail(eb, TR_ERR_INVALID, "name %s has already been taken", name);
    return e;
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
        e = name_free(c, a, name, NULL, eb);
    if (e == TR_OK)
        e = db_x(c, a, NULL, eb,
                 "INSERT INTO organizations (" ORG_COLS ")"
                 " VALUES ($1,$2,$3,$4,$5)",
                 o.name, o.id, o.email, o.settings, o.created_at);
    if (e == TR_ERR_CONFLICT)
        e = tr_fail(eb, TR_ERR_INVALID, "name %s has already been taken", name);
    o.default_project = util_new_id(a, "prj");
    if (e == TR_OK)
        e = db_x(c, a, NULL, eb,
                 "INSERT INTO projects (id, org, name, is_default, created_at)"
                 " VALUES ($1, $2, 'Default Project', 1, $3)",
                 o.default_project, o.name, o.created_at);
    const char *owners = util_new_id(a, "team");
    if (e == TR_OK)
        e = db_x(c, a, NULL, eb,
                 "INSERT INTO teams (id, org, name, is_owners, visibility,"
                 " created_at) VALUES ($1, $2, 'owners', 1, 'organization',"
                 " $3)",
                 owners, o.name, o.created_at);
    if (e == TR_OK && owner_user_id != NULL)
        e = db_x(c, a, NULL, eb,
                 "INSERT INTO org_memberships"
                 " (id, org, user_id, email, status, created_at)"
                 " SELECT $1, $2, id, email, 'active', $3 FROM users"
                 " WHERE id = $4",
                 util_new_id(a, "ou"), o.name, o.created_at, owner_user_id);
    if (e == TR_OK && owner_user_id != NULL)
        e = db_x(c, a, NULL, eb,
                 "INSERT INTO team_members (team_id, user_id) VALUES ($1, $2)",
                 owners, owner_user_id);
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
    tr_err e = db_q(c, a, &r, eb, ORG_READ " WHERE name = $1", name);
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
    const char *q = name_query && *name_query
                        ? store_like(a, "%", name_query, "%", false)
                        : NULL;
    const char *where =
        " WHERE (CAST($1 AS TEXT) IS NULL OR name IN (SELECT org FROM"
        " org_members WHERE user_id = $1)) AND (CAST($2 AS TEXT) IS NULL"
        " OR lower(name) LIKE lower($2) ESCAPE '\\'"
        " OR lower(email) LIKE lower($2) ESCAPE '\\')";
    const char *params[] = {member_user_id, q};
    struct db_conn *c = db_acquire(db);
    struct db_rows *r = NULL;
    tr_err e = db_page(
        c, a,
        arena_printf(a, ORG_READ "%s ORDER BY created_at DESC, name", where),
        arena_printf(a, "SELECT count(*) AS n FROM organizations%s", where), 2,
        params, offset, limit, &r, total, eb);
    db_release(c);
    if (e != TR_OK)
        return e;
    *out = arena_alloc(a, sizeof(struct st_org) * (size_t)(r->nrows + 1));
    for (int i = 0; i < r->nrows; i++)
        fill(r, i, &(*out)[i]);
    *n = r->nrows;
    return TR_OK;
}

tr_err store_org_update(struct db *db, struct arena *a, const char *name,
                        const char *new_name, const char *email,
                        const char *settings, struct tr_errbuf *eb)
{
    struct db_conn *c = db_acquire(db);
    int64_t n = 0;
    tr_err e = db_begin(c, eb);
    if (e == TR_OK && new_name != NULL)
        e = name_free(c, a, new_name, name, eb);
    if (e == TR_OK) {
        e = db_x(c, a, &n, eb,
                 "UPDATE organizations SET name = COALESCE($2, name),"
                 " email = COALESCE($3, email),"
                 " settings = COALESCE($4, settings) WHERE name = $1",
                 name, new_name, email, settings);
        if (e == TR_ERR_CONFLICT)
            e = tr_fail(eb, TR_ERR_INVALID, "name %s has already been taken",
                        new_name);
    }
    if (e == TR_OK && n == 0)
        e = tr_fail(eb, TR_ERR_NOT_FOUND, "organization %s not found", name);
    if (e == TR_OK && new_name != NULL && strcmp(new_name, name) != 0)
        e = db_x(c, a, NULL, eb,
                 "UPDATE tokens SET subject = $2"
                 " WHERE kind = 'org' AND subject = $1",
                 name, new_name);
    if (e == TR_OK)
        e = db_commit(c, eb);
    db_release(c); /* rolls back if still open */
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
        e = db_x(c, a, NULL, eb,
                 "DELETE FROM tokens WHERE kind IN ('team', 'team-legacy')"
                 " AND subject IN"
                 " (SELECT id FROM teams WHERE org = $1)",
                 name);
    if (e == TR_OK)
        e = db_x(c, a, NULL, eb, "DELETE FROM workspaces WHERE org = $1", name);
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

tr_err store_org_by_id(struct db *db, struct arena *a, const char *id,
                       struct st_org *out, struct tr_errbuf *eb)
{
    struct db_conn *c = db_acquire(db);
    struct db_rows *r = NULL;
    tr_err e = db_q(c, a, &r, eb, ORG_READ " WHERE id = $1", id);
    db_release(c);
    if (e == TR_OK && r->nrows == 0)
        e = tr_fail(eb, TR_ERR_NOT_FOUND, "organization not found");
    if (e == TR_OK)
        fill(r, 0, out);
    return e;
}
