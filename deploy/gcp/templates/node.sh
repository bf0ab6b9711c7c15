# node.sh - deploy/gcp's part of every node's startup script, between
# the settings (TB_* for the bootstrap, TG_* here) and deploy/node's
# bootstrap.sh: reads the node's secrets from Secret Manager (as the
# instance's service account, through the metadata server's token)
# into /etc/terrace (mode 0600), points the bootstrap at the files and
# installs bubblewrap (the run sandbox).  Scale-in is the instance
# template's shutdown script.
set -euo pipefail
umask 077
mkdir -p /etc/terrace
command -v bwrap >/dev/null 2>&1 || apt-get install -y bubblewrap ||
  { apt-get update && apt-get install -y bubblewrap; } ||
  echo "node.sh: no bubblewrap" >&2

# secret NAME: its latest version; the account's grant may take a moment
secret() {
  local i tok
  for i in $(seq 1 60); do
    tok=$(curl -fsS -H 'Metadata-Flavor: Google' \
      http://metadata.google.internal/computeMetadata/v1/instance/service-accounts/default/token |
      python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])') &&
      curl -fsS -H "Authorization: Bearer $tok" \
        "https://secretmanager.googleapis.com/v1/projects/$TG_PROJECT/secrets/$1/versions/latest:access" |
      python3 -c 'import base64,json,sys; sys.stdout.write(base64.b64decode(json.load(sys.stdin)["payload"]["data"]).decode())' &&
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

secret "$TG_JOIN_SECRET" >/etc/terrace/join-token
if [ "$TB_ROLE" = secondary ]; then
  TB_JOIN_TOKEN_FILE=/etc/terrace/join-token
else
  secret "$TG_ADMIN_SECRET" >/etc/terrace/admin-token
  secret "$TG_PRIMARY_SECRET" >/etc/terrace/primary.json
  setting "admin-token-file=/etc/terrace/admin-token"
  if [ "$TB_ROLE" = primary ]; then
    setting "join-token-file=/etc/terrace/join-token"
    field database_url >/etc/terrace/database-url
    TB_DATABASE_URL_FILE=/etc/terrace/database-url
    if [ -n "$(field kek)" ]; then
      field kek >/etc/terrace/kek
      TB_KEK_FILE=/etc/terrace/kek
    fi
  fi
  if [ -n "$TG_VAULT_ADDR" ]; then
    if [ -n "$(field vault_token)" ]; then
      field vault_token >/etc/terrace/vault-token
      TB_VAULT_TOKEN_FILE=/etc/terrace/vault-token
    else
      field vault_secret_id >/etc/terrace/vault-secret-id
      TB_VAULT_ROLE_ID=$TG_VAULT_ROLE_ID
      TB_VAULT_SECRET_ID_FILE=/etc/terrace/vault-secret-id
    fi
  fi
  [ -z "$TG_EXTRA_SETTINGS" ] || setting "$TG_EXTRA_SETTINGS"
  rm -f /etc/terrace/primary.json
fi
umask 022
