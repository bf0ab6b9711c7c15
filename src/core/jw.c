/*
 * jw.c - the streaming JSON writer; see jw.h.
 *
 * Invariant: bit d of first is set from the moment a container at depth
 * d is opened until its first member or element is written; a separator
 * is written before every later one.  want_value is set between a key
 * and its value.
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#include "core/jw.h"

#include <stdint.h>
#include <string.h>

void jw_init(struct jw *w, struct buf *out)
{
    memset(w, 0, sizeof(*w));
    w->out = out;
}

tr_err jw_error(const struct jw *w)
{
    if (w->err != TR_OK)
        return w->err;
    if (w->depth != 0 || w->want_value)
        return TR_ERR_INTERNAL;
    return TR_OK;
}

/* Appends n bytes: straight into the buf while it has room (keeping its
 * NUL), through buf_append() when it must grow. */
static void put(struct jw *w, const char *s, size_t n)
{
    struct buf *b = w->out;
    if (w->err != TR_OK)
        return;
    if (n < b->cap - b->len && (b->max == 0 || n <= b->max - b->len)) {
        memcpy(b->data + b->len, s, n);
        b->len += n;
        b->data[b->len] = '\0';
        return;
    }
    tr_err e = buf_append(b, s, n);
    if (e != TR_OK)
        w->err = e;
}

static void putc1(struct jw *w, char c)
{
    put(w, &c, 1);
}

/* Bytes a string cannot hold as they are: 1 for '"', '\\' and below 0x20. */
static const unsigned char must_escape[256] = {
    [0x00] = 1, [0x01] = 1, [0x02] = 1, [0x03] = 1, [0x04] = 1, [0x05] = 1,
    [0x06] = 1, [0x07] = 1, [0x08] = 1, [0x09] = 1, [0x0a] = 1, [0x0b] = 1,
    [0x0c] = 1, [0x0d] = 1, [0x0e] = 1, [0x0f] = 1, [0x10] = 1, [0x11] = 1,
    [0x12] = 1, [0x13] = 1, [0x14] = 1, [0x15] = 1, [0x16] = 1, [0x17] = 1,
    [0x18] = 1, [0x19] = 1, [0x1a] = 1, [0x1b] = 1, [0x1c] = 1, [0x1d] = 1,
    [0x1e] = 1, [0x1f] = 1, ['"'] = 1,  ['\\'] = 1,
};

/* The state step before a value (is_key: before a key): 1 when a
 * separator must be written first, 0 when not, -1 once the writer has
 * failed or the call is out of place. */
static int sep_step(struct jw *w, bool is_key)
{
    if (w->err != TR_OK)
        return -1;
    uint32_t bit = 1u << w->depth;
    bool in_obj = w->depth > 0 && (w->is_obj & bit);
    if (is_key ? !in_obj || w->want_value : in_obj && !w->want_value) {
        w->err = TR_ERR_INTERNAL;
        return -1;
    }
    if (w->want_value) {
        w->want_value = false;
        return 0;
    }
    if (w->depth == 0)
        return 0;
    if (w->first & bit) {
        w->first &= ~bit;
        return 0;
    }
    return 1;
}

/* The separator before a value (is_key: before a key); false once the
 * writer has failed or the call is out of place. */
static bool sep(struct jw *w, bool is_key)
{
    int s = sep_step(w, is_key);
    if (s > 0)
        putc1(w, ',');
    return s >= 0 && w->err == TR_OK;
}

static void begin(struct jw *w, char c, bool obj)
{
    if (!sep(w, false))
        return;
    if (w->depth + 1 >= JW_MAX_DEPTH) {
        w->err = TR_ERR_INTERNAL;
        return;
    }
    putc1(w, c);
    w->depth++;
    uint32_t bit = 1u << w->depth;
    w->first |= bit;
    if (obj)
        w->is_obj |= bit;
    else
        w->is_obj &= ~bit;
}

static void end(struct jw *w, char c, bool obj)
{
    if (w->err != TR_OK)
        return;
    uint32_t bit = 1u << w->depth;
    if (w->depth == 0 || w->want_value || ((w->is_obj & bit) != 0) != obj) {
        w->err = TR_ERR_INTERNAL;
        return;
    }
    putc1(w, c);
    w->first &= ~bit;
    w->depth--;
}

void jw_obj(struct jw *w)
{
    begin(w, '{', true);
}

void jw_obj_end(struct jw *w)
{
    end(w, '}', true);
}

void jw_arr(struct jw *w)
{
    begin(w, '[', false);
}

void jw_arr_end(struct jw *w)
{
    end(w, ']', false);
}

/* Where n more bytes can be written straight into the buffer, or NULL
 * when they cannot (the limit is near, or memory ran out): the caller
 * then goes through put(), which fails as it must. */
static char *room(struct jw *w, size_t n)
{
    struct buf *b = w->out;
    if (b->max != 0 && (n > b->max || b->len > b->max - n))
        return NULL;
    if (n >= b->cap - b->len && buf_reserve(b, n) != TR_OK)
        return NULL;
    return b->data + b->len;
}

/* Ends a write made at room()'s pointer, at p. */
static void commit(struct jw *w, char *p)
{
    struct buf *b = w->out;
    b->len = (size_t)(p - b->data);
    b->data[b->len] = '\0';
}

/* The length of s's first run of bytes that need no escape (n bytes at
 * most): eight at a time while a word holds none of them (a byte below
 * 0x20, '"' or '\\'), then byte by byte. */
static size_t plain_run(const char *s, size_t n)
{
    const uint64_t ones = 0x0101010101010101u, highs = 0x8080808080808080u;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t x;
        memcpy(&x, s + i, 8);
        uint64_t q = x ^ (ones * '"'), bs = x ^ (ones * '\\');
        /* a byte below 0x20; a zero byte of q or bs (exact as a test) */
        if ((((x - ones * 0x20) & ~x) | ((q - ones) & ~q) |
             ((bs - ones) & ~bs)) &
            highs)
            break;
    }
    for (; i < n; i++)
        if (must_escape[(unsigned char)s[i]])
            return i;
    return n;
}

/* The escape of byte c (one that needs it) at p; its end. */
static char *escape1(char *p, unsigned char c)
{
    static const char hex[] = "0123456789ABCDEF";
    *p++ = '\\';
    switch (c) {
    case '"':
    case '\\':
        *p++ = (char)c;
        break;
    case '\b':
        *p++ = 'b';
        break;
    case '\f':
        *p++ = 'f';
        break;
    case '\n':
        *p++ = 'n';
        break;
    case '\r':
        *p++ = 'r';
        break;
    case '\t':
        *p++ = 't';
        break;
    default:
        memcpy(p, "u00", 3);
        p[3] = hex[c >> 4];
        p[4] = hex[c & 15];
        p += 5;
    }
    return p;
}

/* The string body of s (n bytes), escaped, written at p (room for 6n). */
static char *escape_into(char *p, const char *s, size_t n)
{
    for (size_t i = 0;;) {
        size_t k = plain_run(s + i, n - i);
        memcpy(p, s + i, k);
        p += k;
        i += k;
        if (i == n)
            return p;
        p = escape1(p, (unsigned char)s[i++]);
    }
}

/* The string body of s (n bytes), escaped, without the quotes, through
 * put(): runs of plain bytes go out in one append. */
static void escaped(struct jw *w, const char *s, size_t n)
{
    for (size_t i = 0;;) {
        size_t k = plain_run(s + i, n - i);
        put(w, s + i, k);
        i += k;
        if (i == n)
            return;
        char e[6];
        put(w, e, (size_t)(escape1(e, (unsigned char)s[i++]) - e));
    }
}

/* A quoted string (after a separator when comma), then tail (a ':' or
 * nothing): in one write while the buffer has room for the worst case,
 * else piece by piece. */
static void quoted(struct jw *w, bool comma, const char *s, size_t n,
                   const char *tail)
{
    size_t nt = strlen(tail);
    char *p = n <= (SIZE_MAX - 8) / 6 ? room(w, 6 * n + 3 + nt) : NULL;
    if (p == NULL) {
        if (comma)
            putc1(w, ',');
        putc1(w, '"');
        escaped(w, s, n);
        putc1(w, '"');
        put(w, tail, nt);
        return;
    }
    if (comma)
        *p++ = ',';
    *p++ = '"';
    p = escape_into(p, s, n);
    *p++ = '"';
    memcpy(p, tail, nt);
    commit(w, p + nt);
}

void jw_key(struct jw *w, const char *key)
{
    int s = sep_step(w, true);
    if (s < 0)
        return;
    quoted(w, s > 0, key, strlen(key), ":");
    w->want_value = true;
}

void jw_strn(struct jw *w, const char *s, size_t n)
{
    int sp = sep_step(w, false);
    if (sp >= 0)
        quoted(w, sp > 0, s, n, "");
}

void jw_str(struct jw *w, const char *s)
{
    if (s == NULL)
        jw_null(w);
    else
        jw_strn(w, s, strlen(s));
}

/* A value of n bytes written as they are, after its separator. */
static void plain(struct jw *w, const char *v, size_t n)
{
    int s = sep_step(w, false);
    if (s < 0)
        return;
    char *p = room(w, n + 1);
    if (p == NULL) {
        if (s > 0)
            putc1(w, ',');
        put(w, v, n);
        return;
    }
    if (s > 0)
        *p++ = ',';
    memcpy(p, v, n);
    commit(w, p + n);
}

void jw_int(struct jw *w, int64_t v)
{
    char d[24];
    size_t i = sizeof(d);
    /* negate as unsigned so INT64_MIN works */
    uint64_t u = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
    do {
        d[--i] = (char)('0' + u % 10);
        u /= 10;
    } while (u != 0);
    if (v < 0)
        d[--i] = '-';
    plain(w, d + i, sizeof(d) - i);
}

void jw_bool(struct jw *w, bool v)
{
    plain(w, v ? "true" : "false", v ? 4 : 5);
}

void jw_null(struct jw *w)
{
    plain(w, "null", 4);
}

void jw_raw(struct jw *w, const char *json, size_t n)
{
    plain(w, json, n);
}

void jw_str_begin(struct jw *w)
{
    if (sep(w, false))
        putc1(w, '"');
}

void jw_str_add(struct jw *w, const char *s)
{
    if (s != NULL)
        escaped(w, s, strlen(s));
}

void jw_str_end(struct jw *w)
{
    putc1(w, '"');
}

void jw_kstr(struct jw *w, const char *key, const char *s)
{
    jw_key(w, key);
    jw_str(w, s);
}

void jw_kint(struct jw *w, const char *key, int64_t v)
{
    jw_key(w, key);
    jw_int(w, v);
}

void jw_kbool(struct jw *w, const char *key, bool v)
{
    jw_key(w, key);
    jw_bool(w, v);
}

void jw_knull(struct jw *w, const char *key)
{
    jw_key(w, key);
    jw_null(w);
}

static bool blank(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

const char *jw_skip_value(const char *s)
{
    int depth = 0;
    do {
        while (blank(*s))
            s++;
        if (*s == '"') {
            for (s++; *s != '"'; s++)
                if (*s == '\0' || (*s == '\\' && *++s == '\0'))
                    return NULL;
            s++;
        } else if (*s == '{' || *s == '[') {
            depth++;
            s++;
            continue;
        } else if (*s == '}' || *s == ']') {
            if (depth == 0)
                return NULL;
            depth--;
            s++;
        } else if (*s == ',' || *s == ':') {
            if (depth == 0)
                return NULL;
            s++;
            continue;
        } else {
            const char *v = s;
            while (*s != '\0' && strchr("+-.0123456789Eaeflnrstu", *s))
                s++;
            if (s == v)
                return NULL;
        }
    } while (depth > 0);
    return s;
}

void jw_json(struct jw *w, const char *text, const char *def)
{
    const char *v = text, *end = NULL;
    if (v != NULL) {
        while (blank(*v))
            v++;
        if (*v == '[' || *v == '{')
            end = jw_skip_value(v);
        if (end != NULL)
            for (const char *t = end; *t != '\0' && end != NULL; t++)
                if (!blank(*t))
                    end = NULL;
    }
    if (end != NULL)
        jw_raw(w, v, (size_t)(end - v));
    else
        jw_raw(w, def, strlen(def));
}
