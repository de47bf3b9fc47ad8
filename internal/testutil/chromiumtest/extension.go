package chromiumtest

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/target"
	"github.com/chromedp/chromedp"
)

// Extension is a headless Chromium with an unpacked extension loaded, on a
// profile that outlives the browser, so that a test can close the browser
// and start it again on the same profile.
type Extension struct {
	ID  string          // the extension's id: its pages are chrome-extension://ID/…
	Ctx context.Context // the browser's first tab
	t   testing.TB
	// close closes the browser gracefully, kill ends its process.
	close, kill func()
}

// StartExtension starts Chromium on the profile directory with the
// unpacked extension in dir, and waits for the extension's service worker.
func StartExtension(t testing.TB, dir, profile string, timeout time.Duration) *Extension {
	t.Helper()
	ctx, cancelA, cancelB := start(t, profile,
		chromedp.Flag("disable-extensions", false),
		chromedp.Flag("load-extension", dir),
		chromedp.Flag("disable-extensions-except", dir),
		// Chromium 137 on ignores --load-extension unless this is off.
		chromedp.Flag("disable-features", "Translate,BlinkGenPropertyTrees,DisableLoadExtensionCommandLineSwitch"),
	)
	tctx, cancelC := context.WithTimeout(ctx, timeout)
	e := &Extension{Ctx: tctx, t: t}
	var closed bool
	e.close = func() {
		if closed {
			return
		}
		closed = true
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		chromedp.CallBrowser(cctx, browser.Close, cdp.Empty{}) // flushes the profile
		cancelC()
		cancelB()
		cancelA()
	}
	e.kill = func() {
		if closed {
			return
		}
		closed = true
		cancelC()
		cancelA() // ends the process without Browser.close
		cancelB()
	}
	t.Cleanup(e.close)
	id, err := e.worker(10 * time.Second)
	if err != nil {
		e.close()
		t.Fatalf("the extension in %s did not start: %v", dir, err)
	}
	url := ""
	for _, ti := range mustTargets(t, ctx) {
		if ti.TargetID == id {
			url = ti.URL
		}
	}
	e.ID = strings.TrimPrefix(url, "chrome-extension://")
	e.ID, _, _ = strings.Cut(e.ID, "/")
	return e
}

// Close closes the browser gracefully; Kill ends its process at once, as
// a crash or power cut would.
func (e *Extension) Close() { e.close() }
func (e *Extension) Kill()  { e.kill() }

// URL is the address of one of the extension's pages.
func (e *Extension) URL(page string) string {
	return "chrome-extension://" + e.ID + "/" + page
}

// Worker is the target of the extension's service worker, waiting for it
// to run.
func (e *Extension) Worker() target.ID {
	e.t.Helper()
	id, err := e.worker(10 * time.Second)
	if err != nil {
		e.t.Fatal(err)
	}
	return id
}

func (e *Extension) worker(wait time.Duration) (target.ID, error) {
	end := time.Now().Add(wait)
	for {
		tis, err := chromedp.Targets(e.Ctx)
		if err != nil {
			return "", err
		}
		for _, ti := range tis {
			if ti.Type == "service_worker" && strings.HasPrefix(ti.URL, "chrome-extension://") {
				return ti.TargetID, nil
			}
		}
		if time.Now().After(end) {
			return "", context.DeadlineExceeded
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// StopWorker stops the extension's service worker, as Chromium does to an
// idle one; the next event starts it again.
func (e *Extension) StopWorker() {
	e.t.Helper()
	id := e.Worker()
	if _, err := chromedp.CallBrowser(e.Ctx, target.CloseTarget, target.CloseTargetParams{TargetID: id}); err != nil {
		e.t.Fatalf("stopping the service worker: %v", err)
	}
	for end := time.Now().Add(15 * time.Second); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		gone := true
		for _, ti := range mustTargets(e.t, e.Ctx) {
			if ti.TargetID == id {
				gone = false
			}
		}
		if gone {
			return
		}
	}
	e.t.Fatal("the service worker did not stop")
}

func mustTargets(t testing.TB, ctx context.Context) []*target.Info {
	t.Helper()
	tis, err := chromedp.Targets(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return tis
}
