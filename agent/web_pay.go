package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/hashwall/hashwall/agent/web"
	"github.com/hashwall/hashwall/agentapi"
	"github.com/hashwall/hashwall/payword"
)

// The pay page (docs/web.md, "Paying from the paywall"). A 402 page's
// button brings the reader here with the challenge and the article's URL
// (GET /pay?vendor=&product=&price=&realm=&return=). The bank pays from the
// reader's hosted wallet at once when the site's automatic limit allows,
// else on the reader's click (POST /pay), and hands the payment to the
// vendor's gateway in a form the browser posts to
// <return origin>/.well-known/hashwall/pay: never in a URL. The bank pays
// a vendor only on the origins the vendor registered, so a site can send
// the reader's tokens to no one else.

const (
	payFormPath  = "/.well-known/hashwall/pay" // on the vendor's site
	maxReturnURL = 4096
	maxRealm     = 128
	defaultDaily = 20 // tokens a day the pay page proposes for "pay automatically"
)

// payField are the query fields of a pay link, each at most once.
var payFields = []string{"vendor", "product", "price", "realm", "return"}

// parsePayOrder reads a pay link's fields; msg says what is wrong.
func parsePayOrder(q url.Values) (o *payOrder, msg string) {
	for name, v := range q {
		if len(v) > 1 {
			return nil, fmt.Sprintf("The field %q is given twice.", name)
		}
		if !slices.Contains(payFields, name) && name != "nonce" && name != "csrf" && name != "auto" && name != "daily" {
			return nil, fmt.Sprintf("The field %q is not part of a payment.", name)
		}
	}
	o = &payOrder{Vendor: q.Get("vendor"), Product: q.Get("product"), Realm: q.Get("realm")}
	if !payword.ValidID(o.Vendor) {
		return nil, "The site's vendor id is missing or not valid."
	}
	if !payword.ValidProduct(o.Product) {
		return nil, "The article's product id is missing or not valid."
	}
	s := q.Get("price")
	n, err := strconv.ParseUint(s, 10, 32)
	if len(s) > 6 || err != nil || n < 1 || n > payword.MaxSegmentLen {
		return nil, fmt.Sprintf("The price must be a whole number of tokens from 1 to %d.", payword.MaxSegmentLen)
	}
	o.Price = uint32(n)
	if len(o.Realm) > maxRealm || !utf8.ValidString(o.Realm) || strings.ContainsFunc(o.Realm, unicode.IsControl) {
		return nil, "The site's name is too long or not valid text."
	}
	if msg := o.setReturn(q.Get("return")); msg != "" {
		return nil, msg
	}
	if o.Realm == "" {
		o.Realm = o.Origin
	}
	return o, ""
}

// setReturn checks the article's URL: absolute http(s), no credentials or
// fragment, a path of its site; it yields the site's origin and the path.
func (o *payOrder) setReturn(s string) string {
	bad := "The article's address is missing or not valid."
	if s == "" || len(s) > maxReturnURL || strings.ContainsFunc(s, func(r rune) bool { return r <= ' ' || r == '\\' || r == 0x7f }) {
		return bad
	}
	u, err := url.Parse(s)
	if err != nil || u.User != nil || u.Opaque != "" || u.Fragment != "" || strings.Contains(s, "#") ||
		(u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return bad
	}
	origin, err := payword.ParseOrigin(u.Scheme + "://" + u.Host)
	if err != nil || origin != u.Scheme+"://"+u.Host {
		return bad
	}
	path := u.EscapedPath()
	if !strings.HasPrefix(path, "/") || strings.HasPrefix(path, "//") {
		return bad
	}
	if u.RawQuery != "" || u.ForceQuery {
		path += "?" + u.RawQuery
	}
	o.Origin, o.Return, o.ReturnPath = origin, s, path
	return ""
}

// vendorTakes reports whether vendor is active and origin one of its sites.
func (a *Agent) vendorTakes(ctx context.Context, vendor, origin string) (bool, error) {
	v, err := a.rdb.HMGet(ctx, a.prefix+"v:"+vendor, "status", "origins").Result()
	if err != nil {
		return false, err
	}
	status, _ := v[0].(string)
	raw, _ := v[1].(string)
	var origins []string
	if status != "active" || json.Unmarshal([]byte(raw), &origins) != nil {
		return false, nil
	}
	return slices.Contains(origins, origin), nil
}

type payView struct {
	*payOrder
	Money, Site     string
	Tokens, Balance string // what the reader holds, in tokens and money
	Nonce           string
	Short           string // why it cannot be paid now, if so
	Daily           int64  // the site's automatic limit, 0 none
	ProposedDaily   int64
}

// payingView is the page that hands the payment to the vendor's gateway.
type payingView struct {
	Action, Payment, ReturnPath, Site string
	Price                             uint32
	Money                             string
}

func (a *Agent) pagePay(p *pageReq) error {
	ctx := p.r.Context()
	q := p.r.URL.Query()
	if p.r.Method == http.MethodPost {
		q = url.Values{}
		for k, v := range p.form.Values {
			q.Set(k, v)
		}
		delete(q, "csrf")
	}
	o, msg := parsePayOrder(q)
	if msg != "" {
		return pageError(http.StatusBadRequest, "This payment link is not valid. "+msg)
	}
	ok, err := a.vendorTakes(ctx, o.Vendor, o.Origin)
	if err != nil {
		return err
	}
	if !ok {
		return pageError(http.StatusForbidden, fmt.Sprintf(
			"This bank pays %s only on the sites it registered, and %s is not one of them: nothing was paid.", o.Vendor, o.Origin))
	}
	if p.uid == "" {
		return p.redirect("/login?next=" + url.QueryEscape(p.r.URL.RequestURI()))
	}
	if p.r.Method == http.MethodGet {
		hdr, err := a.hostedPay(ctx, p.uid, o, true, "auto\x00"+o.Vendor+"\x00"+o.Product+"\x00"+o.Return)
		if err == nil {
			return p.paying(o, hdr)
		}
		if err != errOverLimit {
			return p.payPage(o, err)
		}
		return p.payPage(o, nil)
	}
	nonce := p.form.Get("nonce")
	if !validNonce(nonce) {
		return pageError(http.StatusBadRequest, "This payment form is not valid. Go back to the article and try again.")
	}
	if p.form.Get("auto") == "on" {
		n, msg := parseTokens(p.form.Get("daily"), int64(a.cfg.MaxTokens))
		if msg != "" {
			p.form.Fail("daily", msg)
			return p.payPage(o, nil)
		}
		if err := a.setLimit(ctx, p.uid, o.Vendor, o.Origin, n); err != nil {
			return err
		}
	}
	hdr, err := a.hostedPay(ctx, p.uid, o, false, "click\x00"+nonce)
	if err != nil {
		return p.payPage(o, err)
	}
	return p.paying(o, hdr)
}

var nonceRE = regexp.MustCompile(`^[0-9a-f]{32}$`)

func validNonce(s string) bool { return nonceRE.MatchString(s) }

// setLimit sets the reader's automatic limit of a site, within maxLimits.
func (a *Agent) setLimit(ctx context.Context, uid, vendor, origin string, tokens int64) error {
	key, field := a.prefix+"lim:"+uid, limitField(vendor, origin)
	n, err := a.rdb.HLen(ctx, key).Result()
	if err != nil {
		return err
	}
	if n >= maxLimits {
		if ok, err := a.rdb.HExists(ctx, key, field).Result(); err != nil || !ok {
			return pageError(http.StatusConflict, fmt.Sprintf("At most %d sites are paid automatically: remove one on the Limits page first.", maxLimits))
		}
	}
	return a.rdb.HSet(ctx, key, field, tokens).Err()
}

// payPage asks for the reader's click; why (if not nil) says why the
// payment could not be made (no funds, a refused account).
func (p *pageReq) payPage(o *payOrder, why error) error {
	a, ctx := p.a, p.r.Context()
	bal, err := a.balance(ctx, p.uid)
	if err != nil {
		return err
	}
	free, bound, err := a.hostedBalance(ctx, p.uid)
	if err != nil {
		return err
	}
	daily, err := a.DailyLimit(ctx, p.uid, o.Vendor, o.Origin)
	if err != nil {
		return err
	}
	unit := int64(a.cfg.UnitValue)
	v := payView{payOrder: o, Money: a.money(int64(o.Price) * unit), Site: o.Origin,
		Tokens: strconv.FormatInt(bal/unit+free+bound, 10), Balance: a.money(bal),
		Nonce: randomHex(16), Daily: daily, ProposedDaily: max(defaultDaily, 5*int64(o.Price))}
	status := http.StatusOK
	if why != nil {
		e, ok := errors.AsType[*agentapi.Error](why)
		if !ok {
			return why
		}
		status, v.Short = e.Status, sentence(e.Message)
		if why == errNoFunds {
			v.Short = "Your balance does not cover these tokens. Top up, then come back to the article."
		}
	}
	form := p.form
	if form == nil || p.r.Method == http.MethodGet {
		form = web.NewForm()
		form.Values["daily"] = strconv.FormatInt(v.ProposedDaily, 10)
	}
	return p.render(status, "pay", "Pay "+o.Realm, form, v)
}

// paying answers with the form that carries the payment to the vendor's
// gateway: sent by a script at once, or by the reader's click without one.
// Its policy lets it post to that site only.
func (p *pageReq) paying(o *payOrder, payment string) error {
	p.w.Header().Set("Content-Security-Policy", web.PolicyPostingTo(o.Origin))
	return p.render(http.StatusOK, "paying", "Paid", nil, payingView{
		Action: o.Origin + payFormPath, Payment: payment, ReturnPath: o.ReturnPath, Site: o.Origin,
		Price: o.Price, Money: p.a.money(int64(o.Price) * int64(p.a.cfg.UnitValue)),
	})
}

// safeNext is where a log-in goes on: a path of this site, else the account.
func safeNext(next string) string {
	if next == "" || len(next) > maxReturnURL+512 || next[0] != '/' || strings.HasPrefix(next, "//") ||
		strings.ContainsFunc(next, func(r rune) bool { return r <= ' ' || r == '\\' || r == 0x7f }) {
		return "/account"
	}
	u, err := url.Parse(next)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil {
		return "/account"
	}
	return next
}
