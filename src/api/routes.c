/*
 * routes.c - the list of route tables the server matches against.
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#include "api/api.h"

const struct route *const api_all_routes[] = {
    api_meta_routes,
    api_user_routes,
    api_org_routes,
    api_project_routes,
    api_workspace_routes,
    api_tag_binding_routes,
    api_state_routes,
    api_tool_routes,
    api_var_routes,
    api_varset_routes,
    api_cv_routes,
    api_run_routes,
    api_run_action_routes,
    api_plan_apply_routes,
    api_run_log_routes,
    api_node_routes,
    NULL,
};
