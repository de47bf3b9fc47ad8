package agent

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/hashwall/hashwall/internal/redisurl"
	"github.com/hashwall/hashwall/internal/testutil/redistest"
)

// TestStalledStoreTimesOut: with its Redis stalled (SIGSTOP), the agent
// answers 503 after the store timeout (redisurl.Timeout, 2 s), not after
// go-redis's default 5 s.
func TestStalledStoreTimesOut(t *testing.T) {
	srv := redistest.Start(t)
	rdb, err := redisurl.New(srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer rdb.Close()
	cfg := testConfig(rdb, &clock{t: time.Now()})
	cfg.Ephemeral = false
	a, err := New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(a)
	defer hs.Close()
	get := func() (int, time.Duration) {
		start := time.Now()
		resp, err := http.Get(hs.URL + "/v1/crl?since=0")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode, time.Since(start)
	}
	if code, _ := get(); code != 200 {
		t.Fatalf("crl: %d", code)
	}
	srv.Pause()
	defer srv.Resume()
	code, took := get()
	if code != http.StatusServiceUnavailable || took > redisurl.Timeout+500*time.Millisecond {
		t.Fatalf("stalled store: %d after %v, want 503 after about %v", code, took, redisurl.Timeout)
	}
	t.Logf("503 after %v", took)
}
