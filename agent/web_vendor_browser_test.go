package agent

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/hashwall/hashwall/internal/testutil/chromiumtest"
)

// TestBrowserVendorPages: in headless Chromium against a real agent and
// Redis, a vendor whose readers paid logs in with its API token, sees its
// balance, its statement and its sites. It takes the README's screenshots.
func TestBrowserVendorPages(t *testing.T) {
	ctx := chromiumtest.Context(t, 60*time.Second)
	e := newEnv(t)
	srv := e.webServer()
	va := e.vendor("dailyplanet")
	_, err := e.as(va).SetOrigins(context.Background(), "dailyplanet", []string{"https://news.dailyplanet.example", "https://dailyplanet.example"})
	e.mustOK(err, "origins")
	// A month of readers' payments: claims reported day after day.
	w := e.buy(e.user("alice", 5000), 4096)
	e.clock.Add(-20 * 24 * time.Hour)
	var index uint32
	for d := range 20 {
		n := uint32(1 + d*3%5) // within one segment of the certificate
		index += n
		c := w.claim(0, index, n, "dailyplanet")
		c.Product = []string{"/articles/moon-landing", "/articles/city-council", "/issues/2026-11-25/", "/articles/premium/interview", "/features/crossword"}[d*d%5]
		e.report(va, "dailyplanet", "day"+itoa(int64(d)), c)
		e.clock.Add(24 * time.Hour)
	}
	st, err := e.as(va).Statement(context.Background(), time.Time{}, time.Time{})
	e.mustOK(err, "statement")

	err = chromedp.Do(ctx,
		chromedp.Navigate(srv.URL+"/vendor"), // logged out: to the log-in
		chromedp.WaitVisible(chromedp.CSS(`#f-token`)),
		chromedp.SendKeys(chromedp.CSS(`#f-token`), strings.TrimPrefix(va, "Bearer ")),
		chromedp.Submit(chromedp.CSS(`#f-token`)),
		chromedp.WaitVisible(`//h1[contains(., "Overview")]`),
	)
	if err != nil {
		t.Fatal(err)
	}
	overview, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`main`)))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(overview, e.a.money(st.Credited)) || !strings.Contains(overview, "https://news.dailyplanet.example") {
		t.Fatalf("the overview does not show the credited %s or the sites:\n%s", e.a.money(st.Credited), overview)
	}
	chromiumtest.Screenshot(t, ctx, "vendor-overview")

	err = chromedp.Do(ctx,
		chromedp.Click(`//nav/a[.="Statements"]`),
		chromedp.WaitVisible(`//h1[contains(., "Statements")]`),
		chromedp.WaitVisible(chromedp.CSS(`table`)),
	)
	if err != nil {
		t.Fatal(err)
	}
	statement, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`main`)))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(statement, e.a.money(st.Closing)) || !strings.Contains(statement, itoa(int64(len(st.Entries)))+" entries") {
		t.Fatalf("the statement page does not show the API's closing %s and %d entries:\n%s", e.a.money(st.Closing), len(st.Entries), statement)
	}
	chromiumtest.Screenshot(t, ctx, "vendor-statement")

	err = chromedp.Do(ctx,
		chromedp.Click(`//nav/a[.="Sites"]`),
		chromedp.WaitVisible(chromedp.CSS(`#f-origins`)),
	)
	if err != nil {
		t.Fatal(err)
	}
	sites, err := chromedp.Run(ctx, chromedp.Value(chromedp.CSS(`#f-origins`)))
	if err != nil {
		t.Fatal(err)
	}
	if sites != "https://dailyplanet.example\nhttps://news.dailyplanet.example" {
		t.Fatalf("the sites form holds %q", sites)
	}

	// Revenue: the API's net takings, per day and per article.
	rev, err := e.as(va).Revenue(context.Background(), time.Time{}, time.Time{})
	e.mustOK(err, "revenue")
	err = chromedp.Do(ctx,
		chromedp.Click(`//nav/a[.="Revenue"]`),
		chromedp.WaitVisible(`//h1[contains(., "Revenue")]`),
		chromedp.WaitVisible(chromedp.CSS(`figure.ranking`)),
	)
	if err != nil {
		t.Fatal(err)
	}
	revenue, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`main`)))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(revenue, e.a.money(rev.Credited-rev.Voided)) || !strings.Contains(revenue, "/articles/moon-landing") {
		t.Fatalf("the revenue page does not show the API's net %s or the articles:\n%s", e.a.money(rev.Credited-rev.Voided), revenue)
	}
	chromiumtest.Screenshot(t, ctx, "vendor-revenue")
	err = chromedp.Do(ctx,
		chromedp.Click(`//nav/a[.="Claims"]`),
		chromedp.WaitVisible(chromedp.CSS(`table.claims`)),
	)
	if err != nil {
		t.Fatal(err)
	}
	chromiumtest.Screenshot(t, ctx, "vendor-claims")
}
