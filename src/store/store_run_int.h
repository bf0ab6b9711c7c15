/*
 * store_run_int.h - helpers shared by store_runs.c and store_run_jobs.c.
 * Each runs on a connection the caller holds, inside the caller's
 * transaction where one is open.  Internal to src/store (STYLE.md rule 3).
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#ifndef TR_STORE_RUN_INT_H
#define TR_STORE_RUN_INT_H

#include "store/store.h"

/* The run with its plan and apply ids, as store_run_get() returns it. */
tr_err store_run_load(struct db_conn *c, struct arena *a, const char *id,
                      struct st_run *out, struct tr_errbuf *eb);

/* json (a status-timestamps object, NULL for {}) with each of the nkeys
 * keys not yet present set to now; compact text in a.  NULL keys are
 * skipped. */
char *store_run_stamp(struct arena *a, const char *json,
                      const char *const *keys, int nkeys, const char *now);

/* Appends a run event (seq: the run's next) and queues the
 * notifications it announces (store_notify_enqueue()). */
tr_err store_run_event_add(struct db_conn *c, struct arena *a,
                           const char *run_id, const char *action,
                           const char *desc, const char *actor,
                           const char *comment_id, const char *now,
                           struct tr_errbuf *eb);

/* Queues a new job of phase ST_PLAN / ST_APPLY for the run; on
 * PostgreSQL also NOTIFY terrace_jobs with the job's id (delivered when
 * c's transaction commits). */
tr_err store_job_insert(struct db_conn *c, struct arena *a, const char *run_id,
                        int phase, const char *now, struct tr_errbuf *eb);

/* Sets the status of the run's plan (plan) or apply, stamping key (NULL:
 * none) in its status-timestamps. */
tr_err store_phase_set(struct db_conn *c, struct arena *a, bool plan,
                       const char *run_id, const char *status,
                       const char *stamp, const char *now,
                       struct tr_errbuf *eb);

#endif
