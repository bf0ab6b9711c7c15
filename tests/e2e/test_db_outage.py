"""A PostgreSQL outage longer than a job's lease during a real remote
`tofu apply` (issue 9): the worker keeps tofu running and retries its
heartbeats, the lease reaper does not count the time it could not reach
the database, and the apply ends applied with its state version, all of
its resources in it.

Its own primary on its own throwaway PostgreSQL, with --job-lease 4 so a
10 s outage is well past the lease.  Skipped when TERRACE_E2E_BACKENDS
leaves out pg.

SPDX-License-Identifier: MPL-2.0
"""
import re
import time

import pytest

from conftest import (BACKENDS, TOFU_BIN, Api, Tofu, unique,
                      wait_run_status)
from terrace import Daemon
from test_remote import cloud_block, latest_run

SERVER_500 = re.compile(r" (GET|POST|PATCH|PUT|DELETE) \S+ 500 ")
LEASE = 4
OUTAGE = 10

SLOW = '''
resource "terraform_data" "a" {
  input = "a"
}

resource "terraform_data" "b" {
  input = terraform_data.a.output

  provisioner "local-exec" {
    command = "sleep 24"
  }
}

output "b" {
  value = terraform_data.b.output
}
'''


@pytest.fixture(scope="module")
def pgd():
    if "pg" not in BACKENDS:
        pytest.skip("TERRACE_E2E_BACKENDS leaves out pg")
    d = Daemon(backend="pg", relative=True,
               extra_args=["--tofu-bin", TOFU_BIN,
                           "--job-lease", str(LEASE)])
    try:
        d.start()
    except Exception:
        d.close()
        raise
    yield d
    d.close()


def wait_for(api, run_id, want, timeout=60):
    return wait_run_status(api.c, run_id, want, timeout)[
        "attributes"]["status"]


def test_apply_survives_outage_longer_than_lease(pgd, tmp_path):
    api = Api(pgd)
    org = api.create_org()
    ws = unique("outage")
    data = api.create_workspace(org, ws, **{"execution-mode": "remote"})
    tofu = Tofu(pgd, tmp_path)
    tofu.write(cloud_block(tofu, org, ws) + SLOW)
    tofu.run("init", "-input=false", "-no-color")
    p = tofu.start("apply", "-auto-approve", "-no-color")
    try:
        deadline = time.time() + 60
        run = None
        while run is None and time.time() < deadline:
            rs = api.ok(api.c.get("/api/v2/workspaces/%s/runs" % data["id"]),
                        200).json["data"]
            run = rs[0]["id"] if rs else None
            time.sleep(0.2)
        assert run, "no run was created"
        wait_for(api, run, ("applying",))
        # terraform_data.b is in its 24 s provisioner now: cut the
        # database for longer than the lease, then bring it back
        time.sleep(3)
        pgd.pg_halt()
        time.sleep(OUTAGE)
        pgd.pg_resume()
        res = tofu.finish(p, timeout=180)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert "Apply complete! Resources: 2 added" in res.text, res.text
    run_doc = latest_run(api, data["id"])
    assert run_doc["attributes"]["status"] == "applied", run_doc
    # the state version the apply wrote holds both resources
    r = api.ok(api.c.get("/api/v2/workspaces/%s/current-state-version" %
                         data["id"]), 200)
    names = sorted(x["name"] for x in r.json["data"]["attributes"]
                   ["resources"])
    assert names == ["a", "b"], names
    with open(pgd.tmp + "/terraced.log", "rb") as f:
        log = f.read().decode(errors="replace")
    assert "stopped responding" not in log
    # during the outage the API said 503, never 500
    bad = [ln for ln in log.splitlines() if SERVER_500.search(ln)]
    assert not bad, "\n".join(bad)
