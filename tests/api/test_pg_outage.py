"""PostgreSQL restarts under load (issue 9, "found on today's single
primary"): the test PostgreSQL is stopped and started again while clients
keep reading and writing.  Before the outage every request succeeds;
while the database is down a request may only answer 503 with Retry-After
and a JSON:API error (never 500); once it is back every request succeeds
again, on every pooled connection, with no stale connection left to fail
minutes later.  A plan's log is read across the restart as tofu reads it
(its signed URL answers "nothing new yet" during the outage: go-tfe reads
logs without retrying, so a 503 would end `tofu apply`).

Always runs on PostgreSQL (its own throwaway server from tests/lib/pg.sh),
whatever TERRACE_TEST_BACKEND says."""
import threading
import time

import pytest

from conftest import unique
from terrace import Daemon
from test_runs import API, make_cv, make_ws, new_run

POOL = 4


@pytest.fixture(scope="module")
def d():
    dm = Daemon(backend="pg",
                extra_args=["--executors", "0", "--db-pool", str(POOL)])
    dm.start()
    yield dm
    dm.close()


def new_org(c):
    name = unique("org")
    r = c.post(API + "/organizations", {"data": {
        "type": "organizations",
        "attributes": {"name": name, "email": "o@example.com"}}})
    assert r.status == 201, r
    return name


class Load:
    """Threads sending reads and writes until stopped; every answer is kept
    with the time it was sent and received."""

    def __init__(self, c, ws, log_url, threads):
        self.c, self.ws, self.log_url = c, ws, log_url
        self.stop = threading.Event()
        self.seen = []
        self.mu = threading.Lock()
        self.threads = [threading.Thread(target=self.loop, args=(i,))
                        for i in range(threads)]

    def one(self, i, n):
        k = n % 3
        if k == 0:
            return "read", self.c.get("%s/workspaces/%s" % (API, self.ws))
        if k == 1:
            return "write", self.c.patch(
                "%s/workspaces/%s" % (API, self.ws),
                {"data": {"type": "workspaces",
                          "attributes": {"description": "t%d-%d" % (i, n)}}})
        return "log", self.c.get(self.log_url + "?offset=0&limit=64",
                                 token=None)

    def loop(self, i):
        n = 0
        while not self.stop.is_set():
            t0 = time.monotonic()
            kind, r = self.one(i, n)
            with self.mu:
                self.seen.append((t0, time.monotonic(), kind, r))
            n += 1

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for t in self.threads:
            t.join(timeout=120)


def assert_503(r):
    assert r.status == 503, r
    assert r.headers.get("Retry-After", "").isdigit(), r.headers
    err = r.json["errors"][0]
    assert err["status"] == "503" and "database" in err["detail"], r


def workspace_with_plan(c):
    """A workspace and the log-read-url of its queued plan."""
    ws = make_ws(c, new_org(c))
    run = new_run(c, ws, make_cv(c, ws))
    plan = run["relationships"]["plan"]["data"]["id"]
    r = c.get("%s/plans/%s" % (API, plan))
    assert r.status == 200, r
    return ws, r.json["data"]["attributes"]["log-read-url"]


def test_restart_under_load(d):
    c = d.client()
    ws, log_url = workspace_with_plan(c)

    with Load(c, ws, log_url, threads=2) as load:
        time.sleep(1.0)  # load before the outage
        t_down = time.monotonic()
        d.pg_halt()
        time.sleep(2.0)  # the outage: requests keep coming
        d.pg_resume()
        t_up = time.monotonic()
        time.sleep(2.0)  # load after it is back
    # a burst wider than the pool reaches every stale connection
    with Load(c, ws, log_url, threads=2 * POOL) as burst:
        time.sleep(1.5)

    before = [s for s in load.seen if s[1] < t_down]
    during = [s for s in load.seen if s[1] >= t_down and s[0] <= t_up]
    after = [s for s in load.seen if s[0] > t_up] + burst.seen
    assert before and after, (len(before), len(after))
    assert {k for _, _, k, _ in after} == {"read", "write", "log"}
    for _, _, kind, r in before + after:
        assert r.status == 200, (kind, r)
    outage_503 = 0
    for _, _, kind, r in during:
        if kind == "log":
            # tofu reads logs without retrying: "nothing new yet", never
            # an error, and never bytes that are not there
            assert r.status == 200 and r.body == b"\x02", r
        elif r.status != 200:
            assert_503(r)
            outage_503 += 1
    # the outage was seen: with PostgreSQL down nothing can succeed
    assert outage_503 > 0, len(during)

    # the plan log still reads as tofu reads it, and the last write stuck
    r = c.get(log_url + "?offset=0&limit=64", token=None)
    assert r.status == 200 and r.body.startswith(b"\x02"), r
    desc = c.get("%s/workspaces/%s" % (API, ws)).json["data"]["attributes"][
        "description"]
    assert desc.startswith("t"), desc

    # no 500 anywhere, and each 503 left its cause in the server log
    log = open(d.tmp + "/terraced.log", "rb").read().decode(errors="replace")
    assert " 500 " not in log
    assert "database unreachable" in log


def test_writes_after_idle_restart(d):
    """The restart happens while no request runs: every pooled connection
    is stale when the next requests come, and none of them may fail."""
    c = d.client()
    ws, log_url = workspace_with_plan(c)
    d.pg_halt()
    r = c.get("%s/workspaces/%s" % (API, ws))
    assert_503(r)
    d.pg_resume()
    with Load(c, ws, log_url, threads=2 * POOL) as b:
        time.sleep(1.0)
    assert len(b.seen) >= 2 * POOL
    for _, _, kind, r in b.seen:
        assert r.status == 200, (kind, r)
