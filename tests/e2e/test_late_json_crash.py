"""The node dies right after it reported an auto-apply run's apply
finished, before it begins the JSON plan that apply makes afterwards
(TERRACE_FAULT=executor.late_json:1:kill: SIGKILL at that point).  The
applied run and its state stay; a reader of the JSON plan is told that
it will not come; the workspace takes the next run."""
import json
import os
import sys
import time

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from terrace import Daemon, queue_run  # noqa: E402

from conftest import BACKENDS, TOFU_BIN, Api  # noqa: E402
from conftest import unique  # noqa: E402
from test_remote import wait_status  # noqa: E402

MAIN_TF = b"""
resource "terraform_data" "r" {
  count = %d
  input = "r-${count.index}"
}
"""


def resources(api, ws):
    sv, raw = api.current_state(ws)
    state = json.loads(raw)
    return sv["attributes"]["serial"], sum(
        len(r["instances"]) for r in state["resources"])


@pytest.mark.parametrize("backend", BACKENDS)
def test_crash_before_the_late_json_plan(backend):
    d = Daemon(backend=backend, extra_args=["--tofu-bin", TOFU_BIN],
               env={"TERRACE_FAULT": "executor.late_json:1:kill"})
    try:
        d.start()
        api = Api(d)
        org = api.create_org()
        ws = api.create_workspace(org, unique("late"),
                                  **{"auto-apply": True})["id"]
        run = queue_run(api.c, ws, MAIN_TF % 3)
        d.proc.wait(timeout=180)
        assert d.proc.returncode == -9, d.log_text()[-3000:]
        d.env = None
        d.start()
        api = Api(d)
        # the finish was reported before the kill: nothing of it is lost
        doc = api.c.get("/api/v2/runs/" + run)
        assert doc.status == 200, doc
        assert doc.json["data"]["attributes"]["status"] == "applied", doc
        assert resources(api, ws)[1] == 3
        # the JSON plan will not come, and a reader is told so
        plan = doc.json["data"]["relationships"]["plan"]["data"]["id"]
        t0 = time.monotonic()
        r = api.c.get("/api/v2/plans/%s/json-output" % plan)
        assert r.status == 404, r
        assert "ended without storing it" in \
            r.json["errors"][0]["detail"], r
        assert time.monotonic() - t0 < 30
        # nothing holds the workspace: the next run goes through
        nxt = queue_run(api.c, ws, MAIN_TF % 5)
        wait_status(api, nxt, ("applied",), timeout=120)
        serial, n = resources(api, ws)
        assert n == 5
        assert serial >= 2
        # its JSON plan is made after its apply, as usual
        doc = api.c.get("/api/v2/runs/" + nxt)
        plan = doc.json["data"]["relationships"]["plan"]["data"]["id"]
        r = api.c.get("/api/v2/plans/%s/json-output" % plan)
        assert r.status == 200, r
        assert len(json.loads(r.body)["resource_changes"]) == 5
    finally:
        d.stop()
        d.close()
