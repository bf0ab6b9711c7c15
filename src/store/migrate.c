/*
 * migrate.c - numbered schema migrations embedded in the binary.
 *
 * Each migration runs in its own transaction and records its number in
 * schema_migrations.  On PostgreSQL an advisory lock serialises primaries
 * starting together; on SQLite BEGIN IMMEDIATE does the same.  Migrations
 * are appended, never edited once released.  The SQL is the portable
 * subset: TEXT, BIGINT, INTEGER 0/1 for booleans, ISO-8601 text times.
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "core/log.h"
#include "store/store.h"

struct migration {
    int version;
    const char *sql; /* NULL: code, run_code() */
};

static const struct migration migrations[] = {
    {1,
     "CREATE TABLE site_settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);"
     "CREATE TABLE users ("
     " id TEXT PRIMARY KEY, username TEXT NOT NULL UNIQUE,"
     " email TEXT NOT NULL DEFAULT '', is_admin INTEGER NOT NULL DEFAULT 0,"
     " created_at TEXT NOT NULL);"
     "CREATE TABLE tokens ("
     " id TEXT PRIMARY KEY, kind TEXT NOT NULL, subject TEXT NOT NULL,"
     " hash TEXT NOT NULL UNIQUE, description TEXT NOT NULL DEFAULT '',"
     " created_by TEXT, created_at TEXT NOT NULL, last_used_at TEXT,"
     " expired_at TEXT);"
     "CREATE INDEX tokens_subject ON tokens (kind, subject);"
     "CREATE TABLE organizations ("
     " name TEXT PRIMARY KEY, id TEXT NOT NULL UNIQUE,"
     " email TEXT NOT NULL, settings TEXT NOT NULL DEFAULT '{}',"
     " created_at TEXT NOT NULL);"
     "CREATE TABLE org_members ("
     " org TEXT NOT NULL REFERENCES organizations(name)"
     "   ON DELETE CASCADE ON UPDATE CASCADE,"
     " user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,"
     " PRIMARY KEY (org, user_id));"
     "CREATE TABLE projects ("
     " id TEXT PRIMARY KEY, org TEXT NOT NULL REFERENCES organizations(name)"
     "   ON DELETE CASCADE ON UPDATE CASCADE,"
     " name TEXT NOT NULL, description TEXT NOT NULL DEFAULT '',"
     " is_default INTEGER NOT NULL DEFAULT 0, created_at TEXT NOT NULL,"
     " UNIQUE (org, name));"
     "CREATE TABLE workspaces ("
     " id TEXT PRIMARY KEY, org TEXT NOT NULL REFERENCES organizations(name)"
     "   ON DELETE CASCADE ON UPDATE CASCADE,"
     " name TEXT NOT NULL, project_id TEXT NOT NULL REFERENCES projects(id),"
     " description TEXT NOT NULL DEFAULT '',"
     " execution_mode TEXT NOT NULL DEFAULT 'remote',"
     " terraform_version TEXT NOT NULL DEFAULT 'latest',"
     " auto_apply INTEGER NOT NULL DEFAULT 0,"
     " working_directory TEXT NOT NULL DEFAULT '',"
     " locked INTEGER NOT NULL DEFAULT 0, lock_kind TEXT, lock_holder TEXT,"
     " lock_reason TEXT NOT NULL DEFAULT '',"
     " current_sv TEXT, settings TEXT NOT NULL DEFAULT '{}',"
     " created_at TEXT NOT NULL, updated_at TEXT NOT NULL,"
     " UNIQUE (org, name));"
     "CREATE TABLE tags ("
     " id TEXT PRIMARY KEY, org TEXT NOT NULL REFERENCES organizations(name)"
     "   ON DELETE CASCADE ON UPDATE CASCADE,"
     " name TEXT NOT NULL, created_at TEXT NOT NULL, UNIQUE (org, name));"
     "CREATE TABLE workspace_tags ("
     " workspace_id TEXT NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,"
     " tag_id TEXT NOT NULL REFERENCES tags(id) ON DELETE CASCADE,"
     " PRIMARY KEY (workspace_id, tag_id));"
     "CREATE TABLE state_versions ("
     " id TEXT PRIMARY KEY,"
     " workspace_id TEXT NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,"
     " seq BIGINT NOT NULL, serial BIGINT NOT NULL, lineage TEXT NOT NULL,"
     " md5 TEXT NOT NULL, sha256 TEXT NOT NULL DEFAULT '',"
     " size BIGINT NOT NULL DEFAULT 0, status TEXT NOT NULL,"
     " blob_key TEXT NOT NULL, json_blob_key TEXT,"
     " run_id TEXT, created_by TEXT, terraform_version TEXT NOT NULL DEFAULT "
     "'',"
     " resources TEXT NOT NULL DEFAULT '[]',"
     " created_at TEXT NOT NULL, UNIQUE (workspace_id, seq));"
     "CREATE TABLE state_version_outputs ("
     " id TEXT PRIMARY KEY,"
     " sv_id TEXT NOT NULL REFERENCES state_versions(id) ON DELETE CASCADE,"
     " name TEXT NOT NULL, sensitive INTEGER NOT NULL DEFAULT 0,"
     " type TEXT NOT NULL, detailed_type TEXT NOT NULL, value TEXT NOT NULL);"
     "CREATE INDEX svo_sv ON state_version_outputs (sv_id);"},
    /* 2: a pending state version remembers whether it was created with
     * force, so its upload is finalized under the same rules */
    {2, "ALTER TABLE state_versions"
        " ADD COLUMN forced INTEGER NOT NULL DEFAULT 0;"},
    /* 3: configuration versions (uploaded configuration tarballs) */
    {3,
     "CREATE TABLE configuration_versions ("
     " id TEXT PRIMARY KEY,"
     " workspace_id TEXT NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,"
     " status TEXT NOT NULL DEFAULT 'pending', error_message TEXT,"
     " source TEXT NOT NULL DEFAULT 'tfe-api',"
     " speculative INTEGER NOT NULL DEFAULT 0,"
     " provisional INTEGER NOT NULL DEFAULT 0,"
     " auto_queue_runs INTEGER NOT NULL DEFAULT 1,"
     " blob_key TEXT, size BIGINT NOT NULL DEFAULT 0,"
     " status_timestamps TEXT NOT NULL DEFAULT '{}',"
     " created_by TEXT, created_at TEXT NOT NULL);"
     "CREATE INDEX cv_workspace"
     " ON configuration_versions (workspace_id, created_at);"},
    /* 4: workspace variables and variable sets (store_vars.c); a variable
     * belongs to exactly one workspace or one variable set */
    {4,
     "CREATE TABLE varsets ("
     " id TEXT PRIMARY KEY, org TEXT NOT NULL REFERENCES organizations(name)"
     "   ON DELETE CASCADE ON UPDATE CASCADE,"
     " name TEXT NOT NULL, description TEXT NOT NULL DEFAULT '',"
     " global INTEGER NOT NULL DEFAULT 0, priority INTEGER NOT NULL DEFAULT 0,"
     " created_at TEXT NOT NULL, updated_at TEXT NOT NULL,"
     " UNIQUE (org, name));"
     "CREATE TABLE variables ("
     " id TEXT PRIMARY KEY,"
     " workspace_id TEXT REFERENCES workspaces(id) ON DELETE CASCADE,"
     " varset_id TEXT REFERENCES varsets(id) ON DELETE CASCADE,"
     " key TEXT NOT NULL, value TEXT NOT NULL DEFAULT '',"
     " category TEXT NOT NULL, hcl INTEGER NOT NULL DEFAULT 0,"
     " sensitive INTEGER NOT NULL DEFAULT 0,"
     " description TEXT NOT NULL DEFAULT '', version_id TEXT NOT NULL,"
     " created_at TEXT NOT NULL,"
     " CHECK ((workspace_id IS NULL) <> (varset_id IS NULL)),"
     " UNIQUE (workspace_id, key, category),"
     " UNIQUE (varset_id, key, category));"
     "CREATE INDEX variables_varset ON variables (varset_id);"
     "CREATE TABLE varset_workspaces ("
     " varset_id TEXT NOT NULL REFERENCES varsets(id) ON DELETE CASCADE,"
     " workspace_id TEXT NOT NULL REFERENCES workspaces(id)"
     "   ON DELETE CASCADE,"
     " PRIMARY KEY (varset_id, workspace_id));"
     "CREATE INDEX varset_workspaces_ws ON varset_workspaces (workspace_id);"
     "CREATE TABLE varset_projects ("
     " varset_id TEXT NOT NULL REFERENCES varsets(id) ON DELETE CASCADE,"
     " project_id TEXT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,"
     " PRIMARY KEY (varset_id, project_id));"
     "CREATE INDEX varset_projects_prj ON varset_projects (project_id);"},
    /* 5: runs with their plan and apply, the jobs workers claim, live log
     * chunks, comments and run events (store_runs.c); a workspace's
     * current run owns it while set */
    {5,
     "CREATE TABLE runs ("
     " id TEXT PRIMARY KEY,"
     " workspace_id TEXT NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,"
     " cv_id TEXT, status TEXT NOT NULL, message TEXT NOT NULL DEFAULT '',"
     " is_destroy INTEGER NOT NULL DEFAULT 0,"
     " refresh INTEGER NOT NULL DEFAULT 1,"
     " refresh_only INTEGER NOT NULL DEFAULT 0,"
     " plan_only INTEGER NOT NULL DEFAULT 0,"
     " save_plan INTEGER NOT NULL DEFAULT 0,"
     " auto_apply INTEGER NOT NULL DEFAULT 0,"
     " allow_empty_apply INTEGER NOT NULL DEFAULT 0,"
     " terraform_version TEXT NOT NULL DEFAULT '',"
     " target_addrs TEXT NOT NULL DEFAULT '[]',"
     " replace_addrs TEXT NOT NULL DEFAULT '[]',"
     " variables TEXT NOT NULL DEFAULT '[]',"
     " has_changes INTEGER NOT NULL DEFAULT 0,"
     " status_timestamps TEXT NOT NULL DEFAULT '{}',"
     " error_message TEXT, created_by TEXT,"
     " source TEXT NOT NULL DEFAULT 'tfe-api',"
     " force_cancel_at TEXT, cost_estimate_id TEXT,"
     " queue_seq BIGINT NOT NULL, created_at TEXT NOT NULL);"
     "CREATE INDEX runs_ws ON runs (workspace_id, queue_seq);"
     "CREATE INDEX runs_status ON runs (status);"
     "CREATE TABLE plans ("
     " id TEXT PRIMARY KEY,"
     " run_id TEXT NOT NULL UNIQUE REFERENCES runs(id) ON DELETE CASCADE,"
     " status TEXT NOT NULL,"
     " additions INTEGER NOT NULL DEFAULT 0,"
     " changes INTEGER NOT NULL DEFAULT 0,"
     " destructions INTEGER NOT NULL DEFAULT 0,"
     " imports INTEGER NOT NULL DEFAULT 0,"
     " has_changes INTEGER NOT NULL DEFAULT 0,"
     " log_blob_key TEXT, plan_blob_key TEXT, json_blob_key TEXT,"
     " redacted_json_blob_key TEXT,"
     " status_timestamps TEXT NOT NULL DEFAULT '{}');"
     "CREATE TABLE applies ("
     " id TEXT PRIMARY KEY,"
     " run_id TEXT NOT NULL UNIQUE REFERENCES runs(id) ON DELETE CASCADE,"
     " status TEXT NOT NULL,"
     " additions INTEGER NOT NULL DEFAULT 0,"
     " changes INTEGER NOT NULL DEFAULT 0,"
     " destructions INTEGER NOT NULL DEFAULT 0,"
     " imports INTEGER NOT NULL DEFAULT 0,"
     " log_blob_key TEXT,"
     " status_timestamps TEXT NOT NULL DEFAULT '{}');"
     "CREATE TABLE jobs ("
     " id TEXT PRIMARY KEY,"
     " run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,"
     " phase TEXT NOT NULL, status TEXT NOT NULL, node TEXT,"
     " lease_until BIGINT NOT NULL DEFAULT 0,"
     " cancel INTEGER NOT NULL DEFAULT 0, created_at TEXT NOT NULL);"
     "CREATE INDEX jobs_status ON jobs (status, created_at);"
     "CREATE INDEX jobs_run ON jobs (run_id);"
     "CREATE TABLE log_chunks ("
     " phase_id TEXT NOT NULL, seq BIGINT NOT NULL,"
     " byte_offset BIGINT NOT NULL, len BIGINT NOT NULL, data TEXT NOT NULL,"
     " PRIMARY KEY (phase_id, seq));"
     "CREATE TABLE comments ("
     " id TEXT PRIMARY KEY,"
     " run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,"
     " body TEXT NOT NULL, created_by TEXT, created_at TEXT NOT NULL);"
     "CREATE INDEX comments_run ON comments (run_id);"
     "CREATE TABLE run_events ("
     " id TEXT PRIMARY KEY,"
     " run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,"
     " seq BIGINT NOT NULL, action TEXT NOT NULL,"
     " description TEXT NOT NULL DEFAULT '', actor_id TEXT, comment_id TEXT,"
     " created_at TEXT NOT NULL, UNIQUE (run_id, seq));"
     "ALTER TABLE workspaces ADD COLUMN current_run_id TEXT;"},
    /* 6: tool versions, the tofu/terraform binaries runs may use
     * (store_tools.c) */
    {6, "CREATE TABLE tool_versions ("
        " id TEXT PRIMARY KEY, version TEXT NOT NULL UNIQUE,"
        " path TEXT NOT NULL, sha256 TEXT NOT NULL,"
        " enabled INTEGER NOT NULL DEFAULT 1,"
        " official INTEGER NOT NULL DEFAULT 0,"
        " beta INTEGER NOT NULL DEFAULT 0,"
        " deprecated INTEGER NOT NULL DEFAULT 0, deprecated_reason TEXT,"
        " created_at TEXT NOT NULL);"},
    /* 7: workspaces list in creation order by default; created_at has
     * millisecond resolution, so a sequence number keeps the order of
     * workspaces made in the same millisecond (existing rows: by
     * created_at, then id) */
    {7,
     "ALTER TABLE workspaces ADD COLUMN seq BIGINT NOT NULL DEFAULT 0;"
     "UPDATE workspaces SET seq = (SELECT count(*) FROM workspaces w2"
     " WHERE w2.created_at < workspaces.created_at"
     " OR (w2.created_at = workspaces.created_at AND w2.id <= workspaces.id));"
     "CREATE INDEX workspaces_org_seq ON workspaces (org, seq);"},
    /* 8: jobs are claimed first in, first out; created_at ties within a
     * millisecond, so a sequence number keeps the order (existing rows:
     * by created_at, then id).  The seq indexes keep MAX(seq) of an
     * insert cheap on both tables. */
    {8, "ALTER TABLE jobs ADD COLUMN seq BIGINT NOT NULL DEFAULT 0;"
        "UPDATE jobs SET seq = (SELECT count(*) FROM jobs j2"
        " WHERE j2.created_at < jobs.created_at"
        " OR (j2.created_at = jobs.created_at AND j2.id <= jobs.id));"
        "CREATE INDEX jobs_status_seq ON jobs (status, seq);"
        "CREATE INDEX jobs_seq ON jobs (seq);"
        "CREATE INDEX workspaces_seq ON workspaces (seq);"},
    /* 9: remote state consumers: the workspaces whose runs may read a
     * workspace's state (besides its own, or all with
     * global-remote-state) */
    {9,
     "CREATE TABLE remote_state_consumers ("
     " workspace_id TEXT NOT NULL REFERENCES workspaces(id)"
     " ON DELETE CASCADE,"
     " consumer_id TEXT NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,"
     " PRIMARY KEY (workspace_id, consumer_id));"
     "CREATE INDEX rsc_consumer ON remote_state_consumers (consumer_id);"},
    /* 10: the URL-signing key is derived from the key-encryption key and
     * a salt (http/signed.c) instead of stored: a database copy alone
     * must not forge URLs.  URLs signed with the old key stop working. */
    {10, "DELETE FROM site_settings WHERE key = 'url-signing-key';"},
    /* 11: organization names are unique regardless of case, as in TFE
     * (org_name_index(); store_orgs.c checks too) */
    {11, NULL},
    /* 12: key/value tag bindings of workspaces and projects
     * (store_tag_bindings.c); a binding belongs to exactly one of the
     * two, and a workspace inherits its project's */
    {12, "CREATE TABLE tag_bindings ("
         " id TEXT PRIMARY KEY,"
         " workspace_id TEXT REFERENCES workspaces(id) ON DELETE CASCADE,"
         " project_id TEXT REFERENCES projects(id) ON DELETE CASCADE,"
         " key TEXT NOT NULL, value TEXT NOT NULL DEFAULT '',"
         " created_at TEXT NOT NULL,"
         " CHECK ((workspace_id IS NULL) <> (project_id IS NULL)),"
         " UNIQUE (workspace_id, key), UNIQUE (project_id, key));"
         "CREATE INDEX tag_bindings_project ON tag_bindings (project_id);"},
    /* 13: the node registry of a cluster (store_nodes.c): primaries and
     * secondaries, with a secondary's node credential stored hashed */
    {13, "CREATE TABLE nodes ("
         " id TEXT PRIMARY KEY,"
         " name TEXT NOT NULL,"
         " role TEXT NOT NULL,"
         " address TEXT NOT NULL DEFAULT '',"
         " version TEXT NOT NULL DEFAULT '',"
         " capacity INTEGER NOT NULL DEFAULT 0,"
         " running_jobs INTEGER NOT NULL DEFAULT 0,"
         " state TEXT NOT NULL DEFAULT 'active',"
         " leader INTEGER NOT NULL DEFAULT 0,"
         " revoked INTEGER NOT NULL DEFAULT 0,"
         " credential_hash TEXT UNIQUE,"
         " created_at TEXT NOT NULL,"
         " last_heartbeat_at TEXT NOT NULL);"
         "CREATE INDEX nodes_heartbeat ON nodes (state, last_heartbeat_at);"},
    /* 14: run triggers (store_run_triggers.c): an apply in the source
     * workspace queues a run in the workspace that follows it */
    {14, "CREATE TABLE run_triggers ("
         " id TEXT PRIMARY KEY,"
         " workspace_id TEXT NOT NULL REFERENCES workspaces(id)"
         "  ON DELETE CASCADE,"
         " source_id TEXT NOT NULL REFERENCES workspaces(id)"
         "  ON DELETE CASCADE,"
         " created_at TEXT NOT NULL,"
         " UNIQUE (workspace_id, source_id));"
         "CREATE INDEX run_triggers_source ON run_triggers (source_id);"},
    /* 15: organization SSH keys (store_ssh_keys.c), the value sealed;
     * a workspace names at most one, for git over SSH in tofu init */
    {15, "CREATE TABLE ssh_keys ("
         " id TEXT PRIMARY KEY,"
         " org TEXT NOT NULL REFERENCES organizations(name)"
         "  ON DELETE CASCADE ON UPDATE CASCADE,"
         " name TEXT NOT NULL,"
         " value TEXT NOT NULL,"
         " created_at TEXT NOT NULL,"
         " updated_at TEXT NOT NULL);"
         "CREATE INDEX ssh_keys_org ON ssh_keys (org);"
         "ALTER TABLE workspaces ADD COLUMN ssh_key_id TEXT"
         " REFERENCES ssh_keys(id) ON DELETE SET NULL;"},
    /* 16: indexes the query-plan test found missing on a large
     * installation (tests/api/test_query_plans.py): a tool version's
     * workspaces, a project's workspaces, and partial indexes over the
     * few live rows of the queue tables (a status index cannot tell
     * the planner that 'queued' is rare among a million 'done') */
    {16, "CREATE INDEX workspaces_tool ON workspaces (terraform_version);"
         "CREATE INDEX workspaces_project ON workspaces (project_id);"
         "CREATE INDEX jobs_queued ON jobs (seq, id)"
         " WHERE status = 'queued';"
         "CREATE INDEX jobs_running ON jobs (lease_until, id)"
         " WHERE status = 'running';"
         "CREATE INDEX runs_waiting ON runs (workspace_id)"
         " WHERE status IN ('pending', 'confirmed');"},
    /* 17: run triggers fire durably: an applied run is marked in the
     * step that records the apply, the mark is cleared once every
     * follower has its run, and a follower's run names the run that
     * triggered it, at most once per (workspace, source run) */
    {17, "ALTER TABLE runs ADD COLUMN triggers_pending INTEGER NOT NULL"
         " DEFAULT 0;"
         "ALTER TABLE runs ADD COLUMN trigger_run_id TEXT;"
         "CREATE INDEX runs_triggers_pending ON runs (id)"
         " WHERE triggers_pending = 1;"
         "CREATE UNIQUE INDEX runs_trigger_once"
         " ON runs (workspace_id, trigger_run_id)"
         " WHERE trigger_run_id IS NOT NULL;"},
    /* 18: notification configurations of workspaces and their outbox:
     * one row per delivery still to make, written in the transaction
     * that records the run event it announces (store_notify.c) */
    {18, "CREATE TABLE notification_configs ("
         " id TEXT PRIMARY KEY,"
         " workspace_id TEXT NOT NULL REFERENCES workspaces(id)"
         "   ON DELETE CASCADE,"
         " name TEXT NOT NULL,"
         " destination_type TEXT NOT NULL,"
         " enabled INTEGER NOT NULL DEFAULT 0,"
         " url TEXT NOT NULL DEFAULT '',"
         " token TEXT,"
         " triggers TEXT NOT NULL DEFAULT '[]',"
         " email_addresses TEXT NOT NULL DEFAULT '[]',"
         " email_user_ids TEXT NOT NULL DEFAULT '[]',"
         " delivery_responses TEXT NOT NULL DEFAULT '[]',"
         " created_at TEXT NOT NULL,"
         " updated_at TEXT NOT NULL);"
         "CREATE INDEX notification_configs_ws"
         " ON notification_configs (workspace_id);"
         "CREATE TABLE notification_outbox ("
         " id TEXT PRIMARY KEY,"
         " config_id TEXT NOT NULL REFERENCES notification_configs(id)"
         "   ON DELETE CASCADE,"
         " run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,"
         " trigger_name TEXT NOT NULL,"
         " run_status TEXT NOT NULL,"
         " attempts INTEGER NOT NULL DEFAULT 0,"
         " next_at BIGINT NOT NULL,"
         " created_at TEXT NOT NULL);"
         "CREATE INDEX notification_outbox_next"
         " ON notification_outbox (next_at);"},
    /* 19: teams (store_teams.c), their members and tokens (tokens of
     * kind 'team'), and their access to workspaces and projects.  Every
     * organization gets its owners team, and its members join it, so an
     * upgrade takes nobody's access away (domain/access.c) */
    {19, "CREATE TABLE teams ("
         " id TEXT PRIMARY KEY,"
         " org TEXT NOT NULL REFERENCES organizations(name)"
         "   ON DELETE CASCADE ON UPDATE CASCADE,"
         " name TEXT NOT NULL,"
         " is_owners INTEGER NOT NULL DEFAULT 0,"
         " visibility TEXT NOT NULL DEFAULT 'secret',"
         " sso_team_id TEXT,"
         " allow_member_tokens INTEGER NOT NULL DEFAULT 1,"
         " org_access TEXT NOT NULL DEFAULT '{}',"
         " created_at TEXT NOT NULL,"
         " UNIQUE (org, name));"
         "CREATE TABLE team_members ("
         " team_id TEXT NOT NULL REFERENCES teams(id) ON DELETE CASCADE,"
         " user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,"
         " PRIMARY KEY (team_id, user_id));"
         "CREATE INDEX team_members_user ON team_members (user_id);"
         "CREATE TABLE team_workspaces ("
         " id TEXT PRIMARY KEY,"
         " team_id TEXT NOT NULL REFERENCES teams(id) ON DELETE CASCADE,"
         " workspace_id TEXT NOT NULL REFERENCES workspaces(id)"
         "   ON DELETE CASCADE,"
         " access TEXT NOT NULL,"
         " perms TEXT NOT NULL DEFAULT '{}',"
         " created_at TEXT NOT NULL,"
         " UNIQUE (team_id, workspace_id));"
         "CREATE INDEX team_workspaces_ws ON team_workspaces (workspace_id);"
         "CREATE TABLE team_projects ("
         " id TEXT PRIMARY KEY,"
         " team_id TEXT NOT NULL REFERENCES teams(id) ON DELETE CASCADE,"
         " project_id TEXT NOT NULL REFERENCES projects(id)"
         "   ON DELETE CASCADE,"
         " access TEXT NOT NULL,"
         " perms TEXT NOT NULL DEFAULT '{}',"
         " created_at TEXT NOT NULL,"
         " UNIQUE (team_id, project_id));"
         "CREATE INDEX team_projects_prj ON team_projects (project_id);"
         "INSERT INTO teams (id, org, name, is_owners, visibility,"
         " created_at) SELECT 'team-' || id, name, 'owners', 1,"
         " 'organization', created_at FROM organizations;"
         "INSERT INTO team_members (team_id, user_id)"
         " SELECT t.id, m.user_id FROM org_members m"
         " JOIN teams t ON t.org = m.org AND t.is_owners = 1"},
    /* 20: organization memberships get rows of their own, with invitations
     * (store_memberships.c).  A membership is invited or active; while no
     * account has the invited address, user_id is NULL and invitee_id is
     * the id the account will get.  Existing members move over as active,
     * keeping the ids they had ("ou-" + the random parts of the user and
     * organization ids).  org_members stays as a view of active members
     * for the code that asks who may see an organization. */
    {20, "CREATE TABLE org_memberships ("
         " id TEXT PRIMARY KEY,"
         " org TEXT NOT NULL REFERENCES organizations(name)"
         "   ON DELETE CASCADE ON UPDATE CASCADE,"
         " user_id TEXT REFERENCES users(id) ON DELETE CASCADE,"
         " invitee_id TEXT,"
         " email TEXT NOT NULL,"
         " status TEXT NOT NULL,"
         " mail_pending INTEGER NOT NULL DEFAULT 0,"
         " created_at TEXT NOT NULL,"
         " UNIQUE (org, user_id));"
         "CREATE INDEX org_memberships_user ON org_memberships (user_id);"
         "CREATE INDEX org_memberships_email"
         " ON org_memberships (lower(email));"
         "CREATE UNIQUE INDEX org_memberships_invited"
         " ON org_memberships (org, lower(email)) WHERE user_id IS NULL;"
         "CREATE INDEX org_memberships_mail"
         " ON org_memberships (mail_pending);"
         "INSERT INTO org_memberships"
         " (id, org, user_id, email, status, created_at)"
         " SELECT 'ou-' || substr(m.user_id, 6) || substr(o.id, 5), m.org,"
         " m.user_id, u.email, 'active', o.created_at"
         " FROM org_members m JOIN organizations o ON o.name = m.org"
         " JOIN users u ON u.id = m.user_id;"
         "DROP TABLE org_members;"
         "CREATE VIEW org_members AS SELECT org, user_id FROM org_memberships"
         " WHERE status = 'active' AND user_id IS NOT NULL;"},
    /* 21: agent pools, their allowed workspaces and projects, and agent
     * tokens (stored hashed); an agent is a row of the node registry
     * with role 'agent' and its pool and token; a workspace in the agent
     * execution mode names its pool (store_agents.c) */
    {21, "CREATE TABLE agent_pools ("
         " id TEXT PRIMARY KEY,"
         " org TEXT NOT NULL REFERENCES organizations(name)"
         "   ON DELETE CASCADE ON UPDATE CASCADE,"
         " name TEXT NOT NULL,"
         " organization_scoped INTEGER NOT NULL DEFAULT 1,"
         " created_at TEXT NOT NULL,"
         " UNIQUE (org, name));"
         "CREATE TABLE agent_pool_workspaces ("
         " pool_id TEXT NOT NULL REFERENCES agent_pools(id) ON DELETE CASCADE,"
         " workspace_id TEXT NOT NULL REFERENCES workspaces(id)"
         "   ON DELETE CASCADE,"
         " PRIMARY KEY (pool_id, workspace_id));"
         "CREATE INDEX agent_pool_workspaces_ws"
         " ON agent_pool_workspaces (workspace_id);"
         "CREATE TABLE agent_pool_projects ("
         " pool_id TEXT NOT NULL REFERENCES agent_pools(id) ON DELETE CASCADE,"
         " project_id TEXT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,"
         " PRIMARY KEY (pool_id, project_id));"
         "CREATE INDEX agent_pool_projects_prj"
         " ON agent_pool_projects (project_id);"
         "CREATE TABLE agent_tokens ("
         " id TEXT PRIMARY KEY,"
         " pool_id TEXT NOT NULL REFERENCES agent_pools(id) ON DELETE CASCADE,"
         " hash TEXT NOT NULL UNIQUE,"
         " description TEXT NOT NULL DEFAULT '',"
         " created_by TEXT,"
         " created_at TEXT NOT NULL,"
         " last_used_at TEXT);"
         "CREATE INDEX agent_tokens_pool ON agent_tokens (pool_id);"
         "ALTER TABLE nodes ADD COLUMN pool_id TEXT;"
         "ALTER TABLE nodes ADD COLUMN agent_token_id TEXT;"
         "CREATE INDEX nodes_pool ON nodes (pool_id);"
         "CREATE INDEX nodes_agent_token ON nodes (agent_token_id);"
         "ALTER TABLE workspaces ADD COLUMN agent_pool_id TEXT"
         " REFERENCES agent_pools(id);"
         "CREATE INDEX workspaces_agent_pool ON workspaces (agent_pool_id);"},
    /* 22: the teams an invitation will join (store_memberships.c): one
     * row per invited membership and team, moved into team_members when
     * the invitation is accepted; gone with the membership or the team */
    {22, "CREATE TABLE membership_teams ("
         " membership_id TEXT NOT NULL REFERENCES org_memberships(id)"
         "   ON DELETE CASCADE,"
         " team_id TEXT NOT NULL REFERENCES teams(id) ON DELETE CASCADE,"
         " PRIMARY KEY (membership_id, team_id));"
         "CREATE INDEX membership_teams_team ON membership_teams (team_id);"},
    /* 23: how many bytes of its phase's log a job has handed over, so an
     * append sent again after a lost acknowledgement is stored once
     * (store_log_append) */
    {23, "ALTER TABLE jobs ADD COLUMN log_bytes BIGINT NOT NULL DEFAULT 0;"},
    /* 24: a workspace's run list: its page in order without sorting the
     * whole history, and each pending run's place in the queue counted
     * over the pending runs only (store_runs.c RUN_COLS), not over every
     * older run: 56 -> 2.6 ms for 100 pending behind 1,000 done, 19 ->
     * 2 ms for a page of a 10,000-run history (SQLite) */
    {24, "CREATE INDEX runs_ahead ON runs (workspace_id, queue_seq)"
         " WHERE status = 'pending' AND plan_only = 0 AND save_plan = 0;"
         "CREATE INDEX runs_ws_created"
         " ON runs (workspace_id, created_at, queue_seq, id);"},
    /* 25: the change records a primary's read cache polls (read_cache.c;
     * PostgreSQL only): read_cache_pg() */
    {25, NULL},
    /* 26: an organization's workspaces in creation order with their ids,
     * so that a page's ids and its count read only the organization's
     * entries (PostgreSQL planned (org, seq) over the global seq index
     * instead: 0.4 ms for 200 of 1,000 workspaces, 0.07 ms with this) */
    {26, "CREATE INDEX workspaces_org_seq_id ON workspaces (org, seq, id);"
         "DROP INDEX workspaces_org_seq;"},
};

#define NMIGRATIONS ((int)(sizeof(migrations) / sizeof(migrations[0])))
#define ORG_NAME_INDEX_VERSION 11
#define READ_CACHE_VERSION 25

/* A unique index on lower(name) of organizations.  A database may
 * already hold names that differ only in case; a migration must not fail
 * on it, so then the index is left out, a warning names them, and
 * store_orgs.c's check keeps new ones out.  store_migrate() calls this
 * on every start while the index is missing, so it appears once the
 * operator has renamed all but one of each group. */
static tr_err org_name_index(struct db_conn *c, struct arena *a,
                             struct tr_errbuf *eb)
{
    struct db_rows *r = NULL;
    tr_err e = db_q(c, a, &r, eb,
                    "SELECT lower(name) AS lname, count(*) AS n"
                    " FROM organizations GROUP BY lower(name)"
                    " HAVING count(*) > 1 ORDER BY lower(name)", );
    if (e != TR_OK)
        return e;
    if (r->nrows == 0)
        return db_x(c, a, NULL, eb,
                    "CREATE UNIQUE INDEX IF NOT EXISTS organizations_lname"
                    " ON organizations (lower(name))", );
    for (int i = 0; i < r->nrows && i < 20; i++)
        log_warn("%lld organizations are named %s in different case; "
                 "organization names are unique regardless of case from "
                 "now on: rename all but one of them",
                 (long long)db_get_i64(r, i, "n"), db_get(r, i, "lname"));
    return TR_OK;
}

/* Migration READ_CACHE_VERSION: on PostgreSQL, a row in
 * read_cache_changes (the writing transaction's id, a key) beside every
 * change that a cached token lookup or workspace read depends on, written
 * by triggers so that no write path can forget it, and the table of
 * readers whose watermarks bound pruning (read_cache.c).  The keys:
 * "w:<workspace id>" for the workspace row and its runs, configuration
 * versions, state versions, tags and variables; "w*" for a tag renamed or
 * deleted; "t:<token hash>" for a token changed or deleted (not for
 * last_used_at); "t*" for any change of a user or of a team's
 * organization.  SQLite (the demo) has no read cache: nothing. */
static tr_err read_cache_pg(struct db_conn *c, struct arena *a,
                            struct tr_errbuf *eb)
{
    static const char *const sql[] = {
        "CREATE TABLE read_cache_changes (seq BIGSERIAL PRIMARY KEY,"
        " xid xid8 NOT NULL, key TEXT NOT NULL)",
        "CREATE INDEX read_cache_changes_xid ON read_cache_changes (xid)",
        "CREATE TABLE read_cache_readers (id TEXT PRIMARY KEY,"
        " watermark xid8 NOT NULL, seen TIMESTAMPTZ NOT NULL)",
        "CREATE FUNCTION read_cache_ws_changed() RETURNS trigger"
        " LANGUAGE plpgsql AS $f$ BEGIN"
        " INSERT INTO read_cache_changes (xid, key) VALUES"
        " (pg_current_xact_id(), 'w:' || OLD.id);"
        " RETURN NULL; END $f$",
        "CREATE FUNCTION read_cache_child_changed() RETURNS trigger"
        " LANGUAGE plpgsql AS $f$ DECLARE ws TEXT; BEGIN"
        " IF TG_OP = 'DELETE' THEN ws := OLD.workspace_id;"
        " ELSE ws := NEW.workspace_id; END IF;"
        " IF ws IS NOT NULL THEN INSERT INTO read_cache_changes (xid, key)"
        " VALUES"
        " (pg_current_xact_id(), 'w:' || ws); END IF;"
        " RETURN NULL; END $f$",
        "CREATE FUNCTION read_cache_token_changed() RETURNS trigger"
        " LANGUAGE plpgsql AS $f$ BEGIN"
        " INSERT INTO read_cache_changes (xid, key) VALUES"
        " (pg_current_xact_id(), 't:' || OLD.hash);"
        " RETURN NULL; END $f$",
        "CREATE FUNCTION read_cache_all_changed() RETURNS trigger"
        " LANGUAGE plpgsql AS $f$ BEGIN"
        " INSERT INTO read_cache_changes (xid, key) VALUES"
        " (pg_current_xact_id(), TG_ARGV[0]);"
        " RETURN NULL; END $f$",
        "CREATE TRIGGER read_cache AFTER UPDATE OR DELETE ON workspaces"
        " FOR EACH ROW EXECUTE FUNCTION read_cache_ws_changed()",
        "CREATE TRIGGER read_cache AFTER INSERT OR UPDATE OR DELETE ON runs"
        " FOR EACH ROW EXECUTE FUNCTION read_cache_child_changed()",
        "CREATE TRIGGER read_cache AFTER INSERT OR UPDATE OR DELETE"
        " ON configuration_versions"
        " FOR EACH ROW EXECUTE FUNCTION read_cache_child_changed()",
        "CREATE TRIGGER read_cache AFTER UPDATE OR DELETE ON state_versions"
        " FOR EACH ROW EXECUTE FUNCTION read_cache_child_changed()",
        "CREATE TRIGGER read_cache AFTER INSERT OR UPDATE OR DELETE"
        " ON workspace_tags"
        " FOR EACH ROW EXECUTE FUNCTION read_cache_child_changed()",
        "CREATE TRIGGER read_cache AFTER INSERT OR UPDATE OR DELETE"
        " ON variables"
        " FOR EACH ROW EXECUTE FUNCTION read_cache_child_changed()",
        "CREATE TRIGGER read_cache AFTER UPDATE OR DELETE ON tags"
        " FOR EACH ROW EXECUTE FUNCTION read_cache_all_changed('w*')",
        "CREATE TRIGGER read_cache"
        " AFTER UPDATE OF id, kind, subject, hash, description,"
        " created_by, created_at, expired_at OR DELETE"
        " ON tokens FOR EACH ROW EXECUTE FUNCTION read_cache_token_changed()",
        "CREATE TRIGGER read_cache AFTER UPDATE OR DELETE ON users"
        " FOR EACH ROW EXECUTE FUNCTION read_cache_all_changed('t*')",
        "CREATE TRIGGER read_cache AFTER UPDATE OF org OR DELETE ON teams"
        " FOR EACH ROW EXECUTE FUNCTION read_cache_all_changed('t*')",
    };
    if (db_conn_kind(c) != DB_PG)
        return TR_OK;
    for (size_t i = 0; i < sizeof(sql) / sizeof(sql[0]); i++) {
        tr_err e = db_query(c, a, sql[i], 0, NULL, NULL, NULL, eb);
        if (e != TR_OK)
            return e;
    }
    return TR_OK;
}

/* Migrations that need more than SQL. */
static tr_err run_code(struct db_conn *c, struct arena *a, int version,
                       struct tr_errbuf *eb)
{
    switch (version) {
    case ORG_NAME_INDEX_VERSION:
        return org_name_index(c, a, eb);
    case READ_CACHE_VERSION:
        return read_cache_pg(c, a, eb);
    default:
        return tr_fail(eb, TR_ERR_INTERNAL, "no migration %d", version);
    }
}

/* The index of migration ORG_NAME_INDEX_VERSION, if it was left out. */
static tr_err retry_org_name_index(struct db_conn *c, struct arena *a, bool pg,
                                   struct tr_errbuf *eb)
{
    struct db_rows *r = NULL;
    tr_err e = db_q(c, a, &r, eb,
                    pg ? "SELECT 1 FROM pg_indexes"
                         " WHERE indexname = 'organizations_lname'"
                       : "SELECT 1 FROM sqlite_master"
                         " WHERE type = 'index'"
                         " AND name = 'organizations_lname'", );
    if (e != TR_OK || r->nrows > 0)
        return e;
    e = db_begin(c, eb);
    if (e == TR_OK)
        e = org_name_index(c, a, eb);
    if (e == TR_OK)
        e = db_commit(c, eb);
    else
        db_rollback(c);
    return e;
}

/* Splits on ';' (our migrations contain no ';' inside literals). */
static tr_err run_script(struct db_conn *c, struct arena *a, const char *sql,
                         struct tr_errbuf *eb)
{
    char *copy = arena_strdup(a, sql);
    char *save = NULL;
    for (char *s = strtok_r(copy, ";", &save); s != NULL;
         s = strtok_r(NULL, ";", &save)) {
        while (*s == ' ' || *s == '\n')
            s++;
        if (*s == '\0')
            continue;
        tr_err e = db_query(c, a, s, 0, NULL, NULL, NULL, eb);
        if (e != TR_OK)
            return e;
    }
    return TR_OK;
}

int store_schema_latest(void)
{
    return migrations[NMIGRATIONS - 1].version;
}

tr_err store_schema_version(struct db *db, int *version, struct tr_errbuf *eb)
{
    struct db_conn *c = db_acquire(db);
    struct arena *a = arena_new();
    struct db_rows *r = NULL;
    tr_err e =
        db_q(c, a, &r, eb, "SELECT max(version) AS v FROM schema_migrations", );
    if (e == TR_OK)
        *version = r->nrows > 0 ? (int)db_get_i64(r, 0, "v") : 0;
    arena_destroy(a);
    db_release(c);
    return e;
}

tr_err store_migrations_pending(struct db *db, int *pending,
                                struct tr_errbuf *eb)
{
    struct db_conn *c = db_acquire(db);
    struct arena *a = arena_new();
    struct db_rows *r = NULL;
    char last[16];
    snprintf(last, sizeof(last), "%d", migrations[NMIGRATIONS - 1].version);
    tr_err e = db_q(c, a, &r, eb,
                    "SELECT count(*) AS n FROM schema_migrations"
                    " WHERE version <= CAST($1 AS INTEGER)",
                    last);
    if (e == TR_OK)
        *pending = NMIGRATIONS - (int)db_get_i64(r, 0, "n");
    arena_destroy(a);
    db_release(c);
    return e;
}

tr_err store_migrate(struct db *db, struct tr_errbuf *eb)
{
    return store_migrate_to(db, INT_MAX, eb);
}

tr_err store_migrate_to(struct db *db, int upto, struct tr_errbuf *eb)
{
    struct db_conn *c = db_acquire(db);
    struct arena *a = arena_new();
    tr_err e;
    bool pg = db_kind(db) == DB_PG;
    if (pg) {
        e = db_q(c, a, NULL, eb, "SELECT pg_advisory_lock($1)", "7410001");
        if (e != TR_OK)
            goto out;
    }
    e = db_query(c, a,
                 "CREATE TABLE IF NOT EXISTS schema_migrations ("
                 " version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)",
                 0, NULL, NULL, NULL, eb);
    if (e != TR_OK)
        goto unlock;
    for (int i = 0; i < NMIGRATIONS && migrations[i].version <= upto; i++) {
        char ver[16];
        snprintf(ver, sizeof(ver), "%d", migrations[i].version);
        struct db_rows *r = NULL;
        e = db_begin(c, eb);
        if (e != TR_OK)
            goto unlock;
        e = db_q(c, a, &r, eb,
                 "SELECT version FROM schema_migrations WHERE version = $1",
                 ver);
        if (e == TR_OK && r->nrows == 0) {
            log_info("applying schema migration %d", migrations[i].version);
            e = migrations[i].sql != NULL
                    ? run_script(c, a, migrations[i].sql, eb)
                    : run_code(c, a, migrations[i].version, eb);
            if (e == TR_OK)
                e = db_x(c, a, NULL, eb,
                         "INSERT INTO schema_migrations (version, applied_at)"
                         " VALUES ($1, $2)",
                         ver, util_now_iso(a));
        }
        if (e != TR_OK) {
            db_rollback(c);
            goto unlock;
        }
        e = db_commit(c, eb);
        if (e != TR_OK)
            goto unlock;
    }
    if (upto >= ORG_NAME_INDEX_VERSION)
        e = retry_org_name_index(c, a, pg, eb);
unlock:
    if (pg)
        db_q(c, a, NULL, NULL, "SELECT pg_advisory_unlock($1)", "7410001");
out:
    arena_destroy(a);
    db_release(c);
    return e;
}
