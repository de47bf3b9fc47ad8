package agent

import (
	"context"
	"fmt"
	"html"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/hashwall/hashwall/payword"
)

// rows are the cells of the rows of the page's first table body, text only.
func (p page) rows() [][]string {
	body := p.body
	if i := strings.Index(body, "<tbody>"); i >= 0 {
		body = body[i:]
	}
	if i := strings.Index(body, "</tbody>"); i >= 0 {
		body = body[:i]
	}
	var out [][]string
	for _, tr := range regexp.MustCompile(`(?s)<tr[^>]*>(.*?)</tr>`).FindAllStringSubmatch(body, -1) {
		var row []string
		for _, td := range regexp.MustCompile(`(?s)<td[^>]*>(.*?)</td>`).FindAllStringSubmatch(tr[1], -1) {
			row = append(row, html.UnescapeString(regexp.MustCompile(`<[^>]+>`).ReplaceAllString(td[1], "")))
		}
		out = append(out, row)
	}
	return out
}

// moneyWorld is two vendors' claims as TestVendorViews makes them: paid
// claims, a void, a refused claim and a double-spend.
func moneyWorld(t *testing.T, e *env, va, vb string) *wallet {
	w := e.buy(e.user("alice", 1000), 256)
	claim := func(g, i, p uint32, to, product string) payword.Claim {
		c := w.claim(g, i, p, to)
		c.Product = product
		return c
	}
	b := claim(0, 5, 2, "planet", "/tram")
	e.expectReport("paid:3 paid:2", va, "planet", "b1", claim(0, 3, 3, "planet", "/moon"), b)
	e.expectReport("voided:2", va, "planet", "b3", voidOf(b))
	forged := claim(1, 4, 1, "planet", `/<script>alert(1)</script>`)
	forged.Token[0] ^= 1
	e.clock.Add(-3 * 24 * time.Hour)
	e.expectReport("invalid:0 paid:4", va, "planet", "b4", forged, claim(0, 9, 4, "planet", "/moon"))
	e.clock.Add(3 * 24 * time.Hour)
	e.expectReport("double_spend:11", vb, "globe", "b5", claim(0, 11, 2, "globe", "/sport"))
	return w
}

// TestVendorMoneyPagesAreTheAPIs: every figure of the revenue, claims and
// disputes pages is the API's for the same vendor and period.
func TestVendorMoneyPagesAreTheAPIs(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	srv := e.webServer()
	b, va := e.vendorBrowser(srv, "planet")
	vb := e.vendor("globe")
	w := moneyWorld(t, e, va, vb)
	ctx := context.Background()
	api := e.as(va)

	// Revenue: the tiles, each day with activity, the chart's bars, the products.
	p := b.get("/vendor/revenue")
	if p.code != http.StatusOK {
		t.Fatalf("%d\n%s", p.code, p.body)
	}
	rev, err := api.Revenue(ctx, time.Time{}, time.Time{})
	e.mustOK(err, "revenue")
	if got, want := p.figure(t, "Net takings"), e.a.money(rev.Credited-rev.Voided); got != want {
		t.Errorf("net takings %q, API %q", got, want)
	}
	if got := p.figure(t, "Claims paid"); got != fmt.Sprint(rev.Claims) {
		t.Errorf("claims paid %q, API %d", got, rev.Claims)
	}
	if got := p.figure(t, "Voided"); got != e.a.money(rev.Voided) {
		t.Errorf("voided %q, API %d", got, rev.Voided)
	}
	var want [][]string
	for _, d := range rev.Days {
		if d.Claims != 0 || d.Credited != 0 || d.Voided != 0 {
			want = append(want, []string{d.Day, fmt.Sprint(d.Claims), e.a.money(d.Credited), e.a.money(d.Voided), e.a.money(d.Net)})
		}
	}
	if got := p.rows(); fmt.Sprint(got) != fmt.Sprint(want) || len(want) != 2 {
		t.Errorf("days\n%q\nAPI\n%q", got, want)
	}
	if n := strings.Count(p.body, `<rect class="bar"`); n != len(rev.Days)+2 { // a bar a day, and one per product
		t.Errorf("%d bars for %d days and 2 products", n, len(rev.Days))
	}
	for _, d := range rev.Days {
		if !strings.Contains(p.body, "<title>"+d.Day+": "+html.EscapeString(e.a.money(d.Net))+"</title>") {
			t.Errorf("no bar for %s of %s", d.Day, e.a.money(d.Net))
		}
	}
	prods, err := api.Products(ctx, 0, productsPage)
	e.mustOK(err, "products")
	for _, pr := range prods.Products {
		if !strings.Contains(p.body, `<text class="name" x="0" y="15">`+pr.Product+`</text>`) ||
			!strings.Contains(p.body, ">"+html.EscapeString(e.a.money(pr.Value))+"</text>") {
			t.Errorf("product %s of %s not shown", pr.Product, e.a.money(pr.Value))
		}
	}

	// Claims: the rows are the API's page.
	p = b.get("/vendor/claims")
	cl, err := api.Claims(ctx, "", defaultPage)
	e.mustOK(err, "claims")
	rows := p.rows()
	if len(rows) != len(cl.Claims) || len(rows) != 5 {
		t.Fatalf("%d rows, API %d claims\n%s", len(rows), len(cl.Claims), p.body)
	}
	for i, c := range cl.Claims {
		r := rows[i]
		if r[1] != c.Product || !strings.HasPrefix(r[2], c.Serial[:8]+"… ") || !strings.Contains(p.body, `title="`+c.Serial+`"`) || r[3] != verdictWords[c.Verdict] ||
			r[4] != fmt.Sprint(c.Tokens) || r[5] != e.a.money(c.Value) || r[0] != time.Unix(c.Time, 0).UTC().Format("2006-01-02 15:04") {
			t.Errorf("row %d %q, API %+v", i, r, c)
		}
	}
	if strings.Contains(p.body, "<script>alert(1)") || !strings.Contains(p.body, "&lt;script&gt;alert(1)&lt;/script&gt;") {
		t.Error("a product is not escaped")
	}

	// Disputes: planet's two cases, in words naming the certificate.
	p = b.get("/vendor/disputes")
	ds, err := api.Disputes(ctx, 0, defaultPage)
	e.mustOK(err, "disputes")
	if n := len(regexp.MustCompile(`<li[ >]`).FindAllString(p.body, -1)); n != len(ds.Cases) || n != 2 {
		t.Fatalf("%d cases shown, API %d\n%s", n, len(ds.Cases), p.body)
	}
	for _, want := range []string{"A reader spent your tokens again elsewhere", "segment 0 of certificate " + w.cert.Serial.String(), "then paid globe with it too",
		"A claim of yours was refused", "segment 1 of certificate"} {
		if !strings.Contains(p.body, want) {
			t.Errorf("disputes page lacks %q", want)
		}
	}
	// globe sees the same case from its side, and none of planet's claims.
	gb := newBrowser(t, srv)
	gb.vendorLogin(vb)
	if p := gb.get("/vendor/disputes"); !strings.Contains(p.body, "You were paid with tokens spent before") || strings.Contains(p.body, "A claim of yours was refused") {
		t.Errorf("globe's disputes:\n%s", p.body)
	}
	if p := gb.get("/vendor/claims"); len(p.rows()) != 1 || strings.Contains(p.body, "/moon") {
		t.Errorf("globe's claims:\n%s", p.body)
	}
}

// TestVendorMoneyPagesRefuse: a hostile query shows a clear message (or
// the first page), never another vendor's data, and changes nothing.
func TestVendorMoneyPagesRefuse(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	srv := e.webServer()
	b, va := e.vendorBrowser(srv, "planet")
	moneyWorld(t, e, va, e.vendor("globe"))
	before := e.snapshot()
	for _, c := range []struct {
		path string
		code int
		has  string
	}{
		{"/vendor/revenue?from=yesterday", 200, "at most a year apart"},
		{"/vendor/revenue?from=2000-01-01&to=2026-01-01", 200, "at most a year apart"},
		{"/vendor/revenue?from=2026-12-03&to=2026-12-01", 200, "at most a year apart"},
		{"/vendor/revenue?p=-7", 200, "/moon"},
		{"/vendor/revenue?p=99999999999999999999", 200, "/moon"},
		{"/vendor/revenue?p=100000", 200, "No article"},
		{"/vendor/revenue?p=100001", 200, "/moon"},
		{"/vendor/revenue?vendor=globe", 200, "/moon"},
		{"/vendor/claims?before=1-2-3", 400, "not a page of your claims"},
		{"/vendor/claims?before=%3Cscript%3E", 400, "not a page of your claims"},
		{"/vendor/claims?vendor=globe", 200, "/moon"},
		{"/vendor/disputes?p=-1", 200, "A claim of yours was refused"},
		{"/vendor/disputes?vendor=globe", 200, "A claim of yours was refused"},
	} {
		p := b.get(c.path)
		if p.code != c.code || !strings.Contains(p.body, c.has) || strings.Contains(p.body, "/sport") {
			t.Errorf("%s: %d, want %d with %q\n%s", c.path, p.code, c.code, c.has, p.body)
		}
	}
	if after := e.snapshot(); after != before {
		t.Fatal("a page changed the store")
	}
}
