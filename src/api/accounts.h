/*
 * accounts.h - declarations shared by the account files of the API:
 * organizations.c (organizations), memberships.c (organization
 * memberships), users.c (account, users, site administration) and
 * tokens.c (organization and user tokens).
 *
 * The route tables api_org_routes (organizations.c) and api_user_routes
 * (users.c) point at the token handlers declared here.  Not for use
 * outside these files.
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#ifndef TR_API_ACCOUNTS_H
#define TR_API_ACCOUNTS_H

#include "api/api.h"

/* How much of a user the caller may see. */
enum user_view {
    USER_VIEW_PUBLIC = 0, /* another user: no email */
    USER_VIEW_SELF,       /* the user, or a site admin: email, settings */
    USER_VIEW_ADMIN,      /* /admin/users: adds is-admin, organizations */
};

/* A "users" resource object.  orgs (USER_VIEW_ADMIN only) may be NULL. */
json_t *api_user_json(struct http_req *r, const struct st_user *u,
                      enum user_view view, const char *const *orgs, int norgs);

/* The "authentication-tokens" resource of t; secret (nullable) only in
 * the response that created it.  api_reply_token() answers it. */
json_t *api_token_json(const struct st_token *t, const char *secret);
void api_reply_token(struct http_req *r, int status, const struct st_token *t,
                     const char *secret);
/* Token-create options from the body (description, expired-at: in the
 * future, RFC 3339); false after answering an error. */
bool api_token_opts(struct http_req *r, const char **description,
                    const char **expired_at);
/* True when the caller may see and manage team_id's tokens (team_tokens.c):
 * manage-teams, or a member when the team allows member token
 * management. */
bool api_team_token_may(struct http_req *r, const char *team_id);

/* local@domain: printable, no spaces, one '@', at most 254 bytes. */
bool api_valid_email(const char *s);

/* Answers 404 (and returns false) unless the caller is a user; a site
 * admin only when admin is true. */
bool api_need_user(struct http_req *r, bool admin);

/* Membership handlers (memberships.c). */
void api_memberships_list(struct http_req *r);
void api_memberships_own(struct http_req *r);
void api_membership_create(struct http_req *r);
void api_membership_show(struct http_req *r);
void api_membership_delete(struct http_req *r);
void api_membership_accept(struct http_req *r);

/* Token handlers (tokens.c). */
void api_org_token_get(struct http_req *r);
void api_org_token_create(struct http_req *r);
void api_org_token_delete(struct http_req *r);
void api_user_tokens_list(struct http_req *r);
void api_user_token_create(struct http_req *r);
void api_admin_user_token_create(struct http_req *r);
void api_token_get(struct http_req *r);
void api_token_delete(struct http_req *r);

#endif
