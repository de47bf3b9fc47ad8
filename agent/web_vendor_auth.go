package agent

import (
	"context"
	"errors"
	"net/http"
	"strings"

	"github.com/hashwall/hashwall/agent/web"
	"github.com/hashwall/hashwall/agentapi"
)

// The vendor's log-in (with its API token) and log-out. A token is looked
// up as the API does (vendorOfToken), behind the log-in throttle of the
// readers' passwords (throttle.go) keyed by the client's address: API
// tokens are too long to guess, but each guess costs the bank a lookup.

// vendorThrottleName is the throttle's "username" of the vendor log-ins
// from one address: with a space, which no username has, so that it
// shares no counter with a reader. Failures count per address twice:
// here (maxFailures) and in the address's own counter (maxAddrFailures),
// which the readers' log-ins from there share.
func vendorThrottleName(addr string) string { return "vendor token " + addr }

// vendorLogin is the vendor of an API token typed in the log-in form.
func (a *Agent) vendorLogin(ctx context.Context, r *http.Request, tok string) (string, error) {
	addr := a.clientAddr(r)
	name := vendorThrottleName(addr)
	if err := a.reserveLogin(ctx, name, addr); err != nil {
		return "", err
	}
	vendor, err := a.vendorOfToken(ctx, tok)
	if e, ok := errors.AsType[*agentapi.Error](err); ok && e.Code == agentapi.CodeUnauthorized {
		return "", err // a wrong token keeps its slot
	}
	a.releaseLogin(name, addr)
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
	return p.startVendorSession(vendor, tokenHash(tok))
}

// startVendorSession logs the vendor in with a new session id, bound to
// the API token (its hash) it logged in with; the session the browser came
// with, if any, is ended (no fixation).
func (p *vendorReq) startVendorSession(vendor, apiTok string) error {
	ctx := p.r.Context()
	if err := p.endVendorSession(ctx); err != nil {
		return err
	}
	tok, hash := newToken(vendorSessionPrefix)
	if err := p.a.rdb.Set(ctx, p.a.prefix+"vsess:"+hash, vendor+" "+apiTok, p.a.cfg.SessionTTL).Err(); err != nil {
		return err
	}
	web.VendorSession.Set(p.w, tok, p.a.cfg.SessionTTL, p.secure)
	return p.redirect("/vendor")
}

// endVendorSession deletes the session of the browser's cookie, live or not.
func (p *vendorReq) endVendorSession(ctx context.Context) error {
	if old := web.VendorSession.Token(p.r, p.secure); strings.HasPrefix(old, vendorSessionPrefix) {
		return p.a.rdb.Del(ctx, p.a.prefix+"vsess:"+tokenHash(old)).Err()
	}
	return nil
}

func (a *Agent) pageVendorLogout(p *vendorReq) error {
	if err := p.endVendorSession(p.r.Context()); err != nil {
		return err
	}
	web.VendorSession.Clear(p.w, p.secure)
	return p.redirect("/vendor/login")
}
