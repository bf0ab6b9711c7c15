/*
 * blob_copy.c - `terrace admin blob copy --to URL`: copies every object
 * of a node's blob store to another blob URL, for moving from the demo's
 * directory to object storage.
 *
 *   terrace admin blob copy --to URL [--config F] [--data-dir D]
 *                                    [--blob-url U] [other node settings]
 *
 * The source is the store the node's settings name (as terraced reads
 * them: flags, TERRACE_* variables, --config file): --blob-url, else
 * DATA/blobs.  Objects are copied raw, sealed bytes as they are, so no
 * key is needed and the copy reads back under the same key-encryption
 * key.  Each object is verified after the copy by reading it back from
 * the destination and comparing its SHA-256 with the source's.  An
 * object already at the destination with the same size and SHA-256 is
 * skipped, so an interrupted copy is resumed by running it again.
 * Prints counts and bytes; exits 1 if any object failed or mismatched,
 * 2 on a usage or settings error.  The node should be stopped meanwhile.
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#include "cli/cli.h"

#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "blob/blob.h"
#include "core/config.h"

struct copy {
    struct blob *src, *dst;
    int64_t listed, copied, skipped, failed;
    uint64_t copied_bytes, skipped_bytes;
};

static void copy_usage(void)
{
    fprintf(stderr,
            "usage: terrace admin blob copy --to URL [node settings]\n\n"
            "copies every object of the node's blob store (--blob-url, "
            "else\n"
            "DATA/blobs; settings as terraced reads them: flags, "
            "TERRACE_*,\n"
            "--config) to URL, raw and verified by SHA-256; objects "
            "already\n"
            "there with the same size and checksum are skipped.  URL: "
            "file:///dir,\n"
            "s3://BUCKET/PREFIX?region=R, gs://BUCKET/PREFIX or\n"
            "azblob://CONTAINER/PREFIX?account=A\n");
}

static bool same_object(struct copy *c, const char *key, uint64_t size)
{
    unsigned char s[32], d[32];
    uint64_t ss = 0, ds = 0;
    struct tr_errbuf eb = {{0}};
    if (blob_raw_sha256(c->dst, key, &ds, d, &eb) != TR_OK || ds != size)
        return false; /* absent, unreadable or different: copy it */
    return blob_raw_sha256(c->src, key, &ss, s, &eb) == TR_OK && ss == ds &&
           memcmp(s, d, sizeof(s)) == 0;
}

static tr_err one(void *ctx, const char *key, uint64_t size, int64_t mtime,
                  struct tr_errbuf *eb)
{
    (void)mtime;
    (void)eb;
    struct copy *c = ctx;
    c->listed++;
    if (same_object(c, key, size)) {
        c->skipped++;
        c->skipped_bytes += size;
        return TR_OK;
    }
    unsigned char s[32], d[32];
    uint64_t ss = 0, ds = 0;
    struct tr_errbuf eb2 = {{0}};
    tr_err e = blob_copy_raw(c->src, c->dst, key, &ss, s, &eb2);
    if (e == TR_OK)
        e = blob_raw_sha256(c->dst, key, &ds, d, &eb2);
    if (e == TR_OK && (ds != ss || memcmp(s, d, sizeof(s)) != 0))
        e = tr_fail(&eb2, TR_ERR_IO,
                    "the copy does not match the source (%llu bytes read "
                    "back, %llu written)",
                    (unsigned long long)ds, (unsigned long long)ss);
    if (e != TR_OK) {
        fprintf(stderr, "terrace admin blob copy: %s: %s\n", key,
                tr_errbuf_msg(&eb2, e));
        c->failed++;
        return TR_OK; /* the others are still worth copying */
    }
    c->copied++;
    c->copied_bytes += ss;
    return TR_OK;
}

/* The node's blob store from its settings (args for cfg_load()). */
static tr_err open_source(int n, char **args, struct blob **out, char *url,
                          size_t urlsz, char *spool, size_t spoolsz,
                          struct tr_errbuf *eb)
{
    struct cfg cfg;
    tr_err e = cfg_load(&cfg, n, args, eb);
    if (e != TR_OK)
        return e;
    struct stat st;
    if (stat(cfg.data_dir, &st) != 0 || !S_ISDIR(st.st_mode))
        return tr_fail(eb, TR_ERR_CONFIG,
                       "data dir %s is not a directory (give the node's "
                       "--data-dir)",
                       cfg.data_dir);
    char abs[PATH_MAX];
    if (cfg.blob_url[0] == '\0' && cfg.data_dir[0] != '/' &&
        realpath(cfg.data_dir, abs) == NULL)
        return tr_fail(eb, TR_ERR_CONFIG, "data dir %s: %s", cfg.data_dir,
                       strerror(errno));
    int len = cfg.blob_url[0] != '\0'
                  ? snprintf(url, urlsz, "%s", cfg.blob_url)
                  : snprintf(url, urlsz, "file://%s/blobs",
                             cfg.data_dir[0] == '/' ? cfg.data_dir : abs);
    if (len < 0 || (size_t)len >= urlsz)
        return tr_fail(eb, TR_ERR_CONFIG, "the blob store's URL is too long");
    snprintf(spool, spoolsz, "%s/spool", cfg.data_dir);
    if (mkdir(spool, 0700) != 0 && errno != EEXIST)
        return tr_fail(eb, TR_ERR_IO, "cannot create %s: %s", spool,
                       strerror(errno));
    if (strncmp(url, "file://", 7) == 0 && access(url + 7, R_OK | X_OK) != 0)
        return tr_fail(eb, TR_ERR_CONFIG,
                       "blob directory %s: %s (give the node's --data-dir "
                       "or --blob-url)",
                       url + 7, strerror(errno));
    return blob_open_url(url, spool, out, eb);
}

static int run_copy(int argc, char **argv)
{
    const char *to = NULL;
    char *args[64];
    int n = 0;
    args[n++] = "terrace admin blob copy";
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            copy_usage();
            return 0;
        }
        if (strcmp(argv[i], "--to") == 0 && i + 1 < argc) {
            to = argv[++i];
            continue;
        }
        if (n >= (int)(sizeof(args) / sizeof(args[0])) - 1) {
            fprintf(stderr, "terrace admin blob copy: too many arguments\n");
            return 2;
        }
        args[n++] = argv[i];
    }
    args[n] = NULL;
    if (to == NULL || *to == '\0') {
        fprintf(stderr, "terrace admin blob copy: --to URL is required\n");
        copy_usage();
        return 2;
    }
    struct copy c = {0};
    struct tr_errbuf eb = {{0}};
    char url[600], spool[PATH_MAX];
    tr_err e = open_source(n, args, &c.src, url, sizeof(url), spool,
                           sizeof(spool), &eb);
    if (e == TR_OK && strcmp(url, to) == 0)
        e = tr_fail(&eb, TR_ERR_CONFIG,
                    "--to names the node's own blob store (%s)", url);
    if (e == TR_OK)
        e = blob_open_url(to, spool, &c.dst, &eb);
    if (e != TR_OK) {
        fprintf(stderr, "terrace admin blob copy: %s\n", tr_errbuf_msg(&eb, e));
        blob_close(c.src);
        return e == TR_ERR_CONFIG ? 2 : 1;
    }
    fprintf(stderr, "copying %s to %s\n", url, to);
    e = blob_list(c.src, "", one, &c, &eb);
    printf("%lld objects: %lld copied (%llu bytes), %lld already there "
           "(%llu bytes), %lld failed\n",
           (long long)c.listed, (long long)c.copied,
           (unsigned long long)c.copied_bytes, (long long)c.skipped,
           (unsigned long long)c.skipped_bytes, (long long)c.failed);
    if (e != TR_OK)
        fprintf(stderr, "terrace admin blob copy: cannot list %s: %s\n", url,
                tr_errbuf_msg(&eb, e));
    blob_close(c.dst);
    blob_close(c.src);
    return e != TR_OK || c.failed > 0 ? 1 : 0;
}

int cli_admin_blob(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "copy") == 0)
        return run_copy(argc, argv);
    if (argc >= 2 &&
        (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        copy_usage();
        return 0;
    }
    fprintf(stderr, "terrace admin blob: unknown command %s\n",
            argc >= 2 ? argv[1] : "(none)");
    copy_usage();
    return 2;
}
