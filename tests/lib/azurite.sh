#!/usr/bin/env bash
# azurite.sh - install, start or stop Azurite's blob service for tests.
#   azurite.sh install          -> npm install Azurite into the cache
#                                  ($TERRACE_CACHE, default ~/.cache/terrace)
#   azurite.sh start DIR        -> serve a fresh store kept in DIR on
#                                  127.0.0.1 (a free port); print the
#                                  account's endpoint URL on stdout
#   azurite.sh stop DIR         -> stop that server and remove DIR
#   azurite.sh container ENDPOINT NAME
#                               -> create container NAME (Shared Key)
#   azurite.sh sas ENDPOINT NAME
#                               -> print a container SAS token (1 hour)
# TERRACE_TEST_TLS_DIR=D (made by tests/lib/tls_ca.sh): Azurite serves
# HTTPS with D/server.pem, the endpoint printed is https://, the SAS is
# for https, and container requests trust D/ca.pem.
# Exit 77 when Azurite cannot be installed (no npm, no registry).  The
# account devstoreaccount1 and its key are Azurite's published dev
# credentials, not secrets.
set -euo pipefail
AZURITE_VERSION=3.37.0
CACHE=${TERRACE_CACHE:-$HOME/.cache/terrace}
PREFIX="$CACHE/azurite-$AZURITE_VERSION"
BIN="$PREFIX/node_modules/.bin/azurite-blob"
AZ_ACCOUNT=devstoreaccount1
AZ_KEY='Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=='
cmd=${1:?install|start|stop|container|sas}

install() {
  if [ -x "$BIN" ]; then return 0; fi
  command -v npm >/dev/null 2>&1 ||
    { echo "azurite.sh: npm not installed" >&2; exit 77; }
  # two suites may install at once on a fresh machine: one installs
  # (under a lock, into a temporary folder renamed into place), the
  # other waits for it and finds the result
  mkdir -p "$CACHE"
  exec 9>"$PREFIX.lock"
  flock 9
  if [ -x "$BIN" ]; then exec 9>&-; return 0; fi
  echo "azurite.sh: installing azurite $AZURITE_VERSION into $PREFIX" >&2
  rm -rf "$PREFIX.tmp"
  mkdir -p "$PREFIX.tmp"
  if ! npm install --prefix "$PREFIX.tmp" --no-audit --no-fund \
       --loglevel=error "azurite@$AZURITE_VERSION" >"$CACHE/azurite-npm.log" 2>&1
  then
    echo "azurite.sh: npm install failed (see $CACHE/azurite-npm.log)" >&2
    exit 77
  fi
  rm -rf "$PREFIX"
  mv "$PREFIX.tmp" "$PREFIX"
  exec 9>&-
}

# Signs and sends one management request with the dev account's key.
az_py() {
  python3 - "$@" <<'PY'
import base64, hashlib, hmac, os, ssl, sys, time, urllib.parse, urllib.request
op, endpoint, name = sys.argv[1:4]
tls = os.environ.get("TERRACE_TEST_TLS_DIR")
ctx = ssl.create_default_context(cafile=tls + "/ca.pem") if tls else None
account, key = sys.argv[4], base64.b64decode(sys.argv[5])
def sign(s):
    return base64.b64encode(hmac.new(key, s.encode(), hashlib.sha256)
                            .digest()).decode()
if op == "container":
    date = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime())
    ver = "2021-08-06"
    path = urllib.parse.urlparse(endpoint).path.rstrip("/") + "/" + name
    ctype = "application/octet-stream"
    sts = "\n".join(["PUT", "", "", "", "", ctype, "", "", "", "", "", "",
                     "x-ms-date:" + date, "x-ms-version:" + ver,
                     "/" + account + path, "restype:container"])
    req = urllib.request.Request(
        endpoint.rstrip("/") + "/" + name + "?restype=container", method="PUT",
        data=b"", headers={"x-ms-date": date, "x-ms-version": ver,
                           "Content-Type": ctype,
                           "Authorization": "SharedKey %s:%s" %
                           (account, sign(sts))})
    try:
        urllib.request.urlopen(req, timeout=10, context=ctx)
    except urllib.error.HTTPError as e:
        if e.code != 409:   # already there
            sys.exit("azurite.sh: create container: HTTP %d" % e.code)
else:
    ver = "2021-08-06"
    st = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 300))
    se = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 3600))
    perm = "racwdl"
    canon = "/blob/%s/%s" % (account, name)
    spr = "https" if endpoint.startswith("https:") else "http"
    sts = "\n".join([perm, st, se, canon, "", "", spr, ver, "c", "",
                     "", "", "", "", "", ""])
    q = {"sv": ver, "sr": "c", "sp": perm, "st": st, "se": se,
         "spr": spr, "sig": sign(sts)}
    print(urllib.parse.urlencode(q))
PY
}

case $cmd in
install)
  install
  ;;
start)
  dir=${2:?directory}
  install
  mkdir -p "$dir/data"
  # the log exists before the server starts: the background job opens its
  # redirection on its own time, and sed on a missing file fails the loop
  # below (pipefail), which once ended a test run
  : >"$dir/server.log"
  # setsid: the server gets its own process group, so stop can end
  # node and anything it spawned without touching anyone else.
  tls=()
  [ -n "${TERRACE_TEST_TLS_DIR:-}" ] &&
    tls=(--cert "$TERRACE_TEST_TLS_DIR/server.pem"
         --key "$TERRACE_TEST_TLS_DIR/server-key.pem")
  setsid "$BIN" --blobHost 127.0.0.1 --blobPort 0 --location "$dir/data" \
    --skipApiVersionCheck --disableProductStyleUrl "${tls[@]}" \
    >"$dir/server.log" 2>&1 </dev/null &
  echo $! >"$dir/pid"
  port=
  for _ in $(seq 1 300); do
    port=$(sed -n 's/.*successfully listens on https\{0,1\}:\/\/127\.0\.0\.1:\([0-9]*\).*/\1/p' \
           "$dir/server.log" | head -n1)
    [ -n "$port" ] && break
    kill -0 "$(cat "$dir/pid")" 2>/dev/null ||
      { echo "azurite.sh: server exited:" >&2; cat "$dir/server.log" >&2; exit 1; }
    sleep 0.1
  done
  [ -n "$port" ] || { echo "azurite.sh: server did not start" >&2; exit 1; }
  echo "http${TERRACE_TEST_TLS_DIR:+s}://127.0.0.1:$port/$AZ_ACCOUNT"
  ;;
stop)
  dir=${2:?directory}
  if [ -f "$dir/pid" ]; then
    pid=$(cat "$dir/pid")
    kill -- "-$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 -- "-$pid" 2>/dev/null || true
  fi
  rm -rf "$dir"
  ;;
container|sas)
  az_py "$cmd" "${2:?endpoint}" "${3:?name}" "$AZ_ACCOUNT" "$AZ_KEY"
  ;;
*)
  echo "usage: azurite.sh install|start DIR|stop DIR|container EP NAME|sas EP NAME" >&2
  exit 2 ;;
esac
