/*
 * meta.c - service discovery, ping and health checks.
 *
 * /.well-known/terraform.json lists only services Terrace implements.
 * /api/v2/ping answers with the TFE version headers (added to every
 * response by the server).  /_health_check is liveness (200 while the
 * process serves); /_health_check?ready=1 is readiness for a load
 * balancer (http_ready(): not draining, database answering, migrations
 * done, the cluster's own conditions), 200 or 503 with the reason;
 * /_health_check?full=1 also writes to the blob store and says how runs
 * are sandboxed on this node (executor_sandbox_json()).  /metrics is
 * the Prometheus exposition (src/http/metrics.c).
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api/api.h"
#include "blob/blob.h"
#include "http/metrics.h"

/* A run's CLI config names the same services (executor/workdir.c,
 * write_cli_config): change both together. */
static void well_known(struct http_req *r)
{
    static const char body[] =
        "{\"tfe.v2\":\"/api/v2/\",\"tfe.v2.1\":\"/api/v2/\","
        "\"tfe.v2.2\":\"/api/v2/\",\"state.v2\":\"/api/v2/\"}";
    http_reply(r, 200, "application/json", body, sizeof(body) - 1);
}

static void ping(struct http_req *r)
{
    http_reply(r, 204, NULL, "", 0);
}

#define REPLY_LIT(r, status, lit)                                              \
    http_reply((r), (status), "application/json", (lit), sizeof(lit) - 1)

static void reply_doc(struct http_req *r, int status, json_t *doc)
{
    char *text = json_dumps(doc, JSON_COMPACT);
    json_decref(doc);
    char *body = arena_strdup(r->arena, text != NULL ? text : "{}");
    free(text);
    http_reply(r, status, "application/json", body, strlen(body));
}

static void ready(struct http_req *r)
{
    json_t *checks = NULL;
    const char *why = http_ready(r->srv, r->arena, &checks);
    if (why != NULL) {
        json_decref(checks);
        reply_doc(r, 503, json_pack("{s:b,s:s}", "ready", 0, "reason", why));
        return;
    }
    reply_doc(r, 200,
              json_pack("{s:b,s:s,s:o}", "ready", 1, "role", r->srv->cfg.role,
                        "checks", checks));
}

static void health(struct http_req *r)
{
    const char *rd = http_query(r, "ready");
    if (rd != NULL && strcmp(rd, "1") == 0) {
        ready(r);
        return;
    }
    const char *full = http_query(r, "full");
    if (full == NULL || strcmp(full, "1") != 0) {
        REPLY_LIT(r, 200, "{\"status\":\"ok\"}");
        return;
    }
    struct tr_errbuf eb = {{0}};
    struct db_conn *c = db_acquire(r->srv->db);
    tr_err e = db_query(c, r->arena, "SELECT 1", 0, NULL, NULL, NULL, &eb);
    db_release(c);
    const char *key = "health/probe";
    if (e == TR_OK)
        e = blob_put(r->srv->blob, key, "ok", 2, &eb);
    if (e != TR_OK) {
        REPLY_LIT(r, 503, "{\"status\":\"unavailable\"}");
        return;
    }
    const char *sb =
        r->srv->sandbox[0] ? r->srv->sandbox : "{\"runs\":\"none\"}";
    char *body = arena_printf(r->arena,
                              "{\"status\":\"ok\",\"database\":\"ok\","
                              "\"blob\":\"ok\",\"sandbox\":%s}",
                              sb);
    http_reply(r, 200, "application/json", body, strlen(body));
}

const struct route api_meta_routes[] = {
    {"GET", "/.well-known/terraform.json", well_known, 0},
    {"GET", "/api/v2/ping", ping, 0},
    {"GET", "/_health_check", health, 0},
    {"GET", "/metrics", http_metrics_get, 0},
    {0},
};
