#!/usr/bin/env bash
# vault.sh - build, start or stop a throwaway Vault server for tests.
#   vault.sh build           -> build HashiCorp Vault $VAULT_VERSION from the
#                               Go module proxy (cached), print its path
#   vault.sh start DIR [KEY] -> start it in dev mode on 127.0.0.1 (state in
#                               memory, files in DIR), enable transit at
#                               "transit", create the aes256-gcm96 key KEY
#                               (default terrace) and an AppRole "terrace"
#                               allowed to use it; print shell assignments:
#                               VAULT_ADDR, VAULT_TOKEN (root), VAULT_PID,
#                               VAULT_ROLE_ID and VAULT_SECRET_ID
#   vault.sh stop DIR        -> stop it and remove DIR
# With TERRACE_VAULT_FAKE=1, start runs tests/lib/fake_transit.py (the
# documented transit API) instead, for machines where Vault cannot be
# built.
# Exit 77 when no Go toolchain is there to build it (tests skip).
#
# Why Vault 1.14.0: the 1.14 line is the last under the MPL.  Its go.mod
# replaces its api and sdk modules with subdirectories that a module zip
# leaves out.  The api modules come at the versions go.mod requires; the
# sdk it requires is a commit from before the release that lacks what the
# release uses, so it is sdk v0.9.2 (the first tagged after), relaxed in
# one check (below).  1.14.10 was tried first: its
# go.mod names sdk v0.10.2, but its tree uses sdk functions backported to
# the release branch that no published sdk version has (the proxy serves
# no pseudo-version at the release's commit).  OpenBao cannot be had this
# way: its v2 tags live under a module path without /v2, which the proxy
# refuses.
set -euo pipefail
VAULT_VERSION=1.14.0
CACHE=${TERRACE_CACHE:-$HOME/.cache/terrace}
BIN="$CACHE/vault-$VAULT_VERSION/vault"
cmd=${1:?build|start|stop}

log() { printf '== vault.sh: %s\n' "$*" >&2; }

mod_dir() {
  go mod download -json "$1" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p'
}

build() {
  if [ -x "$BIN" ] && "$BIN" version >/dev/null 2>&1; then
    echo "$BIN"; return 0
  fi
  command -v go >/dev/null 2>&1 || { log "no go toolchain"; exit 77; }
  log "building Vault $VAULT_VERSION (cached in $CACHE; takes minutes)"
  local src dir sub
  src=$(mod_dir "github.com/hashicorp/vault@v$VAULT_VERSION")
  [ -d "$src" ] || { log "cannot download vault"; exit 1; }
  dir="$CACHE/vault-$VAULT_VERSION/src"
  rm -rf "$dir"; mkdir -p "$dir"
  cp -r "$src"/. "$dir"/; chmod -R u+w "$dir"
  # the published api modules at the versions go.mod requires; the sdk
  # (see above) as v0.9.2 in ./sdk, where go.mod's replace expects it
  sed -i -e '/^replace github.com\/hashicorp\/vault\/api[a-z/]* => \.\//d' \
    "$dir/go.mod"
  local sdk
  sdk=$(mod_dir "github.com/hashicorp/vault/sdk@v0.9.2")
  [ -d "$sdk" ] || { log "cannot download vault/sdk"; exit 1; }
  cp -r "$sdk" "$dir/sdk"; chmod -R u+w "$dir/sdk"
  # v0.9.2 refuses paths that offer create without an existence check;
  # some of the release's backends (transit's cache-config among them)
  # do, as its own sdk allowed: let them
  sed -i '/defines a CreateOperation but no ExistenceCheck/s/panic(.*$/_ = p/' \
    "$dir/sdk/framework/backend.go"
  # -checklinkname=0: some of its older dependencies reach into the
  # runtime in ways newer Go toolchains refuse by default.
  (cd "$dir" && GOFLAGS="-mod=mod -buildvcs=false" CGO_ENABLED=0 \
     go build -trimpath -ldflags=-checklinkname=0 -o "$BIN.tmp" .)
  mv "$BIN.tmp" "$BIN"
  rm -rf "$dir"
  echo "$BIN"
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

api() { # METHOD PATH [JSON]
  curl -fsS -X "$1" -H "X-Vault-Token: $token" \
    ${3:+-H 'Content-Type: application/json' -d "$3"} "$addr/v1/$2"
}

# TERRACE_VAULT_FAKE=1: fake_transit.py instead (no Vault to be had).
start_fake() {
  local dir=$1 key=$2
  mkdir -p "$dir"
  local port; port=$(free_port)
  addr="http://127.0.0.1:$port"; token=root-$RANDOM$RANDOM
  local role=role-$RANDOM$RANDOM secret=secret-$RANDOM$RANDOM
  setsid python3 "$(dirname "$0")/fake_transit.py" "$port" "$token" \
    "$role" "$secret" >"$dir/server.log" 2>&1 </dev/null &
  echo $! >"$dir/pid"
  local i
  for i in $(seq 1 100); do
    curl -fsS "$addr/v1/sys/health" >/dev/null 2>&1 && break
    sleep 0.1
  done
  api POST "transit/keys/$key" '{"type":"aes256-gcm96"}' >/dev/null
  log "FAKE transit API (fake_transit.py), not Vault"
  echo "VAULT_ADDR=$addr"
  echo "VAULT_TOKEN=$token"
  echo "VAULT_PID=$(cat "$dir/pid")"
  echo "VAULT_ROLE_ID=$role"
  echo "VAULT_SECRET_ID=$secret"
}

start() {
  local dir=${1:?directory} key=${2:-terrace}
  if [ "${TERRACE_VAULT_FAKE:-}" = 1 ]; then start_fake "$dir" "$key"; return; fi
  [ -x "$BIN" ] || build >/dev/null
  mkdir -p "$dir"
  local port; port=$(free_port)
  addr="http://127.0.0.1:$port"; token=root-$RANDOM$RANDOM
  cat >"$dir/config.hcl" <<EOF
disable_mlock = true
ui = false
EOF
  # HOME in DIR: dev mode writes a token helper file into HOME.
  HOME="$dir" VAULT_LOG_LEVEL=warn setsid "$BIN" server -dev \
    -config="$dir/config.hcl" \
    -dev-root-token-id="$token" -dev-listen-address="127.0.0.1:$port" \
    -dev-no-store-token >"$dir/server.log" 2>&1 </dev/null &
  local pid=$!
  echo "$pid" >"$dir/pid"
  local i
  for i in $(seq 1 300); do
    if curl -fsS "$addr/v1/sys/health" >/dev/null 2>&1; then break; fi
    kill -0 "$pid" 2>/dev/null || { cat "$dir/server.log" >&2; exit 1; }
    sleep 0.1
  done
  curl -fsS "$addr/v1/sys/health" >/dev/null || { log "not up"; exit 1; }
  api POST sys/mounts/transit '{"type":"transit"}' >/dev/null
  api POST "transit/keys/$key" '{"type":"aes256-gcm96"}' >/dev/null
  api PUT sys/policies/acl/terrace "$(python3 -c '
import json, sys
k = sys.argv[1]
p = "\n".join("path \"transit/%s/%s\" { capabilities = [\"create\", \"update\", \"read\"] }" % (op, k)
              for op in ("encrypt", "decrypt", "hmac", "keys"))
p += "\npath \"transit/hmac/%s/*\" { capabilities = [\"update\"] }" % k
print(json.dumps({"policy": p}))' "$key")" >/dev/null
  api POST sys/auth/approle '{"type":"approle"}' >/dev/null
  api POST auth/approle/role/terrace \
    '{"token_policies":["terrace"],"token_ttl":"1h","token_max_ttl":"4h"}' \
    >/dev/null
  local role_id secret_id
  role_id=$(api GET auth/approle/role/terrace/role-id |
            python3 -c 'import json,sys; print(json.load(sys.stdin)["data"]["role_id"])')
  secret_id=$(api POST auth/approle/role/terrace/secret-id '{}' |
              python3 -c 'import json,sys; print(json.load(sys.stdin)["data"]["secret_id"])')
  echo "VAULT_ADDR=$addr"
  echo "VAULT_TOKEN=$token"
  echo "VAULT_PID=$pid"
  echo "VAULT_ROLE_ID=$role_id"
  echo "VAULT_SECRET_ID=$secret_id"
}

stop() {
  local dir=${1:?directory}
  if [ -f "$dir/pid" ]; then
    local pid; pid=$(cat "$dir/pid")
    kill "$pid" 2>/dev/null || true
    local i
    for i in $(seq 1 100); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -rf "$dir"
}

case $cmd in
build) build ;;
start) start "${2:-}" "${3:-}" ;;
stop) stop "${2:-}" ;;
*) echo "usage: vault.sh build|start DIR [KEY]|stop DIR" >&2; exit 2 ;;
esac
