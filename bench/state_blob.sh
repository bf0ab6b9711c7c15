#!/usr/bin/env bash
# state_blob.sh - a ~100 MB state uploaded to and downloaded from
# terraced on one blob backend, side by side with a plain copy of the
# same bytes, rounds alternating so both see the same machine.
#
#   bench/state_blob.sh file|s3|gcs|azure   (BENCH_STATE_MB=100,
#                                            BENCH_RUNS=3)
#
# Terrace (demo role, SQLite, state sealed at rest as always):
#   upload   (untimed) bump the serial, POST state-versions -> upload URL;
#            (timed) curl -T of the file over TLS to terraced, which
#            checks, digests, seals and streams it to the backend; the
#            timing ends when terraced answers (the object committed, the
#            version finalized); the version must end finalized
#   download curl GET of hosted-state-download-url over TLS: terraced
#            reads the sealed object from the backend, opens it and
#            sends it on; md5 checked
# Plain copy, the same file with curl alone, over HTTPS like Terrace's
# legs: the remote test servers serve HTTPS with a certificate from a CA
# the bench makes (tests/lib/tls_ca.sh), which the plain curl trusts with
# --cacert and terraced with ca-file= on its blob URL, so both sides pay
# TLS on every leg they have, as against a real cloud.  BENCH_BLOB_TLS=0:
# the servers speak plain HTTP, to the plain copy and to terraced alike
# (the only way for a terraced without ca-file=, such as an older build).
#   file     bench/plain_https.py (PUT and GET over TLS with the demo's
#            certificate, onto the same disk)
#   s3       one PUT and one GET to tests/lib/s3.sh's server (SigV4,
#            unsigned payload)
#   gcs      one media upload and one alt=media GET to fake-gcs-server
#   azure    one Put Blob and one Get Blob to Azurite (SAS)
# Remote backends also get a plain upload made as the backend makes it
# (8 MiB parts: S3 multipart, GCS resumable, Azure blocks and a block
# list), since the test servers' cost of parts differs from one PUT's.
# Every upload, Terrace's and plain, streams the file with curl -T (curl
# reads --data-binary @file whole into memory first).
# Prints a markdown section on stdout: mean and min seconds, MB/s, the
# plain copy's time over Terrace's (Terrace's share of its speed),
# terraced's peak RSS (VmHWM) and RSS before the first upload, and the
# CPU each transfer cost: the client curl's, the backend server's and
# terraced's, since on shared cores the wall time follows the CPU.
# S3FAKE_LOG=1 KEEP_S3LOG=F (s3): the server logs each request, timed to
# the microsecond, into F; each upload's start and end go to stderr.
#
# SPDX-License-Identifier: MPL-2.0
. "$(dirname "$0")/lib.sh"

KIND=${1:?file|s3|gcs|azure}
MB=${BENCH_STATE_MB:-100}
RUNS=${BENCH_RUNS:-3}
GEN=$BENCH_ROOT/bench/gen_state.py
LIB=$BENCH_ROOT/tests/lib
LINEAGE=6d0c9a52-3f1e-4b7a-9c2d-8e5f4a3b2c10
TLS=${BENCH_BLOB_TLS:-1}

bench_tools
bench_build

SRV=$BENCH_TMP/srv
stop_server() {
  case $KIND in
  s3)
    if [ -n "${KEEP_S3LOG:-}" ]; then cp "$SRV/server.log" "$KEEP_S3LOG"; fi
    bash "$LIB/s3.sh" stop "$SRV" >/dev/null 2>&1 || true ;;
  gcs) bash "$LIB/gcs.sh" stop "$SRV" >/dev/null 2>&1 || true ;;
  azure) bash "$LIB/azurite.sh" stop "$SRV" >/dev/null 2>&1 || true ;;
  esac
}
trap 'stop_server; bench_cleanup' EXIT

F=$BENCH_TMP/state.json
blog "generating a $MB MB state"
python3 "$GEN" gen "$F" "$MB"
SIZE=$(stat -c %s "$F")
split -b 8388608 -d -a 3 "$F" "$BENCH_TMP/part." # 8 MiB, as the backends

# TLS to the remote test servers: their certificate, the plain curl's
# --cacert (CURL_CA_BUNDLE reaches every curl below) and terraced's
# ca-file= (CAQ, appended to its blob URL)
CAQ=
if [ "$TLS" = 1 ] && [ "$KIND" != file ]; then
  bash "$LIB/tls_ca.sh" "$BENCH_TMP/tls"
  export TERRACE_TEST_TLS_DIR=$BENCH_TMP/tls
  export CURL_CA_BUNDLE=$BENCH_TMP/tls/ca.pem
  CAQ="&ca-file=$BENCH_TMP/tls/ca.pem"
fi

# The server, terraced's blob URL and the plain copy's two commands.
case $KIND in
file)
  BLOB_ARGS=()
  SERVER="local disk; plain copy: bench/plain_https.py"
  ;;
s3)
  EP=$(env -u AWS_SESSION_TOKEN bash "$LIB/s3.sh" start "$SRV")
  # shellcheck disable=SC1091
  . "$SRV/env"
  export AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY
  BLOB_ARGS=(--blob-url "s3://terrace/bench?endpoint=$EP&force-path-style=true$CAQ")
  C=(curl -sSf --aws-sigv4 "aws:amz:us-east-1:s3"
     --user "$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY"
     -H "x-amz-content-sha256: UNSIGNED-PAYLOAD")
  plain_put() { "${C[@]}" -T "$F" "$EP/terrace/plain/state" -o /dev/null; }
  plain_get() { "${C[@]}" -o "$1" "${@:2}" "$EP/terrace/plain/state"; }
  plain_parts() { # a multipart upload, as the backend makes it
    local id n=1 f etag xml=
    id=$("${C[@]}" -X POST "$EP/terrace/plain/parts?uploads=" |
      sed -n 's:.*<UploadId>\(.*\)</UploadId>.*:\1:p')
    for f in "$BENCH_TMP"/part.*; do
      etag=$("${C[@]}" -D - -o /dev/null -T "$f" \
        "$EP/terrace/plain/parts?partNumber=$n&uploadId=$id" |
        tr -d '\r' | sed -n 's/^[Ee][Tt][Aa][Gg]: //p')
      xml+="<Part><PartNumber>$n</PartNumber><ETag>$etag</ETag></Part>"
      n=$((n + 1))
    done
    "${C[@]}" -X POST -o /dev/null "$EP/terrace/plain/parts?uploadId=$id" \
      --data-binary "<CompleteMultipartUpload>$xml</CompleteMultipartUpload>"
  }
  SERVER="tests/lib/s3.sh (gofakes3 behind a SigV4 check, in memory)"
  ;;
gcs)
  EP=$(bash "$LIB/gcs.sh" start "$SRV" terrace)
  BLOB_ARGS=(--blob-url "gs://terrace/bench?endpoint=$EP$CAQ")
  plain_put() {
    curl -sSf -o /dev/null -X POST -H 'Expect:' \
      -H 'Content-Type: application/octet-stream' -T "$F" \
      "$EP/upload/storage/v1/b/terrace/o?uploadType=media&name=plain%2Fstate"
  }
  plain_get() { curl -sSf -o "$1" "${@:2}" "$EP/storage/v1/b/terrace/o/plain%2Fstate?alt=media"; }
  plain_parts() { # a resumable upload, as the backend makes it
    local loc off=0 f n
    loc=$(curl -sSf -D - -o /dev/null -X POST \
      -H "X-Upload-Content-Length: $SIZE" \
      "$EP/upload/storage/v1/b/terrace/o?uploadType=resumable&name=plain%2Fparts" |
      tr -d '\r' | sed -n 's/^[Ll]ocation: //p')
    for f in "$BENCH_TMP"/part.*; do
      n=$(stat -c %s "$f")
      curl -sS -o /dev/null -X PUT -H 'Expect:' \
        -H "Content-Range: bytes $off-$((off + n - 1))/$SIZE" \
        -T "$f" "$loc"
      off=$((off + n))
    done
  }
  SERVER="fake-gcs-server $(sed -n 's/^VERSION=//p' "$LIB/gcs.sh") (filesystem)"
  ;;
azure)
  EP=$(bash "$LIB/azurite.sh" start "$SRV")
  bash "$LIB/azurite.sh" container "$EP" plain
  bash "$LIB/azurite.sh" container "$EP" terrace
  SAS=$(bash "$LIB/azurite.sh" sas "$EP" plain)
  export AZURE_STORAGE_KEY='Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=='
  BLOB_ARGS=(--blob-url "azblob://terrace/bench?account=devstoreaccount1&endpoint=$EP$CAQ")
  plain_put() {
    curl -sSf -X PUT -H 'Expect:' -H 'x-ms-blob-type: BlockBlob' \
      -H 'Content-Type: application/octet-stream' -T "$F" \
      "$EP/plain/state.json?$SAS" -o /dev/null
  }
  plain_get() { curl -sSf -o "$1" "${@:2}" "$EP/plain/state.json?$SAS"; }
  plain_parts() { # blocks and a block list, as the backend makes them
    local n=0 f id list=
    for f in "$BENCH_TMP"/part.*; do
      id=$(printf 'blk%06d' "$n" | base64)
      curl -sSf -X PUT -H 'Expect:' -T "$f" -o /dev/null \
        "$EP/plain/parts.json?$SAS&comp=block&blockid=$id"
      list+="<Latest>$id</Latest>"
      n=$((n + 1))
    done
    curl -sSf -X PUT -H 'Content-Type: application/xml' -o /dev/null \
      --data-binary "<?xml version=\"1.0\" encoding=\"utf-8\"?><BlockList>$list</BlockList>" \
      "$EP/plain/parts.json?$SAS&comp=blocklist"
  }
  SERVER="Azurite $(sed -n 's/^AZURITE_VERSION=//p' "$LIB/azurite.sh")"
  ;;
*) echo "state_blob.sh: unknown backend $KIND" >&2; exit 2 ;;
esac

bench_start "blob-$KIND" demo "${BLOB_ARGS[@]}"
unset AZURE_STORAGE_KEY
bench_setup_ws bench ws-blob
api POST "/api/v2/workspaces/$WS_ID/actions/lock" \
  '{"reason":"state_blob benchmark"}' >/dev/null
IDLE=$(bench_rss_kb "$D_PID")
LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)

if [ "$KIND" = file ]; then # the plain HTTPS server, same certificate
  PPORT=$(bench_free_port)
  mkdir -p "$BENCH_TMP/plain"
  TLS=$D_DIR/tls
  python3 "$BENCH_ROOT/bench/plain_https.py" "$TLS/server.pem" \
    "$TLS/server-key.pem" "$BENCH_TMP/plain" "$PPORT" \
    >"$BENCH_TMP/plain.out" 2>&1 &
  BENCH_PIDS+=("$!")
  for _ in $(seq 1 100); do
    grep -q ready "$BENCH_TMP/plain.out" 2>/dev/null && break
    sleep 0.1
  done
  PURL=https://127.0.0.1:$PPORT/state.json
  plain_put() { curl -sSf --cacert "$D_CA" -X PUT -H 'Expect:' -T "$F" "$PURL" -o /dev/null; }
  plain_get() { curl -sSf --cacert "$D_CA" -o "$1" "${@:2}" "$PURL"; }
fi

now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }
# cpu [PID]: a process's user+system CPU so far, in clock ticks (all
# threads; terraced's by default); 0 without a process
cpu() {
  local p=${1:-$D_PID}
  if [ -n "$p" ] && [ -r "/proc/$p/stat" ]; then
    awk '{ print $14 + $15 }' "/proc/$p/stat"
  else echo 0; fi
}
HZ=$(getconf CLK_TCK)
ticks() { awk -v a="$1" -v b="$2" -v hz="$HZ" 'BEGIN { printf "%.3f", (b - a) / hz }'; }
# The backend server's process (remote kinds; the plain HTTPS server
# for file), whose CPU each transfer is charged with too.
SRV_PID=
if [ "$KIND" = file ]; then SRV_PID=${BENCH_PIDS[-1]}
else SRV_PID=$(cat "$SRV/pid"); fi
# timed CMD...: runs CMD; prints its wall time, the client's CPU (the
# command's user+system) and the backend server's CPU meanwhile
timed() {
  local t0 s0 tf=$BENCH_TMP/time
  s0=$(cpu "$SRV_PID")
  t0=$(now)
  local TIMEFORMAT='%U %S'
  { time "$@" 2>"$tf.err"; } 2>"$tf" ||
    { cat "$tf.err" >&2; echo "state_blob.sh: $1 failed" >&2; exit 1; }
  printf '%s %s %s\n' "$(secs "$t0" "$(now)")" \
    "$(awk '{ printf "%.3f", $1 + $2 }' "$tf")" \
    "$(ticks "$s0" "$(cpu "$SRV_PID")")"
}

up=() down=() pup=() pdown=() cup=() cdown=() pparts=()
serial=1
DL=
t_upload() {
  curl -sSf --cacert "$D_CA" -X PUT -H 'Expect:' \
    -H 'Content-Type: application/octet-stream' -T "$F" \
    "$1" -o /dev/null
}
t_download() {
  curl -sSf --cacert "$D_CA" -H "Authorization: Bearer $D_TOKEN" -o "$1" "$DL"
}
for i in $(seq 1 "$RUNS"); do
  blog "round $i of $RUNS"
  serial=$((serial + 1))
  md5=$(python3 "$GEN" serial "$F" "$serial")
  body=$(jq -nc --argjson s "$serial" --arg m "$md5" --arg l "$LINEAGE" \
    '{data:{type:"state-versions",attributes:{serial:$s,md5:$m,lineage:$l}}}')
  resp=$(api POST "/api/v2/workspaces/$WS_ID/state-versions" "$body")
  url=$(jq -r '.data.attributes["hosted-state-upload-url"]' <<<"$resp")
  sv=$(jq -r .data.id <<<"$resp")
  blog "upload starts $(date +%T.%N)"
  c0=$(cpu)
  up+=("$(timed t_upload "$url")")
  cup+=("$(ticks "$c0" "$(cpu)")")
  blog "upload ends $(date +%T.%N)"
  st=$(api GET "/api/v2/state-versions/$sv" | jq -r .data.attributes.status)
  [ "$st" = finalized ] || { echo "state version $sv is $st" >&2; exit 1; }
  pup+=("$(timed plain_put)")
  if [ "$KIND" != file ]; then pparts+=("$(timed plain_parts)"); fi
  cur=$(api GET "/api/v2/workspaces/$WS_ID/current-state-version")
  DL=$(jq -r '.data.attributes["hosted-state-download-url"]' <<<"$cur")
  rm -f "$BENCH_TMP/down"
  c0=$(cpu)
  down+=("$(timed t_download "$BENCH_TMP/down")")
  cdown+=("$(ticks "$c0" "$(cpu)")")
  [ "$(md5sum <"$BENCH_TMP/down" | cut -d' ' -f1)" = "$md5" ] ||
    { echo "downloaded state differs" >&2; exit 1; }
  rm -f "$BENCH_TMP/down"
  pdown+=("$(timed plain_get "$BENCH_TMP/down")")
  cmp -s "$F" "$BENCH_TMP/down" || { echo "plain copy differs" >&2; exit 1; }
done
HWM=$(awk '/^VmHWM:/ { print $2 }' "/proc/$D_PID/status")
bench_stop
# what the plain copy spoke (terraced's libcurl is the same library, so
# it negotiates the same: HTTP/2 where the server offers it over TLS)
PVER=$(plain_get /dev/null -r 0-0 -w '%{scheme} HTTP/%{http_version}')

row() {
  local label=$1; shift
  printf '%s\n' "$@" | awk -v l="$label" -v s="$SIZE" '
    { t += $1; if (NR == 1 || $1 < m) m = $1 }
    END { a = t / NR; printf "| %s | %.3f | %.3f | %.0f |", l, a, m, s / a / 1e6 }'
}
mean() { printf '%s\n' "$@" | awk '{ t += $1 } END { print t / NR }'; }
# col N ROWS...: the mean of field N of the rows, 3 decimals
col() {
  local n=$1; shift
  printf '%s\n' "$@" | awk -v n="$n" '{ t += $n } END { printf "%.3f", t / NR }'
}
# cpurow LABEL TERRACED_CPU ROWS...: one line of the CPU table
cpurow() {
  local label=$1 tcpu=$2; shift 2
  local c s
  c=$(col 2 "$@") s=$(col 3 "$@")
  printf '| %s | %s | %s | %s | %s | %s |' "$label" "$(col 1 "$@")" "$c" "$s" \
    "$tcpu" "$(awk -v a="$c" -v b="$s" -v t="${tcpu/-/0}" 'BEGIN { printf "%.3f", a + b + t }')"
}
pct() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%d %%", 100 * b / a }'; }

PARTS_ROW= PPARTS_CPU=
if [ "$KIND" != file ]; then
  PPARTS_CPU="$(cpurow "plain PUT in 8 MiB parts" - "${pparts[@]}")
"
  PARTS_ROW="$(row "plain PUT in 8 MiB parts" "${pparts[@]}") Terrace: $(pct "$(mean "${up[@]}")" "$(mean "${pparts[@]}")") |
"
fi
cat <<EOT
### State transfer on $KIND ($(awk -v s="$SIZE" 'BEGIN { printf "%.1f", s / 1e6 }') MB state, demo)

$RUNS rounds, each: Terrace upload, plain PUT, Terrace download, plain
GET; load average $LOAD0 at the start, $(cut -d' ' -f1-3 /proc/loadavg)
at the end.  Seconds; MB/s = 10^6 bytes per second of the mean; "vs plain" =
plain mean / Terrace mean (Terrace's share of the plain copy's speed).
Server: $SERVER, on loopback, sharing the 2 cores; the plain copy spoke
$PVER to it.  terraced RSS before
the first upload $((IDLE / 1024)) MB, peak (VmHWM) $((HWM / 1024)) MB.
terraced's CPU (user + system, all threads) per transfer, mean:
upload $(col 1 "${cup[@]}") s, download $(col 1 "${cdown[@]}") s.

| command | mean s | min s | MB/s | vs plain |
|---|---:|---:|---:|---:|
$(row "Terrace upload (PUT upload-url)" "${up[@]}") $(pct "$(mean "${up[@]}")" "$(mean "${pup[@]}")") |
$(row "plain PUT" "${pup[@]}") |
${PARTS_ROW}$(row "Terrace download (GET download-url)" "${down[@]}") $(pct "$(mean "${down[@]}")" "$(mean "${pdown[@]}")") |
$(row "plain GET" "${pdown[@]}") |

CPU seconds per transfer, mean: the client (curl: TLS to terraced for
Terrace's rows, $PVER to the server for the plain rows), the
backend server ($([ "$KIND" = file ] && echo "plain_https.py; terraced
itself is the server of Terrace's rows" || echo "the same process for
both")) and terraced (all threads).

| command | wall s | client CPU | server CPU | terraced CPU | all CPU |
|---|---:|---:|---:|---:|---:|
$(cpurow "Terrace upload" "$(col 1 "${cup[@]}")" "${up[@]}")
$(cpurow "plain PUT" - "${pup[@]}")
${PPARTS_CPU}$(cpurow "Terrace download" "$(col 1 "${cdown[@]}")" "${down[@]}")
$(cpurow "plain GET" - "${pdown[@]}")
EOT
