/*
 * state_check.h - reading and validating Terraform/OpenTofu state files
 * (format version 4) without trusting them.
 *
 * A state file is the JSON document the CLI uploads: version, serial,
 * lineage, terraform_version, outputs (name -> {value, type, sensitive})
 * and resources.  state_parse() checks the parts Terrace relies on and
 * extracts outputs and a resource summary; it never rejects a state for
 * fields it does not know.  Integers too large for int64 (cty numbers are
 * arbitrary precision) are accepted: such documents are read with every
 * number as a double.
 *
 * state_json_dump() serialises JSON with numbers in their shortest
 * round-trip form, so output values leave Terrace as they came in
 * (jansson's own dumper prints 1000.1 as 1000.1000000000000227).
 *
 * Everything returned lives in the arena passed in.
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#ifndef TR_STATE_CHECK_H
#define TR_STATE_CHECK_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/arena.h"
#include "core/err.h"

struct state_output {
    const char *name;
    bool sensitive;
    const char *type;          /* string|number|boolean|array|object|null */
    const char *detailed_type; /* JSON text of the cty type, e.g. "string" */
    const char *value;         /* JSON text of the value */
};

struct state_info {
    int64_t version; /* always 4 on success */
    int64_t serial;
    const char *lineage;           /* "" when the file has none */
    const char *terraform_version; /* "" when absent */
    int noutputs;
    struct state_output *outputs; /* in file order */
    int nresources;
    const char *resources; /* JSON text: [{name, type, count,
                              module, provider}] */
};

/* Parses and validates a state file held in memory, streaming (no tree:
 * memory beyond the text is its outputs and resource summary).
 * TR_ERR_INVALID with a message saying what is wrong when it is not a
 * usable v4 state; the bounds of state_parse_fd() apply. */
tr_err state_parse(struct arena *a, const void *data, size_t len,
                   struct state_info *out, struct tr_errbuf *eb);

/* Same, reading the file open on fd from its current offset to EOF in
 * blocks, with memory flat in the file's size (state_check_stream.c).
 * Both accept and refuse what a whole jansson tree would, with the same
 * messages for a state that is JSON but not a usable one, except beyond
 * their bounds:
 * outputs over 16 MB (TR_ERR_TOO_LARGE), a number over 4096 characters or
 * a lineage, terraform_version or resource field over 1 MB
 * (TR_ERR_INVALID).  TR_ERR_IO when the file cannot be read. */
tr_err state_parse_fd(struct arena *a, int fd, struct state_info *out,
                      struct tr_errbuf *eb);

/* Gets each block state_parse_fd_with() reads, in order. */
typedef void (*state_block_fn)(void *arg, const void *data, size_t len);

/* state_parse_fd() that also hands every block it reads to hook (when not
 * NULL) and reads to the end of the file even when the state is refused,
 * so one pass can both check and digest an upload. */
tr_err state_parse_fd_with(struct arena *a, int fd, state_block_fn hook,
                           void *arg, struct state_info *out,
                           struct tr_errbuf *eb);

/* True when data is one well-formed JSON document (any top-level value);
 * for the JSON state and json-state-outputs, which are stored, not read. */
bool state_is_json(const void *data, size_t len);
/* The same check on the file open on fd, streaming. */
bool state_is_json_fd(int fd);

/* A copy of the state text with the top-level "serial" value replaced;
 * every other byte is kept.  TR_ERR_INVALID if there is no top-level
 * serial number to replace. */
tr_err state_with_serial(struct arena *a, const char *data, size_t len,
                         int64_t serial, char **out, size_t *outlen,
                         struct tr_errbuf *eb);

/* The attributes TFE derives from a state's resources: "resources" (the
 * list itself), "modules" ({module: {type-with-dashes: count}}) and
 * "providers" ({provider: {type-with-dashes: count}}).  resources_json is
 * state_info.resources; new references are returned (never NULL). */
void state_resource_attrs(const char *resources_json, json_t **resources,
                          json_t **modules, json_t **providers);

/* The same three attributes as compact JSON text in a (text[0..2]:
 * resources, modules, providers; len[k] their lengths), as
 * state_json_dump() writes them; remembered by resources_json's text
 * (state_attrs_memo.c). */
void state_attrs_text(struct arena *a, const char *resources_json,
                      char *text[3], size_t len[3]);

/* Parses JSON text of any kind, retrying with numbers as doubles when an
 * integer overflows int64.  NULL on malformed text.  New reference. */
json_t *state_json_load(const char *text, size_t len);

/* Compact JSON text of j with shortest round-trip numbers, in a; *len
 * (nullable) gets its length. */
char *state_json_dump(struct arena *a, const json_t *j, size_t *len);

#endif
