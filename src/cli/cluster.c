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
#include "core/file.h"
#include "core/util.h"

#define STOP_TIMEOUT_MS 20000 /* SIGTERM, then SIGKILL */
#define MAX_PRIMARIES 9
#define MAX_SECONDARIES 200

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

static int parse_args(int argc, char **argv, struct cl_opts *o)
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

char *cl_path(struct cl_ctx *c, const char *fmt, const char *arg)
{
    char *rel = arena_printf(c->a, fmt, arg);
    return arena_printf(c->a, "%s/%s", c->dir, rel);
}

tr_err cl_copy_file(struct cl_ctx *c, const char *from, const char *to,
                    int mode, struct tr_errbuf *eb)
{
    char *data = NULL;
    size_t len = 0;
    tr_err e = file_read_all(c->a, from, 1 << 20, &data, &len, eb);
    if (e == TR_OK)
        e = cl_write_file(to, data, len, mode, eb);
    return e;
}

tr_err cl_make_dir(const char *p, int mode, struct tr_errbuf *eb)
{
    if (mkdir(p, (mode_t)mode) != 0 && errno != EEXIST)
        return tr_fail(eb, TR_ERR_IO, "cannot create %s: %s", p,
                       strerror(errno));
    return TR_OK;
}

/* Reads "key value" from DIR/cluster.conf; NULL when absent. */
static const char *conf_get(struct cl_ctx *c, const char *key)
{
    char *data = NULL;
    size_t len = 0;
    if (file_read_all(c->a, cl_path(c, "%s", "cluster.conf"), 1 << 16, &data,
                      &len, NULL) != TR_OK)
        return NULL;
    size_t klen = strlen(key);
    for (char *save = NULL, *l = strtok_r(data, "\n", &save); l != NULL;
         l = strtok_r(NULL, "\n", &save))
        if (strncmp(l, key, klen) == 0 && l[klen] == ' ')
            return l + klen + 1;
    return NULL;
}

tr_err cl_read_line(struct cl_ctx *c, const char *file, char *out, size_t n,
                    struct tr_errbuf *eb)
{
    char *data = NULL;
    size_t len = 0;
    tr_err e =
        file_read_all(c->a, cl_path(c, "%s", file), n - 1, &data, &len, eb);
    if (e != TR_OK)
        return e;
    data[strcspn(data, "\r\n")] = '\0';
    snprintf(out, n, "%s", data);
    return TR_OK;
}

bool cl_stop_all(struct cl_ctx *c)
{
    /* phase of each role: secondaries first (they drain and leave
     * through the load balancer), then the clients' door, the database
     * last */
    const char *phase[][2] = {
        {"secondary", "draining"}, {"lb", "lb"}, {"primary", "primary"}};
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

static int load(struct cl_ctx *c)
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

/* A string member of o, or "-". */
static const char *str(const json_t *o, const char *key)
{
    const char *v = json_string_value(json_object_get(o, key));
    return v != NULL ? v : "-";
}

static void print_registry(struct cl_ctx *c)
{
    char token[512];
    long status = 0;
    char *body = NULL;
    struct tr_errbuf eb = {{0}};
    tr_err e = cl_read_line(c, "admin-token", token, sizeof(token), &eb);
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
           "ROLE", "STATE", "LEADER", "CAP", "JOBS", "LAST HEARTBEAT", "NAME");
    size_t i;
    json_t *it;
    json_array_foreach(data, i, it)
    {
        json_t *at = json_object_get(it, "attributes");
        /* the name says which node; the address may be the balancer's */
        const char *name = json_string_value(json_object_get(at, "name"));
        printf("%-22s %-10s %-9s %-6s %-4lld %-4lld %-26s %s\n", str(it, "id"),
               str(at, "role"), str(at, "state"),
               json_is_true(json_object_get(at, "leader")) ? "yes" : "no",
               json_integer_value(json_object_get(at, "capacity")),
               json_integer_value(json_object_get(at, "running-jobs")),
               str(at, "last-heartbeat-at"), name ? name : str(at, "address"));
    }
    json_decref(doc);
}

static int cmd_status(struct cl_ctx *c)
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

static int cmd_scale(struct cl_ctx *c)
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
        cl_read_line(c, "join-token", c->join_token, sizeof(c->join_token),
                     NULL) != TR_OK) {
        bool missing = false;
        e = cl_fetch_join_token(c, &missing, &eb);
        if (e == TR_OK && missing)
            e = tr_fail(&eb, TR_ERR_UNSUPPORTED,
                        "this server has no join token (GET "
                        "/api/v2/admin/join-token answered 404)");
    }
    int first = c->nodes.count;
    for (; alive < c->o.secondaries && e == TR_OK; alive++)
        e = cl_start_secondary(c, next++, &eb);
    for (int i = first; i < c->nodes.count && e == TR_OK; i++)
        e = cl_wait_ready(c, &c->nodes.n[i], &eb);
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

static int cmd_kill(struct cl_ctx *c, bool drain)
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

static int cmd_down(struct cl_ctx *c)
{
    if (load(c) != 0)
        return 1;
    bool ok = cl_stop_all(c);
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
    struct cl_ctx c = {.a = arena_new()};
    c.o.primaries = 3;
    c.o.secondaries = -1;
    c.o.executors = -1;
    int rc = parse_args(argc, argv, &c.o);
    const char *cmd = argv[1];
    if (rc == 0 && strcmp(cmd, "up") == 0) {
        if (c.o.secondaries < 0)
            c.o.secondaries = 0;
        rc = cl_cmd_up(&c);
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
