package paywall

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/redis/go-redis/v9"

	"github.com/hashwall/hashwall/agentapi"
	"github.com/hashwall/hashwall/internal/redisurl"
	"github.com/hashwall/hashwall/internal/testutil/paytest"
	"github.com/hashwall/hashwall/internal/testutil/redistest"
	"github.com/hashwall/hashwall/payword"
)

const testVendor = "daily-planet"

func pubB64(k payword.SigningKey) string { return base64.RawURLEncoding.EncodeToString(k.Public()) }

// fakeAgent follows docs/agent-api.md: keys, signed CRL pages, idempotent
// report ingestion and binding ownership.
type fakeAgent struct {
	*httptest.Server
	key payword.SigningKey

	mu       sync.Mutex
	down     bool
	crl      []payword.CRLEntry
	claims   map[string]payword.Claim // (serial, seg, index) → claim
	voids    map[string]payword.Claim // the same, of the voids
	batches  map[string]int
	owners   map[string]string // (serial, seg) → vendor
	reports  int
	bindings int
}

func newFakeAgent(t testing.TB) *fakeAgent {
	a := &fakeAgent{
		key:    paytest.NewBank(t).Key,
		claims: map[string]payword.Claim{}, voids: map[string]payword.Claim{}, batches: map[string]int{}, owners: map[string]string{},
	}
	a.Server = httptest.NewServer(http.HandlerFunc(a.serve))
	t.Cleanup(a.Close)
	return a
}

func (a *fakeAgent) setDown(down bool) {
	a.mu.Lock()
	a.down = down
	a.mu.Unlock()
}

func (a *fakeAgent) revoke(s payword.Serial) {
	a.mu.Lock()
	a.crl = append(a.crl, payword.CRLEntry{Seq: uint64(len(a.crl) + 1), Serial: s, Time: time.Now().Unix()})
	a.mu.Unlock()
}

func (a *fakeAgent) claimCount() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.claims)
}

func (a *fakeAgent) voidCount() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.voids)
}

func (a *fakeAgent) serve(w http.ResponseWriter, r *http.Request) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.down {
		agentFail(w, http.StatusServiceUnavailable, agentapi.Error{Message: "down", Code: agentapi.CodeStoreUnavailable})
		return
	}
	authed := r.Header.Get("Authorization") == "Bearer secret-token"
	switch {
	case r.URL.Path == "/v1/keys":
		agentAnswer(w, agentapi.Keys{
			Keys:   []agentapi.Key{{KeyID: a.key.ID, Public: payword.Bytes(a.key.Public())}},
			Signed: payword.AnnounceKeys([]payword.SigningKey{a.key}, time.Now()),
		})
	case r.URL.Path == "/v1/crl":
		since, _ := strconv.ParseUint(r.URL.Query().Get("since"), 10, 64)
		last := uint64(len(a.crl))
		page := payword.CRL{Type: payword.CRLType, Since: since, Next: max(since, last), Last: last, Time: time.Now().Unix(), Entries: []payword.CRLEntry{}}
		for _, e := range a.crl {
			if e.Seq > since {
				page.Entries = append(page.Entries, e)
			}
		}
		body, _ := json.Marshal(page)
		agentAnswer(w, payword.Seal(a.key, body))
	case r.URL.Path == "/v1/reports" && authed:
		raw, _ := io.ReadAll(io.LimitReader(r.Body, payword.MaxReportSize+1))
		rep, err := payword.ParseReport(raw)
		if err != nil || rep.Vendor != testVendor {
			agentFail(w, http.StatusBadRequest, agentapi.Error{Message: "bad report", Code: agentapi.CodeMalformed})
			return
		}
		a.reports++
		a.batches[rep.Batch]++
		out := agentapi.ReportResult{Batch: rep.Batch}
		for _, c := range rep.Claims {
			k := fmt.Sprint(c.Serial, c.Segment, c.Index)
			v, seen := agentapi.VerdictPaid, a.claims
			if c.Void {
				v, seen = agentapi.VerdictVoided, a.voids
			}
			if _, dup := seen[k]; dup {
				v = agentapi.VerdictDuplicate
			}
			seen[k] = c
			out.Results = append(out.Results, agentapi.ClaimResult{Auth: c.Auth, Verdict: v, Amount: uint64(c.Amount)})
		}
		agentAnswer(w, out)
	case r.URL.Path == "/v1/bindings" && authed:
		var req agentapi.Bind
		_ = json.NewDecoder(io.LimitReader(r.Body, 4096)).Decode(&req)
		b, err := payword.ParseBinding(req.Bind)
		if err != nil {
			agentFail(w, http.StatusBadRequest, agentapi.Error{Message: "bad binding", Code: agentapi.CodeBadBinding})
			return
		}
		a.bindings++
		k := fmt.Sprint(b.Serial, b.Segment)
		if o, ok := a.owners[k]; ok && o != b.Vendor {
			agentFail(w, http.StatusConflict, agentapi.Error{Message: "bound elsewhere", Code: agentapi.CodeSegmentOwned, Owner: o})
			return
		}
		a.owners[k] = b.Vendor
		agentAnswer(w, agentapi.Binding{Owner: b.Vendor})
	default:
		agentFail(w, http.StatusUnauthorized, agentapi.Error{Message: "no", Code: agentapi.CodeUnauthorized})
	}
}

// agentAnswer and agentFail write the fake agent's JSON as the agent does.
func agentAnswer(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

func agentFail(w http.ResponseWriter, status int, e agentapi.Error) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(e)
}

// env is a handler under test with a real Redis (or a Cluster: url) and a
// fake agent.
type env struct {
	t     testing.TB
	redis *redistest.Server
	url   string // the store's URL, if not redis's
	agent *fakeAgent
}

func (e *env) storeURL() string {
	if e.url != "" {
		return e.url
	}
	return e.redis.URL()
}

func newEnv(t testing.TB) *env {
	return &env{t: t, redis: redistest.Start(t), agent: newFakeAgent(t)}
}

// newClusterEnv is newEnv with the store on a Cluster of three primaries.
func newClusterEnv(t testing.TB) *env {
	return &env{t: t, url: redistest.StartCluster(t, 3).URL(), agent: newFakeAgent(t)}
}

const testGrantKey = "0123456789abcdef0123456789abcdef"

// config returns a handler config for the env; mods adjust it.
func (e *env) config(mods ...func(*Handler)) *Handler {
	h := &Handler{
		Vendor: testVendor, APIToken: "secret-token", Agent: e.agent.URL, Redis: e.storeURL(),
		GrantKey: testGrantKey, Keys: map[string]string{e.agent.key.ID: pubB64(e.agent.key)},
		CRLInterval: caddy.Duration(100 * time.Millisecond),
		Rules: []Rule{
			{Pattern: "/articles/*", Price: 2},
			{Pattern: "/issues/*/*", Price: 20, Scope: "/issues/*/"},
			{Pattern: "/live/*", Price: 1, Mode: ModeOnline},
		},
		Free: []string{"/articles/index.html"},
	}
	for _, m := range mods {
		m(h)
	}
	return h
}

// handler provisions a handler, cleaned up with the test, with the 2 s
// reclaim delay these tests were written for.
func (e *env) handler(mods ...func(*Handler)) *Handler {
	e.t.Helper()
	h := provisionAsShipped(e, mods...)
	h.be.reclaimIdle.Store(int64(2 * time.Second))
	return h
}

// content is the upstream: it echoes the placeholders it was given.
var content = caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
	repl := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer)
	user, _ := repl.GetString("http.paywall.user")
	auth, _ := repl.GetString("http.paywall.auth")
	w.Header().Set("X-User", user)
	w.Header().Set("X-Auth", auth)
	_, _ = io.WriteString(w, "content of "+r.URL.Path)
	return nil
})

// do runs one request through h; it returns the response and the status
// of a returned handler error (0 if none).
func do(h *Handler, r *http.Request, next caddyhttp.Handler) (*httptest.ResponseRecorder, int) {
	repl := caddy.NewReplacer()
	r = r.WithContext(context.WithValue(r.Context(), caddy.ReplacerCtxKey, repl))
	w := httptest.NewRecorder()
	if next == nil {
		next = content
	}
	err := h.ServeHTTP(w, r, next)
	var he caddyhttp.HandlerError
	if errors.As(err, &he) {
		return w, he.StatusCode
	} else if err != nil {
		return w, -1
	}
	return w, 0
}

func get(path string, hdr ...string) *http.Request {
	r := httptest.NewRequest(http.MethodGet, "http://news.example"+path, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		r.Header.Add(hdr[i], hdr[i+1])
	}
	return r
}

// status is the response's effective status.
func status(w *httptest.ResponseRecorder, errStatus int) int {
	if errStatus != 0 {
		return errStatus
	}
	return w.Code
}

func waitFor(t testing.TB, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func ed25519Key(b byte) ed25519.PrivateKey { return ed25519.NewKeyFromSeed(paytest.Seed(b)) }

func mustRedis(t *testing.T, url string) redis.UniversalClient {
	rdb, err := redisurl.New(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rdb.Close() })
	return rdb
}

func redisZ(score float64, member []byte) redis.Z { return redis.Z{Score: score, Member: member} }

func fmtKey(s payword.Serial, g uint32) string { return fmt.Sprint(s, g) }

func (a *fakeAgent) bindingCount() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.bindings
}

func testutilCount(c prometheus.Counter) float64 {
	var m dto.Metric
	_ = c.Write(&m)
	return m.GetCounter().GetValue()
}
