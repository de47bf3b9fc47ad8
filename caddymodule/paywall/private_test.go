package paywall

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/hashwall/hashwall/internal/testutil/paytest"
)

// An upstream that lets shared caches keep its pages must not let them keep
// paid ones: a CDN would serve them to readers who did not pay.
func TestPaidContentIsPrivate(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	h := e.handler()
	wal := paytest.NewBank(t).Issue(t, paytest.Options{Seed: 1})
	public := caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		w.Header().Set("Cache-Control", "public, max-age=3600, s-maxage=600")
		_, err := w.Write([]byte("content of " + r.URL.Path))
		return err
	})
	w, es := do(h, get("/articles/moon", "Authorization", wal.Header(t, 0, 2, 2, testVendor, "/articles/moon")), public)
	if status(w, es) != 200 {
		t.Fatalf("pay: %d", status(w, es))
	}
	receipt := w.Header().Get("Payment-Receipt")
	for name, got := range map[string]string{
		"payment": w.Header().Get("Cache-Control"),
		"grant": func() string {
			w, _ := do(h, get("/articles/moon", "Cookie", grantCookie+"="+receipt), public)
			return w.Header().Get("Cache-Control")
		}(),
	} {
		if !strings.HasPrefix(got, "private") || strings.Contains(got, "public") || strings.Contains(got, "s-maxage") {
			t.Errorf("%s response: Cache-Control %q", name, got)
		}
	}
	// Free pages keep what the upstream says.
	if w, _ := do(h, get("/articles/index.html"), public); w.Header().Get("Cache-Control") != "public, max-age=3600, s-maxage=600" {
		t.Errorf("free page: Cache-Control %q", w.Header().Get("Cache-Control"))
	}
}

// Payments fail closed on a revocation list the gateway could not refresh:
// a certificate revoked meanwhile could not be refused. Grants still work.
func TestStaleCRLRefusesPayments(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	h := e.handler(func(h *Handler) { h.CRLMaxAge = caddy.Duration(500 * time.Millisecond) })
	wal := paytest.NewBank(t).Issue(t, paytest.Options{Seed: 11})
	w, es := do(h, get("/articles/a", "Authorization", wal.Header(t, 0, 2, 2, testVendor, "/articles/a")), nil)
	if status(w, es) != 200 {
		t.Fatalf("pay: %d", status(w, es))
	}
	receipt := w.Header().Get("Payment-Receipt")
	e.agent.setDown(true)
	time.Sleep(900 * time.Millisecond)
	w, es = do(h, get("/articles/b", "Authorization", wal.Header(t, 0, 4, 2, testVendor, "/articles/b")), nil)
	if status(w, es) != http.StatusServiceUnavailable || w.Header().Get("Payment-Error") != "crl_stale" {
		t.Fatalf("payment on a stale CRL: %d %q", status(w, es), w.Header().Get("Payment-Error"))
	}
	if w, es := do(h, get("/articles/a", "Cookie", grantCookie+"="+receipt), nil); status(w, es) != 200 {
		t.Fatalf("grant on a stale CRL: %d", status(w, es))
	}
	e.agent.setDown(false)
	waitFor(t, "a fresh CRL", 5*time.Second, func() bool {
		w, es := do(h, get("/articles/b", "Authorization", wal.Header(t, 0, 4, 2, testVendor, "/articles/b")), nil)
		return status(w, es) == 200
	})
}

// A CORS preflight to a priced path gets the gateway's own answer, never
// the site's header or body; a bare OPTIONS is priced.
func TestPreflightAnsweredByGateway(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	h := e.handler()
	asked := 0
	careless := caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		asked++
		w.Header().Set("Access-Control-Allow-Origin", "https://reader.example")
		w.Header().Set("Content-Length", "18")
		_, err := w.Write([]byte("content of article"))
		return err
	})
	r := get("/articles/moon", "Origin", "https://reader.example", "Access-Control-Request-Method", "GET")
	r.Method = http.MethodOptions
	w, es := do(h, r, careless)
	// The gateway answers it: the site's answer is not asked for.
	if status(w, es) != 204 || w.Body.Len() != 0 || asked != 0 || w.Header().Get("Access-Control-Allow-Origin") != "*" ||
		w.Header().Get("Access-Control-Allow-Credentials") != "" {
		t.Fatalf("preflight: %d %q %v", status(w, es), w.Body.String(), w.Header())
	}
	r = get("/articles/moon", "Origin", "https://reader.example")
	r.Method = http.MethodOptions
	if w, es := do(h, r, careless); status(w, es) != 402 || strings.Contains(w.Body.String(), "content") {
		t.Fatalf("OPTIONS without Access-Control-Request-Method: %d %q", status(w, es), w.Body.String())
	}
}

// Under handle_path the paywall prices the stripped path, but the grant
// cookie must name the path the browser asks for, or it never comes back.
func TestCookiePathKeepsAStrippedPrefix(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	h := e.handler()
	wal := paytest.NewBank(t).Issue(t, paytest.Options{Seed: 2})
	for i, tc := range []struct{ orig, want string }{
		{"/news/articles/moon", "/news/articles/moon"},
		{"/articles/moon", "/articles/moon"},
		{"/elsewhere/moon", "/articles/moon"}, // rewritten, not stripped: the product
	} {
		r := get("/articles/moon", "Authorization", wal.Header(t, 0, 2*uint32(i+1), 2, testVendor, "/articles/moon"))
		orig := httptest.NewRequest(http.MethodGet, "http://news.example"+tc.orig, nil)
		r = r.WithContext(context.WithValue(r.Context(), caddyhttp.OriginalRequestCtxKey, *orig))
		w, es := do(h, r, nil)
		cookies := (&http.Response{Header: w.Header()}).Cookies()
		if status(w, es) != 200 || len(cookies) != 1 || cookies[0].Path != tc.want {
			t.Errorf("requested %s: %d, cookies %v, want Path %s", tc.orig, status(w, es), cookies, tc.want)
		}
	}
}
