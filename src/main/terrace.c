/*
 * terrace.c - the operator CLI.
 *
 *   terrace demo [--data-dir DIR] [--listen HOST:PORT]
 *   terrace admin ...        (see `terrace admin --help`)
 *   terrace health [--url URL] [--ca-file FILE]
 *   terrace lb haproxy-config ...   (see `terrace lb --help`)
 *   terrace cluster up|status|scale|kill|drain|down ...
 *
 * `terrace demo` runs a demo node in the foreground and prints how to
 * point tofu at it.  It creates an organization "demo" on first start.
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#include "core/curl_load.h"
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "core/config.h"
#include "core/log.h"
#include "node/node.h"
#include "store/store.h"

static void usage(void)
{
    fprintf(stderr,
            "usage: terrace <command> [options]\n\n"
            "commands:\n"
            "  demo [--data-dir DIR] [--listen HOST:PORT]\n"
            "        run a one-process demo in the foreground\n"
            "        (defaults: ./terrace-data, 127.0.0.1:8443)\n"
            "  admin ...\n"
            "        users, tokens and organizations; "
            "see terrace admin --help\n"
            "  health [--url URL] [--ca-file FILE]\n"
            "        check a node's readiness (database and blob store)\n"
            "  lb haproxy-config --primary URL... [--listen ADDR:PORT]\n"
            "        [--cert PEM] [--ca-file F]\n"
            "        print an HAProxy configuration for the primaries\n"
            "  cluster up|status|scale|kill|drain|down --dir D ...\n"
            "        a local cluster on loopback behind HAProxy; see\n"
            "        terrace cluster --help\n");
}

static void write_cli_config(const char *path, const char *host,
                             const char *token)
{
    FILE *f = fopen(path, "w");
    if (f == NULL)
        return;
    fprintf(f, "credentials \"%s\" {\n  token = \"%s\"\n}\n", host, token);
    fclose(f);
}

static void demo_ready(const struct terrace_server *srv, const char *token_path,
                       void *arg)
{
    (void)arg;
    char data[PATH_MAX], token[256] = "";
    if (realpath(srv->cfg.data_dir, data) == NULL)
        snprintf(data, sizeof(data), "%s", srv->cfg.data_dir);
    FILE *f = fopen(token_path, "r");
    if (f != NULL) {
        if (fgets(token, sizeof(token), f) == NULL)
            token[0] = '\0';
        fclose(f);
        token[strcspn(token, "\r\n")] = '\0';
    }
    struct arena *a = arena_new();
    struct st_org org;
    struct st_user admin;
    if (store_org_get(srv->db, a, "demo", &org, NULL) == TR_ERR_NOT_FOUND &&
        store_user_by_name(srv->db, a, "admin", &admin, NULL) == TR_OK)
        store_org_create(srv->db, a, "demo", "admin@localhost", NULL, admin.id,
                         NULL, NULL);
    arena_destroy(a);
    const char *host = strstr(srv->external_url, "://");
    host = host ? host + 3 : srv->external_url;
    char cli_cfg[PATH_MAX + 16];
    snprintf(cli_cfg, sizeof(cli_cfg), "%s/tofu.tfrc", data);
    if (token[0] != '\0')
        write_cli_config(cli_cfg, host, token);
    printf("\nTerrace demo is running.\n\n"
           "  URL:          %s\n"
           "  Admin token:  %s\n"
           "                (user \"admin\"; also in %s/admin-token)\n"
           "  CA cert:      %s/tls/ca.pem\n"
           "  Organization: demo\n\n"
           "Point tofu at it (in another shell):\n\n"
           "  export TF_CLI_CONFIG_FILE=%s\n"
           "  export SSL_CERT_FILE=%s/tls/ca.pem\n\n"
           "and put this in your configuration:\n\n"
           "  terraform {\n"
           "    cloud {\n"
           "      hostname     = \"%s\"\n"
           "      organization = \"demo\"\n"
           "      workspaces { name = \"my-workspace\" }\n"
           "    }\n"
           "  }\n\n"
           "Then: tofu init && tofu apply.  Stop the demo with Ctrl-C; "
           "data stays in %s.\n\n",
           srv->external_url, token, data, data, cli_cfg, data, host, data);
    fflush(stdout);
}

static int cmd_demo(int argc, char **argv)
{
    char *args[16];
    int n = 0;
    args[n++] = "terrace-demo";
    args[n++] = "--role";
    args[n++] = "demo";
    for (int i = 1; i < argc && n < 14; i++) {
        bool known = strcmp(argv[i], "--data-dir") == 0 ||
                     strcmp(argv[i], "--listen") == 0 ||
                     strcmp(argv[i], "--external-url") == 0 ||
                     strcmp(argv[i], "--log-level") == 0;
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage();
            return 0;
        }
        if (!known || i + 1 >= argc) {
            fprintf(stderr, "terrace demo: unexpected argument %s\n", argv[i]);
            return 2;
        }
        args[n++] = argv[i];
        args[n++] = argv[++i];
    }
    args[n] = NULL;
    struct cfg cfg;
    struct tr_errbuf eb = {{0}};
    tr_err e = cfg_load(&cfg, n, args, &eb);
    if (e != TR_OK) {
        fprintf(stderr, "terrace demo: %s\n", tr_errbuf_msg(&eb, e));
        return 2;
    }
    int lvl = log_parse_level(cfg.log_level);
    log_set_level(lvl < 0 ? LOG_INFO : (enum log_level)lvl);
    e = node_run(&cfg, demo_ready, NULL, &eb);
    if (e != TR_OK) {
        fprintf(stderr, "terrace demo: %s\n", tr_errbuf_msg(&eb, e));
        return 1;
    }
    return 0;
}

static size_t sink(char *p, size_t size, size_t n, void *arg)
{
    (void)p;
    (void)arg;
    return size * n;
}

static int cmd_health(int argc, char **argv)
{
    const char *url = "https://127.0.0.1:8443";
    const char *ca = NULL;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--url") == 0)
            url = argv[i + 1];
        else if (strcmp(argv[i], "--ca-file") == 0)
            ca = argv[i + 1];
    }
    char full[1024];
    snprintf(full, sizeof(full), "%s/_health_check?full=1", url);
    CURL *c = curl_easy_init();
    if (c == NULL)
        return 1;
    curl_easy_setopt(c, CURLOPT_URL, full);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 10L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, sink);
    if (ca != NULL)
        curl_easy_setopt(c, CURLOPT_CAINFO, ca);
    CURLcode rc = curl_easy_perform(c);
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(c);
    if (rc != CURLE_OK) {
        fprintf(stderr, "terrace health: %s\n", curl_easy_strerror(rc));
        return 1;
    }
    printf("%s: %s\n", url, status == 200 ? "ready" : "not ready");
    return status == 200 ? 0 : 1;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage();
        return 2;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "demo") == 0)
        return cmd_demo(argc - 1, argv + 1);
    if (strcmp(cmd, "admin") == 0)
        return cli_admin(argc - 1, argv + 1);
    if (strcmp(cmd, "lb") == 0)
        return cli_lb(argc - 1, argv + 1);
    if (strcmp(cmd, "cluster") == 0)
        return cli_cluster(argc - 1, argv + 1);
    if (strcmp(cmd, "health") == 0)
        return cmd_health(argc - 1, argv + 1);
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "help") == 0) {
        usage();
        return 0;
    }
    fprintf(stderr, "terrace: unknown command %s\n", cmd);
    usage();
    return 2;
}
