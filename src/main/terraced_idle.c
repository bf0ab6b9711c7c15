/*
 * terraced_idle.c - terraced-idle, the idle secondary (node/idle.h).
 * terraced --role secondary|agent execs it once joined; it is not meant
 * to be started by hand.
 *
 *   terraced-idle --role secondary|agent --join-url URL --data-dir DIR
 *                 [--node-id ID] [--ca-file CA] [--listen HOST:PORT
 *                 [--listen-fd FD] [--tls-cert PEM --tls-key PEM]]
 *                 [--log-level L] -- TERRACED ARGS...
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "node/idle.h"

static int usage(void)
{
    fprintf(stderr,
            "usage: terraced-idle --role secondary|agent --join-url URL "
            "--data-dir DIR [--node-id ID] [--ca-file CA] [--listen "
            "HOST:PORT [--listen-fd FD] [--tls-cert PEM --tls-key PEM]] "
            "[--log-level L] -- "
            "TERRACED ARGS...\n"
            "terraced --role secondary starts it once it has joined; it is "
            "not meant to be started by hand.\n");
    return 2;
}

int main(int argc, char **argv)
{
    struct idle_opts o = {.listen_fd = -1};
    const char *role = NULL;
    int i = 1;
    for (; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--") == 0) {
            i++;
            break;
        }
        if (i + 1 >= argc)
            return usage();
        const char *v = argv[++i];
        if (strcmp(a, "--role") == 0)
            role = v;
        else if (strcmp(a, "--join-url") == 0)
            o.join_url = v;
        else if (strcmp(a, "--data-dir") == 0)
            o.data_dir = v;
        else if (strcmp(a, "--node-id") == 0)
            o.node_id = v;
        else if (strcmp(a, "--ca-file") == 0)
            o.ca_file = v;
        else if (strcmp(a, "--listen") == 0)
            o.listen = v;
        else if (strcmp(a, "--listen-fd") == 0) {
            char *end = NULL;
            long fd = strtol(v, &end, 10);
            if (end == v || *end != '\0' || fd < 3 || fd > 65535)
                return usage();
            o.listen_fd = (int)fd;
        } else if (strcmp(a, "--tls-cert") == 0)
            o.tls_cert = v;
        else if (strcmp(a, "--tls-key") == 0)
            o.tls_key = v;
        else if (strcmp(a, "--log-level") == 0) {
            int lv = log_parse_level(v);
            if (lv < 0)
                return usage();
            log_set_level((enum log_level)lv);
        } else
            return usage();
    }
    if (role == NULL ||
        (strcmp(role, "secondary") != 0 && strcmp(role, "agent") != 0) ||
        o.join_url == NULL || o.data_dir == NULL || i >= argc)
        return usage();
    o.agent = strcmp(role, "agent") == 0;
    o.worker = argv + i;
    return idle_run(&o);
}
