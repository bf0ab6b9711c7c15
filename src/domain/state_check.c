/*
 * state_check.c - validation and summaries of state files; see
 * state_check.h.
 *
 * Two readers live here.  state_parse_tree() parses whole documents
 * with jansson (the reference the streaming reader of
 * state_check_stream.c is tested against; it shares the checks of
 * state_check_head()).  A small scanner walks the raw text when bytes
 * must be kept exactly (rewriting the serial on rollback): it only needs
 * to skip values, so it never builds a tree.
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#include "domain/state_check.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "domain/state_check_int.h"

#define LOAD_FLAGS (JSON_ALLOW_NUL | JSON_DECODE_ANY)
#define SCAN_DEPTH 2048

static void json_cleanup(void *p)
{
    json_decref(p);
}

static json_t *own(struct arena *a, json_t *j)
{
    if (j != NULL)
        arena_on_destroy(a, json_cleanup, j);
    return j;
}

static bool overflowed(const json_error_t *err)
{
    return json_error_code(err) == json_error_numeric_overflow;
}

json_t *state_json_load(const char *text, size_t len)
{
    json_error_t err;
    json_t *j = json_loadb(text, len, LOAD_FLAGS, &err);
    if (j == NULL && overflowed(&err))
        j = json_loadb(text, len, LOAD_FLAGS | JSON_DECODE_INT_AS_REAL, &err);
    return j;
}

/* An integral JSON number (doubles only when exactly integral and small
 * enough to be exact). */
static bool int_of(const json_t *v, int64_t *out)
{
    if (json_is_integer(v)) {
        *out = (int64_t)json_integer_value(v);
        return true;
    }
    if (json_is_real(v)) {
        double d = json_real_value(v);
        if (d != floor(d) || fabs(d) > 9007199254740992.0)
            return false;
        *out = (int64_t)d;
        return true;
    }
    return false;
}

static const char *simple_type(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_STRING:
        return "string";
    case JSON_INTEGER:
    case JSON_REAL:
        return "number";
    case JSON_TRUE:
    case JSON_FALSE:
        return "boolean";
    case JSON_ARRAY:
        return "array";
    case JSON_OBJECT:
        return "object";
    default:
        return "null";
    }
}

static tr_err check_outputs(struct arena *a, json_t *outs,
                            struct state_info *si, struct tr_errbuf *eb)
{
    if (outs == NULL || json_is_null(outs))
        return TR_OK;
    if (!json_is_object(outs))
        return tr_fail(eb, TR_ERR_INVALID, "state outputs must be an object");
    si->outputs = arena_alloc(a, sizeof(struct state_output) *
                                     (json_object_size(outs) + 1));
    const char *name;
    json_t *o;
    json_object_foreach(outs, name, o)
    {
        json_t *val = json_object_get(o, "value");
        json_t *type = json_object_get(o, "type");
        json_t *sens = json_object_get(o, "sensitive");
        if (!json_is_object(o) || val == NULL)
            return tr_fail(eb, TR_ERR_INVALID,
                           "state output %.100s must be an object with a "
                           "value",
                           name);
        if (sens != NULL && !json_is_boolean(sens))
            return tr_fail(eb, TR_ERR_INVALID,
                           "state output %.100s: sensitive must be true or "
                           "false",
                           name);
        if (type != NULL && !json_is_string(type) && !json_is_array(type))
            return tr_fail(eb, TR_ERR_INVALID,
                           "state output %.100s: type must be a type "
                           "expression",
                           name);
        struct state_output *so = &si->outputs[si->noutputs++];
        so->name = arena_strdup(a, name);
        so->sensitive = json_is_true(sens);
        so->type = simple_type(val);
        /* no type: null, so clients fall back to reading the state */
        so->detailed_type = type ? state_json_dump(a, type, NULL) : "null";
        so->value = state_json_dump(a, val, NULL);
    }
    return TR_OK;
}

static const char *opt_str(json_t *o, const char *key, const char *dflt)
{
    json_t *v = json_object_get(o, key);
    return json_is_string(v) ? json_string_value(v) : dflt;
}

static tr_err check_resources(struct arena *a, json_t *res,
                              struct state_info *si, struct tr_errbuf *eb)
{
    json_t *list = own(a, json_array());
    si->resources = "[]";
    if (res == NULL || json_is_null(res))
        return TR_OK;
    if (!json_is_array(res))
        return tr_fail(eb, TR_ERR_INVALID, "state resources must be an array");
    size_t i;
    json_t *r;
    json_array_foreach(res, i, r)
    {
        json_t *type = json_object_get(r, "type");
        json_t *name = json_object_get(r, "name");
        json_t *inst = json_object_get(r, "instances");
        if (!json_is_object(r) || !json_is_string(type) ||
            !json_is_string(name) || (inst && !json_is_array(inst)))
            return tr_fail(eb, TR_ERR_INVALID,
                           "state resource %zu must have a type, a name and "
                           "an instances list",
                           i);
        const char *mode = opt_str(r, "mode", "managed");
        const char *t = json_string_value(type);
        if (strcmp(mode, "data") == 0)
            t = arena_printf(a, "data.%s", t);
        json_array_append_new(
            list, json_pack("{s:s,s:s,s:I,s:s,s:s}", "name",
                            json_string_value(name), "type", t, "count",
                            (json_int_t)(inst ? json_array_size(inst) : 0),
                            "module", opt_str(r, "module", "root"), "provider",
                            opt_str(r, "provider", "")));
    }
    si->nresources = (int)json_array_size(list);
    si->resources = state_json_dump(a, list, NULL);
    return TR_OK;
}

tr_err state_check_head(struct arena *a, json_t *root, struct state_info *out,
                        struct tr_errbuf *eb)
{
    struct state_info si = {.lineage = "", .terraform_version = ""};
    if (!json_is_object(root))
        return tr_fail(eb, TR_ERR_INVALID, "state must be a JSON object");
    if (!int_of(json_object_get(root, "version"), &si.version))
        return tr_fail(eb, TR_ERR_INVALID,
                       "state has no format version number");
    if (si.version != 4)
        return tr_fail(eb, TR_ERR_INVALID,
                       "state format version %lld is not supported; "
                       "expected 4",
                       (long long)si.version);
    if (!int_of(json_object_get(root, "serial"), &si.serial) || si.serial < 0)
        return tr_fail(eb, TR_ERR_INVALID,
                       "state serial must be a non-negative integer");
    json_t *lin = json_object_get(root, "lineage");
    if (lin != NULL && !json_is_string(lin))
        return tr_fail(eb, TR_ERR_INVALID, "state lineage must be a string");
    if (lin != NULL)
        si.lineage = arena_strdup(a, json_string_value(lin));
    json_t *tv = json_object_get(root, "terraform_version");
    if (tv != NULL && !json_is_string(tv))
        return tr_fail(eb, TR_ERR_INVALID,
                       "state terraform_version must be a string");
    if (tv != NULL)
        si.terraform_version = arena_strdup(a, json_string_value(tv));
    tr_err e = check_outputs(a, json_object_get(root, "outputs"), &si, eb);
    if (e == TR_OK)
        *out = si;
    return e;
}

static tr_err check_root(struct arena *a, json_t *root, struct state_info *out,
                         struct tr_errbuf *eb)
{
    tr_err e = state_check_head(a, root, out, eb);
    if (e == TR_OK)
        e = check_resources(a, json_object_get(root, "resources"), out, eb);
    return e;
}

tr_err state_parse_tree(struct arena *a, const void *data, size_t len,
                        struct state_info *out, struct tr_errbuf *eb)
{
    json_error_t err;
    json_t *root = json_loadb(data, len, LOAD_FLAGS, &err);
    if (root == NULL && overflowed(&err))
        root =
            json_loadb(data, len, LOAD_FLAGS | JSON_DECODE_INT_AS_REAL, &err);
    if (root == NULL)
        return tr_fail(eb, TR_ERR_INVALID,
                       "state is not valid JSON: %s at line %d", err.text,
                       err.line);
    own(a, root);
    return check_root(a, root, out, eb);
}

bool state_is_json(const void *data, size_t len)
{
    json_t *j = state_json_load(data, len);
    json_decref(j);
    return j != NULL;
}

/* ---- raw scanner ------------------------------------------------------ */

static size_t skip_ws(const char *s, size_t i, size_t n)
{
    while (i < n &&
           (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r'))
        i++;
    return i;
}

/* s[*i] is '"'; leaves *i after the closing quote. */
static bool skip_string(const char *s, size_t *i, size_t n)
{
    size_t k = *i + 1;
    while (k < n && s[k] != '"')
        k += s[k] == '\\' ? 2 : 1;
    if (k >= n)
        return false;
    *i = k + 1;
    return true;
}

static bool skip_value(const char *s, size_t *i, size_t n, int depth)
{
    size_t k = skip_ws(s, *i, n);
    if (k >= n || depth > SCAN_DEPTH)
        return false;
    if (s[k] == '"') {
        if (!skip_string(s, &k, n))
            return false;
    } else if (s[k] == '{' || s[k] == '[') {
        char close = s[k] == '{' ? '}' : ']';
        k = skip_ws(s, k + 1, n);
        while (k < n && s[k] != close) {
            if (close == '}') {
                if (s[k] != '"' || !skip_string(s, &k, n))
                    return false;
                k = skip_ws(s, k, n);
                if (k >= n || s[k] != ':')
                    return false;
                k++;
            }
            if (!skip_value(s, &k, n, depth + 1))
                return false;
            k = skip_ws(s, k, n);
            if (k < n && s[k] == ',')
                k = skip_ws(s, k + 1, n);
            else if (k < n && s[k] != close)
                return false;
        }
        if (k >= n)
            return false;
        k++;
    } else {
        size_t start = k;
        while (k < n && strchr("{}[],: \t\r\n\"", s[k]) == NULL)
            k++;
        if (k == start)
            return false;
    }
    *i = k;
    return true;
}

tr_err state_with_serial(struct arena *a, const char *data, size_t len,
                         int64_t serial, char **out, size_t *outlen,
                         struct tr_errbuf *eb)
{
    size_t i = skip_ws(data, 0, len), vs = 0, ve = 0;
    if (i >= len || data[i] != '{')
        return tr_fail(eb, TR_ERR_INVALID, "state must be a JSON object");
    i = skip_ws(data, i + 1, len);
    while (i < len && data[i] != '}') {
        size_t ks = i;
        if (data[i] != '"' || !skip_string(data, &i, len))
            return tr_fail(eb, TR_ERR_INVALID, "state is not valid JSON");
        bool is_serial = i - ks == 8 && memcmp(data + ks, "\"serial\"", 8) == 0;
        i = skip_ws(data, i, len);
        if (i >= len || data[i] != ':')
            return tr_fail(eb, TR_ERR_INVALID, "state is not valid JSON");
        size_t v = skip_ws(data, i + 1, len);
        i = v;
        if (!skip_value(data, &i, len, 1))
            return tr_fail(eb, TR_ERR_INVALID, "state is not valid JSON");
        if (is_serial) { /* the last one wins, as for every JSON reader */
            vs = v;
            ve = i;
        }
        i = skip_ws(data, i, len);
        if (i < len && data[i] == ',')
            i = skip_ws(data, i + 1, len);
    }
    if (ve == 0 || !(data[vs] == '-' || (data[vs] >= '0' && data[vs] <= '9')))
        return tr_fail(eb, TR_ERR_INVALID, "state has no serial number");
    char num[24];
    int nl = snprintf(num, sizeof(num), "%lld", (long long)serial);
    size_t total = vs + (size_t)nl + (len - ve);
    char *p = arena_alloc(a, total + 1);
    memcpy(p, data, vs);
    memcpy(p + vs, num, (size_t)nl);
    memcpy(p + vs + nl, data + ve, len - ve);
    *out = p;
    *outlen = total;
    return TR_OK;
}

/* ---- summaries ---------------------------------------------------------- */

/* "null_resource" -> "null-resource", as TFE names types in summaries. */
static void add_count(json_t *map, const char *group, const char *type,
                      json_int_t n)
{
    json_t *g = json_object_get(map, group);
    if (g == NULL) {
        g = json_object();
        json_object_set_new(map, group, g);
    }
    char key[256];
    snprintf(key, sizeof(key), "%s", type);
    for (char *p = key; *p; p++)
        if (*p == '_')
            *p = '-';
    json_int_t have = json_integer_value(json_object_get(g, key));
    json_object_set_new(g, key, json_integer(have + n));
}

void state_resource_attrs(const char *resources_json, json_t **resources,
                          json_t **modules, json_t **providers)
{
    json_t *list = NULL;
    if (resources_json != NULL)
        list = state_json_load(resources_json, strlen(resources_json));
    if (!json_is_array(list)) {
        json_decref(list);
        list = json_array();
    }
    json_t *mods = json_object(), *provs = json_object();
    size_t i;
    json_t *r;
    json_array_foreach(list, i, r)
    {
        const char *type = opt_str(r, "type", "");
        json_int_t n = json_integer_value(json_object_get(r, "count"));
        add_count(mods, opt_str(r, "module", "root"), type, n);
        add_count(provs, opt_str(r, "provider", ""), type, n);
    }
    *resources = list;
    *modules = mods;
    *providers = provs;
}

/* ---- dumping ------------------------------------------------------------ */

static bool put(struct buf *b, const char *s, size_t n)
{
    return buf_append(b, s, n) == TR_OK;
}

bool state_dump_string(struct buf *b, const char *s, size_t n)
{
    bool ok = put(b, "\"", 1);
    size_t run = 0;
    for (size_t i = 0; ok && i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        ok = put(b, s + run, i - run);
        char esc[8];
        switch (c) {
        case '"':
            strcpy(esc, "\\\"");
            break;
        case '\\':
            strcpy(esc, "\\\\");
            break;
        case '\n':
            strcpy(esc, "\\n");
            break;
        case '\r':
            strcpy(esc, "\\r");
            break;
        case '\t':
            strcpy(esc, "\\t");
            break;
        case '\b':
            strcpy(esc, "\\b");
            break;
        case '\f':
            strcpy(esc, "\\f");
            break;
        default:
            snprintf(esc, sizeof(esc), "\\u%04x", c);
            break;
        }
        ok = ok && put(b, esc, strlen(esc));
        run = i + 1;
    }
    return ok && put(b, s + run, n - run) && put(b, "\"", 1);
}

/* The shortest %g form that reads back as the same double. */
static bool dump_real(struct buf *b, double d)
{
    char tmp[40];
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(tmp, sizeof(tmp), "%.*g", prec, d);
        if (strtod(tmp, NULL) == d)
            break;
    }
    return put(b, tmp, strlen(tmp));
}

static bool dump(struct buf *b, const json_t *j)
{
    char tmp[32];
    switch (json_typeof(j)) {
    case JSON_OBJECT: {
        bool ok = put(b, "{", 1), first = true;
        const char *k;
        json_t *v;
        json_object_foreach((json_t *)j, k, v)
        {
            ok = ok && (first || put(b, ",", 1)) &&
                 state_dump_string(b, k, strlen(k)) && put(b, ":", 1) &&
                 dump(b, v);
            first = false;
        }
        return ok && put(b, "}", 1);
    }
    case JSON_ARRAY: {
        bool ok = put(b, "[", 1);
        for (size_t i = 0; ok && i < json_array_size(j); i++)
            ok = (i == 0 || put(b, ",", 1)) && dump(b, json_array_get(j, i));
        return ok && put(b, "]", 1);
    }
    case JSON_STRING:
        return state_dump_string(b, json_string_value(j),
                                 json_string_length(j));
    case JSON_INTEGER:
        snprintf(tmp, sizeof(tmp), "%" JSON_INTEGER_FORMAT,
                 json_integer_value(j));
        return put(b, tmp, strlen(tmp));
    case JSON_REAL:
        return dump_real(b, json_real_value(j));
    case JSON_TRUE:
        return put(b, "true", 4);
    case JSON_FALSE:
        return put(b, "false", 5);
    default:
        return put(b, "null", 4);
    }
}

char *state_json_dump(struct arena *a, const json_t *j, size_t *len)
{
    struct buf b;
    buf_init(&b, 0);
    if (!dump(&b, j)) {
        /* only malloc can fail here; arenas abort on OOM, so do we */
        fprintf(stderr, "fatal: out of memory dumping JSON\n");
        abort();
    }
    char *s = arena_memdup(a, b.data ? b.data : "", b.len + 1);
    if (len != NULL)
        *len = b.len;
    buf_free(&b);
    return s;
}
