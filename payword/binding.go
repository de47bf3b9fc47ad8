package payword

import (
	"crypto/ed25519"
	"encoding/binary"
	"strings"

	voi "github.com/oasisprotocol/curve25519-voi/primitives/ed25519"
)

// Binding is the user's signed commitment of segment Segment of certificate
// Serial to one vendor: the PayWord commitment. Two bindings of one segment
// to different vendors prove a double-spend.
type Binding struct {
	Serial  Serial
	Segment uint32
	Time    int64 // Unix seconds, when the wallet bound the segment
	Vendor  string

	raw []byte
}

const (
	bindingMagic    = "HWB\x01"
	bindingFixedLen = len(bindingMagic) + 16 + 4 + 8
	// MaxBindingSize bounds a signed binding.
	MaxBindingSize = bindingFixedLen + 1 + MaxIDLen + ed25519.SignatureSize
)

// Raw returns the signed encoding.
func (b *Binding) Raw() []byte { return b.raw }

// Signed returns the signed message and the user's signature over it, for
// callers that verify many bindings at once.
func (b *Binding) Signed() (msg, sig []byte) {
	n := max(len(b.raw)-ed25519.SignatureSize, 0)
	return b.raw[:n], b.raw[n:]
}

// Sign encodes and signs the binding with the user's key.
func (b *Binding) Sign(user ed25519.PrivateKey) ([]byte, error) {
	if !ValidID(b.Vendor) {
		return nil, errorf(ErrMalformed, "invalid vendor id")
	}
	body := make([]byte, 0, MaxBindingSize)
	body = append(body, bindingMagic...)
	body = append(body, b.Serial[:]...)
	body = binary.BigEndian.AppendUint32(body, b.Segment)
	body = binary.BigEndian.AppendUint64(body, uint64(b.Time))
	body = appendStr(body, b.Vendor)
	b.raw = append(body, ed25519.Sign(user, body)...)
	return b.raw, nil
}

// ParseBinding decodes a signed binding without checking the signature.
func ParseBinding(raw []byte) (*Binding, error) {
	b := new(Binding)
	if err := b.decode(raw, nil); err != nil {
		return nil, err
	}
	return b, nil
}

// decode is ParseBinding into b, its vendor kept in strs (nil: its own
// allocation). b keeps raw as its encoding.
func (b *Binding) decode(raw []byte, strs *strings.Builder) error {
	if len(raw) > MaxBindingSize {
		return errorf(ErrTooLarge, "binding of %d bytes", len(raw))
	}
	if len(raw) < bindingFixedLen+ed25519.SignatureSize || string(raw[:len(bindingMagic)]) != bindingMagic {
		return errorf(ErrMalformed, "not a version 1 binding")
	}
	r := reader{b: raw[len(bindingMagic) : len(raw)-ed25519.SignatureSize], strs: strs}
	b.raw = raw
	copy(b.Serial[:], r.take(16))
	b.Segment = r.u32()
	b.Time = int64(r.u64())
	b.Vendor = r.str()
	if r.bad || len(r.b) != 0 {
		return errorf(ErrMalformed, "binding length does not match its fields")
	}
	if !ValidID(b.Vendor) {
		return errorf(ErrMalformed, "invalid vendor id")
	}
	return nil
}

// Verify checks the signature against the certificate's user key.
func (b *Binding) Verify(c *Certificate) error {
	if msg, sig := b.Signed(); !voi.Verify(c.UserKey[:], msg, sig) {
		return b.forged()
	}
	return nil
}

func (b *Binding) forged() error {
	return errorf(ErrBadSignature, "binding of segment %d not signed by the certificate's user", b.Segment)
}
