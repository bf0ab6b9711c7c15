/*
 * job.h - the interface between the executor and the server: how a worker
 * claims a plan or apply job, reports on it and finishes it.
 *
 * The executor only ever talks through struct job_api.  The demo uses the
 * in-process implementation (job_local.c, direct calls into the domain
 * layer); a secondary node uses the HTTP implementation (job_http.h) of
 * the same operations against the primaries' internal API.  So everything a job
 * needs travels in struct job or through these calls, never by reading
 * the database directly.
 *
 * Lifecycle of one job, as the executor drives it:
 *   claim -> (heartbeat | append_log)* -> finish [-> attach_json]
 * A job whose heartbeats stop for longer than its lease is failed by the
 * server ("the worker stopped responding"); an apply is never re-run.
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#ifndef TR_JOB_H
#define TR_JOB_H

#include <stdbool.h>
#include <stdint.h>

#include "core/arena.h"
#include "core/err.h"

enum job_phase { JOB_PLAN = 1, JOB_APPLY = 2 };

struct job_var {
    const char *key;
    const char *value; /* plaintext (decrypted for the worker) */
    bool env;          /* category env (else terraform) */
    bool hcl;
    bool sensitive; /* never written to logs */
};

/* Everything a worker needs to run one phase.  Strings live in the arena
 * passed to claim(). */
struct job {
    const char *id; /* job id */
    enum job_phase phase;
    const char *run_id;
    const char *phase_id; /* plan-... or apply-... */
    const char *org;
    const char *org_id;    /* org-...: names its provider cache */
    const char *workspace; /* name */
    const char *workspace_id;
    const char *cv_id;             /* configuration version */
    const char *working_directory; /* workspace's, relative, may be "" */
    const char *tool_version;      /* resolved concrete version */
    const char *tool_path;         /* registered binary for it */
    const char *tool_sha256;       /* expected checksum of tool_path */
    const char *token;             /* run-scoped API token (secret) */
    const char *api_url;           /* external URL of Terrace */
    const char *ca_file; /* CA the worker trusts for api_url, or NULL */
    const char *ssh_key; /* the workspace's SSH private key for git in
                            tofu init (secret), or NULL */
    bool speculative;
    bool is_destroy;
    bool refresh;
    bool refresh_only;
    bool save_plan;
    bool structured;      /* the workspace has structured run
                             output: tofu writes JSON logs (-json),
                             which the CLI renders */
    bool want_schemas;    /* the plan will be rendered from its
                             JSON (saved plan, structured output):
                             report the provider schemas too */
    bool defer_json;      /* plan: the run applies at once and nothing
                             renders its JSON before: with changes, the
                             counts may come from tofu's summary and
                             `show -json` wait for the apply */
    bool make_json;       /* apply: the plan came without its JSON:
                             make it beside the apply and report it */
    const char **targets; /* -target addresses */
    int ntargets;
    const char **replaces; /* -replace addresses */
    int nreplaces;
    struct job_var *vars; /* effective variables (run vars win) */
    int nvars;
    int64_t timeout_s; /* wall-clock limit for the phase */
};

/* What a finished phase reports. */
enum job_outcome {
    JOB_FINISHED = 1,       /* tofu exited 0 */
    JOB_ERRORED = 2,        /* tofu failed, or the worker could not run it */
    JOB_CANCELED = 3,       /* stopped by cancel (SIGINT) */
    JOB_FORCE_CANCELED = 4, /* killed by force-cancel */
};

struct job_result {
    enum job_outcome outcome;
    const char *error; /* short reason when not finished */
    bool has_changes;  /* plan */
    int additions, changes, destructions, imports;
    const char *plan_file;      /* local path of the binary plan (plan) */
    const char *json_plan_file; /* local path of `show -json` output (plan;
                                   apply with make_json) */
    const char *schemas_file;   /* `providers schema -json` output, or NULL */
};

struct job_api {
    void *ctx;
    /* Waits up to wait_ms for a job; TR_ERR_NOT_FOUND if none came. */
    tr_err (*claim)(void *ctx, struct arena *a, const char *node, int wait_ms,
                    struct job *out, struct tr_errbuf *eb);
    /* Extends the lease; *cancel is 1 for cancel, 2 for force-cancel. */
    tr_err (*heartbeat)(void *ctx, const char *job_id, int *cancel,
                        struct tr_errbuf *eb);
    /* Appends raw tofu output (already free of secrets).  offset: the
     * bytes of this job's log handed to append_log before (acknowledged
     * or not), so that a chunk sent again is stored once. */
    tr_err (*append_log)(void *ctx, const char *job_id, const char *data,
                         size_t len, uint64_t offset, struct tr_errbuf *eb);
    /* Writes the configuration tarball to dest_path. */
    tr_err (*fetch_config)(void *ctx, const char *job_id, const char *dest_path,
                           struct tr_errbuf *eb);
    /* Writes the plan file saved by the plan phase (apply jobs). */
    tr_err (*fetch_plan)(void *ctx, const char *job_id, const char *dest_path,
                         struct tr_errbuf *eb);
    /* Ends the job: uploads plan files, closes the log, moves the run on. */
    tr_err (*finish)(void *ctx, const char *job_id,
                     const struct job_result *res, struct tr_errbuf *eb);
    /* After finish: records the JSON plan an apply job made (the file at
     * path) on its run's plan, which the run went on without.  The job
     * must be this node's ended apply and the plan without a JSON plan
     * (TR_ERR_CONFLICT otherwise).  Optional (NULL). */
    tr_err (*attach_json)(void *ctx, const char *job_id, const char *path,
                          struct tr_errbuf *eb);
    /* *final: the run has ended (no apply will come); optional (NULL). */
    tr_err (*run_final)(void *ctx, const char *run_id, bool *final,
                        struct tr_errbuf *eb);
};

#endif
