#!/usr/bin/env bash
# run_vault.sh - the Vault tests: builds (cached) and starts a real Vault
# in dev mode on 127.0.0.1 (tests/lib/vault.sh), then runs the provider's
# unit tests (test_keys_vault) and the API tests of tests/api/test_vault.py
# on PostgreSQL against it.  Exit 77 (skipped) when Vault cannot be built
# here (no Go toolchain).
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
trap 'bash "$src/tests/lib/vault.sh" stop "$dir"' EXIT
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
echo "== provider unit tests against Vault at $TERRACE_TEST_VAULT_ADDR"
"$build/tests/test_keys_vault" || rc=1
echo "== API tests with Vault (PostgreSQL)"
TERRACE_BUILD_DIR=$build TERRACE_SRC_DIR=$src TERRACE_TEST_BACKEND=pg \
  timeout 300 python3 -m pytest -q -p no:cacheprovider \
  "$src/tests/api/test_vault.py" || rc=1
exit $rc
