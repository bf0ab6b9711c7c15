# node.sh - deploy/aws's part of every node's user data, between the
# settings (TB_* for the bootstrap, TA_* here) and deploy/node's
# bootstrap.sh: reads the node's secrets from Secrets Manager into
# /etc/terrace (mode 0600) and points the bootstrap at the files,
# installs bubblewrap (the run sandbox), and on a secondary starts the
# drain watcher of scale-in.  Needs the AWS CLI (Amazon Linux has it).
set -euo pipefail
umask 077
mkdir -p /etc/terrace
command -v bwrap >/dev/null 2>&1 || dnf install -y bubblewrap ||
  apt-get install -y bubblewrap || echo "node.sh: no bubblewrap" >&2

# secret ARN: its value; the instance role may take a moment to work
secret() {
  local i
  for i in $(seq 1 60); do
    aws secretsmanager get-secret-value --region "$TA_REGION" \
      --secret-id "$1" --query SecretString --output text && return 0
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

secret "$TA_JOIN_SECRET" >/etc/terrace/join-token
if [ "$TB_ROLE" = secondary ]; then
  TB_JOIN_TOKEN_FILE=/etc/terrace/join-token
  # scale-in: wait for Terminating:Wait, drain, let termination go on
  cat >/etc/terrace/drain-watch.env <<EOT
TA_REGION=$TA_REGION
TA_GROUP=$TA_GROUP
TA_HOOK=$TA_HOOK
EOT
  cat >/usr/local/sbin/terrace-drain-watch <<'EOT'
#!/bin/bash
imds() {
  local t
  t=$(curl -fsS -m 5 -X PUT http://169.254.169.254/latest/api/token \
    -H 'X-aws-ec2-metadata-token-ttl-seconds: 60') &&
    curl -fsS -m 5 -H "X-aws-ec2-metadata-token: $t" \
      "http://169.254.169.254/latest/meta-data/$1"
}
until [ "$(imds autoscaling/target-lifecycle-state 2>/dev/null)" = Terminated ]; do
  sleep 5
done
/opt/terrace/share/terrace/node/bootstrap.sh drain --name secondary
aws autoscaling complete-lifecycle-action --region "$TA_REGION" \
  --auto-scaling-group-name "$TA_GROUP" --lifecycle-hook-name "$TA_HOOK" \
  --instance-id "$(imds instance-id)" --lifecycle-action-result CONTINUE
EOT
  chmod 0755 /usr/local/sbin/terrace-drain-watch
  cat >/etc/systemd/system/terrace-drain-watch.service <<'EOT'
[Unit]
Description=Drain the Terrace secondary when the auto scaling group removes it
After=network-online.target
[Service]
EnvironmentFile=/etc/terrace/drain-watch.env
ExecStart=/usr/local/sbin/terrace-drain-watch
Restart=on-failure
[Install]
WantedBy=multi-user.target
EOT
  systemctl daemon-reload
  systemctl enable --now terrace-drain-watch.service
else
  secret "$TA_ADMIN_SECRET" >/etc/terrace/admin-token
  secret "$TA_PRIMARY_SECRET" >/etc/terrace/primary.json
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
  # terraced's environment: S3 keys (else the instance role)
  : >/etc/terrace/cloud.env
  if [ -n "$TA_S3_ACCESS_KEY" ]; then
    printf 'AWS_ACCESS_KEY_ID=%s\nAWS_SECRET_ACCESS_KEY=%s\n' \
      "$TA_S3_ACCESS_KEY" "$(field aws_secret_access_key)" \
      >/etc/terrace/cloud.env
  fi
  mkdir -p /etc/systemd/system/terraced@.service.d
  printf '[Service]\nEnvironmentFile=-/etc/terrace/cloud.env\n' \
    >/etc/systemd/system/terraced@.service.d/cloud.conf
  chmod 0644 /etc/systemd/system/terraced@.service.d/cloud.conf
  if [ -n "$TA_VAULT_ADDR" ]; then
    if [ -n "$(field vault_token)" ]; then
      field vault_token >/etc/terrace/vault-token
      TB_VAULT_TOKEN_FILE=/etc/terrace/vault-token
    else
      field vault_secret_id >/etc/terrace/vault-secret-id
      TB_VAULT_ROLE_ID=$TA_VAULT_ROLE_ID
      TB_VAULT_SECRET_ID_FILE=/etc/terrace/vault-secret-id
    fi
  fi
  [ -z "$TA_EXTRA_SETTINGS" ] || setting "$TA_EXTRA_SETTINGS"
  rm -f /etc/terrace/primary.json
fi
umask 022
