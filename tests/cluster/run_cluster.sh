#!/usr/bin/env bash
# run_cluster.sh - the local cluster through HAProxy: `terrace cluster up`
# with three primaries, a real tofu init + apply through the load
# balancer, kill -9 of a primary while the API is read through HAProxy,
# then `terrace cluster down` leaving no process behind.
# Exits 77 (skipped) without tofu, HAProxy or the PostgreSQL server.
#   TOFU_BIN               tofu binary (default: the deps script's build)
#   TERRACE_CLUSTER_SECONDARIES  secondaries to start (default 0)
#   TERRACE_CLUSTER_TERRACED     terraced to run (default: the build's)
# Extra arguments go to pytest.
# SPDX-License-Identifier: MPL-2.0
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cache=${TERRACE_CACHE:-$HOME/.cache/terrace}
export TOFU_BIN=${TOFU_BIN:-$cache/tofu-1.10.10/tofu}
if [ ! -x "$TOFU_BIN" ]; then
  echo "run_cluster.sh: tofu not found at $TOFU_BIN; skipping" >&2
  exit 77
fi
if ! PATH=$PATH:/usr/sbin:/sbin command -v haproxy >/dev/null; then
  echo "run_cluster.sh: haproxy not installed; skipping" >&2
  exit 77
fi
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  echo "run_cluster.sh: PostgreSQL server not installed; skipping" >&2
  exit 77
fi
cd "$here"
exec timeout 230 python3 -m pytest -v -p no:cacheprovider -rfE "$here/test_cluster.py" "$@"
