package e2e

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/hashwall/hashwall/agentapi"
	"github.com/hashwall/hashwall/payword"
	"github.com/hashwall/hashwall/wallet"
)

// relay is a site that is not vendor: it forwards every request to vendor's
// gateway, shows its challenge, and replays any payment it gets there,
// serving the article it reads with it.
func relay(t *testing.T, vendorURL string) (*httptest.Server, *atomic.Int32) {
	var payments atomic.Int32
	s := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		req, _ := http.NewRequest(r.Method, vendorURL+r.URL.RequestURI(), nil)
		if auth := r.Header.Get("Authorization"); auth != "" {
			if strings.HasPrefix(auth, "PayWord ") {
				payments.Add(1)
			}
			req.Header.Set("Authorization", auth)
		}
		resp, err := http.DefaultTransport.RoundTrip(req)
		if err != nil {
			http.Error(rw, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		for k, v := range resp.Header {
			rw.Header()[k] = v
		}
		rw.WriteHeader(resp.StatusCode)
		io.Copy(rw, resp.Body)
	}))
	t.Cleanup(s.Close)
	return s, &payments
}

// freshVendorSite challenges in the name of a new vendor on every visit
// (fresh-1, fresh-2, …) and refuses every payment.
func freshVendorSite(t *testing.T, price uint32) (*httptest.Server, *atomic.Int32) {
	var visits, payments atomic.Int32
	s := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.Header.Get("Authorization"), "PayWord ") {
			payments.Add(1)
			rw.Header().Set("Payment-Error", "rejected")
			rw.WriteHeader(http.StatusBadRequest)
			return
		}
		n := visits.Add(1)
		rw.Header().Set("WWW-Authenticate", payword.Challenge{Vendor: fmt.Sprintf("fresh-%d", n), Price: price, Product: r.URL.Path}.String())
		rw.WriteHeader(http.StatusPaymentRequired)
	}))
	t.Cleanup(s.Close)
	return s, &payments
}

// TestRelayThroughFakeSite: the real wallet, a fake relaying site in front
// of the real gateway and agent. The relay is refused before anything is
// spent, refusals use up the site's daily limit, and once planet registers
// the relay's origin through the agent API the wallet pays it there.
func TestRelayThroughFakeSite(t *testing.T) {
	t.Parallel() // its own Redis, agent, gateway and ports
	w := newWorld(t)
	alice := w.reader("alice", 100000)
	planet := w.sites["planet"]
	alice.must(t, "buy", "256")
	site, payments := relay(t, planet)

	_, errOut, err := alice.run(t, "get", site.URL+"/articles/moon")
	if err == nil || !strings.Contains(errOut, `refused to pay: `+site.URL+` is not a site of vendor "planet"`) ||
		!strings.Contains(errOut, "nothing was paid") || !strings.Contains(errOut, "PUT /v1/vendors/planet/origins") {
		t.Fatalf("relay: %v\n%s", err, errOut)
	}
	if payments.Load() != 0 {
		t.Fatal("the relay received a payment")
	}
	if bal := alice.must(t, "balance"); !strings.Contains(bal, "free 256, spent 0, pending 0") || strings.Contains(bal, "left at") {
		t.Fatalf("balance after the relay:\n%s", bal)
	}
	if hist := alice.must(t, "history"); !strings.Contains(hist, "refused-origin") || !strings.Contains(hist, "not among the vendor's registered sites") {
		t.Fatalf("history:\n%s", hist)
	}

	// Refusals count toward the site's daily limit: 2 tokens refused, 2
	// more, then the limit of 5 leaves 1, too few for the next.
	alice.must(t, "limits", "--per-site-day", "5")
	if _, errOut, err = alice.run(t, "get", site.URL+"/articles/sun"); err == nil || !strings.Contains(errOut, "refused to pay") {
		t.Fatalf("second relay visit: %v %s", err, errOut)
	}
	if _, errOut, err = alice.run(t, "get", site.URL+"/articles/stars"); err == nil || !strings.Contains(errOut, "above your daily limit left for this site of 1") {
		t.Fatalf("third relay visit: %v %s", err, errOut)
	}
	alice.must(t, "limits", "--per-site-day", "200")

	// Planet's own site is paid as before.
	if out := alice.must(t, "get", planet+"/articles/moon"); !strings.Contains(out, "paid 2 token(s) to planet") {
		t.Fatalf("planet's own site: %s", out)
	}
	perTwo := w.firstCredit("planet")
	// Planet registers the relay as one of its sites (a mirror): from then
	// on the wallet pays there.
	set, err := w.agent().WithToken(w.tokens["planet"]).SetOrigins(t.Context(), "planet", []string{planet, site.URL})
	if err != nil || len(set.Origins) != 2 {
		t.Fatalf("planet adding an origin: %v %v", err, set)
	}
	if out := alice.must(t, "get", site.URL+"/articles/sun"); !strings.Contains(out, "paid 2 token(s) to planet") || !strings.Contains(out, "article /articles/sun") {
		t.Fatalf("the registered mirror: %s", out)
	}
	if payments.Load() != 1 {
		t.Fatalf("the mirror relayed %d payments, want 1", payments.Load())
	}
	// Two payments reached planet, none from the refused visits.
	w.waitCredited("planet", 2*perTwo)
}

// TestFreshVendorIdsBurnNoSegment: 20 visits to a site naming a fresh
// vendor each time and refusing every payment. Vendors the bank does not
// know get nothing: no segment is bound. Vendors an attacker registered at
// the bank (open registration) with that site as their origin get at most
// 3 segments bound, one per vendor, a day.
func TestFreshVendorIdsBurnNoSegment(t *testing.T) {
	t.Parallel() // its own Redis, agent, gateway and ports
	w := newWorld(t)
	alice := w.reader("alice", 100000)
	alice.must(t, "buy", "1280") // 10 segments of 128
	alice.must(t, "limits", "--per-site-day", "0")

	unknown, paidUnknown := freshVendorSite(t, 1)
	listed, paidListed := freshVendorSite(t, 1)
	for i := 1; i <= 20; i++ {
		q := agentapi.RegisterVendor{Vendor: fmt.Sprintf("fresh-%d", i), Origins: []string{listed.URL}}
		if _, err := w.agent().RegisterVendor(t.Context(), q); err != nil {
			t.Fatalf("registering fresh-%d: %v", i, err)
		}
	}
	// The visits go through alice's wallet in this process (a browser
	// extension keeps it open the same way); the CLI reads the result.
	wal, err := wallet.Open(alice.path, []byte(alice.password))
	if err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Transport: &wallet.Transport{Wallet: wal}}
	visit := func(u string) error {
		resp, err := client.Get(u)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return nil
			}
			err = fmt.Errorf("status %d", resp.StatusCode)
		}
		return err
	}
	// The bank knows fresh-N, but not as a vendor of the unknown site.
	for i := range 20 {
		var oe *wallet.OriginError
		var tm *wallet.TooManyVendorsError
		if err := visit(unknown.URL + "/a"); !errors.As(err, &oe) && !errors.As(err, &tm) {
			t.Fatalf("visit %d: %v", i+1, err)
		}
	}
	for i := range 20 {
		if err := visit(listed.URL + "/a"); err == nil {
			t.Fatalf("visit %d served", i+1)
		}
	}
	wal.Close()
	_, errOut, _ := alice.run(t, "get", listed.URL+"/a")
	if !strings.Contains(errOut, "different vendors in 24 hours (at most 3)") {
		t.Fatalf("21st visit: %s", errOut)
	}
	bal := alice.must(t, "balance")
	if paidUnknown.Load() != 0 {
		t.Fatalf("%d payments sent for unlisted vendors", paidUnknown.Load())
	}
	if n := strings.Count(bal, "left at fresh-"); n != 3 || paidListed.Load() != 3 || !strings.Contains(bal, "free 896, spent 0") {
		t.Fatalf("after 20 visits each: %d segments bound, %d payments sent:\n%s", n, paidListed.Load(), bal)
	}
}
