// Command hashwall is Caddy with the standard modules and Hashwall's: the
// `paywall` gateway handler and the agent.
package main

import (
	caddycmd "github.com/caddyserver/caddy/v2/cmd"

	_ "github.com/caddyserver/caddy/v2/modules/standard"

	_ "github.com/hashwall/hashwall/caddymodule/agenthandler"
	_ "github.com/hashwall/hashwall/caddymodule/paywall"
)

func main() {
	caddycmd.Main()
}
