/*
 * lb.c - `terrace lb haproxy-config`: prints an HAProxy configuration for
 * the load balancer in front of a cluster's primaries.
 *
 *   terrace lb haproxy-config --primary URL... [--listen ADDR:PORT]
 *                             [--cert PEM] [--ca-file F]
 *
 * Choices, and why:
 * - readiness checks (GET /_health_check?ready=1, expect 200) every
 *   second, down after 3 failures and up after 1 success: a dead primary
 *   leaves the pool within 3-4 s and a restarted one is back in 1 s.  A
 *   primary marked down keeps the requests it is serving: one that is
 *   only slow to answer a check (its CPU taken by runs, on a small
 *   machine) finishes them, where cutting them would fail every tofu
 *   command and heartbeat in flight; a dead one's connections are reset
 *   by its kernel, and a hung one's end with timeout server;
 * - timeout connect 5 s: to a TLS primary HAProxy counts the handshake as
 *   part of the connect, and a primary on a busy machine took more than
 *   2 s for it (each attempt of a request failing after 2 s, then 503);
 *   a dead primary refuses the connection at once, so this bounds only a
 *   hung or unreachable one;
 * - when every primary fails its checks at once, the requests still go
 *   to them: each primary is listed a second time as an unchecked backup
 *   server (option allbackups spreads over them).  All checks failing
 *   together is nearly always the primaries (or this machine) too busy
 *   to answer within the check timeout while they still serve; a 503
 *   "no server is available" then would fail every heartbeat and tofu
 *   command for nothing.  A dead backup refuses the connection and the
 *   request is retried on another (below);
 * - leastconn, because log streams and long polls hold connections open
 *   for minutes while most requests are short;
 * - `retry-on conn-failure empty-response 503` with 2 retries and
 *   redispatch: a request that found a dead or draining primary is sent
 *   to another one.  Only connection failures are retried for methods
 *   that change data (nothing reached the primary); an empty response or
 *   a 503 is retried only for GET, HEAD and OPTIONS, since a POST may
 *   have been executed before the primary died;
 * - timeout server 120 s: longer than a log long-poll or a state upload;
 * - up to 1000 connections per primary (every idle secondary parks a
 *   claim on one; the primaries behind a load balancer run with
 *   conn-per-ip 0, since every connection comes from its address), and
 *   a request over that waits up to 30 s for a slot (timeout queue; it
 *   defaults to the connect timeout, which turned bursts of a
 *   hundred nodes' heartbeats into 503s).
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#include "cli/lb.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

struct backend {
    char host[256];
    char port[8];
    bool tls;
};

/* Characters HAProxy reads as part of a word in a path or address. */
static bool plain_word(const char *s)
{
    if (s == NULL || *s == '\0')
        return false;
    for (; *s != '\0'; s++)
        if ((unsigned char)*s <= ' ' || strchr("\"'#\\", *s) != NULL)
            return false;
    return true;
}

static bool valid_port(const char *p, size_t n)
{
    if (n == 0 || n > 5)
        return false;
    long v = 0;
    for (size_t i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9')
            return false;
        v = v * 10 + (p[i] - '0');
    }
    return v >= 1 && v <= 65535;
}

/* http(s)://HOST[:PORT][/]; HOST a name, an IPv4 or [IPv6] literal. */
static tr_err parse_url(const char *url, struct backend *b,
                        struct tr_errbuf *eb)
{
    const char *p;
    if (strncmp(url, "https://", 8) == 0) {
        b->tls = true;
        p = url + 8;
    } else if (strncmp(url, "http://", 7) == 0) {
        b->tls = false;
        p = url + 7;
    } else {
        return tr_fail(eb, TR_ERR_INVALID,
                       "primary %s: the URL must start with https:// or "
                       "http://",
                       url);
    }
    const char *host = p;
    size_t hlen;
    if (*p == '[') {
        const char *end = strchr(p, ']');
        if (end == NULL)
            return tr_fail(eb, TR_ERR_INVALID, "primary %s: unclosed [", url);
        hlen = (size_t)(end - p) + 1;
    } else {
        hlen = strcspn(p, ":/");
    }
    for (size_t i = 0; i < hlen; i++) {
        char c = host[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                  (c >= '0' && c <= '9') || strchr(".-[]:", c) != NULL;
        if (!ok)
            hlen = 0;
    }
    if (hlen == 0 || hlen >= sizeof(b->host))
        return tr_fail(eb, TR_ERR_INVALID, "primary %s: bad host name", url);
    memcpy(b->host, host, hlen);
    b->host[hlen] = '\0';
    p = host + hlen;
    const char *port = b->tls ? "443" : "80";
    size_t plen = strlen(port);
    if (*p == ':') {
        port = ++p;
        plen = strcspn(p, "/");
        if (!valid_port(port, plen))
            return tr_fail(eb, TR_ERR_INVALID, "primary %s: bad port", url);
        p += plen;
    }
    if (strcmp(p, "") != 0 && strcmp(p, "/") != 0)
        return tr_fail(eb, TR_ERR_INVALID,
                       "primary %s: give scheme, host and port only, no "
                       "path",
                       url);
    memcpy(b->port, port, plen);
    b->port[plen] = '\0';
    return TR_OK;
}

static tr_err check_opts(const struct lb_opts *o, struct backend *bs,
                         struct tr_errbuf *eb)
{
    if (o->nprimaries == 0)
        return tr_fail(eb, TR_ERR_INVALID, "give at least one --primary URL");
    if (o->nprimaries > LB_MAX_PRIMARIES)
        return tr_fail(eb, TR_ERR_INVALID, "at most %d primaries",
                       LB_MAX_PRIMARIES);
    const char *colon = o->listen ? strrchr(o->listen, ':') : NULL;
    if (colon == NULL || !plain_word(o->listen) ||
        !valid_port(colon + 1, strlen(colon + 1)))
        return tr_fail(eb, TR_ERR_INVALID,
                       "listen address must be ADDR:PORT, e.g. 0.0.0.0:443");
    if (o->cert != NULL && !plain_word(o->cert))
        return tr_fail(eb, TR_ERR_INVALID,
                       "certificate path must not be empty or hold spaces, "
                       "quotes or #");
    if (o->ca_file != NULL && !plain_word(o->ca_file))
        return tr_fail(eb, TR_ERR_INVALID,
                       "CA file path must not be empty or hold spaces, "
                       "quotes or #");
    for (size_t i = 0; i < o->nprimaries; i++) {
        tr_err e = parse_url(o->primaries[i], &bs[i], eb);
        if (e != TR_OK)
            return e;
    }
    return TR_OK;
}

tr_err lb_haproxy_config(FILE *out, const struct lb_opts *o,
                         struct tr_errbuf *eb)
{
    struct backend bs[LB_MAX_PRIMARIES];
    tr_err e = check_opts(o, bs, eb);
    if (e != TR_OK)
        return e;
    fprintf(out, "# HAProxy in front of Terrace's primaries, written by\n"
                 "# `terrace lb haproxy-config`.\n"
                 "global\n"
                 "    log stderr format raw local0 info\n"
                 "    maxconn 8192\n"
                 "    ssl-default-bind-options ssl-min-ver TLSv1.2\n"
                 "    ssl-default-server-options ssl-min-ver TLSv1.2\n\n"
                 "defaults\n"
                 "    mode http\n"
                 "    log global\n"
                 "    option httplog\n"
                 "    option dontlognull\n"
                 "    option redispatch\n"
                 "    retries 2\n"
                 "    # to a TLS primary the connect includes the handshake,\n"
                 "    # which a busy primary can take seconds to finish; a\n"
                 "    # dead one refuses at once\n"
                 "    timeout connect 5s\n"
                 "    timeout check 2s\n"
                 "    # a request waiting for a free server slot (maxconn)\n"
                 "    timeout queue 30s\n"
                 "    timeout http-request 15s\n"
                 "    timeout http-keep-alive 15s\n"
                 "    # streamed logs and long polls hold a request open\n"
                 "    timeout client 120s\n"
                 "    timeout server 120s\n\n"
                 "frontend terrace\n");
    if (o->cert != NULL)
        fprintf(out, "    bind %s ssl crt %s alpn http/1.1\n", o->listen,
                o->cert);
    else
        fprintf(out,
                "    # no --cert: plain HTTP; terminate TLS before "
                "this\n"
                "    bind %s\n",
                o->listen);
    fprintf(out,
            "    option forwardfor\n"
            "    http-request set-header X-Forwarded-Proto https if "
            "{ ssl_fc }\n"
            "    default_backend primaries\n\n"
            "backend primaries\n"
            "    balance leastconn\n"
            "    # a keep-alive client's next request goes where its last\n"
            "    # went, over the connection (and TLS session) it opened\n"
            "    option prefer-last-server\n"
            "    option httpchk GET /_health_check?ready=1\n"
            "    http-check expect status 200\n"
            "    retry-on conn-failure empty-response 503\n"
            "    # a POST may have run before its primary died: only a\n"
            "    # failed connection is retried for it\n"
            "    acl idempotent method GET HEAD OPTIONS\n"
            "    http-request disable-l7-retry if !idempotent\n"
            "    # every primary failing its check at once: still send to\n"
            "    # them (the backups below), a busy primary answers late\n"
            "    option allbackups\n"
            "    # maxconn: a parked claim of every idle secondary holds one;\n"
            "    # every connection comes from this address, so the\n"
            "    # primaries behind it run with conn-per-ip 0;\n"
            "    # init-addr: a name that does not resolve yet leaves its\n"
            "    # server down instead of failing the start\n"
            "    default-server inter 1s fastinter 1s downinter 1s fall 3 "
            "rise 1 maxconn 1000 init-addr last,libc,none\n");
    for (int backup = 0; backup <= 1; backup++)
        for (size_t i = 0; i < o->nprimaries; i++) {
            fprintf(out, "    server p%zu%s %s:%s %s", i + 1,
                    backup ? "-all-down" : "", bs[i].host, bs[i].port,
                    backup ? "backup" : "check");
            if (bs[i].tls)
                fprintf(out, " ssl verify required ca-file %s",
                        o->ca_file ? o->ca_file : "@system-ca");
            fputc('\n', out);
        }
    if (fflush(out) != 0 || ferror(out))
        return tr_fail(eb, TR_ERR_IO, "cannot write the configuration");
    return TR_OK;
}

static void usage(void)
{
    fprintf(stderr,
            "usage: terrace lb haproxy-config --primary URL... "
            "[--listen ADDR:PORT]\n"
            "                                 [--cert PEM] [--ca-file F]\n\n"
            "Prints an HAProxy configuration for the load balancer in "
            "front of the\n"
            "primaries (URL: https://HOST:PORT of each; the option may be "
            "repeated or\n"
            "followed by several URLs).\n\n"
            "  --listen ADDR:PORT  where HAProxy listens (default "
            "0.0.0.0:443)\n"
            "  --cert PEM          certificate and key (one PEM file) for "
            "TLS;\n"
            "                      without it the listener is plain HTTP\n"
            "  --ca-file F         CA that signed the primaries' "
            "certificates\n"
            "                      (default: the system's CAs)\n");
}

int cli_lb(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "haproxy-config") != 0) {
        usage();
        return argc >= 2 && (strcmp(argv[1], "--help") == 0 ||
                             strcmp(argv[1], "-h") == 0)
                   ? 0
                   : 2;
    }
    const char *prim[LB_MAX_PRIMARIES];
    struct lb_opts o = {.listen = "0.0.0.0:443", .primaries = prim};
    for (int i = 2; i < argc; i++) {
        const char *arg = argv[i];
        const char **dst = NULL;
        if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
            usage();
            return 0;
        }
        if (strcmp(arg, "--primary") == 0) {
            bool any = false;
            while (i + 1 < argc && argv[i + 1][0] != '-') {
                if (o.nprimaries == LB_MAX_PRIMARIES) {
                    fprintf(stderr, "terrace lb: at most %d primaries\n",
                            LB_MAX_PRIMARIES);
                    return 2;
                }
                prim[o.nprimaries++] = argv[++i];
                any = true;
            }
            if (!any) {
                fprintf(stderr, "terrace lb: --primary needs a URL\n");
                return 2;
            }
            continue;
        }
        if (strcmp(arg, "--listen") == 0)
            dst = &o.listen;
        else if (strcmp(arg, "--cert") == 0)
            dst = &o.cert;
        else if (strcmp(arg, "--ca-file") == 0)
            dst = &o.ca_file;
        if (dst == NULL || i + 1 >= argc) {
            fprintf(stderr, "terrace lb: %s %s\n", arg,
                    dst == NULL ? "is not an option" : "needs a value");
            return 2;
        }
        *dst = argv[++i];
    }
    struct tr_errbuf eb = {{0}};
    tr_err e = lb_haproxy_config(stdout, &o, &eb);
    if (e != TR_OK) {
        fprintf(stderr, "terrace lb: %s\n", tr_errbuf_msg(&eb, e));
        return e == TR_ERR_INVALID ? 2 : 1;
    }
    return 0;
}
