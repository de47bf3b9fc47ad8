package paywall

import (
	"net/http"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// jwtMint is how grants were signed before the minter: golang-jwt's HS256.
func jwtMint(g *granter, c *grantClaims) string {
	t := jwt.NewWithClaims(jwt.SigningMethodHS256, c)
	t.Header["kid"] = g.kids[0]
	s, err := t.SignedString(g.keys[0])
	if err != nil {
		panic(err)
	}
	return s
}

// The minter writes the very token golang-jwt writes, so that a payment
// retried across an upgrade still gets its first grant back.
func checkMint(t *testing.T, g *granter, c *grantClaims) {
	t.Helper()
	got, err := g.mint(c)
	if err != nil {
		t.Fatal(err)
	}
	if want := jwtMint(g, c); got != want {
		t.Fatalf("mint:\n got %s\nwant %s", got, want)
	}
}

func TestMintMatchesGolangJWT(t *testing.T) {
	g := newGranter([][]byte{[]byte(testGrantKey), []byte("an older key, still verifying")}, testVendor)
	at := time.Unix(1764633600, 0)
	base := grantClaims{Product: "/articles/a", Scope: "path", User: "u:alice", Price: 2, RegisteredClaims: jwt.RegisteredClaims{
		Issuer: testVendor, Subject: "0123456789abcdef0123456789abcdef", ID: "0123456789abcdef.1z",
		IssuedAt: jwt.NewNumericDate(at), ExpiresAt: jwt.NewNumericDate(at.Add(time.Hour)),
	}}
	for name, f := range map[string]func(*grantClaims){
		"plain":          func(*grantClaims) {},
		"prefix":         func(c *grantClaims) { c.Product, c.Scope = "/issues/2026-12-02/", "prefix" },
		"odd product":    func(c *grantClaims) { c.Product = "/a?b=1&c=<d>\"é\"\\\u2028" },
		"no user":        func(c *grantClaims) { c.User = "" },
		"no iat":         func(c *grantClaims) { c.IssuedAt = nil },
		"no ids":         func(c *grantClaims) { c.Issuer, c.Subject, c.ID = "", "", "" },
		"audience":       func(c *grantClaims) { c.Audience = jwt.ClaimStrings{"x"} },
		"not before":     func(c *grantClaims) { c.NotBefore = jwt.NewNumericDate(at) },
		"fraction":       func(c *grantClaims) { c.ExpiresAt = jwt.NewNumericDate(at.Add(1500 * time.Millisecond)) },
		"before 1970":    func(c *grantClaims) { c.IssuedAt = jwt.NewNumericDate(time.Unix(-5, 0)) },
		"max price":      func(c *grantClaims) { c.Price = ^uint32(0) },
		"control in uid": func(c *grantClaims) { c.User = "u:\x00\x1f" },
	} {
		t.Run(name, func(t *testing.T) {
			c := base
			f(&c)
			c.ready()
			checkMint(t, g, &c)
		})
	}
}

func FuzzMint(f *testing.F) {
	g := newGranter([][]byte{[]byte(testGrantKey)}, testVendor)
	f.Add("/articles/a", "path", "u:alice", uint32(1), "serial", "auth", int64(1764633600), int64(3600))
	f.Fuzz(func(t *testing.T, product, scope, user string, price uint32, sub, id string, iat, ttl int64) {
		c := &grantClaims{Product: product, Scope: scope, User: user, Price: price, RegisteredClaims: jwt.RegisteredClaims{
			Issuer: testVendor, Subject: sub, ID: id,
			IssuedAt: jwt.NewNumericDate(time.Unix(iat%(1<<40), 0)), ExpiresAt: jwt.NewNumericDate(time.Unix(iat%(1<<40)+ttl%(1<<30), 0)),
		}}
		checkMint(t, g, c)
	})
}

func BenchmarkMint(b *testing.B) {
	g := newGranter([][]byte{[]byte(testGrantKey)}, testVendor)
	at := time.Unix(1764633600, 0)
	c := &grantClaims{Product: "/articles/a", Scope: "path", User: "u:alice", Price: 2, RegisteredClaims: jwt.RegisteredClaims{
		Issuer: testVendor, Subject: "0123456789abcdef0123456789abcdef", ID: "0123456789abcdef.1z",
		IssuedAt: jwt.NewNumericDate(at), ExpiresAt: jwt.NewNumericDate(at.Add(time.Hour)),
	}}
	b.Run("minter", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_, _ = g.mint(c)
		}
	})
	b.Run("golang-jwt", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			jwtMint(g, c)
		}
	})
}

func TestGrantSetCookieMatchesNetHTTP(t *testing.T) {
	for _, path := range []string{"/articles/a", "/", "", "/a b", "/a;b", "/a\x00b", "/é", "/issues/2026"} {
		for _, maxAge := range []int{3600, 1, 0, -1} {
			for _, secure := range []bool{false, true} {
				c := &http.Cookie{Name: "hw_grant_0123", Value: "aa.bb.cc", Path: path, MaxAge: maxAge, HttpOnly: true, Secure: secure, SameSite: http.SameSiteLaxMode}
				if got, want := grantSetCookie(c.Name, c.Value, path, maxAge, secure), c.String(); got != want {
					t.Errorf("path %q max-age %d secure %v:\n got %s\nwant %s", path, maxAge, secure, got, want)
				}
			}
		}
	}
}
