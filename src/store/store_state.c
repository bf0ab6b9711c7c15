/*
 * store_state.c - state versions and their outputs.
 *
 * Every write that can change a workspace's current version runs in one
 * transaction that first locks the workspace row (SELECT ... FOR UPDATE
 * on PostgreSQL; BEGIN IMMEDIATE already excludes other writers on
 * SQLite), then re-reads the current version, applies the successor rule
 * and writes.  The blob a version points to is written by the caller
 * before the transaction, so a committed finalized row always has its
 * bytes; a crash before the commit leaves at most an unreferenced blob.
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#include <stdio.h>
#include <string.h>

#include "store/store.h"
#include "store/store_ws_int.h"

#define SV_COLS                                                                \
    "id, workspace_id, seq, serial, lineage, md5, sha256, size, status,"       \
    " blob_key, json_blob_key, run_id, created_by, terraform_version,"         \
    " resources, created_at, forced"

#define SVO_COLS "id, sv_id, name, sensitive, type, detailed_type, value"

static void fill(const struct db_rows *r, int i, struct st_sv *sv)
{
    sv->id = db_get(r, i, "id");
    sv->workspace_id = db_get(r, i, "workspace_id");
    sv->seq = db_get_i64(r, i, "seq");
    sv->serial = db_get_i64(r, i, "serial");
    sv->lineage = db_get(r, i, "lineage");
    sv->md5 = db_get(r, i, "md5");
    sv->sha256 = db_get(r, i, "sha256");
    sv->size = db_get_i64(r, i, "size");
    sv->status = db_get(r, i, "status");
    sv->blob_key = db_get(r, i, "blob_key");
    sv->json_blob_key = db_get(r, i, "json_blob_key");
    sv->run_id = db_get(r, i, "run_id");
    sv->created_by = db_get(r, i, "created_by");
    sv->terraform_version = db_get(r, i, "terraform_version");
    sv->resources = db_get(r, i, "resources");
    sv->created_at = db_get(r, i, "created_at");
    sv->force = db_get_bool(r, i, "forced");
}

static void fill_output(const struct db_rows *r, int i, struct st_sv_output *o)
{
    o->id = db_get(r, i, "id");
    o->sv_id = db_get(r, i, "sv_id");
    o->name = db_get(r, i, "name");
    o->sensitive = db_get_bool(r, i, "sensitive");
    o->type = db_get(r, i, "type");
    o->detailed_type = db_get(r, i, "detailed_type");
    o->value = db_get(r, i, "value");
}

static const char *i64(struct arena *a, int64_t v)
{
    return arena_printf(a, "%lld", (long long)v);
}

tr_err store_sv_successor(const struct st_sv *cur, int64_t serial,
                          const char *lineage, const char *md5, int skip,
                          struct tr_errbuf *eb)
{
    if (cur == NULL)
        return TR_OK;
    if (!(skip & SV_SKIP_LINEAGE) && lineage != NULL && *lineage &&
        cur->lineage != NULL && *cur->lineage &&
        strcmp(lineage, cur->lineage) != 0)
        return tr_fail(eb, TR_ERR_CONFLICT,
                       "lineage %.64s does not match the current state's "
                       "lineage %.64s; use force to replace it",
                       lineage, cur->lineage);
    if (skip & SV_SKIP_SERIAL)
        return TR_OK;
    if (serial < cur->serial)
        return tr_fail(eb, TR_ERR_CONFLICT,
                       "serial %lld is lower than the current state's serial "
                       "%lld",
                       (long long)serial, (long long)cur->serial);
    if (serial == cur->serial && !util_streq(md5, cur->md5))
        return tr_fail(eb, TR_ERR_CONFLICT,
                       "a state with serial %lld and different content "
                       "already exists; increase the serial or use force",
                       (long long)serial);
    return TR_OK;
}

/* Who must hold the workspace lock for a write (kind NULL: anyone). */
struct holder {
    const char *kind;
    const char *id;
};

/* The current version of ws (*has false when none), read in c; with lock,
 * the workspace row is locked and h (nullable) checked against it. */
static tr_err read_current(struct db_conn *c, struct arena *a,
                           const char *ws_id, bool lock, const struct holder *h,
                           struct st_sv *cur, bool *has, struct tr_errbuf *eb)
{
    struct db_rows *r = NULL;
    tr_err e = db_q(c, a, &r, eb,
                    arena_printf(a,
                                 "SELECT current_sv, locked, lock_kind,"
                                 " lock_holder FROM workspaces"
                                 " WHERE id = $1%s",
                                 lock ? db_for_update(c) : ""),
                    ws_id);
    if (e != TR_OK)
        return e;
    if (r->nrows == 0)
        return tr_fail(eb, TR_ERR_NOT_FOUND, "workspace %s not found", ws_id);
    if (h != NULL && h->kind != NULL &&
        (!db_get_bool(r, 0, "locked") ||
         !util_streq(db_get(r, 0, "lock_kind"), h->kind) ||
         !util_streq(db_get(r, 0, "lock_holder"), h->id)))
        return tr_fail(eb, TR_ERR_CONFLICT,
                       "the workspace must be locked by the caller to "
                       "create a state version");
    *has = false;
    const char *sv_id = db_get(r, 0, "current_sv");
    if (sv_id == NULL)
        return TR_OK;
    e = db_q(c, a, &r, eb,
             "SELECT " SV_COLS " FROM state_versions WHERE id = $1", sv_id);
    if (e == TR_OK && r->nrows == 1) {
        fill(r, 0, cur);
        *has = true;
    }
    return e;
}

tr_err store_sv_check(struct db *db, struct arena *a, const char *ws_id,
                      int64_t serial, const char *lineage, const char *md5,
                      int skip, struct tr_errbuf *eb)
{
    struct db_conn *c = db_acquire(db);
    struct st_sv cur;
    bool has = false;
    tr_err e = read_current(c, a, ws_id, false, NULL, &cur, &has, eb);
    db_release(c);
    if (e == TR_OK)
        e = store_sv_successor(has ? &cur : NULL, serial, lineage, md5, skip,
                               eb);
    return e;
}

static tr_err next_seq(struct db_conn *c, struct arena *a, const char *ws_id,
                       const char **seq, struct tr_errbuf *eb)
{
    struct db_rows *r = NULL;
    tr_err e = db_q(c, a, &r, eb,
                    "SELECT COALESCE(MAX(seq), 0) + 1 AS n FROM state_versions"
                    " WHERE workspace_id = $1",
                    ws_id);
    if (e == TR_OK)
        *seq = i64(a, db_get_i64(r, 0, "n"));
    return e;
}

/* The finalizing writes, inside the caller's transaction: outputs, other
 * pending versions discarded, the current pointer moved. */
static tr_err make_current(struct db_conn *c, struct arena *a,
                           const struct st_sv *sv,
                           const struct st_sv_output *outs, int nouts,
                           struct tr_errbuf *eb)
{
    tr_err e = TR_OK;
    for (int i = 0; e == TR_OK && i < nouts; i++)
        e = db_x(c, a, NULL, eb,
                 "INSERT INTO state_version_outputs (" SVO_COLS ")"
                 " VALUES ($1, $2, $3, $4, $5, $6, $7)",
                 util_new_id(a, "wsout"), sv->id, outs[i].name,
                 outs[i].sensitive ? "1" : "0", outs[i].type,
                 outs[i].detailed_type, outs[i].value);
    if (e == TR_OK)
        e = db_x(c, a, NULL, eb,
                 "UPDATE state_versions SET status = 'discarded'"
                 " WHERE workspace_id = $1 AND status = 'pending'"
                 " AND id <> $2",
                 sv->workspace_id, sv->id);
    if (e == TR_OK)
        e = db_x(c, a, NULL, eb,
                 "UPDATE workspaces SET current_sv = $2 WHERE id = $1",
                 sv->workspace_id, sv->id);
    return e;
}

static tr_err reread(struct db_conn *c, struct arena *a, const char *id,
                     struct st_sv *out, struct tr_errbuf *eb)
{
    struct db_rows *r = NULL;
    tr_err e = db_q(c, a, &r, eb,
                    "SELECT " SV_COLS " FROM state_versions WHERE id = $1", id);
    if (e == TR_OK && r->nrows == 0)
        e = tr_fail(eb, TR_ERR_NOT_FOUND, "state version %s not found", id);
    if (e == TR_OK && out != NULL)
        fill(r, 0, out);
    return e;
}

tr_err store_sv_create(struct db *db, struct arena *a, const struct st_sv *sv,
                       const struct st_sv_output *outs, int nouts, int skip,
                       const char *lock_kind, const char *lock_holder,
                       struct st_sv *out, struct tr_errbuf *eb)
{
    bool final = strcmp(sv->status, "finalized") == 0;
    struct holder h = {lock_kind, lock_holder};
    struct db_conn *c = db_acquire(db);
    struct st_sv cur;
    bool has = false;
    const char *seq = NULL;
    tr_err e = db_begin(c, eb);
    if (e == TR_OK)
        e = read_current(c, a, sv->workspace_id, true, &h, &cur, &has, eb);
    if (e == TR_OK && final)
        e = store_sv_successor(has ? &cur : NULL, sv->serial, sv->lineage,
                               sv->md5, skip, eb);
    if (e == TR_OK)
        e = next_seq(c, a, sv->workspace_id, &seq, eb);
    if (e == TR_OK)
        e = db_x(c, a, NULL, eb,
                 "INSERT INTO state_versions (" SV_COLS ") VALUES ($1, $2, $3,"
                 " $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16,"
                 " $17)",
                 sv->id, sv->workspace_id, seq, i64(a, sv->serial),
                 sv->lineage ? sv->lineage : "", sv->md5,
                 sv->sha256 ? sv->sha256 : "", i64(a, sv->size),
                 final ? "finalized" : "pending", sv->blob_key,
                 sv->json_blob_key, sv->run_id, sv->created_by,
                 sv->terraform_version ? sv->terraform_version : "",
                 sv->resources ? sv->resources : "[]", util_now_iso(a),
                 sv->force ? "1" : "0");
    if (e == TR_OK && final)
        e = make_current(c, a, sv, outs, nouts, eb);
    if (e == TR_OK && out != NULL)
        e = reread(c, a, sv->id, out, eb);
    if (e == TR_OK)
        e = db_commit(c, eb);
    db_release(c); /* rolls back an open transaction */
    return e;
}

tr_err store_sv_finalize(struct db *db, struct arena *a, const char *id,
                         const struct st_sv *fin,
                         const struct st_sv_output *outs, int nouts,
                         struct st_sv *out, struct tr_errbuf *eb)
{
    struct db_conn *c = db_acquire(db);
    struct st_sv sv, cur;
    bool has = false;
    const char *seq = NULL;
    tr_err e = reread(c, a, id, &sv, eb);
    if (e == TR_OK)
        e = db_begin(c, eb);
    if (e == TR_OK)
        e = read_current(c, a, sv.workspace_id, true, NULL, &cur, &has, eb);
    if (e == TR_OK) /* again, under the workspace lock */
        e = reread(c, a, id, &sv, eb);
    if (e == TR_OK && strcmp(sv.status, "pending") != 0)
        e = tr_fail(eb, TR_ERR_CONFLICT, "state version %s is %s, not pending",
                    id, sv.status);
    if (e == TR_OK && *sv.lineage == '\0')
        sv.lineage = fin->lineage ? fin->lineage : "";
    if (e == TR_OK)
        e = store_sv_successor(has ? &cur : NULL, sv.serial, sv.lineage, sv.md5,
                               sv.force ? SV_FORCE : 0, eb);
    if (e == TR_OK)
        e = next_seq(c, a, sv.workspace_id, &seq, eb);
    if (e == TR_OK)
        e = db_x(c, a, NULL, eb,
                 "UPDATE state_versions SET status = 'finalized', seq = $2,"
                 " lineage = $3, sha256 = $4, size = $5,"
                 " terraform_version = $6, resources = $7"
                 " WHERE id = $1 AND status = 'pending'",
                 id, seq, sv.lineage, fin->sha256 ? fin->sha256 : "",
                 i64(a, fin->size),
                 fin->terraform_version ? fin->terraform_version : "",
                 fin->resources ? fin->resources : "[]");
    if (e == TR_OK)
        e = make_current(c, a, &sv, outs, nouts, eb);
    if (e == TR_OK && out != NULL)
        e = reread(c, a, id, out, eb);
    if (e == TR_OK)
        e = db_commit(c, eb);
    db_release(c);
    return e;
}

tr_err store_sv_get(struct db *db, struct arena *a, const char *id,
                    struct st_sv *out, struct tr_errbuf *eb)
{
    struct db_conn *c = db_acquire(db);
    tr_err e = reread(c, a, id, out, eb);
    db_release(c);
    return e;
}

tr_err store_sv_current(struct db *db, struct arena *a, const char *ws_id,
                        struct st_sv *out, struct tr_errbuf *eb)
{
    struct db_conn *c = db_acquire(db);
    bool has = false;
    tr_err e = read_current(c, a, ws_id, false, NULL, out, &has, eb);
    db_release(c);
    if (e == TR_OK && !has)
        e = tr_fail(eb, TR_ERR_NOT_FOUND,
                    "workspace %s has no current state version", ws_id);
    return e;
}

tr_err store_sv_list(struct db *db, struct arena *a, const char *ws_id,
                     int offset, int limit, struct st_sv **out, int *n,
                     int64_t *total, struct tr_errbuf *eb)
{
    struct db_conn *c = db_acquire(db);
    struct db_rows *r = NULL;
    tr_err e = db_page(c, a,
                       "SELECT " SV_COLS " FROM state_versions"
                       " WHERE workspace_id = $1 ORDER BY seq DESC",
                       "SELECT count(*) AS n FROM state_versions"
                       " WHERE workspace_id = $1",
                       1, &ws_id, offset, limit, &r, total, eb);
    db_release(c);
    if (e != TR_OK)
        return e;
    *out = arena_alloc(a, sizeof(struct st_sv) * (size_t)(r->nrows + 1));
    for (int i = 0; i < r->nrows; i++)
        fill(r, i, &(*out)[i]);
    *n = r->nrows;
    return TR_OK;
}

tr_err store_sv_set_json(struct db *db, struct arena *a, const char *id,
                         const char *json_blob_key, struct tr_errbuf *eb)
{
    struct db_conn *c = db_acquire(db);
    int64_t n = 0;
    tr_err e = db_x(c, a, &n, eb,
                    "UPDATE state_versions SET json_blob_key = $2"
                    " WHERE id = $1 AND json_blob_key IS NULL"
                    " AND status IN ('pending', 'finalized')",
                    id, json_blob_key);
    db_release(c);
    if (e == TR_OK && n == 0)
        e = tr_fail(eb, TR_ERR_CONFLICT,
                    "state version %s already has a JSON state or was "
                    "discarded",
                    id);
    return e;
}

tr_err store_sv_outputs(struct db *db, struct arena *a, const char *sv_id,
                        int offset, int limit, struct st_sv_output **out,
                        int *n, int64_t *total, struct tr_errbuf *eb)
{
    struct db_conn *c = db_acquire(db);
    struct db_rows *r = NULL;
    tr_err e = db_page(c, a,
                       "SELECT " SVO_COLS " FROM state_version_outputs"
                       " WHERE sv_id = $1 ORDER BY name, id",
                       "SELECT count(*) AS n FROM state_version_outputs"
                       " WHERE sv_id = $1",
                       1, &sv_id, offset, limit < 0 ? INT32_MAX : limit, &r,
                       total, eb);
    db_release(c);
    if (e != TR_OK)
        return e;
    *out = arena_alloc(a, sizeof(struct st_sv_output) * (size_t)(r->nrows + 1));
    for (int i = 0; i < r->nrows; i++)
        fill_output(r, i, &(*out)[i]);
    *n = r->nrows;
    return TR_OK;
}

tr_err store_sv_outputs_of(struct db *db, struct arena *a,
                           const struct st_sv *svs, int n,
                           struct st_sv_output ***outs, int **nouts,
                           struct tr_errbuf *eb)
{
    *outs = arena_alloc(a, sizeof(**outs) * (size_t)(n + 1));
    *nouts = arena_alloc(a, sizeof(**nouts) * (size_t)(n + 1));
    if (n == 0)
        return TR_OK;
    const char **ids = arena_alloc(a, sizeof(char *) * (size_t)n);
    for (int i = 0; i < n; i++)
        ids[i] = svs[i].id;
    struct sqlb q;
    sqlb_init(&q, a,
              "SELECT " SVO_COLS " FROM state_version_outputs WHERE sv_id");
    sqlb_in(&q, ids, n);
    sqlb_add(&q, " ORDER BY name, id");
    struct db_conn *c = db_acquire(db);
    struct db_rows *r = NULL;
    tr_err e = sqlb_query(c, &q, &r, NULL, eb);
    db_release(c);
    if (e != TR_OK)
        return e;
    /* two passes: count per version, then fill in name order */
    int *idx = arena_alloc(a, sizeof(int) * (size_t)(r->nrows + 1));
    for (int k = 0; k < r->nrows; k++) {
        const char *sv = db_get(r, k, "sv_id");
        idx[k] = -1;
        for (int i = 0; i < n && idx[k] < 0; i++)
            if (strcmp(svs[i].id, sv) == 0)
                idx[k] = i;
        if (idx[k] >= 0)
            (*nouts)[idx[k]]++;
    }
    for (int i = 0; i < n; i++) {
        (*outs)[i] = arena_alloc(a, sizeof(struct st_sv_output) *
                                        (size_t)((*nouts)[i] + 1));
        (*nouts)[i] = 0;
    }
    for (int k = 0; k < r->nrows; k++)
        if (idx[k] >= 0) {
            int i = idx[k];
            fill_output(r, k, &(*outs)[i][(*nouts)[i]++]);
        }
    return TR_OK;
}

tr_err store_sv_output_get(struct db *db, struct arena *a, const char *id,
                           struct st_sv_output *out, struct tr_errbuf *eb)
{
    struct db_conn *c = db_acquire(db);
    struct db_rows *r = NULL;
    tr_err e = db_q(c, a, &r, eb,
                    "SELECT " SVO_COLS " FROM state_version_outputs"
                    " WHERE id = $1",
                    id);
    db_release(c);
    if (e == TR_OK && r->nrows == 0)
        e = tr_fail(eb, TR_ERR_NOT_FOUND, "state version output not found");
    if (e == TR_OK)
        fill_output(r, 0, out);
    return e;
}

tr_err store_sv_has_pending(struct db *db, struct arena *a, const char *ws_id,
                            bool *pending, struct tr_errbuf *eb)
{
    struct db_conn *c = db_acquire(db);
    struct db_rows *r = NULL;
    tr_err e = db_q(c, a, &r, eb,
                    "SELECT 1 FROM state_versions WHERE workspace_id = $1"
                    " AND status = 'pending' LIMIT 1",
                    ws_id);
    db_release(c);
    if (e == TR_OK)
        *pending = r->nrows > 0;
    return e;
}

tr_err store_sv_discard_pending(struct db *db, struct arena *a,
                                const char *ws_id, struct tr_errbuf *eb)
{
    struct db_conn *c = db_acquire(db);
    tr_err e = db_x(c, a, NULL, eb,
                    "UPDATE state_versions SET status = 'discarded'"
                    " WHERE workspace_id = $1 AND status = 'pending'",
                    ws_id);
    db_release(c);
    return e;
}
