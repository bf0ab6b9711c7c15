#!/usr/bin/env bash
# OTF's selection of go-tfe tests (otf-patterns.txt), go-tfe v1.41.0,
# against a running Terrace: each pattern in a test binary of its own,
# judged PASS, FAIL or SKIP, and checked against what the list expects.
#
#   otf.sh ADDRESS TOKEN CA_FILE OUTDIR
#
# Writes OUTDIR/otf-results.txt ("STATUS pattern [why]" per pattern) and
# prints "otf: N passed, N failed, N skipped".  Exit status: 0 every
# pattern as expected, 1 a pattern expected to pass did not, 2 harness
# error.  Knobs: CONFORMANCE_SHARDS (patterns run at once, default 3),
# CONFORMANCE_TEST_TIMEOUT (seconds per top-level test, default 300),
# CONFORMANCE_FILTER (extended regex on the patterns), TERRACE_CACHE.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
GO_TFE_MODULE=github.com/hashicorp/go-tfe
GO_TFE_VERSION=v1.41.0
CACHE="${TERRACE_CACHE:-${HOME:-/tmp}/.cache/terrace}"
MODDIR="$CACHE/go-tfe-$GO_TFE_VERSION"
LIST="$HERE/otf-patterns.txt"
SHARDS="${CONFORMANCE_SHARDS:-3}"
PER_TEST="${CONFORMANCE_TEST_TIMEOUT:-300}"
FILTER="${CONFORMANCE_FILTER:-}"
# OTF's script skips this subtest in every run
SKIP='TestConfigurationVersionsCreate/provisional'

die() { echo "otf.sh: $*" >&2; exit 2; }
[ $# -eq 4 ] || die "usage: otf.sh ADDRESS TOKEN CA_FILE OUTDIR"
ADDRESS="${1%/}" TOKEN="$2" CA_FILE="$3" OUT="$4"
command -v go >/dev/null 2>&1 || die "go is not installed"
[ -r "$CA_FILE" ] || die "CA file $CA_FILE is not readable"
CA_FILE="$(cd "$(dirname "$CA_FILE")" && pwd)/$(basename "$CA_FILE")"
[[ "$SHARDS" =~ ^[1-9][0-9]?$ ]] || die "CONFORMANCE_SHARDS must be 1..99"
export GOWORK=off
mkdir -p "$CACHE/bin" "$OUT"
OUT="$(cd "$OUT" && pwd)"
rm -f "$OUT"/otf.*

# go-tfe v1.41.0: a writable copy of the module (its tests write files)
if [ ! -f "$MODDIR/.terrace-ready" ]; then
  echo "fetching $GO_TFE_MODULE@$GO_TFE_VERSION"
  json="$(cd "$CACHE" && go mod download -json "$GO_TFE_MODULE@$GO_TFE_VERSION")" ||
    die "go mod download failed: $json"
  src="$(printf '%s\n' "$json" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p')"
  [ -n "$src" ] && [ -f "$src/go.mod" ] || die "go mod download gave no module dir"
  rm -rf "$MODDIR.tmp.$$" "$MODDIR"
  cp -r "$src" "$MODDIR.tmp.$$"
  chmod -R u+w "$MODDIR.tmp.$$"
  mv "$MODDIR.tmp.$$" "$MODDIR"
  touch "$MODDIR/.terrace-ready"
fi
SUMMARIZE="$OUT/otf.summarize"
(cd "$HERE/summarize" && go build -o "$SUMMARIZE" .) || die "cannot build summarize"
echo "compiling go-tfe $GO_TFE_VERSION integration tests"
TESTBIN="$OUT/otf.go-tfe.test"
(cd "$MODDIR" && go test -c -o "$TESTBIN" .) > "$OUT/otf.build.log" 2>&1 ||
  { cat "$OUT/otf.build.log" >&2; die "go-tfe $GO_TFE_VERSION tests do not compile"; }

# the environment go-tfe's tests read (see run.sh)
export TFE_ADDRESS="$ADDRESS" TFE_TOKEN="$TOKEN" SSL_CERT_FILE="$CA_FILE" SKIP_PAID=1
for v in TFE_ADMIN_SITE_ADMIN_TOKEN TFE_ADMIN_CONFIGURATION_TOKEN \
         TFE_ADMIN_PROVISION_LICENSES_TOKEN TFE_ADMIN_SUBSCRIPTION_TOKEN \
         TFE_ADMIN_SUPPORT_TOKEN TFE_ADMIN_SECURITY_MAINTENANCE_TOKEN \
         TFE_ADMIN_VERSION_MAINTENANCE_TOKEN; do
  export "$v=${!v:-$TOKEN}"
done
unset TFE_HOSTNAME ENABLE_TFE
export NO_PROXY="127.0.0.1,localhost,::1${NO_PROXY:+,$NO_PROXY}" no_proxy="127.0.0.1,localhost,::1"

# the list: N, beta, kind, pattern, reason separated by US (\037): not
# a blank, so that read keeps the empty fields
sed -e 's/#.*//' "$LIST" | awk '
  NF == 0 { next }
  { beta = ""; kind = ""; i = 1
    if ($i == "beta") { beta = "beta"; i++ }
    if ($i == "fail" || $i == "skip") { kind = $i; i++ }
    pat = $i; reason = ""
    for (j = i + 1; j <= NF; j++) reason = reason (reason == "" ? "" : " ") $j
    if (kind != "" && reason == "") { print "missing reason: " $0 > "/dev/stderr"; bad = 1 }
    printf "%d\037%s\037%s\037%s\037%s\n", ++n, beta, kind, pat, reason }
  END { exit bad }' > "$OUT/otf.list" || die "bad line in $LIST"
if [ -n "$FILTER" ]; then
  awk -F'\037' -v re="$FILTER" '$4 ~ re' "$OUT/otf.list" > "$OUT/otf.list.f"
  mv "$OUT/otf.list.f" "$OUT/otf.list"
fi
[ -s "$OUT/otf.list" ] || die "no patterns selected"

# Called with & (a subshell of its own): it becomes the watcher, so that
# the trap's TERM reaches it and it kills its test binary.
run_pattern() { # N BETA PATTERN
  local n="$1" beta="$2" pat="$3"
  cd "$MODDIR" || exit 2
  exec env ${beta:+ENABLE_BETA=1} \
    "$SUMMARIZE" watch -out "$OUT/otf.$n.json" -per-test "$PER_TEST" -- \
    go tool test2json -t -p "$GO_TFE_MODULE" "$TESTBIN" -test.v=test2json \
    -test.run "$pat" -test.skip "$SKIP" -test.count=1 -test.timeout 900s \
    > /dev/null 2> "$OUT/otf.$n.stderr"
}

pids=()
trap 'for p in ${pids[@]+"${pids[@]}"}; do kill -TERM "$p" 2>/dev/null; done; exit 143' TERM INT HUP
start=$(date +%s)
echo "running $(wc -l < "$OUT/otf.list") OTF patterns (go-tfe $GO_TFE_VERSION) against $ADDRESS, $SHARDS at once"
while IFS=$'\037' read -r n beta kind pat reason; do
  while [ "$(jobs -rp | wc -l)" -ge "$SHARDS" ]; do wait -n || true; done
  run_pattern "$n" "$beta" "$pat" &
  pids+=($!)
done < "$OUT/otf.list"
wait || true
pids=()
echo "patterns took $(( $(date +%s) - start ))s"

status=0
np=0 nf=0 ns=0
: > "$OUT/otf-results.txt"
while IFS=$'\037' read -r n beta kind pat reason; do
  v="$("$SUMMARIZE" verdict "$OUT/otf.$n.json")"
  st="${v%% *}"
  printf '%s %s%s\n' "$st" "${beta:+[beta] }$pat" "${v#"$st"}" >> "$OUT/otf-results.txt"
  case "$st" in PASS) np=$((np + 1)) ;; FAIL) nf=$((nf + 1)) ;; *) ns=$((ns + 1)) ;; esac
  case "$kind:$st" in
    :PASS|fail:FAIL|skip:SKIP|skip:PASS) ;;
    fail:PASS) echo "  NOW PASSES $pat (listed as fail: drop the KIND in otf-patterns.txt)" ;;
    :*) echo "  UNEXPECTED $pat: $v (expected to pass)"; status=1 ;;
    *) echo "  UNEXPECTED $pat: $v (listed as $kind: $reason)"; status=1 ;;
  esac
done < "$OUT/otf.list"
# the output of failed patterns, for the log
for f in "$OUT"/otf.[0-9]*.json; do
  n="$(basename "$f" .json)"; n="${n#otf.}"
  case "$("$SUMMARIZE" verdict "$f")" in
    FAIL*) "$SUMMARIZE" results -selected /dev/null -out "$OUT/otf.$n.results" \
             -failures "$OUT/otf.$n.failures" "$f" > /dev/null || true ;;
  esac
done
cat "$OUT"/otf.*.failures > "$OUT/otf-failures.log" 2>/dev/null || true
echo "results: $OUT/otf-results.txt   failure output: $OUT/otf-failures.log"
echo "otf: $np passed, $nf failed, $ns skipped"
exit "$status"
