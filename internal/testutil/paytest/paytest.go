// Package paytest builds certificates and payments for tests, in the spirit
// of net/http/httptest: a Bank that signs, and a Cert with everything a
// wallet holds to spend it. Everything derives from fixed seeds, so a test
// (and docs/protocol.md's vectors) is repeatable.
package paytest

import (
	"crypto/ed25519"
	"encoding/base64"
	"testing"
	"time"

	"github.com/hashwall/hashwall/agentapi"
	"github.com/hashwall/hashwall/payword"
)

// KeyID is the id of the Bank's signing key.
const KeyID = "agent-2026"

// Bank is an agent's signing key and the key set that trusts it.
type Bank struct {
	Key  payword.SigningKey
	Keys payword.KeySet
}

// Seed is 32 bytes b, b+1, …: a fixed Ed25519 seed.
func Seed(b byte) []byte {
	s := make([]byte, ed25519.SeedSize)
	for i := range s {
		s[i] = b + byte(i)
	}
	return s
}

// NewBank returns the bank of key id KeyID and seed Seed(0x01).
func NewBank(tb testing.TB) *Bank {
	tb.Helper()
	b := &Bank{Key: payword.SigningKey{ID: KeyID, Key: ed25519.NewKeyFromSeed(Seed(0x01))}, Keys: payword.KeySet{}}
	if err := b.Keys.Add(b.Key.ID, b.Key.Public()); err != nil {
		tb.Fatal(err)
	}
	return b
}

// Options shape a certificate; zero fields take the defaults.
type Options struct {
	// Seed tells certificates apart: the user key is Seed(0x41+Seed), K is
	// 0x80+Seed, 0x81+Seed, … and the serial 0xc0+Seed, 0xc1+Seed, …
	Seed       byte
	Scope      string // default payword.GenericScope
	Segments   int    // S, default 64
	SegmentLen int    // m, default payword.DefaultSegmentLen
	UserID     string // default "u:alice"
	// UserKey makes the certificate out to this key (a wallet's) instead
	// of Seed(0x41+Seed)'s; the Cert then has no User and cannot bind.
	UserKey ed25519.PublicKey
	// Now is the time of the bindings (default time.Now()); the certificate
	// is valid from Now-1h (IssuedAt) to Now+Lifetime (ExpiresAt).
	Now      time.Time
	IssuedAt time.Time
	Lifetime time.Duration // default 30 days
}

// Cert is a signed certificate with its secret K, its Merkle tree and the
// user's key: what a wallet holds.
type Cert struct {
	*payword.Certificate
	Bank *Bank
	User ed25519.PrivateKey
	K    payword.Secret
	Tree *payword.Tree
	Now  time.Time
}

// Issue makes and signs a certificate.
func (b *Bank) Issue(tb testing.TB, o Options) *Cert {
	tb.Helper()
	if o.Scope == "" {
		o.Scope = payword.GenericScope
	}
	if o.Segments == 0 {
		o.Segments = 64
	}
	if o.SegmentLen == 0 {
		o.SegmentLen = payword.DefaultSegmentLen
	}
	if o.UserID == "" {
		o.UserID = "u:alice"
	}
	if o.Now.IsZero() {
		o.Now = time.Now()
	}
	if o.IssuedAt.IsZero() {
		o.IssuedAt = o.Now.Add(-time.Hour)
	}
	if o.Lifetime == 0 {
		o.Lifetime = 30 * 24 * time.Hour
	}
	c := &Cert{Bank: b, User: ed25519.NewKeyFromSeed(Seed(0x41 + o.Seed)), Now: o.Now}
	for i := range c.K {
		c.K[i] = 0x80 + o.Seed + byte(i)
	}
	c.Certificate = &payword.Certificate{
		IssuedAt: o.IssuedAt.Unix(), ExpiresAt: o.Now.Add(o.Lifetime).Unix(),
		UnitValue: 1, Currency: "EUR", Scope: o.Scope, UserID: o.UserID,
	}
	for i := range c.Serial {
		c.Serial[i] = 0xc0 + o.Seed + byte(i)
	}
	copy(c.UserKey[:], c.User.Public().(ed25519.PublicKey))
	if o.UserKey != nil {
		copy(c.UserKey[:], o.UserKey)
		c.User = nil
	}
	c.Tree = c.Issue(c.K, o.Segments, o.SegmentLen)
	if _, err := c.Sign(b.Key); err != nil {
		tb.Fatal(err)
	}
	return c
}

// Binding is the user's signed binding of segment g to vendor.
func (c *Cert) Binding(tb testing.TB, g uint32, vendor string) *payword.Binding {
	tb.Helper()
	bind, err := payword.Bind(c.Certificate, c.User, g, vendor, c.Now)
	if err != nil {
		tb.Fatal(err)
	}
	return bind
}

// Pay is a payment of amount tokens ending at index of segment g, to vendor
// for product, with the segment's binding when the certificate is generic.
func (c *Cert) Pay(tb testing.TB, g, index, amount uint32, vendor, product string) *payword.Payment {
	tb.Helper()
	var bind *payword.Binding
	if c.Generic() {
		bind = c.Binding(tb, g, vendor)
	}
	return payword.NewPayment(c.Certificate, c.Tree, c.K, bind, g, index, amount, vendor, product)
}

// Header is Pay as the value of an Authorization header.
func (c *Cert) Header(tb testing.TB, g, index, amount uint32, vendor, product string) string {
	tb.Helper()
	return c.Pay(tb, g, index, amount, vendor, product).Header()
}

// FromBundle is what a wallet holds of a certificate bought from a real
// agent for user's key.
func FromBundle(tb testing.TB, user ed25519.PrivateKey, b *agentapi.Bundle) *Cert {
	tb.Helper()
	raw, _ := base64.RawURLEncoding.DecodeString(b.Certificate)
	cert, err := payword.ParseCertificate(raw)
	if err != nil {
		tb.Fatal(err)
	}
	c := &Cert{Certificate: cert, User: user, Now: time.Now()}
	k, _ := base64.RawURLEncoding.DecodeString(b.Secret)
	copy(c.K[:], k)
	c.Tree = payword.NewTree(payword.Anchors(c.K, b.Segments, b.SegmentLen))
	return c
}
