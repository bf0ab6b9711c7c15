/*
 * store_notify.c - notification configurations of workspaces and the
 * outbox of their deliveries.
 *
 * A configuration's token is sealed here (envelope.h), inside the
 * writing transaction, as sensitive variables are; reads return the
 * sealed text and only the deliverer opens it.  The outbox is written by
 * store_notify_enqueue(), which store_run_event_add() calls in the same
 * transaction as the run's state change: a notification exists exactly
 * when the change it announces was committed, and a crash loses neither.
 * The deliverer (domain/notify.c) deletes a row once it is delivered or
 * given up, and pushes next_at on after a failure.
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/envelope.h"
#include "store/store.h"

#define NC_COLS                                                                \
    "nc.id, nc.workspace_id, nc.name, nc.destination_type, nc.enabled,"        \
    " nc.url, nc.token, nc.triggers, nc.email_addresses, nc.email_user_ids,"   \
    " nc.delivery_responses, nc.created_at, nc.updated_at"

static void fill(const struct db_rows *r, int i, struct st_nc *o)
{
    *o = (struct st_nc){
        .id = db_get(r, i, "id"),
        .workspace_id = db_get(r, i, "workspace_id"),
        .name = db_get(r, i, "name"),
        .destination_type = db_get(r, i, "destination_type"),
        .enabled = db_get_bool(r, i, "enabled"),
        .url = db_get(r, i, "url"),
        .token = db_get(r, i, "token"),
        .triggers = db_get(r, i, "triggers"),
        .email_addresses = db_get(r, i, "email_addresses"),
        .email_user_ids = db_get(r, i, "email_user_ids"),
        .delivery_responses = db_get(r, i, "delivery_responses"),
        .created_at = db_get(r, i, "created_at"),
        .updated_at = db_get(r, i, "updated_at"),
    };
}

static tr_err load(struct db_conn *c, struct arena *a, const char *id,
                   struct st_nc *out, struct tr_errbuf *eb)
{
    struct db_rows *r = NULL;
    tr_err e = db_q(c, a, &r, eb,
                    "SELECT " NC_COLS " FROM notification_configs nc"
                    " WHERE nc.id = $1",
                    id);
    if (e == TR_OK && r->nrows == 0)
        e = tr_fail(eb, TR_ERR_NOT_FOUND,
                    "notification configuration %s not found", id);
    if (e == TR_OK)
        fill(r, 0, out);
    return e;
}

/* The sealed text of a token's plaintext; NULL for none ("" or NULL). */
static tr_err seal_token(const struct keyring *keys, struct arena *a,
                         const char *plain, const char **out,
                         struct tr_errbuf *eb)
{
    *out = NULL;
    if (plain == NULL || *plain == '\0')
        return TR_OK;
    if (keys == NULL)
        return tr_fail(eb, TR_ERR_CRYPTO, "no key to encrypt with");
    char *text = NULL;
    tr_err e = envelope_seal(keys, a, plain, strlen(plain), &text, eb);
    if (e == TR_OK)
        *out = text;
    return e;
}

static const char *or_empty_array(const char *s)
{
    return s != NULL ? s : "[]";
}

tr_err store_nc_create(struct db *db, const struct keyring *keys,
                       struct arena *a, const struct st_nc *in,
                       struct st_nc *out, struct tr_errbuf *eb)
{
    const char *id = util_new_id(a, "nc");
    const char *now = util_now_iso(a);
    const char *token = NULL;
    tr_err e = seal_token(keys, a, in->token, &token, eb);
    if (e != TR_OK)
        return e;
    struct db_conn *c = db_acquire(db);
    struct db_rows *w = NULL;
    e = db_begin(c, eb);
    if (e == TR_OK)
        e = db_q(c, a, &w, eb, "SELECT id FROM workspaces WHERE id = $1",
                 in->workspace_id);
    if (e == TR_OK && w->nrows == 0)
        e = tr_fail(eb, TR_ERR_NOT_FOUND, "workspace %s not found",
                    in->workspace_id);
    if (e == TR_OK)
        e = db_x(c, a, NULL, eb,
                 "INSERT INTO notification_configs (id, workspace_id, name,"
                 " destination_type, enabled, url, token, triggers,"
                 " email_addresses, email_user_ids, created_at, updated_at)"
                 " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11)",
                 id, in->workspace_id, in->name, in->destination_type,
                 in->enabled ? "1" : "0", in->url ? in->url : "", token,
                 or_empty_array(in->triggers),
                 or_empty_array(in->email_addresses),
                 or_empty_array(in->email_user_ids), now);
    if (e == TR_OK && out != NULL)
        e = load(c, a, id, out, eb);
    if (e == TR_OK)
        e = db_commit(c, eb);
    db_release(c); /* rolls back what failed */
    return e;
}

tr_err store_nc_get(struct db *db, struct arena *a, const char *id,
                    struct st_nc *out, struct tr_errbuf *eb)
{
    struct db_conn *c = db_acquire(db);
    tr_err e = load(c, a, id, out, eb);
    db_release(c);
    return e;
}

tr_err store_nc_list(struct db *db, struct arena *a, const char *ws_id,
                     int offset, int limit, struct st_nc **out, int *n,
                     int64_t *total, struct tr_errbuf *eb)
{
    struct db_conn *c = db_acquire(db);
    struct db_rows *r = NULL;
    tr_err e =
        db_page(c, a,
                "SELECT " NC_COLS " FROM notification_configs nc"
                " WHERE nc.workspace_id = $1 ORDER BY nc.created_at,"
                " nc.id",
                "SELECT count(*) AS n FROM notification_configs"
                " WHERE workspace_id = $1",
                1, (const char *const[]){ws_id}, offset, limit, &r, total, eb);
    db_release(c);
    if (e != TR_OK)
        return e;
    struct st_nc *items =
        arena_alloc(a, sizeof(*items) * (size_t)(r->nrows + 1));
    for (int i = 0; i < r->nrows; i++)
        fill(r, i, &items[i]);
    *out = items;
    *n = r->nrows;
    return TR_OK;
}

tr_err store_nc_update(struct db *db, const struct keyring *keys,
                       struct arena *a, const char *id,
                       const struct st_nc_update *u, struct st_nc *out,
                       struct tr_errbuf *eb)
{
    const char *token = NULL;
    tr_err e = TR_OK;
    if (u->token != NULL)
        e = seal_token(keys, a, u->token, &token, eb);
    if (e != TR_OK)
        return e;
    struct db_conn *c = db_acquire(db);
    struct st_nc cur;
    e = db_begin(c, eb);
    if (e == TR_OK)
        e = load(c, a, id, &cur, eb);
    if (e == TR_OK)
        e = db_x(c, a, NULL, eb,
                 "UPDATE notification_configs SET name = $2, enabled = $3,"
                 " url = $4, token = $5, triggers = $6, email_addresses = $7,"
                 " email_user_ids = $8, updated_at = $9 WHERE id = $1",
                 id, u->name ? u->name : cur.name,
                 (u->enabled < 0 ? cur.enabled : u->enabled == 1) ? "1" : "0",
                 u->url ? u->url : cur.url,
                 u->token != NULL ? token : cur.token,
                 u->triggers ? u->triggers : cur.triggers,
                 u->email_addresses ? u->email_addresses : cur.email_addresses,
                 u->email_user_ids ? u->email_user_ids : cur.email_user_ids,
                 util_now_iso(a));
    if (e == TR_OK && out != NULL)
        e = load(c, a, id, out, eb);
    if (e == TR_OK)
        e = db_commit(c, eb);
    db_release(c); /* rolls back what failed */
    return e;
}

tr_err store_nc_delete(struct db *db, struct arena *a, const char *id,
                       struct tr_errbuf *eb)
{
    struct db_conn *c = db_acquire(db);
    int64_t n = 0;
    tr_err e = db_begin(c, eb);
    if (e == TR_OK)
        e = db_x(c, a, NULL, eb,
                 "DELETE FROM notification_outbox WHERE config_id = $1", id);
    if (e == TR_OK)
        e = db_x(c, a, &n, eb, "DELETE FROM notification_configs WHERE id = $1",
                 id);
    if (e == TR_OK && n == 0)
        e = tr_fail(eb, TR_ERR_NOT_FOUND,
                    "notification configuration %s not found", id);
    if (e == TR_OK)
        e = db_commit(c, eb);
    db_release(c); /* rolls back what failed */
    return e;
}

tr_err store_nc_add_response(struct db *db, struct arena *a, const char *id,
                             const char *response, struct tr_errbuf *eb)
{
    json_t *resp = json_loads(response, 0, NULL);
    if (!json_is_object(resp)) {
        json_decref(resp);
        return tr_fail(eb, TR_ERR_INTERNAL, "delivery response is not JSON");
    }
    struct db_conn *c = db_acquire(db);
    struct db_rows *r = NULL;
    tr_err e = db_begin(c, eb);
    if (e == TR_OK)
        e = db_q(c, a, &r, eb,
                 arena_printf(a,
                              "SELECT delivery_responses FROM"
                              " notification_configs WHERE id = $1%s",
                              db_for_update(c)),
                 id);
    if (e == TR_OK && r->nrows == 1) {
        json_t *list = json_loads(db_get(r, 0, "delivery_responses"), 0, NULL);
        if (!json_is_array(list)) {
            json_decref(list);
            list = json_array();
        }
        json_array_append(list, resp);
        while (json_array_size(list) > STORE_NC_RESPONSES)
            json_array_remove(list, 0);
        char *txt = json_dumps(list, JSON_COMPACT);
        json_decref(list);
        e = txt == NULL ? TR_ERR_NOMEM
                        : db_x(c, a, NULL, eb,
                               "UPDATE notification_configs SET"
                               " delivery_responses = $2 WHERE id = $1",
                               id, txt);
        free(txt);
    }
    if (e == TR_OK)
        e = db_commit(c, eb);
    db_release(c); /* rolls back what failed */
    json_decref(resp);
    return e;
}

tr_err store_nc_users_in_org(struct db *db, struct arena *a, const char *org,
                             const char *user_ids, const char **bad,
                             struct tr_errbuf *eb)
{
    *bad = NULL;
    json_t *ids = json_loads(user_ids ? user_ids : "[]", 0, NULL);
    struct db_conn *c = db_acquire(db);
    tr_err e = TR_OK;
    for (size_t i = 0; e == TR_OK && *bad == NULL && i < json_array_size(ids);
         i++) {
        const char *uid = json_string_value(json_array_get(ids, i));
        struct db_rows *r = NULL;
        e = db_q(c, a, &r, eb,
                 "SELECT 1 FROM org_memberships WHERE org = $1 AND"
                 " (user_id = $2 OR (user_id IS NULL AND invitee_id = $2))",
                 org, uid);
        if (e == TR_OK && r->nrows == 0)
            *bad = arena_strdup(a, uid != NULL ? uid : "");
    }
    db_release(c);
    json_decref(ids);
    return e;
}

tr_err store_nc_user_emails(struct db *db, struct arena *a,
                            const char *workspace_id, const char *user_ids,
                            const char **emails, struct tr_errbuf *eb)
{
    json_t *ids = json_loads(user_ids ? user_ids : "[]", 0, NULL);
    json_t *out = json_array();
    struct db_conn *c = db_acquire(db);
    tr_err e = TR_OK;
    for (size_t i = 0; e == TR_OK && i < json_array_size(ids); i++) {
        struct db_rows *r = NULL;
        e = db_q(c, a, &r, eb,
                 "SELECT u.email FROM users u"
                 " JOIN org_members m ON m.user_id = u.id"
                 " JOIN workspaces w ON w.org = m.org"
                 " WHERE u.id = $1 AND w.id = $2",
                 json_string_value(json_array_get(ids, i)), workspace_id);
        const char *em =
            e == TR_OK && r->nrows == 1 ? db_get(r, 0, "email") : NULL;
        if (em != NULL && *em != '\0')
            json_array_append_new(out, json_string(em));
    }
    db_release(c);
    json_decref(ids);
    char *txt = json_dumps(out, JSON_COMPACT);
    json_decref(out);
    *emails = arena_strdup(a, txt != NULL ? txt : "[]");
    free(txt);
    return e;
}

/* ---- the outbox ---------------------------------------------------------- */

/* The trigger a run event announces, given the run's status after it;
 * NULL for none. */
static const char *trigger_of(const char *action, const char *status)
{
    static const char *const direct[][2] = {
        {"created", "run:created"},   {"planning", "run:planning"},
        {"applying", "run:applying"}, {"applied", "run:completed"},
        {"errored", "run:errored"},
    };
    for (size_t i = 0; i < sizeof(direct) / sizeof(direct[0]); i++)
        if (strcmp(action, direct[i][0]) == 0)
            return direct[i][1];
    if (strcmp(action, "planned") != 0 || status == NULL)
        return NULL;
    if (strcmp(status, "planned") == 0 || strcmp(status, "cost_estimated") == 0)
        return "run:needs_attention";
    if (strcmp(status, "planned_and_finished") == 0 ||
        strcmp(status, "planned_and_saved") == 0)
        return "run:completed";
    return NULL;
}

tr_err store_notify_enqueue(struct db_conn *c, struct arena *a,
                            const char *run_id, const char *action,
                            const char *now, struct tr_errbuf *eb)
{
    if (trigger_of(action, "planned") == NULL)
        return TR_OK; /* nothing announces it: no query */
    struct db_rows *r = NULL;
    tr_err e =
        db_q(c, a, &r, eb, "SELECT status FROM runs WHERE id = $1", run_id);
    if (e != TR_OK || r->nrows == 0)
        return e;
    const char *status = db_get(r, 0, "status");
    const char *trig = trigger_of(action, status);
    if (trig == NULL)
        return TR_OK;
    char next[24];
    snprintf(next, sizeof(next), "%lld", (long long)util_now_unix());
    return db_x(c, a, NULL, eb,
                "INSERT INTO notification_outbox (id, config_id, run_id,"
                " trigger_name, run_status, attempts, next_at, created_at)"
                " SELECT $1 || '-' || nc.id, nc.id, r.id, $3, r.status, 0,"
                " $5, $6 FROM runs r JOIN notification_configs nc"
                " ON nc.workspace_id = r.workspace_id"
                " WHERE r.id = $2 AND nc.enabled = 1 AND nc.triggers LIKE $4",
                util_new_id(a, "nd"), run_id, trig,
                arena_printf(a, "%%\"%s\"%%", trig), next, now);
}

tr_err store_notify_due(struct db *db, struct arena *a, int64_t now_s,
                        int limit, struct st_nc_delivery **out, int *n,
                        struct tr_errbuf *eb)
{
    char now[24], lim[16];
    snprintf(now, sizeof(now), "%lld", (long long)now_s);
    snprintf(lim, sizeof(lim), "%d", limit);
    struct db_conn *c = db_acquire(db);
    struct db_rows *r = NULL;
    tr_err e = db_q(
        c, a, &r, eb,
        "SELECT o.id AS o_id, o.trigger_name, o.run_status, o.attempts,"
        " o.created_at AS o_created_at, " NC_COLS ", r.id AS run_id,"
        " r.message AS run_message, r.created_at AS run_created_at,"
        " u.username AS run_created_by, w.name AS ws_name, w.org"
        " FROM notification_outbox o"
        " JOIN notification_configs nc ON nc.id = o.config_id"
        " JOIN runs r ON r.id = o.run_id"
        " JOIN workspaces w ON w.id = r.workspace_id"
        " LEFT JOIN users u ON u.id = r.created_by"
        " WHERE o.next_at <= CAST($1 AS BIGINT)"
        " ORDER BY o.next_at, o.created_at, o.id LIMIT CAST($2 AS INTEGER)",
        now, lim);
    db_release(c);
    if (e != TR_OK)
        return e;
    struct st_nc_delivery *d =
        arena_alloc(a, sizeof(*d) * (size_t)(r->nrows + 1));
    for (int i = 0; i < r->nrows; i++) {
        d[i] = (struct st_nc_delivery){
            .id = db_get(r, i, "o_id"),
            .trigger = db_get(r, i, "trigger_name"),
            .run_status = db_get(r, i, "run_status"),
            .attempts = (int)db_get_i64(r, i, "attempts"),
            .created_at = db_get(r, i, "o_created_at"),
            .run_id = db_get(r, i, "run_id"),
            .run_message = db_get(r, i, "run_message"),
            .run_created_at = db_get(r, i, "run_created_at"),
            .run_created_by = db_get(r, i, "run_created_by"),
            .ws_name = db_get(r, i, "ws_name"),
            .org = db_get(r, i, "org"),
        };
        fill(r, i, &d[i].nc);
    }
    *out = d;
    *n = r->nrows;
    return TR_OK;
}

tr_err store_notify_done(struct db *db, struct arena *a, const char *id,
                         struct tr_errbuf *eb)
{
    struct db_conn *c = db_acquire(db);
    tr_err e = db_x(c, a, NULL, eb,
                    "DELETE FROM notification_outbox WHERE id = $1", id);
    db_release(c);
    return e;
}

tr_err store_notify_retry(struct db *db, struct arena *a, const char *id,
                          int attempts, int64_t next_s, struct tr_errbuf *eb)
{
    char att[16], next[24];
    snprintf(att, sizeof(att), "%d", attempts);
    snprintf(next, sizeof(next), "%lld", (long long)next_s);
    struct db_conn *c = db_acquire(db);
    tr_err e = db_x(c, a, NULL, eb,
                    "UPDATE notification_outbox SET attempts = $2,"
                    " next_at = $3 WHERE id = $1",
                    id, att, next);
    db_release(c);
    return e;
}
