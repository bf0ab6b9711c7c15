/*
 * notify.c - run notification payloads, their delivery over HTTP and
 * SMTP with libcurl, and the leader's delivery thread (see notify.h),
 * which also mails organization invitations.
 *
 * A delivery is one attempt: build the payload of the configuration's
 * destination type, send it, record what came back as a delivery
 * response ({url, body, code, headers, sent-at, successful}, as TFE
 * shows them).  The thread then deletes the outbox row or pushes it back
 * by 2^attempts seconds.  Destinations are http/https only, without
 * redirects; logs name the destination's host, never its path, query,
 * token or the SMTP password.
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#include "domain/notify.h"

#include "core/cond.h"
#include "core/curl_load.h"
#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/buf.h"
#include "core/file.h"
#include "core/log.h"
#include "crypto/digest.h"
#include "crypto/envelope.h"

#define MAX_BODY 4096  /* response body bytes kept */
#define MAX_HEADERS 50 /* response headers kept */
#define BATCH 20       /* deliveries a pass loads at once */

static const char *const triggers[] = {
    "run:created",
    "run:planning",
    "run:needs_attention",
    "run:applying",
    "run:completed",
    "run:errored",
    "assessment:drifted",
    "assessment:failed",
    "assessment:check_failure",
    "workspace:auto_destroy_reminder",
    "workspace:auto_destroy_run_results",
    NULL,
};

bool notify_trigger_valid(const char *s)
{
    for (int i = 0; s != NULL && triggers[i] != NULL; i++)
        if (strcmp(s, triggers[i]) == 0)
            return true;
    return false;
}

bool notify_url_valid(const char *url, const char **why)
{
    *why = "url must be an http or https URL with a host";
    if (url == NULL || strlen(url) > 2048)
        return url != NULL
                   ? (*why = "url is too long (at most 2048 bytes)", false)
                   : false;
    CURLU *u = curl_url();
    char *scheme = NULL, *host = NULL, *user = NULL;
    bool ok =
        u != NULL && curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK &&
        (strcmp(scheme, "http") == 0 || strcmp(scheme, "https") == 0) &&
        curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK && *host != '\0';
    if (ok && curl_url_get(u, CURLUPART_USER, &user, 0) == CURLUE_OK) {
        ok = false;
        *why = "url must not hold a user name or password";
    }
    curl_free(scheme);
    curl_free(host);
    curl_free(user);
    curl_url_cleanup(u);
    return ok;
}

/* The host of url, for logs ("?" if it has none). */
static const char *host_of(struct arena *a, const char *url)
{
    CURLU *u = curl_url();
    char *host = NULL;
    const char *out = "?";
    if (u != NULL && curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK)
        out = arena_strdup(a, host);
    curl_free(host);
    curl_url_cleanup(u);
    return out;
}

/* ---- payloads ------------------------------------------------------------ */

/* What a notification says: a run event, or a verification (run_id
 * NULL). */
struct note {
    const struct st_nc *nc;
    const char *trigger, *run_status, *at;
    const char *run_id, *run_message, *run_created_at, *run_created_by;
    const char *ws_id, *ws_name, *org;
    const char *run_url;
    const char *message; /* "Run Completed", "Verification of NAME" */
};

static json_t *str_or_null(const char *s)
{
    return s != NULL ? json_string(s) : json_null();
}

static const char *message_of(const char *trigger)
{
    static const char *const m[][2] = {
        {"run:created", "Run Created"},
        {"run:planning", "Run Planning"},
        {"run:needs_attention", "Run Needs Attention"},
        {"run:applying", "Run Applying"},
        {"run:completed", "Run Completed"},
        {"run:errored", "Run Errored"},
    };
    for (size_t i = 0; i < sizeof(m) / sizeof(m[0]); i++)
        if (strcmp(trigger, m[i][0]) == 0)
            return m[i][1];
    return "Run Notification";
}

static json_t *generic_payload(const struct note *n)
{
    json_t *item = json_pack("{s:s,s:s,s:o,s:o,s:o}", "message", n->message,
                             "trigger", n->trigger, "run_status",
                             str_or_null(n->run_status), "run_updated_at",
                             str_or_null(n->run_id != NULL ? n->at : NULL),
                             "run_updated_by", json_null());
    return json_pack(
        "{s:i,s:s,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:[o]}", "payload_version", 1,
        "notification_configuration_id", n->nc->id, "run_url",
        str_or_null(n->run_url), "run_id", str_or_null(n->run_id),
        "run_message", str_or_null(n->run_message), "run_created_at",
        str_or_null(n->run_created_at), "run_created_by",
        str_or_null(n->run_created_by), "workspace_id", str_or_null(n->ws_id),
        "workspace_name", str_or_null(n->ws_name), "organization_name",
        str_or_null(n->org), "notifications", item);
}

static const char *summary(struct arena *a, const struct note *n)
{
    if (n->run_id == NULL)
        return arena_printf(a, "%s (%s/%s)", n->message, n->org, n->ws_name);
    return arena_printf(a, "%s: %s in %s/%s", n->message, n->run_id, n->org,
                        n->ws_name);
}

/* An incoming-webhook message: text, with one attachment of fields. */
static json_t *slack_payload(struct arena *a, const struct note *n)
{
    const char *color = strcmp(n->trigger, "run:errored") == 0     ? "danger"
                        : strcmp(n->trigger, "run:completed") == 0 ? "good"
                                                                   : "warning";
    json_t *fields = json_pack(
        "[{s:s,s:s,s:b},{s:s,s:s,s:b}]", "title", "Workspace", "value",
        arena_printf(a, "%s/%s", n->org, n->ws_name), "short", 1, "title",
        "Trigger", "value", n->trigger, "short", 1);
    if (n->run_id != NULL) {
        json_array_append_new(fields,
                              json_pack("{s:s,s:s,s:b}", "title", "Run",
                                        "value", n->run_id, "short", 1));
        json_array_append_new(fields,
                              json_pack("{s:s,s:s,s:b}", "title", "Status",
                                        "value", n->run_status, "short", 1));
    }
    json_t *att =
        json_pack("{s:s,s:s,s:s,s:o}", "fallback", summary(a, n), "color",
                  color, "title", n->message, "fields", fields);
    if (n->run_url != NULL)
        json_object_set_new(att, "title_link", json_string(n->run_url));
    if (n->run_message != NULL && *n->run_message != '\0')
        json_object_set_new(att, "text", json_string(n->run_message));
    return json_pack("{s:s,s:[o]}", "text", summary(a, n), "attachments", att);
}

/* An Office 365 connector MessageCard, as Teams incoming webhooks take. */
static json_t *teams_payload(struct arena *a, const struct note *n)
{
    json_t *facts =
        json_pack("[{s:s,s:s},{s:s,s:s}]", "name", "Workspace", "value",
                  arena_printf(a, "%s/%s", n->org, n->ws_name), "name",
                  "Trigger", "value", n->trigger);
    if (n->run_id != NULL) {
        json_array_append_new(
            facts, json_pack("{s:s,s:s}", "name", "Run", "value", n->run_id));
        json_array_append_new(facts, json_pack("{s:s,s:s}", "name", "Status",
                                               "value", n->run_status));
    }
    json_t *section =
        json_pack("{s:s,s:o}", "activityTitle", n->message, "facts", facts);
    if (n->run_message != NULL && *n->run_message != '\0')
        json_object_set_new(section, "activitySubtitle",
                            json_string(n->run_message));
    json_t *card = json_pack(
        "{s:s,s:s,s:s,s:s,s:s,s:[o]}", "@type", "MessageCard", "@context",
        "https://schema.org/extensions", "summary", summary(a, n), "themeColor",
        strcmp(n->trigger, "run:errored") == 0 ? "D13438" : "5C2D91", "title",
        summary(a, n), "sections", section);
    if (n->run_url != NULL)
        json_object_set_new(card, "potentialAction",
                            json_pack("[{s:s,s:s,s:[{s:s,s:s}]}]", "@type",
                                      "OpenUri", "name", "View run", "targets",
                                      "os", "default", "uri", n->run_url));
    return card;
}

/* ---- HTTP ---------------------------------------------------------------- */

struct resp {
    struct buf body;
    json_t *headers; /* name -> [values] */
};

static size_t on_body(char *p, size_t sz, size_t n, void *ud)
{
    struct resp *r = ud;
    size_t len = sz * n;
    if (r->body.len < MAX_BODY) {
        size_t take = MAX_BODY - r->body.len;
        if (buf_append(&r->body, p, len < take ? len : take) != TR_OK)
            return 0;
    }
    return len;
}

static size_t on_header(char *p, size_t sz, size_t n, void *ud)
{
    struct resp *r = ud;
    size_t len = sz * n;
    const char *colon = memchr(p, ':', len);
    if (colon == NULL || json_object_size(r->headers) >= MAX_HEADERS)
        return len;
    char *name = strndup(p, (size_t)(colon - p));
    const char *v = colon + 1;
    size_t vlen = len - (size_t)(v - p);
    while (vlen > 0 && (*v == ' ' || *v == '\t'))
        v++, vlen--;
    while (vlen > 0 && (v[vlen - 1] == '\r' || v[vlen - 1] == '\n'))
        vlen--;
    char *val = strndup(v, vlen);
    if (name != NULL && val != NULL) {
        json_t *list = json_object_get(r->headers, name);
        if (list == NULL) {
            list = json_array();
            json_object_set_new(r->headers, name, list);
        }
        json_array_append_new(list, json_stringn_nocheck(val, strlen(val)));
    }
    free(name);
    free(val);
    return len;
}

/* Posts body to url; *response gets the delivery response, *ok whether
 * the receiver answered 2xx. */
static void post(struct arena *a, const char *url, const char *body,
                 const char *signature, json_t **response, bool *ok)
{
    struct resp r = {.headers = json_object()};
    buf_init(&r.body, MAX_BODY + 1);
    char err[CURL_ERROR_SIZE] = "";
    long code = 0;
    CURL *h = curl_easy_init();
    struct curl_slist *hdr = curl_slist_append(NULL, "Content-Type: "
                                                     "application/json");
    if (signature != NULL)
        hdr = curl_slist_append(
            hdr,
            arena_printf(a, "X-TFE-Notification-Signature: %s", signature));
    CURLcode cc = CURLE_FAILED_INIT;
    if (h != NULL && hdr != NULL) {
        curl_easy_setopt(h, CURLOPT_URL, url);
        curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
        curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
        curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, 5L);
        curl_easy_setopt(h, CURLOPT_TIMEOUT, (long)NOTIFY_TIMEOUT_S);
        curl_easy_setopt(h, CURLOPT_USERAGENT, "terrace-notifications");
        curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
        curl_easy_setopt(h, CURLOPT_ERRORBUFFER, err);
        curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
        curl_easy_setopt(h, CURLOPT_WRITEDATA, &r);
        curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
        curl_easy_setopt(h, CURLOPT_HEADERDATA, &r);
        cc = curl_easy_perform(h);
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
    }
    curl_slist_free_all(hdr);
    curl_easy_cleanup(h);
    *ok = cc == CURLE_OK && code >= 200 && code < 300;
    const char *text =
        cc == CURLE_OK ? arena_strndup(a, (const char *)r.body.data, r.body.len)
                       : (*err != '\0' ? err : curl_easy_strerror(cc));
    *response = json_pack("{s:s,s:s,s:s,s:o,s:s,s:s}", "url", url, "body", "",
                          "code", code > 0 ? arena_printf(a, "%ld", code) : "",
                          "headers", r.headers, "sent-at", util_now_iso(a),
                          "successful", *ok ? "true" : "false");
    json_object_set_new(*response, "body",
                        json_stringn_nocheck(text, strlen(text)));
    buf_free(&r.body);
}

/* ---- e-mail -------------------------------------------------------------- */

struct upload {
    const char *p;
    size_t left;
};

static size_t on_read(char *out, size_t sz, size_t n, void *ud)
{
    struct upload *u = ud;
    size_t take = sz * n < u->left ? sz * n : u->left;
    memcpy(out, u->p, take);
    u->p += take;
    u->left -= take;
    return take;
}

/* An address fit for an SMTP envelope and a header: no spaces, angle
 * brackets or control characters, one '@'. */
static bool mail_ok(const char *s)
{
    const char *at = strchr(s, '@');
    if (at == NULL || at == s || at[1] == '\0' || strchr(at + 1, '@'))
        return false;
    for (const char *p = s; *p != '\0'; p++)
        if ((unsigned char)*p <= ' ' || *p == '<' || *p == '>' || *p == ',' ||
            *p == 0x7f)
            return false;
    return true;
}

static const char *mail_text(struct arena *a, const struct terrace_server *srv,
                             const struct note *n, const char *to)
{
    char date[64];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S +0000", &tm);
    const char *subject = arena_printf(a, "Terrace: %s", summary(a, n));
    const char *body =
        n->run_id == NULL
            ? arena_printf(a, "%s\r\n\r\nWorkspace: %s/%s\r\n", n->message,
                           n->org, n->ws_name)
            : arena_printf(a,
                           "%s\r\n\r\nWorkspace: %s/%s\r\nRun: %s\r\n"
                           "Status: %s\r\nMessage: %s\r\n%s\r\n",
                           n->message, n->org, n->ws_name, n->run_id,
                           n->run_status, n->run_message ? n->run_message : "",
                           n->run_url ? n->run_url : "");
    return arena_printf(a,
                        "Date: %s\r\nFrom: <%s>\r\nTo: %s\r\n"
                        "Message-ID: <%s@terrace>\r\nSubject: %s\r\n"
                        "MIME-Version: 1.0\r\n"
                        "Content-Type: text/plain; charset=utf-8\r\n\r\n%s",
                        date, srv->cfg.smtp_from, to, util_new_id(a, "msg"),
                        subject, body);
}

/* Hands text to the SMTP server at url for the recipients rcpt; NULL on
 * success, else why not (in err or static). */
static const char *smtp_send(const struct cfg *c, struct arena *a,
                             const char *url, const char *text,
                             struct curl_slist *rcpt, const char *password,
                             char *err)
{
    struct upload up = {text, strlen(text)};
    CURL *h = curl_easy_init();
    if (h == NULL)
        return curl_easy_strerror(CURLE_FAILED_INIT);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "smtp,smtps");
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, 5L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, (long)NOTIFY_TIMEOUT_S);
    if (strcmp(c->smtp_tls, "starttls") == 0)
        curl_easy_setopt(h, CURLOPT_USE_SSL, (long)CURLUSESSL_ALL);
    if (c->smtp_user[0] != '\0') {
        curl_easy_setopt(h, CURLOPT_USERNAME, c->smtp_user);
        if (password != NULL)
            curl_easy_setopt(h, CURLOPT_PASSWORD, password);
    }
    curl_easy_setopt(h, CURLOPT_MAIL_FROM,
                     arena_printf(a, "<%s>", c->smtp_from));
    curl_easy_setopt(h, CURLOPT_MAIL_RCPT, rcpt);
    curl_easy_setopt(h, CURLOPT_READFUNCTION, on_read);
    curl_easy_setopt(h, CURLOPT_READDATA, &up);
    curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, err);
    CURLcode cc = curl_easy_perform(h);
    curl_easy_cleanup(h);
    if (cc == CURLE_OK)
        return NULL;
    return *err != '\0' ? err : curl_easy_strerror(cc);
}

/* The node's SMTP server as a URL. */
static const char *smtp_url(struct arena *a, const struct cfg *c)
{
    bool tls = strcmp(c->smtp_tls, "tls") == 0;
    int port = c->smtp_port > 0 ? c->smtp_port : (tls ? 465 : 25);
    return arena_printf(a, "%s://%s:%d", tls ? "smtps" : "smtp", c->smtp_host,
                        port);
}

/* Hands text to the node's SMTP server for rcpt (NULL: none); NULL on
 * success, else why not (in err, static or a). */
static const char *smtp_go(const struct cfg *c, struct arena *a,
                           const char *text, struct curl_slist *rcpt, char *err)
{
    char *password = NULL;
    if (c->smtp_host[0] == '\0')
        return "no SMTP server is configured on this node (smtp-host)";
    if (rcpt == NULL)
        return "no recipients: add email addresses or users";
    if (c->smtp_password_file[0] != '\0' &&
        file_read_all(a, c->smtp_password_file, 4096, &password, NULL, NULL) !=
            TR_OK)
        return "cannot read the SMTP password file";
    if (password != NULL)
        password[strcspn(password, "\r\n")] = '\0';
    return smtp_send(c, a, smtp_url(a, c), text, rcpt, password, err);
}

/* Sends n to the JSON array of addresses; *response and *ok as post(). */
static void mail(struct terrace_server *srv, struct arena *a,
                 const struct note *n, json_t *addrs, json_t **response,
                 bool *ok)
{
    const struct cfg *c = &srv->cfg;
    const char *url = smtp_url(a, c);
    char err[CURL_ERROR_SIZE] = "";
    struct curl_slist *rcpt = NULL;
    const char *to = "";
    for (size_t i = 0; i < json_array_size(addrs); i++) {
        const char *ad = json_string_value(json_array_get(addrs, i));
        if (ad == NULL || !mail_ok(ad))
            continue;
        rcpt = curl_slist_append(rcpt, arena_printf(a, "<%s>", ad));
        to = arena_printf(a, "%s%s<%s>", to, *to != '\0' ? ", " : "", ad);
    }
    const char *why = smtp_go(c, a, mail_text(a, srv, n, to), rcpt, err);
    curl_slist_free_all(rcpt);
    *ok = why == NULL;
    *response = json_pack(
        "{s:s,s:s,s:s,s:{},s:s,s:s}", "url", c->smtp_host[0] != '\0' ? url : "",
        "body", why != NULL ? why : "", "code", *ok ? "250" : "", "headers",
        "sent-at", util_now_iso(a), "successful", *ok ? "true" : "false");
}

/* ---- one delivery -------------------------------------------------------- */

/* E-mails note n to the configuration's addresses and users. */
static json_t *deliver_email(struct terrace_server *srv, struct arena *a,
                             const struct note *n, bool *ok, bool *retry)
{
    const struct st_nc *nc = n->nc;
    const char *users = NULL;
    json_t *response = NULL;
    json_t *addrs = json_loads(nc->email_addresses, 0, NULL);
    if (!json_is_array(addrs)) {
        json_decref(addrs);
        addrs = json_array();
    }
    if (store_nc_user_emails(srv->db, a, nc->workspace_id, nc->email_user_ids,
                             &users, NULL) == TR_OK) {
        json_t *more = json_loads(users, 0, NULL);
        json_array_extend(addrs, more);
        json_decref(more);
    }
    mail(srv, a, n, addrs, &response, ok);
    *retry = srv->cfg.smtp_host[0] != '\0' && json_array_size(addrs) > 0;
    json_decref(addrs);
    return response;
}

/* Posts note n in the format of the configuration's type, signed when a
 * generic one has a token. */
static json_t *deliver_http(struct terrace_server *srv, struct arena *a,
                            const struct note *n, bool *ok, bool *retry)
{
    const struct st_nc *nc = n->nc;
    bool generic = strcmp(nc->destination_type, "generic") == 0;
    json_t *doc = strcmp(nc->destination_type, "slack") == 0
                      ? slack_payload(a, n)
                  : generic ? generic_payload(n)
                            : teams_payload(a, n);
    char *body = json_dumps(doc, JSON_COMPACT);
    json_decref(doc);
    char *token = NULL;
    const char *sig = NULL, *why = NULL;
    if (body == NULL)
        why = "cannot build the payload";
    else if (generic && nc->token != NULL &&
             (srv->keys == NULL || envelope_open(srv->keys, a, nc->token,
                                                 &token, NULL, NULL) != TR_OK))
        why = "cannot open the token to sign the payload with";
    else if (token != NULL)
        sig =
            digest_hmac_sha512_hex(a, token, strlen(token), body, strlen(body));
    json_t *response = NULL;
    if (why == NULL)
        post(a, nc->url, body, sig, &response, ok);
    else {
        log_warn("notification %s: %s", nc->id, why);
        *ok = *retry = false;
        response = json_pack("{s:s,s:s,s:s,s:{},s:s,s:s}", "url", nc->url,
                             "body", why, "code", "", "headers", "sent-at",
                             util_now_iso(a), "successful", "false");
    }
    free(body);
    return response;
}

/* Sends note n; *ok whether it arrived, *retry whether trying again may
 * help.  The response is recorded on the configuration. */
static void deliver(struct terrace_server *srv, struct arena *a,
                    const struct note *n, bool *ok, bool *retry)
{
    *retry = true;
    json_t *response = strcmp(n->nc->destination_type, "email") == 0
                           ? deliver_email(srv, a, n, ok, retry)
                           : deliver_http(srv, a, n, ok, retry);
    char *txt = json_dumps(response, JSON_COMPACT);
    json_decref(response);
    struct tr_errbuf eb = {{0}};
    tr_err e = txt != NULL
                   ? store_nc_add_response(srv->db, a, n->nc->id, txt, &eb)
                   : TR_ERR_NOMEM;
    if (e != TR_OK)
        log_warn("notification %s: cannot record the response: %s", n->nc->id,
                 tr_errbuf_msg(&eb, e));
    free(txt);
}

static const char *dest_of(struct arena *a, const struct terrace_server *srv,
                           const struct st_nc *nc)
{
    if (strcmp(nc->destination_type, "email") == 0)
        return srv->cfg.smtp_host[0] != '\0' ? srv->cfg.smtp_host : "smtp";
    return host_of(a, nc->url);
}

tr_err notify_verify(struct terrace_server *srv, struct arena *a,
                     const struct st_nc *nc, const char *ws_name,
                     const char *org, struct tr_errbuf *eb)
{
    (void)eb;
    struct note n = {
        .nc = nc,
        .trigger = "verification",
        .ws_id = nc->workspace_id,
        .ws_name = ws_name,
        .org = org,
        .message = arena_printf(a, "Verification of %s", nc->name),
    };
    bool ok = false, retry = false;
    deliver(srv, a, &n, &ok, &retry);
    log_info("notification %s: verification to %s %s", nc->id,
             dest_of(a, srv, nc), ok ? "delivered" : "failed");
    return TR_OK;
}

/* Delivers one due row: done, given up or rescheduled. */
static void one(struct terrace_server *srv, struct arena *a,
                const struct st_nc_delivery *d)
{
    struct note n = {
        .nc = &d->nc,
        .trigger = d->trigger,
        .run_status = d->run_status,
        .at = d->created_at,
        .run_id = d->run_id,
        .run_message = d->run_message,
        .run_created_at = d->run_created_at,
        .run_created_by = d->run_created_by,
        .ws_id = d->nc.workspace_id,
        .ws_name = d->ws_name,
        .org = d->org,
        .run_url = arena_printf(a, "%s/app/%s/%s/runs/%s", srv->external_url,
                                d->org, d->ws_name, d->run_id),
        .message = message_of(d->trigger),
    };
    bool ok = false, retry = false;
    deliver(srv, a, &n, &ok, &retry);
    int attempts = d->attempts + 1;
    struct tr_errbuf eb = {{0}};
    tr_err e;
    if (ok || !retry || attempts >= NOTIFY_MAX_ATTEMPTS) {
        if (!ok)
            log_warn("notification %s: %s of run %s to %s given up after "
                     "%d attempts",
                     d->nc.id, d->trigger, d->run_id, dest_of(a, srv, &d->nc),
                     attempts);
        e = store_notify_done(srv->db, a, d->id, &eb);
    } else {
        log_info("notification %s: %s of run %s to %s failed; trying again "
                 "in %d s",
                 d->nc.id, d->trigger, d->run_id, dest_of(a, srv, &d->nc),
                 1 << attempts);
        e = store_notify_retry(srv->db, a, d->id, attempts,
                               util_now_unix() + (1 << attempts), &eb);
    }
    if (e != TR_OK)
        log_warn("notification %s: %s", d->nc.id, tr_errbuf_msg(&eb, e));
}

/* One pass: every delivery due now, BATCH at a time; false on a store
 * error (logged once by the caller). */
static tr_err pass(struct terrace_server *srv, struct tr_errbuf *eb)
{
    for (int round = 0; round < 50; round++) {
        struct arena *a = arena_new();
        struct st_nc_delivery *d = NULL;
        int n = 0;
        tr_err e =
            store_notify_due(srv->db, a, util_now_unix(), BATCH, &d, &n, eb);
        for (int i = 0; e == TR_OK && i < n; i++)
            one(srv, a, &d[i]);
        arena_destroy(a);
        if (e != TR_OK || n < BATCH)
            return e;
    }
    return TR_OK;
}

/* ---- invitation mail ----------------------------------------------------- */

static const char *invite_text(struct arena *a,
                               const struct terrace_server *srv,
                               const struct st_membership *m)
{
    char date[64];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S +0000", &tm);
    return arena_printf(
        a,
        "Date: %s\r\nFrom: <%s>\r\nTo: <%s>\r\n"
        "Message-ID: <%s@terrace>\r\n"
        "Subject: Terrace: you are invited to join %s\r\n"
        "MIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n\r\n"
        "You have been invited to join the organization %s on %s.\r\n\r\n"
        "%s"
        "Accept the invitation with your API token:\r\n\r\n"
        "  POST %s/api/v2/organization-memberships/%s/actions/accept\r\n"
        "\r\nor decline it with DELETE on the same membership.\r\n",
        date, srv->cfg.smtp_from, m->email, util_new_id(a, "msg"), m->org,
        m->org, srv->external_url,
        m->has_user ? ""
                    : "A site administrator creates your account with "
                      "this address first.\r\n\r\n",
        srv->external_url, m->id);
}

/* Mails the invitations store_membership_invite() marked, one attempt
 * each: a failed one is logged and not retried (the invitation itself
 * stays valid).  Without SMTP settings they are only unmarked. */
static tr_err invitations(struct terrace_server *srv, struct tr_errbuf *eb)
{
    struct arena *a = arena_new();
    struct st_membership *ms = NULL;
    int n = 0;
    tr_err e = store_membership_mail_due(srv->db, a, BATCH, &ms, &n, eb);
    for (int i = 0; e == TR_OK && i < n; i++) {
        const struct st_membership *m = &ms[i];
        const char *why = "no SMTP server is configured on this node";
        char err[CURL_ERROR_SIZE] = "";
        if (srv->cfg.smtp_host[0] != '\0' && !mail_ok(m->email))
            why = "the address cannot be mailed";
        else if (srv->cfg.smtp_host[0] != '\0') {
            struct curl_slist *rcpt =
                curl_slist_append(NULL, arena_printf(a, "<%s>", m->email));
            why = smtp_go(&srv->cfg, a, invite_text(a, srv, m), rcpt, err);
            curl_slist_free_all(rcpt);
        }
        if (why == NULL)
            log_info("membership %s: invitation mailed through %s", m->id,
                     srv->cfg.smtp_host);
        else if (srv->cfg.smtp_host[0] != '\0')
            log_warn("membership %s: invitation mail failed: %s", m->id, why);
        e = store_membership_mail_done(srv->db, a, m->id, eb);
    }
    arena_destroy(a);
    return e;
}

/* ---- the thread ---------------------------------------------------------- */

struct notify {
    struct terrace_server *srv;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool stop;
};

static void *loop(void *arg)
{
    struct notify *nt = arg;
    bool failing = false;
    pthread_mutex_lock(&nt->mu);
    while (!nt->stop) {
        pthread_mutex_unlock(&nt->mu);
        if (atomic_load(&nt->srv->is_leader)) {
            struct tr_errbuf eb = {{0}};
            tr_err e = pass(nt->srv, &eb);
            if (e == TR_OK)
                e = invitations(nt->srv, &eb);
            if (e != TR_OK && !failing)
                log_warn("notifications: %s", tr_errbuf_msg(&eb, e));
            failing = e != TR_OK;
        }
        struct timespec until = cond_after(1000);
        pthread_mutex_lock(&nt->mu);
        int rc = 0;
        while (!nt->stop && rc != ETIMEDOUT)
            rc = pthread_cond_timedwait(&nt->cv, &nt->mu, &until);
    }
    pthread_mutex_unlock(&nt->mu);
    return NULL;
}

tr_err notify_start(struct terrace_server *srv, struct notify **out,
                    struct tr_errbuf *eb)
{
    /* no curl_global_init here: libcurl is loaded (and initialised by
     * curl_easy_init) at the first delivery, not on every start */
    struct notify *nt = calloc(1, sizeof(*nt));
    if (nt == NULL)
        return TR_ERR_NOMEM;
    nt->srv = srv;
    pthread_mutex_init(&nt->mu, NULL);
    cond_init_mono(&nt->cv);
    if (pthread_create(&nt->thread, NULL, loop, nt) != 0) {
        pthread_mutex_destroy(&nt->mu);
        pthread_cond_destroy(&nt->cv);
        free(nt);
        return tr_fail(eb, TR_ERR_INTERNAL,
                       "cannot start the notification thread");
    }
    *out = nt;
    return TR_OK;
}

void notify_stop(struct notify *nt)
{
    if (nt == NULL)
        return;
    pthread_mutex_lock(&nt->mu);
    nt->stop = true;
    pthread_cond_signal(&nt->cv);
    pthread_mutex_unlock(&nt->mu);
    pthread_join(nt->thread, NULL);
    pthread_mutex_destroy(&nt->mu);
    pthread_cond_destroy(&nt->cv);
    free(nt);
}
