/* stubs_tmp.c - temporary empty route tables until each API file lands. */
#include "api/api.h"
const struct route api_org_routes[] = {{0}};
const struct route api_user_routes[] = {{0}};
const struct route api_project_routes[] = {{0}};
const struct route api_workspace_routes[] = {{0}};
const struct route api_state_routes[] = {{0}};
