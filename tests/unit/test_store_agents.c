/*
 * test_store_agents.c - unit tests for src/store/store_agents.c (agent
 * pools, agent tokens, agents) and for the pool rule of the job claim
 * (store_job_claim()), on SQLite and, when TERRACE_TEST_PG_URL is set,
 * on PostgreSQL.
 *
 * Each group gets a fresh migrated store (unit_store_fx.h) holding
 * organizations o and p, and o's workspaces "remote" and "other".
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

#include "store/store.h"
#include "unit_store_fx.h"

/* The workspaces every test uses, looked up again for each test. */
struct wss {
    struct st_workspace remote, other, foreign;
};

static struct wss *W(struct ut_fx *f)
{
    return f->ext;
}

/* Organizations o and p, workspaces remote and other of o and foreign
 * of p, once per group. */
static int seed(void **state, enum db_kind kind)
{
    if (ut_fx_open(state, kind) != 0)
        return -1;
    struct ut_fx *f = *state;
    struct arena *a = arena_new();
    struct tr_errbuf eb = {{0}};
    struct st_workspace r = {.org = "o", .name = "remote"},
                        o = {.org = "o", .name = "other"},
                        x = {.org = "p", .name = "foreign"};
    int rc = 0;
    if (store_org_create(f->db, a, "o", "o@x", NULL, NULL, NULL, &eb) !=
            TR_OK ||
        store_org_create(f->db, a, "p", "p@x", NULL, NULL, NULL, &eb) !=
            TR_OK ||
        store_ws_create(f->db, a, &r, NULL, &eb) != TR_OK ||
        store_ws_create(f->db, a, &o, NULL, &eb) != TR_OK ||
        store_ws_create(f->db, a, &x, NULL, &eb) != TR_OK) {
        fprintf(stderr, "setup: %s\n", eb.msg);
        rc = -1;
    }
    arena_destroy(a);
    return rc;
}

static int setup_sqlite(void **state)
{
    return seed(state, DB_SQLITE);
}

static int setup_pg(void **state)
{
    return seed(state, DB_PG);
}

static int each_setup(void **state)
{
    ut_fx_each_setup(state);
    struct ut_fx *f = *state;
    struct wss *w = arena_alloc(f->a, sizeof(*w));
    f->ext = w;
    struct tr_errbuf eb = {{0}};
    if (store_ws_get_by_name(f->db, f->a, "o", "remote", &w->remote, &eb) !=
            TR_OK ||
        store_ws_get_by_name(f->db, f->a, "o", "other", &w->other, &eb) !=
            TR_OK ||
        store_ws_get_by_name(f->db, f->a, "p", "foreign", &w->foreign, &eb) !=
            TR_OK)
        return -1;
    return 0;
}

static struct st_agent_pool pool(struct ut_fx *f, const char *name, bool scoped)
{
    struct st_agent_pool in = {.org = "o", .name = name, .org_scoped = scoped},
                         out;
    struct tr_errbuf eb = {{0}};
    assert_int_equal(store_apool_create(f->db, f->a, &in, &out, &eb), TR_OK);
    return out;
}

/* A workspace of o in the agent mode with pool p; its id. */
static const char *agent_ws(struct ut_fx *f, const char *name, const char *p)
{
    struct st_workspace in = {.org = "o",
                              .name = name,
                              .execution_mode = "agent",
                              .agent_pool_id = p},
                        out;
    struct tr_errbuf eb = {{0}};
    assert_int_equal(store_ws_create(f->db, f->a, &in, &out, &eb), TR_OK);
    assert_string_equal(out.agent_pool_id, p);
    return out.id;
}

static const char *queue(struct ut_fx *f, const char *ws)
{
    struct st_run in = {
        .id = util_new_id(f->a, "run"), .workspace_id = ws, .refresh = true};
    assert_int_equal(store_run_create(f->db, f->a, &in, NULL, true, NULL, NULL),
                     TR_OK);
    return in.id;
}

static struct st_node agent(struct ut_fx *f, const char *pool_id, char **cred,
                            const char **token_id)
{
    struct st_agent_token t;
    char *secret = NULL;
    struct tr_errbuf eb = {{0}};
    assert_int_equal(
        store_atoken_create(f->db, f->a, pool_id, "d", NULL, &t, &secret, &eb),
        TR_OK);
    struct st_agent_token used;
    assert_int_equal(store_atoken_use(f->db, f->a, secret, &used, &eb), TR_OK);
    assert_string_equal(used.id, t.id);
    struct st_node in = {.name = "ag",
                         .role = "agent",
                         .capacity = 1,
                         .pool_id = pool_id,
                         .agent_token_id = t.id},
                   out;
    assert_int_equal(store_node_register(f->db, f->a, &in, &out, cred, &eb),
                     TR_OK);
    if (token_id != NULL)
        *token_id = t.id;
    return out;
}

/* The run whose job node claims now, or NULL when none. */
static const char *claim(struct ut_fx *f, const char *node)
{
    struct st_job j;
    struct st_run r;
    struct tr_errbuf eb = {{0}};
    tr_err e = store_job_claim(f->db, f->a, node, util_now_ms() + 60000, &j, &r,
                               NULL, NULL, &eb);
    if (e == TR_ERR_NOT_FOUND)
        return NULL;
    assert_int_equal(e, TR_OK);
    return r.id;
}

static void test_pool_crud(void **state)
{
    struct ut_fx *f = *state;
    struct tr_errbuf eb = {{0}};
    struct st_agent_pool p = pool(f, "crud", true), got;
    assert_true(strncmp(p.id, "apool-", 6) == 0);
    struct st_agent_pool dup = {.org = "o", .name = "crud"};
    assert_int_equal(store_apool_create(f->db, f->a, &dup, &got, &eb),
                     TR_ERR_INVALID);
    /* a workspace of another organization: nothing is created */
    const char *foreign[] = {W(f)->foreign.id};
    struct st_agent_pool bad = {
        .org = "o", .name = "bad", .allowed_ws = foreign, .nallowed_ws = 1};
    assert_int_equal(store_apool_create(f->db, f->a, &bad, &got, &eb),
                     TR_ERR_INVALID);
    struct st_agent_pool *l = NULL;
    int n = 0;
    int64_t total = 0;
    assert_int_equal(store_apool_list(f->db, f->a, "o", "bad", NULL, 0, 20, &l,
                                      &n, &total, &eb),
                     TR_OK);
    assert_int_equal(total, 0);
    /* allowed workspaces, and the name filter that honours them */
    const char *mine[] = {W(f)->other.id};
    struct st_apool_update u = {
        .org_scoped = 0, .set_ws = true, .ws = mine, .nws = 1};
    assert_int_equal(store_apool_update(f->db, f->a, p.id, &u, &eb), TR_OK);
    assert_int_equal(store_apool_get(f->db, f->a, p.id, &got, &eb), TR_OK);
    assert_false(got.org_scoped);
    assert_int_equal(got.nallowed_ws, 1);
    assert_string_equal(got.allowed_ws[0], W(f)->other.id);
    assert_int_equal(store_apool_list(f->db, f->a, "o", "crud", "remote", 0, 20,
                                      &l, &n, &total, &eb),
                     TR_OK);
    assert_int_equal(total, 0);
    assert_int_equal(store_apool_list(f->db, f->a, "o", "crud", "other", 0, 20,
                                      &l, &n, &total, &eb),
                     TR_OK);
    assert_int_equal(total, 1);
    assert_int_equal(store_apool_check(f->db, f->a, p.id, "o", W(f)->remote.id,
                                       W(f)->remote.project_id, &eb),
                     TR_ERR_INVALID);
    assert_int_equal(store_apool_check(f->db, f->a, p.id, "o", W(f)->other.id,
                                       W(f)->other.project_id, &eb),
                     TR_OK);
    assert_int_equal(store_apool_check(f->db, f->a, p.id, "p", NULL, NULL, &eb),
                     TR_ERR_NOT_FOUND);
    /* in use: kept; then deleted */
    const char *ws = agent_ws(f, "crud-ws", p.id);
    assert_int_equal(store_apool_delete(f->db, f->a, p.id, &eb),
                     TR_ERR_CONFLICT);
    struct st_ws_update back = {
        .execution_mode = "remote", .agent_pool_id = "", .auto_apply = -1};
    assert_int_equal(store_ws_update(f->db, f->a, ws, &back, NULL, &eb), TR_OK);
    assert_int_equal(store_apool_delete(f->db, f->a, p.id, &eb), TR_OK);
    assert_int_equal(store_apool_get(f->db, f->a, p.id, &got, &eb),
                     TR_ERR_NOT_FOUND);
}

static void test_claims_follow_pools(void **state)
{
    struct ut_fx *f = *state;
    struct st_agent_pool p1 = pool(f, "p1", true), p2 = pool(f, "p2", true);
    const char *w1 = agent_ws(f, "w1", p1.id);
    const char *w2 = agent_ws(f, "w2", p2.id);
    /* oldest first: each claimer must pass over what is not its own */
    const char *r2 = queue(f, w2);
    const char *rr = queue(f, W(f)->remote.id);
    const char *r1 = queue(f, w1);
    char *c1 = NULL, *c2 = NULL;
    struct st_node a1 = agent(f, p1.id, &c1, NULL);
    struct st_node a2 = agent(f, p2.id, &c2, NULL);
    assert_true(strncmp(a1.id, "agent-", 6) == 0);
    assert_string_equal(claim(f, a1.id), r1);
    assert_null(claim(f, a1.id));
    /* a claimer with no pool: a secondary's node id, or a node name */
    assert_string_equal(claim(f, "host@127.0.0.1:8443"), rr);
    assert_null(claim(f, "host@127.0.0.1:8443"));
    assert_string_equal(claim(f, a2.id), r2);
    assert_null(claim(f, a2.id));
}

static void test_token_revocation(void **state)
{
    struct ut_fx *f = *state;
    struct tr_errbuf eb = {{0}};
    struct st_agent_pool p = pool(f, "rev", true);
    char *cred = NULL;
    const char *tok = NULL;
    struct st_node a = agent(f, p.id, &cred, &tok), got;
    assert_int_equal(store_node_by_credential(f->db, f->a, cred, &got, &eb),
                     TR_OK);
    assert_string_equal(got.pool_id, p.id);
    assert_int_equal(store_atoken_delete(f->db, f->a, tok, &eb), TR_OK);
    assert_int_equal(store_node_by_credential(f->db, f->a, cred, &got, &eb),
                     TR_ERR_NOT_FOUND);
    assert_int_equal(store_node_get(f->db, f->a, a.id, &got, &eb), TR_OK);
    assert_string_equal(got.state, "gone");
    assert_int_equal(store_atoken_delete(f->db, f->a, tok, &eb),
                     TR_ERR_NOT_FOUND);
    struct st_agent_token t;
    assert_int_equal(store_atoken_use(f->db, f->a, "tragent.nope", &t, &eb),
                     TR_ERR_NOT_FOUND);
    /* an agent needs its pool and token, and only an agent has them */
    struct st_node in = {.name = "x", .role = "agent", .capacity = 1}, out;
    assert_int_equal(store_node_register(f->db, f->a, &in, &out, NULL, &eb),
                     TR_ERR_INVALID);
    in.role = "secondary";
    in.pool_id = p.id;
    in.agent_token_id = tok;
    assert_int_equal(store_node_register(f->db, f->a, &in, &out, NULL, &eb),
                     TR_ERR_INVALID);
}

#define T(fn)                                                                  \
    cmocka_unit_test_setup_teardown(fn, each_setup, ut_fx_each_teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_pool_crud),
        T(test_claims_follow_pools),
        T(test_token_revocation),
    };
    return ut_fx_run("store_agents", tests, sizeof(tests) / sizeof(tests[0]),
                     setup_sqlite, setup_pg);
}
