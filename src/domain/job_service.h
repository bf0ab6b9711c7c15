/*
 * job_service.h - what a worker needs for a job, in the domain layer:
 * claiming it (variables, tool, run token, configuration), keeping its
 * lease, its log, the files a plan leaves, and its end.
 *
 * Two doors open onto it: the in-process job API of the demo and of a
 * primary that runs plans itself (executor/job_local.c), and the internal
 * HTTP API that secondaries call (api/internal_jobs.c).  Neither touches
 * the store or the blob store for a job; both come here.
 *
 * Ownership: every call after claim names the job and, through the
 * internal API, the node that must hold it (owner).  A job that is no
 * longer running, or that another node holds, answers TR_ERR_CONFLICT
 * "the job is no longer this node's" and changes nothing; an unknown job
 * answers TR_ERR_NOT_FOUND.  owner NULL (in process) skips the holder
 * check only.
 *
 * Files a remote worker uploads before finish (plan, json-plan, schemas)
 * are kept in the blob store under jobs/<job id>/ so that any primary can
 * take the finish; finish consumes and removes them.
 *
 * Thread-safe: every call may run on any thread.  A parked claim (the
 * internal API's long poll) is served by the service's own waiter
 * thread, so a waiting secondary holds no HTTP worker.
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#ifndef TR_JOB_SERVICE_H
#define TR_JOB_SERVICE_H

#include <stdbool.h>
#include <stdint.h>

#include "core/arena.h"
#include "core/server.h"
#include "executor/job.h"

struct blob_reader;

struct job_service_opts {
    int64_t lease_ms;       /* lease after claim and heartbeat; 0: job-lease */
    int64_t plan_timeout_s; /* job timeouts (0: the executor's own) */
    int64_t apply_timeout_s;
    int sweep_ms;       /* longest wait on the run signal before claim looks
                           again (a job queued by another primary wakes no
                           signal here) */
    int64_t confirm_ms; /* a remote claim not confirmed by then is queued
                           again (job_service_claim_remote()); 0: never */
};

/* Defaults: 30 s leases, executor timeouts, 60 s sweeps, 10 s to
 * confirm a remote claim. */
void job_service_defaults(struct job_service_opts *o);

struct job_service;

/* srv must have db, blob, keys and run_signal set and outlive js. */
tr_err job_service_new(struct terrace_server *srv,
                       const struct job_service_opts *o,
                       struct job_service **out, struct tr_errbuf *eb);
void job_service_free(struct job_service *js); /* NULL ignored */

/* Waits up to wait_ms for a queued job and claims it for node (recorded
 * on the job: a worker's name in process, the node id of a secondary).
 * out is filled in a: tool_path is the registered binary on this node
 * and ca_file is NULL (each door sets what its worker trusts).  A job
 * that cannot be made (no tool, a variable that does not open) is
 * finished errored with the reason in its log and the next is tried.
 * TR_ERR_NOT_FOUND when none came. */
tr_err job_service_claim(struct job_service *js, struct arena *a,
                         const char *node, int wait_ms, struct job *out,
                         struct tr_errbuf *eb);

/* A claim for a remote node (the internal API), that must be confirmed:
 * the reply carrying the job may never reach the node (it hung up in the
 * middle of a long poll), so the job counts as started only once the
 * node's first heartbeat for it arrives, on any primary.  A claim still
 * unconfirmed confirm_ms later is put back in the queue by this
 * service's waiter thread (the phase never started, so it cannot run
 * twice; the node, if the job reaches it after all, finds its heartbeat
 * refused and must not run it).  Should this primary stop first, the
 * job's lease decides, as for any job.  Otherwise as
 * job_service_claim() with no wait. */
tr_err job_service_claim_remote(struct job_service *js, struct arena *a,
                                const char *node, struct job *out,
                                struct tr_errbuf *eb);

/* A claim that waits without holding the caller's thread (the internal
 * API's long poll): the service's waiter thread (started at the first
 * park) looks for a job for node whenever one may have been queued, at
 * least every second, and calls done(arg, e, job, eb) exactly once: TR_OK
 * with the job (its strings valid during the call only: each look has an
 * arena of its own, so a claim parked for long does not grow a with
 * every look), TR_ERR_NOT_FOUND when none came by deadline_ms
 * (util_now_ms() clock), or another error.  a holds the parked claim
 * (and node) until done is called.  Parked claims are served in the
 * order they came.  After job_service_unpark_all() done is called at
 * once, on the caller's thread. */
typedef void (*job_service_done_fn)(void *arg, tr_err e, const struct job *job,
                                    const struct tr_errbuf *eb);
void job_service_park(struct job_service *js, struct arena *a, const char *node,
                      int64_t deadline_ms, job_service_done_fn done, void *arg);
/* Ends every parked claim (TR_ERR_NOT_FOUND) and stops the waiter
 * thread; call before the HTTP server stops.  Idempotent. */
void job_service_unpark_all(struct job_service *js);

/* Extends the lease; *cancel 0, 1 cancel, 2 force-cancel. */
tr_err job_service_heartbeat(struct job_service *js, const char *job_id,
                             const char *owner, int *cancel,
                             struct tr_errbuf *eb);

/* Appends raw output to the job's phase log; offset as in
 * store_log_append (-1: none). */
tr_err job_service_append_log(struct job_service *js, const char *job_id,
                              const char *owner, const void *data, size_t len,
                              int64_t offset, struct tr_errbuf *eb);

/* The configuration tarball of the job's run, or (apply jobs) the plan
 * file its plan saved, opened for reading; the caller closes *rd.
 * TR_ERR_NOT_FOUND when there is none. */
tr_err job_service_open_config(struct job_service *js, struct arena *a,
                               const char *job_id, const char *owner,
                               struct blob_reader **rd, uint64_t *size,
                               struct tr_errbuf *eb);
tr_err job_service_open_plan(struct job_service *js, struct arena *a,
                             const char *job_id, const char *owner,
                             struct blob_reader **rd, uint64_t *size,
                             struct tr_errbuf *eb);

/* Writes size bytes of rd to dest_path (0600, replaced if present); rd
 * stays the caller's. */
tr_err job_service_reader_to_file(struct blob_reader *rd, uint64_t size,
                                  const char *dest_path, struct tr_errbuf *eb);

/* Keeps an uploaded file of a plan job until finish.  kind: "plan",
 * "json-plan" or "schemas" (TR_ERR_INVALID otherwise); path is consumed
 * (moved into the blob store). */
tr_err job_service_put_file(struct job_service *js, struct arena *a,
                            const char *job_id, const char *owner,
                            const char *kind, const char *path,
                            struct tr_errbuf *eb);

/* The JSON plan an apply job made after its finish (run_attach_json()):
 * the file at path, copied. */
tr_err job_service_attach_json(struct job_service *js, const char *job_id,
                               const char *owner, const char *path,
                               struct tr_errbuf *eb);

/* Ends the job and moves its run on (run_finish()).  Files named in res
 * are used; where res names none, the file uploaded with put_file() is. */
tr_err job_service_finish(struct job_service *js, const char *job_id,
                          const char *owner, const struct job_result *res,
                          struct tr_errbuf *eb);

/* *final: the run has ended (or is gone), so no apply will come. */
tr_err job_service_run_final(struct job_service *js, const char *run_id,
                             bool *final, struct tr_errbuf *eb);

/* The lease the service grants, in ms. */
int64_t job_service_lease_ms(const struct job_service *js);

#endif
