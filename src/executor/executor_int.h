/*
 * executor_int.h - declarations shared inside the executor module:
 * executor.c (threads), workdir.c (the working directory) and tofu.c (the
 * phase driver).  Not for use outside src/executor and its unit tests.
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#ifndef TR_EXECUTOR_INT_H
#define TR_EXECUTOR_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <sys/stat.h>

#include "core/buf.h"
#include "executor/executor.h"
#include "executor/sandbox.h"

/* A tool binary's checksum, remembered with the file's identity: any
 * change to the file changes its ctime, so a match means the same bytes. */
struct tool_memo {
    char path[512];
    dev_t dev;
    ino_t ino;
    off_t size;
    struct timespec mtime, ctime;
    char sha256[65];
};

#define EXEC_TOOL_MEMOS 4

/* A run's apply started beside its plan, waiting (warm.c). */
struct exec_warm {
    pid_t pid; /* 0: none */
    int fd;    /* its output pipe; -1: none */
    char *dir; /* malloc'd: the node's directory shown at VIEW_WARM */
    unsigned char digest[32]; /* of the command it was started as */
};

/* No early apply. */
#define EXEC_WARM_NONE ((struct exec_warm){.fd = -1})

/* *w, which is left empty: the caller now owns its process and pipe. */
static inline struct exec_warm warm_move(struct exec_warm *w)
{
    struct exec_warm t = *w;
    *w = EXEC_WARM_NONE;
    return t;
}

/* A plan's working directory kept for the run's apply (keep.c). */
struct exec_kept {
    char run_id[64];
    char *root;      /* malloc'd; NULL: the slot is free */
    char *cwd;       /* malloc'd */
    char sha256[65]; /* of root/plan.tfplan when the plan finished */
    int64_t at_ms;
    struct exec_warm warm; /* the apply already started, if any */
};

#define EXEC_KEEP_MAX 16

/* A workspace's last `tofu init`, remembered (init_memo.c). */
struct exec_init {
    char ws[64];   /* workspace id */
    char key[65];  /* init_key.key it was made under */
    char *dir;     /* malloc'd: DATA/init-cache/<ws>-<random>; NULL: free */
    int64_t at_ms; /* made or last taken */
};

#define EXEC_INIT_MAX 64

/* What every job of one executor shares; read-only once threads run,
 * except the atomic stopping flag and the memo (under memo_mu). */
struct exec_ctx {
    struct executor_opts o; /* strings owned by the executor */
    struct job_api api;
    struct sandbox *sb;
    const char *work_dir;  /* DATA/work */
    const char *cache_dir; /* DATA/provider-cache: one directory per
                              organization below */
    atomic_bool stopping;
    pthread_mutex_t memo_mu;
    struct tool_memo memo[EXEC_TOOL_MEMOS];
    int memo_next;
    pthread_mutex_t keep_mu;
    struct exec_kept keep[EXEC_KEEP_MAX];
    const char *init_dir; /* DATA/init-cache, or NULL: nothing remembered */
    unsigned char init_secret[32];
    pthread_mutex_t init_mu;
    struct exec_init inits[EXEC_INIT_MAX];
    /* workspaces whose key includes their terraform variables: a
     * remembered init did not fit them (init_memo_misfit()) */
    char init_vars[EXEC_INIT_MAX][64];
    int init_vars_next;
    /* workspaces whose init wrote the lock file over the configuration's
     * (none: "") and so is never remembered while it stays the same */
    struct {
        char ws[64];
        char lock[65];
        int64_t at_ms;
    } init_never[EXEC_INIT_MAX];
    int init_never_next;
};

/* executor_tool_check() for a job, skipping the hash when the file is
 * unchanged since the last check (executor.c). */
tr_err exec_tool_sha(struct exec_ctx *x, struct arena *a, const char *path,
                     char **sha256, struct tr_errbuf *eb);

/* A checksum sidecar, PATH.sha256: the file's sha256 with the identity
 * it had when it was verified (device, inode, size, mtime), written
 * atomically (temporary file, fsync, rename) after the check, so a file
 * verified once is trusted until it changes (executor.c).
 * exec_sidecar_read() is true with *sha256 (in a) only when the sidecar
 * still describes the file; a stale, torn or missing one is false. */
bool exec_sidecar_read(struct arena *a, const char *path, char **sha256);
tr_err exec_sidecar_write(struct arena *a, const char *path, const char *sha256,
                          struct tr_errbuf *eb);

/* The sha256 of the file at path, lower-case hex in a (executor.c). */
tr_err exec_file_sha256(struct arena *a, const char *path, char **sha256,
                        struct tr_errbuf *eb);

/* ---- the working directory (workdir.c) --------------------------------- */

struct workdir {
    const char *root;       /* DATA/work/<job-id>: everything below */
    const char *src;        /* root/src: the extracted configuration */
    const char *cwd;        /* src/<working directory>: where tofu runs */
    const char *home;       /* root/.home */
    const char *tmp;        /* root/.tmp: the run's /tmp */
    const char *shm;        /* root/.shm: the run's /dev/shm */
    const char *ca;         /* root/ca.pem: the roots the run trusts */
    const char *no_certs;   /* root/.no-cert-dir: never created, the run's
                               SSL_CERT_DIR when ca.pem holds every root */
    const char *cli_config; /* root/terraform.rc */
    const char *plan_file;  /* root/plan.tfplan */
    const char *json_plan;  /* root/plan.json */
    const char *schemas;    /* root/schemas.json */
    const char *ssh_key;    /* root/ssh_key: the job's SSH key, if any */
    const char *cache;      /* DATA/provider-cache/<organization id> */
    bool roots;             /* ca.pem was written (SSL_CERT_FILE) */
    bool roots_all;         /* ...with the host's bundle: no directory scan */
};

/* Where a sandboxed run sees its directories (unsandboxed: where they
 * are).  The job's directory, its organization's provider cache, the
 * provider mirror and the tool binary. */
#define VIEW_JOB "/terrace/job"
#define VIEW_CACHE "/terrace/cache"
#define VIEW_MIRROR "/terrace/mirror"
#define VIEW_BIN "/terrace/bin"
/* an early apply's own directory (warm.c) and the names in it; an early
 * plan's */
#define VIEW_WARM "/terrace/warm"
#define VIEW_START "/terrace/start"
#define WARM_CONFIG "terraform.rc"
#define WARM_PLAN "plan.tfplan"

/* Creates the directory for job j with what does not come from its
 * configuration: the run's directories, the CLI config, the roots and
 * the SSH key (wd->cwd stays NULL).  wd->root is set as soon as the
 * directory may exist, so the caller removes it with workdir_remove()
 * whatever this returns.  Messages in eb are fit for the run log. */
tr_err workdir_begin(const struct exec_ctx *x, const struct job *j,
                     struct arena *a, struct workdir *wd, struct tr_errbuf *eb);

/* Then fetches and extracts the configuration, finds wd->cwd in it and
 * writes the override and variables files there. */
tr_err workdir_fill(const struct exec_ctx *x, const struct job *j,
                    struct arena *a, struct workdir *wd, struct tr_errbuf *eb);

/* Sets every path of wd below root except cwd and cache (the layout
 * above). */
void workdir_layout(struct arena *a, const char *root, struct workdir *wd);

/* wd as the run sees it: every path below wd->root moved to VIEW_JOB
 * and the cache to VIEW_CACHE when x's sandbox isolates, else wd. */
void workdir_view(const struct exec_ctx *x, struct arena *a,
                  const struct workdir *wd, struct workdir *view);

/* Hands path (and, if tree, everything below it, never following a
 * link) to the run user; a no-op unless runs have a user of their own.
 * Messages in eb are fit for the run log. */
tr_err workdir_give(const struct exec_ctx *x, const char *path, bool tree,
                    struct tr_errbuf *eb);

/* Readies a kept plan directory (keep.c) for job j, the run's apply:
 * sets wd->cache and writes the CLI config again with j's token. */
tr_err workdir_reuse(const struct exec_ctx *x, const struct job *j,
                     struct arena *a, struct workdir *wd, struct tr_errbuf *eb);

/* Removes dir and everything under it (never following symlinks); logs
 * what it could not remove.  NULL is a no-op. */
void workdir_remove(const char *dir);

/* Appends s as an HCL quoted string: quotes, backslashes and control
 * characters escaped, and the template sequences ${ and %{ written as
 * $${ and %%{ so they stay literal. */
tr_err workdir_hcl_string(struct buf *b, const char *s);

/* "host:port" (or "host") of an http(s) URL, in a; NULL if malformed. */
const char *workdir_url_host(struct arena *a, const char *url);

/* ---- plan directories kept for the apply (keep.c) ---------------------- */

/* Keeps wd (a finished plan's directory, plan file with the given sha256)
 * and the early apply *w (taken over, *w emptied; NULL or none: nothing)
 * for the apply of run_id; removes both instead when keeping is off or
 * the arguments are unusable.  The oldest entry goes when the table is
 * full. */
void keep_put(struct exec_ctx *x, const char *run_id, const struct workdir *wd,
              const char *plan_sha256, struct exec_warm *w);

/* Takes the directory kept for run_id into wd (paths in a) and its early
 * apply into *w (pid 0 when none); false if none is kept or its plan file
 * no longer has the recorded sha256 (then both are removed). */
bool keep_take(struct exec_ctx *x, struct arena *a, const char *run_id,
               struct workdir *wd, struct exec_warm *w);

/* Removes the entries older than keep_ms, or all of them. */
void keep_sweep(struct exec_ctx *x, bool all);

/* ---- the apply started beside its plan (warm.c) ------------------------ */

#define WARM_MOUNTS_MAX 8
#define WARM_IDLE_MS 10000 /* an early apply waits this long at most */

/* Starts cmd (the apply as it will run with its plan at
 * VIEW_WARM/WARM_PLAN and TF_CLI_CONFIG_FILE=VIEW_WARM/WARM_CONFIG, or a
 * plan with VIEW_START) with the host directory dir (created here) shown
 * at view; false (w empty, a warning logged) if it could not be
 * started. */
bool warm_start(struct exec_ctx *x, struct arena *a,
                const struct sandbox_cmd *cmd, const char *dir,
                const char *view, struct exec_warm *w);

/* True if w waits and was started as exactly cmd. */
bool warm_matches(const struct exec_warm *w, const struct sandbox_cmd *cmd);

/* Links plan_file (NULL: none) into w's directory and hands w the CLI
 * configuration at cli_config; TR_OK once the process read it (it is then
 * the apply and the caller takes over w->pid and w->fd).  Otherwise the
 * process has done nothing with the plan, and the caller kills it. */
tr_err warm_release(const struct exec_ctx *x, struct arena *a,
                    struct exec_warm *w, const char *plan_file,
                    const char *cli_config, struct tr_errbuf *eb);

/* Kills w's process (if pid > 0), reaps it, closes its pipe (if fd >= 0)
 * and removes its directory; w is then empty.  After a release the
 * caller takes pid and fd out and calls this once the process ended, for
 * the directory. */
void warm_kill(struct exec_warm *w);

/* ---- `tofu init` remembered per workspace (init_memo.c) ----------------- */

struct init_key {
    char key[65];     /* HMAC of init's inputs, hex; "" when none */
    const char *lock; /* sha256 of the configuration's lock file, "" if
                         it has none */
};

/* The key of job j's init in wd (prepared, init not yet run); false
 * when this init is never remembered (the configuration brings its own
 * .terraform, TF_DATA_DIR or TF_CLI_ARGS(_init) is set, the lock file is
 * not a plain file). */
bool init_memo_key(struct exec_ctx *x, const struct job *j, struct arena *a,
                   const struct workdir *wd, struct init_key *k);

/* Copies the workspace's remembered .terraform into wd->cwd, handed to
 * the run user, when it was made under k; false (nothing copied)
 * otherwise. */
bool init_memo_take(struct exec_ctx *x, const struct job *j, struct arena *a,
                    const struct workdir *wd, const struct init_key *k);

/* Remembers wd->cwd/.terraform, just made by init under k, for the
 * workspace, when another init from the same inputs must make the same
 * directory (see init_memo.c). */
void init_memo_put(struct exec_ctx *x, const struct job *j, struct arena *a,
                   const struct workdir *wd, const struct init_key *k);

/* Forgets the workspace's entry; init_memo_clear() forgets them all. */
void init_memo_drop(struct exec_ctx *x, const char *ws);

/* The workspace's entry did not fit its plan: forgets it, and from now
 * on keys the workspace's inits by its terraform variables too (the
 * last EXEC_INIT_MAX such workspaces are known). */
void init_memo_misfit(struct exec_ctx *x, const char *ws);
void init_memo_clear(struct exec_ctx *x);

/* ---- a run's totals against its limits (monitor.c) --------------------- */

enum monitor_hit { MONITOR_OK, MONITOR_MEMORY, MONITOR_TASKS, MONITOR_DISK };

struct monitor {
    /* limits, 0 = none; set by the caller */
    int64_t mem_limit;  /* bytes resident, all processes */
    int64_t task_limit; /* processes and threads */
    int64_t disk_limit; /* bytes under work, plus growth of cache */
    const char *work;   /* the job's directory */
    const char *cache;  /* the provider cache, or NULL */
    int64_t cache_base; /* the cache's size when the job began */
    /* the running command */
    pid_t leader;
    bool isolated;
    char ns[64];
    int64_t next_proc_ms, next_disk_ms;
    /* the highest totals seen */
    int64_t peak_mem, peak_tasks, peak_disk;
};

/* Starts watching a command whose process (group leader) is leader. */
void monitor_begin(struct monitor *m, pid_t leader, bool isolated);

/* Measures what is due at now (ms); the first limit found exceeded, or
 * MONITOR_OK. */
enum monitor_hit monitor_check(struct monitor *m, int64_t now);

/* The disk check once more, after the command ended (a run that wrote
 * past its limit between two checks and then stopped). */
enum monitor_hit monitor_final(struct monitor *m);

/* Bytes allocated to path and everything below it (links not
 * followed); 0 if it is not a directory. */
int64_t monitor_disk_usage(const char *path);

/* ---- results (tofu_result.c) ------------------------------------------ */

/* Fills res->has_changes and the four counts from the `show -json` output
 * at path.  TR_ERR_INVALID if it is not a readable JSON document. */
tr_err tofu_count_plan(const char *path, bool refresh_only,
                       struct job_result *res, struct tr_errbuf *eb);

/* The counts of the last "Plan: N to add, ..." line of a plan's output
 * (out, len; ANSI colours allowed), with has_changes; false (res
 * unchanged) when there is none or it does not read as one. */
bool tofu_plan_summary(struct arena *a, const char *out, size_t len,
                       struct job_result *res);

/* Fills res's counts from the last "Apply complete! Resources: ..." line
 * of out (ANSI colours allowed); leaves them alone if there is none. */
void tofu_apply_summary(struct arena *a, const char *out, size_t len,
                        struct job_result *res);

/* ---- the phase driver (tofu.c) ---------------------------------------- */

/* Runs job j to its end: prepares the directory, runs tofu, reports
 * through x->api (logs, heartbeats, finish) and removes the directory.
 * Every outcome, including a failure to start, is reported by finish();
 * nothing is returned. */
void tofu_run_job(struct exec_ctx *x, const struct job *j, struct arena *a);

/* ---- sandbox_etc.c: the /etc a sandbox shows, as one directory ---- */

struct sandbox_etc;
/* Prepares base (emptied first) to hold copies of src/<entry> (src is
 * "/etc" but in tests) for the nentries entries, leaving out paths under
 * the nhide hidden ones; a copy superseded for keep_ms is removed.  The
 * arrays must outlive the result. */
tr_err sandbox_etc_open(const char *base, const char *src,
                        const char *const *entries, int nentries,
                        char *const *hide, int nhide, int64_t keep_ms,
                        struct sandbox_etc **out, struct tr_errbuf *eb);
/* The directory to show as /etc, copied again first when an entry
 * changed; in a; NULL when it cannot be made (the caller then binds the
 * entries one by one).  Thread-safe. */
const char *sandbox_etc_dir(struct sandbox_etc *se, struct arena *a);
void sandbox_etc_free(struct sandbox_etc *se);

#endif
