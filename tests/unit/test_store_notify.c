/*
 * test_store_notify.c - unit tests for src/store/store_notify.c on
 * SQLite and, when TERRACE_TEST_PG_URL is set, on PostgreSQL:
 * configurations with a sealed token, the outbox a run event fills
 * (enabled configurations whose triggers hold the event's only), its
 * due/retry/done cycle, the responses kept, and a fault walk proving a
 * run and its notifications are committed together or not at all.
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
#include "crypto/envelope.h"
#include "crypto/keys.h"
#include "store/store.h"
#include "unit_util.h"

struct fx {
    struct ut_store st;
    struct db *db; /* st.db */
    struct arena *a;
    struct keyring *keys;
    struct st_workspace ws; /* "w" in org "o" */
};

static const enum db_kind k_sqlite = DB_SQLITE;
static const enum db_kind k_pg = DB_PG;

static int setup(void **state)
{
    const enum db_kind *kind = *state;
    struct fx *fx = calloc(1, sizeof(*fx));
    struct tr_errbuf eb = {{0}};
    *state = fx;
    int rc = ut_store_open(&fx->st, *kind, 4, "test_store_notify");
    if (rc != 0)
        return rc > 0 ? 0 : -1; /* 1: the test skips */
    fx->db = fx->st.db;
    unsigned char key[KEYS_KEK_LEN];
    memset(key, 9, sizeof(key));
    fx->a = arena_new();
    struct st_workspace in = {.org = "o", .name = "w"};
    if (keys_open_bytes(key, NULL, &fx->keys, &eb) != TR_OK ||
        store_org_create(fx->db, fx->a, "o", "o@x", NULL, NULL, NULL, &eb) !=
            TR_OK ||
        store_ws_create(fx->db, fx->a, &in, &fx->ws, &eb) != TR_OK) {
        fprintf(stderr, "setup: %s\n", eb.msg);
        return -1;
    }
    return 0;
}

static int teardown(void **state)
{
    struct fx *fx = *state;
    fault_reset();
    keys_close(fx->keys);
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

static struct st_nc mknc(struct fx *fx, const char *name, bool enabled,
                         const char *triggers, const char *token)
{
    struct st_nc in = {.workspace_id = fx->ws.id,
                       .name = name,
                       .destination_type = "generic",
                       .enabled = enabled,
                       .url = "http://127.0.0.1:9/x",
                       .token = token,
                       .triggers = triggers},
                 out;
    assert_int_equal(store_nc_create(fx->db, fx->keys, fx->a, &in, &out, NULL),
                     TR_OK);
    return out;
}

static tr_err new_run(struct fx *fx, const char **id)
{
    struct st_run in = {.id = util_new_id(fx->a, "run"),
                        .workspace_id = fx->ws.id,
                        .refresh = true};
    *id = in.id;
    return store_run_create(fx->db, fx->a, &in, NULL, false, NULL, NULL);
}

static int64_t outbox(struct fx *fx)
{
    return ut_count(fx->db, fx->a,
                    "SELECT count(*) AS n FROM notification_outbox");
}

static void test_crud(void **state)
{
    struct fx *fx = fixture(state);
    struct st_nc nc = mknc(fx, "one", true, "[\"run:created\"]", "tok");
    assert_true(envelope_is_sealed(nc.token));
    char *plain = NULL;
    assert_int_equal(
        envelope_open(fx->keys, fx->a, nc.token, &plain, NULL, NULL), TR_OK);
    assert_string_equal(plain, "tok");
    struct st_nc got;
    assert_int_equal(store_nc_get(fx->db, fx->a, nc.id, &got, NULL), TR_OK);
    assert_string_equal(got.name, "one");
    assert_string_equal(got.delivery_responses, "[]");
    struct st_nc *list = NULL;
    int n = 0;
    int64_t total = 0;
    assert_int_equal(
        store_nc_list(fx->db, fx->a, fx->ws.id, 0, 20, &list, &n, &total, NULL),
        TR_OK);
    assert_int_equal(n, 1);
    assert_int_equal(total, 1);
    struct st_nc_update u = {.name = "two", .enabled = 0, .token = ""};
    assert_int_equal(
        store_nc_update(fx->db, fx->keys, fx->a, nc.id, &u, &got, NULL), TR_OK);
    assert_string_equal(got.name, "two");
    assert_false(got.enabled);
    assert_null(got.token);
    assert_string_equal(got.triggers, "[\"run:created\"]");
    u = (struct st_nc_update){.enabled = -1};
    assert_int_equal(
        store_nc_update(fx->db, fx->keys, fx->a, nc.id, &u, &got, NULL), TR_OK);
    assert_string_equal(got.name, "two");
    assert_int_equal(store_nc_delete(fx->db, fx->a, nc.id, NULL), TR_OK);
    assert_int_equal(store_nc_delete(fx->db, fx->a, nc.id, NULL),
                     TR_ERR_NOT_FOUND);
    assert_int_equal(store_nc_get(fx->db, fx->a, nc.id, &got, NULL),
                     TR_ERR_NOT_FOUND);
    struct st_nc bad = {
        .workspace_id = "ws-gone", .name = "x", .destination_type = "generic"};
    assert_int_equal(store_nc_create(fx->db, fx->keys, fx->a, &bad, NULL, NULL),
                     TR_ERR_NOT_FOUND);
}

static void test_enqueue_and_cycle(void **state)
{
    struct fx *fx = fixture(state);
    struct st_nc want = mknc(fx, "want", true, "[\"run:created\"]", NULL);
    mknc(fx, "other", true, "[\"run:errored\",\"run:completed\"]", NULL);
    mknc(fx, "off", false, "[\"run:created\"]", NULL);
    mknc(fx, "none", true, "[]", NULL);
    const char *run = NULL;
    assert_int_equal(new_run(fx, &run), TR_OK);
    assert_int_equal(outbox(fx), 1);
    int64_t now = util_now_unix();
    struct st_nc_delivery *d = NULL;
    int n = 0;
    assert_int_equal(store_notify_due(fx->db, fx->a, now, 10, &d, &n, NULL),
                     TR_OK);
    assert_int_equal(n, 1);
    assert_string_equal(d[0].nc.id, want.id);
    assert_string_equal(d[0].trigger, "run:created");
    assert_string_equal(d[0].run_status, "pending");
    assert_string_equal(d[0].run_id, run);
    assert_string_equal(d[0].ws_name, "w");
    assert_string_equal(d[0].org, "o");
    assert_int_equal(d[0].attempts, 0);
    /* a failure pushes it on */
    assert_int_equal(
        store_notify_retry(fx->db, fx->a, d[0].id, 1, now + 60, NULL), TR_OK);
    assert_int_equal(store_notify_due(fx->db, fx->a, now, 10, &d, &n, NULL),
                     TR_OK);
    assert_int_equal(n, 0);
    assert_int_equal(
        store_notify_due(fx->db, fx->a, now + 60, 10, &d, &n, NULL), TR_OK);
    assert_int_equal(n, 1);
    assert_int_equal(d[0].attempts, 1);
    assert_int_equal(store_notify_done(fx->db, fx->a, d[0].id, NULL), TR_OK);
    assert_int_equal(outbox(fx), 0);
    /* events that announce nothing queue nothing; a deleted configuration
     * takes its pending deliveries with it */
    assert_int_equal(new_run(fx, &run), TR_OK);
    assert_int_equal(outbox(fx), 1);
    assert_int_equal(store_nc_delete(fx->db, fx->a, want.id, NULL), TR_OK);
    assert_int_equal(outbox(fx), 0);
}

static void test_responses_kept(void **state)
{
    struct fx *fx = fixture(state);
    struct st_nc nc = mknc(fx, "r", true, "[]", NULL);
    for (int i = 0; i < STORE_NC_RESPONSES + 2; i++)
        assert_int_equal(store_nc_add_response(
                             fx->db, fx->a, nc.id,
                             arena_printf(fx->a, "{\"code\":\"%d\"}", i), NULL),
                         TR_OK);
    struct st_nc got;
    assert_int_equal(store_nc_get(fx->db, fx->a, nc.id, &got, NULL), TR_OK);
    assert_non_null(strstr(got.delivery_responses, "{\"code\":\"2\"}"));
    assert_null(strstr(got.delivery_responses, "{\"code\":\"1\"}"));
    assert_non_null(strstr(got.delivery_responses, "{\"code\":\"11\"}]"));
    assert_int_equal(
        store_nc_add_response(fx->db, fx->a, nc.id, "not json", NULL),
        TR_ERR_INTERNAL);
    assert_int_equal(
        store_nc_add_response(fx->db, fx->a, "nc-gone", "{}", NULL), TR_OK);
}

/* A run and the notifications of its creation are one transaction: at
 * every failing query either both exist or neither. */
static void test_fault_walk(void **state)
{
    struct fx *fx = fixture(state);
    mknc(fx, "f", true, "[\"run:created\"]", NULL);
    for (int n = 1;; n++) {
        int64_t before = outbox(fx);
        int64_t runs =
            ut_count(fx->db, fx->a, "SELECT count(*) AS n FROM runs");
        const char *run = NULL;
        fault_arm("db.query", n);
        tr_err e = new_run(fx, &run);
        bool fired = fault_fired();
        fault_reset();
        int64_t runs_after =
            ut_count(fx->db, fx->a, "SELECT count(*) AS n FROM runs");
        if (!fired) {
            assert_int_equal(e, TR_OK);
            assert_int_equal(outbox(fx), before + 1);
            assert_int_equal(runs_after, runs + 1);
            break;
        }
        assert_int_not_equal(e, TR_OK);
        assert_int_equal(outbox(fx), before);
        assert_int_equal(runs_after, runs);
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
        BOTH(test_crud),
        BOTH(test_enqueue_and_cycle),
        BOTH(test_responses_kept),
        BOTH(test_fault_walk),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
