/*
 * notify.h - delivery of run notifications: generic webhooks (signed
 * with the configuration's token as TFE does), Slack, Microsoft Teams and
 * e-mail through the node's SMTP settings.
 *
 * Deliveries come from the outbox store_notify_enqueue() fills in the
 * transaction of each run event.  One thread delivers them, on the
 * leader only (srv->is_leader; the demo always leads): each due row is
 * sent, its response recorded on the configuration, and the row deleted
 * on success or retried with exponential backoff (NOTIFY_MAX_ATTEMPTS in
 * all).  A run never waits for a delivery; a receiver that is down or
 * slow holds up only other deliveries, each bounded by
 * NOTIFY_TIMEOUT_S.  The same thread mails each new organization
 * invitation once (store_membership_mail_due()).  Nothing here logs a token, a
 * URL's path or query (a Slack or Teams webhook's secret is in its path) or a
 * password.
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#ifndef TR_NOTIFY_H
#define TR_NOTIFY_H

#include <stdbool.h>

#include "core/arena.h"
#include "core/err.h"
#include "core/server.h"
#include "store/store.h"

#define NOTIFY_MAX_ATTEMPTS 8 /* a delivery is given up after these */
#define NOTIFY_TIMEOUT_S 10   /* one HTTP or SMTP delivery, at most */

/* Whether s is one of the triggers TFE defines (run:created, ...). */
bool notify_trigger_valid(const char *s);

/* Whether url may be a destination: http or https with a host, no user
 * or password, at most 2048 bytes; *why (static text) says what is wrong
 * otherwise. */
bool notify_url_valid(const char *url, const char **why);

/* Sends a verification notification for nc (of workspace ws_name in
 * org) now, in the caller's thread, and records the response on the
 * configuration.  A delivery that fails is not an error: the response
 * records it.  Errors are the store's. */
tr_err notify_verify(struct terrace_server *srv, struct arena *a,
                     const struct st_nc *nc, const char *ws_name,
                     const char *org, struct tr_errbuf *eb);

struct notify;

/* Starts the delivery thread: a pass every second while leading. */
tr_err notify_start(struct terrace_server *srv, struct notify **out,
                    struct tr_errbuf *eb);
/* Stops and joins it (a delivery in progress finishes first); NULL
 * ignored. */
void notify_stop(struct notify *n);

#endif
