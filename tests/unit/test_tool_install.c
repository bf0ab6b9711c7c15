/*
 * test_tool_install.c - unit tests for src/executor/tool_install.c: the
 * release URLs a mirror template gives (the official Terraform layout and
 * OpenTofu's), and the templates and versions it refuses before anything
 * is downloaded.  Installing itself is tested against a loopback mirror
 * in tests/api/test_tool_install.py.
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>
#include <sys/utsname.h>

#include "core/arena.h"
#include "executor/tool_install.h"

static const char *arch(void)
{
    struct utsname u;
    uname(&u);
    return strcmp(u.machine, "x86_64") == 0 ? "amd64" : "arm64";
}

static void test_layouts(void **state)
{
    (void)state;
    struct arena *a = arena_new();
    const char *prod = NULL, *zip = NULL, *sums = NULL;
    assert_int_equal(
        tool_install_urls(a,
                          "https://releases.hashicorp.com/terraform/"
                          "{version}/terraform_{version}_{os}_{arch}.zip",
                          "1.5.7", &prod, &zip, &sums, NULL),
        TR_OK);
    assert_string_equal(prod, "terraform");
    assert_string_equal(zip, arena_printf(a,
                                          "https://releases.hashicorp.com/"
                                          "terraform/1.5.7/terraform_1.5.7_"
                                          "linux_%s.zip",
                                          arch()));
    assert_string_equal(sums, "https://releases.hashicorp.com/terraform/"
                              "1.5.7/terraform_1.5.7_SHA256SUMS");
    assert_int_equal(
        tool_install_urls(a,
                          "https://github.com/opentofu/opentofu/releases/"
                          "download/v{version}/tofu_{version}_{os}_{arch}.zip",
                          "1.10.0-rc1", &prod, &zip, &sums, NULL),
        TR_OK);
    assert_string_equal(prod, "tofu");
    assert_string_equal(sums, "https://github.com/opentofu/opentofu/releases/"
                              "download/v1.10.0-rc1/"
                              "tofu_1.10.0-rc1_SHA256SUMS");
    arena_destroy(a);
}

static void test_refused(void **state)
{
    (void)state;
    struct arena *a = arena_new();
    const char *prod = NULL, *zip = NULL, *sums = NULL;
    static const char *const bad_versions[] = {
        "latest", "1.5",    "1.5.7.1",     "~> 1.5", "1.5.7+build",
        "01.5.x", "1.5.7-", "1.5.7/../..", "",       "1.5.7-a/b",
    };
    const char *tpl = "http://127.0.0.1:1/t/{version}/terraform_{version}"
                      "_{os}_{arch}.zip";
    for (size_t i = 0; i < sizeof(bad_versions) / sizeof(*bad_versions); i++)
        assert_int_equal(tool_install_urls(a, tpl, bad_versions[i], &prod, &zip,
                                           &sums, NULL),
                         TR_ERR_INVALID);
    static const char *const bad_templates[] = {
        "ftp://x/terraform_{version}.zip",
        "file:///srv/terraform_{version}.zip",
        "https://x/{version}/terraform_{version}_{platform}.zip",
        "https://x/{version}/terraform.zip",
        "https://x/{version}/_{version}.zip",
        "https://x/{version}/terraform_{version}.tar.gz",
        "https://x/{version}/Terraform_{version}.zip",
        "https://x/{version/terraform_{version}.zip",
    };
    for (size_t i = 0; i < sizeof(bad_templates) / sizeof(*bad_templates); i++)
        assert_int_equal(tool_install_urls(a, bad_templates[i], "1.5.7", &prod,
                                           &zip, &sums, NULL),
                         TR_ERR_CONFIG);
    assert_false(tool_install_enabled("off"));
    assert_false(tool_install_enabled(""));
    assert_false(tool_install_enabled(NULL));
    assert_true(tool_install_enabled(tpl));
    /* installing with installs off touches nothing */
    struct tool_install_req req = {
        .mirror = "off", .dir = "/nonexistent", .version = "1.5.7"};
    const char *path = NULL, *sha = NULL;
    assert_int_equal(tool_install(a, &req, &path, &sha, NULL), TR_ERR_CONFIG);
    arena_destroy(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_layouts),
        cmocka_unit_test(test_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
