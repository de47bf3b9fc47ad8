package payword

import (
	"encoding/binary"
	"unicode/utf16"
	"unicode/utf8"
)

// paymentFields are a payment's JSON members as decodeFields reads them.
// The strings are slices of the input, unescaped in place: nothing is
// copied.
type paymentFields struct {
	v, seg, i, p                                   int64
	cert, anchor, path, bind, tok, vendor, product []byte
}

// decodeFields reads a payment's JSON: one object whose members are strings
// and integers. It is the hot path of every payment, and a hand-written
// scanner costs a fraction of encoding/json's reflection. It is stricter
// than encoding/json: keys match exactly (no case folding), and a key given
// twice, a non-ASCII value, a fraction, an exponent, a nested value or
// trailing data are refused. Unknown members (strings, numbers, true, false,
// null) are skipped. It overwrites raw: escaped strings are unescaped where
// they stand, which is safe because a value is never longer than its
// spelling.
func decodeFields(raw []byte) (paymentFields, bool) {
	// Values go to local arrays, not through pointers into a struct, which
	// escape analysis would take for the heap, and raw with them.
	var strs [numStrMembers][]byte
	var nums [numMembers - numStrMembers]int64
	s := scanner{b: raw}
	s.ws()
	if !s.eat('{') {
		return paymentFields{}, false
	}
	var seen uint16
	for first := true; ; first = false {
		s.ws()
		if s.eat('}') {
			if !first && s.trailingComma {
				return paymentFields{}, false
			}
			break
		}
		if !first && !s.trailingComma {
			return paymentFields{}, false
		}
		key, _, ok := s.str()
		if !ok {
			return paymentFields{}, false
		}
		s.ws()
		if !s.eat(':') {
			return paymentFields{}, false
		}
		s.ws()
		k := member(key)
		if k >= 0 {
			if seen&(1<<k) != 0 {
				return paymentFields{}, false // a key given twice
			}
			seen |= 1 << k
		}
		switch {
		case k < 0:
			ok = s.skipScalar()
		case k < numStrMembers:
			var ascii bool
			strs[k], ascii, ok = s.str()
			ok = ok && ascii // every field of a payment is ASCII
		default:
			nums[k-numStrMembers], ok = s.int()
		}
		if !ok {
			return paymentFields{}, false
		}
		s.ws()
		s.trailingComma = s.eat(',')
	}
	s.ws()
	return paymentFields{
		cert: strs[mCert], anchor: strs[mAnchor], path: strs[mPath], bind: strs[mBind], tok: strs[mTok],
		vendor: strs[mVendor], product: strs[mProduct],
		v: nums[mV-numStrMembers], seg: nums[mSeg-numStrMembers], i: nums[mI-numStrMembers], p: nums[mP-numStrMembers],
	}, s.i == len(s.b)
}

// The members of a payment, the strings first, as decodeFields indexes them.
const (
	mCert = iota
	mAnchor
	mPath
	mBind
	mTok
	mVendor
	mProduct
	mV
	mSeg
	mI
	mP
	numMembers
	numStrMembers = mV
)

// member returns the index of key among the members, or -1.
func member(key []byte) int {
	switch string(key) {
	case "cert":
		return mCert
	case "anchor":
		return mAnchor
	case "path":
		return mPath
	case "bind":
		return mBind
	case "tok":
		return mTok
	case "vendor":
		return mVendor
	case "product":
		return mProduct
	case "v":
		return mV
	case "seg":
		return mSeg
	case "i":
		return mI
	case "p":
		return mP
	}
	return -1
}

type scanner struct {
	b             []byte
	i             int
	trailingComma bool
}

func (s *scanner) ws() {
	for s.i < len(s.b) && (s.b[s.i] == ' ' || s.b[s.i] == '\t' || s.b[s.i] == '\n' || s.b[s.i] == '\r') {
		s.i++
	}
}

func (s *scanner) eat(c byte) bool {
	if s.i < len(s.b) && s.b[s.i] == c {
		s.i++
		return true
	}
	return false
}

// str reads a JSON string and returns its value, a slice of the input
// (unescaped in place), and whether the value is all ASCII.
func (s *scanner) str() (v []byte, ascii, ok bool) {
	if !s.eat('"') {
		return nil, false, false
	}
	start := s.i
	ascii = true
	for {
		s.i = plainRun(s.b, s.i)
		if s.i == len(s.b) {
			return nil, false, false
		}
		switch c := s.b[s.i]; {
		case c == '"':
			s.i++
			return s.b[start : s.i-1], ascii, true
		case c == '\\':
			return s.unescape(start, ascii)
		case c < 0x20:
			return nil, false, false
		default: // a byte ≥ 0x80
			ascii = false
			s.i++
		}
	}
}

// unescape reads the rest of the string that started at start from its
// first backslash on, writing the value over its spelling: an escape is
// always longer than what it stands for, so the write position w never
// passes the read position s.i.
func (s *scanner) unescape(start int, ascii bool) ([]byte, bool, bool) {
	w := s.i
	for s.i < len(s.b) {
		c := s.b[s.i]
		switch {
		case c == '"':
			s.i++
			return s.b[start:w], ascii, true
		case c < 0x20:
			return nil, false, false
		case c != '\\':
			ascii = ascii && c < utf8.RuneSelf
			s.b[w] = c
			w++
			s.i++
			continue
		}
		if s.i+1 >= len(s.b) {
			return nil, false, false
		}
		e := s.b[s.i+1]
		s.i += 2
		var r rune
		switch e {
		case '"', '\\', '/':
			r = rune(e)
		case 'b':
			r = '\b'
		case 'f':
			r = '\f'
		case 'n':
			r = '\n'
		case 'r':
			r = '\r'
		case 't':
			r = '\t'
		case 'u':
			var ok bool
			if r, ok = s.hex4(); !ok {
				return nil, false, false
			}
			if utf16.IsSurrogate(r) {
				r = s.pair(r)
			}
		default:
			return nil, false, false
		}
		ascii = ascii && r < utf8.RuneSelf
		w += utf8.EncodeRune(s.b[w:], r)
	}
	return nil, false, false
}

// plainRun returns the index of the first byte from i on that a string
// cannot simply hold: '"', '\\', a control character or a byte ≥ 0x80
// (len(b) if none). It tests eight bytes at a time: a payment is mostly
// long base64url strings.
func plainRun(b []byte, i int) int {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	for ; i+8 <= len(b); i += 8 {
		x := binary.LittleEndian.Uint64(b[i:])
		quote, backslash := x^(ones*'"'), x^(ones*'\\')
		// The classic "has a zero byte" and "has a byte below n" tests:
		// never a miss, and a false hit only above a true one.
		special := x | (x-ones*0x20)&^x | (quote-ones)&^quote | (backslash-ones)&^backslash
		if special&highs != 0 {
			break
		}
	}
	for ; i < len(b); i++ {
		if c := b[i]; c == '"' || c == '\\' || c < 0x20 || c >= utf8.RuneSelf {
			break
		}
	}
	return i
}

// pair returns the character of surrogate r and the \uXXXX escape that
// follows, which it consumes, if they make a valid pair; else U+FFFD.
func (s *scanner) pair(r rune) rune {
	if s.i+1 < len(s.b) && s.b[s.i] == '\\' && s.b[s.i+1] == 'u' {
		save := s.i
		s.i += 2
		if lo, ok := s.hex4(); ok && utf16.DecodeRune(r, lo) != utf8.RuneError {
			return utf16.DecodeRune(r, lo)
		}
		s.i = save
	}
	return utf8.RuneError
}

func (s *scanner) hex4() (rune, bool) {
	if s.i+4 > len(s.b) {
		return 0, false
	}
	var r rune
	for _, c := range s.b[s.i : s.i+4] {
		switch {
		case '0' <= c && c <= '9':
			r = r<<4 | rune(c-'0')
		case 'a' <= c && c <= 'f':
			r = r<<4 | rune(c-'a'+10)
		case 'A' <= c && c <= 'F':
			r = r<<4 | rune(c-'A'+10)
		default:
			return 0, false
		}
	}
	s.i += 4
	return r, true
}

// int reads a JSON integer of at most 18 digits (no fraction, no exponent).
func (s *scanner) int() (int64, bool) {
	neg := s.eat('-')
	start := s.i
	var n int64
	for s.i < len(s.b) && '0' <= s.b[s.i] && s.b[s.i] <= '9' {
		n = n*10 + int64(s.b[s.i]-'0')
		s.i++
	}
	digits := s.i - start
	if digits == 0 || digits > 18 || (digits > 1 && s.b[start] == '0') {
		return 0, false
	}
	if s.i < len(s.b) && (s.b[s.i] == '.' || s.b[s.i] == 'e' || s.b[s.i] == 'E') {
		return 0, false
	}
	if neg {
		n = -n
	}
	return n, true
}

// skipScalar skips the value of an unknown member.
func (s *scanner) skipScalar() bool {
	if s.i >= len(s.b) {
		return false
	}
	switch c := s.b[s.i]; {
	case c == '"':
		_, _, ok := s.str()
		return ok
	case c == '-' || '0' <= c && c <= '9':
		return s.number()
	}
	return s.literal()
}

// literal skips true, false or null.
func (s *scanner) literal() bool {
	for _, lit := range [...]string{"true", "false", "null"} {
		if len(s.b)-s.i >= len(lit) && string(s.b[s.i:s.i+len(lit)]) == lit {
			s.i += len(lit)
			return true
		}
	}
	return false
}

// number skips a JSON number: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?
func (s *scanner) number() bool {
	s.eat('-')
	if !s.eat('0') && s.digits() == 0 { // a leading zero stands alone
		return false
	}
	if s.eat('.') && s.digits() == 0 {
		return false
	}
	if s.eat('e') || s.eat('E') {
		if !s.eat('+') {
			s.eat('-')
		}
		if s.digits() == 0 {
			return false
		}
	}
	return true
}

func (s *scanner) digits() int {
	start := s.i
	for s.i < len(s.b) && '0' <= s.b[s.i] && s.b[s.i] <= '9' {
		s.i++
	}
	return s.i - start
}
