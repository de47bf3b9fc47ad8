package e2e

import (
	"context"
	"html"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
)

// The reference of the click's figure: the paywall, the bank's hand-off
// page and the article, byte for byte and with their headers, served by
// handlers that do no work (no Redis, no payment, no proxy) from two
// loopback servers standing for the newspaper and the bank. The same
// browser takes the same three navigations; what is left is the browser's
// and the machine's own cost.

// captured is a page as a server answered it.
type captured struct {
	status int
	header http.Header
	body   string
}

func capture(t *testing.T, req *http.Request) captured {
	t.Helper()
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return captured{resp.StatusCode, resp.Header, string(body)}
}

func get(t *testing.T, u string, header ...string) captured {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, u, nil)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	return capture(t, req)
}

// replay writes c with its origins moved by r.
func (c captured) replay(w http.ResponseWriter, r *strings.Replacer) {
	for k, vs := range c.header {
		switch k {
		case "Date", "Content-Length", "Set-Cookie", "Transfer-Encoding":
			continue
		}
		for _, v := range vs {
			w.Header().Add(k, r.Replace(v))
		}
	}
	w.WriteHeader(c.status)
	io.WriteString(w, r.Replace(c.body))
}

var paymentField = regexp.MustCompile(`name="payment" value="([^"]*)"`)

// staticFlow captures the demo's pages of one article (the paying page
// from the browser's bank session, whose payment it then hands to the
// gateway like the page would) and serves them; it returns the URL of the
// paywall and the article's heading.
func staticFlow(t *testing.T, ctx context.Context, d *demo) (paywall, heading string) {
	t.Helper()
	const article = "/articles/archive/900"
	paywallPage := get(t, d.site+article, "Accept", "text/html")
	if paywallPage.status != http.StatusPaymentRequired {
		t.Fatalf("the paywall of %s: %d", article, paywallPage.status)
	}
	// The paying page needs the reader's bank session: the browser's cookie.
	cookies, err := chromedp.Run(ctx, chromedp.Action[[]*network.Cookie](func(c context.Context, tg *chromedp.Target) ([]*network.Cookie, error) {
		res, err := cdp.Call(c, tg, network.GetCookies, network.GetCookiesParams{URLs: []string{d.bank + "/pay"}})
		return res.Cookies, err
	}))
	if err != nil {
		t.Fatal(err)
	}
	q := url.Values{"vendor": {d.vendor}, "product": {article}, "price": {"2"}, "realm": {"The Daily Planet"}, "return": {d.site + article}}
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, d.bank+"/pay?"+q.Encode(), nil)
	for _, c := range cookies {
		req.AddCookie(&http.Cookie{Name: c.Name, Value: c.Value})
	}
	paying := capture(t, req)
	m := paymentField.FindStringSubmatch(paying.body)
	if paying.status != http.StatusOK || m == nil {
		t.Fatalf("the paying page: %d\n%s", paying.status, paying.body)
	}
	post, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, d.site+"/.well-known/hashwall/pay",
		strings.NewReader(url.Values{"payment": {html.UnescapeString(m[1])}, "return": {article}}.Encode()))
	post.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if c := capture(t, post); c.status != http.StatusSeeOther {
		t.Fatalf("handing the captured payment to the gateway: %d %s", c.status, c.body)
	}
	paid := get(t, d.site+"/free/archive/900") // the same page, served free
	files := map[string]captured{
		"/planet.css": get(t, d.site+"/planet.css"), "/static/site.css": get(t, d.bank+"/static/site.css"),
		"/static/pay.js": get(t, d.bank+"/static/pay.js"),
	}

	var site, bank *httptest.Server
	var moved *strings.Replacer
	serve := func(w http.ResponseWriter, r *http.Request, pages map[string]captured) {
		if c, ok := pages[r.URL.Path]; ok {
			c.replay(w, moved)
			return
		}
		http.NotFound(w, r)
	}
	site = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/paywall":
			paywallPage.replay(w, moved)
		case r.URL.Path == "/.well-known/hashwall/pay" && r.Method == http.MethodPost:
			w.Header().Set("Cache-Control", "no-store")
			http.Redirect(w, r, article, http.StatusSeeOther)
		case r.URL.Path == article:
			paid.replay(w, moved)
		default:
			serve(w, r, files)
		}
	}))
	t.Cleanup(site.Close)
	bank = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/pay" {
			paying.replay(w, moved)
			return
		}
		serve(w, r, files)
	}))
	t.Cleanup(bank.Close)
	moved = strings.NewReplacer(d.site, site.URL, d.bank, bank.URL)
	return site.URL + "/paywall", "story 900"
}
