// Package caddyload runs a real Caddy in a test process, from a Caddyfile,
// on loopback ports the test picks.
package caddyload

import (
	"net"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	_ "github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile" // the caddyfile adapter
)

// FreePort returns a loopback TCP port that was free a moment ago.
func FreePort(tb testing.TB) int {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// Start adapts caddyfile and loads it into this process's Caddy; it is
// stopped when the test ends.
func Start(tb testing.TB, caddyfile string) {
	tb.Helper()
	cfg, warn, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(caddyfile), nil)
	if err != nil {
		tb.Fatalf("adapt: %v %v", err, warn)
	}
	if err := caddy.Load(cfg, true); err != nil {
		tb.Fatalf("load: %v", err)
	}
	tb.Cleanup(func() { _ = caddy.Stop() })
}
