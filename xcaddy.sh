#!/usr/bin/env bash
# Builds the same binary as cmd/hashwall with xcaddy: Caddy with the
# standard modules and Hashwall's, from this checkout.
set -euo pipefail
cd "$(dirname "$0")"
command -v xcaddy >/dev/null || go install github.com/caddyserver/xcaddy/cmd/xcaddy@latest
CADDY_VERSION=$(go list -m -f '{{.Version}}' github.com/caddyserver/caddy/v2)
exec "$(go env GOPATH)/bin/xcaddy" build "$CADDY_VERSION" \
	--output "${1:-./hashwall}" \
	--with github.com/hashwall/hashwall=.
