/*
 * blob_gcs_http.c - HTTP requests for the Google Cloud Storage backend:
 * one libcurl easy handle per request over a connection cache shared by
 * the store's threads (CURLSH with a mutex per lock kind), retries with
 * exponential backoff and jitter on failures that a later try may not
 * meet (no connection, timeouts, 5xx, 408, 429).
 *
 * Request bodies are in memory (at most one upload part), so a retry
 * sends the same bytes again; reply sinks are emptied before each try.
 * Nothing here logs a URL's query (an upload session id is a bearer
 * capability) or a header.
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#include <ctype.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "blob/blob_gcs_int.h"
#include "core/log.h"
#include "core/util.h"

#define CONNECT_TIMEOUT_S 10L
#define BACKOFF_CAP_MS 4000

struct attempt {
    struct blob_gcs_req *r;
    uint64_t skipped;
    bool overflow;
};

static void share_lock(CURL *c, curl_lock_data d, curl_lock_access a, void *ctx)
{
    struct blob_gcs_http *h = ctx;
    pthread_mutex_lock(&h->mu[d]);
}

static void share_unlock(CURL *c, curl_lock_data d, void *ctx)
{
    struct blob_gcs_http *h = ctx;
    pthread_mutex_unlock(&h->mu[d]);
}

tr_err blob_gcs_http_init(struct blob_gcs_http *h, struct tr_errbuf *eb)
{
    memset(h, 0, sizeof(*h));
    h->attempts = 5;
    h->backoff_ms = 200;
    h->timeout_s = 30;
    for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
        pthread_mutex_init(&h->mu[i], NULL);
    h->share = curl_share_init();
    if (h->share == NULL)
        return tr_fail(eb, TR_ERR_NOMEM, "cannot make a connection cache");
    curl_share_setopt(h->share, CURLSHOPT_LOCKFUNC, share_lock);
    curl_share_setopt(h->share, CURLSHOPT_UNLOCKFUNC, share_unlock);
    curl_share_setopt(h->share, CURLSHOPT_USERDATA, h);
    curl_share_setopt(h->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_CONNECT);
    curl_share_setopt(h->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
    curl_share_setopt(h->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
    return TR_OK;
}

void blob_gcs_http_free(struct blob_gcs_http *h)
{
    if (h->share != NULL)
        curl_share_cleanup(h->share);
    h->share = NULL;
    for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
        pthread_mutex_destroy(&h->mu[i]);
}

static size_t on_body(char *p, size_t size, size_t nmemb, void *ctx)
{
    struct attempt *at = ctx;
    size_t n = size * nmemb;
    size_t off = 0;
    if (at->skipped < at->r->skip) {
        uint64_t left = at->r->skip - at->skipped;
        off = left < n ? (size_t)left : n;
        at->skipped += off;
    }
    if (off == n || at->r->out == NULL)
        return n;
    if (buf_append(at->r->out, p + off, n - off) != TR_OK) {
        at->overflow = true;
        return 0;
    }
    return n;
}

/* Copies the value of header line p (name already matched) into out. */
static void header_value(const char *p, size_t n, size_t name_len, char *out,
                         size_t cap)
{
    size_t i = name_len;
    while (i < n && (p[i] == ' ' || p[i] == '\t'))
        i++;
    size_t end = n;
    while (end > i &&
           (p[end - 1] == '\r' || p[end - 1] == '\n' || p[end - 1] == ' '))
        end--;
    size_t len = end - i < cap - 1 ? end - i : cap - 1;
    memcpy(out, p + i, len);
    out[len] = '\0';
}

static size_t on_header(char *p, size_t size, size_t nmemb, void *ctx)
{
    struct attempt *at = ctx;
    size_t n = size * nmemb;
    if (n > 9 && strncasecmp(p, "location:", 9) == 0)
        header_value(p, n, 9, at->r->location, sizeof(at->r->location));
    else if (n > 6 && strncasecmp(p, "range:", 6) == 0)
        header_value(p, n, 6, at->r->range, sizeof(at->r->range));
    return n;
}

static bool retryable_status(long s)
{
    return s >= 500 || s == 408 || s == 429;
}

static void pause_ms(long ms)
{
    struct timespec ts = {.tv_sec = ms / 1000,
                          .tv_nsec = (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0)
        ;
}

/* "https://host:port" of url, for messages (never the path or query). */
static void origin_of(const char *url, char *out, size_t n)
{
    const char *p = strstr(url, "://");
    p = p == NULL ? url : p + 3;
    size_t len = strcspn(p, "/?#");
    snprintf(out, n, "%.*s%.*s", (int)(p - url), url, (int)len, p);
}

/* One warning per failed try that will be tried again. */
static void retry_note(const struct blob_gcs_req *r, int i, int attempts,
                       const char *why)
{
    if (i == attempts - 1)
        return;
    char origin[256];
    origin_of(r->url, origin, sizeof(origin));
    log_warn("gcs: %s %s: %s; trying again (%d of %d)", r->method, origin, why,
             i + 2, attempts);
}

static tr_err build_headers(struct blob_gcs_http *h, struct blob_gcs_req *r,
                            struct curl_slist **out, struct tr_errbuf *eb)
{
    struct curl_slist *l = NULL;
    for (struct curl_slist *s = r->headers; s != NULL; s = s->next)
        l = curl_slist_append(l, s->data);
    l = curl_slist_append(l, "Expect:");
    if (h->auth != NULL && !r->no_auth) {
        char tok[2048];
        tr_err e = blob_gcs_auth_token(h->auth, tok, sizeof(tok), eb);
        if (e != TR_OK) {
            curl_slist_free_all(l);
            return e;
        }
        char line[2100];
        snprintf(line, sizeof(line), "Authorization: Bearer %s", tok);
        l = curl_slist_append(l, line);
        memset(tok, 0, sizeof(tok));
        memset(line, 0, sizeof(line));
    }
    *out = l;
    return TR_OK;
}

/* One try: TR_OK with r->status, or the curl failure in *cc. */
static tr_err try_once(struct blob_gcs_http *h, struct blob_gcs_req *r,
                       CURLcode *cc, struct tr_errbuf *eb)
{
    struct curl_slist *hdrs = NULL;
    tr_err e = build_headers(h, r, &hdrs, eb);
    if (e != TR_OK)
        return e;
    CURL *c = curl_easy_init();
    if (c == NULL) {
        curl_slist_free_all(hdrs);
        return tr_fail(eb, TR_ERR_NOMEM, "cannot make an http handle");
    }
    struct attempt at = {.r = r};
    if (r->out != NULL)
        buf_reset(r->out);
    r->status = 0;
    r->location[0] = '\0';
    r->range[0] = '\0';
    curl_easy_setopt(c, CURLOPT_SHARE, h->share);
    curl_easy_setopt(c, CURLOPT_URL, r->url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, CONNECT_TIMEOUT_S);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, h->timeout_s);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &at);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &at);
    if (r->body != NULL) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, r->body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE,
                         (curl_off_t)r->body_len);
    }
    if (strcmp(r->method, "GET") != 0 &&
        !(strcmp(r->method, "POST") == 0 && r->body != NULL))
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, r->method);
    *cc = curl_easy_perform(c);
    if (*cc == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
    curl_easy_cleanup(c);
    curl_slist_free_all(hdrs);
    if (at.overflow)
        return tr_fail(eb, TR_ERR_TOO_LARGE, "gcs: reply larger than expected");
    return TR_OK;
}

tr_err blob_gcs_http_do(struct blob_gcs_http *h, struct blob_gcs_req *r,
                        struct tr_errbuf *eb)
{
    bool reauth = h->auth != NULL && !r->no_auth;
    long wait = h->backoff_ms;
    CURLcode cc = CURLE_OK;
    for (int i = 0; i < h->attempts; i++) {
        if (i > 0) {
            unsigned jitter;
            util_random(&jitter, sizeof(jitter));
            pause_ms(wait + (long)(jitter % (unsigned)(wait / 2 + 1)));
            wait = wait * 2 > BACKOFF_CAP_MS ? BACKOFF_CAP_MS : wait * 2;
        }
        tr_err e = try_once(h, r, &cc, eb);
        if (e != TR_OK)
            return e;
        if (cc != CURLE_OK) {
            retry_note(r, i, h->attempts, curl_easy_strerror(cc));
            continue;
        }
        if (r->status == 401 && reauth) {
            reauth = false;
            blob_gcs_auth_drop(h->auth);
            i--; /* a fresh token is not a retry */
            continue;
        }
        if (!retryable_status(r->status) || i == h->attempts - 1)
            return TR_OK;
        char why[32];
        snprintf(why, sizeof(why), "http %ld", r->status);
        retry_note(r, i, h->attempts, why);
    }
    char origin[256];
    origin_of(r->url, origin, sizeof(origin));
    return tr_fail(eb, TR_ERR_UNAVAILABLE, "gcs: cannot reach %s: %s", origin,
                   curl_easy_strerror(cc));
}

void blob_gcs_http_reason(const struct buf *body, char *out, size_t n)
{
    out[0] = '\0';
    if (body == NULL || body->len == 0)
        return;
    json_t *j = json_loadb(body->data, body->len, 0, NULL);
    const char *msg = NULL;
    if (j != NULL) {
        json_t *err = json_object_get(j, "error");
        msg = json_string_value(json_object_get(j, "error_description"));
        if (msg == NULL && json_is_object(err))
            msg = json_string_value(json_object_get(err, "message"));
        else if (msg == NULL)
            msg = json_string_value(err);
    }
    const char *src = msg != NULL ? msg : body->data;
    size_t i = 0;
    for (; i + 1 < n && i < 160 && src[i] != '\0' && src[i] != '\n'; i++)
        out[i] = isprint((unsigned char)src[i]) ? src[i] : '?';
    out[i] = '\0';
    json_decref(j);
}
