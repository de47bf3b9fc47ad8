package paywall

import (
	"io"
	"net/http"
	"strings"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// privateWriter keeps paid content out of shared caches: whatever the
// upstream says, a response served on a grant or a payment is marked
// private when its header goes out. The upstream's max-age still applies
// to the reader's own browser.
type privateWriter struct {
	caddyhttp.ResponseWriterWrapper
	wrote bool
}

func private(w http.ResponseWriter) *privateWriter {
	return &privateWriter{ResponseWriterWrapper: caddyhttp.ResponseWriterWrapper{ResponseWriter: w}}
}

func (p *privateWriter) WriteHeader(status int) {
	if !p.wrote && (status < 100 || status > 199) {
		p.wrote = true
		makePrivate(p.Header())
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
	keep := []string{"private"}
	for _, v := range h.Values("Cache-Control") {
		for _, d := range strings.Split(v, ",") {
			d = strings.TrimSpace(d)
			name, _, _ := strings.Cut(strings.ToLower(d), "=")
			switch name {
			case "max-age", "no-cache", "no-store", "must-revalidate", "no-transform", "immutable":
				keep = append(keep, d)
			}
		}
	}
	h.Set("Cache-Control", strings.Join(keep, ", "))
}

// isPreflight reports whether r is a CORS preflight request.
func isPreflight(r *http.Request) bool {
	return r.Method == http.MethodOptions && r.Header.Get("Origin") != "" &&
		r.Header.Get("Access-Control-Request-Method") != ""
}

// bodilessWriter passes a response's status and header but none of its
// body, whatever the handlers after the paywall write.
type bodilessWriter struct {
	caddyhttp.ResponseWriterWrapper
	wrote bool
}

func bodiless(w http.ResponseWriter) *bodilessWriter {
	return &bodilessWriter{ResponseWriterWrapper: caddyhttp.ResponseWriterWrapper{ResponseWriter: w}}
}

func (b *bodilessWriter) WriteHeader(status int) {
	if status >= 200 && !b.wrote {
		b.wrote = true
		h := b.Header()
		h.Del("Transfer-Encoding")
		h.Del("Content-Length")
		if status != http.StatusNoContent && status != http.StatusNotModified {
			h.Set("Content-Length", "0")
		}
	}
	b.ResponseWriterWrapper.WriteHeader(status)
}

func (b *bodilessWriter) Write(p []byte) (int, error) {
	if !b.wrote {
		b.WriteHeader(http.StatusOK)
	}
	return len(p), nil
}

func (b *bodilessWriter) ReadFrom(r io.Reader) (int64, error) {
	if !b.wrote {
		b.WriteHeader(http.StatusOK)
	}
	return io.Copy(io.Discard, r)
}

var (
	_ http.ResponseWriter = (*privateWriter)(nil)
	_ http.ResponseWriter = (*bodilessWriter)(nil)
)
