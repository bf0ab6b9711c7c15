#!/usr/bin/env bash
# state_io.sh - upload and download of a ~100 MB state file through the
# upload-URL flow the newer CLIs use, timed with hyperfine next to a plain
# cp of the same file on the same disk (with and without fsync), a
# cat > /dev/null read, and a PUT and GET of the same bytes through a
# plain HTTPS file server (bench/plain_https.py, the demo's certificate).
# Demo role (SQLite metadata, blobs on local disk).  Peak RSS (VmHWM) is
# taken per phase: the daemon is restarted on the same data directory
# between the uploads and the downloads.  Prints a markdown section on
# stdout.
#
#   Upload, per run:  (untimed) bump the serial in place, POST
#     /workspaces/:id/state-versions {serial, md5, lineage} with no `state`
#     -> hosted-state-upload-url;  (timed) curl PUT --data-binary @file.
#     The next run first checks the previous version is "finalized".
#   Download: GET hosted-state-download-url with the Bearer token to a file
#     on the same disk; the md5 is checked afterwards.
#
# With BENCH_BASELINE=<commit> that commit is built and measured the same
# way in the same run, before this one (upload and download rows for
# each), so a change to the state path is compared side by side.
#
#   bench/state_io.sh       (BENCH_STATE_MB=100, BENCH_RUNS=5,
#                            BENCH_BASELINE unset)
#
# SPDX-License-Identifier: MPL-2.0
. "$(dirname "$0")/lib.sh"

MB=${BENCH_STATE_MB:-100}
RUNS=${BENCH_RUNS:-5}
GEN=$BENCH_ROOT/bench/gen_state.py
LINEAGE=b3c1e6a2-7d4f-4c1e-9a55-0e5f3b2d8c10

bench_tools
bench_build

F=$BENCH_TMP/state.json
blog "generating a $MB MB state"
python3 "$GEN" gen "$F" "$MB"
SIZE=$(stat -c %s "$F")


# The last version uploaded (if any) must be finalized.
state_check_last() {
  local prev st
  prev=$(cat "$BENCH_TMP/sv-id")
  [ -z "$prev" ] && return 0
  st=$(api GET "/api/v2/state-versions/$prev" |
       jq -r .data.attributes.status) || return 1
  [ "$st" = finalized ] && return 0
  echo "state version $prev is $st after its upload" >&2
  return 1
}

# Untimed step before each upload: check the previous upload, bump the
# serial and create the pending version.
state_prepare() {
  local serial md5 body resp url
  state_check_last || return 1
  serial=$(( $(cat "$BENCH_TMP/serial") + 1 ))
  echo "$serial" >"$BENCH_TMP/serial"
  md5=$(python3 "$GEN" serial "$F" "$serial") || return 1
  body=$(jq -nc --argjson s "$serial" --arg m "$md5" --arg l "$LINEAGE" \
    '{data:{type:"state-versions",
            attributes:{serial:$s,md5:$m,lineage:$l}}}')
  resp=$(api POST "/api/v2/workspaces/$WS_ID/state-versions" "$body") ||
    return 1
  url=$(jq -r '.data.attributes["hosted-state-upload-url"]' <<<"$resp")
  [ -n "$url" ] && [ "$url" != null ] || {
    echo "no hosted-state-upload-url in: ${resp:0:400}" >&2
    return 1
  }
  echo "$url" >"$BENCH_TMP/upload-url"
  jq -r .data.id <<<"$resp" >"$BENCH_TMP/sv-id"
}
export -f api state_check_last state_prepare
export BENCH_TMP D_CA D_TOKEN D_URL WS_ID GEN F LINEAGE

# measure LABEL: starts a demo daemon from $BENCH_BUILD and times the
# uploads, cp and downloads; results in $BENCH_TMP/LABEL/.
measure() {
local label=$1
local R=$BENCH_TMP/$label
mkdir -p "$R"
bench_start "state-$label" demo
hwm_idle=$(awk '/^VmHWM:/ { print $2 }' "/proc/$D_PID/status")
bench_setup_ws bench ws-state
api POST "/api/v2/workspaces/$WS_ID/actions/lock" \
  '{"reason":"state_io benchmark"}' >/dev/null
echo 1 >"$BENCH_TMP/serial"
: >"$BENCH_TMP/sv-id"
export BENCH_TMP D_CA D_TOKEN D_URL WS_ID GEN F LINEAGE
HF=(hyperfine --shell bash --style basic)
# Go's client (tofu) sends no "Expect: 100-continue"; neither do we.
UPLOAD="curl -sSf --cacert $D_CA -X PUT -H 'Expect:' \
  -H 'Content-Type: application/octet-stream' \
  --data-binary @$F \"\$(cat $BENCH_TMP/upload-url)\" -o /dev/null"

# One upload first, timed by hand: it is the warm-up, and when it is
# slower than BENCH_SLOW seconds it is also the only measurement (so the
# script stays bounded).
blog "upload: first run"
state_prepare
t0=$(date +%s.%N)
bash -c "$UPLOAD"
t1=$(date +%s.%N)
PROBE=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')
UP_RUNS=$RUNS
if awk -v p="$PROBE" -v s="${BENCH_SLOW:-20}" 'BEGIN { exit !(p > s) }'; then
  UP_RUNS=1
  blog "upload took $PROBE s: recording that single run"
  jq -n --argjson t "$PROBE" '{results: [{command: "upload (PUT upload-url)",
    mean: $t, stddev: null, min: $t}]}' >"$R/up.json"
else
  blog "upload x$RUNS"
  "${HF[@]}" --runs "$RUNS" --export-json "$R/up.json" \
    --prepare state_prepare -n "upload (PUT upload-url)" "$UPLOAD" >&2
fi
state_check_last
hwm_up=$(awk '/^VmHWM:/ { print $2 }' "/proc/$D_PID/status")
blog "cp x$RUNS"
"${HF[@]}" --runs "$RUNS" --warmup 1 --export-json "$R/cp.json" \
  --prepare "rm -f $BENCH_TMP/copy" -n "cp" "cp $F $BENCH_TMP/copy" \
  --prepare "rm -f $BENCH_TMP/copy" -n "cp + fsync" \
  "cp $F $BENCH_TMP/copy && sync $BENCH_TMP/copy" >&2
state_check_last
# a fresh process for the downloads, so their peak is their own
bench_stop
bench_start "state-$label" demo
hwm_idle2=$(awk '/^VmHWM:/ { print $2 }' "/proc/$D_PID/status")
export D_CA D_TOKEN D_URL
cur=$(api GET "/api/v2/workspaces/$WS_ID/current-state-version")
serial_cur=$(jq -r .data.attributes.serial <<<"$cur")
DL=$(jq -r '.data.attributes["hosted-state-download-url"]' <<<"$cur")
[ -n "$DL" ] && [ "$DL" != null ] || {
  echo "no hosted-state-download-url: ${cur:0:400}" >&2
  exit 1
}
want=$(python3 "$GEN" serial "$F" "$serial_cur")  # unchanged: same bytes

OUT=$BENCH_TMP/download.json
blog "download x$RUNS vs cat"
"${HF[@]}" --runs "$RUNS" --warmup 1 --export-json "$R/down.json" \
  --prepare "rm -f $OUT" -n "download (GET download-url)" \
  "curl -sSf --cacert $D_CA -H 'Authorization: Bearer $D_TOKEN' \
   -H 'Accept: application/json' -o $OUT '$DL'" \
  --prepare "true" -n "cat > /dev/null" "cat $F > /dev/null" >&2
got=$(md5sum "$OUT" | cut -d' ' -f1)
[ "$got" = "$want" ] || {
  echo "downloaded state md5 $got, expected $want" >&2
  exit 1
}
hwm=$(awk '/^VmHWM:/ { print $2 }' "/proc/$D_PID/status")
rss=$(bench_rss_kb "$D_PID")
bench_stop

echo "$PROBE $UP_RUNS $((hwm_up / 1024)) $((hwm / 1024)) $((rss / 1024))" \
  "$((hwm_idle / 1024)) $((hwm_idle2 / 1024))" >"$R/facts"
}

if [ -n "${BENCH_BASELINE:-}" ]; then
  BASE_REV=$(git -C "$BENCH_ROOT" rev-parse --short=12 "$BENCH_BASELINE")
  bench_build_rev "$BENCH_BASELINE"
  MAIN_BUILD=$BENCH_BUILD
  BENCH_BUILD=$REV_BUILD
  measure baseline
  BENCH_BUILD=$MAIN_BUILD
fi
measure this
read -r PROBE UP_RUNS HWM_UP HWM RSS IDLE_UP IDLE_DOWN <"$BENCH_TMP/this/facts"

# The same bytes through a plain HTTPS file server with the demo's
# certificate: what moving them costs without Terrace.
plain() {
  local port tls=$BENCH_TMP/state-this/data/tls pid i
  port=$(bench_free_port)
  mkdir -p "$BENCH_TMP/plain"
  python3 "$BENCH_ROOT/bench/plain_https.py" "$tls/server.pem" \
    "$tls/server-key.pem" "$BENCH_TMP/plain" "$port" \
    >"$BENCH_TMP/plain.out" 2>&1 &
  pid=$!
  BENCH_PIDS+=("$pid")
  for i in $(seq 1 100); do
    grep -q ready "$BENCH_TMP/plain.out" 2>/dev/null && break
    sleep 0.1
  done
  local url=https://127.0.0.1:$port/state.json
  blog "plain HTTPS server: PUT and GET x$RUNS"
  "${HF[@]}" --runs "$RUNS" --warmup 1 --export-json "$BENCH_TMP/plain.json" \
    -n "plain HTTPS server: PUT" \
    "curl -sSf --cacert $tls/ca.pem -X PUT -H 'Expect:' \
     --data-binary @$F $url -o /dev/null" \
    --prepare "rm -f $BENCH_TMP/download.json" -n "plain HTTPS server: GET" \
    "curl -sSf --cacert $tls/ca.pem -o $BENCH_TMP/download.json $url" >&2
  cmp -s "$F" "$BENCH_TMP/download.json" || {
    echo "plain server returned other bytes" >&2
    exit 1
  }
  kill "$pid"
}
HF=(hyperfine --shell bash --style basic)
plain

rows() {
  jq -r --argjson size "$SIZE" --arg who "${2:-}" '.results[] |
    "| \($who)\(.command) | \(.mean * 1000 | round / 1000) | " +
    "\(if .stddev == null then "–" else .stddev * 1000 | round / 1000 end) | " +
    "\(.min * 1000 | round / 1000) | " +
    "\($size / .mean / 1e6 | if . < 10 then (. * 10 | round / 10)
                                 else round end) |"' "$1"
}

cat <<EOF
### State upload/download ($(awk -v s="$SIZE" 'BEGIN { printf "%.1f", s / 1e6 }') MB state, demo)

hyperfine, $RUNS runs after 1 warm-up (upload: $UP_RUNS run(s) after a
first upload of $PROBE s; a single run when that first one takes over
${BENCH_SLOW:-20} s); seconds; MB/s = 10^6 bytes per second of the mean.
Upload = curl PUT to the signed upload URL (untimed before each run:
serial bump + md5 + POST state-versions; the version is checked
"finalized" afterwards); download = curl GET of hosted-state-download-url
with the Bearer token, md5 verified. File, blob store and copies on the
same disk ($(df --output=source "$BENCH_TMP" | tail -n1)). terraced peak RSS (VmHWM; the
daemon is restarted between the phases): $HWM_UP MB after the uploads
($IDLE_UP MB before them), $HWM MB after the downloads ($IDLE_DOWN MB
before them); RSS at the end $RSS MB.$(if [ -n "${BENCH_BASELINE:-}" ]; then
  read -r _ _ bu bd br biu bid <"$BENCH_TMP/baseline/facts"
  echo " Baseline $BASE_REV (built from \`git archive\`, measured first"
  echo "in the same run): peak RSS $bu MB after the uploads ($biu before),"
  echo "$bd MB after the downloads ($bid before), $br MB at the end."
fi) The plain server is bench/plain_https.py (Python, OpenSSL, 1 MB
reads and writes, the demo's certificate), curl on the same file.

| command | mean s | stddev s | min s | MB/s |
|---|---:|---:|---:|---:|
EOF
if [ -n "${BENCH_BASELINE:-}" ]; then
  rows "$BENCH_TMP/baseline/up.json" "baseline $BASE_REV: "
  rows "$BENCH_TMP/baseline/down.json" "baseline $BASE_REV: "
fi
rows "$BENCH_TMP/this/up.json"
rows "$BENCH_TMP/this/cp.json"
rows "$BENCH_TMP/this/down.json"
rows "$BENCH_TMP/plain.json"
echo
