package agenthandler

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/hashwall/hashwall/agent"
	"github.com/hashwall/hashwall/internal/testutil/redistest"
)

func TestCaddyfile(t *testing.T) {
	t.Parallel()
	good := `paywall_agent {
		redis redis://127.0.0.1:6380/0
		signing_keys /etc/a.key /etc/b.key
		master_key {env.HASHWALL_MASTER_KEY}
		admin_token {env.ADMIN}
		webhook_secret whsec
		pages
		open_vendors
		ephemeral
		segment_len 256
		max_tokens 50000
		unit_value 2
		currency USD
		cert_ttl 720h
		settlement_window 7d
		report_window 15m
		recover_advance 64
		recover_every 2h
	}`
	var h Handler
	if err := h.UnmarshalCaddyfile(caddyfile.NewTestDispenser(good)); err != nil {
		t.Fatal(err)
	}
	if h.Redis != "redis://127.0.0.1:6380/0" || len(h.SigningKeys) != 2 || !h.Pages || !h.OpenVendors || !h.Ephemeral ||
		h.SegmentLen != 256 || h.MaxTokens != 50000 || h.UnitValue != 2 || h.Currency != "USD" ||
		time.Duration(h.CertTTL) != 720*time.Hour || time.Duration(h.SettlementWindow) != 7*24*time.Hour ||
		time.Duration(h.ReportWindow) != 15*time.Minute || h.RecoverAdvance != 64 || time.Duration(h.RecoverEvery) != 2*time.Hour {
		t.Fatalf("%+v", h)
	}
	for _, bad := range []string{
		`paywall_agent extra`,
		"paywall_agent {\nredis\n}",
		"paywall_agent {\nredis a b\n}",
		"paywall_agent {\nsigning_keys\n}",
		"paywall_agent {\nephemeral yes\n}",
		"paywall_agent {\npages please\n}",
		"paywall_agent {\nsegment_len -1\n}",
		"paywall_agent {\nmax_tokens lots\n}",
		"paywall_agent {\ncert_ttl forever\n}",
		"paywall_agent {\ncert_ttl -5s\n}",
		"paywall_agent {\nfrobnicate\n}",
		"paywall_agent {\nrecover_advance -1\n}",
		"paywall_agent {\nreport_window soon\n}",
	} {
		var h Handler
		if err := h.UnmarshalCaddyfile(caddyfile.NewTestDispenser(bad)); err == nil {
			t.Errorf("accepted %q", bad)
		}
	}
}

func FuzzCaddyfile(f *testing.F) {
	f.Add("paywall_agent {\n redis redis://x\n segment_len 12\n cert_ttl 1h\n}")
	f.Add("paywall_agent { signing_keys a b c }")
	f.Fuzz(func(t *testing.T, s string) {
		if len(s) > 4096 {
			return
		}
		var h Handler
		_ = h.UnmarshalCaddyfile(caddyfile.NewTestDispenser(s))
	})
}

func TestProvisionAndServe(t *testing.T) {
	srv := redistest.Start(t, redistest.WithoutAOF()) // the last check wants a Redis without AOF
	kf := filepath.Join(t.TempDir(), "agent.key")
	if _, err := agent.Keygen(kf, "agent-2026"); err != nil {
		t.Fatal(err)
	}
	t.Setenv("TEST_MASTER_KEY", base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{3}, 32)))
	h := &Handler{Redis: srv.URL(), SigningKeys: []string{kf}, MasterKey: "{env.TEST_MASTER_KEY}", Settings: agent.Settings{Ephemeral: true}}
	if err := h.Validate(); err != nil {
		t.Fatal(err)
	}
	// A report window no longer than a gateway's longest batch interval
	// could credit a recovery before its claims arrive.
	short := &Handler{Redis: srv.URL(), SigningKeys: []string{kf}, MasterKey: "x",
		Settings: agent.Settings{ReportWindow: agent.Duration(agent.MaxBatchInterval)}}
	if err := short.Validate(); err == nil || !strings.Contains(err.Error(), "report_window") {
		t.Fatalf("short report window: %v", err)
	}
	// Provision refuses it before it takes a pooled client.
	ctx0, cancel0 := caddy.NewContext(caddy.Context{Context: context.Background()})
	defer cancel0()
	if err := short.Provision(ctx0); err == nil {
		t.Fatal("provisioned a short report window")
	}
	if n, _ := redisPool.References(srv.URL()); n != 0 {
		t.Fatalf("a refused configuration holds %d pooled clients", n)
	}
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	defer cancel()
	if err := h.Provision(ctx); err != nil {
		t.Fatal(err)
	}
	// A second instance (a reload) shares the pooled client and the metrics.
	h2 := &Handler{Redis: srv.URL(), SigningKeys: []string{kf}, MasterKey: "{env.TEST_MASTER_KEY}", Settings: agent.Settings{Ephemeral: true}}
	if err := h2.Provision(ctx); err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	next := nextFunc(func(w http.ResponseWriter, r *http.Request) error { w.WriteHeader(299); return nil })
	if err := h.ServeHTTP(rec, httptest.NewRequest("GET", "/v1/keys", nil), next); err != nil {
		t.Fatal(err)
	}
	if rec.Code != 200 || !strings.Contains(rec.Body.String(), "agent-2026") {
		t.Fatalf("/v1/keys: %d %s", rec.Code, rec.Body)
	}
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/index.html", nil), next)
	if rec.Code != 299 {
		t.Fatalf("non-API request not passed on: %d", rec.Code)
	}
	// With pages, the readers' pages answer instead.
	h.Pages = true
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/login", nil), next)
	if rec.Code != 200 || !strings.Contains(rec.Body.String(), "<form") || !strings.Contains(rec.Header().Get("Content-Security-Policy"), "frame-ancestors 'none'") {
		t.Fatalf("/login with pages: %d %q", rec.Code, rec.Header())
	}
	h.Pages = false
	// Without ephemeral, the AOF-less Redis is refused.
	h3 := &Handler{Redis: srv.URL(), SigningKeys: []string{kf}, MasterKey: "{env.TEST_MASTER_KEY}"}
	if err := h3.Provision(ctx); err == nil {
		t.Fatal("provisioned on a non-durable Redis")
	}
	// Cleanup releases the pooled client: the last one closes it.
	for _, x := range []*Handler{h3, h, h2} {
		if err := x.Cleanup(); err != nil {
			t.Fatal(err)
		}
	}
	if n, _ := redisPool.References(srv.URL()); n != 0 {
		t.Fatalf("%d pooled clients left after Cleanup", n)
	}
}

// TestJSONKeys: the settings are inline in the handler's JSON, under the
// keys Caddy's JSON used before, and durations read as caddy.Duration does.
func TestJSONKeys(t *testing.T) {
	t.Parallel()
	var h Handler
	err := json.Unmarshal([]byte(`{"redis": "redis://x", "segment_len": 256, "max_tokens": 50000, "unit_value": 2,
		"currency": "USD", "cert_ttl": "30d", "settlement_window": 604800000000000, "settle_interval": "1h",
		"report_window": "15m", "recover_advance": 64, "recover_every": "2h", "open_vendors": true, "ephemeral": true}`), &h)
	want := agent.Settings{SegmentLen: 256, MaxTokens: 50000, UnitValue: 2, Currency: "USD",
		CertTTL: agent.Duration(720 * time.Hour), SettlementWindow: agent.Duration(7 * 24 * time.Hour),
		SettleInterval: agent.Duration(time.Hour), ReportWindow: agent.Duration(15 * time.Minute), RecoverAdvance: 64,
		RecoverEvery: agent.Duration(2 * time.Hour), OpenVendors: true, Ephemeral: true}
	if err != nil || h.Settings != want || h.Redis != "redis://x" {
		t.Fatalf("%+v, %v", h, err)
	}
}

type nextFunc func(http.ResponseWriter, *http.Request) error

func (f nextFunc) ServeHTTP(w http.ResponseWriter, r *http.Request) error { return f(w, r) }
