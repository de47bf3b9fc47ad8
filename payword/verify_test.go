package payword_test

import (
	"crypto/ed25519"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/hashwall/hashwall/internal/testutil/paytest"
	"github.com/hashwall/hashwall/payword"
)

func TestVerifySpendsASegment(t *testing.T) {
	f := issue(t, 8, 16, payword.GenericScope)
	v := payword.NewVerifier(f.Bank.Keys)
	req := request("/articles/a", 2)

	st, err := v.Verify(roundTrip(t, f.Pay(t, 3, 2, 2, "daily-planet", "/articles/a")), req, nil)
	if err != nil {
		t.Fatalf("first payment: %v", err)
	}
	if st.Index != 2 || st.Token != payword.TokenAt(f.K, 3, 2, 16) {
		t.Fatalf("state after first payment = %d", st.Index)
	}
	// Contiguous payments follow from the stored state alone.
	for i := uint32(4); i <= 16; i += 2 {
		p := roundTrip(t, f.Pay(t, 3, i, 2, "daily-planet", "/articles/a"))
		if payword.Expected(p) != st {
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
	f := issue(t, 4, 16, payword.GenericScope)
	v := payword.NewVerifier(f.Bank.Keys)
	req := request("/a", 1)
	st, err := v.Verify(f.Pay(t, 0, 1, 1, "daily-planet", "/a"), req, nil)
	if err != nil {
		t.Fatal(err)
	}
	// The wallet lost tokens 2..4 (never delivered); token 5 still verifies.
	if st, err = v.Verify(f.Pay(t, 0, 5, 1, "daily-planet", "/a"), req, &st); err != nil || st.Index != 5 {
		t.Fatalf("skip ahead: %v (index %d)", err, st.Index)
	}
}

func TestVerifySpecificCertificateNeedsNoBinding(t *testing.T) {
	f := issue(t, 4, 16, "daily-planet")
	v := payword.NewVerifier(f.Bank.Keys)
	p := roundTrip(t, f.Pay(t, 1, 3, 3, "daily-planet", "/a"))
	if p.Binding != nil {
		t.Fatal("specific payment carries a binding")
	}
	if _, err := v.Verify(p, request("/a", 3), nil); err != nil {
		t.Fatal(err)
	}
}

// TestVerifyHostile is the table of the protocol issue: every row must be
// refused with its typed error, and nothing accepted.
func TestVerifyHostile(t *testing.T) {
	f := issue(t, 8, 16, payword.GenericScope)
	specific := issue(t, 8, 16, "other-vendor")
	const vendor, product = "daily-planet", "/articles/a"
	good := func() *payword.Payment { return f.Pay(t, 2, 3, 3, vendor, product) }
	after1 := func() *payword.State { s := payword.State{Index: 1, Token: payword.TokenAt(f.K, 2, 1, 16)}; return &s }

	stranger := payword.SigningKey{ID: "agent-2026", Key: ed25519.NewKeyFromSeed(paytest.Seed(0x99))}
	resign := func(c *payword.Certificate, k payword.SigningKey) *payword.Certificate {
		cc := *c
		if _, err := cc.Sign(k); err != nil {
			t.Fatal(err)
		}
		return &cc
	}

	tests := []struct {
		name string
		pay  func() *payword.Payment
		req  func(payword.Request) payword.Request
		last *payword.State
		want error
	}{
		{name: "forged agent signature", want: payword.ErrBadSignature, pay: func() *payword.Payment {
			p := good()
			p.Cert = resign(f.Certificate, stranger)
			return p
		}},
		{name: "certificate signed by an unknown key id", want: payword.ErrUnknownKey, pay: func() *payword.Payment {
			p := good()
			p.Cert = resign(f.Certificate, payword.SigningKey{ID: "agent-1999", Key: f.Bank.Key.Key})
			return p
		}},
		{name: "certificate field changed after signing", want: payword.ErrBadSignature, pay: func() *payword.Payment {
			p := good()
			changed := *f.Certificate
			changed.UnitValue++
			raw, err := changed.Sign(f.Bank.Key)
			if err != nil {
				t.Fatal(err)
			}
			// The changed fields under the original signature.
			body := raw[:len(raw)-ed25519.SignatureSize]
			if p.Cert, err = payword.ParseCertificate(append(slices.Clip(body), f.Raw()[len(body):]...)); err != nil {
				t.Fatal(err)
			}
			return p
		}},
		{name: "expired certificate", want: payword.ErrExpired, pay: good,
			req: func(r payword.Request) payword.Request { r.Now = time.Unix(f.ExpiresAt, 0); return r }},
		{name: "certificate not yet valid", want: payword.ErrNotYetValid, pay: good,
			req: func(r payword.Request) payword.Request { r.Now = time.Unix(f.IssuedAt-3600, 0); return r }},
		{name: "payment for another vendor", want: payword.ErrWrongVendor,
			pay: func() *payword.Payment { return f.Pay(t, 2, 3, 3, "evil-times", product) }},
		{name: "specific certificate used at a different vendor", want: payword.ErrWrongVendor,
			pay: func() *payword.Payment { return specific.Pay(t, 2, 3, 3, vendor, product) }},
		{name: "specific certificate with a binding", want: payword.ErrBadBinding, pay: func() *payword.Payment {
			p := issue(t, 8, 16, vendor).Pay(t, 2, 3, 3, vendor, product)
			p.Binding, _ = payword.Bind(f.Certificate, f.User, 2, vendor, f.Now)
			return p
		}},
		{name: "payment for another product", want: payword.ErrWrongProduct,
			pay: func() *payword.Payment { return f.Pay(t, 2, 3, 3, vendor, "/articles/b") }},
		{name: "binding signed by a key other than the certificate's", want: payword.ErrBadSignature, pay: func() *payword.Payment {
			p := good()
			b, err := payword.Bind(f.Certificate, ed25519.NewKeyFromSeed(paytest.Seed(0x77)), 2, vendor, f.Now)
			if err != nil {
				t.Fatal(err)
			}
			p.Binding = b
			return p
		}},
		{name: "binding for another segment", want: payword.ErrBadBinding, pay: func() *payword.Payment {
			p := good()
			p.Binding, _ = payword.Bind(f.Certificate, f.User, 5, vendor, f.Now)
			return p
		}},
		{name: "binding for another vendor", want: payword.ErrBadBinding, pay: func() *payword.Payment {
			p := good()
			p.Binding, _ = payword.Bind(f.Certificate, f.User, 2, "evil-times", f.Now)
			return p
		}},
		{name: "binding of another certificate", want: payword.ErrBadBinding, pay: func() *payword.Payment {
			p := good()
			other := *f.Certificate
			other.Serial[0] ^= 1
			p.Binding, _ = payword.Bind(&other, f.User, 2, vendor, f.Now)
			return p
		}},
		{name: "generic payment without binding", want: payword.ErrBadBinding, pay: func() *payword.Payment {
			p := good()
			p.Binding = nil
			return p
		}},
		{name: "anchor with a wrong merkle path", want: payword.ErrBadProof, pay: func() *payword.Payment {
			p := good()
			p.Path = f.Tree.Path(3)
			return p
		}},
		{name: "anchor of another segment", want: payword.ErrBadProof, pay: func() *payword.Payment {
			p := good()
			p.Anchor = f.Tree.Anchor(3)
			return p
		}},
		{name: "merkle path too short", want: payword.ErrBadProof, pay: func() *payword.Payment {
			p := good()
			p.Path = p.Path[:len(p.Path)-1]
			return p
		}},
		{name: "segment index equal to S", want: payword.ErrBadIndex, pay: func() *payword.Payment {
			p := good()
			p.Segment = 8
			return p
		}},
		{name: "token index 0", want: payword.ErrBadIndex, pay: func() *payword.Payment {
			p := good()
			p.Index, p.Amount = 0, 0
			return p
		}},
		{name: "token index above m", want: payword.ErrBadIndex, pay: func() *payword.Payment {
			p := good()
			p.Index = 17
			return p
		}},
		{name: "amount 0", want: payword.ErrBadAmount, pay: func() *payword.Payment {
			p := good()
			p.Amount = 0
			return p
		}},
		{name: "amount above index", want: payword.ErrBadAmount, pay: func() *payword.Payment {
			p := good()
			p.Amount = 4
			return p
		}},
		{name: "amount below price", want: payword.ErrUnderpaid, pay: good,
			req: func(r payword.Request) payword.Request { r.Price = 4; return r }},
		{name: "token that does not hash to the anchor", want: payword.ErrBadToken, pay: func() *payword.Payment {
			p := good()
			p.Token = payword.TokenAt(f.K, 2, 4, 16)
			return p
		}},
		{name: "token that does not hash to the last seen token", want: payword.ErrBadToken, last: after1(),
			req: func(r payword.Request) payword.Request { r.Price = 2; return r }, pay: func() *payword.Payment {
				p := f.Pay(t, 2, 3, 2, vendor, product)
				p.Token[0] ^= 1
				return p
			}},
		{name: "token of another segment", want: payword.ErrBadToken, pay: func() *payword.Payment {
			p := good()
			p.Token = payword.TokenAt(f.K, 1, 3, 16)
			return p
		}},
		{name: "replay of an already accepted index", want: payword.ErrReplay,
			last: &payword.State{Index: 3, Token: payword.TokenAt(f.K, 2, 3, 16)}, pay: good},
		{name: "payment overlapping accepted tokens", want: payword.ErrReplay, last: &payword.State{Index: 2, Token: payword.TokenAt(f.K, 2, 2, 16)},
			pay: good},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := request(product, 3)
			if tt.req != nil {
				req = tt.req(req)
			}
			p := tt.pay()
			// Through the wire format where it can carry the case; the range
			// rows are refused by the decoder itself.
			if q, err := payword.ParseAuthorization(p.Header()); err == nil {
				p = q
			} else if !errors.Is(err, tt.want) {
				t.Fatalf("decoder: %v, want %v", err, tt.want)
			}
			st, err := payword.NewVerifier(f.Bank.Keys).Verify(p, req, tt.last)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Verify = %v, want %v", err, tt.want)
			}
			if st != (payword.State{}) {
				t.Fatalf("a refused payment returned state %d", st.Index)
			}
		})
	}
}

func TestVerifierCachesOnlyGoodCertificates(t *testing.T) {
	f := issue(t, 2, 4, payword.GenericScope)
	v := payword.NewVerifier(f.Bank.Keys)
	req := request("/a", 1)
	p := f.Pay(t, 0, 1, 1, vendor, "/a")
	forged := *p
	forged.Cert = new(payword.Certificate)
	*forged.Cert = *f.Certificate
	if _, err := forged.Cert.Sign(payword.SigningKey{ID: f.Bank.Key.ID, Key: ed25519.NewKeyFromSeed(paytest.Seed(9))}); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := v.Check(&forged, req); !errors.Is(err, payword.ErrBadSignature) {
			t.Fatalf("forged certificate: %v", err)
		}
	}
	if v.Cached() != 0 {
		t.Fatal("a forged certificate entered the cache")
	}
	if err := v.Check(p, req); err != nil || v.Cached() != 1 {
		t.Fatalf("good certificate: %v, %d cached", err, v.Cached())
	}
	// Cached, but expiry is still checked on every use.
	req.Now = time.Unix(f.ExpiresAt+1, 0)
	if err := v.Check(p, req); !errors.Is(err, payword.ErrExpired) {
		t.Fatalf("cached certificate after expiry: %v", err)
	}
}
