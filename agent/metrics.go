package agent

import (
	"context"
	"errors"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/hashwall/hashwall/agentapi"
	"github.com/hashwall/hashwall/internal/promreg"
)

type metrics struct {
	issued, tokens, disputes, recoveries, claimed, voided prometheus.Counter
	claims, revocations                                   *prometheus.CounterVec
	latency                                               *prometheus.HistogramVec
}

const metricsNS = "hashwall_agent"

// newMetrics registers the agent's metrics on reg (nil: unregistered), and
// the store gauges of a. Labels are bounded: verdicts, revocation reasons
// and route patterns.
func newMetrics(reg prometheus.Registerer, a *Agent) (*metrics, error) {
	const ns = metricsNS
	m := &metrics{
		issued:     prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Name: "certificates_issued_total", Help: "Certificates sold."}),
		tokens:     prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Name: "tokens_issued_total", Help: "Tokens in certificates sold."}),
		disputes:   prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Name: "disputes_total", Help: "Claims or bindings found fraudulent, invalid or double-spent."}),
		recoveries: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Name: "recoveries_total", Help: "Lost-certificate recoveries."}),
		claimed: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Name: "claimed_value_total",
			Help: "Value credited to vendors for their claims (paid and double-spent), in minor currency units."}),
		voided: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Name: "voided_value_total",
			Help: "Value taken back from vendors by voids (answers not charged) and credited to readers, in minor currency units."}),
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
	var errs [10]error
	m.issued, errs[0] = promreg.Register(reg, m.issued)
	m.tokens, errs[1] = promreg.Register(reg, m.tokens)
	m.disputes, errs[2] = promreg.Register(reg, m.disputes)
	m.recoveries, errs[3] = promreg.Register(reg, m.recoveries)
	m.claims, errs[4] = promreg.Register(reg, m.claims)
	m.revocations, errs[5] = promreg.Register(reg, m.revocations)
	m.latency, errs[6] = promreg.Register(reg, m.latency)
	m.claimed, errs[7] = promreg.Register(reg, m.claimed)
	var g *storeGauges
	m.voided, errs[8] = promreg.Register(reg, m.voided)
	g, errs[9] = promreg.Register(reg, newStoreGauges())
	g.agent.Store(a) // an agent provisioned again on the registry (a reload) takes over
	return m, errors.Join(errs[:]...)
}

// storeGaugeTimeout bounds the store gauges' round trip: a scrape never
// waits longer on a slow store.
const storeGaugeTimeout = 800 * time.Millisecond

// storeGauges reads, at scrape time, the state an operator alerts on from
// the agent's store: whether it answers as GET /readyz wants, the
// recovery credits waiting and overdue, the fraud cases recorded and the
// revocation list's size. One pipelined round trip per scrape; only
// hashwall_agent_ready (0) is given when the store does not answer in time.
type storeGauges struct {
	agent                                 atomic.Pointer[Agent]
	ready, pending, overdue, fraud, crlen *prometheus.Desc
}

func newStoreGauges() *storeGauges {
	desc := func(name, help string) *prometheus.Desc {
		return prometheus.NewDesc(metricsNS+"_"+name, help, nil, nil)
	}
	return &storeGauges{
		ready: desc("ready", "1 when the store answers within 0.8 s and holds the revocation list's sequence (as GET /readyz), else 0."),
		pending: desc("recoveries_pending",
			"Users with recovered certificate value not credited yet (it is credited once the report window has passed)."),
		overdue: desc("recoveries_overdue",
			"Users whose recovery credit is due since more than twice the credit loop's interval: the loop is not crediting."),
		fraud: desc("fraud_cases", "Fraud cases recorded (GET /v1/admin/fraud; the latest 100000 are kept)."),
		crlen: desc("crl_entries", "Entries in the revocation list."),
	}
}

func (g *storeGauges) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{g.ready, g.pending, g.overdue, g.fraud, g.crlen} {
		ch <- d
	}
}

func (g *storeGauges) Collect(ch chan<- prometheus.Metric) {
	a := g.agent.Load()
	ctx, cancel := context.WithTimeout(context.Background(), storeGaugeTimeout)
	defer cancel()
	overdueBy := strconv.FormatInt(a.now().Add(-2*a.RecoverInterval()).Unix(), 10)
	var counts [4]*redis.IntCmd
	cmds, _ := a.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.Get(ctx, a.prefix+"crlseq") // redis.Nil before the first revocation
		counts[0] = p.ZCard(ctx, a.prefix+"rpend")
		counts[1] = p.ZCount(ctx, a.prefix+"rpend", "-inf", overdueBy)
		counts[2] = p.LLen(ctx, a.prefix+"fraud")
		counts[3] = p.ZCard(ctx, agentapi.CRLKey)
		return nil
	})
	for _, c := range cmds {
		if err := c.Err(); err != nil && err != redis.Nil {
			ch <- prometheus.MustNewConstMetric(g.ready, prometheus.GaugeValue, 0)
			return
		}
	}
	ch <- prometheus.MustNewConstMetric(g.ready, prometheus.GaugeValue, 1)
	for i, d := range []*prometheus.Desc{g.pending, g.overdue, g.fraud, g.crlen} {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, float64(counts[i].Val()))
	}
}
