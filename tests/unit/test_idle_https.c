/*
 * test_idle_https.c - unit tests for src/node/idle_https.c and
 * idle_listen.c (the idle secondary's HTTP client and health listener):
 * the response parser (Content-Length, chunked, cut short, not HTTP,
 * Retry-After), a round trip over plain HTTP and over TLS, the
 * certificate checks: a certificate that does not name the address
 * dialled, or one from another CA, is refused; and keep-alive against a
 * server that keeps connections (tests/lib/keepalive_https.py): calls
 * share one connection, and one the server closed between two calls is
 * replaced without the caller seeing it.
 *
 * The certificates are made with the openssl command.
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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "node/idle_https.h"

static char dir[] = "/tmp/test_idle_https.XXXXXX";

static void parse(const char *raw, tr_err want, struct idle_reply *r)
{
    struct tr_errbuf eb = {{0}};
    assert_int_equal(idle_parse_reply(raw, strlen(raw), r, &eb), want);
}

static void test_parse(void **state)
{
    (void)state;
    struct idle_reply r;
    parse("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello+extra", TR_OK, &r);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.len, 5);
    assert_string_equal(r.body, "hello");
    idle_reply_free(&r);

    parse("HTTP/1.1 204 No Content\r\n\r\n", TR_OK, &r);
    assert_int_equal(r.status, 204);
    assert_int_equal(r.len, 0);
    idle_reply_free(&r);

    parse("HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n"
          "3\r\nabc\r\n4;x=y\r\ndefg\r\n0\r\n\r\n",
          TR_OK, &r);
    assert_string_equal(r.body, "abcdefg");
    idle_reply_free(&r);

    parse("HTTP/1.1 503 Busy\r\nRetry-After: 7\r\nContent-Length: 2\r\n\r\n"
          "{}",
          TR_OK, &r);
    assert_int_equal(r.status, 503);
    assert_int_equal(r.retry_after_s, 7);
    idle_reply_free(&r);

    /* refused: cut short, a bad chunk, not HTTP, no end of headers */
    parse("HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\nshort", TR_ERR_IO, &r);
    parse("HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", TR_ERR_IO, &r);
    parse("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nff\r\nab",
          TR_ERR_IO, &r);
    parse("SSH-2.0-OpenSSH\r\n\r\n", TR_ERR_IO, &r);
    parse("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n", TR_ERR_IO, &r);
    parse("HTTP/1.1 999 Odd\r\n\r\n", TR_ERR_IO, &r);
}

/* ---- round trips ---- */

static char last_path[256], last_query[256];

static void handler(void *arg, const char *path, const char *query, int *status,
                    char **body, bool *owned)
{
    (void)arg;
    snprintf(last_path, sizeof(last_path), "%s", path);
    snprintf(last_query, sizeof(last_query), "%s", query);
    *status = strcmp(path, "/ok") == 0 ? 200 : 404;
    *body = strdup("{\"answer\":42}");
    *owned = true;
}

static int free_port(const char *ip)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    inet_pton(AF_INET, ip, &a.sin_addr);
    socklen_t l = sizeof(a);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &l), 0);
    close(fd);
    return ntohs(a.sin_port);
}

static void test_plain_round_trip(void **state)
{
    (void)state;
    struct tr_errbuf eb = {{0}};
    int port = free_port("127.0.0.1");
    char listen[64], base[96];
    snprintf(listen, sizeof(listen), "127.0.0.1:%d", port);
    snprintf(base, sizeof(base), "http://127.0.0.1:%d", port);
    struct idle_listener *l = NULL;
    assert_int_equal(idle_listen(listen, -1, NULL, handler, NULL, &l, &eb),
                     TR_OK);
    struct idle_reply r;
    assert_int_equal(idle_https_call(NULL, base, "GET", "/ok?ready=1", "cred",
                                     NULL, 5, &r, &eb),
                     TR_OK);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "{\"answer\":42}");
    assert_string_equal(last_path, "/ok");
    assert_string_equal(last_query, "ready=1");
    idle_reply_free(&r);
    assert_int_equal(
        idle_https_call(NULL, base, "GET", "/nope", NULL, NULL, 5, &r, &eb),
        TR_OK);
    assert_int_equal(r.status, 404);
    idle_reply_free(&r);
    /* a method the listener does not serve */
    assert_int_equal(
        idle_https_call(NULL, base, "POST", "/ok", NULL, "{}", 5, &r, &eb),
        TR_OK);
    assert_int_equal(r.status, 405);
    idle_reply_free(&r);
    idle_listener_stop(l);
    /* nobody listening: an error that says so, no status */
    assert_int_equal(
        idle_https_call(NULL, base, "GET", "/ok", NULL, NULL, 5, &r, &eb),
        TR_ERR_IO);
    assert_non_null(strstr(eb.msg, "cannot connect"));
    assert_int_equal(r.status, 0);
}

static void sh(const char *fmt, ...)
{
    char cmd[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof(cmd), fmt, ap);
    va_end(ap);
    assert_int_equal(system(cmd), 0);
}

/* A CA named name. */
static void make_ca(const char *name)
{
    sh("cd %s && openssl req -x509 -newkey ec -pkeyopt "
       "ec_paramgen_curve:P-256 -nodes -keyout %s-ca.key -out %s-ca.pem "
       "-days 2 -subj /CN=%s >/dev/null 2>&1",
       dir, name, name, name);
}

/* A server certificate leaf for san, signed by CA name. */
static void make_leaf(const char *name, const char *san, const char *leaf)
{
    sh("cd %s && openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 "
       "-nodes -keyout %s.key -out %s.csr -subj /CN=node >/dev/null 2>&1 && "
       "printf 'subjectAltName=%s\\n' > %s.ext && openssl x509 -req -in "
       "%s.csr -CA %s-ca.pem -CAkey %s-ca.key -CAcreateserial -days 2 "
       "-extfile %s.ext -out %s.pem >/dev/null 2>&1",
       dir, leaf, leaf, san, leaf, leaf, name, name, leaf, leaf);
}

static tr_err tls_call(const char *leaf, const char *ca, int *status,
                       struct tr_errbuf *eb)
{
    char cert[256], key[256], cafile[256], listen[64], base[96];
    snprintf(cert, sizeof(cert), "%s/%s.pem", dir, leaf);
    snprintf(key, sizeof(key), "%s/%s.key", dir, leaf);
    snprintf(cafile, sizeof(cafile), "%s/%s-ca.pem", dir, ca);
    int port = free_port("127.0.0.1");
    snprintf(listen, sizeof(listen), "127.0.0.1:%d", port);
    snprintf(base, sizeof(base), "https://127.0.0.1:%d", port);
    struct idle_tls *st = NULL, *ct = NULL;
    struct idle_listener *l = NULL;
    assert_int_equal(idle_tls_server(cert, key, &st, eb), TR_OK);
    assert_int_equal(idle_tls_client(cafile, &ct, eb), TR_OK);
    assert_int_equal(idle_listen(listen, -1, st, handler, NULL, &l, eb), TR_OK);
    struct idle_reply r;
    tr_err e = idle_https_call(ct, base, "GET", "/ok", "c", NULL, 5, &r, eb);
    *status = r.status;
    idle_reply_free(&r);
    idle_listener_stop(l);
    idle_tls_free(ct);
    idle_tls_free(st);
    return e;
}

static void test_tls(void **state)
{
    (void)state;
    if (system("openssl version >/dev/null 2>&1") != 0)
        skip();
    assert_non_null(mkdtemp(dir));
    make_ca("one");
    make_ca("two");
    make_leaf("one", "IP:127.0.0.1,DNS:localhost", "good");
    make_leaf("one", "IP:127.0.0.2,DNS:elsewhere", "wrongip");
    make_leaf("two", "IP:127.0.0.1", "otherca");
    struct tr_errbuf eb = {{0}};
    int status = 0;
    assert_int_equal(tls_call("good", "one", &status, &eb), TR_OK);
    assert_int_equal(status, 200);
    /* the chain is good but the certificate names another address */
    assert_int_equal(tls_call("wrongip", "one", &status, &eb), TR_ERR_IO);
    assert_non_null(strstr(eb.msg, "does not name 127.0.0.1"));
    assert_int_equal(status, 0);
    /* the right address, but not from the trusted CA */
    assert_int_equal(tls_call("otherca", "one", &status, &eb), TR_ERR_IO);
    assert_non_null(strstr(eb.msg, "TLS handshake failed"));
    assert_int_equal(status, 0);
    sh("rm -rf %s", dir);
}

/* Lines of the keep-alive server's log that are exactly line. */
static int count_lines(const char *log, const char *line)
{
    FILE *f = fopen(log, "r");
    char buf[256];
    int n = 0;
    while (f != NULL && fgets(buf, sizeof(buf), f) != NULL) {
        buf[strcspn(buf, "\n")] = '\0';
        n += strcmp(buf, line) == 0;
    }
    if (f != NULL)
        fclose(f);
    return n;
}

static void test_keep_alive(void **state)
{
    (void)state;
    const char *src = getenv("TERRACE_SRC_DIR");
    if (src == NULL || system("openssl version >/dev/null 2>&1") != 0 ||
        system("python3 -c 'import ssl' >/dev/null 2>&1") != 0)
        skip();
    char d[] = "/tmp/test_idle_keep.XXXXXX";
    assert_non_null(mkdtemp(d));
    memcpy(dir, d, sizeof(d)); /* make_ca() and make_leaf() write in dir */
    make_ca("ka");
    make_leaf("ka", "IP:127.0.0.1", "kaleaf");
    char script[512], cert[256], key[256], ca[256], pf[256], log[256];
    snprintf(script, sizeof(script), "%s/tests/lib/keepalive_https.py", src);
    snprintf(cert, sizeof(cert), "%s/kaleaf.pem", dir);
    snprintf(key, sizeof(key), "%s/kaleaf.key", dir);
    snprintf(ca, sizeof(ca), "%s/ka-ca.pem", dir);
    snprintf(pf, sizeof(pf), "%s/port", dir);
    snprintf(log, sizeof(log), "%s/log", dir);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        execlp("python3", "python3", script, cert, key, pf, log, (char *)NULL);
        _exit(127);
    }
    int port = 0;
    for (int i = 0; i < 300 && port == 0; i++) { /* up to 30 s */
        FILE *f = fopen(pf, "r");
        if (f == NULL || fscanf(f, "%d", &port) != 1)
            port = 0;
        if (f != NULL)
            fclose(f);
        if (port == 0) {
            assert_int_equal(waitpid(pid, NULL, WNOHANG), 0);
            nanosleep(&(struct timespec){0, 100000000L}, NULL);
        }
    }
    assert_true(port > 0);
    char base[96];
    snprintf(base, sizeof(base), "https://127.0.0.1:%d", port);
    struct tr_errbuf eb = {{0}};
    struct idle_tls *ct = NULL;
    assert_int_equal(idle_tls_client(ca, &ct, &eb), TR_OK);
    struct idle_reply r;
    const char *paths[] = {"/ok", "/chunked", "/ok", "/bye", "/ok", "/ok"};
    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
        assert_int_equal(
            idle_https_call(ct, base, "GET", paths[i], "c", NULL, 5, &r, &eb),
            TR_OK);
        assert_int_equal(r.status, 200);
        assert_string_equal(r.body, "{\"ok\":true}");
        idle_reply_free(&r);
    }
    idle_tls_free(ct);
    kill(pid, SIGTERM);
    waitpid(pid, NULL, 0);
    /* every call answered; the four up to /bye on one connection, the
     * two after it on a second one (the first of them found the old one
     * closed and was sent again, once) */
    assert_int_equal(count_lines(log, "req /ok"), 4);
    assert_int_equal(count_lines(log, "req /chunked"), 1);
    assert_int_equal(count_lines(log, "req /bye"), 1);
    assert_int_equal(count_lines(log, "conn"), 2);
    sh("rm -rf %s", dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse),
        cmocka_unit_test(test_plain_round_trip),
        cmocka_unit_test(test_tls),
        cmocka_unit_test(test_keep_alive),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
