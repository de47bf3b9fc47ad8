package e2e

import (
	"os/exec"
	"strings"
	"testing"
)

func TestReaderJourney(t *testing.T) {
	t.Parallel() // its own Redis, agent, gateway and ports
	w := newWorld(t)
	alice := w.reader("alice", 100000)
	planet, globe := w.sites["planet"], w.sites["globe"]

	out := alice.must(t, "buy", "256")
	if !strings.Contains(out, "bought 256 tokens") {
		t.Fatalf("buy: %s", out)
	}

	// 402 → payment → 200, in one command.
	out = alice.must(t, "get", planet+"/articles/moon")
	if !strings.Contains(out, "article /articles/moon") || !strings.Contains(out, "paid 2 token(s) to planet") {
		t.Fatalf("first read: %s", out)
	}
	// The grant is reused: no second payment.
	out = alice.must(t, "get", planet+"/articles/moon")
	if !strings.Contains(out, "article /articles/moon") || strings.Contains(out, "paid") {
		t.Fatalf("second read: %s", out)
	}
	// A free page costs nothing.
	if out = alice.must(t, "get", planet+"/index.html"); strings.Contains(out, "paid") || !strings.Contains(out, "front page") {
		t.Fatalf("free page: %s", out)
	}
	// The same certificate pays a second newspaper, from another segment.
	if out = alice.must(t, "get", globe+"/articles/sun"); !strings.Contains(out, "paid 2 token(s) to globe") {
		t.Fatalf("second vendor: %s", out)
	}
	out = alice.must(t, "balance")
	for _, want := range []string{"spent 4", "left at planet: 126", "left at globe: 126", "spendable: 252"} {
		if !strings.Contains(out, want) {
			t.Fatalf("balance lacks %q:\n%s", want, out)
		}
	}

	// A price above the reader's limit is not paid.
	_, errOut, err := alice.run(t, "get", planet+"/dear/gold")
	if err == nil || !strings.Contains(errOut, "above your limit per request") {
		t.Fatalf("over the limit: %v %s", err, errOut)
	}
	// Within a raised limit it is; then nothing is left for another.
	if out = alice.must(t, "limits", "--per-site-day", "1000"); !strings.Contains(out, "per site and day: 1000") {
		t.Fatalf("limits: %s", out)
	}
	alice.must(t, "get", "--max-price", "100", planet+"/dear/gold")
	_, errOut, err = alice.run(t, "get", "--max-price", "100", planet+"/dear/silver")
	if err == nil || !strings.Contains(errOut, "hashwall-wallet buy") {
		t.Fatalf("out of tokens: %v %s", err, errOut)
	}
	out = alice.must(t, "history")
	if strings.Count(out, "paid") != 3 {
		t.Fatalf("history:\n%s", out)
	}
}

// TestWalletCLIHelp: every command of hashwall-wallet answers --help with
// its usage on stdout and exit 0, and a wrong flag with what to do next.
func TestWalletCLIHelp(t *testing.T) {
	t.Parallel()
	_, wl := binaries(t)
	for _, cmd := range []string{"register", "buy", "balance", "get", "history", "limits", "recover", "export", "import"} {
		out, err := exec.Command(wl, cmd, "--help").Output()
		if err != nil || !strings.Contains(string(out), "hashwall-wallet "+cmd+" ") || !strings.Contains(string(out), "--wallet") {
			t.Errorf("%s --help: %v\n%s", cmd, err, out)
		}
	}
	out, err := exec.Command(wl, "get", "--no-such-flag").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "see `hashwall-wallet get --help`") {
		t.Errorf("a wrong flag: %v\n%s", err, out)
	}
}
