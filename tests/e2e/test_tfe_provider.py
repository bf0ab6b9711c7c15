"""The tfe provider (terraform-provider-tfe v0.79.0), unpatched, driven by
the real tofu against terraced: it manages an organization, a project
and a workspace with key/value tags, the workspace's settings
(tfe_workspace_settings sends "agent-pool-id": ""), variables, a
variable set applied to the workspace, and the second plan is clean;
then the tfe_outputs data source reads the workspace's outputs, sensitive
ones included, and the plan stays clean; destroy removes it all.

The provider cannot come from the Go module proxy (it refuses it): it is
built outside the project from a snapshot of its repository and cached
like tofu, at $TERRACE_CACHE/terraform-provider-tfe-0.79.0/
terraform-provider-tfe_v0.79.0 (or TERRACE_TFE_PROVIDER_BIN).  Without
it the test skips and says so.  tofu finds it through a filesystem
mirror; nothing is downloaded.

A second test manages the organization's people and hooks: teams with
organization access, team access to a workspace (write, and custom
permissions) and to a project (maintain, and custom), team tokens (the
legacy one and one with a description), an e-mail invitation
(tfe_organization_membership), a generic and an email notification
configuration, an agent pool (then scoped to the workspace) with an
agent token.  The invitation joins teams in the same apply
(tfe_team_organization_member, tfe_team_organization_members, as in the
provider's documentation); the invited user accepts through the API,
the plan stays clean, and then the user joins a team by username
(tfe_team_members).
After each apply (create, members, changes in place, data sources
reading it all back) the plan is clean; destroy removes it all.

SPDX-License-Identifier: MPL-2.0
"""
import base64
import hashlib
import json
import os

import pytest

from conftest import CACHE, unique

VERSION = "0.79.0"
PROVIDER_BIN = os.environ.get(
    "TERRACE_TFE_PROVIDER_BIN",
    os.path.join(CACHE, "terraform-provider-tfe-" + VERSION,
                 "terraform-provider-tfe_v" + VERSION))

MAIN = '''
terraform {
  required_providers {
    tfe = {
      source  = "hashicorp/tfe"
      version = "%(version)s"
    }
  }
}

provider "tfe" {
  hostname = "%(host)s"
  token    = "%(token)s"
}

resource "tfe_organization" "o" {
  name  = "%(org)s"
  email = "e2e@example.com"
}

resource "tfe_project" "p" {
  organization = tfe_organization.o.name
  name         = "e2e-project"
  description  = "managed by the tfe provider"
  tags = {
    cost = "42"
    env  = "dev"
  }
}

resource "tfe_workspace" "w" {
  organization = tfe_organization.o.name
  name         = "e2e-ws"
  project_id   = tfe_project.p.id
  description  = "managed by the tfe provider"
  tag_names    = ["legacy"]
  tags = {
    env = "prod"
    app = "web"
  }
}

resource "tfe_workspace_settings" "s" {
  workspace_id   = tfe_workspace.w.id
  execution_mode = "local"
}

resource "tfe_variable" "greeting" {
  workspace_id = tfe_workspace.w.id
  key          = "greeting"
  value        = "hello"
  category     = "terraform"
  description  = "a plain variable"
}

resource "tfe_variable" "secret" {
  workspace_id = tfe_workspace.w.id
  key          = "SECRET_TOKEN"
  value        = "s3cr3t-provider"
  category     = "env"
  sensitive    = true
}

resource "tfe_variable_set" "vs" {
  organization = tfe_organization.o.name
  name         = "e2e-set"
  description  = "shared values"
}

resource "tfe_variable" "region" {
  variable_set_id = tfe_variable_set.vs.id
  key             = "region"
  value           = "eu-west-1"
  category        = "terraform"
}

resource "tfe_workspace_variable_set" "wvs" {
  workspace_id    = tfe_workspace.w.id
  variable_set_id = tfe_variable_set.vs.id
}
'''

OUTPUTS = '''
data "tfe_outputs" "w" {
  organization = tfe_organization.o.name
  workspace    = tfe_workspace.w.name
}

output "greeting" {
  value = data.tfe_outputs.w.nonsensitive_values.greeting
}

output "numbers" {
  value = data.tfe_outputs.w.nonsensitive_values.numbers
}

output "secret" {
  value     = data.tfe_outputs.w.values.secret
  sensitive = true
}
'''


@pytest.fixture
def provider(tofu, tmp_path):
    """tofu set up to find the provider in a filesystem mirror."""
    if not os.access(PROVIDER_BIN, os.X_OK):
        pytest.skip("terraform-provider-tfe %s is not built: expected at %s "
                    "(build it outside the project from a snapshot of its "
                    "repository, or set TERRACE_TFE_PROVIDER_BIN)" %
                    (VERSION, PROVIDER_BIN))
    plat = "linux_" + ("amd64" if os.uname().machine == "x86_64"
                       else "arm64")
    d = tmp_path / "mirror" / "registry.opentofu.org" / "hashicorp" / \
        "tfe" / VERSION / plat
    d.mkdir(parents=True)
    os.symlink(PROVIDER_BIN, str(d / ("terraform-provider-tfe_v" +
                                      VERSION)))
    with open(tofu.cli_config, "a") as f:
        f.write('provider_installation {\n'
                '  filesystem_mirror {\n    path = "%s"\n'
                '    include = ["registry.opentofu.org/hashicorp/tfe"]\n'
                '  }\n}\n' % (tmp_path / "mirror"))
    return tofu


def plan_is_clean(tofu):
    r = tofu.run("plan", "-detailed-exitcode", "-no-color", "-input=false",
                 rc=None)
    assert r.rc == 0, tofu.report(r, r.log_path,
                                  "the second plan is not clean")


def put_state(api, ws_id, outputs):
    c = api.c
    path = "/api/v2/workspaces/" + ws_id
    raw = json.dumps({"version": 4, "serial": 1, "lineage": unique("lin"),
                      "terraform_version": "1.10.0", "outputs": outputs,
                      "resources": []}).encode()
    api.ok(c.post(path + "/actions/lock", {}), 200)
    api.ok(c.post(path + "/state-versions", {"data": {
        "type": "state-versions", "attributes": {
            "serial": 1, "md5": hashlib.md5(raw).hexdigest(),
            "lineage": json.loads(raw)["lineage"],
            "state": base64.b64encode(raw).decode()}}}), 201)
    api.ok(c.post(path + "/actions/unlock", {}), 200)


def test_provider_manages_and_plans_clean(provider, api, daemon):
    tofu = provider
    org = unique("prov")
    main = MAIN % {"version": VERSION, "host": tofu.host,
                   "token": daemon.admin_token, "org": org}
    tofu.write(main)
    tofu.run("init", "-no-color", "-input=false")
    tofu.run("apply", "-auto-approve", "-no-color", "-input=false")
    try:
        plan_is_clean(tofu)

        # what the provider made is what the API holds
        ws = api.workspace(org, "e2e-ws")
        assert ws is not None
        wid = ws["id"]
        a = ws["attributes"]
        assert a["execution-mode"] == "local" and a["tag-names"] == [
            "legacy"]
        c = api.c
        eff = api.ok(c.get("/api/v2/workspaces/%s/effective-tag-bindings"
                           % wid), 200).json["data"]
        assert {b["attributes"]["key"]: b["attributes"]["value"]
                for b in eff} == {"env": "prod", "app": "web", "cost": "42"}
        keys = api.ok(c.get("/api/v2/workspaces/%s/vars" % wid),
                      200).json["data"]
        assert sorted(v["attributes"]["key"] for v in keys) == [
            "SECRET_TOKEN", "greeting"]
        o = api.ok(c.get("/api/v2/organizations/" + org), 200).json["data"]
        assert o["attributes"]["session-timeout"] is None

        # tfe_outputs reads the workspace's outputs
        put_state(api, wid, {
            "greeting": {"value": "hello", "type": "string"},
            "numbers": {"value": [1, 2.5], "type": ["tuple", ["number",
                                                              "number"]]},
            "secret": {"value": "s3cr3t-output", "type": "string",
                       "sensitive": True},
        })
        tofu.write(main + OUTPUTS)
        tofu.run("apply", "-auto-approve", "-no-color", "-input=false")
        out = json.loads(tofu.run("output", "-json", "-no-color").out)
        assert out["greeting"]["value"] == "hello"
        assert out["numbers"]["value"] == [1, 2.5]
        assert out["secret"]["value"] == "s3cr3t-output"
        plan_is_clean(tofu)
    finally:
        tofu.run("destroy", "-auto-approve", "-no-color", "-input=false")
    assert api.c.get("/api/v2/organizations/" + org).status == 404


PEOPLE = MAIN.split('resource "tfe_workspace_settings"')[0] + '''
resource "tfe_team" "dev" {
  organization = tfe_organization.o.name
  name         = "developers"
  visibility   = "organization"
  organization_access {
    read_workspaces   = true
    read_projects     = true
    manage_membership = true
  }
}

resource "tfe_team" "ops" {
  organization                  = tfe_organization.o.name
  name                          = "ops"
  allow_member_token_management = false
}

resource "tfe_team_access" "write" {
  access       = "write"
  team_id      = tfe_team.dev.id
  workspace_id = tfe_workspace.w.id
}

resource "tfe_team_access" "custom" {
  team_id      = tfe_team.ops.id
  workspace_id = tfe_workspace.w.id
  permissions {
    runs              = "plan"
    variables         = "read"
    state_versions    = "read-outputs"
    sentinel_mocks    = "none"
    workspace_locking = true
    run_tasks         = false
  }
}

resource "tfe_team_project_access" "maintain" {
  access     = "maintain"
  team_id    = tfe_team.dev.id
  project_id = tfe_project.p.id
}

resource "tfe_team_project_access" "custom" {
  access     = "custom"
  team_id    = tfe_team.ops.id
  project_id = tfe_project.p.id
  project_access {
    settings = "read"
    teams    = "none"
  }
  workspace_access {
    runs           = "plan"
    variables      = "read"
    state_versions = "read"
    create         = false
    locking        = true
  }
}

resource "tfe_team_token" "t" {
  team_id = tfe_team.dev.id
}

resource "tfe_organization_membership" "m" {
  organization = tfe_organization.o.name
  email        = "%(email)s"
}

resource "tfe_notification_configuration" "n" {
  name             = "e2e-hook"
  destination_type = "generic"
  enabled          = false
  url              = "http://127.0.0.1:9/hook"
  triggers         = ["run:completed", "run:errored"]
  workspace_id     = tfe_workspace.w.id
}

resource "tfe_agent_pool" "ap" {
  organization        = tfe_organization.o.name
  name                = "e2e-pool"
  organization_scoped = true
}

resource "tfe_agent_token" "at" {
  agent_pool_id = tfe_agent_pool.ap.id
  description   = "e2e agent"
}
'''

# The invitation joins teams at once, by membership id (as in the
# provider's documentation); by username only after it is accepted.
INVITED_MEMBERS = '''
resource "tfe_team_organization_member" "dev" {
  team_id                    = tfe_team.dev.id
  organization_membership_id = tfe_organization_membership.m.id
}

resource "tfe_team_organization_members" "ops" {
  team_id                     = tfe_team.ops.id
  organization_membership_ids = [tfe_organization_membership.m.id]
}
'''

TEAM_MEMBERS = '''

resource "tfe_team" "readers" {
  organization = tfe_organization.o.name
  name         = "readers"
}

resource "tfe_team_members" "readers" {
  team_id   = tfe_team.readers.id
  usernames = [tfe_organization_membership.m.username]
}
'''

# The third apply changes them in place and adds more.
CHANGES = [
    ('read_projects     = true\n', 'read_projects     = true\n'
     '    manage_workspaces = true\n'),
    ('access       = "write"', 'access       = "read"'),
    ('runs              = "plan"', 'runs              = "apply"'),
    ('runs           = "plan"', 'runs           = "apply"'),
    ('access     = "maintain"', 'access     = "write"'),
    ('enabled          = false', 'enabled          = true'),
    ('"run:completed", "run:errored"]',
     '"run:completed", "run:errored", "run:needs_attention"]'),
    ('"e2e-pool"', '"e2e-pool-2"'),
    ('allow_member_token_management = false',
     'allow_member_token_management = true'),
    ('organization_scoped = true', 'organization_scoped = false'),
]

MORE = '''
resource "tfe_team_token" "ci" {
  team_id     = tfe_team.ops.id
  description = "ci"
  expired_at  = "2099-01-02T03:04:05Z"
}

resource "tfe_agent_pool_allowed_workspaces" "ap" {
  agent_pool_id         = tfe_agent_pool.ap.id
  allowed_workspace_ids = [tfe_workspace.w.id]
}

resource "tfe_notification_configuration" "mail" {
  name             = "e2e-mail"
  destination_type = "email"
  enabled          = true
  email_user_ids   = [tfe_organization_membership.m.user_id]
  triggers         = ["run:errored"]
  workspace_id     = tfe_workspace.w.id
}
'''

# Data sources read back what the resources made.
READS = '''
data "tfe_team" "dev" {
  organization = tfe_organization.o.name
  name         = tfe_team.dev.name
}

data "tfe_organization_membership" "m" {
  organization = tfe_organization.o.name
  email        = tfe_organization_membership.m.email
}

data "tfe_team_access" "custom" {
  team_id      = tfe_team.ops.id
  workspace_id = tfe_workspace.w.id
}

data "tfe_team_project_access" "custom" {
  team_id    = tfe_team.ops.id
  project_id = tfe_project.p.id
}

data "tfe_agent_pool" "ap" {
  organization = tfe_organization.o.name
  name         = tfe_agent_pool.ap.name
}

output "reads" {
  value = {
    team          = data.tfe_team.dev.id
    membership    = data.tfe_organization_membership.m.id
    user          = data.tfe_organization_membership.m.user_id
    username      = data.tfe_organization_membership.m.username
    ws_access     = data.tfe_team_access.custom.access
    ws_runs       = data.tfe_team_access.custom.permissions[0].runs
    prj_access    = data.tfe_team_project_access.custom.access
    prj_settings  = data.tfe_team_project_access.custom.project_access[0].settings
    prj_runs      = data.tfe_team_project_access.custom.workspace_access[0].runs
    pool          = data.tfe_agent_pool.ap.id
    pool_scoped   = data.tfe_agent_pool.ap.organization_scoped
  }
}
'''


def make_user(api):
    """A user (name, email, client holding one of its tokens)."""
    c = api.c
    name = unique("u")
    email = name + "@example.com"
    r = api.ok(c.post("/api/v2/admin/users", {"data": {
        "type": "users", "attributes": {"username": name,
                                        "email": email}}}), 201)
    uid = r.json["data"]["id"]
    r = api.ok(c.post("/api/v2/admin/users/%s/authentication-tokens" % uid,
                      {}), 201)
    return uid, name, email, c.with_token(
        r.json["data"]["attributes"]["token"])


def test_provider_manages_teams_members_and_hooks(provider, api, daemon):
    tofu = provider
    org = unique("ppl")
    uid, uname, email, user = make_user(api)
    main = PEOPLE % {"version": VERSION, "host": tofu.host,
                     "token": daemon.admin_token, "org": org,
                     "email": email}
    main += INVITED_MEMBERS
    tofu.write(main)
    tofu.run("init", "-no-color", "-input=false")
    c = api.c
    try:
        tofu.run("apply", "-auto-approve", "-no-color", "-input=false")
        plan_is_clean(tofu)

        # the invitation is the user's to accept; then it joins teams
        ms = api.ok(c.get("/api/v2/organizations/%s/organization-memberships"
                          "?filter[email]=%s" % (org, email)),
                    200).json["data"]
        assert [m["attributes"]["status"] for m in ms] == ["invited"]
        api.ok(user.post("/api/v2/organization-memberships/%s/actions/accept"
                         % ms[0]["id"], {}), 200)
        plan_is_clean(tofu)
        tofu.write(main + TEAM_MEMBERS)
        tofu.run("apply", "-auto-approve", "-no-color", "-input=false")
        plan_is_clean(tofu)

        # changed in place; a team token with a description, the pool's
        # allowed workspaces, a notification mailed to the member
        for a, b in CHANGES:
            assert a in main, a
            main = main.replace(a, b)
        tofu.write(main + TEAM_MEMBERS + MORE)
        r = tofu.run("apply", "-auto-approve", "-no-color", "-input=false")
        assert "3 added, 8 changed, 0 destroyed" in r.out, r.out
        plan_is_clean(tofu)

        tofu.write(main + TEAM_MEMBERS + MORE + READS)
        tofu.run("apply", "-auto-approve", "-no-color", "-input=false")
        reads = json.loads(tofu.run("output", "-json", "-no-color").out)[
            "reads"]["value"]
        plan_is_clean(tofu)

        # what the provider made is what the API holds
        teams = {t["attributes"]["name"]: t for t in api.ok(c.get(
            "/api/v2/organizations/%s/teams" % org), 200).json["data"]}
        assert set(teams) == {"owners", "developers", "ops", "readers"}
        dev, ops = teams["developers"], teams["ops"]
        oa = dev["attributes"]["organization-access"]
        assert oa["read-workspaces"] and oa["manage-membership"] and \
            not oa["manage-teams"]
        for t in (dev, ops, teams["readers"]):
            assert [u["id"] for u in t["relationships"]["users"]["data"]] \
                == [uid]
        ws = api.workspace(org, "e2e-ws")
        tws = api.ok(c.get("/api/v2/team-workspaces?filter[workspace][id]="
                           + ws["id"]), 200).json["data"]
        acc = {t["relationships"]["team"]["data"]["id"]: t["attributes"]
               for t in tws}
        assert oa["manage-workspaces"]
        assert acc[dev["id"]]["access"] == "read"
        assert acc[ops["id"]]["access"] == "custom"
        assert acc[ops["id"]]["runs"] == "apply"
        assert acc[ops["id"]]["workspace-locking"] is True
        ncs = api.ok(c.get("/api/v2/workspaces/%s/notification-"
                           "configurations" % ws["id"]), 200).json["data"]
        assert sorted((n["attributes"]["name"], n["attributes"]["enabled"],
                       len(n["attributes"]["triggers"])) for n in ncs) == [
            ("e2e-hook", True, 3), ("e2e-mail", True, 1)]
        mail = [n for n in ncs if n["attributes"]["name"] == "e2e-mail"][0]
        assert [u["id"] for u in mail["relationships"]["users"]["data"]] \
            == [uid]
        api.ok(c.get("/api/v2/teams/%s/authentication-token" % dev["id"]),
               200)
        toks = api.ok(c.get("/api/v2/teams/%s/authentication-tokens"
                            % ops["id"]), 200).json["data"]
        assert [t["attributes"]["description"] for t in toks] == ["ci"]
        pools = api.ok(c.get("/api/v2/organizations/%s/agent-pools" % org),
                       200).json["data"]
        assert [p["attributes"]["name"] for p in pools] == ["e2e-pool-2"]
        assert pools[0]["attributes"]["organization-scoped"] is False
        assert [w["id"] for w in pools[0]["relationships"][
            "allowed-workspaces"]["data"]] == [ws["id"]]
        toks = api.ok(c.get("/api/v2/agent-pools/%s/authentication-tokens"
                            % pools[0]["id"]), 200).json["data"]
        assert [t["attributes"]["description"] for t in toks] == [
            "e2e agent"]
        assert reads == {
            "team": dev["id"], "membership": ms[0]["id"], "user": uid,
            "username": uname, "ws_access": "custom", "ws_runs": "apply",
            "prj_access": "custom", "prj_settings": "read",
            "prj_runs": "apply", "pool": pools[0]["id"],
            "pool_scoped": False}
        # the user now sees the organization through its membership
        assert user.get("/api/v2/organizations/" + org).status == 200
    finally:
        tofu.run("destroy", "-auto-approve", "-no-color", "-input=false")
        c.delete("/api/v2/admin/users/" + uid)
    assert c.get("/api/v2/organizations/" + org).status == 404
