package paywall

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// Handlers of one config share collectors; a backend counts on its newest
// handler's, and falls back to the older config's when a reload fails.
func TestMetricsRegistration(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	a, err := newMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	b, err := newMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	b.accepted.Inc()
	if testutilCount(a.accepted) != 1 || a.payments != b.payments || a.delivery != b.delivery {
		t.Fatal("handlers of one config do not share their collectors")
	}
	if mfs, err := reg.Gather(); err != nil || len(mfs) == 0 {
		t.Fatalf("gather: %d families, %v", len(mfs), err)
	}

	reloaded, err := newMetrics(prometheus.NewPedanticRegistry())
	if err != nil {
		t.Fatal(err)
	}
	var u metricsUsers
	u.add(a)
	u.add(reloaded)
	if u.get() != reloaded {
		t.Fatal("the backend does not count on the reloaded config's metrics")
	}
	u.remove(reloaded) // the reload failed
	if u.get() != a {
		t.Fatal("the backend does not fall back to the running config's metrics")
	}
	u.remove(a) // the last user: the workers stop after, and still count somewhere
	if u.get() != a {
		t.Fatal("the backend lost its metrics before its workers stopped")
	}
}
