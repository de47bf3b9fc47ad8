package paywall

import (
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"

	"github.com/hashwall/hashwall/bench/capacity"
	"github.com/hashwall/hashwall/payword"
)

// BenchmarkCapacityGatewayRSS: b.N distinct readers each pay once and come
// back once with their grant, through one handler; the gateway's memory
// must stay bounded however many there are, since what it keeps per reader
// lives in its caches (grants, certificates, segments, bindings: 65,536
// entries each, in two generations) and the rest in Redis. It reports the
// process's RSS and Go heap after the run (payments are made in chunks, so
// the test's own data stays small). For the figure of docs/scaling.md:
//
//	go test ./caddymodule/paywall -run '^$' -bench CapacityGatewayRSS -benchtime 1000000x
func BenchmarkCapacityGatewayRSS(b *testing.B) {
	e := newEnv(b)
	h := e.handler()
	const chunk = 10000
	peak := uint64(0)
	for from := 0; from < b.N; from += chunk {
		n := min(chunk, b.N-from)
		pays := capacity.NewReadersFrom(b, from, n, capacityPrice, testVendor)
		for i, p := range pays {
			w, es := do(h, get(capacity.Product, "Authorization", p.Header()), ok200)
			if status(w, es) != 200 {
				b.Fatalf("reader %d: %d %s", from+i, status(w, es), w.Header().Get(payword.ErrorHeader))
			}
			if w, es = do(h, get(capacity.Product, "Cookie", grantCookie+"="+w.Header().Get(payword.ReceiptHeader)), ok200); status(w, es) != 200 {
				b.Fatalf("reader %d's grant: %d", from+i, status(w, es))
			}
		}
		peak = max(peak, rss(b))
	}
	debug.FreeOSMemory()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	b.ReportMetric(float64(rss(b))/(1<<20), "RSS-MiB")
	b.ReportMetric(float64(peak)/(1<<20), "peak-RSS-MiB")
	b.ReportMetric(float64(ms.HeapInuse)/(1<<20), "heap-MiB")
}

// rss is the process's resident set size, in bytes.
func rss(tb testing.TB) uint64 {
	raw, err := os.ReadFile("/proc/self/status")
	if err != nil {
		tb.Skip("no /proc/self/status")
	}
	for line := range strings.Lines(string(raw)) {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}
