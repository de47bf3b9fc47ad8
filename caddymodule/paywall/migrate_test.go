package paywall

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/redis/go-redis/v9"

	"github.com/hashwall/hashwall/internal/testutil/paytest"
	"github.com/hashwall/hashwall/internal/testutil/redistest"
	"github.com/hashwall/hashwall/payword"
)

// oldLayout names keys as gateways did before the sharded layout: every
// key of a vendor under hw:g:{<vendor>}:.
type oldLayout string

func (k oldLayout) state(s payword.Serial, g uint32) string {
	return string(k) + "s:" + s.String() + ":" + strconv.FormatUint(uint64(g), 10)
}

func (k oldLayout) bound(s payword.Serial, g uint32) string {
	return string(k) + "b:" + s.String() + ":" + strconv.FormatUint(uint64(g), 10)
}

func (k oldLayout) offline(s payword.Serial) string { return string(k) + "o:" + s.String() }

func (k oldLayout) authorization(p *payword.Payment) string { return string(k) + "a:" + authDigest(p) }

func (k oldLayout) stream(mode string) string { return string(k) + streamName(mode) }

// oldGateway accepts payments as a gateway of the old layout did: the same
// accept and offline scripts on the old keys.
type oldGateway struct {
	t   *testing.T
	rdb redis.UniversalClient
	ks  oldLayout
}

// pay records p (mode's stream) under authorization number auth.
func (o *oldGateway) pay(p *payword.Payment, mode, auth string) {
	o.t.Helper()
	ctx := o.t.Context()
	if err := offlineScript.Run(ctx, o.rdb, []string{o.ks.state(p.Cert.Serial, p.Segment), o.ks.bound(p.Cert.Serial, p.Segment), o.ks.offline(p.Cert.Serial)},
		p.Cert.ExpiresAt+3600).Err(); err != nil {
		o.t.Fatal(err)
	}
	exp := payword.Expected(p)
	now := time.Now().Unix()
	claim, _ := json.Marshal(payword.Claim{
		Serial: p.Cert.Serial, Segment: p.Segment, Binding: bindingRaw(p), Index: p.Index,
		Token: p.Token, Amount: p.Amount, Product: p.Product, Auth: auth, Time: now,
	})
	rec := fmt.Sprintf("%s %d %d", auth, now, now+3600)
	res, err := acceptScript.Run(ctx, o.rdb, []string{o.ks.state(p.Cert.Serial, p.Segment), o.ks.authorization(p), o.ks.stream(mode)},
		exp.Index, exp.Token[:], p.Index, p.Token[:], rec, 3600, claim, p.Cert.ExpiresAt+3600).Slice()
	if err != nil || res[0].(int64) != 0 {
		o.t.Fatalf("old accept of %d/%d: %v %v", p.Segment, p.Index, res, err)
	}
}

// TestMigrateToShards: a store written by gateways of the old layout (on
// one server, and on a Cluster) is taken over by two new gateways started
// at once. A payment whose tokens the old layout had spent is refused as a
// replay, the very payment accepted before is answered with its grant, the
// segment goes on from its old state, and every claim queued in the old
// streams (one read and left pending by a dead gateway) reaches the agent
// exactly once. The old keys are gone or tombstones, the new ones carry
// their expiry.
func TestMigrateToShards(t *testing.T) {
	t.Parallel()
	for _, cluster := range []bool{false, true} {
		name := "single"
		if cluster {
			name = "cluster"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			testMigrate(t, cluster)
		})
	}
}

func testMigrate(t *testing.T, cluster bool) {
	ctx := t.Context()
	a, shipped := countingAgent(t)
	e := &env{t: t, agent: a}
	if cluster {
		e.url = redistest.StartCluster(t, 3).URL()
	} else {
		e.redis = redistest.Start(t)
	}
	rdb := mustRedis(t, e.storeURL())
	old := &oldGateway{t: t, rdb: rdb, ks: oldLayout("hw:g:{" + testVendor + "}:")}

	// The old gateways' work: wallet 0 paid 2 then 4 tokens of segment 0
	// and 1 of segment 1 (batch); five more wallets 2 tokens each.
	bank := paytest.NewBank(t)
	wals := make([]*paytest.Cert, 6)
	for i := range wals {
		wals[i] = bank.Issue(t, paytest.Options{Seed: byte(80 + 8*i)})
	}
	w0 := wals[0]
	var auths []string
	oldPay := func(p *payword.Payment, mode string) string {
		auth := "0123456789abcdef." + strconv.Itoa(len(auths)+1)
		auths = append(auths, auth)
		old.pay(p, mode, auth)
		return auth
	}
	first := w0.Pay(t, 0, 2, 2, testVendor, "/articles/a")
	oldPay(first, ModeAlmostOnline)
	kept := oldPay(w0.Pay(t, 0, 4, 2, testVendor, "/articles/b"), ModeAlmostOnline)
	oldPay(w0.Pay(t, 1, 1, 1, testVendor, "/opinion/a"), ModeBatch)
	for _, w := range wals[1:] {
		oldPay(w.Pay(t, 0, 2, 2, testVendor, "/articles/a"), ModeAlmostOnline)
	}
	// The first payment's record expired; a dead gateway had read its claim.
	if err := rdb.Del(ctx, old.ks.authorization(first)).Err(); err != nil {
		t.Fatal(err)
	}
	stream := old.ks.stream(ModeAlmostOnline)
	if err := rdb.XGroupCreate(ctx, stream, reportGroup, "0").Err(); err != nil {
		t.Fatal(err)
	}
	if err := rdb.XReadGroup(ctx, &redis.XReadGroupArgs{Group: reportGroup, Consumer: "dead", Streams: []string{stream, ">"}, Count: 1}).Err(); err != nil {
		t.Fatal(err)
	}
	// Segment 1 was registered with the bank (online mode).
	if err := rdb.Set(ctx, old.ks.bound(w0.Serial, 1), "1", time.Hour).Err(); err != nil {
		t.Fatal(err)
	}

	// Two new gateways start at once; one moves the keys, both wait.
	mods := func(h *Handler) {
		h.BatchInterval = caddy.Duration(200 * time.Millisecond)
		h.Rules = []Rule{{Pattern: "/articles/*", Price: 2}, {Pattern: "/opinion/*", Price: 1, Mode: ModeBatch}}
	}
	h1 := e.handler(mods)
	h2 := e.handler(mods, func(h *Handler) { h.CRLInterval *= 3 })
	pay := func(h *Handler, w *paytest.Cert, g, i, n uint32, path string) *httptestResponse {
		t.Helper()
		rw, es := do(h, get(path, "Authorization", w.Header(t, g, i, n, testVendor, path)), nil)
		return &httptestResponse{status(rw, es), rw.Header().Get(payword.ErrorHeader), rw.Header().Get(payword.ReceiptHeader)}
	}
	if r := pay(h2, w0, 0, 2, 2, "/articles/c"); r.status != http.StatusConflict || r.code != "replay" {
		t.Fatalf("tokens the old layout had spent: %d %q, want a replay", r.status, r.code)
	}
	r := pay(h1, w0, 0, 4, 2, "/articles/b")
	if r.status != 200 || grantPayload(t, r.receipt)["jti"] != kept {
		t.Fatalf("the payment accepted before, sent again: %d %q, grant %v; want its grant %s", r.status, r.code, r.receipt, kept)
	}
	if r := pay(h2, w0, 0, 6, 2, "/articles/d"); r.status != 200 {
		t.Fatalf("the segment going on: %d %q", r.status, r.code)
	}
	for _, w := range wals[1:] {
		if r := pay(h1, w, 0, 2, 2, "/articles/z"); r.status != http.StatusConflict {
			t.Fatalf("another wallet's spent tokens: %d %q", r.status, r.code)
		}
	}
	waitFor(t, "every claim at the agent", 10*time.Second, func() bool { return len(shipped()) == len(auths)+1 })
	time.Sleep(3 * reportLinger) // any report still on its way
	got := shipped()
	for _, auth := range auths {
		if got[auth] != 1 {
			t.Errorf("old claim %s shipped %d times", auth, got[auth])
		}
	}

	// The old layout is gone but for tombstones and the authorization
	// records, left to expire.
	if n, _ := rdb.Exists(ctx, old.ks.stream(ModeAlmostOnline), old.ks.stream(ModeBatch)).Result(); n != 0 {
		t.Fatalf("%d old streams left", n)
	}
	if n, _ := rdb.Exists(ctx, old.ks.bound(w0.Serial, 1), old.ks.offline(w0.Serial)).Result(); n != 0 {
		t.Fatalf("%d old markers left", n)
	}
	ks := newKeyspace(testVendor)
	for _, w := range wals {
		if st, _ := rdb.HGetAll(ctx, old.ks.state(w.Serial, 0)).Result(); st["i"] != movedIndex || st["t"] != movedToken {
			t.Fatalf("old state of %s: %v, want a tombstone", w.Serial, st)
		}
		want := time.Duration(w.ExpiresAt+3600-time.Now().Unix()) * time.Second
		if ttl, _ := rdb.TTL(ctx, ks.state(w.Serial, 0)).Result(); ttl < want-time.Minute || ttl > want {
			t.Fatalf("new state of %s expires in %v, want %v", w.Serial, ttl, want)
		}
	}
	if i, _ := rdb.HGet(ctx, ks.state(w0.Serial, 0), "i").Result(); i != "6" {
		t.Fatalf("segment 0 at %s, want 6", i)
	}
	if ttl, _ := rdb.TTL(ctx, ks.bound(w0.Serial, 1)).Result(); ttl <= 50*time.Minute || ttl > time.Hour {
		t.Fatalf("moved bound marker expires in %v", ttl)
	}
	if n, _ := rdb.Get(ctx, ks.offline(w0.Serial)).Result(); n != "2" { // segments 0 and 1
		t.Fatalf("offline count %q, want 2", n)
	}
	if until := h1.be.legacyAuthUntil.Load(); until < time.Now().Add(50*time.Minute).Unix() {
		t.Fatalf("old authorization records looked up until %v", time.Unix(until, 0))
	}
	if l, _ := rdb.HGet(ctx, ks.layout(), "layout").Result(); l != layoutName {
		t.Fatalf("layout mark %q", l)
	}

	// A third gateway finds the mark and moves nothing.
	h3 := e.handler(mods, func(h *Handler) { h.CRLInterval *= 5 })
	if err := h3.be.waitLayout(ctx); err != nil || h3.be.legacyAuthUntil.Load() != h1.be.legacyAuthUntil.Load() {
		t.Fatalf("a later gateway: %v, legacy until %d", err, h3.be.legacyAuthUntil.Load())
	}
}

// countingAgent is a stub agent that pays every claim; shipped tells how
// many times each authorization number was reported.
func countingAgent(t *testing.T) (a *fakeAgent, shipped func() map[string]int) {
	var mu sync.Mutex
	n := map[string]int{}
	a = stubAgent(t, func(w http.ResponseWriter, rep *payword.Report) {
		mu.Lock()
		defer mu.Unlock()
		var out []stubResult
		for _, c := range rep.Claims {
			n[c.Auth]++
			out = append(out, stubResult{Auth: c.Auth, Verdict: "paid", Amount: c.Amount})
		}
		answer(w, rep.Batch, out)
	})
	return a, func() map[string]int {
		mu.Lock()
		defer mu.Unlock()
		return maps.Clone(n)
	}
}

type httptestResponse struct {
	status        int
	code, receipt string
}

// TestMigrateAfterCrash: a gateway died halfway through the move, holding
// the lock, after it had written a segment's state in the new layout
// (behind the old one, which a payment had advanced since) and copied one
// claim without deleting it from the old stream. The next gateway waits for
// the lock to expire, moves everything again, and a payment sent meanwhile
// waits and is accepted: the higher state wins, and the claim copied twice
// goes to the agent twice (it answers the second duplicate), none lost.
func TestMigrateAfterCrash(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	a, shipped := countingAgent(t)
	e := &env{t: t, agent: a, redis: redistest.Start(t)}
	rdb := mustRedis(t, e.storeURL())
	old := &oldGateway{t: t, rdb: rdb, ks: oldLayout("hw:g:{" + testVendor + "}:")}
	wal := paytest.NewBank(t).Issue(t, paytest.Options{Seed: 140})
	old.pay(wal.Pay(t, 0, 2, 2, testVendor, "/articles/a"), ModeAlmostOnline, "0123456789abcdef.1")
	old.pay(wal.Pay(t, 0, 4, 2, testVendor, "/articles/b"), ModeAlmostOnline, "0123456789abcdef.2")

	// What the dead gateway did: the state at 2 in the new layout, the first
	// claim copied, the lock held for another 800 ms.
	ks := newKeyspace(testVendor)
	tok := wal.Pay(t, 0, 2, 2, testVendor, "/articles/a").Token
	if err := rdb.HSet(ctx, ks.state(wal.Serial, 0), "i", 2, "t", tok[:]).Err(); err != nil {
		t.Fatal(err)
	}
	msgs, err := rdb.XRangeN(ctx, old.ks.stream(ModeAlmostOnline), "-", "+", 1).Result()
	if err != nil || len(msgs) != 1 {
		t.Fatal(msgs, err)
	}
	if err := rdb.XAdd(ctx, &redis.XAddArgs{Stream: ks.streamOf(ModeAlmostOnline, wal.Serial), Values: msgs[0].Values}).Err(); err != nil {
		t.Fatal(err)
	}
	if err := rdb.Set(ctx, ks.migrating(), "dead", 800*time.Millisecond).Err(); err != nil {
		t.Fatal(err)
	}

	h := e.handler()
	start := time.Now()
	if rw, es := do(h, get("/articles/c", "Authorization", wal.Header(t, 0, 4, 2, testVendor, "/articles/c")), nil); status(rw, es) != http.StatusConflict {
		t.Fatalf("tokens spent in the old layout, new state behind: %d %q", status(rw, es), rw.Header().Get(payword.ErrorHeader))
	}
	if took := time.Since(start); took < 500*time.Millisecond {
		t.Fatalf("a payment was judged %v after start, before the lock expired", took)
	}
	if rw, es := do(h, get("/articles/d", "Authorization", wal.Header(t, 0, 6, 2, testVendor, "/articles/d")), nil); status(rw, es) != 200 {
		t.Fatalf("the segment going on: %d %q", status(rw, es), rw.Header().Get(payword.ErrorHeader))
	}
	waitFor(t, "every claim at the agent", 10*time.Second, func() bool { return len(shipped()) == 3 })
	time.Sleep(3 * reportLinger)
	if got := shipped(); got["0123456789abcdef.1"] != 2 || got["0123456789abcdef.2"] != 1 {
		t.Fatalf("old claims shipped %v, want the one copied twice twice and the other once", got)
	}
}
