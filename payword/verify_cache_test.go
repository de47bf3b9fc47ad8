package payword_test

import (
	"encoding/binary"
	"testing"

	"github.com/hashwall/hashwall/payword"
)

// The certificate cache never holds more than its bound, however many
// distinct certificates come; the newest half of them are all held, and a
// certificate in use stays however many others pass through.
func TestVerifierCacheBounded(t *testing.T) {
	t.Parallel()
	const bound, n = 16, 200
	f := issue(t, 2, 4, payword.GenericScope)
	v := payword.NewVerifier(f.Bank.Keys)
	v.SetMaxTrusted(bound)
	req := request("/a", 1)
	regular := f.Pay(t, 0, 1, 1, vendor, "/a")
	var pays []*payword.Payment
	for i := range n {
		c := *f.Certificate
		binary.BigEndian.PutUint64(c.Serial[8:], uint64(i)+1)
		if _, err := c.Sign(f.Bank.Key); err != nil {
			t.Fatal(err)
		}
		p := *regular
		p.Cert = &c
		pays = append(pays, &p)
	}
	for i, p := range pays {
		if err := v.Check(p, req); err != nil {
			t.Fatalf("certificate %d: %v", i, err)
		}
		if err := v.Check(regular, req); err != nil {
			t.Fatal(err)
		}
		if got := v.Cached(); got > bound {
			t.Fatalf("after %d certificates: %d cached, bound %d", i+1, got, bound)
		}
		if !v.Holds(regular.Cert) {
			t.Fatalf("after %d certificates: the one in use was dropped", i+1)
		}
	}
	for i, p := range pays[n-bound/2+1:] {
		if !v.Holds(p.Cert) {
			t.Errorf("certificate %d of the newest %d not held", i, bound/2-1)
		}
	}
	if v.Holds(pays[0].Cert) {
		t.Error("the oldest certificate is still held")
	}
}

// The default bound, as docs/scaling.md states it.
func TestVerifierCacheBound(t *testing.T) {
	if payword.MaxTrusted != 1<<16 {
		t.Fatalf("maxTrusted = %d: update docs/scaling.md", payword.MaxTrusted)
	}
}
