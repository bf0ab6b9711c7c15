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

/* The separator before a value (is_key: before a key); false once the
 * writer has failed or the call is out of place. */
static bool sep(struct jw *w, bool is_key)
{
    if (w->err != TR_OK)
        return false;
    uint32_t bit = 1u << w->depth;
    bool in_obj = w->depth > 0 && (w->is_obj & bit);
    if (is_key ? !in_obj || w->want_value : in_obj && !w->want_value) {
        w->err = TR_ERR_INTERNAL;
        return false;
    }
    if (w->want_value) {
        w->want_value = false;
        return true;
    }
    if (w->depth > 0) {
        if (w->first & bit)
            w->first &= ~bit;
        else
            putc1(w, ',');
    }
    return w->err == TR_OK;
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

/* The string body of s (n bytes), escaped, without the quotes: runs of
 * plain bytes go out in one append. */
static void escaped(struct jw *w, const char *s, size_t n)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t run = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!must_escape[c])
            continue;
        put(w, s + run, i - run);
        run = i + 1;
        char e[6] = {'\\', 0, 0, 0, 0, 0};
        size_t len = 2;
        switch (c) {
        case '"':
        case '\\':
            e[1] = (char)c;
            break;
        case '\b':
            e[1] = 'b';
            break;
        case '\f':
            e[1] = 'f';
            break;
        case '\n':
            e[1] = 'n';
            break;
        case '\r':
            e[1] = 'r';
            break;
        case '\t':
            e[1] = 't';
            break;
        default:
            memcpy(e + 1, "u00", 3);
            e[4] = hex[c >> 4];
            e[5] = hex[c & 15];
            len = 6;
        }
        put(w, e, len);
    }
    put(w, s + run, n - run);
}

void jw_key(struct jw *w, const char *key)
{
    if (!sep(w, true))
        return;
    putc1(w, '"');
    escaped(w, key, strlen(key));
    put(w, "\":", 2);
    w->want_value = true;
}

void jw_strn(struct jw *w, const char *s, size_t n)
{
    if (!sep(w, false))
        return;
    putc1(w, '"');
    escaped(w, s, n);
    putc1(w, '"');
}

void jw_str(struct jw *w, const char *s)
{
    if (s == NULL)
        jw_null(w);
    else
        jw_strn(w, s, strlen(s));
}

void jw_int(struct jw *w, int64_t v)
{
    if (!sep(w, false))
        return;
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
    put(w, d + i, sizeof(d) - i);
}

void jw_bool(struct jw *w, bool v)
{
    if (sep(w, false))
        put(w, v ? "true" : "false", v ? 4 : 5);
}

void jw_null(struct jw *w)
{
    if (sep(w, false))
        put(w, "null", 4);
}

void jw_raw(struct jw *w, const char *json, size_t n)
{
    if (sep(w, false))
        put(w, json, n);
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
