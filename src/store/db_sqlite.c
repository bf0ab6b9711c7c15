/*
 * db_sqlite.c - SQLite backend for db.h (the demo's database).
 *
 * Each pooled connection opens the same file in WAL mode with a busy
 * timeout, so readers never block and writers queue.  $N placeholders are
 * rewritten to ?N before preparing.  Everything is read back as text.
 *
 * Each connection keeps its prepared statements in a small cache keyed by
 * the SQL text (compiling a statement costs more than running most of
 * ours); a statement is reset and its bindings cleared before it goes
 * back.  SQLite's allocator statistics are switched off once per process:
 * they take a global mutex on every allocation.
 *
 * libsqlite3 is loaded with dlopen on the first connect, so a primary or
 * secondary, which never opens SQLite, does not map it.
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#include <dlfcn.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "store/db.h"

#define STMT_CACHE 64

struct cached {
    char *sql; /* the rewritten text, malloc'd */
    uint64_t hash;
    sqlite3_stmt *st;
    uint64_t used; /* clock for least-recently-used eviction */
};

struct sq_conn {
    sqlite3 *h;
    uint64_t clock;
    struct cached cache[STMT_CACHE];
};

/* Every SQLite function this file calls. */
#define SQ_FUNCS(X)                                                            \
    X(sqlite3_bind_null)                                                       \
    X(sqlite3_bind_text)                                                       \
    X(sqlite3_busy_timeout)                                                    \
    X(sqlite3_changes64)                                                       \
    X(sqlite3_clear_bindings)                                                  \
    X(sqlite3_close)                                                           \
    X(sqlite3_close_v2)                                                        \
    X(sqlite3_column_bytes)                                                    \
    X(sqlite3_column_count)                                                    \
    X(sqlite3_column_name)                                                     \
    X(sqlite3_column_text)                                                     \
    X(sqlite3_config)                                                          \
    X(sqlite3_errmsg)                                                          \
    X(sqlite3_exec)                                                            \
    X(sqlite3_extended_errcode)                                                \
    X(sqlite3_finalize)                                                        \
    X(sqlite3_free)                                                            \
    X(sqlite3_open_v2)                                                         \
    X(sqlite3_prepare_v2)                                                      \
    X(sqlite3_prepare_v3)                                                      \
    X(sqlite3_reset)                                                           \
    X(sqlite3_step)

#define SQ_MEMBER(f) __typeof__(f) *f;
static struct {
    SQ_FUNCS(SQ_MEMBER)
} sq;
#undef SQ_MEMBER

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static char sq_load_error[256]; /* empty once SQLite is loaded */

static void global_setup(void)
{
    void *lib = dlopen("libsqlite3.so.0", RTLD_NOW | RTLD_LOCAL);
    if (lib == NULL) {
        const char *e = dlerror();
        snprintf(sq_load_error, sizeof(sq_load_error), "%s",
                 e ? e : "dlopen failed");
        return;
    }
    const char *e;
#define SQ_RESOLVE(f)                                                          \
    sq.f = (__typeof__(f) *)dlsym(lib, #f);                                    \
    if (sq.f == NULL) {                                                        \
        e = dlerror();                                                         \
        snprintf(sq_load_error, sizeof(sq_load_error), "%s",                   \
                 e ? e : "missing symbol " #f);                                \
        dlclose(lib);                                                          \
        return;                                                                \
    }
    SQ_FUNCS(SQ_RESOLVE)
#undef SQ_RESOLVE
    /* fails harmlessly if SQLite was already initialised */
    sq.sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
}

static tr_err sq_connect(const char *target, void **handle,
                         struct tr_errbuf *eb)
{
    pthread_once(&global_once, global_setup);
    if (sq_load_error[0] != '\0')
        return tr_fail(eb, TR_ERR_DB, "cannot load SQLite: %s", sq_load_error);
    sqlite3 *h = NULL;
    int flags =
        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
    if (sq.sqlite3_open_v2(target, &h, flags, NULL) != SQLITE_OK) {
        tr_err e = tr_fail(eb, TR_ERR_DB, "cannot open database %s: %s", target,
                           h ? sq.sqlite3_errmsg(h) : "out of memory");
        sq.sqlite3_close(h);
        return e;
    }
    sq.sqlite3_busy_timeout(h, 30000);
    const char *setup = "PRAGMA journal_mode=WAL;"
                        "PRAGMA synchronous=FULL;"
                        "PRAGMA foreign_keys=ON;";
    char *msg = NULL;
    if (sq.sqlite3_exec(h, setup, NULL, NULL, &msg) != SQLITE_OK) {
        tr_err e = tr_fail(eb, TR_ERR_DB, "cannot configure database: %s",
                           msg ? msg : "unknown");
        sq.sqlite3_free(msg);
        sq.sqlite3_close(h);
        return e;
    }
    struct sq_conn *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        sq.sqlite3_close(h);
        return TR_ERR_NOMEM;
    }
    c->h = h;
    *handle = c;
    return TR_OK;
}

static void sq_disconnect(void *handle)
{
    struct sq_conn *c = handle;
    if (c == NULL)
        return;
    for (int i = 0; i < STMT_CACHE; i++) {
        sq.sqlite3_finalize(c->cache[i].st);
        free(c->cache[i].sql);
    }
    sq.sqlite3_close_v2(c->h);
    free(c);
}

/* $12 -> ?12; our SQL never has '$' inside string literals. */
static char *rewrite(struct arena *a, const char *sql)
{
    char *out = arena_strdup(a, sql);
    for (char *p = out; *p; p++)
        if (*p == '$' && p[1] >= '0' && p[1] <= '9')
            *p = '?';
    return out;
}

static tr_err sq_error(sqlite3 *h, int rc, struct tr_errbuf *eb)
{
    int ext = sq.sqlite3_extended_errcode(h);
    if (ext == SQLITE_CONSTRAINT_UNIQUE || ext == SQLITE_CONSTRAINT_PRIMARYKEY)
        return tr_fail(eb, TR_ERR_CONFLICT, "%s", sq.sqlite3_errmsg(h));
    if (rc == SQLITE_BUSY || rc == SQLITE_LOCKED)
        return tr_fail(eb, TR_ERR_BUSY, "database busy: %s",
                       sq.sqlite3_errmsg(h));
    return tr_fail(eb, TR_ERR_DB, "database error: %s", sq.sqlite3_errmsg(h));
}

static uint64_t hash_text(const char *s)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

/* Compiles sql (exactly one statement), or finds it in the cache. */
static tr_err prepare(struct sq_conn *c, struct arena *a, const char *sql,
                      sqlite3_stmt **out, struct tr_errbuf *eb)
{
    char *text = rewrite(a, sql);
    uint64_t hash = hash_text(text);
    struct cached *victim = &c->cache[0];
    for (int i = 0; i < STMT_CACHE; i++) {
        struct cached *k = &c->cache[i];
        if (k->st != NULL && k->hash == hash && strcmp(k->sql, text) == 0) {
            k->used = ++c->clock;
            *out = k->st;
            return TR_OK;
        }
        if (k->used < victim->used)
            victim = k;
    }
    sqlite3_stmt *st = NULL;
    const char *tail = NULL;
    int rc = sq.sqlite3_prepare_v3(c->h, text, -1, SQLITE_PREPARE_PERSISTENT,
                                   &st, &tail);
    if (rc != SQLITE_OK)
        return sq_error(c->h, rc, eb);
    /* like PostgreSQL, refuse a second statement rather than skip it */
    sqlite3_stmt *extra = NULL;
    int more = SQLITE_OK;
    if (st != NULL && *tail != '\0')
        more = sq.sqlite3_prepare_v2(c->h, tail, -1, &extra, NULL);
    if (st == NULL || more != SQLITE_OK || extra != NULL) {
        sq.sqlite3_finalize(extra);
        sq.sqlite3_finalize(st);
        return tr_fail(eb, TR_ERR_DB, "expected exactly one statement");
    }
    char *copy = strdup(text);
    if (copy == NULL) {
        sq.sqlite3_finalize(st);
        return TR_ERR_NOMEM;
    }
    sq.sqlite3_finalize(victim->st);
    free(victim->sql);
    victim->sql = copy;
    victim->hash = hash;
    victim->st = st;
    victim->used = ++c->clock;
    *out = st;
    return TR_OK;
}

static tr_err sq_query(void *handle, struct arena *a, const char *sql, int n,
                       const char *const *params, struct db_rows **rows,
                       int64_t *affected, struct tr_errbuf *eb)
{
    struct sq_conn *conn = handle;
    sqlite3 *h = conn->h;
    sqlite3_stmt *st = NULL;
    tr_err e = prepare(conn, a, sql, &st, eb);
    if (e != TR_OK)
        return e;
    int rc;
    for (int i = 0; i < n; i++) {
        if (params[i] == NULL)
            rc = sq.sqlite3_bind_null(st, i + 1);
        else
            rc = sq.sqlite3_bind_text(st, i + 1, params[i], -1, SQLITE_STATIC);
        if (rc != SQLITE_OK) {
            e = sq_error(h, rc, eb);
            goto fail;
        }
    }
    int ncols = sq.sqlite3_column_count(st);
    struct buf cells;
    buf_init(&cells, 0);
    int nrows = 0;
    while ((rc = sq.sqlite3_step(st)) == SQLITE_ROW) {
        for (int c = 0; c < ncols; c++) {
            const unsigned char *t = sq.sqlite3_column_text(st, c);
            char *v = NULL;
            if (t != NULL)
                v = arena_strndup(a, (const char *)t,
                                  (size_t)sq.sqlite3_column_bytes(st, c));
            if (buf_append(&cells, &v, sizeof(v)) != TR_OK) {
                buf_free(&cells);
                e = tr_fail(eb, TR_ERR_NOMEM, "out of memory");
                goto fail;
            }
        }
        nrows++;
    }
    if (rc != SQLITE_DONE) {
        buf_free(&cells);
        e = sq_error(h, rc, eb);
        goto fail;
    }
    if (rows != NULL) {
        struct db_rows *r = arena_alloc(a, sizeof(*r));
        r->nrows = nrows;
        r->ncols = ncols;
        r->cols = arena_alloc(a, sizeof(char *) * (size_t)(ncols + 1));
        for (int c = 0; c < ncols; c++)
            r->cols[c] = arena_strdup(a, sq.sqlite3_column_name(st, c));
        r->cells = arena_memdup(a, cells.data ? cells.data : "",
                                cells.len ? cells.len : 1);
        *rows = r;
    }
    buf_free(&cells);
    if (affected != NULL)
        *affected = sq.sqlite3_changes64(h);
fail:
    sq.sqlite3_reset(st);
    sq.sqlite3_clear_bindings(st);
    return e;
}

const struct db_backend db_sqlite_backend = {
    .connect = sq_connect,
    .disconnect = sq_disconnect,
    .query = sq_query,
    .begin_sql = "BEGIN IMMEDIATE",
};
