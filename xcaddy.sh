#!/usr/bin/env bash
# Builds Hashwall with xcaddy: Caddy with the standard modules plus the
# root package github.com/hashwall/hashwall (the paywall and paywall_agent
# handlers, the agent subcommand). With HASHWALL_DEMO=1 it adds the demo
# subcommand (and the embedded store it links): the same binary as
# cmd/hashwall.
#
#   ./xcaddy.sh [output]                           # this checkout
#   HASHWALL_VERSION=v0.1.0 ./xcaddy.sh [output]   # a published version
#   HASHWALL_DEMO=1 ./xcaddy.sh [output]           # with `hashwall demo`
#   XCADDY_WITH="github.com/x/plugin" ./xcaddy.sh  # more plugins besides
set -euo pipefail
cd "$(dirname "$0")"
out=${1:-$(pwd)/hashwall}
caddy=$(go list -m -f '{{.Version}}' github.com/caddyserver/caddy/v2)

xcaddy=$(go env GOPATH)/bin/xcaddy
[ -x "$xcaddy" ] || go install github.com/caddyserver/xcaddy/cmd/xcaddy@v0.4.5

if [ -n "${HASHWALL_VERSION:-}" ]; then
	hashwall="github.com/hashwall/hashwall@$HASHWALL_VERSION"
else
	# A local module needs an explicit version: without one `go get` asks the
	# module proxy for the latest release of an unpublished module.
	hashwall="github.com/hashwall/hashwall@v0.0.0-00010101000000-000000000000=$(pwd)"
fi
# The root package imports the demo under this build tag (demo.go).
if [ "${HASHWALL_DEMO:-}" = 1 ]; then
	export XCADDY_GO_BUILD_FLAGS="${XCADDY_GO_BUILD_FLAGS:-} -tags=hashwall_demo"
fi
extra=()
for m in ${XCADDY_WITH:-}; do extra+=(--with "$m"); done
exec "$xcaddy" build "$caddy" --output "$out" --with "$hashwall" "${extra[@]}"
