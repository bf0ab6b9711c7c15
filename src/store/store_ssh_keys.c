/*
 * store_ssh_keys.c - organization SSH keys and the one a workspace uses.
 *
 * The value column holds the key sealed by the caller; only
 * store_ssh_key_value() reads it, for a run's job.  Deleting a key
 * leaves the workspaces that used it with none (ON DELETE SET NULL).
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#include "store/store_ws_int.h"

#define KEY_COLS "k.id, k.org, k.name, k.created_at, k.updated_at"

static void fill(const struct db_rows *r, int i, struct st_ssh_key *k)
{
    k->id = db_get(r, i, "id");
    k->org = db_get(r, i, "org");
    k->name = db_get(r, i, "name");
    k->created_at = db_get(r, i, "created_at");
    k->updated_at = db_get(r, i, "updated_at");
}

static tr_err get(struct db_conn *c, struct arena *a, const char *id,
                  struct st_ssh_key *out, struct tr_errbuf *eb)
{
    struct db_rows *r = NULL;
    tr_err e = db_q(c, a, &r, eb,
                    "SELECT " KEY_COLS " FROM ssh_keys k WHERE k.id = $1", id);
    if (e == TR_OK && r->nrows == 0)
        e = tr_fail(eb, TR_ERR_NOT_FOUND, "ssh key %s not found", id);
    if (e == TR_OK)
        fill(r, 0, out);
    return e;
}

tr_err store_ssh_key_create(struct db *db, struct arena *a, const char *org,
                            const char *name, const char *sealed,
                            struct st_ssh_key *out, struct tr_errbuf *eb)
{
    struct db_conn *c = db_acquire(db);
    const char *id = util_new_id(a, "sshkey");
    const char *now = util_now_iso(a);
    tr_err e = db_x(c, a, NULL, eb,
                    "INSERT INTO ssh_keys (id, org, name, value, created_at,"
                    " updated_at) VALUES ($1, $2, $3, $4, $5, $5)",
                    id, org, name, sealed, now);
    if (e == TR_OK)
        e = get(c, a, id, out, eb);
    db_release(c);
    return e;
}

tr_err store_ssh_key_get(struct db *db, struct arena *a, const char *id,
                         struct st_ssh_key *out, struct tr_errbuf *eb)
{
    struct db_conn *c = db_acquire(db);
    tr_err e = get(c, a, id, out, eb);
    db_release(c);
    return e;
}

tr_err store_ssh_key_list(struct db *db, struct arena *a, const char *org,
                          int offset, int limit, struct st_ssh_key **out,
                          int *n, int64_t *total, struct tr_errbuf *eb)
{
    struct sqlb w;
    sqlb_init(&w, a, " FROM ssh_keys k WHERE k.org = ");
    sqlb_add(&w, sqlb_param(&w, org));
    struct db_conn *c = db_acquire(db);
    struct db_rows *r = NULL;
    tr_err e = sqlb_page(
        c, &w,
        arena_printf(a, "SELECT " KEY_COLS "%s ORDER BY k.name%s, k.id", w.sql,
                     store_bytes_order(c)),
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

tr_err store_ssh_key_update(struct db *db, struct arena *a, const char *id,
                            const char *name, const char *sealed,
                            struct tr_errbuf *eb)
{
    struct db_conn *c = db_acquire(db);
    int64_t n = 0;
    tr_err e = db_x(c, a, &n, eb,
                    "UPDATE ssh_keys SET name = COALESCE($2, name),"
                    " value = COALESCE($3, value), updated_at = $4"
                    " WHERE id = $1",
                    id, name, sealed, util_now_iso(a));
    db_release(c);
    if (e == TR_OK && n == 0)
        e = tr_fail(eb, TR_ERR_NOT_FOUND, "ssh key %s not found", id);
    return e;
}

tr_err store_ssh_key_delete(struct db *db, struct arena *a, const char *id,
                            struct tr_errbuf *eb)
{
    struct db_conn *c = db_acquire(db);
    int64_t n = 0;
    tr_err e = db_x(c, a, &n, eb, "DELETE FROM ssh_keys WHERE id = $1", id);
    db_release(c);
    if (e == TR_OK && n == 0)
        e = tr_fail(eb, TR_ERR_NOT_FOUND, "ssh key %s not found", id);
    return e;
}

tr_err store_ssh_key_value(struct db *db, struct arena *a, const char *id,
                           const char **sealed, struct tr_errbuf *eb)
{
    struct db_conn *c = db_acquire(db);
    struct db_rows *r = NULL;
    tr_err e =
        db_q(c, a, &r, eb, "SELECT value FROM ssh_keys WHERE id = $1", id);
    db_release(c);
    if (e == TR_OK && r->nrows == 0)
        e = tr_fail(eb, TR_ERR_NOT_FOUND, "ssh key %s not found", id);
    if (e == TR_OK)
        *sealed = db_get(r, 0, "value");
    return e;
}

tr_err store_ws_set_ssh_key(struct db *db, struct arena *a, const char *ws_id,
                            const char *key_id, struct tr_errbuf *eb)
{
    struct db_conn *c = db_acquire(db);
    int64_t n = 0;
    tr_err e;
    if (key_id == NULL)
        e = db_x(c, a, &n, eb,
                 "UPDATE workspaces SET ssh_key_id = NULL WHERE id = $1",
                 ws_id);
    else
        e = db_x(c, a, &n, eb,
                 "UPDATE workspaces SET ssh_key_id = $2 WHERE id = $1"
                 " AND EXISTS (SELECT 1 FROM ssh_keys k WHERE k.id = $2"
                 " AND k.org = workspaces.org)",
                 ws_id, key_id);
    db_release(c);
    if (e == TR_OK && n == 0)
        e = key_id != NULL
                ? tr_fail(eb, TR_ERR_NOT_FOUND, "ssh key %s not found", key_id)
                : tr_fail(eb, TR_ERR_NOT_FOUND, "workspace %s not found",
                          ws_id);
    return e;
}
