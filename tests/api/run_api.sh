#!/usr/bin/env bash
# run_api.sh - API tests (pytest) against a real daemon, on SQLite (demo
# role) and on PostgreSQL (primary role).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
rc=0
for backend in sqlite pg; do
  echo "== API tests on $backend"
  TERRACE_TEST_BACKEND=$backend python3 -m pytest -q -p no:cacheprovider \
    "$here" || rc=1
done
exit $rc
