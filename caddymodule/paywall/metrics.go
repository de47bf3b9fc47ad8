package paywall

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics live at package level: the shared backend outlives any one config,
// and each config's registry registers the same collectors. Every label has
// a fixed set of values (the vendor id comes from the config).
var (
	challengesTotal = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: "hashwall", Subsystem: "gateway", Name: "challenges_total",
		Help: "402 challenges sent.",
	})
	paymentsTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "hashwall", Subsystem: "gateway", Name: "payments_total",
		Help: "Payments by verdict (accepted, retried, or the rejection code).",
	}, []string{"verdict"})
	grantsTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "hashwall", Subsystem: "gateway", Name: "grants_total",
		Help: "Requests let through on a valid grant, by where the grant came from.",
	}, []string{"source"})
	paymentsAccepted = paymentsTotal.WithLabelValues("accepted")
	paymentsRetried  = paymentsTotal.WithLabelValues("retried")
	grantsFromCookie = grantsTotal.WithLabelValues("cookie")
	grantsFromBearer = grantsTotal.WithLabelValues("bearer")
	paymentSeconds   = prometheus.NewHistogram(prometheus.HistogramOpts{
		Namespace: "hashwall", Subsystem: "gateway", Name: "payment_seconds",
		Help:    "Time to verify and record an accepted payment.",
		Buckets: []float64{.0002, .0005, .001, .002, .005, .01, .025, .05, .1, .5},
	})
	reportsTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "hashwall", Subsystem: "gateway", Name: "reported_claims_total",
		Help: "Claims reported to the agent, by the agent's verdict.",
	}, []string{"verdict"})
	reportBacklog = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: "hashwall", Subsystem: "gateway", Name: "report_backlog",
		Help: "Accepted claims not yet acknowledged by the agent.",
	}, []string{"vendor"})
	// deliverySeconds runs from a claim's acceptance (its stream entry's id,
	// which is the vendor Redis's clock in milliseconds) to the agent's 200
	// holding a checked result for it.
	deliverySeconds = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: "hashwall", Subsystem: "gateway", Name: "claim_delivery_seconds",
		Help:    "Time from a payment's acceptance to the agent's checked answer for its claim, by report mode.",
		Buckets: []float64{.05, .1, .2, .3, .5, .75, 1, 1.5, 2, 5, 10, 30, 60, 300, 900, 3600},
	}, []string{"vendor", "mode"})
)

func registerMetrics(reg *prometheus.Registry) {
	if reg == nil {
		return
	}
	for _, c := range []prometheus.Collector{
		challengesTotal, paymentsTotal, grantsTotal, paymentSeconds, reportsTotal, reportBacklog, deliverySeconds,
	} {
		if err := reg.Register(c); err != nil && !errors.As(err, &prometheus.AlreadyRegisteredError{}) {
			panic(err)
		}
	}
}
