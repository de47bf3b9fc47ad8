package wallet

import (
	"errors"
	"os"
	"testing"

	"github.com/hashwall/hashwall/payword"
)

// crash drops the wallet without the checkpoint Close would write, as a
// killed process does: the kernel releases the lock, nothing else happens.
func crash(w *Wallet) {
	w.j.f.Close()
	w.lock.Close()
}

func TestJournalSurvivesCrashAfterReserve(t *testing.T) {
	w, path := testWallet(t)
	issue(t, w, 4, 8, "*")
	p, err := w.reserve("planet", "/a", "http://x/a", 3)
	if err != nil {
		t.Fatal(err)
	}
	if w.j.slot != 1 {
		t.Fatalf("reserve did not go to the journal (slot %d)", w.j.slot)
	}
	crash(w)
	w2, err := Open(path, password)
	if err != nil {
		t.Fatal(err)
	}
	defer w2.Close()
	got := w2.unsettled()
	if len(got) != 1 || got[0].Header != p.Header || got[0].Index != 3 {
		t.Fatalf("pending after crash: %+v", got)
	}
	if b := w2.Balance()[0]; b.Pending != 3 || b.Bound["planet"] != 5 {
		t.Fatalf("balance after crash: %+v", b)
	}
	// The replayed state goes on: settle, then the next payment follows on.
	if err := w2.settle(p.ID, accepted, nil, ""); err != nil {
		t.Fatal(err)
	}
	if q, err := w2.reserve("planet", "/b", "http://x/b", 2); err != nil || q.Index != 5 || q.Segment != p.Segment {
		t.Fatalf("next reservation: %+v %v", q, err)
	}
}

func TestJournalTornTailIsIgnored(t *testing.T) {
	w, path := testWallet(t)
	issue(t, w, 4, 8, "*")
	if _, err := w.reserve("planet", "/a", "http://x/a", 1); err != nil {
		t.Fatal(err)
	}
	slot := w.j.slot
	crash(w)
	// Half a record in the next slot: the write the crash interrupted.
	f, _ := os.OpenFile(path+journalSuffix, os.O_RDWR, 0)
	f.WriteAt([]byte{0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 9, 1, 2, 3}, int64(slot)*slotSize)
	f.Close()
	w2, err := Open(path, password)
	if err != nil {
		t.Fatal(err)
	}
	defer w2.Close()
	if len(w2.unsettled()) != 1 {
		t.Fatal("the complete record before the torn one was lost")
	}
}

func TestJournalHoleIsAnError(t *testing.T) {
	w, path := testWallet(t)
	issue(t, w, 4, 8, "*")
	p, _ := w.reserve("planet", "/a", "http://x/a", 1)
	w.settle(p.ID, accepted, nil, "")
	crash(w)
	f, _ := os.OpenFile(path+journalSuffix, os.O_RDWR, 0)
	f.WriteAt([]byte{0xff}, 100) // inside the first record
	f.Close()
	before, _ := os.ReadFile(path)
	if _, err := Open(path, password); !errors.Is(err, errJournalDamaged) {
		t.Fatalf("open with a damaged journal: %v", err)
	}
	if after, _ := os.ReadFile(path); string(after) != string(before) {
		t.Fatal("a failed open changed the wallet")
	}
}

func TestJournalCheckpointsWhenFull(t *testing.T) {
	w, path := testWallet(t)
	issue(t, w, 200, 8, "*")
	for i := range journalSlots + 5 {
		vendor := "v" + string(rune('a'+i%26)) + string(rune('a'+i/26))
		p, err := w.reserve(vendor, "/a", "http://x/a", 1)
		if err != nil {
			t.Fatal(err)
		}
		if err := w.settle(p.ID, accepted, nil, ""); err != nil {
			t.Fatal(err)
		}
	}
	crash(w)
	w2, err := Open(path, password)
	if err != nil {
		t.Fatal(err)
	}
	defer w2.Close()
	b := w2.Balance()[0]
	if b.Spent != journalSlots+5 || len(b.Bound) != journalSlots+5 || b.Pending != 0 {
		t.Fatalf("after %d payments across checkpoints: spent %d, %d vendors", journalSlots+5, b.Spent, len(b.Bound))
	}
}

// A settlement is written without fdatasync. If the machine dies before
// anything flushes it, the payment is pending again after the restart, is
// re-sent unchanged, and the vendor answers it as before: no token is lost
// or spent twice.
func TestUnflushedSettlementLostToAMachineCrash(t *testing.T) {
	w, path := testWallet(t)
	issue(t, w, 2, 8, "*")
	v := newFakeVendor(t, "planet", map[string]uint32{"/a": 2, "/b": 2})
	if _, err := get(t, &Transport{Wallet: w}, v.URL+"/a"); err != nil {
		t.Fatal(err)
	}
	settled := w.j.slot - 1
	crash(w)
	// What the page cache held of the settlement is gone.
	f, _ := os.OpenFile(path+journalSuffix, os.O_RDWR, 0)
	f.WriteAt(make([]byte, slotSize), int64(settled)*slotSize)
	f.Close()
	w2, err := Open(path, password)
	if err != nil {
		t.Fatal(err)
	}
	defer w2.Close()
	if len(w2.unsettled()) != 1 {
		t.Fatal("the payment whose settlement was lost is not pending")
	}
	if _, err := get(t, &Transport{Wallet: w2}, v.URL+"/b"); err != nil {
		t.Fatal(err)
	}
	if _, err := get(t, &Transport{Wallet: w2}, v.URL+"/a"); err != nil {
		t.Fatal(err)
	}
	if b := w2.Balance()[0]; v.accepted != 4 || b.Spent != 4 || b.Pending != 0 {
		t.Fatalf("vendor took %d tokens, wallet spent %d, pending %d; want 4, 4, 0", v.accepted, b.Spent, b.Pending)
	}
}

// A segment's Merkle proof is kept with it and the anchors with the
// certificate, so a new process pays from a bound segment without hashing
// the certificate again.
func TestProofsAreKept(t *testing.T) {
	w, path := testWallet(t)
	c := issue(t, w, 300, 8, "*")
	if got := w.snapshot().Certs[0].Anchors; len(got) != 300 {
		t.Fatalf("%d anchors stored, want 300", len(got))
	}
	v := newFakeVendor(t, "planet", map[string]uint32{"/a": 1, "/b": 1})
	if _, err := get(t, &Transport{Wallet: w}, v.URL+"/a"); err != nil {
		t.Fatal(err)
	}
	w2 := reopen(t, w, path)
	if _, err := get(t, &Transport{Wallet: w2}, v.URL+"/b"); err != nil {
		t.Fatal(err)
	}
	if len(w2.trees) != 0 {
		t.Fatal("a payment from a bound segment rebuilt the certificate's tree")
	}
	seg := w2.snapshot().Certs[0].Segs[0]
	if seg.Anchor == nil || !payword.VerifyPath(*seg.Anchor, 0, 300, seg.Path, c.Root) {
		t.Fatalf("the kept proof does not verify: %+v", seg)
	}
	// Stored anchors that do not give the root are not trusted.
	w2.st.Certs[0].Anchors[7][0] ^= 1
	if _, err := w2.reserve("globe", "/c", "http://x/c", 1); err != nil {
		t.Fatal(err)
	}
	if tr := w2.trees[c.Serial.String()]; tr == nil || tr.Root() != c.Root {
		t.Fatal("the tree was built from bad anchors")
	}
}
