/*
 * sandbox.h - starting tofu in a sandbox: bubblewrap where it works,
 * rlimits and a clean environment always.
 *
 * sandbox_new() probes bubblewrap once by running a trivial command with
 * the exact options runs use.  If bwrap is missing or the probe fails
 * (no namespaces in a container, say) it logs one warning, "bubblewrap
 * unavailable; running tofu without a sandbox", and every later spawn
 * runs the program directly.
 *
 * Inside bubblewrap: new mount, pid, ipc and uts namespaces; the root
 * filesystem read-only; a fresh /proc, a minimal /dev and a tmpfs on
 * /tmp; only the paths in cmd->rw writable; the network shared with the
 * host; the sandbox dies with its parent.
 *
 * Always: the child is a session and process-group leader (its pid is
 * the group id, so killpg() reaches everything it starts); stdin is
 * /dev/null; stdout and stderr go into one pipe (or stdout to a file);
 * the environment is exactly cmd->envp; no descriptor leaks in; signal
 * mask and dispositions are reset; RLIMIT_CORE 0, RLIMIT_NOFILE and
 * RLIMIT_NPROC capped, RLIMIT_FSIZE bounded (RLIMIT_AS is left alone: Go
 * reserves large address ranges); it is killed if the thread that
 * started it dies.
 *
 * SIGINT reaches tofu, not bubblewrap: bwrap's outer process would die
 * of it and take the sandbox down with SIGKILL, so bwrap starts with
 * SIGINT ignored and runs the program through `env --default-signal=INT`.
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#ifndef TR_SANDBOX_H
#define TR_SANDBOX_H

#include <stdbool.h>
#include <sys/types.h>

#include "core/arena.h"
#include "core/err.h"

struct sandbox;

/* bwrap: the binary to use; NULL looks for "bwrap" on PATH; "" disables
 * the sandbox without a warning.  Never fails for a missing or broken
 * bwrap (that only selects the direct mode); TR_ERR_NOMEM otherwise. */
tr_err sandbox_new(const char *bwrap, struct sandbox **out,
                   struct tr_errbuf *eb);
void sandbox_free(struct sandbox *sb);
bool sandbox_isolated(const struct sandbox *sb);

struct sandbox_cmd {
    const char *const *argv; /* argv[0]: absolute path of the program */
    const char *const *envp; /* the whole environment */
    const char *cwd;
    const char *const *rw; /* writable directories, NULL-terminated */
    const char *const *ro; /* files or directories that must stay
                              visible (those under /tmp), NULL-term. */
    int stdout_fd;         /* -1: stdout joins stderr in the pipe */
};

/* Starts cmd.  *pid is the child (and its process group); *out_fd the
 * pipe's read end, non-blocking and close-on-exec, which the caller
 * closes.  A program that cannot be executed is TR_ERR_IO here, not a
 * child exit status.  Thread-safe. */
tr_err sandbox_spawn(const struct sandbox *sb, struct arena *a,
                     const struct sandbox_cmd *cmd, pid_t *pid, int *out_fd,
                     struct tr_errbuf *eb);

/* The signal that ended the program, from a waitpid() status: WTERMSIG,
 * or under bubblewrap an exit status of 128 + N (how bwrap reports a
 * child killed by signal N).  0 when it exited normally. */
int sandbox_exit_signal(const struct sandbox *sb, int wstatus);
/* The program's exit status (0..255) when sandbox_exit_signal() is 0. */
int sandbox_exit_code(int wstatus);

#endif
