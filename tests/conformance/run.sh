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
# as PASS in RESULTS.md now fails, is skipped or is missing, 2 the harness
# itself failed (bad arguments, go-tfe not downloadable or not compilable,
# no test ran at all).
#
# Environment knobs (all optional):
#   TERRACE_CACHE            cache dir (default $HOME/.cache/terrace)
#   CONFORMANCE_TIMEOUT      seconds for all go test runs together (default 1200)
#   CONFORMANCE_TEST_TIMEOUT seconds one top-level test may run before the
#                            test binary is killed and the rest resumed (300)
#   CONFORMANCE_FILTER       extended regex: run only the listed tests matching it
#   CONFORMANCE_TESTS_FILE   test list (default tests.txt beside this script)
#   CONFORMANCE_BASELINE     baseline (default RESULTS.md beside this script)
#   CONFORMANCE_ALLOW_REMOTE set to 1 to allow a non-loopback ADDRESS
#   ENABLE_TFE, ENABLE_BETA  passed through to go-tfe's tests (see README.md)
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
GO_TFE_MODULE=github.com/hashicorp/go-tfe
GO_TFE_VERSION=v1.53.0
CACHE="${TERRACE_CACHE:-${HOME:-/tmp}/.cache/terrace}"
MODDIR="$CACHE/go-tfe-$GO_TFE_VERSION"
TESTS_FILE="${CONFORMANCE_TESTS_FILE:-$HERE/tests.txt}"
BASELINE="${CONFORMANCE_BASELINE:-$HERE/RESULTS.md}"
BUDGET="${CONFORMANCE_TIMEOUT:-1200}"
PER_TEST="${CONFORMANCE_TEST_TIMEOUT:-300}"
FILTER="${CONFORMANCE_FILTER:-}"

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
      "$OUT"/failures.log "$OUT"/summary.txt "$OUT"/selected.txt "$OUT"/remaining*.txt

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
SUMMARIZE="$CACHE/bin/conformance-summarize"
(cd "$HERE/summarize" && go build -o "$SUMMARIZE.$$" .) || die "cannot build summarize"
mv "$SUMMARIZE.$$" "$SUMMARIZE"

# --- 3. the selected tests, checked against the test binary ---------------
SELECTED="$OUT/selected.txt"
sed -e 's/#.*//' -e 's/^[[:space:]]*//' -e 's/[[:space:]]*$//' "$TESTS_FILE" |
  awk 'NF && !seen[$0]++' > "$SELECTED.all"
if [ -n "$FILTER" ]; then
  grep -E -- "$FILTER" "$SELECTED.all" > "$SELECTED" || true
else
  cp "$SELECTED.all" "$SELECTED"
fi
rm -f "$SELECTED.all"
[ -s "$SELECTED" ] || die "no tests selected (tests file $TESTS_FILE, filter '${FILTER}')"
nsel=$(wc -l < "$SELECTED")

echo "compiling go-tfe $GO_TFE_VERSION integration tests"
if ! (cd "$MODDIR" && go test -tags=integration -list '.*' .) > "$OUT/list.txt" 2> "$OUT/list.stderr"; then
  cat "$OUT/list.stderr" >&2
  die "go-tfe tests do not compile"
fi
unknown="$(grep -vxF -f "$OUT/list.txt" "$SELECTED" || true)"
[ -z "$unknown" ] || die "not a test in go-tfe $GO_TFE_VERSION:"$'\n'"$unknown"

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

# --- 5. run; if the test binary dies (panic, log.Fatal, timeout, or killed
#        by the per-test watchdog) the tests it never reached are run again
#        in a fresh binary -------------------------------------------------
child=""
trap 'if [ -n "$child" ]; then kill -TERM "$child" 2>/dev/null; wait "$child" 2>/dev/null; fi; exit 143' TERM INT HUP
echo "running $nsel go-tfe tests against $ADDRESS (budget ${BUDGET}s, ENABLE_TFE=${ENABLE_TFE:-unset}, ENABLE_BETA=${ENABLE_BETA:-unset})"
cp "$SELECTED" "$OUT/remaining.txt"
events=()
start=$(date +%s)
i=0
while :; do
  i=$((i + 1))
  left=$((BUDGET - ($(date +%s) - start)))
  if [ "$left" -lt 30 ]; then
    echo "time budget exhausted; these tests did not run:"; sed 's/^/  /' "$OUT/remaining.txt"
    break
  fi
  regex="^($(paste -sd'|' "$OUT/remaining.txt"))\$"
  ev="$OUT/go-test.$i.json"
  events+=("$ev")
  echo "go test run $i: $(wc -l < "$OUT/remaining.txt") tests"
  # in the background so that a TERM/INT trap can stop it at once
  (cd "$MODDIR" && exec timeout --foreground -k 30 $((left + 120)) \
     "$SUMMARIZE" watch -out "$ev" -per-test "$PER_TEST" -- \
     go test -tags=integration -json -run "$regex" -count=1 -timeout "${left}s" .) \
     2> "$OUT/go-test.$i.stderr" &
  child=$!
  rc=0
  wait "$child" || rc=$?
  child=""
  echo "go test run $i: exit $rc"
  grep -h '^watchdog:' "$OUT/go-test.$i.stderr" || true
  "$SUMMARIZE" missing -selected "$SELECTED" "${events[@]}" > "$OUT/remaining.new.txt"
  if [ ! -s "$OUT/remaining.new.txt" ]; then
    break
  fi
  if cmp -s "$OUT/remaining.txt" "$OUT/remaining.new.txt"; then
    echo "go test run $i made no progress; giving up on the remaining tests"
    sed -n '1,40p' "$OUT/go-test.$i.stderr" >&2
    break
  fi
  mv "$OUT/remaining.new.txt" "$OUT/remaining.txt"
  echo "the test binary stopped early; running the $(wc -l < "$OUT/remaining.txt") tests it did not reach"
done
rm -f "$OUT/remaining.new.txt"

# The run counts as completed if at least one selected test produced a result.
nmissing=$("$SUMMARIZE" missing -selected "$SELECTED" "${events[@]}" | wc -l)
if [ "$nmissing" -ge "$nsel" ]; then
  sed -n '1,60p' "$OUT"/go-test.*.stderr >&2 || true
  die "go test produced no result for any selected test (see $OUT)"
fi

# --- 6. results, summary, baseline -----------------------------------------
"$SUMMARIZE" results -selected "$SELECTED" -out "$OUT/results.txt" \
  -failures "$OUT/failures.log" "${events[@]}" > "$OUT/summary.txt"

set +e
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
