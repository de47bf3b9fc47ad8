package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestXcaddyBuild builds Hashwall with xcaddy.sh (and the demo) from this
// checkout and checks it is the same program as cmd/hashwall: the same
// modules, the agent and demo subcommands, and it adapts Caddyfile.example.
// A plug-in build without the demo does not link the embedded store.
func TestXcaddyBuild(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("builds Caddy once more; skipped with -short")
	}
	hw, _ := binaries(t)
	if out, err := exec.Command("go", "list", "-deps", "github.com/hashwall/hashwall").CombinedOutput(); err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	} else if strings.Contains(string(out), "miniredis") {
		t.Fatal("the plug-in package links miniredis; only the demo should")
	}
	xc := filepath.Join(t.TempDir(), "hashwall-xcaddy")
	build := exec.Command("bash", "../xcaddy.sh", xc)
	build.Env = append(os.Environ(), "HASHWALL_DEMO=1")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("xcaddy.sh: %v\n%s", err, tail(out))
	}
	run := func(bin string, args ...string) string {
		t.Helper()
		out, err := exec.Command(bin, args...).CombinedOutput()
		if err != nil {
			t.Fatalf("%s %v: %v\n%s", filepath.Base(bin), args, err, out)
		}
		return string(out)
	}
	want, got := run(hw, "list-modules"), run(xc, "list-modules")
	if want != got {
		t.Fatalf("modules differ:\ncmd/hashwall:\n%s\nxcaddy:\n%s", want, got)
	}
	for _, m := range []string{"http.handlers.paywall\n", "http.handlers.paywall_agent\n"} {
		if !strings.Contains(got, m) {
			t.Fatalf("xcaddy build lacks %s", m)
		}
	}
	help := run(xc, "help")
	for _, c := range []string{"agent ", "demo "} {
		if !strings.Contains(help, "  "+c) {
			t.Fatalf("xcaddy build lacks the %q command:\n%s", c, help)
		}
	}
	if a, b := run(hw, "adapt", "--config", "../Caddyfile.example"), run(xc, "adapt", "--config", "../Caddyfile.example"); a != b {
		t.Fatalf("Caddyfile.example adapts differently:\n%s\n%s", a, b)
	}
}

// tail is the end of a long build log.
func tail(b []byte) string {
	const n = 4000
	if len(b) > n {
		return "…" + string(b[len(b)-n:])
	}
	return string(b)
}
