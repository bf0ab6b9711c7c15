/*
 * pgconn.h - a PostgreSQL connection of a node's own, outside the pool,
 * for what must notice a lost connection at once: leader election (a
 * session advisory lock lives as long as the connection) and LISTEN.
 *
 * The pool (store/db.h) resets a broken connection quietly before its
 * next statement; here a broken connection is an error the caller sees,
 * and every statement has a client-side deadline, so a dead network
 * fails a statement within that deadline instead of blocking.  TCP
 * keepalives and tcp_user_timeout are set on both ends.
 *
 * One thread uses a struct pgconn at a time.
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#ifndef TR_PGCONN_H
#define TR_PGCONN_H

#include <stddef.h>

#include "core/err.h"

struct pgconn;

/* Connects to conninfo (a libpq URL or key=value string) within a few
 * seconds.  TR_ERR_DB with eb set when it cannot.  *out is freed with
 * pgconn_close(). */
tr_err pgconn_open(const char *conninfo, struct pgconn **out,
                   struct tr_errbuf *eb);
/* Closes the connection (the server then drops its session locks and
 * LISTENs); NULL ignored. */
void pgconn_close(struct pgconn *pc);

/* Runs sql (no parameters) and waits at most timeout_ms for its result.
 * val (nullable, n bytes) gets the first column of the first row, "" if
 * none.  TR_ERR_DB when the statement fails, the connection is broken or
 * the deadline passes: the connection is then unusable, close it. */
tr_err pgconn_exec(struct pgconn *pc, const char *sql, int timeout_ms,
                   char *val, size_t n, struct tr_errbuf *eb);

/* Waits at most timeout_ms for notifications on channels this connection
 * LISTENs to; *count gets how many arrived (their payloads are dropped).
 * TR_ERR_DB when the connection is broken. */
tr_err pgconn_wait(struct pgconn *pc, int timeout_ms, int *count,
                   struct tr_errbuf *eb);

#endif
