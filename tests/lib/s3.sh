#!/usr/bin/env bash
# s3.sh - build, start and stop the S3-compatible server the tests use:
# gofakes3 v1.2.0 (Go module proxy) with buckets in memory (its only
# backend whose lists page; S3FAKE_DISK=1 keeps them on disk), behind a check
# of every request's Signature V4 (tests/lib/s3fake).  MinIO was tried
# first: the module proxy refuses its release tags (not semver).
#
#   s3.sh build         -> build if needed, print the binary's path
#   s3.sh start DIR     -> serve on 127.0.0.1 (a free port) with
#                          bucket "terrace"; print the endpoint URL;
#                          DIR/env gets the AWS_* variables to use
#   s3.sh stop DIR      -> stop it and remove DIR
#   s3.sh halt DIR / resume DIR -> stop it keeping DIR, start it again
#                          on the same port (objects survive only on disk)
# Keys: AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN
# from the environment, else fixed test keys.  TERRACE_TEST_TLS_DIR=D
# (made by tests/lib/tls_ca.sh): HTTPS with D/server.pem, an https://
# endpoint.  Exit 77: no Go toolchain.
set -euo pipefail
cmd=${1:?build|start|stop|halt|resume}
GOFAKES3_VERSION=v1.2.0
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cache=${TERRACE_CACHE:-$HOME/.cache/terrace}
src="$here/s3fake"
# The binary's name carries a hash of the sources: an edit rebuilds it.
sum=$(cat "$src/main.go" "$src/go.mod" "$src/go.sum" | sha256sum | cut -c1-12)
bin="$cache/gofakes3-$GOFAKES3_VERSION/s3fake-$sum"

build() {
  [ -x "$bin" ] && return 0
  command -v go >/dev/null 2>&1 ||
    { echo "s3.sh: no Go toolchain (scripts/deps.sh test)" >&2; exit 77; }
  mkdir -p "$(dirname "$bin")"
  (cd "$src" && CGO_ENABLED=0 GOFLAGS=-buildvcs=false \
     go build -trimpath -o "$bin.tmp" .) >&2
  mv "$bin.tmp" "$bin"
}

serve() {
  local dir=$1 addr=$2
  rm -f "$dir/port"
  # shellcheck disable=SC1091
  . "$dir/env"
  local disk=() tls=()
  [ -n "${S3FAKE_DISK:-}" ] && disk=(-dir "$dir/data")
  [ -n "${TERRACE_TEST_TLS_DIR:-}" ] &&
    tls=(-cert "$TERRACE_TEST_TLS_DIR/server.pem"
         -key "$TERRACE_TEST_TLS_DIR/server-key.pem")
  setsid "$bin" -addr "$addr" "${disk[@]}" "${tls[@]}" -port-file "$dir/port" \
    -hostbucketbase localhost >>"$dir/server.log" 2>&1 </dev/null &
  echo $! >"$dir/pid"
  for _ in $(seq 1 100); do
    [ -s "$dir/port" ] && return 0
    kill -0 "$(cat "$dir/pid")" 2>/dev/null ||
      { cat "$dir/server.log" >&2; exit 1; }
    sleep 0.1
  done
  echo "s3.sh: server did not start" >&2; exit 1
}

halt() {
  local dir=$1 pid
  [ -f "$dir/pid" ] || return 0
  pid=$(cat "$dir/pid")
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$pid" 2>/dev/null || true
  rm -f "$dir/pid"
}

case $cmd in
build)
  build; echo "$bin" ;;
start)
  dir=${2:?directory}; build
  mkdir -p "$dir/data"
  {
    echo "export AWS_ACCESS_KEY_ID=${AWS_ACCESS_KEY_ID:-terrace-test}"
    echo "export AWS_SECRET_ACCESS_KEY=${AWS_SECRET_ACCESS_KEY:-terrace-test-secret}"
    if [ -n "${AWS_SESSION_TOKEN:-}" ]; then
      echo "export AWS_SESSION_TOKEN=$AWS_SESSION_TOKEN"
    else
      echo "unset AWS_SESSION_TOKEN"
    fi
  } >"$dir/env"
  serve "$dir" 127.0.0.1:0
  echo "http${TERRACE_TEST_TLS_DIR:+s}://127.0.0.1:$(cat "$dir/port")"
  ;;
halt)
  dir=${2:?directory}; cp "$dir/port" "$dir/port.kept"; halt "$dir" ;;
resume)
  dir=${2:?directory}; build; serve "$dir" "127.0.0.1:$(cat "$dir/port.kept")" ;;
stop)
  dir=${2:?directory}; halt "$dir"; rm -rf "$dir" ;;
*)
  echo "usage: s3.sh build|start|stop|halt|resume" >&2; exit 2 ;;
esac
