/*
 * test_env_names.c - unit tests for src/core/env_names.c: every name
 * Terrace sets for a run is refused with "it is set by Terrace for every
 * run", the loader, C library, shell and interpreter names are refused
 * with their own reason, prefixes match only at the start and only in
 * their exact case, and the names real configurations use pass.
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>

#include "core/env_names.h"

#define N(arr) (sizeof(arr) / sizeof((arr)[0]))

/* name is refused and the reason holds want. */
static void is_refused(const char *name, const char *want)
{
    const char *why = NULL;
    if (!env_name_refused(name, &why))
        fail_msg("%s was allowed", name);
    if (why == NULL || strstr(why, want) == NULL)
        fail_msg("%s: reason \"%s\", want \"%s\"", name, why ? why : "(null)",
                 want);
    /* the reason completes "NAME cannot be ...: ": lower-case, no period */
    assert_true(why[0] >= 'a' && why[0] <= 'z');
    assert_int_not_equal(why[strlen(why) - 1], '.');
    assert_true(env_name_refused(name, NULL));
}

static void is_allowed(const char *name)
{
    const char *why = "untouched";
    if (env_name_refused(name, &why))
        fail_msg("%s was refused: %s", name, why);
    assert_string_equal(why, "untouched");
}

static void test_set_by_terrace(void **state)
{
    (void)state;
    static const char *const ours[] = {
        "TF_CLI_CONFIG_FILE",
        "TF_FORCE_LOCAL_BACKEND",
        "TFE_RUN_ID",
        "TF_IN_AUTOMATION",
        "TF_INPUT",
        "PATH",
        "HOME",
        "TMPDIR",
        "TF_PLUGIN_CACHE_DIR",
        "TF_PLUGIN_CACHE_MAY_BREAK_DEPENDENCY_LOCK_FILE",
        "SSL_CERT_FILE",
    };
    for (size_t i = 0; i < N(ours); i++) {
        const char *why = NULL;
        assert_true(env_name_refused(ours[i], &why));
        assert_string_equal(why, "it is set by Terrace for every run");
    }
    /* only the exact names */
    is_allowed("PATH_EXTRA");
    is_allowed("MYPATH");
    is_allowed("HOMEDIR");
    is_allowed("TF_INPUT_FILE");
    is_allowed("SSL_CERT_DIR");
    is_allowed("TF_CLI_CONFIG_FILE_X");
}

static void test_loader_and_libc(void **state)
{
    (void)state;
    static const char *const loader[] = {
        "LD_PRELOAD", "LD_LIBRARY_PATH", "LD_AUDIT",
        "LD_DEBUG",   "LD_BIND_NOW",     "LD_PROFILE",
        "LD_",        "LD_anything",     "LD_SHOW_AUXV",
    };
    for (size_t i = 0; i < N(loader); i++)
        is_refused(loader[i], "dynamic loader");
    static const char *const libc[] = {
        "GCONV_PATH", "GETCONF_DIR",  "GLIBC_TUNABLES", "HOSTALIASES",
        "LOCPATH",    "NLSPATH",      "NIS_PATH",       "RESOLV_HOST_CONF",
        "TZDIR",      "MALLOC_TRACE", "MALLOC_CHECK_",  "MALLOC_ARENA_MAX",
    };
    for (size_t i = 0; i < N(libc); i++)
        is_refused(libc[i], "C library");
    /* a prefix matches at the start, in its case, and with its '_' */
    is_allowed("LD");
    is_allowed("LDFLAGS");
    is_allowed("ld_preload");
    is_allowed("Ld_PRELOAD");
    is_allowed("OLD_PRELOAD");
    is_allowed("X_LD_PRELOAD");
    is_allowed("MALLOC");
    is_allowed("MY_MALLOC_LIMIT");
    /* DNS tuning and locale names stay */
    is_allowed("LOCALDOMAIN");
    is_allowed("RES_OPTIONS");
    is_allowed("TZ");
    is_allowed("LANG");
    is_allowed("LC_ALL");
}

static void test_shells_and_interpreters(void **state)
{
    (void)state;
    static const char *const shells[] = {
        "BASH_ENV",  "ENV", "BASH_FUNC_ls%%", "BASH_FUNC_x()", "BASHOPTS",
        "SHELLOPTS", "PS4", "PROMPT_COMMAND", "IFS",
    };
    for (size_t i = 0; i < N(shells); i++)
        is_refused(shells[i], "shells");
    static const char *const interp[] = {
        "PYTHONSTARTUP",    "PYTHONPATH",        "PYTHONHOME",
        "PERL5OPT",         "PERL5LIB",          "PERLLIB",
        "PERL5DB",          "RUBYOPT",           "RUBYLIB",
        "NODE_OPTIONS",     "JAVA_TOOL_OPTIONS", "_JAVA_OPTIONS",
        "JDK_JAVA_OPTIONS",
    };
    for (size_t i = 0; i < N(interp); i++)
        is_refused(interp[i], "interpreter");
    is_allowed("ENVIRONMENT");
    is_allowed("APP_ENV");
    is_allowed("BASH");
    is_allowed("PS1");
    is_allowed("PYTHONWARNINGS");
    is_allowed("PYTHONUNBUFFERED");
    is_allowed("NODE_ENV");
}

static void test_names_users_need(void **state)
{
    (void)state;
    static const char *const ok[] = {
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_REGION",
        "AWS_PROFILE",
        "GOOGLE_CREDENTIALS",
        "GOOGLE_PROJECT",
        "ARM_CLIENT_ID",
        "ARM_SUBSCRIPTION_ID",
        "TF_VAR_region",
        "TF_VAR_LD_PRELOAD",
        "TF_LOG",
        "TF_LOG_PROVIDER",
        "TF_CLI_ARGS",
        "TF_CLI_ARGS_plan",
        "TF_TOKEN_app_terraform_io",
        "TF_WORKSPACE",
        "GIT_SSH_COMMAND",
        "GIT_CONFIG_COUNT",
        "GIT_CONFIG_KEY_0",
        "GITHUB_TOKEN",
        "VAULT_ADDR",
        "KUBECONFIG",
        "HTTPS_PROXY",
        "NO_PROXY",
        "x",
    };
    for (size_t i = 0; i < N(ok); i++)
        is_allowed(ok[i]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_set_by_terrace),
        cmocka_unit_test(test_loader_and_libc),
        cmocka_unit_test(test_shells_and_interpreters),
        cmocka_unit_test(test_names_users_need),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
