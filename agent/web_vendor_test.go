package agent

import (
	"context"
	"encoding/json"
	"html"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hashwall/hashwall/agentapi"
	"github.com/hashwall/hashwall/payword"
)

// vendorLogin logs the browser in to the vendor pages with an API token
// ("Bearer hwv_…" as env.vendor returns it, or the bare token).
func (b *browser) vendorLogin(auth string) page {
	b.t.Helper()
	return b.submit("/vendor/login", "/vendor/login", url.Values{"token": {strings.TrimPrefix(auth, "Bearer ")}})
}

// vendorBrowser is a browser logged in as vendor id, and the vendor's API
// Authorization value.
func (e *env) vendorBrowser(srv *httptest.Server, id string) (*browser, string) {
	e.t.Helper()
	auth := e.vendor(id)
	b := newBrowser(e.t, srv)
	if p := b.vendorLogin(auth); p.code != http.StatusSeeOther || p.header.Get("Location") != "/vendor" {
		e.t.Fatalf("vendor log-in: %d %s\n%s", p.code, p.header.Get("Location"), p.body)
	}
	return b, auth
}

// postCredit posts a vendor ledger entry through the agent's own credit
// script (post() in Lua), dated t: statements of many entries without
// thousands of claims.
func (e *env) postCredit(vendor string, amount int64, ref string, t int64) {
	e.t.Helper()
	res, err := e.a.run(context.Background(), credit, "v:"+vendor, amount, "claims", ref, t, "").Text()
	if err != nil || res != "ok" {
		e.t.Fatalf("credit: %q %v", res, err)
	}
}

// figure is the value of a tile of a vendor page ("Balance", "Credited", …).
func (p page) figure(t *testing.T, label string) string {
	t.Helper()
	re := regexp.MustCompile(`<p class="label">` + regexp.QuoteMeta(label) + `[^<]*</p><p class="figure">([^<]*)</p>`)
	m := re.FindStringSubmatch(p.body)
	if m == nil {
		t.Fatalf("no figure %q in\n%s", label, p.body)
	}
	return html.UnescapeString(m[1])
}

func TestVendorLogin(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	srv := e.webServer()
	va := e.vendor("planet")
	vb := e.vendor("globe")

	b := newBrowser(t, srv)
	p := b.vendorLogin(va)
	if p.code != http.StatusSeeOther || p.header.Get("Location") != "/vendor" {
		t.Fatalf("log in: %d %s\n%s", p.code, p.header.Get("Location"), p.body)
	}
	var set string
	for _, c := range p.header.Values("Set-Cookie") {
		if strings.HasPrefix(c, "hw_vendor=") {
			set = c
		}
	}
	if !strings.Contains(set, "HttpOnly") || !strings.Contains(set, "SameSite=Lax") || !strings.Contains(set, "Path=/") {
		t.Fatalf("vendor cookie attributes: %q", set)
	}
	if b.cookie("hw_session") != "" {
		t.Fatal("a vendor log-in set the readers' session cookie")
	}
	if p := b.get("/vendor"); p.code != 200 || !strings.Contains(p.body, "<code>planet</code>") || !strings.Contains(p.body, "Log out planet") {
		t.Fatalf("overview: %d\n%s", p.code, p.body)
	}
	if p := b.get("/vendor/login"); p.code != http.StatusSeeOther || p.header.Get("Location") != "/vendor" {
		t.Fatalf("log-in page when logged in: %d", p.code)
	}
	// The vendor session is not a reader's, nor an API token.
	if p := b.get("/account"); p.code != http.StatusSeeOther {
		t.Fatalf("a vendor session opened a reader page: %d", p.code)
	}
	if code := e.call("GET", "/v1/statement", "Bearer "+b.cookie("hw_vendor"), nil, nil); code != 401 {
		t.Fatalf("the vendor session cookie as an API token: %d", code)
	}

	for _, c := range []struct{ name, token, msg string }{
		{"bad token", "hwv_" + strings.Repeat("A", 43), "not the API token of a vendor"},
		{"not a token", "correct horse", "not the API token of a vendor"},
		{"reader session", strings.TrimPrefix(e.user("alice", 0), "Bearer "), "not the API token of a vendor"},
		{"empty", "", "Paste your API token"},
	} {
		t.Run(c.name, func(t *testing.T) {
			x := newBrowser(t, srv)
			p := x.vendorLogin(c.token)
			if p.code != http.StatusUnauthorized && p.code != http.StatusUnprocessableEntity || !strings.Contains(p.body, c.msg) {
				t.Fatalf("%d\n%s", p.code, p.body)
			}
			if x.cookie("hw_vendor") != "" {
				t.Fatal("a refused log-in set a session")
			}
		})
	}

	// A revoked vendor cannot log in, and its live sessions end.
	g := newBrowser(t, srv)
	if p := g.vendorLogin(vb); p.code != http.StatusSeeOther {
		t.Fatalf("globe log in: %d", p.code)
	}
	_, err := e.as("Bearer "+adminToken).Revoke(context.Background(), agentapi.Revoke{Vendor: "globe"})
	e.mustOK(err, "revoke globe")
	if p := newBrowser(t, srv).vendorLogin(vb); p.code != http.StatusForbidden || !strings.Contains(p.body, "closed") {
		t.Fatalf("revoked vendor's log-in: %d\n%s", p.code, p.body)
	}
	if p := g.get("/vendor"); p.code != http.StatusSeeOther || p.header.Get("Location") != "/vendor/login" {
		t.Fatalf("a revoked vendor's session: %d", p.code)
	}
}

// TestVendorLoginThrottle: wrong tokens from one address are refused with
// 429 after the throttle's failures, the right token too until the window
// ends; right log-ins cost nothing.
func TestVendorLoginThrottle(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	srv := e.webServer()
	va := e.vendor("planet")
	for range maxFailures + 3 { // right log-ins give their slot back
		if p := newBrowser(t, srv).vendorLogin(va); p.code != http.StatusSeeOther {
			t.Fatalf("log in: %d", p.code)
		}
	}
	x := newBrowser(t, srv)
	for i := range maxFailures {
		if p := x.vendorLogin("hwv_wrong" + strconv.Itoa(i)); p.code != http.StatusUnauthorized {
			t.Fatalf("failure %d: %d", i, p.code)
		}
	}
	p := x.vendorLogin("hwv_wrong")
	if p.code != http.StatusTooManyRequests || p.header.Get("Retry-After") == "" || !strings.Contains(p.body, "Too many failed log-ins") {
		t.Fatalf("after %d failures: %d %q\n%s", maxFailures, p.code, p.header.Get("Retry-After"), p.body)
	}
	if p := x.vendorLogin(va); p.code != http.StatusTooManyRequests {
		t.Fatalf("the right token during the lockout: %d", p.code)
	}
	e.clock.Add(failureWindow)
	if p := x.vendorLogin(va); p.code != http.StatusSeeOther {
		t.Fatalf("after the window: %d", p.code)
	}
}

// TestVendorPagesNeedSession: without a vendor session every page goes to
// the log-in, and a POST changes nothing.
func TestVendorPagesNeedSession(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	srv := e.webServer()
	e.vendor("planet")
	reader := newBrowser(t, srv)
	reader.signup("alice", "a long enough password") // a reader's session is no vendor's
	for _, b := range []*browser{newBrowser(t, srv), reader} {
		for _, path := range []string{"/vendor", "/vendor/statements", "/vendor/statements/download?vendor=planet",
			"/vendor/statements/download?format=csv", "/vendor/origins", "/vendor/token", "/vendor?vendor=planet"} {
			if p := b.get(path); p.code != http.StatusSeeOther || p.header.Get("Location") != "/vendor/login" {
				t.Fatalf("GET %s: %d %s", path, p.code, p.header.Get("Location"))
			}
		}
		before := e.snapshot()
		for _, path := range []string{"/vendor/origins", "/vendor/token"} {
			p := b.submit("/vendor/login", path, url.Values{"origins": {"https://evil.example"}, "grace": {"0"}, "vendor": {"planet"}})
			if p.code != http.StatusSeeOther || p.header.Get("Location") != "/vendor/login" {
				t.Fatalf("POST %s: %d %s", path, p.code, p.header.Get("Location"))
			}
		}
		if e.snapshot() != before {
			t.Fatal("a POST without a vendor session changed the store")
		}
	}
}

// TestVendorSeesOnlyItsOwn: a vendor id in the URL, a query or a form field
// is ignored: every page is the session's vendor's.
func TestVendorSeesOnlyItsOwn(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	srv := e.webServer()
	b, _ := e.vendorBrowser(srv, "planet")
	vg := e.vendor("globe")
	_, err := e.as(vg).SetOrigins(context.Background(), "globe", []string{"https://globe.example"})
	e.mustOK(err, "globe origins")
	e.postCredit("globe", 777, "globe-secret", e.clock.Now().Unix())

	for _, path := range []string{"/vendor?vendor=globe", "/vendor/statements?vendor=globe", "/vendor/origins?vendor=globe",
		"/vendor/token?vendor=globe", "/vendor/statements?from=2026-01-01&to=2030-01-01&vendor=globe&v=globe"} {
		p := b.get(path)
		if p.code != 200 || strings.Contains(p.body, "globe.example") || strings.Contains(p.body, "globe-secret") || strings.Contains(p.body, "7.77") {
			t.Fatalf("GET %s: %d shows globe's data\n%s", path, p.code, p.body)
		}
	}
	for _, path := range []string{"/vendor/globe", "/vendor/globe/statements", "/vendor/statements/globe", "/vendor/origins/globe"} {
		if p := b.get(path); p.code != http.StatusNotFound || !strings.Contains(p.body, "Log out planet") {
			t.Fatalf("GET %s: %d\n%s", path, p.code, p.body)
		}
	}
	p := b.get("/vendor/statements/download?vendor=globe&from=0")
	if p.code != 200 || strings.Contains(p.body, "globe") || !strings.Contains(p.body, `"vendor":"planet"`) {
		t.Fatalf("JSON download: %d\n%s", p.code, p.body)
	}
	p = b.get("/vendor/statements/download?vendor=globe&from=0&format=csv")
	if p.code != 200 || strings.Contains(p.body, "globe") || !strings.Contains(p.header.Get("Content-Disposition"), "statement-planet.csv") {
		t.Fatalf("CSV download: %d %s\n%s", p.code, p.header.Get("Content-Disposition"), p.body)
	}
	// Hidden form fields naming another vendor change only the session's.
	p = b.submit("/vendor/origins", "/vendor/origins", url.Values{"origins": {"https://planet.example"}, "vendor": {"globe"}})
	if p.code != http.StatusSeeOther {
		t.Fatalf("set origins: %d\n%s", p.code, p.body)
	}
	if got, _ := e.a.vendorOrigins(context.Background(), "globe"); len(got) != 1 || got[0] != "https://globe.example" {
		t.Fatalf("globe's origins changed: %v", got)
	}
	if got, _ := e.a.vendorOrigins(context.Background(), "planet"); len(got) != 1 || got[0] != "https://planet.example" {
		t.Fatalf("planet's origins: %v", got)
	}
	p = b.submit("/vendor/token", "/vendor/token", url.Values{"grace": {"0"}, "vendor": {"globe"}})
	if p.code != 200 {
		t.Fatalf("rotate: %d", p.code)
	}
	if _, err := e.as(vg).Statement(context.Background(), time.Time{}, time.Time{}); err != nil {
		t.Fatalf("globe's token stopped working after planet's rotation: %v", err)
	}
}

// TestVendorCSRF: every POST of the vendor pages is refused without the
// session's token, with a forged one, or from another origin, and changes
// nothing.
func TestVendorCSRF(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	srv := e.webServer()
	b, va := e.vendorBrowser(srv, "planet")
	other := newBrowser(t, srv) // another vendor's session: its token is not this one's
	other.vendorLogin(e.vendor("globe"))
	otherToken := other.get("/vendor/origins").hidden("csrf")
	forms := map[string]url.Values{
		"/vendor/login":   {"token": {strings.TrimPrefix(va, "Bearer ")}},
		"/vendor/logout":  {},
		"/vendor/origins": {"origins": {"https://evil.example"}},
		"/vendor/token":   {"grace": {"0"}},
	}
	for action, form := range forms {
		for _, c := range []struct {
			name, csrf, origin string
		}{
			{"missing", "", srv.URL},
			{"forged", "AAAA", srv.URL},
			{"another session's", otherToken, srv.URL},
			{"other origin", "", "https://evil.example"},
		} {
			t.Run(action+" "+c.name, func(t *testing.T) {
				f := url.Values{}
				for k, v := range form {
					f[k] = v
				}
				if c.csrf != "" {
					f.Set("csrf", c.csrf)
				}
				if c.name == "other origin" {
					f.Set("csrf", b.get("/vendor/origins").hidden("csrf")) // the right token, from a foreign page
				}
				before := e.snapshot()
				b.origin = c.origin
				defer func() { b.origin = srv.URL }()
				if p := b.post(action, f); p.code != http.StatusForbidden || !strings.Contains(p.body, "not sent from this site") {
					t.Fatalf("%d\n%s", p.code, p.body)
				}
				if e.snapshot() != before {
					t.Fatal("a refused POST changed the store")
				}
			})
		}
	}
	if p := b.get("/vendor"); p.code != 200 {
		t.Fatalf("the session did not survive the refused POSTs: %d", p.code)
	}
	if _, err := e.as(va).Statement(context.Background(), time.Time{}, time.Time{}); err != nil {
		t.Fatalf("the token changed: %v", err)
	}
}

// TestVendorPagesEscape: HTML and script typed in every field, or stored
// where the pages show it, comes back escaped.
func TestVendorPagesEscape(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	srv := e.webServer()
	b, _ := e.vendorBrowser(srv, "planet")
	const evil = `"><script>alert(1)</script><img src=x onerror=alert(2)>`
	// A ledger reference is JSON in the store (no quote): markup all the same.
	e.postCredit("planet", 5, `<script>alert(1)</script><img src=x onerror=alert(2)>`, e.clock.Now().Unix())
	check := func(what string, p page) {
		t.Helper()
		if strings.Contains(p.body, "<script") || strings.Contains(p.body, "<img") {
			t.Fatalf("%s: unescaped markup\n%s", what, p.body)
		}
		if !strings.Contains(p.body, "&lt;script&gt;") {
			t.Fatalf("%s: the typed text is not shown back\n%s", what, p.body)
		}
	}
	check("statement entry", b.get("/vendor/statements"))
	check("statement from", b.get("/vendor/statements?from="+url.QueryEscape(evil)))
	check("statement to", b.get("/vendor/statements?to="+url.QueryEscape(evil)))
	check("origins", b.submit("/vendor/origins", "/vendor/origins", url.Values{"origins": {"https://ok.example\n" + evil}}))
	check("origins as a host", b.submit("/vendor/origins", "/vendor/origins", url.Values{"origins": {"https://" + evil}}))
	if got, _ := e.a.vendorOrigins(context.Background(), "planet"); len(got) != 0 {
		t.Fatalf("invalid origins stored: %v", got)
	}
	p := b.submit("/vendor/token", "/vendor/token", url.Values{"grace": {evil}})
	if p.code != http.StatusUnprocessableEntity || strings.Contains(p.body, "<script") {
		t.Fatalf("grace: %d\n%s", p.code, p.body)
	}
	p = newBrowser(t, srv).vendorLogin(evil)
	if p.code != http.StatusUnauthorized || strings.Contains(p.body, "<script") || strings.Contains(p.body, "alert") {
		t.Fatalf("log-in: %d (a token is never shown back)\n%s", p.code, p.body)
	}
}

// TestVendorSessionFixation: a session cookie the browser had before
// log-in, planted or another vendor's real one, is never adopted.
func TestVendorSessionFixation(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	srv := e.webServer()
	va := e.vendor("planet")
	mallory, _ := e.vendorBrowser(srv, "mallory")
	u, _ := url.Parse(srv.URL)
	planted := vendorSessionPrefix + "planted-by-mallory"
	b := newBrowser(t, srv)
	b.c.Jar.SetCookies(u, []*http.Cookie{{Name: "hw_vendor", Value: planted, Path: "/"}})
	if p := b.vendorLogin(va); p.code != http.StatusSeeOther {
		t.Fatalf("log in with a planted cookie: %d", p.code)
	}
	if got := b.cookie("hw_vendor"); got == planted || got == "" {
		t.Fatalf("session after log-in: %q", got)
	}
	if p := b.get("/vendor"); !strings.Contains(p.body, "Log out planet") {
		t.Fatalf("after log-in: %d\n%s", p.code, p.body)
	}
	// A planted live session (mallory's own): the log-in page goes on to
	// its overview, which names mallory; a log-in posted anyway (an old
	// tab) gets a session of its own and ends mallory's.
	b = newBrowser(t, srv)
	b.c.Jar.SetCookies(u, []*http.Cookie{{Name: "hw_vendor", Value: mallory.cookie("hw_vendor"), Path: "/"}})
	csrf := b.get("/vendor/origins").hidden("csrf")
	p := b.post("/vendor/login", url.Values{"csrf": {csrf}, "token": {strings.TrimPrefix(va, "Bearer ")}})
	if p.code != http.StatusSeeOther || b.cookie("hw_vendor") == mallory.cookie("hw_vendor") {
		t.Fatalf("log-in over another session: %d", p.code)
	}
	if p := mallory.get("/vendor"); p.code != http.StatusSeeOther {
		t.Fatalf("the replaced session lives on: %d", p.code)
	}
	if p := b.get("/vendor"); !strings.Contains(p.body, "Log out planet") {
		t.Fatalf("after log-in:\n%s", p.body)
	}
}

// TestVendorSessionEnds: a session that vanished (expired, logged out
// elsewhere, its token replaced) between a form and its POST changes
// nothing and leads to the log-in; log-out ends the session for good.
func TestVendorSessionEnds(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	srv := e.webServer()
	va := e.vendor("planet")
	ctx := context.Background()
	end := map[string]func(){
		"expired": func() {
			keys, _ := e.rdb.Keys(ctx, "hw:a:vsess:*").Result()
			e.rdb.Del(ctx, keys...)
		},
		"token replaced by the API": func() {
			out, err := e.as(va).RotateToken(ctx, 0)
			e.mustOK(err, "rotate")
			va = "Bearer " + out.Token
		},
	}
	for name, f := range end {
		t.Run(name, func(t *testing.T) {
			b := newBrowser(t, srv)
			if p := b.vendorLogin(va); p.code != http.StatusSeeOther {
				t.Fatalf("log in: %d", p.code)
			}
			for _, action := range []struct {
				path string
				form url.Values
			}{
				{"/vendor/origins", url.Values{"origins": {"https://late.example"}}},
				{"/vendor/token", url.Values{"grace": {"0"}}},
			} {
				csrf := b.get(action.path).hidden("csrf")
				f()
				before := vendorState(e)
				action.form.Set("csrf", csrf)
				p := b.post(action.path, action.form)
				if p.code != http.StatusSeeOther || p.header.Get("Location") != "/vendor/login" {
					t.Fatalf("POST %s: %d %s", action.path, p.code, p.header.Get("Location"))
				}
				if vendorState(e) != before {
					t.Fatalf("POST %s after the session ended changed the store", action.path)
				}
				if p := b.vendorLogin(va); p.code != http.StatusSeeOther {
					t.Fatalf("log in again: %d", p.code)
				}
			}
		})
	}
	b := newBrowser(t, srv)
	b.vendorLogin(va)
	old := b.cookie("hw_vendor")
	if p := b.submit("/vendor", "/vendor/logout", nil); p.code != http.StatusSeeOther || p.header.Get("Location") != "/vendor/login" {
		t.Fatalf("log out: %d", p.code)
	}
	if n, _ := e.rdb.Exists(ctx, "hw:a:vsess:"+tokenHash(old)).Result(); n != 0 {
		t.Fatal("log-out kept the session in Redis")
	}
	c := newBrowser(t, srv)
	u, _ := url.Parse(srv.URL)
	c.c.Jar.SetCookies(u, []*http.Cookie{{Name: "hw_vendor", Value: old, Path: "/"}})
	if p := c.get("/vendor"); p.code != http.StatusSeeOther {
		t.Fatalf("replayed cookie after log-out: %d", p.code)
	}
}

// vendorState is the store without the vendor sessions (a dead one is
// deleted when it is next seen).
func vendorState(e *env) string {
	var keep []string
	for _, l := range strings.SplitAfter(e.snapshot(), "\n") {
		if !strings.HasPrefix(l, "hw:a:vsess:") {
			keep = append(keep, l)
		}
	}
	return strings.Join(keep, "")
}

// TestVendorStatementIsTheAPIs: the statement page's figures are GET
// /v1/statement's for the same period, and its downloads are the API's
// answers byte for byte.
func TestVendorStatementIsTheAPIs(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	srv := e.webServer()
	b, va := e.vendorBrowser(srv, "planet")
	// Real claims, days apart, and entries before and after the period.
	w := e.buy(e.user("alice", 1000), 256)
	e.clock.Add(-40 * 24 * time.Hour)
	e.report(va, "planet", "before", w.claim(0, 5, 5, "planet"))
	e.clock.Add(20 * 24 * time.Hour)
	e.report(va, "planet", "b1", w.claim(0, 12, 7, "planet"))
	e.clock.Add(10 * 24 * time.Hour)
	e.report(va, "planet", "b2", w.claim(0, 30, 18, "planet"))
	e.clock.Add(10 * 24 * time.Hour)
	e.report(va, "planet", "b3", w.claim(0, 31, 1, "planet"))
	e.postCredit("planet", 250, "later", e.clock.Now().Add(3*24*time.Hour).Unix())

	day := func(d time.Time) string { return d.UTC().Format("2006-01-02") }
	now := e.clock.Now()
	for _, c := range []struct {
		name, from, to string
	}{
		{"default", "", ""},
		{"b1 to b2", day(now.AddDate(0, 0, -20)), day(now.AddDate(0, 0, -10))},
		{"everything", "2000-01-01", day(now.AddDate(1, 0, 0))},
		{"nothing", "2001-01-01", "2001-01-31"},
	} {
		t.Run(c.name, func(t *testing.T) {
			q := url.Values{}
			if c.from != "" {
				q.Set("from", c.from)
				q.Set("to", c.to)
			}
			p := b.get("/vendor/statements?" + q.Encode())
			if p.code != 200 {
				t.Fatalf("%d\n%s", p.code, p.body)
			}
			from, to := e.a.defaultPeriod()
			if c.from != "" {
				from, _ = time.Parse("2006-01-02", c.from)
				to, _ = time.Parse("2006-01-02", c.to)
				to = to.AddDate(0, 0, 1)
			}
			st, err := e.as(va).Statement(context.Background(), from, to)
			e.mustOK(err, "statement")
			for label, want := range map[string]int64{"Opening balance": st.Opening, "Credited": st.Credited, "Closing balance": st.Closing} {
				if got := p.figure(t, label); got != e.a.money(want) {
					t.Fatalf("%s: page %q, API %q", label, got, e.a.money(want))
				}
			}
			if !strings.Contains(p.body, strconv.Itoa(len(st.Entries))+" entries") {
				t.Fatalf("the page does not count the API's %d entries\n%s", len(st.Entries), p.body)
			}
			for _, format := range []string{"", "csv"} {
				period := url.Values{"from": {itoa(from.Unix())}, "to": {itoa(to.Unix())}}
				if format != "" {
					period.Set("format", format)
				}
				link := "/vendor/statements/download?" + period.Encode()
				if !strings.Contains(p.body, `href="`+html.EscapeString(link)+`"`) {
					t.Fatalf("no download link %s\n%s", link, p.body)
				}
				got := b.get(link)
				api := e.raw("GET", "/v1/statement?"+period.Encode(), va)
				if got.code != 200 || got.body != api.Body.String() || got.header.Get("Content-Type") != api.Header().Get("Content-Type") {
					t.Fatalf("download %s: %d %q\n%s\nthe API's:\n%s", link, got.code, got.header.Get("Content-Type"), got.body, api.Body.String())
				}
			}
		})
	}
	// The overview's credited figure is the default statement's.
	from, to := e.a.defaultPeriod()
	st, err := e.as(va).Statement(context.Background(), from, to)
	e.mustOK(err, "statement")
	p := b.get("/vendor")
	if got := p.figure(t, "Credited, last 30 days"); got != e.a.money(st.Credited) || st.Credited != 7+18+1 {
		t.Fatalf("overview credited %q, API %d", got, st.Credited)
	}
	if got := p.figure(t, "Balance"); got != e.a.money(e.balance("v:planet")) {
		t.Fatalf("overview balance %q, want %d", got, e.balance("v:planet"))
	}
	// A period the page refuses.
	for _, q := range []string{"from=2026-13-01", "from=2026-02-01&to=2026-01-01", "to=yesterday", "from=1969-12-31"} {
		if p := b.get("/vendor/statements?" + q); p.code != http.StatusUnprocessableEntity || !strings.Contains(p.body, `class="error"`) {
			t.Fatalf("?%s: %d", q, p.code)
		}
	}
	if p := b.get("/vendor/statements/download?from=yesterday"); p.code != http.StatusBadRequest {
		t.Fatalf("a download of a bad period: %d", p.code)
	}
}

var entryRow = regexp.MustCompile(`<td class="num muted">(\d+)</td></tr>`)

// TestVendorStatementPaging: 50 entries a page, every entry of the API's
// statement once over the pages, a page number out of range shows a page.
func TestVendorStatementPaging(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	srv := e.webServer()
	b, va := e.vendorBrowser(srv, "planet")
	now := e.clock.Now().Unix()
	const n = 2*statementPage + 17
	for i := range n {
		e.postCredit("planet", int64(i+1), "r"+strconv.Itoa(i), now-int64(n-i)*60-int64(i%3)*30) // some share a second
	}
	st, err := e.as(va).Statement(context.Background(), time.Time{}, time.Time{})
	e.mustOK(err, "statement")
	from, to := e.a.defaultPeriod()
	q := "from=" + from.Format("2006-01-02") + "&to=" + to.AddDate(0, 0, -1).Format("2006-01-02")
	seen := map[string]bool{}
	for k := 1; k <= 3; k++ {
		p := b.get("/vendor/statements?" + q + "&page=" + strconv.Itoa(k))
		rows := entryRow.FindAllStringSubmatch(p.body, -1)
		want := statementPage
		if k == 3 {
			want = n - 2*statementPage
		}
		if p.code != 200 || len(rows) != want || !strings.Contains(p.body, "page "+strconv.Itoa(k)+" of 3") {
			t.Fatalf("page %d: %d, %d rows\n%s", k, p.code, len(rows), p.body)
		}
		if (k > 1) != strings.Contains(p.body, ">Earlier</a>") || (k < 3) != strings.Contains(p.body, ">Later</a>") {
			t.Fatalf("page %d: pager links\n%s", k, p.body)
		}
		for _, r := range rows {
			if seen[r[1]] {
				t.Fatalf("entry %s on two pages", r[1])
			}
			seen[r[1]] = true
		}
	}
	if len(seen) != len(st.Entries) {
		t.Fatalf("%d entries over the pages, the API has %d", len(seen), len(st.Entries))
	}
	for _, x := range st.Entries {
		if !seen[itoa(x.Seq)] {
			t.Fatalf("entry %d of the API on no page", x.Seq)
		}
	}
	for _, page := range []string{"0", "-1", "x", "99999999999999999999"} {
		p := b.get("/vendor/statements?" + q + "&page=" + page)
		if p.code != 200 || len(entryRow.FindAllString(p.body, -1)) == 0 {
			t.Fatalf("page=%s: %d", page, p.code)
		}
	}
	if p := b.get("/vendor/statements?" + q + "&page=4"); !strings.Contains(p.body, "page 3 of 3") {
		t.Fatalf("past the last page:\n%s", p.body)
	}
}

// TestVendorOriginsPage: the page shows what the bank publishes and sets
// the list through the API's rules.
func TestVendorOriginsPage(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	srv := e.webServer()
	b, _ := e.vendorBrowser(srv, "planet")
	published := func() []string {
		raw, _, err := e.client().VendorOrigins(context.Background(), "planet")
		e.mustOK(err, "published origins")
		var doc payword.Signed
		var body payword.VendorOrigins
		if json.Unmarshal(raw, &doc) != nil || json.Unmarshal(doc.Body, &body) != nil {
			t.Fatalf("origins document %s", raw)
		}
		return body.Origins
	}
	p := b.submit("/vendor/origins", "/vendor/origins", url.Values{"origins": {" https://News.Example.com \n\nhttp://localhost:8080\n"}})
	if p.code != http.StatusSeeOther {
		t.Fatalf("save: %d\n%s", p.code, p.body)
	}
	got := published()
	if strings.Join(got, " ") != "http://localhost:8080 https://news.example.com" {
		t.Fatalf("published %v", got)
	}
	p = b.get(p.header.Get("Location"))
	if !strings.Contains(p.body, "Saved.") || !strings.Contains(p.body, "<li><code>https://news.example.com</code></li>") {
		t.Fatalf("after saving:\n%s", p.body)
	}
	before := e.snapshot()
	for _, bad := range []string{"https://news.example.com/path", "ftp://x.example", strings.Repeat("https://a.example\n", 17)} {
		p := b.submit("/vendor/origins", "/vendor/origins", url.Values{"origins": {bad}})
		if p.code != http.StatusUnprocessableEntity || !strings.Contains(p.body, `id="e-origins"`) {
			t.Fatalf("%q: %d\n%s", bad, p.code, p.body)
		}
	}
	if e.snapshot() != before {
		t.Fatal("a refused list changed the store")
	}
	if p := b.submit("/vendor/origins", "/vendor/origins", url.Values{"origins": {""}}); p.code != http.StatusSeeOther || len(published()) != 0 {
		t.Fatalf("empty list: %d %v", p.code, published())
	}
}

// TestVendorTokenPage: a new token shown once, the old one refused at
// once (or after its grace), this session kept, the old token's others
// ended.
func TestVendorTokenPage(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	srv := e.webServer()
	b, va := e.vendorBrowser(srv, "planet")
	second := newBrowser(t, srv)
	second.vendorLogin(va)
	ctx := context.Background()

	p := b.submit("/vendor/token", "/vendor/token", url.Values{"grace": {"0"}})
	tok := regexp.MustCompile(`<p class="token"><code>(hwv_[A-Za-z0-9_-]+)</code></p>`).FindStringSubmatch(p.body)
	if p.code != 200 || tok == nil || !strings.Contains(p.body, "has stopped working") {
		t.Fatalf("rotate: %d\n%s", p.code, p.body)
	}
	if _, err := e.as(va).Statement(ctx, time.Time{}, time.Time{}); status(err, 200) != 401 {
		t.Fatalf("the old token still works: %v", err)
	}
	if _, err := e.as("Bearer "+tok[1]).Statement(ctx, time.Time{}, time.Time{}); err != nil {
		t.Fatalf("the new token: %v", err)
	}
	if p := b.get("/vendor"); p.code != 200 {
		t.Fatalf("this session after the rotation: %d", p.code)
	}
	if p := second.get("/vendor"); p.code != http.StatusSeeOther {
		t.Fatalf("another session of the old token: %d", p.code)
	}
	if p := b.get("/vendor/token"); strings.Contains(p.body, tok[1]) {
		t.Fatal("the token is shown again")
	}

	// With a grace, the old token and its sessions last until it ends.
	va = "Bearer " + tok[1]
	second.vendorLogin(va)
	p = b.submit("/vendor/token", "/vendor/token", url.Values{"grace": {"3600"}})
	if p.code != 200 || !strings.Contains(p.body, "keeps working until") {
		t.Fatalf("rotate with grace: %d\n%s", p.code, p.body)
	}
	if _, err := e.as(va).Statement(ctx, time.Time{}, time.Time{}); err != nil {
		t.Fatalf("the old token within its grace: %v", err)
	}
	if p := second.get("/vendor"); p.code != 200 {
		t.Fatalf("a session of the old token within its grace: %d", p.code)
	}
	if p := b.get("/vendor"); p.code != 200 {
		t.Fatalf("this session after the second rotation: %d", p.code)
	}
}
