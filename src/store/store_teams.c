/*
 * store_teams.c - teams of an organization and their members.
 *
 * Every organization has one owners team (teams.is_owners), created with
 * it by store_org_create() (and for older organizations by migration 19).
 * It cannot be deleted, and its last member cannot leave it: both are
 * checked inside the transaction that would break the rule.  A team's
 * tokens are rows of `tokens` with kind 'team' and the team id as subject;
 * deleting the team deletes them in the same transaction.  Invitations
 * may be added to a team before they are accepted (membership_teams, kept
 * by store_memberships.c); they count as members once accepted.
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#include <string.h>

#include "store/store.h"
#include "store/store_ws_int.h"

#define TEAM_READ                                                              \
    "SELECT t.id, t.org, t.name, t.is_owners, t.visibility, t.sso_team_id,"    \
    " t.allow_member_tokens, t.org_access, t.created_at,"                      \
    " (SELECT count(*) FROM team_members m WHERE m.team_id = t.id)"            \
    " AS user_count FROM teams t"

static void fill(const struct db_rows *r, int i, struct st_team *t)
{
    t->id = db_get(r, i, "id");
    t->org = db_get(r, i, "org");
    t->name = db_get(r, i, "name");
    t->is_owners = db_get_bool(r, i, "is_owners");
    t->visibility = db_get(r, i, "visibility");
    t->sso_team_id = db_get(r, i, "sso_team_id");
    t->allow_member_tokens = db_get_bool(r, i, "allow_member_tokens");
    t->org_access = db_get(r, i, "org_access");
    t->created_at = db_get(r, i, "created_at");
    t->user_count = db_get_i64(r, i, "user_count");
}

tr_err store_team_create(struct db *db, struct arena *a, struct st_team *t,
                         struct tr_errbuf *eb)
{
    t->id = util_new_id(a, "team");
    t->created_at = util_now_iso(a);
    if (t->visibility == NULL)
        t->visibility = "secret";
    if (t->org_access == NULL)
        t->org_access = "{}";
    struct db_conn *c = db_acquire(db);
    tr_err e =
        db_x(c, a, NULL, eb,
             "INSERT INTO teams (id, org, name, is_owners, visibility,"
             " sso_team_id, allow_member_tokens, org_access,"
             " created_at) VALUES ($1,$2,$3,0,$4,$5,$6,$7,$8)",
             t->id, t->org, t->name, t->visibility, t->sso_team_id,
             t->allow_member_tokens ? "1" : "0", t->org_access, t->created_at);
    db_release(c);
    if (e == TR_ERR_CONFLICT)
        e = tr_fail(eb, TR_ERR_INVALID, "name %s has already been taken",
                    t->name);
    return e;
}

static tr_err get_where(struct db *db, struct arena *a, const char *where,
                        const char *arg, struct st_team *out,
                        struct tr_errbuf *eb)
{
    struct db_conn *c = db_acquire(db);
    struct db_rows *r = NULL;
    tr_err e =
        db_q(c, a, &r, eb, arena_printf(a, TEAM_READ " WHERE %s", where), arg);
    db_release(c);
    if (e == TR_OK && r->nrows == 0)
        e = tr_fail(eb, TR_ERR_NOT_FOUND, "team not found");
    if (e == TR_OK)
        fill(r, 0, out);
    return e;
}

tr_err store_team_get(struct db *db, struct arena *a, const char *id,
                      struct st_team *out, struct tr_errbuf *eb)
{
    return get_where(db, a, "t.id = $1", id, out, eb);
}

tr_err store_team_get_many(struct db *db, struct arena *a,
                           const char *const *ids, int n, struct st_team **out,
                           int *nout, struct tr_errbuf *eb)
{
    enum { CHUNK = 200 }; /* ids a query binds, below SQLB_MAX_PARAMS */
    *out = arena_alloc(a, sizeof(struct st_team) * (size_t)(n + 1));
    *nout = 0;
    tr_err e = TR_OK;
    struct db_conn *c = db_acquire(db);
    for (int from = 0; e == TR_OK && from < n; from += CHUNK) {
        struct sqlb q;
        sqlb_init(&q, a, TEAM_READ " WHERE t.id");
        sqlb_in(&q, ids + from, n - from < CHUNK ? n - from : CHUNK);
        struct db_rows *r = NULL;
        e = sqlb_query(c, &q, &r, NULL, eb);
        for (int i = 0; e == TR_OK && i < r->nrows && *nout < n; i++)
            fill(r, i, &(*out)[(*nout)++]);
    }
    db_release(c);
    return e;
}

tr_err store_team_owners(struct db *db, struct arena *a, const char *org,
                         struct st_team *out, struct tr_errbuf *eb)
{
    return get_where(db, a, "t.org = $1 AND t.is_owners = 1", org, out, eb);
}

tr_err store_team_list(struct db *db, struct arena *a, const char *org,
                       const char *q, const char *const *names, int n_names,
                       const char *visible_to, int offset, int limit,
                       struct st_team **out, int *n, int64_t *total,
                       struct tr_errbuf *eb)
{
    struct sqlb w;
    sqlb_init(&w, a, "");
    const char *p_org = sqlb_param(&w, org);
    const char *p_q =
        sqlb_param(&w, q != NULL && *q ? arena_printf(a, "%%%s%%", q) : NULL);
    const char *p_user = sqlb_param(&w, visible_to);
    sqlb_add(&w, arena_printf(a,
                              " WHERE t.org = %s AND (CAST(%s AS TEXT) IS NULL"
                              " OR lower(t.name) LIKE lower(%s)) AND"
                              " (CAST(%s AS TEXT) IS NULL"
                              " OR t.visibility = 'organization' OR t.id IN"
                              " (SELECT team_id FROM team_members"
                              " WHERE user_id = %s))",
                              p_org, p_q, p_q, p_user, p_user));
    if (n_names > 0) {
        sqlb_add(&w, " AND t.name");
        sqlb_in(&w, names, n_names);
    }
    tr_err e = sqlb_check(&w, eb);
    if (e != TR_OK)
        return e;
    struct db_conn *c = db_acquire(db);
    struct db_rows *r = NULL;
    e = db_page(c, a, arena_printf(a, TEAM_READ "%s ORDER BY t.name", w.sql),
                arena_printf(a, "SELECT count(*) AS n FROM teams t%s", w.sql),
                w.n, w.params, offset, limit, &r, total, eb);
    db_release(c);
    if (e != TR_OK)
        return e;
    *out = arena_alloc(a, sizeof(struct st_team) * (size_t)(r->nrows + 1));
    for (int i = 0; i < r->nrows; i++)
        fill(r, i, &(*out)[i]);
    *n = r->nrows;
    return TR_OK;
}

tr_err store_team_update(struct db *db, struct arena *a, const char *id,
                         const char *name, const char *visibility,
                         const char *sso_team_id, int allow_member_tokens,
                         const char *org_access, struct tr_errbuf *eb)
{
    const char *allow = allow_member_tokens < 0   ? NULL
                        : allow_member_tokens > 0 ? "1"
                                                  : "0";
    struct db_conn *c = db_acquire(db);
    int64_t n = 0;
    tr_err e = db_x(c, a, &n, eb,
                    "UPDATE teams SET name = COALESCE($2, name),"
                    " visibility = COALESCE($3, visibility),"
                    " sso_team_id = COALESCE($4, sso_team_id),"
                    " allow_member_tokens = COALESCE(CAST($5 AS INTEGER),"
                    " allow_member_tokens),"
                    " org_access = COALESCE($6, org_access) WHERE id = $1",
                    id, name, visibility, sso_team_id, allow, org_access);
    db_release(c);
    if (e == TR_ERR_CONFLICT)
        e = tr_fail(eb, TR_ERR_INVALID, "name %s has already been taken", name);
    if (e == TR_OK && n == 0)
        e = tr_fail(eb, TR_ERR_NOT_FOUND, "team not found");
    return e;
}

tr_err store_team_delete(struct db *db, struct arena *a, const char *id,
                         struct tr_errbuf *eb)
{
    struct db_conn *c = db_acquire(db);
    struct db_rows *r = NULL;
    int64_t n = 0;
    tr_err e = db_begin(c, eb);
    if (e == TR_OK)
        e = db_q(c, a, &r, eb,
                 arena_printf(a, "SELECT is_owners FROM teams WHERE id = $1%s",
                              db_for_update(c)),
                 id);
    if (e == TR_OK && r->nrows == 0)
        e = tr_fail(eb, TR_ERR_NOT_FOUND, "team not found");
    if (e == TR_OK && db_get_bool(r, 0, "is_owners"))
        e = tr_fail(eb, TR_ERR_CONFLICT, "the owners team cannot be deleted");
    if (e == TR_OK)
        e = db_x(c, a, NULL, eb,
                 "DELETE FROM tokens WHERE kind IN ('team', 'team-legacy')"
                 " AND subject = $1",
                 id);
    if (e == TR_OK)
        e = db_x(c, a, &n, eb, "DELETE FROM teams WHERE id = $1", id);
    if (e == TR_OK)
        e = db_commit(c, eb);
    db_release(c); /* rolls back if still open */
    return e;
}

tr_err store_team_members(struct db *db, struct arena *a, const char *team_id,
                          struct st_user **out, int *n, struct tr_errbuf *eb)
{
    struct db_conn *c = db_acquire(db);
    struct db_rows *r = NULL;
    tr_err e = db_q(c, a, &r, eb,
                    "SELECT u.id, u.username, u.email, u.is_admin,"
                    " u.created_at FROM team_members m JOIN users u"
                    " ON u.id = m.user_id WHERE m.team_id = $1"
                    " ORDER BY u.username",
                    team_id);
    db_release(c);
    if (e != TR_OK)
        return e;
    *out = arena_alloc(a, sizeof(struct st_user) * (size_t)(r->nrows + 1));
    for (int i = 0; i < r->nrows; i++) {
        struct st_user *u = &(*out)[i];
        u->id = db_get(r, i, "id");
        u->username = db_get(r, i, "username");
        u->email = db_get(r, i, "email");
        u->is_admin = db_get_bool(r, i, "is_admin");
        u->created_at = db_get(r, i, "created_at");
    }
    *n = r->nrows;
    return TR_OK;
}

/* TR_ERR_CONFLICT if team (locked by the caller) is an owners team left
 * with no member. */
static tr_err owners_kept(struct db_conn *c, struct arena *a,
                          const char *team_id, struct tr_errbuf *eb)
{
    struct db_rows *r = NULL;
    tr_err e = db_q(c, a, &r, eb,
                    "SELECT t.is_owners, (SELECT count(*) FROM team_members m"
                    " WHERE m.team_id = t.id) AS n FROM teams t"
                    " WHERE t.id = $1",
                    team_id);
    if (e == TR_OK && r->nrows > 0 && db_get_bool(r, 0, "is_owners") &&
        db_get_i64(r, 0, "n") == 0)
        e = tr_fail(eb, TR_ERR_CONFLICT,
                    "the owners team must keep at least one member");
    return e;
}

tr_err store_team_set_members(struct db *db, struct arena *a,
                              const char *team_id, bool add,
                              const char *const *user_ids, int n,
                              struct tr_errbuf *eb)
{
    return store_team_set_memberships(db, a, team_id, add, user_ids, n, NULL, 0,
                                      eb);
}

/* Adds team_id to (add) or takes it from the n invitations ids of org. */
static tr_err set_invites(struct db_conn *c, struct arena *a,
                          const char *team_id, const char *org, bool add,
                          const char *const *ids, int n, struct tr_errbuf *eb)
{
    tr_err e = TR_OK;
    for (int i = 0; e == TR_OK && i < n; i++) {
        struct db_rows *r = NULL;
        e = db_q(c, a, &r, eb,
                 "SELECT id FROM org_memberships WHERE id = $1 AND org = $2"
                 " AND status = 'invited'",
                 ids[i], org);
        if (e == TR_OK && r->nrows == 0)
            e = tr_fail(eb, TR_ERR_NOT_FOUND,
                        "organization membership %s not found", ids[i]);
        if (e == TR_OK && add)
            e = db_x(c, a, NULL, eb,
                     "INSERT INTO membership_teams (membership_id, team_id)"
                     " VALUES ($1, $2) ON CONFLICT DO NOTHING",
                     ids[i], team_id);
        else if (e == TR_OK)
            e = db_x(c, a, NULL, eb,
                     "DELETE FROM membership_teams WHERE membership_id = $1"
                     " AND team_id = $2",
                     ids[i], team_id);
    }
    return e;
}

tr_err store_team_set_memberships(struct db *db, struct arena *a,
                                  const char *team_id, bool add,
                                  const char *const *user_ids, int n,
                                  const char *const *invite_ids, int ninv,
                                  struct tr_errbuf *eb)
{
    struct db_conn *c = db_acquire(db);
    struct db_rows *r = NULL;
    tr_err e = db_begin(c, eb);
    if (e == TR_OK)
        e = db_q(c, a, &r, eb,
                 arena_printf(a, "SELECT org FROM teams WHERE id = $1%s",
                              db_for_update(c)),
                 team_id);
    if (e == TR_OK && r->nrows == 0)
        e = tr_fail(eb, TR_ERR_NOT_FOUND, "team not found");
    const char *org = e == TR_OK ? db_get(r, 0, "org") : NULL;
    for (int i = 0; e == TR_OK && i < n; i++) {
        if (!add) {
            e = db_x(c, a, NULL, eb,
                     "DELETE FROM team_members WHERE team_id = $1"
                     " AND user_id = $2",
                     team_id, user_ids[i]);
            continue;
        }
        e = db_q(c, a, &r, eb,
                 "SELECT u.username, (SELECT count(*) FROM org_members m"
                 " WHERE m.org = $2 AND m.user_id = u.id) AS member"
                 " FROM users u WHERE u.id = $1",
                 user_ids[i], org);
        if (e == TR_OK && (r->nrows == 0 || db_get_i64(r, 0, "member") == 0))
            e = tr_fail(eb, TR_ERR_INVALID,
                        "user %s is not a member of organization %s",
                        r->nrows > 0 ? db_get(r, 0, "username") : user_ids[i],
                        org);
        if (e == TR_OK)
            e = db_x(c, a, NULL, eb,
                     "INSERT INTO team_members (team_id, user_id)"
                     " VALUES ($1, $2) ON CONFLICT DO NOTHING",
                     team_id, user_ids[i]);
    }
    if (e == TR_OK)
        e = set_invites(c, a, team_id, org, add, invite_ids, ninv, eb);
    if (e == TR_OK && !add)
        e = owners_kept(c, a, team_id, eb);
    if (e == TR_OK)
        e = db_commit(c, eb);
    db_release(c); /* rolls back if still open */
    return e;
}

tr_err store_team_leave_org(struct db_conn *c, struct arena *a, const char *org,
                            const char *user_id, struct tr_errbuf *eb)
{
    struct db_rows *r = NULL;
    tr_err e = db_q(c, a, &r, eb,
                    arena_printf(a,
                                 "SELECT id FROM teams WHERE org = $1"
                                 " AND is_owners = 1%s",
                                 db_for_update(c)),
                    org);
    if (e == TR_OK)
        e = db_x(c, a, NULL, eb,
                 "DELETE FROM team_members WHERE user_id = $2 AND team_id IN"
                 " (SELECT id FROM teams WHERE org = $1)",
                 org, user_id);
    if (e == TR_OK && r->nrows > 0)
        e = owners_kept(c, a, db_get(r, 0, "id"), eb);
    return e;
}

tr_err store_grants_many(struct db *db, struct arena *a, const char *org,
                         const char *user_id, const char *team_id,
                         const char *const *ws_ids, int nws,
                         const char *const *prj_ids, int nprj,
                         struct st_grant **out, int *n, struct tr_errbuf *eb)
{
    /* $1 org, $2 user, $3 team token's team, then the ids */
#define MINE                                                                   \
    " IN (SELECT t.id FROM teams t WHERE t.org = $1 AND (t.id ="               \
    " CAST($3 AS TEXT) OR t.id IN (SELECT m.team_id FROM team_members m"       \
    " WHERE m.user_id = CAST($2 AS TEXT))))"
    struct sqlb q;
    sqlb_init(&q, a, "");
    sqlb_param(&q, org);
    sqlb_param(&q, user_id);
    sqlb_param(&q, team_id);
    sqlb_add(&q, "SELECT 0 AS k, 0 AS owners, NULL AS acc, NULL AS perms,"
                 " NULL AS key FROM org_members WHERE org = $1"
                 " AND user_id = CAST($2 AS TEXT)"
                 " UNION ALL SELECT 1, t.is_owners, t.org_access, NULL, NULL"
                 " FROM teams t WHERE t.id" MINE
                 " UNION ALL SELECT 2, 0, w.access, w.perms, w.workspace_id"
                 " FROM team_workspaces w WHERE w.team_id" MINE
                 " AND w.workspace_id");
    sqlb_in(&q, ws_ids, nws);
    sqlb_add(&q,
             " UNION ALL SELECT 3, 0, p.access, p.perms, p.project_id"
             " FROM team_projects p WHERE p.team_id" MINE " AND p.project_id");
    sqlb_in(&q, prj_ids, nprj);
#undef MINE
    struct db_conn *c = db_acquire(db);
    struct db_rows *r = NULL;
    tr_err e = sqlb_query(c, &q, &r, NULL, eb);
    db_release(c);
    if (e != TR_OK)
        return e;
    *out = arena_alloc(a, sizeof(struct st_grant) * (size_t)(r->nrows + 1));
    for (int i = 0; i < r->nrows; i++) {
        struct st_grant *g = &(*out)[i];
        g->kind = (enum st_grant_kind)db_get_i64(r, i, "k");
        g->owners = db_get_bool(r, i, "owners");
        g->access = db_get(r, i, "acc");
        g->perms = db_get(r, i, "perms");
        g->key = db_get(r, i, "key");
    }
    *n = r->nrows;
    return TR_OK;
}

tr_err store_grants(struct db *db, struct arena *a, const char *org,
                    const char *user_id, const char *team_id, const char *ws_id,
                    const char *prj_id, struct st_grant **out, int *n,
                    struct tr_errbuf *eb)
{
    return store_grants_many(db, a, org, user_id, team_id, &ws_id,
                             ws_id != NULL, &prj_id, prj_id != NULL, out, n,
                             eb);
}
