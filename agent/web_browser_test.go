package agent

import (
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/hashwall/hashwall/internal/testutil/chromiumtest"
)

// TestBrowserSignupTopup: in headless Chromium against a real agent and
// Redis, a reader signs up, tops up with the test provider and sees the
// balance on the account page. It takes the README's screenshots.
func TestBrowserSignupTopup(t *testing.T) {
	ctx := chromiumtest.Context(t, 60*time.Second)
	e := newEnv(t)
	e.cfg.TestTopups = true
	e.restartAgent()
	srv := e.webServer()

	err := chromedp.Do(ctx,
		chromedp.Navigate(srv.URL+"/signup"),
		chromedp.WaitVisible(chromedp.CSS(`#f-username`)),
		chromedp.SendKeys(chromedp.CSS(`#f-username`), "rosa"),
		chromedp.SendKeys(chromedp.CSS(`#f-password`), "a long enough password"),
		chromedp.SendKeys(chromedp.CSS(`#f-password2`), "a long enough password"),
		chromedp.Submit(chromedp.CSS(`#f-username`)),
		chromedp.WaitVisible(chromedp.CSS(`a[href="/topup"]`)),
		chromedp.Navigate(srv.URL+"/topup"),
		chromedp.WaitVisible(chromedp.CSS(`#f-tokens`)),
	)
	if err != nil {
		t.Fatal(err)
	}
	chromiumtest.Screenshot(t, ctx, "bank-topup")
	err = chromedp.Do(ctx,
		chromedp.SendKeys(chromedp.CSS(`#f-tokens`), "500"),
		chromedp.Submit(chromedp.CSS(`#f-tokens`)),
		chromedp.WaitVisible(`//h1[contains(., "Top-up complete")]`),
		chromedp.Navigate(srv.URL+"/account"),
		chromedp.WaitVisible(chromedp.CSS(`main`)),
	)
	if err != nil {
		t.Fatal(err)
	}
	account, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`main`)))
	if err != nil {
		t.Fatal(err)
	}
	if n := e.balance("u:" + e.uid("rosa")); n != 500 {
		t.Fatalf("balance %d after a 500-token top-up", n)
	}
	if !strings.Contains(account, "500") {
		t.Fatalf("the account page does not show the balance:\n%s", account)
	}
	chromiumtest.Screenshot(t, ctx, "bank-account")
}
