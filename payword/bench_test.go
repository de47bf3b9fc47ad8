package payword

import (
	"crypto/rand"
	"testing"
)

// BenchmarkVerifyCached is the common payment: certificate signature cached,
// segment known (state present), p = 1. Target ≤ 2 µs/op.
func BenchmarkVerifyCached(b *testing.B) {
	f := newFixture(b, 8, 128, GenericScope)
	v := NewVerifier(f.keys)
	req := f.request("/a", 1)
	pays := make([]*Payment, 128)
	for i := range pays {
		pays[i] = f.pay(b, 0, uint32(i+1), 1, "daily-planet", "/a")
	}
	if _, err := v.Verify(pays[0], req, nil); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for n := 0; b.Loop(); n++ {
		i := n%127 + 1
		last := State{Index: uint32(i), Token: pays[i-1].Token}
		if _, err := v.Verify(pays[i], req, &last); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifyFreshSegment is the first payment of a segment at a vendor:
// binding signature, Merkle path, and a chain of m = 128 hashes down to the
// anchor; certificate signature cached. Target ≤ 60 µs/op.
func BenchmarkVerifyFreshSegment(b *testing.B) {
	f := newFixture(b, 782, 128, GenericScope)
	v := NewVerifier(f.keys)
	req := f.request("/a", 1)
	p := f.pay(b, 400, 128, 1, "daily-planet", "/a")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Verify(p, req, nil); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkParseAuthorization decodes a payment header as a gateway receives it.
func BenchmarkParseAuthorization(b *testing.B) {
	f := newFixture(b, 782, 128, GenericScope)
	h := f.pay(b, 400, 3, 1, "daily-planet", "/articles/a").Header()
	b.SetBytes(int64(len(h)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseAuthorization(h); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkIssue generates a certificate of 100,000 tokens (S = 782, m = 128)
// with its Merkle root and signature. Target ≤ 20 ms.
func BenchmarkIssue(b *testing.B) {
	f := newFixture(b, 1, 1, GenericScope)
	b.ReportAllocs()
	for b.Loop() {
		var k Secret
		rand.Read(k[:])
		c := *f.cert
		c.Issue(k, 782, 128)
		if _, err := c.Sign(f.agent); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkTokenAt is the agent's per-claim derivation of a token from K.
func BenchmarkTokenAt(b *testing.B) {
	var k Secret
	for b.Loop() {
		TokenAt(k, 7, 64, 128)
	}
}
