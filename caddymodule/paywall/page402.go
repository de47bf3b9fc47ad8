package paywall

import (
	"crypto/sha256"
	_ "embed"
	"encoding/base64"
	"fmt"
	"html/template"
	"math/bits"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/hashwall/hashwall/payword"
)

// The default 402 page: one HTML template with its style sheet inlined
// (so the page needs no second request to the vendor's site, which could
// be priced or routed elsewhere) and allowed by its hash in the CSP.
var (
	//go:embed page402.html
	page402HTML string
	//go:embed page402.css
	page402CSS string

	defaultPage = template.Must(template.New("402").Parse(strings.Replace(page402HTML, "/*CSS*/", page402CSS, 1)))

	// pageCSP is the default page's policy: nothing but its own <style>.
	// No frame-ancestors: a vendor may frame its own pages.
	pageCSP = pageCSPBase + "'none'"
	// pageCSPBase is the policy up to form-action's sources: 'none', or
	// the bank's origin when the page has the pay button.
	pageCSPBase = "default-src 'none'; style-src 'sha256-" + cssHash(page402CSS) +
		"'; base-uri 'none'; form-action "
)

func cssHash(css string) string {
	sum := sha256.Sum256([]byte(css))
	return base64.StdEncoding.EncodeToString(sum[:])
}

// pageData is what a 402 page template sees (docs/paywall-page.md lists
// it for template authors: keep fields, add, never rename).
type pageData struct {
	Header string // the WWW-Authenticate value
	payword.Challenge
	Money      string // the price in money, "0.02 EUR"; empty without token_value
	TokenValue string // one token in money, "0.01 EUR"; empty without token_value
	Bank       string // the agent's host; empty unless its URL is http(s)
	BankURL    string // the agent's base URL, http(s) only, else empty
	SignupURL  string // BankURL + "/signup", or empty
	LoginURL   string // BankURL + "/login", or empty
	PayURL     string // BankURL + "/pay", or empty: the pay button's form action
	ReturnURL  string // the article's absolute URL as the browser asked for it; empty without PayURL or if the pay form could not return to it

	formAction string // the CSP's form-action source for the pay button, if the page has one
}

// TokenValue is what one token is worth: MinorUnits of Currency, as the
// agent's `unit_value` and `currency` say. The gateway learns neither from
// the agent, so the operator states them; they only label the 402 page.
type TokenValue struct {
	MinorUnits uint64 `json:"minor_units"`
	Currency   string `json:"currency"`
}

// maxMinorUnits bounds a token's value so that price × value never
// overflows (MaxPrice tokens).
const maxMinorUnits = 1 << 40

func checkTokenValue(v *TokenValue) error {
	if v == nil {
		return nil
	}
	if v.MinorUnits < 1 || v.MinorUnits > maxMinorUnits {
		return fmt.Errorf("token_value: %d minor units, must be 1..%d", v.MinorUnits, uint64(maxMinorUnits))
	}
	if !validCurrencyCode(v.Currency) {
		return fmt.Errorf("token_value: currency %q must be 1-8 characters of A-Z 0-9", v.Currency)
	}
	return nil
}

// validCurrencyCode is the agent's rule for its currency (docs/protocol.md §1).
func validCurrencyCode(s string) bool {
	if len(s) == 0 || len(s) > 8 {
		return false
	}
	for i := range len(s) {
		if c := s[i]; (c < 'A' || c > 'Z') && (c < '0' || c > '9') {
			return false
		}
	}
	return true
}

// money formats minor units with two decimals, as the bank's pages do.
func money(minor uint64, currency string) string {
	return fmt.Sprintf("%d.%02d %s", minor/100, minor%100, currency)
}

// newPageData fills what the page shows for request r (nil: no pay
// button). Values a check let through unchecked (a handler built in Go)
// fall back to less: tokens only, no bank link.
func newPageData(ch payword.Challenge, tv *TokenValue, r *http.Request) pageData {
	d := pageData{Header: ch.String(), Challenge: ch}
	if tv != nil && checkTokenValue(tv) == nil {
		if hi, lo := bits.Mul64(uint64(ch.Price), tv.MinorUnits); hi == 0 {
			d.Money, d.TokenValue = money(lo, tv.Currency), money(tv.MinorUnits, tv.Currency)
		}
	}
	if u := bankURL(ch.Agent); u != nil {
		d.Bank, d.BankURL = u.Host, u.String()
		base := strings.TrimRight(d.BankURL, "/")
		d.SignupURL, d.LoginURL, d.PayURL = base+"/signup", base+"/login", base+"/pay"
		if d.ReturnURL = returnURL(r); d.ReturnURL != "" {
			d.formAction = cspOrigin(u)
		}
	}
	return d
}

// csp is the page's policy: the pay button's form may go to the bank.
func (d *pageData) csp() string {
	if d.formAction == "" {
		return pageCSP
	}
	return pageCSPBase + d.formAction
}

// returnURL is the absolute URL of the article r asked for, as the browser
// asked for it (before any rewrite or stripped prefix), where the bank's
// pay form returns the reader; "" when the form's return could not name it
// (docs/protocol.md §7, "Paying with a form"). The scheme is Caddy's
// {http.request.scheme}: https when the request came over TLS.
func returnURL(r *http.Request) string {
	if r == nil || r.Host == "" {
		return ""
	}
	ru, u := r.RequestURI, r.URL
	if orig, ok := r.Context().Value(caddyhttp.OriginalRequestCtxKey).(http.Request); ok && orig.URL != nil {
		ru, u = orig.RequestURI, orig.URL
	}
	if !strings.HasPrefix(ru, "/") {
		ru = u.RequestURI() // absolute-form, or a request made in Go
	}
	if ru == "" || checkReturn(ru) != "" {
		return ""
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host + ru
}

// cspOrigin is bank URL u's origin as a CSP source. A host CSP cannot name
// (an IPv6 literal) or that could break the header gets its scheme alone.
func cspOrigin(u *url.URL) string {
	host, port := u.Hostname(), u.Port()
	ok := host != "" && !strings.Contains(u.Host, "[")
	for i := 0; ok && i < len(host); i++ {
		c := host[i]
		ok = 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '.'
	}
	for i := 0; ok && i < len(port); i++ {
		ok = '0' <= port[i] && port[i] <= '9'
	}
	if !ok {
		return u.Scheme + ":"
	}
	return u.Scheme + "://" + u.Host
}

// bankURL is the agent's base URL if it is an absolute http(s) URL without
// credentials, query or fragment: only such a URL becomes a link.
func bankURL(agent string) *url.URL {
	u, err := url.Parse(agent)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil || u.Opaque != "" {
		return nil
	}
	u.RawQuery, u.ForceQuery, u.Fragment, u.RawFragment = "", false, "", ""
	return u
}

// parseTokenValue reads `token_value <minor units> <currency>`; checks()
// judges the values.
func parseTokenValue(d *caddyfile.Dispenser, h *Handler) error {
	var minor, currency string
	if !d.AllArgs(&minor, &currency) {
		return d.ArgErr()
	}
	n, err := strconv.ParseUint(minor, 10, 64)
	if err != nil {
		return d.Errf("token_value: %q is not a number of minor units", minor)
	}
	h.TokenValue = &TokenValue{MinorUnits: n, Currency: currency}
	return nil
}
