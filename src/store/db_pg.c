/*
 * db_pg.c - PostgreSQL backend for db.h (libpq, text protocol).
 *
 * A connection found broken before a statement is reset once; a statement
 * that fails inside a transaction leaves the transaction for the caller to
 * roll back.  SQLSTATE 23505 (unique violation) maps to TR_ERR_CONFLICT,
 * 40001/40P01 (serialization, deadlock) to TR_ERR_BUSY.
 *
 * Statements are prepared once per connection (named s<N>, cached by SQL
 * text) and then executed by name, which saves a parse and plan per call.
 * A statement that fails to prepare runs unprepared; a reset connection
 * forgets its cache, since the server forgot the statements.
 *
 * libpq is loaded with dlopen on the first connect, so a daemon that never
 * uses PostgreSQL does not map it (and the Kerberos/LDAP/SASL libraries it
 * pulls in).  The function table keeps libpq-fe.h's prototypes.
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#include <dlfcn.h>
#include <libpq-fe.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/db.h"

#define STMT_CACHE 256

/* Every libpq function this file calls. */
#define PQ_FUNCS(X)                                                            \
    X(PQclear)                                                                 \
    X(PQcmdTuples)                                                             \
    X(PQconnectdb)                                                             \
    X(PQerrorMessage)                                                          \
    X(PQexec)                                                                  \
    X(PQexecParams)                                                            \
    X(PQexecPrepared)                                                          \
    X(PQfinish)                                                                \
    X(PQfname)                                                                 \
    X(PQgetisnull)                                                             \
    X(PQgetvalue)                                                              \
    X(PQnfields)                                                               \
    X(PQntuples)                                                               \
    X(PQprepare)                                                               \
    X(PQreset)                                                                 \
    X(PQresultErrorField)                                                      \
    X(PQresultStatus)                                                          \
    X(PQstatus)                                                                \
    X(PQtransactionStatus)

#define PQ_MEMBER(f) __typeof__(f) *f;
static struct {
    PQ_FUNCS(PQ_MEMBER)
} pq;
#undef PQ_MEMBER

static pthread_once_t pq_once = PTHREAD_ONCE_INIT;
static char pq_error[256]; /* empty once libpq is loaded */
static void *pq_lib;       /* the dlopen handle, for db_pg_symbol() */

static void pq_load(void)
{
    void *lib = dlopen("libpq.so.5", RTLD_NOW | RTLD_LOCAL);
    if (lib == NULL) {
        const char *e = dlerror();
        snprintf(pq_error, sizeof(pq_error), "%s", e ? e : "dlopen failed");
        return;
    }
    const char *e;
#define PQ_RESOLVE(f)                                                          \
    pq.f = (__typeof__(f) *)dlsym(lib, #f);                                    \
    if (pq.f == NULL) {                                                        \
        e = dlerror();                                                         \
        snprintf(pq_error, sizeof(pq_error), "%s",                             \
                 e ? e : "missing symbol " #f);                                \
        dlclose(lib);                                                          \
        return;                                                                \
    }
    PQ_FUNCS(PQ_RESOLVE)
#undef PQ_RESOLVE
    pq_lib = lib;
}

struct prepared {
    uint64_t hash;
    char *sql;
};

struct pg_conn {
    PGconn *c;
    int n;
    struct prepared cache[STMT_CACHE];
};

static void forget(struct pg_conn *pc)
{
    for (int i = 0; i < pc->n; i++)
        free(pc->cache[i].sql);
    pc->n = 0;
}

static uint64_t hash_text(const char *s)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

/* The name of sql's prepared statement, preparing it if needed; NULL when
 * it cannot be prepared (then the caller runs it unprepared). */
static const char *statement(struct pg_conn *pc, const char *sql, int n,
                             char *name, size_t nlen)
{
    uint64_t h = hash_text(sql);
    for (int i = 0; i < pc->n; i++) {
        if (pc->cache[i].hash == h && strcmp(pc->cache[i].sql, sql) == 0) {
            snprintf(name, nlen, "s%d", i);
            return name;
        }
    }
    if (pc->n >= STMT_CACHE || pq.PQtransactionStatus(pc->c) == PQTRANS_INERROR)
        return NULL;
    snprintf(name, nlen, "s%d", pc->n);
    PGresult *r = pq.PQprepare(pc->c, name, sql, n, NULL);
    bool ok = r != NULL && pq.PQresultStatus(r) == PGRES_COMMAND_OK;
    pq.PQclear(r);
    char *copy = ok ? strdup(sql) : NULL;
    if (copy == NULL)
        return NULL;
    pc->cache[pc->n].hash = h;
    pc->cache[pc->n].sql = copy;
    pc->n++;
    return name;
}

static tr_err pg_connect(const char *target, void **handle,
                         struct tr_errbuf *eb)
{
    pthread_once(&pq_once, pq_load);
    if (pq_error[0] != '\0')
        return tr_fail(eb, TR_ERR_DB, "cannot load libpq: %s", pq_error);
    PGconn *c = pq.PQconnectdb(target);
    if (c == NULL || pq.PQstatus(c) != CONNECTION_OK) {
        tr_err e = tr_fail(eb, TR_ERR_DB, "cannot connect to postgresql: %s",
                           c ? pq.PQerrorMessage(c) : "out of memory");
        pq.PQfinish(c);
        return e;
    }
    PGresult *r = pq.PQexec(c, "SET client_min_messages = warning");
    pq.PQclear(r);
    struct pg_conn *pc = calloc(1, sizeof(*pc));
    if (pc == NULL) {
        pq.PQfinish(c);
        return TR_ERR_NOMEM;
    }
    pc->c = c;
    *handle = pc;
    return TR_OK;
}

static void pg_disconnect(void *handle)
{
    struct pg_conn *pc = handle;
    if (pc == NULL)
        return;
    forget(pc);
    pq.PQfinish(pc->c);
    free(pc);
}

static void clear_result(void *p)
{
    pq.PQclear(p);
}

static tr_err pg_query(void *handle, struct arena *a, const char *sql, int n,
                       const char *const *params, struct db_rows **rows,
                       int64_t *affected, struct tr_errbuf *eb)
{
    struct pg_conn *pc = handle;
    PGconn *c = pc->c;
    if (pq.PQstatus(c) != CONNECTION_OK) {
        pq.PQreset(c);
        forget(pc);
    }
    char name[16];
    const char *stmt = statement(pc, sql, n, name, sizeof(name));
    PGresult *r = stmt != NULL
                      ? pq.PQexecPrepared(c, stmt, n, params, NULL, NULL, 0)
                      : pq.PQexecParams(c, sql, n, NULL, params, NULL, NULL, 0);
    if (r == NULL)
        return tr_fail(eb, TR_ERR_DB, "postgresql: %s", pq.PQerrorMessage(c));
    arena_on_destroy(a, clear_result, r);
    ExecStatusType st = pq.PQresultStatus(r);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        const char *state = pq.PQresultErrorField(r, PG_DIAG_SQLSTATE);
        const char *msg = pq.PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);
        if (msg == NULL)
            msg = pq.PQerrorMessage(c);
        if (state != NULL && strcmp(state, "23505") == 0)
            return tr_fail(eb, TR_ERR_CONFLICT, "%s", msg);
        if (state != NULL &&
            (strcmp(state, "40001") == 0 || strcmp(state, "40P01") == 0))
            return tr_fail(eb, TR_ERR_BUSY, "%s", msg);
        return tr_fail(eb, TR_ERR_DB, "database error: %s", msg);
    }
    if (rows != NULL) {
        struct db_rows *out = arena_alloc(a, sizeof(*out));
        out->nrows = pq.PQntuples(r);
        out->ncols = pq.PQnfields(r);
        out->cols = arena_alloc(a, sizeof(char *) * (size_t)(out->ncols + 1));
        for (int i = 0; i < out->ncols; i++)
            out->cols[i] = pq.PQfname(r, i);
        size_t cells = (size_t)out->nrows * (size_t)out->ncols;
        out->cells = arena_alloc(a, sizeof(char *) * (cells + 1));
        for (int i = 0; i < out->nrows; i++)
            for (int j = 0; j < out->ncols; j++)
                out->cells[i * out->ncols + j] =
                    pq.PQgetisnull(r, i, j) ? NULL : pq.PQgetvalue(r, i, j);
        *rows = out;
    }
    if (affected != NULL) {
        const char *t = pq.PQcmdTuples(r);
        *affected = (t && *t) ? strtoll(t, NULL, 10) : 0;
    }
    return TR_OK;
}

const struct db_backend db_pg_backend = {
    .connect = pg_connect,
    .disconnect = pg_disconnect,
    .query = pg_query,
    .begin_sql = "BEGIN",
};

void *db_pg_symbol(const char *name, struct tr_errbuf *eb)
{
    pthread_once(&pq_once, pq_load);
    if (pq_error[0] != '\0') {
        tr_fail(eb, TR_ERR_DB, "cannot load libpq: %s", pq_error);
        return NULL;
    }
    void *f = dlsym(pq_lib, name);
    if (f == NULL)
        tr_fail(eb, TR_ERR_DB, "cannot load libpq: no %s", name);
    return f;
}
