/*
 * secondary.h - the secondary role: a worker node that runs plans and
 * applies for the primaries of a cluster and holds no database, blob or
 * key settings.
 *
 * Start-up: DATA is created; the node joins through --join-url with the
 * join token (POST /api/internal/v1/join) and keeps the node credential
 * it gets in DATA/node-credential (0600, created exclusively), or reuses
 * the credential already there.  A credential the primaries refuse (401:
 * revoked, left, unknown) stops the start with that message: the node
 * never rejoins behind an operator's back; removing the file makes it
 * join as a new node.  Primaries that cannot be reached are waited for.
 *
 * Running: the executor claims jobs through the HTTP job API (executor/
 * job_http.h) with --capacity workers; every 5 s the node heartbeats
 * (POST /nodes/heartbeat with its running jobs and state).  Its listener
 * serves only /_health_check (liveness) and /_health_check?ready=1
 * (joined, a primary answered the last heartbeat, not draining).
 *
 * Waiting: once joined and holding the primaries' tool, the node execs
 * terraced-idle (node/idle.h) when it is installed beside terraced: a
 * small program that waits for jobs and starts this program again as a
 * worker (TERRACE_IDLE_HANDOFF: a pipe with the claim reply) for each job
 * it claims.  A worker skips the join and the listener, runs the handed
 * job and what else it claims, heartbeats the node, and exits 0 after
 * IDLE_EXIT_MS with no job and no plan directory kept; it never leaves
 * the cluster (terraced-idle does, once drained).
 *
 * The agent role (--role agent) is this role with another door: it
 * registers with an agent token (--token, POST /agents/join) at --url and
 * becomes a node of role agent in the token's pool, which the claim query
 * hands only that pool's jobs; deleting the token makes the primaries
 * refuse its credential, and it then drains and stops as below.
 *
 * States: joining -> active -> draining -> (left).  SIGTERM or SIGINT
 * starts draining: no more claims, state "draining" reported at once, the
 * jobs in hand run to their end; then POST /nodes/leave and a clean exit.
 * Another signal while draining only says so: jobs are never killed by
 * it.
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#ifndef TR_SECONDARY_H
#define TR_SECONDARY_H

#include "core/config.h"
#include "core/err.h"

/* Runs the secondary until it has drained and left.  TR_OK after a
 * clean drain (or a signal before it joined); otherwise the reason in
 * eb (a refused join token or credential: TR_ERR_UNAUTHORIZED). */
tr_err secondary_run(const struct cfg *cfg, struct tr_errbuf *eb);

/* The daemon's argv, which a worker is started with (terraced.c sets it
 * before secondary_run()). */
void secondary_set_argv(char *const *argv);

#endif
