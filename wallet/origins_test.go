package wallet

import (
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashwall/hashwall/payword"
)

// relaySite is a site that is not vendor: it shows vendor's own challenge
// and, when paid, replays the payment at vendor and serves what it got.
func relaySite(t *testing.T, vendor *fakeVendor) (*httptest.Server, *atomic.Int32) {
	var payments atomic.Int32
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		req, _ := http.NewRequest(http.MethodGet, vendor.URL+r.URL.Path, nil)
		if auth := r.Header.Get("Authorization"); strings.HasPrefix(auth, "PayWord ") {
			payments.Add(1)
			req.Header.Set("Authorization", auth)
		}
		resp, err := http.DefaultTransport.RoundTrip(req)
		if err != nil {
			http.Error(w, err.Error(), 502)
			return
		}
		defer resp.Body.Close()
		for _, h := range []string{"WWW-Authenticate", payword.ReceiptHeader, payword.ErrorHeader} {
			if v := resp.Header.Get(h); v != "" {
				w.Header().Set(h, v)
			}
		}
		w.WriteHeader(resp.StatusCode)
		io.Copy(w, resp.Body)
	}))
	t.Cleanup(s.Close)
	return s, &payments
}

// TestRelayIsRefused: a site relaying vendor planet's challenge is not
// paid: no token chosen, no segment bound, nothing reaches planet; the
// refusal is in the history. Planet's own site is paid as before.
func TestRelayIsRefused(t *testing.T) {
	w, _ := testWallet(t)
	issue(t, w, 4, 8, "*")
	planet := newFakeVendor(t, "planet", map[string]uint32{"/a": 2})
	relay, payments := relaySite(t, planet)
	tr := &Transport{Wallet: w}
	_, err := get(t, tr, relay.URL+"/a")
	var oe *OriginError
	if !errors.As(err, &oe) || oe.Vendor != "planet" || !strings.Contains(err.Error(), "nothing was paid") {
		t.Fatalf("relay: %v", err)
	}
	b := w.Balance()[0]
	if payments.Load() != 0 || planet.accepted != 0 || b.Spent != 0 || b.Pending != 0 || len(w.snapshot().Certs[0].Segs) != 0 {
		t.Fatalf("the relay got something: %d payments, planet accepted %d, balance %+v", payments.Load(), planet.accepted, b)
	}
	st := w.snapshot()
	if last := st.History[len(st.History)-1]; last.Kind != "refused-origin" || last.Vendor != "planet" || last.Amount != 2 {
		t.Fatalf("history %+v", last)
	}
	if body, err := get(t, tr, planet.URL+"/a"); err != nil || body != "content of /a" || planet.accepted != 2 {
		t.Fatalf("planet's own site: %q %v", body, err)
	}
}

// hostileSite challenges in the name of a fresh vendor on every visit and
// refuses every payment with status (400: a refusal; 500: no verdict, the
// payment stays pending).
func hostileSite(t *testing.T, status int) (*httptest.Server, *atomic.Int32, *atomic.Int32) {
	var visits, payments atomic.Int32
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.Header.Get("Authorization"), "PayWord ") {
			payments.Add(1)
			problem(w, status, "refused")
			return
		}
		n := visits.Add(1)
		w.Header().Set("WWW-Authenticate", payword.Challenge{Vendor: fmt.Sprintf("fresh-%d", n), Price: 1, Product: r.URL.Path}.String())
		w.WriteHeader(http.StatusPaymentRequired)
	}))
	t.Cleanup(s.Close)
	return s, &visits, &payments
}

// TestFreshVendorsBurnNoSegment: 20 visits to a site naming a fresh vendor
// each time bind no segment when the vendors did not publish the site, and
// at most MaxVendorsPerSiteDay when they all did (vendors registered by the
// attacker), whether the site refuses the payments or leaves them
// unanswered (pending).
func TestFreshVendorsBurnNoSegment(t *testing.T) {
	for _, c := range []struct {
		listed bool
		status int
	}{{false, 400}, {true, 400}, {true, 500}} {
		listed := c.listed
		t.Run(fmt.Sprintf("vendors list the site: %v, answer %d", listed, c.status), func(t *testing.T) {
			w, _ := testWallet(t)
			issue(t, w, 10, 8, "*")
			w.SetLimits(Limits{PerRequest: 10, PerSiteDay: 0})
			site, _, payments := hostileSite(t, c.status)
			if listed {
				for i := 1; i <= 20; i++ {
					bank.setOrigins(fmt.Sprintf("fresh-%d", i), site.URL)
				}
			}
			tr := &Transport{Wallet: w}
			for range 20 {
				if _, err := get(t, tr, site.URL+"/a"); err == nil {
					t.Fatal("a refusing site served the page")
				}
			}
			bound := len(w.snapshot().Certs[0].Segs)
			want := 0
			if listed {
				want = MaxVendorsPerSiteDay
			}
			if bound != want || (c.status == 400 && int(payments.Load()) != want) {
				t.Fatalf("%d segments bound, %d payments sent; want %d", bound, payments.Load(), want)
			}
			if b := w.Balance()[0]; b.Spent+b.Pending != 0 && c.status == 400 || b.Free != (10-want)*8 {
				t.Fatalf("balance %+v", b)
			}
			_, err := get(t, tr, site.URL+"/a")
			var tm *TooManyVendorsError
			if !errors.As(err, &tm) {
				t.Fatalf("21st visit: %v", err)
			}
		})
	}
}

// TestRefusalsCountTowardSiteLimit: a vendor refusing payments, and the
// wallet refusing a site, both use up the site's daily limit.
func TestRefusalsCountTowardSiteLimit(t *testing.T) {
	w, _ := testWallet(t)
	issue(t, w, 4, 8, "*")
	w.SetLimits(Limits{PerRequest: 10, PerSiteDay: 10})
	v := newFakeVendor(t, "planet", map[string]uint32{"/a": 3})
	v.refuse = true
	tr := &Transport{Wallet: w}
	for i := range 3 {
		if _, err := get(t, tr, v.URL+"/a"); err == nil || errors.As(err, new(*OverLimitError)) {
			t.Fatalf("refusal %d: %v", i, err)
		}
	}
	var ol *OverLimitError
	if _, err := get(t, tr, v.URL+"/a"); !errors.As(err, &ol) || ol.Limit != 1 {
		t.Fatalf("after 9 tokens refused of 10: %v", err)
	}

	other := newFakeVendor(t, "globe", map[string]uint32{"/b": 4})
	relay, _ := relaySite(t, other)
	for i := range 2 {
		var oe *OriginError
		if _, err := get(t, tr, relay.URL+"/b"); !errors.As(err, &oe) {
			t.Fatalf("relay visit %d: %v", i, err)
		}
	}
	if _, err := get(t, tr, relay.URL+"/b"); !errors.As(err, &ol) {
		t.Fatalf("after 8 tokens refused at the relay: %v", err)
	}
	if other.accepted != 0 || v.accepted != 0 {
		t.Fatal("something was paid")
	}
}

// The origin checked is that of the request that got the 402: a redirect
// from elsewhere to the vendor's site is paid; the vendor's site
// redirecting to a relay is not.
func TestOriginAfterRedirects(t *testing.T) {
	w, _ := testWallet(t)
	issue(t, w, 4, 8, "*")
	planet := newFakeVendor(t, "planet", map[string]uint32{"/a": 1})
	portal := httptest.NewServer(http.RedirectHandler(planet.URL+"/a", http.StatusFound))
	defer portal.Close()
	if body, err := get(t, &Transport{Wallet: w}, portal.URL+"/go"); err != nil || body != "content of /a" {
		t.Fatalf("redirected to the vendor: %q %v", body, err)
	}
	relay, _ := relaySite(t, planet)
	planet.prices["/b"] = 1
	away := httptest.NewServer(http.RedirectHandler(relay.URL+"/b", http.StatusFound))
	defer away.Close()
	var oe *OriginError
	if _, err := get(t, &Transport{Wallet: w}, away.URL+"/b"); !errors.As(err, &oe) || oe.Origin != strings.TrimSuffix(relay.URL, "/") {
		t.Fatalf("redirected to a relay: %v", err)
	}
	if planet.accepted != 1 {
		t.Fatalf("planet accepted %d", planet.accepted)
	}
}

// TestOriginsDocumentTrust: the document is cached, verified with the
// bank's keys pinned in the wallet file, and refused (nothing paid) when
// forged, for another vendor, or unreachable.
func TestOriginsDocumentTrust(t *testing.T) {
	w, path := testWallet(t)
	issue(t, w, 4, 16, "*")
	v := newFakeVendor(t, "planet", map[string]uint32{"/a": 1, "/b": 1, "/c": 1})
	before := bank.served("planet")
	tr := &Transport{Wallet: w}
	for _, p := range []string{"/a", "/b", "/c"} {
		if _, err := get(t, tr, v.URL+p); err != nil {
			t.Fatal(err)
		}
	}
	if n := bank.served("planet") - before; n != 1 {
		t.Fatalf("the origins document was fetched %d times for 3 payments", n)
	}
	if k := w.snapshot().AgentKeys[agentKey.ID]; string(k) != string(agentKey.Public()) {
		t.Fatal("the bank's key is not pinned in the wallet")
	}

	// A forged document: the right key id, another key.
	forger := payword.SigningKey{ID: agentKey.ID, Key: ed25519.NewKeyFromSeed([]byte("0123456789abcdef0123456789abcdef"))}
	evil := newFakeVendor(t, "evil", map[string]uint32{"/x": 1})
	fake := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/origins") {
			now := time.Now().Unix()
			body, _ := json.Marshal(payword.VendorOrigins{Kind: payword.OriginsKind, Vendor: "evil", Origins: []string{evil.URL}, Time: now, Expires: now + 3600})
			json.NewEncoder(rw).Encode(payword.Seal(forger, body))
			return
		}
		bank.Config.Handler.ServeHTTP(rw, r)
	}))
	defer fake.Close()
	w.Close()
	w2, err := Open(path, password)
	if err != nil {
		t.Fatal(err)
	}
	defer w2.Close()
	w2.st.Agent = fake.URL // the bank's channel now answers with a forger's documents
	var be *BankError
	if _, err := get(t, &Transport{Wallet: w2}, evil.URL+"/x"); !errors.As(err, &be) || !errors.Is(err, payword.ErrBadSignature) {
		t.Fatalf("forged document: %v", err)
	}
	// The bank unreachable: nothing paid either.
	w2.st.Agent = "http://127.0.0.1:1"
	if _, err := get(t, &Transport{Wallet: w2}, evil.URL+"/x"); !errors.As(err, &be) {
		t.Fatalf("bank down: %v", err)
	}
	if evil.accepted != 0 || len(w2.snapshot().Certs[0].Segs) != 1 {
		t.Fatal("something was paid or bound")
	}
}

func TestOriginBookIsBounded(t *testing.T) {
	var b originBook
	now := time.Now()
	for i := range maxOriginEntries + 50 {
		b.put(fmt.Sprint("v", i), &originEntry{until: now.Add(time.Duration(i) * time.Second)}, now)
	}
	if len(b.entries) != maxOriginEntries {
		t.Fatalf("%d entries", len(b.entries))
	}
	if _, ok := b.entries["v0"]; ok {
		t.Fatal("the oldest entry was kept")
	}
}
