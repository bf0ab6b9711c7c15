#!/usr/bin/env bash
# run_azure.sh - the Azure Blob backend against Azurite (CTest blob.azure).
#
# Starts Azurite (tests/lib/azurite.sh) on loopback with two containers
# and runs:
#   1. test_blob_suite with Shared Key (AZURE_STORAGE_KEY), the 200 MB
#      round trip (TERRACE_TEST_BLOB_BIG=1) and, through
#      tests/blob/faultproxy.py, a server answering 500 then recovering
#      and a server that is down;
#   2. test_blob_suite again with a container SAS (AZURE_STORAGE_SAS_TOKEN);
#   3. test_blob_azure's server cases (list paging with two blobs a page,
#      an object replaced mid-read, an upload failing half-way);
#   4. test_blob_suite over TLS to a second Azurite whose certificate a
#      test CA signed, trusted through ca-file= (tests/blob/tls_case.sh).
# Exit 77 only when Azurite cannot be installed.
set -euo pipefail
src=${TERRACE_SRC_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
build=${TERRACE_BUILD_DIR:?set TERRACE_BUILD_DIR to the build directory}
suite=$build/tests/test_blob_suite
unit=$build/tests/test_blob_azure
for t in "$suite" "$unit"; do
  [ -x "$t" ] || { echo "run_azure.sh: $t not built" >&2; exit 1; }
done
# Azurite's published dev account (not a secret)
account=devstoreaccount1
key='Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=='

work=$(mktemp -d "${TMPDIR:-/tmp}/run_azure.XXXXXX")
proxy_pid=
cleanup() {
  [ -n "$proxy_pid" ] && kill "$proxy_pid" 2>/dev/null || true
  bash "$src/tests/lib/azurite.sh" stop "$work/azurite" || true
  bash "$src/tests/lib/azurite.sh" stop "$work/azuritetls" || true
  rm -rf "$work"
}
trap cleanup EXIT

rc=0
bash "$src/tests/lib/azurite.sh" install || rc=$?
[ "$rc" = 77 ] && { echo "run_azure.sh: skipped: no azurite" >&2; exit 77; }
[ "$rc" = 0 ] || exit 1
ep=$(bash "$src/tests/lib/azurite.sh" start "$work/azurite")
bash "$src/tests/lib/azurite.sh" container "$ep" terrace-key
bash "$src/tests/lib/azurite.sh" container "$ep" terrace-sas
sas=$(bash "$src/tests/lib/azurite.sh" sas "$ep" terrace-sas)

# The proxy forwards to Azurite; the backend then signs for the proxy's
# address, which the proxy passes on unchanged.
port=${ep#http://127.0.0.1:}; port=${port%%/*}
python3 "$src/tests/blob/faultproxy.py" --upstream "http://127.0.0.1:$port" \
  --port-file "$work/proxy.port" >"$work/proxy.log" 2>&1 &
proxy_pid=$!
for _ in $(seq 1 100); do
  [ -s "$work/proxy.port" ] && break
  kill -0 "$proxy_pid" 2>/dev/null ||
    { echo "run_azure.sh: faultproxy exited" >&2; cat "$work/proxy.log" >&2; exit 1; }
  sleep 0.1
done
pport=$(cat "$work/proxy.port")
pep="http://127.0.0.1:$pport/$account"

fail=0
run() {
  local what=$1; shift
  echo "== $what" >&2
  if ! env "$@"; then
    echo "run_azure.sh: FAILED: $what" >&2
    fail=1
  fi
}

run "suite, shared key, 200 MB, faults through the proxy" \
  AZURE_STORAGE_KEY="$key" TERRACE_TEST_BLOB_BIG=1 \
  TERRACE_TEST_BLOB_FAULT="http://127.0.0.1:$pport" \
  TERRACE_TEST_BLOB_URL="azblob://terrace-key/suite?account=$account&endpoint=$pep" \
  "$suite"
run "suite, SAS" \
  AZURE_STORAGE_SAS_TOKEN="$sas" \
  TERRACE_TEST_BLOB_URL="azblob://terrace-sas/suite?account=$account&endpoint=$ep" \
  "$suite"
run "azure cases, shared key" \
  AZURE_STORAGE_KEY="$key" TERRACE_TEST_AZURE_LIST_PAGE=2 \
  TERRACE_TEST_AZURE_URL="azblob://terrace-key/unit?account=$account&endpoint=$ep" \
  "$unit"
run "azure cases, SAS" \
  AZURE_STORAGE_SAS_TOKEN="$sas" TERRACE_TEST_AZURE_LIST_PAGE=2 \
  TERRACE_TEST_AZURE_URL="azblob://terrace-sas/unit?account=$account&endpoint=$ep" \
  "$unit"

bash "$src/tests/lib/tls_ca.sh" "$work/tls"
tep=$(TERRACE_TEST_TLS_DIR="$work/tls" \
  bash "$src/tests/lib/azurite.sh" start "$work/azuritetls")
TERRACE_TEST_TLS_DIR="$work/tls" \
  bash "$src/tests/lib/azurite.sh" container "$tep" terrace-tls
run "suite over TLS, shared key" \
  AZURE_STORAGE_KEY="$key" bash "$src/tests/blob/tls_case.sh" "$suite" \
  "azblob://terrace-tls/suite?account=$account&endpoint=$tep" \
  "$work/tls/ca.pem"
exit $fail
