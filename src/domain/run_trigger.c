/*
 * run_trigger.c - what an apply sets off: a run in every workspace that
 * follows the applied one (run triggers, store_run_triggers.c).
 *
 * The follower's run plans its current configuration version (nothing is
 * queued if it has none uploaded, or runs locally), and applies on its
 * own only when the follower's auto-apply-run-trigger setting is true, as
 * Terraform Enterprise does.
 *
 * Firing never fails the apply and is never lost: the step that recorded
 * the apply marked the run as having triggers pending; the finisher fires
 * at once, and the reaper's sweep (run_triggers_sweep()) fires what a
 * crash or an error left marked.  A follower's run records its source
 * run, once per follower (a unique index), so firing twice is harmless;
 * the mark is cleared when every follower has its run.
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#include "domain/run.h"

#include "core/fault.h"
#include "core/log.h"
#include "core/util.h"

#define RT_PAGE 100

/* Queues one run in follower ws_id for the apply of run src. */
static tr_err fire_one(struct terrace_server *srv, struct arena *a,
                       const char *ws_id, const char *src_name,
                       const struct st_run *src, struct tr_errbuf *eb)
{
    struct st_workspace w;
    struct st_cv cv;
    tr_err e = store_ws_get(srv->db, a, ws_id, &w, eb);
    if (e != TR_OK || util_streq(w.execution_mode, "local"))
        return e;
    e = store_cv_current(srv->db, a, ws_id, &cv, eb);
    if (e == TR_ERR_NOT_FOUND ||
        (e == TR_OK && !util_streq(cv.status, "uploaded"))) {
        log_info("run trigger: workspace %s has no uploaded configuration; "
                 "no run queued",
                 ws_id);
        return TR_OK;
    }
    if (e != TR_OK)
        return e;
    struct st_run run = {
        .workspace_id = w.id,
        .org = w.org,
        .cv_id = cv.id,
        .message = arena_printf(a, "Triggered by run %s of workspace %s",
                                src->id, src_name),
        .refresh = true,
        .auto_apply = store_settings_flag(w.settings, "auto-apply-run-trigger"),
        .source = "tfe-api",
        .trigger_run_id = src->id,
    };
    e = run_create(srv, a, &run, &run, eb);
    return e == TR_ERR_CONFLICT ? TR_OK : e; /* fired before */
}

void run_triggers_fire(struct terrace_server *srv, struct arena *a,
                       const struct st_run *src)
{
    struct tr_errbuf eb = {{0}};
    struct st_workspace sw;
    bool all = true;
    if (fault_hit("run.trigger")) { /* as if the node died right here */
        log_warn("run %s: run triggers not fired yet: injected fault", src->id);
        return;
    }
    tr_err e = store_ws_get(srv->db, a, src->workspace_id, &sw, &eb);
    for (int off = 0; e == TR_OK;) {
        struct st_run_trigger *list = NULL;
        int n = 0;
        int64_t total = 0;
        e = store_rt_list(srv->db, a, src->workspace_id, false, off, RT_PAGE,
                          &list, &n, &total, &eb);
        for (int i = 0; e == TR_OK && i < n; i++) {
            struct tr_errbuf eb2 = {{0}};
            tr_err e2 =
                fire_one(srv, a, list[i].workspace_id, sw.name, src, &eb2);
            if (e2 != TR_OK) {
                all = false; /* the sweep tries again */
                log_warn("run trigger %s: no run queued in %s yet: %s",
                         list[i].id, list[i].workspace_id,
                         tr_errbuf_msg(&eb2, e2));
            }
        }
        off += n;
        if (n == 0 || off >= total)
            break;
    }
    if (e == TR_OK && all)
        e = store_rt_fired(srv->db, a, src->id, &eb);
    if (e != TR_OK)
        log_warn("run %s: run triggers not fired yet: %s", src->id,
                 tr_errbuf_msg(&eb, e));
}

tr_err run_triggers_sweep(struct terrace_server *srv, struct arena *a,
                          struct tr_errbuf *eb)
{
    const char **ids = NULL;
    int n = 0;
    tr_err e = store_rt_pending(srv->db, a, RT_PAGE, &ids, &n, eb);
    for (int i = 0; e == TR_OK && i < n; i++) {
        struct st_run r;
        tr_err e2 = store_run_get(srv->db, a, ids[i], &r, eb);
        if (e2 == TR_OK)
            run_triggers_fire(srv, a, &r);
        else if (e2 != TR_ERR_NOT_FOUND) /* gone with its workspace */
            e = e2;
    }
    return e;
}
