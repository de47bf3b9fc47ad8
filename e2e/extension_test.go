package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/fetch"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/hashwall/hashwall/internal/testutil/chromiumtest"
)

// extensionDir is the unpacked browser wallet (wallet/extension).
func extensionDir(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs("../wallet/extension")
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// reader is the demo's reader account, as the demo printed it.
func (d *demo) reader(t *testing.T) (name, password string) {
	t.Helper()
	m := regexp.MustCompile(`reader "([^"]+)", password "([^"]+)"`).FindStringSubmatch(d.story)
	if m == nil {
		t.Fatalf("no reader account in:\n%s", d.story)
	}
	return m[1], m[2]
}

// walletStatus is what the extension's worker says of the wallet.
type walletStatus struct {
	Setup, Locked bool
	Balance       struct{ Tokens int }
	Pending       int
	History       []struct {
		Kind, Host, Product, Note string
		Tokens                    int
	}
	Timings []struct{ Work, Chosen, Total float64 }
}

// ask runs one of the worker's operations from an extension page.
func ask[T any](ctx context.Context, op string, args map[string]any) (T, error) {
	js := fmt.Sprintf(`chrome.runtime.sendMessage(Object.assign({op: %q}, %s)).then(r => { if (!r.ok) throw new Error(r.error); return r.result; })`, op, jsonOf(args))
	return chromedp.Run(ctx, chromedp.Evaluate[T](js, chromedp.EvalAwaitPromise))
}

// status reads the wallet's state through the popup page tab.
func status(t *testing.T, popup context.Context) walletStatus {
	t.Helper()
	s, err := ask[walletStatus](popup, "status", nil)
	if err != nil {
		t.Fatalf("the wallet's status: %v", err)
	}
	return s
}

// waitWallet waits until the wallet's state satisfies ok.
func waitWallet(t *testing.T, popup context.Context, what string, ok func(walletStatus) bool) walletStatus {
	t.Helper()
	var s walletStatus
	for end := time.Now().Add(10 * time.Second); time.Now().Before(end); time.Sleep(30 * time.Millisecond) {
		if s = status(t, popup); ok(s) {
			return s
		}
	}
	t.Fatalf("%s: the wallet is at %+v", what, s)
	return s
}

// open navigates the tab to url and waits until the page it shows passes
// the check (a script expression); it returns the time from the
// navigation's start, on the test's clock, to the page's first contentful
// paint, on the browser's (the same machine's wall clock).
func open(ctx context.Context, url, check string) (time.Duration, error) {
	start := time.Now()
	if _, err := chromedp.Call(ctx, page.Navigate, page.NavigateParams{URL: url}); err != nil {
		return 0, err // not a failed navigation: the extension replaces the 402's
	}
	js := fmt.Sprintf(`(() => {
		if (location.href !== %q || !(%s)) return 0;
		const paint = performance.getEntriesByName('first-contentful-paint')[0];
		return paint ? performance.timeOrigin + paint.startTime : 0;
	})()`, url, check)
	for end := time.Now().Add(15 * time.Second); time.Now().Before(end); time.Sleep(5 * time.Millisecond) {
		ms, err := chromedp.Run(ctx, chromedp.Evaluate[float64](js))
		if err != nil {
			continue // between documents
		}
		if ms > 0 {
			return time.UnixMicro(int64(ms * 1000)).Sub(start), nil
		}
	}
	return 0, fmt.Errorf("%s did not show the page (%s)", url, check)
}

// paidPage and freePage tell the demo newspaper's articles apart.
const (
	paidPage = `document.querySelector('p.paid') !== null`
	freePage = `document.querySelector('p.free') !== null`
)

func mustOpen(t *testing.T, ctx context.Context, url, check string) time.Duration {
	t.Helper()
	d, err := open(ctx, url, check)
	if err != nil {
		failAt(t, ctx, err)
	}
	return d
}

// welcome fills the extension's set-up page: the demo's bank, the reader,
// and the tokens to buy.
func welcome(ext *chromiumtest.Extension, d *demo, name, password string, tokens int) []chromedp.Action[chromedp.Void] {
	return []chromedp.Action[chromedp.Void]{
		chromedp.Navigate(ext.URL("welcome.html")), chromedp.WaitVisible(chromedp.CSS(`#bank`)),
		chromedp.SendKeys(chromedp.CSS(`#bank`), d.bank),
		chromedp.SendKeys(chromedp.CSS(`#username`), name),
		chromedp.SendKeys(chromedp.CSS(`#password`), password),
		chromedp.SetValue(chromedp.CSS(`#tokens`), fmt.Sprint(tokens)),
	}
}

// extWallet follows the balance the test expects of the extension's wallet.
type extWallet struct {
	t        *testing.T
	popup    *context.Context // the popup's tab, which a restarted browser replaces
	balance  int
	password string
}

// setUp presses set-up on the filled welcome page in tab and opens the
// popup in *popup (the variable, which a restart may point at a new tab).
func setUp(t *testing.T, ext *chromiumtest.Extension, tab context.Context, popup *context.Context) *extWallet {
	t.Helper()
	step(t, tab, "setting up", chromedp.Click(chromedp.CSS(`#setup`)), chromedp.WaitVisible(chromedp.CSS(`#done`)))
	step(t, *popup, "the popup", chromedp.Navigate(ext.URL("popup.html")), chromedp.WaitVisible(chromedp.CSS(`#balance-tokens`)))
	return &extWallet{t: t, popup: popup, balance: status(t, *popup).Balance.Tokens}
}

// spent waits until nothing is pending and checks that tokens were spent.
func (w *extWallet) spent(what string, tokens int) {
	w.t.Helper()
	s := waitWallet(w.t, *w.popup, what, func(s walletStatus) bool { return s.Pending == 0 && s.Balance.Tokens <= w.balance-tokens })
	if s.Balance.Tokens != w.balance-tokens {
		w.t.Fatalf("%s: balance %d, want %d; history %+v", what, s.Balance.Tokens, w.balance-tokens, s.History[:min(4, len(s.History))])
	}
	w.balance = s.Balance.Tokens
}

// TestBrowserExtension is issue 11's story: the extension in a real
// headless Chromium pays the demo newspaper (real gateway, bank and Redis)
// as the reader reads.
func TestBrowserExtension(t *testing.T) {
	d := startDemo(t)
	name, password := d.reader(t)
	profile := t.TempDir()
	ext := chromiumtest.StartExtension(t, extensionDir(t), profile, 4*time.Minute)
	tab := chromiumtest.Tab(t, ext.Ctx)
	popup := chromiumtest.Tab(t, ext.Ctx)

	// Onboarding: the bank, the demo reader's account, 500 tokens.
	step(t, tab, "the welcome page", welcome(ext, d, name, password, 500)...)
	chromiumtest.Screenshot(t, tab, "extension-welcome")
	w := setUp(t, ext, tab, &popup)
	start := status(t, popup)
	if start.Balance.Tokens != 512 { // 500 rounded up to whole segments of 128
		t.Fatalf("after buying 500 tokens: %+v", start)
	}
	spent := w.spent

	// A priced article opens with no click, paid exactly its price.
	mustOpen(t, tab, d.site+"/articles/moon-landing", paidPage)
	spent("the first article", 2)
	chromiumtest.Screenshot(t, tab, "extension-article")
	// Again: the grant cookie opens it, nothing is spent.
	mustOpen(t, tab, d.site+"/articles/moon-landing", paidPage)
	spent("the article again", 0)
	// The day pass (20 tokens, scope /issues/<day>/) opens a second page.
	mustOpen(t, tab, d.site+"/issues/2026-11-25/front", paidPage)
	spent("the day pass", 20)
	mustOpen(t, tab, d.site+"/issues/2026-11-25/sport", paidPage)
	spent("a page of the day pass", 0)
	// A page the site prices itself (Paywall-Price: 3).
	mustOpen(t, tab, d.site+"/features/crossword", paidPage)
	spent("the upstream-priced page", 3)

	// The figure: a paid article against the same navigation to a free page
	// of the same size, 21 pairs (the first warms both up).
	var extra []time.Duration
	for n := 100; n <= 120; n++ {
		free := mustOpen(t, tab, fmt.Sprintf("%s/free/archive/%d", d.site, n), freePage)
		paid := mustOpen(t, tab, fmt.Sprintf("%s/articles/archive/%d", d.site, n), paidPage)
		if n > 100 {
			extra = append(extra, paid-free)
		}
	}
	spent("21 archive articles", 42)
	slices.Sort(extra)
	med, p90 := extra[len(extra)/2], extra[len(extra)*9/10]
	s := status(t, popup)
	var work, chosen, total []float64
	for _, tm := range s.Timings {
		work, chosen, total = append(work, tm.Work), append(chosen, tm.Chosen), append(total, tm.Total)
	}
	for _, f := range [][]float64{work, chosen, total} {
		slices.Sort(f)
	}
	q := func(f []float64, p int) float64 { return f[len(f)*p/100] }
	t.Logf("a paid article appears %v after a free page of the same size (median over %d), p90 %v", med.Round(100*time.Microsecond), len(extra), p90.Round(100*time.Microsecond))
	t.Logf("the payment's work in the worker over %d payments: median %.1f ms, p90 %.1f ms, max %.1f ms (choosing, hashing and signing: median %.1f ms, max %.1f ms; the rest is the journal's write); from the 402 to the paid request leaving: median %.1f ms, p90 %.1f ms",
		len(work), q(work, 50), q(work, 90), work[len(work)-1], q(chosen, 50), chosen[len(chosen)-1], q(total, 50), q(total, 90))
	// The targets (150 ms, 20 ms) are figures of a quiet machine, reported
	// above; on a loaded one (CI) only a broken path fails.
	if med > time.Second {
		t.Errorf("a paid article appears %v after a free one (median)", med)
	}
	if q(work, 50) > 200 {
		t.Errorf("the payment's work in the worker took %.1f ms (median)", q(work, 50))
	}

	// The badge shows what the tab has cost.
	var badge string
	var err error
	for end := time.Now().Add(5 * time.Second); badge != fmt.Sprint(start.Balance.Tokens-w.balance) && time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		badge, err = chromedp.Run(popup, chromedp.Evaluate[string](`chrome.tabs.query({}).then(ts => chrome.action.getBadgeText({tabId: ts.find(t => t.url.startsWith(`+jsonOf(d.site)+`)).id}))`, chromedp.EvalAwaitPromise))
	}
	if err != nil || badge != fmt.Sprint(start.Balance.Tokens-w.balance) {
		t.Fatalf("the tab's badge: %q (%v), want %d", badge, err, start.Balance.Tokens-w.balance)
	}

	// Above the limit the reader is asked: no pays nothing, yes pays.
	step(t, popup, "lowering the limit per article",
		chromedp.Navigate(ext.URL("popup.html")), chromedp.WaitVisible(chromedp.CSS(`#per-article`)),
		chromedp.SetValue(chromedp.CSS(`#per-article`), "4"), chromedp.Click(chromedp.CSS(`#save-limits`)),
		chromedp.WaitVisible(chromedp.CSS(`#message`)))
	premium := d.site + "/articles/premium/interview"
	// The page fills in its question once the worker answers it.
	step(t, tab, "the question, with the price", chromedp.Navigate(premium), chromedp.WaitVisible(`//span[@id="ask-price"][.="5 tokens"]`))
	chromiumtest.Screenshot(t, tab, "extension-ask")
	step(t, tab, "saying no", chromedp.Click(chromedp.CSS(`#decline`)), chromedp.WaitVisible(chromedp.CSS(payButton)))
	if loc := location(t, tab); loc != premium {
		t.Fatalf("after no: %s", loc)
	}
	spent("saying no", 0)
	step(t, tab, "the question again", chromedp.Navigate(premium), chromedp.WaitVisible(chromedp.CSS(`#pay`)))
	step(t, tab, "saying yes", chromedp.Click(chromedp.CSS(`#pay`)), chromedp.WaitVisible(chromedp.CSS(`p.paid`)))
	spent("saying yes", 5)

	hostilePages(t, d, ext, tab, popup, &w.balance)

	// The service worker stopped between journalling a payment and its
	// answer: the answer is lost (the connection reset after the gateway
	// accepted it); the restarted worker sends the same payment again and
	// gets the same grant. Nothing lost, nothing spent twice.
	lost := d.site + "/articles/archive/900"
	interceptOnce(t, tab, lost, func() { ext.StopWorker() })
	spent("a payment whose answer was lost", 2)
	mustOpen(t, tab, lost, paidPage)
	spent("the article whose answer was lost, again", 0)

	// The browser killed mid-payment, and started again on the profile: the
	// wallet is locked; unlocked, it settles the payment first, and the
	// balance is intact.
	killed := d.site + "/articles/archive/901"
	interceptOnce(t, tab, killed, func() { ext.Kill() })
	ext = chromiumtest.StartExtension(t, extensionDir(t), profile, 2*time.Minute)
	popup = chromiumtest.Tab(t, ext.Ctx)
	step(t, popup, "the popup after the restart", chromedp.Navigate(ext.URL("popup.html")), chromedp.WaitVisible(chromedp.CSS(`#password`)))
	if s := status(t, popup); !s.Locked {
		t.Fatalf("after a restart the wallet is not locked: %+v", s)
	}
	chromiumtest.Screenshot(t, popup, "extension-locked")
	unlock, err := ask[struct{ Ms float64 }](popup, "unlock", map[string]any{"password": password})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("unlock took %.0f ms", unlock.Ms)
	if unlock.Ms > 5000 {
		t.Errorf("unlock took %.0f ms (1 s on a quiet machine)", unlock.Ms)
	}
	spent("the payment of the killed browser", 2)
	tab = chromiumtest.Tab(t, ext.Ctx)
	mustOpen(t, tab, killed, paidPage)
	spent("the killed browser's article", 0)
	for _, h := range status(t, popup).History[:2] {
		t.Logf("after the restart: %s %s %d tokens (%s)", h.Kind, h.Product, h.Tokens, h.Note)
	}

	// The profile lost: a new browser restores the account. The bank
	// revokes the old wallet's certificates; tokens bought afterwards pay.
	ext.Close()
	ext = chromiumtest.StartExtension(t, extensionDir(t), t.TempDir(), 2*time.Minute)
	tab = chromiumtest.Tab(t, ext.Ctx)
	step(t, tab, "restoring", chromedp.Navigate(ext.URL("welcome.html")), chromedp.WaitVisible(chromedp.CSS(`#bank`)),
		chromedp.SendKeys(chromedp.CSS(`#bank`), d.bank),
		chromedp.Click(chromedp.CSS(`#mode-restore`)),
		chromedp.SendKeys(chromedp.CSS(`#username`), name),
		chromedp.SendKeys(chromedp.CSS(`#password`), password),
		chromedp.SetValue(chromedp.CSS(`#tokens`), "0"),
		chromedp.Click(chromedp.CSS(`#setup`)), chromedp.WaitVisible(chromedp.CSS(`#done`)))
	if msg, _ := chromedp.Run(tab, chromedp.Text(chromedp.CSS(`#message`))); !strings.Contains(msg, "revoked") {
		t.Fatalf("the restore said %q", msg)
	}
	popup = chromiumtest.Tab(t, ext.Ctx)
	step(t, popup, "buying after the restore", chromedp.Navigate(ext.URL("popup.html")), chromedp.WaitVisible(chromedp.CSS(`#buy-tokens`)),
		chromedp.SetValue(chromedp.CSS(`#buy-tokens`), "100"), chromedp.Click(chromedp.CSS(`#buy`)),
		chromedp.WaitVisible(chromedp.CSS(`#message`)))
	w.balance = 128
	spent("buying after the restore", 0)
	mustOpen(t, tab, d.site+"/articles/archive/902", paidPage)
	spent("an article after the restore", 2)

	// The popup, as the README shows it.
	step(t, popup, "the popup", emulate(380, 720), chromedp.Navigate(ext.URL("popup.html")), chromedp.WaitVisible(chromedp.CSS(`#history li`)))
	chromiumtest.Screenshot(t, popup, "extension-popup")
}

// hostilePages: pages that try to make the extension pay where it must
// not, or to reach it. Nothing is spent and no payment leaves.
func hostilePages(t *testing.T, d *demo, ext *chromiumtest.Extension, tab, popup context.Context, balance *int) {
	var mu sync.Mutex
	var carried []string
	challenge := func(agent, product string) string {
		return fmt.Sprintf(`PayWord realm="The Daily Planet", vendor=%q, price="2", product=%q, agent=%q`, d.vendor, product, agent)
	}
	evil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if a := r.Header.Get("Authorization"); a != "" {
			mu.Lock()
			carried = append(carried, r.URL.Path)
			mu.Unlock()
		}
		w.Header().Set("Content-Type", "text/html")
		switch r.URL.Path {
		case "/relay": // another site showing the newspaper's challenge, to replay the payment there
			w.Header().Set("WWW-Authenticate", challenge(d.bank, "/articles/moon-landing"))
			w.WriteHeader(http.StatusPaymentRequired)
			fmt.Fprint(w, `<h1>relay</h1>`)
		case "/other-bank": // the newspaper's own challenge, but naming another bank
			w.Header().Set("WWW-Authenticate", challenge("http://127.0.0.1:1", "/other-bank"))
			w.WriteHeader(http.StatusPaymentRequired)
			fmt.Fprint(w, `<h1>other bank</h1>`)
		case "/frame": // the newspaper's priced article in an iframe
			fmt.Fprintf(w, `<h1>frame</h1><iframe src="%s/articles/archive/800"></iframe>`, d.site)
		case "/script": // a script that tries to reach the extension and its pages
			fmt.Fprintf(w, `<h1>script</h1><script src="/script.js"></script>`)
		case "/script.js":
			w.Header().Set("Content-Type", "text/javascript")
			fmt.Fprintf(w, `(async () => {
				const out = [];
				out.push('runtime:' + typeof (window.chrome && chrome.runtime && chrome.runtime.sendMessage));
				try { await chrome.runtime.sendMessage(%[1]q, {op: 'answer', id: 'x', yes: true}); out.push('message:sent'); } catch (e) { out.push('message:refused'); }
				try { await fetch('chrome-extension://%[1]s/popup.html'); out.push('page:read'); } catch (e) { out.push('page:refused'); }
				try { const r = await fetch(%[2]q); out.push('subresource:' + r.status); } catch (e) { out.push('subresource:refused'); }
				document.title = out.join(' ');
			})()`, ext.ID, d.site+"/articles/archive/801")
		}
	}))
	t.Cleanup(evil.Close)

	for _, path := range []string{"/relay", "/other-bank", "/frame"} {
		step(t, tab, path, chromedp.Navigate(evil.URL+path), chromedp.WaitVisible(chromedp.CSS(`h1`)))
	}
	var title string
	for end := time.Now().Add(10 * time.Second); !strings.Contains(title, "subresource:") && time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		step(t, tab, "the script", chromedp.Navigate(evil.URL+"/script"), chromedp.WaitVisible(chromedp.CSS(`h1`)))
		time.Sleep(200 * time.Millisecond)
		title, _ = chromedp.Run(tab, chromedp.Title())
	}
	t.Logf("the hostile script saw: %s", title)
	for _, bad := range []string{"message:sent", "page:read", "subresource:200"} {
		if strings.Contains(title, bad) {
			t.Errorf("a page script got %s", bad)
		}
	}
	s := waitWallet(t, popup, "the refusals", func(s walletStatus) bool {
		n := 0
		for _, h := range s.History {
			if h.Kind == "refused-origin" || h.Kind == "refused-bank" {
				n++
			}
		}
		return n >= 2
	})
	if s.Balance.Tokens != *balance {
		t.Fatalf("hostile pages cost %d tokens", *balance-s.Balance.Tokens)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(carried) > 0 {
		t.Fatalf("a payment went to another site: %v", carried)
	}
}

// interceptOnce opens url in the tab and, once the gateway has answered
// (the payment accepted), runs lose and then resets the connection: the
// answer never reaches the wallet.
func interceptOnce(t *testing.T, tab context.Context, url string, lose func()) {
	t.Helper()
	paused := make(chan *fetch.EventRequestPaused, 4)
	lctx, cancel := context.WithCancel(tab)
	defer cancel()
	chromedp.Listen(lctx, func(ev any) {
		if e, ok := ev.(*fetch.EventRequestPaused); ok && e.ResponseStatusCode != 0 {
			paused <- e
		}
	})
	if _, err := chromedp.Call(tab, fetch.Enable, fetch.EnableParams{Patterns: []*fetch.RequestPattern{{URLPattern: url, RequestStage: fetch.RequestStageResponse}}}); err != nil {
		t.Fatal(err)
	}
	// Page.navigate returns only once the paused answers are let go.
	go chromedp.Call(tab, page.Navigate, page.NavigateParams{URL: url})
	for {
		select {
		case e := <-paused:
			if e.ResponseStatusCode == http.StatusPaymentRequired { // the challenge passes
				chromedp.Call(tab, fetch.ContinueRequest, fetch.ContinueRequestParams{RequestID: e.RequestID})
				continue
			}
			if e.ResponseStatusCode != http.StatusOK {
				t.Fatalf("%s: the paid request got %d", url, e.ResponseStatusCode)
			}
			lose()
			chromedp.Call(tab, fetch.FailRequest, fetch.FailRequestParams{RequestID: e.RequestID, ErrorReason: network.ErrorReasonConnectionReset})
			chromedp.Call(tab, fetch.Disable, cdp.Empty{})
			return
		case <-time.After(15 * time.Second):
			failAt(t, tab, fmt.Errorf("%s: no answer to intercept", url))
		}
	}
}

// emulate sets the tab's viewport, for a popup-sized screenshot.
func emulate(w, h int64) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := chromedp.Call(ctx, emulation.SetDeviceMetricsOverride, emulation.SetDeviceMetricsOverrideParams{Width: w, Height: h, DeviceScaleFactor: 1})
		return err
	})
}

// jsonOf is v as a JavaScript literal.
func jsonOf(v any) string {
	if v == nil {
		return "{}"
	}
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}
