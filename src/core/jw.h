/*
 * jw.h - a streaming JSON writer: appends compact JSON text to a buf as
 * values are given, with no tree in between.
 *
 * The writer places commas and colons itself: open an object or array,
 * write keys and values in order, close it.  Strings are escaped as
 * jansson's compact dump escapes them ('"', '\\', \b \f \n \r \t, other
 * bytes below 0x20 as \u00XX) and every other byte, UTF-8 included, is
 * copied as is; the text is then the same as json_dumpb(JSON_COMPACT) of
 * the equivalent json_t tree, in the same key order.  A NULL string is
 * written as null.
 *
 * Errors are sticky: the first failure (out of memory, nesting deeper
 * than JW_MAX_DEPTH, a key outside an object) is kept in the writer,
 * later calls do nothing, and jw_error() reports it once the document is
 * done.  Nothing here allocates but the buf.
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#ifndef TR_JW_H
#define TR_JW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/err.h"

#define JW_MAX_DEPTH 32

struct jw {
    struct buf *out;
    int depth;       /* open objects and arrays */
    uint32_t first;  /* bit d: nothing written yet at depth d */
    uint32_t is_obj; /* bit d: depth d is an object */
    bool want_value; /* a key was written: its value comes next */
    tr_err err;      /* the first failure, or TR_OK */
};

/* Starts writing into out (appends to what it holds). */
void jw_init(struct jw *w, struct buf *out);
/* TR_OK, or the first failure; TR_ERR_INTERNAL also when an object or
 * array is still open. */
tr_err jw_error(const struct jw *w);

void jw_obj(struct jw *w);     /* { */
void jw_obj_end(struct jw *w); /* } */
void jw_arr(struct jw *w);     /* [ */
void jw_arr_end(struct jw *w); /* ] */
/* The next member's name (in an object only). */
void jw_key(struct jw *w, const char *key);

void jw_str(struct jw *w, const char *s); /* NULL: null */
void jw_strn(struct jw *w, const char *s, size_t n);
void jw_int(struct jw *w, int64_t v);
void jw_bool(struct jw *w, bool v);
void jw_null(struct jw *w);
/* A value that is already JSON text, copied as is. */
void jw_raw(struct jw *w, const char *json, size_t n);

/* Stored JSON text (an array or object, as jansson's json_loads() reads
 * it without JSON_DECODE_ANY) copied as is; def (trusted JSON) instead
 * when text is NULL or is not one such value by jw_skip_value(). */
void jw_json(struct jw *w, const char *text, const char *def);

/* The end of the JSON value at s (after leading blanks), or NULL when
 * there is none.  A light scan for text a JSON writer made: strings must
 * close and brackets balance, but tokens are not checked one by one. */
const char *jw_skip_value(const char *s);

/* A string made of pieces (jw_str_begin, any jw_str_add, jw_str_end), so
 * that "/api/v2/x/" + id needs no intermediate copy. */
void jw_str_begin(struct jw *w);
void jw_str_add(struct jw *w, const char *s);
void jw_str_end(struct jw *w);

/* key then value, for the common case. */
void jw_kstr(struct jw *w, const char *key, const char *s);
void jw_kint(struct jw *w, const char *key, int64_t v);
void jw_kbool(struct jw *w, const char *key, bool v);
void jw_knull(struct jw *w, const char *key);

#endif
