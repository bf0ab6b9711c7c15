/*
 * db_pg.c - PostgreSQL backend for db.h (libpq, text protocol).
 *
 * A connection found broken before a statement is reset once; a statement
 * that fails inside a transaction leaves the transaction for the caller to
 * roll back.  SQLSTATE 23505 (unique violation) maps to TR_ERR_CONFLICT,
 * 40001/40P01 (serialization, deadlock) to TR_ERR_BUSY.
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#include <libpq-fe.h>
#include <stdlib.h>
#include <string.h>

#include "store/db.h"

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
    *handle = c;
    return TR_OK;
}

static void pg_disconnect(void *handle)
{
    PQfinish(handle);
}

static void clear_result(void *p)
{
    PQclear(p);
}

static tr_err pg_query(void *handle, struct arena *a, const char *sql, int n,
                       const char *const *params, struct db_rows **rows,
                       int64_t *affected, struct tr_errbuf *eb)
{
    PGconn *c = handle;
    if (PQstatus(c) != CONNECTION_OK)
        PQreset(c);
    PGresult *r = PQexecParams(c, sql, n, NULL, params, NULL, NULL, 0);
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
