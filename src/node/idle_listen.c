/*
 * idle_listen.c - the health listener of idle_https.h: one thread that
 * accepts, reads one GET request (TLS or plain), answers it and closes.
 *
 * It serves health checks of a load balancer or of `terrace cluster`, a
 * few a second at most, so connections are taken one at a time, each
 * bounded by IO_TIMEOUT_S; a client that stalls delays the next by that
 * much and no more.
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/log.h"
#include "node/idle_https.h"
#include "node/idle_tls_int.h"

#define IO_TIMEOUT_S 2
#define REQUEST_MAX 8192

struct idle_listener {
    int fd;
    struct idle_tls *tls;
    idle_handler h;
    void *arg;
    atomic_bool stop;
    pthread_t thread;
};

static const char *reason(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 503:
        return "Service Unavailable";
    default:
        return "Bad Request";
    }
}

/* Reads the request head, answers it. */
static void serve_one(struct idle_listener *l, int fd)
{
    mbedtls_ssl_context ssl;
    mbedtls_ssl_init(&ssl);
    bool ok = true;
    if (l->tls != NULL) {
        ok = mbedtls_ssl_setup(&ssl, &l->tls->conf) == 0;
        mbedtls_ssl_set_bio(&ssl, &fd, idle_sock_send, idle_sock_recv, NULL);
        int rc;
        while (ok && (rc = mbedtls_ssl_handshake(&ssl)) != 0)
            ok = rc == MBEDTLS_ERR_SSL_WANT_READ ||
                 rc == MBEDTLS_ERR_SSL_WANT_WRITE;
    }
    char req[REQUEST_MAX + 1];
    size_t len = 0;
    while (ok && len < REQUEST_MAX && memmem(req, len, "\r\n\r\n", 4) == NULL) {
        int r = l->tls ? mbedtls_ssl_read(&ssl, (unsigned char *)req + len,
                                          REQUEST_MAX - len)
                       : idle_sock_recv(&fd, (unsigned char *)req + len,
                                        REQUEST_MAX - len);
        if (r == MBEDTLS_ERR_SSL_WANT_READ)
            continue;
        ok = r > 0;
        if (ok)
            len += (size_t)r;
    }
    req[len] = '\0';
    int status = 400;
    char *body = NULL;
    bool owned = false;
    char method[8] = "", target[1024];
    if (ok && sscanf(req, "%7s %1023s HTTP/1.", method, target) == 2) {
        char *q = strchr(target, '?');
        if (q != NULL)
            *q++ = '\0';
        if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
            status = 405;
        else
            l->h(l->arg, target, q ? q : "", &status, &body, &owned);
    }
    if (ok) {
        const char *b = body ? body : "{}";
        char head[256];
        int hl = snprintf(head, sizeof(head),
                          "HTTP/1.1 %d %s\r\nContent-Type: application/json"
                          "\r\nContent-Length: %zu\r\nConnection: close\r\n"
                          "\r\n",
                          status, reason(status), strlen(b));
        char out[1024];
        int ol = snprintf(out, sizeof(out), "%s%s", head,
                          strcmp(method, "HEAD") == 0 ? "" : b);
        if (hl > 0 && ol > 0 && (size_t)ol < sizeof(out)) {
            if (l->tls != NULL) {
                mbedtls_ssl_write(&ssl, (const unsigned char *)out, (size_t)ol);
                mbedtls_ssl_close_notify(&ssl);
            } else {
                idle_sock_send(&fd, (const unsigned char *)out, (size_t)ol);
            }
        }
    }
    if (owned)
        free(body);
    mbedtls_ssl_free(&ssl);
}

static void *loop(void *arg)
{
    struct idle_listener *l = arg;
    while (!atomic_load(&l->stop)) {
        struct pollfd p = {.fd = l->fd, .events = POLLIN};
        if (poll(&p, 1, 500) != 1)
            continue;
        int fd = accept4(l->fd, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0)
            continue;
        struct timeval tv = {.tv_sec = IO_TIMEOUT_S};
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
        serve_one(l, fd);
        close(fd);
    }
    return NULL;
}

static int bind_to(const char *addr, struct tr_errbuf *eb)
{
    char host[256];
    const char *colon = strrchr(addr, ':');
    if (colon == NULL || colon == addr) {
        tr_fail(eb, TR_ERR_CONFIG, "--listen %s: want HOST:PORT", addr);
        return -1;
    }
    const char *h = addr;
    size_t hl = (size_t)(colon - addr);
    if (hl >= 2 && h[0] == '[' && h[hl - 1] == ']') {
        h++;
        hl -= 2;
    }
    snprintf(host, sizeof(host), "%.*s", (int)(hl < 255 ? hl : 255), h);
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE},
                    *res = NULL;
    int rc = getaddrinfo(host, colon + 1, &hints, &res);
    if (rc != 0) {
        tr_fail(eb, TR_ERR_CONFIG, "--listen %s: %s", addr, gai_strerror(rc));
        return -1;
    }
    int fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
    if (fd >= 0)
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (fd < 0 || bind(fd, res->ai_addr, res->ai_addrlen) != 0 ||
        listen(fd, 16) != 0) {
        tr_fail(eb, TR_ERR_IO, "cannot listen on %s: %s", addr,
                strerror(errno));
        if (fd >= 0)
            close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    return fd;
}

tr_err idle_listen(const char *listen, int fd, struct idle_tls *t,
                   idle_handler h, void *arg, struct idle_listener **out,
                   struct tr_errbuf *eb)
{
    struct idle_listener *l = calloc(1, sizeof(*l));
    if (l == NULL)
        return tr_fail(eb, TR_ERR_NOMEM, "out of memory");
    l->tls = t;
    l->h = h;
    l->arg = arg;
    if (fd >= 0) /* not inherited by the workers this process starts */
        (void)fcntl(fd, F_SETFD, FD_CLOEXEC);
    l->fd = fd >= 0 ? fd : bind_to(listen, eb);
    if (l->fd < 0) {
        free(l);
        return TR_ERR_IO;
    }
    pthread_attr_t at;
    pthread_attr_init(&at);
    pthread_attr_setstacksize(&at, 256 * 1024);
    int rc = pthread_create(&l->thread, &at, loop, l);
    pthread_attr_destroy(&at);
    if (rc != 0) {
        close(l->fd);
        free(l);
        return tr_fail(eb, TR_ERR_IO, "cannot start the listener thread");
    }
    *out = l;
    return TR_OK;
}

void idle_listener_stop(struct idle_listener *l)
{
    if (l == NULL)
        return;
    atomic_store(&l->stop, true);
    pthread_join(l->thread, NULL);
    close(l->fd);
    free(l);
}
