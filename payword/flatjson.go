package payword

import (
	"unicode/utf16"
	"unicode/utf8"
)

// decodeFlat decodes a payment's JSON: one object whose members are strings
// and integers. It is the hot path of every payment, and a hand-written
// scanner costs a fraction of encoding/json's reflection. It is stricter
// than encoding/json: keys match exactly (no case folding), and a key given
// twice, a non-ASCII value, a fraction, an exponent, a nested value or
// trailing data are refused. Unknown members (strings, numbers, true, false,
// null) are skipped.
func decodeFlat(raw []byte, j *paymentJSON) bool {
	s := scanner{b: raw}
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
			if !ok || !ascii(v) { // every field of a payment is ASCII
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

type scanner struct {
	b             []byte
	i             int
	buf           []byte
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

// str reads a JSON string. Without escapes it returns a slice of the input;
// with them, a decoded copy.
func (s *scanner) str() ([]byte, bool) {
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

func (s *scanner) escaped(start int) ([]byte, bool) {
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
				r2 := rune(utf8.RuneError)
				if s.i+1 < len(s.b) && s.b[s.i] == '\\' && s.b[s.i+1] == 'u' {
					save := s.i
					s.i += 2
					if lo, ok := s.hex4(); ok && utf16.DecodeRune(r, lo) != utf8.RuneError {
						r2 = utf16.DecodeRune(r, lo)
					} else {
						s.i = save
					}
				}
				r = r2
			}
			out = utf8.AppendRune(out, r)
		default:
			return nil, false
		}
	}
	return nil, false
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
		_, ok := s.str()
		return ok
	case c == '-' || '0' <= c && c <= '9':
		return s.number()
	}
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

func ascii(b []byte) bool {
	for _, c := range b {
		if c >= 0x80 {
			return false
		}
	}
	return true
}
