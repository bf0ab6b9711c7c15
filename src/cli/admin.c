/*
 * admin.c - `terrace admin`: bootstrap users, tokens and organizations
 * through a node's REST API (libcurl), e.g. to make a CI user.
 *
 *   terrace admin [options] user create --username U --email E [--admin]
 *   terrace admin [options] user list
 *   terrace admin [options] user token --username U [--description D]
 *   terrace admin [options] org create --name N --email E [--owner USER]
 *   terrace admin [options] tool-versions add --version V --path P
 *   terrace admin [options] join-token [--rotate]
 *   terrace admin rekey --to vault|file [SETTINGS] (rekey.c: works on the
 *   database and blob store directly, with the nodes' settings)
 *   terrace admin blob copy --to URL [node settings]   (blob_copy.c)
 *
 * options: --url URL (default https://127.0.0.1:8443), --token-file F
 * (default ./terrace-data/admin-token, or the TERRACE_TOKEN variable when
 * no --token-file is given), --ca-file F (default: tls/ca.pem beside the
 * token file, when it exists).  Options may come before or after the
 * subcommand.  The token is sent only to --url and never printed, except
 * the new token that `user token` exists to print.
 *
 * The endpoints used are site-admin ones (/api/v2/admin/users, Terrace's
 * POST /api/v2/admin/users and .../authentication-tokens) plus
 * POST /api/v2/organizations and .../organization-memberships, and
 * POST /api/v2/admin/terraform-versions (with the sha256 of the binary,
 * computed here; the server checks it against its own copy), and
 * GET/POST /api/v2/admin/join-token (a primary's; the token is printed,
 * since that is what the command is for).
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#include "cli/cli.h"

#include "core/curl_load.h"
#include <errno.h>
#include <jansson.h>
#include <libgen.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/buf.h"
#include "executor/executor.h"

#define MAX_RESPONSE (16 << 20)
#define DEFAULT_URL "https://127.0.0.1:8443"
#define DEFAULT_TOKEN_FILE "./terrace-data/admin-token"

struct admin_ctx {
    const char *url;
    char token[512];
    const char *ca_file;
    char ca_buf[PATH_MAX];
};

/* Parsed command line: global options and subcommand options. */
struct args {
    const char *url, *token_file, *ca_file;
    const char *words[2];
    int nwords;
    const char *username, *email, *name, *owner, *description;
    const char *version, *path;
    bool admin;
    bool rotate;
    bool help;
};

static void usage(void)
{
    fprintf(stderr,
            "usage: terrace admin [options] <command>\n\n"
            "commands:\n"
            "  user create --username U --email E [--admin]\n"
            "        create a user; prints its id\n"
            "  user list\n"
            "        list users: id, username, email, site admin\n"
            "  user token --username U [--description D]\n"
            "        issue an API token for the user; prints only the "
            "token\n"
            "  org create --name N --email E [--owner USERNAME]\n"
            "        create an organization (and invite USERNAME, who\n"
            "        joins by accepting: POST /api/v2/organization-\n"
            "        memberships/ID/actions/accept with their token)\n"
            "  tool-versions add --version V --path P\n"
            "        register a tofu/terraform binary (same path on every "
            "node)\n"
            "  join-token [--rotate]\n"
            "        print the cluster's join token (a primary's); --rotate "
            "replaces it\n"
            "  rekey --to vault|file [SETTINGS]\n"
            "        seal stored data again under a new key-encryption key "
            "(see\n"
            "        terrace admin rekey --help)\n"
            "  blob copy --to URL [node settings]\n"
            "        copy the node's blob store to URL, verified (no API "
            "call;\n"
            "        see terrace admin blob copy --help)\n\n"
            "options:\n"
            "  --url URL          node URL (default " DEFAULT_URL ")\n"
            "  --token-file F     site-admin token (default " DEFAULT_TOKEN_FILE
            ",\n"
            "                     or $TERRACE_TOKEN when no --token-file)\n"
            "  --ca-file F        CA certificate (default: tls/ca.pem next "
            "to the\n"
            "                     token file)\n");
}

/* Returns 0, or 2 after printing a usage error. */
static int parse_args(int argc, char **argv, struct args *a)
{
    struct {
        const char *flag;
        const char **dst;
    } opts[] = {
        {"--url", &a->url},         {"--token-file", &a->token_file},
        {"--ca-file", &a->ca_file}, {"--username", &a->username},
        {"--email", &a->email},     {"--name", &a->name},
        {"--owner", &a->owner},     {"--description", &a->description},
        {"--version", &a->version}, {"--path", &a->path},
    };
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (strcmp(arg, "--admin") == 0) {
            a->admin = true;
            continue;
        }
        if (strcmp(arg, "--rotate") == 0) {
            a->rotate = true;
            continue;
        }
        if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
            a->help = true;
            continue;
        }
        if (arg[0] != '-') {
            if (a->nwords >= 2) {
                fprintf(stderr, "terrace admin: unexpected argument %s\n", arg);
                return 2;
            }
            a->words[a->nwords++] = arg;
            continue;
        }
        bool known = false;
        for (size_t k = 0; k < sizeof(opts) / sizeof(opts[0]); k++) {
            if (strcmp(arg, opts[k].flag) != 0)
                continue;
            if (i + 1 >= argc) {
                fprintf(stderr, "terrace admin: %s needs a value\n", arg);
                return 2;
            }
            *opts[k].dst = argv[++i];
            known = true;
        }
        if (!known) {
            fprintf(stderr, "terrace admin: unknown option %s\n", arg);
            return 2;
        }
    }
    return 0;
}

/* Token and CA file from the options; returns 0 or 1 after printing. */
static int resolve_credentials(const struct args *a, struct admin_ctx *c)
{
    c->url = a->url ? a->url : DEFAULT_URL;
    const char *env = getenv("TERRACE_TOKEN");
    const char *file = a->token_file;
    if (file == NULL && (env == NULL || *env == '\0'))
        file = DEFAULT_TOKEN_FILE;
    if (file != NULL) {
        FILE *f = fopen(file, "r");
        if (f == NULL || fgets(c->token, sizeof(c->token), f) == NULL) {
            fprintf(stderr, "terrace admin: cannot read token file %s\n", file);
            if (f != NULL)
                fclose(f);
            return 1;
        }
        fclose(f);
        c->token[strcspn(c->token, "\r\n")] = '\0';
    } else {
        snprintf(c->token, sizeof(c->token), "%s", env);
    }
    if (c->token[0] == '\0') {
        fprintf(stderr, "terrace admin: the token is empty\n");
        return 1;
    }
    c->ca_file = a->ca_file;
    if (c->ca_file == NULL) {
        char dir[PATH_MAX];
        snprintf(dir, sizeof(dir), "%s",
                 file != NULL ? file : DEFAULT_TOKEN_FILE);
        snprintf(c->ca_buf, sizeof(c->ca_buf), "%s/tls/ca.pem", dirname(dir));
        if (access(c->ca_buf, R_OK) == 0)
            c->ca_file = c->ca_buf;
    }
    return 0;
}

static size_t collect(char *p, size_t size, size_t n, void *arg)
{
    struct buf *b = arg;
    return buf_append(b, p, size * n) == TR_OK ? size * n : 0;
}

/* Prints the server's error detail for a failed call. */
static void print_error(long status, json_t *doc, const char *path)
{
    json_t *err = json_array_get(json_object_get(doc, "errors"), 0);
    const char *detail = json_string_value(json_object_get(err, "detail"));
    const char *title = json_string_value(json_object_get(err, "title"));
    if (detail != NULL && *detail != '\0')
        fprintf(stderr, "terrace admin: %s\n", detail);
    else if (title != NULL)
        fprintf(stderr, "terrace admin: %s\n", title);
    else
        fprintf(stderr, "terrace admin: the server answered HTTP %ld\n",
                status);
    if (status == 404 && strncmp(path, "/api/v2/admin/", 14) == 0)
        fprintf(stderr, "terrace admin: (the token must be a site admin's)"
                        "\n");
}

/* One JSON:API call.  On success (2xx) *out is the parsed body (NULL for
 * an empty one) and 0 is returned; otherwise the error is printed and 1
 * is returned. */
static int call(const struct admin_ctx *c, const char *method, const char *path,
                json_t *body, json_t **out)
{
    *out = NULL;
    CURL *h = curl_easy_init();
    if (h == NULL) {
        fprintf(stderr, "terrace admin: cannot initialise libcurl\n");
        return 1;
    }
    char *url = NULL, *auth = NULL, *payload = NULL;
    struct curl_slist *hdrs = NULL;
    struct buf resp;
    buf_init(&resp, MAX_RESPONSE);
    size_t ulen = strlen(c->url) + strlen(path) + 1;
    url = malloc(ulen);
    auth = malloc(strlen(c->token) + 32);
    int rc = 1;
    if (url == NULL || auth == NULL)
        goto done;
    snprintf(url, ulen, "%s%s", c->url, path);
    snprintf(auth, strlen(c->token) + 32, "Authorization: Bearer %s", c->token);
    hdrs = curl_slist_append(hdrs, auth);
    hdrs = curl_slist_append(hdrs, "Accept: application/vnd.api+json");
    if (body != NULL) {
        payload = json_dumps(body, JSON_COMPACT);
        hdrs =
            curl_slist_append(hdrs, "Content-Type: application/vnd.api+json");
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, payload);
    }
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &resp);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, 60L);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    if (c->ca_file != NULL)
        curl_easy_setopt(h, CURLOPT_CAINFO, c->ca_file);
    CURLcode cc = curl_easy_perform(h);
    long status = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    if (cc != CURLE_OK) {
        fprintf(stderr, "terrace admin: %s: %s\n", c->url,
                curl_easy_strerror(cc));
        goto done;
    }
    json_t *doc =
        resp.len > 0 ? json_loadb(resp.data, resp.len, 0, NULL) : NULL;
    if (status < 200 || status > 299) {
        print_error(status, doc, path);
        json_decref(doc);
        goto done;
    }
    if (resp.len > 0 && doc == NULL) {
        fprintf(stderr, "terrace admin: the server sent malformed JSON\n");
        goto done;
    }
    *out = doc;
    rc = 0;
done:
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(h);
    free(payload);
    free(url);
    if (auth != NULL)
        explicit_bzero(auth, strlen(auth));
    free(auth);
    buf_free(&resp);
    return rc;
}

static const char *attr(json_t *obj, const char *name)
{
    return json_string_value(
        json_object_get(json_object_get(obj, "attributes"), name));
}

/* Percent-encodes s for a query string into out (size n). */
static void query_escape(const char *s, char *out, size_t n)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t j = 0;
    for (; *s && j + 4 < n; s++) {
        unsigned char ch = (unsigned char)*s;
        bool plain = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                     (ch >= '0' && ch <= '9') || ch == '-' || ch == '_' ||
                     ch == '.' || ch == '~';
        if (plain) {
            out[j++] = (char)ch;
        } else {
            out[j++] = '%';
            out[j++] = hex[ch >> 4];
            out[j++] = hex[ch & 15];
        }
    }
    out[j] = '\0';
}

/* Finds the user named username through the admin list; *user is a new
 * reference.  Returns 0, or 1 after printing. */
static int find_user(const struct admin_ctx *c, const char *username,
                     json_t **user)
{
    char q[256], path[512];
    query_escape(username, q, sizeof(q));
    for (int page = 1;; page++) {
        json_t *doc = NULL;
        snprintf(path, sizeof(path),
                 "/api/v2/admin/users?q=%s&page%%5Bsize%%5D=100"
                 "&page%%5Bnumber%%5D=%d",
                 q, page);
        if (call(c, "GET", path, NULL, &doc) != 0)
            return 1;
        size_t i;
        json_t *item;
        json_array_foreach(json_object_get(doc, "data"), i, item)
        {
            const char *u = attr(item, "username");
            if (u != NULL && strcmp(u, username) == 0) {
                *user = json_incref(item);
                json_decref(doc);
                return 0;
            }
        }
        json_t *next = json_object_get(
            json_object_get(json_object_get(doc, "meta"), "pagination"),
            "next-page");
        bool more = json_is_integer(next);
        json_decref(doc);
        if (!more)
            break;
    }
    fprintf(stderr, "terrace admin: no user named %s\n", username);
    return 1;
}

static int user_create(const struct admin_ctx *c, const struct args *a)
{
    if (a->username == NULL || a->email == NULL) {
        fprintf(stderr, "terrace admin: user create needs --username and "
                        "--email\n");
        return 2;
    }
    json_t *body = json_pack("{s:{s:s,s:{s:s,s:s,s:b}}}", "data", "type",
                             "users", "attributes", "username", a->username,
                             "email", a->email, "is-admin", a->admin);
    json_t *doc = NULL;
    int rc = call(c, "POST", "/api/v2/admin/users", body, &doc);
    json_decref(body);
    if (rc == 0) {
        const char *id = json_string_value(
            json_object_get(json_object_get(doc, "data"), "id"));
        printf("%s\n", id ? id : "");
    }
    json_decref(doc);
    return rc;
}

static int user_list(const struct admin_ctx *c)
{
    char path[128];
    for (int page = 1;; page++) {
        json_t *doc = NULL;
        snprintf(path, sizeof(path),
                 "/api/v2/admin/users?page%%5Bsize%%5D=100"
                 "&page%%5Bnumber%%5D=%d",
                 page);
        if (call(c, "GET", path, NULL, &doc) != 0)
            return 1;
        size_t i;
        json_t *item;
        json_array_foreach(json_object_get(doc, "data"), i, item)
        {
            json_t *adm = json_object_get(json_object_get(item, "attributes"),
                                          "is-admin");
            const char *email = attr(item, "email");
            printf("%s\t%s\t%s\t%s\n",
                   json_string_value(json_object_get(item, "id")),
                   attr(item, "username"), email ? email : "",
                   json_is_true(adm) ? "admin" : "-");
        }
        json_t *next = json_object_get(
            json_object_get(json_object_get(doc, "meta"), "pagination"),
            "next-page");
        bool more = json_is_integer(next);
        json_decref(doc);
        if (!more)
            return 0;
    }
}

static int user_token(const struct admin_ctx *c, const struct args *a)
{
    if (a->username == NULL) {
        fprintf(stderr, "terrace admin: user token needs --username\n");
        return 2;
    }
    json_t *user = NULL;
    if (find_user(c, a->username, &user) != 0)
        return 1;
    char path[256];
    snprintf(path, sizeof(path),
             "/api/v2/admin/users/%s/"
             "authentication-tokens",
             json_string_value(json_object_get(user, "id")));
    json_decref(user);
    json_t *body =
        json_pack("{s:{s:s,s:{s:s}}}", "data", "type", "authentication-tokens",
                  "attributes", "description",
                  a->description ? a->description : "issued by terrace admin");
    json_t *doc = NULL;
    int rc = call(c, "POST", path, body, &doc);
    json_decref(body);
    if (rc == 0) {
        const char *tok = attr(json_object_get(doc, "data"), "token");
        if (tok == NULL) {
            fprintf(stderr, "terrace admin: the server sent no token\n");
            rc = 1;
        } else {
            printf("%s\n", tok);
        }
    }
    json_decref(doc);
    return rc;
}

static int org_create(const struct admin_ctx *c, const struct args *a)
{
    if (a->name == NULL || a->email == NULL) {
        fprintf(stderr, "terrace admin: org create needs --name and "
                        "--email\n");
        return 2;
    }
    json_t *owner = NULL;
    if (a->owner != NULL && find_user(c, a->owner, &owner) != 0)
        return 1;
    json_t *body =
        json_pack("{s:{s:s,s:{s:s,s:s}}}", "data", "type", "organizations",
                  "attributes", "name", a->name, "email", a->email);
    json_t *doc = NULL;
    int rc = call(c, "POST", "/api/v2/organizations", body, &doc);
    json_decref(body);
    json_decref(doc);
    if (rc == 0 && owner != NULL) {
        const char *email = attr(owner, "email");
        char path[256];
        snprintf(path, sizeof(path),
                 "/api/v2/organizations/%s/organization-memberships", a->name);
        body = json_pack("{s:{s:s,s:{s:s}}}", "data", "type",
                         "organization-memberships", "attributes", "email",
                         email ? email : "");
        doc = NULL;
        rc = call(c, "POST", path, body, &doc);
        json_decref(body);
        json_decref(doc);
    }
    json_decref(owner);
    if (rc == 0)
        printf("%s\n", a->name);
    return rc;
}

static int tool_add(const struct admin_ctx *c, const struct args *a)
{
    if (a->version == NULL || a->path == NULL) {
        fprintf(stderr, "terrace admin: tool-versions add needs --version "
                        "and --path\n");
        return 2;
    }
    char real[PATH_MAX];
    if (realpath(a->path, real) == NULL) {
        fprintf(stderr, "terrace admin: %s: %s\n", a->path, strerror(errno));
        return 1;
    }
    struct arena *ar = arena_new();
    struct tr_errbuf eb = {{0}};
    char *sha = NULL;
    tr_err e = executor_tool_check(ar, real, &sha, &eb);
    int rc = 1;
    if (e != TR_OK) {
        fprintf(stderr, "terrace admin: %s\n", tr_errbuf_msg(&eb, e));
        goto done;
    }
    json_t *body = json_pack("{s:{s:s,s:{s:s,s:s,s:s}}}", "data", "type",
                             "terraform-versions", "attributes", "version",
                             a->version, "path", real, "sha", sha);
    json_t *doc = NULL;
    rc = call(c, "POST", "/api/v2/admin/terraform-versions", body, &doc);
    json_decref(body);
    if (rc == 0) {
        const char *id = json_string_value(
            json_object_get(json_object_get(doc, "data"), "id"));
        printf("%s\n", id ? id : "");
    }
    json_decref(doc);
done:
    arena_destroy(ar);
    return rc;
}

static int join_token(const struct admin_ctx *c, const struct args *a)
{
    json_t *doc = NULL;
    int rc = call(c, a->rotate ? "POST" : "GET", "/api/v2/admin/join-token",
                  NULL, &doc);
    if (rc != 0)
        return rc;
    const char *token = attr(json_object_get(doc, "data"), "token");
    if (token == NULL) {
        fprintf(stderr, "terrace admin: the server sent no join token\n");
        rc = 1;
    } else {
        printf("%s\n", token);
    }
    json_decref(doc);
    return rc;
}

int cli_admin(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "rekey") == 0)
        return cli_rekey(argc - 1, argv + 1);
    if (argc >= 2 && strcmp(argv[1], "blob") == 0) /* local, not the API */
        return cli_admin_blob(argc - 1, argv + 1);
    struct args a = {0};
    int rc = parse_args(argc, argv, &a);
    if (rc != 0) {
        usage();
        return rc;
    }
    if (a.help || (a.nwords == 1 && strcmp(a.words[0], "help") == 0)) {
        usage();
        return 0;
    }
    bool join = a.nwords == 1 && strcmp(a.words[0], "join-token") == 0;
    if (a.nwords != 2 && !join) {
        usage();
        return 2;
    }
    enum { NONE, U_CREATE, U_LIST, U_TOKEN, O_CREATE, T_ADD, JOIN } cmd = NONE;
    if (join) {
        cmd = JOIN;
    } else if (strcmp(a.words[0], "user") == 0) {
        if (strcmp(a.words[1], "create") == 0)
            cmd = U_CREATE;
        else if (strcmp(a.words[1], "list") == 0)
            cmd = U_LIST;
        else if (strcmp(a.words[1], "token") == 0)
            cmd = U_TOKEN;
    } else if (strcmp(a.words[0], "org") == 0 &&
               strcmp(a.words[1], "create") == 0) {
        cmd = O_CREATE;
    } else if (strcmp(a.words[0], "tool-versions") == 0 &&
               strcmp(a.words[1], "add") == 0) {
        cmd = T_ADD;
    }
    if (cmd == NONE) {
        fprintf(stderr, "terrace admin: unknown command %s %s\n", a.words[0],
                a.words[1]);
        usage();
        return 2;
    }
    struct admin_ctx c = {0};
    rc = resolve_credentials(&a, &c);
    if (rc != 0)
        return rc;
    curl_global_init(CURL_GLOBAL_DEFAULT);
    switch (cmd) {
    case U_CREATE:
        rc = user_create(&c, &a);
        break;
    case U_LIST:
        rc = user_list(&c);
        break;
    case U_TOKEN:
        rc = user_token(&c, &a);
        break;
    case O_CREATE:
        rc = org_create(&c, &a);
        break;
    case JOIN:
        rc = join_token(&c, &a);
        break;
    case T_ADD:
        rc = tool_add(&c, &a);
        break;
    case NONE:
        break;
    }
    curl_global_cleanup();
    explicit_bzero(c.token, sizeof(c.token));
    return rc;
}
