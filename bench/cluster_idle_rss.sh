#!/usr/bin/env bash
# cluster_idle_rss.sh - what an idle primary's memory does as idle
# secondaries join: `terrace cluster up` with 3 primaries and one
# secondary, then scaled to BENCH_SECONDARIES; each primary's VmRSS,
# RssAnon and Pss and its client connections (each idle secondary parks
# one claim long-poll, through HAProxy, on one of the primaries) with one
# secondary, then BENCH_SETTLE s and BENCH_LATER s after every secondary
# is terraced-idle.
#
# No tofu is registered (HOME is an empty dir for the cluster, so none is
# found in ~/.cache/terrace, and none is passed): the secondaries have no
# tool to fetch and go idle at once, so 100 of them fit on a small
# machine.  No run is started.
#
# BENCH_BASE_REV=REV: p1 runs a Release build of REV, p2 and p3 this
# tree, side by side in one cluster (each primary is restarted once the
# cluster is up, with its own arguments, so all three start alike).
#
#   bench/cluster_idle_rss.sh  (BENCH_SECONDARIES=100 BENCH_SETTLE=60
#                               BENCH_LATER=120 BENCH_BASE_REV=)
#
# Prints a markdown section on stdout.  Not part of CI (minutes).
#
# SPDX-License-Identifier: MPL-2.0
. "$(dirname "$0")/lib.sh"

NSEC=${BENCH_SECONDARIES:-100}
SETTLE=${BENCH_SETTLE:-60}
LATER=${BENCH_LATER:-120}
BASE=${BENCH_BASE_REV:-}

bench_build
ninja -C "$BENCH_BUILD" terrace >/dev/null
[ -n "$BASE" ] && bench_build_rev "$BASE"
command -v haproxy >/dev/null || PATH=$PATH:/usr/sbin
command -v haproxy >/dev/null || { echo "haproxy missing" >&2; exit 1; }

CL=$(mktemp -d /tmp/tci-XXXXXX) # short: PostgreSQL's socket is in it
NOHOME=$BENCH_TMP/home
mkdir -p "$NOHOME"
# restarted primaries are not the cluster's children: stopped here
EXTRA=()
cluster_down() {
  HOME=$NOHOME "$BENCH_BUILD/terrace" cluster down --dir "$CL" >&2 || true
  local p
  for p in "${EXTRA[@]}"; do
    kill "$p" 2>/dev/null || true
  done
  rm -rf "$CL"
}
trap 'cluster_down; bench_cleanup' EXIT

pid_of() { awk -v n="$1" '$1 == n { print $2 }' "$CL/nodes"; }
port_of() { awk -v n="$1" '$1 == n { sub(/.*:/, "", $4); print $4 }' \
  "$CL/nodes"; }

# restart NAME BINARY: the primary again, same arguments and environment
restart() {
  local name=$1 bin=$2 pid args envs new
  pid=$(pid_of "$name")
  mapfile -d '' args <"/proc/$pid/cmdline"
  mapfile -d '' envs <"/proc/$pid/environ"
  kill -TERM "$pid"
  for _ in $(seq 100); do
    [ "$(awk '{ print $3 }' "/proc/$pid/stat" 2>/dev/null || echo Z)" = Z ] &&
      break
    sleep 0.1
  done
  args[0]=$bin
  env -i "${envs[@]}" setsid "${args[@]}" >>"$CL/logs/$name.log" 2>&1 \
    </dev/null &
  new=$!
  EXTRA+=("$new")
  sed -i "s/^$name $pid /$name $new /" "$CL/nodes"
}

# one table row per primary: NAME BUILD VmRSS RssAnon Pss connections
ROWS=()
measure() {
  local when=$1 n pid rss anon pss conns build
  for n in p1 p2 p3; do
    pid=$(pid_of "$n")
    rss=$(awk '/^VmRSS:/ { printf "%.1f", $2 / 1024 }' "/proc/$pid/status")
    anon=$(awk '/^RssAnon:/ { printf "%.1f", $2 / 1024 }' "/proc/$pid/status")
    pss=$(awk '/^Pss:/ { printf "%.1f", $2 / 1024 }' \
      "/proc/$pid/smaps_rollup")
    conns=$(ss -Htn state established "( sport = :$(port_of "$n") )" | wc -l)
    build="this tree"
    [ -n "$BASE" ] && [ "$n" = p1 ] && build="$BASE"
    ROWS+=("| $when | $n ($build) | $rss | $anon | $pss | $conns |")
  done
}

all_idle() {
  local pid
  for pid in $(awk '$3 == "secondary" { print $2 }' "$CL/nodes"); do
    case $(readlink "/proc/$pid/exe" 2>/dev/null) in
    */terraced-idle | '') ;;
    *) return 1 ;;
    esac
  done
}

MACHINE=$(bench_machine)
blog "cluster up: 3 primaries, 1 secondary (no tool registered)"
HOME=$NOHOME "$BENCH_BUILD/terrace" cluster up --dir "$CL" --primaries 3 \
  --secondaries 1 --capacity 1 --terraced "$BENCH_BUILD/terraced" \
  >/dev/null 2>&1
for n in p1 p2 p3; do
  bin=$BENCH_BUILD/terraced
  [ -n "$BASE" ] && [ "$n" = p1 ] && bin=$REV_BUILD/terraced
  restart "$n" "$bin"
done
sleep 30
measure "1 secondary, 30 s"
blog "scaling to $NSEC secondaries"
T0=$(date +%s)
HOME=$NOHOME "$BENCH_BUILD/terrace" cluster scale --dir "$CL" \
  --secondaries "$NSEC" >/dev/null 2>&1
for _ in $(seq 300); do
  all_idle && break
  sleep 1
done
IDLE_S=$(($(date +%s) - T0))
UP=$(awk '$3 == "secondary"' "$CL/nodes" | wc -l)
sleep "$SETTLE"
measure "$UP secondaries, +$SETTLE s"
sleep "$LATER"
measure "$UP secondaries, +$((SETTLE + LATER)) s"
PGC=$(psql "host=$CL/pg user=terrace dbname=terrace" -Atc \
  "SELECT count(*) FROM pg_stat_activity WHERE datname = 'terrace' AND
   backend_type = 'client backend' AND pid <> pg_backend_pid()" \
  2>/dev/null || echo "-")

cat <<EOF
### Idle primaries with $UP idle secondaries

$MACHINE
- cluster: \`terrace cluster up --primaries 3 --secondaries 1\`, then
  \`scale --secondaries $NSEC\` (every secondary terraced-idle after
  $IDLE_S s); no tool registered, no run; Release builds
- PostgreSQL connections of the three primaries at the end (pools,
  leader, wake-ups): $PGC

| when | primary (build) | VmRSS MB | RssAnon MB | Pss MB | client connections |
|---|---|---:|---:|---:|---:|
EOF
printf '%s\n' "${ROWS[@]}"
