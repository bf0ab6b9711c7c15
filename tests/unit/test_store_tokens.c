/*
 * test_store_tokens.c - unit tests for src/store/store_tokens.c and
 * store_users.c (and the token side of store_orgs.c), on SQLite and, when
 * TERRACE_TEST_PG_URL is set, on PostgreSQL.
 *
 * Each group gets a fresh migrated store (unit_store_fx.h): a SQLite file in
 * a mkdtemp directory, or a new database on the server the URL names.
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

/* A user with a random name and email. */
static struct st_user new_user(struct ut_fx *f, bool admin)
{
    char *name = util_new_id(f->a, "u");
    struct st_user u;
    assert_int_equal(
        store_user_create(f->db, f->a, name,
                          arena_printf(f->a, "%s@Example.com", name), admin, &u,
                          NULL),
        TR_OK);
    return u;
}

static void test_token_create_lookup(void **state)
{
    struct ut_fx *f = *state;
    struct st_user u = new_user(f, false);
    struct st_token t, got;
    char *secret = NULL;
    assert_int_equal(store_token_create(f->db, f->a, "user", u.id, "ci", u.id,
                                        NULL, &t, &secret, NULL),
                     TR_OK);
    assert_non_null(strstr(secret, ".atlasv1."));
    assert_int_equal(strlen(secret), 14 + 9 + 64);
    assert_true(strncmp(t.id, "at-", 3) == 0);
    assert_int_equal(store_token_lookup(f->db, f->a, secret, &got, NULL),
                     TR_OK);
    assert_string_equal(got.id, t.id);
    assert_string_equal(got.kind, "user");
    assert_string_equal(got.subject, u.id);
    assert_string_equal(got.description, "ci");
    assert_null(got.expired_at);
    /* the lookup recorded its use */
    assert_int_equal(store_token_get(f->db, f->a, t.id, &got, NULL), TR_OK);
    assert_non_null(got.last_used_at);
    /* neither a wrong secret nor a prefix of the right one matches */
    struct tr_errbuf eb = {{0}};
    assert_int_equal(store_token_lookup(f->db, f->a, "nope", &got, &eb),
                     TR_ERR_NOT_FOUND);
    secret[strlen(secret) - 1] ^= 1;
    assert_int_equal(store_token_lookup(f->db, f->a, secret, &got, NULL),
                     TR_ERR_NOT_FOUND);
    assert_int_equal(store_token_get(f->db, f->a, "at-missing", &got, NULL),
                     TR_ERR_NOT_FOUND);
}

static void test_token_expiry(void **state)
{
    struct ut_fx *f = *state;
    struct st_user u = new_user(f, false);
    struct st_token t, got;
    char *past = NULL, *future = NULL;
    char *then = util_iso_from_unix(f->a, util_now_unix() - 5);
    char *later = util_iso_from_unix(f->a, util_now_unix() + 3600);
    assert_int_equal(store_token_create(f->db, f->a, "user", u.id, NULL, NULL,
                                        then, &t, &past, NULL),
                     TR_OK);
    assert_int_equal(store_token_lookup(f->db, f->a, past, &got, NULL),
                     TR_ERR_NOT_FOUND);
    /* expired tokens still show in the list until deleted */
    assert_int_equal(store_token_get(f->db, f->a, t.id, &got, NULL), TR_OK);
    assert_string_equal(got.expired_at, then);
    assert_int_equal(store_token_create(f->db, f->a, "user", u.id, NULL, NULL,
                                        later, &t, &future, NULL),
                     TR_OK);
    assert_int_equal(store_token_lookup(f->db, f->a, future, &got, NULL),
                     TR_OK);
    assert_string_equal(got.expired_at, later);
    assert_string_equal(got.description, "");
}

static void test_token_list_delete(void **state)
{
    struct ut_fx *f = *state;
    struct st_user u = new_user(f, false);
    struct st_token t1, t2, *list = NULL;
    char *s1 = NULL, *s2 = NULL;
    int n = -1;
    assert_int_equal(
        store_token_list(f->db, f->a, "user", u.id, &list, &n, NULL), TR_OK);
    assert_int_equal(n, 0);
    assert_int_equal(store_token_create(f->db, f->a, "user", u.id, "one", NULL,
                                        NULL, &t1, &s1, NULL),
                     TR_OK);
    assert_int_equal(store_token_create(f->db, f->a, "user", u.id, "two", NULL,
                                        NULL, &t2, &s2, NULL),
                     TR_OK);
    assert_int_equal(
        store_token_list(f->db, f->a, "user", u.id, &list, &n, NULL), TR_OK);
    assert_int_equal(n, 2);
    assert_true(strcmp(list[0].id, t1.id) == 0 ||
                strcmp(list[1].id, t1.id) == 0);
    /* kind is part of the key */
    assert_int_equal(
        store_token_list(f->db, f->a, "org", u.id, &list, &n, NULL), TR_OK);
    assert_int_equal(n, 0);
    assert_int_equal(store_token_delete(f->db, f->a, t1.id, NULL), TR_OK);
    assert_int_equal(store_token_delete(f->db, f->a, t1.id, NULL),
                     TR_ERR_NOT_FOUND);
    struct st_token got;
    assert_int_equal(store_token_lookup(f->db, f->a, s1, &got, NULL),
                     TR_ERR_NOT_FOUND);
    assert_int_equal(store_token_lookup(f->db, f->a, s2, &got, NULL), TR_OK);
    assert_int_equal(
        store_token_delete_subject(f->db, f->a, "user", u.id, NULL), TR_OK);
    assert_int_equal(store_token_lookup(f->db, f->a, s2, &got, NULL),
                     TR_ERR_NOT_FOUND);
}

static void test_org_token_replace_and_rename(void **state)
{
    struct ut_fx *f = *state;
    struct st_user u = new_user(f, false);
    char *org = util_new_id(f->a, "org");
    struct st_org o;
    assert_int_equal(store_org_create(f->db, f->a, org, "o@example.com", NULL,
                                      u.id, &o, NULL),
                     TR_OK);
    assert_non_null(o.default_project);
    struct st_token t1, t2, got, *list = NULL;
    char *s1 = NULL, *s2 = NULL;
    int n = 0;
    assert_int_equal(store_token_replace(f->db, f->a, "org", org, NULL, u.id,
                                         NULL, &t1, &s1, NULL),
                     TR_OK);
    assert_int_equal(store_token_replace(f->db, f->a, "org", org, NULL, u.id,
                                         NULL, &t2, &s2, NULL),
                     TR_OK);
    assert_int_equal(store_token_list(f->db, f->a, "org", org, &list, &n, NULL),
                     TR_OK);
    assert_int_equal(n, 1);
    assert_string_equal(list[0].id, t2.id);
    assert_int_equal(store_token_lookup(f->db, f->a, s1, &got, NULL),
                     TR_ERR_NOT_FOUND);
    /* renaming the organization carries its token along */
    char *renamed = util_new_id(f->a, "ren");
    assert_int_equal(
        store_org_update(f->db, f->a, org, renamed, NULL, NULL, NULL), TR_OK);
    assert_int_equal(store_token_lookup(f->db, f->a, s2, &got, NULL), TR_OK);
    assert_string_equal(got.subject, renamed);
    assert_int_equal(store_org_get(f->db, f->a, renamed, &o, NULL), TR_OK);
    assert_non_null(o.default_project); /* the project moved along */
    /* deleting the organization deletes its token */
    assert_int_equal(store_org_delete(f->db, f->a, renamed, NULL), TR_OK);
    assert_int_equal(store_token_lookup(f->db, f->a, s2, &got, NULL),
                     TR_ERR_NOT_FOUND);
}

static void test_user_crud(void **state)
{
    struct ut_fx *f = *state;
    struct st_user u = new_user(f, false), v = new_user(f, true), got;
    struct tr_errbuf eb = {{0}};
    /* duplicates: username exactly, email case-insensitively */
    assert_int_equal(
        store_user_create(f->db, f->a, u.username, "x@y.z", false, NULL, &eb),
        TR_ERR_CONFLICT);
    assert_int_equal(store_user_create(f->db, f->a, util_new_id(f->a, "u"),
                                       u.email, false, NULL, &eb),
                     TR_ERR_CONFLICT);
    char *upper = arena_strdup(f->a, u.email);
    for (char *p = upper; *p; p++)
        if (*p >= 'a' && *p <= 'z')
            *p = (char)(*p - 32);
    assert_int_equal(store_user_create(f->db, f->a, util_new_id(f->a, "u"),
                                       upper, false, NULL, &eb),
                     TR_ERR_CONFLICT);
    assert_int_equal(store_user_get(f->db, f->a, u.id, &got, NULL), TR_OK);
    assert_string_equal(got.username, u.username);
    assert_false(got.is_admin);
    assert_int_equal(store_user_by_name(f->db, f->a, v.username, &got, NULL),
                     TR_OK);
    assert_string_equal(got.id, v.id);
    assert_true(got.is_admin);
    assert_int_equal(store_user_by_email(f->db, f->a, upper, &got, NULL),
                     TR_OK);
    assert_string_equal(got.id, u.id);
    assert_int_equal(store_user_by_email(f->db, f->a, "", &got, NULL),
                     TR_ERR_NOT_FOUND);
    assert_int_equal(store_user_get(f->db, f->a, "user-none", &got, NULL),
                     TR_ERR_NOT_FOUND);
    /* update: rename, keep own email, flip the admin flag */
    char *name2 = util_new_id(f->a, "n");
    assert_int_equal(
        store_user_update(f->db, f->a, u.id, name2, u.email, 1, NULL), TR_OK);
    assert_int_equal(store_user_get(f->db, f->a, u.id, &got, NULL), TR_OK);
    assert_string_equal(got.username, name2);
    assert_true(got.is_admin);
    assert_int_equal(store_user_update(f->db, f->a, u.id, NULL, NULL, 0, NULL),
                     TR_OK);
    assert_int_equal(store_user_get(f->db, f->a, u.id, &got, NULL), TR_OK);
    assert_false(got.is_admin);
    assert_string_equal(got.username, name2);
    assert_int_equal(
        store_user_update(f->db, f->a, u.id, v.username, NULL, -1, NULL),
        TR_ERR_CONFLICT);
    assert_int_equal(
        store_user_update(f->db, f->a, u.id, NULL, v.email, -1, NULL),
        TR_ERR_CONFLICT);
    assert_int_equal(
        store_user_update(f->db, f->a, "user-none", "z", NULL, -1, NULL),
        TR_ERR_NOT_FOUND);
}

static void test_user_search_orgs_delete(void **state)
{
    struct ut_fx *f = *state;
    struct st_user u = new_user(f, false), v = new_user(f, true);
    struct st_user *list = NULL;
    int n = 0;
    int64_t total = 0;
    assert_int_equal(store_user_search(f->db, f->a, u.username, -1, 0, 10,
                                       &list, &n, &total, NULL),
                     TR_OK);
    assert_int_equal(n, 1);
    assert_int_equal(total, 1);
    assert_string_equal(list[0].id, u.id);
    /* by email, and with the admin filter */
    assert_int_equal(store_user_search(f->db, f->a, v.email, 1, 0, 10, &list,
                                       &n, &total, NULL),
                     TR_OK);
    assert_int_equal(n, 1);
    assert_int_equal(store_user_search(f->db, f->a, v.email, 0, 0, 10, &list,
                                       &n, &total, NULL),
                     TR_OK);
    assert_int_equal(n, 0);
    /* '_' is not a wildcard */
    assert_int_equal(store_user_search(f->db, f->a, "u_", -1, 0, 10, &list, &n,
                                       &total, NULL),
                     TR_OK);
    assert_int_equal(total, 0);
    assert_int_equal(
        store_user_list(f->db, f->a, 0, 1, &list, &n, &total, NULL), TR_OK);
    assert_int_equal(n, 1);
    assert_true(total >= 2);
    /* memberships */
    char *org = util_new_id(f->a, "org");
    assert_int_equal(store_org_create(f->db, f->a, org, "o@example.com", NULL,
                                      u.id, NULL, NULL),
                     TR_OK);
    struct st_membership m;
    assert_int_equal(
        store_membership_invite(f->db, f->a, org, v.email, &m, NULL), TR_OK);
    assert_int_equal(
        store_membership_invite(f->db, f->a, org, v.email, &m, NULL),
        TR_ERR_INVALID);
    const char **orgs = NULL;
    /* invited is not a member yet */
    assert_int_equal(store_user_orgs(f->db, f->a, v.id, &orgs, &n, NULL),
                     TR_OK);
    assert_int_equal(n, 0);
    assert_int_equal(store_membership_accept(f->db, f->a, m.id, u.id, NULL),
                     TR_ERR_NOT_FOUND);
    assert_int_equal(store_membership_accept(f->db, f->a, m.id, v.id, NULL),
                     TR_OK);
    assert_int_equal(store_membership_accept(f->db, f->a, m.id, v.id, NULL),
                     TR_ERR_CONFLICT);
    assert_int_equal(store_user_orgs(f->db, f->a, v.id, &orgs, &n, NULL),
                     TR_OK);
    assert_int_equal(n, 1);
    assert_string_equal(orgs[0], org);
    struct st_membership *ms = NULL;
    struct st_membership_filter mf = {.org = org};
    assert_int_equal(
        store_membership_list(f->db, f->a, &mf, 0, 10, &ms, &n, &total, NULL),
        TR_OK);
    assert_int_equal(total, 2);
    /* deleting a user takes their tokens and memberships */
    struct st_token t;
    char *secret = NULL;
    assert_int_equal(store_token_create(f->db, f->a, "user", v.id, NULL, NULL,
                                        NULL, &t, &secret, NULL),
                     TR_OK);
    assert_int_equal(store_user_delete(f->db, f->a, v.id, NULL), TR_OK);
    assert_int_equal(store_user_delete(f->db, f->a, v.id, NULL),
                     TR_ERR_NOT_FOUND);
    assert_int_equal(store_token_lookup(f->db, f->a, secret, &t, NULL),
                     TR_ERR_NOT_FOUND);
    assert_int_equal(
        store_membership_list(f->db, f->a, &mf, 0, 10, &ms, &n, &total, NULL),
        TR_OK);
    assert_int_equal(total, 1);
    assert_string_equal(ms[0].user_id, u.id);
    /* the last owner stays */
    assert_int_equal(store_membership_delete(f->db, f->a, ms[0].id, NULL),
                     TR_ERR_CONFLICT);
    bool member = false;
    assert_int_equal(store_org_is_member(f->db, f->a, org, u.id, &member, NULL),
                     TR_OK);
    assert_true(member);
    assert_int_equal(store_org_delete(f->db, f->a, org, NULL), TR_OK);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        UT_FX_TEST(test_token_create_lookup),
        UT_FX_TEST(test_token_expiry),
        UT_FX_TEST(test_token_list_delete),
        UT_FX_TEST(test_org_token_replace_and_rename),
        UT_FX_TEST(test_user_crud),
        UT_FX_TEST(test_user_search_orgs_delete),
    };
    return ut_fx_run("store_tokens", tests, sizeof(tests) / sizeof(tests[0]),
                     NULL, NULL);
}
