package hashwall

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/hashwall/hashwall/agent"
	"github.com/hashwall/hashwall/agentapi"
	"github.com/hashwall/hashwall/internal/testutil/caddyload"
	"github.com/hashwall/hashwall/internal/testutil/paytest"
	"github.com/hashwall/hashwall/internal/testutil/redistest"
)

const (
	alertsFile     = "deploy/prometheus/hashwall-alerts.yml"
	prometheusFile = "deploy/prometheus/prometheus.yml"
	dashboardFile  = "deploy/grafana/hashwall-dashboard.json"
)

// metricRef is a Hashwall metric named in an alert or a dashboard.
var metricRef = regexp.MustCompile(`\bhashwall_[a-z0-9_]+`)

// TestMetricsContract runs a real agent (`hashwall agent`'s RunServer, its
// /metrics on its own listener) and a real gateway (Caddy, its registry
// served by the `metrics` handler, as deploy/prometheus/prometheus.yml
// advises), makes a payment so that labelled series exist, and holds the
// alerting rules and the dashboard to what the two /metrics serve: every
// hashwall_ metric they name is served, and every family served is on the
// dashboard.
func TestMetricsContract(t *testing.T) {
	alerts, dashboard := checkAlertsFile(t), checkDashboardFile(t)
	served := map[string]bool{} // sample and family names
	families := map[string]bool{}
	for _, url := range runMetricsWorld(t) {
		for name, family := range scrape(t, url) {
			served[name] = true
			families[family] = true
		}
	}
	for file, text := range map[string]string{alertsFile: alerts, dashboardFile: dashboard} {
		missing := map[string]bool{}
		for _, name := range metricRef.FindAllString(text, -1) {
			if !served[name] && !missing[name] {
				missing[name] = true
				t.Errorf("%s names %s, which neither /metrics serves", file, name)
			}
		}
	}
	used := map[string]bool{}
	for _, name := range metricRef.FindAllString(dashboard, -1) {
		used[name] = true
	}
	for family := range families {
		if !used[family] && !used[family+"_bucket"] && !used[family+"_count"] && !used[family+"_sum"] {
			t.Errorf("%s has no panel for %s", dashboardFile, family)
		}
	}
}

// runMetricsWorld starts the agent and the gateway, pays once, waits for
// the claim to reach the agent and for the gateway's gauges, and returns
// the two /metrics URLs.
func runMetricsWorld(t *testing.T) []string {
	ctx := t.Context()
	hc := &http.Client{Timeout: 10 * time.Second}
	bankRedis, newsRedis := redistest.Start(t), redistest.Start(t)

	keyFile := filepath.Join(t.TempDir(), "agent.pem")
	if _, err := agent.Keygen(keyFile, "agent-2026"); err != nil {
		t.Fatal(err)
	}
	api, metrics := listen(t), listen(t)
	bank := "http://" + api.Addr().String()
	const adminToken = "contract-admin"
	agentCtx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- agent.RunServer(agentCtx, agent.ServerConfig{
			Settings: agent.Settings{Ephemeral: true, UnitValue: 2}, Listener: api, MetricsListener: metrics,
			RedisURL: bankRedis.URL(), KeyFiles: []string{keyFile}, AdminToken: adminToken,
			MasterKey: base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{3}, 32)),
		})
	}()
	t.Cleanup(func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("agent: %v", err)
		}
	})
	admin := agentapi.NewClient(bank, hc).WithToken(adminToken)
	waitUntil(t, "the agent ready", 10*time.Second, func() bool { _, err := admin.Ready(ctx); return err == nil })
	vendor, err := admin.RegisterVendor(ctx, agentapi.RegisterVendor{Vendor: "daily-planet"})
	if err != nil {
		t.Fatal(err)
	}
	reader := buyer(t, admin, bank, hc)
	w := buy(t, reader)
	revokedCert := buy(t, reader)
	if _, err := admin.Revoke(ctx, agentapi.Revoke{Serial: &revokedCert.Serial}); err != nil {
		t.Fatal(err)
	}

	newsPort, metricsPort := caddyload.FreePort(t), caddyload.FreePort(t)
	news := fmt.Sprintf("http://127.0.0.1:%d", newsPort)
	caddyload.Start(t, fmt.Sprintf(`{
	log {
		level WARN
	}
}
http://127.0.0.1:%d {
	paywall {
		vendor    daily-planet
		api_token %s
		agent     %s
		redis     %s
		grant_key 0123456789abcdef0123456789abcdef
		crl       agent 200ms
		price /articles/* 2
		ephemeral
	}
	respond "the article"
}
http://127.0.0.1:%d {
	metrics
}
`, newsPort, vendor.Token, bank, newsRedis.URL(), metricsPort))

	waitUntil(t, "the gateway's first revocation-list sync", 10*time.Second, func() bool {
		return fetch(t, hc, news+"/articles/a", "Authorization", w.Header(t, 0, 2, 2, "daily-planet", "/articles/a")).StatusCode == 200
	})
	paid := fetch(t, hc, news+"/articles/a", "Authorization", w.Header(t, 0, 2, 2, "daily-planet", "/articles/a")) // a retry
	if paid.StatusCode != 200 {
		t.Fatalf("retried payment: %d", paid.StatusCode)
	}
	cookie, _, _ := strings.Cut(paid.Header.Get("Set-Cookie"), ";")
	if r := fetch(t, hc, news+"/articles/a", "Cookie", cookie); r.StatusCode != 200 {
		t.Fatalf("with the grant: %d", r.StatusCode)
	}
	if r := fetch(t, hc, news+"/articles/b"); r.StatusCode != 402 {
		t.Fatalf("unpaid: %d", r.StatusCode)
	}
	if r := fetch(t, hc, news+"/articles/b", "Authorization", w.Header(t, 0, 2, 2, "daily-planet", "/articles/b")); r.StatusCode == 200 {
		t.Fatal("spent tokens accepted again")
	}
	st, err := agentapi.NewClient(bank, hc).WithToken(vendor.Token).Statement(ctx, time.Time{}, time.Time{})
	for i := 0; err == nil && st.Credited == 0 && i < 100; i++ {
		time.Sleep(100 * time.Millisecond)
		st, err = agentapi.NewClient(bank, hc).WithToken(vendor.Token).Statement(ctx, time.Time{}, time.Time{})
	}
	if err != nil || st.Credited != 2*2 {
		t.Fatalf("the claim did not reach the agent: %+v %v", st, err)
	}
	gatewayMetrics := fmt.Sprintf("http://127.0.0.1:%d/metrics", metricsPort)
	waitUntil(t, "the gateway ready, its claim delivered and its backlog empty", 5*time.Second, func() bool {
		s := scrapeText(t, gatewayMetrics)
		return strings.Contains(s, `hashwall_gateway_ready{vendor="daily-planet"} 1`) &&
			strings.Contains(s, `hashwall_gateway_report_backlog{vendor="daily-planet"} 0`) &&
			strings.Contains(s, `hashwall_gateway_claim_delivery_seconds_count{mode="almost_online",vendor="daily-planet"} 1`)
	})
	return []string{gatewayMetrics, "http://" + metrics.Addr().String() + "/metrics"}
}

// buyer registers a reader with credit and returns its client.
func buyer(t *testing.T, admin *agentapi.Client, bank string, hc *http.Client) *agentapi.Client {
	ctx := t.Context()
	api := agentapi.NewClient(bank, hc)
	if _, err := api.RegisterUser(ctx, agentapi.RegisterUser{Username: "alice", Password: "correct horse battery"}); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.Credit(ctx, agentapi.Credit{User: "alice", Amount: 10_000}); err != nil {
		t.Fatal(err)
	}
	s, err := api.Login(ctx, "alice", "correct horse battery")
	if err != nil {
		t.Fatal(err)
	}
	return api.WithToken(s.Token)
}

// buy buys a certificate of 128 tokens and returns what a wallet holds.
func buy(t *testing.T, reader *agentapi.Client) *paytest.Cert {
	user := ed25519.NewKeyFromSeed(paytest.Seed(0x41))
	b, err := reader.Buy(t.Context(), 128, user.Public().(ed25519.PublicKey), "")
	if err != nil {
		t.Fatal(err)
	}
	return paytest.FromBundle(t, user, b)
}

func listen(t *testing.T) net.Listener {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

// fetch GETs url with header name and value pairs; the body is discarded.
func fetch(t *testing.T, hc *http.Client, url string, hdr ...string) *http.Response {
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp
}

func scrapeText(t *testing.T, url string) string {
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b strings.Builder
	if _, err := bufio.NewReader(resp.Body).WriteTo(&b); err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d %v", url, resp.StatusCode, err)
	}
	return b.String()
}

// scrape returns the hashwall_ sample names of the text exposition at url,
// each with its family's name (a histogram's _bucket, _sum and _count
// belong to the family named in its # TYPE line).
func scrape(t *testing.T, url string) map[string]string {
	names := map[string]string{}
	family := ""
	for line := range strings.Lines(scrapeText(t, url)) {
		if f, ok := strings.CutPrefix(line, "# TYPE "); ok {
			family, _, _ = strings.Cut(f, " ")
			names[family] = family
			continue
		}
		name, _, _ := strings.Cut(line, " ")
		name, _, _ = strings.Cut(name, "{")
		if strings.HasPrefix(name, "hashwall_") && !strings.HasPrefix(line, "#") {
			names[name] = family
		}
	}
	for name := range names {
		if !strings.HasPrefix(name, "hashwall_") {
			delete(names, name)
		}
	}
	if len(names) == 0 {
		t.Fatalf("%s serves no hashwall_ metric", url)
	}
	return names
}

func waitUntil(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(d); !cond(); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// checkAlertsFile checks that the alerting rules parse and that every rule
// has an alert name, an expression, a for, a severity and a summary, and
// that the jobs its `up` rules name are scraped by the example config
// (whose rule file is the alerts file). It returns the file's text.
func checkAlertsFile(t *testing.T) string {
	var rules struct {
		Groups []struct {
			Name  string
			Rules []struct {
				Alert, Expr string
				For         *string
				Labels      map[string]string
				Annotations map[string]string
			}
		}
	}
	text := readYAML(t, alertsFile, &rules, true)
	if len(rules.Groups) == 0 {
		t.Fatalf("%s: no groups", alertsFile)
	}
	alerts := map[string]bool{}
	for _, g := range rules.Groups {
		for i, r := range g.Rules {
			where := fmt.Sprintf("%s: group %s, rule %d (%s)", alertsFile, g.Name, i, r.Alert)
			if r.Alert == "" || alerts[r.Alert] || strings.TrimSpace(r.Expr) == "" || r.For == nil ||
				r.Annotations["summary"] == "" || !slices.Contains([]string{"critical", "warning", "info"}, r.Labels["severity"]) {
				t.Errorf("%s: wants a unique alert name, expr, for, labels.severity (critical, warning or info) and annotations.summary", where)
			}
			alerts[r.Alert] = true
			if _, err := time.ParseDuration(deref(r.For)); err != nil {
				t.Errorf("%s: for: %v", where, err)
			}
		}
	}
	var prom struct {
		RuleFiles     []string `yaml:"rule_files"`
		ScrapeConfigs []struct {
			JobName string `yaml:"job_name"`
		} `yaml:"scrape_configs"`
	}
	readYAML(t, prometheusFile, &prom, false)
	if !slices.Contains(prom.RuleFiles, filepath.Base(alertsFile)) {
		t.Errorf("%s does not load %s", prometheusFile, alertsFile)
	}
	jobs := map[string]bool{}
	for _, s := range prom.ScrapeConfigs {
		jobs[s.JobName] = true
	}
	for _, m := range regexp.MustCompile(`up\{job="([^"]+)"\}`).FindAllStringSubmatch(text, -1) {
		if !jobs[m[1]] {
			t.Errorf("%s watches job %s, which %s does not scrape", alertsFile, m[1], prometheusFile)
		}
	}
	if promtool, err := exec.LookPath("promtool"); err == nil {
		if out, err := exec.Command(promtool, "check", "config", prometheusFile).CombinedOutput(); err != nil {
			t.Errorf("promtool check config: %v\n%s", err, out)
		}
	} else {
		t.Log("promtool not installed: the expressions are not checked by Prometheus itself")
	}
	return text
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// readYAML decodes file into v; strict refuses keys v does not have.
func readYAML(t *testing.T, file string, v any, strict bool) string {
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(strict)
	if err := dec.Decode(v); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	return string(b)
}

// checkDashboardFile checks that the dashboard parses and that every panel
// has a title and at least one target with an expression. It returns the
// file's text.
func checkDashboardFile(t *testing.T) string {
	b, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Title  string
		UID    string
		Panels []struct {
			ID      int
			Title   string
			Targets []struct{ Expr string }
		}
	}
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("%s: %v", dashboardFile, err)
	}
	if d.Title == "" || d.UID == "" || len(d.Panels) == 0 {
		t.Fatalf("%s: no title, uid or panels", dashboardFile)
	}
	ids := map[int]bool{}
	for i, p := range d.Panels {
		if p.Title == "" || len(p.Targets) == 0 || ids[p.ID] {
			t.Errorf("%s: panel %d (%q) wants a title, a unique id and a target", dashboardFile, i, p.Title)
		}
		ids[p.ID] = true
		for _, tg := range p.Targets {
			if strings.TrimSpace(tg.Expr) == "" {
				t.Errorf("%s: panel %q has a target without an expression", dashboardFile, p.Title)
			}
		}
	}
	return string(b)
}
