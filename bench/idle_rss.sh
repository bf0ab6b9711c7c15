#!/usr/bin/env bash
# idle_rss.sh - resident memory of the demo (release build): VmRSS right
# after the health check answers, after 10,000 requests and after another
# 10,000 (does it grow?), for the default settings and a small config
# (--threads 2 --db-pool 2) side by side.  Then where the memory is:
# /proc/PID/smaps_rollup and smaps summed by mapping.  Target: <= 15 MB.
# Prints a markdown section on stdout.
#
# Requests come from bench/reqloop.py: exactly N per batch over 8 TLS
# keep-alive connections, cycling ping, GET workspace, list workspaces,
# account details.
#
#   bench/idle_rss.sh        (BENCH_REQUESTS=10000)
#
# SPDX-License-Identifier: MPL-2.0
. "$(dirname "$0")/lib.sh"

N=${BENCH_REQUESTS:-10000}
TARGET_KB=$((15 * 1024))
# label|environment|terraced flags
CONFIGS=(
  "defaults (--threads 8 --db-pool 8)||"
  "small (--threads 2 --db-pool 2)||--threads 2 --db-pool 2"
  "--threads 2 --db-pool 8||--threads 2 --db-pool 8"
  "--threads 1 --db-pool 1||--threads 1 --db-pool 1"
  "defaults + MALLOC_ARENA_MAX=1|MALLOC_ARENA_MAX=1|"
)
[ -n "${BENCH_RSS_EXTRA:-}" ] && CONFIGS+=("$BENCH_RSS_EXTRA")

bench_tools
bench_build

ROWS=()
DETAIL=()

kb() { awk -v k="$1" '/^'"$1"':/ { print $2 }' "/proc/$2/status"; }
mb() { awk -v v="$1" 'BEGIN { printf "%.1f", v / 1024 }'; }

for cfg in "${CONFIGS[@]}"; do
  IFS='|' read -r label envs flags <<<"$cfg"
  read -r -a args <<<"$flags"
  blog "demo, $label"
  # shellcheck disable=SC2086
  env_args=($envs)
  for e in "${env_args[@]}"; do export "${e?}"; done
  bench_start "rss$((${#ROWS[@]} + 1))" demo "${args[@]}"
  for e in "${env_args[@]}"; do unset "${e%%=*}"; done
  r0=$(bench_rss_kb "$D_PID")
  bench_setup_ws bench ws-rss
  python3 "$BENCH_ROOT/bench/reqloop.py" "$D_URL" "$D_CA" "$D_TOKEN" \
    bench "$WS_ID" "$N" >&2
  r1=$(bench_rss_kb "$D_PID")
  python3 "$BENCH_ROOT/bench/reqloop.py" "$D_URL" "$D_CA" "$D_TOKEN" \
    bench "$WS_ID" "$N" >&2
  r2=$(bench_rss_kb "$D_PID")
  anon=$(kb RssAnon "$D_PID")
  file=$(kb RssFile "$D_PID")
  hwm=$(kb VmHWM "$D_PID")
  thr=$(kb Threads "$D_PID")
  pss=$(awk '/^Pss:/ { print $2 }' "/proc/$D_PID/smaps_rollup")
  verdict=ok
  [ "$r2" -gt "$TARGET_KB" ] && verdict="over"
  ROWS+=("| $label | $(mb "$r0") | $(mb "$r1") | $(mb "$r2") | $((r2 - r1)) | $(mb "$anon") | $(mb "$file") | $(mb "$pss") | $(mb "$hwm") | $thr | $verdict |")
  if [ ${#ROWS[@]} -le 2 ]; then   # breakdown for the first two configs
    DETAIL+=("" "#### $label: where the $(mb "$r2") MB is (after $((2 * N)) requests)" ""
             "smaps_rollup: $(awk '/^(Rss|Pss|Pss_Anon|Pss_File|Anonymous|Shared_Clean|Private_Dirty):/ { printf "%s %s kB; ", $1, $2 }' "/proc/$D_PID/smaps_rollup")"
             ""
             "| mapping | RSS kB | mappings | share | shared-clean kB |"
             "|---|---:|---:|---:|---:|")
    while IFS= read -r line; do
      DETAIL+=("$line")
    done < <(python3 "$BENCH_ROOT/bench/smaps.py" "$D_PID" 16)
  fi
  bench_stop
done

cat <<EOF
### Idle RSS (demo, SQLite)

VmRSS in MB (1 MB = 1024 kB) right after /_health_check answers, after
$N and after $((2 * N)) requests (python http.client, 8 TLS keep-alive
connections, mix: ping / GET workspace / list workspaces / account
details, all 2xx). "growth" = kB between the two batches. RssAnon /
RssFile / Pss / VmHWM / threads after the second batch. Target ≤ 15 MB.

| config | start | +${N} | +$((2 * N)) | growth kB | RssAnon | RssFile | Pss | VmHWM | threads | ≤ 15 MB |
|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|
EOF
printf '%s\n' "${ROWS[@]}"
printf '%s\n' "${DETAIL[@]}"
echo
