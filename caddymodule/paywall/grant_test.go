package paywall

import (
	"encoding/base64"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/golang-jwt/jwt/v5"

	"github.com/hashwall/hashwall/internal/testutil/paytest"
	"github.com/hashwall/hashwall/payword"
)

func TestGrantsHostile(t *testing.T) {
	g := newGranter([][]byte{[]byte(testGrantKey)}, testVendor)
	now := time.Now()
	claims := func(mod func(*grantClaims)) *grantClaims {
		c := &grantClaims{Product: "/articles/a", Scope: "path", User: "u:alice", Price: 2, RegisteredClaims: jwt.RegisteredClaims{
			Issuer: testVendor, Subject: "00", ID: "auth1",
			IssuedAt: jwt.NewNumericDate(now.Add(-time.Minute)), ExpiresAt: jwt.NewNumericDate(now.Add(time.Hour)),
		}}
		if mod != nil {
			mod(c)
		}
		return c
	}
	sign := func(key string, c *grantClaims) string {
		s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString([]byte(key))
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	valid := sign(testGrantKey, claims(nil))
	if _, err := g.check(valid, "/articles/a", now); err != nil {
		t.Fatalf("valid grant refused: %v", err)
	}
	none, _ := jwt.NewWithClaims(jwt.SigningMethodNone, claims(nil)).SignedString(jwt.UnsafeAllowNoneSignatureType)
	hs512, _ := jwt.NewWithClaims(jwt.SigningMethodHS512, claims(nil)).SignedString([]byte(testGrantKey))
	parts := strings.Split(valid, ".")
	for name, tok := range map[string]string{
		"forged (other key)": sign("another-key-another-key-another-k", claims(nil)),
		"expired":            sign(testGrantKey, claims(func(c *grantClaims) { c.ExpiresAt = jwt.NewNumericDate(now.Add(-time.Second)) })),
		"no expiry":          sign(testGrantKey, claims(func(c *grantClaims) { c.ExpiresAt = nil })),
		"alg none":           none,
		"alg HS512":          hs512,
		"other vendor":       sign(testGrantKey, claims(func(c *grantClaims) { c.Issuer = "other-vendor" })),
		"other product":      sign(testGrantKey, claims(func(c *grantClaims) { c.Product = "/articles/b" })),
		"signature stripped": parts[0] + "." + parts[1] + ".",
		"no price":           sign(testGrantKey, claims(func(c *grantClaims) { c.Price = 0 })),
		"oversized":          valid + strings.Repeat("A", maxGrantLen),
		"garbage":            "not.a.jwt",
		"empty":              "",
	} {
		if _, err := g.check(tok, "/articles/a", now); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	// A cached grant still expires and still belongs to one product.
	if _, err := g.check(valid, "/articles/b", now); err == nil {
		t.Error("cached grant accepted for another product")
	}
	if _, err := g.check(valid, "/articles/a", now.Add(2*time.Hour)); err == nil {
		t.Error("cached grant accepted after expiry")
	}
}

// A grant has one spelling: base64url without padding and with zero
// trailing bits in each of its three parts. Any other spelling of the same
// bytes is refused, so a grant cannot be varied (and cached, or counted)
// under many names.
func TestGrantNonCanonicalBase64(t *testing.T) {
	g := newGranter([][]byte{[]byte(testGrantKey)}, testVendor)
	now := time.Now()
	c := &grantClaims{Product: "/articles/a", Scope: "path", User: "u:alice", Price: 2, RegisteredClaims: jwt.RegisteredClaims{
		Issuer: testVendor, Subject: "00", ID: "auth1", ExpiresAt: jwt.NewNumericDate(now.Add(time.Hour)),
	}}
	valid, err := g.mint(c)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := g.check(valid, "/articles/a", now); err != nil {
		t.Fatalf("valid grant refused: %v", err)
	}
	parts := strings.Split(valid, ".")
	// setLowBits turns on the unused low bits of a part's last character.
	setLowBits := func(s string) string {
		const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
		unused := map[int]int{2: 4, 3: 2}[len(s)%4] // bits of the last character that carry nothing
		if unused == 0 {
			return ""
		}
		v := strings.IndexByte(alphabet, s[len(s)-1])
		return s[:len(s)-1] + string(alphabet[v|(1<<unused-1)])
	}
	cases := map[string]string{
		"signature padded":       valid + "=",
		"signature std alphabet": parts[0] + "." + parts[1] + "." + strings.NewReplacer("-", "+", "_", "/").Replace(parts[2]) + "+",
		"header padded":          parts[0] + "==." + parts[1] + "." + parts[2],
		"payload with space":     parts[0] + "." + parts[1] + " ." + parts[2],
	}
	for i, name := range []string{"header", "payload", "signature"} {
		if v := setLowBits(parts[i]); v != "" {
			p := append([]string(nil), parts...)
			p[i] = v
			cases[name+" with trailing bits"] = strings.Join(p, ".")
		}
	}
	if _, ok := cases["signature with trailing bits"]; !ok {
		t.Fatal("an HS256 signature (32 bytes) always has 2 unused bits")
	}
	for name, tok := range cases {
		if tok == valid {
			t.Fatalf("%s: the same token", name)
		}
		if _, err := g.check(tok, "/articles/a", now); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// FuzzGrantCheck: no input panics the grant parser, and whatever it accepts
// is a grant in its one canonical spelling.
func FuzzGrantCheck(f *testing.F) {
	g := newGranter([][]byte{[]byte(testGrantKey)}, testVendor)
	now := time.Now()
	valid, _ := g.mint(&grantClaims{Product: "/a", Scope: "path", Price: 1, RegisteredClaims: jwt.RegisteredClaims{
		Issuer: testVendor, ExpiresAt: jwt.NewNumericDate(now.Add(time.Hour)),
	}})
	f.Add(valid)
	f.Add(valid + "=")
	f.Add("a.b.c")
	f.Add("")
	f.Fuzz(func(t *testing.T, tok string) {
		c, err := g.check(tok, "/a", now)
		if err != nil {
			return
		}
		parts := strings.Split(tok, ".")
		if len(parts) != 3 || c.Price < 1 || c.Product != "/a" {
			t.Fatalf("accepted %q: %+v", tok, c)
		}
		for _, p := range parts {
			raw, err := base64.RawURLEncoding.Strict().DecodeString(p)
			if err != nil || base64.RawURLEncoding.EncodeToString(raw) != p {
				t.Fatalf("accepted a non-canonical part %q of %q", p, tok)
			}
		}
	})
}

// TestGrantKeyRotation: 1,000 readers hold day passes when the vendor
// rotates its grant key (the new key first, the old one kept): none is
// asked to pay again, new grants are signed with the new key, and once the
// old key is dropped its passes no longer open anything.
func TestGrantKeyRotation(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	newKey := strings.Repeat("N", minGrantKey)
	dayPass := []Rule{{Pattern: "/issues/*/*", Price: 20, Scope: "/issues/*/", TTL: caddy.Duration(24 * time.Hour)}}
	before := e.handler(func(h *Handler) { h.Rules = dayPass })
	now := time.Now()
	passes := make([]string, 1000)
	for i := range passes {
		// As a payment mints it (pay.go).
		c := &grantClaims{Product: "/issues/2026-12-02/", Scope: "prefix", User: fmt.Sprintf("u:%d", i), Price: 20,
			RegisteredClaims: jwt.RegisteredClaims{Issuer: testVendor, Subject: fmt.Sprintf("%032x", i), ID: fmt.Sprintf("auth.%d", i),
				IssuedAt: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(now.Add(24 * time.Hour))}}
		var err error
		if passes[i], err = before.grants.mint(c); err != nil {
			t.Fatal(err)
		}
	}
	asked := func(h *Handler) (n int) {
		for _, p := range passes {
			if w, es := do(h, get("/issues/2026-12-02/sport", "Cookie", grantCookie+"="+p), nil); status(w, es) != 200 {
				n++
			}
		}
		return n
	}
	rotated := e.handler(func(h *Handler) { h.Rules, h.GrantKey, h.OldGrantKeys = dayPass, newKey, []string{testGrantKey} })
	if n := asked(rotated); n != 0 {
		t.Fatalf("after the rotation %d of 1000 readers were asked to pay again", n)
	}
	fresh := paytest.NewBank(t).Issue(t, paytest.Options{Seed: 60})
	w, es := do(rotated, get("/issues/2026-12-02/front", "Authorization", fresh.Header(t, 0, 20, 20, testVendor, "/issues/2026-12-02/")), nil)
	receipt := w.Header().Get(payword.ReceiptHeader)
	if status(w, es) != 200 || receipt == "" {
		t.Fatalf("payment after the rotation: %d %q", status(w, es), w.Header().Get(payword.ErrorHeader))
	}
	onlyNew := e.handler(func(h *Handler) { h.Rules, h.GrantKey = dayPass, newKey })
	if _, err := onlyNew.grants.check(receipt, "/issues/2026-12-02/", time.Now()); err != nil {
		t.Fatalf("a grant minted after the rotation does not verify under the new key alone: %v", err)
	}
	if n := asked(onlyNew); n != len(passes) {
		t.Fatalf("with the old key dropped, %d of 1000 old passes still open pages", len(passes)-n)
	}
}
