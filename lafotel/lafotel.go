// Package lafotel exports a laf Endpoint's Stats as OpenTelemetry
// metrics.
//
// Register creates laf's instruments on a Meter from a MeterProvider, all
// of them observable, and registers one callback that reads
// Endpoint.Stats once per collection. It adds nothing to laf's hot paths
// and keeps no state of its own:
//
//	reg, err := lafotel.Register(ep, provider)
//	if err != nil {
//		return err
//	}
//	defer reg.Unregister()
//
// The instruments, on the Meter named ScopeName:
//
//	name                        kind                 unit        what
//	laf.sockets.live            UpDownCounter        {socket}    sockets open now
//	laf.sockets.closed          Counter              {socket}    sockets closed, by cause
//	laf.upgrades.accepted       Counter              {upgrade}   WebSocket upgrades accepted
//	laf.upgrades.refused        Counter              {upgrade}   upgrades refused (bad request, origin, auth, a cap or shutdown)
//	laf.upgrades.cap_refused    Counter              {upgrade}   of those, refused by WithMaxSockets or WithMaxSocketsPerKey
//	laf.messages.received       Counter              {message}   messages delivered to the Func
//	laf.messages.sent           Counter              {message}   messages written to peers
//	laf.messages.dropped        Counter              {message}   messages dropped by DropNewest or DropOldest
//	laf.messages.replaced       Counter              {message}   queued laf.Latest messages replaced by a newer one of the same key
//	laf.messages.rate_dropped   Counter              {message}   incoming messages dropped by WithRateLimit's DropOverRate
//	laf.payload.received        Counter              By          payload bytes of the messages received
//	laf.payload.sent            Counter              By          payload bytes of the messages sent
//	laf.slow_consumers.closed   Counter              {socket}    sockets closed by CloseSlow
//	laf.handler.errors          Counter              {error}     errors returned by the Func
//	laf.handler.panics          Counter              {panic}     panics recovered from the Func
//	laf.broker.publish.errors   Counter              {error}     sends to other nodes the broker did not take
//
// All are asynchronous (observable) instruments with cumulative values.
// laf.sockets.closed carries a "cause" attribute, laf.CloseCause's name
// with spaces turned into underscores: "peer", "abnormal", "server",
// "handler_error", "read_limit", "protocol", "slow_consumer",
// "ping_timeout", "idle", "lifetime", "shutdown" or "policy". Every
// cause is observed on every collection, at zero until a socket closes
// for it.
//
// No semantic convention covers WebSocket servers, so the names follow
// OpenTelemetry's naming rules (dot-separated namespaces, no unit in the
// name, curly-brace annotations for counted things, UCUM "By" for bytes)
// rather than a convention. As no metric name may also be a namespace,
// the byte counts are laf.payload.*, not laf.messages.*.bytes. Exported
// to Prometheus by OpenTelemetry's exporter, they become
// laf_sockets_live, laf_messages_received_total,
// laf_payload_received_bytes_total and so on.
//
// To tell several Endpoints apart, give each Register its own attributes
// (WithAttributes), such as endpoint="chat".
package lafotel

import (
	"context"
	"strings"

	"github.com/lafgo/laf"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// ScopeName is the name of the Meter, the instrumentation scope, that
// Register creates the instruments on: a View or a reader's filter can
// select laf's metrics by it.
const ScopeName = "github.com/lafgo/laf/lafotel"

// CauseKey is the attribute key of laf.sockets.closed that holds the
// close cause.
const CauseKey = attribute.Key("cause")

// Source is what Register reads its numbers from. *laf.Endpoint is a
// Source; so is anything else that returns laf.Stats, such as a wrapper
// that adds up several Endpoints. Stats must be safe to call
// concurrently, as Endpoint.Stats is.
type Source interface {
	Stats() laf.Stats
}

// An Option configures Register.
type Option func(*config)

type config struct {
	attrs []attribute.KeyValue
}

// WithAttributes adds attrs to every observation: typically one that
// tells Endpoints apart, such as attribute.String("endpoint", "chat").
// An attribute keyed CauseKey is replaced by the cause on
// laf.sockets.closed. Later options add to earlier ones; the slice is
// copied.
func WithAttributes(attrs ...attribute.KeyValue) Option {
	return func(c *config) { c.attrs = append(c.attrs, attrs...) }
}

// counter is one of the plain counters: its instrument and where in Stats
// its value is.
type counter struct {
	inst  metric.Int64ObservableCounter
	value func(*laf.Stats) uint64
}

// Register creates laf's instruments (see the package documentation) on
// the Meter named ScopeName from provider, and registers one callback
// that calls src.Stats once per collection and observes every instrument
// from that one snapshot. provider nil means the global MeterProvider,
// otel.GetMeterProvider(). src is typically a *laf.Endpoint; Register
// panics if it is nil.
//
// The callback takes no lock and allocates nothing of its own: it may run
// concurrently, for several readers, and never waits for the Endpoint nor
// slows it down. Each counter is read atomically, but the set is not one
// instant's (see laf.Endpoint.Stats).
//
// Unregister the returned Registration to stop observing: the Endpoint is
// then no longer read, and the instruments report nothing more. Register
// returns an error, and registers nothing, if the Meter refuses an
// instrument or the callback.
func Register(src Source, provider metric.MeterProvider, opts ...Option) (metric.Registration, error) {
	if src == nil {
		panic("lafotel: nil Source")
	}
	var cfg config
	for _, o := range opts {
		o(&cfg)
	}
	if provider == nil {
		provider = otel.GetMeterProvider()
	}
	meter := provider.Meter(ScopeName)

	live, err := meter.Int64ObservableUpDownCounter("laf.sockets.live",
		metric.WithUnit("{socket}"), metric.WithDescription("WebSocket connections open now."))
	if err != nil {
		return nil, err
	}
	closed, err := meter.Int64ObservableCounter("laf.sockets.closed",
		metric.WithUnit("{socket}"), metric.WithDescription("WebSocket connections closed, by the cause of their close."))
	if err != nil {
		return nil, err
	}
	instruments := []metric.Observable{live, closed}
	var counters []counter
	add := func(name, unit, desc string, value func(*laf.Stats) uint64) {
		if err != nil {
			return
		}
		var inst metric.Int64ObservableCounter
		inst, err = meter.Int64ObservableCounter(name, metric.WithUnit(unit), metric.WithDescription(desc))
		counters = append(counters, counter{inst, value})
		instruments = append(instruments, inst)
	}
	add("laf.upgrades.accepted", "{upgrade}", "WebSocket upgrades accepted.",
		func(s *laf.Stats) uint64 { return s.Accepted })
	add("laf.upgrades.refused", "{upgrade}", "WebSocket upgrades refused: bad request, origin, auth, a cap or shutdown.",
		func(s *laf.Stats) uint64 { return s.Refused })
	add("laf.upgrades.cap_refused", "{upgrade}", "WebSocket upgrades refused by the WithMaxSockets or WithMaxSocketsPerKey cap, also counted as refused.",
		func(s *laf.Stats) uint64 { return s.CapRefused })
	add("laf.messages.received", "{message}", "Messages received from peers and delivered to the handler.",
		func(s *laf.Stats) uint64 { return s.MessagesIn })
	add("laf.messages.sent", "{message}", "Messages written to peers.",
		func(s *laf.Stats) uint64 { return s.MessagesOut })
	add("laf.messages.dropped", "{message}", "Outbound messages dropped by the DropNewest or DropOldest policy.",
		func(s *laf.Stats) uint64 { return s.Dropped })
	add("laf.messages.replaced", "{message}", "Queued laf.Latest messages replaced by a newer one of the same key.",
		func(s *laf.Stats) uint64 { return s.Replaced })
	add("laf.messages.rate_dropped", "{message}", "Incoming messages over the rate limit dropped by the DropOverRate policy.",
		func(s *laf.Stats) uint64 { return s.RateDropped })
	add("laf.payload.received", "By", "Payload bytes of the messages received.",
		func(s *laf.Stats) uint64 { return s.BytesIn })
	add("laf.payload.sent", "By", "Payload bytes of the messages sent.",
		func(s *laf.Stats) uint64 { return s.BytesOut })
	add("laf.slow_consumers.closed", "{socket}", "WebSocket connections closed by the CloseSlow policy for not keeping up.",
		func(s *laf.Stats) uint64 { return s.SlowClosed })
	add("laf.handler.errors", "{error}", "Errors returned by the handler.",
		func(s *laf.Stats) uint64 { return s.HandlerErrors })
	add("laf.handler.panics", "{panic}", "Panics recovered from the handler.",
		func(s *laf.Stats) uint64 { return s.Panics })
	add("laf.broker.publish.errors", "{error}", "Sends to other nodes that failed: not delivered, or outcome unknown.",
		func(s *laf.Stats) uint64 { return s.PublishErrors })
	add("laf.broker.publish.unknown", "{error}", "Of the failed sends to other nodes, those whose outcome is unknown: they may have been delivered.",
		func(s *laf.Stats) uint64 { return s.PublishUnknown })
	add("laf.messages.dropped_no_socket", "{message}", "Messages from other nodes that found no socket here: it had closed, or the room's last member had left.",
		func(s *laf.Stats) uint64 { return s.DroppedNoSocket })
	if err != nil {
		return nil, err
	}

	// The attribute sets are made once, here, not per collection.
	base := metric.WithAttributeSet(attribute.NewSet(cfg.attrs...))
	var closes laf.CloseCounts
	byCause := make([]metric.ObserveOption, len(closes))
	for cause := laf.CausePeer; int(cause) < len(closes); cause++ {
		kv := append(cfg.attrs[:len(cfg.attrs):len(cfg.attrs)], CauseKey.String(causeValue(cause)))
		byCause[cause] = metric.WithAttributeSet(attribute.NewSet(kv...))
	}

	return meter.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		st := src.Stats()
		o.ObserveInt64(live, st.Live, base)
		for _, k := range counters {
			o.ObserveInt64(k.inst, toInt64(k.value(&st)), base)
		}
		for cause := laf.CausePeer; int(cause) < len(st.Closes); cause++ {
			o.ObserveInt64(closed, toInt64(st.Closes[cause]), byCause[cause])
		}
		return nil
	}, instruments...)
}

// causeValue is the value of the cause attribute for cause.
func causeValue(cause laf.CloseCause) string {
	return strings.ReplaceAll(cause.String(), " ", "_")
}

// toInt64 converts a counter to the int64 that the instruments take,
// saturating rather than wrapping to a negative value.
func toInt64(n uint64) int64 {
	if n > 1<<63-1 {
		return 1<<63 - 1
	}
	return int64(n)
}
