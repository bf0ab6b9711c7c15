#!/usr/bin/env bash
# blob_transfer.sh - a ~100 MB state uploaded and downloaded through
# Terrace with its blobs on S3 (tests/lib/s3.sh's server: gofakes3 behind
# a SigV4 check, objects in memory), beside a plain curl PUT and GET of
# the same bytes to the same server (curl --aws-sigv4, unsigned payload).
# Demo role (SQLite metadata); the state is sealed at rest by Terrace, as
# in production, so its path also encrypts and decrypts.
#
#   Upload: (untimed) bump the serial, POST state-versions -> upload URL;
#     (timed) curl PUT of the file to it.  The version must end finalized.
#   Download: curl GET of hosted-state-download-url; md5 checked.
#   Peak RSS: terraced's VmHWM after the uploads and after the downloads.
#
#   bench/blob_transfer.sh   (BENCH_STATE_MB=100, BENCH_RUNS=3)
#   S3FAKE_LOG=1 KEEP_S3LOG=F: the server logs each request (timed to the
#   microsecond) into F, and the upload's start and end go to stderr.
#
# SPDX-License-Identifier: MPL-2.0
. "$(dirname "$0")/lib.sh"

MB=${BENCH_STATE_MB:-100}
RUNS=${BENCH_RUNS:-3}
GEN=$BENCH_ROOT/bench/gen_state.py
LINEAGE=b3c1e6a2-7d4f-4c1e-9a55-0e5f3b2d8c10

bench_tools
bench_build

S3DIR=$BENCH_TMP/s3
s3_stop() { [ -n "${KEEP_S3LOG:-}" ] && cp "$S3DIR/server.log" "$KEEP_S3LOG"; bash "$BENCH_ROOT/tests/lib/s3.sh" stop "$S3DIR" || true; }
trap 's3_stop; bench_cleanup' EXIT
EP=$(env -u AWS_SESSION_TOKEN bash "$BENCH_ROOT/tests/lib/s3.sh" start "$S3DIR")
# shellcheck disable=SC1091
. "$S3DIR/env"
export AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY

F=$BENCH_TMP/state.json
blog "generating a $MB MB state"
python3 "$GEN" gen "$F" "$MB"
SIZE=$(stat -c %s "$F")

now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }

bench_start s3 demo \
  --blob-url "s3://terrace/bench?endpoint=$EP&force-path-style=true"
bench_setup_ws bench ws-blob
api POST "/api/v2/workspaces/$WS_ID/actions/lock" \
  '{"reason":"blob_transfer benchmark"}' >/dev/null

up=() down=() cup=() cdown=()
serial=1
for i in $(seq 1 "$RUNS"); do
  serial=$((serial + 1))
  md5=$(python3 "$GEN" serial "$F" "$serial")
  body=$(jq -nc --argjson s "$serial" --arg m "$md5" --arg l "$LINEAGE" \
    '{data:{type:"state-versions",attributes:{serial:$s,md5:$m,lineage:$l}}}')
  resp=$(api POST "/api/v2/workspaces/$WS_ID/state-versions" "$body")
  url=$(jq -r '.data.attributes["hosted-state-upload-url"]' <<<"$resp")
  sv=$(jq -r .data.id <<<"$resp")
  t0=$(now)
  [ -n "${KEEP_S3LOG:-}" ] && blog "upload starts $(date +%T.%N)"
  curl -sSf --cacert "$D_CA" -X PUT -H 'Expect:' \
    -H 'Content-Type: application/octet-stream' --data-binary "@$F" \
    "$url" -o /dev/null
  up+=("$(secs "$t0" "$(now)")")
  [ -n "${KEEP_S3LOG:-}" ] && blog "upload ends $(date +%T.%N)"
  st=$(api GET "/api/v2/state-versions/$sv" | jq -r .data.attributes.status)
  [ "$st" = finalized ] || { echo "state version $sv is $st" >&2; exit 1; }
done
hwm_up=$(awk '/^VmHWM:/ { print $2 }' "/proc/$D_PID/status")
cur=$(api GET "/api/v2/workspaces/$WS_ID/current-state-version")
DL=$(jq -r '.data.attributes["hosted-state-download-url"]' <<<"$cur")
for i in $(seq 1 "$RUNS"); do
  rm -f "$BENCH_TMP/down"
  t0=$(now)
  curl -sSf --cacert "$D_CA" -H "Authorization: Bearer $D_TOKEN" \
    -o "$BENCH_TMP/down" "$DL"
  down+=("$(secs "$t0" "$(now)")")
  [ "$(md5sum <"$BENCH_TMP/down" | cut -d' ' -f1)" = "$md5" ] ||
    { echo "downloaded state differs" >&2; exit 1; }
done
hwm=$(awk '/^VmHWM:/ { print $2 }' "/proc/$D_PID/status")
rss=$(bench_rss_kb "$D_PID")
bench_stop

C=(curl -sSf --aws-sigv4 "aws:amz:us-east-1:s3"
   --user "$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY"
   -H "x-amz-content-sha256: UNSIGNED-PAYLOAD")
for i in $(seq 1 "$RUNS"); do
  t0=$(now)
  "${C[@]}" -T "$F" \
    "$EP/terrace/plain/state" -o /dev/null
  cup+=("$(secs "$t0" "$(now)")")
  rm -f "$BENCH_TMP/down"
  t0=$(now)
  "${C[@]}" -o "$BENCH_TMP/down" "$EP/terrace/plain/state"
  cdown+=("$(secs "$t0" "$(now)")")
  cmp -s "$F" "$BENCH_TMP/down" || { echo "plain copy differs" >&2; exit 1; }
done

# row LABEL TIMES...: mean, min, MB/s of the mean
row() {
  local label=$1; shift
  printf '%s\n' "$@" | awk -v l="$label" -v s="$SIZE" '
    { t += $1; if (NR == 1 || $1 < m) m = $1 }
    END { a = t / NR; printf "| %s | %.3f | %.3f | %.1f |\n", l, a, m, s / a / 1e6 }'
}
mean() { printf '%s\n' "$@" | awk '{ t += $1 } END { print t / NR }'; }
pct() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%d", 100 * b / a }'; }

cat <<EOT
### Blob transfer on S3 ($(awk -v s="$SIZE" 'BEGIN { printf "%.1f", s / 1e6 }') MB state, demo, --blob-url s3://)

$RUNS runs each, seconds; MB/s = 10^6 bytes per second of the mean.
Server: gofakes3 v1.2.0 behind a SigV4 check (tests/lib/s3.sh), objects
in memory, on loopback.  Terrace seals the state at rest (AES-256-GCM)
and stores it in 8 MiB multipart parts; the plain copy is one curl PUT
and one curl GET of the same bytes (unsigned payload, no encryption).
terraced peak RSS (VmHWM): $((hwm_up / 1024)) MB after the uploads,
$((hwm / 1024)) MB after the downloads; RSS at the end $((rss / 1024)) MB.

| command | mean s | min s | MB/s |
|---|---:|---:|---:|
$(row "Terrace upload (PUT upload-url)" "${up[@]}")
$(row "curl PUT to S3" "${cup[@]}")
$(row "Terrace download (GET download-url)" "${down[@]}")
$(row "curl GET from S3" "${cdown[@]}")

Terrace against the plain copy: upload $(pct "$(mean "${up[@]}")" "$(mean "${cup[@]}")") %,
download $(pct "$(mean "${down[@]}")" "$(mean "${cdown[@]}")") % of curl's speed (target >= 50 %).
EOT
