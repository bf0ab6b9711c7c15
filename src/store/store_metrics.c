/*
 * store_metrics.c - the counts /metrics reports from the database: runs
 * by status, jobs queued, jobs running (in all and by node).
 *
 * Each is one GROUP BY or count over an indexed status column, run on one
 * pooled connection; the caller (src/http/metrics.c) caches the result
 * for a few seconds, so scrapes cost the database next to nothing.
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#include "store/store.h"

static struct st_count *counts(struct arena *a, const struct db_rows *r,
                               const char *key, int *n)
{
    struct st_count *out =
        arena_alloc(a, sizeof(*out) * (size_t)(r->nrows > 0 ? r->nrows : 1));
    int k = 0;
    for (int i = 0; i < r->nrows; i++) {
        const char *v = db_get(r, i, key);
        if (v == NULL)
            continue;
        out[k].key = v;
        out[k].n = db_get_i64(r, i, "n");
        k++;
    }
    *n = k;
    return out;
}

tr_err store_metrics_counts(struct db *db, struct arena *a,
                            struct st_metrics *out, struct tr_errbuf *eb)
{
    struct db_conn *c = db_acquire(db);
    struct db_rows *r = NULL;
    tr_err e = db_q(c, a, &r, eb,
                    "SELECT status, count(*) AS n FROM runs GROUP BY status", );
    if (e != TR_OK)
        goto out;
    out->runs = counts(a, r, "status", &out->nruns);
    e = db_q(c, a, &r, eb,
             "SELECT count(*) AS n FROM jobs WHERE status = 'queued'", );
    if (e != TR_OK)
        goto out;
    out->jobs_queued = r->nrows > 0 ? db_get_i64(r, 0, "n") : 0;
    e = db_q(c, a, &r, eb,
             "SELECT node, count(*) AS n FROM jobs WHERE status = 'running'"
             " GROUP BY node", );
    if (e != TR_OK)
        goto out;
    out->jobs_running = 0;
    for (int i = 0; i < r->nrows; i++)
        out->jobs_running += db_get_i64(r, i, "n");
    out->nodes = counts(a, r, "node", &out->nnodes);
out:
    db_release(c);
    return e;
}
