/*
 * sandbox.h - starting a tenant's program (tofu and everything it runs)
 * where it cannot reach the node or another tenant.
 *
 * The code in a run is the tenant's and may be hostile.  What a
 * sandboxed program gets (sandbox.c):
 *   - an unprivileged identity: when the node runs as root, the run
 *     user (settings run-uid, default 1000000000, gid the same) with no
 *     capabilities, an empty bounding set and no_new_privs; when it does
 *     not, a user namespace with every capability dropped and further
 *     user namespaces disabled (the run then shares the node's uid, which
 *     sandbox_describe() reports);
 *   - fresh pid, ipc, uts and cgroup namespaces and a mount namespace
 *     built from nothing: /usr (and the /bin, /lib... links to it) and a
 *     short list of /etc files read-only (copied once into a directory
 *     bound as /etc, sandbox_etc.c, when the caller gives one), a synthetic
 * /etc/passwd and /etc/group naming the run user, a fresh /proc and a minimal
 * /dev, the caller's mounts (cmd->mounts, writable or not), cmd->tmp as /tmp
 * and cmd->shm as /dev/shm; the root itself is then made read-only.  The node's
 * data directory, configuration, keys, other runs and the server's /proc are
 * simply not there;
 *   - a seccomp filter (seccomp.c) that refuses mount, namespace,
 *     ptrace, keyring, module, bpf and similar calls;
 *   - exactly cmd->envp as its environment: bubblewrap itself starts with
 *     an empty one, and the variables reach it with its other options
 *     through a descriptor (--args), never a command line, so no value
 *     shows in /proc/PID/cmdline or bwrap's own environment;
 *   - rlimits (struct sandbox_limits) on memory per process, the run
 *     user's task count, CPU time, open files and file size, which bind
 *     because the program is not root; per-run totals are watched by the
 *     caller (monitor.c).
 *
 * How: as root, bubblewrap sets up the namespaces with its privileges
 * and execs setpriv(1), which drops to the run user just before the
 * program (an unprivileged bubblewrap could not bind paths only root can
 * reach, and a root-created user namespace would map the program to root
 * outside, where RLIMIT_NPROC never binds and root-owned files stay the
 * owner's).  Not root: bubblewrap unprivileged, in a user namespace.
 *
 * sandbox_new() probes the exact set-up once.  When bubblewrap is
 * missing or fails (no namespaces in a container, say) the sandbox is
 * "not isolated": sandbox_describe() says why, and the caller decides
 * whether runs may go ahead (allow-unsandboxed-runs).  Unisolated spawns
 * still drop to the run user when root and keep the rlimits and the
 * clean environment.
 *
 * Always: the child is a session and process-group leader (its pid is
 * the group id, so killpg() reaches everything it starts that stays in
 * the group; under bubblewrap the whole pid namespace dies with it);
 * stdin is /dev/null; stdout and stderr go into one pipe (or stdout to a
 * file); no descriptor of the daemon leaks in; signal mask and
 * dispositions are reset; it is killed if the thread that started it
 * dies.  SIGINT reaches the program, not bubblewrap: bwrap would die of
 * it and take the sandbox down with SIGKILL, so bwrap starts with SIGINT
 * ignored and the program runs through `env --default-signal=INT`.
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#ifndef TR_SANDBOX_H
#define TR_SANDBOX_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "core/arena.h"
#include "core/err.h"

struct sandbox;

/* Per-process limits set before the program starts (0: leave alone). */
struct sandbox_limits {
    int64_t data_bytes; /* RLIMIT_DATA: memory one process may map */
    int64_t tasks;      /* RLIMIT_NPROC of the run user: processes and
                           threads of every run on the node together */
    int64_t cpu_s;      /* RLIMIT_CPU, seconds per process */
    int64_t open_files; /* RLIMIT_NOFILE */
    int64_t file_bytes; /* RLIMIT_FSIZE: the largest file */
};

struct sandbox_opts {
    const char *bwrap; /* NULL or "": "bwrap" on PATH; "none": no
                          sandbox */
    uid_t run_uid;     /* the run user when the node is root */
    gid_t run_gid;
    struct sandbox_limits limits;
    const char *etc_dir;     /* a directory of the node's where the /etc
                                entries runs see are copied once, to be
                                bound as one (sandbox_etc.c); NULL: bind
                                them one by one at each start */
    const char *const *hide; /* paths that must never be visible (the
                                data dir, config and key files), masked
                                when under a system path the sandbox
                                shows; NULL-terminated, may be NULL */
};

/* Never fails for a missing or broken bubblewrap (that only makes the
 * sandbox unisolated); TR_ERR_NOMEM or TR_ERR_INTERNAL (the seccomp
 * filter cannot be built) otherwise. */
tr_err sandbox_new(const struct sandbox_opts *o, struct sandbox **out,
                   struct tr_errbuf *eb);
void sandbox_free(struct sandbox *sb);

/* True when programs run inside bubblewrap's namespaces. */
bool sandbox_isolated(const struct sandbox *sb);
/* True when programs run as a user of their own (the node is root). */
bool sandbox_own_user(const struct sandbox *sb);
/* Why the sandbox is not isolated ("" when it is). */
const char *sandbox_reason(const struct sandbox *sb);
/* The uid and gid programs run as (the node's own when not root). */
void sandbox_ids(const struct sandbox *sb, uid_t *uid, gid_t *gid);

/* A host path shown at view inside the sandbox. */
struct sandbox_mount {
    const char *host;
    const char *view; /* absolute; its parents are made reachable */
    bool rw;
};

/* Paths in argv, envp, cwd and home are the program's view of them;
 * unisolated, views must equal host paths (the caller's business). */
struct sandbox_cmd {
    const char *const *argv; /* argv[0]: absolute path of the program */
    const char *const *envp; /* the whole environment */
    const char *cwd;
    const struct sandbox_mount *mounts;
    int nmounts;
    const char *tmp;  /* host directory shown as /tmp, or NULL */
    const char *shm;  /* host directory shown as /dev/shm, or NULL */
    const char *home; /* the run user's home in /etc/passwd */
    int stdout_fd;    /* -1: stdout joins stderr in the pipe */
};

/* Starts cmd.  *pid is the child (and its process group); *out_fd the
 * pipe's read end, non-blocking and close-on-exec, which the caller
 * closes.  A program that cannot be executed is TR_ERR_IO here, not a
 * child exit status (under bubblewrap, bwrap's own complaint arrives in
 * the pipe with exit status 1).  Thread-safe. */
tr_err sandbox_spawn(const struct sandbox *sb, struct arena *a,
                     const struct sandbox_cmd *cmd, pid_t *pid, int *out_fd,
                     struct tr_errbuf *eb);

/* The signal that ended the program, from a waitpid() status: WTERMSIG,
 * or under bubblewrap an exit status of 128 + N (how bwrap reports a
 * child killed by signal N).  0 when it exited normally. */
int sandbox_exit_signal(const struct sandbox *sb, int wstatus);
/* The program's exit status (0..255) when sandbox_exit_signal() is 0. */
int sandbox_exit_code(int wstatus);

/* The seccomp program (classic BPF, struct sock_filter[]) every
 * sandboxed program runs under (seccomp.c); malloc'd into *prog. */
tr_err sandbox_seccomp_program(unsigned char **prog, size_t *len,
                               struct tr_errbuf *eb);

#endif
