/*
 * tool_install.c - installs a tool version from a release mirror (see
 * tool_install.h): the SHA256SUMS first, then the zip, hashed while it is
 * written to a temporary file and compared with its line, then the one
 * binary unpacked from it under a temporary name and renamed into place.
 *
 * Nothing is trusted before the checksum matches: the zip is read only
 * after, and only the entry named like the product is written, as a
 * plain file of bounded size.  Every temporary file is removed on every
 * path.
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#include "executor/tool_install.h"

#include <ctype.h>
#include "core/curl_load.h"
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/file.h"
#include "core/util.h"
#include "crypto/digest.h"
#include "executor/archive.h"

#define MAX_SUMS (64 * 1024)              /* a SHA256SUMS file */
#define MAX_ZIP (1024LL * 1024 * 1024)    /* a release zip */
#define MAX_BINARY (1024LL * 1024 * 1024) /* the binary in it */
#define TICK_MS 5000                      /* between tick() calls */

bool tool_install_enabled(const char *mirror)
{
    return mirror != NULL && mirror[0] != '\0' && strcmp(mirror, "off") != 0;
}

static const char *node_arch(void)
{
#if defined(__x86_64__)
    return "amd64";
#elif defined(__aarch64__)
    return "arm64";
#else
    return "unknown";
#endif
}

/* MAJOR.MINOR.PATCH with an optional -pre of [0-9A-Za-z.-]: what release
 * URLs and directory names may hold. */
static bool plain_version(const char *v)
{
    size_t n = strlen(v);
    if (n == 0 || n > 64)
        return false;
    int dots = 0;
    const char *p = v;
    for (;;) {
        if (!isdigit((unsigned char)*p))
            return false;
        while (isdigit((unsigned char)*p))
            p++;
        if (*p != '.' || dots == 2)
            break;
        dots++;
        p++;
    }
    if (dots != 2)
        return false;
    if (*p == '\0')
        return true;
    if (*p++ != '-' || *p == '\0')
        return false;
    for (; *p; p++)
        if (!isalnum((unsigned char)*p) && *p != '.' && *p != '-')
            return false;
    return true;
}

/* tpl with {version}, {os} and {arch} filled in; NULL for another {...}. */
static char *expand(struct arena *a, const char *tpl, const char *version)
{
    static const char *const keys[] = {"{version}", "{os}", "{arch}"};
    const char *vals[] = {version, "linux", node_arch()};
    char *out = arena_strdup(a, "");
    const char *p = tpl;
    while (*p) {
        const char *open = strchr(p, '{');
        if (open == NULL) {
            out = arena_printf(a, "%s%s", out, p);
            break;
        }
        out = arena_printf(a, "%s%.*s", out, (int)(open - p), p);
        size_t k = 0;
        while (k < 3 && strncmp(open, keys[k], strlen(keys[k])) != 0)
            k++;
        if (k == 3)
            return NULL;
        out = arena_printf(a, "%s%s", out, vals[k]);
        p = open + strlen(keys[k]);
    }
    return out;
}

tr_err tool_install_urls(struct arena *a, const char *mirror,
                         const char *version, const char **product,
                         const char **zip_url, const char **sums_url,
                         struct tr_errbuf *eb)
{
    if (!plain_version(version))
        return tr_fail(eb, TR_ERR_INVALID,
                       "%s is not a release version (MAJOR.MINOR.PATCH)",
                       version);
    char *url = expand(a, mirror, version);
    if (url == NULL ||
        (strncmp(url, "https://", 8) != 0 && strncmp(url, "http://", 7) != 0))
        return tr_fail(eb, TR_ERR_CONFIG,
                       "tool-mirror must be an http(s) URL template using "
                       "{version}, {os} and {arch}");
    const char *slash = strrchr(url, '/');
    const char *base = slash + 1;
    const char *under = strchr(base, '_');
    size_t blen = strlen(base);
    if (under == NULL || under == base || blen < 5 ||
        strcmp(base + blen - 4, ".zip") != 0)
        return tr_fail(eb, TR_ERR_CONFIG,
                       "tool-mirror must name a <product>_..._.zip file, "
                       "as release mirrors do (got %s)",
                       url);
    char *prod = arena_strndup(a, base, (size_t)(under - base));
    for (const char *p = prod; *p; p++)
        if (!islower((unsigned char)*p) && !isdigit((unsigned char)*p) &&
            *p != '-')
            return tr_fail(eb, TR_ERR_CONFIG,
                           "tool-mirror: %s is not a product name", prod);
    *product = prod;
    *zip_url = url;
    *sums_url = arena_printf(a, "%.*s%s_%s_SHA256SUMS", (int)(base - url), url,
                             prod, version);
    return TR_OK;
}

/* ---- downloads --------------------------------------------------------- */

struct sink {
    struct buf *mem; /* to memory, or */
    int fd;          /* to this file */
    struct digest_stream *hash;
    int64_t got, max;
    bool too_big;
    tr_err werr;
    struct tr_errbuf wmsg;
    const struct tool_install_req *req;
    int64_t last_tick;
    bool canceled;
};

static size_t sink_write(char *p, size_t size, size_t n, void *ctx)
{
    struct sink *s = ctx;
    size_t len = size * n;
    if (s->got + (int64_t)len > s->max) {
        s->too_big = true;
        return 0;
    }
    s->got += (int64_t)len;
    if (s->mem != NULL) {
        s->werr = buf_append(s->mem, p, len);
        return s->werr == TR_OK ? len : 0;
    }
    if (s->hash != NULL)
        digest_stream_update(s->hash, p, len);
    s->werr = file_write_exact(s->fd, p, len, &s->wmsg);
    return s->werr == TR_OK ? len : 0;
}

static int sink_progress(void *ctx, curl_off_t dt, curl_off_t dn, curl_off_t ut,
                         curl_off_t un)
{
    (void)dt, (void)dn, (void)ut, (void)un;
    struct sink *s = ctx;
    int64_t now = util_now_ms();
    if (s->req->tick == NULL || now - s->last_tick < TICK_MS)
        return 0;
    s->last_tick = now;
    if (s->req->tick(s->req->tick_ctx) != 0) {
        s->canceled = true;
        return 1;
    }
    return 0;
}

static tr_err fetch(const char *url, struct sink *s, struct tr_errbuf *eb)
{
    CURL *h = curl_easy_init();
    if (h == NULL)
        return tr_fail(eb, TR_ERR_INTERNAL, "cannot start an HTTP client");
    char err[CURL_ERROR_SIZE] = "";
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, err);
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(h, CURLOPT_MAXREDIRS, 5L);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, 30L);
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1024L);
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, 60L);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_USERAGENT, "terrace-tool-install");
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, sink_write);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, s);
    curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, sink_progress);
    curl_easy_setopt(h, CURLOPT_XFERINFODATA, s);
    curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
    CURLcode rc = curl_easy_perform(h);
    long status = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(h);
    if (s->canceled)
        return tr_fail(eb, TR_ERR_CONFLICT, "install canceled");
    if (s->too_big)
        return tr_fail(eb, TR_ERR_TOO_LARGE, "%s is larger than %lld bytes",
                       url, (long long)s->max);
    if (s->werr != TR_OK)
        return tr_fail(eb, s->werr, "%s: %s", url,
                       tr_errbuf_msg(&s->wmsg, s->werr));
    if (rc != CURLE_OK)
        return tr_fail(eb, TR_ERR_IO, "cannot download %s: %s", url,
                       err[0] ? err : curl_easy_strerror(rc));
    if (status != 200)
        return tr_fail(eb, TR_ERR_IO, "cannot download %s: HTTP %ld", url,
                       status);
    return TR_OK;
}

/* The hex checksum sums gives for file name, or NULL. */
static const char *sums_line(struct arena *a, const char *sums,
                             const char *name)
{
    char *copy = arena_strdup(a, sums);
    char *save = NULL;
    for (char *l = strtok_r(copy, "\n", &save); l != NULL;
         l = strtok_r(NULL, "\n", &save)) {
        size_t n = strlen(l);
        if (n > 0 && l[n - 1] == '\r')
            l[--n] = '\0';
        if (n < 66 || l[64] != ' ')
            continue;
        const char *f = l + 65;
        if (*f == ' ' || *f == '*') /* "hash  name" or "hash *name" */
            f++;
        if (strcmp(f, name) != 0)
            continue;
        l[64] = '\0';
        for (int i = 0; i < 64; i++)
            if (!isxdigit((unsigned char)l[i]))
                return NULL;
        return l;
    }
    return NULL;
}

/* ---- install ----------------------------------------------------------- */

static tr_err mkdir_p(const char *path, struct tr_errbuf *eb)
{
    if (mkdir(path, 0755) != 0 && errno != EEXIST)
        return tr_fail(eb, TR_ERR_IO, "cannot create %s: %s", path,
                       strerror(errno));
    return TR_OK;
}

/* The sha256 of an installed binary. */
static tr_err hash_file(struct arena *a, const char *path, const char **sha256,
                        struct tr_errbuf *eb)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return tr_fail(eb, TR_ERR_IO, "cannot open %s: %s", path,
                       strerror(errno));
    struct digest_stream *d = digest_stream_new(a);
    char chunk[65536];
    tr_err e = TR_OK;
    for (uint64_t off = 0;;) {
        size_t n = 0;
        e = file_pread(fd, chunk, sizeof(chunk), off, &n, eb);
        if (e != TR_OK || n == 0)
            break;
        digest_stream_update(d, chunk, n);
        off += n;
    }
    close(fd);
    char *md5 = NULL, *sha = NULL;
    digest_stream_final(d, a, &md5, &sha);
    *sha256 = sha;
    return e;
}

/* Takes the per-version lock, ticking while another install holds it. */
static tr_err lock_version(const struct tool_install_req *req,
                           const char *lock_path, int *fd, struct tr_errbuf *eb)
{
    *fd = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (*fd < 0)
        return tr_fail(eb, TR_ERR_IO, "cannot open %s: %s", lock_path,
                       strerror(errno));
    int64_t last = util_now_ms();
    while (flock(*fd, LOCK_EX | LOCK_NB) != 0) {
        if (errno != EWOULDBLOCK && errno != EINTR)
            return tr_fail(eb, TR_ERR_IO, "cannot lock %s: %s", lock_path,
                           strerror(errno));
        usleep(200 * 1000);
        if (req->tick != NULL && util_now_ms() - last >= TICK_MS) {
            last = util_now_ms();
            if (req->tick(req->tick_ctx) != 0)
                return tr_fail(eb, TR_ERR_CONFLICT, "install canceled");
        }
    }
    return TR_OK;
}

/* Downloads and checks the zip into zip_fd, then unpacks the binary into
 * tmp_path. */
static tr_err download_and_unpack(struct arena *a,
                                  const struct tool_install_req *req,
                                  const char *product, const char *zip_url,
                                  const char *sums_url, int zip_fd,
                                  const char *tmp_path, const char **sha256,
                                  struct tr_errbuf *eb)
{
    struct buf sums;
    buf_init(&sums, MAX_SUMS);
    struct sink s1 = {.mem = &sums, .max = MAX_SUMS, .req = req};
    tr_err e = fetch(sums_url, &s1, eb);
    const char *text = arena_strdup(a, sums.data != NULL ? sums.data : "");
    buf_free(&sums);
    if (e != TR_OK)
        return e;
    const char *zip_name = strrchr(zip_url, '/') + 1;
    const char *want = sums_line(a, text, zip_name);
    if (want == NULL)
        return tr_fail(eb, TR_ERR_INVALID, "%s has no checksum for %s",
                       sums_url, zip_name);
    struct sink s2 = {.fd = zip_fd,
                      .hash = digest_stream_new(a),
                      .max = MAX_ZIP,
                      .req = req,
                      .last_tick = util_now_ms()};
    e = fetch(zip_url, &s2, eb);
    if (e != TR_OK)
        return e;
    char *md5 = NULL, *got = NULL;
    digest_stream_final(s2.hash, a, &md5, &got);
    if (strcasecmp(got, want) != 0)
        return tr_fail(eb, TR_ERR_INVALID,
                       "%s does not match its SHA256SUMS line (sha256 %s, "
                       "expected %s)",
                       zip_url, got, want);
    int out = open(tmp_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0755);
    if (out < 0)
        return tr_fail(eb, TR_ERR_IO, "cannot create %s: %s", tmp_path,
                       strerror(errno));
    e = archive_zip_entry(zip_fd, product, out, MAX_BINARY, eb);
    /* executable by the run's user whatever the node's umask */
    if (e == TR_OK && fchmod(out, 0755) != 0)
        e = tr_fail(eb, TR_ERR_IO, "cannot chmod %s: %s", tmp_path,
                    strerror(errno));
    if (e == TR_OK && fsync(out) != 0)
        e = tr_fail(eb, TR_ERR_IO, "cannot write %s: %s", tmp_path,
                    strerror(errno));
    close(out);
    if (e == TR_OK)
        e = hash_file(a, tmp_path, sha256, eb);
    return e;
}

tr_err tool_install(struct arena *a, const struct tool_install_req *req,
                    const char **path, const char **sha256,
                    struct tr_errbuf *eb)
{
    const char *product = NULL, *zip_url = NULL, *sums_url = NULL;
    int lock_fd = -1, zip_fd = -1;
    const char *tmp_bin = NULL, *tmp_zip = NULL;
    if (!tool_install_enabled(req->mirror))
        return tr_fail(eb, TR_ERR_CONFIG, "tool installs are off");
    tr_err e = tool_install_urls(a, req->mirror, req->version, &product,
                                 &zip_url, &sums_url, eb);
    if (e == TR_OK)
        e = mkdir_p(req->dir, eb);
    char real[PATH_MAX];
    if (e == TR_OK && realpath(req->dir, real) == NULL)
        e = tr_fail(eb, TR_ERR_IO, "cannot resolve %s: %s", req->dir,
                    strerror(errno));
    if (e != TR_OK)
        return e;
    const char *vdir = arena_printf(a, "%s/%s-%s", real, product, req->version);
    const char *final = arena_printf(a, "%s/%s", vdir, product);
    e = mkdir_p(vdir, eb);
    if (e == TR_OK)
        e = lock_version(req, arena_printf(a, "%s.lock", vdir), &lock_fd, eb);
    if (e != TR_OK)
        goto out;
    if (access(final, F_OK) == 0) { /* installed while we waited, or before */
        e = hash_file(a, final, sha256, eb);
        goto out;
    }
    tmp_zip = arena_printf(a, "%s/.download-%s.zip", vdir, util_new_id(a, "t"));
    tmp_bin = arena_printf(a, "%s/.%s-%s", vdir, product, util_new_id(a, "t"));
    zip_fd = open(tmp_zip, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (zip_fd < 0) {
        e = tr_fail(eb, TR_ERR_IO, "cannot create %s: %s", tmp_zip,
                    strerror(errno));
        goto out;
    }
    e = download_and_unpack(a, req, product, zip_url, sums_url, zip_fd, tmp_bin,
                            sha256, eb);
    if (e == TR_OK && rename(tmp_bin, final) != 0)
        e = tr_fail(eb, TR_ERR_IO, "cannot install %s: %s", final,
                    strerror(errno));
out:
    if (zip_fd >= 0)
        close(zip_fd);
    if (tmp_zip != NULL)
        unlink(tmp_zip);
    if (tmp_bin != NULL && e != TR_OK)
        unlink(tmp_bin);
    if (lock_fd >= 0)
        close(lock_fd); /* releases the lock */
    if (e == TR_OK)
        *path = final;
    return e;
}
