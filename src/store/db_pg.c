/*
 * db_pg.c - PostgreSQL backend for db.h (libpq, text protocol).
 *
 * Broken connections.  A pooled connection outlives PostgreSQL restarts,
 * so before each statement the connection is checked: libpq's status, and
 * (when idle) whether the server has closed the socket or sent a FATAL,
 * which a poll with no wait and PQconsumeInput see without a round trip.
 * A broken connection is reset before use.  If the link breaks during a
 * statement, the statement is run again once on a fresh connection only
 * when its outcome cannot matter: a read (SELECT, BEGIN, ROLLBACK) outside
 * a transaction.  A write whose outcome is unknown, or any statement inside
 * a transaction (which the server has rolled back), is not retried.  While
 * the server cannot be reached, statements fail with TR_ERR_UNAVAILABLE
 * (503 with Retry-After), never TR_ERR_DB (500).
 *
 * A statement that fails inside a transaction leaves the transaction for
 * the caller to roll back.  SQLSTATE 23505 (unique violation) maps to
 * TR_ERR_CONFLICT, 40001/40P01 (serialization, deadlock) to TR_ERR_BUSY,
 * class 08 (connection) and 57P01-57P03 (shutdown, starting up) to
 * TR_ERR_UNAVAILABLE.
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
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "store/db.h"

#define STMT_CACHE 256

/* Every libpq function this file calls. */
#define PQ_FUNCS(X)                                                            \
    X(PQclear)                                                                 \
    X(PQconsumeInput)                                                          \
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
    X(PQsocket)                                                                \
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
    bool in_tx;   /* a transaction was open after the last statement */
    bool tx_lost; /* the link broke inside it: only ROLLBACK may run */
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

/* Whether the connection is usable: libpq thinks so and, if nothing is
 * in flight, the server has not closed it (an idle socket that polls
 * readable carries a FATAL or EOF, or a notice PQconsumeInput absorbs). */
static bool alive(PGconn *c)
{
    if (pq.PQstatus(c) != CONNECTION_OK)
        return false;
    struct pollfd p = {.fd = pq.PQsocket(c), .events = POLLIN};
    if (p.fd < 0)
        return false;
    if (poll(&p, 1, 0) <= 0)
        return true;
    if (p.revents & (POLLERR | POLLHUP | POLLNVAL))
        return false;
    return pq.PQconsumeInput(c) == 1 && pq.PQstatus(c) == CONNECTION_OK;
}

/* Resets a broken connection; false when the server is still out of
 * reach. */
static bool revive(struct pg_conn *pc)
{
    if (alive(pc->c))
        return true;
    if (pc->in_tx) /* the server rolled it back; statements after it must
                      not run in autocommit as if nothing happened */
        pc->tx_lost = true;
    pc->in_tx = false;
    forget(pc);
    pq.PQreset(pc->c);
    if (pq.PQstatus(pc->c) != CONNECTION_OK)
        return false;
    PGresult *r = pq.PQexec(pc->c, "SET client_min_messages = warning");
    pq.PQclear(r);
    return true;
}

/* db errors are one line: libpq's message up to its first newline. */
static tr_err unreachable(struct pg_conn *pc, struct tr_errbuf *eb)
{
    const char *m = pq.PQerrorMessage(pc->c);
    int len = (int)strcspn(m, "\n");
    return tr_fail(eb, TR_ERR_UNAVAILABLE, "database unreachable: %.*s", len,
                   len > 0 ? m : "connection lost");
}

/* A statement whose repetition changes nothing when run outside a
 * transaction. */
static bool repeatable(const char *sql)
{
    while (*sql == ' ' || *sql == '\n' || *sql == '\t')
        sql++;
    return strncasecmp(sql, "SELECT", 6) == 0 ||
           strncasecmp(sql, "BEGIN", 5) == 0 ||
           strncasecmp(sql, "ROLLBACK", 8) == 0;
}

/* Whether a failed statement failed because the server went away. */
static bool lost(PGconn *c, const PGresult *r)
{
    if (pq.PQstatus(c) != CONNECTION_OK)
        return true;
    const char *state =
        r ? pq.PQresultErrorField((PGresult *)r, PG_DIAG_SQLSTATE) : NULL;
    if (state == NULL)
        return r == NULL;
    return strncmp(state, "08", 2) == 0 || strcmp(state, "57P01") == 0 ||
           strcmp(state, "57P02") == 0 || strcmp(state, "57P03") == 0;
}

static PGresult *exec(struct pg_conn *pc, const char *sql, int n,
                      const char *const *params)
{
    char name[16];
    const char *stmt = statement(pc, sql, n, name, sizeof(name));
    return stmt != NULL
               ? pq.PQexecPrepared(pc->c, stmt, n, params, NULL, NULL, 0)
               : pq.PQexecParams(pc->c, sql, n, NULL, params, NULL, NULL, 0);
}

static bool failed(const PGresult *r)
{
    ExecStatusType st = r ? pq.PQresultStatus(r) : PGRES_FATAL_ERROR;
    return st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK;
}

static tr_err pg_query(void *handle, struct arena *a, const char *sql, int n,
                       const char *const *params, struct db_rows **rows,
                       int64_t *affected, struct tr_errbuf *eb)
{
    struct pg_conn *pc = handle;
    PGconn *c = pc->c;
    bool rollback = strcmp(sql, "ROLLBACK") == 0;
    if (rollback && !alive(c)) { /* a broken link has no transaction */
        pc->in_tx = false;
        pc->tx_lost = false;
        return TR_OK;
    }
    if (!revive(pc))
        return unreachable(pc, eb);
    if (pc->tx_lost) {
        if (!rollback)
            return tr_fail(eb, TR_ERR_UNAVAILABLE,
                           "database connection lost inside a transaction");
        pc->tx_lost = false;
        return TR_OK; /* the server already rolled it back */
    }
    bool outside = pq.PQtransactionStatus(c) == PQTRANS_IDLE;
    PGresult *r = exec(pc, sql, n, params);
    if (failed(r) && lost(c, r) && outside && repeatable(sql)) {
        pq.PQclear(r);
        r = NULL;
        if (revive(pc))
            r = exec(pc, sql, n, params);
    }
    if (r == NULL || (failed(r) && lost(c, r))) {
        tr_err e = unreachable(pc, eb);
        pq.PQclear(r);
        return e;
    }
    PGTransactionStatusType ts = pq.PQtransactionStatus(c);
    pc->in_tx = ts == PQTRANS_INTRANS || ts == PQTRANS_INERROR;
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
