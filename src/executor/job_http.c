/*
 * job_http.c - struct job_api over the primaries' internal HTTP API
 * (job_http.h), for a secondary node's executor.
 *
 * Every request gets its own curl handle: the executor's workers and the
 * node's heartbeat call in parallel, and a handle per call keeps them
 * apart at a cost (a TLS handshake) that is small next to a plan.
 * Bodies come from memory or a file and go to memory (at most
 * REPLY_MAX; a reply is JSON or an error document) or, for 2xx replies
 * to downloads, straight to a file.
 *
 * Counters: running is jobs claimed and not finished, inflight the
 * claims waiting on a primary; both atomic.  drain is set once.
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#include "executor/job_http.h"

#include "core/curl_load.h"
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/log.h"
#include "core/util.h"
#include "executor/executor_int.h"

#define API_PREFIX "/api/internal/v1"
#define REPLY_MAX (1 << 20)
#define CONNECT_TIMEOUT_S 10L
#define CALL_TIMEOUT_S 60L
#define HEARTBEAT_TIMEOUT_S 10L
#define SLOW_SECONDS 60L /* a transfer below 1 byte/s this long fails */
#define BACKOFF_FIRST_MS 250
#define BACKOFF_MAX_MS 5000
#define CLAIM_PAUSE_MS 2000 /* after a failed claim */
#define TOOL_HEARTBEAT_MS 5000
#define VERIFIED_MAX 8
#define RETRY_AFTER_MAX_S 60L /* a longer Retry-After is cut to this */
#define ERR500_TRIES 3
#define PREFETCH_RETRY_MS 60000 /* then the claim loop comes back */
#define CONFIRM_TRY_MS 20000    /* under the lease a claim starts with */

struct job_http {
    struct job_http_opts o; /* strings in arena */
    struct arena *arena;
    char credential[256];
    struct job_api api;
    atomic_bool drain;
    atomic_int running;
    atomic_int inflight;
    atomic_bool unreachable;     /* the last call found no primary */
    atomic_bool tool_ready;      /* prefetch() done (or given up) */
    pthread_mutex_t prefetch_mu; /* one prefetch() at a time */
    char *injected; /* a claim reply from the idle process, or NULL (mu) */
    size_t injected_len;
    int prefetch_tries;                    /* under prefetch_mu */
    pthread_mutex_t mu;                    /* guards verified, injected */
    char verified[VERIFIED_MAX][PATH_MAX]; /* tools hashed by this process */
    int nverified;
};

/* One request and its reply. */
struct xfer {
    const char *method;
    const char *path; /* under API_PREFIX, query included */
    const char *body; /* in-memory body, or NULL */
    size_t len;
    const char *ctype;  /* of the body */
    const char *upload; /* file sent as the body (PUT), or NULL */
    int dest_fd;        /* a 2xx body goes here when >= 0 */
    long timeout_s;     /* 0: no total limit, only the slow-transfer one */
    const char *hb_job; /* heartbeat this job while the transfer runs */
    /* filled in */
    struct job_http *jh;
    long status;
    struct buf reply;
    char sha256[72];        /* X-Terrace-Sha256 */
    int64_t retry_after_ms; /* Retry-After of the reply, 0: none */
    bool lost;              /* a heartbeat said the job is not ours */
    int64_t next_hb;
    int write_err;
    char curl_err[CURL_ERROR_SIZE];
    CURLcode cc;
};

void job_http_defaults(struct job_http_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->claim_wait_ms = 25000;
    o->retry_ms = 600000;
}

/* ---- transport --------------------------------------------------------- */

static size_t on_write(char *p, size_t size, size_t n, void *arg)
{
    struct xfer *x = arg;
    size_t len = size * n;
    /* x->status: from the last status line (on_header) */
    if (x->dest_fd >= 0 && x->status >= 200 && x->status < 300) {
        for (size_t off = 0; off < len;) {
            ssize_t w = write(x->dest_fd, p + off, len - off);
            if (w < 0 && errno == EINTR)
                continue;
            if (w < 0) {
                x->write_err = errno;
                return 0;
            }
            off += (size_t)w;
        }
        return len;
    }
    if (x->reply.len + len <= REPLY_MAX)
        buf_append(&x->reply, p, len);
    return len;
}

static size_t on_header(char *p, size_t size, size_t n, void *arg)
{
    struct xfer *x = arg;
    size_t len = size * n;
    if (len > 9 && strncmp(p, "HTTP/", 5) == 0) {
        /* a status line: later ones (after a 100) replace earlier */
        const char *sp = memchr(p, ' ', len);
        x->status = sp != NULL ? strtol(sp + 1, NULL, 10) : 0;
        return len;
    }
    static const char ra[] = "retry-after:";
    if (len > sizeof(ra) && strncasecmp(p, ra, sizeof(ra) - 1) == 0) {
        /* delay-seconds; an HTTP date is left to the backoff */
        char v[24];
        snprintf(v, sizeof(v), "%.*s", (int)(len - (sizeof(ra) - 1)),
                 p + sizeof(ra) - 1);
        char *end = NULL;
        long sec = strtol(v, &end, 10);
        if (end != v && sec >= 0)
            x->retry_after_ms =
                (sec > RETRY_AFTER_MAX_S ? RETRY_AFTER_MAX_S : sec) * 1000;
        return len;
    }
    static const char name[] = "x-terrace-sha256:";
    if (len > sizeof(name) && strncasecmp(p, name, sizeof(name) - 1) == 0) {
        const char *v = p + sizeof(name) - 1;
        size_t vl = len - (sizeof(name) - 1);
        while (vl > 0 && (*v == ' ' || *v == '\t'))
            v++, vl--;
        while (vl > 0 &&
               (v[vl - 1] == '\r' || v[vl - 1] == '\n' || v[vl - 1] == ' '))
            vl--;
        snprintf(x->sha256, sizeof(x->sha256), "%.*s", (int)vl, v);
    }
    return len;
}

static tr_err job_heartbeat(void *ctx, const char *job_id, int *cancel,
                            struct tr_errbuf *eb);

static int on_progress(void *arg, curl_off_t dt, curl_off_t dn, curl_off_t ut,
                       curl_off_t un)
{
    struct xfer *x = arg;
    if (x->hb_job == NULL || util_now_ms() < x->next_hb)
        return 0;
    x->next_hb = util_now_ms() + TOOL_HEARTBEAT_MS;
    int cancel = 0;
    if (job_heartbeat(x->jh, x->hb_job, &cancel, NULL) == TR_ERR_NOT_FOUND) {
        x->lost = true;
        return 1; /* the job is no longer ours: the transfer is moot */
    }
    return 0;
}

static bool transient(const struct xfer *x)
{
    switch (x->cc) {
    case CURLE_OK:
        return x->status == 429 || x->status == 502 || x->status == 503 ||
               x->status == 504;
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_CONNECT:
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PARTIAL_FILE:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
        return true;
    default:
        return false;
    }
}

/* Everything of a request but its body. */
static void set_options(struct job_http *jh, struct xfer *x, CURL *c,
                        const char *url, struct curl_slist *h)
{
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, x->curl_err);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, CONNECT_TIMEOUT_S);
    if (x->timeout_s > 0)
        curl_easy_setopt(c, CURLOPT_TIMEOUT, x->timeout_s);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, SLOW_SECONDS);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_write);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, x);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, x);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    if (jh->o.ca_file != NULL && *jh->o.ca_file != '\0')
        curl_easy_setopt(c, CURLOPT_CAINFO, jh->o.ca_file);
    if (x->hb_job != NULL) {
        x->next_hb = util_now_ms() + TOOL_HEARTBEAT_MS;
        curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
        curl_easy_setopt(c, CURLOPT_XFERINFODATA, x);
        curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
    }
}

/* The body: a file (PUT), bytes (POST) or none.  False when the file
 * cannot be read (x->cc and write_err say so). */
static bool set_body(struct xfer *x, CURL *c, FILE **in)
{
    if (x->upload != NULL) {
        struct stat st;
        *in = fopen(x->upload, "rb");
        if (*in == NULL || fstat(fileno(*in), &st) != 0) {
            x->write_err = errno ? errno : EIO;
            x->cc = CURLE_READ_ERROR;
            return false;
        }
        curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
        curl_easy_setopt(c, CURLOPT_READDATA, *in);
        curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE, (curl_off_t)st.st_size);
    } else if (strcmp(x->method, "POST") == 0) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, x->body ? x->body : "");
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE,
                         (curl_off_t)(x->body ? x->len : 0));
    } else if (strcmp(x->method, "GET") != 0) {
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, x->method);
    }
    return true;
}

/* One attempt.  Leaves the outcome in x (cc, status, reply). */
static void attempt(struct job_http *jh, struct xfer *x)
{
    buf_reset(&x->reply);
    x->status = 0;
    x->retry_after_ms = 0;
    x->sha256[0] = '\0';
    x->curl_err[0] = '\0';
    x->write_err = 0;
    FILE *in = NULL;
    if (x->dest_fd >= 0 &&
        (lseek(x->dest_fd, 0, SEEK_SET) != 0 || ftruncate(x->dest_fd, 0) != 0))
        x->write_err = errno;
    CURL *c = curl_easy_init();
    if (c == NULL || x->write_err != 0) {
        x->cc = CURLE_FAILED_INIT;
        curl_easy_cleanup(c);
        return;
    }
    struct curl_slist *h = NULL;
    char hdr[320];
    if (jh->credential[0] != '\0') {
        snprintf(hdr, sizeof(hdr), "Authorization: Bearer %s", jh->credential);
        h = curl_slist_append(h, hdr);
    }
    snprintf(hdr, sizeof(hdr), "Content-Type: %s",
             x->ctype ? x->ctype : "application/json");
    h = curl_slist_append(h, hdr);
    h = curl_slist_append(h, "Expect:");
    char *url = NULL;
    size_t ul = strlen(jh->o.base_url) + strlen(API_PREFIX) + strlen(x->path);
    url = malloc(ul + 1);
    if (url != NULL)
        snprintf(url, ul + 1, "%s%s%s", jh->o.base_url, API_PREFIX, x->path);
    set_options(jh, x, c, url, h);
    if (!set_body(x, c, &in))
        goto out;
    x->cc = url != NULL ? curl_easy_perform(c) : CURLE_OUT_OF_MEMORY;
    long code = 0;
    if (curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code) == CURLE_OK &&
        code > 0)
        x->status = code;
out:
    if (in != NULL)
        fclose(in);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    free(url);
}

static tr_err status_err(long status)
{
    switch (status) {
    case 400:
        return TR_ERR_BAD_REQUEST;
    case 401:
        return TR_ERR_UNAUTHORIZED;
    case 403:
        return TR_ERR_FORBIDDEN;
    case 404:
        return TR_ERR_NOT_FOUND;
    case 409:
        return TR_ERR_CONFLICT;
    case 413:
        return TR_ERR_TOO_LARGE;
    case 415:
        return TR_ERR_UNSUPPORTED;
    case 422:
        return TR_ERR_INVALID;
    case 502:
    case 503:
    case 504:
        return TR_ERR_BUSY;
    default:
        return TR_ERR_INTERNAL;
    }
}

/* The detail (or title) of a JSON:API error reply, or the status. */
static void reply_error(const struct xfer *x, struct tr_errbuf *eb)
{
    json_t *doc = x->reply.len > 0
                      ? json_loadb(x->reply.data, x->reply.len, 0, NULL)
                      : NULL;
    json_t *err0 = json_array_get(json_object_get(doc, "errors"), 0);
    const char *d = json_string_value(json_object_get(err0, "detail"));
    if (d == NULL || *d == '\0')
        d = json_string_value(json_object_get(err0, "title"));
    if (d != NULL && *d != '\0')
        tr_fail(eb, status_err(x->status), "%s", d);
    else
        tr_fail(eb, status_err(x->status), "the primaries answered %ld",
                x->status);
    json_decref(doc);
}

static void pause_ms(struct job_http *jh, int ms)
{
    (void)jh;
    poll(NULL, 0, ms);
}

/* ms plus up to half as much again, at random: a hundred nodes told to
 * come back in 3 s do not all come back in the same millisecond. */
static int64_t jitter(int64_t ms)
{
    uint16_t r = 0;
    util_random(&r, sizeof(r));
    return ms + ms / 2 * r / UINT16_MAX;
}

/* Waits ms before x is tried again, keeping x's job's lease meanwhile:
 * retries are bounded by the lease, and a primary that still answers
 * heartbeats keeps it.  False when a heartbeat said the job is gone. */
static bool pause_xfer(struct job_http *jh, struct xfer *x, int64_t ms)
{
    int64_t end = util_now_ms() + ms;
    for (int64_t now = util_now_ms(); now < end; now = util_now_ms()) {
        if (x->hb_job != NULL && now >= x->next_hb) {
            int cancel = 0;
            x->next_hb = now + TOOL_HEARTBEAT_MS;
            if (job_heartbeat(jh, x->hb_job, &cancel, NULL) ==
                TR_ERR_NOT_FOUND) {
                x->lost = true;
                return false;
            }
        }
        int64_t left = end - util_now_ms();
        pause_ms(jh, left > 1000 ? 1000 : left < 1 ? 1 : (int)left);
    }
    return true;
}

/* Whether x failed in a way a later attempt may get past: no connection,
 * a timeout, 429/502/503/504, or a 500 (tried at most ERR500_TRIES
 * times: a primary restarting, not a bug answered over and over). */
static bool retry_worthy(const struct xfer *x, int tries)
{
    if (transient(x))
        return true;
    return x->cc == CURLE_OK && x->status == 500 && tries < ERR500_TRIES;
}

/* Runs x, retrying what retry_worthy() allows for up to retry_ms, with
 * jittered exponential backoff, or as long as Retry-After asks. */
static tr_err perform(struct job_http *jh, struct xfer *x, int64_t retry_ms,
                      struct tr_errbuf *eb)
{
    x->jh = jh;
    x->lost = false;
    int64_t deadline = util_now_ms() + retry_ms;
    int64_t backoff = BACKOFF_FIRST_MS;
    bool said = false;
    for (int tries = 1;; tries++) {
        attempt(jh, x);
        bool again = retry_worthy(x, tries);
        /* a primary that says "later" (Retry-After) is reachable */
        atomic_store(&jh->unreachable, transient(x) && x->retry_after_ms == 0);
        int64_t wait =
            jitter(x->retry_after_ms > backoff ? x->retry_after_ms : backoff);
        if (!again || x->lost || util_now_ms() + wait > deadline)
            break;
        if (!said)
            log_warn("cannot reach the primaries (%s %s: %s); retrying",
                     x->method, x->path,
                     x->cc != CURLE_OK ? curl_easy_strerror(x->cc)
                     : x->retry_after_ms > 0
                         ? "busy, asked to come back later"
                         : "bad gateway, unavailable or internal error");
        said = true;
        if (!pause_xfer(jh, x, wait))
            break;
        backoff = backoff * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : backoff * 2;
    }
    if (said && !retry_worthy(x, 0))
        log_info("reached the primaries again (%s %s)", x->method, x->path);
    if (x->lost)
        return tr_fail(eb, TR_ERR_CONFLICT, "the job is no longer this node's");
    if (x->write_err != 0)
        return tr_fail(eb, TR_ERR_IO, "cannot write or read a local file: %s",
                       strerror(x->write_err));
    if (x->cc != CURLE_OK)
        return tr_fail(eb, transient(x) ? TR_ERR_BUSY : TR_ERR_IO,
                       "cannot reach the primaries at %s: %s", jh->o.base_url,
                       x->curl_err[0] ? x->curl_err
                                      : curl_easy_strerror(x->cc));
    if (x->status >= 400) {
        reply_error(x, eb);
        return status_err(x->status);
    }
    return TR_OK;
}

tr_err job_http_call(struct job_http *jh, const char *method, const char *path,
                     const char *body, int64_t retry_ms, long *status,
                     json_t **reply, struct tr_errbuf *eb)
{
    struct xfer x = {.method = method,
                     .path = path,
                     .body = body,
                     .len = body ? strlen(body) : 0,
                     .dest_fd = -1,
                     .timeout_s = CALL_TIMEOUT_S};
    buf_init(&x.reply, REPLY_MAX);
    tr_err e = perform(jh, &x, retry_ms, eb);
    if (status != NULL)
        *status = x.status;
    if (reply != NULL)
        *reply = e == TR_OK && x.reply.len > 0
                     ? json_loadb(x.reply.data, x.reply.len, 0, NULL)
                     : NULL;
    buf_free(&x.reply);
    return e;
}

/* A GET whose 2xx body is written to path (created 0600). */
static tr_err download_for(struct job_http *jh, const char *path,
                           const char *dest, const char *hb_job,
                           int64_t retry_ms, char *sha256, size_t sha_size,
                           struct tr_errbuf *eb)
{
    int fd = open(dest, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return tr_fail(eb, TR_ERR_IO, "cannot create %s: %s", dest,
                       strerror(errno));
    struct xfer x = {
        .method = "GET", .path = path, .dest_fd = fd, .hb_job = hb_job};
    buf_init(&x.reply, REPLY_MAX);
    tr_err e = perform(jh, &x, retry_ms, eb);
    if (e == TR_OK && fsync(fd) != 0)
        e = tr_fail(eb, TR_ERR_IO, "cannot write %s: %s", dest,
                    strerror(errno));
    if (close(fd) != 0 && e == TR_OK)
        e = tr_fail(eb, TR_ERR_IO, "cannot write %s: %s", dest,
                    strerror(errno));
    if (sha256 != NULL)
        snprintf(sha256, sha_size, "%s", x.sha256);
    buf_free(&x.reply);
    return e;
}

static tr_err download(struct job_http *jh, const char *path, const char *dest,
                       const char *hb_job, char *sha256, size_t sha_size,
                       struct tr_errbuf *eb)
{
    return download_for(jh, path, dest, hb_job, jh->o.retry_ms, sha256,
                        sha_size, eb);
}

static tr_err upload(struct job_http *jh, const char *path, const char *file,
                     const char *hb_job, struct tr_errbuf *eb)
{
    struct xfer x = {.method = "PUT",
                     .path = path,
                     .upload = file,
                     .ctype = "application/octet-stream",
                     .dest_fd = -1,
                     .hb_job = hb_job};
    buf_init(&x.reply, REPLY_MAX);
    tr_err e = perform(jh, &x, jh->o.retry_ms, eb);
    buf_free(&x.reply);
    return e;
}

/* ---- the job: parsing the claim reply ---------------------------------- */

static tr_err get_str(struct arena *a, json_t *o, const char *name,
                      bool required, const char **out, struct tr_errbuf *eb)
{
    json_t *v = json_object_get(o, name);
    *out = NULL;
    if (v == NULL || json_is_null(v)) {
        if (required)
            return tr_fail(eb, TR_ERR_INVALID, "the job has no %s", name);
        return TR_OK;
    }
    if (!json_is_string(v))
        return tr_fail(eb, TR_ERR_INVALID, "the job's %s is not a string",
                       name);
    *out = arena_strdup(a, json_string_value(v));
    if (required && **out == '\0')
        return tr_fail(eb, TR_ERR_INVALID, "the job's %s is empty", name);
    return TR_OK;
}

static tr_err get_bool(json_t *o, const char *name, bool *out,
                       struct tr_errbuf *eb)
{
    json_t *v = json_object_get(o, name);
    *out = false;
    if (v == NULL || json_is_null(v))
        return TR_OK;
    if (!json_is_boolean(v))
        return tr_fail(eb, TR_ERR_INVALID, "the job's %s is not a boolean",
                       name);
    *out = json_is_true(v);
    return TR_OK;
}

static tr_err get_strs(struct arena *a, json_t *o, const char *name,
                       const char ***out, int *n, struct tr_errbuf *eb)
{
    json_t *v = json_object_get(o, name);
    *out = NULL;
    *n = 0;
    if (v == NULL || json_is_null(v))
        return TR_OK;
    if (!json_is_array(v) || json_array_size(v) > 10000)
        return tr_fail(eb, TR_ERR_INVALID, "the job's %s is not a list", name);
    size_t len = json_array_size(v);
    *out = arena_alloc(a, sizeof(char *) * (len + 1));
    for (size_t i = 0; i < len; i++) {
        const char *s = json_string_value(json_array_get(v, i));
        if (s == NULL)
            return tr_fail(eb, TR_ERR_INVALID,
                           "the job's %s holds a non-string", name);
        (*out)[i] = arena_strdup(a, s);
    }
    (*out)[len] = NULL;
    *n = (int)len;
    return TR_OK;
}

static tr_err get_vars(struct arena *a, json_t *o, struct job *j,
                       struct tr_errbuf *eb)
{
    json_t *v = json_object_get(o, "vars");
    if (v == NULL || json_is_null(v))
        return TR_OK;
    if (!json_is_array(v) || json_array_size(v) > 100000)
        return tr_fail(eb, TR_ERR_INVALID, "the job's vars is not a list");
    size_t len = json_array_size(v);
    j->vars = arena_alloc(a, sizeof(struct job_var) * (len ? len : 1));
    for (size_t i = 0; i < len; i++) {
        json_t *it = json_array_get(v, i);
        struct job_var *jv = &j->vars[i];
        tr_err e = json_is_object(it) ? TR_OK
                                      : tr_fail(eb, TR_ERR_INVALID,
                                                "the job's vars holds a "
                                                "non-object");
        if (e == TR_OK)
            e = get_str(a, it, "key", true, &jv->key, eb);
        if (e == TR_OK)
            e = get_str(a, it, "value", false, &jv->value, eb);
        if (e == TR_OK)
            e = get_bool(it, "env", &jv->env, eb);
        if (e == TR_OK)
            e = get_bool(it, "hcl", &jv->hcl, eb);
        if (e == TR_OK)
            e = get_bool(it, "sensitive", &jv->sensitive, eb);
        if (e != TR_OK)
            return e;
        if (jv->value == NULL)
            jv->value = "";
    }
    j->nvars = (int)len;
    return TR_OK;
}

tr_err job_http_parse_job(struct arena *a, json_t *o, struct job *j,
                          struct tr_errbuf *eb)
{
    memset(j, 0, sizeof(*j));
    if (!json_is_object(o))
        return tr_fail(eb, TR_ERR_INVALID, "the claim reply holds no job");
    static const char *const required[] = {
        "id",           "run_id",       "phase_id",    "org",   "workspace",
        "workspace_id", "tool_version", "tool_sha256", "token", "api_url"};
    const char **dst[] = {&j->id,           &j->run_id,      &j->phase_id,
                          &j->org,          &j->workspace,   &j->workspace_id,
                          &j->tool_version, &j->tool_sha256, &j->token,
                          &j->api_url};
    tr_err e = TR_OK;
    for (size_t i = 0; e == TR_OK && i < sizeof(dst) / sizeof(dst[0]); i++)
        e = get_str(a, o, required[i], true, dst[i], eb);
    const char *phase = NULL;
    if (e == TR_OK)
        e = get_str(a, o, "phase", true, &phase, eb);
    if (e == TR_OK && strcmp(phase, "plan") == 0)
        j->phase = JOB_PLAN;
    else if (e == TR_OK && strcmp(phase, "apply") == 0)
        j->phase = JOB_APPLY;
    else if (e == TR_OK)
        e = tr_fail(eb, TR_ERR_INVALID, "the job's phase is not plan or apply");
    if (e == TR_OK)
        e = get_str(a, o, "org_id", false, &j->org_id, eb);
    if (e == TR_OK)
        e = get_str(a, o, "cv_id", false, &j->cv_id, eb);
    if (e == TR_OK)
        e = get_str(a, o, "working_directory", false, &j->working_directory,
                    eb);
    if (e == TR_OK)
        e = get_str(a, o, "ssh_key", false, &j->ssh_key, eb);
    static const char *const flags[] = {
        "speculative",  "is_destroy", "refresh",
        "refresh_only", "save_plan",  "structured",
        "want_schemas", "defer_json", "make_json"};
    bool *fdst[] = {&j->speculative,  &j->is_destroy, &j->refresh,
                    &j->refresh_only, &j->save_plan,  &j->structured,
                    &j->want_schemas, &j->defer_json, &j->make_json};
    for (size_t i = 0; e == TR_OK && i < sizeof(fdst) / sizeof(fdst[0]); i++)
        e = get_bool(o, flags[i], fdst[i], eb);
    if (e == TR_OK)
        e = get_strs(a, o, "targets", &j->targets, &j->ntargets, eb);
    if (e == TR_OK)
        e = get_strs(a, o, "replaces", &j->replaces, &j->nreplaces, eb);
    if (e == TR_OK)
        e = get_vars(a, o, j, eb);
    json_t *t = json_object_get(o, "timeout_s");
    if (e == TR_OK && t != NULL && !json_is_null(t)) {
        if (!json_is_integer(t) || json_integer_value(t) < 0)
            e = tr_fail(eb, TR_ERR_INVALID,
                        "the job's timeout_s is not a non-negative integer");
        else
            j->timeout_s = json_integer_value(t);
    }
    if (e == TR_OK && j->working_directory == NULL)
        j->working_directory = "";
    if (e == TR_OK && j->org_id == NULL)
        j->org_id = j->org;
    return e;
}

/* ---- the tool cache ---------------------------------------------------- */

static bool safe_version(const char *v)
{
    size_t n = v != NULL ? strlen(v) : 0;
    if (n == 0 || n > 64 || v[0] == '.')
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((v[i] >= '0' && v[i] <= '9') || (v[i] >= 'a' && v[i] <= 'z') ||
              (v[i] >= 'A' && v[i] <= 'Z') || v[i] == '.' || v[i] == '-' ||
              v[i] == '+' || v[i] == '_'))
            return false;
    return true;
}

static bool safe_sha(const char *s)
{
    if (s == NULL || strlen(s) != 64)
        return false;
    for (int i = 0; i < 64; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    return true;
}

static tr_err tool_dir(struct arena *a, const char *dir, const char *version,
                       const char *sha256, char **out, struct tr_errbuf *eb)
{
    if (!safe_version(version))
        return tr_fail(eb, TR_ERR_INVALID,
                       "the tool version is not usable "
                       "as a directory name");
    if (!safe_sha(sha256))
        return tr_fail(eb, TR_ERR_INVALID,
                       "the tool checksum is not 64 lower-case hex digits");
    *out = arena_printf(a, "%s/%s-%s", dir, version, sha256);
    return TR_OK;
}

tr_err job_http_tool_cached(struct arena *a, const char *dir,
                            const char *version, const char *sha256,
                            const char **path, struct tr_errbuf *eb)
{
    char *vdir = NULL;
    tr_err e = tool_dir(a, dir, version, sha256, &vdir, eb);
    if (e != TR_OK)
        return e;
    char *p = arena_printf(a, "%s/tofu", vdir);
    if (access(p, F_OK) != 0)
        return tr_fail(eb, TR_ERR_NOT_FOUND, "tool %s is not cached", version);
    char *have = NULL;
    /* verified when stored: trusted while the file is unchanged */
    if (exec_sidecar_read(a, p, &have) && strcmp(have, sha256) == 0) {
        *path = p;
        return TR_OK;
    }
    e = exec_file_sha256(a, p, &have, eb);
    if (e == TR_OK && strcmp(have, sha256) != 0) {
        log_warn("the cached tool %s has checksum %s, not %s; fetching it "
                 "again",
                 p, have, sha256);
        unlink(p);
        return tr_fail(eb, TR_ERR_NOT_FOUND, "tool %s is not cached", version);
    }
    if (e == TR_OK) {
        *path = p;
        /* a cache from before sidecars: hashed this once */
        struct tr_errbuf seb = {{0}};
        tr_err se = exec_sidecar_write(a, p, sha256, &seb);
        if (se != TR_OK)
            log_warn("%s", tr_errbuf_msg(&seb, se));
    }
    return e;
}

tr_err job_http_tool_install(struct arena *a, const char *dir,
                             const char *version, const char *sha256,
                             const char *tmp, const char **path,
                             struct tr_errbuf *eb)
{
    char *vdir = NULL, *have = NULL;
    tr_err e = tool_dir(a, dir, version, sha256, &vdir, eb);
    if (e == TR_OK)
        e = exec_file_sha256(a, tmp, &have, eb);
    if (e == TR_OK && strcmp(have, sha256) != 0)
        e = tr_fail(eb, TR_ERR_CRYPTO,
                    "the tool %s the primaries sent has checksum %s, but %s "
                    "is registered for it",
                    version, have, sha256);
    if (e == TR_OK && mkdir(vdir, 0755) != 0 && errno != EEXIST)
        e = tr_fail(eb, TR_ERR_IO, "cannot create %s: %s", vdir,
                    strerror(errno));
    char *p = e == TR_OK ? arena_printf(a, "%s/tofu", vdir) : NULL;
    if (e == TR_OK && chmod(tmp, 0755) != 0)
        e = tr_fail(eb, TR_ERR_IO, "cannot chmod %s: %s", tmp, strerror(errno));
    if (e == TR_OK && rename(tmp, p) != 0)
        e = tr_fail(eb, TR_ERR_IO, "cannot rename %s: %s", tmp,
                    strerror(errno));
    /* after the rename: the sidecar names the file where it stays */
    if (e == TR_OK)
        e = exec_sidecar_write(a, p, sha256, eb);
    if (e != TR_OK)
        unlink(tmp);
    else
        *path = p;
    return e;
}

static bool verified(struct job_http *jh, const char *path, bool add)
{
    bool found = false;
    pthread_mutex_lock(&jh->mu);
    for (int i = 0; i < jh->nverified && !found; i++)
        found = strcmp(jh->verified[i], path) == 0;
    if (!found && add && strlen(path) < PATH_MAX) {
        snprintf(jh->verified[jh->nverified % VERIFIED_MAX], PATH_MAX, "%s",
                 path);
        if (jh->nverified < VERIFIED_MAX)
            jh->nverified++;
    }
    pthread_mutex_unlock(&jh->mu);
    return found;
}

/* The job's tool, from the cache or fetched into it (retrying for up to
 * retry_ms; j->id NULL: for no job yet). */
static tr_err fetch_tool(struct job_http *jh, struct arena *a,
                         const struct job *j, int64_t retry_ms,
                         const char **path, struct tr_errbuf *eb)
{
    const char *dir = arena_printf(a, "%s/tools", jh->o.data_dir);
    char *vdir = NULL;
    tr_err e = tool_dir(a, dir, j->tool_version, j->tool_sha256, &vdir, eb);
    if (e != TR_OK)
        return e;
    const char *p = arena_printf(a, "%s/tofu", vdir);
    if (verified(jh, p, false) && access(p, X_OK) == 0) {
        *path = p;
        return TR_OK;
    }
    e = job_http_tool_cached(a, dir, j->tool_version, j->tool_sha256, path, eb);
    if (e != TR_ERR_NOT_FOUND) {
        if (e == TR_OK)
            verified(jh, p, true);
        return e;
    }
    if (mkdir(dir, 0755) != 0 && errno != EEXIST)
        return tr_fail(eb, TR_ERR_IO, "cannot create %s: %s", dir,
                       strerror(errno));
    char *tmp = arena_printf(a, "%s/.fetch-XXXXXX", dir);
    int fd = mkstemp(tmp);
    if (fd < 0)
        return tr_fail(eb, TR_ERR_IO, "cannot create a file in %s: %s", dir,
                       strerror(errno));
    close(fd);
    /* the version in a path: '+' would read as a space */
    struct buf esc;
    buf_init(&esc, 256);
    for (const char *c = j->tool_version; *c; c++)
        buf_puts(&esc, *c == '+' ? "%2B" : (char[]){*c, 0});
    char *route = arena_printf(a, "/tools/%.*s", (int)esc.len, esc.data);
    buf_free(&esc);
    char sha[72] = "";
    log_info("fetching tool %s from the primaries", j->tool_version);
    e = download_for(jh, route, tmp, j->id, retry_ms, sha, sizeof(sha), eb);
    if (e == TR_OK && sha[0] != '\0' && strcasecmp(sha, j->tool_sha256) != 0)
        e = tr_fail(eb, TR_ERR_CRYPTO,
                    "the primaries serve tool %s with checksum %s, but the "
                    "job expects %s",
                    j->tool_version, sha, j->tool_sha256);
    if (e != TR_OK) {
        unlink(tmp);
        return e;
    }
    e = job_http_tool_install(a, dir, j->tool_version, j->tool_sha256, tmp,
                              path, eb);
    if (e == TR_OK)
        verified(jh, *path, true);
    return e;
}

/* The tool the primaries call latest, fetched (or found cached) before
 * the node claims its first job: a job then finds it here, and a hundred
 * nodes starting together fetch it at the pace the primaries allow
 * (503 + Retry-After) instead of each holding a job while it downloads.
 * TR_OK also when the primaries register no tool (nothing to fetch);
 * TR_ERR_BUSY while they cannot be reached or stay busy. */
static tr_err prefetch(struct job_http *jh, struct arena *a,
                       struct tr_errbuf *eb)
{
    json_t *doc = NULL;
    tr_err e = job_http_call(jh, "GET", "/tool-versions/latest", NULL,
                             PREFETCH_RETRY_MS, NULL, &doc, eb);
    if (e == TR_ERR_NOT_FOUND) {
        json_decref(doc);
        return TR_OK;
    }
    const char *v = json_string_value(json_object_get(doc, "version"));
    const char *sha = json_string_value(json_object_get(doc, "sha256"));
    if (e == TR_OK && (v == NULL || sha == NULL))
        e = tr_fail(eb, TR_ERR_INVALID,
                    "the primaries' tool version reply is malformed");
    struct job j = {.tool_version = e == TR_OK ? arena_strdup(a, v) : NULL,
                    .tool_sha256 = e == TR_OK ? arena_strdup(a, sha) : NULL};
    json_decref(doc);
    const char *path = NULL;
    if (e == TR_OK)
        e = fetch_tool(jh, a, &j, PREFETCH_RETRY_MS, &path, eb);
    if (e == TR_OK)
        log_info("tool %s ready at %s", j.tool_version, path);
    return e;
}

/* True once the node may claim: the latest tool is here, or cannot be
 * had for a reason waiting will not fix (a job then fetches its own). */
static bool tool_ready(struct job_http *jh, struct arena *a)
{
    if (atomic_load(&jh->tool_ready))
        return true;
    /* one worker fetches; the others wait for it */
    if (pthread_mutex_trylock(&jh->prefetch_mu) != 0)
        return false;
    if (!atomic_load(&jh->tool_ready)) {
        struct tr_errbuf eb = {{0}};
        tr_err e = prefetch(jh, a, &eb);
        if (e != TR_OK && e != TR_ERR_BUSY)
            log_warn("cannot fetch the tool before claiming jobs (%s); each "
                     "job fetches its own",
                     tr_errbuf_msg(&eb, e));
        else if (e == TR_ERR_BUSY && jh->prefetch_tries++ == 0)
            log_warn("cannot fetch the tool yet (%s); no job is claimed "
                     "until it is here",
                     tr_errbuf_msg(&eb, e));
        if (e != TR_ERR_BUSY)
            atomic_store(&jh->tool_ready, true);
    }
    pthread_mutex_unlock(&jh->prefetch_mu);
    return atomic_load(&jh->tool_ready);
}

/* ---- struct job_api ---------------------------------------------------- */

static tr_err job_attach_json(void *ctx, const char *job_id, const char *path,
                              struct tr_errbuf *eb)
{
    struct job_http *jh = ctx;
    struct arena *a = arena_new();
    tr_err e = upload(jh, arena_printf(a, "/jobs/%s/json-plan", job_id), path,
                      NULL, eb);
    arena_destroy(a);
    return e;
}

static tr_err job_finish(void *ctx, const char *job_id,
                         const struct job_result *res, struct tr_errbuf *eb);

/* Ends a claimed job the node cannot run (its tool cannot be had), with
 * the reason in its log. */
static void refuse(struct job_http *jh, const char *job_id, const char *why)
{
    struct arena *a = arena_new();
    const char *text = arena_printf(a, "\nError: %s\n", why);
    struct xfer x = {.method = "POST",
                     .path = arena_printf(a, "/jobs/%s/log", job_id),
                     .body = text,
                     .len = strlen(text),
                     .ctype = "application/octet-stream",
                     .dest_fd = -1,
                     .timeout_s = CALL_TIMEOUT_S};
    buf_init(&x.reply, REPLY_MAX);
    perform(jh, &x, jh->o.retry_ms, NULL);
    buf_free(&x.reply);
    struct job_result res = {.outcome = JOB_ERRORED, .error = why};
    struct tr_errbuf eb = {{0}};
    tr_err e = job_finish(jh, job_id, &res, &eb);
    if (e != TR_OK)
        log_warn("job %s: cannot finish: %s", job_id, tr_errbuf_msg(&eb, e));
    arena_destroy(a);
}

/* Confirms a claimed job with its first heartbeat (internal.c): until a
 * primary hears it, the job may be put back in the queue for another
 * node.  Tried for up to CONFIRM_TRY_MS; TR_OK means the job is this
 * node's to run, anything else that it must not run it (withdrawn, or
 * unknown: then its lease ends it). */
static tr_err confirm(struct job_http *jh, const char *job_id,
                      struct tr_errbuf *eb)
{
    int64_t deadline = util_now_ms() + CONFIRM_TRY_MS;
    int64_t backoff = BACKOFF_FIRST_MS;
    for (;;) {
        int cancel = 0;
        tr_err e = job_heartbeat(jh, job_id, &cancel, eb);
        if (e != TR_ERR_BUSY && e != TR_ERR_IO && e != TR_ERR_INTERNAL)
            return e;
        int64_t wait = jitter(backoff);
        if (util_now_ms() + wait > deadline)
            return e;
        pause_ms(jh, (int)wait);
        backoff = backoff * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : backoff * 2;
    }
}

/* The claim reply handed over by the idle process (job_http_inject()),
 * taken once; NULL when there is none. */
static char *take_injected(struct job_http *jh, size_t *len)
{
    pthread_mutex_lock(&jh->mu);
    char *body = jh->injected;
    *len = jh->injected_len;
    jh->injected = NULL;
    pthread_mutex_unlock(&jh->mu);
    return body;
}

static tr_err job_claim(void *ctx, struct arena *a, const char *node,
                        int wait_ms, struct job *out, struct tr_errbuf *eb)
{
    struct job_http *jh = ctx;
    size_t injected_len = 0;
    char *injected = take_injected(jh, &injected_len);
    if (injected == NULL && atomic_load(&jh->drain)) {
        pause_ms(jh, wait_ms < 1000 ? wait_ms : 1000);
        return tr_fail(eb, TR_ERR_NOT_FOUND, "draining");
    }
    if (wait_ms < 0 || wait_ms > 30000)
        wait_ms = 30000;
    if (injected == NULL && !tool_ready(jh, a)) {
        pause_ms(jh, (int)jitter(CLAIM_PAUSE_MS));
        return tr_fail(eb, TR_ERR_NOT_FOUND, "the tool is not here yet");
    }
    if (injected == NULL) /* an injected one counts from its injection */
        atomic_fetch_add(&jh->inflight, 1);
    struct xfer x = {.method = "POST",
                     .path = arena_printf(a, "/claim?wait=%d", wait_ms),
                     .body = "{}",
                     .len = 2,
                     .dest_fd = -1,
                     .timeout_s = CALL_TIMEOUT_S + wait_ms / 1000};
    buf_init(&x.reply, REPLY_MAX);
    bool was = atomic_load(&jh->unreachable);
    tr_err e = TR_OK;
    if (injected != NULL) /* claimed by the idle process: its reply */
        x.status = 200;
    else
        e = perform(jh, &x, 0, eb);
    json_t *doc = NULL;
    if (e == TR_OK && x.status == 204)
        e = tr_fail(eb, TR_ERR_NOT_FOUND, "no job came");
    else if (e == TR_OK && injected != NULL)
        doc = json_loadb(injected, injected_len, 0, NULL);
    else if (e == TR_OK)
        doc =
            json_loadb(x.reply.data ? x.reply.data : "", x.reply.len, 0, NULL);
    free(injected);
    if (e == TR_OK)
        e = job_http_parse_job(a, json_object_get(doc, "job"), out, eb);
    /* a job it cannot read is still this node's: ended, not left to its
     * lease (refuse() below) */
    const char *bad_id = NULL;
    if (e == TR_ERR_INVALID)
        bad_id = arena_strdup(a, json_string_value(json_object_get(
                                     json_object_get(doc, "job"), "id")));
    json_decref(doc);
    buf_free(&x.reply);
    if (e == TR_OK || bad_id != NULL)
        atomic_fetch_add(&jh->running, 1);
    atomic_fetch_sub(&jh->inflight, 1);
    if (bad_id != NULL) {
        const char *why = arena_printf(a, "this node cannot read the job: %s",
                                       tr_errbuf_msg(eb, e));
        log_warn("job %s: %s", bad_id, why);
        refuse(jh, bad_id, why);
        return tr_fail(eb, TR_ERR_NOT_FOUND, "the job could not be run");
    }
    if (e == TR_ERR_BUSY || e == TR_ERR_IO || e == TR_ERR_UNAUTHORIZED) {
        /* said once per outage; the executor asks again */
        if (!was)
            log_warn("cannot claim jobs: %s", tr_errbuf_msg(eb, e));
        pause_ms(jh, CLAIM_PAUSE_MS);
        return tr_fail(eb, TR_ERR_NOT_FOUND, "no primary reachable");
    }
    if (e != TR_OK)
        return e;
    /* the job starts only once a primary has heard of it from here */
    struct tr_errbuf ceb = {{0}};
    tr_err ce = confirm(jh, out->id, &ceb);
    if (ce != TR_OK) {
        log_warn("job %s: the claim could not be confirmed (%s); not "
                 "running it",
                 out->id, tr_errbuf_msg(&ceb, ce));
        atomic_fetch_sub(&jh->running, 1);
        return tr_fail(eb, TR_ERR_NOT_FOUND, "the claim was withdrawn");
    }
    out->ca_file = jh->o.ca_file;
    struct tr_errbuf teb = {{0}};
    tr_err te = fetch_tool(jh, a, out, jh->o.retry_ms, &out->tool_path, &teb);
    if (te != TR_OK) {
        const char *why =
            arena_printf(a, "cannot get tool %s from the primaries: %s",
                         out->tool_version, tr_errbuf_msg(&teb, te));
        log_warn("job %s: %s", out->id, why);
        refuse(jh, out->id, why);
        return tr_fail(eb, TR_ERR_NOT_FOUND, "the job could not be run");
    }
    return TR_OK;
}

static tr_err job_heartbeat(void *ctx, const char *job_id, int *cancel,
                            struct tr_errbuf *eb)
{
    struct job_http *jh = ctx;
    char path[160];
    snprintf(path, sizeof(path), "/jobs/%s/heartbeat", job_id);
    struct xfer x = {.method = "POST",
                     .path = path,
                     .body = "{}",
                     .len = 2,
                     .dest_fd = -1,
                     .timeout_s = HEARTBEAT_TIMEOUT_S};
    buf_init(&x.reply, REPLY_MAX);
    tr_err e = perform(jh, &x, 0, eb);
    json_t *doc = e == TR_OK ? json_loadb(x.reply.data ? x.reply.data : "",
                                          x.reply.len, 0, NULL)
                             : NULL;
    buf_free(&x.reply);
    if (e == TR_OK)
        *cancel = (int)json_integer_value(json_object_get(doc, "cancel"));
    json_decref(doc);
    /* only the primaries' word loses a lease (executor.h) */
    if (e == TR_ERR_CONFLICT || e == TR_ERR_NOT_FOUND)
        return TR_ERR_NOT_FOUND;
    return e;
}

static tr_err job_append_log(void *ctx, const char *job_id, const char *data,
                             size_t len, uint64_t offset, struct tr_errbuf *eb)
{
    struct job_http *jh = ctx;
    char path[192];
    snprintf(path, sizeof(path), "/jobs/%s/log?offset=%llu", job_id,
             (unsigned long long)offset);
    struct xfer x = {.method = "POST",
                     .path = path,
                     .body = data,
                     .len = len,
                     .ctype = "application/octet-stream",
                     .dest_fd = -1,
                     .timeout_s = CALL_TIMEOUT_S,
                     .hb_job = job_id};
    buf_init(&x.reply, REPLY_MAX);
    tr_err e = perform(jh, &x, jh->o.retry_ms, eb);
    buf_free(&x.reply);
    return e;
}

static tr_err job_fetch_config(void *ctx, const char *job_id,
                               const char *dest_path, struct tr_errbuf *eb)
{
    char path[160];
    snprintf(path, sizeof(path), "/jobs/%s/config", job_id);
    return download(ctx, path, dest_path, job_id, NULL, 0, eb);
}

static tr_err job_fetch_plan(void *ctx, const char *job_id,
                             const char *dest_path, struct tr_errbuf *eb)
{
    char path[160];
    snprintf(path, sizeof(path), "/jobs/%s/plan", job_id);
    return download(ctx, path, dest_path, job_id, NULL, 0, eb);
}

static const char *outcome_name(enum job_outcome o)
{
    switch (o) {
    case JOB_FINISHED:
        return "finished";
    case JOB_CANCELED:
        return "canceled";
    case JOB_FORCE_CANCELED:
        return "force_canceled";
    default:
        return "errored";
    }
}

/* Uploads the plan's files; a failure turns a finished plan errored.  An
 * apply's JSON plan (job.make_json) goes whatever the apply's outcome, and
 * a failure to send it changes nothing but the JSON's absence. */
static tr_err upload_files(struct job_http *jh, const char *job_id,
                           const struct job_result *res, const char **why,
                           struct arena *a, struct tr_errbuf *eb)
{
    const char *names[] = {"plan", "json-plan", "schemas"};
    const char *files[] = {res->plan_file, res->json_plan_file,
                           res->schemas_file};
    if (res->plan_file == NULL && res->json_plan_file != NULL) {
        const char *path = arena_printf(a, "/jobs/%s/files/json-plan", job_id);
        tr_err e = upload(jh, path, res->json_plan_file, job_id, eb);
        if (e == TR_ERR_CONFLICT || e == TR_ERR_UNAUTHORIZED)
            return e;
        if (e != TR_OK)
            log_warn("job %s: cannot upload the JSON plan: %s", job_id,
                     tr_errbuf_msg(eb, e));
        return TR_OK;
    }
    if (res->outcome != JOB_FINISHED)
        return TR_OK;
    for (int i = 0; i < 3; i++) {
        if (files[i] == NULL || *files[i] == '\0' || access(files[i], R_OK))
            continue;
        const char *path =
            arena_printf(a, "/jobs/%s/files/%s", job_id, names[i]);
        tr_err e = upload(jh, path, files[i], job_id, eb);
        if (e == TR_ERR_CONFLICT || e == TR_ERR_UNAUTHORIZED)
            return e;
        if (e != TR_OK) {
            *why = arena_printf(a, "cannot upload the %s: %s", names[i],
                                tr_errbuf_msg(eb, e));
            return TR_OK;
        }
    }
    return TR_OK;
}

static tr_err job_finish(void *ctx, const char *job_id,
                         const struct job_result *res, struct tr_errbuf *eb)
{
    struct job_http *jh = ctx;
    struct arena *a = arena_new();
    const char *why = NULL;
    tr_err e = TR_OK;
    e = upload_files(jh, job_id, res, &why, a, eb);
    json_t *body = NULL;
    char *text = NULL;
    if (e == TR_OK) {
        bool ok = why == NULL;
        body =
            json_pack("{s:s, s:b, s:i, s:i, s:i, s:i}", "outcome",
                      ok ? outcome_name(res->outcome) : "errored",
                      "has_changes", res->has_changes, "additions",
                      res->additions, "changes", res->changes, "destructions",
                      res->destructions, "imports", res->imports);
        const char *err = ok ? res->error : why;
        if (body != NULL && err != NULL)
            json_object_set_new(body, "error", json_string(err));
        text = body != NULL ? json_dumps(body, JSON_COMPACT) : NULL;
        if (text == NULL)
            e = tr_fail(eb, TR_ERR_NOMEM, "out of memory");
    }
    if (e == TR_OK) {
        /* retried while the lease holds: the result must not be lost to
         * a primary restarting or busy */
        struct xfer x = {.method = "POST",
                         .path = arena_printf(a, "/jobs/%s/finish", job_id),
                         .body = text,
                         .len = strlen(text),
                         .dest_fd = -1,
                         .timeout_s = CALL_TIMEOUT_S,
                         .hb_job = job_id};
        buf_init(&x.reply, REPLY_MAX);
        e = perform(jh, &x, jh->o.retry_ms, eb);
        buf_free(&x.reply);
    }
    free(text);
    json_decref(body);
    arena_destroy(a);
    atomic_fetch_sub(&jh->running, 1);
    return e;
}

static tr_err job_run_final(void *ctx, const char *run_id, bool *final,
                            struct tr_errbuf *eb)
{
    char path[160];
    snprintf(path, sizeof(path), "/runs/%s/final", run_id);
    json_t *doc = NULL;
    tr_err e = job_http_call(ctx, "GET", path, NULL, 0, NULL, &doc, eb);
    if (e == TR_OK)
        *final = json_is_true(json_object_get(doc, "final"));
    json_decref(doc);
    return e;
}

/* ---- lifecycle --------------------------------------------------------- */

tr_err job_http_new(const struct job_http_opts *o, struct job_http **out,
                    struct tr_errbuf *eb)
{
    *out = NULL;
    if (o->base_url == NULL || o->data_dir == NULL)
        return tr_fail(eb, TR_ERR_CONFIG, "bad job API options");
    struct job_http *jh = calloc(1, sizeof(*jh));
    if (jh == NULL)
        return tr_fail(eb, TR_ERR_NOMEM, "out of memory");
    jh->arena = arena_new();
    jh->o = *o;
    char *base = arena_strdup(jh->arena, o->base_url);
    size_t n = strlen(base);
    while (n > 0 && base[n - 1] == '/')
        base[--n] = '\0';
    jh->o.base_url = base;
    jh->o.ca_file =
        o->ca_file && *o->ca_file ? arena_strdup(jh->arena, o->ca_file) : NULL;
    jh->o.data_dir = arena_strdup(jh->arena, o->data_dir);
    job_http_set_credential(jh, o->credential);
    atomic_init(&jh->drain, false);
    atomic_init(&jh->running, 0);
    atomic_init(&jh->inflight, 0);
    atomic_init(&jh->unreachable, false);
    pthread_mutex_init(&jh->mu, NULL);
    pthread_mutex_init(&jh->prefetch_mu, NULL);
    atomic_init(&jh->tool_ready, false);
    jh->api = (struct job_api){.ctx = jh,
                               .claim = job_claim,
                               .heartbeat = job_heartbeat,
                               .append_log = job_append_log,
                               .fetch_config = job_fetch_config,
                               .fetch_plan = job_fetch_plan,
                               .finish = job_finish,
                               .attach_json = job_attach_json,
                               .run_final = job_run_final};
    *out = jh;
    return TR_OK;
}

void job_http_free(struct job_http *jh)
{
    if (jh == NULL)
        return;
    pthread_mutex_destroy(&jh->mu);
    pthread_mutex_destroy(&jh->prefetch_mu);
    free(jh->injected);
    arena_destroy(jh->arena);
    memset(jh->credential, 0, sizeof(jh->credential));
    free(jh);
}

struct job_api *job_http_api(struct job_http *jh)
{
    return &jh->api;
}

void job_http_set_credential(struct job_http *jh, const char *credential)
{
    snprintf(jh->credential, sizeof(jh->credential), "%s",
             credential ? credential : "");
}

void job_http_drain(struct job_http *jh)
{
    atomic_store(&jh->drain, true);
}

int job_http_busy(struct job_http *jh)
{
    return atomic_load(&jh->running) + atomic_load(&jh->inflight);
}

int job_http_running(struct job_http *jh)
{
    return atomic_load(&jh->running);
}

bool job_http_reachable(struct job_http *jh)
{
    return !atomic_load(&jh->unreachable);
}

tr_err job_http_inject(struct job_http *jh, const char *reply, size_t len,
                       struct tr_errbuf *eb)
{
    char *copy = malloc(len + 1);
    if (copy == NULL)
        return tr_fail(eb, TR_ERR_NOMEM, "out of memory");
    memcpy(copy, reply, len);
    copy[len] = '\0';
    pthread_mutex_lock(&jh->mu);
    if (jh->injected == NULL) /* a claim in flight until one takes it, so
                                 job_http_busy() counts it */
        atomic_fetch_add(&jh->inflight, 1);
    free(jh->injected);
    jh->injected = copy;
    jh->injected_len = len;
    pthread_mutex_unlock(&jh->mu);
    return TR_OK;
}

bool job_http_tool_ready(struct job_http *jh)
{
    struct arena *a = arena_new();
    bool ok = a != NULL && tool_ready(jh, a);
    arena_destroy(a);
    return ok;
}
