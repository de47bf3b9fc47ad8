package paywall

import (
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/hashwall/hashwall/internal/testutil/paytest"
)

// TestE2EDoubleSpendExposure: a reader binds the same segments of one
// certificate at two almost_online vendors (two gateways, real agent, real
// Redis), segment after segment and both at once, then keeps spending what
// was accepted until the revocation stops it. It measures what was spent
// twice. With offline_segments 1 (the default) at most one segment is
// bound at both vendors, so at most m = 128 tokens per vendor are spent
// twice; with the old unlimited behaviour (offline_segments 1000) nearly
// every segment is.
func TestE2EDoubleSpendExposure(t *testing.T) {
	for _, offline := range []int{0, 1000} {
		t.Run(fmt.Sprintf("offline_segments=%d", offline), func(t *testing.T) {
			w := newWorld(t, worldOpts{globe: true, offline: offline})
			const segs = 12
			wal := w.buy(128 * (segs + 2))
			bases := [2]string{w.news, w.globe}
			vendors := [2]string{testVendor, globeVendor}
			// spent[v][g] is the highest index vendor v accepted in segment g.
			var spent [2][segs]uint32
			pay := func(v int, g, idx uint32) int {
				prod := fmt.Sprintf("/articles/x-%d-%d", g, idx)
				var resp *http.Response
				// A gateway just started may not trust the bank's keys yet:
				// 503 unavailable, and a wallet sends the payment again.
				for try := 0; ; try++ {
					req, _ := http.NewRequest("GET", bases[v]+prod, nil)
					req.Header.Set("Authorization", wal.Header(t, g, idx, 2, vendors[v], prod))
					var err error
					if resp, err = w.hc.Do(req); err != nil {
						t.Error(err)
						return 0
					}
					resp.Body.Close()
					if resp.StatusCode != http.StatusServiceUnavailable || try == 50 {
						break
					}
					time.Sleep(100 * time.Millisecond)
				}
				if resp.StatusCode != 200 {
					t.Logf("%s at %s: %d %s", prod, vendors[v], resp.StatusCode, resp.Header.Get("Payment-Error"))
				}
				return resp.StatusCode
			}
			start := time.Now()
			both := 0
			for g := range uint32(segs) {
				var wg sync.WaitGroup
				var codes [2]int
				for v := range 2 {
					wg.Go(func() { codes[v] = pay(v, g, 2) })
				}
				wg.Wait()
				for v := range 2 {
					if codes[v] == 200 {
						spent[v][g] = 2
					}
				}
				if codes == [2]int{200, 200} {
					both++
				}
			}
			// Then every segment accepted at both, further, at both,
			// until the revocation refuses it (or 3 s).
			for time.Since(start) < 3*time.Second {
				progress := false
				for g := range uint32(segs) {
					for v := range 2 {
						if spent[0][g] > 0 && spent[1][g] > 0 && spent[v][g] < 128 {
							if pay(v, g, spent[v][g]+2) == 200 {
								spent[v][g] += 2
								progress = true
							}
						}
					}
				}
				if !progress {
					break
				}
			}
			took := time.Since(start)
			var twice [2]uint32 // tokens spent at each vendor in segments spent at both
			for g := range segs {
				if spent[0][g] > 0 && spent[1][g] > 0 {
					twice[0] += spent[0][g]
					twice[1] += spent[1][g]
				}
			}
			t.Logf("offline_segments=%d: %d of %d segments accepted at both vendors; tokens spent in them: %d at %s, %d at %s; attack over after %v",
				offline, both, segs, twice[0], vendors[0], twice[1], vendors[1], took.Round(time.Millisecond))
			// The bank learns of the double-spend and revokes the certificate.
			waitFor(t, "the double-spend's fraud case", 10*time.Second, func() bool { return len(w.fraud()) > 0 })
			if offline == 0 {
				if both > 1 || twice[0] > 128 || twice[1] > 128 {
					t.Fatalf("exposure above the bound: %d segments, %v tokens", both, twice)
				}
			} else if both < 2 {
				t.Fatalf("without the bound only %d segments were spent twice: the attack did not work", both)
			}
			w.ledgerOK()
		})
	}
}

// TestOfflineSegmentsBound: with the default, one new segment of a
// certificate is taken on its binding alone, even when many arrive at
// once at different gateways of the vendor; every other is registered with
// the agent first, and refused while the agent is unreachable. Segments
// already known here are not counted again.
func TestOfflineSegmentsBound(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	h := e.handler()
	h2 := e.handler(func(h *Handler) { h.CRLInterval = caddy.Duration(150 * time.Millisecond) }) // its own backend
	if h.be == h2.be {
		t.Fatal("one backend")
	}
	wal := paytest.NewBank(t).Issue(t, paytest.Options{Seed: 70})
	const segs = 6
	var wg sync.WaitGroup
	codes := make([]int, segs)
	for g := range uint32(segs) {
		wg.Go(func() {
			hh := []*Handler{h, h2}[g%2]
			w, es := do(hh, get("/articles/a", "Authorization", wal.Header(t, g, 2, 2, testVendor, "/articles/a")), nil)
			codes[g] = status(w, es)
		})
	}
	wg.Wait()
	for g, c := range codes {
		if c != 200 {
			t.Fatalf("segment %d: %d", g, c)
		}
	}
	if n := e.agent.bindingCount(); n != segs-1 {
		t.Fatalf("%d of %d new segments registered with the agent, want %d", n, segs, segs-1)
	}
	// Known segments: no registration, and not counted again.
	for g := range uint32(segs) {
		if w, es := do(h, get("/articles/b", "Authorization", wal.Header(t, g, 4, 2, testVendor, "/articles/b")), nil); status(w, es) != 200 {
			t.Fatalf("segment %d again: %d", g, status(w, es))
		}
	}
	if n := e.agent.bindingCount(); n != segs-1 {
		t.Fatalf("known segments registered again: %d", n)
	}
	// Past the bound, a new segment needs the agent.
	e.agent.setDown(true)
	if w, es := do(h2, get("/articles/a", "Authorization", wal.Header(t, segs, 2, 2, testVendor, "/articles/a")), nil); status(w, es) != http.StatusServiceUnavailable {
		t.Fatalf("new segment with the agent down: %d", status(w, es))
	}
	// Another certificate has its own offline segment.
	other := paytest.NewBank(t).Issue(t, paytest.Options{Seed: 71})
	if w, es := do(h, get("/articles/a", "Authorization", other.Header(t, 0, 2, 2, testVendor, "/articles/a")), nil); status(w, es) != 200 {
		t.Fatalf("another certificate's first segment with the agent down: %d", status(w, es))
	}
	e.agent.setDown(false)

	// offline_segments -1: every new segment is registered.
	e2 := newEnv(t)
	h3 := e2.handler(func(h *Handler) { h.OfflineSegments = -1 })
	if w, es := do(h3, get("/articles/a", "Authorization", wal.Header(t, 0, 2, 2, testVendor, "/articles/a")), nil); status(w, es) != 200 || e2.agent.bindingCount() != 1 {
		t.Fatalf("offline_segments -1: %d, %d registrations", status(w, es), e2.agent.bindingCount())
	}
}

func TestOfflineSegmentsCaddyfile(t *testing.T) {
	for body, want := range map[string]int{
		"paywall {\n\toffline_segments 3\n}":  3,
		"paywall {\n\toffline_segments -1\n}": -1,
		"paywall {\n\toffline_segments 0\n}":  0, // refused: 0 is the JSON default
		"paywall {\n\toffline_segments x\n}":  0,
		"paywall {\n\toffline_segments\n}":    0,
	} {
		var h Handler
		err := h.UnmarshalCaddyfile(caddyfile.NewTestDispenser(body))
		if (err == nil) != (want != 0) || h.OfflineSegments != want {
			t.Fatalf("%q: %v, %d", body, err, h.OfflineSegments)
		}
	}
}
