/*
 * run_int.h - what run.c, run_worker.c and reaper.c share.  Internal to
 * src/domain.
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#ifndef TR_RUN_INT_H
#define TR_RUN_INT_H

#include "domain/run.h"

/* store_run_step() plus what follows a transition: claimers woken when it
 * queued a job, the workspace scheduled when the run let it go.  out
 * (nullable) gets the run afterwards. */
tr_err run_step(struct terrace_server *srv, struct arena *a,
                const struct st_run_step *s, struct st_run *out,
                struct tr_errbuf *eb);

/* Compacts the chunks of phase_id into one blob; *key gets its key, or
 * NULL when the phase logged nothing. */
tr_err run_compact_log(struct terrace_server *srv, struct arena *a,
                       const char *phase_id, const char **key,
                       struct tr_errbuf *eb);

#endif
