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

#include <stdbool.h>
#include <stddef.h>

#include "core/config.h"
#include "core/err.h"
#include "core/server.h"

/* Called once the node is listening (e.g. to print the demo banner). */
typedef void (*node_ready_fn)(const struct terrace_server *srv,
                              const char *admin_token_path, void *arg);

/* Runs the node in the calling thread; returns after a clean shutdown.
 * Blocks SIGTERM, SIGINT and SIGHUP in every thread it starts. */
struct executor_opts;
/* Fills *o from c for workers executor threads: node receives the node's
 * name, hide (5 slots) the paths no run may see; both must outlive the
 * executor's start. */
void node_executor_opts(const struct cfg *c, int workers, char node[128],
                        const char *hide[5], struct executor_opts *o);

tr_err node_run(const struct cfg *cfg, node_ready_fn ready, void *arg,
                struct tr_errbuf *eb);

/* ---- the keyring the settings name (keyring.c) ---- */
struct keyring;
/* --kek-file, or DATA/kek, into out. */
void node_kek_path(const struct cfg *c, char *out, size_t n);
/* The key file's keyring; made when missing only if create (else
 * TR_ERR_NOT_FOUND). */
tr_err node_keyring_file(const struct cfg *c, bool create, struct keyring **out,
                         struct tr_errbuf *eb);
/* The Vault keyring of the vault-* settings (VAULT_TOKEN when no token
 * file or AppRole is set).  TR_ERR_UNAVAILABLE: Vault cannot be reached. */
tr_err node_keyring_vault(const struct cfg *c, struct keyring **out,
                          struct tr_errbuf *eb);
/* Vault when vault-addr is set, holding the key file (when there is one)
 * as its old keyring; else the key file, made when missing if
 * create_file. */
tr_err node_keyring_open(const struct cfg *c, bool create_file,
                         struct keyring **out, struct tr_errbuf *eb);

#endif
