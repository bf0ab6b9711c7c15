#!/usr/bin/env bash
# run_userdata.sh - each cloud module's user data (templates/node.sh,
# then deploy/node/bootstrap.sh) run against a fake cloud
# (test_userdata.py): a demo node; a primary on a throwaway PostgreSQL
# and a secondary joining it, then drained by the cloud's scale-in
# path; a primary with its key in (fake) Vault.  Exits 77 (skipped) when not root (the scripts run in mount
# namespaces), without unshare, nsenter or openssl, or without a built
# terraced; the PostgreSQL tests skip without its server.
# SPDX-License-Identifier: MPL-2.0
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
skip() {
  echo "run_userdata.sh: $*; skipping" >&2
  exit 77
}
[ "$(id -u)" = 0 ] || skip "needs root for a mount namespace"
command -v unshare >/dev/null || skip "unshare not installed"
command -v nsenter >/dev/null || skip "nsenter not installed"
command -v openssl >/dev/null || skip "openssl not installed"
[ -x "${TERRACE_BUILD_DIR:-}/terraced" ] || skip "no terraced in TERRACE_BUILD_DIR"
unshare -m true 2>/dev/null || skip "cannot make a mount namespace"
cd "$here"
exec timeout 600 python3 -m pytest -v -p no:cacheprovider -rfE \
  "$here/test_userdata.py" "$@"
