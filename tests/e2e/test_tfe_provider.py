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

Teams, team access, organization memberships and notification
configurations are not managed here: Terrace has none of them yet.

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
