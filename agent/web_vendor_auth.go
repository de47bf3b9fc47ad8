package agent

import (
	"context"
	"errors"
	"net/http"

	"github.com/hashwall/hashwall/agentapi"
)

// The vendor's log-in (with its API token) and log-out. A token is looked
// up as the API does (vendorOfToken), behind the log-in throttle of the
// readers' passwords (throttle.go) keyed by the client's address: API
// tokens are too long to guess, but each guess costs the bank a lookup.

// vendorLogin is the vendor of an API token typed in the log-in form.
func (a *Agent) vendorLogin(ctx context.Context, r *http.Request, tok string) (vendor string, err error) {
	err = a.tokenLogin(ctx, r, "vendor", func() (bool, error) {
		vendor, err = a.vendorOfToken(ctx, tok)
		e, ok := errors.AsType[*agentapi.Error](err)
		return ok && e.Code == agentapi.CodeUnauthorized, err
	})
	return vendor, err
}

func (a *Agent) pageVendorLogin(p *vendorReq) error {
	if p.r.Method == http.MethodGet {
		if p.vendor != "" {
			return p.redirect("/vendor")
		}
		return p.render(http.StatusOK, "vendor_login", "Vendor log-in", nil, nil)
	}
	f := p.form
	tok := f.Trimmed("token")
	if tok == "" {
		f.Fail("token", "Paste your API token.")
		return p.render(http.StatusUnprocessableEntity, "vendor_login", "Vendor log-in", f, nil)
	}
	vendor, err := a.vendorLogin(p.r.Context(), p.r, tok)
	if e, ok := errors.AsType[*agentapi.Error](err); ok {
		switch e.Code {
		case agentapi.CodeUnauthorized:
			f.Fail("token", "This is not the API token of a vendor at this bank.")
		case agentapi.CodeTooManyAttempts:
			if e.RetryAfter > 0 {
				p.w.Header().Set("Retry-After", retrySeconds(e.RetryAfter))
			}
			f.Fail("", "Too many failed log-ins from your network. Try again in a while.")
		case agentapi.CodeVendorRevoked:
			f.Fail("", "This vendor is closed at this bank.")
		default:
			return err
		}
		return p.render(e.Status, "vendor_login", "Vendor log-in", f, nil)
	}
	if err != nil {
		return err
	}
	// The session is bound to the API token it logged in with.
	return vendorSessions.start(p.pageReq, vendor+" "+tokenHash(tok), p.a.cfg.SessionTTL, "/vendor")
}

func (a *Agent) pageVendorLogout(p *vendorReq) error {
	return vendorSessions.logout(p.pageReq, "/vendor/login")
}
