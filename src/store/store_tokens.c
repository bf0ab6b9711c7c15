/*
 * store_tokens.c - API tokens, stored as SHA-256 hashes.
 *
 * A token's plain text exists only in the response that created it.  The
 * text has TFE's shape, "<14 chars>.atlasv1.<64 chars>", so tools that
 * sniff token formats accept it.  Lookup is by hash; expiry is checked on
 * every lookup.
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#include <stdio.h>
#include <string.h>

#include "crypto/digest.h"
#include "store/read_cache.h"
#include "store/store_ws_int.h"

#define TOKEN_COLS                                                             \
    "id, kind, subject, description, created_by, created_at,"                  \
    " last_used_at, expired_at"

static const char alphabet[] =
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";

static void random_text(char *out, size_t n)
{
    unsigned char rnd[128];
    util_random(rnd, n);
    for (size_t i = 0; i < n; i++)
        out[i] = alphabet[rnd[i] % 62];
    out[n] = '\0';
}

static void fill(const struct db_rows *r, int i, struct st_token *t)
{
    t->id = db_get(r, i, "id");
    t->kind = db_get(r, i, "kind");
    t->subject = db_get(r, i, "subject");
    t->description = db_get(r, i, "description");
    t->created_by = db_get(r, i, "created_by");
    t->created_at = db_get(r, i, "created_at");
    t->last_used_at = db_get(r, i, "last_used_at");
    t->expired_at = db_get(r, i, "expired_at");
}

/* Inserts a new token of (kind, subject) on connection c. */
static tr_err insert(struct db_conn *c, struct arena *a, const char *kind,
                     const char *subject, const char *description,
                     const char *created_by, const char *expired_at,
                     const char *given, struct st_token *out, char **secret,
                     struct tr_errbuf *eb)
{
    char head[15], tail[65];
    random_text(head, 14);
    random_text(tail, 64);
    char *plain = given != NULL ? arena_strdup(a, given)
                                : arena_printf(a, "%s.atlasv1.%s", head, tail);
    struct st_token t = {
        .id = util_new_id(a, "at"),
        .kind = arena_strdup(a, kind),
        .subject = arena_strdup(a, subject),
        .description = arena_strdup(a, description ? description : ""),
        .created_by = arena_strdup(a, created_by),
        .created_at = util_now_iso(a),
        .expired_at = arena_strdup(a, expired_at),
    };
    tr_err e = db_x(c, a, NULL, eb,
                    "INSERT INTO tokens (id, kind, subject, hash, description,"
                    " created_by, created_at, expired_at)"
                    " VALUES ($1,$2,$3,$4,$5,$6,$7,$8)",
                    t.id, t.kind, t.subject,
                    digest_sha256_hex(a, plain, strlen(plain)), t.description,
                    t.created_by, t.created_at, t.expired_at);
    if (e != TR_OK)
        return e;
    if (out != NULL)
        *out = t;
    *secret = plain;
    return TR_OK;
}

/* On c, in its open transaction: the tokens of (kind, subject) replaced
 * by a new one. */
static tr_err replace_on(struct db_conn *c, struct arena *a, const char *kind,
                         const char *subject, const char *description,
                         const char *created_by, const char *expired_at,
                         struct st_token *out, char **secret,
                         struct tr_errbuf *eb)
{
    tr_err e = db_x(c, a, NULL, eb,
                    "DELETE FROM tokens WHERE kind = $1 AND subject = $2", kind,
                    subject);
    if (e == TR_OK)
        e = insert(c, a, kind, subject, description, created_by, expired_at,
                   NULL, out, secret, eb);
    return e;
}

tr_err store_run_token_mint(struct db_conn *c, struct arena *a,
                            const char *run_id, const char *expired_at,
                            char **secret, struct tr_errbuf *eb)
{
    struct st_token t = {0};
    tr_err e = replace_on(c, a, "run", run_id, "run token", NULL, expired_at,
                          &t, secret, eb);
    if (e == TR_OK)
        e = db_x(c, a, NULL, eb,
                 "UPDATE tokens SET last_used_at = created_at WHERE id = $1",
                 t.id);
    return e;
}

tr_err store_token_create(struct db *db, struct arena *a, const char *kind,
                          const char *subject, const char *description,
                          const char *created_by, const char *expired_at,
                          struct st_token *out, char **secret,
                          struct tr_errbuf *eb)
{
    struct db_conn *c = db_acquire(db);
    tr_err e = insert(c, a, kind, subject, description, created_by, expired_at,
                      NULL, out, secret, eb);
    db_release(c);
    return e;
}

tr_err store_token_create_given(struct db *db, struct arena *a,
                                const char *kind, const char *subject,
                                const char *description, const char *created_by,
                                const char *secret, struct st_token *out,
                                struct tr_errbuf *eb)
{
    char *plain = NULL;
    struct db_conn *c = db_acquire(db);
    tr_err e = insert(c, a, kind, subject, description, created_by, NULL,
                      secret, out, &plain, eb);
    db_release(c);
    return e;
}

tr_err store_token_replace(struct db *db, struct arena *a, const char *kind,
                           const char *subject, const char *description,
                           const char *created_by, const char *expired_at,
                           struct st_token *out, char **secret,
                           struct tr_errbuf *eb)
{
    struct db_conn *c = db_acquire(db);
    tr_err e = db_begin(c, eb);
    if (e == TR_OK)
        e = replace_on(c, a, kind, subject, description, created_by, expired_at,
                       out, secret, eb);
    if (e == TR_OK)
        e = db_commit(c, eb);
    db_release(c); /* rolls back if still open */
    return e;
}

/* What a lookup reads of a token: the token (columns tk_*), and in the
 * same round trip the owner of a user token or the organization of a team
 * token; this runs on every authenticated request. */
#define LOOKUP_COLS                                                            \
    "t.id AS tk_id, t.kind AS tk_kind, t.subject AS tk_subject,"               \
    " t.description AS tk_description, t.created_by AS tk_created_by,"         \
    " t.created_at AS tk_created_at, t.last_used_at AS tk_last_used_at,"       \
    " t.expired_at AS tk_expired_at, u.username AS user_name,"                 \
    " u.is_admin AS user_admin, tm.org AS team_org"
#define LOOKUP_FROM                                                            \
    " FROM tokens t LEFT JOIN users u"                                         \
    " ON t.kind = 'user' AND u.id = t.subject"                                 \
    " LEFT JOIN teams tm"                                                      \
    " ON t.kind IN ('team', 'team-legacy') AND tm.id = t.subject"              \
    " WHERE t.hash = $1"

/* Refuses out if it has expired; brings its last_used_at up to the
 * minute on a connection of db (c, or one taken here when c is NULL). */
static tr_err check_and_touch(struct db *db, struct db_conn *c, struct arena *a,
                              const char *hash, struct st_token *out,
                              struct tr_errbuf *eb)
{
    char *now = util_now_iso(a);
    /* ISO-8601 UTC strings of one format compare as times */
    if (out->expired_at != NULL && strcmp(out->expired_at, now) <= 0)
        return tr_fail(eb, TR_ERR_NOT_FOUND, "token expired");
    if (out->last_used_at != NULL && strncmp(out->last_used_at, now, 16) == 0)
        return TR_OK;
    struct db_conn *own = c == NULL ? db_acquire(db) : NULL;
    if (db_x(own != NULL ? own : c, a, NULL, NULL,
             "UPDATE tokens SET last_used_at = $2 WHERE id = $1", out->id,
             now) == TR_OK) {
        out->last_used_at = now;
        if (db_read_cache(db) != NULL)
            read_cache_touch(db_read_cache(db), hash, now);
    }
    if (own != NULL)
        db_release(own);
    return TR_OK;
}

/* The token of a lookup's row 0 into out (not checked). */
static tr_err looked_up(const struct db_rows *r, struct st_token *out,
                        struct tr_errbuf *eb)
{
    if (r->nrows == 0)
        return tr_fail(eb, TR_ERR_NOT_FOUND, "invalid token");
    out->id = db_get(r, 0, "tk_id");
    out->kind = db_get(r, 0, "tk_kind");
    out->subject = db_get(r, 0, "tk_subject");
    out->description = db_get(r, 0, "tk_description");
    out->created_by = db_get(r, 0, "tk_created_by");
    out->created_at = db_get(r, 0, "tk_created_at");
    out->last_used_at = db_get(r, 0, "tk_last_used_at");
    out->expired_at = db_get(r, 0, "tk_expired_at");
    out->user_name = db_get(r, 0, "user_name");
    out->user_admin = db_get_bool(r, 0, "user_admin");
    out->team_org = db_get(r, 0, "team_org");
    return TR_OK;
}

/* The token whose SHA-256 is hash and, when ws_id is not NULL, workspace
 * ws_id in the same statement (*found: it exists); from the node's read
 * cache when it holds both (read_cache.c), else from the database, which
 * then fills the cache. */
static tr_err lookup(struct db *db, struct arena *a, const char *hash,
                     const char *ws_id, struct st_token *out,
                     struct st_workspace *ws, bool *found, struct tr_errbuf *eb)
{
    struct read_cache *rc = db_read_cache(db);
    bool cached = rc != NULL && read_cache_fence(rc);
    struct rc_ticket t = {0, 0};
    if (cached) {
        if (read_cache_token(rc, a, hash, out) &&
            (ws_id == NULL || read_cache_ws(rc, a, ws_id, ws))) {
            if (found != NULL)
                *found = true;
            return check_and_touch(db, NULL, a, hash, out, eb);
        }
        read_cache_ticket(rc, hash, ws_id, &t);
    }
    struct db_conn *c = db_acquire(db);
    struct db_rows *r = NULL;
    tr_err e;
    if (ws_id == NULL) {
        e = db_q(c, a, &r, eb, "SELECT " LOOKUP_COLS LOOKUP_FROM, hash);
    } else {
        /* the token's row, with the workspace's columns beside it (NULL
         * when there is no such workspace) */
        const char *sql = arena_printf(
            a,
            "SELECT tk.*, %s FROM (SELECT " LOOKUP_COLS LOOKUP_FROM ") tk"
            " LEFT JOIN workspaces w ON w.id = $2"
            " LEFT JOIN state_versions sv ON sv.id = w.current_sv",
            store_ws_cols(c));
        e = db_q(c, a, &r, eb, sql, hash, ws_id);
    }
    if (e == TR_OK)
        e = looked_up(r, out, eb);
    bool has_ws = e == TR_OK && ws_id != NULL && db_get(r, 0, "id") != NULL;
    if (has_ws)
        store_ws_fill(a, r, 0, ws);
    if (found != NULL)
        *found = has_ws;
    if (e == TR_OK)
        e = check_and_touch(db, c, a, hash, out, eb);
    if (e == TR_OK && cached) /* with last_used_at as it is now */
        read_cache_put(rc, &t, hash, out, has_ws ? ws : NULL);
    db_release(c);
    return e;
}

tr_err store_token_lookup(struct db *db, struct arena *a, const char *secret,
                          struct st_token *out, struct tr_errbuf *eb)
{
    return lookup(db, a, digest_sha256_hex(a, secret, strlen(secret)), NULL,
                  out, NULL, NULL, eb);
}

tr_err store_token_lookup_ws(struct db *db, struct arena *a, const char *secret,
                             const char *ws_id, struct st_token *out,
                             struct st_workspace *ws, bool *found,
                             struct tr_errbuf *eb)
{
    return lookup(db, a, digest_sha256_hex(a, secret, strlen(secret)), ws_id,
                  out, ws, found, eb);
}

tr_err store_token_get(struct db *db, struct arena *a, const char *id,
                       struct st_token *out, struct tr_errbuf *eb)
{
    struct db_conn *c = db_acquire(db);
    struct db_rows *r = NULL;
    tr_err e = db_q(c, a, &r, eb,
                    "SELECT " TOKEN_COLS " FROM tokens WHERE id = $1", id);
    db_release(c);
    if (e == TR_OK && r->nrows == 0)
        e = tr_fail(eb, TR_ERR_NOT_FOUND, "token not found");
    if (e == TR_OK)
        fill(r, 0, out);
    return e;
}

tr_err store_token_list(struct db *db, struct arena *a, const char *kind,
                        const char *subject, struct st_token **out, int *n,
                        struct tr_errbuf *eb)
{
    struct db_conn *c = db_acquire(db);
    struct db_rows *r = NULL;
    tr_err e = db_q(c, a, &r, eb,
                    "SELECT " TOKEN_COLS " FROM tokens WHERE kind = $1"
                    " AND subject = $2 ORDER BY created_at, id",
                    kind, subject);
    db_release(c);
    if (e != TR_OK)
        return e;
    *out = arena_alloc(a, sizeof(struct st_token) * (size_t)(r->nrows + 1));
    for (int i = 0; i < r->nrows; i++)
        fill(r, i, &(*out)[i]);
    *n = r->nrows;
    return TR_OK;
}

tr_err store_token_delete(struct db *db, struct arena *a, const char *id,
                          struct tr_errbuf *eb)
{
    struct db_conn *c = db_acquire(db);
    int64_t n = 0;
    tr_err e = db_x(c, a, &n, eb, "DELETE FROM tokens WHERE id = $1", id);
    db_release(c);
    if (e == TR_OK && n == 0)
        e = tr_fail(eb, TR_ERR_NOT_FOUND, "token not found");
    return e;
}

tr_err store_token_delete_subject(struct db *db, struct arena *a,
                                  const char *kind, const char *subject,
                                  struct tr_errbuf *eb)
{
    struct db_conn *c = db_acquire(db);
    tr_err e = db_x(c, a, NULL, eb,
                    "DELETE FROM tokens WHERE kind = $1 AND subject = $2", kind,
                    subject);
    db_release(c);
    return e;
}
