package web

import (
	"crypto/rand"
	"encoding/base64"
	"net/http"
	"time"
)

// Cookie names. Over TLS they carry the __Host- prefix: the browser then
// keeps them Secure, host-only and on path /, so that no sibling domain can
// plant one (session fixation by cookie tossing).
const (
	sessionCookie = "hw_session"
	preCookie     = "hw_pre" // an anonymous visitor's CSRF secret
)

func cookieName(name string, secure bool) string {
	if secure {
		return "__Host-" + name
	}
	return name
}

func setCookie(w http.ResponseWriter, name, value string, maxAge time.Duration, secure bool) {
	c := &http.Cookie{Name: cookieName(name, secure), Value: value, Path: "/", HttpOnly: true,
		Secure: secure, SameSite: http.SameSiteLaxMode}
	switch {
	case maxAge < 0:
		c.MaxAge = -1
	case maxAge > 0:
		c.MaxAge = int(maxAge / time.Second)
	}
	http.SetCookie(w, c)
}

func cookie(r *http.Request, name string, secure bool) string {
	c, err := r.Cookie(cookieName(name, secure))
	if err != nil || len(c.Value) > 256 {
		return ""
	}
	return c.Value
}

// SessionToken is the session cookie's value, "" if none.
func SessionToken(r *http.Request, secure bool) string { return cookie(r, sessionCookie, secure) }

// SetSession sets the session cookie for ttl.
func SetSession(w http.ResponseWriter, token string, ttl time.Duration, secure bool) {
	setCookie(w, sessionCookie, token, ttl, secure)
}

// ClearSession removes the session cookie.
func ClearSession(w http.ResponseWriter, secure bool) { setCookie(w, sessionCookie, "", -1, secure) }

// CSRFSecret is the secret of the request's forms: the session cookie's
// value, else the anonymous pre-session cookie's, which it sets when
// create is true and there is none (a page showing a form).
func CSRFSecret(w http.ResponseWriter, r *http.Request, secure, create bool) string {
	return csrfSecret(w, r, sessionCookie, secure, create)
}

// csrfSecret is CSRFSecret for the session cookie named session.
func csrfSecret(w http.ResponseWriter, r *http.Request, session string, secure, create bool) string {
	if s := cookie(r, session, secure); s != "" {
		return s
	}
	if s := cookie(r, preCookie, secure); s != "" {
		return s
	}
	if !create {
		return ""
	}
	b := make([]byte, 32)
	rand.Read(b)
	s := base64.RawURLEncoding.EncodeToString(b)
	setCookie(w, preCookie, s, 0, secure)
	return s
}
