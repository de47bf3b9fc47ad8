package payword

import (
	"crypto/ed25519"
	"encoding/json"
	"strings"
	"time"
)

// Payment is what a wallet sends in `Authorization: PayWord <b64>`: tokens
// (Index-Amount, Index] of one segment, with everything a vendor needs to
// verify them alone.
type Payment struct {
	Cert    *Certificate
	Segment uint32
	Anchor  Token   // a[Segment]
	Path    []Token // Merkle path of Anchor to Cert.Root
	Binding *Binding
	Index   uint32 // i, the highest token spent
	Token   Token  // w[Segment][Index]
	Amount  uint32 // p
	Vendor  string
	Product string
}

// Scheme is the HTTP authentication scheme of payments and challenges.
const Scheme = "PayWord"

// MaxPaymentHeader bounds an Authorization header value; longer ones are
// refused before any decoding.
const MaxPaymentHeader = 8192

type paymentJSON struct {
	V       int64  `json:"v"`
	Cert    string `json:"cert"`
	Seg     int64  `json:"seg"`
	Anchor  string `json:"anchor"`
	Path    string `json:"path"`
	Bind    string `json:"bind,omitempty"`
	I       int64  `json:"i"`
	Tok     string `json:"tok"`
	P       int64  `json:"p"`
	Vendor  string `json:"vendor"`
	Product string `json:"product"`
}

// encode returns the JSON encoding of the payment (fields in a fixed order).
func (p *Payment) encode() []byte {
	path := make([]byte, 0, len(p.Path)*TokenSize)
	for _, t := range p.Path {
		path = append(path, t[:]...)
	}
	j := paymentJSON{
		V: 1, Cert: b64.EncodeToString(p.Cert.Raw()), Seg: int64(p.Segment),
		Anchor: b64.EncodeToString(p.Anchor[:]), Path: b64.EncodeToString(path),
		I: int64(p.Index), Tok: b64.EncodeToString(p.Token[:]), P: int64(p.Amount),
		Vendor: p.Vendor, Product: p.Product,
	}
	if p.Binding != nil {
		j.Bind = b64.EncodeToString(p.Binding.Raw())
	}
	out, _ := json.Marshal(j) // cannot fail: strings and integers only
	return out
}

// Header returns the Authorization header value.
func (p *Payment) Header() string {
	return Scheme + " " + b64.EncodeToString(p.encode())
}

// ParseAuthorization decodes an `Authorization: PayWord …` header value.
// Inputs over MaxPaymentHeader are refused before decoding, so a hostile
// header costs a bounded amount of memory and time.
func ParseAuthorization(h string) (*Payment, error) {
	if len(h) > MaxPaymentHeader {
		return nil, errorf(ErrTooLarge, "payment header of %d bytes", len(h))
	}
	scheme, rest, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, Scheme) {
		return nil, errorf(ErrMalformed, "not a PayWord authorization")
	}
	raw, err := b64.DecodeString(strings.TrimSpace(rest))
	if err != nil {
		return nil, errorf(ErrMalformed, "payment is not base64url")
	}
	return parsePayment(raw)
}

// parsePayment decodes the JSON form of a payment and checks its shape.
// Ranges that depend on the certificate (segment < S, index ≤ m) are checked
// here too; everything that needs keys or state is left to Verify.
func parsePayment(raw []byte) (*Payment, error) {
	if len(raw) > MaxPaymentHeader {
		return nil, errorf(ErrTooLarge, "payment of %d bytes", len(raw))
	}
	var j paymentJSON
	if !decodeFlat(raw, &j) {
		return nil, errorf(ErrMalformed, "payment is not one flat JSON object of strings and integers")
	}
	if j.V != 1 {
		return nil, errorf(ErrMalformed, "unsupported payment version %d", j.V)
	}
	p := &Payment{Vendor: j.Vendor, Product: j.Product}
	if !ValidID(j.Vendor) {
		return nil, errorf(ErrMalformed, "invalid vendor id")
	}
	if !ValidProduct(j.Product) {
		return nil, errorf(ErrMalformed, "invalid product id")
	}
	if err := decodeFixed(p.Anchor[:], j.Anchor, "anchor"); err != nil {
		return nil, err
	}
	if err := decodeFixed(p.Token[:], j.Tok, "token"); err != nil {
		return nil, err
	}
	certRaw, err := b64.DecodeString(j.Cert)
	if err != nil {
		return nil, errorf(ErrMalformed, "certificate is not base64url")
	}
	if p.Cert, err = ParseCertificate(certRaw); err != nil {
		return nil, err
	}
	path, err := b64.DecodeString(j.Path)
	if err != nil || len(path)%TokenSize != 0 || len(path) > MaxPathLen*TokenSize {
		return nil, errorf(ErrMalformed, "merkle path must be at most %d base64url tokens", MaxPathLen)
	}
	p.Path = make([]Token, len(path)/TokenSize)
	for k := range p.Path {
		copy(p.Path[k][:], path[k*TokenSize:])
	}
	if j.Bind != "" {
		bindRaw, err := b64.DecodeString(j.Bind)
		if err != nil {
			return nil, errorf(ErrMalformed, "binding is not base64url")
		}
		if p.Binding, err = ParseBinding(bindRaw); err != nil {
			return nil, err
		}
	}
	// Out-of-range integers are refused before narrowing to uint32.
	if j.Seg < 0 || j.Seg > MaxSegments || j.I < 0 || j.I > MaxSegmentLen {
		return nil, errorf(ErrBadIndex, "segment %d or token index %d out of range", j.Seg, j.I)
	}
	if j.P < 0 || j.P > MaxSegmentLen {
		return nil, errorf(ErrBadAmount, "amount %d out of range", j.P)
	}
	p.Segment, p.Index, p.Amount = uint32(j.Seg), uint32(j.I), uint32(j.P)
	if err := p.checkRanges(); err != nil {
		return nil, err
	}
	return p, nil
}

func decodeFixed(dst []byte, s, what string) error {
	if b64.DecodedLen(len(s)) != len(dst) {
		return errorf(ErrMalformed, "%s must be %d bytes", what, len(dst))
	}
	if _, err := b64.Decode(dst, []byte(s)); err != nil {
		return errorf(ErrMalformed, "%s is not base64url", what)
	}
	return nil
}

// checkRanges checks segment < S, 1 ≤ i ≤ m and 1 ≤ p ≤ i.
func (p *Payment) checkRanges() error {
	c := p.Cert
	if p.Segment >= c.Segments {
		return errorf(ErrBadIndex, "segment %d not in 0..%d", p.Segment, c.Segments-1)
	}
	if p.Index < 1 || p.Index > c.SegmentLen {
		return errorf(ErrBadIndex, "token index %d not in 1..%d", p.Index, c.SegmentLen)
	}
	if p.Amount < 1 || p.Amount > p.Index {
		return errorf(ErrBadAmount, "amount %d not in 1..%d", p.Amount, p.Index)
	}
	return nil
}

// Bind signs the binding of segment g of c to vendor with the user's key.
func Bind(c *Certificate, user ed25519.PrivateKey, g uint32, vendor string, now time.Time) (*Binding, error) {
	b := &Binding{Serial: c.Serial, Segment: g, Vendor: vendor, Time: now.Unix()}
	if _, err := b.Sign(user); err != nil {
		return nil, err
	}
	return b, nil
}

// NewPayment builds the payment of tokens (index-amount, index] of segment g,
// from the chain secret k and the certificate's tree. bind is nil for a
// specific certificate.
func NewPayment(c *Certificate, tree *Tree, k Secret, bind *Binding, g, index, amount uint32, vendor, product string) *Payment {
	return &Payment{
		Cert: c, Segment: g, Anchor: tree.Anchor(int(g)), Path: tree.Path(int(g)), Binding: bind,
		Index: index, Token: TokenAt(k, g, int(index), int(c.SegmentLen)), Amount: amount,
		Vendor: vendor, Product: product,
	}
}
