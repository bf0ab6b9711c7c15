#!/usr/bin/env bash
# run_s3.sh - the shared blob suite (tests/unit/test_blob_suite.c) on the
# S3 backend, against the test server tests/lib/s3.sh starts (gofakes3
# behind a SigV4 check): path-style with the 200 MB round trip and the
# fault cases through tests/blob/faultproxy.py, virtual-hosted
# addressing, a wrong secret, over TLS with ca-file= (tests/blob/
# tls_case.sh), credentials from stub ECS and IMDSv2
# endpoints with a session token, and from a shared credentials file.  Exit 77 only when the server cannot be built (no Go).
set -euo pipefail
src=${TERRACE_SRC_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
build=${TERRACE_BUILD_DIR:-$src/build}
suite="$build/tests/test_blob_suite"
[ -x "$suite" ] || { echo "run_s3.sh: build $suite first" >&2; exit 1; }
"$src/tests/lib/s3.sh" build >/dev/null || exit $?

work=$(mktemp -d "${TMPDIR:-/tmp}/terrace-s3.XXXXXX")
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  "$src/tests/lib/s3.sh" stop "$work/s3" 2>/dev/null || true
  "$src/tests/lib/s3.sh" stop "$work/s3tok" 2>/dev/null || true
  "$src/tests/lib/s3.sh" stop "$work/s3tls" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

wait_file() {
  for _ in $(seq 1 100); do [ -s "$1" ] && return 0; sleep 0.1; done
  echo "run_s3.sh: $1 never appeared" >&2; return 1
}

# 1. static keys, path-style, the big object, faults through the proxy
endpoint=$(env -u AWS_SESSION_TOKEN "$src/tests/lib/s3.sh" start "$work/s3")
port=${endpoint##*:}
python3 "$src/tests/blob/faultproxy.py" --upstream "$endpoint" \
  --port-file "$work/proxy.port" >"$work/proxy.log" 2>&1 &
pids+=($!)
wait_file "$work/proxy.port"
proxy="http://127.0.0.1:$(cat "$work/proxy.port")"
(
  # shellcheck disable=SC1091
  . "$work/s3/env"
  echo "== s3 path-style via faultproxy, 200 MB round trip"
  TERRACE_TEST_BLOB_URL="s3://terrace/t1?endpoint=$proxy&force-path-style=true&region=eu-west-1" \
  TERRACE_TEST_BLOB_BIG=1 TERRACE_TEST_BLOB_FAULT="$proxy" "$suite"
  # 2. virtual-hosted: BUCKET.localhost (libcurl resolves *.localhost to
  # loopback; the server takes the bucket from the host)
  echo "== s3 virtual-hosted, sse=AES256"
  TERRACE_TEST_BLOB_URL="s3://terrace/t2?endpoint=http://localhost:$port&sse=AES256" \
    "$suite"
  # 3. a wrong secret: refused with a clear error, not retried forever
  echo "== s3 wrong secret"
  out=$(AWS_SECRET_ACCESS_KEY=wrong \
    TERRACE_TEST_BLOB_URL="s3://terrace/t3?endpoint=$endpoint&force-path-style=true" \
    "$suite" 2>&1) && { echo "suite passed with a wrong secret" >&2; exit 1; }
  grep -q "signature mismatch" "$work/s3/server.log" ||
    { echo "$out" | tail -20; echo "server saw no bad signature" >&2; exit 1; }
  echo "refused: $(grep -c "signature mismatch" "$work/s3/server.log") requests"
)

# 4. over TLS to a server whose certificate a test CA signed
bash "$src/tests/lib/tls_ca.sh" "$work/tls"
endpoint_tls=$(env -u AWS_SESSION_TOKEN TERRACE_TEST_TLS_DIR="$work/tls" \
  "$src/tests/lib/s3.sh" start "$work/s3tls")
(
  # shellcheck disable=SC1091
  . "$work/s3tls/env"
  bash "$src/tests/blob/tls_case.sh" "$suite" \
    "s3://terrace/tls?endpoint=$endpoint_tls&force-path-style=true" \
    "$work/tls/ca.pem"
)

# 5. temporary credentials from a stub ECS endpoint, against a server
# that insists on their session token
export AWS_ACCESS_KEY_ID=ASIATEMPORARY AWS_SECRET_ACCESS_KEY=temp-secret \
  AWS_SESSION_TOKEN=temp-session-token
endpoint2=$("$src/tests/lib/s3.sh" start "$work/s3tok")
python3 "$src/tests/blob/ecs_stub.py" --port-file "$work/ecs.port" \
  --hits "$work/ecs.hits" >"$work/ecs.log" 2>&1 &
pids+=($!)
wait_file "$work/ecs.port"
echo "== s3 with ECS container credentials"
env -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY -u AWS_SESSION_TOKEN \
  AWS_CONTAINER_CREDENTIALS_FULL_URI="http://127.0.0.1:$(cat "$work/ecs.port")/creds" \
  AWS_CONTAINER_AUTHORIZATION_TOKEN=ecs-auth \
  TERRACE_TEST_BLOB_URL="s3://terrace/t4?endpoint=$endpoint2&force-path-style=true" \
  "$suite"
# the stub hands out credentials expiring within the refresh window, so
# a backend that refreshes asks again (once per open is the floor)
hits=$(cat "$work/ecs.hits")
[ "$hits" -gt 20 ] || { echo "credentials fetched $hits times: not refreshed" >&2; exit 1; }
echo "ecs endpoint asked $hits times"
echo "== s3 with EC2 instance-role credentials (IMDSv2)"
env -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY -u AWS_SESSION_TOKEN \
  AWS_EC2_METADATA_SERVICE_ENDPOINT="http://127.0.0.1:$(cat "$work/ecs.port")" \
  TERRACE_TEST_BLOB_URL="s3://terrace/t5?endpoint=$endpoint2&force-path-style=true" \
  "$suite"
hits2=$(cat "$work/ecs.hits")
[ $((hits2 - hits)) -gt 20 ] ||
  { echo "imds asked $((hits2 - hits)) times: not refreshed" >&2; exit 1; }
echo "imds asked $((hits2 - hits)) times"

# 6. static keys from the shared credentials file: the profile AWS_PROFILE
# names (its [default] holds a wrong secret), then [default] under
# $HOME/.aws; a profile that is not there is refused, saying so
mkdir -p "$work/home/.aws"
cat >"$work/aws-credentials" <<'INI'
# written by the AWS CLI
[default]
aws_access_key_id = ASIATEMPORARY
aws_secret_access_key = wrong-secret

; the one the suite uses
[ terrace ]
aws_access_key_id=ASIATEMPORARY
aws_secret_access_key = temp-secret
aws_session_token = temp-session-token
INI
sed -n '/^\[ terrace \]/,$p' "$work/aws-credentials" |
  sed 's/\[ terrace \]/[default]/' >"$work/home/.aws/credentials"
noenv=(env -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY -u AWS_SESSION_TOKEN
  -u AWS_PROFILE -u AWS_SHARED_CREDENTIALS_FILE AWS_EC2_METADATA_DISABLED=true)
echo "== s3 with a profile of a shared credentials file"
"${noenv[@]}" AWS_SHARED_CREDENTIALS_FILE="$work/aws-credentials" \
  AWS_PROFILE=terrace \
  TERRACE_TEST_BLOB_URL="s3://terrace/t6?endpoint=$endpoint2&force-path-style=true" \
  "$suite"
echo "== s3 with the default profile of ~/.aws/credentials"
"${noenv[@]}" HOME="$work/home" \
  TERRACE_TEST_BLOB_URL="s3://terrace/t7?endpoint=$endpoint2&force-path-style=true" \
  "$suite"
echo "== s3 with a profile that is not in the file"
out=$("${noenv[@]}" AWS_SHARED_CREDENTIALS_FILE="$work/aws-credentials" \
  AWS_PROFILE=nosuch \
  TERRACE_TEST_BLOB_URL="s3://terrace/t8?endpoint=$endpoint2&force-path-style=true" \
  "$suite" 2>&1) && { echo "suite passed with a missing profile" >&2; exit 1; }
echo "$out" | grep -q "AWS_PROFILE=nosuch: no such profile" ||
  { echo "$out" | tail -20; echo "no clear error for a missing profile" >&2; exit 1; }
echo "refused: AWS_PROFILE=nosuch"
echo "run_s3.sh: ok"
