#!/usr/bin/env bash
# tls_ab.sh - the HTTPS connection path of the demo, this work tree against
# a baseline commit, both servers up at once and their rounds interleaved:
#   - handshakes: BENCH_HANDSHAKES new connections one after the other
#     (tls_probe.py, TCP_NODELAY), p50/p90/p99 of the handshake in ms;
#   - new connections under load: wrk, 16 connections, each request on a
#     new connection (Connection: close), GET /api/v2/workspaces/:id;
#   - keep-alive: wrk, 64 connections, the same GET;
#   - with BENCH_IDLE idle keep-alive connections held open (default
#     2,000; 0: skipped), the keep-alive round again;
#   - stalled handshakes: 8 connections that stop half-way through their
#     handshake, and the CPU seconds per second the server then uses.
# Markdown on stdout.
#
#   BENCH_BASELINE=<commit> bench/tls_ab.sh
#       (BENCH_ROUNDS=2, BENCH_DURATION=5s, BENCH_HANDSHAKES=300,
#        BENCH_IDLE=2000; without BENCH_BASELINE only this tree is run)
#
# SPDX-License-Identifier: MPL-2.0
. "$(dirname "$0")/lib.sh"

ROUNDS=${BENCH_ROUNDS:-2}
DUR=${BENCH_DURATION:-5s}
HANDSHAKES=${BENCH_HANDSHAKES:-300}
IDLE=${BENCH_IDLE:-2000}
PROBE="python3 $BENCH_ROOT/bench/tls_probe.py"

bench_tools
bench_build
NEW_BUILD=$BENCH_BUILD
SERVERS=()
declare -A URL CA TOKEN PID WS
if [ -n "${BENCH_BASELINE:-}" ]; then
  BASE_REV=$(git -C "$BENCH_ROOT" rev-parse --short=12 "$BENCH_BASELINE")
  bench_build_rev "$BENCH_BASELINE"
fi
if [ "$IDLE" -gt 0 ]; then
  want=$((IDLE + 1024))
  [ "$(ulimit -Hn)" = unlimited ] || [ "$(ulimit -Hn)" -ge "$want" ] ||
    { blog "the open-file limit is under $want: BENCH_IDLE=0"; IDLE=0; }
  [ "$IDLE" -gt 0 ] && ulimit -n "$want"
fi

# serve NAME BUILD: one demo server with one workspace; no per-address
# limit (every client here is 127.0.0.1)
serve() {
  local name=$1
  BENCH_BUILD=$2
  bench_start "$name" demo --conn-per-ip 0
  bench_setup_ws bench ws-tls
  URL[$name]=$D_URL CA[$name]=$D_CA TOKEN[$name]=$D_TOKEN PID[$name]=$D_PID
  WS[$name]=$D_URL/api/v2/workspaces/$WS_ID
  SERVERS+=("$name")
}

serve "this tree" "$NEW_BUILD"
[ -n "${BENCH_BASELINE:-}" ] && serve "$BASE_REV" "$REV_BUILD"

# wrk_row SERVER ROUND WHAT [HEADER]: one wrk run as a table row
wrk_row() {
  local s=$1 r=$2 what=$3 out=$BENCH_TMP/wrk.out conns=64
  local hdr=(-H "Authorization: Bearer ${TOKEN[$s]}")
  if [ "$what" = "new connections" ]; then
    conns=16
    hdr+=(-H "Connection: close")
  fi
  wrk -t2 -c$conns -d"$DUR" --latency "${hdr[@]}" "${WS[$s]}" >"$out"
  local rps p99 bad
  rps=$(awk '/^Requests\/sec:/ { printf "%.0f", $2 }' "$out")
  p99=$(to_ms "$(awk '$1 == "99%" { print $2 }' "$out")")
  bad=$(awk '/Non-2xx or 3xx responses:/ { print $NF }' "$out")
  echo "| $r | $s | $what | $rps | $p99 | ${bad:-0} |"
}

HS=() WRK=() STALL=()
for r in $(seq 1 "$ROUNDS"); do
  for s in "${SERVERS[@]}"; do
    blog "round $r: $s"
    HS+=("| $r | $s | $($PROBE handshakes "${URL[$s]}" "${CA[$s]}" \
      "$HANDSHAKES" | sed 's/ / | /g') |")
    WRK+=("$(wrk_row "$s" "$r" "new connections")")
    WRK+=("$(wrk_row "$s" "$r" keep-alive)")
    if [ "$IDLE" -gt 0 ]; then
      ready=$BENCH_TMP/hold.ready
      rm -f "$ready"
      $PROBE hold "${URL[$s]}" "${CA[$s]}" "${TOKEN[$s]}" "$IDLE" \
        "$ready" &
      holder=$!
      while [ ! -f "$ready" ]; do
        kill -0 "$holder" 2>/dev/null || { echo "hold failed" >&2; exit 1; }
        sleep 0.2
      done
      WRK+=("$(wrk_row "$s" "$r" "keep-alive, $IDLE idle open")")
      kill "$holder"
      wait "$holder" 2>/dev/null || true
    fi
    STALL+=("| $r | $s | $($PROBE stall "${URL[$s]}" "${PID[$s]}" 8 2) |")
  done
done

cat <<EOF
### HTTPS connections$( [ -n "${BENCH_BASELINE:-}" ] && echo ", against $BASE_REV")

$(bench_machine)
- demo servers, both up at once, rounds interleaved; wrk \`-t2 -d$DUR
  --latency\` with a Bearer token on GET /api/v2/workspaces/:id.

Handshakes ($HANDSHAKES, one after the other, ms):

| round | server | p50 | p90 | p99 |
|---:|---|---:|---:|---:|
$(printf '%s\n' "${HS[@]}")

| round | server | load | req/s | p99 (ms) | non-2xx |
|---:|---|---|---:|---:|---:|
$(printf '%s\n' "${WRK[@]}")

Eight handshakes stalled half-way for 2 s:

| round | server | server CPU (s per s) |
|---:|---|---:|
$(printf '%s\n' "${STALL[@]}")

EOF
