package web

import (
	"net/http"
	"time"
)

// SessionCookie is the session cookie of one kind of page beside the
// reader's: one browser may hold several, and no session ever stands for
// another. Same attributes and __Host- prefix as the reader's (cookie.go).
type SessionCookie string

// The vendors' and the operator's session cookies.
const (
	VendorSession SessionCookie = "hw_vendor"
	AdminSession  SessionCookie = "hw_admin"
)

// Token is the cookie's value, "" if none.
func (c SessionCookie) Token(r *http.Request, secure bool) string {
	return cookie(r, string(c), secure)
}

// Set sets the cookie for ttl.
func (c SessionCookie) Set(w http.ResponseWriter, token string, ttl time.Duration, secure bool) {
	setCookie(w, string(c), token, ttl, secure)
}

// Clear removes the cookie.
func (c SessionCookie) Clear(w http.ResponseWriter, secure bool) {
	setCookie(w, string(c), "", -1, secure)
}

// CSRFSecret is the secret of these pages' forms: the session cookie's
// value, else the anonymous pre-session cookie's (a log-in form), as
// CSRFSecret.
func (c SessionCookie) CSRFSecret(w http.ResponseWriter, r *http.Request, secure, create bool) string {
	return csrfSecret(w, r, string(c), secure, create)
}
