package agent

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashwall/hashwall/agentapi"
	"github.com/hashwall/hashwall/internal/redisurl"
	"github.com/hashwall/hashwall/internal/testutil/redistest"
)

// TestSentinelFailover runs the agent on a primary and a replica behind
// three Sentinels; it waits for the replica (the default there). Two users
// buy certificates and a vendor reports claims while the primary is killed
// (SIGKILL) and the replica promoted; the old primary comes back, as a
// supervisor would restart it, and rejoins as a replica. Each sends a
// request again with the same purchase request id or batch id until it is
// answered (a 503 may have left its write behind). Afterwards every
// purchase answered 201 is the buyer's certificate on the new primary,
// every claim answered paid is recorded, each balance is what the answers
// say (nothing charged twice or lost), the ledger checks, and requests
// were answered again within 5 s of the kill.
func TestSentinelFailover(t *testing.T) {
	t.Parallel()
	s := redistest.StartSentinel(t, 1)
	rdb, err := redisurl.New(s.URL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rdb.Close() })
	e := envOn(t, rdb)
	if e.a.rep.Replicas != 1 {
		t.Fatalf("waits for %d replicas behind Sentinel, want 1", e.a.rep.Replicas)
	}
	const vendor, credit, tokens = "daily-planet", 1_000_000, 128
	vauth := e.vendor(vendor)
	holder := e.buy(e.user("holder", 100_000), 32*tokens) // the certificate the vendor's claims spend

	var (
		mu       sync.Mutex
		bought   = map[string][]string{} // user → serials answered
		paid     []string                // "vendor|seg|index" of claims answered paid
		failed   = map[int]int{}         // other answers by status
		killed   time.Time
		answered []time.Time // of requests sent after the kill
		stop     = make(chan struct{})
		wg       sync.WaitGroup
	)
	// until sends a request until it is answered, noting the other answers;
	// it gives up only when stop is closed before its first attempt.
	until := func(send func() (int, bool)) bool {
		for first := true; ; first = false {
			select {
			case <-stop:
				if first {
					return false
				}
			case <-time.After(5 * time.Millisecond):
			}
			sent := time.Now()
			code, ok := send()
			mu.Lock()
			if !ok {
				failed[code]++
			} else if !killed.IsZero() && sent.After(killed) {
				answered = append(answered, time.Now())
			}
			mu.Unlock()
			if ok {
				return true
			}
		}
	}
	for _, name := range []string{"ann", "bob"} {
		auth := e.user(name, credit)
		_, priv, _ := ed25519.GenerateKey(nil)
		pub := b64.EncodeToString(priv.Public().(ed25519.PublicKey))
		wg.Go(func() {
			for n := 0; ; n++ {
				body, _ := json.Marshal(agentapi.Purchase{Tokens: tokens, PublicKey: pub, RequestID: fmt.Sprintf("%s-%d", name, n)})
				var b agentapi.Bundle
				if !until(func() (int, bool) {
					rec := e.raw(http.MethodPost, "/v1/certificates", auth, strings.NewReader(string(body)))
					return rec.Code, rec.Code == http.StatusCreated && json.Unmarshal(rec.Body.Bytes(), &b) == nil
				}) {
					return
				}
				mu.Lock()
				bought[name] = append(bought[name], b.Serial)
				mu.Unlock()
			}
		})
	}
	wg.Go(func() {
		for n := 0; ; n++ {
			g, i := uint32(n/127), uint32(n%127+1)
			c := holder.claim(g, i, 1, vendor)
			if !until(func() (int, bool) {
				res, code := e.report(vauth, vendor, fmt.Sprintf("batch-%d", n), c)
				return code, code == 200 && len(res.Results) == 1 && res.Results[0].Verdict == agentapi.VerdictPaid
			}) {
				return
			}
			mu.Lock()
			paid = append(paid, fmt.Sprintf("%s|%d|%d", vendor, g, i))
			mu.Unlock()
		}
	})

	time.Sleep(400 * time.Millisecond)
	old := s.KillPrimary()
	mu.Lock()
	killed = time.Now() // what is sent from now on reaches no primary
	mu.Unlock()
	s.WaitPromotion(old, 10*time.Second)
	promoted := time.Since(killed)
	old.Restart()
	resumed := func() time.Duration {
		mu.Lock()
		defer mu.Unlock()
		if len(answered) == 0 {
			return 0
		}
		return answered[0].Sub(killed)
	}
	deadline := time.Now().Add(10 * time.Second)
	for resumed() == 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(time.Second)
	close(stop)
	wg.Wait()

	ctx := context.Background()
	for name, serials := range bought {
		uid := e.uid(name)
		for _, serial := range serials {
			if u, err := rdb.HGet(ctx, e.a.prefix+"c:{"+serial+"}", "user").Result(); err != nil || u != uid {
				t.Errorf("%s's certificate %s, answered 201, is gone: %q %v", name, serial, u, err)
			}
		}
		if got, want := e.balance("u:"+uid), int64(credit-tokens*len(serials)); got != want {
			t.Errorf("%s's balance %d after %d purchases, want %d", name, got, len(serials), want)
		}
	}
	verdicts, err := rdb.HGetAll(ctx, e.a.prefix+"c:{"+holder.cert.Serial.String()+"}:cl").Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range paid {
		if verdicts[k] != string(agentapi.VerdictPaid) {
			t.Errorf("claim %s, answered paid, is recorded as %q", k, verdicts[k])
		}
	}
	if got := e.balance("v:" + vendor); got != int64(len(paid)) {
		t.Errorf("vendor balance %d after %d claims paid", got, len(paid))
	}
	e.checkLedger()
	t.Logf("%d and %d purchases, %d claims paid; other answers by status %v; promotion %v after the kill, requests answered again %v after it",
		len(bought["ann"]), len(bought["bob"]), len(paid), failed, promoted.Round(time.Millisecond), resumed().Round(time.Millisecond))
	for code := range failed {
		if code != http.StatusServiceUnavailable {
			t.Errorf("answers other than success and 503: %v", failed)
		}
	}
	if r := resumed(); r == 0 || r > 5*time.Second {
		t.Fatalf("requests answered again %v after the kill", r)
	}
}
