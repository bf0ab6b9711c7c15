/*
 * test_linger.c - unit tests for src/http/linger.c on loopback TCP: a
 * socket closed with its request unread keeps taking the client's bytes
 * (no reset) after the server's own descriptor is closed, and the client
 * reads the answer and then the end of the stream; a whole request with
 * nothing unread is closed at once; the bound on lingering sockets.
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "http/http_int.h"

/* A connected loopback TCP pair: *cli the client's end, *srv the
 * server's accepted one. */
static void tcp_pair(int *cli, int *srv)
{
    int l = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(l >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t n = sizeof(a);
    assert_int_equal(bind(l, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(l, 1), 0);
    assert_int_equal(getsockname(l, (struct sockaddr *)&a, &n), 0);
    *cli = socket(AF_INET, SOCK_STREAM, 0);
    assert_int_equal(connect(*cli, (struct sockaddr *)&a, sizeof(a)), 0);
    *srv = accept(l, NULL, NULL);
    assert_true(*srv >= 0);
    close(l);
}

/* Reads from fd until the end of the stream (true) or an error such as
 * a reset (false), within 3 s; the bytes read go to buf. */
static bool read_to_end(int fd, char *buf, size_t cap, size_t *got)
{
    *got = 0;
    for (;;) {
        struct pollfd pf = {.fd = fd, .events = POLLIN};
        if (poll(&pf, 1, 3000) != 1)
            return false;
        ssize_t r = recv(fd, buf + *got, cap - *got, 0);
        if (r == 0)
            return true;
        if (r < 0)
            return false;
        *got += (size_t)r;
    }
}

/* Whether a send on fd fails within ten tries 10 ms apart: after the
 * peer's socket is gone, the first send draws a reset and a later one
 * fails. */
static bool sends_fail(int fd)
{
    static char more[4096];
    for (int k = 0; k < 10; k++) {
        if (send(fd, more, sizeof(more), MSG_NOSIGNAL) < 0)
            return true;
        usleep(10000); /* a reset, if any, comes back meanwhile */
    }
    return false;
}

static int setup(void **state)
{
    struct http_linger *l = NULL;
    struct tr_errbuf eb = {{0}};
    if (http_linger_new(&l, &eb) != TR_OK)
        return -1;
    *state = l;
    return 0;
}

static int teardown(void **state)
{
    http_linger_free(*state);
    return 0;
}

static void test_unread_request_lingers(void **state)
{
    struct http_linger *l = *state;
    int cli, srv;
    tcp_pair(&cli, &srv);
    static char big[256 << 10];
    memset(big, 'a', sizeof(big));
    /* part of the request arrived and was not read; the server answers
     * and closes its descriptor */
    assert_int_equal(send(cli, big, 4096, 0), 4096);
    struct pollfd pf = {.fd = srv, .events = POLLIN};
    assert_int_equal(poll(&pf, 1, 3000), 1);
    static const char answer[] = "HTTP/1.1 431 Too Large\r\n\r\n";
    assert_int_equal(send(srv, answer, sizeof(answer) - 1, 0),
                     (ssize_t)sizeof(answer) - 1);
    http_linger_close(l, srv, false);
    close(srv);
    /* the rest of the request still goes out without a reset */
    size_t sent = 0;
    while (sent < sizeof(big)) {
        ssize_t r = send(cli, big + sent, sizeof(big) - sent, MSG_NOSIGNAL);
        assert_true(r > 0);
        sent += (size_t)r;
    }
    char got[256];
    size_t n = 0;
    assert_true(read_to_end(cli, got, sizeof(got), &n));
    assert_int_equal(n, sizeof(answer) - 1);
    assert_memory_equal(got, answer, n);
    close(cli);
}

/* A connection the server closed, handing it to l first with partial,
 * once the client has read the end of the stream; the client's fd. */
static int closed_by_server(struct http_linger *l, bool partial)
{
    int cli, srv;
    tcp_pair(&cli, &srv);
    http_linger_close(l, srv, partial);
    close(srv);
    char got[16];
    size_t n = 0;
    assert_true(read_to_end(cli, got, sizeof(got), &n));
    assert_int_equal(n, 0);
    return cli;
}

static void test_partial_lingers_without_unread_bytes(void **state)
{
    /* nothing unread yet, but the request was not whole: bytes that
     * come after the close are taken too */
    int cli = closed_by_server(*state, true);
    assert_false(sends_fail(cli));
    close(cli);
}

static void test_whole_request_closes_at_once(void **state)
{
    /* nothing unread and the request was whole: not kept, so the close
     * ends the connection and later bytes are refused with a reset */
    int cli = closed_by_server(*state, false);
    assert_true(sends_fail(cli));
    close(cli);
}

static void test_bounded(void **state)
{
    struct http_linger *l = *state;
    enum { N = 130 }; /* LINGER_MAX + 2 */
    int cli[N], srv[N];
    for (int i = 0; i < N; i++) {
        tcp_pair(&cli[i], &srv[i]);
        http_linger_close(l, srv[i], true);
        close(srv[i]);
    }
    /* the first 128 linger: their clients see the end of the stream
     * from the shut-down write side and may still send; the last two
     * were closed at once, so their sends meet a reset */
    for (int i = 0; i < N; i++) {
        char got[16];
        size_t n = 0;
        assert_true(read_to_end(cli[i], got, sizeof(got), &n));
    }
    const int probe[] = {0, 1, N - 3, N - 2, N - 1};
    for (size_t p = 0; p < sizeof(probe) / sizeof(probe[0]); p++)
        assert_int_equal(sends_fail(cli[probe[p]]), probe[p] >= N - 2);
    for (int i = 0; i < N; i++)
        close(cli[i]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_unread_request_lingers, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            test_partial_lingers_without_unread_bytes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_whole_request_closes_at_once,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_bounded, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
