#!/usr/bin/env bash
# run_api_sqlite.sh - API tests (pytest) against a real daemon on SQLite
# (demo role).  run_api_pg.sh runs the same tests on PostgreSQL (primary
# role); two CTest entries, so `ctest -j2` runs them side by side.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
echo "== API tests on sqlite"
TERRACE_TEST_BACKEND=sqlite exec python3 -m pytest -q -p no:cacheprovider \
  "$here" "$@"
