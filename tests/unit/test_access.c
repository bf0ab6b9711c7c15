/*
 * test_access.c - unit tests for src/domain/access.c and the store it
 * reads (store_teams.c, store_team_access.c) on both backends: what each
 * access level gives, how grants from several teams add up, owners,
 * plain members, team tokens, organization tokens, site admins and
 * strangers, the owners team's rules, and migration 19 making existing
 * members owners.
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

#include "domain/access.h"
#include "store/store.h"
#include "unit_util.h"

struct fx {
    struct ut_store st;
    struct db *db;
    struct arena *a;
    struct st_user owner, member;
    struct st_workspace ws;
};

static const enum db_kind k_sqlite = DB_SQLITE;
static const enum db_kind k_pg = DB_PG;

/* Makes user_id (address email) an active member of org: invited, then
 * accepted, as the API does. */
static tr_err add_member(struct fx *fx, const char *org, const char *email,
                         const char *user_id, struct tr_errbuf *eb)
{
    struct st_membership m;
    tr_err e = store_membership_invite(fx->db, fx->a, org, email, &m, eb);
    if (e == TR_OK)
        e = store_membership_accept(fx->db, fx->a, m.id, user_id, eb);
    return e;
}

/* Removes user_id's membership of org. */
static tr_err remove_member(struct fx *fx, const char *org, const char *user_id,
                            struct tr_errbuf *eb)
{
    struct st_membership_filter f = {.org = org, .user_id = user_id};
    struct st_membership *ms = NULL;
    int n = 0;
    int64_t total = 0;
    tr_err e =
        store_membership_list(fx->db, fx->a, &f, 0, 1, &ms, &n, &total, eb);
    if (e == TR_OK && n == 0)
        e = TR_ERR_NOT_FOUND;
    if (e == TR_OK)
        e = store_membership_delete(fx->db, fx->a, ms[0].id, eb);
    return e;
}

static int setup(void **state)
{
    const enum db_kind *kind = *state;
    struct fx *fx = calloc(1, sizeof(*fx));
    struct tr_errbuf eb = {{0}};
    *state = fx;
    int rc = ut_store_open(&fx->st, *kind, 2, "test_access");
    if (rc != 0)
        return rc > 0 ? 0 : -1;
    fx->db = fx->st.db;
    fx->a = arena_new();
    fx->ws = (struct st_workspace){.org = "o", .name = "w"};
    if (store_user_create(fx->db, fx->a, "own", "own@x", false, &fx->owner,
                          &eb) != TR_OK ||
        store_user_create(fx->db, fx->a, "mem", "mem@x", false, &fx->member,
                          &eb) != TR_OK ||
        store_org_create(fx->db, fx->a, "o", "o@x", NULL, fx->owner.id, NULL,
                         &eb) != TR_OK ||
        store_org_create(fx->db, fx->a, "p", "p@x", NULL, NULL, NULL, &eb) !=
            TR_OK ||
        add_member(fx, "o", "mem@x", fx->member.id, &eb) != TR_OK ||
        store_ws_create(fx->db, fx->a, &fx->ws, &fx->ws, &eb) != TR_OK) {
        fprintf(stderr, "setup: %s\n", eb.msg);
        return -1;
    }
    return 0;
}

static int teardown(void **state)
{
    struct fx *fx = *state;
    int rc = ut_store_close(&fx->st);
    if (fx->a != NULL)
        arena_destroy(fx->a);
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

static access_t ws_flags(struct fx *fx, const struct access_caller *who)
{
    access_t f = 0;
    assert_int_equal(access_ws(fx->db, fx->a, who, &fx->ws, false, &f, NULL),
                     TR_OK);
    return f;
}

static void test_levels(void **state)
{
    (void)state;
    access_t r = access_ws_level("read", NULL);
    assert_true(r & ACC_WS_SEE);
    assert_true(r & ACC_WS_STATE_READ);
    assert_false(r & ACC_WS_PLAN);
    access_t p = access_ws_level("plan", NULL);
    assert_true((p & r) == r && (p & ACC_WS_PLAN));
    assert_false(p & ACC_WS_APPLY);
    access_t w = access_ws_level("write", NULL);
    assert_true((w & p) == p);
    assert_true(w & ACC_WS_LOCK && w & ACC_WS_VARS_WRITE);
    assert_false(w & ACC_WS_ADMIN);
    access_t a = access_ws_level("admin", NULL);
    assert_true((a & w) == w && (a & ACC_WS_ADMIN) && (a & ACC_WS_DELETE));
    assert_int_equal(access_ws_level("owner", NULL), 0);
    assert_int_equal(access_ws_level(NULL, NULL), 0);
    access_t c =
        access_ws_level("custom", "{\"runs\":\"plan\",\"variables\":\"write\","
                                  "\"state-versions\":\"read-outputs\","
                                  "\"workspace-locking\":true}");
    assert_true(c & ACC_WS_PLAN && c & ACC_WS_VARS_WRITE && c & ACC_WS_LOCK);
    assert_true(c & ACC_WS_OUTPUTS);
    assert_false(c & ACC_WS_STATE_READ || c & ACC_WS_APPLY);
    /* bad JSON in a custom row gives the least: sight only */
    assert_int_equal(access_ws_level("custom", "{nope"), ACC_WS_SEE);

    access_t pr = access_prj_level("read", NULL);
    assert_true(pr & ACC_PRJ_SEE && pr & ACC_WS_SEE);
    assert_false(pr & ACC_PRJ_UPDATE || pr & ACC_WS_PLAN);
    access_t pm = access_prj_level("maintain", NULL);
    assert_true(pm & ACC_PRJ_WS_CREATE && pm & ACC_WS_ADMIN);
    assert_false(pm & ACC_PRJ_UPDATE);
    access_t pa = access_prj_level("admin", NULL);
    assert_true(pa & ACC_PRJ_DELETE && pa & ACC_PRJ_TEAMS_MANAGE);
    access_t pc = access_prj_level(
        "custom", "{\"project-access\":{\"settings\":\"update\","
                  "\"teams\":\"read\"},\"workspace-access\":"
                  "{\"runs\":\"apply\",\"create\":true}}");
    assert_true(pc & ACC_PRJ_UPDATE && pc & ACC_PRJ_TEAMS_READ);
    assert_true(pc & ACC_WS_APPLY && pc & ACC_PRJ_WS_CREATE);
    assert_false(pc & ACC_PRJ_DELETE || pc & ACC_PRJ_TEAMS_MANAGE);

    access_t o = access_org_level("{\"manage-workspaces\":true,"
                                  "\"manage-teams\":false}");
    assert_true(o & ACC_ORG_MANAGE_WS && o & ACC_ORG_READ_WS);
    assert_false(o & ACC_ORG_MANAGE_TEAMS || o & ACC_ORG_OWNER);
    assert_int_equal(access_org_level("{}"), 0);
}

static void test_callers(void **state)
{
    struct fx *fx = fixture(state);
    struct access_caller owner = {.kind = ACCESS_USER, .user_id = fx->owner.id};
    struct access_caller member = {.kind = ACCESS_USER,
                                   .user_id = fx->member.id};
    struct access_caller admin = {
        .kind = ACCESS_USER, .user_id = "user-x", .is_admin = true};
    struct access_caller stranger = {.kind = ACCESS_USER,
                                     .user_id = "user-nobody"};
    struct access_caller org_tok = {.kind = ACCESS_ORG, .org = "o"};
    struct access_caller other_tok = {.kind = ACCESS_ORG, .org = "p"};
    struct access_caller none = {.kind = ACCESS_NONE};
    assert_int_equal(ws_flags(fx, &owner), ACC_ALL);
    assert_int_equal(ws_flags(fx, &admin), ACC_ALL);
    assert_int_equal(ws_flags(fx, &org_tok), ACC_ALL);
    assert_int_equal(ws_flags(fx, &other_tok), 0);
    assert_int_equal(ws_flags(fx, &stranger), 0);
    assert_int_equal(ws_flags(fx, &none), 0);
    /* a plain member sees the organization, nothing inside it */
    assert_int_equal(ws_flags(fx, &member), ACC_ORG_SEE);
    access_t f = 0;
    assert_int_equal(access_org(fx->db, fx->a, &member, "o", &f, NULL), TR_OK);
    assert_int_equal(f, ACC_ORG_SEE);
    assert_int_equal(access_org(fx->db, fx->a, &member, "p", &f, NULL), TR_OK);
    assert_int_equal(f, 0);
}

static void test_teams_add_up(void **state)
{
    struct fx *fx = fixture(state);
    struct tr_errbuf eb = {{0}};
    struct st_team t1 = {.org = "o", .name = "readers"};
    struct st_team t2 = {.org = "o", .name = "lockers"};
    assert_int_equal(store_team_create(fx->db, fx->a, &t1, &eb), TR_OK);
    assert_int_equal(store_team_create(fx->db, fx->a, &t2, &eb), TR_OK);
    struct st_team dup = {.org = "o", .name = "readers"};
    assert_int_equal(store_team_create(fx->db, fx->a, &dup, &eb),
                     TR_ERR_INVALID);
    const char *ids[] = {fx->member.id};
    assert_int_equal(
        store_team_set_members(fx->db, fx->a, t1.id, true, ids, 1, &eb), TR_OK);
    struct st_team_access ta = {
        .team_id = t1.id, .target_id = fx->ws.id, .access = "read"};
    assert_int_equal(store_ta_create(fx->db, fx->a, ST_TA_WS, &ta, &eb), TR_OK);
    struct st_team_access tb = {.team_id = t2.id,
                                .target_id = fx->ws.id,
                                .access = "custom",
                                .perms = "{\"workspace-locking\":true}"};
    assert_int_equal(store_ta_create(fx->db, fx->a, ST_TA_WS, &tb, &eb), TR_OK);
    struct access_caller member = {.kind = ACCESS_USER,
                                   .user_id = fx->member.id};
    access_t f = ws_flags(fx, &member);
    assert_true(f & ACC_WS_SEE && f & ACC_WS_STATE_READ);
    assert_false(f & ACC_WS_LOCK);
    assert_int_equal(
        store_team_set_members(fx->db, fx->a, t2.id, true, ids, 1, &eb), TR_OK);
    f = ws_flags(fx, &member);
    assert_true(f & ACC_WS_LOCK && f & ACC_WS_STATE_READ);
    assert_false(f & ACC_WS_PLAN || f & ACC_ORG_OWNER);
    /* a team token has its team's flags, not its members' */
    struct access_caller tok = {.kind = ACCESS_TEAM, .team_id = t2.id};
    f = ws_flags(fx, &tok);
    assert_true(f & ACC_WS_LOCK);
    assert_false(f & ACC_WS_STATE_READ);
    /* organization access from a team */
    assert_int_equal(store_team_update(fx->db, fx->a, t1.id, NULL, NULL, NULL,
                                       -1, "{\"manage-workspaces\":true}", &eb),
                     TR_OK);
    f = ws_flags(fx, &member);
    assert_true(f & ACC_WS_ADMIN && f & ACC_ORG_MANAGE_WS);
    /* a user outside the organization cannot join its teams */
    struct st_user u;
    assert_int_equal(
        store_user_create(fx->db, fx->a, "out", "out@x", false, &u, &eb),
        TR_OK);
    const char *outsider[] = {u.id};
    assert_int_equal(
        store_team_set_members(fx->db, fx->a, t1.id, true, outsider, 1, &eb),
        TR_ERR_INVALID);
    /* deleting a team takes its access */
    assert_int_equal(store_team_delete(fx->db, fx->a, t1.id, &eb), TR_OK);
    f = ws_flags(fx, &member);
    assert_false(f & ACC_WS_SEE && f & ACC_WS_STATE_READ);
}

static void test_owners_team_rules(void **state)
{
    struct fx *fx = fixture(state);
    struct tr_errbuf eb = {{0}};
    struct st_team o;
    assert_int_equal(store_team_owners(fx->db, fx->a, "o", &o, &eb), TR_OK);
    assert_true(o.is_owners);
    assert_int_equal(o.user_count, 1);
    assert_int_equal(store_team_delete(fx->db, fx->a, o.id, &eb),
                     TR_ERR_CONFLICT);
    const char *ids[] = {fx->owner.id};
    assert_int_equal(
        store_team_set_members(fx->db, fx->a, o.id, false, ids, 1, &eb),
        TR_ERR_CONFLICT);
    assert_int_equal(remove_member(fx, "o", fx->owner.id, &eb),
                     TR_ERR_CONFLICT);
    /* with a second owner the first may go */
    const char *two[] = {fx->member.id};
    assert_int_equal(
        store_team_set_members(fx->db, fx->a, o.id, true, two, 1, &eb), TR_OK);
    assert_int_equal(remove_member(fx, "o", fx->owner.id, &eb), TR_OK);
    assert_int_equal(store_team_owners(fx->db, fx->a, "o", &o, &eb), TR_OK);
    assert_int_equal(o.user_count, 1);
}

/* Migration 19 on a database with members: every member becomes an
 * owner, so an upgrade takes nobody's access away. */
static void test_migration_makes_owners(void **state)
{
    struct fx *fx = *state;
    struct ut_store st;
    const enum db_kind kind = fx->db != NULL ? fx->st.kind : DB_SQLITE;
    if (fx->db == NULL)
        skip();
    struct tr_errbuf eb = {{0}};
    assert_int_equal(ut_store_prepare(&st, kind, "test_access_mig"), 0);
    assert_int_equal(db_open(kind, st.target, 1, &st.db, &eb), TR_OK);
    assert_int_equal(store_migrate_to(st.db, 18, &eb), TR_OK);
    static const char *const sql[] = {
        "INSERT INTO users (id, username, created_at)"
        " VALUES ('user-a', 'a', 'now'), ('user-b', 'b', 'now')",
        "INSERT INTO organizations (name, id, email, created_at)"
        " VALUES ('acme', 'org-acme1', 'e', 'now')",
        "INSERT INTO org_members (org, user_id)"
        " VALUES ('acme', 'user-a'), ('acme', 'user-b')",
    };
    assert_int_equal(ut_run_sql(st.db, fx->a, sql, 3), 0);
    assert_int_equal(store_migrate(st.db, &eb), TR_OK);
    struct st_team o;
    assert_int_equal(store_team_owners(st.db, fx->a, "acme", &o, &eb), TR_OK);
    assert_int_equal(o.user_count, 2);
    struct access_caller b = {.kind = ACCESS_USER, .user_id = "user-b"};
    access_t f = 0;
    assert_int_equal(access_org(st.db, fx->a, &b, "acme", &f, NULL), TR_OK);
    assert_true(f & ACC_ORG_OWNER);
    assert_int_equal(ut_store_close(&st), 0);
}

#define BOTH(f)                                                                \
    {"sqlite/" #f, f, setup, teardown, (void *)&k_sqlite},                     \
    {                                                                          \
        "pg/" #f, f, setup, teardown, (void *)&k_pg                            \
    }

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_levels),     BOTH(test_callers),
        BOTH(test_teams_add_up),           BOTH(test_owners_team_rules),
        BOTH(test_migration_makes_owners),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
