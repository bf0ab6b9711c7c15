/*
 * vars_int.h - what the workspace variables API (variables.c) and the
 * variable sets API (varsets.c) share: the variable document and the
 * checks on variable attributes.
 *
 * Internal to src/api; other modules use api.h.
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#ifndef TR_API_VARS_INT_H
#define TR_API_VARS_INT_H

#include "api/workspaces_int.h"

#define API_VAR_MAX_KEY 255
#define API_VAR_MAX_DESCRIPTION 512

/* What a create or update body asks for; NULL / -1: not given. */
struct var_in {
    const char *key;
    const char *value;
    const char *category;
    const char *description;
    int hcl;
    int sensitive;
};

/* Reads and checks the attributes of data, a "vars" resource object.  On
 * create, key and category are required; on update cur is the variable
 * as it is, so that the key is checked against the category it will have.
 * Writes a 422 and returns false on a bad attribute, including an
 * environment variable name that env_name_refused() refuses. */
bool api_var_parse(struct http_req *r, json_t *data, const struct st_var *cur,
                   struct var_in *in);

/* The store's view of in. */
struct st_var api_var_new(const struct var_in *in);
struct st_var_update api_var_update(const struct var_in *in);

/* The variable resource object written into j, the one serializer of a
 * variable.  value is null for a sensitive variable; ws (the owner, or
 * NULL for a variable of a set) gives the links. */
void api_var_write(struct http_req *r, struct jw *j, const struct st_var *v,
                   const struct st_workspace *ws);
/* The same as a tree (new reference): api_var_write()'s text, parsed. */
json_t *api_var_json(struct http_req *r, const struct st_var *v,
                     const struct st_workspace *ws);

#endif
