package payword

import (
	"crypto/ed25519"
	"errors"
	"testing"
	"time"
)

func TestVerifySpendsASegment(t *testing.T) {
	f := newFixture(t, 8, 16, GenericScope)
	v := NewVerifier(f.keys)
	req := f.request("/articles/a", 2)

	st, err := v.Verify(roundTrip(t, f.pay(t, 3, 2, 2, "daily-planet", "/articles/a")), req, nil)
	if err != nil {
		t.Fatalf("first payment: %v", err)
	}
	if st.Index != 2 || st.Token != TokenAt(f.k, 3, 2, 16) {
		t.Fatalf("state after first payment = %d", st.Index)
	}
	// Contiguous payments follow from the stored state alone.
	for i := uint32(4); i <= 16; i += 2 {
		p := roundTrip(t, f.pay(t, 3, i, 2, "daily-planet", "/articles/a"))
		if Expected(p) != st {
			t.Fatalf("Expected(%d) does not match the stored state", i)
		}
		if st, err = v.Verify(p, req, &st); err != nil {
			t.Fatalf("payment up to %d: %v", i, err)
		}
	}
	if st.Index != 16 {
		t.Fatalf("final index %d", st.Index)
	}
}

func TestVerifySkippedTokensAreAcceptedOnce(t *testing.T) {
	f := newFixture(t, 4, 16, GenericScope)
	v := NewVerifier(f.keys)
	req := f.request("/a", 1)
	st, err := v.Verify(f.pay(t, 0, 1, 1, "daily-planet", "/a"), req, nil)
	if err != nil {
		t.Fatal(err)
	}
	// The wallet lost tokens 2..4 (never delivered); token 5 still verifies.
	if st, err = v.Verify(f.pay(t, 0, 5, 1, "daily-planet", "/a"), req, &st); err != nil || st.Index != 5 {
		t.Fatalf("skip ahead: %v (index %d)", err, st.Index)
	}
}

func TestVerifySpecificCertificateNeedsNoBinding(t *testing.T) {
	f := newFixture(t, 4, 16, "daily-planet")
	v := NewVerifier(f.keys)
	p := roundTrip(t, f.pay(t, 1, 3, 3, "daily-planet", "/a"))
	if p.Binding != nil {
		t.Fatal("specific payment carries a binding")
	}
	if _, err := v.Verify(p, f.request("/a", 3), nil); err != nil {
		t.Fatal(err)
	}
}

// TestVerifyHostile is the table of the protocol issue: every row must be
// refused with its typed error, and nothing accepted.
func TestVerifyHostile(t *testing.T) {
	f := newFixture(t, 8, 16, GenericScope)
	specific := newFixture(t, 8, 16, "other-vendor")
	const vendor, product = "daily-planet", "/articles/a"
	good := func() *Payment { return f.pay(t, 2, 3, 3, vendor, product) }
	after1 := func() *State { s := State{Index: 1, Token: TokenAt(f.k, 2, 1, 16)}; return &s }

	stranger := SigningKey{ID: "agent-2026", Key: ed25519.NewKeyFromSeed(seed(0x99))}
	resign := func(c *Certificate, k SigningKey) *Certificate {
		cc := *c
		if _, err := cc.Sign(k); err != nil {
			t.Fatal(err)
		}
		return &cc
	}

	tests := []struct {
		name string
		pay  func() *Payment
		req  func(Request) Request
		last *State
		want error
	}{
		{name: "forged agent signature", want: ErrBadSignature, pay: func() *Payment {
			p := good()
			p.Cert = resign(f.cert, stranger)
			return p
		}},
		{name: "certificate signed by an unknown key id", want: ErrUnknownKey, pay: func() *Payment {
			p := good()
			p.Cert = resign(f.cert, SigningKey{ID: "agent-1999", Key: f.agent.Key})
			return p
		}},
		{name: "certificate field changed after signing", want: ErrBadSignature, pay: func() *Payment {
			p := good()
			raw := append([]byte(nil), p.Cert.Raw()...)
			raw[len(certMagic)+16+8+8+4+4+7]++ // unit value
			c, err := ParseCertificate(raw)
			if err != nil {
				t.Fatal(err)
			}
			p.Cert = c
			return p
		}},
		{name: "expired certificate", want: ErrExpired, pay: good,
			req: func(r Request) Request { r.Now = time.Unix(f.cert.ExpiresAt, 0); return r }},
		{name: "certificate not yet valid", want: ErrNotYetValid, pay: good,
			req: func(r Request) Request { r.Now = time.Unix(f.cert.IssuedAt-3600, 0); return r }},
		{name: "payment for another vendor", want: ErrWrongVendor,
			pay: func() *Payment { return f.pay(t, 2, 3, 3, "evil-times", product) }},
		{name: "specific certificate used at a different vendor", want: ErrWrongVendor,
			pay: func() *Payment { return specific.pay(t, 2, 3, 3, vendor, product) }},
		{name: "specific certificate with a binding", want: ErrBadBinding, pay: func() *Payment {
			p := newFixture(t, 8, 16, vendor).pay(t, 2, 3, 3, vendor, product)
			p.Binding, _ = Bind(f.cert, f.user, 2, vendor, f.now)
			return p
		}},
		{name: "payment for another product", want: ErrWrongProduct,
			pay: func() *Payment { return f.pay(t, 2, 3, 3, vendor, "/articles/b") }},
		{name: "binding signed by a key other than the certificate's", want: ErrBadSignature, pay: func() *Payment {
			p := good()
			b, err := Bind(f.cert, ed25519.NewKeyFromSeed(seed(0x77)), 2, vendor, f.now)
			if err != nil {
				t.Fatal(err)
			}
			p.Binding = b
			return p
		}},
		{name: "binding for another segment", want: ErrBadBinding, pay: func() *Payment {
			p := good()
			p.Binding, _ = Bind(f.cert, f.user, 5, vendor, f.now)
			return p
		}},
		{name: "binding for another vendor", want: ErrBadBinding, pay: func() *Payment {
			p := good()
			p.Binding, _ = Bind(f.cert, f.user, 2, "evil-times", f.now)
			return p
		}},
		{name: "binding of another certificate", want: ErrBadBinding, pay: func() *Payment {
			p := good()
			other := *f.cert
			other.Serial[0] ^= 1
			p.Binding, _ = Bind(&other, f.user, 2, vendor, f.now)
			return p
		}},
		{name: "generic payment without binding", want: ErrBadBinding, pay: func() *Payment {
			p := good()
			p.Binding = nil
			return p
		}},
		{name: "anchor with a wrong merkle path", want: ErrBadProof, pay: func() *Payment {
			p := good()
			p.Path = f.tree.Path(3)
			return p
		}},
		{name: "anchor of another segment", want: ErrBadProof, pay: func() *Payment {
			p := good()
			p.Anchor = f.tree.Anchor(3)
			return p
		}},
		{name: "merkle path too short", want: ErrBadProof, pay: func() *Payment {
			p := good()
			p.Path = p.Path[:len(p.Path)-1]
			return p
		}},
		{name: "segment index equal to S", want: ErrBadIndex, pay: func() *Payment {
			p := good()
			p.Segment = 8
			return p
		}},
		{name: "token index 0", want: ErrBadIndex, pay: func() *Payment {
			p := good()
			p.Index, p.Amount = 0, 0
			return p
		}},
		{name: "token index above m", want: ErrBadIndex, pay: func() *Payment {
			p := good()
			p.Index = 17
			return p
		}},
		{name: "amount 0", want: ErrBadAmount, pay: func() *Payment {
			p := good()
			p.Amount = 0
			return p
		}},
		{name: "amount above index", want: ErrBadAmount, pay: func() *Payment {
			p := good()
			p.Amount = 4
			return p
		}},
		{name: "amount below price", want: ErrUnderpaid, pay: good,
			req: func(r Request) Request { r.Price = 4; return r }},
		{name: "token that does not hash to the anchor", want: ErrBadToken, pay: func() *Payment {
			p := good()
			p.Token = TokenAt(f.k, 2, 4, 16)
			return p
		}},
		{name: "token that does not hash to the last seen token", want: ErrBadToken, last: after1(),
			req: func(r Request) Request { r.Price = 2; return r }, pay: func() *Payment {
				p := f.pay(t, 2, 3, 2, vendor, product)
				p.Token[0] ^= 1
				return p
			}},
		{name: "token of another segment", want: ErrBadToken, pay: func() *Payment {
			p := good()
			p.Token = TokenAt(f.k, 1, 3, 16)
			return p
		}},
		{name: "replay of an already accepted index", want: ErrReplay,
			last: &State{Index: 3, Token: TokenAt(f.k, 2, 3, 16)}, pay: good},
		{name: "payment overlapping accepted tokens", want: ErrReplay, last: &State{Index: 2, Token: TokenAt(f.k, 2, 2, 16)},
			pay: good},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := f.request(product, 3)
			if tt.req != nil {
				req = tt.req(req)
			}
			p := tt.pay()
			// Through the wire format where it can carry the case; the range
			// rows are refused by the decoder itself.
			if q, err := ParseAuthorization(p.Header()); err == nil {
				p = q
			} else if !errors.Is(err, tt.want) {
				t.Fatalf("decoder: %v, want %v", err, tt.want)
			}
			st, err := NewVerifier(f.keys).Verify(p, req, tt.last)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Verify = %v, want %v", err, tt.want)
			}
			if st != (State{}) {
				t.Fatalf("a refused payment returned state %d", st.Index)
			}
		})
	}
}

func TestVerifierCachesOnlyGoodCertificates(t *testing.T) {
	f := newFixture(t, 2, 4, GenericScope)
	v := NewVerifier(f.keys)
	forged := *f.cert
	if _, err := forged.Sign(SigningKey{ID: f.agent.ID, Key: ed25519.NewKeyFromSeed(seed(9))}); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := v.Certificate(&forged, f.now); !errors.Is(err, ErrBadSignature) {
			t.Fatalf("forged certificate: %v", err)
		}
	}
	if len(v.trusted) != 0 {
		t.Fatal("a forged certificate entered the cache")
	}
	if err := v.Certificate(f.cert, f.now); err != nil {
		t.Fatal(err)
	}
	// Cached, but expiry is still checked on every use.
	if err := v.Certificate(f.cert, time.Unix(f.cert.ExpiresAt+1, 0)); !errors.Is(err, ErrExpired) {
		t.Fatalf("cached certificate after expiry: %v", err)
	}
}
