#!/usr/bin/env bash
# CTest entry conformance.run_otf: OTF's selection of go-tfe v1.41.0 tests
# (otf-patterns.txt, run by otf.sh) against a throw-away demo daemon that
# run_conformance.sh starts.  Same environment and exit codes as
# run_conformance.sh (77: go, curl or python3 missing).
exec env CONFORMANCE_SUITE=otf bash "$(dirname "${BASH_SOURCE[0]}")/run_conformance.sh"
