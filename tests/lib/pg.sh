#!/usr/bin/env bash
# pg.sh - start or stop a throwaway PostgreSQL server for tests.
#   pg.sh start DIR   -> initdb into DIR, listen only on a Unix socket in
#                        DIR, print a libpq conninfo on stdout
#   pg.sh stop DIR
#   pg.sh halt DIR       -> stop the server (fast: sessions are cut), keep DIR
#   pg.sh resume DIR     -> start a halted server again on the same socket
# Runs as the postgres user when invoked as root (initdb refuses root).
set -euo pipefail
cmd=${1:?start|stop}; dir=${2:?directory}
bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1)
[ -x "$bindir/initdb" ] || { echo "pg.sh: PostgreSQL server not installed" >&2; exit 77; }
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
serve() {
  as_pg "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w \
    -o "-c listen_addresses='' -c unix_socket_directories='$dir' -c fsync=off -c max_connections=200" start >/dev/null
}
case $cmd in
start)
  mkdir -p "$dir"; chmod 755 "$dir"
  [ "$(id -u)" = 0 ] && chown postgres "$dir"
  as_pg "$bindir/initdb" -D "$dir/data" -U terrace -A trust >"$dir/initdb.log" 2>&1
  serve
  as_pg "$bindir/createdb" -h "$dir" -U terrace terrace
  echo "host=$dir user=terrace dbname=terrace"
  ;;
halt)
  as_pg "$bindir/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null
  ;;
resume)
  serve
  ;;
stop)
  as_pg "$bindir/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null 2>&1 || true
  rm -rf "$dir"
  ;;
esac
