/*
 * cluster_proc.c - processes, PostgreSQL, the node list and HTTPS
 * requests for the local cluster launcher (see cluster_int.h).
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#include <arpa/inet.h>
#include "core/curl_load.h"
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <grp.h>
#include <limits.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cli/cluster_int.h"
#include "core/buf.h"

tr_err cl_spawn(const char *log, char *const argv[], char *const env[],
                bool as_postgres, pid_t *pid, struct tr_errbuf *eb)
{
    uid_t uid = 0;
    gid_t gid = 0;
    bool drop = as_postgres && geteuid() == 0;
    if (drop) {
        struct passwd *pw = getpwnam("postgres");
        if (pw == NULL)
            return tr_fail(eb, TR_ERR_CONFIG,
                           "no postgres user to run PostgreSQL as (install "
                           "the postgresql package)");
        uid = pw->pw_uid;
        gid = pw->pw_gid;
    }
    int out = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
    if (out < 0)
        return tr_fail(eb, TR_ERR_IO, "cannot open %s: %s", log,
                       strerror(errno));
    if (drop && fchown(out, uid, gid) != 0) {
        close(out);
        return tr_fail(eb, TR_ERR_IO, "cannot chown %s: %s", log,
                       strerror(errno));
    }
    int in = open("/dev/null", O_RDONLY | O_CLOEXEC);
    pid_t p = in < 0 ? -1 : fork();
    if (p == 0) {
        setsid();
        dup2(in, 0);
        dup2(out, 1);
        dup2(out, 2);
        close_range(3, ~0U, 0);
        signal(SIGPIPE, SIG_DFL);
        if (drop &&
            (setgroups(0, NULL) != 0 || setgid(gid) != 0 || setuid(uid) != 0)) {
            dprintf(2, "cannot become the postgres user: %s\n",
                    strerror(errno));
            _exit(127);
        }
        for (int i = 0; env != NULL && env[i] != NULL; i++) {
            if (strchr(env[i], '=') != NULL)
                putenv(env[i]);
            else
                unsetenv(env[i]);
        }
        execv(argv[0], argv);
        dprintf(2, "cannot run %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    int err = errno;
    close(out);
    if (in >= 0)
        close(in);
    if (p < 0)
        return tr_fail(eb, TR_ERR_IO, "cannot start %s: %s", argv[0],
                       strerror(err));
    *pid = p;
    return TR_OK;
}

tr_err cl_run(const char *log, char *const argv[], bool as_postgres,
              struct tr_errbuf *eb)
{
    pid_t pid;
    tr_err e = cl_spawn(log, argv, NULL, as_postgres, &pid, eb);
    if (e != TR_OK)
        return e;
    int st = 0;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
        return TR_OK;
    return tr_fail(eb, TR_ERR_IO, "%s failed (see %s)", argv[0], log);
}

bool cl_alive(long pid, const char *dir)
{
    if (pid <= 1)
        return false;
    char path[64], buf[4096];
    snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return false;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *rp = strrchr(buf, ')');
    if (rp == NULL || rp[1] != ' ' || rp[2] == 'Z' || rp[2] == 'X')
        return false;
    snprintf(path, sizeof(path), "/proc/%ld/cmdline", pid);
    f = fopen(path, "r");
    if (f == NULL)
        return false;
    n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    for (size_t i = 0; i < n; i++)
        if (buf[i] == '\0')
            buf[i] = ' ';
    buf[n] = '\0';
    return strstr(buf, dir) != NULL;
}

bool cl_signal(long pid, const char *dir, int sig)
{
    if (!cl_alive(pid, dir))
        return false;
    return kill((pid_t)pid, sig) == 0;
}

bool cl_wait_gone(long pid, const char *dir, int ms)
{
    struct timespec ts = {0, 20 * 1000 * 1000};
    for (int waited = 0; cl_alive(pid, dir); waited += 20) {
        if (waited >= ms)
            return false;
        /* reap it if it is our own child */
        waitpid((pid_t)pid, NULL, WNOHANG);
        nanosleep(&ts, NULL);
    }
    return true;
}

static bool executable(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode) && access(p, X_OK) == 0;
}

char *cl_which(struct arena *a, const char *name)
{
    if (strchr(name, '/') != NULL) {
        char real[PATH_MAX];
        if (!executable(name) || realpath(name, real) == NULL)
            return NULL;
        return arena_strdup(a, real);
    }
    const char *env = getenv("PATH");
    char *path = arena_printf(a, "%s:/usr/sbin:/sbin", env ? env : "");
    for (char *save = NULL, *d = strtok_r(path, ":", &save); d != NULL;
         d = strtok_r(NULL, ":", &save)) {
        char *p = arena_printf(a, "%s/%s", d, name);
        if (d[0] == '/' && executable(p))
            return p;
    }
    return NULL;
}

tr_err cl_free_port(const char *ip, int *port, struct tr_errbuf *eb)
{
    struct sockaddr_in sa = {.sin_family = AF_INET};
    if (inet_pton(AF_INET, ip, &sa.sin_addr) != 1)
        return tr_fail(eb, TR_ERR_INVALID, "bad address %s", ip);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    socklen_t len = sizeof(sa);
    if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
        getsockname(fd, (struct sockaddr *)&sa, &len) != 0) {
        int err = errno;
        if (fd >= 0)
            close(fd);
        return tr_fail(eb, TR_ERR_IO, "no free port on %s: %s", ip,
                       strerror(err));
    }
    close(fd);
    *port = ntohs(sa.sin_port);
    return TR_OK;
}

static size_t collect(char *p, size_t size, size_t n, void *arg)
{
    return buf_append(arg, p, size * n) == TR_OK ? size * n : 0;
}

tr_err cl_get(struct arena *a, const char *url, const char *ca,
              const char *token, long timeout_s, long *status, char **body,
              struct tr_errbuf *eb)
{
    *status = 0;
    *body = NULL;
    CURL *h = curl_easy_init();
    if (h == NULL)
        return tr_fail(eb, TR_ERR_INTERNAL, "cannot start an HTTP client");
    struct curl_slist *hdrs = NULL;
    char auth[600];
    if (token != NULL) {
        snprintf(auth, sizeof(auth), "Authorization: Bearer %s", token);
        hdrs = curl_slist_append(hdrs, auth);
    }
    hdrs = curl_slist_append(hdrs, "Accept: application/vnd.api+json");
    struct buf resp;
    buf_init(&resp, 4 << 20);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &resp);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, timeout_s);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_NOPROXY, "*");
    if (ca != NULL)
        curl_easy_setopt(h, CURLOPT_CAINFO, ca);
    CURLcode rc = curl_easy_perform(h);
    if (rc == CURLE_OK)
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, status);
    curl_easy_cleanup(h);
    curl_slist_free_all(hdrs);
    if (rc == CURLE_OK)
        *body = arena_strndup(a, resp.data ? resp.data : "", resp.len);
    buf_free(&resp);
    if (rc != CURLE_OK)
        return tr_fail(eb, TR_ERR_IO, "%s: %s", url, curl_easy_strerror(rc));
    return TR_OK;
}

/* The newest installed PostgreSQL's bin directory, or NULL. */
static char *pg_bindir(struct arena *a)
{
    glob_t g;
    char *best = NULL;
    if (glob("/usr/lib/postgresql/*/bin/initdb", 0, NULL, &g) == 0) {
        for (size_t i = 0; i < g.gl_pathc; i++)
            if (best == NULL || strverscmp(g.gl_pathv[i], best) > 0)
                best = arena_strdup(a, g.gl_pathv[i]);
        globfree(&g);
    }
    if (best == NULL)
        best = cl_which(a, "initdb");
    if (best == NULL)
        return NULL;
    *strrchr(best, '/') = '\0';
    return best;
}

static long read_pid(const char *path)
{
    FILE *f = fopen(path, "r");
    long pid = 0;
    if (f == NULL)
        return 0;
    if (fscanf(f, "%ld", &pid) != 1)
        pid = 0;
    fclose(f);
    return pid;
}

tr_err cl_pg_start(struct arena *a, const char *dir, char **conninfo, long *pid,
                   struct tr_errbuf *eb)
{
    char *bin = pg_bindir(a);
    if (bin == NULL)
        return tr_fail(eb, TR_ERR_CONFIG,
                       "PostgreSQL server not installed (apt-get install "
                       "postgresql, or pass --database-url)");
    char *pg = arena_printf(a, "%s/pg", dir);
    char *data = arena_printf(a, "%s/data", pg);
    char *log = arena_printf(a, "%s/logs/postgres.log", dir);
    if (mkdir(pg, 0700) != 0 && errno != EEXIST)
        return tr_fail(eb, TR_ERR_IO, "cannot create %s: %s", pg,
                       strerror(errno));
    struct passwd *pw = geteuid() == 0 ? getpwnam("postgres") : NULL;
    if (pw != NULL && chown(pg, pw->pw_uid, pw->pw_gid) != 0)
        return tr_fail(eb, TR_ERR_IO, "cannot chown %s: %s", pg,
                       strerror(errno));
    bool fresh = access(arena_printf(a, "%s/PG_VERSION", data), F_OK) != 0;
    tr_err e = TR_OK;
    if (fresh) {
        char *argv[] = {arena_printf(a, "%s/initdb", bin),
                        "-D",
                        data,
                        "-U",
                        "terrace",
                        "-A",
                        "trust",
                        "-N",
                        NULL};
        e = cl_run(log, argv, true, eb);
    }
    char *opts = arena_printf(a,
                              "-c listen_addresses='' "
                              "-c unix_socket_directories='%s' "
                              "-c fsync=off -c max_connections=300",
                              pg);
    char *start[] = {arena_printf(a, "%s/pg_ctl", bin),
                     "-D",
                     data,
                     "-l",
                     log,
                     "-w",
                     "-t",
                     "60",
                     "-o",
                     opts,
                     "start",
                     NULL};
    if (e == TR_OK)
        e = cl_run(log, start, true, eb);
    if (e == TR_OK && fresh) {
        char *argv[] = {arena_printf(a, "%s/createdb", bin),
                        "-h",
                        pg,
                        "-U",
                        "terrace",
                        "terrace",
                        NULL};
        e = cl_run(log, argv, true, eb);
    }
    if (e != TR_OK)
        return e;
    *pid = read_pid(arena_printf(a, "%s/postmaster.pid", data));
    *conninfo = arena_printf(a, "host=%s user=terrace dbname=terrace", pg);
    return TR_OK;
}

tr_err cl_pg_stop(const char *dir, struct tr_errbuf *eb)
{
    struct arena *a = arena_new();
    tr_err e = TR_OK;
    char *data = arena_printf(a, "%s/pg/data", dir);
    char *bin = pg_bindir(a);
    if (bin != NULL &&
        access(arena_printf(a, "%s/postmaster.pid", data), F_OK) == 0) {
        char *argv[] = {arena_printf(a, "%s/pg_ctl", bin),
                        "-D",
                        data,
                        "-m",
                        "fast",
                        "-w",
                        "stop",
                        NULL};
        e = cl_run(arena_printf(a, "%s/logs/postgres.log", dir), argv, true,
                   eb);
    }
    arena_destroy(a);
    return e;
}

tr_err cl_nodes_read(const char *dir, struct cl_nodes *out,
                     struct tr_errbuf *eb)
{
    char path[PATH_MAX], line[512];
    snprintf(path, sizeof(path), "%s/nodes", dir);
    out->count = 0;
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return tr_fail(eb, errno == ENOENT ? TR_ERR_NOT_FOUND : TR_ERR_IO,
                       "no cluster in %s (%s)", dir, strerror(errno));
    while (fgets(line, sizeof(line), f) != NULL && out->count < CL_MAX_NODES) {
        struct cl_node *n = &out->n[out->count];
        if (sscanf(line, "%15s %ld %15s %255s", n->name, &n->pid, n->role,
                   n->addr) == 4)
            out->count++;
    }
    fclose(f);
    return TR_OK;
}

tr_err cl_nodes_write(const char *dir, const struct cl_nodes *ns,
                      struct tr_errbuf *eb)
{
    struct buf b;
    buf_init(&b, 1 << 20);
    tr_err e = TR_OK;
    for (int i = 0; i < ns->count && e == TR_OK; i++)
        e = buf_printf(&b, "%s %ld %s %s\n", ns->n[i].name, ns->n[i].pid,
                       ns->n[i].role, ns->n[i].addr);
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/nodes", dir);
    if (e == TR_OK)
        e = cl_write_file(path, b.data ? b.data : "", b.len, 0644, eb);
    buf_free(&b);
    return e;
}

struct cl_node *cl_nodes_find(struct cl_nodes *ns, const char *name)
{
    for (int i = 0; i < ns->count; i++)
        if (strcmp(ns->n[i].name, name) == 0)
            return &ns->n[i];
    return NULL;
}

tr_err cl_write_file(const char *path, const char *data, size_t len, int mode,
                     struct tr_errbuf *eb)
{
    char tmp[PATH_MAX + 8];
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    unlink(tmp);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
    if (fd < 0)
        return tr_fail(eb, TR_ERR_IO, "cannot write %s: %s", path,
                       strerror(errno));
    ssize_t w = write(fd, data, len);
    int err = errno;
    if (close(fd) != 0 || w != (ssize_t)len) {
        unlink(tmp);
        return tr_fail(eb, TR_ERR_IO, "cannot write %s: %s", path,
                       strerror(err));
    }
    if (rename(tmp, path) != 0)
        return tr_fail(eb, TR_ERR_IO, "cannot write %s: %s", path,
                       strerror(errno));
    return TR_OK;
}
