#!/usr/bin/env bash
# Builds Hashwall's Caddy with xcaddy: Caddy with the standard modules plus
# the paywall and agent handlers, the same binary as cmd/hashwall.
#
#   HASHWALL_VERSION=v0.1.0 ./xcaddy.sh [output]   # a published version, via xcaddy
#   ./xcaddy.sh [output]                           # this checkout
#
# xcaddy resolves plugins through the Go module proxy, which does not serve an
# unpublished checkout; without HASHWALL_VERSION the script therefore builds
# cmd/hashwall, which imports exactly the same modules.
set -euo pipefail
cd "$(dirname "$0")"
out=${1:-$(pwd)/hashwall}
if [ -z "${HASHWALL_VERSION:-}" ]; then
	exec go build -o "$out" ./cmd/hashwall
fi
xcaddy=$(go env GOPATH)/bin/xcaddy
[ -x "$xcaddy" ] || go install github.com/caddyserver/xcaddy/cmd/xcaddy@latest
exec "$xcaddy" build "$(go list -m -f '{{.Version}}' github.com/caddyserver/caddy/v2)" \
	--output "$out" \
	--with "github.com/hashwall/hashwall/caddymodule/paywall@$HASHWALL_VERSION" \
	--with "github.com/hashwall/hashwall/caddymodule/agenthandler@$HASHWALL_VERSION"
