package paywall

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/hashwall/hashwall/bench/capacity"
	"github.com/hashwall/hashwall/internal/redisurl"
	"github.com/hashwall/hashwall/internal/testutil/redistest"
	"github.com/hashwall/hashwall/payword"
)

// capacityPrice is the price of the capacity benchmarks' article, in tokens.
const capacityPrice = 2

// BenchmarkCapacityScript is the accept script alone, for docs/scaling.md:
// every payment's keys and arguments as record builds them, sent through
// the gateway's scriptPipe (straight to Redis up to directMax in flight,
// pipelined beyond) by conc callers at once, to one real redis-server with
// the AOF on and appendfsync always (on /dev/shm, or on the disk). Every
// payment is a new reader's, so none contends. It reports payments/s and
// the CPU of Redis's main thread per payment, which bounds one shard.
// "admit" also runs the offline-segment count that a new reader's first
// payment costs before its accept script (admitSegment).
//
//	go test ./caddymodule/paywall -run '^$' -bench CapacityScript -benchtime 50000x
func BenchmarkCapacityScript(b *testing.B) {
	for _, c := range []struct {
		name  string
		conc  int
		admit bool
		opts  []redistest.Option
	}{
		{"conc=1", 1, false, nil},
		{"conc=8", 8, false, nil},
		{"conc=64", 64, false, nil},
		{"conc=256", 256, false, nil},
		{"conc=64/admit", 64, true, nil},
		{"conc=64/disk", 64, false, []redistest.Option{redistest.WithDisk()}},
	} {
		b.Run(c.name, func(b *testing.B) { benchScript(b, c.conc, c.admit, c.opts...) })
	}
}

func benchScript(b *testing.B, conc int, admit bool, opts ...redistest.Option) {
	srv := redistest.Start(b, opts...)
	rdb, err := redisurl.New(srv.URL()) // the gateway's client, pool and all
	if err != nil {
		b.Fatal(err)
	}
	defer rdb.Close()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	pipe := newScriptPipe(ctx, rdb, redisurl.Replication{}, func(f func(context.Context)) { wg.Go(func() { f(ctx) }) })
	ks := newKeyspace(testVendor)

	type job struct {
		p *payword.Payment
		a acceptance
	}
	pays := capacity.NewReaders(b, b.N, capacityPrice, testVendor)
	jobs := make([]job, len(pays))
	for i, p := range pays {
		jobs[i] = job{p, capacityAcceptance(p, ks, defaultTTL)}
	}
	b.ResetTimer()
	m := capacity.StartMeter(b, rdb)
	took, lat, err := capacity.Run(capacity.Split(jobs, conc), func(j job) error {
		if admit {
			n, err := offlineScript.Run(ctx, rdb,
				[]string{ks.state(j.p.Cert.Serial, j.p.Segment), ks.bound(j.p.Cert.Serial, j.p.Segment), ks.offline(j.p.Cert.Serial)},
				strconv.FormatInt(j.p.Cert.ExpiresAt+3600, 10)).Int64()
			if err != nil || n != 1 {
				return fmt.Errorf("offline count %d: %v", n, err)
			}
		}
		rec, err := accept(ctx, pipe, ks, j.p, j.a)
		if err == nil && rec != j.a.Record {
			err = fmt.Errorf("a new payment found record %q", rec)
		}
		return err
	})
	b.StopTimer()
	if err != nil {
		b.Fatal(err)
	}
	capacity.ReportRate(b, b.N, took, lat, "payments")
	m.Report(b, b.N, "pay")
}

// capacityAcceptance is what record asks accept to store for p.
func capacityAcceptance(p *payword.Payment, ks keyspace, ttl time.Duration) acceptance {
	auth, iat := newAuth(), time.Now().Unix()
	claim, _ := json.Marshal(payword.Claim{
		Serial: p.Cert.Serial, Segment: p.Segment, Binding: bindingRaw(p), Index: p.Index,
		Token: p.Token, Amount: p.Amount, Product: p.Product, Auth: auth, Time: iat,
	})
	return acceptance{
		Record:      fmt.Sprintf("%s %d %d", auth, iat, iat+int64(ttl/time.Second)),
		RecordTTL:   int64(ttl/time.Second) + 1,
		Claim:       claim,
		Stream:      ks.streamOf(ModeAlmostOnline, p.Cert.Serial),
		StateExpiry: p.Cert.ExpiresAt + 3600,
	}
}
