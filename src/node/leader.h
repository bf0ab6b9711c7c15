/*
 * leader.h - a primary's place in the cluster: leader election, its row
 * in the node registry, and wake-ups from the other primaries.
 *
 * Exactly one primary at a time holds the leader lock (a PostgreSQL
 * session advisory lock on a connection of its own) and sets
 * srv->is_leader; the singleton loops (lease reaper and timeouts,
 * blob garbage collection, pruning of dead nodes) run only there.  A demo or
 * SQLite node is always leader and starts none of this.
 *
 * Every primary registers itself (role primary, its external URL,
 * version, capacity = executors), heartbeats every LEADER_HEARTBEAT_S
 * and marks itself gone on a clean stop.
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#ifndef TR_LEADER_H
#define TR_LEADER_H

#include "core/err.h"
#include "core/server.h"

#define LEADER_TICK_MS 1000    /* lock attempts and connection checks */
#define LEADER_HEARTBEAT_S 5   /* registry heartbeats */
#define LEADER_STALE_S 30      /* a node silent this long is gone */
#define LEADER_FORGET_S 604800 /* and forgotten after 7 days */
#define LEADER_KNOWN_S 15      /* readiness: the leader's heartbeat age */

struct leader;

/* Registers this primary and starts the election and registry threads;
 * srv->db must be open and migrated.  *out is stopped with
 * leader_stop(). */
tr_err leader_start(struct terrace_server *srv, struct leader **out,
                    struct tr_errbuf *eb);
/* Steps down (srv->is_leader 0 first), stops the threads, closes the
 * election connection and marks this node gone; NULL ignored. */
void leader_stop(struct leader *l);

/* NULL when this node is ready as far as the cluster goes: a leader
 * known (this node leads, or a primary flagged leader
 * heartbeated in the last LEADER_KNOWN_S seconds); otherwise the reason,
 * a static string. */
const char *cluster_not_ready(struct terrace_server *srv);

struct wakeup;

/* LISTENs on channel terrace_jobs on a connection of its own and wakes
 * this node's job claimers (srv->run_signal) on every notification and
 * after every reconnect (a notification may have been lost meanwhile).
 * PostgreSQL only. */
tr_err wakeup_start(struct terrace_server *srv, struct wakeup **out,
                    struct tr_errbuf *eb);
void wakeup_stop(struct wakeup *w); /* NULL ignored */

#endif
