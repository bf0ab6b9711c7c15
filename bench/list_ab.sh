#!/usr/bin/env bash
# list_ab.sh - what a page of 100 costs against one workspace read
# (issue 13's goal: at most 20x one GET), for lists of workspaces, runs,
# state versions and variables, on the demo (SQLite) and on a primary
# (PostgreSQL), for this work tree and for a baseline commit.  All
# servers are up at once, each with one organization of 100 workspaces
# and three more holding 100 runs (pending behind a lock), 100 state
# versions and 100 variables (bench/list_populate.py); their wrk rounds
# are interleaved (each server's endpoints, then the next server's; then
# again), so the noise of a shared machine falls on all alike.  Prints
# each round, the mean req/s per server and endpoint, and read req/s
# over each list's req/s.  Markdown on stdout.
#
#   BENCH_BASELINE=<commit> bench/list_ab.sh
#       (BENCH_ROUNDS=3, BENCH_DURATION=8s, BENCH_WARMUP=2s; without
#        BENCH_BASELINE only this tree is run; BENCH_BASELINE_BUILD: an
#        existing Release build of the baseline, used as is)
#
# SPDX-License-Identifier: MPL-2.0
. "$(dirname "$0")/lib.sh"

ROUNDS=${BENCH_ROUNDS:-3}
DUR=${BENCH_DURATION:-8s}
WARM=${BENCH_WARMUP:-2s}
NWS=100

bench_tools
bench_build
NEW_BUILD=$BENCH_BUILD
SERVERS=()
declare -A BASE TOKEN SUM
if [ -n "${BENCH_BASELINE:-}" ]; then
  BASE_REV=$(git -C "$BENCH_ROOT" rev-parse --short=12 "$BENCH_BASELINE")
  if [ -n "${BENCH_BASELINE_BUILD:-}" ]; then
    REV_BUILD=$BENCH_BASELINE_BUILD   # a Release build of it, made before
  else
    bench_build_rev "$BENCH_BASELINE"
  fi
fi

LIST="/api/v2/organizations/peer/workspaces?page%5Bsize%5D=$NWS"

# serve NAME ROLE BUILD: starts one server with NWS workspaces.
serve() {
  local name=$1 role=$2 i
  BENCH_BUILD=$3
  bench_start "$name" "$role"
  bench_setup_ws peer w0
  for i in $(seq 1 $((NWS - 1))); do
    api POST /api/v2/organizations/peer/workspaces \
      "$(jq -nc --arg n "w$i" '{data:{type:"workspaces",
        attributes:{name:$n,"execution-mode":"local"}}}')" >/dev/null
  done
  api GET "$LIST" | jq -e ".data | length == $NWS" >/dev/null
  local ids
  mapfile -t ids < <(python3 "$BENCH_ROOT/bench/list_populate.py" "$D_URL" \
    "$D_TOKEN" "$D_CA" peer "$NWS")
  RUNS[$name]=/api/v2/workspaces/${ids[0]}/runs?page%5Bsize%5D=$NWS
  SVS[$name]=/api/v2/workspaces/${ids[1]}/state-versions?page%5Bsize%5D=$NWS
  VARS[$name]=/api/v2/workspaces/${ids[2]}/vars
  BASE[$name]=$D_URL
  TOKEN[$name]=$D_TOKEN
  WSID[$name]=$WS_ID
  SERVERS+=("$name")
}

declare -A WSID RUNS SVS VARS
serve "demo" demo "$NEW_BUILD"
serve "primary" pg "$NEW_BUILD"
if [ -n "${BENCH_BASELINE:-}" ]; then
  serve baseline-demo demo "$REV_BUILD"
  serve baseline-primary pg "$REV_BUILD"
fi

# one SERVER KIND CONNS PATH ROUND: one wrk round; adds to SUM and ROWS.
one() {
  local s=$1 kind=$2 conns=$3 path=$4 r=$5 out rps p50 p99 bad
  out=$BENCH_TMP/wrk.out
  blog "round $r: $s $kind"
  wrk -t2 -c"$conns" -d"$DUR" --latency \
    -H "Authorization: Bearer ${TOKEN[$s]}" \
    -H "Accept: application/vnd.api+json" "${BASE[$s]}$path" >"$out"
  rps=$(awk '/^Requests\/sec:/ { printf "%.0f", $2 }' "$out")
  p50=$(to_ms "$(awk '$1 == "50%" { print $2 }' "$out")")
  p99=$(to_ms "$(awk '$1 == "99%" { print $2 }' "$out")")
  bad=$(awk '/Non-2xx or 3xx responses:/ { print $NF }' "$out")
  SUM[$s.$kind]=$((${SUM[$s.$kind]:-0} + rps))
  ROWS+=("| $r | $s | $kind | $rps | $p50 | $p99 | ${bad:-0} | $(cut -d' ' -f1 /proc/loadavg) |")
}

ROWS=()
for s in "${SERVERS[@]}"; do
  wrk -t2 -c64 -d"$WARM" -H "Authorization: Bearer ${TOKEN[$s]}" \
    "${BASE[$s]}/api/v2/workspaces/${WSID[$s]}" >/dev/null
  wrk -t2 -c4 -d"$WARM" -H "Authorization: Bearer ${TOKEN[$s]}" \
    "${BASE[$s]}$LIST" >/dev/null
done
for r in $(seq 1 "$ROUNDS"); do
  for s in "${SERVERS[@]}"; do
    one "$s" "read (64)" 64 "/api/v2/workspaces/${WSID[$s]}" "$r"
    one "$s" "list (4)" 4 "$LIST" "$r"
    one "$s" "list (64)" 64 "$LIST" "$r"
    one "$s" "runs (4)" 4 "${RUNS[$s]}" "$r"
    one "$s" "state versions (4)" 4 "${SVS[$s]}" "$r"
    one "$s" "vars (4)" 4 "${VARS[$s]}" "$r"
  done
done

mean() { echo $((SUM[$1.$2] / ROUNDS)); }
# ratio SERVER KIND: read req/s over KIND's req/s
ratio() { awk -v a="$(mean "$1" "read (64)")" -v b="$(mean "$1" "$2")" \
  'BEGIN { printf "%.1f", (b > 0 ? a / b : 0) }'; }

cat <<EOF
### A list of $NWS workspaces against one read$( [ -n "${BENCH_BASELINE:-}" ] && echo ", against $BASE_REV")

$(bench_machine)
- each server: one organization with $NWS workspaces; \`wrk -t2 -d$DUR
  --latency\` over HTTPS with a Bearer token, connections in brackets,
  after a $WARM warm-up of each server; the servers ran at once and
  their rounds were interleaved; latency in ms; load average (1 min)
  when the round ended.  read: GET /api/v2/workspaces/:id; list: GET
  /api/v2/organizations/:org/workspaces?page[size]=$NWS; runs and state
  versions: a workspace's lists with page[size]=$NWS; vars: a
  workspace's variables (not paged).

| round | server | endpoint | req/s | p50 | p99 | non-2xx | load |
|---:|---|---|---:|---:|---:|---:|---:|
$(printf '%s\n' "${ROWS[@]}")

Mean req/s, and in brackets read req/s over that list's req/s (the
cost of a page of $NWS in reads; issue 13's goal: at most 20):

| server | read (64) | workspaces (4) | workspaces (64) | runs (4) | state versions (4) | vars (4) |
|---|---:|---:|---:|---:|---:|---:|
EOF
for s in "${SERVERS[@]}"; do
  echo "| $s | $(mean "$s" "read (64)") |" \
       "$(mean "$s" "list (4)") ($(ratio "$s" "list (4)")x) |" \
       "$(mean "$s" "list (64)") |" \
       "$(mean "$s" "runs (4)") ($(ratio "$s" "runs (4)")x) |" \
       "$(mean "$s" "state versions (4)") ($(ratio "$s" "state versions (4)")x) |" \
       "$(mean "$s" "vars (4)") ($(ratio "$s" "vars (4)")x) |"
done
echo
