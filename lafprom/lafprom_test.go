package lafprom_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/lafgo/laf"
	"github.com/lafgo/laf/lafprom"
	"github.com/lafgo/laf/laftest"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
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

// distinct has a different value in every field, so that a field exported
// under the wrong name shows. CapRefused is below Refused, which counts
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

// distinctText is distinct() as the Collector must export it, in the
// text exposition format.
const distinctText = `
# HELP laf_broker_publish_errors_total Sends to other nodes that failed: not delivered, or outcome unknown.
# TYPE laf_broker_publish_errors_total counter
laf_broker_publish_errors_total 111
# HELP laf_broker_publish_unknown_total Of the failed sends to other nodes, those whose outcome is unknown: they may have been delivered.
# TYPE laf_broker_publish_unknown_total counter
laf_broker_publish_unknown_total 114
# HELP laf_handler_errors_total Errors returned by the handler.
# TYPE laf_handler_errors_total counter
laf_handler_errors_total 109
# HELP laf_handler_panics_total Panics recovered from the handler.
# TYPE laf_handler_panics_total counter
laf_handler_panics_total 110
# HELP laf_messages_dropped_no_socket_total Messages from other nodes that found no socket here: it had closed, or the room's last member had left.
# TYPE laf_messages_dropped_no_socket_total counter
laf_messages_dropped_no_socket_total 115
# HELP laf_messages_dropped_total Outbound messages dropped by the DropNewest or DropOldest policy.
# TYPE laf_messages_dropped_total counter
laf_messages_dropped_total 107
# HELP laf_messages_rate_dropped_total Incoming messages over the rate limit dropped by the DropOverRate policy.
# TYPE laf_messages_rate_dropped_total counter
laf_messages_rate_dropped_total 113
# HELP laf_messages_received_total Messages received from peers and delivered to the handler.
# TYPE laf_messages_received_total counter
laf_messages_received_total 103
# HELP laf_messages_replaced_total Queued laf.Latest messages replaced by a newer one of the same key.
# TYPE laf_messages_replaced_total counter
laf_messages_replaced_total 112
# HELP laf_messages_sent_total Messages written to peers.
# TYPE laf_messages_sent_total counter
laf_messages_sent_total 105
# HELP laf_received_bytes_total Payload bytes of the messages received.
# TYPE laf_received_bytes_total counter
laf_received_bytes_total 104
# HELP laf_sent_bytes_total Payload bytes of the messages sent.
# TYPE laf_sent_bytes_total counter
laf_sent_bytes_total 106
# HELP laf_slow_consumers_closed_total WebSocket connections closed by the CloseSlow policy for not keeping up.
# TYPE laf_slow_consumers_closed_total counter
laf_slow_consumers_closed_total 108
# HELP laf_sockets_closed_total WebSocket connections closed, by the cause of their close.
# TYPE laf_sockets_closed_total counter
laf_sockets_closed_total{cause="abnormal"} 202
laf_sockets_closed_total{cause="handler_error"} 204
laf_sockets_closed_total{cause="idle"} 209
laf_sockets_closed_total{cause="lifetime"} 210
laf_sockets_closed_total{cause="peer"} 201
laf_sockets_closed_total{cause="ping_timeout"} 208
laf_sockets_closed_total{cause="policy"} 212
laf_sockets_closed_total{cause="protocol"} 206
laf_sockets_closed_total{cause="read_limit"} 205
laf_sockets_closed_total{cause="server"} 203
laf_sockets_closed_total{cause="shutdown"} 211
laf_sockets_closed_total{cause="slow_consumer"} 207
# HELP laf_sockets_live WebSocket connections open now.
# TYPE laf_sockets_live gauge
laf_sockets_live 3
# HELP laf_upgrades_accepted_total WebSocket upgrades accepted.
# TYPE laf_upgrades_accepted_total counter
laf_upgrades_accepted_total 101
# HELP laf_upgrades_cap_refused_total WebSocket upgrades refused by the WithMaxSockets or WithMaxSocketsPerKey cap, also counted as refused.
# TYPE laf_upgrades_cap_refused_total counter
laf_upgrades_cap_refused_total 100
# HELP laf_upgrades_refused_total WebSocket upgrades refused: bad request, origin, auth, a cap or shutdown.
# TYPE laf_upgrades_refused_total counter
laf_upgrades_refused_total 102
`

// metricNames are the names of every metric a Collector exports.
var metricNames = []string{
	"laf_sockets_live",
	"laf_upgrades_accepted_total",
	"laf_upgrades_refused_total",
	"laf_upgrades_cap_refused_total",
	"laf_messages_received_total",
	"laf_received_bytes_total",
	"laf_messages_sent_total",
	"laf_sent_bytes_total",
	"laf_messages_dropped_total",
	"laf_messages_replaced_total",
	"laf_messages_rate_dropped_total",
	"laf_slow_consumers_closed_total",
	"laf_handler_errors_total",
	"laf_handler_panics_total",
	"laf_broker_publish_errors_total",
	"laf_broker_publish_unknown_total",
	"laf_messages_dropped_no_socket_total",
	"laf_sockets_closed_total",
}

func TestCollectorExportsEveryField(t *testing.T) {
	c := lafprom.NewCollector(distinct())
	require.NoError(t, testutil.CollectAndCompare(c, strings.NewReader(distinctText)))
	// 17 plain metrics, and one closed counter per cause.
	assert.Equal(t, 17+len(laf.CloseCounts{})-1, testutil.CollectAndCount(c))
	assert.Equal(t, len(laf.CloseCounts{})-1, testutil.CollectAndCount(c, "laf_sockets_closed_total"))
}

func TestCollectorPassesLint(t *testing.T) {
	problems, err := testutil.CollectAndLint(lafprom.NewCollector(distinct()))
	require.NoError(t, err)
	assert.Empty(t, problems)
}

// TestCollectorRegistersChecked registers the Collector on a pedantic
// registry, which checks every collected metric against the descriptors
// Describe sent, and its help, type and label consistency.
func TestCollectorRegistersChecked(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	require.NoError(t, reg.Register(lafprom.NewCollector(distinct())))
	require.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(distinctText)))

	// The same metrics again, with no label to tell them apart, collide.
	err := reg.Register(lafprom.NewCollector(distinct()))
	var are prometheus.AlreadyRegisteredError
	assert.True(t, errors.As(err, &are), "second registration: %v", err)
}

func TestCollectorOptions(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	labels := prometheus.Labels{"endpoint": "chat"}
	chat := lafprom.NewCollector(distinct(), lafprom.WithNamespace("app"), lafprom.WithConstLabels(labels))
	labels["endpoint"] = "changed after the option" // the option copied the map
	require.NoError(t, reg.Register(chat))
	// Another endpoint's collector, told apart by its label, registers too.
	require.NoError(t, reg.Register(lafprom.NewCollector(fixed{Live: 7},
		lafprom.WithNamespace("app"), lafprom.WithConstLabels(prometheus.Labels{"endpoint": "feed"}))))

	require.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP app_laf_sockets_live WebSocket connections open now.
# TYPE app_laf_sockets_live gauge
app_laf_sockets_live{endpoint="chat"} 3
app_laf_sockets_live{endpoint="feed"} 7
# HELP app_laf_sockets_closed_total WebSocket connections closed, by the cause of their close.
# TYPE app_laf_sockets_closed_total counter
app_laf_sockets_closed_total{cause="abnormal",endpoint="chat"} 202
app_laf_sockets_closed_total{cause="handler_error",endpoint="chat"} 204
app_laf_sockets_closed_total{cause="idle",endpoint="chat"} 209
app_laf_sockets_closed_total{cause="lifetime",endpoint="chat"} 210
app_laf_sockets_closed_total{cause="peer",endpoint="chat"} 201
app_laf_sockets_closed_total{cause="ping_timeout",endpoint="chat"} 208
app_laf_sockets_closed_total{cause="policy",endpoint="chat"} 212
app_laf_sockets_closed_total{cause="protocol",endpoint="chat"} 206
app_laf_sockets_closed_total{cause="read_limit",endpoint="chat"} 205
app_laf_sockets_closed_total{cause="server",endpoint="chat"} 203
app_laf_sockets_closed_total{cause="shutdown",endpoint="chat"} 211
app_laf_sockets_closed_total{cause="slow_consumer",endpoint="chat"} 207
app_laf_sockets_closed_total{cause="abnormal",endpoint="feed"} 0
app_laf_sockets_closed_total{cause="handler_error",endpoint="feed"} 0
app_laf_sockets_closed_total{cause="idle",endpoint="feed"} 0
app_laf_sockets_closed_total{cause="lifetime",endpoint="feed"} 0
app_laf_sockets_closed_total{cause="peer",endpoint="feed"} 0
app_laf_sockets_closed_total{cause="ping_timeout",endpoint="feed"} 0
app_laf_sockets_closed_total{cause="policy",endpoint="feed"} 0
app_laf_sockets_closed_total{cause="protocol",endpoint="feed"} 0
app_laf_sockets_closed_total{cause="read_limit",endpoint="feed"} 0
app_laf_sockets_closed_total{cause="server",endpoint="feed"} 0
app_laf_sockets_closed_total{cause="shutdown",endpoint="feed"} 0
app_laf_sockets_closed_total{cause="slow_consumer",endpoint="feed"} 0
`), "app_laf_sockets_live", "app_laf_sockets_closed_total"))

	problems, err := testutil.GatherAndLint(reg)
	require.NoError(t, err)
	assert.Empty(t, problems)
}

func TestNewCollectorNilSource(t *testing.T) {
	assert.Panics(t, func() { lafprom.NewCollector(nil) })
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

// sample returns the value of the metric name (with cause, if given)
// that g gathers, failing the test if g gathers no such metric.
func sample(t require.TestingT, g prometheus.Gatherer, name string, cause ...string) float64 {
	families, err := g.Gather()
	require.NoError(t, err)
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			if len(cause) == 0 || labelValue(m, "cause") == cause[0] {
				return value(m)
			}
		}
	}
	require.Failf(t, "no such metric", "%s %v", name, cause)
	return 0
}

func labelValue(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

func value(m *dto.Metric) float64 {
	if m.Gauge != nil {
		return m.GetGauge().GetValue()
	}
	return m.GetCounter().GetValue()
}

// eventually waits until the metric name (with cause, if given) that g
// gathers is want.
func eventually(t *testing.T, g prometheus.Gatherer, want float64, name string, cause ...string) {
	t.Helper()
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		assert.Equal(c, want, sample(c, g, name, cause...), "%s %v", name, cause)
	}, waitFor, 5*time.Millisecond)
}

func TestCollectorOverRealSockets(t *testing.T) {
	srv := laftest.NewServer(t, script)
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(lafprom.NewCollector(srv.Endpoint))

	// A new Endpoint exports every series, at zero.
	require.Equal(t, len(metricNames)+len(laf.CloseCounts{})-2, testutil.CollectAndCount(lafprom.NewCollector(srv.Endpoint)))
	for _, name := range metricNames {
		assert.Zero(t, sample(t, reg, name), name)
	}

	// A peer says hello, gets its echo, and closes.
	c := srv.Dial(t)
	c.Send("hello")
	c.ExpectText("hello")
	assert.Equal(t, 1.0, sample(t, reg, "laf_sockets_live"))
	assert.Equal(t, 1.0, sample(t, reg, "laf_upgrades_accepted_total"))
	assert.Equal(t, 1.0, sample(t, reg, "laf_messages_received_total"))
	assert.Equal(t, 5.0, sample(t, reg, "laf_received_bytes_total"))
	// The echo is counted once its write returns, which may be after the
	// peer has read it.
	eventually(t, reg, 1, "laf_messages_sent_total")
	eventually(t, reg, 5, "laf_sent_bytes_total")

	c.Close(websocket.StatusNormalClosure, "bye")
	eventually(t, reg, 1, "laf_sockets_closed_total", "peer")
	// Live went down before the close was counted.
	assert.Equal(t, 0.0, sample(t, reg, "laf_sockets_live"))

	// A handler error closes its socket with 1011.
	c = srv.Dial(t)
	c.Send("fail")
	c.ExpectClose(websocket.StatusInternalError)
	eventually(t, reg, 1, "laf_sockets_closed_total", "handler_error")
	assert.Equal(t, 1.0, sample(t, reg, "laf_handler_errors_total"))
	assert.Equal(t, 0.0, sample(t, reg, "laf_handler_panics_total"))

	// So does a panic, counted apart.
	c = srv.Dial(t)
	c.Send("panic")
	c.ExpectClose(websocket.StatusInternalError)
	eventually(t, reg, 2, "laf_sockets_closed_total", "handler_error")
	assert.Equal(t, 1.0, sample(t, reg, "laf_handler_panics_total"))
	assert.Equal(t, 1.0, sample(t, reg, "laf_handler_errors_total"))

	// A plain GET is no upgrade: refused.
	resp, err := srv.Client().Get(srv.URL)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusUpgradeRequired, resp.StatusCode)
	eventually(t, reg, 1, "laf_upgrades_refused_total")

	// All of it, exactly: the Collector sends what Stats says.
	require.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP laf_broker_publish_errors_total Sends to other nodes that failed: not delivered, or outcome unknown.
# TYPE laf_broker_publish_errors_total counter
laf_broker_publish_errors_total 0
# HELP laf_broker_publish_unknown_total Of the failed sends to other nodes, those whose outcome is unknown: they may have been delivered.
# TYPE laf_broker_publish_unknown_total counter
laf_broker_publish_unknown_total 0
# HELP laf_handler_errors_total Errors returned by the handler.
# TYPE laf_handler_errors_total counter
laf_handler_errors_total 1
# HELP laf_handler_panics_total Panics recovered from the handler.
# TYPE laf_handler_panics_total counter
laf_handler_panics_total 1
# HELP laf_messages_dropped_no_socket_total Messages from other nodes that found no socket here: it had closed, or the room's last member had left.
# TYPE laf_messages_dropped_no_socket_total counter
laf_messages_dropped_no_socket_total 0
# HELP laf_messages_dropped_total Outbound messages dropped by the DropNewest or DropOldest policy.
# TYPE laf_messages_dropped_total counter
laf_messages_dropped_total 0
# HELP laf_messages_replaced_total Queued laf.Latest messages replaced by a newer one of the same key.
# TYPE laf_messages_replaced_total counter
laf_messages_replaced_total 0
# HELP laf_messages_rate_dropped_total Incoming messages over the rate limit dropped by the DropOverRate policy.
# TYPE laf_messages_rate_dropped_total counter
laf_messages_rate_dropped_total 0
# HELP laf_slow_consumers_closed_total WebSocket connections closed by the CloseSlow policy for not keeping up.
# TYPE laf_slow_consumers_closed_total counter
laf_slow_consumers_closed_total 0
# HELP laf_messages_received_total Messages received from peers and delivered to the handler.
# TYPE laf_messages_received_total counter
laf_messages_received_total 3
# HELP laf_received_bytes_total Payload bytes of the messages received.
# TYPE laf_received_bytes_total counter
laf_received_bytes_total 14
# HELP laf_messages_sent_total Messages written to peers.
# TYPE laf_messages_sent_total counter
laf_messages_sent_total 1
# HELP laf_sent_bytes_total Payload bytes of the messages sent.
# TYPE laf_sent_bytes_total counter
laf_sent_bytes_total 5
# HELP laf_sockets_live WebSocket connections open now.
# TYPE laf_sockets_live gauge
laf_sockets_live 0
# HELP laf_upgrades_accepted_total WebSocket upgrades accepted.
# TYPE laf_upgrades_accepted_total counter
laf_upgrades_accepted_total 3
# HELP laf_upgrades_refused_total WebSocket upgrades refused: bad request, origin, auth, a cap or shutdown.
# TYPE laf_upgrades_refused_total counter
laf_upgrades_refused_total 1
# HELP laf_upgrades_cap_refused_total WebSocket upgrades refused by the WithMaxSockets or WithMaxSocketsPerKey cap, also counted as refused.
# TYPE laf_upgrades_cap_refused_total counter
laf_upgrades_cap_refused_total 0
# HELP laf_sockets_closed_total WebSocket connections closed, by the cause of their close.
# TYPE laf_sockets_closed_total counter
laf_sockets_closed_total{cause="abnormal"} 0
laf_sockets_closed_total{cause="handler_error"} 2
laf_sockets_closed_total{cause="idle"} 0
laf_sockets_closed_total{cause="lifetime"} 0
laf_sockets_closed_total{cause="peer"} 1
laf_sockets_closed_total{cause="ping_timeout"} 0
laf_sockets_closed_total{cause="policy"} 0
laf_sockets_closed_total{cause="protocol"} 0
laf_sockets_closed_total{cause="read_limit"} 0
laf_sockets_closed_total{cause="server"} 0
laf_sockets_closed_total{cause="shutdown"} 0
laf_sockets_closed_total{cause="slow_consumer"} 0
`), metricNames...))

	problems, err := testutil.GatherAndLint(reg)
	require.NoError(t, err)
	assert.Empty(t, problems)
}

// TestShutdownCountedByCause checks a cause the server decides.
func TestShutdownCountedByCause(t *testing.T) {
	srv := laftest.NewServer(t, script)
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(lafprom.NewCollector(srv.Endpoint))
	a, b := srv.Dial(t), srv.Dial(t)
	eventually(t, reg, 2, "laf_sockets_live")

	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- srv.Endpoint.Shutdown(ctx) }()
	a.ExpectClose(websocket.StatusGoingAway)
	b.ExpectClose(websocket.StatusGoingAway)
	require.NoError(t, <-done)
	// Shutdown returns once every close event has run, so the closes are
	// counted by now.
	assert.Equal(t, 2.0, sample(t, reg, "laf_sockets_closed_total", "shutdown"))
	assert.Equal(t, 0.0, sample(t, reg, "laf_sockets_live"))
}

// TestCapsAndRateLimitsCounted checks the counters of WithMaxSockets and
// WithRateLimit over real sockets: a capped upgrade, messages dropped over
// the rate, and a socket closed over it.
func TestCapsAndRateLimitsCounted(t *testing.T) {
	srv := laftest.NewServer(t, script, laf.WithMaxSockets(1), laf.WithReadLimit(100),
		laf.WithRateLimit(laf.RateLimit{Bytes: 1, ByteBurst: 100, Policy: laf.DropOverRate})) // 100 bytes, then about none
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(lafprom.NewCollector(srv.Endpoint))

	// The second socket is over the cap: refused, and counted as capped.
	c := srv.Dial(t)
	_, resp, err := srv.TryDial(nil)
	require.Error(t, err)
	require.NotNil(t, resp)
	assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
	assert.Equal(t, 1.0, sample(t, reg, "laf_upgrades_refused_total"))
	assert.Equal(t, 1.0, sample(t, reg, "laf_upgrades_cap_refused_total"))

	// The first message takes the whole burst; the next two are dropped,
	// and the socket stays open.
	big := strings.Repeat("x", 100)
	c.Send(big)
	c.ExpectText(big)
	c.Send(big)
	c.Send(big)
	eventually(t, reg, 2, "laf_messages_rate_dropped_total")
	assert.Equal(t, 1.0, sample(t, reg, "laf_messages_received_total"))
	assert.Equal(t, 1.0, sample(t, reg, "laf_sockets_live"))
	assert.Equal(t, 0.0, sample(t, reg, "laf_sockets_closed_total", "policy"))

	// Under the default CloseOverRate, a peer over its rate is closed
	// with 1008, counted by the policy cause.
	srv = laftest.NewServer(t, script, laf.WithRateLimit(laf.RateLimit{Messages: 1, MessageBurst: 1}))
	reg = prometheus.NewPedanticRegistry()
	reg.MustRegister(lafprom.NewCollector(srv.Endpoint))
	c = srv.Dial(t)
	for range 10 { // far faster than one a second
		if c.WS.Write(context.Background(), websocket.MessageText, []byte("spam")) != nil {
			break
		}
	}
	c.ExpectClose(websocket.StatusPolicyViolation)
	eventually(t, reg, 1, "laf_sockets_closed_total", "policy")
	assert.Equal(t, 0.0, sample(t, reg, "laf_messages_rate_dropped_total"))
	assert.Equal(t, 0.0, sample(t, reg, "laf_upgrades_cap_refused_total"))
}

// TestConcurrentScrapes scrapes from several goroutines while sockets
// send, which the race detector checks, and checks that no counter seen
// by one scraper ever goes down.
func TestConcurrentScrapes(t *testing.T) {
	srv := laftest.NewServer(t, script)
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(lafprom.NewCollector(srv.Endpoint))

	stop := make(chan struct{})
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for range 4 {
		wg.Go(func() {
			last := map[string]float64{}
			for {
				select {
				case <-stop:
					return
				default:
				}
				families, err := reg.Gather()
				if err != nil {
					errs <- err
					return
				}
				for _, f := range families {
					if f.GetType() != dto.MetricType_COUNTER {
						continue
					}
					for _, m := range f.GetMetric() {
						key := f.GetName() + "/" + labelValue(m, "cause")
						v := value(m)
						if v < last[key] {
							errs <- errors.New(key + " went down")
							return
						}
						last[key] = v
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
	eventually(t, reg, clients, "laf_sockets_closed_total", "peer")
	close(stop)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	assert.Equal(t, float64(clients*messages), sample(t, reg, "laf_messages_sent_total"))
}

// TestPromHTTP serves the default registry with promhttp.Handler, as an
// application would, and parses what a scrape of /metrics gets.
func TestPromHTTP(t *testing.T) {
	srv := laftest.NewServer(t, script)
	col := lafprom.NewCollector(srv.Endpoint)
	prometheus.MustRegister(col)
	t.Cleanup(func() { prometheus.Unregister(col) })

	metrics := httptest.NewServer(promhttp.Handler())
	t.Cleanup(metrics.Close)

	c := srv.Dial(t)
	c.Send("hi")
	c.ExpectText("hi")
	eventually(t, prometheus.DefaultGatherer, 1, "laf_messages_sent_total")

	resp, err := metrics.Client().Get(metrics.URL + "/metrics")
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, expfmt.TypeTextPlain, expfmt.ResponseFormat(resp.Header).FormatType())

	parser := expfmt.NewTextParser(model.LegacyValidation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	require.NoError(t, err, "the /metrics text must parse")

	for _, name := range metricNames {
		f, ok := families[name]
		if !assert.True(t, ok, "%s missing from /metrics", name) {
			continue
		}
		want := dto.MetricType_COUNTER
		if name == "laf_sockets_live" {
			want = dto.MetricType_GAUGE
		}
		assert.Equal(t, want, f.GetType(), name)
		assert.NotEmpty(t, f.GetHelp(), name)
	}
	// The Go runtime's metrics are still there beside laf's.
	assert.Contains(t, families, "go_goroutines")

	value := func(name string) float64 {
		m := families[name].GetMetric()
		require.Len(t, m, 1, name)
		if m[0].Gauge != nil {
			return m[0].GetGauge().GetValue()
		}
		return m[0].GetCounter().GetValue()
	}
	assert.Equal(t, 1.0, value("laf_sockets_live"))
	assert.Equal(t, 1.0, value("laf_upgrades_accepted_total"))
	assert.Equal(t, 1.0, value("laf_messages_received_total"))
	assert.Equal(t, 2.0, value("laf_received_bytes_total"))
	assert.Equal(t, 1.0, value("laf_messages_sent_total"))
	assert.Equal(t, 2.0, value("laf_sent_bytes_total"))

	closed := families["laf_sockets_closed_total"].GetMetric()
	assert.Len(t, closed, len(laf.CloseCounts{})-1, "one series per cause")
	var causes []string
	for _, m := range closed {
		causes = append(causes, labelValue(m, "cause"))
		assert.Zero(t, m.GetCounter().GetValue())
	}
	assert.ElementsMatch(t, []string{"peer", "abnormal", "server", "handler_error", "read_limit",
		"protocol", "slow_consumer", "ping_timeout", "idle", "lifetime", "shutdown", "policy"}, causes)

	// The same scrape through testutil, which compares the text exactly.
	c.Close(websocket.StatusNormalClosure, "")
	eventually(t, prometheus.DefaultGatherer, 1, "laf_sockets_closed_total", "peer")
	require.NoError(t, testutil.ScrapeAndCompare(metrics.URL+"/metrics", strings.NewReader(`
# HELP laf_sockets_live WebSocket connections open now.
# TYPE laf_sockets_live gauge
laf_sockets_live 0
# HELP laf_upgrades_accepted_total WebSocket upgrades accepted.
# TYPE laf_upgrades_accepted_total counter
laf_upgrades_accepted_total 1
`), "laf_sockets_live", "laf_upgrades_accepted_total"))
}

func TestBadConstLabelFailsRegistration(t *testing.T) {
	reg := prometheus.NewRegistry()
	err := reg.Register(lafprom.NewCollector(distinct(), lafprom.WithConstLabels(prometheus.Labels{"cause": "x"})))
	assert.Error(t, err)
}
