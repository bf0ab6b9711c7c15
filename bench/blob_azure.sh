#!/usr/bin/env bash
# blob_azure.sh - a ~100 MB state uploaded and downloaded through
# terraced with its blob store on Azurite (--blob-url azblob://...,
# Shared Key), beside the same file sent to and fetched from Azurite by
# curl alone (one Put Blob with a SAS, one Get Blob).  Demo role (SQLite
# metadata); every object sealed at rest as always.  Prints a markdown
# section on stdout.
#
#   Upload through terraced: (untimed) bump the serial in place, POST
#     /workspaces/:id/state-versions -> hosted-state-upload-url; (timed)
#     curl PUT --data-binary @file.  The version must be "finalized".
#   Download: GET hosted-state-download-url to a file, md5 checked.
#   Plain: curl PUT ?SAS with x-ms-blob-type: BlockBlob; curl GET ?SAS.
#
#   bench/blob_azure.sh      (BENCH_STATE_MB=100, BENCH_RUNS=3)
#
# SPDX-License-Identifier: MPL-2.0
. "$(dirname "$0")/lib.sh"

MB=${BENCH_STATE_MB:-100}
RUNS=${BENCH_RUNS:-3}
GEN=$BENCH_ROOT/bench/gen_state.py
LINEAGE=4a8f0d3e-1c2b-4e5f-8a9b-7c6d5e4f3a21
AZ=$BENCH_ROOT/tests/lib/azurite.sh
ACCOUNT=devstoreaccount1   # Azurite's published dev account and key
KEY='Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=='

bench_tools
bench_build
trap 'bash "$AZ" stop "$BENCH_TMP/azurite" >/dev/null 2>&1; bench_cleanup' EXIT

F=$BENCH_TMP/state.json
blog "generating a $MB MB state"
python3 "$GEN" gen "$F" "$MB"
SIZE=$(stat -c %s "$F")

EP=$(bash "$AZ" start "$BENCH_TMP/azurite")
AZ_PID=$(cat "$BENCH_TMP/azurite/pid")
bash "$AZ" container "$EP" plain
bash "$AZ" container "$EP" terrace
SAS=$(bash "$AZ" sas "$EP" plain)

# secs CMD...: runs CMD, prints its wall time in seconds
secs() {
  local t0 t1
  t0=$(date +%s.%N)
  "$@" >/dev/null || return 1
  t1=$(date +%s.%N)
  awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f\n", b - a }'
}
# summary FILE: "mean min MB/s" of the times in FILE
summary() {
  awk -v s="$SIZE" '{ t += $1; if (min == "" || $1 < min) min = $1 }
    END { m = t / NR; printf "%.3f %.3f %.0f\n", m, min, s / m / 1e6 }' "$1"
}

blog "plain curl to Azurite x$RUNS"
for _ in $(seq 1 "$RUNS"); do
  secs curl -sSf -X PUT -H 'Expect:' -H 'x-ms-blob-type: BlockBlob' \
    -H 'Content-Type: application/octet-stream' --data-binary "@$F" \
    "$EP/plain/state.json?$SAS" -o /dev/null >>"$BENCH_TMP/plain-up"
  secs curl -sSf "$EP/plain/state.json?$SAS" -o "$BENCH_TMP/plain.out" \
    >>"$BENCH_TMP/plain-down"
done
cmp -s "$F" "$BENCH_TMP/plain.out" || { echo "plain GET differs" >&2; exit 1; }
rm -f "$BENCH_TMP/plain.out"

blog "terraced on azblob://terrace x$RUNS"
export AZURE_STORAGE_KEY=$KEY
bench_start azure demo \
  --blob-url "azblob://terrace/bench?account=$ACCOUNT&endpoint=$EP"
unset AZURE_STORAGE_KEY
bench_setup_ws bench ws-azure
api POST "/api/v2/workspaces/$WS_ID/actions/lock" \
  '{"reason":"blob_azure benchmark"}' >/dev/null
serial=1
last=
for _ in $(seq 1 "$RUNS"); do
  serial=$((serial + 1))
  md5=$(python3 "$GEN" serial "$F" "$serial")
  resp=$(api POST "/api/v2/workspaces/$WS_ID/state-versions" \
    "$(jq -nc --argjson s "$serial" --arg m "$md5" --arg l "$LINEAGE" \
      '{data:{type:"state-versions",
              attributes:{serial:$s,md5:$m,lineage:$l}}}')")
  url=$(jq -r '.data.attributes["hosted-state-upload-url"]' <<<"$resp")
  last=$(jq -r .data.id <<<"$resp")
  secs curl -sSf --cacert "$D_CA" -X PUT -H 'Expect:' \
    -H 'Content-Type: application/octet-stream' --data-binary "@$F" \
    "$url" -o /dev/null >>"$BENCH_TMP/tr-up"
  st=$(api GET "/api/v2/state-versions/$last" | jq -r .data.attributes.status)
  [ "$st" = finalized ] || { echo "state version $last is $st" >&2; exit 1; }
done
HWM_UP=$(awk '/^VmHWM:/ { print $2 }' "/proc/$D_PID/status")
DL=$(api GET "/api/v2/workspaces/$WS_ID/current-state-version" |
     jq -r '.data.attributes["hosted-state-download-url"]')
for _ in $(seq 1 "$RUNS"); do
  secs curl -sSf --cacert "$D_CA" -H "Authorization: Bearer $D_TOKEN" \
    -o "$BENCH_TMP/tr.out" "$DL" >>"$BENCH_TMP/tr-down"
done
[ "$(md5sum <"$BENCH_TMP/tr.out" | cut -d' ' -f1)" = "$md5" ] ||
  { echo "downloaded state differs" >&2; exit 1; }
HWM=$(awk '/^VmHWM:/ { print $2 }' "/proc/$D_PID/status")
AZ_HWM=$(awk '/^VmHWM:/ { print $2 }' "/proc/$AZ_PID/status" 2>/dev/null || echo 0)
bench_stop

read -r pu_m pu_min pu_r <<<"$(summary "$BENCH_TMP/plain-up")"
read -r pd_m pd_min pd_r <<<"$(summary "$BENCH_TMP/plain-down")"
read -r tu_m tu_min tu_r <<<"$(summary "$BENCH_TMP/tr-up")"
read -r td_m td_min td_r <<<"$(summary "$BENCH_TMP/tr-down")"

cat <<MD
### Azure Blob backend on Azurite ($(awk -v s="$SIZE" 'BEGIN { printf "%.1f", s / 1e6 }') MB state, demo)

$RUNS runs each, wall seconds; MB/s = 10^6 bytes per second of the mean.
terraced: curl PUT to the signed upload URL / GET of the download URL,
through --blob-url azblob:// (Shared Key, 8 MiB blocks, sealed at rest;
the md5 of the download is checked).  Plain: curl straight to Azurite
(one Put Blob, one Get Blob, SAS).  Azurite $(sed -n 's/^AZURITE_VERSION=//p' "$AZ") on
loopback, storing on the same disk.  terraced peak RSS (VmHWM): $((HWM_UP / 1024)) MB after the
uploads, $((HWM / 1024)) MB after the downloads; Azurite (node) peak
$((AZ_HWM / 1024)) MB.

| command | mean s | min s | MB/s | vs plain |
|---|---:|---:|---:|---:|
| plain curl Put Blob | $pu_m | $pu_min | $pu_r | |
| terraced upload (azblob) | $tu_m | $tu_min | $tu_r | $(awk -v a="$pu_m" -v b="$tu_m" 'BEGIN { printf "%.0f %%", 100 * a / b }') |
| plain curl Get Blob | $pd_m | $pd_min | $pd_r | |
| terraced download (azblob) | $td_m | $td_min | $td_r | $(awk -v a="$pd_m" -v b="$td_m" 'BEGIN { printf "%.0f %%", 100 * a / b }') |

MD
