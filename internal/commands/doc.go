// Package commands adds Hashwall's subcommands to the caddy command line:
// `hashwall agent` (the bank, standalone) and `hashwall demo`. The root
// package imports it, so a build by xcaddy has them too.
package commands
