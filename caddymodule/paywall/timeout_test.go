package paywall

import (
	"net/http"
	"testing"
	"time"

	"github.com/hashwall/hashwall/internal/testutil/paytest"
)

// TestStalledStoreTimesOut: a Redis that stops answering (SIGSTOP) turns
// a payment into a 503 after the payment's 2 s store timeout, not after
// go-redis's default 5 s read timeout.
func TestStalledStoreTimesOut(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	h := e.handler()
	wal := paytest.NewBank(t).Issue(t, paytest.Options{Seed: 53})
	if w, es := do(h, get("/articles/a", "Authorization", wal.Header(t, 0, 2, 2, testVendor, "/articles/a")), nil); status(w, es) != 200 {
		t.Fatalf("pay: %d", status(w, es))
	}
	e.redis.Pause()
	defer e.redis.Resume()
	start := time.Now()
	w, es := do(h, get("/articles/b", "Authorization", wal.Header(t, 0, 4, 2, testVendor, "/articles/b")), nil)
	took := time.Since(start)
	if status(w, es) != http.StatusServiceUnavailable {
		t.Fatalf("stalled store: %d", status(w, es))
	}
	if took > storeTimeout+500*time.Millisecond {
		t.Fatalf("503 after %v, want about %v", took, storeTimeout)
	}
	t.Logf("503 after %v", took)
}
