/*
 * job_tool.h - the tool binary of a claimed job (domain/job_service.c): the
 * registered version the run asks for, installed from the node's release
 * mirror first when it is missing (tool_install.h) and then registered,
 * with each step and every reason it cannot be had written to the job's
 * log, so the user reads it in the plan output rather than only in the
 * server log.
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#ifndef TR_JOB_TOOL_H
#define TR_JOB_TOOL_H

#include <stdint.h>

#include "core/arena.h"
#include "core/server.h"

/* Resolves want ("latest", "", or a version) for job job_id, heartbeating
 * its lease (lease_ms) while an install downloads.  *path, *sha256 and
 * *version live in a.  TR_ERR_NOT_FOUND with a message a user can act on
 * when no version can be had. */
tr_err job_tool_resolve(struct terrace_server *srv, struct arena *a,
                        const char *job_id, int64_t lease_ms, const char *want,
                        const char **path, const char **sha256,
                        const char **version, struct tr_errbuf *eb);

/* Appends text to the job's phase log; failures are only logged. */
void job_tool_log(struct terrace_server *srv, const char *job_id,
                  const char *text);

#endif
