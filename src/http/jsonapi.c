/*
 * jsonapi.c - responses, error documents, request-body parsing and
 * pagination in JSON:API form.
 *
 * Error mapping lives here and only here: one table from tr_err to HTTP
 * status.  Error documents carry status, title and a detail a person can
 * act on; they never echo secrets.  Every 5xx is logged here with its
 * cause and the request id (which the response carries as X-Request-Id),
 * so no handler can answer 500 without a trace in the server log.  A 503
 * carries Retry-After: the client may try again once the database is back.
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#include <microhttpd.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/log.h"
#include "core/util.h"
#include "http/http.h"
#include "http/http_int.h"

static const int status_table[TR_ERR__COUNT] = {
    [TR_OK] = 200,
    [TR_ERR_INTERNAL] = 500,
    [TR_ERR_NOMEM] = 500,
    [TR_ERR_IO] = 500,
    [TR_ERR_DB] = 500,
    [TR_ERR_NOT_FOUND] = 404,
    [TR_ERR_INVALID] = 422,
    [TR_ERR_BAD_REQUEST] = 400,
    [TR_ERR_CONFLICT] = 409,
    [TR_ERR_UNAUTHORIZED] = 401,
    [TR_ERR_FORBIDDEN] = 403,
    [TR_ERR_TOO_LARGE] = 413,
    [TR_ERR_UNSUPPORTED] = 415,
    [TR_ERR_CONFIG] = 500,
    [TR_ERR_CRYPTO] = 500,
    [TR_ERR_BUSY] = 503,
    [TR_ERR_UNAVAILABLE] = 503,
};

/* Seconds a client is asked to wait after a 503. */
#define RETRY_AFTER "5"

int http_status_for(tr_err e)
{
    if ((int)e < 0 || e >= TR_ERR__COUNT || status_table[e] == 0)
        return 500;
    return status_table[e];
}

static const char *title_for(int status)
{
    switch (status) {
    case 400:
        return "bad request";
    case 401:
        return "unauthorized";
    case 403:
        return "forbidden";
    case 404:
        return "not found";
    case 405:
        return "method not allowed";
    case 409:
        return "conflict";
    case 413:
        return "payload too large";
    case 415:
        return "unsupported media type";
    case 422:
        return "invalid attribute";
    case 503:
        return "service unavailable";
    default:
        return "internal error";
    }
}

static void json_cleanup(void *p)
{
    json_decref(p);
}

json_t *http_json_own(struct http_req *r, json_t *j)
{
    if (j != NULL)
        arena_on_destroy(r->arena, json_cleanup, j);
    return j;
}

const char *http_query(const struct http_req *r, const char *key)
{
    return MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, key);
}

const char *http_header(const struct http_req *r, const char *name)
{
    return MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, name);
}

void http_add_header(struct http_req *r, const char *name, const char *val)
{
    if (r->nheaders >= 8)
        return;
    r->hnames[r->nheaders] = name;
    r->hvalues[r->nheaders] = val;
    r->nheaders++;
}

void http_reply(struct http_req *r, int status, const char *ctype,
                const char *body, size_t len)
{
    r->status = status;
    r->content_type = ctype;
    r->resp_body = body;
    r->resp_len = len;
}

void http_reply_json(struct http_req *r, int status, json_t *doc)
{
    size_t n = json_dumpb(doc, NULL, 0, JSON_COMPACT);
    char *s = arena_alloc(r->arena, n + 1);
    json_dumpb(doc, s, n, JSON_COMPACT);
    json_decref(doc);
    http_reply(r, status, "application/vnd.api+json", s, n);
}

static void buf_cleanup(void *p)
{
    struct buf *b = p;
    buf_free(b);
}

void http_jw_start(struct http_req *r, struct jw *w)
{
    struct buf *b = arena_alloc(r->arena, sizeof(*b));
    buf_init(b, 0);
    arena_on_destroy(r->arena, buf_cleanup, b);
    jw_init(w, b);
}

void http_reply_jw(struct http_req *r, int status, struct jw *w)
{
    tr_err e = jw_error(w);
    if (e != TR_OK) {
        struct tr_errbuf eb = {{0}};
        tr_fail(&eb, e, "writing the response document failed");
        http_fail(r, e, &eb);
        return;
    }
    http_reply(r, status, "application/vnd.api+json", w->out->data,
               w->out->len);
}

void http_reply_blob(struct http_req *r, int status, const char *ctype,
                     struct blob_reader *rd, uint64_t size)
{
    r->status = status;
    r->content_type = ctype;
    r->resp_blob = rd;
    r->resp_blob_size = size;
}

void http_reply_file(struct http_req *r, int status, const char *ctype, int fd,
                     uint64_t size)
{
    r->status = status;
    r->content_type = ctype;
    r->resp_fd = fd;
    r->resp_fd_size = size;
}

static void error_doc(struct http_req *r, int status, const char *title,
                      const char *detail)
{
    char st[8];
    snprintf(st, sizeof(st), "%d", status);
    json_t *doc = json_pack("{s:[{s:s,s:s,s:s}]}", "errors", "status", st,
                            "title", title ? title : title_for(status),
                            "detail", detail ? detail : "");
    if (status == 503)
        http_add_header(r, "Retry-After", RETRY_AFTER);
    http_reply_json(r, status, doc);
}

void http_error(struct http_req *r, int status, const char *title,
                const char *detail)
{
    /* a handler that set Retry-After asks the client to come back: back
     * pressure it chose, not a failure; the access log has the line */
    bool later = false;
    for (int i = 0; i < r->nheaders; i++)
        later |= strcasecmp(r->hnames[i], "Retry-After") == 0;
    if (status >= 500 && !later)
        log_error("rid=%s %s %s: %d %s", r->request_id,
                  http_log_text(r->arena, r->method),
                  http_log_path(r->arena, r->path), status,
                  detail ? detail : title_for(status));
    error_doc(r, status, title, detail);
}

void http_fail(struct http_req *r, tr_err e, const struct tr_errbuf *eb)
{
    int status = http_status_for(e);
    const char *detail = tr_errbuf_msg(eb, e);
    if (status < 500) {
        error_doc(r, status, title_for(status), detail);
        return;
    }
    /* the cause goes to the log; internal details stay out of the body */
    log_error("rid=%s %s %s: %d %s: %s", r->request_id,
              http_log_text(r->arena, r->method),
              http_log_path(r->arena, r->path), status, tr_err_name(e), detail);
    if (e == TR_ERR_UNAVAILABLE)
        detail = "the server cannot reach its database right now; retry "
                 "in a few seconds";
    else if (status == 503)
        detail = "the server is busy; retry in a few seconds";
    else
        detail = "the server could not complete the request; see the "
                 "server log for the request id";
    error_doc(r, status, title_for(status), detail);
}

json_t *jsonapi_body(struct http_req *r, const char *type)
{
    json_error_t jerr;
    if (r->body.len == 0) {
        http_error(r, 400, NULL, "the request needs a JSON:API body");
        return NULL;
    }
    json_t *doc = json_loadb(r->body.data, r->body.len, 0, &jerr);
    if (doc == NULL) {
        http_error(r, 400, NULL,
                   arena_printf(r->arena, "malformed JSON: %s at line %d",
                                jerr.text, jerr.line));
        return NULL;
    }
    http_json_own(r, doc);
    json_t *data = json_object_get(doc, "data");
    if (!json_is_object(data)) {
        http_error(r, 422, NULL, "the body must have a \"data\" object");
        return NULL;
    }
    json_t *t = json_object_get(data, "type");
    if (type != NULL &&
        (!json_is_string(t) || strcmp(json_string_value(t), type) != 0)) {
        http_error(r, 409, "conflict",
                   arena_printf(r->arena, "data.type must be \"%s\"", type));
        return NULL;
    }
    json_t *attrs = json_object_get(data, "attributes");
    if (attrs != NULL && !json_is_object(attrs)) {
        http_error(r, 422, NULL, "data.attributes must be an object");
        return NULL;
    }
    return data;
}

json_t *jsonapi_attrs(json_t *data)
{
    return json_object_get(data, "attributes");
}

static void wrong_type(struct http_req *r, const char *name, const char *want)
{
    http_error(r, 422, NULL,
               arena_printf(r->arena, "attribute %s must be %s", name, want));
}

bool jsonapi_attr_str(struct http_req *r, json_t *data, const char *name,
                      const char **out)
{
    json_t *v = json_object_get(jsonapi_attrs(data), name);
    if (v == NULL)
        return true;
    if (!json_is_string(v)) {
        wrong_type(r, name, "a string");
        return false;
    }
    *out = json_string_value(v);
    return true;
}

bool jsonapi_attr_bool(struct http_req *r, json_t *data, const char *name,
                       int *out)
{
    json_t *v = json_object_get(jsonapi_attrs(data), name);
    if (v == NULL)
        return true;
    if (!json_is_boolean(v)) {
        wrong_type(r, name, "true or false");
        return false;
    }
    *out = json_is_true(v) ? 1 : 0;
    return true;
}

bool jsonapi_attr_int(struct http_req *r, json_t *data, const char *name,
                      int64_t *out, bool *present)
{
    json_t *v = json_object_get(jsonapi_attrs(data), name);
    if (present != NULL)
        *present = v != NULL;
    if (v == NULL)
        return true;
    if (!json_is_integer(v)) {
        wrong_type(r, name, "an integer");
        return false;
    }
    *out = (int64_t)json_integer_value(v);
    return true;
}

const char *jsonapi_rel_id(json_t *data, const char *name)
{
    json_t *rel = json_object_get(json_object_get(data, "relationships"), name);
    json_t *id = json_object_get(json_object_get(rel, "data"), "id");
    return json_is_string(id) ? json_string_value(id) : NULL;
}

bool jsonapi_page(struct http_req *r, struct page *p)
{
    p->number = 1;
    p->size = 20;
    const char *n = http_query(r, "page[number]");
    const char *s = http_query(r, "page[size]");
    int64_t v;
    if (n != NULL) {
        if (util_parse_i64(n, &v) != TR_OK || v < 1 || v > 1000000) {
            http_error(r, 400, NULL, "page[number] must be a positive integer");
            return false;
        }
        p->number = (int)v;
    }
    if (s != NULL) {
        if (util_parse_i64(s, &v) != TR_OK || v < 1) {
            http_error(r, 400, NULL, "page[size] must be a positive integer");
            return false;
        }
        p->size = v > 100 ? 100 : (int)v;
    }
    return true;
}

json_t *jsonapi_pagination(const struct page *p, int64_t total)
{
    int64_t pages = (total + p->size - 1) / p->size;
    if (pages < 1)
        pages = 1;
    json_t *prev = p->number > 1 ? json_integer(p->number - 1) : json_null();
    json_t *next =
        p->number < pages ? json_integer(p->number + 1) : json_null();
    return json_pack("{s:i,s:o,s:o,s:I,s:I,s:i}", "current-page", p->number,
                     "prev-page", prev, "next-page", next, "total-pages",
                     (json_int_t)pages, "total-count", (json_int_t)total,
                     "page-size", p->size);
}

json_t *jsonapi_list_doc(json_t *items, const struct page *p, int64_t total)
{
    return json_pack("{s:o,s:{s:o}}", "data", items, "meta", "pagination",
                     jsonapi_pagination(p, total));
}

void jsonapi_write_meta(struct jw *w, const struct page *p, int64_t total)
{
    int64_t pages = (total + p->size - 1) / p->size;
    if (pages < 1)
        pages = 1;
    jw_key(w, "meta");
    jw_obj(w);
    jw_key(w, "pagination");
    jw_obj(w);
    jw_kint(w, "current-page", p->number);
    jw_key(w, "prev-page");
    if (p->number > 1)
        jw_int(w, p->number - 1);
    else
        jw_null(w);
    jw_key(w, "next-page");
    if (p->number < pages)
        jw_int(w, p->number + 1);
    else
        jw_null(w);
    jw_kint(w, "total-pages", pages);
    jw_kint(w, "total-count", total);
    jw_kint(w, "page-size", p->size);
    jw_obj_end(w);
    jw_obj_end(w);
}
