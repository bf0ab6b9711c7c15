#!/usr/bin/env bash
# otf.sh - the peer, OTF's otfd, for side-by-side benchmarks (sourced
# after lib.sh).  Never part of the repository: the Go module proxy does
# not serve OTF's recent versions, so otfd comes from, in this order,
#
#   OTFD_BIN=/path/to/otfd      a binary the operator built
#   otfd on PATH
#   OTF_SRC=/path/to/checkout   a source tree of OTF (for example a
#                               `git archive v0.6.3` of its repository),
#                               built with `go build ./cmd/otfd` into
#                               $TERRACE_CACHE/otf-<version>/otfd, reused
#   $TERRACE_CACHE/otf-*/otfd   a binary built that way before
#
# and when none works the scripts print a note and skip OTF's rows.
# otfd gets its own throwaway PostgreSQL and a self-signed certificate
# for 127.0.0.1; the site token is its admin.
#
# SPDX-License-Identifier: MPL-2.0

OTF_CACHE=${TERRACE_CACHE:-$HOME/.cache/terrace}

# Sets OTFD (path) and OTF_VERSION, or returns 1 with a note on stderr.
otf_find() {
  OTFD=${OTFD_BIN:-$(command -v otfd 2>/dev/null || true)}
  if [ -z "$OTFD" ] && [ -n "${OTF_SRC:-}" ]; then
    local v
    v=$(git -C "$OTF_SRC" describe --tags 2>/dev/null ||
        sed -n 's/.*"\.": "\(.*\)".*/v\1/p' \
          "$OTF_SRC/.release-please-manifest.json" 2>/dev/null || true)
    v=${v:-unknown}
    if [ ! -x "$OTF_CACHE/otf-$v/otfd" ]; then
      blog "building otfd $v from $OTF_SRC (go build ./cmd/otfd)"
      mkdir -p "$OTF_CACHE/otf-$v"
      (cd "$OTF_SRC" && GOTOOLCHAIN=auto go build -o "$OTF_CACHE/otf-$v/otfd" \
        ./cmd/otfd) >&2 || return 1
    fi
    OTFD=$OTF_CACHE/otf-$v/otfd
  fi
  if [ -z "$OTFD" ]; then
    OTFD=$(ls -1d "$OTF_CACHE"/otf-*/otfd 2>/dev/null | sort -V | tail -n 1)
  fi
  if [ -z "$OTFD" ] || [ ! -x "$OTFD" ]; then
    blog "no otfd: set OTFD_BIN, put otfd on PATH or set OTF_SRC to an OTF" \
         "source tree; OTF's rows are skipped"
    return 1
  fi
  case "$OTFD" in
    */otf-v*/otfd) OTF_VERSION=$(basename "$(dirname "$OTFD")");;
    *) OTF_VERSION=$("$OTFD" --version 2>/dev/null | head -n 1 || true);;
  esac
  OTF_VERSION=${OTF_VERSION:-unknown}
}

# otf_start NAME: otfd on a free port with its own PostgreSQL; sets D_URL
# D_PID D_TOKEN D_CA D_LOG like bench_start, so api and run_wrk work.
# Extra otfd flags may be set in the array OTFD_ARGS.
otf_start() {
  local name=$1 port dir pgdir conninfo secret
  port=$(bench_free_port)
  dir=$BENCH_TMP/$name
  pgdir=$dir/pg
  mkdir -p "$pgdir"
  BENCH_PGDIRS+=("$pgdir")
  conninfo=$(bash "$BENCH_ROOT/tests/lib/pg.sh" start "$pgdir")
  openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=127.0.0.1 \
    -addext "subjectAltName=IP:127.0.0.1" -keyout "$dir/key.pem" \
    -out "$dir/cert.pem" >/dev/null 2>&1
  secret=$(openssl rand -hex 16)
  D_TOKEN=site-$(openssl rand -hex 16)
  D_URL=https://127.0.0.1:$port
  D_CA=$dir/cert.pem
  D_LOG=$dir/otfd.log
  "$OTFD" --address "127.0.0.1:$port" --hostname "127.0.0.1:$port" \
    --database "$conninfo" --secret "$secret" --site-token "$D_TOKEN" \
    --ssl --cert-file "$dir/cert.pem" --key-file "$dir/key.pem" \
    ${OTFD_ARGS[@]+"${OTFD_ARGS[@]}"} >"$D_LOG" 2>&1 &
  D_PID=$!
  BENCH_PIDS+=("$D_PID")
  local i
  for i in $(seq 1 600); do
    kill -0 "$D_PID" 2>/dev/null || {
      tail -n 20 "$D_LOG" >&2
      echo "otfd exited during start-up" >&2
      return 1
    }
    curl -sf --cacert "$D_CA" "$D_URL/healthz" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "otfd not ready after 60 s" >&2
  return 1
}
