/*
 * idle_https.h - the small HTTPS client and health listener of an idle
 * secondary (terraced-idle, idle.h), on mbed TLS.
 *
 * An idle secondary only long-polls for a job, sends its node heartbeat
 * and answers health checks; linking libcurl and OpenSSL for that costs
 * more resident memory than the whole process may hold (bench/RESULTS.md,
 * "the RSS floor of a node process").  This is just enough HTTP/1.1 for
 * those calls: over TLS each thread's connection is kept between its
 * calls (keep-alive), bodies by Content-Length, chunked or end of stream,
 * the server's certificate checked against the CA file and the URL's
 * host name or IP address.
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#ifndef TR_IDLE_HTTPS_H
#define TR_IDLE_HTTPS_H

#include <stdbool.h>
#include <stddef.h>

#include "core/err.h"

struct idle_tls;

/* The client side: trust ca_file (NULL or "": the host's bundle). */
tr_err idle_tls_client(const char *ca_file, struct idle_tls **out,
                       struct tr_errbuf *eb);

/* The server side, for the listener: cert_file and key_file in PEM. */
tr_err idle_tls_server(const char *cert_file, const char *key_file,
                       struct idle_tls **out, struct tr_errbuf *eb);

void idle_tls_free(struct idle_tls *t);

struct idle_reply {
    int status;        /* the HTTP status, 0 when none came */
    int retry_after_s; /* Retry-After in seconds, 0 if absent */
    char *body;        /* malloc'd, NUL-terminated; NULL when empty */
    size_t len;
};

void idle_reply_free(struct idle_reply *r);

/* One request to base (http[s]://host[:port][/prefix]) + path.  TR_OK
 * when an answer came, whatever its status; TR_ERR_IO when the server
 * could not be reached or the exchange broke off (eb says why).  t may be
 * NULL for an http:// base (one connection per request then); with t the
 * connection stays open in t for the thread's next call.  The bearer
 * credential, when not NULL, goes in the Authorization header. */
tr_err idle_https_call(struct idle_tls *t, const char *base, const char *method,
                       const char *path, const char *credential,
                       const char *body, int timeout_s, struct idle_reply *out,
                       struct tr_errbuf *eb);

/* Parses a whole HTTP/1.1 response (status line, headers, body) from
 * raw; exposed for the unit test.  TR_ERR_IO when it is malformed. */
tr_err idle_parse_reply(const char *raw, size_t len, struct idle_reply *out,
                        struct tr_errbuf *eb);

/* ---- the listener ---- */

/* Answers one request: fills status and body (a static or malloc'd
 * string the listener frees when *owned). */
typedef void (*idle_handler)(void *arg, const char *path, const char *query,
                             int *status, char **body, bool *owned);

struct idle_listener;

/* Listens on listen ("host:port") in a thread of its own; t NULL for
 * plain HTTP.  fd >= 0: a socket already listening there (handed over by
 * terraced across its exec, so the port never refused a connection),
 * used instead of binding anew. */
tr_err idle_listen(const char *listen, int fd, struct idle_tls *t,
                   idle_handler h, void *arg, struct idle_listener **out,
                   struct tr_errbuf *eb);

void idle_listener_stop(struct idle_listener *l);

#endif
