package e2e

import (
	"bytes"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestKilledMidPayment kills the wallet process after its payment was
// journaled and accepted by the gateway, while it waits for the page. The
// next run sends the journaled payment again, gets the same grant, and
// nothing is lost or paid twice: the agent credits the vendor exactly once.
func TestKilledMidPayment(t *testing.T) {
	t.Parallel() // its own Redis, agent, gateway and ports
	w := newWorld(t)
	alice := w.reader("alice", 100000)
	planet := w.sites["planet"]
	alice.must(t, "buy", "128")

	alice.must(t, "get", planet+"/articles/first")
	perTwo := w.firstCredit("planet")

	cmd := exec.Command(alice.bin, "get", planet+"/slow/story")
	cmd.Env = append(os.Environ(), "HASHWALL_WALLET="+alice.path, "HASHWALL_PASSWORD="+alice.password)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-w.slowHits: // the gateway accepted the payment and is fetching the page
	case <-time.After(15 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("the paid request never reached the upstream:\n%s", out.String())
	}
	cmd.Process.Kill()
	cmd.Wait()

	if bal := alice.must(t, "balance"); !strings.Contains(bal, "1 payment(s) await confirmation") || !strings.Contains(bal, "pending 2") {
		t.Fatalf("balance after the kill:\n%s", bal)
	}
	// The next read settles the journaled payment first (same payment,
	// same grant), then pays for the new article.
	got := alice.must(t, "get", planet+"/articles/second")
	if !strings.Contains(got, "article /articles/second") {
		t.Fatalf("read after the kill: %s", got)
	}
	bal := alice.must(t, "balance")
	if !strings.Contains(bal, "spent 6") || !strings.Contains(bal, "pending 0") || strings.Contains(bal, "await") {
		t.Fatalf("balance after recovery:\n%s", bal)
	}
	// The slow story's grant was kept: reading it again pays nothing.
	if again := alice.must(t, "get", planet+"/slow/story"); strings.Contains(again, "paid") || !strings.Contains(again, "slow article") {
		t.Fatalf("re-read of the story: %s", again)
	}
	// Three payments of two tokens, each credited once.
	w.waitCredited("planet", 3*perTwo)
	hist := alice.must(t, "history")
	if strings.Count(hist, " paid ") != 3 {
		t.Fatalf("history:\n%s", hist)
	}
}
