/*
 * test_sandbox_etc.c - unit tests for the prepared /etc of the sandbox
 * (src/executor/sandbox_etc.c), on a fake /etc in a temporary directory:
 * only the listed entries are copied, files keep their mode, links inside
 * directories stay links (never followed), a listed link is followed,
 * hidden paths are left out, absent entries are skipped, the mount points
 * of passwd and group exist, and a change to an entry makes a new
 * generation while the old one stays for the sandboxes that bound it,
 * until it has been superseded for the time given.
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
#include <sys/stat.h>
#include <unistd.h>

#include "executor/executor_int.h"
#include "unit_util.h"

struct fx {
    char dir[64];
    char etc[128], base[128], hidden[160];
    struct arena *a;
};

static int setup(void **state)
{
    struct fx *fx = calloc(1, sizeof(*fx));
    if (fx == NULL || !ut_mkdtemp(fx->dir, sizeof(fx->dir), "sbetc"))
        return -1;
    snprintf(fx->etc, sizeof(fx->etc), "%s/etc", fx->dir);
    snprintf(fx->base, sizeof(fx->base), "%s/prepared", fx->dir);
    snprintf(fx->hidden, sizeof(fx->hidden), "%s/etc/ssl/certs/node-key.pem",
             fx->dir);
    char p[256];
    mkdir(fx->etc, 0755);
    snprintf(p, sizeof(p), "%s/ssl", fx->etc);
    mkdir(p, 0755);
    snprintf(p, sizeof(p), "%s/ssl/certs", fx->etc);
    mkdir(p, 0755);
    snprintf(p, sizeof(p), "%s/hosts", fx->etc);
    ut_write_file(p, "127.0.0.1 localhost\n");
    snprintf(p, sizeof(p), "%s/private.conf", fx->etc);
    ut_write_file(p, "secret\n"); /* not listed */
    snprintf(p, sizeof(p), "%s/gitconfig", fx->etc);
    ut_write_file(p, "[core]\n");
    chmod(p, 0600);
    snprintf(p, sizeof(p), "%s/ssl/certs/ca.pem", fx->etc);
    ut_write_file(p, "CERT\n");
    snprintf(p, sizeof(p), "%s/ssl/certs/abcd.0", fx->etc);
    symlink("ca.pem", p);
    snprintf(p, sizeof(p), "%s/ssl/certs/shadow-link", fx->etc);
    symlink("/etc/shadow", p);
    ut_write_file(fx->hidden, "KEY\n");
    /* a listed entry that is a link: followed, as a bind was */
    char target[192];
    snprintf(target, sizeof(target), "%s/real-resolv", fx->dir);
    ut_write_file(target, "nameserver 10.0.0.1\n");
    snprintf(p, sizeof(p), "%s/resolv.conf", fx->etc);
    symlink(target, p);
    fx->a = arena_new();
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    struct fx *fx = *state;
    arena_destroy(fx->a);
    int rc = ut_rmtree(fx->dir);
    free(fx);
    return rc;
}

static const char *const entries[] = {"resolv.conf", "hosts",
                                      "gitconfig",   "ssl/certs",
                                      "absent.conf", "ssh/ssh_config"};

static char *read_at(struct fx *fx, const char *dir, const char *rel)
{
    char p[512];
    snprintf(p, sizeof(p), "%s/%s", dir, rel);
    FILE *f = fopen(p, "r");
    if (f == NULL)
        return NULL;
    char *buf = arena_alloc(fx->a, 256);
    size_t n = fread(buf, 1, 255, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

static mode_t mode_at(const char *dir, const char *rel, bool follow)
{
    char p[512];
    struct stat st;
    snprintf(p, sizeof(p), "%s/%s", dir, rel);
    if ((follow ? stat(p, &st) : lstat(p, &st)) != 0)
        return 0;
    return st.st_mode;
}

static void test_copy(void **state)
{
    struct fx *fx = *state;
    struct tr_errbuf eb = {{0}};
    char *hide[] = {fx->hidden};
    struct sandbox_etc *se = NULL;
    assert_int_equal(sandbox_etc_open(fx->base, fx->etc, entries, 6, hide, 1,
                                      3600 * 1000, &se, &eb),
                     TR_OK);
    const char *d = sandbox_etc_dir(se, fx->a);
    assert_non_null(d);
    assert_int_equal(mode_at(d, ".", false) & 07777, 0755);
    assert_string_equal(read_at(fx, d, "hosts"), "127.0.0.1 localhost\n");
    assert_string_equal(read_at(fx, d, "resolv.conf"), "nameserver 10.0.0.1\n");
    assert_true(S_ISREG(mode_at(d, "resolv.conf", false)));
    assert_int_equal(mode_at(d, "gitconfig", false) & 07777, 0600);
    assert_string_equal(read_at(fx, d, "ssl/certs/ca.pem"), "CERT\n");
    assert_true(S_ISLNK(mode_at(d, "ssl/certs/abcd.0", false)));
    char t[64] = {0};
    char p[512];
    snprintf(p, sizeof(p), "%s/ssl/certs/shadow-link", d);
    assert_true(readlink(p, t, sizeof(t) - 1) > 0);
    assert_string_equal(t, "/etc/shadow"); /* a link, not its target */
    assert_null(read_at(fx, d, "ssl/certs/node-key.pem"));
    assert_null(read_at(fx, d, "private.conf"));
    assert_null(read_at(fx, d, "absent.conf"));
    assert_true(S_ISDIR(mode_at(d, "ssh", false)));
    assert_string_equal(read_at(fx, d, "passwd"), "");
    assert_string_equal(read_at(fx, d, "group"), "");
    /* unchanged: the same directory */
    const char *again = sandbox_etc_dir(se, fx->a);
    assert_string_equal(again, d);
    /* an entry changes: a new generation; the old one stays */
    snprintf(p, sizeof(p), "%s/hosts", fx->etc);
    assert_true(ut_write_file(p, "10.1.1.1 db\n127.0.0.1 localhost\n"));
    const char *d2 = sandbox_etc_dir(se, fx->a);
    assert_non_null(d2);
    assert_string_not_equal(d2, d);
    assert_string_equal(read_at(fx, d2, "hosts"),
                        "10.1.1.1 db\n127.0.0.1 localhost\n");
    assert_string_equal(read_at(fx, d, "hosts"), "127.0.0.1 localhost\n");
    /* a new certificate in a listed directory is noticed too */
    snprintf(p, sizeof(p), "%s/ssl/certs/new.pem", fx->etc);
    assert_true(ut_write_file(p, "NEW\n"));
    const char *d3 = sandbox_etc_dir(se, fx->a);
    assert_string_not_equal(d3, d2);
    assert_string_equal(read_at(fx, d3, "ssl/certs/new.pem"), "NEW\n");
    sandbox_etc_free(se);
    /* a new process starts from an empty base */
    se = NULL;
    assert_int_equal(
        sandbox_etc_open(fx->base, fx->etc, entries, 6, hide, 1, 0, &se, &eb),
        TR_OK);
    assert_null(read_at(fx, d, "hosts"));
    assert_null(read_at(fx, d3, "hosts"));
    /* kept for 0 ms: a superseded copy goes at the next change */
    const char *e1 = sandbox_etc_dir(se, fx->a);
    assert_non_null(read_at(fx, e1, "hosts"));
    snprintf(p, sizeof(p), "%s/hosts", fx->etc);
    assert_true(ut_write_file(p, "OTHER\n"));
    const char *e2 = sandbox_etc_dir(se, fx->a);
    assert_string_not_equal(e2, e1);
    assert_null(read_at(fx, e1, "hosts"));
    assert_string_equal(read_at(fx, e2, "hosts"), "OTHER\n");
    sandbox_etc_free(se);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_copy, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
