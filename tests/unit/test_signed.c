/*
 * test_signed.c - unit tests for src/http/signed.c: the URL-signing key is
 * derived from the key-encryption key, not stored.  What the database
 * holds (site_settings) is not the key and never contains it; a node
 * with another KEK derives another key, so URLs signed by one do not
 * verify on the other; a node restarted with the same KEK (or a second
 * node sharing it) derives the same key; an installation with another
 * salt gets another key; an upgraded database loses its clear key.
 *
 * Runs on SQLite and, when TERRACE_TEST_PG_URL is set, on PostgreSQL.
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "crypto/keys.h"
#include "http/http.h"
#include "unit_util.h"

struct fx {
    struct ut_store st;
    struct arena *a;
};

static const enum db_kind k_sqlite = DB_SQLITE;
static const enum db_kind k_pg = DB_PG;

static int setup(void **state)
{
    const enum db_kind *kind = *state;
    struct fx *fx = calloc(1, sizeof(*fx));
    fx->a = arena_new();
    *state = fx;
    return ut_store_open(&fx->st, *kind, 2, "test_signed") < 0 ? -1 : 0;
}

static int teardown(void **state)
{
    struct fx *fx = *state;
    int rc = ut_store_close(&fx->st);
    arena_destroy(fx->a);
    free(fx);
    return rc;
}

static struct fx *fixture(void **state)
{
    struct fx *fx = *state;
    if (fx->st.db == NULL)
        skip(); /* PostgreSQL without a server */
    return fx;
}

/* A node on db whose KEK is 32 bytes of seed; its signing key is set. */
static void node(struct terrace_server *srv, struct db *db, unsigned char seed)
{
    unsigned char kek[KEYS_KEK_LEN];
    memset(kek, seed, sizeof(kek));
    memset(srv, 0, sizeof(*srv));
    srv->db = db;
    assert_int_equal(keys_open_bytes(kek, NULL, &srv->keys, NULL), TR_OK);
    struct tr_errbuf eb = {{0}};
    if (http_signing_init(srv, &eb) != TR_OK)
        fail_msg("http_signing_init: %s", eb.msg);
    assert_int_equal(strlen(srv->signing_key), 64);
}

static struct db_rows *settings(struct fx *fx, struct db *db)
{
    struct db_rows *r = NULL;
    struct db_conn *c = db_acquire(db);
    assert_int_equal(
        db_q(c, fx->a, &r, NULL, "SELECT key, value FROM site_settings", ),
        TR_OK);
    db_release(c);
    return r;
}

static void test_stored_is_not_the_key(void **state)
{
    struct fx *fx = fixture(state);
    struct terrace_server a;
    node(&a, fx->st.db, 1);
    struct db_rows *r = settings(fx, fx->st.db);
    assert_true(r->nrows > 0); /* the salt */
    for (int i = 0; i < r->nrows; i++) {
        const char *k = db_get(r, i, "key"), *v = db_get(r, i, "value");
        assert_string_not_equal(k, "url-signing-key");
        assert_null(strstr(v, a.signing_key));
        /* nor half of it */
        char half[33];
        memcpy(half, a.signing_key, 32);
        half[32] = '\0';
        assert_null(strstr(v, half));
    }
    /* signing with the salt (all a database copy has) forges nothing */
    char *sig = http_sign(fx->a, a.signing_key, "/p", "99999999999");
    for (int i = 0; i < r->nrows; i++)
        assert_false(http_sig_valid(fx->a, db_get(r, i, "value"), "/p",
                                    "99999999999", sig));
    keys_close(a.keys);
}

static void test_other_kek_does_not_verify(void **state)
{
    struct fx *fx = fixture(state);
    struct terrace_server a, b;
    node(&a, fx->st.db, 1);
    node(&b, fx->st.db, 2);
    assert_string_not_equal(a.signing_key, b.signing_key);
    char *sig = http_sign(fx->a, a.signing_key, "/api/v2/x", "4102444800");
    assert_true(
        http_sig_valid(fx->a, a.signing_key, "/api/v2/x", "4102444800", sig));
    assert_false(
        http_sig_valid(fx->a, b.signing_key, "/api/v2/x", "4102444800", sig));
    /* nor another path or expiry under the right key, nor no sig */
    assert_false(
        http_sig_valid(fx->a, a.signing_key, "/api/v2/y", "4102444800", sig));
    assert_false(
        http_sig_valid(fx->a, a.signing_key, "/api/v2/x", "4102444801", sig));
    assert_false(
        http_sig_valid(fx->a, a.signing_key, "/api/v2/x", "4102444800", NULL));
    keys_close(a.keys);
    keys_close(b.keys);
}

static void test_same_kek_same_key(void **state)
{
    struct fx *fx = fixture(state);
    struct terrace_server a, again;
    node(&a, fx->st.db, 1);
    node(&again, fx->st.db, 1); /* a restart, or a second primary */
    assert_string_equal(a.signing_key, again.signing_key);
    char *sig = http_sign(fx->a, a.signing_key, "/p", "4102444800");
    assert_true(
        http_sig_valid(fx->a, again.signing_key, "/p", "4102444800", sig));
    keys_close(a.keys);
    keys_close(again.keys);
    /* the same KEK on another installation (another salt): another key */
    struct ut_store st2;
    int rc = ut_store_open(&st2, fx->st.kind, 1, "test_signed2");
    assert_int_equal(rc, 0);
    struct terrace_server elsewhere;
    node(&elsewhere, st2.db, 1);
    node(&a, fx->st.db, 1);
    assert_string_not_equal(a.signing_key, elsewhere.signing_key);
    keys_close(a.keys);
    keys_close(elsewhere.keys);
    assert_int_equal(ut_store_close(&st2), 0);
}

/* A database from before migration 10 held the key in clear: upgrading
 * deletes it, and the key then in use is not it. */
static void test_upgrade_drops_clear_key(void **state)
{
    struct fx *fx = fixture(state);
    struct ut_store old;
    assert_int_equal(ut_store_prepare(&old, fx->st.kind, "test_signed3"), 0);
    struct tr_errbuf eb = {{0}};
    assert_int_equal(db_open(old.kind, old.target, 1, &old.db, &eb), TR_OK);
    assert_int_equal(store_migrate_to(old.db, 9, &eb), TR_OK);
    const char *clear =
        "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
    struct db_conn *c = db_acquire(old.db);
    assert_int_equal(db_x(c, fx->a, NULL, NULL,
                          "INSERT INTO site_settings (key, value)"
                          " VALUES ('url-signing-key', $1)",
                          clear),
                     TR_OK);
    db_release(c);
    assert_int_equal(store_migrate(old.db, &eb), TR_OK);
    struct terrace_server a;
    node(&a, old.db, 1);
    assert_string_not_equal(a.signing_key, clear);
    struct db_rows *r = settings(fx, old.db);
    for (int i = 0; i < r->nrows; i++) {
        assert_string_not_equal(db_get(r, i, "key"), "url-signing-key");
        assert_string_not_equal(db_get(r, i, "value"), clear);
    }
    keys_close(a.keys);
    assert_int_equal(ut_store_close(&old), 0);
}

#define BOTH(f)                                                                \
    {"sqlite/" #f, f, setup, teardown, (void *)&k_sqlite},                     \
    {                                                                          \
        "pg/" #f, f, setup, teardown, (void *)&k_pg                            \
    }

int main(void)
{
    log_set_level(LOG_WARN);
    const struct CMUnitTest tests[] = {
        BOTH(test_stored_is_not_the_key),
        BOTH(test_other_kek_does_not_verify),
        BOTH(test_same_kek_same_key),
        BOTH(test_upgrade_drops_clear_key),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
