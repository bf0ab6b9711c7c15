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

/* ---- tokens (store_tokens.c) ------------------------------------------- */

/* kind: "user" (subject = user id), "org" (subject = organization name). */
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

/* ---- organizations (store_orgs.c) -------------------------------------- */

struct st_org {
    const char *name;
    const char *id;          /* org-... (external id) */
    const char *email;
    const char *settings;    /* JSON object text of updatable attributes */
    const char *created_at;
};

/* Creates the organization, its default project, and (if owner is not
 * NULL) the owner's membership, in one transaction. */
tr_err store_org_create(struct db *db, struct arena *a, const char *name,
                        const char *email, const char *settings,
                        const char *owner_user_id, struct st_org *out,
                        struct tr_errbuf *eb);
tr_err store_org_get(struct db *db, struct arena *a, const char *name,
                     struct st_org *out, struct tr_errbuf *eb);
/* member_user_id NULL: all organizations (site admin). */
tr_err store_org_list(struct db *db, struct arena *a,
                      const char *member_user_id, const char *name_query,
                      int offset, int limit, struct st_org **out, int *n,
                      int64_t *total, struct tr_errbuf *eb);
/* NULL arguments keep the current value. */
tr_err store_org_update(struct db *db, struct arena *a, const char *name,
                        const char *new_name, const char *email,
                        const char *settings, struct tr_errbuf *eb);
tr_err store_org_delete(struct db *db, struct arena *a, const char *name,
                        struct tr_errbuf *eb);
tr_err store_org_is_member(struct db *db, struct arena *a, const char *org,
                           const char *user_id, bool *member,
                           struct tr_errbuf *eb);
tr_err store_org_add_member(struct db *db, struct arena *a, const char *org,
                            const char *user_id, struct tr_errbuf *eb);

/* ---- projects (store_projects.c) --------------------------------------- */

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
    const char *lock_kind;         /* "user" | "run" | "team" | NULL */
    const char *lock_holder;       /* user id, run id, ... or NULL */
    const char *lock_reason;
    const char *current_sv;        /* current state version id or NULL */
    const char *settings;          /* JSON object text: other attributes */
    const char *created_at;
    const char *updated_at;
};

tr_err store_ws_get(struct db *db, struct arena *a, const char *id,
                    struct st_workspace *out, struct tr_errbuf *eb);
tr_err store_ws_get_by_name(struct db *db, struct arena *a, const char *org,
                            const char *name, struct st_workspace *out,
                            struct tr_errbuf *eb);

/* ---- state versions (store_state.c) ------------------------------------ */

#endif
