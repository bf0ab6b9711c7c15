#!/usr/bin/env bash
# tls_ca.sh - a throwaway CA and a server certificate it signed, for the
# test servers that can speak HTTPS (tests/lib/s3.sh, gcs.sh, azurite.sh
# when TERRACE_TEST_TLS_DIR names the directory) and the clients that
# must trust them (ca-file= on a blob URL, curl --cacert).
#
#   tls_ca.sh DIR   -> DIR/ca.pem, DIR/server.pem, DIR/server-key.pem
#                      (kept if already there); the server certificate
#                      names 127.0.0.1, localhost and terrace.localhost (S3
#                      virtual-hosted bucket terrace), valid 2 days,
#                      P-256 keys
#
# SPDX-License-Identifier: MPL-2.0
set -euo pipefail
dir=${1:?directory}
mkdir -p "$dir"
[ -s "$dir/ca.pem" ] && [ -s "$dir/server.pem" ] &&
  [ -s "$dir/server-key.pem" ] && exit 0
key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }
key "$dir/ca-key.pem"
openssl req -x509 -new -key "$dir/ca-key.pem" -days 2 -subj "/CN=terrace test CA" \
  -addext "basicConstraints=critical,CA:TRUE" \
  -addext "keyUsage=critical,keyCertSign,cRLSign" \
  -out "$dir/ca.pem" 2>/dev/null
key "$dir/server-key.pem"
openssl req -new -key "$dir/server-key.pem" -subj "/CN=127.0.0.1" \
  -out "$dir/server.csr" 2>/dev/null
printf '%s\n' "subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:terrace.localhost" \
  "basicConstraints=CA:FALSE" "keyUsage=critical,digitalSignature" \
  "extendedKeyUsage=serverAuth" >"$dir/server.ext"
openssl x509 -req -in "$dir/server.csr" -CA "$dir/ca.pem" \
  -CAkey "$dir/ca-key.pem" -CAcreateserial -days 2 \
  -extfile "$dir/server.ext" -out "$dir/server.pem" 2>/dev/null
rm -f "$dir/server.csr" "$dir/server.ext" "$dir/ca.srl"
chmod 600 "$dir/ca-key.pem" "$dir/server-key.pem"
