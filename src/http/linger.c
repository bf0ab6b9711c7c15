/*
 * linger.c - a lingering close for connections the server ends while the
 * client may still be sending (http_int.h has the contract).
 *
 * When the server refuses a request before reading all of it (a header
 * over the connection's memory, 431, or a malformed one), libmicrohttpd
 * sends the answer and closes the socket.  Bytes of the request that
 * arrive after that, or that sat unread at the close, make the kernel
 * answer with a reset, and a client that sends its whole request before
 * reading (most do) gets "connection reset" or "broken pipe" instead of
 * the answer waiting in its socket.  So such a socket is kept: a
 * duplicate of its descriptor is taken before libmicrohttpd closes its
 * own, the write side is shut down (the client sees the end of the
 * answer), and a thread reads and drops what still comes until the
 * client closes or LINGER_MS have passed (a 20 MB body over the size
 * limit, sent whole before its 413 is read, is dropped on loopback in
 * well under that).
 *
 * Bounded: at most LINGER_MAX sockets linger at once (past that one is
 * closed at once, as before), each for at most LINGER_MS, so a client
 * that repeats refused requests holds no more than that.
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/util.h"
#include "http/http_int.h"

#define LINGER_MAX 128
#define LINGER_MS 2000
#define LINGER_READS 64 /* reads of one socket per wake-up */

struct lsock {
    int fd;
    int64_t until_ms;
};

struct http_linger {
    pthread_mutex_t mu;
    pthread_t thread;
    int wake; /* eventfd: a socket was added, or stop */
    bool stop;
    struct lsock s[LINGER_MAX]; /* added, not yet the drainer's */
    int n;
    int lingering; /* added and not yet closed: at most LINGER_MAX */
};

/* Reads and drops what the socket has, LINGER_READS reads at most so
 * that one fast sender does not hold the others; true when it is done
 * with (the client closed, or an error). */
static bool drop_input(const struct lsock *ls)
{
    char buf[16384];
    for (int i = 0; i < LINGER_READS; i++) {
        ssize_t r = recv(ls->fd, buf, sizeof(buf), MSG_DONTWAIT);
        if (r > 0)
            continue;
        if (r < 0 && errno == EINTR)
            continue;
        return !(r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK));
    }
    return false;
}

static void *drainer(void *arg)
{
    struct http_linger *l = arg;
    struct pollfd pf[LINGER_MAX + 1];
    struct lsock mine[LINGER_MAX];
    int n = 0, closed = 0;
    for (;;) {
        /* take what was added, give back the count of those closed */
        pthread_mutex_lock(&l->mu);
        bool stop = l->stop;
        for (int i = 0; i < l->n; i++)
            mine[n++] = l->s[i];
        l->n = 0;
        l->lingering -= closed;
        closed = 0;
        pthread_mutex_unlock(&l->mu);
        int64_t now = util_mono_ms(), wait = LINGER_MS;
        int k = 0;
        for (int i = 0; i < n; i++) {
            if (stop || now >= mine[i].until_ms) {
                close(mine[i].fd);
                closed++;
                continue;
            }
            if (mine[i].until_ms - now < wait)
                wait = mine[i].until_ms - now;
            mine[k++] = mine[i];
        }
        n = k;
        if (stop)
            break;
        pf[0] = (struct pollfd){.fd = l->wake, .events = POLLIN};
        for (int i = 0; i < n; i++)
            pf[i + 1] = (struct pollfd){.fd = mine[i].fd, .events = POLLIN};
        if (poll(pf, (nfds_t)n + 1, (int)wait) < 0 && errno != EINTR)
            break;
        if (pf[0].revents != 0) {
            uint64_t v;
            ssize_t r = read(l->wake, &v, sizeof(v));
            (void)r;
        }
        k = 0;
        for (int i = 0; i < n; i++) {
            if (pf[i + 1].revents != 0 && drop_input(&mine[i])) {
                close(mine[i].fd);
                closed++;
                continue;
            }
            mine[k++] = mine[i];
        }
        n = k;
    }
    for (int i = 0; i < n; i++)
        close(mine[i].fd);
    return NULL;
}

tr_err http_linger_new(struct http_linger **out, struct tr_errbuf *eb)
{
    struct http_linger *l = calloc(1, sizeof(*l));
    if (l == NULL)
        return tr_fail(eb, TR_ERR_NOMEM, "out of memory");
    l->wake = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (l->wake < 0) {
        free(l);
        return tr_fail(eb, TR_ERR_IO, "eventfd: %s", strerror(errno));
    }
    pthread_mutex_init(&l->mu, NULL);
    if (pthread_create(&l->thread, NULL, drainer, l) != 0) {
        pthread_mutex_destroy(&l->mu);
        close(l->wake);
        free(l);
        return tr_fail(eb, TR_ERR_INTERNAL,
                       "cannot start the lingering-close thread");
    }
    *out = l;
    return TR_OK;
}

static void wake(struct http_linger *l)
{
    uint64_t one = 1;
    ssize_t r = write(l->wake, &one, sizeof(one));
    (void)r;
}

void http_linger_free(struct http_linger *l)
{
    if (l == NULL)
        return;
    pthread_mutex_lock(&l->mu);
    l->stop = true;
    pthread_mutex_unlock(&l->mu);
    wake(l);
    pthread_join(l->thread, NULL);
    for (int i = 0; i < l->n; i++)
        close(l->s[i].fd);
    pthread_mutex_destroy(&l->mu);
    close(l->wake);
    free(l);
}

void http_linger_close(struct http_linger *l, int fd, bool partial)
{
    int unread = 0;
    if (l == NULL || fd < 0 ||
        (!partial && (ioctl(fd, FIONREAD, &unread) != 0 || unread <= 0)))
        return;
    pthread_mutex_lock(&l->mu);
    bool room = !l->stop && l->lingering < LINGER_MAX;
    int dup_fd = room ? fcntl(fd, F_DUPFD_CLOEXEC, 3) : -1;
    if (dup_fd >= 0) {
        shutdown(dup_fd, SHUT_WR);
        l->s[l->n++] = (struct lsock){dup_fd, util_mono_ms() + LINGER_MS};
        l->lingering++;
    }
    pthread_mutex_unlock(&l->mu);
    if (dup_fd >= 0)
        wake(l);
}
