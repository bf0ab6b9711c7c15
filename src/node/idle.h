/*
 * idle.h - terraced-idle: what a secondary (or agent) is while it has no
 * job.
 *
 * A secondary spends most of its life waiting for work; with libcurl,
 * OpenSSL and libmicrohttpd loaded that wait costs ~14 MB of resident
 * memory per node.  So once terraced --role secondary has joined (its
 * credential is in DATA/node-credential) and holds the primaries' tool,
 * it execs terraced-idle (same process, same PID), which links only the
 * C library, jansson and mbed TLS and does the idle node's three things:
 *
 *   - long-polls POST /api/internal/v1/claim for a job;
 *   - sends the node heartbeat every 5 s (running_jobs 0);
 *   - answers /_health_check and /_health_check?ready=1 on --listen,
 *     on the listening socket terraced hands over (--listen-fd): it is
 *     never closed across the exec, so the kernel queues the health
 *     checks that come meanwhile instead of refusing them.
 *
 * When a claim brings a job it starts terraced again with the daemon's
 * own arguments (a worker: TERRACE_IDLE_HANDOFF names a pipe holding the
 * claim reply; node/secondary.c), which confirms and runs that job with
 * the usual executor, claims more up to --capacity, heartbeats the node
 * itself and exits once it has had nothing to do for 20 s (kept plan
 * directories count as work).  terraced-idle waits for it and then
 * claims again.  The worker dies with it (PR_SET_PDEATHSIG), so a kill
 * -9 of the node stops its jobs as before; SIGTERM drains both: the
 * worker finishes its jobs, the claim in flight returns (a job it brings
 * is run), then terraced-idle leaves the cluster and exits 0.  A
 * credential the primaries refuse (401) stops the node without leaving,
 * as secondary.h says.
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#ifndef TR_IDLE_H
#define TR_IDLE_H

#include <stdbool.h>

struct idle_opts {
    bool agent;           /* --role agent */
    const char *join_url; /* the primaries (through the load balancer) */
    const char *ca_file;  /* their CA; NULL: the host's bundle */
    const char *data_dir; /* holds node-credential */
    const char *node_id;  /* for the health answer */
    const char *listen;   /* health listener, or NULL */
    int listen_fd;        /* that listener's socket from terraced, or -1 */
    const char *tls_cert; /* listener over TLS when both are set */
    const char *tls_key;
    char *const *worker; /* terraced and its arguments */
};

/* Runs until drained (0), or until the node must stop (1). */
int idle_run(const struct idle_opts *o);

#endif
