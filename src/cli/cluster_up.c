/*
 * cluster_up.c - `terrace cluster up` and the nodes it starts: the
 * directory, key and certificates, PostgreSQL, the primaries, HAProxy
 * and the secondaries (the layout is described in cluster.c).
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cli/cluster_int.h"
#include "cli/lb.h"
#include "core/file.h"
#include "core/util.h"
#include "crypto/keys.h"
#include "crypto/tls_cert.h"
#include "executor/executor.h"

#define READY_TIMEOUT_MS 120000 /* a primary's first start migrates */

/* ---- certificates and keys ---- */

static tr_err node_certs(struct cl_ctx *c, const char *name, const char *ip,
                         struct tr_errbuf *eb)
{
    char *tls = arena_printf(c->a, "%s/%s/tls", c->dir, name);
    tr_err e = cl_make_dir(tls, 0700, eb);
    const char *files[] = {"ca.pem", "ca-key.pem"};
    for (int i = 0; i < 2 && e == TR_OK; i++)
        e = cl_copy_file(c, cl_path(c, "tls/%s", files[i]),
                         arena_printf(c->a, "%s/%s", tls, files[i]), 0600, eb);
    const char *names[] = {ip};
    if (e == TR_OK)
        e = tls_ensure_certs(tls, names, 1, eb);
    /* the CA's key stays in D/tls only */
    unlink(arena_printf(c->a, "%s/ca-key.pem", tls));
    return e;
}

static tr_err prepare_dir(struct cl_ctx *c, struct tr_errbuf *eb)
{
    tr_err e = TR_OK;
    const char *dirs[] = {"logs", "blobs", "tls"};
    for (int i = 0; i < 3 && e == TR_OK; i++)
        e = cl_make_dir(cl_path(c, "%s", dirs[i]), 0755, eb);
    struct keyring *k = NULL;
    if (e == TR_OK)
        e = keys_open_file(cl_path(c, "%s", "kek"), &k, eb);
    keys_close(k);
    const char *names[] = {"127.0.0.1"};
    if (e == TR_OK)
        e = tls_ensure_certs(cl_path(c, "%s", "tls"), names, 1, eb);
    char *cert = NULL, *key = NULL;
    size_t clen = 0, klen = 0;
    if (e == TR_OK)
        e = file_read_all(c->a, cl_path(c, "%s", "tls/server.pem"), 1 << 16,
                          &cert, &clen, eb);
    if (e == TR_OK)
        e = file_read_all(c->a, cl_path(c, "%s", "tls/server-key.pem"), 1 << 16,
                          &key, &klen, eb);
    if (e == TR_OK) {
        char *pem = arena_printf(c->a, "%s%s", cert, key);
        e = cl_write_file(cl_path(c, "%s", "tls/lb.pem"), pem, strlen(pem),
                          0600, eb);
    }
    snprintf(c->ca, sizeof(c->ca), "%s/tls/ca.pem", c->dir);
    return e;
}

/* Which of the agreed cluster settings this terraced knows (older
 * builds: each primary gets a copy of the key and a link to the blobs). */
static tr_err probe_terraced(struct cl_ctx *c, struct tr_errbuf *eb)
{
    char *log = cl_path(c, "%s", "logs/terraced-help.txt");
    unlink(log);
    char *argv[] = {(char *)c->terraced, "--help", NULL};
    pid_t pid;
    tr_err e = cl_spawn(log, argv, NULL, false, &pid, eb);
    if (e != TR_OK)
        return e;
    while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
        ;
    char *help = NULL;
    size_t len = 0;
    e = file_read_all(c->a, log, 1 << 20, &help, &len, eb);
    if (e == TR_OK && strstr(help, "--data-dir") == NULL)
        e = tr_fail(eb, TR_ERR_CONFIG, "%s does not look like terraced",
                    c->terraced);
    if (e == TR_OK) {
        c->has_kek = strstr(help, "--kek-file") != NULL;
        c->has_blob = strstr(help, "--blob-url") != NULL;
        c->has_secondary = strstr(help, "secondary") != NULL;
    }
    return e;
}

/* ---- nodes ---- */

tr_err cl_add_node(struct cl_ctx *c, const char *name, long pid,
                   const char *role, const char *addr, struct tr_errbuf *eb)
{
    if (c->nodes.count == CL_MAX_NODES)
        return tr_fail(eb, TR_ERR_INVALID, "too many nodes");
    struct cl_node *n = &c->nodes.n[c->nodes.count++];
    snprintf(n->name, sizeof(n->name), "%s", name);
    snprintf(n->role, sizeof(n->role), "%s", role);
    snprintf(n->addr, sizeof(n->addr), "%s", addr);
    n->pid = pid;
    return cl_nodes_write(c->dir, &c->nodes, eb);
}

tr_err cl_wait_ready(struct cl_ctx *c, const struct cl_node *n,
                     struct tr_errbuf *eb)
{
    char *url = arena_printf(c->a, "%s/_health_check?ready=1", n->addr);
    struct timespec ts = {0, 100 * 1000 * 1000};
    for (int waited = 0; waited < READY_TIMEOUT_MS; waited += 100) {
        /* our own child: its command line is briefly empty during
         * exec, so ask the kernel whether it ended */
        if (waitpid((pid_t)n->pid, NULL, WNOHANG) != 0)
            return tr_fail(eb, TR_ERR_IO, "%s exited; see %s/logs/%s.log",
                           n->name, c->dir, n->name);
        long status = 0;
        char *body = NULL;
        cl_get(c->a, url, c->ca, NULL, 2, &status, &body, NULL);
        if (status == 200)
            return TR_OK;
        nanosleep(&ts, NULL);
    }
    return tr_fail(eb, TR_ERR_IO, "%s not ready after %d s; see %s/logs/%s.log",
                   n->name, READY_TIMEOUT_MS / 1000, c->dir, n->name);
}

static tr_err start_primary(struct cl_ctx *c, int i, struct tr_errbuf *eb)
{
    char name[16], ip[32];
    snprintf(name, sizeof(name), "p%d", i);
    snprintf(ip, sizeof(ip), "127.0.1.%d", i);
    char *data = cl_path(c, "%s", name);
    int port = 0;
    tr_err e = cl_make_dir(data, 0700, eb);
    if (e == TR_OK)
        e = node_certs(c, name, ip, eb);
    if (e == TR_OK && !c->has_kek)
        e = cl_copy_file(c, cl_path(c, "%s", "kek"),
                         arena_printf(c->a, "%s/kek", data), 0600, eb);
    if (e == TR_OK && !c->has_blob &&
        symlink(cl_path(c, "%s", "blobs"),
                arena_printf(c->a, "%s/blobs", data)) != 0 &&
        errno != EEXIST)
        e = tr_fail(eb, TR_ERR_IO, "cannot link %s/blobs: %s", data,
                    strerror(errno));
    if (e == TR_OK)
        e = cl_free_port(ip, &port, eb);
    if (e != TR_OK)
        return e;
    char *argv[32];
    int k = 0;
    argv[k++] = (char *)c->terraced;
    argv[k++] = "--role";
    argv[k++] = "primary";
    argv[k++] = "--data-dir";
    argv[k++] = data;
    argv[k++] = "--listen";
    argv[k++] = arena_printf(c->a, "%s:%d", ip, port);
    argv[k++] = "--external-url";
    argv[k++] = c->url;
    argv[k++] = "--tls-cert";
    argv[k++] = arena_printf(c->a, "%s/tls/server.pem", data);
    argv[k++] = "--tls-key";
    argv[k++] = arena_printf(c->a, "%s/tls/server-key.pem", data);
    argv[k++] = "--executors";
    argv[k++] = arena_printf(c->a, "%d", c->o.executors);
    /* every connection comes through HAProxy, from one address */
    argv[k++] = "--conn-per-ip";
    argv[k++] = "0";
    if (c->has_kek) {
        argv[k++] = "--kek-file";
        argv[k++] = cl_path(c, "%s", "kek");
    }
    if (c->has_blob) {
        argv[k++] = "--blob-url";
        argv[k++] = arena_printf(c->a, "file://%s/blobs", c->dir);
    }
    argv[k++] = "--node-name";
    argv[k++] = arena_printf(c->a, "primary-%d", i);
    if (c->tofu != NULL) {
        argv[k++] = "--tofu-bin";
        argv[k++] = (char *)c->tofu;
    }
    argv[k] = NULL;
    char *env[] = {arena_printf(c->a, "TERRACE_DATABASE_URL=%s", c->conninfo),
                   NULL};
    pid_t pid;
    e = cl_spawn(cl_path(c, "logs/%s.log", name), argv, env, false, &pid, eb);
    if (e == TR_OK)
        e = cl_add_node(c, name, pid, "primary",
                        arena_printf(c->a, "https://%s:%d", ip, port), eb);
    return e;
}

tr_err cl_start_secondary(struct cl_ctx *c, int i, struct tr_errbuf *eb)
{
    char name[16], ip[32];
    snprintf(name, sizeof(name), "s%d", i);
    snprintf(ip, sizeof(ip), "127.0.2.%d", i);
    char *data = cl_path(c, "%s", name);
    int port = 0;
    tr_err e = cl_make_dir(data, 0700, eb);
    if (e == TR_OK)
        cl_tools_share(c, data);
    if (e == TR_OK)
        e = node_certs(c, name, ip, eb);
    if (e == TR_OK)
        e = cl_free_port(ip, &port, eb);
    if (e != TR_OK)
        return e;
    char *argv[24];
    int k = 0;
    argv[k++] = (char *)c->terraced;
    argv[k++] = "--role";
    argv[k++] = "secondary";
    argv[k++] = "--join-url";
    argv[k++] = c->url;
    argv[k++] = "--data-dir";
    argv[k++] = data;
    argv[k++] = "--ca-file";
    argv[k++] = c->ca;
    argv[k++] = "--listen";
    argv[k++] = arena_printf(c->a, "%s:%d", ip, port);
    argv[k++] = "--tls-cert";
    argv[k++] = arena_printf(c->a, "%s/tls/server.pem", data);
    argv[k++] = "--tls-key";
    argv[k++] = arena_printf(c->a, "%s/tls/server-key.pem", data);
    argv[k++] = "--node-name";
    argv[k++] = arena_printf(c->a, "secondary-%d", i);
    if (c->o.capacity > 0) {
        argv[k++] = "--capacity";
        argv[k++] = arena_printf(c->a, "%d", c->o.capacity);
    }
    argv[k] = NULL;
    /* a secondary refuses data settings, even from the environment */
    char *env[] = {arena_printf(c->a, "TERRACE_JOIN_TOKEN=%s", c->join_token),
                   "TERRACE_DATABASE_URL",
                   "TERRACE_DB_POOL",
                   "TERRACE_BLOB_URL",
                   "TERRACE_KEK_FILE",
                   NULL};
    pid_t pid;
    e = cl_spawn(cl_path(c, "logs/%s.log", name), argv, env, false, &pid, eb);
    if (e == TR_OK)
        e = cl_add_node(c, name, pid, "secondary",
                        arena_printf(c->a, "https://%s:%d", ip, port), eb);
    return e;
}

/* The join token through the admin API; *missing when the server has
 * no secondaries yet (404). */
tr_err cl_fetch_join_token(struct cl_ctx *c, bool *missing,
                           struct tr_errbuf *eb)
{
    char token[512];
    *missing = false;
    tr_err e = cl_read_line(c, "admin-token", token, sizeof(token), eb);
    long status = 0;
    char *body = NULL;
    if (e == TR_OK)
        e = cl_get(c->a,
                   arena_printf(c->a, "%s/api/v2/admin/join-token", c->url),
                   c->ca, token, 30, &status, &body, eb);
    if (e != TR_OK)
        return e;
    if (status == 404) {
        *missing = true;
        return TR_OK;
    }
    json_t *doc = status == 200 ? json_loads(body, 0, NULL) : NULL;
    const char *t = json_string_value(json_object_get(
        json_object_get(json_object_get(doc, "data"), "attributes"), "token"));
    if (t == NULL || strlen(t) >= sizeof(c->join_token))
        e = tr_fail(eb, TR_ERR_IO,
                    "GET /api/v2/admin/join-token answered %ld without a "
                    "token",
                    status);
    else
        snprintf(c->join_token, sizeof(c->join_token), "%s", t);
    json_decref(doc);
    if (e == TR_OK)
        e = cl_write_file(cl_path(c, "%s", "join-token"), c->join_token,
                          strlen(c->join_token), 0600, eb);
    return e;
}

static tr_err start_lb(struct cl_ctx *c, const char *haproxy,
                       struct tr_errbuf *eb)
{
    const char *prim[LB_MAX_PRIMARIES];
    size_t n = 0;
    for (int i = 0; i < c->nodes.count && n < LB_MAX_PRIMARIES; i++)
        if (strcmp(c->nodes.n[i].role, "primary") == 0)
            prim[n++] = c->nodes.n[i].addr;
    const char *listen = strstr(c->url, "://") + 3;
    struct lb_opts lo = {.listen = listen,
                         .cert = cl_path(c, "%s", "tls/lb.pem"),
                         .ca_file = c->ca,
                         .primaries = prim,
                         .nprimaries = n};
    char *cfg = cl_path(c, "%s", "haproxy.cfg");
    FILE *f = fopen(cfg, "w");
    if (f == NULL)
        return tr_fail(eb, TR_ERR_IO, "cannot write %s: %s", cfg,
                       strerror(errno));
    tr_err e = lb_haproxy_config(f, &lo, eb);
    if (fclose(f) != 0 && e == TR_OK)
        e = tr_fail(eb, TR_ERR_IO, "cannot write %s", cfg);
    char *check[] = {(char *)haproxy, "-c", "-q", "-f", cfg, NULL};
    if (e == TR_OK)
        e = cl_run(cl_path(c, "%s", "logs/lb.log"), check, false, eb);
    char *argv[] = {(char *)haproxy, "-db", "-f", cfg, NULL};
    pid_t pid;
    if (e == TR_OK)
        e = cl_spawn(cl_path(c, "%s", "logs/lb.log"), argv, NULL, false, &pid,
                     eb);
    if (e == TR_OK)
        e = cl_add_node(c, "lb", pid, "lb", c->url, eb);
    if (e == TR_OK)
        e = cl_wait_ready(c, &c->nodes.n[c->nodes.count - 1], eb);
    return e;
}

static tr_err write_client_files(struct cl_ctx *c, struct tr_errbuf *eb)
{
    char token[512];
    tr_err e = cl_copy_file(c, cl_path(c, "%s", "p1/admin-token"),
                            cl_path(c, "%s", "admin-token"), 0600, eb);
    if (e == TR_OK)
        e = cl_read_line(c, "admin-token", token, sizeof(token), eb);
    const char *host = strstr(c->url, "://") + 3;
    char *rc = arena_printf(c->a, "credentials \"%s\" {\n  token = \"%s\"\n}\n",
                            host, token);
    if (e == TR_OK)
        e = cl_write_file(cl_path(c, "%s", "tofu.tfrc"), rc, strlen(rc), 0600,
                          eb);
    char *url = arena_printf(c->a, "%s\n", c->url);
    if (e == TR_OK)
        e = cl_write_file(cl_path(c, "%s", "url"), url, strlen(url), 0644, eb);
    return e;
}

static void print_summary(struct cl_ctx *c, int secondaries)
{
    const char *host = strstr(c->url, "://") + 3;
    printf("\nTerrace cluster is running: %d primaries, %d secondaries, "
           "HAProxy in front.\n\n"
           "  URL:          %s\n"
           "  Admin token:  %s/admin-token (user \"admin\")\n"
           "  CA cert:      %s\n"
           "  Nodes:        %s/nodes (logs in %s/logs)\n\n"
           "Point tofu at it:\n\n"
           "  export TF_CLI_CONFIG_FILE=%s/tofu.tfrc\n"
           "  export SSL_CERT_FILE=%s\n\n"
           "and put this in your configuration:\n\n"
           "  terraform {\n"
           "    cloud {\n"
           "      hostname     = \"%s\"\n"
           "      organization = \"ORG\"\n"
           "      workspaces { name = \"my-workspace\" }\n"
           "    }\n"
           "  }\n\n"
           "Stop it with: terrace cluster down --dir %s\n\n",
           c->o.primaries, secondaries, c->url, c->dir, c->ca, c->dir, c->dir,
           c->dir, c->ca, host, c->dir);
    fflush(stdout);
}

static bool any_alive(struct cl_ctx *c)
{
    for (int i = 0; i < c->nodes.count; i++)
        if (cl_alive(c->nodes.n[i].pid, c->dir))
            return true;
    return false;
}

/* Stops every process: secondaries, the load balancer and primaries
 * with SIGTERM (SIGKILL after STOP_TIMEOUT_MS), then PostgreSQL.  True
 * when nothing is left running. */
static tr_err find_tools(struct cl_ctx *c, const char **haproxy,
                         struct tr_errbuf *eb)
{
    const char *self = NULL;
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    if (n > 0) {
        exe[n] = '\0';
        *strrchr(exe, '/') = '\0';
        self = arena_printf(c->a, "%s/terraced", exe);
    }
    c->terraced =
        cl_which(c->a, c->o.terraced                     ? c->o.terraced
                       : self && access(self, X_OK) == 0 ? self
                                                         : "terraced");
    if (c->terraced == NULL)
        return tr_fail(eb, TR_ERR_CONFIG,
                       "terraced not found (pass --terraced PATH)");
    *haproxy = cl_which(c->a, c->o.haproxy ? c->o.haproxy : "haproxy");
    if (*haproxy == NULL)
        return tr_fail(eb, TR_ERR_CONFIG,
                       "haproxy not found: install it (apt-get install "
                       "haproxy) or pass --haproxy PATH");
    c->tofu = executor_find_tofu(c->a, c->o.tofu_bin ? c->o.tofu_bin : "");
    if (c->tofu == NULL && c->o.tofu_bin != NULL)
        return tr_fail(eb, TR_ERR_CONFIG, "no tofu binary at %s",
                       c->o.tofu_bin);
    if (c->tofu == NULL)
        fprintf(stderr, "terrace cluster: tofu not found (PATH, "
                        "~/.cache/terrace); runs need a tool version: pass "
                        "--tofu-bin or use terrace admin tool-versions "
                        "add\n");
    return TR_OK;
}

static tr_err up(struct cl_ctx *c, int *secondaries, struct tr_errbuf *eb)
{
    const char *haproxy = NULL;
    tr_err e = find_tools(c, &haproxy, eb);
    if (e == TR_OK)
        e = prepare_dir(c, eb);
    if (e == TR_OK)
        e = probe_terraced(c, eb);
    if (c->o.executors < 0)
        c->o.executors = c->o.secondaries > 0 && c->has_secondary ? 0 : 2;
    int lb_port = 0;
    if (e == TR_OK && c->o.listen == NULL)
        e = cl_free_port("127.0.0.1", &lb_port, eb);
    if (e != TR_OK)
        return e;
    if (c->o.listen != NULL)
        snprintf(c->url, sizeof(c->url), "https://%s", c->o.listen);
    else
        snprintf(c->url, sizeof(c->url), "https://127.0.0.1:%d", lb_port);
    if (c->o.database_url != NULL) {
        c->conninfo = c->o.database_url;
    } else {
        long pid = 0;
        char *ci = NULL;
        e = cl_pg_start(c->a, c->dir, &ci, &pid, eb);
        c->conninfo = ci;
        if (e == TR_OK)
            e = cl_add_node(c, "postgres", pid, "postgres",
                            arena_printf(c->a, "unix:%s/pg", c->dir), eb);
    }
    char *conf = arena_printf(c->a, "terraced %s\nurl %s\ncapacity %d\n",
                              c->terraced, c->url, c->o.capacity);
    if (e == TR_OK)
        e = cl_write_file(cl_path(c, "%s", "cluster.conf"), conf, strlen(conf),
                          0644, eb);
    if (e == TR_OK)
        e = start_primary(c, 1, eb);
    if (e == TR_OK)
        e = cl_wait_ready(c, &c->nodes.n[c->nodes.count - 1], eb);
    int first = c->nodes.count;
    for (int i = 2; i <= c->o.primaries && e == TR_OK; i++)
        e = start_primary(c, i, eb);
    for (int i = first; i < c->nodes.count && e == TR_OK; i++)
        e = cl_wait_ready(c, &c->nodes.n[i], eb);
    if (e == TR_OK)
        e = write_client_files(c, eb);
    if (e == TR_OK)
        e = start_lb(c, haproxy, eb);
    bool missing = false;
    if (e == TR_OK && c->o.secondaries > 0)
        e = cl_fetch_join_token(c, &missing, eb);
    if (e == TR_OK && missing)
        fprintf(stderr,
                "terrace cluster: this server has no join token (GET "
                "/api/v2/admin/join-token answered 404); no secondaries "
                "started\n");
    int firsts = c->nodes.count;
    for (int i = 1; i <= c->o.secondaries && !missing && e == TR_OK; i++) {
        e = cl_start_secondary(c, i, eb);
        if (e == TR_OK)
            (*secondaries)++;
        /* the first fetches the tool; the others share its copy */
        if (e == TR_OK && i == 1 && c->tofu != NULL && c->o.secondaries > 1) {
            struct tr_errbuf teb = {{0}};
            tr_err te = cl_tools_from_first(c, &c->nodes.n[firsts], &teb);
            if (te != TR_OK)
                fprintf(stderr,
                        "terrace cluster: %s; each secondary fetches its "
                        "own copy\n",
                        tr_errbuf_msg(&teb, te));
        }
    }
    /* ready: joined, and a primary reachable */
    for (int i = firsts; i < c->nodes.count && e == TR_OK; i++)
        e = cl_wait_ready(c, &c->nodes.n[i], eb);
    return e;
}

int cl_cmd_up(struct cl_ctx *c)
{
    /* a development cluster: nothing of it listens beyond this host */
    const char *l = c->o.listen;
    if (l != NULL && (strncmp(l, "127.", 4) != 0 || strchr(l, ':') == NULL ||
                      strlen(l) > 64)) {
        fprintf(stderr, "terrace cluster: --listen must be a loopback "
                        "address and port, 127.x.x.x:PORT\n");
        return 2;
    }
    if (mkdir(c->o.dir, 0711) != 0 && errno != EEXIST) {
        fprintf(stderr, "terrace cluster: cannot create %s: %s\n", c->o.dir,
                strerror(errno));
        return 1;
    }
    chmod(c->o.dir, 0711); /* the postgres user reaches pg/ */
    if (realpath(c->o.dir, c->dir) == NULL)
        return 1;
    struct tr_errbuf eb = {{0}};
    if (cl_nodes_read(c->dir, &c->nodes, NULL) == TR_OK && any_alive(c)) {
        fprintf(stderr,
                "terrace cluster: a cluster already runs in %s; stop it "
                "with terrace cluster down --dir %s\n",
                c->dir, c->dir);
        return 1;
    }
    c->nodes.count = 0;
    int secondaries = 0;
    tr_err e = up(c, &secondaries, &eb);
    if (e != TR_OK) {
        fprintf(stderr, "terrace cluster: %s\nstopping what was started\n",
                tr_errbuf_msg(&eb, e));
        cl_stop_all(c);
        return 1;
    }
    if (secondaries == 0 && c->o.executors == 0)
        fprintf(stderr, "terrace cluster: no secondary and no executor on "
                        "the primaries: runs will stay queued\n");
    print_summary(c, secondaries);
    return 0;
}

/* Loads D/nodes and the settings `up` recorded. */
