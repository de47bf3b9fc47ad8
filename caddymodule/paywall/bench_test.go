package paywall

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
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

// BenchmarkPaymentThroughput is the payment path under concurrent load:
// payClients readers, each with its own certificate (so their segments
// spread over the shards), pay one token at a time through one gateway,
// on one Redis and on a Cluster of three primaries (both with appendfsync
// always, on loopback). It reports payments/s. Run it bounded, e.g.
// -bench PaymentThroughput -benchtime 20000x.
func BenchmarkPaymentThroughput(b *testing.B) {
	b.Run("single", func(b *testing.B) { payThroughput(b, newEnv(b)) })
	b.Run("cluster3", func(b *testing.B) { payThroughput(b, newClusterEnv(b)) })
}

const payClients = 32

func payThroughput(b *testing.B, e *env) {
	h := e.handler(func(h *Handler) {
		h.Rules = []Rule{{Pattern: "/articles/*", Price: 1}}
		h.OfflineSegments = 64 // every segment on its binding: no bank in the loop
	})
	per := (b.N + payClients - 1) / payClients
	bank := paytest.NewBank(b)
	hdrs := make([][]string, payClients)
	for c := range hdrs {
		wal := bank.Issue(b, paytest.Options{Seed: byte(c), Segments: 64})
		var bind *payword.Binding
		for n := range per {
			g, i := uint32(n/int(wal.SegmentLen)), uint32(n%int(wal.SegmentLen)+1)
			if i == 1 {
				bind = wal.Binding(b, g, testVendor)
			}
			hdrs[c] = append(hdrs[c], payword.NewPayment(wal.Certificate, wal.Tree, wal.K, bind, g, i, 1, testVendor, "/articles/a").Header())
		}
	}
	waitFor(b, "the first CRL sync", 2*time.Second, func() bool { return h.be.crl.age(time.Now()) < time.Second })
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	var failed atomic.Int64
	for c := range hdrs {
		wg.Go(func() {
			for _, hdr := range hdrs[c] {
				if w, es := do(h, get("/articles/a", "Authorization", hdr), ok200); status(w, es) != 200 {
					failed.Add(1)
				}
			}
		})
	}
	wg.Wait()
	took := time.Since(start)
	b.StopTimer()
	if n := failed.Load(); n > 0 {
		b.Fatalf("%d payments refused", n)
	}
	b.ReportMetric(float64(per*payClients)/took.Seconds(), "payments/s")
}
