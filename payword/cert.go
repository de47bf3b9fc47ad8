package payword

import (
	"crypto/ed25519"
	"encoding/binary"
	"strings"
	"time"

	voi "github.com/oasisprotocol/curve25519-voi/primitives/ed25519"
)

// Certificate is the agent's signed statement that a chain root R is worth
// S·m tokens of UnitValue each to the holder of UserKey (docs/protocol.md §4).
type Certificate struct {
	Serial     Serial
	IssuedAt   int64 // Unix seconds
	ExpiresAt  int64 // Unix seconds; the certificate is void from this second on
	Segments   uint32
	SegmentLen uint32
	UnitValue  uint64 // value of one token in minor units of Currency
	UserKey    [ed25519.PublicKeySize]byte
	Root       Token
	KeyID      string
	UserID     string
	Scope      string // GenericScope, or the one vendor id of a specific certificate
	Currency   string

	raw []byte // the signed encoding, set by Sign and ParseCertificate
}

// GenericScope marks a certificate spendable at every vendor.
const GenericScope = "*"

const (
	certMagic = "HWC\x01"
	// certFixedLen is the size of the fixed-width fields.
	certFixedLen = len(certMagic) + 16 + 8 + 8 + 4 + 4 + 8 + 32 + 32
	// MaxCertificateSize bounds a signed certificate: fixed fields, four
	// length-prefixed strings and the signature.
	MaxCertificateSize = certFixedLen + 3*(1+MaxIDLen) + 1 + maxCurrency + ed25519.SignatureSize
	clockSkew          = 5 * 60 // seconds a certificate may be dated in the future
)

// Tokens returns n = S·m.
func (c *Certificate) Tokens() int { return int(c.Segments) * int(c.SegmentLen) }

// Generic reports whether the certificate is spendable at every vendor.
func (c *Certificate) Generic() bool { return c.Scope == GenericScope }

// Raw returns the signed encoding, or nil before Sign.
func (c *Certificate) Raw() []byte { return c.raw }

func (c *Certificate) check() error {
	switch {
	case c.Segments == 0 || c.Segments > MaxSegments:
		return errorf(ErrMalformed, "segment count %d out of range 1..%d", c.Segments, MaxSegments)
	case c.SegmentLen == 0 || c.SegmentLen > MaxSegmentLen:
		return errorf(ErrMalformed, "segment length %d out of range 1..%d", c.SegmentLen, MaxSegmentLen)
	case c.ExpiresAt <= c.IssuedAt:
		return errorf(ErrMalformed, "certificate expires before it is issued")
	case !ValidID(c.KeyID):
		return errorf(ErrMalformed, "invalid key id")
	case !ValidID(c.UserID):
		return errorf(ErrMalformed, "invalid user id")
	case c.Scope != GenericScope && !ValidID(c.Scope):
		return errorf(ErrMalformed, "invalid scope")
	case !validCurrency(c.Currency):
		return errorf(ErrMalformed, "invalid currency")
	}
	return nil
}

func (c *Certificate) body() []byte {
	b := make([]byte, 0, MaxCertificateSize)
	b = append(b, certMagic...)
	b = append(b, c.Serial[:]...)
	b = binary.BigEndian.AppendUint64(b, uint64(c.IssuedAt))
	b = binary.BigEndian.AppendUint64(b, uint64(c.ExpiresAt))
	b = binary.BigEndian.AppendUint32(b, c.Segments)
	b = binary.BigEndian.AppendUint32(b, c.SegmentLen)
	b = binary.BigEndian.AppendUint64(b, c.UnitValue)
	b = append(b, c.UserKey[:]...)
	b = append(b, c.Root[:]...)
	for _, s := range [...]string{c.KeyID, c.UserID, c.Scope, c.Currency} {
		b = appendStr(b, s)
	}
	return b
}

// Sign encodes the certificate and signs it with the agent key k; KeyID is
// set to k.ID. It returns the signed encoding.
func (c *Certificate) Sign(k SigningKey) ([]byte, error) {
	c.KeyID = k.ID
	if err := c.check(); err != nil {
		return nil, err
	}
	body := c.body()
	c.raw = append(body, ed25519.Sign(k.Key, body)...)
	return c.raw, nil
}

// ParseCertificate decodes a signed certificate. It checks the encoding and
// field ranges only; Verify checks the signature.
func ParseCertificate(b []byte) (*Certificate, error) {
	c := new(Certificate)
	if err := c.decode(b, nil); err != nil {
		return nil, err
	}
	return c, nil
}

// decode is ParseCertificate into c, its strings kept in strs (nil: each
// its own allocation). c keeps b as its encoding.
func (c *Certificate) decode(b []byte, strs *strings.Builder) error {
	if len(b) > MaxCertificateSize {
		return errorf(ErrTooLarge, "certificate of %d bytes", len(b))
	}
	if len(b) < certFixedLen+ed25519.SignatureSize || string(b[:len(certMagic)]) != certMagic {
		return errorf(ErrMalformed, "not a version 1 certificate")
	}
	r := reader{b: b[len(certMagic) : len(b)-ed25519.SignatureSize], strs: strs}
	c.raw = b
	copy(c.Serial[:], r.take(16))
	c.IssuedAt = int64(r.u64())
	c.ExpiresAt = int64(r.u64())
	c.Segments = r.u32()
	c.SegmentLen = r.u32()
	c.UnitValue = r.u64()
	copy(c.UserKey[:], r.take(32))
	copy(c.Root[:], r.take(32))
	c.KeyID, c.UserID, c.Scope, c.Currency = r.str(), r.str(), r.str(), r.str()
	if r.bad || len(r.b) != 0 {
		return errorf(ErrMalformed, "certificate length does not match its fields")
	}
	return c.check()
}

// Verify checks the agent signature against keys. It does not look at time.
func (c *Certificate) Verify(keys KeySet) error {
	if c.raw == nil {
		return errorf(ErrBadSignature, "certificate is not signed")
	}
	pub, ok := keys[c.KeyID]
	if !ok {
		return errorf(ErrUnknownKey, "key id %q", c.KeyID)
	}
	n := len(c.raw) - ed25519.SignatureSize
	if !voi.Verify(voi.PublicKey(pub), c.raw[:n], c.raw[n:]) {
		return errorf(ErrBadSignature, "certificate %s", c.Serial)
	}
	return nil
}

// validAt checks the validity period at now.
func (c *Certificate) validAt(now time.Time) error {
	t := now.Unix()
	if t >= c.ExpiresAt {
		return errorf(ErrExpired, "certificate %s expired at %d", c.Serial, c.ExpiresAt)
	}
	if t+clockSkew < c.IssuedAt {
		return errorf(ErrNotYetValid, "certificate %s issued at %d", c.Serial, c.IssuedAt)
	}
	return nil
}

// Issue fills in R, S and m for the chain secret k and returns the Merkle
// tree over the segment anchors, from which the wallet draws its proofs.
func (c *Certificate) Issue(k Secret, segments, segmentLen int) *Tree {
	c.Segments, c.SegmentLen = uint32(segments), uint32(segmentLen)
	t := NewTree(Anchors(k, segments, segmentLen))
	c.Root = t.Root()
	return t
}
