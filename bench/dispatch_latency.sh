#!/usr/bin/env bash
# dispatch_latency.sh - how long a queued run waits before the executor
# takes it and tofu starts, in the demo (SQLite, in-process executor with
# the default 2 workers).  Measured from the outside: speculative plan-only
# runs are created through the API one after the other (create, poll until
# planned_and_finished, next), so the queue is empty at every creation.
#   - the run's status-timestamps (millisecond ISO times):
#     plan-queued-at -> planning-at (the executor's claim);
#   - the daemon log (millisecond timestamps): claim -> executor job start;
#   - when perf works: `perf record -a -k mono` of the sched_process_fork
#     and sched_process_exec tracepoints (kernel events, no ptrace), so
#     plan-queued-at -> exec of bwrap and of tofu by the daemon's children.
# Target: p99 of plan-queued-at -> planning-at <= 50 ms.  Prints a
# markdown section on stdout.
#
#   bench/dispatch_latency.sh   (BENCH_RUNS=200, BENCH_DEADLINE=300 s,
#                                BENCH_PERF=0 to skip perf)
#
# SPDX-License-Identifier: MPL-2.0
. "$(dirname "$0")/lib.sh"

RUNS=${BENCH_RUNS:-200}
DEADLINE=${BENCH_DEADLINE:-300}
TARGET_MS=50
HELPER=$BENCH_ROOT/bench/run_timing.py
TOFU=${TOFU_BIN:-${TERRACE_CACHE:-$HOME/.cache/terrace}/tofu-1.10.10/tofu}

bench_tools
bench_build
[ -x "$TOFU" ] || { echo "tofu binary missing: $TOFU" >&2; exit 1; }

# perf with the sched tracepoints on CLOCK_MONOTONIC, if it works here.
PERF_PID=
PERF_DATA=$BENCH_TMP/perf.data
perf_start() {
  [ "${BENCH_PERF:-1}" = 1 ] && command -v perf >/dev/null || return 0
  perf record -q -k mono -e sched:sched_process_fork \
    -e sched:sched_process_exec -a -o "$PERF_DATA" \
    -- sleep 0.01 >/dev/null 2>&1 || {
    blog "perf record does not work here; no exec timings"
    return 0
  }
  perf record -q -k mono -e sched:sched_process_fork \
    -e sched:sched_process_exec -a -o "$PERF_DATA" >/dev/null 2>&1 &
  PERF_PID=$!
  sleep 1 # perf is recording
}
perf_stop() {
  [ -n "$PERF_PID" ] || return 0
  kill -INT "$PERF_PID" 2>/dev/null || true
  wait "$PERF_PID" 2>/dev/null || true
  perf script -i "$PERF_DATA" -F pid,time,event,trace \
    >"$BENCH_TMP/perf.txt" 2>/dev/null
}
# stop perf (by its pid) on any exit, before lib.sh's cleanup
trap 'perf_stop; bench_cleanup' EXIT

bench_start dispatch demo --tofu-bin "$TOFU"
grep -h 'executor:\|sandbox:' "$D_LOG" >&2 || true
DAEMON_PID=$D_PID
api POST /api/v2/organizations "$(jq -nc '{data:{type:"organizations",
  attributes:{name:"bench",email:"bench@example.com"}}}')" >/dev/null
WS_ID=$(api POST /api/v2/organizations/bench/workspaces \
  "$(jq -nc '{data:{type:"workspaces",attributes:{name:"ws-dispatch",
    "execution-mode":"remote"}}}')" | jq -r .data.id)

perf_start
blog "$RUNS speculative plan-only runs, one after the other"
START=$(date +%s)
python3 "$HELPER" dispatch "$D_URL" "$D_CA" "$D_TOKEN" "$WS_ID" "$RUNS" \
  "$DEADLINE" "$BENCH_TMP/runs.json" >&2
ELAPSED=$(( $(date +%s) - START ))
perf_stop
PERF_PID=
bench_stop

PERF_ARGS=()
[ -s "$BENCH_TMP/perf.txt" ] && PERF_ARGS=("$BENCH_TMP/perf.txt" "$DAEMON_PID")
TABLE=$(python3 "$HELPER" dispatch-report "$BENCH_TMP/runs.json" "$D_LOG" \
  "${PERF_ARGS[@]}")
SUM=$BENCH_TMP/runs.json.summary
NRUNS=$(jq -r .runs "$SUM")
STOPPED=$(jq -r '.stopped // empty' "$SUM")
RES=$(jq -r .resolution "$SUM")
P50=$(jq -r .q2p.p50 "$SUM")
P99=$(jq -r .q2p.p99 "$SUM")
TP50=$(jq -r '.q2tofu.p50 // empty' "$SUM")
TP99=$(jq -r '.q2tofu.p99 // empty' "$SUM")

verdict() {
  awk -v p="$1" -v t="$TARGET_MS" 'BEGIN {
    if (p > t) printf "missed by %.1f ms", p - t; else printf "met" }'
}

cat <<EOF
### Dispatch latency (demo, SQLite)

$NRUNS speculative plan-only runs in ${ELAPSED} s (\`POST /api/v2/runs\`
with \`plan-only: true\` against one uploaded speculative configuration
version of a one-resource \`terraform_data\` config; remote execution mode,
tofu 1.10.10 registered by \`--tofu-bin\`, bubblewrap sandbox, default 2
executor workers), created one after the other: each is polled every
20 ms until \`planned_and_finished\` before the next is created, so the
queue is empty at each creation. Resolution of the status-timestamps:
$RES.${STOPPED:+ Stopped early: $STOPPED.} Times in ms; percentiles
nearest-rank.

**Target p99 ≤ ${TARGET_MS} ms. Run queued → claimed by the executor
(plan-queued-at → planning-at): p50 $P50 ms, p99 $P99 ms,
$(verdict "$P99").**
EOF
if [ -n "$TP99" ]; then
  cat <<EOF

**Run queued → tofu process started (exec of tofu inside the sandbox):
p50 $(printf %.1f "$TP50") ms, p99 $(printf %.1f "$TP99") ms,
$(verdict "$TP99").**
EOF
fi
cat <<EOF

$TABLE

The exec rows come from \`perf record -a -k mono -e
sched:sched_process_fork -e sched:sched_process_exec\` during the runs
(kernel tracepoints, no ptrace), keeping only processes descended from
terraced and placing them on the wall clock with the realtime − monotonic
offset taken at the start; the first exec of \`bwrap\` and of \`tofu\`
after each run was sent. Between them the sandbox is set up (namespaces,
bind mounts) and \`env --default-signal=INT\` runs.

EOF
