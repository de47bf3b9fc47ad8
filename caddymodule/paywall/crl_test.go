package paywall

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/hashwall/hashwall/internal/testutil/paytest"
	"github.com/hashwall/hashwall/payword"
)

// mitm stands between the gateway and the agent, as a network attacker on
// plain HTTP (or with TLS broken) would: it relays, records what the agent
// signed, and can answer with recorded pages or forged keys instead.
type mitm struct {
	*httptest.Server
	upstream string

	mu       sync.Mutex
	pages    map[string][]byte // /v1/crl?since=… → the first answer recorded
	replay   bool              // answer /v1/crl from the recording
	anyPage  []byte            // if set, the answer to every /v1/crl
	keysBody func(real []byte) []byte
}

func newMITM(t *testing.T, upstream string) *mitm {
	m := &mitm{upstream: upstream, pages: map[string][]byte{}}
	m.Server = httptest.NewServer(http.HandlerFunc(m.serve))
	t.Cleanup(m.Close)
	return m
}

func (m *mitm) set(f func(m *mitm)) {
	m.mu.Lock()
	f(m)
	m.mu.Unlock()
}

func (m *mitm) serve(w http.ResponseWriter, r *http.Request) {
	m.mu.Lock()
	replay, anyPage, keysBody := m.replay, m.anyPage, m.keysBody
	recorded, seen := m.pages[r.URL.Path+"?"+r.URL.RawQuery]
	m.mu.Unlock()
	if r.URL.Path == "/v1/crl" && anyPage != nil {
		_, _ = w.Write(anyPage)
		return
	}
	if r.URL.Path == "/v1/crl" && replay && seen {
		_, _ = w.Write(recorded)
		return
	}
	req, _ := http.NewRequestWithContext(r.Context(), r.Method, m.upstream+r.URL.RequestURI(), r.Body)
	req.Header = r.Header.Clone()
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if r.URL.Path == "/v1/crl" && resp.StatusCode == 200 {
		m.mu.Lock()
		if _, ok := m.pages[r.URL.Path+"?"+r.URL.RawQuery]; !ok {
			m.pages[r.URL.Path+"?"+r.URL.RawQuery] = body
		}
		m.mu.Unlock()
	}
	if r.URL.Path == "/v1/keys" && keysBody != nil {
		body = keysBody(body)
	}
	w.WriteHeader(resp.StatusCode)
	_, _ = w.Write(body)
}

func (m *mitm) recorded(since uint64) []byte {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.pages[fmt.Sprintf("/v1/crl?since=%d", since)]
}

func paymentError(w *httptest.ResponseRecorder) string { return w.Header().Get("Payment-Error") }

// An attacker replaying the agent's own signed CRL pages cannot keep a
// gateway counting itself synced: a page answering another since is no
// sync, a page's signed time must be recent, and past crl_max_age payments
// stop (503 crl_stale) rather than accept a certificate revoked meanwhile.
func TestCRLReplayedPagesRefused(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	m := newMITM(t, e.agent.URL)
	h := e.handler(func(h *Handler) { h.Agent = m.URL; h.CRLMaxAge = caddy.Duration(2 * time.Second) })
	wal := paytest.NewBank(t).Issue(t, paytest.Options{Seed: 30})
	cheat := paytest.NewBank(t).Issue(t, paytest.Options{Seed: 31})
	waitFor(t, "the first page recorded", 2*time.Second, func() bool { return m.recorded(0) != nil })
	if w, es := do(h, get("/articles/a", "Authorization", wal.Header(t, 0, 2, 2, testVendor, "/articles/a")), nil); status(w, es) != 200 {
		t.Fatalf("pay: %d %q", status(w, es), paymentError(w))
	}

	// From now on the attacker answers every question with the empty page
	// the agent signed for since=0, and the agent revokes the cheat.
	m.set(func(m *mitm) { m.replay = true })
	e.agent.revoke(cheat.Serial)
	time.Sleep(3500 * time.Millisecond) // past crl_max_age and a whole second of page time
	w, es := do(h, get("/articles/b", "Authorization", cheat.Header(t, 0, 2, 2, testVendor, "/articles/b")), nil)
	if status(w, es) != http.StatusServiceUnavailable || paymentError(w) != "crl_stale" {
		t.Fatalf("revoked certificate behind a replayed CRL: %d %q", status(w, es), paymentError(w))
	}
	if w, es := do(h, get("/articles/b", "Authorization", wal.Header(t, 0, 4, 2, testVendor, "/articles/b")), nil); status(w, es) != http.StatusServiceUnavailable {
		t.Fatalf("payment behind a replayed CRL: %d %q", status(w, es), paymentError(w))
	}

	// The real agent again: the revocation arrives and payments resume.
	m.set(func(m *mitm) { m.replay = false; m.pages = map[string][]byte{} })
	waitFor(t, "a fresh CRL", 5*time.Second, func() bool {
		w, es := do(h, get("/articles/b", "Authorization", wal.Header(t, 0, 4, 2, testVendor, "/articles/b")), nil)
		return status(w, es) == 200
	})
	if w, es := do(h, get("/articles/b", "Authorization", cheat.Header(t, 0, 2, 2, testVendor, "/articles/b")), nil); paymentError(w) != "revoked" {
		t.Fatalf("revoked certificate: %d %q", status(w, es), paymentError(w))
	}
}

// A page the agent signed for another question (an older since, a head
// behind the one already seen) is refused; the gateway stays stale.
func TestCRLOutOfSequencePagesRefused(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	m := newMITM(t, e.agent.URL)
	h := e.handler(func(h *Handler) { h.Agent = m.URL; h.CRLMaxAge = caddy.Duration(2 * time.Second) })
	wal := paytest.NewBank(t).Issue(t, paytest.Options{Seed: 32})
	waitFor(t, "the first page recorded", 2*time.Second, func() bool { return m.recorded(0) != nil })
	first := m.recorded(0) // since=0, head 0
	e.agent.revoke(paytest.NewBank(t).Issue(t, paytest.Options{Seed: 33}).Serial)
	waitFor(t, "the revocation synced", 3*time.Second, func() bool { return h.be.crl.since() >= 1 })

	// Now asked since=1, the attacker answers with the since=0 page,
	// signed a moment ago by the real agent (not yet too old).
	m.set(func(m *mitm) { m.anyPage = first })
	time.Sleep(2500 * time.Millisecond)
	if w, es := do(h, get("/articles/a", "Authorization", wal.Header(t, 0, 2, 2, testVendor, "/articles/a")), nil); status(w, es) != http.StatusServiceUnavailable || paymentError(w) != "crl_stale" {
		t.Fatalf("payment behind an out-of-sequence CRL: %d %q", status(w, es), paymentError(w))
	}
}

// A network attacker serving /v1/keys cannot make the gateway trust a key
// because a payment names it: with configured keys and with keys pinned at
// start alike, a certificate under an injected key is refused.
func TestInjectedAgentKeyNotTrusted(t *testing.T) {
	t.Parallel()
	for _, configured := range []bool{true, false} {
		t.Run(fmt.Sprintf("configured=%v", configured), func(t *testing.T) {
			e := newEnv(t)
			m := newMITM(t, e.agent.URL)
			h := e.handler(func(h *Handler) {
				h.Agent = m.URL
				if !configured {
					h.Keys = nil
				}
			})
			good := paytest.NewBank(t).Issue(t, paytest.Options{Seed: 34})
			if w, es := do(h, get("/articles/a", "Authorization", good.Header(t, 0, 2, 2, testVendor, "/articles/a")), nil); status(w, es) != 200 {
				t.Fatalf("pay: %d %q", status(w, es), paymentError(w))
			}
			evil := payword.SigningKey{ID: "agent-2027", Key: ed25519Key(0x66)}
			m.set(func(m *mitm) {
				m.keysBody = func(real []byte) []byte {
					// The key in the list, and announced under its own signature.
					inj := fmt.Sprintf(`{"kid":%q,"public":%q},`, evil.ID, pubB64(evil))
					body := bytes.Replace(real, []byte(`"keys":[`), []byte(`"keys":[`+inj), 1)
					ann, _ := json.Marshal(payword.AnnounceKeys([]payword.SigningKey{evil}, time.Now())[0])
					return bytes.Replace(body, []byte(`"signed":[`), append([]byte(`"signed":[`), append(ann, ',')...), 1)
				}
			})
			mallory := paytest.NewBank(t).Issue(t, paytest.Options{Seed: 35})
			if _, err := mallory.Sign(evil); err != nil {
				t.Fatal(err)
			}
			for range 2 {
				// As if the refetch interval had passed.
				h.be.keys.mu.Lock()
				h.be.keys.lastFetch = time.Time{}
				h.be.keys.mu.Unlock()
				w, es := do(h, get("/articles/b", "Authorization", mallory.Header(t, 0, 2, 2, testVendor, "/articles/b")), nil)
				if status(w, es) != http.StatusForbidden || paymentError(w) != "bad_signature" {
					t.Fatalf("certificate under an injected key: %d %q", status(w, es), paymentError(w))
				}
			}
			if _, ok := h.be.keys.cur.Load().keys[evil.ID]; ok {
				t.Fatal("the injected key is trusted")
			}
			if n, _ := h.be.rdb.HExists(t.Context(), h.be.ks.keys(), evil.ID).Result(); n {
				t.Fatal("the injected key is pinned in the vendor's Redis")
			}
		})
	}
}

// A new or restarted gateway is not fresh before it has synced: with the
// agent unreachable it refuses payments unless its vendor's Redis holds a
// copy synced within crl_max_age, and a Redis that lost its copy is noticed.
func TestRestartedGatewayKnowsItsCRLAge(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	maxAge := caddy.Duration(2 * time.Second)
	cheat := paytest.NewBank(t).Issue(t, paytest.Options{Seed: 36})
	wal := paytest.NewBank(t).Issue(t, paytest.Options{Seed: 37})
	e.agent.revoke(cheat.Serial)
	h := e.handler(func(h *Handler) { h.CRLMaxAge = maxAge })
	waitFor(t, "the first sync", 2*time.Second, func() bool { return h.be.crl.revoked(cheat.Serial) })
	_ = h.Cleanup() // the gateway stops
	e.agent.setDown(true)

	// Restarted at once: the vendor's copy is recent and holds the revocation.
	h2 := e.handler(func(h *Handler) { h.CRLMaxAge = maxAge; h.CRLInterval *= 2 })
	if w, es := do(h2, get("/articles/a", "Authorization", wal.Header(t, 0, 2, 2, testVendor, "/articles/a")), nil); status(w, es) != 200 {
		t.Fatalf("pay on a recent copy: %d %q", status(w, es), paymentError(w))
	}
	if w, es := do(h2, get("/articles/a", "Authorization", cheat.Header(t, 0, 2, 2, testVendor, "/articles/a")), nil); paymentError(w) != "revoked" {
		t.Fatalf("revoked on a recent copy: %d %q", status(w, es), paymentError(w))
	}
	_ = h2.Cleanup()

	// Restarted later: the copy is older than crl_max_age.
	time.Sleep(2500 * time.Millisecond)
	h3 := e.handler(func(h *Handler) { h.CRLMaxAge = maxAge; h.CRLInterval *= 3 })
	if w, es := do(h3, get("/articles/a", "Authorization", wal.Header(t, 0, 4, 2, testVendor, "/articles/a")), nil); status(w, es) != http.StatusServiceUnavailable {
		t.Fatalf("pay on an old copy: %d %q", status(w, es), paymentError(w))
	}
	_ = h3.Cleanup()

	// The vendor's Redis lost everything (restart without persistence).
	if err := mustRedis(t, e.redis.URL()).FlushAll(t.Context()).Err(); err != nil {
		t.Fatal(err)
	}
	h4 := e.handler(func(h *Handler) { h.CRLMaxAge = maxAge; h.CRLInterval *= 4 })
	for _, w0 := range []*paytest.Cert{cheat, wal} {
		if w, es := do(h4, get("/articles/c", "Authorization", w0.Header(t, 1, 2, 2, testVendor, "/articles/c")), nil); status(w, es) != http.StatusServiceUnavailable || paymentError(w) != "crl_stale" {
			t.Fatalf("pay with a lost copy: %d %q", status(w, es), paymentError(w))
		}
	}
	e.agent.setDown(false)
	waitFor(t, "resynced", 5*time.Second, func() bool {
		w, es := do(h4, get("/articles/c", "Authorization", cheat.Header(t, 1, 2, 2, testVendor, "/articles/c")), nil)
		return status(w, es) == http.StatusForbidden && paymentError(w) == "revoked"
	})
}

func (a *fakeAgent) revokeUntil(s payword.Serial, exp int64) {
	a.mu.Lock()
	a.crl = append(a.crl, payword.CRLEntry{Seq: uint64(len(a.crl) + 1), Serial: s, Time: time.Now().Unix(), Exp: exp})
	a.mu.Unlock()
}

// Revocations of expired certificates leave the gateway's memory and the
// vendor's copy; a copy the vendor's Redis lost while the gateway ran is
// written back whole, so a gateway restarted later still has every entry.
func TestCRLCopyPrunedAndRewritten(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	gone, kept, later := paytest.NewBank(t).Issue(t, paytest.Options{Seed: 40}), paytest.NewBank(t).Issue(t, paytest.Options{Seed: 41}), paytest.NewBank(t).Issue(t, paytest.Options{Seed: 42})
	e.agent.revokeUntil(gone.Serial, time.Now().Add(-payword.CRLKeep-time.Minute).Unix())
	e.agent.revokeUntil(kept.Serial, time.Now().Add(time.Hour).Unix())
	h := e.handler(func(h *Handler) { h.CRLMaxAge = caddy.Duration(time.Minute) })
	waitFor(t, "the first sync", 2*time.Second, func() bool { return h.be.crl.revoked(kept.Serial) })
	if h.be.crl.revoked(gone.Serial) {
		t.Fatal("an expired revocation is held in memory")
	}
	if n, _ := h.be.rdb.ZCard(t.Context(), h.be.ks.crl()).Result(); n != 1 {
		t.Fatalf("%d entries in the vendor's copy", n)
	}

	if err := h.be.rdb.FlushAll(t.Context()).Err(); err != nil {
		t.Fatal(err)
	}
	e.agent.revokeUntil(later.Serial, time.Now().Add(time.Hour).Unix())
	waitFor(t, "the next sync", 2*time.Second, func() bool { return h.be.crl.revoked(later.Serial) })
	waitFor(t, "the copy written back", 2*time.Second, func() bool {
		n, _ := h.be.rdb.ZCard(t.Context(), h.be.ks.crl()).Result()
		return n == 2
	})
	ks := h.be.ks
	_ = h.Cleanup()
	e.agent.setDown(true)
	if n, _ := mustRedis(t, e.redis.URL()).HLen(t.Context(), crlHeadKey(ks)).Result(); n != 4 {
		t.Fatalf("the copy's head has %d fields", n)
	}
	h2 := e.handler(func(h *Handler) { h.CRLMaxAge = caddy.Duration(time.Minute); h.CRLInterval *= 2 })
	for _, w0 := range []*paytest.Cert{kept, later} {
		if w, es := do(h2, get("/articles/a", "Authorization", w0.Header(t, 0, 2, 2, testVendor, "/articles/a")), nil); paymentError(w) != "revoked" {
			t.Fatalf("restarted on the rewritten copy: %d %q", status(w, es), paymentError(w))
		}
	}
}

func TestAuthenticatedAgent(t *testing.T) {
	for url, want := range map[string]bool{
		"https://bank.example.com": true, "http://127.0.0.1:8080": true, "http://[::1]:80": true,
		"http://localhost:9000": true, "http://bank.example.com": false, "http://10.0.0.1": false,
		"http://127.0.0.1.evil.example": false, "ftp://127.0.0.1": false, "": false,
	} {
		if got := authenticatedAgent(url); got != want {
			t.Errorf("authenticatedAgent(%q) = %v", url, got)
		}
	}
}

// A rotation: the agent announces its new key under the old one's
// signature, and a gateway trusting the old key takes certificates of the
// new one; the announcement is pinned for the vendor's other gateways.
func TestRotatedAgentKeyLearnt(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	m := newMITM(t, e.agent.URL)
	next := payword.SigningKey{ID: "agent-2027", Key: ed25519Key(0x70)}
	m.set(func(m *mitm) {
		m.keysBody = func([]byte) []byte {
			signed, _ := json.Marshal(payword.AnnounceKeys([]payword.SigningKey{next, e.agent.key}, time.Now()))
			return []byte(`{"keys":[],"signed":` + string(signed) + `}`)
		}
	})
	h := e.handler(func(h *Handler) { h.Agent = m.URL })
	wal := paytest.NewBank(t).Issue(t, paytest.Options{Seed: 43})
	if _, err := wal.Sign(next); err != nil {
		t.Fatal(err)
	}
	if w, es := do(h, get("/articles/a", "Authorization", wal.Header(t, 0, 2, 2, testVendor, "/articles/a")), nil); status(w, es) != 200 {
		t.Fatalf("certificate under the rotated key: %d %q", status(w, es), paymentError(w))
	}
	if ok, _ := h.be.rdb.HExists(t.Context(), h.be.ks.keys(), next.ID).Result(); !ok {
		t.Fatal("the rotated key is not pinned")
	}
}
