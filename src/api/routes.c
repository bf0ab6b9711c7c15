/*
 * routes.c - the lists of route tables the server matches against: the
 * public API (every role) and, on a primary or a demo, the internal API
 * for cluster nodes and agents besides it.
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#include "api/api.h"

/* One table per line, so that additions merge cleanly. */
/* clang-format off */
#define PUBLIC_TABLES \
    api_meta_routes, \
    api_user_routes, \
    api_org_routes, \
    api_project_routes, \
    api_workspace_routes, \
    api_tag_binding_routes, \
    api_run_trigger_routes, \
    api_ssh_key_routes, \
    api_state_routes, \
    api_tool_routes, \
    api_var_routes, \
    api_varset_routes, \
    api_cv_routes, \
    api_run_routes, \
    api_run_action_routes, \
    api_plan_apply_routes, \
    api_run_log_routes, \
    api_node_routes, \
    api_notification_routes, \
    api_compat_routes, \
    api_team_routes, \
    api_team_access_routes, \
    api_team_token_routes, \
    api_agent_pool_routes, \
    NULL

const struct route *const api_all_routes[] = {
    PUBLIC_TABLES
};

/* The public tables' order matters only among equal patterns (none). */
const struct route *const api_primary_routes[] = {
    api_internal_routes,
    api_internal_job_routes,
    api_join_token_routes,
    PUBLIC_TABLES
};
/* The demo: the internal API too, so agents (and secondaries) can join
 * it, but no join-token administration. */
const struct route *const api_demo_routes[] = {
    api_internal_routes,
    api_internal_job_routes,
    PUBLIC_TABLES
};
/* clang-format on */
