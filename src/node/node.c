/*
 * node.c - start-up, first-run bootstrap and shutdown of a node.
 *
 * Start-up order: data dir, database (migrations), blob store (DATA/blobs
 * or --blob-url), the key-encryption key (--kek-file, or DATA/kek created
 * on first start), the URL-signing key derived from it, first admin, TLS
 * material, the run machinery, on PostgreSQL leader election, the node
 * registry and wake-ups across primaries (leader.h), HTTP listener, then
 * wait for a signal.
 * The first admin is created only when the database has no users: a user
 * "admin" with site-admin rights whose token is written to
 * DATA/admin-token (mode 0600) and stored hashed.  Of primaries starting
 * together on an empty database, the one whose insert of "admin" wins
 * writes the file; the others find the user taken and write nothing.
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#include "node/node.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api/api.h"
#include "blob/blob.h"
#include "core/file.h"
#include "core/log.h"
#include "core/util.h"
#include "crypto/keys.h"
#include "crypto/tls_cert.h"
#include "domain/job_service.h"
#include "domain/join_token.h"
#include "domain/blob_gc.h"
#include "domain/notify.h"
#include "domain/reaper.h"
#include "domain/run.h"
#include "executor/job_local.h"
#include "executor/tool_install.h"
#include "executor/executor.h"
#include "http/http.h"
#include "node/leader.h"
#include "node/secondary.h"
#include "store/read_cache.h"
#include "store/store.h"

static tr_err ensure_dir(const char *path, struct tr_errbuf *eb)
{
    if (mkdir(path, 0700) != 0 && errno != EEXIST)
        return tr_fail(eb, TR_ERR_IO, "cannot create %s: %s", path,
                       strerror(errno));
    return TR_OK;
}

static tr_err write_secret_file(const char *path, const char *text,
                                struct tr_errbuf *eb)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return tr_fail(eb, TR_ERR_IO, "cannot write %s: %s", path,
                       strerror(errno));
    size_t len = strlen(text);
    bool ok = write(fd, text, len) == (ssize_t)len && write(fd, "\n", 1) == 1 &&
              fsync(fd) == 0;
    close(fd);
    return ok ? TR_OK : tr_fail(eb, TR_ERR_IO, "cannot write %s", path);
}

static tr_err bootstrap_admin(struct terrace_server *srv, const char *path,
                              struct tr_errbuf *eb)
{
    struct arena *a = arena_new();
    struct st_user *users = NULL;
    int n = 0;
    int64_t total = 0;
    tr_err e = store_user_list(srv->db, a, 0, 1, &users, &n, &total, eb);
    if (e != TR_OK || total > 0)
        goto out;
    struct st_user u;
    char *secret = NULL;
    e = store_user_create(srv->db, a, "admin", "admin@localhost", true, &u, eb);
    if (e == TR_ERR_CONFLICT) { /* another primary got there first */
        log_info("the site admin was created by another primary");
        e = TR_OK;
        goto out;
    }
    if (e == TR_OK && srv->cfg.admin_token_file[0] != '\0') {
        e = file_read_secret(a, srv->cfg.admin_token_file, &secret, eb);
        if (e == TR_OK)
            e = store_token_create_given(srv->db, a, "user", u.id,
                                         "bootstrap token", u.id, secret, NULL,
                                         eb);
    } else if (e == TR_OK) {
        e = store_token_create(srv->db, a, "user", u.id, "bootstrap token",
                               u.id, NULL, NULL, &secret, eb);
    }
    if (e == TR_OK)
        e = write_secret_file(path, secret, eb);
    if (e == TR_OK)
        log_info("created site admin \"admin\"; token written to %s", path);
out:
    arena_destroy(a);
    return e;
}

/* A demo node, or a primary given --tofu-bin, registers the tofu it finds
 * (executor_find_tofu()) when no tool version is registered, so its first
 * run has a binary.  Failing only warns: runs then error until an admin
 * registers one. */
static void register_demo_tool(struct terrace_server *srv)
{
    if (strcmp(srv->cfg.role, "demo") != 0 && srv->cfg.tofu_bin[0] == '\0')
        return;
    struct arena *a = arena_new();
    struct tr_errbuf eb = {{0}};
    struct st_tool *items = NULL;
    int n = 0;
    int64_t total = 0;
    char *sha = NULL, *version = NULL;
    tr_err e =
        store_tool_list(srv->db, a, NULL, NULL, 0, 1, &items, &n, &total, &eb);
    const char *path = e == TR_OK && total == 0
                           ? executor_find_tofu(a, srv->cfg.tofu_bin)
                           : NULL;
    if (path != NULL)
        e = executor_tool_check(a, path, &sha, &eb);
    if (path != NULL && e == TR_OK)
        e = executor_tool_version(a, path, &version, &eb);
    if (path != NULL && e == TR_OK && !store_tool_valid_version(version))
        e = tr_fail(&eb, TR_ERR_INVALID, "%s is not a semantic version",
                    version);
    if (path != NULL && e == TR_OK) {
        struct st_tool t = {
            .version = version, .path = path, .sha256 = sha, .enabled = true};
        e = store_tool_create(srv->db, a, &t, NULL, &eb);
    }
    if (e != TR_OK)
        log_warn("cannot register the demo's tofu: %s", tr_errbuf_msg(&eb, e));
    else if (path != NULL)
        log_info("registered tofu %s (%s) as a tool version", version, path);
    arena_destroy(a);
}

/* The server side of runs: the job signal, the in-process job API the
 * executor claims through (srv->jobs), the lease reaper and the blob
 * garbage collector. */
struct runs {
    struct job_local *jobs;
    struct reaper *reaper;
    struct blob_gc *gc;    /* blob garbage collection (leader only) */
    struct notify *notify; /* notification delivery (leader only) */
    char ca[PATH_MAX];     /* the CA workers trust, if the node made it */
};

static tr_err start_runs(struct terrace_server *srv, struct runs *rs,
                         struct tr_errbuf *eb)
{
    /* a bad tool-mirror stops the start, not a user's first run */
    if (tool_install_enabled(srv->cfg.tool_mirror)) {
        struct arena *a = arena_new();
        const char *p = NULL, *z = NULL, *s = NULL;
        tr_err e =
            tool_install_urls(a, srv->cfg.tool_mirror, "1.0.0", &p, &z, &s, eb);
        arena_destroy(a);
        if (e != TR_OK)
            return e;
    }
    struct job_local_opts o;
    job_local_defaults(&o);
    snprintf(rs->ca, sizeof(rs->ca), "%.*s/tls/ca.pem", PATH_MAX - 16,
             srv->cfg.data_dir);
    if (strcmp(srv->cfg.tls, "on") == 0 && access(rs->ca, R_OK) == 0)
        o.ca_file = rs->ca;
    o.plan_timeout_s = srv->cfg.plan_timeout;
    o.apply_timeout_s = srv->cfg.apply_timeout;
    /* another primary's queued job wakes no signal here */
    if (strcmp(srv->cfg.role, "primary") == 0)
        o.sweep_ms = 1000;
    tr_err e = run_signal_new(&srv->run_signal);
    if (e == TR_OK)
        e = job_local_new(srv, &o, &rs->jobs, eb);
    if (e == TR_OK) {
        srv->jobs = job_local_api(rs->jobs);
        srv->job_service = job_local_service(rs->jobs);
    }
    if (e == TR_OK)
        e = reaper_start(srv, 1000, &rs->reaper, eb);
    if (e == TR_OK)
        e = blob_gc_start(srv, &rs->gc, eb);
    if (e == TR_OK)
        e = notify_start(srv, &rs->notify, eb);
    return e;
}

void node_executor_opts(const struct cfg *c, int workers, char node[128],
                        const char *hide[5], struct executor_opts *o)
{
    cfg_node_name(c, node, 128);
    executor_defaults(o);
    o->workers = workers;
    o->node = node;
    o->data_dir = c->data_dir;
    o->provider_mirror = c->provider_mirror;
    o->plan_timeout_s = c->plan_timeout;
    o->apply_timeout_s = c->apply_timeout;
    o->max_config_size = c->max_config_size;
    o->max_config_ratio = c->max_config_ratio;
    o->bwrap = c->bwrap;
    o->allow_unsandboxed = strcmp(c->allow_unsandboxed_runs, "on") == 0;
    o->run_uid = (unsigned)c->run_uid;
    o->run_memory_mb = c->run_memory;
    o->run_tasks = c->run_processes;
    o->run_disk_mb = c->run_disk;
    o->run_cpu_s = c->run_cpu_time;
    o->run_open_files = c->run_open_files;
    o->run_gogc = c->run_gogc;
    /* what a run must never see, should a system path hold it (a
     * secondary's node credential lives in the data dir) */
    const char *cand[] = {c->data_dir, c->tls_cert, c->tls_key,
                          getenv("TERRACE_CONFIG")};
    int k = 0;
    for (int i = 0; i < 4; i++)
        if (cand[i] != NULL && *cand[i] != '\0')
            hide[k++] = cand[i];
    while (k < 5)
        hide[k++] = NULL;
    o->hide = hide;
}

/* The worker threads that run plans and applies through srv->jobs
 * (cfg executors; 0 runs none, e.g. a node that only serves the API). */
static tr_err start_executor(struct terrace_server *srv, struct executor **x,
                             struct tr_errbuf *eb)
{
    const struct cfg *c = &srv->cfg;
    if (c->executors == 0 || srv->jobs == NULL)
        return TR_OK;
    char node[128];
    const char *hide[5];
    struct executor_opts o;
    node_executor_opts(c, c->executors, node, hide, &o);
    tr_err e = executor_start(&o, srv->jobs, x, eb);
    if (e == TR_OK) {
        struct arena *sa = arena_new();
        snprintf(srv->sandbox, sizeof(srv->sandbox), "%s",
                 executor_sandbox_json(*x, sa));
        arena_destroy(sa);
    }
    /* the registered tools, hashed before the first job needs them */
    struct arena *a = arena_new();
    struct st_tool *tools = NULL;
    int n = 0;
    int64_t total = 0;
    if (e == TR_OK && store_tool_list(srv->db, a, NULL, NULL, 0, 16, &tools, &n,
                                      &total, NULL) == TR_OK) {
        const char **paths = arena_alloc(a, sizeof(char *) * (size_t)(n + 1));
        int k = 0;
        for (int i = 0; i < n; i++)
            if (tools[i].enabled && tools[i].path != NULL)
                paths[k++] = tools[i].path;
        executor_prewarm(*x, paths, k);
    }
    arena_destroy(a);
    return e;
}

/* After the executor has stopped. */
static void stop_runs(struct terrace_server *srv, struct runs *rs)
{
    notify_stop(rs->notify);
    blob_gc_stop(rs->gc);
    reaper_stop(rs->reaper);
    srv->jobs = NULL;
    srv->job_service = NULL;
    job_local_free(rs->jobs);
    run_signal_free(srv->run_signal);
    srv->run_signal = NULL;
}

static void external_url(struct terrace_server *srv)
{
    const struct cfg *c = &srv->cfg;
    if (c->external_url[0] != '\0') {
        snprintf(srv->external_url, sizeof(srv->external_url), "%s",
                 c->external_url);
    } else {
        bool tls = strcmp(c->tls, "on") == 0;
        const char *listen = c->listen;
        if (strncmp(listen, "0.0.0.0:", 8) == 0)
            snprintf(srv->external_url, sizeof(srv->external_url),
                     "%s://localhost%s", tls ? "https" : "http", listen + 7);
        else
            snprintf(srv->external_url, sizeof(srv->external_url), "%s://%s",
                     tls ? "https" : "http", listen);
    }
    size_t n = strlen(srv->external_url);
    while (n > 0 && srv->external_url[n - 1] == '/')
        srv->external_url[--n] = '\0';
}

/* Host part of the external URL, for the certificate's names. */
static void url_host(const char *url, char *out, size_t n)
{
    const char *p = strstr(url, "://");
    p = p ? p + 3 : url;
    size_t len = strcspn(p, ":/");
    if (*p == '[') {
        p++;
        len = strcspn(p, "]");
    }
    snprintf(out, n, "%.*s", (int)len, p);
}

static tr_err prepare_tls(struct terrace_server *srv, struct tr_errbuf *eb)
{
    struct cfg *c = &srv->cfg;
    if (strcmp(c->tls, "on") != 0 || c->tls_cert[0] != '\0')
        return TR_OK;
    char dir[PATH_MAX], host[256], url_h[256];
    snprintf(dir, sizeof(dir), "%s/tls", c->data_dir);
    if (gethostname(host, sizeof(host)) != 0)
        strcpy(host, "localhost");
    url_host(srv->external_url, url_h, sizeof(url_h));
    const char *names[] = {url_h, host};
    tr_err e = tls_ensure_certs(dir, names, 2, eb);
    if (e != TR_OK)
        return e;
    if (snprintf(c->tls_cert, sizeof(c->tls_cert), "%.480s/tls/server.pem",
                 c->data_dir) >= (int)sizeof(c->tls_cert) ||
        snprintf(c->tls_key, sizeof(c->tls_key), "%.480s/tls/server-key.pem",
                 c->data_dir) >= (int)sizeof(c->tls_key))
        return tr_fail(eb, TR_ERR_CONFIG, "data dir path too long");
    return TR_OK;
}

/* The key-encryption key: DATA/kek (or --kek-file), or a Vault transit
 * key (--vault-addr) with the key file kept to unwrap what was sealed
 * under it before.  The database records the id of the key its data is
 * sealed under (first start, then `terrace admin rekey`), and a node
 * whose keyring cannot unwrap under that key refuses to start instead of
 * writing data no other node can read and failing every read of the old;
 * so does a node whose Vault cannot be reached.  Every stored object is
 * sealed under the keyring's active key from then on. */
static tr_err open_keys(struct terrace_server *srv, struct arena *a,
                        struct tr_errbuf *eb)
{
    const struct cfg *c = &srv->cfg;
    bool vault = c->vault_addr[0] != '\0';
    char path[PATH_MAX];
    node_kek_path(c, path, sizeof(path));
    char *want = NULL;
    tr_err e = store_site_get(srv->db, a, "kek-id", &want, eb);
    if (e == TR_ERR_NOT_FOUND)
        want = NULL;
    else if (e != TR_OK)
        return e;
    if (!vault && want != NULL && strncmp(want, "vault-", 6) == 0)
        return tr_fail(eb, TR_ERR_CONFIG,
                       "this installation's data is sealed under vault key "
                       "%s: set --vault-addr, --vault-key and a vault token "
                       "or approle",
                       want);
    if (!vault && want != NULL && access(path, F_OK) != 0 && errno == ENOENT)
        return tr_fail(eb, TR_ERR_CONFIG,
                       "%s is missing, but this installation's data is sealed "
                       "under key %s: restore that key file (stored state "
                       "cannot be read without it)",
                       path, want);
    e = node_keyring_open(c, true, &srv->keys, eb);
    if (e == TR_ERR_UNAVAILABLE) {
        struct tr_errbuf why = *eb;
        return tr_fail(eb, e,
                       "%.160s; not starting: sealed data cannot be read "
                       "without vault",
                       why.msg);
    }
    char *have = NULL;
    if (e == TR_OK)
        e = store_site_claim(srv->db, a, "kek-id", keys_id(srv->keys), &have,
                             eb);
    if (e == TR_OK && !keys_holds(srv->keys, have))
        e = vault ? tr_fail(eb, TR_ERR_CONFIG,
                            "this installation's data is sealed under key %s, "
                            "which this node does not hold: give it that key "
                            "file as well (--kek-file), then move the data "
                            "with `terrace admin rekey --to vault`",
                            have)
                  : tr_fail(eb, TR_ERR_CONFIG,
                            "%s holds key %s, but this installation's data is "
                            "sealed under key %s: restore the original key "
                            "file (every node needs the same one)",
                            path, keys_id(srv->keys), have);
    if (e == TR_OK)
        blob_set_keys(srv->blob, srv->keys);
    return e;
}

/* The settings primaries share, checked before anything is opened:
 * --kek-file must exist (a primary never makes the cluster's key: one
 * made here would differ from the others'), readable by this user only
 * (keys_open_file() checks the mode); --blob-url must be a URL (the
 * backend checks the rest when it opens). */
static tr_err check_shared(const struct cfg *c, struct tr_errbuf *eb)
{
    if (c->kek_file[0] != '\0' && access(c->kek_file, F_OK) != 0)
        return tr_fail(eb, TR_ERR_CONFIG,
                       "kek-file %s: %s (every primary needs a copy of the "
                       "same key file; make one with: umask 077; openssl "
                       "rand -hex 32 > FILE)",
                       c->kek_file, strerror(errno));
    const char *u = c->blob_url;
    if (u[0] != '\0' && strstr(u, "://") == NULL)
        return tr_fail(eb, TR_ERR_CONFIG,
                       "blob-url must be a URL: file:///absolute/dir, "
                       "s3://BUCKET/PREFIX, gs://BUCKET/PREFIX or "
                       "azblob://CONTAINER/PREFIX");
    return TR_OK;
}

/* A primary makes the cluster's join token on its first start (the
 * first primary's wins when several start at once). */
static tr_err ensure_join_token(struct terrace_server *srv,
                                struct tr_errbuf *eb)
{
    struct arena *a = arena_new();
    char *token = NULL;
    tr_err e = join_token_get(srv, a, &token, eb);
    arena_destroy(a);
    return e;
}

static tr_err open_stores(struct terrace_server *srv, struct tr_errbuf *eb)
{
    const struct cfg *c = &srv->cfg;
    char path[PATH_MAX];
    tr_err e;
    if (strcmp(c->role, "demo") == 0) {
        snprintf(path, sizeof(path), "%s/terrace.db", c->data_dir);
        e = db_open(DB_SQLITE, path, c->db_pool, &srv->db, eb);
    } else {
        e = db_open(DB_PG, c->database_url, c->db_pool, &srv->db, eb);
    }
    if (e == TR_OK)
        e = store_migrate(srv->db, eb);
    if (e != TR_OK)
        return e;
    if (db_kind(srv->db) == DB_PG && strcmp(c->read_cache, "on") == 0) {
        struct read_cache *rc = read_cache_new(srv->db);
        if (rc == NULL)
            return TR_ERR_NOMEM;
        db_set_read_cache(srv->db, rc);
    }
    char spool[PATH_MAX];
    snprintf(spool, sizeof(spool), "%s/spool", c->data_dir);
    if (mkdir(spool, 0700) != 0 && errno != EEXIST)
        return tr_fail(eb, TR_ERR_IO, "cannot create %s: %s", spool,
                       strerror(errno));
    if (c->blob_url[0] != '\0')
        snprintf(path, sizeof(path), "%s", c->blob_url);
    else
        snprintf(path, sizeof(path), "file://%s/blobs", c->data_dir);
    e = blob_open_url(path, spool, &srv->blob, eb);
    if (e != TR_OK)
        return e;
    struct arena *a = arena_new();
    e = open_keys(srv, a, eb);
    if (e == TR_OK)
        e = http_signing_init(srv, eb);
    arena_destroy(a);
    return e;
}

tr_err node_run(const struct cfg *cfg, node_ready_fn ready, void *arg,
                struct tr_errbuf *eb)
{
    /* one malloc arena per core instead of per thread, on every role:
     * idle RSS is part of what users run us for (bench/idle_rss.sh: 15.3
     * -> 14.8 MB after 20k requests with the default 8 HTTP threads); 2
     * keep contention low on a 2-core node */
    mallopt(M_ARENA_MAX, 2);
    if (strcmp(cfg->role, "secondary") == 0 || strcmp(cfg->role, "agent") == 0)
        return secondary_run(cfg, eb); /* no database, blob or keys */
    static struct terrace_server srv;  /* the one server struct */
    memset(&srv, 0, sizeof(srv));
    srv.cfg = *cfg;
    sigset_t set;
    util_daemon_signals(&set);
    umask(077);

    char token_path[PATH_MAX];
    snprintf(token_path, sizeof(token_path), "%s/admin-token", cfg->data_dir);
    external_url(&srv);
    tr_err e = ensure_dir(cfg->data_dir, eb);
    /* absolute from here on: paths under it are handed to tofu, which
     * runs elsewhere (a relative CA path made every run fail TLS) */
    char abs_dir[PATH_MAX];
    if (e == TR_OK && realpath(cfg->data_dir, abs_dir) != NULL &&
        strlen(abs_dir) < sizeof(srv.cfg.data_dir))
        memcpy(srv.cfg.data_dir, abs_dir, strlen(abs_dir) + 1);
    if (e == TR_OK)
        e = check_shared(cfg, eb);
    if (e == TR_OK)
        e = open_stores(&srv, eb);
    if (e == TR_OK)
        e = bootstrap_admin(&srv, token_path, eb);
    if (e == TR_OK && strcmp(cfg->role, "primary") == 0)
        e = ensure_join_token(&srv, eb);
    if (e == TR_OK)
        register_demo_tool(&srv);
    if (e == TR_OK)
        e = prepare_tls(&srv, eb);
    /* one SQLite node is its own cluster: it always leads; primaries on
     * PostgreSQL lead once elected (leader_start()) */
    bool cluster = e == TR_OK && db_kind(srv.db) == DB_PG;
    atomic_store(&srv.is_leader, cluster ? 0 : 1);
    struct runs runs = {0};
    if (e == TR_OK)
        e = start_runs(&srv, &runs, eb);
    struct leader *leader = NULL;
    struct wakeup *wakeup = NULL;
    if (cluster && e == TR_OK) {
        srv.not_ready = cluster_not_ready; /* a leader known */
        e = leader_start(&srv, &leader, eb);
    }
    if (cluster && e == TR_OK)
        e = wakeup_start(&srv, &wakeup, eb);
    if (e == TR_OK) {
        /* the internal API for secondaries and agents */
        http_set_routes(strcmp(cfg->role, "primary") == 0 ? api_primary_routes
                                                          : api_demo_routes);
        srv.json_wait = api_json_wait_new(&srv);
        e = http_start(&srv, eb);
    }
    struct executor *exec = NULL;
    if (e == TR_OK) {
        e = start_executor(&srv, &exec, eb);
        if (e != TR_OK) {
            job_service_unpark_all(srv.job_service);
            api_json_wait_stop(srv.json_wait);
            http_stop(&srv);
        }
    }
    if (e == TR_OK) {
        log_info("terrace %s (%s) listening on %s, external url %s",
                 TERRACE_VERSION, cfg->role, cfg->listen, srv.external_url);
        if (ready != NULL)
            ready(&srv, token_path, arg);
        for (;;) {
            int sig = 0;
            if (sigwait(&set, &sig) != 0)
                continue;
            if (sig == SIGHUP) {
                log_info("SIGHUP received; nothing to reload");
                continue;
            }
            log_info("signal %d received; shutting down", sig);
            break;
        }
        executor_stop(exec); /* tofu may still talk to the API */
        job_service_unpark_all(srv.job_service); /* long polls end */
        api_json_wait_stop(srv.json_wait);
        http_stop(&srv);
    }
    api_json_wait_free(srv.json_wait);
    srv.json_wait = NULL;
    wakeup_stop(wakeup);
    leader_stop(leader); /* steps down, marks this node gone */
    stop_runs(&srv, &runs);
    blob_close(srv.blob);
    keys_close(srv.keys);
    struct read_cache *rc = srv.db != NULL ? db_read_cache(srv.db) : NULL;
    db_close(srv.db);
    read_cache_free(rc);
    if (e == TR_OK)
        log_info("stopped cleanly");
    return e;
}
