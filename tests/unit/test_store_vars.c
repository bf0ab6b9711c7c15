/*
 * test_store_vars.c - unit tests for src/store/store_vars.c on SQLite (a
 * mkdtemp directory) and, when TERRACE_TEST_PG_URL is set, on PostgreSQL
 * (a fresh database per test; the pg/ tests skip otherwise).
 *
 * Covers workspace variables (sealing of sensitive values at rest, the
 * no-way-back rule, version ids, duplicate keys), variable sets with their
 * links (all-or-nothing, global sets), list scopes, cascades, the
 * precedence rules of store_vars_for_run() level by level, and a fault
 * walk over the writing functions.
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
    struct st_workspace ws; /* "w" in org "o", project prj */
    struct st_project prj;
};

static const enum db_kind k_sqlite = DB_SQLITE;
static const enum db_kind k_pg = DB_PG;

static int setup(void **state)
{
    const enum db_kind *kind = *state;
    struct fx *fx = calloc(1, sizeof(*fx));
    struct tr_errbuf eb = {{0}};
    *state = fx;
    int rc = ut_store_open(&fx->st, *kind, 4, "test_store_vars");
    if (rc != 0)
        return rc > 0 ? 0 : -1; /* 1: the test skips */
    fx->db = fx->st.db;
    unsigned char key[KEYS_KEK_LEN];
    memset(key, 7, sizeof(key));
    if (keys_open_bytes(key, NULL, &fx->keys, &eb) != TR_OK) {
        fprintf(stderr, "setup: %s\n", eb.msg);
        return -1;
    }
    fx->a = arena_new();
    struct st_workspace in = {.org = "o", .name = "w"};
    if (store_org_create(fx->db, fx->a, "o", "o@x", NULL, NULL, NULL, &eb) !=
            TR_OK ||
        store_org_create(fx->db, fx->a, "p", "p@x", NULL, NULL, NULL, &eb) !=
            TR_OK ||
        store_project_create(fx->db, fx->a, "o", "prj", NULL, NULL, &fx->prj,
                             &eb) != TR_OK) {
        fprintf(stderr, "setup: %s\n", eb.msg);
        return -1;
    }
    in.project_id = fx->prj.id;
    if (store_ws_create(fx->db, fx->a, &in, &fx->ws, &eb) != TR_OK) {
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

static int64_t count(struct fx *fx, const char *sql)
{
    return ut_count(fx->db, fx->a, sql);
}

static const char *raw_value(struct fx *fx, const char *id)
{
    struct db_conn *c = db_acquire(fx->db);
    struct db_rows *r = NULL;
    assert_int_equal(db_q(c, fx->a, &r, NULL,
                          "SELECT value FROM variables WHERE id = $1", id),
                     TR_OK);
    db_release(c);
    assert_int_equal(r->nrows, 1);
    return db_get(r, 0, "value");
}

static struct st_var mkvar(struct fx *fx, const char *ws, const char *set,
                           const char *key, const char *value, const char *cat,
                           bool sensitive)
{
    struct st_var in = {.workspace_id = ws,
                        .varset_id = set,
                        .key = key,
                        .value = value,
                        .category = cat,
                        .sensitive = sensitive},
                  out;
    struct tr_errbuf eb = {{0}};
    tr_err e = store_var_create(fx->db, fx->keys, fx->a, &in, &out, &eb);
    if (e != TR_OK)
        fprintf(stderr, "mkvar: %s\n", eb.msg);
    assert_int_equal(e, TR_OK);
    return out;
}

static struct st_varset mkset(struct fx *fx, const char *name, bool global,
                              bool priority)
{
    struct st_varset_in in = {
        .name = name, .global = global, .priority = priority};
    struct st_varset out;
    assert_int_equal(
        store_varset_create(fx->db, fx->keys, fx->a, "o", &in, &out, NULL),
        TR_OK);
    return out;
}

static void test_var_crud(void **state)
{
    struct fx *fx = fixture(state);
    struct st_var v = mkvar(fx, fx->ws.id, NULL, "region", "eu", "terraform",
                            false),
                  got;
    assert_true(strncmp(v.id, "var-", 4) == 0);
    assert_string_equal(v.value, "eu");
    assert_string_equal(v.description, "");
    assert_int_equal(strlen(v.version_id), 40);
    assert_int_equal(store_var_get(fx->db, fx->a, v.id, &got, NULL), TR_OK);
    assert_string_equal(got.key, "region");
    assert_string_equal(got.value, "eu");
    assert_string_equal(got.workspace_id, fx->ws.id);
    assert_null(got.varset_id);
    assert_string_equal(got.version_id, v.version_id);
    /* duplicate key and category; same key as env is fine */
    struct st_var in = {
        .workspace_id = fx->ws.id, .key = "region", .category = "terraform"};
    struct tr_errbuf eb = {{0}};
    assert_int_equal(store_var_create(fx->db, fx->keys, fx->a, &in, NULL, &eb),
                     TR_ERR_INVALID);
    assert_non_null(strstr(eb.msg, "already been taken"));
    mkvar(fx, fx->ws.id, NULL, "region", "us", "env", false);
    /* unknown owner */
    in.workspace_id = "ws-nope";
    assert_int_equal(store_var_create(fx->db, fx->keys, fx->a, &in, NULL, NULL),
                     TR_ERR_NOT_FOUND);
    /* update: every write changes version_id, even an empty one */
    struct st_var_update u = {.hcl = -1, .sensitive = -1};
    struct st_var after;
    assert_int_equal(
        store_var_update(fx->db, fx->keys, fx->a, v.id, &u, &after, NULL),
        TR_OK);
    assert_string_not_equal(after.version_id, v.version_id);
    assert_string_equal(after.value, "eu");
    u = (struct st_var_update){.key = "zone",
                               .value = "eu-1",
                               .hcl = 1,
                               .description = "d",
                               .sensitive = -1};
    assert_int_equal(
        store_var_update(fx->db, fx->keys, fx->a, v.id, &u, &after, NULL),
        TR_OK);
    assert_string_equal(after.key, "zone");
    assert_string_equal(after.value, "eu-1");
    assert_true(after.hcl);
    assert_string_equal(after.description, "d");
    /* renaming onto an existing key+category */
    u = (struct st_var_update){
        .key = "region", .category = "env", .hcl = -1, .sensitive = -1};
    assert_int_equal(
        store_var_update(fx->db, fx->keys, fx->a, v.id, &u, NULL, NULL),
        TR_ERR_INVALID);
    struct st_var *list = NULL;
    int n = 0;
    assert_int_equal(
        store_var_list(fx->db, fx->a, fx->ws.id, NULL, &list, &n, NULL), TR_OK);
    assert_int_equal(n, 2);
    /* creation order, but the two were made within a millisecond or so:
     * only the set is certain */
    assert_true((strcmp(list[0].key, "zone") == 0 &&
                 strcmp(list[1].key, "region") == 0) ||
                (strcmp(list[0].key, "region") == 0 &&
                 strcmp(list[1].key, "zone") == 0));
    assert_int_equal(store_var_delete(fx->db, fx->a, v.id, NULL), TR_OK);
    assert_int_equal(store_var_delete(fx->db, fx->a, v.id, NULL),
                     TR_ERR_NOT_FOUND);
    assert_int_equal(store_var_get(fx->db, fx->a, v.id, &got, NULL),
                     TR_ERR_NOT_FOUND);
    u = (struct st_var_update){.hcl = -1, .sensitive = -1};
    assert_int_equal(
        store_var_update(fx->db, fx->keys, fx->a, "var-x", &u, NULL, NULL),
        TR_ERR_NOT_FOUND);
}

static void test_sensitive(void **state)
{
    struct fx *fx = fixture(state);
    struct st_var v = mkvar(fx, fx->ws.id, NULL, "password", "correct-horse",
                            "terraform", true),
                  got;
    assert_null(v.value);
    assert_true(v.sensitive);
    const char *raw = raw_value(fx, v.id);
    assert_true(envelope_is_sealed(raw));
    assert_null(strstr(raw, "correct-horse"));
    assert_int_equal(store_var_get(fx->db, fx->a, v.id, &got, NULL), TR_OK);
    assert_null(got.value);
    /* no way back */
    struct st_var_update u = {.hcl = -1, .sensitive = 0};
    assert_int_equal(
        store_var_update(fx->db, fx->keys, fx->a, v.id, &u, NULL, NULL),
        TR_ERR_INVALID);
    /* a new value is sealed too; keeping sensitive=true is fine */
    u = (struct st_var_update){
        .value = "battery-staple", .hcl = -1, .sensitive = 1};
    assert_int_equal(
        store_var_update(fx->db, fx->keys, fx->a, v.id, &u, &got, NULL), TR_OK);
    assert_null(got.value);
    raw = raw_value(fx, v.id);
    assert_null(strstr(raw, "battery"));
    /* an update without value keeps the sealed value as it is */
    u = (struct st_var_update){.description = "x", .hcl = -1, .sensitive = -1};
    assert_int_equal(
        store_var_update(fx->db, fx->keys, fx->a, v.id, &u, NULL, NULL), TR_OK);
    assert_string_equal(raw_value(fx, v.id), raw);
    /* a plain variable turning sensitive has its value sealed */
    struct st_var p =
        mkvar(fx, fx->ws.id, NULL, "token", "plain-secret", "env", false);
    assert_string_equal(raw_value(fx, p.id), "plain-secret");
    u = (struct st_var_update){.hcl = -1, .sensitive = 1};
    assert_int_equal(
        store_var_update(fx->db, fx->keys, fx->a, p.id, &u, &got, NULL), TR_OK);
    assert_null(got.value);
    assert_true(envelope_is_sealed(raw_value(fx, p.id)));
    /* the run gets the plaintext */
    struct st_var *vars = NULL;
    int n = 0;
    assert_int_equal(
        store_vars_for_run(fx->db, fx->keys, fx->a, fx->ws.id, &vars, &n, NULL),
        TR_OK);
    assert_int_equal(n, 2);
    assert_string_equal(vars[0].key, "token"); /* env sorts first */
    assert_string_equal(vars[0].value, "plain-secret");
    assert_string_equal(vars[1].value, "battery-staple");
    assert_true(vars[1].sensitive);
    /* another key cannot open them, and says which variable */
    unsigned char other[KEYS_KEK_LEN];
    memset(other, 9, sizeof(other));
    struct keyring *k2 = NULL;
    assert_int_equal(keys_open_bytes(other, NULL, &k2, NULL), TR_OK);
    struct tr_errbuf eb = {{0}};
    assert_int_equal(
        store_vars_for_run(fx->db, k2, fx->a, fx->ws.id, &vars, &n, &eb),
        TR_ERR_CRYPTO);
    assert_non_null(strstr(eb.msg, "token"));
    assert_null(strstr(eb.msg, "plain-secret"));
    keys_close(k2);
    /* without a keyring nothing sensitive can be written */
    struct st_var in = {.workspace_id = fx->ws.id,
                        .key = "k",
                        .category = "env",
                        .sensitive = true};
    assert_int_equal(store_var_create(fx->db, NULL, fx->a, &in, NULL, NULL),
                     TR_ERR_CRYPTO);
}

static void test_varsets(void **state)
{
    struct fx *fx = fixture(state);
    struct st_workspace w2, pw;
    struct st_workspace in = {.org = "o", .name = "w2"};
    assert_int_equal(store_ws_create(fx->db, fx->a, &in, &w2, NULL), TR_OK);
    in = (struct st_workspace){.org = "p", .name = "pw"};
    assert_int_equal(store_ws_create(fx->db, fx->a, &in, &pw, NULL), TR_OK);
    const char *ws_ids[] = {fx->ws.id, w2.id};
    const char *prj_ids[] = {fx->prj.id};
    struct st_var vars[] = {
        {.key = "a", .value = "1", .category = "terraform"},
        {.key = "s", .value = "hidden", .category = "env", .sensitive = true},
    };
    struct st_varset_in si = {.name = "creds",
                              .description = "d",
                              .global = 0,
                              .priority = 1,
                              .set_workspaces = true,
                              .workspace_ids = ws_ids,
                              .nworkspaces = 2,
                              .set_projects = true,
                              .project_ids = prj_ids,
                              .nprojects = 1,
                              .vars = vars,
                              .nvars = 2};
    struct st_varset s, got;
    assert_int_equal(
        store_varset_create(fx->db, fx->keys, fx->a, "o", &si, &s, NULL),
        TR_OK);
    assert_true(strncmp(s.id, "varset-", 7) == 0);
    assert_true(s.priority);
    assert_false(s.global);
    assert_int_equal(s.var_count, 2);
    assert_int_equal(s.workspace_count, 2);
    assert_int_equal(s.project_count, 1);
    assert_int_equal(count(fx, "SELECT count(*) AS n FROM variables"
                               " WHERE value LIKE '%hidden%'"),
                     0);
    /* duplicate name; unknown organization */
    struct st_varset_in dup = {.name = "creds", .global = -1, .priority = -1};
    assert_int_equal(
        store_varset_create(fx->db, fx->keys, fx->a, "o", &dup, NULL, NULL),
        TR_ERR_INVALID);
    assert_int_equal(
        store_varset_create(fx->db, fx->keys, fx->a, "nope", &dup, NULL, NULL),
        TR_ERR_NOT_FOUND);
    /* a workspace of another organization: nothing is created */
    const char *foreign[] = {pw.id};
    struct st_varset_in bad = {.name = "x",
                               .set_workspaces = true,
                               .workspace_ids = foreign,
                               .nworkspaces = 1};
    int64_t sets = count(fx, "SELECT count(*) AS n FROM varsets");
    assert_int_equal(
        store_varset_create(fx->db, fx->keys, fx->a, "o", &bad, NULL, NULL),
        TR_ERR_NOT_FOUND);
    assert_int_equal(count(fx, "SELECT count(*) AS n FROM varsets"), sets);
    /* link and unlink, all or nothing */
    const char *mixed[] = {w2.id, pw.id};
    assert_int_equal(
        store_varset_link(fx->db, fx->a, s.id, false, false, mixed, 2, NULL),
        TR_ERR_NOT_FOUND);
    assert_int_equal(
        store_varset_link(fx->db, fx->a, s.id, false, false, mixed, 1, NULL),
        TR_OK);
    const char **wl = NULL, **pl = NULL;
    int nw = 0, np = 0;
    assert_int_equal(
        store_varset_links(fx->db, fx->a, s.id, &wl, &nw, &pl, &np, NULL),
        TR_OK);
    assert_int_equal(nw, 1);
    assert_string_equal(wl[0], fx->ws.id);
    assert_int_equal(np, 1);
    /* adding twice is not an error */
    assert_int_equal(
        store_varset_link(fx->db, fx->a, s.id, false, true, ws_ids, 2, NULL),
        TR_OK);
    assert_int_equal(
        store_varset_link(fx->db, fx->a, s.id, false, true, ws_ids, 2, NULL),
        TR_OK);
    assert_int_equal(store_varset_get(fx->db, fx->a, s.id, &got, NULL), TR_OK);
    assert_int_equal(got.workspace_count, 2);
    /* list scopes */
    struct st_varset g = mkset(fx, "global-one", true, false);
    mkset(fx, "unlinked", false, false);
    struct st_varset *l = NULL;
    int n = 0;
    int64_t total = 0;
    assert_int_equal(store_varset_list(fx->db, fx->a, VARSET_ORG, "o", NULL, 0,
                                       20, &l, &n, &total, NULL),
                     TR_OK);
    assert_int_equal(total, 3);
    assert_string_equal(l[0].name, "creds");
    assert_int_equal(store_varset_list(fx->db, fx->a, VARSET_ORG, "o", "GLOB",
                                       0, 20, &l, &n, &total, NULL),
                     TR_OK);
    assert_int_equal(total, 1);
    assert_string_equal(l[0].id, g.id);
    assert_int_equal(store_varset_list(fx->db, fx->a, VARSET_ORG, "o", "%", 0,
                                       20, &l, &n, &total, NULL),
                     TR_OK);
    assert_int_equal(total, 0);
    assert_int_equal(store_varset_list(fx->db, fx->a, VARSET_WORKSPACE, w2.id,
                                       NULL, 0, 20, &l, &n, &total, NULL),
                     TR_OK);
    assert_int_equal(total, 2); /* creds (linked) and the global set */
    assert_int_equal(store_varset_list(fx->db, fx->a, VARSET_PROJECT,
                                       fx->prj.id, NULL, 0, 1, &l, &n, &total,
                                       NULL),
                     TR_OK);
    assert_int_equal(total, 2);
    assert_int_equal(n, 1);
    assert_int_equal(store_varset_list(fx->db, fx->a, VARSET_WORKSPACE, pw.id,
                                       NULL, 0, 20, &l, &n, &total, NULL),
                     TR_OK);
    assert_int_equal(total, 0);
    /* a global set cannot be linked; turning global drops the links */
    assert_int_equal(
        store_varset_link(fx->db, fx->a, g.id, false, true, ws_ids, 1, NULL),
        TR_ERR_INVALID);
    struct st_varset_in up = {.global = 1, .priority = -1};
    assert_int_equal(
        store_varset_update(fx->db, fx->keys, fx->a, s.id, &up, &got, NULL),
        TR_OK);
    assert_true(got.global);
    assert_int_equal(got.workspace_count, 0);
    assert_int_equal(got.project_count, 0);
    up = (struct st_varset_in){.global = -1,
                               .priority = -1,
                               .set_workspaces = true,
                               .workspace_ids = ws_ids,
                               .nworkspaces = 1};
    assert_int_equal(
        store_varset_update(fx->db, fx->keys, fx->a, s.id, &up, NULL, NULL),
        TR_ERR_INVALID);
    /* as go-tfe's UpdateWorkspaces: global false with a workspace list */
    up.global = 0;
    assert_int_equal(
        store_varset_update(fx->db, fx->keys, fx->a, s.id, &up, &got, NULL),
        TR_OK);
    assert_false(got.global);
    assert_int_equal(got.workspace_count, 1);
    up.nworkspaces = 0;
    assert_int_equal(
        store_varset_update(fx->db, fx->keys, fx->a, s.id, &up, &got, NULL),
        TR_OK);
    assert_int_equal(got.workspace_count, 0);
    /* rename onto a taken name */
    up =
        (struct st_varset_in){.name = "unlinked", .global = -1, .priority = -1};
    assert_int_equal(
        store_varset_update(fx->db, fx->keys, fx->a, s.id, &up, NULL, NULL),
        TR_ERR_INVALID);
    assert_int_equal(store_varset_update(fx->db, fx->keys, fx->a, "varset-x",
                                         &up, NULL, NULL),
                     TR_ERR_NOT_FOUND);
    /* variables of a set */
    struct st_var *vl = NULL;
    assert_int_equal(store_var_list(fx->db, fx->a, NULL, s.id, &vl, &n, NULL),
                     TR_OK);
    assert_int_equal(n, 2);
    assert_string_equal(vl[0].varset_id, s.id);
    /* delete cascades to variables and links */
    assert_int_equal(store_varset_delete(fx->db, fx->a, s.id, NULL), TR_OK);
    assert_int_equal(store_varset_delete(fx->db, fx->a, s.id, NULL),
                     TR_ERR_NOT_FOUND);
    assert_int_equal(count(fx, "SELECT count(*) AS n FROM variables"), 0);
}

static void test_cascades(void **state)
{
    struct fx *fx = fixture(state);
    mkvar(fx, fx->ws.id, NULL, "a", "1", "terraform", false);
    struct st_varset s = mkset(fx, "s", false, false);
    mkvar(fx, NULL, s.id, "b", "2", "terraform", true);
    const char *ids[] = {fx->ws.id};
    assert_int_equal(
        store_varset_link(fx->db, fx->a, s.id, false, true, ids, 1, NULL),
        TR_OK);
    assert_int_equal(store_ws_delete(fx->db, fx->a, fx->ws.id, false, NULL),
                     TR_OK);
    assert_int_equal(count(fx, "SELECT count(*) AS n FROM variables"), 1);
    assert_int_equal(count(fx, "SELECT count(*) AS n FROM varset_workspaces"),
                     0);
    /* renaming the organization keeps its sets */
    assert_int_equal(
        store_org_update(fx->db, fx->a, "o", "o2", NULL, NULL, NULL), TR_OK);
    struct st_varset got;
    assert_int_equal(store_varset_get(fx->db, fx->a, s.id, &got, NULL), TR_OK);
    assert_string_equal(got.org, "o2");
    assert_int_equal(store_org_delete(fx->db, fx->a, "o2", NULL), TR_OK);
    assert_int_equal(count(fx, "SELECT count(*) AS n FROM varsets"), 0);
    assert_int_equal(count(fx, "SELECT count(*) AS n FROM variables"), 0);
}

/* The value the run gets for terraform variable key (NULL: none). */
static const char *run_value(struct fx *fx, const char *key)
{
    struct st_var *vars = NULL;
    int n = 0;
    assert_int_equal(
        store_vars_for_run(fx->db, fx->keys, fx->a, fx->ws.id, &vars, &n, NULL),
        TR_OK);
    for (int i = 0; i < n; i++)
        if (strcmp(vars[i].key, key) == 0 &&
            strcmp(vars[i].category, "terraform") == 0)
            return vars[i].value;
    return NULL;
}

static void link1(struct fx *fx, const char *set, bool project)
{
    const char *id = project ? fx->prj.id : fx->ws.id;
    assert_int_equal(
        store_varset_link(fx->db, fx->a, set, project, true, &id, 1, NULL),
        TR_OK);
}

static void test_precedence(void **state)
{
    struct fx *fx = fixture(state);
    /* one set per level, each defining x; names chosen so that name order
     * runs against precedence where it could matter */
    struct st_varset pg = mkset(fx, "z-prio-global", true, true);
    struct st_varset pp = mkset(fx, "y-prio-project", false, true);
    struct st_varset pw = mkset(fx, "x-prio-ws", false, true);
    struct st_varset sw = mkset(fx, "w-ws", false, false);
    struct st_varset sw2 = mkset(fx, "a-ws", false, false);
    struct st_varset sp = mkset(fx, "b-project", false, false);
    struct st_varset sg = mkset(fx, "a-global", true, false);
    link1(fx, pp.id, true);
    link1(fx, pw.id, false);
    link1(fx, sw.id, false);
    link1(fx, sw2.id, false);
    link1(fx, sp.id, true);
    /* a set linked to both the workspace and its project is ws-linked */
    link1(fx, sw.id, true);
    struct st_varset unlinked = mkset(fx, "0-unlinked", false, true);
    struct st_var vpg =
        mkvar(fx, NULL, pg.id, "x", "prio-global", "terraform", true);
    struct st_var vpp =
        mkvar(fx, NULL, pp.id, "x", "prio-project", "terraform", false);
    struct st_var vpw =
        mkvar(fx, NULL, pw.id, "x", "prio-ws", "terraform", false);
    struct st_var vws =
        mkvar(fx, fx->ws.id, NULL, "x", "workspace", "terraform", false);
    struct st_var vsw2 =
        mkvar(fx, NULL, sw2.id, "x", "a-ws", "terraform", false);
    struct st_var vsw = mkvar(fx, NULL, sw.id, "x", "w-ws", "terraform", false);
    struct st_var vsp =
        mkvar(fx, NULL, sp.id, "x", "project", "terraform", false);
    mkvar(fx, NULL, sg.id, "x", "global", "terraform", false);
    mkvar(fx, NULL, unlinked.id, "x", "never", "terraform", false);
    /* other keys and categories do not interfere */
    mkvar(fx, NULL, sg.id, "only-global", "g", "terraform", false);
    mkvar(fx, NULL, pg.id, "x", "env-x", "env", false);

    const char *order[] = {"prio-global", "prio-project", "prio-ws",
                           "workspace",   "a-ws",         "w-ws",
                           "project",     "global"};
    const char *del[] = {vpg.id,  vpp.id, vpw.id, vws.id,
                         vsw2.id, vsw.id, vsp.id};
    for (int i = 0; i < 8; i++) {
        assert_string_equal(run_value(fx, "x"), order[i]);
        assert_string_equal(run_value(fx, "only-global"), "g");
        if (i < 7)
            assert_int_equal(store_var_delete(fx->db, fx->a, del[i], NULL),
                             TR_OK);
    }
    /* the env variable of the same key is resolved on its own */
    struct st_var *vars = NULL;
    int n = 0;
    assert_int_equal(
        store_vars_for_run(fx->db, fx->keys, fx->a, fx->ws.id, &vars, &n, NULL),
        TR_OK);
    assert_int_equal(n, 3);
    assert_string_equal(vars[0].category, "env");
    assert_string_equal(vars[0].value, "env-x");
    assert_string_equal(vars[1].key, "only-global");
    assert_string_equal(vars[2].key, "x");
    /* a workspace of another project sees only the global sets */
    struct st_workspace other, in = {.org = "o", .name = "other"};
    assert_int_equal(store_ws_create(fx->db, fx->a, &in, &other, NULL), TR_OK);
    assert_int_equal(
        store_vars_for_run(fx->db, fx->keys, fx->a, other.id, &vars, &n, NULL),
        TR_OK);
    assert_int_equal(n, 3);
    assert_string_equal(vars[2].value, "global");
    /* an unknown workspace has no variables */
    assert_int_equal(
        store_vars_for_run(fx->db, fx->keys, fx->a, "ws-none", &vars, &n, NULL),
        TR_OK);
    assert_int_equal(n, 0);
}

/* Lexical order among sets of one level: the first name wins, whatever
 * was written last. */
static void test_precedence_names(void **state)
{
    struct fx *fx = fixture(state);
    struct st_varset b = mkset(fx, "B_Variable_Set", false, false);
    struct st_varset a = mkset(fx, "A_Variable_Set", false, false);
    struct st_varset lower = mkset(fx, "a_lower", false, false);
    link1(fx, a.id, false);
    link1(fx, b.id, false);
    link1(fx, lower.id, false);
    mkvar(fx, NULL, lower.id, "k", "lower", "terraform", false);
    mkvar(fx, NULL, b.id, "k", "B", "terraform", false);
    mkvar(fx, NULL, a.id, "k", "A", "terraform", false);
    /* code points: 'A' (65) < 'B' (66) < 'a' (97) */
    assert_string_equal(run_value(fx, "k"), "A");
    /* among priority global sets too */
    struct st_varset g2 = mkset(fx, "g2", true, true);
    struct st_varset g1 = mkset(fx, "g1", true, true);
    mkvar(fx, NULL, g2.id, "k", "g2", "terraform", false);
    mkvar(fx, NULL, g1.id, "k", "g1", "terraform", false);
    assert_string_equal(run_value(fx, "k"), "g1");
}

static int64_t snapshot(struct fx *fx)
{
    return count(fx, "SELECT count(*) AS n FROM variables") * 1000000 +
           count(fx, "SELECT count(*) AS n FROM varsets") * 10000 +
           count(fx, "SELECT count(*) AS n FROM varset_workspaces") * 100 +
           count(fx, "SELECT count(*) AS n FROM varset_projects");
}

static void test_fault_walk(void **state)
{
    struct fx *fx = fixture(state);
    const char *ws_ids[] = {fx->ws.id};
    const char *prj_ids[] = {fx->prj.id};
    struct st_var vars[] = {
        {.key = "a", .value = "1", .category = "terraform"},
        {.key = "b", .value = "2", .category = "env", .sensitive = true},
    };
    struct st_varset_in si = {.name = "fw",
                              .set_workspaces = true,
                              .workspace_ids = ws_ids,
                              .nworkspaces = 1,
                              .set_projects = true,
                              .project_ids = prj_ids,
                              .nprojects = 1,
                              .vars = vars,
                              .nvars = 2};
    struct st_varset s;
    int64_t before = snapshot(fx);
    int n;
    for (n = 1;; n++) {
        fault_arm("db.query", n);
        tr_err e =
            store_varset_create(fx->db, fx->keys, fx->a, "o", &si, &s, NULL);
        bool fired = fault_fired();
        fault_reset();
        if (!fired) {
            assert_int_equal(e, TR_OK);
            break;
        }
        assert_int_not_equal(e, TR_OK);
        assert_int_equal(snapshot(fx), before);
        assert_true(n < 100);
    }
    /* update: replace links by none, turn priority on, add a variable */
    struct st_var more[] = {{.key = "c", .category = "terraform"}};
    struct st_varset_in up = {.global = -1,
                              .priority = 1,
                              .set_workspaces = true,
                              .nworkspaces = 0,
                              .vars = more,
                              .nvars = 1};
    before = snapshot(fx);
    for (n = 1;; n++) {
        fault_arm("db.query", n);
        struct st_varset got;
        tr_err e =
            store_varset_update(fx->db, fx->keys, fx->a, s.id, &up, &got, NULL);
        bool fired = fault_fired();
        fault_reset();
        if (!fired) {
            assert_int_equal(e, TR_OK);
            assert_true(got.priority);
            break;
        }
        assert_int_not_equal(e, TR_OK);
        assert_int_equal(snapshot(fx), before);
        struct st_varset now;
        assert_int_equal(store_varset_get(fx->db, fx->a, s.id, &now, NULL),
                         TR_OK);
        assert_false(now.priority);
        assert_true(n < 100);
    }
    /* variable update turning sensitive */
    struct st_var v = mkvar(fx, fx->ws.id, NULL, "t", "plain", "env", false);
    struct st_var_update u = {.hcl = -1, .sensitive = 1};
    for (n = 1;; n++) {
        fault_arm("db.query", n);
        tr_err e =
            store_var_update(fx->db, fx->keys, fx->a, v.id, &u, NULL, NULL);
        bool fired = fault_fired();
        fault_reset();
        if (!fired) {
            assert_int_equal(e, TR_OK);
            break;
        }
        assert_int_not_equal(e, TR_OK);
        assert_string_equal(raw_value(fx, v.id), "plain");
        assert_true(n < 100);
    }
    assert_true(envelope_is_sealed(raw_value(fx, v.id)));
}

#define BOTH(f)                                                                \
    {"sqlite/" #f, f, setup, teardown, (void *)&k_sqlite},                     \
    {                                                                          \
        "pg/" #f, f, setup, teardown, (void *)&k_pg                            \
    }

int main(void)
{
    const struct CMUnitTest tests[] = {
        BOTH(test_var_crud),   BOTH(test_sensitive),
        BOTH(test_varsets),    BOTH(test_cascades),
        BOTH(test_precedence), BOTH(test_precedence_names),
        BOTH(test_fault_walk),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
