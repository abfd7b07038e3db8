package messaging

import "github.com/prometheus/client_golang/prometheus"

// The live feed's metrics are process-wide (one feed and one forwarder per process); Collectors
// hands them to whoever owns the registry.
var (
	forwardedTotal = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "digibiz_live_feed_ranges_published_total",
		Help: "Ranges of the log this process announced on the live feed topic.",
	})
	subscribersGauge = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "digibiz_live_feed_subscribers",
		Help: "Subscribers currently attached to this process's live feed.",
	})
	droppedTotal = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "digibiz_live_feed_dropped_subscribers_total",
		Help: "Live feed subscribers dropped because they fell more than their buffer behind.",
	})
)

// Collectors returns the package's metrics, for registering with the server's registry.
func Collectors() []prometheus.Collector {
	return []prometheus.Collector{forwardedTotal, subscribersGauge, droppedTotal}
}
