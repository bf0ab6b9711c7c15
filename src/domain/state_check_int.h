/*
 * state_check_int.h - what state_check.c shares with the streaming reader
 * in state_check_stream.c; not for other modules.
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#ifndef TR_STATE_CHECK_INT_H
#define TR_STATE_CHECK_INT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "core/arena.h"
#include "core/buf.h"
#include "core/err.h"
#include "domain/state_check.h"

/* Checks a parsed state root like state_parse() does, except its
 * resources: the object itself, version, serial, lineage,
 * terraform_version and outputs, in that order; *out gets them with no
 * resources. */
tr_err state_check_head(struct arena *a, json_t *root, struct state_info *out,
                        struct tr_errbuf *eb);

/* state_parse() by a whole jansson tree: memory grows with the
 * document.  The reference the streaming reader is tested against. */
tr_err state_parse_tree(struct arena *a, const void *data, size_t len,
                        struct state_info *out, struct tr_errbuf *eb);

/* Appends s (n bytes) to b as a JSON string literal.  False when b is
 * full. */
bool state_dump_string(struct buf *b, const char *s, size_t n);

#endif
