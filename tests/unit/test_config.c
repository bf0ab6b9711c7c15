/*
 * test_config.c - unit tests for src/core/config.c: defaults, the
 * flags > env > file precedence, config file syntax (quotes, comments),
 * and the errors for unknown flags and keys, bad integers, bad roles.
 *
 * Every test starts with all TERRACE_* settings variables unset and a
 * fresh temporary directory for config files.
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

#include "core/config.h"
#include "unit_util.h"

static const char *const envs[] = {
    "TERRACE_CONFIG",
    "TERRACE_ROLE",
    "TERRACE_DATA_DIR",
    "TERRACE_LISTEN",
    "TERRACE_EXTERNAL_URL",
    "TERRACE_DATABASE_URL",
    "TERRACE_TLS",
    "TERRACE_TLS_CERT",
    "TERRACE_TLS_KEY",
    "TERRACE_LOG_LEVEL",
    "TERRACE_THREADS",
    "TERRACE_DB_POOL",
    "TERRACE_MAX_BODY",
    "TERRACE_MAX_STATE",
    "TERRACE_UPLOAD_URL_TTL",
    "TERRACE_HEADER_TIMEOUT",
    "TERRACE_IDLE_TIMEOUT",
    "TERRACE_CONN_LIMIT",
    "TERRACE_CONN_PER_IP",
    "TERRACE_JOIN_URL",
    "TERRACE_JOIN_TOKEN",
    "TERRACE_CAPACITY",
    "TERRACE_CA_FILE",
};

static char dir[64];
static char file[128];

static int setup(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(envs) / sizeof(envs[0]); i++)
        unsetenv(envs[i]);
    if (!ut_mkdtemp(dir, sizeof(dir), "test_config"))
        return -1;
    snprintf(file, sizeof(file), "%s/terrace.conf", dir);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(envs) / sizeof(envs[0]); i++)
        unsetenv(envs[i]);
    return ut_rmtree(dir);
}

/* cfg_load with a NULL-terminated list of arguments after argv[0]. */
static tr_err load(struct cfg *c, struct tr_errbuf *eb, ...)
{
    char *argv[32] = {"terraced"};
    int argc = 1;
    va_list ap;
    va_start(ap, eb);
    for (char *s = va_arg(ap, char *); s != NULL; s = va_arg(ap, char *))
        argv[argc++] = s;
    va_end(ap);
    eb->msg[0] = '\0';
    return cfg_load(c, argc, argv, eb);
}

static void test_defaults(void **state)
{
    (void)state;
    struct cfg c;
    struct tr_errbuf eb;
    assert_int_equal(load(&c, &eb, NULL), TR_OK);
    assert_string_equal(c.role, "demo");
    assert_string_equal(c.data_dir, "./terrace-data");
    assert_string_equal(c.listen, "127.0.0.1:8443");
    assert_string_equal(c.tls, "on");
    assert_string_equal(c.log_level, "info");
    assert_string_equal(c.database_url, "");
    assert_int_equal(c.threads, 8);
    assert_int_equal(c.db_pool, 8);
    assert_int_equal(c.max_body, 16 * 1024 * 1024);
    assert_int_equal(c.max_state, 512LL * 1024 * 1024);
    assert_int_equal(c.max_config_size, 512LL * 1024 * 1024);
    assert_int_equal(c.max_config_ratio, 500);
    assert_int_equal(c.upload_url_ttl, 3600);
}

static void test_flag_forms(void **state)
{
    (void)state;
    struct cfg c;
    struct tr_errbuf eb;
    assert_int_equal(load(&c, &eb, "--data-dir", "/d1", "--threads=3",
                          "--max-state", "1099511627776", "--tls=off",
                          "--listen=0.0.0.0:80", NULL),
                     TR_OK);
    assert_string_equal(c.data_dir, "/d1");
    assert_int_equal(c.threads, 3);
    assert_int_equal(c.max_state, 1099511627776LL);
    assert_string_equal(c.tls, "off");
    assert_string_equal(c.listen, "0.0.0.0:80");
    /* the last of repeated flags wins; "--x=" sets an empty string */
    assert_int_equal(load(&c, &eb, "--data-dir=/a", "--data-dir=/b",
                          "--external-url=", NULL),
                     TR_OK);
    assert_string_equal(c.data_dir, "/b");
    assert_string_equal(c.external_url, "");
}

static void test_precedence(void **state)
{
    (void)state;
    struct cfg c;
    struct tr_errbuf eb;
    assert_true(ut_write_file(file, "data-dir = /from-file\n"
                                    "threads = 2\n"
                                    "log-level = debug\n"));
    /* file only */
    assert_int_equal(load(&c, &eb, "--config", file, NULL), TR_OK);
    assert_string_equal(c.data_dir, "/from-file");
    assert_int_equal(c.threads, 2);
    assert_string_equal(c.log_level, "debug");
    /* env over file */
    setenv("TERRACE_DATA_DIR", "/from-env", 1);
    setenv("TERRACE_THREADS", "5", 1);
    assert_int_equal(load(&c, &eb, "--config", file, NULL), TR_OK);
    assert_string_equal(c.data_dir, "/from-env");
    assert_int_equal(c.threads, 5);
    assert_string_equal(c.log_level, "debug"); /* file still counts */
    /* flags over env, whether they come before or after --config */
    assert_int_equal(
        load(&c, &eb, "--data-dir", "/from-flag", "--config", file, NULL),
        TR_OK);
    assert_string_equal(c.data_dir, "/from-flag");
    assert_int_equal(c.threads, 5);
    assert_int_equal(load(&c, &eb, "--config=", NULL), TR_OK);
    assert_string_equal(c.data_dir, "/from-env");
    assert_string_equal(c.log_level, "info"); /* empty --config: no file */
}

static void test_config_from_env(void **state)
{
    (void)state;
    struct cfg c;
    struct tr_errbuf eb;
    assert_true(ut_write_file(file, "listen = 127.0.0.1:9999\n"));
    setenv("TERRACE_CONFIG", file, 1);
    assert_int_equal(load(&c, &eb, NULL), TR_OK);
    assert_string_equal(c.listen, "127.0.0.1:9999");
    /* --config overrides TERRACE_CONFIG */
    char other[192];
    snprintf(other, sizeof(other), "%s/other.conf", dir);
    assert_true(ut_write_file(other, "listen = 127.0.0.1:7777\n"));
    assert_int_equal(load(&c, &eb, "--config", other, NULL), TR_OK);
    assert_string_equal(c.listen, "127.0.0.1:7777");
}

static void test_file_syntax(void **state)
{
    (void)state;
    struct cfg c;
    struct tr_errbuf eb;
    assert_true(ut_write_file(
        file, "# Terrace settings\n"
              "\n"
              "   # an indented comment = with an equals sign\n"
              "role = primary\n"
              "database-url = \"host=/run/pg user=terrace dbname=tfe\"\n"
              "\tdata-dir\t=\t\"/var/lib/terrace data\"   \n"
              "external-url=https://tfe.example:8443\n"
              "tls-cert = \"\"\n"
              "log-level = \"warn\"\r\n"
              "max-body = 1024\n"));
    assert_int_equal(load(&c, &eb, "--config", file, NULL), TR_OK);
    assert_string_equal(c.role, "primary");
    assert_string_equal(c.database_url, "host=/run/pg user=terrace dbname=tfe");
    assert_string_equal(c.data_dir, "/var/lib/terrace data");
    assert_string_equal(c.external_url, "https://tfe.example:8443");
    assert_string_equal(c.tls_cert, "");
    assert_string_equal(c.log_level, "warn");
    assert_int_equal(c.max_body, 1024);
    /* a lone quote is kept as is */
    assert_true(ut_write_file(file, "external-url = \"\n"));
    assert_int_equal(load(&c, &eb, "--config", file, NULL), TR_OK);
    assert_string_equal(c.external_url, "\"");
}

static void test_file_errors(void **state)
{
    (void)state;
    struct cfg c;
    struct tr_errbuf eb;
    assert_true(ut_write_file(file, "# ok\nthreads = 4\nbogus-key = 1\n"));
    assert_int_equal(load(&c, &eb, "--config", file, NULL), TR_ERR_CONFIG);
    assert_non_null(strstr(eb.msg, ":3: unknown setting bogus-key"));

    assert_true(ut_write_file(file, "threads 4\n"));
    assert_int_equal(load(&c, &eb, "--config", file, NULL), TR_ERR_CONFIG);
    assert_non_null(strstr(eb.msg, ":1: expected key = value"));

    assert_true(ut_write_file(file, "threads = four\n"));
    assert_int_equal(load(&c, &eb, "--config", file, NULL), TR_ERR_CONFIG);
    assert_string_equal(eb.msg, "threads must be a non-negative integer");

    char missing[192];
    snprintf(missing, sizeof(missing), "%s/missing.conf", dir);
    assert_int_equal(load(&c, &eb, "--config", missing, NULL), TR_ERR_CONFIG);
    assert_non_null(strstr(eb.msg, "cannot read config file"));
}

static void test_unknown_flag(void **state)
{
    (void)state;
    struct cfg c;
    struct tr_errbuf eb;
    assert_int_equal(load(&c, &eb, "--bogus", "1", NULL), TR_ERR_CONFIG);
    assert_string_equal(eb.msg, "unknown flag --bogus");
    assert_int_equal(load(&c, &eb, "--bogus=1", NULL), TR_ERR_CONFIG);
    assert_string_equal(eb.msg, "unknown flag --bogus");
    /* a very long flag name is refused, not truncated into a known one */
    char longflag[200];
    memset(longflag, 'x', sizeof(longflag) - 1);
    longflag[0] = longflag[1] = '-';
    longflag[sizeof(longflag) - 1] = '\0';
    assert_int_equal(load(&c, &eb, longflag, "1", NULL), TR_ERR_CONFIG);
    assert_non_null(strstr(eb.msg, "unknown flag"));
    /* single-dash and positional arguments */
    assert_int_equal(load(&c, &eb, "-threads", "1", NULL), TR_ERR_CONFIG);
    assert_string_equal(eb.msg, "unexpected argument -threads");
    assert_int_equal(load(&c, &eb, "serve", NULL), TR_ERR_CONFIG);
    /* a flag at the end without its value */
    assert_int_equal(load(&c, &eb, "--data-dir", NULL), TR_ERR_CONFIG);
    assert_string_equal(eb.msg, "flag --data-dir needs a value");
    assert_int_equal(load(&c, &eb, "--config", NULL), TR_ERR_CONFIG);
}

static void test_bad_integers(void **state)
{
    (void)state;
    struct cfg c;
    struct tr_errbuf eb;
    const char *bad[] = {
        "",           "abc", "12x", "-1",   "1.5",
        "1e3",        " 4",  "4 ",  "0x10", "99999999999999999999",
        "4294967297", /* would wrap to 1 in an int */
        "2147483648"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char flag[64];
        snprintf(flag, sizeof(flag), "--threads=%s", bad[i]);
        assert_int_equal(load(&c, &eb, flag, NULL), TR_ERR_CONFIG);
        assert_string_equal(eb.msg, "threads must be a non-negative integer");
    }
    /* range checks after parsing */
    assert_int_equal(load(&c, &eb, "--threads", "0", NULL), TR_ERR_CONFIG);
    assert_string_equal(eb.msg, "threads must be 1..256");
    assert_int_equal(load(&c, &eb, "--threads", "257", NULL), TR_ERR_CONFIG);
    assert_int_equal(load(&c, &eb, "--threads", "256", NULL), TR_OK);
    assert_int_equal(load(&c, &eb, "--max-config-size", "0", NULL),
                     TR_ERR_CONFIG);
    assert_string_equal(eb.msg, "max-config-size must be at least 1 byte");
    assert_int_equal(
        load(&c, &eb, "--max-config-size=1", "--max-config-ratio=0", NULL),
        TR_OK);
    assert_int_equal(c.max_config_size, 1);
    assert_int_equal(c.max_config_ratio, 0);
    /* the same checks for variables */
    setenv("TERRACE_MAX_BODY", "lots", 1);
    assert_int_equal(load(&c, &eb, NULL), TR_ERR_CONFIG);
    assert_string_equal(eb.msg, "max-body must be a non-negative integer");
    /* a bad env value is reported even when a flag would override it */
    assert_int_equal(load(&c, &eb, "--max-body", "10", NULL), TR_ERR_CONFIG);
    unsetenv("TERRACE_MAX_BODY");
    /* int64 settings take large values */
    assert_int_equal(load(&c, &eb, "--max-body", "9223372036854775807", NULL),
                     TR_OK);
    assert_int_equal(c.max_body, INT64_MAX);
}

static void test_help(void **state)
{
    (void)state;
    struct cfg c;
    struct tr_errbuf eb;
    assert_int_equal(load(&c, &eb, "--help", NULL), TR_ERR_CONFIG);
    assert_string_equal(eb.msg, "help");
    assert_int_equal(load(&c, &eb, "-h", NULL), TR_ERR_CONFIG);
    assert_string_equal(eb.msg, "help");
    /* --help wins over errors elsewhere on the line */
    assert_int_equal(load(&c, &eb, "--bogus", "--help", NULL), TR_ERR_CONFIG);
    assert_string_equal(eb.msg, "help");
    /* and over a broken config file */
    assert_true(ut_write_file(file, "nonsense\n"));
    assert_int_equal(load(&c, &eb, "--config", file, "--help", NULL),
                     TR_ERR_CONFIG);
    assert_string_equal(eb.msg, "help");
}

static void test_roles(void **state)
{
    (void)state;
    struct cfg c;
    struct tr_errbuf eb;
    assert_int_equal(load(&c, &eb, "--role", "primary", NULL), TR_ERR_CONFIG);
    assert_string_equal(eb.msg, "the primary role needs --database-url");
    assert_int_equal(load(&c, &eb, "--role", "primary", "--database-url",
                          "host=/tmp dbname=x", NULL),
                     TR_OK);
    assert_string_equal(c.database_url, "host=/tmp dbname=x");
    /* the URL may come from the environment */
    setenv("TERRACE_DATABASE_URL", "postgresql://u@h/db", 1);
    assert_int_equal(load(&c, &eb, "--role=primary", NULL), TR_OK);
    assert_string_equal(c.database_url, "postgresql://u@h/db");
    unsetenv("TERRACE_DATABASE_URL");
    setenv("TERRACE_ROLE", "primary", 1);
    assert_int_equal(load(&c, &eb, NULL), TR_ERR_CONFIG);
    assert_int_equal(load(&c, &eb, "--role", "demo", NULL), TR_OK);
    unsetenv("TERRACE_ROLE");
    assert_int_equal(load(&c, &eb, "--role", "worker", NULL), TR_ERR_CONFIG);
    assert_string_equal(eb.msg,
                        "role must be demo, primary, secondary or agent");
    assert_int_equal(load(&c, &eb, "--role", "", NULL), TR_ERR_CONFIG);
}

/* An agent takes --url and --token (not the secondary's join settings)
 * and, like a secondary, no data settings. */
static void test_agent(void **state)
{
    (void)state;
    struct cfg c;
    struct tr_errbuf eb;
    unsetenv("TERRACE_JOIN_URL");
    unsetenv("TERRACE_JOIN_TOKEN");
    unsetenv("TERRACE_DATABASE_URL");
    assert_int_equal(load(&c, &eb, "--role", "agent", NULL), TR_ERR_CONFIG);
    assert_non_null(strstr(eb.msg, "needs --url and --token"));
    assert_int_equal(load(&c, &eb, "--role", "agent", "--url",
                          "https://terrace:8443", "--token", "tragent.x", NULL),
                     TR_OK);
    assert_string_equal(c.join_url, "https://terrace:8443");
    assert_string_equal(c.agent_token, "tragent.x");
    assert_string_equal(c.join_token, "");
    assert_int_equal(load(&c, &eb, "--role", "agent", "--url", "terrace:1",
                          "--token", "t", NULL),
                     TR_ERR_CONFIG);
    assert_non_null(strstr(eb.msg, "url must start with https://"));
    assert_int_equal(load(&c, &eb, "--role", "agent", "--url", "http://t:1",
                          "--token", "t", "--join-token", "j", NULL),
                     TR_ERR_CONFIG);
    assert_non_null(strstr(eb.msg, "--join-token is not a setting"));
    assert_int_equal(load(&c, &eb, "--role", "secondary", "--join-url",
                          "http://t:1", "--join-token", "j", "--token", "t",
                          NULL),
                     TR_ERR_CONFIG);
    assert_non_null(strstr(eb.msg, "--token is not a setting"));
    assert_int_equal(load(&c, &eb, "--role", "agent", "--url", "http://t:1",
                          "--token", "t", "--kek-file", "/k", NULL),
                     TR_ERR_CONFIG);
    assert_non_null(strstr(eb.msg, "an agent holds no database"));
    setenv("TERRACE_AGENT_URL", "http://t:2", 1);
    setenv("TERRACE_AGENT_TOKEN", "t2", 1);
    assert_int_equal(load(&c, &eb, "--role", "agent", NULL), TR_OK);
    assert_string_equal(c.join_url, "http://t:2");
    assert_string_equal(c.agent_token, "t2");
    unsetenv("TERRACE_AGENT_URL");
    unsetenv("TERRACE_AGENT_TOKEN");
}

/* A secondary joins with a URL and a token and holds no data settings,
 * from whichever source they come. */
static void test_secondary(void **state)
{
    (void)state;
    struct cfg c;
    struct tr_errbuf eb;
    assert_int_equal(load(&c, &eb, "--role", "secondary", NULL), TR_ERR_CONFIG);
    assert_non_null(strstr(eb.msg, "needs --join-url and --join-token"));
    assert_int_equal(load(&c, &eb, "--role", "secondary", "--join-url",
                          "https://lb:8443", "--join-token", "t0k", NULL),
                     TR_OK);
    assert_string_equal(c.join_url, "https://lb:8443");
    assert_string_equal(c.join_token, "t0k");
    assert_int_equal(c.capacity, 2);
    assert_string_equal(c.ca_file, "");
    setenv("TERRACE_JOIN_URL", "http://lb:80", 1);
    setenv("TERRACE_JOIN_TOKEN", "t1", 1);
    setenv("TERRACE_CAPACITY", "5", 1);
    setenv("TERRACE_CA_FILE", "/etc/ca.pem", 1);
    assert_int_equal(load(&c, &eb, "--role", "secondary", NULL), TR_OK);
    assert_string_equal(c.join_url, "http://lb:80");
    assert_int_equal(c.capacity, 5);
    assert_string_equal(c.ca_file, "/etc/ca.pem");
    assert_int_equal(
        load(&c, &eb, "--role", "secondary", "--capacity", "0", NULL),
        TR_ERR_CONFIG);
    assert_string_equal(eb.msg, "capacity must be 1..64");
    assert_int_equal(
        load(&c, &eb, "--role", "secondary", "--join-url", "lb:80", NULL),
        TR_ERR_CONFIG);
    assert_non_null(strstr(eb.msg, "https:// or http://"));
    assert_int_equal(
        load(&c, &eb, "--role", "secondary", "--database-url", "host=db", NULL),
        TR_ERR_CONFIG);
    assert_non_null(strstr(eb.msg, "remove database-url"));
    /* the same from the environment, named so it can be found */
    setenv("TERRACE_DATABASE_URL", "host=db", 1);
    assert_int_equal(load(&c, &eb, "--role", "secondary", NULL), TR_ERR_CONFIG);
    assert_non_null(strstr(eb.msg, "TERRACE_DATABASE_URL"));
    /* a primary is not bothered by the secondary's settings */
    assert_int_equal(load(&c, &eb, "--role", "primary", NULL), TR_OK);
}

static void test_other_checks(void **state)
{
    (void)state;
    struct cfg c;
    struct tr_errbuf eb;
    assert_int_equal(load(&c, &eb, "--listen", "8443", NULL), TR_ERR_CONFIG);
    assert_string_equal(eb.msg, "listen must be HOST:PORT");
    assert_int_equal(load(&c, &eb, "--tls", "yes", NULL), TR_ERR_CONFIG);
    assert_string_equal(eb.msg, "tls must be on or off");
    /* strings longer than their field */
    char big[700];
    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    assert_int_equal(load(&c, &eb, "--data-dir", big, NULL), TR_ERR_CONFIG);
    assert_string_equal(eb.msg, "value for data-dir is too long");
    big[sizeof(c.data_dir) - 1] = '\0'; /* exactly fits */
    assert_int_equal(load(&c, &eb, "--data-dir", big, NULL), TR_OK);
    assert_int_equal(strlen(c.data_dir), sizeof(c.data_dir) - 1);
}

static void test_connection_settings(void **state)
{
    (void)state;
    struct cfg c;
    struct tr_errbuf eb;
    assert_int_equal(load(&c, &eb, NULL), TR_OK);
    assert_int_equal(c.header_timeout, 10);
    assert_int_equal(c.idle_timeout, 300);
    assert_int_equal(c.conn_limit, 4000);
    assert_int_equal(c.conn_per_ip, 128);
    setenv("TERRACE_CONN_PER_IP", "0", 1); /* off, behind a balancer */
    assert_int_equal(load(&c, &eb, "--header-timeout", "2", "--idle-timeout",
                          "60", "--conn-limit=16", NULL),
                     TR_OK);
    assert_int_equal(c.header_timeout, 2);
    assert_int_equal(c.idle_timeout, 60);
    assert_int_equal(c.conn_limit, 16);
    assert_int_equal(c.conn_per_ip, 0);
    assert_int_equal(load(&c, &eb, "--header-timeout", "0", NULL),
                     TR_ERR_CONFIG);
    assert_string_equal(eb.msg,
                        "header-timeout and idle-timeout must be 1..86400 s");
    assert_int_equal(load(&c, &eb, "--idle-timeout", "0", NULL), TR_ERR_CONFIG);
    assert_int_equal(load(&c, &eb, "--idle-timeout", "86401", NULL),
                     TR_ERR_CONFIG);
    assert_int_equal(load(&c, &eb, "--header-timeout", "86400", NULL), TR_OK);
    assert_int_equal(load(&c, &eb, "--conn-limit", "15", NULL), TR_ERR_CONFIG);
    assert_string_equal(eb.msg, "conn-limit must be 16..1000000");
    assert_int_equal(load(&c, &eb, "--conn-limit", "1000001", NULL),
                     TR_ERR_CONFIG);
    assert_int_equal(load(&c, &eb, "--conn-per-ip", "-1", NULL), TR_ERR_CONFIG);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_defaults, setup, teardown),
        cmocka_unit_test_setup_teardown(test_flag_forms, setup, teardown),
        cmocka_unit_test_setup_teardown(test_precedence, setup, teardown),
        cmocka_unit_test_setup_teardown(test_config_from_env, setup, teardown),
        cmocka_unit_test_setup_teardown(test_file_syntax, setup, teardown),
        cmocka_unit_test_setup_teardown(test_file_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_flag, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_integers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_help, setup, teardown),
        cmocka_unit_test_setup_teardown(test_roles, setup, teardown),
        cmocka_unit_test_setup_teardown(test_secondary, setup, teardown),
        cmocka_unit_test_setup_teardown(test_agent, setup, teardown),
        cmocka_unit_test_setup_teardown(test_other_checks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_connection_settings, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
