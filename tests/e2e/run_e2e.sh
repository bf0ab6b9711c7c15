#!/usr/bin/env bash
# run_e2e.sh - end-to-end tests: the real OpenTofu CLI against terraced
# over TLS, on SQLite (demo role) and PostgreSQL (primary role).
# Exits 77 (skipped) when the tofu binary is missing.
#   TOFU_BIN               tofu binary (default: the deps script's build)
#   TERRACE_E2E_BACKENDS   comma list, default sqlite,pg; "cluster" runs
#                          a subset on `terrace cluster up` (see
#                          tests/cluster/run_e2e.sh)
#   TERRACE_E2E_TIMEOUT    seconds per tofu invocation, default 120
#   TERRACE_E2E_TF_LOG     TF_LOG level of each tofu run (default DEBUG;
#                          the log tail is printed when a command fails)
#   TERRACE_TFE_PROVIDER_BIN  terraform-provider-tfe v0.79.0 for
#                          test_tfe_provider.py (default: the cached
#                          build under $TERRACE_CACHE; it skips without)
#   TERRACE_PYTFE_PYTHON   python of a venv with pytfe 1.5.0 for
#                          test_pytfe.py (default: deps.sh's venv)
# Extra arguments go to pytest (e.g. -k lock -x).
# SPDX-License-Identifier: MPL-2.0
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cache=${TERRACE_CACHE:-$HOME/.cache/terrace}
export TOFU_BIN=${TOFU_BIN:-$cache/tofu-1.10.10/tofu}
if [ ! -x "$TOFU_BIN" ]; then
  echo "run_e2e.sh: tofu not found at $TOFU_BIN; skipping" >&2
  exit 77
fi
TF_CLI_CONFIG_FILE=/dev/null "$TOFU_BIN" version 2>/dev/null | sed -n 1p
cd "$here"
exec timeout 1700 python3 -m pytest -v -p no:cacheprovider -rfE "$here" "$@"
