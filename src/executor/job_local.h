/*
 * job_local.h - the in-process implementation of struct job_api (job.h):
 * the demo's executor claims, heartbeats, logs and finishes jobs through
 * direct calls into the job service (domain/job_service.h).
 *
 * A secondary node will use an HTTP implementation of the same operations;
 * nothing the executor sees differs.  claim() waits on the server's run
 * signal (a condition variable) rather than polling, so a queued job is
 * picked up as soon as it is queued.
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#ifndef TR_JOB_LOCAL_H
#define TR_JOB_LOCAL_H

#include "core/server.h"
#include "domain/job_service.h"
#include "executor/job.h"

struct job_local_opts {
    const char *ca_file;    /* CA a worker trusts for the API, or NULL */
    int64_t lease_ms;       /* a job's lease after claim and heartbeat;
                               0: the node's job-lease setting */
    int64_t plan_timeout_s; /* job timeouts (0: the executor's own) */
    int64_t apply_timeout_s;
    int sweep_ms; /* claim looks again at least this often (0: 60 s) */
};

/* Defaults: no CA, the job-lease setting, executor timeouts. */
void job_local_defaults(struct job_local_opts *o);

struct job_local;

/* srv must have db, blob, keys and run_signal set and outlive jl. */
tr_err job_local_new(struct terrace_server *srv, const struct job_local_opts *o,
                     struct job_local **out, struct tr_errbuf *eb);
/* The job service behind jl, which the internal API shares. */
struct job_service *job_local_service(struct job_local *jl);
void job_local_free(struct job_local *jl); /* NULL ignored */

/* The job API backed by jl (valid while jl lives). */
struct job_api *job_local_api(struct job_local *jl);

#endif
