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
// header costs a bounded amount of memory and time. A payment it accepts
// costs two allocations: the Payment with all it points to, and its strings.
func ParseAuthorization(h string) (*Payment, error) {
	if len(h) > MaxPaymentHeader {
		return nil, errorf(ErrTooLarge, "payment header of %d bytes", len(h))
	}
	scheme, rest, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, Scheme) {
		return nil, errorf(ErrMalformed, "not a PayWord authorization")
	}
	// The JSON is decoded on the stack: the payment copies what it keeps.
	var buf [maxPaymentJSON]byte
	raw, err := b64.appendDecodeString(buf[:0], strings.TrimSpace(rest))
	if err != nil {
		return nil, errorf(ErrMalformed, "payment is not base64url")
	}
	return parsePayment(raw)
}

// maxPaymentJSON bounds the JSON of a header of MaxPaymentHeader bytes.
const maxPaymentJSON = MaxPaymentHeader * 3 / 4

// parsedPayment is a payment with everything it points to, allocated at once.
type parsedPayment struct {
	Payment
	cert    Certificate
	bind    Binding
	path    [MaxPathLen]Token
	certRaw [MaxCertificateSize]byte
	bindRaw [MaxBindingSize]byte
}

// parsePayment decodes the JSON form of a payment and checks its shape.
// Ranges that depend on the certificate (segment < S, index ≤ m) are checked
// here too; everything that needs keys or state is left to Verify. It
// overwrites raw (see decodeFields).
func parsePayment(raw []byte) (*Payment, error) {
	if len(raw) > MaxPaymentHeader {
		return nil, errorf(ErrTooLarge, "payment of %d bytes", len(raw))
	}
	j, ok := decodeFields(raw)
	if !ok {
		return nil, errorf(ErrMalformed, "payment is not one flat JSON object of strings and integers")
	}
	if j.v != 1 {
		return nil, errorf(ErrMalformed, "unsupported payment version %d", j.v)
	}
	d := new(parsedPayment)
	p := &d.Payment
	// All strings share one buffer, sized for the longest that the
	// certificate and binding can hold (their encodings less the fixed part).
	var strs strings.Builder
	certLen := min(b64.DecodedLen(len(j.cert)), MaxCertificateSize)
	bindLen := min(b64.DecodedLen(len(j.bind)), MaxBindingSize)
	strs.Grow(len(j.vendor) + len(j.product) +
		max(certLen-certFixedLen-ed25519.SignatureSize, 0) + max(bindLen-bindingFixedLen-ed25519.SignatureSize, 0))
	p.Vendor, p.Product = cutString(&strs, j.vendor), cutString(&strs, j.product)
	if !ValidID(p.Vendor) {
		return nil, errorf(ErrMalformed, "invalid vendor id")
	}
	if !ValidProduct(p.Product) {
		return nil, errorf(ErrMalformed, "invalid product id")
	}
	if err := decodeFixed(p.Anchor[:], j.anchor, "anchor"); err != nil {
		return nil, err
	}
	if err := decodeFixed(p.Token[:], j.tok, "token"); err != nil {
		return nil, err
	}
	// An encoding too long for the array is decoded on the heap, to be
	// refused by its parser as too large once known to be base64url.
	certRaw, err := b64.appendDecode(d.certRaw[:0], j.cert)
	if err != nil {
		return nil, errorf(ErrMalformed, "certificate is not base64url")
	}
	if err := d.cert.decode(certRaw, &strs); err != nil {
		return nil, err
	}
	p.Cert = &d.cert
	var path [MaxPathLen * TokenSize]byte
	n := b64.DecodedLen(len(j.path))
	if n%TokenSize != 0 || n > len(path) {
		return nil, errorf(ErrMalformed, "merkle path must be at most %d base64url tokens", MaxPathLen)
	}
	if _, err := b64.Decode(path[:n], j.path); err != nil {
		return nil, errorf(ErrMalformed, "merkle path must be at most %d base64url tokens", MaxPathLen)
	}
	p.Path = d.path[: n/TokenSize : n/TokenSize]
	for k := range p.Path {
		copy(p.Path[k][:], path[k*TokenSize:])
	}
	if len(j.bind) != 0 {
		bindRaw, err := b64.appendDecode(d.bindRaw[:0], j.bind)
		if err != nil {
			return nil, errorf(ErrMalformed, "binding is not base64url")
		}
		if err := d.bind.decode(bindRaw, &strs); err != nil {
			return nil, err
		}
		p.Binding = &d.bind
	}
	// Out-of-range integers are refused before narrowing to uint32.
	if j.seg < 0 || j.seg > MaxSegments || j.i < 0 || j.i > MaxSegmentLen {
		return nil, errorf(ErrBadIndex, "segment %d or token index %d out of range", j.seg, j.i)
	}
	if j.p < 0 || j.p > MaxSegmentLen {
		return nil, errorf(ErrBadAmount, "amount %d out of range", j.p)
	}
	p.Segment, p.Index, p.Amount = uint32(j.seg), uint32(j.i), uint32(j.p)
	if err := p.checkRanges(); err != nil {
		return nil, err
	}
	return p, nil
}

func decodeFixed(dst, src []byte, what string) error {
	if b64.DecodedLen(len(src)) != len(dst) {
		return errorf(ErrMalformed, "%s must be %d bytes", what, len(dst))
	}
	if _, err := b64.Decode(dst, src); err != nil {
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
