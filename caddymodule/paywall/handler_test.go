package paywall

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/redis/go-redis/v9"

	"github.com/hashwall/hashwall/agentapi"
	"github.com/hashwall/hashwall/internal/testutil/paytest"
	"github.com/hashwall/hashwall/internal/testutil/redistest"
	"github.com/hashwall/hashwall/payword"
)

func TestChallenge(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	h := e.handler()

	w, es := do(h, get("/articles/moon", "Accept", "application/json"), nil)
	if status(w, es) != http.StatusPaymentRequired {
		t.Fatalf("status %d, want 402", status(w, es))
	}
	ch, err := payword.ParseChallenge(w.Header().Get("WWW-Authenticate"))
	if err != nil || ch.Price != 2 || ch.Product != "/articles/moon" || ch.Vendor != testVendor || ch.Agent != e.agent.URL {
		t.Fatalf("challenge %+v, %v", ch, err)
	}
	if w.Header().Get("Cache-Control") != "no-store" || w.Header().Get("Content-Type") != "application/problem+json" {
		t.Fatalf("headers %v", w.Header())
	}
	var p problem
	if err := json.Unmarshal(w.Body.Bytes(), &p); err != nil || p.Status != 402 || p.Price != 2 {
		t.Fatalf("problem %+v, %v", p, err)
	}

	w, _ = do(h, get("/articles/moon", "Accept", "text/html,*/*"), nil)
	if !strings.HasPrefix(w.Header().Get("Content-Type"), "text/html") || !strings.Contains(w.Body.String(), "costs 2 tokens") {
		t.Fatalf("html page: %s", w.Body.String())
	}

	r := get("/articles/moon")
	r.Method = http.MethodHead
	w, _ = do(h, r, nil)
	if w.Code != http.StatusPaymentRequired || w.Body.Len() != 0 {
		t.Fatalf("HEAD: %d with %d body bytes", w.Code, w.Body.Len())
	}

	// The scope of a day's issue is the prefix.
	w, _ = do(h, get("/issues/2026-11-24/page1"), nil)
	ch, _ = payword.ParseChallenge(w.Header().Get("WWW-Authenticate"))
	if ch.Product != "/issues/2026-11-24/" || ch.Price != 20 {
		t.Fatalf("issue challenge %+v", ch)
	}

	// Free and unpriced paths pass.
	for _, p := range []string{"/articles/index.html", "/about"} {
		if w, es := do(h, get(p), nil); status(w, es) != 200 {
			t.Fatalf("%s: %d", p, status(w, es))
		}
	}
}

func TestPayThenGrant(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	h := e.handler(func(h *Handler) { h.TTL = 0 })
	wal := paytest.NewBank(t).Issue(t, paytest.Options{Seed: 1})

	w, es := do(h, get("/articles/moon", "Authorization", wal.Header(t, 0, 2, 2, testVendor, "/articles/moon")), nil)
	if status(w, es) != 200 || w.Body.String() != "content of /articles/moon" {
		t.Fatalf("pay: %d %q %v", status(w, es), w.Body.String(), w.Header())
	}
	receipt := w.Header().Get("Payment-Receipt")
	ck := w.Result().Cookies()
	if len(ck) != 1 || ck[0].Name != grantCookie || ck[0].Value != receipt || ck[0].Path != "/articles/moon" ||
		!ck[0].HttpOnly || ck[0].Secure || ck[0].SameSite != http.SameSiteLaxMode || ck[0].MaxAge < 86000 {
		t.Fatalf("cookie %+v", ck)
	}
	if w.Header().Get("X-User") != "u:alice" || !payword.ValidID(w.Header().Get("X-Auth")) {
		t.Fatalf("placeholders: user %q auth %q", w.Header().Get("X-User"), w.Header().Get("X-Auth"))
	}

	// The grant opens the product again, by cookie or bearer, without paying.
	for _, r := range []*http.Request{
		get("/articles/moon", "Cookie", grantCookie+"="+receipt),
		get("/articles/moon/", "Authorization", "Bearer "+receipt),
	} {
		if w, es := do(h, r, nil); status(w, es) != 200 {
			t.Fatalf("grant reuse: %d", status(w, es))
		}
	}
	// Not another product.
	if w, es := do(h, get("/articles/mars", "Cookie", grantCookie+"="+receipt), nil); status(w, es) != 402 {
		t.Fatalf("grant for another product: %d", status(w, es))
	}

	// A day's issue: one payment opens every page of that day.
	w, es = do(h, get("/issues/2026-11-24/p1", "Authorization", wal.Header(t, 0, 22, 20, testVendor, "/issues/2026-11-24/")), nil)
	if status(w, es) != 200 {
		t.Fatalf("issue pay: %d", status(w, es))
	}
	g := w.Header().Get("Payment-Receipt")
	if w, es := do(h, get("/issues/2026-11-24/p2", "Cookie", grantCookie+"="+g), nil); status(w, es) != 200 {
		t.Fatalf("issue page 2: %d", status(w, es))
	}
	if w, es := do(h, get("/issues/2026-11-25/p1", "Cookie", grantCookie+"="+g), nil); status(w, es) != 402 {
		t.Fatalf("next day's issue: %d", status(w, es))
	}
}

func TestReplayRetryAndSkips(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	h := e.handler()
	wal := paytest.NewBank(t).Issue(t, paytest.Options{Seed: 2})
	first := wal.Header(t, 3, 2, 2, testVendor, "/articles/a")

	w1, es := do(h, get("/articles/a", "Authorization", first), nil)
	if status(w1, es) != 200 {
		t.Fatalf("pay: %d", status(w1, es))
	}
	// A retry of the same payment gets the same grant and spends nothing.
	w2, es := do(h, get("/articles/a", "Authorization", first), nil)
	if status(w2, es) != 200 || w2.Header().Get("Payment-Receipt") != w1.Header().Get("Payment-Receipt") {
		t.Fatalf("retry: %d, same grant %v", status(w2, es), w2.Header().Get("Payment-Receipt") == w1.Header().Get("Payment-Receipt"))
	}
	// The same tokens for another product are a replay.
	w, es := do(h, get("/articles/b", "Authorization", wal.Header(t, 3, 2, 2, testVendor, "/articles/b")), nil)
	if status(w, es) != http.StatusConflict || w.Header().Get("Payment-Error") != "replay" {
		t.Fatalf("replay: %d %q", status(w, es), w.Header().Get("Payment-Error"))
	}
	// Skipping tokens 3..9 is allowed (read-and-retry path).
	if w, es := do(h, get("/articles/b", "Authorization", wal.Header(t, 3, 12, 2, testVendor, "/articles/b")), nil); status(w, es) != 200 {
		t.Fatalf("skip: %d", status(w, es))
	}
	// Going back is not.
	w, es = do(h, get("/articles/c", "Authorization", wal.Header(t, 3, 8, 2, testVendor, "/articles/c")), nil)
	if status(w, es) != http.StatusConflict {
		t.Fatalf("back: %d", status(w, es))
	}
	// Overlapping the spent range is not.
	w, es = do(h, get("/articles/c", "Authorization", wal.Header(t, 3, 13, 2, testVendor, "/articles/c")), nil)
	if status(w, es) != http.StatusConflict {
		t.Fatalf("overlap: %d", status(w, es))
	}
	// Contiguous after the skip: one round trip.
	if w, es := do(h, get("/articles/c", "Authorization", wal.Header(t, 3, 14, 2, testVendor, "/articles/c")), nil); status(w, es) != 200 {
		t.Fatalf("contiguous: %d", status(w, es))
	}
}

// Two gateways sharing one Redis, each with its own caches, race to accept
// the same tokens for different products: exactly one wins.
func TestConcurrentDoubleSpend(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	h1 := e.handler()
	h2 := e.handler(func(h *Handler) { h.CRLInterval *= 2 }) // another backend
	if h1.be == h2.be {
		t.Fatal("handlers share a backend")
	}
	wal := paytest.NewBank(t).Issue(t, paytest.Options{Seed: 3})
	const n = 16
	var ok atomic.Int32
	var wg sync.WaitGroup
	for i := range n {
		hdr := wal.Header(t, 5, 2, 2, testVendor, "/articles/x"+string(rune('a'+i)))
		h := h1
		if i%2 == 1 {
			h = h2
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			w, es := do(h, get("/articles/x"+string(rune('a'+i)), "Authorization", hdr), nil)
			switch status(w, es) {
			case 200:
				ok.Add(1)
			case http.StatusConflict:
			default:
				t.Errorf("status %d", status(w, es))
			}
		}()
	}
	wg.Wait()
	if ok.Load() != 1 {
		t.Fatalf("%d payments accepted, want exactly 1", ok.Load())
	}
}

func TestRejectionsSpendNothing(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	h := e.handler()
	wal := paytest.NewBank(t).Issue(t, paytest.Options{Seed: 4})
	forged := paytest.NewBank(t).Issue(t, paytest.Options{Seed: 5})
	if _, err := forged.Sign(payword.SigningKey{ID: paytest.KeyID, Key: ed25519Key(0x77)}); err != nil {
		t.Fatal(err)
	}
	expired := paytest.NewBank(t).Issue(t, paytest.Options{Seed: 6})
	expired.ExpiresAt = time.Now().Unix() - 1
	expired.IssuedAt = expired.ExpiresAt - 100
	if _, err := expired.Sign(expired.Bank.Key); err != nil {
		t.Fatal(err)
	}
	badToken := payword.NewPayment(wal.Certificate, wal.Tree, payword.Secret{9}, wal.Binding(t, 0, testVendor), 0, 2, 2, testVendor, "/articles/a").Header()
	otherBinding := payword.NewPayment(wal.Certificate, wal.Tree, wal.K, wal.Binding(t, 1, testVendor), 0, 2, 2, testVendor, "/articles/a").Header()

	for _, tc := range []struct {
		name, hdr, code string
		status          int
	}{
		{"wrong vendor", wal.Header(t, 0, 2, 2, "other-vendor", "/articles/a"), "wrong_vendor", 402},
		{"underpaid", wal.Header(t, 0, 1, 1, testVendor, "/articles/a"), "underpaid", 402},
		{"wrong product", wal.Header(t, 0, 2, 2, testVendor, "/articles/b"), "wrong_product", 402},
		{"bad token", badToken, "bad_token", 403},
		{"binding of another segment", otherBinding, "bad_binding", 403},
		{"forged certificate", forged.Header(t, 0, 2, 2, testVendor, "/articles/a"), "bad_signature", 403},
		{"expired certificate", expired.Header(t, 0, 2, 2, testVendor, "/articles/a"), "certificate_expired", 402},
		{"not base64", "PayWord !!!", "malformed", 400},
		{"oversized", "PayWord " + strings.Repeat("A", payword.MaxPaymentHeader), "too_large", 431},
		{"index out of range", wal.Header(t, 0, 2, 2, testVendor, "/articles/a")[:20], "malformed", 400},
	} {
		w, es := do(h, get("/articles/a", "Authorization", tc.hdr), nil)
		if status(w, es) != tc.status || w.Header().Get("Payment-Error") != tc.code {
			t.Errorf("%s: %d %q, want %d %q", tc.name, status(w, es), w.Header().Get("Payment-Error"), tc.status, tc.code)
		}
	}
	// Two Authorization headers are ambiguous.
	r := get("/articles/a", "Authorization", wal.Header(t, 0, 2, 2, testVendor, "/articles/a"), "Authorization", "Bearer x")
	if w, es := do(h, r, nil); status(w, es) != 400 {
		t.Errorf("two Authorization headers: %d", status(w, es))
	}
	// Nothing was spent: the honest payment of those tokens still goes through.
	if w, es := do(h, get("/articles/a", "Authorization", wal.Header(t, 0, 2, 2, testVendor, "/articles/a")), nil); status(w, es) != 200 {
		t.Fatalf("honest payment after rejections: %d %q", status(w, es), w.Header().Get("Payment-Error"))
	}
}

func TestRedisDown(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	h := e.handler()
	wal := paytest.NewBank(t).Issue(t, paytest.Options{Seed: 7})
	w, es := do(h, get("/articles/a", "Authorization", wal.Header(t, 0, 2, 2, testVendor, "/articles/a")), nil)
	if status(w, es) != 200 {
		t.Fatalf("pay: %d", status(w, es))
	}
	grant := w.Header().Get("Payment-Receipt")
	e.redis.Kill()

	w, es = do(h, get("/articles/b", "Authorization", wal.Header(t, 0, 4, 2, testVendor, "/articles/b")), nil)
	if status(w, es) != http.StatusServiceUnavailable || w.Body.String() != "" {
		t.Fatalf("payment with Redis down: %d %q", status(w, es), w.Body.String())
	}
	if w, es := do(h, get("/articles/a", "Cookie", grantCookie+"="+grant), nil); status(w, es) != 200 {
		t.Fatalf("grant with Redis down: %d", status(w, es))
	}
	e.redis.Restart()
	waitFor(t, "payments after Redis is back", 5*time.Second, func() bool {
		w, es := do(h, get("/articles/b", "Authorization", wal.Header(t, 0, 4, 2, testVendor, "/articles/b")), nil)
		return status(w, es) == 200
	})
}

func TestReportingAtLeastOnce(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	h := e.handler()
	wal := paytest.NewBank(t).Issue(t, paytest.Options{Seed: 8})
	for i := uint32(1); i <= 5; i++ {
		if w, es := do(h, get("/articles/a", "Authorization", wal.Header(t, 0, 2*i, 2, testVendor, "/articles/a")), nil); status(w, es) != 200 {
			t.Fatalf("pay %d: %d", i, status(w, es))
		}
	}
	waitFor(t, "claims at the agent within a second", time.Second, func() bool { return e.agent.claimCount() == 5 })

	// Agent down: claims wait in the stream; delivered when it is back.
	e.agent.setDown(true)
	for i := uint32(6); i <= 10; i++ {
		if w, es := do(h, get("/articles/a", "Authorization", wal.Header(t, 0, 2*i, 2, testVendor, "/articles/a")), nil); status(w, es) != 200 {
			t.Fatalf("pay %d: %d", i, status(w, es))
		}
	}
	time.Sleep(300 * time.Millisecond)
	if n := e.agent.claimCount(); n != 5 {
		t.Fatalf("%d claims while the agent is down", n)
	}
	e.agent.setDown(false)
	waitFor(t, "backlog delivered", 5*time.Second, func() bool { return e.agent.claimCount() == 10 })
	waitFor(t, "stream drained", 2*time.Second, func() bool {
		return streamLen(t, h, ModeAlmostOnline) == 0
	})
}

func TestCRLFromAgent(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	h := e.handler()
	wal := paytest.NewBank(t).Issue(t, paytest.Options{Seed: 10})
	if w, es := do(h, get("/articles/a", "Authorization", wal.Header(t, 0, 2, 2, testVendor, "/articles/a")), nil); status(w, es) != 200 {
		t.Fatalf("pay: %d", status(w, es))
	}
	e.agent.revoke(wal.Serial)
	time.Sleep(time.Second)
	w, es := do(h, get("/articles/b", "Authorization", wal.Header(t, 0, 4, 2, testVendor, "/articles/b")), nil)
	if status(w, es) != http.StatusForbidden || w.Header().Get("Payment-Error") != "revoked" {
		t.Fatalf("revoked certificate: %d %q", status(w, es), w.Header().Get("Payment-Error"))
	}
	// The vendor's Redis keeps a copy for restarts.
	if n, _ := h.be.rdb.ZCard(t.Context(), h.be.ks.crl()).Result(); n != 1 {
		t.Fatalf("%d CRL entries in the vendor's Redis", n)
	}
}

func TestCRLFromSharedRedis(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	wal := paytest.NewBank(t).Issue(t, paytest.Options{Seed: 11})
	old := paytest.NewBank(t).Issue(t, paytest.Options{Seed: 12})
	ctx := t.Context()
	// Revoked before the gateway starts: found by the initial sync.
	entry, _ := json.Marshal(payword.CRLEntry{Seq: 1, Serial: old.Serial, Time: 1})
	rdb := mustRedis(t, e.redis.URL())
	rdb.ZAdd(ctx, agentapi.CRLKey, redisZ(1, entry))
	h := e.handler(func(h *Handler) { h.CRL = crlFromRedis })
	waitFor(t, "initial CRL sync", time.Second, func() bool { return h.be.crl.revoked(old.Serial) })

	entry, _ = json.Marshal(payword.CRLEntry{Seq: 2, Serial: wal.Serial, Time: 2})
	rdb.ZAdd(ctx, agentapi.CRLKey, redisZ(2, entry))
	rdb.Publish(ctx, agentapi.CRLChannel, entry)
	waitFor(t, "published revocation", time.Second, func() bool { return h.be.crl.revoked(wal.Serial) })
	w, es := do(h, get("/articles/b", "Authorization", wal.Header(t, 0, 2, 2, testVendor, "/articles/b")), nil)
	if status(w, es) != http.StatusForbidden {
		t.Fatalf("revoked: %d", status(w, es))
	}
}

func TestOnlineMode(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	h := e.handler()
	wal := paytest.NewBank(t).Issue(t, paytest.Options{Seed: 13})
	if w, es := do(h, get("/live/a", "Authorization", wal.Header(t, 0, 1, 1, testVendor, "/live/a")), nil); status(w, es) != 200 {
		t.Fatalf("online pay: %d %q", status(w, es), w.Header().Get("Payment-Error"))
	}
	if w, es := do(h, get("/live/b", "Authorization", wal.Header(t, 0, 2, 1, testVendor, "/live/b")), nil); status(w, es) != 200 {
		t.Fatalf("online pay 2: %d", status(w, es))
	}
	if e.agent.bindingCount() != 1 {
		t.Fatalf("%d binding registrations, want one per segment", e.agent.bindingCount())
	}
	// A segment the user already bound to another vendor is refused.
	e.agent.mu.Lock()
	e.agent.owners[fmtKey(wal.Serial, 1)] = "other-vendor"
	e.agent.mu.Unlock()
	w, es := do(h, get("/live/c", "Authorization", wal.Header(t, 1, 1, 1, testVendor, "/live/c")), nil)
	if status(w, es) != http.StatusConflict || w.Header().Get("Payment-Error") != "double_spend" {
		t.Fatalf("segment bound elsewhere: %d %q", status(w, es), w.Header().Get("Payment-Error"))
	}
	// Agent down: the first payment of a new segment waits (503), never passes.
	e.agent.setDown(true)
	if w, es := do(h, get("/live/d", "Authorization", wal.Header(t, 2, 1, 1, testVendor, "/live/d")), nil); status(w, es) != 503 {
		t.Fatalf("online with the agent down: %d", status(w, es))
	}
}

func TestUpstreamPrice(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	h := e.handler(func(h *Handler) { h.UpstreamPrice = true })
	wal := paytest.NewBank(t).Issue(t, paytest.Options{Seed: 14})
	cms := caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		if strings.HasPrefix(r.URL.Path, "/news/") {
			w.Header().Set("Paywall-Price", "3")
		}
		w.Header().Set("Content-Type", "text/plain")
		w.WriteHeader(200)
		_, _ = w.Write([]byte("secret article"))
		return nil
	})
	w, es := do(h, get("/news/story"), cms)
	if status(w, es) != 402 || strings.Contains(w.Body.String(), "secret") || w.Header().Get("Paywall-Price") != "" {
		t.Fatalf("upstream-priced without payment: %d %q", status(w, es), w.Body.String())
	}
	ch, err := payword.ParseChallenge(w.Header().Get("WWW-Authenticate"))
	if err != nil || ch.Price != 3 || ch.Product != "/news/story" {
		t.Fatalf("challenge %+v %v", ch, err)
	}
	w, es = do(h, get("/news/story", "Authorization", wal.Header(t, 0, 3, 3, testVendor, "/news/story")), cms)
	if status(w, es) != 200 || w.Body.String() != "secret article" {
		t.Fatalf("paid: %d %q", status(w, es), w.Body.String())
	}
	grant := w.Header().Get("Payment-Receipt")
	if w, es := do(h, get("/news/story", "Cookie", grantCookie+"="+grant), cms); status(w, es) != 200 || w.Body.String() != "secret article" {
		t.Fatalf("grant: %d", status(w, es))
	}
	w, es = do(h, get("/news/other", "Authorization", wal.Header(t, 0, 4, 1, testVendor, "/news/other")), cms)
	if status(w, es) != 402 || strings.Contains(w.Body.String(), "secret") {
		t.Fatalf("underpaid upstream price: %d %q", status(w, es), w.Body.String())
	}
	if w, es := do(h, get("/free/page"), cms); status(w, es) != 200 {
		t.Fatalf("unpriced: %d", status(w, es))
	}
}

// Without pinned keys the gateway fetches the agent's keys once and pins
// them in Redis: a later answer cannot replace a pinned key id.
func TestKeysPinnedOnFirstUse(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	h := e.handler(func(h *Handler) { h.Keys = nil })
	wal := paytest.NewBank(t).Issue(t, paytest.Options{Seed: 15})
	if w, es := do(h, get("/articles/a", "Authorization", wal.Header(t, 0, 2, 2, testVendor, "/articles/a")), nil); status(w, es) != 200 {
		t.Fatalf("pay with fetched keys: %d %q", status(w, es), w.Header().Get("Payment-Error"))
	}
	pinned, err := h.be.rdb.HGetAll(t.Context(), h.be.ks.keys()).Result()
	if err != nil || len(pinned) != 1 {
		t.Fatalf("pinned keys %v %v", pinned, err)
	}

	// The agent (or whoever answers in its name) now claims another key
	// under the same id; a fresh gateway keeps the pinned one.
	e.agent.mu.Lock()
	e.agent.key.Key = ed25519Key(0x66)
	e.agent.mu.Unlock()
	h2 := e.handler(func(h *Handler) { h.Keys = nil; h.CRLInterval *= 4 })
	mallory := paytest.NewBank(t).Issue(t, paytest.Options{Seed: 16})
	if _, err := mallory.Sign(payword.SigningKey{ID: paytest.KeyID, Key: ed25519Key(0x66)}); err != nil {
		t.Fatal(err)
	}
	if w, es := do(h2, get("/articles/b", "Authorization", mallory.Header(t, 0, 2, 2, testVendor, "/articles/b")), nil); status(w, es) != 403 {
		t.Fatalf("certificate under a replaced key: %d", status(w, es))
	}
	if w, es := do(h2, get("/articles/b", "Authorization", wal.Header(t, 0, 4, 2, testVendor, "/articles/b")), nil); status(w, es) != 200 {
		t.Fatalf("certificate under the pinned key: %d", status(w, es))
	}
}

func TestMetrics(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	h := e.handler()
	before := testutilCount(h.metrics.accepted)
	wal := paytest.NewBank(t).Issue(t, paytest.Options{Seed: 17})
	do(h, get("/articles/a"), nil)
	do(h, get("/articles/a", "Authorization", wal.Header(t, 0, 2, 2, testVendor, "/articles/a")), nil)
	if testutilCount(h.metrics.accepted) != before+1 {
		t.Fatal("accepted payment not counted")
	}
}

func TestBatchMode(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	h := e.handler(func(h *Handler) {
		h.BatchInterval = caddy.Duration(time.Second)
		h.Rules = []Rule{{Pattern: "/opinion/*", Price: 1, Mode: ModeBatch}}
	})
	wal := paytest.NewBank(t).Issue(t, paytest.Options{Seed: 18})
	time.Sleep(100 * time.Millisecond) // let the batch worker start its first sleep
	if w, es := do(h, get("/opinion/a", "Authorization", wal.Header(t, 0, 1, 1, testVendor, "/opinion/a")), nil); status(w, es) != 200 {
		t.Fatalf("pay: %d", status(w, es))
	}
	if n := streamLen(t, h, ModeBatch); n != 1 {
		t.Fatalf("%d claims in the batch stream", n)
	}
	waitFor(t, "the batch shipped on its interval", 2500*time.Millisecond, func() bool { return e.agent.claimCount() == 1 })
}

// Handlers with the same store share one backend across a config reload;
// the last one out stops its workers and closes Redis.
func TestBackendSurvivesReload(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	old := e.handler()
	cur := e.handler()
	if old.be != cur.be {
		t.Fatal("a reload with the same store made a new backend")
	}
	if err := old.Cleanup(); err != nil {
		t.Fatal(err)
	}
	wal := paytest.NewBank(t).Issue(t, paytest.Options{Seed: 19})
	if w, es := do(cur, get("/articles/a", "Authorization", wal.Header(t, 0, 2, 2, testVendor, "/articles/a")), nil); status(w, es) != 200 {
		t.Fatalf("pay after the old config left: %d", status(w, es))
	}
	be := cur.be
	if err := cur.Cleanup(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { be.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(3 * time.Second):
		t.Fatal("workers still running after the last handler left")
	}
	if be.rdb.Ping(t.Context()).Err() == nil {
		t.Fatal("Redis client still open")
	}
}

func TestCustomPage(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	page := t.TempDir() + "/402.html"
	if err := os.WriteFile(page, []byte(`<p>Pay {{.Price}} for {{.Product}} to {{.Vendor}}</p>`), 0o600); err != nil {
		t.Fatal(err)
	}
	h := e.handler(func(h *Handler) { h.Template = page })
	w, _ := do(h, get("/articles/<b>", "Accept", "text/html"), nil)
	if got := w.Body.String(); got != "<p>Pay 2 for /articles/&lt;b&gt; to daily-planet</p>" {
		t.Fatalf("custom page: %q", got)
	}
}

// A revocation published while the subscription was down is found by the
// resync that follows the reconnect.
func TestCRLResyncAfterReconnect(t *testing.T) {
	t.Parallel()
	e := &env{t: t, redis: redistest.Start(t, redistest.WithAOF()), agent: newFakeAgent(t)}
	h := e.handler(func(h *Handler) { h.CRL = crlFromRedis })
	wal := paytest.NewBank(t).Issue(t, paytest.Options{Seed: 21})
	time.Sleep(200 * time.Millisecond) // subscribed
	e.redis.Kill()
	e.redis.Restart()
	entry, _ := json.Marshal(payword.CRLEntry{Seq: 1, Serial: wal.Serial, Time: 1})
	rdb := mustRedis(t, e.redis.URL())
	if err := rdb.ZAdd(t.Context(), agentapi.CRLKey, redisZ(1, entry)).Err(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "resync after reconnect", 5*time.Second, func() bool { return h.be.crl.revoked(wal.Serial) })
}

func TestBatchID(t *testing.T) {
	a := []redis.XMessage{{ID: "1-0"}, {ID: "2-0"}}
	b := []redis.XMessage{{ID: "1-0"}, {ID: "2-1"}}
	id := func(parts ...part) string { return batchID(parts) }
	if id(part{"s", a}) != id(part{"s", a[:2:2]}) || id(part{"s", a}) == id(part{"s", b}) || !payword.ValidID(id(part{"s", a})) {
		t.Fatal("batch ids must be deterministic, distinct and valid ids")
	}
	// The same entries split otherwise between streams are another batch.
	if id(part{"s", a}, part{"t", b}) == id(part{"s", a[:1]}, part{"t", append(a[1:2:2], b...)}) ||
		id(part{"s", a}) == id(part{"t", a}) {
		t.Fatal("batch ids must tell the streams apart")
	}
}

// Every request the handler passes on has the {http.paywall.*}
// placeholders: the grant's values, or empty strings. An unknown
// placeholder would reach the upstream literally (header_up replaces only
// known ones), and a CMS could take "{http.paywall.user}" for a reader.
func TestPlaceholdersWithoutGrant(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	h := e.handler(func(h *Handler) { h.UpstreamPrice = true })
	var got map[string]any
	spy := caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		repl := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer)
		got = map[string]any{}
		for _, k := range []string{"http.paywall.user", "http.paywall.serial", "http.paywall.product", "http.paywall.auth"} {
			if v, ok := repl.Get(k); ok {
				got[k] = v
			}
		}
		return nil
	})
	for _, p := range []string{"/articles/index.html", "/about", "/news/unpriced"} {
		got = nil
		if w, es := do(h, get(p), spy); status(w, es) != 200 {
			t.Fatalf("%s: %d", p, status(w, es))
		}
		if len(got) != 4 || got["http.paywall.user"] != "" || got["http.paywall.auth"] != "" {
			t.Errorf("%s: placeholders %v, want all four empty", p, got)
		}
	}
	wal := paytest.NewBank(t).Issue(t, paytest.Options{Seed: 22})
	if w, es := do(h, get("/articles/a", "Authorization", wal.Header(t, 0, 2, 2, testVendor, "/articles/a")), spy); status(w, es) != 200 {
		t.Fatalf("pay: %d", status(w, es))
	}
	if got["http.paywall.user"] != "u:alice" || got["http.paywall.product"] != "/articles/a" ||
		got["http.paywall.serial"] != wal.Serial.String() || !payword.ValidID(fmt.Sprint(got["http.paywall.auth"])) {
		t.Errorf("paid: placeholders %v", got)
	}
}

// On an upstream-priced page, the upstream answers before the payment is
// spent (its price decides the amount), so it learns who pays from the
// placeholders of a payment that verifies; a forged or unpaid request tells
// it no one.
func TestUpstreamSeesPayer(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	h := e.handler(func(h *Handler) { h.UpstreamPrice = true })
	wal := paytest.NewBank(t).Issue(t, paytest.Options{Seed: 17, UserID: "u:bob"})
	var seen []string
	cms := caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		repl := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer)
		user, _ := repl.GetString("http.paywall.user")
		serial, _ := repl.GetString("http.paywall.serial")
		product, _ := repl.GetString("http.paywall.product")
		seen = append(seen, user+" "+serial+" "+product)
		w.Header().Set("Paywall-Price", "3")
		_, _ = w.Write([]byte("secret article"))
		return nil
	})
	w, es := do(h, get("/news/story", "Authorization", wal.Header(t, 0, 3, 3, testVendor, "/news/story")), cms)
	if status(w, es) != 200 {
		t.Fatalf("paid: %d %q", status(w, es), w.Header().Get("Payment-Error"))
	}
	if want := "u:bob " + wal.Serial.String() + " /news/story"; len(seen) != 1 || seen[0] != want {
		t.Fatalf("the upstream saw %q, want %q", seen, want)
	}
	// Unpaid, paid for another product, or under a forged certificate: no one.
	mallory := &paytest.Bank{Key: payword.SigningKey{ID: paytest.KeyID, Key: ed25519Key(0x66)}}
	forged := mallory.Issue(t, paytest.Options{Seed: 18, UserID: "u:bob"})
	for _, r := range []*http.Request{
		get("/news/story"),
		get("/news/story", "Authorization", wal.Header(t, 0, 6, 3, testVendor, "/news/other")),
		get("/news/story", "Authorization", forged.Header(t, 0, 3, 3, testVendor, "/news/story")),
	} {
		seen = nil
		if w, es := do(h, r, cms); status(w, es) == 200 {
			t.Fatalf("%s answered 200", r.Header.Get("Authorization"))
		}
		if len(seen) != 1 || seen[0] != "  " {
			t.Errorf("the upstream saw %q for a payment that does not verify", seen)
		}
	}
}
