# node.sh - deploy/azure's part of every node's custom data, between
# the settings (TB_* for the bootstrap, TZ_* here) and deploy/node's
# bootstrap.sh: reads the node's secrets and (primaries, demo) the TLS
# certificate from Key Vault with the VM's user-assigned identity into
# /etc/terrace (mode 0600), points the bootstrap at the files,
# installs bubblewrap (the run sandbox), and on a secondary starts the
# drain watcher of scale-in.
set -euo pipefail
umask 077
mkdir -p /etc/terrace
command -v bwrap >/dev/null 2>&1 || apt-get install -y bubblewrap ||
  { apt-get update && apt-get install -y bubblewrap; } ||
  echo "node.sh: no bubblewrap" >&2

# secret NAME: its value; the identity's grant may take a moment
secret() {
  local i tok
  for i in $(seq 1 60); do
    tok=$(curl -fsS -H Metadata:true \
      "http://169.254.169.254/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https%3A%2F%2Fvault.azure.net&client_id=$TZ_CLIENT_ID" |
      python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])') &&
      curl -fsS -H "Authorization: Bearer $tok" \
        "${TZ_VAULT_URI%/}/secrets/$1?api-version=7.4" |
      python3 -c 'import json,sys; sys.stdout.write(json.load(sys.stdin)["value"])' &&
      return 0
    sleep 5
  done
  return 1
}
# field NAME: a value of the primaries' secret (JSON)
field() {
  python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]], end="")' \
    /etc/terrace/primary.json "$1"
}
setting() { TB_SET=$(printf '%s\n%s' "$TB_SET" "$1"); }

# The certificate's secret is PEM or a password-less PFX (base64):
# certificates (leaf first) to $1, the key to $2.
certificate() {
  local v
  v=$(secret "$TZ_CERT_SECRET")
  case "$v" in
  -----BEGIN*) printf '%s\n' "$v" >/etc/terrace/tls/all.pem ;;
  *)
    printf '%s' "$v" | base64 -d >/etc/terrace/tls/all.pfx
    openssl pkcs12 -in /etc/terrace/tls/all.pfx -nodes -passin pass: \
      -out /etc/terrace/tls/all.pem 2>/dev/null ||
      openssl pkcs12 -legacy -in /etc/terrace/tls/all.pfx -nodes \
        -passin pass: -out /etc/terrace/tls/all.pem
    rm -f /etc/terrace/tls/all.pfx
    ;;
  esac
  awk '/-----BEGIN CERTIFICATE-----/{c=1} c{print} /-----END CERTIFICATE-----/{c=0}' \
    /etc/terrace/tls/all.pem >"$1"
  awk '/-----BEGIN .*PRIVATE KEY-----/{k=1} k{print} /-----END .*PRIVATE KEY-----/{k=0}' \
    /etc/terrace/tls/all.pem >"$2"
  rm -f /etc/terrace/tls/all.pem
}

secret "$TZ_JOIN_SECRET" >/etc/terrace/join-token
if [ "$TB_ROLE" = secondary ]; then
  TB_JOIN_TOKEN_FILE=/etc/terrace/join-token
  # scale-in: wait for this VM's Terminate event, drain, approve it
  cat >/usr/local/sbin/terrace-drain-watch <<'EOT'
#!/bin/bash
md=http://169.254.169.254/metadata
me=$(curl -fsS -H Metadata:true \
  "$md/instance/compute/name?api-version=2021-02-01&format=text")
ev=
while [ -z "$ev" ]; do
  sleep 5
  ev=$(curl -fsS -H Metadata:true "$md/scheduledevents?api-version=2020-07-01" |
    python3 -c '
import json, sys
for e in json.load(sys.stdin).get("Events", []):
    if e.get("EventType") == "Terminate" and sys.argv[1] in e.get("Resources", []):
        print(e["EventId"])
        break' "$me") || ev=
done
/opt/terrace/share/terrace/node/bootstrap.sh drain --name secondary
curl -fsS -H Metadata:true -X POST \
  -d "{\"StartRequests\": [{\"EventId\": \"$ev\"}]}" \
  "$md/scheduledevents?api-version=2020-07-01"
EOT
  chmod 0755 /usr/local/sbin/terrace-drain-watch
  cat >/etc/systemd/system/terrace-drain-watch.service <<'EOT'
[Unit]
Description=Drain the Terrace secondary when the scale set removes it
After=network-online.target
[Service]
ExecStart=/usr/local/sbin/terrace-drain-watch
Restart=on-failure
[Install]
WantedBy=multi-user.target
EOT
  systemctl daemon-reload
  systemctl enable --now terrace-drain-watch.service
else
  secret "$TZ_ADMIN_SECRET" >/etc/terrace/admin-token
  secret "$TZ_PRIMARY_SECRET" >/etc/terrace/primary.json
  setting "admin-token-file=/etc/terrace/admin-token"
  # the gateway checks the node's certificate against hostname
  mkdir -p /etc/terrace/tls
  certificate /etc/terrace/tls/server.pem /etc/terrace/tls/server-key.pem
  TB_TLS_CERT=/etc/terrace/tls/server.pem
  TB_TLS_KEY=/etc/terrace/tls/server-key.pem
  if [ "$TB_ROLE" = primary ]; then
    setting "join-token-file=/etc/terrace/join-token"
    field database_url >/etc/terrace/database-url
    TB_DATABASE_URL_FILE=/etc/terrace/database-url
    if [ -n "$(field kek)" ]; then
      field kek >/etc/terrace/kek
      TB_KEK_FILE=/etc/terrace/kek
    fi
  fi
  # terraced's environment: the storage account's key
  : >/etc/terrace/cloud.env
  if [ -n "$TZ_STORAGE_ACCOUNT" ]; then
    printf 'AZURE_STORAGE_KEY=%s\n' "$(field storage_account_key)" \
      >/etc/terrace/cloud.env
  fi
  mkdir -p /etc/systemd/system/terraced@.service.d
  printf '[Service]\nEnvironmentFile=-/etc/terrace/cloud.env\n' \
    >/etc/systemd/system/terraced@.service.d/cloud.conf
  chmod 0644 /etc/systemd/system/terraced@.service.d/cloud.conf
  if [ -n "$TZ_VAULT_ADDR" ]; then
    if [ -n "$(field vault_token)" ]; then
      field vault_token >/etc/terrace/vault-token
      TB_VAULT_TOKEN_FILE=/etc/terrace/vault-token
    else
      field vault_secret_id >/etc/terrace/vault-secret-id
      TB_VAULT_ROLE_ID=$TZ_VAULT_ROLE_ID
      TB_VAULT_SECRET_ID_FILE=/etc/terrace/vault-secret-id
    fi
  fi
  [ -z "$TZ_EXTRA_SETTINGS" ] || setting "$TZ_EXTRA_SETTINGS"
  rm -f /etc/terrace/primary.json
fi
umask 022
