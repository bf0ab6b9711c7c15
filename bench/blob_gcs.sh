#!/usr/bin/env bash
# blob_gcs.sh - 100 MB upload and download through the GCS blob backend
# beside curl doing the same against the same fake-gcs-server, with the
# peak RSS of each process; prints a markdown section (bench/run_all.sh
# blob_gcs appends it to RESULTS.md).
#
# The backend goes through bench/blob_xfer.c (built here against the
# Release libterrace_core.a): uploads in resumable 8 MiB parts, downloads
# through its read-ahead window.  curl sends one media upload and reads
# one alt=media download, the plain copy the backend is measured against.
#
#   BLOB_GCS_MB   object size in MiB (default 100)
#   BLOB_GCS_RUNS runs of each (default 5; the median is reported)
#
# SPDX-License-Identifier: MPL-2.0
. "$(dirname "$0")/lib.sh"

MB=${BLOB_GCS_MB:-100}
RUNS=${BLOB_GCS_RUNS:-5}

bench_build
XFER=$BENCH_TMP/blob_xfer
# shellcheck disable=SC2046
cc -std=c17 -O2 -D_GNU_SOURCE -I"$BENCH_ROOT/src" \
  "$BENCH_ROOT/bench/blob_xfer.c" "$BENCH_BUILD/libterrace_core.a" \
  $(pkg-config --libs libmicrohttpd jansson sqlite3 libcrypto libcurl \
    libseccomp) -lpthread -lm -ldl -o "$XFER"

GCS_VERSION=$(sed -n 's/^VERSION=//p' "$BENCH_ROOT/tests/lib/gcs.sh")
GCS_DIR=$BENCH_TMP/gcs
url=$(bash "$BENCH_ROOT/tests/lib/gcs.sh" start "$GCS_DIR" bench)
trap 'bash "$BENCH_ROOT/tests/lib/gcs.sh" stop "$GCS_DIR" >/dev/null 2>&1 || true; bench_cleanup' EXIT
FILE=$BENCH_TMP/object.bin
head -c "$((MB * 1048576))" /dev/urandom >"$FILE"
BLOB="gs://bench/run?endpoint=$url"

# Runs a command under GNU time; prints "seconds maxrss_kb".
timed() {
  local out=$BENCH_TMP/time.txt
  /usr/bin/time -f '%e %M' -o "$out" "$@" >/dev/null
  cat "$out"
}

median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

declare -A SEC RSS
measure() {
  local name=$1; shift
  local s=() r=() line
  for _ in $(seq 1 "$RUNS"); do
    line=$(timed "$@")
    s+=("${line% *}"); r+=("${line#* }")
  done
  SEC[$name]=$(printf '%s\n' "${s[@]}" | median)
  RSS[$name]=$(printf '%s\n' "${r[@]}" | sort -n | tail -n1)
  blog "$name: ${s[*]} s, peak RSS ${r[*]} kB"
}

measure backend_put "$XFER" put "$BLOB" obj "$FILE"
measure backend_get "$XFER" get "$BLOB" obj
measure curl_put curl -fsS -o /dev/null -X POST \
  -H 'Content-Type: application/octet-stream' --data-binary "@$FILE" \
  "$url/upload/storage/v1/b/bench/o?uploadType=media&name=run%2Fcurl"
# The same upload as the backend makes it: a resumable session, 8 MiB
# parts, each PUT by its own curl.
split -b 8388608 -d -a 3 "$FILE" "$BENCH_TMP/part."
cat >"$BENCH_TMP/resumable.sh" <<'EOF'
set -euo pipefail
url=$1 total=$2; shift 2
loc=$(curl -fsS -D - -o /dev/null -X POST \
  -H "X-Upload-Content-Length: $total" \
  "$url/upload/storage/v1/b/bench/o?uploadType=resumable&name=run%2Fcurlr" |
  tr -d '\r' | sed -n 's/^[Ll]ocation: //p')
off=0
for f in "$@"; do
  n=$(stat -c %s "$f")
  curl -sS -o /dev/null -X PUT \
    -H "Content-Range: bytes $off-$((off + n - 1))/$total" \
    --data-binary "@$f" "$loc"
  off=$((off + n))
done
EOF
measure curl_resumable bash "$BENCH_TMP/resumable.sh" "$url" \
  "$((MB * 1048576))" "$BENCH_TMP"/part.*
measure curl_get curl -fsS -o /dev/null \
  "$url/storage/v1/b/bench/o/run%2Fcurl?alt=media"

mbps() { awk -v mb="$MB" -v s="$1" 'BEGIN { printf "%.0f", mb / s }'; }
pct() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.0f %%", 100 * b / a }'; }
mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }

cat <<EOF
### GCS blob backend vs curl ($MB MiB object, fake-gcs-server $GCS_VERSION)

Median of $RUNS runs; wall time of the whole process (GNU time), peak
RSS the largest of the runs. fake-gcs-server (filesystem backend) on
127.0.0.1 shares the 2 cores with the client. Backend: bench/blob_xfer
(blob_put_copy: resumable upload in 8 MiB parts; blob_reader: 1 MiB
reads through the read-ahead window, up to 8 MiB a request), objects
in the clear. curl: one media upload, one alt=media download.

| transfer | backend s | backend MiB/s | curl s | curl MiB/s | backend / curl | backend peak RSS MiB | curl peak RSS MiB |
|---|---:|---:|---:|---:|---:|---:|---:|
| upload | ${SEC[backend_put]} | $(mbps "${SEC[backend_put]}") | ${SEC[curl_put]} | $(mbps "${SEC[curl_put]}") | $(pct "${SEC[backend_put]}" "${SEC[curl_put]}") | $(mib "${RSS[backend_put]}") | $(mib "${RSS[curl_put]}") |
| upload, curl also resumable in 8 MiB parts | ${SEC[backend_put]} | $(mbps "${SEC[backend_put]}") | ${SEC[curl_resumable]} | $(mbps "${SEC[curl_resumable]}") | $(pct "${SEC[backend_put]}" "${SEC[curl_resumable]}") | $(mib "${RSS[backend_put]}") | $(mib "${RSS[curl_resumable]}") |
| download | ${SEC[backend_get]} | $(mbps "${SEC[backend_get]}") | ${SEC[curl_get]} | $(mbps "${SEC[curl_get]}") | $(pct "${SEC[backend_get]}" "${SEC[curl_get]}") | $(mib "${RSS[backend_get]}") | $(mib "${RSS[curl_get]}") |

"backend / curl" is curl's time over the backend's: the backend's
throughput as a share of the plain copy's (target ≥ 50 %).
Each part of a resumable upload takes fake-gcs-server longer than the
one before (with curl alone: about 0.1 s for the first 8 MiB part, over
1 s for the last), so the second upload row, curl making the same
resumable upload, is the like-for-like figure.
EOF
