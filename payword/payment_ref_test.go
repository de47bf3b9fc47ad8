package payword

// The decoder of payment headers as it was before it was cut to two
// allocations (commit 1ec9ca4), kept verbatim but for names as the reference
// that payment_diff_test.go compares the production decoder with: same
// accept/reject, same error, same parsed value. It shares what did not
// change: ParseCertificate and ParseBinding (now also the new decoder's,
// with the strings kept in one buffer), and the scanner's helpers.

import (
	"bytes"
	"encoding/base64"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// refB64 is b64 with its old Decode (DecodeString is unchanged).
var refB64 = refWireBase64{b64}

type refWireBase64 struct{ wireBase64 }

func (e refWireBase64) Decode(dst, src []byte) (int, error) {
	if i := bytes.IndexAny(src, "\r\n"); i >= 0 {
		return 0, base64.CorruptInputError(i)
	}
	return e.Encoding.Decode(dst, src)
}

// refParseAuthorization decodes an `Authorization: PayWord …` header value.
// Inputs over MaxPaymentHeader are refused before decoding, so a hostile
// header costs a bounded amount of memory and time.
func refParseAuthorization(h string) (*Payment, error) {
	if len(h) > MaxPaymentHeader {
		return nil, errorf(ErrTooLarge, "payment header of %d bytes", len(h))
	}
	scheme, rest, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, Scheme) {
		return nil, errorf(ErrMalformed, "not a PayWord authorization")
	}
	raw, err := refB64.DecodeString(strings.TrimSpace(rest))
	if err != nil {
		return nil, errorf(ErrMalformed, "payment is not base64url")
	}
	return refParsePayment(raw)
}

// refParsePayment decodes the JSON form of a payment and checks its shape.
// Ranges that depend on the certificate (segment < S, index ≤ m) are checked
// here too; everything that needs keys or state is left to Verify.
func refParsePayment(raw []byte) (*Payment, error) {
	if len(raw) > MaxPaymentHeader {
		return nil, errorf(ErrTooLarge, "payment of %d bytes", len(raw))
	}
	var j paymentJSON
	if !refDecodeFlat(raw, &j) {
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
	if err := refDecodeFixed(p.Anchor[:], j.Anchor, "anchor"); err != nil {
		return nil, err
	}
	if err := refDecodeFixed(p.Token[:], j.Tok, "token"); err != nil {
		return nil, err
	}
	certRaw, err := refB64.DecodeString(j.Cert)
	if err != nil {
		return nil, errorf(ErrMalformed, "certificate is not base64url")
	}
	if p.Cert, err = ParseCertificate(certRaw); err != nil {
		return nil, err
	}
	path, err := refB64.DecodeString(j.Path)
	if err != nil || len(path)%TokenSize != 0 || len(path) > MaxPathLen*TokenSize {
		return nil, errorf(ErrMalformed, "merkle path must be at most %d base64url tokens", MaxPathLen)
	}
	p.Path = make([]Token, len(path)/TokenSize)
	for k := range p.Path {
		copy(p.Path[k][:], path[k*TokenSize:])
	}
	if j.Bind != "" {
		bindRaw, err := refB64.DecodeString(j.Bind)
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

func refDecodeFixed(dst []byte, s, what string) error {
	if refB64.DecodedLen(len(s)) != len(dst) {
		return errorf(ErrMalformed, "%s must be %d bytes", what, len(dst))
	}
	if _, err := refB64.Decode(dst, []byte(s)); err != nil {
		return errorf(ErrMalformed, "%s is not base64url", what)
	}
	return nil
}

// refDecodeFlat decodes a payment's JSON: one object whose members are strings
// and integers. It is the hot path of every payment, and a hand-written
// scanner costs a fraction of encoding/json's reflection. It is stricter
// than encoding/json: keys match exactly (no case folding), and a key given
// twice, a non-ASCII value, a fraction, an exponent, a nested value or
// trailing data are refused. Unknown members (strings, numbers, true, false,
// null) are skipped.
func refDecodeFlat(raw []byte, j *paymentJSON) bool {
	s := refScanner{scanner: scanner{b: raw}}
	s.ws()
	if !s.eat('{') {
		return false
	}
	var seen uint16
	for first := true; ; first = false {
		s.ws()
		if s.eat('}') {
			if !first && s.trailingComma {
				return false
			}
			break
		}
		if !first && !s.trailingComma {
			return false
		}
		key, ok := s.str()
		if !ok {
			return false
		}
		s.ws()
		if !s.eat(':') {
			return false
		}
		s.ws()
		bit, str, num := j.member(string(key))
		if bit != 0 {
			if seen&bit != 0 {
				return false // a key given twice
			}
			seen |= bit
		}
		switch {
		case str != nil:
			v, ok := s.str()
			if !ok || !refASCII(v) { // every field of a payment is ASCII
				return false
			}
			*str = string(v)
		case num != nil:
			if *num, ok = s.int(); !ok {
				return false
			}
		default:
			if !s.skipScalar() {
				return false
			}
		}
		s.ws()
		s.trailingComma = s.eat(',')
	}
	s.ws()
	return s.i == len(s.b)
}

// member returns where the value of key goes, and the key's bit for
// duplicate detection; all nil for an unknown key.
func (j *paymentJSON) member(key string) (bit uint16, str *string, num *int64) {
	switch key {
	case "v":
		return 1 << 0, nil, &j.V
	case "cert":
		return 1 << 1, &j.Cert, nil
	case "seg":
		return 1 << 2, nil, &j.Seg
	case "anchor":
		return 1 << 3, &j.Anchor, nil
	case "path":
		return 1 << 4, &j.Path, nil
	case "bind":
		return 1 << 5, &j.Bind, nil
	case "i":
		return 1 << 6, nil, &j.I
	case "tok":
		return 1 << 7, &j.Tok, nil
	case "p":
		return 1 << 8, nil, &j.P
	case "vendor":
		return 1 << 9, &j.Vendor, nil
	case "product":
		return 1 << 10, &j.Product, nil
	}
	return 0, nil, nil
}

// refScanner is the old scanner; what it shares with the new one (ws,
// eat, pair, hex4, int, literal, number, digits) is unchanged.
type refScanner struct {
	scanner
	buf []byte
}

// str reads a JSON string. Without escapes it returns a slice of the input;
// with them, a decoded copy.
func (s *refScanner) str() ([]byte, bool) {
	if !s.eat('"') {
		return nil, false
	}
	start := s.i
	for s.i < len(s.b) {
		switch c := s.b[s.i]; {
		case c == '"':
			s.i++
			return s.b[start : s.i-1], true
		case c == '\\':
			return s.escaped(start)
		case c < 0x20:
			return nil, false
		default:
			s.i++
		}
	}
	return nil, false
}

func (s *refScanner) escaped(start int) ([]byte, bool) {
	out := append(s.buf[:0], s.b[start:s.i]...)
	for s.i < len(s.b) {
		c := s.b[s.i]
		switch {
		case c == '"':
			s.i++
			s.buf = out
			return out, true
		case c < 0x20:
			return nil, false
		case c != '\\':
			out = append(out, c)
			s.i++
			continue
		}
		if s.i+1 >= len(s.b) {
			return nil, false
		}
		e := s.b[s.i+1]
		s.i += 2
		switch e {
		case '"', '\\', '/':
			out = append(out, e)
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			r, ok := s.hex4()
			if !ok {
				return nil, false
			}
			if utf16.IsSurrogate(r) {
				r = s.pair(r)
			}
			out = utf8.AppendRune(out, r)
		default:
			return nil, false
		}
	}
	return nil, false
}

// skipScalar skips the value of an unknown member.
func (s *refScanner) skipScalar() bool {
	if s.i >= len(s.b) {
		return false
	}
	switch c := s.b[s.i]; {
	case c == '"':
		_, ok := s.str()
		return ok
	case c == '-' || '0' <= c && c <= '9':
		return s.number()
	}
	return s.literal()
}

func refASCII(b []byte) bool {
	for _, c := range b {
		if c >= 0x80 {
			return false
		}
	}
	return true
}
