package paywall

import (
	"errors"
	"fmt"
	"net/url"
	"path"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/caddyserver/caddy/v2"
	"golang.org/x/text/cases"
	"golang.org/x/text/language"
	"golang.org/x/text/unicode/norm"

	"github.com/hashwall/hashwall/payword"
)

// Rule prices the paths that match Pattern.
//
// Patterns are matched case-insensitively against the cleaned, decoded
// request path. A `*` matches any run of characters within one path segment,
// except a `*` at the very end of the pattern, which also matches deeper
// segments: `/articles/*` prices `/articles/a/b` too, so a nested path is
// never free by accident.
type Rule struct {
	Pattern string `json:"pattern"`
	// Price in tokens; at most MaxPrice.
	Price uint32 `json:"price"`
	// Scope makes the product a path prefix instead of the single path: a
	// pattern ending in `/` (e.g. `/issues/*/`), matched against the
	// request path's prefixes. One grant then covers the whole prefix.
	Scope string `json:"scope,omitempty"`
	// TTL of the grant; the handler's default when zero.
	TTL caddy.Duration `json:"ttl,omitempty"`
	// Mode of reporting; the handler's default when empty.
	Mode string `json:"mode,omitempty"`
}

// Reporting modes (docs/protocol.md §8: when a claim reaches the agent).
const (
	ModeAlmostOnline = "almost_online"
	ModeBatch        = "batch"
	ModeOnline       = "online"
)

// MaxPrice is the highest price a rule may set: a payment spends tokens of
// one segment, and the gateway accepts segments of up to
// payword.MaxSegmentLen tokens. Prices above the wallet's usual segment
// length (payword.DefaultSegmentLen) are warned about at provision.
const MaxPrice = payword.MaxSegmentLen

// Bounds on configuration an operator (or a hostile Caddyfile) controls.
const (
	maxPatternLen = 256
	maxStars      = 8
	maxRules      = 1024
	// maxPathLen bounds the request paths the handler matches; a product is
	// at most payword.MaxProductLen bytes once escaped.
	maxPathLen = 2048
)

func validMode(m string) bool {
	return m == "" || m == ModeAlmostOnline || m == ModeBatch || m == ModeOnline
}

// checkPattern validates a path pattern (for prices, scopes and free paths).
func checkPattern(p string) error {
	switch {
	case p == "" || p[0] != '/':
		return fmt.Errorf("pattern %q must start with /", p)
	case len(p) > maxPatternLen:
		return fmt.Errorf("pattern longer than %d bytes", maxPatternLen)
	case strings.Count(p, "*") > maxStars:
		return fmt.Errorf("pattern %q has more than %d wildcards", p, maxStars)
	}
	for i := 0; i < len(p); i++ {
		if c := p[i]; c <= 0x20 || c >= 0x7f || strings.IndexByte(`%;\?#[]`, c) >= 0 {
			return fmt.Errorf("pattern %q: character %q not allowed", p, c)
		}
	}
	for _, seg := range strings.Split(p[1:], "/") {
		if seg == "." || seg == ".." || strings.HasSuffix(seg, ".") && seg != "" {
			return fmt.Errorf("pattern %q: segment %q would never match a clean path", p, seg)
		}
	}
	if strings.Contains(p, "//") {
		return fmt.Errorf("pattern %q: empty segment", p)
	}
	return nil
}

// match reports whether the lower-case pattern matches s in full. A `*`
// matches within one segment; a final `*` matches the rest of s. Patterns
// hold at most maxStars stars, so backtracking is bounded.
func match(pattern, s string) bool { return matchSlash(pattern, s, false) }

// matchSlash is match against s followed by a `/` when slash is set: a
// path's trailing-slash form, matched without building it.
func matchSlash(pattern, s string, slash bool) bool {
	lit, rest, star := strings.Cut(pattern, "*")
	switch n := len(lit); {
	case n <= len(s) && s[:n] == lit:
		s = s[n:]
	case slash && n == len(s)+1 && lit[:len(s)] == s && lit[len(s)] == '/':
		s, slash = "", false
	default:
		return false
	}
	if !star {
		return s == "" && !slash
	}
	if rest == "" {
		return true // final star: anything, across segments
	}
	// The star ends at the segment's end: the first `/` of s, or the one
	// after it (at len(s)) when slash is set.
	end := strings.IndexByte(s, '/')
	if end < 0 {
		end = len(s)
	}
	for k := 0; k <= end; k++ {
		if matchSlash(rest, s[k:], slash) {
			return true
		}
	}
	return false
}

// scopePrefix returns the length of the shortest prefix of path (ending in
// `/`) that the scope pattern matches, or 0 if none does; with slash, path
// is followed by a `/`, so the whole path and its slash are a prefix too.
func scopePrefix(scope, lower string, slash bool) int {
	for i := 1; i < len(lower); i++ {
		if lower[i] == '/' && match(scope, lower[:i+1]) {
			return i + 1
		}
	}
	if slash && len(lower) > 0 && matchSlash(scope, lower, true) {
		return len(lower) + 1
	}
	return 0
}

var errAmbiguousPath = errors.New("ambiguous request path")

// canonicalPath returns the path the handler prices, and the same in lower
// case for matching. It refuses paths that an upstream could read
// differently from the gateway: encoded slashes and backslashes, anything
// still percent-encoded after one decoding (double encoding), path
// parameters, control characters, segments with trailing dots or spaces
// (which some servers strip), Windows stream names and 8.3 short names, and
// letters an upstream may normalise into different ASCII (see
// unicodeAmbiguous). `..`, `.`, duplicate and trailing slashes are cleaned;
// the handler then forwards the cleaned path, so the upstream serves
// exactly what was priced.
func canonicalPath(u *url.URL) (clean, lower string, err error) {
	p := u.Path
	if len(p) > maxPathLen || len(u.RawPath) > maxPathLen {
		return "", "", fmt.Errorf("%w: longer than %d bytes", errAmbiguousPath, maxPathLen)
	}
	if p == "" || p[0] != '/' {
		return "", "", fmt.Errorf("%w: not absolute", errAmbiguousPath)
	}
	raw := strings.ToLower(u.RawPath)
	if strings.Contains(raw, "%2f") || strings.Contains(raw, "%5c") || strings.Contains(raw, "%00") {
		return "", "", fmt.Errorf("%w: encoded separator", errAmbiguousPath)
	}
	ascii := true
	for i := 0; i < len(p); i++ {
		switch c := p[i]; {
		case c < 0x20 || c == 0x7f:
			return "", "", fmt.Errorf("%w: control character", errAmbiguousPath)
		case c == '%':
			return "", "", fmt.Errorf("%w: encoded twice", errAmbiguousPath)
		case c == '\\' || c == ';':
			return "", "", fmt.Errorf("%w: %q in path", errAmbiguousPath, c)
		case c >= 0x80:
			ascii = false
		}
	}
	if !ascii {
		if err := unicodeAmbiguous(p); err != nil {
			return "", "", err
		}
	}
	clean = p
	if !isClean(p) {
		clean = path.Clean(p)
	}
	seg := 1 // start of the current segment
	for i := 1; i < len(clean); i++ {
		if (i+1 == len(clean) || clean[i+1] == '/') && (clean[i] == '.' || clean[i] == ' ') {
			return "", "", fmt.Errorf("%w: segment ends in a dot or space", errAmbiguousPath)
		}
		switch clean[i] {
		case '/':
			seg = i + 1
		case ':':
			// NTFS alternate data streams: `x::$DATA` is served as `x`.
			if strings.HasPrefix(clean[i:], "::$") || strings.HasPrefix(clean[i:], ":$") {
				return "", "", fmt.Errorf("%w: stream name", errAmbiguousPath)
			}
		case '~':
			// 8.3 short names: `ARTICL~1` may be served as `articles`.
			if n := i - seg; n >= 1 && n <= 6 && i+1 < len(clean) && '0' <= clean[i+1] && clean[i+1] <= '9' {
				return "", "", fmt.Errorf("%w: short file name", errAmbiguousPath)
			}
		}
	}
	return clean, asciiLower(clean), nil
}

// unicodeAmbiguous refuses a decoded non-ASCII path an upstream could read
// as another ASCII spelling: rules match ASCII only, so such a spelling
// could fall outside the rule that prices the page it is served as. It
// refuses paths that Unicode NFKC normalisation would change (fullwidth
// forms such as `／` and `ｋ`, ligatures such as `ﬁ`, the Kelvin sign, `ſ`,
// and decomposed letters like `e` + U+0301), and letters whose case
// mappings or case folding contain an ASCII letter (`ı` → `I`, `İ` → `i`,
// `ß` → `ss`, `ŉ` → `ʼn`), invisible characters (format characters such as
// U+200B, variation selectors, non-ASCII spaces), and combining marks
// placed on an ASCII character.
func unicodeAmbiguous(p string) error {
	if !utf8.ValidString(p) {
		return fmt.Errorf("%w: not UTF-8", errAmbiguousPath)
	}
	if !norm.NFKC.IsNormalString(p) {
		return fmt.Errorf("%w: not in Unicode NFKC form", errAmbiguousPath)
	}
	folds := asciiFolding()
	prev := rune('/')
	for _, r := range p {
		if _, bad := folds[r]; bad {
			return fmt.Errorf("%w: %q folds to ASCII", errAmbiguousPath, r)
		}
		switch {
		case r >= 0x80 && unicode.In(r, unicode.Cf, unicode.Variation_Selector, unicode.Other_Default_Ignorable_Code_Point, unicode.White_Space):
			// Invisible: NFKC_Casefold and IDNA mappings drop them.
			return fmt.Errorf("%w: invisible character %U", errAmbiguousPath, r)
		case prev < 0x80 && unicode.In(r, unicode.Mn, unicode.Me):
			// A mark on an ASCII letter: accent stripping gives the letter.
			return fmt.Errorf("%w: mark %U on an ASCII character", errAmbiguousPath, r)
		}
		prev = r
	}
	return nil
}

var (
	asciiFoldsOnce sync.Once
	asciiFolds     map[rune]struct{}
)

// asciiFolding returns the non-ASCII runes whose simple case folding orbit
// (unicode.SimpleFold), simple or full case mappings (including the
// Turkish and Lithuanian ones) or full case folding hold an ASCII
// character. Computed once, on the first non-ASCII path (a few ms).
func asciiFolding() map[rune]struct{} {
	asciiFoldsOnce.Do(func() {
		asciiFolds = map[rune]struct{}{}
		hasASCII := func(s string) bool {
			for i := 0; i < len(s); i++ {
				if s[i] < 0x80 {
					return true
				}
			}
			return false
		}
		casers := []cases.Caser{
			cases.Fold(), cases.Upper(language.Und), cases.Lower(language.Und), cases.Title(language.Und),
			cases.Upper(language.Turkish), cases.Lower(language.Turkish), cases.Lower(language.Lithuanian),
		}
		// Every cased letter lies in the first two planes.
		for r := rune(0x80); r <= 0x1ffff; r++ {
			bad := false
			for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
				bad = bad || f < 0x80
			}
			bad = bad || unicode.ToUpper(r) < 0x80 || unicode.ToLower(r) < 0x80 || unicode.ToTitle(r) < 0x80
			if !bad && (unicode.IsUpper(r) || unicode.IsLower(r) || unicode.IsTitle(r) || unicode.SimpleFold(r) != r ||
				unicode.Is(unicode.Mn, r)) {
				s := string(r)
				for _, c := range casers {
					if hasASCII(c.String(s)) {
						bad = true
						break
					}
				}
			}
			if bad {
				asciiFolds[r] = struct{}{}
			}
		}
	})
	return asciiFolds
}

// canonicalQuery returns the query of an upstream-priced request in one
// spelling: decoded and re-encoded, parameters sorted by name (the order of
// a name's values kept). It refuses what servers split differently: `;`
// separators and malformed escapes.
func canonicalQuery(raw string) (string, error) {
	if raw == "" {
		return "", nil
	}
	if len(raw) > maxPathLen {
		return "", fmt.Errorf("%w: query longer than %d bytes", errAmbiguousPath, maxPathLen)
	}
	v, err := url.ParseQuery(raw)
	if err != nil {
		return "", fmt.Errorf("%w: query: %v", errAmbiguousPath, err)
	}
	q := v.Encode()
	if len(q) > maxPathLen { // encoding may triple a raw byte
		return "", fmt.Errorf("%w: query longer than %d bytes once encoded", errAmbiguousPath, maxPathLen)
	}
	return q, nil
}

// offer is what a priced request costs: the product it buys and its terms.
type offer struct {
	Product string // escaped path or path prefix; a payword product id
	Price   uint32
	TTL     time.Duration
	Mode    string
	Rule    string // the pricing rule's pattern as configured, or ruleUpstream; for the metrics
}

// ruleUpstream is the offer's rule on pages the upstream priced
// (upstream_price); no configured pattern can be it (patterns start with /).
const ruleUpstream = "upstream"

// productID escapes a clean path (or prefix) into a product id.
func productID(clean string) (string, bool) {
	id := clean
	for i := 0; i < len(clean); i++ {
		if c := clean[i]; c <= 0x20 || c >= 0x7f || c == '?' || c == '#' {
			id = (&url.URL{Path: clean}).EscapedPath()
			break
		}
	}
	return id, payword.ValidProduct(id)
}

// isClean reports whether path.Clean would leave p as it is (the common
// case, checked without allocating).
func isClean(p string) bool {
	if len(p) > 1 && p[len(p)-1] == '/' {
		return false
	}
	for i := 0; i < len(p); i++ {
		if p[i] != '/' {
			continue
		}
		rest := p[i+1:]
		if strings.HasPrefix(rest, "/") || rest == "." || rest == ".." ||
			strings.HasPrefix(rest, "./") || strings.HasPrefix(rest, "../") {
			return false
		}
	}
	return true
}

// asciiLower lower-cases ASCII letters only, so byte offsets stay aligned
// with the original path.
func asciiLower(s string) string {
	if strings.IndexFunc(s, func(r rune) bool { return 'A' <= r && r <= 'Z' }) < 0 {
		return s
	}
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}
