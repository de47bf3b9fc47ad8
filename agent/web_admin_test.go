package agent

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/hashwall/hashwall/agentapi"
	"github.com/hashwall/hashwall/payword"
)

// adminLogin logs the browser in to the operator's pages with token.
func (b *browser) adminLogin(token string) page {
	b.t.Helper()
	return b.submit("/admin/login", "/admin/login", url.Values{"token": {token}})
}

// adminSubmit is submit with the credit form's event id too.
func (b *browser) adminSubmit(path, action string, form url.Values) page {
	b.t.Helper()
	p := b.get(path)
	f := url.Values{"csrf": {p.hidden("csrf")}}
	if ev := p.hidden("event"); ev != "" {
		f.Set("event", ev)
	}
	for k, v := range form {
		f[k] = v
	}
	return b.post(action, f)
}

// adminBrowser is a browser logged in as the operator.
func (e *env) adminBrowser(srv *httptest.Server) *browser {
	e.t.Helper()
	b := newBrowser(e.t, srv)
	if p := b.adminLogin(adminToken); p.code != http.StatusSeeOther || p.header.Get("Location") != "/admin" {
		e.t.Fatalf("operator log-in: %d %s\n%s", p.code, p.header.Get("Location"), p.body)
	}
	return b
}

// adminPaths are the operator's pages a GET shows.
var adminPaths = []string{"/admin", "/admin?check=1", "/admin/disputes", "/admin/revocations", "/admin/credit", "/admin/revoke"}

// adminForms are the operator's POSTs with a form each would accept.
func adminForms(serial string) map[string]url.Values {
	return map[string]url.Values{
		"/admin/login":  {"token": {adminToken}},
		"/admin/logout": {},
		"/admin/credit": {"username": {"alice"}, "amount": {"5"}, "unit": {"money"}, "event": {strings.Repeat("ab", 16)}},
		"/admin/revoke": {"serial": {serial}, "reason": {"test"}},
	}
}

// adminState is the store without the operator sessions (a dead one is
// deleted when it is next seen).
func adminState(e *env) string {
	var keep []string
	for _, l := range strings.SplitAfter(e.snapshot(), "\n") {
		if !strings.HasPrefix(l, "hw:a:asess:") {
			keep = append(keep, l)
		}
	}
	return strings.Join(keep, "")
}

func TestAdminLogin(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	srv := e.webServer()
	b := newBrowser(t, srv)
	p := b.adminLogin(adminToken)
	if p.code != http.StatusSeeOther || p.header.Get("Location") != "/admin" {
		t.Fatalf("log in: %d %s\n%s", p.code, p.header.Get("Location"), p.body)
	}
	var set string
	for _, c := range p.header.Values("Set-Cookie") {
		if strings.HasPrefix(c, "hw_admin=") {
			set = c
		}
	}
	if !strings.Contains(set, "HttpOnly") || !strings.Contains(set, "SameSite=Lax") || !strings.Contains(set, "Path=/") ||
		!strings.Contains(set, "Max-Age="+strconv.Itoa(int(maxAdminSession.Seconds()))) {
		t.Fatalf("operator cookie attributes: %q", set)
	}
	if b.cookie("hw_session") != "" || b.cookie("hw_vendor") != "" {
		t.Fatal("an operator log-in set another session cookie")
	}
	ctx := context.Background()
	if ttl := e.rdb.TTL(ctx, "hw:a:asess:"+tokenHash(b.cookie("hw_admin"))).Val(); ttl <= 0 || ttl > maxAdminSession {
		t.Fatalf("session TTL %v", ttl)
	}
	for _, path := range adminPaths {
		if p := b.get(path); p.code != 200 || !strings.Contains(p.body, "Log out operator") {
			t.Fatalf("GET %s: %d\n%s", path, p.code, p.body)
		}
	}
	if p := b.get("/admin/login"); p.code != http.StatusSeeOther || p.header.Get("Location") != "/admin" {
		t.Fatalf("log-in page when logged in: %d", p.code)
	}
	// The operator's session opens no reader or vendor page, and is no API token.
	for _, path := range []string{"/account", "/topup", "/vendor", "/vendor/statements"} {
		if p := b.get(path); p.code != http.StatusSeeOther || strings.Contains(p.header.Get("Location"), "admin") {
			t.Fatalf("GET %s with an operator session: %d %s", path, p.code, p.header.Get("Location"))
		}
	}
	if code := e.call("GET", "/v1/admin/fraud", "Bearer "+b.cookie("hw_admin"), nil, nil); code != 401 {
		t.Fatalf("the operator session cookie as the admin token: %d", code)
	}
	// A reader's and a vendor's sessions open no operator page.
	reader := newBrowser(t, srv)
	reader.signup("alice", "a long enough password")
	vendor, _ := e.vendorBrowser(srv, "planet")
	for _, x := range []*browser{reader, vendor} {
		for _, path := range adminPaths {
			if p := x.get(path); p.code != http.StatusSeeOther || p.header.Get("Location") != "/admin/login" {
				t.Fatalf("GET %s with another session: %d %s", path, p.code, p.header.Get("Location"))
			}
		}
	}
	for _, c := range []struct{ name, token, msg string }{
		{"wrong token", adminToken + "x", "not the bank&#39;s admin token"},
		{"a vendor's token", strings.TrimPrefix(e.vendor("globe"), "Bearer "), "not the bank&#39;s admin token"},
		{"a reader's session", strings.TrimPrefix(e.user("bob", 0), "Bearer "), "not the bank&#39;s admin token"},
		{"the session cookie", b.cookie("hw_admin"), "not the bank&#39;s admin token"},
		{"empty", "", "Paste the bank"},
	} {
		t.Run(c.name, func(t *testing.T) {
			x := newBrowser(t, srv)
			p := x.adminLogin(c.token)
			if p.code != http.StatusUnauthorized && p.code != http.StatusUnprocessableEntity || !strings.Contains(p.body, c.msg) {
				t.Fatalf("%d\n%s", p.code, p.body)
			}
			if x.cookie("hw_admin") != "" {
				t.Fatal("a refused log-in set a session")
			}
		})
	}
	// Another admin token configured (a restart): the session ended.
	e.cfg.AdminToken = "another-admin-token"
	e.restartAgent()
	srv2 := e.webServer()
	b.srv = srv2
	u, _ := url.Parse(srv2.URL)
	b.c.Jar.SetCookies(u, []*http.Cookie{{Name: "hw_admin", Value: b.cookie2(srv), Path: "/"}})
	if p := b.get("/admin"); p.code != http.StatusSeeOther || p.header.Get("Location") != "/admin/login" {
		t.Fatalf("a session of the former admin token: %d", p.code)
	}
	if p := newBrowser(t, srv2).adminLogin("another-admin-token"); p.code != http.StatusSeeOther {
		t.Fatalf("log in with the new token: %d", p.code)
	}
}

// cookie2 is the hw_admin cookie the browser holds for srv.
func (b *browser) cookie2(srv *httptest.Server) string {
	u, _ := url.Parse(srv.URL)
	for _, c := range b.c.Jar.Cookies(u) {
		if c.Name == "hw_admin" {
			return c.Value
		}
	}
	return ""
}

// TestAdminPagesWithoutAdminToken: no admin token configured, no page.
func TestAdminPagesWithoutAdminToken(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.cfg.AdminToken = ""
	e.restartAgent()
	srv := e.webServer()
	b := newBrowser(t, srv)
	for _, path := range append(adminPaths, "/admin/login", "/admin/nothing") {
		if p := b.get(path); p.code != http.StatusNotFound || strings.Contains(p.body, "Operator") {
			t.Fatalf("GET %s: %d\n%s", path, p.code, p.body)
		}
	}
	before := e.snapshot()
	for action, form := range adminForms(strings.Repeat("0", 32)) {
		for _, tok := range []string{"", adminToken} {
			form.Set("token", tok)
			if p := b.submit("/login", action, form); p.code != http.StatusNotFound {
				t.Fatalf("POST %s: %d", action, p.code)
			}
		}
	}
	if e.snapshot() != before || b.cookie("hw_admin") != "" {
		t.Fatal("the closed operator pages changed the store")
	}
}

func TestAdminLoginThrottle(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	srv := e.webServer()
	for range maxFailures + 3 { // right log-ins give their slot back
		if p := newBrowser(t, srv).adminLogin(adminToken); p.code != http.StatusSeeOther {
			t.Fatalf("log in: %d", p.code)
		}
	}
	x := newBrowser(t, srv)
	for i := range maxFailures {
		if p := x.adminLogin("wrong" + strconv.Itoa(i)); p.code != http.StatusUnauthorized {
			t.Fatalf("failure %d: %d", i, p.code)
		}
	}
	p := x.adminLogin("wrong")
	if p.code != http.StatusTooManyRequests || p.header.Get("Retry-After") == "" || !strings.Contains(p.body, "Too many failed log-ins") {
		t.Fatalf("after %d failures: %d %q\n%s", maxFailures, p.code, p.header.Get("Retry-After"), p.body)
	}
	if p := x.adminLogin(adminToken); p.code != http.StatusTooManyRequests {
		t.Fatalf("the right token during the lockout: %d", p.code)
	}
	if p := newBrowser(t, srv).vendorLogin(e.vendor("planet")); p.code != http.StatusSeeOther {
		t.Fatalf("a vendor's log-in from the address during the operator's lockout: %d", p.code)
	}
	e.clock.Add(failureWindow)
	if p := x.adminLogin(adminToken); p.code != http.StatusSeeOther {
		t.Fatalf("after the window: %d", p.code)
	}
}

// TestAdminPagesNeedSession: logged out, every page goes to the log-in
// and every POST changes nothing.
func TestAdminPagesNeedSession(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	srv := e.webServer()
	w := e.buy(e.user("alice", 1000), 16)
	b := newBrowser(t, srv)
	for _, path := range append(adminPaths, "/admin/credit/done?event="+strings.Repeat("ab", 16)) {
		if p := b.get(path); p.code != http.StatusSeeOther || p.header.Get("Location") != "/admin/login" {
			t.Fatalf("GET %s: %d %s", path, p.code, p.header.Get("Location"))
		}
	}
	before := e.snapshot()
	for _, action := range []string{"/admin/credit", "/admin/revoke"} {
		p := b.submit("/admin/login", action, adminForms(w.cert.Serial.String())[action])
		if p.code != http.StatusSeeOther || p.header.Get("Location") != "/admin/login" {
			t.Fatalf("POST %s: %d %s", action, p.code, p.header.Get("Location"))
		}
	}
	if e.snapshot() != before {
		t.Fatal("a POST without an operator session changed the store")
	}
}

// TestAdminCSRF: every POST is refused without the session's token, with
// a forged one or another session's, or from another origin, and changes
// nothing.
func TestAdminCSRF(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	srv := e.webServer()
	w := e.buy(e.user("alice", 1000), 16)
	b := e.adminBrowser(srv)
	other := e.adminBrowser(srv) // another operator session: its token is not this one's
	otherToken := other.get("/admin/credit").hidden("csrf")
	vendor, _ := e.vendorBrowser(srv, "planet")
	vendorToken := vendor.get("/vendor/origins").hidden("csrf")
	for action, form := range adminForms(w.cert.Serial.String()) {
		for _, c := range []struct{ name, csrf, origin string }{
			{"missing", "", srv.URL},
			{"forged", "AAAA", srv.URL},
			{"another session's", otherToken, srv.URL},
			{"a vendor session's", vendorToken, srv.URL},
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
					f.Set("csrf", b.get("/admin/credit").hidden("csrf")) // the right token, from a foreign page
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
	if p := b.get("/admin"); p.code != 200 {
		t.Fatalf("the session did not survive the refused POSTs: %d", p.code)
	}
	if e.revoked(w.cert.Serial) {
		t.Fatal("revoked")
	}
}

// TestAdminSessionFixation: a cookie the browser had before log-in,
// planted or another operator's real one, is never adopted.
func TestAdminSessionFixation(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	srv := e.webServer()
	u, _ := url.Parse(srv.URL)
	planted := adminSessionPrefix + "planted-by-mallory"
	b := newBrowser(t, srv)
	b.c.Jar.SetCookies(u, []*http.Cookie{{Name: "hw_admin", Value: planted, Path: "/"}})
	if p := b.get("/admin"); p.code != http.StatusSeeOther {
		t.Fatalf("a planted cookie opened the overview: %d", p.code)
	}
	if p := b.adminLogin(adminToken); p.code != http.StatusSeeOther {
		t.Fatalf("log in with a planted cookie: %d", p.code)
	}
	if got := b.cookie("hw_admin"); got == planted || got == "" {
		t.Fatalf("session after log-in: %q", got)
	}
	// A live session planted (another operator's): a log-in posted over it
	// gets a session of its own and ends the planted one.
	mallory := e.adminBrowser(srv)
	c := newBrowser(t, srv)
	c.c.Jar.SetCookies(u, []*http.Cookie{{Name: "hw_admin", Value: mallory.cookie("hw_admin"), Path: "/"}})
	csrf := c.get("/admin/credit").hidden("csrf")
	p := c.post("/admin/login", url.Values{"csrf": {csrf}, "token": {adminToken}})
	if p.code != http.StatusSeeOther || c.cookie("hw_admin") == mallory.cookie("hw_admin") {
		t.Fatalf("log-in over another session: %d", p.code)
	}
	if p := mallory.get("/admin"); p.code != http.StatusSeeOther {
		t.Fatalf("the replaced session lives on: %d", p.code)
	}
	if p := c.get("/admin"); p.code != 200 {
		t.Fatalf("after log-in: %d", p.code)
	}
}

// TestAdminSessionEnds: a session that vanished between a form and its
// POST changes nothing and leads to the log-in; log-out ends it for good.
func TestAdminSessionEnds(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	srv := e.webServer()
	w := e.buy(e.user("alice", 1000), 16)
	ctx := context.Background()
	b := e.adminBrowser(srv)
	for _, action := range []string{"/admin/credit", "/admin/revoke"} {
		form := adminForms(w.cert.Serial.String())[action]
		p := b.get(action)
		form.Set("csrf", p.hidden("csrf"))
		if ev := p.hidden("event"); ev != "" {
			form.Set("event", ev)
		}
		keys, _ := e.rdb.Keys(ctx, "hw:a:asess:*").Result()
		e.rdb.Del(ctx, keys...)
		before := adminState(e)
		if p := b.post(action, form); p.code != http.StatusSeeOther || p.header.Get("Location") != "/admin/login" {
			t.Fatalf("POST %s: %d %s", action, p.code, p.header.Get("Location"))
		}
		if adminState(e) != before {
			t.Fatalf("POST %s after the session ended changed the store", action)
		}
		if p := b.adminLogin(adminToken); p.code != http.StatusSeeOther {
			t.Fatalf("log in again: %d", p.code)
		}
	}
	old := b.cookie("hw_admin")
	if p := b.submit("/admin", "/admin/logout", nil); p.code != http.StatusSeeOther || p.header.Get("Location") != "/admin/login" {
		t.Fatalf("log out: %d", p.code)
	}
	if n, _ := e.rdb.Exists(ctx, "hw:a:asess:"+tokenHash(old)).Result(); n != 0 {
		t.Fatal("log-out kept the session in Redis")
	}
	c := newBrowser(t, srv)
	u, _ := url.Parse(srv.URL)
	c.c.Jar.SetCookies(u, []*http.Cookie{{Name: "hw_admin", Value: old, Path: "/"}})
	if p := c.get("/admin"); p.code != http.StatusSeeOther {
		t.Fatalf("replayed cookie after log-out: %d", p.code)
	}
}

// TestAdminPagesEscape: markup stored where the pages show it, or typed
// in every field, comes back escaped.
func TestAdminPagesEscape(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	srv := e.webServer()
	b := e.adminBrowser(srv)
	ctx := context.Background()
	const evil = `"><script>alert(1)</script><img src=x onerror=alert(2)>`
	const jevil = `\"><script>alert(1)</script><img src=x onerror=alert(2)>` // as a JSON string's text
	// Stored data the checks never let in: in fraud cases, revocations,
	// a username, a ledger reference and a revocation's reason.
	e.rdb.HSet(ctx, "hw:a:u:u-evil", "name", evil, "bal", 0)
	e.rdb.RPush(ctx, "hw:a:fraud", `{"t":1,"kind":"double_spend","vendor":"`+jevil+`","serial":"`+jevil+`","seg":3,"user":"u-evil","owner":"`+jevil+`"}`,
		`{"t":2,"kind":"`+jevil+`","vendor":"v","serial":"s","seg":1,"user":"`+jevil+`"}`)
	e.rdb.ZAdd(ctx, agentapi.CRLKey, redisZ(9, `{"seq":9,"serial":"`+jevil+`","time":1,"exp":0,"reason":"`+jevil+`"}`),
		redisZ(10, `{"seq":10,"serial":"0123","time":1,"exp":0,"reason":"admin"}`))
	e.rdb.HSet(ctx, "hw:a:c:{0123}", "user", "u-evil")
	e.rdb.HSet(ctx, "hw:a:revnote", "c:0123", evil)
	check := func(what string, p page) {
		t.Helper()
		if strings.Contains(p.body, "<script") || strings.Contains(p.body, "<img") {
			t.Fatalf("%s: unescaped markup\n%s", what, p.body)
		}
		if !strings.Contains(p.body, "&lt;script&gt;") {
			t.Fatalf("%s: the text is not shown back\n%s", what, p.body)
		}
	}
	check("disputes", b.get("/admin/disputes"))
	p := b.get("/admin/revocations")
	check("revocations", p)
	if strings.Count(p.body, "&lt;script&gt;") < 4 { // serial (twice), reason, reader, note
		t.Fatalf("revocations: not every field shown\n%s", p.body)
	}
	before := e.snapshot()
	for _, f := range []url.Values{
		{"username": {evil}, "amount": {"5"}, "unit": {"money"}},
		{"username": {"alice"}, "amount": {evil}, "unit": {"money"}},
		{"username": {"alice"}, "amount": {"5"}, "unit": {"tokens"}, "ref": {evil}},
	} {
		check("credit form", b.adminSubmit("/admin/credit", "/admin/credit", f))
	}
	for _, f := range []url.Values{
		{"serial": {evil}, "reason": {"r"}},
		{"username": {evil}, "reason": {"r"}},
		{"username": {"alice"}, "reason": {evil + "\n"}},
	} {
		check("revoke form", b.submit("/admin/revoke", "/admin/revoke", f))
	}
	if e.snapshot() != before {
		t.Fatal("a refused form changed the store")
	}
	// A unit that is no choice is refused, not echoed.
	if p := b.adminSubmit("/admin/credit", "/admin/credit", url.Values{"username": {"alice"}, "amount": {"5"}, "unit": {evil}}); p.code != http.StatusUnprocessableEntity || strings.Contains(p.body, "<script") {
		t.Fatalf("unit: %d", p.code)
	}
	if p := newBrowser(t, srv).adminLogin(evil); p.code != http.StatusUnauthorized || strings.Contains(p.body, "alert") {
		t.Fatalf("log-in: %d (a token is never shown back)\n%s", p.code, p.body)
	}
}

// TestAdminFormsValidate: each wrong field is named, what was typed kept.
func TestAdminFormsValidate(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	srv := e.webServer()
	e.user("alice", 0)
	b := e.adminBrowser(srv)
	before := e.snapshot()
	for _, c := range []struct {
		action string
		form   url.Values
		field  string
	}{
		{"/admin/credit", url.Values{"username": {"nobody"}, "amount": {"5"}, "unit": {"money"}}, "username"},
		{"/admin/credit", url.Values{"username": {"alice"}, "amount": {"5.001"}, "unit": {"money"}}, "amount"},
		{"/admin/credit", url.Values{"username": {"alice"}, "amount": {"0"}, "unit": {"money"}}, "amount"},
		{"/admin/credit", url.Values{"username": {"alice"}, "amount": {"-3"}, "unit": {"tokens"}}, "amount"},
		{"/admin/credit", url.Values{"username": {"alice"}, "amount": {"99999999999999"}, "unit": {"money"}}, "amount"},
		{"/admin/credit", url.Values{"username": {"alice"}, "amount": {"1.5"}, "unit": {"tokens"}}, "amount"},
		{"/admin/credit", url.Values{"username": {"alice"}, "amount": {"5"}, "unit": {"money"}, "ref": {"has space"}}, "ref"},
		{"/admin/revoke", url.Values{"serial": {"xyz"}, "reason": {"r"}}, "serial"},
		{"/admin/revoke", url.Values{"serial": {strings.Repeat("0", 32)}, "reason": {"r"}}, "serial"},
		{"/admin/revoke", url.Values{"username": {"nobody"}, "reason": {"r"}}, "username"},
		{"/admin/revoke", url.Values{"username": {"alice"}, "reason": {""}}, "reason"},
		{"/admin/revoke", url.Values{"username": {"alice"}, "reason": {strings.Repeat("x", maxNote+1)}}, "reason"},
		{"/admin/revoke", url.Values{"username": {"alice"}, "serial": {strings.Repeat("0", 32)}, "reason": {"r"}}, ""},
		{"/admin/revoke", url.Values{"username": {"alice"}, "vendor": {"planet"}, "reason": {"r"}}, ""},
		{"/admin/revoke", url.Values{"vendor": {"no such"}, "reason": {"r"}}, "vendor"},
		{"/admin/revoke", url.Values{"vendor": {"nobody"}, "reason": {"r"}}, "vendor"},
	} {
		p := b.adminSubmit(c.action, c.action, c.form)
		mark := `id="e-` + c.field + `"`
		if c.field == "" {
			mark = `class="error banner"`
		}
		if p.code != http.StatusUnprocessableEntity || !strings.Contains(p.body, mark) {
			t.Fatalf("%s %v: %d\n%s", c.action, c.form, p.code, p.body)
		}
		for k, v := range c.form {
			if k != "unit" && !strings.Contains(p.body, `value="`+v[0]+`"`) {
				t.Fatalf("%s: %s=%q not kept\n%s", c.action, k, v[0], p.body)
			}
		}
	}
	if e.snapshot() != before {
		t.Fatal("a refused form changed the store")
	}
}

var (
	disputeItem = regexp.MustCompile(`<li(?: class="bad")?><p class="when">`)
	crlRow      = regexp.MustCompile(`<tr><td class="num muted">(\d+)</td>`)
)

// TestAdminPagesAreTheAPIs: every figure and row shown is the API's.
func TestAdminPagesAreTheAPIs(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	srv := e.webServer()
	ctx := context.Background()
	admin := e.as("Bearer " + adminToken)
	b := e.adminBrowser(srv)
	va, vb := e.vendor("planet"), e.vendor("globe")
	alice := e.user("alice", 1000)
	w := e.buy(alice, 256)
	e.report(va, "planet", "b1", w.claim(0, 2, 2, "planet"))
	e.expectReport("double_spend:2", vb, "globe", "b2", w.claim(0, 2, 2, "globe"))
	e.expectReport("vendor_fraud:0", va, "planet", "b3", w.claim(1, 1, 1, ""))

	// The ledger check: pass, totals; then a broken balance: fail, naming it.
	p := b.get("/admin?check=1")
	if _, err := admin.CheckLedger(ctx); p.code != 200 || p.figure(t, "Ledger check") != "Pass" || err != nil {
		t.Fatalf("check: %d, API %v\n%s", p.code, err, p.body)
	}
	readers := e.balance("u:" + e.uid("alice"))
	vendors := e.balance("v:planet") + e.balance("v:globe")
	for _, want := range []string{"<dd>" + e.a.money(readers) + "</dd>", "<dd>" + e.a.money(vendors) + "</dd>", "<dd>3</dd>"} {
		if !strings.Contains(p.body, want) {
			t.Fatalf("ledger totals: no %s\n%s", want, p.body)
		}
	}
	e.rdb.HIncrBy(ctx, "hw:a:v:globe", "bal", 1)
	p = b.get("/admin?check=1")
	_, err := admin.CheckLedger(ctx)
	if p.figure(t, "Ledger check") != "Fail" || !strings.Contains(p.body, "<code>v:globe</code>") || status(err, 200) != 500 {
		t.Fatalf("broken ledger: API %v\n%s", err, p.body)
	}
	e.rdb.HIncrBy(ctx, "hw:a:v:globe", "bal", -1)

	// Disputes: the API's cases, newest first, in words.
	fraud, err := admin.Fraud(ctx, 0)
	e.mustOK(err, "fraud")
	p = b.get("/admin/disputes")
	items := disputeItem.FindAllStringIndex(p.body, -1)
	if len(items) != len(fraud.Cases) || len(fraud.Cases) != 2 {
		t.Fatalf("%d cases shown, the API has %d\n%s", len(items), len(fraud.Cases), p.body)
	}
	if p := b.get("/admin"); p.figure(t, "Fraud cases") != strconv.Itoa(len(fraud.Cases)) {
		t.Fatalf("overview fraud count %s", p.figure(t, "Fraud cases"))
	}
	want := "The reader alice (" + e.uid("alice") + ") double-spent segment 0 of certificate " + w.cert.Serial.String() + " at planet then globe"
	if !strings.Contains(p.body, want) || !strings.Contains(p.body, "planet claimed segment 1") || strings.Contains(p.body, "vendor_fraud") ||
		strings.Index(p.body, "planet claimed segment 1") > strings.Index(p.body, "double-spent") {
		t.Fatalf("disputes words or order:\n%s", p.body)
	}

	// A credit through the page is an API credit: /v1/me, the ledger.
	bob := e.user("bob", 0)
	pc := b.get("/admin/credit")
	f := url.Values{"csrf": {pc.hidden("csrf")}, "event": {pc.hidden("event")}, "username": {"bob"}, "amount": {"2.50"}, "unit": {"money"}, "ref": {"ticket-42"}}
	p = b.post("/admin/credit", f)
	if p.code != http.StatusSeeOther || !strings.HasPrefix(p.header.Get("Location"), "/admin/credit/done?event=") {
		t.Fatalf("credit: %d %s\n%s", p.code, p.header.Get("Location"), p.body)
	}
	if again := b.post("/admin/credit", f); again.code != http.StatusSeeOther || again.header.Get("Location") != p.header.Get("Location") {
		t.Fatalf("the form sent twice: %d", again.code)
	}
	me, err := e.as(bob).Me(ctx)
	e.mustOK(err, "me")
	if me.Balance != 250 {
		t.Fatalf("bob's balance %d after a page credit of 2.50 sent twice", me.Balance)
	}
	led, err := e.a.Ledger(ctx, "u:"+me.User, 0, 1<<62)
	e.mustOK(err, "ledger")
	if len(led) != 1 || led[0].Kind != "admin_credit" || led[0].Ref != "ticket-42" || led[0].Amount != 250 || led[0].Balance != 250 {
		t.Fatalf("bob's ledger %+v", led)
	}
	done := b.get(p.header.Get("Location"))
	if done.code != 200 || !strings.Contains(done.body, "is now "+e.a.money(250)) || !strings.Contains(done.body, "<code>ticket-42</code>") {
		t.Fatalf("confirmation:\n%s", done.body)
	}
	p = b.adminSubmit("/admin/credit", "/admin/credit", url.Values{"username": {"bob"}, "amount": {"3"}, "unit": {"tokens"}})
	me, _ = e.as(bob).Me(ctx)
	if p.code != http.StatusSeeOther || me.Balance != 250+3*int64(e.a.cfg.UnitValue) {
		t.Fatalf("3 tokens: %d, balance %d", p.code, me.Balance)
	}

	// A revocation through the page is on GET /v1/crl; the list shown is it.
	carol := e.user("carol", 1000)
	wc := e.buy(carol, 16)
	p = b.submit("/admin/revoke", "/admin/revoke", url.Values{"serial": {strings.ToUpper(wc.cert.Serial.String())}, "reason": {"stolen laptop"}})
	if p.code != http.StatusSeeOther || !e.revoked(wc.cert.Serial) {
		t.Fatalf("revoke: %d %s\n%s", p.code, p.header.Get("Location"), p.body)
	}
	p = b.get(p.header.Get("Location"))
	if !strings.Contains(p.body, "Certificate "+wc.cert.Serial.String()+" is revoked") || !strings.Contains(p.body, "<q>stolen laptop</q>") {
		t.Fatalf("after revoking:\n%s", p.body)
	}
	wd := e.buy(e.user("dave", 1000), 16)
	p = b.submit("/admin/revoke", "/admin/revoke", url.Values{"username": {"dave"}, "reason": {"chargeback"}})
	if p.code != http.StatusSeeOther || !e.revoked(wd.cert.Serial) {
		t.Fatalf("revoke dave: %d", p.code)
	}
	if p := b.get(p.header.Get("Location")); !strings.Contains(p.body, "The account of dave is revoked") || !strings.Contains(p.body, "<q>chargeback</q>") {
		t.Fatalf("after revoking dave:\n%s", p.body)
	}
	raw, err := e.client().CRL(ctx, 0)
	e.mustOK(err, "crl")
	crl, err := payword.OpenCRL(raw, e.a.Keys())
	e.mustOK(err, "open crl")
	p = b.get("/admin/revocations")
	rows := crlRow.FindAllStringSubmatch(p.body, -1)
	if len(rows) != len(crl.Entries) || len(crl.Entries) != 3 {
		t.Fatalf("%d rows, the API's list has %d\n%s", len(rows), len(crl.Entries), p.body)
	}
	for i, r := range rows {
		x := crl.Entries[len(crl.Entries)-1-i]
		if r[1] != strconv.FormatUint(x.Seq, 10) || !strings.Contains(p.body, `title="`+x.Serial.String()+`"`) {
			t.Fatalf("row %d: %s, the API's %+v", i, r[1], x)
		}
	}
	if p := b.get("/admin"); p.figure(t, "Revocation list") != strconv.Itoa(len(crl.Entries)) {
		t.Fatalf("overview revocations %s", p.figure(t, "Revocation list"))
	}
	// Revoked again: not active any more, said so, nothing changed.
	before := e.snapshot()
	p = b.submit("/admin/revoke", "/admin/revoke", url.Values{"serial": {wc.cert.Serial.String()}, "reason": {"again"}})
	if p.code != http.StatusUnprocessableEntity || !strings.Contains(p.body, "No active certificate") || e.snapshot() != before {
		t.Fatalf("revoke again: %d\n%s", p.code, p.body)
	}
}

// TestAdminListsPaging: 50 a page, each entry once over the pages.
func TestAdminListsPaging(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	srv := e.webServer()
	b := e.adminBrowser(srv)
	ctx := context.Background()
	const n = 2*adminRows + 7
	for i := range n {
		e.rdb.RPush(ctx, "hw:a:fraud", `{"t":`+strconv.Itoa(1000+i)+`,"kind":"double_bind","vendor":"v`+strconv.Itoa(i)+`","serial":"s","seg":1,"user":"u-x","owner":"o"}`)
		e.rdb.ZAdd(ctx, agentapi.CRLKey, redisZ(float64(i+1), `{"seq":`+strconv.Itoa(i+1)+`,"serial":"s`+strconv.Itoa(i)+`","time":1,"exp":0,"reason":"admin"}`))
	}
	seen := map[string]bool{}
	next := "/admin/disputes"
	for k := 0; next != ""; k++ {
		p := b.get(next)
		got := regexp.MustCompile(`to o and to (v\d+);`).FindAllStringSubmatch(p.body, -1)
		if k < 2 && len(got) != adminRows || k == 2 && len(got) != 7 || k > 2 {
			t.Fatalf("disputes page %d: %d cases", k, len(got))
		}
		for _, g := range got {
			if seen[g[1]] {
				t.Fatalf("%s on two pages", g[1])
			}
			seen[g[1]] = true
		}
		if k == 0 && got[0][1] != "v"+strconv.Itoa(n-1) {
			t.Fatalf("newest first: %s", got[0][1])
		}
		next = linkHref(p.body, "Older")
	}
	if len(seen) != n {
		t.Fatalf("%d cases over the pages, %d stored", len(seen), n)
	}
	clear(seen)
	next = "/admin/revocations"
	for k := 0; next != ""; k++ {
		p := b.get(next)
		rows := crlRow.FindAllStringSubmatch(p.body, -1)
		if k < 2 && len(rows) != adminRows || k == 2 && len(rows) != 7 || k > 2 {
			t.Fatalf("revocations page %d: %d rows", k, len(rows))
		}
		for _, r := range rows {
			if seen[r[1]] {
				t.Fatalf("entry %s on two pages", r[1])
			}
			seen[r[1]] = true
		}
		next = linkHref(p.body, "Older")
	}
	if len(seen) != n {
		t.Fatalf("%d entries over the pages, %d stored", len(seen), n)
	}
	for _, q := range []string{"p=-1", "p=x", "p=99999999999"} {
		if p := b.get("/admin/disputes?" + q); p.code != 200 {
			t.Fatalf("disputes ?%s: %d", q, p.code)
		}
	}
	if p := b.get("/admin/revocations?before=x"); p.code != http.StatusBadRequest {
		t.Fatalf("revocations ?before=x: %d", p.code)
	}
}

func redisZ(score float64, member string) redis.Z { return redis.Z{Score: score, Member: member} }

// linkHref is the href of the link named name in a page, "" if none.
func linkHref(body, name string) string {
	m := regexp.MustCompile(`<a href="([^"]*)">` + name + `</a>`).FindStringSubmatch(body)
	if m == nil {
		return ""
	}
	return strings.ReplaceAll(m[1], "&amp;", "&")
}
