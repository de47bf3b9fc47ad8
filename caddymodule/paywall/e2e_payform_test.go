package paywall

import (
	"bufio"
	"bytes"
	"fmt"
	"html"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/hashwall/hashwall/internal/testutil/chromiumtest"

	"github.com/hashwall/hashwall/payword"
)

// End to end through real Caddy, the real agent and Redis (see
// e2e_world_test.go): the 402 page's pay button, and payments posted as
// the bank's hosted wallet posts them, to /.well-known/hashwall/pay.
func TestE2EPayForm(t *testing.T) {
	w := newWorld(t, worldOpts{})
	wal := w.buy(3 * 128)
	jar, _ := cookiejar.New(nil)
	reader := &http.Client{Jar: jar, Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

	// The 402 page: a GET form to the bank's /pay, returning to the
	// article as asked for, and a policy that lets it go there only.
	const moon = "/articles/moon"
	resp, body := w.fetch(nil, "GET", w.news+moon+"?ref=home", "Accept", "text/html")
	b := payFields(t, body)
	want := url.Values{"vendor": {testVendor}, "product": {moon}, "price": {"2"}, "realm": {testVendor}, "return": {w.news + moon + "?ref=home"}}
	if f := formTag.FindStringSubmatch(body); resp.StatusCode != 402 || f == nil || html.UnescapeString(f[1]) != w.proxy.URL+"/pay" ||
		b.values.Encode() != want.Encode() {
		t.Fatalf("402 page: %d, form %q, fields %v", resp.StatusCode, f, b.values)
	}
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.HasSuffix(csp, "; form-action "+w.proxy.URL) {
		t.Fatalf("CSP %q, want form-action %s", csp, w.proxy.URL)
	}

	// Paid by form: 303 to the article with the grant, which opens it.
	pay := payOf(wal.Header(t, 0, 2, 2, testVendor, moon))
	form := formBody("payment", pay, "return", moon+"?ref=home")
	resp, body = w.postPayForm(reader, form)
	receipt := resp.Header.Get("Payment-Receipt")
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != moon+"?ref=home" || receipt == "" ||
		resp.Header.Get("Cache-Control") != "no-store" || body != "" {
		t.Fatalf("paid by form: %d %v %q", resp.StatusCode, resp.Header, body)
	}
	if ck := cookieNamed(resp, grantCookie); ck == nil || ck.Value != receipt || ck.Path != moon || !ck.HttpOnly || ck.SameSite != http.SameSiteLaxMode {
		t.Fatalf("grant cookie %+v", ck)
	}
	if n := w.cms.hitsOf(moon); n != 1 {
		t.Fatalf("the CMS served %s %d times for the form, want once", moon, n)
	}
	loc, _ := url.Parse(w.news)
	resp, body = w.fetch(reader, "GET", loc.ResolveReference(&url.URL{Path: moon, RawQuery: "ref=home"}).String())
	if resp.StatusCode != 200 || body != w.content(moon) {
		t.Fatalf("the article after the form: %d %q", resp.StatusCode, body)
	}
	// The same form again (a reload that resubmits it): the same grant.
	resp, _ = w.postPayForm(nil, form)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Payment-Receipt") != receipt {
		t.Fatalf("the form again: %d, same grant %v", resp.StatusCode, resp.Header.Get("Payment-Receipt") == receipt)
	}

	// A forged token: 403 bad_token, no grant.
	p := wal.Pay(t, 0, 4, 2, testVendor, "/articles/forged")
	p.Token[5] ^= 0x20
	forged := payOf(p.Header())
	resp, body = w.postPayForm(nil, formBody("payment", forged, "return", "/articles/forged"))
	w.checkFormRefused(t, resp, body, 403, payword.CodeBadToken, forged)
	// The tokens spent on the moon, at another article: 409 replay.
	replayed := payOf(wal.Header(t, 0, 2, 2, testVendor, "/articles/other"))
	resp, body = w.postPayForm(nil, formBody("payment", replayed, "return", "/articles/other"))
	w.checkFormRefused(t, resp, body, 409, payword.CodeReplay, replayed)
	// Paid for /articles/a, returning to /articles/b: wrong_product, and
	// nothing spent: the same payment then buys /articles/a.
	forA := payOf(wal.Header(t, 0, 4, 2, testVendor, "/articles/a"))
	resp, body = w.postPayForm(nil, formBody("payment", forA, "return", "/articles/b"))
	w.checkFormRefused(t, resp, body, 402, payword.CodeWrongProduct, forA)
	if resp, _ = w.postPayForm(nil, formBody("payment", forA, "return", "/articles/a")); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("the payment refused for /articles/b, at /articles/a: %d", resp.StatusCode)
	}

	// An upstream-priced page, streamed with flushes: the POST's answer
	// holds none of it, on the wire.
	const news = "/news/today"
	r := rawPost(t, w.news, payPath, formBody("payment", payOf(wal.Header(t, 0, 7, 3, testVendor, news)), "return", news))
	grant := r.Header.Get("Payment-Receipt")
	if r.StatusCode != http.StatusSeeOther || r.Header.Get("Location") != news || grant == "" || strings.Contains(r.wire, e2eMarker) {
		t.Fatalf("upstream-priced by form: %d %q", r.StatusCode, r.wire)
	}
	if resp, body = w.fetch(nil, "GET", w.news+news, "Cookie", grantCookie+"="+grant); resp.StatusCode != 200 || strings.Count(body, e2eMarker) != 8 {
		t.Fatalf("the upstream-priced page on its grant: %d", resp.StatusCode)
	}
	w.waitClaims(wal.Serial, 3, 10*time.Second)

	// A rule-priced page the CMS does not have: voided, no grant.
	missing := payOf(wal.Header(t, 0, 9, 2, testVendor, "/articles/missing-page"))
	resp, body = w.postPayForm(nil, formBody("payment", missing, "return", "/articles/missing-page"))
	w.checkFormRefused(t, resp, body, 404, payword.CodeVoided, missing)

	// Other methods; and the form's path never reaches the CMS.
	if resp, _ = w.fetch(nil, "GET", w.news+payPath); resp.StatusCode != 405 || resp.Header.Get("Allow") != "POST" {
		t.Fatalf("GET %s: %d %v", payPath, resp.StatusCode, resp.Header)
	}
	if n := w.cms.hitsOf(payPath); n != 0 {
		t.Fatalf("the CMS saw the form's path %d times", n)
	}

	// The vendor's store down: 503, nothing granted.
	w.newsRedis.Kill()
	down := payOf(wal.Header(t, 0, 11, 2, testVendor, "/articles/down"))
	resp, body = w.postPayForm(nil, formBody("payment", down, "return", "/articles/down"))
	w.checkFormRefused(t, resp, body, 503, payword.CodeUnavailable, down)
	if n := w.cms.hitsOf("/articles/down"); n != 0 {
		t.Fatalf("a payment refused for want of Redis reached the CMS %d times", n)
	}
	if l := w.cms.leaked(); len(l) > 0 {
		t.Fatalf("priced articles reached the CMS unpaid: %q", l)
	}
}

// postPayForm posts body to the newspaper's pay path as a browser posts
// the bank's form (c nil: a client that follows no redirect).
func (w *world) postPayForm(c *http.Client, body string) (*http.Response, string) {
	w.t.Helper()
	req, err := http.NewRequest(http.MethodPost, w.news+payPath, strings.NewReader(body))
	if err != nil {
		w.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "text/html")
	req.Header.Set("Origin", w.proxy.URL)
	if c == nil {
		c = &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	resp, err := c.Do(req)
	if err != nil {
		w.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		w.t.Fatal(err)
	}
	return resp, string(b)
}

// checkFormRefused checks the form's page for a payment refused with code.
func (w *world) checkFormRefused(t *testing.T, resp *http.Response, body string, status int, code payword.ErrorCode, pay string) {
	t.Helper()
	if resp.StatusCode != status || resp.Header.Get("Payment-Error") != string(code) || resp.Header.Get("Location") != "" ||
		len(resp.Cookies()) != 0 || resp.Header.Get("Payment-Receipt") != "" || resp.Header.Get("Cache-Control") != "no-store" ||
		resp.Header.Get("Content-Security-Policy") != payPageCSP || !strings.Contains(body, "Back to the article") {
		t.Fatalf("refused form: %d %v %q, want %d %s", resp.StatusCode, resp.Header, body, status, code)
	}
	if strings.Contains(body, pay) || strings.Contains(body, e2eMarker) {
		t.Fatalf("the refusal holds the payment or the article: %q", body)
	}
}

func cookieNamed(resp *http.Response, name string) *http.Cookie {
	for _, c := range resp.Cookies() {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// rawPost posts a form on a new connection and reads every byte the server
// sends until it closes it.
func rawPost(t *testing.T, base, target, body string) rawResponse {
	t.Helper()
	addr := strings.TrimPrefix(base, "http://")
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(c, "POST %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: %d\r\n\r\n%s",
		target, addr, len(body), body)
	wire, err := io.ReadAll(c)
	if err != nil && len(wire) == 0 {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(wire)), &http.Request{Method: http.MethodPost})
	if err != nil {
		t.Fatalf("unreadable answer %q: %v", wire, err)
	}
	rest, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return rawResponse{Response: resp, body: string(rest), wire: string(wire)}
}

// TestE2EPayFormBrowser: in headless Chromium, the 402 page's button leaves
// for the bank (its policy lets the form go there), and a bank's page on
// another site (localhost, the news being 127.0.0.1) that posts the
// payment as a form brings the reader back to the article: the browser
// stores the grant cookie from the cross-site POST's 303 and sends it on
// the article's GET. The bank's page here is the test's stand-in for the
// hosted wallet (issue 12): it pays with a wallet of the test.
func TestE2EPayFormBrowser(t *testing.T) {
	ctx := chromiumtest.Context(t, 60*time.Second)
	w := newWorld(t, worldOpts{})
	wal := w.buy(128)
	// The stand-in bank: /pay pays the product of the challenge's form.
	var paid string
	bank := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		ret, err := url.Parse(q.Get("return"))
		if r.URL.Path != "/pay" || err != nil || q.Get("vendor") != testVendor || q.Get("price") != "2" {
			http.Error(rw, "bad pay request", 400)
			return
		}
		paid = q.Get("product")
		pay := payOf(wal.Header(t, 0, 2, 2, testVendor, paid))
		action := (&url.URL{Scheme: ret.Scheme, Host: ret.Host, Path: payPath}).String()
		rw.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(rw, `<!doctype html><title>bank</title><form method="post" action="%s">`+
			`<input type="hidden" name="payment" value="%s"><input type="hidden" name="return" value="%s">`+
			`<button>Continue</button></form><script>document.forms[0].submit()</script>`,
			html.EscapeString(action), pay, html.EscapeString(ret.RequestURI()))
	}))
	t.Cleanup(bank.Close)
	bankURL := strings.Replace(bank.URL, "127.0.0.1", "localhost", 1)

	// The button, clicked: the browser goes to the challenge's bank.
	const moon = "/articles/moon"
	err := chromedp.Do(ctx,
		chromedp.Navigate(w.news+moon+"?ref=home"),
		chromedp.WaitVisible(chromedp.CSS(`form.pay button`)),
	)
	if err != nil {
		t.Fatal(err)
	}
	chromiumtest.Screenshot(t, ctx, "payform-402")
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`form.pay button`))); err != nil {
		t.Fatal(err)
	}
	var at string
	waitFor(t, "the button's navigation", 10*time.Second, func() bool {
		at, err = chromedp.Run(ctx, chromedp.Location())
		return err == nil && !strings.HasPrefix(at, w.news)
	})
	if !strings.HasPrefix(at, w.proxy.URL+"/pay?vendor="+testVendor+"&product=") || !strings.Contains(at, "&return="+url.QueryEscape(w.news+moon+"?ref=home")) {
		t.Fatalf("the button led to %q", at)
	}
	// The bank's page on another site posts the payment back.
	q, _ := url.Parse(at)
	err = chromedp.Do(ctx,
		chromedp.Navigate(bankURL+"/pay?"+q.RawQuery),
		chromedp.WaitVisible(`//body[contains(., "`+e2eMarker+`")]`),
	)
	if err != nil {
		t.Fatal(err)
	}
	if at, err = chromedp.Run(ctx, chromedp.Location()); err != nil {
		t.Fatal(err)
	}
	text, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`body`)))
	if err != nil {
		t.Fatal(err)
	}
	if at != w.news+moon+"?ref=home" || paid != moon || strings.TrimSpace(text) != w.content(moon) {
		t.Fatalf("after the bank's form: at %q, paid %q, page %q", at, paid, text)
	}
	// The grant cookie stays: the article again, without paying.
	if err := chromedp.Do(ctx, chromedp.Navigate(w.news+moon)); err != nil {
		t.Fatal(err)
	}
	if text, err = chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`body`))); err != nil || strings.TrimSpace(text) != w.content(moon) {
		t.Fatalf("the article again: %q %v", text, err)
	}
	// The same tokens for another article: the bank's form gets the
	// refusal's page, with the way back.
	other := url.Values{"vendor": {testVendor}, "product": {"/articles/other"}, "price": {"2"}, "realm": {testVendor}, "return": {w.news + "/articles/other"}}
	err = chromedp.Do(ctx,
		chromedp.Navigate(bankURL+"/pay?"+other.Encode()),
		chromedp.WaitVisible(`//h1[contains(., "Payment refused")]`),
	)
	if err != nil {
		t.Fatal(err)
	}
	if text, err = chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`main`))); err != nil || !strings.Contains(text, "spent at this site already") || !strings.Contains(text, "replay") {
		t.Fatalf("the replay's page: %q %v", text, err)
	}
	chromiumtest.Screenshot(t, ctx, "payform-refused")
	if n := w.cms.hitsOf(moon); n != 3 {
		t.Fatalf("the CMS served %s %d times, want 3 (the form's payment, the 303's GET, the visit again)", moon, n)
	}
	if l := w.cms.leaked(); len(l) > 0 {
		t.Fatalf("priced articles reached the CMS unpaid: %q", l)
	}
}
