package paywall

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hashwall/hashwall/payword"
)

// TestE2EOnlySuccessfulAnswersCharged: real Caddy, agent, Redis and CMS.
// A rule-priced page whose upstream answers 404, 503, 301 or not at all
// is voided: the reader gets the site's answer without a grant, a repeat
// never reaches the CMS, and once the claims reach the agent the vendor
// holds only the value of the page served and the reader has the rest
// back. An upstream-priced page answered 404 spends nothing: the same
// tokens then buy the page.
func TestE2EOnlySuccessfulAnswersCharged(t *testing.T) {
	e2eVoids(t, newWorld(t, worldOpts{}))
}

func e2eVoids(t *testing.T, w *world) {
	wal := w.buy(64)
	unit := int64(wal.UnitValue)
	balance := func() int64 {
		t.Helper()
		a, err := w.reader.Me(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		return a.Balance
	}
	// Claims of earlier tests in the same world still on their way would
	// move both figures below.
	w.drained()
	before, credited := balance(), w.credited()

	// Segment 0 at 2 tokens a page: indices 2, 4, 6, 8 voided, 10 served.
	idx := uint32(0)
	for _, c := range []struct {
		path   string
		status int
	}{
		{"/articles/missing-moon", 404},
		{"/articles/broken-mars", 503},
		{"/articles/moved-venus", 301},
		{"/articles/unreachable-pluto", 502}, // the upstream does not answer: Caddy's 502
	} {
		idx += 2
		pay := wal.Header(t, 0, idx, 2, testVendor, c.path)
		resp, body := w.fetch(noRedirect(w.hc), "GET", w.news+c.path, "Authorization", pay)
		if resp.StatusCode != c.status || resp.Header.Get(payword.ErrorHeader) != string(payword.CodeVoided) {
			t.Fatalf("%s: %d %q, want %d voided", c.path, resp.StatusCode, resp.Header.Get(payword.ErrorHeader), c.status)
		}
		if resp.Header.Get(payword.ReceiptHeader) != "" || len(resp.Cookies()) != 0 || !strings.Contains(resp.Header.Get("Cache-Control"), "no-store") {
			t.Fatalf("%s: a voided answer carries a grant or may be cached: %v", c.path, resp.Header)
		}
		if c.status != 502 && !strings.Contains(body, e2eMarker) {
			t.Fatalf("%s: the site's own answer is not passed on: %q", c.path, body)
		}
		// Sent again (a wallet that lost the answer): refused, unserved.
		hits := w.cms.hitsOf(c.path)
		resp, _ = w.fetch(nil, "GET", w.news+c.path, "Authorization", pay)
		if resp.StatusCode != http.StatusConflict || resp.Header.Get(payword.ErrorHeader) != string(payword.CodeVoided) {
			t.Fatalf("%s repeated: %d %q", c.path, resp.StatusCode, resp.Header.Get(payword.ErrorHeader))
		}
		if w.cms.hitsOf(c.path) != hits {
			t.Fatalf("%s: a voided payment sent again reached the CMS", c.path)
		}
	}
	// The segment goes on from there: the voided tokens stay spent.
	if resp, _ := w.fetch(nil, "GET", w.news+"/articles/late", "Authorization", wal.Header(t, 0, idx, 2, testVendor, "/articles/late")); resp.StatusCode != http.StatusConflict {
		t.Fatalf("voided tokens spent again: %d", resp.StatusCode)
	}
	idx += 2
	resp, body := w.fetch(nil, "GET", w.news+"/articles/sun", "Authorization", wal.Header(t, 0, idx, 2, testVendor, "/articles/sun"))
	if resp.StatusCode != 200 || resp.Header.Get(payword.ReceiptHeader) == "" || body != w.content("/articles/sun") {
		t.Fatalf("a served page: %d %q", resp.StatusCode, body)
	}

	// Upstream-priced: a priced 404 spends nothing, and the same payment
	// then buys the page.
	idx += 3
	pay := wal.Header(t, 0, idx, 3, testVendor, "/news/missing-today")
	resp, _ = w.fetch(nil, "GET", w.news+"/news/missing-today", "Authorization", pay)
	if resp.StatusCode != 404 || resp.Header.Get(payword.ErrorHeader) != string(payword.CodeNotCharged) || resp.Header.Get(payword.ReceiptHeader) != "" {
		t.Fatalf("upstream-priced 404: %d %v", resp.StatusCode, resp.Header)
	}
	pay = wal.Header(t, 0, idx, 3, testVendor, "/news/today")
	if resp, _ = w.fetch(nil, "GET", w.news+"/news/today", "Authorization", pay); resp.StatusCode != 200 || resp.Header.Get(payword.ReceiptHeader) == "" {
		t.Fatalf("the unspent tokens at the same vendor: %d %q", resp.StatusCode, resp.Header.Get(payword.ErrorHeader))
	}

	// At the agent: 2 + 3 tokens paid for, 8 given back.
	w.drained()
	for deadline := time.Now().Add(10 * time.Second); balance() != before+8*unit; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			st, _ := w.api.WithToken(w.token).Statement(t.Context(), time.Time{}, time.Time{})
			t.Fatalf("the voids did not reach the agent: the reader's balance moved by %d, want %d; the vendor's statement: %+v",
				balance()-before, 8*unit, st)
		}
	}
	if got := w.credited() - credited; got != 5*unit {
		t.Fatalf("the vendor was credited %d, want %d (two pages served)", got, 5*unit)
	}
	st, err := w.api.WithToken(w.token).Statement(t.Context(), time.Time{}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	var voided int64
	for _, e := range st.Entries {
		if e.Kind == "void" {
			voided += e.Amount
		}
	}
	if voided != -8*unit {
		t.Fatalf("the vendor's statement shows %d voided, want %d: %+v", voided, -8*unit, st.Entries)
	}
	w.ledgerOK()
	if n := len(w.fraud()); n != 0 {
		t.Fatalf("voids made fraud cases: %+v", w.fraud())
	}
}

// noRedirect is c without following redirects.
func noRedirect(c *http.Client) *http.Client {
	cc := *c
	cc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &cc
}
