/*
 * cluster.c - `terrace cluster`: a throwaway cluster on loopback for
 * development, tests and benchmarks.
 *
 *   terrace cluster up --dir D [--primaries 3] [--secondaries N] ...
 *   terrace cluster status|down --dir D
 *   terrace cluster scale --dir D --secondaries N
 *   terrace cluster kill --dir D NODE [--signal KILL|TERM]
 *   terrace cluster drain --dir D NODE
 *
 * `up` lays D out as follows, then returns with everything running:
 *   pg/            PostgreSQL (unix socket only), unless --database-url
 *   kek, blobs/    the key file and blob directory every primary shares
 *   tls/           the cluster CA, the load balancer's certificate;
 *                  pN/tls/ holds primary N's certificate from that CA
 *   p1.. s1..      the nodes' data directories
 *   nodes          "name pid role address", one line per process
 *   url, admin-token, tofu.tfrc, haproxy.cfg, join-token, cluster.conf
 *   logs/          one log per process
 * Primaries listen on 127.0.1.N, secondaries on 127.0.2.N, HAProxy on
 * 127.0.0.1; ports are picked free.  Secrets (the database URL, the join
 * token) reach the nodes through the environment, not argv, so they do
 * not show in ps.
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

#include "cli/cli.h"
#include "cli/cluster_int.h"
#include "cli/lb.h"
#include "core/file.h"
#include "core/util.h"
#include "crypto/keys.h"
#include "crypto/tls_cert.h"
#include "executor/executor.h"

#define READY_TIMEOUT_MS 120000 /* a primary's first start migrates */
#define STOP_TIMEOUT_MS 20000   /* SIGTERM, then SIGKILL */
#define MAX_PRIMARIES 9
#define MAX_SECONDARIES 200

struct opts {
    const char *dir, *database_url, *terraced, *tofu_bin, *haproxy;
    const char *node, *signal, *listen;
    int primaries, secondaries, capacity, executors;
};

struct ctx {
    struct arena *a;
    struct opts o;
    char dir[PATH_MAX];
    struct cl_nodes nodes;
    const char *terraced, *tofu, *conninfo;
    char url[128]; /* the load balancer */
    char ca[PATH_MAX + 16];
    bool has_kek, has_blob, has_secondary;
    char join_token[512];
};

static void usage(void)
{
    fprintf(stderr,
            "usage: terrace cluster <command> --dir D [options]\n\n"
            "commands:\n"
            "  up [--primaries 3] [--secondaries 0] [--database-url U]\n"
            "     [--terraced PATH] [--tofu-bin PATH] [--haproxy PATH]\n"
            "     [--capacity N] [--primary-executors N] "
            "[--listen ADDR:PORT]\n"
            "        start PostgreSQL (unless --database-url), the "
            "primaries,\n"
            "        the secondaries and HAProxy in front; return once "
            "ready.\n"
            "        Primaries run plans themselves (2 executors) when no\n"
            "        secondary runs, else none\n"
            "  status          processes, and the node registry when the "
            "server has one\n"
            "  scale --secondaries N\n"
            "                  start or drain secondaries to have N\n"
            "  kill NODE [--signal KILL|TERM]   signal a node (default "
            "KILL)\n"
            "  drain NODE      SIGTERM a secondary: it finishes its jobs "
            "and leaves\n"
            "  down            stop every process of the cluster\n");
}

static int parse_int(const char *flag, const char *v, int lo, int hi, int *out)
{
    int64_t n = 0;
    if (util_parse_i64(v, &n) != TR_OK || n < lo || n > hi) {
        fprintf(stderr, "terrace cluster: %s must be %d..%d\n", flag, lo, hi);
        return 2;
    }
    *out = (int)n;
    return 0;
}

static int parse_args(int argc, char **argv, struct opts *o)
{
    struct {
        const char *flag;
        const char **s;
        int *i, lo, hi;
    } t[] = {
        {"--dir", &o->dir, NULL, 0, 0},
        {"--database-url", &o->database_url, NULL, 0, 0},
        {"--terraced", &o->terraced, NULL, 0, 0},
        {"--tofu-bin", &o->tofu_bin, NULL, 0, 0},
        {"--haproxy", &o->haproxy, NULL, 0, 0},
        {"--signal", &o->signal, NULL, 0, 0},
        {"--listen", &o->listen, NULL, 0, 0},
        {"--primaries", NULL, &o->primaries, 1, MAX_PRIMARIES},
        {"--secondaries", NULL, &o->secondaries, 0, MAX_SECONDARIES},
        {"--capacity", NULL, &o->capacity, 1, 64},
        {"--primary-executors", NULL, &o->executors, 0, 64},
    };
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage();
            return -1;
        }
        if (argv[i][0] != '-' && o->node == NULL) {
            o->node = argv[i];
            continue;
        }
        size_t k = 0;
        while (k < sizeof(t) / sizeof(t[0]) && strcmp(argv[i], t[k].flag))
            k++;
        if (k == sizeof(t) / sizeof(t[0]) || i + 1 >= argc) {
            fprintf(stderr, "terrace cluster: %s %s\n", argv[i],
                    k == sizeof(t) / sizeof(t[0]) ? "is not an option"
                                                  : "needs a value");
            return 2;
        }
        const char *v = argv[++i];
        if (t[k].s != NULL)
            *t[k].s = v;
        else if (parse_int(t[k].flag, v, t[k].lo, t[k].hi, t[k].i) != 0)
            return 2;
    }
    if (o->dir == NULL) {
        fprintf(stderr, "terrace cluster: --dir D is required\n");
        return 2;
    }
    return 0;
}

static char *path(struct ctx *c, const char *fmt, const char *arg)
{
    char *rel = arena_printf(c->a, fmt, arg);
    return arena_printf(c->a, "%s/%s", c->dir, rel);
}

static tr_err copy_file(struct ctx *c, const char *from, const char *to,
                        int mode, struct tr_errbuf *eb)
{
    char *data = NULL;
    size_t len = 0;
    tr_err e = file_read_all(c->a, from, 1 << 20, &data, &len, eb);
    if (e == TR_OK)
        e = cl_write_file(to, data, len, mode, eb);
    return e;
}

static tr_err make_dir(const char *p, int mode, struct tr_errbuf *eb)
{
    if (mkdir(p, (mode_t)mode) != 0 && errno != EEXIST)
        return tr_fail(eb, TR_ERR_IO, "cannot create %s: %s", p,
                       strerror(errno));
    return TR_OK;
}

/* Reads "key value" from DIR/cluster.conf; NULL when absent. */
static const char *conf_get(struct ctx *c, const char *key)
{
    char *data = NULL;
    size_t len = 0;
    if (file_read_all(c->a, path(c, "%s", "cluster.conf"), 1 << 16, &data, &len,
                      NULL) != TR_OK)
        return NULL;
    size_t klen = strlen(key);
    for (char *save = NULL, *l = strtok_r(data, "\n", &save); l != NULL;
         l = strtok_r(NULL, "\n", &save))
        if (strncmp(l, key, klen) == 0 && l[klen] == ' ')
            return l + klen + 1;
    return NULL;
}

static tr_err read_line(struct ctx *c, const char *file, char *out, size_t n,
                        struct tr_errbuf *eb)
{
    char *data = NULL;
    size_t len = 0;
    tr_err e = file_read_all(c->a, path(c, "%s", file), n - 1, &data, &len, eb);
    if (e != TR_OK)
        return e;
    data[strcspn(data, "\r\n")] = '\0';
    snprintf(out, n, "%s", data);
    return TR_OK;
}

/* ---- certificates and keys ---- */

static tr_err node_certs(struct ctx *c, const char *name, const char *ip,
                         struct tr_errbuf *eb)
{
    char *tls = arena_printf(c->a, "%s/%s/tls", c->dir, name);
    tr_err e = make_dir(tls, 0700, eb);
    const char *files[] = {"ca.pem", "ca-key.pem"};
    for (int i = 0; i < 2 && e == TR_OK; i++)
        e = copy_file(c, path(c, "tls/%s", files[i]),
                      arena_printf(c->a, "%s/%s", tls, files[i]), 0600, eb);
    const char *names[] = {ip};
    if (e == TR_OK)
        e = tls_ensure_certs(tls, names, 1, eb);
    /* the CA's key stays in D/tls only */
    unlink(arena_printf(c->a, "%s/ca-key.pem", tls));
    return e;
}

static tr_err prepare_dir(struct ctx *c, struct tr_errbuf *eb)
{
    tr_err e = TR_OK;
    const char *dirs[] = {"logs", "blobs", "tls"};
    for (int i = 0; i < 3 && e == TR_OK; i++)
        e = make_dir(path(c, "%s", dirs[i]), 0755, eb);
    struct keyring *k = NULL;
    if (e == TR_OK)
        e = keys_open_file(path(c, "%s", "kek"), &k, eb);
    keys_close(k);
    const char *names[] = {"127.0.0.1"};
    if (e == TR_OK)
        e = tls_ensure_certs(path(c, "%s", "tls"), names, 1, eb);
    char *cert = NULL, *key = NULL;
    size_t clen = 0, klen = 0;
    if (e == TR_OK)
        e = file_read_all(c->a, path(c, "%s", "tls/server.pem"), 1 << 16, &cert,
                          &clen, eb);
    if (e == TR_OK)
        e = file_read_all(c->a, path(c, "%s", "tls/server-key.pem"), 1 << 16,
                          &key, &klen, eb);
    if (e == TR_OK) {
        char *pem = arena_printf(c->a, "%s%s", cert, key);
        e = cl_write_file(path(c, "%s", "tls/lb.pem"), pem, strlen(pem), 0600,
                          eb);
    }
    snprintf(c->ca, sizeof(c->ca), "%s/tls/ca.pem", c->dir);
    return e;
}

/* Which of the agreed cluster settings this terraced knows (older
 * builds: each primary gets a copy of the key and a link to the blobs). */
static tr_err probe_terraced(struct ctx *c, struct tr_errbuf *eb)
{
    char *log = path(c, "%s", "logs/terraced-help.txt");
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

static tr_err add_node(struct ctx *c, const char *name, long pid,
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

static tr_err wait_ready(struct ctx *c, const struct cl_node *n,
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

static tr_err start_primary(struct ctx *c, int i, struct tr_errbuf *eb)
{
    char name[16], ip[32];
    snprintf(name, sizeof(name), "p%d", i);
    snprintf(ip, sizeof(ip), "127.0.1.%d", i);
    char *data = path(c, "%s", name);
    int port = 0;
    tr_err e = make_dir(data, 0700, eb);
    if (e == TR_OK)
        e = node_certs(c, name, ip, eb);
    if (e == TR_OK && !c->has_kek)
        e = copy_file(c, path(c, "%s", "kek"),
                      arena_printf(c->a, "%s/kek", data), 0600, eb);
    if (e == TR_OK && !c->has_blob &&
        symlink(path(c, "%s", "blobs"), arena_printf(c->a, "%s/blobs", data)) !=
            0 &&
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
        argv[k++] = path(c, "%s", "kek");
    }
    if (c->has_blob) {
        argv[k++] = "--blob-url";
        argv[k++] = arena_printf(c->a, "file://%s/blobs", c->dir);
    }
    if (c->tofu != NULL) {
        argv[k++] = "--tofu-bin";
        argv[k++] = (char *)c->tofu;
    }
    argv[k] = NULL;
    char *env[] = {arena_printf(c->a, "TERRACE_DATABASE_URL=%s", c->conninfo),
                   NULL};
    pid_t pid;
    e = cl_spawn(path(c, "logs/%s.log", name), argv, env, false, &pid, eb);
    if (e == TR_OK)
        e = add_node(c, name, pid, "primary",
                     arena_printf(c->a, "https://%s:%d", ip, port), eb);
    return e;
}

static tr_err start_secondary(struct ctx *c, int i, struct tr_errbuf *eb)
{
    char name[16], ip[32];
    snprintf(name, sizeof(name), "s%d", i);
    snprintf(ip, sizeof(ip), "127.0.2.%d", i);
    char *data = path(c, "%s", name);
    int port = 0;
    tr_err e = make_dir(data, 0700, eb);
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
    e = cl_spawn(path(c, "logs/%s.log", name), argv, env, false, &pid, eb);
    if (e == TR_OK)
        e = add_node(c, name, pid, "secondary",
                     arena_printf(c->a, "https://%s:%d", ip, port), eb);
    return e;
}

/* The join token through the admin API; *missing when the server has
 * no secondaries yet (404). */
static tr_err fetch_join_token(struct ctx *c, bool *missing,
                               struct tr_errbuf *eb)
{
    char token[512];
    *missing = false;
    tr_err e = read_line(c, "admin-token", token, sizeof(token), eb);
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
        e = cl_write_file(path(c, "%s", "join-token"), c->join_token,
                          strlen(c->join_token), 0600, eb);
    return e;
}

static tr_err start_lb(struct ctx *c, const char *haproxy, struct tr_errbuf *eb)
{
    const char *prim[LB_MAX_PRIMARIES];
    size_t n = 0;
    for (int i = 0; i < c->nodes.count && n < LB_MAX_PRIMARIES; i++)
        if (strcmp(c->nodes.n[i].role, "primary") == 0)
            prim[n++] = c->nodes.n[i].addr;
    const char *listen = strstr(c->url, "://") + 3;
    struct lb_opts lo = {.listen = listen,
                         .cert = path(c, "%s", "tls/lb.pem"),
                         .ca_file = c->ca,
                         .primaries = prim,
                         .nprimaries = n};
    char *cfg = path(c, "%s", "haproxy.cfg");
    FILE *f = fopen(cfg, "w");
    if (f == NULL)
        return tr_fail(eb, TR_ERR_IO, "cannot write %s: %s", cfg,
                       strerror(errno));
    tr_err e = lb_haproxy_config(f, &lo, eb);
    if (fclose(f) != 0 && e == TR_OK)
        e = tr_fail(eb, TR_ERR_IO, "cannot write %s", cfg);
    char *check[] = {(char *)haproxy, "-c", "-q", "-f", cfg, NULL};
    if (e == TR_OK)
        e = cl_run(path(c, "%s", "logs/lb.log"), check, false, eb);
    char *argv[] = {(char *)haproxy, "-db", "-f", cfg, NULL};
    pid_t pid;
    if (e == TR_OK)
        e = cl_spawn(path(c, "%s", "logs/lb.log"), argv, NULL, false, &pid, eb);
    if (e == TR_OK)
        e = add_node(c, "lb", pid, "lb", c->url, eb);
    if (e == TR_OK)
        e = wait_ready(c, &c->nodes.n[c->nodes.count - 1], eb);
    return e;
}

static tr_err write_client_files(struct ctx *c, struct tr_errbuf *eb)
{
    char token[512];
    tr_err e = copy_file(c, path(c, "%s", "p1/admin-token"),
                         path(c, "%s", "admin-token"), 0600, eb);
    if (e == TR_OK)
        e = read_line(c, "admin-token", token, sizeof(token), eb);
    const char *host = strstr(c->url, "://") + 3;
    char *rc = arena_printf(c->a, "credentials \"%s\" {\n  token = \"%s\"\n}\n",
                            host, token);
    if (e == TR_OK)
        e = cl_write_file(path(c, "%s", "tofu.tfrc"), rc, strlen(rc), 0600, eb);
    char *url = arena_printf(c->a, "%s\n", c->url);
    if (e == TR_OK)
        e = cl_write_file(path(c, "%s", "url"), url, strlen(url), 0644, eb);
    return e;
}

static void print_summary(struct ctx *c, int secondaries)
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

static bool any_alive(struct ctx *c)
{
    for (int i = 0; i < c->nodes.count; i++)
        if (cl_alive(c->nodes.n[i].pid, c->dir))
            return true;
    return false;
}

/* Stops every process: the load balancer, secondaries and primaries
 * with SIGTERM (SIGKILL after STOP_TIMEOUT_MS), then PostgreSQL.  True
 * when nothing is left running. */
static bool stop_all(struct ctx *c)
{
    /* phase of each role: clients' door first, the database last */
    const char *phase[][2] = {
        {"lb", "lb"}, {"secondary", "draining"}, {"primary", "primary"}};
    for (int r = 0; r < 3; r++) {
        for (int i = 0; i < c->nodes.count; i++) {
            const char *role = c->nodes.n[i].role;
            if (strcmp(role, phase[r][0]) == 0 ||
                strcmp(role, phase[r][1]) == 0)
                cl_signal(c->nodes.n[i].pid, c->dir, SIGTERM);
        }
        int64_t deadline = util_now_ms() + STOP_TIMEOUT_MS;
        for (int i = 0; i < c->nodes.count; i++) {
            struct cl_node *n = &c->nodes.n[i];
            if (strcmp(n->role, phase[r][0]) != 0 &&
                strcmp(n->role, phase[r][1]) != 0)
                continue;
            int64_t left = deadline - util_now_ms();
            if (!cl_wait_gone(n->pid, c->dir, left > 0 ? (int)left : 0)) {
                fprintf(stderr, "%s did not stop; killing it\n", n->name);
                cl_signal(n->pid, c->dir, SIGKILL);
                cl_wait_gone(n->pid, c->dir, 5000);
            }
        }
    }
    struct tr_errbuf eb = {{0}};
    tr_err e = cl_pg_stop(c->dir, &eb);
    if (e != TR_OK)
        fprintf(stderr, "terrace cluster: %s\n", tr_errbuf_msg(&eb, e));
    bool ok = true;
    for (int i = 0; i < c->nodes.count; i++) {
        struct cl_node *n = &c->nodes.n[i];
        if (!cl_wait_gone(n->pid, c->dir, 5000)) {
            fprintf(stderr, "terrace cluster: %s (pid %ld) still runs\n",
                    n->name, n->pid);
            ok = false;
        }
    }
    return ok;
}

static tr_err find_tools(struct ctx *c, const char **haproxy,
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

static tr_err up(struct ctx *c, int *secondaries, struct tr_errbuf *eb)
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
            e = add_node(c, "postgres", pid, "postgres",
                         arena_printf(c->a, "unix:%s/pg", c->dir), eb);
    }
    char *conf = arena_printf(c->a, "terraced %s\nurl %s\ncapacity %d\n",
                              c->terraced, c->url, c->o.capacity);
    if (e == TR_OK)
        e = cl_write_file(path(c, "%s", "cluster.conf"), conf, strlen(conf),
                          0644, eb);
    if (e == TR_OK)
        e = start_primary(c, 1, eb);
    if (e == TR_OK)
        e = wait_ready(c, &c->nodes.n[c->nodes.count - 1], eb);
    int first = c->nodes.count;
    for (int i = 2; i <= c->o.primaries && e == TR_OK; i++)
        e = start_primary(c, i, eb);
    for (int i = first; i < c->nodes.count && e == TR_OK; i++)
        e = wait_ready(c, &c->nodes.n[i], eb);
    if (e == TR_OK)
        e = write_client_files(c, eb);
    if (e == TR_OK)
        e = start_lb(c, haproxy, eb);
    bool missing = false;
    if (e == TR_OK && c->o.secondaries > 0)
        e = fetch_join_token(c, &missing, eb);
    if (e == TR_OK && missing)
        fprintf(stderr,
                "terrace cluster: this server has no join token (GET "
                "/api/v2/admin/join-token answered 404); no secondaries "
                "started\n");
    int firsts = c->nodes.count;
    for (int i = 1; i <= c->o.secondaries && !missing && e == TR_OK; i++) {
        e = start_secondary(c, i, eb);
        if (e == TR_OK)
            (*secondaries)++;
    }
    /* ready: joined, and a primary reachable */
    for (int i = firsts; i < c->nodes.count && e == TR_OK; i++)
        e = wait_ready(c, &c->nodes.n[i], eb);
    return e;
}

static int cmd_up(struct ctx *c)
{
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
        stop_all(c);
        return 1;
    }
    if (secondaries == 0 && c->o.executors == 0)
        fprintf(stderr, "terrace cluster: no secondary and no executor on "
                        "the primaries: runs will stay queued\n");
    print_summary(c, secondaries);
    return 0;
}

/* Loads D/nodes and the settings `up` recorded. */
static int load(struct ctx *c)
{
    struct tr_errbuf eb = {{0}};
    tr_err e = TR_OK;
    if (realpath(c->o.dir, c->dir) == NULL)
        e = tr_fail(&eb, TR_ERR_NOT_FOUND, "no cluster in %s (%s)", c->o.dir,
                    strerror(errno));
    if (e == TR_OK)
        e = cl_nodes_read(c->dir, &c->nodes, &eb);
    const char *url = e == TR_OK ? conf_get(c, "url") : NULL;
    if (e == TR_OK && url == NULL)
        e = tr_fail(&eb, TR_ERR_NOT_FOUND, "no cluster.conf in %s", c->dir);
    if (e != TR_OK) {
        fprintf(stderr, "terrace cluster: %s\n", tr_errbuf_msg(&eb, e));
        return 1;
    }
    snprintf(c->url, sizeof(c->url), "%s", url);
    snprintf(c->ca, sizeof(c->ca), "%s/tls/ca.pem", c->dir);
    c->terraced = conf_get(c, "terraced");
    const char *cap = conf_get(c, "capacity");
    if (c->o.capacity == 0 && cap != NULL)
        c->o.capacity = atoi(cap);
    return 0;
}

static void print_registry(struct ctx *c)
{
    char token[512];
    long status = 0;
    char *body = NULL;
    struct tr_errbuf eb = {{0}};
    tr_err e = read_line(c, "admin-token", token, sizeof(token), &eb);
    if (e == TR_OK)
        e = cl_get(c->a, arena_printf(c->a, "%s/api/v2/admin/nodes", c->url),
                   c->ca, token, 10, &status, &body, &eb);
    if (e != TR_OK) {
        printf("\nnode registry: %s\n", tr_errbuf_msg(&eb, e));
        return;
    }
    if (status != 200) {
        printf("\nnode registry: GET /api/v2/admin/nodes answered %ld%s\n",
               status, status == 404 ? " (not in this build)" : "");
        return;
    }
    json_t *doc = json_loads(body, 0, NULL);
    json_t *data = json_object_get(doc, "data");
    printf("\nnode registry:\n%-22s %-10s %-9s %-6s %-4s %-4s %-26s %s\n", "ID",
           "ROLE", "STATE", "LEADER", "CAP", "JOBS", "LAST HEARTBEAT",
           "ADDRESS");
    size_t i;
    json_t *it;
    json_array_foreach(data, i, it)
    {
        json_t *at = json_object_get(it, "attributes");
        const char *hb =
            json_string_value(json_object_get(at, "last-heartbeat-at"));
        const char *ad = json_string_value(json_object_get(at, "address"));
        printf("%-22s %-10s %-9s %-6s %-4lld %-4lld %-26s %s\n",
               json_string_value(json_object_get(it, "id")),
               json_string_value(json_object_get(at, "role")),
               json_string_value(json_object_get(at, "state")),
               json_is_true(json_object_get(at, "leader")) ? "yes" : "no",
               json_integer_value(json_object_get(at, "capacity")),
               json_integer_value(json_object_get(at, "running-jobs")),
               hb ? hb : "-", ad ? ad : "-");
    }
    json_decref(doc);
}

static int cmd_status(struct ctx *c)
{
    if (load(c) != 0)
        return 1;
    int down = 0;
    printf("%-10s %-8s %-10s %-5s %s\n", "NAME", "PID", "ROLE", "STATE",
           "ADDRESS");
    for (int i = 0; i < c->nodes.count; i++) {
        struct cl_node *n = &c->nodes.n[i];
        bool up = cl_alive(n->pid, c->dir);
        bool drained = strcmp(n->role, "draining") == 0;
        down += !up && !drained;
        printf("%-10s %-8ld %-10s %-5s %s\n", n->name, n->pid, n->role,
               up        ? "up"
               : drained ? "gone"
                         : "down",
               n->addr);
    }
    print_registry(c);
    return down == 0 ? 0 : 1;
}

static int cmd_scale(struct ctx *c)
{
    if (load(c) != 0)
        return 1;
    if (c->o.secondaries < 0) {
        fprintf(stderr, "terrace cluster: scale needs --secondaries N\n");
        return 2;
    }
    int alive = 0, next = 1;
    for (int i = 0; i < c->nodes.count; i++) {
        struct cl_node *n = &c->nodes.n[i];
        bool sec = strcmp(n->role, "secondary") == 0;
        if (!sec && strcmp(n->role, "draining") != 0)
            continue;
        if (atoi(n->name + 1) >= next)
            next = atoi(n->name + 1) + 1;
        alive += sec && cl_alive(n->pid, c->dir);
    }
    struct tr_errbuf eb = {{0}};
    tr_err e = TR_OK;
    if (alive < c->o.secondaries &&
        read_line(c, "join-token", c->join_token, sizeof(c->join_token),
                  NULL) != TR_OK) {
        bool missing = false;
        e = fetch_join_token(c, &missing, &eb);
        if (e == TR_OK && missing)
            e = tr_fail(&eb, TR_ERR_UNSUPPORTED,
                        "this server has no join token (GET "
                        "/api/v2/admin/join-token answered 404)");
    }
    int first = c->nodes.count;
    for (; alive < c->o.secondaries && e == TR_OK; alive++)
        e = start_secondary(c, next++, &eb);
    for (int i = first; i < c->nodes.count && e == TR_OK; i++)
        e = wait_ready(c, &c->nodes.n[i], &eb);
    /* the newest drain first */
    for (int i = c->nodes.count - 1; i >= 0 && alive > c->o.secondaries; i--) {
        struct cl_node *n = &c->nodes.n[i];
        if (strcmp(n->role, "secondary") == 0 &&
            cl_signal(n->pid, c->dir, SIGTERM)) {
            printf("%s draining\n", n->name);
            snprintf(n->role, sizeof(n->role), "draining");
            alive--;
        }
    }
    if (e == TR_OK)
        e = cl_nodes_write(c->dir, &c->nodes, &eb);
    if (e != TR_OK) {
        fprintf(stderr, "terrace cluster: %s\n", tr_errbuf_msg(&eb, e));
        return 1;
    }
    printf("%d secondaries\n", alive);
    return 0;
}

static int cmd_kill(struct ctx *c, bool drain)
{
    if (load(c) != 0)
        return 1;
    if (c->o.node == NULL) {
        fprintf(stderr, "terrace cluster: name the node (see terrace "
                        "cluster status)\n");
        return 2;
    }
    int sig = SIGKILL;
    const char *s = c->o.signal;
    if (drain || (s != NULL && strcmp(s, "TERM") == 0))
        sig = SIGTERM;
    else if (s != NULL && strcmp(s, "KILL") != 0) {
        fprintf(stderr, "terrace cluster: --signal must be KILL or TERM\n");
        return 2;
    }
    struct cl_node *n = cl_nodes_find(&c->nodes, c->o.node);
    if (n == NULL) {
        fprintf(stderr, "terrace cluster: no node %s in %s/nodes\n", c->o.node,
                c->dir);
        return 2;
    }
    if (drain && strcmp(n->role, "secondary") != 0 &&
        strcmp(n->role, "draining") != 0) {
        fprintf(stderr,
                "terrace cluster: %s is a %s; only secondaries "
                "drain (use kill --signal TERM)\n",
                n->name, n->role);
        return 2;
    }
    if (!cl_signal(n->pid, c->dir, sig)) {
        fprintf(stderr, "terrace cluster: %s (pid %ld) is not running\n",
                n->name, n->pid);
        return 1;
    }
    /* a secondary drains on SIGTERM: scale no longer counts it */
    if (sig == SIGTERM && strcmp(n->role, "secondary") == 0) {
        struct tr_errbuf eb = {{0}};
        snprintf(n->role, sizeof(n->role), "draining");
        drain = true;
        if (cl_nodes_write(c->dir, &c->nodes, &eb) != TR_OK)
            fprintf(stderr, "terrace cluster: %s\n", eb.msg);
    }
    printf("%s (pid %ld): %s\n", n->name, n->pid,
           drain            ? "draining"
           : sig == SIGKILL ? "SIGKILL sent"
                            : "SIGTERM sent");
    return 0;
}

static int cmd_down(struct ctx *c)
{
    if (load(c) != 0)
        return 1;
    bool ok = stop_all(c);
    if (ok)
        printf("cluster in %s stopped; no process left\n", c->dir);
    return ok ? 0 : 1;
}

int cli_cluster(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "--help") == 0 ||
        strcmp(argv[1], "-h") == 0) {
        usage();
        return argc < 2 ? 2 : 0;
    }
    struct ctx c = {.a = arena_new()};
    c.o.primaries = 3;
    c.o.secondaries = -1;
    c.o.executors = -1;
    int rc = parse_args(argc, argv, &c.o);
    const char *cmd = argv[1];
    if (rc == 0 && strcmp(cmd, "up") == 0) {
        if (c.o.secondaries < 0)
            c.o.secondaries = 0;
        rc = cmd_up(&c);
    } else if (rc == 0 && strcmp(cmd, "status") == 0) {
        rc = cmd_status(&c);
    } else if (rc == 0 && strcmp(cmd, "scale") == 0) {
        rc = cmd_scale(&c);
    } else if (rc == 0 && strcmp(cmd, "kill") == 0) {
        rc = cmd_kill(&c, false);
    } else if (rc == 0 && strcmp(cmd, "drain") == 0) {
        rc = cmd_kill(&c, true);
    } else if (rc == 0 && strcmp(cmd, "down") == 0) {
        rc = cmd_down(&c);
    } else if (rc == 0) {
        fprintf(stderr, "terrace cluster: unknown command %s\n", cmd);
        usage();
        rc = 2;
    }
    arena_destroy(c.a);
    return rc < 0 ? 0 : rc;
}
