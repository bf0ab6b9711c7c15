/*
 * keep.c - plan working directories kept for the run's apply.
 *
 * A run's apply needs what its plan had: the configuration, the files
 * Terrace wrote and tofu's .terraform directory.  When a non-speculative
 * plan with changes finishes, the driver (tofu.c) keeps its directory
 * here instead of removing it; if the apply job of the same run comes to
 * this executor, it takes the directory back and skips fetching the plan,
 * extracting the configuration and `tofu init` (about a third of a small
 * remote apply).  An apply that runs elsewhere, or after the entry was
 * dropped, simply prepares a fresh directory as before.  An entry may
 * also hold the run's apply process, started beside the plan (warm.c):
 * it goes to the apply with the directory, and is killed whenever the
 * directory is dropped, after WARM_IDLE_MS unused (the directory stays),
 * or when more are waiting than the executor has workers (the oldest).
 *
 * The plan file's sha256 is recorded when the plan finishes (it is also
 * what the server stored); keep_take() refuses a directory whose plan
 * file no longer matches it, so the apply never runs a plan other than
 * the one that was shown.
 *
 * Entries live at most keep_ms and at most EXEC_KEEP_MAX at once (the
 * oldest is dropped first), and go as soon as their run has ended
 * without its apply (job_api.run_final); the worker threads sweep
 * between claims and executor_stop() drops the rest.  Directories are
 * removed, and early applies killed, outside the lock.
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/util.h"
#include "crypto/digest.h"
#include "executor/executor_int.h"

#define KEEP_ID_LEN sizeof(((struct exec_kept *)0)->run_id)

static void entry_clear(struct exec_kept *k)
{
    free(k->root);
    free(k->cwd);
    *k = (struct exec_kept){.warm = EXEC_WARM_NONE};
}

/* An entry taken out of the table: its directory and early apply go. */
static void entry_drop(struct exec_kept *k)
{
    warm_kill(&k->warm);
    workdir_remove(k->root);
    entry_clear(k);
}

void keep_put(struct exec_ctx *x, const char *run_id, const struct workdir *wd,
              const char *plan_sha256, struct exec_warm *w)
{
    struct exec_warm none = EXEC_WARM_NONE;
    struct exec_kept drop = {.warm = EXEC_WARM_NONE};
    if (w == NULL)
        w = &none;
    if (x->o.keep_ms <= 0 || run_id == NULL ||
        strlen(run_id) >= sizeof(x->keep[0].run_id) || plan_sha256 == NULL ||
        strlen(plan_sha256) != 64) {
        warm_kill(w);
        workdir_remove(wd->root);
        return;
    }
    struct exec_kept k = {.root = strdup(wd->root),
                          .cwd = strdup(wd->cwd),
                          .at_ms = util_now_ms(),
                          .warm = warm_move(w)};
    if (k.root == NULL || k.cwd == NULL) {
        warm_kill(&k.warm);
        entry_clear(&k);
        workdir_remove(wd->root);
        return;
    }
    snprintf(k.run_id, sizeof(k.run_id), "%s", run_id);
    memcpy(k.sha256, plan_sha256, 65);
    struct exec_warm extra = EXEC_WARM_NONE;
    pthread_mutex_lock(&x->keep_mu);
    if (k.warm.pid > 0) { /* at most one waiting apply per worker */
        int nwarm = 0, oldest = -1;
        for (int i = 0; i < EXEC_KEEP_MAX; i++)
            if (x->keep[i].root != NULL && x->keep[i].warm.pid > 0) {
                nwarm++;
                if (oldest < 0 || x->keep[i].at_ms < x->keep[oldest].at_ms)
                    oldest = i;
            }
        if (nwarm >= (x->o.workers > 0 ? x->o.workers : 1))
            extra = warm_move(&x->keep[oldest].warm);
    }
    int slot = 0;
    for (int i = 0; i < EXEC_KEEP_MAX; i++) {
        if (x->keep[i].root == NULL) {
            slot = i;
            break;
        }
        if (x->keep[i].at_ms < x->keep[slot].at_ms)
            slot = i;
    }
    if (x->keep[slot].root != NULL) /* full: the oldest goes */
        drop = x->keep[slot];
    x->keep[slot] = k;
    pthread_mutex_unlock(&x->keep_mu);
    if (drop.root != NULL)
        entry_drop(&drop);
    warm_kill(&extra);
}

bool keep_take(struct exec_ctx *x, struct arena *a, const char *run_id,
               struct workdir *wd, struct exec_warm *w)
{
    struct exec_kept k = {.warm = EXEC_WARM_NONE};
    *w = EXEC_WARM_NONE;
    if (run_id == NULL)
        return false;
    pthread_mutex_lock(&x->keep_mu);
    for (int i = 0; i < EXEC_KEEP_MAX; i++)
        if (x->keep[i].root != NULL && strcmp(x->keep[i].run_id, run_id) == 0) {
            k = x->keep[i];
            x->keep[i] = (struct exec_kept){.warm = EXEC_WARM_NONE};
            break;
        }
    pthread_mutex_unlock(&x->keep_mu);
    if (k.root == NULL)
        return false;
    workdir_layout(a, k.root, wd);
    wd->cwd = arena_strdup(a, k.cwd);
    char *sha = NULL;
    struct tr_errbuf eb = {{0}};
    bool ok = exec_file_sha256(a, wd->plan_file, &sha, &eb) == TR_OK &&
              digest_equal(sha, k.sha256);
    if (!ok) {
        log_warn("executor: run %s: the kept plan file changed or is gone; "
                 "preparing the apply afresh",
                 run_id);
        entry_drop(&k);
        memset(wd, 0, sizeof(*wd));
        return false;
    }
    *w = warm_move(&k.warm);
    entry_clear(&k);
    return true;
}

/* The run ids of the kept entries (ids[i][0] == 0: slot free) whose runs
 * ended without their apply (discarded, canceled, errored): their
 * directories, which hold the run's variables, go at once rather than at
 * expiry.  Asked outside the lock; keep_sweep() drops a slot only if it
 * still holds the same run. */
static void find_ended(struct exec_ctx *x, char ids[][KEEP_ID_LEN], bool *ended)
{
    pthread_mutex_lock(&x->keep_mu);
    for (int i = 0; i < EXEC_KEEP_MAX; i++)
        snprintf(ids[i], KEEP_ID_LEN, "%s",
                 x->keep[i].root != NULL ? x->keep[i].run_id : "");
    pthread_mutex_unlock(&x->keep_mu);
    for (int i = 0; i < EXEC_KEEP_MAX; i++) {
        bool final = false;
        ended[i] =
            ids[i][0] != '\0' && x->api.run_final != NULL &&
            x->api.run_final(x->api.ctx, ids[i], &final, NULL) == TR_OK &&
            final;
    }
}

void keep_sweep(struct exec_ctx *x, bool all)
{
    struct exec_kept drop[EXEC_KEEP_MAX];
    struct exec_warm idle[EXEC_KEEP_MAX];
    int nidle = 0;
    char ids[EXEC_KEEP_MAX][KEEP_ID_LEN];
    bool ended[EXEC_KEEP_MAX] = {false};
    int n = 0;
    int64_t now = util_now_ms();
    if (!all)
        find_ended(x, ids, ended);
    pthread_mutex_lock(&x->keep_mu);
    for (int i = 0; i < EXEC_KEEP_MAX; i++) {
        struct exec_kept *k = &x->keep[i];
        bool gone = ended[i] && strcmp(k->run_id, ids[i]) == 0;
        if (k->root != NULL &&
            (all || gone || now - k->at_ms >= x->o.keep_ms)) {
            drop[n++] = *k;
            *k = (struct exec_kept){.warm = EXEC_WARM_NONE};
        } else if (k->root != NULL && k->warm.pid > 0 &&
                   now - k->at_ms >= WARM_IDLE_MS) {
            idle[nidle++] = warm_move(&k->warm);
        }
    }
    pthread_mutex_unlock(&x->keep_mu);
    for (int i = 0; i < n; i++)
        entry_drop(&drop[i]);
    for (int i = 0; i < nidle; i++)
        warm_kill(&idle[i]);
}
