package payword

import (
	"bytes"
	"encoding/json"
	"net/netip"
	"slices"
	"strconv"
	"strings"
)

// A vendor's origins are the web origins (scheme://host[:port]) its sites
// are served from. The agent publishes them in a signed document, and a
// wallet pays a challenge only on an origin its vendor published: a site
// cannot make a wallet pay another vendor (docs/protocol.md §9).

const (
	// MaxOrigins bounds the origins of one vendor.
	MaxOrigins = 16
	// MaxOriginLen bounds one origin as written (before canonicalisation).
	MaxOriginLen = 300
	// MaxOriginsDoc bounds a signed origins document on the wire.
	MaxOriginsDoc = 16 << 10
	// OriginsKind names the document, so that no other signed document (a
	// CRL page) can be taken for one.
	OriginsKind = "hashwall/vendor-origins/v1"
)

// ParseOrigin validates an origin and returns its canonical form:
// lower-case http or https scheme; a lower-case ASCII DNS name (IDNs in
// their xn-- form), a dotted-quad IPv4 address or a bracketed IPv6 address;
// the port only when it is not the scheme's default. One trailing "/" is
// tolerated; any other path, a query, a fragment, userinfo, percent-escapes,
// white space or non-ASCII bytes are refused.
func ParseOrigin(s string) (string, error) {
	if len(s) > MaxOriginLen {
		return "", errorf(ErrTooLarge, "origin of %d bytes (at most %d)", len(s), MaxOriginLen)
	}
	scheme, rest, ok := strings.Cut(s, "://")
	if !ok {
		return "", errorf(ErrMalformed, "origin %q is not scheme://host[:port]", s)
	}
	scheme = strings.ToLower(scheme)
	defPort := ""
	switch scheme {
	case "https":
		defPort = "443"
	case "http":
		defPort = "80"
	default:
		return "", errorf(ErrMalformed, "origin %q: scheme must be http or https", s)
	}
	rest = strings.TrimSuffix(rest, "/")
	for i := 0; i < len(rest); i++ {
		c := rest[i]
		if c <= ' ' || c >= 0x7f {
			return "", errorf(ErrMalformed, "origin %q: only ASCII host names (write an IDN in its xn-- form)", s)
		}
		switch c {
		case '/', '?', '#':
			return "", errorf(ErrMalformed, "origin %q has a path, query or fragment", s)
		case '@':
			return "", errorf(ErrMalformed, "origin %q has userinfo", s)
		case '%', '\\':
			return "", errorf(ErrMalformed, "origin %q has an escape", s)
		}
	}
	host, port := rest, ""
	if strings.HasPrefix(rest, "[") {
		end := strings.IndexByte(rest, ']')
		if end < 0 {
			return "", errorf(ErrMalformed, "origin %q: unclosed IPv6 literal", s)
		}
		host = rest[:end+1]
		if after := rest[end+1:]; after != "" {
			p, ok := strings.CutPrefix(after, ":")
			if !ok {
				return "", errorf(ErrMalformed, "origin %q: junk after the IPv6 literal", s)
			}
			port = p
		}
		a, err := netip.ParseAddr(host[1 : len(host)-1])
		if err != nil || !a.Is6() || a.Zone() != "" {
			return "", errorf(ErrMalformed, "origin %q: bad IPv6 literal", s)
		}
		host = "[" + a.String() + "]"
	} else {
		if i := strings.LastIndexByte(rest, ':'); i >= 0 {
			host, port = rest[:i], rest[i+1:]
		}
		var err error
		if host, err = canonicalHost(host); err != nil {
			return "", errorf(ErrMalformed, "origin %q: %v", s, err)
		}
	}
	if port != "" || strings.HasSuffix(rest, ":") {
		n, err := strconv.ParseUint(port, 10, 16)
		if err != nil || n == 0 || port[0] == '0' || len(port) > 5 {
			return "", errorf(ErrMalformed, "origin %q: port must be 1-65535", s)
		}
		if port == defPort {
			port = ""
		}
	}
	out := scheme + "://" + host
	if port != "" {
		out += ":" + port
	}
	return out, nil
}

type hostError string

func (e hostError) Error() string { return string(e) }

// canonicalHost lower-cases a DNS name or checks an IPv4 address. A name
// whose last label is numeric must be a whole dotted quad: browsers read
// "1.2.3" or "0x7f.1" as addresses, so no such name is ambiguous here.
func canonicalHost(h string) (string, error) {
	h = strings.ToLower(h)
	if h == "" || len(h) > 253 {
		return "", hostError("host must be 1-253 characters")
	}
	labels := strings.Split(h, ".")
	last := labels[len(labels)-1]
	if last != "" && (last[0] >= '0' && last[0] <= '9' || strings.HasPrefix(last, "0x")) && strings.Trim(last, "0123456789abcdefx") == "" {
		a, err := netip.ParseAddr(h)
		if err != nil || !a.Is4() {
			return "", hostError("numeric host is not a dotted-quad IPv4 address")
		}
		return a.String(), nil
	}
	for _, l := range labels {
		if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return "", hostError("host labels must be 1-63 characters, not starting or ending with '-'")
		}
		for i := 0; i < len(l); i++ {
			if c := l[i]; !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-') {
				return "", hostError("host names are letters, digits, '-' and '.'")
			}
		}
	}
	return h, nil
}

// CanonicalOrigins validates a vendor's list: at most MaxOrigins, each
// canonicalised; duplicates are merged and the result sorted.
func CanonicalOrigins(list []string) ([]string, error) {
	if len(list) > MaxOrigins {
		return nil, errorf(ErrTooLarge, "%d origins (at most %d)", len(list), MaxOrigins)
	}
	out := make([]string, 0, len(list))
	for _, o := range list {
		c, err := ParseOrigin(o)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// VendorOrigins is the body of the agent's signed origins document of one
// vendor.
type VendorOrigins struct {
	Kind    string   `json:"kind"` // OriginsKind
	Vendor  string   `json:"vendor"`
	Origins []string `json:"origins"` // canonical, sorted
	Time    int64    `json:"time"`    // signing time, Unix seconds
	Expires int64    `json:"expires"` // not to be used from then on
}

// Allows reports whether origin (canonical) is one of the vendor's.
func (d *VendorOrigins) Allows(origin string) bool {
	return slices.Contains(d.Origins, origin)
}

// OpenVendorOrigins opens a signed origins document and checks its shape:
// its kind, a valid vendor id, at most MaxOrigins origins each in canonical
// form, and Time < Expires. Whether it is fresh is the caller's to check
// against its clock.
func OpenVendorOrigins(raw []byte, keys KeySet) (*VendorOrigins, error) {
	body, err := openSigned(raw, MaxOriginsDoc, "origins document", keys)
	if err != nil {
		return nil, err
	}
	var d VendorOrigins
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if !shallowJSON(body, 2) || dec.Decode(&d) != nil || dec.More() {
		return nil, errorf(ErrMalformed, "origins body is not JSON of the right shape")
	}
	if d.Kind != OriginsKind || !ValidID(d.Vendor) || d.Time <= 0 || d.Expires <= d.Time {
		return nil, errorf(ErrMalformed, "origins body: wrong kind, vendor or times")
	}
	if len(d.Origins) > MaxOrigins {
		return nil, errorf(ErrTooLarge, "%d origins", len(d.Origins))
	}
	for _, o := range d.Origins {
		if c, err := ParseOrigin(o); err != nil || c != o {
			return nil, errorf(ErrMalformed, "origin %q is not canonical", o)
		}
	}
	return &d, nil
}
