/*
 * test_run_state.c - unit tests for the run state machine (src/domain/
 * run.c, run_worker.c, reaper.c), its store (store_runs.c,
 * store_run_jobs.c) and the in-process job API (executor/job_local.c),
 * on SQLite and, when TERRACE_TEST_PG_URL is set, PostgreSQL.
 *
 * The executor is faked: the tests claim jobs through job_local's struct
 * job_api and finish them with made-up results, which is what a unit test
 * of the state machine needs.  Covered: FIFO queue per workspace,
 * speculative runs in parallel, auto-apply, no-change plans, discard and
 * cancel in every state, force-cancel, lease expiry, a user's lock
 * holding runs back, saved plans, force-execute, log chunks and their
 * compaction, redaction of JSON plans, the claim wake-up, the variables a
 * job gets, and the actions block at every step.
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "blob/blob.h"
#include "core/fault.h"
#include "crypto/envelope.h"
#include "crypto/keys.h"
#include "domain/plan_redact.h"
#include "domain/run.h"
#include "executor/job_local.h"
#include "store/store.h"
#include "unit_util.h"

struct fx {
    struct ut_store st; /* st.db is srv.db; st.dir also holds blobs */
    struct terrace_server srv;
    struct job_local *jl;
    struct job_api *api;
    struct arena *a;
    const char *ws; /* workspace "w" of organization "o" */
    const char *cv; /* an uploaded configuration version of ws */
};

static const enum db_kind k_sqlite = DB_SQLITE;
static const enum db_kind k_pg = DB_PG;

static int fail_setup(const char *what, const struct tr_errbuf *eb)
{
    fprintf(stderr, "setup: %s: %s\n", what, eb->msg);
    return -1;
}

static int setup(void **state)
{
    const enum db_kind *kind = *state;
    struct fx *fx = calloc(1, sizeof(*fx));
    struct tr_errbuf eb = {{0}};
    *state = fx;
    int rc = ut_store_open(&fx->st, *kind, 8, "test_run_state");
    if (rc != 0)
        return rc > 0 ? 0 : -1; /* 1: the test skips */
    fx->srv.db = fx->st.db;
    char path[256];
    snprintf(path, sizeof(path), "%s/blobs", fx->st.dir);
    unsigned char kek[KEYS_KEK_LEN] = {1, 2, 3};
    if (blob_open_fs(path, &fx->srv.blob, &eb) != TR_OK ||
        keys_open_bytes(kek, "test", &fx->srv.keys, &eb) != TR_OK ||
        run_signal_new(&fx->srv.run_signal) != TR_OK)
        return fail_setup("services", &eb);
    blob_set_keys(fx->srv.blob, fx->srv.keys);
    snprintf(fx->srv.external_url, sizeof(fx->srv.external_url),
             "https://127.0.0.1:1");
    fx->a = arena_new();
    struct st_workspace w = {.org = "o", .name = "w"};
    struct st_cv cv = {.id = util_new_id(fx->a, "cv")}, cvo;
    struct st_tool tool = {.version = "1.8.0",
                           .path = "/bin/true",
                           .sha256 = "00",
                           .enabled = true};
    if (store_org_create(fx->srv.db, fx->a, "o", "o@x", NULL, NULL, NULL,
                         &eb) != TR_OK ||
        store_ws_create(fx->srv.db, fx->a, &w, &w, &eb) != TR_OK ||
        store_tool_create(fx->srv.db, fx->a, &tool, NULL, &eb) != TR_OK)
        return fail_setup("objects", &eb);
    fx->ws = w.id;
    cv.workspace_id = w.id;
    cv.auto_queue_runs = false;
    if (blob_put(fx->srv.blob, "cv/one.tar.gz", "tgz", 3, &eb) != TR_OK ||
        store_cv_create(fx->srv.db, fx->a, &cv, NULL, &eb) != TR_OK ||
        store_cv_set_uploaded(fx->srv.db, fx->a, cv.id, "cv/one.tar.gz", 3,
                              &cvo, &eb) != TR_OK)
        return fail_setup("configuration version", &eb);
    fx->cv = cv.id;
    struct job_local_opts o;
    job_local_defaults(&o);
    if (job_local_new(&fx->srv, &o, &fx->jl, &eb) != TR_OK)
        return fail_setup("job_local", &eb);
    fx->api = job_local_api(fx->jl);
    return 0;
}

static int teardown(void **state)
{
    struct fx *fx = *state;
    fault_reset();
    job_local_free(fx->jl);
    run_signal_free(fx->srv.run_signal);
    keys_close(fx->srv.keys);
    blob_close(fx->srv.blob);
    if (fx->a != NULL)
        arena_destroy(fx->a);
    int rc = ut_store_close(&fx->st);
    free(fx);
    return rc;
}

static struct fx *fixture(void **state)
{
    struct fx *fx = *state;
    if (fx->srv.db == NULL)
        skip();
    return fx;
}

/* ---- helpers ------------------------------------------------------------- */

enum { SPEC = 1, AUTO = 2, SAVE = 4, EMPTY_OK = 8 };

static struct st_run mkrun(struct fx *fx, int flags)
{
    struct st_run in =
                      {
                          .workspace_id = fx->ws,
                          .org = "o",
                          .cv_id = fx->cv,
                          .refresh = true,
                          .plan_only = flags & SPEC,
                          .auto_apply = flags & AUTO,
                          .save_plan = flags & SAVE,
                          .allow_empty_apply = flags & EMPTY_OK,
                      },
                  out;
    struct tr_errbuf eb = {{0}};
    tr_err e = run_create(&fx->srv, fx->a, &in, &out, &eb);
    if (e != TR_OK)
        fail_msg("run_create: %s", eb.msg);
    return out;
}

static struct st_run get(struct fx *fx, const char *id)
{
    struct st_run r;
    assert_int_equal(store_run_get(fx->srv.db, fx->a, id, &r, NULL), TR_OK);
    return r;
}

static void assert_status(struct fx *fx, const char *id, const char *want)
{
    struct st_run r = get(fx, id);
    if (strcmp(r.status, want) != 0)
        fail_msg("run %s is %s, want %s", id, r.status, want);
}

/* The actions block as letters: c cancel, a confirm, d discard, f force. */
static void assert_actions(struct fx *fx, const char *id, const char *want)
{
    struct st_run r = get(fx, id);
    struct run_actions ac;
    run_actions(&r, util_now_unix(), &ac);
    char got[8];
    int n = 0;
    if (ac.is_cancelable)
        got[n++] = 'c';
    if (ac.is_confirmable)
        got[n++] = 'a';
    if (ac.is_discardable)
        got[n++] = 'd';
    if (ac.is_force_cancelable)
        got[n++] = 'f';
    got[n] = '\0';
    if (strcmp(got, want) != 0)
        fail_msg("run %s (%s): actions \"%s\", want \"%s\"", id, r.status, got,
                 want);
}

static struct st_phase phase(struct fx *fx, const char *id)
{
    struct st_phase p;
    assert_int_equal(store_phase_get(fx->srv.db, fx->a, id, &p, NULL), TR_OK);
    return p;
}

/* The workspace's current run (NULL if none) and lock. */
static const char *current(struct fx *fx)
{
    const char *cur = NULL, *latest = NULL;
    assert_int_equal(
        store_run_ws_runs(fx->srv.db, fx->a, fx->ws, &cur, &latest, NULL),
        TR_OK);
    return cur;
}

static void assert_owner(struct fx *fx, const char *run)
{
    struct st_workspace w;
    assert_int_equal(store_ws_get(fx->srv.db, fx->a, fx->ws, &w, NULL), TR_OK);
    if (run == NULL) {
        assert_null(current(fx));
        assert_false(w.locked);
        return;
    }
    assert_non_null(current(fx));
    assert_string_equal(current(fx), run);
    assert_true(w.locked);
    assert_string_equal(w.lock_kind, "run");
    assert_string_equal(w.lock_holder, run);
}

static bool try_claim(struct fx *fx, struct job *j, int wait_ms)
{
    struct tr_errbuf eb = {{0}};
    tr_err e = fx->api->claim(fx->api->ctx, fx->a, "n1", wait_ms, j, &eb);
    if (e == TR_ERR_NOT_FOUND)
        return false;
    if (e != TR_OK)
        fail_msg("claim: %s", eb.msg);
    return true;
}

static struct job claim(struct fx *fx, const char *run, enum job_phase ph)
{
    struct job j;
    assert_true(try_claim(fx, &j, 0));
    assert_string_equal(j.run_id, run);
    assert_int_equal(j.phase, ph);
    assert_non_null(j.token);
    return j;
}

static void finish(struct fx *fx, const struct job *j, enum job_outcome out,
                   bool changes)
{
    char plan[128], json[128];
    snprintf(plan, sizeof(plan), "%s/plan.bin", fx->st.dir);
    snprintf(json, sizeof(json), "%s/plan.json", fx->st.dir);
    assert_true(ut_write_file(plan, "PLANFILE"));
    assert_true(ut_write_file(json, "{\"planned_values\":{},"
                                    "\"terraform_version\":\"1.8.0\"}"));
    struct job_result res = {
        .outcome = out,
        .error = out == JOB_ERRORED ? "boom" : NULL,
        .has_changes = changes,
        .additions = changes ? 1 : 0,
        .plan_file = j->phase == JOB_PLAN ? plan : NULL,
        .json_plan_file = j->phase == JOB_PLAN ? json : NULL,
    };
    struct tr_errbuf eb = {{0}};
    tr_err e = fx->api->finish(fx->api->ctx, j->id, &res, &eb);
    if (e != TR_OK)
        fail_msg("finish: %s", eb.msg);
}

static tr_err action(struct fx *fx, const char *what, const char *id)
{
    struct tr_errbuf eb = {{0}};
    if (strcmp(what, "apply") == 0)
        return run_apply(&fx->srv, fx->a, id, NULL, NULL, &eb);
    if (strcmp(what, "discard") == 0)
        return run_discard(&fx->srv, fx->a, id, NULL, NULL, &eb);
    if (strcmp(what, "cancel") == 0)
        return run_cancel(&fx->srv, fx->a, id, NULL, NULL, &eb);
    if (strcmp(what, "force-cancel") == 0)
        return run_force_cancel(&fx->srv, fx->a, id, NULL, NULL, &eb);
    return run_force_execute(&fx->srv, fx->a, id, NULL, &eb);
}

static void sql(struct fx *fx, const char *stmt, const char *arg)
{
    struct db_conn *c = db_acquire(fx->srv.db);
    assert_int_equal(db_q(c, fx->a, NULL, NULL, stmt, arg), TR_OK);
    db_release(c);
}

static int64_t count(struct fx *fx, const char *stmt, const char *arg)
{
    struct db_conn *c = db_acquire(fx->srv.db);
    struct db_rows *r = NULL;
    assert_int_equal(db_q(c, fx->a, &r, NULL, stmt, arg), TR_OK);
    db_release(c);
    return db_get_i64(r, 0, "n");
}

/* ---- tests --------------------------------------------------------------- */

static void test_queue_order(void **state)
{
    struct fx *fx = fixture(state);
    struct st_run a = mkrun(fx, 0), b = mkrun(fx, 0), c = mkrun(fx, 0);
    assert_status(fx, a.id, "plan_queued");
    assert_status(fx, b.id, "pending");
    assert_status(fx, c.id, "pending");
    assert_owner(fx, a.id);
    assert_int_equal(get(fx, c.id).ahead, 1); /* b is before it */
    assert_actions(fx, a.id, "c");
    assert_actions(fx, b.id, "cd");
    struct job j;
    struct job ja = claim(fx, a.id, JOB_PLAN);
    assert_false(try_claim(fx, &j, 0)); /* b waits for the workspace */
    assert_status(fx, a.id, "planning");
    assert_string_equal(phase(fx, a.plan_id).status, "running");
    assert_actions(fx, a.id, "c");
    finish(fx, &ja, JOB_FINISHED, true);
    assert_status(fx, a.id, "planned");
    assert_actions(fx, a.id, "ad");
    assert_owner(fx, a.id);
    assert_status(fx, b.id, "pending");
    /* the run token lives only while a job runs */
    assert_int_equal(count(fx,
                           "SELECT count(*) AS n FROM tokens WHERE kind ="
                           " 'run' AND subject = $1",
                           a.id),
                     0);
    assert_int_equal(action(fx, "discard", a.id), TR_OK);
    assert_status(fx, a.id, "discarded");
    assert_string_equal(phase(fx, a.apply_id).status, "unreachable");
    assert_actions(fx, a.id, "");
    assert_status(fx, b.id, "plan_queued");
    assert_owner(fx, b.id);
    assert_int_equal(action(fx, "cancel", b.id), TR_OK);
    assert_status(fx, b.id, "canceled");
    assert_status(fx, c.id, "plan_queued");
    assert_owner(fx, c.id);
    assert_int_equal(get(fx, c.id).ahead, 0);
    /* the canceled run's job never reaches a worker */
    struct job jc = claim(fx, c.id, JOB_PLAN);
    finish(fx, &jc, JOB_ERRORED, false);
    struct st_run rc = get(fx, c.id);
    assert_string_equal(rc.status, "errored");
    assert_string_equal(rc.error_message, "boom");
    assert_owner(fx, NULL);
}

static void test_speculative_parallel(void **state)
{
    struct fx *fx = fixture(state);
    struct st_run a = mkrun(fx, 0), b = mkrun(fx, 0);
    struct st_run s1 = mkrun(fx, SPEC), s2 = mkrun(fx, SPEC);
    assert_status(fx, s1.id, "plan_queued");
    assert_status(fx, s2.id, "plan_queued");
    assert_actions(fx, s1.id, "c");
    struct job ja = claim(fx, a.id, JOB_PLAN);
    struct job j1 = claim(fx, s1.id, JOB_PLAN);
    struct job j2 = claim(fx, s2.id, JOB_PLAN);
    assert_true(j1.speculative);
    finish(fx, &j2, JOB_FINISHED, true);
    finish(fx, &j1, JOB_FINISHED, false);
    assert_status(fx, s1.id, "planned_and_finished");
    assert_status(fx, s2.id, "planned_and_finished");
    assert_actions(fx, s2.id, "");
    /* speculative runs never touched the workspace */
    assert_owner(fx, a.id);
    assert_status(fx, b.id, "pending");
    finish(fx, &ja, JOB_CANCELED, false);
    assert_status(fx, a.id, "canceled");
    assert_status(fx, b.id, "plan_queued");
}

static void test_auto_apply(void **state)
{
    struct fx *fx = fixture(state);
    struct st_run a = mkrun(fx, AUTO), b = mkrun(fx, 0);
    struct job jp = claim(fx, a.id, JOB_PLAN);
    finish(fx, &jp, JOB_FINISHED, true);
    /* no apply action needed */
    assert_status(fx, a.id, "apply_queued");
    assert_actions(fx, a.id, "c");
    assert_string_equal(phase(fx, a.apply_id).status, "queued");
    struct st_phase p = phase(fx, a.plan_id);
    assert_string_equal(p.status, "finished");
    assert_true(p.has_changes);
    assert_int_equal(p.additions, 1);
    assert_non_null(p.plan_blob_key);
    struct job ja = claim(fx, a.id, JOB_APPLY);
    assert_status(fx, a.id, "applying");
    /* the plan file comes back for the apply */
    char dest[128];
    snprintf(dest, sizeof(dest), "%s/fetched.plan", fx->st.dir);
    assert_int_equal(fx->api->fetch_plan(fx->api->ctx, ja.id, dest, NULL),
                     TR_OK);
    FILE *f = fopen(dest, "r");
    char buf[32] = {0};
    assert_non_null(f);
    assert_true(fread(buf, 1, sizeof(buf) - 1, f) > 0);
    fclose(f);
    assert_string_equal(buf, "PLANFILE");
    /* sealed at rest: it holds variable values */
    char raw[256];
    snprintf(raw, sizeof(raw), "%s/blobs/objects/%s", fx->st.dir,
             p.plan_blob_key);
    f = fopen(raw, "rb");
    assert_non_null(f);
    char disk[4096] = {0};
    size_t dlen = fread(disk, 1, sizeof(disk) - 1, f);
    fclose(f);
    assert_true(dlen > 28 + 8);
    assert_memory_equal(disk, "TRB1", 4);
    assert_null(memmem(disk, dlen, "PLANFILE", 8));
    /* a changed byte is refused, nothing written */
    disk[dlen - 3] ^= 0x20;
    f = fopen(raw, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(disk, 1, dlen, f), dlen);
    fclose(f);
    snprintf(dest, sizeof(dest), "%s/tampered.plan", fx->st.dir);
    assert_int_equal(fx->api->fetch_plan(fx->api->ctx, ja.id, dest, NULL),
                     TR_ERR_CRYPTO);
    /* one stored in the clear (before objects were sealed) still reads */
    f = fopen(raw, "wb");
    assert_non_null(f);
    fputs("PK-OLDPLAN", f);
    fclose(f);
    assert_int_equal(fx->api->fetch_plan(fx->api->ctx, ja.id, dest, NULL),
                     TR_OK);
    f = fopen(dest, "r");
    memset(buf, 0, sizeof(buf));
    assert_non_null(f);
    assert_true(fread(buf, 1, sizeof(buf) - 1, f) > 0);
    fclose(f);
    assert_string_equal(buf, "PK-OLDPLAN");
    snprintf(dest, sizeof(dest), "%s/fetched.tgz", fx->st.dir);
    assert_int_equal(fx->api->fetch_config(fx->api->ctx, ja.id, dest, NULL),
                     TR_OK);
    finish(fx, &ja, JOB_FINISHED, false);
    struct st_run r = get(fx, a.id);
    assert_string_equal(r.status, "applied");
    assert_non_null(strstr(r.status_timestamps, "\"applied-at\""));
    assert_non_null(strstr(r.status_timestamps, "\"confirmed-at\""));
    assert_int_equal(phase(fx, a.apply_id).additions, 1);
    assert_string_equal(phase(fx, a.apply_id).status, "finished");
    assert_owner(fx, b.id);
    assert_status(fx, b.id, "plan_queued");
}

/* An auto-apply plan may come without its JSON (defer_json): the run goes
 * on at once, the apply is told to make the JSON (make_json) and what it
 * brings is stored, redacted, on the plan.  Runs that wait for a
 * confirmation get their JSON with the plan, as before. */
static void test_deferred_json(void **state)
{
    struct fx *fx = fixture(state);
    struct st_run a = mkrun(fx, AUTO);
    struct job jp = claim(fx, a.id, JOB_PLAN);
    assert_true(jp.defer_json);
    assert_false(jp.make_json);
    char plan[128], json[128];
    snprintf(plan, sizeof(plan), "%s/plan.bin", fx->st.dir);
    snprintf(json, sizeof(json), "%s/plan.json", fx->st.dir);
    assert_true(ut_write_file(plan, "PLANFILE"));
    struct job_result res = {
        .outcome = JOB_FINISHED,
        .has_changes = true,
        .additions = 2,
        .destructions = 1,
        .plan_file = plan,
    };
    struct tr_errbuf eb = {{0}};
    assert_int_equal(fx->api->finish(fx->api->ctx, jp.id, &res, &eb), TR_OK);
    assert_status(fx, a.id, "apply_queued");
    struct st_phase p = phase(fx, a.plan_id);
    assert_int_equal(p.additions, 2);
    assert_int_equal(p.destructions, 1);
    assert_non_null(p.plan_blob_key);
    assert_null(p.json_blob_key);
    assert_null(p.redacted_json_blob_key);
    struct job ja = claim(fx, a.id, JOB_APPLY);
    assert_true(ja.make_json);
    assert_false(ja.defer_json);
    assert_true(ut_write_file(json, "{\"planned_values\":{},"
                                    "\"terraform_version\":\"1.8.0\"}"));
    struct job_result ares = {.outcome = JOB_FINISHED, .json_plan_file = json};
    assert_int_equal(fx->api->finish(fx->api->ctx, ja.id, &ares, &eb), TR_OK);
    assert_status(fx, a.id, "applied");
    p = phase(fx, a.plan_id);
    assert_non_null(p.json_blob_key);
    assert_non_null(p.redacted_json_blob_key);
    char *data = NULL;
    size_t len = 0;
    assert_int_equal(
        blob_get(fx->srv.blob, fx->a, p.json_blob_key, 4096, &data, &len, &eb),
        TR_OK);
    assert_non_null(strstr(data, "\"terraform_version\""));
    assert_int_equal(blob_get(fx->srv.blob, fx->a, p.redacted_json_blob_key,
                              4096, &data, &len, &eb),
                     TR_OK);
    assert_int_equal(phase(fx, a.apply_id).additions, 2);
    /* a run that waits for its confirmation: JSON with the plan */
    struct st_run c = mkrun(fx, 0);
    struct job jc = claim(fx, c.id, JOB_PLAN);
    assert_false(jc.defer_json);
    finish(fx, &jc, JOB_FINISHED, true);
    assert_status(fx, c.id, "planned");
    assert_int_equal(action(fx, "apply", c.id), TR_OK);
    struct job jca = claim(fx, c.id, JOB_APPLY);
    assert_false(jca.make_json);
    finish(fx, &jca, JOB_FINISHED, false);
    assert_status(fx, c.id, "applied");
    assert_non_null(phase(fx, c.plan_id).json_blob_key);
}

static void test_no_changes(void **state)
{
    struct fx *fx = fixture(state);
    struct st_run a = mkrun(fx, 0), b = mkrun(fx, EMPTY_OK);
    struct job j = claim(fx, a.id, JOB_PLAN);
    finish(fx, &j, JOB_FINISHED, false);
    assert_status(fx, a.id, "planned_and_finished");
    assert_string_equal(phase(fx, a.apply_id).status, "unreachable");
    assert_owner(fx, b.id);
    /* allow-empty-apply: a plan without changes can still be applied */
    j = claim(fx, b.id, JOB_PLAN);
    finish(fx, &j, JOB_FINISHED, false);
    assert_status(fx, b.id, "planned");
    assert_actions(fx, b.id, "ad");
    assert_int_equal(action(fx, "apply", b.id), TR_OK);
    assert_status(fx, b.id, "apply_queued");
}

static void test_discard_rules(void **state)
{
    struct fx *fx = fixture(state);
    struct st_run a = mkrun(fx, 0), b = mkrun(fx, 0);
    /* plan_queued and planning cannot be discarded */
    assert_int_equal(action(fx, "discard", a.id), TR_ERR_CONFLICT);
    assert_int_equal(action(fx, "apply", a.id), TR_ERR_CONFLICT);
    struct job j = claim(fx, a.id, JOB_PLAN);
    assert_int_equal(action(fx, "discard", a.id), TR_ERR_CONFLICT);
    assert_status(fx, a.id, "planning");
    /* a pending run can */
    assert_int_equal(action(fx, "discard", b.id), TR_OK);
    assert_status(fx, b.id, "discarded");
    assert_string_equal(phase(fx, b.plan_id).status, "unreachable");
    assert_int_equal(action(fx, "discard", b.id), TR_ERR_CONFLICT);
    finish(fx, &j, JOB_FINISHED, true);
    assert_int_equal(action(fx, "apply", a.id), TR_OK);
    assert_status(fx, a.id, "apply_queued");
    assert_int_equal(action(fx, "discard", a.id), TR_ERR_CONFLICT);
    assert_int_equal(action(fx, "apply", a.id), TR_ERR_CONFLICT);
    j = claim(fx, a.id, JOB_APPLY);
    finish(fx, &j, JOB_FINISHED, true);
    assert_status(fx, a.id, "applied");
    assert_int_equal(action(fx, "discard", a.id), TR_ERR_CONFLICT);
    assert_int_equal(action(fx, "cancel", a.id), TR_ERR_CONFLICT);
    assert_owner(fx, NULL);
}

static void test_cancel_each_state(void **state)
{
    struct fx *fx = fixture(state);
    /* plan_queued and pending: at once */
    struct st_run a = mkrun(fx, 0), b = mkrun(fx, 0);
    assert_int_equal(action(fx, "cancel", b.id), TR_OK);
    assert_status(fx, b.id, "canceled");
    assert_non_null(get(fx, b.id).force_cancel_at);
    assert_int_equal(action(fx, "cancel", a.id), TR_OK);
    assert_status(fx, a.id, "canceled");
    assert_string_equal(phase(fx, a.plan_id).status, "canceled");
    assert_owner(fx, NULL);
    struct job j;
    assert_false(try_claim(fx, &j, 0));
    /* planning: the worker is asked; the run waits for it */
    struct st_run c = mkrun(fx, 0);
    j = claim(fx, c.id, JOB_PLAN);
    assert_int_equal(action(fx, "cancel", c.id), TR_OK);
    assert_status(fx, c.id, "planning");
    assert_actions(fx, c.id, "c"); /* force-cancel opens later */
    int cancel = 0;
    assert_int_equal(fx->api->heartbeat(fx->api->ctx, j.id, &cancel, NULL),
                     TR_OK);
    assert_int_equal(cancel, 1);
    finish(fx, &j, JOB_CANCELED, false);
    assert_status(fx, c.id, "canceled");
    assert_owner(fx, NULL);
    /* planned: not cancelable */
    struct st_run d = mkrun(fx, 0);
    j = claim(fx, d.id, JOB_PLAN);
    finish(fx, &j, JOB_FINISHED, true);
    assert_int_equal(action(fx, "cancel", d.id), TR_ERR_CONFLICT);
    /* apply_queued: at once */
    assert_int_equal(action(fx, "apply", d.id), TR_OK);
    assert_int_equal(action(fx, "cancel", d.id), TR_OK);
    assert_status(fx, d.id, "canceled");
    assert_string_equal(phase(fx, d.apply_id).status, "canceled");
    assert_false(try_claim(fx, &j, 0));
    /* applying: through the worker */
    struct st_run e = mkrun(fx, AUTO);
    j = claim(fx, e.id, JOB_PLAN);
    finish(fx, &j, JOB_FINISHED, true);
    j = claim(fx, e.id, JOB_APPLY);
    assert_int_equal(action(fx, "cancel", e.id), TR_OK);
    assert_int_equal(fx->api->heartbeat(fx->api->ctx, j.id, &cancel, NULL),
                     TR_OK);
    assert_int_equal(cancel, 1);
    finish(fx, &j, JOB_CANCELED, false);
    assert_status(fx, e.id, "canceled");
    assert_string_equal(phase(fx, e.apply_id).status, "canceled");
    assert_owner(fx, NULL);
}

static void test_force_cancel(void **state)
{
    struct fx *fx = fixture(state);
    struct st_run a = mkrun(fx, 0), b = mkrun(fx, 0);
    struct job j = claim(fx, a.id, JOB_PLAN);
    assert_int_equal(action(fx, "force-cancel", a.id), TR_ERR_CONFLICT);
    assert_int_equal(action(fx, "cancel", a.id), TR_OK);
    /* not before force-cancel-available-at */
    assert_int_equal(action(fx, "force-cancel", a.id), TR_ERR_CONFLICT);
    sql(fx,
        "UPDATE runs SET force_cancel_at = '2000-01-01T00:00:00.000Z'"
        " WHERE id = $1",
        a.id);
    assert_actions(fx, a.id, "cf");
    assert_int_equal(action(fx, "force-cancel", a.id), TR_OK);
    assert_status(fx, a.id, "force_canceled");
    assert_actions(fx, a.id, "");
    assert_owner(fx, b.id);
    /* the worker is told at its next heartbeat and cannot finish */
    int cancel = 0;
    assert_int_equal(fx->api->heartbeat(fx->api->ctx, j.id, &cancel, NULL),
                     TR_ERR_NOT_FOUND);
    struct job_result res = {.outcome = JOB_FORCE_CANCELED};
    assert_int_equal(fx->api->finish(fx->api->ctx, j.id, &res, NULL),
                     TR_ERR_CONFLICT);
    assert_int_equal(
        fx->api->append_log(fx->api->ctx, j.id, "late", 4, 0, NULL),
        TR_ERR_NOT_FOUND);
}

static void test_lease_expiry(void **state)
{
    struct fx *fx = fixture(state);
    struct st_run a = mkrun(fx, AUTO), b = mkrun(fx, 0);
    struct job j = claim(fx, a.id, JOB_PLAN);
    finish(fx, &j, JOB_FINISHED, true);
    j = claim(fx, a.id, JOB_APPLY);
    assert_int_equal(
        fx->api->append_log(fx->api->ctx, j.id, "half", 4, 0, NULL), TR_OK);
    int reaped = -1;
    /* a live lease is left alone */
    assert_int_equal(run_expire(&fx->srv, fx->a, util_now_ms(), &reaped, NULL),
                     TR_OK);
    assert_int_equal(reaped, 0);
    assert_int_equal(
        run_expire(&fx->srv, fx->a, util_now_ms() + 31000, &reaped, NULL),
        TR_OK);
    assert_int_equal(reaped, 1);
    struct st_run r = get(fx, a.id);
    assert_string_equal(r.status, "errored");
    assert_string_equal(r.error_message,
                        "the worker running this job stopped responding");
    assert_string_equal(phase(fx, a.apply_id).status, "errored");
    assert_non_null(phase(fx, a.apply_id).log_blob_key);
    /* released, the next run goes; the apply is never re-run */
    assert_owner(fx, b.id);
    struct job jb = claim(fx, b.id, JOB_PLAN);
    assert_false(try_claim(fx, &j, 0));
    int cancel = 0;
    assert_int_equal(fx->api->heartbeat(fx->api->ctx, j.id, &cancel, NULL),
                     TR_ERR_NOT_FOUND);
    assert_int_equal(fx->api->heartbeat(fx->api->ctx, jb.id, &cancel, NULL),
                     TR_OK);
}

/* The lease clock kept in the database: ticks a tick apart extend
 * nothing; a gap (no leader reached the database) moves every running
 * lease by the gap, whichever node ticks next. */
static void test_lease_clock(void **state)
{
    struct fx *fx = fixture(state);
    struct st_run a = mkrun(fx, 0);
    struct job j = claim(fx, a.id, JOB_PLAN);
    const char *q = "SELECT lease_until AS n FROM jobs WHERE id = $1";
    int64_t lease = count(fx, q, j.id), t = util_now_ms(), gap = -1, n = -1;
    assert_int_equal(
        store_job_lease_tick(fx->srv.db, fx->a, t, 1000, &gap, &n, NULL),
        TR_OK);
    assert_int_equal(gap, 0);
    assert_int_equal(
        store_job_lease_tick(fx->srv.db, fx->a, t + 1500, 1000, &gap, &n, NULL),
        TR_OK);
    assert_int_equal(gap, 0);
    assert_int_equal(n, 0);
    assert_int_equal(count(fx, q, j.id), lease);
    /* 40 s with no tick: more than the 30 s lease */
    t += 1500 + 40000;
    assert_int_equal(
        store_job_lease_tick(fx->srv.db, fx->a, t, 1000, &gap, &n, NULL),
        TR_OK);
    assert_int_equal(gap, 39000);
    assert_int_equal(n, 1);
    assert_int_equal(count(fx, q, j.id), lease + 39000);
    int reaped = -1;
    assert_int_equal(run_expire(&fx->srv, fx->a, t, &reaped, NULL), TR_OK);
    assert_int_equal(reaped, 0);
    assert_status(fx, a.id, "planning");
}

static void test_user_lock_waits(void **state)
{
    struct fx *fx = fixture(state);
    assert_int_equal(store_ws_lock(fx->srv.db, fx->a, fx->ws, "user", "u1",
                                   "mine", NULL, NULL),
                     TR_OK);
    struct st_run a = mkrun(fx, 0);
    struct st_run s = mkrun(fx, SPEC);
    assert_status(fx, a.id, "pending");
    assert_status(fx, s.id, "plan_queued"); /* speculative ignores locks */
    assert_int_equal(
        store_ws_unlock(fx->srv.db, fx->a, fx->ws, "user", "u1", NULL, NULL),
        TR_OK);
    assert_status(fx, a.id, "pending");
    /* the reaper's sweep notices */
    assert_int_equal(run_expire(&fx->srv, fx->a, util_now_ms(), NULL, NULL),
                     TR_OK);
    assert_status(fx, a.id, "plan_queued");
    assert_owner(fx, a.id);
    /* a force-unlock by a user does not end the run's ownership */
    assert_int_equal(
        store_ws_unlock(fx->srv.db, fx->a, fx->ws, NULL, NULL, NULL, NULL),
        TR_OK);
    struct st_run b = mkrun(fx, 0);
    assert_status(fx, b.id, "pending");
    assert_int_equal(action(fx, "cancel", a.id), TR_OK);
    assert_owner(fx, b.id);
}

static void test_save_plan(void **state)
{
    struct fx *fx = fixture(state);
    struct st_run a = mkrun(fx, 0);
    struct st_run s = mkrun(fx, SAVE);
    assert_status(fx, s.id, "plan_queued"); /* plans without the workspace */
    struct job ja = claim(fx, a.id, JOB_PLAN);
    struct job js = claim(fx, s.id, JOB_PLAN);
    finish(fx, &js, JOB_FINISHED, true);
    assert_status(fx, s.id, "planned_and_saved");
    assert_actions(fx, s.id, "ad");
    assert_int_equal(action(fx, "apply", s.id), TR_OK);
    assert_status(fx, s.id, "confirmed"); /* waits for the workspace */
    assert_actions(fx, s.id, "c");
    finish(fx, &ja, JOB_FINISHED, false);
    assert_status(fx, a.id, "planned_and_finished");
    assert_status(fx, s.id, "apply_queued");
    assert_owner(fx, s.id);
    struct job j = claim(fx, s.id, JOB_APPLY);
    finish(fx, &j, JOB_FINISHED, true);
    assert_status(fx, s.id, "applied");
    assert_owner(fx, NULL);
}

static void test_force_execute(void **state)
{
    struct fx *fx = fixture(state);
    struct st_run a = mkrun(fx, 0), b = mkrun(fx, 0), c = mkrun(fx, 0);
    assert_int_equal(action(fx, "force-execute", a.id), TR_ERR_CONFLICT);
    struct job j = claim(fx, a.id, JOB_PLAN);
    /* the current run is busy */
    assert_int_equal(action(fx, "force-execute", c.id), TR_ERR_CONFLICT);
    finish(fx, &j, JOB_FINISHED, true);
    assert_int_equal(action(fx, "force-execute", c.id), TR_OK);
    assert_status(fx, a.id, "discarded");
    assert_status(fx, b.id, "discarded");
    assert_status(fx, c.id, "plan_queued");
    assert_owner(fx, c.id);
}

static tr_err log_read(struct fx *fx, const char *phase, int64_t off,
                       int64_t limit, struct st_log_view *v)
{
    return store_log_read(fx->srv.db, fx->srv.keys, fx->a, phase, off, limit, v,
                          NULL);
}

static void test_logs(void **state)
{
    struct fx *fx = fixture(state);
    struct st_run a = mkrun(fx, 0);
    struct st_log_view v;
    /* queued: nothing yet, not ended */
    assert_int_equal(log_read(fx, a.plan_id, 0, 100, &v), TR_OK);
    assert_false(v.ended);
    assert_int_equal(v.len, 0);
    struct job j = claim(fx, a.id, JOB_PLAN);
    const char bin[] = "line one\n\0\x01\xff tail";
    assert_int_equal(
        fx->api->append_log(fx->api->ctx, j.id, "hello ", 6, 0, NULL), TR_OK);
    assert_int_equal(
        fx->api->append_log(fx->api->ctx, j.id, bin, sizeof(bin) - 1, 6, NULL),
        TR_OK);
    /* sent again after a lost acknowledgement: alone, and with what came
     * after it; neither is stored twice */
    assert_int_equal(
        fx->api->append_log(fx->api->ctx, j.id, bin, sizeof(bin) - 1, 6, NULL),
        TR_OK);
    char more[sizeof(bin) + 4];
    memcpy(more, bin, sizeof(bin) - 1);
    memcpy(more + sizeof(bin) - 1, "!end", 4);
    assert_int_equal(
        fx->api->append_log(fx->api->ctx, j.id, more, sizeof(bin) + 3, 6, NULL),
        TR_OK);
    /* the node's own line, without an offset, goes in as it is */
    assert_int_equal(store_log_append(fx->srv.db, fx->srv.keys, fx->a, j.id,
                                      "|", 1, -1, NULL),
                     TR_OK);
    /* a gap (bytes the sender gave up on) is not filled with old ones */
    assert_int_equal(fx->api->append_log(fx->api->ctx, j.id, "Z", 1, 100, NULL),
                     TR_OK);
    assert_int_equal(fx->api->append_log(fx->api->ctx, j.id, "Z", 1, 100, NULL),
                     TR_OK);
    assert_int_equal(log_read(fx, a.plan_id, 6 + sizeof(bin) - 1, 100, &v),
                     TR_OK);
    assert_int_equal(v.len, 6);
    assert_memory_equal(v.data, "!end|Z", 6);
    assert_int_equal(log_read(fx, a.plan_id, 3, 8, &v), TR_OK);
    assert_false(v.ended);
    assert_int_equal(v.len, 8);
    assert_memory_equal(v.data, "lo line ", 8);
    assert_int_equal(log_read(fx, a.plan_id, 6, 100, &v), TR_OK);
    assert_int_equal(v.len, sizeof(bin) - 1 + 6);
    assert_memory_equal(v.data, bin, sizeof(bin) - 1);
    /* a window at the end of int64 is empty, not an overflow */
    assert_int_equal(log_read(fx, a.plan_id, INT64_MAX, 100, &v), TR_OK);
    assert_int_equal(v.len, 0);
    assert_int_equal(log_read(fx, a.plan_id, INT64_MAX - 3, 1 << 20, &v),
                     TR_OK);
    assert_int_equal(v.len, 0);
    finish(fx, &j, JOB_FINISHED, true);
    assert_int_equal(log_read(fx, a.plan_id, 0, 100, &v), TR_OK);
    assert_true(v.ended);
    assert_non_null(v.blob_key);
    char *data = NULL;
    size_t len = 0;
    assert_int_equal(
        blob_get(fx->srv.blob, fx->a, v.blob_key, 1024, &data, &len, NULL),
        TR_OK);
    assert_int_equal(len, 6 + sizeof(bin) - 1 + 6);
    assert_memory_equal(data + 6, bin, sizeof(bin) - 1);
    assert_int_equal(count(fx,
                           "SELECT count(*) AS n FROM log_chunks"
                           " WHERE phase_id = $1",
                           a.plan_id),
                     0);
    /* the apply never ran: its log is empty and ended once unreachable */
    assert_int_equal(action(fx, "discard", a.id), TR_OK);
    assert_int_equal(log_read(fx, a.apply_id, 0, 100, &v), TR_OK);
    assert_true(v.ended);
    assert_null(v.blob_key);
    assert_int_equal(v.len, 0);
}

/* Chunks are stored sealed; a chunk stored in clear (base64) by an older
 * version reads in place among them, for readers and for compaction; a
 * sealed chunk that was tampered with fails the read. */
static void test_logs_sealed(void **state)
{
    struct fx *fx = fixture(state);
    struct st_run a = mkrun(fx, 0);
    struct st_log_view v;
    struct job j = claim(fx, a.id, JOB_PLAN);
    assert_int_equal(
        fx->api->append_log(fx->api->ctx, j.id, "hello ", 6, 0, NULL), TR_OK);
    struct db_conn *c = db_acquire(fx->srv.db);
    assert_int_equal(db_q(c, fx->a, NULL, NULL,
                          "INSERT INTO log_chunks (phase_id, seq, byte_offset,"
                          " len, data) VALUES ($1, 2, 6, 6, 'd29ybGQK')",
                          a.plan_id),
                     TR_OK); /* "world\n" */
    db_release(c);
    assert_int_equal(
        fx->api->append_log(fx->api->ctx, j.id, "again", 5, 6, NULL), TR_OK);
    assert_int_equal(log_read(fx, a.plan_id, 0, 100, &v), TR_OK);
    assert_int_equal(v.len, 17);
    assert_memory_equal(v.data, "hello world\nagain", 17);
    assert_int_equal(log_read(fx, a.plan_id, 4, 6, &v), TR_OK);
    assert_int_equal(v.len, 6);
    assert_memory_equal(v.data, "o worl", 6);
    assert_int_equal(log_read(fx, a.plan_id, 11, 3, &v), TR_OK);
    assert_int_equal(v.len, 3);
    assert_memory_equal(v.data, "\nag", 3);
    /* what the database holds */
    struct db_rows *r = NULL;
    c = db_acquire(fx->srv.db);
    assert_int_equal(db_q(c, fx->a, &r, NULL,
                          "SELECT data FROM log_chunks WHERE phase_id = $1"
                          " ORDER BY seq",
                          a.plan_id),
                     TR_OK);
    db_release(c);
    assert_int_equal(r->nrows, 3);
    for (int i = 0; i < 3; i += 2) {
        const char *d = db_get(r, i, "data");
        assert_true(strncmp(d, "tre1:", 5) == 0);
        assert_null(strstr(d, "hello"));
        assert_null(strstr(d, "aGVsbG8g")); /* base64 of "hello " */
        assert_null(strstr(d, "again"));
        assert_null(strstr(d, "YWdhaW4")); /* base64 of "again" */
    }
    /* a tampered sealed chunk is an error, not garbage */
    char *orig = arena_strdup(fx->a, db_get(r, 2, "data"));
    char *bad = arena_strdup(fx->a, orig);
    bad[strlen(bad) - 3] = bad[strlen(bad) - 3] == 'A' ? 'B' : 'A';
    c = db_acquire(fx->srv.db);
    assert_int_equal(db_q(c, fx->a, NULL, NULL,
                          "UPDATE log_chunks SET data = $2"
                          " WHERE phase_id = $1 AND seq = 3",
                          a.plan_id, bad),
                     TR_OK);
    db_release(c);
    assert_int_equal(log_read(fx, a.plan_id, 0, 100, &v), TR_ERR_CRYPTO);
    /* a window that does not touch it still reads */
    assert_int_equal(log_read(fx, a.plan_id, 0, 12, &v), TR_OK);
    assert_int_equal(v.len, 12);
    c = db_acquire(fx->srv.db);
    assert_int_equal(db_q(c, fx->a, NULL, NULL,
                          "UPDATE log_chunks SET data = $2"
                          " WHERE phase_id = $1 AND seq = 3",
                          a.plan_id, orig),
                     TR_OK);
    db_release(c);
    /* compaction reads both kinds */
    finish(fx, &j, JOB_FINISHED, true);
    assert_int_equal(log_read(fx, a.plan_id, 0, 100, &v), TR_OK);
    assert_non_null(v.blob_key);
    char *data = NULL;
    size_t len = 0;
    assert_int_equal(
        blob_get(fx->srv.blob, fx->a, v.blob_key, 1024, &data, &len, NULL),
        TR_OK);
    assert_int_equal(len, 17);
    assert_memory_equal(data, "hello world\nagain", 17);
}

static void test_redaction(void **state)
{
    (void)state;
    struct arena *a = arena_new();
    const char *plan =
        "{\"format_version\":\"1.2\",\"terraform_version\":\"1.8.0\","
        "\"variables\":{\"pw\":{\"value\":\"hunter2\"},"
        "\"conf\":{\"value\":\"s3cret\"},\"open\":{\"value\":\"ok\"}},"
        "\"configuration\":{\"root_module\":{\"variables\":"
        "{\"conf\":{\"sensitive\":true}}}},"
        "\"planned_values\":{\"outputs\":{\"o\":{\"sensitive\":true,"
        "\"value\":\"hunter2\"}},\"root_module\":{\"resources\":[{"
        "\"values\":{\"a\":\"hunter2\",\"b\":\"fine\"},"
        "\"sensitive_values\":{\"a\":true}}]}},"
        "\"resource_changes\":[{\"address\":\"x.y\",\"change\":{"
        "\"before\":null,\"after\":{\"a\":\"hunter2\",\"l\":[\"p\","
        "\"hunter2\"]},\"after_sensitive\":{\"a\":true,\"l\":[false,true]}"
        "}}],\"output_changes\":{\"o\":{\"after\":\"hunter2\","
        "\"after_sensitive\":true}},"
        "\"provider_schemas\":{\"registry/x\":{}}}";
    const char *secret[] = {"pw"};
    char *full = NULL, *red = NULL;
    size_t fl = 0, rl = 0;
    assert_int_equal(plan_redact(a, plan, strlen(plan), NULL, 0, secret, 1,
                                 &full, &fl, &red, &rl, NULL),
                     TR_OK);
    assert_null(strstr(full, "hunter2"));
    assert_null(strstr(full, "s3cret"));
    assert_null(strstr(red, "hunter2"));
    assert_non_null(strstr(full, "\"ok\""));
    assert_non_null(strstr(full, "\"fine\""));
    assert_non_null(strstr(full, "\"planned_values\""));
    assert_null(strstr(full, "provider_schemas"));
    assert_non_null(strstr(red, "\"provider_schemas\""));
    assert_non_null(strstr(red, "\"resource_changes\""));
    assert_null(strstr(red, "\"variables\""));
    assert_int_equal(
        plan_redact(a, "[1]", 3, NULL, 0, NULL, 0, &full, &fl, &red, &rl, NULL),
        TR_ERR_INVALID);
    /* provider schemas join the redacted plan, cut to the types used */
    const char *p2 =
        "{\"resource_changes\":[{\"type\":\"x_thing\",\"mode\":\"managed\","
        "\"change\":{}}],\"resource_drift\":[{\"type\":\"x_data\","
        "\"mode\":\"data\",\"change\":{}}]}";
    const char *sch =
        "{\"format_version\":\"1.0\",\"provider_schemas\":{\"reg/x\":{"
        "\"provider\":{\"version\":0},\"resource_schemas\":{\"x_thing\":{"
        "\"version\":1},\"x_other\":{\"version\":2}},"
        "\"data_source_schemas\":{\"x_data\":{},\"x_unused\":{}}}}}";
    assert_int_equal(plan_redact(a, p2, strlen(p2), sch, strlen(sch), NULL, 0,
                                 &full, &fl, &red, &rl, NULL),
                     TR_OK);
    assert_non_null(strstr(red, "\"reg/x\""));
    assert_non_null(strstr(red, "\"x_thing\""));
    assert_non_null(strstr(red, "\"x_data\""));
    assert_non_null(strstr(red, "\"provider\":{\"version\":0}"));
    assert_null(strstr(red, "x_other"));
    assert_null(strstr(red, "x_unused"));
    assert_non_null(strstr(red, "\"provider_format_version\":\"1.0\""));
    assert_null(strstr(full, "x_thing\":{\"version"));
    arena_destroy(a);
}

struct waiter {
    struct fx *fx;
    struct job j;
    tr_err e;
    int64_t waited_ms;
};

static void *wait_claim(void *arg)
{
    struct waiter *w = arg;
    struct arena *a = arena_new();
    int64_t t0 = util_now_ms();
    w->e = w->fx->api->claim(w->fx->api->ctx, a, "n2", 10000, &w->j, NULL);
    w->waited_ms = util_now_ms() - t0;
    if (w->e == TR_OK)
        w->j.run_id = strdup(w->j.run_id);
    arena_destroy(a);
    return NULL;
}

static void test_claim_wakeup(void **state)
{
    struct fx *fx = fixture(state);
    struct waiter w = {.fx = fx};
    pthread_t t;
    pthread_create(&t, NULL, wait_claim, &w);
    usleep(200 * 1000);
    struct st_run a = mkrun(fx, 0);
    pthread_join(t, NULL);
    assert_int_equal(w.e, TR_OK);
    assert_string_equal(w.j.run_id, a.id);
    free((char *)w.j.run_id);
    /* woken by the signal, not by the 10 s timeout */
    assert_true(w.waited_ms < 5000);
    /* nothing queued: a short wait ends empty */
    struct job j;
    int64_t t0 = util_now_ms();
    assert_false(try_claim(fx, &j, 100));
    assert_true(util_now_ms() - t0 >= 90);
}

static void test_job_contents(void **state)
{
    struct fx *fx = fixture(state);
    struct st_var v = {.workspace_id = fx->ws,
                       .key = "pw",
                       .value = "hunter2",
                       .category = "terraform",
                       .sensitive = true};
    struct st_var e = {.workspace_id = fx->ws,
                       .key = "TF_LOG",
                       .value = "info",
                       .category = "env"};
    struct st_var o = {.workspace_id = fx->ws,
                       .key = "region",
                       .value = "a",
                       .category = "terraform"};
    assert_int_equal(
        store_var_create(fx->srv.db, fx->srv.keys, fx->a, &v, NULL, NULL),
        TR_OK);
    assert_int_equal(
        store_var_create(fx->srv.db, fx->srv.keys, fx->a, &e, NULL, NULL),
        TR_OK);
    assert_int_equal(
        store_var_create(fx->srv.db, fx->srv.keys, fx->a, &o, NULL, NULL),
        TR_OK);
    struct st_run in =
                      {
                          .workspace_id = fx->ws,
                          .org = "o",
                          .cv_id = fx->cv,
                          .refresh = true,
                          .is_destroy = true,
                          .target_addrs = "[\"a.b\",\"c.d\"]",
                          .replace_addrs = "[\"e.f\"]",
                          .variables =
                              "[{\"key\":\"region\",\"value\":\"\\\"b\\\"\"}]",
                      },
                  r;
    assert_int_equal(run_create(&fx->srv, fx->a, &in, &r, NULL), TR_OK);
    struct job j = claim(fx, r.id, JOB_PLAN);
    assert_string_equal(j.org, "o");
    assert_string_equal(j.workspace, "w");
    assert_string_equal(j.workspace_id, fx->ws);
    assert_string_equal(j.cv_id, fx->cv);
    assert_string_equal(j.phase_id, r.plan_id);
    assert_string_equal(j.tool_path, "/bin/true");
    assert_string_equal(j.tool_version, "1.8.0");
    assert_string_equal(j.api_url, "https://127.0.0.1:1");
    assert_true(j.is_destroy);
    assert_false(j.speculative);
    assert_int_equal(j.ntargets, 2);
    assert_string_equal(j.targets[1], "c.d");
    assert_int_equal(j.nreplaces, 1);
    assert_int_equal(j.nvars, 3);
    bool pw = false, region = false, env = false;
    for (int i = 0; i < j.nvars; i++) {
        if (strcmp(j.vars[i].key, "pw") == 0) {
            pw = true;
            assert_true(j.vars[i].sensitive);
            assert_string_equal(j.vars[i].value, "hunter2");
        } else if (strcmp(j.vars[i].key, "region") == 0) {
            region = true;
            assert_true(j.vars[i].hcl);
            assert_string_equal(j.vars[i].value, "\"b\""); /* the run's */
        } else if (strcmp(j.vars[i].key, "TF_LOG") == 0) {
            env = j.vars[i].env;
        }
    }
    assert_true(pw && region && env);
    /* the token works as an API token of kind "run" */
    struct st_token t;
    assert_int_equal(store_token_lookup(fx->srv.db, fx->a, j.token, &t, NULL),
                     TR_OK);
    assert_string_equal(t.kind, "run");
    assert_string_equal(t.subject, r.id);
    finish(fx, &j, JOB_FINISHED, true);
    assert_int_equal(store_token_lookup(fx->srv.db, fx->a, j.token, &t, NULL),
                     TR_ERR_NOT_FOUND);
}

/* A run's variables (the CLI's -var flags) are stored sealed and reach
 * the job and readers in clear; a run stored before they were sealed
 * (clear JSON in the column) reads as it is. */
static void test_run_variables_sealed(void **state)
{
    struct fx *fx = fixture(state);
    const char *vars = "[{\"key\":\"pw\",\"value\":\"\\\"hunter3\\\"\"}]";
    struct st_run in = {.workspace_id = fx->ws,
                        .org = "o",
                        .cv_id = fx->cv,
                        .refresh = true,
                        .plan_only = true,
                        .variables = vars},
                  r, stored;
    assert_int_equal(run_create(&fx->srv, fx->a, &in, &r, NULL), TR_OK);
    stored = get(fx, r.id);
    assert_true(strncmp(stored.variables, "tre1:", 5) == 0);
    assert_null(strstr(stored.variables, "hunter3"));
    const char *back = NULL;
    assert_int_equal(run_variables(&fx->srv, fx->a, &stored, &back, NULL),
                     TR_OK);
    assert_string_equal(back, vars);
    struct job j = claim(fx, r.id, JOB_PLAN);
    bool pw = false;
    for (int i = 0; i < j.nvars; i++)
        if (strcmp(j.vars[i].key, "pw") == 0)
            pw = strcmp(j.vars[i].value, "\"hunter3\"") == 0;
    assert_true(pw);
    finish(fx, &j, JOB_FINISHED, true);
    /* no variables: nothing sealed, "[]" back */
    struct st_run none = mkrun(fx, SPEC);
    assert_string_equal(get(fx, none.id).variables, "[]");
    /* an old row in clear */
    sql(fx, "UPDATE runs SET variables = $1", vars);
    stored = get(fx, r.id);
    assert_int_equal(run_variables(&fx->srv, fx->a, &stored, &back, NULL),
                     TR_OK);
    assert_string_equal(back, vars);
    /* a sealed value that does not open is an error, not "[]" */
    char *bad = NULL;
    assert_int_equal(envelope_seal(fx->srv.keys, fx->a, "[]", 2, &bad, NULL),
                     TR_OK);
    bad[strlen(bad) - 2] ^= 1;
    stored.variables = bad;
    assert_int_equal(run_variables(&fx->srv, fx->a, &stored, &back, NULL),
                     TR_ERR_CRYPTO);
}

static void test_unknown_tool(void **state)
{
    struct fx *fx = fixture(state);
    sql(fx, "UPDATE workspaces SET terraform_version = $1", "9.9.9");
    struct st_run a = mkrun(fx, 0);
    struct job j;
    /* the job cannot be made: the run errors and the worker gets nothing */
    assert_false(try_claim(fx, &j, 0));
    struct st_run r = get(fx, a.id);
    assert_string_equal(r.status, "errored");
    assert_non_null(strstr(r.error_message, "9.9.9"));
    assert_owner(fx, NULL);
}

static void test_events(void **state)
{
    struct fx *fx = fixture(state);
    struct st_run a = mkrun(fx, 0);
    assert_int_equal(
        store_comment_create(fx->srv.db, fx->a, a.id, "hi", NULL, NULL, NULL),
        TR_OK);
    assert_int_equal(run_cancel(&fx->srv, fx->a, a.id, NULL, "stop", NULL),
                     TR_OK);
    struct st_run_event *ev = NULL;
    int n = 0;
    assert_int_equal(store_run_events(fx->srv.db, fx->a, a.id, &ev, &n, NULL),
                     TR_OK);
    assert_true(n >= 4);
    assert_string_equal(ev[0].action, "created");
    assert_string_equal(ev[1].action, "plan_queued");
    assert_string_equal(ev[2].action, "commented");
    assert_non_null(ev[2].comment_id);
    assert_string_equal(ev[3].action, "canceled");
    struct st_comment *cm = NULL;
    assert_int_equal(store_comment_list(fx->srv.db, fx->a, a.id, &cm, &n, NULL),
                     TR_OK);
    assert_int_equal(n, 2);
    assert_string_equal(cm[1].body, "stop");
}

/* ---- races and faults ---------------------------------------------------- */

struct racer {
    struct fx *fx;
    int claimed;
    char ids[16][40];
    bool cancel; /* this racer cancels instead of claiming */
    const char **runs;
    int nruns;
    int errors;
};

static void *race(void *arg)
{
    struct racer *rc = arg;
    struct arena *a = arena_new();
    if (rc->cancel) {
        for (int i = 0; i < rc->nruns; i++) {
            tr_err e =
                run_cancel(&rc->fx->srv, a, rc->runs[i], NULL, NULL, NULL);
            if (e != TR_OK && e != TR_ERR_CONFLICT)
                rc->errors++;
        }
    } else {
        for (;;) {
            struct job j;
            tr_err e =
                rc->fx->api->claim(rc->fx->api->ctx, a, "racer", 0, &j, NULL);
            if (e == TR_ERR_NOT_FOUND)
                break;
            if (e != TR_OK) {
                rc->errors++;
                break;
            }
            if (rc->claimed < 16)
                snprintf(rc->ids[rc->claimed], sizeof(rc->ids[0]), "%s",
                         j.run_id);
            rc->claimed++;
        }
    }
    arena_destroy(a);
    return NULL;
}

/* Four claimers and a canceler on twelve queued speculative runs: every
 * job is claimed at most once, nothing fails (no deadlock on
 * PostgreSQL), and each run ends up either canceled before any worker saw
 * it or planning with the cancel request on its job. */
static void test_claim_race(void **state)
{
    struct fx *fx = fixture(state);
    enum { NRUNS = 12, NCLAIM = 4 };
    const char *runs[NRUNS];
    for (int i = 0; i < NRUNS; i++)
        runs[i] = mkrun(fx, SPEC).id;
    struct racer rc[NCLAIM + 1];
    pthread_t t[NCLAIM + 1];
    memset(rc, 0, sizeof(rc));
    for (int i = 0; i <= NCLAIM; i++) {
        rc[i].fx = fx;
        rc[i].cancel = i == NCLAIM;
        rc[i].runs = runs;
        rc[i].nruns = NRUNS;
        pthread_create(&t[i], NULL, race, &rc[i]);
    }
    int claimed = 0;
    for (int i = 0; i <= NCLAIM; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(rc[i].errors, 0);
        claimed += rc[i].claimed;
    }
    for (int i = 0; i < NCLAIM; i++)
        for (int k = 0; k < rc[i].claimed; k++)
            for (int m = 0; m <= NCLAIM; m++)
                for (int q = 0; q < rc[m].claimed; q++)
                    if ((m != i || q != k) &&
                        strcmp(rc[i].ids[k], rc[m].ids[q]) == 0)
                        fail_msg("run %s claimed twice", rc[i].ids[k]);
    int planning = 0;
    for (int i = 0; i < NRUNS; i++) {
        struct st_run r = get(fx, runs[i]);
        if (strcmp(r.status, "planning") == 0) {
            planning++;
            assert_int_equal(count(fx,
                                   "SELECT count(*) AS n FROM jobs WHERE"
                                   " run_id = $1 AND status = 'running'"
                                   " AND cancel = 1",
                                   r.id),
                             1);
        } else {
            assert_string_equal(r.status, "canceled");
        }
    }
    assert_int_equal(planning, claimed);
    assert_int_equal(
        count(fx, "SELECT count(*) AS n FROM jobs WHERE status = $1", "queued"),
        0);
}

/* The invariants of run.h that a failure must never break. */
static void assert_consistent(struct fx *fx)
{
    /* queued job <=> a *_queued run; running job <=> planning/applying */
    assert_int_equal(
        count(fx,
              "SELECT count(*) AS n FROM runs r WHERE (r.status IN"
              " ('plan_queued', 'apply_queued')) <> EXISTS (SELECT 1 FROM"
              " jobs j WHERE j.run_id = r.id AND j.status = $1)",
              "queued"),
        0);
    assert_int_equal(
        count(fx,
              "SELECT count(*) AS n FROM runs r WHERE (r.status IN"
              " ('planning', 'applying')) <> EXISTS (SELECT 1 FROM jobs j"
              " WHERE j.run_id = r.id AND j.status = $1)",
              "running"),
        0);
    /* the current run holds the lock; no final run is current */
    assert_int_equal(count(fx,
                           "SELECT count(*) AS n FROM workspaces w JOIN runs"
                           " r ON r.id = w.current_run_id WHERE w.locked = 0"
                           " OR w.lock_holder <> r.id OR r.status IN"
                           " ('applied', 'planned_and_finished', 'discarded',"
                           " 'errored', 'canceled', $1)",
                           "force_canceled"),
                     0);
}

/* Every statement of create, claim, cancel and finish failing in turn:
 * each failure leaves the runs consistent, and a retry completes. */
static void test_fault_walk(void **state)
{
    struct fx *fx = fixture(state);
    for (int n = 1; n < 200; n++) {
        fault_arm("db.query", n);
        struct st_run in = {.workspace_id = fx->ws,
                            .org = "o",
                            .cv_id = fx->cv,
                            .refresh = true},
                      r;
        tr_err e = run_create(&fx->srv, fx->a, &in, &r, NULL);
        struct job j;
        if (e == TR_OK &&
            fx->api->claim(fx->api->ctx, fx->a, "n", 0, &j, NULL) == TR_OK) {
            struct job_result res = {.outcome = JOB_FINISHED,
                                     .has_changes = true};
            fx->api->append_log(fx->api->ctx, j.id, "x", 1, 0, NULL);
            fx->api->finish(fx->api->ctx, j.id, &res, NULL);
        }
        if (e == TR_OK)
            run_cancel(&fx->srv, fx->a, r.id, NULL, NULL, NULL);
        if (e == TR_OK)
            run_discard(&fx->srv, fx->a, r.id, NULL, NULL, NULL);
        bool fired = fault_fired();
        fault_reset();
        assert_consistent(fx);
        /* whatever is left: the reaper and actions clean it up */
        assert_int_equal(
            run_expire(&fx->srv, fx->a, util_now_ms() + 60000, NULL, NULL),
            TR_OK);
        struct st_run_filter f = {.workspace_id = fx->ws};
        struct st_run *runs = NULL;
        int nr = 0;
        int64_t total = 0;
        assert_int_equal(store_run_list(fx->srv.db, fx->a, &f, 0, 100, &runs,
                                        &nr, &total, NULL),
                         TR_OK);
        for (int i = 0; i < nr; i++) {
            if (run_is_final(runs[i].status))
                continue;
            if (run_discard(&fx->srv, fx->a, runs[i].id, NULL, NULL, NULL) !=
                TR_OK)
                assert_int_equal(
                    run_cancel(&fx->srv, fx->a, runs[i].id, NULL, NULL, NULL),
                    TR_OK);
            struct job jj;
            while (fx->api->claim(fx->api->ctx, fx->a, "n", 0, &jj, NULL) ==
                   TR_OK) {
                struct job_result res = {.outcome = JOB_CANCELED};
                fx->api->finish(fx->api->ctx, jj.id, &res, NULL);
            }
        }
        assert_consistent(fx);
        assert_owner(fx, NULL);
        if (!fired)
            break;
    }
}

#define BOTH(f)                                                                \
    {"sqlite/" #f, f, setup, teardown, (void *)&k_sqlite},                     \
    {                                                                          \
        "pg/" #f, f, setup, teardown, (void *)&k_pg                            \
    }

int main(void)
{
    const struct CMUnitTest tests[] = {
        BOTH(test_queue_order),
        BOTH(test_speculative_parallel),
        BOTH(test_auto_apply),
        BOTH(test_deferred_json),
        BOTH(test_no_changes),
        BOTH(test_discard_rules),
        BOTH(test_cancel_each_state),
        BOTH(test_force_cancel),
        BOTH(test_lease_expiry),
        BOTH(test_lease_clock),
        BOTH(test_user_lock_waits),
        BOTH(test_save_plan),
        BOTH(test_force_execute),
        BOTH(test_logs),
        BOTH(test_logs_sealed),
        BOTH(test_claim_wakeup),
        BOTH(test_job_contents),
        BOTH(test_run_variables_sealed),
        BOTH(test_unknown_tool),
        BOTH(test_events),
        BOTH(test_claim_race),
        BOTH(test_fault_walk),
        cmocka_unit_test(test_redaction),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
