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

/* ---- site settings (store_site.c) ------------------------------------- */

/* Returns the value for key, creating it with a fresh random hex value of
 * nbytes bytes if absent (first writer wins on a race). */
tr_err store_site_secret(struct db *db, struct arena *a, const char *key,
                         int nbytes, char **value, struct tr_errbuf *eb);

/* ---- users (store_users.c) --------------------------------------------- */

struct st_user {
    const char *id;         /* user-... */
    const char *username;
    const char *email;
    bool is_admin;
    const char *created_at;
};

/* Usernames are unique; so are non-empty emails (case-insensitive).  A
 * duplicate of either is TR_ERR_CONFLICT, as in store_user_update(). */
tr_err store_user_create(struct db *db, struct arena *a, const char *username,
                         const char *email, bool is_admin,
                         struct st_user *out, struct tr_errbuf *eb);
tr_err store_user_get(struct db *db, struct arena *a, const char *id,
                      struct st_user *out, struct tr_errbuf *eb);
tr_err store_user_by_name(struct db *db, struct arena *a,
                          const char *username, struct st_user *out,
                          struct tr_errbuf *eb);
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
                         int admin, int offset, int limit,
                         struct st_user **out, int *n, int64_t *total,
                         struct tr_errbuf *eb);
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
    const char *id;          /* at-... */
    const char *kind;
    const char *subject;
    const char *description;
    const char *created_by;  /* user id or NULL */
    const char *created_at;
    const char *last_used_at;
    const char *expired_at;  /* ISO time or NULL */
};

/* Creates a token; *secret is the only copy of the plain token (only its
 * SHA-256 is stored). */
tr_err store_token_create(struct db *db, struct arena *a, const char *kind,
                          const char *subject, const char *description,
                          const char *created_by, const char *expired_at,
                          struct st_token *out, char **secret,
                          struct tr_errbuf *eb);
/* Finds the token whose hash matches; TR_ERR_NOT_FOUND if none or
 * expired.  Updates last_used_at at most once a minute. */
tr_err store_token_lookup(struct db *db, struct arena *a, const char *secret,
                          struct st_token *out, struct tr_errbuf *eb);
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

/* ---- organizations (store_orgs.c) -------------------------------------- */

/* settings holds the updatable TFE attributes under their TFE names
 * ("default-execution-mode", "session-timeout", "cost-estimation-enabled",
 * ...); a missing key means TFE's default (see api/organizations.c). */
struct st_org {
    const char *name;
    const char *id;          /* org-... (external id) */
    const char *email;
    const char *settings;    /* JSON object text of updatable attributes */
    const char *created_at;
    const char *default_project; /* prj-... or NULL */
};

/* Creates the organization, its default project, and (if owner is not
 * NULL) the owner's membership, in one transaction. */
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
/* Adding an existing member is not an error. */
tr_err store_org_add_member(struct db *db, struct arena *a, const char *org,
                            const char *user_id, struct tr_errbuf *eb);
tr_err store_org_remove_member(struct db *db, struct arena *a,
                               const char *org, const char *user_id,
                               struct tr_errbuf *eb);
/* Members of org ordered by username. */
tr_err store_org_members(struct db *db, struct arena *a, const char *org,
                         int offset, int limit, struct st_user **out, int *n,
                         int64_t *total, struct tr_errbuf *eb);
/* By external id (org-...). */
tr_err store_org_by_id(struct db *db, struct arena *a, const char *id,
                       struct st_org *out, struct tr_errbuf *eb);

/* ---- projects (store_projects.c) --------------------------------------- */

/* Every organization has exactly one default project ("Default Project",
 * made by store_org_create()); it can be renamed but never deleted.  Names
 * are unique within the organization. */
struct st_project {
    const char *id;          /* prj-... */
    const char *org;
    const char *name;
    const char *description;
    bool is_default;
    int64_t workspace_count;
    const char *created_at;
};

/* A duplicate name is TR_ERR_INVALID ("name ... has already been taken");
 * a missing organization TR_ERR_NOT_FOUND. */
tr_err store_project_create(struct db *db, struct arena *a, const char *org,
                            const char *name, const char *description,
                            struct st_project *out, struct tr_errbuf *eb);
tr_err store_project_get(struct db *db, struct arena *a, const char *id,
                         struct st_project *out, struct tr_errbuf *eb);
tr_err store_project_default(struct db *db, struct arena *a, const char *org,
                             struct st_project *out, struct tr_errbuf *eb);
/* Projects of org ordered by name.  names (nnames entries, may be 0):
 * keep projects whose name is one of them; query (NULL or ""): keep names
 * containing it, case-insensitively. */
tr_err store_project_list(struct db *db, struct arena *a, const char *org,
                          const char *const *names, int nnames,
                          const char *query, int offset, int limit,
                          struct st_project **out, int *n, int64_t *total,
                          struct tr_errbuf *eb);
/* NULL arguments keep the current value; duplicate name: TR_ERR_INVALID. */
tr_err store_project_update(struct db *db, struct arena *a, const char *id,
                            const char *name, const char *description,
                            struct tr_errbuf *eb);
/* TR_ERR_CONFLICT for the default project or one that still holds
 * workspaces (checked in the deleting transaction). */
tr_err store_project_delete(struct db *db, struct arena *a, const char *id,
                            struct tr_errbuf *eb);

/* ---- workspaces (store_workspaces.c) ----------------------------------- */

struct st_workspace {
    const char *id;                /* ws-... */
    const char *org;
    const char *name;
    const char *project_id;
    const char *description;
    const char *execution_mode;    /* remote | local | agent */
    const char *terraform_version; /* "latest" or a version */
    const char *working_directory;
    bool auto_apply;
    bool locked;
    const char *lock_kind;         /* "user" | "run" | "team" | "org" (an
                                      organization token) | NULL */
    const char *lock_holder;       /* user id, run id, ... or NULL */
    const char *lock_reason;
    const char *current_sv;        /* current state version id or NULL */
    const char *settings;          /* JSON object text: other attributes */
    const char *created_at;
    const char *updated_at;
    /* Filled by get and list: */
    int64_t resource_count;        /* entries of the current state version's
                                      resources array; 0 without state */
    const char **tag_names;        /* sorted by name; also create's input */
    int ntags;
};

tr_err store_ws_get(struct db *db, struct arena *a, const char *id,
                    struct st_workspace *out, struct tr_errbuf *eb);
tr_err store_ws_get_by_name(struct db *db, struct arena *a, const char *org,
                            const char *name, struct st_workspace *out,
                            struct tr_errbuf *eb);

/* Creates a workspace from in: org, name, project_id (NULL: the default
 * project), description, execution_mode, terraform_version,
 * working_directory, auto_apply, settings (NULL: "{}") and tag_names
 * (created in the organization as needed), all in one transaction.  A
 * duplicate name is TR_ERR_INVALID; an organization or project that does
 * not exist (or a project of another organization) is TR_ERR_NOT_FOUND. */
tr_err store_ws_create(struct db *db, struct arena *a,
                       const struct st_workspace *in,
                       struct st_workspace *out, struct tr_errbuf *eb);

/* Changes for store_ws_update(): NULL / -1 keep the current value. */
struct st_ws_update {
    const char *name;
    const char *project_id;        /* must belong to the same organization */
    const char *description;
    const char *execution_mode;
    const char *terraform_version;
    const char *working_directory;
    int auto_apply;                /* -1 keep, 0, 1 */
    const char *settings_patch;    /* JSON object whose keys replace those
                                      of settings; NULL: none */
    bool set_tags;                 /* replace the tags by tag_names */
    const char *const *tag_names;
    int ntags;
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

/* Filters for store_ws_list(); NULL / 0 means no filter. */
struct st_ws_filter {
    const char *org;               /* required */
    const char *search;            /* name contains, case-insensitively */
    const char *wildcard;          /* name matches, '*' any run of chars */
    const char *const *tags;       /* has all of these tags */
    int ntags;
    const char *const *exclude_tags; /* has none of these tags */
    int nexclude;
    const char *project_id;
    bool desc;                     /* order by name descending */
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
                     const char *kind, const char *holder,
                     const char *reason, struct st_workspace *out,
                     struct tr_errbuf *eb);
tr_err store_ws_unlock(struct db *db, struct arena *a, const char *id,
                       const char *kind, const char *holder,
                       struct st_workspace *out, struct tr_errbuf *eb);

/* ---- tags (store_tags.c) ----------------------------------------------- */

/* Tags belong to an organization (unique name) and are linked to its
 * workspaces.  A tag outlives its last link until deleted. */
struct st_tag {
    const char *id;           /* tag-... */
    const char *org;
    const char *name;
    int64_t instance_count;   /* workspaces carrying it */
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
tr_err store_tag_add_workspaces(struct db *db, struct arena *a,
                                const char *org, const char *tag_id,
                                const char *const *ws_ids, int n,
                                struct tr_errbuf *eb);
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
    const char *id;                /* sv-... */
    const char *workspace_id;
    int64_t seq;
    int64_t serial;
    const char *lineage;           /* "" when not known (pending) */
    const char *md5;
    const char *sha256;            /* "" while pending */
    int64_t size;
    const char *status;            /* pending | finalized | discarded */
    const char *blob_key;
    const char *json_blob_key;     /* NULL without a JSON state */
    const char *run_id;            /* NULL */
    const char *created_by;        /* user id or NULL */
    const char *terraform_version;
    const char *resources;         /* JSON array text (domain/state_check.h) */
    const char *created_at;
    bool force;                    /* finalize without the successor rule */
};

struct st_sv_output {
    const char *id;                /* wsout-... */
    const char *sv_id;
    const char *name;
    bool sensitive;
    const char *type;              /* string|number|boolean|array|object */
    const char *detailed_type;     /* JSON text of the cty type */
    const char *value;             /* JSON text */
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
tr_err store_sv_output_get(struct db *db, struct arena *a, const char *id,
                           struct st_sv_output *out, struct tr_errbuf *eb);

/* For unlock and force-unlock: whether the workspace has a pending version
 * (TFE refuses a plain unlock then), and discarding them all. */
tr_err store_sv_has_pending(struct db *db, struct arena *a, const char *ws_id,
                            bool *pending, struct tr_errbuf *eb);
tr_err store_sv_discard_pending(struct db *db, struct arena *a,
                                const char *ws_id, struct tr_errbuf *eb);

#endif
