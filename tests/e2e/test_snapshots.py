"""Intermediate state snapshots during a remote apply (issue 9): the
server's X-Terraform-Snapshot-Interval header lets OpenTofu push the state
while an apply is still running, so a worker killed mid-apply loses at
most the work since the last snapshot.  OpenTofu persists an intermediate
snapshot on a state change at least max(server interval, 20 s) after the
previous one (20 s is its own floor, TF_STATE_PERSIST_INTERVAL cannot go
lower), so the configuration creates a resource, then one that takes a
little over 20 s, then one more: the version pushed after the second has
two resources and exists before the apply ends.

SPDX-License-Identifier: MPL-2.0
"""
import time

from conftest import unique
from test_remote import cloud_block, latest_run

STEPS = '''
resource "terraform_data" "a" {
  input = "a"
}

resource "terraform_data" "b" {
  input = terraform_data.a.output

  provisioner "local-exec" {
    command = "sleep 22"
  }
}

resource "terraform_data" "c" {
  input = terraform_data.b.output

  provisioner "local-exec" {
    command = "sleep 4"
  }
}
'''


def state_versions(api, org, ws):
    r = api.ok(api.c.get("/api/v2/state-versions?filter[organization]"
                         "[name]=%s&filter[workspace][name]=%s" % (org, ws)),
               200)
    return r.json["data"]


def names(sv):
    return sorted(x["name"] for x in sv["attributes"]["resources"])


def test_apply_pushes_intermediate_snapshot(tofu, api, org):
    ws = unique("snap")
    data = api.create_workspace(org, ws, **{"execution-mode": "remote"})
    tofu.write(cloud_block(tofu, org, ws) + STEPS)
    tofu.run("init", "-input=false", "-no-color")
    t0 = time.monotonic()
    r = tofu.run("apply", "-auto-approve", "-no-color")
    took = time.monotonic() - t0
    assert "Apply complete! Resources: 3 added" in r.text, r.text
    run = latest_run(api, data["id"])
    assert run["attributes"]["status"] == "applied"
    svs = sorted(state_versions(api, org, ws),
                 key=lambda s: s["attributes"]["serial"])
    print("apply took %.1fs and wrote %d state versions" % (took, len(svs)))
    assert len(svs) >= 2, [names(s) for s in svs]
    # the last is the final state; an earlier one was pushed mid-apply,
    # after a and b were created and before c was
    assert names(svs[-1]) == ["a", "b", "c"]
    assert ["a", "b"] in [names(s) for s in svs[:-1]], \
        [names(s) for s in svs]
