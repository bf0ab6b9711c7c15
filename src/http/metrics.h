/*
 * metrics.h - Prometheus metrics (GET /metrics) and readiness
 * (GET /_health_check?ready=1) of a node.
 *
 * Request counters are a fixed array indexed by route number
 * (http_route_index()), one slot per status code, plus a latency
 * histogram per route; the request path only does relaxed atomic adds,
 * no lock and no allocation.  Requests that match no route count under
 * route "unmatched" by method (a fixed list; anything else is "other"),
 * so no label ever holds a raw path or a name from a request.
 *
 * Gauges read from the database (runs by status, queued and running
 * jobs) are cached for a few seconds, so a scrape costs the database
 * three indexed counts at most that often.
 *
 * Readiness checks the database through one probe thread: a readiness
 * request reuses a probe younger than a second or waits for a fresh one
 * for at most two seconds, so a database that hangs makes the node
 * answer "not ready" in bounded time instead of hanging the probe of a
 * load balancer.
 *
 * Thread safety: everything here may be called from any thread once
 * http_metrics_new() has returned.
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#ifndef TR_HTTP_METRICS_H
#define TR_HTTP_METRICS_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "core/arena.h"
#include "core/buf.h"
#include "core/err.h"
#include "core/server.h"
#include "http/http.h"

struct http_metrics;

/* Counters for the routes set with http_set_routes() (call after it),
 * and the readiness probe when srv has a database.  Free with
 * http_metrics_free() once no request is being served. */
tr_err http_metrics_new(struct terrace_server *srv, struct http_metrics **out,
                        struct tr_errbuf *eb);
void http_metrics_free(struct http_metrics *m);

/* Counts one finished request: route NULL when none matched, method as
 * the client sent it, status as answered (0: none), usec its duration.
 * m NULL is a no-op.  Lock-free. */
void http_metrics_observe(struct http_metrics *m, const struct route *route,
                          const char *method, int status, int64_t usec);

/* When this process started, Unix seconds (now when m is NULL). */
int64_t http_metrics_start_time(const struct http_metrics *m);

/* Appends the exposition (text format 0.0.4) of every series to b.
 * Gauges from the database are left out while it cannot be read
 * (terrace_database_up then says 0). */
void http_metrics_render(struct http_metrics *m, struct terrace_server *srv,
                         struct buf *b);

/* Whether /metrics may be served under setting mode (loopback | on |
 * off) to a client at peer; proxied: the request carries a header a
 * proxy adds (X-Forwarded-For, Forwarded, X-Real-IP), so a loopback peer
 * may stand for anyone. */
bool http_metrics_allowed(const char *mode, const struct sockaddr *peer,
                          bool proxied);

/* The handler of GET /metrics (in src/api/meta.c's table): the
 * exposition, or 404 as for an unknown path where the setting metrics
 * does not allow this client. */
void http_metrics_get(struct http_req *r);

/* Readiness: NULL when the node is ready, else the reason (static
 * text or in a).  *checks (nullable) gets a new JSON object saying what
 * was checked, which the caller owns.  Blocks at most about two seconds. */
const char *http_ready(struct terrace_server *srv, struct arena *a,
                       json_t **checks);

#endif
