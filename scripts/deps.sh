#!/usr/bin/env bash
# deps.sh - install what Terrace needs on Debian bookworm (run as root).
#
#   scripts/deps.sh build   packages to build and run Terrace, plus OpenTofu
#   scripts/deps.sh test    the above plus everything the tests use
#
# It may also be sourced (". scripts/deps.sh test") so that a Go toolchain
# it had to fetch stays on PATH for the caller.
#
# Tools built from the Go module proxy are cached by version under
# $TERRACE_CACHE (default $HOME/.cache/terrace), so a second run is fast.
set -euo pipefail

TOFU_VERSION=1.10.10
# The clang-format tests/style/run_format.sh insists on (Debian's
# clang-format-14).  Measured on the tree when the check was added (139
# files): 13.0.1 to 17.0.6 give identical output, 1646 diff lines in 58
# files; 18.1.8 to 23.1.5 give 1650 (config.c's table macros one field a
# line).  Of the closest, 14 is bookworm's default clang-format.
CLANG_FORMAT_VERSION=14.0.6
GO_MIN_MINOR=21                # go >= 1.21 fetches newer toolchains itself
GO_FALLBACK=go1.24.13          # used when no suitable go is installed
CACHE=${TERRACE_CACHE:-$HOME/.cache/terrace}
DEPS_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
mode=${1:-build}

log() { printf '== %s\n' "$*" >&2; }

apt_install() {
  local missing=()
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" ||
      missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  log "installing ${missing[*]}"
  if [ "$(id -u)" != 0 ]; then SUDO=sudo; else SUDO=; fi
  if [ -z "${APT_UPDATED:-}" ]; then $SUDO apt-get update -qq; APT_UPDATED=1; fi
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >/dev/null
}

build_packages=(build-essential cmake ninja-build pkg-config git curl ca-certificates
  unzip libmicrohttpd-dev libjansson-dev libpq-dev libsqlite3-dev
  libcurl4-openssl-dev libarchive-dev libssl-dev libmbedtls-dev libseccomp-dev bubblewrap
  util-linux openssh-client)
test_packages=(libcmocka-dev postgresql python3 python3-pytest python3-venv
  procps "clang-format-${CLANG_FORMAT_VERSION%%.*}" haproxy openssl
  python3-cryptography python3-paramiko sqlite3)

go_ok() {
  command -v go >/dev/null 2>&1 || return 1
  local minor
  minor=$(go env GOVERSION 2>/dev/null | sed -n 's/^go1\.\([0-9]*\).*/\1/p')
  [ -n "$minor" ] && [ "$minor" -ge "$GO_MIN_MINOR" ]
}

# Puts a usable go on PATH: the installed one, Debian's, or a toolchain
# module from the Go module proxy, cached.
ensure_go() {
  go_ok && return 0
  [ -x "$CACHE/$GO_FALLBACK/bin/go" ] && export PATH="$CACHE/$GO_FALLBACK/bin:$PATH"
  go_ok && return 0
  apt_install golang-go
  go_ok && return 0
  log "fetching $GO_FALLBACK from the Go module proxy"
  local proxy=${GOPROXY:-https://proxy.golang.org}; proxy=${proxy%%,*}
  local tmp; tmp=$(mktemp -d)
  curl -fsSL -o "$tmp/go.zip" \
    "$proxy/golang.org/toolchain/@v/v0.0.1-$GO_FALLBACK.linux-amd64.zip"
  (cd "$tmp" && unzip -q go.zip)
  mkdir -p "$CACHE"
  rm -rf "$CACHE/$GO_FALLBACK"
  mv "$tmp"/golang.org/toolchain@*/ "$CACHE/$GO_FALLBACK"
  chmod +x "$CACHE/$GO_FALLBACK"/bin/* "$CACHE/$GO_FALLBACK"/pkg/tool/*/* || true
  rm -rf "$tmp"
  export PATH="$CACHE/$GO_FALLBACK/bin:$PATH"
  go_ok || { echo "deps.sh: no usable Go toolchain" >&2; exit 1; }
}

# OpenTofu, built from its module (go install refuses its replace directives).
ensure_tofu() {
  local out="$CACHE/tofu-$TOFU_VERSION/tofu"
  if [ -x "$out" ] && "$out" version >/dev/null 2>&1; then return 0; fi
  ensure_go
  log "building OpenTofu $TOFU_VERSION (cached in $CACHE)"
  local dir
  dir=$(go mod download -json "github.com/opentofu/opentofu@v$TOFU_VERSION" |
        sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
  [ -d "$dir" ] || { echo "deps.sh: cannot download OpenTofu" >&2; exit 1; }
  mkdir -p "$(dirname "$out")"
  (cd "$dir" && CGO_ENABLED=0 GOFLAGS=-buildvcs=false \
     go build -trimpath -o "$out.tmp" ./cmd/tofu)
  mv "$out.tmp" "$out"
}

# pytfe (PyPI) for tests/e2e/test_pytfe.py, in a venv of its own with
# every package pinned (tests/e2e/pytfe-requirements.txt), cached by
# version.  Failing only warns: that test then skips and says why.
PYTFE_VERSION=1.5.0
ensure_pytfe() {
  local venv="$CACHE/pytfe-$PYTFE_VERSION"
  local req="$DEPS_ROOT/tests/e2e/pytfe-requirements.txt"
  if [ -x "$venv/bin/python" ] &&
     "$venv/bin/python" -c 'import pytfe' >/dev/null 2>&1; then
    return 0
  fi
  log "installing pytfe $PYTFE_VERSION into $venv"
  rm -rf "$venv"
  if ! { python3 -m venv "$venv" &&
         "$venv/bin/pip" install -q --disable-pip-version-check --no-deps \
           -r "$req"; }; then
    log "cannot install pytfe; tests/e2e/test_pytfe.py will skip"
    rm -rf "$venv"
  fi
}

# fake-gcs-server for the GCS blob backend's tests (tests/lib/gcs.sh
# builds and caches it).  Failing only warns: blob.gcs then skips.
ensure_fake_gcs() {
  TERRACE_CACHE=$CACHE bash "$DEPS_ROOT/tests/lib/gcs.sh" build >/dev/null ||
    log "cannot build fake-gcs-server; the blob.gcs test will skip"
}

# Azurite (npm) for the Azure Blob backend's tests (tests/blob/run_azure.sh),
# cached by version by tests/lib/azurite.sh.  npm comes with NodeSource's
# nodejs; otherwise Debian's nodejs and npm.  Failing only warns: that test
# then skips and says why.
ensure_azurite() {
  command -v npm >/dev/null 2>&1 || apt_install nodejs npm
  TERRACE_CACHE="$CACHE" bash "$DEPS_ROOT/tests/lib/azurite.sh" install ||
    log "cannot install azurite; tests/blob/run_azure.sh will skip"
}

# Vault for tests/vault (built from the Go module proxy by
# tests/lib/vault.sh, cached).  Failing only warns: run_vault.sh then
# fails saying so.
ensure_vault() {
  bash "$DEPS_ROOT/tests/lib/vault.sh" build >/dev/null ||
    log "cannot build Vault; tests/vault/run_vault.sh will fail"
}

# The S3-compatible test server (gofakes3 from the Go module proxy behind
# a signature check), cached by version and source hash.
ensure_s3fake() {
  log "building the S3 test server (tests/lib/s3.sh)"
  "$DEPS_ROOT/tests/lib/s3.sh" build >/dev/null
}

case $mode in
build)
  apt_install "${build_packages[@]}"
  ensure_tofu
  ;;
test)
  apt_install "${build_packages[@]}" "${test_packages[@]}"
  ensure_tofu
  ensure_go
  ensure_s3fake
  ensure_pytfe
  ensure_fake_gcs
  ensure_azurite
  ensure_vault
  ;;
*)
  echo "usage: deps.sh build|test" >&2; exit 2 ;;
esac
export TOFU_BIN="$CACHE/tofu-$TOFU_VERSION/tofu"
log "dependencies ready (tofu: $TOFU_BIN)"
