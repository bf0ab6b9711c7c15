#!/usr/bin/env bash
# run_hclcheck.sh - the static checks of the cloud modules (deploy/aws,
# deploy/gcp, deploy/azure), which cannot be planned here (their
# providers cannot be downloaded): `tofu fmt -check`, `bash -n` of
# each cloud's user data script, then hclcheck
# (tests/deploy/hclcheck, built with hcl/v2 from the Go module proxy
# into $TERRACE_CACHE/hclcheck-<version>/) on the modules as they are,
# then on copies each broken in one way the check must catch.  Exits 77
# (skipped) without tofu or a Go toolchain.
#   TOFU_BIN  tofu binary (default: the deps script's build)
# SPDX-License-Identifier: MPL-2.0
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
src=${TERRACE_SRC_DIR:-$(cd "$here/../.." && pwd)}
cache=${TERRACE_CACHE:-$HOME/.cache/terrace}
TOFU_BIN=${TOFU_BIN:-$cache/tofu-1.10.10/tofu}
HCL_VERSION=v2.24.0 # keep in step with hclcheck/go.mod
skip() {
  echo "run_hclcheck.sh: $*; skipping" >&2
  exit 77
}
[ -x "$TOFU_BIN" ] || skip "tofu not found at $TOFU_BIN"
command -v go >/dev/null 2>&1 || skip "no Go toolchain (scripts/deps.sh test)"
grep -q "github.com/hashicorp/hcl/v2 $HCL_VERSION\$" "$here/hclcheck/go.mod" ||
  { echo "run_hclcheck.sh: HCL_VERSION differs from hclcheck/go.mod" >&2; exit 1; }

# the binary's name carries a hash of its sources: an edit rebuilds it
sum=$(cat "$here/hclcheck/main.go" "$here/hclcheck/go.mod" \
  "$here/hclcheck/go.sum" | sha256sum | cut -c1-12)
bin=$cache/hclcheck-$HCL_VERSION/hclcheck-$sum
if [ ! -x "$bin" ]; then
  mkdir -p "$(dirname "$bin")"
  (cd "$here/hclcheck" && CGO_ENABLED=0 GOFLAGS=-buildvcs=false \
    go build -trimpath -o "$bin.tmp" .)
  mv "$bin.tmp" "$bin"
fi

fails=0
for c in aws gcp azure; do
  if ! "$TOFU_BIN" fmt -check -diff -recursive "$src/deploy/$c" \
    2>/dev/null; then
    echo "FAIL: tofu fmt -check deploy/$c (run tofu fmt -recursive deploy/$c)"
    fails=$((fails + 1))
  fi
done
# each cloud's part of the user data, with the bootstrap behind it,
# is shell that parses (it is never run here)
for c in aws gcp azure; do
  if ! { printf '#!/bin/bash\n'; cat "$src/deploy/$c/templates/node.sh" \
    "$src/deploy/node/bootstrap.sh"; } | bash -n; then
    echo "FAIL: bash -n of deploy/$c's user data"
    fails=$((fails + 1))
  fi
done
if "$bin" "$src/deploy"; then
  echo "PASS: the modules as they are"
else
  echo "FAIL: the modules as they are"
  fails=$((fails + 1))
fi

# broken copies: FILE, a sed script, what hclcheck must say
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
broken() {
  local file=$1 script=$2 want=$3 out
  rm -rf "$tmp/deploy"
  cp -r "$src/deploy" "$tmp/deploy"
  sed -i "$script" "$tmp/deploy/$file"
  if cmp -s "$src/deploy/$file" "$tmp/deploy/$file"; then
    echo "FAIL: the edit of $file ($script) changed nothing"
    fails=$((fails + 1))
    return
  fi
  if out=$("$bin" "$tmp/deploy" 2>&1); then
    echo "FAIL: $file with $script passed"
    fails=$((fails + 1))
  elif ! grep -qF -- "$want" <<<"$out"; then
    echo "FAIL: $file with $script: no '$want' in:"
    echo "$out"
    fails=$((fails + 1))
  else
    echo "PASS: $file broken ($want)"
  fi
}
broken aws/primaries.tf 's/external_services ? 3 : 1/external_services ? 2 : 1/' \
  "want 3 primaries with external_services = true, got 2"
broken azure/primaries.tf 's/external_services ? 3 : 1/external_services ? 3 : 3/' \
  "want 1 demo node"
broken gcp/secondaries.tf 's/target_size  *= var.secondary_count/target_size = 2/' \
  "target_size is not var.secondary_count"
broken aws/secondaries.tf 's/max_size  *= var.secondary_count/max_size = 10/' \
  "max_size is not var.secondary_count"
broken azure/secondaries.tf 's/count  *= var.external_services ? 1 : 0/count = 1/' \
  "the demo (external_services = false) must have no group"
broken azure/network.tf 's|"/_health_check"|"/"|' "health check"
broken gcp/network.tf 's|"/_health_check"|"/health"|' "health check"
broken aws/network.tf 's/protocol    = "HTTPS"/protocol    = "HTTP"/' \
  "80 -> 443 redirect"
broken gcp/secondaries.tf '/shutdown-script/d' "scale-in drain"
broken azure/secondaries.tf 's/enabled = true/enabled = false/' \
  "scale-in drain"
broken aws/secondaries.tf 's/EC2_INSTANCE_TERMINATING/EC2_INSTANCE_LAUNCHING/' \
  "scale-in drain"
broken aws/variables.tf '/description = "Tags added to every resource."/d' \
  "variable tags has no description"
broken gcp/variables.tf '$a variable "unused" {\n  type        = string\n  description = "x"\n}' \
  "variable unused is declared but never used"
broken azure/variables.tf 's/^variable "external_services"/variable "demo_switch"/' \
  "variable external_services (the demo switch) is missing"
broken azure/user_data.tf 's|/../node/bootstrap.sh|/templates/node.sh|' \
  "does not come from ../node/bootstrap.sh"
broken aws/primaries.tf 's/primary_user_data\[count.index\]/primary_user_data[0]/' \
  "does not tell a primary its index"
broken gcp/secondaries.tf 's/local.secondary_user_data/local.primary_user_data[count.index]/' \
  "secondaries get identical user data"
broken gcp/outputs.tf 's/^output "join_url"/output "node_url"/' \
  "output join_url is missing"
broken aws/secrets.tf 's/aws_secretsmanager_secret"/aws_ssm_parameter"/' \
  "through the cloud's secret store"
broken aws/network.tf 's/aws_security_group.node.id\]/aws_security_group.nodes.id]/' \
  "aws_security_group.nodes is not declared"
broken gcp/user_data.tf 's/local.node_sh,/local.nodesh,/' \
  "local.nodesh is not declared"
broken azure/primaries.tf 's/var.primary_vm_size/var.primary_size/' \
  "var.primary_size is not declared"
broken aws/user_data.tf 's/data.aws_region.current/data.aws_region.this/' \
  "data.aws_region.this is not declared"

if [ "$fails" -gt 0 ]; then
  echo "run_hclcheck.sh: $fails failed"
  exit 1
fi
echo "run_hclcheck.sh: all passed"
