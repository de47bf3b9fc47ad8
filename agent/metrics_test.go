package agent

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// metric returns the value of the series of family name with label value
// lv ("" for an unlabelled metric), summed for histograms' sample counts.
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
			case m.Histogram != nil:
				sum += float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	return sum
}

func TestMetrics(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	reg := prometheus.NewRegistry()
	e.cfg.Metrics = reg
	e.restartAgent()
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
