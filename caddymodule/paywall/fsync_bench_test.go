package paywall

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/hashwall/hashwall/internal/testutil/paytest"
	"github.com/hashwall/hashwall/internal/testutil/redistest"
	"github.com/hashwall/hashwall/payword"
)

// BenchmarkPaymentFsync measures what appendfsync always (required) costs
// payments against everysec (allowed only as ephemeral): 16 readers paying
// at once through one gateway, Redis data on the real file system.
//
//	go test ./caddymodule/paywall/ -run '^$' -bench PaymentFsync -benchtime 2000x
func BenchmarkPaymentFsync(b *testing.B) {
	for _, policy := range []string{"always", "everysec"} {
		b.Run(policy, func(b *testing.B) {
			e := &env{t: b, agent: newFakeAgent(b),
				redis: redistest.Start(b, redistest.WithDisk(), redistest.WithArgs("--appendfsync", policy))}
			h := e.handler(func(h *Handler) {
				h.Ephemeral = policy != "always"
				h.Rules = []Rule{{Pattern: "/articles/*", Price: 1}}
			})
			const readers = 16
			per := (b.N + readers - 1) / readers
			hdrs := make([][]string, readers)
			for r := range readers {
				wal := paytest.NewBank(b).Issue(b, paytest.Options{Seed: byte(100 + r), Segments: per/127 + 1})
				var bind *payword.Binding
				for n := range per {
					g, i := uint32(n/127), uint32(n%127+1)
					if i == 1 {
						bind, _ = payword.Bind(wal.Certificate, wal.User, g, testVendor, time.Now())
					}
					hdrs[r] = append(hdrs[r], payword.NewPayment(wal.Certificate, wal.Tree, wal.K, bind, g, i, 1, testVendor, "/articles/a").Header())
				}
			}
			b.ResetTimer()
			start := time.Now()
			var wg sync.WaitGroup
			errs := make(chan error, readers)
			for r := range readers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for n, hdr := range hdrs[r] {
						if w, es := do(h, get("/articles/a", "Authorization", hdr), ok200); status(w, es) != 200 {
							errs <- fmt.Errorf("reader %d payment %d: %d", r, n, status(w, es))
							return
						}
					}
				}()
			}
			wg.Wait()
			b.StopTimer()
			close(errs)
			for err := range errs {
				b.Fatal(err)
			}
			b.ReportMetric(float64(readers*per)/time.Since(start).Seconds(), "payments/s")
		})
	}
}
