/*
 * executor.h - the worker side of runs: threads that claim plan and apply
 * jobs through a struct job_api (job.h) and run tofu for them.
 *
 * Each worker thread loops claim -> run the phase -> finish.  Running a
 * phase means: a fresh working directory DATA/work/<job-id> holding the
 * extracted configuration, an override that points the `cloud` backend at
 * Terrace with the run's token, the variables, and a CLI config file; the
 * tool binary checked against its registered sha256; tofu started in a
 * sandbox (sandbox.h) with a clean environment; its output streamed to
 * append_log() with sensitive values scrubbed; heartbeats every
 * heartbeat_ms that also bring cancel requests; the phase timeout; then
 * finish() and the directory removed, on every path - except that a
 * finished plan's directory may be kept a while for the run's apply on
 * this node, which then skips fetching the plan and `tofu init` (keep.c).
 *
 * The executor never touches the database: the demo passes the in-process
 * job API, a secondary node an HTTP one, and nothing else changes.
 *
 * Thread safety: executor_start() and executor_stop() are called from one
 * thread; everything else here is safe from any thread.
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#ifndef TR_EXECUTOR_H
#define TR_EXECUTOR_H

#include <stdbool.h>
#include <stdint.h>

#include "core/arena.h"
#include "core/err.h"
#include "executor/job.h"

struct executor;

struct executor_opts {
    int workers;                 /* worker threads (0: start none) */
    const char *node;            /* this node's name, given to claim() */
    const char *data_dir;        /* work/ and plugin-cache/ live here */
    const char *provider_mirror; /* filesystem mirror dir, or NULL/"" */
    const char *bwrap;           /* NULL or "": "bwrap" on PATH; "none":
                                    no sandbox */
    bool allow_unsandboxed;      /* run jobs even without a sandbox */
    unsigned run_uid;            /* the run user, when the node is root */
    int64_t run_memory_mb;       /* per run, all its processes; 0: none */
    int64_t run_tasks;           /* processes and threads per run */
    int64_t run_disk_mb;         /* working directory + cache growth */
    int64_t run_cpu_s;           /* CPU seconds per process */
    int64_t run_open_files;      /* per process */
    int64_t run_gogc;            /* GOGC for a run's processes, with a
                                    GOMEMLIMIT of run_memory_mb / 8; 0:
                                    neither */
    const char *const *hide;     /* paths a run must never see (the
                                    data dir, config and key files) */
    int64_t plan_timeout_s;      /* for jobs that carry no timeout */
    int64_t apply_timeout_s;
    int grace_ms;            /* SIGINT to SIGKILL on timeout and shutdown */
    int lost_grace_ms;       /* SIGINT to SIGKILL once the lease is lost */
    int heartbeat_ms;        /* heartbeat (and cancel check) interval */
    int flush_ms;            /* longest a log byte waits before append_log() */
    int claim_wait_ms;       /* long-poll passed to claim() */
    int keep_ms;             /* a plan's directory waits this long for the
                                run's apply on this node (keep.c); 0: never */
    int64_t max_config_size; /* configurations unpacked, bytes (archive.h) */
    int max_config_ratio;    /* unpacked per compressed byte; 0: any */
};

/* Production values: 2 workers, 2 h timeouts, 10 s grace, heartbeats
 * every 2 s, log flushes every 200 ms, 1 s claims, plan directories kept
 * 10 min for the apply; configurations up to 512 MiB unpacked and 500
 * times their compressed size (the max-config-* settings' defaults);
 * runs as uid 1000000000 with 4 GiB of memory, 2048 tasks, 20 GiB of
 * disk, 2 h of CPU per process and 4096 open files, GOGC=800; no runs
 * without a sandbox. */
void executor_defaults(struct executor_opts *o);

/* Prepares DATA/work (removing what a previous process left there) and
 * DATA/plugin-cache, probes the sandbox once (logging one warning if
 * bubblewrap cannot be used), and starts o->workers threads calling api.
 * The api struct is copied; api->ctx must outlive the executor. */
tr_err executor_start(const struct executor_opts *o, const struct job_api *api,
                      struct executor **out, struct tr_errbuf *eb);

/* Stops claiming, interrupts running phases (SIGINT, then SIGKILL after
 * the grace period; they finish as errored), joins the threads and frees
 * x.  Call before the job API's backing services shut down.  NULL is a
 * no-op. */
void executor_stop(struct executor *x);

/* Checks the given tool binaries' sha256 in a background thread, so the
 * first job after start does not wait for the hash of a 100+ MB binary
 * (jobs still check: a binary changed since is hashed again).  Call once,
 * after executor_start(). */
void executor_prewarm(struct executor *x, const char *const *paths, int n);

/* True when tofu runs inside bubblewrap. */
/* How many plan directories are kept for their runs' applies (keep.c):
 * a node holding one is not idle. */
int executor_kept(struct executor *x);

bool executor_sandboxed(const struct executor *x);

/* The sandbox as a JSON object text for the full health check:
 * {"isolated":true,"user":"unprivileged"|"node","runs":"allowed"|"refused",
 * "reason":"..."}, in a. */
const char *executor_sandbox_json(const struct executor *x, struct arena *a);

/* Checks that path is absolute and names an executable regular file, and
 * computes its sha256 (lower-case hex in a).  TR_ERR_INVALID with the
 * reason otherwise (TR_ERR_IO if it cannot be read). */
tr_err executor_tool_check(struct arena *a, const char *path, char **sha256,
                           struct tr_errbuf *eb);

/* Runs `path version -json` (no sandbox, 10 s limit) and returns its
 * terraform_version in a. */
tr_err executor_tool_version(struct arena *a, const char *path, char **version,
                             struct tr_errbuf *eb);

/* The tofu binary a demo node offers when no tool version is registered:
 * configured (the tofu-bin setting, TERRACE_TOFU_BIN) if set, else `tofu`
 * on PATH, else $HOME/.cache/terrace/tofu-VERSION/tofu (the newest
 * VERSION).  The path (absolute, in a) or NULL when none exists. */
const char *executor_find_tofu(struct arena *a, const char *configured);

#endif
