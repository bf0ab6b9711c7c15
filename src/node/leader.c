/*
 * leader.c - leader election and the node registry row of a primary
 * (leader.h).
 *
 * Election: a thread holds a connection of its own (pgconn.h, not from
 * the pool) and every LEADER_TICK_MS either tries the leader lock
 * (pg_try_advisory_lock(LEADER_LOCK_KEY), a session lock: it lives as
 * long as the connection) or, while holding it, checks the connection
 * with SELECT 1 and a deadline of LEADER_CHECK_MS.
 *
 *   follower --lock granted--> leader        (is_leader set to 1)
 *   leader --check fails--> follower         (is_leader set to 0 first,
 *                                             then the connection closed)
 *   any --leader_stop()--> stopped           (is_leader 0, lock released
 *                                             by closing the connection)
 *
 * Why this is safe: the leader pings every second and steps down when a
 * ping has no answer within LEADER_CHECK_MS, at most about 2.5 s after it
 * lost the server.  The server ends a session idle for 5 s
 * (idle_session_timeout, pgconn.c) or whose TCP peer is gone (keepalives,
 * tcp_user_timeout), and only then is the lock free for another primary.
 * So the old leader has stopped before a new one can start.  A primary
 * killed outright loses its socket, hence its session and lock, at once;
 * another takes the lock on its next attempt, within about a second.
 *
 * Registry: a second thread heartbeats this node's row every
 * LEADER_HEARTBEAT_S (registering again if the row was pruned meanwhile),
 * flags it leader as soon as is_leader turns 1 and clears the flag once
 * it is 0 again, and, while leader, prunes nodes silent for
 * LEADER_STALE_S.  It uses the pool: a slow database
 * delays a heartbeat, never the election's check.
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#include "node/leader.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/cond.h"
#include "core/log.h"
#include "node/pgconn.h"
#include "store/store.h"

#define LEADER_LOCK_KEY "7410002" /* migrations hold 7410001 */
#define LEADER_CHECK_MS 1500

struct leader {
    struct terrace_server *srv;
    char id[64];    /* this node's registry id */
    char name[400]; /* host@listen */
    pthread_t elect;
    pthread_t registry;
    int started; /* threads started: 0, 1 (elect) or 2 */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool stop;
};

/* Sleeps ms, or less when woken (leader_stop(), a new leader); false
 * once stopping. */
static bool pause_ms(struct leader *l, int ms)
{
    struct timespec until = cond_after(ms);
    pthread_mutex_lock(&l->mu);
    if (!l->stop) /* one wait: a broadcast ends it early, on purpose */
        pthread_cond_timedwait(&l->cv, &l->mu, &until);
    bool go = !l->stop;
    pthread_mutex_unlock(&l->mu);
    return go;
}

/* ---- election ------------------------------------------------------------ */

static void step_down(struct leader *l, const char *why)
{
    atomic_store(&l->srv->is_leader, 0);
    log_warn("no longer leading the cluster: %s", why);
}

static void *elect_loop(void *arg)
{
    struct leader *l = arg;
    struct pgconn *pc = NULL;
    bool leading = false, warned = false;
    for (bool first = true; first || pause_ms(l, LEADER_TICK_MS);
         first = false) {
        struct tr_errbuf eb = {{0}};
        if (pc == NULL) {
            if (pgconn_open(l->srv->cfg.database_url, &pc, &eb) != TR_OK) {
                if (!warned)
                    log_warn("leader election: %s", eb.msg);
                warned = true;
                continue;
            }
            warned = false;
        }
        char v[8];
        tr_err e = pgconn_exec(
            pc,
            leading ? "SELECT 1"
                    : "SELECT pg_try_advisory_lock(" LEADER_LOCK_KEY ")",
            LEADER_CHECK_MS, v, sizeof v, &eb);
        if (e != TR_OK) {
            /* stop acting as leader before anything else */
            if (leading)
                step_down(l, eb.msg);
            else if (!warned)
                log_warn("leader election: %s", eb.msg);
            warned = !leading;
            leading = false;
            pgconn_close(pc);
            pc = NULL;
            continue;
        }
        if (!leading && strcmp(v, "t") == 0) {
            leading = true;
            atomic_store(&l->srv->is_leader, 1);
            log_info("this primary (%s) leads the cluster", l->id);
            pthread_mutex_lock(&l->mu); /* flag it in the registry now */
            pthread_cond_broadcast(&l->cv);
            pthread_mutex_unlock(&l->mu);
        }
    }
    if (leading)
        atomic_store(&l->srv->is_leader, 0);
    pgconn_close(pc);
    return NULL;
}

/* ---- registry ------------------------------------------------------------ */

static tr_err register_self(struct leader *l, struct tr_errbuf *eb)
{
    struct terrace_server *srv = l->srv;
    struct arena *a = arena_new();
    struct st_node in = {
        .name = l->name,
        .role = "primary",
        .address = srv->external_url,
        .version = TERRACE_VERSION,
        .capacity = srv->cfg.executors,
    };
    struct st_node out;
    tr_err e = store_node_register(srv->db, a, &in, &out, NULL, eb);
    if (e == TR_OK)
        snprintf(l->id, sizeof(l->id), "%s", out.id);
    arena_destroy(a);
    return e;
}

/* One registry pass; due: a heartbeat is due. */
static void registry_pass(struct leader *l, bool due, bool *flagged)
{
    struct terrace_server *srv = l->srv;
    struct arena *a = arena_new();
    struct tr_errbuf eb = {{0}};
    tr_err e = TR_OK;
    if (due) {
        e = store_node_heartbeat(srv->db, a, l->id, 0, &eb);
        if (e == TR_ERR_NOT_FOUND) {
            log_warn("node %s was marked gone; registering again", l->id);
            *flagged = false;
            e = register_self(l, &eb);
        }
        if (e != TR_OK)
            log_warn("node heartbeat: %s", tr_errbuf_msg(&eb, e));
    }
    bool lead = atomic_load(&srv->is_leader) != 0;
    if (!lead && (due || *flagged)) { /* no stale flag for readiness */
        e = store_node_drop_leader(srv->db, a, l->id, &eb);
        if (e != TR_OK)
            log_warn("cannot clear this node's leader flag: %s",
                     tr_errbuf_msg(&eb, e));
        *flagged = e != TR_OK && *flagged;
    }
    if (lead && (due || !*flagged)) {
        e = store_node_set_leader(srv->db, a, l->id, &eb);
        *flagged = e == TR_OK;
        if (e != TR_OK)
            log_warn("cannot flag this node leader: %s", tr_errbuf_msg(&eb, e));
    }
    if (lead && due) {
        int64_t now = util_now_unix(), gone = 0;
        e = store_node_prune(
            srv->db, a, util_iso_from_unix(a, now - LEADER_STALE_S),
            util_iso_from_unix(a, now - LEADER_FORGET_S), &gone, &eb);
        if (e != TR_OK)
            log_warn("node pruning: %s", tr_errbuf_msg(&eb, e));
        else if (gone > 0)
            log_warn("%lld node(s) silent for %d s marked gone",
                     (long long)gone, LEADER_STALE_S);
    }
    arena_destroy(a);
}

static void *registry_loop(void *arg)
{
    struct leader *l = arg;
    int64_t last = util_now_ms();
    bool flagged = false;
    while (pause_ms(l, LEADER_TICK_MS)) {
        bool due = util_now_ms() - last >= LEADER_HEARTBEAT_S * 1000;
        if (due)
            last = util_now_ms();
        registry_pass(l, due, &flagged);
    }
    return NULL;
}

/* ---- lifecycle ----------------------------------------------------------- */

tr_err leader_start(struct terrace_server *srv, struct leader **out,
                    struct tr_errbuf *eb)
{
    struct leader *l = calloc(1, sizeof(*l));
    if (l == NULL)
        return tr_fail(eb, TR_ERR_NOMEM, "out of memory");
    l->srv = srv;
    cfg_node_name(&srv->cfg, l->name, sizeof(l->name));
    pthread_mutex_init(&l->mu, NULL);
    cond_init_mono(&l->cv);
    atomic_store(&srv->is_leader, 0);
    tr_err e = register_self(l, eb);
    if (e == TR_OK && pthread_create(&l->elect, NULL, elect_loop, l) != 0)
        e = tr_fail(eb, TR_ERR_INTERNAL, "cannot start the election thread");
    if (e == TR_OK)
        l->started = 1;
    if (e == TR_OK && pthread_create(&l->registry, NULL, registry_loop, l) != 0)
        e = tr_fail(eb, TR_ERR_INTERNAL, "cannot start the registry thread");
    if (e == TR_OK)
        l->started = 2;
    if (e != TR_OK) {
        leader_stop(l);
        return e;
    }
    log_info("registered as node %s (%s)", l->id, l->name);
    *out = l;
    return TR_OK;
}

void leader_stop(struct leader *l)
{
    if (l == NULL)
        return;
    atomic_store(&l->srv->is_leader, 0);
    pthread_mutex_lock(&l->mu);
    l->stop = true;
    pthread_cond_broadcast(&l->cv);
    pthread_mutex_unlock(&l->mu);
    if (l->started >= 1)
        pthread_join(l->elect, NULL);
    if (l->started >= 2)
        pthread_join(l->registry, NULL);
    if (l->id[0] != '\0') {
        struct arena *a = arena_new();
        struct tr_errbuf eb = {{0}};
        tr_err e = store_node_set_state(l->srv->db, a, l->id, "gone", &eb);
        if (e != TR_OK)
            log_warn("cannot mark node %s gone: %s", l->id,
                     tr_errbuf_msg(&eb, e));
        arena_destroy(a);
    }
    pthread_mutex_destroy(&l->mu);
    pthread_cond_destroy(&l->cv);
    free(l);
}

/* ---- readiness ----------------------------------------------------------- */

const char *cluster_not_ready(struct terrace_server *srv)
{
    if (srv->db == NULL)
        return "the database is not open";
    struct arena *a = arena_new();
    const char *why = NULL;
    struct st_node *nodes = NULL;
    int n = 0;
    /* the database and the migrations are checked before this is called
     * (src/http/ready.c) */
    if (atomic_load(&srv->is_leader))
        why = NULL;
    else if (store_node_list(srv->db, a, false, &nodes, &n, NULL) != TR_OK)
        why = "the database cannot be read";
    else {
        const char *since =
            util_iso_from_unix(a, util_now_unix() - LEADER_KNOWN_S);
        why = "no leader elected";
        for (int i = 0; i < n; i++)
            if (nodes[i].leader && util_streq(nodes[i].role, "primary") &&
                strcmp(nodes[i].last_heartbeat_at, since) >= 0)
                why = NULL;
    }
    arena_destroy(a);
    return why;
}
