#!/usr/bin/env bash
# run_gcs.sh - CTest blob.run_gcs: the shared blob suite
# (tests/unit/test_blob_suite.c) against the Google Cloud Storage backend
# and fake-gcs-server (tests/lib/gcs.sh), four ways:
#   1. straight to the server, with the 200 MB round trip (flat memory);
#   2. through tests/blob/faultproxy.py: 500s then recovery, server down
#      (test_blob_gcs.c adds them between the parts of a resumable upload);
#   3. with a service-account key file whose token_uri is
#      tests/blob/gcs_auth_stub.py, which checks the RS256 JWT against the
#      public key and lets only requests with a token it issued through;
#   4. the same stub as the instance metadata server (GCE_METADATA_HOST);
#   5. a second server over TLS, its certificate from a test CA, trusted
#      through ca-file= (tests/blob/tls_case.sh).
# Step 3 also runs test_blob_gcs.c's token cases against the stub.
# Exit 77 (skipped) only when fake-gcs-server cannot be had.
set -euo pipefail
SRC=${TERRACE_SRC_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
BUILD=${TERRACE_BUILD_DIR:?TERRACE_BUILD_DIR names the build directory}
SUITE=$BUILD/tests/test_blob_suite
[ -x "$SUITE" ] || { echo "run_gcs.sh: build $SUITE first" >&2; exit 1; }

work=$(mktemp -d /tmp/terrace-blob-gcs.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  bash "$SRC/tests/lib/gcs.sh" stop "$work/gcs" || true
  bash "$SRC/tests/lib/gcs.sh" stop "$work/gcstls" || true
  rm -rf "$work"
}
trap cleanup EXIT

rc=0
url=$(bash "$SRC/tests/lib/gcs.sh" start "$work/gcs" terrace) || rc=$?
if [ "$rc" = 77 ]; then echo "run_gcs.sh: no fake-gcs-server, skipped"; exit 77; fi
[ "$rc" = 0 ] || exit "$rc"

# Starts a helper in the background (bounded in time), waits for the
# port it writes to portfile and leaves it in $port.  Not to be called in
# a subshell: the cleanup needs its pid.
start_helper() {
  local portfile=$1; shift
  timeout 1200 python3 "$@" --port-file "$portfile" \
    >>"$work/helpers.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 1 100); do
    [ -s "$portfile" ] && { port=$(cat "$portfile"); return 0; }
    sleep 0.1
  done
  echo "run_gcs.sh: helper $1 did not start" >&2
  cat "$work/helpers.log" >&2
  exit 1
}

step() { printf '\n== run_gcs.sh: %s\n' "$*"; }

step "1. direct, with the 200 MB round trip"
TERRACE_TEST_BLOB_URL="gs://terrace/direct?endpoint=$url" \
  TERRACE_TEST_BLOB_BIG=1 "$SUITE"

step "2. through the fault proxy"
start_helper "$work/fault.port" "$SRC/tests/blob/faultproxy.py" \
  --upstream "$url"
fport=$port
TERRACE_TEST_BLOB_URL="gs://terrace/faults?endpoint=http://127.0.0.1:$fport" \
  TERRACE_TEST_BLOB_FAULT="http://127.0.0.1:$fport" "$SUITE"
# Resumable uploads meeting 500s or an outage between parts.
TERRACE_TEST_GCS_URL="gs://terrace/faults?endpoint=http://127.0.0.1:$fport" \
  TERRACE_TEST_BLOB_FAULT="http://127.0.0.1:$fport" "$BUILD/tests/test_blob_gcs"

step "3. service-account key file, JWT checked by a token endpoint stub"
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 \
  -out "$work/sa.pem" 2>/dev/null
openssl pkey -in "$work/sa.pem" -pubout -out "$work/sa.pub" 2>/dev/null
email=terrace-test@example.iam.gserviceaccount.com
start_helper "$work/auth.port" "$SRC/tests/blob/gcs_auth_stub.py" \
  --pubkey "$work/sa.pub" --email "$email" --upstream "$url"
aport=$port
stub=http://127.0.0.1:$aport
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 \
  -out "$work/other.pem" 2>/dev/null
keyfile() {
  python3 - "$1" "$email" "$stub/token" "$2" <<'EOF'
import json, sys
pem, email, uri, out = sys.argv[1:]
json.dump({"type": "service_account", "project_id": "terrace-test",
           "private_key_id": "test-key-1", "private_key": open(pem).read(),
           "client_email": email, "token_uri": uri}, open(out, "w"))
EOF
}
keyfile "$work/sa.pem" "$work/sa.json"
keyfile "$work/other.pem" "$work/other.json"
TERRACE_TEST_BLOB_URL="gs://terrace/jwt?endpoint=$stub&credentials=$work/sa.json" \
  "$SUITE"
stats=$(curl -fsS "$stub/__stats")
echo "token stub: $stats"
python3 - "$stats" <<'EOF'
import json, sys
s = json.loads(sys.argv[1])
# The suite passed through a stub that lets only its own tokens by, so
# tokens were issued; a refused JWT or a request without a token fails.
assert s["issued"] >= 1, s
assert s["refused"] == 0, s
assert s["unauthorized"] == 0, s
EOF
# Token cache, a revoked token replaced, a JWT under the wrong key.
TERRACE_TEST_GCS_STUB=$stub TERRACE_TEST_GCS_KEY=$work/sa.json \
  TERRACE_TEST_GCS_BADKEY=$work/other.json "$BUILD/tests/test_blob_gcs"

step "4. the instance metadata server (GCE_METADATA_HOST)"
GCE_METADATA_HOST=127.0.0.1:$aport \
  TERRACE_TEST_BLOB_URL="gs://terrace/meta?endpoint=$stub&auth=metadata" \
  "$SUITE"
stats=$(curl -fsS "$stub/__stats")
echo "token stub: $stats"
python3 - "$stats" <<'EOF'
import json, sys
s = json.loads(sys.argv[1])
assert s["issued"] >= 2, s
EOF

step "5. over TLS, the certificate from a test CA"
bash "$SRC/tests/lib/tls_ca.sh" "$work/tls"
tls_url=$(TERRACE_TEST_TLS_DIR="$work/tls" \
  bash "$SRC/tests/lib/gcs.sh" start "$work/gcstls" terrace)
bash "$SRC/tests/blob/tls_case.sh" "$SUITE" \
  "gs://terrace/tls?endpoint=$tls_url" "$work/tls/ca.pem"

step "all passed"
