package agent

import (
	"crypto/subtle"
	"encoding/hex"
	"net/http"
	"time"

	"github.com/hashwall/hashwall/agent/web"
)

// The bank operator's pages (docs/web.md), under /admin/: the operator
// logs in with the admin token (Config.AdminToken) and gets a session of
// its own, apart from the readers' and the vendors' (its cookie hw_admin,
// its key P asess:<sha256 of the session token> → the sha256 of the admin
// token it logged in with). A session lives only as long as that admin
// token is the configured one: an agent restarted with another token ends
// every session. Without an admin token every page here is a 404, as the
// admin API is closed.

// adminSessionPrefix starts an operator session token: no other token of
// the bank (hwv_, hws_, hwvs_) starts so, and none passes for another.
const adminSessionPrefix = "hwas_"

// maxAdminSession bounds an operator session below SessionTTL: the admin
// token credits money and revokes accounts, so a browser left logged in
// holds that power for at most a working day, not the readers' 24 hours.
const maxAdminSession = 8 * time.Hour

func (a *Agent) adminSessionTTL() time.Duration { return min(a.cfg.SessionTTL, maxAdminSession) }

var adminSections = []pageSection{
	{"/admin", "Overview", ""},
	{"/admin/readers", "Readers", "Find a reader by username: balance, status, certificates."},
	{"/admin/vendors", "Vendors", "Every vendor's balance, fraud count, and whether its reports keep up."},
	{"/admin/figures", "Figures", "Claims and payments per minute, claim delivery delay, list sizes."},
	{"/admin/disputes", "Disputes", "Fraud the bank proved and claims it refused, in words, newest first."},
	{"/admin/revocations", "Revocations", "The revocation list the gateways read, with the reason of each entry."},
	{"/admin/credit", "Credit", "Add money to a reader's balance, as POST /v1/admin/credit does."},
	{"/admin/revoke", "Revoke", "Revoke a certificate, or a reader's account and all its certificates."},
}

// adminReq is one operator page request: a page request (pageReq: its
// writer, form, redirect and error mapping) and whether an operator is
// logged in.
type adminReq struct {
	*pageReq
	operator bool
	flash    string // a notice above the page
}

type adminFunc func(p *adminReq) error

// adminPage wraps an operator page handler as vendorPage does the
// vendors': the operator session, for a POST the origin check and the CSRF
// token of that session, then the handler. auth: only for a logged-in
// operator (others go to the log-in page).
func (a *Agent) adminPage(auth bool, f adminFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := &adminReq{pageReq: &pageReq{w: w, r: r, a: a, secure: a.isTLS(r)}}
		if a.cfg.AdminToken == "" { // as the rest of the site's 404, no form check
			p.pageReq.fail(pageError(http.StatusNotFound, "There is no such page."))
			return
		}
		err := a.adminSession(p)
		if err == nil && r.Method == http.MethodPost {
			err = p.checkPostWith(web.AdminSession.CSRFSecret)
		}
		if err == nil && auth && !p.operator {
			http.Redirect(w, r, "/admin/login", http.StatusSeeOther)
			return
		}
		if err == nil {
			err = f(p)
		}
		if err != nil {
			p.fail(err)
		}
	})
}

// adminSession finds whether the session cookie is a live operator
// session opened with the admin token configured now.
func (a *Agent) adminSession(p *adminReq) error {
	val, key, err := adminSessions.get(p.pageReq)
	if val == "" || err != nil {
		return err
	}
	if subtle.ConstantTimeCompare([]byte(val), []byte(hex.EncodeToString(a.admin[:]))) != 1 {
		// Opened with another admin token: the session ended with it.
		return a.rdb.Del(p.r.Context(), key).Err()
	}
	p.operator = true
	return nil
}

// render shows an operator page: the operator's header, the session's
// CSRF token.
func (p *adminReq) render(status int, page, title string, form *web.Form, data any) error {
	if form == nil {
		form = web.NewForm()
	}
	who := ""
	if p.operator {
		who = "operator"
	}
	area := p.area("Operator", "/admin", who, adminSections)
	p.a.site.Render(p.w, status, page, web.Page{
		Title: title, Form: form, Data: data, Area: area, Flash: p.flash,
		CSRF: web.CSRFToken(web.AdminSession.CSRFSecret(p.w, p.r, p.secure, true)),
	})
	return nil
}

// fail shows an error page in the operator's layout.
func (p *adminReq) fail(err error) {
	se := p.shown(err)
	p.render(se.status, "error", http.StatusText(se.status), nil, se.msg)
}

// adminNotFound is the 404 of any other path under /admin/, whatever the
// method (no form check, as the readers').
func (a *Agent) adminNotFound(w http.ResponseWriter, r *http.Request) {
	p := &adminReq{pageReq: &pageReq{w: w, r: r, a: a, secure: a.isTLS(r)}}
	if a.cfg.AdminToken == "" { // the readers' 404: nothing here
		p.pageReq.fail(pageError(http.StatusNotFound, "There is no such page."))
		return
	}
	if err := a.adminSession(p); err != nil {
		p.fail(err)
		return
	}
	p.fail(pageError(http.StatusNotFound, "There is no such page."))
}
