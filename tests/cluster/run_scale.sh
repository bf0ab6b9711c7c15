#!/usr/bin/env bash
# run_scale.sh - scale secondaries 2 -> 8 -> 1 while 100 plan-only runs
# are queued (test_scale.py): every run executes exactly once.  A few
# minutes.  Exits 77 (skipped) without tofu, HAProxy or PostgreSQL.
#   TERRACE_SCALE_RUNS     runs to queue (default 100)
# Extra arguments go to pytest.
# SPDX-License-Identifier: MPL-2.0
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cache=${TERRACE_CACHE:-$HOME/.cache/terrace}
export TOFU_BIN=${TOFU_BIN:-$cache/tofu-1.10.10/tofu}
if [ ! -x "$TOFU_BIN" ]; then
  echo "run_scale.sh: tofu not found at $TOFU_BIN; skipping" >&2
  exit 77
fi
if ! PATH=$PATH:/usr/sbin:/sbin command -v haproxy >/dev/null; then
  echo "run_scale.sh: haproxy not installed; skipping" >&2
  exit 77
fi
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  echo "run_scale.sh: PostgreSQL server not installed; skipping" >&2
  exit 77
fi
export TERRACE_CLUSTER_SCALE=1
cd "$here"
exec timeout 600 python3 -m pytest -v -s -p no:cacheprovider -rfE \
  test_scale.py "$@"
