/*
 * test_store_memberships.c - unit tests for src/store/store_memberships.c
 * (and the invitation side of store_users.c and store_notify.c), on
 * SQLite and, when TERRACE_TEST_PG_URL is set, on PostgreSQL.
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
#include <unistd.h>

#include "store/store.h"
#include "unit_store_fx.h"

static struct st_user new_user(struct ut_fx *f, const char *email)
{
    struct st_user u;
    char *name = util_new_id(f->a, "u");
    assert_int_equal(
        store_user_create(f->db, f->a, name,
                          email ? email
                                : arena_printf(f->a, "%s@x.example", name),
                          false, &u, NULL),
        TR_OK);
    return u;
}

/* An organization owned by a new user (its only active member). */
static const char *new_org(struct ut_fx *f, struct st_user *owner)
{
    *owner = new_user(f, NULL);
    const char *org = util_new_id(f->a, "org");
    assert_int_equal(store_org_create(f->db, f->a, org, "o@x.example", NULL,
                                      owner->id, NULL, NULL),
                     TR_OK);
    return org;
}

static int64_t count(struct ut_fx *f, const char *org, const char *status)
{
    struct st_membership *ms = NULL;
    int n = 0;
    int64_t total = 0;
    struct st_membership_filter mf = {.org = org, .status = status};
    assert_int_equal(
        store_membership_list(f->db, f->a, &mf, 0, 100, &ms, &n, &total, NULL),
        TR_OK);
    return total;
}

static void test_invite_unknown_address(void **state)
{
    struct ut_fx *f = *state;
    struct st_user owner, owner2;
    const char *org = new_org(f, &owner), *org2 = new_org(f, &owner2);
    char *email = arena_printf(f->a, "%s@New.example", util_new_id(f->a, "n"));
    struct st_membership m, m2;
    struct tr_errbuf eb = {{0}};
    assert_int_equal(store_membership_invite(f->db, f->a, org, email, &m, &eb),
                     TR_OK);
    assert_null(m.user_id);
    assert_false(m.has_user);
    assert_string_equal(m.status, "invited");
    assert_string_equal(m.email, email);
    assert_true(strncmp(m.invitee_id, "user-", 5) == 0);
    /* the same address again in org: refused, in any case */
    for (char *p = email; *p; p++)
        if (*p >= 'a' && *p <= 'z')
            *p = (char)(*p - 'a' + 'A');
    assert_int_equal(store_membership_invite(f->db, f->a, org, email, &m2, &eb),
                     TR_ERR_INVALID);
    assert_non_null(strstr(eb.msg, "already invited"));
    /* in another organization: the same reserved id */
    assert_int_equal(
        store_membership_invite(f->db, f->a, org2, email, &m2, NULL), TR_OK);
    assert_string_equal(m2.invitee_id, m.invitee_id);
    /* an invited id may receive notifications, a stranger's may not */
    const char *bad = NULL;
    assert_int_equal(
        store_nc_users_in_org(
            f->db, f->a, org,
            arena_printf(f->a, "[\"%s\", \"%s\"]", owner.id, m.invitee_id),
            &bad, NULL),
        TR_OK);
    assert_null(bad);
    assert_int_equal(store_nc_users_in_org(
                         f->db, f->a, org,
                         arena_printf(f->a, "[\"%s\"]", owner2.id), &bad, NULL),
                     TR_OK);
    assert_string_equal(bad, owner2.id);
    /* the account made with the address takes the id and both */
    struct st_user u = new_user(f, email);
    assert_string_equal(u.id, m.invitee_id);
    assert_int_equal(store_membership_get(f->db, f->a, m2.id, &m2, NULL),
                     TR_OK);
    assert_string_equal(m2.user_id, u.id);
    assert_true(m2.has_user);
    assert_string_equal(m2.user.username, u.username);
    assert_string_equal(m2.status, "invited");
    struct st_membership *ms = NULL;
    int n = 0;
    int64_t total = 0;
    struct st_membership_filter mine = {.user_id = u.id};
    assert_int_equal(
        store_membership_list(f->db, f->a, &mine, 0, 10, &ms, &n, &total, NULL),
        TR_OK);
    assert_int_equal(total, 2);
    /* an account made later with another address takes nothing */
    struct st_user v = new_user(f, NULL);
    assert_string_not_equal(v.id, m.invitee_id);
}

static void test_accept_and_delete(void **state)
{
    struct ut_fx *f = *state;
    struct st_user owner;
    const char *org = new_org(f, &owner);
    struct st_user u = new_user(f, NULL);
    struct st_membership m;
    assert_int_equal(
        store_membership_invite(f->db, f->a, org, u.email, &m, NULL), TR_OK);
    assert_string_equal(m.user_id, u.id);
    assert_int_equal(count(f, org, "invited"), 1);
    assert_int_equal(count(f, org, "active"), 1);
    /* an active member cannot be invited again either */
    struct tr_errbuf eb = {{0}};
    assert_int_equal(
        store_membership_invite(f->db, f->a, org, owner.email, &m, &eb),
        TR_ERR_INVALID);
    assert_non_null(strstr(eb.msg, "already a member"));
    assert_int_equal(store_membership_get(f->db, f->a, "ou-nope", &m, NULL),
                     TR_ERR_NOT_FOUND);
    struct st_membership_filter mf = {.org = org, .status = "invited"};
    struct st_membership *ms = NULL;
    int n = 0;
    int64_t total = 0;
    assert_int_equal(
        store_membership_list(f->db, f->a, &mf, 0, 10, &ms, &n, &total, NULL),
        TR_OK);
    assert_int_equal(n, 1);
    m = ms[0];
    assert_int_equal(store_membership_accept(f->db, f->a, m.id, owner.id, NULL),
                     TR_ERR_NOT_FOUND);
    assert_int_equal(store_membership_accept(f->db, f->a, m.id, u.id, NULL),
                     TR_OK);
    assert_int_equal(count(f, org, "active"), 2);
    /* the owner cannot leave the owners team empty */
    mf.status = "active";
    mf.user_id = owner.id;
    assert_int_equal(
        store_membership_list(f->db, f->a, &mf, 0, 10, &ms, &n, &total, NULL),
        TR_OK);
    assert_int_equal(store_membership_delete(f->db, f->a, ms[0].id, &eb),
                     TR_ERR_CONFLICT);
    /* with the new member in the owners team the owner may leave; then the
     * new member is the last owner and stays */
    struct st_team owners;
    assert_int_equal(store_team_owners(f->db, f->a, org, &owners, NULL), TR_OK);
    const char *uid[] = {u.id};
    assert_int_equal(
        store_team_set_members(f->db, f->a, owners.id, true, uid, 1, NULL),
        TR_OK);
    mf.user_id = owner.id;
    assert_int_equal(
        store_membership_list(f->db, f->a, &mf, 0, 10, &ms, &n, &total, NULL),
        TR_OK);
    assert_int_equal(n, 1);
    assert_int_equal(store_membership_delete(f->db, f->a, ms[0].id, NULL),
                     TR_OK);
    assert_int_equal(store_membership_delete(f->db, f->a, m.id, &eb),
                     TR_ERR_CONFLICT);
    assert_non_null(strstr(eb.msg, "owners team"));
    assert_int_equal(count(f, org, NULL), 1);
    assert_int_equal(store_membership_delete(f->db, f->a, ms[0].id, NULL),
                     TR_ERR_NOT_FOUND);
}

static void test_filters(void **state)
{
    struct ut_fx *f = *state;
    struct st_user owner;
    const char *org = new_org(f, &owner);
    const char *tag = util_new_id(f->a, "t");
    const char *emails[3];
    for (int i = 0; i < 3; i++) {
        emails[i] = arena_printf(f->a, "%s_%d@x.example", tag, i);
        struct st_membership m;
        assert_int_equal(
            store_membership_invite(f->db, f->a, org, emails[i], &m, NULL),
            TR_OK);
    }
    struct st_membership *ms = NULL;
    int n = 0;
    int64_t total = 0;
    struct st_membership_filter mf = {.org = org, .query = tag};
    /* pages of one: each address once (oldest first, to the millisecond) */
    int seen = 0;
    for (int off = 0; off < 3; off++) {
        assert_int_equal(store_membership_list(f->db, f->a, &mf, off, 1, &ms,
                                               &n, &total, NULL),
                         TR_OK);
        assert_int_equal(total, 3);
        assert_int_equal(n, 1);
        for (int i = 0; i < 3; i++)
            if (strcmp(ms[0].email, emails[i]) == 0)
                seen |= 1 << i;
    }
    assert_int_equal(seen, 7);
    /* '_' is not a wildcard */
    mf.query = arena_printf(f->a, "%s_", tag);
    assert_int_equal(
        store_membership_list(f->db, f->a, &mf, 0, 10, &ms, &n, &total, NULL),
        TR_OK);
    assert_int_equal(total, 3);
    mf.query = "x_x";
    assert_int_equal(
        store_membership_list(f->db, f->a, &mf, 0, 10, &ms, &n, &total, NULL),
        TR_OK);
    assert_int_equal(total, 0);
    const char *two[] = {emails[0], "NOBODY@x.example", emails[2]};
    struct st_membership_filter by_mail = {
        .org = org, .emails = two, .nemails = 3};
    assert_int_equal(store_membership_list(f->db, f->a, &by_mail, 0, 10, &ms,
                                           &n, &total, NULL),
                     TR_OK);
    assert_int_equal(total, 2);
    /* the owner by username */
    struct st_membership_filter by_name = {.org = org, .query = owner.username};
    assert_int_equal(store_membership_list(f->db, f->a, &by_name, 0, 10, &ms,
                                           &n, &total, NULL),
                     TR_OK);
    assert_int_equal(n, 1);
    assert_string_equal(ms[0].user_id, owner.id);
}

static void test_mail_queue(void **state)
{
    struct ut_fx *f = *state;
    struct st_user owner;
    const char *org = new_org(f, &owner);
    struct st_membership m, *due = NULL;
    int n = 0;
    /* drain what other tests left */
    assert_int_equal(
        store_membership_mail_due(f->db, f->a, 100, &due, &n, NULL), TR_OK);
    for (int i = 0; i < n; i++)
        assert_int_equal(
            store_membership_mail_done(f->db, f->a, due[i].id, NULL), TR_OK);
    assert_int_equal(
        store_membership_invite(f->db, f->a, org, "q@x.example", &m, NULL),
        TR_OK);
    assert_int_equal(
        store_membership_mail_due(f->db, f->a, 100, &due, &n, NULL), TR_OK);
    assert_int_equal(n, 1);
    assert_string_equal(due[0].id, m.id);
    assert_int_equal(store_membership_mail_done(f->db, f->a, m.id, NULL),
                     TR_OK);
    assert_int_equal(
        store_membership_mail_due(f->db, f->a, 100, &due, &n, NULL), TR_OK);
    assert_int_equal(n, 0);
    /* the creator's own membership is mailed nobody */
    struct st_user o2;
    new_org(f, &o2);
    assert_int_equal(
        store_membership_mail_due(f->db, f->a, 100, &due, &n, NULL), TR_OK);
    assert_int_equal(n, 0);
}

static const char *new_team(struct ut_fx *f, const char *org)
{
    struct st_team t = {.org = org, .name = util_new_id(f->a, "t")};
    assert_int_equal(store_team_create(f->db, f->a, &t, NULL), TR_OK);
    return t.id;
}

/* Whether user_id is a member of team_id. */
static bool in_team(struct ut_fx *f, const char *team_id, const char *user_id)
{
    struct st_user *us = NULL;
    int n = 0;
    assert_int_equal(store_team_members(f->db, f->a, team_id, &us, &n, NULL),
                     TR_OK);
    for (int i = 0; i < n; i++)
        if (strcmp(us[i].id, user_id) == 0)
            return true;
    return false;
}

static void test_invite_into_teams(void **state)
{
    struct ut_fx *f = *state;
    struct st_user owner, owner2;
    const char *org = new_org(f, &owner), *org2 = new_org(f, &owner2);
    const char *t1 = new_team(f, org), *t2 = new_team(f, org),
               *t3 = new_team(f, org), *other = new_team(f, org2);
    struct st_user u = new_user(f, NULL);
    struct st_membership m;
    struct tr_errbuf eb = {{0}};
    /* a team of another organization: nothing created */
    const char *bad[] = {t1, other};
    assert_int_equal(store_membership_invite_teams(f->db, f->a, org, u.email,
                                                   bad, 2, &m, &eb),
                     TR_ERR_NOT_FOUND);
    assert_non_null(strstr(eb.msg, other));
    assert_int_equal(count(f, org, "invited"), 0);
    const char *ok[] = {t1, t2, t3};
    assert_int_equal(store_membership_invite_teams(f->db, f->a, org, u.email,
                                                   ok, 3, &m, NULL),
                     TR_OK);
    assert_int_equal(m.nteams, 3);
    /* team t3 also by the team's side, then taken away and deleted */
    const char *inv[] = {m.id};
    assert_int_equal(store_team_set_memberships(f->db, f->a, t3, false, NULL, 0,
                                                inv, 1, NULL),
                     TR_OK);
    assert_int_equal(store_membership_get(f->db, f->a, m.id, &m, NULL), TR_OK);
    assert_int_equal(m.nteams, 2);
    assert_int_equal(store_team_set_memberships(f->db, f->a, t3, true, NULL, 0,
                                                inv, 1, NULL),
                     TR_OK);
    struct st_membership *ms = NULL;
    int n = 0;
    assert_int_equal(store_team_invites(f->db, f->a, t3, &ms, &n, NULL), TR_OK);
    assert_int_equal(n, 1);
    assert_string_equal(ms[0].id, m.id);
    assert_int_equal(store_team_delete(f->db, f->a, t3, NULL), TR_OK);
    /* another organization's team cannot take the invitation */
    assert_int_equal(store_team_set_memberships(f->db, f->a, other, true, NULL,
                                                0, inv, 1, NULL),
                     TR_ERR_NOT_FOUND);
    assert_false(in_team(f, t1, u.id));
    assert_int_equal(store_membership_accept(f->db, f->a, m.id, u.id, NULL),
                     TR_OK);
    assert_true(in_team(f, t1, u.id));
    assert_true(in_team(f, t2, u.id));
    assert_false(in_team(f, other, u.id));
    /* active: the user's teams of the organization */
    assert_int_equal(store_membership_get(f->db, f->a, m.id, &m, NULL), TR_OK);
    assert_int_equal(m.nteams, 2);
    const char *uid[] = {u.id};
    assert_int_equal(
        store_team_set_members(f->db, f->a, t2, false, uid, 1, NULL), TR_OK);
    assert_int_equal(store_membership_get(f->db, f->a, m.id, &m, NULL), TR_OK);
    assert_int_equal(m.nteams, 1);
    assert_string_equal(m.team_ids[0], t1);
}

/* store_team_get_many(): the teams found among the ids, past one query's
 * worth of ids too; none for none. */
static void test_team_get_many(void **state)
{
    struct ut_fx *f = *state;
    struct st_user owner;
    const char *org = new_org(f, &owner);
    enum { N = 250 };
    const char *ids[N];
    for (int i = 0; i < N; i++)
        ids[i] = arena_printf(f->a, "team-none%d", i);
    ids[0] = new_team(f, org);
    ids[201] = new_team(f, org);
    ids[N - 1] = new_team(f, org);
    struct st_team *out = NULL;
    int n = -1;
    assert_int_equal(store_team_get_many(f->db, f->a, ids, N, &out, &n, NULL),
                     TR_OK);
    assert_int_equal(n, 3);
    int seen = 0;
    for (int i = 0; i < n; i++) {
        assert_string_equal(out[i].org, org);
        assert_int_equal(out[i].user_count, 0);
        for (int k = 0; k < N; k++)
            if (strcmp(out[i].id, ids[k]) == 0)
                seen |= k == 0 ? 1 : k == 201 ? 2 : k == N - 1 ? 4 : 8;
    }
    assert_int_equal(seen, 7);
    assert_int_equal(store_team_get_many(f->db, f->a, ids, 0, &out, &n, NULL),
                     TR_OK);
    assert_int_equal(n, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        UT_FX_TEST(test_invite_unknown_address),
        UT_FX_TEST(test_accept_and_delete),
        UT_FX_TEST(test_filters),
        UT_FX_TEST(test_mail_queue),
        UT_FX_TEST(test_invite_into_teams),
        UT_FX_TEST(test_team_get_many),
    };
    return ut_fx_run("store_memberships", tests,
                     sizeof(tests) / sizeof(tests[0]), NULL, NULL);
}
