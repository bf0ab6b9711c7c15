/*
 * workdir.c - the working directory of one job, DATA/work/<job-id>:
 *
 *   config.tar.gz        the configuration as fetched (removed once
 *                        extracted)
 *   src/                 the extracted configuration
 *   src/<working-dir>/   where tofu runs; Terrace adds
 *       zzz_terrace_override.tf   the cloud block pointing at Terrace
 *       zzz_terrace.auto.tfvars   the terraform-category variables
 *   terraform.rc         CLI config: the run token, plugin cache, mirror
 *   ca.pem               the roots the run trusts: the CA of Terrace's
 *                        API (if any) and the host's CA bundle
 *   .home/ .tmp/ .shm/   HOME, /tmp and /dev/shm of the run
 *   plan.tfplan plan.json   the plan (written by tofu)
 *   schemas.json         provider schemas, when the plan is rendered
 *                        from JSON
 *
 * The directory itself belongs to the node (0711: the run can reach its
 * entries but neither rename nor add any, so the files the node reads
 * back stay the ones it named); everything the run writes belongs to the
 * run user (workdir_give()), and so does the organization's provider
 * cache, DATA/provider-cache/<organization id>.  It holds the run token
 * and plaintext variables (0600), and is removed after every job by the
 * driver, or kept a
 * while for the run's apply (keep.c), which then only rewrites
 * terraform.rc with its own token (workdir_reuse()).  The override
 * replaces any backend or cloud block of the configuration, because an
 * override file's backend always wins; with TF_FORCE_LOCAL_BACKEND=1 the
 * cloud backend then runs the operation locally while its state goes
 * through Terrace's API under the run token.
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "core/log.h"
#include "executor/archive.h"
#include "executor/executor_int.h"

#define MAX_FILE_TEXT (64 << 20)

/* ---- removal ----------------------------------------------------------- */

static int make_writable(const char *path, const struct stat *st, int flag,
                         struct FTW *ftw)
{
    (void)ftw;
    if (flag == FTW_D && (st->st_mode & 0700) != 0700)
        chmod(path, (st->st_mode & 07777) | 0700);
    return 0;
}

static int remove_entry(const char *path, const struct stat *st, int flag,
                        struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

void workdir_remove(const char *dir)
{
    struct stat st;
    if (dir == NULL || lstat(dir, &st) != 0)
        return;
    /* directories tofu (or a provider) left read-only must be opened
     * up before their entries can go */
    nftw(dir, make_writable, 16, FTW_PHYS);
    nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    if (lstat(dir, &st) == 0)
        log_warn("executor: could not remove all of %s", dir);
}

/* ---- HCL --------------------------------------------------------------- */

tr_err workdir_hcl_string(struct buf *b, const char *s)
{
    tr_err e = buf_puts(b, "\"");
    for (const char *p = s; e == TR_OK && *p; p++) {
        unsigned char c = (unsigned char)*p;
        if (c == '"')
            e = buf_puts(b, "\\\"");
        else if (c == '\\')
            e = buf_puts(b, "\\\\");
        else if (c == '\n')
            e = buf_puts(b, "\\n");
        else if (c == '\r')
            e = buf_puts(b, "\\r");
        else if (c == '\t')
            e = buf_puts(b, "\\t");
        else if (c < 0x20 || c == 0x7f)
            e = buf_printf(b, "\\u%04x", c);
        else if ((c == '$' || c == '%') && p[1] == '{')
            e = buf_printf(b, "%c%c", c, c); /* then '{' as usual */
        else
            e = buf_append(b, p, 1);
    }
    if (e == TR_OK)
        e = buf_puts(b, "\"");
    return e;
}

/* Terraform identifiers: a letter or '_', then letters, digits, '_', '-'. */
static bool valid_ident(const char *s)
{
    if (s == NULL ||
        !((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || *s == '_'))
        return false;
    for (const char *p = s; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
              (*p >= '0' && *p <= '9') || *p == '_' || *p == '-'))
            return false;
    return true;
}

const char *workdir_url_host(struct arena *a, const char *url)
{
    const char *p = url ? strstr(url, "://") : NULL;
    if (p == NULL)
        return NULL;
    p += 3;
    size_t n = strcspn(p, "/?#");
    if (n == 0 || memchr(p, '@', n) != NULL)
        return NULL;
    return arena_strndup(a, p, n);
}

/* ---- files ------------------------------------------------------------- */

/* Writes text to path as a new private file, replacing whatever the
 * configuration had there (a symlink is replaced, never followed). */
static tr_err write_new(const char *path, const struct buf *text,
                        struct tr_errbuf *eb)
{
    if (unlink(path) != 0 && errno != ENOENT)
        return tr_fail(eb, TR_ERR_IO, "cannot replace %s: %s", path,
                       strerror(errno));
    int fd =
        open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0)
        return tr_fail(eb, TR_ERR_IO, "cannot write %s: %s", path,
                       strerror(errno));
    size_t off = 0;
    while (off < text->len) {
        ssize_t n = write(fd, text->data + off, text->len - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            int err = n < 0 ? errno : EIO;
            close(fd);
            return tr_fail(eb, TR_ERR_IO, "cannot write %s: %s", path,
                           strerror(err));
        }
        off += (size_t)n;
    }
    if (close(fd) != 0)
        return tr_fail(eb, TR_ERR_IO, "cannot write %s: %s", path,
                       strerror(errno));
    return TR_OK;
}

static tr_err write_override(const struct job *j, const char *dir,
                             const char *host, struct arena *a,
                             struct tr_errbuf *eb)
{
    struct buf b;
    buf_init(&b, MAX_FILE_TEXT);
    tr_err e = buf_puts(&b, "# written by Terrace: state is kept in Terrace\n"
                            "terraform {\n  cloud {\n    hostname     = ");
    if (e == TR_OK)
        e = workdir_hcl_string(&b, host);
    if (e == TR_OK)
        e = buf_puts(&b, "\n    organization = ");
    if (e == TR_OK)
        e = workdir_hcl_string(&b, j->org);
    if (e == TR_OK)
        e = buf_puts(&b, "\n    workspaces {\n      name = ");
    if (e == TR_OK)
        e = workdir_hcl_string(&b, j->workspace);
    if (e == TR_OK)
        e = buf_puts(&b, "\n    }\n  }\n}\n");
    if (e == TR_OK)
        e = write_new(arena_printf(a, "%s/zzz_terrace_override.tf", dir), &b,
                      eb);
    else
        e = tr_fail(eb, e, "the override file is too large");
    buf_free(&b);
    return e;
}

static tr_err write_tfvars(const struct job *j, const char *dir,
                           struct arena *a, struct tr_errbuf *eb)
{
    struct buf b;
    buf_init(&b, MAX_FILE_TEXT);
    int n = 0;
    tr_err e = buf_puts(&b, "# written by Terrace: workspace variables\n");
    for (int i = 0; e == TR_OK && i < j->nvars; i++) {
        const struct job_var *v = &j->vars[i];
        if (v->env)
            continue;
        if (!valid_ident(v->key)) {
            buf_free(&b);
            return tr_fail(eb, TR_ERR_INVALID,
                           "variable name \"%.64s\" is not valid", v->key);
        }
        const char *val = v->value ? v->value : "";
        e = buf_printf(&b, "%s = ", v->key);
        if (e == TR_OK && v->hcl)
            e = buf_puts(&b, val[strspn(val, " \t\r\n")] ? val : "null");
        else if (e == TR_OK)
            e = workdir_hcl_string(&b, val);
        if (e == TR_OK)
            e = buf_puts(&b, "\n");
        n++;
    }
    if (e != TR_OK)
        e = tr_fail(eb, e, "the variables are too large");
    else if (n > 0)
        e = write_new(arena_printf(a, "%s/zzz_terrace.auto.tfvars", dir), &b,
                      eb);
    buf_free(&b);
    return e;
}

/* The providers a filesystem mirror holds, as "host/namespace/type"
 * strings, comma-separated for a `direct { exclude = [...] }` list: what
 * the mirror has comes only from it (tofu would otherwise still ask the
 * registry, which an offline node cannot reach); the rest installs
 * directly.  Unreadable levels are skipped. */
static tr_err mirror_excludes(struct buf *b, const char *mirror)
{
    tr_err e = TR_OK;
    int n = 0;
    DIR *hosts = opendir(mirror);
    struct dirent *h;
    while (e == TR_OK && hosts != NULL && (h = readdir(hosts)) != NULL) {
        if (h->d_name[0] == '.')
            continue;
        char p1[PATH_MAX];
        if (snprintf(p1, sizeof(p1), "%s/%s", mirror, h->d_name) >=
            (int)sizeof(p1))
            continue;
        DIR *nss = opendir(p1);
        struct dirent *ns;
        while (e == TR_OK && nss != NULL && (ns = readdir(nss)) != NULL) {
            if (ns->d_name[0] == '.')
                continue;
            char p2[PATH_MAX];
            if (snprintf(p2, sizeof(p2), "%s/%s", p1, ns->d_name) >=
                (int)sizeof(p2))
                continue;
            DIR *types = opendir(p2);
            struct dirent *t;
            while (e == TR_OK && types != NULL &&
                   (t = readdir(types)) != NULL && n < 1000) {
                if (t->d_name[0] == '.')
                    continue;
                char addr[3 * 256 + 3];
                if (snprintf(addr, sizeof(addr), "%s/%s/%s", h->d_name,
                             ns->d_name, t->d_name) >= (int)sizeof(addr))
                    continue;
                if (n++ > 0)
                    e = buf_puts(b, ", ");
                if (e == TR_OK)
                    e = workdir_hcl_string(b, addr);
            }
            if (types != NULL)
                closedir(types);
        }
        if (nss != NULL)
            closedir(nss);
    }
    if (hosts != NULL)
        closedir(hosts);
    return e;
}

static tr_err write_cli_config(const struct exec_ctx *x, const struct job *j,
                               const struct workdir *wd, const char *host,
                               struct tr_errbuf *eb)
{
    struct buf b;
    buf_init(&b, MAX_FILE_TEXT);
    tr_err e = buf_puts(&b, "# written by Terrace for one run\n"
                            "credentials ");
    if (e == TR_OK)
        e = workdir_hcl_string(&b, host);
    if (e == TR_OK)
        e = buf_puts(&b, " {\n  token = ");
    if (e == TR_OK)
        e = workdir_hcl_string(&b, j->token ? j->token : "");
    if (e == TR_OK)
        e = buf_puts(&b, "\n}\n\nplugin_cache_dir = ");
    if (e == TR_OK)
        e = workdir_hcl_string(&b, sandbox_isolated(x->sb) ? VIEW_CACHE
                                                           : wd->cache);
    if (e == TR_OK) {
        /* the services outright, as /.well-known/terraform.json has
         * them (api/meta.c, well_known): no discovery request, and no TLS
         * handshake for it, in each tofu process; and discovery is
         * https-only */
        struct buf svc;
        buf_init(&svc, 0);
        e = buf_printf(&svc, "%s/api/v2/", j->api_url);
        if (e == TR_OK)
            e = buf_puts(&b, "\n\nhost ");
        if (e == TR_OK)
            e = workdir_hcl_string(&b, host);
        if (e == TR_OK)
            e = buf_puts(&b, " {\n  services = {\n    \"tfe.v2\" = ");
        if (e == TR_OK)
            e = workdir_hcl_string(&b, svc.data);
        static const char *const more[] = {"tfe.v2.1", "tfe.v2.2", "state.v2"};
        for (size_t i = 0; e == TR_OK && i < sizeof(more) / sizeof(*more);
             i++) {
            e = buf_printf(&b, "\n    \"%s\" = ", more[i]);
            if (e == TR_OK)
                e = workdir_hcl_string(&b, svc.data);
        }
        if (e == TR_OK)
            e = buf_puts(&b, "\n  }\n}");
        buf_free(&svc);
    }
    const char *mirror = x->o.provider_mirror;
    if (e == TR_OK && mirror != NULL && *mirror != '\0') {
        e = buf_puts(&b, "\n\nprovider_installation {\n"
                         "  filesystem_mirror {\n    path = ");
        if (e == TR_OK)
            e = workdir_hcl_string(&b, sandbox_isolated(x->sb) ? VIEW_MIRROR
                                                               : mirror);
        if (e == TR_OK)
            e = buf_puts(&b, "\n  }\n  direct {\n    exclude = [");
        if (e == TR_OK)
            e = mirror_excludes(&b, mirror);
        if (e == TR_OK)
            e = buf_puts(&b, "]\n  }\n}");
    }
    if (e == TR_OK)
        e = buf_puts(&b, "\n");
    if (e == TR_OK)
        e = write_new(wd->cli_config, &b, eb);
    else
        e = tr_fail(eb, e, "the CLI configuration is too large");
    explicit_bzero(b.data, b.len);
    buf_free(&b);
    if (e == TR_OK)
        e = workdir_give(x, wd->cli_config, false, eb);
    return e;
}

/* ---- preparation ------------------------------------------------------- */

static bool safe_id(const char *s)
{
    if (s == NULL || *s == '\0' || strlen(s) > 128)
        return false;
    for (const char *p = s; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
              (*p >= '0' && *p <= '9') || *p == '-' || *p == '_'))
            return false;
    return true;
}

/* src joined with the workspace's working directory, which must be
 * relative, without "..", and a directory inside src. */
static tr_err find_cwd(struct arena *a, const char *src, const char *wdir,
                       const char **cwd, struct tr_errbuf *eb)
{
    if (wdir == NULL || *wdir == '\0') {
        *cwd = src;
        return TR_OK;
    }
    if (wdir[0] == '/' || strlen(wdir) >= PATH_MAX / 2)
        return tr_fail(eb, TR_ERR_INVALID,
                       "the working directory must be a relative path");
    char *copy = arena_strdup(a, wdir), *save = NULL;
    for (char *c = strtok_r(copy, "/", &save); c != NULL;
         c = strtok_r(NULL, "/", &save))
        if (strcmp(c, "..") == 0)
            return tr_fail(eb, TR_ERR_INVALID,
                           "the working directory must not contain \"..\"");
    char *joined = arena_printf(a, "%s/%s", src, wdir);
    char real_src[PATH_MAX], real[PATH_MAX];
    struct stat st;
    if (realpath(src, real_src) == NULL || realpath(joined, real) == NULL ||
        stat(real, &st) != 0 || !S_ISDIR(st.st_mode))
        return tr_fail(eb, TR_ERR_INVALID,
                       "the working directory %s does not exist in the "
                       "configuration",
                       wdir);
    size_t n = strlen(real_src);
    if (strncmp(real, real_src, n) != 0 || (real[n] != '/' && real[n] != 0))
        return tr_fail(eb, TR_ERR_INVALID,
                       "the working directory %s leaves the configuration",
                       wdir);
    *cwd = arena_strdup(a, real);
    return TR_OK;
}

static tr_err make_dir(const char *path, mode_t mode, struct tr_errbuf *eb)
{
    if (mkdir(path, mode) != 0)
        return tr_fail(eb, TR_ERR_IO, "cannot create %s: %s", path,
                       strerror(errno));
    return TR_OK;
}

void workdir_layout(struct arena *a, const char *root, struct workdir *wd)
{
    wd->root = arena_strdup(a, root);
    wd->src = arena_printf(a, "%s/src", root);
    wd->home = arena_printf(a, "%s/.home", root);
    wd->tmp = arena_printf(a, "%s/.tmp", root);
    wd->shm = arena_printf(a, "%s/.shm", root);
    wd->ca = arena_printf(a, "%s/ca.pem", root);
    wd->no_certs = arena_printf(a, "%s/.no-cert-dir", root);
    wd->cli_config = arena_printf(a, "%s/terraform.rc", root);
    wd->plan_file = arena_printf(a, "%s/plan.tfplan", root);
    wd->json_plan = arena_printf(a, "%s/plan.json", root);
    wd->schemas = arena_printf(a, "%s/schemas.json", root);
    wd->ssh_key = arena_printf(a, "%s/ssh_key", root);
}

/* path with the prefix root replaced by view (path is below root). */
static const char *moved(struct arena *a, const char *path, const char *root,
                         const char *view)
{
    size_t n = strlen(root);
    if (path == NULL || strncmp(path, root, n) != 0)
        return path;
    return arena_printf(a, "%s%s", view, path + n);
}

void workdir_view(const struct exec_ctx *x, struct arena *a,
                  const struct workdir *wd, struct workdir *view)
{
    *view = *wd;
    if (!sandbox_isolated(x->sb))
        return;
    const char *r = wd->root;
    view->root = VIEW_JOB;
    view->src = moved(a, wd->src, r, VIEW_JOB);
    view->cwd = moved(a, wd->cwd, r, VIEW_JOB);
    view->home = moved(a, wd->home, r, VIEW_JOB);
    view->tmp = "/tmp";
    view->shm = "/dev/shm";
    view->ca = moved(a, wd->ca, r, VIEW_JOB);
    view->no_certs = moved(a, wd->no_certs, r, VIEW_JOB);
    view->cli_config = moved(a, wd->cli_config, r, VIEW_JOB);
    view->plan_file = moved(a, wd->plan_file, r, VIEW_JOB);
    view->json_plan = moved(a, wd->json_plan, r, VIEW_JOB);
    view->schemas = moved(a, wd->schemas, r, VIEW_JOB);
    view->ssh_key = moved(a, wd->ssh_key, r, VIEW_JOB);
    view->cache = VIEW_CACHE;
}

/* ---- handing files to the run user ------------------------------------ */

static bool give_tree(int dfd, uid_t uid, gid_t gid, int depth)
{
    DIR *d = fdopendir(dfd);
    if (d == NULL) {
        close(dfd);
        return false;
    }
    bool ok = true;
    struct dirent *de;
    while (ok && (de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        if (fchownat(dirfd(d), de->d_name, uid, gid, AT_SYMLINK_NOFOLLOW) !=
            0) {
            ok = false;
            break;
        }
        int sub = depth < 256
                      ? openat(dirfd(d), de->d_name,
                               O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
                      : -1;
        if (sub >= 0)
            ok = give_tree(sub, uid, gid, depth + 1);
    }
    closedir(d);
    return ok;
}

tr_err workdir_give(const struct exec_ctx *x, const char *path, bool tree,
                    struct tr_errbuf *eb)
{
    if (!sandbox_own_user(x->sb))
        return TR_OK;
    uid_t uid;
    gid_t gid;
    sandbox_ids(x->sb, &uid, &gid);
    bool ok = lchown(path, uid, gid) == 0;
    if (ok && tree) {
        int fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        ok = fd >= 0 && give_tree(fd, uid, gid, 0);
    }
    if (!ok)
        return tr_fail(eb, TR_ERR_IO, "cannot hand %s to the run user: %s",
                       path, strerror(errno));
    return TR_OK;
}

/* DATA/provider-cache/<organization>, the run user's. */
static tr_err cache_prepare(const struct exec_ctx *x, const struct job *j,
                            struct arena *a, struct workdir *wd,
                            struct tr_errbuf *eb)
{
    const char *org = j->org_id != NULL ? j->org_id : j->org;
    if (!safe_id(org))
        return tr_fail(eb, TR_ERR_INVALID, "the organization id is not valid");
    wd->cache = arena_printf(a, "%s/%s", x->cache_dir, org);
    if (mkdir(wd->cache, 0700) != 0 && errno != EEXIST)
        return tr_fail(eb, TR_ERR_IO, "cannot create %s: %s", wd->cache,
                       strerror(errno));
    struct stat st;
    if (lstat(wd->cache, &st) != 0 || !S_ISDIR(st.st_mode))
        return tr_fail(eb, TR_ERR_IO, "%s is not a directory", wd->cache);
    uid_t uid;
    gid_t gid;
    sandbox_ids(x->sb, &uid, &gid);
    /* a cache another run user filled (run-uid changed) */
    if (sandbox_own_user(x->sb) && (st.st_uid != uid || st.st_gid != gid))
        return workdir_give(x, wd->cache, true, eb);
    return TR_OK;
}

/* The host's CA bundle, where Go's crypto/x509 looks first on Linux
 * (root_linux.go), or NULL. */
static const char *host_bundle(void)
{
    static const char *const files[] = {
        "/etc/ssl/certs/ca-certificates.crt",
        "/etc/pki/tls/certs/ca-bundle.crt",
        "/etc/ssl/ca-bundle.pem",
        "/etc/pki/tls/cacert.pem",
        "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",
        "/etc/ssl/cert.pem",
    };
    for (size_t i = 0; i < sizeof(files) / sizeof(*files); i++)
        if (access(files[i], R_OK) == 0)
            return files[i];
    return NULL;
}

static tr_err append_file(struct buf *b, const char *path)
{
    FILE *f = fopen(path, "re");
    char chunk[4096];
    size_t n;
    tr_err e = TR_OK;
    while (f != NULL && e == TR_OK && (n = fread(chunk, 1, sizeof(chunk), f)))
        e = buf_append(b, chunk, n);
    if (f == NULL || ferror(f))
        e = TR_ERR_IO;
    if (f != NULL)
        fclose(f);
    if (e == TR_OK && b->len > 0 && b->data[b->len - 1] != '\n')
        e = buf_append(b, "\n", 1);
    return e;
}

/* ca.pem, readable by the run user: the CA of Terrace's API (if the job
 * names one) and the host's CA bundle.  With the bundle in it, the run
 * gets SSL_CERT_FILE=ca.pem and an SSL_CERT_DIR that does not exist: Go
 * programs (tofu, providers) otherwise read and parse every file of
 * /etc/ssl/certs on their first TLS connection, the same roots again one
 * file at a time, 50-100 ms per tofu process in the sandbox on a loaded
 * machine.  Without a bundle only the CA is written and the directory
 * is read as before. */
static tr_err write_roots(const struct job *j, struct workdir *wd,
                          struct tr_errbuf *eb)
{
    bool ca = j->ca_file != NULL && *j->ca_file != '\0';
    const char *bundle = host_bundle();
    wd->roots = wd->roots_all = false;
    if (unlink(wd->ca) != 0 && errno != ENOENT)
        return tr_fail(eb, TR_ERR_IO, "cannot replace %s: %s", wd->ca,
                       strerror(errno));
    if (!ca && bundle == NULL)
        return TR_OK;
    struct buf b;
    buf_init(&b, 16 << 20);
    tr_err e = TR_OK;
    if (ca && append_file(&b, j->ca_file) != TR_OK)
        e = tr_fail(eb, TR_ERR_IO, "cannot read the CA file %s", j->ca_file);
    /* an unreadable bundle leaves the directory scan in place */
    size_t had = b.len;
    bool all = e == TR_OK && bundle != NULL && append_file(&b, bundle) == TR_OK;
    if (!all)
        b.len = had;
    if (e == TR_OK && !ca && !all) {
        buf_free(&b);
        return TR_OK;
    }
    if (e == TR_OK)
        e = write_new(wd->ca, &b, eb);
    if (e == TR_OK && chmod(wd->ca, 0644) != 0)
        e = tr_fail(eb, TR_ERR_IO, "cannot write %s: %s", wd->ca,
                    strerror(errno));
    buf_free(&b);
    wd->roots = e == TR_OK;
    wd->roots_all = e == TR_OK && all;
    return e;
}

/* The job's SSH key for git in tofu init, readable by the run user only.
 * It lives in the job's root, which the run user cannot write (0711,
 * the node's), so no planted link can redirect it; ssh wants a final
 * newline. */
static tr_err write_ssh_key(const struct exec_ctx *x, const struct job *j,
                            const struct workdir *wd, struct tr_errbuf *eb)
{
    if (j->ssh_key == NULL || *j->ssh_key == '\0') {
        /* a kept plan directory may hold a key unassigned since */
        if (unlink(wd->ssh_key) != 0 && errno != ENOENT)
            return tr_fail(eb, TR_ERR_IO, "cannot remove %s: %s", wd->ssh_key,
                           strerror(errno));
        return TR_OK;
    }
    size_t n = strlen(j->ssh_key);
    struct buf b;
    buf_init(&b, n + 2);
    tr_err e = buf_append(&b, j->ssh_key, n);
    if (e == TR_OK && j->ssh_key[n - 1] != '\n')
        e = buf_append(&b, "\n", 1);
    if (e == TR_OK)
        e = write_new(wd->ssh_key, &b, eb);
    else
        e = tr_fail(eb, e, "cannot hold the SSH key");
    if (b.data != NULL)
        OPENSSL_cleanse(b.data, b.len);
    buf_free(&b);
    if (e == TR_OK)
        e = workdir_give(x, wd->ssh_key, false, eb);
    return e;
}

tr_err workdir_reuse(const struct exec_ctx *x, const struct job *j,
                     struct arena *a, struct workdir *wd, struct tr_errbuf *eb)
{
    const char *host = workdir_url_host(a, j->api_url);
    if (host == NULL)
        return tr_fail(eb, TR_ERR_INVALID, "the API URL is not valid");
    tr_err e = cache_prepare(x, j, a, wd, eb);
    if (e == TR_OK)
        e = write_roots(j, wd, eb);
    if (e == TR_OK)
        e = write_cli_config(x, j, wd, host, eb);
    if (e == TR_OK)
        e = write_ssh_key(x, j, wd, eb);
    return e;
}

tr_err workdir_begin(const struct exec_ctx *x, const struct job *j,
                     struct arena *a, struct workdir *wd, struct tr_errbuf *eb)
{
    memset(wd, 0, sizeof(*wd));
    if (!safe_id(j->id))
        return tr_fail(eb, TR_ERR_INVALID, "the job id is not valid");
    const char *host = workdir_url_host(a, j->api_url);
    if (host == NULL)
        return tr_fail(eb, TR_ERR_INVALID, "the API URL is not valid");
    workdir_layout(a, arena_printf(a, "%s/%s", x->work_dir, j->id), wd);
    workdir_remove(wd->root); /* a leftover of a crashed attempt */
    tr_err e = make_dir(wd->root, 0711, eb);
    if (e == TR_OK && chmod(wd->root, 0711) != 0) /* past the umask */
        e = tr_fail(eb, TR_ERR_IO, "cannot create %s: %s", wd->root,
                    strerror(errno));
    const char *mine[] = {wd->src, wd->home, wd->tmp, wd->shm};
    for (int i = 0; e == TR_OK && i < 4; i++)
        e = make_dir(mine[i], 0700, eb);
    if (e == TR_OK) /* what a kept directory gets again */
        e = workdir_reuse(x, j, a, wd, eb);
    return e;
}

tr_err workdir_fill(const struct exec_ctx *x, const struct job *j,
                    struct arena *a, struct workdir *wd, struct tr_errbuf *eb)
{
    const char *host = workdir_url_host(a, j->api_url);
    const char *mine[] = {wd->src, wd->home, wd->tmp, wd->shm};
    const char *tgz = arena_printf(a, "%s/config.tar.gz", wd->root);
    struct tr_errbuf why = {{0}};
    tr_err e = x->api.fetch_config(x->api.ctx, j->id, tgz, &why);
    if (e != TR_OK)
        return tr_fail(eb, e, "cannot fetch the configuration: %s",
                       tr_errbuf_msg(&why, e));
    const struct archive_limits lim = {
        .max_unpacked = (uint64_t)x->o.max_config_size,
        .max_entries = ARCHIVE_MAX_ENTRIES,
        .max_ratio = x->o.max_config_ratio,
    };
    e = archive_extract(tgz, wd->src, &lim, &why);
    unlink(tgz);
    if (e != TR_OK)
        return tr_fail(eb, e,
                       e == TR_ERR_IO ? "cannot extract the configuration: %s"
                                      : "the configuration was refused: %s",
                       tr_errbuf_msg(&why, e));
    e = find_cwd(a, wd->src, j->working_directory, &wd->cwd, eb);
    if (e == TR_OK)
        e = write_override(j, wd->cwd, host, a, eb);
    if (e == TR_OK)
        e = write_tfvars(j, wd->cwd, a, eb);
    for (int i = 0; e == TR_OK && i < 4; i++)
        e = workdir_give(x, mine[i], i == 0, eb);
    return e;
}
