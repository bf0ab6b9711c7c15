/*
 * test_check.c - unit tests for src/core/check.h, compiled twice
 * (tests/CMakeLists.txt): as a debug build like every unit test, where a
 * failed check aborts with a line naming it, and with TR_CHECK_RELEASE
 * set as a release build (NDEBUG, no TR_DEBUG), where TR_ASSERT is not
 * evaluated and TR_ALWAYS/TR_NEVER give their condition's value once.
 *
 * A check that should abort runs in a forked child whose stderr is read
 * back through a pipe.
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#ifdef TR_CHECK_RELEASE
#undef TR_DEBUG
#ifndef NDEBUG
#define NDEBUG 1
#endif
#endif

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/check.h"

/* How a forked child ended and what it wrote to stderr. */
struct outcome {
    int status;
    char err[512];
};

/* Runs fn(arg) in a child; a child that returns exits 0. */
static void in_child(void (*fn)(int), int arg, struct outcome *o)
{
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(fds[0]);
        dup2(fds[1], STDERR_FILENO);
        fn(arg);
        _exit(0);
    }
    close(fds[1]);
    size_t len = 0;
    ssize_t got;
    while ((got = read(fds[0], o->err + len, sizeof(o->err) - 1 - len)) > 0)
        len += (size_t)got;
    o->err[len] = '\0';
    close(fds[0]);
    assert_int_equal(waitpid(pid, &o->status, 0), pid);
}

/* Each child evaluates one check on x and counts the evaluations; the
 * count reaches the parent as the exit code when the child survives. */
static int evals;

static int counted(int v)
{
    evals++;
    return v;
}

static void child_assert(int x)
{
    TR_ASSERT(counted(x) == 1);
    _exit(evals);
}

static void child_always(int x)
{
    int v = TR_ALWAYS(counted(x) == 1);
    _exit(evals * 10 + v);
}

static void child_never(int x)
{
    int v = TR_NEVER(counted(x) == 1);
    _exit(evals * 10 + v);
}

static void test_true_conditions_pass(void **state)
{
    (void)state;
    struct outcome o;
    in_child(child_assert, 1, &o);
    assert_true(WIFEXITED(o.status));
    /* evaluated once in debug builds, never in release builds */
    assert_int_equal(WEXITSTATUS(o.status), TR_CHECKS ? 1 : 0);
    in_child(child_always, 1, &o);
    assert_true(WIFEXITED(o.status));
    assert_int_equal(WEXITSTATUS(o.status), 11); /* once, value 1 */
    in_child(child_never, 0, &o);
    assert_true(WIFEXITED(o.status));
    assert_int_equal(WEXITSTATUS(o.status), 10); /* once, value 0 */
    assert_string_equal(o.err, "");
}

#if TR_CHECKS

static bool aborted(const struct outcome *o)
{
    return WIFSIGNALED(o->status) && WTERMSIG(o->status) == SIGABRT;
}

static void expect_abort(void (*fn)(int), int x, const char *kind)
{
    struct outcome o;
    in_child(fn, x, &o);
    assert_true(aborted(&o));
    char want[128];
    snprintf(want, sizeof(want), "check failed: %s(counted(x) == 1) at ", kind);
    assert_non_null(strstr(o.err, want));
    assert_non_null(strstr(o.err, "test_check.c:"));
    assert_non_null(strstr(o.err, " in child_"));
}

static void test_debug_failures_abort(void **state)
{
    (void)state;
    expect_abort(child_assert, 0, "TR_ASSERT");
    expect_abort(child_always, 0, "TR_ALWAYS");
    expect_abort(child_never, 1, "TR_NEVER");
}

#else

static bool exited_ok(const struct outcome *o)
{
    return WIFEXITED(o->status) && WEXITSTATUS(o->status) == 0;
}

static void test_release_assert_not_evaluated(void **state)
{
    (void)state;
    int n = 0;
    TR_ASSERT(++n == 99); /* false, with a side effect: neither happens */
    assert_int_equal(n, 0);
    struct outcome o;
    in_child(child_assert, 0, &o);
    assert_true(exited_ok(&o));
    assert_string_equal(o.err, "");
}

static void test_release_values(void **state)
{
    (void)state;
    /* the impossible case reaches the code that handles it */
    int n = 0;
    assert_int_equal(TR_ALWAYS(++n == 2), 0);
    assert_int_equal(n, 1);
    assert_int_equal(TR_NEVER(++n == 2), 1);
    assert_int_equal(n, 2);
    assert_int_equal(TR_ALWAYS(7), 1); /* truth value, not the operand */
    assert_int_equal(TR_NEVER(7), 1);
    assert_int_equal(TR_NEVER((void *)0), 0);
    int handled = 0;
    if (TR_NEVER(n > 1))
        handled = 1;
    if (!TR_ALWAYS(n < 1))
        handled++;
    assert_int_equal(handled, 2);
    struct outcome o;
    in_child(child_always, 0, &o);
    assert_true(WIFEXITED(o.status));
    assert_int_equal(WEXITSTATUS(o.status), 10); /* once, value 0 */
    in_child(child_never, 1, &o);
    assert_true(WIFEXITED(o.status));
    assert_int_equal(WEXITSTATUS(o.status), 11); /* once, value 1 */
    assert_string_equal(o.err, "");
}

#endif

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_true_conditions_pass),
#if TR_CHECKS
        cmocka_unit_test(test_debug_failures_abort),
#else
        cmocka_unit_test(test_release_assert_not_evaluated),
        cmocka_unit_test(test_release_values),
#endif
    };
#ifdef TR_CHECK_RELEASE
    if (TR_CHECKS) {
        fprintf(stderr, "test_check_release: checks are on\n");
        return 1;
    }
#endif
    return cmocka_run_group_tests(tests, NULL, NULL);
}
