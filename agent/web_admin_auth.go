package agent

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"net/http"

	"github.com/hashwall/hashwall/agentapi"
)

// The operator's log-in (with the admin token) and log-out. A token is
// compared as requireAdmin does (hashes, in constant time), behind the
// log-in throttle of the readers' passwords (throttle.go) keyed by the
// client's address, as the vendors' log-in.

var errAdminToken = errors.New("not the admin token")

// adminLogin checks an admin token typed in the log-in form, compared as
// requireAdmin does (hashes, in constant time).
func (a *Agent) adminLogin(ctx context.Context, r *http.Request, tok string) error {
	return a.tokenLogin(ctx, r, "admin", func() (bool, error) {
		h := sha256.Sum256([]byte(tok))
		if subtle.ConstantTimeCompare(h[:], a.admin[:]) != 1 {
			return true, errAdminToken
		}
		return false, nil
	})
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
	// The session is bound to the admin token configured now.
	return adminSessions.start(p.pageReq, hex.EncodeToString(p.a.admin[:]), p.a.adminSessionTTL(), "/admin")
}

func (a *Agent) pageAdminLogout(p *adminReq) error {
	return adminSessions.logout(p.pageReq, "/admin/login")
}
