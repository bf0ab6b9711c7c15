/*
 * store_cv.c - configuration versions: the rows behind uploaded
 * configuration tarballs (the life cycle is drawn in store.h).
 *
 * Transitions read the row, then update it on condition that its status
 * is still the one read (WHERE status = ...), so a lost race changes
 * nothing and answers TR_ERR_CONFLICT.  status_timestamps is a JSON object
 * written only here; each transition adds its "<status>-at" key.
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/store.h"

#define CV_COLS                                                                \
    "id, workspace_id, status, error_message, source, speculative,"            \
    " provisional, auto_queue_runs, blob_key, size, status_timestamps,"        \
    " created_by, created_at"

/* The current version of a workspace (store.h). */
#define CV_CURRENT                                                             \
    "SELECT " CV_COLS " FROM configuration_versions"                           \
    " WHERE workspace_id = $1 AND provisional = 0 AND speculative = 0"         \
    " AND status IN ('pending', 'uploaded')"                                   \
    " ORDER BY created_at DESC, id DESC LIMIT 1"

static void fill(const struct db_rows *r, int i, struct st_cv *cv)
{
    cv->id = db_get(r, i, "id");
    cv->workspace_id = db_get(r, i, "workspace_id");
    cv->status = db_get(r, i, "status");
    cv->error_message = db_get(r, i, "error_message");
    cv->source = db_get(r, i, "source");
    cv->speculative = db_get_bool(r, i, "speculative");
    cv->provisional = db_get_bool(r, i, "provisional");
    cv->auto_queue_runs = db_get_bool(r, i, "auto_queue_runs");
    cv->blob_key = db_get(r, i, "blob_key");
    cv->size = db_get_i64(r, i, "size");
    cv->status_timestamps = db_get(r, i, "status_timestamps");
    cv->created_by = db_get(r, i, "created_by");
    cv->created_at = db_get(r, i, "created_at");
}

static tr_err read_cv(struct db_conn *c, struct arena *a, const char *id,
                      struct st_cv *out, struct tr_errbuf *eb)
{
    struct db_rows *r = NULL;
    tr_err e = db_q(c, a, &r, eb,
                    "SELECT " CV_COLS " FROM configuration_versions"
                    " WHERE id = $1",
                    id);
    if (e == TR_OK && r->nrows == 0)
        e = tr_fail(eb, TR_ERR_NOT_FOUND, "configuration version not found");
    if (e == TR_OK)
        fill(r, 0, out);
    return e;
}

/* ts with key set to the current time, as JSON text in a.  A stored value
 * that is not an object (never written so) starts over. */
static const char *stamp(struct arena *a, const char *ts, const char *key)
{
    json_t *o = ts != NULL ? json_loads(ts, 0, NULL) : NULL;
    if (!json_is_object(o)) {
        json_decref(o);
        o = json_object();
    }
    json_object_set_new(o, key, json_string(util_now_iso(a)));
    char *s = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(o);
    if (s == NULL)
        return "{}";
    char *out = arena_strdup(a, s);
    free(s);
    return out;
}

tr_err store_cv_create(struct db *db, struct arena *a, const struct st_cv *in,
                       struct st_cv *out, struct tr_errbuf *eb)
{
    struct db_conn *c = db_acquire(db);
    struct db_rows *r = NULL;
    tr_err e = db_begin(c, eb);
    if (e == TR_OK)
        e = db_q(c, a, &r, eb, "SELECT id FROM workspaces WHERE id = $1",
                 in->workspace_id);
    if (e == TR_OK && r->nrows == 0)
        e = tr_fail(eb, TR_ERR_NOT_FOUND, "workspace %s not found",
                    in->workspace_id);
    if (e == TR_OK)
        e = db_x(c, a, NULL, eb,
                 "INSERT INTO configuration_versions (" CV_COLS ") VALUES"
                 " ($1, $2, 'pending', NULL, $3, $4, $5, $6, NULL, 0, '{}',"
                 " $7, $8)",
                 in->id, in->workspace_id, in->source ? in->source : "tfe-api",
                 in->speculative ? "1" : "0", in->provisional ? "1" : "0",
                 in->auto_queue_runs ? "1" : "0", in->created_by,
                 util_now_iso(a));
    if (e == TR_OK && out != NULL)
        e = read_cv(c, a, in->id, out, eb);
    if (e == TR_OK)
        e = db_commit(c, eb);
    db_release(c); /* rolls back an open transaction */
    return e;
}

tr_err store_cv_get(struct db *db, struct arena *a, const char *id,
                    struct st_cv *out, struct tr_errbuf *eb)
{
    struct db_conn *c = db_acquire(db);
    tr_err e = read_cv(c, a, id, out, eb);
    db_release(c);
    return e;
}

tr_err store_cv_list(struct db *db, struct arena *a, const char *ws_id,
                     int offset, int limit, struct st_cv **out, int *n,
                     int64_t *total, struct tr_errbuf *eb)
{
    struct db_conn *c = db_acquire(db);
    struct db_rows *r = NULL;
    tr_err e = db_page(c, a,
                       "SELECT " CV_COLS " FROM configuration_versions"
                       " WHERE workspace_id = $1"
                       " ORDER BY created_at DESC, id DESC",
                       "SELECT count(*) AS n FROM configuration_versions"
                       " WHERE workspace_id = $1",
                       1, &ws_id, offset, limit, &r, total, eb);
    db_release(c);
    if (e != TR_OK)
        return e;
    *out = arena_alloc(a, sizeof(struct st_cv) * (size_t)(r->nrows + 1));
    for (int i = 0; i < r->nrows; i++)
        fill(r, i, &(*out)[i]);
    *n = r->nrows;
    return TR_OK;
}

tr_err store_cv_current(struct db *db, struct arena *a, const char *ws_id,
                        struct st_cv *out, struct tr_errbuf *eb)
{
    struct db_conn *c = db_acquire(db);
    struct db_rows *r = NULL;
    tr_err e = db_q(c, a, &r, eb, CV_CURRENT, ws_id);
    db_release(c);
    if (e == TR_OK && r->nrows == 0)
        e = tr_fail(eb, TR_ERR_NOT_FOUND,
                    "workspace %s has no configuration version", ws_id);
    if (e == TR_OK)
        fill(r, 0, out);
    return e;
}

/* pending -> to: one conditional update of status, the timestamps and the
 * columns given (blob_key/size for uploaded, error_message for errored). */
static tr_err leave_pending(struct db *db, struct arena *a, const char *id,
                            const char *to, const char *blob_key, int64_t size,
                            const char *message, struct st_cv *out,
                            struct tr_errbuf *eb)
{
    struct db_conn *c = db_acquire(db);
    struct st_cv cv;
    int64_t changed = 0;
    tr_err e = read_cv(c, a, id, &cv, eb);
    if (e == TR_OK && strcmp(cv.status, "pending") != 0)
        e = tr_fail(eb, TR_ERR_CONFLICT,
                    "configuration version %s is %s, not pending", id,
                    cv.status);
    if (e == TR_OK)
        e = db_x(c, a, &changed, eb,
                 "UPDATE configuration_versions SET status = $2,"
                 " blob_key = $3, size = $4, error_message = $5,"
                 " status_timestamps = $6"
                 " WHERE id = $1 AND status = 'pending'",
                 id, to, blob_key, arena_printf(a, "%lld", (long long)size),
                 message,
                 stamp(a, cv.status_timestamps, arena_printf(a, "%s-at", to)));
    if (e == TR_OK && changed == 0)
        e = tr_fail(eb, TR_ERR_CONFLICT,
                    "configuration version %s is no longer pending", id);
    if (e == TR_OK && out != NULL)
        e = read_cv(c, a, id, out, eb);
    db_release(c);
    return e;
}

tr_err store_cv_set_uploaded(struct db *db, struct arena *a, const char *id,
                             const char *blob_key, int64_t size,
                             struct st_cv *out, struct tr_errbuf *eb)
{
    return leave_pending(db, a, id, "uploaded", blob_key, size, NULL, out, eb);
}

/* ts without key (status_timestamps is a small JSON object). */
static const char *unstamp(struct arena *a, const char *ts, const char *key)
{
    json_t *o = ts != NULL ? json_loads(ts, 0, NULL) : NULL;
    if (!json_is_object(o)) {
        json_decref(o);
        return "{}";
    }
    json_object_del(o, key);
    char *s = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(o);
    if (s == NULL)
        return "{}";
    char *out = arena_strdup(a, s);
    free(s);
    return out;
}

tr_err store_cv_unset_upload(struct db *db, struct arena *a, const char *id,
                             const char *key, struct tr_errbuf *eb)
{
    struct db_conn *c = db_acquire(db);
    struct st_cv cv;
    int64_t changed = 0;
    tr_err e = read_cv(c, a, id, &cv, eb);
    if (e == TR_OK)
        e = db_x(c, a, &changed, eb,
                 "UPDATE configuration_versions SET status = 'pending',"
                 " blob_key = NULL, size = 0, status_timestamps = $3"
                 " WHERE id = $1 AND status = 'uploaded' AND blob_key = $2"
                 " AND NOT EXISTS (SELECT 1 FROM runs WHERE cv_id = $1)",
                 id, key, unstamp(a, cv.status_timestamps, "uploaded-at"));
    if (e == TR_OK && changed == 0)
        e = tr_fail(eb, TR_ERR_CONFLICT,
                    "configuration version %s changed since its upload", id);
    db_release(c);
    return e;
}

tr_err store_cv_set_errored(struct db *db, struct arena *a, const char *id,
                            const char *message, struct st_cv *out,
                            struct tr_errbuf *eb)
{
    return leave_pending(db, a, id, "errored", NULL, 0, message ? message : "",
                         out, eb);
}

tr_err store_cv_replace_upload(struct db *db, struct arena *a, const char *id,
                               const char *blob_key, int64_t size,
                               const char **old_key, struct tr_errbuf *eb)
{
    struct db_conn *c = db_acquire(db);
    struct st_cv cv;
    int64_t changed = 0;
    *old_key = NULL;
    tr_err e = read_cv(c, a, id, &cv, eb);
    if (e == TR_OK &&
        (strcmp(cv.status, "uploaded") != 0 || cv.blob_key == NULL))
        e = tr_fail(eb, TR_ERR_CONFLICT,
                    "configuration version %s is %s; only an uploaded version "
                    "no run has used accepts another upload",
                    id, cv.status);
    /* compare-and-swap on the key read: of two racing uploads one wins */
    if (e == TR_OK)
        e = db_x(c, a, &changed, eb,
                 "UPDATE configuration_versions SET blob_key = $2, size = $3"
                 " WHERE id = $1 AND status = 'uploaded' AND blob_key = $4"
                 " AND NOT EXISTS (SELECT 1 FROM runs WHERE cv_id = $1)",
                 id, blob_key, arena_printf(a, "%lld", (long long)size),
                 cv.blob_key);
    if (e == TR_OK && changed == 0)
        e = tr_fail(eb, TR_ERR_CONFLICT,
                    "configuration version %s is already used by a run; "
                    "create a new configuration version to change the "
                    "configuration",
                    id);
    if (e == TR_OK)
        *old_key = cv.blob_key;
    db_release(c);
    return e;
}

tr_err store_cv_archive(struct db *db, struct arena *a, const char *id,
                        const char **key, struct tr_errbuf *eb)
{
    struct db_conn *c = db_acquire(db);
    struct db_rows *r = NULL;
    struct st_cv cv;
    int64_t changed = 0;
    tr_err e = read_cv(c, a, id, &cv, eb);
    if (e == TR_OK)
        e = db_begin(c, eb);
    /* lock the workspace row: a version created meanwhile is seen */
    if (e == TR_OK)
        e = db_q(c, a, &r, eb,
                 arena_printf(a, "SELECT id FROM workspaces WHERE id = $1%s",
                              db_for_update(c)),
                 cv.workspace_id);
    if (e == TR_OK)
        e = read_cv(c, a, id, &cv, eb);
    if (e == TR_OK && strcmp(cv.status, "uploaded") != 0)
        e = tr_fail(eb, TR_ERR_CONFLICT,
                    "configuration could not be archived because it is %s",
                    cv.status);
    if (e == TR_OK)
        e = db_q(c, a, &r, eb, CV_CURRENT, cv.workspace_id);
    if (e == TR_OK && r->nrows > 0 && strcmp(db_get(r, 0, "id"), cv.id) == 0)
        e = tr_fail(eb, TR_ERR_CONFLICT,
                    "configuration could not be archived because it is "
                    "current");
    if (e == TR_OK)
        e = db_x(c, a, &changed, eb,
                 "UPDATE configuration_versions SET status = 'archived',"
                 " blob_key = NULL, status_timestamps = $2"
                 " WHERE id = $1 AND status = 'uploaded'",
                 id, stamp(a, cv.status_timestamps, "archived-at"));
    if (e == TR_OK && changed == 0)
        e = tr_fail(eb, TR_ERR_CONFLICT,
                    "configuration version %s is no longer uploaded", id);
    if (e == TR_OK)
        e = db_commit(c, eb);
    db_release(c);
    if (e == TR_OK)
        *key = cv.blob_key;
    return e;
}
