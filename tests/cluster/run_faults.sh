#!/usr/bin/env bash
# run_faults.sh - the cluster under faults (test_faults.py): kill -9 of
# the leader and of a secondary, a PostgreSQL restart, a drain, a wrong
# join token and a revoked node credential, each on its own cluster of
# three primaries and two secondaries behind HAProxy, with real tofu.
# Exits 77 (skipped) without tofu, HAProxy or the PostgreSQL server.
#   TOFU_BIN               tofu binary (default: the deps script's build)
# Extra arguments go to pytest.
# SPDX-License-Identifier: MPL-2.0
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cache=${TERRACE_CACHE:-$HOME/.cache/terrace}
export TOFU_BIN=${TOFU_BIN:-$cache/tofu-1.10.10/tofu}
if [ ! -x "$TOFU_BIN" ]; then
  echo "run_faults.sh: tofu not found at $TOFU_BIN; skipping" >&2
  exit 77
fi
if ! PATH=$PATH:/usr/sbin:/sbin command -v haproxy >/dev/null; then
  echo "run_faults.sh: haproxy not installed; skipping" >&2
  exit 77
fi
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  echo "run_faults.sh: PostgreSQL server not installed; skipping" >&2
  exit 77
fi
cd "$here"
exec timeout 290 python3 -m pytest -v -s -p no:cacheprovider -rfEs \
  "$here/test_faults.py" "$@"
