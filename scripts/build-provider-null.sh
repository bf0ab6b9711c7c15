#!/usr/bin/env bash
# Builds a `hashicorp/null` provider for OpenTofu into a filesystem provider
# mirror, so that runs of configurations using `null_resource` (go-tfe's run
# test fixture, the demo) can `tofu init` without reaching a provider registry.
#
# Usage: scripts/build-provider-null.sh [--force]
#
# Prints the mirror directory (one line on stdout; progress goes to stderr):
#
#   ${TERRACE_CACHE:-$HOME/.cache/terrace}/provider-mirror
#
# holding, in OpenTofu's "unpacked" filesystem-mirror layout
# (HOSTNAME/NAMESPACE/TYPE/VERSION/OS_ARCH/terraform-provider-TYPE_vVERSION):
#
#   registry.opentofu.org/hashicorp/null/3.2.4/linux_amd64/terraform-provider-null_v3.2.4
#   registry.terraform.io/hashicorp/null/3.2.4/linux_amd64/terraform-provider-null_v3.2.4
#
# (the second, a hard link to the first, for configurations and lock files
# that name the provider `registry.terraform.io/hashicorp/null` outright).
#
# Use it with a CLI configuration such as
#
#   provider_installation {
#     filesystem_mirror { path = "<printed dir>" }
#   }
#
# or give it to terraced as --provider-mirror (TERRACE_PROVIDER_MIRROR).
#
# Why a stand-in rather than the upstream provider: HashiCorp's provider has
# module path github.com/terraform-providers/terraform-provider-null with
# v3.x tags but no /v3 suffix, so the Go module proxy serves none of its
# releases (only an unrelated 2017 v1.0.0, which speaks plugin protocol 4 that
# OpenTofu no longer loads), and nothing else but package registries is
# reachable here.  So this script builds a small provider of its own on
# HashiCorp's terraform-plugin-framework (which the module proxy does serve),
# with the same `null_resource` schema as upstream 3.2.x:
#   triggers  map(string), optional; a change replaces the resource
#   id        string, computed; a random number set at create time
# `null_data_source` (deprecated upstream) is not provided.
# A bare `null_resource` or `source = "hashicorp/null"` resolves to
# registry.opentofu.org/hashicorp/null (OpenTofu's default registry host).
# The build is labelled 3.2.4 so that the usual
# `version = "~> 3.x"` constraints accept it.  A .terraform.lock.hcl recorded
# against the real 3.2.4 will not match its checksums.
#
# Idempotent: keyed by version and by a hash of the provider's source and
# pinned dependencies; an up-to-date build is reused.  --force rebuilds.
# Needs go (>= 1.25, or a Go whose GOTOOLCHAIN may fetch one) and the Go
# module proxy on the first build; later runs work offline.
#
# Exit status: 0 ok (mirror dir printed), 1 build failed, 2 usage error.
set -euo pipefail

VERSION=3.2.4                          # label of the stand-in (pinned)
FRAMEWORK=v1.19.0                      # github.com/hashicorp/terraform-plugin-framework
PLUGIN_GO=v0.31.0                      # github.com/hashicorp/terraform-plugin-go
HOSTS="registry.opentofu.org registry.terraform.io"

force=0
for arg in "$@"; do
  case "$arg" in
    --force) force=1 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "usage: $0 [--force]" >&2; exit 2 ;;
  esac
done

log() { echo "build-provider-null: $*" >&2; }

CACHE="${TERRACE_CACHE:-$HOME/.cache/terrace}"
MIRROR="$CACHE/provider-mirror"

if ! command -v go >/dev/null 2>&1; then
  log "go is not installed"
  exit 1
fi
GOOS_="$(go env GOOS)"
GOARCH_="$(go env GOARCH)"
PLATFORM="${GOOS_}_${GOARCH_}"
EXE="terraform-provider-null_v$VERSION"
dest_dir() { echo "$MIRROR/$1/hashicorp/null/$VERSION/$PLATFORM"; }
DEST="$(dest_dir registry.opentofu.org)/$EXE"
SRC="$CACHE/src/terraform-provider-null-$VERSION"

# ---- the provider's source --------------------------------------------------

write_sources() { # DIR
  local d="$1"
  mkdir -p "$d"
  cat >"$d/go.mod" <<EOF
module terrace.local/terraform-provider-null

go 1.25.0

require (
	github.com/hashicorp/terraform-plugin-framework $FRAMEWORK
	github.com/hashicorp/terraform-plugin-go $PLUGIN_GO
)
EOF
  cat >"$d/main.go" <<'EOF'
// A stand-in for the hashicorp/null provider, built by Terrace's
// scripts/build-provider-null.sh: `null_resource` with `triggers` and `id`.
package main

import (
	"context"
	"crypto/rand"
	"log"
	"math/big"

	"github.com/hashicorp/terraform-plugin-framework/datasource"
	"github.com/hashicorp/terraform-plugin-framework/provider"
	"github.com/hashicorp/terraform-plugin-framework/providerserver"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/mapplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/types"
)

type nullProvider struct{}

func (nullProvider) Metadata(_ context.Context, _ provider.MetadataRequest, resp *provider.MetadataResponse) {
	resp.TypeName = "null"
}

func (nullProvider) Schema(context.Context, provider.SchemaRequest, *provider.SchemaResponse) {}

func (nullProvider) Configure(context.Context, provider.ConfigureRequest, *provider.ConfigureResponse) {
}

func (nullProvider) Resources(context.Context) []func() resource.Resource {
	return []func() resource.Resource{func() resource.Resource { return nullResource{} }}
}

func (nullProvider) DataSources(context.Context) []func() datasource.DataSource { return nil }

type nullResource struct{}

type nullResourceModel struct {
	ID       types.String `tfsdk:"id"`
	Triggers types.Map    `tfsdk:"triggers"`
}

func (nullResource) Metadata(_ context.Context, req resource.MetadataRequest, resp *resource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_resource"
}

func (nullResource) Schema(_ context.Context, _ resource.SchemaRequest, resp *resource.SchemaResponse) {
	resp.Schema = schema.Schema{
		Description: "A resource that does nothing; changing `triggers` replaces it.",
		Attributes: map[string]schema.Attribute{
			"id": schema.StringAttribute{
				Description:   "A random number chosen at create time.",
				Computed:      true,
				PlanModifiers: []planmodifier.String{stringplanmodifier.UseStateForUnknown()},
			},
			"triggers": schema.MapAttribute{
				Description:   "Arbitrary strings; any change replaces the resource.",
				ElementType:   types.StringType,
				Optional:      true,
				PlanModifiers: []planmodifier.Map{mapplanmodifier.RequiresReplace()},
			},
		},
	}
}

func (nullResource) Create(ctx context.Context, req resource.CreateRequest, resp *resource.CreateResponse) {
	var m nullResourceModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &m)...)
	if resp.Diagnostics.HasError() {
		return
	}
	n, err := rand.Int(rand.Reader, big.NewInt(1<<62))
	if err != nil {
		resp.Diagnostics.AddError("cannot choose an id", err.Error())
		return
	}
	m.ID = types.StringValue(n.String())
	resp.Diagnostics.Append(resp.State.Set(ctx, &m)...)
}

func (nullResource) Read(context.Context, resource.ReadRequest, *resource.ReadResponse) {}

func (nullResource) Update(ctx context.Context, req resource.UpdateRequest, resp *resource.UpdateResponse) {
	var m nullResourceModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &m)...)
	if resp.Diagnostics.HasError() {
		return
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, &m)...)
}

func (nullResource) Delete(context.Context, resource.DeleteRequest, *resource.DeleteResponse) {}

func main() {
	err := providerserver.Serve(context.Background(), func() provider.Provider { return nullProvider{} },
		providerserver.ServeOpts{Address: "registry.opentofu.org/hashicorp/null", ProtocolVersion: 5})
	if err != nil {
		log.Fatal(err)
	}
}
EOF
}

# ---- build, unless an identical one is in place ------------------------------

mkdir -p "$CACHE/src" "$MIRROR"
# one build at a time (a parallel caller waits, then finds it done)
if command -v flock >/dev/null 2>&1; then
  exec 9>"$CACHE/src/.terraform-provider-null.lock"
  flock 9
fi

tmp="$(mktemp -d "$CACHE/src/.terraform-provider-null.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
write_sources "$tmp/new"
key="$( (cat "$tmp/new/go.mod" "$tmp/new/main.go"; echo "$PLATFORM") | sha256sum | cut -d' ' -f1)"
STAMP="$SRC/.built-key"

installed() {
  local h
  for h in $HOSTS; do [ -x "$(dest_dir "$h")/$EXE" ] || return 1; done
}
if [ "$force" = 0 ] && installed && [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$key" ]; then
  log "up to date: $DEST"
  echo "$MIRROR"
  exit 0
fi

log "building null provider $VERSION for $PLATFORM (terraform-plugin-framework $FRAMEWORK)"
rm -rf "$SRC"
mv "$tmp/new" "$SRC"
(
  cd "$SRC"
  export GOFLAGS="-mod=mod -buildvcs=false" CGO_ENABLED=0
  # (errexit is off inside a subshell tested by ||: chain the steps)
  go mod tidy >&2 &&
  go build -trimpath -ldflags="-s -w" -o "$tmp/$EXE" .
) || { log "build failed (the first build needs the Go module proxy)"; exit 1; }

chmod 755 "$tmp/$EXE"
for h in $HOSTS; do
  d="$(dest_dir "$h")"
  mkdir -p "$d"
  # a hard link where possible (same file system), else a copy
  ln -f "$tmp/$EXE" "$tmp/$EXE.$h" 2>/dev/null || cp -f "$tmp/$EXE" "$tmp/$EXE.$h"
  mv -f "$tmp/$EXE.$h" "$d/$EXE"
  log "installed $d/$EXE"
done
echo "$key" >"$STAMP"
echo "$MIRROR"
