/*
 * internal_int.h - helpers shared by the internal API's files
 * (internal.c, internal_jobs.c): plain JSON bodies (not JSON:API) and
 * their fields, checked as the public API checks its own.
 *
 * Each getter writes the error response (400 for a body that is not a
 * JSON object, 422 for a field of the wrong type or out of range) and
 * returns false; a missing optional field leaves *out alone.
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#ifndef TR_API_INTERNAL_INT_H
#define TR_API_INTERNAL_INT_H

#include <stdbool.h>
#include <stdint.h>

#include "http/http.h"

/* The body as a JSON object (owned by the request); an empty body is an
 * empty object.  NULL after answering 400. */
json_t *api_internal_body(struct http_req *r);
bool api_internal_str(struct http_req *r, json_t *o, const char *name,
                      bool required, size_t max, const char **out);
bool api_internal_int(struct http_req *r, json_t *o, const char *name,
                      int64_t lo, int64_t hi, int64_t *out);
bool api_internal_bool(struct http_req *r, json_t *o, const char *name,
                       bool *out);

/* Answers doc (consumed) as plain application/json. */
void api_internal_reply(struct http_req *r, int status, json_t *doc);

#endif
