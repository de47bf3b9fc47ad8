// Package chromiumtest drives Debian's headless Chromium from Go tests
// (chromedp): a fresh profile per test, and the screenshots the README
// shows. Where there is no Chromium a test skips, except on CI (CI set),
// where .ci/run installs it and a skip would hide a failure.
package chromiumtest

import (
	"bytes"
	"context"
	"image"
	_ "image/png" // screenshots are PNGs
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// Path returns the Chromium to drive.
func Path(t testing.TB) string {
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

// Context is a tab of a fresh headless Chromium profile, closed with the
// test; every action under it ends within timeout. Steps may run under
// child contexts with shorter timeouts.
func Context(t testing.TB, timeout time.Duration) context.Context {
	t.Helper()
	ctx, cancelA, cancelB := start(t, t.TempDir())
	ctx, cancelC := context.WithTimeout(ctx, timeout)
	t.Cleanup(func() { cancelC(); cancelB(); cancelA() })
	return ctx
}

// start starts a headless Chromium on profile, with extra flags; it
// returns its first tab and the cancels of the allocator (which ends the
// process) and of the tab.
func start(t testing.TB, profile string, extra ...chromedp.ExecAllocatorOption) (context.Context, context.CancelFunc, context.CancelFunc) {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(Path(t)),
		chromedp.Flag("headless", "new"),
		chromedp.NoSandbox, // as root in CI containers
		chromedp.DisableGPU,
		chromedp.WindowSize(1100, 800),
		chromedp.UserDataDir(profile),
	)
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), append(opts, extra...)...)
	ctx, cancelB := chromedp.NewContext(actx)
	// Start the browser now, under ctx, so that a step run under a
	// shorter child context does not own (and, ending, close) it.
	if err := chromedp.Do(ctx); err != nil {
		cancelB()
		cancelA()
		t.Fatalf("starting chromium: %v", err)
	}
	return ctx, cancelA, cancelB
}

// Screenshot saves the page as name.png in $HW_SCREENSHOTS (the README's
// pictures) or the test's directory, and checks that it shows something.
func Screenshot(t testing.TB, ctx context.Context, name string) {
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

// Tab opens another tab of ctx's browser, closed with the test.
func Tab(t testing.TB, ctx context.Context) context.Context {
	t.Helper()
	tab, cancel := chromedp.NewContext(ctx)
	t.Cleanup(cancel)
	if err := chromedp.Do(tab); err != nil { // opened now: see Context
		t.Fatalf("opening a tab: %v", err)
	}
	return tab
}
