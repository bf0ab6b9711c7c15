/*
 * test_guard.c - unit tests for src/http/guard.c: the per-address limit
 * (IPv4, v4-mapped IPv6, IPv6 by /64), the global limit and its share
 * for authenticated addresses (and when that standing expires), the
 * count table under many addresses closed in random order, and the
 * header deadline shutting down a silent socket but not one that sent
 * its request.
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "http/http_int.h"

static struct sockaddr_storage v4(const char *ip)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof(ss));
    struct sockaddr_in *in = (struct sockaddr_in *)&ss;
    in->sin_family = AF_INET;
    assert_int_equal(inet_pton(AF_INET, ip, &in->sin_addr), 1);
    return ss;
}

static struct sockaddr_storage v6(const char *ip)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof(ss));
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
    in6->sin6_family = AF_INET6;
    assert_int_equal(inet_pton(AF_INET6, ip, &in6->sin6_addr), 1);
    return ss;
}

static socklen_t len_of(const struct sockaddr_storage *ss)
{
    return ss->ss_family == AF_INET ? sizeof(struct sockaddr_in)
                                    : sizeof(struct sockaddr_in6);
}

#define SA(ss) ((const struct sockaddr *)&(ss))

static struct http_guard *guard(int limit, int reserved, int per_ip,
                                int64_t header_ms, int64_t seen_ttl_ms)
{
    struct http_guard_conf c = {.limit = limit,
                                .reserved = reserved,
                                .per_ip = per_ip,
                                .header_ms = header_ms,
                                .seen_ttl_ms = seen_ttl_ms,
                                .report_ms = 60000};
    struct http_guard *g = NULL;
    struct tr_errbuf eb = {{0}};
    assert_int_equal(http_guard_new(&c, &g, &eb), TR_OK);
    return g;
}

/* Accepts and opens one connection from ss (fd -1: the timer's shutdown
 * of it is a harmless EBADF); returns its handle or NULL if refused. */
static void *conn(struct http_guard *g, struct sockaddr_storage ss)
{
    if (!http_guard_accept(g, SA(ss), len_of(&ss)))
        return NULL;
    void *ctx = NULL;
    http_guard_open(g, SA(ss), len_of(&ss), -1, &ctx);
    assert_non_null(ctx);
    http_guard_request(g, ctx);
    return ctx;
}

static void test_per_address(void **state)
{
    (void)state;
    struct http_guard *g = guard(100, 10, 3, 60000, 60000);
    struct sockaddr_storage a = v4("10.0.0.1"), b = v4("10.0.0.2");
    void *c[3];
    for (int i = 0; i < 3; i++)
        assert_non_null(c[i] = conn(g, a));
    assert_null(conn(g, a));
    void *other = conn(g, b); /* another address has its own count */
    assert_non_null(other);
    /* the same IPv4 address mapped into IPv6 is the same client */
    assert_null(conn(g, v6("::ffff:10.0.0.1")));
    http_guard_close(g, c[1]);
    void *again = conn(g, a);
    assert_non_null(again);
    assert_null(conn(g, a));
    struct http_guard_stats st;
    http_guard_stats(g, &st);
    assert_int_equal(st.open, 4);
    assert_int_equal(st.refused_ip, 3);
    assert_int_equal(st.refused_full, 0);
    http_guard_close(g, c[0]);
    http_guard_close(g, c[2]);
    http_guard_close(g, again);
    http_guard_close(g, other);
    http_guard_free(g);
}

static void test_ipv6_by_64(void **state)
{
    (void)state;
    struct http_guard *g = guard(100, 10, 2, 60000, 60000);
    void *x = conn(g, v6("2001:db8:1:2::1"));
    void *y = conn(g, v6("2001:db8:1:2:ffff::9"));
    assert_non_null(x);
    assert_non_null(y);
    assert_null(conn(g, v6("2001:db8:1:2::77"))); /* same /64 */
    void *z = conn(g, v6("2001:db8:1:3::1"));     /* next /64 */
    assert_non_null(z);
    http_guard_close(g, x);
    http_guard_close(g, y);
    http_guard_close(g, z);
    http_guard_free(g);
}

static void test_reserved_share(void **state)
{
    (void)state;
    /* 8 in all, the last 2 only for authenticated addresses; no
     * per-address limit, as behind a load balancer */
    struct http_guard *g = guard(8, 2, 0, 60000, 60000);
    struct sockaddr_storage lb = v4("10.1.1.1"), known = v4("10.2.2.2");
    http_guard_authenticated(g, SA(known), len_of(&known));
    void *c[8];
    for (int i = 0; i < 6; i++)
        assert_non_null(c[i] = conn(g, lb));
    assert_null(conn(g, lb));
    assert_null(conn(g, v4("10.3.3.3")));
    assert_non_null(c[6] = conn(g, known));
    assert_non_null(c[7] = conn(g, known));
    assert_null(conn(g, known)); /* the whole limit is the limit */
    struct http_guard_stats st;
    http_guard_stats(g, &st);
    assert_int_equal(st.open, 8);
    assert_int_equal(st.refused_full, 3);
    assert_int_equal(st.refused_ip, 0);
    http_guard_close(g, c[0]);
    assert_null(conn(g, lb)); /* 7 open: still in the reserved share */
    http_guard_close(g, c[6]);
    http_guard_close(g, c[7]);
    assert_non_null(c[0] = conn(g, lb)); /* 5 open: below it */
    for (int i = 0; i < 6; i++)
        http_guard_close(g, c[i]);
    http_guard_free(g);
}

static void test_authenticated_expires(void **state)
{
    (void)state;
    struct http_guard *g = guard(4, 2, 0, 60000, 100);
    struct sockaddr_storage a = v4("10.0.0.9"), b = v4("10.0.0.10");
    void *c[3];
    for (int i = 0; i < 2; i++)
        assert_non_null(c[i] = conn(g, a));
    http_guard_authenticated(g, SA(b), len_of(&b));
    assert_non_null(c[2] = conn(g, b));
    http_guard_close(g, c[2]);
    struct timespec ts = {.tv_sec = 0, .tv_nsec = 250 * 1000000L};
    nanosleep(&ts, NULL); /* past seen_ttl_ms */
    assert_null(conn(g, b));
    http_guard_authenticated(g, SA(b), len_of(&b));
    assert_non_null(c[2] = conn(g, b));
    for (int i = 0; i < 3; i++)
        http_guard_close(g, c[i]);
    http_guard_free(g);
}

static void test_many_addresses(void **state)
{
    (void)state;
    /* one connection per address for 3000 addresses, closed in a random
     * order: every open one stays counted (refused again), every closed
     * one is free, whatever the probing and shifting did */
    enum { N = 3000 };
    struct http_guard *g = guard(N, 0, 1, 60000, 60000);
    static void *c[N];
    static int order[N];
    for (int i = 0; i < N; i++) {
        char ip[32];
        snprintf(ip, sizeof(ip), "10.%d.%d.1", i / 200, i % 200);
        assert_non_null(c[i] = conn(g, v4(ip)));
        order[i] = i;
    }
    srand(7);
    for (int i = N - 1; i > 0; i--) {
        int j = rand() % (i + 1), t = order[i];
        order[i] = order[j];
        order[j] = t;
    }
    for (int k = 0; k < N / 2; k++) {
        http_guard_close(g, c[order[k]]);
        c[order[k]] = NULL;
    }
    for (int i = 0; i < N; i++) {
        char ip[32];
        snprintf(ip, sizeof(ip), "10.%d.%d.1", i / 200, i % 200);
        void *x = conn(g, v4(ip));
        if (c[i] == NULL) {
            assert_non_null(x);
            c[i] = x;
        } else {
            assert_null(x);
        }
    }
    struct http_guard_stats st;
    http_guard_stats(g, &st);
    assert_int_equal(st.open, N);
    for (int i = 0; i < N; i++)
        http_guard_close(g, c[i]);
    http_guard_stats(g, &st);
    assert_int_equal(st.open, 0);
    http_guard_free(g);
}

/* Whether the peer of sv[0] sees the end of the stream within ms. */
static bool sees_eof(int fd, int ms)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    if (poll(&p, 1, ms) != 1)
        return false;
    char b;
    return read(fd, &b, 1) == 0;
}

static void test_header_deadline(void **state)
{
    (void)state;
    struct http_guard *g = guard(100, 10, 0, 200, 60000);
    struct sockaddr_storage a = v4("10.0.0.1");
    int silent[2], talker[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, silent), 0);
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, talker), 0);
    void *cs = NULL, *ct = NULL;
    http_guard_open(g, SA(a), len_of(&a), silent[0], &cs);
    http_guard_open(g, SA(a), len_of(&a), talker[0], &ct);
    http_guard_request(g, ct); /* its header arrived in time */
    assert_true(sees_eof(silent[1], 5000));
    assert_false(sees_eof(talker[1], 600));
    struct http_guard_stats st;
    http_guard_stats(g, &st);
    assert_int_equal(st.timed_out, 1);
    assert_int_equal(st.open, 2); /* closing is libmicrohttpd's part */
    http_guard_close(g, cs);
    http_guard_close(g, ct);
    for (int i = 0; i < 2; i++) {
        close(silent[i]);
        close(talker[i]);
    }
    http_guard_free(g);
}

static void test_bad_conf(void **state)
{
    (void)state;
    struct http_guard_conf c = {.limit = 10, .reserved = 10};
    struct http_guard *g = NULL;
    struct tr_errbuf eb = {{0}};
    assert_int_equal(http_guard_new(&c, &g, &eb), TR_ERR_CONFIG);
    assert_null(g);
    c.reserved = -1;
    assert_int_equal(http_guard_new(&c, &g, &eb), TR_ERR_CONFIG);
    c.reserved = 0;
    c.limit = 0;
    assert_int_equal(http_guard_new(&c, &g, &eb), TR_ERR_CONFIG);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_per_address),
        cmocka_unit_test(test_ipv6_by_64),
        cmocka_unit_test(test_reserved_share),
        cmocka_unit_test(test_authenticated_expires),
        cmocka_unit_test(test_many_addresses),
        cmocka_unit_test(test_header_deadline),
        cmocka_unit_test(test_bad_conf),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
