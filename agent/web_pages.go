package agent

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/hashwall/hashwall/agent/web"
	"github.com/hashwall/hashwall/agentapi"
)

// The bank's web pages for readers (docs/web.md), served at / beside the
// API: their own mux, so that the API's stays exactly agentapi.Routes.
// Every page goes through page(): security headers, the session, and for a
// POST the origin check and the CSRF token before its handler runs.

// Pages is the handler of the web pages, to mount at "/" (the API at /v1/).
func (a *Agent) Pages() http.Handler { return a.pages }

// pageReq is one page request: the reader (if logged in) and its form.
type pageReq struct {
	w      http.ResponseWriter
	r      *http.Request
	a      *Agent
	secure bool   // over TLS: Secure, __Host- cookies
	uid    string // "" if not logged in
	user   string // the username
	form   *web.Form
}

type pageFunc func(p *pageReq) error

func (a *Agent) pageRoutes() (http.Handler, error) {
	site, err := web.New("Hashwall bank")
	if err != nil {
		return nil, err
	}
	a.site = site
	m := http.NewServeMux()
	m.Handle("GET /static/", web.Static())
	m.Handle("GET /{$}", a.page(false, a.pageHome))
	m.Handle("GET /signup", a.page(false, a.pageSignup))
	m.Handle("POST /signup", a.page(false, a.pageSignup))
	m.Handle("GET /login", a.page(false, a.pageLogin))
	m.Handle("POST /login", a.page(false, a.pageLogin))
	m.Handle("POST /logout", a.page(false, a.pageLogout))
	m.Handle("GET /account", a.page(true, a.pageAccount))
	m.Handle("GET /topup", a.page(true, a.pageTopup))
	m.Handle("POST /topup", a.page(true, a.pageTopup))
	m.Handle("GET /topup/{id}", a.page(true, a.pageTopupDone))
	m.Handle("GET /limits", a.page(true, a.pageLimits))
	m.Handle("POST /limits", a.page(true, a.pageLimits))
	m.Handle("POST /limits/delete", a.page(true, a.pageLimitDelete))
	m.Handle("GET /pay", a.page(false, a.pagePay))
	m.Handle("POST /pay", a.page(true, a.pagePay))
	m.Handle("GET /recover", a.page(true, a.pageRecover))
	m.Handle("POST /recover", a.page(true, a.pageRecover))
	// The vendors' pages (web_vendor.go): their own session, never the reader's.
	m.Handle("GET /vendor/login", a.vendorPage(false, a.pageVendorLogin))
	m.Handle("POST /vendor/login", a.vendorPage(false, a.pageVendorLogin))
	m.Handle("POST /vendor/logout", a.vendorPage(false, a.pageVendorLogout))
	m.Handle("GET /vendor", a.vendorPage(true, a.pageVendorOverview))
	m.Handle("GET /vendor/revenue", a.vendorPage(true, a.pageVendorRevenue))
	m.Handle("GET /vendor/claims", a.vendorPage(true, a.pageVendorClaims))
	m.Handle("GET /vendor/disputes", a.vendorPage(true, a.pageVendorDisputes))
	m.Handle("GET /vendor/statements", a.vendorPage(true, a.pageVendorStatement))
	m.Handle("GET /vendor/statements/download", a.vendorPage(true, a.pageVendorStatementFile))
	m.Handle("GET /vendor/origins", a.vendorPage(true, a.pageVendorOrigins))
	m.Handle("POST /vendor/origins", a.vendorPage(true, a.pageVendorOrigins))
	m.Handle("GET /vendor/token", a.vendorPage(true, a.pageVendorToken))
	m.Handle("POST /vendor/token", a.vendorPage(true, a.pageVendorToken))
	m.HandleFunc("/vendor/", a.vendorNotFound)
	// The operator's pages (web_admin.go): their own session, the admin token's.
	m.Handle("GET /admin/login", a.adminPage(false, a.pageAdminLogin))
	m.Handle("POST /admin/login", a.adminPage(false, a.pageAdminLogin))
	m.Handle("POST /admin/logout", a.adminPage(false, a.pageAdminLogout))
	m.Handle("GET /admin", a.adminPage(true, a.pageAdminOverview))
	m.Handle("GET /admin/readers", a.adminPage(true, a.pageAdminReaders))
	m.Handle("GET /admin/vendors", a.adminPage(true, a.pageAdminVendors))
	m.Handle("GET /admin/figures", a.adminPage(true, a.pageAdminFigures))
	m.Handle("GET /admin/disputes", a.adminPage(true, a.pageAdminDisputes))
	m.Handle("GET /admin/revocations", a.adminPage(true, a.pageAdminRevocations))
	m.Handle("GET /admin/credit", a.adminPage(true, a.pageAdminCredit))
	m.Handle("POST /admin/credit", a.adminPage(true, a.pageAdminCredit))
	m.Handle("GET /admin/credit/done", a.adminPage(true, a.pageAdminCreditDone))
	m.Handle("GET /admin/revoke", a.adminPage(true, a.pageAdminRevoke))
	m.Handle("POST /admin/revoke", a.adminPage(true, a.pageAdminRevoke))
	m.HandleFunc("/admin/", a.adminNotFound)
	m.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { // 404 whatever the method: no form check
		p := &pageReq{w: w, r: r, a: a, secure: a.isTLS(r)}
		p.fail(pageError(http.StatusNotFound, "There is no such page."))
	})
	return web.Headers(m), nil
}

// isTLS is whether r came over TLS (Config.TLS), or readers reach the bank
// over https through a proxy (BehindTLS).
func (a *Agent) isTLS(r *http.Request) bool {
	if a.cfg.BehindTLS {
		return true
	}
	if a.cfg.TLS != nil {
		return a.cfg.TLS(r)
	}
	return r.TLS != nil
}

// page wraps a page handler. auth: only for a logged-in reader (others go
// to the log-in page).
func (a *Agent) page(auth bool, f pageFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := &pageReq{w: w, r: r, a: a, secure: a.isTLS(r)}
		err := a.pageSession(p)
		if err == nil && r.Method == http.MethodPost {
			err = p.checkPost()
		}
		if err == nil && auth && p.uid == "" {
			http.Redirect(w, r, "/login", http.StatusSeeOther)
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

// pageSession finds the reader of the session cookie, if it is live.
func (a *Agent) pageSession(p *pageReq) error {
	tok := web.SessionToken(p.r, p.secure)
	if !strings.HasPrefix(tok, agentapi.SessionTokenPrefix) {
		return nil
	}
	uid, err := a.rdb.Get(p.r.Context(), a.prefix+"sess:"+tokenHash(tok)).Result()
	if err == redis.Nil {
		return nil
	}
	if err != nil {
		return err
	}
	name, ok := a.hosted.names.get(uid) // a username never changes
	if !ok {
		name, err = a.rdb.HGet(p.r.Context(), a.prefix+"u:"+uid, "name").Result()
		if err != nil && err != redis.Nil {
			return err
		}
		a.hosted.names.put(uid, name)
	}
	p.uid, p.user = uid, name
	return nil
}

// errForged is a POST from another site or without this session's token:
// nothing runs.
var errForged = pageError(http.StatusForbidden,
	"This form was not sent from this site's page, or it has expired. Go back, reload the page and try again.")

// checkPost refuses a POST from another origin or without the session's
// CSRF token, before anything else reads the form.
func (p *pageReq) checkPost() error { return p.checkPostWith(web.CSRFSecret) }

// csrfSecret is a session's form secret: web.CSRFSecret, or a
// web.SessionCookie's.
type csrfSecret func(w http.ResponseWriter, r *http.Request, secure, create bool) string

// checkPostWith is checkPost with the CSRF secret of a session.
func (p *pageReq) checkPostWith(secret csrfSecret) error {
	if !web.SameOrigin(p.r, p.secure) {
		return errForged
	}
	f, err := web.ParseForm(p.w, p.r)
	if err != nil {
		return pageError(http.StatusBadRequest, "The form could not be read.")
	}
	if !web.CheckCSRF(secret(p.w, p.r, p.secure, false), f.Get(web.CSRFField)) {
		return errForged
	}
	p.form = f
	return nil
}

// render shows a page with the session's CSRF token.
func (p *pageReq) render(status int, page, title string, form *web.Form, data any) error {
	if form == nil {
		form = web.NewForm()
	}
	p.a.site.Render(p.w, status, page, web.Page{
		Title: title, User: p.user, Form: form, Data: data,
		CSRF: web.CSRFToken(web.CSRFSecret(p.w, p.r, p.secure, true)),
	})
	return nil
}

func (p *pageReq) redirect(to string) error {
	http.Redirect(p.w, p.r, to, http.StatusSeeOther)
	return nil
}

// shownError is a page's refusal: its status and the sentence shown.
type shownError struct {
	status int
	msg    string
	retry  time.Duration
}

func (e *shownError) Error() string { return e.msg }

func pageError(status int, msg string) error { return &shownError{status: status, msg: msg} }

// fail shows an error page: a refusal of the agent (agentapi.Error) or of
// a page with its message, anything else as the API's 500 or 503.
func (p *pageReq) fail(err error) {
	se := p.shown(err)
	p.render(se.status, "error", http.StatusText(se.status), nil, se.msg)
}

// shown is the refusal an error page shows for err (logged if it is not a
// refusal), its Retry-After set.
func (p *pageReq) shown(err error) *shownError {
	var se *shownError
	if e, ok := errors.AsType[*agentapi.Error](err); ok {
		se = &shownError{status: e.Status, msg: sentence(e.Message), retry: e.RetryAfter}
	} else if !errors.As(err, &se) {
		p.a.log.Error("page failed", zap.String("path", p.r.URL.Path), zap.Error(err))
		se = &shownError{status: http.StatusInternalServerError, msg: "Something went wrong on our side. Please try again."}
		if isRedisDown(err) {
			se = &shownError{status: http.StatusServiceUnavailable, msg: "The bank is briefly unavailable. Please try again in a moment."}
		}
	}
	if se.retry > 0 {
		p.w.Header().Set("Retry-After", retrySeconds(se.retry))
	}
	return se
}

// retrySeconds is a Retry-After value: whole seconds, rounded up.
func retrySeconds(d time.Duration) string {
	return strconv.FormatInt(int64((d+time.Second-1)/time.Second), 10)
}

// sentence is an API message as a sentence of a page.
func sentence(s string) string {
	if s == "" {
		return s
	}
	s = strings.ToUpper(s[:1]) + s[1:]
	if !strings.HasSuffix(s, ".") {
		s += "."
	}
	return s
}

func (a *Agent) pageHome(p *pageReq) error {
	if p.uid != "" {
		return p.redirect("/account")
	}
	return p.redirect("/login")
}
