#!/usr/bin/env bash
# peer_read.sh - the API read and list paths beside OTF, in one run: wrk
# on GET /api/v2/workspaces/:id (64 connections) and on a page of 100
# workspaces (4 and 64 connections) against the Terrace demo (SQLite), a
# Terrace primary (PostgreSQL) and otfd (bench/otf.sh; its rows are
# skipped when no otfd can be had), each with one organization of 100
# workspaces; RSS of each server idle and after its rounds.  Prints a
# markdown section on stdout.
#
#   bench/peer_read.sh      (BENCH_DURATION=10s; OTF_SRC, OTFD_BIN: otf.sh)
#
# SPDX-License-Identifier: MPL-2.0
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/otf.sh"

DUR=${BENCH_DURATION:-10s}
WARM=${BENCH_WARMUP:-3s}
NWS=100

bench_tools
bench_build

ROWS=()
RSS=()

# An organization "peer" with NWS local-execution workspaces; WS_ID is
# one of them.
populate() {
  bench_setup_ws peer w0
  local i
  for i in $(seq 1 $((NWS - 1))); do
    api POST /api/v2/organizations/peer/workspaces \
      "$(jq -nc --arg n "w$i" '{data:{type:"workspaces",
        attributes:{name:$n,"execution-mode":"local"}}}')" >/dev/null
  done
}

rounds() {
  local who=$1 idle
  populate
  api GET "/api/v2/workspaces/$WS_ID" >/dev/null
  api GET "/api/v2/organizations/peer/workspaces?page%5Bsize%5D=$NWS" \
    | jq -e ".data | length == $NWS" >/dev/null
  idle=$(bench_rss_kb "$D_PID")
  CONNS=64 run_wrk "$who" "workspaces/:id (64)" "/api/v2/workspaces/$WS_ID"
  CONNS=4 run_wrk "$who" "list of $NWS (4)" \
    "/api/v2/organizations/peer/workspaces?page%5Bsize%5D=$NWS"
  CONNS=64 run_wrk "$who" "list of $NWS (64)" \
    "/api/v2/organizations/peer/workspaces?page%5Bsize%5D=$NWS"
  RSS+=("| $who | $((idle / 1024)) | $(($(bench_rss_kb "$D_PID") / 1024)) |")
}

blog "Terrace demo"
bench_start peer-demo demo
rounds "Terrace demo (SQLite)"
bench_stop
blog "Terrace primary"
bench_start peer-pg pg
rounds "Terrace primary (PostgreSQL)"
bench_stop
OTF_NOTE="otfd: not measured (no binary; see bench/otf.sh)"
if otf_find && otf_start peer-otf; then
  blog "otfd $OTF_VERSION"
  rounds "otfd $OTF_VERSION"
  bench_stop
  OTF_NOTE="otfd: $OTF_VERSION, built from its source tag, on its own PostgreSQL"
fi

cat <<EOF
### API reads beside OTF (wrk)

$(bench_machine)
- $OTF_NOTE
- each server: one organization with $NWS workspaces; \`wrk -t2 -d$DUR
  --latency\` over HTTPS with a Bearer token after a $WARM warm-up,
  connections in brackets; latency in ms; wrk and the servers share the
  machine, so compare rows of this run only.

| server | endpoint | req/s | p50 | p99 | non-2xx | socket errors |
|---|---|---:|---:|---:|---:|---|
$(printf '%s\n' "${ROWS[@]}")

| server | RSS idle (MB) | RSS after its rounds (MB) |
|---|---:|---:|
$(printf '%s\n' "${RSS[@]}")

EOF
