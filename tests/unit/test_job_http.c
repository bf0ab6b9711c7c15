/*
 * test_job_http.c - unit tests for the parts of src/executor/job_http.c
 * that stand alone: reading a claimed job from the primaries' JSON, and
 * the tool cache (a binary is installed only when it hashes to the
 * registered checksum; a cached one that no longer does is dropped; a
 * version or checksum that could escape the cache directory is refused).
 * The requests themselves are tested against a real cluster in
 * tests/api/test_secondary.py.
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "executor/executor_int.h"
#include "executor/job_http.h"
#include "unit_util.h"

/* a well-formed checksum that is not TOOL_TEXT's */
#define TOOL_TEXT "#!/bin/sh\necho tofu\n"
#define TOOL_SHA                                                               \
    "2b0a2a4d1c9b2f1e2f0a4a2e4e0e3b8b4c6e2b9a3d9f7e5c1a0b8d6c4e2f0a1b"

static const char full_job[] =
    "{\"id\":\"job-1\",\"phase\":\"apply\",\"run_id\":\"run-1\","
    "\"phase_id\":\"apply-1\",\"org\":\"acme\",\"org_id\":\"org-1\","
    "\"workspace\":\"ws\",\"workspace_id\":\"ws-1\",\"cv_id\":\"cv-1\","
    "\"working_directory\":\"infra\",\"tool_version\":\"1.10.10\","
    "\"tool_sha256\":\"" TOOL_SHA "\",\"token\":\"secret\","
    "\"api_url\":\"https://lb:8443\",\"speculative\":false,"
    "\"is_destroy\":true,\"refresh\":true,\"refresh_only\":false,"
    "\"save_plan\":true,\"structured\":true,\"want_schemas\":false,"
    "\"targets\":[\"a.b\",\"c.d\"],\"replaces\":[\"e.f\"],"
    "\"vars\":[{\"key\":\"k\",\"value\":\"v\",\"env\":true,\"hcl\":false,"
    "\"sensitive\":true},{\"key\":\"n\",\"value\":null}],"
    "\"timeout_s\":600}";

static tr_err parse(struct arena *a, const char *text, struct job *j,
                    struct tr_errbuf *eb)
{
    json_t *o = json_loads(text, 0, NULL);
    tr_err e = job_http_parse_job(a, o, j, eb);
    json_decref(o);
    return e;
}

static void test_parse_full(void **state)
{
    (void)state;
    struct arena *a = arena_new();
    struct job j;
    struct tr_errbuf eb = {{0}};
    assert_int_equal(parse(a, full_job, &j, &eb), TR_OK);
    assert_string_equal(j.id, "job-1");
    assert_int_equal(j.phase, JOB_APPLY);
    assert_string_equal(j.phase_id, "apply-1");
    assert_string_equal(j.org_id, "org-1");
    assert_string_equal(j.working_directory, "infra");
    assert_string_equal(j.tool_sha256, TOOL_SHA);
    assert_string_equal(j.api_url, "https://lb:8443");
    assert_true(j.is_destroy && j.refresh && j.save_plan && j.structured);
    assert_false(j.speculative || j.refresh_only || j.want_schemas);
    assert_int_equal(j.ntargets, 2);
    assert_string_equal(j.targets[1], "c.d");
    assert_int_equal(j.nreplaces, 1);
    assert_int_equal(j.nvars, 2);
    assert_string_equal(j.vars[0].key, "k");
    assert_true(j.vars[0].env && j.vars[0].sensitive && !j.vars[0].hcl);
    assert_string_equal(j.vars[1].value, "");
    assert_int_equal(j.timeout_s, 600);
    /* no paths travel: the node supplies them */
    assert_null(j.tool_path);
    assert_null(j.ca_file);
    arena_destroy(a);
}

static void test_parse_minimal(void **state)
{
    (void)state;
    struct arena *a = arena_new();
    struct job j;
    struct tr_errbuf eb = {{0}};
    const char *text =
        "{\"id\":\"job-2\",\"phase\":\"plan\",\"run_id\":\"r\","
        "\"phase_id\":\"plan-2\",\"org\":\"o\",\"workspace\":\"w\","
        "\"workspace_id\":\"ws-2\",\"tool_version\":\"1.0.0\","
        "\"tool_sha256\":\"x\",\"token\":\"t\",\"api_url\":\"u\"}";
    assert_int_equal(parse(a, text, &j, &eb), TR_OK);
    assert_int_equal(j.phase, JOB_PLAN);
    assert_string_equal(j.working_directory, "");
    assert_string_equal(j.org_id, "o");
    assert_int_equal(j.nvars + j.ntargets + j.nreplaces, 0);
    assert_int_equal(j.timeout_s, 0);
    arena_destroy(a);
}

/* Each broken field is named in the message. */
static void test_parse_errors(void **state)
{
    (void)state;
    static const struct {
        const char *from, *to, *msg;
    } cases[] = {
        {"\"id\":\"job-1\",", "", "the job has no id"},
        {"\"token\":\"secret\"", "\"token\":\"\"", "the job's token is empty"},
        {"\"phase\":\"apply\"", "\"phase\":\"destroy\"",
         "the job's phase is not plan or apply"},
        {"\"is_destroy\":true", "\"is_destroy\":\"yes\"",
         "the job's is_destroy is not a boolean"},
        {"[\"a.b\",\"c.d\"]", "[\"a.b\",1]",
         "the job's targets holds a non-string"},
        {"\"timeout_s\":600", "\"timeout_s\":-1",
         "the job's timeout_s is not a non-negative integer"},
        {"{\"key\":\"n\",\"value\":null}", "{\"value\":\"x\"}",
         "the job has no key"},
        {"\"api_url\":\"https://lb:8443\"", "\"api_url\":7",
         "the job's api_url is not a string"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct arena *a = arena_new();
        const char *at = strstr(full_job, cases[i].from);
        assert_non_null(at);
        char *text = arena_printf(a, "%.*s%s%s", (int)(at - full_job), full_job,
                                  cases[i].to, at + strlen(cases[i].from));
        struct job j;
        struct tr_errbuf eb = {{0}};
        assert_int_equal(parse(a, text, &j, &eb), TR_ERR_INVALID);
        assert_string_equal(eb.msg, cases[i].msg);
        arena_destroy(a);
    }
    struct arena *a = arena_new();
    struct job j;
    struct tr_errbuf eb = {{0}};
    assert_int_equal(job_http_parse_job(a, NULL, &j, &eb), TR_ERR_INVALID);
    arena_destroy(a);
}

static char dir[64];

static int setup(void **state)
{
    (void)state;
    return ut_mkdtemp(dir, sizeof(dir), "test_job_http") ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    return ut_rmtree(dir);
}

/* The real checksum of TOOL_TEXT, computed the way the cache does. */
static const char *tool_sha(struct arena *a)
{
    char *p = arena_printf(a, "%s/probe", dir);
    assert_true(ut_write_file(p, TOOL_TEXT));
    const char *path = NULL;
    struct tr_errbuf eb = {{0}};
    /* installing under a wrong checksum says what the file hashes to */
    assert_int_equal(
        job_http_tool_install(a, dir, "0.0.1", TOOL_SHA, p, &path, &eb),
        TR_ERR_CRYPTO);
    assert_int_equal(access(p, F_OK), -1); /* tmp removed */
    const char *s = strstr(eb.msg, "has checksum ");
    assert_non_null(s);
    return arena_strndup(a, s + 13, 64);
}

static void test_tool_cache(void **state)
{
    (void)state;
    struct arena *a = arena_new();
    struct tr_errbuf eb = {{0}};
    const char *sha = tool_sha(a);
    const char *path = NULL;
    assert_int_equal(job_http_tool_cached(a, dir, "1.2.3", sha, &path, &eb),
                     TR_ERR_NOT_FOUND);
    char *tmp = arena_printf(a, "%s/.fetch-1", dir);
    assert_true(ut_write_file(tmp, TOOL_TEXT));
    assert_int_equal(
        job_http_tool_install(a, dir, "1.2.3", sha, tmp, &path, &eb), TR_OK);
    assert_string_equal(path, arena_printf(a, "%s/1.2.3-%s/tofu", dir, sha));
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0755);
    assert_int_equal(access(tmp, F_OK), -1);
    const char *again = NULL;
    assert_int_equal(job_http_tool_cached(a, dir, "1.2.3", sha, &again, &eb),
                     TR_OK);
    assert_string_equal(again, path);
    /* a cached binary changed since is dropped, to be fetched again */
    assert_true(ut_write_file(path, "#!/bin/sh\necho evil\n"));
    assert_int_equal(job_http_tool_cached(a, dir, "1.2.3", sha, &again, &eb),
                     TR_ERR_NOT_FOUND);
    assert_int_equal(access(path, F_OK), -1);
    arena_destroy(a);
}

/* Verified once when stored: the sidecar is trusted while the file keeps
 * the identity it had then; a stale or torn sidecar means hashing again. */
static void test_tool_sidecar(void **state)
{
    (void)state;
    struct arena *a = arena_new();
    struct tr_errbuf eb = {{0}};
    const char *sha = tool_sha(a);
    const char *path = NULL, *again = NULL;
    char *tmp = arena_printf(a, "%s/.fetch-2", dir);
    assert_true(ut_write_file(tmp, TOOL_TEXT));
    assert_int_equal(
        job_http_tool_install(a, dir, "2.0.0", sha, tmp, &path, &eb), TR_OK);
    char *side = arena_printf(a, "%s.sha256", path);
    char *text = NULL;
    assert_true(exec_sidecar_read(a, path, &text));
    assert_string_equal(text, sha);
    assert_int_equal(access(side, F_OK), 0);
    /* same size and times, other bytes: not hashed, so still trusted
     * (what the sidecar saves; changing the file needs the node's own
     * rights over its data dir) */
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    char *same = arena_strdup(a, TOOL_TEXT);
    same[strlen(same) - 2] ^= 1;
    int fd = open(path, O_WRONLY);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, same, strlen(same)), (ssize_t)strlen(same));
    struct timespec ts[2] = {st.st_atim, st.st_mtim};
    assert_int_equal(futimens(fd, ts), 0);
    close(fd);
    assert_int_equal(job_http_tool_cached(a, dir, "2.0.0", sha, &again, &eb),
                     TR_OK);
    /* a torn sidecar is not trusted: the file is hashed, found changed
     * and dropped */
    assert_true(ut_write_file(side, "0123"));
    assert_false(exec_sidecar_read(a, path, &text));
    assert_int_equal(job_http_tool_cached(a, dir, "2.0.0", sha, &again, &eb),
                     TR_ERR_NOT_FOUND);
    assert_int_equal(access(path, F_OK), -1);
    /* a good binary with a stale sidecar is hashed and trusted again */
    tmp = arena_printf(a, "%s/.fetch-3", dir);
    assert_true(ut_write_file(tmp, TOOL_TEXT));
    assert_int_equal(
        job_http_tool_install(a, dir, "2.0.0", sha, tmp, &path, &eb), TR_OK);
    assert_true(ut_write_file(side, "0123"));
    assert_int_equal(job_http_tool_cached(a, dir, "2.0.0", sha, &again, &eb),
                     TR_OK);
    assert_true(exec_sidecar_read(a, path, &text)); /* rewritten */
    arena_destroy(a);
}

static void test_tool_cache_names(void **state)
{
    (void)state;
    struct arena *a = arena_new();
    struct tr_errbuf eb = {{0}};
    const char *sha = tool_sha(a);
    const char *path = NULL;
    const char *bad_versions[] = {"", "../1.0", ".hidden", "1.0/x", "1 0"};
    for (size_t i = 0; i < sizeof(bad_versions) / sizeof(char *); i++)
        assert_int_equal(
            job_http_tool_cached(a, dir, bad_versions[i], sha, &path, &eb),
            TR_ERR_INVALID);
    assert_int_equal(
        job_http_tool_cached(a, dir, "1.0.0", "../../etc", &path, &eb),
        TR_ERR_INVALID);
    char upper[65];
    for (int i = 0; i < 64; i++)
        upper[i] = (char)(sha[i] >= 'a' ? sha[i] - 32 : sha[i]);
    upper[64] = '\0';
    assert_int_equal(job_http_tool_cached(a, dir, "1.0.0", upper, &path, &eb),
                     TR_ERR_INVALID);
    /* a pre-release or build suffix is a fine name */
    assert_int_equal(
        job_http_tool_cached(a, dir, "1.11.0-beta1+x", sha, &path, &eb),
        TR_ERR_NOT_FOUND);
    arena_destroy(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_full),
        cmocka_unit_test(test_parse_minimal),
        cmocka_unit_test(test_parse_errors),
        cmocka_unit_test_setup_teardown(test_tool_cache, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tool_sidecar, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tool_cache_names, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
