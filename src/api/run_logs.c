/*
 * run_logs.c - reading a plan's or an apply's log as the CLI does.
 *
 *   GET <log-read-url>?offset=N&limit=M   no token: the URL is signed
 *   GET /plans/:id/logs, /applies/:id/logs   with a token, same bytes
 *
 * The stream is STX (0x02), the phase's output, and ETX (0x03) once the
 * phase has ended; offsets count all of it.  A read answers the bytes
 * [offset, offset + limit) that exist so far: 200 with an empty body when
 * nothing new has arrived (go-tfe's LogReader backs off and asks again
 * until it has seen ETX and the phase is final).  While the phase runs the
 * bytes come from the log chunks in the database, so any node can serve
 * them; after it ended, from the compacted blob.
 *
 * While the database is out of reach, a read through the signed URL
 * answers what it can, STX at offset 0 and nothing more, as if no new
 * output had arrived: go-tfe's LogReader sends these reads without its
 * retrying client, so a 503 would end `tofu apply` with "Failed to read
 * logs" while the run goes on; an empty read makes it ask again.  The
 * token routes answer 503 as any other API call does.
 *
 * The signature sits in the path (/api/v2/logs/<phase>/<expires>/<sig>):
 * go-tfe replaces the query string of the log URL with its own offset and
 * limit, so a signature in the query would be lost.
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "api/runs_int.h"
#include "blob/blob.h"
#include "core/log.h"
#include "crypto/digest.h"

#define LOG_READ_MAX (1024 * 1024)
#define LOG_READ_DEFAULT (64 * 1024)
#define STX 0x02
#define ETX 0x03

static char *log_sig(struct http_req *r, const char *phase_id,
                     const char *expires)
{
    const char *key = r->srv->signing_key;
    char *msg = arena_printf(r->arena, "log\n%s\n%s", phase_id, expires);
    return digest_hmac_sha256_hex(r->arena, key, strlen(key), msg, strlen(msg));
}

char *api_log_read_url(struct http_req *r, const char *phase_id)
{
    char *exp = arena_printf(r->arena, "%lld",
                             (long long)(util_now_unix() + API_LOG_URL_TTL));
    return arena_printf(r->arena, "%s/api/v2/logs/%s/%s/%s",
                        r->srv->external_url, phase_id, exp,
                        log_sig(r, phase_id, exp));
}

/* A non-negative integer query parameter (def when absent); 400 if bad. */
static bool query_i64(struct http_req *r, const char *key, int64_t def,
                      int64_t *out)
{
    const char *s = http_query(r, key);
    *out = def;
    if (s == NULL)
        return true;
    if (util_parse_i64(s, out) != TR_OK || *out < 0) {
        http_error(
            r, 400, NULL,
            arena_printf(r->arena, "%s must be a non-negative integer", key));
        return false;
    }
    return true;
}

/* Reads up to n content bytes at off from the compacted blob. */
static tr_err blob_bytes(struct http_req *r, const char *key, int64_t off,
                         int64_t n, char *out, int64_t *got, int64_t *total,
                         struct tr_errbuf *eb)
{
    struct blob_reader *rd = NULL;
    uint64_t size = 0;
    size_t k = 0;
    *got = 0;
    tr_err e = blob_reader_open(r->srv->blob, key, &rd, &size, eb);
    if (e != TR_OK)
        return e;
    *total = (int64_t)size;
    if (off < (int64_t)size && n > 0)
        e = blob_reader_pread(rd, out, (size_t)n, (uint64_t)off, &k, eb);
    *got = (int64_t)k;
    blob_reader_close(rd);
    return e;
}

/* Answers stream bytes [off, off + limit) of phase_id's log; patient:
 * a database outage answers "nothing new yet" rather than 503. */
static void serve(struct http_req *r, const char *phase_id, bool patient)
{
    int64_t off = 0, limit = 0;
    if (!query_i64(r, "offset", 0, &off) ||
        !query_i64(r, "limit", LOG_READ_DEFAULT, &limit))
        return;
    if (limit > LOG_READ_MAX)
        limit = LOG_READ_MAX;
    /* offset may be anything up to INT64_MAX: the window [off, end) is
     * cut where int64 ends (no log reaches there), so no sum below
     * overflows */
    int64_t end = util_sat_add_i64(off, limit);
    limit = end - off;
    char *out = arena_alloc(r->arena, (size_t)limit + 1);
    size_t n = 0;
    /* content coordinates: stream offset 1 is content byte 0 */
    int64_t coff = off > 0 ? off - 1 : 0;
    int64_t clim = off > 0 ? limit : limit - 1;
    if (off == 0 && limit > 0)
        out[n++] = STX;
    struct st_log_view v = {0};
    struct tr_errbuf eb = {{0}};
    tr_err e = store_log_read(r->srv->db, r->srv->keys, r->arena, phase_id,
                              coff, clim > 0 ? clim : 0, &v, &eb);
    int64_t got = 0, total = e == TR_OK ? v.total : 0;
    if (e == TR_OK && v.blob_key != NULL && clim > 0) {
        e = blob_bytes(r, v.blob_key, coff, clim, out + n, &got, &total, &eb);
    } else if (e == TR_OK && v.blob_key == NULL) {
        got = (int64_t)v.len;
        memcpy(out + n, v.data, v.len);
    }
    if (e == TR_ERR_UNAVAILABLE && patient) {
        log_warn("rid=%s log of %s read as empty: %s", r->request_id, phase_id,
                 eb.msg);
        http_reply(r, 200, "text/plain", out, off == 0 && limit > 0 ? 1 : 0);
        return;
    }
    if (e != TR_OK) {
        /* a compacted log without its blob is a bug, not a 404 */
        bool lost = e == TR_ERR_NOT_FOUND && got == 0 && v.blob_key != NULL;
        api_store_fail(r, lost ? TR_ERR_INTERNAL : e, &eb);
        return;
    }
    n += (size_t)got;
    /* ETX sits at stream offset 1 + total, once the phase has ended */
    int64_t etx = 1 + total;
    if (v.ended && etx >= off && etx < end && coff + got == total)
        out[n++] = ETX;
    http_reply(r, 200, "text/plain", out, n);
}

static void log_signed(struct http_req *r)
{
    const char *id = http_param(r, "id");
    const char *exp = http_param(r, "expires");
    const char *sig = http_param(r, "sig");
    int64_t t = 0;
    if (util_parse_i64(exp, &t) != TR_OK ||
        !digest_equal(log_sig(r, id, exp), sig)) {
        http_error(r, 404, "not found", "this URL is not valid");
        return;
    }
    if (t < util_now_unix()) {
        http_error(r, 404, "not found", "this URL has expired");
        return;
    }
    serve(r, id, true);
}

static void log_with_token(struct http_req *r)
{
    struct st_phase p;
    struct st_run run;
    const char *id = http_param(r, "id");
    bool plans = strncmp(r->path, "/api/v2/plans/", 14) == 0;
    if (strncmp(id, plans ? "plan-" : "apply-", plans ? 5 : 6) != 0) {
        http_error(r, 404, "not found",
                   arena_printf(r->arena, "%s %s not found",
                                plans ? "plan" : "apply", id));
        return;
    }
    if (api_phase_access(r, id, &p, &run))
        serve(r, p.id, false);
}

const struct route api_run_log_routes[] = {
    {"GET", "/api/v2/logs/:id/:expires/:sig", log_signed, 0},
    {"GET", "/api/v2/plans/:id/logs", log_with_token, ROUTE_AUTH},
    {"GET", "/api/v2/applies/:id/logs", log_with_token, ROUTE_AUTH},
    {0},
};
