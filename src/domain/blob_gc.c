/*
 * blob_gc.c - blob garbage collection (blob_gc.h): the pass and the
 * thread that runs it while this node leads.
 *
 * Invariants that keep it safe:
 *   1. An object younger than the grace period is never touched: that
 *      covers an object written whose row is not yet committed (a
 *      configuration upload between blob_put_file() and its UPDATE, a
 *      plan file before the plan row records it, a crash in between).
 *   2. An older object goes only when no row names it exactly
 *      (store_blob_refs()), checked after it was listed: a row committed
 *      meanwhile keeps it.  Rows name objects the server still serves
 *      (state, configurations, plans, logs) and the uploads of jobs not
 *      yet done, so a running job or a pending state upload keeps its
 *      objects whatever their age.
 *   3. Keys of a form the store does not know are kept.
 *   4. It collects only a store that belongs to its database: the first
 *      pass writes the database's id (site setting blob-gc-database-id)
 *      to the object gc/database-id, and a pass that finds another id
 *      there removes nothing.  A new, empty database pointed at a store
 *      full of objects (a restore gone wrong, a copy started on a fresh
 *      PostgreSQL) would otherwise see every object as garbage.
 * Removing an object a deleted row named is what deleting the row meant;
 * a removal that fails is tried again on the next pass.
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#include "domain/blob_gc.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "blob/blob.h"
#include "core/cond.h"
#include "core/log.h"
#include "core/util.h"
#include "store/store.h"

struct blob_gc {
    struct terrace_server *srv;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    _Atomic bool stop;
    char chunk_cursor[128]; /* where the next log chunk batch starts */
};

/* Phases a pass of the thread looks at for stale log chunks: a bounded
 * step each pass, the whole table over many passes. */
#define CHUNK_BATCH 500

/* A page of listed keys old enough to be checked. */
struct page {
    struct terrace_server *srv;
    _Atomic bool *stop; /* nullable */
    int64_t cutoff;     /* objects last written before this are old */
    struct arena *a;    /* the page's keys; renewed per page */
    const char *keys[STORE_GC_PAGE];
    uint64_t sizes[STORE_GC_PAGE];
    int n;
    struct blob_gc_stats *st;
};

static tr_err flush(struct page *p, struct tr_errbuf *eb)
{
    bool ref[STORE_GC_PAGE];
    tr_err e = p->n == 0
                   ? TR_OK
                   : store_blob_refs(p->srv->db, p->a, p->keys, p->n, ref, eb);
    for (int i = 0; e == TR_OK && i < p->n; i++) {
        if (ref[i])
            continue;
        struct tr_errbuf eb2 = {{0}};
        tr_err r = blob_remove(p->srv->blob, p->keys[i], &eb2);
        if (r != TR_OK) {
            p->st->failed++;
            log_warn("blob gc: cannot remove %s: %s", p->keys[i],
                     tr_errbuf_msg(&eb2, r));
            continue;
        }
        p->st->removed++;
        p->st->removed_bytes += (int64_t)p->sizes[i];
        log_debug("blob gc: removed %s (%llu bytes)", p->keys[i],
                  (unsigned long long)p->sizes[i]);
    }
    arena_destroy(p->a);
    p->a = arena_new();
    p->n = 0;
    return e;
}

static tr_err listed(void *ctx, const char *key, uint64_t size, int64_t mtime,
                     struct tr_errbuf *eb)
{
    struct page *p = ctx;
    if (p->stop != NULL && atomic_load(p->stop))
        return tr_fail(eb, TR_ERR_BUSY, "stopping");
    p->st->listed++;
    if (mtime >= p->cutoff) {
        p->st->young++;
        return TR_OK;
    }
    p->keys[p->n] = arena_strdup(p->a, key);
    p->sizes[p->n] = size;
    p->n++;
    return p->n == STORE_GC_PAGE ? flush(p, eb) : TR_OK;
}

#define OWNER_KEY "gc/database-id"

/* Invariant 4: the store names this database, or is marked for it now. */
static tr_err check_owner(struct terrace_server *srv, struct tr_errbuf *eb)
{
    struct arena *a = arena_new();
    char *id = NULL, *mark = NULL;
    size_t len = 0;
    tr_err e = store_site_claim(srv->db, a, "blob-gc-database-id",
                                util_new_id(a, "db"), &id, eb);
    if (e == TR_OK)
        e = blob_get(srv->blob, a, OWNER_KEY, 256, &mark, &len, eb);
    if (e == TR_ERR_NOT_FOUND)
        e = blob_put(srv->blob, OWNER_KEY, id, strlen(id), eb);
    else if (e == TR_OK && (len != strlen(id) || memcmp(mark, id, len) != 0))
        e = tr_fail(eb, TR_ERR_CONFLICT,
                    "the blob store belongs to another database (%.*s; this "
                    "one is %s): garbage collection removes nothing; if "
                    "this database is now the store's, remove the "
                    "object " OWNER_KEY,
                    (int)(len < 64 ? len : 64), mark, id);
    arena_destroy(a);
    return e;
}

/* Stale log chunks: one batch after cursor (updated; "" is the start),
 * or with cursor NULL every batch to the end. */
static tr_err chunks_pass(struct terrace_server *srv, char *cursor,
                          size_t cursor_size, struct blob_gc_stats *st,
                          struct tr_errbuf *eb)
{
    const char *after = cursor != NULL ? cursor : "";
    tr_err e = TR_OK;
    struct arena *a = arena_new();
    do {
        const char *next = NULL;
        int64_t k = 0;
        e = store_log_chunks_gc(srv->db, a, after, CHUNK_BATCH, &next, &k, eb);
        st->chunks += k;
        after = next;
        if (e == TR_OK && cursor != NULL)
            snprintf(cursor, cursor_size, "%s",
                     next != NULL && strlen(next) < cursor_size ? next : "");
    } while (e == TR_OK && cursor == NULL && after != NULL);
    arena_destroy(a);
    return e;
}

static tr_err pass(struct terrace_server *srv, int64_t grace_s,
                   _Atomic bool *stop, char *cursor, size_t cursor_size,
                   struct blob_gc_stats *st, struct tr_errbuf *eb)
{
    *st = (struct blob_gc_stats){0};
    if (srv->blob == NULL || srv->db == NULL)
        return TR_OK;
    tr_err e = check_owner(srv, eb);
    if (e != TR_OK)
        return e;
    /* mtime has whole seconds: "before now - grace" is at least grace
     * old */
    struct page *p = calloc(1, sizeof(*p));
    if (p == NULL)
        return tr_fail(eb, TR_ERR_NOMEM, "out of memory");
    p->srv = srv;
    p->stop = stop;
    p->cutoff = util_now_unix() - grace_s;
    p->a = arena_new();
    p->st = st;
    e = blob_list(srv->blob, "", listed, p, eb);
    if (e == TR_OK)
        e = flush(p, eb);
    arena_destroy(p->a);
    free(p);
    if (e == TR_OK)
        e = chunks_pass(srv, cursor, cursor_size, st, eb);
    return e;
}

tr_err blob_gc_pass(struct terrace_server *srv, int64_t grace_s,
                    struct blob_gc_stats *st, struct tr_errbuf *eb)
{
    return pass(srv, grace_s, NULL, NULL, 0, st, eb);
}

/* ---- the thread ---------------------------------------------------------- */

static void run_pass(struct blob_gc *g, bool *failing)
{
    struct terrace_server *srv = g->srv;
    struct blob_gc_stats st;
    struct tr_errbuf eb = {{0}};
    int64_t t0 = util_now_ms();
    tr_err e = pass(srv, srv->cfg.blob_gc_grace, &g->stop, g->chunk_cursor,
                    sizeof(g->chunk_cursor), &st, &eb);
    if (e != TR_OK && atomic_load(&g->stop))
        return;
    atomic_fetch_add(&srv->gc.removed, (unsigned long)st.removed);
    atomic_fetch_add(&srv->gc.removed_bytes, (unsigned long)st.removed_bytes);
    atomic_fetch_add(&srv->gc.failed, (unsigned long)st.failed);
    if (e != TR_OK) {
        atomic_fetch_add(&srv->gc.errors, 1);
        if (!*failing) /* once per outage, not every pass */
            log_warn("blob gc: %s", tr_errbuf_msg(&eb, e));
        *failing = true;
    } else {
        *failing = false;
    }
    if (st.removed > 0 || st.failed > 0 || st.chunks > 0)
        log_info("blob gc: %lld objects listed, %lld removed (%lld bytes), "
                 "%lld failed, %lld log chunks deleted, in %lld ms",
                 (long long)st.listed, (long long)st.removed,
                 (long long)st.removed_bytes, (long long)st.failed,
                 (long long)st.chunks, (long long)(util_now_ms() - t0));
    atomic_fetch_add(&srv->gc.passes, 1); /* last: the pass is over */
}

static void *loop(void *arg)
{
    struct blob_gc *g = arg;
    bool failing = false;
    int64_t interval = g->srv->cfg.blob_gc_interval;
    pthread_mutex_lock(&g->mu);
    while (!atomic_load(&g->stop)) {
        pthread_mutex_unlock(&g->mu);
        /* a follower looks again every second, so a new leader makes
         * its first pass soon after it is elected */
        bool lead = atomic_load(&g->srv->is_leader) != 0;
        if (lead)
            run_pass(g, &failing);
        struct timespec until = cond_after(lead ? interval * 1000 : 1000);
        pthread_mutex_lock(&g->mu);
        int rc = 0;
        while (!atomic_load(&g->stop) && rc != ETIMEDOUT)
            rc = pthread_cond_timedwait(&g->cv, &g->mu, &until);
    }
    pthread_mutex_unlock(&g->mu);
    return NULL;
}

tr_err blob_gc_start(struct terrace_server *srv, struct blob_gc **out,
                     struct tr_errbuf *eb)
{
    *out = NULL;
    if (srv->cfg.blob_gc_interval <= 0)
        return TR_OK;
    if (srv->cfg.blob_gc_grace < 60)
        log_warn("blob-gc-grace is %lld s: an object whose upload takes "
                 "longer to record may be removed",
                 (long long)srv->cfg.blob_gc_grace);
    struct blob_gc *g = calloc(1, sizeof(*g));
    if (g == NULL)
        return tr_fail(eb, TR_ERR_NOMEM, "out of memory");
    g->srv = srv;
    pthread_mutex_init(&g->mu, NULL);
    cond_init_mono(&g->cv);
    if (pthread_create(&g->thread, NULL, loop, g) != 0) {
        pthread_mutex_destroy(&g->mu);
        pthread_cond_destroy(&g->cv);
        free(g);
        return tr_fail(eb, TR_ERR_INTERNAL,
                       "cannot start the blob garbage collector");
    }
    *out = g;
    return TR_OK;
}

void blob_gc_stop(struct blob_gc *g)
{
    if (g == NULL)
        return;
    pthread_mutex_lock(&g->mu);
    atomic_store(&g->stop, true);
    pthread_cond_broadcast(&g->cv);
    pthread_mutex_unlock(&g->mu);
    pthread_join(g->thread, NULL);
    pthread_mutex_destroy(&g->mu);
    pthread_cond_destroy(&g->cv);
    free(g);
}
