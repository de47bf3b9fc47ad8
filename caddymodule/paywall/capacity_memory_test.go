package paywall

import (
	"context"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/redis/go-redis/v9"

	"github.com/hashwall/hashwall/bench/capacity"
	"github.com/hashwall/hashwall/internal/redisurl"
)

// BenchmarkCapacityMemory measures the vendor Redis's memory per reader,
// for docs/scaling.md: b.N new readers each pay once through the handler
// (a certificate and a segment of their own, taken offline as by
// default) in batch mode, whose first shipment is due only after the run,
// so that their claims stay queued as in an agent outage. Then Redis's
// used_memory is read and the keys are deleted class by class, told apart
// by type and time to live rather than by name: expiring hashes (segment
// states, until the certificate's expiry), strings that live as long as a
// grant (authorization records), streams (the queued claims). What stays
// is the longer-lived strings (the certificates' offline counts) and the
// hash tables' slots of every key. Each is reported in bytes per reader.
//
//	go test ./caddymodule/paywall -run '^$' -bench CapacityMemory -benchtime 50000x
func BenchmarkCapacityMemory(b *testing.B) {
	e := newEnv(b)
	h := e.handler(func(h *Handler) {
		h.BatchInterval = caddy.Duration(maxBatchInterval)
		h.Rules = []Rule{{Pattern: capacity.Product, Price: capacityPrice, Mode: ModeBatch}}
	})
	rdb, err := redisurl.New(e.redis.URL())
	if err != nil {
		b.Fatal(err)
	}
	defer rdb.Close()
	hdrs := make([]string, b.N)
	for i, p := range capacity.NewReaders(b, b.N, capacityPrice, testVendor) {
		hdrs[i] = p.Header()
	}
	before := capacity.UsedMemory(b, rdb)
	b.ResetTimer()
	for i, hdr := range hdrs {
		if w, es := do(h, get(capacity.Product, "Authorization", hdr), ok200); status(w, es) != 200 {
			b.Fatalf("reader %d: %d %s", i, status(w, es), w.Header().Get("Payment-Error"))
		}
	}
	b.StopTimer()
	kill(h) // nothing reads or changes the keys while they are measured
	after := capacity.UsedMemory(b, rdb)
	per := func(n int64) float64 { return float64(n) / float64(b.N) }
	b.ReportMetric(per(after-before), "B/reader")

	classes := keyClasses(b, rdb, defaultTTL+time.Second)
	for _, class := range []string{"state", "auth", "stream", "other"} {
		m := capacity.UsedMemory(b, rdb)
		for keys := classes[class]; len(keys) > 0; keys = keys[min(len(keys), 1000):] {
			if err := rdb.Del(context.Background(), keys[:min(len(keys), 1000)]...).Err(); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(per(m-capacity.UsedMemory(b, rdb)), class+"-B")
	}
	// The offline counts stay, and so the tables keep their size: deleting
	// them too would let Redis shrink the tables at a moment of its own.
	b.ReportMetric(per(capacity.UsedMemory(b, rdb)-before), "offline+slots-B")
	if n := len(classes["state"]); n != b.N {
		b.Fatalf("%d segment states for %d readers", n, b.N)
	}
}

// keyClasses sorts every key by type and time to live: expiring hashes are states,
// strings living at most grant are authorization records, other strings
// offline counts, streams the queued claims.
func keyClasses(b *testing.B, rdb redis.UniversalClient, grant time.Duration) map[string][]string {
	ctx := context.Background()
	var keys []string
	iter := rdb.Scan(ctx, 0, "*", 1000).Iterator()
	for iter.Next(ctx) {
		keys = append(keys, iter.Val())
	}
	if err := iter.Err(); err != nil {
		b.Fatal(err)
	}
	types := make([]*redis.StatusCmd, len(keys))
	ttls := make([]*redis.DurationCmd, len(keys))
	if _, err := rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, k := range keys {
			types[i], ttls[i] = p.Type(ctx, k), p.PTTL(ctx, k)
		}
		return nil
	}); err != nil {
		b.Fatal(err)
	}
	out := map[string][]string{}
	for i, k := range keys {
		class := "other"
		switch ttl := ttls[i].Val(); types[i].Val() {
		case "hash":
			if ttl > 0 { // the pinned keys' hash lives for ever
				class = "state"
			}
		case "stream":
			class = "stream"
		case "string":
			if ttl > 0 && ttl <= grant {
				class = "auth"
			} else if ttl > grant {
				class = "offline"
			}
		}
		out[class] = append(out[class], k)
	}
	return out
}
