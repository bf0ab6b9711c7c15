#!/usr/bin/env bash
# test.sh - install test dependencies, build with ASan+UBSan and run every
# test suite (unit, API, end-to-end with real tofu, go-tfe conformance)
# through CTest, which prints the summary.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/deps.sh test
build=${TERRACE_TEST_BUILD:-build-test}
cmake -S . -B "$build" -G Ninja -DTERRACE_SANITIZE=ON \
  -DCMAKE_BUILD_TYPE=Debug >/dev/null
ninja -C "$build"
# a throwaway PostgreSQL for the unit tests' second backend
pgdir=$(mktemp -d /tmp/terrace-pg-unit.XXXXXX); chmod 755 "$pgdir"
trap 'bash tests/lib/pg.sh stop "$pgdir"' EXIT
export TERRACE_TEST_PG_URL=$(bash tests/lib/pg.sh start "$pgdir")
export TOFU_BIN ASAN_OPTIONS=detect_leaks=1:abort_on_error=0
ctest --test-dir "$build" --output-on-failure -j2 "$@"
