// Package lafprom exports a laf Endpoint's Stats to Prometheus.
//
// A Collector reads Endpoint.Stats once per scrape and turns it into
// constant metrics, so it adds nothing to laf's hot paths and keeps no
// state of its own. Register it in one line:
//
//	ep := laf.Handler(fn)
//	prometheus.MustRegister(lafprom.NewCollector(ep))
//	http.Handle("/metrics", promhttp.Handler())
//
// The metrics, all prefixed "laf_" (see WithNamespace):
//
//	laf_sockets_live                     gauge    sockets open now
//	laf_upgrades_accepted_total          counter  WebSocket upgrades accepted
//	laf_upgrades_refused_total           counter  upgrades refused (bad request, origin, auth, a cap or shutdown)
//	laf_upgrades_cap_refused_total       counter  of those, refused by WithMaxSockets or WithMaxSocketsPerKey
//	laf_messages_received_total          counter  messages delivered to the Func
//	laf_received_bytes_total             counter  their payload bytes
//	laf_messages_sent_total              counter  messages written to peers
//	laf_sent_bytes_total                 counter  their payload bytes
//	laf_messages_dropped_total           counter  messages dropped by DropNewest or DropOldest
//	laf_messages_replaced_total          counter  queued laf.Latest messages replaced by a newer one of the same key
//	laf_messages_rate_dropped_total      counter  incoming messages dropped by WithRateLimit's DropOverRate
//	laf_slow_consumers_closed_total      counter  sockets closed by CloseSlow
//	laf_handler_errors_total             counter  errors returned by the Func
//	laf_handler_panics_total             counter  panics recovered from the Func
//	laf_broker_publish_errors_total      counter  sends to other nodes the broker did not take
//	laf_sockets_closed_total{cause}      counter  closed sockets by the cause of their close
//
// The cause label takes laf.CloseCause's names with spaces turned into
// underscores: "peer", "abnormal", "server", "handler_error",
// "read_limit", "protocol", "slow_consumer", "ping_timeout", "idle",
// "lifetime", "shutdown" and "policy". Every cause is exported from the first
// scrape on, at zero until a socket closes for it, so that rate() and
// alerts see each series start.
//
// To export several Endpoints from one registry, give each Collector its
// own constant labels (WithConstLabels), such as endpoint="chat".
package lafprom

import (
	"strings"

	"github.com/lafgo/laf"
	"github.com/prometheus/client_golang/prometheus"
)

// Source is what a Collector reads its numbers from. *laf.Endpoint is a
// Source; so is anything else that returns laf.Stats, such as a wrapper
// that adds up several Endpoints. Stats must be safe to call
// concurrently, as Endpoint.Stats is.
type Source interface {
	Stats() laf.Stats
}

// An Option configures a Collector, in NewCollector.
type Option func(*config)

type config struct {
	namespace   string
	constLabels prometheus.Labels
}

// WithNamespace puts namespace and an underscore before every metric's
// name: WithNamespace("chat") exports chat_laf_sockets_live and so on.
// The default is no namespace, which exports laf_sockets_live.
func WithNamespace(namespace string) Option {
	return func(c *config) { c.namespace = namespace }
}

// WithConstLabels attaches labels, with fixed values, to every metric the
// Collector exports; typically one that tells Endpoints apart, such as
// prometheus.Labels{"endpoint": "chat"}. The map is copied. A label named
// "cause", or a name Prometheus does not allow, makes the Collector's
// registration fail with an error saying so.
func WithConstLabels(labels prometheus.Labels) Option {
	return func(c *config) {
		c.constLabels = make(prometheus.Labels, len(labels))
		for k, v := range labels {
			c.constLabels[k] = v
		}
	}
}

// Collector is a prometheus.Collector over a Source's Stats. Each Collect
// calls Stats once and sends one constant metric per counter, and one
// laf_sockets_closed_total per close cause. Describe sends the same
// descriptors every time, so a Registry checks the Collector's metrics
// against them.
//
// A Collector is immutable once made: Describe and Collect may be called
// concurrently, from any number of goroutines and registries. Stats takes
// no lock, so a scrape never waits for the Endpoint nor slows it down.
// Each counter is read atomically, but the set is not one instant's (see
// laf.Endpoint.Stats): a scrape may, for instance, see a socket as
// accepted before it is counted live.
type Collector struct {
	src      Source
	live     *prometheus.Desc
	counters []counter
	closed   *prometheus.Desc
	causes   []string // label value by laf.CloseCause; [0] unused
}

// counter is one of the plain counters: its descriptor and where in
// Stats its value is.
type counter struct {
	desc  *prometheus.Desc
	value func(*laf.Stats) uint64
}

// NewCollector returns a Collector over src, typically a *laf.Endpoint:
//
//	prometheus.MustRegister(lafprom.NewCollector(ep))
//
// It panics if src is nil.
func NewCollector(src Source, opts ...Option) *Collector {
	if src == nil {
		panic("lafprom: nil Source")
	}
	var cfg config
	for _, o := range opts {
		o(&cfg)
	}
	desc := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc(prometheus.BuildFQName(cfg.namespace, "laf", name), help, labels, cfg.constLabels)
	}
	c := &Collector{
		src:    src,
		live:   desc("sockets_live", "WebSocket connections open now."),
		closed: desc("sockets_closed_total", "WebSocket connections closed, by the cause of their close.", "cause"),
	}
	add := func(name, help string, value func(*laf.Stats) uint64) {
		c.counters = append(c.counters, counter{desc(name, help), value})
	}
	add("upgrades_accepted_total", "WebSocket upgrades accepted.",
		func(s *laf.Stats) uint64 { return s.Accepted })
	add("upgrades_refused_total", "WebSocket upgrades refused: bad request, origin, auth, a cap or shutdown.",
		func(s *laf.Stats) uint64 { return s.Refused })
	add("upgrades_cap_refused_total", "WebSocket upgrades refused by the WithMaxSockets or WithMaxSocketsPerKey cap, also counted as refused.",
		func(s *laf.Stats) uint64 { return s.CapRefused })
	add("messages_received_total", "Messages received from peers and delivered to the handler.",
		func(s *laf.Stats) uint64 { return s.MessagesIn })
	add("received_bytes_total", "Payload bytes of the messages received.",
		func(s *laf.Stats) uint64 { return s.BytesIn })
	add("messages_sent_total", "Messages written to peers.",
		func(s *laf.Stats) uint64 { return s.MessagesOut })
	add("sent_bytes_total", "Payload bytes of the messages sent.",
		func(s *laf.Stats) uint64 { return s.BytesOut })
	add("messages_dropped_total", "Outbound messages dropped by the DropNewest or DropOldest policy.",
		func(s *laf.Stats) uint64 { return s.Dropped })
	add("messages_replaced_total", "Queued laf.Latest messages replaced by a newer one of the same key.",
		func(s *laf.Stats) uint64 { return s.Replaced })
	add("messages_rate_dropped_total", "Incoming messages over the rate limit dropped by the DropOverRate policy.",
		func(s *laf.Stats) uint64 { return s.RateDropped })
	add("slow_consumers_closed_total", "WebSocket connections closed by the CloseSlow policy for not keeping up.",
		func(s *laf.Stats) uint64 { return s.SlowClosed })
	add("handler_errors_total", "Errors returned by the handler.",
		func(s *laf.Stats) uint64 { return s.HandlerErrors })
	add("handler_panics_total", "Panics recovered from the handler.",
		func(s *laf.Stats) uint64 { return s.Panics })
	add("broker_publish_errors_total", "Sends to other nodes that failed: not delivered, or outcome unknown.",
		func(s *laf.Stats) uint64 { return s.PublishErrors })
	add("broker_publish_unknown_total", "Of the failed sends to other nodes, those whose outcome is unknown: they may have been delivered.",
		func(s *laf.Stats) uint64 { return s.PublishUnknown })
	add("messages_dropped_no_socket_total", "Messages from other nodes that found no socket here: it had closed, or the room's last member had left.",
		func(s *laf.Stats) uint64 { return s.DroppedNoSocket })

	var closes laf.CloseCounts
	c.causes = make([]string, len(closes))
	for cause := laf.CausePeer; int(cause) < len(closes); cause++ {
		c.causes[cause] = strings.ReplaceAll(cause.String(), " ", "_")
	}
	return c
}

// Describe sends the descriptors of every metric Collect sends. It is
// part of prometheus.Collector and is safe for concurrent use.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.live
	for _, k := range c.counters {
		ch <- k.desc
	}
	ch <- c.closed
}

// Collect calls Stats once and sends its values as constant metrics. It
// is part of prometheus.Collector and is safe for concurrent use.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	st := c.src.Stats()
	ch <- prometheus.MustNewConstMetric(c.live, prometheus.GaugeValue, float64(st.Live))
	for _, k := range c.counters {
		ch <- prometheus.MustNewConstMetric(k.desc, prometheus.CounterValue, float64(k.value(&st)))
	}
	for cause := laf.CausePeer; int(cause) < len(st.Closes); cause++ {
		ch <- prometheus.MustNewConstMetric(c.closed, prometheus.CounterValue, float64(st.Closes[cause]), c.causes[cause])
	}
}

var _ prometheus.Collector = (*Collector)(nil)
