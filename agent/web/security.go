package web

import (
	"net/http"
	"net/url"
)

// ContentSecurityPolicy forbids every script, inline style, plugin,
// foreign form target and framing: pages are HTML and one style sheet.
const ContentSecurityPolicy = "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// PolicyPostingTo is the policy of the page that hands a payment to a
// vendor's site: the Content-Security-Policy, plus this site's own scripts
// (the one that sends the form) and forms posting to origin only. origin
// must be canonical (payword.ParseOrigin), so it holds no ';' or space.
func PolicyPostingTo(origin string) string {
	return "default-src 'none'; style-src 'self'; img-src 'self' data:; script-src 'self'; form-action " + origin +
		"; frame-ancestors 'none'; base-uri 'none'"
}

// Headers sets the security headers of every response of h. Pages are
// personal (a balance, a CSRF token): none is stored by any cache; the
// static files set their own Cache-Control.
func Headers(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Content-Security-Policy", ContentSecurityPolicy)
		hd.Set("Referrer-Policy", "no-referrer")
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("X-Frame-Options", "DENY") // for browsers without frame-ancestors
		hd.Set("Cross-Origin-Opener-Policy", "same-origin")
		hd.Set("Cache-Control", "no-store")
		h.ServeHTTP(w, r)
	})
}

// SameOrigin reports whether a state-changing request comes from a page of
// this site. A browser says so in Sec-Fetch-Site, which pages cannot forge:
// only "same-origin" passes. Its Origin is then "null", since our pages'
// Referrer-Policy is no-referrer (the Fetch standard's rule for POSTs), or
// the site's own. Without Sec-Fetch-Site (older browsers), the Origin
// header, or the Referer when Origin is absent, must be the site's own
// origin; a request with neither (not a browser's form) is let through:
// the CSRF token still guards it. secure is whether the request came over
// TLS; an https Origin of the same host is accepted also over plain HTTP,
// as a TLS-terminating proxy in front delivers it.
func SameOrigin(r *http.Request, secure bool) bool {
	o := r.Header.Get("Origin")
	if site := r.Header.Get("Sec-Fetch-Site"); site != "" {
		return site == "same-origin" && (o == "" || o == "null" || ownOrigin(o, r.Host, secure))
	}
	if o == "" {
		ref := r.Header.Get("Referer")
		if ref == "" {
			return true
		}
		u, err := url.Parse(ref)
		if err != nil || u.Host == "" {
			return false
		}
		o = u.Scheme + "://" + u.Host
	}
	return ownOrigin(o, r.Host, secure)
}

func ownOrigin(o, host string, secure bool) bool {
	return o == "https://"+host || !secure && o == "http://"+host
}
