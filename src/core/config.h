/*
 * config.h - daemon settings from a config file, TERRACE_* environment
 * variables and command-line flags (flags win over env, env over file).
 *
 * Every setting has one name used in all three places: the flag
 * --data-dir, the variable TERRACE_DATA_DIR and the file key data-dir
 * ("key = value" lines, '#' comments).
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#ifndef TR_CONFIG_H
#define TR_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

struct cfg {
    char role[16]; /* demo | primary | secondary | agent */
    char data_dir[512];
    char listen[128];        /* HOST:PORT */
    char external_url[512];  /* https://host:port as clients reach us */
    char database_url[1024]; /* libpq conninfo (primary) */
    char kek_file[512];      /* shared KEK file, or "" for DATA/kek */
    char blob_url[1024];     /* file:///abs/dir, or "" for DATA/blobs */
    /* Vault transit as the KEK (crypto/keys.h); "" vault_addr: a file */
    char vault_addr[512];
    char vault_token_file[512]; /* or VAULT_TOKEN */
    char vault_role_id[256];
    char vault_secret_id_file[512];
    char vault_ca_file[512];
    char vault_namespace[256];
    char vault_key[128];
    char vault_mount[128];
    char tls_cert[512]; /* PEM; default DATA/tls/server.pem */
    char tls_key[512];
    char tls[8];        /* on | off */
    char read_cache[8]; /* on | off: a primary's read cache */
    char log_level[16];
    int threads;               /* HTTP worker threads */
    int db_pool;               /* database connections */
    int64_t max_body;          /* JSON request bodies, bytes */
    int64_t max_state;         /* state files, bytes */
    int64_t max_config_size;   /* configurations unpacked, bytes */
    int max_config_ratio;      /* unpacked per compressed byte (0: any) */
    int64_t upload_url_ttl;    /* signed URL lifetime, seconds */
    int executors;             /* executor worker threads (0: none) */
    char provider_mirror[512]; /* filesystem provider mirror, or "" */
    char tofu_bin[512];        /* tofu the demo registers, or "" */
    char tool_mirror[512];     /* release zip URL template, or "off" */
    int64_t plan_timeout;      /* seconds */
    int64_t apply_timeout;     /* seconds */
    int64_t job_lease;         /* seconds a job's lease lasts unrenewed */
    int64_t blob_gc_grace;     /* unreferenced objects kept this long, s */
    int64_t blob_gc_interval;  /* between garbage collections, s (0: off) */
    /* runs: the sandbox and its limits */
    char bwrap[512];                /* bubblewrap; "" = on PATH; "none" = off */
    char allow_unsandboxed_runs[8]; /* on | off */
    int64_t run_uid;                /* uid and gid of runs (node is root) */
    int64_t run_memory;             /* MiB per run */
    int64_t run_processes;          /* processes and threads per run */
    int64_t run_disk;               /* MiB per run */
    int64_t run_cpu_time;           /* CPU seconds per process */
    int64_t run_open_files;         /* per process */
    int64_t run_gogc;               /* GOGC of a run's processes; 0: unset */
    int64_t header_timeout;         /* handshake + first request header, s */
    int64_t idle_timeout;           /* silence allowed after a request, s */
    int conn_limit;                 /* open connections at most */
    int conn_per_ip;                /* per client address (0: no limit) */
    char metrics[16];               /* /metrics: loopback | on | off */
    /* secondary: the cluster it joins (node/secondary.h) */
    char join_url[512];         /* primaries' URL, through the load balancer */
    char join_token[256];       /* secret: never logged */
    char agent_token[256];      /* agent: its agent token; never logged */
    int capacity;               /* jobs run at once */
    char ca_file[512];          /* CA trusted for join-url and runs' API URL */
    char node_name[128];        /* registry name; "": host@listen */
    char admin_token_file[512]; /* first admin's token, or "": random */
    char join_token_file[512];  /* first join token, or "": random */
    int tool_downloads;         /* tool binaries sent at once (primary) */
    /* e-mail notifications (domain/notify.c): "" smtp_host: none sent */
    char smtp_host[256];
    int smtp_port;                /* 0: 25, or 465 with smtp-tls = tls */
    char smtp_from[256];          /* envelope and From: address */
    char smtp_user[256];          /* "": no authentication */
    char smtp_password_file[512]; /* file holding the password (secret) */
    char smtp_tls[16];            /* off | starttls | tls */
    /* GET /api/meta/ip-ranges (core/ip_ranges.h); "": empty lists */
    char ip_ranges[2048];
};

/* Defaults, then file, env and argv.  Unknown flags or keys are errors.
 * argv[0] is skipped.  On --help, returns TR_ERR_CONFIG with eb "help". */
tr_err cfg_load(struct cfg *c, int argc, char **argv, struct tr_errbuf *eb);
void cfg_usage(const char *prog);
/* The name the node registers in the cluster: node-name, or host@listen
 * (unique among the nodes of one machine). */
void cfg_node_name(const struct cfg *c, char *out, size_t n);

#endif
