package paywall

import (
	"testing"

	"github.com/hashwall/hashwall/internal/testutil/paytest"
	"github.com/hashwall/hashwall/internal/testutil/redistest"
	"github.com/hashwall/hashwall/payword"
)

// TestScriptKeysShareASlot: the keys each script of a payment touches are
// in one Redis Cluster slot (the accept script: state, authorization record,
// stream; the void: record, stream; admission: state, bound and offline
// markers), a vendor's certificates use every shard, and the vendor-wide
// keys are apart from them.
func TestScriptKeysShareASlot(t *testing.T) {
	t.Parallel()
	ks := newKeyspace(testVendor)
	bank := paytest.NewBank(t)
	used := map[int]bool{}
	for i := range 64 {
		wal := bank.Issue(t, paytest.Options{Seed: byte(i), Segments: 4})
		p := wal.Pay(t, 3, 2, 2, testVendor, "/articles/a")
		s := p.Cert.Serial
		n := shardOf(s)
		used[n] = true
		for name, keys := range map[string][]string{
			"accept": {ks.state(s, 3), ks.authorization(p), ks.streamOf(ModeAlmostOnline, s), ks.streamOf(ModeBatch, s)},
			"void":   {ks.authorization(p), ks.streamOf(ModeBatch, s)},
			"admit":  {ks.state(s, 3), ks.bound(s, 3), ks.offline(s)},
		} {
			for _, k := range keys {
				if redistest.Slot(k) != redistest.Slot(ks.shard[n]) {
					t.Fatalf("%s script of %s: %s is in slot %d, its shard's %d", name, s, k, redistest.Slot(k), redistest.Slot(ks.shard[n]))
				}
			}
		}
	}
	if len(used) != shards {
		t.Fatalf("64 certificates used %d of %d shards", len(used), shards)
	}
	slots := map[int]bool{redistest.Slot(ks.keys()): true}
	for _, prefix := range ks.shard {
		slots[redistest.Slot(prefix)] = true
	}
	if len(slots) != shards+1 || redistest.Slot(ks.keys()) != redistest.Slot(ks.crl()) || redistest.Slot(ks.keys()) != redistest.Slot(ks.layout()) {
		t.Fatalf("the shards and the vendor-wide keys share slots: %d distinct of %d", len(slots), shards+1)
	}
	// A vendor whose id holds the separator of another's shard tag: "/"
	// cannot be in an id, so no tag is another vendor's.
	if payword.ValidID(testVendor + "/1") {
		t.Fatal("vendor ids may hold '/'")
	}
}
