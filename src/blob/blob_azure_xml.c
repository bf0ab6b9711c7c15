/*
 * blob_azure_xml.c - reads List Blobs answers and error bodies of Azure
 * Blob Storage (see blob_azure_xml.h for what is and is not parsed).
 *
 * Every scan is bounded by the end pointer it is given; text is copied
 * only into buffers whose size is checked first.
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "blob/blob_azure_xml.h"
#include "core/util.h"

/* The first element named tag in [p, end): body to body_end delimit its
 * content (empty for <tag/>), after points past it; attrs to attrs_end
 * delimit its start tag's attributes.  False if there is none or it is
 * not closed. */
static bool find_elem(const char *p, const char *end, const char *tag,
                      const char **body, const char **body_end,
                      const char **after, const char **attrs,
                      const char **attrs_end)
{
    size_t tlen = strlen(tag);
    while (p < end) {
        const char *lt = memchr(p, '<', (size_t)(end - p));
        if (lt == NULL || (size_t)(end - lt) < tlen + 2)
            return false;
        const char *nx = lt + 1 + tlen;
        if (memcmp(lt + 1, tag, tlen) != 0 ||
            (*nx != '>' && *nx != ' ' && *nx != '/')) {
            p = lt + 1;
            continue;
        }
        const char *gt = memchr(nx, '>', (size_t)(end - nx));
        if (gt == NULL)
            return false;
        *attrs = nx;
        *attrs_end = gt;
        if (gt[-1] == '/') { /* <tag/> or <tag a="b"/> */
            *attrs_end = gt - 1;
            *body = *body_end = gt + 1;
            *after = gt + 1;
            return true;
        }
        const char *s = gt + 1;
        for (const char *q = s; q < end; q++) {
            q = memchr(q, '<', (size_t)(end - q));
            if (q == NULL)
                return false;
            if ((size_t)(end - q) >= tlen + 3 && q[1] == '/' &&
                memcmp(q + 2, tag, tlen) == 0 && q[2 + tlen] == '>') {
                *body = s;
                *body_end = q;
                *after = q + 3 + tlen;
                return true;
            }
        }
        return false;
    }
    return false;
}

static size_t put_utf8(unsigned long cp, char *dst)
{
    if (cp < 0x80) {
        dst[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        dst[0] = (char)(0xc0 | (cp >> 6));
        dst[1] = (char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        dst[0] = (char)(0xe0 | (cp >> 12));
        dst[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        dst[2] = (char)(0x80 | (cp & 0x3f));
        return 3;
    }
    dst[0] = (char)(0xf0 | (cp >> 18));
    dst[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
    dst[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
    dst[3] = (char)(0x80 | (cp & 0x3f));
    return 4;
}

/* Decodes the text [s, e) into dst; false if malformed or too long. */
static bool decode(const char *s, const char *e, char *dst, size_t cap)
{
    static const struct {
        const char *name;
        char c;
    } ents[] = {{"amp;", '&'},
                {"lt;", '<'},
                {"gt;", '>'},
                {"quot;", '"'},
                {"apos;", '\''}};
    size_t j = 0;
    while (s < e) {
        if (cap - j < 5)
            return false;
        if (*s == '<')
            return false;
        if (*s != '&') {
            dst[j++] = *s++;
            continue;
        }
        s++;
        const char *semi = memchr(s, ';', (size_t)(e - s));
        if (semi == NULL || semi - s > 10)
            return false;
        bool done = false;
        for (size_t i = 0; i < sizeof(ents) / sizeof(ents[0]); i++) {
            size_t n = strlen(ents[i].name);
            if ((size_t)(semi + 1 - s) == n &&
                memcmp(s, ents[i].name, n) == 0) {
                dst[j++] = ents[i].c;
                done = true;
            }
        }
        if (!done) {
            if (*s != '#' || semi - s < 2)
                return false;
            char num[12];
            memcpy(num, s + 1, (size_t)(semi - s - 1));
            num[semi - s - 1] = '\0';
            char *stop;
            bool hex = num[0] == 'x';
            unsigned long cp = strtoul(num + hex, &stop, hex ? 16 : 10);
            if (*stop != '\0' || num[hex] == '\0' || cp == 0 || cp > 0x10ffff)
                return false;
            j += put_utf8(cp, dst + j);
        }
        s = semi + 1;
    }
    dst[j] = '\0';
    return true;
}

bool azx_text(const char *xml, size_t len, const char *tag, char *dst,
              size_t cap)
{
    const char *b, *be, *after, *a, *ae;
    if (cap == 0 || !find_elem(xml, xml + len, tag, &b, &be, &after, &a, &ae))
        return false;
    return decode(b, be, dst, cap);
}

int64_t azx_http_date(const char *s)
{
    static const char months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
    char mon[4];
    int day, year, h, m, sec, used = 0;
    if (sscanf(s, "%*3[A-Za-z], %2d %3[A-Za-z] %4d %2d:%2d:%2d GMT%n", &day,
               mon, &year, &h, &m, &sec, &used) != 6 ||
        s[used] != '\0')
        return -1;
    const char *at = strstr(months, mon);
    if (at == NULL || strlen(mon) != 3 || (at - months) % 3 != 0)
        return -1;
    if (day < 1 || day > 31 || h > 23 || m > 59 || sec > 60 || year < 1970)
        return -1;
    struct tm tm = {.tm_year = year - 1900,
                    .tm_mon = (int)(at - months) / 3,
                    .tm_mday = day,
                    .tm_hour = h,
                    .tm_min = m,
                    .tm_sec = sec};
    return (int64_t)timegm(&tm);
}

/* One <Blob> element's name, size and mtime; *skip for names the service
 * had to encode (never a key Terrace writes). */
static tr_err read_blob(const char *p, const char *end, char *name, size_t cap,
                        uint64_t *size, int64_t *mtime, bool *skip,
                        struct tr_errbuf *eb)
{
    const char *b, *be, *after, *a, *ae;
    char num[32], date[64];
    *skip = false;
    if (!find_elem(p, end, "Name", &b, &be, &after, &a, &ae) ||
        !decode(b, be, name, cap))
        return tr_fail(eb, TR_ERR_IO, "azure blob: list: bad blob name");
    if (memmem(a, (size_t)(ae - a), "Encoded=\"true\"", 14) != NULL) {
        *skip = true;
        return TR_OK;
    }
    int64_t n;
    if (!azx_text(p, (size_t)(end - p), "Content-Length", num, sizeof(num)) ||
        util_parse_i64(num, &n) != TR_OK || n < 0)
        return tr_fail(eb, TR_ERR_IO, "azure blob: list: bad size of %s", name);
    *size = (uint64_t)n;
    if (!azx_text(p, (size_t)(end - p), "Last-Modified", date, sizeof(date)))
        return tr_fail(eb, TR_ERR_IO, "azure blob: list: no date for %s", name);
    *mtime = azx_http_date(date);
    if (*mtime < 0)
        return tr_fail(eb, TR_ERR_IO, "azure blob: list: bad date for %s",
                       name);
    return TR_OK;
}

tr_err azx_list(const char *xml, size_t len, azx_blob_fn fn, void *ctx,
                struct buf *next, struct tr_errbuf *eb)
{
    const char *end = xml + len, *b, *be, *after, *a, *ae;
    buf_reset(next);
    if (!find_elem(xml, end, "EnumerationResults", &b, &be, &after, &a, &ae))
        return tr_fail(eb, TR_ERR_IO, "azure blob: list: malformed answer");
    const char *doc = b, *doc_end = be;
    const char *p = doc, *blobs_end = doc_end;
    if (find_elem(doc, doc_end, "Blobs", &b, &be, &after, &a, &ae)) {
        p = b;
        blobs_end = be;
    } else {
        p = blobs_end;
    }
    char name[1100];
    while (p < blobs_end &&
           find_elem(p, blobs_end, "Blob", &b, &be, &after, &a, &ae)) {
        uint64_t size = 0;
        int64_t mtime = 0;
        bool skip;
        tr_err e =
            read_blob(b, be, name, sizeof(name), &size, &mtime, &skip, eb);
        if (e == TR_OK && !skip)
            e = fn(ctx, name, size, mtime, eb);
        if (e != TR_OK)
            return e;
        p = after;
    }
    char marker[4096];
    if (find_elem(doc, doc_end, "NextMarker", &b, &be, &after, &a, &ae)) {
        if (!decode(b, be, marker, sizeof(marker)) ||
            buf_puts(next, marker) != TR_OK)
            return tr_fail(eb, TR_ERR_IO, "azure blob: list: bad marker");
    }
    return TR_OK;
}
