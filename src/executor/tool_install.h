/*
 * tool_install.h - installs a missing tofu or terraform version on this
 * node from a release mirror, as Terraform Enterprise does on first use.
 *
 * The mirror is a URL template for the release zip, with {version}, {os}
 * and {arch} filled in ("linux", "amd64" or "arm64").  The default
 * (tool-mirror in config.c) is the official Terraform layout,
 *
 *   https://releases.hashicorp.com/terraform/{version}/
 *       terraform_{version}_{os}_{arch}.zip
 *
 * and OpenTofu's GitHub releases have the same shape
 * (.../download/v{version}/tofu_{version}_{os}_{arch}.zip).  The zip's
 * file name up to its first '_' names the product and the binary inside
 * it ("terraform", "tofu"); the checksums are
 * <product>_<version>_SHA256SUMS beside the zip.  The zip must match its
 * line there before anything is unpacked.  (The SHA256SUMS come from the
 * same mirror: they catch a damaged download, not a hostile mirror; point
 * the template at a mirror you trust.)
 *
 * The binary lands in DIR/<product>-<version>/<product>, written under a
 * temporary name and renamed, so a reader sees the whole file or none.
 * Installs of one version on one node are serialised by a lock file; the
 * second finds the first's binary and only hashes it.
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#ifndef TR_TOOL_INSTALL_H
#define TR_TOOL_INSTALL_H

#include <stdbool.h>

#include "core/arena.h"
#include "core/err.h"

/* Called every few seconds while downloading; nonzero aborts the install
 * (TR_ERR_CONFLICT "install canceled"). */
typedef int (*tool_install_tick)(void *ctx);

struct tool_install_req {
    const char *mirror;     /* URL template; "" or "off": installs are off */
    const char *dir;        /* where tools are installed (created) */
    const char *version;    /* MAJOR.MINOR.PATCH[-pre] */
    tool_install_tick tick; /* nullable */
    void *tick_ctx;
};

/* True when mirror names a usable template (not "", not "off"). */
bool tool_install_enabled(const char *mirror);

/* The product ("terraform", "tofu") and the zip and SHA256SUMS URLs the
 * template gives for version, in a.  TR_ERR_CONFIG for a template that is
 * not an http(s) URL of a <product>_... .zip, TR_ERR_INVALID for a version
 * that is not a plain semantic version. */
tr_err tool_install_urls(struct arena *a, const char *mirror,
                         const char *version, const char **product,
                         const char **zip_url, const char **sums_url,
                         struct tr_errbuf *eb);

/* Downloads, checks and unpacks the version (see above).  *path (absolute)
 * and *sha256 (of the binary, lower-case hex) live in a.  Messages name
 * the URL and what failed. */
tr_err tool_install(struct arena *a, const struct tool_install_req *req,
                    const char **path, const char **sha256,
                    struct tr_errbuf *eb);

#endif
