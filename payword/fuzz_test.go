package payword

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
)

// Every decoder of network input has a fuzz target. Each checks that the
// decoder never panics, that what it accepts re-encodes to what it read, and
// that a refusal carries one of the package's typed errors.

func typed(err error) bool {
	for _, e := range []error{ErrMalformed, ErrTooLarge, ErrBadIndex, ErrBadAmount} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

func FuzzParseAuthorization(f *testing.F) {
	fx := newFixture(f, 8, 16, GenericScope)
	f.Add(fx.pay(f, 2, 3, 3, "daily-planet", "/articles/a").Header())
	f.Add(newFixture(f, 1, 4, "daily-planet").pay(f, 0, 4, 1, "daily-planet", "/x").Header())
	f.Add("PayWord e30")
	f.Add("PayWord")
	v := NewVerifier(fx.keys)
	f.Fuzz(func(t *testing.T, h string) {
		p, err := ParseAuthorization(h)
		if err != nil {
			if !typed(err) {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		q, err := ParsePayment(p.Encode())
		if err != nil {
			t.Fatalf("re-decoding an accepted payment: %v", err)
		}
		if !reflect.DeepEqual(p, q) {
			t.Fatal("payment changed through Encode")
		}
		_, _ = v.Verify(p, fx.request(p.Product, 1), nil)
		_, _ = v.Verify(p, fx.request(p.Product, 1), &State{Index: 1})
	})
}

func FuzzParseCertificate(f *testing.F) {
	fx := newFixture(f, 8, 16, GenericScope)
	f.Add(fx.cert.Raw())
	f.Add(newFixture(f, 3, 1, "v").cert.Raw())
	f.Fuzz(func(t *testing.T, raw []byte) {
		c, err := ParseCertificate(raw)
		if err != nil {
			if !typed(err) {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		body := c.body()
		if !bytes.Equal(append(body, c.Sig()...), raw) {
			t.Fatal("accepted certificate does not re-encode to its input")
		}
		_ = c.Verify(fx.keys)
	})
}

func FuzzParseBinding(f *testing.F) {
	fx := newFixture(f, 2, 2, GenericScope)
	b, _ := Bind(fx.cert, fx.user, 1, "daily-planet", fx.now)
	f.Add(b.Raw())
	f.Fuzz(func(t *testing.T, raw []byte) {
		b, err := ParseBinding(raw)
		if err != nil {
			if !typed(err) {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		again := Binding{Serial: b.Serial, Segment: b.Segment, Time: b.Time, Vendor: b.Vendor}
		if _, err := again.Sign(fx.user); err != nil {
			t.Fatal(err)
		}
		n := len(raw) - 64
		if !bytes.Equal(again.Raw()[:n], raw[:n]) {
			t.Fatal("accepted binding does not re-encode to its input")
		}
		_ = b.Verify(fx.cert)
	})
}

func FuzzParseChallenge(f *testing.F) {
	f.Add(Challenge{Realm: `a "b"`, Vendor: "v", Price: 2, Product: "/a", Agent: "https://x"}.String())
	f.Add(`PayWord vendor=v, price=1, product=/a`)
	f.Fuzz(func(t *testing.T, h string) {
		c, err := ParseChallenge(h)
		if err != nil {
			if !typed(err) {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		again, err := ParseChallenge(c.String())
		if err != nil || again != c {
			t.Fatalf("challenge changed through String: %+v %v", again, err)
		}
	})
}

func FuzzDecodeReport(f *testing.F) {
	fx := newFixture(f, 2, 4, GenericScope)
	raw, _ := json.Marshal(Report{Vendor: "v", Batch: "b", Claims: []Claim{{Serial: fx.cert.Serial, Index: 2,
		Amount: 1, Token: TokenAt(fx.k, 0, 2, 4), Product: "/a", Auth: "x", Binding: []byte{1}}}})
	f.Add(raw)
	f.Fuzz(func(t *testing.T, raw []byte) {
		r, err := ParseReport(raw)
		if err != nil {
			if !typed(err) {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		again, _ := json.Marshal(r)
		r2, err := ParseReport(again)
		if err != nil || !reflect.DeepEqual(r, r2) {
			t.Fatalf("report changed through JSON: %v", err)
		}
	})
}

func FuzzDecodeCRL(f *testing.F) {
	fx := newFixture(f, 1, 1, GenericScope)
	body, _ := json.Marshal(CRL{Type: CRLType, Since: 0, Next: 1, Last: 1, Time: 1, Entries: []CRLEntry{{Seq: 1, Serial: fx.cert.Serial, Exp: 2}}})
	raw, _ := json.Marshal(Seal(fx.agent, body))
	f.Add(raw)
	f.Fuzz(func(t *testing.T, raw []byte) {
		if _, err := OpenCRL(raw, fx.keys); err != nil && !typed(err) &&
			!errors.Is(err, ErrBadSignature) && !errors.Is(err, ErrUnknownKey) {
			t.Fatalf("untyped error %v", err)
		}
	})
}

// FuzzOpenKeys: whatever an agent (or an attacker in its place) answers at
// /v1/keys, the only keys learnt are trusted ones or announced under a
// trusted key's signature.
func FuzzOpenKeys(f *testing.F) {
	fx := newFixture(f, 1, 1, GenericScope)
	next := SigningKey{ID: "agent-2027", Key: ed25519.NewKeyFromSeed(seed(0x21))}
	raw, _ := json.Marshal(AnnounceKeys([]SigningKey{next, fx.agent}, fx.now))
	f.Add(raw)
	f.Fuzz(func(t *testing.T, raw []byte) {
		var docs []Signed
		if len(raw) > MaxSignedSize || json.Unmarshal(raw, &docs) != nil {
			return
		}
		got, err := OpenKeys(docs, fx.keys)
		if err != nil {
			if !typed(err) && !errors.Is(err, ErrBadSignature) {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		for kid, pub := range got {
			if kid == fx.agent.ID {
				continue
			}
			vouched := false
			for _, s := range docs {
				if body, err := s.Open(fx.keys); err == nil && bytes.Contains(body, []byte(kid)) && len(pub) == ed25519.PublicKeySize {
					vouched = true
				}
			}
			if !vouched {
				t.Fatalf("learnt %q without a trusted signature", kid)
			}
		}
	})
}

// FuzzDecodeFlat checks the hand-written payment scanner against
// encoding/json: whatever it accepts, encoding/json reads the same way.
func FuzzDecodeFlat(f *testing.F) {
	fx := newFixture(f, 2, 4, GenericScope)
	f.Add(fx.pay(f, 1, 2, 1, "v", "/a").Encode())
	f.Add([]byte(`{"v":1,"product":"/a\"b\u00e9\ud83d\ude00","x":[1],"y":-0.5e+3,"z":null}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		var mine paymentJSON
		if !decodeFlat(raw, &mine) {
			return
		}
		// encoding/json folds the case of keys; we do not.
		var keys map[string]json.RawMessage
		_ = json.Unmarshal(raw, &keys)
		for k := range keys {
			if _, str, num := (&paymentJSON{}).member(k); str == nil && num == nil {
				for _, known := range []string{"v", "cert", "seg", "anchor", "path", "bind", "i", "tok", "p", "vendor", "product"} {
					if strings.EqualFold(k, known) {
						return
					}
				}
			}
		}
		var std paymentJSON
		if err := json.Unmarshal(raw, &std); err != nil {
			t.Fatalf("accepted what encoding/json refuses (%v): %q", err, raw)
		}
		if mine != std {
			t.Fatalf("read differently from encoding/json:\n%+v\n%+v", mine, std)
		}
	})
}
