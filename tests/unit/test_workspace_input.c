/*
 * test_workspace_input.c - unit tests for src/api/workspace_input.c's
 * settings view: api_ws_settings_write(), which reads the stored settings
 * text without building a tree, must give the same members as
 * api_ws_settings_view() (the tree) followed by can-queue-destroy-plan,
 * for stored, partial, empty and broken settings.
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

#include "api/workspaces_int.h"

/* The object the tree gives for text, as compact JSON (malloc'd). */
static char *tree_text(const char *text)
{
    json_t *v = api_ws_settings_view(text);
    json_object_set(v, "can-queue-destroy-plan",
                    json_object_get(v, "allow-destroy-plan"));
    char *s = json_dumps(v, JSON_COMPACT);
    json_decref(v);
    return s;
}

/* The writer's members for text, as an object (malloc'd by buf). */
static void write_text(const char *text, struct buf *b)
{
    buf_init(b, 0);
    struct jw w;
    jw_init(&w, b);
    jw_obj(&w);
    api_ws_settings_write(&w, text);
    jw_obj_end(&w);
    assert_int_equal(jw_error(&w), TR_OK);
}

/* Stored values are copied as written: an escape jansson would not write
 * ("\u00e9" for an e-acute) stays, so such text is compared as values. */
static void check_values(const char *text)
{
    struct buf b;
    write_text(text, &b);
    char *want = tree_text(text);
    json_t *got = json_loads(b.data, 0, NULL);
    json_t *exp = json_loads(want, 0, NULL);
    assert_non_null(got);
    assert_true(json_equal(got, exp));
    json_decref(got);
    json_decref(exp);
    free(want);
    buf_free(&b);
}

/* Byte for byte, as for all text jansson wrote. */
static void check(const char *text)
{
    struct buf b;
    write_text(text, &b);
    char *want = tree_text(text);
    assert_string_equal(b.data, want);
    free(want);
    buf_free(&b);
}

static void test_same_as_tree(void **state)
{
    (void)state;
    check(NULL);
    check("{}");
    check("{\"setting-overwrites\":{\"agent-pool\":false,\"execution-mode\":"
          "true}}");
    check_values("{\"source-url\":\"https://e.example/\\u00e9\"}");
    check("{\"allow-destroy-plan\":false,\"auto-destroy-at\":\"2030-01-01T00:"
          "00:00Z\",\"queue-all-runs\":true,\"source-name\":null,\"source-"
          "url\":\"https://e.example/\\u0001 \\\"q\\\" \\\\ caf\xc3\xa9\","
          "\"trigger-patterns\":[\"a/**\",\"b\\\"{}[],:\"],\"trigger-"
          "prefixes\":[]}");
    /* unknown keys, nested values and a key given twice (last wins) */
    check("{\"zz\":{\"a\":[1,2,{\"b\":\"}\"}]},\"speculative-enabled\":false,"
          "\"speculative-enabled\":true,\"n\":-1.5e3}");
    /* spaces as another writer might leave them */
    check("{ \"allow-destroy-plan\" : false , \"trigger-prefixes\":[\"x\"] }");
    /* setting-overwrites that is not an object */
    check("{\"setting-overwrites\":true}");
    check("{\"setting-overwrites\":null}");
}

static void test_broken_text_gives_defaults(void **state)
{
    (void)state;
    check("");
    check("[]");
    check("null");
    check("{\"allow-destroy-plan\":false");
    check("{\"allow-destroy-plan\":");
    check("{\"allow-destroy-plan\" false}");
    check("{\"allow-destroy-plan\":\"unterminated}");
    check("{allow-destroy-plan:false}");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_same_as_tree),
        cmocka_unit_test(test_broken_text_gives_defaults),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
