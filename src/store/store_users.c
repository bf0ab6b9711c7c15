/*
 * store_users.c - user accounts.
 *
 * Usernames are unique by the schema.  Non-empty emails are unique too,
 * case-insensitively; the schema has no index for that, so create and
 * update check inside their transaction (on SQLite the write transaction
 * excludes other writers; on PostgreSQL two racing writers could both
 * pass, which only an index in a later migration would close).
 *
 * A new account takes over the open invitations to its address
 * (store_memberships.c): it gets the id they reserved and becomes their
 * user; they stay invited until it accepts.  Changing an address later
 * claims nothing, since Terrace does not verify addresses.
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#include <stdio.h>
#include <string.h>

#include "store/store.h"
#include "store/store_ws_int.h"

#define USER_COLS "id, username, email, is_admin, created_at"

static void fill(const struct db_rows *r, int i, struct st_user *u)
{
    u->id = db_get(r, i, "id");
    u->username = db_get(r, i, "username");
    u->email = db_get(r, i, "email");
    u->is_admin = db_get_bool(r, i, "is_admin");
    u->created_at = db_get(r, i, "created_at");
}

/* TR_ERR_CONFLICT if another user (not except_id) has this email. */
static tr_err email_free(struct db_conn *c, struct arena *a, const char *email,
                         const char *except_id, struct tr_errbuf *eb)
{
    if (email == NULL || *email == '\0')
        return TR_OK;
    struct db_rows *r = NULL;
    tr_err e = db_q(c, a, &r, eb,
                    "SELECT id FROM users WHERE lower(email) = lower($1)"
                    " AND id <> $2",
                    email, except_id ? except_id : "");
    if (e == TR_OK && r->nrows > 0)
        e = tr_fail(eb, TR_ERR_CONFLICT, "email %s is already taken", email);
    return e;
}

/* The id an account made with email takes: the one its open invitations
 * reserved (store_memberships.c), so they and whatever names it (a
 * notification's e-mail users) point at the new user; else *id stays. */
static tr_err invitee_id(struct db_conn *c, struct arena *a, const char *email,
                         const char **id, struct tr_errbuf *eb)
{
    if (*email == '\0')
        return TR_OK;
    struct db_rows *r = NULL;
    tr_err e = db_q(c, a, &r, eb,
                    "SELECT m.invitee_id FROM org_memberships m"
                    " WHERE m.user_id IS NULL AND lower(m.email) = lower($1)"
                    " AND m.invitee_id IS NOT NULL AND NOT EXISTS"
                    " (SELECT 1 FROM users u WHERE u.id = m.invitee_id)"
                    " ORDER BY m.created_at, m.id LIMIT 1",
                    email);
    if (e == TR_OK && r->nrows > 0)
        *id = db_cell(r, 0, 0);
    return e;
}

tr_err store_user_create(struct db *db, struct arena *a, const char *username,
                         const char *email, bool is_admin, struct st_user *out,
                         struct tr_errbuf *eb)
{
    struct st_user u = {
        .id = util_new_id(a, "user"),
        .username = arena_strdup(a, username),
        .email = arena_strdup(a, email ? email : ""),
        .is_admin = is_admin,
        .created_at = util_now_iso(a),
    };
    struct db_conn *c = db_acquire(db);
    tr_err e = db_begin(c, eb);
    if (e == TR_OK)
        e = email_free(c, a, u.email, NULL, eb);
    if (e == TR_OK)
        e = invitee_id(c, a, u.email, &u.id, eb);
    if (e == TR_OK) {
        e = db_x(c, a, NULL, eb,
                 "INSERT INTO users (" USER_COLS ") VALUES ($1,$2,$3,$4,$5)",
                 u.id, u.username, u.email, is_admin ? "1" : "0", u.created_at);
        if (e == TR_ERR_CONFLICT)
            e = tr_fail(eb, e, "username %s is already taken", username);
    }
    if (e == TR_OK && *u.email != '\0')
        e = db_x(c, a, NULL, eb,
                 "UPDATE org_memberships SET user_id = $1"
                 " WHERE user_id IS NULL AND lower(email) = lower($2)",
                 u.id, u.email);
    if (e == TR_OK)
        e = db_commit(c, eb);
    db_release(c); /* rolls back if still open */
    if (e == TR_OK && out != NULL)
        *out = u;
    return e;
}

static tr_err get_one(struct db *db, struct arena *a, const char *sql,
                      const char *arg, struct st_user *out,
                      struct tr_errbuf *eb)
{
    struct db_conn *c = db_acquire(db);
    struct db_rows *r = NULL;
    tr_err e = db_q(c, a, &r, eb, sql, arg);
    db_release(c);
    if (e != TR_OK)
        return e;
    if (r->nrows == 0)
        return tr_fail(eb, TR_ERR_NOT_FOUND, "user not found");
    fill(r, 0, out);
    return TR_OK;
}

tr_err store_user_get(struct db *db, struct arena *a, const char *id,
                      struct st_user *out, struct tr_errbuf *eb)
{
    return get_one(db, a, "SELECT " USER_COLS " FROM users WHERE id = $1", id,
                   out, eb);
}

tr_err store_user_by_name(struct db *db, struct arena *a, const char *username,
                          struct st_user *out, struct tr_errbuf *eb)
{
    return get_one(db, a, "SELECT " USER_COLS " FROM users WHERE username = $1",
                   username, out, eb);
}

tr_err store_user_by_email(struct db *db, struct arena *a, const char *email,
                           struct st_user *out, struct tr_errbuf *eb)
{
    if (email == NULL || *email == '\0')
        return tr_fail(eb, TR_ERR_NOT_FOUND, "user not found");
    return get_one(db, a,
                   "SELECT " USER_COLS " FROM users"
                   " WHERE lower(email) = lower($1) ORDER BY created_at"
                   " LIMIT 1",
                   email, out, eb);
}

tr_err store_user_search(struct db *db, struct arena *a, const char *query,
                         int admin, int offset, int limit, struct st_user **out,
                         int *n, int64_t *total, struct tr_errbuf *eb)
{
    const char *q =
        query && *query ? store_like(a, "%", query, "%", false) : NULL;
    const char *adm = admin < 0 ? NULL : admin ? "1" : "0";
    const char *where =
        " WHERE (CAST($1 AS TEXT) IS NULL"
        " OR lower(username) LIKE lower($1) ESCAPE '\\'"
        " OR lower(email) LIKE lower($1) ESCAPE '\\')"
        " AND (CAST($2 AS INTEGER) IS NULL OR is_admin = CAST($2 AS INTEGER))";
    const char *params[] = {q, adm};
    struct db_conn *c = db_acquire(db);
    struct db_rows *r = NULL;
    tr_err e = db_page(
        c, a,
        arena_printf(a, "SELECT " USER_COLS " FROM users%s ORDER BY username",
                     where),
        arena_printf(a, "SELECT count(*) AS n FROM users%s", where), 2, params,
        offset, limit, &r, total, eb);
    db_release(c);
    if (e != TR_OK)
        return e;
    *out = arena_alloc(a, sizeof(struct st_user) * (size_t)(r->nrows + 1));
    for (int i = 0; i < r->nrows; i++)
        fill(r, i, &(*out)[i]);
    *n = r->nrows;
    return TR_OK;
}

tr_err store_user_list(struct db *db, struct arena *a, int offset, int limit,
                       struct st_user **out, int *n, int64_t *total,
                       struct tr_errbuf *eb)
{
    return store_user_search(db, a, NULL, -1, offset, limit, out, n, total, eb);
}

tr_err store_user_update(struct db *db, struct arena *a, const char *id,
                         const char *username, const char *email, int is_admin,
                         struct tr_errbuf *eb)
{
    struct db_conn *c = db_acquire(db);
    int64_t n = 0;
    const char *adm = is_admin < 0 ? NULL : is_admin ? "1" : "0";
    tr_err e = db_begin(c, eb);
    if (e == TR_OK)
        e = email_free(c, a, email, id, eb);
    if (e == TR_OK) {
        e = db_x(c, a, &n, eb,
                 "UPDATE users SET username = COALESCE($2, username),"
                 " email = COALESCE($3, email),"
                 " is_admin = COALESCE(CAST($4 AS INTEGER), is_admin)"
                 " WHERE id = $1",
                 id, username, email, adm);
        if (e == TR_ERR_CONFLICT)
            e = tr_fail(eb, e, "username %s is already taken", username);
    }
    if (e == TR_OK && n == 0)
        e = tr_fail(eb, TR_ERR_NOT_FOUND, "user not found");
    if (e == TR_OK)
        e = db_commit(c, eb);
    db_release(c);
    return e;
}

tr_err store_user_delete(struct db *db, struct arena *a, const char *id,
                         struct tr_errbuf *eb)
{
    struct db_conn *c = db_acquire(db);
    int64_t n = 0;
    tr_err e = db_begin(c, eb);
    if (e == TR_OK)
        e = db_x(c, a, NULL, eb,
                 "DELETE FROM tokens WHERE kind = 'user' AND subject = $1", id);
    if (e == TR_OK)
        e = db_x(c, a, NULL, eb, "DELETE FROM team_members WHERE user_id = $1",
                 id);
    if (e == TR_OK)
        e = db_x(c, a, NULL, eb,
                 "DELETE FROM org_memberships WHERE user_id = $1", id);
    if (e == TR_OK)
        e = db_x(c, a, &n, eb, "DELETE FROM users WHERE id = $1", id);
    if (e == TR_OK && n == 0)
        e = tr_fail(eb, TR_ERR_NOT_FOUND, "user not found");
    if (e == TR_OK)
        e = db_commit(c, eb);
    db_release(c); /* rolls back if still open */
    return e;
}

tr_err store_user_orgs(struct db *db, struct arena *a, const char *user_id,
                       const char ***names, int *n, struct tr_errbuf *eb)
{
    struct db_conn *c = db_acquire(db);
    struct db_rows *r = NULL;
    tr_err e = db_q(c, a, &r, eb,
                    "SELECT org FROM org_members WHERE user_id = $1"
                    " ORDER BY org",
                    user_id);
    db_release(c);
    if (e != TR_OK)
        return e;
    const char **out = arena_alloc(a, sizeof(char *) * (size_t)(r->nrows + 1));
    for (int i = 0; i < r->nrows; i++)
        out[i] = db_cell(r, i, 0);
    *names = out;
    *n = r->nrows;
    return TR_OK;
}
