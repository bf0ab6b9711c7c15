/*
 * blob_s3_profile.c - static S3 keys from the AWS shared credentials
 * file: AWS_SHARED_CREDENTIALS_FILE, else $HOME/.aws/credentials, the
 * profile named by AWS_PROFILE (else "default").
 *
 * The file is the INI the AWS tools write: "[name]" sections of
 * "key = value" lines, "#" and ";" comment lines.  Only the static keys
 * are read (aws_access_key_id, aws_secret_access_key,
 * aws_session_token); a profile that names a role, SSO or a process
 * instead is refused when asked for by name and passed over otherwise.
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "blob/blob_s3_int.h"

#define LINE_MAX_LEN 8192

static char *trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    size_t n = strlen(s);
    while (n > 0 && isspace((unsigned char)s[n - 1]))
        s[--n] = '\0';
    return s;
}

static tr_err set_field(char *dst, size_t cap, const char *v, const char *key,
                        const char *path, struct tr_errbuf *eb)
{
    if (strlen(v) >= cap)
        return tr_fail(eb, TR_ERR_CONFIG, "%s: %s is too long", path, key);
    memcpy(dst, v, strlen(v) + 1);
    return TR_OK;
}

/* The file's path into out; false when there is none to look at. */
static bool file_path(char *out, size_t n, bool *named)
{
    const char *f = getenv("AWS_SHARED_CREDENTIALS_FILE");
    *named = f != NULL && f[0] != '\0';
    if (*named)
        return (size_t)snprintf(out, n, "%s", f) < n;
    const char *home = getenv("HOME");
    if (home == NULL || home[0] == '\0')
        return false;
    return (size_t)snprintf(out, n, "%s/.aws/credentials", home) < n;
}

/* Reads the profile's keys from f into *c; *seen when it is there. */
static tr_err read_profile(FILE *f, const char *profile, const char *path,
                           struct s3_creds *c, bool *seen, struct tr_errbuf *eb)
{
    char line[LINE_MAX_LEN];
    bool in = false;
    unsigned lineno = 0;
    while (fgets(line, sizeof(line), f) != NULL) {
        lineno++;
        if (strchr(line, '\n') == NULL && !feof(f))
            return tr_fail(eb, TR_ERR_CONFIG, "%s:%u: line too long", path,
                           lineno);
        char *s = trim(line);
        if (s[0] == '\0' || s[0] == '#' || s[0] == ';')
            continue;
        if (s[0] == '[') {
            char *end = strchr(s, ']');
            if (end == NULL)
                return tr_fail(eb, TR_ERR_CONFIG,
                               "%s:%u: a section needs its closing ]", path,
                               lineno);
            *end = '\0';
            in = strcmp(trim(s + 1), profile) == 0;
            *seen = *seen || in;
            continue;
        }
        if (!in)
            continue;
        char *eq = strchr(s, '=');
        if (eq == NULL)
            continue; /* a line of a nested block: not ours */
        *eq = '\0';
        char *k = trim(s), *v = trim(eq + 1);
        tr_err e = TR_OK;
        if (strcmp(k, "aws_access_key_id") == 0)
            e = set_field(c->access, sizeof(c->access), v, k, path, eb);
        else if (strcmp(k, "aws_secret_access_key") == 0)
            e = set_field(c->secret, sizeof(c->secret), v, k, path, eb);
        else if (strcmp(k, "aws_session_token") == 0)
            e = set_field(c->token, sizeof(c->token), v, k, path, eb);
        else
            continue;
        if (e != TR_OK)
            return e;
    }
    return ferror(f) ? tr_fail(eb, TR_ERR_CONFIG, "%s: read error", path)
                     : TR_OK;
}

tr_err s3_profile_read(struct s3_creds *out, bool *found, struct tr_errbuf *eb)
{
    *found = false;
    memset(out, 0, sizeof(*out));
    char path[1024];
    bool named_file = false;
    if (!file_path(path, sizeof(path), &named_file))
        return TR_OK;
    const char *p = getenv("AWS_PROFILE");
    bool named = p != NULL && p[0] != '\0';
    const char *profile = named ? p : "default";
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        if (errno == ENOENT && !named_file && !named)
            return TR_OK;
        return tr_fail(eb, TR_ERR_CONFIG,
                       "cannot read the AWS credentials file %s: %s", path,
                       strerror(errno));
    }
    bool seen = false;
    tr_err e = read_profile(f, profile, path, out, &seen, eb);
    fclose(f);
    if (e == TR_OK && seen &&
        (out->access[0] == '\0') != (out->secret[0] == '\0'))
        e = tr_fail(eb, TR_ERR_CONFIG,
                    "%s: profile %s needs both aws_access_key_id and "
                    "aws_secret_access_key",
                    path, profile);
    if (e == TR_OK && named && (!seen || out->access[0] == '\0'))
        e = tr_fail(eb, TR_ERR_CONFIG,
                    !seen ? "AWS_PROFILE=%s: no such profile in %s"
                          : "AWS_PROFILE=%s: the profile in %s has no static "
                            "keys (roles, SSO and credential processes are "
                            "not read)",
                    profile, path);
    if (e == TR_OK && out->access[0] != '\0')
        *found = true;
    if (!*found)
        OPENSSL_cleanse(out, sizeof(*out));
    return e;
}
