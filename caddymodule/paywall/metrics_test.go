package paywall

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/hashwall/hashwall/internal/testutil/paytest"
	"github.com/hashwall/hashwall/payword"
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

// gauge is the value of v's series for the test vendor.
func gauge(v *prometheus.GaugeVec) float64 {
	var m dto.Metric
	_ = v.WithLabelValues(testVendor).Write(&m)
	return m.GetGauge().GetValue()
}

// TestReadyGauge: the readiness gauge is 1 while the gateway can accept
// payments, 0 while its revocation list is older than crl_max_age (the
// agent away) or its Redis is stopped, and 1 again once they are back.
func TestReadyGauge(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	h := e.handler(func(h *Handler) { h.CRLMaxAge = caddy.Duration(time.Second) })
	ready := func() float64 { return gauge(h.metrics.ready) }
	within := backlogEvery + 2*time.Second
	waitFor(t, "ready", within, func() bool { return ready() == 1 })

	e.agent.setDown(true)
	waitFor(t, "not ready with a stale revocation list", within+time.Second, func() bool { return ready() == 0 })
	if age, limit := gauge(h.metrics.crlAge), gauge(h.metrics.crlLimit); age <= 1 || limit != 1 {
		t.Fatalf("not ready at a revocation list %v s old, limit %v s", age, limit)
	}
	e.agent.setDown(false)
	waitFor(t, "ready once the list is synced again", within, func() bool { return ready() == 1 })

	e.redis.Stop()
	waitFor(t, "not ready with Redis stopped", within, func() bool { return ready() == 0 })
	e.redis.Restart()
	waitFor(t, "ready once Redis is back", within+time.Second, func() bool { return ready() == 1 })
}

// TestReadyNeedsKeys: without configured keys and with the agent away at
// start, no key is known and the gateway is not ready.
func TestReadyNeedsKeys(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.agent.setDown(true)
	h := e.handler(func(h *Handler) { h.Keys = nil })
	time.Sleep(backlogEvery + 500*time.Millisecond)
	if h.be.keys.current() != nil || gauge(h.metrics.ready) != 0 {
		t.Fatalf("keys %v, ready %v", h.be.keys.current(), gauge(h.metrics.ready))
	}
	e.agent.setDown(false)
	waitFor(t, "ready once the keys are learnt", 5*time.Second, func() bool { return gauge(h.metrics.ready) == 1 })
}

// TestPaidByRule: accepted payments and their tokens count under the rule
// that priced the page, as configured ("upstream" for upstream-priced
// pages); a retried payment counts only as retried.
func TestPaidByRule(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	h := e.handler(func(h *Handler) {
		h.UpstreamPrice = true
		h.Rules = append(h.Rules, Rule{Pattern: "/Sport/*", Price: 4})
	})
	wal := paytest.NewBank(t).Issue(t, paytest.Options{Seed: 71})
	cms := caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		if strings.HasPrefix(r.URL.Path, "/news/") {
			w.Header().Set(priceHeader, "3")
		}
		_, _ = io.WriteString(w, "content")
		return nil
	})
	pay := func(path string, index, amount uint32, product string) string {
		t.Helper()
		hdr := wal.Header(t, 0, index, amount, testVendor, product)
		if w, es := do(h, get(path, "Authorization", hdr), cms); status(w, es) != 200 {
			t.Fatalf("pay %s: %d %q", path, status(w, es), w.Header().Get(payword.ErrorHeader))
		}
		return hdr
	}
	a := pay("/articles/a", 2, 2, "/articles/a")
	pay("/articles/b", 4, 2, "/articles/b")
	pay("/issues/2026/jan", 24, 20, "/issues/2026/")
	pay("/sport/final", 28, 4, "/sport/final")
	pay("/news/story", 31, 3, "/news/story")
	// The same payment again: the agent has it once, so do the counters.
	if w, es := do(h, get("/articles/a", "Authorization", a), cms); status(w, es) != 200 {
		t.Fatalf("retry: %d", status(w, es))
	}
	for _, c := range []struct {
		rule             string
		payments, tokens float64
	}{
		{"/articles/*", 2, 4},
		{"/issues/*/*", 1, 20},
		{"/Sport/*", 1, 4},
		{ruleUpstream, 1, 3},
		{"/live/*", 0, 0},
	} {
		p, n := testutilCount(h.metrics.rulePayments.WithLabelValues(c.rule)), testutilCount(h.metrics.ruleTokens.WithLabelValues(c.rule))
		if p != c.payments || n != c.tokens {
			t.Errorf("rule %s: %v payments, %v tokens; want %v, %v", c.rule, p, n, c.payments, c.tokens)
		}
	}
	if got := testutilCount(h.metrics.accepted); got != 5 {
		t.Errorf("accepted %v, want 5", got)
	}
	if got := testutilCount(h.metrics.retried); got != 1 {
		t.Errorf("retried %v, want 1", got)
	}
}
