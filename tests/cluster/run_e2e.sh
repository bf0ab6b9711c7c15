#!/usr/bin/env bash
# run_e2e.sh - the end-to-end tofu tests against a cluster: one
# `terrace cluster up` (three primaries, two secondaries, HAProxy in
# front) and the remote plan/apply, state and locking tests of tests/e2e
# through its URL, each checking that every phase ran on a secondary
# (tests/e2e/conftest.py, CLUSTER_TESTS).  About two minutes.
# Exits 77 (skipped) without tofu, HAProxy or the PostgreSQL server.
# Extra arguments go to pytest.
# SPDX-License-Identifier: MPL-2.0
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
if ! PATH=$PATH:/usr/sbin:/sbin command -v haproxy >/dev/null; then
  echo "run_e2e.sh: haproxy not installed; skipping" >&2
  exit 77
fi
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  echo "run_e2e.sh: PostgreSQL server not installed; skipping" >&2
  exit 77
fi
cache=${TERRACE_CACHE:-$HOME/.cache/terrace}
export TOFU_BIN=${TOFU_BIN:-$cache/tofu-1.10.10/tofu}
if [ ! -x "$TOFU_BIN" ]; then
  echo "run_e2e.sh: tofu not found at $TOFU_BIN; skipping" >&2
  exit 77
fi
export TERRACE_E2E_BACKENDS=cluster
cd "$here/../e2e"
exec timeout 300 python3 -m pytest -v -p no:cacheprovider -rfE \
  test_remote.py test_tofu.py "$@"
