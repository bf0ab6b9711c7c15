/*
 * blob_azure_url.c - reads an azblob://CONTAINER/PREFIX?account=A&
 * endpoint=URL&ca-file=PEM setting and the Azure credentials in the
 * environment.
 *
 * Everything is checked before it is used in a request: container names
 * as Azure allows them, prefixes of key characters, http(s) endpoints,
 * alphanumeric accounts, a base64 account key; unknown parameters are
 * refused rather than ignored.  Messages never hold the key or token.
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "blob/blob_azure_int.h"

/* Container names: 3 to 63 of [a-z0-9-], starting and ending with a
 * letter or digit, no "--". */
static bool valid_container(const char *s, size_t len)
{
    if (len < 3 || len > 63 || s[0] == '-' || s[len - 1] == '-')
        return false;
    for (size_t i = 0; i < len; i++) {
        bool ok = (s[i] >= 'a' && s[i] <= 'z') ||
                  isdigit((unsigned char)s[i]) || s[i] == '-';
        if (!ok || (s[i] == '-' && i > 0 && s[i - 1] == '-'))
            return false;
    }
    return true;
}

static bool valid_prefix(const char *s)
{
    for (const char *p = s; *p; p++)
        if (!isalnum((unsigned char)*p) && strchr("._/-", *p) == NULL)
            return false;
    return strstr(s, "..") == NULL && strstr(s, "//") == NULL;
}

/* Decodes %XX escapes of s (len bytes) into dst. */
static bool unescape(const char *s, size_t len, char *dst, size_t cap)
{
    size_t j = 0;
    for (size_t i = 0; i < len; i++) {
        if (j + 1 >= cap)
            return false;
        if (s[i] == '%' && i + 2 < len + 0 &&
            isxdigit((unsigned char)s[i + 1]) &&
            isxdigit((unsigned char)s[i + 2])) {
            char hex[3] = {s[i + 1], s[i + 2], '\0'};
            dst[j++] = (char)strtol(hex, NULL, 16);
            i += 2;
        } else if (s[i] == '%') {
            return false;
        } else {
            dst[j++] = s[i] == '+' ? ' ' : s[i];
        }
    }
    dst[j] = '\0';
    return true;
}

/* Splits the endpoint into host and path and checks its scheme. */
static tr_err set_endpoint(struct blob_azure *az, const char *ep,
                           struct tr_errbuf *eb)
{
    size_t len = strlen(ep);
    while (len > 0 && ep[len - 1] == '/')
        len--;
    bool http = strncmp(ep, "http://", 7) == 0;
    if (!http && strncmp(ep, "https://", 8) != 0)
        return tr_fail(eb, TR_ERR_CONFIG,
                       "azblob url: endpoint must be an "
                       "http:// or https:// url");
    size_t skip = http ? 7 : 8;
    if (len <= skip)
        return tr_fail(eb, TR_ERR_CONFIG, "azblob url: endpoint has no host");
    const char *host = ep + skip;
    const char *slash = memchr(host, '/', len - skip);
    size_t hlen = slash != NULL ? (size_t)(slash - ep) : len;
    if (*host == '/' || memchr(ep, '?', len) != NULL ||
        len >= sizeof(az->base_url) || hlen >= sizeof(az->host) ||
        len - hlen >= sizeof(az->base_path))
        return tr_fail(eb, TR_ERR_CONFIG, "azblob url: malformed endpoint");
    memcpy(az->base_url, ep, len);
    az->base_url[len] = '\0';
    memcpy(az->host, ep, hlen);
    az->host[hlen] = '\0';
    memcpy(az->base_path, ep + hlen, len - hlen);
    az->base_path[len - hlen] = '\0';
    return TR_OK;
}

/* The query: account=, endpoint= and ca-file=; anything else is
 * refused. */
static tr_err parse_query(struct blob_azure *az, const char *q, char *ep,
                          size_t ep_cap, struct tr_errbuf *eb)
{
    while (q != NULL && *q != '\0') {
        const char *amp = strchr(q, '&');
        size_t len = amp != NULL ? (size_t)(amp - q) : strlen(q);
        const char *eq = memchr(q, '=', len);
        size_t nlen = eq != NULL ? (size_t)(eq - q) : len;
        const char *v = eq != NULL ? eq + 1 : q + len;
        size_t vlen = len - (size_t)(v - q);
        if (nlen == 7 && strncmp(q, "account", 7) == 0) {
            if (!unescape(v, vlen, az->account, sizeof(az->account)))
                return tr_fail(eb, TR_ERR_CONFIG, "azblob url: bad account");
        } else if (nlen == 8 && strncmp(q, "endpoint", 8) == 0) {
            if (!unescape(v, vlen, ep, ep_cap))
                return tr_fail(eb, TR_ERR_CONFIG, "azblob url: bad endpoint");
        } else if (nlen == 7 && strncmp(q, "ca-file", 7) == 0) {
            if (!unescape(v, vlen, az->ca_file, sizeof(az->ca_file)))
                return tr_fail(eb, TR_ERR_CONFIG, "azblob url: bad ca-file");
        } else if (len > 0) {
            return tr_fail(eb, TR_ERR_CONFIG,
                           "azblob url: unknown parameter %.*s (known: "
                           "account, endpoint, ca-file)",
                           (int)(nlen > 40 ? 40 : nlen), q);
        }
        q = amp != NULL ? amp + 1 : NULL;
    }
    return TR_OK;
}

/* Container, prefix and query of an azblob:// URL. */
static tr_err parse_url(struct blob_azure *az, const char *url,
                        struct tr_errbuf *eb)
{
    if (strncmp(url, "azblob://", 9) != 0)
        return tr_fail(eb, TR_ERR_CONFIG,
                       "azblob url must start with "
                       "azblob://");
    const char *c = url + 9;
    size_t clen = strcspn(c, "/?");
    if (!valid_container(c, clen))
        return tr_fail(eb, TR_ERR_CONFIG,
                       "azblob url: container name must "
                       "be 3-63 of a-z, 0-9 and single '-'");
    memcpy(az->container, c, clen);
    az->container[clen] = '\0';
    const char *p = c + clen;
    char prefix[480];
    size_t plen = 0;
    if (*p == '/') {
        p++;
        plen = strcspn(p, "?");
        if (plen >= sizeof(prefix) - 1)
            return tr_fail(eb, TR_ERR_CONFIG, "azblob url: prefix too long");
        memcpy(prefix, p, plen);
        p += plen;
    }
    while (plen > 0 && prefix[plen - 1] == '/')
        plen--;
    prefix[plen] = '\0';
    if (prefix[0] == '/' || !valid_prefix(prefix))
        return tr_fail(eb, TR_ERR_CONFIG,
                       "azblob url: prefix may hold only "
                       "A-Z a-z 0-9 . _ / - and no \"..\"");
    snprintf(az->prefix, sizeof(az->prefix), "%s%s", prefix,
             plen > 0 ? "/" : "");
    char ep[512] = "";
    tr_err e = parse_query(az, *p == '?' ? p + 1 : NULL, ep, sizeof(ep), eb);
    if (e != TR_OK)
        return e;
    const char *env = getenv("AZURE_STORAGE_ACCOUNT");
    if (az->account[0] == '\0' && env != NULL)
        snprintf(az->account, sizeof(az->account), "%s", env);
    if (az->account[0] == '\0')
        return tr_fail(eb, TR_ERR_CONFIG,
                       "azblob url: no storage account: "
                       "add ?account=NAME or set AZURE_STORAGE_ACCOUNT");
    for (const char *a = az->account; *a; a++)
        if (!isalnum((unsigned char)*a))
            return tr_fail(eb, TR_ERR_CONFIG,
                           "azblob url: account names "
                           "hold only letters and digits");
    if (ep[0] == '\0')
        snprintf(ep, sizeof(ep), "https://%s.blob.core.windows.net",
                 az->account);
    return set_endpoint(az, ep, eb);
}

/* AZURE_STORAGE_KEY (Shared Key) or AZURE_STORAGE_SAS_TOKEN. */
static tr_err load_credentials(struct blob_azure *az, struct tr_errbuf *eb)
{
    const char *key = getenv("AZURE_STORAGE_KEY");
    const char *sas = getenv("AZURE_STORAGE_SAS_TOKEN");
    if (key != NULL && key[0] != '\0') {
        size_t len = strlen(key);
        unsigned char tmp[sizeof(az->key) + 3];
        if (len % 4 != 0 || len / 4 * 3 > sizeof(tmp))
            return tr_fail(eb, TR_ERR_CONFIG,
                           "AZURE_STORAGE_KEY is not a base64 account key");
        int n = EVP_DecodeBlock(tmp, (const unsigned char *)key, (int)len);
        if (n <= 0)
            return tr_fail(eb, TR_ERR_CONFIG,
                           "AZURE_STORAGE_KEY is not a base64 account key");
        while (len > 0 && key[len - 1] == '=') { /* padding decoded as 0 */
            n--;
            len--;
        }
        memcpy(az->key, tmp, (size_t)n);
        az->key_len = (size_t)n;
        memset(tmp, 0, sizeof(tmp));
        return TR_OK;
    }
    if (sas != NULL && sas[0] != '\0') {
        if (sas[0] == '?')
            sas++;
        if (strpbrk(sas, " \t\r\n#") != NULL)
            return tr_fail(eb, TR_ERR_CONFIG,
                           "AZURE_STORAGE_SAS_TOKEN is "
                           "not a query string");
        az->sas = strdup(sas);
        if (az->sas == NULL)
            return tr_fail(eb, TR_ERR_NOMEM, "azure blob: out of memory");
        return TR_OK;
    }
    return tr_fail(eb, TR_ERR_CONFIG,
                   "azure blob needs credentials: set "
                   "AZURE_STORAGE_KEY or AZURE_STORAGE_SAS_TOKEN");
}

tr_err azure_config(struct blob_azure *az, const char *url,
                    struct tr_errbuf *eb)
{
    tr_err e = parse_url(az, url, eb);
    if (e == TR_OK)
        e = load_credentials(az, eb);
    return e;
}
