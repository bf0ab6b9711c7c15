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
 * dropped, simply prepares a fresh directory as before.
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
 * removed outside the lock.
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
    memset(k, 0, sizeof(*k));
}

void keep_put(struct exec_ctx *x, const char *run_id, const struct workdir *wd,
              const char *plan_sha256)
{
    char *drop = NULL;
    if (x->o.keep_ms <= 0 || run_id == NULL ||
        strlen(run_id) >= sizeof(x->keep[0].run_id) || plan_sha256 == NULL ||
        strlen(plan_sha256) != 64) {
        workdir_remove(wd->root);
        return;
    }
    struct exec_kept k = {.root = strdup(wd->root),
                          .cwd = strdup(wd->cwd),
                          .at_ms = util_now_ms()};
    if (k.root == NULL || k.cwd == NULL) {
        entry_clear(&k);
        workdir_remove(wd->root);
        return;
    }
    snprintf(k.run_id, sizeof(k.run_id), "%s", run_id);
    memcpy(k.sha256, plan_sha256, 65);
    pthread_mutex_lock(&x->keep_mu);
    int slot = 0;
    for (int i = 0; i < EXEC_KEEP_MAX; i++) {
        if (x->keep[i].root == NULL) {
            slot = i;
            break;
        }
        if (x->keep[i].at_ms < x->keep[slot].at_ms)
            slot = i;
    }
    if (x->keep[slot].root != NULL) { /* full: the oldest goes */
        drop = x->keep[slot].root;
        x->keep[slot].root = NULL;
        entry_clear(&x->keep[slot]);
    }
    x->keep[slot] = k;
    pthread_mutex_unlock(&x->keep_mu);
    if (drop != NULL) {
        workdir_remove(drop);
        free(drop);
    }
}

bool keep_take(struct exec_ctx *x, struct arena *a, const char *run_id,
               struct workdir *wd)
{
    struct exec_kept k = {0};
    if (run_id == NULL)
        return false;
    pthread_mutex_lock(&x->keep_mu);
    for (int i = 0; i < EXEC_KEEP_MAX; i++)
        if (x->keep[i].root != NULL && strcmp(x->keep[i].run_id, run_id) == 0) {
            k = x->keep[i];
            memset(&x->keep[i], 0, sizeof(x->keep[i]));
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
        workdir_remove(k.root);
        memset(wd, 0, sizeof(*wd));
    }
    entry_clear(&k);
    return ok;
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
    char *drop[EXEC_KEEP_MAX];
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
            drop[n++] = k->root;
            k->root = NULL;
            entry_clear(k);
        }
    }
    pthread_mutex_unlock(&x->keep_mu);
    for (int i = 0; i < n; i++) {
        workdir_remove(drop[i]);
        free(drop[i]);
    }
}
