package wallet

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashwall/hashwall/agentapi"
	"github.com/hashwall/hashwall/internal/testutil/paytest"
	"github.com/hashwall/hashwall/payword"
)

// agentKey signs the test certificates: paytest's bank key.
var agentKey = payword.SigningKey{ID: paytest.KeyID, Key: ed25519.NewKeyFromSeed(paytest.Seed(0x01))}

// certSeed tells apart the certificates of one test process.
var certSeed atomic.Uint32

// issue makes a certificate for w, as the agent would, and adds it.
func issue(t testing.TB, w *Wallet, segments, m int, scope string) *payword.Certificate {
	t.Helper()
	c := (&paytest.Bank{Key: agentKey}).Issue(t, paytest.Options{
		Seed: byte(certSeed.Add(1)), Scope: scope, Segments: segments, SegmentLen: m,
		UserID: "u1", UserKey: w.publicKey(), Lifetime: 24 * time.Hour,
	})
	if err := w.addCertificate(c.Raw(), c.K[:], false); err != nil {
		t.Fatal(err)
	}
	return c.Certificate
}

// fakeVendor is a minimal gateway with the behaviour the wallet relies on:
// 402 with a challenge, verification with payword, idempotent retries that
// return the same grant, Bearer grants. Knobs simulate misbehaviour.
type fakeVendor struct {
	*httptest.Server
	id     string
	prices map[string]uint32
	v      *payword.Verifier

	mu       sync.Mutex
	state    map[string]payword.State
	byHeader map[string]string // payment header → grant
	grants   map[string]string // grant → product
	accepted int               // tokens accepted

	dropBeforeSeen  int  // close the connection before looking at a payment, this many times
	dropAfterAccept int  // close the connection instead of answering, this many times
	noGrant         bool // answer 200 without a grant
	refuse          bool // refuse every payment with 400
}

func newFakeVendor(t testing.TB, id string, prices map[string]uint32) *fakeVendor {
	f := &fakeVendor{id: id, prices: prices, v: payword.NewVerifier(payword.KeySet{agentKey.ID: agentKey.Public()}),
		state: map[string]payword.State{}, byHeader: map[string]string{}, grants: map[string]string{}}
	f.Server = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.Close)
	bank.setOrigins(id, f.URL)
	return f
}

// bank is the test wallets' bank: it publishes its keys and each fake
// vendor's origins (the vendor's own URL), signed with agentKey, as the
// agent does. Tests start it in TestMain.
var bank *fakeBank

type fakeBank struct {
	*httptest.Server
	mu      sync.Mutex
	origins map[string][]string
	fetches map[string]int // origins documents served, per vendor
	keyHits int
}

func newFakeBank() *fakeBank {
	b := &fakeBank{origins: map[string][]string{}, fetches: map[string]int{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/keys", func(w http.ResponseWriter, r *http.Request) {
		b.mu.Lock()
		b.keyHits++
		b.mu.Unlock()
		json.NewEncoder(w).Encode(agentapi.Keys{Keys: []agentapi.Key{{KeyID: agentKey.ID, Public: payword.Bytes(agentKey.Public())}}})
	})
	mux.HandleFunc("GET /v1/vendors/{vendor}/origins", func(w http.ResponseWriter, r *http.Request) {
		v := r.PathValue("vendor")
		b.mu.Lock()
		origins, ok := b.origins[v]
		b.fetches[v]++
		b.mu.Unlock()
		if !ok {
			http.Error(w, `{"code":"unknown_vendor"}`, http.StatusNotFound)
			return
		}
		now := time.Now().Unix()
		body, _ := json.Marshal(payword.VendorOrigins{Kind: payword.OriginsKind, Vendor: v, Origins: origins, Time: now, Expires: now + 3600})
		w.Header().Set("Cache-Control", "public, max-age=300")
		json.NewEncoder(w).Encode(payword.Seal(agentKey, body))
	})
	b.Server = httptest.NewServer(mux)
	return b
}

// setOrigins publishes vendor's origins (site URLs, canonicalised).
func (b *fakeBank) setOrigins(vendor string, sites ...string) {
	var list []string
	for _, s := range sites {
		o, err := payword.ParseOrigin(s)
		if err != nil {
			panic(err)
		}
		list = append(list, o)
	}
	b.mu.Lock()
	b.origins[vendor] = list
	b.mu.Unlock()
}

func (b *fakeBank) served(vendor string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.fetches[vendor]
}

func (f *fakeVendor) serve(w http.ResponseWriter, r *http.Request) {
	price, ok := f.prices[r.URL.Path]
	if !ok {
		fmt.Fprint(w, "free")
		return
	}
	auth := r.Header.Get("Authorization")
	f.mu.Lock()
	defer f.mu.Unlock()
	if tok, ok := strings.CutPrefix(auth, "Bearer "); ok && f.grants[tok] == r.URL.Path {
		fmt.Fprint(w, "content of "+r.URL.Path)
		return
	}
	if !strings.HasPrefix(auth, "PayWord ") {
		w.Header().Set("WWW-Authenticate", payword.Challenge{Realm: "test", Vendor: f.id, Price: price, Product: r.URL.Path}.String())
		w.WriteHeader(http.StatusPaymentRequired)
		return
	}
	if f.dropBeforeSeen > 0 {
		f.dropBeforeSeen--
		conn, _, _ := w.(http.Hijacker).Hijack()
		conn.Close()
		return
	}
	if strings.HasPrefix(r.URL.Path, "/absent") {
		// The page is missing, as an upstream-priced page's upstream says:
		// the payment is not spent.
		w.Header().Set(payword.ErrorHeader, string(payword.CodeNotCharged))
		http.NotFound(w, r)
		return
	}
	grant, seen := f.byHeader[auth]
	if !seen {
		if f.refuse {
			problem(w, http.StatusBadRequest, "refused")
			return
		}
		p, err := payword.ParseAuthorization(auth)
		if err != nil {
			problem(w, http.StatusBadRequest, "malformed")
			return
		}
		key := p.Cert.Serial.String() + fmt.Sprint(p.Segment)
		var last *payword.State
		if s, ok := f.state[key]; ok {
			last = &s
		}
		st, err := f.v.Verify(p, payword.Request{Vendor: f.id, Product: r.URL.Path, Price: price, Now: time.Now()}, last)
		if err != nil {
			code := "rejected"
			if errors.Is(err, payword.ErrReplay) {
				code = "replay"
			}
			problem(w, http.StatusConflict, code)
			return
		}
		f.state[key] = st
		f.accepted += int(p.Amount)
		b := make([]byte, 8)
		rand.Read(b)
		grant = hex.EncodeToString(b)
		f.byHeader[auth] = grant
		f.grants[grant] = r.URL.Path
	}
	if f.dropAfterAccept > 0 {
		f.dropAfterAccept--
		conn, _, _ := w.(http.Hijacker).Hijack()
		conn.Close()
		return
	}
	if strings.HasPrefix(r.URL.Path, "/gone") {
		// Paid, but the page behind the paywall is missing: voided.
		w.Header().Set(payword.ErrorHeader, string(payword.CodeVoided))
		http.NotFound(w, r)
		return
	}
	if !f.noGrant {
		w.Header().Set(payword.ReceiptHeader, grant)
		http.SetCookie(w, &http.Cookie{Name: "hw_grant", Value: grant, Path: r.URL.Path, MaxAge: 3600})
	}
	fmt.Fprint(w, "content of "+r.URL.Path)
}

func problem(w http.ResponseWriter, status int, code string) {
	w.Header().Set(payword.ErrorHeader, code)
	w.WriteHeader(status)
}
