/*
 * blob_http.c - the libcurl client the remote blob backends share:
 * requests with retries and backoff, header lookup, streamed GETs.
 *
 * Every request gets its own easy handle; a curl share handle holds the
 * connection cache, DNS cache and TLS sessions so that connections are
 * reused across requests and threads.  A stream drives its easy handle
 * through a multi handle of its own, only while its reader waits for
 * bytes: the write callback copies into the reader's buffer and keeps
 * the rest of that delivery in a spill buffer that is reused; once the
 * reader's buffer is full the transfer pauses until the next read, so
 * that libcurl, which goes on taking TLS records while the socket has
 * them, does not push the following ones through the spill (two copies
 * of each byte instead of one).  A pause makes libcurl keep the one
 * delivery it holds; it is resumed by the next read.  What arrives
 * before the first read (the reader's buffer unset) is spilled, up to
 * 1 MiB.
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "blob/blob_http.h"
#include "core/log.h"
#include "core/util.h"

#define RESP_MAX_DEFAULT (1u << 20)
#define HDRS_MAX (64u << 10)
#define SPILL_MAX (4u << 20)
#define SPILL_PAUSE (1u << 20)
/* libcurl's receive buffer for a streamed GET (its default is 16 KiB):
 * each wake-up takes up to this much off the socket, so a 100 MB read
 * costs ~1600 receive-and-poll rounds, not ~6400.  Larger ones deliver
 * more than a reader takes per call, into the spill and pauses: at
 * 256 KiB the blob suite's 200 MB round trip grew its peak RSS by
 * 39-60 MB under ASan (25 MB at 64 KiB, 21 MB at 16 KiB) */
#define STREAM_RECV_BUF (64L << 10)
/* libcurl's send buffer for a body pulled from a source (its default is
 * 64 KiB): one large object per request, sent in fewer, larger writes */
#define SRC_SEND_BUF (256L << 10)
#define RETRY_AFTER_MAX_S 30

struct blob_http {
    struct blob_http_opts o; /* o.ca_file points to ca_file */
    char *ca_file;           /* ours, or NULL */
    CURLSH *share;
    pthread_mutex_t locks[CURL_LOCK_DATA_LAST];
};

static void share_lock(CURL *c, curl_lock_data d, curl_lock_access a, void *ctx)
{
    struct blob_http *h = ctx;
    pthread_mutex_lock(&h->locks[d]);
}

static void share_unlock(CURL *c, curl_lock_data d, void *ctx)
{
    struct blob_http *h = ctx;
    pthread_mutex_unlock(&h->locks[d]);
}

tr_err blob_http_new(const struct blob_http_opts *opts, struct blob_http **out,
                     struct tr_errbuf *eb)
{
    struct blob_http *h = calloc(1, sizeof(*h));
    if (h == NULL)
        return tr_fail(eb, TR_ERR_NOMEM, "out of memory");
    if (opts != NULL)
        h->o = *opts;
    if (h->o.attempts < 1)
        h->o.attempts = 5;
    if (h->o.base_ms <= 0)
        h->o.base_ms = 200;
    if (h->o.cap_ms <= 0)
        h->o.cap_ms = 8000;
    if (h->o.connect_timeout_ms <= 0)
        h->o.connect_timeout_ms = 10000;
    if (h->o.stall_s <= 0)
        h->o.stall_s = 60;
    if (h->o.name == NULL)
        h->o.name = "blob";
    if (h->o.retryable == NULL)
        h->o.retryable = blob_http_retryable;
    h->o.ca_file = NULL;
    if (opts != NULL && opts->ca_file != NULL) {
        FILE *f = fopen(opts->ca_file, "r");
        if (f == NULL) {
            int err = errno;
            free(h);
            return tr_fail(eb, TR_ERR_CONFIG, "%s: cannot read ca-file %s: %s",
                           opts->name ? opts->name : "blob", opts->ca_file,
                           strerror(err));
        }
        fclose(f);
        h->ca_file = strdup(opts->ca_file);
        if (h->ca_file == NULL) {
            free(h);
            return tr_fail(eb, TR_ERR_NOMEM, "out of memory");
        }
        h->o.ca_file = h->ca_file;
    }
    for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
        pthread_mutex_init(&h->locks[i], NULL);
    h->share = curl_share_init();
    if (h->share == NULL) {
        blob_http_free(h);
        return tr_fail(eb, TR_ERR_INTERNAL, "cannot start an HTTP client");
    }
    curl_share_setopt(h->share, CURLSHOPT_LOCKFUNC, share_lock);
    curl_share_setopt(h->share, CURLSHOPT_UNLOCKFUNC, share_unlock);
    curl_share_setopt(h->share, CURLSHOPT_USERDATA, h);
    curl_share_setopt(h->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_CONNECT);
    curl_share_setopt(h->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
    curl_share_setopt(h->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
    *out = h;
    return TR_OK;
}

void blob_http_free(struct blob_http *h)
{
    if (h == NULL)
        return;
    if (h->share != NULL)
        curl_share_cleanup(h->share);
    for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
        pthread_mutex_destroy(&h->locks[i]);
    free(h->ca_file);
    free(h);
}

const struct blob_http_opts *blob_http_opts(const struct blob_http *h)
{
    return &h->o;
}

void blob_http_resp_init(struct blob_http_resp *r)
{
    r->status = 0;
    buf_init(&r->body, 0);
    buf_init(&r->hdrs, HDRS_MAX);
}

void blob_http_resp_free(struct blob_http_resp *r)
{
    buf_free(&r->body);
    buf_free(&r->hdrs);
}

bool blob_http_retryable(long status)
{
    return status == 429 || status == 500 || status == 502 || status == 503 ||
           status == 504;
}

/* Transport failures that another attempt cannot mend. */
static bool curl_fatal(CURLcode rc)
{
    switch (rc) {
    case CURLE_URL_MALFORMAT:
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_OUT_OF_MEMORY:
    case CURLE_ABORTED_BY_CALLBACK:
    case CURLE_READ_ERROR:
    case CURLE_WRITE_ERROR:
        return true;
    default:
        return false;
    }
}

bool blob_http_header(const struct buf *hdrs, const char *name, char *out,
                      size_t n)
{
    size_t nl = strlen(name);
    const char *p = hdrs->data;
    const char *end = p == NULL ? NULL : p + hdrs->len;
    while (p != NULL && p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        if (eol == NULL)
            eol = end;
        if ((size_t)(eol - p) > nl && p[nl] == ':' &&
            strncasecmp(p, name, nl) == 0) {
            const char *v = p + nl + 1;
            const char *ve = eol;
            while (v < ve && (*v == ' ' || *v == '\t'))
                v++;
            while (ve > v && isspace((unsigned char)ve[-1]))
                ve--;
            if ((size_t)(ve - v) >= n)
                return false;
            memcpy(out, v, (size_t)(ve - v));
            out[ve - v] = '\0';
            return true;
        }
        p = eol + 1;
    }
    return false;
}

static void sleep_ms(int64_t ms)
{
    struct timespec ts = {.tv_sec = ms / 1000,
                          .tv_nsec = (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0)
        ;
}

void blob_http_backoff(const struct blob_http *h, int next,
                       const struct buf *hdrs)
{
    int64_t ceiling = h->o.base_ms;
    for (int i = 2; i < next && ceiling < h->o.cap_ms; i++)
        ceiling *= 2;
    if (ceiling > h->o.cap_ms)
        ceiling = h->o.cap_ms;
    /* "equal jitter": half the ceiling plus a random part of the rest */
    uint32_t r = 0;
    util_random(&r, sizeof(r));
    int64_t ms = ceiling / 2 + (int64_t)(r % (uint32_t)(ceiling / 2 + 1));
    char v[32];
    if (hdrs != NULL && blob_http_header(hdrs, "Retry-After", v, sizeof(v))) {
        char *e = NULL;
        long s = strtol(v, &e, 10);
        if (e != v && *e == '\0' && s > 0) {
            if (s > RETRY_AFTER_MAX_S)
                s = RETRY_AFTER_MAX_S;
            if (s * 1000 > ms)
                ms = s * 1000;
        }
    }
    sleep_ms(ms);
}

/* ---- one request ---- */

struct xfer {
    struct blob_http_resp *r;
    size_t max_resp;
    const char *body;
    size_t body_len, body_off;
    blob_source src; /* set: the body is pulled from it */
    void *src_ctx;
    uint64_t src_len, pulled;
    tr_err src_err; /* the source failed (TR_OK: it did not) */
    struct tr_errbuf *eb;
    bool hdrs_done;
    CURL *e;             /* for the status, when a sink takes the body */
    blob_http_sink sink; /* NULL: the body goes to r->body */
    void *sink_ctx;
    bool refused; /* the sink refused the body */
};

static size_t on_header(char *p, size_t size, size_t n, void *ctx)
{
    struct xfer *x = ctx;
    size_t len = size * n;
    if (len >= 5 && memcmp(p, "HTTP/", 5) == 0) {
        buf_reset(&x->r->hdrs); /* a new response (after 100 Continue) */
        x->hdrs_done = false;
    }
    if (len <= 2 && (p[0] == '\r' || p[0] == '\n')) {
        x->hdrs_done = true;
        return len;
    }
    (void)buf_append(&x->r->hdrs, p, len); /* over HDRS_MAX: dropped */
    return len;
}

static size_t on_body(char *p, size_t size, size_t n, void *ctx)
{
    struct xfer *x = ctx;
    size_t len = size * n;
    if (x->sink != NULL) {
        long status = 0;
        curl_easy_getinfo(x->e, CURLINFO_RESPONSE_CODE, &status);
        if (!x->sink(x->sink_ctx, status, p, len)) {
            x->refused = true;
            return 0; /* curl fails the transfer */
        }
        return len;
    }
    size_t room = x->max_resp - x->r->body.len;
    if (x->r->body.len < x->max_resp)
        (void)buf_append(&x->r->body, p, len < room ? len : room);
    return len;
}

static size_t on_read(char *p, size_t size, size_t n, void *ctx)
{
    struct xfer *x = ctx;
    size_t left = x->body_len - x->body_off;
    size_t len = size * n < left ? size * n : left;
    if (len == 0)
        return 0;
    memcpy(p, x->body + x->body_off, len);
    x->body_off += len;
    return len;
}

/* Hands curl the next bytes of a source body; the last ones only once
 * the source has been seen to end (see blob_http_call.src). */
static size_t on_read_src(char *p, size_t size, size_t n, void *ctx)
{
    struct xfer *x = ctx;
    uint64_t left = x->src_len - x->pulled;
    size_t want = size * n < left ? size * n : (size_t)left;
    if (want == 0)
        return 0;
    tr_err e = TR_OK;
    for (size_t have = 0; have < want && e == TR_OK;) {
        size_t got = 0;
        e = x->src(x->src_ctx, p + have, want - have, &got, x->eb);
        x->pulled += got;
        have += got;
        if (e == TR_OK && got == 0)
            e = tr_fail(x->eb, TR_ERR_IO, "the data ended early");
    }
    if (e == TR_OK && x->pulled == x->src_len)
        e = blob_source_end(x->src, x->src_ctx, x->eb);
    if (e != TR_OK) {
        x->src_err = e;
        return CURL_READFUNC_ABORT;
    }
    return want;
}

/* curl rewinds a body to resend it on a fresh connection: a memory body
 * always can, a source body only while none of it was pulled. */
static int on_seek(void *ctx, curl_off_t off, int origin)
{
    struct xfer *x = ctx;
    if (origin != SEEK_SET || off < 0)
        return CURL_SEEKFUNC_CANTSEEK;
    if (x->src != NULL)
        return off == 0 && x->pulled == 0 ? CURL_SEEKFUNC_OK
                                          : CURL_SEEKFUNC_CANTSEEK;
    if ((uint64_t)off > x->body_len)
        return CURL_SEEKFUNC_FAIL;
    x->body_off = (size_t)off;
    return CURL_SEEKFUNC_OK;
}

static CURL *easy_for(struct blob_http *h, const struct blob_http_call *c,
                      struct xfer *x, struct curl_slist *hdrs, char *err)
{
    CURL *e = curl_easy_init();
    if (e == NULL)
        return NULL;
    curl_easy_setopt(e, CURLOPT_URL, c->url);
    curl_easy_setopt(e, CURLOPT_SHARE, h->share);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, err);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, h->o.connect_timeout_ms);
    curl_easy_setopt(e, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(e, CURLOPT_LOW_SPEED_TIME, h->o.stall_s);
    curl_easy_setopt(e, CURLOPT_USERAGENT, "terrace");
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, x);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, x);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, hdrs);
    if (h->o.ca_file != NULL) { /* this bundle alone, not the system's */
        curl_easy_setopt(e, CURLOPT_CAINFO, h->o.ca_file);
        curl_easy_setopt(e, CURLOPT_CAPATH, NULL);
    }
    if (c->src != NULL) { /* PUT or POST, pulled from the source */
        curl_easy_setopt(e, CURLOPT_UPLOAD, 1L);
        if (strcmp(c->method, "PUT") != 0)
            curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, c->method);
        curl_easy_setopt(e, CURLOPT_READFUNCTION, on_read_src);
        curl_easy_setopt(e, CURLOPT_READDATA, x);
        curl_easy_setopt(e, CURLOPT_SEEKFUNCTION, on_seek);
        curl_easy_setopt(e, CURLOPT_SEEKDATA, x);
        curl_easy_setopt(e, CURLOPT_INFILESIZE_LARGE, (curl_off_t)c->src_len);
        curl_easy_setopt(e, CURLOPT_UPLOAD_BUFFERSIZE, SRC_SEND_BUF);
    } else if (strcmp(c->method, "PUT") == 0) {
        curl_easy_setopt(e, CURLOPT_UPLOAD, 1L);
        curl_easy_setopt(e, CURLOPT_SEEKFUNCTION, on_seek);
        curl_easy_setopt(e, CURLOPT_SEEKDATA, x);
        curl_easy_setopt(e, CURLOPT_READFUNCTION, on_read);
        curl_easy_setopt(e, CURLOPT_READDATA, x);
        curl_easy_setopt(e, CURLOPT_INFILESIZE_LARGE, (curl_off_t)c->body_len);
    } else if (strcmp(c->method, "POST") == 0) {
        curl_easy_setopt(e, CURLOPT_POST, 1L);
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, c->body ? c->body : "");
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE,
                         (curl_off_t)c->body_len);
    } else if (strcmp(c->method, "HEAD") == 0) {
        curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
    } else if (strcmp(c->method, "GET") != 0) {
        curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, c->method);
    }
    return e;
}

/* The attempt's headers: the caller's, then ours. */
static tr_err attempt_headers(const struct blob_http_call *c,
                              struct curl_slist **hdrs, struct tr_errbuf *eb)
{
    *hdrs = NULL;
    if (c->prep != NULL) {
        tr_err e = c->prep(c->prep_ctx, hdrs, eb);
        if (e != TR_OK)
            return e;
    }
    /* no 100-continue round trip for a body in memory (it can be sent
     * again); one for a source body, which can be sent only once, so
     * that an answer before the body leaves it untouched for another
     * attempt.  curl's default POST type is wrong (unless the caller
     * names one) */
    bool typed = false;
    for (struct curl_slist *s = *hdrs; s != NULL; s = s->next)
        typed = typed || strncasecmp(s->data, "Content-Type:", 13) == 0;
    struct curl_slist *l = curl_slist_append(
        *hdrs, c->src != NULL ? "Expect: 100-continue" : "Expect:");
    if (l != NULL)
        *hdrs = l;
    if (l != NULL && !typed && strcmp(c->method, "POST") == 0 &&
        c->src == NULL &&
        (l = curl_slist_append(*hdrs, "Content-Type:")) != NULL)
        *hdrs = l;
    return l == NULL ? tr_fail(eb, TR_ERR_NOMEM, "out of memory") : TR_OK;
}

/* ---- the retry policy ---- */

enum next { NEXT_DONE, NEXT_RETRY, NEXT_REAUTH, NEXT_FAIL };

/* What follows attempt n of c, which ended with rc and (rc CURLE_OK)
 * status.  *reauthed: a 401 was already met with new credentials. */
static enum next next_step(const struct blob_http *h,
                           const struct blob_http_call *c, int n, CURLcode rc,
                           long status, bool *reauthed)
{
    bool last = n >= h->o.attempts;
    if (rc != CURLE_OK)
        return last || curl_fatal(rc) ? NEXT_FAIL : NEXT_RETRY;
    if (status == 401 && c->reauth != NULL && !*reauthed) {
        *reauthed = true;
        return NEXT_REAUTH;
    }
    return !h->o.retryable(status) || last ? NEXT_DONE : NEXT_RETRY;
}

/* "scheme://host:port" of url, for messages (never path or query). */
static void origin_of(const char *url, char *out, size_t n)
{
    const char *p = strstr(url, "://");
    p = p == NULL ? url : p + 3;
    size_t len = strcspn(p, "/?#");
    snprintf(out, n, "%.*s%.*s", (int)(p - url), url, (int)len, p);
}

/* Acts on what next_step() said: TR_OK to go on with another attempt
 * (after the backoff or the reauth), else the request's result. */
static tr_err step(struct blob_http *h, const struct blob_http_call *c,
                   enum next nx, int n, CURLcode rc, const char *err,
                   const struct blob_http_resp *r, bool *again,
                   struct tr_errbuf *eb)
{
    *again = nx == NEXT_RETRY || nx == NEXT_REAUTH;
    if (nx == NEXT_DONE)
        return TR_OK;
    char origin[256];
    origin_of(c->url, origin, sizeof(origin));
    if (nx == NEXT_FAIL)
        return tr_fail(eb, TR_ERR_UNAVAILABLE,
                       "%s unreachable at %s: %s (%d attempts)", h->o.name,
                       origin, err[0] ? err : curl_easy_strerror(rc), n);
    if (nx == NEXT_REAUTH) {
        c->reauth(c->prep_ctx);
        return TR_OK;
    }
    char why[64];
    if (rc == CURLE_OK)
        snprintf(why, sizeof(why), "http %ld", r->status);
    log_warn("%s: %s %s: %s; trying again (%d of %d)", h->o.name, c->method,
             origin, rc == CURLE_OK ? why : curl_easy_strerror(rc), n + 1,
             h->o.attempts);
    blob_http_backoff(h, n + 1, rc == CURLE_OK ? &r->hdrs : NULL);
    return TR_OK;
}

tr_err blob_http_do(struct blob_http *h, const struct blob_http_call *call,
                    struct blob_http_resp *r, struct tr_errbuf *eb)
{
    bool reauthed = false, again = true;
    tr_err e = TR_OK;
    for (int n = 1; again; n++) {
        struct xfer x = {.r = r,
                         .max_resp =
                             call->max_resp ? call->max_resp : RESP_MAX_DEFAULT,
                         .body = call->body,
                         .body_len = call->body_len,
                         .src = call->src,
                         .src_ctx = call->src_ctx,
                         .src_len = call->src_len,
                         .eb = eb,
                         .sink = call->sink,
                         .sink_ctx = call->sink_ctx};
        buf_reset(&r->body);
        buf_reset(&r->hdrs);
        r->status = 0;
        if (call->sink != NULL)
            (void)call->sink(call->sink_ctx, 0, NULL, 0);
        struct curl_slist *hdrs = NULL;
        e = attempt_headers(call, &hdrs, eb);
        if (e != TR_OK) {
            curl_slist_free_all(hdrs);
            return e;
        }
        char err[CURL_ERROR_SIZE] = "";
        CURL *c = easy_for(h, call, &x, hdrs, err);
        if (c == NULL) {
            curl_slist_free_all(hdrs);
            return tr_fail(eb, TR_ERR_INTERNAL, "cannot start a request");
        }
        x.e = c;
        CURLcode rc = curl_easy_perform(c);
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
        curl_easy_cleanup(c);
        curl_slist_free_all(hdrs);
        if (x.refused)
            return tr_fail(eb, TR_ERR_TOO_LARGE,
                           "%s: answer larger than expected", h->o.name);
        if (x.src_err != TR_OK)
            return x.src_err; /* the source's own message is in eb */
        enum next nx = next_step(h, call, n, rc, r->status, &reauthed);
        if (x.pulled > 0 && nx != NEXT_DONE) /* a source is read once */
            nx = rc == CURLE_OK ? NEXT_DONE : NEXT_FAIL;
        e = step(h, call, nx, n, rc, err, r, &again, eb);
        if (nx == NEXT_REAUTH)
            n--; /* new credentials are not a retry */
    }
    return e;
}

/* ---- streamed GET ---- */

struct blob_http_stream {
    CURLM *m;
    CURL *e;
    struct curl_slist *hdrs;
    struct xfer x; /* headers (and an error body) */
    struct blob_http_resp own;
    char *dst; /* the reader's buffer, while it reads */
    size_t want, got;
    struct buf spill; /* the rest of a delivery that overflowed */
    size_t spill_off;
    bool paused, done;
    CURLcode result;
    char err[CURL_ERROR_SIZE];
};

static size_t stream_body(char *p, size_t size, size_t n, void *ctx)
{
    struct blob_http_stream *s = ctx;
    size_t len = size * n;
    long status = 0;
    curl_easy_getinfo(s->e, CURLINFO_RESPONSE_CODE, &status);
    if (status < 200 || status > 299)
        return on_body(p, size, n, &s->x);
    size_t take = 0;
    if (s->dst != NULL && s->got < s->want) {
        take = s->want - s->got < len ? s->want - s->got : len;
        memcpy(s->dst + s->got, p, take);
        s->got += take;
    } else if (s->dst != NULL || s->spill.len + len > SPILL_PAUSE) {
        s->paused = true; /* the reader has what it asked: hold the rest */
        return CURL_WRITEFUNC_PAUSE;
    }
    if (take < len && buf_append(&s->spill, p + take, len - take) != TR_OK)
        return 0; /* cannot happen: SPILL_MAX is far above SPILL_PAUSE */
    return len;
}

enum until { UNTIL_HDRS, UNTIL_FULL, UNTIL_DONE };

static bool reached(const struct blob_http_stream *s, enum until u)
{
    if (s->done)
        return true;
    if (u == UNTIL_HDRS)
        return s->x.hdrs_done;
    if (u == UNTIL_FULL)
        return s->got == s->want || s->paused;
    return false;
}

/* Runs the transfer until u is reached or it ends. */
static void pump(struct blob_http_stream *s, enum until u)
{
    while (!reached(s, u)) {
        int running = 0;
        curl_multi_perform(s->m, &running);
        int left = 0;
        CURLMsg *msg = NULL;
        while ((msg = curl_multi_info_read(s->m, &left)) != NULL) {
            if (msg->msg == CURLMSG_DONE) {
                s->done = true;
                s->result = msg->data.result;
            }
        }
        if (reached(s, u))
            break;
        curl_multi_poll(s->m, NULL, 0, 1000, NULL);
    }
}

static void stream_free(struct blob_http_stream *s)
{
    if (s == NULL)
        return;
    if (s->m != NULL && s->e != NULL)
        curl_multi_remove_handle(s->m, s->e);
    if (s->e != NULL)
        curl_easy_cleanup(s->e);
    if (s->m != NULL)
        curl_multi_cleanup(s->m);
    curl_slist_free_all(s->hdrs);
    buf_free(&s->spill);
    blob_http_resp_free(&s->own);
    free(s);
}

/* One attempt: the transfer started and run until its headers are in. */
static tr_err stream_try(struct blob_http *h, const struct blob_http_call *c,
                         struct blob_http_stream **out, struct tr_errbuf *eb)
{
    struct blob_http_stream *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return tr_fail(eb, TR_ERR_NOMEM, "out of memory");
    blob_http_resp_init(&s->own);
    buf_init(&s->spill, SPILL_MAX);
    s->x.r = &s->own;
    s->x.max_resp = c->max_resp ? c->max_resp : RESP_MAX_DEFAULT;
    tr_err e = attempt_headers(c, &s->hdrs, eb);
    if (e != TR_OK)
        goto fail;
    s->e = easy_for(h, c, &s->x, s->hdrs, s->err);
    s->m = curl_multi_init();
    if (s->e == NULL || s->m == NULL) {
        e = tr_fail(eb, TR_ERR_INTERNAL, "cannot start a request");
        goto fail;
    }
    curl_easy_setopt(s->e, CURLOPT_WRITEFUNCTION, stream_body);
    curl_easy_setopt(s->e, CURLOPT_WRITEDATA, s);
    curl_easy_setopt(s->e, CURLOPT_BUFFERSIZE, STREAM_RECV_BUF);
    curl_multi_add_handle(s->m, s->e);
    pump(s, UNTIL_HDRS);
    curl_easy_getinfo(s->e, CURLINFO_RESPONSE_CODE, &s->own.status);
    *out = s;
    return TR_OK;
fail:
    stream_free(s);
    return e;
}

tr_err blob_http_stream_open(struct blob_http *h,
                             const struct blob_http_call *call,
                             struct blob_http_stream **out,
                             struct blob_http_resp *r, struct tr_errbuf *eb)
{
    *out = NULL;
    bool reauthed = false, again = true;
    tr_err e = TR_OK;
    for (int n = 1; again; n++) {
        struct blob_http_stream *s = NULL;
        e = stream_try(h, call, &s, eb);
        if (e != TR_OK)
            return e;
        bool broke = s->done && s->result != CURLE_OK;
        long st = s->own.status;
        if (!broke && st >= 200 && st <= 299) {
            buf_reset(&r->hdrs);
            (void)buf_append(&r->hdrs, s->own.hdrs.data, s->own.hdrs.len);
            r->status = st;
            *out = s;
            return TR_OK;
        }
        CURLcode rc = broke ? s->result : CURLE_OK;
        enum next nx = next_step(h, call, n, rc, st, &reauthed);
        if (nx == NEXT_DONE) {
            /* an error answer: let it finish to keep its body */
            pump(s, UNTIL_DONE);
            r->status = st;
            buf_reset(&r->hdrs);
            buf_reset(&r->body);
            (void)buf_append(&r->hdrs, s->own.hdrs.data, s->own.hdrs.len);
            (void)buf_append(&r->body, s->own.body.data, s->own.body.len);
        }
        e = step(h, call, nx, n, rc, s->err, &s->own, &again, eb);
        if (nx == NEXT_REAUTH)
            n--;
        stream_free(s);
    }
    return e;
}

tr_err blob_http_stream_read(struct blob_http_stream *s, void *buf, size_t n,
                             size_t *got, struct tr_errbuf *eb)
{
    *got = 0;
    s->dst = buf;
    s->want = n;
    s->got = 0;
    if (s->spill_off < s->spill.len) {
        size_t take = s->spill.len - s->spill_off;
        if (take > n)
            take = n;
        memcpy(buf, s->spill.data + s->spill_off, take);
        s->spill_off += take;
        s->got = take;
    }
    if (s->spill_off == s->spill.len) {
        buf_reset(&s->spill);
        s->spill_off = 0;
    }
    while (s->got < s->want && !s->done) {
        if (s->paused) {
            s->paused = false;
            curl_easy_pause(s->e, CURLPAUSE_CONT);
        }
        pump(s, UNTIL_FULL);
    }
    *got = s->got;
    s->dst = NULL;
    if (s->done && s->result != CURLE_OK && s->got < s->want)
        return tr_fail(eb, TR_ERR_IO, "transfer broke: %s",
                       s->err[0] ? s->err : curl_easy_strerror(s->result));
    return TR_OK;
}

void blob_http_stream_close(struct blob_http_stream *s)
{
    stream_free(s);
}

tr_err blob_http_escape(struct buf *b, const char *s, bool keep_slash)
{
    tr_err e = TR_OK;
    for (const unsigned char *p = (const unsigned char *)s; *p && !e; p++) {
        bool keep = isalnum(*p) || *p == '-' || *p == '.' || *p == '_' ||
                    *p == '~' || (keep_slash && *p == '/');
        e = keep ? buf_append(b, p, 1) : buf_printf(b, "%%%02X", *p);
    }
    return e;
}
