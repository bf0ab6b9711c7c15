#!/usr/bin/env python3
"""cluster_load.py - the load half of bench/cluster_scale.sh.

  cluster_load.py rss DIR                  -> JSON {role: [rss kB...]}
  cluster_load.py load DIR RUNS DEADLINE OUT.json

`load` queues RUNS plan-only runs of one tiny configuration through the
cluster's load balancer (DIR is a `terrace cluster up` directory), waits
for all of them to end while sampling, once a second, the resident set
of every node by role and the CPU time of the terraced processes and of
the whole machine, then checks that each run executed exactly once (one
plan job, claimed by a secondary, one "plan of run R started" line in
the secondaries' logs).  OUT.json gets the figures.

SPDX-License-Identifier: MPL-2.0
"""
import collections
import json
import os
import re
import subprocess
import sys
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from run_timing import Api, FINAL, tarball  # noqa: E402

STARTED = re.compile(rb"executor: job \S+: plan of run (\S+) started")
TICK = os.sysconf("SC_CLK_TCK")


def nodes(d):
    with open(os.path.join(d, "nodes")) as f:
        return [(n, int(p), r) for n, p, r, _ in
                (ln.split() for ln in f if ln.strip())]


def rss_kb(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for ln in f:
                if ln.startswith("VmRSS:"):
                    return int(ln.split()[1])
    except OSError:
        pass
    return None


def workers(pid):
    """A secondary's workers: its children running terraced (an idle
    secondary is terraced-idle, which starts terraced for its jobs)."""
    try:
        with open("/proc/%d/task/%d/children" % (pid, pid)) as f:
            kids = [int(k) for k in f.read().split()]
    except OSError:
        return []
    out = []
    for k in kids:
        try:
            if os.path.basename(os.readlink("/proc/%d/exe" % k)) == \
                    "terraced":
                out.append(k)
        except OSError:
            pass
    return out


def rss_by_role(d):
    """{role: [kB per node]}; a node's workers count as the node's."""
    out = collections.defaultdict(list)
    for _, pid, role in nodes(d):
        kb = rss_kb(pid)
        if kb is not None:
            out[role].append(kb + sum(rss_kb(w) or 0 for w in workers(pid)))
    return dict(out)


def cpu_ticks(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            f = f.read().rsplit(")", 1)[1].split()
        return int(f[11]) + int(f[12])  # utime + stime
    except OSError:
        return 0


def machine_ticks():
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    return sum(v), v[3] + v[4]  # total, idle + iowait


def sql(d, query):
    out = subprocess.check_output(
        ["psql", "-At", "-F", "\x1f", "-d",
         "host=%s user=terrace dbname=terrace" % os.path.join(d, "pg"),
         "-c", query], text=True, timeout=60)
    return [ln.split("\x1f") for ln in out.splitlines() if ln]


def read(d, name):
    with open(os.path.join(d, name)) as f:
        return f.read().strip()


def load(d, n, deadline_s, out_path):
    api = Api(read(d, "url"), os.path.join(d, "tls", "ca.pem"),
              read(d, "admin-token"))
    org = "bench-scale"
    api.req("POST", "/api/v2/organizations", {"data": {
        "type": "organizations",
        "attributes": {"name": org, "email": "bench@example.com"}}},
        want=(201,))
    ws = api.req("POST", "/api/v2/organizations/%s/workspaces" % org,
                 {"data": {"type": "workspaces", "attributes": {
                     "name": "ws", "execution-mode": "remote"}}},
                 want=(201,))["data"]["id"]
    cv = api.req("POST", "/api/v2/workspaces/%s/configuration-versions" % ws,
                 {"data": {"type": "configuration-versions", "attributes": {
                     "auto-queue-runs": False, "speculative": True}}},
                 want=(201,))["data"]
    u = urllib.parse.urlsplit(cv["attributes"]["upload-url"])
    api.req("PUT", u.path + ("?" + u.query if u.query else ""),
            raw=tarball())
    procs = [(pid, role) for _, pid, role in nodes(d)
             if role in ("primary", "secondary")]
    cpu0 = sum(cpu_ticks(p) for p, _ in procs)
    mt0 = machine_ticks()
    t0 = time.monotonic()
    runs = []
    for _ in range(n):
        r = api.req("POST", "/api/v2/runs", {"data": {
            "type": "runs", "attributes": {"plan-only": True},
            "relationships": {
                "workspace": {"data": {"type": "workspaces", "id": ws}},
                "configuration-version": {"data": {
                    "type": "configuration-versions", "id": cv["id"]}}}}},
            want=(201,))
        runs.append(r["data"]["id"])
    queued_s = time.monotonic() - t0
    print("queued %d runs in %.1f s" % (n, queued_s), file=sys.stderr)
    peak = collections.defaultdict(int)  # role -> largest one node's
    peak_each = collections.defaultdict(list)
    st = {}
    worker_ticks = {}  # pid -> the last CPU ticks seen of a worker
    while time.monotonic() - t0 < deadline_s:
        for p, _ in procs:
            for w in workers(p):
                worker_ticks[w] = max(worker_ticks.get(w, 0), cpu_ticks(w))
        for role, kbs in rss_by_role(d).items():
            peak[role] = max(peak[role], max(kbs))
            peak_each[role].append(sum(kbs))
        st = dict(sql(d, "SELECT r.id, r.status FROM runs r WHERE"
                         " r.workspace_id = '%s'" % ws))
        # only the runs posted here: a POST retried after its reply was
        # lost (the load balancer cut the session) makes one more
        done = sum(1 for r in runs if st.get(r) in FINAL)
        if done == n:
            break
        time.sleep(1)
    wall = time.monotonic() - t0
    for p, _ in procs:
        for w in workers(p):
            worker_ticks[w] = max(worker_ticks.get(w, 0), cpu_ticks(w))
    # workers' own CPU (sampled each second while they live), not tofu's
    cpu1 = sum(cpu_ticks(p) for p, _ in procs) + sum(worker_ticks.values())
    mt1 = machine_ticks()
    busy = (mt1[0] - mt0[0]) - (mt1[1] - mt0[1])
    counts = collections.Counter(st.get(r, "missing") for r in runs)
    extra = len(set(st) - set(runs))
    print("after %.1f s: %r" % (wall, dict(counts)), file=sys.stderr)

    jobs = sql(d, "SELECT j.run_id, j.phase, j.status, COALESCE(n.role, '-'),"
                  " COALESCE(j.node, '-') FROM jobs j JOIN runs r"
                  " ON r.id = j.run_id LEFT JOIN nodes n ON n.id = j.node"
                  " WHERE r.workspace_id = '%s'" % ws)
    per_run = collections.Counter(j[0] for j in jobs)
    started = collections.Counter()
    ldir = os.path.join(d, "logs")
    for name in os.listdir(ldir):
        if name.startswith("s"):
            with open(os.path.join(ldir, name), "rb") as f:
                for m in STARTED.finditer(f.read()):
                    started[m.group(1).decode()] += 1
    res = {
        "runs": n, "queued_s": round(queued_s, 1), "wall_s": round(wall, 1),
        "statuses": dict(counts), "extra_runs": extra,
        "not_one_job": sum(1 for r in runs if per_run[r] != 1),
        "not_secondary": sum(1 for j in jobs
                             if j[1:4] != ["plan", "done", "secondary"]),
        "started_not_once": sum(1 for r in runs if started[r] != 1),
        "secondaries_used": len({j[4] for j in jobs}),
        "peak_rss_kb": dict(peak),
        "peak_total_rss_kb": {k: max(v) for k, v in peak_each.items()},
        "terraced_cpu_s": round((cpu1 - cpu0) / TICK, 1),
        "machine_busy_cpu_s": round(busy / TICK, 1),
        "machine_cpu_s": round((mt1[0] - mt0[0]) / TICK, 1),
    }
    res["exactly_once"] = (counts.get("planned_and_finished", 0) == n and
                           res["not_one_job"] == 0 and
                           res["not_secondary"] == 0 and
                           res["started_not_once"] == 0)
    with open(out_path, "w") as f:
        json.dump(res, f, indent=1)
    print(json.dumps(res), file=sys.stderr)
    return 0 if res["exactly_once"] else 1


def main():
    a = sys.argv[1:]
    if a[:1] == ["rss"] and len(a) == 2:
        print(json.dumps(rss_by_role(a[1])))
        return 0
    if a[:1] == ["load"] and len(a) == 5:
        return load(a[1], int(a[2]), int(a[3]), a[4])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
