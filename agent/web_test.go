package agent

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"html"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/hashwall/hashwall/agentapi"
)

// TestWebSignupLoginAccount: sign up → account; log out; log in → the
// account shows the balance in tokens and money, and its history.
func TestWebSignupLoginAccount(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	srv := e.webServer()
	b := newBrowser(t, srv)
	if p := b.get("/"); p.code != http.StatusSeeOther || p.header.Get("Location") != "/login" {
		t.Fatalf("/ logged out: %d %s", p.code, p.header.Get("Location"))
	}
	if p := b.get("/account"); p.code != http.StatusSeeOther || p.header.Get("Location") != "/login" {
		t.Fatalf("/account logged out: %d", p.code)
	}
	b.signup("alice", "correct horse")
	p := b.get("/account")
	if p.code != 200 || !strings.Contains(p.body, "0 tokens") || !strings.Contains(p.body, "Log out alice") {
		t.Fatalf("account after sign-up: %d\n%s", p.code, p.body)
	}
	if p := b.submit("/account", "/logout", nil); p.code != http.StatusSeeOther {
		t.Fatalf("log out: %d", p.code)
	}
	if p := b.get("/account"); p.code != http.StatusSeeOther {
		t.Fatalf("account after log-out: %d", p.code)
	}
	e.credit("alice", 1234)
	if p := b.login("alice", "correct horse"); p.code != http.StatusSeeOther || p.header.Get("Location") != "/account" {
		t.Fatalf("log in: %d\n%s", p.code, p.body)
	}
	p = b.get("/account")
	for _, want := range []string{"1234 tokens", "12.34 EUR", "Credit from the bank", "<svg", "Tokens spent per day"} {
		if !strings.Contains(p.body, want) {
			t.Errorf("account lacks %q", want)
		}
	}
	// The API sees the same account.
	if n := e.balance("u:" + e.uid("alice")); n != 1234 {
		t.Fatalf("balance %d", n)
	}
}

// TestWebAccountPaging: the history pages, and its chart counts what was spent.
func TestWebAccountPaging(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	b := newBrowser(t, e.webServer())
	b.signup("bob", "correct horse")
	e.credit("bob", 200)
	for range 24 {
		e.credit("bob", 1)
	}
	sess := "Bearer "
	s, err := e.client().Login(context.Background(), "bob", "correct horse")
	e.mustOK(err, "login")
	sess += s.Token
	e.buy(sess, 128) // one segment
	p := b.get("/account")
	if !strings.Contains(p.body, "page 1 of 2") || !strings.Contains(p.body, `href="/account?page=2"`) ||
		!strings.Contains(p.body, "Tokens for a wallet") || strings.Contains(p.body, "No active certificate") {
		t.Fatalf("page 1:\n%s", p.body)
	}
	if !strings.Contains(p.body, `class="bar"`) {
		t.Fatal("no bar in the chart")
	}
	for _, q := range []string{"2", "0", "-1", "99", "x", "1e3"} {
		if p := b.get("/account?page=" + q); p.code != 200 {
			t.Fatalf("page %s: %d", q, p.code)
		}
	}
	if p := b.get("/account?page=2"); !strings.Contains(p.body, "page 2 of 2") {
		t.Fatalf("page 2:\n%s", p.body)
	}
}

// TestWebTopupOnce: the test checkout credits at once, exactly once
// however often the completion arrives (the form again, the completion
// again, the webhook with the same event).
func TestWebTopupOnce(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.cfg.TestTopups = true
	e.restartAgent()
	b := newBrowser(t, e.webServer())
	b.signup("carol", "correct horse")
	form := b.get("/topup")
	f := url.Values{"csrf": {form.hidden("csrf")}, "checkout": {form.hidden("checkout")}, "tokens": {"250"}, "provider": {"test"}}
	p := b.post("/topup", f)
	id := form.hidden("checkout")
	if p.code != http.StatusSeeOther || p.header.Get("Location") != "/topup/"+id {
		t.Fatalf("top-up: %d %s\n%s", p.code, p.header.Get("Location"), p.body)
	}
	uid := e.uid("carol")
	if n := e.balance("u:" + uid); n != 250 {
		t.Fatalf("balance %d after the top-up", n)
	}
	if p := b.get("/topup/" + id); !strings.Contains(p.body, "Top-up complete") {
		t.Fatalf("status page:\n%s", p.body)
	}
	for range 3 {
		b.post("/topup", f)
	}
	co := checkout{ID: id, UID: uid, User: "carol", Tokens: 250, Provider: "test"}
	if fresh, err := e.a.completeCheckout(context.Background(), co); err != nil || fresh {
		t.Fatalf("completion again: %v %v", fresh, err)
	}
	body := []byte(`{"user":"carol","amount":250,"event":"` + checkoutEvent(id) + `"}`)
	mac := hmac.New(sha256.New, []byte("whsec"))
	mac.Write(body)
	req := httptest.NewRequest("POST", "/v1/webhooks/payment", bytes.NewReader(body))
	req.Header.Set(agentapi.SignatureHeader, "sha256="+hex.EncodeToString(mac.Sum(nil)))
	rec := httptest.NewRecorder()
	e.a.ServeHTTP(rec, req)
	if rec.Code != 200 || !strings.Contains(rec.Body.String(), `"duplicate":true`) {
		t.Fatalf("webhook of the same checkout: %d %s", rec.Code, rec.Body.String())
	}
	if n := e.balance("u:" + uid); n != 250 {
		t.Fatalf("balance %d after replays, want 250", n)
	}
	// The same checkout id for another amount is refused.
	f.Set("tokens", "999")
	if p := b.post("/topup", f); p.code != http.StatusConflict {
		t.Fatalf("checkout reused for another amount: %d", p.code)
	}
	// Another reader cannot see it.
	d := newBrowser(t, b.srv)
	d.signup("dave", "correct horse")
	if p := d.get("/topup/" + id); p.code != 404 {
		t.Fatalf("another reader's top-up: %d", p.code)
	}
	if n := e.balance("u:" + uid); n != 250 {
		t.Fatalf("balance %d", n)
	}
	e.checkLedger()
}

// TestWebTopupOffByDefault: without test_topups no checkout credits anything.
func TestWebTopupOffByDefault(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	b := newBrowser(t, e.webServer())
	b.signup("erin", "correct horse")
	p := b.get("/topup")
	if strings.Contains(p.body, `value="test"`) {
		t.Fatal("test provider offered without test_topups")
	}
	p = b.post("/topup", url.Values{"csrf": {p.hidden("csrf")}, "checkout": {strings.Repeat("ab", 16)}, "tokens": {"100"}, "provider": {"test"}})
	if p.code != http.StatusUnprocessableEntity || e.balance("u:"+e.uid("erin")) != 0 {
		t.Fatalf("test top-up without the setting: %d", p.code)
	}
}

// TestWebCSRF: a state-changing POST without the token, with another
// session's token or from another origin is refused and changes nothing.
func TestWebCSRF(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.vendor("planet")
	setOrigins(t, e, "planet", "https://news.example")
	srv := e.webServer()
	alice, mallory := newBrowser(t, srv), newBrowser(t, srv)
	alice.signup("alice", "correct horse")
	mallory.signup("mallory", "correct horse")
	good := url.Values{"origin": {"https://news.example"}, "vendor": {"planet"}, "tokens": {"5"}}
	token := alice.get("/limits").hidden("csrf")
	with := func(tok string) url.Values {
		v := url.Values{"csrf": {tok}}
		for k, x := range good {
			v[k] = x
		}
		return v
	}
	before := e.state()
	for name, send := range map[string]func() page{
		"no token":          func() page { return alice.post("/limits", good) },
		"another session's": func() page { return alice.post("/limits", with(mallory.get("/limits").hidden("csrf"))) },
		"a made-up token":   func() page { return alice.post("/limits", with("AAAA")) },
		"another origin": func() page {
			alice.origin = "https://evil.example"
			defer func() { alice.origin = srv.URL }()
			return alice.post("/limits", with(token))
		},
		"an opaque origin": func() page {
			alice.origin = "null"
			defer func() { alice.origin = srv.URL }()
			return alice.post("/limits", with(token))
		},
		"another site's referer": func() page { return postReferer(alice, "/limits", with(token), "https://evil.example/page") },
		"log-out without token":  func() page { return alice.post("/logout", nil) },
		"log-in without token": func() page {
			return newBrowser(t, srv).post("/login", url.Values{"username": {"alice"}, "password": {"correct horse"}})
		},
	} {
		if p := send(); p.code != http.StatusForbidden {
			t.Errorf("%s: %d, want 403", name, p.code)
		}
	}
	if e.state() != before {
		t.Fatal("a forged request changed the store")
	}
	if p := alice.get("/account"); p.code != 200 {
		t.Fatal("alice was logged out by a forged request")
	}
	if p := alice.post("/limits", with(token)); p.code != http.StatusSeeOther {
		t.Fatalf("the real form: %d\n%s", p.code, p.body)
	}
	if p := postReferer(alice, "/limits", with(token), srv.URL+"/limits"); p.code != http.StatusSeeOther {
		t.Fatalf("same-site referer: %d", p.code)
	}
}

func postReferer(b *browser, path string, form url.Values, referer string) page {
	req, _ := http.NewRequest("POST", b.srv.URL+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Referer", referer)
	return b.do(req)
}

func setOrigins(t *testing.T, e *env, vendor string, origins ...string) {
	t.Helper()
	if err := e.rdb.HSet(context.Background(), e.a.prefix+"v:"+vendor, "origins", originsJSON(origins)).Err(); err != nil {
		t.Fatal(err)
	}
}

// TestWebSecurityHeaders: every page, error pages and the style sheet
// included, has the headers; no page has a script or an inline style.
func TestWebSecurityHeaders(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.cfg.TestTopups = true
	e.restartAgent()
	srv := e.webServer()
	anon, b := newBrowser(t, srv), newBrowser(t, srv)
	b.signup("alice", "correct horse")
	check := func(who *browser, path string, p page) {
		h := p.header
		csp := h.Get("Content-Security-Policy")
		if !strings.Contains(csp, "frame-ancestors 'none'") || !strings.Contains(csp, "default-src 'none'") ||
			strings.Contains(csp, "unsafe-inline") || strings.Contains(csp, "script-src") {
			t.Errorf("%s: CSP %q", path, csp)
		}
		if h.Get("Referrer-Policy") != "no-referrer" || h.Get("X-Content-Type-Options") != "nosniff" || h.Get("X-Frame-Options") != "DENY" {
			t.Errorf("%s: headers %v", path, h)
		}
		if !strings.HasPrefix(path, "/static/") && h.Get("Cache-Control") != "no-store" {
			t.Errorf("%s: Cache-Control %q", path, h.Get("Cache-Control"))
		}
		low := strings.ToLower(p.body)
		if strings.Contains(low, "<script") || strings.Contains(low, " style=") || strings.Contains(low, "<style") || strings.Contains(low, " on") && strings.Contains(low, "onerror") {
			t.Errorf("%s: a script or inline style", path)
		}
	}
	for _, path := range []string{"/", "/login", "/signup", "/account", "/topup", "/limits", "/recover", "/nope", "/topup/zz", "/static/site.css", "/static/none"} {
		check(anon, path, anon.get(path))
		check(b, path, b.get(path))
	}
	check(b, "POST /limits (refused)", b.post("/limits", nil))
	check(anon, "POST /login (invalid)", anon.submit("/login", "/login", url.Values{"username": {""}}))
	if p := anon.get("/static/site.css"); p.code != 200 || !strings.HasPrefix(p.header.Get("Content-Type"), "text/css") {
		t.Fatalf("style sheet: %d %s", p.code, p.header.Get("Content-Type"))
	}
}

// TestWebSessions: a new session id at log-in (a planted one is never
// adopted), the old one ended; log-out ends the session for the API too.
func TestWebSessions(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	srv := e.webServer()
	b := newBrowser(t, srv)
	e.user("alice", 0)
	// A session cookie planted before log-in, as a fixation attack would.
	u, _ := url.Parse(srv.URL)
	planted := agentapi.SessionTokenPrefix + "planted-by-mallory"
	b.c.Jar.SetCookies(u, []*http.Cookie{{Name: "hw_session", Value: planted, Path: "/"}})
	p := b.login("alice", "correct horse")
	if p.code != http.StatusSeeOther {
		t.Fatalf("log in: %d\n%s", p.code, p.body)
	}
	first := b.cookie("hw_session")
	if first == "" || first == planted {
		t.Fatalf("session id not renewed: %q", first)
	}
	for _, c := range p.header.Values("Set-Cookie") {
		if strings.HasPrefix(c, "hw_session=") && (!strings.Contains(c, "HttpOnly") || !strings.Contains(c, "SameSite=Lax")) {
			t.Fatalf("cookie attributes: %s", c)
		}
	}
	b.submit("/account", "/login", url.Values{"username": {"alice"}, "password": {"correct horse"}}) // logged in already
	second := b.cookie("hw_session")
	if second == first {
		t.Fatal("same session id after a second log-in")
	}
	if _, err := e.client().WithToken(first).Me(context.Background()); status(err, 200) != 401 {
		t.Fatalf("the replaced session still works: %v", err)
	}
	if _, err := e.client().WithToken(second).Me(context.Background()); err != nil {
		t.Fatalf("the session: %v", err)
	}
	if p := b.submit("/account", "/logout", nil); p.code != http.StatusSeeOther {
		t.Fatalf("log out: %d", p.code)
	}
	if _, err := e.client().WithToken(second).Me(context.Background()); status(err, 200) != 401 {
		t.Fatalf("the session outlived log-out: %v", err)
	}
	// The old cookie, replayed, is nobody's.
	c := newBrowser(t, srv)
	c.c.Jar.SetCookies(u, []*http.Cookie{{Name: "hw_session", Value: second, Path: "/"}})
	if p := c.get("/account"); p.code != http.StatusSeeOther {
		t.Fatalf("replayed cookie after log-out: %d", p.code)
	}
}

// TestWebSecureCookies: over TLS the cookies are Secure and __Host-.
func TestWebSecureCookies(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.cfg.TLS = func(*http.Request) bool { return true }
	e.restartAgent()
	e.user("alice", 0)
	srv := e.webServer()
	b := newBrowser(t, srv)
	form := b.get("/login")
	var pre string
	for _, c := range form.header.Values("Set-Cookie") {
		pre = c
	}
	if !strings.HasPrefix(pre, "__Host-hw_pre=") || !strings.Contains(pre, "Secure") {
		t.Fatalf("pre-session cookie: %q", pre)
	}
	// The jar keeps no Secure cookie for http://: send it by hand.
	val := strings.TrimPrefix(strings.SplitN(pre, ";", 2)[0], "__Host-hw_pre=")
	req, _ := http.NewRequest("POST", srv.URL+"/login", strings.NewReader(url.Values{"csrf": {form.hidden("csrf")},
		"username": {"alice"}, "password": {"correct horse"}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", "https://"+strings.TrimPrefix(srv.URL, "http://"))
	req.AddCookie(&http.Cookie{Name: "__Host-hw_pre", Value: val})
	p := b.do(req)
	var sess string
	for _, c := range p.header.Values("Set-Cookie") {
		if strings.HasPrefix(c, "__Host-hw_session=") {
			sess = c
		}
	}
	if p.code != http.StatusSeeOther || !strings.Contains(sess, "Secure") || !strings.Contains(sess, "HttpOnly") || !strings.Contains(sess, "SameSite=Lax") {
		t.Fatalf("log in over TLS: %d %q", p.code, sess)
	}
}

// hostile are inputs that must come back as text, never as markup, and
// never reach a store command as anything but a value.
var hostile = []string{
	`<script>alert(1)</script>`, `"><img src=x onerror=alert(1)>`, `' OR '1'='1' --`, `{{.}}`,
	`'; DROP TABLE users; --`, "a\x00b", `javascript:alert(1)`, `*`, `hw:a:u:*`,
}

// TestWebHostileInput: markup, script and SQL-looking input in every field
// of every form comes back escaped and changes nothing.
func TestWebHostileInput(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.cfg.TestTopups = true
	e.restartAgent()
	e.vendor("planet")
	setOrigins(t, e, "planet", "https://news.example")
	srv := e.webServer()
	b := newBrowser(t, srv)
	b.signup("alice", "correct horse")
	anon := newBrowser(t, srv)
	forms := []struct {
		who          *browser
		path, action string
		fields       []string
	}{
		{anon, "/signup", "/signup", []string{"username", "password", "password2"}},
		{anon, "/login", "/login", []string{"username", "password"}},
		{b, "/topup", "/topup", []string{"tokens", "provider", "checkout"}},
		{b, "/limits", "/limits", []string{"origin", "vendor", "tokens"}},
		{b, "/limits", "/limits/delete", []string{"origin", "vendor"}},
		{b, "/recover", "/recover", []string{"password"}},
	}
	before := e.state()
	for _, f := range forms {
		for _, field := range f.fields {
			for _, in := range hostile {
				v := url.Values{}
				for _, other := range f.fields {
					v.Set(other, "ok-value")
				}
				v.Set(field, in)
				if f.action == "/topup" && field != "checkout" {
					v.Del("checkout") // from the page
				}
				p := f.who.submit(f.path, f.action, v)
				if p.code/100 == 2 || p.code == http.StatusSeeOther && f.action != "/limits/delete" {
					t.Errorf("%s %s=%q accepted: %d", f.action, field, in, p.code)
				}
				if len(in) > 3 && strings.ContainsAny(in, `<>"'`) && strings.Contains(p.body, in) {
					t.Errorf("%s %s=%q comes back unescaped", f.action, field, in)
				}
				if field == "username" && f.action != "/login" || field == "origin" && f.action == "/limits" {
					if strings.ContainsAny(in, `<>"'&`) && !strings.Contains(p.body, html.EscapeString(in)) && !strings.Contains(p.body, escapedLikeTemplate(in)) {
						t.Errorf("%s %s=%q is not kept (escaped) in the form", f.action, field, in)
					}
				}
			}
		}
	}
	if e.state() != before {
		t.Fatal("hostile input changed the store")
	}
	if p := b.get("/account"); p.code != 200 {
		t.Fatal("alice lost her session")
	}
}

// escapedLikeTemplate is how html/template writes s in an attribute.
func escapedLikeTemplate(s string) string {
	r := strings.NewReplacer(`&`, "&amp;", `<`, "&lt;", `>`, "&gt;", `"`, "&#34;", `'`, "&#39;", "\x00", "\uFFFD", "+", "&#43;")
	return r.Replace(s)
}

// TestWebFieldErrors: each field's error is shown beside it, with what
// the reader typed (passwords aside).
func TestWebFieldErrors(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	b := newBrowser(t, e.webServer())
	p := b.submit("/signup", "/signup", url.Values{"username": {"new reader"}, "password": {"short"}, "password2": {"other"}})
	if p.code != http.StatusUnprocessableEntity || !strings.Contains(p.body, `value="new reader"`) ||
		!strings.Contains(p.body, "no spaces") || !strings.Contains(p.body, "at least 8 characters") ||
		strings.Contains(p.body, `value="short"`) || strings.Contains(p.body, `value="other"`) {
		t.Fatalf("sign-up errors: %d\n%s", p.code, p.body)
	}
	p = b.submit("/signup", "/signup", url.Values{"username": {"zoe"}, "password": {"long enough"}, "password2": {"long enougH"}})
	if !strings.Contains(p.body, "The two passwords differ") || !strings.Contains(p.body, `value="zoe"`) {
		t.Fatalf("mismatch:\n%s", p.body)
	}
	b.signup("zoe", "long enough")
	c := newBrowser(t, b.srv)
	p = c.submit("/signup", "/signup", url.Values{"username": {"zoe"}, "password": {"long enough"}, "password2": {"long enough"}})
	if p.code != http.StatusConflict || !strings.Contains(p.body, "This username is taken") {
		t.Fatalf("taken: %d", p.code)
	}
	p = c.login("zoe", "wrong password")
	if p.code != http.StatusUnauthorized || !strings.Contains(p.body, `value="zoe"`) || !strings.Contains(p.body, "wrong password.") {
		t.Fatalf("wrong password: %d\n%s", p.code, p.body)
	}
}

// TestWebLoginThrottle: guessing a password is throttled per account, by
// the API's throttle: the right password too is refused with a 429 page.
func TestWebLoginThrottle(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.user("alice", 0)
	b := newBrowser(t, e.webServer())
	for i := range maxFailures {
		if p := b.login("alice", "guess"); p.code != http.StatusUnauthorized {
			t.Fatalf("guess %d: %d", i, p.code)
		}
	}
	p := b.login("alice", "correct horse")
	if p.code != http.StatusTooManyRequests || p.header.Get("Retry-After") == "" || !strings.Contains(p.body, "Too many failed log-ins") {
		t.Fatalf("after %d guesses: %d %q", maxFailures, p.code, p.header.Get("Retry-After"))
	}
	// The API's log-in is throttled by the same counter.
	if _, err := e.client().Login(context.Background(), "alice", "correct horse"); status(err, 200) != 429 {
		t.Fatalf("API log-in: %v", err)
	}
}

// TestWebLimits: limits are validated, stored per reader, vendor and
// origin, and removed.
func TestWebLimits(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.vendor("planet")
	e.vendor("other")
	setOrigins(t, e, "planet", "https://news.example", "http://127.0.0.1:8490")
	b := newBrowser(t, e.webServer())
	b.signup("alice", "correct horse")
	uid := e.uid("alice")
	before := e.state()
	for _, c := range []struct{ origin, vendor, tokens, field, msg string }{
		{"https://news.example", "planet", "-5", "tokens", "at least 1"},
		{"https://news.example", "planet", "0", "tokens", "at least 1"},
		{"https://news.example", "planet", "99999999999999999999", "tokens", "At most"},
		{"https://news.example", "planet", "1000001", "tokens", "At most"},
		{"https://news.example", "planet", "ten", "tokens", "digits only"},
		{"https://news.example", "planet", "1.5", "tokens", "digits only"},
		{"https://news.example", "planet", "", "tokens", "Enter a number"},
		{"https://unknown.example", "planet", "5", "origin", "not registered for that vendor"},
		{"https://news.example", "other", "5", "origin", "not registered for that vendor"},
		{"https://news.example/path", "planet", "5", "origin", "without a path"},
		{"news.example", "planet", "5", "origin", "scheme://host"},
		{"https://news.example", "nobody", "5", "vendor", "No vendor"},
		{"https://news.example", "bad vendor!", "5", "vendor", "vendor id"},
	} {
		p := b.submit("/limits", "/limits", url.Values{"origin": {c.origin}, "vendor": {c.vendor}, "tokens": {c.tokens}})
		if p.code != http.StatusUnprocessableEntity || !strings.Contains(p.body, c.msg) || !strings.Contains(p.body, `id="e-`+c.field+`"`) {
			t.Errorf("%+v: %d\n%s", c, p.code, p.body)
		}
		if !strings.Contains(p.body, `value="`+html.EscapeString(c.tokens)+`"`) {
			t.Errorf("%+v: input not kept", c)
		}
	}
	if after := e.state(); after != before {
		t.Fatalf("a refused limit changed the store:\n%s\n%s", before, after)
	}
	if p := b.submit("/limits", "/limits", url.Values{"origin": {"HTTPS://News.Example/"}, "vendor": {"planet"}, "tokens": {" 20 "}}); p.code != http.StatusSeeOther {
		t.Fatalf("valid limit: %d\n%s", p.code, p.body)
	}
	if n, err := e.a.DailyLimit(context.Background(), uid, "planet", "https://news.example"); err != nil || n != 20 {
		t.Fatalf("limit %d %v", n, err)
	}
	if p := b.get("/limits"); !strings.Contains(p.body, "https://news.example") || !strings.Contains(p.body, ">20<") {
		t.Fatalf("limits page:\n%s", p.body)
	}
	if p := b.submit("/limits", "/limits/delete", url.Values{"origin": {"https://news.example"}, "vendor": {"planet"}}); p.code != http.StatusSeeOther {
		t.Fatalf("delete: %d", p.code)
	}
	if n, _ := e.a.DailyLimit(context.Background(), uid, "planet", "https://news.example"); n != 0 {
		t.Fatalf("limit %d after removal", n)
	}
	// Bounded: at most maxLimits sites.
	for i := range maxLimits {
		e.rdb.HSet(context.Background(), e.a.prefix+"lim:"+uid, limitField("v"+string(rune('a'+i%26))+string(rune('a'+i/26)), "https://x.example"), 1)
	}
	if p := b.submit("/limits", "/limits", url.Values{"origin": {"https://news.example"}, "vendor": {"planet"}, "tokens": {"5"}}); p.code != http.StatusUnprocessableEntity {
		t.Fatalf("limit beyond %d: %d", maxLimits, p.code)
	}
}

// TestWebRecover: the recovery page needs the password, then revokes the
// reader's certificates as POST /v1/certificates/recover does.
func TestWebRecover(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	auth := e.user("alice", 1000)
	w := e.buy(auth, 128)
	b := newBrowser(t, e.webServer())
	b.login("alice", "correct horse")
	if p := b.get("/recover"); !strings.Contains(p.body, "Your 1 active certificate stop") {
		t.Fatalf("recover page:\n%s", p.body)
	}
	before := e.state()
	if p := b.submit("/recover", "/recover", url.Values{"password": {"wrong"}}); p.code != http.StatusUnauthorized {
		t.Fatalf("wrong password: %d", p.code)
	}
	if e.state() != before || e.revoked(w.cert.Serial) {
		t.Fatal("a refused recovery changed something")
	}
	p := b.submit("/recover", "/recover", url.Values{"password": {"correct horse"}})
	if p.code != 200 || !strings.Contains(p.body, "certificates are cancelled") {
		t.Fatalf("recovery: %d\n%s", p.code, p.body)
	}
	if !e.revoked(w.cert.Serial) {
		t.Fatal("certificate not revoked")
	}
	if p := b.submit("/recover", "/recover", url.Values{"password": {"correct horse"}}); p.code != http.StatusTooManyRequests {
		t.Fatalf("second recovery at once: %d", p.code)
	}
	e.checkLedger()
}

// TestWebRoutesApart: the pages do not add to the API's mux (which
// TestRoutesAreTheContract holds to agentapi.Routes), nor the API to the pages.
func TestWebRoutesApart(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for _, path := range []string{"/login", "/account", "/static/site.css"} {
		if _, pattern := e.a.mux.Handler(httptest.NewRequest("GET", path, nil)); pattern != "" {
			t.Errorf("API mux serves %s", path)
		}
	}
	rec := httptest.NewRecorder()
	e.a.Pages().ServeHTTP(rec, httptest.NewRequest("GET", "/v1/me", nil))
	if rec.Code != 404 || !strings.Contains(rec.Header().Get("Content-Type"), "text/html") {
		t.Fatalf("pages on /v1/me: %d", rec.Code)
	}
}

// TestWebUnknownPath: any method on an unknown path is a 404 page (an
// operator's command with a wrong base URL must say so).
func TestWebUnknownPath(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	b := newBrowser(t, e.webServer())
	for _, m := range []string{"GET", "POST", "PUT", "DELETE"} {
		req, _ := http.NewRequest(m, b.srv.URL+"/prefix/v1/admin/settle", strings.NewReader("{}"))
		if p := b.do(req); p.code != 404 || p.header.Get("Content-Security-Policy") == "" {
			t.Errorf("%s: %d", m, p.code)
		}
	}
}

// BenchmarkWebAccount: the account page of a reader with a full ledger
// page and chart, in process against real Redis.
func BenchmarkWebAccount(b *testing.B) {
	e := newEnv(b)
	auth := e.user("alice", 100000)
	for range 30 {
		e.buy(auth, 128)
	}
	tok := strings.TrimPrefix(auth, "Bearer ")
	h := e.a.Pages()
	b.ResetTimer()
	for b.Loop() {
		req := httptest.NewRequest("GET", "/account", nil)
		req.AddCookie(&http.Cookie{Name: "hw_session", Value: tok})
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != 200 {
			b.Fatal(rec.Code)
		}
	}
}
