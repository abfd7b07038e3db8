package projections

import (
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// engineMetrics are the projection engine's Prometheus metrics; a nil *engineMetrics records
// nothing.
type engineMetrics struct {
	lag      *prometheus.GaugeVec
	applied  *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

func newEngineMetrics(reg prometheus.Registerer) *engineMetrics {
	if reg == nil {
		return nil
	}
	m := &engineMetrics{
		lag: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "digibiz_projection_lag_events",
			Help: "Events in the log after the projector's checkpoint (approximate: highest global position minus the checkpoint's).",
		}, []string{"projector"}),
		applied: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "digibiz_projection_events_applied_total",
			Help: "Events applied to the projector's live read model.",
		}, []string{"projector"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "digibiz_projection_batch_duration_seconds",
			Help:    "Duration of committed projection batch transactions.",
			Buckets: prometheus.ExponentialBuckets(0.001, 4, 9),
		}, []string{"projector"}),
	}
	m.lag = engineRegister(reg, m.lag)
	m.applied = engineRegister(reg, m.applied)
	m.duration = engineRegister(reg, m.duration)
	return m
}

// engineRegister registers c, or returns the collector already registered under its name, so
// that several runners in one process (server and a rebuild, tests) share the series.
func engineRegister[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing
			}
		}
		panic(err)
	}
	return c
}

func (m *engineMetrics) setLag(name string, lag int64) {
	if m == nil {
		return
	}
	m.lag.WithLabelValues(name).Set(float64(max(lag, 0)))
}

func (m *engineMetrics) batchDone(name string, events int, took time.Duration, lag int64) {
	if m == nil {
		return
	}
	m.applied.WithLabelValues(name).Add(float64(events))
	m.duration.WithLabelValues(name).Observe(took.Seconds())
	m.setLag(name, lag)
}
