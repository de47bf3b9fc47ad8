package agent

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
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
	var err error
	reuse(reg, &m.issued, &err)
	reuse(reg, &m.tokens, &err)
	reuse(reg, &m.disputes, &err)
	reuse(reg, &m.recoveries, &err)
	reuse(reg, &m.claims, &err)
	reuse(reg, &m.revocations, &err)
	reuse(reg, &m.latency, &err)
	return m, err
}

// reuse registers *c, or, when a Caddy config reload provisions the module
// again on the same registry, switches *c to the collector already there.
func reuse[T prometheus.Collector](reg prometheus.Registerer, c *T, errp *error) {
	err := reg.Register(*c)
	var are prometheus.AlreadyRegisteredError
	if errors.As(err, &are) {
		if existing, ok := are.ExistingCollector.(T); ok {
			*c, err = existing, nil
		}
	}
	if err != nil && *errp == nil {
		*errp = err
	}
}
