package paywall

import (
	"net/http"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// grantPathAllocs is what the paywall may allocate serving a cached grant:
// the private writer, which also holds the Cache-Control value the
// response goes out with.
const grantPathAllocs = 1

// A returning reader costs no allocation beyond the private writer: not
// the path's pricing, the cookie scan, the grant cache, the placeholders
// or the metrics. Measured against the same request served without the
// paywall, prepared as Caddy prepares it (caddyRequest). Not parallel:
// allocations are counted for the whole process, so the least of a few
// tries is taken, other goroutines only adding to it.
func TestGrantPathAllocations(t *testing.T) {
	h := newEnv(t).handler()
	cookie := grantRequest(t, h, 43)
	bearer := get("/articles/a", "Authorization", "Bearer "+grantToken(t, cookie))
	for name, r := range map[string]*http.Request{"cookie": cookie, "bearer": bearer} {
		grantOnce(t, h, r) // caches the grant
		plain := testing.AllocsPerRun(100, func() { grantOnce(t, nil, r) })
		extra := 1e9
		for range 5 {
			extra = min(extra, testing.AllocsPerRun(100, func() { grantOnce(t, h, r) })-plain)
		}
		if extra > grantPathAllocs {
			t.Errorf("%s grant: the paywall allocates %v times per request, want at most %d", name, extra, grantPathAllocs)
		}
	}
}

// grantToken is the grant in r's cookie.
func grantToken(t *testing.T, r *http.Request) string {
	for _, c := range r.Cookies() {
		if c.Name == grantCookie {
			return c.Value
		}
	}
	t.Fatal("no grant cookie")
	return ""
}

// The placeholders hold the values of the last setting in a request: a
// provider answers first, static values (set when they are known already)
// before it, whoever set them before.
func TestPlaceholdersLastSettingWins(t *testing.T) {
	t.Parallel()
	alice := &grantClaims{User: "u:alice", Product: "/a", Price: 1}
	alice.Subject, alice.ID = "s1", "auth1"
	alice.ready()
	bob := &grantClaims{User: "u:bob", Product: "/b", Price: 1}
	bob.Subject, bob.ID = "s2", "auth2"
	bob.ready()
	for name, tc := range map[string]struct {
		before func(*caddy.Replacer)
		grants []*grantClaims
		want   [len(placeholderKeys)]string
	}{
		"grant":             {nil, []*grantClaims{alice}, [...]string{"u:alice", "s1", "/a", "auth1"}},
		"no grant":          {nil, []*grantClaims{nil}, [len(placeholderKeys)]string{}},
		"grant, then none":  {nil, []*grantClaims{alice, nil}, [len(placeholderKeys)]string{}},
		"none, then grant":  {nil, []*grantClaims{nil, alice}, [...]string{"u:alice", "s1", "/a", "auth1"}},
		"three settings":    {nil, []*grantClaims{alice, nil, bob}, [...]string{"u:bob", "s2", "/b", "auth2"}},
		"set by a handler":  {func(r *caddy.Replacer) { r.Set("http.paywall.user", "forged") }, []*grantClaims{nil}, [len(placeholderKeys)]string{}},
		"mapped by handler": {func(r *caddy.Replacer) { r.Map(provide(&[...]any{"x", "x", "x", "x"})) }, []*grantClaims{bob}, [...]string{"u:bob", "s2", "/b", "auth2"}},
	} {
		r := get("/a")
		repl := caddyhttp.NewTestReplacer(r)
		if tc.before != nil {
			tc.before(repl)
		}
		for _, g := range tc.grants {
			setPlaceholders(r, g)
		}
		for i, k := range placeholderKeys {
			if got, known := repl.GetString(k); !known || got != tc.want[i] {
				t.Errorf("%s: %s = %q (known %v), want %q", name, k, got, known, tc.want[i])
			}
		}
		if got := repl.ReplaceKnown("{http.paywall.user}|{http.paywall.auth}", "-"); got != orDash(tc.want[0])+"|"+orDash(tc.want[3]) {
			t.Errorf("%s: replaced %q", name, got)
		}
	}
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// matchSlash(p, s, true) is match(p, s+"/"): compared with the original
// matcher on every pattern and path of a small alphabet.
func TestMatchSlashIsMatchOfTheSlashForm(t *testing.T) {
	t.Parallel()
	words := func(alphabet string, n int) []string {
		out, layer := []string{""}, []string{""}
		for range n {
			var next []string
			for _, w := range layer {
				for _, c := range alphabet {
					next = append(next, w+string(c))
				}
			}
			out, layer = append(out, next...), next
		}
		return out
	}
	patterns, paths := words("a/*", 6), words("ab/", 6)
	for _, p := range patterns {
		for _, s := range paths {
			if got, want := matchSlash(p, s, true), matchRef(p, s+"/"); got != want {
				t.Fatalf("matchSlash(%q, %q) = %v, match of %q = %v", p, s, got, s+"/", want)
			}
			if got, want := match(p, s), matchRef(p, s); got != want {
				t.Fatalf("match(%q, %q) = %v, want %v", p, s, got, want)
			}
		}
		if !strings.HasPrefix(p, "/") || !strings.HasSuffix(p, "/") {
			continue
		}
		for _, s := range paths {
			if s == "" || s[0] != '/' {
				continue
			}
			if got, want := scopePrefix(p, s, true), scopePrefixRef(p, s+"/"); got != want {
				t.Fatalf("scopePrefix(%q, %q+/) = %d, want %d", p, s, got, want)
			}
		}
	}
}

// matchRef and scopePrefixRef are the matchers as they were before
// matchSlash, on built strings.
func matchRef(pattern, s string) bool {
	star := strings.IndexByte(pattern, '*')
	if star < 0 {
		return pattern == s
	}
	if !strings.HasPrefix(s, pattern[:star]) {
		return false
	}
	s, pattern = s[star:], pattern[star+1:]
	if pattern == "" {
		return true
	}
	end := strings.IndexByte(s, '/')
	if end < 0 {
		end = len(s)
	}
	for k := 0; k <= end; k++ {
		if matchRef(pattern, s[k:]) {
			return true
		}
	}
	return false
}

func scopePrefixRef(scope, lower string) int {
	for i := 1; i < len(lower); i++ {
		if lower[i] == '/' && matchRef(scope, lower[:i+1]) {
			return i + 1
		}
	}
	return 0
}

// A private answer keeps only what concerns the reader's own cache, in any
// ASCII case and only ASCII case, across fields; it allocates only to keep
// a directive. Not parallel: it counts allocations.
func TestPrivateCacheControl(t *testing.T) {
	for _, tc := range []struct {
		in   []string
		want string
	}{
		{nil, "private"},
		{[]string{""}, "private"},
		{[]string{"public"}, "private"},
		{[]string{"private"}, "private"},
		{[]string{"public, max-age=3600, s-maxage=600"}, "private, max-age=3600"},
		{[]string{"PUBLIC,MAX-AGE=5,Immutable"}, "private, MAX-AGE=5, Immutable"},
		{[]string{"s-maxage=60", " no-cache ", "no-store,must-revalidate, no-transform"}, "private, no-cache, no-store, must-revalidate, no-transform"},
		{[]string{"no-\u017ftore, \u212amax-age=1, max-age =9, proxy-revalidate"}, "private"},
		{[]string{",,,max-age=1,,"}, "private, max-age=1"},
	} {
		if got := privateCacheControl(tc.in); got != tc.want {
			t.Errorf("privateCacheControl(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	if n := testing.AllocsPerRun(100, func() { privateCacheControl([]string{"public, s-maxage=60"}) }); n != 0 {
		t.Errorf("nothing kept: %v allocations", n)
	}
}

// Each private answer owns its Cache-Control value: a handler that
// rewrites the value in place (as Caddy's header replacements do) changes
// no other answer.
func TestPrivateCacheControlOwnedByTheAnswer(t *testing.T) {
	t.Parallel()
	var headers []http.Header
	for range 2 {
		w := &sinkWriter{h: http.Header{}}
		pw := private(w)
		pw.WriteHeader(http.StatusOK)
		headers = append(headers, w.h)
	}
	headers[0]["Cache-Control"][0] = "public"
	if got := headers[1].Get("Cache-Control"); got != "private" {
		t.Fatalf("the other answer's Cache-Control became %q", got)
	}
}
