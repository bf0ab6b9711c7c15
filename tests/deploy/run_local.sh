#!/usr/bin/env bash
# run_local.sh - deploy/local end to end with the real tofu: apply with
# two secondaries, a remote tofu apply through the load balancer, scale
# to four and to one (while a run applies), destroy leaving no process
# or port, then the demo (external_services = false) taking a remote
# run.  Exits 77 (skipped) without tofu, HAProxy, openssl or the
# PostgreSQL server.
#   TOFU_BIN  tofu binary (default: the deps script's build)
# Extra arguments go to pytest.
# SPDX-License-Identifier: MPL-2.0
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cache=${TERRACE_CACHE:-$HOME/.cache/terrace}
export TOFU_BIN=${TOFU_BIN:-$cache/tofu-1.10.10/tofu}
skip() {
  echo "run_local.sh: $*; skipping" >&2
  exit 77
}
[ -x "$TOFU_BIN" ] || skip "tofu not found at $TOFU_BIN"
PATH=$PATH:/usr/sbin:/sbin command -v haproxy >/dev/null ||
  skip "haproxy not installed"
command -v openssl >/dev/null || skip "openssl not installed"
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 ||
  skip "PostgreSQL server not installed"
cd "$here"
exec timeout 280 python3 -m pytest -v -p no:cacheprovider -rfE \
  "$here/test_local.py" "$@"
