package capacity

import (
	"testing"
	"time"

	"github.com/hashwall/hashwall/internal/testutil/paytest"
	"github.com/hashwall/hashwall/payword"
)

// The benchmarks' payments are what a gateway accepts: new readers' are
// each a first payment under a certificate of its own, returning readers'
// follow each other in their segments.
func TestPaymentsVerify(t *testing.T) {
	t.Parallel()
	v := payword.NewVerifier(paytest.NewBank(t).Keys)
	req := payword.Request{Vendor: vendor, Product: Product, Price: price, Now: time.Now()}
	serials := map[payword.Serial]bool{}
	for i, p := range NewReaders(t, 5, price, vendor) {
		if _, err := v.Verify(p, req, nil); err != nil {
			t.Fatalf("reader %d: %v", i, err)
		}
		serials[p.Cert.Serial] = true
	}
	if len(serials) != 5 {
		t.Fatalf("%d serials for 5 readers", len(serials))
	}
	loads := Returning(t, 2, 140, price, vendor)
	if len(loads) != 2 || len(loads[0]) != 70 || len(loads[1]) != 70 {
		t.Fatalf("loads of %d and %d payments, want 70 each", len(loads[0]), len(loads[1]))
	}
	for c, load := range loads {
		states := map[uint32]*payword.State{}
		for i, p := range load {
			st, err := v.Verify(p, req, states[p.Segment])
			if err != nil {
				t.Fatalf("client %d payment %d: %v", c, i, err)
			}
			states[p.Segment] = &st
		}
		if len(states) != 2 { // 64 payments of 2 tokens fill a segment
			t.Fatalf("client %d used %d segments, want 2", c, len(states))
		}
	}
}

func TestSplitAndPercentile(t *testing.T) {
	t.Parallel()
	got := Split([]int{1, 2, 3, 4, 5}, 2)
	if len(got) != 2 || len(got[0]) != 3 || len(got[1]) != 2 || got[1][1] != 4 {
		t.Fatalf("Split = %v", got)
	}
	lat := []time.Duration{5, 1, 4, 2, 3, 6, 7, 8, 9, 10}
	if p50, p99 := Percentile(lat, 0.5), Percentile(lat, 0.99); p50 != 6 || p99 != 10 {
		t.Fatalf("p50 %v p99 %v", p50, p99)
	}
}
