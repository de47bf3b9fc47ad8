package e2e

import (
	"context"
	"fmt"
	"github.com/chromedp/cdproto/network"
	"io"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"

	"github.com/hashwall/hashwall/agentapi"
	"github.com/hashwall/hashwall/internal/testutil/chromiumtest"
	"github.com/hashwall/hashwall/internal/testutil/redistest"
)

// demo is `hashwall demo` on a real Redis: the newspaper behind the real
// gateway (Caddy), the bank with its pages, from the built binary.
type demo struct {
	site, bank, admin string
	vendor            string // the newspaper's vendor id (suffixed on a shared store)
	vendorToken       string // its API token
	story             string // what it printed
}

func startDemo(t *testing.T) *demo {
	t.Helper()
	hw, _ := binaries(t)
	rds := redistest.Start(t)
	site, bank := freePort(t), freePort(t)
	cmd, story := runDemo(t, hw, "--redis", rds.URL(), "--site", fmt.Sprintf("127.0.0.1:%d", site), "--agent", fmt.Sprintf("127.0.0.1:%d", bank))
	t.Cleanup(func() { cmd.Process.Signal(os.Interrupt); cmd.Wait() })
	creds := regexp.MustCompile(`ADMIN=(\S+) VENDOR=(\S+)`).FindStringSubmatch(story)
	if creds == nil {
		t.Fatalf("no operator's token in:\n%s", story)
	}
	vendor := regexp.MustCompile(`demo accounts (\S+) and`).FindStringSubmatch(story)
	if vendor == nil {
		t.Fatalf("no vendor id in:\n%s", story)
	}
	return &demo{site: fmt.Sprintf("http://127.0.0.1:%d", site), bank: fmt.Sprintf("http://127.0.0.1:%d", bank), admin: creds[1], vendorToken: creds[2], vendor: vendor[1], story: story}
}

// payButton is the 402 page's "Pay N tokens with <bank>" button.
const payButton = `form[action$="/pay"] button`

// clicked is what a click on the paywall's button took until the article
// was shown: seen by the browser (from the click event to the article's
// DOMContentLoaded and first contentful paint, on the browser's clock) and
// by the test driving it (from sending the click to seeing the heading,
// which adds the DevTools round trips).
type clicked struct {
	dcl, paint, driver time.Duration
	// Where the time went, also from the click: the bank's page handing
	// the payment on (the article's navigation starts) and the article's
	// last byte in (after the gateway's 303).
	handoff, response time.Duration
}

// read opens a priced article, presses the paywall's button and waits for
// the article's heading: the reader's whole click, timed from the click.
// The click's time is kept in the site's sessionStorage, which the article,
// at the same origin in the same tab, reads back.
func read(ctx context.Context, url, heading string, actions ...chromedp.Action[chromedp.Void]) (clicked, error) {
	var c clicked
	if err := chromedp.Do(ctx,
		chromedp.Navigate(url),
		chromedp.WaitVisible(chromedp.CSS(payButton)),
		evaluate(`addEventListener('click', e => sessionStorage.setItem('hw-click', String(performance.timeOrigin + e.timeStamp)), {capture: true, once: true})`),
	); err != nil {
		return c, fmt.Errorf("the paywall of %s: %w", url, err)
	}
	start := time.Now()
	steps := append([]chromedp.Action[chromedp.Void]{chromedp.Click(chromedp.CSS(payButton))}, actions...)
	steps = append(steps, chromedp.WaitVisible(`//h1[contains(., "`+heading+`")]`))
	if err := chromedp.Do(ctx, steps...); err != nil {
		return c, fmt.Errorf("paying for %s: %w", url, err)
	}
	c.driver = time.Since(start)
	// The paint entry can lag the heading's visibility by a frame: wait for it.
	const shown = `(() => {
		const click = +sessionStorage.getItem('hw-click');
		const nav = performance.getEntriesByType('navigation')[0];
		const paint = performance.getEntriesByName('first-contentful-paint')[0];
		if (!click || !nav || !paint || !nav.domContentLoadedEventEnd) return null;
		const at = t => performance.timeOrigin + t - click;
		return [at(nav.domContentLoadedEventEnd), at(paint.startTime), at(0), at(nav.responseEnd)];
	})()`
	for end := time.Now().Add(2 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		ms, err := chromedp.Run(ctx, chromedp.Evaluate[[]float64](shown))
		if err != nil {
			return c, fmt.Errorf("timing %s: %w", url, err)
		}
		if len(ms) == 4 {
			c.dcl, c.paint, c.handoff, c.response = time.Duration(ms[0]*1e6), time.Duration(ms[1]*1e6), time.Duration(ms[2]*1e6), time.Duration(ms[3]*1e6)
			return c, nil
		}
		if time.Now().After(end) {
			return c, fmt.Errorf("%s: no paint timing", url)
		}
	}
}

// evaluate runs a script whose value does not matter.
func evaluate(js string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := chromedp.Evaluate[any](js)(ctx, t)
		return err
	})
}

func mustRead(t *testing.T, ctx context.Context, url, heading string, actions ...chromedp.Action[chromedp.Void]) clicked {
	t.Helper()
	sctx, cancel := context.WithTimeout(ctx, stepTimeout)
	defer cancel()
	c, err := read(sctx, url, heading, actions...)
	if err != nil {
		failAt(t, ctx, err)
	}
	return c
}

// stepTimeout bounds one step of a browser story, so that a step that
// hangs fails with the page it hung on rather than running out the test.
const stepTimeout = 30 * time.Second

// step runs one step of a browser story.
func step(t *testing.T, ctx context.Context, what string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	sctx, cancel := context.WithTimeout(ctx, stepTimeout)
	defer cancel()
	if err := chromedp.Do(sctx, actions...); err != nil {
		failAt(t, ctx, fmt.Errorf("%s: %w", what, err))
	}
}

// failAt fails the test with the page the browser is at.
func failAt(t *testing.T, ctx context.Context, err error) {
	t.Helper()
	dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	body, _ := chromedp.Run(dctx, chromedp.Text(chromedp.CSS(`body`)))
	loc, _ := chromedp.Run(dctx, chromedp.Location())
	t.Fatalf("%v\nat %s:\n%s", err, loc, body)
}

// scripts turns the tab's JavaScript on or off.
func scripts(on bool) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := cdp.Call(ctx, t, emulation.SetScriptExecutionDisabled, emulation.SetScriptExecutionDisabledParams{Value: !on})
		return err
	})
}

func location(t *testing.T, ctx context.Context) string {
	t.Helper()
	loc, err := chromedp.Run(ctx, chromedp.Location())
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

// TestBrowserPayFromPaywall is issue 12's story in headless Chromium,
// against the demo's real gateway, bank and Redis: a reader with nothing
// installed signs up, tops up, and reads with one click per article.
func TestBrowserPayFromPaywall(t *testing.T) {
	ctx := chromiumtest.Context(t, 3*time.Minute)
	d := startDemo(t)

	// Sign up and top up.
	step(t, ctx, "signing up and topping up",
		chromedp.Navigate(d.bank+"/signup"),
		chromedp.WaitVisible(chromedp.CSS(`#f-username`)),
		chromedp.SendKeys(chromedp.CSS(`#f-username`), "rosa"),
		chromedp.SendKeys(chromedp.CSS(`#f-password`), "a long enough password"),
		chromedp.SendKeys(chromedp.CSS(`#f-password2`), "a long enough password"),
		chromedp.Submit(chromedp.CSS(`#f-username`)),
		chromedp.WaitVisible(chromedp.CSS(`a[href="/topup"]`)),
		chromedp.Navigate(d.bank+"/topup"),
		chromedp.WaitVisible(chromedp.CSS(`#f-tokens`)),
		chromedp.SendKeys(chromedp.CSS(`#f-tokens`), "1000"),
		chromedp.Submit(chromedp.CSS(`#f-tokens`)),
		chromedp.WaitVisible(`//h1[contains(., "Top-up complete")]`),
	)

	// A priced article: the paywall, the bank's pay page, the article.
	step(t, ctx, "the paywall of moon-landing", chromedp.Navigate(d.site+"/articles/moon-landing"), chromedp.WaitVisible(chromedp.CSS(payButton)))
	chromiumtest.Screenshot(t, ctx, "paywall-402")
	step(t, ctx, "the button", chromedp.Click(chromedp.CSS(payButton)), chromedp.WaitVisible(chromedp.CSS(`button.primary`)))
	if loc := location(t, ctx); !strings.HasPrefix(loc, d.bank+"/pay?") {
		t.Fatalf("the button led to %s", loc)
	}
	step(t, ctx, "ticking the automatic limit",
		chromedp.Click(chromedp.CSS(`input[name=auto]`)),
		chromedp.SetValue(chromedp.CSS(`#f-daily`), "60"),
	)
	chromiumtest.Screenshot(t, ctx, "bank-pay")
	step(t, ctx, "paying for moon-landing", chromedp.Click(chromedp.CSS(`button.primary`)), chromedp.WaitVisible(`//h1[contains(., "Moon landing")]`))
	if loc := location(t, ctx); loc != d.site+"/articles/moon-landing" {
		t.Fatalf("after paying the reader is at %s", loc)
	}
	chromiumtest.Screenshot(t, ctx, "paid-article")
	// The grant cookie opens it again without paying.
	step(t, ctx, "reloading moon-landing", chromedp.Reload(), chromedp.WaitVisible(`//h1[contains(., "Moon landing")]`))

	// Within the automatic limit (60 a day), each next article is one
	// click: timed over 20 articles. Each is followed by a click through
	// the reference, the same pages served by handlers that do no work
	// (staticFlow), so that both see the machine in the same state.
	paywall, heading := staticFlow(t, ctx, d)
	var dcl, paint, driver, handoff, response, bare []time.Duration
	for i := 1; i <= 20; i++ {
		c := mustRead(t, ctx, fmt.Sprintf("%s/articles/archive/%d", d.site, i), fmt.Sprintf("story %d", i))
		dcl, paint, driver = append(dcl, c.dcl), append(paint, c.paint), append(driver, c.driver)
		handoff, response = append(handoff, c.handoff), append(response, c.response)
		bare = append(bare, mustRead(t, ctx, paywall, heading).paint)
	}
	for _, f := range []struct {
		what string
		took []time.Duration
	}{
		{"to the bank's page sending the payment on (browser's clock)", handoff},
		{"to the article's last byte, after the gateway's 303 (browser's clock)", response},
		{"to the article's DOMContentLoaded (browser's clock)", dcl},
		{"to the article's first contentful paint (browser's clock)", paint},
		{"to the heading seen by the test (adds DevTools round trips)", driver},
		{"through the reference, the same pages from handlers that do no work, to its first contentful paint", bare},
	} {
		slices.Sort(f.took)
		median, p90 := f.took[len(f.took)/2], f.took[len(f.took)*9/10]
		t.Logf("click on the paywall's button %s, 20 articles: median %v, p90 %v, min %v, max %v",
			f.what, median.Round(time.Millisecond), p90.Round(time.Millisecond), f.took[0].Round(time.Millisecond), f.took[len(f.took)-1].Round(time.Millisecond))
		// 150 ms is the figure to reach on a quiet machine (README); the
		// test only catches a flow gone wrong, as CI machines are loaded.
		if median > time.Second {
			t.Errorf("median %v from click %s", median, f.what)
		}
	}

	// Both sorted above.
	t.Logf("the bank and the gateway add %v to the reference's median first contentful paint", (paint[len(paint)/2] - bare[len(bare)/2]).Round(time.Millisecond))

	// A day pass (20 tokens, over what is left of the limit: the bank asks),
	// then another page of that day's issue opens without paying.
	mustRead(t, ctx, d.site+"/issues/2026-11-25/front", "front page", chromedp.Click(chromedp.CSS(`button.primary`)))
	step(t, ctx, "the day pass opening the sport page", chromedp.Navigate(d.site+"/issues/2026-11-25/sport"), chromedp.WaitVisible(`//h1[contains(., "sport")]`))

	// Log out at the bank in the middle: the button asks to log in, then
	// pays and returns to the article.
	step(t, ctx, "logging out",
		chromedp.Navigate(d.bank+"/account"),
		chromedp.Click(chromedp.CSS(`form[action="/logout"] button`)),
		chromedp.WaitVisible(chromedp.CSS(`#f-username`)),
	)
	mustRead(t, ctx, d.site+"/articles/archive/100", "story 100",
		chromedp.WaitVisible(chromedp.CSS(`#f-username`)),
		chromedp.SendKeys(chromedp.CSS(`#f-username`), "rosa"),
		chromedp.SendKeys(chromedp.CSS(`#f-password`), "a long enough password"),
		chromedp.Submit(chromedp.CSS(`#f-username`)),
		chromedp.WaitVisible(chromedp.CSS(`button.primary`)), // over the day's limit now: asks
		chromedp.Click(chromedp.CSS(`button.primary`)))

	// Scripts off: the bank's page shows a button that carries the payment.
	step(t, ctx, "scripts off", scripts(false))
	mustRead(t, ctx, d.site+"/articles/archive/200", "story 200",
		chromedp.WaitVisible(chromedp.CSS(`button.primary`)),
		chromedp.Click(chromedp.CSS(`button.primary`)),
		chromedp.WaitVisible(chromedp.CSS(`form#pay button`)),
		chromedp.Click(chromedp.CSS(`form#pay button`)))
	step(t, ctx, "scripts on", scripts(true))

	// Two tabs paying at once, both within a raised limit.
	step(t, ctx, "raising the limit",
		chromedp.Navigate(d.bank+"/limits"),
		chromedp.WaitVisible(chromedp.CSS(`#f-origin`)),
		chromedp.SendKeys(chromedp.CSS(`#f-origin`), d.site),
		chromedp.SendKeys(chromedp.CSS(`#f-vendor`), d.vendor),
		chromedp.SendKeys(chromedp.CSS(`#f-tokens`), "500"),
		chromedp.Submit(chromedp.CSS(`#f-tokens`)),
		chromedp.WaitVisible(`//td[contains(., "500")]`),
	)
	tabs := make([]context.Context, 2)
	for i := range tabs {
		tab := chromiumtest.Tab(t, ctx)
		tabs[i] = tab
		step(t, tab, "the paywall in a second tab", chromedp.Navigate(fmt.Sprintf("%s/articles/archive/%d", d.site, 300+i)), chromedp.WaitVisible(chromedp.CSS(payButton)))
	}
	var wg sync.WaitGroup
	errs := make([]error, len(tabs))
	for i, tab := range tabs {
		wg.Go(func() {
			sctx, cancel := context.WithTimeout(tab, stepTimeout)
			defer cancel()
			errs[i] = chromedp.Do(sctx, chromedp.Click(chromedp.CSS(payButton)), chromedp.WaitVisible(fmt.Sprintf(`//h1[contains(., "story %d")]`, 300+i)))
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			failAt(t, tabs[i], fmt.Errorf("tab %d: %w", i, err))
		}
	}

	// The account page lists what was paid; the bank credits the newspaper
	// every token: the demo's own 2, then 2, the reference's captured
	// payment 2, 20×2 + 20 + 2 + 2 + 2×2.
	step(t, ctx, "the account page", chromedp.Navigate(d.bank+"/account"), chromedp.WaitVisible(`//h2[contains(., "Articles you paid for")]`))
	chromiumtest.Screenshot(t, ctx, "bank-account-paid")
	const want = 2 + 2 + 20*2 + 2 + 20 + 2 + 2 + 2*2
	bank := agentapi.NewClient(d.bank, nil).WithToken(d.admin)
	for end := time.Now().Add(15 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		st, err := bank.VendorStatement(t.Context(), d.vendor, time.Time{}, time.Time{})
		if err == nil && st.Credited == want {
			break
		}
		if time.Now().After(end) {
			t.Fatalf("the newspaper was credited %+v (%v), want %d tokens", st, err, want)
		}
	}

	// The newspaper logs in at the bank with its API token: its revenue
	// page shows what the reader just paid, as the API does, and the
	// statement's CSV it downloads is the API's.
	news := agentapi.NewClient(d.bank, nil).WithToken(d.vendorToken)
	rev, err := news.Revenue(t.Context(), time.Time{}, time.Time{})
	if err != nil || rev.Credited-rev.Voided != want {
		t.Fatalf("the newspaper's revenue %+v (%v), want %d", rev, err, want)
	}
	step(t, ctx, "the newspaper's log-in",
		chromedp.Navigate(d.bank+"/vendor/login"),
		chromedp.WaitVisible(chromedp.CSS(`#f-token`)),
		chromedp.SendKeys(chromedp.CSS(`#f-token`), d.vendorToken),
		chromedp.Submit(chromedp.CSS(`#f-token`)),
		chromedp.WaitVisible(`//h1[contains(., "Overview")]`),
		chromedp.Click(`//nav/a[.="Revenue"]`),
		chromedp.WaitVisible(chromedp.CSS(`figure.ranking`)),
	)
	net, err := chromedp.Run(ctx, chromedp.Text(`//p[@class="label" and .="Net takings"]/following-sibling::p[@class="figure"]`))
	if err != nil || net != fmt.Sprintf("%d.%02d EUR", want/100, want%100) {
		t.Fatalf("the revenue page shows net takings %q (%v), want %d tokens", net, err, want)
	}
	chromiumtest.Screenshot(t, ctx, "vendor-revenue-demo")
	step(t, ctx, "the statement page", chromedp.Click(`//nav/a[.="Statements"]`), chromedp.WaitVisible(`//a[.="CSV"]`))
	csvURL, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.evaluate('//a[.="CSV"]', document).iterateNext().href`))
	if err != nil {
		t.Fatal(err)
	}
	// The download, with the browser's session cookie (the pages' CSP lets
	// no script fetch).
	cookies, err := chromedp.Run(ctx, chromedp.Action[[]*network.Cookie](func(c context.Context, tg *chromedp.Target) ([]*network.Cookie, error) {
		res, err := cdp.Call(c, tg, network.GetCookies, network.GetCookiesParams{URLs: []string{csvURL}})
		return res.Cookies, err
	}))
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, csvURL, nil)
	for _, c := range cookies {
		req.AddCookie(&http.Cookie{Name: c.Name, Value: c.Value})
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	got := string(body)
	u, _ := url.Parse(csvURL)
	from, _ := strconv.ParseInt(u.Query().Get("from"), 10, 64)
	to, _ := strconv.ParseInt(u.Query().Get("to"), 10, 64)
	api, err := news.StatementCSV(t.Context(), time.Unix(from, 0), time.Unix(to, 0))
	if err != nil || got != string(api) || !strings.Contains(got, "claims") {
		t.Fatalf("the downloaded CSV:\n%s\nthe API's (%v):\n%s", got, err, api)
	}
}

// TestBrowserOperator: at the demo's bank, in headless Chromium, the
// operator logs in with the admin token, credits the demo's reader and
// revokes the reader's account; the newspaper's gateway then refuses the
// reader's wallet, whose certificates the revocation list now holds.
func TestBrowserOperator(t *testing.T) {
	ctx := chromiumtest.Context(t, 2*time.Minute)
	d := startDemo(t)
	_, wl := binaries(t)
	m := regexp.MustCompile(`HASHWALL_WALLET=(\S+) HASHWALL_PASSWORD=(\S+)[\s\S]*log in as "(\S+)"`).FindStringSubmatch(d.story)
	if m == nil {
		t.Fatalf("no wallet or reader in:\n%s", d.story)
	}
	admin, reader := d.admin, m[3]
	wallet := &walletCLI{bin: wl, path: m[1], password: m[2]}
	siteURL, bankURL := d.site, d.bank
	if got := wallet.must(t, "get", siteURL+"/articles/city-council"); !strings.Contains(got, "paid 2 token(s)") {
		t.Fatalf("before the revocation: %s", got)
	}
	api := agentapi.NewClient(bankURL, nil).WithToken(admin)
	before, err := api.Users(t.Context(), reader, "", 1)
	if err != nil || len(before.Users) != 1 {
		t.Fatalf("the reader at the bank: %+v %v", before, err)
	}

	step(t, ctx, "the operator's log-in and credit",
		chromedp.Navigate(bankURL+"/admin/login"),
		chromedp.WaitVisible(chromedp.CSS(`#f-token`)),
		chromedp.SendKeys(chromedp.CSS(`#f-token`), admin),
		chromedp.Submit(chromedp.CSS(`#f-token`)),
		chromedp.WaitVisible(`//h1[contains(., "Overview")]`),
		chromedp.Click(`//nav/a[.="Credit"]`),
		chromedp.WaitVisible(chromedp.CSS(`#f-username`)),
		chromedp.SendKeys(chromedp.CSS(`#f-username`), reader),
		chromedp.SendKeys(chromedp.CSS(`#f-amount`), "5.00"),
		chromedp.SendKeys(chromedp.CSS(`#f-ref`), "sorry-for-the-outage"),
		chromedp.Submit(chromedp.CSS(`#f-ref`)),
		chromedp.WaitVisible(`//h1[contains(., "Credited")]`),
	)
	after, err := api.Users(t.Context(), reader, "", 1)
	if err != nil || after.Users[0].Balance != before.Users[0].Balance+500 {
		t.Fatalf("after a credit of 5.00: %+v (before %+v) %v", after, before, err)
	}

	step(t, ctx, "the revocation",
		chromedp.Click(`//nav/a[.="Revoke"]`),
		chromedp.WaitVisible(chromedp.CSS(`#f-username`)),
		chromedp.SendKeys(chromedp.CSS(`#f-username`), reader),
		chromedp.SendKeys(chromedp.CSS(`#f-reason`), "the reader reported a stolen laptop"),
		chromedp.Submit(chromedp.CSS(`#f-reason`)),
		chromedp.WaitVisible(chromedp.CSS(`table.revocations`)),
	)
	chromiumtest.Screenshot(t, ctx, "admin-revoked")
	// The gateway pulls the revocation list every second (crl_interval):
	// within a few seconds, and on every article after, the wallet's
	// payment is refused, and it pays nothing.
	var refused string
	for k, end := 0, time.Now().Add(5*time.Second); ; k++ {
		article := fmt.Sprintf("%s/articles/archive/%d", siteURL, 700+k)
		stdout, stderr, err := wallet.run(t, "get", "--max-price", "2", article)
		if err != nil && strings.Contains(stderr, `the payment refused: "revoked"`) {
			refused = article
			break
		}
		if time.Now().After(end) {
			t.Fatalf("the gateway still takes the revoked reader's payment: %v\n%s%s", err, stdout, stderr)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if _, stderr, err := wallet.run(t, "get", "--max-price", "2", siteURL+"/articles/archive/799"); err == nil || !strings.Contains(stderr, "revoked") {
		t.Fatalf("another article after the revocation: %v %s", err, stderr)
	}
	for _, l := range strings.Split(wallet.must(t, "history"), "\n") {
		if strings.Contains(l, "paid") && (strings.HasSuffix(l, refused) || strings.HasSuffix(l, "/articles/archive/799")) {
			t.Fatalf("a refused payment paid: %s", l)
		}
	}
}
