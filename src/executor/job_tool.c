/*
 * job_tool.c - the tool binary of a claimed job (see job_tool.h).
 *
 * A run asks for "latest" or a version (the workspace's terraform-version,
 * which `terraform init` sets to the CLI's own).  A registered, enabled
 * version is used as it is; an exact version that is not registered is
 * installed from tool-mirror into DATA/tools and registered as official,
 * once: concurrent claims of the same version wait for the first
 * install (tool_install.c's lock) and registering twice is a harmless
 * conflict.  A registered official version whose binary is missing on
 * this node (another primary installed it) is installed here again and
 * must hash to the registered sha256.
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#include "executor/job_tool.h"

#include <string.h>
#include <unistd.h>

#include "core/log.h"
#include "domain/run.h"
#include "executor/tool_install.h"
#include "store/store.h"

struct tick_ctx {
    struct terrace_server *srv;
    const char *job_id;
    int64_t lease_ms;
};

/* Keeps the job's lease while a download runs; stops on a cancel. */
static int tick(void *ctx)
{
    struct tick_ctx *t = ctx;
    struct arena *a = arena_new();
    int cancel = 0;
    tr_err e = run_heartbeat(t->srv, a, t->job_id, t->lease_ms, &cancel, NULL);
    arena_destroy(a);
    return e != TR_OK || cancel != 0;
}

void job_tool_log(struct terrace_server *srv, const char *job_id,
                  const char *text)
{
    struct arena *a = arena_new();
    struct tr_errbuf eb = {{0}};
    tr_err e = store_log_append(srv->db, srv->keys, a, job_id, text,
                                strlen(text), -1, &eb);
    if (e != TR_OK)
        log_warn("job %s: cannot write its log: %s", job_id,
                 tr_errbuf_msg(&eb, e));
    arena_destroy(a);
}

/* The host part of a URL, for messages. */
static const char *url_host(struct arena *a, const char *url)
{
    const char *p = strstr(url, "://");
    p = p != NULL ? p + 3 : url;
    return arena_strndup(a, p, strcspn(p, "/"));
}

/* Installs version into this node's tools directory. */
static tr_err install(struct terrace_server *srv, struct arena *a,
                      const char *job_id, int64_t lease_ms, const char *version,
                      const char **path, const char **sha256,
                      struct tr_errbuf *eb)
{
    const char *product = NULL, *zip = NULL, *sums = NULL;
    tr_err e = tool_install_urls(a, srv->cfg.tool_mirror, version, &product,
                                 &zip, &sums, eb);
    if (e != TR_OK)
        return e;
    job_tool_log(srv, job_id,
                 arena_printf(a, "Terrace: installing %s %s from %s\n", product,
                              version, url_host(a, zip)));
    struct tick_ctx t = {srv, job_id, lease_ms};
    struct tool_install_req req = {
        .mirror = srv->cfg.tool_mirror,
        .dir = arena_printf(a, "%s/tools", srv->cfg.data_dir),
        .version = version,
        .tick = tick,
        .tick_ctx = &t,
    };
    e = tool_install(a, &req, path, sha256, eb);
    if (e == TR_OK) {
        log_info("job %s: installed %s %s at %s", job_id, product, version,
                 *path);
        job_tool_log(srv, job_id,
                     arena_printf(a, "Terrace: installed %s %s (sha256 %s)\n",
                                  product, version, *sha256));
    }
    return e;
}

/* No registered version matches want: install it if it is an exact
 * version and installs are on, and register it. */
static tr_err install_missing(struct terrace_server *srv, struct arena *a,
                              const char *job_id, int64_t lease_ms,
                              const char *want, struct tr_errbuf *eb)
{
    bool latest = want == NULL || *want == '\0' || strcmp(want, "latest") == 0;
    const char *fix = "register one with terrace admin tool-versions add";
    if (latest || !store_tool_valid_version(want))
        return tr_fail(eb, TR_ERR_NOT_FOUND,
                       "no registered tool version matches \"%s\"; %s",
                       latest ? "latest" : want, fix);
    struct st_tool reg;
    if (store_tool_by_version(srv->db, a, want, &reg, NULL) == TR_OK)
        return tr_fail(eb, TR_ERR_NOT_FOUND,
                       "tool version %s is disabled; enable it or choose "
                       "another version for the workspace",
                       want);
    if (!tool_install_enabled(srv->cfg.tool_mirror))
        return tr_fail(eb, TR_ERR_NOT_FOUND,
                       "tool version %s is not registered and installs "
                       "from a release mirror are off (tool-mirror); %s",
                       want, fix);
    const char *path = NULL, *sha = NULL;
    struct tr_errbuf why = {{0}};
    tr_err e = install(srv, a, job_id, lease_ms, want, &path, &sha, &why);
    if (e != TR_OK)
        return tr_fail(eb, TR_ERR_NOT_FOUND,
                       "tool version %s is not registered and could not be "
                       "installed: %s",
                       want, tr_errbuf_msg(&why, e));
    struct st_tool in = {.version = want,
                         .path = path,
                         .sha256 = sha,
                         .enabled = true,
                         .official = true};
    e = store_tool_create(srv->db, a, &in, NULL, eb);
    return e == TR_ERR_CONFLICT ? TR_OK : e; /* another claim registered it */
}

tr_err job_tool_resolve(struct terrace_server *srv, struct arena *a,
                        const char *job_id, int64_t lease_ms, const char *want,
                        const char **path, const char **sha256,
                        const char **version, struct tr_errbuf *eb)
{
    tr_err e = store_tool_resolve(srv->db, a, want, path, sha256, version, eb);
    if (e == TR_ERR_NOT_FOUND) {
        e = install_missing(srv, a, job_id, lease_ms, want, eb);
        if (e == TR_OK)
            e = store_tool_resolve(srv->db, a, want, path, sha256, version, eb);
    }
    if (e != TR_OK || access(*path, X_OK) == 0)
        return e;
    /* registered, but not on this node: an official (mirror) version is
     * installed here too, and must be the same binary */
    struct st_tool reg;
    if (store_tool_by_version(srv->db, a, *version, &reg, NULL) != TR_OK ||
        !reg.official || !tool_install_enabled(srv->cfg.tool_mirror))
        return TR_OK; /* the executor reports the missing binary */
    const char *p = NULL, *sha = NULL;
    struct tr_errbuf why = {{0}};
    e = install(srv, a, job_id, lease_ms, *version, &p, &sha, &why);
    if (e != TR_OK)
        return tr_fail(eb, TR_ERR_NOT_FOUND,
                       "tool version %s is not on this node and could not be "
                       "installed: %s",
                       *version, tr_errbuf_msg(&why, e));
    if (strcasecmp(sha, *sha256) != 0)
        return tr_fail(eb, TR_ERR_NOT_FOUND,
                       "tool version %s from the mirror (sha256 %s) is not "
                       "the registered binary (sha256 %s)",
                       *version, sha, *sha256);
    *path = p;
    return TR_OK;
}
