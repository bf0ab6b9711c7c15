#!/usr/bin/env bash
# gcs.sh - build, start or stop fake-gcs-server, the Google Cloud Storage
# JSON API emulator the GCS blob backend is tested against.
#   gcs.sh build            -> build it from the Go module proxy once
#                              (cached), print the binary's path
#   gcs.sh start DIR [BKT]  -> start it on a free loopback port with its
#                              objects under DIR/data, create bucket BKT
#                              (default "terrace"), print the endpoint URL
#   gcs.sh stop DIR         -> stop it and remove DIR
# TERRACE_TEST_TLS_DIR=D (made by tests/lib/tls_ca.sh): it serves HTTPS
# with D/server.pem, and the endpoint printed is https://.
# Exit 77 when it cannot be had (no Go toolchain, module proxy refused).
set -euo pipefail
VERSION=1.56.1
CACHE=${TERRACE_CACHE:-$HOME/.cache/terrace}
BIN=$CACHE/fake-gcs-server-$VERSION/fake-gcs-server
cmd=${1:?build|start|stop}

build() {
  if [ -x "$BIN" ]; then echo "$BIN"; return 0; fi
  command -v go >/dev/null 2>&1 ||
    { echo "gcs.sh: no Go toolchain (scripts/deps.sh test)" >&2; exit 77; }
  local tmp; tmp=$(mktemp -d)
  echo "gcs.sh: building fake-gcs-server $VERSION (cached in $CACHE)" >&2
  if ! GOBIN=$tmp CGO_ENABLED=0 GOFLAGS=-buildvcs=false \
       go install -trimpath "github.com/fsouza/fake-gcs-server@v$VERSION" >&2
  then
    rm -rf "$tmp"
    echo "gcs.sh: cannot build fake-gcs-server $VERSION" >&2
    exit 77
  fi
  mkdir -p "$(dirname "$BIN")"
  mv "$tmp/fake-gcs-server" "$BIN.tmp" && mv "$BIN.tmp" "$BIN"
  rm -rf "$tmp"
  echo "$BIN"
}

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

case $cmd in
build)
  build
  ;;
start)
  dir=${2:?directory}; bucket=${3:-terrace}
  build >/dev/null
  mkdir -p "$dir/data"
  port=$(free_port)
  scheme=(-scheme http) cacert=()
  if [ -n "${TERRACE_TEST_TLS_DIR:-}" ]; then
    scheme=(-scheme https
            -cert-location "$TERRACE_TEST_TLS_DIR/server.pem"
            -private-key-location "$TERRACE_TEST_TLS_DIR/server-key.pem")
    cacert=(--cacert "$TERRACE_TEST_TLS_DIR/ca.pem")
  fi
  url="http${TERRACE_TEST_TLS_DIR:+s}://127.0.0.1:$port"
  # setsid: the server outlives this script but not the test's cleanup.
  setsid "$BIN" "${scheme[@]}" -host 127.0.0.1 -port "$port" \
    -backend filesystem -filesystem-root "$dir/data" \
    -external-url "$url" -public-host "127.0.0.1:$port" \
    -log-level warn >"$dir/server.log" 2>&1 </dev/null &
  echo $! >"$dir/pid"
  ok=
  for _ in $(seq 1 100); do          # 10 s at most
    if curl -fsS "${cacert[@]}" -o /dev/null "$url/storage/v1/b" 2>/dev/null; then
      ok=1; break
    fi
    kill -0 "$(cat "$dir/pid")" 2>/dev/null || break
    sleep 0.1
  done
  if [ -z "$ok" ]; then
    echo "gcs.sh: fake-gcs-server did not start:" >&2
    tail -n 20 "$dir/server.log" >&2
    exit 1
  fi
  curl -fsS "${cacert[@]}" -o /dev/null -X POST \
    -H 'Content-Type: application/json' \
    -d "{\"name\":\"$bucket\"}" "$url/storage/v1/b"
  echo "$url"
  ;;
stop)
  dir=${2:?directory}
  if [ -f "$dir/pid" ]; then
    pid=$(cat "$dir/pid")
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -rf "$dir"
  ;;
*)
  echo "usage: gcs.sh build|start DIR [BUCKET]|stop DIR" >&2; exit 2 ;;
esac
