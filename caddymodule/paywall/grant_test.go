package paywall

import (
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

func TestGrantsHostile(t *testing.T) {
	g := newGranter([]byte(testGrantKey), testVendor)
	now := time.Now()
	claims := func(mod func(*grantClaims)) *grantClaims {
		c := &grantClaims{Product: "/articles/a", Scope: "path", User: "u:alice", RegisteredClaims: jwt.RegisteredClaims{
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
