/*
 * test_store_workspaces.c - unit tests for src/store/store_workspaces.c,
 * store_projects.c and store_tags.c, on SQLite (a mkdtemp directory) and,
 * when TERRACE_TEST_PG_URL is set, on PostgreSQL (a fresh database per
 * test; the pg/ tests skip otherwise).
 *
 * Besides the happy paths: the lock state machine including racing
 * threads, safe delete against the current state version's resources,
 * all-or-nothing tag operations, and a fault walk over create and update
 * (every failing statement leaves the database as it was).
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/fault.h"
#include "store/store.h"
#include "unit_util.h"

struct fx {
    struct ut_store st;
    struct db *db; /* st.db */
    struct arena *a;
};

static const enum db_kind k_sqlite = DB_SQLITE;
static const enum db_kind k_pg = DB_PG;

static int setup(void **state)
{
    const enum db_kind *kind = *state;
    struct fx *fx = calloc(1, sizeof(*fx));
    struct tr_errbuf eb = {{0}};
    *state = fx;
    /* several connections: the race test locks from many threads */
    int rc = ut_store_open(&fx->st, *kind, 8, "test_store_ws");
    if (rc != 0)
        return rc > 0 ? 0 : -1; /* 1: the test skips */
    fx->db = fx->st.db;
    fx->a = arena_new();
    if (store_org_create(fx->db, fx->a, "o", "o@x", NULL, NULL, NULL, &eb) !=
            TR_OK ||
        store_org_create(fx->db, fx->a, "p", "p@x", NULL, NULL, NULL, &eb) !=
            TR_OK) {
        fprintf(stderr, "setup: %s\n", eb.msg);
        return -1;
    }
    return 0;
}

static int teardown(void **state)
{
    struct fx *fx = *state;
    fault_reset();
    if (fx->a != NULL)
        arena_destroy(fx->a);
    int rc = ut_store_close(&fx->st);
    free(fx);
    return rc;
}

static struct fx *fixture(void **state)
{
    struct fx *fx = *state;
    if (fx->db == NULL)
        skip();
    return fx;
}

static int64_t count(struct fx *fx, const char *sql)
{
    return ut_count(fx->db, fx->a, sql);
}

static struct st_workspace mkws(struct fx *fx, const char *org,
                                const char *name, const char *const *tags,
                                int ntags)
{
    struct st_workspace in =
                            {
                                .org = org,
                                .name = name,
                                .tag_names = (const char **)tags,
                                .ntags = ntags,
                            },
                        out;
    assert_int_equal(store_ws_create(fx->db, fx->a, &in, &out, NULL), TR_OK);
    return out;
}

static void test_create_get(void **state)
{
    struct fx *fx = fixture(state);
    const char *tags[] = {"zeta", "alpha", "alpha"};
    struct st_workspace w = mkws(fx, "o", "one", tags, 3), got;
    assert_true(strncmp(w.id, "ws-", 3) == 0);
    assert_string_equal(w.execution_mode, "remote");
    assert_string_equal(w.terraform_version, "latest");
    assert_string_equal(w.settings, "{}");
    assert_false(w.locked);
    assert_null(w.current_sv);
    assert_int_equal(w.resource_count, 0);
    assert_int_equal(w.ntags, 2);
    assert_string_equal(w.tag_names[0], "alpha");
    assert_string_equal(w.tag_names[1], "zeta");
    struct st_project dp;
    assert_int_equal(store_project_default(fx->db, fx->a, "o", &dp, NULL),
                     TR_OK);
    assert_string_equal(w.project_id, dp.id);
    assert_int_equal(store_ws_get(fx->db, fx->a, w.id, &got, NULL), TR_OK);
    assert_string_equal(got.name, "one");
    assert_int_equal(got.ntags, 2);
    assert_int_equal(
        store_ws_get_by_name(fx->db, fx->a, "o", "one", &got, NULL), TR_OK);
    assert_string_equal(got.id, w.id);
    /* names are per organization */
    assert_int_equal(
        store_ws_get_by_name(fx->db, fx->a, "p", "one", &got, NULL),
        TR_ERR_NOT_FOUND);
    mkws(fx, "p", "one", NULL, 0);
    struct tr_errbuf eb = {{0}};
    struct st_workspace dup = {.org = "o", .name = "one"};
    assert_int_equal(store_ws_create(fx->db, fx->a, &dup, NULL, &eb),
                     TR_ERR_INVALID);
    assert_non_null(strstr(eb.msg, "taken"));
    struct st_workspace noorg = {.org = "nope", .name = "x"};
    assert_int_equal(store_ws_create(fx->db, fx->a, &noorg, NULL, NULL),
                     TR_ERR_NOT_FOUND);
    /* a project of another organization */
    struct st_project pp;
    assert_int_equal(store_project_default(fx->db, fx->a, "p", &pp, NULL),
                     TR_OK);
    struct st_workspace cross = {.org = "o", .name = "x", .project_id = pp.id};
    assert_int_equal(store_ws_create(fx->db, fx->a, &cross, NULL, NULL),
                     TR_ERR_NOT_FOUND);
    assert_int_equal(store_ws_get(fx->db, fx->a, "ws-nope", &got, NULL),
                     TR_ERR_NOT_FOUND);
    assert_int_equal(count(fx, "SELECT count(*) AS n FROM workspaces"), 2);
}

static void test_update(void **state)
{
    struct fx *fx = fixture(state);
    const char *tags[] = {"a"};
    struct st_workspace w = mkws(fx, "o", "upd", tags, 1), got;
    mkws(fx, "o", "other", NULL, 0);
    struct st_project prj;
    assert_int_equal(
        store_project_create(fx->db, fx->a, "o", "Team", "d", NULL, &prj, NULL),
        TR_OK);
    const char *newtags[] = {"c", "b"};
    struct st_ws_update u = {
        .name = "renamed",
        .project_id = prj.id,
        .execution_mode = "local",
        .auto_apply = 1,
        .settings_patch = "{\"queue-all-runs\":true}",
        .set_tags = true,
        .tag_names = newtags,
        .ntags = 2,
    };
    assert_int_equal(store_ws_update(fx->db, fx->a, w.id, &u, &got, NULL),
                     TR_OK);
    assert_string_equal(got.name, "renamed");
    assert_string_equal(got.project_id, prj.id);
    assert_string_equal(got.execution_mode, "local");
    assert_true(got.auto_apply);
    assert_string_equal(got.description, "");
    assert_string_equal(got.settings, "{\"queue-all-runs\":true}");
    assert_int_equal(got.ntags, 2);
    assert_string_equal(got.tag_names[0], "b");
    /* a second patch merges into the first */
    struct st_ws_update u2 = {.auto_apply = -1,
                              .settings_patch = "{\"source-name\":\"x\"}"};
    assert_int_equal(store_ws_update(fx->db, fx->a, w.id, &u2, &got, NULL),
                     TR_OK);
    assert_string_equal(got.settings,
                        "{\"queue-all-runs\":true,\"source-name\":\"x\"}");
    assert_true(got.auto_apply);
    /* a taken name or a foreign project changes nothing */
    struct st_ws_update bad = {
        .name = "other", .auto_apply = 0, .set_tags = true};
    assert_int_equal(store_ws_update(fx->db, fx->a, w.id, &bad, NULL, NULL),
                     TR_ERR_INVALID);
    struct st_project pp;
    assert_int_equal(store_project_default(fx->db, fx->a, "p", &pp, NULL),
                     TR_OK);
    struct st_ws_update bad2 = {.project_id = pp.id, .auto_apply = 0};
    assert_int_equal(store_ws_update(fx->db, fx->a, w.id, &bad2, NULL, NULL),
                     TR_ERR_NOT_FOUND);
    assert_int_equal(store_ws_get(fx->db, fx->a, w.id, &got, NULL), TR_OK);
    assert_string_equal(got.name, "renamed");
    assert_true(got.auto_apply);
    assert_int_equal(got.ntags, 2);
    struct st_ws_update none = {.auto_apply = -1};
    assert_int_equal(
        store_ws_update(fx->db, fx->a, "ws-nope", &none, NULL, NULL),
        TR_ERR_NOT_FOUND);
}

static void test_list(void **state)
{
    struct fx *fx = fixture(state);
    const char *t_app[] = {"app"}, *t_both[] = {"app", "prod"};
    mkws(fx, "o", "b-prod", t_both, 2);
    mkws(fx, "o", "a-dev", t_app, 1);
    mkws(fx, "o", "c_x", NULL, 0);
    mkws(fx, "p", "a-prod", NULL, 0);
    struct st_workspace *ws = NULL;
    int n = 0;
    int64_t total = 0;
    struct st_ws_filter f = {.org = "o"};
    assert_int_equal(
        store_ws_list(fx->db, fx->a, &f, 0, 2, &ws, &n, &total, NULL), TR_OK);
    assert_int_equal(n, 2);
    assert_int_equal(total, 3);
    /* by default in creation order, even within one millisecond */
    assert_string_equal(ws[0].name, "b-prod");
    assert_string_equal(ws[1].name, "a-dev");
    assert_int_equal(ws[0].ntags, 2);
    f.desc = true;
    assert_int_equal(
        store_ws_list(fx->db, fx->a, &f, 0, 10, &ws, &n, &total, NULL), TR_OK);
    assert_string_equal(ws[0].name, "c_x");
    assert_string_equal(ws[2].name, "b-prod");
    f = (struct st_ws_filter){.org = "o", .order = ST_WS_BY_NAME};
    assert_int_equal(
        store_ws_list(fx->db, fx->a, &f, 0, 10, &ws, &n, &total, NULL), TR_OK);
    assert_string_equal(ws[0].name, "a-dev");
    assert_string_equal(ws[1].name, "b-prod");
    f.desc = true;
    assert_int_equal(
        store_ws_list(fx->db, fx->a, &f, 0, 10, &ws, &n, &total, NULL), TR_OK);
    assert_string_equal(ws[0].name, "c_x");
    assert_string_equal(ws[2].name, "a-dev");
    f = (struct st_ws_filter){.org = "o", .search = "PROD"};
    assert_int_equal(
        store_ws_list(fx->db, fx->a, &f, 0, 10, &ws, &n, &total, NULL), TR_OK);
    assert_int_equal(n, 1);
    assert_string_equal(ws[0].name, "b-prod");
    f = (struct st_ws_filter){.org = "o", .search = "_"};
    assert_int_equal(
        store_ws_list(fx->db, fx->a, &f, 0, 10, &ws, &n, &total, NULL), TR_OK);
    assert_int_equal(n, 1); /* '_' is literal, not a LIKE wildcard */
    f = (struct st_ws_filter){.org = "o", .wildcard = "*-dev"};
    assert_int_equal(
        store_ws_list(fx->db, fx->a, &f, 0, 10, &ws, &n, &total, NULL), TR_OK);
    assert_int_equal(n, 1);
    assert_string_equal(ws[0].name, "a-dev");
    const char *want[] = {"app", "prod"}, *excl[] = {"prod"};
    f = (struct st_ws_filter){.org = "o", .tags = want, .ntags = 2};
    assert_int_equal(
        store_ws_list(fx->db, fx->a, &f, 0, 10, &ws, &n, &total, NULL), TR_OK);
    assert_int_equal(total, 1);
    f = (struct st_ws_filter){.org = "o", .exclude_tags = excl, .nexclude = 1};
    assert_int_equal(
        store_ws_list(fx->db, fx->a, &f, 0, 10, &ws, &n, &total, NULL), TR_OK);
    assert_int_equal(total, 2);
    f = (struct st_ws_filter){.org = "o", .project_id = "prj-nope"};
    assert_int_equal(
        store_ws_list(fx->db, fx->a, &f, 0, 10, &ws, &n, &total, NULL), TR_OK);
    assert_int_equal(total, 0);
    f = (struct st_ws_filter){.org = "o"};
    assert_int_equal(
        store_ws_list(fx->db, fx->a, &f, 100, 10, &ws, &n, &total, NULL),
        TR_OK);
    assert_int_equal(n, 0);
    assert_int_equal(total, 3);
}

static void test_lock_state_machine(void **state)
{
    struct fx *fx = fixture(state);
    struct st_workspace w = mkws(fx, "o", "lk", NULL, 0), got;
    struct tr_errbuf eb = {{0}};
    assert_int_equal(
        store_ws_unlock(fx->db, fx->a, w.id, "user", "u1", NULL, &eb),
        TR_ERR_CONFLICT);
    assert_string_equal(eb.msg, "workspace already unlocked");
    assert_int_equal(
        store_ws_lock(fx->db, fx->a, w.id, "user", "u1", "why", &got, NULL),
        TR_OK);
    assert_true(got.locked);
    assert_string_equal(got.lock_kind, "user");
    assert_string_equal(got.lock_holder, "u1");
    assert_string_equal(got.lock_reason, "why");
    assert_int_equal(
        store_ws_lock(fx->db, fx->a, w.id, "user", "u1", NULL, NULL, &eb),
        TR_ERR_CONFLICT);
    assert_string_equal(eb.msg, "workspace already locked");
    assert_int_equal(
        store_ws_unlock(fx->db, fx->a, w.id, "user", "u2", NULL, &eb),
        TR_ERR_CONFLICT);
    assert_string_equal(eb.msg, "workspace is locked by User u1");
    assert_int_equal(
        store_ws_unlock(fx->db, fx->a, w.id, "org", "u1", NULL, &eb),
        TR_ERR_CONFLICT);
    assert_int_equal(
        store_ws_unlock(fx->db, fx->a, w.id, "user", "u1", &got, NULL), TR_OK);
    assert_false(got.locked);
    assert_null(got.lock_holder);
    assert_string_equal(got.lock_reason, "");
    /* a run's lock; only force removes it for others */
    assert_int_equal(
        store_ws_lock(fx->db, fx->a, w.id, "run", "run-1", NULL, NULL, NULL),
        TR_OK);
    assert_int_equal(
        store_ws_unlock(fx->db, fx->a, w.id, "user", "u1", NULL, &eb),
        TR_ERR_CONFLICT);
    assert_string_equal(eb.msg, "workspace is locked by Run run-1");
    assert_int_equal(
        store_ws_unlock(fx->db, fx->a, w.id, NULL, NULL, &got, NULL), TR_OK);
    assert_false(got.locked);
    assert_int_equal(
        store_ws_unlock(fx->db, fx->a, w.id, NULL, NULL, NULL, NULL),
        TR_ERR_CONFLICT);
    assert_int_equal(
        store_ws_lock(fx->db, fx->a, "ws-nope", "user", "u1", NULL, NULL, NULL),
        TR_ERR_NOT_FOUND);
    assert_int_equal(
        store_ws_unlock(fx->db, fx->a, "ws-nope", NULL, NULL, NULL, NULL),
        TR_ERR_NOT_FOUND);
}

struct racer {
    struct db *db;
    const char *id;
    int n;
    pthread_barrier_t *start;
    tr_err result;
};

static void *race(void *p)
{
    struct racer *r = p;
    struct arena *a = arena_new();
    char holder[16];
    snprintf(holder, sizeof(holder), "u%d", r->n);
    pthread_barrier_wait(r->start);
    r->result =
        store_ws_lock(r->db, a, r->id, "user", holder, NULL, NULL, NULL);
    arena_destroy(a);
    return NULL;
}

static void test_lock_race(void **state)
{
    struct fx *fx = fixture(state);
    enum { N = 8 };
    for (int round = 0; round < 5; round++) {
        struct st_workspace w =
            mkws(fx, "o", arena_printf(fx->a, "race%d", round), NULL, 0);
        pthread_barrier_t start;
        pthread_barrier_init(&start, NULL, N);
        struct racer rs[N];
        pthread_t th[N];
        for (int i = 0; i < N; i++) {
            rs[i] = (struct racer){fx->db, w.id, i, &start, TR_ERR_INTERNAL};
            pthread_create(&th[i], NULL, race, &rs[i]);
        }
        int ok = 0, conflict = 0;
        for (int i = 0; i < N; i++) {
            pthread_join(th[i], NULL);
            ok += rs[i].result == TR_OK;
            conflict += rs[i].result == TR_ERR_CONFLICT;
        }
        pthread_barrier_destroy(&start);
        assert_int_equal(ok, 1);
        assert_int_equal(conflict, N - 1);
    }
}

static void test_delete_and_safe_delete(void **state)
{
    struct fx *fx = fixture(state);
    const char *tags[] = {"t"};
    struct st_workspace w = mkws(fx, "o", "del", tags, 1);
    struct tr_errbuf eb = {{0}};
    /* locked: safe delete refuses, mentioning the lock */
    assert_int_equal(
        store_ws_lock(fx->db, fx->a, w.id, "user", "u", NULL, NULL, NULL),
        TR_OK);
    assert_int_equal(store_ws_delete(fx->db, fx->a, w.id, true, &eb),
                     TR_ERR_CONFLICT);
    assert_non_null(strstr(eb.msg, "locked"));
    assert_int_equal(
        store_ws_unlock(fx->db, fx->a, w.id, NULL, NULL, NULL, NULL), TR_OK);
    /* a current state version with resources: refused, without "locked" */
    struct db_conn *c = db_acquire(fx->db);
    assert_int_equal(
        db_x(c, fx->a, NULL, NULL,
             "INSERT INTO state_versions (id, workspace_id, seq, serial,"
             " lineage, md5, status, blob_key, resources, created_at)"
             " VALUES ('sv-1', $1, 1, 1, 'l', 'm', 'finalized', 'k',"
             " '[{\"type\":\"null_resource\"},{\"type\":\"x\"}]', 'now')",
             w.id),
        TR_OK);
    assert_int_equal(db_x(c, fx->a, NULL, NULL,
                          "UPDATE workspaces SET current_sv = 'sv-1'"
                          " WHERE id = $1",
                          w.id),
                     TR_OK);
    db_release(c);
    struct st_workspace got;
    assert_int_equal(store_ws_get(fx->db, fx->a, w.id, &got, NULL), TR_OK);
    assert_string_equal(got.current_sv, "sv-1");
    assert_int_equal(got.resource_count, 2);
    assert_int_equal(store_ws_delete(fx->db, fx->a, w.id, true, &eb),
                     TR_ERR_CONFLICT);
    assert_null(strstr(eb.msg, "locked"));
    assert_non_null(strstr(eb.msg, "resources"));
    /* a forced delete takes the state versions and tag links along */
    assert_int_equal(store_ws_delete(fx->db, fx->a, w.id, false, NULL), TR_OK);
    assert_int_equal(count(fx, "SELECT count(*) AS n FROM state_versions"), 0);
    assert_int_equal(count(fx, "SELECT count(*) AS n FROM workspace_tags"), 0);
    assert_int_equal(count(fx, "SELECT count(*) AS n FROM tags"), 1);
    assert_int_equal(store_ws_delete(fx->db, fx->a, w.id, false, NULL),
                     TR_ERR_NOT_FOUND);
    /* an empty resources list is safe to delete */
    struct st_workspace e = mkws(fx, "o", "empty", NULL, 0);
    assert_int_equal(store_ws_delete(fx->db, fx->a, e.id, true, NULL), TR_OK);
}

static void test_projects(void **state)
{
    struct fx *fx = fixture(state);
    struct st_project p, got, def, *list = NULL;
    int n = 0;
    int64_t total = 0;
    assert_int_equal(store_project_create(fx->db, fx->a, "o", "Team A", NULL,
                                          NULL, &p, NULL),
                     TR_OK);
    assert_true(strncmp(p.id, "prj-", 4) == 0);
    assert_int_equal(store_project_create(fx->db, fx->a, "o", "Team A", NULL,
                                          NULL, NULL, NULL),
                     TR_ERR_INVALID);
    assert_int_equal(store_project_create(fx->db, fx->a, "nope", "x", NULL,
                                          NULL, NULL, NULL),
                     TR_ERR_NOT_FOUND);
    assert_int_equal(store_project_create(fx->db, fx->a, "p", "Team A", NULL,
                                          NULL, NULL, NULL),
                     TR_OK);
    const char *names[] = {"Team A", "nope"};
    assert_int_equal(store_project_list(fx->db, fx->a, "o", names, 2, NULL,
                                        NULL, NULL, 0, 10, &list, &n, &total,
                                        NULL),
                     TR_OK);
    assert_int_equal(n, 1);
    assert_string_equal(list[0].id, p.id);
    assert_int_equal(store_project_list(fx->db, fx->a, "o", NULL, 0, "default",
                                        NULL, NULL, 0, 10, &list, &n, &total,
                                        NULL),
                     TR_OK);
    assert_int_equal(total, 1);
    assert_true(list[0].is_default);
    assert_int_equal(store_project_list(fx->db, fx->a, "o", NULL, 0, NULL, NULL,
                                        NULL, 0, 10, &list, &n, &total, NULL),
                     TR_OK);
    assert_int_equal(total, 2);
    assert_int_equal(
        store_project_update(fx->db, fx->a, p.id, "Team B", "desc", NULL, NULL),
        TR_OK);
    assert_int_equal(store_project_get(fx->db, fx->a, p.id, &got, NULL), TR_OK);
    assert_string_equal(got.name, "Team B");
    assert_string_equal(got.description, "desc");
    assert_int_equal(store_project_default(fx->db, fx->a, "o", &def, NULL),
                     TR_OK);
    assert_int_equal(store_project_update(fx->db, fx->a, p.id,
                                          "Default Project", NULL, NULL, NULL),
                     TR_ERR_INVALID);
    /* refusals: the default project, a project with a workspace */
    assert_int_equal(store_project_delete(fx->db, fx->a, def.id, NULL),
                     TR_ERR_CONFLICT);
    struct st_workspace in = {.org = "o", .name = "inp", .project_id = p.id};
    struct st_workspace w;
    assert_int_equal(store_ws_create(fx->db, fx->a, &in, &w, NULL), TR_OK);
    assert_int_equal(store_project_get(fx->db, fx->a, p.id, &got, NULL), TR_OK);
    assert_int_equal(got.workspace_count, 1);
    assert_int_equal(store_project_delete(fx->db, fx->a, p.id, NULL),
                     TR_ERR_CONFLICT);
    assert_int_equal(store_ws_delete(fx->db, fx->a, w.id, false, NULL), TR_OK);
    assert_int_equal(store_project_delete(fx->db, fx->a, p.id, NULL), TR_OK);
    assert_int_equal(store_project_delete(fx->db, fx->a, p.id, NULL),
                     TR_ERR_NOT_FOUND);
    assert_int_equal(
        store_project_update(fx->db, fx->a, p.id, "x", NULL, NULL, NULL),
        TR_ERR_NOT_FOUND);
}

static void test_tags(void **state)
{
    struct fx *fx = fixture(state);
    const char *t1[] = {"t0", "t1", "t2"};
    struct st_workspace a = mkws(fx, "o", "ta", t1, 3);
    struct st_workspace b = mkws(fx, "o", "tb", NULL, 0);
    struct st_workspace other = mkws(fx, "p", "tp", t1, 1);
    struct st_tag *tags = NULL, got;
    int n = 0;
    int64_t total = 0;
    assert_int_equal(store_tag_list(fx->db, fx->a, "o", NULL, NULL, 0, 10,
                                    &tags, &n, &total, NULL),
                     TR_OK);
    assert_int_equal(n, 3);
    assert_string_equal(tags[0].name, "t0");
    assert_int_equal(tags[0].instance_count, 1);
    const char *t0 = tags[0].id, *t2 = tags[2].id;
    assert_int_equal(store_tag_get(fx->db, fx->a, t0, &got, NULL), TR_OK);
    assert_string_equal(got.org, "o");
    assert_int_equal(store_tag_list(fx->db, fx->a, "o", "1", NULL, 0, 10, &tags,
                                    &n, &total, NULL),
                     TR_OK);
    assert_int_equal(n, 1);
    assert_int_equal(store_tag_list(fx->db, fx->a, "o", NULL, a.id, 0, 10,
                                    &tags, &n, &total, NULL),
                     TR_OK);
    assert_int_equal(n, 0);
    /* add by name and id; an unknown or foreign id changes nothing */
    struct st_tag_ref refs[] = {{.name = "new"}, {.id = t0}};
    assert_int_equal(store_ws_tag_add(fx->db, fx->a, b.id, refs, 2, NULL),
                     TR_OK);
    assert_int_equal(store_ws_tag_list(fx->db, fx->a, b.id, NULL, 0, 10, &tags,
                                       &n, &total, NULL),
                     TR_OK);
    assert_int_equal(total, 2);
    struct st_tag *ptags = NULL;
    assert_int_equal(store_tag_list(fx->db, fx->a, "p", NULL, NULL, 0, 10,
                                    &ptags, &n, &total, NULL),
                     TR_OK);
    struct st_tag_ref bad[] = {{.name = "more"}, {.id = ptags[0].id}};
    assert_int_equal(store_ws_tag_add(fx->db, fx->a, b.id, bad, 2, NULL),
                     TR_ERR_NOT_FOUND);
    assert_int_equal(store_ws_tag_list(fx->db, fx->a, b.id, NULL, 0, 10, &tags,
                                       &n, &total, NULL),
                     TR_OK);
    assert_int_equal(total, 2);
    assert_int_equal(count(fx, "SELECT count(*) AS n FROM tags WHERE"
                               " name = 'more'"),
                     0);
    /* remove: unknown names are ignored */
    struct st_tag_ref rm[] = {{.name = "new"}, {.name = "Nope"}};
    assert_int_equal(store_ws_tag_remove(fx->db, fx->a, b.id, rm, 2, NULL),
                     TR_OK);
    assert_int_equal(store_ws_tag_list(fx->db, fx->a, b.id, NULL, 0, 10, &tags,
                                       &n, &total, NULL),
                     TR_OK);
    assert_int_equal(total, 1);
    /* tag workspaces from the tag: all of the organization, or none */
    const char *wss[] = {b.id, other.id};
    assert_int_equal(
        store_tag_add_workspaces(fx->db, fx->a, "o", t2, wss, 2, NULL),
        TR_ERR_NOT_FOUND);
    assert_int_equal(
        store_tag_add_workspaces(fx->db, fx->a, "o", t2, wss, 1, NULL), TR_OK);
    assert_int_equal(store_tag_get(fx->db, fx->a, t2, &got, NULL), TR_OK);
    assert_int_equal(got.instance_count, 2);
    /* delete: all or nothing */
    const char *del[] = {t0, "tag-nope"};
    assert_int_equal(store_tag_delete(fx->db, fx->a, "o", del, 2, NULL),
                     TR_ERR_NOT_FOUND);
    assert_int_equal(store_tag_delete(fx->db, fx->a, "p", del, 1, NULL),
                     TR_ERR_NOT_FOUND);
    assert_int_equal(store_tag_delete(fx->db, fx->a, "o", del, 1, NULL), TR_OK);
    assert_int_equal(store_ws_get(fx->db, fx->a, a.id, &a, NULL), TR_OK);
    assert_int_equal(a.ntags, 2);
    assert_int_equal(store_ws_get(fx->db, fx->a, b.id, &b, NULL), TR_OK);
    assert_int_equal(b.ntags, 1);
    assert_string_equal(b.tag_names[0], "t2");
}

/* Every statement of create and update fails once in turn; each failure
 * leaves nothing behind and a later clean run succeeds. */
static void test_fault_walk(void **state)
{
    struct fx *fx = fixture(state);
    const char *rows = "SELECT (SELECT count(*) FROM workspaces) * 10000 +"
                       " (SELECT count(*) FROM tags) * 100 +"
                       " (SELECT count(*) FROM workspace_tags) AS n";
    const char *tags[] = {"f1", "f2"};
    int64_t before = count(fx, rows);
    int n = 1;
    for (;; n++) {
        struct st_workspace in = {.org = "o",
                                  .name = "fw",
                                  .tag_names = tags,
                                  .ntags = 2},
                            out;
        fault_arm("db.query", n);
        tr_err e = store_ws_create(fx->db, fx->a, &in, &out, NULL);
        bool fired = fault_fired();
        fault_reset();
        if (!fired) {
            assert_int_equal(e, TR_OK);
            break;
        }
        assert_int_not_equal(e, TR_OK);
        assert_int_equal(count(fx, rows), before);
        assert_true(n < 100);
    }
    assert_true(n > 4);
    struct st_workspace w;
    assert_int_equal(store_ws_get_by_name(fx->db, fx->a, "o", "fw", &w, NULL),
                     TR_OK);
    const char *newtags[] = {"f3"};
    before = count(fx, rows);
    for (n = 1;; n++) {
        struct st_ws_update u = {.name = "fw2",
                                 .auto_apply = 1,
                                 .settings_patch = "{\"queue-all-runs\":true}",
                                 .set_tags = true,
                                 .tag_names = newtags,
                                 .ntags = 1};
        fault_arm("db.query", n);
        tr_err e = store_ws_update(fx->db, fx->a, w.id, &u, NULL, NULL);
        bool fired = fault_fired();
        fault_reset();
        if (!fired) {
            assert_int_equal(e, TR_OK);
            break;
        }
        assert_int_not_equal(e, TR_OK);
        struct st_workspace now;
        assert_int_equal(store_ws_get(fx->db, fx->a, w.id, &now, NULL), TR_OK);
        assert_string_equal(now.name, "fw");
        assert_false(now.auto_apply);
        assert_int_equal(now.ntags, 2);
        assert_true(n < 100);
    }
    /* and the lock: a failed lock leaves the workspace unlocked */
    for (n = 1;; n++) {
        fault_arm("db.query", n);
        tr_err e =
            store_ws_lock(fx->db, fx->a, w.id, "user", "u", NULL, NULL, NULL);
        bool fired = fault_fired();
        fault_reset();
        struct st_workspace now;
        assert_int_equal(store_ws_get(fx->db, fx->a, w.id, &now, NULL), TR_OK);
        if (!fired) {
            assert_int_equal(e, TR_OK);
            assert_true(now.locked);
            break;
        }
        assert_int_not_equal(e, TR_OK);
        assert_false(now.locked);
        assert_true(n < 100);
    }
}

/* "k=v,k=v" of a binding list, in the test arena. */
static const char *tb_text(struct fx *fx, const struct st_tag_binding *b, int n)
{
    const char *s = "";
    for (int i = 0; i < n; i++)
        s = arena_printf(fx->a, "%s%s%s=%s%s", s, i ? "," : "", b[i].key,
                         b[i].value, b[i].inherited_from ? "^" : "");
    return s;
}

static void test_tag_bindings(void **state)
{
    struct fx *fx = fixture(state);
    struct st_project prj;
    struct st_tag_binding pb[] = {{.key = "env", .value = "dev"},
                                  {.key = "cost", .value = "42"}};
    struct st_tb_list pl = {pb, 2};
    assert_int_equal(store_project_create(fx->db, fx->a, "o", "Tagged", NULL,
                                          &pl, &prj, NULL),
                     TR_OK);
    struct st_tag_binding wb[] = {{.key = "env", .value = "prod"},
                                  {.key = "app", .value = ""}};
    struct st_workspace in = {.org = "o",
                              .name = "tb",
                              .project_id = prj.id,
                              .bindings = wb,
                              .nbindings = 2},
                        w;
    assert_int_equal(store_ws_create(fx->db, fx->a, &in, &w, NULL), TR_OK);
    struct st_tag_binding *got = NULL;
    int n = 0;
    assert_int_equal(
        store_tb_list(fx->db, fx->a, ST_TB_WORKSPACE, w.id, &got, &n, NULL),
        TR_OK);
    assert_string_equal(tb_text(fx, got, n), "app=,env=prod");
    /* the workspace's own env wins; cost is inherited */
    assert_int_equal(store_tb_effective(fx->db, fx->a, w.id, &got, &n, NULL),
                     TR_OK);
    assert_string_equal(tb_text(fx, got, n), "app=,cost=42^,env=prod");
    for (int i = 0; i < n; i++)
        if (got[i].inherited_from != NULL)
            assert_string_equal(got[i].inherited_from, prj.id);
    /* add: new keys and new values; the rest stays */
    struct st_tag_binding add[] = {{.key = "app", .value = "web"},
                                   {.key = "tier", .value = "1"}};
    assert_int_equal(store_tb_set(fx->db, fx->a, ST_TB_WORKSPACE, w.id, add, 2,
                                  false, &got, &n, NULL),
                     TR_OK);
    assert_string_equal(tb_text(fx, got, n), "app=web,env=prod,tier=1");
    /* over the limit: refused, nothing changed */
    struct st_tag_binding many[ST_TB_MAX];
    for (int i = 0; i < ST_TB_MAX; i++)
        many[i] = (struct st_tag_binding){.key = arena_printf(fx->a, "m%d", i),
                                          .value = "x"};
    struct tr_errbuf eb = {{0}};
    assert_int_equal(store_tb_set(fx->db, fx->a, ST_TB_WORKSPACE, w.id, many,
                                  ST_TB_MAX, false, NULL, NULL, &eb),
                     TR_ERR_INVALID);
    assert_non_null(strstr(eb.msg, "at most 10"));
    assert_int_equal(
        store_tb_list(fx->db, fx->a, ST_TB_WORKSPACE, w.id, &got, &n, NULL),
        TR_OK);
    assert_int_equal(n, 3);
    /* replacing with exactly ST_TB_MAX fits */
    assert_int_equal(store_tb_set(fx->db, fx->a, ST_TB_WORKSPACE, w.id, many,
                                  ST_TB_MAX, true, NULL, NULL, NULL),
                     TR_OK);
    assert_int_equal(count(fx, "SELECT count(*) AS n FROM tag_bindings"),
                     ST_TB_MAX + 2);
    assert_int_equal(store_tb_set(fx->db, fx->a, ST_TB_PROJECT, "prj-nope", add,
                                  1, false, NULL, NULL, NULL),
                     TR_ERR_NOT_FOUND);
    /* a failing statement anywhere in a replace leaves the old ones */
    for (int k = 1;; k++) {
        fault_arm("db.query", k);
        tr_err e = store_tb_set(fx->db, fx->a, ST_TB_WORKSPACE, w.id, add, 2,
                                true, NULL, NULL, NULL);
        bool fired = fault_fired();
        fault_reset();
        assert_int_equal(
            store_tb_list(fx->db, fx->a, ST_TB_WORKSPACE, w.id, &got, &n, NULL),
            TR_OK);
        if (!fired) {
            assert_int_equal(e, TR_OK);
            assert_string_equal(tb_text(fx, got, n), "app=web,tier=1");
            break;
        }
        assert_int_not_equal(e, TR_OK);
        assert_int_equal(n, ST_TB_MAX);
        assert_true(k < 50);
    }
    /* deleting the workspace, then the project, deletes their bindings */
    assert_int_equal(store_ws_delete(fx->db, fx->a, w.id, false, NULL), TR_OK);
    assert_int_equal(store_project_delete(fx->db, fx->a, prj.id, NULL), TR_OK);
    assert_int_equal(count(fx, "SELECT count(*) AS n FROM tag_bindings"), 0);
}

#define BOTH(f)                                                                \
    {"sqlite/" #f, f, setup, teardown, (void *)&k_sqlite},                     \
    {                                                                          \
        "pg/" #f, f, setup, teardown, (void *)&k_pg                            \
    }

int main(void)
{
    const struct CMUnitTest tests[] = {
        BOTH(test_create_get), BOTH(test_update),
        BOTH(test_list),       BOTH(test_lock_state_machine),
        BOTH(test_lock_race),  BOTH(test_delete_and_safe_delete),
        BOTH(test_projects),   BOTH(test_tags),
        BOTH(test_fault_walk), BOTH(test_tag_bindings),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
