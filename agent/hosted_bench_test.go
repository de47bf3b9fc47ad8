package agent

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/url"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/hashwall/hashwall/payword"
)

// BenchmarkHostedPay is the hosted wallet's own work per payment: the
// reservation script and building the payment.
func BenchmarkHostedPay(b *testing.B) {
	e := newEnv(b)
	e.vendor("daily")
	e.user("ann", 1<<40)
	uid := e.uid("ann")
	ctx := context.Background()
	b.ReportAllocs()
	var n atomic.Int64
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			k := n.Add(1)
			if _, err := e.a.hostedPay(ctx, uid, hostedOrder("daily", fmt.Sprintf("/a/%d", k), 1), false, fmt.Sprint(k)); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// tokenAt names one token of a certificate.
type tokenAt struct {
	serial payword.Serial
	g, i   uint32
}

// BenchmarkPayEndpoint pays through the bank's pay page over real HTTP:
// 64 logged-in sessions of one account POST /pay at once (b.SetParallelism
// times GOMAXPROCS goroutines), each answered with the paying page.
// Report payments/s, then check that no token was handed out twice.
func BenchmarkPayEndpoint(b *testing.B) {
	e := newEnv(b)
	auth := e.vendor("daily")
	if _, err := e.as(auth).SetOrigins(context.Background(), "daily", []string{paySite}); err != nil {
		b.Fatal(err)
	}
	e.user("ann", 1<<40)
	srv := e.webServer()
	srv.Client().Transport.(*http.Transport).MaxIdleConnsPerHost = 128
	b.SetParallelism(max(1, 64/runtime.GOMAXPROCS(0))) // 64 payers in all
	// The sessions log in one after another: concurrent log-ins of one
	// account are throttled.
	sessions := make(chan *browser, 64)
	for range 64 {
		br := newBrowser(b, srv)
		br.c.Transport = srv.Client().Transport
		if p := br.login("ann", "correct horse"); p.code != http.StatusSeeOther {
			b.Fatalf("log-in: %d", p.code)
		}
		sessions <- br
	}
	var n atomic.Int64
	var mu sync.Mutex
	var paid []string
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		br := <-sessions
		csrf := br.get(payLink("daily", "/a/0", "1", paySite+"/a/0")).hidden("csrf")
		nonce := make([]byte, 16)
		for pb.Next() {
			k := n.Add(1)
			rand.Read(nonce)
			f := url.Values{"csrf": {csrf}, "nonce": {hex.EncodeToString(nonce)}, "vendor": {"daily"},
				"product": {fmt.Sprintf("/a/%d", k)}, "price": {"1"}, "realm": {"The Daily"}, "return": {fmt.Sprintf("%s/a/%d", paySite, k)}}
			p := br.post("/pay", f)
			if p.code != http.StatusOK || !strings.Contains(p.body, "hashwall/pay") {
				b.Errorf("POST /pay: %d", p.code)
				return
			}
			mu.Lock()
			paid = append(paid, p.hidden("payment"))
			mu.Unlock()
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "payments/s")
	b.StopTimer()
	// No token handed out twice, every price paid in full.
	seen := make(map[tokenAt]bool, len(paid))
	for _, hdr := range paid {
		pm, err := payword.ParseAuthorization("PayWord " + hdr)
		if err != nil {
			b.Fatal(err)
		}
		if pm.Amount != 1 {
			b.Fatalf("paid %d tokens for a price of 1", pm.Amount)
		}
		k := tokenAt{pm.Cert.Serial, pm.Segment, pm.Index}
		if seen[k] {
			b.Fatalf("token %v handed out twice", k)
		}
		seen[k] = true
	}
}
