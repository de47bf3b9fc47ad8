package payword

import (
	"crypto/ed25519"
	"testing"
	"time"
)

// fixture is a certificate with everything needed to spend it, built from
// fixed seeds so that tests (and docs/protocol.md's vectors) are repeatable.
type fixture struct {
	agent SigningKey
	keys  KeySet
	user  ed25519.PrivateKey
	k     Secret
	cert  *Certificate
	tree  *Tree
	now   time.Time
}

func seed(b byte) []byte {
	s := make([]byte, ed25519.SeedSize)
	for i := range s {
		s[i] = b + byte(i)
	}
	return s
}

var fixtureNow = time.Unix(1796083200, 0) // 2026-12-01T00:00:00Z

func newFixture(tb testing.TB, segments, m int, scope string) *fixture {
	tb.Helper()
	f := &fixture{
		agent: SigningKey{ID: "agent-2026", Key: ed25519.NewKeyFromSeed(seed(0x01))},
		user:  ed25519.NewKeyFromSeed(seed(0x41)),
		now:   fixtureNow,
	}
	for i := range f.k {
		f.k[i] = 0x80 + byte(i)
	}
	f.keys = KeySet{}
	if err := f.keys.Add(f.agent.ID, f.agent.Public()); err != nil {
		tb.Fatal(err)
	}
	f.cert = &Certificate{
		IssuedAt: f.now.Unix() - 3600, ExpiresAt: f.now.Unix() + 30*24*3600,
		UnitValue: 1, Currency: "EUR", Scope: scope, UserID: "u:alice",
	}
	for i := range f.cert.Serial {
		f.cert.Serial[i] = 0xc0 + byte(i)
	}
	copy(f.cert.UserKey[:], f.user.Public().(ed25519.PublicKey))
	f.tree = f.cert.Issue(f.k, segments, m)
	if _, err := f.cert.Sign(f.agent); err != nil {
		tb.Fatal(err)
	}
	return f
}

// pay builds a payment of amount tokens ending at index in segment g, bound
// to vendor (for a generic certificate).
func (f *fixture) pay(tb testing.TB, g, index, amount uint32, vendor, product string) *Payment {
	tb.Helper()
	var bind *Binding
	if f.cert.Generic() {
		var err error
		if bind, err = Bind(f.cert, f.user, g, vendor, f.now); err != nil {
			tb.Fatal(err)
		}
	}
	return NewPayment(f.cert, f.tree, f.k, bind, g, index, amount, vendor, product)
}

// roundTrip sends p through its wire encoding, as a gateway receives it.
func roundTrip(tb testing.TB, p *Payment) *Payment {
	tb.Helper()
	q, err := ParseAuthorization(p.Header())
	if err != nil {
		tb.Fatalf("round trip: %v", err)
	}
	return q
}

func (f *fixture) request(product string, price uint32) Request {
	return Request{Vendor: "daily-planet", Product: product, Price: price, Now: f.now}
}
