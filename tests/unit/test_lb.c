/*
 * test_lb.c - unit tests for src/cli/lb.c: the HAProxy configuration
 * `terrace lb haproxy-config` prints is accepted by the real HAProxy
 * (`haproxy -c`, with real certificate files), and bad input writes
 * nothing.  The HAProxy check skips when haproxy is not installed.
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli/lb.h"
#include "crypto/tls_cert.h"
#include "unit_util.h"

static const char *haproxy_bin(void)
{
    static const char *cands[] = {"/usr/sbin/haproxy", "/usr/bin/haproxy",
                                  "/usr/local/sbin/haproxy"};
    for (size_t i = 0; i < sizeof(cands) / sizeof(cands[0]); i++)
        if (access(cands[i], X_OK) == 0)
            return cands[i];
    return NULL;
}

/* Concatenates dir/server.pem and dir/server-key.pem into dir/lb.pem. */
static void make_pem(const char *dir)
{
    char cmd[3 * PATH_MAX + 64];
    int n = snprintf(cmd, sizeof(cmd),
                     "cat '%s/server.pem' '%s/server-key.pem' > '%s/lb.pem'",
                     dir, dir, dir);
    assert_true(n > 0 && (size_t)n < sizeof(cmd));
    assert_int_equal(system(cmd), 0);
}

/* haproxy -c on the configuration made from o; its exit status. */
static int haproxy_check(const char *haproxy, const char *dir,
                         const struct lb_opts *o)
{
    char cfg[PATH_MAX + 16], cmd[2 * PATH_MAX + 64];
    snprintf(cfg, sizeof(cfg), "%s/haproxy.cfg", dir);
    FILE *f = fopen(cfg, "w");
    assert_non_null(f);
    struct tr_errbuf eb = {{0}};
    assert_int_equal(lb_haproxy_config(f, o, &eb), TR_OK);
    fclose(f);
    snprintf(cmd, sizeof(cmd), "'%s' -c -q -f '%s'", haproxy, cfg);
    int st = system(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void test_haproxy_accepts(void **state)
{
    (void)state;
    const char *haproxy = haproxy_bin();
    if (haproxy == NULL) {
        fprintf(stderr, "haproxy not installed; skipping\n");
        skip();
    }
    char dir[PATH_MAX], pem[PATH_MAX + 16], ca[PATH_MAX + 16];
    assert_true(ut_mkdtemp(dir, sizeof(dir), "lb"));
    const char *names[] = {"127.0.0.1"};
    assert_int_equal(tls_ensure_certs(dir, names, 1, NULL), TR_OK);
    make_pem(dir);
    snprintf(pem, sizeof(pem), "%s/lb.pem", dir);
    snprintf(ca, sizeof(ca), "%s/ca.pem", dir);
    const char *prim[] = {"https://127.0.1.1:8443", "https://127.0.1.2:8443/",
                          "https://[::1]:9443", "http://127.0.1.4"};
    struct lb_opts o = {.listen = "127.0.0.1:18443",
                        .cert = pem,
                        .ca_file = ca,
                        .primaries = prim,
                        .nprimaries = 4};
    assert_int_equal(haproxy_check(haproxy, dir, &o), 0);
    /* no certificate (plain listener) and the system's CAs */
    o.cert = NULL;
    o.ca_file = NULL;
    o.nprimaries = 1;
    assert_int_equal(haproxy_check(haproxy, dir, &o), 0);
    /* a certificate HAProxy cannot load is caught by the check, so the
     * check above is not vacuous */
    o.cert = ca;
    assert_int_not_equal(haproxy_check(haproxy, dir, &o), 0);
    ut_rmtree(dir);
}

/* Each bad option: TR_ERR_INVALID, a message, and nothing written. */
static void test_bad_input_writes_nothing(void **state)
{
    (void)state;
    struct {
        const char *listen, *cert, *url;
    } bad[] = {
        {"127.0.0.1:8443", NULL, "ftp://127.0.0.1:21"},
        {"127.0.0.1:8443", NULL, "127.0.0.1:8443"},
        {"127.0.0.1:8443", NULL, "https://127.0.0.1:8443/api"},
        {"127.0.0.1:8443", NULL, "https://127.0.0.1:0"},
        {"127.0.0.1:8443", NULL, "https://127.0.0.1:65536"},
        {"127.0.0.1:8443", NULL, "https://127.0.0.1:x"},
        {"127.0.0.1:8443", NULL, "https://"},
        {"127.0.0.1:8443", NULL, "https://a b:1"},
        {"127.0.0.1:8443", NULL, "https://[::1:1"},
        {"127.0.0.1", NULL, "https://127.0.0.1:8443"},
        {"127.0.0.1:8443 ssl", NULL, "https://127.0.0.1:8443"},
        {"127.0.0.1:8443", "a pem", "https://127.0.0.1:8443"},
        {"127.0.0.1:8443", "", "https://127.0.0.1:8443"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        const char *prim[] = {bad[i].url};
        struct lb_opts o = {.listen = bad[i].listen,
                            .cert = bad[i].cert,
                            .primaries = prim,
                            .nprimaries = 1};
        FILE *f = tmpfile();
        assert_non_null(f);
        struct tr_errbuf eb = {{0}};
        assert_int_equal(lb_haproxy_config(f, &o, &eb), TR_ERR_INVALID);
        assert_true(eb.msg[0] != '\0');
        assert_int_equal(ftell(f), 0);
        fclose(f);
    }
    /* none, and too many */
    const char *many[LB_MAX_PRIMARIES + 1];
    for (size_t i = 0; i <= LB_MAX_PRIMARIES; i++)
        many[i] = "https://127.0.0.1:8443";
    struct lb_opts o = {.listen = "127.0.0.1:8443", .primaries = many};
    assert_int_equal(lb_haproxy_config(stdout, &o, NULL), TR_ERR_INVALID);
    o.nprimaries = LB_MAX_PRIMARIES + 1;
    assert_int_equal(lb_haproxy_config(stdout, &o, NULL), TR_ERR_INVALID);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_haproxy_accepts),
        cmocka_unit_test(test_bad_input_writes_nothing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
