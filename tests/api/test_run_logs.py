"""Run logs: the signed, token-free log-read-url with STX/ETX framing and
offset/limit slicing (as go-tfe's LogReader reads it), the token routes
/plans/:id/logs and /applies/:id/logs, and refused URLs.

The second half drives whole runs through the daemon's own executor with
a fake `tofu` (a shell script printing plan and apply output), to read
logs that have content: streamed, compacted, sliced at every offset, and
the JSON plans with their secrets removed.  It skips when the daemon does
not run workers yet."""
import hashlib
import json
import os
import stat
import tempfile
import time

import pytest

from conftest import assert_error, unique
from terrace import Daemon
from test_runs import (API, action, make_cv, make_ws, new_run, read,
                       status, wait_status)

STX, ETX = b"\x02", b"\x03"


def backend():
    return os.environ.get("TERRACE_TEST_BACKEND", "sqlite")


@pytest.fixture(scope="module")
def d():
    dm = Daemon(backend=backend(), extra_args=["--executors", "0"])
    dm.start()
    yield dm
    dm.close()


@pytest.fixture(scope="module")
def c(d):
    return d.client()


def new_org(c):
    name = unique("org")
    r = c.post(API + "/organizations", {"data": {
        "type": "organizations",
        "attributes": {"name": name, "email": "o@example.com"}}})
    assert r.status == 201, r
    return name


def log_url(c, phase):
    kind = "plans" if phase.startswith("plan-") else "applies"
    r = c.get("%s/%s/%s" % (API, kind, phase))
    assert r.status == 200, r
    return r.json["data"]["attributes"]["log-read-url"]


def get_log(c, url, offset, limit):
    return c.get("%s?offset=%d&limit=%d" % (url, offset, limit), token=None)


def read_all(c, url, chunk=7, timeout=30):
    """Reads the stream as go-tfe does: advance by what came back, stop at
    ETX.  Returns the whole stream (STX ... ETX)."""
    out, off, deadline = b"", 0, time.time() + timeout
    while time.time() < deadline:
        r = get_log(c, url, off, chunk)
        assert r.status == 200, r
        out += r.body
        off += len(r.body)
        if out.endswith(ETX):
            return out
        if not r.body:
            time.sleep(0.1)
    raise AssertionError("no ETX after %d bytes: %r" % (len(out), out[-80:]))


# ---- runs that never reach a worker ------------------------------------------

def test_queued_log_is_open(c):
    org = new_org(c)
    ws = make_ws(c, org)
    run = new_run(c, ws, make_cv(c, ws))
    plan = run["relationships"]["plan"]["data"]["id"]
    url = log_url(c, plan)
    r = get_log(c, url, 0, 100)
    assert r.status == 200 and r.body == STX, r
    assert r.headers.get("Content-Type", "").startswith("text/plain")
    for off, lim in ((1, 100), (5, 100), (0, 0), (1000, 10)):
        r = get_log(c, url, off, lim)
        assert r.status == 200 and r.body == b"", (off, lim, r)
    r = c.get(url, token=None)  # no offset/limit: from the start
    assert r.status == 200 and r.body == STX
    # with a token, the same bytes
    r = c.get("%s/plans/%s/logs?offset=0&limit=10" % (API, plan))
    assert r.status == 200 and r.body == STX, r


def test_ended_phases_close_the_stream(c):
    org = new_org(c)
    ws = make_ws(c, org)
    run = new_run(c, ws, make_cv(c, ws))
    assert action(c, run["id"], "cancel").status == 202
    plan = run["relationships"]["plan"]["data"]["id"]
    apply_ = run["relationships"]["apply"]["data"]["id"]
    for phase in (plan, apply_):
        url = log_url(c, phase)
        assert get_log(c, url, 0, 100).body == STX + ETX
        assert get_log(c, url, 0, 1).body == STX
        assert get_log(c, url, 1, 1).body == ETX
        assert get_log(c, url, 1, 100).body == ETX
        assert get_log(c, url, 2, 100).body == b""
        assert read_all(c, url, chunk=1) == STX + ETX
    r = c.get("%s/applies/%s/logs" % (API, apply_))
    assert r.status == 200 and r.body == STX + ETX, r


def test_refused_urls(c):
    org = new_org(c)
    ws = make_ws(c, org)
    run = new_run(c, ws, make_cv(c, ws))
    plan = run["relationships"]["plan"]["data"]["id"]
    apply_ = run["relationships"]["apply"]["data"]["id"]
    url = log_url(c, plan)
    base, exp, sig = url.rsplit("/", 2)
    bad_sig = "%s/%s/%s" % (base, exp, ("0" if sig[0] != "0" else "1")
                            + sig[1:])
    longer = "%s/%d/%s" % (base, int(exp) + 1, sig)
    other = url.replace(plan, apply_)
    past = "%s/%d/%s" % (base, 1000, sig)
    for u in (bad_sig, longer, other, past, base + "/x/" + sig):
        assert_error(get_log(c, u, 0, 10), 404)
    for q in ("offset=-1&limit=5", "offset=x&limit=5", "offset=0&limit=-3",
              "offset=0&limit=1e3"):
        assert_error(c.get(url + "?" + q, token=None), 400)
    # the token routes check access
    assert_error(c.get("%s/plans/%s/logs" % (API, plan), token=None), 401)
    assert_error(c.get("%s/plans/%s/logs" % (API, apply_)), 404)
    assert_error(c.get("%s/applies/%s/logs" % (API, plan)), 404)
    assert_error(c.get(API + "/plans/plan-doesnotexist1/logs"), 404)


# ---- whole runs through a fake tofu ------------------------------------------

FAKE_TOFU = r"""#!/bin/sh
# A stand-in for tofu: enough of init, plan, show -json and apply.
case "$1" in
version)
    echo '{"terraform_version":"1.8.0","platform":"linux_amd64"}'
    exit 0 ;;
init)
    echo "Initializing the backend..."
    exit 0 ;;
plan)
    out=""
    for a in "$@"; do
        case "$a" in -out=*) out="${a#-out=}" ;; esac
    done
    i=0
    while [ $i -lt 50 ]; do
        echo "fake plan line $i"
        i=$((i + 1))
    done
    echo "Plan: 1 to add, 0 to change, 0 to destroy."
    printf 'PLANFILE' > "$out"
    exit 0 ;;
show)
    cat <<'EOF'
{"format_version":"1.2","terraform_version":"1.8.0","planned_values":{},
 "variables":{"pw":{"value":"hunter2"}},
 "resource_changes":[{"address":"terraform_data.x","mode":"managed",
  "type":"terraform_data","name":"x",
  "provider_name":"registry.opentofu.org/hashicorp/terraform",
  "change":{"actions":["create"],"before":null,
   "after":{"input":"s3cret"},"after_sensitive":{"input":true}}}]}
EOF
    exit 0 ;;
apply)
    echo "terraform_data.x: Creating..."
    echo "Apply complete! Resources: 1 added, 0 changed, 0 destroyed."
    exit 0 ;;
esac
exit 1
"""


def flow_daemon(env=None):
    """A started daemon whose own executors run a fake tofu, or None
    (stopped) when it runs no workers."""
    tmp = tempfile.mkdtemp(prefix="terrace-fake-tofu-")
    os.chmod(tmp, 0o755)
    tofu = os.path.join(tmp, "tofu")
    with open(tofu, "w") as f:
        f.write(FAKE_TOFU)
    os.chmod(tofu, stat.S_IRWXU | stat.S_IRGRP | stat.S_IXGRP |
             stat.S_IROTH | stat.S_IXOTH)
    dm = Daemon(backend=backend(),
                extra_args=["--executors", "2", "--tofu-bin", tofu], env=env)
    dm.start()
    c = dm.client()
    # a demo node registers --tofu-bin itself; a primary needs the admin API
    r = c.get(API + "/admin/terraform-versions")
    if r.status == 200 and not r.json["data"]:
        sha = hashlib.sha256(open(tofu, "rb").read()).hexdigest()
        r = c.post(API + "/admin/terraform-versions", {"data": {
            "type": "terraform-versions",
            "attributes": {"version": "1.8.0", "path": tofu, "sha": sha,
                           "enabled": True}}})
        assert r.status == 201, r
    org = new_org(c)
    ws = make_ws(c, org)
    run = new_run(c, ws, make_cv(c, ws))["id"]
    deadline = time.time() + 20
    while time.time() < deadline and status(c, run) in ("plan_queued",
                                                         "pending"):
        time.sleep(0.2)
    if status(c, run) in ("plan_queued", "pending"):
        dm.close()
        return None
    dm.flow_org = org
    return dm


@pytest.fixture(scope="module")
def flow():
    dm = flow_daemon()
    if dm is None:
        pytest.skip("the daemon runs no workers yet")
    yield dm, dm.client(), dm.flow_org
    dm.close()


def wait_final(c, run, want, timeout=30):
    wait_status(c, run, want, timeout)


def test_plan_apply_flow(flow):
    dm, c, org = flow
    ws = make_ws(c, org)
    r = c.post("%s/workspaces/%s/vars" % (API, ws), {"data": {
        "type": "vars", "attributes": {"key": "pw", "value": "hunter2",
                                       "category": "terraform",
                                       "sensitive": True}}})
    assert r.status == 201, r
    run = new_run(c, ws, make_cv(c, ws))
    rid = run["id"]
    plan = run["relationships"]["plan"]["data"]["id"]
    apply_ = run["relationships"]["apply"]["data"]["id"]
    url = log_url(c, plan)
    stream = read_all(c, url)
    assert stream.startswith(STX) and stream.endswith(ETX)
    text = stream[1:-1].decode()
    assert "fake plan line 0" in text and "fake plan line 49" in text
    assert "1 to add, 0 to change, 0 to destroy" in text
    # every slice of the compacted log agrees with the whole
    for off in range(0, len(stream) + 2, 13):
        for lim in (1, 5, 64):
            r = get_log(c, url, off, lim)
            assert r.body == stream[off:off + lim], (off, lim)
    wait_final(c, rid, "planned")
    doc = read(c, rid)
    a = doc["data"]["attributes"]
    assert a["has-changes"] is True
    assert "planned-at" in a["status-timestamps"]
    assert "".join(k for k, n in (("a", "is-confirmable"),
                                  ("d", "is-discardable"))
                   if a["actions"][n]) == "ad"
    p = c.get("%s/plans/%s" % (API, plan)).json["data"]["attributes"]
    assert p["status"] == "finished" and p["has-changes"] is True
    assert p["resource-additions"] == 1
    for what in ("json-output", "json-output-redacted"):
        r = c.get("%s/plans/%s/%s" % (API, plan, what),
                  headers={"Accept": "application/json"})
        assert r.status == 200, r
        assert r.headers["Content-Type"].startswith("application/json")
        assert b"hunter2" not in r.body and b"s3cret" not in r.body
        assert "resource_changes" in json.loads(r.body)
    assert "terraform_version" in json.loads(
        c.get("%s/plans/%s/json-output" % (API, plan)).body)
    # confirm: the apply runs and the workspace is let go
    assert action(c, rid, "apply", {"comment": "go"}).status == 202
    wait_final(c, rid, "applied")
    stream = read_all(c, log_url(c, apply_))
    assert b"Apply complete! Resources: 1 added" in stream
    ap = c.get("%s/applies/%s" % (API, apply_)).json["data"]["attributes"]
    assert ap["status"] == "finished" and ap["resource-additions"] == 1
    w = c.get("%s/workspaces/%s" % (API, ws)).json["data"]
    assert w["attributes"]["locked"] is False
    # the applied run stays the workspace's current run, as in TFE
    assert w["relationships"]["current-run"]["data"]["id"] == rid
    # the run token died with the job: no log of the daemon has a secret
    log = open(os.path.join(dm.tmp, "terraced.log"), "rb").read()
    assert b"hunter2" not in log


def test_auto_apply_and_discard_flow(flow):
    dm, c, org = flow
    ws = make_ws(c, org)
    cv = make_cv(c, ws)
    auto = new_run(c, ws, cv, **{"auto-apply": True})["id"]
    wait_final(c, auto, "applied")
    ts = read(c, auto)["data"]["attributes"]["status-timestamps"]
    assert "confirmed-at" in ts and "applied-at" in ts
    manual = new_run(c, ws, cv)["id"]
    wait_final(c, manual, "planned")
    assert action(c, manual, "discard").status == 202
    assert status(c, manual) == "discarded"
    spec = new_run(c, ws, cv, **{"plan-only": True})["id"]
    wait_final(c, spec, "planned_and_finished")
    assert_error(action(c, spec, "apply"), 409)
