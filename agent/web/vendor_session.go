package web

import (
	"net/http"
	"time"
)

// The vendors' pages have their own session cookie, beside the reader's:
// one browser may hold both, and neither session ever stands for the
// other. Same attributes and __Host- prefix as the reader's (cookie.go).
const vendorCookie = "hw_vendor"

// VendorSessionToken is the vendor session cookie's value, "" if none.
func VendorSessionToken(r *http.Request, secure bool) string { return cookie(r, vendorCookie, secure) }

// SetVendorSession sets the vendor session cookie for ttl.
func SetVendorSession(w http.ResponseWriter, token string, ttl time.Duration, secure bool) {
	setCookie(w, vendorCookie, token, ttl, secure)
}

// ClearVendorSession removes the vendor session cookie.
func ClearVendorSession(w http.ResponseWriter, secure bool) {
	setCookie(w, vendorCookie, "", -1, secure)
}

// VendorCSRFSecret is the secret of the vendor pages' forms: the vendor
// session cookie's value, else the anonymous pre-session cookie's (the
// log-in form), as CSRFSecret.
func VendorCSRFSecret(w http.ResponseWriter, r *http.Request, secure, create bool) string {
	return csrfSecret(w, r, vendorCookie, secure, create)
}
