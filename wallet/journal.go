package wallet

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"

	"golang.org/x/crypto/chacha20poly1305"
)

// The journal makes a payment durable before it is sent without rewriting
// the whole wallet: the main file is replaced atomically (temp, fsync,
// rename: ~2.5 ms here) only at checkpoints, while each payment step is one
// encrypted record written in place into a preallocated file and flushed with
// fdatasync (~0.3 ms). Opening the wallet replays the records newer than the
// main file's checkpoint.
//
// Slot k of the journal holds op Checkpoint+k+1:
//
//	u32 ciphertext length ‖ u64 seq ‖ nonce[24] ‖ ciphertext
//
// sealed with the wallet key, the seq and the wallet's salt as associated
// data. A record that does not open ends the replay: it was being written
// when the process died, so its step was never acknowledged, and the payment
// it would have journaled was never sent.
//
// Only a reservation must be on disk before the step it records (sending
// the payment). A settlement is written without fdatasync: a process that
// dies keeps it in the page cache, the next reservation's fdatasync or the
// checkpoint at Close flushes it with everything before it, and if the
// machine itself dies first the payment is pending again and is re-sent,
// unchanged, so the vendor answers it as before (the same grant, or a
// replay verdict once the grant's record has expired).

const (
	journalSlots  = 64
	slotSize      = 8 << 10
	recordHeader  = 4 + 8 + chacha20poly1305.NonceSizeX
	journalSuffix = ".journal"
)

var errJournalDamaged = errors.New("the wallet journal is damaged (a record in its middle does not open)")

// op is one journaled step.
type op struct {
	Reserve *reserveOp `json:"reserve,omitempty"`
	Settle  *settleOp  `json:"settle,omitempty"`
}

type reserveOp struct {
	Pending   *pendingPay `json:"pending"`
	Seg       segState    `json:"seg"` // the segment's state after the reservation
	NextFresh uint32      `json:"next_fresh"`
}

type settleOp struct {
	ID      uint64     `json:"id"`
	Outcome outcome    `json:"outcome"`
	Grant   *heldGrant `json:"grant,omitempty"`
	Note    string     `json:"note,omitempty"`
	Time    time.Time  `json:"time"`
}

func (st *fileState) apply(o *op) error {
	switch {
	case o.Reserve != nil:
		r := o.Reserve
		c := st.cert(r.Pending.Serial)
		if c == nil {
			return ErrNotWallet
		}
		seg := r.Seg
		c.Segs[r.Pending.Segment] = &seg
		c.NextFresh = max(c.NextFresh, r.NextFresh)
		st.Seq = max(st.Seq, r.Pending.ID)
		st.Pending = append(st.Pending, r.Pending)
	case o.Settle != nil:
		return st.settle(o.Settle)
	}
	return nil
}

type journal struct {
	f    *os.File
	slot int    // next slot to write
	seq  uint64 // last op written or replayed
}

// openJournal opens (creating and preallocating if needed) the journal of
// the wallet at path.
func openJournal(path string) (*journal, error) {
	f, err := os.OpenFile(path+journalSuffix, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err == nil && fi.Size() < journalSlots*slotSize {
		// Preallocate with written zeros so that later in-place writes
		// change no metadata and fdatasync stays cheap.
		if _, err = f.WriteAt(make([]byte, journalSlots*slotSize), 0); err == nil {
			err = f.Sync()
		}
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("opening the wallet journal: %w", err)
	}
	return &journal{f: f}, nil
}

func (s *sealer) journalAD(seq uint64) []byte {
	ad := append([]byte("HWJ\x01"), s.salt[:]...)
	return binary.BigEndian.AppendUint64(ad, seq)
}

// readSlot returns the op in slot k and its seq, or ok = false.
func (j *journal) readSlot(s *sealer, k int) (o *op, seq uint64, ok bool) {
	buf := make([]byte, slotSize)
	if _, err := j.f.ReadAt(buf, int64(k)*slotSize); err != nil {
		return nil, 0, false
	}
	n := int(binary.BigEndian.Uint32(buf))
	if n < chacha20poly1305.Overhead || n > slotSize-recordHeader {
		return nil, 0, false
	}
	seq = binary.BigEndian.Uint64(buf[4:])
	plain, err := s.aead.Open(nil, buf[12:recordHeader], buf[recordHeader:recordHeader+n], s.journalAD(seq))
	if err != nil {
		return nil, 0, false
	}
	o = &op{}
	if json.Unmarshal(plain, o) != nil {
		return nil, 0, false
	}
	return o, seq, true
}

// replay applies the records newer than st.Checkpoint, in order.
func (j *journal) replay(s *sealer, st *fileState) error {
	j.seq, j.slot = st.Checkpoint, 0
	for ; j.slot < journalSlots; j.slot++ {
		o, seq, ok := j.readSlot(s, j.slot)
		if !ok || seq != j.seq+1 {
			break
		}
		if err := st.apply(o); err != nil {
			return err
		}
		j.seq = seq
	}
	// A valid newer record after the break means a hole, not a torn tail.
	for k := j.slot + 1; k < journalSlots; k++ {
		if _, seq, ok := j.readSlot(s, k); ok && seq > j.seq {
			return errJournalDamaged
		}
	}
	return nil
}

// write puts o in the next slot, made durable with fdatasync when sync is
// set. It reports false, writing nothing, when the journal is full or o does
// not fit a slot: the caller checkpoints instead.
func (j *journal) write(s *sealer, o *op, sync bool) (bool, error) {
	if j.slot >= journalSlots {
		return false, nil
	}
	plain, err := json.Marshal(o)
	if err != nil {
		return false, err
	}
	if len(plain)+chacha20poly1305.Overhead > slotSize-recordHeader {
		return false, nil
	}
	rec := make([]byte, recordHeader, slotSize)
	seq := j.seq + 1
	binary.BigEndian.PutUint64(rec[4:], seq)
	if _, err := rand.Read(rec[12:recordHeader]); err != nil {
		return false, err
	}
	rec = s.aead.Seal(rec, rec[12:recordHeader], plain, s.journalAD(seq))
	binary.BigEndian.PutUint32(rec, uint32(len(rec)-recordHeader))
	if _, err := j.f.WriteAt(rec, int64(j.slot)*slotSize); err != nil {
		return false, fmt.Errorf("writing the wallet journal: %w", err)
	}
	if !sync {
		j.seq, j.slot = seq, j.slot+1
		return true, nil
	}
	if err := syscall.Fdatasync(int(j.f.Fd())); err != nil {
		return false, fmt.Errorf("flushing the wallet journal: %w", err)
	}
	j.seq, j.slot = seq, j.slot+1
	return true, nil
}
