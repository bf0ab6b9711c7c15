#!/usr/bin/env bash
# tls_case.sh - one backend over HTTPS to a test server whose certificate
# a throwaway CA signed (tests/lib/tls_ca.sh): the shared blob suite
# passes with ca-file= naming that CA, and fails without it (the
# system's CAs do not know it; the only difference between the two runs),
# with no retries (a certificate error is final: no "trying again").
#
#   tls_case.sh SUITE URL CA   URL: the store's blob URL with its https
#                              endpoint and a query, without ca-file=
# The caller's environment holds the backend's credentials.
#
# SPDX-License-Identifier: MPL-2.0
set -euo pipefail
suite=${1:?suite} url=${2:?url} ca=${3:?ca.pem}
case $url in *endpoint=https://*) ;; *)
  echo "tls_case.sh: $url has no https endpoint" >&2; exit 2 ;;
esac
echo "== over TLS, trusting the test CA (ca-file=)"
TERRACE_TEST_BLOB_URL="$url&ca-file=$ca" "$suite"
echo "== over TLS, with the system's CAs only"
out=$(TERRACE_TEST_BLOB_URL="$url" "$suite" 2>&1) &&
  { echo "tls_case.sh: suite passed without the test CA" >&2; exit 1; }
if echo "$out" | grep -q "trying again"; then
  echo "$out" | grep -m3 "trying again"
  echo "tls_case.sh: a certificate error was retried" >&2; exit 1
fi
echo "refused: $(echo "$out" | grep -c '^\[  FAILED  \]') failed cases, no retries"
