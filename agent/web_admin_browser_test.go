package agent

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/hashwall/hashwall/agentapi"
	"github.com/hashwall/hashwall/internal/testutil/chromiumtest"
	"github.com/hashwall/hashwall/payword"
)

// TestBrowserAdminPages: in headless Chromium against a real agent and
// Redis, the operator logs in with the admin token, checks the ledger,
// credits a reader and revokes a certificate, and the API sees both. It
// takes the README's screenshots.
func TestBrowserAdminPages(t *testing.T) {
	ctx := chromiumtest.Context(t, 60*time.Second)
	e := newEnv(t)
	srv := e.webServer()
	va, vb := e.vendor("dailyplanet"), e.vendor("globe")
	alice := e.user("alice", 5000)
	w := e.buy(alice, 256)
	recent := func(c payword.Claim) payword.Claim { c.Time = e.clock.Now().Unix() - 2; return c } // delivered 2 s after payment
	e.report(va, "dailyplanet", "b1", recent(w.claim(0, 3, 3, "dailyplanet")))
	e.expectReport("double_spend:3", vb, "globe", "b2", recent(w.claim(0, 3, 3, "globe")))
	bob := e.user("bob", 2000)
	wb := e.buy(bob, 64)
	for _, n := range []string{"carol", "dave", "erin"} {
		e.buy(e.user(n, 1000), 16)
	}
	e.user("frank", 0)
	e.a.adminRevoke(context.Background(), revokeUser("erin"))

	err := chromedp.Do(ctx,
		chromedp.Navigate(srv.URL+"/admin"), // logged out: to the log-in
		chromedp.WaitVisible(chromedp.CSS(`#f-token`)),
		chromedp.SendKeys(chromedp.CSS(`#f-token`), adminToken),
		chromedp.Submit(chromedp.CSS(`#f-token`)),
		chromedp.WaitVisible(`//h1[contains(., "Overview")]`),
		chromedp.Click(`//a[.="Check the ledger"]`),
		chromedp.WaitVisible(chromedp.CSS(`.tile.ledger.pass`)),
	)
	if err != nil {
		t.Fatal(err)
	}
	chromiumtest.Screenshot(t, ctx, "admin-overview")

	// Credit frank 12.50 through the form.
	err = chromedp.Do(ctx,
		chromedp.Click(`//nav/a[.="Credit"]`),
		chromedp.WaitVisible(chromedp.CSS(`#f-username`)),
		chromedp.SendKeys(chromedp.CSS(`#f-username`), "frank"),
		chromedp.SendKeys(chromedp.CSS(`#f-amount`), "12.50"),
		chromedp.SendKeys(chromedp.CSS(`#f-ref`), "welcome-offer"),
		chromedp.Submit(chromedp.CSS(`#f-ref`)),
		chromedp.WaitVisible(`//h1[contains(., "Credited")]`),
	)
	if err != nil {
		t.Fatal(err)
	}
	if got := e.balance("u:" + e.uid("frank")); got != 1250 {
		t.Fatalf("frank's balance %d after the page's credit", got)
	}

	// Revoke bob's certificate.
	err = chromedp.Do(ctx,
		chromedp.Click(`//nav/a[.="Revoke"]`),
		chromedp.WaitVisible(chromedp.CSS(`#f-serial`)),
		chromedp.SendKeys(chromedp.CSS(`#f-serial`), wb.cert.Serial.String()),
		chromedp.SendKeys(chromedp.CSS(`#f-reason`), "the reader reported a stolen phone"),
		chromedp.Submit(chromedp.CSS(`#f-reason`)),
		chromedp.WaitVisible(chromedp.CSS(`table.revocations`)),
	)
	if err != nil {
		t.Fatal(err)
	}
	if !e.revoked(wb.cert.Serial) {
		t.Fatal("bob's certificate is not on GET /v1/crl")
	}
	text, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`main`)))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(text, "is revoked") || !strings.Contains(text, "stolen phone") {
		t.Fatalf("the revocations page after revoking:\n%s", text)
	}
	chromiumtest.Screenshot(t, ctx, "admin-revocations")

	err = chromedp.Do(ctx,
		chromedp.Click(`//nav/a[.="Disputes"]`),
		chromedp.WaitVisible(chromedp.CSS(`ol.disputes`)),
	)
	if err != nil {
		t.Fatal(err)
	}
	chromiumtest.Screenshot(t, ctx, "admin-disputes")

	err = chromedp.Do(ctx,
		chromedp.Click(`//nav/a[.="Vendors"]`),
		chromedp.WaitVisible(chromedp.CSS(`table`)),
	)
	if err != nil {
		t.Fatal(err)
	}
	chromiumtest.Screenshot(t, ctx, "admin-vendors")
	err = chromedp.Do(ctx,
		chromedp.Click(`//nav/a[.="Figures"]`),
		chromedp.WaitVisible(chromedp.CSS(`figure.chart`)),
	)
	if err != nil {
		t.Fatal(err)
	}
	chromiumtest.Screenshot(t, ctx, "admin-figures")
}

func revokeUser(name string) agentapi.Revoke { return agentapi.Revoke{User: name} }
