/*
 * test_notify.c - unit tests for the checks src/domain/notify.c gives
 * the API: which triggers exist and which URLs may be destinations.
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>

#include "domain/notify.h"

static void test_triggers(void **state)
{
    (void)state;
    const char *ok[] = {"run:created",         "run:planning",
                        "run:needs_attention", "run:applying",
                        "run:completed",       "run:errored",
                        "assessment:drifted",  "assessment:check_failure"};
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
        assert_true(notify_trigger_valid(ok[i]));
    const char *bad[] = {"",
                         "run:",
                         "run:Created",
                         "run:created ",
                         "fly you fools!",
                         "verification"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_false(notify_trigger_valid(bad[i]));
    assert_false(notify_trigger_valid(NULL));
}

static void test_urls(void **state)
{
    (void)state;
    const char *why = NULL;
    assert_true(notify_url_valid("http://127.0.0.1:8080/hook?x=1", &why));
    assert_true(
        notify_url_valid("https://hooks.example.com/services/a/b", &why));
    const char *bad[] = {"",
                         "example.com/hook",
                         "ftp://example.com/x",
                         "file:///etc/passwd",
                         "gopher://x",
                         "http://",
                         "not a url",
                         "http://user:pw@example.com/",
                         "javascript:alert(1)"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        why = NULL;
        assert_false(notify_url_valid(bad[i], &why));
        assert_non_null(why);
    }
    char longurl[2100];
    memset(longurl, 'a', sizeof(longurl) - 1);
    longurl[sizeof(longurl) - 1] = '\0';
    memcpy(longurl, "http://h/", 9);
    assert_false(notify_url_valid(longurl, &why));
    assert_non_null(strstr(why, "long"));
    assert_false(notify_url_valid(NULL, &why));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_triggers),
        cmocka_unit_test(test_urls),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
