package lafotel_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/lafgo/laf"
	"github.com/lafgo/laf/lafotel"
	"github.com/lafgo/laf/laftest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/metric/metricdata/metricdatatest"
	"go.uber.org/goleak"
)

// TestMain fails the run if any goroutine outlives the tests: a socket's,
// a server's or a client's.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// waitFor bounds every wait for a counter that moves asynchronously. It
// is generous, for slow shared machines; a passing test waits far less.
const waitFor = 10 * time.Second

// fixed is a Source whose Stats never change.
type fixed laf.Stats

func (f fixed) Stats() laf.Stats { return laf.Stats(f) }

// counting is a Source that counts the calls of Stats.
type counting struct {
	Source lafotel.Source
	calls  atomic.Int64
}

func (c *counting) Stats() laf.Stats { c.calls.Add(1); return c.Source.Stats() }

// distinct has a different value in every field, so that a field observed
// by the wrong instrument shows. CapRefused is below Refused, which counts
// it too.
func distinct() fixed {
	st := laf.Stats{
		Live: 3, Accepted: 101, Refused: 102, CapRefused: 100, MessagesIn: 103, BytesIn: 104,
		MessagesOut: 105, BytesOut: 106, Dropped: 107, Replaced: 112, RateDropped: 113,
		SlowClosed: 108, HandlerErrors: 109, Panics: 110, PublishErrors: 111,
		PublishUnknown: 114, DroppedNoSocket: 115,
	}
	for c := laf.CausePeer; int(c) < len(st.Closes); c++ {
		st.Closes[c] = 200 + uint64(c)
	}
	return fixed(st)
}

// causes are the values of the cause attribute, in laf.CloseCause order.
var causes = []string{"peer", "abnormal", "server", "handler_error", "read_limit",
	"protocol", "slow_consumer", "ping_timeout", "idle", "lifetime", "shutdown", "policy"}

// newReader returns a MeterProvider and the manual reader that collects
// from it; the test's cleanup shuts the provider down.
func newReader(t *testing.T) (*sdkmetric.MeterProvider, *sdkmetric.ManualReader) {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	t.Cleanup(func() { mp.Shutdown(context.Background()) })
	return mp, reader
}

// register registers src on mp and unregisters it in the test's cleanup.
func register(t *testing.T, src lafotel.Source, mp *sdkmetric.MeterProvider, opts ...lafotel.Option) {
	t.Helper()
	reg, err := lafotel.Register(src, mp, opts...)
	require.NoError(t, err)
	t.Cleanup(func() { reg.Unregister() })
}

// collect collects from r and returns laf's scope, failing t if it is
// missing.
func collect(t require.TestingT, r sdkmetric.Reader) metricdata.ScopeMetrics {
	var rm metricdata.ResourceMetrics
	require.NoError(t, r.Collect(context.Background(), &rm))
	for _, sm := range rm.ScopeMetrics {
		if sm.Scope.Name == lafotel.ScopeName {
			return sm
		}
	}
	require.Fail(t, "no "+lafotel.ScopeName+" scope collected")
	return metricdata.ScopeMetrics{}
}

// sum is a cumulative Sum with one data point per attribute set.
func sum(name, unit, desc string, monotonic bool, points ...metricdata.DataPoint[int64]) metricdata.Metrics {
	return metricdata.Metrics{
		Name: name, Unit: unit, Description: desc,
		Data: metricdata.Sum[int64]{
			Temporality: metricdata.CumulativeTemporality,
			IsMonotonic: monotonic,
			DataPoints:  points,
		},
	}
}

func point(v int64, attrs ...attribute.KeyValue) metricdata.DataPoint[int64] {
	return metricdata.DataPoint[int64]{Value: v, Attributes: attribute.NewSet(attrs...)}
}

// want is what Register must export for st, with attrs on every point.
func want(st laf.Stats, attrs ...attribute.KeyValue) []metricdata.Metrics {
	var closed []metricdata.DataPoint[int64]
	for c := laf.CausePeer; int(c) < len(st.Closes); c++ {
		kv := append(append([]attribute.KeyValue{}, attrs...), attribute.String("cause", causes[c-1]))
		closed = append(closed, point(int64(st.Closes[c]), kv...))
	}
	count := func(name, unit, desc string, v uint64) metricdata.Metrics {
		return sum(name, unit, desc, true, point(int64(v), attrs...))
	}
	return []metricdata.Metrics{
		sum("laf.sockets.live", "{socket}", "WebSocket connections open now.", false, point(st.Live, attrs...)),
		sum("laf.sockets.closed", "{socket}", "WebSocket connections closed, by the cause of their close.", true, closed...),
		count("laf.upgrades.accepted", "{upgrade}", "WebSocket upgrades accepted.", st.Accepted),
		count("laf.upgrades.refused", "{upgrade}", "WebSocket upgrades refused: bad request, origin, auth, a cap or shutdown.", st.Refused),
		count("laf.upgrades.cap_refused", "{upgrade}", "WebSocket upgrades refused by the WithMaxSockets or WithMaxSocketsPerKey cap, also counted as refused.", st.CapRefused),
		count("laf.messages.received", "{message}", "Messages received from peers and delivered to the handler.", st.MessagesIn),
		count("laf.messages.sent", "{message}", "Messages written to peers.", st.MessagesOut),
		count("laf.messages.dropped", "{message}", "Outbound messages dropped by the DropNewest or DropOldest policy.", st.Dropped),
		count("laf.messages.replaced", "{message}", "Queued laf.Latest messages replaced by a newer one of the same key.", st.Replaced),
		count("laf.messages.rate_dropped", "{message}", "Incoming messages over the rate limit dropped by the DropOverRate policy.", st.RateDropped),
		count("laf.payload.received", "By", "Payload bytes of the messages received.", st.BytesIn),
		count("laf.payload.sent", "By", "Payload bytes of the messages sent.", st.BytesOut),
		count("laf.slow_consumers.closed", "{socket}", "WebSocket connections closed by the CloseSlow policy for not keeping up.", st.SlowClosed),
		count("laf.handler.errors", "{error}", "Errors returned by the handler.", st.HandlerErrors),
		count("laf.handler.panics", "{panic}", "Panics recovered from the handler.", st.Panics),
		count("laf.broker.publish.errors", "{error}", "Sends to other nodes that failed: not delivered, or outcome unknown.", st.PublishErrors),
		count("laf.broker.publish.unknown", "{error}", "Of the failed sends to other nodes, those whose outcome is unknown: they may have been delivered.", st.PublishUnknown),
		count("laf.messages.dropped_no_socket", "{message}", "Messages from other nodes that found no socket here: it had closed, or the room's last member had left.", st.DroppedNoSocket),
	}
}

// assertMetrics checks that got holds exactly the metrics of wantMetrics,
// in any order, ignoring timestamps.
func assertMetrics(t *testing.T, wantMetrics []metricdata.Metrics, got metricdata.ScopeMetrics) bool {
	byName := map[string]metricdata.Metrics{}
	for _, m := range got.Metrics {
		byName[m.Name] = m
	}
	ok := assert.Len(t, got.Metrics, len(wantMetrics))
	for _, w := range wantMetrics {
		g, found := byName[w.Name]
		if !assert.True(t, found, "%s not collected", w.Name) {
			ok = false
			continue
		}
		ok = metricdatatest.AssertEqual(t, w, g, metricdatatest.IgnoreTimestamp()) && ok
	}
	return ok
}

func TestRegisterObservesEveryField(t *testing.T) {
	mp, reader := newReader(t)
	register(t, distinct(), mp)
	sm := collect(t, reader)
	assert.Empty(t, sm.Scope.Version)
	assertMetrics(t, want(laf.Stats(distinct())), sm)
}

func TestStatsReadOncePerCollection(t *testing.T) {
	mp, reader := newReader(t)
	src := &counting{Source: distinct()}
	reg, err := lafotel.Register(src, mp)
	require.NoError(t, err)
	assert.Zero(t, src.calls.Load(), "Register itself reads nothing")
	for i := range 3 {
		collect(t, reader)
		assert.Equal(t, int64(i+1), src.calls.Load())
	}

	require.NoError(t, reg.Unregister())
	var rm metricdata.ResourceMetrics
	require.NoError(t, reader.Collect(context.Background(), &rm))
	assert.Equal(t, int64(3), src.calls.Load(), "no reading once unregistered")
	for _, sm := range rm.ScopeMetrics {
		if sm.Scope.Name == lafotel.ScopeName {
			assert.Empty(t, sm.Metrics, "no observations once unregistered")
		}
	}
}

func TestWithAttributes(t *testing.T) {
	mp, reader := newReader(t)
	chat := attribute.String("endpoint", "chat")
	register(t, distinct(), mp, lafotel.WithAttributes(chat), lafotel.WithAttributes(attribute.Int("shard", 2)))
	// Another Endpoint on the same provider, told apart by its attribute.
	register(t, fixed{Live: 7}, mp, lafotel.WithAttributes(attribute.String("endpoint", "feed")))

	sm := collect(t, reader)
	require.Len(t, sm.Metrics, len(want(laf.Stats{})))
	for _, m := range sm.Metrics {
		points := m.Data.(metricdata.Sum[int64]).DataPoints
		perEndpoint := 1
		if m.Name == "laf.sockets.closed" {
			perEndpoint = len(causes)
		}
		assert.Len(t, points, 2*perEndpoint, m.Name)
		for _, p := range points {
			e, ok := p.Attributes.Value("endpoint")
			require.True(t, ok, "%s point without the endpoint attribute", m.Name)
			_, sharded := p.Attributes.Value("shard")
			assert.Equal(t, e.AsString() == "chat", sharded, m.Name)
		}
	}

	var live []int64
	for _, m := range sm.Metrics {
		if m.Name == "laf.sockets.live" {
			for _, p := range m.Data.(metricdata.Sum[int64]).DataPoints {
				live = append(live, p.Value)
			}
		}
	}
	assert.ElementsMatch(t, []int64{3, 7}, live)
}

func TestCauseAttributeWins(t *testing.T) {
	mp, reader := newReader(t)
	register(t, distinct(), mp, lafotel.WithAttributes(lafotel.CauseKey.String("mine")))
	for _, m := range collect(t, reader).Metrics {
		for _, p := range m.Data.(metricdata.Sum[int64]).DataPoints {
			v, _ := p.Attributes.Value(lafotel.CauseKey)
			if m.Name == "laf.sockets.closed" {
				assert.NotEqual(t, "mine", v.AsString())
			} else {
				assert.Equal(t, "mine", v.AsString(), m.Name)
			}
		}
	}
}

func TestRegisterGlobalProvider(t *testing.T) {
	// With no provider set, the global one observes nothing, but
	// Register works and the Registration unregisters.
	reg, err := lafotel.Register(distinct(), nil)
	require.NoError(t, err)
	require.NoError(t, reg.Unregister())
}

func TestRegisterNilSource(t *testing.T) {
	mp, _ := newReader(t)
	assert.Panics(t, func() { lafotel.Register(nil, mp) })
}

// script is the Func of the tests over real sockets: it echoes every
// message, except "fail", for which it returns an error, and "panic", for
// which it panics.
func script(ctx *laf.FunctionContext) error {
	if ctx.Method != laf.MethodMessage {
		return nil
	}
	switch ctx.Params.Data.String() {
	case "fail":
		return errors.New("failing as asked")
	case "panic":
		panic("panicking as asked")
	}
	return ctx.Socket.Send(ctx.Params.Data.String())
}

// value returns the value that r collects for the instrument name (with
// the cause attribute, if given), failing t if there is none.
func value(t require.TestingT, r sdkmetric.Reader, name string, cause ...string) int64 {
	for _, m := range collect(t, r).Metrics {
		if m.Name != name {
			continue
		}
		for _, p := range m.Data.(metricdata.Sum[int64]).DataPoints {
			v, _ := p.Attributes.Value(lafotel.CauseKey)
			if len(cause) == 0 || v.AsString() == cause[0] {
				return p.Value
			}
		}
	}
	require.Failf(t, "no such data point", "%s %v", name, cause)
	return 0
}

// eventually waits until the value r collects for name (with cause, if
// given) is want.
func eventually(t *testing.T, r sdkmetric.Reader, want int64, name string, cause ...string) {
	t.Helper()
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		assert.Equal(c, want, value(c, r, name, cause...), "%s %v", name, cause)
	}, waitFor, 5*time.Millisecond)
}

func TestRegisterOverRealSockets(t *testing.T) {
	srv := laftest.NewServer(t, script)
	mp, reader := newReader(t)
	register(t, srv.Endpoint, mp)

	// A new Endpoint observes every instrument, at zero.
	assertMetrics(t, want(laf.Stats{}), collect(t, reader))

	// A peer says hello, gets its echo, and closes.
	c := srv.Dial(t)
	c.Send("hello")
	c.ExpectText("hello")
	assert.Equal(t, int64(1), value(t, reader, "laf.sockets.live"))
	assert.Equal(t, int64(1), value(t, reader, "laf.upgrades.accepted"))
	assert.Equal(t, int64(1), value(t, reader, "laf.messages.received"))
	assert.Equal(t, int64(5), value(t, reader, "laf.payload.received"))
	// The echo is counted once its write returns, which may be after the
	// peer has read it.
	eventually(t, reader, 1, "laf.messages.sent")
	eventually(t, reader, 5, "laf.payload.sent")

	c.Close(websocket.StatusNormalClosure, "bye")
	eventually(t, reader, 1, "laf.sockets.closed", "peer")
	// Live went down before the close was counted.
	assert.Equal(t, int64(0), value(t, reader, "laf.sockets.live"))

	// A handler error closes its socket with 1011.
	c = srv.Dial(t)
	c.Send("fail")
	c.ExpectClose(websocket.StatusInternalError)
	eventually(t, reader, 1, "laf.sockets.closed", "handler_error")
	assert.Equal(t, int64(1), value(t, reader, "laf.handler.errors"))
	assert.Equal(t, int64(0), value(t, reader, "laf.handler.panics"))

	// So does a panic, counted apart.
	c = srv.Dial(t)
	c.Send("panic")
	c.ExpectClose(websocket.StatusInternalError)
	eventually(t, reader, 2, "laf.sockets.closed", "handler_error")
	assert.Equal(t, int64(1), value(t, reader, "laf.handler.panics"))
	assert.Equal(t, int64(1), value(t, reader, "laf.handler.errors"))

	// A plain GET is no upgrade: refused.
	resp, err := srv.Client().Get(srv.URL)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusUpgradeRequired, resp.StatusCode)
	eventually(t, reader, 1, "laf.upgrades.refused")

	// All of it, exactly: every instrument observes what Stats says.
	var st laf.Stats
	st.Accepted, st.Refused = 3, 1
	st.MessagesIn, st.BytesIn = 3, 14
	st.MessagesOut, st.BytesOut = 1, 5
	st.HandlerErrors, st.Panics = 1, 1
	st.Closes[laf.CausePeer], st.Closes[laf.CauseHandlerError] = 1, 2
	assertMetrics(t, want(st), collect(t, reader))
}

// TestShutdownCountedByCause checks a cause the server decides.
func TestShutdownCountedByCause(t *testing.T) {
	srv := laftest.NewServer(t, script)
	mp, reader := newReader(t)
	register(t, srv.Endpoint, mp)
	a, b := srv.Dial(t), srv.Dial(t)
	eventually(t, reader, 2, "laf.sockets.live")

	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- srv.Endpoint.Shutdown(ctx) }()
	a.ExpectClose(websocket.StatusGoingAway)
	b.ExpectClose(websocket.StatusGoingAway)
	require.NoError(t, <-done)
	// Shutdown returns once every close event has run, so the closes are
	// counted by now.
	assert.Equal(t, int64(2), value(t, reader, "laf.sockets.closed", "shutdown"))
	assert.Equal(t, int64(0), value(t, reader, "laf.sockets.live"))
}

// TestCapsAndRateLimitsCounted checks the counters of WithMaxSockets and
// WithRateLimit over real sockets: a capped upgrade, messages dropped over
// the rate, and a socket closed over it.
func TestCapsAndRateLimitsCounted(t *testing.T) {
	srv := laftest.NewServer(t, script, laf.WithMaxSockets(1), laf.WithReadLimit(100),
		laf.WithRateLimit(laf.RateLimit{Bytes: 1, ByteBurst: 100, Policy: laf.DropOverRate})) // 100 bytes, then about none
	mp, reader := newReader(t)
	register(t, srv.Endpoint, mp)

	// The second socket is over the cap: refused, and counted as capped.
	c := srv.Dial(t)
	_, resp, err := srv.TryDial(nil)
	require.Error(t, err)
	require.NotNil(t, resp)
	assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
	assert.Equal(t, int64(1), value(t, reader, "laf.upgrades.refused"))
	assert.Equal(t, int64(1), value(t, reader, "laf.upgrades.cap_refused"))

	// The first message takes the whole burst; the next two are dropped,
	// and the socket stays open.
	big := strings.Repeat("x", 100)
	c.Send(big)
	c.ExpectText(big)
	c.Send(big)
	c.Send(big)
	eventually(t, reader, 2, "laf.messages.rate_dropped")
	assert.Equal(t, int64(1), value(t, reader, "laf.messages.received"))
	assert.Equal(t, int64(1), value(t, reader, "laf.sockets.live"))
	assert.Equal(t, int64(0), value(t, reader, "laf.sockets.closed", "policy"))

	// Under the default CloseOverRate, a peer over its rate is closed
	// with 1008, counted by the policy cause.
	srv = laftest.NewServer(t, script, laf.WithRateLimit(laf.RateLimit{Messages: 1, MessageBurst: 1}))
	mp, reader = newReader(t)
	register(t, srv.Endpoint, mp)
	c = srv.Dial(t)
	for range 10 { // far faster than one a second
		if c.WS.Write(context.Background(), websocket.MessageText, []byte("spam")) != nil {
			break
		}
	}
	c.ExpectClose(websocket.StatusPolicyViolation)
	eventually(t, reader, 1, "laf.sockets.closed", "policy")
	assert.Equal(t, int64(0), value(t, reader, "laf.messages.rate_dropped"))
	assert.Equal(t, int64(0), value(t, reader, "laf.upgrades.cap_refused"))
}

// TestConcurrentCollections collects from two readers, each from two
// goroutines, while sockets send, which the race detector checks, and
// checks that no counter seen by one collector ever goes down.
func TestConcurrentCollections(t *testing.T) {
	srv := laftest.NewServer(t, script)
	r1, r2 := sdkmetric.NewManualReader(), sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(r1), sdkmetric.WithReader(r2))
	t.Cleanup(func() { mp.Shutdown(context.Background()) })
	register(t, srv.Endpoint, mp)

	stop := make(chan struct{})
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for _, r := range []sdkmetric.Reader{r1, r2, r1, r2} {
		wg.Go(func() {
			last := map[string]int64{}
			for {
				select {
				case <-stop:
					return
				default:
				}
				var rm metricdata.ResourceMetrics
				if err := r.Collect(context.Background(), &rm); err != nil {
					errs <- err
					return
				}
				for _, sm := range rm.ScopeMetrics {
					for _, m := range sm.Metrics {
						s := m.Data.(metricdata.Sum[int64])
						if !s.IsMonotonic {
							continue
						}
						for _, p := range s.DataPoints {
							v, _ := p.Attributes.Value(lafotel.CauseKey)
							key := m.Name + "/" + v.AsString()
							if p.Value < last[key] {
								errs <- errors.New(key + " went down")
								return
							}
							last[key] = p.Value
						}
					}
				}
			}
		})
	}

	const clients, messages = 3, 50
	for range clients {
		c := srv.Dial(t)
		for range messages {
			c.Send("x")
			c.ExpectText("x")
		}
		c.Close(websocket.StatusNormalClosure, "")
	}
	eventually(t, r1, clients, "laf.sockets.closed", "peer")
	close(stop)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	assert.Equal(t, int64(clients*messages), value(t, r2, "laf.messages.sent"))
}
