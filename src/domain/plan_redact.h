/*
 * plan_redact.h - removes secrets from a JSON plan (`tofu show -json`)
 * before it is stored for the API, and builds TFE's redacted plan shape.
 *
 * Two outputs from one plan:
 *   - full: the whole plan with every value the plan marks sensitive
 *     (before_sensitive/after_sensitive/sensitive_values masks) set to
 *     null, and the values of sensitive input variables (declared so in the
 *     configuration, or named by the caller: workspace variables marked
 *     sensitive) removed.  Served by GET /plans/:id/json-output.
 *   - redacted: the subset the CLI renders (jsonformat.Plan):
 *     plan_format_version, output_changes, resource_changes,
 *     resource_drift, relevant_attributes, deferred_changes,
 *     provider_format_version, provider_schemas, with the same nulls.
 *     provider_schemas come from `tofu providers schema -json` when the
 *     worker ran it (the CLI needs them to render a plan from JSON; it
 *     crashes on a resource whose provider has none).
 *
 * Pure functions over text; no I/O.
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#ifndef TR_PLAN_REDACT_H
#define TR_PLAN_REDACT_H

#include <stddef.h>

#include "core/arena.h"
#include "core/err.h"

/* TR_ERR_INVALID when json is not a JSON object.  schemas (NULL: none)
 * is `tofu providers schema -json` output: its provider_schemas, cut down
 * to the resource and data source types the plan mentions, go into the
 * redacted plan.  Outputs are text in a. */
tr_err plan_redact(struct arena *a, const char *json, size_t len,
                   const char *schemas, size_t schemas_len,
                   const char *const *secret_vars, int nsecret, char **full,
                   size_t *full_len, char **redacted, size_t *redacted_len,
                   struct tr_errbuf *eb);

#endif
