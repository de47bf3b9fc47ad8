package agent

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/hashwall/hashwall/payword"
)

// BenchmarkIssue10k buys a 10,000-token certificate through the HTTP handler
// with a real Redis, and reports the median latency (target ≤ 5 ms).
func BenchmarkIssue10k(b *testing.B) {
	e := newEnv(b)
	alice := e.user("alice", 1<<40)
	_, priv, _ := ed25519.GenerateKey(nil)
	body, _ := json.Marshal(map[string]any{"tokens": 10000, "public_key": b64.EncodeToString(priv.Public().(ed25519.PublicKey))})
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for range b.N {
		req := httptest.NewRequest("POST", "/v1/certificates", bytes.NewReader(body))
		req.Header.Set("Authorization", alice)
		rec := httptest.NewRecorder()
		start := time.Now()
		e.a.ServeHTTP(rec, req)
		lat = append(lat, time.Since(start))
		if rec.Code != 201 {
			b.Fatal(rec.Code, rec.Body.String())
		}
	}
	b.StopTimer()
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "median-ms")
}

// BenchmarkIngest posts batches of 500 claims (about 8 per segment, as a
// price of 16 tokens over m = 128 gives) through the handler with a real
// Redis, and reports claims per second (target ≥ 20,000).
func BenchmarkIngest(b *testing.B) { benchIngest(b, 1, 8) }

// BenchmarkIngest2 is the same load from two concurrent gateways, so Go's
// verification of one batch overlaps the Lua script of the other.
func BenchmarkIngest2(b *testing.B) { benchIngest(b, 2, 8) }

// BenchmarkIngestFreshSegments is the worst case: every claim opens a new
// segment, so every binding costs an Ed25519 verification.
func BenchmarkIngestFreshSegments(b *testing.B) { benchIngest(b, 2, 1) }

func benchIngest(b *testing.B, clients, perSeg int) {
	e := newEnv(b)
	va := e.vendor("planet")
	alice := e.user("alice", 1<<40)
	const batch, price = 500, 16
	certs := make([]*wallet, 0, 4)
	bodies := make([][]byte, b.N)
	for n := range b.N {
		var claims []payword.Claim
		for len(claims) < batch {
			k := n*batch + len(claims) // claim number
			seg := k / perSeg
			ci, g := seg/7000, uint32(seg%7000)
			for len(certs) <= ci {
				certs = append(certs, e.buy(alice, 7000*128))
			}
			i := uint32((k%perSeg + 1) * price)
			claims = append(claims, certs[ci].claim(g, i, price, "planet"))
		}
		bodies[n], _ = json.Marshal(payword.Report{Vendor: "planet", Batch: fmt.Sprint("b", n), Claims: claims})
	}
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	for c := range clients {
		wg.Go(func() {
			for n := c; n < b.N; n += clients {
				req := httptest.NewRequest("POST", "/v1/reports", bytes.NewReader(bodies[n]))
				req.Header.Set("Authorization", va)
				rec := httptest.NewRecorder()
				e.a.ServeHTTP(rec, req)
				if rec.Code != 200 {
					b.Error(rec.Code, rec.Body.String())
					return
				}
			}
		})
	}
	wg.Wait()
	b.ReportMetric(float64(b.N*batch)/time.Since(start).Seconds(), "claims/s")
	b.StopTimer()
	if testing.Verbose() {
		stats, _ := e.rdb.Info(b.Context(), "commandstats").Result()
		b.Log(stats)
	}
	if err := e.a.CheckLedger(b.Context()); err != nil {
		b.Fatal(err)
	}
	if got, want := e.balance("v:planet"), int64(b.N*batch*price); got != want {
		b.Fatalf("vendor balance %d, want %d", got, want)
	}
}
