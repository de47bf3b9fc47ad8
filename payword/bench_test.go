package payword_test

import (
	"crypto/rand"
	"testing"

	"github.com/hashwall/hashwall/payword"
)

// BenchmarkVerifyCached is the common payment: certificate signature cached,
// segment known (state present), p = 1. Target ≤ 2 µs/op.
func BenchmarkVerifyCached(b *testing.B) {
	f := issue(b, 8, 128, payword.GenericScope)
	v := payword.NewVerifier(f.Bank.Keys)
	req := request("/a", 1)
	pays := make([]*payword.Payment, 128)
	for i := range pays {
		pays[i] = f.Pay(b, 0, uint32(i+1), 1, "daily-planet", "/a")
	}
	if _, err := v.Verify(pays[0], req, nil); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for n := 0; b.Loop(); n++ {
		i := n%127 + 1
		last := payword.State{Index: uint32(i), Token: pays[i-1].Token}
		if _, err := v.Verify(pays[i], req, &last); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifyFreshSegment is the first payment of a segment at a vendor:
// binding signature, Merkle path, and a chain of m = 128 hashes down to the
// anchor; certificate signature cached. Target ≤ 60 µs/op.
func BenchmarkVerifyFreshSegment(b *testing.B) {
	f := issue(b, 782, 128, payword.GenericScope)
	v := payword.NewVerifier(f.Bank.Keys)
	req := request("/a", 1)
	p := f.Pay(b, 400, 128, 1, "daily-planet", "/a")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Verify(p, req, nil); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkParseAuthorization decodes a payment header as a gateway receives it.
func BenchmarkParseAuthorization(b *testing.B) {
	f := issue(b, 782, 128, payword.GenericScope)
	h := f.Pay(b, 400, 3, 1, "daily-planet", "/articles/a").Header()
	b.SetBytes(int64(len(h)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := payword.ParseAuthorization(h); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkIssue generates a certificate of 100,000 tokens (S = 782, m = 128)
// with its Merkle root and signature. Target ≤ 20 ms.
func BenchmarkIssue(b *testing.B) {
	f := issue(b, 1, 1, payword.GenericScope)
	b.ReportAllocs()
	for b.Loop() {
		var k payword.Secret
		rand.Read(k[:])
		c := *f.Certificate
		c.Issue(k, 782, 128)
		if _, err := c.Sign(f.Bank.Key); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkTokenAt is the agent's per-claim derivation of a token from K.
func BenchmarkTokenAt(b *testing.B) {
	var k payword.Secret
	for b.Loop() {
		payword.TokenAt(k, 7, 64, 128)
	}
}
