/*
 * cluster_int.h - helpers of the local cluster launcher (cluster.c):
 * child processes, the throwaway PostgreSQL server, the node list in
 * DIR/nodes and HTTPS requests to the nodes.
 *
 * Processes are started in their own session (setsid) with stdin from
 * /dev/null and stdout and stderr appended to a log file, so they outlive
 * the `terrace cluster up` that started them and never hold its pipes.
 * Every process of a cluster has the cluster's directory on its command
 * line; cl_alive() checks that, so a recycled pid is never signalled.
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#ifndef TR_CLI_CLUSTER_INT_H
#define TR_CLI_CLUSTER_INT_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "core/arena.h"
#include "core/err.h"

#define CL_MAX_NODES 256

struct cl_node {
    char name[16]; /* p1, s3, haproxy, postgres */
    long pid;
    char role[16];  /* primary | secondary | lb | postgres */
    char addr[256]; /* URL, or unix:DIR for PostgreSQL */
};

struct cl_nodes {
    struct cl_node n[CL_MAX_NODES];
    int count;
};

/* Starts argv[0] (an absolute path) with argv, output appended to log.
 * env: NAME=VALUE strings to set and NAME strings to unset (NULL-
 * terminated), or NULL.  as_postgres:
 * drop to the postgres user first when running as root (initdb refuses
 * root).  *pid gets the child's pid. */
tr_err cl_spawn(const char *log, char *const argv[], char *const env[],
                bool as_postgres, pid_t *pid, struct tr_errbuf *eb);

/* cl_spawn() and wait for the exit: TR_OK only for exit status 0. */
tr_err cl_run(const char *log, char *const argv[], bool as_postgres,
              struct tr_errbuf *eb);

/* Whether pid runs (not a zombie) with dir on its command line. */
bool cl_alive(long pid, const char *dir);

/* Sends sig to pid if cl_alive(pid, dir); false when it was not. */
bool cl_signal(long pid, const char *dir, int sig);

/* Waits up to ms milliseconds for pid to stop being cl_alive(). */
bool cl_wait_gone(long pid, const char *dir, int ms);

/* The absolute path of program name: PATH, then /usr/sbin and /sbin.
 * NULL when not found. */
char *cl_which(struct arena *a, const char *name);

/* A TCP port free on ip at the time of the call. */
tr_err cl_free_port(const char *ip, int *port, struct tr_errbuf *eb);

/* GET url (CA ca, Bearer token unless NULL) with a timeout in seconds.
 * *status is 0 when no answer came; *body (may be NULL) in a. */
tr_err cl_get(struct arena *a, const char *url, const char *ca,
              const char *token, long timeout_s, long *status, char **body,
              struct tr_errbuf *eb);

/* Starts PostgreSQL in dir/pg (initdb on first use), listening only on a
 * unix socket there; *conninfo (in a) and *pid (the postmaster). */
tr_err cl_pg_start(struct arena *a, const char *dir, char **conninfo, long *pid,
                   struct tr_errbuf *eb);

/* Stops the PostgreSQL server of dir/pg (fast shutdown), if it runs. */
tr_err cl_pg_stop(const char *dir, struct tr_errbuf *eb);

/* DIR/nodes: one line per node, "name pid role address". */
tr_err cl_nodes_read(const char *dir, struct cl_nodes *out,
                     struct tr_errbuf *eb);
tr_err cl_nodes_write(const char *dir, const struct cl_nodes *ns,
                      struct tr_errbuf *eb);
struct cl_node *cl_nodes_find(struct cl_nodes *ns, const char *name);

/* Writes data to path atomically (temporary file, rename), mode. */
tr_err cl_write_file(const char *path, const char *data, size_t len, int mode,
                     struct tr_errbuf *eb);

/* ---- the launcher's state (cluster.c, cluster_up.c) ---- */

struct cl_opts {
    const char *dir, *database_url, *terraced, *tofu_bin, *haproxy;
    const char *node, *signal, *listen;
    int primaries, secondaries, capacity, executors;
};

struct cl_ctx {
    struct arena *a; /* everything below that points, points here */
    struct cl_opts o;
    char dir[PATH_MAX]; /* absolute */
    struct cl_nodes nodes;
    const char *terraced, *tofu, *conninfo;
    char url[128]; /* the load balancer */
    char ca[PATH_MAX + 16];
    bool has_kek, has_blob, has_secondary; /* what terraced knows */
    char join_token[512];
};

/* DIR/ + the file named by fmt and arg, in c->a. */
char *cl_path(struct cl_ctx *c, const char *fmt, const char *arg);
tr_err cl_copy_file(struct cl_ctx *c, const char *from, const char *to,
                    int mode, struct tr_errbuf *eb);
tr_err cl_make_dir(const char *p, int mode, struct tr_errbuf *eb);
/* The first line of DIR/file into out (n bytes). */
tr_err cl_read_line(struct cl_ctx *c, const char *file, char *out, size_t n,
                    struct tr_errbuf *eb);

/* Appends a node and rewrites DIR/nodes. */
tr_err cl_add_node(struct cl_ctx *c, const char *name, long pid,
                   const char *role, const char *addr, struct tr_errbuf *eb);
/* Waits until n (a child of this process) answers its readiness check
 * through the cluster CA; TR_ERR_IO when it exits or times out. */
tr_err cl_wait_ready(struct cl_ctx *c, const struct cl_node *n,
                     struct tr_errbuf *eb);
/* Starts secondary sI with c->join_token (not awaited), its tool cache
 * seeded from DIR/tools (cl_tools_share()). */
tr_err cl_start_secondary(struct cl_ctx *c, int i, struct tr_errbuf *eb);

/* ---- cluster_tools.c: one tool copy for the secondaries ------------- */

/* Hard-links the tools in DIR/tools into data's tool cache. */
void cl_tools_share(struct cl_ctx *c, const char *data);
/* Waits until secondary n has fetched and verified a tool, then links it
 * into DIR/tools; TR_ERR_IO when n exits or takes too long. */
tr_err cl_tools_from_first(struct cl_ctx *c, const struct cl_node *n,
                           struct tr_errbuf *eb);
/* The join token through the admin API into c->join_token and
 * DIR/join-token; *missing when the server answers 404. */
tr_err cl_fetch_join_token(struct cl_ctx *c, bool *missing,
                           struct tr_errbuf *eb);
/* Stops the load balancer, the secondaries, the primaries (SIGTERM, then
 * SIGKILL) and PostgreSQL; true when no process is left. */
bool cl_stop_all(struct cl_ctx *c);
/* `terrace cluster up`; the exit status. */
int cl_cmd_up(struct cl_ctx *c);

#endif
