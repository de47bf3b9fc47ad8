package paywall

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/hashwall/hashwall/payword"
)

// Hostile readers against the real Caddy, over raw connections where Go's
// client would clean the request: no spelling of a priced path, no method,
// no forged or misplaced grant and no oversized header gets an article
// unpaid, and none spends anything.
func TestE2EHostile(t *testing.T) {
	w := newWorld(t, worldOpts{globe: true})
	t.Run("bypass spellings", func(t *testing.T) { e2eBypass(t, w) })
	t.Run("methods", func(t *testing.T) { e2eMethods(t, w) })
	t.Run("grants", func(t *testing.T) { e2eHostileGrants(t, w) })
	t.Run("oversized headers", func(t *testing.T) { e2eOversized(t, w) })
	if l := w.cms.leaked(); len(l) > 0 {
		t.Fatalf("priced articles reached the CMS unpaid: %q", l)
	}
}

// refused checks that an answer is a 402 or a 400 and carries no content.
func refused(t *testing.T, what string, r rawResponse) {
	t.Helper()
	if r.StatusCode != http.StatusPaymentRequired && r.StatusCode != http.StatusBadRequest {
		t.Errorf("%s: %d, want 402 or 400: %q", what, r.StatusCode, r.wire)
	}
	if strings.Contains(r.wire, e2eMarker) {
		t.Errorf("%s: content in the answer: %q", what, r.wire)
	}
	if r.StatusCode == http.StatusPaymentRequired {
		// The product offered is the canonical path, never the spelling.
		ch, err := payword.ParseChallenge(r.Header.Get("WWW-Authenticate"))
		if err != nil {
			t.Errorf("%s: challenge %q: %v", what, r.Header.Get("WWW-Authenticate"), err)
		} else if strings.Contains(ch.Product, "/.") || strings.Contains(ch.Product, "//") || strings.HasSuffix(ch.Product, ".") {
			t.Errorf("%s: product %q is not canonical", what, ch.Product)
		}
	}
}

func e2eBypass(t *testing.T, w *world) {
	host := strings.TrimPrefix(w.news, "http://")
	for _, target := range []string{
		"/articles/x",
		// dot segments, duplicate and trailing slashes
		"/articles/../articles/x", "/free/../articles/x", "/articles/index.html/../x", "/articles/./x",
		"/./articles/x", "/../articles/x", "//articles//x", "/articles//x", "/articles/x/", "/articles/x//",
		"/articles/x/.", "/articles/x/./", "/news/../articles/x", "/articles/index.html/%2e%2e/x",
		// case
		"/ARTICLES/x", "/Articles/X", "/aRtIcLeS/x", "/BRIEF/x", "/Issues/2026-11-24/p1",
		// percent-encoding, once and twice
		"/%61rticles/x", "/%41RTICLES/x", "/articles/%78", "/articles/%2e%2e/articles/x",
		"/articles/%2E%2E/articles/x", "/articles/%2e/x", "/%2e%2e/articles/x", "/articles%2fx", "/articles%2Fx",
		"/articles%5cx", "/articles/index.html%2f..%2fx", "/%2561rticles/x", "/articles/%2578",
		"/articles/%252e%252e/articles/x", "/%252e%252e/articles/x", "/articles/x%2500",
		// separators and terminators some servers honour
		`/articles\x`, "/articles/x%00", "/articles/x%0a", "/articles/x%09", "/articles/x%20",
		"/articles/x.", "/articles/x..", "/articles./x", "/articles/x%2e", "/articles/x%2e%2e", "/articles/x./",
		// path parameters
		"/articles;v=1/x", "/articles/x;jsessionid=1", "/articles/x%3bv=1", "/articles/index.html;/x",
		"/articles/index.html;/../x", "/articles/..;/articles/x",
		// query, fragment, absolute form
		"/articles/x?free=1", "/articles/x?/../index.html", "/articles/x#top", "http://" + host + "/articles/x",
		"/articles/caf\xc3\xa9", "/articles/%c0%ae%c0%ae/x",
		// a directory's two forms (a scoped rule)
		"/issues/2026-11-24", "/issues//2026-11-24", "/ISSUES/2026-11-24",
		// letters an upstream folds or normalises to ASCII, invisible characters, marks
		"/article%C5%BF/x", "/art%C4%B1cles/x", "/ART%C4%B0CLES/x", "/%EF%BD%81rticles/x", "/articles%EF%BC%8Fx",
		"/brief%EF%BC%8Fx", "/brie%EF%AC%80/x", "/%E2%84%AArief/x", "/brief%E2%80%8B/x",
		"/brie\xef\xbd\x86/x", "/bri\xef\xbd\x85f/x", "/brie%EF%B8%8Ff/x", "/brief%C2%A0/x", "/bri%CC%81ef/x", "/bri%65%CC%81f/x",
		"/BRIEF%E2%80%8C/x", "/%E2%93%91rief/x", "/%F0%9D%90%9Brief/x", "/articles/x%E3%80%82", "/article%E2%80%A4/x",
		// the upstream-priced article
		"/news/today", "/NEWS/today", "/news//today", "/news/./today", "/x/../news/today", "/news/today/",
		"/%6eews/today", "/news%2ftoday", "/news/today;x", "/news/today.", "/news/%2574oday",
	} {
		refused(t, "GET "+target, rawRequest(t, w.news, "GET", target))
	}
	if n := w.cms.hitsOf("/articles/x"); n != 0 {
		t.Errorf("/articles/x reached the CMS %d times", n)
	}
}

func e2eMethods(t *testing.T, w *world) {
	const p = "/articles/m"
	for _, tc := range []struct {
		method string
		hdr    []string
	}{
		{"HEAD", nil},
		{"OPTIONS", nil},
		{"POST", []string{"Content-Type", "text/plain", "Content-Length", "0"}},
		{"PUT", []string{"Content-Length", "0"}},
		{"DELETE", nil},
		{"PATCH", nil},
		{"PROPFIND", nil},
		{"TRACE", nil},
		{"get", nil},
		{"CONNECT", nil},
	} {
		// A rule prices p; the CMS prices /news/ itself.
		for _, target := range []string{p, "/news/m"} {
			r := rawRequest(t, w.news, tc.method, target, tc.hdr...)
			if r.StatusCode/100 == 2 || strings.Contains(r.wire, e2eMarker) {
				t.Errorf("%s %s: %d %q", tc.method, target, r.StatusCode, r.wire)
			}
			if tc.method == "HEAD" && (r.StatusCode != 402 || !strings.HasSuffix(r.wire, "\r\n\r\n")) {
				t.Errorf("HEAD %s: %d, body after the header: %q", target, r.StatusCode, r.wire)
			}
		}
	}
	if n := w.cms.hitsOf(p); n != 0 {
		t.Errorf("%s reached the CMS %d times", p, n)
	}
	// A CORS preflight gets the gateway's own answer: the site's would give
	// out its header (and here, carelessly, its page) unpaid.
	for _, target := range []string{p, "/news/m"} {
		r := rawRequest(t, w.news, "OPTIONS", target, "Origin", "https://reader.example", "Access-Control-Request-Method", "GET")
		if r.StatusCode != 204 || r.Header.Get("Access-Control-Allow-Origin") != "*" || strings.Contains(r.wire, e2eMarker) {
			t.Errorf("preflight %s: %d %q", target, r.StatusCode, r.wire)
		}
	}
	// Paid, HEAD is answered without a body all the same.
	wal := w.buy(128)
	r := rawRequest(t, w.news, "HEAD", p, "Authorization", wal.Header(t, 0, 2, 2, testVendor, p))
	if r.StatusCode != 200 || !strings.HasSuffix(r.wire, "\r\n\r\n") || r.Header.Get("Payment-Receipt") == "" {
		t.Errorf("paid HEAD: %d %q", r.StatusCode, r.wire)
	}
}

func e2eHostileGrants(t *testing.T, w *world) {
	wal := w.buy(256)
	pay := func(base string, vendor string, g, i, amount uint32, path, product string) string {
		t.Helper()
		resp, _ := w.fetch(nil, "GET", base+path, "Authorization", wal.Header(t, g, i, amount, vendor, product))
		rec := resp.Header.Get("Payment-Receipt")
		if resp.StatusCode != 200 || rec == "" {
			t.Fatalf("pay %s at %s: %d %q", path, vendor, resp.StatusCode, resp.Header.Get("Payment-Error"))
		}
		return rec
	}
	article := pay(w.news, testVendor, 0, 2, 2, "/articles/a", "/articles/a")
	issue := pay(w.news, testVendor, 0, 7, 5, "/issues/2026-11-24/p1", "/issues/2026-11-24/")
	// The globe was given the same grant key: only the issuer tells its
	// grants apart.
	globe := pay(w.globe, globeVendor, 1, 2, 2, "/articles/a", "/articles/a")

	// Each grant works where it belongs, so the refusals below mean something.
	for _, ok := range []struct{ base, path, grant string }{
		{w.news, "/articles/a", article}, {w.news, "/issues/2026-11-24/p2", issue}, {w.globe, "/articles/a", globe},
	} {
		for _, hdr := range [][]string{{"Authorization", "Bearer " + ok.grant}, {"Cookie", grantCookie + "=" + ok.grant}} {
			if r := rawRequest(t, ok.base, "GET", ok.path, hdr...); r.StatusCode != 200 || !strings.Contains(r.body, e2eMarker) {
				t.Fatalf("%s with its own grant: %d", ok.path, r.StatusCode)
			}
		}
	}

	now := time.Now()
	claims := func(mod func(*grantClaims)) *grantClaims {
		c := &grantClaims{Product: "/articles/a", Scope: "path", User: w.uid, Price: 2, RegisteredClaims: jwt.RegisteredClaims{
			Issuer: testVendor, Subject: wal.Serial.String(), ID: "forged.1",
			IssuedAt: jwt.NewNumericDate(now.Add(-time.Minute)), ExpiresAt: jwt.NewNumericDate(now.Add(time.Hour)),
		}}
		if mod != nil {
			mod(c)
		}
		return c
	}
	sign := func(m jwt.SigningMethod, key any, c *grantClaims) string {
		s, err := jwt.NewWithClaims(m, c).SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	key := []byte(testGrantKey)
	parts := strings.Split(article, ".")
	otherPayload := strings.Split(sign(jwt.SigningMethodHS256, key, claims(func(c *grantClaims) { c.Product = "/articles/b" })), ".")[1]
	for _, tc := range []struct{ name, path, grant string }{
		{"forged (another key)", "/articles/a", sign(jwt.SigningMethodHS256, []byte("another-key-another-key-another-k"), claims(nil))},
		{"expired", "/articles/a", sign(jwt.SigningMethodHS256, key, claims(func(c *grantClaims) {
			c.ExpiresAt = jwt.NewNumericDate(now.Add(-10 * time.Second))
		}))},
		{"no expiry", "/articles/a", sign(jwt.SigningMethodHS256, key, claims(func(c *grantClaims) { c.ExpiresAt = nil }))},
		{"alg none", "/articles/a", sign(jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, claims(nil))},
		{"alg HS512", "/articles/a", sign(jwt.SigningMethodHS512, key, claims(nil))},
		{"other vendor (forged)", "/articles/a", sign(jwt.SigningMethodHS256, key, claims(func(c *grantClaims) { c.Issuer = globeVendor }))},
		{"other vendor (the globe's)", "/articles/a", globe},
		{"other product", "/articles/b", article},
		// Validly signed, but for the parent prefix: a rule without a scope
		// sells each article on its own.
		{"parent prefix", "/articles/b", sign(jwt.SigningMethodHS256, key,
			claims(func(c *grantClaims) { c.Product, c.Scope = "/articles/", "prefix" }))},
		{"other issue", "/issues/2026-11-25/p1", issue},
		{"other issue through dot segments", "/issues/2026-11-24/../2026-11-25/p1", issue},
		{"other issue through an encoded slash", "/issues/2026-11-24%2f..%2f2026-11-25/p1", issue},
		{"payload swapped", "/articles/b", parts[0] + "." + otherPayload + "." + parts[2]},
		{"signature stripped", "/articles/a", parts[0] + "." + parts[1] + "."},
		{"garbage", "/articles/a", "not.a.jwt"},
	} {
		for _, hdr := range [][]string{{"Authorization", "Bearer " + tc.grant}, {"Cookie", grantCookie + "=" + tc.grant}} {
			refused(t, tc.name+" as "+hdr[0], rawRequest(t, w.news, "GET", tc.path, hdr...))
		}
	}
}

func e2eOversized(t *testing.T, w *world) {
	wal := w.buy(128)
	w.drained()
	before := w.recorded()
	const p = "/articles/big"
	huge := strings.Repeat("A", 64<<10) // over Caddy's 16 KiB header limit
	for _, tc := range []struct {
		name   string
		hdr    []string
		status int
	}{
		{"payment over 8192 bytes", []string{"Authorization", payword.Scheme + " " + strings.Repeat("A", payword.MaxPaymentHeader)}, 431},
		{"payment over the header limit", []string{"Authorization", payword.Scheme + " " + huge}, 431},
		{"cookie over the header limit", []string{"Cookie", grantCookie + "=" + huge}, 431},
		{"grant cookie over the grant limit", []string{"Cookie", grantCookie + "=" + strings.Repeat("A", 3*maxGrantLen)}, 402},
		{"Bearer over the grant limit", []string{"Authorization", "Bearer " + strings.Repeat("A", 3*maxGrantLen)}, 402},
		{"many grant cookies", []string{"Cookie", strings.Repeat(grantCookie+"=x; ", 1000)}, 402},
	} {
		r := rawRequest(t, w.news, "GET", p, tc.hdr...)
		if r.StatusCode != tc.status || strings.Contains(r.wire, e2eMarker) {
			t.Errorf("%s: %d, want %d: %.200q", tc.name, r.StatusCode, tc.status, r.wire)
		}
		if tc.status == 431 && len(tc.hdr[1]) < len(huge) && r.Header.Get("Payment-Error") != "too_large" {
			t.Errorf("%s: Payment-Error %q", tc.name, r.Header.Get("Payment-Error"))
		}
	}
	if n := w.recorded() - before; n != 0 {
		t.Fatalf("oversized requests recorded %d claims", n)
	}
	// Nothing was spent: the first tokens of the segment still pay.
	if resp, _ := w.fetch(nil, "GET", w.news+p, "Authorization", wal.Header(t, 0, 2, 2, testVendor, p)); resp.StatusCode != 200 {
		t.Fatalf("honest payment after the oversized ones: %d %q", resp.StatusCode, resp.Header.Get("Payment-Error"))
	}
	if n := w.cms.hitsOf(p); n != 1 {
		t.Fatalf("%s reached the CMS %d times, want once (paid)", p, n)
	}
}
