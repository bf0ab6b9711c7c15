/*
 * db.c - connection pool and backend-neutral helpers for db.h.
 *
 * The pool is a fixed array of up to pool_size connections; a mutex and
 * condition variable hand them out.  db_open() opens the first one (so a
 * bad target fails at start); the others are opened when every open one
 * is busy, so an idle node holds one connection and its memory (an SQLite
 * connection's schema and page cache is ~100 kB, a libpq connection's
 * buffers ~35 kB and a PostgreSQL backend, bench/RESULTS.md) and the
 * pool grows only to the concurrency it has seen.  It shrinks back:
 * db_acquire() hands out the first free slot, so the last one is taken
 * only while all others are busy, and once nobody has taken it for
 * idle_close_ms a db_release() closes it (a primary's burst of 100
 * secondaries joining at once left it at five connections for good).  A
 * connection that
 * cannot be opened then is not an error: the caller waits for a busy one,
 * as it would with a full pool.  Slots are filled under the mutex and
 * never move, so handed-out pointers stay valid.  Connections are not
 * reopened here: a backend reconnects itself when it finds its link
 * broken.
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#include "store/db.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "core/check.h"
#include "core/fault.h"
#include "core/log.h"
#include "core/util.h"

/* the last connection, unused this long, is closed (db.c's header) */
#define IDLE_CLOSE_MS 60000

struct db_conn {
    struct db *db;
    void *handle;
    bool busy;
    bool in_tx;
    int64_t used_ms; /* handed out or released last (monotonic) */
};

struct db {
    enum db_kind kind;
    const struct db_backend *be;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int n;       /* open connections: conns[0..n-1] */
    int cap;     /* pool_size */
    int opening; /* connects in progress outside the mutex */
    int64_t idle_close_ms;
    char *target;
    struct db_conn *conns;
    struct read_cache *rc; /* the node's, or NULL (db_set_read_cache()) */
};

tr_err db_open(enum db_kind kind, const char *target, int pool_size,
               struct db **out, struct tr_errbuf *eb)
{
    if (pool_size < 1)
        pool_size = 1;
    struct db *db = calloc(1, sizeof(*db));
    if (db == NULL)
        return TR_ERR_NOMEM;
    db->kind = kind;
    db->be = kind == DB_PG ? &db_pg_backend : &db_sqlite_backend;
    pthread_mutex_init(&db->mu, NULL);
    pthread_cond_init(&db->cv, NULL);
    db->cap = pool_size;
    db->idle_close_ms = IDLE_CLOSE_MS;
    db->conns = calloc((size_t)pool_size, sizeof(struct db_conn));
    db->target = strdup(target);
    if (db->conns == NULL || db->target == NULL) {
        db_close(db);
        return TR_ERR_NOMEM;
    }
    tr_err e = db->be->connect(target, &db->conns[0].handle, eb);
    if (e != TR_OK) {
        db_close(db);
        return e;
    }
    db->conns[0].db = db;
    db->n = 1;
    *out = db;
    return TR_OK;
}

void db_close(struct db *db)
{
    if (db == NULL)
        return;
    for (int i = 0; i < db->n; i++)
        db->be->disconnect(db->conns[i].handle);
    free(db->conns);
    free(db->target);
    pthread_mutex_destroy(&db->mu);
    pthread_cond_destroy(&db->cv);
    free(db);
}

enum db_kind db_kind(const struct db *db)
{
    return db->kind;
}

void db_set_read_cache(struct db *db, struct read_cache *rc)
{
    db->rc = rc;
}

struct read_cache *db_read_cache(const struct db *db)
{
    return db->rc;
}

void db_set_idle_close(struct db *db, int64_t ms)
{
    pthread_mutex_lock(&db->mu);
    db->idle_close_ms = ms;
    pthread_mutex_unlock(&db->mu);
}

int db_pool_open(struct db *db)
{
    pthread_mutex_lock(&db->mu);
    int n = db->n;
    pthread_mutex_unlock(&db->mu);
    return n;
}

void db_pool_stats(struct db *db, int *in_use, int *size)
{
    int busy = 0;
    pthread_mutex_lock(&db->mu);
    for (int i = 0; i < db->n; i++)
        busy += db->conns[i].busy;
    pthread_mutex_unlock(&db->mu);
    *in_use = busy;
    *size = db->cap;
}

/* Opens one more connection with the mutex released; called with it held
 * and returns with it held.  NULL when the connect failed. */
static struct db_conn *grow(struct db *db)
{
    db->opening++;
    pthread_mutex_unlock(&db->mu);
    void *h = NULL;
    struct tr_errbuf eb = {{0}};
    tr_err e = db->be->connect(db->target, &h, &eb);
    pthread_mutex_lock(&db->mu);
    db->opening--;
    if (e != TR_OK) {
        log_warn("cannot open another database connection (%s); waiting "
                 "for one of the %d open",
                 tr_errbuf_msg(&eb, e), db->n);
        return NULL;
    }
    struct db_conn *c = &db->conns[db->n++];
    c->db = db;
    c->handle = h;
    c->busy = true;
    c->used_ms = util_mono_ms();
    return c;
}

struct db_conn *db_acquire(struct db *db)
{
    bool failed = false; /* one connect failed: do not retry in a loop */
    pthread_mutex_lock(&db->mu);
    for (;;) {
        for (int i = 0; i < db->n; i++) {
            if (!db->conns[i].busy) {
                db->conns[i].busy = true;
                db->conns[i].used_ms = util_mono_ms();
                pthread_mutex_unlock(&db->mu);
                return &db->conns[i];
            }
        }
        if (!failed && db->n + db->opening < db->cap) {
            struct db_conn *c = grow(db);
            if (c != NULL) {
                pthread_mutex_unlock(&db->mu);
                return c;
            }
            failed = true; /* wait for a busy one; one may be free now */
            continue;
        }
        pthread_cond_wait(&db->cv, &db->mu);
    }
}

void db_release(struct db_conn *c)
{
    if (c == NULL)
        return;
    if (c->in_tx)
        db_rollback(c);
    struct db *db = c->db;
    int64_t now = util_mono_ms();
    void *drop = NULL;
    pthread_mutex_lock(&db->mu);
    c->busy = false;
    c->used_ms = now;
    /* the last slot, free and untaken for idle_close_ms: closed (not
     * handed out, so no pointer to it is held; grow() refills it) */
    struct db_conn *last = &db->conns[db->n - 1];
    if (db->n > 1 && last != c && !last->busy &&
        now - last->used_ms >= db->idle_close_ms) {
        drop = last->handle;
        *last = (struct db_conn){0};
        db->n--;
    }
    pthread_cond_signal(&db->cv);
    pthread_mutex_unlock(&db->mu);
    if (drop != NULL)
        db->be->disconnect(drop);
}

tr_err db_query(struct db_conn *c, struct arena *a, const char *sql, int n,
                const char *const *params, struct db_rows **rows,
                int64_t *affected, struct tr_errbuf *eb)
{
    TR_ASSERT(c->busy);
    if (fault_hit("db.query"))
        return tr_fail(eb, TR_ERR_DB, "injected fault");
    db_trace(sql, n);
    return c->db->be->query(c->handle, a, sql, n, params, rows, affected, eb);
}

tr_err db_page(struct db_conn *c, struct arena *a, const char *select_sql,
               const char *count_sql, int n, const char *const *params,
               int offset, int limit, struct db_rows **rows, int64_t *total,
               struct tr_errbuf *eb)
{
    const char **p = arena_alloc(a, sizeof(*p) * (size_t)(n + 2));
    for (int i = 0; i < n; i++)
        p[i] = params[i];
    p[n] = arena_printf(a, "%d", limit);
    p[n + 1] = arena_printf(a, "%d", offset);
    const char *sql =
        arena_printf(a, "%s LIMIT $%d OFFSET $%d", select_sql, n + 1, n + 2);
    struct db_rows *cnt = NULL;
    tr_err e = db_query(c, a, sql, n + 2, p, rows, NULL, eb);
    if (e == TR_OK)
        e = db_query(c, a, count_sql, n, params, &cnt, NULL, eb);
    if (e == TR_OK && total != NULL)
        *total = db_get_i64(cnt, 0, "n");
    return e;
}

tr_err db_begin(struct db_conn *c, struct tr_errbuf *eb)
{
    if (TR_NEVER(c->in_tx))
        return tr_fail(eb, TR_ERR_INTERNAL, "a transaction is already open");
    struct arena *a = arena_new();
    tr_err e = db_query(c, a, c->db->be->begin_sql, 0, NULL, NULL, NULL, eb);
    arena_destroy(a);
    if (e == TR_OK)
        c->in_tx = true;
    return e;
}

tr_err db_commit(struct db_conn *c, struct tr_errbuf *eb)
{
    struct arena *a = arena_new();
    tr_err e = db_query(c, a, "COMMIT", 0, NULL, NULL, NULL, eb);
    arena_destroy(a);
    if (e != TR_OK) {
        db_rollback(c);
        return e;
    }
    c->in_tx = false;
    return TR_OK;
}

void db_rollback(struct db_conn *c)
{
    struct arena *a = arena_new();
    /* straight to the backend: a rollback cannot report an injected fault */
    c->db->be->query(c->handle, a, "ROLLBACK", 0, NULL, NULL, NULL, NULL);
    arena_destroy(a);
    c->in_tx = false;
}

const char *db_for_update(const struct db_conn *c)
{
    return c->db->kind == DB_PG ? " FOR UPDATE" : "";
}

const char *db_skip_locked(const struct db_conn *c)
{
    return c->db->kind == DB_PG ? " FOR UPDATE SKIP LOCKED" : "";
}

enum db_kind db_conn_kind(const struct db_conn *c)
{
    return c->db->kind;
}

const char *db_cell(const struct db_rows *r, int row, int col)
{
    if (!TR_ALWAYS(row >= 0 && row < r->nrows && col >= 0 && col < r->ncols))
        return NULL;
    return r->cells[row * r->ncols + col];
}

const char *db_get(const struct db_rows *r, int row, const char *name)
{
    if (r == NULL || row < 0 || row >= r->nrows)
        return NULL;
    /* the first byte first: a page of 100 workspaces reads 27 columns of
     * each row by name, and this is most of what that costs */
    for (int i = 0; i < r->ncols; i++)
        if (r->cols[i][0] == name[0] && strcmp(r->cols[i], name) == 0)
            return r->cells[row * r->ncols + i];
    return NULL;
}

int64_t db_get_i64(const struct db_rows *r, int row, const char *name)
{
    const char *s = db_get(r, row, name);
    return s == NULL ? 0 : strtoll(s, NULL, 10);
}

bool db_get_bool(const struct db_rows *r, int row, const char *name)
{
    const char *s = db_get(r, row, name);
    return s != NULL && (s[0] == '1' || s[0] == 't');
}
