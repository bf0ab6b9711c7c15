/*
 * node.h - one Terrace node: opens the store and blob store, prepares TLS
 * and the first admin, serves the API and runs until SIGTERM/SIGINT.
 *
 * Used by terraced (every role) and by `terrace demo`.  The secondary
 * role is node/secondary.h: node_run() hands it over (ready is not called).
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#ifndef TR_NODE_H
#define TR_NODE_H

#include "core/config.h"
#include "core/err.h"
#include "core/server.h"

/* Called once the node is listening (e.g. to print the demo banner). */
typedef void (*node_ready_fn)(const struct terrace_server *srv,
                              const char *admin_token_path, void *arg);

/* Runs the node in the calling thread; returns after a clean shutdown.
 * Blocks SIGTERM, SIGINT and SIGHUP in every thread it starts. */
tr_err node_run(const struct cfg *cfg, node_ready_fn ready, void *arg,
                struct tr_errbuf *eb);

#endif
