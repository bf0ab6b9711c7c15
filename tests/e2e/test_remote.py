"""End-to-end tests of remote execution: the real OpenTofu CLI with a
cloud block against a workspace in remote execution mode, so plans and
applies run on Terrace's executor and stream back to the terminal.

Covered: plan streams into the terminal; apply answered "yes" applies;
-auto-approve (no apply action sent); "no" discards; destroy; a
configuration error ends errored with the CLI showing it (and a failed
wait for a status prints the run's logs); Ctrl-C during
a long local-exec cancels the run; a speculative plan runs while a
non-speculative run waits; workspace variables and a variable set reach
the run; a sensitive variable's value appears in no log and no API
response; the state written by the run is readable by `tofu output`.

SPDX-License-Identifier: MPL-2.0
"""
import base64
import glob
import hashlib
import json
import os
import re
import signal
import time

import pytest

from conftest import unique, wait_run_status
from terrace import queue_run

CONFIG = '''
variable "v" {
  type    = string
  default = "one"
}

variable "from_ws" {
  type    = string
  default = "unset"
}

variable "from_set" {
  type    = string
  default = "unset"
}

variable "secret" {
  type      = string
  default   = "none"
  sensitive = true
}

resource "terraform_data" "x" {
  input = "${var.v}-${var.from_ws}-${var.from_set}"
}

output "x" {
  value = terraform_data.x.output
}

output "secret_len" {
  value     = length(var.secret)
  sensitive = true
}
'''

# Holds the apply in a provisioner until the test releases it (bounded).
SLOW = '''
resource "terraform_data" "slow" {
  input = var.v

  provisioner "local-exec" {
    command = "sleep 60"
  }
}
'''


def cloud_block(tofu, org, ws):
    return '''
terraform {
  cloud {
    hostname     = "%s"
    organization = "%s"
    workspaces {
      name = "%s"
    }
  }
}
''' % (tofu.host, org, ws)


def runs(api, ws_id):
    r = api.ok(api.c.get("/api/v2/workspaces/%s/runs" % ws_id), 200)
    return r.json["data"]


def latest_run(api, ws_id):
    rs = runs(api, ws_id)
    assert rs, "no runs in the workspace"
    return max(rs, key=lambda r: r["attributes"]["created-at"])


def wait_status(api, run_id, want, timeout=90):
    """The run's document once its status is in want; a failure prints
    the run's plan and apply logs and the daemon log's tail."""
    return wait_run_status(api.c, run_id, want, timeout, lambda: (
        "--- daemon log ---\n" + api.d.log_text()[-3000:]))


@pytest.fixture
def remote(api, org, tofu):
    """A remote-mode workspace and a config pointing at it."""
    ws = unique("rem")
    data = api.create_workspace(org, ws, **{"execution-mode": "remote"})
    tofu.write(cloud_block(tofu, org, ws) + CONFIG)
    tofu.run("init", "-input=false", "-no-color")
    return data


def test_plan_streams_into_terminal(tofu, api, remote):
    r = tofu.run("plan", "-input=false", "-no-color")
    assert "Running plan in the remote backend" in r.text or \
        "Running plan in" in r.text, r.text
    assert "Plan: 1 to add, 0 to change, 0 to destroy" in r.text, r.text
    run = latest_run(api, remote["id"])
    assert run["attributes"]["status"] == "planned_and_finished"


def test_apply_yes_then_output(tofu, api, remote):
    r = tofu.run("apply", "-no-color", input="yes\n")
    assert "Apply complete! Resources: 1 added" in r.text, r.text
    run = latest_run(api, remote["id"])
    assert run["attributes"]["status"] == "applied"
    out = tofu.run("output", "-json")
    assert json.loads(out.out)["x"]["value"] == "one-unset-unset"
    # the workspace is released for the next run
    ws = api.ok(api.c.get("/api/v2/workspaces/" + remote["id"]), 200)
    assert ws.json["data"]["attributes"]["locked"] is False


def test_auto_approve_and_destroy(tofu, api, remote):
    r = tofu.run("apply", "-auto-approve", "-no-color")
    assert "Apply complete!" in r.text, r.text
    # the plan's counts and, once applied, its JSON plans (an auto-apply
    # plan's JSON may be made beside its apply)
    run = latest_run(api, remote["id"])
    plan = run["relationships"]["plan"]["data"]["id"]
    a = api.ok(api.c.get("/api/v2/plans/" + plan), 200).json["data"][
        "attributes"]
    assert a["has-changes"] is True and a["resource-additions"] == 1, a
    assert a["resource-destructions"] == 0, a
    for what in ("json-output", "json-output-redacted"):
        j = api.c.get("/api/v2/plans/%s/%s" % (plan, what))
        assert j.status == 200, j
        changes = json.loads(j.body)["resource_changes"]
        assert [c["change"]["actions"] for c in changes] == [["create"]]
    r = tofu.run("plan", "-detailed-exitcode", "-no-color", rc=0)
    r = tofu.run("destroy", "-auto-approve", "-no-color")
    # remote destroys report like TFE: "Apply complete! ... 1 destroyed."
    assert "1 destroyed" in r.text, r.text
    run = latest_run(api, remote["id"])
    assert run["attributes"]["is-destroy"] is True
    assert run["attributes"]["status"] == "applied"


def test_saved_plan_show_and_apply(tofu, api, remote):
    # `plan -out` saves the run (planned_and_saved); `show` renders it from
    # the run's redacted JSON plan, which needs the provider schemas
    r = tofu.run("plan", "-out=saved.plan", "-no-color")
    assert os.path.exists(os.path.join(tofu.wd, "saved.plan")), r.text
    run = latest_run(api, remote["id"])
    assert run["attributes"]["status"] == "planned_and_saved"
    r = tofu.run("show", "-no-color", "saved.plan")
    assert "terraform_data.x will be created" in r.text, r.text
    assert "Plan: 1 to add, 0 to change, 0 to destroy" in r.text, r.text
    r = tofu.run("apply", "-no-color", "saved.plan")
    assert "Apply complete! Resources: 1 added" in r.text, r.text
    assert latest_run(api, remote["id"])["id"] == run["id"]
    assert api.ok(api.c.get("/api/v2/runs/" + run["id"]), 200).json[
        "data"]["attributes"]["status"] == "applied"


def test_structured_run_output(tofu, api, remote):
    # with structured run output the run writes JSON logs and the CLI
    # renders them and the plan itself (from json-output-redacted)
    api.ok(api.c.patch("/api/v2/workspaces/" + remote["id"], {"data": {
        "type": "workspaces",
        "attributes": {"structured-run-output-enabled": True}}}), 200)
    r = tofu.run("apply", "-auto-approve", "-no-color")
    assert "Apply complete! Resources: 1 added" in r.text, r.text
    assert r.text.count("Plan: 1 to add, 0 to change, 0 to destroy") == 1, \
        r.text
    assert "terraform_data.x will be created" in r.text, r.text
    assert '"@level"' not in r.text and '"type":' not in r.text, r.text
    run = latest_run(api, remote["id"])
    assert run["attributes"]["status"] == "applied"


def test_answer_no_discards(tofu, api, remote, daemon):
    r = tofu.run("apply", "-no-color", input="no\n", rc=1)
    assert "Apply discarded" in r.text or "discarded" in r.text.lower(), \
        r.text
    run = latest_run(api, remote["id"])
    assert run["attributes"]["status"] == "discarded"
    assert api.current_state(remote["id"]) is None
    # the plan's working directory, kept for an apply that will not come
    # (it holds the run's variables), goes with the discard, not 10
    # minutes later
    work = os.path.join(daemon.data_dir, "work")
    deadline = time.time() + 15
    while os.listdir(work) and time.time() < deadline:
        time.sleep(0.1)
    assert os.listdir(work) == []


def test_config_error_errors(tofu, api, remote):
    tofu.write('resource "terraform_data" "bad" { input = nope.x }\n',
               "broken.tf")
    r = tofu.run("plan", "-no-color", rc=1)
    assert "nope" in r.text, r.text
    run = latest_run(api, remote["id"])
    assert run["attributes"]["status"] == "errored"


def test_wait_failure_shows_the_run_logs(api, org):
    """When a wait for a status fails, the message carries the run's plan
    log (read through the API), so a CI failure says why the run
    errored."""
    ws = api.create_workspace(org, unique("bad"))["id"]
    run = queue_run(api.c, ws, b'resource "terraform_data" {\n')
    with pytest.raises(pytest.fail.Exception) as ei:
        wait_status(api, run, ("applied",))
    msg = str(ei.value)
    assert "run %s is errored" % run in msg, msg
    assert "--- plan log of %s ---" % run in msg, msg
    assert "--- apply log of %s ---" % run in msg, msg
    assert "Missing name for resource" in msg, msg
    assert "--- daemon log ---" in msg, msg


def test_ctrl_c_cancels_run(tofu, api, remote):
    tofu.write(SLOW, "slow.tf")
    p = tofu.start("apply", "-auto-approve", "-no-color")
    tofu.bg = [p]
    # wait until the apply is running on the executor
    deadline = time.time() + 90
    run = None
    while time.time() < deadline:
        rs = runs(api, remote["id"])
        if rs and rs[0]["attributes"]["status"] == "applying":
            run = rs[0]
            break
        time.sleep(0.2)
    assert run is not None, "apply never started"
    p.send_signal(signal.SIGINT)
    tofu.finish(p, rc=None, timeout=120)
    done = wait_status(api, run["id"], ("canceled", "errored",
                                        "force_canceled"))
    assert done["attributes"]["status"] == "canceled"


def test_run_token_reaches_only_its_state(tofu, api, remote, org, daemon):
    # the token tofu gets for a run sits in the run's working directory,
    # readable by the code it runs: it must reach only that run's state
    # and state shared with it (as in TFE)
    c = api.c
    other = api.create_workspace(org, unique("oth"))
    path = "/api/v2/workspaces/" + other["id"]
    api.ok(c.post(path + "/actions/lock", {}), 200)
    raw = json.dumps({"version": 4, "serial": 1, "lineage": unique("lin"),
                      "terraform_version": "1.10.0", "outputs": {},
                      "resources": []}).encode()
    api.ok(c.post(path + "/state-versions", {"data": {
        "type": "state-versions", "attributes": {
            "serial": 1, "md5": hashlib.md5(raw).hexdigest(),
            "lineage": json.loads(raw)["lineage"],
            "state": base64.b64encode(raw).decode()}}}), 201)
    api.ok(c.post(path + "/actions/unlock", {}), 200)

    tofu.write(SLOW, "slow.tf")
    p = tofu.start("apply", "-auto-approve", "-no-color")
    tofu.bg = [p]
    ws = "/api/v2/workspaces/" + remote["id"]
    rt, deadline = None, time.time() + 90
    while rt is None and time.time() < deadline:
        rs = runs(api, remote["id"])
        if rs and rs[0]["attributes"]["status"] == "applying":
            # other runs' plan directories may wait for their applies, with
            # tokens that died with their jobs: the live one is this run's
            for rc in glob.glob(os.path.join(daemon.data_dir, "work", "*",
                                             "terraform.rc")):
                m = re.search(r'token\s*=\s*"([^"]+)"', open(rc).read())
                cand = daemon.client(token=m.group(1)) if m else None
                if cand is not None and cand.get(ws).status == 200:
                    rt = cand
        time.sleep(0.2)
    assert rt is not None, "no live run token found while the apply ran"
    # its own workspace, and what the cloud backend asks for
    assert rt.get("/api/v2/organizations/%s/entitlement-set" % org
                  ).status == 200
    assert rt.get("/api/v2/organizations/%s/workspaces/%s" %
                  (org, remote["attributes"]["name"])).status == 200
    # another workspace's state is hidden until it is shared: with this
    # workspace (remote-state-consumers) or with all (global-remote-state)
    assert rt.get(path).status == 404
    assert rt.get(path + "/current-state-version").status == 404
    rel = path + "/relationships/remote-state-consumers"
    me = {"data": [{"type": "workspaces", "id": remote["id"]}]}
    api.ok(c.post(rel, me), 204)
    assert rt.get(path + "/current-state-version").status == 200
    api.ok(c.delete(rel, body=me), 204)
    assert rt.get(path + "/current-state-version").status == 404
    # ...with the workspaces of its project (project-remote-state; both
    # are in the default project), and no longer once it moves out
    api.ok(c.patch(path, {"data": {"type": "workspaces", "attributes": {
        "project-remote-state": True}}}), 200)
    assert rt.get(path + "/current-state-version").status == 200
    prj = api.ok(c.post("/api/v2/organizations/%s/projects" % org, {
        "data": {"type": "projects", "attributes": {
            "name": unique("prj")}}}), 201).json["data"]["id"]
    api.ok(c.patch(path, {"data": {"type": "workspaces", "relationships": {
        "project": {"data": {"type": "projects", "id": prj}}}}}), 200)
    assert rt.get(path + "/current-state-version").status == 404
    api.ok(c.patch(path, {"data": {"type": "workspaces", "attributes": {
        "global-remote-state": True}}}), 200)
    assert rt.get(path + "/current-state-version").status == 200
    # ...and then only to read
    assert rt.post(path + "/actions/lock", {}).status == 404
    assert rt.post(path + "/state-versions", {"data": {
        "type": "state-versions", "attributes": {"serial": 2}}}).status == 404
    # nothing else: runs, variables, settings, other organizations, admin
    for method, url, body in (
            ("post", "/api/v2/runs", {"data": {"type": "runs"}}),
            ("get", ws + "/vars", None),
            ("post", ws + "/vars", {"data": {"type": "vars"}}),
            ("patch", ws, {"data": {"type": "workspaces",
                                    "attributes": {"auto-apply": True}}}),
            ("get", "/api/v2/organizations", None),
            ("get", "/api/v2/organizations/%s/varsets" % org, None),
            ("get", "/api/v2/admin/users", None),
            ("get", "/api/v2/account/details", None)):
        f = getattr(rt, method)
        resp = f(url, body) if body is not None else f(url)
        assert resp.status == 404, (method, url, resp)
    # settings and variables were not touched
    w = api.ok(c.get(ws), 200).json["data"]["attributes"]
    assert w["auto-apply"] is False
    p.send_signal(signal.SIGINT)
    tofu.finish(p, rc=None, timeout=120)


def test_speculative_plan_while_run_queued(tofu, api, remote):
    # hold the workspace with a run waiting for confirmation
    c = api.c
    cv = api.ok(c.post("/api/v2/workspaces/%s/configuration-versions" %
                       remote["id"],
                       {"data": {"type": "configuration-versions",
                                 "attributes": {"auto-queue-runs": False}}}),
                201).json["data"]
    import io
    import tarfile
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        body = CONFIG.encode()
        info = tarfile.TarInfo("main.tf")
        info.size = len(body)
        tf.addfile(info, io.BytesIO(body))
    api.ok(c.put(cv["attributes"]["upload-url"], raw=buf.getvalue()), 200)

    def new_run():
        return api.ok(c.post("/api/v2/runs", {"data": {
            "type": "runs", "attributes": {},
            "relationships": {
                "workspace": {"data": {"type": "workspaces",
                                       "id": remote["id"]}},
                "configuration-version": {"data": {
                    "type": "configuration-versions", "id": cv["id"]}}}}}),
            201).json["data"]
    first = new_run()
    wait_status(api, first["id"], ("planned",))
    second = new_run()
    assert second["attributes"]["status"] == "pending"
    # a speculative plan from the CLI runs while `second` waits
    r = tofu.run("plan", "-no-color")
    assert "Plan: 1 to add" in r.text, r.text
    sec = api.ok(c.get("/api/v2/runs/" + second["id"]), 200).json["data"]
    assert sec["attributes"]["status"] == "pending"
    api.ok(c.post("/api/v2/runs/%s/actions/discard" % first["id"], {}), 202)
    wait_status(api, second["id"], ("planned",))
    api.ok(c.post("/api/v2/runs/%s/actions/discard" % second["id"], {}), 202)


def test_variables_reach_the_run_and_secrets_stay_secret(tofu, api, remote,
                                                         org, daemon):
    c = api.c
    secret = "s3cr3t-" + unique("val")
    for key, value, sens in (("from_ws", "wsval", False),
                             ("secret", secret, True)):
        api.ok(c.post("/api/v2/workspaces/%s/vars" % remote["id"], {
            "data": {"type": "vars", "attributes": {
                "key": key, "value": value, "category": "terraform",
                "sensitive": sens}}}), 201)
    vs = api.ok(c.post("/api/v2/organizations/%s/varsets" % org, {
        "data": {"type": "varsets", "attributes": {
            "name": unique("set"), "global": False},
            "relationships": {"workspaces": {"data": [
                {"type": "workspaces", "id": remote["id"]}]}}}}),
        201).json["data"]
    api.ok(c.post("/api/v2/varsets/%s/relationships/vars" % vs["id"], {
        "data": {"type": "vars", "attributes": {
            "key": "from_set", "value": "setval",
            "category": "terraform"}}}), 201)
    r = tofu.run("apply", "-auto-approve", "-no-color")
    assert "Apply complete!" in r.text, r.text
    out = json.loads(tofu.run("output", "-json").out)
    assert out["x"]["value"] == "one-wsval-setval"
    assert out["secret_len"]["value"] == len(secret)
    # the value never shows in the CLI's stream, the run logs, any API
    # response about the run, or the daemon's own log
    assert secret not in r.text
    run = latest_run(api, remote["id"])
    full = api.ok(c.get("/api/v2/runs/%s?include=plan,apply" % run["id"]),
                  200)
    assert secret.encode() not in full.body
    for inc in full.json.get("included", []):
        url = inc["attributes"].get("log-read-url")
        if url:
            sep = "&" if "?" in url else "?"
            logs = api.ok(c.get(url + sep + "offset=0&limit=10000000"), 200)
            assert secret.encode() not in logs.body
    outs = api.ok(c.get("/api/v2/workspaces/%s/current-state-version-outputs"
                        % remote["id"]), 200)
    assert secret.encode() not in outs.body
    vars_ = api.ok(c.get("/api/v2/workspaces/%s/vars" % remote["id"]), 200)
    assert secret.encode() not in vars_.body
    assert secret not in daemon.log_text()
    # nor is it at rest in the clear anywhere in the data directory: every
    # stored object (the saved plan holds every variable's value; state,
    # logs, configuration) is sealed; work/ holds a job's files only while
    # the job runs
    keys = daemon.blob_keys("")
    assert "runs/%s/plan.tfplan" % run["id"] in keys
    for k in keys:
        body = daemon.blob_read(k)
        assert body[:4] == b"TRB1", k
        assert secret.encode() not in body, k
    work = os.path.join(daemon.data_dir, "work")
    leaks = []
    for root, dirs, files in os.walk(daemon.data_dir):
        dirs[:] = [d for d in dirs if os.path.join(root, d) != work]
        for name in files:
            try:
                with open(os.path.join(root, name), "rb") as f:
                    if secret.encode() in f.read():
                        leaks.append(os.path.join(root, name))
            except OSError:
                pass
    assert leaks == []
