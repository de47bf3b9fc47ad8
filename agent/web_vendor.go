package agent

import (
	"net/http"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/hashwall/hashwall/agent/web"
)

// The vendors' pages (docs/web.md), under /vendor/: a vendor logs in with
// its API token and gets a session of its own, apart from the readers'
// (its cookie hw_vendor, its key P vsess:<sha256 of the session token> →
// "<vendor> <sha256 of the API token it logged in with>", for SessionTTL).
// A session lives only as long as that API token: rotating the token (here
// or by POST /v1/token) ends every session opened with the old one, once
// its grace is over; revoking the vendor ends them all. Every handler reads
// the vendor from the session only, never from the request.

// vendorSessionPrefix starts a vendor session token: neither an API token
// (hwv_) nor a reader's session (hws_), so none passes for another.
const vendorSessionPrefix = "hwvs_"

var vendorSections = []pageSection{
	{"/vendor", "Overview", ""},
	{"/vendor/revenue", "Revenue", "What you took per day and what each article earned."},
	{"/vendor/claims", "Claims", "Every claim your paywall reported, with the bank's verdict."},
	{"/vendor/disputes", "Disputes", "Fraud the bank proved on payments to you, and claims it refused."},
	{"/vendor/statements", "Statements", "What the bank credited you, by period, with the same JSON and CSV as the API."},
	{"/vendor/origins", "Sites", "The origins where readers' wallets pay you, as the bank publishes them."},
	{"/vendor/token", "API token", "Replace the token your paywall and your scripts use with the bank."},
}

// vendorReq is one vendor page request: a page request (pageReq: its
// writer, form, redirect and error mapping) and the session's vendor.
type vendorReq struct {
	*pageReq
	vendor  string // "" if not logged in
	sessKey string // the session's Redis key
	flash   string // a notice above the page
}

type vendorFunc func(p *vendorReq) error

// vendorPage wraps a vendor page handler as page() does the readers':
// security headers (on the mux), the vendor session, and for a POST the
// origin check and the CSRF token of that session before the handler.
// auth: only for a logged-in vendor (others go to the log-in page).
func (a *Agent) vendorPage(auth bool, f vendorFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := &vendorReq{pageReq: &pageReq{w: w, r: r, a: a, secure: a.isTLS(r)}}
		err := a.vendorSession(p)
		if err == nil && r.Method == http.MethodPost {
			err = p.checkPostWith(web.VendorSession.CSRFSecret)
		}
		if err == nil && auth && p.vendor == "" {
			http.Redirect(w, r, "/vendor/login", http.StatusSeeOther)
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

// vendorSession finds the vendor of the session cookie, if the session,
// the API token it was opened with and the vendor are all live.
func (a *Agent) vendorSession(p *vendorReq) error {
	val, key, err := vendorSessions.get(p.pageReq)
	if val == "" || err != nil {
		return err
	}
	ctx := p.r.Context()
	vendor, apiTok, _ := strings.Cut(val, " ")
	pipe := a.rdb.Pipeline()
	owner := pipe.Get(ctx, a.prefix+"vtok:"+apiTok)
	status := pipe.HGet(ctx, a.prefix+"v:"+vendor, "status")
	pipe.Exec(ctx)
	for _, c := range []*redis.StringCmd{owner, status} {
		if err := c.Err(); err != nil && err != redis.Nil {
			return err
		}
	}
	if owner.Val() != vendor || status.Val() != "active" {
		// The token was replaced or the vendor revoked: the session ended.
		return a.rdb.Del(ctx, key).Err()
	}
	p.vendor, p.sessKey = vendor, key
	return nil
}

// render shows a vendor page: the vendors' header, the session's CSRF token.
func (p *vendorReq) render(status int, page, title string, form *web.Form, data any) error {
	if form == nil {
		form = web.NewForm()
	}
	area := p.area("Vendors", "/vendor", p.vendor, vendorSections)
	p.a.site.Render(p.w, status, page, web.Page{
		Title: title, Form: form, Data: data, Area: area, Flash: p.flash,
		CSRF: web.CSRFToken(web.VendorSession.CSRFSecret(p.w, p.r, p.secure, true)),
	})
	return nil
}

// fail shows an error page in the vendors' layout.
func (p *vendorReq) fail(err error) {
	se := p.shown(err)
	p.render(se.status, "error", http.StatusText(se.status), nil, se.msg)
}

// vendorNotFound is the 404 of any other path under /vendor/, in the
// vendors' layout, whatever the method (no form check, as the readers').
func (a *Agent) vendorNotFound(w http.ResponseWriter, r *http.Request) {
	p := &vendorReq{pageReq: &pageReq{w: w, r: r, a: a, secure: a.isTLS(r)}}
	if err := a.vendorSession(p); err != nil {
		p.fail(err)
		return
	}
	p.fail(pageError(http.StatusNotFound, "There is no such page."))
}
