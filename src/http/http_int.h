/*
 * http_int.h - functions shared inside src/http: the connection guard
 * (guard.c) that server.c wires into libmicrohttpd, and the access-log
 * line helpers.
 *
 * The guard decides which connections are accepted and closes the ones
 * that stay silent too long:
 *   - at most per_ip open connections per client address (an IPv6 client
 *     counts by its /64; 0: no per-address limit);
 *   - at most limit open connections in all, of which the last reserved
 *     go only to addresses that sent a valid token within seen_ttl_ms;
 *   - a connection that has not delivered a whole request header within
 *     header_ms of being accepted (TLS handshake included) is shut down,
 *     however slowly it trickles bytes.
 * Counts move when libmicrohttpd reports a connection started and closed,
 * so every accepted connection is counted once and released once; the
 * accept check reads them under the same lock, so concurrent accepts on
 * several worker threads can overshoot a limit by at most one connection
 * per thread.  Thread-safe: one mutex guards everything.
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#ifndef TR_HTTP_INT_H
#define TR_HTTP_INT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "core/arena.h"
#include "core/err.h"

struct http_guard;

struct http_guard_conf {
    int limit;           /* open connections at most (>= 1) */
    int reserved;        /* of limit, kept for recently authenticated */
    int per_ip;          /* per client address; 0: no limit */
    int64_t header_ms;   /* first request header due within this */
    int64_t seen_ttl_ms; /* how long an authenticated address counts */
    int report_ms;       /* period of the refusal summary in the log */
};

struct http_guard_stats {
    int open;                   /* connections open now */
    unsigned long refused_ip;   /* over the per-address limit */
    unsigned long refused_full; /* over the global limit or its share */
    unsigned long timed_out;    /* shut down for a late request header */
};

/* Makes a guard and starts its timer thread.  Free with
 * http_guard_free() after the HTTP daemon has stopped. */
tr_err http_guard_new(const struct http_guard_conf *conf,
                      struct http_guard **out, struct tr_errbuf *eb);
void http_guard_free(struct http_guard *g);

/* Whether a new connection from addr may be accepted now. */
bool http_guard_accept(struct http_guard *g, const struct sockaddr *addr,
                       socklen_t len);
/* A connection was accepted on fd: counts it and starts its header clock.
 * *ctx receives the guard's handle for it (NULL if it could not be
 * tracked, which the other calls accept). */
void http_guard_open(struct http_guard *g, const struct sockaddr *addr,
                     socklen_t len, int fd, void **ctx);
/* The connection delivered a request header: its header clock stops. */
void http_guard_request(struct http_guard *g, void *ctx);
/* Its request was answered before its body was read (a refusal). */
void http_guard_refused(struct http_guard *g, void *ctx);
/* The connection is closed (before its fd is): releases its counts.
 * True if it ended before it had sent a whole request header, other than
 * by the header deadline, or after a refusal of a request with a body
 * (more may be on its way). */
bool http_guard_close(struct http_guard *g, void *ctx);
/* A request from addr carried a valid token. */
void http_guard_authenticated(struct http_guard *g, const struct sockaddr *addr,
                              socklen_t len);
void http_guard_stats(struct http_guard *g, struct http_guard_stats *st);
/* Logs a message of libmicrohttpd's: at most a few per summary period,
 * since a client can make it write one per connection (a failed TLS
 * handshake); the summary counts the rest. */
void http_guard_lib_log(struct http_guard *g, const char *msg);

/* The lingering close (linger.c): a connection the server closes while
 * the client may still be sending is kept for a while, its write side
 * shut down and what comes read and dropped, so the client reads the
 * answer instead of a reset.  http_linger_close() is called before the
 * fd is closed; it keeps the socket when partial (the request was not
 * whole) or when input sits unread, if fewer than its bound linger
 * (128, each for 2 s at most). */
struct http_linger;
tr_err http_linger_new(struct http_linger **out, struct tr_errbuf *eb);
void http_linger_free(struct http_linger *l);
void http_linger_close(struct http_linger *l, int fd, bool partial);

/* The memory trimmer (trim.c): a thread that calls malloc_trim(0) once
 * requests have used TRIM_BYTES since the last trim, when no request is
 * in flight (*in_flight == 0) or 2 s later at the latest, at most once a
 * second.  Free after the HTTP daemon has stopped. */
struct http_trim;
tr_err http_trim_new(const atomic_int *in_flight, struct http_trim **out,
                     struct tr_errbuf *eb);
/* Counts the memory a completed request used (its arena and response
 * body, bytes); cheap, callable from any thread; NULL does nothing. */
void http_trim_note(struct http_trim *t, size_t bytes);
/* Trims done so far (for tests and /metrics). */
unsigned long http_trim_count(struct http_trim *t);
void http_trim_free(struct http_trim *t);

/* The request path as the access log shows it: the value of every
 * secret path parameter (":sig" in the route table) replaced by
 * "REDACTED", and bytes outside printable ASCII written as %XX so a
 * path cannot forge log lines.  Allocated in a. */
char *http_log_path(struct arena *a, const char *path);
/* s with bytes outside printable ASCII (and '%') written as %XX. */
char *http_log_text(struct arena *a, const char *s);

/* The client's address (NULL if libmicrohttpd cannot say). */
struct http_req;
const struct sockaddr *http_peer(const struct http_req *r);

/* The readiness probe (ready.c): a thread that reads the database's
 * schema version when asked; metrics.c owns it. */
struct db;
struct http_probe;
struct http_metrics;
tr_err http_probe_new(struct db *db, struct http_probe **out,
                      struct tr_errbuf *eb);
void http_probe_free(struct http_probe *p);
struct http_probe *http_metrics_probe(struct http_metrics *m);

#endif
