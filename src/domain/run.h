/*
 * run.h - the run state machine, the per-workspace run queue and the
 * scheduler.
 *
 * A run plans its configuration and, once confirmed, applies it.  Its
 * life, with the function that makes each transition (the store makes
 * each one a single transaction conditional on the state it starts from,
 * so a transition whose start state no longer holds changes nothing and
 * answers TR_ERR_CONFLICT):
 *
 *                       run_create()
 *                           |
 *            speculative or | non-speculative
 *            saved plan     v
 *          +-------------- pending --run_cancel()/run_discard()--> canceled
 *          |                |                                      discarded
 *          |                | run_schedule(): workspace free
 *          v                v
 *     plan_queued <---------+          (run_cancel(): canceled)
 *          |
 *          | run_claim()
 *          v
 *      planning --run_finish(error/cancel)--> errored, canceled,
 *          |                                  force_canceled
 *          | run_finish(plan finished)
 *          +--> planned_and_finished   (speculative, or no changes)
 *          +--> planned_and_saved --run_apply()--> confirmed --+
 *          |    (run_discard(): discarded)       run_schedule() |
 *          v                                                   |
 *    planned | cost_estimated --run_discard()--> discarded     |
 *          |  (cost_estimated: the org estimates costs)        |
 *          | run_apply(), or at once when auto-apply           |
 *          v                                                   |
 *     apply_queued <-------------------------------------------+
 *          |
 *          | run_claim()
 *          v
 *      applying --run_finish()--> applied | errored | canceled |
 *                                 force_canceled
 *
 *   plan_queued, confirmed, apply_queued --run_cancel()--> canceled
 *   planning/applying --run_cancel()--> (same state, job asked to stop;
 *       force-cancel opens 10 s later)
 *   planning/applying --run_force_cancel()--> force_canceled (at once)
 *   planning/applying --run_expire(): lease ended--> errored ("the worker
 *       running this job stopped responding"); an apply is never re-run
 *   pending --run_force_execute()--> the workspace's confirmable current
 *       run and earlier pending runs are discarded; then as run_schedule()
 *
 * What holds in each state:
 *   - pending: no job; waits for its workspace (never speculative);
 *   - plan_queued/apply_queued: exactly one queued job;
 *   - planning/applying: exactly one running job holding a lease and a
 *     run token;
 *   - a non-speculative run from plan_queued until it ends owns its
 *     workspace: workspaces.current_run_id names it and the workspace is
 *     locked by ("run", id); speculative and saved-plan runs plan without
 *     it (a saved plan takes it when confirmed);
 *   - applied, planned_and_finished, discarded, errored, canceled,
 *     force_canceled are final; entering one (or planned_and_saved) gives
 *     the workspace back and lets its next waiting run in (queue_seq
 *     order).
 *
 * Functions here are safe from any thread; they take the server for its
 * database, blob store and run signal.
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#ifndef TR_RUN_H
#define TR_RUN_H

#include <stdbool.h>
#include <stdint.h>

#include "core/server.h"
#include "store/store.h"

/* Seconds after a cancel request when force-cancel becomes available. */
#define RUN_FORCE_CANCEL_DELAY 10
/* Lifetime of a run token, a safety net behind its deletion at job end. */
#define RUN_TOKEN_TTL (12 * 3600)

/* ---- the job signal ------------------------------------------------------ */

/* Wakes claimers waiting for work when a job is queued: a generation
 * counter under a mutex and condition variable. */
struct run_signal;

tr_err run_signal_new(struct run_signal **out);
void run_signal_free(struct run_signal *s); /* NULL ignored */
void run_signal_notify(struct run_signal *s);
uint64_t run_signal_gen(struct run_signal *s);
/* Waits until the generation differs from seen or timeout_ms passes
 * (returns at once if it already differs).  True when it changed. */
bool run_signal_wait(struct run_signal *s, uint64_t seen, int timeout_ms);

/* ---- states -------------------------------------------------------------- */

/* True for the statuses a run never leaves. */
bool run_is_final(const char *status);

/* The run's actions block, true to its status at time now (unix s). */
struct run_actions {
    bool is_cancelable;
    bool is_confirmable;
    bool is_discardable;
    bool is_force_cancelable;
};
void run_actions(const struct st_run *r, int64_t now, struct run_actions *out);

/* Cost estimate status derived from the run (cost_estimate_id set). */
const char *run_cost_estimate_status(const struct st_run *r);

/* ---- transitions --------------------------------------------------------- */

/* Creates the run described by in (validated by the caller: workspace_id,
 * cv_id, message, flags, terraform_version, addrs, variables, created_by;
 * plan_only also for a speculative configuration version), then lets the
 * scheduler look at the workspace.  Speculative and saved-plan runs are
 * queued for planning at once.  out gets the run as created. */
tr_err run_create(struct terrace_server *srv, struct arena *a,
                  const struct st_run *in, struct st_run *out,
                  struct tr_errbuf *eb);

/* A run's own variables as JSON text ("[]" when none).  They come from
 * the CLI's -var flags, where secrets often are, so run_create() stores
 * them sealed under the KEK (envelope.h); runs stored before that hold
 * clear JSON, returned as is.  TR_ERR_CRYPTO if a sealed value does not
 * open. */
tr_err run_variables(struct terrace_server *srv, struct arena *a,
                     const struct st_run *r, const char **json,
                     struct tr_errbuf *eb);

/* The scheduler's step for one workspace; wakes claimers if a job was
 * queued. */
tr_err run_schedule(struct terrace_server *srv, struct arena *a,
                    const char *ws_id, struct tr_errbuf *eb);

/* Actions from the API.  actor: user id or NULL; comment (nullable) is
 * recorded as a comment on the run.  TR_ERR_CONFLICT with TFE's wording
 * when the action is not allowed in the run's state. */
tr_err run_apply(struct terrace_server *srv, struct arena *a, const char *id,
                 const char *actor, const char *comment, struct tr_errbuf *eb);
tr_err run_discard(struct terrace_server *srv, struct arena *a, const char *id,
                   const char *actor, const char *comment,
                   struct tr_errbuf *eb);
tr_err run_cancel(struct terrace_server *srv, struct arena *a, const char *id,
                  const char *actor, const char *comment, struct tr_errbuf *eb);
tr_err run_force_cancel(struct terrace_server *srv, struct arena *a,
                        const char *id, const char *actor, const char *comment,
                        struct tr_errbuf *eb);
tr_err run_force_execute(struct terrace_server *srv, struct arena *a,
                         const char *id, const char *actor,
                         struct tr_errbuf *eb);

/* After run src applied: queues a run in every workspace that follows
 * src's workspace that has none for src yet, then clears src's pending
 * mark (run_trigger.c).  Failures are logged and left to the sweep. */
void run_triggers_fire(struct terrace_server *srv, struct arena *a,
                       const struct st_run *src);
/* The reaper's part: fires the triggers of applied runs still marked
 * pending (a crash or an error before they fired). */
tr_err run_triggers_sweep(struct terrace_server *srv, struct arena *a,
                          struct tr_errbuf *eb);

/* ---- workers ------------------------------------------------------------- */

/* Claims the oldest queued job for node with a lease of lease_ms and
 * creates the run token (*token, the only copy of the secret).
 * TR_ERR_NOT_FOUND when nothing is queued. */
tr_err run_claim(struct terrace_server *srv, struct arena *a, const char *node,
                 int64_t lease_ms, struct st_job *job, struct st_run *run,
                 char **token, struct tr_errbuf *eb);

/* Extends a running job's lease to now + lease_ms; *cancel gets the
 * cancel request (0, 1 cancel, 2 force-cancel).  TR_ERR_CONFLICT when the
 * job is no longer running. */
tr_err run_heartbeat(struct terrace_server *srv, struct arena *a,
                     const char *job_id, int64_t lease_ms, int *cancel,
                     struct tr_errbuf *eb);

/* How a phase ended, as the worker reports it. */
enum run_outcome {
    RUN_OUT_FINISHED = 1,
    RUN_OUT_ERRORED = 2,
    RUN_OUT_CANCELED = 3,
    RUN_OUT_FORCE_CANCELED = 4,
};

struct run_result {
    enum run_outcome outcome;
    const char *error; /* short reason when not finished */
    bool has_changes;
    int64_t additions, changes, destructions, imports;
    const char *plan_file;      /* local path (plan), NULL: none */
    const char *json_plan_file; /* local path (plan), NULL: none */
    const char *schemas_file;   /* provider schemas (plan), NULL: none */
};

/* Ends a running job: stores the plan files (copied, the paths stay the
 * caller's), compacts the phase's log into one blob, and moves the run
 * on (auto-apply queues the apply at once).  TR_ERR_CONFLICT when the job
 * is no longer running (reaped or force-canceled). */
tr_err run_finish(struct terrace_server *srv, struct arena *a,
                  const char *job_id, const struct run_result *res,
                  struct tr_errbuf *eb);

/* Records the JSON plan an apply job made after it finished (the run
 * went on without it): stored, redacted, as run_finish() stores one, on
 * the run's plan.  The job must be an apply that has ended, held last by
 * owner (NULL: any node), and the plan must have no JSON plan yet:
 * TR_ERR_CONFLICT otherwise, TR_ERR_NOT_FOUND for an unknown job. */
tr_err run_attach_json(struct terrace_server *srv, struct arena *a,
                       const char *job_id, const char *owner,
                       const char *json_plan_file, struct tr_errbuf *eb);

/* One reaper pass at now_ms: every running job whose lease ended errors
 * its run; then every workspace with a waiting run and no current run is
 * scheduled (catches a lock released by hand).  *reaped (nullable) gets
 * the number of runs errored. */
tr_err run_expire(struct terrace_server *srv, struct arena *a, int64_t now_ms,
                  int *reaped, struct tr_errbuf *eb);

#endif
