package paywall

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"golang.org/x/text/unicode/norm"

	"github.com/hashwall/hashwall/internal/testutil/paytest"
)

func TestMatch(t *testing.T) {
	for _, tc := range []struct {
		pattern, path string
		want          bool
	}{
		{"/articles/*", "/articles/moon", true},
		{"/articles/*", "/articles/2026/moon", true}, // a final star crosses segments
		{"/articles/*", "/articles", false},
		{"/articles/*", "/articlesx/moon", false},
		{"/issues/*/*", "/issues/2026-11-24/p1", true},
		{"/issues/*/index.html", "/issues/2026-11-24/index.html", true},
		{"/issues/*/index.html", "/issues/a/b/index.html", false}, // an inner star stays in its segment
		{"/a/*.pdf", "/a/x.pdf", true},
		{"/a/x*", "/a/xyz/deep", true},
		{"/exact", "/exact", true},
		{"/exact", "/exact/", false},
		{"/*/*/*/*/*/*/*/x", "/" + strings.Repeat("a/", 7) + "y", false},
	} {
		if got := match(tc.pattern, tc.path); got != tc.want {
			t.Errorf("match(%q, %q) = %v", tc.pattern, tc.path, got)
		}
	}
	if n := scopePrefix("/issues/*/", "/issues/2026/p1", false); n != len("/issues/2026/") {
		t.Errorf("scope prefix %d", n)
	}
}

// Every way of spelling a priced path is priced, or refused as ambiguous:
// never served free.
func TestBypassAttempts(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	h := e.handler()
	var seen string
	spy := caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		seen = r.URL.Path
		_, _ = w.Write([]byte("content"))
		return nil
	})
	for _, tc := range []struct {
		method, target string
		want           int
	}{
		{"GET", "/articles/../articles/x", 402},
		{"GET", "/free/../articles/x", 402},
		{"GET", "/articles/index.html/../x", 402},
		{"GET", "/articles/./x", 402},
		{"GET", "//articles//x", 402},
		{"GET", "/articles/x/", 402},
		{"GET", "/ARTICLES/x", 402},
		{"GET", "/Articles/X", 402},
		{"GET", "/%61rticles/x", 402},
		{"GET", "/articles/%2e%2e/articles/x", 402},
		{"GET", "/articles%2fx", 400},
		{"GET", "/articles%2Fx", 400},
		{"GET", "/articles%5cx", 400},
		{"GET", "/articles/%2561", 400},
		{"GET", "/%2561rticles/x", 400},
		{"GET", "/articles/x%00", 400},
		{"GET", "/articles/x.", 400},
		{"GET", "/articles./x", 400},
		{"GET", "/articles/x%20", 400},
		{"GET", "/articles;v=1/x", 400},
		{"GET", "/articles/x;jsessionid=1", 400},
		{"GET", "/articles/index.html;x", 400},
		{"GET", "/articles/" + strings.Repeat("a", maxPathLen), 400},
		{"HEAD", "/articles/x", 402},
		{"OPTIONS", "/articles/x", 402},
		{"POST", "/articles/x", 402},
		{"GET", "/articles/index.html", 200},
		{"GET", "/articles/index.html/", 200},
		{"GET", "/articles/", 402},
		{"GET", "/issues/2026-11-24/", 402},
		{"GET", "/issues/2026-11-24", 402},
		{"GET", "/article%C5%BF/x", 400},
		{"GET", "/%E2%84%AArticles/x", 400},
		{"GET", "/art%C4%B1cles/x", 400},
		{"GET", "/%EF%BD%81rticles/x", 400},
		{"GET", "/articles%EF%BC%8Fx", 400},
		{"GET", "/articles/x%E2%80%8B", 400},
		{"GET", "/ARTICL~1/x", 400},
		{"GET", "/articles/x::$DATA", 400},
		{"GET", "/about", 200},
	} {
		seen = ""
		r := httptest.NewRequest(tc.method, tc.target, nil)
		w, es := do(h, r, spy)
		if got := status(w, es); got != tc.want {
			t.Errorf("%s %s: %d, want %d", tc.method, tc.target, got, tc.want)
		}
		if tc.want != 200 && seen != "" {
			t.Errorf("%s %s reached the upstream as %q", tc.method, tc.target, seen)
		}
	}
	// A paid request reaches the upstream with the path that was priced,
	// its trailing slash kept (directory redirects must not loop).
	wal := paytest.NewBank(t).Issue(t, paytest.Options{Seed: 20, Scope: "*"})
	r := httptest.NewRequest("GET", "/articles//./moon/", nil)
	r.Header.Set("Authorization", wal.Header(t, 0, 2, 2, testVendor, "/articles/moon"))
	if w, es := do(h, r, spy); status(w, es) != 200 || seen != "/articles/moon/" {
		t.Fatalf("paid: %d, upstream saw %q", status(w, es), seen)
	}
	// A day's issue index is the issue's product.
	w, _ := do(h, httptest.NewRequest("GET", "/issues/2026-11-24/", nil), spy)
	if ch := w.Header().Get("WWW-Authenticate"); !strings.Contains(ch, `product="/issues/2026-11-24/"`) {
		t.Fatalf("issue index challenge: %s", ch)
	}
}

func FuzzCanonicalPath(f *testing.F) {
	for _, s := range []string{"/articles/../x", "/a%2fb", "/a/%2561", "/A/b/", "/a;b", "/a/b.",
		"/%C5%BF", "/caf%C3%A9", "/cafe%CC%81", "/ARTICL~1/x", "/x::$DATA", "/%EF%BC%8F"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, target string) {
		u, err := url.ParseRequestURI(target)
		if err != nil {
			return
		}
		clean, lower, err := canonicalPath(u)
		if err != nil {
			return
		}
		if len(clean) != len(lower) || clean[0] != '/' || strings.Contains(clean, "/../") ||
			strings.HasSuffix(clean, "/..") || strings.Contains(clean, "//") || strings.ContainsAny(clean, "%;\\") {
			t.Fatalf("canonicalPath(%q) = %q", target, clean)
		}
		// Nothing an upstream may fold or normalise to other ASCII is left.
		if !norm.NFKC.IsNormalString(clean) {
			t.Fatalf("canonicalPath(%q) = %q, not NFKC", target, clean)
		}
		for _, r := range clean {
			if _, bad := asciiFolding()[r]; bad {
				t.Fatalf("canonicalPath(%q) = %q keeps %U", target, clean, r)
			}
		}
		// Canonical paths are fixed points.
		again, _, err := canonicalPath(&url.URL{Path: clean})
		if err != nil || again != clean {
			t.Fatalf("not idempotent: %q → %q → %q (%v)", target, clean, again, err)
		}
	})
}
