/*
 * meta.c - service discovery, ping and health checks.
 *
 * /.well-known/terraform.json lists only services Terrace implements.
 * /api/v2/ping answers with the TFE version headers (added to every
 * response by the server).  /_health_check is liveness; /_health_check
 * ?full=1 also checks the database and blob store (readiness) and says
 * how runs are sandboxed on this node (executor_sandbox_json()).
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#include <string.h>
#include <unistd.h>

#include "api/api.h"
#include "blob/blob.h"

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

static void health(struct http_req *r)
{
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
    {0},
};
