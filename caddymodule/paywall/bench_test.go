package paywall

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/hashwall/hashwall/internal/testutil/paytest"
	"github.com/hashwall/hashwall/payword"
)

var ok200 = caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
	w.WriteHeader(200)
	return nil
})

// BenchmarkPayment is the payment path: a new valid token each request,
// verified and recorded through real Redis.
func BenchmarkPayment(b *testing.B) {
	e := newEnv(b)
	h := e.handler(func(h *Handler) { h.Rules = []Rule{{Pattern: "/articles/*", Price: 1}} })
	wal := paytest.NewBank(b).Issue(b, paytest.Options{Seed: 40, Segments: 2048})
	hdrs := make([]string, 0, b.N)
	binds := map[uint32]*payword.Binding{}
	for n := range b.N {
		g, i := uint32(n/128), uint32(n%128+1)
		if binds[g] == nil {
			binds[g], _ = payword.Bind(wal.Certificate, wal.User, g, testVendor, time.Now())
		}
		hdrs = append(hdrs, payword.NewPayment(wal.Certificate, wal.Tree, wal.K, binds[g], g, i, 1, testVendor, "/articles/a").Header())
	}
	b.ReportAllocs()
	b.ResetTimer()
	for n := range b.N {
		w, es := do(h, get("/articles/a", "Authorization", hdrs[n]), ok200)
		if status(w, es) != 200 {
			b.Fatalf("payment %d: %d %s", n, status(w, es), w.Header().Get("Payment-Error"))
		}
	}
}

// BenchmarkGrant is the grant path: a request with a valid grant cookie.
func BenchmarkGrant(b *testing.B) {
	e := newEnv(b)
	h := e.handler()
	wal := paytest.NewBank(b).Issue(b, paytest.Options{Seed: 41})
	w, _ := do(h, get("/articles/a", "Authorization", wal.Header(b, 0, 2, 2, testVendor, "/articles/a")), ok200)
	cookie := grantCookie + "=" + w.Header().Get("Payment-Receipt")
	r := get("/articles/a", "Cookie", cookie)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		// A fresh replacer per request, as Caddy gives each one.
		rr := r.WithContext(context.WithValue(r.Context(), caddy.ReplacerCtxKey, caddy.NewReplacer()))
		w := httptest.NewRecorder()
		if err := h.ServeHTTP(w, rr, ok200); err != nil || w.Code != 200 {
			b.Fatal(err, w.Code)
		}
	}
}
