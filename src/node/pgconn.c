/*
 * pgconn.c - a dedicated PostgreSQL connection with deadlines (pgconn.h).
 *
 * libpq comes from the loader in store/db_pg.c (db_pg_symbol()), so the
 * daemon maps it once and only when it uses PostgreSQL.  Statements are
 * sent asynchronously and the socket is polled until the deadline: a
 * server that stops answering fails the statement instead of blocking the
 * thread, which is what lets a leader step down within a second or two.
 *
 * Server side, the session gets TCP keepalives, a tcp_user_timeout and an
 * idle_session_timeout (PostgreSQL 14 and later) so that the session of a
 * node that vanished without closing its socket ends within seconds, and
 * with it the locks it held.
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#include "node/pgconn.h"

#include <libpq-fe.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/util.h"
#include "store/db.h"

/* Every libpq function this file calls. */
#define PGC_FUNCS(X)                                                           \
    X(PQclear)                                                                 \
    X(PQconnectdbParams)                                                       \
    X(PQconsumeInput)                                                          \
    X(PQerrorMessage)                                                          \
    X(PQfinish)                                                                \
    X(PQfreemem)                                                               \
    X(PQgetResult)                                                             \
    X(PQgetvalue)                                                              \
    X(PQisBusy)                                                                \
    X(PQnfields)                                                               \
    X(PQnotifies)                                                              \
    X(PQntuples)                                                               \
    X(PQresultErrorMessage)                                                    \
    X(PQresultStatus)                                                          \
    X(PQsendQuery)                                                             \
    X(PQsocket)                                                                \
    X(PQstatus)

#define PGC_MEMBER(f) __typeof__(f) *f;
static struct {
    PGC_FUNCS(PGC_MEMBER)
} pq;
#undef PGC_MEMBER

static pthread_once_t pq_once = PTHREAD_ONCE_INIT;
static struct tr_errbuf pq_eb; /* empty once every function resolved */

static void pq_load(void)
{
#define PGC_RESOLVE(f)                                                         \
    pq.f = (__typeof__(f) *)db_pg_symbol(#f, &pq_eb);                          \
    if (pq.f == NULL)                                                          \
        return;
    PGC_FUNCS(PGC_RESOLVE)
#undef PGC_RESOLVE
    pq_eb.msg[0] = '\0';
}

struct pgconn {
    PGconn *c;
};

/* Fails with libpq's message on one line: its texts run over several
 * ("server closed the connection unexpectedly\n\tThis probably ..."). */
static tr_err fail(struct tr_errbuf *eb, const char *what, const char *msg)
{
    char one[200];
    size_t k = 0;
    bool blank = false;
    for (const char *p = msg ? msg : ""; *p && k + 1 < sizeof(one); p++) {
        bool ws = *p == '\n' || *p == '\t' || *p == ' ' || *p == '\r';
        if (ws && !blank && k > 0)
            one[k++] = ' ';
        if (!ws)
            one[k++] = *p;
        blank = ws;
    }
    while (k > 0 && one[k - 1] == ' ')
        k--;
    one[k] = '\0';
    return tr_fail(eb, TR_ERR_DB, "%s: %s", what, one);
}

/* Server-side settings of the session: statements end on the server
 * too, and a session whose client went silent ends (so do its locks). */
static const char *const session_sql[] = {
    "SET statement_timeout = 5000",    "SET tcp_keepalives_idle = 5",
    "SET tcp_keepalives_interval = 1", "SET tcp_keepalives_count = 3",
    "SET tcp_user_timeout = 5000",
};

tr_err pgconn_open(const char *conninfo, struct pgconn **out,
                   struct tr_errbuf *eb)
{
    pthread_once(&pq_once, pq_load);
    if (pq.PQstatus == NULL || pq_eb.msg[0] != '\0')
        return tr_fail(eb, TR_ERR_DB, "%s",
                       pq_eb.msg[0] ? pq_eb.msg : "cannot load libpq");
    /* later keywords override what the URL says */
    const char *const keys[] = {
        "dbname",           "connect_timeout",     "keepalives",
        "keepalives_idle",  "keepalives_interval", "keepalives_count",
        "tcp_user_timeout", "application_name",    NULL};
    const char *const vals[] = {conninfo, "3", "1",    "5",
                                "1",      "3", "5000", "terrace-coordination",
                                NULL};
    PGconn *c = pq.PQconnectdbParams(keys, vals, 1);
    if (c == NULL || pq.PQstatus(c) != CONNECTION_OK) {
        tr_err e = fail(eb, "cannot connect to postgresql",
                        c ? pq.PQerrorMessage(c) : "out of memory");
        pq.PQfinish(c);
        return e;
    }
    struct pgconn *pc = calloc(1, sizeof(*pc));
    if (pc == NULL) {
        pq.PQfinish(c);
        return tr_fail(eb, TR_ERR_NOMEM, "out of memory");
    }
    pc->c = c;
    tr_err e = TR_OK;
    for (size_t i = 0; e == TR_OK && i < sizeof(session_sql) / sizeof(char *);
         i++)
        e = pgconn_exec(pc, session_sql[i], 3000, NULL, 0, eb);
    /* PostgreSQL 14+; older servers keep the session until TCP says */
    if (e == TR_OK &&
        pgconn_exec(pc,
                    "SELECT set_config('idle_session_timeout', '5s',"
                    " false) WHERE current_setting('server_version_num')"
                    "::int >= 140000",
                    3000, NULL, 0, NULL) != TR_OK)
        e = tr_fail(eb, TR_ERR_DB, "cannot set idle_session_timeout");
    if (e != TR_OK) {
        pgconn_close(pc);
        return e;
    }
    *out = pc;
    return TR_OK;
}

void pgconn_close(struct pgconn *pc)
{
    if (pc == NULL)
        return;
    pq.PQfinish(pc->c);
    free(pc);
}

/* Waits until the socket is readable or deadline_ms (monotonic) passes;
 * false on timeout or a poll error. */
static bool wait_readable(struct pgconn *pc, int64_t deadline_ms)
{
    int fd = pq.PQsocket(pc->c);
    if (fd < 0)
        return false;
    for (;;) {
        int64_t left = deadline_ms - util_now_ms();
        if (left <= 0)
            return false;
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int rc = poll(&p, 1, (int)left);
        if (rc > 0)
            return true;
        if (rc == 0)
            return false;
    }
}

tr_err pgconn_exec(struct pgconn *pc, const char *sql, int timeout_ms,
                   char *val, size_t n, struct tr_errbuf *eb)
{
    if (val != NULL && n > 0)
        val[0] = '\0';
    int64_t deadline = util_now_ms() + timeout_ms;
    if (pq.PQstatus(pc->c) != CONNECTION_OK || !pq.PQsendQuery(pc->c, sql))
        return fail(eb, "postgresql", pq.PQerrorMessage(pc->c));
    tr_err e = TR_OK;
    for (;;) {
        while (pq.PQisBusy(pc->c)) {
            if (!wait_readable(pc, deadline))
                return tr_fail(eb, TR_ERR_DB,
                               "postgresql did not answer within %d ms",
                               timeout_ms);
            if (!pq.PQconsumeInput(pc->c))
                return fail(eb, "postgresql", pq.PQerrorMessage(pc->c));
        }
        PGresult *r = pq.PQgetResult(pc->c);
        if (r == NULL)
            break;
        ExecStatusType st = pq.PQresultStatus(r);
        if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK && e == TR_OK)
            e = fail(eb, "postgresql", pq.PQresultErrorMessage(r));
        else if (st == PGRES_TUPLES_OK && val != NULL && n > 0 &&
                 pq.PQntuples(r) > 0 && pq.PQnfields(r) > 0)
            snprintf(val, n, "%s", pq.PQgetvalue(r, 0, 0));
        pq.PQclear(r);
    }
    if (e == TR_OK && pq.PQstatus(pc->c) != CONNECTION_OK)
        e = fail(eb, "postgresql", pq.PQerrorMessage(pc->c));
    return e;
}

tr_err pgconn_wait(struct pgconn *pc, int timeout_ms, int *count,
                   struct tr_errbuf *eb)
{
    *count = 0;
    if (pq.PQstatus(pc->c) != CONNECTION_OK)
        return fail(eb, "postgresql", pq.PQerrorMessage(pc->c));
    int64_t deadline = util_now_ms() + timeout_ms;
    for (;;) {
        if (!pq.PQconsumeInput(pc->c))
            return fail(eb, "postgresql", pq.PQerrorMessage(pc->c));
        PGnotify *nf = pq.PQnotifies(pc->c);
        while (nf != NULL) {
            (*count)++;
            pq.PQfreemem(nf);
            nf = pq.PQnotifies(pc->c);
        }
        if (*count > 0 || !wait_readable(pc, deadline))
            return TR_OK;
    }
}
