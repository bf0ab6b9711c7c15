#!/usr/bin/env bash
# run_vault.sh - the Vault tests: builds (cached) and starts a real Vault
# in dev mode on 127.0.0.1 (tests/lib/vault.sh), then runs the provider's
# unit tests (test_keys_vault) and the API tests of tests/api/test_vault.py
# on PostgreSQL against it.  For the rekey of remote blob stores it also
# starts the S3, GCS and Azure test servers (tests/lib/s3.sh, gcs.sh,
# azurite.sh) and names them in TERRACE_TEST_REKEY_BLOBS; one that cannot
# be had here is left out (said on stderr).  Exit 77 (skipped) when Vault
# cannot be built here (no Go toolchain).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
src=${TERRACE_SRC_DIR:-$(cd "$here/../.." && pwd)}
build=${TERRACE_BUILD_DIR:?set TERRACE_BUILD_DIR}
rc=0
[ "${TERRACE_VAULT_FAKE:-}" = 1 ] ||
  bash "$src/tests/lib/vault.sh" build >/dev/null || rc=$?
if [ "$rc" = 77 ]; then echo "vault: cannot build Vault here: skipped"; exit 77; fi
[ "$rc" = 0 ] || { echo "vault: building Vault failed" >&2; exit 1; }
dir=$(mktemp -d "${TMPDIR:-/tmp}/terrace-vault-XXXXXX")
cleanup() {
  bash "$src/tests/lib/s3.sh" stop "$dir/s3" 2>/dev/null || true
  bash "$src/tests/lib/gcs.sh" stop "$dir/gcs" 2>/dev/null || true
  bash "$src/tests/lib/azurite.sh" stop "$dir/azurite" 2>/dev/null || true
  bash "$src/tests/lib/vault.sh" stop "$dir"
}
trap cleanup EXIT
vars=$(bash "$src/tests/lib/vault.sh" start "$dir" terrace) || {
  echo "vault: the server did not start; its log:" >&2
  tail -n 30 "$dir/server.log" >&2 || true
  exit 1
}
eval "$vars"
export TERRACE_TEST_VAULT_ADDR=$VAULT_ADDR
export TERRACE_TEST_VAULT_TOKEN=$VAULT_TOKEN
export TERRACE_TEST_VAULT_ROLE_ID=$VAULT_ROLE_ID
export TERRACE_TEST_VAULT_SECRET_ID=$VAULT_SECRET_ID
unset VAULT_ADDR VAULT_TOKEN
# remote blob stores for the rekey test: [{name, url, env}] as JSON
blobs=()
if ep=$(env -u AWS_SESSION_TOKEN bash "$src/tests/lib/s3.sh" start "$dir/s3"); then
  blobs+=("$(. "$dir/s3/env"; python3 -c 'import json, os, sys
print(json.dumps({"name": "s3", "url": "s3://terrace/rekey?endpoint=%s"
                  "&force-path-style=true" % sys.argv[1],
                  "env": {k: os.environ[k] for k in os.environ
                          if k.startswith("AWS_")}}))' "$ep")")
else echo "vault: no S3 test server: rekey on S3 left out" >&2; fi
# fake-gcs-server holds its store's lock while it takes in an upload's
# body, so rekey's check of the stored object (a GET made just before the
# last bytes of its put go out) would wait on the put it belongs to: on
# GCS the rekey here sends its objects in resumable parts (single-put-max
# 0), where that check falls between two requests.
if ep=$(bash "$src/tests/lib/gcs.sh" start "$dir/gcs" terrace); then
  blobs+=("{\"name\": \"gcs\", \"url\": \"gs://terrace/rekey?endpoint=$ep&single-put-max=0\", \"env\": {}}")
else echo "vault: no fake-gcs-server: rekey on GCS left out" >&2; fi
if bash "$src/tests/lib/azurite.sh" install &&
   ep=$(bash "$src/tests/lib/azurite.sh" start "$dir/azurite") &&
   bash "$src/tests/lib/azurite.sh" container "$ep" terrace >/dev/null; then
  # Azurite's published dev account (not a secret)
  key='Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=='
  blobs+=("{\"name\": \"azure\", \"url\": \"azblob://terrace/rekey?account=devstoreaccount1&endpoint=$ep\", \"env\": {\"AZURE_STORAGE_KEY\": \"$key\"}}")
else echo "vault: no Azurite: rekey on Azure left out" >&2; fi
TERRACE_TEST_REKEY_BLOBS="[$(IFS=,; echo "${blobs[*]}")]"
export TERRACE_TEST_REKEY_BLOBS
echo "== provider unit tests against Vault at $TERRACE_TEST_VAULT_ADDR"
"$build/tests/test_keys_vault" || rc=1
echo "== API tests with Vault (PostgreSQL)"
TERRACE_BUILD_DIR=$build TERRACE_SRC_DIR=$src TERRACE_TEST_BACKEND=pg \
  timeout 300 python3 -m pytest -q -p no:cacheprovider \
  "$src/tests/api/test_vault.py" || rc=1
exit $rc
