/*
 * state_upload.h - one pass over an uploaded state: checked, digested,
 * sealed and streamed to the blob store while it arrives, committed
 * there only once the caller accepts it.
 *
 * The caller writes the body into the descriptor state_upload_start()
 * hands out, in any pieces, then:
 *   state_upload_checked()  the check's result, the state's facts and
 *                           the body's md5 and sha256;
 *   state_upload_finish()   keep: the object is committed under the key
 *                           and durable on TR_OK; refuse: the backend
 *                           aborts and nothing new is visible under it.
 * state_upload_free() at any point refuses what is not finished and
 * waits for the threads it started.  Memory is flat in the state's size:
 * a kernel pipe, a ring of one part, a block of the reader and one part
 * of the backend.
 *
 * Not thread-safe: one caller thread drives an upload.
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#ifndef TR_STATE_UPLOAD_H
#define TR_STATE_UPLOAD_H

#include <stdbool.h>
#include <stdint.h>

#include "core/err.h"
#include "domain/state_check.h"

struct blob;
struct state_upload;

/* Starts an upload of exactly len bytes to key of b; *fd gets the
 * descriptor to write the body into (blocking writes; it stays the
 * upload's).  TR_ERR_IO when pipes or threads cannot be made. */
tr_err state_upload_start(struct blob *b, const char *key, uint64_t len,
                          struct state_upload **out, int *fd,
                          struct tr_errbuf *eb);

/* The body has ended (its descriptor is closed); waits for the check.
 * Returns the check's result as state_parse_fd() would (TR_ERR_INVALID,
 * TR_ERR_TOO_LARGE with a message); *si, *md5 and *sha256 (hex) are set
 * either way and live as long as the upload. */
tr_err state_upload_checked(struct state_upload *u, struct state_info *si,
                            char **md5, char **sha256, struct tr_errbuf *eb);

/* Commits (keep) or aborts the object and waits for the store: TR_OK
 * when kept and durable; when refused, TR_OK once the backend has given
 * up.  Else the store's error (nothing new visible under the key). */
tr_err state_upload_finish(struct state_upload *u, bool keep,
                           struct tr_errbuf *eb);

/* Refuses what is unfinished, joins the threads, frees.  NULL is a
 * no-op. */
void state_upload_free(struct state_upload *u);

#endif
