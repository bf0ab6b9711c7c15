"""Failures made on purpose in a real daemon (TERRACE_FAULT=site:n, see
src/core/fault.h): every 5xx leaves its cause in the server log with the
request id the response carries; a configuration upload whose run cannot
be queued fails instead of answering 200 without its run."""
import os
import re

import pytest

from conftest import unique
from terrace import Daemon
from test_runs import API, make_ws, tgz


def backend():
    return os.environ.get("TERRACE_TEST_BACKEND", "sqlite")


def start(fault):
    return Daemon(backend=backend(), extra_args=["--executors", "0"],
                  env={"TERRACE_FAULT": fault}).start()


def new_org(c):
    name = unique("org")
    r = c.post(API + "/organizations", {"data": {
        "type": "organizations",
        "attributes": {"name": name, "email": "o@example.com"}}})
    assert r.status == 201, r
    return name


def full_log(d):
    with open(os.path.join(d.tmp, "terraced.log"), "rb") as f:
        return f.read().decode(errors="replace")


@pytest.fixture
def auth_fault():
    d = start("auth.lookup:2")
    yield d
    d.close()


def test_5xx_logs_cause_with_request_id(auth_fault):
    d = auth_fault
    c = d.client()
    assert c.get(API + "/account/details").status == 200
    r = c.get(API + "/account/details")  # the 2nd token lookup fails
    assert r.status == 500, r
    rid = r.headers.get("X-Request-Id")
    assert rid and re.fullmatch(r"[0-9a-f]{16}", rid), r.headers
    err = r.json["errors"][0]
    assert err["status"] == "500" and "request id" in err["detail"], r
    assert "injected fault" not in r.body.decode()  # cause stays inside
    lines = [ln for ln in full_log(d).splitlines()
             if "rid=%s" % rid in ln]
    cause = [ln for ln in lines if "injected fault" in ln]
    assert cause, lines
    assert "/api/v2/account/details" in cause[0] and " 500 " in cause[0]
    assert c.get(API + "/account/details").status == 200  # one-shot


@pytest.fixture
def queue_fault():
    d = start("run.autoqueue:1")
    yield d
    d.close()


def runs_of(c, ws):
    r = c.get("%s/workspaces/%s/runs" % (API, ws))
    assert r.status == 200, r
    return r.json["data"]


def test_upload_fails_when_its_run_cannot_queue(queue_fault):
    d = queue_fault
    c = d.client()
    ws = make_ws(c, new_org(c))
    r = c.post("%s/workspaces/%s/configuration-versions" % (API, ws),
               {"data": {"type": "configuration-versions",
                         "attributes": {"auto-queue-runs": True}}})
    assert r.status == 201, r
    cv = r.json["data"]["id"]
    url = r.json["data"]["attributes"]["upload-url"]
    u = c.put(url, raw=tgz(), token=None)
    # the run could not be queued: the upload fails, with a message a
    # person can act on, and no half-done upload is left visible
    assert u.status >= 500, u
    err = u.json["errors"][0]
    assert err["status"] == str(u.status) and "upload it again" in \
        err["detail"], u
    assert runs_of(c, ws) == []
    got = c.get("%s/configuration-versions/%s" % (API, cv)).json["data"]
    assert got["attributes"]["status"] == "pending", got
    assert "uploaded-at" not in got["attributes"]["status-timestamps"]
    assert "cannot queue a run for %s" % cv in full_log(d)
    # the same upload URL again: stored, and its run is queued
    u = c.put(url, raw=tgz(), token=None)
    assert u.status == 200, u
    runs = runs_of(c, ws)
    assert len(runs) == 1, runs
    assert runs[0]["relationships"]["configuration-version"]["data"][
        "id"] == cv
    got = c.get("%s/configuration-versions/%s" % (API, cv)).json["data"]
    assert got["attributes"]["status"] == "uploaded", got
