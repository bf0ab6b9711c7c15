"""The basic workflow with pytfe, HashiCorp's Python SDK, unpatched: run by
test_pytfe.py with the interpreter of the venv scripts/deps.sh installs it
into, against a daemon whose address, token and CA come from TFE_ADDRESS,
TFE_TOKEN and SSL_CERT_FILE.

organization, organization token, project, workspace (create and update:
pytfe sends "vcs-repo": {} on both), key/value tag bindings, variables,
configuration upload, a run planned by the daemon's tofu, its JSON plan
through the run-level alias, apply, outputs.  Prints one JSON object of
what it saw on stdout; any exception fails the test with its traceback.

Usage: python pytfe_workflow.py ORG CONFIG_DIR

SPDX-License-Identifier: MPL-2.0
"""
import json
import os
import sys
import time

from pytfe import TFEClient, TFEConfig
from pytfe.models import (CategoryType, ConfigurationVersion,
                          ConfigurationVersionCreateOptions,
                          OrganizationCreateOptions, ProjectCreateOptions,
                          RunApplyOptions, RunCreateOptions, TagBinding,
                          VariableCreateOptions, Workspace,
                          WorkspaceAddTagBindingsOptions,
                          WorkspaceCreateOptions, WorkspaceUpdateOptions)

TIMEOUT = 120


def wait(what, fn, want, bad=()):
    deadline = time.time() + TIMEOUT
    while time.time() < deadline:
        got = fn()
        if got in want:
            return got
        if got in bad:
            raise AssertionError("%s is %s" % (what, got))
        time.sleep(0.5)
    raise AssertionError("%s did not reach %s" % (what, want))


def main():
    org_name, config_dir = sys.argv[1], sys.argv[2]
    seen = {}
    cfg = TFEConfig(address=os.environ["TFE_ADDRESS"],
                    token=os.environ["TFE_TOKEN"],
                    ca_bundle=os.environ["SSL_CERT_FILE"], max_retries=0)
    with TFEClient(cfg) as tfe:
        org = tfe.organizations.create(OrganizationCreateOptions(
            name=org_name, email="pytfe@example.com"))
        seen["org"] = org.name

        tok = tfe.organization_tokens.create(org_name)
        ocfg = TFEConfig(address=cfg.address, token=tok.token,
                         ca_bundle=cfg.ca_bundle, max_retries=0)
        with TFEClient(ocfg) as as_org:
            seen["org_token_reads"] = as_org.organizations.read(org_name).name

        prj = tfe.projects.create(org_name, ProjectCreateOptions(
            name="pytfe-project"))
        ws = tfe.workspaces.create(org_name, WorkspaceCreateOptions(
            name="pytfe-ws", project=prj, description="made by pytfe"))
        seen["ws_project"] = ws.project.id if ws.project else None
        ws = tfe.workspaces.update("pytfe-ws", WorkspaceUpdateOptions(
            name="pytfe-ws", description="changed by pytfe"),
            organization=org_name)
        seen["ws_description"] = ws.description
        tfe.workspaces.add_tag_bindings(ws.id, WorkspaceAddTagBindingsOptions(
            tag_bindings=[TagBinding(key="env", value="e2e")]))
        seen["tag_bindings"] = {b.key: b.value for b in
                                tfe.workspaces.list_tag_bindings(ws.id)}

        tfe.variables.create(ws.id, VariableCreateOptions(
            key="greeting", value="hello from pytfe",
            category=CategoryType.TERRAFORM))
        tfe.variables.create(ws.id, VariableCreateOptions(
            key="SECRET_TOKEN", value="s3cr3t-pytfe",
            category=CategoryType.ENV, sensitive=True))
        seen["vars"] = sorted(v.key for v in tfe.variables.list(ws.id))

        cv = tfe.configuration_versions.create(
            ws.id, ConfigurationVersionCreateOptions(auto_queue_runs=False))
        tfe.configuration_versions.upload(cv.upload_url, config_dir)
        wait("configuration version",
             lambda: str(tfe.configuration_versions.read(cv.id).status
                         .value), ("uploaded",), ("errored",))

        # by id, as pytfe's documentation does: a whole model does not
        # serialise (its datetimes)
        run = tfe.runs.create(RunCreateOptions(
            workspace=Workspace(id=ws.id),
            configuration_version=ConfigurationVersion(id=cv.id),
            message="pytfe run"))
        status = wait("run", lambda: str(tfe.runs.read(run.id).status.value),
                      ("planned",), ("errored", "canceled", "discarded"))
        seen["planned"] = status
        plan = tfe.plans.read_json_output_for_run(run.id)
        seen["plan_changes"] = sorted(
            c["address"] for c in plan.get("resource_changes", []))
        tfe.runs.apply(run.id, RunApplyOptions(comment="apply from pytfe"))
        seen["applied"] = wait(
            "run", lambda: str(tfe.runs.read(run.id).status.value),
            ("applied",), ("errored", "canceled", "discarded"))

        outs = {o.name: o.value for o in
                tfe.state_version_outputs.read_current(ws.id)}
        seen["outputs"] = outs

        tfe.workspaces.delete("pytfe-ws", organization=org_name)
        tfe.organizations.delete(org_name)
    print(json.dumps(seen))


if __name__ == "__main__":
    main()
