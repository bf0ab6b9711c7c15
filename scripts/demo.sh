#!/usr/bin/env bash
# demo.sh - install build dependencies, build Terrace and start the demo in
# the foreground.  Extra arguments go to `terrace demo` (--data-dir,
# --listen).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/deps.sh build
cmake -S . -B build-release -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DTERRACE_TESTS=OFF >/dev/null
ninja -C build-release terraced terraced-idle terrace
exec ./build-release/terrace demo "$@"
