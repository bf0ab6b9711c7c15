/*
 * store.h - Terrace's metadata store: typed operations on users, tokens,
 * organizations, projects, workspaces and state versions, written once on
 * top of db.h and so identical on SQLite and PostgreSQL.
 *
 * Conventions for every function here:
 *   - returns TR_OK or an error code; the message goes to eb;
 *   - TR_ERR_NOT_FOUND when the object does not exist;
 *   - TR_ERR_CONFLICT for a duplicate name or a lost race;
 *   - strings written to out-structs live in the arena passed in;
 *   - each function takes a connection from the pool and returns it, so it
 *     is safe from any thread; functions that must be atomic run one
 *     transaction inside.
 *
 * The file is cut into sections, one per resource; each section's
 * functions are implemented in the store_<section>.c named in its banner.
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#ifndef TR_STORE_H
#define TR_STORE_H

#include <stdbool.h>
#include <stdint.h>

#include "core/arena.h"
#include "core/err.h"
#include "core/util.h"
#include "store/db.h"

/* ---- schema (migrate.c) ------------------------------------------------ */

tr_err store_migrate(struct db *db, struct tr_errbuf *eb);
/* Applies the migrations numbered up to upto only (tests of a migration
 * on a database that holds the data of an older schema). */
tr_err store_migrate_to(struct db *db, int upto, struct tr_errbuf *eb);
/* How many of this binary's migrations the database has not recorded
 * (0: the schema is current, for readiness). */
tr_err store_migrations_pending(struct db *db, int *pending,
                                struct tr_errbuf *eb);
/* The number of the newest migration this binary holds. */
int store_schema_latest(void);
/* The newest migration the database records (0: none yet). */
tr_err store_schema_version(struct db *db, int *version, struct tr_errbuf *eb);

/* ---- counts for /metrics (store_metrics.c) ----------------------------- */

struct st_count {
    const char *key; /* a run status, or a node name */
    int64_t n;
};

/* Runs by status, queued jobs, running jobs and running jobs by node,
 * from one connection (three cheap indexed statements). */
struct st_metrics {
    struct st_count *runs;
    int nruns;
    int64_t jobs_queued;
    int64_t jobs_running;
    struct st_count *nodes;
    int nnodes;
};
tr_err store_metrics_counts(struct db *db, struct arena *a,
                            struct st_metrics *out, struct tr_errbuf *eb);

/* ---- site settings (store_site.c) ------------------------------------- */

/* Returns the value for key, creating it with a fresh random hex value of
 * nbytes bytes if absent (first writer wins on a race). */
tr_err store_site_secret(struct db *db, struct arena *a, const char *key,
                         int nbytes, char **value, struct tr_errbuf *eb);
/* Sets key to proposed unless it has a value; *value gets the value that
 * holds now (the first writer's). */
tr_err store_site_claim(struct db *db, struct arena *a, const char *key,
                        const char *proposed, char **value,
                        struct tr_errbuf *eb);
/* Sets key to value, replacing what it held. */
tr_err store_site_put(struct db *db, struct arena *a, const char *key,
                      const char *value, struct tr_errbuf *eb);
/* TR_ERR_NOT_FOUND when key has no value. */
tr_err store_site_get(struct db *db, struct arena *a, const char *key,
                      char **value, struct tr_errbuf *eb);

/* ---- users (store_users.c) --------------------------------------------- */

struct st_user {
    const char *id; /* user-... */
    const char *username;
    const char *email;
    bool is_admin;
    const char *created_at;
};

/* Usernames are unique; so are non-empty emails (case-insensitive).  A
 * duplicate of either is TR_ERR_CONFLICT, as in store_user_update(). */
tr_err store_user_create(struct db *db, struct arena *a, const char *username,
                         const char *email, bool is_admin, struct st_user *out,
                         struct tr_errbuf *eb);
tr_err store_user_get(struct db *db, struct arena *a, const char *id,
                      struct st_user *out, struct tr_errbuf *eb);
tr_err store_user_by_name(struct db *db, struct arena *a, const char *username,
                          struct st_user *out, struct tr_errbuf *eb);
tr_err store_user_list(struct db *db, struct arena *a, int offset, int limit,
                       struct st_user **out, int *n, int64_t *total,
                       struct tr_errbuf *eb);
tr_err store_user_update(struct db *db, struct arena *a, const char *id,
                         const char *username, const char *email,
                         int is_admin /* -1 keep */, struct tr_errbuf *eb);
tr_err store_user_delete(struct db *db, struct arena *a, const char *id,
                         struct tr_errbuf *eb);
/* Users whose username or email contains query (case-insensitive; NULL or
 * "" for all), restricted by admin (-1 any, 0 non-admins, 1 site admins),
 * ordered by username. */
tr_err store_user_search(struct db *db, struct arena *a, const char *query,
                         int admin, int offset, int limit, struct st_user **out,
                         int *n, int64_t *total, struct tr_errbuf *eb);
/* The user with this email (case-insensitive); TR_ERR_NOT_FOUND if none. */
tr_err store_user_by_email(struct db *db, struct arena *a, const char *email,
                           struct st_user *out, struct tr_errbuf *eb);
/* Names of the organizations the user belongs to, sorted; *names has *n
 * entries. */
tr_err store_user_orgs(struct db *db, struct arena *a, const char *user_id,
                       const char ***names, int *n, struct tr_errbuf *eb);

/* ---- tokens (store_tokens.c) ------------------------------------------- */

/* kind: "user" (subject = user id), "org" (subject = organization name;
 * renaming the organization renames the subject).  expired_at is stored in
 * util_iso_from_unix() form so that it compares as text with the current
 * time. */
struct st_token {
    const char *id; /* at-... */
    const char *kind;
    const char *subject;
    const char *description;
    const char *created_by; /* user id or NULL */
    const char *created_at;
    const char *last_used_at;
    const char *expired_at; /* ISO time or NULL */
    /* filled by store_token_lookup() for kind "user": the owner's name
     * (NULL if the user is gone) and site-admin flag */
    const char *user_name;
    bool user_admin;
    /* ... and for kinds "team" and "team-legacy" (a team's legacy single
     * token): the team's organization */
    const char *team_org;
};

/* Creates a token; *secret is the only copy of the plain token (only its
 * SHA-256 is stored). */
tr_err store_token_create(struct db *db, struct arena *a, const char *kind,
                          const char *subject, const char *description,
                          const char *created_by, const char *expired_at,
                          struct st_token *out, char **secret,
                          struct tr_errbuf *eb);
/* Same, with the secret given (an operator's seed, file_read_secret()),
 * never expiring. */
tr_err store_token_create_given(struct db *db, struct arena *a,
                                const char *kind, const char *subject,
                                const char *description, const char *created_by,
                                const char *secret, struct st_token *out,
                                struct tr_errbuf *eb);
/* Finds the token whose hash matches; TR_ERR_NOT_FOUND if none or
 * expired.  Updates last_used_at at most once a minute. */
tr_err store_token_lookup(struct db *db, struct arena *a, const char *secret,
                          struct st_token *out, struct tr_errbuf *eb);
/* The same lookup, which also reads workspace ws_id in its round trip
 * (as store_ws_get(), whatever the token may see; the caller decides):
 * *found tells whether there is one, filled into *ws in a.  For a read
 * whose token check and workspace would otherwise be two statements. */
struct st_workspace;
tr_err store_token_lookup_ws(struct db *db, struct arena *a, const char *secret,
                             const char *ws_id, struct st_token *out,
                             struct st_workspace *ws, bool *found,
                             struct tr_errbuf *eb);
tr_err store_token_get(struct db *db, struct arena *a, const char *id,
                       struct st_token *out, struct tr_errbuf *eb);
tr_err store_token_list(struct db *db, struct arena *a, const char *kind,
                        const char *subject, struct st_token **out, int *n,
                        struct tr_errbuf *eb);
tr_err store_token_delete(struct db *db, struct arena *a, const char *id,
                          struct tr_errbuf *eb);
tr_err store_token_delete_subject(struct db *db, struct arena *a,
                                  const char *kind, const char *subject,
                                  struct tr_errbuf *eb);
/* Deletes every token of (kind, subject) and creates one new token, in one
 * transaction: an organization has at most one token. */
tr_err store_token_replace(struct db *db, struct arena *a, const char *kind,
                           const char *subject, const char *description,
                           const char *created_by, const char *expired_at,
                           struct st_token *out, char **secret,
                           struct tr_errbuf *eb);

/* On c, in its open transaction: deletes the run tokens of run_id and
 * makes a new one expiring at expired_at (*secret in a).  Its
 * last_used_at starts at its creation, so its first minute of use writes
 * nothing (nobody reads it for run tokens). */
tr_err store_run_token_mint(struct db_conn *c, struct arena *a,
                            const char *run_id, const char *expired_at,
                            char **secret, struct tr_errbuf *eb);

/* ---- organizations (store_orgs.c) -------------------------------------- */

/* settings holds the updatable TFE attributes under their TFE names
 * ("default-execution-mode", "session-timeout", "cost-estimation-enabled",
 * ...); a missing key means TFE's default (see api/organizations.c). */
struct st_org {
    const char *name;
    const char *id; /* org-... (external id) */
    const char *email;
    const char *settings; /* JSON object text of updatable attributes */
    const char *created_at;
    const char *default_project; /* prj-... or NULL */
};

/* Creates the organization, its default project, and (if owner is not
 * NULL) the owner's membership, in one transaction.  Names are unique
 * regardless of case: TR_ERR_INVALID ("name X has already been taken")
 * when one differing only in case exists, here and in a rename.  Lookups
 * by name are exact. */
tr_err store_org_create(struct db *db, struct arena *a, const char *name,
                        const char *email, const char *settings,
                        const char *owner_user_id, struct st_org *out,
                        struct tr_errbuf *eb);
tr_err store_org_get(struct db *db, struct arena *a, const char *name,
                     struct st_org *out, struct tr_errbuf *eb);
/* member_user_id NULL: all organizations (site admin).  name_query matches
 * name or email, case-insensitively.  Newest first. */
tr_err store_org_list(struct db *db, struct arena *a,
                      const char *member_user_id, const char *name_query,
                      int offset, int limit, struct st_org **out, int *n,
                      int64_t *total, struct tr_errbuf *eb);
/* NULL arguments keep the current value.  A rename carries the
 * organization's token with it. */
tr_err store_org_update(struct db *db, struct arena *a, const char *name,
                        const char *new_name, const char *email,
                        const char *settings, struct tr_errbuf *eb);
tr_err store_org_delete(struct db *db, struct arena *a, const char *name,
                        struct tr_errbuf *eb);
tr_err store_org_is_member(struct db *db, struct arena *a, const char *org,
                           const char *user_id, bool *member,
                           struct tr_errbuf *eb);
/* By external id (org-...). */
tr_err store_org_by_id(struct db *db, struct arena *a, const char *id,
                       struct st_org *out, struct tr_errbuf *eb);

/* ---- organization memberships (store_memberships.c) -------------------- */

/* A membership is "invited" until its user accepts, then "active"; only
 * active memberships give access (the org_members view).  An invitation
 * to an address no account has yet has user_id NULL and invitee_id set:
 * the id the account made with that address will get (the same for all
 * of the address's open invitations), so the invitation can name its user
 * before the user exists.  email is the user's current address once there
 * is a user, else the invited one. */
struct st_membership {
    const char *id; /* ou-... */
    const char *org;
    const char *user_id;    /* NULL while no account has the address */
    const char *invitee_id; /* user_id, or the reserved id while NULL */
    const char *email;
    const char *status; /* "invited" or "active" */
    const char *created_at;
    bool has_user; /* user holds the account (user_id not NULL) */
    struct st_user user;
    /* Filled by get, list and invite: the teams an invitation will join,
     * or an active member's teams of the organization (by team id). */
    const char **team_ids;
    int nteams;
};

/* Invites email to org: the account with that address (case-insensitive)
 * if there is one, else a reserved id.  TR_ERR_INVALID when that user or
 * address already has a membership of org.  The row is marked for an
 * invitation mail (store_membership_mail_due()). */
tr_err store_membership_invite(struct db *db, struct arena *a, const char *org,
                               const char *email, struct st_membership *out,
                               struct tr_errbuf *eb);
/* store_membership_invite() that also records the n teams (ids) the
 * invitation will join on acceptance, in the same transaction:
 * TR_ERR_NOT_FOUND, creating nothing, when one is not a team of org. */
tr_err store_membership_invite_teams(struct db *db, struct arena *a,
                                     const char *org, const char *email,
                                     const char *const *team_ids, int n,
                                     struct st_membership *out,
                                     struct tr_errbuf *eb);
/* TR_ERR_NOT_FOUND when there is no membership id. */
tr_err store_membership_get(struct db *db, struct arena *a, const char *id,
                            struct st_membership *out, struct tr_errbuf *eb);

/* List filters; NULL / 0 fields do not filter. */
struct st_membership_filter {
    const char *org;           /* memberships of this organization */
    const char *user_id;       /* memberships of this user */
    const char *query;         /* part of the email or username */
    const char *status;        /* "invited" or "active" */
    const char *const *emails; /* any of these addresses */
    int nemails;
};
/* Oldest first. */
tr_err store_membership_list(struct db *db, struct arena *a,
                             const struct st_membership_filter *f, int offset,
                             int limit, struct st_membership **out, int *n,
                             int64_t *total, struct tr_errbuf *eb);
/* invited -> active, by the membership's own user only: TR_ERR_NOT_FOUND
 * when id is not user_id's, TR_ERR_CONFLICT when already active.  The user
 * joins the invitation's teams (those still there) in the same
 * transaction. */
tr_err store_membership_accept(struct db *db, struct arena *a, const char *id,
                               const char *user_id, struct tr_errbuf *eb);
/* Deletes membership id and takes its user out of the organization's
 * teams.  TR_ERR_CONFLICT, deleting nothing, when that would leave the
 * owners team empty. */
tr_err store_membership_delete(struct db *db, struct arena *a, const char *id,
                               struct tr_errbuf *eb);
/* Up to limit memberships whose invitation mail is still to be sent. */
tr_err store_membership_mail_due(struct db *db, struct arena *a, int limit,
                                 struct st_membership **out, int *n,
                                 struct tr_errbuf *eb);
/* Marks id's invitation mail as sent (or given up). */
tr_err store_membership_mail_done(struct db *db, struct arena *a,
                                  const char *id, struct tr_errbuf *eb);

/* ---- teams and team access (store_teams.c, store_team_access.c) ------- */

/* A team of an organization.  Each organization has exactly one owners
 * team (is_owners), made with it; it cannot be deleted or emptied. */
struct st_team {
    const char *id; /* team-... */
    const char *org;
    const char *name;
    bool is_owners;
    const char *visibility;  /* "secret" | "organization" */
    const char *sso_team_id; /* or NULL */
    bool allow_member_tokens;
    const char *org_access; /* JSON object text: organization-access */
    const char *created_at;
    int64_t user_count; /* filled by get and list */
};

/* Creates t (org, name, visibility, sso_team_id, allow_member_tokens,
 * org_access given; id and created_at filled).  A name the organization's
 * teams already use is TR_ERR_INVALID. */
tr_err store_team_create(struct db *db, struct arena *a, struct st_team *t,
                         struct tr_errbuf *eb);
tr_err store_team_get(struct db *db, struct arena *a, const char *id,
                      struct st_team *out, struct tr_errbuf *eb);
/* The teams of the n ids (distinct), in no particular order, one query
 * per 200 ids; ids with no team are left out (*nout counts the found). */
tr_err store_team_get_many(struct db *db, struct arena *a,
                           const char *const *ids, int n, struct st_team **out,
                           int *nout, struct tr_errbuf *eb);
/* The owners team of org. */
tr_err store_team_owners(struct db *db, struct arena *a, const char *org,
                         struct st_team *out, struct tr_errbuf *eb);
/* A page of org's teams by name: q (nullable) matches part of the name,
 * names (n_names > 0) exact names; visible_to (nullable) keeps secret
 * teams only when that user is a member. */
tr_err store_team_list(struct db *db, struct arena *a, const char *org,
                       const char *q, const char *const *names, int n_names,
                       const char *visible_to, int offset, int limit,
                       struct st_team **out, int *n, int64_t *total,
                       struct tr_errbuf *eb);
/* NULL fields (allow_member_tokens < 0) stay as they are. */
tr_err store_team_update(struct db *db, struct arena *a, const char *id,
                         const char *name, const char *visibility,
                         const char *sso_team_id, int allow_member_tokens,
                         const char *org_access, struct tr_errbuf *eb);
/* Deletes a team that is not the owners team (TR_ERR_CONFLICT) with its
 * tokens, members and access. */
tr_err store_team_delete(struct db *db, struct arena *a, const char *id,
                         struct tr_errbuf *eb);
/* The team's members, by username. */
tr_err store_team_members(struct db *db, struct arena *a, const char *team_id,
                          struct st_user **out, int *n, struct tr_errbuf *eb);
/* Adds (add) or removes the n users; all or none.  Adding a user who is
 * not a member of the team's organization is TR_ERR_INVALID (naming
 * them); removing the owners team's last members is TR_ERR_CONFLICT. */
tr_err store_team_set_members(struct db *db, struct arena *a,
                              const char *team_id, bool add,
                              const char *const *user_ids, int n,
                              struct tr_errbuf *eb);
/* store_team_set_members() that also adds or removes the team for the
 * ninv invited memberships (ids) of the team's organization, all in one
 * transaction: an invitation joins its teams when it is accepted.  An id
 * that is not an invited membership of that organization is
 * TR_ERR_NOT_FOUND. */
tr_err store_team_set_memberships(struct db *db, struct arena *a,
                                  const char *team_id, bool add,
                                  const char *const *user_ids, int n,
                                  const char *const *invite_ids, int ninv,
                                  struct tr_errbuf *eb);
/* The invited memberships that will join team_id, oldest first
 * (store_memberships.c). */
tr_err store_team_invites(struct db *db, struct arena *a, const char *team_id,
                          struct st_membership **out, int *n,
                          struct tr_errbuf *eb);
/* Refuses (TR_ERR_CONFLICT) when removing user from org's teams would
 * leave its owners team empty; else removes them from every team of org. */
tr_err store_team_leave_org(struct db_conn *c, struct arena *a, const char *org,
                            const char *user_id, struct tr_errbuf *eb);

/* A team's access to a workspace (kind ST_TA_WS, "tws-...") or a project
 * (ST_TA_PRJ, "tprj-..."). */
enum st_ta_kind { ST_TA_WS, ST_TA_PRJ };
struct st_team_access {
    const char *id;
    const char *team_id;
    const char *target_id; /* ws-... or prj-... */
    const char *access;    /* level: read, plan, write, admin, custom, ... */
    const char *perms;     /* JSON object text: the custom permissions */
    const char *created_at;
    const char *org; /* the team's organization, filled by get and list */
};
/* TR_ERR_INVALID when the team already has access to the target. */
tr_err store_ta_create(struct db *db, struct arena *a, enum st_ta_kind kind,
                       struct st_team_access *t, struct tr_errbuf *eb);
tr_err store_ta_get(struct db *db, struct arena *a, enum st_ta_kind kind,
                    const char *id, struct st_team_access *out,
                    struct tr_errbuf *eb);
/* A page of the access rows of target (nullable) and/or team (nullable). */
tr_err store_ta_list(struct db *db, struct arena *a, enum st_ta_kind kind,
                     const char *target_id, const char *team_id, int offset,
                     int limit, struct st_team_access **out, int *n,
                     int64_t *total, struct tr_errbuf *eb);
tr_err store_ta_update(struct db *db, struct arena *a, enum st_ta_kind kind,
                       const char *id, const char *access, const char *perms,
                       struct tr_errbuf *eb);
tr_err store_ta_delete(struct db *db, struct arena *a, enum st_ta_kind kind,
                       const char *id, struct tr_errbuf *eb);

/* What gives a caller access inside an organization (domain/access.c). */
enum st_grant_kind {
    ST_GRANT_MEMBER, /* the user is a member of the organization */
    ST_GRANT_TEAM,   /* one of the caller's teams: owners, org_access */
    ST_GRANT_WS,     /* a team's access to the workspace */
    ST_GRANT_PRJ,    /* a team's access to the project */
};
struct st_grant {
    enum st_grant_kind kind;
    bool owners;        /* ST_GRANT_TEAM: the owners team */
    const char *access; /* TEAM: org_access JSON; WS, PRJ: the level */
    const char *perms;  /* WS, PRJ: custom permissions JSON */
    const char *key;    /* WS, PRJ: the workspace or project id */
};
/* In one query, every grant of org to the caller: user user_id (or NULL)
 * or team team_id (a team token, or NULL); access to workspace ws_id and
 * project prj_id (each nullable). */
tr_err store_grants(struct db *db, struct arena *a, const char *org,
                    const char *user_id, const char *team_id, const char *ws_id,
                    const char *prj_id, struct st_grant **out, int *n,
                    struct tr_errbuf *eb);
/* The same for several workspaces and projects at once (a page of a
 * list): every grant row says which one it is for (key). */
tr_err store_grants_many(struct db *db, struct arena *a, const char *org,
                         const char *user_id, const char *team_id,
                         const char *const *ws_ids, int nws,
                         const char *const *prj_ids, int nprj,
                         struct st_grant **out, int *n, struct tr_errbuf *eb);

/* ---- projects (store_projects.c) --------------------------------------- */

/* Every organization has exactly one default project ("Default Project",
 * made by store_org_create()); it can be renamed but never deleted.  Names
 * are unique within the organization. */
struct st_project {
    const char *id; /* prj-... */
    const char *org;
    const char *name;
    const char *description;
    bool is_default;
    int64_t workspace_count;
    const char *created_at;
};

/* Key/value tag bindings a create or update gives a project, replacing
 * its own (store_tb_set()); a NULL pointer keeps them. */
struct st_tb_list {
    const struct st_tag_binding *items;
    int n;
};

/* A duplicate name is TR_ERR_INVALID ("name ... has already been taken");
 * a missing organization TR_ERR_NOT_FOUND; tb (nullable): its bindings,
 * in the same transaction. */
tr_err store_project_create(struct db *db, struct arena *a, const char *org,
                            const char *name, const char *description,
                            const struct st_tb_list *tb, struct st_project *out,
                            struct tr_errbuf *eb);
tr_err store_project_get(struct db *db, struct arena *a, const char *id,
                         struct st_project *out, struct tr_errbuf *eb);
tr_err store_project_default(struct db *db, struct arena *a, const char *org,
                             struct st_project *out, struct tr_errbuf *eb);
/* Projects of org ordered by name.  names (nnames entries, may be 0):
 * keep projects whose name is one of them; query (NULL or ""): keep names
 * containing it, case-insensitively. */
/* visible_user / visible_team (nullable): only projects that this user's
 * teams or this team have access to (team_projects). */
tr_err store_project_list(struct db *db, struct arena *a, const char *org,
                          const char *const *names, int nnames,
                          const char *query, const char *visible_user,
                          const char *visible_team, int offset, int limit,
                          struct st_project **out, int *n, int64_t *total,
                          struct tr_errbuf *eb);
/* NULL arguments keep the current value; duplicate name: TR_ERR_INVALID;
 * tb (nullable) replaces the bindings, in the same transaction. */
tr_err store_project_update(struct db *db, struct arena *a, const char *id,
                            const char *name, const char *description,
                            const struct st_tb_list *tb, struct tr_errbuf *eb);
/* TR_ERR_CONFLICT for the default project or one that still holds
 * workspaces (checked in the deleting transaction). */
tr_err store_project_delete(struct db *db, struct arena *a, const char *id,
                            struct tr_errbuf *eb);

/* ---- workspaces (store_workspaces.c) ----------------------------------- */

struct st_workspace {
    const char *id; /* ws-... */
    const char *org;
    const char *name;
    const char *project_id;
    const char *description;
    const char *execution_mode;    /* remote | local | agent */
    const char *terraform_version; /* "latest" or a version */
    const char *working_directory;
    bool auto_apply;
    bool locked;
    const char *lock_kind;   /* "user" | "run" | "team" | "org" (an
                                organization token) | NULL */
    const char *lock_holder; /* user id, run id, ... or NULL */
    const char *lock_reason;
    const char *current_sv;    /* current state version id or NULL */
    const char *settings;      /* JSON object text: other attributes */
    const char *ssh_key_id;    /* sshkey-... used by runs, or NULL */
    const char *agent_pool_id; /* apool-... of the agent mode, or NULL */
    const char *created_at;
    const char *updated_at;
    /* Filled by get and list: */
    int64_t resource_count; /* entries of the current state version's
                               resources array; 0 without state */
    int64_t runs_count;     /* runs of the workspace, any status */
    const char **tag_names; /* sorted by name; also create's input */
    int ntags;
    /* What a workspace document shows, read with the row so that a page
     * of workspaces costs the same few statements as one (ids or NULL): */
    const char *current_run;   /* the run holding the workspace now */
    const char *latest_run;    /* the newest run */
    const char *shown_run;     /* STORE_WS_CURRENT_RUN_SQL */
    const char *first_pending; /* oldest pending run, only while locked
                                  by a user or token with no current run */
    const char *current_cv;    /* store_cv_current()'s id */
    const char **var_ids;      /* its variables, oldest first */
    int nvars;
    /* create's input only: key/value tag bindings (store_tb_set()) */
    const struct st_tag_binding *bindings;
    int nbindings;
};

tr_err store_ws_get(struct db *db, struct arena *a, const char *id,
                    struct st_workspace *out, struct tr_errbuf *eb);
tr_err store_ws_get_by_name(struct db *db, struct arena *a, const char *org,
                            const char *name, struct st_workspace *out,
                            struct tr_errbuf *eb);

/* Creates a workspace from in: org, name, project_id (NULL: the default
 * project), description, execution_mode, terraform_version,
 * working_directory, auto_apply, settings (NULL: "{}"), tag_names
 * (created in the organization as needed) and bindings, all in one
 * transaction; too many bindings is TR_ERR_INVALID.  A
 * duplicate name is TR_ERR_INVALID; an organization or project that does
 * not exist (or a project of another organization) is TR_ERR_NOT_FOUND. */
tr_err store_ws_create(struct db *db, struct arena *a,
                       const struct st_workspace *in, struct st_workspace *out,
                       struct tr_errbuf *eb);

/* Changes for store_ws_update(): NULL / -1 keep the current value. */
struct st_ws_update {
    const char *name;
    const char *project_id; /* must belong to the same organization */
    const char *description;
    const char *execution_mode;
    const char *terraform_version;
    const char *working_directory;
    int auto_apply;             /* -1 keep, 0, 1 */
    const char *agent_pool_id;  /* "": none */
    const char *settings_patch; /* JSON object whose keys replace those
                                   of settings; NULL: none */
    bool set_tags;              /* replace the tags by tag_names */
    const char *const *tag_names;
    int ntags;
    bool set_bindings; /* replace the key/value tag bindings */
    const struct st_tag_binding *bindings;
    int nbindings;
};

/* Applies u in one transaction and refreshes updated_at; out (nullable)
 * gets the result.  Duplicate name: TR_ERR_INVALID; unknown project:
 * TR_ERR_NOT_FOUND. */
tr_err store_ws_update(struct db *db, struct arena *a, const char *id,
                       const struct st_ws_update *u, struct st_workspace *out,
                       struct tr_errbuf *eb);

/* Deletes the workspace with its state versions and tag links.  safe:
 * refuse with TR_ERR_CONFLICT while it is locked or while its current state
 * version lists resources (the message says which). */
tr_err store_ws_delete(struct db *db, struct arena *a, const char *id,
                       bool safe, struct tr_errbuf *eb);

/* True when the settings JSON text of an organization or a workspace
 * (NULL: none) has key set to true. */
bool store_settings_flag(const char *settings, const char *key);

/* Filters for store_ws_list(); NULL / 0 means no filter. */
struct st_ws_filter {
    const char *org;         /* required */
    const char *search;      /* name contains, case-insensitively */
    const char *wildcard;    /* name matches, '*' any run of chars */
    const char *const *tags; /* has all of these tags */
    int ntags;
    const char *const *exclude_tags; /* has none of these tags */
    int nexclude;
    const char *project_id;
    enum st_ws_order {
        ST_WS_BY_CREATION = 0, /* default: oldest first (TFE: stable) */
        ST_WS_BY_NAME,
        ST_WS_BY_CURRENT_RUN,   /* the current run's creation */
        ST_WS_BY_LATEST_CHANGE, /* newest state version, else creation */
    } order;
    bool desc;                           /* order descending */
    const char *consumers_of;            /* only remote state consumers of this
                                            workspace id */
    const struct st_tag_binding *tagged; /* has each of these among its
                                      effective tag bindings (value ""
                                      or NULL: any value) */
    int ntagged;
    /* set (either): only workspaces that this user's teams or this team
     * have access to, by workspace or by project (team_workspaces,
     * team_projects) */
    const char *visible_user;
    const char *visible_team;
};

tr_err store_ws_list(struct db *db, struct arena *a,
                     const struct st_ws_filter *f, int offset, int limit,
                     struct st_workspace **out, int *n, int64_t *total,
                     struct tr_errbuf *eb);

/* Lock state machine (one row, changed by single conditional UPDATEs so
 * that concurrent callers cannot both win):
 *
 *   unlocked --store_ws_lock()--> locked(kind, holder, reason)
 *   locked --store_ws_unlock(kind, holder)--> unlocked   (same holder)
 *   locked --store_ws_unlock(NULL, NULL)--> unlocked     (force)
 *
 * store_ws_lock() on a locked workspace: TR_ERR_CONFLICT "workspace already
 * locked".  store_ws_unlock() on an unlocked one: TR_ERR_CONFLICT
 * "workspace already unlocked"; held by another holder: TR_ERR_CONFLICT
 * "workspace is locked by <Kind> <holder>" (Kind: User, Run, Team, Token).
 * out (nullable) gets the workspace after the change. */
tr_err store_ws_lock(struct db *db, struct arena *a, const char *id,
                     const char *kind, const char *holder, const char *reason,
                     struct st_workspace *out, struct tr_errbuf *eb);
tr_err store_ws_unlock(struct db *db, struct arena *a, const char *id,
                       const char *kind, const char *holder,
                       struct st_workspace *out, struct tr_errbuf *eb);

/* ---- SSH keys (store_ssh_keys.c) ---------------------------------------- */

/* An organization's SSH private key.  The value is stored sealed by the
 * caller (envelope.h) and read only by store_ssh_key_value(), for a run. */
struct st_ssh_key {
    const char *id; /* sshkey-... */
    const char *org;
    const char *name;
    const char *created_at;
    const char *updated_at;
};

tr_err store_ssh_key_create(struct db *db, struct arena *a, const char *org,
                            const char *name, const char *sealed,
                            struct st_ssh_key *out, struct tr_errbuf *eb);
tr_err store_ssh_key_get(struct db *db, struct arena *a, const char *id,
                         struct st_ssh_key *out, struct tr_errbuf *eb);
/* A page of org's keys by name. */
tr_err store_ssh_key_list(struct db *db, struct arena *a, const char *org,
                          int offset, int limit, struct st_ssh_key **out,
                          int *n, int64_t *total, struct tr_errbuf *eb);
/* Changes the name and/or the sealed value (NULL: keep). */
tr_err store_ssh_key_update(struct db *db, struct arena *a, const char *id,
                            const char *name, const char *sealed,
                            struct tr_errbuf *eb);
/* Deletes the key; workspaces that named it name none. */
tr_err store_ssh_key_delete(struct db *db, struct arena *a, const char *id,
                            struct tr_errbuf *eb);
/* The sealed value of key id. */
tr_err store_ssh_key_value(struct db *db, struct arena *a, const char *id,
                           const char **sealed, struct tr_errbuf *eb);
/* Makes workspace ws_id use key_id (NULL: none).  TR_ERR_NOT_FOUND when
 * the key is not one of the workspace's organization. */
tr_err store_ws_set_ssh_key(struct db *db, struct arena *a, const char *ws_id,
                            const char *key_id, struct tr_errbuf *eb);

/* ---- run triggers (store_run_triggers.c) ------------------------------- */

/* A workspace follows at most ST_RT_MAX_SOURCES others, as TFE. */
#define ST_RT_MAX_SOURCES 20

/* Workspace workspace_id follows source_id: an apply there queues a run
 * here.  Both are workspaces of one organization. */
struct st_run_trigger {
    const char *id; /* rt-... */
    const char *workspace_id;
    const char *workspace_name;
    const char *source_id;
    const char *source_name;
    const char *created_at;
};

/* Creates the trigger after checking, in its transaction: source_id is a
 * workspace of ws_id's organization (else TR_ERR_NOT_FOUND) other than
 * ws_id, not already a source of it, and ws_id has fewer than
 * ST_RT_MAX_SOURCES sources (else TR_ERR_INVALID with the reason). */
tr_err store_rt_create(struct db *db, struct arena *a, const char *ws_id,
                       const char *source_id, struct st_run_trigger *out,
                       struct tr_errbuf *eb);
tr_err store_rt_get(struct db *db, struct arena *a, const char *id,
                    struct st_run_trigger *out, struct tr_errbuf *eb);
tr_err store_rt_delete(struct db *db, struct arena *a, const char *id,
                       struct tr_errbuf *eb);
/* A page of ws_id's triggers, oldest first: inbound (its sources) or
 * outbound (the workspaces that follow it). */
/* Up to limit applied runs whose triggers have not all fired. */
tr_err store_rt_pending(struct db *db, struct arena *a, int limit,
                        const char ***run_ids, int *n, struct tr_errbuf *eb);
/* Marks run_id's triggers fired. */
tr_err store_rt_fired(struct db *db, struct arena *a, const char *run_id,
                      struct tr_errbuf *eb);
tr_err store_rt_list(struct db *db, struct arena *a, const char *ws_id,
                     bool inbound, int offset, int limit,
                     struct st_run_trigger **out, int *n, int64_t *total,
                     struct tr_errbuf *eb);

/* ---- remote state consumers (store_consumers.c) ------------------------ */

/* The workspaces whose runs may read ws_id's state (TFE's
 * remote-state-consumers; listed through store_ws_list() with
 * consumers_of).  Changes take ids of workspaces of ws_id's organization:
 * TR_ERR_NOT_FOUND naming the first that is not one, nothing changed. */
enum st_consumer_op { ST_CONSUMERS_ADD, ST_CONSUMERS_REMOVE, ST_CONSUMERS_SET };
tr_err store_consumers_change(struct db *db, struct arena *a, const char *ws_id,
                              enum st_consumer_op op, const char *const *ids,
                              int n, struct tr_errbuf *eb);
/* *ok: consumer_id is one of ws_id's consumers. */
tr_err store_consumer_allowed(struct db *db, struct arena *a, const char *ws_id,
                              const char *consumer_id, bool *ok,
                              struct tr_errbuf *eb);

/* ---- tags (store_tags.c) ----------------------------------------------- */

/* Tags belong to an organization (unique name) and are linked to its
 * workspaces.  A tag outlives its last link until deleted. */
struct st_tag {
    const char *id; /* tag-... */
    const char *org;
    const char *name;
    int64_t instance_count; /* workspaces carrying it */
    const char *created_at;
};

/* A tag named by id or by name (exactly one set). */
struct st_tag_ref {
    const char *id;
    const char *name;
};

tr_err store_tag_get(struct db *db, struct arena *a, const char *id,
                     struct st_tag *out, struct tr_errbuf *eb);
/* Tags of org by name; query: name contains; exclude_ws: leave out tags
 * that workspace carries. */
tr_err store_tag_list(struct db *db, struct arena *a, const char *org,
                      const char *query, const char *exclude_ws, int offset,
                      int limit, struct st_tag **out, int *n, int64_t *total,
                      struct tr_errbuf *eb);
/* Deletes all the tags or, if one id is not a tag of org, none
 * (TR_ERR_NOT_FOUND). */
tr_err store_tag_delete(struct db *db, struct arena *a, const char *org,
                        const char *const *ids, int n, struct tr_errbuf *eb);
/* Links tag_id to every workspace in ws_ids, all of org, or to none. */
tr_err store_tag_add_workspaces(struct db *db, struct arena *a, const char *org,
                                const char *tag_id, const char *const *ws_ids,
                                int n, struct tr_errbuf *eb);
tr_err store_ws_tag_list(struct db *db, struct arena *a, const char *ws_id,
                         const char *query, int offset, int limit,
                         struct st_tag **out, int *n, int64_t *total,
                         struct tr_errbuf *eb);
/* Adds the tags (by name: created as needed; by id: must be a tag of the
 * workspace's organization, else TR_ERR_NOT_FOUND and nothing changes). */
tr_err store_ws_tag_add(struct db *db, struct arena *a, const char *ws_id,
                        const struct st_tag_ref *refs, int n,
                        struct tr_errbuf *eb);
/* Removes the tags; ones the workspace does not carry are ignored. */
tr_err store_ws_tag_remove(struct db *db, struct arena *a, const char *ws_id,
                           const struct st_tag_ref *refs, int n,
                           struct tr_errbuf *eb);

/* ---- key/value tag bindings (store_tag_bindings.c) --------------------- */

/* A workspace or a project carries at most ST_TB_MAX bindings, one per
 * key; a workspace inherits its project's bindings, its own winning for
 * the same key (its effective bindings). */
#define ST_TB_MAX 10

struct st_tag_binding {
    const char *id; /* tb-... */
    const char *key;
    const char *value;          /* "" for a key-only tag */
    const char *inherited_from; /* effective lists: the project's id when
                                   inherited, else NULL */
};

enum st_tb_owner { ST_TB_WORKSPACE, ST_TB_PROJECT };

/* The owner's own bindings, by key. */
tr_err store_tb_list(struct db *db, struct arena *a, enum st_tb_owner kind,
                     const char *owner_id, struct st_tag_binding **out, int *n,
                     struct tr_errbuf *eb);
/* A workspace's effective bindings: its own, then its project's whose key
 * it does not bind itself (inherited_from set), by key. */
tr_err store_tb_effective(struct db *db, struct arena *a, const char *ws_id,
                          struct st_tag_binding **out, int *n,
                          struct tr_errbuf *eb);
/* Sets the owner's bindings from in (key, value; keys distinct): replace
 * makes them exactly in, else in's keys are added or take the new value.
 * More than ST_TB_MAX after the change is TR_ERR_INVALID; an owner that
 * does not exist TR_ERR_NOT_FOUND; either way nothing changes.  *out
 * (nullable) gets the owner's bindings afterwards. */
tr_err store_tb_set(struct db *db, struct arena *a, enum st_tb_owner kind,
                    const char *owner_id, const struct st_tag_binding *in,
                    int n, bool replace, struct st_tag_binding **out, int *nout,
                    struct tr_errbuf *eb);
/* store_tb_set() on c, inside the caller's transaction (no *out). */
tr_err store_tb_set_in(struct db_conn *c, struct arena *a,
                       enum st_tb_owner kind, const char *owner_id,
                       const struct st_tag_binding *in, int n, bool replace,
                       struct tr_errbuf *eb);

/* ---- state versions (store_state.c) ------------------------------------ */

/* A state version's life (status column):
 *
 *   (none) --store_sv_create(finalized)--------> finalized, current
 *   (none) --store_sv_create(pending)----------> pending
 *   pending --store_sv_finalize()--------------> finalized, current
 *   pending --store_sv_discard_pending()-------> discarded (force-unlock)
 *   pending --another version finalized--------> discarded
 *
 * Invariants: workspaces.current_sv is NULL or a finalized version of that
 * workspace.  A version turns finalized and current in the one transaction
 * that also writes its outputs, and only after the caller has made its
 * blob durable, so a crash leaves the old current version or the new one,
 * never a half.  Pending and discarded versions are never current.  seq is
 * unique per workspace and orders versions by finalization (pending ones
 * by creation).  Writers lock the workspace row first, so two writers of
 * one workspace are serialised on both databases. */
struct st_sv {
    const char *id; /* sv-... */
    const char *workspace_id;
    int64_t seq;
    int64_t serial;
    const char *lineage; /* "" when not known (pending) */
    const char *md5;
    const char *sha256; /* "" while pending */
    int64_t size;
    const char *status; /* pending | finalized | discarded */
    const char *blob_key;
    const char *json_blob_key; /* NULL without a JSON state */
    const char *run_id;        /* NULL */
    const char *created_by;    /* user id or NULL */
    const char *terraform_version;
    const char *resources; /* JSON array text (domain/state_check.h) */
    const char *created_at;
    bool force; /* finalize without the successor rule */
};

struct st_sv_output {
    const char *id; /* wsout-... */
    const char *sv_id;
    const char *name;
    bool sensitive;
    const char *type;          /* string|number|boolean|array|object */
    const char *detailed_type; /* JSON text of the cty type */
    const char *value;         /* JSON text */
};

/* Parts of the successor rule a write may skip; SV_FORCE skips both. */
enum { SV_SKIP_SERIAL = 1, SV_SKIP_LINEAGE = 2, SV_FORCE = 3 };

/* The successor rule for a new version after cur (NULL: the workspace has
 * no state yet): the lineage equals cur's (unless either is ""), the serial
 * is not below cur's, and an equal serial carries equal content (md5), so
 * a retried upload is accepted.  TR_ERR_CONFLICT saying why otherwise.
 * Pure; no database. */
tr_err store_sv_successor(const struct st_sv *cur, int64_t serial,
                          const char *lineage, const char *md5, int skip,
                          struct tr_errbuf *eb);

/* The successor rule against the workspace's current version right now:
 * an early answer before any blob is written (the writing transaction
 * checks again). */
tr_err store_sv_check(struct db *db, struct arena *a, const char *ws_id,
                      int64_t serial, const char *lineage, const char *md5,
                      int skip, struct tr_errbuf *eb);

/* Inserts sv in one transaction.  Read from sv: id, workspace_id, serial,
 * lineage, md5, sha256, size, status ("pending" or "finalized"), blob_key,
 * json_blob_key, run_id, created_by, terraform_version, resources, force.
 * For a finalized version the successor rule (minus skip) is checked, the
 * outputs are inserted, the version becomes current and the workspace's
 * other pending versions are discarded.  lock_kind/lock_holder (NULL: no
 * requirement): the workspace must be locked by exactly that holder, else
 * TR_ERR_CONFLICT.  TR_ERR_NOT_FOUND if the workspace is gone.  out
 * (nullable) gets the stored row. */
tr_err store_sv_create(struct db *db, struct arena *a, const struct st_sv *sv,
                       const struct st_sv_output *outs, int nouts, int skip,
                       const char *lock_kind, const char *lock_holder,
                       struct st_sv *out, struct tr_errbuf *eb);

/* Finalizes pending version id with what its upload showed: fin->size,
 * sha256, lineage (kept if the pending row has one), terraform_version and
 * resources; then as store_sv_create() for a finalized version (rule
 * skipped entirely if created with force).  TR_ERR_CONFLICT when the
 * version is no longer pending or the rule fails; nothing changes then. */
tr_err store_sv_finalize(struct db *db, struct arena *a, const char *id,
                         const struct st_sv *fin,
                         const struct st_sv_output *outs, int nouts,
                         struct st_sv *out, struct tr_errbuf *eb);

tr_err store_sv_get(struct db *db, struct arena *a, const char *id,
                    struct st_sv *out, struct tr_errbuf *eb);
/* The workspace's current version; TR_ERR_NOT_FOUND when it has none. */
tr_err store_sv_current(struct db *db, struct arena *a, const char *ws_id,
                        struct st_sv *out, struct tr_errbuf *eb);
/* Versions of a workspace, newest (highest seq) first, all statuses. */
tr_err store_sv_list(struct db *db, struct arena *a, const char *ws_id,
                     int offset, int limit, struct st_sv **out, int *n,
                     int64_t *total, struct tr_errbuf *eb);
/* Records the JSON state blob of a pending or finalized version that has
 * none yet; TR_ERR_CONFLICT otherwise. */
tr_err store_sv_set_json(struct db *db, struct arena *a, const char *id,
                         const char *json_blob_key, struct tr_errbuf *eb);

/* Outputs of a version in name order; limit < 0: all. */
tr_err store_sv_outputs(struct db *db, struct arena *a, const char *sv_id,
                        int offset, int limit, struct st_sv_output **out,
                        int *n, int64_t *total, struct tr_errbuf *eb);
/* The outputs of each of the n versions svs (a page of them) with one
 * statement: (*outs)[i] holds (*nouts)[i] outputs of svs[i], name order. */
tr_err store_sv_outputs_of(struct db *db, struct arena *a,
                           const struct st_sv *svs, int n,
                           struct st_sv_output ***outs, int **nouts,
                           struct tr_errbuf *eb);
tr_err store_sv_output_get(struct db *db, struct arena *a, const char *id,
                           struct st_sv_output *out, struct tr_errbuf *eb);

/* For unlock and force-unlock: whether the workspace has a pending version
 * (TFE refuses a plain unlock then), and discarding them all. */
tr_err store_sv_has_pending(struct db *db, struct arena *a, const char *ws_id,
                            bool *pending, struct tr_errbuf *eb);
tr_err store_sv_discard_pending(struct db *db, struct arena *a,
                                const char *ws_id, struct tr_errbuf *eb);

/* ---- configuration versions (store_cv.c) ------------------------------- */

/* A configuration version's life (status column):
 *
 *   (none)   --store_cv_create()-------------> pending
 *   pending  --store_cv_set_uploaded()-------> uploaded
 *   pending  --store_cv_set_errored()--------> errored
 *   uploaded --store_cv_archive()------------> archived
 *   uploaded --store_cv_replace_upload()-----> uploaded (no run used it)
 *   uploaded --store_cv_unset_upload()-------> pending (no run used it)
 *
 * Each transition is one conditional UPDATE on the status it starts from,
 * so of two racing uploads exactly one wins and the other gets
 * TR_ERR_CONFLICT with nothing changed.  blob_key is set exactly while the
 * status is uploaded: the caller makes the tarball durable before
 * store_cv_set_uploaded() and removes it after store_cv_archive().
 *
 * A workspace's current configuration version is its newest one that is
 * neither provisional nor speculative and is pending or uploaded; it may
 * not be archived. */
struct st_cv {
    const char *id; /* cv-... */
    const char *workspace_id;
    const char *status;        /* pending|uploaded|errored|archived */
    const char *error_message; /* NULL unless errored */
    const char *source;        /* "tfe-api" */
    bool speculative;
    bool provisional;
    bool auto_queue_runs;
    const char *blob_key;          /* NULL unless uploaded */
    int64_t size;                  /* bytes of the tarball; 0 before */
    const char *status_timestamps; /* JSON object text: "uploaded-at",
                                      "errored-at", "archived-at" */
    const char *created_by;        /* user id or NULL */
    const char *created_at;
};

/* Inserts a pending version.  Read from in: id, workspace_id, speculative,
 * provisional, auto_queue_runs, source (NULL: "tfe-api"), created_by.
 * TR_ERR_NOT_FOUND if the workspace is gone.  out (nullable) gets the
 * stored row. */
tr_err store_cv_create(struct db *db, struct arena *a, const struct st_cv *in,
                       struct st_cv *out, struct tr_errbuf *eb);
tr_err store_cv_get(struct db *db, struct arena *a, const char *id,
                    struct st_cv *out, struct tr_errbuf *eb);
/* Versions of a workspace, newest first, all statuses. */
tr_err store_cv_list(struct db *db, struct arena *a, const char *ws_id,
                     int offset, int limit, struct st_cv **out, int *n,
                     int64_t *total, struct tr_errbuf *eb);
/* The workspace's current version (see above); TR_ERR_NOT_FOUND if none. */
tr_err store_cv_current(struct db *db, struct arena *a, const char *ws_id,
                        struct st_cv *out, struct tr_errbuf *eb);
/* pending -> uploaded with the durable blob_key and its size, stamping
 * uploaded-at.  TR_ERR_CONFLICT if no longer pending.  out nullable. */
tr_err store_cv_set_uploaded(struct db *db, struct arena *a, const char *id,
                             const char *blob_key, int64_t size,
                             struct st_cv *out, struct tr_errbuf *eb);
/* Another upload to an uploaded version no run has used yet (go-tfe and
 * TFE allow uploading to the same URL again): blob_key and size replaced,
 * *old_key gets the key the caller should now remove.  TR_ERR_CONFLICT
 * when the version is not uploaded, a run uses it, or another upload won
 * the race; nothing changes then. */
tr_err store_cv_replace_upload(struct db *db, struct arena *a, const char *id,
                               const char *blob_key, int64_t size,
                               const char **old_key, struct tr_errbuf *eb);
/* Undoes store_cv_set_uploaded() when the run the upload asked for could
 * not be queued: uploaded -> pending, blob_key cleared and uploaded-at
 * dropped, only while blob_key is still key and no run uses the version.
 * TR_ERR_CONFLICT otherwise; the caller removes key's blob on TR_OK. */
tr_err store_cv_unset_upload(struct db *db, struct arena *a, const char *id,
                             const char *key, struct tr_errbuf *eb);
/* pending -> errored with message, stamping errored-at.  TR_ERR_CONFLICT
 * if no longer pending.  out nullable. */
tr_err store_cv_set_errored(struct db *db, struct arena *a, const char *id,
                            const char *message, struct st_cv *out,
                            struct tr_errbuf *eb);
/* uploaded -> archived, clearing blob_key and stamping archived-at; *key
 * gets the blob key the caller should now remove.  TR_ERR_CONFLICT (with
 * TFE's wording) when the version is not uploaded or is the workspace's
 * current one; TR_ERR_NOT_FOUND when it does not exist. */
tr_err store_cv_archive(struct db *db, struct arena *a, const char *id,
                        const char **key, struct tr_errbuf *eb);

/* ---- variables and variable sets (store_vars.c) ------------------------- */

/* A variable belongs to exactly one workspace or one variable set; its key
 * is unique per owner and category (a duplicate is TR_ERR_INVALID "Key has
 * already been taken").  Sensitive values are stored sealed by envelope
 * encryption (crypto/envelope.h) under the keyring passed in and never
 * come back from the reads below (value NULL); only store_vars_for_run()
 * opens them.  A sensitive variable cannot become non-sensitive
 * (TR_ERR_INVALID).  Every write gives the variable a new version_id. */
struct keyring;

struct st_var {
    const char *id;           /* var-... */
    const char *workspace_id; /* the owner: a workspace, or */
    const char *varset_id;    /* a variable set (exactly one is set) */
    const char *key;
    const char *value;    /* plaintext; NULL when sensitive */
    const char *category; /* "terraform" | "env" */
    bool hcl;
    bool sensitive;
    const char *description;
    const char *version_id;
    const char *created_at;
};

/* Creates in (owner, key, value (NULL: ""), category, hcl, sensitive,
 * description).  TR_ERR_NOT_FOUND when the owner does not exist. */
tr_err store_var_create(struct db *db, const struct keyring *keys,
                        struct arena *a, const struct st_var *in,
                        struct st_var *out, struct tr_errbuf *eb);
tr_err store_var_get(struct db *db, struct arena *a, const char *id,
                     struct st_var *out, struct tr_errbuf *eb);
/* Variables of one owner (the other argument NULL), oldest first. */
tr_err store_var_list(struct db *db, struct arena *a, const char *ws_id,
                      const char *varset_id, struct st_var **out, int *n,
                      struct tr_errbuf *eb);

/* Changes for store_var_update(): NULL / -1 keep the current value. */
struct st_var_update {
    const char *key;
    const char *value;
    const char *category;
    const char *description;
    int hcl;
    int sensitive;
};

/* Applies u in one transaction (a variable turning sensitive has its
 * current value sealed); out (nullable) gets the result. */
tr_err store_var_update(struct db *db, const struct keyring *keys,
                        struct arena *a, const char *id,
                        const struct st_var_update *u, struct st_var *out,
                        struct tr_errbuf *eb);
tr_err store_var_delete(struct db *db, struct arena *a, const char *id,
                        struct tr_errbuf *eb);

/* A variable set of an organization (unique name).  It applies to every
 * workspace of the organization (global), or to the workspaces and the
 * projects' workspaces it is linked to.  A global set has no links. */
struct st_varset {
    const char *id; /* varset-... */
    const char *org;
    const char *name;
    const char *description;
    bool global;
    bool priority;
    const char *created_at;
    const char *updated_at;
    int64_t var_count;
    int64_t workspace_count;
    int64_t project_count;
};

/* What store_varset_create() and store_varset_update() set: NULL / -1
 * keep (create: "" and false).  set_workspaces / set_projects replace the
 * links by the ids given (workspaces and projects of the set's
 * organization, else TR_ERR_NOT_FOUND); vars are added.  Links on a set
 * that is (or becomes) global are TR_ERR_INVALID when given; a set turning
 * global loses the links it had.  All or nothing, in one transaction. */
struct st_varset_in {
    const char *name;
    const char *description;
    int global;
    int priority;
    bool set_workspaces;
    const char *const *workspace_ids;
    int nworkspaces;
    bool set_projects;
    const char *const *project_ids;
    int nprojects;
    const struct st_var *vars;
    int nvars;
};

/* A duplicate name is TR_ERR_INVALID; a missing organization
 * TR_ERR_NOT_FOUND. */
tr_err store_varset_create(struct db *db, const struct keyring *keys,
                           struct arena *a, const char *org,
                           const struct st_varset_in *in, struct st_varset *out,
                           struct tr_errbuf *eb);
tr_err store_varset_get(struct db *db, struct arena *a, const char *id,
                        struct st_varset *out, struct tr_errbuf *eb);
tr_err store_varset_update(struct db *db, const struct keyring *keys,
                           struct arena *a, const char *id,
                           const struct st_varset_in *in, struct st_varset *out,
                           struct tr_errbuf *eb);
/* Deletes the set with its variables and links. */
tr_err store_varset_delete(struct db *db, struct arena *a, const char *id,
                           struct tr_errbuf *eb);

/* Which sets store_varset_list() returns. */
enum st_varset_scope {
    VARSET_ORG,       /* key: organization name; all its sets */
    VARSET_WORKSPACE, /* key: workspace id; global, linked to it or to
                         its project */
    VARSET_PROJECT,   /* key: project id; global or linked to it */
};

/* Sets in name order; query (NULL or ""): name contains, ignoring case. */
tr_err store_varset_list(struct db *db, struct arena *a,
                         enum st_varset_scope scope, const char *key,
                         const char *query, int offset, int limit,
                         struct st_varset **out, int *n, int64_t *total,
                         struct tr_errbuf *eb);

/* Ids of the workspaces and projects the set is linked to, sorted. */
tr_err store_varset_links(struct db *db, struct arena *a, const char *id,
                          const char ***ws_ids, int *nws, const char ***prj_ids,
                          int *nprj, struct tr_errbuf *eb);

/* Links (add) or unlinks the set and the workspaces (projects: false) or
 * projects (true) named by ids, all of the set's organization, else
 * TR_ERR_NOT_FOUND and nothing changes.  Existing links and missing ones
 * are ignored.  Linking a global set: TR_ERR_INVALID. */
tr_err store_varset_link(struct db *db, struct arena *a, const char *id,
                         bool projects, bool add, const char *const *ids, int n,
                         struct tr_errbuf *eb);

/* The variables a run of workspace ws_id gets, one per (category, key),
 * ordered by category then key, values decrypted (sensitive ones opened
 * with keys: TR_ERR_CRYPTO if one cannot be).  Precedence, highest first
 * (TFE's rules for organization-owned sets):
 *   1. priority global sets      2. priority project-linked sets
 *   3. priority workspace-linked sets
 *   4. the workspace's own variables
 *   5. workspace-linked sets     6. project-linked sets   7. global sets
 * Within one level the set whose name sorts first (by code point) wins.
 * A set linked to both the workspace and its project counts as
 * workspace-linked. */
tr_err store_vars_for_run(struct db *db, const struct keyring *keys,
                          struct arena *a, const char *ws_id,
                          struct st_var **out, int *n, struct tr_errbuf *eb);

/* ---- runs (store_runs.c, store_run_jobs.c) ------------------------------ */

/* Runs with their plan and apply, the jobs workers claim, live log chunks,
 * comments and run events.  The run state machine is drawn in
 * domain/run.h; here each transition is one transaction conditional on
 * the status the run is in (store_run_step), so of two racing transitions
 * one wins and the other gets TR_ERR_CONFLICT with nothing changed.
 *
 * Invariants:
 *   - a run has exactly one plan and one apply, made with it;
 *   - a job is queued exactly while its run is plan_queued/apply_queued and
 *     running exactly while planning/applying; every other status has no
 *     live job;
 *   - workspaces.current_run_id is the one non-speculative run that owns
 *     the workspace; while set, the workspace is locked by ("run", id)
 *     unless a user force-unlocked it;
 *   - a run token (tokens kind "run", subject run id) exists only while a
 *     job of the run is running.
 * Lock order inside a transaction, on both databases: workspace row, then
 * the run's job rows, then the run row.  A claim locks a job row and then
 * its run (never the workspace), so no cycle forms. */

struct st_run {
    const char *id; /* run-... */
    const char *workspace_id;
    const char *org; /* the workspace's organization */
    const char *cv_id;
    const char *status;
    const char *message;
    bool is_destroy;
    bool refresh;
    bool refresh_only;
    bool plan_only; /* speculative: never applied or locking */
    bool save_plan;
    bool auto_apply;
    bool allow_empty_apply;
    bool has_changes;
    const char *terraform_version; /* "" unless given (plan-only runs) */
    const char *target_addrs;      /* JSON array text of strings */
    const char *replace_addrs;     /* JSON array text of strings */
    const char *variables;         /* JSON array text of {key, value} */
    const char *status_timestamps; /* JSON object text, TFE's keys */
    const char *error_message;     /* NULL unless errored */
    const char *created_by;        /* user id or NULL */
    const char *source;            /* "tfe-api" */
    const char *force_cancel_at;   /* ISO time force-cancel opens, or NULL */
    const char *cost_estimate_id;  /* ce-... when the organization estimates */
    const char *trigger_run_id;    /* the source workspace's run whose apply
                                      queued it (run triggers), or NULL */
    int64_t queue_seq;             /* FIFO order within the workspace */
    const char *created_at;
    /* Filled by reads: */
    const char *plan_id;
    const char *apply_id;
    bool is_current; /* the workspace's current run */
    int64_t ahead;   /* pending runs of the workspace before it; 0
                        unless it is pending itself (counted for those
                        only: a page of finished runs counts nothing) */
};

/* A plan or an apply. */
struct st_phase {
    const char *id; /* plan-... or apply-... */
    const char *run_id;
    bool is_plan;
    const char *status; /* pending|queued|running|finished|
                           errored|canceled|unreachable */
    int64_t additions, changes, destructions, imports;
    bool has_changes;          /* plans */
    const char *log_blob_key;  /* compacted log, once the phase ended */
    const char *plan_blob_key; /* plans: the binary plan file */
    const char *json_blob_key; /* plans: `show -json` output */
    const char *redacted_json_blob_key;
    const char *status_timestamps; /* JSON object text */
    const char *execution_node;    /* the node that ran it (its name),
                                      NULL before or for old runs */
};

struct st_job {
    const char *id; /* job-... */
    const char *run_id;
    const char *phase;    /* "plan" | "apply" */
    const char *phase_id; /* the plan's or the apply's id */
    const char *status;   /* queued | running | done */
    const char *node;     /* claimer, NULL while queued */
    int64_t lease_until;  /* unix ms */
    int cancel;           /* 0, 1 cancel, 2 force-cancel */
    const char *created_at;
};

/* Creates the run from in (id, workspace_id, cv_id, status, message,
 * flags, terraform_version, addrs, variables, created_by,
 * cost_estimate_id) with its plan and apply (pending), stamping `stamps`
 * (NULL-terminated keys of status-timestamps) now.  start: the run begins
 * planning at once (status plan_queued, plan queued, a plan job queued)
 * without the workspace.  queue_seq is the workspace's next, taken under
 * its row lock.  TR_ERR_NOT_FOUND if the workspace is gone. */
tr_err store_run_create(struct db *db, struct arena *a, const struct st_run *in,
                        const char *const *stamps, bool start,
                        struct st_run *out, struct tr_errbuf *eb);
tr_err store_run_get(struct db *db, struct arena *a, const char *id,
                     struct st_run *out, struct tr_errbuf *eb);

/* Filters for store_run_list(); NULL / 0 mean none. */
struct st_run_filter {
    const char *workspace_id; /* one of workspace_id and org */
    const char *org;
    const char *const *statuses; /* status is one of these */
    int nstatuses;
    const char *const *operations; /* TFE operations, any of: plan_only,
                                      plan_and_apply, save_plan, destroy,
                                      refresh_only, empty_apply */
    int noperations;
    const char *const *sources; /* source is one of these */
    int nsources;
    bool oldest_first;   /* queue order instead of newest first */
    const char *user_id; /* created by this user */
    const char *search;  /* run id or message contains */
};

/* The run whose cost estimate is ce_id. */
tr_err store_run_by_cost_estimate(struct db *db, struct arena *a,
                                  const char *ce_id, struct st_run *out,
                                  struct tr_errbuf *eb);

tr_err store_run_list(struct db *db, struct arena *a,
                      const struct st_run_filter *f, int offset, int limit,
                      struct st_run **out, int *n, int64_t *total,
                      struct tr_errbuf *eb);

/* The plan or apply with this id (the prefix says which). */
tr_err store_phase_get(struct db *db, struct arena *a, const char *id,
                       struct st_phase *out, struct tr_errbuf *eb);

/* Records the JSON plans (blob keys) of run_id's plan, which must have
 * none yet: TR_ERR_CONFLICT otherwise, and nothing changes. */
tr_err store_plan_json_set(struct db *db, struct arena *a, const char *run_id,
                           const char *json_key, const char *redacted_key,
                           struct tr_errbuf *eb);

/* What a plan reports when it ends (store_run_step). */
struct st_plan_result {
    bool has_changes;
    int64_t additions, changes, destructions, imports;
    const char *plan_blob_key; /* NULL: none */
    const char *json_blob_key;
    const char *redacted_json_blob_key;
};

enum { ST_PLAN = 1, ST_APPLY = 2 };

/* One transition of a run, applied by store_run_step() in one
 * transaction.  Unset fields change nothing. */
struct st_run_step {
    const char *run_id;
    const char *const *from; /* NULL-terminated statuses it starts from */
    const char *job_id;      /* this job of the run must be running */
    int64_t expired_before;  /* > 0: and its lease must end before this
                                (unix ms) */
    const char *to;          /* the run's new status (required) */
    const char *stamps[6];   /* run status-timestamps keys stamped now */
    const char *plan_status; /* with plan_stamp */
    const char *plan_stamp;
    const char *apply_status; /* with apply_stamp */
    const char *apply_stamp;
    const struct st_plan_result *plan_result; /* recorded on the plan (and
                                      has-changes on the run) */
    bool apply_counts;         /* the apply takes the plan's counts */
    const char *plan_json_key; /* the JSON plans an apply made for a plan
                                  stored without them (with
                                  plan_redacted_key) */
    const char *plan_redacted_key;
    const char *plan_log_key; /* compacted log: recorded, and the
                                 phase's chunks deleted */
    const char *apply_log_key;
    int enqueue;                 /* ST_PLAN / ST_APPLY: a new queued job */
    bool end_jobs;               /* queued and running jobs end; the run
                                    token is deleted */
    int cancel;                  /* 1 / 2: asked of the running job */
    const char *force_cancel_at; /* recorded on the run */
    bool release;                /* the run gives the workspace back: lock
                                    (if its own) and current_run_id */
    bool requeue;                /* queue_seq becomes the workspace's next */
    const char *error;           /* error_message */
    bool triggers;               /* the apply is recorded: its run triggers
                                    are pending (store_rt_pending()) */
    const char *event;           /* run-event action, NULL: none */
    const char *event_desc;
    const char *actor; /* user id or NULL */
};

/* Applies s.  TR_ERR_NOT_FOUND if the run is gone; TR_ERR_CONFLICT ("run
 * is <status>", or "job is no longer running") when its start condition
 * does not hold.  out (nullable) gets the run afterwards. */
tr_err store_run_step(struct db *db, struct arena *a,
                      const struct st_run_step *s, struct st_run *out,
                      struct tr_errbuf *eb);

/* The scheduler's step for one workspace, in one transaction: when the
 * workspace has no current run, its first waiting run (queue_seq order: a
 * pending non-speculative run, or a confirmed saved-plan run) takes it -
 * unless someone else holds the lock - becoming the current run, locking
 * it as ("run", id) and moving to plan_queued / apply_queued with its job
 * queued.  *started (nullable) gets that run's id, or NULL when nothing
 * moved. */
tr_err store_run_schedule(struct db *db, struct arena *a, const char *ws_id,
                          const char **started, struct tr_errbuf *eb);

/* Workspaces holding a waiting run but no current run (the periodic
 * scheduler sweep). */
tr_err store_run_waiting_workspaces(struct db *db, struct arena *a,
                                    const char ***ids, int *n,
                                    struct tr_errbuf *eb);

/* A workspace's current run as TFE shows it, for a workspace aliased w:
 * the run that holds the workspace now, else the newest non-speculative
 * run that got past pending (an applied or discarded run stays current
 * until the next one starts). */
#define STORE_WS_CURRENT_RUN_SQL                                               \
    "COALESCE(w.current_run_id, (SELECT r.id FROM runs r"                      \
    " WHERE r.workspace_id = w.id AND r.status <> 'pending'"                   \
    " AND r.plan_only = 0 AND NOT EXISTS (SELECT 1 FROM"                       \
    " configuration_versions cv WHERE cv.id = r.cv_id"                         \
    " AND cv.speculative = 1) ORDER BY r.queue_seq DESC LIMIT 1))"

/* The workspace's current run and newest run (either NULL). */
tr_err store_run_ws_runs(struct db *db, struct arena *a, const char *ws_id,
                         const char **current, const char **latest,
                         struct tr_errbuf *eb);
/* The run a workspace document shows as current-run
 * (STORE_WS_CURRENT_RUN_SQL); NULL when it never had one. */
tr_err store_run_ws_shown(struct db *db, struct arena *a, const char *ws_id,
                          const char **run_id, struct tr_errbuf *eb);

/* ---- jobs, logs, comments, events (store_run_jobs.c) ------------------- */

/* Claims the oldest queued job (created_at order; SKIP LOCKED on
 * PostgreSQL so claimers pass each other) for node with a lease until
 * lease_until, and moves its run plan_queued -> planning or apply_queued
 * -> applying, in one transaction.  An apply job whose plan ran on a
 * registered node (nodes.id) other than node, and not gone, is passed
 * over for its first STORE_APPLY_AFFINITY_S seconds: that node still
 * has the working directory.  Only an agent of a workspace's agent pool
 * claims the jobs of a workspace in the agent execution mode, and an
 * agent claims no other job.  With token not NULL, the run's token is
 * minted in the same transaction (store_run_token_mint(), expiring at
 * token_expires) into *token.  TR_ERR_NOT_FOUND when none is queued. */
#define STORE_APPLY_AFFINITY_S 10
tr_err store_job_claim(struct db *db, struct arena *a, const char *node,
                       int64_t lease_until, struct st_job *job,
                       struct st_run *run, const char *token_expires,
                       char **token, struct tr_errbuf *eb);
tr_err store_job_get(struct db *db, struct arena *a, const char *id,
                     struct st_job *out, struct tr_errbuf *eb);
/* Puts a claim that was never confirmed back in the queue: when job id
 * is still running for node with the lease its claim gave (lease_until:
 * no heartbeat came, and none can come after, since a heartbeat always
 * changes the lease) and no cancel asked of it, it is queued again in
 * its old place, its run back to plan_queued / apply_queued and the run
 * token deleted, in one transaction.  TR_ERR_CONFLICT, changing
 * nothing, otherwise. */
tr_err store_job_requeue(struct db *db, struct arena *a, const char *id,
                         const char *node, int64_t lease_until,
                         struct tr_errbuf *eb);
/* Extends a running job's lease (to lease_until, or by 1 ms when it is
 * already later: it always changes); *cancel gets its cancel request.
 * TR_ERR_CONFLICT when the job is no longer running. */
tr_err store_job_heartbeat(struct db *db, struct arena *a, const char *id,
                           int64_t lease_until, int *cancel,
                           struct tr_errbuf *eb);
/* One tick of the lease clock at now_ms, in one transaction: the time
 * since the last tick (kept in site_settings, so it survives a leader
 * change or restart) less tick_ms is the time no leader reached the
 * database; when it exceeds tick_ms, every running job's lease is
 * extended by it, since the clock must stand still while no worker could
 * heartbeat (reaper.c).  *gap_ms gets that time (0: none) and *n
 * (nullable) the number of jobs extended. */
tr_err store_job_lease_tick(struct db *db, struct arena *a, int64_t now_ms,
                            int64_t tick_ms, int64_t *gap_ms, int64_t *n,
                            struct tr_errbuf *eb);
/* Running jobs whose lease ended before now_ms. */
tr_err store_job_expired(struct db *db, struct arena *a, int64_t now_ms,
                         struct st_job **out, int *n, struct tr_errbuf *eb);
/* Number of queued jobs (tests, metrics). */
tr_err store_job_queued_count(struct db *db, struct arena *a, int64_t *n,
                              struct tr_errbuf *eb);

/* Log chunks: a running job's phase log, appended in order (byte offsets
 * count the phase's content from 0) and readable from any node until the
 * phase ends and its log is compacted into one blob (store_run_step).
 * Each chunk is stored sealed under keys (envelope.h); chunks stored in
 * clear by older versions still read.  TR_ERR_CONFLICT when the job is
 * not running; TR_ERR_TOO_LARGE past STORE_LOG_MAX bytes; TR_ERR_CRYPTO
 * when a chunk does not open (reads).
 *
 * offset (>= 0) is where data starts in the job's own stream of appends
 * (the bytes it handed over before, acknowledged or not): bytes of data
 * the job already stored are not stored again, so an append sent again
 * after a lost acknowledgement, alone or with what followed it, is kept
 * once.  offset -1 appends all of data and leaves that count alone (the
 * node's own lines, senders from before offsets). */
#define STORE_LOG_MAX (64 * 1024 * 1024)
tr_err store_log_append(struct db *db, const struct keyring *keys,
                        struct arena *a, const char *job_id, const void *data,
                        size_t len, int64_t offset, struct tr_errbuf *eb);

/* What a reader sees of a phase's log, read in one statement (one
 * snapshot): whether the phase has ended, the compacted blob if there is
 * one, else the content bytes [off, off + *len) from the chunks. */
struct st_log_view {
    bool ended;           /* the phase's status is final */
    const char *blob_key; /* compacted: read the bytes from here */
    const char *status;
    int64_t total; /* content bytes logged so far (chunks) */
    char *data;    /* chunk content from off (no blob) */
    size_t len;
};
tr_err store_log_read(struct db *db, const struct keyring *keys,
                      struct arena *a, const char *phase_id, int64_t off,
                      int64_t limit, struct st_log_view *out,
                      struct tr_errbuf *eb);
/* The whole content of a phase's chunks (for compaction). */
tr_err store_log_all(struct db *db, const struct keyring *keys, struct arena *a,
                     const char *phase_id, char **data, size_t *len,
                     struct tr_errbuf *eb);

struct st_comment {
    const char *id; /* wsc-... */
    const char *run_id;
    const char *body;
    const char *created_by; /* user id or NULL */
    const char *created_at;
};

/* Adds a comment and its "commented" run event in one transaction. */
tr_err store_comment_create(struct db *db, struct arena *a, const char *run_id,
                            const char *body, const char *user_id,
                            struct st_comment *out, struct tr_errbuf *eb);
tr_err store_comment_get(struct db *db, struct arena *a, const char *id,
                         struct st_comment *out, struct tr_errbuf *eb);
/* Comments of a run, oldest first. */
tr_err store_comment_list(struct db *db, struct arena *a, const char *run_id,
                          struct st_comment **out, int *n,
                          struct tr_errbuf *eb);

struct st_run_event {
    const char *id; /* re-... */
    const char *run_id;
    const char *action; /* created, planned, commented, ... */
    const char *description;
    const char *actor_id;   /* user id or NULL */
    const char *comment_id; /* commented events */
    const char *created_at;
};

/* Events of a run in the order they happened. */
tr_err store_run_events(struct db *db, struct arena *a, const char *run_id,
                        struct st_run_event **out, int *n,
                        struct tr_errbuf *eb);
tr_err store_run_event_get(struct db *db, struct arena *a, const char *id,
                           struct st_run_event *out, struct tr_errbuf *eb);

/* ---- tool versions (store_tools.c) ------------------------------------- */

/* A registered tofu or terraform binary.  version is a semantic version,
 * unique across the site; path is the binary on every node that runs jobs
 * and sha256 (lower-case hex) its checksum, checked by the API when it is
 * registered and by the executor before every run. */
struct st_tool {
    const char *id; /* tool-... */
    const char *version;
    const char *path; /* absolute */
    const char *sha256;
    bool enabled;
    bool official;
    bool beta;
    bool deprecated;
    const char *deprecated_reason; /* NULL */
    int64_t usage;                 /* workspaces pinned to the version */
    const char *created_at;
};

/* MAJOR.MINOR.PATCH[-pre][+build], numbers without leading zeros. */
bool store_tool_valid_version(const char *v);
/* Semantic-version precedence of two valid versions: <0, 0, >0. */
int store_tool_vercmp(const char *a, const char *b);

/* Inserts in (id NULL: a new tool-... id).  A registered version is
 * TR_ERR_CONFLICT.  out (nullable) gets the stored row. */
tr_err store_tool_create(struct db *db, struct arena *a,
                         const struct st_tool *in, struct st_tool *out,
                         struct tr_errbuf *eb);
tr_err store_tool_get(struct db *db, struct arena *a, const char *id,
                      struct st_tool *out, struct tr_errbuf *eb);
/* By version, for runs: usage is left 0 (not counted). */
tr_err store_tool_by_version(struct db *db, struct arena *a,
                             const char *version, struct st_tool *out,
                             struct tr_errbuf *eb);
/* Versions equal to version and containing search (each NULL or "" for
 * any), newest version first. */
tr_err store_tool_list(struct db *db, struct arena *a, const char *version,
                       const char *search, int offset, int limit,
                       struct st_tool **out, int *n, int64_t *total,
                       struct tr_errbuf *eb);
/* Overwrites every field of row id but id, usage and created_at with in's.
 * TR_ERR_CONFLICT if in->version belongs to another row. */
tr_err store_tool_update(struct db *db, struct arena *a, const char *id,
                         const struct st_tool *in, struct tr_errbuf *eb);
tr_err store_tool_delete(struct db *db, struct arena *a, const char *id,
                         struct tr_errbuf *eb);
/* The binary for want: "latest" (or NULL/""), the highest enabled non-beta
 * version; otherwise exactly that version if it is enabled.
 * TR_ERR_NOT_FOUND when none qualifies.  Strings live in a. */
tr_err store_tool_resolve(struct db *db, struct arena *a, const char *want,
                          const char **path, const char **sha256,
                          const char **version, struct tr_errbuf *eb);

/* ---- cluster nodes (store_nodes.c) ------------------------------------ */

/* One node of a cluster.  state: "active", "draining" or "gone" (no
 * heartbeat for longer than the prune cutoff, or deregistered: a node
 * that leaves, or whose credential is revoked, is also revoked).  Times
 * are ISO-8601 UTC as util_now_iso() writes them. */
struct st_node {
    const char *id; /* node-..., or agent-... for an agent */
    const char *name;
    const char *role; /* "primary" | "secondary" | "agent" */
    const char *address;
    const char *version;
    int64_t capacity;     /* jobs it runs at once */
    int64_t running_jobs; /* as of its last heartbeat */
    const char *state;
    bool leader;
    bool revoked; /* its credential no longer authenticates */
    bool left;    /* revoked because the node left the cluster */
    const char *created_at;
    const char *last_heartbeat_at;
    const char *pool_id;        /* agent: its agent pool (apool-...) */
    const char *agent_token_id; /* agent: the token it registered with */
};

/* Registers a node from in's name, role, address, version and capacity
 * (the rest is set here); an agent also from in's pool_id and
 * agent_token_id, and gets an agent-... id.  With credential non-NULL a
 * node credential is made: *credential is its only plain copy, stored
 * hashed. */
tr_err store_node_register(struct db *db, struct arena *a,
                           const struct st_node *in, struct st_node *out,
                           char **credential, struct tr_errbuf *eb);
/* The node a credential belongs to; TR_ERR_NOT_FOUND when unknown or
 * revoked (as a node that left is), or an agent whose agent token was
 * deleted (the message says which).  A node marked gone for silence
 * (not revoked) is found: out->state says "gone". */
tr_err store_node_by_credential(struct db *db, struct arena *a,
                                const char *credential, struct st_node *out,
                                struct tr_errbuf *eb);
tr_err store_node_get(struct db *db, struct arena *a, const char *id,
                      struct st_node *out, struct tr_errbuf *eb);
/* Every node not gone, or with all also the gone ones; by role, name. */
tr_err store_node_list(struct db *db, struct arena *a, bool all,
                       struct st_node **out, int *n, struct tr_errbuf *eb);
/* Records a heartbeat: last_heartbeat_at now, running_jobs.  A node
 * marked gone for silence is active again; a revoked one stays gone
 * (TR_ERR_NOT_FOUND): it must register again. */
tr_err store_node_heartbeat(struct db *db, struct arena *a, const char *id,
                            int64_t running_jobs, struct tr_errbuf *eb);
/* state: "active", "draining" or "gone". */
tr_err store_node_set_state(struct db *db, struct arena *a, const char *id,
                            const char *state, struct tr_errbuf *eb);
/* Revokes the node's credential and marks it gone. */
tr_err store_node_revoke(struct db *db, struct arena *a, const char *id,
                         struct tr_errbuf *eb);
/* The node left the cluster: gone, and its credential ends (revoked,
 * with left set). */
tr_err store_node_leave(struct db *db, struct arena *a, const char *id,
                        struct tr_errbuf *eb);
/* Makes id the only node flagged leader (NULL: none is). */
tr_err store_node_set_leader(struct db *db, struct arena *a, const char *id,
                             struct tr_errbuf *eb);
/* Clears id's leader flag, if set (a primary that stopped leading; the
 * flag of whoever leads now stays). */
tr_err store_node_drop_leader(struct db *db, struct arena *a, const char *id,
                              struct tr_errbuf *eb);
/* Marks gone every node whose last heartbeat is older than stale_before
 * and deletes gone nodes older than forget_before (either may be NULL);
 * *gone (nullable) gets how many were marked. */
tr_err store_node_prune(struct db *db, struct arena *a,
                        const char *stale_before, const char *forget_before,
                        int64_t *gone, struct tr_errbuf *eb);

/* ---- agent pools, agent tokens, agents (store_agents.c) -------------- */

#define STORE_APOOL_MAX_ITEMS 100 /* allowed workspaces or projects */

/* An agent pool of an organization.  An organization-scoped pool serves
 * every workspace of it; otherwise only the allowed workspaces and the
 * workspaces of the allowed projects. */
struct st_agent_pool {
    const char *id; /* apool-... */
    const char *org;
    const char *name;
    bool org_scoped;
    const char *created_at;
    int64_t agent_count;     /* agents not exited */
    const char **allowed_ws; /* workspace ids, sorted */
    int nallowed_ws;
    const char **allowed_prj; /* project ids, sorted */
    int nallowed_prj;
    const char **ws; /* ids of the workspaces whose runs it takes */
    int nws;
};

/* Creates a pool from in's org, name, org_scoped and allowed lists, in
 * one transaction.  A duplicate name or an allowed workspace or project
 * not in the organization: TR_ERR_INVALID, nothing created. */
tr_err store_apool_create(struct db *db, struct arena *a,
                          const struct st_agent_pool *in,
                          struct st_agent_pool *out, struct tr_errbuf *eb);
tr_err store_apool_get(struct db *db, struct arena *a, const char *id,
                       struct st_agent_pool *out, struct tr_errbuf *eb);
/* A page of org's pools by name; query (nullable) matches part of the
 * name, ws_name (nullable) keeps pools that workspace may use. */
tr_err store_apool_list(struct db *db, struct arena *a, const char *org,
                        const char *query, const char *ws_name, int offset,
                        int limit, struct st_agent_pool **out, int *n,
                        int64_t *total, struct tr_errbuf *eb);

/* Changes for store_apool_update(): NULL / -1 / false keep. */
struct st_apool_update {
    const char *name;
    int org_scoped;
    bool set_ws;
    const char *const *ws;
    int nws;
    bool set_prj;
    const char *const *prj;
    int nprj;
};
tr_err store_apool_update(struct db *db, struct arena *a, const char *id,
                          const struct st_apool_update *u,
                          struct tr_errbuf *eb);
/* Deletes the pool, its tokens and allowed lists; its agents stop
 * authenticating.  TR_ERR_CONFLICT, deleting nothing, while a workspace
 * uses it. */
tr_err store_apool_delete(struct db *db, struct arena *a, const char *id,
                          struct tr_errbuf *eb);
/* Whether pool may serve a workspace of org in project prj, with id
 * ws_id (NULL: not created yet): TR_ERR_NOT_FOUND for no such pool in
 * org, TR_ERR_INVALID when it is not allowed. */
tr_err store_apool_check(struct db *db, struct arena *a, const char *pool,
                         const char *org, const char *ws_id, const char *prj,
                         struct tr_errbuf *eb);

struct st_agent_token {
    const char *id; /* agtok-... (API tokens are at-...) */
    const char *pool_id;
    const char *description;
    const char *created_by;
    const char *created_at;
    const char *last_used_at; /* NULL: never */
};

/* Makes a token of pool: *secret is its only plain copy, stored hashed. */
tr_err store_atoken_create(struct db *db, struct arena *a, const char *pool,
                           const char *description, const char *created_by,
                           struct st_agent_token *out, char **secret,
                           struct tr_errbuf *eb);
tr_err store_atoken_get(struct db *db, struct arena *a, const char *id,
                        struct st_agent_token *out, struct tr_errbuf *eb);
tr_err store_atoken_list(struct db *db, struct arena *a, const char *pool,
                         int offset, int limit, struct st_agent_token **out,
                         int *n, int64_t *total, struct tr_errbuf *eb);
/* Deletes the token and marks the agents registered with it gone. */
tr_err store_atoken_delete(struct db *db, struct arena *a, const char *id,
                           struct tr_errbuf *eb);
/* The token a secret belongs to (last_used_at set to now);
 * TR_ERR_NOT_FOUND when none. */
tr_err store_atoken_use(struct db *db, struct arena *a, const char *secret,
                        struct st_agent_token *out, struct tr_errbuf *eb);

/* The agents of a pool (node registry rows of role agent), newest
 * first. */
tr_err store_agent_list(struct db *db, struct arena *a, const char *pool,
                        int offset, int limit, struct st_node **out, int *n,
                        int64_t *total, struct tr_errbuf *eb);

/* ---- blob garbage collection (store_gc.c) ------------------------------ */

#define STORE_GC_PAGE 500 /* keys checked at once, at most */

/* Which of keys[0..n) (n <= STORE_GC_PAGE) rows still reference: ref[i]
 * set for a key a state version, configuration version, plan or apply
 * names, or under an unfinished job's uploads, and for a key of a form
 * the collector does not know (never removed).  One indexed query per
 * kind of key present. */
tr_err store_blob_refs(struct db *db, struct arena *a, const char *const *keys,
                       int n, bool *ref, struct tr_errbuf *eb);
/* Deletes the log chunks of phases that are gone or whose log was
 * compacted into a blob, among the next `limit` phases with chunks after
 * phase id `after` ("" or NULL: from the start).  *next gets the cursor
 * for the next batch, NULL once the end was reached; *n (nullable) gets
 * the rows deleted. */
tr_err store_log_chunks_gc(struct db *db, struct arena *a, const char *after,
                           int limit, const char **next, int64_t *n,
                           struct tr_errbuf *eb);

/* ---- notification configurations (store_notify.c) ---------------------- */

/* A workspace's notification configuration.  triggers, email_addresses,
 * email_user_ids and delivery_responses are JSON array text.  The token
 * is write-only: token is its sealed text (envelope.h) or NULL, for the
 * deliverer to open; the API shows only whether one is set. */
struct st_nc {
    const char *id; /* nc-... */
    const char *workspace_id;
    const char *name;
    const char *destination_type; /* generic | slack | microsoft-teams |
                                     email */
    bool enabled;
    const char *url;   /* "" for email */
    const char *token; /* sealed, or NULL */
    const char *triggers;
    const char *email_addresses;
    const char *email_user_ids;
    const char *delivery_responses; /* newest last, STORE_NC_RESPONSES */
    const char *created_at;
    const char *updated_at;
};

#define STORE_NC_RESPONSES 10 /* delivery responses kept per configuration */

/* What an update changes: NULL (or -1) leaves a field as it is.  token ""
 * removes the token; any other is sealed. */
struct st_nc_update {
    const char *name;
    int enabled;
    const char *url;
    const char *token;
    const char *triggers;
    const char *email_addresses;
    const char *email_user_ids;
};

/* Creates in (workspace, name, type, enabled, url, token plaintext or
 * NULL, the JSON arrays); the token is sealed with keys.
 * TR_ERR_NOT_FOUND when the workspace is gone. */
tr_err store_nc_create(struct db *db, const struct keyring *keys,
                       struct arena *a, const struct st_nc *in,
                       struct st_nc *out, struct tr_errbuf *eb);
tr_err store_nc_get(struct db *db, struct arena *a, const char *id,
                    struct st_nc *out, struct tr_errbuf *eb);
/* One page of a workspace's configurations, oldest first. */
tr_err store_nc_list(struct db *db, struct arena *a, const char *ws_id,
                     int offset, int limit, struct st_nc **out, int *n,
                     int64_t *total, struct tr_errbuf *eb);
tr_err store_nc_update(struct db *db, const struct keyring *keys,
                       struct arena *a, const char *id,
                       const struct st_nc_update *u, struct st_nc *out,
                       struct tr_errbuf *eb);
/* Deletes the configuration and its pending deliveries. */
tr_err store_nc_delete(struct db *db, struct arena *a, const char *id,
                       struct tr_errbuf *eb);
/* Appends response (a JSON object's text) to the configuration's
 * delivery responses, keeping the newest STORE_NC_RESPONSES.  A gone
 * configuration is not an error. */
tr_err store_nc_add_response(struct db *db, struct arena *a, const char *id,
                             const char *response, struct tr_errbuf *eb);
/* Whether every id of the JSON array user_ids is a member of org, active
 * or invited (an invitation's reserved id counts); *bad gets the first
 * that is not (NULL when all are). */
tr_err store_nc_users_in_org(struct db *db, struct arena *a, const char *org,
                             const char *user_ids, const char **bad,
                             struct tr_errbuf *eb);
/* The e-mail addresses of the users of the JSON array user_ids that are
 * active members of workspace_id's organization (others: invited, gone,
 * without an address, are skipped), as a JSON array text. */
tr_err store_nc_user_emails(struct db *db, struct arena *a,
                            const char *workspace_id, const char *user_ids,
                            const char **emails, struct tr_errbuf *eb);

/* A delivery due from the outbox, with what its payload needs. */
struct st_nc_delivery {
    const char *id;
    const char *trigger;    /* run:created, ... */
    const char *run_status; /* the run's status when it was recorded */
    int attempts;           /* made so far */
    const char *created_at; /* when the event happened */
    struct st_nc nc;
    const char *run_id, *run_message, *run_created_at, *run_created_by;
    const char *ws_name, *org;
};

/* Records the deliveries a run event announces, on the caller's
 * connection inside its transaction (store_run_event_add() calls it):
 * one outbox row per enabled configuration of the run's workspace whose
 * triggers hold the event's.  action: the run event's; other actions
 * than the notified ones are ignored. */
tr_err store_notify_enqueue(struct db_conn *c, struct arena *a,
                            const char *run_id, const char *action,
                            const char *now, struct tr_errbuf *eb);
/* Up to limit deliveries due at now_s (unix seconds), oldest first. */
tr_err store_notify_due(struct db *db, struct arena *a, int64_t now_s,
                        int limit, struct st_nc_delivery **out, int *n,
                        struct tr_errbuf *eb);
/* The delivery is over (made, or given up): its row goes. */
tr_err store_notify_done(struct db *db, struct arena *a, const char *id,
                         struct tr_errbuf *eb);
/* The delivery failed: tried again at next_s with attempts made. */
tr_err store_notify_retry(struct db *db, struct arena *a, const char *id,
                          int attempts, int64_t next_s, struct tr_errbuf *eb);

#endif
