/*
 * test_store_state.c - unit tests for src/store/store_state.c: the
 * successor rule, creating finalized and pending versions, finalizing,
 * the lock requirement, outputs, JSON state, pending bookkeeping, and a
 * fault-injection walk proving a failed write changes nothing.
 *
 * Every test runs on SQLite in a fresh temporary directory, and on
 * PostgreSQL in a fresh database when TERRACE_TEST_PG_URL is set
 * (otherwise the PostgreSQL runs call skip()).
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

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

#define WS "ws-test1"
#define WS2 "ws-test2"
#define HOLDER "user-holder"

static const char *const fixtures[] = {
    "INSERT INTO organizations (name, id, email, created_at)"
    " VALUES ('o', 'org-1', 'o@x', 'now')",
    "INSERT INTO projects (id, org, name, is_default, created_at)"
    " VALUES ('prj-1', 'o', 'Default Project', 1, 'now')",
    "INSERT INTO workspaces (id, org, name, project_id, created_at,"
    " updated_at, locked, lock_kind, lock_holder)"
    " VALUES ('" WS "', 'o', 'w1', 'prj-1', 'now', 'now', 1, 'user', '" HOLDER
    "')",
    "INSERT INTO workspaces (id, org, name, project_id, created_at,"
    " updated_at) VALUES ('" WS2 "', 'o', 'w2', 'prj-1', 'now', 'now')",
};

static int setup(void **state)
{
    const enum db_kind *kind = *state;
    struct fx *fx = calloc(1, sizeof(*fx));
    *state = fx;
    int rc = ut_store_open(&fx->st, *kind, 2, "test_store_state");
    if (rc != 0)
        return rc > 0 ? 0 : -1; /* 1: the test skips */
    fx->db = fx->st.db;
    fx->a = arena_new();
    return ut_run_sql(fx->db, fx->a, fixtures,
                      sizeof(fixtures) / sizeof(fixtures[0]));
}

static int teardown(void **state)
{
    struct fx *fx = *state;
    fault_reset();
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

static const char *current_of(struct fx *fx, const char *ws)
{
    struct st_sv cur;
    if (store_sv_current(fx->db, fx->a, ws, &cur, NULL) != TR_OK)
        return NULL;
    return cur.id;
}

/* A version of WS with serial, lineage "L" and md5 derived from tag. */
static struct st_sv mk(struct fx *fx, int64_t serial, const char *md5,
                       const char *status)
{
    const char *id = util_new_id(fx->a, "sv");
    return (struct st_sv){
        .id = id,
        .workspace_id = WS,
        .serial = serial,
        .lineage = "L",
        .md5 = md5,
        .sha256 = "s",
        .size = 10,
        .status = status,
        .blob_key = arena_printf(fx->a, "state/%s/%s.tfstate", WS, id),
        .created_by = "user-1",
        .terraform_version = "1.6.0",
        .resources = "[{\"name\":\"a\"}]",
    };
}

static const struct st_sv_output outs2[] = {
    {.name = "b",
     .sensitive = true,
     .type = "string",
     .detailed_type = "\"string\"",
     .value = "\"secret\""},
    {.name = "a",
     .type = "number",
     .detailed_type = "\"number\"",
     .value = "5"},
};

static tr_err create(struct fx *fx, struct st_sv *sv, int skip)
{
    return store_sv_create(fx->db, fx->a, sv, outs2, 2, skip, "user", HOLDER,
                           sv, NULL);
}

static void test_successor_rule(void **state)
{
    (void)state;
    struct st_sv cur = {.serial = 5, .lineage = "L", .md5 = "m"};
    struct tr_errbuf eb = {{0}};
    assert_int_equal(store_sv_successor(NULL, 0, "x", "y", 0, NULL), TR_OK);
    assert_int_equal(store_sv_successor(&cur, 6, "L", "z", 0, NULL), TR_OK);
    assert_int_equal(store_sv_successor(&cur, 5, "L", "m", 0, NULL), TR_OK);
    assert_int_equal(store_sv_successor(&cur, 5, "L", "z", 0, &eb),
                     TR_ERR_CONFLICT);
    assert_non_null(strstr(eb.msg, "serial 5"));
    assert_int_equal(store_sv_successor(&cur, 4, "L", "m", 0, &eb),
                     TR_ERR_CONFLICT);
    assert_non_null(strstr(eb.msg, "lower"));
    assert_int_equal(store_sv_successor(&cur, 9, "K", "m", 0, &eb),
                     TR_ERR_CONFLICT);
    assert_non_null(strstr(eb.msg, "lineage"));
    /* unknown lineage on either side is not checked */
    assert_int_equal(store_sv_successor(&cur, 9, "", "m", 0, NULL), TR_OK);
    struct st_sv nolin = {.serial = 5, .lineage = "", .md5 = "m"};
    assert_int_equal(store_sv_successor(&nolin, 9, "K", "m", 0, NULL), TR_OK);
    /* skips */
    assert_int_equal(
        store_sv_successor(&cur, 9, "K", "m", SV_SKIP_LINEAGE, NULL), TR_OK);
    assert_int_equal(
        store_sv_successor(&cur, 1, "L", "m", SV_SKIP_SERIAL, NULL), TR_OK);
    assert_int_equal(
        store_sv_successor(&cur, 4, "L", "m", SV_SKIP_LINEAGE, NULL),
        TR_ERR_CONFLICT);
    assert_int_equal(store_sv_successor(&cur, 0, "K", "q", SV_FORCE, NULL),
                     TR_OK);
}

static void test_create_finalized(void **state)
{
    struct fx *fx = fixture(state);
    assert_null(current_of(fx, WS));
    struct st_sv a = mk(fx, 1, "m1", "finalized");
    assert_int_equal(create(fx, &a, 0), TR_OK);
    assert_string_equal(a.status, "finalized");
    assert_int_equal(a.seq, 1);
    assert_string_equal(current_of(fx, WS), a.id);
    struct st_sv b = mk(fx, 2, "m2", "finalized");
    assert_int_equal(create(fx, &b, 0), TR_OK);
    assert_int_equal(b.seq, 2);
    assert_string_equal(current_of(fx, WS), b.id);

    struct st_sv got;
    assert_int_equal(store_sv_get(fx->db, fx->a, a.id, &got, NULL), TR_OK);
    assert_int_equal(got.serial, 1);
    assert_string_equal(got.lineage, "L");
    assert_string_equal(got.md5, "m1");
    assert_string_equal(got.terraform_version, "1.6.0");
    assert_string_equal(got.created_by, "user-1");
    assert_null(got.json_blob_key);
    assert_null(got.run_id);
    assert_false(got.force);

    struct st_sv *list = NULL;
    int n = 0;
    int64_t total = 0;
    assert_int_equal(
        store_sv_list(fx->db, fx->a, WS, 0, 10, &list, &n, &total, NULL),
        TR_OK);
    assert_int_equal(n, 2);
    assert_int_equal(total, 2);
    assert_string_equal(list[0].id, b.id); /* newest first */
    assert_int_equal(
        store_sv_list(fx->db, fx->a, WS, 1, 10, &list, &n, &total, NULL),
        TR_OK);
    assert_int_equal(n, 1);
    assert_string_equal(list[0].id, a.id);

    /* outputs in name order, paginated */
    struct st_sv_output *o = NULL;
    assert_int_equal(
        store_sv_outputs(fx->db, fx->a, a.id, 0, -1, &o, &n, &total, NULL),
        TR_OK);
    assert_int_equal(n, 2);
    assert_string_equal(o[0].name, "a");
    assert_string_equal(o[0].value, "5");
    assert_false(o[0].sensitive);
    assert_true(o[1].sensitive);
    assert_string_equal(o[1].detailed_type, "\"string\"");
    assert_int_equal(
        store_sv_outputs(fx->db, fx->a, a.id, 1, 1, &o, &n, &total, NULL),
        TR_OK);
    assert_int_equal(n, 1);
    assert_int_equal(total, 2);
    assert_string_equal(o[0].name, "b");
    struct st_sv_output one;
    assert_int_equal(store_sv_output_get(fx->db, fx->a, o[0].id, &one, NULL),
                     TR_OK);
    assert_string_equal(one.sv_id, a.id);
    assert_string_equal(one.value, "\"secret\"");
    assert_int_equal(
        store_sv_output_get(fx->db, fx->a, "wsout-nope", &one, NULL),
        TR_ERR_NOT_FOUND);
    assert_int_equal(store_sv_get(fx->db, fx->a, "sv-nope", &got, NULL),
                     TR_ERR_NOT_FOUND);
}

static void test_rule_rejections_change_nothing(void **state)
{
    struct fx *fx = fixture(state);
    struct st_sv a = mk(fx, 5, "m5", "finalized");
    assert_int_equal(create(fx, &a, 0), TR_OK);
    struct {
        int64_t serial;
        const char *lineage, *md5;
    } bad[] = {{4, "L", "m4"}, {5, "L", "other"}, {6, "K", "m6"}};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct st_sv b = mk(fx, bad[i].serial, bad[i].md5, "finalized");
        b.lineage = bad[i].lineage;
        struct tr_errbuf eb = {{0}};
        assert_int_equal(store_sv_check(fx->db, fx->a, WS, b.serial, b.lineage,
                                        b.md5, 0, &eb),
                         TR_ERR_CONFLICT);
        assert_int_equal(store_sv_create(fx->db, fx->a, &b, outs2, 2, 0, "user",
                                         HOLDER, NULL, &eb),
                         TR_ERR_CONFLICT);
        assert_string_equal(current_of(fx, WS), a.id);
        assert_int_equal(count(fx, "SELECT count(*) AS n FROM"
                                   " state_versions"),
                         1);
        assert_int_equal(count(fx, "SELECT count(*) AS n FROM"
                                   " state_version_outputs"),
                         2);
    }
    /* a retried upload (same serial, same md5) is accepted */
    struct st_sv same = mk(fx, 5, "m5", "finalized");
    assert_int_equal(create(fx, &same, 0), TR_OK);
    assert_string_equal(current_of(fx, WS), same.id);
    /* force replaces anything */
    struct st_sv forced = mk(fx, 1, "mx", "finalized");
    forced.lineage = "K";
    assert_int_equal(create(fx, &forced, SV_FORCE), TR_OK);
    assert_string_equal(current_of(fx, WS), forced.id);
}

static void test_lock_required(void **state)
{
    struct fx *fx = fixture(state);
    struct tr_errbuf eb = {{0}};
    struct st_sv a = mk(fx, 1, "m1", "finalized");
    assert_int_equal(store_sv_create(fx->db, fx->a, &a, NULL, 0, 0, "user",
                                     "user-other", NULL, &eb),
                     TR_ERR_CONFLICT);
    assert_non_null(strstr(eb.msg, "locked"));
    assert_int_equal(store_sv_create(fx->db, fx->a, &a, NULL, 0, 0, "org",
                                     HOLDER, NULL, &eb),
                     TR_ERR_CONFLICT);
    struct st_sv b = mk(fx, 1, "m1", "finalized");
    b.workspace_id = WS2; /* not locked at all */
    assert_int_equal(store_sv_create(fx->db, fx->a, &b, NULL, 0, 0, "user",
                                     HOLDER, NULL, &eb),
                     TR_ERR_CONFLICT);
    assert_null(current_of(fx, WS));
    assert_null(current_of(fx, WS2));
    assert_int_equal(count(fx, "SELECT count(*) AS n FROM state_versions"), 0);
    /* no requirement (kind NULL): allowed */
    assert_int_equal(
        store_sv_create(fx->db, fx->a, &b, NULL, 0, 0, NULL, NULL, &b, NULL),
        TR_OK);
    assert_string_equal(current_of(fx, WS2), b.id);
    /* unknown workspace */
    struct st_sv c = mk(fx, 1, "m1", "finalized");
    c.workspace_id = "ws-nope";
    assert_int_equal(
        store_sv_create(fx->db, fx->a, &c, NULL, 0, 0, NULL, NULL, NULL, NULL),
        TR_ERR_NOT_FOUND);
    assert_int_equal(store_sv_current(fx->db, fx->a, "ws-nope", &c, NULL),
                     TR_ERR_NOT_FOUND);
}

static void test_pending_finalize(void **state)
{
    struct fx *fx = fixture(state);
    struct tr_errbuf eb = {{0}};
    struct st_sv old = mk(fx, 3, "m3", "finalized");
    assert_int_equal(create(fx, &old, 0), TR_OK);

    struct st_sv p = mk(fx, 4, "m4", "pending");
    p.lineage = "";
    assert_int_equal(store_sv_create(fx->db, fx->a, &p, NULL, 0, 0, "user",
                                     HOLDER, &p, NULL),
                     TR_OK);
    assert_string_equal(p.status, "pending");
    assert_string_equal(p.lineage, "");
    assert_string_equal(current_of(fx, WS), old.id); /* never current */
    bool pending = false;
    assert_int_equal(store_sv_has_pending(fx->db, fx->a, WS, &pending, NULL),
                     TR_OK);
    assert_true(pending);

    /* an inline version finalized meanwhile moves seq on */
    struct st_sv mid = mk(fx, 3, "m3", "finalized");
    assert_int_equal(create(fx, &mid, 0), TR_OK);
    /* ...and discarded the pending one */
    struct st_sv got;
    assert_int_equal(store_sv_get(fx->db, fx->a, p.id, &got, NULL), TR_OK);
    assert_string_equal(got.status, "discarded");
    struct st_sv fin = {.size = 99,
                        .sha256 = "sha",
                        .lineage = "L",
                        .terraform_version = "1.7.0",
                        .resources = "[1,2]"};
    assert_int_equal(
        store_sv_finalize(fx->db, fx->a, p.id, &fin, outs2, 2, NULL, &eb),
        TR_ERR_CONFLICT);
    assert_string_equal(current_of(fx, WS), mid.id);

    /* a fresh pending one finalizes, takes the file's lineage and the
     * next seq, and becomes current */
    struct st_sv q = mk(fx, 4, "m4", "pending");
    q.lineage = "";
    assert_int_equal(store_sv_create(fx->db, fx->a, &q, NULL, 0, 0, "user",
                                     HOLDER, &q, NULL),
                     TR_OK);
    int64_t pending_seq = q.seq;
    struct st_sv later = mk(fx, 1, "m1", "pending");
    assert_int_equal(store_sv_create(fx->db, fx->a, &later, NULL, 0, 0, "user",
                                     HOLDER, NULL, NULL),
                     TR_OK);
    assert_int_equal(
        store_sv_finalize(fx->db, fx->a, q.id, &fin, outs2, 2, &got, NULL),
        TR_OK);
    assert_string_equal(got.status, "finalized");
    assert_string_equal(got.lineage, "L");
    assert_string_equal(got.sha256, "sha");
    assert_int_equal(got.size, 99);
    assert_string_equal(got.terraform_version, "1.7.0");
    assert_string_equal(got.resources, "[1,2]");
    assert_true(got.seq > pending_seq);
    assert_string_equal(current_of(fx, WS), q.id);
    assert_int_equal(count(fx, "SELECT count(*) AS n FROM"
                               " state_versions WHERE status = 'pending'"),
                     0);
    /* finalizing twice is a conflict */
    assert_int_equal(
        store_sv_finalize(fx->db, fx->a, q.id, &fin, outs2, 2, NULL, &eb),
        TR_ERR_CONFLICT);
    assert_int_equal(
        store_sv_finalize(fx->db, fx->a, "sv-nope", &fin, NULL, 0, NULL, &eb),
        TR_ERR_NOT_FOUND);
}

static void test_pending_rules_at_finalize(void **state)
{
    struct fx *fx = fixture(state);
    struct tr_errbuf eb = {{0}};
    struct st_sv cur = mk(fx, 10, "m10", "finalized");
    assert_int_equal(create(fx, &cur, 0), TR_OK);
    struct st_sv fin = {.size = 1, .sha256 = "s", .lineage = "K"};

    /* file lineage K differs from current L: rejected, still pending */
    struct st_sv p = mk(fx, 11, "m11", "pending");
    p.lineage = "";
    assert_int_equal(store_sv_create(fx->db, fx->a, &p, NULL, 0, 0, "user",
                                     HOLDER, NULL, NULL),
                     TR_OK);
    assert_int_equal(
        store_sv_finalize(fx->db, fx->a, p.id, &fin, NULL, 0, NULL, &eb),
        TR_ERR_CONFLICT);
    struct st_sv got;
    assert_int_equal(store_sv_get(fx->db, fx->a, p.id, &got, NULL), TR_OK);
    assert_string_equal(got.status, "pending");
    assert_string_equal(got.lineage, "");
    assert_string_equal(current_of(fx, WS), cur.id);

    /* created with force: finalized despite lineage and serial */
    struct st_sv f = mk(fx, 2, "m2", "pending");
    f.force = true;
    assert_int_equal(store_sv_create(fx->db, fx->a, &f, NULL, 0, 0, "user",
                                     HOLDER, NULL, NULL),
                     TR_OK);
    assert_int_equal(store_sv_get(fx->db, fx->a, f.id, &got, NULL), TR_OK);
    assert_true(got.force);
    assert_int_equal(
        store_sv_finalize(fx->db, fx->a, f.id, &fin, NULL, 0, NULL, NULL),
        TR_OK);
    assert_string_equal(current_of(fx, WS), f.id);
}

static void test_json_and_discard(void **state)
{
    struct fx *fx = fixture(state);
    struct tr_errbuf eb = {{0}};
    struct st_sv p = mk(fx, 1, "m1", "pending");
    assert_int_equal(store_sv_create(fx->db, fx->a, &p, NULL, 0, 0, "user",
                                     HOLDER, NULL, NULL),
                     TR_OK);
    assert_int_equal(store_sv_set_json(fx->db, fx->a, p.id, "k1", NULL), TR_OK);
    assert_int_equal(store_sv_set_json(fx->db, fx->a, p.id, "k2", &eb),
                     TR_ERR_CONFLICT);
    struct st_sv got;
    assert_int_equal(store_sv_get(fx->db, fx->a, p.id, &got, NULL), TR_OK);
    assert_string_equal(got.json_blob_key, "k1");

    struct st_sv q = mk(fx, 1, "m1", "pending");
    assert_int_equal(store_sv_create(fx->db, fx->a, &q, NULL, 0, 0, "user",
                                     HOLDER, NULL, NULL),
                     TR_OK);
    assert_int_equal(store_sv_discard_pending(fx->db, fx->a, WS, NULL), TR_OK);
    bool pending = true;
    assert_int_equal(store_sv_has_pending(fx->db, fx->a, WS, &pending, NULL),
                     TR_OK);
    assert_false(pending);
    assert_int_equal(store_sv_set_json(fx->db, fx->a, q.id, "k3", &eb),
                     TR_ERR_CONFLICT);
    struct st_sv fin = {.size = 1, .sha256 = "s", .lineage = "L"};
    assert_int_equal(
        store_sv_finalize(fx->db, fx->a, q.id, &fin, NULL, 0, NULL, &eb),
        TR_ERR_CONFLICT);
    assert_null(current_of(fx, WS));
}

/* Every failing statement of a create or finalize leaves the store as it
 * was: same current version, same rows. */
static void test_fault_walk(void **state)
{
    struct fx *fx = fixture(state);
    struct st_sv base = mk(fx, 1, "m1", "finalized");
    assert_int_equal(create(fx, &base, 0), TR_OK);
    const char *rows = "SELECT (SELECT count(*) FROM state_versions) * 1000 +"
                       " (SELECT count(*) FROM state_version_outputs) AS n";
    int64_t before = count(fx, rows);
    int n = 1;
    for (;; n++) {
        struct st_sv b = mk(fx, 2, "m2", "finalized");
        fault_arm("db.query", n);
        tr_err e = create(fx, &b, 0);
        bool fired = fault_fired();
        fault_reset();
        if (!fired) {
            assert_int_equal(e, TR_OK);
            assert_string_equal(current_of(fx, WS), b.id);
            break;
        }
        assert_int_not_equal(e, TR_OK);
        assert_string_equal(current_of(fx, WS), base.id);
        assert_int_equal(count(fx, rows), before);
        assert_true(n < 100);
    }
    assert_true(n > 3);

    /* the same for finalizing a pending version */
    struct st_sv p = mk(fx, 3, "m3", "pending");
    assert_int_equal(store_sv_create(fx->db, fx->a, &p, NULL, 0, 0, "user",
                                     HOLDER, NULL, NULL),
                     TR_OK);
    const char *cur = current_of(fx, WS);
    before = count(fx, rows);
    struct st_sv fin = {.size = 1, .sha256 = "s", .lineage = "L"};
    for (n = 1;; n++) {
        fault_arm("db.query", n);
        tr_err e =
            store_sv_finalize(fx->db, fx->a, p.id, &fin, outs2, 2, NULL, NULL);
        bool fired = fault_fired();
        fault_reset();
        if (!fired) {
            assert_int_equal(e, TR_OK);
            assert_string_equal(current_of(fx, WS), p.id);
            break;
        }
        assert_int_not_equal(e, TR_OK);
        assert_string_equal(current_of(fx, WS), cur);
        assert_int_equal(count(fx, rows), before);
        struct st_sv got;
        assert_int_equal(store_sv_get(fx->db, fx->a, p.id, &got, NULL), TR_OK);
        assert_string_equal(got.status, "pending");
        assert_true(n < 100);
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
        cmocka_unit_test(test_successor_rule),
        BOTH(test_create_finalized),
        BOTH(test_rule_rejections_change_nothing),
        BOTH(test_lock_required),
        BOTH(test_pending_finalize),
        BOTH(test_pending_rules_at_finalize),
        BOTH(test_json_and_discard),
        BOTH(test_fault_walk),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
