#!/usr/bin/env bash
# rss_load.sh - resident memory of each role, idle and after load, side
# by side: the demo (SQLite), a primary on a throwaway PostgreSQL, and a
# secondary joined to that primary.
#
# For the demo and the primary (each with one organization of 100
# workspaces): VmRSS once /_health_check answers and the process has been
# quiet for BENCH_SETTLE seconds ("idle"); after BENCH_REQUESTS mixed
# reads and lists (bench/reqloop.py: ping, GET workspace, list
# workspaces, account details over 8 TLS keep-alive connections); after
# wrk with 64 connections for BENCH_WRK_SECS seconds on GET workspace and
# then on a list of 100 workspaces (the load issue 13 measured); and
# once the daemon has answered what wrk left queued, BENCH_SETTLE seconds
# later ("quiet").  The secondary is measured idle
# (joined, heartbeating, long-polling) and after the primary's load.
# Targets: quiet <= 2x idle (issue 13); idle secondary <= 5 MB, idle
# primary <= 15 MB VmRSS (issue 9).  PSS and private (Private_Clean +
# Private_Dirty) come from /proc/PID/smaps_rollup; the per-mapping
# breakdown of each idle role from bench/smaps.py.  Prints a markdown
# section on stdout.
#
#   bench/rss_load.sh   (BENCH_REQUESTS=100000 BENCH_WRK_SECS=15
#                        BENCH_SETTLE=3)
#
# SPDX-License-Identifier: MPL-2.0
. "$(dirname "$0")/lib.sh"

N=${BENCH_REQUESTS:-100000}
WRK_SECS=${BENCH_WRK_SECS:-15}
SETTLE=${BENCH_SETTLE:-3}

bench_tools
bench_build

mb() { awk -v v="$1" 'BEGIN { printf "%.1f", v / 1024 }'; }
rollup() { awk -v k="$2" '$1 == k":" { print $2 }' "/proc/$1/smaps_rollup"; }
private_kb() {
  echo $(($(rollup "$1" Private_Clean) + $(rollup "$1" Private_Dirty)))
}
status_kb() { awk -v k="$2" '$1 == k":" { print $2 }' "/proc/$1/status"; }

# snap PID -> "rss pss private threads hwm" (kB)
snap() {
  echo "$(bench_rss_kb "$1") $(rollup "$1" Pss) $(private_kb "$1")" \
       "$(status_kb "$1" Threads) $(status_kb "$1" VmHWM)"
}

# cpu_ticks PID: user + system clock ticks so far
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }

# wait_quiet PID: until the process used no CPU for a whole second (the
# requests wrk left queued are answered), at most 120 s
wait_quiet() {
  local a b i
  a=$(cpu_ticks "$1")
  for i in $(seq 1 120); do
    sleep 1
    b=$(cpu_ticks "$1")
    [ "$b" -le "$a" ] && return 0
    a=$b
  done
  blog "pid $1 still busy after 120 s"
}

ROWS=()
DETAIL=()

# breakdown LABEL PID
breakdown() {
  DETAIL+=("" "#### $1: where the idle $(mb "$(bench_rss_kb "$2")") MB is" ""
           "| mapping | RSS kB | mappings | share | shared-clean kB |"
           "|---|---:|---:|---:|---:|")
  local line
  while IFS= read -r line; do
    DETAIL+=("$line")
  done < <(python3 "$BENCH_ROOT/bench/smaps.py" "$2" 14)
}

# row LABEL IDLE AFTER-REQLOOP AFTER-WRK QUIET (snaps; "-" for none)
row() {
  local label=$1 i r w q ratio
  read -r -a i <<<"$2"
  read -r -a r <<<"$3"
  read -r -a w <<<"$4"
  read -r -a q <<<"$5"
  ratio=$(awk -v a="${q[0]}" -v b="${i[0]}" 'BEGIN { printf "%.2f", a / b }')
  ROWS+=("| $label | $(mb "${i[0]}") | $(mb "${i[1]}") | $(mb "${i[2]}") | $(mb "${r[0]}") | $(mb "${w[0]}") | $(mb "${q[0]}") | $(mb "${q[1]}") | $(mb "${q[2]}") | **$ratio** | $(mb "${q[4]}") | ${i[3]} / ${q[3]} |")
}

# load: BENCH_REQUESTS through reqloop, then wrk -c64; sets AFTER_REQ,
# AFTER_WRK, and SNAP_PIDS' snaps in SNAPS_REQ / SNAPS_WRK.
WRK_OUT=()
wrk_run() {
  local label=$1 path=$2 out
  out=$(wrk -t2 -c64 -d"${WRK_SECS}s" -H "Authorization: Bearer $D_TOKEN" \
    -H "Accept: application/vnd.api+json" "$D_URL$path")
  echo "$out" >&2
  WRK_OUT+=("$label: $(awk '/^Requests\/sec:/ { printf "%.0f req/s", $2 }' <<<"$out")$(awk '/Non-2xx/ { printf ", %s non-2xx", $NF }' <<<"$out")")
}

# setup: one organization "bench" with 100 workspaces; sets WS_ID
setup() {
  bench_setup_ws bench ws-rss
  local i
  for i in $(seq 1 99); do
    api POST /api/v2/organizations/bench/workspaces \
      "{\"data\":{\"type\":\"workspaces\",\"attributes\":{\"name\":\"ws-$i\"}}}" \
      >/dev/null
  done
}

# load ROLE-LABEL EXTRA-PID: runs the load against $D_URL, snapping
# $D_PID (and EXTRA-PID, if given, into E_*) before, between and after.
load() {
  local label=$1 extra=${2:-}
  blog "$label: $N requests (reqloop)"
  python3 "$BENCH_ROOT/bench/reqloop.py" "$D_URL" "$D_CA" "$D_TOKEN" \
    bench "$WS_ID" "$N" >&2
  A_REQ=$(snap "$D_PID")
  [ -n "$extra" ] && E_REQ=$(snap "$extra")
  blog "$label: wrk -c64, ${WRK_SECS}s GET workspace, ${WRK_SECS}s list of 100"
  wrk_run "$label, GET workspace" "/api/v2/workspaces/$WS_ID"
  wrk_run "$label, list of 100" \
    "/api/v2/organizations/bench/workspaces?page%5Bsize%5D=100"
  A_WRK=$(snap "$D_PID")
  [ -n "$extra" ] && E_WRK=$(snap "$extra")
  wait_quiet "$D_PID"
  sleep "$SETTLE"
  A_QUIET=$(snap "$D_PID")
  [ -n "$extra" ] && E_QUIET=$(snap "$extra")
  return 0
}

blog "demo: start"
bench_start rss-demo demo
setup
sleep "$SETTLE"
idle=$(snap "$D_PID")
breakdown "demo (SQLite)" "$D_PID"
load "demo"
row "demo (SQLite)" "$idle" "$A_REQ" "$A_WRK" "$A_QUIET"
bench_stop

blog "primary: start"
bench_start rss-pg pg
setup

# a secondary joined to the primary
blog "secondary: join"
JOIN=$(api GET /api/v2/admin/join-token | jq -r .data.attributes.token)
SPORT=$(bench_free_port)
SDIR=$BENCH_TMP/secondary
mkdir -p "$SDIR"
TERRACE_JOIN_TOKEN=$JOIN "$BENCH_BUILD/terraced" --role secondary \
  --join-url "$D_URL" --ca-file "$D_CA" --data-dir "$SDIR/data" \
  --listen "127.0.0.1:$SPORT" >"$SDIR/terraced.log" 2>&1 &
S_PID=$!
BENCH_PIDS+=("$S_PID")
ok=
for _ in $(seq 1 300); do
  kill -0 "$S_PID" 2>/dev/null || break
  if curl -sfk "https://127.0.0.1:$SPORT/_health_check?ready=1" \
       >/dev/null 2>&1; then
    ok=1
    break
  fi
  sleep 0.1
done
if [ -z "$ok" ]; then
  tail -n 20 "$SDIR/terraced.log" >&2
  echo "secondary not ready" >&2
  exit 1
fi
# ready once joined; idle once it holds the tool and has become
# terraced-idle (src/node/idle.h), when that is built
if [ -x "$BENCH_BUILD/terraced-idle" ]; then
  for _ in $(seq 1 300); do
    case $(readlink "/proc/$S_PID/exe") in */terraced-idle) break ;; esac
    sleep 1
  done
fi
blog "secondary runs $(readlink "/proc/$S_PID/exe")"
sleep "$SETTLE"
idle=$(snap "$D_PID")
s_idle=$(snap "$S_PID")
breakdown "primary (PostgreSQL)" "$D_PID"
breakdown "secondary" "$S_PID"
load "primary" "$S_PID"
row "primary (PostgreSQL)" "$idle" "$A_REQ" "$A_WRK" "$A_QUIET"
row "secondary (idle, joined to that primary during its load)" \
  "$s_idle" "$E_REQ" "$E_WRK" "$E_QUIET"
kill "$S_PID" 2>/dev/null || true
wait "$S_PID" 2>/dev/null || true
bench_stop

cat <<EOF2
### RSS idle vs after load (issue 9, issue 13)

MB (1 MB = 1024 kB).  Each daemon holds one organization with 100
workspaces.  "idle": ${SETTLE} s after set-up.  "+reqloop": right after
$N requests (python http.client, 8 TLS keep-alive connections, mix:
ping / GET workspace / list workspaces / account details, all 2xx).
"+wrk": right after wrk -t2 -c64, ${WRK_SECS} s of GET workspace then
${WRK_SECS} s of lists of 100 workspaces.  "quiet": once the daemon
has used no CPU for a second (what wrk left queued is answered), plus
${SETTLE} s.
private = Private_Clean + Private_Dirty.  ratio = quiet VmRSS / idle
VmRSS (target ≤ 2).  Targets for idle VmRSS: secondary ≤ 5 MB, primary
≤ 15 MB.  VmHWM: the peak.

| role | idle VmRSS | idle PSS | idle private | +reqloop | +wrk | quiet VmRSS | quiet PSS | quiet private | ratio | VmHWM | threads idle / quiet |
|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|
EOF2
printf '%s\n' "${ROWS[@]}"
echo
echo "wrk throughput (machine shared, for context only): $(IFS=';'; echo "${WRK_OUT[*]}")."
printf '%s\n' "${DETAIL[@]}"
echo
