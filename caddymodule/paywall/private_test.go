package paywall

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/hashwall/hashwall/payword"
)

// An upstream that lets shared caches keep its pages must not let them keep
// paid ones: a CDN would serve them to readers who did not pay.
func TestPaidContentIsPrivate(t *testing.T) {
	e := newEnv(t)
	h := e.handler()
	wal := newWallet(t, 1, payword.GenericScope)
	public := caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		w.Header().Set("Cache-Control", "public, max-age=3600, s-maxage=600")
		_, err := w.Write([]byte("content of " + r.URL.Path))
		return err
	})
	w, es := do(h, get("/articles/moon", "Authorization", wal.pay(t, 0, 2, 2, testVendor, "/articles/moon")), public)
	if status(w, es) != 200 {
		t.Fatalf("pay: %d", status(w, es))
	}
	receipt := w.Header().Get("Payment-Receipt")
	for name, got := range map[string]string{
		"payment": w.Header().Get("Cache-Control"),
		"grant": func() string {
			w, _ := do(h, get("/articles/moon", "Cookie", grantCookie+"="+receipt), public)
			return w.Header().Get("Cache-Control")
		}(),
	} {
		if !strings.HasPrefix(got, "private") || strings.Contains(got, "public") || strings.Contains(got, "s-maxage") {
			t.Errorf("%s response: Cache-Control %q", name, got)
		}
	}
	// Free pages keep what the upstream says.
	if w, _ := do(h, get("/articles/index.html"), public); w.Header().Get("Cache-Control") != "public, max-age=3600, s-maxage=600" {
		t.Errorf("free page: Cache-Control %q", w.Header().Get("Cache-Control"))
	}
}

// Payments fail closed on a revocation list the gateway could not refresh:
// a certificate revoked meanwhile could not be refused. Grants still work.
func TestStaleCRLRefusesPayments(t *testing.T) {
	e := newEnv(t)
	h := e.handler(func(h *Handler) { h.CRLMaxAge = caddy.Duration(500 * time.Millisecond) })
	wal := newWallet(t, 11, payword.GenericScope)
	w, es := do(h, get("/articles/a", "Authorization", wal.pay(t, 0, 2, 2, testVendor, "/articles/a")), nil)
	if status(w, es) != 200 {
		t.Fatalf("pay: %d", status(w, es))
	}
	receipt := w.Header().Get("Payment-Receipt")
	e.agent.setDown(true)
	time.Sleep(900 * time.Millisecond)
	w, es = do(h, get("/articles/b", "Authorization", wal.pay(t, 0, 4, 2, testVendor, "/articles/b")), nil)
	if status(w, es) != http.StatusServiceUnavailable || w.Header().Get("Payment-Error") != "crl_stale" {
		t.Fatalf("payment on a stale CRL: %d %q", status(w, es), w.Header().Get("Payment-Error"))
	}
	if w, es := do(h, get("/articles/a", "Cookie", grantCookie+"="+receipt), nil); status(w, es) != 200 {
		t.Fatalf("grant on a stale CRL: %d", status(w, es))
	}
	e.agent.setDown(false)
	waitFor(t, "a fresh CRL", 5*time.Second, func() bool {
		w, es := do(h, get("/articles/b", "Authorization", wal.pay(t, 0, 4, 2, testVendor, "/articles/b")), nil)
		return status(w, es) == 200
	})
}
