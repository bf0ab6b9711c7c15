/*
 * lb.h - the HAProxy configuration in front of a cluster's primaries
 * (`terrace lb haproxy-config`, and the local cluster launcher).
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#ifndef TR_CLI_LB_H
#define TR_CLI_LB_H

#include <stddef.h>
#include <stdio.h>

#include "core/err.h"

#define LB_MAX_PRIMARIES 16

struct lb_opts {
    const char *listen;  /* ADDR:PORT the load balancer binds */
    const char *cert;    /* cert + key PEM for the listener; NULL: plain */
    const char *ca_file; /* CA the primaries' certificates are checked
                            against; NULL: the system's CAs */
    const char *const *primaries; /* http(s)://HOST:PORT each */
    size_t nprimaries;
};

/* Writes an HAProxy configuration to out: TLS termination with cert, the
 * primaries as one leastconn backend (re-encrypted and verified when their
 * URL is https), readiness health checks that take a dead primary out
 * within about two seconds, retries of idempotent requests on another
 * primary, and timeouts long enough for streamed logs.  TR_ERR_INVALID
 * (nothing written) for a malformed URL or listen address, none or too
 * many primaries, or a path HAProxy could not parse; TR_ERR_IO when out
 * fails. */
tr_err lb_haproxy_config(FILE *out, const struct lb_opts *o,
                         struct tr_errbuf *eb);

#endif
