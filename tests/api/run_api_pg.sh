#!/usr/bin/env bash
# run_api_pg.sh - API tests (pytest) against a real daemon on PostgreSQL
# (primary role).  run_api_sqlite.sh runs the same tests on SQLite (demo
# role); two CTest entries, so `ctest -j2` runs them side by side.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
echo "== API tests on pg"
TERRACE_TEST_BACKEND=pg exec python3 -m pytest -q -p no:cacheprovider \
  "$here" "$@"
