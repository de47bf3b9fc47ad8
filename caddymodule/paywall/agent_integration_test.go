package paywall

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashwall/hashwall/agent"
	"github.com/hashwall/hashwall/agentapi"
	"github.com/hashwall/hashwall/internal/redisurl"
	"github.com/hashwall/hashwall/internal/testutil/paytest"
	"github.com/hashwall/hashwall/internal/testutil/redistest"
	"github.com/hashwall/hashwall/payword"
)

// With the real agent on the same Redis: a certificate bought from the
// agent pays at the gateway, claims reach the ledger exactly once even
// across an agent outage, and a revocation is refused within a second.
func TestWithRealAgent(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	rdb, err := redisurl.New(srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rdb.Close() })
	key := payword.SigningKey{ID: "agent-2026", Key: ed25519.NewKeyFromSeed(paytest.Seed(0x01))}
	ag, err := agent.New(t.Context(), agent.Config{
		Redis: rdb, SigningKeys: []payword.SigningKey{key}, MasterKey: bytes.Repeat([]byte{7}, 32),
		AdminToken: "admin-token", Settings: agent.Settings{OpenVendors: true, Ephemeral: true},
		Argon: agent.ArgonParams{Time: 1, Memory: 64, Threads: 1},
	})
	if err != nil {
		t.Fatal(err)
	}
	var down atomic.Bool
	bank := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if down.Load() {
			http.Error(w, `{"error":"down","code":"down"}`, http.StatusServiceUnavailable)
			return
		}
		ag.ServeHTTP(w, r)
	}))
	t.Cleanup(bank.Close)

	call := func(method, path, auth string, in, out any) {
		t.Helper()
		body, _ := json.Marshal(in)
		req, _ := http.NewRequest(method, bank.URL+path, bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode/100 != 2 {
			t.Fatalf("%s %s: %d", method, path, resp.StatusCode)
		}
		if out != nil {
			if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
				t.Fatal(err)
			}
		}
	}
	var vendor struct{ Token string }
	call("POST", "/v1/vendors", "", map[string]string{"vendor": testVendor}, &vendor)
	call("POST", "/v1/users", "", map[string]string{"username": "alice", "password": "correct horse battery"}, nil)
	call("POST", "/v1/admin/credit", "Bearer admin-token", map[string]any{"user": "alice", "amount": 1000}, nil)
	user := ed25519.NewKeyFromSeed(paytest.Seed(0x41))
	var bundle agentapi.Bundle
	basic := "Basic " + base64.StdEncoding.EncodeToString([]byte("alice:correct horse battery"))
	call("POST", "/v1/certificates", basic, map[string]any{
		"tokens": 256, "public_key": base64.RawURLEncoding.EncodeToString(user.Public().(ed25519.PublicKey))}, &bundle)

	w := bundleWallet(t, user, bundle)

	e := &env{t: t, redis: srv, agent: &fakeAgent{Server: bank, key: key}}
	h := e.handler(func(h *Handler) {
		h.APIToken, h.Keys, h.CRL = vendor.Token, nil, crlFromRedis // keys learnt at start (loopback); CRL from the shared Redis
	})
	before := testutilCount(h.metrics.reports.WithLabelValues("paid"))
	for i := uint32(1); i <= 3; i++ {
		if i == 2 {
			down.Store(true)
		}
		if rw, es := do(h, get("/articles/a", "Authorization", w.Header(t, 0, 2*i, 2, testVendor, "/articles/a")), nil); status(rw, es) != 200 {
			t.Fatalf("payment %d: %d %q", i, status(rw, es), rw.Header().Get("Payment-Error"))
		}
	}
	time.Sleep(300 * time.Millisecond)
	down.Store(false)
	waitFor(t, "three claims paid by the agent", 5*time.Second, func() bool {
		return testutilCount(h.metrics.reports.WithLabelValues("paid")) == before+3
	})

	serial := w.Serial
	call("POST", "/v1/admin/revoke", "Bearer admin-token", map[string]any{"serial": serial}, nil)
	revokedAt := time.Now()
	waitFor(t, "revocation at the gateway", time.Second, func() bool { return h.be.crl.revoked(serial) })
	t.Logf("revocation reached the gateway in %v", time.Since(revokedAt))
	if rw, es := do(h, get("/articles/b", "Authorization", w.Header(t, 0, 8, 2, testVendor, "/articles/b")), nil); status(rw, es) != 403 {
		t.Fatalf("revoked certificate: %d", status(rw, es))
	}
}
