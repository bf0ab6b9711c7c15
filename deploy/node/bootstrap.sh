#!/usr/bin/env bash
# bootstrap.sh - install, configure and start one Terrace node, or stop
# or drain it.  The one node bootstrap of every deploy module: the cloud
# modules pass it as user data (settings as TB_* assignments ahead of
# it), deploy/local runs it with flags.
#
#   bootstrap.sh [up] --role demo|primary|secondary [settings]
#   bootstrap.sh stop  --name NAME [--etc-dir D] [--timeout S]
#   bootstrap.sh drain --name NAME [--etc-dir D] [--timeout S]
#
# up: installs the binaries (--install-from, a .tar.gz of the
# `cmake --install` tree, path or URL, checked against --sha256),
# writes ETC/NAME.conf (mode 0600) and ETC/NAME.env, starts
# terraced@NAME.service where systemd is PID 1 (else, or with
# --supervisor process, a detached terraced with DATA/terraced.pid and
# DATA/terraced.log), waits for /_health_check?ready=1 and exits
# non-zero with the log's tail when the node is not ready in time.
# stop and drain send SIGTERM and wait for the exit: a secondary
# finishes the plans and applies in hand first.  drain waits as long as
# that takes (or --timeout S); stop sends SIGKILL after --timeout
# (default 60 s).
#
# Every flag has a TB_* variable (--join-url: TB_JOIN_URL); flags win.
# Secrets can come from files (--join-token-file, --database-url-file)
# so they stay off command lines.
#
# SPDX-License-Identifier: MPL-2.0
set -euo pipefail

say() { printf 'bootstrap: %s\n' "$*" >&2; }
die() {
  say "$*"
  exit 1
}
trap 'say "failed: $BASH_COMMAND (line $LINENO)"' ERR

usage() {
  sed -n '2,27p' "$0" | sed 's/^# \{0,1\}//'
  cat <<'EOF'

Settings of `up` (TB_<NAME> in the environment, e.g. TB_ROLE):
  --name N               node name (default: primary-INDEX, secondary, demo)
  --role R               demo | primary | secondary
  --index N              a primary's index (1, 2, 3)
  --install-from P       binaries: .tar.gz path or http(s)/file URL
  --sha256 HEX           its SHA-256 (required with --install-from)
  --prefix D             install prefix (default /opt/terrace)
  --etc-dir D            config directory (default /etc/terrace)
  --data-dir D           data directory (default /var/lib/terrace/NAME)
  --listen HOST:PORT     listen address (default 0.0.0.0:443)
  --external-url U       the URL clients use (the load balancer's)
  --join-url U           secondary: the primaries' URL
  --join-token T         secondary: the cluster's join token
  --join-token-file F    ... read from a file
  --capacity N           secondary: plans and applies at once
  --database-url U       primary: PostgreSQL connection string
  --database-url-file F  ... read from a file
  --blob-url U           primary: blob store (file:///dir, s3://...)
  --kek-file F           primary: key-encryption key (same on all)
  --executors N          primary: local executors (0 in a cluster)
  --vault-addr U         primary, demo: Vault holding the key-encryption
                         key (transit engine), https://HOST:8200
  --vault-key K          ... the transit key's name (aes256-gcm96)
  --vault-mount M        ... the transit mount (default transit)
  --vault-token-file F   ... a file holding a Vault token, or
  --vault-role-id R      ... AppRole login: role id
  --vault-secret-id-file F  ... and a file holding the secret id
  --vault-ca-file F      ... CA for Vault's certificate
  --vault-namespace N    ... Vault Enterprise namespace
  --tls-cert F --tls-key F  the node's certificate and key (PEM)
  --ca-file F            CA trusted for the join URL, the readiness
                         probe and (demo, primary) by the node's runs
  --set KEY=VALUE        any other terraced setting (repeatable)
  --supervisor S         auto | systemd | process (default auto)
  --ready-timeout S      seconds to wait for readiness (default 300)
EOF
}

# ---- settings ----
cmd=up
case "${1:-}" in
up | stop | drain)
  cmd=$1
  shift
  ;;
-h | --help | help)
  usage
  exit 0
  ;;
esac

name=${TB_NAME:-}
role=${TB_ROLE:-}
index=${TB_INDEX:-}
install_from=${TB_INSTALL_FROM:-}
sha256=${TB_SHA256:-}
prefix=${TB_PREFIX:-/opt/terrace}
etc=${TB_ETC_DIR:-/etc/terrace}
data=${TB_DATA_DIR:-}
listen=${TB_LISTEN:-0.0.0.0:443}
external_url=${TB_EXTERNAL_URL:-}
join_url=${TB_JOIN_URL:-}
join_token=${TB_JOIN_TOKEN:-}
join_token_file=${TB_JOIN_TOKEN_FILE:-}
capacity=${TB_CAPACITY:-}
database_url=${TB_DATABASE_URL:-}
database_url_file=${TB_DATABASE_URL_FILE:-}
blob_url=${TB_BLOB_URL:-}
kek_file=${TB_KEK_FILE:-}
executors=${TB_EXECUTORS:-}
vault_addr=${TB_VAULT_ADDR:-}
vault_key=${TB_VAULT_KEY:-}
vault_mount=${TB_VAULT_MOUNT:-}
vault_token_file=${TB_VAULT_TOKEN_FILE:-}
vault_role_id=${TB_VAULT_ROLE_ID:-}
vault_secret_id_file=${TB_VAULT_SECRET_ID_FILE:-}
vault_ca_file=${TB_VAULT_CA_FILE:-}
vault_namespace=${TB_VAULT_NAMESPACE:-}
tls_cert=${TB_TLS_CERT:-}
tls_key=${TB_TLS_KEY:-}
ca_file=${TB_CA_FILE:-}
supervisor=${TB_SUPERVISOR:-auto}
ready_timeout=${TB_READY_TIMEOUT:-300}
timeout=${TB_TIMEOUT:-}
extra=()
# TB_SET: extra settings, one KEY=VALUE a line
if [ -n "${TB_SET:-}" ]; then
  while IFS= read -r l; do [ -n "$l" ] && extra+=("$l"); done <<<"$TB_SET"
fi

while [ $# -gt 0 ]; do
  opt=$1
  [ $# -ge 2 ] || die "$opt needs a value (see --help)"
  val=$2
  shift 2
  case "$opt" in
  --name) name=$val ;;
  --role) role=$val ;;
  --index) index=$val ;;
  --install-from) install_from=$val ;;
  --sha256) sha256=$val ;;
  --prefix) prefix=$val ;;
  --etc-dir) etc=$val ;;
  --data-dir) data=$val ;;
  --listen) listen=$val ;;
  --external-url) external_url=$val ;;
  --join-url) join_url=$val ;;
  --join-token) join_token=$val ;;
  --join-token-file) join_token_file=$val ;;
  --capacity) capacity=$val ;;
  --database-url) database_url=$val ;;
  --database-url-file) database_url_file=$val ;;
  --blob-url) blob_url=$val ;;
  --kek-file) kek_file=$val ;;
  --executors) executors=$val ;;
  --vault-addr) vault_addr=$val ;;
  --vault-key) vault_key=$val ;;
  --vault-mount) vault_mount=$val ;;
  --vault-token-file) vault_token_file=$val ;;
  --vault-role-id) vault_role_id=$val ;;
  --vault-secret-id-file) vault_secret_id_file=$val ;;
  --vault-ca-file) vault_ca_file=$val ;;
  --vault-namespace) vault_namespace=$val ;;
  --tls-cert) tls_cert=$val ;;
  --tls-key) tls_key=$val ;;
  --ca-file) ca_file=$val ;;
  --set) extra+=("$val") ;;
  --supervisor) supervisor=$val ;;
  --ready-timeout) ready_timeout=$val ;;
  --timeout) timeout=$val ;;
  *) die "unknown option $opt (see --help)" ;;
  esac
done

if [ -z "$name" ]; then
  case "$role" in
  primary) name=primary-${index:-1} ;;
  secondary) name=secondary ;;
  demo) name=demo ;;
  *) die "--name or --role is needed" ;;
  esac
fi
case "$name" in
*[!A-Za-z0-9_.-]* | "" | .*) die "bad node name '$name': letters, digits, . _ -" ;;
esac
[ -n "$data" ] || data=/var/lib/terrace/$name
conf=$etc/$name.conf
envf=$etc/$name.env
unit=terraced@$name.service

if [ "$supervisor" = auto ]; then
  if [ "$(cat /proc/1/comm 2>/dev/null)" = systemd ]; then
    supervisor=systemd
  else
    supervisor=process
  fi
fi
case "$supervisor" in
systemd | process) ;;
*) die "--supervisor must be auto, systemd or process" ;;
esac
# stop/drain find the supervisor up used in the env file
if [ "$cmd" != up ] && [ -r "$envf" ]; then
  s=$(sed -n 's/^# supervisor=//p' "$envf")
  [ -n "$s" ] && supervisor=$s
  d=$(sed -n 's/^# data-dir=//p' "$envf")
  [ -n "$d" ] && data=$d
fi
pidfile=$data/terraced.pid
logfile=$data/terraced.log

# ---- process supervision ----

# The pid of this node's terraced if it runs (its command line names
# the node's config file, so a recycled pid is never taken for it).
node_pid() {
  local pid
  [ -r "$pidfile" ] || return 1
  pid=$(cat "$pidfile")
  case "$pid" in '' | *[!0-9]*) return 1 ;; esac
  [ -r "/proc/$pid/environ" ] || return 1
  [ "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" != Z ] || return 1
  { tr '\0' '\n' <"/proc/$pid/environ"; } 2>/dev/null |
    grep -qxF "TERRACE_CONFIG=$conf" || return 1
  echo "$pid"
}

# Whether process $1 still exists and is not a zombie.
pid_alive() {
  local st
  st=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 1
  [ -n "$st" ] && [ "$st" != Z ]
}

log_tail() {
  if [ "$supervisor" = systemd ]; then
    journalctl -u "$unit" -n 40 --no-pager >&2 || true
  elif [ -r "$logfile" ]; then
    say "last lines of $logfile:"
    tail -n 40 "$logfile" >&2
  fi
}

# SIGTERM, then wait; $1: seconds before SIGKILL, empty for no bound
stop_node() {
  local bound=$1 pid waited=0
  if [ "$supervisor" = systemd ]; then
    systemctl disable "$unit" >/dev/null 2>&1 || true
    systemctl stop "$unit" || true
    return 0
  fi
  pid=$(node_pid) || {
    say "$name is not running"
    rm -f "$pidfile"
    return 0
  }
  say "stopping $name (pid $pid)"
  kill -TERM "$pid" 2>/dev/null || true
  # wait for that process itself: while it exits its environment reads
  # empty, so node_pid would call it gone before it has let go
  while pid_alive "$pid"; do
    if [ -n "$bound" ] && [ "$waited" -ge "$((bound * 10))" ]; then
      say "$name still running after ${bound}s; killing it"
      kill -KILL "$pid" 2>/dev/null || true
      sleep 0.5
      break
    fi
    sleep 0.1
    waited=$((waited + 1))
  done
  rm -f "$pidfile"
  say "$name stopped"
}

case "$cmd" in
stop)
  stop_node "${timeout:-60}"
  exit 0
  ;;
drain)
  stop_node "$timeout"
  exit 0
  ;;
esac

# ---- up: check the settings ----
case "$role" in
demo | primary | secondary) ;;
*) die "--role must be demo, primary or secondary" ;;
esac
if [ -n "$join_token_file" ]; then
  [ -r "$join_token_file" ] || die "cannot read $join_token_file"
  join_token=$(head -n 1 "$join_token_file")
fi
if [ -n "$database_url_file" ]; then
  [ -r "$database_url_file" ] || die "cannot read $database_url_file"
  database_url=$(head -n 1 "$database_url_file")
fi
if [ "$role" = secondary ]; then
  [ -n "$join_url" ] && [ -n "$join_token" ] ||
    die "a secondary needs --join-url and --join-token"
  [ -z "$database_url$blob_url$kek_file$vault_addr" ] ||
    die "a secondary takes no database, blob, key or Vault settings"
fi
if [ -n "$vault_addr" ]; then
  [ -n "$vault_key" ] || die "--vault-addr needs --vault-key"
  [ -z "$vault_role_id" ] || [ -n "$vault_secret_id_file" ] ||
    die "--vault-role-id needs --vault-secret-id-file"
fi
if [ "$role" = primary ]; then
  [ -n "$database_url" ] || die "a primary needs --database-url"
  [ -n "$index" ] || die "a primary needs --index"
fi
for f in "$tls_cert" "$tls_key" "$ca_file" "$kek_file" "$vault_token_file" \
  "$vault_secret_id_file" "$vault_ca_file"; do
  [ -z "$f" ] || [ -r "$f" ] || die "cannot read $f"
done
case "$listen" in
*:[0-9]*) ;;
*) die "--listen must be HOST:PORT" ;;
esac

# ---- install ----
umask 022
if [ -n "$install_from" ]; then
  [ -n "$sha256" ] || die "--install-from needs --sha256"
  if [ "$(cat "$prefix/.terrace-sha256" 2>/dev/null)" != "$sha256" ]; then
    tmp=$(mktemp -d)
    trap 'rm -rf "$tmp"' EXIT
    case "$install_from" in
    http://* | https://* | file://*)
      curl -fsSL --retry 5 -o "$tmp/terrace.tar.gz" "$install_from" ||
        die "cannot download $install_from"
      ;;
    *) cp "$install_from" "$tmp/terrace.tar.gz" ||
      die "cannot read $install_from" ;;
    esac
    got=$(sha256sum "$tmp/terrace.tar.gz" | awk '{print $1}')
    [ "$got" = "$sha256" ] ||
      die "checksum mismatch for $install_from: got $got, want $sha256"
    mkdir -p "$prefix"
    tar -xzf "$tmp/terrace.tar.gz" -C "$prefix" --no-same-owner
    echo "$sha256" >"$prefix/.terrace-sha256"
    say "installed $install_from into $prefix"
  fi
fi
terraced=$prefix/bin/terraced
[ -x "$terraced" ] || die "$terraced not found: pass --install-from"

# ---- config ----
mkdir -p "$etc" "$data"
chmod 0700 "$data"
umask 077
url_host=${listen%:*}
case "$url_host" in 0.0.0.0 | "" | "[::]") url_host=127.0.0.1 ;; esac
scheme=https
for kv in "${extra[@]+"${extra[@]}"}"; do
  case "$kv" in tls=off | "tls = off") scheme=http ;; esac
done
{
  echo "# $conf - written by bootstrap.sh for node $name; rerun it to change"
  echo "role = $role"
  echo "data-dir = $data"
  echo "listen = $listen"
  [ -z "$external_url" ] || echo "external-url = $external_url"
  [ -z "$tls_cert" ] || echo "tls-cert = $tls_cert"
  [ -z "$tls_key" ] || echo "tls-key = $tls_key"
  case "$role" in
  primary)
    echo "# primary $index of the cluster"
    echo "database-url = \"$database_url\""
    [ -z "$blob_url" ] || echo "blob-url = $blob_url"
    [ -z "$kek_file" ] || echo "kek-file = $kek_file"
    echo "executors = ${executors:-0}"
    # every connection comes through the load balancer's address
    echo "conn-per-ip = 0"
    ;;
  secondary)
    echo "join-url = $join_url"
    echo "join-token = $join_token"
    [ -z "$capacity" ] || echo "capacity = $capacity"
    ;;
  demo)
    [ -z "$executors" ] || echo "executors = $executors"
    ;;
  esac
  [ -z "$ca_file" ] || [ "$role" != secondary ] || echo "ca-file = $ca_file"
  # the key-encryption key in Vault (primary, demo)
  if [ -n "$vault_addr" ]; then
    echo "vault-addr = $vault_addr"
    echo "vault-key = $vault_key"
    [ -z "$vault_mount" ] || echo "vault-mount = $vault_mount"
    [ -z "$vault_token_file" ] || echo "vault-token-file = $vault_token_file"
    [ -z "$vault_role_id" ] || echo "vault-role-id = $vault_role_id"
    [ -z "$vault_secret_id_file" ] ||
      echo "vault-secret-id-file = $vault_secret_id_file"
    [ -z "$vault_ca_file" ] || echo "vault-ca-file = $vault_ca_file"
    [ -z "$vault_namespace" ] || echo "vault-namespace = $vault_namespace"
  fi
  for kv in "${extra[@]+"${extra[@]}"}"; do
    echo "${kv%%=*} = ${kv#*=}"
  done
} >"$conf.tmp"
mv "$conf.tmp" "$conf"
# a demo or primary running plans itself gives them DATA/tls/ca.pem
# to trust for the API URL (the load balancer's certificate)
if [ -n "$ca_file" ] && [ "$role" != secondary ]; then
  mkdir -p "$data/tls"
  cp "$ca_file" "$data/tls/ca.pem.tmp"
  chmod 0644 "$data/tls/ca.pem.tmp"
  mv "$data/tls/ca.pem.tmp" "$data/tls/ca.pem"
fi
{
  echo "# written by bootstrap.sh"
  echo "# supervisor=$supervisor"
  echo "# data-dir=$data"
  echo "TERRACE_CONFIG=$conf"
} >"$envf.tmp"
mv "$envf.tmp" "$envf"

# ---- start ----
if [ "$supervisor" = systemd ]; then
  src=$prefix/share/terrace/systemd/terraced@.service
  [ -r "$src" ] || die "$src not found"
  sed "s|/opt/terrace/bin/terraced|$terraced|; s|/etc/terrace/|$etc/|g" \
    "$src" >/etc/systemd/system/terraced@.service
  chmod 0644 /etc/systemd/system/terraced@.service
  systemctl daemon-reload
  systemctl enable "$unit" >/dev/null 2>&1
  systemctl restart "$unit"
else
  if pid=$(node_pid); then
    say "$name runs already (pid $pid); restarting it"
    stop_node 60
  fi
  # a new session, no terminal, output to the log: it outlives us
  TERRACE_CONFIG=$conf setsid "$terraced" </dev/null >>"$logfile" 2>&1 &
  child=$!
  echo "$child" >"$pidfile"
fi

# Whether our child runs: until it has exec'd terraced, its environment
# does not show TERRACE_CONFIG yet, so node_pid cannot tell
child_runs() {
  [ -r "/proc/$child/stat" ] &&
    [ "$(awk '{print $3}' "/proc/$child/stat" 2>/dev/null)" != Z ]
}

# ---- wait for readiness ----
probe=$scheme://$url_host:${listen##*:}/_health_check?ready=1
# the node's certificate names its address: verify it when the probe
# uses that address, not when it listens on every address
curl_tls=(-k)
[ -z "$ca_file" ] || [ "$url_host" != "${listen%:*}" ] ||
  curl_tls=(--cacert "$ca_file")
say "waiting for $name at $probe"
deadline=$((SECONDS + ready_timeout))
while :; do
  if curl -fsS -m 3 "${curl_tls[@]}" -o /dev/null "$probe" 2>/dev/null; then
    say "$name is ready"
    exit 0
  fi
  if [ "$supervisor" = process ] && ! child_runs; then
    say "$name exited before it was ready"
    log_tail
    exit 1
  fi
  if [ "$supervisor" = systemd ] && systemctl is-failed -q "$unit"; then
    say "$unit failed"
    log_tail
    exit 1
  fi
  if [ "$SECONDS" -ge "$deadline" ]; then
    say "$name not ready after ${ready_timeout}s:" \
      "$(curl -sS -m 3 "${curl_tls[@]}" "$probe" 2>&1 || true)"
    log_tail
    exit 1
  fi
  sleep 0.5
done
