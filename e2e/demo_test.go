package e2e

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/hashwall/hashwall/agentapi"
)

// TestDemo runs `hashwall demo` as a newcomer would, checks its story, then
// follows the wallet commands it prints.
func TestDemo(t *testing.T) {
	t.Parallel()
	hw, wl := binaries(t)
	site, agent := freePort(t), freePort(t)
	cmd, story := runDemo(t, hw, "--site", fmt.Sprintf("127.0.0.1:%d", site), "--agent", fmt.Sprintf("127.0.0.1:%d", agent))
	for _, want := range []string{"IN MEMORY ONLY", "402 Payment Required", "WWW-Authenticate: PayWord", "200 OK, grant received: true",
		"paid 2 tokens to daily-planet", "Moon landing", "tokens left: 510", "hashwall-wallet get",
		"Or read in a browser", `log in as "reader", password "demo-password"`} {
		if !strings.Contains(story, want) {
			t.Fatalf("the demo's story lacks %q:\n%s", want, story)
		}
	}
	m := regexp.MustCompile(`HASHWALL_WALLET=(\S+) HASHWALL_PASSWORD=(\S+)`).FindStringSubmatch(story)
	if m == nil {
		t.Fatalf("no wallet command in:\n%s", story)
	}
	reader := &walletCLI{bin: wl, path: m[1], password: m[2]}
	base := fmt.Sprintf("http://127.0.0.1:%d", site)
	if got := reader.must(t, "get", base+"/articles/city-council"); !strings.Contains(got, "paid 2 token(s)") || !strings.Contains(got, "tram line") {
		t.Fatalf("reading with the printed commands: %s", got)
	}
	if got := reader.must(t, "get", "--max-price", "20", base+"/issues/2026-11-25/front"); !strings.Contains(got, "paid 20 token(s)") {
		t.Fatalf("day pass: %s", got)
	}
	if got := reader.must(t, "get", base+"/issues/2026-11-25/sport"); strings.Contains(got, "token(s)") || !strings.Contains(got, "sport") {
		t.Fatalf("page covered by the day pass: %s", got)
	}
	if got := reader.must(t, "get", base+"/features/crossword"); !strings.Contains(got, "paid 3 token(s)") {
		t.Fatalf("page priced by the upstream: %s", got)
	}
	// The printed operator's and vendor's credentials show the money moved:
	// 2 + 2 + 20 + 3 tokens earned, and the bank's metrics count them.
	creds := regexp.MustCompile(`ADMIN=(\S+) VENDOR=(\S+)`).FindStringSubmatch(story)
	if creds == nil {
		t.Fatalf("no operator's log-in in:\n%s", story)
	}
	bank := agentapi.NewClient(fmt.Sprintf("http://127.0.0.1:%d", agent), nil)
	for end := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		st, err := bank.WithToken(creds[1]).VendorStatement(t.Context(), "daily-planet", time.Time{}, time.Time{})
		if err == nil && st.Credited == 27 {
			break
		}
		if time.Now().After(end) {
			t.Fatalf("the operator's statement of the newspaper: %+v %v", st, err)
		}
	}
	if st, err := bank.WithToken(creds[2]).Statement(t.Context(), time.Time{}, time.Time{}); err != nil || st.Credited != 27 {
		t.Fatalf("the vendor's own statement: %+v %v", st, err)
	}
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", agent))
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(metrics), "hashwall_agent_claims_total") {
		t.Fatal("the demo's bank shows no metrics")
	}
	cmd.Process.Signal(os.Interrupt)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("the demo did not stop cleanly: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the demo did not stop on Ctrl-C")
	}
}

// runDemo starts `hashwall demo` with args and returns it and what it
// printed up to "Serving until Ctrl-C"; the rest of its output is drained.
// It is killed when the test ends, if it has not stopped by then.
func runDemo(t *testing.T, hw string, args ...string) (*exec.Cmd, string) {
	t.Helper()
	cmd := exec.Command(hw, append([]string{"demo"}, args...)...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill() })
	lines := make(chan string, 100)
	go func() {
		s := bufio.NewScanner(stdout)
		for s.Scan() {
			lines <- s.Text()
		}
		close(lines)
	}()
	var out strings.Builder
	deadline := time.After(60 * time.Second)
	for !strings.Contains(out.String(), "Serving until Ctrl-C") {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("the demo stopped:\n%s", out.String())
			}
			out.WriteString(l + "\n")
		case <-deadline:
			t.Fatalf("the demo did not get ready:\n%s", out.String())
		}
	}
	go func() { // keep draining
		for range lines {
		}
	}()
	return cmd, out.String()
}
