#!/usr/bin/env bash
# local.sh - the steps of deploy/local, one subcommand per resource of
# main.tf.  What a cloud does (machines, a load balancer, PostgreSQL) is
# done here on this host, on loopback; each node goes through
# ../../node/bootstrap.sh exactly as a cloud's user data would.
#
#   local.sh prepare            package, CA, key, load balancer certificate
#   local.sh postgres start|stop
#   local.sh node ROLE INDEX    a primary or secondary (or the demo)
#   local.sh node-stop NAME     stop (primary, demo) or drain (secondary)
#   local.sh lb start|stop      HAProxy in front of the primaries
#   local.sh clean              remove the directory once nothing runs
#
# Settings come from the environment main.tf sets (TL_*).  Everything
# lives under TL_DIR: dist/ (the package), tls/, kek, pg/ (see
# pg_dir), nodes/NAME/ (each node's prefix opt/, etc/, data/ and tls/),
# lb/, logs/ (the logs of removed nodes), retired/ (a stopped demo's
# data), and the client files admin-token, tofu.tfrc and join-token.
#
# SPDX-License-Identifier: MPL-2.0
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
bootstrap=$(cd "$here/../../node" && pwd)/bootstrap.sh
dir=${TL_DIR:?TL_DIR not set}
say() { printf 'deploy/local: %s\n' "$*" >&2; }
die() {
  say "$*"
  exit 1
}
trap 'say "failed: $BASH_COMMAND (line $LINENO)"' ERR

# ---- prepare: the package, the CA, the key ----

# The tree to package: TL_BUILD (a build directory or an install
# prefix), else the checkout's build-release, build, then /opt/terrace
# and /usr/local.
find_build() {
  local top c
  top=$(cd "$here/../../.." && pwd)
  for c in ${TL_BUILD:+"$TL_BUILD"} "$top/build-release" "$top/build" \
    /opt/terrace /usr/local; do
    if [ -x "$c/terraced" ] && [ -x "$c/terrace" ]; then
      echo "build $c"
      return 0
    fi
    if [ -x "$c/bin/terraced" ] && [ -x "$c/bin/terrace" ]; then
      echo "prefix $c"
      return 0
    fi
  done
  return 1
}

package() {
  local kind src stage top
  read -r kind src < <(find_build) ||
    die "no terraced found: build it (./scripts/demo.sh builds build-release)" \
      "or set the terrace_build_dir input"
  top=$(cd "$here/../../.." && pwd)
  stage=$dir/dist/stage
  rm -rf "$stage"
  mkdir -p "$stage/bin" "$stage/share/terrace/node" \
    "$stage/share/terrace/systemd"
  if [ "$kind" = build ] && [ -f "$src/cmake_install.cmake" ] &&
    command -v cmake >/dev/null &&
    cmake --install "$src" --prefix "$stage" >/dev/null 2>&1 &&
    [ -x "$stage/bin/terraced" ]; then
    : # the release layout, as `cmake --install` makes it
  elif [ "$kind" = build ]; then
    # a build configured before it had install rules
    cp "$src/terraced" "$src/terrace" "$stage/bin/"
    [ ! -x "$src/terraced-idle" ] || cp "$src/terraced-idle" "$stage/bin/"
    cp "$top/deploy/node/bootstrap.sh" "$stage/share/terrace/node/"
    cp "$top/deploy/systemd/"* "$stage/share/terrace/systemd/"
  else
    cp -r "$src/bin/terraced" "$src/bin/terrace" "$stage/bin/"
    [ ! -x "$src/bin/terraced-idle" ] || cp "$src/bin/terraced-idle" \
      "$stage/bin/"
    [ ! -d "$src/share/terrace" ] || cp -r "$src/share/terrace/." \
      "$stage/share/terrace/"
  fi
  tar -czf "$dir/dist/terrace.tar.gz" -C "$stage" .
  rm -rf "$stage"
  sha256sum "$dir/dist/terrace.tar.gz" | awk '{print $1}' \
    >"$dir/dist/terrace.tar.gz.sha256"
  say "packaged $src ($kind) into $dir/dist/terrace.tar.gz"
}

# A certificate for ip signed by the CA in $dir/tls, into $1/server.pem
# and $1/server-key.pem.
issue_cert() {
  local out=$1 ip=$2
  mkdir -p "$out"
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout "$out/server-key.pem" -out "$out/server.csr" -subj "/CN=$ip" \
    2>/dev/null
  printf 'subjectAltName=IP:%s\nbasicConstraints=CA:FALSE\n%s\n' "$ip" \
    'extendedKeyUsage=serverAuth,clientAuth' >"$out/ext.cnf"
  openssl x509 -req -in "$out/server.csr" -CA "$dir/tls/ca.pem" \
    -CAkey "$dir/tls/ca-key.pem" -days 30 \
    -set_serial "0x$(openssl rand -hex 16)" \
    -extfile "$out/ext.cnf" -out "$out/server.pem" 2>/dev/null
  rm -f "$out/server.csr" "$out/ext.cnf"
  chmod 0600 "$out/server-key.pem"
}

prepare() {
  umask 077
  # destroy removes the directory: never take one this did not make
  if [ -d "$dir" ] && [ ! -e "$dir/.deploy-local" ] &&
    [ -n "$(ls -A "$dir")" ]; then
    die "work_dir $dir exists and was not made by deploy/local:" \
      "name a new or empty directory"
  fi
  mkdir -p "$dir"
  touch "$dir/.deploy-local"
  mkdir -p "$dir/dist" "$dir/tls" "$dir/nodes" "$dir/blobs" "$dir/lb"
  chmod 0711 "$dir" # the postgres user reaches pg/
  package
  if [ ! -s "$dir/tls/ca.pem" ]; then
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
      -keyout "$dir/tls/ca-key.pem" -out "$dir/tls/ca.pem" -days 30 \
      -subj "/CN=terrace local CA" 2>/dev/null
    chmod 0644 "$dir/tls/ca.pem"
  fi
  [ -s "$dir/kek" ] || openssl rand -hex 32 >"$dir/kek"
  chmod 0600 "$dir/kek"
  issue_cert "$dir/lb" "${TL_LB_LISTEN%:*}"
  cat "$dir/lb/server.pem" "$dir/lb/server-key.pem" >"$dir/lb/lb.pem"
}

# ---- PostgreSQL, on a unix socket in its directory ----

pg_bin() {
  local b
  b=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
  [ -n "$b" ] || b=$(dirname "$(command -v initdb 2>/dev/null)")
  [ -x "$b/initdb" ] || die "PostgreSQL server not installed" \
    "(apt-get install postgresql) and no database_url given"
  echo "$b"
}

as_pg() {
  if [ "$(id -u)" = 0 ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

# $dir/pg, unless the postgres user cannot reach it (a work_dir under
# /root) or its socket path would be too long: then /var/tmp/terrace-
# local-HASH, recorded in $dir/pg-dir
pg_dir() {
  local p=$dir/pg
  if [ -s "$dir/pg-dir" ]; then
    cat "$dir/pg-dir"
    return
  fi
  if [ "${#p}" -gt 80 ] ||
    { [ "$(id -u)" = 0 ] && ! runuser -u postgres -- test -x "$dir"; }; then
    p=/var/tmp/terrace-local-$(printf %s "$dir" | sha256sum | cut -c1-12)
  fi
  echo "$p" >"$dir/pg-dir"
  echo "$p"
}

postgres() {
  local bin pg
  bin=$(pg_bin)
  pg=$(pg_dir)
  case "$1" in
  start)
    mkdir -p "$pg"
    [ "$(id -u)" != 0 ] || chown postgres: "$pg"
    chmod 0700 "$pg"
    if [ ! -s "$pg/data/PG_VERSION" ]; then
      as_pg "$bin/initdb" -D "$pg/data" -U terrace -A trust -N >"$pg/init.log"
    fi
    as_pg "$bin/pg_ctl" -D "$pg/data" -l "$pg/postgres.log" -w -t 60 \
      -o "-c listen_addresses='' -c unix_socket_directories='$pg' -c max_connections=200" \
      start >/dev/null
    as_pg "$bin/psql" -h "$pg" -U terrace -d postgres -tAc \
      "SELECT 1 FROM pg_database WHERE datname = 'terrace'" | grep -q 1 ||
      as_pg "$bin/createdb" -h "$pg" -U terrace terrace
    echo "host=$pg user=terrace dbname=terrace" >"$dir/database-url"
    chmod 0600 "$dir/database-url"
    say "PostgreSQL runs in $pg"
    ;;
  stop)
    if [ -s "$pg/data/postmaster.pid" ]; then
      as_pg "$bin/pg_ctl" -D "$pg/data" -m fast -w stop >/dev/null
    fi
    ;;
  esac
}

# ---- nodes, through bootstrap.sh ----

tofu_bin() {
  local t
  if [ -n "${TL_TOFU_BIN:-}" ]; then
    echo "$TL_TOFU_BIN"
    return
  fi
  t=$(ls "${TERRACE_CACHE:-$HOME/.cache/terrace}"/tofu-*/tofu 2>/dev/null |
    sort -V | tail -n 1)
  [ -n "$t" ] || t=$(command -v tofu 2>/dev/null || true)
  echo "$t"
}

node() {
  local role=$1 i=$2 name ip n args tofu
  case "$role" in
  primary) name=primary-$i ip=$TL_PRIMARY_PREFIX.$i ;;
  secondary) name=secondary-$i ip=$TL_SECONDARY_PREFIX.$i ;;
  demo) name=demo ip=${TL_LB_LISTEN%:*} ;;
  *) die "unknown role $role" ;;
  esac
  n=$dir/nodes/$name
  mkdir -p "$n"
  issue_cert "$n/tls" "$ip"
  args=(up --role "$role" --name "$name" --supervisor process
    --install-from "$dir/dist/terrace.tar.gz"
    --sha256 "$(cat "$dir/dist/terrace.tar.gz.sha256")"
    --prefix "$n/opt" --etc-dir "$n/etc" --data-dir "$n/data"
    --tls-cert "$n/tls/server.pem" --tls-key "$n/tls/server-key.pem"
    --ca-file "$dir/tls/ca.pem" --ready-timeout "${TL_READY_TIMEOUT:-180}")
  tofu=$(tofu_bin)
  case "$role" in
  primary)
    args+=(--index "$i" --listen "$ip:$TL_NODE_PORT"
      --external-url "https://$TL_LB_LISTEN"
      --database-url-file "$dir/database-url" --kek-file "$dir/kek"
      --blob-url "${TL_BLOB_URL:-file://$dir/blobs}" --executors 0)
    [ -z "$tofu" ] || args+=(--set "tofu-bin=$tofu")
    ;;
  secondary)
    args+=(--listen "$ip:$TL_NODE_PORT" --join-url "https://$TL_LB_LISTEN"
      --join-token-file "$dir/join-token"
      --capacity "${TL_CAPACITY:-2}")
    ;;
  demo)
    args+=(--listen "$TL_LB_LISTEN" --external-url "https://$TL_LB_LISTEN")
    [ -z "$tofu" ] || args+=(--set "tofu-bin=$tofu")
    ;;
  esac
  bash "$bootstrap" "${args[@]}"
  if [ "$role" = demo ]; then
    client_files "$n/data/admin-token"
  fi
}

node_stop() {
  local name=$1 n=$dir/nodes/$1 verb=stop
  [ -d "$n" ] || return 0
  case "$name" in secondary-*) verb=drain ;; esac
  bash "$bootstrap" "$verb" --name "$name" --etc-dir "$n/etc"
  # the log outlives the node, until the whole deployment goes
  mkdir -p "$dir/logs"
  [ ! -f "$n/data/terraced.log" ] ||
    mv "$n/data/terraced.log" "$dir/logs/$name.log"
  # the demo's data (its SQLite database, state, key) is kept when the
  # deployment switches to external services, until tofu destroy
  if [ "$name" = demo ]; then
    mkdir -p "$dir/retired"
    mv "$n/data" "$dir/retired/demo-$(date +%Y%m%d%H%M%S)"
  fi
  rm -rf "$n"
}

# admin-token, tofu.tfrc and url for clients
client_files() {
  local tok=$1
  [ -s "$tok" ] || die "no admin token at $tok"
  umask 077
  cp "$tok" "$dir/admin-token"
  printf 'credentials "%s" {\n  token = "%s"\n}\n' "$TL_LB_LISTEN" \
    "$(head -n 1 "$tok")" >"$dir/tofu.tfrc"
  echo "https://$TL_LB_LISTEN" >"$dir/url"
}

# ---- the load balancer ----

lb() {
  local prims=() i tok
  case "$1" in
  start)
    for i in $(seq 1 "$TL_PRIMARIES"); do
      prims+=(--primary "https://$TL_PRIMARY_PREFIX.$i:$TL_NODE_PORT")
    done
    "$dir/nodes/primary-1/opt/bin/terrace" lb haproxy-config "${prims[@]}" \
      --listen "$TL_LB_LISTEN" --cert "$dir/lb/lb.pem" \
      --ca-file "$dir/tls/ca.pem" >"$dir/lb/haproxy.cfg"
    haproxy -c -q -f "$dir/lb/haproxy.cfg"
    lb stop
    haproxy -D -p "$dir/lb/haproxy.pid" -f "$dir/lb/haproxy.cfg" \
      </dev/null >>"$dir/lb/haproxy.log" 2>&1
    # the first admin's token: whichever primary created it wrote it
    tok=$(ls "$dir"/nodes/primary-*/data/admin-token 2>/dev/null | head -n 1)
    client_files "$tok"
    for i in $(seq 1 300); do
      if curl -fsS -m 3 --cacert "$dir/tls/ca.pem" -o /dev/null \
        "https://$TL_LB_LISTEN/_health_check?ready=1" 2>/dev/null; then
        break
      fi
      [ "$i" -lt 300 ] || die "the load balancer is not ready; see" \
        "$dir/lb/haproxy.log"
      sleep 0.2
    done
    umask 077
    "$dir/nodes/primary-1/opt/bin/terrace" admin \
      --url "https://$TL_LB_LISTEN" --token-file "$dir/admin-token" \
      --ca-file "$dir/tls/ca.pem" join-token >"$dir/join-token.tmp"
    mv "$dir/join-token.tmp" "$dir/join-token"
    say "HAProxy listens on https://$TL_LB_LISTEN"
    ;;
  stop)
    local pid
    pid=$(cat "$dir/lb/haproxy.pid" 2>/dev/null || true)
    if [ -n "$pid" ] && grep -qF "$dir/lb/haproxy.cfg" \
      "/proc/$pid/cmdline" 2>/dev/null; then
      kill -TERM "$pid"
      for i in $(seq 1 100); do
        [ -d "/proc/$pid" ] || break
        sleep 0.1
      done
    fi
    rm -f "$dir/lb/haproxy.pid"
    ;;
  esac
}

clean() {
  local left
  [ -d "$dir" ] || return 0
  if [ ! -e "$dir/.deploy-local" ]; then
    say "$dir was not made by deploy/local; leaving it"
    return 0
  fi
  left=$(ls "$dir/nodes" 2>/dev/null || true)
  [ -z "$left" ] || die "nodes still in $dir/nodes: $left"
  if [ -s "$dir/pg-dir" ]; then
    case "$(cat "$dir/pg-dir")" in
    /var/tmp/terrace-local-*) rm -rf "$(cat "$dir/pg-dir")" ;;
    esac
  fi
  rm -rf "$dir"
}

case "${1:-}" in
prepare) prepare ;;
postgres) postgres "$2" ;;
node) node "$2" "$3" ;;
node-stop) node_stop "$2" ;;
lb) lb "$2" ;;
clean) clean ;;
*) die "usage: local.sh prepare|postgres|node|node-stop|lb|clean" ;;
esac
