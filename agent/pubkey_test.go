package agent

import (
	"crypto/ed25519"
	"encoding/hex"
	"strings"
	"testing"

	"github.com/oasisprotocol/curve25519-voi/curve"

	"github.com/hashwall/hashwall/agentapi"
)

// TestPublicKeyMustBeACurvePoint: a wallet key that is not a canonical
// encoding of a point of the prime-order subgroup is refused at purchase
// and recovery (issue 9 item 14); nothing is charged.
func TestPublicKeyMustBeACurvePoint(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	alice := e.user("alice", 1000)
	good, _, _ := ed25519.GenerateKey(nil)
	hostile := map[string]string{
		"not on the curve": "0200000000000000000000000000000000000000000000000000000000000000",
		"identity":         "0100000000000000000000000000000000000000000000000000000000000000",
		"order 2":          "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
		"order 4":          "0000000000000000000000000000000000000000000000000000000000000000",
		"order 8":          "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05",
		"non-canonical y":  "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
		"mixed order":      hex.EncodeToString(mixedOrder(good)),
		"too short":        "0100",
	}
	before := e.snapshot()
	for name, h := range hostile {
		k, _ := hex.DecodeString(h)
		var out agentapi.Error
		code := e.call("POST", "/v1/certificates", alice, map[string]any{"tokens": 128, "public_key": b64.EncodeToString(k)}, &out)
		if code != 400 || out.Code != "invalid_public_key" {
			t.Errorf("%s: %d %+v", name, code, out)
		}
		code = e.call("POST", "/v1/certificates/recover", alice, map[string]any{"public_key": b64.EncodeToString(k)}, &out)
		if code != 400 || out.Code != "invalid_public_key" {
			t.Errorf("recover, %s: %d %+v", name, code, out)
		}
	}
	if e.snapshot() != before {
		t.Fatal("a refused key changed the store")
	}
	if _, err := parsePublicKey(b64.EncodeToString(good)); err != nil {
		t.Fatal(err)
	}
	// One key, one encoding: trailing bits, padding and line breaks that a
	// lenient base64 decoder skips are refused.
	enc := b64.EncodeToString(good)
	last := enc[len(enc)-1:]
	flipped := strings.IndexByte("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", last[0]) ^ 1
	for name, s := range map[string]string{
		"trailing bits":   enc[:len(enc)-1] + string("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"[flipped]),
		"padding":         enc + "=",
		"line feed":       enc[:20] + "\n" + enc[20:],
		"carriage return": enc + "\r",
	} {
		if _, err := parsePublicKey(s); err == nil {
			t.Errorf("%s: a second encoding of a key was accepted", name)
		}
	}
}

// FuzzParsePublicKey: any input either fails cleanly or is a 32-byte key.
func FuzzParsePublicKey(f *testing.F) {
	good, _, _ := ed25519.GenerateKey(nil)
	f.Add(b64.EncodeToString(good))
	f.Add("AQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		k, err := parsePublicKey(s)
		if err == nil && len(k) != ed25519.PublicKeySize {
			t.Fatalf("accepted %d bytes", len(k))
		}
	})
}

// mixedOrder adds a point of order 8 to key: still on the curve, no longer
// in the prime-order subgroup.
func mixedOrder(key ed25519.PublicKey) []byte {
	var a, t curve.EdwardsPoint
	var ca, ct curve.CompressedEdwardsY
	ca.SetBytes(key)
	tb, _ := hex.DecodeString("26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05")
	ct.SetBytes(tb)
	if _, err := a.SetCompressedY(&ca); err != nil {
		panic(err)
	}
	if _, err := t.SetCompressedY(&ct); err != nil {
		panic(err)
	}
	a.Add(&a, &t)
	var out curve.CompressedEdwardsY
	out.SetEdwardsPoint(&a)
	return out[:]
}
