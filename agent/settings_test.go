package agent

import (
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"
	"time"
)

// TestDurationJSON: a Duration reads what caddy.Duration reads.
func TestDurationJSON(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]time.Duration{
		`"10m"`: 10 * time.Minute, `"7d"`: 7 * 24 * time.Hour, `"1d12h"`: 36 * time.Hour, `"1.5d"`: 36 * time.Hour,
		`"250ms"`: 250 * time.Millisecond, `600000000000`: 10 * time.Minute, `0`: 0,
	} {
		var d Duration
		if err := json.Unmarshal([]byte(in), &d); err != nil || time.Duration(d) != want {
			t.Errorf("%s: %v, %v; want %v", in, time.Duration(d), err, want)
		}
	}
	for _, in := range []string{`"soon"`, `"d"`, `"5hd"`, `1.5`, `true`, `"` + strings.Repeat("1", 2000) + `s"`} {
		var d Duration
		if err := json.Unmarshal([]byte(in), &d); err == nil {
			t.Errorf("%s accepted as %v", in, time.Duration(d))
		}
	}
}

// TestSettingsValidate: the one check of both commands.
func TestSettingsValidate(t *testing.T) {
	t.Parallel()
	if err := (Settings{}).Validate(); err != nil {
		t.Fatalf("defaults refused: %v", err)
	}
	for name, s := range map[string]Settings{
		"segment_len":          {SegmentLen: -1},
		"max_tokens":           {MaxTokens: 10},
		"currency":             {Currency: "euro"},
		"cert_ttl":             {CertTTL: -1},
		"recover_advance":      {RecoverAdvance: -1},
		"report_window":        {ReportWindow: Duration(MaxBatchInterval)},
		"report_window (1s)":   {ReportWindow: Duration(time.Millisecond)},
		"recover_every":        {RecoverEvery: Duration(-time.Second)},
		"settlement_window":    {SettlementWindow: Duration(-time.Second)},
		"report_window (neg.)": {ReportWindow: Duration(-time.Hour)},
		"replicas":             {Replicas: -2},
		"replicas (many)":      {Replicas: 17},
		"replica_timeout":      {ReplicaTimeout: Duration(2 * time.Second)},
	} {
		if err := s.Validate(); err == nil || !strings.Contains(err.Error(), strings.Fields(name)[0]) {
			t.Errorf("%s: %v", name, err)
		}
	}
	// Only a window no longer than a batch interval is the soft complaint.
	if err := (Settings{ReportWindow: Duration(MaxBatchInterval)}).Validate(); !errors.Is(err, ErrShortReportWindow) {
		t.Errorf("short window: %v", err)
	}
	if err := (Settings{ReportWindow: Duration(time.Millisecond)}).Validate(); errors.Is(err, ErrShortReportWindow) {
		t.Errorf("sub-second window: %v", err)
	}
}

// TestSettingsTable: each setting is bound to its own field, parses what
// the Caddyfile takes, and docs/agent-api.md lists its option and flag.
func TestSettingsTable(t *testing.T) {
	t.Parallel()
	doc, err := os.ReadFile("../docs/agent-api.md")
	if err != nil {
		t.Fatal(err)
	}
	in := map[string]string{"segment_len": "256", "max_tokens": "50000", "unit_value": "2", "currency": "USD",
		"cert_ttl": "720h", "settlement_window": "7d", "settle_interval": "2h", "report_window": "15m",
		"recover_advance": "64", "recover_every": "3h", "open_vendors": "true", "ephemeral": "true", "test_topups": "true",
		"behind_tls": "true", "replicas": "2", "replica_timeout": "250ms", "signups_per_hour": "50"}
	var s Settings
	table := s.Table()
	if len(table) != len(in) {
		t.Fatalf("%d settings, %d tested", len(table), len(in))
	}
	for _, x := range table {
		if err := x.Value.Set(in[x.Key]); err != nil {
			t.Errorf("%s %s: %v", x.Key, in[x.Key], err)
		}
		if row := "| `" + x.Key + "` | `--" + x.Flag() + "` |"; !strings.Contains(string(doc), row) {
			t.Errorf("docs/agent-api.md has no row %s", row)
		}
	}
	want := Settings{SegmentLen: 256, MaxTokens: 50000, UnitValue: 2, Currency: "USD", CertTTL: Duration(720 * time.Hour),
		SettlementWindow: Duration(7 * 24 * time.Hour), SettleInterval: Duration(2 * time.Hour),
		ReportWindow: Duration(15 * time.Minute), RecoverAdvance: 64, RecoverEvery: Duration(3 * time.Hour),
		OpenVendors: true, SignupsPerHour: 50, Ephemeral: true, TestTopups: true, BehindTLS: true, Replicas: 2, ReplicaTimeout: Duration(250 * time.Millisecond)}
	if s != want {
		t.Fatalf("%+v, want %+v", s, want)
	}
	for key, bad := range map[string]string{"segment_len": "-1", "max_tokens": "lots", "unit_value": "0",
		"cert_ttl": "-5s", "report_window": "soon", "recover_advance": "-1", "ephemeral": "maybe",
		"replicas": "0", "replica_timeout": "0s", "signups_per_hour": "0"} {
		for _, x := range table {
			if x.Key == key && x.Value.Set(bad) == nil {
				t.Errorf("%s accepted %q", key, bad)
			}
		}
	}
}
