package paywall

import (
	"testing"
	"time"

	"github.com/hashwall/hashwall/agentapi"
)

// With the real agent on the same Redis: a certificate bought from the
// agent pays at the gateway, claims reach the ledger exactly once even
// across an agent outage, and a revocation is refused within a second.
func TestWithRealAgent(t *testing.T) {
	t.Parallel()
	bank := newRealBank(t)
	w := bank.buy(256)

	e := &env{t: t, redis: bank.redis, agent: &fakeAgent{Server: bank.srv, key: bank.key}}
	h := e.handler(func(h *Handler) {
		h.APIToken, h.Keys, h.CRL = bank.token, nil, crlFromRedis // keys learnt at start (loopback); CRL from the shared Redis
	})
	before := testutilCount(h.metrics.reports.WithLabelValues("paid"))
	for i := uint32(1); i <= 3; i++ {
		if i == 2 {
			bank.down.Store(true)
		}
		if rw, es := do(h, get("/articles/a", "Authorization", w.Header(t, 0, 2*i, 2, testVendor, "/articles/a")), nil); status(rw, es) != 200 {
			t.Fatalf("payment %d: %d %q", i, status(rw, es), rw.Header().Get("Payment-Error"))
		}
	}
	time.Sleep(300 * time.Millisecond)
	bank.down.Store(false)
	waitFor(t, "three claims paid by the agent", 5*time.Second, func() bool {
		return testutilCount(h.metrics.reports.WithLabelValues("paid")) == before+3
	})

	serial := w.Serial
	if _, err := bank.admin().Revoke(t.Context(), agentapi.Revoke{Serial: &serial}); err != nil {
		t.Fatal(err)
	}
	revokedAt := time.Now()
	waitFor(t, "revocation at the gateway", time.Second, func() bool { return h.be.crl.revoked(serial) })
	t.Logf("revocation reached the gateway in %v", time.Since(revokedAt))
	if rw, es := do(h, get("/articles/b", "Authorization", w.Header(t, 0, 8, 2, testVendor, "/articles/b")), nil); status(rw, es) != 403 {
		t.Fatalf("revoked certificate: %d", status(rw, es))
	}
}
