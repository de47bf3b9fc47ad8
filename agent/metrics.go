package agent

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/hashwall/hashwall/internal/promreg"
)

type metrics struct {
	issued, tokens, disputes, recoveries prometheus.Counter
	claims, revocations                  *prometheus.CounterVec
	latency                              *prometheus.HistogramVec
}

// newMetrics registers the agent's metrics on reg (nil: unregistered). Labels
// are bounded: verdicts, revocation reasons and route patterns.
func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	const ns = "hashwall_agent"
	m := &metrics{
		issued:     prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Name: "certificates_issued_total", Help: "Certificates sold."}),
		tokens:     prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Name: "tokens_issued_total", Help: "Tokens in certificates sold."}),
		disputes:   prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Name: "disputes_total", Help: "Claims or bindings found fraudulent, invalid or double-spent."}),
		recoveries: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Name: "recoveries_total", Help: "Lost-certificate recoveries."}),
		claims: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "claims_total", Help: "Reported claims by verdict."},
			[]string{"verdict"}),
		revocations: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "revocations_total", Help: "Certificates revoked, by reason (double-spend, recovered, admin)."},
			[]string{"reason"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: ns, Name: "request_duration_seconds",
			Help: "API latency by route.", Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14)}, []string{"route"}),
	}
	if reg == nil {
		return m, nil
	}
	var errs [7]error
	m.issued, errs[0] = promreg.Register(reg, m.issued)
	m.tokens, errs[1] = promreg.Register(reg, m.tokens)
	m.disputes, errs[2] = promreg.Register(reg, m.disputes)
	m.recoveries, errs[3] = promreg.Register(reg, m.recoveries)
	m.claims, errs[4] = promreg.Register(reg, m.claims)
	m.revocations, errs[5] = promreg.Register(reg, m.revocations)
	m.latency, errs[6] = promreg.Register(reg, m.latency)
	return m, errors.Join(errs[:]...)
}
