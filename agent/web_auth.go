package agent

import (
	"errors"
	"net/http"
	"strings"

	"github.com/hashwall/hashwall/agent/web"
	"github.com/hashwall/hashwall/agentapi"
	"github.com/hashwall/hashwall/payword"
)

// Sign-up, log-in and log-out pages. A password is checked only by login()
// (accounts.go), behind the API's own throttle; a new session id is issued
// at every log-in, and the one the browser came with is ended.

// checkSignup validates the sign-up form by the rules of POST /v1/users
// (checkUser), one message per field.
func checkSignup(f *web.Form) agentapi.RegisterUser {
	q := agentapi.RegisterUser{Username: f.Trimmed("username"), Password: f.Get("password")}
	switch {
	case q.Username == "":
		f.Fail("username", "Choose a username.")
	case !payword.ValidID(q.Username):
		f.Fail("username", "A username is 1 to 64 characters of A-Z a-z 0-9 . _ - : @ (no spaces).")
	}
	switch {
	case len(q.Password) < minPassword:
		f.Fail("password", "A password has at least 8 characters.")
	case len(q.Password) > maxPassword:
		f.Fail("password", "A password has at most 1024 bytes.")
	case f.Get("password2") != q.Password:
		f.Fail("password2", "The two passwords differ.")
	}
	if f.OK() && checkUser(&q) != nil { // the API's rules have the last word
		f.Fail("username", "This username or password is not accepted.")
	}
	return q
}

func (a *Agent) pageSignup(p *pageReq) error {
	if p.r.Method == http.MethodGet {
		return p.render(http.StatusOK, "signup", "Sign up", nextForm(p.r), nil)
	}
	f := p.form
	q := checkSignup(f)
	if !f.OK() {
		return p.render(http.StatusUnprocessableEntity, "signup", "Sign up", f, nil)
	}
	if err := a.reserveSignup(p.r.Context(), p.r); err != nil {
		e, ok := errors.AsType[*agentapi.Error](err)
		if !ok {
			return err
		}
		p.w.Header().Set("Retry-After", retrySeconds(e.RetryAfter))
		f.Fail("", "Too many accounts were opened from your network in the last hour. Try again later.")
		return p.render(e.Status, "signup", "Sign up", f, nil)
	}
	uid, err := a.registerUser(p.r.Context(), q)
	if e, ok := errors.AsType[*agentapi.Error](err); ok && e.Code == agentapi.CodeUsernameTaken {
		f.Fail("username", "This username is taken; choose another.")
		return p.render(http.StatusConflict, "signup", "Sign up", f, nil)
	}
	if err != nil {
		return err
	}
	return p.startSession(uid)
}

func (a *Agent) pageLogin(p *pageReq) error {
	if p.r.Method == http.MethodGet {
		if p.uid != "" {
			return p.redirect(safeNext(p.r.URL.Query().Get("next")))
		}
		return p.render(http.StatusOK, "login", "Log in", nextForm(p.r), nil)
	}
	f := p.form
	name, pw := f.Trimmed("username"), f.Get("password")
	if name == "" {
		f.Fail("username", "Enter your username.")
	}
	if pw == "" {
		f.Fail("password", "Enter your password.")
	}
	if !f.OK() {
		return p.render(http.StatusUnprocessableEntity, "login", "Log in", f, nil)
	}
	uid, err := a.login(p.r.Context(), p.r, name, pw)
	if err != nil {
		return p.loginRefused(f, "login", "Log in", nil, err)
	}
	return p.startSession(uid)
}

// loginRefused shows a form again after login() refused its password: a
// wrong one, a throttled account (429 with Retry-After) or a revoked one.
func (p *pageReq) loginRefused(f *web.Form, page, title string, data any, err error) error {
	e, ok := errors.AsType[*agentapi.Error](err)
	if !ok {
		return err
	}
	switch e.Code {
	case agentapi.CodeInvalidCredentials:
		f.Fail("", "Unknown username or wrong password.")
	case agentapi.CodeTooManyAttempts:
		if e.RetryAfter > 0 {
			p.w.Header().Set("Retry-After", retrySeconds(e.RetryAfter))
		}
		f.Fail("", "Too many failed log-ins for this account or from your network. Try again in a while.")
	case agentapi.CodeUserRevoked:
		f.Fail("", "This account is closed.")
	default:
		return err
	}
	return p.render(e.Status, page, title, f, data)
}

// nextForm is an empty form that remembers where a log-in goes on (the
// pay page, for a reader who came from a paywall).
func nextForm(r *http.Request) *web.Form {
	f := web.NewForm()
	if next := r.URL.Query().Get("next"); safeNext(next) == next {
		f.Values["next"] = next
	}
	return f
}

// startSession logs the reader in with a new session id (the old one, if
// any, is ended: no fixation) and goes on to the form's next page (a path
// of this site) or the account.
func (p *pageReq) startSession(uid string) error {
	ctx := p.r.Context()
	if old := web.SessionToken(p.r, p.secure); strings.HasPrefix(old, agentapi.SessionTokenPrefix) {
		if err := p.a.rdb.Del(ctx, p.a.prefix+"sess:"+tokenHash(old)).Err(); err != nil {
			return err
		}
	}
	tok, err := p.a.newSession(ctx, uid)
	if err != nil {
		return err
	}
	web.SetSession(p.w, tok, p.a.cfg.SessionTTL, p.secure)
	next := "/account"
	if p.form != nil {
		next = safeNext(p.form.Get("next"))
	}
	return p.redirect(next)
}

func (a *Agent) pageLogout(p *pageReq) error {
	if tok := web.SessionToken(p.r, p.secure); strings.HasPrefix(tok, agentapi.SessionTokenPrefix) {
		if err := a.rdb.Del(p.r.Context(), a.prefix+"sess:"+tokenHash(tok)).Err(); err != nil {
			return err
		}
	}
	web.ClearSession(p.w, p.secure)
	return p.redirect("/login")
}
