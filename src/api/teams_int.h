/*
 * teams_int.h - what the team API files share (teams.c, team_access.c,
 * team_tokens.c): the team document and its access check.
 *
 * Internal to src/api; other modules use api.h.
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#ifndef TR_API_TEAMS_INT_H
#define TR_API_TEAMS_INT_H

#include "api/accounts.h"
#include "api/workspaces_int.h"

/* The random part of an id from util_new_id(). */
#define API_ID_RANDOM 16

/* Loads team id, and its organization (o nullable), if the caller may see
 * it (a member of its organization; a secret team only to its members and
 * to callers with access-secret-teams); *perms (nullable) gets the
 * caller's organization flags.  Otherwise writes 404 and returns false. */
bool api_team_access(struct http_req *r, const char *id, struct st_team *t,
                     struct st_org *o, access_t *perms);

/* The "teams" resource object of t (in o) with its members users and
 * the invited memberships that will join it (organization-memberships). */
json_t *api_team_json(struct http_req *r, const struct st_org *o,
                      const struct st_team *t, const struct st_user *users,
                      int nusers, const struct st_membership *invites,
                      int ninvites);

/* The organization-access object of a team (every permission true for
 * the owners team). */
json_t *api_team_org_access_json(const char *org_access, bool owners);

#endif
