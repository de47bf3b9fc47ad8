// Package capacity holds what the capacity benchmarks of docs/scaling.md
// share: payments of many readers, and the CPU and memory readings of a
// Redis server and of this process. The benchmarks themselves are in this
// package's tests (a real gateway in Caddy, the agent's report ingestion)
// and in caddymodule/paywall (the accept script alone, memory per reader).
package capacity

import (
	"context"
	"encoding/binary"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hashwall/hashwall/internal/testutil/paytest"
	"github.com/hashwall/hashwall/payword"
)

// Product is the article every benchmark payment buys.
const Product = "/articles/a"

// Segments is S of the readers' certificates: 64 segments of 128 tokens, a
// certificate of 8,192 tokens, so a payment carries a Merkle path of six
// hashes as a real reader's does.
const Segments = 64

// NewReaders returns n payments of price tokens, each the first payment of
// a new reader: its own certificate (serial), segment 0 bound to vendor.
// A gateway verifies each as it would a reader it has never seen: the
// certificate's signature, the binding's signature and the Merkle path.
// The certificates share K and the tree, so making n of them costs two
// signatures each.
func NewReaders(tb testing.TB, n int, price uint32, vendor string) []*payword.Payment {
	return NewReadersFrom(tb, 0, n, price, vendor)
}

// NewReadersFrom is NewReaders for readers from, from+1, …: successive
// calls make readers that are new to each other.
func NewReadersFrom(tb testing.TB, from, n int, price uint32, vendor string) []*payword.Payment {
	tb.Helper()
	base := paytest.NewBank(tb).Issue(tb, paytest.Options{Seed: 60, Segments: Segments})
	out := make([]*payword.Payment, n)
	parallel(n, func(i int) {
		c := *base.Certificate
		binary.BigEndian.PutUint64(c.Serial[8:], uint64(from+i)+1) // serials differ from base's and each other's
		if _, err := c.Sign(base.Bank.Key); err != nil {
			panic(err)
		}
		bind, err := payword.Bind(&c, base.User, 0, vendor, time.Now())
		if err != nil {
			panic(err)
		}
		out[i] = payword.NewPayment(&c, base.Tree, base.K, bind, 0, price, price, vendor, Product)
	})
	return out
}

// Returning returns, for each of clients, the payments of price tokens it
// sends in order: readers who paid before, each payment the next of its
// segment (one certificate per client, segments used up one after the
// other). After the first payment of a segment a gateway has the
// certificate, binding and path cached, and checks price hashes only.
func Returning(tb testing.TB, clients, n int, price uint32, vendor string) [][]*payword.Payment {
	tb.Helper()
	per := (n + clients - 1) / clients
	perSeg := int(payword.DefaultSegmentLen / price)
	out := make([][]*payword.Payment, clients)
	for c := range clients {
		segs := (per + perSeg - 1) / perSeg
		w := paytest.NewBank(tb).Issue(tb, paytest.Options{Seed: byte(c), Segments: max(segs, 1)})
		var bind *payword.Binding
		for k := range per {
			g, i := uint32(k/perSeg), uint32(k%perSeg+1)*price
			if k%perSeg == 0 {
				bind = w.Binding(tb, g, vendor)
			}
			out[c] = append(out[c], payword.NewPayment(w.Certificate, w.Tree, w.K, bind, g, i, price, vendor, Product))
		}
	}
	return out
}

// Split deals payments out to clients, in turn.
func Split[T any](all []T, clients int) [][]T {
	out := make([][]T, clients)
	for i, p := range all {
		out[i%clients] = append(out[i%clients], p)
	}
	return out
}

// parallel runs f(0..n-1) on a few goroutines.
func parallel(n int, f func(int)) {
	var next atomic.Int64
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for i := int(next.Add(1)) - 1; i < n; i = int(next.Add(1)) - 1 {
				f(i)
			}
		})
	}
	wg.Wait()
}

// Run sends each client's items in order, the clients at once, and
// returns the wall time and every item's latency. An error from send
// stops that client and is returned.
func Run[T any](loads [][]T, send func(T) error) (time.Duration, []time.Duration, error) {
	lat := make([][]time.Duration, len(loads))
	errs := make([]error, len(loads))
	var wg sync.WaitGroup
	start := time.Now()
	for c, load := range loads {
		wg.Go(func() {
			for _, x := range load {
				t0 := time.Now()
				if err := send(x); err != nil {
					errs[c] = err
					return
				}
				lat[c] = append(lat[c], time.Since(t0))
			}
		})
	}
	wg.Wait()
	took := time.Since(start)
	for _, err := range errs {
		if err != nil {
			return took, nil, err
		}
	}
	return took, slices.Concat(lat...), nil
}

// Percentile returns the q-quantile (0..1) of lat, which it sorts.
func Percentile(lat []time.Duration, q float64) time.Duration {
	if len(lat) == 0 {
		return 0
	}
	slices.Sort(lat)
	return lat[min(len(lat)-1, int(q*float64(len(lat))))]
}

// ProcessCPU is the user and system CPU time this process has used.
func ProcessCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// Info returns the numeric fields of Redis INFO section.
func Info(tb testing.TB, rdb redis.UniversalClient, section string) map[string]float64 {
	tb.Helper()
	s, err := rdb.Info(context.Background(), section).Result()
	if err != nil {
		tb.Fatal(err)
	}
	out := map[string]float64{}
	for line := range strings.SplitSeq(s, "\r\n") {
		k, v, ok := strings.Cut(line, ":")
		if f, err := strconv.ParseFloat(v, 64); ok && err == nil {
			out[k] = f
		}
	}
	return out
}

// RedisCPU is the CPU time of Redis's main thread, the one that runs every
// command and script: what bounds one shard.
func RedisCPU(tb testing.TB, rdb redis.UniversalClient) time.Duration {
	tb.Helper()
	i := Info(tb, rdb, "cpu")
	return time.Duration((i["used_cpu_user_main_thread"] + i["used_cpu_sys_main_thread"]) * float64(time.Second))
}

// UsedMemory is Redis's used_memory: the bytes its allocator holds for
// data, tables and buffers.
func UsedMemory(tb testing.TB, rdb redis.UniversalClient) int64 {
	tb.Helper()
	return int64(Info(tb, rdb, "memory")["used_memory"])
}

// PerOp is d divided over n operations, in microseconds.
func PerOp(d time.Duration, n int) float64 {
	return float64(d.Nanoseconds()) / 1e3 / float64(n)
}

// Meter reads this process's and a Redis server's CPU around a run.
type Meter struct {
	tb       testing.TB
	rdb      redis.UniversalClient
	proc, rd time.Duration
}

// StartMeter takes the first readings.
func StartMeter(tb testing.TB, rdb redis.UniversalClient) *Meter {
	return &Meter{tb: tb, rdb: rdb, proc: ProcessCPU(), rd: RedisCPU(tb, rdb)}
}

// Report reports, per one of n operations, the CPU microseconds this
// process and Redis's main thread used since StartMeter, named
// proc-µs/<op> and redis-µs/<op>.
func (m *Meter) Report(b *testing.B, n int, op string) {
	b.ReportMetric(PerOp(ProcessCPU()-m.proc, n), "proc-µs/"+op)
	b.ReportMetric(PerOp(RedisCPU(m.tb, m.rdb)-m.rd, n), "redis-µs/"+op)
}

// ReportRate reports n operations over took as op/s and the p50 and p99 of
// lat in milliseconds.
func ReportRate(b *testing.B, n int, took time.Duration, lat []time.Duration, op string) {
	b.ReportMetric(float64(n)/took.Seconds(), op+"/s")
	b.ReportMetric(float64(Percentile(lat, 0.50).Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(Percentile(lat, 0.99).Microseconds())/1000, "p99-ms")
}
