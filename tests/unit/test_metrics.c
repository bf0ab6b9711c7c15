/*
 * test_metrics.c - unit tests for src/http/metrics.c and the store
 * counts behind it: the exposition parsed line by line as Prometheus
 * would (names, label syntax and escapes, HELP/TYPE before a family's
 * samples, families contiguous, no series twice, histogram buckets
 * cumulative and ending in count), counters by route, method and code,
 * unmatched requests and odd methods kept out of labels, counting from
 * many threads at once, the access rule of the metrics setting, route
 * numbering, store_metrics_counts()/store_schema_version() on
 * SQLite, and readiness: draining, the cluster's hook, the database
 * through the probe thread and a schema behind the binary.
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <ctype.h>
#include <math.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "http/http.h"
#include "http/metrics.h"
#include "unit_util.h"

static void h(struct http_req *r)
{
    (void)r;
}

static const struct route t1[] = {
    {"GET", "/a", h, 0},
    {"GET", "/a/:id", h, ROUTE_AUTH},
    {"PATCH", "/a/:id", h, ROUTE_AUTH},
    {"GET", "/odd/\"q\\", h, 0}, /* escapes in a label value */
    {NULL, NULL, NULL, 0},
};
static const struct route t2[] = {
    {"GET", "/a", h, 0}, /* repeats t1[0]: never matches */
    {"POST", "/b", h, 0},
    {NULL, NULL, NULL, 0},
};
static const struct route *const tables[] = {t1, t2, NULL};

/* ---- a parser of the text format, as strict as Prometheus ----------- */

struct sample {
    char name[128];
    char labels[512]; /* as written, escapes kept: a key for duplicates */
    double value;
};

struct expo {
    struct sample s[512];
    int n;
};

static bool name_ok(const char *p, size_t n)
{
    if (n == 0 || !(isalpha((unsigned char)p[0]) || p[0] == '_' || p[0] == ':'))
        return false;
    for (size_t i = 1; i < n; i++)
        if (!(isalnum((unsigned char)p[i]) || p[i] == '_' || p[i] == ':'))
            return false;
    return true;
}

/* The family a sample belongs to (histogram suffixes removed). */
static void family(const char *name, const char *type, char *out, size_t n)
{
    snprintf(out, n, "%s", name);
    if (type == NULL || strcmp(type, "histogram") != 0)
        return;
    static const char *suf[] = {"_bucket", "_sum", "_count"};
    for (int i = 0; i < 3; i++) {
        size_t l = strlen(out), sl = strlen(suf[i]);
        if (l > sl && strcmp(out + l - sl, suf[i]) == 0) {
            out[l - sl] = '\0';
            return;
        }
    }
}

/* Parses labels at p ('{' ... '}'); returns the end or NULL. */
static const char *parse_labels(const char *p)
{
    p++;
    while (*p != '}') {
        const char *k = p;
        while (isalnum((unsigned char)*p) || *p == '_')
            p++;
        if (!name_ok(k, (size_t)(p - k)) || *p++ != '=' || *p++ != '"')
            return NULL;
        while (*p != '"') {
            if (*p == '\0' || *p == '\n')
                return NULL;
            if (*p == '\\') {
                p++;
                if (*p != '\\' && *p != '"' && *p != 'n')
                    return NULL;
            }
            p++;
        }
        p++;
        if (*p == ',')
            p++;
        else if (*p != '}')
            return NULL;
    }
    return p + 1;
}

static void parse(const char *text, struct expo *x)
{
    char types[64][128], tnames[64][128];
    int ntypes = 0;
    char done[64][128]; /* families whose samples have ended */
    int ndone = 0;
    char cur[128] = "";
    x->n = 0;
    const char *line = text;
    while (*line != '\0') {
        const char *end = strchr(line, '\n');
        assert_non_null(end); /* every line ends in a newline */
        char buf[1024];
        size_t len = (size_t)(end - line);
        assert_true(len < sizeof(buf));
        memcpy(buf, line, len);
        buf[len] = '\0';
        line = end + 1;
        if (strncmp(buf, "# HELP ", 7) == 0)
            continue;
        if (strncmp(buf, "# TYPE ", 7) == 0) {
            char nm[128], ty[32];
            assert_int_equal(sscanf(buf + 7, "%127s %31s", nm, ty), 2);
            assert_true(strcmp(ty, "counter") == 0 ||
                        strcmp(ty, "gauge") == 0 ||
                        strcmp(ty, "histogram") == 0);
            for (int i = 0; i < ntypes; i++)
                assert_string_not_equal(tnames[i], nm); /* one TYPE */
            snprintf(tnames[ntypes], 128, "%s", nm);
            snprintf(types[ntypes++], 128, "%s", ty);
            continue;
        }
        assert_true(buf[0] != '#' && buf[0] != '\0');
        struct sample *s = &x->s[x->n];
        const char *p = buf;
        while (*p != '\0' && *p != '{' && *p != ' ')
            p++;
        assert_true(name_ok(buf, (size_t)(p - buf)));
        snprintf(s->name, sizeof(s->name), "%.*s", (int)(p - buf), buf);
        s->labels[0] = '\0';
        if (*p == '{') {
            const char *le = parse_labels(p);
            assert_non_null(le);
            snprintf(s->labels, sizeof(s->labels), "%.*s", (int)(le - p), p);
            p = le;
        }
        assert_int_equal(*p++, ' ');
        char *vend = NULL;
        s->value = strtod(p, &vend);
        assert_true(vend != p && *vend == '\0');
        /* its family was typed before, and its samples are contiguous */
        const char *type = NULL;
        char fam[128];
        for (int i = 0; i < ntypes && type == NULL; i++) {
            family(s->name, types[i], fam, sizeof(fam));
            if (strcmp(fam, tnames[i]) == 0)
                type = types[i];
        }
        assert_non_null(type);
        family(s->name, type, fam, sizeof(fam));
        if (strcmp(fam, cur) != 0) {
            for (int i = 0; i < ndone; i++)
                assert_string_not_equal(done[i], fam);
            if (cur[0] != '\0')
                snprintf(done[ndone++], 128, "%s", cur);
            snprintf(cur, sizeof(cur), "%s", fam);
        }
        for (int i = 0; i < x->n; i++)
            assert_false(strcmp(x->s[i].name, s->name) == 0 &&
                         strcmp(x->s[i].labels, s->labels) == 0);
        x->n++;
        assert_true(x->n < 512);
    }
}

/* The value of name{labels} (labels as written), or NAN. */
static double get(const struct expo *x, const char *name, const char *labels)
{
    for (int i = 0; i < x->n; i++)
        if (strcmp(x->s[i].name, name) == 0 &&
            strcmp(x->s[i].labels, labels) == 0)
            return x->s[i].value;
    return NAN;
}

/* Buckets of one histogram series grow and end with +Inf == count. */
static void check_histogram(const struct expo *x, const char *base,
                            const char *labels)
{
    char bucket[160], count[160];
    snprintf(bucket, sizeof(bucket), "%s_bucket", base);
    snprintf(count, sizeof(count), "%s_count", base);
    double last = -1, inf = NAN;
    size_t ll = strlen(labels);
    for (int i = 0; i < x->n; i++) {
        const struct sample *s = &x->s[i];
        if (strcmp(s->name, bucket) != 0 ||
            strncmp(s->labels, labels, ll - 1) != 0)
            continue;
        assert_true(s->value >= last);
        last = s->value;
        if (strstr(s->labels, "le=\"+Inf\"") != NULL)
            inf = s->value;
    }
    assert_false(isnan(inf));
    assert_true(inf == get(x, count, labels));
}

/* ---- tests ------------------------------------------------------------ */

static struct terrace_server srv;

static int setup(void **state)
{
    (void)state;
    http_set_routes(tables);
    memset(&srv, 0, sizeof(srv));
    srv.cfg.executors = 3;
    strcpy(srv.cfg.metrics, "loopback");
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    http_set_routes(NULL);
    return 0;
}

static char *render(struct http_metrics *m)
{
    struct buf b;
    buf_init(&b, 0);
    http_metrics_render(m, &srv, &b);
    return buf_steal(&b, NULL);
}

static void test_route_numbering(void **state)
{
    (void)state;
    assert_int_equal(http_route_count(), 6);
    assert_ptr_equal(http_route_at(0), &t1[0]);
    assert_ptr_equal(http_route_at(4), &t2[0]);
    assert_ptr_equal(http_route_at(5), &t2[1]);
    assert_null(http_route_at(6));
    assert_null(http_route_at(-1));
    for (int i = 0; i < 6; i++)
        assert_int_equal(http_route_index(http_route_at(i)), i);
    static const struct route other = {"GET", "/x", h, 0};
    assert_int_equal(http_route_index(&other), -1);
}

static void test_exposition(void **state)
{
    (void)state;
    struct http_metrics *m = NULL;
    assert_int_equal(http_metrics_new(&srv, &m, NULL), TR_OK);
    http_metrics_observe(m, &t1[1], "GET", 200, 1000);   /* 1 ms */
    http_metrics_observe(m, &t1[1], "GET", 200, 200000); /* 0.2 s */
    http_metrics_observe(m, &t1[1], "GET", 404, 100);
    http_metrics_observe(m, &t1[2], "PATCH", 422, 99000000); /* > 30 s */
    http_metrics_observe(m, &t1[3], "GET", 299, 10);         /* odd code */
    http_metrics_observe(m, &t2[1], "POST", 0, 10);          /* no answer */
    http_metrics_observe(m, NULL, "GET", 404, 10);
    http_metrics_observe(m, NULL, "BREW", 405, 10);
    http_metrics_observe(m, NULL, "GET /x\"\n", 400, 10);
    char *text = render(m);
    struct expo *x = calloc(1, sizeof(*x));
    parse(text, x);
    const char *c = "terrace_http_requests_total";
    assert_true(get(x, c, "{route=\"/a/:id\",method=\"GET\",code=\"200\"}") ==
                2);
    assert_true(get(x, c, "{route=\"/a/:id\",method=\"GET\",code=\"404\"}") ==
                1);
    assert_true(get(x, c, "{route=\"/a/:id\",method=\"PATCH\",code=\"422\"}") ==
                1);
    assert_true(
        get(x, c, "{route=\"/odd/\\\"q\\\\\",method=\"GET\",code=\"2xx\"}") ==
        1);
    assert_true(get(x, c, "{route=\"/b\",method=\"POST\",code=\"none\"}") == 1);
    assert_true(
        get(x, c, "{route=\"unmatched\",method=\"GET\",code=\"404\"}") == 1);
    assert_true(
        get(x, c, "{route=\"unmatched\",method=\"other\",code=\"405\"}") == 1);
    assert_true(
        get(x, c, "{route=\"unmatched\",method=\"other\",code=\"400\"}") == 1);
    /* nothing of the odd method reached a label; nothing for unused or
     * repeated routes */
    assert_null(strstr(text, "BREW"));
    assert_null(strstr(text, "/x"));
    assert_null(strstr(text, "route=\"/a\""));
    const char *d = "terrace_http_request_duration_seconds";
    check_histogram(x, d, "{route=\"/a/:id\",method=\"GET\"}");
    check_histogram(x, d, "{route=\"/a/:id\",method=\"PATCH\"}");
    char name[128];
    snprintf(name, sizeof(name), "%s_bucket", d);
    assert_true(
        get(x, name, "{route=\"/a/:id\",method=\"GET\",le=\"0.005\"}") == 2);
    assert_true(get(x, name, "{route=\"/a/:id\",method=\"GET\",le=\"0.25\"}") ==
                3);
    assert_true(get(x, name, "{route=\"/a/:id\",method=\"PATCH\",le=\"30\"}") ==
                0);
    assert_true(
        get(x, name, "{route=\"/a/:id\",method=\"PATCH\",le=\"+Inf\"}") == 1);
    snprintf(name, sizeof(name), "%s_sum", d);
    assert_true(fabs(get(x, name, "{route=\"/a/:id\",method=\"GET\"}") -
                     0.2011) < 1e-9);
    /* node gauges; no database, so none of its series */
    assert_true(get(x, "terrace_executor_capacity", "") == 3);
    assert_true(get(x, "terrace_leader", "") == 0);
    atomic_store(&srv.is_leader, 1);
    atomic_store(&srv.draining, 1);
    free(text);
    text = render(m);
    parse(text, x);
    assert_true(get(x, "terrace_leader", "") == 1);
    assert_true(get(x, "terrace_draining", "") == 1);
    assert_true(get(x, "process_resident_memory_bytes", "") > 1e5);
    assert_true(get(x, "process_start_time_seconds", "") >
                (double)util_now_unix() - 3600);
    assert_true(get(x, "process_start_time_seconds", "") <=
                (double)util_now_unix());
    assert_true(isnan(get(x, "terrace_database_up", "")));
    atomic_store(&srv.is_leader, 0);
    atomic_store(&srv.draining, 0);
    free(text);
    free(x);
    http_metrics_free(m);
}

#define NTHREADS 4
#define PER_THREAD 20000

static void *hammer(void *arg)
{
    struct http_metrics *m = arg;
    for (int i = 0; i < PER_THREAD; i++)
        http_metrics_observe(m, &t2[1], "POST", i % 2 ? 201 : 500, i);
    return NULL;
}

static void test_concurrent(void **state)
{
    (void)state;
    struct http_metrics *m = NULL;
    assert_int_equal(http_metrics_new(&srv, &m, NULL), TR_OK);
    pthread_t th[NTHREADS];
    for (int i = 0; i < NTHREADS; i++)
        assert_int_equal(pthread_create(&th[i], NULL, hammer, m), 0);
    for (int i = 0; i < NTHREADS; i++)
        pthread_join(th[i], NULL);
    char *text = render(m);
    struct expo *x = calloc(1, sizeof(*x));
    parse(text, x);
    const char *c = "terrace_http_requests_total";
    double half = NTHREADS * PER_THREAD / 2;
    assert_true(get(x, c, "{route=\"/b\",method=\"POST\",code=\"201\"}") ==
                half);
    assert_true(get(x, c, "{route=\"/b\",method=\"POST\",code=\"500\"}") ==
                half);
    assert_true(get(x, "terrace_http_request_duration_seconds_count",
                    "{route=\"/b\",method=\"POST\"}") == 2 * half);
    check_histogram(x, "terrace_http_request_duration_seconds",
                    "{route=\"/b\",method=\"POST\"}");
    free(text);
    free(x);
    http_metrics_free(m);
}

static bool allowed(const char *mode, const char *addr, bool proxied)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof(ss));
    if (strchr(addr, ':') != NULL) {
        struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&ss;
        a6->sin6_family = AF_INET6;
        assert_int_equal(inet_pton(AF_INET6, addr, &a6->sin6_addr), 1);
    } else {
        struct sockaddr_in *a4 = (struct sockaddr_in *)&ss;
        a4->sin_family = AF_INET;
        assert_int_equal(inet_pton(AF_INET, addr, &a4->sin_addr), 1);
    }
    return http_metrics_allowed(mode, (struct sockaddr *)&ss, proxied);
}

static void test_access(void **state)
{
    (void)state;
    assert_true(allowed("loopback", "127.0.0.1", false));
    assert_true(allowed("loopback", "127.9.8.7", false));
    assert_true(allowed("loopback", "::1", false));
    assert_true(allowed("loopback", "::ffff:127.0.0.1", false));
    assert_false(allowed("loopback", "10.0.0.1", false));
    assert_false(allowed("loopback", "128.0.0.1", false));
    assert_false(allowed("loopback", "::ffff:10.0.0.1", false));
    assert_false(allowed("loopback", "fe80::1", false));
    /* through a proxy, a loopback peer may be anyone */
    assert_false(allowed("loopback", "127.0.0.1", true));
    assert_true(allowed("on", "10.0.0.1", true));
    assert_false(allowed("off", "127.0.0.1", false));
    assert_false(http_metrics_allowed("loopback", NULL, false));
}

static void test_store_counts(void **state)
{
    (void)state;
    struct ut_store s;
    assert_int_equal(ut_store_open(&s, DB_SQLITE, 1, "metrics"), 0);
    struct arena *a = arena_new();
    int v = -1;
    assert_int_equal(store_schema_version(s.db, &v, NULL), TR_OK);
    assert_int_equal(v, store_schema_latest());
    assert_true(v >= 12);
    struct st_metrics c;
    memset(&c, 0xff, sizeof(c));
    assert_int_equal(store_metrics_counts(s.db, a, &c, NULL), TR_OK);
    assert_int_equal(c.nruns, 0);
    assert_int_equal(c.jobs_queued, 0);
    assert_int_equal(c.jobs_running, 0);
    assert_int_equal(c.nnodes, 0);
    /* rows without their workspaces: the counts read only these columns */
    struct db_conn *cn = db_acquire(s.db);
    assert_int_equal(db_q(cn, a, NULL, NULL, "PRAGMA foreign_keys=OFF", ),
                     TR_OK);
    static const char *const runs[][2] = {{"run-1", "applied"},
                                          {"run-2", "applied"},
                                          {"run-3", "planning"},
                                          {"run-4", "plan_queued"},
                                          {"run-5", "applying"}};
    for (int i = 0; i < 5; i++)
        assert_int_equal(db_q(cn, a, NULL, NULL,
                              "INSERT INTO runs (id, workspace_id, status,"
                              " queue_seq, created_at)"
                              " VALUES ($1, 'ws-x', $2, 1, 'now')",
                              runs[i][0], runs[i][1]),
                         TR_OK);
    static const char *const jobs[][4] = {
        {"job-1", "run-3", "running", "node-a"},
        {"job-2", "run-5", "running", "node-b"},
        {"job-3", "run-4", "queued", NULL},
        {"job-4", "run-1", "done", "node-a"},
    };
    for (int i = 0; i < 4; i++)
        assert_int_equal(db_q(cn, a, NULL, NULL,
                              "INSERT INTO jobs (id, run_id, phase, status,"
                              " node, created_at, seq)"
                              " VALUES ($1, $2, 'plan', $3, $4, 'now', $5)",
                              jobs[i][0], jobs[i][1], jobs[i][2], jobs[i][3],
                              arena_printf(a, "%d", i)),
                         TR_OK);
    /* the version before the latest (numbers may have gaps on a branch) */
    struct db_rows *prev = NULL;
    assert_int_equal(db_q(cn, a, &prev, NULL,
                          "SELECT max(version) AS v FROM schema_migrations"
                          " WHERE version < CAST($1 AS INTEGER)",
                          arena_printf(a, "%d", v)),
                     TR_OK);
    assert_int_equal(db_x(cn, a, NULL, NULL,
                          "DELETE FROM schema_migrations WHERE version = $1",
                          arena_printf(a, "%d", v)),
                     TR_OK);
    db_release(cn);
    assert_int_equal(store_metrics_counts(s.db, a, &c, NULL), TR_OK);
    assert_int_equal(c.nruns, 4);
    for (int i = 0; i < c.nruns; i++)
        assert_int_equal(c.runs[i].n,
                         strcmp(c.runs[i].key, "applied") == 0 ? 2 : 1);
    assert_int_equal(c.jobs_queued, 1);
    assert_int_equal(c.jobs_running, 2);
    assert_int_equal(c.nnodes, 2);
    int pending = -1;
    assert_int_equal(store_schema_version(s.db, &pending, NULL), TR_OK);
    assert_int_equal(pending, (int)db_get_i64(prev, 0, "v"));
    /* the pool as /metrics sees it */
    int used = -1, size = -1;
    db_pool_stats(s.db, &used, &size);
    assert_int_equal(used, 0);
    assert_int_equal(size, 1);
    cn = db_acquire(s.db);
    db_pool_stats(s.db, &used, &size);
    assert_int_equal(used, 1);
    db_release(cn);
    arena_destroy(a);
    assert_int_equal(ut_store_close(&s), 0);
}

static const char *hold_back(struct terrace_server *s)
{
    (void)s;
    return "leader not known";
}

static void test_ready(void **state)
{
    (void)state;
    struct arena *a = arena_new();
    json_t *checks = NULL;
    /* no database (a secondary): draining and the hook decide */
    assert_null(http_ready(&srv, a, &checks));
    assert_true(json_is_false(json_object_get(checks, "draining")));
    assert_null(json_object_get(checks, "database"));
    json_decref(checks);
    atomic_store(&srv.draining, 1);
    assert_string_equal(http_ready(&srv, a, NULL), "draining");
    atomic_store(&srv.draining, 0);
    srv.not_ready = hold_back;
    assert_string_equal(http_ready(&srv, a, NULL), "leader not known");
    srv.not_ready = NULL;
    /* a database, through the probe thread, then without it */
    struct ut_store s;
    assert_int_equal(ut_store_open(&s, DB_SQLITE, 1, "ready"), 0);
    srv.db = s.db;
    assert_int_equal(http_metrics_new(&srv, &srv.metrics, NULL), TR_OK);
    assert_null(http_ready(&srv, a, &checks));
    assert_string_equal(
        json_string_value(json_object_get(checks, "migrations")), "ok");
    json_decref(checks);
    http_metrics_free(srv.metrics);
    srv.metrics = NULL;
    struct db_conn *c = db_acquire(s.db);
    assert_int_equal(db_x(c, a, NULL, NULL,
                          "DELETE FROM schema_migrations WHERE version = $1",
                          arena_printf(a, "%d", store_schema_latest())),
                     TR_OK);
    db_release(c);
    const char *why = http_ready(&srv, a, NULL);
    assert_non_null(why);
    assert_non_null(strstr(why, "migrations pending"));
    /* the database comes before the cluster's reasons */
    srv.not_ready = hold_back;
    assert_non_null(strstr(http_ready(&srv, a, NULL), "migrations"));
    srv.not_ready = NULL;
    srv.db = NULL;
    arena_destroy(a);
    assert_int_equal(ut_store_close(&s), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_route_numbering),
        cmocka_unit_test(test_exposition),
        cmocka_unit_test(test_concurrent),
        cmocka_unit_test(test_access),
        cmocka_unit_test(test_store_counts),
        cmocka_unit_test(test_ready),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
