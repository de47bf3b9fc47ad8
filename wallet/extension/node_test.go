package extension_test

import (
	"context"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// minNodeMajor is the oldest Node whose globalThis.crypto has what the
// library uses (WebCrypto Ed25519, no flags); Debian bookworm's nodejs is 18.
const minNodeMajor = 20

// TestNodeProtocolTests runs the browser wallet's JavaScript tests
// (wallet/extension/test, node --test), so that `go test ./...` checks the
// extension's protocol library against docs/protocol.md as it checks the
// Go code. Without node it skips, except on CI (CI set), where .ci/run
// installs it and a skip would hide a failure.
func TestNodeProtocolTests(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("no node on CI: .ci/run installs it (package nodejs)")
		}
		t.Skip("no node: the browser wallet's JavaScript tests need Node 20 or later (apt-get install nodejs)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	version, err := exec.CommandContext(ctx, node, "--version").Output()
	if err != nil {
		t.Fatalf("node --version: %v", err)
	}
	major, _ := strconv.Atoi(strings.TrimPrefix(strings.SplitN(strings.TrimSpace(string(version)), ".", 2)[0], "v"))
	if major < minNodeMajor {
		msg := "node " + strings.TrimSpace(string(version)) + " is too old: the browser wallet's JavaScript tests need Node " +
			strconv.Itoa(minNodeMajor) + " or later (NodeSource packages, or nvm)"
		if os.Getenv("CI") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	// The package directory is the test's working directory.
	cmd := exec.CommandContext(ctx, node, "--test", "test/")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("node --test wallet/extension/test failed: %v\n%s", err, out)
	}
	if testing.Verbose() {
		t.Logf("%s", out)
	}
}
