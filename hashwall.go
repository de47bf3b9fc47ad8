// Package hashwall plugs Hashwall into a Caddy build: the `paywall` gateway
// handler, the `paywall_agent` handler and the `agent` and `demo`
// subcommands. cmd/hashwall imports it; so does a build by xcaddy.sh.
package hashwall

import (
	_ "github.com/hashwall/hashwall/caddymodule/agenthandler" // http.handlers.paywall_agent
	_ "github.com/hashwall/hashwall/caddymodule/paywall"      // http.handlers.paywall
	_ "github.com/hashwall/hashwall/internal/commands"        // hashwall agent, hashwall demo
)
