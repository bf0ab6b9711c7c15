/*
 * access.h - who may do what: the permission model of organizations,
 * projects and workspaces in one place.
 *
 * A caller is a user (through their teams), a team token (its team), an
 * organization token, a run token or a site admin.  access_org(),
 * access_project() and access_ws() answer a set of ACC_ flags from at most
 * one store query (store_grants()); they never answer HTTP.  The API maps
 * "no ACC_*_SEE" to 404 and a missing flag to 403.
 *
 * The rules, as Terraform Enterprise's:
 *  - site admins and organization tokens may do everything in the
 *    organization (ACC_ALL);
 *  - members of the owners team may do everything; other members see the
 *    organization and whatever their teams give them, nothing more;
 *  - a team's organization-access gives organization flags; manage-
 *    workspaces gives admin on every workspace, read-workspaces read on
 *    every workspace, manage-projects admin on every project and its
 *    workspaces, read-projects read on every project;
 *  - team-project access gives project flags and, through its workspace
 *    access, flags on the project's workspaces; team-workspace access
 *    gives flags on one workspace.  Levels (access_ws_level(),
 *    access_prj_level()):
 *      workspace read:  read, runs read, variables read, state read
 *      workspace plan:  read + queue plans
 *      workspace write: plan + apply, variables write, state write, lock,
 *                       sentinel mocks
 *      workspace admin: write + settings, delete, team access, run tasks
 *      project read:    see the project and its workspaces (read)
 *      project write:   read + write on its workspaces
 *      project maintain: write + admin on its workspaces, create them
 *      project admin:   maintain + update, delete and team access of the
 *                       project, moving and deleting workspaces;
 *    and custom levels set each permission;
 *  - flags from several teams add up;
 *  - a run token sees its run's organization, may read, plan, lock and
 *    write state of its own workspace, and may read the state outputs of
 *    workspaces sharing their state with it (auth.c).
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#ifndef TR_ACCESS_H
#define TR_ACCESS_H

#include <stdbool.h>
#include <stdint.h>

#include "core/arena.h"
#include "core/err.h"
#include "store/db.h"
#include "store/store.h"

typedef uint64_t access_t;

/* organization */
#define ACC_ORG_SEE (1ULL << 0)       /* a member: sees the organization */
#define ACC_ORG_OWNER (1ULL << 1)     /* settings, delete, tokens, owners */
#define ACC_ORG_MANAGE_WS (1ULL << 2) /* manage-workspaces */
#define ACC_ORG_READ_WS (1ULL << 3)   /* read-workspaces */
#define ACC_ORG_MANAGE_PRJ (1ULL << 4)
#define ACC_ORG_READ_PRJ (1ULL << 5)
#define ACC_ORG_MANAGE_POLICIES (1ULL << 6)
#define ACC_ORG_MANAGE_OVERRIDES (1ULL << 7) /* manage-policy-overrides */
#define ACC_ORG_MANAGE_VCS (1ULL << 8)
#define ACC_ORG_MANAGE_MEMBERSHIP (1ULL << 9)
#define ACC_ORG_MANAGE_TEAMS (1ULL << 10)
#define ACC_ORG_MANAGE_ORG_ACCESS (1ULL << 11)
#define ACC_ORG_SECRET_TEAMS (1ULL << 12) /* access-secret-teams */
#define ACC_ORG_MANAGE_AGENTS (1ULL << 13)
#define ACC_ORG_MANAGE_RUN_TASKS (1ULL << 14)
#define ACC_ORG_MANAGE_PROVIDERS (1ULL << 15)
#define ACC_ORG_MANAGE_MODULES (1ULL << 16)
/* delegate-policy-overrides */
#define ACC_ORG_DELEGATE_OVERRIDES (1ULL << 17)
#define ACC_ORG_ALL ((1ULL << 18) - 1)

/* project */
#define ACC_PRJ_SEE (1ULL << 20)
#define ACC_PRJ_UPDATE (1ULL << 21)
#define ACC_PRJ_DELETE (1ULL << 22)
#define ACC_PRJ_TEAMS_READ (1ULL << 23)
#define ACC_PRJ_TEAMS_MANAGE (1ULL << 24)
#define ACC_PRJ_WS_CREATE (1ULL << 25) /* create workspaces in it */
#define ACC_PRJ_WS_MOVE (1ULL << 26)
#define ACC_PRJ_WS_DELETE (1ULL << 27)
#define ACC_PRJ_ALL (((1ULL << 28) - 1) & ~((1ULL << 20) - 1))

/* workspace */
#define ACC_WS_SEE (1ULL << 32)   /* read the workspace, its runs */
#define ACC_WS_PLAN (1ULL << 33)  /* queue plans */
#define ACC_WS_APPLY (1ULL << 34) /* apply, discard, cancel runs */
#define ACC_WS_VARS_READ (1ULL << 35)
#define ACC_WS_VARS_WRITE (1ULL << 36)
#define ACC_WS_OUTPUTS (1ULL << 37)     /* read state outputs */
#define ACC_WS_STATE_READ (1ULL << 38)  /* download state versions */
#define ACC_WS_STATE_WRITE (1ULL << 39) /* create state versions */
#define ACC_WS_LOCK (1ULL << 40)
#define ACC_WS_SENTINEL (1ULL << 41)  /* download sentinel mocks */
#define ACC_WS_RUN_TASKS (1ULL << 42) /* manage run tasks */
#define ACC_WS_ADMIN (1ULL << 43)     /* settings, notifications, triggers */
#define ACC_WS_DELETE (1ULL << 44)
#define ACC_WS_TEAMS (1ULL << 45) /* manage team access */
#define ACC_WS_MOVE (1ULL << 46)
#define ACC_WS_ALL (((1ULL << 47) - 1) & ~((1ULL << 32) - 1))

#define ACC_ALL (ACC_ORG_ALL | ACC_PRJ_ALL | ACC_WS_ALL)

enum access_kind {
    ACCESS_NONE = 0, /* no credentials */
    ACCESS_USER,
    ACCESS_TEAM, /* a team token */
    ACCESS_ORG,  /* an organization token */
    ACCESS_RUN,  /* a run's token */
};

/* The caller, as authentication found it. */
struct access_caller {
    enum access_kind kind;
    const char *user_id; /* ACCESS_USER */
    bool is_admin;       /* ACCESS_USER: a site admin */
    const char *team_id; /* ACCESS_TEAM */
    const char *org;     /* ACCESS_ORG: the organization's name */
    const char *run_id;  /* ACCESS_RUN */
};

/* The caller's flags in organization org (ACC_ORG_* only); 0 when it may
 * not see it. */
tr_err access_org(struct db *db, struct arena *a,
                  const struct access_caller *who, const char *org,
                  access_t *out, struct tr_errbuf *eb);

/* The caller's organization and project flags for project p (no
 * ACC_PRJ_SEE: may not see it) and the workspace flags it gives on the
 * project's workspaces. */
tr_err access_project(struct db *db, struct arena *a,
                      const struct access_caller *who,
                      const struct st_project *p, access_t *out,
                      struct tr_errbuf *eb);

/* The caller's flags for workspace w: organization, project (of w's
 * project) and workspace flags; no ACC_WS_SEE: may not see it.  A run
 * token's flags depend on the request method (read_only: GET). */
tr_err access_ws(struct db *db, struct arena *a,
                 const struct access_caller *who, const struct st_workspace *w,
                 bool read_only, access_t *out, struct tr_errbuf *eb);

/* access_ws() for the n workspaces ws (a page of one organization's
 * list) with at most one query: out[i] for ws[i]. */
tr_err access_ws_many(struct db *db, struct arena *a,
                      const struct access_caller *who,
                      const struct st_workspace *ws, int n, bool read_only,
                      access_t *out, struct tr_errbuf *eb);

/* Workspace flags of a team-workspace access level and its custom
 * permissions (perms: JSON object text, nullable). */
access_t access_ws_level(const char *level, const char *perms);
/* Project and workspace flags of a team-project access level and its
 * custom permissions ({"project-access": {..}, "workspace-access": {..}}). */
access_t access_prj_level(const char *level, const char *perms);
/* Organization flags of a team's organization-access JSON object. */
access_t access_org_level(const char *org_access);

/* The names of the organization-access attributes in order, and their
 * flags; NULL-terminated. */
struct access_name {
    const char *name;
    access_t flag;
};
extern const struct access_name access_org_names[];

#endif
