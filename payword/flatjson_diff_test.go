package payword

import (
	"bytes"
	"math/rand/v2"
	"testing"
)

// decodeFlat is the payment scanner (decodeFields) with its
// results as strings, the form FuzzDecodeFlat compares with encoding/json.
// The scanner unescapes in place, so it reads a copy of raw.
func decodeFlat(raw []byte, j *paymentJSON) bool {
	f, ok := decodeFields(bytes.Clone(raw))
	if !ok {
		return false
	}
	*j = paymentJSON{V: f.v, Cert: string(f.cert), Seg: f.seg, Anchor: string(f.anchor), Path: string(f.path),
		Bind: string(f.bind), I: f.i, Tok: string(f.tok), P: f.p, Vendor: string(f.vendor), Product: string(f.product)}
	return true
}

// flatSeeds are JSON payments that reach every branch of the scanner:
// escapes of every kind, surrogates paired and not, unknown members of
// every type, whitespace, and near misses of each rule.
var flatSeeds = []string{
	`{"v":1,"cert":"SFdD","seg":1,"anchor":"AA","path":"","bind":"AA","i":2,"tok":"AA","p":1,"vendor":"v","product":"/a"}`,
	`{"v":1,"product":"/a\"b\u00e9\ud83d\ude00","x":[1],"y":-0.5e+3,"z":null}`,
	` { "v" : 1 ,	"product" : "\/tags\/\u003cb\u003e\u0026\"q\"\\" , "vendor":"daily-planet"}` + "\r\n",
	`{"\u0076":1,"ven\u0064or":"x","pro\u0064uct":"\u002fa"}`,
	`{"v":1,"v":1}`, `{"V":1,"Vendor":"x"}`, `{"v":1,}`, `{,"v":1}`, `{"v":1}x`, `{"v":01}`, `{"v":-0}`, `{"v":1.0}`, `{"v":1e0}`,
	`{"v":123456789012345678}`, `{"v":1234567890123456789}`, `{"v":-}`, `{"seg":null}`, `{"v":"1"}`,
	`{"a":true,"b":false,"c":null,"d":-12.5E-3,"e":"é","f":"\ud800","g":"\udc00\ud800x","h":"\ud800\u0041"}`,
	`{"product":"\ud800"}`, `{"product":"é"}`, `{"product":"\u00e9"}`, `{"product":"a` + "\x01" + `"}`,
	`{"product":"\x"}`, `{"product":"\u12"}`, `{"product":"\u12G4"}`, `{"product":"abc\`, `{"product":"abc`, `{"x":tru}`, `{"x":nul}`,
	`{"x":"` + "\x80\xff" + `"}`, `{"x":{}}`, `{"x":[]}`, `[]`, `null`, ``, `{}`, `{"v":1}` + " \t\n\r",
	`{"path":"abcdefghijklmnopqrstuvwxyz0123456789-_ABCDEFGHIJKLMNOPQRSTUVWXYZ","cert":"abcdefgh\"ijklmnop\\qrstuvw\u0041xyz"}`,
	`{"path":"abcdefghijklmnopqrstuvwxyz012345` + "\x1f" + `6789","tok":"abcdefgh` + "\x7f" + `ijklmnop"}`,
}

// sameFlat reports whether the scanner and the reference read raw alike.
func sameFlat(t *testing.T, raw []byte) {
	t.Helper()
	var mine, ref paymentJSON
	okMine, okRef := decodeFlat(raw, &mine), refDecodeFlat(bytes.Clone(raw), &ref)
	if okMine != okRef || okMine && mine != ref {
		t.Fatalf("scanner and reference differ on %q:\n%v %+v\n%v %+v", raw, okMine, mine, okRef, ref)
	}
}

// mutate changes raw at random: a byte changed (often to a JSON
// metacharacter), inserted, deleted or duplicated, or a span repeated.
func mutate(rng *rand.Rand, raw []byte) []byte {
	const alphabet = "{}[]\":,\\/u0123456789abcdefABCDEF-+.eE \t\r\nvtrpl\x00\x1f\x7f\x80\xc3\xa9\xff"
	out := bytes.Clone(raw)
	for range 1 + rng.IntN(3) {
		pick := func() byte {
			if rng.IntN(4) == 0 {
				return byte(rng.Uint32())
			}
			return alphabet[rng.IntN(len(alphabet))]
		}
		i := 0
		if len(out) > 0 {
			i = rng.IntN(len(out))
		}
		switch op := rng.IntN(5); {
		case op == 0 && len(out) > 0:
			out[i] = pick()
		case op == 1:
			out = append(out[:i], append([]byte{pick()}, out[i:]...)...)
		case op == 2 && len(out) > 0:
			out = append(out[:i], out[i+1:]...)
		case op == 3 && len(out) > 0:
			j := i + rng.IntN(len(out)-i)
			out = append(out[:j], append(bytes.Clone(out[i:j]), out[j:]...)...)
		default:
			out = append(out[:i], append([]byte(`\u00`+string("0123456789abcdef"[rng.IntN(16)])+string("0123456789abcdef"[rng.IntN(16)])), out[i:]...)...)
		}
	}
	return out
}

func TestDecodeFlatMatchesReference(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(3, 4))
	for _, seed := range flatSeeds {
		sameFlat(t, []byte(seed))
		for range 3000 {
			sameFlat(t, mutate(rng, []byte(seed)))
		}
	}
}

// FuzzDecodeFlatReference compares the scanner with the decoder it
// replaced (payment_ref_test.go): same verdict, same members.
func FuzzDecodeFlatReference(f *testing.F) {
	for _, seed := range flatSeeds {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, raw []byte) { sameFlat(t, raw) })
}

// plainRun's word test must never miss a byte that ends a plain run,
// wherever it stands in a word and whatever surrounds it.
func TestPlainRun(t *testing.T) {
	t.Parallel()
	for c := range 256 {
		special := c == '"' || c == '\\' || c < 0x20 || c >= 0x80
		for _, fill := range []byte{'a', ' ', '!', 0x7e, 0x7f, '0'} {
			for at := range 24 {
				b := bytes.Repeat([]byte{fill}, 24)
				b[at] = byte(c)
				want := len(b)
				if special {
					want = at
				}
				if got := plainRun(b, 0); got != want {
					t.Fatalf("byte %#x at %d among %q: plainRun = %d, want %d", c, at, fill, got, want)
				}
			}
		}
	}
}
