/*
 * state_int.h - what the remote-state API files share: state_versions.c
 * (versions, create, rollback, the route table), state_outputs.c (output
 * documents and endpoints) and state_transfer.c (state bytes: signed
 * uploads and downloads).
 *
 * Internal to src/api; other modules use api.h.
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#ifndef TR_API_STATE_INT_H
#define TR_API_STATE_INT_H

#include "api/api.h"
#include "domain/state_check.h"

/* Loads state version id and its workspace (ws nullable) if the caller
 * may see them and has the flags need on the workspace; otherwise writes
 * 404 (or 403) and returns false. */
bool api_sv_access(struct http_req *r, const char *id, struct st_sv *sv,
                   struct st_workspace *ws, access_t need);

/* The outputs of a parsed state in the store's form (request arena). */
struct st_sv_output *api_sv_outputs_of(struct http_req *r,
                                       const struct state_info *si);

/* The state-version-outputs resource object; hide: a sensitive value
 * reads as null. */
json_t *api_sv_output_json(struct http_req *r, const struct st_sv_output *o,
                           bool hide);

/* state_outputs.c */
void api_sv_outputs(struct http_req *r);
void api_ws_current_outputs(struct http_req *r);
void api_sv_output_show(struct http_req *r);

/* state_transfer.c */
void api_sv_download(struct http_req *r);
void api_sv_json_download(struct http_req *r);
void api_sv_upload(struct http_req *r);
void api_sv_json_upload(struct http_req *r);

#endif
