package payword

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"strings"
)

// b64 is the wire encoding of every binary field: base64url without padding,
// strict (non-zero trailing bits are refused, so each value has one
// encoding), and without the CR and LF that Go's decoder skips even in
// strict mode (a JSON "\n" inside a value would be a second encoding).
var b64 = wireBase64{base64.RawURLEncoding.Strict()}

type wireBase64 struct{ *base64.Encoding }

func (e wireBase64) DecodeString(s string) ([]byte, error) {
	if strings.ContainsAny(s, "\r\n") {
		return nil, base64.CorruptInputError(strings.IndexAny(s, "\r\n"))
	}
	return e.Encoding.DecodeString(s)
}

func (e wireBase64) Decode(dst, src []byte) (int, error) {
	if i := lineBreak(src); i >= 0 {
		return 0, base64.CorruptInputError(i)
	}
	return e.Encoding.Decode(dst, src)
}

// appendDecode appends the decoding of src to dst; it allocates only when
// dst has no room for it.
func (e wireBase64) appendDecode(dst, src []byte) ([]byte, error) {
	if i := lineBreak(src); i >= 0 {
		return dst, base64.CorruptInputError(i)
	}
	return e.Encoding.AppendDecode(dst, src)
}

// appendDecodeString is appendDecode of a string. Converting s to bytes
// would allocate, so it goes through the stack in chunks of whole quanta,
// which decode as the whole does (error offsets aside).
func (e wireBase64) appendDecodeString(dst []byte, s string) ([]byte, error) {
	var chunk [1024]byte // a multiple of 4
	for {
		n := copy(chunk[:], s)
		var err error
		if dst, err = e.appendDecode(dst, chunk[:n]); err != nil || n == len(s) {
			return dst, err
		}
		s = s[n:]
	}
}

// lineBreak returns the offset of the first CR or LF in src, or -1.
func lineBreak(src []byte) int {
	i, j := bytes.IndexByte(src, '\r'), bytes.IndexByte(src, '\n')
	if i < 0 || 0 <= j && j < i {
		return j
	}
	return i
}

// DecodeBase64 decodes a binary field of the wire encoding: base64url, no
// padding, zero trailing bits, no line breaks. Every network input that
// carries base64url is decoded with it, so each value has one encoding.
func DecodeBase64(s string) ([]byte, error) { return b64.DecodeString(s) }

// Serial is a certificate's 128-bit serial number.
type Serial [16]byte

func (s Serial) String() string { return hex.EncodeToString(s[:]) }

// ParseSerial reads the hex form of a serial.
func ParseSerial(s string) (Serial, error) {
	var out Serial
	if len(s) != 2*len(out) {
		return out, errorf(ErrMalformed, "serial must be %d hex digits", 2*len(out))
	}
	if _, err := hex.Decode(out[:], []byte(s)); err != nil {
		return out, errorf(ErrMalformed, "serial is not hex")
	}
	return out, nil
}

// Identifier limits. Every string on the wire is bounded and restricted to a
// visible-ASCII alphabet, so encodings are unambiguous and safe to log.
const (
	MaxIDLen      = 64
	MaxProductLen = 512
	maxCurrency   = 8
)

// ValidID reports whether s is a valid vendor, user or key id:
// 1 to 64 characters of A-Z a-z 0-9 . _ - : @.
func ValidID(s string) bool {
	if len(s) == 0 || len(s) > MaxIDLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
			c == '.' || c == '_' || c == '-' || c == ':' || c == '@') {
			return false
		}
	}
	return true
}

// ValidProduct reports whether s is a valid product id: 1 to 512 visible
// ASCII characters (a path or a path prefix, as the gateway scopes it).
func ValidProduct(s string) bool {
	if len(s) == 0 || len(s) > MaxProductLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

func validCurrency(s string) bool {
	if len(s) == 0 || len(s) > maxCurrency {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !('A' <= c && c <= 'Z' || '0' <= c && c <= '9') {
			return false
		}
	}
	return true
}

// reader consumes a binary encoding; the first error sticks.
type reader struct {
	b    []byte
	bad  bool
	strs *strings.Builder // where str keeps its strings; nil: each its own allocation
}

func (r *reader) take(n int) []byte {
	if r.bad || len(r.b) < n {
		r.bad = true
		return make([]byte, n)
	}
	out := r.b[:n]
	r.b = r.b[n:]
	return out
}

func (r *reader) u32() uint32 { return binary.BigEndian.Uint32(r.take(4)) }
func (r *reader) u64() uint64 { return binary.BigEndian.Uint64(r.take(8)) }

func (r *reader) str() string {
	b := r.take(int(r.take(1)[0]))
	if r.strs == nil {
		return string(b)
	}
	return cutString(r.strs, b)
}

// cutString appends b to sb and returns it as a string in sb's memory.
// strings.Builder never rewrites what it holds, so many strings can share
// one allocation.
func cutString(sb *strings.Builder, b []byte) string {
	n := sb.Len()
	sb.Write(b)
	return sb.String()[n:]
}

func appendStr(b []byte, s string) []byte {
	return append(append(b, byte(len(s))), s...)
}

// shallowJSON reports whether raw nests arrays and objects at most max deep.
// Our documents are shallow; refusing deep nesting up front keeps the JSON
// decoder's memory proportional to what we accept, whatever the input.
func shallowJSON(raw []byte, max int) bool {
	depth, inString, escaped := 0, false, false
	for _, c := range raw {
		switch {
		case escaped:
			escaped = false
		case inString:
			escaped = c == '\\'
			inString = c != '"'
		case c == '"':
			inString = true
		case c == '{' || c == '[':
			if depth++; depth > max {
				return false
			}
		case c == '}' || c == ']':
			depth--
		}
	}
	return true
}
