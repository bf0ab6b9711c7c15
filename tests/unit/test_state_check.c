/*
 * test_state_check.c - unit tests for src/domain/state_check.c: state
 * validation, output and resource extraction, the serial rewrite used by
 * rollback, and the shortest-number JSON dumper.
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

#include "domain/state_check.h"

/* go-tfe's fixture (test-fixtures/state-version/terraform.tfstate), plus a
 * data source in a module. */
static const char fixture[] =
    "{\n"
    "  \"version\": 4,\n"
    "  \"terraform_version\": \"0.12.29\",\n"
    "  \"serial\": 2,\n"
    "  \"lineage\": \"b2b54b23-e7ea-5500-7b15-fcb68c1d92bb\",\n"
    "  \"outputs\": {\n"
    "    \"test_output_list_string\": {\"value\": [\"us-west-1a\"],\n"
    "      \"type\": [\"list\", \"string\"]},\n"
    "    \"test_output_string\": {\"value\": \"9023256633839603543\",\n"
    "      \"type\": \"string\", \"sensitive\": true},\n"
    "    \"test_output_object\": {\"value\": {\"foo\": \"bar\"},\n"
    "      \"type\": [\"object\", {\"foo\": \"string\"}]},\n"
    "    \"test_output_number\": {\"value\": 5, \"type\": \"number\"},\n"
    "    \"test_output_real\": {\"value\": 1000.1, \"type\": \"number\"},\n"
    "    \"test_output_bool\": {\"value\": true, \"type\": \"bool\"}\n"
    "  },\n"
    "  \"resources\": [\n"
    "    {\"mode\": \"managed\", \"type\": \"null_resource\",\n"
    "     \"name\": \"test\", \"provider\": \"provider.null\",\n"
    "     \"instances\": [{\"schema_version\": 0, \"attributes\":\n"
    "       {\"id\": \"9023256633839603543\", \"serial\": 7}}]},\n"
    "    {\"module\": \"module.net\", \"mode\": \"data\",\n"
    "     \"type\": \"terraform_remote_state\", \"name\": \"other\",\n"
    "     \"provider\": \"provider[\\\"terraform.io/builtin/terraform\\\"]\",\n"
    "     \"instances\": [{}, {}]}\n"
    "  ]\n"
    "}\n";

static void test_parse_fixture(void **state)
{
    (void)state;
    struct arena *a = arena_new();
    struct state_info si;
    struct tr_errbuf eb = {{0}};
    assert_int_equal(state_parse(a, fixture, strlen(fixture), &si, &eb), TR_OK);
    assert_int_equal(si.version, 4);
    assert_int_equal(si.serial, 2);
    assert_string_equal(si.lineage, "b2b54b23-e7ea-5500-7b15-fcb68c1d92bb");
    assert_string_equal(si.terraform_version, "0.12.29");
    assert_int_equal(si.noutputs, 6);
    assert_string_equal(si.outputs[0].name, "test_output_list_string");
    assert_string_equal(si.outputs[0].type, "array");
    assert_string_equal(si.outputs[0].detailed_type, "[\"list\",\"string\"]");
    assert_string_equal(si.outputs[0].value, "[\"us-west-1a\"]");
    assert_false(si.outputs[0].sensitive);
    assert_true(si.outputs[1].sensitive);
    assert_string_equal(si.outputs[1].type, "string");
    assert_string_equal(si.outputs[1].value, "\"9023256633839603543\"");
    assert_string_equal(si.outputs[2].type, "object");
    assert_string_equal(si.outputs[2].detailed_type,
                        "[\"object\",{\"foo\":\"string\"}]");
    assert_string_equal(si.outputs[3].value, "5");
    assert_string_equal(si.outputs[3].type, "number");
    assert_string_equal(si.outputs[4].value, "1000.1");
    assert_string_equal(si.outputs[5].type, "boolean");
    assert_int_equal(si.nresources, 2);
    assert_string_equal(
        si.resources,
        "[{\"name\":\"test\",\"type\":\"null_resource\",\"count\":1,"
        "\"module\":\"root\",\"provider\":\"provider.null\"},"
        "{\"name\":\"other\",\"type\":\"data.terraform_remote_state\","
        "\"count\":2,\"module\":\"module.net\",\"provider\":"
        "\"provider[\\\"terraform.io/builtin/terraform\\\"]\"}]");
    arena_destroy(a);
}

static void test_parse_minimal(void **state)
{
    (void)state;
    struct arena *a = arena_new();
    struct state_info si;
    const char *s = "{\"version\":4,\"serial\":0,\"lineage\":\"x\"}";
    assert_int_equal(state_parse(a, s, strlen(s), &si, NULL), TR_OK);
    assert_int_equal(si.noutputs, 0);
    assert_int_equal(si.nresources, 0);
    assert_string_equal(si.resources, "[]");
    assert_string_equal(si.terraform_version, "");
    /* an output without a type gets a null detailed type */
    s = "{\"version\":4,\"serial\":1,\"lineage\":\"x\","
        "\"outputs\":{\"o\":{\"value\":null}}}";
    assert_int_equal(state_parse(a, s, strlen(s), &si, NULL), TR_OK);
    assert_string_equal(si.outputs[0].detailed_type, "null");
    assert_string_equal(si.outputs[0].type, "null");
    arena_destroy(a);
}

static void test_parse_rejects(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "",
        "not json",
        "[1,2]",
        "\"str\"",
        "{\"version\":4,\"serial\":1",
        "{\"serial\":1,\"lineage\":\"x\"}",
        "{\"version\":3,\"serial\":1,\"lineage\":\"x\"}",
        "{\"version\":\"4\",\"serial\":1,\"lineage\":\"x\"}",
        "{\"version\":4,\"lineage\":\"x\"}",
        "{\"version\":4,\"serial\":\"1\",\"lineage\":\"x\"}",
        "{\"version\":4,\"serial\":-1,\"lineage\":\"x\"}",
        "{\"version\":4,\"serial\":1.5,\"lineage\":\"x\"}",
        "{\"version\":4,\"serial\":1,\"lineage\":7}",
        "{\"version\":4,\"serial\":1,\"terraform_version\":1}",
        "{\"version\":4,\"serial\":1,\"outputs\":[]}",
        "{\"version\":4,\"serial\":1,\"outputs\":{\"o\":1}}",
        "{\"version\":4,\"serial\":1,\"outputs\":{\"o\":"
        "{\"type\":\"string\"}}}",
        "{\"version\":4,\"serial\":1,\"outputs\":{\"o\":{\"value\":1,"
        "\"sensitive\":\"yes\"}}}",
        "{\"version\":4,\"serial\":1,\"outputs\":{\"o\":{\"value\":1,"
        "\"type\":5}}}",
        "{\"version\":4,\"serial\":1,\"resources\":{}}",
        "{\"version\":4,\"serial\":1,\"resources\":[{\"name\":\"n\"}]}",
        "{\"version\":4,\"serial\":1,\"resources\":[{\"name\":\"n\","
        "\"type\":\"t\",\"instances\":{}}]}",
    };
    struct arena *a = arena_new();
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct state_info si;
        struct tr_errbuf eb = {{0}};
        tr_err e = state_parse(a, bad[i], strlen(bad[i]), &si, &eb);
        if (e != TR_ERR_INVALID)
            fail_msg("accepted bad state %zu: %s", i, bad[i]);
        assert_true(eb.msg[0] != '\0');
    }
    arena_destroy(a);
}

/* cty numbers are arbitrary precision: a state with a huge integer must
 * still be accepted. */
static void test_parse_big_numbers(void **state)
{
    (void)state;
    struct arena *a = arena_new();
    struct state_info si;
    const char *s = "{\"version\":4,\"serial\":12,\"lineage\":\"x\","
                    "\"outputs\":{\"big\":{\"value\":"
                    "123456789012345678901234567890,\"type\":\"number\"}}}";
    assert_int_equal(state_parse(a, s, strlen(s), &si, NULL), TR_OK);
    assert_int_equal(si.serial, 12);
    assert_string_equal(si.outputs[0].value, "1.2345678901234568e+29");
    arena_destroy(a);
}

static void test_parse_fd(void **state)
{
    (void)state;
    struct arena *a = arena_new();
    char path[] = "/tmp/test_state_check.XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, fixture, strlen(fixture)),
                     (ssize_t)strlen(fixture));
    assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
    struct state_info si;
    assert_int_equal(state_parse_fd(a, fd, &si, NULL), TR_OK);
    assert_int_equal(si.serial, 2);
    assert_int_equal(si.noutputs, 6);
    assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
    assert_true(state_is_json_fd(fd));
    assert_int_equal(ftruncate(fd, 10), 0);
    assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
    struct tr_errbuf eb = {{0}};
    assert_int_equal(state_parse_fd(a, fd, &si, &eb), TR_ERR_INVALID);
    assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
    assert_false(state_is_json_fd(fd));
    /* the overflow retry rereads from where the parse started */
    const char *big = "xx{\"version\":4,\"serial\":3,\"outputs\":{\"b\":"
                      "{\"value\":99999999999999999999}}}";
    assert_int_equal(ftruncate(fd, 0), 0);
    assert_int_equal(pwrite(fd, big, strlen(big), 0), (ssize_t)strlen(big));
    assert_int_equal(lseek(fd, 2, SEEK_SET), 2);
    assert_int_equal(state_parse_fd(a, fd, &si, NULL), TR_OK);
    assert_int_equal(si.serial, 3);
    assert_string_equal(si.outputs[0].value, "1e+20");
    close(fd);
    unlink(path);
    arena_destroy(a);
}

static void test_is_json(void **state)
{
    (void)state;
    assert_true(state_is_json("{}", 2));
    assert_true(state_is_json("[1, 2.5, \"x\"]", 13));
    assert_true(state_is_json("99999999999999999999999", 23));
    assert_false(state_is_json("{", 1));
    assert_false(state_is_json("", 0));
}

static void test_with_serial(void **state)
{
    (void)state;
    struct arena *a = arena_new();
    char *out = NULL;
    size_t len = 0;
    assert_int_equal(
        state_with_serial(a, fixture, strlen(fixture), 41, &out, &len, NULL),
        TR_OK);
    assert_int_equal(len, strlen(fixture) + 1);
    /* exactly one change: the top-level serial; the nested "serial": 7
     * inside a resource is untouched */
    const char *p = strstr(fixture, "\"serial\": 2");
    size_t pre = (size_t)(p - fixture) + strlen("\"serial\": ");
    assert_memory_equal(out, fixture, pre);
    assert_memory_equal(out + pre, "41", 2);
    assert_string_equal(out + pre + 2, fixture + pre + 1);
    assert_non_null(strstr(out, "\"serial\": 7"));
    struct state_info si;
    assert_int_equal(state_parse(a, out, len, &si, NULL), TR_OK);
    assert_int_equal(si.serial, 41);

    /* keys inside strings and the last duplicate */
    const char *s = "{\"a\":\"\\\"serial\\\": 1\",\"serial\":1,"
                    "\"serial\" : 3 }";
    assert_int_equal(state_with_serial(a, s, strlen(s), 9, &out, &len, NULL),
                     TR_OK);
    assert_string_equal(out, "{\"a\":\"\\\"serial\\\": 1\",\"serial\":1,"
                             "\"serial\" : 9 }");

    static const char *const bad[] = {
        "",
        "[]",
        "{\"serial\":\"1\"}",
        "{\"version\":4}",
        "{\"serial\":",
        "{\"x\":[1,2,{\"serial\":1}]}",
        "{\"a\":\"unterminated}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(
            state_with_serial(a, bad[i], strlen(bad[i]), 1, &out, &len, NULL),
            TR_ERR_INVALID);
    arena_destroy(a);
}

static void test_resource_attrs(void **state)
{
    (void)state;
    struct arena *a = arena_new();
    struct state_info si;
    assert_int_equal(state_parse(a, fixture, strlen(fixture), &si, NULL),
                     TR_OK);
    json_t *res, *mods, *provs;
    state_resource_attrs(si.resources, &res, &mods, &provs);
    assert_int_equal(json_array_size(res), 2);
    assert_string_equal(state_json_dump(a, mods, NULL),
                        "{\"root\":{\"null-resource\":1},\"module.net\":"
                        "{\"data.terraform-remote-state\":2}}");
    assert_string_equal(state_json_dump(a, provs, NULL),
                        "{\"provider.null\":{\"null-resource\":1},"
                        "\"provider[\\\"terraform.io/builtin/terraform\\\"]\":"
                        "{\"data.terraform-remote-state\":2}}");
    json_decref(res);
    json_decref(mods);
    json_decref(provs);
    /* garbage or NULL gives empty summaries */
    state_resource_attrs("nope", &res, &mods, &provs);
    assert_int_equal(json_array_size(res), 0);
    assert_int_equal(json_object_size(mods), 0);
    json_decref(res);
    json_decref(mods);
    json_decref(provs);
    state_resource_attrs(NULL, &res, &mods, &provs);
    assert_int_equal(json_array_size(res), 0);
    json_decref(res);
    json_decref(mods);
    json_decref(provs);
    arena_destroy(a);
}

/* The remembered texts (state_attrs_memo.c) are the ones computed from
 * each column, however many columns share its slots, and the same when
 * asked again. */
static void test_attrs_text_memo(void **state)
{
    (void)state;
    struct arena *a = arena_new();
    for (int round = 0; round < 2; round++)
        for (int i = 0; i < 300; i++) {
            const char *col = arena_printf(
                a,
                "[{\"module\":\"module.m%d\",\"type\":\"null_resource\","
                "\"provider\":\"provider.null\",\"count\":%d}]",
                i % 150, i);
            char *text[3];
            size_t len[3];
            state_attrs_text(a, col, text, len);
            json_t *tree[3];
            state_resource_attrs(col, &tree[0], &tree[1], &tree[2]);
            for (int k = 0; k < 3; k++) {
                size_t n = 0;
                assert_string_equal(text[k], state_json_dump(a, tree[k], &n));
                assert_int_equal(len[k], n);
                json_decref(tree[k]);
            }
        }
    char *text[3];
    size_t len[3];
    state_attrs_text(a, NULL, text, len);
    assert_string_equal(text[0], "[]");
    assert_string_equal(text[1], "{}");
    arena_destroy(a);
}

static void test_dump(void **state)
{
    (void)state;
    struct arena *a = arena_new();
    json_t *j =
        json_pack("{s:f,s:f,s:f,s:I,s:s,s:b,s:n,s:[f,f]}", "a", 1000.1, "b",
                  0.1 + 0.2, "c", 5.0, "d", (json_int_t)-9007199254740993LL,
                  "e", "q\"\\\n\t\x01\xc3\xa9", "f", 1, "g", "h", 1e300, -0.5);
    size_t len = 0;
    char *s = state_json_dump(a, j, &len);
    assert_string_equal(s, "{\"a\":1000.1,\"b\":0.30000000000000004,"
                           "\"c\":5,\"d\":-9007199254740993,"
                           "\"e\":\"q\\\"\\\\\\n\\t\\u0001\xc3\xa9\","
                           "\"f\":true,\"g\":null,"
                           "\"h\":[1e+300,-0.5]}");
    assert_int_equal(len, strlen(s));
    json_decref(j);
    /* strings with NUL survive */
    j = json_stringn("a\0b", 3);
    assert_string_equal(state_json_dump(a, j, NULL), "\"a\\u0000b\"");
    json_decref(j);
    /* round trip through the loader */
    j = state_json_load("[0.1,{\"k\":[]},\"\"]", 17);
    assert_non_null(j);
    assert_string_equal(state_json_dump(a, j, NULL), "[0.1,{\"k\":[]},\"\"]");
    json_decref(j);
    assert_null(state_json_load("[", 1));
    arena_destroy(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_fixture),
        cmocka_unit_test(test_parse_minimal),
        cmocka_unit_test(test_parse_rejects),
        cmocka_unit_test(test_parse_big_numbers),
        cmocka_unit_test(test_parse_fd),
        cmocka_unit_test(test_is_json),
        cmocka_unit_test(test_with_serial),
        cmocka_unit_test(test_resource_attrs),
        cmocka_unit_test(test_attrs_text_memo),
        cmocka_unit_test(test_dump),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
