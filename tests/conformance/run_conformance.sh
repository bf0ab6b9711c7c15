#!/usr/bin/env bash
# CTest entry for the go-tfe conformance suite (registered by
# tests/CMakeLists.txt as conformance.run_conformance).
#
# Starts a throw-away Terrace demo daemon on a free loopback port, waits for
# it to become healthy, then runs run.sh against it with the daemon's
# site-admin token and CA. Results go to $TERRACE_BUILD_DIR/conformance-results.
#
# So that go-tfe's runs can plan and apply (its fixture configuration has a
# `null_resource`), it first builds the hashicorp/null provider into a
# filesystem mirror (scripts/build-provider-null.sh, cached under
# $TERRACE_CACHE) and gives the daemon --provider-mirror, plus --tofu-bin so
# that the demo registers that tofu as its tool version. If either is missing
# the suite still runs; the run/plan/apply tests then fail.
#
# With CONFORMANCE_SUITE=otf (run_otf.sh) it runs otf.sh, OTF's selection
# of go-tfe v1.41.0 tests, instead of run.sh; results then go to
# $TERRACE_BUILD_DIR/conformance-otf-results.
#
# Environment: TERRACE_BUILD_DIR (required; set by ctest), TERRACE_SRC_DIR
# (unused: files are found relative to this script), CONFORMANCE_STARTUP_TIMEOUT
# (seconds to wait for /_health_check, default 30), TOFU_BIN (the tofu to
# register; default the newest $TERRACE_CACHE/tofu-*/tofu, else tofu on PATH),
# CONFORMANCE_PROVIDER_MIRROR (a ready mirror dir to use instead of building
# one; "none" for no mirror), CONFORMANCE_RECORD=1 (re-record RESULTS.md:
# run.sh --record), plus run.sh's knobs.
#
# Exit status: run.sh's (0 ok, 1 regression, 2 harness error), 1 if the
# daemon is missing or never becomes healthy, and 77 (skip; CMake's
# SKIP_RETURN_CODE) when go, curl or python3 is not installed.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
CACHE="${TERRACE_CACHE:-$HOME/.cache/terrace}"
STARTUP_TIMEOUT="${CONFORMANCE_STARTUP_TIMEOUT:-30}"

for tool in go curl python3; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "SKIP: go-tfe conformance needs '$tool', which is not installed"
    exit 77
  fi
done

BUILD="${TERRACE_BUILD_DIR:?TERRACE_BUILD_DIR must be set (ctest sets it)}"
TERRACED="$BUILD/terraced"
if [ ! -x "$TERRACED" ]; then
  echo "FAIL: $TERRACED does not exist or is not executable" >&2
  exit 1
fi
OUT="$BUILD/conformance-results"
[ "${CONFORMANCE_SUITE:-gotfe}" = otf ] && OUT="$BUILD/conformance-otf-results"
mkdir -p "$OUT"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/terrace-conformance.XXXXXX")"
DATA="$WORK/data"
LOG="$WORK/terraced.log"
pid=""

stop_daemon() {
  [ -n "$pid" ] || return 0
  if kill -0 "$pid" 2>/dev/null; then
    # the daemon leads its own process group (setsid): stop it and any
    # children it started, by that group id
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.2
    done
    if kill -0 "$pid" 2>/dev/null; then
      echo "terraced did not stop on SIGTERM; killing it" >&2
      kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
    fi
  fi
  wait "$pid" 2>/dev/null || true
  pid=""
}

cleanup() {
  local rc=$?
  stop_daemon
  [ -f "$LOG" ] && cp "$LOG" "$OUT/terraced.log" 2>/dev/null || true
  rm -rf "$WORK"
  exit "$rc"
}
child=""
trap cleanup EXIT
trap 'if [ -n "$child" ]; then kill -TERM "$child" 2>/dev/null; wait "$child" 2>/dev/null; fi; exit 143' INT TERM HUP

PORT="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')"
ADDRESS="https://127.0.0.1:$PORT"
mkdir -p "$DATA"
chmod 700 "$DATA"

# the tofu runs use, and a provider mirror holding hashicorp/null
extra=()
tofu="${TOFU_BIN:-}"
if [ -z "$tofu" ]; then
  tofu="$(ls -d "$CACHE"/tofu-*/tofu 2>/dev/null | sort -V | tail -n 1 || true)"
  [ -n "$tofu" ] || tofu="$(command -v tofu 2>/dev/null || true)"
fi
if [ -n "$tofu" ] && [ -x "$tofu" ]; then
  echo "tofu for runs: $tofu"
  extra+=(--tofu-bin "$tofu")
else
  echo "note: no tofu found (scripts/deps.sh builds one); runs will error"
fi
mirror="${CONFORMANCE_PROVIDER_MIRROR:-}"
if [ -z "$mirror" ]; then
  echo "building the null provider mirror (scripts/build-provider-null.sh)"
  if ! mirror="$(bash "$ROOT/scripts/build-provider-null.sh" 2>"$WORK/provider-null.log")"; then
    echo "note: building the null provider failed; runs whose configuration needs it will error at tofu init:"
    tail -n 5 "$WORK/provider-null.log" | sed 's/^/  /'
    mirror=""
  fi
elif [ "$mirror" = none ]; then
  mirror=""
fi
if [ -n "$mirror" ]; then
  echo "provider mirror for runs: $mirror"
  extra+=(--provider-mirror "$mirror")
fi

echo "starting terraced (demo) on $ADDRESS, data dir $DATA"
launcher=()
command -v setsid >/dev/null 2>&1 && launcher=(setsid)
# --tool-mirror off: a test pinning a missing version must not download;
# --conn-per-ip 0: the shards' clients all come from 127.0.0.1;
# --ip-ranges: TestIPRangesRead wants every list non-empty
"${launcher[@]}" "$TERRACED" --role demo --data-dir "$DATA" \
  --listen "127.0.0.1:$PORT" --external-url "$ADDRESS" --tool-mirror off \
  --conn-per-ip 0 \
  --ip-ranges "api=127.0.0.1/32,::1/128;notifications=127.0.0.1/32;sentinel=127.0.0.1/32;vcs=127.0.0.1/32" \
  "${extra[@]}" \
  </dev/null >"$LOG" 2>&1 &
pid=$!

TOKEN_FILE="$DATA/admin-token"
CA_FILE="$DATA/tls/ca.pem"
ready=0
deadline=$(( $(date +%s) + STARTUP_TIMEOUT ))
while [ "$(date +%s)" -lt "$deadline" ]; do
  if ! kill -0 "$pid" 2>/dev/null; then
    wait "$pid" 2>/dev/null && drc=0 || drc=$?
    pid=""
    echo "FAIL: terraced exited (status $drc) before becoming healthy; its log:" >&2
    tail -n 50 "$LOG" >&2 || true
    exit 1
  fi
  if [ -s "$TOKEN_FILE" ] && [ -s "$CA_FILE" ] &&
     curl -fsS -o /dev/null --max-time 2 --cacert "$CA_FILE" "$ADDRESS/_health_check" 2>/dev/null; then
    ready=1
    break
  fi
  sleep 0.5
done
if [ "$ready" != 1 ]; then
  echo "FAIL: terraced did not answer $ADDRESS/_health_check within ${STARTUP_TIMEOUT}s; its log:" >&2
  tail -n 50 "$LOG" >&2 || true
  [ -s "$TOKEN_FILE" ] || echo "(no $TOKEN_FILE was written)" >&2
  [ -s "$CA_FILE" ] || echo "(no $CA_FILE was written)" >&2
  exit 1
fi

mode="$(stat -c '%a' "$TOKEN_FILE" 2>/dev/null || echo '?')"
[ "$mode" = 600 ] || echo "warning: $TOKEN_FILE has mode $mode, expected 600" >&2
TOKEN="$(tr -d '\r\n' < "$TOKEN_FILE")"
echo "terraced is healthy"

# in the background so that the TERM/INT trap can stop it (run.sh forwards
# the signal to go test) instead of waiting for it to finish
if [ "${CONFORMANCE_SUITE:-gotfe}" = otf ]; then
  bash "$HERE/otf.sh" "$ADDRESS" "$TOKEN" "$CA_FILE" "$OUT" &
else
  bash "$HERE/run.sh" ${CONFORMANCE_RECORD:+--record} \
    "$ADDRESS" "$TOKEN" "$CA_FILE" "$OUT" &
fi
child=$!
rc=0
wait "$child" || rc=$?
child=""
exit "$rc"
