package paywall

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/hashwall/hashwall/internal/testutil/paytest"
	"github.com/hashwall/hashwall/internal/testutil/redistest"
	"github.com/hashwall/hashwall/payword"
)

// sentinelHandler is a handler whose store is s, behind its Sentinels, with
// the fake agent, one-token articles and segments taken on their bindings.
func sentinelHandler(t *testing.T, s *redistest.Sentinel, mods ...func(*Handler)) (*env, *Handler) {
	t.Helper()
	e := &env{t: t, redis: s.Servers()[0], agent: newFakeAgent(t)}
	h := e.handler(append([]func(*Handler){func(h *Handler) {
		h.Redis = s.URL()
		h.Rules = []Rule{{Pattern: "/articles/*", Price: 1}}
		h.OfflineSegments = payword.MaxSegments
	}}, mods...)...)
	return e, h
}

// pay sends payment hdr for product and tells whether it was accepted: a
// 200 with its receipt.
func pay(h *Handler, product, hdr string) (bool, int) {
	w, es := do(h, get(product, "Authorization", hdr), ok200)
	code := status(w, es)
	return code == http.StatusOK && w.Header().Get(payword.ReceiptHeader) != "", code
}

// spend is the n-th one-token payment of a wallet (n from 0): token n%127+1
// of segment n/127.
func spend(t *testing.T, wal *paytest.Cert, n int, product string) string {
	g, i := uint32(n/127), uint32(n%127+1)
	return wal.Header(t, g, i, 1, testVendor, product)
}

// TestSentinelFailoverKeepsPayments: readers pay through the gateway, whose
// store is a primary and a replica behind three Sentinels, while the
// primary is killed (SIGKILL) and the replica promoted; the old primary
// comes back as a supervisor would restart it, and rejoins as a replica.
// Every payment answered 200 with a receipt has its claim at the agent,
// each of their tokens is refused when spent again (for another product),
// and payments are taken again within 5 s of the kill. The gateway waits
// for the replica by default (replicas 1 behind Sentinel).
func TestSentinelFailoverKeepsPayments(t *testing.T) {
	t.Parallel()
	s := redistest.StartSentinel(t, 1)
	e, h := sentinelHandler(t, s)
	if h.be.pipe.rep.Replicas != 1 {
		t.Fatalf("waits for %d replicas behind Sentinel, want 1", h.be.pipe.rep.Replicas)
	}
	const readers = 6
	type payment struct {
		wallet, n      int
		sent, answered time.Time
	}
	var (
		mu       sync.Mutex
		accepted []payment
		failed   = map[int]int{} // answers other than acceptance, by status
		killed   time.Time
		stop     = make(chan struct{})
		wg       sync.WaitGroup
	)
	wallets := make([]*paytest.Cert, readers)
	for r := range readers {
		wallets[r] = paytest.NewBank(t).Issue(t, paytest.Options{Seed: byte(70 + r)})
		wg.Go(func() {
			for n := 0; ; {
				select {
				case <-stop:
					return
				case <-time.After(5 * time.Millisecond):
				}
				sent := time.Now()
				ok, code := pay(h, "/articles/a", spend(t, wallets[r], n, "/articles/a"))
				mu.Lock()
				if ok {
					accepted = append(accepted, payment{r, n, sent, time.Now()})
					n++ // else the wallet sends the same payment again
				} else {
					failed[code]++
				}
				mu.Unlock()
			}
		})
	}
	// resumed is how long after the kill the first payment sent after it
	// was accepted (0: none yet).
	resumed := func() time.Duration {
		mu.Lock()
		defer mu.Unlock()
		var first time.Duration
		for _, p := range accepted {
			if d := p.answered.Sub(killed); !killed.IsZero() && p.sent.After(killed) && (first == 0 || d < first) {
				first = d
			}
		}
		return first
	}

	time.Sleep(400 * time.Millisecond)
	old := s.KillPrimary()
	mu.Lock()
	killed = time.Now() // what is sent from now on reaches no primary
	before := len(accepted)
	mu.Unlock()
	s.WaitPromotion(old, 10*time.Second)
	promoted := time.Since(killed)
	old.Restart() // as systemd's Restart= would, once its machine is back
	waitFor(t, "payments after the failover", 10*time.Second, func() bool { return resumed() > 0 })
	time.Sleep(time.Second)
	close(stop)
	wg.Wait()

	missing := func() []payment {
		e.agent.mu.Lock()
		defer e.agent.mu.Unlock()
		var m []payment
		for _, p := range accepted {
			g, i := p.n/127, p.n%127+1
			if _, ok := e.agent.claims[fmt.Sprint(wallets[p.wallet].Serial, g, i)]; !ok {
				m = append(m, p)
			}
		}
		return m
	}
	deadline := time.Now().Add(10 * time.Second)
	for len(missing()) > 0 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	again := 0
	for _, p := range accepted {
		if ok, _ := pay(h, "/articles/z", spend(t, wallets[p.wallet], p.n, "/articles/z")); ok {
			again++
		}
	}
	t.Logf("%d payments accepted (%d before the kill), other answers by status %v; promotion %v after the kill, payments taken again %v after it",
		len(accepted), before, failed, promoted.Round(time.Millisecond), resumed().Round(time.Millisecond))
	if m := missing(); len(m) > 0 || again > 0 {
		t.Fatalf("%d accepted payments without their claim at the agent (%v), %d spent tokens accepted again", len(m), m, again)
	}
	if len(accepted)-before < 4*readers {
		t.Fatalf("only %d payments accepted after the failover", len(accepted)-before)
	}
	for code := range failed {
		if code != http.StatusServiceUnavailable {
			t.Fatalf("answers other than 200 and 503 during the failover: %v", failed)
		}
	}
	if resumed() > 5*time.Second {
		t.Fatalf("payments taken again only %v after the kill", resumed())
	}
}

// TestSentinelFailoverLosesUnreplicated shows the loss the wait prevents,
// deterministically. The replica's stream is held (CLIENT PAUSE WRITE on
// it: it receives the primary's writes but does not apply them), a reader
// pays, the primary is killed, and the replica, which never applied the
// payment, is promoted. Without the wait (replicas -1) the payment was
// answered 200 and is gone: its claim is on no report stream and its token
// is accepted a second time. With it (replicas 1) the payment was answered
// 503 unavailable; the wallet's repeat after the failover is accepted,
// once, and its claim is kept.
func TestSentinelFailoverLosesUnreplicated(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name     string
		replicas int
	}{{"no wait", -1}, {"wait", 1}} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			s := redistest.StartSentinel(t, 1)
			// Batch mode keeps the claims on the stream, so that the
			// agent cannot have one before the kill.
			_, h := sentinelHandler(t, s, func(h *Handler) { h.Replicas, h.Mode = c.replicas, ModeBatch })
			wal := paytest.NewBank(t).Issue(t, paytest.Options{Seed: 90})
			if ok, code := pay(h, "/articles/a", spend(t, wal, 0, "/articles/a")); !ok {
				t.Fatalf("first payment: %d", code)
			}
			s.WaitReplicas(1, 5*time.Second)
			replica := s.Servers()[1]
			if _, err := redistest.Command(replica.Addr(), "CLIENT", "PAUSE", "10000", "WRITE"); err != nil {
				t.Fatal(err)
			}
			second := spend(t, wal, 1, "/articles/a")
			ok, code := pay(h, "/articles/a", second)
			if ok != (c.replicas < 0) || !ok && code != http.StatusServiceUnavailable {
				t.Fatalf("payment with the replica behind: accepted=%v (%d)", ok, code)
			}
			old := s.KillPrimary()
			waitFor(t, "the replica to see its primary gone", 5*time.Second, func() bool {
				r, _ := redistest.Command(replica.Addr(), "INFO", "replication")
				return len(r) == 1 && strings.Contains(r[0], "master_link_status:down")
			})
			if _, err := redistest.Command(replica.Addr(), "CLIENT", "UNPAUSE"); err != nil {
				t.Fatal(err)
			}
			s.WaitPromotion(old, 10*time.Second)
			old.Restart()
			s.WaitReplicas(1, 10*time.Second)

			if c.replicas > 0 {
				if ok, code := pay(h, "/articles/a", second); !ok {
					t.Fatalf("the repeat after the failover: %d", code)
				}
			}
			claims := streamClaims(t, h)
			again, _ := pay(h, "/articles/z", spend(t, wal, 1, "/articles/z"))
			t.Logf("claims on the stream: %v; token 2 accepted again: %v", claims, again)
			switch {
			case c.replicas < 0 && (claims["/articles/a"] != 1 || !again):
				t.Fatalf("no loss without the wait: claims %v, token accepted again: %v", claims, again)
			case c.replicas > 0 && (claims["/articles/a"] != 2 || again):
				t.Fatalf("loss with the wait: claims %v, token accepted again: %v", claims, again)
			}
		})
	}
}

// streamClaims counts the claims on the batch report streams by product.
func streamClaims(t *testing.T, h *Handler) map[string]int {
	t.Helper()
	n := map[string]int{}
	for _, stream := range h.be.ks.streams(ModeBatch) {
		msgs, err := h.be.rdb.XRange(t.Context(), stream, "-", "+").Result()
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range msgs {
			var c payword.Claim
			if err := json.Unmarshal([]byte(m.Values["c"].(string)), &c); err != nil {
				t.Fatal(err)
			}
			n[c.Product]++
		}
	}
	return n
}

// TestReplicaWaitCost measures what waiting for the replica costs a
// payment through the gateway: two gateways on the same Sentinel-managed
// primary and replica, one waiting (replicas 1) and one not (-1), take
// turns, one reader at a time and then eight at once; it logs the p50 and
// p99 of each. It checks the guarantee on the way: the moment a waiting
// gateway has answered, the replica holds the payment's record.
func TestReplicaWaitCost(t *testing.T) {
	t.Parallel()
	s := redistest.StartSentinel(t, 1)
	_, waiting := sentinelHandler(t, s)
	_, direct := sentinelHandler(t, s, func(h *Handler) { h.Replicas = -1 })
	replica := s.Servers()[1]
	perRound := 100
	if raceEnabled {
		perRound = 20 // the figures mean nothing then; the check still runs
	}
	seed := byte(100)
	measure := func(h *Handler, readers int) []time.Duration {
		var mu sync.Mutex
		var took []time.Duration
		var wg sync.WaitGroup
		for range readers {
			wal := paytest.NewBank(t).Issue(t, paytest.Options{Seed: seed})
			seed++
			wg.Go(func() {
				for n := range perRound {
					p := wal.Pay(t, uint32(n/127), uint32(n%127+1), 1, testVendor, "/articles/a")
					start := time.Now()
					ok, code := pay(h, "/articles/a", p.Header())
					d := time.Since(start)
					if !ok {
						t.Errorf("payment %d: %d", n, code)
						return
					}
					if h == waiting && n%10 == 0 {
						if r, _ := redistest.Command(replica.Addr(), "EXISTS", h.be.ks.authorization(p)); len(r) != 1 || r[0] != "1" {
							t.Errorf("payment %d answered before the replica had it", n)
						}
					}
					mu.Lock()
					took = append(took, d)
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		return took
	}
	for _, c := range []struct{ readers, rounds int }{{1, 8}, {8, 2}} {
		n := c.readers
		var with, without []time.Duration
		for range c.rounds {
			without = append(without, measure(direct, n)...)
			with = append(with, measure(waiting, n)...)
		}
		slices.Sort(with)
		slices.Sort(without)
		pct := func(d []time.Duration, p int) time.Duration { return d[len(d)*p/100].Round(time.Microsecond) }
		t.Logf("%d reader(s), %d payments each way: without the wait p50 %v p99 %v; with it p50 %v p99 %v",
			n, len(with), pct(without, 50), pct(without, 99), pct(with, 50), pct(with, 99))
	}
}

// TestReplicasConfig: `replicas <n> [<timeout>]` fills the JSON fields;
// Validate refuses what the Caddyfile refuses.
func TestReplicasConfig(t *testing.T) {
	t.Parallel()
	for body, want := range map[string][2]int64{
		"paywall {\n\treplicas 2\n}":        {2, 0},
		"paywall {\n\treplicas -1\n}":       {-1, 0},
		"paywall {\n\treplicas 1 250ms\n}":  {1, int64(250 * time.Millisecond)},
		"paywall {\n\treplicas 0\n}":        {}, // refused: 0 is the JSON default
		"paywall {\n\treplicas x\n}":        {},
		"paywall {\n\treplicas 1 soon\n}":   {},
		"paywall {\n\treplicas\n}":          {},
		"paywall {\n\treplicas 1 1s 2s\n}":  {},
		"paywall {\n\treplicas 1 -1s\n}":    {},
		"paywall {\n\treplicas 99\n}":       {99, 0}, // parsed; Validate refuses it below
		"paywall {\n\treplicas 1 5s\n}":     {1, int64(5 * time.Second)},
		"paywall {\n\treplicas 1 500us\n}":  {1, int64(500 * time.Microsecond)},
		"paywall {\n\treplicas 16 1s\n}":    {16, int64(time.Second)},
		"paywall {\n\treplicas -1 100ms\n}": {-1, int64(100 * time.Millisecond)},
	} {
		var h Handler
		err := h.UnmarshalCaddyfile(caddyfile.NewTestDispenser(body))
		if (err == nil) != (want[0] != 0) || h.Replicas != int(want[0]) || int64(h.ReplicaTimeout) != want[1] {
			t.Errorf("%q: %v, %d %v", body, err, h.Replicas, time.Duration(h.ReplicaTimeout))
		}
		if err != nil {
			continue
		}
		bad := h.Replicas > 16 || h.ReplicaTimeout > caddy.Duration(time.Second) || h.ReplicaTimeout > 0 && h.ReplicaTimeout < caddy.Duration(time.Millisecond)
		for _, c := range h.checks() {
			if c.opt == "replicas" && (c.err != nil) != bad {
				t.Errorf("%q: check %v", body, c.err)
			}
		}
	}
}
