/*
 * blob_gc.h - blob garbage collection: the leader removes objects no row
 * references any more (deleted workspaces' state and runs, configuration
 * uploads replaced or never recorded, logs of deleted runs, uploads of
 * finished jobs) once they are older than a grace period, and log chunks
 * already compacted into a blob or whose phase is gone.
 *
 * Started by node.c after the store and blob store are open, stopped
 * before they close.  It runs on every node but does its passes only
 * while the node leads (srv->is_leader; the demo always does).
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#ifndef TR_BLOB_GC_H
#define TR_BLOB_GC_H

#include <stdint.h>

#include "core/err.h"
#include "core/server.h"

struct blob_gc;

/* What one pass saw and did. */
struct blob_gc_stats {
    int64_t listed;        /* objects listed */
    int64_t young;         /* younger than the grace period: untouched */
    int64_t removed;       /* objects removed */
    int64_t removed_bytes; /* their stored size */
    int64_t failed;        /* removals that failed (tried again next pass) */
    int64_t chunks;        /* log chunk rows deleted */
};

/* One pass: lists every object, checks the ones older than grace_s
 * seconds against the database a page (STORE_GC_PAGE) at a time and
 * removes those no row references; then deletes stale log chunks.  An
 * object written but not yet recorded is younger than the grace period,
 * so the grace period must exceed the longest time between writing an
 * object and committing its row (an upload's last byte and its commit).
 * Stops at the first listing or database error; a failed removal is
 * counted and the pass goes on. */
tr_err blob_gc_pass(struct terrace_server *srv, int64_t grace_s,
                    struct blob_gc_stats *st, struct tr_errbuf *eb);

/* Starts the thread: a pass at once, then every cfg.blob_gc_interval
 * seconds with cfg.blob_gc_grace; *out NULL (nothing started) when the
 * interval is 0. */
tr_err blob_gc_start(struct terrace_server *srv, struct blob_gc **out,
                     struct tr_errbuf *eb);
/* Stops and joins the thread (a pass in progress ends at its next page);
 * NULL ignored. */
void blob_gc_stop(struct blob_gc *g);

#endif
