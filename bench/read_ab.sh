#!/usr/bin/env bash
# read_ab.sh - GET /api/v2/workspaces/:id (wrk, 64 connections, HTTPS,
# Bearer token) on the demo (SQLite) and on a primary (PostgreSQL), for
# this work tree and for a baseline commit, all four servers up at once
# and their wrk rounds interleaved (demo, primary, baseline demo,
# baseline primary, then again), so that the noise of a shared machine
# falls on all four alike.  Prints each round, the mean req/s of each
# server and the primary's slowdown against the demo (demo req/s /
# primary req/s; issue 13's goal: at most 1.5).  Markdown on stdout.
#
#   BENCH_BASELINE=<commit> bench/read_ab.sh
#       (BENCH_ROUNDS=4, BENCH_DURATION=8s, BENCH_WARMUP=2s,
#        BENCH_CONNS=64; without BENCH_BASELINE only this tree is run)
#
# SPDX-License-Identifier: MPL-2.0
. "$(dirname "$0")/lib.sh"

ROUNDS=${BENCH_ROUNDS:-4}
DUR=${BENCH_DURATION:-8s}
WARM=${BENCH_WARMUP:-2s}
CONNS=${BENCH_CONNS:-64}

bench_tools
bench_build
NEW_BUILD=$BENCH_BUILD
SERVERS=()
declare -A URL TOKEN SUM
if [ -n "${BENCH_BASELINE:-}" ]; then
  BASE_REV=$(git -C "$BENCH_ROOT" rev-parse --short=12 "$BENCH_BASELINE")
  bench_build_rev "$BENCH_BASELINE"
fi

# serve NAME ROLE BUILD: starts one server with one workspace.
serve() {
  local name=$1 role=$2
  BENCH_BUILD=$3
  bench_start "$name" "$role"
  bench_setup_ws bench ws-read
  api GET "/api/v2/workspaces/$WS_ID" >/dev/null
  URL[$name]=$D_URL/api/v2/workspaces/$WS_ID
  TOKEN[$name]=$D_TOKEN
  SUM[$name]=0
  SERVERS+=("$name")
}

serve "demo" demo "$NEW_BUILD"
serve "primary" pg "$NEW_BUILD"
if [ -n "${BENCH_BASELINE:-}" ]; then
  serve baseline-demo demo "$REV_BUILD"
  serve baseline-primary pg "$REV_BUILD"
fi

ROWS=()
for s in "${SERVERS[@]}"; do
  wrk -t2 -c"$CONNS" -d"$WARM" -H "Authorization: Bearer ${TOKEN[$s]}" \
    "${URL[$s]}" >/dev/null
done
for r in $(seq 1 "$ROUNDS"); do
  for s in "${SERVERS[@]}"; do
    blog "round $r: $s"
    out=$BENCH_TMP/wrk.out
    wrk -t2 -c"$CONNS" -d"$DUR" --latency \
      -H "Authorization: Bearer ${TOKEN[$s]}" \
      -H "Accept: application/vnd.api+json" "${URL[$s]}" >"$out"
    rps=$(awk '/^Requests\/sec:/ { printf "%.0f", $2 }' "$out")
    p50=$(to_ms "$(awk '$1 == "50%" { print $2 }' "$out")")
    p99=$(to_ms "$(awk '$1 == "99%" { print $2 }' "$out")")
    bad=$(awk '/Non-2xx or 3xx responses:/ { print $NF }' "$out")
    SUM[$s]=$((SUM[$s] + rps))
    ROWS+=("| $r | $s | $rps | $p50 | $p99 | ${bad:-0} | $(cut -d' ' -f1 /proc/loadavg) |")
  done
done

mean() { echo $((SUM[$1] / ROUNDS)); }
ratio() { awk -v d="$(mean "$1")" -v p="$(mean "$2")" \
  'BEGIN { printf "%.2f", (p > 0 ? d / p : 0) }'; }

cat <<EOF
### GET workspaces/:id, demo and primary$( [ -n "${BENCH_BASELINE:-}" ] && echo ", against $BASE_REV")

$(bench_machine)
- \`wrk -t2 -c$CONNS -d$DUR --latency\` over HTTPS with a Bearer token,
  after a $WARM warm-up of each server; the servers ran at once and
  their rounds were interleaved; latency in ms; load average (1 min)
  when the round ended.

| round | server | req/s | p50 | p99 | non-2xx | load |
|---:|---|---:|---:|---:|---:|---:|
$(printf '%s\n' "${ROWS[@]}")

| build | demo req/s (mean) | primary req/s (mean) | demo / primary |
|---|---:|---:|---:|
| this tree | $(mean demo) | $(mean primary) | $(ratio demo primary) |
EOF
if [ -n "${BENCH_BASELINE:-}" ]; then
  echo "| $BASE_REV | $(mean baseline-demo) | $(mean baseline-primary) |" \
       "$(ratio baseline-demo baseline-primary) |"
fi
echo
