/*
 * idle_https.c - the HTTPS client of idle_https.h over mbed TLS, and the
 * response parser.
 *
 * Keep-alive: each thread's struct idle_tls keeps its connection open
 * between calls (a heartbeat every 5 s, a claim long-poll after
 * another).  Through a load balancer a new connection per call costs
 * two TLS handshakes, the balancer's and the primary's: a hundred idle
 * nodes made the primaries do ~25 a second, and on a starved machine a
 * handshake that took over the balancer's connect timeout failed the
 * call.  A call on a kept connection that the server closed meanwhile
 * (the write fails, or the answer ends before its first byte) is sent
 * once more on a new connection: nothing reached the server.
 *
 * Certificates: the chain is verified against the CA file; the name is
 * checked by mbed TLS for a host name, and here for an IP address (mbed
 * TLS 2.28 does not match iPAddress subject alternative names), so a
 * cluster on bare addresses (127.0.1.1, 10.0.0.5) is checked as strictly
 * as one on names.
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#include "node/idle_https.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <mbedtls/ctr_drbg.h>
#include <mbedtls/entropy.h>
#include <mbedtls/error.h>
#include <mbedtls/net_sockets.h>
#include <mbedtls/pk.h>
#include <mbedtls/ssl.h>
#include <mbedtls/x509_crt.h>

#include "core/util.h"
#include "node/idle_tls_int.h"

#define REPLY_MAX (8 << 20) /* a claim's job with its variables */
#define CONNECT_TIMEOUT_MS 10000
#define HOST_BUNDLE "/etc/ssl/certs/ca-certificates.crt"

/* ---- TLS contexts ------------------------------------------------------ */

static tr_err tls_err(struct tr_errbuf *eb, const char *what, int rc)
{
    char why[128];
    mbedtls_strerror(rc, why, sizeof(why));
    return tr_fail(eb, TR_ERR_IO, "%s: %s", what, why);
}

static tr_err tls_base(struct idle_tls *t, int endpoint, struct tr_errbuf *eb)
{
    t->kept.fd = -1;
    mbedtls_entropy_init(&t->entropy);
    mbedtls_ctr_drbg_init(&t->drbg);
    mbedtls_ssl_config_init(&t->conf);
    mbedtls_x509_crt_init(&t->ca);
    mbedtls_x509_crt_init(&t->cert);
    mbedtls_pk_init(&t->key);
    int rc = mbedtls_ctr_drbg_seed(&t->drbg, mbedtls_entropy_func, &t->entropy,
                                   NULL, 0);
    if (rc != 0)
        return tls_err(eb, "cannot seed the random generator", rc);
    rc = mbedtls_ssl_config_defaults(&t->conf, endpoint,
                                     MBEDTLS_SSL_TRANSPORT_STREAM,
                                     MBEDTLS_SSL_PRESET_DEFAULT);
    if (rc != 0)
        return tls_err(eb, "cannot set up TLS", rc);
    mbedtls_ssl_conf_rng(&t->conf, mbedtls_ctr_drbg_random, &t->drbg);
    mbedtls_ssl_conf_min_version(&t->conf, MBEDTLS_SSL_MAJOR_VERSION_3,
                                 MBEDTLS_SSL_MINOR_VERSION_3); /* TLS 1.2 */
    return TR_OK;
}

tr_err idle_tls_client(const char *ca_file, struct idle_tls **out,
                       struct tr_errbuf *eb)
{
    struct idle_tls *t = calloc(1, sizeof(*t));
    if (t == NULL)
        return tr_fail(eb, TR_ERR_NOMEM, "out of memory");
    tr_err e = tls_base(t, MBEDTLS_SSL_IS_CLIENT, eb);
    const char *file = ca_file != NULL && *ca_file ? ca_file : HOST_BUNDLE;
    int rc = e == TR_OK ? mbedtls_x509_crt_parse_file(&t->ca, file) : 0;
    if (e == TR_OK && rc < 0)
        e = tls_err(eb, file, rc);
    if (e != TR_OK) {
        idle_tls_free(t);
        return e;
    }
    mbedtls_ssl_conf_authmode(&t->conf, MBEDTLS_SSL_VERIFY_REQUIRED);
    mbedtls_ssl_conf_ca_chain(&t->conf, &t->ca, NULL);
    *out = t;
    return TR_OK;
}

static void conn_close(struct idle_conn *c);

void idle_tls_free(struct idle_tls *t)
{
    if (t == NULL)
        return;
    if (t->kept.fd >= 0)
        conn_close(&t->kept);
    mbedtls_pk_free(&t->key);
    mbedtls_x509_crt_free(&t->cert);
    mbedtls_x509_crt_free(&t->ca);
    mbedtls_ssl_config_free(&t->conf);
    mbedtls_ctr_drbg_free(&t->drbg);
    mbedtls_entropy_free(&t->entropy);
    free(t);
}

tr_err idle_tls_server(const char *cert_file, const char *key_file,
                       struct idle_tls **out, struct tr_errbuf *eb)
{
    struct idle_tls *t = calloc(1, sizeof(*t));
    if (t == NULL)
        return tr_fail(eb, TR_ERR_NOMEM, "out of memory");
    tr_err e = tls_base(t, MBEDTLS_SSL_IS_SERVER, eb);
    int rc = e == TR_OK ? mbedtls_x509_crt_parse_file(&t->cert, cert_file) : 0;
    if (e == TR_OK && rc != 0)
        e = tls_err(eb, cert_file, rc);
#if MBEDTLS_VERSION_MAJOR >= 3
    rc = e == TR_OK
             ? mbedtls_pk_parse_keyfile(&t->key, key_file, NULL,
                                        mbedtls_ctr_drbg_random, &t->drbg)
             : 0;
#else
    rc = e == TR_OK ? mbedtls_pk_parse_keyfile(&t->key, key_file, NULL) : 0;
#endif
    if (e == TR_OK && rc != 0)
        e = tls_err(eb, key_file, rc);
    rc =
        e == TR_OK ? mbedtls_ssl_conf_own_cert(&t->conf, &t->cert, &t->key) : 0;
    if (e == TR_OK && rc != 0)
        e = tls_err(eb, "cannot use the listener's certificate", rc);
    if (e != TR_OK) {
        idle_tls_free(t);
        return e;
    }
    *out = t;
    return TR_OK;
}

/* ---- sockets ----------------------------------------------------------- */

/* A blocking socket connected to host:port within CONNECT_TIMEOUT_MS
 * (mbedtls_net_connect() would wait as long as the kernel does). */
static int dial(const char *host, const char *port, int timeout_s,
                struct tr_errbuf *eb)
{
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res = NULL;
    int rc = getaddrinfo(host, port, &hints, &res);
    if (rc != 0) {
        tr_fail(eb, TR_ERR_IO, "cannot resolve %s: %s", host, gai_strerror(rc));
        return -1;
    }
    int fd = -1, err = 0;
    for (struct addrinfo *ai = res; ai != NULL && fd < 0; ai = ai->ai_next) {
        fd = socket(ai->ai_family,
                    ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK,
                    ai->ai_protocol);
        if (fd < 0)
            continue;
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0 &&
            errno == EINPROGRESS) {
            struct pollfd p = {.fd = fd, .events = POLLOUT};
            socklen_t l = sizeof(err);
            if (poll(&p, 1, CONNECT_TIMEOUT_MS) != 1)
                err = ETIMEDOUT;
            else if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &l) != 0)
                err = errno;
        } else {
            err = errno == EINPROGRESS ? 0 : errno;
        }
        if (err != 0) {
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(res);
    if (fd < 0) {
        tr_fail(eb, TR_ERR_IO, "cannot connect to %s:%s: %s", host, port,
                strerror(err ? err : EHOSTUNREACH));
        return -1;
    }
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
    struct timeval tv = {.tv_sec = timeout_s};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    return fd;
}

static const char *header(const char *h, const char *end, const char *name,
                          size_t *vlen);

/* ---- the client -------------------------------------------------------- */

int idle_sock_send(void *ctx, const unsigned char *p, size_t n)
{
    ssize_t w = send(*(int *)ctx, p, n, MSG_NOSIGNAL);
    if (w >= 0)
        return (int)w;
    return errno == EINTR ? MBEDTLS_ERR_SSL_WANT_WRITE
                          : MBEDTLS_ERR_NET_SEND_FAILED;
}

int idle_sock_recv(void *ctx, unsigned char *p, size_t n)
{
    ssize_t r = recv(*(int *)ctx, p, n, 0);
    if (r >= 0)
        return (int)r;
    return errno == EINTR ? MBEDTLS_ERR_SSL_WANT_READ
                          : MBEDTLS_ERR_NET_RECV_FAILED;
}

/* True when the peer's certificate names the IP address host. */
static bool cert_has_ip(const mbedtls_x509_crt *crt, const char *host)
{
    unsigned char want[16];
    size_t wl = 0;
    if (inet_pton(AF_INET, host, want) == 1)
        wl = 4;
    else if (inet_pton(AF_INET6, host, want) == 1)
        wl = 16;
    for (const mbedtls_x509_sequence *s = &crt->subject_alt_names;
         s != NULL && s->buf.p != NULL; s = s->next)
        if (s->buf.tag == (MBEDTLS_ASN1_CONTEXT_SPECIFIC | 7) &&
            s->buf.len == wl && memcmp(s->buf.p, want, wl) == 0)
            return true;
    return false;
}

static bool is_ip(const char *host)
{
    unsigned char b[16];
    return inet_pton(AF_INET, host, b) == 1 ||
           inet_pton(AF_INET6, host, b) == 1;
}

static tr_err conn_open(struct idle_conn *c, struct idle_tls *t,
                        const char *host, const char *port, bool tls,
                        int timeout_s, struct tr_errbuf *eb)
{
    c->tls = tls;
    mbedtls_ssl_init(&c->ssl);
    c->fd = dial(host, port, timeout_s, eb);
    if (c->fd < 0)
        return TR_ERR_IO;
    if (!tls)
        return TR_OK;
    if (t == NULL)
        return tr_fail(eb, TR_ERR_CONFIG, "no TLS settings for https");
    int rc = mbedtls_ssl_setup(&c->ssl, &t->conf);
    bool ip = is_ip(host); /* matched below, after the handshake */
    if (rc == 0)
        rc = mbedtls_ssl_set_hostname(&c->ssl, ip ? NULL : host);
    if (rc != 0)
        return tls_err(eb, "cannot set up TLS", rc);
    mbedtls_ssl_set_bio(&c->ssl, &c->fd, idle_sock_send, idle_sock_recv, NULL);
    while ((rc = mbedtls_ssl_handshake(&c->ssl)) != 0)
        if (rc != MBEDTLS_ERR_SSL_WANT_READ && rc != MBEDTLS_ERR_SSL_WANT_WRITE)
            return tls_err(eb, "TLS handshake failed", rc);
    const mbedtls_x509_crt *peer = mbedtls_ssl_get_peer_cert(&c->ssl);
    if (ip && (peer == NULL || !cert_has_ip(peer, host)))
        return tr_fail(eb, TR_ERR_IO,
                       "TLS: the server's certificate does not name %s", host);
    return TR_OK;
}

static void conn_close(struct idle_conn *c)
{
    if (c->tls && c->fd >= 0)
        mbedtls_ssl_close_notify(&c->ssl);
    mbedtls_ssl_free(&c->ssl);
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
}

static bool conn_write(struct idle_conn *c, const char *p, size_t n)
{
    while (n > 0) {
        int w = c->tls ? mbedtls_ssl_write(&c->ssl, (const unsigned char *)p, n)
                       : idle_sock_send(&c->fd, (const unsigned char *)p, n);
        if (w == MBEDTLS_ERR_SSL_WANT_WRITE || w == MBEDTLS_ERR_SSL_WANT_READ)
            continue;
        if (w <= 0)
            return false;
        p += w;
        n -= (size_t)w;
    }
    return true;
}

/* Reads up to n bytes: > 0 read, 0 end of stream, < 0 error. */
static int conn_read(struct idle_conn *c, char *p, size_t n)
{
    for (;;) {
        int r = c->tls ? mbedtls_ssl_read(&c->ssl, (unsigned char *)p, n)
                       : idle_sock_recv(&c->fd, (unsigned char *)p, n);
        if (r == MBEDTLS_ERR_SSL_WANT_READ || r == MBEDTLS_ERR_SSL_WANT_WRITE)
            continue;
        if (r == MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY ||
            r == MBEDTLS_ERR_SSL_CONN_EOF)
            return 0;
        return r;
    }
}

/* Walks the chunked body at p (n bytes in so far): 1 once the size line
 * of its last chunk is in (*at: the offset after that line; *body: the
 * data's length, copied to dst over the size lines when dst is not
 * NULL, which may be p), 0 while it is not all there, -1 when it is
 * malformed. */
static int walk_chunks(const char *p, size_t n, char *dst, size_t *at,
                       size_t *body)
{
    size_t r = 0, w = 0;
    for (;;) {
        const char *eol = memchr(p + r, '\n', n - r);
        if (eol == NULL)
            return 0;
        char *endp;
        unsigned long size = strtoul(p + r, &endp, 16);
        if (endp == p + r)
            return -1;
        r = (size_t)(eol - p) + 1;
        if (size == 0) {
            *at = r;
            *body = w;
            return 1;
        }
        if (size > n - r || n - r - size < 2)
            return 0;
        if (dst != NULL)
            memmove(dst + w, p + r, size);
        w += size;
        r += size;
        if (p[r] == '\r')
            r++;
        if (r >= n)
            return 0;
        if (p[r] != '\n')
            return -1;
        r++;
    }
}

/* The length of a chunked body at p (n bytes in so far) up to the empty
 * line that ends its trailer; 0 while that is not all there, n when it
 * is malformed (the read ends, and the parse refuses it). */
static size_t chunked_len(const char *p, size_t n)
{
    size_t r = 0, body = 0;
    int w = walk_chunks(p, n, NULL, &r, &body);
    if (w <= 0)
        return w < 0 ? n : 0;
    for (;;) {
        const char *l = memchr(p + r, '\n', n - r);
        if (l == NULL)
            return 0;
        bool empty = l == p + r || (l == p + r + 1 && p[r] == '\r');
        r = (size_t)(l - p) + 1;
        if (empty)
            return r;
    }
}

/* The length of the whole answer raw begins: 0 while that is not known
 * yet, SIZE_MAX when only the end of the stream ends it (no
 * Content-Length, not chunked, and a status that may have a body).  So
 * the read stops at the answer's end and the connection can be kept. */
static size_t frame_len(const char *raw, size_t len)
{
    const char *end = memmem(raw, len, "\r\n\r\n", 4);
    if (end == NULL)
        return 0;
    size_t head = (size_t)(end + 4 - raw), vl = 0;
    const char *v = header(raw, end + 2, "Content-Length", &vl);
    if (v != NULL)
        return head + (size_t)strtoull(v, NULL, 10);
    bool bodiless = len > 12 && (strncmp(raw + 9, "204", 3) == 0 ||
                                 strncmp(raw + 9, "304", 3) == 0);
    if (bodiless)
        return head;
    v = header(raw, end + 2, "Transfer-Encoding", &vl);
    if (v != NULL && vl == 7 && strncasecmp(v, "chunked", 7) == 0) {
        size_t body = chunked_len(raw + head, len - head);
        return body == 0 ? 0 : head + body;
    }
    return SIZE_MAX;
}

/* Whether the answer's head says the server closes the connection. */
static bool says_close(const char *raw, size_t len)
{
    const char *end = memmem(raw, len, "\r\n\r\n", 4);
    size_t vl = 0;
    const char *v = end ? header(raw, end + 2, "Connection", &vl) : NULL;
    return end == NULL || strncmp(raw, "HTTP/1.0", 8) == 0 ||
           (v != NULL && vl == 5 && strncasecmp(v, "close", 5) == 0);
}

/* Splits base into scheme, host, port and path prefix. */
static tr_err split_url(const char *base, bool *tls, char *host, size_t hn,
                        char *port, size_t pn, const char **prefix,
                        struct tr_errbuf *eb)
{
    const char *p;
    if (strncmp(base, "https://", 8) == 0) {
        *tls = true;
        p = base + 8;
    } else if (strncmp(base, "http://", 7) == 0) {
        *tls = false;
        p = base + 7;
    } else {
        return tr_fail(eb, TR_ERR_CONFIG, "%s: not an http(s) URL", base);
    }
    const char *end = p + strcspn(p, "/");
    *prefix = end;
    const char *hs = p, *he;
    const char *colon = NULL;
    if (*p == '[') {
        hs = p + 1;
        he = memchr(p, ']', (size_t)(end - p));
        if (he == NULL)
            return tr_fail(eb, TR_ERR_CONFIG, "%s: bad host", base);
        colon = he + 1 < end && he[1] == ':' ? he + 1 : NULL;
    } else {
        colon = memchr(p, ':', (size_t)(end - p));
        he = colon ? colon : end;
    }
    if (he == hs || (size_t)(he - hs) >= hn)
        return tr_fail(eb, TR_ERR_CONFIG, "%s: bad host", base);
    snprintf(host, hn, "%.*s", (int)(he - hs), hs);
    if (colon != NULL) {
        if ((size_t)(end - colon - 1) >= pn || end == colon + 1)
            return tr_fail(eb, TR_ERR_CONFIG, "%s: bad port", base);
        snprintf(port, pn, "%.*s", (int)(end - colon - 1), colon + 1);
    } else {
        snprintf(port, pn, "%s", *tls ? "443" : "80");
    }
    return TR_OK;
}

void idle_reply_free(struct idle_reply *r)
{
    free(r->body);
    memset(r, 0, sizeof(*r));
}

/* The value of header name in the header block [h, end), or NULL. */
static const char *header(const char *h, const char *end, const char *name,
                          size_t *vlen)
{
    size_t nl = strlen(name);
    while (h < end) {
        const char *eol = memchr(h, '\n', (size_t)(end - h));
        if (eol == NULL)
            eol = end;
        if ((size_t)(eol - h) > nl && strncasecmp(h, name, nl) == 0 &&
            h[nl] == ':') {
            const char *v = h + nl + 1;
            while (v < eol && (*v == ' ' || *v == '\t'))
                v++;
            const char *ve = eol;
            while (ve > v && (ve[-1] == '\r' || ve[-1] == ' '))
                ve--;
            *vlen = (size_t)(ve - v);
            return v;
        }
        h = eol + 1;
    }
    return NULL;
}

/* Decodes a chunked body in place; false when it is malformed. */
static bool unchunk(char *p, size_t len, size_t *out)
{
    size_t at = 0;
    return walk_chunks(p, len, p, &at, out) == 1;
}

tr_err idle_parse_reply(const char *raw, size_t len, struct idle_reply *out,
                        struct tr_errbuf *eb)
{
    memset(out, 0, sizeof(*out));
    const char *end = memmem(raw, len, "\r\n\r\n", 4);
    if (end != NULL)
        end += 2; /* the head's last line ends here */
    int status = 0;
    if (end == NULL || len < 12 || strncmp(raw, "HTTP/1.", 7) != 0 ||
        sscanf(raw + 9, "%3d", &status) != 1 || status < 100 || status > 599)
        return tr_fail(eb, TR_ERR_IO, "the server's answer is not HTTP");
    const char *body = end + 2;
    size_t blen = len - (size_t)(body - raw), vl = 0;
    const char *v = header(raw, end, "Content-Length", &vl);
    if (v != NULL) {
        char num[24];
        snprintf(num, sizeof(num), "%.*s", (int)(vl < 23 ? vl : 23), v);
        int64_t cl = 0;
        if (util_parse_i64(num, &cl) != TR_OK || cl < 0 || (size_t)cl > blen)
            return tr_fail(eb, TR_ERR_IO, "the server's answer was cut short");
        blen = (size_t)cl;
    }
    char *copy = malloc(blen + 1);
    if (copy == NULL)
        return tr_fail(eb, TR_ERR_NOMEM, "out of memory");
    memcpy(copy, body, blen);
    v = header(raw, end, "Transfer-Encoding", &vl);
    if (v != NULL && vl == 7 && strncasecmp(v, "chunked", 7) == 0 &&
        !unchunk(copy, blen, &blen)) {
        free(copy);
        return tr_fail(eb, TR_ERR_IO, "the server's chunked answer is bad");
    }
    copy[blen] = '\0';
    out->status = status;
    out->body = copy;
    out->len = blen;
    v = header(raw, end, "Retry-After", &vl);
    if (v != NULL)
        out->retry_after_s = atoi(v);
    return TR_OK;
}

/* Sends the request and reads the whole answer into *raw (malloc'd).
 * *nothing: the exchange broke before any byte of an answer. */
static tr_err exchange(struct idle_conn *c, const char *where, const char *head,
                       size_t hl, const char *body, size_t bl, char **raw,
                       size_t *len, bool *closed, bool *nothing,
                       struct tr_errbuf *eb)
{
    *raw = NULL;
    *len = 0;
    *closed = false;
    *nothing = true;
    if (!conn_write(c, head, hl) || !conn_write(c, body, bl))
        return tr_fail(eb, TR_ERR_IO, "cannot send to %s", where);
    size_t cap = 0, want = 0; /* want: frame_len() once known */
    for (;;) {
        if (cap - *len < 4096) {
            cap = cap ? cap * 2 : 8192;
            char *n = cap <= REPLY_MAX ? realloc(*raw, cap) : NULL;
            if (n == NULL)
                return tr_fail(eb, TR_ERR_IO,
                               "the server's answer is too large");
            *raw = n;
        }
        int r = conn_read(c, *raw + *len, cap - *len - 1);
        if (r == 0) {
            *closed = true;
            return *len > 0 ? TR_OK
                            : tr_fail(eb, TR_ERR_IO,
                                      "%s closed the connection without an "
                                      "answer",
                                      where);
        }
        if (r < 0) {
            int err = errno;
            /* a timeout is an answer that did not come, not a closed
             * connection: not sent again */
            if (r == MBEDTLS_ERR_NET_RECV_FAILED &&
                (err == EAGAIN || err == EWOULDBLOCK))
                *nothing = false;
            return tr_fail(eb, TR_ERR_IO, "no answer from %s (%s)", where,
                           r == MBEDTLS_ERR_NET_RECV_FAILED ? strerror(err)
                                                            : "TLS error");
        }
        *len += (size_t)r;
        *nothing = false;
        if (want == 0)
            want = frame_len(*raw, *len);
        if (want != 0 && want != SIZE_MAX && *len >= want)
            return TR_OK;
    }
}

tr_err idle_https_call(struct idle_tls *t, const char *base, const char *method,
                       const char *path, const char *credential,
                       const char *body, int timeout_s, struct idle_reply *out,
                       struct tr_errbuf *eb)
{
    memset(out, 0, sizeof(*out));
    bool tls = false;
    char host[256], port[16];
    const char *prefix = "";
    tr_err e = split_url(base, &tls, host, sizeof(host), port, sizeof(port),
                         &prefix, eb);
    if (e != TR_OK)
        return e;
    /* keep-alive needs the thread's struct idle_tls to keep it in */
    bool keep = tls && t != NULL;
    size_t bl = body ? strlen(body) : 0;
    char auth[320] = "";
    if (credential != NULL && *credential)
        snprintf(auth, sizeof(auth), "Authorization: Bearer %s\r\n",
                 credential);
    char head[1024];
    int hl = snprintf(head, sizeof(head),
                      "%s %s%s HTTP/1.1\r\nHost: %s%s%s\r\n%s"
                      "Content-Type: application/json\r\n"
                      "Content-Length: %zu\r\n%s"
                      "User-Agent: terraced-idle\r\n\r\n",
                      method, prefix, path, strchr(host, ':') ? "[" : "", host,
                      strchr(host, ':') ? "]" : "", auth, bl,
                      keep ? "" : "Connection: close\r\n");
    memset(auth, 0, sizeof(auth));
    if (hl < 0 || (size_t)hl >= sizeof(head))
        return tr_fail(eb, TR_ERR_INVALID, "request too long");
    char where[280];
    snprintf(where, sizeof(where), "%s:%s", host, port);
    struct idle_conn local = {.fd = -1};
    struct idle_conn *c = keep ? &t->kept : &local;
    if (c->fd >= 0 && strcmp(t->kept_at, where) != 0)
        conn_close(c); /* kept for another server */
    char *raw = NULL;
    size_t len = 0;
    for (int attempt = 0; attempt < 2; attempt++) {
        bool reused = c->fd >= 0, closed = false, nothing = false;
        if (reused) {
            struct timeval tv = {.tv_sec = timeout_s};
            setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
            setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
        } else {
            e = conn_open(c, t, host, port, tls, timeout_s, eb);
            if (keep)
                snprintf(t->kept_at, sizeof(t->kept_at), "%s", where);
        }
        if (e == TR_OK)
            e = exchange(c, where, head, (size_t)hl, body ? body : "", bl, &raw,
                         &len, &closed, &nothing, eb);
        if (e != TR_OK || closed || !keep || says_close(raw, len))
            conn_close(c);
        /* a kept connection the server had closed: nothing reached it */
        if (e != TR_OK && reused && nothing) {
            free(raw);
            raw = NULL;
            e = TR_OK;
            continue;
        }
        break;
    }
    memset(head, 0, sizeof(head));
    if (e == TR_OK)
        e = idle_parse_reply(raw ? raw : "", len, out, eb);
    free(raw);
    return e;
}
