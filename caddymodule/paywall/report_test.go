package paywall

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	dto "github.com/prometheus/client_model/go"
	"github.com/redis/go-redis/v9"

	"github.com/hashwall/hashwall/agent"
	"github.com/hashwall/hashwall/agentapi"
	"github.com/hashwall/hashwall/internal/testutil/paytest"
	"github.com/hashwall/hashwall/internal/testutil/redistest"
	"github.com/hashwall/hashwall/payword"
)

// realBank is the real agent on its own real Redis, behind an HTTP server
// that can be made to answer 503. The test vendor and alice, with funds,
// are registered.
type realBank struct {
	t     *testing.T
	redis *redistest.Server
	rdb   redis.UniversalClient
	srv   *httptest.Server
	api   *agentapi.Client // without credentials
	key   payword.SigningKey
	down  atomic.Bool
	token string // the test vendor's API token
}

func newRealBank(t *testing.T) *realBank {
	t.Helper()
	b := &realBank{t: t, key: payword.SigningKey{ID: "agent-2026", Key: ed25519.NewKeyFromSeed(paytest.Seed(0x01))}}
	b.redis = redistest.Start(t)
	b.rdb = mustRedis(t, b.redis.URL())
	ag, err := agent.New(t.Context(), agent.Config{
		Redis: b.rdb, SigningKeys: []payword.SigningKey{b.key}, MasterKey: bytes.Repeat([]byte{7}, 32),
		AdminToken: "admin-token", Settings: agent.Settings{OpenVendors: true, Ephemeral: true},
		Argon: agent.ArgonParams{Time: 1, Memory: 64, Threads: 1},
	})
	if err != nil {
		t.Fatal(err)
	}
	b.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if b.down.Load() {
			http.Error(w, `{"error":"down","code":"down"}`, http.StatusServiceUnavailable)
			return
		}
		ag.ServeHTTP(w, r)
	}))
	t.Cleanup(b.srv.Close)
	b.api = agentapi.NewClient(b.srv.URL, b.srv.Client())
	ctx := t.Context()
	v, err := b.api.RegisterVendor(ctx, agentapi.RegisterVendor{Vendor: testVendor})
	if err != nil {
		t.Fatal(err)
	}
	b.token = v.Token
	if _, err := b.api.RegisterUser(ctx, agentapi.RegisterUser{Username: "alice", Password: "correct horse battery"}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.admin().Credit(ctx, agentapi.Credit{User: "alice", Amount: 100000}); err != nil {
		t.Fatal(err)
	}
	return b
}

// admin is the bank's client with the admin token.
func (b *realBank) admin() *agentapi.Client { return b.api.WithToken("admin-token") }

// buy buys a certificate for alice and returns her wallet.
func (b *realBank) buy(tokens int) *paytest.Cert {
	b.t.Helper()
	user := ed25519.NewKeyFromSeed(paytest.Seed(0x41))
	bundle, err := b.api.WithPassword("alice", "correct horse battery").Buy(b.t.Context(), int64(tokens), user.Public().(ed25519.PublicKey), "")
	if err != nil {
		b.t.Fatal(err)
	}
	return paytest.FromBundle(b.t, user, bundle)
}

// ledgerClaims is the agent's claim record of serial ("vendor|seg|index" → verdict).
func (b *realBank) ledgerClaims(s payword.Serial) map[string]string {
	b.t.Helper()
	m, err := b.rdb.HGetAll(b.t.Context(), "hw:a:c:{"+s.String()+"}:cl").Result()
	if err != nil {
		b.t.Fatal(err)
	}
	return m
}

// provisionAsShipped provisions a handler with the backend's defaults
// (env.handler sets the reclaim delay; these tests measure the default).
func provisionAsShipped(e *env, mods ...func(*Handler)) *Handler {
	e.t.Helper()
	h := e.config(mods...)
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	if err := h.Provision(ctx); err != nil {
		e.t.Fatal(err)
	}
	if err := h.Validate(); err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() {
		_ = h.Cleanup()
		cancel()
	})
	return h
}

// kill stops a gateway's backend workers as a crash would: what they
// read stays pending in the group.
func kill(h *Handler) {
	h.be.cancel()
	h.be.wg.Wait()
}

// streamLen is how many claims mode's report streams hold, in all shards.
func streamLen(t *testing.T, h *Handler, mode string) int64 {
	t.Helper()
	return streamsLen(t, h.be.rdb, newKeyspace(h.Vendor).streams(mode))
}

func streamsLen(t *testing.T, rdb redis.UniversalClient, streams []string) int64 {
	t.Helper()
	var n int64
	for _, s := range streams {
		l, err := rdb.XLen(t.Context(), s).Result()
		if err != nil {
			t.Fatal(err)
		}
		n += l
	}
	return n
}

// Issue 9, item 1: a vendor's almost_online and batch streams both give
// their first entry of a millisecond the id "<ms>-0". A payment of each,
// accepted in the same millisecond, must both reach the ledger: with batch
// ids derived from the entry ids alone, the agent answered the second
// report with the first one's stored results and the gateway deleted a
// claim the ledger never saw. The payments go through the gateway; their
// entries are then rewritten with one explicit id in both streams, which
// is what the same millisecond gives.
func TestSameMillisecondClaimsOfBothModesReachLedger(t *testing.T) {
	t.Parallel()
	bank := newRealBank(t)
	wal := bank.buy(256)
	e := &env{t: t, redis: redistest.Start(t), agent: &fakeAgent{Server: bank.srv, key: bank.key}}
	mods := func(h *Handler) {
		h.APIToken = bank.token
		h.BatchInterval = caddy.Duration(100 * time.Millisecond)
		h.OfflineSegments = 2 // both payments are taken while the bank is down
		h.Rules = []Rule{
			{Pattern: "/articles/*", Price: 2, Mode: ModeAlmostOnline},
			{Pattern: "/opinion/*", Price: 1, Mode: ModeBatch},
		}
	}
	h1 := e.handler(mods)
	time.Sleep(300 * time.Millisecond) // its revocation list synced
	bank.down.Store(true)
	for _, p := range []struct {
		g, i, amount uint32
		path         string
	}{{0, 2, 2, "/articles/a"}, {1, 1, 1, "/opinion/a"}} {
		if rw, es := do(h1, get(p.path, "Authorization", wal.Header(t, p.g, p.i, p.amount, testVendor, p.path)), nil); status(rw, es) != 200 {
			t.Fatalf("payment for %s: %d %q", p.path, status(rw, es), rw.Header().Get("Payment-Error"))
		}
	}
	kill(h1)

	ctx := t.Context()
	rdb := mustRedis(t, e.redis.URL())
	ms := time.Now().UnixMilli() + 1000
	for _, mode := range []string{ModeAlmostOnline, ModeBatch} {
		stream := h1.be.ks.streamOf(mode, wal.Serial)
		entries, err := rdb.XRange(ctx, stream, "-", "+").Result()
		if err != nil || len(entries) != 1 {
			t.Fatalf("%s stream: %v %v", mode, entries, err)
		}
		if err := rdb.XDel(ctx, stream, entries[0].ID).Err(); err != nil {
			t.Fatal(err)
		}
		if err := rdb.XAdd(ctx, &redis.XAddArgs{Stream: stream, ID: fmt.Sprintf("%d-0", ms), Values: entries[0].Values}).Err(); err != nil {
			t.Fatal(err)
		}
	}
	bank.down.Store(false)
	h2 := e.handler(mods, func(h *Handler) { h.CRLInterval *= 3 }) // its own backend and workers
	waitFor(t, "both streams drained", 10*time.Second, func() bool {
		return streamLen(t, h2, ModeAlmostOnline) == 0 && streamLen(t, h2, ModeBatch) == 0
	})
	got := bank.ledgerClaims(wal.Serial)
	want := map[string]string{testVendor + "|0|2": "paid", testVendor + "|1|1": "paid"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("claims in the ledger %v, want %v: the gateway deleted claims the agent never ingested", got, want)
	}
	bal, err := bank.rdb.HGet(ctx, "hw:a:v:"+testVendor, "bal").Int64()
	if err != nil || bal != 3 {
		t.Fatalf("vendor credited %d (%v), want 3", bal, err)
	}
}

// stubAgent is a fakeAgent whose report endpoint the test writes.
func stubAgent(t *testing.T, reports func(w http.ResponseWriter, rep *payword.Report)) *fakeAgent {
	a := &fakeAgent{
		key:    payword.SigningKey{ID: "agent-2026", Key: ed25519.NewKeyFromSeed(paytest.Seed(0x01))},
		claims: map[string]payword.Claim{}, batches: map[string]int{}, owners: map[string]string{},
	}
	a.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/reports" {
			a.serve(w, r)
			return
		}
		raw, _ := io.ReadAll(io.LimitReader(r.Body, payword.MaxReportSize+1))
		rep, err := payword.ParseReport(raw)
		if err != nil {
			http.Error(w, `{"error":"bad report","code":"malformed"}`, http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		reports(w, rep)
	}))
	t.Cleanup(a.Close)
	return a
}

type stubResult struct {
	Auth    string `json:"auth"`
	Verdict string `json:"verdict"`
	Amount  uint32 `json:"amount"`
}

func answer(w http.ResponseWriter, batch string, results []stubResult) {
	_ = json.NewEncoder(w).Encode(struct {
		Batch   string       `json:"batch"`
		Results []stubResult `json:"results"`
	}{batch, results})
}

// The gateway deletes only the entries whose claims got a result it
// checked: one naming the claim's authorization number, with a verdict of
// the agent's table. A result missing, for another claim or with an
// unknown verdict leaves the entry queued, and it is shipped again.
func TestReportDeletesOnlyCheckedClaims(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	sloppy := true
	shipped := map[string]int{} // product → times shipped
	a := stubAgent(t, func(w http.ResponseWriter, rep *payword.Report) {
		mu.Lock()
		defer mu.Unlock()
		var out []stubResult
		for _, c := range rep.Claims {
			shipped[c.Product]++
			r := stubResult{Auth: c.Auth, Verdict: "paid", Amount: c.Amount}
			if sloppy {
				switch c.Product {
				case "/articles/missing":
					continue
				case "/articles/foreign":
					r.Auth = "someone-else"
				case "/articles/odd":
					r.Verdict = "probably"
				}
			}
			out = append(out, r)
		}
		answer(w, rep.Batch, out)
	})
	e := &env{t: t, redis: redistest.Start(t), agent: a}
	h := e.handler()
	wal := paytest.NewBank(t).Issue(t, paytest.Options{Seed: 30})
	for i, p := range []string{"/articles/ok", "/articles/missing", "/articles/foreign", "/articles/odd"} {
		if rw, es := do(h, get(p, "Authorization", wal.Header(t, uint32(i), 2, 2, testVendor, p)), nil); status(rw, es) != 200 {
			t.Fatalf("pay %s: %d", p, status(rw, es))
		}
	}
	waitFor(t, "every claim shipped once", 5*time.Second, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(shipped) == 4
	})
	time.Sleep(200 * time.Millisecond) // the answer processed
	if n := streamLen(t, h, ModeAlmostOnline); n != 3 {
		t.Fatalf("%d entries left in the stream, want the 3 without a checked result", n)
	}
	mu.Lock()
	sloppy = false
	mu.Unlock()
	waitFor(t, "the unanswered claims shipped again and deleted", 5*time.Second, func() bool {
		return streamLen(t, h, ModeAlmostOnline) == 0
	})
	mu.Lock()
	defer mu.Unlock()
	if shipped["/articles/ok"] != 1 {
		t.Fatalf("a claim with a checked result was shipped %d times", shipped["/articles/ok"])
	}
}

// On the agent's 409 batch_mismatch (it knows the batch id with other
// claims) the gateway ships the same claims under a fresh id, and loses
// none.
func TestReportReshipsOnBatchMismatch(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var ids []string
	delivered := map[string]bool{}
	a := stubAgent(t, func(w http.ResponseWriter, rep *payword.Report) {
		mu.Lock()
		defer mu.Unlock()
		ids = append(ids, rep.Batch)
		if len(ids) == 1 {
			w.WriteHeader(http.StatusConflict)
			_, _ = io.WriteString(w, `{"error":"this batch id was reported before with other claims","code":"batch_mismatch"}`)
			return
		}
		var out []stubResult
		for _, c := range rep.Claims {
			delivered[c.Auth] = true
			out = append(out, stubResult{Auth: c.Auth, Verdict: "paid", Amount: c.Amount})
		}
		answer(w, rep.Batch, out)
	})
	e := &env{t: t, redis: redistest.Start(t), agent: a}
	h := e.handler()
	wal := paytest.NewBank(t).Issue(t, paytest.Options{Seed: 31})
	if rw, es := do(h, get("/articles/a", "Authorization", wal.Header(t, 0, 2, 2, testVendor, "/articles/a")), nil); status(rw, es) != 200 {
		t.Fatalf("pay: %d", status(rw, es))
	}
	waitFor(t, "the claim delivered under a fresh batch id", 5*time.Second, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(delivered) == 1
	})
	waitFor(t, "the stream drained", 2*time.Second, func() bool { return streamLen(t, h, ModeAlmostOnline) == 0 })
	mu.Lock()
	defer mu.Unlock()
	if len(ids) < 2 || ids[0] == ids[1] || !payword.ValidID(ids[1]) || !strings.HasPrefix(ids[1], ids[0]) {
		t.Fatalf("batch ids shipped %q: want a fresh, valid id after the 409", ids)
	}
}

// Issue 9, item 4: report delivery resumed 15 s after an 8 s agent outage
// (the back-off doubled to a minute). It must resume within about a second.
func TestReportResumesSoonAfterOutage(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	h := provisionAsShipped(e)
	wal := paytest.NewBank(t).Issue(t, paytest.Options{Seed: 32})
	waitCRLSynced(t, h)
	e.agent.setDown(true)
	if rw, es := do(h, get("/articles/a", "Authorization", wal.Header(t, 0, 2, 2, testVendor, "/articles/a")), nil); status(rw, es) != 200 {
		t.Fatalf("pay: %d", status(rw, es))
	}
	time.Sleep(8 * time.Second)
	e.agent.setDown(false)
	back := time.Now()
	waitFor(t, "the claim delivered after the outage", 20*time.Second, func() bool { return e.agent.claimCount() == 1 })
	resumed := time.Since(back)
	t.Logf("delivery resumed %v after an 8 s outage ended", resumed.Round(time.Millisecond))
	if resumed > 1500*time.Millisecond {
		t.Fatalf("delivery resumed %v after the agent came back, want about a second", resumed)
	}
}

// Issue 9, item 4: a dead gateway's claims waited 30 s before another
// gateway took them over. It must take about a second, on one Redis and
// on a Cluster.
func TestDeadGatewayClaimsTakenOverSoon(t *testing.T) {
	t.Parallel()
	t.Run("single", func(t *testing.T) {
		t.Parallel()
		deadGatewayTakenOver(t, newEnv(t))
	})
	t.Run("cluster", func(t *testing.T) {
		t.Parallel()
		deadGatewayTakenOver(t, newClusterEnv(t))
	})
}

func deadGatewayTakenOver(t *testing.T, e *env) {
	h1 := provisionAsShipped(e)
	waitCRLSynced(t, h1)
	e.agent.setDown(true)
	wal := paytest.NewBank(t).Issue(t, paytest.Options{Seed: 33})
	for i := uint32(1); i <= 3; i++ {
		if rw, es := do(h1, get("/articles/a", "Authorization", wal.Header(t, 0, 2*i, 2, testVendor, "/articles/a")), nil); status(rw, es) != 200 {
			t.Fatalf("pay: %d", status(rw, es))
		}
	}
	stream := h1.be.ks.streamOf(ModeAlmostOnline, wal.Serial)
	waitFor(t, "claims read and pending", 2*time.Second, func() bool {
		p, err := h1.be.rdb.XPending(t.Context(), stream, reportGroup).Result()
		return err == nil && p.Count == 3
	})
	h2 := provisionAsShipped(e, func(h *Handler) { h.CRLInterval *= 3 }) // another gateway, its own backend
	kill(h1)
	died := time.Now()
	e.agent.setDown(false)
	waitFor(t, "the dead gateway's claims delivered", 40*time.Second, func() bool { return e.agent.claimCount() == 3 })
	took := time.Since(died)
	t.Logf("a dead gateway's claims were delivered by another %v after it died", took.Round(time.Millisecond))
	if took > 2*time.Second {
		t.Fatalf("takeover took %v, want about a second", took)
	}
	waitFor(t, "the stream drained", 2*time.Second, func() bool { return streamLen(t, h2, ModeAlmostOnline) == 0 })
}

// A live gateway whose report takes longer than the reclaim delay keeps
// its claims: another gateway does not ship them a second time.
func TestSlowReportNotTakenOver(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	shipped := map[string]int{}
	a := stubAgent(t, func(w http.ResponseWriter, rep *payword.Report) {
		mu.Lock()
		var out []stubResult
		for _, c := range rep.Claims {
			shipped[c.Auth]++ // counted as it arrives: a second sender is seen at once
			out = append(out, stubResult{Auth: c.Auth, Verdict: "paid", Amount: c.Amount})
		}
		mu.Unlock()
		time.Sleep(1500 * time.Millisecond) // slower than the reclaim delay, within an attempt's timeout
		answer(w, rep.Batch, out)
	})
	e := &env{t: t, redis: redistest.Start(t), agent: a}
	h1 := provisionAsShipped(e)
	h2 := provisionAsShipped(e, func(h *Handler) { h.CRLInterval *= 3 })
	wal := paytest.NewBank(t).Issue(t, paytest.Options{Seed: 34})
	for i := uint32(1); i <= 6; i++ {
		h := h1
		if i%2 == 0 {
			h = h2
		}
		if rw, es := do(h, get("/articles/a", "Authorization", wal.Header(t, 0, 2*i, 2, testVendor, "/articles/a")), nil); status(rw, es) != 200 {
			t.Fatalf("pay: %d", status(rw, es))
		}
	}
	waitFor(t, "the stream drained", 15*time.Second, func() bool { return streamLen(t, h1, ModeAlmostOnline) == 0 })
	time.Sleep(500 * time.Millisecond) // any report still on its way
	mu.Lock()
	defer mu.Unlock()
	if len(shipped) != 6 {
		t.Fatalf("%d claims shipped, want 6", len(shipped))
	}
	for auth, n := range shipped {
		if n != 1 {
			t.Fatalf("claim %s shipped %d times: a live gateway's claims were taken over", auth, n)
		}
	}
}

// waitCRLSynced waits for a new gateway's first revocation-list sync: until
// then it refuses payments, and these tests take the agent down next.
func waitCRLSynced(t *testing.T, h *Handler) {
	t.Helper()
	waitFor(t, "the first CRL sync", 2*time.Second, func() bool { return h.be.crl.age(time.Now()) < time.Second })
}

// TestBacklogCountsFailedDeliveries: when the agent refuses every report
// (here a wrong API token: 401), the report workers are all busy retrying
// (they refreshed the gauge only between reads); the backlog gauge must
// still show the claims waiting within its refresh interval, since it is
// what an operator alerts on.
func TestBacklogCountsFailedDeliveries(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	h := e.handler(func(h *Handler) { h.APIToken = "not-the-vendor-token" })
	wal := paytest.NewBank(t).Issue(t, paytest.Options{Seed: 61})
	for i := uint32(1); i <= 8; i++ {
		if w, es := do(h, get("/articles/a", "Authorization", wal.Header(t, 0, 2*i, 2, testVendor, "/articles/a")), nil); status(w, es) != 200 {
			t.Fatalf("pay %d: %d %q", i, status(w, es), w.Header().Get(payword.ErrorHeader))
		}
		time.Sleep(2 * reportLinger) // a report each: more than the shippers
	}
	backlog := func() float64 {
		var m dto.Metric
		_ = h.metrics.backlog.WithLabelValues(testVendor).Write(&m)
		return m.GetGauge().GetValue()
	}
	waitFor(t, "the backlog gauge shows the 8 refused claims", backlogEvery+time.Second, func() bool { return backlog() == 8 })
	if n := e.agent.claimCount(); n != 0 {
		t.Fatalf("the agent took %d claims under a wrong token", n)
	}
}

// TestCRLAgeGauge: the revocation list's age is exported, small while the
// gateway syncs, growing while the agent is away.
func TestCRLAgeGauge(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	h := e.handler()
	age := func() float64 {
		var m dto.Metric
		_ = h.metrics.crlAge.WithLabelValues(testVendor).Write(&m)
		return m.GetGauge().GetValue()
	}
	waitFor(t, "a fresh list", backlogEvery+2*time.Second, func() bool { a := age(); return a > 0 && a < 1.5 })
	e.agent.setDown(true)
	waitFor(t, "the age to grow while the agent is away", 4*time.Second, func() bool { return age() >= 2 })
}
