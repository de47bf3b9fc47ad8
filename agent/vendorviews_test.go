package agent

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashwall/hashwall/agentapi"
	"github.com/hashwall/hashwall/payword"
)

// TestVendorViews: what the vendor's views show is what its reports did,
// and agrees with its ledger: every recorded claim and void once (a
// redelivered batch or claim adds nothing), per-day takings and per-product
// values that sum to the balance, and the disputes of both vendors of a
// double-spend; each vendor sees only its own.
func TestVendorViews(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	va, vb := e.vendor("planet"), e.vendor("globe")
	alice := e.user("alice", 1000)
	w := e.buy(alice, 256)
	claim := func(g, i, p uint32, to, product string) payword.Claim {
		c := w.claim(g, i, p, to)
		c.Product = product
		return c
	}
	a, b := claim(0, 3, 3, "planet", "/moon"), claim(0, 5, 2, "planet", "/tram")
	e.expectReport("paid:3 paid:2", va, "planet", "b1", a, b)
	e.expectReport("paid:3 paid:2", va, "planet", "b1", a, b) // the batch again: its stored answer
	e.expectReport("duplicate:0", va, "planet", "b2", b)      // the claim again
	e.expectReport("voided:2", va, "planet", "b3", voidOf(b))
	forged := claim(1, 4, 1, "planet", "/moon")
	forged.Token[0] ^= 1
	e.expectReport("invalid:0 paid:4", va, "planet", "b4", forged, claim(0, 9, 4, "planet", "/moon"))
	e.expectReport("double_spend:11", vb, "globe", "b5", claim(0, 11, 2, "globe", "/sport"))

	ctx := context.Background()
	pc, gc := e.as(va), e.as(vb)
	cl, err := pc.Claims(ctx, "", 0)
	e.mustOK(err, "claims")
	var got []string
	var sum int64
	for _, c := range cl.Claims {
		got = append(got, fmt.Sprintf("%s %s %d/%d %d", c.Product, c.Verdict, c.Index, c.Tokens, c.Value))
		sum += c.Value
	}
	want := []string{"/moon paid 9/4 4", "/moon invalid 4/0 0", "/tram voided 5/2 -2", "/tram paid 5/2 2", "/moon paid 3/3 3"}
	if !slices.Equal(got, want) || cl.Next != "" {
		t.Fatalf("planet's claims, newest first:\n%q\nwant\n%q (next %q)", got, want, cl.Next)
	}
	if bal := e.balance("v:planet"); sum != bal || bal != 7 {
		t.Fatalf("claims sum to %d, balance %d, want 7", sum, bal)
	}
	// Paged two at a time: the same claims.
	var paged []agentapi.ClaimRecord
	for before := ""; ; {
		p, err := pc.Claims(ctx, before, 2)
		e.mustOK(err, "claims page")
		paged = append(paged, p.Claims...)
		if before = p.Next; before == "" {
			break
		}
	}
	if !slices.Equal(paged, cl.Claims) {
		t.Fatalf("paged claims %+v, want %+v", paged, cl.Claims)
	}

	// Today's takings are the ledger's claims and void entries; over the
	// period they are the statement's credited.
	rev, err := pc.Revenue(ctx, time.Time{}, time.Time{})
	e.mustOK(err, "revenue")
	today := e.clock.Now().UTC().Format(time.DateOnly)
	if len(rev.Days) != 30 || rev.To != today || rev.Days[29].Day != today {
		t.Fatalf("revenue period %s..%s, %d days, want 30 up to %s", rev.From, rev.To, len(rev.Days), today)
	}
	if d := rev.Days[29]; d.Claims != 3 || d.Credited != 9 || d.Voided != 2 || d.Net != 7 || rev.Credited != 9 {
		t.Fatalf("today's takings %+v (totals %+v)", d, rev)
	}
	st, err := pc.Statement(ctx, time.Time{}, time.Time{})
	e.mustOK(err, "statement")
	var ledger = map[string]int64{}
	for _, en := range st.Entries {
		ledger[en.Kind] += en.Amount
	}
	if ledger["claims"] != rev.Credited || -ledger["void"] != rev.Voided || st.Credited != rev.Credited-rev.Voided {
		t.Fatalf("revenue %+v against the statement's entries %v (credited %d)", rev, ledger, st.Credited)
	}
	// What each product earned, net of voids, sums to the balance.
	pr, err := pc.Products(ctx, 0, 0)
	e.mustOK(err, "products")
	if fmt.Sprint(pr.Products) != "[{/moon 7} {/tram 0}]" || pr.Next != 0 { // /tram's 2 voided
		t.Fatalf("planet's products %+v", pr)
	}

	// The double-spend is in both vendors' disputes, newest first; the
	// forged claim only in planet's.
	for c, n := range map[*agentapi.Client]int{pc: 2, gc: 1} {
		d, err := c.Disputes(ctx, 0, 0)
		e.mustOK(err, "disputes")
		if len(d.Cases) != n || d.Cases[0].Kind != "double_spend" || d.Cases[0].Vendor != "globe" || d.Cases[0].Owner != "planet" ||
			d.Cases[0].Serial != w.cert.Serial.String() || d.Cases[0].Seg != 0 || n == 2 && (d.Cases[1].Kind != "invalid" || d.Cases[1].Seg != 1) {
			t.Fatalf("disputes %+v, want %d", d, n)
		}
	}
	gcl, err := gc.Claims(ctx, "", 0)
	e.mustOK(err, "globe's claims")
	if len(gcl.Claims) != 1 || gcl.Claims[0].Verdict != agentapi.VerdictDoubleSpend || gcl.Claims[0].Product != "/sport" {
		t.Fatalf("globe's claims %+v", gcl)
	}
	gp, err := gc.Products(ctx, 0, 0)
	e.mustOK(err, "globe's products")
	if fmt.Sprint(gp.Products) != "[{/sport 11}]" {
		t.Fatalf("globe's products %+v", gp)
	}
	e.checkLedger()
}

// TestVendorViewsPaging: products and disputes page by offset, claims by
// id, and the pages join up to the whole list.
func TestVendorViewsPaging(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	va := e.vendor("planet")
	alice := e.user("alice", 100000)
	w := e.buy(alice, 4096)
	var claims []payword.Claim
	for i := range uint32(30) {
		c := w.claim(0, 2*i+2, 2, "planet")
		c.Product = fmt.Sprintf("/a/%d", i%7)
		claims = append(claims, c)
	}
	res, code := e.report(va, "planet", "b1", claims...)
	e.must(code, 200, "report")
	if len(res.Results) != 30 {
		t.Fatal(res)
	}
	ctx := context.Background()
	c := e.as(va)
	var all []agentapi.ProductValue
	for off := 0; ; {
		p, err := c.Products(ctx, off, 3)
		e.mustOK(err, "products")
		all = append(all, p.Products...)
		if off = p.Next; off == 0 {
			break
		}
	}
	var total int64
	for i, p := range all {
		total += p.Value
		if i > 0 && p.Value > all[i-1].Value {
			t.Fatalf("products not highest first: %+v", all)
		}
	}
	if len(all) != 7 || total != e.balance("v:planet") {
		t.Fatalf("%d products worth %d, balance %d", len(all), total, e.balance("v:planet"))
	}
	n := 0
	for before := ""; ; {
		p, err := c.Claims(ctx, before, 7)
		e.mustOK(err, "claims")
		n += len(p.Claims)
		if before = p.Next; before == "" {
			break
		}
	}
	if n != 30 {
		t.Fatalf("%d claims paged, want 30", n)
	}
}

// TestVendorViewsRefuse: hostile queries get a clear 400 and change
// nothing; without a vendor's token, 401.
func TestVendorViewsRefuse(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	va := e.vendor("planet")
	before := e.snapshot()
	for _, c := range []struct{ path, auth string }{
		{"/v1/claims?limit=0", va},
		{"/v1/claims?limit=501", va},
		{"/v1/claims?limit=x", va},
		{"/v1/claims?before=1-2-3", va},
		{"/v1/claims?before=-", va},
		{"/v1/claims?before=%2B", va},
		{"/v1/claims?before=99999999999999999999999-1", va},
		{"/v1/revenue?from=2026-12-03&to=2026-12-01", va},
		{"/v1/revenue?from=2020-01-01&to=2026-12-01", va},
		{"/v1/revenue?from=yesterday", va},
		{"/v1/revenue?to=2026-13-01", va},
		{"/v1/revenue/products?offset=-1", va},
		{"/v1/revenue/products?offset=100001", va},
		{"/v1/disputes?offset=1e3", va},
		{"/v1/disputes?limit=-5", va},
	} {
		if r := e.raw(http.MethodGet, c.path, c.auth); r.Code != http.StatusBadRequest {
			t.Errorf("%s: %d %s, want 400", c.path, r.Code, r.Body)
		}
	}
	for _, p := range []string{"/v1/claims", "/v1/revenue", "/v1/revenue/products", "/v1/disputes"} {
		for _, auth := range []string{"", "Bearer " + adminToken, "Bearer hwv_forged"} {
			if r := e.raw(http.MethodGet, p, auth); r.Code != http.StatusUnauthorized {
				t.Errorf("%s as %q: %d, want 401", p, auth, r.Code)
			}
		}
	}
	if after := e.snapshot(); after != before {
		t.Fatal("a refused view changed the store")
	}
}

// FuzzVendorViewQuery: the views' query parsers never panic, and what they
// accept is within bounds.
func FuzzVendorViewQuery(f *testing.F) {
	for _, s := range []string{"", "0", "50", "500", "501", "-1", "1e3", "100000", "1-0", "1796083200000-7", "-", "+", "(1-0", "2026-12-03", "2026-02-30", "0000-01-01"} {
		f.Add(s, s)
	}
	a := &Agent{cfg: Config{Now: func() time.Time { return time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC) }}}
	f.Fuzz(func(t *testing.T, x, y string) {
		r := &http.Request{URL: &url.URL{RawQuery: url.Values{"limit": {x}, "offset": {y}}.Encode()}}
		if off, lim, err := pageParams(r, "offset"); err == nil && (lim < 1 || lim > maxPage || off < 0 || off > maxOffset) {
			t.Fatalf("accepted offset %d, limit %d", off, lim)
		}
		if validStreamID(x) && strings.Count(x, "-") != 1 {
			t.Fatalf("accepted stream id %q", x)
		}
		if from, to, err := a.revenuePeriod(x, y); err == nil {
			if n := unixDay(to) - unixDay(from) + 1; n < 1 || n > maxRevenueDays {
				t.Fatalf("accepted %s..%s", from, to)
			}
		}
	})
}
