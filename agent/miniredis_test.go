package agent

import (
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
)

// TestOnMiniredis: the embedded demo store runs the agent's scripts too.
func TestOnMiniredis(t *testing.T) {
	t.Parallel()
	m := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: m.Addr()})
	defer rdb.Close()
	e := envOn(t, rdb)
	va, vb := e.vendor("planet"), e.vendor("globe")
	alice := e.user("alice", 1000)
	w := e.buy(alice, 256)
	e.expectReport("paid:3 vendor_fraud:0", va, "planet", "b1", w.claim(0, 3, 3, "planet"), w.claim(1, 1, 1, ""))
	e.expectReport("double_spend:4", vb, "globe", "b1", w.claim(0, 4, 4, "globe"))
	if !e.revoked(w.cert.Serial) {
		t.Fatal("not revoked")
	}
	e.clock.Add(time.Duration(e.a.cfg.CertTTL + e.a.cfg.SettlementWindow))
	e.settle()
	e.checkLedger()
}
