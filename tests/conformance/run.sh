#!/usr/bin/env bash
# go-tfe conformance harness: runs the go-tfe integration tests listed in
# tests.txt against a running Terrace and compares with RESULTS.md.
#
#   run.sh [--record] ADDRESS TOKEN CA_FILE [OUTDIR]
#
#   ADDRESS  e.g. https://127.0.0.1:8443 (loopback only, see below)
#   TOKEN    a site-admin user token
#   CA_FILE  PEM file of the CA that signed the server's certificate
#   OUTDIR   where logs and results.txt go
#            (default: ${TERRACE_CACHE:-$HOME/.cache/terrace}/conformance-results)
#   --record rewrite RESULTS.md from this run's results
#
# Exit status: 0 ok (no baseline yet, or no regression), 1 a test recorded
# as PASS in RESULTS.md now fails, is skipped or is missing, or a test the
# list expects to pass (no KIND in tests.txt) did not, 2 the harness
# itself failed (bad arguments, go-tfe not downloadable or not compilable,
# no test ran at all).
#
# Environment knobs (all optional):
#   TERRACE_CACHE            cache dir (default $HOME/.cache/terrace)
#   CONFORMANCE_TIMEOUT      seconds for all go test runs together (default 600)
#   CONFORMANCE_TEST_TIMEOUT seconds one top-level test may run before the
#                            test binary is killed and the rest resumed (300)
#   CONFORMANCE_FILTER       extended regex: run only the listed tests matching it
#   CONFORMANCE_SHARDS       test binaries run at once (default 3); the tests
#                            marked serial in the list run alone afterwards
#   CONFORMANCE_TESTS_FILE   test list (default tests.txt beside this script)
#   CONFORMANCE_GO_TFE_VERSION  go-tfe release whose tests run (default v1.53.0)
#   CONFORMANCE_BASELINE     baseline (default RESULTS.md beside this script)
#   CONFORMANCE_ALLOW_REMOTE set to 1 to allow a non-loopback ADDRESS
#   ENABLE_TFE, ENABLE_BETA  passed through to go-tfe's tests (see README.md)
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
GO_TFE_MODULE=github.com/hashicorp/go-tfe
GO_TFE_VERSION="${CONFORMANCE_GO_TFE_VERSION:-v1.53.0}"
CACHE="${TERRACE_CACHE:-${HOME:-/tmp}/.cache/terrace}"
MODDIR="$CACHE/go-tfe-$GO_TFE_VERSION"
TESTS_FILE="${CONFORMANCE_TESTS_FILE:-$HERE/tests.txt}"
BASELINE="${CONFORMANCE_BASELINE:-$HERE/RESULTS.md}"
BUDGET="${CONFORMANCE_TIMEOUT:-600}"
PER_TEST="${CONFORMANCE_TEST_TIMEOUT:-300}"
FILTER="${CONFORMANCE_FILTER:-}"
SHARDS="${CONFORMANCE_SHARDS:-3}"

usage() { sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '$d' -e 's/^# \{0,1\}//'; }
die() { echo "run.sh: $*" >&2; exit 2; }

record=0
pos=()
for a in "$@"; do
  case "$a" in
    --record) record=1 ;;
    -h|--help) usage; exit 0 ;;
    -*) die "unknown option $a (see --help)" ;;
    *) pos+=("$a") ;;
  esac
done
[ "${#pos[@]}" -ge 3 ] && [ "${#pos[@]}" -le 4 ] || { usage >&2; exit 2; }
ADDRESS="${pos[0]%/}"
TOKEN="${pos[1]}"
CA_FILE="${pos[2]}"
OUT="${pos[3]:-$CACHE/conformance-results}"

command -v go >/dev/null 2>&1 || die "go is not installed"
[ -n "$TOKEN" ] || die "empty TOKEN"
[ -r "$CA_FILE" ] || die "CA file $CA_FILE is not readable"
CA_FILE="$(cd "$(dirname "$CA_FILE")" && pwd)/$(basename "$CA_FILE")"
[[ "$BUDGET" =~ ^[0-9]+$ ]] || die "CONFORMANCE_TIMEOUT must be a number of seconds"
[[ "$PER_TEST" =~ ^[1-9][0-9]*$ ]] || die "CONFORMANCE_TEST_TIMEOUT must be a number of seconds"
[[ "$SHARDS" =~ ^[1-9][0-9]?$ ]] || die "CONFORMANCE_SHARDS must be 1..99"
if [ "$record" = 1 ] && [ -n "$FILTER" ]; then
  die "--record needs a full run; unset CONFORMANCE_FILTER"
fi

# Only loopback targets unless explicitly allowed.
case "$ADDRESS" in
  http://*|https://*) ;;
  *) die "ADDRESS must start with https:// (or http://): $ADDRESS" ;;
esac
hostport="${ADDRESS#*://}"; hostport="${hostport%%/*}"
case "$hostport" in
  \[*\]*) host="${hostport%%]*}"; host="${host#[}" ;;
  *) host="${hostport%%:*}" ;;
esac
case "$host" in
  localhost|127.*|::1) ;;
  *) [ "${CONFORMANCE_ALLOW_REMOTE:-}" = 1 ] ||
       die "refusing non-loopback ADDRESS host '$host' (set CONFORMANCE_ALLOW_REMOTE=1 to override)" ;;
esac

export GOWORK=off
mkdir -p "$CACHE/bin" "$OUT"
OUT="$(cd "$OUT" && pwd)"
rm -f "$OUT"/go-test.*.json "$OUT"/go-test.*.stderr "$OUT"/results.txt \
      "$OUT"/failures.log "$OUT"/summary.txt "$OUT"/selected.txt "$OUT"/remaining*.txt \
      "$OUT"/shard.* "$OUT"/parallel.txt "$OUT"/serial.txt

# --- 1. go-tfe source: a writable copy of the module in the cache ---------
if [ ! -f "$MODDIR/.terrace-ready" ]; then
  echo "fetching $GO_TFE_MODULE@$GO_TFE_VERSION"
  json="$(cd "$CACHE" && go mod download -json "$GO_TFE_MODULE@$GO_TFE_VERSION")" ||
    die "go mod download failed: $json"
  src="$(printf '%s\n' "$json" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p')"
  [ -n "$src" ] && [ -f "$src/go.mod" ] || die "go mod download gave no module dir: $json"
  tmp="$MODDIR.tmp.$$"
  rm -rf "$tmp" "$MODDIR"
  cp -r "$src" "$tmp"
  chmod -R u+w "$tmp"
  mv "$tmp" "$MODDIR"
  touch "$MODDIR/.terrace-ready"
fi

# --- 2. the summarizer ----------------------------------------------------
# built per run (the cache may be shared by checkouts of other versions)
SUMMARIZE="$OUT/summarize"
(cd "$HERE/summarize" && go build -o "$SUMMARIZE" .) || die "cannot build summarize"

# --- 3. the test binary, and the selected tests checked against it --------
echo "compiling go-tfe $GO_TFE_VERSION integration tests"
TESTBIN="$OUT/go-tfe.test"
if ! (cd "$MODDIR" && go test -tags=integration -c -o "$TESTBIN" . &&
      "$TESTBIN" -test.list '.*') > "$OUT/list.txt" 2> "$OUT/list.stderr"; then
  cat "$OUT/list.stderr" >&2
  die "go-tfe tests do not compile"
fi
SELECTED="$OUT/selected.txt"
complete=()
# the project's own list must classify every test of this go-tfe version
[ "$TESTS_FILE" -ef "$HERE/tests.txt" ] && complete=(-complete)
"$SUMMARIZE" select -list "$TESTS_FILE" -known "$OUT/list.txt" \
  ${complete[@]+"${complete[@]}"} -filter "$FILTER" \
  -out "$OUT/parallel.txt" -serial "$OUT/serial.txt" 2> "$OUT/select.stderr" ||
  die "$(cat "$OUT/select.stderr")"
cat "$OUT/parallel.txt" "$OUT/serial.txt" > "$SELECTED"
[ -s "$SELECTED" ] || die "no tests selected (tests file $TESTS_FILE, filter '${FILTER}')"
nsel=$(wc -l < "$SELECTED")

# --- 4. environment the go-tfe tests read (see helper_test.go) -------------
export TFE_ADDRESS="$ADDRESS" TFE_TOKEN="$TOKEN" SSL_CERT_FILE="$CA_FILE" SKIP_PAID=1
for v in TFE_ADMIN_SITE_ADMIN_TOKEN TFE_ADMIN_CONFIGURATION_TOKEN \
         TFE_ADMIN_PROVISION_LICENSES_TOKEN TFE_ADMIN_SUBSCRIPTION_TOKEN \
         TFE_ADMIN_SUPPORT_TOKEN TFE_ADMIN_SECURITY_MAINTENANCE_TOKEN \
         TFE_ADMIN_VERSION_MAINTENANCE_TOKEN; do
  export "$v=${!v:-$TOKEN}"
done
unset TFE_HOSTNAME
export NO_PROXY="127.0.0.1,localhost,::1${NO_PROXY:+,$NO_PROXY}"
export no_proxy="$NO_PROXY"

# --- 5. run, in SHARDS test binaries at once (go-tfe's tests each make
#        their own organization), then the serial tests alone.  If a
#        binary dies (panic, log.Fatal, timeout, or killed by the per-test
#        watchdog) the tests it never reached run again in a fresh one ---
pids=()
stop_all() {
  local p f
  for f in "$OUT"/shard.*.pid; do
    [ -f "$f" ] && kill -TERM "$(cat "$f")" 2>/dev/null || true
  done
  for p in ${pids[@]+"${pids[@]}"}; do kill -TERM "$p" 2>/dev/null || true; done
  for p in ${pids[@]+"${pids[@]}"}; do wait "$p" 2>/dev/null || true; done
  exit 143
}
trap stop_all TERM INT HUP
start=$(date +%s)

# run_shard ID LIST: runs the tests in LIST until each has a result, the
# budget is gone or a binary makes no progress; its event files are
# OUT/go-test.ID.NN.json.
run_shard() {
  local id="$1" list="$2" i=0 left ev rc regex
  local remaining="$OUT/remaining.$id.txt" next="$OUT/remaining.$id.new.txt"
  cp "$list" "$remaining"
  while :; do
    i=$((i + 1))
    left=$((BUDGET - ($(date +%s) - start)))
    if [ "$left" -lt 30 ]; then
      echo "[$id] time budget exhausted; these tests did not run:"
      sed 's/^/  /' "$remaining"
      return 0
    fi
    regex="^($(paste -sd'|' "$remaining"))\$"
    ev="$OUT/go-test.$id.$(printf '%02d' "$i").json"
    echo "[$id] go test run $i: $(wc -l < "$remaining") tests"
    rc=0
    # in the background, its pid in a file, so that stop_all can signal it
    # (timeout passes the signal on to the watcher, which kills the tests)
    (cd "$MODDIR" && exec timeout --foreground -k 30 $((left + 120)) \
       "$SUMMARIZE" watch -out "$ev" -per-test "$PER_TEST" -- \
       go tool test2json -t -p "$GO_TFE_MODULE" "$TESTBIN" -test.v=test2json \
       -test.run "$regex" -test.count=1 -test.timeout "${left}s") \
       2> "${ev%.json}.stderr" &
    echo $! > "$OUT/shard.$id.pid"
    wait $! || rc=$?
    echo "[$id] go test run $i: exit $rc"
    grep -h '^watchdog:' "${ev%.json}.stderr" || true
    "$SUMMARIZE" missing -selected "$list" "$OUT"/go-test."$id".*.json > "$next"
    [ -s "$next" ] || return 0
    if cmp -s "$remaining" "$next"; then
      echo "[$id] go test run $i made no progress; giving up on the remaining tests"
      sed -n '1,40p' "${ev%.json}.stderr" >&2
      return 0
    fi
    mv "$next" "$remaining"
    echo "[$id] the test binary stopped early; running the $(wc -l < "$remaining") tests it did not reach"
  done
}

npar=$(wc -l < "$OUT/parallel.txt")
nser=$(wc -l < "$OUT/serial.txt")
[ "$SHARDS" -le "$npar" ] || SHARDS=$((npar > 0 ? npar : 1))
echo "running $nsel go-tfe tests against $ADDRESS: $npar in $SHARDS shards, then $nser alone (budget ${BUDGET}s, ENABLE_TFE=${ENABLE_TFE:-unset}, ENABLE_BETA=${ENABLE_BETA:-unset})"
if [ "$npar" -gt 0 ]; then
  for s in $(seq 1 "$SHARDS"); do
    awk -v n="$SHARDS" -v k="$s" '(NR - 1) % n == k - 1' "$OUT/parallel.txt" > "$OUT/shard.$s.txt"
    run_shard "s$s" "$OUT/shard.$s.txt" > "$OUT/shard.$s.log" 2>&1 &
    pids+=($!)
  done
  for p in "${pids[@]}"; do wait "$p" || true; done
  pids=()
  cat "$OUT"/shard.*.log
fi
if [ "$nser" -gt 0 ]; then
  run_shard serial "$OUT/serial.txt" > "$OUT/shard.serial.log" 2>&1 &
  pids+=($!)
  wait "${pids[0]}" || true
  pids=()
  cat "$OUT/shard.serial.log"
fi
rm -f "$OUT"/remaining.*.txt "$OUT"/shard.*.pid
echo "go test runs took $(( $(date +%s) - start ))s"
events=("$OUT"/go-test.*.json)

# The run counts as completed if at least one selected test produced a result.
nmissing=$("$SUMMARIZE" missing -selected "$SELECTED" "${events[@]}" | wc -l)
if [ "$nmissing" -ge "$nsel" ]; then
  sed -n '1,60p' "$OUT"/go-test.*.stderr >&2 || true
  die "go test produced no result for any selected test (see $OUT)"
fi

# --- 6. results, summary, classification, baseline ------------------------
"$SUMMARIZE" results -selected "$SELECTED" -out "$OUT/results.txt" \
  -failures "$OUT/failures.log" "${events[@]}" > "$OUT/summary.txt"

set +e
"$SUMMARIZE" expect -list "$TESTS_FILE" -results "$OUT/results.txt"
erc=$?
"$SUMMARIZE" compare -baseline "$BASELINE" -results "$OUT/results.txt" -selected "$SELECTED"
crc=$?
set -e

status=0
if [ "$record" = 1 ]; then
  "$SUMMARIZE" record -results "$OUT/results.txt" -out "$BASELINE" \
    -version "$GO_TFE_VERSION" \
    -note "Tests: $(basename "$TESTS_FILE") ($nsel top-level tests)" \
    -note "Environment: ENABLE_TFE=${ENABLE_TFE:-unset}, ENABLE_BETA=${ENABLE_BETA:-unset}, SKIP_PAID=1"
  echo "recorded baseline: $BASELINE"
else
  [ "$erc" = 0 ] || status=1
  case "$crc" in
    0) ;;
    1) status=1 ;;
    3) echo "(failures are reported, not fatal, until a baseline is recorded with --record)" ;;
    *) die "baseline comparison failed" ;;
  esac
fi

echo "results: $OUT/results.txt   failure output: $OUT/failures.log"
cat "$OUT/summary.txt"
exit "$status"
