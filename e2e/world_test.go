package e2e

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashwall/hashwall/agentapi"
	"github.com/hashwall/hashwall/internal/testutil/redistest"
)

// world is a bank and two newspapers on loopback, run from the binaries.
type world struct {
	t          *testing.T
	dir        string
	hashwall   string
	wallet     string
	redis      *redistest.Server
	agentURL   string
	adminToken string
	sites      map[string]string // vendor id → base URL
	tokens     map[string]string // vendor id → API token
	gateway    *proc
	slowHits   chan string // paths of /slow/ requests reaching the upstream
}

// slowDelay is how long the upstream of /slow/ pages takes: long enough to
// kill a wallet while it waits for a paid page.
const slowDelay = 3 * time.Second

// reportWindow is the agent's: a recovery's credit waits this long.
const reportWindow = 2 * time.Second

func newWorld(t *testing.T) *world {
	t.Helper()
	hw, wl := binaries(t)
	w := &world{t: t, dir: t.TempDir(), hashwall: hw, wallet: wl, sites: map[string]string{}, tokens: map[string]string{}, slowHits: make(chan string, 16)}
	w.redis = redistest.Start(t, redistest.WithAOF())

	key := filepath.Join(w.dir, "agent.key")
	out, err := exec.Command(hw, "agent", "keygen", "--out", key, "--kid", "agent-e2e").CombinedOutput()
	if err != nil {
		t.Fatalf("keygen: %v\n%s", err, out)
	}
	// keygen prints the line that makes a gateway trust the key.
	_, keyLine, ok := strings.Cut(strings.TrimSpace(string(out)), "\n")
	if keyLine = strings.TrimSpace(keyLine); !ok || !strings.HasPrefix(keyLine, "key agent-e2e ") {
		t.Fatalf("keygen printed no key line:\n%s", out)
	}
	port := freePort(t)
	w.agentURL = fmt.Sprintf("http://127.0.0.1:%d", port)
	w.adminToken = "admin-" + strings.Trim(randomB64(12), "=")
	start(t, "agent", []string{"HASHWALL_MASTER_KEY=" + randomB64(32), "HASHWALL_ADMIN_TOKEN=" + w.adminToken},
		hw, "agent", "--listen", fmt.Sprintf("127.0.0.1:%d", port), "--redis", w.redis.URL(), "--key", key, "--open-vendors",
		// every account of the world comes from this one address
		"--signups-per-hour", "1000", "--report-window", reportWindow.String())
	waitFor(t, w.agentURL+"/v1/keys", 200)

	upstream := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		select {
		case w.slowHits <- r.URL.Path:
		default:
		}
		time.Sleep(slowDelay)
		fmt.Fprintf(rw, "slow article %s", r.URL.Path)
	}))
	t.Cleanup(upstream.Close)

	var sites strings.Builder
	for _, vendor := range []string{"planet", "globe"} {
		site := freePort(t)
		w.sites[vendor] = fmt.Sprintf("http://127.0.0.1:%d", site)
		// Wallets pay a vendor only on the origins it registered.
		reg, err := w.agent().RegisterVendor(t.Context(), agentapi.RegisterVendor{Vendor: vendor, Origins: []string{w.sites[vendor]}})
		if err != nil {
			t.Fatalf("registering vendor %s: %v", vendor, err)
		}
		w.tokens[vendor] = reg.Token
		fmt.Fprintf(&sites, `
http://127.0.0.1:%d {
	paywall {
		vendor    %s
		api_token %s
		agent     %s
		redis     %s
		grant_key %s
		%s
		price /articles/* 2
		price /dear/* 100
		price /slow/* 2
		free /index.html
		crl agent 1s
	}
	reverse_proxy /slow/* %s
	respond /index.html "front page"
	respond /articles/* "article {path}"
	respond /dear/* "article {path}"
}
`, site, vendor, reg.Token, w.agentURL, w.redis.URL(), randomB64(32), keyLine, strings.TrimPrefix(upstream.URL, "http://"))
	}
	caddyfile := filepath.Join(w.dir, "Caddyfile")
	config := "{\n\tadmin off\n\tpersist_config off\n}\n" + sites.String()
	if err := os.WriteFile(caddyfile, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	w.gateway = start(t, "gateway", nil, hw, "run", "--config", caddyfile, "--adapter", "caddyfile")
	for _, u := range w.sites {
		waitFor(t, u+"/articles/probe", http.StatusPaymentRequired)
	}
	return w
}

// reader registers a user, funds their account and returns their wallet.
func (w *world) reader(name string, funds int64) *walletCLI {
	t := w.t
	cli := &walletCLI{bin: w.wallet, path: filepath.Join(w.dir, name+".hw"), password: "pw-" + name + "-12345"}
	cli.must(t, "register", "--agent", w.agentURL, name)
	if funds > 0 {
		if _, err := w.admin().Credit(t.Context(), agentapi.Credit{User: name, Amount: funds}); err != nil {
			t.Fatalf("crediting %s: %v", name, err)
		}
	}
	return cli
}

// agent is a client of the agent, without credentials.
func (w *world) agent() *agentapi.Client { return agentapi.NewClient(w.agentURL, nil) }

// admin is a client of the agent with the admin token.
func (w *world) admin() *agentapi.Client { return w.agent().WithToken(w.adminToken) }

// credited returns what the agent has credited vendor so far, in minor units.
func (w *world) credited(vendor string) int64 {
	st, err := w.admin().VendorStatement(w.t.Context(), vendor, time.Time{}, time.Now().Add(time.Hour))
	if err != nil {
		w.t.Fatalf("statement of %s: %v", vendor, err)
	}
	return st.Credited
}

// firstCredit waits until the agent has credited vendor anything (bounded)
// and returns it.
func (w *world) firstCredit(vendor string) int64 {
	w.t.Helper()
	got := w.credited(vendor)
	for deadline := time.Now().Add(10 * time.Second); got == 0 && time.Now().Before(deadline); {
		time.Sleep(100 * time.Millisecond)
		got = w.credited(vendor)
	}
	if got == 0 {
		w.t.Fatalf("no claim of %s ever reached the agent", vendor)
	}
	return got
}

// waitCredited waits until the agent has credited vendor want (bounded).
func (w *world) waitCredited(vendor string, want int64) {
	w.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	got := w.credited(vendor)
	for got != want && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
		got = w.credited(vendor)
	}
	if got != want {
		w.t.Fatalf("%s credited %d, want %d", vendor, got, want)
	}
}
