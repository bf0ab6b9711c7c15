#!/usr/bin/env bash
# lib.sh - helpers the benchmark scripts source: tools, the release build,
# starting and stopping terraced (demo on SQLite, primary on a throwaway
# PostgreSQL), small API calls, and the machine description.
#
# Everything runs on 127.0.0.1.  Each script gets one scratch dir
# ($BENCH_TMP, removed on exit) and every daemon or PostgreSQL it starts is
# stopped by its own pid / data dir on exit.
#
# Environment:
#   TERRACE_BENCH_BUILD  build dir (default <repo>/build-bench)
#   BENCH_NO_BUILD=1     use the existing build as is
#   BENCH_TMPDIR         where scratch dirs go (default /tmp; state_io.sh
#                        measures the disk this is on)
#
# SPDX-License-Identifier: MPL-2.0

set -euo pipefail

BENCH_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH_BUILD=${TERRACE_BENCH_BUILD:-$BENCH_ROOT/build-bench}
BENCH_TMP=$(mktemp -d "${BENCH_TMPDIR:-/tmp}/terrace-bench.XXXXXX")
chmod 755 "$BENCH_TMP"          # the postgres user must reach its socket
BENCH_PIDS=()
BENCH_PGDIRS=()

blog() { printf '== %s\n' "$*" >&2; }

bench_cleanup() {
  local p d
  for p in "${BENCH_PIDS[@]}"; do
    kill "$p" 2>/dev/null || true
  done
  for p in "${BENCH_PIDS[@]}"; do
    wait "$p" 2>/dev/null || true
  done
  for d in "${BENCH_PGDIRS[@]}"; do
    bash "$BENCH_ROOT/tests/lib/pg.sh" stop "$d" >/dev/null 2>&1 || true
  done
  rm -rf "$BENCH_TMP"
}
trap bench_cleanup EXIT
trap 'exit 130' INT TERM

# Installs wrk, hyperfine, PostgreSQL, jq, curl if any is missing.
bench_tools() {
  local missing=() p
  for p in wrk hyperfine jq curl python3; do
    command -v "$p" >/dev/null 2>&1 || missing+=("$p")
  done
  ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing+=(postgresql)
  [ ${#missing[@]} -eq 0 ] && return 0
  blog "installing ${missing[*]}"
  local sudo=
  [ "$(id -u)" != 0 ] && sudo=sudo
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq \
    --no-install-recommends "${missing[@]}" >/dev/null
}

# Release build, no sanitizers, no tests, in its own dir.
bench_build() {
  if [ "${BENCH_NO_BUILD:-}" = 1 ] && [ -x "$BENCH_BUILD/terraced" ]; then
    return 0
  fi
  blog "building $BENCH_BUILD (Release)"
  cmake -S "$BENCH_ROOT" -B "$BENCH_BUILD" -G Ninja \
    -DCMAKE_BUILD_TYPE=Release -DTERRACE_TESTS=OFF >/dev/null
  # terraced-idle: what a secondary is while it waits (src/node/idle.h)
  ninja -C "$BENCH_BUILD" terraced terraced-idle >/dev/null
}

# bench_build_rev REV: a Release build of commit REV (from `git archive`,
# so the work tree does not matter) under $BENCH_TMP; sets REV_BUILD.
bench_build_rev() {
  local src=$BENCH_TMP/rev-src
  REV_BUILD=$BENCH_TMP/rev-build
  blog "building $1 (Release) for the baseline"
  mkdir -p "$src"
  git -C "$BENCH_ROOT" archive "$1" | tar -x -C "$src"
  cmake -S "$src" -B "$REV_BUILD" -G Ninja \
    -DCMAKE_BUILD_TYPE=Release -DTERRACE_TESTS=OFF >/dev/null
  ninja -C "$REV_BUILD" terraced >/dev/null
}

bench_free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# The commit measured, with "+dirty" when the work tree has changes.
bench_commit() {
  local c
  c=$(git -C "$BENCH_ROOT" rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
  if [ -n "$(git -C "$BENCH_ROOT" status --porcelain --untracked-files=no \
             -- src CMakeLists.txt 2>/dev/null)" ] ||
     [ -n "$(git -C "$BENCH_ROOT" ls-files --others --exclude-standard \
             -- src 2>/dev/null)" ]; then
    c="$c+dirty (uncommitted changes under src/)"
  fi
  echo "$c"
}

# Markdown lines describing the machine.
bench_machine() {
  local mem cpu
  mem=$(awk '/^MemTotal:/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)
  cpu=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
  echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "- machine: nproc $(nproc), memory $mem, CPU $cpu," \
       "kernel $(uname -r)"
  echo "- commit: $(bench_commit)"
  echo "- load average at start: $(cut -d' ' -f1-3 /proc/loadavg)" \
       "(other work on the machine is not stopped)"
}

# bench_start NAME ROLE [extra terraced args...]
#   ROLE demo: SQLite in the data dir.  ROLE pg: primary on a new
#   throwaway PostgreSQL.  Sets D_URL D_PID D_DIR D_TOKEN D_CA D_LOG.
bench_start() {
  local name=$1 role=$2
  shift 2
  local port dir args
  port=$(bench_free_port)
  dir=$BENCH_TMP/$name
  mkdir -p "$dir"
  D_URL=https://127.0.0.1:$port
  D_DIR=$dir/data
  D_LOG=$dir/terraced.log
  D_CA=$D_DIR/tls/ca.pem
  args=(--data-dir "$D_DIR" --listen "127.0.0.1:$port"
        --external-url "$D_URL")
  if [ "$role" = pg ]; then
    local pgdir=$dir/pg conninfo
    mkdir -p "$pgdir"
    BENCH_PGDIRS+=("$pgdir")
    conninfo=$(bash "$BENCH_ROOT/tests/lib/pg.sh" start "$pgdir")
    args+=(--role primary --database-url "$conninfo")
  else
    args+=(--role demo)
  fi
  "$BENCH_BUILD/terraced" "${args[@]}" "$@" >"$D_LOG" 2>&1 &
  D_PID=$!
  BENCH_PIDS+=("$D_PID")
  local i
  for i in $(seq 1 300); do
    kill -0 "$D_PID" 2>/dev/null || {
      tail -n 20 "$D_LOG" >&2
      echo "terraced ($name) exited during start-up" >&2
      return 1
    }
    if [ -f "$D_CA" ] &&
       curl -sf --cacert "$D_CA" "$D_URL/_health_check" >/dev/null 2>&1; then
      D_TOKEN=$(cat "$D_DIR/admin-token")
      return 0
    fi
    sleep 0.1
  done
  echo "terraced ($name) not ready after 30 s" >&2
  return 1
}

# Stops the daemon started last (by its pid).
bench_stop() {
  kill "$D_PID" 2>/dev/null || true
  wait "$D_PID" 2>/dev/null || true
}

# api METHOD PATH [JSON-BODY] -> response body on stdout; fails (with the
# body on stderr) unless the status is 2xx.
api() {
  local method=$1 path=$2 body=${3:-} out code
  out=$BENCH_TMP/api.out
  local a=(-s -o "$out" -w '%{http_code}' --cacert "$D_CA" -X "$method"
           -H "Authorization: Bearer $D_TOKEN"
           -H 'Content-Type: application/vnd.api+json')
  [ -n "$body" ] && a+=(--data-binary "$body")
  code=$(curl "${a[@]}" "$D_URL$path")
  if [ "${code:0:1}" != 2 ]; then
    echo "$method $path -> $code: $(head -c 600 "$out")" >&2
    return 1
  fi
  cat "$out"
}

# bench_setup_ws ORG WS: creates an organization and a workspace in it;
# sets WS_ID.
bench_setup_ws() {
  local org=$1 ws=$2
  api POST /api/v2/organizations "$(jq -nc --arg n "$org" \
    '{data:{type:"organizations",attributes:{name:$n,
      email:"bench@example.com"}}}')" >/dev/null
  WS_ID=$(api POST "/api/v2/organizations/$org/workspaces" \
    "$(jq -nc --arg n "$ws" '{data:{type:"workspaces",
      attributes:{name:$n,"execution-mode":"local"}}}')" | jq -r .data.id)
  [ -n "$WS_ID" ] && [ "$WS_ID" != null ]
}

# Resident set of a pid, in kB.
bench_rss_kb() {
  awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"
}

# wrk latency ("812.00us", "1.20ms", "1.01s") in milliseconds.
to_ms() {
  awk -v v="$1" 'BEGIN {
    n = v + 0
    if (v ~ /us$/) n /= 1000
    else if (v ~ /ms$/) n += 0
    else if (v ~ /m$/) n *= 60000
    else if (v ~ /s$/) n *= 1000
    printf "%.2f", n }'
}

# run_wrk BACKEND ENDPOINT-LABEL PATH: wrk against $D_URL with $D_TOKEN
# ($CONNS connections, $DUR after a $WARM warm-up); appends a markdown
# table row to ROWS.
run_wrk() {
  local backend=$1 label=$2 path=$3 out rps p50 p99 bad err
  out=$BENCH_TMP/wrk.out
  wrk -t2 -c"$CONNS" -d"$WARM" -H "Authorization: Bearer $D_TOKEN" \
    "$D_URL$path" >/dev/null
  blog "wrk $backend $path ($DUR, $CONNS connections)"
  wrk -t2 -c"$CONNS" -d"$DUR" --latency \
    -H "Authorization: Bearer $D_TOKEN" \
    -H "Accept: application/vnd.api+json" "$D_URL$path" >"$out"
  cat "$out" >&2
  rps=$(awk '/^Requests\/sec:/ { printf "%.0f", $2 }' "$out")
  p50=$(to_ms "$(awk '$1 == "50%" { print $2 }' "$out")")
  p99=$(to_ms "$(awk '$1 == "99%" { print $2 }' "$out")")
  bad=$(awk '/Non-2xx or 3xx responses:/ { print $NF }' "$out")
  err=$(awk '/Socket errors:/ { sub(/.*Socket errors: /, ""); print }' "$out")
  ROWS+=("| $backend | \`GET $label\` | $rps | $p50 | $p99 | ${bad:-0} | ${err:-none} |")
}
