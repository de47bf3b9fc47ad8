package agent

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"net/http"
	"strings"

	"github.com/hashwall/hashwall/agent/web"
	"github.com/hashwall/hashwall/agentapi"
)

// The operator's log-in (with the admin token) and log-out. A token is
// compared as requireAdmin does (hashes, in constant time), behind the
// log-in throttle of the readers' passwords (throttle.go) keyed by the
// client's address, as the vendors' log-in.

// adminThrottleName is the throttle's "username" of the operator log-ins
// from one address: with spaces, which no username has, and apart from
// the vendors' counter.
func adminThrottleName(addr string) string { return "admin token " + addr }

var errAdminToken = errors.New("not the admin token")

// adminLogin checks an admin token typed in the log-in form.
func (a *Agent) adminLogin(ctx context.Context, r *http.Request, tok string) error {
	addr := a.clientAddr(r)
	name := adminThrottleName(addr)
	if err := a.reserveLogin(ctx, name, addr); err != nil {
		return err
	}
	h := sha256.Sum256([]byte(tok))
	if subtle.ConstantTimeCompare(h[:], a.admin[:]) != 1 {
		return errAdminToken // a wrong token keeps its slot
	}
	a.releaseLogin(name, addr)
	return nil
}

func (a *Agent) pageAdminLogin(p *adminReq) error {
	if p.r.Method == http.MethodGet {
		if p.operator {
			return p.redirect("/admin")
		}
		return p.render(http.StatusOK, "admin_login", "Operator log-in", nil, nil)
	}
	f := p.form
	tok := f.Trimmed("token")
	if tok == "" {
		f.Fail("token", "Paste the bank's admin token.")
		return p.render(http.StatusUnprocessableEntity, "admin_login", "Operator log-in", f, nil)
	}
	err := a.adminLogin(p.r.Context(), p.r, tok)
	if errors.Is(err, errAdminToken) {
		f.Fail("token", "This is not the bank's admin token.")
		return p.render(http.StatusUnauthorized, "admin_login", "Operator log-in", f, nil)
	}
	if e, ok := errors.AsType[*agentapi.Error](err); ok && e.Code == agentapi.CodeTooManyAttempts {
		if e.RetryAfter > 0 {
			p.w.Header().Set("Retry-After", retrySeconds(e.RetryAfter))
		}
		f.Fail("", "Too many failed log-ins from your network. Try again in a while.")
		return p.render(e.Status, "admin_login", "Operator log-in", f, nil)
	}
	if err != nil {
		return err
	}
	return p.startAdminSession()
}

// startAdminSession logs the operator in with a new session id, bound to
// the admin token configured now (its hash); the session the browser came
// with, if any, is ended (no fixation).
func (p *adminReq) startAdminSession() error {
	ctx := p.r.Context()
	if err := p.endAdminSession(ctx); err != nil {
		return err
	}
	tok, hash := newToken(adminSessionPrefix)
	ttl := p.a.adminSessionTTL()
	if err := p.a.rdb.Set(ctx, p.a.prefix+"asess:"+hash, hex.EncodeToString(p.a.admin[:]), ttl).Err(); err != nil {
		return err
	}
	web.AdminSession.Set(p.w, tok, ttl, p.secure)
	return p.redirect("/admin")
}

// endAdminSession deletes the session of the browser's cookie, live or not.
func (p *adminReq) endAdminSession(ctx context.Context) error {
	if old := web.AdminSession.Token(p.r, p.secure); strings.HasPrefix(old, adminSessionPrefix) {
		return p.a.rdb.Del(ctx, p.a.prefix+"asess:"+tokenHash(old)).Err()
	}
	return nil
}

func (a *Agent) pageAdminLogout(p *adminReq) error {
	if err := p.endAdminSession(p.r.Context()); err != nil {
		return err
	}
	web.AdminSession.Clear(p.w, p.secure)
	return p.redirect("/admin/login")
}
