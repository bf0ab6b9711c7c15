/*
 * store_users.c - user accounts.
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#include <stdio.h>

#include "store/store.h"

#define USER_COLS "id, username, email, is_admin, created_at"

static void fill(const struct db_rows *r, int i, struct st_user *u)
{
    u->id = db_get(r, i, "id");
    u->username = db_get(r, i, "username");
    u->email = db_get(r, i, "email");
    u->is_admin = db_get_bool(r, i, "is_admin");
    u->created_at = db_get(r, i, "created_at");
}

tr_err store_user_create(struct db *db, struct arena *a, const char *username,
                         const char *email, bool is_admin,
                         struct st_user *out, struct tr_errbuf *eb)
{
    struct db_conn *c = db_acquire(db);
    struct st_user u = {
        .id = util_new_id(a, "user"),
        .username = arena_strdup(a, username),
        .email = arena_strdup(a, email ? email : ""),
        .is_admin = is_admin,
        .created_at = util_now_iso(a),
    };
    tr_err e = db_x(c, a, NULL, eb,
                    "INSERT INTO users (" USER_COLS ") VALUES ($1,$2,$3,$4,$5)",
                    u.id, u.username, u.email, is_admin ? "1" : "0",
                    u.created_at);
    db_release(c);
    if (e == TR_ERR_CONFLICT)
        return tr_fail(eb, e, "username %s is already taken", username);
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
    return get_one(db, a, "SELECT " USER_COLS " FROM users WHERE id = $1",
                   id, out, eb);
}

tr_err store_user_by_name(struct db *db, struct arena *a,
                          const char *username, struct st_user *out,
                          struct tr_errbuf *eb)
{
    return get_one(db, a,
                   "SELECT " USER_COLS " FROM users WHERE username = $1",
                   username, out, eb);
}

tr_err store_user_list(struct db *db, struct arena *a, int offset, int limit,
                       struct st_user **out, int *n, int64_t *total,
                       struct tr_errbuf *eb)
{
    struct db_conn *c = db_acquire(db);
    struct db_rows *r = NULL, *cnt = NULL;
    char off[24], lim[24];
    snprintf(off, sizeof(off), "%d", offset);
    snprintf(lim, sizeof(lim), "%d", limit);
    tr_err e = db_q(c, a, &r, eb,
                    "SELECT " USER_COLS " FROM users ORDER BY username"
                    " LIMIT $1 OFFSET $2",
                    lim, off);
    if (e == TR_OK)
        e = db_query(c, a, "SELECT count(*) FROM users", 0, NULL, &cnt, NULL,
                     eb);
    db_release(c);
    if (e != TR_OK)
        return e;
    *out = arena_alloc(a, sizeof(struct st_user) * (size_t)(r->nrows + 1));
    for (int i = 0; i < r->nrows; i++)
        fill(r, i, &(*out)[i]);
    *n = r->nrows;
    *total = db_get_i64(cnt, 0, cnt->cols[0]);
    return TR_OK;
}

tr_err store_user_update(struct db *db, struct arena *a, const char *id,
                         const char *username, const char *email,
                         int is_admin, struct tr_errbuf *eb)
{
    struct db_conn *c = db_acquire(db);
    int64_t n = 0;
    const char *adm = is_admin < 0 ? NULL : is_admin ? "1" : "0";
    tr_err e = db_x(c, a, &n, eb,
                    "UPDATE users SET username = COALESCE($2, username),"
                    " email = COALESCE($3, email),"
                    " is_admin = COALESCE($4, is_admin) WHERE id = $1",
                    id, username, email, adm);
    db_release(c);
    if (e == TR_ERR_CONFLICT)
        return tr_fail(eb, e, "username %s is already taken", username);
    if (e == TR_OK && n == 0)
        return tr_fail(eb, TR_ERR_NOT_FOUND, "user not found");
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
        e = db_x(c, a, &n, eb, "DELETE FROM users WHERE id = $1", id);
    if (e == TR_OK && n == 0)
        e = tr_fail(eb, TR_ERR_NOT_FOUND, "user not found");
    if (e == TR_OK)
        e = db_commit(c, eb);
    db_release(c); /* rolls back if still open */
    return e;
}
