package redisurl

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hashwall/hashwall/internal/testutil/redistest"
)

// TestStalledServerTimesOut: against a stalled server (SIGSTOP) a command
// fails after Timeout without a deadline of its own (go-redis's retries
// included), after the caller's deadline when it is shorter, and after
// read_timeout when the URL sets it; a blocking read on a live server may
// wait past Timeout.
func TestStalledServerTimesOut(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	ctx := context.Background()
	cl, err := New(srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	long, err := New(srv.URL() + "?read_timeout=3s")
	if err != nil {
		t.Fatal(err)
	}
	defer long.Close()
	if err := cl.XGroupCreateMkStream(ctx, "s", "g", "0").Err(); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	err = cl.XReadGroup(ctx, &redis.XReadGroupArgs{Group: "g", Consumer: "c", Streams: []string{"s", ">"}, Block: 2500 * time.Millisecond}).Err()
	if !errors.Is(err, redis.Nil) || time.Since(start) < 2500*time.Millisecond {
		t.Fatalf("blocking read: %v after %v", err, time.Since(start))
	}
	if err := long.Ping(ctx).Err(); err != nil {
		t.Fatal(err)
	}

	srv.Pause()
	defer srv.Resume()
	for _, c := range []struct {
		name   string
		cl     redis.UniversalClient
		ctx    time.Duration // 0: no deadline
		within time.Duration
	}{
		{"no deadline", cl, 0, Timeout},
		{"shorter deadline", cl, 500 * time.Millisecond, 500 * time.Millisecond},
		{"read_timeout=3s", long, 0, 3 * time.Second},
	} {
		cctx, cancel := ctx, context.CancelFunc(func() {})
		if c.ctx > 0 {
			cctx, cancel = context.WithTimeout(ctx, c.ctx)
		}
		start := time.Now()
		err := c.cl.Get(cctx, "k").Err()
		took := time.Since(start)
		cancel()
		if err == nil || took < c.within-100*time.Millisecond || took > c.within+500*time.Millisecond {
			t.Fatalf("%s: %v after %v, want an error after about %v", c.name, err, took, c.within)
		}
		t.Logf("%s: error after %v", c.name, took)
	}
}
