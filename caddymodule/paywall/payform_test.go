package paywall

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"html"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/hashwall/hashwall/internal/testutil/paytest"
	"github.com/hashwall/hashwall/payword"
)

// formBody is the urlencoded form a bank posts: name and value pairs.
func formBody(kv ...string) string {
	var b strings.Builder
	for i := 0; i+1 < len(kv); i += 2 {
		if b.Len() > 0 {
			b.WriteByte('&')
		}
		b.WriteString(url.QueryEscape(kv[i]) + "=" + url.QueryEscape(kv[i+1]))
	}
	return b.String()
}

// payOf is the payment of a PayWord Authorization value, as the form's
// payment field carries it.
func payOf(hdr string) string { return strings.TrimPrefix(hdr, payword.Scheme+" ") }

// postForm is a POST of body to the pay path, as a browser sends a form.
func postForm(body string, hdr ...string) *http.Request {
	r := httptest.NewRequest(http.MethodPost, "http://news.example"+payPath, strings.NewReader(body))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.Header.Set("Accept", "text/html,application/xhtml+xml,*/*;q=0.8")
	r.Header.Set("Origin", "https://bank.example.com")
	for i := 0; i+1 < len(hdr); i += 2 {
		r.Header.Add(hdr[i], hdr[i+1])
	}
	return r
}

func TestParsePayForm(t *testing.T) {
	const pay = "eyJ2IjoxfQ_-09"
	long := func(n int) string { return strings.Repeat("a", n) }
	for _, tc := range []struct {
		name, body string
		status     int // 0: accepted
		ret        string
	}{
		{"plain", formBody("payment", pay, "return", "/articles/a"), 0, "/articles/a"},
		{"with a query", formBody("payment", pay, "return", "/articles/a?x=1&y=%2F"), 0, "/articles/a?x=1&y=%2F"},
		{"other fields ignored", formBody("submit", "Pay", "payment", pay, "return", "/a", "vendor", "x"), 0, "/a"},
		{"fields in any order, empty pairs", "&&return=%2Fa&&payment=" + pay + "&", 0, "/a"},
		{"root", formBody("payment", pay, "return", "/"), 0, "/"},
		{"escaped path", formBody("payment", pay, "return", "/caf%C3%A9"), 0, "/caf%C3%A9"},
		{"longest path and query", formBody("payment", pay, "return", "/"+long(2047)+"?"+long(2048)), 0, "/" + long(2047) + "?" + long(2048)},
		{"longest payment", formBody("payment", long(maxPaymentField), "return", "/a"), 0, "/a"},

		{"empty body", "", 400, ""},
		{"no payment", formBody("return", "/a"), 400, ""},
		{"empty payment", formBody("payment", "", "return", "/a"), 400, ""},
		{"no return", formBody("payment", pay), 400, ""},
		{"empty return", formBody("payment", pay, "return", ""), 400, ""},
		{"two payments", formBody("payment", pay, "payment", pay, "return", "/a"), 400, ""},
		{"two payments, one name escaped", "payment=" + pay + "&pay%6Dent=" + pay + "&return=%2Fa", 400, ""},
		{"two returns", formBody("payment", pay, "return", "/a", "return", "/b"), 400, ""},
		{"bad escape in a value", "payment=" + pay + "&return=%2", 400, ""},
		{"bad escape in a name", "payment=" + pay + "&return=%2Fa&%zz=1", 400, ""},
		{"semicolon is no separator", "payment=" + pay + ";return=%2Fa", 400, ""},
		{"payment with padding", formBody("payment", pay+"==", "return", "/a"), 400, ""},
		{"payment with the scheme", formBody("payment", "PayWord "+pay, "return", "/a"), 400, ""},
		{"payment with CRLF", formBody("payment", pay+"\r\nX-Evil: 1", "return", "/a"), 400, ""},
		{"payment in standard base64", formBody("payment", "ab+/", "return", "/a"), 400, ""},
		{"payment too long", formBody("payment", long(maxPaymentField+1), "return", "/a"), 413, ""},

		{"scheme-relative return", formBody("payment", pay, "return", "//evil.example"), 400, ""},
		{"scheme-relative return, encoded in the body", "payment=" + pay + "&return=%2F%2Fevil.example", 400, ""},
		{"scheme-relative return, encoded in the path", formBody("payment", pay, "return", "/%2F%2Fevil.example"), 400, ""},
		{"encoded backslash", formBody("payment", pay, "return", "/%5Cevil.example"), 400, ""},
		{"absolute return", formBody("payment", pay, "return", "https://evil.example/x"), 400, ""},
		{"absolute return on this site", formBody("payment", pay, "return", "http://news.example/a"), 400, ""},
		{"javascript return", formBody("payment", pay, "return", "javascript:alert(1)"), 400, ""},
		{"relative return", formBody("payment", pay, "return", "evil.example/x"), 400, ""},
		{"backslash return", formBody("payment", pay, "return", `/\evil.example`), 400, ""},
		{"backslash inside", formBody("payment", pay, "return", `/a\b`), 400, ""},
		{"tab-prefixed", formBody("payment", pay, "return", "\t//evil.example"), 400, ""},
		{"CR LF", formBody("payment", pay, "return", "/a\r\nSet-Cookie: x=1"), 400, ""},
		{"LF", formBody("payment", pay, "return", "/a\nb"), 400, ""},
		{"NUL", formBody("payment", pay, "return", "/a\x00"), 400, ""},
		{"DEL", formBody("payment", pay, "return", "/a\x7f"), 400, ""},
		{"space", formBody("payment", pay, "return", "/a b"), 400, ""},
		{"fragment", formBody("payment", pay, "return", "/a#top"), 400, ""},
		{"raw non-ASCII", formBody("payment", pay, "return", "/café"), 400, ""},
		{"bad escape in the path", formBody("payment", pay, "return", "/a%zz"), 400, ""},
		{"path too long", formBody("payment", pay, "return", "/"+long(2048)), 400, ""},
		{"query too long", formBody("payment", pay, "return", "/a?"+long(2049)), 400, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, err := parsePayForm(tc.body)
			switch {
			case tc.status == 0 && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.status == 0 && (f.payment == "" || f.ret != tc.ret):
				t.Fatalf("parsed %+v, want return %q", f, tc.ret)
			case tc.status != 0 && err == nil:
				t.Fatalf("accepted %+v", f)
			case tc.status != 0 && err.status != tc.status:
				t.Fatalf("status %d (%v), want %d", err.status, err, tc.status)
			}
			if err != nil && strings.Contains(err.msg, pay) {
				t.Fatalf("the refusal echoes the payment: %q", err.msg)
			}
		})
	}
}

// An accepted form holds a payment that is only base64url and a return
// that a browser resolves to this site, whatever the body.
func FuzzParsePayForm(f *testing.F) {
	for _, s := range []string{
		"payment=abc&return=%2Fa", "payment=abc&return=%2F%2Fevil", "return=/a?b=c&payment=x_-",
		"payment=a&payment=b&return=/", "payment=abc&return=/%2F%2Fx", "payment=abc&return=/%5C%5Cx",
		"payment=abc&return=/a%0d%0ab", "payment=abc&return=https://x/", "payment=abc&return=/a;b?c#d",
	} {
		f.Add(s)
	}
	base, _ := url.Parse("https://news.example/dir/page?q=1")
	f.Fuzz(func(t *testing.T, body string) {
		pf, err := parsePayForm(body)
		if err != nil {
			if err.status != 400 && err.status != 413 || err.msg == "" {
				t.Fatalf("refusal %+v", err)
			}
			return
		}
		const b64url = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
		if pf.payment == "" || len(pf.payment) > maxPaymentField || strings.IndexFunc(pf.payment, func(c rune) bool { return !strings.ContainsRune(b64url, c) }) >= 0 {
			t.Fatalf("payment %q", pf.payment)
		}
		r := pf.ret
		if r == "" || r[0] != '/' || strings.HasPrefix(r, "//") || strings.ContainsAny(r, "\\#") {
			t.Fatalf("return %q", r)
		}
		for i := 0; i < len(r); i++ {
			if r[i] <= ' ' || r[i] >= 0x7f {
				t.Fatalf("return %q has byte %#x", r, r[i])
			}
		}
		u, perr := url.Parse(r)
		if perr != nil {
			t.Fatalf("return %q does not parse: %v", r, perr)
		}
		if got := base.ResolveReference(u); got.Scheme != "https" || got.Host != "news.example" || got.User != nil {
			t.Fatalf("return %q resolves to %v", r, got)
		}
		if dec, _ := url.PathUnescape(u.EscapedPath()); strings.HasPrefix(dec, "//") || strings.HasPrefix(dec, `/\`) {
			t.Fatalf("return %q decodes to %q", r, dec)
		}
		if _, err := url.ParseRequestURI(r); err != nil {
			t.Fatalf("return %q is no request URI: %v", r, err)
		}
	})
}

// Never an upstream: the form's refusals are the gateway's own.
var noUpstream = caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
	panic("the request reached the upstream: " + r.Method + " " + r.URL.String())
})

// checkPayPage checks the form's page: its status, headers, policy and
// text; it never holds the payment.
func checkPayPage(t *testing.T, w *httptest.ResponseRecorder, es, want int, code payword.ErrorCode, secret string) string {
	t.Helper()
	if got := status(w, es); got != want || es != 0 {
		t.Fatalf("status %d (error %d), want %d: %v %q", got, es, want, w.Header(), w.Body.String())
	}
	hdr := w.Header()
	if hdr.Get("Payment-Error") != string(code) || hdr.Get("Cache-Control") != "no-store" ||
		hdr.Get("Content-Type") != "text/html; charset=utf-8" || hdr.Get("X-Content-Type-Options") != "nosniff" ||
		hdr.Get("Location") != "" || hdr.Get("Set-Cookie") != "" || hdr.Get("Payment-Receipt") != "" {
		t.Fatalf("headers %v", hdr)
	}
	page := w.Body.String()
	styles := styleElement.FindAllStringSubmatch(page, -1)
	if len(styles) != 1 {
		t.Fatalf("%d style elements", len(styles))
	}
	sum := sha256.Sum256([]byte(styles[0][1]))
	if csp := hdr.Get("Content-Security-Policy"); csp != payPageCSP ||
		!strings.Contains(csp, "style-src 'sha256-"+base64.StdEncoding.EncodeToString(sum[:])+"'") {
		t.Fatalf("CSP %q", csp)
	}
	for _, tag := range anyTag.FindAllString(page, -1) {
		low := strings.ToLower(quoted.ReplaceAllString(tag, `""`))
		for _, bad := range []string{"<script", "<img", "<iframe", "<form", "<object", "<embed", "<base", " on", "style="} {
			if strings.Contains(low, bad) {
				t.Errorf("tag %q has %q", tag, bad)
			}
		}
	}
	if secret != "" && strings.Contains(page, secret) {
		t.Fatalf("the page echoes the payment")
	}
	if strings.Contains(page, "CMS") || strings.Contains(page, "content of") {
		t.Fatalf("the page holds the upstream's answer: %q", page)
	}
	return visibleText(page)
}

func TestPayFormRefusals(t *testing.T) {
	h := pageHandler(t)
	pay := payOf(paytest.NewBank(t).Issue(t, paytest.Options{Seed: 60}).Header(t, 0, 2, 2, testVendor, "/articles/a"))
	valid := formBody("payment", pay, "return", "/articles/a")
	for _, m := range []string{http.MethodGet, http.MethodHead, http.MethodPut, http.MethodDelete, http.MethodOptions, http.MethodPatch} {
		r := postForm(valid)
		r.Method = m
		w, es := do(h, r, noUpstream)
		if w.Header().Get("Allow") != "POST" || w.Header().Get("Content-Security-Policy") != payPageCSP {
			t.Fatalf("%s: %v", m, w.Header())
		}
		if m == http.MethodHead {
			if status(w, es) != http.StatusMethodNotAllowed || w.Body.Len() != 0 {
				t.Fatalf("HEAD: %d, %d body bytes", status(w, es), w.Body.Len())
			}
			continue
		}
		checkPayPage(t, w, es, http.StatusMethodNotAllowed, "", pay)
	}
	for _, ct := range [][]string{nil, {"text/plain"}, {"application/json"}, {"multipart/form-data; boundary=x"},
		{"application/x-www-form-urlencoded; charset=latin1"}, {"application/x-www-form-urlencoded", "text/plain"},
		{"application/x-www-form-urlencoded;;"}} {
		r := postForm(valid)
		r.Header.Del("Content-Type")
		for _, v := range ct {
			r.Header.Add("Content-Type", v)
		}
		w, es := do(h, r, noUpstream)
		checkPayPage(t, w, es, http.StatusUnsupportedMediaType, payword.CodeMalformed, pay)
	}
	// Over 16 KiB, with and without a length, padding an otherwise valid form.
	big := valid + "&pad=" + strings.Repeat("x", maxPayForm)
	for _, chunked := range []bool{false, true} {
		r := postForm(big)
		if chunked {
			r.ContentLength = -1
			r.Body = io.NopCloser(strings.NewReader(big))
		}
		w, es := do(h, r, noUpstream)
		checkPayPage(t, w, es, http.StatusRequestEntityTooLarge, payword.CodeTooLarge, pay)
	}
	for _, tc := range []struct{ name, body string }{
		{"two payments", formBody("payment", pay, "payment", pay, "return", "/articles/a")},
		{"no payment", formBody("return", "/articles/a")},
		{"no return", formBody("payment", pay)},
		{"scheme-relative return", formBody("payment", pay, "return", "//evil.example/articles/a")},
		{"absolute return", formBody("payment", pay, "return", "https://evil.example/articles/a")},
		{"backslash return", formBody("payment", pay, "return", `/\evil.example`)},
		{"encoded slashes", "payment=" + pay + "&return=%2F%2Fevil.example"},
		{"CR LF", formBody("payment", pay, "return", "/articles/a\r\nLocation: https://evil.example")},
		{"the form's own path", formBody("payment", pay, "return", payPath)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w, es := do(h, postForm(tc.body), noUpstream)
			text := checkPayPage(t, w, es, http.StatusBadRequest, payword.CodeMalformed, pay)
			if strings.Contains(text, "Back to the article") || strings.Contains(text, "evil") {
				t.Fatalf("a link back from a form without a valid return: %q", text)
			}
		})
	}
	// A path that merely looks like the form's is priced as any other.
	r := postForm(valid)
	r.URL.Path = payPath + "/"
	if w, es := do(h, r, ok200); status(w, es) == http.StatusMethodNotAllowed {
		t.Fatalf("%s answered as the form", r.URL.Path)
	}
}

// upstreamLog is a CMS that notes what the gateway sent it.
type upstreamLog struct {
	mu   sync.Mutex
	reqs []string
	next caddyhttp.Handler
}

func (u *upstreamLog) ServeHTTP(w http.ResponseWriter, r *http.Request) error {
	u.mu.Lock()
	u.reqs = append(u.reqs, r.Method+" "+r.URL.RequestURI()+" ct="+r.Header.Get("Content-Type")+" auth="+r.Header.Get("Authorization")+
		" cookie="+r.Header.Get("Cookie")+" cl="+r.Header.Get("Content-Length"))
	u.mu.Unlock()
	if u.next != nil {
		return u.next.ServeHTTP(w, r)
	}
	return content.ServeHTTP(w, r)
}

func (u *upstreamLog) seen() []string {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]string(nil), u.reqs...)
}

// grantOf returns the grant cookie among a response's Set-Cookie fields.
func grantOf(w *httptest.ResponseRecorder) *http.Cookie {
	for _, c := range (&http.Response{Header: w.Header()}).Cookies() {
		if strings.HasPrefix(c.Name, grantCookie) {
			return c
		}
	}
	return nil
}

// checkRedirect checks a 303 to ret with the grant (receipt "" for none)
// and no body.
func checkRedirect(t *testing.T, w *httptest.ResponseRecorder, es int, ret string, paid bool) *http.Cookie {
	t.Helper()
	hdr := w.Header()
	if es != 0 || w.Code != http.StatusSeeOther || hdr.Get("Location") != ret || hdr.Get("Cache-Control") != "no-store" || w.Body.Len() != 0 {
		t.Fatalf("%d (error %d) %v %q, want 303 to %q", w.Code, es, hdr, w.Body.String(), ret)
	}
	g := grantOf(w)
	if paid && (g == nil || g.Value != hdr.Get("Payment-Receipt") || hdr.Get("Payment-Error") != "") {
		t.Fatalf("paid without a grant: %v", hdr)
	}
	if !paid && (g != nil || hdr.Get("Payment-Receipt") != "" || hdr.Get("Payment-Error") != "not_charged") {
		t.Fatalf("not charged, yet %v", hdr)
	}
	return g
}

func TestPayFormPays(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	h := e.handler()
	wal := paytest.NewBank(t).Issue(t, paytest.Options{Seed: 61})
	up := &upstreamLog{}
	pay := payOf(wal.Header(t, 0, 2, 2, testVendor, "/articles/moon"))
	form := formBody("payment", pay, "return", "/articles/moon?ref=bank")

	w, es := do(h, postForm(form, "Cookie", "theme=dark"), up)
	g := checkRedirect(t, w, es, "/articles/moon?ref=bank", true)
	if g.Path != "/articles/moon" || !g.HttpOnly || g.SameSite != http.SameSiteLaxMode || g.Secure {
		t.Fatalf("grant cookie %+v", g)
	}
	if seen := up.seen(); len(seen) != 1 || seen[0] != "GET /articles/moon?ref=bank ct= auth= cookie=theme=dark cl=" {
		t.Fatalf("the upstream saw %q", seen)
	}
	// The grant opens the article; the same form again gets the same grant.
	if w, es := do(h, get("/articles/moon", "Cookie", grantCookie+"="+g.Value), up); status(w, es) != 200 {
		t.Fatalf("the grant: %d", status(w, es))
	}
	w, es = do(h, postForm(form), up)
	if again := checkRedirect(t, w, es, "/articles/moon?ref=bank", true); again.Value != g.Value {
		t.Fatalf("the form sent again got another grant")
	}
	// The grant cookie sent with a new payment (a same-site form): the
	// grant opens the page, the payment stays unspent.
	next := wal.Header(t, 0, 4, 2, testVendor, "/articles/moon")
	w, es = do(h, postForm(formBody("payment", payOf(next), "return", "/articles/moon"), "Cookie", grantCookie+"="+g.Value), up)
	checkRedirect(t, w, es, "/articles/moon", false)
	if w, es := do(h, get("/articles/sun", "Authorization", wal.Header(t, 0, 4, 2, testVendor, "/articles/sun")), up); status(w, es) != 200 {
		t.Fatalf("the unspent tokens at another article: %d", status(w, es))
	}
	// A page no rule prices: nothing to pay, the reader goes there.
	w, es = do(h, postForm(formBody("payment", payOf(wal.Header(t, 0, 6, 2, testVendor, "/about")), "return", "/about")), up)
	checkRedirect(t, w, es, "/about", false)
}

func TestPayFormRefused(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	h := e.handler(func(h *Handler) { h.Rules = append(h.Rules, Rule{Pattern: "/gone/*", Price: 1}) })
	wal := paytest.NewBank(t).Issue(t, paytest.Options{Seed: 62})
	up := &upstreamLog{}
	gone := &upstreamLog{next: caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		return caddyhttp.Error(http.StatusNotFound, io.EOF) // as file_server answers a missing file
	})}

	// A forged token: 403 bad_token, with a link back.
	p := wal.Pay(t, 0, 2, 2, testVendor, "/articles/a")
	p.Token[0] ^= 1
	forged := payOf(p.Header())
	w, es := do(h, postForm(formBody("payment", forged, "return", "/articles/a")), up)
	text := checkPayPage(t, w, es, http.StatusForbidden, payword.CodeBadToken, forged)
	if !strings.Contains(text, "do not verify") || !strings.Contains(text, "Back to the article") ||
		!strings.Contains(w.Body.String(), `href="/articles/a"`) {
		t.Fatalf("bad token page: %q", w.Body.String())
	}
	// Paid for /articles/a, returning to /articles/b: wrong_product, and
	// nothing spent (the same tokens then pay for /articles/a).
	good := payOf(wal.Header(t, 0, 2, 2, testVendor, "/articles/a"))
	w, es = do(h, postForm(formBody("payment", good, "return", "/articles/b")), up)
	checkPayPage(t, w, es, http.StatusPaymentRequired, payword.CodeWrongProduct, good)
	if w.Header().Get("WWW-Authenticate") != "" {
		t.Fatalf("the form's page carries a challenge")
	}
	w, es = do(h, postForm(formBody("payment", good, "return", "/articles/a")), up)
	checkRedirect(t, w, es, "/articles/a", true)
	// The same tokens at another article: a replay.
	replay := payOf(wal.Header(t, 0, 2, 2, testVendor, "/articles/c"))
	w, es = do(h, postForm(formBody("payment", replay, "return", "/articles/c")), up)
	checkPayPage(t, w, es, http.StatusConflict, payword.CodeReplay, replay)
	// The upstream has no such page: the payment is voided, no grant.
	missing := payOf(wal.Header(t, 0, 3, 1, testVendor, "/gone/x"))
	w, es = do(h, postForm(formBody("payment", missing, "return", "/gone/x")), gone)
	if text := checkPayPage(t, w, es, http.StatusNotFound, payword.CodeVoided, missing); !strings.Contains(text, "voided") {
		t.Fatalf("voided page: %q", text)
	}
	// Sent again: 409 voided, without reaching the upstream.
	n := len(gone.seen())
	w, es = do(h, postForm(formBody("payment", missing, "return", "/gone/x")), gone)
	checkPayPage(t, w, es, http.StatusConflict, payword.CodeVoided, missing)
	if len(gone.seen()) != n {
		t.Fatalf("the repeat of a voided payment reached the upstream")
	}
	for _, s := range up.seen() {
		if strings.Contains(s, "/articles/b") || strings.Contains(s, "/articles/c") {
			t.Fatalf("a refused payment reached the upstream: %q", s)
		}
	}
	// The store down: 503, nothing granted.
	e.redis.Kill()
	down := payOf(wal.Header(t, 0, 5, 2, testVendor, "/articles/d"))
	w, es = do(h, postForm(formBody("payment", down, "return", "/articles/d")), up)
	checkPayPage(t, w, es, http.StatusServiceUnavailable, payword.CodeUnavailable, down)
}

func TestPayFormUpstreamPriced(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	h := e.handler(func(h *Handler) { h.UpstreamPrice = true })
	wal := paytest.NewBank(t).Issue(t, paytest.Options{Seed: 63})
	cms := caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		if strings.HasPrefix(r.URL.Path, "/news/") {
			w.Header().Set("Paywall-Price", "3")
		}
		status := 200
		if strings.HasPrefix(r.URL.Path, "/news/missing") {
			status = 404
		}
		w.Header().Set("Set-Cookie", "cms=1; Path=/")
		w.WriteHeader(status)
		_, _ = io.WriteString(w, "secret article")
		return nil
	})
	pay := payOf(wal.Header(t, 0, 3, 3, testVendor, "/news/story?a=1&b=2"))
	w, es := do(h, postForm(formBody("payment", pay, "return", "/news/story?b=2&a=1")), cms)
	g := checkRedirect(t, w, es, "/news/story?b=2&a=1", true)
	if g.Name != grantCookieName("/news/story?a=1&b=2") || g.Path != "/news/story" {
		t.Fatalf("grant cookie %+v", g)
	}
	if cs := w.Header().Values("Set-Cookie"); len(cs) != 2 || cs[0] != "cms=1; Path=/" {
		t.Fatalf("the upstream's cookie is not passed on: %q", cs)
	}
	if w, es := do(h, get("/news/story?b=2&a=1", "Cookie", g.Name+"="+g.Value), cms); status(w, es) != 200 {
		t.Fatalf("the grant: %d", status(w, es))
	}
	// A priced answer that is no success: not charged, the status kept.
	miss := payOf(wal.Header(t, 0, 6, 3, testVendor, "/news/missing"))
	w, es = do(h, postForm(formBody("payment", miss, "return", "/news/missing")), cms)
	checkPayPage(t, w, es, http.StatusNotFound, payword.CodeNotCharged, miss)
	// Underpaid (the price rose): 402, nothing spent.
	low := payOf(wal.Header(t, 0, 6, 1, testVendor, "/news/x"))
	w, es = do(h, postForm(formBody("payment", low, "return", "/news/x")), cms)
	checkPayPage(t, w, es, http.StatusPaymentRequired, payword.CodeUnderpaid, low)
}

// Whatever the upstream does with its writer, nothing of its answer
// reaches the form's: not its body, a flush, a hijacked connection, nor an
// aborted stream.
func TestPayFormCaptures(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	h := e.handler()
	wal := paytest.NewBank(t).Issue(t, paytest.Options{Seed: 64})
	var hijackErr error
	cms := caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		rc := http.NewResponseController(w)
		w.WriteHeader(103)
		w.Header().Set("Content-Type", "text/plain")
		for range 256 { // 1 MiB, flushed as it goes
			_, _ = w.Write([]byte(strings.Repeat("CMS-CONTENT ", 341)))
			_ = rc.Flush()
		}
		_, _, hijackErr = rc.Hijack()
		if err := rc.SetWriteDeadline(time.Now().Add(time.Second)); err == nil {
			t.Error("a write deadline reached the form's connection")
		}
		if strings.HasSuffix(r.URL.Path, "abort") {
			panic(http.ErrAbortHandler) // as reverse_proxy ends a broken stream
		}
		return nil
	})
	pay := payOf(wal.Header(t, 0, 2, 2, testVendor, "/articles/stream"))
	w, es := do(h, postForm(formBody("payment", pay, "return", "/articles/stream")), cms)
	checkRedirect(t, w, es, "/articles/stream", true)
	if hijackErr == nil {
		t.Fatal("the upstream hijacked the form's connection")
	}
	// Aborted once paid: the payment stands, the reader goes to the page.
	pay = payOf(wal.Header(t, 0, 4, 2, testVendor, "/articles/abort"))
	w, es = do(h, postForm(formBody("payment", pay, "return", "/articles/abort")), cms)
	checkRedirect(t, w, es, "/articles/abort", true)
	// Any other panic is the upstream's own.
	boom := caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error { panic("boom") })
	defer func() {
		if v := recover(); v != "boom" {
			t.Fatalf("recovered %v", v)
		}
	}()
	do(h, postForm(formBody("payment", payOf(wal.Header(t, 0, 6, 2, testVendor, "/articles/boom")), "return", "/articles/boom")), boom)
}

// Behind a stripped prefix (handle_path /blog/*), the form's path and its
// return both carry the prefix; the handler sees both without.
func TestPayFormStrippedPrefix(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	h := e.handler()
	wal := paytest.NewBank(t).Issue(t, paytest.Options{Seed: 65})
	up := &upstreamLog{}
	stripped := func(body string) *http.Request {
		r := postForm(body)
		orig := http.Request{Method: r.Method, RequestURI: "/blog" + payPath, URL: &url.URL{Path: "/blog" + payPath}}
		return r.WithContext(context.WithValue(r.Context(), caddyhttp.OriginalRequestCtxKey, orig))
	}
	pay := payOf(wal.Header(t, 0, 2, 2, testVendor, "/articles/moon"))
	for _, ret := range []string{"/articles/moon", "/blogx/articles/moon", "/blog", "/blog//evil.example"} {
		w, es := do(h, stripped(formBody("payment", pay, "return", ret)), up)
		checkPayPage(t, w, es, http.StatusBadRequest, payword.CodeMalformed, pay)
	}
	w, es := do(h, stripped(formBody("payment", pay, "return", "/BLOG/articles/moon")), up)
	if g := checkRedirect(t, w, es, "/BLOG/articles/moon", true); g.Path != "/BLOG/articles/moon" {
		t.Fatalf("grant cookie path %q", g.Path)
	}
	if seen := up.seen(); len(seen) != 1 || !strings.HasPrefix(seen[0], "GET /articles/moon ") {
		t.Fatalf("the upstream saw %q", seen)
	}
	// The grant's cookie comes back on the article's prefixed path.
	w, es = do(h, stripped(formBody("payment", pay, "return", "/blog/articles/moon")), up)
	if g := checkRedirect(t, w, es, "/blog/articles/moon", true); g.Path != "/blog/articles/moon" {
		t.Fatalf("grant cookie path %q", g.Path)
	}
}

// The form's page names each Payment-Error in words, escaped.
func TestPayFormPageSentences(t *testing.T) {
	h := pageHandler(t, func(h *Handler) { h.realm = `<b>R&D</b>` })
	for _, c := range paymentCodes {
		if codeSentences[c.code] == "" {
			t.Errorf("no sentence for %s", c.code)
		}
	}
	for _, c := range []payword.ErrorCode{payword.CodeNotCharged, payword.CodeVoided} {
		if codeSentences[c] == "" {
			t.Errorf("no sentence for %s", c)
		}
	}
	w := httptest.NewRecorder()
	h.payPage(w, get("/"), payOutcome{status: 403, code: payword.CodeBadToken, ret: `/a?x="><script>alert(1)</script>`})
	page := w.Body.String()
	if strings.Contains(page, "<script>") || strings.Contains(page, "<b>R") || !strings.Contains(html.UnescapeString(page), "<b>R&D</b>") {
		t.Fatalf("page not escaped: %s", page)
	}
	if m := regexp.MustCompile(`href="([^"]*)"`).FindStringSubmatch(page); m == nil || !strings.HasPrefix(html.UnescapeString(m[1]), "/a?x=") {
		t.Fatalf("link back %q", m)
	}
}

// BenchmarkPayForm is the form's cost beside the header's, in one run:
// the same requests alternately by header and by form, in blocks (costs),
// so both see the same machine, each prepared before the timer runs.
// header-ns/op and form-ns/op are each path's time; ns/op, B/op and
// allocs/op the form's overhead (the differences). "paid": a fresh token
// each op, verified and recorded through real Redis. "grant": a request
// whose grant cookie opens the page, so the payment is not spent and no
// store call is made: the form's own machinery (parse, internal request,
// capture, 303) without Redis's noise.
func BenchmarkPayForm(b *testing.B) {
	e := newEnv(b)
	h := e.handler(func(h *Handler) { h.Rules = []Rule{{Pattern: "/articles/*", Price: 1}} })
	bank := paytest.NewBank(b)
	waitFor(b, "the first CRL sync", 2*time.Second, func() bool { return h.be.crl.age(time.Now()) < time.Second })
	grant := grantRequest(b, h, 72).Header.Get("Cookie")
	for _, tc := range []struct {
		name   string
		cookie string
	}{{"paid", ""}, {"grant", grant}} {
		b.Run(tc.name, func(b *testing.B) {
			pays := func(seed byte) []string {
				wal := bank.Issue(b, paytest.Options{Seed: seed, Segments: 2048})
				out := make([]string, 0, b.N)
				binds := map[uint32]*payword.Binding{}
				for n := range b.N {
					g, i := uint32(n/128), uint32(n%128+1)
					if binds[g] == nil {
						binds[g], _ = payword.Bind(wal.Certificate, wal.User, g, testVendor, time.Now())
					}
					out = append(out, payword.NewPayment(wal.Certificate, wal.Tree, wal.K, binds[g], g, i, 1, testVendor, "/articles/a").Header())
				}
				return out
			}
			seed := byte(70)
			if tc.cookie != "" {
				seed = 74
			}
			hdrs, forms := pays(seed), pays(seed+1)
			var byHeader, byForm []*http.Request
			for n := range b.N {
				byHeader = append(byHeader, get("/articles/a", "Authorization", hdrs[n], "Cookie", tc.cookie))
				byForm = append(byForm, postForm(formBody("payment", payOf(forms[n]), "return", "/articles/a"), "Cookie", tc.cookie))
			}
			serve := func(r *http.Request) int {
				w, rr := caddyRequest(r)
				if err := h.ServeHTTP(w, rr, ok200); err != nil {
					b.Fatal(err)
				}
				return w.code
			}
			var nh, nf int
			b.ReportAllocs()
			b.ResetTimer()
			header, form := costs(b.N, func() {
				if c := serve(byHeader[nh]); c != 200 {
					b.Fatalf("header payment %d: %d", nh, c)
				}
				nh++
			}, func() {
				if c := serve(byForm[nf]); c != http.StatusSeeOther {
					b.Fatalf("form payment %d: %d", nf, c)
				}
				nf++
			})
			b.StopTimer()
			b.ReportMetric(header.ns, "header-ns/op")
			b.ReportMetric(form.ns, "form-ns/op")
			b.ReportMetric(form.ns-header.ns, "ns/op")
			b.ReportMetric(form.bytes-header.bytes, "B/op")
			b.ReportMetric(form.allocs-header.allocs, "allocs/op")
		})
	}
}

// An answer that was no success, whose payment could not be voided (the
// store died while the upstream answered): the payment stands, and the
// form's page keeps its grant.
func TestPayFormVoidFails(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	h := e.handler()
	wal := paytest.NewBank(t).Issue(t, paytest.Options{Seed: 66})
	dies := caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		e.redis.Kill()
		return caddyhttp.Error(http.StatusServiceUnavailable, io.EOF)
	})
	pay := payOf(wal.Header(t, 0, 2, 2, testVendor, "/articles/a"))
	w, es := do(h, postForm(formBody("payment", pay, "return", "/articles/a")), dies)
	g := grantOf(w)
	if status(w, es) != http.StatusServiceUnavailable || g == nil || w.Header().Get("Payment-Receipt") != g.Value ||
		w.Header().Get("Payment-Error") != "" || w.Header().Get("Location") != "" {
		t.Fatalf("%d %v", status(w, es), w.Header())
	}
	if text := visibleText(w.Body.String()); !strings.Contains(text, "The payment stands") || strings.Contains(w.Body.String(), pay) {
		t.Fatalf("page %q", text)
	}
}
