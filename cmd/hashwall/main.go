// Command hashwall is Caddy with the standard modules and Hashwall's: the
// `paywall` gateway handler, the agent handler, and the `agent` and `demo`
// subcommands.
package main

import (
	caddycmd "github.com/caddyserver/caddy/v2/cmd"

	_ "github.com/caddyserver/caddy/v2/modules/standard"

	_ "github.com/hashwall/hashwall"
	_ "github.com/hashwall/hashwall/cmd/hashwall/democmd" // hashwall demo
)

func main() {
	caddycmd.Main()
}
