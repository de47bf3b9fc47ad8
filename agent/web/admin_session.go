package web

import (
	"net/http"
	"time"
)

// The operator's pages have their own session cookie, beside the reader's
// and the vendor's: one browser may hold all three, and no session ever
// stands for another. Same attributes and __Host- prefix (cookie.go).
const adminCookie = "hw_admin"

// AdminSessionToken is the operator session cookie's value, "" if none.
func AdminSessionToken(r *http.Request, secure bool) string { return cookie(r, adminCookie, secure) }

// SetAdminSession sets the operator session cookie for ttl.
func SetAdminSession(w http.ResponseWriter, token string, ttl time.Duration, secure bool) {
	setCookie(w, adminCookie, token, ttl, secure)
}

// ClearAdminSession removes the operator session cookie.
func ClearAdminSession(w http.ResponseWriter, secure bool) {
	setCookie(w, adminCookie, "", -1, secure)
}

// AdminCSRFSecret is the secret of the operator pages' forms: the operator
// session cookie's value, else the anonymous pre-session cookie's (the
// log-in form), as CSRFSecret.
func AdminCSRFSecret(w http.ResponseWriter, r *http.Request, secure, create bool) string {
	return csrfSecret(w, r, adminCookie, secure, create)
}
