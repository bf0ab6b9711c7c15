/*
 * state_check_stream.c - the streaming reader behind state_parse(),
 * state_parse_fd(), state_parse_fd_with() and state_is_json_fd().
 *
 * A state file can be hundreds of megabytes, almost all of it resources'
 * attributes that Terrace never reads.  This reader walks the text in
 * blocks of SC_BLOCK bytes with a bounded tokenizer and keeps only:
 *   - the raw text of the top-level version, serial, lineage,
 *     terraform_version and outputs values (outputs at most
 *     SC_OUTPUTS_MAX bytes, the others SC_FIELD_MAX), which are then
 *     parsed with jansson and checked by state_check_head(), the same
 *     code the tree reader state_parse_tree() runs, so both accept and
 *     refuse alike;
 *   - per resource: mode, type, name, module, provider and the number of
 *     instances, written straight into the summary text.
 * Memory is flat in the size of the file: one block, the captures above
 * and the resource summary.
 *
 * Its syntax is jansson's (JSON_DECODE_ANY | JSON_ALLOW_NUL): RFC 8259
 * JSON, strict UTF-8 (no overlong forms, surrogates or code points above
 * U+10FFFF), \u escapes with paired surrogates, \u0000 allowed in strings
 * but not in keys, at most SC_DEPTH nested values, duplicate keys allowed
 * (the last wins).  Numbers follow jansson's two-pass rule: when an
 * integer anywhere overflows int64, the document is read with every
 * number as a double, so a real that overflows a double is refused.
 * Limits jansson does not have: a number is at most SC_NUM_MAX
 * characters, and the strings kept (lineage, resource names...) at most
 * SC_FIELD_MAX bytes each.
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "domain/state_check.h"
#include "domain/state_check_int.h"

#define SC_BLOCK (256 * 1024)
#define SC_DEPTH 2048 /* jansson's JSON_PARSER_MAX_DEPTH */
#define SC_NUM_MAX 4096
#define SC_KEY_MAX 32 /* longer keys are none that we look for */
#define SC_FIELD_MAX (1024 * 1024)
#define SC_OUTPUTS_MAX (16 * 1024 * 1024)
#define SC_EOF (-1)

/* Bytes that end a run of plain string text. */
static const unsigned char str_stop[256] = {
    [0 ... 0x1f] = 1,
    ['"'] = 1,
    ['\\'] = 1,
    [0x80 ... 0xff] = 1,
};

struct sc {
    int fd; /* -1: the whole text is the one block */
    state_block_fn hook;
    void *hook_arg;
    unsigned char *block;
    const unsigned char *p, *end;
    bool eof;
    int line;
    bool overflow; /* an integer did not fit int64 */
    tr_err err;    /* the first failure; TR_OK while none */
    char msg[160];
    struct buf *cap; /* raw text being kept, from cap_from */
    const unsigned char *cap_from;
    bool cap_over;
    struct buf key;
    char num[SC_NUM_MAX + 1];
};

/* A decoded string's destination; b NULL: only checked. */
struct sink {
    struct buf *b;
    bool over; /* b hit its limit */
    bool nul;  /* the string holds U+0000 */
};

static bool syntax(struct sc *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static bool syntax(struct sc *s, const char *fmt, ...)
{
    if (s->err != TR_OK)
        return false;
    char what[96];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    s->err = TR_ERR_INVALID;
    snprintf(s->msg, sizeof(s->msg), "state is not valid JSON: %s at line %d",
             what, s->line);
    return false;
}

static void cap_flush(struct sc *s, const unsigned char *to)
{
    if (s->cap != NULL && !s->cap_over &&
        buf_append(s->cap, s->cap_from, (size_t)(to - s->cap_from)) != TR_OK)
        s->cap_over = true;
    s->cap_from = to;
}

/* Reads the next block; false at end of file or on a read error. */
static bool fill(struct sc *s)
{
    cap_flush(s, s->end);
    if (s->fd < 0 || s->eof) {
        s->eof = true;
        return false;
    }
    ssize_t n;
    do
        n = read(s->fd, s->block, SC_BLOCK);
    while (n < 0 && errno == EINTR);
    if (n <= 0) {
        if (n < 0 && s->err == TR_OK) {
            s->err = TR_ERR_IO;
            snprintf(s->msg, sizeof(s->msg), "cannot read state: %s",
                     strerror(errno));
        }
        s->eof = true;
        return false;
    }
    if (s->hook != NULL)
        s->hook(s->hook_arg, s->block, (size_t)n);
    s->p = s->block;
    s->end = s->block + n;
    s->cap_from = s->p;
    return true;
}

static inline int peek(struct sc *s)
{
    if (s->p == s->end && !fill(s))
        return SC_EOF;
    return *s->p;
}

static inline int get(struct sc *s)
{
    int c = peek(s);
    if (c != SC_EOF)
        s->p++;
    return c;
}

/* The next character after white space, not consumed. */
static int next_nonws(struct sc *s)
{
    for (;;) {
        while (s->p < s->end) {
            unsigned char c = *s->p;
            if (c == '\n')
                s->line++;
            else if (c != ' ' && c != '\t' && c != '\r')
                return c;
            s->p++;
        }
        if (!fill(s))
            return SC_EOF;
    }
}

static void put(struct sink *o, const void *p, size_t n)
{
    if (o == NULL || o->b == NULL || o->over || n == 0)
        return;
    if (buf_append(o->b, p, n) != TR_OK)
        o->over = true;
}

static int hex4(struct sc *s)
{
    int v = 0;
    for (int i = 0; i < 4; i++) {
        int c = get(s), d;
        if (c >= '0' && c <= '9')
            d = c - '0';
        else if (c >= 'a' && c <= 'f')
            d = c - 'a' + 10;
        else if (c >= 'A' && c <= 'F')
            d = c - 'A' + 10;
        else
            return -1;
        v = v * 16 + d;
    }
    return v;
}

static void put_utf8(struct sink *o, long cp)
{
    unsigned char u[4];
    size_t n;
    if (cp < 0x80) {
        u[0] = (unsigned char)cp;
        n = 1;
    } else if (cp < 0x800) {
        u[0] = (unsigned char)(0xc0 | (cp >> 6));
        u[1] = (unsigned char)(0x80 | (cp & 0x3f));
        n = 2;
    } else if (cp < 0x10000) {
        u[0] = (unsigned char)(0xe0 | (cp >> 12));
        u[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
        u[2] = (unsigned char)(0x80 | (cp & 0x3f));
        n = 3;
    } else {
        u[0] = (unsigned char)(0xf0 | (cp >> 18));
        u[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3f));
        u[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
        u[3] = (unsigned char)(0x80 | (cp & 0x3f));
        n = 4;
    }
    put(o, u, n);
}

/* After a backslash. */
static bool scan_escape(struct sc *s, struct sink *o)
{
    int c = get(s);
    static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
    const char *e = c > 0 ? strchr(from, c) : NULL;
    if (e != NULL) {
        put(o, &to[e - from], 1);
        return true;
    }
    if (c != 'u')
        return syntax(s, "invalid escape");
    long cp = hex4(s);
    if (cp < 0)
        return syntax(s, "invalid escape");
    if (cp >= 0xdc00 && cp <= 0xdfff)
        return syntax(s, "invalid Unicode '\\u%04lX'", cp);
    if (cp >= 0xd800 && cp <= 0xdbff) {
        if (get(s) != '\\' || get(s) != 'u')
            return syntax(s, "invalid Unicode '\\u%04lX'", cp);
        long lo = hex4(s);
        if (lo < 0)
            return syntax(s, "invalid escape");
        if (lo < 0xdc00 || lo > 0xdfff)
            return syntax(s, "invalid Unicode '\\u%04lX\\u%04lX'", cp, lo);
        cp = ((cp - 0xd800) << 10) + (lo - 0xdc00) + 0x10000;
    }
    if (cp == 0 && o != NULL)
        o->nul = true;
    put_utf8(o, cp);
    return true;
}

/* A multi-byte UTF-8 sequence starting with c (not yet consumed). */
static bool scan_utf8(struct sc *s, struct sink *o, int c)
{
    unsigned char u[4];
    size_t n;
    long cp;
    if (c >= 0xc2 && c <= 0xdf) {
        n = 2;
        cp = c & 0x1f;
    } else if (c >= 0xe0 && c <= 0xef) {
        n = 3;
        cp = c & 0x0f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        n = 4;
        cp = c & 0x07;
    } else {
        return syntax(s, "unable to decode byte 0x%x", c);
    }
    u[0] = (unsigned char)get(s);
    for (size_t i = 1; i < n; i++) {
        int d = get(s);
        if (d < 0x80 || d > 0xbf)
            return syntax(s, "unable to decode byte 0x%x", c);
        u[i] = (unsigned char)d;
        cp = (cp << 6) | (d & 0x3f);
    }
    if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) || cp > 0x10ffff ||
        (cp >= 0xd800 && cp <= 0xdfff))
        return syntax(s, "unable to decode byte 0x%x", c);
    put(o, u, n);
    return true;
}

/* The first byte from q on that ends a run of plain string text (see
 * str_stop), or end.  Most of a state file is string text, so with SSE2
 * (every x86-64) sixteen bytes are tested at a time: a signed compare
 * with 0x20 is true for the control characters and for every byte from
 * 0x80, which are negative as signed bytes. */
static const unsigned char *run_end(const unsigned char *q,
                                    const unsigned char *end)
{
#if defined(__SSE2__)
    const __m128i quote = _mm_set1_epi8('"'), bslash = _mm_set1_epi8('\\'),
                  space = _mm_set1_epi8(0x20);
    while (end - q >= 16) {
        __m128i v = _mm_loadu_si128((const __m128i *)(const void *)q);
        __m128i stop = _mm_or_si128(
            _mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, bslash)),
            _mm_cmplt_epi8(v, space));
        unsigned m = (unsigned)_mm_movemask_epi8(stop);
        if (m != 0)
            return q + __builtin_ctz(m);
        q += 16;
    }
#endif
    while (q < end && !str_stop[*q])
        q++;
    return q;
}

/* After the opening quote; leaves s after the closing one. */
static bool scan_string(struct sc *s, struct sink *o)
{
    for (;;) {
        const unsigned char *q = run_end(s->p, s->end);
        put(o, s->p, (size_t)(q - s->p));
        s->p = q;
        if (q == s->end) {
            if (!fill(s))
                return syntax(s, "premature end of input");
            continue;
        }
        int c = *q;
        if (c == '"') {
            s->p++;
            return true;
        }
        if (c == '\\') {
            s->p++;
            if (!scan_escape(s, o))
                return false;
        } else if (c < 0x20) {
            return c == '\n' ? syntax(s, "unexpected newline")
                             : syntax(s, "control character 0x%x", c);
        } else if (!scan_utf8(s, o, c)) {
            return false;
        }
    }
}

static bool is_digit(int c)
{
    return c >= '0' && c <= '9';
}

static bool num_add(struct sc *s, size_t *n, int c)
{
    if (*n >= SC_NUM_MAX)
        return syntax(s, "number longer than %d characters", SC_NUM_MAX);
    s->num[(*n)++] = (char)c;
    s->p++;
    return true;
}

static bool num_digits(struct sc *s, size_t *n)
{
    if (!is_digit(peek(s)))
        return syntax(s, "invalid token");
    while (is_digit(peek(s)))
        if (!num_add(s, n, *s->p))
            return false;
    return true;
}

/* A number starting at s->p. */
static bool scan_number(struct sc *s)
{
    size_t n = 0;
    bool integer = true;
    if (peek(s) == '-' && !num_add(s, &n, '-'))
        return false;
    if (peek(s) == '0') {
        if (!num_add(s, &n, '0'))
            return false;
        if (is_digit(peek(s)))
            return syntax(s, "invalid token");
    } else if (!num_digits(s, &n)) {
        return false;
    }
    if (peek(s) == '.') {
        integer = false;
        if (!num_add(s, &n, '.') || !num_digits(s, &n))
            return false;
    }
    int c = peek(s);
    if (c == 'e' || c == 'E') {
        integer = false;
        if (!num_add(s, &n, c))
            return false;
        c = peek(s);
        if ((c == '+' || c == '-') && !num_add(s, &n, c))
            return false;
        if (!num_digits(s, &n))
            return false;
    }
    s->num[n] = '\0';
    size_t digits = n - (s->num[0] == '-');
    if (integer && digits < 19)
        return true; /* fits int64 */
    if (integer) {
        errno = 0;
        (void)strtoll(s->num, NULL, 10);
        if (errno != ERANGE)
            return true;
        s->overflow = true; /* jansson then reads it as a double */
    }
    errno = 0;
    double d = strtod(s->num, NULL);
    if ((d == HUGE_VAL || d == -HUGE_VAL) && errno == ERANGE)
        return syntax(s, "real number overflow");
    return true;
}

/* true, false or null at s->p; *lit gets its first letter. */
static bool scan_literal(struct sc *s, int *lit)
{
    char w[8];
    size_t n = 0;
    int c = peek(s);
    while ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) {
        if (n < sizeof(w) - 1)
            w[n++] = (char)c;
        else
            n = sizeof(w); /* too long for any literal */
        s->p++;
        c = peek(s);
    }
    if (n >= sizeof(w))
        return syntax(s, "invalid token");
    w[n] = '\0';
    if (strcmp(w, "true") != 0 && strcmp(w, "false") != 0 &&
        strcmp(w, "null") != 0)
        return syntax(s, "invalid token");
    *lit = w[0];
    return true;
}

static bool scan_scalar(struct sc *s, int c)
{
    int lit;
    if (c == '"') {
        s->p++;
        return scan_string(s, NULL);
    }
    if (c == '-' || is_digit(c))
        return scan_number(s);
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
        return scan_literal(s, &lit);
    if (c == SC_EOF)
        return syntax(s, "unexpected end of input");
    return syntax(s, "invalid token");
}

/* An object member's key and its colon; *known gets the key when it is
 * short enough to be one we look for (key buffer), else NULL. */
static bool scan_key(struct sc *s, const char **known)
{
    if (next_nonws(s) != '"')
        return syntax(s, "string or '}' expected");
    s->p++;
    buf_reset(&s->key);
    struct sink o = {.b = known != NULL ? &s->key : NULL};
    if (!scan_string(s, &o))
        return false;
    if (o.nul)
        return syntax(s, "NUL byte in object key not supported");
    if (next_nonws(s) != ':')
        return syntax(s, "':' expected");
    s->p++;
    if (known != NULL)
        *known = o.over ? NULL : (s->key.data ? s->key.data : "");
    return true;
}

/* Any value at nesting depth depth (jansson's count: the top-level value
 * is 1), checked and skipped without an explicit recursion. */
static bool skip_value(struct sc *s, int depth)
{
    unsigned char stack[SC_DEPTH + 1];
    int top = 0;
    for (;;) {
        if (depth + top > SC_DEPTH)
            return syntax(s, "maximum parsing depth reached");
        int c = next_nonws(s);
        if (c == '{' || c == '[') {
            s->p++;
            int close = c == '{' ? '}' : ']';
            if (next_nonws(s) != close) {
                stack[top++] = (unsigned char)c;
                if (c == '{' && !scan_key(s, NULL))
                    return false;
                continue;
            }
            s->p++;
        } else if (!scan_scalar(s, c)) {
            return false;
        }
        /* a value ended: close what it ends */
        while (top > 0) {
            int open = stack[top - 1], close = open == '{' ? '}' : ']';
            c = next_nonws(s);
            if (c == ',') {
                s->p++;
                if (open == '{' && !scan_key(s, NULL))
                    return false;
                break;
            }
            if (c != close)
                return syntax(s, "'%c' expected", close);
            s->p++;
            top--;
        }
        if (top == 0)
            return true;
    }
}

static bool expect_eof(struct sc *s)
{
    if (next_nonws(s) != SC_EOF)
        return syntax(s, "end of file expected");
    return s->err == TR_OK;
}

/* ---- the state's structure ------------------------------------------ */

enum { F_VERSION, F_SERIAL, F_LINEAGE, F_TFVERSION, F_OUTPUTS, F__N };
static const char *const field_names[F__N] = {
    "version", "serial", "lineage", "terraform_version", "outputs",
};

enum { R_TYPE, R_NAME, R_MODE, R_MODULE, R_PROVIDER, R__N };
static const char *const res_names[R__N] = {
    "type", "name", "mode", "module", "provider",
};

struct root {
    bool not_object;
    bool have[F__N];
    struct buf raw[F__N]; /* the raw text of each field */
    bool over[F__N];      /* it was over its limit */
    int res_kind;         /* 0 absent or null, 1 array, 2 other */
    long long bad_res;    /* first resource that is not usable; -1 */
    long long nres;
    struct buf summary; /* resource summary entries, comma separated */
    struct buf rf[R__N];
    int rkind[R__N]; /* 0 absent, 1 string, 2 other */
    bool rover;      /* a resource field was over SC_FIELD_MAX */
};

/* Keeps the raw text of the value at s->p (depth 2) in r->raw[f]. */
static bool capture(struct sc *s, struct root *r, int f)
{
    buf_reset(&r->raw[f]);
    r->have[f] = true;
    r->over[f] = false;
    int c = next_nonws(s);
    if (f != F_OUTPUTS && (c == '{' || c == '[')) {
        /* only its type matters */
        buf_puts(&r->raw[f], c == '{' ? "{}" : "[]");
        return skip_value(s, 2);
    }
    s->cap = &r->raw[f];
    s->cap_from = s->p;
    s->cap_over = false;
    bool ok = skip_value(s, 2);
    cap_flush(s, s->p);
    r->over[f] = s->cap_over;
    s->cap = NULL;
    return ok;
}

static bool instances(struct sc *s, long long *count)
{
    s->p++; /* [ */
    *count = 0;
    if (next_nonws(s) == ']') {
        s->p++;
        return true;
    }
    for (;;) {
        if (!skip_value(s, 5))
            return false;
        ++*count;
        int c = next_nonws(s);
        if (c != ']' && c != ',')
            return syntax(s, "']' expected");
        s->p++;
        if (c == ']')
            return true;
    }
}

static const char *field(struct root *r, int f, const char *dflt)
{
    if (r->rkind[f] != 1)
        return dflt;
    return r->rf[f].data ? r->rf[f].data : "";
}

static void summarize(struct root *r, long long count)
{
    struct buf *b = &r->summary;
    const char *type = field(r, R_TYPE, ""), *name = field(r, R_NAME, "");
    const char *mod = field(r, R_MODULE, "root");
    const char *prov = field(r, R_PROVIDER, "");
    bool data = strcmp(field(r, R_MODE, "managed"), "data") == 0;
    struct buf t;
    buf_init(&t, 0);
    buf_printf(&t, "%s%s", data ? "data." : "", type);
    if (r->nres > 0)
        buf_puts(b, ",");
    buf_puts(b, "{\"name\":");
    state_dump_string(b, name, strlen(name));
    buf_puts(b, ",\"type\":");
    state_dump_string(b, t.data ? t.data : "", t.len);
    buf_printf(b, ",\"count\":%lld,\"module\":", count);
    state_dump_string(b, mod, strlen(mod));
    buf_puts(b, ",\"provider\":");
    state_dump_string(b, prov, strlen(prov));
    buf_puts(b, "}");
    buf_free(&t);
    r->nres++;
}

/* One element of the resources array (depth 3), the i-th. */
static bool resource(struct sc *s, struct root *r, long long i)
{
    int c = next_nonws(s);
    if (c != '{') {
        if (r->bad_res < 0)
            r->bad_res = i;
        return skip_value(s, 3);
    }
    s->p++;
    memset(r->rkind, 0, sizeof(r->rkind));
    int inst = 0; /* 0 absent, 1 array, 2 other */
    long long count = 0;
    if (next_nonws(s) != '}') {
        for (;;) {
            const char *key;
            if (!scan_key(s, &key))
                return false;
            int f = -1;
            for (int k = 0; key != NULL && k < R__N; k++)
                if (strcmp(key, res_names[k]) == 0)
                    f = k;
            c = next_nonws(s);
            bool ok;
            if (f >= 0 && c == '"') {
                s->p++;
                buf_reset(&r->rf[f]);
                struct sink o = {.b = &r->rf[f]};
                ok = scan_string(s, &o);
                r->rkind[f] = 1;
                r->rover |= o.over;
            } else if (f >= 0) {
                r->rkind[f] = 2;
                ok = skip_value(s, 4);
            } else if (key != NULL && strcmp(key, "instances") == 0) {
                inst = c == '[' ? 1 : 2;
                ok = c == '[' ? instances(s, &count) : skip_value(s, 4);
            } else {
                ok = skip_value(s, 4);
            }
            if (!ok)
                return false;
            c = next_nonws(s);
            if (c == '}')
                break;
            if (c != ',')
                return syntax(s, "'}' expected");
            s->p++;
        }
    }
    s->p++; /* } */
    bool usable = r->rkind[R_TYPE] == 1 && r->rkind[R_NAME] == 1 && inst != 2;
    if (!usable && r->bad_res < 0)
        r->bad_res = i;
    if (r->bad_res < 0)
        summarize(r, inst == 1 ? count : 0);
    return true;
}

static bool resources(struct sc *s, struct root *r)
{
    buf_reset(&r->summary);
    r->nres = 0;
    r->bad_res = -1;
    int c = next_nonws(s);
    if (c != '[') {
        r->res_kind = c == 'n' ? 0 : 2; /* skip_value checks it is null */
        return skip_value(s, 2);
    }
    r->res_kind = 1;
    s->p++;
    if (next_nonws(s) == ']') {
        s->p++;
        return true;
    }
    for (long long i = 0;; i++) {
        if (!resource(s, r, i))
            return false;
        c = next_nonws(s);
        if (c == ']') {
            s->p++;
            return true;
        }
        if (c != ',')
            return syntax(s, "']' expected");
        s->p++;
    }
}

static bool root_member(struct sc *s, struct root *r, const char *key)
{
    for (int f = 0; key != NULL && f < F__N; f++)
        if (strcmp(key, field_names[f]) == 0)
            return capture(s, r, f);
    if (key != NULL && strcmp(key, "resources") == 0)
        return resources(s, r);
    return skip_value(s, 2);
}

static bool scan_root(struct sc *s, struct root *r)
{
    int c = next_nonws(s);
    if (c != '{') {
        r->not_object = true;
        return skip_value(s, 1) && expect_eof(s);
    }
    s->p++;
    if (next_nonws(s) != '}') {
        for (;;) {
            const char *key;
            if (!scan_key(s, &key) || !root_member(s, r, key))
                return false;
            c = next_nonws(s);
            if (c == '}')
                break;
            if (c != ',')
                return syntax(s, "'}' expected");
            s->p++;
        }
    }
    s->p++;
    return expect_eof(s);
}

/* ---- entry points ----------------------------------------------------- */

/* fd >= 0: read from fd; else the len bytes at data are the whole text. */
static void sc_init(struct sc *s, int fd, const void *data, size_t len,
                    state_block_fn hook, void *arg)
{
    memset(s, 0, sizeof(*s));
    s->fd = fd;
    s->hook = hook;
    s->hook_arg = arg;
    s->line = 1;
    if (fd >= 0) {
        s->block = malloc(SC_BLOCK);
        if (s->block == NULL) {
            fprintf(stderr, "fatal: out of memory reading a state\n");
            abort();
        }
        s->p = s->end = s->block;
    } else {
        s->p = data;
        s->end = s->p + len;
    }
    s->cap_from = s->p;
    buf_init(&s->key, SC_KEY_MAX);
}

/* Reads what is left, for the hook's sake. */
static void sc_drain(struct sc *s)
{
    s->cap = NULL;
    while (s->hook != NULL && fill(s))
        s->p = s->end;
}

static void sc_free(struct sc *s)
{
    free(s->block);
    buf_free(&s->key);
}

static tr_err finish(struct arena *a, struct sc *s, struct root *r,
                     struct state_info *out, struct tr_errbuf *eb)
{
    if (s->err != TR_OK)
        return tr_fail(eb, s->err, "%s", s->msg);
    if (r->not_object)
        return tr_fail(eb, TR_ERR_INVALID, "state must be a JSON object");
    if (r->over[F_OUTPUTS])
        return tr_fail(eb, TR_ERR_TOO_LARGE,
                       "state outputs are larger than %d MB; keep large "
                       "values in resources",
                       SC_OUTPUTS_MAX >> 20);
    for (int f = 0; f < F__N; f++)
        if (r->over[f])
            return tr_fail(eb, TR_ERR_INVALID, "state %s is longer than %d MB",
                           field_names[f], SC_FIELD_MAX >> 20);
    if (r->rover)
        return tr_fail(eb, TR_ERR_INVALID,
                       "a state resource field is longer than %d MB",
                       SC_FIELD_MAX >> 20);
    size_t flags = JSON_DECODE_ANY | JSON_ALLOW_NUL;
    if (s->overflow)
        flags |= JSON_DECODE_INT_AS_REAL;
    json_t *root = json_object();
    tr_err e = TR_OK;
    for (int f = 0; f < F__N && e == TR_OK; f++) {
        if (!r->have[f])
            continue;
        json_error_t jerr;
        json_t *v = json_loadb(r->raw[f].data, r->raw[f].len, flags, &jerr);
        if (v == NULL) /* the scanner let through what jansson refuses */
            e = tr_fail(eb, TR_ERR_INTERNAL, "state %s: %s", field_names[f],
                        jerr.text);
        else
            json_object_set_new(root, field_names[f], v);
    }
    struct state_info si = {0};
    if (e == TR_OK)
        e = state_check_head(a, root, &si, eb);
    json_decref(root);
    if (e != TR_OK)
        return e;
    if (r->res_kind == 2)
        return tr_fail(eb, TR_ERR_INVALID, "state resources must be an array");
    if (r->bad_res >= 0)
        return tr_fail(eb, TR_ERR_INVALID,
                       "state resource %lld must have a type, a name and "
                       "an instances list",
                       r->bad_res);
    si.nresources = (int)r->nres;
    si.resources =
        arena_printf(a, "[%s]", r->summary.data ? r->summary.data : "");
    *out = si;
    return TR_OK;
}

static tr_err parse(struct arena *a, int fd, const void *data, size_t len,
                    state_block_fn hook, void *arg, struct state_info *out,
                    struct tr_errbuf *eb)
{
    struct sc *s = malloc(sizeof(*s));
    struct root *r = calloc(1, sizeof(*r));
    if (s == NULL || r == NULL) {
        fprintf(stderr, "fatal: out of memory reading a state\n");
        abort();
    }
    sc_init(s, fd, data, len, hook, arg);
    for (int f = 0; f < F__N; f++)
        buf_init(&r->raw[f], f == F_OUTPUTS ? SC_OUTPUTS_MAX : SC_FIELD_MAX);
    for (int f = 0; f < R__N; f++)
        buf_init(&r->rf[f], SC_FIELD_MAX);
    buf_init(&r->summary, 0);
    r->bad_res = -1;
    (void)scan_root(s, r);
    sc_drain(s);
    tr_err e = finish(a, s, r, out, eb);
    for (int f = 0; f < F__N; f++)
        buf_free(&r->raw[f]);
    for (int f = 0; f < R__N; f++)
        buf_free(&r->rf[f]);
    buf_free(&r->summary);
    sc_free(s);
    free(s);
    free(r);
    return e;
}

tr_err state_parse_fd_with(struct arena *a, int fd, state_block_fn hook,
                           void *arg, struct state_info *out,
                           struct tr_errbuf *eb)
{
    return parse(a, fd, NULL, 0, hook, arg, out, eb);
}

tr_err state_parse_fd(struct arena *a, int fd, struct state_info *out,
                      struct tr_errbuf *eb)
{
    return parse(a, fd, NULL, 0, NULL, NULL, out, eb);
}

tr_err state_parse(struct arena *a, const void *data, size_t len,
                   struct state_info *out, struct tr_errbuf *eb)
{
    return parse(a, -1, data, len, NULL, NULL, out, eb);
}

bool state_is_json_fd(int fd)
{
    struct sc *s = malloc(sizeof(*s));
    if (s == NULL) {
        fprintf(stderr, "fatal: out of memory reading a state\n");
        abort();
    }
    sc_init(s, fd, NULL, 0, NULL, NULL);
    bool ok = skip_value(s, 1) && expect_eof(s);
    sc_free(s);
    free(s);
    return ok;
}
