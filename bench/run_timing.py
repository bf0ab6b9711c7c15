#!/usr/bin/env python3
"""run_timing.py - helpers for run_overhead.sh and dispatch_latency.sh:
time runs on terraced from the outside (stdlib only).

  run_timing.py dispatch URL CA TOKEN WS_ID N DEADLINE_S OUT.json
      Uploads a one-resource configuration as a speculative configuration
      version, then N times: POST /api/v2/runs (plan-only) and poll
      GET /api/v2/runs/:id every 20 ms until the run is final; it must
      end planned_and_finished.  Runs go one after the other, so the
      queue is empty at each creation.  Stops early (and says so) when
      DEADLINE_S seconds have passed.  Writes each run's client times and
      status-timestamps to OUT.json.

  run_timing.py dispatch-report OUT.json DAEMON_LOG [PERF_TXT DAEMON_PID]
      Markdown table of the dispatch intervals (p50/p90/p99/max/mean, ms)
      from the status-timestamps, the daemon log (claim and executor start
      lines, millisecond timestamps) and, when given, `perf script -F
      pid,time,event,trace` output of sched:sched_process_fork and
      sched:sched_process_exec recorded with -k mono (the first exec of
      bwrap and of tofu by the daemon's descendants after each run).

  run_timing.py runs-report URL CA TOKEN WS_ID COUNT DROP
      Markdown table of where the time of apply runs in the workspace
      went, by their status-timestamps: the COUNT runs before the DROP
      newest ones (the timed runs, not the set-up and checks).

  run_timing.py steps-report PERF_TXT DAEMON_PID OFFSET_MS DAEMON_LOG
      Where the server-side time of the remote apply runs recorded in
      PERF_TXT went: `perf script -F pid,tid,time,event,trace` of the
      sched_process_fork/exec/exit tracepoints (-k mono; OFFSET_MS =
      realtime - monotonic) gives each sandboxed tofu process (bwrap exec
      to exit; the plan job runs init, plan, show -json, the apply job
      init and apply, or only apply in the plan's kept directory), the
      daemon log the run and job events around them.

  run_timing.py cli-timeline DAEMON_LOG
      The requests and run events of the last `tofu apply` in the daemon
      log (from its last POST configuration-versions), with the gaps in
      ms: where the CLI waits.

Percentiles are nearest-rank: pXX is the ceil(XX/100 * n)-th smallest.

SPDX-License-Identifier: MPL-2.0
"""
import datetime
import http.client
import io
import json
import math
import re
import ssl
import sys
import tarfile
import time
import urllib.parse

CONFIG = b'''
resource "terraform_data" "d" {
  input = "dispatch"
}
'''

FINAL = ("planned_and_finished", "applied", "errored", "discarded",
         "canceled", "force_canceled", "policy_soft_failed")


class Api:
    def __init__(self, url, ca, token):
        u = urllib.parse.urlsplit(url)
        self.host, self.port = u.hostname, u.port
        self.ctx = ssl.create_default_context(cafile=ca)
        self.token = token
        self.c = None

    def _conn(self):
        if self.c is None:
            self.c = http.client.HTTPSConnection(
                self.host, self.port, context=self.ctx, timeout=30)
        return self.c

    def req(self, method, path, body=None, raw=None, want=(200,)):
        hdrs = {"Authorization": "Bearer " + self.token,
                "Accept": "application/vnd.api+json"}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            hdrs["Content-Type"] = "application/vnd.api+json"
        elif raw is not None:
            data = raw
            hdrs["Content-Type"] = "application/octet-stream"
        for attempt in (0, 1):
            c = self._conn()
            try:
                c.request(method, path, body=data, headers=hdrs)
                r = c.getresponse()
                out = r.read()
                break
            except (http.client.HTTPException, OSError):
                # a keep-alive connection the server closed: retry once
                c.close()
                self.c = None
                if attempt:
                    raise
        if r.will_close:
            c.close()
            self.c = None
        if r.status not in want:
            raise SystemExit("%s %s -> %d: %s" % (method, path, r.status,
                                                   out[:600]))
        return json.loads(out) if out else None


def iso_ms(s):
    """Epoch milliseconds of an ISO 8601 UTC time (ms or s resolution)."""
    if s is None:
        return None
    s = s.rstrip("Z")
    frac = 0.0
    if "." in s:
        s, f = s.split(".", 1)
        frac = float("0." + f)
    t = datetime.datetime.strptime(s, "%Y-%m-%dT%H:%M:%S").replace(
        tzinfo=datetime.timezone.utc)
    return t.timestamp() * 1000.0 + frac * 1000.0


def resolution(samples):
    """'ms' when some timestamp has a non-zero millisecond part."""
    for s in samples:
        if s and re.search(r"\.\d*[1-9]", s):
            return "ms"
    return "s (no sub-second digits seen)"


def pct(xs, p):
    xs = sorted(xs)
    if not xs:
        return float("nan")
    k = max(1, math.ceil(p / 100.0 * len(xs)))
    return xs[k - 1]


def stats_row(label, xs, note=""):
    if not xs:
        return "| %s | 0 | | | | | | | %s |" % (label, note)
    return "| %s | %d | %.1f | %.1f | %.1f | %.1f | %.1f | %.1f | %s |" % (
        label, len(xs), pct(xs, 50), pct(xs, 90), pct(xs, 99), min(xs),
        max(xs), sum(xs) / len(xs), note)


# ---- dispatch ------------------------------------------------------------

def tarball():
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        info = tarfile.TarInfo("main.tf")
        info.size = len(CONFIG)
        tf.addfile(info, io.BytesIO(CONFIG))
    return buf.getvalue()


def dispatch(url, ca, token, ws, n, deadline_s, out):
    api = Api(url, ca, token)
    cv = api.req("POST", "/api/v2/workspaces/%s/configuration-versions" % ws,
                 {"data": {"type": "configuration-versions",
                           "attributes": {"auto-queue-runs": False,
                                          "speculative": True}}},
                 want=(201,))["data"]
    up = urllib.parse.urlsplit(cv["attributes"]["upload-url"])
    api.req("PUT", up.path + ("?" + up.query if up.query else ""),
            raw=tarball(), want=(200,))
    for _ in range(500):
        st = api.req("GET", "/api/v2/configuration-versions/" +
                     cv["id"])["data"]["attributes"]["status"]
        if st == "uploaded":
            break
        time.sleep(0.01)
    else:
        raise SystemExit("configuration version %s stayed %s" % (cv["id"],
                                                                 st))
    body = {"data": {"type": "runs",
                     "attributes": {"plan-only": True,
                                    "message": "dispatch benchmark"},
                     "relationships": {
                         "workspace": {"data": {"type": "workspaces",
                                                "id": ws}},
                         "configuration-version": {"data": {
                             "type": "configuration-versions",
                             "id": cv["id"]}}}}}
    # realtime - CLOCK_MONOTONIC, to place perf's monotonic timestamps
    offset_ms = (time.time() - time.monotonic()) * 1000.0
    runs = []
    t_end = time.monotonic() + deadline_s
    stopped = None
    for i in range(n):
        if time.monotonic() > t_end:
            stopped = "deadline of %d s reached after %d runs" % (
                deadline_s, i)
            break
        t_send = time.time() * 1000.0
        run = api.req("POST", "/api/v2/runs", body, want=(201,))["data"]
        t_resp = time.time() * 1000.0
        rid = run["id"]
        a = run["attributes"]
        if not a.get("plan-only"):
            raise SystemExit("run %s is not plan-only: %r" % (rid, a))
        give_up = time.monotonic() + 120
        while a["status"] not in FINAL:
            if time.monotonic() > give_up:
                raise SystemExit("run %s stuck in %s" % (rid, a["status"]))
            time.sleep(0.02)
            a = api.req("GET", "/api/v2/runs/" + rid)["data"]["attributes"]
        if a["status"] != "planned_and_finished":
            raise SystemExit("run %s ended %s" % (rid, a["status"]))
        runs.append({"id": rid, "t_send_ms": t_send, "t_resp_ms": t_resp,
                     "created-at": a.get("created-at"),
                     "status-timestamps": a.get("status-timestamps", {})})
    with open(out, "w") as f:
        json.dump({"cv": cv["id"], "requested": n, "stopped": stopped,
                   "mono_offset_ms": offset_ms, "runs": runs}, f)
    print("%d runs%s" % (len(runs), "; " + stopped if stopped else ""))


LOG_LINE = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?Z) ")
CLAIM = re.compile(r"run (run-\S+): plan job (job-\S+) claimed by")
STARTED = re.compile(r"executor: job (job-\S+): plan of run (run-\S+) "
                     r"started")


def log_events(path):
    """{run_id: {"claimed": ms, "started": ms}} from the daemon log."""
    ev = {}
    with open(path, errors="replace") as f:
        for ln in f:
            m = LOG_LINE.match(ln)
            if not m:
                continue
            t = iso_ms(m.group(1))
            c = CLAIM.search(ln)
            if c:
                ev.setdefault(c.group(1), {}).setdefault("claimed", t)
                continue
            s = STARTED.search(ln)
            if s:
                ev.setdefault(s.group(2), {}).setdefault("started", t)
    return ev


# the pid column is the forking process (its threads fork too)
PERF_FORK = re.compile(r"^\s*(\d+)\s+(\d+\.\d+): sched:sched_process_fork: "
                       r".* child_pid=(\d+)")
PERF_EXEC = re.compile(r"^\s*(\d+)\s+(\d+\.\d+): sched:sched_process_exec: "
                       r"filename=(\S+)")


def perf_execs(path, root, offset_ms):
    """[(epoch ms, basename)] of the execs by descendants of pid root in
    `perf script -F pid,time,event,trace` output of sched_process_fork and
    sched_process_exec recorded on CLOCK_MONOTONIC (offset_ms = realtime -
    monotonic)."""
    tree = {root}
    out = []
    with open(path, errors="replace") as f:
        for ln in f:
            m = PERF_FORK.match(ln)
            if m:
                if int(m.group(1)) in tree:
                    tree.add(int(m.group(3)))
                continue
            m = PERF_EXEC.match(ln)
            if m and int(m.group(1)) in tree:
                out.append((float(m.group(2)) * 1000.0 + offset_ms,
                            m.group(3).rsplit("/", 1)[-1]))
    out.sort()
    return out


def dispatch_report(path, daemon_log, perf_txt=None, daemon_pid=None):
    with open(path) as f:
        d = json.load(f)
    runs = d["runs"]
    ev = log_events(daemon_log)
    execs = None
    if perf_txt:
        execs = perf_execs(perf_txt, int(daemon_pid), d["mono_offset_ms"])
    rows = {k: [] for k in ("q2p", "c2p", "send2p", "post", "claim2start",
                            "q2claim_log", "q2bwrap", "q2tofu",
                            "p2tofu", "bw2tofu", "start2bwrap")}
    samples = []
    missing_tofu = 0
    tofu_idx = []  # run number (1-based) of each q2tofu sample
    for i, r in enumerate(runs):
        st = r["status-timestamps"]
        samples += [st.get("plan-queued-at"), st.get("planning-at")]
        q = iso_ms(st.get("plan-queued-at"))
        p = iso_ms(st.get("planning-at"))
        c = iso_ms(r.get("created-at"))
        if q is not None and p is not None:
            rows["q2p"].append(p - q)
        if c is not None and p is not None:
            rows["c2p"].append(p - c)
        if p is not None:
            rows["send2p"].append(p - r["t_send_ms"])
        rows["post"].append(r["t_resp_ms"] - r["t_send_ms"])
        e = ev.get(r["id"], {})
        if "claimed" in e and "started" in e:
            rows["claim2start"].append(e["started"] - e["claimed"])
        if "claimed" in e and q is not None:
            rows["q2claim_log"].append(e["claimed"] - q)
        if execs is not None and q is not None:
            # the daemon's first execs after this run was sent and before
            # the next one was
            end = runs[i + 1]["t_send_ms"] if i + 1 < len(runs) else 1e300
            mine = [x for x in execs if r["t_send_ms"] <= x[0] < end]
            bw = [t for t, b in mine if b == "bwrap"]
            tf = [t for t, b in mine if b == "tofu"]
            if bw:
                rows["q2bwrap"].append(bw[0] - q)
                if "started" in e:
                    rows["start2bwrap"].append(bw[0] - e["started"])
            if tf:
                rows["q2tofu"].append(tf[0] - q)
                tofu_idx.append(i + 1)
                if p is not None:
                    rows["p2tofu"].append(tf[0] - p)
                if bw:
                    rows["bw2tofu"].append(tf[0] - bw[0])
            else:
                missing_tofu += 1
    res = resolution(samples)
    print("| interval | n | p50 | p90 | p99 | min | max | mean | source |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---|")
    print(stats_row("**plan-queued-at → planning-at** (claim)",
                    rows["q2p"], "status-timestamps (%s)" % res))
    print(stats_row("created-at → planning-at", rows["c2p"],
                    "status-timestamps"))
    print(stats_row("client POST sent → planning-at", rows["send2p"],
                    "client clock vs server stamp"))
    print(stats_row("POST /api/v2/runs round trip", rows["post"],
                    "client"))
    print(stats_row("plan-queued-at → \"claimed\" log line",
                    rows["q2claim_log"], "daemon log (ms)"))
    print(stats_row("\"claimed\" → \"executor: job started\" log lines",
                    rows["claim2start"], "daemon log (ms)"))
    if execs is not None:
        print(stats_row("\"executor: job started\" → exec of bwrap "
                        "(tool check, work dir, fork)", rows["start2bwrap"],
                        "daemon log + perf"))
        print(stats_row("plan-queued-at → exec of bwrap (sandbox)",
                        rows["q2bwrap"], "perf sched_process_exec"))
        print(stats_row("**plan-queued-at → exec of tofu** (`tofu init`)",
                        rows["q2tofu"], "perf sched_process_exec"))
        print(stats_row("planning-at → exec of tofu", rows["p2tofu"],
                        "perf sched_process_exec"))
        print(stats_row("exec of bwrap → exec of tofu (sandbox set-up)",
                        rows["bw2tofu"], "perf sched_process_exec"))
        if missing_tofu:
            print("\n%d run(s) had no exec of tofu in the perf record." %
                  missing_tofu)
        if rows["q2tofu"]:
            top = sorted(zip(rows["q2tofu"], tofu_idx), reverse=True)[:3]
            print("\nSlowest plan-queued-at → exec of tofu: " + ", ".join(
                "run #%d %.1f ms" % (n, v) for v, n in top) + ".")
    summary = {k: {"n": len(v), "p50": pct(v, 50), "p99": pct(v, 99)}
               for k, v in rows.items() if v}
    summary["resolution"] = res
    summary["runs"] = len(runs)
    summary["stopped"] = d.get("stopped")
    with open(path + ".summary", "w") as f:
        json.dump(summary, f)


# ---- run overhead ----------------------------------------------------------

def runs_report(url, ca, token, ws, count, drop):
    api = Api(url, ca, token)
    runs = []
    page = 1
    while True:
        doc = api.req("GET", "/api/v2/workspaces/%s/runs?page%%5Bsize%%5D="
                      "100&page%%5Bnumber%%5D=%d" % (ws, page))
        runs += doc["data"]
        nxt = (doc.get("meta", {}).get("pagination", {}) or {}).get(
            "next-page")
        if not nxt:
            break
        page = nxt
    runs.sort(key=lambda r: r["attributes"]["created-at"])
    runs = runs[:len(runs) - drop][-count:]
    rows = {k: [] for k in ("total", "dispatch", "plan", "handoff", "apply")}
    bad = []
    adds = set()
    for r in runs:
        a = r["attributes"]
        st = a["status-timestamps"]
        if a["status"] != "applied":
            bad.append("%s %s" % (r["id"], a["status"]))
            continue
        t = {k: iso_ms(st.get(k)) for k in ("plan-queued-at", "planning-at",
                                            "planned-at", "applying-at",
                                            "applied-at")}
        c = iso_ms(a["created-at"])
        if None in t.values():
            bad.append("%s missing stamps %r" % (r["id"], st))
            continue
        rows["total"].append(t["applied-at"] - c)
        rows["dispatch"].append(t["planning-at"] - t["plan-queued-at"])
        rows["plan"].append(t["planned-at"] - t["planning-at"])
        rows["handoff"].append(t["applying-at"] - t["planned-at"])
        rows["apply"].append(t["applied-at"] - t["applying-at"])
        ap = r["relationships"].get("apply", {}).get("data")
        if ap:
            x = api.req("GET", "/api/v2/applies/" + ap["id"])["data"]
            xa = x["attributes"]
            adds.add((xa.get("resource-additions"),
                      xa.get("resource-changes"),
                      xa.get("resource-destructions")))
    print("| server-side interval (status-timestamps) | n | p50 | p90 | "
          "p99 | min | max | mean | what runs |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---|")
    print(stats_row("created-at → applied-at", rows["total"],
                    "the whole run on the server"))
    print(stats_row("plan-queued-at → planning-at", rows["dispatch"],
                    "job claim"))
    print(stats_row("planning-at → planned-at", rows["plan"],
                    "tofu init + plan (+ show -json unless the apply "
                    "makes it), plan upload"))
    print(stats_row("planned-at → applying-at", rows["handoff"],
                    "auto-apply: apply job queued and claimed"))
    print(stats_row("applying-at → applied-at", rows["apply"],
                    "apply (and tofu init unless in the plan's "
                    "directory), state upload; a JSON plan the plan left "
                    "to it is made after"))
    print()
    print("Applies measured: %d; (added, changed, destroyed) per apply: %s." %
          (len(rows["total"]),
           ", ".join("%s" % (x,) for x in sorted(adds, key=str)) or "none"))
    if bad:
        print("\nRuns not counted: " + "; ".join(bad))
        sys.exit(1)


PERF_EV = re.compile(r"^\s*(\d+)/(\d+)\s+(\d+\.\d+): sched:(sched_process_"
                     r"\w+): (.*)$")
LOG_RUN = re.compile(r"^(\S+Z) info  (?:run (run-\S+): (created|plan job "
                     r"\S+ claimed|apply job \S+ claimed|applied)|executor: "
                     r"job \S+: (plan|apply) (?:of run (run-\S+) started|"
                     r"(finished)))")


def sandboxes(path, root, offset_ms):
    """[(exec ms, exit ms)] of the outer bwrap processes descended from
    pid root, in order, from perf script -F pid,tid,time,event,trace."""
    tree = {root}
    bw = {}
    leaders = {}
    with open(path, errors="replace") as f:
        for ln in f:
            m = PERF_EV.match(ln)
            if not m:
                continue
            pid, tid = int(m.group(1)), int(m.group(2))
            t = float(m.group(3)) * 1000.0 + offset_ms
            ev, rest = m.group(4), m.group(5)
            if ev == "sched_process_fork":
                c = re.search(r"child_pid=(\d+)", rest)
                if pid in tree and c:
                    tree.add(int(c.group(1)))
            elif ev == "sched_process_exec" and pid in tree:
                f = re.search(r"filename=(\S+)", rest)
                name = f.group(1).rsplit("/", 1)[-1] if f else "?"
                # the outer bwrap: its parent is not itself a bwrap
                if name == "bwrap" and pid not in leaders:
                    bw[pid] = [t, None]
                leaders[pid] = name
            elif ev == "sched_process_exit" and pid == tid and pid in bw:
                bw[pid][1] = t
    return sorted(tuple(v) for v in bw.values() if v[1] is not None)


def steps_report(perf_txt, root, offset_ms, daemon_log):
    boxes = sandboxes(perf_txt, int(root), float(offset_ms))
    if not boxes:
        raise SystemExit("no sandboxed process in the perf record")
    t_lo, t_hi = boxes[0][0] - 5000, boxes[-1][1] + 5000
    runs = {}
    order = []
    job_run = {}
    with open(daemon_log, errors="replace") as f:
        for ln in f:
            if "init of an earlier plan of workspace" in ln:
                rid = job_run.get("plan")
                if rid:
                    runs[rid]["plan-memo"] = True
                continue
            if "the apply started beside the plan goes on" in ln:
                # the apply's tofu, started during the plan (warm.c),
                # has read its configuration: the apply step starts here
                rid = job_run.get("apply")
                if rid:
                    runs[rid]["warm-go"] = iso_ms(ln.split()[0])
                continue
            m = LOG_RUN.match(ln)
            if not m:
                continue
            t = iso_ms(m.group(1))
            if not t_lo <= t <= t_hi:
                continue
            if m.group(2):
                rid, what = m.group(2), m.group(3).split()[0]
                if rid not in runs:
                    runs[rid] = {}
                    order.append(rid)
                runs[rid].setdefault(what, t)
            elif m.group(5):
                runs.setdefault(m.group(5), {})["%s-start" % m.group(4)] = t
                job_run[m.group(4)] = m.group(5)
            elif m.group(6):
                rid = job_run.get(m.group(4))
                if rid:
                    runs[rid]["%s-end" % m.group(4)] = t
    names = ["created → plan job claimed",
             "plan job: start → 1st sandbox exec (config fetched, "
             "work dir, fork)",
             "plan job: `tofu init` (bwrap exec → exit; 0: remembered "
             "from the workspace's last plan)",
             "plan job: between init and plan",
             "plan job: `tofu plan -out`",
             "plan job: between plan and show",
             "plan job: `tofu show -json` (— : left to the apply)",
             "plan job: last exit → job finished (plan files stored, "
             "log compacted, run moved on)",
             "plan finished → apply job started (auto-apply, claim)",
             "apply job: start → 1st sandbox exec (plan's directory taken "
             "back, or plan fetched and work dir made; or the apply's tofu "
             "started early released)",
             "apply job: `tofu init` (none in the plan's directory)",
             "apply job: between init and apply",
             "apply job: `tofu apply` (state uploaded through the API)",
             "apply job: `tofu show -json` after the apply, stored after "
             "the finish, off the critical path (— : none)",
             "apply job: last exit → job finished",
             "**created → applied (whole run)**"]
    cols = [[] for _ in names]
    used = 0
    nproc = []
    for rid in order:
        r = runs[rid]
        need = ("created", "plan", "plan-start", "plan-end", "apply-start",
                "apply-end", "applied")
        if any(k not in r for k in need):
            continue
        pb = [b for b in boxes if r["plan-start"] <= b[0] <= r["plan-end"]]
        ab = [b for b in boxes if r["apply-start"] <= b[0] <= r["apply-end"]]
        # the apply started during the plan (warm.c) lives on past it
        warm = [b for b in pb if b[1] > r["plan-end"]]
        # the plan's own tofu starts first and waits (early_plan_start):
        # in the order they end, the plan job's are init, plan, show
        pb = sorted((b for b in pb if b[1] <= r["plan-end"]),
                    key=lambda b: b[1])
        early = None
        if warm and "warm-go" in r:
            # it counts from its release; a show -json started in the
            # apply job runs beside it
            early = (r["warm-go"], warm[0][1])
            ab = [b for b in ab if b != warm[0]]
        if len(pb) not in (1, 2, 3) or len(ab) not in (0, 1, 2, 3):
            continue
        # init remembered from the workspace's last plan (init_memo.c):
        # the plan is the first process
        pinit = 1
        if r.get("plan-memo"):
            pb = [(pb[0][0], pb[0][0])] + pb
            pinit = 0
        # the apply's show -json (make_json) starts just before the apply
        # and runs beside it
        side = None
        # the JSON plan (make_json): show -json started once the apply's
        # finish is reported (just after the job's "finished" line; at
        # once after the apply's exit before 726d8f0), stored after it,
        # off the run's critical path
        after = [b for b in boxes
                 if r["apply-start"] <= b[0] <= r["apply-end"] + 20 and
                 b[1] > r["apply-end"] and b not in warm]
        ab = [b for b in ab if b[1] <= r["apply-end"]]
        if after:
            side = after[0]
        if early is not None:
            ab = [early]
        elif len(ab) >= 2 and ab[-2][1] > ab[-1][0]:  # beside (before)
            side = ab[-2]
            ab = ab[:-2] + ab[-1:]
        if len(ab) not in (1, 2):
            continue
        if len(ab) == 1:  # reused the plan's directory: no init
            ab = [(ab[0][0], ab[0][0])] + ab
        nproc.append(len(pb) - 1 + pinit + len(ab) - (ab[0][0] == ab[0][1]) +
                     (side is not None))
        used += 1
        show = pb[2] if len(pb) == 3 else None
        last = ab[1][1]
        if side and side[0] < ab[1][1]:  # beside the apply, waited for
            last = max(last, side[1])
        # an early plan counts from init's end (it waited until then)
        p0 = max(pb[1][0], pb[0][1])
        v = [r["plan"] - r["created"],
             min(b[0] for b in pb) - r["plan-start"],
             pb[0][1] - pb[0][0], p0 - pb[0][1],
             pb[1][1] - p0,
             show[0] - pb[1][1] if show else None,
             show[1] - show[0] if show else None,
             r["plan-end"] - (show or pb[1])[1],
             r["apply-start"] - r["plan-end"],
             ab[0][0] - r["apply-start"],
             ab[0][1] - ab[0][0], ab[1][0] - ab[0][1],
             ab[1][1] - ab[1][0],
             side[1] - side[0] if side else None,
             r["apply-end"] - last,
             r["applied"] - r["created"]]
        for c, x in zip(cols, v):
            if x is not None:
                c.append(x)
    if not used:
        raise SystemExit("no complete remote apply in the perf window")
    print("| step (median of %d runs) | ms | share of the run |" % used)
    print("|---|---:|---:|")
    total = pct(cols[-1], 50)
    for n, c in zip(names, cols):
        if not c:
            print("| %s | — | |" % n)
            continue
        med = pct(c, 50)
        share = "" if n.startswith("**") or "critical path" in n else \
            "%.0f %%" % (100 * med / total)
        print("| %s | %.0f | %s |" % (n, med, share))
    tofu = sum(pct(cols[i], 50) for i in (2, 4, 6, 10, 12) if cols[i])
    print()
    print("The sandboxed tofu processes of a run (%s, the apply's show "
          "-json after it included) take %.0f of the %.0f ms on the "
          "critical path (medians)." % (
              "/".join(str(n) for n in sorted(set(nproc))), tofu, total))


REQ = re.compile(r"^(\S+Z) info  (GET|POST|PUT|PATCH|DELETE) (\S+) (\d+) ")
EVT = re.compile(r"^(\S+Z) info  (run run-\S+: .*|executor: job \S+: .*)$")
JOB_START = re.compile(r"executor: job \S+: (plan|apply) of run \S+ started")
JOB_END = re.compile(r"executor: job \S+: (plan|apply) (finished|errored|"
                     r"canceled|force-canceled)")
# what the CLI asks while a job runs (it waits for the run, reads logs)
CLI_PATHS = re.compile(r"/api/v2/(runs|plans|applies|logs)(/|\?|$)")


def short(path):
    path = re.sub(r"/api/v2/logs/([^/]+)/.*", r"/api/v2/logs/\1/…", path)
    path = re.sub(r"(ws|run|cv|sv|plan|apply|job)-[A-Za-z0-9]{16}", r"\1-…",
                  path)
    return re.sub(r"\?.*", "", path)


def cli_timeline(path):
    """The last CLI apply in the daemon log: from the last POST
    configuration-versions, backed up over the requests just before it
    (service discovery, ping, entitlements, workspace; less than 30 ms
    apart), to the end of the log."""
    with open(path, errors="replace") as f:
        lines = f.read().splitlines()
    start = None
    for i, ln in enumerate(lines):
        if REQ.match(ln) and " POST " in ln and \
                "/configuration-versions " in ln:
            start = i
    if start is None:
        raise SystemExit("no POST configuration-versions in the log")
    # back up over the requests the same command made just before
    while start > 0:
        m0, m1 = REQ.match(lines[start - 1]), REQ.match(lines[start])
        if not m0 or CLI_PATHS.search(m0.group(3)) or \
                iso_ms(m1.group(1)) - iso_ms(m0.group(1)) > 30:
            break
        start -= 1
    t0 = prev = None
    last_cli = None
    job = None  # [kind, t_start, requests by its tofu, {request: count}]
    marks = {}  # what the summary below the table needs
    sleeps = []  # (t of the CLI request after a quiet gap >= 800 ms, gap)
    print("| t ms | gap ms | what |")
    print("|---:|---:|---|")

    def out(t, what):
        nonlocal t0, prev
        if t0 is None:
            t0 = prev = t
        print("| %.0f | %.0f | %s |" % (t - t0, t - prev, what))
        prev = t

    for ln in lines[start:]:
        m = REQ.match(ln)
        e = EVT.match(ln)
        if m:
            t = iso_ms(m.group(1))
            path = short(m.group(3))
            what = "CLI: %s %s → %s" % (m.group(2), path, m.group(4))
            if job is not None and not CLI_PATHS.search(m.group(3)):
                job[2] += 1
                key = "%s %s" % (m.group(2), path)
                job[3][key] = job[3].get(key, 0) + 1
                continue
            if last_cli is not None and t - last_cli >= 800:
                sleeps.append((t, t - last_cli, path))
            last_cli = t
            if m.group(2) == "PUT" and "/configuration-versions/" in path:
                marks["cv-upload"] = t
            if m.group(2) == "POST" and path == "/api/v2/runs":
                marks["post-run"] = t
            out(t, what)
        elif e:
            t = iso_ms(e.group(1))
            s = JOB_START.search(e.group(2))
            if s:
                job = [s.group(1), t, 0, {}]
                continue
            s = JOB_END.search(e.group(2))
            if s and job is not None:
                reqs = ", ".join("`%s`%s" % (k, " ×%d" % n if n > 1 else "")
                                 for k, n in job[3].items())
                out(t, "*executor: %s job %s after %.0f ms (its tofu made "
                    "%d API requests%s)*" % (job[0], s.group(2), t - job[1],
                                             job[2], ": " + reqs if reqs
                                             else ""))
                job = None
                continue
            what = re.sub(r"(run|job|ws)-[A-Za-z0-9]{16}", r"\1",
                          e.group(2))
            if what.endswith(": applied"):
                marks["applied"] = t
            if "executor:" not in what:
                out(t, "*%s*" % what)
    print()
    notes = []
    if sleeps and "cv-upload" in marks and sleeps[0][2].startswith(
            "/api/v2/configuration-versions/"):
        notes.append("configuration uploaded → read back: %.0f ms" %
                     (sleeps[0][0] - marks["cv-upload"]))
        sleeps = sleeps[1:]
    if "post-run" in marks and sleeps:
        notes.append("POST /api/v2/runs → the CLI's next read of the run: "
                     "%.0f ms" % (sleeps[0][0] - marks["post-run"]))
        if "applied" in marks:
            notes.append("POST /api/v2/runs → run applied on the server: "
                         "%.0f ms" % (marks["applied"] - marks["post-run"]))
        for t, gap, path in sleeps[1:]:
            notes.append("quiet %.0f ms before the CLI's `GET %s`" %
                         (gap, path))
    if notes:
        print("Seen in this apply: " + "; ".join(notes) + ".")


def main():
    a = sys.argv[1:]
    if not a:
        sys.exit(__doc__)
    cmd = a[0]
    if cmd == "dispatch" and len(a) == 8:
        dispatch(a[1], a[2], a[3], a[4], int(a[5]), float(a[6]), a[7])
    elif cmd == "dispatch-report" and len(a) in (3, 5):
        dispatch_report(a[1], a[2], *a[3:])
    elif cmd == "runs-report" and len(a) == 7:
        runs_report(a[1], a[2], a[3], a[4], int(a[5]), int(a[6]))
    elif cmd == "steps-report" and len(a) == 5:
        steps_report(a[1], a[2], a[3], a[4])
    elif cmd == "cli-timeline" and len(a) == 2:
        cli_timeline(a[1])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
