/*
 * reaper.h - the timer thread behind run leases: every interval it errors
 * the runs whose worker stopped heartbeating and schedules workspaces
 * whose waiting runs can go (run_expire()).
 *
 * Started by node.c after the store is open and stopped before it is
 * closed.  It runs on every node but does its passes only while the
 * node leads (srv->is_leader; the demo always does).
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#ifndef TR_REAPER_H
#define TR_REAPER_H

#include "core/err.h"
#include "core/server.h"

struct reaper;

/* Starts the thread; interval_ms between passes (at least 10). */
tr_err reaper_start(struct terrace_server *srv, int interval_ms,
                    struct reaper **out, struct tr_errbuf *eb);
/* Stops and joins the thread (a pass in progress completes); NULL
 * ignored. */
void reaper_stop(struct reaper *r);

#endif
