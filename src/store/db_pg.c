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
 * SPDX-License-Identifier: MPL-2.0
 */
#include <libpq-fe.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/db.h"

#define STMT_CACHE 256

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
    if (pc->n >= STMT_CACHE || PQtransactionStatus(pc->c) == PQTRANS_INERROR)
        return NULL;
    snprintf(name, nlen, "s%d", pc->n);
    PGresult *r = PQprepare(pc->c, name, sql, n, NULL);
    bool ok = r != NULL && PQresultStatus(r) == PGRES_COMMAND_OK;
    PQclear(r);
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
    PGconn *c = PQconnectdb(target);
    if (c == NULL || PQstatus(c) != CONNECTION_OK) {
        tr_err e = tr_fail(eb, TR_ERR_DB, "cannot connect to postgresql: %s",
                           c ? PQerrorMessage(c) : "out of memory");
        PQfinish(c);
        return e;
    }
    PGresult *r = PQexec(c, "SET client_min_messages = warning");
    PQclear(r);
    struct pg_conn *pc = calloc(1, sizeof(*pc));
    if (pc == NULL) {
        PQfinish(c);
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
    PQfinish(pc->c);
    free(pc);
}

static void clear_result(void *p)
{
    PQclear(p);
}

static tr_err pg_query(void *handle, struct arena *a, const char *sql, int n,
                       const char *const *params, struct db_rows **rows,
                       int64_t *affected, struct tr_errbuf *eb)
{
    struct pg_conn *pc = handle;
    PGconn *c = pc->c;
    if (PQstatus(c) != CONNECTION_OK) {
        PQreset(c);
        forget(pc);
    }
    char name[16];
    const char *stmt = statement(pc, sql, n, name, sizeof(name));
    PGresult *r = stmt != NULL
                      ? PQexecPrepared(c, stmt, n, params, NULL, NULL, 0)
                      : PQexecParams(c, sql, n, NULL, params, NULL, NULL, 0);
    if (r == NULL)
        return tr_fail(eb, TR_ERR_DB, "postgresql: %s", PQerrorMessage(c));
    arena_on_destroy(a, clear_result, r);
    ExecStatusType st = PQresultStatus(r);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
        const char *msg = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);
        if (msg == NULL)
            msg = PQerrorMessage(c);
        if (state != NULL && strcmp(state, "23505") == 0)
            return tr_fail(eb, TR_ERR_CONFLICT, "%s", msg);
        if (state != NULL &&
            (strcmp(state, "40001") == 0 || strcmp(state, "40P01") == 0))
            return tr_fail(eb, TR_ERR_BUSY, "%s", msg);
        return tr_fail(eb, TR_ERR_DB, "database error: %s", msg);
    }
    if (rows != NULL) {
        struct db_rows *out = arena_alloc(a, sizeof(*out));
        out->nrows = PQntuples(r);
        out->ncols = PQnfields(r);
        out->cols = arena_alloc(a, sizeof(char *) * (size_t)(out->ncols + 1));
        for (int i = 0; i < out->ncols; i++)
            out->cols[i] = PQfname(r, i);
        size_t cells = (size_t)out->nrows * (size_t)out->ncols;
        out->cells = arena_alloc(a, sizeof(char *) * (cells + 1));
        for (int i = 0; i < out->nrows; i++)
            for (int j = 0; j < out->ncols; j++)
                out->cells[i * out->ncols + j] =
                    PQgetisnull(r, i, j) ? NULL : PQgetvalue(r, i, j);
        *rows = out;
    }
    if (affected != NULL) {
        const char *t = PQcmdTuples(r);
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
