package paywall

import (
	"io"
	"net/http"
	"slices"
	"strings"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"golang.org/x/net/http/httpguts"
)

// privateWriter keeps paid content out of shared caches: whatever the
// upstream says, a response served on a grant or a payment is marked
// private when its header goes out. The upstream's max-age still applies
// to the reader's own browser.
type privateWriter struct {
	caddyhttp.ResponseWriterWrapper
	wrote bool
	// answered, if set, sees the final status before the header goes out.
	answered func(status int)
	// cacheControl holds the response's Cache-Control field: a value the
	// response owns (handlers may rewrite one in place), without an
	// allocation of its own.
	cacheControl [1]string
}

func private(w http.ResponseWriter) *privateWriter {
	return &privateWriter{ResponseWriterWrapper: caddyhttp.ResponseWriterWrapper{ResponseWriter: w}}
}

func (p *privateWriter) WriteHeader(status int) {
	if !p.wrote && (status < 100 || status > 199) {
		p.wrote = true
		if p.answered != nil {
			p.answered(status)
		}
		h := p.Header()
		p.cacheControl[0] = privateCacheControl(h.Values("Cache-Control"))
		h["Cache-Control"] = p.cacheControl[:]
	}
	p.ResponseWriterWrapper.WriteHeader(status)
}

func (p *privateWriter) Write(b []byte) (int, error) {
	if !p.wrote {
		p.WriteHeader(http.StatusOK)
	}
	return p.ResponseWriterWrapper.Write(b)
}

func (p *privateWriter) ReadFrom(r io.Reader) (int64, error) {
	if !p.wrote {
		p.WriteHeader(http.StatusOK)
	}
	return p.ResponseWriterWrapper.ReadFrom(r)
}

// makePrivate rewrites Cache-Control to "private", keeping only the
// directives that concern the reader's own cache.
func makePrivate(h http.Header) {
	h.Set("Cache-Control", privateCacheControl(h.Values("Cache-Control")))
}

// privateDirectives are the Cache-Control directives a private answer
// keeps: they concern the reader's own cache.
var privateDirectives = [...]string{"max-age", "no-cache", "no-store", "must-revalidate", "no-transform", "immutable"}

// privateCacheControl is the value of Cache-Control fields vals made
// private: "private" and the directives among vals that privateDirectives
// name (in any ASCII case). It allocates only when it keeps a directive.
func privateCacheControl(vals []string) string {
	var b strings.Builder
	for _, v := range vals {
		for v != "" {
			var d string
			d, v, _ = strings.Cut(v, ",")
			d = strings.TrimSpace(d)
			name, _, _ := strings.Cut(d, "=")
			if !slices.ContainsFunc(privateDirectives[:], func(k string) bool { return equalASCIIFold(name, k) }) {
				continue
			}
			if b.Len() == 0 {
				// Room for this field's other directives too: none kept
				// is shorter than the ", " it is given.
				b.Grow(len("private, ") + len(d) + 2*len(v))
				b.WriteString("private")
			}
			b.WriteString(", ")
			b.WriteString(d)
		}
	}
	if b.Len() == 0 {
		return "private"
	}
	return b.String()
}

// equalASCIIFold reports whether a and b are equal up to the case of
// ASCII letters (strings.EqualFold would also take `ſ` for `s`).
func equalASCIIFold(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		if lowerASCII(a[i]) != lowerASCII(b[i]) {
			return false
		}
	}
	return true
}

func lowerASCII(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// isPreflight reports whether r is a CORS preflight request.
func isPreflight(r *http.Request) bool {
	return r.Method == http.MethodOptions && r.Header.Get("Origin") != "" &&
		r.Header.Get("Access-Control-Request-Method") != ""
}

// Access-Control headers of the gateway's own preflight answer.
const (
	corsAllowMethods  = "GET, HEAD, POST"
	corsAllowHeaders  = "Authorization"
	corsExposeHeaders = "WWW-Authenticate, Payment-Receipt, Payment-Error"
	corsMaxAge        = "600"
)

// preflight answers a CORS preflight to a path the gateway may price, so
// that nothing of the upstream (header, status or connection) is given out
// before payment. The answer is fixed: any origin may send GET, HEAD or POST
// with an Authorization header (a PayWord payment or a Bearer grant), but
// without credentials, so no other site can spend the reader's grant cookie;
// a site that needs other CORS rules lists the path under free.
func preflight(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Access-Control-Allow-Origin", "*")
	h.Set("Access-Control-Allow-Methods", corsAllowMethods)
	h.Set("Access-Control-Allow-Headers", corsAllowHeaders)
	h.Set("Access-Control-Expose-Headers", corsExposeHeaders)
	h.Set("Access-Control-Max-Age", corsMaxAge)
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusNoContent)
}

// isUpgrade reports whether r asks to switch protocols or open a tunnel: an
// answer to it is a connection, which cannot be held back until a price is
// known.
func isUpgrade(r *http.Request) bool {
	return r.Method == http.MethodConnect || r.Header.Get("Upgrade") != "" ||
		httpguts.HeaderValuesContainsToken(r.Header["Connection"], "upgrade")
}

var _ http.ResponseWriter = (*privateWriter)(nil)
