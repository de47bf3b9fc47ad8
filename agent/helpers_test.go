package agent

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hashwall/hashwall/agentapi"
	"github.com/hashwall/hashwall/internal/testutil/redistest"
	"github.com/hashwall/hashwall/payword"
)

const adminToken = "test-admin-token"

var testKey = payword.SigningKey{ID: "agent-test", Key: ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, 32))}

// clock is an injectable, settable time.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

type env struct {
	t     testing.TB
	srv   *redistest.Server
	rdb   redis.UniversalClient
	a     *Agent
	clock *clock
	cfg   Config
}

func testConfig(rdb redis.UniversalClient, c *clock) Config {
	return Config{
		Redis: rdb, SigningKeys: []payword.SigningKey{testKey}, MasterKey: bytes.Repeat([]byte{9}, 32),
		AdminToken: adminToken, WebhookSecret: []byte("whsec"), Settings: Settings{Ephemeral: true},
		Argon: ArgonParams{Time: 1, Memory: 64, Threads: 1}, Now: c.Now,
	}
}

func newEnv(t testing.TB, opts ...redistest.Option) *env {
	t.Helper()
	srv := redistest.Start(t, opts...)
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	t.Cleanup(func() { rdb.Close() })
	e := envOn(t, rdb)
	e.srv = srv
	return e
}

// envOn runs an agent on the given store.
func envOn(t testing.TB, rdb redis.UniversalClient) *env {
	t.Helper()
	e := &env{t: t, rdb: rdb, clock: &clock{t: time.Unix(1796083200, 0)}}
	e.cfg = testConfig(rdb, e.clock)
	e.restartAgent()
	return e
}

// restartAgent replaces the agent by a fresh one on the same Redis, as a
// process restart would (empty caches).
func (e *env) restartAgent() {
	e.t.Helper()
	a, err := New(context.Background(), e.cfg)
	if err != nil {
		e.t.Fatal(err)
	}
	e.a = a
}

// call sends a request through the handler and decodes a JSON answer into out (if non-nil).
func (e *env) call(method, path, auth string, body any, out any) int {
	e.t.Helper()
	var rd *bytes.Reader
	switch b := body.(type) {
	case nil:
		rd = bytes.NewReader(nil)
	case []byte:
		rd = bytes.NewReader(b)
	case string:
		rd = bytes.NewReader([]byte(b))
	default:
		j, _ := json.Marshal(b)
		rd = bytes.NewReader(j)
	}
	rec := e.raw(method, path, auth, rd)
	if out != nil && rec.Body.Len() > 0 {
		if err := json.Unmarshal(rec.Body.Bytes(), out); err != nil {
			e.t.Fatalf("%s %s: %d, not JSON: %q", method, path, rec.Code, rec.Body.String())
		}
	}
	return rec.Code
}

func (e *env) raw(method, path, auth string, body ...io.Reader) *httptest.ResponseRecorder {
	var rd io.Reader
	if len(body) > 0 {
		rd = body[0]
	}
	req := httptest.NewRequest(method, path, rd)
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	rec := httptest.NewRecorder()
	e.a.ServeHTTP(rec, req)
	return rec
}

// client is an agentapi.Client of the agent, called in process like raw.
func (e *env) client() *agentapi.Client {
	return agentapi.NewClient("http://agent.test", &http.Client{Transport: inProcess{e}})
}

// inProcess serves a client's requests with the env's current agent.
type inProcess struct{ e *env }

func (t inProcess) RoundTrip(r *http.Request) (*http.Response, error) {
	var body io.Reader
	if r.Body != nil {
		body = r.Body
	}
	req := httptest.NewRequest(r.Method, r.URL.RequestURI(), body).WithContext(r.Context())
	req.Header = r.Header.Clone()
	rec := httptest.NewRecorder()
	t.e.a.ServeHTTP(rec, req)
	return rec.Result(), nil
}

func (e *env) must(code, want int, what string) {
	e.t.Helper()
	if code != want {
		e.t.Fatalf("%s: status %d, want %d", what, code, want)
	}
}

// as is the client that sends the Authorization value auth ("Bearer …"
// or "").
func (e *env) as(auth string) *agentapi.Client {
	if tok, ok := strings.CutPrefix(auth, "Bearer "); ok {
		return e.client().WithToken(tok)
	}
	return e.client()
}

// status is the HTTP status of a client call that answered (2xx: ok).
func status(err error, ok int) int {
	if err == nil {
		return ok
	}
	if e, refused := errors.AsType[*agentapi.Error](err); refused {
		return e.Status
	}
	return 0
}

// mustOK fails the test on a client call's error.
func (e *env) mustOK(err error, what string) {
	e.t.Helper()
	if err != nil {
		e.t.Fatalf("%s: %v", what, err)
	}
}

// settle runs the admin's settlement.
func (e *env) settle() *agentapi.Settled {
	e.t.Helper()
	n, err := e.as("Bearer " + adminToken).Settle(context.Background())
	e.mustOK(err, "settle")
	return n
}

func (e *env) vendor(id string) string {
	e.t.Helper()
	v, err := e.as("Bearer "+adminToken).RegisterVendor(context.Background(), agentapi.RegisterVendor{Vendor: id})
	e.mustOK(err, "register vendor")
	return "Bearer " + v.Token
}

// user registers a user with credit and returns a session Authorization value.
func (e *env) user(name string, credit int64) string {
	e.t.Helper()
	ctx := context.Background()
	_, err := e.client().RegisterUser(ctx, agentapi.RegisterUser{Username: name, Password: "correct horse"})
	e.mustOK(err, "register user")
	if credit > 0 {
		_, err := e.as("Bearer "+adminToken).Credit(ctx, agentapi.Credit{User: name, Amount: credit})
		e.mustOK(err, "credit")
	}
	s, err := e.client().Login(ctx, name, "correct horse")
	e.mustOK(err, "login")
	return "Bearer " + s.Token
}

// wallet is what a user holds after a purchase.
type wallet struct {
	cert *payword.Certificate
	k    payword.Secret
	key  ed25519.PrivateKey
}

func (e *env) buy(auth string, tokens int) *wallet {
	e.t.Helper()
	w, code := e.tryBuy(auth, tokens)
	e.must(code, 201, "buy")
	return w
}

func (e *env) tryBuy(auth string, tokens int) (*wallet, int) {
	_, priv, _ := ed25519.GenerateKey(nil)
	b, err := e.as(auth).Buy(context.Background(), int64(tokens), priv.Public().(ed25519.PublicKey), "")
	if err != nil {
		return nil, status(err, 201)
	}
	return walletFrom(e.t, b, priv), 201
}

func walletFrom(t testing.TB, b *agentapi.Bundle, priv ed25519.PrivateKey) *wallet {
	raw, _ := b64.DecodeString(b.Certificate)
	c, err := payword.ParseCertificate(raw)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Verify(payword.KeySet{testKey.ID: testKey.Public()}); err != nil {
		t.Fatal(err)
	}
	w := &wallet{cert: c, key: priv}
	k, _ := b64.DecodeString(b.Secret)
	copy(w.k[:], k)
	if payword.NewTree(payword.Anchors(w.k, b.Segments, b.SegmentLen)).Root() != c.Root {
		t.Fatal("the secret does not derive the certificate's root")
	}
	return w
}

// claim builds vendor's claim of tokens (i-p, i] of segment g, bound to bindTo ("" = no binding).
func (w *wallet) claim(g, i, p uint32, bindTo string) payword.Claim {
	c := payword.Claim{Serial: w.cert.Serial, Segment: g, Index: i, Amount: p,
		Token: payword.TokenAt(w.k, g, int(i), int(w.cert.SegmentLen)), Product: "/a",
		Auth: fmt.Sprintf("auth-%s-%d-%d-%s", w.cert.Serial.String()[:8], g, i, bindTo), Time: 1}
	if bindTo != "" {
		b, _ := payword.Bind(w.cert, w.key, g, bindTo, time.Unix(1, 0))
		c.Binding = b.Raw()
	}
	return c
}

func (e *env) report(auth, vendor, batch string, claims ...payword.Claim) (agentapi.ReportResult, int) {
	e.t.Helper()
	res, err := e.as(auth).Report(context.Background(), &payword.Report{Vendor: vendor, Batch: batch, Claims: claims})
	if err != nil {
		return agentapi.ReportResult{}, status(err, 200)
	}
	return *res, 200
}

// expectReport posts a report and checks its verdicts ("paid:3 duplicate:0").
func (e *env) expectReport(want, auth, vendor, batch string, claims ...payword.Claim) {
	e.t.Helper()
	res, code := e.report(auth, vendor, batch, claims...)
	if got := e.verdicts(res); code != 200 || got != want {
		e.t.Fatalf("batch %s: %d %q, want %q", batch, code, got, want)
	}
}

func (e *env) verdicts(res agentapi.ReportResult) string {
	v := make([]string, len(res.Results))
	for i, r := range res.Results {
		v[i] = fmt.Sprintf("%s:%d", r.Verdict, r.Amount)
	}
	return strings.Join(v, " ")
}

func (e *env) balance(acct string) int64 {
	e.t.Helper()
	n, err := e.rdb.HGet(context.Background(), e.a.prefix+acct, "bal").Int64()
	if err != nil {
		e.t.Fatal(err)
	}
	return n
}

func (e *env) uid(name string) string {
	id, err := e.rdb.Get(context.Background(), e.a.prefix+"uname:"+name).Result()
	if err != nil {
		e.t.Fatal(err)
	}
	return id
}

func (e *env) checkLedger() {
	e.t.Helper()
	if err := e.a.CheckLedger(context.Background()); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) revoked(s payword.Serial) bool {
	page, err := e.a.CRLPage(context.Background(), 0)
	if err != nil {
		e.t.Fatal(err)
	}
	raw, _ := json.Marshal(page)
	crl, err := payword.OpenCRL(raw, e.a.Keys())
	if err != nil {
		e.t.Fatal(err)
	}
	for _, x := range crl.Entries {
		if x.Serial == s {
			return true
		}
	}
	return false
}

// snapshot is every agent key's value (sessions and the login throttle
// aside), to prove a refused request changed nothing: see state.
func (e *env) snapshot() string { return e.state() }

// refusal is a request the agent must refuse with status and code.
type refusal struct {
	name, method, path, auth string
	body                     any
	status                   int
	code                     agentapi.Code
}

// mustRefuse sends each request and checks its refusal, and that the
// refused request changed nothing in the store.
func (e *env) mustRefuse(t *testing.T, cases []refusal) {
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := e.snapshot()
			var got agentapi.Error
			if status := e.call(c.method, c.path, c.auth, c.body, &got); status != c.status || got.Code != c.code {
				t.Fatalf("got %d %q (%s), want %d %q", status, got.Code, got.Message, c.status, c.code)
			}
			if e.snapshot() != before {
				t.Fatal("a refused request changed the store")
			}
		})
	}
}
