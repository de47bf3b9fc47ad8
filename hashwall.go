// Package hashwall plugs Hashwall into a Caddy build: the `paywall` gateway
// handler, the `paywall_agent` handler and the `agent` subcommand.
// cmd/hashwall imports it and the `demo` subcommand; so does a build by
// xcaddy.sh, which adds the demo only when asked.
package hashwall

import (
	_ "github.com/hashwall/hashwall/caddymodule/agenthandler" // http.handlers.paywall_agent
	_ "github.com/hashwall/hashwall/caddymodule/paywall"      // http.handlers.paywall
	_ "github.com/hashwall/hashwall/cmd/hashwall/agentcmd"    // hashwall agent
)
