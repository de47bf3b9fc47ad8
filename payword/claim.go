package payword

import (
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"strconv"

	"github.com/hashwall/hashwall/internal/jsonappend"
)

// Claim is one accepted payment as a vendor reports it to the agent: enough
// for the agent to check the tokens against K, attribute the segment with the
// user's binding and pay the vendor.
type Claim struct {
	Serial  Serial `json:"serial"`
	Segment uint32 `json:"seg"`
	Binding Bytes  `json:"bind,omitempty"` // the signed binding (generic certificates)
	Index   uint32 `json:"i"`
	Token   Token  `json:"tok"`
	Amount  uint32 `json:"p"`
	Product string `json:"product"`
	Auth    string `json:"auth"` // the gateway's authorization number
	Time    int64  `json:"time"` // Unix seconds of acceptance
	// Void marks the void of the claim with these fields, whose answer was
	// not charged: the agent takes its value back from the vendor and
	// gives it to the reader. Its Auth is the claim's with VoidSuffix.
	Void bool `json:"void,omitempty"`
}

// AppendJSON appends c as JSON, byte for byte as json.Marshal(c) writes
// it (a test holds the two together), without reflection: the gateway
// writes one claim per payment.
func (c *Claim) AppendJSON(b []byte) []byte {
	b = append(b, `{"serial":"`...)
	b = hex.AppendEncode(b, c.Serial[:])
	b = append(b, `","seg":`...)
	b = strconv.AppendUint(b, uint64(c.Segment), 10)
	if len(c.Binding) > 0 {
		b = append(b, `,"bind":"`...)
		b = base64.RawURLEncoding.AppendEncode(b, c.Binding)
		b = append(b, '"')
	}
	b = append(b, `,"i":`...)
	b = strconv.AppendUint(b, uint64(c.Index), 10)
	b = append(b, `,"tok":"`...)
	b = base64.RawURLEncoding.AppendEncode(b, c.Token[:])
	b = append(b, `","p":`...)
	b = strconv.AppendUint(b, uint64(c.Amount), 10)
	b = append(b, `,"product":`...)
	b = jsonappend.String(b, c.Product)
	b = append(b, `,"auth":`...)
	b = jsonappend.String(b, c.Auth)
	b = append(b, `,"time":`...)
	b = strconv.AppendInt(b, c.Time, 10)
	if c.Void {
		b = append(b, `,"void":true`...)
	}
	return append(b, '}')
}

// VoidSuffix ends the authorization number of a void: the claim's own
// number, so each stream entry gets its own answer.
const VoidSuffix = "-void"

// Report is a batch of claims from one vendor. Batch identifies it for
// idempotent redelivery.
type Report struct {
	Vendor string  `json:"vendor"`
	Batch  string  `json:"batch"`
	Claims []Claim `json:"claims"`
}

// Report limits: a body over MaxReportSize or with more than MaxReportClaims
// claims is refused whole.
const (
	MaxReportClaims = 1000
	MaxReportSize   = MaxReportClaims * 1024
)

// ParseReport decodes a report and checks each claim's shape.
func ParseReport(raw []byte) (*Report, error) {
	if len(raw) > MaxReportSize {
		return nil, errorf(ErrTooLarge, "report of %d bytes", len(raw))
	}
	var r Report
	if !shallowJSON(raw, 3) {
		return nil, errorf(ErrMalformed, "report nests too deep")
	}
	if err := json.Unmarshal(raw, &r); err != nil {
		return nil, errorf(ErrMalformed, "report is not JSON of the right shape")
	}
	if !ValidID(r.Vendor) || !ValidID(r.Batch) {
		return nil, errorf(ErrMalformed, "report needs a vendor id and a batch id")
	}
	if len(r.Claims) == 0 {
		return nil, errorf(ErrMalformed, "report holds no claims")
	}
	if len(r.Claims) > MaxReportClaims {
		return nil, errorf(ErrTooLarge, "report of more than %d claims", MaxReportClaims)
	}
	for k := range r.Claims {
		if err := r.Claims[k].check(); err != nil {
			return nil, errorf(err, "claim %d", k)
		}
	}
	return &r, nil
}

func (c *Claim) check() error {
	switch {
	case c.Segment >= MaxSegments || c.Index < 1 || c.Index > MaxSegmentLen:
		return ErrBadIndex
	case c.Amount < 1 || c.Amount > c.Index:
		return ErrBadAmount
	case len(c.Binding) > MaxBindingSize:
		return ErrTooLarge
	case !ValidProduct(c.Product) || !ValidID(c.Auth):
		return ErrMalformed
	}
	return nil
}

// Bytes is a byte string that travels as base64url in JSON.
type Bytes []byte

// MarshalText encodes b as base64url.
func (b Bytes) MarshalText() ([]byte, error) { return []byte(b64.EncodeToString(b)), nil }

// UnmarshalText decodes base64url.
func (b *Bytes) UnmarshalText(s []byte) error {
	out, err := b64.DecodeString(string(s))
	if err != nil {
		return errorf(ErrMalformed, "not base64url")
	}
	if len(out) == 0 {
		out = nil // "" and an absent field mean the same
	}
	*b = out
	return nil
}

// MarshalText encodes a token as base64url.
func (t Token) MarshalText() ([]byte, error) { return []byte(b64.EncodeToString(t[:])), nil }

// UnmarshalText decodes a base64url token.
func (t *Token) UnmarshalText(b []byte) error { return decodeFixed(t[:], b, "token") }

// MarshalText encodes a serial as hex.
func (s Serial) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText decodes a hex serial.
func (s *Serial) UnmarshalText(b []byte) error {
	v, err := ParseSerial(string(b))
	*s = v
	return err
}
