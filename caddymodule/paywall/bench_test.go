package paywall

import (
	"context"
	"net/http"
	"net/http/httptest"
	"runtime"
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

// BenchmarkGrant is the grant path: a request with a valid grant cookie,
// with the test harness's own allocations (BenchmarkGrantHandler leaves
// them out).
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

// caddyRequest prepares r as Caddy's server does before its handler chain
// (caddyhttp.Server.ServeHTTP and prepareRequest): a request of its own
// with a fresh replacer holding the HTTP placeholders, and a response whose
// header already holds Caddy's Server field. Its cost is the harness's, not
// the paywall's: see handlerCost.
func caddyRequest(r *http.Request) (*sinkWriter, *http.Request) {
	rr := new(http.Request)
	*rr = *r
	caddyhttp.NewTestReplacer(rr)
	w := &sinkWriter{h: http.Header{"Server": serverHeader}}
	return w, rr
}

var serverHeader = []string{"Caddy"}

// sinkWriter is a ResponseWriter that keeps the status and discards the body.
type sinkWriter struct {
	h    http.Header
	code int
}

func (s *sinkWriter) Header() http.Header         { return s.h }
func (s *sinkWriter) WriteHeader(code int)        { s.code = code }
func (s *sinkWriter) Write(b []byte) (int, error) { return len(b), nil }

// grantRequest pays once with a fresh wallet and returns a request that
// carries the grant in its cookie header.
func grantRequest(t testing.TB, h *Handler, seed byte) *http.Request {
	wal := paytest.NewBank(t).Issue(t, paytest.Options{Seed: seed})
	w, es := do(h, get("/articles/a", "Authorization", wal.Header(t, 0, 2, 2, testVendor, "/articles/a")), ok200)
	if status(w, es) != 200 {
		t.Fatalf("pay: %d", status(w, es))
	}
	return get("/articles/a", "Cookie", "theme=dark; "+grantCookie+"="+w.Header().Get("Payment-Receipt")+"; lang=en")
}

// grantOnce serves r on its grant through h, or plainly to ok200 when h is
// nil: the two differ by exactly the paywall's work.
func grantOnce(t testing.TB, h *Handler, r *http.Request) {
	w, rr := caddyRequest(r)
	var err error
	if h == nil {
		err = ok200.ServeHTTP(w, rr)
	} else {
		err = h.ServeHTTP(w, rr, ok200)
	}
	if err != nil || w.code != 200 {
		t.Fatal(err, w.code)
	}
}

// cost is what requests took: time, bytes and allocations.
type cost struct{ ns, bytes, allocs float64 }

// costs runs a and b n times each, alternating in blocks so that both see
// the same garbage collector and machine, and returns their cost per run.
func costs(n int, a, b func()) (ca, cb cost) {
	const block = 256
	var ms runtime.MemStats
	run := func(c *cost, f func(), k int) {
		runtime.ReadMemStats(&ms)
		bytes, allocs := ms.TotalAlloc, ms.Mallocs
		start := time.Now()
		for range k {
			f()
		}
		c.ns += float64(time.Since(start).Nanoseconds())
		runtime.ReadMemStats(&ms)
		c.bytes += float64(ms.TotalAlloc - bytes)
		c.allocs += float64(ms.Mallocs - allocs)
	}
	for done := 0; done < n; done += block {
		k := min(block, n-done)
		run(&ca, a, k)
		run(&cb, b, k)
	}
	for _, c := range []*cost{&ca, &cb} {
		c.ns, c.bytes, c.allocs = c.ns/float64(n), c.bytes/float64(n), c.allocs/float64(n)
	}
	return ca, cb
}

// BenchmarkGrantHandler is the paywall's own cost on the grant path (a
// cached grant in a cookie among others, or in a Bearer header): the same
// requests are served once straight to the next handler and once through
// the paywall, each prepared as Caddy prepares them, and ns/op, B/op and
// allocs/op report the difference; harness-ns/op is the plain run.
func BenchmarkGrantHandler(b *testing.B) {
	h := newEnv(b).handler()
	cookie := grantRequest(b, h, 42)
	for _, tc := range []struct {
		name string
		r    *http.Request
	}{
		{"cookie", cookie},
		{"bearer", get("/articles/a", "Authorization", "Bearer "+cookie.Cookies()[1].Value)},
	} {
		b.Run(tc.name, func(b *testing.B) {
			r := tc.r
			grantOnce(b, h, r) // caches the grant
			b.ReportAllocs()
			b.ResetTimer()
			plain, paywall := costs(b.N, func() { grantOnce(b, nil, r) }, func() { grantOnce(b, h, r) })
			b.StopTimer()
			b.ReportMetric(paywall.ns-plain.ns, "ns/op")
			b.ReportMetric(paywall.bytes-plain.bytes, "B/op")
			b.ReportMetric(paywall.allocs-plain.allocs, "allocs/op")
			b.ReportMetric(plain.ns, "harness-ns/op")
		})
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
