package agent

import (
	"bytes"
	"context"
	"image"
	_ "image/png"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// chromium returns the headless Chromium to drive, skipping the test where
// there is none, except on CI (.ci/run installs it), which must not skip.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("no chromium on CI: .ci/run installs it")
	}
	t.Skip("no chromium: apt-get install chromium")
	return ""
}

// browserCtx is a fresh headless Chromium profile, closed with the test.
func browserCtx(t *testing.T) context.Context {
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium(t)),
		chromedp.Flag("headless", "new"),
		chromedp.NoSandbox, // as root in CI containers
		chromedp.DisableGPU,
		chromedp.WindowSize(1100, 800),
		chromedp.UserDataDir(t.TempDir()),
	)
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelB := chromedp.NewContext(actx)
	ctx, cancelC := context.WithTimeout(ctx, 60*time.Second)
	t.Cleanup(func() { cancelC(); cancelB(); cancelA() })
	return ctx
}

// screenshot saves the page as name.png in $HW_SCREENSHOTS (the README's
// pictures) or the test's directory, and checks it shows something.
func screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	buf, err := chromedp.Run(ctx, chromedp.FullScreenshot(100)) // 100: a PNG
	if err != nil {
		t.Fatal(err)
	}
	img, _, err := image.Decode(bytes.NewReader(buf))
	if err != nil {
		t.Fatalf("%s: not a PNG: %v", name, err)
	}
	if uniform(img) {
		t.Fatalf("%s: a blank screenshot", name)
	}
	dir := os.Getenv("HW_SCREENSHOTS")
	if dir == "" {
		dir = t.TempDir()
	}
	if err := os.WriteFile(filepath.Join(dir, name+".png"), buf, 0o644); err != nil {
		t.Fatal(err)
	}
}

func uniform(img image.Image) bool {
	b := img.Bounds()
	first := img.At(b.Min.X, b.Min.Y)
	for y := b.Min.Y; y < b.Max.Y; y += 7 {
		for x := b.Min.X; x < b.Max.X; x += 7 {
			if img.At(x, y) != first {
				return false
			}
		}
	}
	return true
}

// TestBrowserSignupTopup: in headless Chromium against a real agent and
// Redis, a reader signs up, tops up with the test provider and sees the
// balance on the account page. It takes the README's screenshots.
func TestBrowserSignupTopup(t *testing.T) {
	ctx := browserCtx(t)
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
	screenshot(t, ctx, "bank-topup")
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
	screenshot(t, ctx, "bank-account")
}
