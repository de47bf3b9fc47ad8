package payword

import (
	"strconv"
	"strings"
)

// Challenge is the 402 response's `WWW-Authenticate: PayWord …` header:
// who is asking, for what, at what price, and where tokens are sold.
type Challenge struct {
	Realm   string
	Vendor  string
	Price   uint32 // tokens
	Product string
	Agent   string // the agent's base URL
}

const (
	// MaxChallengeHeader bounds a challenge header value.
	MaxChallengeHeader = 4096
	maxChallengeParams = 16
)

// String renders the header value (quoted-string values, RFC 9110 §11).
func (c Challenge) String() string {
	var b strings.Builder
	b.WriteString(Scheme)
	for i, kv := range [...][2]string{
		{"realm", c.Realm}, {"vendor", c.Vendor},
		{"price", strconv.FormatUint(uint64(c.Price), 10)},
		{"product", c.Product}, {"agent", c.Agent},
	} {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(" " + kv[0] + `="`)
		for j := 0; j < len(kv[1]); j++ {
			switch ch := kv[1][j]; {
			case ch == '"' || ch == '\\':
				b.WriteByte('\\')
				b.WriteByte(ch)
			case isControl(ch):
				b.WriteByte(' ') // never a line break into a header
			default:
				b.WriteByte(ch)
			}
		}
		b.WriteByte('"')
	}
	return b.String()
}

// ParseChallenge parses one PayWord challenge. Parameter names are
// case-insensitive, unknown ones are ignored for forward compatibility, and
// duplicates are refused. vendor, price and product are required.
func ParseChallenge(h string) (Challenge, error) {
	var c Challenge
	if len(h) > MaxChallengeHeader {
		return c, errorf(ErrTooLarge, "challenge of %d bytes", len(h))
	}
	scheme, rest, _ := strings.Cut(h, " ")
	if !strings.EqualFold(scheme, Scheme) {
		return c, errorf(ErrMalformed, "not a PayWord challenge")
	}
	seen := map[string]bool{}
	price := ""
	for n := 0; ; n++ {
		rest = strings.TrimLeft(rest, " \t")
		if rest == "" {
			break
		}
		if n == maxChallengeParams {
			return c, errorf(ErrTooLarge, "more than %d challenge parameters", maxChallengeParams)
		}
		name, value, tail, err := authParam(rest)
		if err != nil {
			return c, err
		}
		name = strings.ToLower(name)
		if seen[name] {
			return c, errorf(ErrMalformed, "parameter %q given twice", name)
		}
		seen[name] = true
		switch name {
		case "realm":
			c.Realm = value
		case "vendor":
			c.Vendor = value
		case "price":
			price = value
		case "product":
			c.Product = value
		case "agent":
			c.Agent = value
		}
		rest = strings.TrimLeft(tail, " \t")
		if rest != "" {
			if rest[0] != ',' {
				return c, errorf(ErrMalformed, "expected ',' between challenge parameters")
			}
			rest = rest[1:]
		}
	}
	p, err := strconv.ParseUint(price, 10, 32)
	switch {
	case err != nil || p == 0 || p > MaxSegmentLen:
		return c, errorf(ErrMalformed, "price must be a whole number of tokens in 1..%d", MaxSegmentLen)
	case !ValidID(c.Vendor):
		return c, errorf(ErrMalformed, "invalid vendor id")
	case !ValidProduct(c.Product):
		return c, errorf(ErrMalformed, "invalid product id")
	}
	c.Price = uint32(p)
	return c, nil
}

// authParam reads `name = ( token / quoted-string )` from the start of s.
func authParam(s string) (name, value, rest string, err error) {
	i := 0
	for i < len(s) && isTokenChar(s[i]) {
		i++
	}
	if i == 0 {
		return "", "", "", errorf(ErrMalformed, "expected a parameter name")
	}
	name, s = s[:i], strings.TrimLeft(s[i:], " \t")
	if s == "" || s[0] != '=' {
		return "", "", "", errorf(ErrMalformed, "expected '=' after %q", name)
	}
	s = strings.TrimLeft(s[1:], " \t")
	if s != "" && s[0] == '"' {
		var b strings.Builder
		for i = 1; i < len(s); i++ {
			switch ch := s[i]; {
			case ch == '"':
				return name, b.String(), s[i+1:], nil
			case ch == '\\' && i+1 < len(s) && !isControl(s[i+1]):
				i++
				b.WriteByte(s[i])
			case isControl(ch):
				return "", "", "", errorf(ErrMalformed, "control character in %q", name)
			default:
				b.WriteByte(ch)
			}
		}
		return "", "", "", errorf(ErrMalformed, "unterminated quoted string in %q", name)
	}
	i = 0
	for i < len(s) && isTokenChar(s[i]) {
		i++
	}
	if i == 0 {
		return "", "", "", errorf(ErrMalformed, "empty value for %q", name)
	}
	return name, s[:i], s[i:], nil
}

// isControl reports whether c is a control character other than HTAB, which
// no quoted-string may carry, escaped or not (RFC 9110 §5.6.4).
func isControl(c byte) bool { return c < 0x20 && c != '\t' || c == 0x7f }

// isTokenChar reports whether c is an RFC 9110 tchar.
func isTokenChar(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}
