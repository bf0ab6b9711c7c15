#!/usr/bin/env bash
# cluster_scale.sh - a whole cluster on this machine: `terrace cluster up`
# with 3 primaries and BENCH_SECONDARIES secondaries (capacity 1) behind
# HAProxy, on a throwaway PostgreSQL.  Measures, in this order:
#   1. the resident set of every node by role, idle (BENCH_SETTLE s after
#      the cluster is ready and every secondary has handed over to
#      terraced-idle, its idle form);
#   2. dispatch latency through the cluster with idle secondaries:
#      plan-only runs one after the other (bench/run_timing.py dispatch),
#      plan-queued-at -> planning-at;
#   3. BENCH_LOAD_RUNS queued plan-only runs of a tiny config: wall time,
#      peak RSS by role, terraced's share of the machine's busy CPU, and
#      that each run executed exactly once (bench/cluster_load.py);
#   4. API reads through HAProxy (3 primaries) and against one primary
#      directly (wrk, as bench/http_read.sh).
# Prints a markdown section on stdout; exits 1 when a run did not execute
# exactly once.  Not part of CI (minutes; loads the machine).
#
#   bench/cluster_scale.sh  (BENCH_SECONDARIES=100 BENCH_LOAD_RUNS=500
#                            BENCH_DISPATCH_RUNS=100 BENCH_SETTLE=15
#                            BENCH_DEADLINE=1200 BENCH_DURATION=15s
#                            BENCH_CONNS=64)
#
# SPDX-License-Identifier: MPL-2.0
. "$(dirname "$0")/lib.sh"

NSEC=${BENCH_SECONDARIES:-100}
NLOAD=${BENCH_LOAD_RUNS:-500}
NDISP=${BENCH_DISPATCH_RUNS:-100}
SETTLE=${BENCH_SETTLE:-15}
DEADLINE=${BENCH_DEADLINE:-1200}
DUR=${BENCH_DURATION:-15s}
CONNS=${BENCH_CONNS:-64}
WARM=${BENCH_WARMUP:-3s}
TOFU=${TOFU_BIN:-${TERRACE_CACHE:-$HOME/.cache/terrace}/tofu-1.10.10/tofu}
HERE=$BENCH_ROOT/bench

bench_tools
bench_build
ninja -C "$BENCH_BUILD" terrace >/dev/null
[ -x "$TOFU" ] || { echo "tofu binary missing: $TOFU" >&2; exit 1; }
command -v haproxy >/dev/null || PATH=$PATH:/usr/sbin
command -v haproxy >/dev/null || { echo "haproxy missing" >&2; exit 1; }

# short: PostgreSQL's socket path lives inside it
CL=$(mktemp -d /tmp/tcb-XXXXXX)
cluster_down() {
  "$BENCH_BUILD/terrace" cluster down --dir "$CL" >&2 || true
  # BENCH_KEEP_LOGS=DIR: the nodes' and HAProxy's logs are kept there
  if [ -n "${BENCH_KEEP_LOGS:-}" ]; then
    mkdir -p "$BENCH_KEEP_LOGS" && cp -r "$CL/logs/." "$BENCH_KEEP_LOGS/"
  fi
  rm -rf "$CL"
}
trap 'cluster_down; bench_cleanup' EXIT

MACHINE=$(bench_machine)
blog "cluster up: 3 primaries, $NSEC secondaries"
T0=$(date +%s.%N)
"$BENCH_BUILD/terrace" cluster up --dir "$CL" --primaries 3 \
  --secondaries "$NSEC" --capacity 1 --terraced "$BENCH_BUILD/terraced" \
  --tofu-bin "$TOFU" >&2
UP_S=$(awk -v a="$T0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
UP_NSEC=$(awk '$3 == "secondary"' "$CL/nodes" | wc -l)
D_URL=$(cat "$CL/url")
D_CA=$CL/tls/ca.pem
D_TOKEN=$(cat "$CL/admin-token")

# The launcher lets the first secondary fetch the tool (tofu, ~126 MB)
# from the primaries and hard-links its copy into the others' tool caches
# (src/cli/cluster_tools.c), as nodes built with the tool in their image
# would have it; before, 100 fetches at once swamped this machine (see
# RESULTS.md, 2026-12-05 and 2026-12-06 23:21).
# A secondary is ready once joined; it becomes terraced-idle (its idle
# form, src/node/idle.h) once it holds the tool.  Idle is measured after
# every secondary has, or after BENCH_IDLE_WAIT s (then said).
IDLE_WAIT=${BENCH_IDLE_WAIT:-300}
blog "waiting for every secondary to hand over to terraced-idle"
for _ in $(seq "$IDLE_WAIT"); do
  left=0 idle=0 # a node that has exited is waited for no longer
  for pid in $(awk '$3 == "secondary" { print $2 }' "$CL/nodes"); do
    case $(readlink "/proc/$pid/exe" 2>/dev/null) in
    */terraced-idle) idle=$((idle + 1)) ;;
    '') ;;
    *) left=$((left + 1)) ;;
    esac
  done
  [ "$left" = 0 ] && break
  sleep 1
done
HANDED="$idle/$(awk '$3 == "secondary"' "$CL/nodes" | wc -l)"
blog "secondaries in terraced-idle: $HANDED; idle for $SETTLE s"
sleep "$SETTLE"
IDLE=$(python3 "$HERE/cluster_load.py" rss "$CL")

# min / median / max of a role's list in MB, from a {role: [kB]} object
mb() {
  echo "$1" | jq -r --arg r "$2" '.[$r] // [] | sort |
    if length == 0 then "-" else
    "\(.[0] / 1024 * 10 | round / 10) / \(.[length / 2 | floor] / 1024
      * 10 | round / 10) / \(.[-1] / 1024 * 10 | round / 10)" end'
}

blog "dispatch latency: $NDISP runs one after the other"
WS_ID=$(api POST /api/v2/organizations "$(jq -nc '{data:{type:
  "organizations",attributes:{name:"bench",email:"bench@example.com"}}}')" \
  >/dev/null && api POST /api/v2/organizations/bench/workspaces \
  "$(jq -nc '{data:{type:"workspaces",attributes:{name:"ws-dispatch",
    "execution-mode":"remote"}}}')" | jq -r .data.id)
python3 "$HERE/run_timing.py" dispatch "$D_URL" "$D_CA" "$D_TOKEN" \
  "$WS_ID" "$NDISP" 300 "$BENCH_TMP/runs.json" >&2
cat "$CL"/logs/s*.log >"$BENCH_TMP/secondaries.log"
python3 "$HERE/run_timing.py" dispatch-report "$BENCH_TMP/runs.json" \
  "$BENCH_TMP/secondaries.log" >/dev/null
SUM=$BENCH_TMP/runs.json.summary
DP50=$(jq -r .q2p.p50 "$SUM")
DP99=$(jq -r .q2p.p99 "$SUM")
DN=$(jq -r .runs "$SUM")

blog "load: $NLOAD queued plan-only runs"
RC=0
python3 "$HERE/cluster_load.py" load "$CL" "$NLOAD" "$DEADLINE" \
  "$BENCH_TMP/load.json" || RC=1
L=$BENCH_TMP/load.json

ROWS=()
P1=$(awk '$1 == "p1" { print $4 }' "$CL/nodes")
D_URL=$(cat "$CL/url")
run_wrk "HAProxy, 3 primaries" /api/v2/workspaces/:id \
  "/api/v2/workspaces/$WS_ID"
D_URL=$P1
run_wrk "one primary (p1 directly)" /api/v2/workspaces/:id \
  "/api/v2/workspaces/$WS_ID"

j() { jq -r "$1" "$L"; }
share=$(awk -v t="$(j .terraced_cpu_s)" -v b="$(j .machine_busy_cpu_s)" \
  'BEGIN { if (b > 0) printf "%.0f %%", 100 * t / b; else print "-" }')
cat <<EOF
### Cluster: 3 primaries + $UP_NSEC secondaries on one machine

$MACHINE
- cluster: \`terrace cluster up --primaries 3 --secondaries $NSEC
  --capacity 1\` (Release build, PostgreSQL and HAProxy from Debian, tofu
  1.10.10), ready in $UP_S s; $UP_NSEC secondaries running

**Resident set (VmRSS, MB, min / median / max over the nodes of a role)**

| role | idle ($SETTLE s after $HANDED secondaries were in terraced-idle) | peak during the load |
|---|---|---|
| primary | $(mb "$IDLE" primary) | $(j '.peak_rss_kb.primary / 1024 * 10 | round / 10') (largest) |
| secondary | $(mb "$IDLE" secondary) | $(j '.peak_rss_kb.secondary / 1024 * 10 | round / 10') (largest) |
| HAProxy | $(mb "$IDLE" lb) | - |

Targets: idle secondary ≤ 5 MB, idle primary ≤ 15 MB.  A secondary's
figure is the node process plus the worker it runs while it has jobs
(terraced started by terraced-idle for its jobs); idle, it has none.

**Load: $NLOAD plan-only runs queued at once** (\`POST /api/v2/runs\`,
\`plan-only: true\`, one speculative configuration version of one
\`terraform_data\` resource): queued in $(j .queued_s) s through HAProxy,
all ended in $(j .wall_s) s (statuses: $(jq -c .statuses "$L"); runs a retried POST
created besides: $(j .extra_runs)); exactly once:
$(j .exactly_once) (runs without exactly one job: $(j .not_one_job); jobs
not a finished plan of a secondary: $(j .not_secondary); plans not started
exactly once in the secondaries' logs: $(j .started_not_once));
$(j .secondaries_used) secondaries ran plans. CPU during the load:
terraced processes (primaries + secondaries and their workers, not tofu) $(j .terraced_cpu_s)
s of the machine's $(j .machine_busy_cpu_s) busy CPU-seconds
($share), of $(j .machine_cpu_s) CPU-seconds available.

**Dispatch latency with idle secondaries** ($DN plan-only runs one after
the other through HAProxy, plan-queued-at → planning-at): p50 $DP50 ms,
p99 $DP99 ms (target p99 ≤ 50 ms).

**API reads** (\`wrk -t2 -c$CONNS -d$DUR --latency\`, keep-alive Bearer
token, $WARM warm-up, the secondaries idle; latency in ms):

| target | endpoint | req/s | p50 | p99 | non-2xx | socket errors |
|---|---|---:|---:|---:|---:|---|
EOF
printf '%s\n' "${ROWS[@]}"
echo
exit $RC
