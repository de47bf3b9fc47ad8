package payword_test

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"reflect"
	"testing"

	"github.com/hashwall/hashwall/internal/testutil/paytest"
	"github.com/hashwall/hashwall/payword"
)

// Every decoder of network input has a fuzz target. Each checks that the
// decoder never panics, that what it accepts re-encodes to what it read, and
// that a refusal carries one of the package's typed errors.

func typed(err error) bool {
	for _, e := range []error{payword.ErrMalformed, payword.ErrTooLarge, payword.ErrBadIndex, payword.ErrBadAmount} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

func FuzzParseAuthorization(f *testing.F) {
	fx := issue(f, 8, 16, payword.GenericScope)
	f.Add(fx.Pay(f, 2, 3, 3, "daily-planet", "/articles/a").Header())
	f.Add(issue(f, 1, 4, "daily-planet").Pay(f, 0, 4, 1, "daily-planet", "/x").Header())
	f.Add("PayWord e30")
	f.Add("PayWord")
	v := payword.NewVerifier(fx.Bank.Keys)
	f.Fuzz(func(t *testing.T, h string) {
		p, err := payword.ParseAuthorization(h)
		if err != nil {
			if !typed(err) {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		q, err := payword.ParseAuthorization(p.Header())
		if err != nil {
			t.Fatalf("re-decoding an accepted payment: %v", err)
		}
		if !reflect.DeepEqual(p, q) {
			t.Fatal("payment changed through Header")
		}
		_, _ = v.Verify(p, request(p.Product, 1), nil)
		_, _ = v.Verify(p, request(p.Product, 1), &payword.State{Index: 1})
	})
}

func FuzzParseCertificate(f *testing.F) {
	fx := issue(f, 8, 16, payword.GenericScope)
	f.Add(fx.Raw())
	f.Add(issue(f, 3, 1, "v").Certificate.Raw())
	f.Fuzz(func(t *testing.T, raw []byte) {
		c, err := payword.ParseCertificate(raw)
		if err != nil {
			if !typed(err) {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		body := c.Body()
		if !bytes.Equal(body, raw[:len(raw)-ed25519.SignatureSize]) {
			t.Fatal("accepted certificate does not re-encode to its input")
		}
		_ = c.Verify(fx.Bank.Keys)
	})
}

func FuzzParseBinding(f *testing.F) {
	fx := issue(f, 2, 2, payword.GenericScope)
	b, _ := payword.Bind(fx.Certificate, fx.User, 1, "daily-planet", fx.Now)
	f.Add(b.Raw())
	f.Fuzz(func(t *testing.T, raw []byte) {
		b, err := payword.ParseBinding(raw)
		if err != nil {
			if !typed(err) {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		again := payword.Binding{Serial: b.Serial, Segment: b.Segment, Time: b.Time, Vendor: b.Vendor}
		if _, err := again.Sign(fx.User); err != nil {
			t.Fatal(err)
		}
		n := len(raw) - 64
		if !bytes.Equal(again.Raw()[:n], raw[:n]) {
			t.Fatal("accepted binding does not re-encode to its input")
		}
		_ = b.Verify(fx.Certificate)
	})
}

func FuzzParseChallenge(f *testing.F) {
	f.Add(payword.Challenge{Realm: `a "b"`, Vendor: "v", Price: 2, Product: "/a", Agent: "https://x"}.String())
	f.Add(`PayWord vendor=v, price=1, product=/a`)
	f.Fuzz(func(t *testing.T, h string) {
		c, err := payword.ParseChallenge(h)
		if err != nil {
			if !typed(err) {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		again, err := payword.ParseChallenge(c.String())
		if err != nil || again != c {
			t.Fatalf("challenge changed through String: %+v %v", again, err)
		}
	})
}

func FuzzParseReport(f *testing.F) {
	fx := issue(f, 2, 4, payword.GenericScope)
	raw, _ := json.Marshal(payword.Report{Vendor: "v", Batch: "b", Claims: []payword.Claim{{Serial: fx.Serial, Index: 2,
		Amount: 1, Token: payword.TokenAt(fx.K, 0, 2, 4), Product: "/a", Auth: "x", Binding: []byte{1}}}})
	f.Add(raw)
	f.Fuzz(func(t *testing.T, raw []byte) {
		r, err := payword.ParseReport(raw)
		if err != nil {
			if !typed(err) {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		again, _ := json.Marshal(r)
		r2, err := payword.ParseReport(again)
		if err != nil || !reflect.DeepEqual(r, r2) {
			t.Fatalf("report changed through JSON: %v", err)
		}
	})
}

func FuzzOpenCRL(f *testing.F) {
	fx := issue(f, 1, 1, payword.GenericScope)
	body, _ := json.Marshal(payword.CRL{Type: payword.CRLType, Since: 0, Next: 1, Last: 1, Time: 1, Entries: []payword.CRLEntry{{Seq: 1, Serial: fx.Serial, Exp: 2}}})
	raw, _ := json.Marshal(payword.Seal(fx.Bank.Key, body))
	f.Add(raw)
	f.Fuzz(func(t *testing.T, raw []byte) {
		if _, err := payword.OpenCRL(raw, fx.Bank.Keys); err != nil && !typed(err) &&
			!errors.Is(err, payword.ErrBadSignature) && !errors.Is(err, payword.ErrUnknownKey) {
			t.Fatalf("untyped error %v", err)
		}
	})
}

// FuzzOpenKeys: whatever an agent (or an attacker in its place) answers at
// /v1/keys, the only keys learnt are trusted ones or announced under a
// trusted key's signature.
func FuzzOpenKeys(f *testing.F) {
	fx := issue(f, 1, 1, payword.GenericScope)
	next := payword.SigningKey{ID: "agent-2027", Key: ed25519.NewKeyFromSeed(paytest.Seed(0x21))}
	raw, _ := json.Marshal(payword.AnnounceKeys([]payword.SigningKey{next, fx.Bank.Key}, fx.Now))
	f.Add(raw)
	f.Fuzz(func(t *testing.T, raw []byte) {
		var docs []payword.Signed
		if len(raw) > payword.MaxSignedSize || json.Unmarshal(raw, &docs) != nil {
			return
		}
		got, err := payword.OpenKeys(docs, fx.Bank.Keys)
		if err != nil {
			if !typed(err) && !errors.Is(err, payword.ErrBadSignature) {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		for kid, pub := range got {
			if kid == fx.Bank.Key.ID {
				continue
			}
			vouched := false
			for _, s := range docs {
				if trustedSigned(s, fx.Bank.Keys) && bytes.Contains(s.Body, []byte(kid)) && len(pub) == ed25519.PublicKeySize {
					vouched = true
				}
			}
			if !vouched {
				t.Fatalf("learnt %q without a trusted signature", kid)
			}
		}
	})
}

// trustedSigned checks s's signature as docs/protocol.md §9 specifies it,
// independently of the package.
func trustedSigned(s payword.Signed, keys payword.KeySet) bool {
	pub, ok := keys[s.KeyID]
	return ok && ed25519.Verify(pub, append([]byte("hashwall/v1/signed\n"), s.Body...), s.Sig)
}
