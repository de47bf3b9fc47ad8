package agent

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/hashwall/hashwall/payword"
)

// metric returns the value of the series of family name with label value
// lv ("" for an unlabelled metric), summed for histograms' sample counts;
// 0 when there is none.
func metric(t *testing.T, reg *prometheus.Registry, name, lv string) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			if lv != "" && (len(m.GetLabel()) == 0 || m.GetLabel()[0].GetValue() != lv) {
				continue
			}
			switch {
			case m.Counter != nil:
				sum += m.GetCounter().GetValue()
			case m.Gauge != nil:
				sum += m.GetGauge().GetValue()
			case m.Histogram != nil:
				sum += float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	return sum
}

// metricsEnv is an env whose agent registers on a pedantic registry (as
// Caddy's is), its config adjusted by mods.
func metricsEnv(t *testing.T, mods ...func(*Config)) (*env, *prometheus.Registry) {
	t.Helper()
	e := newEnv(t)
	reg := prometheus.NewPedanticRegistry()
	e.cfg.Metrics = reg
	for _, m := range mods {
		m(&e.cfg)
	}
	e.restartAgent()
	return e, reg
}

func TestMetrics(t *testing.T) {
	t.Parallel()
	e, reg := metricsEnv(t)
	va, vb := e.vendor("planet"), e.vendor("globe")
	w := e.buy(e.user("alice", 1000), 256)
	e.expectReport("paid:3 vendor_fraud:0", va, "planet", "b1", w.claim(0, 3, 3, "planet"), w.claim(1, 1, 1, ""))
	e.expectReport("double_spend:4", vb, "globe", "b1", w.claim(0, 4, 4, "globe"))
	const ns = "hashwall_agent_"
	for _, c := range []struct {
		name, label string
		want        float64
	}{
		{"certificates_issued_total", "", 1},
		{"tokens_issued_total", "", 256},
		{"claims_total", "paid", 1},
		{"claims_total", "vendor_fraud", 1},
		{"claims_total", "double_spend", 1},
		{"disputes_total", "", 2},
		{"revocations_total", "double-spend", 1},
	} {
		if got := metric(t, reg, ns+c.name, c.label); got != c.want {
			t.Errorf("%s{%s} = %v, want %v", c.name, c.label, got, c.want)
		}
	}
	// A second agent on the same registry (a Caddy reload) shares the collectors.
	e.restartAgent()
	e.buy(e.user("bob", 1000), 128)
	if got := metric(t, reg, ns+"certificates_issued_total", ""); got != 2 {
		t.Fatalf("after a reload: %v certificates", got)
	}
	if metric(t, reg, ns+"request_duration_seconds", "POST /v1/reports") != 2 {
		t.Fatal("report latency not observed")
	}
}

// TestClaimedValue: the value counted as claimed, and as voided, is what
// the vendors' statements show credited for claims and taken back by
// voids, at the certificates' unit value: paid and double-spent claims
// count, disputed ones and a replayed batch do not.
func TestClaimedValue(t *testing.T) {
	t.Parallel()
	e, reg := metricsEnv(t, func(c *Config) { c.UnitValue = 3 })
	va, vb := e.vendor("planet"), e.vendor("globe")
	w := e.buy(e.user("alice", 1000), 256)
	first := []payword.Claim{w.claim(0, 3, 3, "planet"), w.claim(1, 1, 1, "")}
	e.expectReport("paid:3 vendor_fraud:0", va, "planet", "b1", first...)
	e.expectReport("paid:3 vendor_fraud:0", va, "planet", "b1", first...) // answered from its record
	second := w.claim(0, 5, 2, "planet")
	e.expectReport("paid:2 voided:2", va, "planet", "b2", second, voidOf(second))
	e.expectReport("double_spend:4", vb, "globe", "b1", w.claim(0, 4, 4, "globe"))

	statements := map[string]int64{}
	for _, auth := range []string{va, vb} {
		st, err := e.as(auth).Statement(context.Background(), time.Time{}, time.Time{})
		e.mustOK(err, "statement")
		for _, en := range st.Entries {
			statements[en.Kind] += en.Amount
		}
	}
	claimed, voided := metric(t, reg, "hashwall_agent_claimed_value_total", ""), metric(t, reg, "hashwall_agent_voided_value_total", "")
	if statements["claims"] != (3+2+4)*3 || claimed != float64(statements["claims"]) {
		t.Errorf("claimed value %v, statements credit %d for claims, want %d", claimed, statements["claims"], (3+2+4)*3)
	}
	if statements["void"] != -2*3 || voided != float64(-statements["void"]) {
		t.Errorf("voided value %v, statements take back %d for voids, want %d", voided, -statements["void"], 2*3)
	}
}

// TestStoreGauges: the gauges read from the store at scrape time follow
// fraud cases, revocations and recovery credits, and a stopped store turns
// them into hashwall_agent_ready 0 within the scrape's bound.
func TestStoreGauges(t *testing.T) {
	t.Parallel()
	e, reg := metricsEnv(t)
	check := func(what string, want map[string]float64) {
		t.Helper()
		for name, v := range want {
			if got := metric(t, reg, "hashwall_agent_"+name, ""); got != v {
				t.Errorf("%s: %s = %v, want %v", what, name, got, v)
			}
		}
	}
	check("at start", map[string]float64{"ready": 1, "recoveries_pending": 0, "recoveries_overdue": 0, "fraud_cases": 0, "crl_entries": 0})

	va, vb := e.vendor("planet"), e.vendor("globe")
	alice := e.user("alice", 1000)
	w := e.buy(alice, 256)
	e.expectReport("paid:3 vendor_fraud:0", va, "planet", "b1", w.claim(0, 3, 3, "planet"), w.claim(1, 1, 1, ""))
	e.expectReport("double_spend:4", vb, "globe", "b1", w.claim(0, 4, 4, "globe"))
	check("after a vendor fraud and a double spend", map[string]float64{"fraud_cases": 2, "crl_entries": 1})

	e.buy(alice, 128)
	code, _, _ := e.recoverAs(alice)
	e.must(code, 200, "recover")
	check("after a recovery", map[string]float64{"recoveries_pending": 1, "recoveries_overdue": 0, "crl_entries": 2})
	e.clock.Add(time.Duration(e.a.cfg.ReportWindow) + 2*e.a.RecoverInterval() + time.Second)
	check("with the credit loop not running", map[string]float64{"recoveries_pending": 1, "recoveries_overdue": 1})
	if _, _, err := e.a.CreditRecovered(context.Background()); err != nil {
		t.Fatal(err)
	}
	check("once credited", map[string]float64{"recoveries_pending": 0, "recoveries_overdue": 0})

	e.srv.Stop()
	start := time.Now()
	families, err := reg.Gather()
	if took := time.Since(start); err != nil || took > time.Second {
		t.Fatalf("a scrape with the store stopped: %v, took %v", err, took)
	}
	ready := -1.0
	for _, f := range families {
		switch f.GetName() {
		case "hashwall_agent_ready":
			ready = f.GetMetric()[0].GetGauge().GetValue()
		case "hashwall_agent_crl_entries":
			t.Fatal("store gauges given without a store")
		}
	}
	if ready != 0 {
		t.Fatalf("hashwall_agent_ready %v with the store stopped, want 0", ready)
	}
	t.Logf("a scrape with the store stopped took %v", time.Since(start))
}
