// Package democmd adds `hashwall demo`: a newspaper, a bank and a reader in
// one process on an embedded store. cmd/hashwall imports it; a plug-in build
// links it (and miniredis) only when asked (HASHWALL_DEMO=1 ./xcaddy.sh).
package democmd

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/caddyserver/caddy/v2"
	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/cobra"

	"github.com/hashwall/hashwall/agent"
	"github.com/hashwall/hashwall/agentapi"
	"github.com/hashwall/hashwall/internal/redisurl"
	"github.com/hashwall/hashwall/payword"
	"github.com/hashwall/hashwall/wallet"
)

func init() {
	caddycmd.RegisterCommand(caddycmd.Command{
		Name:  "demo",
		Usage: "[--redis <url>] [--site <addr>] [--agent <addr>] [--origin <url>]...",
		Short: "Runs a paywalled newspaper, a bank and a reader on this machine, with no setup",
		Long: `
Starts, in one process: a store (an embedded in-memory one unless --redis is
given), the agent (the bank), the paywall gateway in front of a small
built-in newspaper, and a reader's wallet with bought tokens. It makes one
paid request, prints what happened, then keeps serving so that you can try
the wallet CLI against it. Stop it with Ctrl-C.
`,
		CobraFunc: func(cmd *cobra.Command) {
			cmd.Flags().String("redis", "", "use this Redis instead of the embedded in-memory store")
			cmd.Flags().String("site", "127.0.0.1:8490", "address of the newspaper (behind the paywall)")
			cmd.Flags().String("agent", "127.0.0.1:8491", "address of the agent (and, in the demo only, of its /metrics)")
			cmd.Flags().StringArray("origin", nil, "origin (scheme://host[:port]) the newspaper is reached at, registered at the bank: wallets pay only there (repeatable; default http://<site>)")
			cmd.RunE = caddycmd.WrapCommandFuncForCobra(runDemo)
		},
	})
}

const demoPassword = "demo-password"

// The demo's vendor and reader; on a store given with --redis, which may hold
// an earlier demo's accounts, the names get a random suffix.
var (
	demoVendor = "daily-planet"
	demoReader = "reader"
)

func runDemo(fl caddycmd.Flags) (int, error) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	say := func(format string, args ...any) { fmt.Printf(format+"\n", args...) }

	// The store.
	redisURL := fl.String("redis")
	if redisURL == "" {
		mr := miniredis.NewMiniRedis()
		if err := mr.StartAddr("127.0.0.1:0"); err != nil {
			return 1, err
		}
		defer mr.Close()
		redisURL = "redis://" + mr.Addr()
		say("store:   embedded, IN MEMORY ONLY (miniredis at %s): everything is gone when the demo stops.", mr.Addr())
		say("         Use --redis redis://… for a real Redis; run a real agent with the append-only file on.")
	} else {
		suffix := "-" + randomHex(3)
		demoVendor, demoReader = demoVendor+suffix, demoReader+suffix
		say("store:   %s (demo accounts %s and %s)", redisURL, demoVendor, demoReader)
	}

	// The agent, with a throwaway signing key and master key.
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	master := make([]byte, 32)
	rand.Read(master)
	admin := randomHex(16)
	rdb, err := redisurl.New(redisURL)
	if err != nil {
		return 1, err
	}
	defer rdb.Close()
	metrics := prometheus.NewRegistry()
	bank, err := agent.New(ctx, agent.Config{Redis: rdb, SigningKeys: []payword.SigningKey{{ID: "demo-agent", Key: priv}},
		MasterKey: master, AdminToken: admin, Settings: agent.Settings{Ephemeral: true, TestTopups: true}, Metrics: metrics})
	if err != nil {
		return 1, err
	}
	// A real agent serves /metrics on a listener of its own (they tell the
	// bank's sales); the demo, on loopback, serves them beside the API.
	mux := http.NewServeMux()
	mux.Handle("/v1/", bank)
	mux.Handle("GET /metrics", promhttp.HandlerFor(metrics, promhttp.HandlerOpts{}))
	mux.Handle("/", bank.Pages()) // the readers' pages; top-ups through the free test checkout
	agentURL, err := serve(ctx, fl.String("agent"), mux)
	if err != nil {
		return 1, err
	}
	say("agent:   %s", agentURL)

	// The newspaper, behind the paywall.
	upstream, err := serve(ctx, "127.0.0.1:0", newspaper())
	if err != nil {
		return 1, err
	}
	site := fl.String("site")
	// Wallets pay the newspaper only on the origins it registers at the bank.
	origins, err := fl.GetStringArray("origin")
	if err != nil {
		return 1, err
	}
	if len(origins) == 0 {
		origins = []string{"http://" + site}
	}
	for _, o := range origins {
		if _, err := payword.ParseOrigin(o); err != nil {
			return 1, fmt.Errorf("the newspaper's origin: %w (give the address readers use with --origin http://host:port)", err)
		}
	}
	adminClient := agentapi.NewClient(agentURL, nil).WithToken(admin)
	vendor, err := adminClient.RegisterVendor(ctx, agentapi.RegisterVendor{Vendor: demoVendor, Origins: origins})
	if err != nil {
		return 1, fmt.Errorf("registering the demo vendor: %w", err)
	}
	if err := caddy.Load(gatewayConfig(site, strings.TrimPrefix(upstream, "http://"), agentURL, redisURL, vendor.Token), true); err != nil {
		return 1, fmt.Errorf("starting the gateway: %w", err)
	}
	defer caddy.Stop()
	siteURL := "http://" + site
	say("site:    %s  (the Daily Planet, behind the paywall; wallets pay it at %s)", siteURL, strings.Join(vendor.Origins, ", "))

	// A reader with a funded account and a wallet.
	dir, err := os.MkdirTemp("", "hashwall-demo-")
	if err != nil {
		return 1, err
	}
	defer os.RemoveAll(dir)
	walletPath := filepath.Join(dir, "reader.hw")
	tokens, err := demoReaderWallet(ctx, adminClient, walletPath)
	if err != nil {
		return 1, err
	}
	say("reader:  %q with a wallet of %d tokens at %s", demoReader, tokens, walletPath)
	say("bank:    %s/login  (reader %q, password %q)\n", agentURL, demoReader, demoPassword)

	// One paid request, step by step.
	article := siteURL + "/articles/moon-landing"
	if err := demoPaidRequest(ctx, walletPath, article, say); err != nil {
		return 1, err
	}

	say(`
Watch the money move, as the bank's operator and as the newspaper:

  export ADMIN=%s VENDOR=%s
  curl -H "Authorization: Bearer $ADMIN" %s/v1/admin/vendors/%s/statement   # what the newspaper earned
  curl -H "Authorization: Bearer $ADMIN" %s/v1/admin/fraud                  # disputes, double-spends
  curl -H "Authorization: Bearer $ADMIN" %s/v1/admin/ledger/check           # the books balance
  curl -H "Authorization: Bearer $VENDOR" %s/v1/statement                   # the newspaper's own view
  curl %s/metrics | grep hashwall_agent                                     # the bank's metrics`,
		admin, vendor.Token, agentURL, demoVendor, agentURL, agentURL, agentURL, agentURL)
	say(`
Try it yourself (in another terminal, from this repository):

  export HASHWALL_WALLET=%s HASHWALL_PASSWORD=%s
  go run ./cmd/hashwall-wallet balance
  go run ./cmd/hashwall-wallet get %s/articles/city-council
  go run ./cmd/hashwall-wallet get %s/articles/premium/interview   # 5 tokens
  go run ./cmd/hashwall-wallet get %s/features/crossword           # priced by the site itself
  go run ./cmd/hashwall-wallet get %s/issues/%s/front --max-price 20   # the whole day's issue
  go run ./cmd/hashwall-wallet get %s/issues/%s/sport                  # covered by that day pass
  go run ./cmd/hashwall-wallet history
  curl -i %s/articles/city-council    # what a browser without a wallet gets: 402 and a challenge`,
		walletPath, demoPassword, siteURL, siteURL, siteURL, siteURL, demoIssue, siteURL, demoIssue, siteURL)
	say(`
Or read in a browser, with nothing installed:

  1. open %s/ and pick an article: the paywall asks for 2 tokens;
  2. press "Pay 2 tokens with %s" and log in as %q, password %q
     (or open your own account there: top-ups are free in the demo);
  3. press "Pay 2 tokens" and you are back at the article, paid. Tick
     "pay without asking" first, and every next article is one click.
  Your tokens, what you read and your limits: %s/account

Or with the browser wallet, which pays as you read, with no click: load
wallet/extension in chrome://extensions (Developer mode, "Load unpacked"),
set it up with the bank %s and the reader above, and open %s/.

The newspaper's own pages at the bank (revenue, claims, disputes, statements):
  %s/vendor/login  with the token %s
The bank operator's pages (readers, vendors, figures, disputes, revocations):
  %s/admin/login  with the token %s

Serving until Ctrl-C.`, siteURL, strings.TrimPrefix(agentURL, "http://"), demoReader, demoPassword, agentURL, agentURL, siteURL, agentURL, vendor.Token, agentURL, admin)
	<-ctx.Done()
	say("\nstopping.")
	return 0, nil
}

// serve serves h on addr until ctx ends and returns its base URL.
func serve(ctx context.Context, addr string, h http.Handler) (string, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", fmt.Errorf("listening on %s: %w (is another demo running? choose another address with the flags)", addr, err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	go func() { <-ctx.Done(); srv.Close() }()
	return "http://" + ln.Addr().String(), nil
}

// gatewayConfig is the Caddy JSON of the newspaper's gateway.
func gatewayConfig(site, upstream, agentURL, redisURL, apiToken string) []byte {
	grantKey := make([]byte, 32)
	rand.Read(grantKey)
	paywall := map[string]any{
		"handler": "paywall", "vendor": demoVendor, "api_token": apiToken, "agent": agentURL,
		"redis": redisURL, "grant_key": base64.StdEncoding.EncodeToString(grantKey), "realm": "The Daily Planet",
		"ephemeral": true, // as the demo's agent: miniredis, or a --redis the demo does not vouch for
		"rules": []map[string]any{
			{"pattern": "/articles/premium/*", "price": 5},
			{"pattern": "/articles/*", "price": 2},
			{"pattern": "/issues/*/*", "price": 20, "scope": "/issues/*/", "ttl": "24h"},
		},
		"free":           []string{"/", "/index.html", "/planet.css", "/free/*"},
		"upstream_price": true,
		// The demo's bank keeps the defaults: a token is one cent.
		"token_value": map[string]any{"minor_units": 1, "currency": agent.DefaultCurrency},
	}
	cfg := map[string]any{
		"admin":   map[string]any{"disabled": true},
		"logging": map[string]any{"logs": map[string]any{"default": map[string]any{"level": "ERROR"}}},
		"apps": map[string]any{"http": map[string]any{"servers": map[string]any{"demo": map[string]any{
			"listen":          []string{site},
			"automatic_https": map[string]any{"disable": true},
			"routes": []map[string]any{{"handle": []map[string]any{
				paywall,
				{"handler": "reverse_proxy", "upstreams": []map[string]string{{"dial": upstream}},
					"headers": map[string]any{"request": map[string]any{"set": map[string][]string{
						"X-Paywall-User": {"{http.paywall.user}"}, "X-Paywall-Auth": {"{http.paywall.auth}"}}}}},
			}}},
		}}}},
	}
	raw, _ := json.Marshal(cfg)
	return raw
}

// demoReaderWallet registers the reader, funds the account, and fills a
// new wallet with a certificate. It returns the tokens bought.
func demoReaderWallet(ctx context.Context, admin *agentapi.Client, path string) (int, error) {
	q := agentapi.RegisterUser{Username: demoReader, Password: demoPassword, Info: map[string]string{"name": "Demo Reader"}}
	if _, err := agentapi.NewClient(admin.BaseURL(), nil).RegisterUser(ctx, q); err != nil {
		return 0, fmt.Errorf("registering the reader: %w", err)
	}
	if _, err := admin.Credit(ctx, agentapi.Credit{User: demoReader, Amount: 10000}); err != nil {
		return 0, fmt.Errorf("funding the reader: %w", err)
	}
	w, err := wallet.Create(path, []byte(demoPassword), admin.BaseURL(), demoReader)
	if err != nil {
		return 0, err
	}
	defer w.Close()
	bank := w.Bank(nil)
	if err := w.PinBankKeys(ctx, bank); err != nil {
		return 0, fmt.Errorf("fetching the bank's keys: %w", err)
	}
	b, err := w.Buy(ctx, bank.WithPassword(demoReader, demoPassword), 500, "")
	if err != nil {
		return 0, fmt.Errorf("buying tokens: %w", err)
	}
	return b.Tokens, nil
}

// demoPaidRequest fetches url with the reader's wallet and narrates each hop.
func demoPaidRequest(ctx context.Context, walletPath, url string, say func(string, ...any)) error {
	w, err := wallet.Open(walletPath, []byte(demoPassword))
	if err != nil {
		return err
	}
	defer w.Close() // the CLI needs the wallet's lock afterwards
	say("one paid request, GET %s:", url)
	tr := &wallet.Transport{Wallet: w, Base: narrator{say}, Paid: func(vendor, product string, price uint32, took time.Duration) {
		say("  the wallet paid %d tokens to %s for %s (payment: %v)", price, vendor, product, took.Round(time.Microsecond))
	}}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	start := time.Now()
	resp, err := tr.RoundTrip(req)
	if err != nil {
		return fmt.Errorf("the demo's paid request failed: %w", err)
	}
	defer resp.Body.Close()
	took := time.Since(start)
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		return errors.New("the demo's paid request was not served: " + resp.Status)
	}
	left := 0
	for _, b := range w.Balance() {
		left += b.Spendable()
	}
	say("  content: %s", firstLine(string(body)))
	say("  402 → payment → 200 in %v; tokens left: %d", took.Round(time.Microsecond), left)
	return nil
}

// narrator is a RoundTripper that tells each hop of a request.
type narrator struct{ say func(string, ...any) }

func (n narrator) RoundTrip(r *http.Request) (*http.Response, error) {
	paying := strings.HasPrefix(r.Header.Get("Authorization"), payword.Scheme+" ")
	resp, err := http.DefaultTransport.RoundTrip(r)
	if err != nil {
		return nil, err
	}
	switch {
	case resp.StatusCode == http.StatusPaymentRequired:
		n.say("  %s  WWW-Authenticate: %s", resp.Status, resp.Header.Get("WWW-Authenticate"))
	case paying:
		n.say("  sent the payment (Authorization: PayWord …) → %s, grant received: %v", resp.Status, resp.Header.Get(payword.ReceiptHeader) != "")
	default:
		n.say("  %s", resp.Status)
	}
	return resp, nil
}

func firstLine(s string) string {
	if i := strings.IndexAny(s, "\n"); i >= 0 {
		s = s[:i]
	}
	if len(s) > 160 {
		s = s[:160] + "…"
	}
	return s
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}
