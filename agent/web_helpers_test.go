package agent

import (
	"context"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/hashwall/hashwall/agentapi"
)

// browser is a cookie-keeping client of the pages, as a browser without
// scripts: it does not follow redirects, and sends its pages' Origin.
type browser struct {
	t      testing.TB
	srv    *httptest.Server
	c      *http.Client
	origin string // the Origin header of its POSTs; "" none
}

// webServer serves the env's pages (and API) as `hashwall agent` does.
func (e *env) webServer() *httptest.Server {
	mux := http.NewServeMux()
	mux.Handle("/v1/", e.a)
	mux.Handle("/", e.a.Pages())
	srv := httptest.NewServer(mux)
	e.t.Cleanup(srv.Close)
	return srv
}

func newBrowser(t testing.TB, srv *httptest.Server) *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{t: t, srv: srv, origin: srv.URL, c: &http.Client{Jar: jar,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

// page is an answer: status, headers and body.
type page struct {
	code   int
	header http.Header
	body   string
}

func (b *browser) do(req *http.Request) page {
	b.t.Helper()
	resp, err := b.c.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return page{resp.StatusCode, resp.Header, string(body)}
}

func (b *browser) get(path string) page {
	b.t.Helper()
	req, _ := http.NewRequest("GET", b.srv.URL+path, nil)
	return b.do(req)
}

// post sends a form as is (the csrf field included only if given).
func (b *browser) post(path string, form url.Values) page {
	b.t.Helper()
	req, _ := http.NewRequest("POST", b.srv.URL+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if b.origin != "" {
		req.Header.Set("Origin", b.origin)
	}
	return b.do(req)
}

var hiddenField = regexp.MustCompile(`name="([a-z]+)" value="([^"]*)"`)

// hidden is the value of the hidden field name in a page.
func (p page) hidden(name string) string {
	for _, m := range hiddenField.FindAllStringSubmatch(p.body, -1) {
		if m[1] == name {
			return html.UnescapeString(m[2])
		}
	}
	return ""
}

// submit shows the form page at path, then posts form with its CSRF token
// (and hidden fields form does not set) to action.
func (b *browser) submit(path, action string, form url.Values) page {
	b.t.Helper()
	p := b.get(path)
	if p.code != 200 {
		b.t.Fatalf("GET %s: %d", path, p.code)
	}
	f := url.Values{}
	for _, m := range hiddenField.FindAllStringSubmatch(p.body, -1) {
		if m[1] == "csrf" || m[1] == "checkout" {
			f.Set(m[1], html.UnescapeString(m[2]))
		}
	}
	for k, v := range form {
		f[k] = v
	}
	return b.post(action, f)
}

func (b *browser) cookie(name string) string {
	u, _ := url.Parse(b.srv.URL)
	for _, c := range b.c.Jar.Cookies(u) {
		if c.Name == name {
			return c.Value
		}
	}
	return ""
}

// signup creates an account in the browser and leaves it logged in.
func (b *browser) signup(name, pw string) {
	b.t.Helper()
	p := b.submit("/signup", "/signup", url.Values{"username": {name}, "password": {pw}, "password2": {pw}})
	if p.code != http.StatusSeeOther || p.header.Get("Location") != "/account" {
		b.t.Fatalf("sign-up: %d %s\n%s", p.code, p.header.Get("Location"), p.body)
	}
}

func (b *browser) login(name, pw string) page {
	b.t.Helper()
	return b.submit("/login", "/login", url.Values{"username": {name}, "password": {pw}})
}

func (e *env) credit(name string, amount int64) {
	e.t.Helper()
	_, err := e.as("Bearer "+adminToken).Credit(context.Background(), agentapi.Credit{User: name, Amount: amount})
	e.mustOK(err, "credit")
}

// state is snapshot by value rather than by DUMP, whose bytes follow a
// hash table's iteration order, which reads may change (rehashing).
func (e *env) state() string {
	e.t.Helper()
	ctx := context.Background()
	keys, err := e.rdb.Keys(ctx, "hw:*").Result()
	if err != nil {
		e.t.Fatal(err)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		if strings.HasPrefix(k, "hw:a:sess:") || strings.HasPrefix(k, "hw:a:lf:") || strings.HasPrefix(k, "hw:a:su:") { // sessions, log-in and sign-up throttles
			continue
		}
		var v any
		switch typ, _ := e.rdb.Type(ctx, k).Result(); typ {
		case "hash":
			m, _ := e.rdb.HGetAll(ctx, k).Result()
			v = m // fmt sorts map keys
		case "set":
			s, _ := e.rdb.SMembers(ctx, k).Result()
			sort.Strings(s)
			v = s
		case "zset":
			v, _ = e.rdb.ZRangeWithScores(ctx, k, 0, -1).Result()
		case "list":
			v, _ = e.rdb.LRange(ctx, k, 0, -1).Result()
		case "stream":
			v, _ = e.rdb.XRange(ctx, k, "-", "+").Result()
		default:
			v, _ = e.rdb.Get(ctx, k).Result()
		}
		fmt.Fprintf(&b, "%s=%v\n", k, v)
	}
	return b.String()
}
