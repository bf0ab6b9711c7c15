#!/usr/bin/env bash
# run_release_build.sh - the optimised build a user gets from
# scripts/demo.sh must compile without warnings too: -O3 runs analyses
# (format truncation, object sizes, uninitialised values) that the
# suite's ASan debug build does not, and warnings are errors.  Builds
# the two programs and the tests (a Release configure builds them by
# default) in a Release tree under the test build dir, kept between runs
# so a rerun only recompiles what changed.
set -euo pipefail
src=${TERRACE_SRC_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
out=${TERRACE_BUILD_DIR:-$src/build-test}/release-check
cmake -S "$src" -B "$out" -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DTERRACE_TESTS=ON >/dev/null
ninja -C "$out"
echo "release build: ok"
