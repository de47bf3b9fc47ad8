package agent

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/hashwall/hashwall/payword"
)

const paySite = "https://news.example"

// payEnv is a bank with vendor "daily" on paySite and reader ann (500
// tokens on her balance), logged in in a browser.
func payEnv(t *testing.T) (*env, *browser) {
	e := newEnv(t)
	auth := e.vendor("daily")
	_, err := e.as(auth).SetOrigins(context.Background(), "daily", []string{paySite})
	e.mustOK(err, "set origins")
	e.vendor("weekly")
	e.user("ann", 500)
	b := newBrowser(t, e.webServer())
	if p := b.login("ann", "correct horse"); p.code != http.StatusSeeOther {
		t.Fatalf("log-in: %d", p.code)
	}
	return e, b
}

func payLink(vendor, product, price, ret string) string {
	return "/pay?" + url.Values{"vendor": {vendor}, "product": {product}, "price": {price}, "realm": {"The Daily"}, "return": {ret}}.Encode()
}

// payFormOf checks a paying page and returns its payment.
func payFormOf(t *testing.T, p page, origin string) *payword.Payment {
	t.Helper()
	if p.code != http.StatusOK || !strings.Contains(p.body, `action="`+origin+`/.well-known/hashwall/pay"`) {
		t.Fatalf("not a paying page: %d\n%s", p.code, p.body)
	}
	if csp := p.header.Get("Content-Security-Policy"); !strings.Contains(csp, "form-action "+origin+";") ||
		!strings.Contains(csp, "frame-ancestors 'none'") || strings.Contains(csp, "unsafe-inline") {
		t.Fatalf("paying page's policy %q", csp)
	}
	pay, err := payword.ParseAuthorization("PayWord " + p.hidden("payment"))
	if err != nil {
		t.Fatalf("the form's payment: %v", err)
	}
	return pay
}

func TestPayPageClickThenAutomatic(t *testing.T) {
	e, b := payEnv(t)
	link := payLink("daily", "/a/1", "3", paySite+"/a/1?x=1")

	// No limit: the page asks.
	p := b.get(link)
	if p.code != http.StatusOK || !strings.Contains(p.body, "Pay 3 tokens") || p.hidden("nonce") == "" {
		t.Fatalf("pay page: %d\n%s", p.code, p.body)
	}
	f := url.Values{"csrf": {p.hidden("csrf")}, "nonce": {p.hidden("nonce")}, "auto": {"on"}, "daily": {"10"}}
	for _, k := range payFields {
		f.Set(k, p.hidden(k))
	}
	paid := b.post("/pay", f)
	pay := payFormOf(t, paid, paySite)
	if pay.Vendor != "daily" || pay.Product != "/a/1" || pay.Amount != 3 || paid.hidden("return") != "/a/1?x=1" {
		t.Fatalf("payment %+v, return %q", pay, paid.hidden("return"))
	}
	// The same form again (a reload) is the same payment.
	if again := b.post("/pay", f); again.hidden("payment") != paid.hidden("payment") {
		t.Fatal("a resent pay form paid again")
	}
	// The checkbox set a limit of 10 a day: 3 + 4 fit, then 4 more do not.
	e.clock.Add(hostedIdle) // the first payment has arrived: the segment is idle
	next := b.get(payLink("daily", "/a/2", "4", paySite+"/a/2"))
	if p2 := payFormOf(t, next, paySite); p2.Index != 7 || p2.Segment != pay.Segment {
		t.Fatalf("automatic payment i=%d g=%d", p2.Index, p2.Segment)
	}
	if over := b.get(payLink("daily", "/a/3", "4", paySite+"/a/3")); over.code != http.StatusOK || over.hidden("nonce") == "" {
		t.Fatalf("over the limit the page must ask: %d", over.code)
	}
	acct := b.get("/account")
	if !strings.Contains(acct.body, "/a/2") || !strings.Contains(acct.body, "The Daily") {
		t.Fatalf("the account page does not list the payments\n%s", acct.body)
	}
	e.checkLedger()
}

func TestPayPageLoginFirst(t *testing.T) {
	e, _ := payEnv(t)
	b := newBrowser(t, e.webServer())
	link := payLink("daily", "/a/1", "2", paySite+"/a/1")
	p := b.get(link)
	loc := p.header.Get("Location")
	if p.code != http.StatusSeeOther || !strings.HasPrefix(loc, "/login?next=") {
		t.Fatalf("not logged in: %d %q", p.code, loc)
	}
	in := b.submit(loc, "/login", url.Values{"username": {"ann"}, "password": {"correct horse"}, "next": {link}})
	if in.code != http.StatusSeeOther || in.header.Get("Location") != link {
		t.Fatalf("log-in goes on to %q (%d), want the pay page", in.header.Get("Location"), in.code)
	}
	// A next of another site is not followed.
	for _, next := range []string{"//evil.example/x", "https://evil.example/", "/\\evil.example", "javascript:alert(1)", "/a\r\nSet-Cookie: x=1"} {
		if got := safeNext(next); got != "/account" {
			t.Errorf("safeNext(%q) = %q", next, got)
		}
	}
}

func TestPayPageRefuses(t *testing.T) {
	e, b := payEnv(t)
	cases := []struct {
		name, link string
		code       int
	}{
		{"return on another origin", payLink("daily", "/a", "1", "https://evil.example/a"), 403},
		{"vendor other than the site's", payLink("weekly", "/a", "1", paySite+"/a"), 403},
		{"unknown vendor", payLink("nobody", "/a", "1", paySite+"/a"), 403},
		{"origin with a port", payLink("daily", "/a", "1", paySite+":8443/a"), 403},
		{"protocol-relative return", payLink("daily", "/a", "1", "//news.example/a"), 400},
		{"javascript return", payLink("daily", "/a", "1", "javascript:alert(1)"), 400},
		{"credentials", payLink("daily", "/a", "1", "https://u:p@news.example/a"), 400},
		{"fragment", payLink("daily", "/a", "1", paySite+"/a#x"), 400},
		{"backslash", payLink("daily", "/a", "1", paySite+"\\@evil.example/a"), 400},
		{"upper-case host", payLink("daily", "/a", "1", "https://NEWS.example/a"), 400},
		{"price 0", payLink("daily", "/a", "0", paySite+"/a"), 400},
		{"price too high", payLink("daily", "/a", "1025", paySite+"/a"), 400},
		{"price not a number", payLink("daily", "/a", "1e3", paySite+"/a"), 400},
		{"bad vendor id", payLink("da ily", "/a", "1", paySite+"/a"), 400},
		{"bad product", payLink("daily", "/a b", "1", paySite+"/a"), 400},
		{"field twice", payLink("daily", "/a", "1", paySite+"/a") + "&price=1", 400},
		{"unknown field", payLink("daily", "/a", "1", paySite+"/a") + "&payment=x", 400},
		{"realm with a control character", "/pay?" + url.Values{"vendor": {"daily"}, "product": {"/a"}, "price": {"1"}, "realm": {"a\x00b"}, "return": {paySite + "/a"}}.Encode(), 400},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := e.state()
			p := b.get(c.link)
			if p.code != c.code || strings.Contains(p.body, "hashwall/pay") {
				t.Fatalf("%d, want %d\n%s", p.code, c.code, p.body)
			}
			if e.state() != before {
				t.Fatal("a refused pay link changed the bank's state")
			}
		})
	}

	// Forged POSTs: another origin, no CSRF token, a bad nonce.
	p := b.get(payLink("daily", "/a", "1", paySite+"/a"))
	f := url.Values{"csrf": {p.hidden("csrf")}, "nonce": {p.hidden("nonce")}}
	for _, k := range payFields {
		f.Set(k, p.hidden(k))
	}
	before := e.state()
	evil := *b
	evil.origin = "https://evil.example"
	if got := evil.post("/pay", f); got.code != http.StatusForbidden {
		t.Fatalf("cross-origin POST: %d", got.code)
	}
	noToken := url.Values{}
	for k, v := range f {
		if k != "csrf" {
			noToken[k] = v
		}
	}
	if got := b.post("/pay", noToken); got.code != http.StatusForbidden {
		t.Fatalf("POST without CSRF token: %d", got.code)
	}
	f.Set("nonce", "../../x")
	if got := b.post("/pay", f); got.code != http.StatusBadRequest {
		t.Fatalf("bad nonce: %d", got.code)
	}
	if e.state() != before {
		t.Fatal("a forged pay form changed the bank's state")
	}

	// Markup in every field is escaped, never run.
	x := `"><script>alert(1)</script>`
	p = b.get("/pay?" + url.Values{"vendor": {"daily"}, "product": {"/a" + strings.ReplaceAll(x, " ", "")}, "price": {"1"}, "realm": {x}, "return": {paySite + "/a?q=" + url.QueryEscape(x)}}.Encode())
	if p.code != http.StatusOK || strings.Contains(p.body, "<script>alert") {
		t.Fatalf("markup in a pay link: %d\n%s", p.code, p.body)
	}
	// The page cannot be framed.
	if p.header.Get("X-Frame-Options") != "DENY" || !strings.Contains(p.header.Get("Content-Security-Policy"), "frame-ancestors 'none'") {
		t.Fatal("the pay page may be framed")
	}
}

func TestPayPageNoFunds(t *testing.T) {
	e := newEnv(t)
	auth := e.vendor("daily")
	_, err := e.as(auth).SetOrigins(context.Background(), "daily", []string{paySite})
	e.mustOK(err, "set origins")
	e.user("bob", 100) // less than one segment of 128
	b := newBrowser(t, e.webServer())
	b.login("bob", "correct horse")
	p := b.get(payLink("daily", "/a", "1", paySite+"/a"))
	f := url.Values{"csrf": {p.hidden("csrf")}, "nonce": {p.hidden("nonce")}}
	for _, k := range payFields {
		f.Set(k, p.hidden(k))
	}
	got := b.post("/pay", f)
	if got.code != http.StatusPaymentRequired || !strings.Contains(got.body, "Top up") || strings.Contains(got.body, "hashwall/pay") {
		t.Fatalf("no funds: %d\n%s", got.code, got.body)
	}
}

func FuzzParsePayOrder(f *testing.F) {
	f.Add("vendor=daily&product=%2Fa&price=2&realm=x&return=https%3A%2F%2Fnews.example%2Fa%3Fb%3D1")
	f.Add("vendor=daily&product=%2Fa&price=2&return=https%3A%2F%2Fnews.example%3A8443%2F")
	f.Add("vendor=a&product=/&price=0001&return=http://[::1]:80/x")
	f.Fuzz(func(t *testing.T, q string) {
		v, err := url.ParseQuery(q)
		if err != nil {
			return
		}
		o, msg := parsePayOrder(v)
		if (o == nil) == (msg == "") {
			t.Fatalf("order %v with message %q", o, msg)
		}
		if o == nil {
			return
		}
		if c, err := payword.ParseOrigin(o.Origin); err != nil || c != o.Origin {
			t.Fatalf("origin %q not canonical", o.Origin)
		}
		if !strings.HasPrefix(o.ReturnPath, "/") || strings.HasPrefix(o.ReturnPath, "//") || !strings.HasPrefix(o.Return, o.Origin+"/") {
			t.Fatalf("return %q path %q", o.Return, o.ReturnPath)
		}
		if o.Price < 1 || o.Price > payword.MaxSegmentLen || !payword.ValidID(o.Vendor) || !payword.ValidProduct(o.Product) {
			t.Fatalf("order %+v", o)
		}
	})
}

// TestBehindTLSCookies: behind a TLS-terminating proxy the pages' cookies
// are Secure and __Host- although the request came over plain HTTP.
func TestBehindTLSCookies(t *testing.T) {
	e := newEnv(t)
	e.cfg.BehindTLS = true
	e.restartAgent()
	p := newBrowser(t, e.webServer()).get("/login")
	c := p.header.Get("Set-Cookie")
	if !strings.HasPrefix(c, "__Host-hw_pre=") || !strings.Contains(c, "Secure") || !strings.Contains(c, "HttpOnly") {
		t.Fatalf("cookie %q", c)
	}
}
