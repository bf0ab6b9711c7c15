/*
 * config.c - settings table and the file/env/flag loaders for config.h.
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#include "core/config.h"

#include <ctype.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/ip_ranges.h"
#include "core/util.h"

enum kind { STR, INT };

struct setting {
    const char *name; /* flag and file key */
    const char *env;
    enum kind kind;
    size_t off;
    size_t size;
    const char *help;
};

#define S(name, env, field, help)                                              \
    {                                                                          \
        name, env, STR, offsetof(struct cfg, field),                           \
            sizeof(((struct cfg *)0)->field), help                             \
    }
#define I(name, env, field, help)                                              \
    {                                                                          \
        name, env, INT, offsetof(struct cfg, field),                           \
            sizeof(((struct cfg *)0)->field), help                             \
    }

static const struct setting settings[] = {
    S("role", "TERRACE_ROLE", role, "demo | primary | secondary | agent"),
    S("data-dir", "TERRACE_DATA_DIR", data_dir,
      "data directory (demo database, blobs, keys)"),
    S("listen", "TERRACE_LISTEN", listen, "HOST:PORT to listen on"),
    S("external-url", "TERRACE_EXTERNAL_URL", external_url,
      "URL clients use to reach this server"),
    S("database-url", "TERRACE_DATABASE_URL", database_url,
      "PostgreSQL connection string (primary role)"),
    S("kek-file", "TERRACE_KEK_FILE", kek_file,
      "key-encryption key file, the same on every primary (default: "
      "DATA/kek, made on first start)"),
    S("blob-url", "TERRACE_BLOB_URL", blob_url,
      "blob store every primary shares: file:///abs/dir, "
      "s3://BUCKET/PREFIX?region=R, gs://BUCKET/PREFIX or "
      "azblob://CONTAINER/PREFIX?account=A (default: DATA/blobs)"),
    S("vault-addr", "TERRACE_VAULT_ADDR", vault_addr,
      "Vault holding the key-encryption key (transit engine), "
      "https://host:8200; unset: the key file"),
    S("vault-token-file", "TERRACE_VAULT_TOKEN_FILE", vault_token_file,
      "file holding a Vault token, read again when Vault refuses it "
      "(default: $VAULT_TOKEN)"),
    S("vault-role-id", "TERRACE_VAULT_ROLE_ID", vault_role_id,
      "Vault AppRole role id (log in instead of a token)"),
    S("vault-secret-id-file", "TERRACE_VAULT_SECRET_ID_FILE",
      vault_secret_id_file, "file holding the AppRole secret id"),
    S("vault-ca-file", "TERRACE_VAULT_CA_FILE", vault_ca_file,
      "CA certificate (PEM) trusted for vault-addr"),
    S("vault-namespace", "TERRACE_VAULT_NAMESPACE", vault_namespace,
      "Vault namespace (Enterprise)"),
    S("vault-mount", "TERRACE_VAULT_MOUNT", vault_mount,
      "path of the transit engine"),
    S("vault-key", "TERRACE_VAULT_KEY", vault_key,
      "name of the transit key (aes256-gcm96)"),
    S("tls", "TERRACE_TLS", tls,
      "on | off (off: TLS ends at the load balancer)"),
    S("tls-cert", "TERRACE_TLS_CERT", tls_cert, "server certificate (PEM)"),
    S("tls-key", "TERRACE_TLS_KEY", tls_key, "server private key (PEM)"),
    S("log-level", "TERRACE_LOG_LEVEL", log_level,
      "debug | info | warn | error"),
    I("threads", "TERRACE_THREADS", threads,
      "HTTP worker threads (default 8; a secondary: 1)"),
    I("db-pool", "TERRACE_DB_POOL", db_pool, "database connections"),
    S("read-cache", "TERRACE_READ_CACHE", read_cache,
      "on | off: a primary keeps token lookups and workspace reads in "
      "memory, exact across primaries (changes are polled from the "
      "database before each use)"),
    I("max-body", "TERRACE_MAX_BODY", max_body, "largest JSON body, bytes"),
    I("max-state", "TERRACE_MAX_STATE", max_state, "largest state file, bytes"),
    I("max-config-size", "TERRACE_MAX_CONFIG_SIZE", max_config_size,
      "largest configuration once unpacked, bytes"),
    I("max-config-ratio", "TERRACE_MAX_CONFIG_RATIO", max_config_ratio,
      "most a configuration may unpack per compressed byte (0: no limit)"),
    I("upload-url-ttl", "TERRACE_UPLOAD_URL_TTL", upload_url_ttl,
      "lifetime of signed upload/download URLs, seconds"),
    I("executors", "TERRACE_EXECUTORS", executors,
      "worker threads running plans and applies (0: none)"),
    S("provider-mirror", "TERRACE_PROVIDER_MIRROR", provider_mirror,
      "filesystem provider mirror directory for runs"),
    S("tofu-bin", "TERRACE_TOFU_BIN", tofu_bin,
      "tofu binary to register when no tool version is (the demo also "
      "looks for one)"),
    S("tool-mirror", "TERRACE_TOOL_MIRROR", tool_mirror,
      "release zip URL ({version}, {os}, {arch}) a missing tool version "
      "is installed from on first use; off: never"),
    I("plan-timeout", "TERRACE_PLAN_TIMEOUT", plan_timeout,
      "longest a plan may run, seconds"),
    I("apply-timeout", "TERRACE_APPLY_TIMEOUT", apply_timeout,
      "longest an apply may run, seconds"),
    I("job-lease", "TERRACE_JOB_LEASE", job_lease,
      "seconds a running job keeps its lease without a heartbeat before "
      "its run is errored"),
    I("blob-gc-grace", "TERRACE_BLOB_GC_GRACE", blob_gc_grace,
      "seconds an unreferenced blob object is kept before garbage "
      "collection removes it (written but not yet recorded objects are "
      "this young)"),
    I("blob-gc-interval", "TERRACE_BLOB_GC_INTERVAL", blob_gc_interval,
      "seconds between blob garbage collection passes of the leader "
      "(0: none)"),
    S("smtp-host", "TERRACE_SMTP_HOST", smtp_host,
      "SMTP server e-mail notifications are sent through (unset: none "
      "are sent)"),
    I("smtp-port", "TERRACE_SMTP_PORT", smtp_port,
      "its port (default 25, or 465 with smtp-tls = tls)"),
    S("smtp-from", "TERRACE_SMTP_FROM", smtp_from,
      "sender address of notification e-mails"),
    S("smtp-user", "TERRACE_SMTP_USER", smtp_user,
      "user to authenticate to the SMTP server as (unset: none)"),
    S("smtp-password-file", "TERRACE_SMTP_PASSWORD_FILE", smtp_password_file,
      "file holding the SMTP user's password"),
    S("smtp-tls", "TERRACE_SMTP_TLS", smtp_tls,
      "off | starttls (required) | tls (implicit, smtps)"),
    S("bwrap", "TERRACE_BWRAP", bwrap,
      "bubblewrap binary for the run sandbox (default: bwrap on PATH; "
      "none: no sandbox)"),
    S("allow-unsandboxed-runs", "TERRACE_ALLOW_UNSANDBOXED_RUNS",
      allow_unsandboxed_runs,
      "on | off: run plans even when the sandbox cannot be used (the "
      "run's code can then read this node's data and keys)"),
    I("run-uid", "TERRACE_RUN_UID", run_uid,
      "user and group id runs execute as when the node starts as root"),
    I("run-memory", "TERRACE_RUN_MEMORY", run_memory,
      "memory a run's processes may use together, MiB"),
    I("run-processes", "TERRACE_RUN_PROCESSES", run_processes,
      "processes and threads a run may have at once"),
    I("run-disk", "TERRACE_RUN_DISK", run_disk,
      "disk a run may fill (working directory and provider cache), MiB"),
    I("run-cpu-time", "TERRACE_RUN_CPU_TIME", run_cpu_time,
      "CPU time one process of a run may use, seconds"),
    I("run-open-files", "TERRACE_RUN_OPEN_FILES", run_open_files,
      "files one process of a run may have open"),
    I("run-gogc", "TERRACE_RUN_GOGC", run_gogc,
      "GOGC given to a run's Go processes (tofu, providers), with a "
      "GOMEMLIMIT of an eighth of run-memory each; 0: set neither"),
    I("header-timeout", "TERRACE_HEADER_TIMEOUT", header_timeout,
      "seconds a new connection has to finish its TLS handshake and send "
      "its first request header"),
    I("idle-timeout", "TERRACE_IDLE_TIMEOUT", idle_timeout,
      "seconds a connection may stay silent once it has sent a request"),
    I("conn-limit", "TERRACE_CONN_LIMIT", conn_limit,
      "open connections at most; a quarter is kept for addresses that "
      "sent a valid token in the last hour"),
    I("conn-per-ip", "TERRACE_CONN_PER_IP", conn_per_ip,
      "open connections per client address (IPv6: per /64); 0: no limit, "
      "needed behind a load balancer, whose address every connection has"),
    S("metrics", "TERRACE_METRICS", metrics,
      "GET /metrics (Prometheus): loopback (only to clients on this host "
      "that came through no proxy) | on (to everyone) | off"),
    S("join-url", "TERRACE_JOIN_URL", join_url,
      "secondary: URL of the primaries (their load balancer) to join"),
    S("join-token", "TERRACE_JOIN_TOKEN", join_token,
      "secondary: the cluster join token (`terrace admin join-token`)"),
    S("url", "TERRACE_AGENT_URL", join_url,
      "agent: URL of the Terrace it serves (a demo, or the primaries' load "
      "balancer)"),
    S("token", "TERRACE_AGENT_TOKEN", agent_token,
      "agent: an agent token of its agent pool (the pool's "
      "authentication-tokens)"),
    I("capacity", "TERRACE_CAPACITY", capacity,
      "secondary, agent: plans and applies run at once"),
    S("ca-file", "TERRACE_CA_FILE", ca_file,
      "secondary, agent: CA certificate (PEM) trusted for join-url (url) "
      "and for the API URL runs report to"),
    I("tool-downloads", "TERRACE_TOOL_DOWNLOADS", tool_downloads,
      "primary: tool binaries sent to secondaries at once; beyond it a "
      "secondary is answered 503 with Retry-After and comes back later"),
    S("node-name", "TERRACE_NODE_NAME", node_name,
      "primary, secondary: the name this node registers in the cluster "
      "(default: host name@listen address)"),
    S("admin-token-file", "TERRACE_ADMIN_TOKEN_FILE", admin_token_file,
      "demo, primary: file (mode 0600) holding the token the first site "
      "admin gets when the database has no user yet (default: a random "
      "one, written to DATA/admin-token)"),
    S("ip-ranges", "TERRACE_IP_RANGES", ip_ranges,
      "address ranges published at GET /api/meta/ip-ranges: "
      "KIND=CIDR[,CIDR];... with KIND api, notifications, sentinel or vcs "
      "(default: empty lists)"),
    S("join-token-file", "TERRACE_JOIN_TOKEN_FILE", join_token_file,
      "primary: file (mode 0600) holding the cluster join token used "
      "when the cluster has none yet (default: a random one)"),
};

/* What a secondary must not hold: it reaches data only through the
 * primaries.  Names not (yet) in the table are skipped. */
static const char *const secondary_refuses[] = {
    "database-url", "db-pool",          "blob-url",        "read-cache",
    "kek-file",     "admin-token-file", "join-token-file",
};

#define NSETTINGS (sizeof(settings) / sizeof(settings[0]))

static const struct setting *find(const char *name)
{
    for (size_t i = 0; i < NSETTINGS; i++)
        if (strcmp(settings[i].name, name) == 0)
            return &settings[i];
    return NULL;
}

static tr_err set(struct cfg *c, const struct setting *s, const char *val,
                  bool *given, struct tr_errbuf *eb)
{
    char *field = (char *)c + s->off;
    given[s - settings] = true;
    if (s->kind == STR) {
        if (strlen(val) >= s->size)
            return tr_fail(eb, TR_ERR_CONFIG, "value for %s is too long",
                           s->name);
        memcpy(field, val, strlen(val) + 1);
        return TR_OK;
    }
    int64_t v;
    if (util_parse_i64(val, &v) != TR_OK || v < 0 ||
        (s->size == sizeof(int) && v > INT_MAX))
        return tr_fail(eb, TR_ERR_CONFIG, "%s must be a non-negative integer",
                       s->name);
    if (s->size == sizeof(int))
        *(int *)field = (int)v;
    else
        *(int64_t *)field = v;
    return TR_OK;
}

static void defaults(struct cfg *c)
{
    memset(c, 0, sizeof(*c));
    strcpy(c->role, "demo");
    strcpy(c->data_dir, "./terrace-data");
    strcpy(c->listen, "127.0.0.1:8443");
    strcpy(c->vault_mount, "transit");
    strcpy(c->tls, "on");
    strcpy(c->read_cache, "on");
    strcpy(c->log_level, "info");
    c->threads = 8;
    c->db_pool = 8;
    c->max_body = 16 * 1024 * 1024;
    c->max_state = 512LL * 1024 * 1024;
    /* Configurations are text plus vendored modules and lock files (a few
     * MiB; the CLI leaves .terraform out), at worst with a packaged
     * artefact or two: 512 MiB unpacked is ample, and as much as the
     * upload itself may be.  Real ones unpack 4-20x, contrived repetitive
     * text 200-400x, zeros 1030x per gzip layer: 500x stops bombs early
     * (archive.h). */
    c->max_config_size = 512LL * 1024 * 1024;
    c->max_config_ratio = 500;
    c->upload_url_ttl = 3600;
    c->executors = 2;
    c->tool_downloads = 2;
    /* the official layout, as Terraform Enterprise installs from
     * (executor/tool_install.h) */
    strcpy(c->tool_mirror, "https://releases.hashicorp.com/terraform/"
                           "{version}/terraform_{version}_{os}_{arch}.zip");
    c->plan_timeout = 2 * 3600;
    c->apply_timeout = 2 * 3600;
    c->job_lease = 30;
    c->blob_gc_grace = 3600;
    c->blob_gc_interval = 600;
    strcpy(c->allow_unsandboxed_runs, "off");
    strcpy(c->metrics, "loopback");
    c->run_uid = 1000000000;
    c->run_memory = 4096;
    c->run_processes = 2048;
    c->run_disk = 20480;
    c->run_cpu_time = 7200;
    c->run_open_files = 4096;
    c->run_gogc = 800;
    c->header_timeout = 10;
    c->idle_timeout = 300;
    c->conn_limit = 4000;
    c->conn_per_ip = 128;
    c->capacity = 2;
    strcpy(c->smtp_tls, "starttls");
}

static char *trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    char *e = s + strlen(s);
    while (e > s && isspace((unsigned char)e[-1]))
        *--e = '\0';
    return s;
}

static tr_err load_file(struct cfg *c, const char *path, bool *given,
                        struct tr_errbuf *eb)
{
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return tr_fail(eb, TR_ERR_CONFIG, "cannot read config file %s", path);
    char line[2048];
    int lineno = 0;
    tr_err e = TR_OK;
    while (e == TR_OK && fgets(line, sizeof(line), f) != NULL) {
        lineno++;
        char *l = trim(line);
        if (*l == '\0' || *l == '#')
            continue;
        char *eq = strchr(l, '=');
        if (eq == NULL) {
            e = tr_fail(eb, TR_ERR_CONFIG, "%s:%d: expected key = value", path,
                        lineno);
            break;
        }
        *eq = '\0';
        char *key = trim(l), *val = trim(eq + 1);
        size_t vl = strlen(val);
        if (vl >= 2 && val[0] == '"' && val[vl - 1] == '"') {
            val[vl - 1] = '\0';
            val++;
        }
        const struct setting *s = find(key);
        if (s == NULL)
            e = tr_fail(eb, TR_ERR_CONFIG, "%s:%d: unknown setting %s", path,
                        lineno, key);
        else
            e = set(c, s, val, given, eb);
    }
    fclose(f);
    return e;
}

/* The secondary's settings: a join URL and token, no data settings; an
 * agent's the same with its own names: --url and --token. */
static tr_err check_secondary(const struct cfg *c, const bool *given,
                              struct tr_errbuf *eb)
{
    for (size_t i = 0; i < sizeof(secondary_refuses) / sizeof(char *); i++) {
        const struct setting *s = find(secondary_refuses[i]);
        if (s != NULL && given[s - settings])
            return tr_fail(
                eb, TR_ERR_CONFIG,
                "%s holds no database, blob or key "
                "settings: remove %s (config file key, %s or --%s); it reaches "
                "data through the primaries at --%s",
                strcmp(c->role, "agent") == 0 ? "an agent" : "a secondary",
                s->name, s->env, s->name,
                strcmp(c->role, "agent") == 0 ? "url" : "join-url");
    }
    bool agent = strcmp(c->role, "agent") == 0;
    const struct setting *other[] = {find(agent ? "join-url" : "url"),
                                     find(agent ? "join-token" : "token")};
    for (int i = 0; i < 2; i++)
        if (given[other[i] - settings])
            return tr_fail(eb, TR_ERR_CONFIG,
                           "--%s is not a setting of the %s role: %s",
                           other[i]->name, c->role,
                           agent ? "an agent takes --url and --token"
                                 : "--url and --token are for agents");
    if (agent && (c->join_url[0] == '\0' || c->agent_token[0] == '\0'))
        return tr_fail(eb, TR_ERR_CONFIG,
                       "the agent role needs --url and --token (an agent "
                       "token of its agent pool)");
    if (!agent && (c->join_url[0] == '\0' || c->join_token[0] == '\0'))
        return tr_fail(eb, TR_ERR_CONFIG,
                       "the secondary role needs --join-url and --join-token "
                       "(the token: `terrace admin join-token` on a primary)");
    if (strncmp(c->join_url, "https://", 8) != 0 &&
        strncmp(c->join_url, "http://", 7) != 0)
        return tr_fail(eb, TR_ERR_CONFIG,
                       "%s must start with https:// or http://",
                       agent ? "url" : "join-url");
    if (c->capacity < 1 || c->capacity > 64)
        return tr_fail(eb, TR_ERR_CONFIG, "capacity must be 1..64");
    return TR_OK;
}

tr_err cfg_load(struct cfg *c, int argc, char **argv, struct tr_errbuf *eb)
{
    defaults(c);
    bool given[NSETTINGS] = {false};
    const char *file = getenv("TERRACE_CONFIG");
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
            return tr_fail(eb, TR_ERR_CONFIG, "help");
        if (strcmp(argv[i], "--config") == 0 && i + 1 < argc)
            file = argv[i + 1];
        else if (strncmp(argv[i], "--config=", 9) == 0)
            file = argv[i] + 9;
    }
    tr_err e;
    if (file != NULL && *file != '\0' &&
        (e = load_file(c, file, given, eb)) != TR_OK)
        return e;
    for (size_t i = 0; i < NSETTINGS; i++) {
        const char *v = getenv(settings[i].env);
        if (v != NULL && (e = set(c, &settings[i], v, given, eb)) != TR_OK)
            return e;
    }
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (strncmp(arg, "--", 2) != 0)
            return tr_fail(eb, TR_ERR_CONFIG, "unexpected argument %s", arg);
        char name[64];
        const char *val = strchr(arg, '=');
        size_t nl = val ? (size_t)(val - arg - 2) : strlen(arg + 2);
        if (nl >= sizeof(name))
            return tr_fail(eb, TR_ERR_CONFIG, "unknown flag %s", arg);
        memcpy(name, arg + 2, nl);
        name[nl] = '\0';
        if (val != NULL) {
            val++;
        } else {
            if (i + 1 >= argc)
                return tr_fail(eb, TR_ERR_CONFIG, "flag --%s needs a value",
                               name);
            val = argv[++i];
        }
        if (strcmp(name, "config") == 0)
            continue;
        const struct setting *s = find(name);
        if (s == NULL)
            return tr_fail(eb, TR_ERR_CONFIG, "unknown flag --%s", name);
        if ((e = set(c, s, val, given, eb)) != TR_OK)
            return e;
    }
    if (strcmp(c->role, "demo") != 0 && strcmp(c->role, "primary") != 0 &&
        strcmp(c->role, "secondary") != 0 && strcmp(c->role, "agent") != 0)
        return tr_fail(eb, TR_ERR_CONFIG,
                       "role must be demo, primary, secondary or agent");
    if ((strcmp(c->role, "secondary") == 0 || strcmp(c->role, "agent") == 0) &&
        (e = check_secondary(c, given, eb)) != TR_OK)
        return e;
    /* a secondary's listener answers health checks and metrics only: one
     * HTTP thread (and its malloc arena) is enough */
    if (strcmp(c->role, "secondary") == 0 && !given[find("threads") - settings])
        c->threads = 1;
    if (strcmp(c->role, "primary") == 0 && c->database_url[0] == '\0')
        return tr_fail(eb, TR_ERR_CONFIG,
                       "the primary role needs --database-url");
    if (strchr(c->listen, ':') == NULL)
        return tr_fail(eb, TR_ERR_CONFIG, "listen must be HOST:PORT");
    if (strcmp(c->tls, "on") != 0 && strcmp(c->tls, "off") != 0)
        return tr_fail(eb, TR_ERR_CONFIG, "tls must be on or off");
    if (strcmp(c->read_cache, "on") != 0 && strcmp(c->read_cache, "off") != 0)
        return tr_fail(eb, TR_ERR_CONFIG, "read-cache must be on or off");
    if (c->threads < 1 || c->threads > 256)
        return tr_fail(eb, TR_ERR_CONFIG, "threads must be 1..256");
    if (c->executors > 64)
        return tr_fail(eb, TR_ERR_CONFIG, "executors must be 0..64");
    if (c->tool_downloads < 1 || c->tool_downloads > 1024)
        return tr_fail(eb, TR_ERR_CONFIG, "tool-downloads must be 1..1024");
    if (c->max_config_size < 1)
        return tr_fail(eb, TR_ERR_CONFIG,
                       "max-config-size must be at least 1 byte");
    if (c->plan_timeout < 1 || c->apply_timeout < 1)
        return tr_fail(eb, TR_ERR_CONFIG, "timeouts must be at least 1 s");
    if (c->job_lease < 3 || c->job_lease > 3600)
        return tr_fail(eb, TR_ERR_CONFIG, "job-lease must be 3..3600 s");
    if (c->blob_gc_grace < 0 || c->blob_gc_interval < 0 ||
        c->blob_gc_interval > 86400 * 7)
        return tr_fail(eb, TR_ERR_CONFIG,
                       "blob-gc-grace must be at least 0 s and "
                       "blob-gc-interval 0..604800 s");
    if (strcmp(c->allow_unsandboxed_runs, "on") != 0 &&
        strcmp(c->allow_unsandboxed_runs, "off") != 0)
        return tr_fail(eb, TR_ERR_CONFIG,
                       "allow-unsandboxed-runs must be on or off");
    if (c->run_uid < 1 || c->run_uid > 4294967294LL)
        return tr_fail(eb, TR_ERR_CONFIG,
                       "run-uid must be 1..4294967294 (never root)");
    if (c->header_timeout < 1 || c->header_timeout > 86400 ||
        c->idle_timeout < 1 || c->idle_timeout > 86400)
        return tr_fail(eb, TR_ERR_CONFIG,
                       "header-timeout and idle-timeout must be 1..86400 s");
    if (c->conn_limit < 16 || c->conn_limit > 1000000)
        return tr_fail(eb, TR_ERR_CONFIG, "conn-limit must be 16..1000000");
    if (strcmp(c->metrics, "loopback") != 0 && strcmp(c->metrics, "on") != 0 &&
        strcmp(c->metrics, "off") != 0)
        return tr_fail(eb, TR_ERR_CONFIG,
                       "metrics must be loopback, on or off");
    if (strcmp(c->smtp_tls, "off") != 0 &&
        strcmp(c->smtp_tls, "starttls") != 0 && strcmp(c->smtp_tls, "tls") != 0)
        return tr_fail(eb, TR_ERR_CONFIG,
                       "smtp-tls must be off, starttls or tls");
    if (c->smtp_port < 0 || c->smtp_port > 65535)
        return tr_fail(eb, TR_ERR_CONFIG, "smtp-port must be 1..65535");
    if (c->smtp_host[0] != '\0' && c->smtp_from[0] == '\0')
        return tr_fail(eb, TR_ERR_CONFIG,
                       "smtp-from is required with smtp-host");
    if ((e = ip_ranges_parse(c->ip_ranges, NULL, eb)) != TR_OK)
        return e;
    return TR_OK;
}

void cfg_node_name(const struct cfg *c, char *out, size_t n)
{
    if (c->node_name[0] != '\0') {
        snprintf(out, n, "%s", c->node_name);
        return;
    }
    char host[256];
    if (gethostname(host, sizeof(host)) != 0)
        snprintf(host, sizeof(host), "localhost");
    host[sizeof(host) - 1] = '\0';
    snprintf(out, n, "%s@%s", host, c->listen);
}

void cfg_usage(const char *prog)
{
    fprintf(stderr,
            "usage: %s [--config FILE] [--SETTING VALUE ...]\n\n"
            "settings (flag, environment variable, meaning):\n",
            prog);
    for (size_t i = 0; i < NSETTINGS; i++)
        fprintf(stderr, "  --%-16s %-24s %s\n", settings[i].name,
                settings[i].env, settings[i].help);
    fprintf(stderr,
            "\nroles: demo (one process, SQLite), primary (--database-url), "
            "secondary (a cluster worker: --join-url, --join-token), agent "
            "(a worker of one agent pool: --url, --token)\n");
    fprintf(stderr, "\nA config file holds \"setting = value\" lines.\n");
}
