#!/usr/bin/env bash
# CTest entry conformance.run_summarize: the unit tests of the harness's
# summarizer (tests/conformance/summarize), which decides what a crashed
# test binary left undone and reads the classified test list.  Skips (77)
# without go.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
if ! command -v go >/dev/null 2>&1; then
  echo "SKIP: the summarizer's tests need go, which is not installed"
  exit 77
fi
cd "$HERE/summarize"
GOWORK=off GOFLAGS=-buildvcs=false go test -count=1 ./...
