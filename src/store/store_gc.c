/*
 * store_gc.c - the database side of blob garbage collection: which blob
 * keys rows still reference, and log chunks nothing needs any more.
 *
 * Every key the server writes names the row that records it (blob keys
 * are made in api/state_versions.c, state_transfer.c, config_versions.c,
 * domain/run_worker.c and job_service.c):
 *
 *   state/<ws>/<sv-id>.tfstate|.json|-<j-id>.json  state_versions
 *   config/<ws>/<cv-id>-<u-id>.tar.gz               configuration_versions
 *   runs/<run-id>/plan.tfplan|plan.json|...         plans (by run_id)
 *   logs/<phase-id>.log                             plans or applies
 *   jobs/<job-id>/<kind>                            jobs not yet done
 *
 * So a page of keys is checked with one query per family present, each
 * by primary (or unique) key, and a key counts as referenced only when a
 * row names it exactly: a replaced configuration upload or a losing JSON
 * state upload is garbage although its row exists.  A key of any other
 * form (health/probe, a family added later) is always reported
 * referenced: the collector never removes what it does not understand.
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#include <stdio.h>
#include <string.h>

#include "core/check.h"
#include "store/db.h"
#include "store/store.h"

enum fam { FAM_NONE, FAM_SV, FAM_CV, FAM_RUN, FAM_LOG, FAM_JOB, FAM__COUNT };

static bool alnum(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c >= '0' && c <= '9');
}

/* Length of the id at p: one of the given prefixes, '-', then
 * letters and digits (util_new_id()); 0 when there is none. */
static size_t id_len(const char *p, const char *const *prefixes)
{
    for (int i = 0; prefixes[i] != NULL; i++) {
        size_t pl = strlen(prefixes[i]);
        if (strncmp(p, prefixes[i], pl) != 0 || p[pl] != '-')
            continue;
        size_t n = pl + 1;
        while (alnum(p[n]))
            n++;
        return n > pl + 1 ? n : 0;
    }
    return 0;
}

/* The family of key and the id of its row (in a); FAM_NONE for a key of
 * no known form. */
static enum fam classify(struct arena *a, const char *key, const char **id)
{
    static const struct {
        const char *dir;    /* the key starts with it */
        bool skip;          /* then a path segment (the workspace) */
        const char *ids[3]; /* the id prefixes */
        const char *after;  /* characters that may follow the id */
        enum fam fam;
    } forms[] = {
        {"state/", true, {"sv", NULL}, ".-", FAM_SV},
        {"config/", true, {"cv", NULL}, "-", FAM_CV},
        {"runs/", false, {"run", NULL}, "/", FAM_RUN},
        {"logs/", false, {"plan", "apply", NULL}, ".", FAM_LOG},
        {"jobs/", false, {"job", NULL}, "/", FAM_JOB},
    };
    for (size_t i = 0; i < sizeof(forms) / sizeof(forms[0]); i++) {
        size_t dl = strlen(forms[i].dir);
        if (strncmp(key, forms[i].dir, dl) != 0)
            continue;
        const char *p = key + dl;
        if (forms[i].skip) {
            const char *slash = strchr(p, '/');
            if (slash == NULL || slash == p)
                return FAM_NONE;
            p = slash + 1;
        }
        size_t n = id_len(p, forms[i].ids);
        if (n == 0 || p[n] == '\0' || strchr(forms[i].after, p[n]) == NULL)
            return FAM_NONE;
        *id = arena_strndup(a, p, n);
        return forms[i].fam;
    }
    return FAM_NONE;
}

/* "$1,...,$n" */
static const char *placeholders(struct arena *a, int n)
{
    size_t cap = (size_t)n * 8 + 1, len = 0;
    char *s = arena_alloc(a, cap);
    s[0] = '\0';
    for (int i = 1; i <= n; i++)
        len += (size_t)snprintf(s + len, cap - len, i == 1 ? "$%d" : ",$%d", i);
    return s;
}

/* The SQL that returns the keys rows of fam reference, among ids $1..$n;
 * every column it returns is a key or NULL. */
static const char *fam_sql(struct arena *a, enum fam fam, int n)
{
    const char *in = placeholders(a, n);
    switch (fam) {
    case FAM_SV:
        return arena_printf(a,
                            "SELECT blob_key AS k1, json_blob_key AS k2"
                            " FROM state_versions WHERE id IN (%s)",
                            in);
    case FAM_CV:
        return arena_printf(a,
                            "SELECT blob_key AS k1 FROM"
                            " configuration_versions WHERE id IN (%s)",
                            in);
    case FAM_RUN:
        return arena_printf(a,
                            "SELECT plan_blob_key AS k1, json_blob_key AS k2,"
                            " redacted_json_blob_key AS k3 FROM plans"
                            " WHERE run_id IN (%s)",
                            in);
    case FAM_LOG:
        return arena_printf(a,
                            "SELECT log_blob_key AS k1 FROM plans"
                            " WHERE id IN (%s) UNION ALL"
                            " SELECT log_blob_key AS k1 FROM applies"
                            " WHERE id IN (%s)",
                            in, in);
    case FAM_JOB: /* the prefix jobs/<id>/ is the reference */
        return arena_printf(a,
                            "SELECT 'jobs/' || id || '/' AS k1 FROM jobs"
                            " WHERE id IN (%s) AND status <> 'done'",
                            in);
    default:
        return NULL;
    }
}

/* Whether key is among the keys in rows (for jobs: starts with one). */
static bool named(const struct db_rows *r, enum fam fam, const char *key)
{
    for (int i = 0; i < r->nrows; i++)
        for (int c = 0; c < r->ncols; c++) {
            const char *k = db_cell(r, i, c);
            if (k == NULL)
                continue;
            if (fam == FAM_JOB ? strncmp(key, k, strlen(k)) == 0
                               : strcmp(key, k) == 0)
                return true;
        }
    return false;
}

tr_err store_blob_refs(struct db *db, struct arena *a, const char *const *keys,
                       int n, bool *ref, struct tr_errbuf *eb)
{
    TR_ASSERT(n >= 0 && n <= STORE_GC_PAGE);
    enum fam *fam = arena_alloc(a, sizeof(*fam) * (size_t)(n + 1));
    const char **ids = arena_alloc(a, sizeof(char *) * (size_t)(n + 1));
    for (int i = 0; i < n; i++) {
        fam[i] = classify(a, keys[i], &ids[i]);
        ref[i] = fam[i] == FAM_NONE;
    }
    struct db_conn *c = db_acquire(db);
    tr_err e = TR_OK;
    for (int f = FAM_SV; e == TR_OK && f < FAM__COUNT; f++) {
        const char **params = arena_alloc(a, sizeof(char *) * (size_t)(n + 1));
        int np = 0;
        for (int i = 0; i < n; i++)
            if (fam[i] == (enum fam)f)
                params[np++] = ids[i]; /* a repeated id costs nothing */
        if (np == 0)
            continue;
        struct db_rows *r = NULL;
        e = db_query(c, a, fam_sql(a, (enum fam)f, np), np, params, &r, NULL,
                     eb);
        for (int i = 0; e == TR_OK && i < n; i++)
            if (fam[i] == (enum fam)f)
                ref[i] = named(r, (enum fam)f, keys[i]);
    }
    db_release(c);
    return e;
}

tr_err store_log_chunks_gc(struct db *db, struct arena *a, const char *after,
                           int limit, const char **next, int64_t *n,
                           struct tr_errbuf *eb)
{
    /* chunks outlive their phase when a workspace is deleted (they have
     * no foreign key), and would outlive compaction if it had been cut
     * short.  A batch is the next `limit` phases after the cursor in
     * primary-key order, so each statement reads only those phases'
     * chunks however large the table is. */
    struct db_conn *c = db_acquire(db);
    struct db_rows *r = NULL;
    char lim[16];
    snprintf(lim, sizeof(lim), "%d", limit);
    *next = NULL;
    if (n != NULL)
        *n = 0;
    tr_err e = db_q(c, a, &r, eb,
                    "SELECT DISTINCT phase_id FROM log_chunks"
                    " WHERE phase_id > $1 ORDER BY phase_id LIMIT $2",
                    after != NULL ? after : "", lim);
    for (int i = 0; e == TR_OK && i < r->nrows; i++) {
        int64_t k = 0;
        e = db_x(c, a, &k, eb,
                 "DELETE FROM log_chunks WHERE phase_id = $1"
                 " AND NOT EXISTS (SELECT 1 FROM plans p"
                 "  WHERE p.id = $1 AND p.log_blob_key IS NULL)"
                 " AND NOT EXISTS (SELECT 1 FROM applies p"
                 "  WHERE p.id = $1 AND p.log_blob_key IS NULL)",
                 db_get(r, i, "phase_id"));
        if (n != NULL)
            *n += k;
    }
    if (e == TR_OK && r->nrows == limit)
        *next = db_get(r, r->nrows - 1, "phase_id");
    db_release(c);
    return e;
}
