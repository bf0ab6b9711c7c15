/*
 * cli.h - subcommands of the `terrace` operator CLI that live outside
 * src/main.
 *
 * Each returns the process exit status: 0 on success, 1 when the server
 * or the network refused the operation (the server's error detail has
 * been printed to stderr), 2 for a usage error.
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#ifndef TR_CLI_H
#define TR_CLI_H

/* `terrace admin ...`: users, tokens and organizations over the REST API.
 * argv[0] is "admin".  See the usage text in admin.c. */
int cli_admin(int argc, char **argv);
/* `terrace admin rekey` (rekey.c): argv[0] is "rekey". */
int cli_rekey(int argc, char **argv);

/* `terrace admin blob copy --to URL ...`: copies the node's blob store
 * to another, verified (blob_copy.c).  argv[0] is "blob". */
int cli_admin_blob(int argc, char **argv);

/* `terrace lb haproxy-config ...` (lb.c).  argv[0] is "lb". */
int cli_lb(int argc, char **argv);

/* `terrace cluster up|status|scale|kill|drain|down ...`: a local cluster
 * on loopback (cluster.c).  argv[0] is "cluster". */
int cli_cluster(int argc, char **argv);

#endif
