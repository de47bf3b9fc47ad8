package web

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
)

// CSRFField is the name of the hidden field every state-changing form carries.
const CSRFField = "csrf"

// CSRFToken is the form token of a session: an HMAC of the session's
// secret (the session cookie's value, or the anonymous pre-session's), so
// that it needs no storage, differs per session and reveals nothing of the
// secret. An empty secret has no token.
func CSRFToken(secret string) string {
	if secret == "" {
		return ""
	}
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte("hashwall web csrf v1"))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// CheckCSRF compares a submitted token with the session's, in constant time.
func CheckCSRF(secret, got string) bool {
	want := CSRFToken(secret)
	return want != "" && hmac.Equal([]byte(want), []byte(got))
}
