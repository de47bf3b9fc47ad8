package paywall

import (
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/hashwall/hashwall/internal/testutil/paytest"
	"github.com/hashwall/hashwall/payword"
)

// A grant never opens a page priced higher than what was paid for it, nor
// another page an upstream prices by query, whichever way it is presented.
func TestGrantNeverOpensDearerPage(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	rules := []Rule{
		{Pattern: "/issues/*/special", Price: 50, Scope: "/issues/*/"},
		{Pattern: "/issues/*/*", Price: 5, Scope: "/issues/*/"},
		{Pattern: "/articles/*", Price: 2},
	}
	h := e.handler(func(h *Handler) { h.Rules, h.UpstreamPrice = rules, true })
	var mu sync.Mutex
	prices := map[string]string{"/read?id=1": "1", "/read?id=2": "50", "/read?id=3": "1", "/read?id=1&id=2": "1", "/news/story": "3"}
	seen := ""
	cms := caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		mu.Lock()
		key := r.URL.Path
		if r.URL.RawQuery != "" {
			key += "?" + r.URL.RawQuery
		}
		seen = key
		price := prices[key]
		mu.Unlock()
		if price != "" {
			w.Header().Set(priceHeader, price)
		}
		_, _ = w.Write([]byte("secret " + key))
		return nil
	})
	wal := paytest.NewBank(t).Issue(t, paytest.Options{Seed: 31})
	challenge := func(w http.ResponseWriter) payword.Challenge {
		ch, _ := payword.ParseChallenge(w.Header().Get("WWW-Authenticate"))
		return ch
	}

	present := func(tok, name string) [][]string {
		return [][]string{{"Authorization", "Bearer " + tok}, {"Cookie", name + "=" + tok},
			{"Cookie", grantCookie + "=" + tok}}
	}

	t.Run("each query its own product", func(t *testing.T) {
		w, es := do(h, get("/read?id=1"), cms)
		if ch := challenge(w); status(w, es) != 402 || ch.Product != "/read?id=1" || ch.Price != 1 {
			t.Fatalf("/read?id=1: %d %+v", status(w, es), ch)
		}
		w, es = do(h, get("/read?id=1", "Authorization", wal.Header(t, 0, 1, 1, testVendor, "/read?id=1")), cms)
		cheap := w.Header().Get("Payment-Receipt")
		if status(w, es) != 200 || cheap == "" || w.Body.String() != "secret /read?id=1" {
			t.Fatalf("paying /read?id=1: %d %q %q", status(w, es), w.Header().Get("Payment-Error"), w.Body.String())
		}
		cookie := w.Header().Get("Set-Cookie")
		if !strings.HasPrefix(cookie, grantCookieName("/read?id=1")+"=") || !strings.Contains(cookie, "Path=/read;") {
			t.Errorf("grant cookie %q", cookie)
		}
		if c := grantPayload(t, cheap); c["price"] != float64(1) || c["product"] != "/read?id=1" {
			t.Errorf("grant claims %v", c)
		}
		for _, hdr := range present(cheap, grantCookieName("/read?id=1"))[:2] {
			// The same query in other spellings is the same product.
			for _, target := range []string{"/read?id=1", "/read?id=%31", "/read?&id=1"} {
				if w, es := do(h, get(target, hdr...), cms); status(w, es) != 200 || w.Body.String() != "secret /read?id=1" {
					t.Errorf("%s with its grant as %s: %d %q", target, hdr[0], status(w, es), w.Body.String())
				}
			}
		}
		for _, tc := range []struct{ target, product string }{
			{"/read?id=2", "/read?id=2"}, // dearer
			{"/read?id=3", "/read?id=3"}, // as cheap, but another page
			{"/read", ""},                // the upstream does not price it: served
			{"/read?id=1&id=2", "/read?id=1&id=2"},
		} {
			for _, hdr := range present(cheap, grantCookieName(tc.product)) {
				w, es := do(h, get(tc.target, hdr...), cms)
				if tc.product == "" {
					if status(w, es) != 200 {
						t.Errorf("unpriced %s: %d", tc.target, status(w, es))
					}
					continue
				}
				if ch := challenge(w); status(w, es) != 402 || strings.Contains(w.Body.String(), "secret") || ch.Product != tc.product {
					t.Errorf("%s with the 1-token grant of /read?id=1 as %s: %d %q %+v", tc.target, hdr[0], status(w, es), w.Body.String(), ch)
				}
			}
		}
		if w, es := do(h, get("/read?id=1;id=2"), cms); status(w, es) != 400 {
			t.Errorf("query with ;: %d", status(w, es))
		}
		if seen != "/read?id=1&id=2" {
			t.Errorf("the upstream saw %q, want the canonical query", seen)
		}

	})

	t.Run("upstream price rises", func(t *testing.T) {
		w, es := do(h, get("/news/story", "Authorization", wal.Header(t, 1, 3, 3, testVendor, "/news/story")), cms)
		story := w.Header().Get("Payment-Receipt")
		if status(w, es) != 200 || story == "" {
			t.Fatalf("paying /news/story: %d %q", status(w, es), w.Header().Get("Payment-Error"))
		}
		mu.Lock()
		prices["/news/story"] = "10"
		mu.Unlock()
		for _, hdr := range present(story, grantCookie)[:2] {
			if w, es := do(h, get("/news/story", hdr...), cms); status(w, es) != 402 || strings.Contains(w.Body.String(), "secret") {
				t.Errorf("/news/story at 10 with a 3-token grant as %s: %d", hdr[0], status(w, es))
			}
		}
		// A grant that paid enough opens it, with a cheaper one beside it.
		w, es = do(h, get("/news/story", "Authorization", wal.Header(t, 1, 13, 10, testVendor, "/news/story")), cms)
		dear := w.Header().Get("Payment-Receipt")
		if status(w, es) != 200 || dear == "" {
			t.Fatalf("paying /news/story at 10: %d %q", status(w, es), w.Header().Get("Payment-Error"))
		}
		if w, es := do(h, get("/news/story", "Cookie", grantCookie+"="+story+"; "+grantCookie+"="+dear), cms); status(w, es) != 200 {
			t.Errorf("two grants, the dearer enough: %d", status(w, es))
		}

	})

	// A scope covers pages a dearer rule prices: its grant opens only the
	// pages priced at most what it paid.
	t.Run("scope over a dearer rule", func(t *testing.T) {
		w, es := do(h, get("/issues/d/p1", "Authorization", wal.Header(t, 2, 5, 5, testVendor, "/issues/d/")), cms)
		issue := w.Header().Get("Payment-Receipt")
		if status(w, es) != 200 || issue == "" {
			t.Fatalf("paying /issues/d/: %d %q", status(w, es), w.Header().Get("Payment-Error"))
		}
		for _, hdr := range present(issue, grantCookie)[:2] {
			if w, es := do(h, get("/issues/d/p2", hdr...), cms); status(w, es) != 200 {
				t.Errorf("/issues/d/p2 with the issue's grant: %d", status(w, es))
			}
			if w, es := do(h, get("/issues/d/special", hdr...), cms); status(w, es) != 402 || strings.Contains(w.Body.String(), "secret") {
				t.Errorf("/issues/d/special (50) with the issue's 5-token grant as %s: %d", hdr[0], status(w, es))
			}
		}

	})

	t.Run("rule price rises", func(t *testing.T) {
		w, es := do(h, get("/articles/x", "Authorization", wal.Header(t, 3, 2, 2, testVendor, "/articles/x")), cms)
		article := w.Header().Get("Payment-Receipt")
		if status(w, es) != 200 || article == "" {
			t.Fatalf("paying /articles/x: %d", status(w, es))
		}
		dearer := e.handler(func(h *Handler) {
			h.Rules = append([]Rule(nil), rules...)
			h.Rules[2].Price = 5
		})
		for _, hdr := range present(article, grantCookie)[:2] {
			if w, es := do(h, get("/articles/x", hdr...), cms); status(w, es) != 200 {
				t.Errorf("/articles/x at 2: %d", status(w, es))
			}
			w, es := do(dearer, get("/articles/x", hdr...), cms)
			if ch := challenge(w); status(w, es) != 402 || ch.Price != 5 {
				t.Errorf("/articles/x now at 5 with a 2-token grant as %s: %d", hdr[0], status(w, es))
			}
		}
	})
}
