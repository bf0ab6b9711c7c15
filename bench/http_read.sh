#!/usr/bin/env bash
# http_read.sh - read throughput and latency of the HTTPS API: wrk with
# 64 keep-alive connections on GET /api/v2/workspaces/:id (one database
# read plus token check) and, for context, GET /api/v2/ping (no database),
# against the demo (SQLite) and a primary on PostgreSQL, one after the
# other in the same run.  Prints a markdown section on stdout.
#
#   bench/http_read.sh            (BENCH_DURATION=15s, BENCH_CONNS=64)
#
# SPDX-License-Identifier: MPL-2.0
. "$(dirname "$0")/lib.sh"

DUR=${BENCH_DURATION:-15s}
CONNS=${BENCH_CONNS:-64}
WARM=${BENCH_WARMUP:-3s}

bench_tools
bench_build

ROWS=()

bench_one() {
  local backend=$1 role=$2
  blog "starting $backend"
  bench_start "read-$role" "$role"
  bench_setup_ws bench ws-read
  # The request must succeed before it is worth timing.
  api GET "/api/v2/workspaces/$WS_ID" >/dev/null
  run_wrk "$backend" /api/v2/ping /api/v2/ping
  run_wrk "$backend" /api/v2/workspaces/:id "/api/v2/workspaces/$WS_ID"
  bench_stop
}

bench_one "demo (SQLite)" demo
bench_one "primary (PostgreSQL)" pg

cat <<EOF
### HTTP reads (wrk)

\`wrk -t2 -c$CONNS -d$DUR --latency\` over HTTPS with a keep-alive Bearer
token, after a $WARM warm-up; daemon defaults (--threads 8 --db-pool 8,
access log on, written to a file). wrk and terraced share the machine.
Latency in ms.

| backend | endpoint | req/s | p50 | p99 | non-2xx | socket errors |
|---|---|---:|---:|---:|---:|---|
EOF
printf '%s\n' "${ROWS[@]}"
echo
