package paywall

import (
	"context"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/hashwall/hashwall/internal/promreg"
)

// metrics are the gateway's collectors. Each handler registers them on its
// config's registry in Provision; handlers of one config share them. Every
// label has a fixed set of values (the vendor id comes from the config).
type metrics struct {
	challenges prometheus.Counter
	payments   *prometheus.CounterVec // by verdict: accepted, retried, or the refusal's code
	grants     *prometheus.CounterVec // by source: cookie or bearer
	paySeconds prometheus.Histogram
	reports    *prometheus.CounterVec // by the agent's verdict
	backlog    *prometheus.GaugeVec
	crlAge     *prometheus.GaugeVec
	// delivery runs from a claim's acceptance (its stream entry's id, which
	// is the vendor Redis's clock in milliseconds) to the agent's 200
	// holding a checked result for it.
	delivery *prometheus.HistogramVec
	ready    *prometheus.GaugeVec
	crlLimit *prometheus.GaugeVec // the crl_max_age the readiness gauge applies
	// Accepted payments and their tokens by the rule that priced them
	// (its pattern as configured, or ruleUpstream): at most maxRules+1
	// values per config.
	rulePayments, ruleTokens *prometheus.CounterVec

	accepted, retried, fromCookie, fromBearer prometheus.Counter

	// crlMaxAge is the handler's crl_max_age, for the readiness gauge.
	crlMaxAge time.Duration
}

// newMetrics registers the gateway's metrics on reg (nil: unregistered).
func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	opts := func(name, help string) prometheus.Opts {
		return prometheus.Opts{Namespace: "hashwall", Subsystem: "gateway", Name: name, Help: help}
	}
	m := &metrics{
		challenges: prometheus.NewCounter(prometheus.CounterOpts(opts("challenges_total", "402 challenges sent."))),
		payments:   prometheus.NewCounterVec(prometheus.CounterOpts(opts("payments_total", "Payments by verdict (accepted, retried, or the rejection code).")), []string{"verdict"}),
		grants:     prometheus.NewCounterVec(prometheus.CounterOpts(opts("grants_total", "Requests let through on a valid grant, by where the grant came from.")), []string{"source"}),
		paySeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "hashwall", Subsystem: "gateway", Name: "payment_seconds",
			Help:    "Time to verify and record an accepted payment.",
			Buckets: []float64{.0002, .0005, .001, .002, .005, .01, .025, .05, .1, .5},
		}),
		reports: prometheus.NewCounterVec(prometheus.CounterOpts(opts("reported_claims_total", "Claims reported to the agent, by the agent's verdict.")), []string{"verdict"}),
		backlog: prometheus.NewGaugeVec(prometheus.GaugeOpts(opts("report_backlog", "Accepted claims not yet acknowledged by the agent.")), []string{"vendor"}),
		crlAge: prometheus.NewGaugeVec(prometheus.GaugeOpts(opts("crl_age_seconds",
			"Time since the revocation list was last known complete (+Inf before the first sync); payments are refused past crl_max_age.")), []string{"vendor"}),
		delivery: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "hashwall", Subsystem: "gateway", Name: "claim_delivery_seconds",
			Help:    "Time from a payment's acceptance to the agent's checked answer for its claim, by report mode.",
			Buckets: []float64{.05, .1, .2, .3, .5, .75, 1, 1.5, 2, 5, 10, 30, 60, 300, 900, 3600},
		}, []string{"vendor", "mode"}),
		ready: prometheus.NewGaugeVec(prometheus.GaugeOpts(opts("ready",
			"1 when the gateway can accept payments: the vendor's Redis answers, the agent's keys are known and the revocation list is within crl_max_age.")), []string{"vendor"}),
		crlLimit: prometheus.NewGaugeVec(prometheus.GaugeOpts(opts("crl_max_age_seconds",
			"The crl_max_age that hashwall_gateway_ready applies (the strictest of the vendor's handlers in this process).")), []string{"vendor"}),
		rulePayments: prometheus.NewCounterVec(prometheus.CounterOpts(opts("paid_payments_total",
			"Payments accepted (retries of an accepted payment not counted), by the rule that priced the page (\"upstream\": upstream_price).")), []string{"rule"}),
		ruleTokens: prometheus.NewCounterVec(prometheus.CounterOpts(opts("paid_tokens_total",
			"Tokens of the payments in paid_payments_total, by rule.")), []string{"rule"}),
		crlMaxAge: defaultCRLMaxAge,
	}
	var errs [12]error
	if reg != nil {
		m.challenges, errs[0] = promreg.Register(reg, m.challenges)
		m.payments, errs[1] = promreg.Register(reg, m.payments)
		m.grants, errs[2] = promreg.Register(reg, m.grants)
		m.paySeconds, errs[3] = promreg.Register(reg, m.paySeconds)
		m.reports, errs[4] = promreg.Register(reg, m.reports)
		m.backlog, errs[5] = promreg.Register(reg, m.backlog)
		m.delivery, errs[6] = promreg.Register(reg, m.delivery)
		m.crlAge, errs[7] = promreg.Register(reg, m.crlAge)
		m.ready, errs[8] = promreg.Register(reg, m.ready)
		m.rulePayments, errs[9] = promreg.Register(reg, m.rulePayments)
		m.ruleTokens, errs[10] = promreg.Register(reg, m.ruleTokens)
		m.crlLimit, errs[11] = promreg.Register(reg, m.crlLimit)
	}
	m.accepted, m.retried = m.payments.WithLabelValues("accepted"), m.payments.WithLabelValues("retried")
	m.fromCookie, m.fromBearer = m.grants.WithLabelValues("cookie"), m.grants.WithLabelValues("bearer")
	return m, errors.Join(errs[:]...)
}

// paid counts an accepted payment of tokens for the offer of rule. A retry
// (the same payment, accepted before) counts only as retried: its tokens
// were counted the first time.
func (m *metrics) paid(rule string, tokens uint32, retried bool) {
	if retried {
		m.retried.Inc()
		return
	}
	m.accepted.Inc()
	m.rulePayments.WithLabelValues(rule).Inc()
	m.ruleTokens.WithLabelValues(rule).Add(float64(tokens))
}

// readyTimeout bounds the readiness gauge's Redis check.
const readyTimeout = 500 * time.Millisecond

// updateReady sets the readiness gauge from the revocation list's age
// (seconds, +Inf before the first sync): ready when the list is within the
// strictest crl_max_age of the handlers using the backend, the agent's
// keys are known, and the vendor's Redis answers and passed the
// durability check (checked again here, once it answers, so that a store
// unreachable at start does not wait for a payment to be found usable).
func (b *backend) updateReady(ctx context.Context, crlAge float64) {
	m, limit := b.metrics.get(), b.metrics.crlMaxAge().Seconds()
	m.crlLimit.WithLabelValues(b.cfg.Vendor).Set(limit)
	ready := 0.0
	if crlAge <= limit && b.keys.current() != nil {
		ctx, cancel := context.WithTimeout(ctx, readyTimeout)
		if b.rdb.Ping(ctx).Err() == nil && b.storeReady(ctx) == nil {
			ready = 1
		}
		cancel()
	}
	m.ready.WithLabelValues(b.cfg.Vendor).Set(ready)
}

// metricsUsers are the metrics of the handlers that use one backend. The
// backend outlives a config: its workers count on the newest handler's
// metrics, so that after a reload they show on the new config's registry,
// and after a failed one on the config still running.
type metricsUsers struct {
	mu    sync.Mutex
	users []*metrics
	cur   atomic.Pointer[metrics]
}

func (u *metricsUsers) add(m *metrics) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.users = append(u.users, m)
	u.cur.Store(m)
}

// remove drops m; the backend keeps the last metrics when its last user
// goes, since its workers stop only after.
func (u *metricsUsers) remove(m *metrics) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if i := slices.Index(u.users, m); i >= 0 {
		u.users = slices.Delete(u.users, i, i+1)
	}
	if n := len(u.users); n > 0 {
		u.cur.Store(u.users[n-1])
	}
}

func (u *metricsUsers) get() *metrics { return u.cur.Load() }

// crlMaxAge is the smallest crl_max_age of the handlers using the backend.
func (u *metricsUsers) crlMaxAge() time.Duration {
	u.mu.Lock()
	defer u.mu.Unlock()
	d := u.cur.Load().crlMaxAge
	for _, m := range u.users {
		d = min(d, m.crlMaxAge)
	}
	return d
}
