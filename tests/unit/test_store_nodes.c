/*
 * test_store_nodes.c - unit tests for src/store/store_nodes.c, the
 * cluster's node registry, on SQLite and, when TERRACE_TEST_PG_URL is
 * set, on PostgreSQL.
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

static struct st_node reg(struct ut_fx *f, const char *name, const char *role,
                          char **cred)
{
    struct tr_errbuf eb = {{0}};
    struct st_node in = {.name = name,
                         .role = role,
                         .address = "127.0.2.1:8443",
                         .version = "0.1.0",
                         .capacity = 4};
    struct st_node out;
    assert_int_equal(store_node_register(f->db, f->a, &in, &out, cred, &eb),
                     TR_OK);
    return out;
}

static const struct st_node *find(const struct st_node *l, int n,
                                  const char *id)
{
    for (int i = 0; i < n; i++)
        if (strcmp(l[i].id, id) == 0)
            return &l[i];
    return NULL;
}

static void test_register_and_credential(void **state)
{
    struct ut_fx *f = *state;
    struct tr_errbuf eb = {{0}};
    char *cred = NULL;
    struct st_node s = reg(f, "s1", "secondary", &cred);
    assert_non_null(cred);
    assert_true(strlen(cred) > 32);
    struct st_node got;
    assert_int_equal(store_node_by_credential(f->db, f->a, cred, &got, &eb),
                     TR_OK);
    assert_string_equal(got.id, s.id);
    assert_string_equal(got.role, "secondary");
    assert_string_equal(got.state, "active");
    assert_int_equal(got.capacity, 4);
    assert_false(got.leader);
    /* a credential that is not one, and one a character off */
    assert_int_equal(store_node_by_credential(f->db, f->a, "x", &got, &eb),
                     TR_ERR_NOT_FOUND);
    char *off = arena_strdup(f->a, cred);
    off[strlen(off) - 1] ^= 1;
    assert_int_equal(store_node_by_credential(f->db, f->a, off, &got, &eb),
                     TR_ERR_NOT_FOUND);
    /* bad input changes nothing */
    struct st_node bad = {.name = "b", .role = "queen"};
    assert_int_equal(store_node_register(f->db, f->a, &bad, NULL, NULL, &eb),
                     TR_ERR_INVALID);
    bad.role = "secondary";
    bad.capacity = -1;
    assert_int_equal(store_node_register(f->db, f->a, &bad, NULL, NULL, &eb),
                     TR_ERR_INVALID);
}

static void test_revoke(void **state)
{
    struct ut_fx *f = *state;
    struct tr_errbuf eb = {{0}};
    char *cred = NULL;
    struct st_node s = reg(f, "s2", "secondary", &cred);
    assert_int_equal(store_node_revoke(f->db, f->a, s.id, &eb), TR_OK);
    struct st_node got;
    assert_int_equal(store_node_by_credential(f->db, f->a, cred, &got, &eb),
                     TR_ERR_NOT_FOUND);
    assert_non_null(strstr(tr_errbuf_msg(&eb, TR_ERR_NOT_FOUND), "revoked"));
    /* a revoked node cannot be made active again */
    assert_int_equal(store_node_set_state(f->db, f->a, s.id, "active", &eb),
                     TR_ERR_NOT_FOUND);
    assert_int_equal(store_node_heartbeat(f->db, f->a, s.id, 1, &eb),
                     TR_ERR_NOT_FOUND);
    assert_int_equal(store_node_get(f->db, f->a, s.id, &got, &eb), TR_OK);
    assert_true(got.revoked);
    assert_string_equal(got.state, "gone");
    assert_int_equal(store_node_revoke(f->db, f->a, "node-none", &eb),
                     TR_ERR_NOT_FOUND);
}

static void test_state_and_heartbeat(void **state)
{
    struct ut_fx *f = *state;
    struct tr_errbuf eb = {{0}};
    char *cred = NULL;
    struct st_node s = reg(f, "s3", "secondary", &cred);
    assert_int_equal(store_node_heartbeat(f->db, f->a, s.id, 3, &eb), TR_OK);
    assert_int_equal(store_node_set_state(f->db, f->a, s.id, "draining", &eb),
                     TR_OK);
    assert_int_equal(store_node_set_state(f->db, f->a, s.id, "asleep", &eb),
                     TR_ERR_INVALID);
    struct st_node got;
    assert_int_equal(store_node_get(f->db, f->a, s.id, &got, &eb), TR_OK);
    assert_string_equal(got.state, "draining");
    assert_int_equal(got.running_jobs, 3);
    /* a draining node still authenticates: it finishes its jobs */
    assert_int_equal(store_node_by_credential(f->db, f->a, cred, &got, &eb),
                     TR_OK);
    /* marked gone (for silence): still its credential, and its next
     * heartbeat makes it active again */
    assert_int_equal(store_node_set_state(f->db, f->a, s.id, "gone", &eb),
                     TR_OK);
    assert_int_equal(store_node_by_credential(f->db, f->a, cred, &got, &eb),
                     TR_OK);
    assert_string_equal(got.state, "gone");
    struct st_node *l = NULL;
    int n = 0;
    assert_int_equal(store_node_list(f->db, f->a, false, &l, &n, &eb), TR_OK);
    assert_null(find(l, n, s.id));
    assert_int_equal(store_node_list(f->db, f->a, true, &l, &n, &eb), TR_OK);
    assert_non_null(find(l, n, s.id));
    assert_int_equal(store_node_heartbeat(f->db, f->a, s.id, 0, &eb), TR_OK);
    assert_int_equal(store_node_get(f->db, f->a, s.id, &got, &eb), TR_OK);
    assert_string_equal(got.state, "active");
    /* a node that left: its credential ends, and heartbeats cannot
     * bring it back */
    assert_int_equal(store_node_leave(f->db, f->a, s.id, &eb), TR_OK);
    assert_int_equal(store_node_by_credential(f->db, f->a, cred, &got, &eb),
                     TR_ERR_NOT_FOUND);
    assert_non_null(strstr(eb.msg, "left the cluster"));
    assert_int_equal(store_node_heartbeat(f->db, f->a, s.id, 0, &eb),
                     TR_ERR_NOT_FOUND);
    assert_int_equal(store_node_get(f->db, f->a, s.id, &got, &eb), TR_OK);
    assert_string_equal(got.state, "gone");
    assert_true(got.revoked && got.left);
}

static void test_leader(void **state)
{
    struct ut_fx *f = *state;
    struct tr_errbuf eb = {{0}};
    struct st_node p1 = reg(f, "p1", "primary", NULL);
    struct st_node p2 = reg(f, "p2", "primary", NULL);
    assert_int_equal(store_node_set_leader(f->db, f->a, p1.id, &eb), TR_OK);
    assert_int_equal(store_node_set_leader(f->db, f->a, p2.id, &eb), TR_OK);
    struct st_node *l = NULL;
    int n = 0, leaders = 0;
    assert_int_equal(store_node_list(f->db, f->a, false, &l, &n, &eb), TR_OK);
    for (int i = 0; i < n; i++)
        leaders += l[i].leader;
    assert_int_equal(leaders, 1);
    assert_true(find(l, n, p2.id)->leader);
    /* a former leader drops only its own flag */
    assert_int_equal(store_node_drop_leader(f->db, f->a, p1.id, &eb), TR_OK);
    assert_int_equal(store_node_get(f->db, f->a, p2.id, &p2, &eb), TR_OK);
    assert_true(p2.leader);
    assert_int_equal(store_node_drop_leader(f->db, f->a, p2.id, &eb), TR_OK);
    assert_int_equal(store_node_get(f->db, f->a, p2.id, &p2, &eb), TR_OK);
    assert_false(p2.leader);
    assert_int_equal(store_node_set_leader(f->db, f->a, p1.id, &eb), TR_OK);
    assert_int_equal(store_node_set_leader(f->db, f->a, NULL, &eb), TR_OK);
    assert_int_equal(store_node_get(f->db, f->a, p1.id, &p1, &eb), TR_OK);
    assert_false(p1.leader);
}

static void test_prune(void **state)
{
    struct ut_fx *f = *state;
    struct tr_errbuf eb = {{0}};
    char *cred = NULL;
    struct st_node s = reg(f, "s4", "secondary", &cred);
    int64_t gone = -1;
    /* a cutoff before its heartbeat leaves it */
    assert_int_equal(store_node_prune(f->db, f->a, "2000-01-01T00:00:00.000Z",
                                      NULL, &gone, &eb),
                     TR_OK);
    assert_int_equal(gone, 0);
    assert_int_equal(store_node_prune(f->db, f->a, "9999-01-01T00:00:00.000Z",
                                      NULL, &gone, &eb),
                     TR_OK);
    assert_true(gone >= 1);
    struct st_node got;
    assert_int_equal(store_node_by_credential(f->db, f->a, cred, &got, &eb),
                     TR_OK);
    assert_string_equal(got.state, "gone");
    assert_int_equal(store_node_prune(f->db, f->a, NULL,
                                      "9999-01-01T00:00:00.000Z", NULL, &eb),
                     TR_OK);
    assert_int_equal(store_node_get(f->db, f->a, s.id, &got, &eb),
                     TR_ERR_NOT_FOUND);
    /* forgotten: its credential is unknown now */
    assert_int_equal(store_node_by_credential(f->db, f->a, cred, &got, &eb),
                     TR_ERR_NOT_FOUND);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        UT_FX_TEST(test_register_and_credential),
        UT_FX_TEST(test_revoke),
        UT_FX_TEST(test_state_and_heartbeat),
        UT_FX_TEST(test_leader),
        UT_FX_TEST(test_prune),
    };
    return ut_fx_run("store_nodes", tests, sizeof(tests) / sizeof(tests[0]),
                     NULL, NULL);
}
