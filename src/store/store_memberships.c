/*
 * store_memberships.c - organization memberships and their invitations.
 *
 * One row of org_memberships (migration 20) per user or invited address
 * and organization.  Lifecycle:
 *
 *   (none) --store_membership_invite()--> invited
 *   invited --store_membership_accept()--> active   (its user only)
 *   invited|active --store_membership_delete()--> (none)
 *
 * store_org_create() adds the creator as active directly.  An invitation
 * to an address without an account has user_id NULL and reserves the id
 * that account will get (invitee_id, shared by all open invitations to
 * the address); store_user_create() fills user_id in.  Only active rows
 * give access: the org_members view holds exactly those.
 *
 * An invitation may name teams of its organization (membership_teams,
 * migration 22), given with the invitation or added later through the
 * team; accepting moves them into team_members in the acceptance's
 * transaction, skipping teams deleted meanwhile.  A membership's teams
 * are those rows while invited and the user's teams of the organization
 * once active.
 *
 * Invariants: at most one row per (org, user_id) (schema) and per (org,
 * address) while user_id is NULL (checked in invite's transaction); an
 * organization keeps at least one active member.
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#include <stdio.h>
#include <string.h>

#include "store/store.h"
#include "store/store_ws_int.h"

#define MEM_COLS                                                               \
    "m.id, m.org, m.user_id, COALESCE(m.user_id, m.invitee_id) AS invitee,"    \
    " COALESCE(u.email, m.email) AS email, m.status, m.created_at,"            \
    " u.username, u.is_admin, u.created_at AS user_created_at"
#define MEM_FROM " FROM org_memberships m LEFT JOIN users u ON u.id = m.user_id"

static void fill(const struct db_rows *r, int i, struct st_membership *m)
{
    memset(m, 0, sizeof(*m));
    m->id = db_get(r, i, "id");
    m->org = db_get(r, i, "org");
    m->user_id = db_get(r, i, "user_id");
    m->invitee_id = db_get(r, i, "invitee");
    m->email = db_get(r, i, "email");
    m->status = db_get(r, i, "status");
    m->created_at = db_get(r, i, "created_at");
    m->has_user = m->user_id != NULL;
    if (m->has_user) {
        m->user.id = m->user_id;
        m->user.username = db_get(r, i, "username");
        m->user.email = m->email;
        m->user.is_admin = db_get_bool(r, i, "is_admin");
        m->user.created_at = db_get(r, i, "user_created_at");
    }
}

/* Fills team_ids of the n memberships ms with one statement: an
 * invitation's teams to join, an active member's teams of the
 * organization. */
static tr_err load_teams(struct db_conn *c, struct arena *a,
                         struct st_membership *ms, int n, struct tr_errbuf *eb)
{
    if (n == 0)
        return TR_OK;
    const char **params = arena_alloc(a, sizeof(char *) * (size_t)n);
    const char *in = "";
    for (int i = 0; i < n; i++) {
        params[i] = ms[i].id;
        in = arena_printf(a, "%s%s$%d", in, i > 0 ? ", " : "", i + 1);
        ms[i].team_ids = arena_alloc(a, sizeof(char *) * 1);
        ms[i].nteams = 0;
    }
    struct db_rows *r = NULL;
    tr_err e = db_query(
        c, a,
        arena_printf(a,
                     "SELECT mt.membership_id AS mid, mt.team_id AS tid"
                     " FROM membership_teams mt WHERE mt.membership_id"
                     " IN (%s) UNION ALL SELECT m.id, tm.team_id"
                     " FROM org_memberships m JOIN team_members tm"
                     " ON tm.user_id = m.user_id JOIN teams t"
                     " ON t.id = tm.team_id AND t.org = m.org"
                     " WHERE m.status = 'active' AND m.id IN (%s)"
                     " ORDER BY 1, 2",
                     in, in),
        n, params, &r, NULL, eb);
    if (e != TR_OK)
        return e;
    /* rows come grouped by membership: size each list, then fill it */
    int *cnt = arena_alloc(a, sizeof(int) * (size_t)n);
    memset(cnt, 0, sizeof(int) * (size_t)n);
    for (int k = 0; k < r->nrows; k++)
        for (int i = 0; i < n; i++)
            if (strcmp(ms[i].id, db_get(r, k, "mid")) == 0)
                cnt[i]++;
    for (int i = 0; i < n; i++)
        ms[i].team_ids = arena_alloc(a, sizeof(char *) * (size_t)(cnt[i] + 1));
    for (int k = 0; k < r->nrows; k++)
        for (int i = 0; i < n; i++)
            if (strcmp(ms[i].id, db_get(r, k, "mid")) == 0)
                ms[i].team_ids[ms[i].nteams++] = db_get(r, k, "tid");
    return TR_OK;
}

static tr_err get_in(struct db_conn *c, struct arena *a, const char *id,
                     struct st_membership *out, struct tr_errbuf *eb)
{
    struct db_rows *r = NULL;
    tr_err e =
        db_q(c, a, &r, eb, "SELECT " MEM_COLS MEM_FROM " WHERE m.id = $1", id);
    if (e == TR_OK && r->nrows == 0)
        e = tr_fail(eb, TR_ERR_NOT_FOUND, "membership not found");
    if (e == TR_OK)
        fill(r, 0, out);
    if (e == TR_OK)
        e = load_teams(c, a, out, 1, eb);
    return e;
}

tr_err store_membership_get(struct db *db, struct arena *a, const char *id,
                            struct st_membership *out, struct tr_errbuf *eb)
{
    struct db_conn *c = db_acquire(db);
    tr_err e = get_in(c, a, id, out, eb);
    db_release(c);
    return e;
}

/* TR_ERR_INVALID when org already has a membership for user_id (if not
 * NULL) or for the address email without a user. */
static tr_err not_member(struct db_conn *c, struct arena *a, const char *org,
                         const char *user_id, const char *email,
                         struct tr_errbuf *eb)
{
    struct db_rows *r = NULL;
    tr_err e = db_q(c, a, &r, eb,
                    "SELECT status FROM org_memberships WHERE org = $1 AND"
                    " (user_id = $2 OR (user_id IS NULL"
                    " AND lower(email) = lower($3)))",
                    org, user_id ? user_id : "", email);
    if (e == TR_OK && r->nrows > 0)
        e = tr_fail(eb, TR_ERR_INVALID, "%s is already %s %s", email,
                    strcmp(db_cell(r, 0, 0), "active") == 0 ? "a member of"
                                                            : "invited to",
                    org);
    return e;
}

/* The id invitations to email reserve: the one an open invitation to it
 * already holds, else a new one. */
static tr_err reserve_id(struct db_conn *c, struct arena *a, const char *email,
                         const char **id, struct tr_errbuf *eb)
{
    struct db_rows *r = NULL;
    tr_err e = db_q(c, a, &r, eb,
                    "SELECT invitee_id FROM org_memberships"
                    " WHERE user_id IS NULL AND lower(email) = lower($1)"
                    " AND invitee_id IS NOT NULL"
                    " ORDER BY created_at, id LIMIT 1",
                    email);
    if (e == TR_OK)
        *id = r->nrows > 0 ? db_cell(r, 0, 0) : util_new_id(a, "user");
    return e;
}

tr_err store_membership_invite(struct db *db, struct arena *a, const char *org,
                               const char *email, struct st_membership *out,
                               struct tr_errbuf *eb)
{
    return store_membership_invite_teams(db, a, org, email, NULL, 0, out, eb);
}

/* Records the n teams invitation id of org will join. */
static tr_err add_teams(struct db_conn *c, struct arena *a, const char *org,
                        const char *id, const char *const *team_ids, int n,
                        struct tr_errbuf *eb)
{
    tr_err e = TR_OK;
    for (int i = 0; e == TR_OK && i < n; i++) {
        struct db_rows *r = NULL;
        e = db_q(c, a, &r, eb,
                 "SELECT id FROM teams WHERE id = $1 AND org = $2", team_ids[i],
                 org);
        if (e == TR_OK && r->nrows == 0)
            e = tr_fail(eb, TR_ERR_NOT_FOUND,
                        "team %s not found in organization %s", team_ids[i],
                        org);
        if (e == TR_OK)
            e = db_x(c, a, NULL, eb,
                     "INSERT INTO membership_teams (membership_id, team_id)"
                     " VALUES ($1, $2) ON CONFLICT DO NOTHING",
                     id, team_ids[i]);
    }
    return e;
}

tr_err store_membership_invite_teams(struct db *db, struct arena *a,
                                     const char *org, const char *email,
                                     const char *const *team_ids, int nteams,
                                     struct st_membership *out,
                                     struct tr_errbuf *eb)
{
    struct db_conn *c = db_acquire(db);
    const char *id = util_new_id(a, "ou"), *user_id = NULL, *invitee = NULL;
    struct db_rows *r = NULL;
    tr_err e = db_begin(c, eb);
    if (e == TR_OK)
        e = db_q(c, a, &r, eb,
                 "SELECT id FROM users WHERE lower(email) = lower($1)"
                 " ORDER BY created_at LIMIT 1",
                 email);
    if (e == TR_OK && r->nrows > 0)
        user_id = db_cell(r, 0, 0);
    if (e == TR_OK)
        e = not_member(c, a, org, user_id, email, eb);
    if (e == TR_OK && user_id == NULL)
        e = reserve_id(c, a, email, &invitee, eb);
    if (e == TR_OK)
        e = db_x(c, a, NULL, eb,
                 "INSERT INTO org_memberships (id, org, user_id, invitee_id,"
                 " email, status, mail_pending, created_at)"
                 " VALUES ($1, $2, $3, $4, $5, 'invited', 1, $6)",
                 id, org, user_id, invitee, email, util_now_iso(a));
    if (e == TR_ERR_CONFLICT) /* a racing invite of the same user */
        e = tr_fail(eb, TR_ERR_INVALID, "%s is already invited to %s", email,
                    org);
    if (e == TR_OK)
        e = add_teams(c, a, org, id, team_ids, nteams, eb);
    if (e == TR_OK)
        e = get_in(c, a, id, out, eb);
    if (e == TR_OK)
        e = db_commit(c, eb);
    db_release(c); /* rolls back if still open */
    return e;
}

/* " AND ..." for the filter f, its parameters appended to params. */
static const char *where_of(struct arena *a,
                            const struct st_membership_filter *f,
                            const char **params, int *n)
{
    const char *w = " WHERE 1 = 1";
    if (f->org != NULL) {
        params[(*n)++] = f->org;
        w = arena_printf(a, "%s AND m.org = $%d", w, *n);
    }
    if (f->user_id != NULL) {
        params[(*n)++] = f->user_id;
        w = arena_printf(a, "%s AND m.user_id = $%d", w, *n);
    }
    if (f->status != NULL) {
        params[(*n)++] = f->status;
        w = arena_printf(a, "%s AND m.status = $%d", w, *n);
    }
    if (f->query != NULL && *f->query != '\0') {
        params[(*n)++] = store_like(a, "%", f->query, "%", false);
        w = arena_printf(a,
                         "%s AND (lower(COALESCE(u.email, m.email)) LIKE"
                         " lower($%d) ESCAPE '\\' OR lower(u.username) LIKE"
                         " lower($%d) ESCAPE '\\')",
                         w, *n, *n);
    }
    if (f->nemails > 0) {
        const char *in = "";
        for (int i = 0; i < f->nemails; i++) {
            params[(*n)++] = f->emails[i];
            in = arena_printf(a, "%s%slower($%d)", in, i > 0 ? ", " : "", *n);
        }
        w = arena_printf(a, "%s AND lower(COALESCE(u.email, m.email)) IN (%s)",
                         w, in);
    }
    return w;
}

tr_err store_membership_list(struct db *db, struct arena *a,
                             const struct st_membership_filter *f, int offset,
                             int limit, struct st_membership **out, int *n,
                             int64_t *total, struct tr_errbuf *eb)
{
    const char **params =
        arena_alloc(a, sizeof(char *) * (size_t)(f->nemails + 5));
    int np = 0;
    const char *where = where_of(a, f, params, &np);
    struct db_conn *c = db_acquire(db);
    struct db_rows *r = NULL;
    tr_err e =
        db_page(c, a,
                arena_printf(a,
                             "SELECT " MEM_COLS MEM_FROM "%s"
                             " ORDER BY m.created_at, m.id",
                             where),
                arena_printf(a, "SELECT count(*) AS n" MEM_FROM "%s", where),
                np, params, offset, limit, &r, total, eb);
    if (e == TR_OK) {
        *out = arena_alloc(a, sizeof(struct st_membership) *
                                  (size_t)(r->nrows + 1));
        for (int i = 0; i < r->nrows; i++)
            fill(r, i, &(*out)[i]);
        *n = r->nrows;
        e = load_teams(c, a, *out, *n, eb);
    }
    db_release(c);
    return e;
}

tr_err store_membership_accept(struct db *db, struct arena *a, const char *id,
                               const char *user_id, struct tr_errbuf *eb)
{
    struct db_conn *c = db_acquire(db);
    struct st_membership m;
    tr_err e = db_begin(c, eb);
    if (e == TR_OK)
        e = get_in(c, a, id, &m, eb);
    if (e == TR_OK && (m.user_id == NULL || strcmp(m.user_id, user_id) != 0))
        e = tr_fail(eb, TR_ERR_NOT_FOUND, "membership not found");
    if (e == TR_OK && strcmp(m.status, "invited") != 0)
        e = tr_fail(eb, TR_ERR_CONFLICT, "the invitation was already accepted");
    if (e == TR_OK)
        e = db_x(c, a, NULL, eb,
                 "UPDATE org_memberships SET status = 'active'"
                 " WHERE id = $1 AND status = 'invited'",
                 id);
    /* the invitation's teams, those not deleted meanwhile (the join) */
    if (e == TR_OK)
        e = db_x(c, a, NULL, eb,
                 "INSERT INTO team_members (team_id, user_id)"
                 " SELECT mt.team_id, $2 FROM membership_teams mt"
                 " JOIN teams t ON t.id = mt.team_id"
                 " WHERE mt.membership_id = $1 ON CONFLICT DO NOTHING",
                 id, user_id);
    if (e == TR_OK)
        e = db_x(c, a, NULL, eb,
                 "DELETE FROM membership_teams WHERE membership_id = $1", id);
    if (e == TR_OK)
        e = db_commit(c, eb);
    db_release(c);
    return e;
}

tr_err store_membership_delete(struct db *db, struct arena *a, const char *id,
                               struct tr_errbuf *eb)
{
    struct db_conn *c = db_acquire(db);
    struct st_membership m;
    tr_err e = db_begin(c, eb);
    if (e == TR_OK)
        e = get_in(c, a, id, &m, eb);
    /* leaves every team of the organization; refused when that would
     * leave the owners team empty (its row lock serialises two owners
     * removing each other) */
    if (e == TR_OK && m.user_id != NULL)
        e = store_team_leave_org(c, a, m.org, m.user_id, eb);
    if (e == TR_OK)
        e = db_x(c, a, NULL, eb, "DELETE FROM org_memberships WHERE id = $1",
                 id);
    if (e == TR_OK)
        e = db_commit(c, eb);
    db_release(c);
    return e;
}

tr_err store_membership_mail_due(struct db *db, struct arena *a, int limit,
                                 struct st_membership **out, int *n,
                                 struct tr_errbuf *eb)
{
    char lim[16];
    snprintf(lim, sizeof(lim), "%d", limit);
    struct db_conn *c = db_acquire(db);
    struct db_rows *r = NULL;
    tr_err e = db_q(c, a, &r, eb,
                    "SELECT " MEM_COLS MEM_FROM " WHERE m.mail_pending = 1"
                    " ORDER BY m.created_at, m.id LIMIT CAST($1 AS INTEGER)",
                    lim);
    db_release(c);
    if (e != TR_OK)
        return e;
    *out =
        arena_alloc(a, sizeof(struct st_membership) * (size_t)(r->nrows + 1));
    for (int i = 0; i < r->nrows; i++)
        fill(r, i, &(*out)[i]);
    *n = r->nrows;
    return TR_OK;
}

tr_err store_membership_mail_done(struct db *db, struct arena *a,
                                  const char *id, struct tr_errbuf *eb)
{
    struct db_conn *c = db_acquire(db);
    tr_err e =
        db_x(c, a, NULL, eb,
             "UPDATE org_memberships SET mail_pending = 0 WHERE id = $1", id);
    db_release(c);
    return e;
}

tr_err store_team_invites(struct db *db, struct arena *a, const char *team_id,
                          struct st_membership **out, int *n,
                          struct tr_errbuf *eb)
{
    struct db_conn *c = db_acquire(db);
    struct db_rows *r = NULL;
    tr_err e = db_q(c, a, &r, eb,
                    "SELECT " MEM_COLS MEM_FROM
                    " JOIN membership_teams mt ON mt.membership_id = m.id"
                    " WHERE mt.team_id = $1 AND m.status = 'invited'"
                    " ORDER BY m.created_at, m.id",
                    team_id);
    db_release(c);
    if (e != TR_OK)
        return e;
    *out =
        arena_alloc(a, sizeof(struct st_membership) * (size_t)(r->nrows + 1));
    for (int i = 0; i < r->nrows; i++)
        fill(r, i, &(*out)[i]);
    *n = r->nrows;
    return TR_OK;
}
