#!/usr/bin/env bash
# cost_growth.sh - API latency and a run's dispatch as the database grows
# (issue 13's cost growth): the demo (SQLite) and a primary (PostgreSQL),
# each seeded straight into its database (tests/lib/seed.py) with 10,
# 1,000 and 10,000 workspaces in BUSY's proportions (10 state versions,
# 5 runs with their plans, applies, jobs and events and 500 log chunks to
# a workspace, 200 workspaces to an organization): at 10,000, 100,000
# state versions and 1,000,000 log chunks.  At each size, with wrk over
# HTTPS: GET a workspace (16 connections), a page of 10 of an
# organization's workspaces, of a workspace's runs and of its state
# versions, and a run's plan log through its signed URL (4 connections);
# the pages hold the same items at every size, so only the tables grow.
# All servers are up at once and their rounds interleaved.  Before the
# rounds, BENCH_RUNS speculative plan-only runs on each, one after the
# other (bench/run_timing.py dispatch): plan-queued-at -> planning-at.
# Flat is the goal: a row's figures should not fall as the size grows.
# Prints a markdown section on stdout.
#
#   bench/cost_growth.sh   (BENCH_SCALES="10 1000 10000", BENCH_DURATION=5s,
#                           BENCH_ROUNDS=3, BENCH_RUNS=20)
#
# SPDX-License-Identifier: MPL-2.0
. "$(dirname "$0")/lib.sh"

SCALES=${BENCH_SCALES:-"10 1000 10000"}
DUR=${BENCH_DURATION:-5s}
ROUNDS=${BENCH_ROUNDS:-3}
WARM=2s
NRUNS=${BENCH_RUNS:-20}
TOFU=${TOFU_BIN:-${TERRACE_CACHE:-$HOME/.cache/terrace}/tofu-1.10.10/tofu}
HELPER=$BENCH_ROOT/bench/run_timing.py

bench_tools
bench_build
[ -x "$TOFU" ] || { echo "tofu binary missing: $TOFU" >&2; exit 1; }

# measure SERVER KIND CONNS URL [AUTH]: one wrk round; adds to SUM, P50
# and P99 (sums over rounds).
declare -A SUM P50 P99 BAD
measure() {
  local s=$1 kind=$2 conns=$3 url=$4 out v
  local h=(-H "Accept: application/vnd.api+json")
  [ "${5:-auth}" = auth ] && h+=(-H "Authorization: Bearer ${TOKEN[$s]}")
  out=$BENCH_TMP/wrk.out
  blog "round $r: $s: $kind"
  wrk -t2 -c"$conns" -d"$DUR" --latency "${h[@]}" "$url" >"$out"
  v=$(awk '/^Requests\/sec:/ { printf "%.0f", $2 }' "$out")
  SUM[$s.$kind]=$((${SUM[$s.$kind]:-0} + v))
  P50[$s.$kind]=$(awk -v a="${P50[$s.$kind]:-0}" -v b="$(to_ms "$(awk '$1 == "50%" { print $2 }' "$out")")" 'BEGIN { print a + b }')
  P99[$s.$kind]=$(awk -v a="${P99[$s.$kind]:-0}" -v b="$(to_ms "$(awk '$1 == "99%" { print $2 }' "$out")")" 'BEGIN { print a + b }')
  v=$(awk '/Non-2xx or 3xx responses:/ { print $NF }' "$out")
  BAD[$s.$kind]=$((${BAD[$s.$kind]:-0} + ${v:-0}))
}

# Every server up and seeded at once, its dispatch runs made (their plan
# logs are the log read below: seeded chunks are not sealed).
SERVERS=()
declare -A BASE TOKEN LOGURL LABEL SCALE DROW
for role in demo pg; do
  for scale in $SCALES; do
    name=$role-$scale
    bench_start "$name" "$role" --tofu-bin "$TOFU"
    LABEL[$name]=$([ "$role" = pg ] && echo "primary (PostgreSQL)" ||
                   echo "demo (SQLite)")
    SCALE[$name]=$scale
    blog "$name: seeding $scale workspaces"
    t0=$(date +%s)
    if [ "$role" = pg ]; then
      python3 "$BENCH_ROOT/tests/lib/seed.py" "$scale" pg \
        "host=$BENCH_TMP/$name/pg user=terrace dbname=terrace"
    else
      python3 "$BENCH_ROOT/tests/lib/seed.py" "$scale" sqlite \
        "$D_DIR/terrace.db"
    fi
    blog "seeded in $(( $(date +%s) - t0 )) s"
    api POST /api/v2/organizations "$(jq -nc '{data:{type:"organizations",
      attributes:{name:"bench",email:"bench@example.com"}}}')" >/dev/null
    ws=$(api POST /api/v2/organizations/bench/workspaces \
      "$(jq -nc '{data:{type:"workspaces",attributes:{name:"ws-dispatch",
        "execution-mode":"remote"}}}')" | jq -r .data.id)
    blog "$name: $NRUNS plan-only runs"
    python3 "$HELPER" dispatch "$D_URL" "$D_CA" "$D_TOKEN" "$ws" "$NRUNS" \
      300 "$BENCH_TMP/runs-$name.json" >&2
    python3 "$HELPER" dispatch-report "$BENCH_TMP/runs-$name.json" \
      "$D_LOG" >/dev/null
    sum=$BENCH_TMP/runs-$name.json.summary
    DROW[$name]="$(jq -r .runs "$sum") | $(jq -r .q2p.p50 "$sum") | $(jq -r .q2p.p99 "$sum")"
    run=$(api GET "/api/v2/workspaces/$ws/runs?page%5Bsize%5D=1" |
          jq -r '.data[0].id')
    LOGURL[$name]=$(api GET "/api/v2/runs/$run?include=plan" |
      jq -r '.included[0].attributes."log-read-url"')"?offset=0&limit=65536"
    BASE[$name]=$D_URL
    TOKEN[$name]=$D_TOKEN
    SERVERS+=("$name")
  done
done

KINDS=("GET workspace (16)" "workspaces, page of 10 (4)"
       "runs, page of 10 (4)" "state versions, page of 10 (4)"
       "a run's plan log (4)")
for s in "${SERVERS[@]}"; do
  wrk -t2 -c16 -d"$WARM" -H "Authorization: Bearer ${TOKEN[$s]}" \
    "${BASE[$s]}/api/v2/workspaces/ws-seed1" >/dev/null
done
for r in $(seq 1 "$ROUNDS"); do
  for s in "${SERVERS[@]}"; do
    b=${BASE[$s]}
    measure "$s" "${KINDS[0]}" 16 "$b/api/v2/workspaces/ws-seed1"
    measure "$s" "${KINDS[1]}" 4 \
      "$b/api/v2/organizations/seed-o1/workspaces?page%5Bsize%5D=10"
    measure "$s" "${KINDS[2]}" 4 \
      "$b/api/v2/workspaces/ws-seed1/runs?page%5Bsize%5D=10"
    measure "$s" "${KINDS[3]}" 4 \
      "$b/api/v2/workspaces/ws-seed1/state-versions?page%5Bsize%5D=10"
    measure "$s" "${KINDS[4]}" 4 "${LOGURL[$s]}" noauth
  done
done

ROWS=()
for s in "${SERVERS[@]}"; do
  for k in "${KINDS[@]}"; do
    ROWS+=("| ${LABEL[$s]} | ${SCALE[$s]} | $k | $((SUM[$s.$k] / ROUNDS)) | $(awk -v v="${P50[$s.$k]}" -v n="$ROUNDS" 'BEGIN { printf "%.2f", v / n }') | $(awk -v v="${P99[$s.$k]}" -v n="$ROUNDS" 'BEGIN { printf "%.2f", v / n }') | ${BAD[$s.$k]} |")
  done
done
DROWS=()
for s in "${SERVERS[@]}"; do
  DROWS+=("| ${LABEL[$s]} | ${SCALE[$s]} | ${DROW[$s]} |")
done

cat <<EOF
### Cost growth: latency as the database grows

$(bench_machine)
- each server seeded straight into its database by tests/lib/seed.py
  (WORKSPACES: 200 to an organization; per workspace 10 state versions
  with an output each, 2 configuration versions, 5 runs with plans,
  applies, 10 jobs, 10 run events and 500 log chunks, 2 variables);
  \`wrk -t2 -d$DUR --latency\` over HTTPS, connections in brackets, all
  servers up at once, $ROUNDS interleaved rounds: mean req/s, mean p50
  and p99 in ms, non-2xx summed.  Pages hold the same items at every
  size: workspace ws-seed1, organization seed-o1; the log is the plan
  log of one of the dispatch runs below (20-odd chunks) read with
  offset=0&limit=65536, with the seeded chunks in the same table.

| server | workspaces | request | req/s | p50 | p99 | non-2xx |
|---|---:|---|---:|---:|---:|---:|
$(printf '%s\n' "${ROWS[@]}")

Dispatch: $NRUNS speculative plan-only runs in a new workspace, created
one after the other (each waits for the previous to finish),
plan-queued-at -> planning-at in ms:

| server | workspaces | runs | p50 | p99 |
|---|---:|---:|---:|---:|
$(printf '%s\n' "${DROWS[@]}")
EOF
