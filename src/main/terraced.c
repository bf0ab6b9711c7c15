/*
 * terraced.c - the Terrace daemon.
 *
 *   terraced --role demo|primary --data-dir DIR --listen HOST:PORT
 *            --external-url URL [--config FILE] [--database-url URL] ...
 *   terraced --role secondary --join-url URL --join-token T
 *            [--capacity N] [--ca-file CA] --data-dir DIR
 *   terraced --role agent --url URL --token AGENT_TOKEN
 *            [--capacity N] [--ca-file CA] --data-dir DIR
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/config.h"
#include "core/fault.h"
#include "core/log.h"
#include "node/node.h"
#include "node/secondary.h"

int main(int argc, char **argv)
{
    struct cfg cfg;
    struct tr_errbuf eb = {{0}};
    tr_err e = cfg_load(&cfg, argc, argv, &eb);
    if (e != TR_OK) {
        if (strcmp(eb.msg, "help") == 0) {
            cfg_usage("terraced");
            return 0;
        }
        fprintf(stderr, "terraced: %s\n", tr_errbuf_msg(&eb, e));
        return 2;
    }
    log_set_level((enum log_level)(log_parse_level(cfg.log_level) < 0
                                       ? LOG_INFO
                                       : log_parse_level(cfg.log_level)));
    const char *fault = getenv("TERRACE_FAULT"); /* tests only: fault.h */
    if (fault != NULL && fault[0] != '\0') {
        if (!fault_arm_spec(fault)) {
            fprintf(stderr, "terraced: TERRACE_FAULT must be site:n\n");
            return 2;
        }
        log_warn("fault injection armed: %s", fault);
    }
    secondary_set_argv(argv); /* a secondary's workers start as it did */
    e = node_run(&cfg, NULL, NULL, &eb);
    if (e != TR_OK) {
        log_error("%s", tr_errbuf_msg(&eb, e));
        return 1;
    }
    return 0;
}
