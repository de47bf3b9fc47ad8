// Package promreg registers Prometheus collectors the way Caddy modules
// need: a config reload provisions a module again on the same registry,
// where its collectors already are.
package promreg

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// Register registers c on reg, or returns the collector of the same kind
// already registered under c's name (by an earlier provisioning).
func Register[T prometheus.Collector](reg prometheus.Registerer, c T) (T, error) {
	err := reg.Register(c)
	if are, ok := errors.AsType[prometheus.AlreadyRegisteredError](err); ok {
		if existing, same := are.ExistingCollector.(T); same {
			return existing, nil
		}
	}
	return c, err
}
