package payword

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The differential tests hold ParseAuthorization to the decoder it replaced
// (payment_ref_test.go) on good payments and on mutations of them at every
// layer: the header, its base64url, the JSON, each member, and the binary
// certificate and binding. Both must accept and refuse alike, with the
// same error, and read the same payment.

var typedErrors = []error{ErrMalformed, ErrTooLarge, ErrBadIndex, ErrBadAmount}

// sameParse fails t unless both decoders agree on h; it reports whether h
// was accepted.
func sameParse(t testing.TB, h string) bool {
	t.Helper()
	p, err := ParseAuthorization(h)
	q, refErr := refParseAuthorization(h)
	switch {
	case (err == nil) != (refErr == nil):
		t.Fatalf("on %q:\nnew: %v\nold: %v", h, err, refErr)
	case err != nil:
		if err.Error() != refErr.Error() {
			t.Fatalf("on %q:\nnew: %v\nold: %v", h, err, refErr)
		}
		for _, kind := range typedErrors {
			if errors.Is(err, kind) != errors.Is(refErr, kind) {
				t.Fatalf("on %q: error class differs: %v, %v", h, err, refErr)
			}
		}
	case !reflect.DeepEqual(p, q):
		t.Fatalf("on %q: read differently:\nnew: %+v\nold: %+v", h, p, q)
	}
	return err == nil
}

// diffPayments are good payments of every shape: with and without a
// binding, an empty and a long Merkle path, escapes in the product, and
// ids and product at their longest.
func diffPayments(tb testing.TB) []*Payment {
	tb.Helper()
	agent := SigningKey{ID: "agent-2026", Key: ed25519.NewKeyFromSeed(bytes.Repeat([]byte{1}, 32))}
	user := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{2}, 32))
	now := time.Unix(1796083200, 0)
	pay := func(segments, m int, scope, userID, vendor, product string, g, index, amount uint32) *Payment {
		c := &Certificate{Serial: Serial{byte(segments), byte(m)}, IssuedAt: now.Unix(), ExpiresAt: now.Unix() + 86400,
			UnitValue: 5, UserID: userID, Scope: scope, Currency: "EUR"}
		copy(c.UserKey[:], user.Public().(ed25519.PublicKey))
		k := Secret{byte(segments), byte(m), 7}
		tree := c.Issue(k, segments, m)
		if _, err := c.Sign(agent); err != nil {
			tb.Fatal(err)
		}
		var b *Binding
		if scope == GenericScope {
			var err error
			if b, err = Bind(c, user, g, vendor, now); err != nil {
				tb.Fatal(err)
			}
		}
		return NewPayment(c, tree, k, b, g, index, amount, vendor, product)
	}
	long := strings.Repeat("x", MaxIDLen)
	return []*Payment{
		pay(8, 16, GenericScope, "u-1", "daily-planet", "/articles/a", 2, 3, 3),
		pay(1, 4, "daily-planet", "u-1", "daily-planet", "/x", 0, 4, 1),
		pay(782, 128, GenericScope, "u-2", "daily-planet", "/articles/a", 400, 3, 1),
		pay(5, 8, GenericScope, "u-3", "daily-planet", `/tags/<b>&"q"\`, 4, 8, 8),
		pay(3, 2, GenericScope, long, long, "/"+strings.Repeat("p", MaxProductLen-1), 2, 1, 1),
	}
}

// kv is one JSON member, its value as written.
type kv struct{ k, v string }

// membersOf returns p's JSON members in the encoder's order.
func membersOf(tb testing.TB, p *Payment) []kv {
	tb.Helper()
	var j paymentJSON
	if err := json.Unmarshal(p.encode(), &j); err != nil {
		tb.Fatal(err)
	}
	q := func(s string) string { out, _ := json.Marshal(s); return string(out) }
	n := func(i int64) string { return strconv.FormatInt(i, 10) }
	return []kv{{"v", n(j.V)}, {"cert", q(j.Cert)}, {"seg", n(j.Seg)}, {"anchor", q(j.Anchor)}, {"path", q(j.Path)},
		{"bind", q(j.Bind)}, {"i", n(j.I)}, {"tok", q(j.Tok)}, {"p", n(j.P)}, {"vendor", q(j.Vendor)}, {"product", q(j.Product)}}
}

func render(ms []kv) []byte {
	var b bytes.Buffer
	b.WriteByte('{')
	for n, m := range ms {
		if n > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, "%q:%s", m.k, m.v)
	}
	b.WriteByte('}')
	return b.Bytes()
}

func headerOf(raw []byte) string { return Scheme + " " + b64.EncodeToString(raw) }

// escapeAll writes s with every character, or every other, as \u escapes.
func escapeAll(s string, every int) string {
	var b strings.Builder
	b.WriteByte('"')
	for n, r := range s {
		if n%every == 0 {
			fmt.Fprintf(&b, `\u%04x`, r)
		} else if r == '"' || r == '\\' || r == '/' {
			b.WriteString(`\` + string(r))
		} else {
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// memberValues are replacements for a member's value: wrong types, bounds
// of the ranges and of the integer syntax, empty and odd strings.
var memberValues = []string{
	`null`, `true`, `false`, `""`, `"1"`, `[]`, `{}`, `[1]`, `1.0`, `1e0`, `-0`, `0`, `1`, `2`, `-1`, `01`,
	`3`, `4`, `7`, `8`, `15`, `16`, `17`, `127`, `128`, `129`, `1023`, `1024`, `1025`, `1048575`, `1048576`, `1048577`,
	`4294967296`, `123456789012345678`, `1234567890123456789`, `-123456789012345678`, `"A"`, `"AA"`, `"AAA"`, `"AAAA"`,
	`"é"`, `"\u00e9"`, `"a b"`, `"\u0000"`, `"\n"`, `"AA\nAA"`, `"AA\rAA"`, `"AA=="`, `"AA+/"`, `"` + strings.Repeat("A", 43) + `"`,
	`"` + strings.Repeat("A", 42) + `B"`, `"` + strings.Repeat("_", 43) + `"`, `"` + strings.Repeat("x", 513) + `"`,
}

// mutateBinary changes one byte, a length prefix, or the length of a
// binary field, and encodes it again.
func mutateBinary(rng *rand.Rand, b64Value string) string {
	raw, err := b64.DecodeString(b64Value)
	if err != nil || len(raw) == 0 {
		return `"` + b64Value + `"`
	}
	switch rng.IntN(4) {
	case 0:
		raw[rng.IntN(len(raw))] ^= byte(1 + rng.IntN(255))
	case 1:
		raw = raw[:rng.IntN(len(raw))]
	case 2:
		i := rng.IntN(len(raw))
		raw = append(raw[:i], append([]byte{byte(rng.Uint32())}, raw[i:]...)...)
	default:
		raw = append(raw, make([]byte, rng.IntN(300))...)
	}
	return `"` + b64.EncodeToString(raw) + `"`
}

// mutatePayment returns a header derived from ms by one to three random
// changes at one layer.
func mutatePayment(rng *rand.Rand, ms []kv) string {
	ms = append([]kv(nil), ms...)
	switch rng.IntN(6) {
	case 0: // the header text
		return string(mutate(rng, []byte(headerOf(render(ms)))))
	case 1: // the JSON text
		return headerOf(mutate(rng, render(ms)))
	case 2: // the binary certificate, binding, path or token
		for _, n := range []int{1, 3, 4, 5, 7} {
			if rng.IntN(3) == 0 {
				var s string
				_ = json.Unmarshal([]byte(ms[n].v), &s)
				ms[n].v = mutateBinary(rng, s)
			}
		}
	case 3: // the same values, escaped (accepted alike)
		for n := range ms {
			var s string
			if json.Unmarshal([]byte(ms[n].v), &s) == nil && rng.IntN(2) == 0 {
				ms[n].v = escapeAll(s, 1+rng.IntN(3))
			}
		}
		if rng.IntN(2) == 0 {
			n := rng.IntN(len(ms))
			ms[n].k = strings.Trim(escapeAll(ms[n].k, 1), `"`)
		}
	case 4: // members replaced, dropped, repeated, or unknown ones added
		for range 1 + rng.IntN(3) {
			n := rng.IntN(len(ms))
			switch rng.IntN(4) {
			case 0:
				ms[n].v = memberValues[rng.IntN(len(memberValues))]
			case 1:
				ms = append(ms[:n], ms[n+1:]...)
			case 2:
				ms = append(ms, ms[n])
			default:
				ms = append(ms, kv{[]string{"x", "V", "Cert", "", "vendor2"}[rng.IntN(5)], memberValues[rng.IntN(len(memberValues))]})
			}
		}
	default: // members reordered, whitespace around the header
		rng.Shuffle(len(ms), func(i, j int) { ms[i], ms[j] = ms[j], ms[i] })
		return []string{"payword ", "PAYWORD  ", " PayWord ", "PayWord\t", "PayWord \u00a0", "Pay"}[rng.IntN(6)] +
			b64.EncodeToString(render(ms)) + []string{"", " ", "\t", "\u2028", "=", "A"}[rng.IntN(6)]
	}
	return headerOf(render(ms))
}

func TestParseAuthorizationMatchesReference(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(5, 6))
	accepted := 0
	for _, p := range diffPayments(t) {
		if !sameParse(t, p.Header()) {
			t.Fatalf("a good payment is refused: %q", p.Header())
		}
		ms := membersOf(t, p)
		for range 8000 {
			if sameParse(t, mutatePayment(rng, ms)) {
				accepted++
			}
		}
	}
	for _, h := range []string{"", "PayWord", "PayWord ", "PayWord e30", "Bearer x", "PayWord " + strings.Repeat("A", MaxPaymentHeader),
		"PayWord " + strings.Repeat("A", MaxPaymentHeader-8), "PayWord " + strings.Repeat("A", MaxPaymentHeader-9)} {
		sameParse(t, h)
	}
	// Mutations that keep a payment good must be common enough to test the
	// accepted side too.
	if accepted < 5000 {
		t.Fatalf("only %d mutated payments accepted", accepted)
	}
	t.Logf("%d mutated payments accepted", accepted)
}

// Every shape of payment, ids and product at their longest included, fits
// the two allocations: the strings buffer is sized for the longest strings
// its certificate and binding can hold.
func TestParseAuthorizationAllocsEveryShape(t *testing.T) {
	for _, p := range diffPayments(t) {
		h := p.Header()
		if got := testing.AllocsPerRun(50, func() { _, _ = ParseAuthorization(h) }); got > 2 {
			t.Errorf("%d allocations for %q", int(got), h)
		}
	}
}

// FuzzParseAuthorizationReference compares ParseAuthorization with the
// decoder it replaced on a header built of a prefix, the base64url of a
// JSON payment, and a suffix, so that the fuzzer works on each layer.
func FuzzParseAuthorizationReference(f *testing.F) {
	for _, p := range diffPayments(f) {
		f.Add("PayWord ", p.encode(), "")
	}
	f.Add("payword  ", []byte(`{"v":1}`), "==")
	f.Fuzz(func(t *testing.T, prefix string, raw []byte, suffix string) {
		sameParse(t, prefix+b64.EncodeToString(raw)+suffix)
	})
}

// BenchmarkParseAuthorizationVersusReference times both decoders on the
// header of BenchmarkParseAuthorization's shape (S = 782, a binding), in
// one run, so that a noisy machine shifts both alike.
func BenchmarkParseAuthorizationVersusReference(b *testing.B) {
	h := diffPayments(b)[2].Header()
	for _, d := range []struct {
		name  string
		parse func(string) (*Payment, error)
	}{{"new", ParseAuthorization}, {"reference", refParseAuthorization}} {
		b.Run(d.name, func(b *testing.B) {
			b.SetBytes(int64(len(h)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := d.parse(h); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
