package laf

import (
	"log/slog"
	"math/rand/v2"
	"net/http"
	"time"
)

// Defaults of the options. Each option's doc says what zero or a negative
// value means.
const (
	DefaultReadLimit     = 32 << 10 // bytes per incoming message
	DefaultPingInterval  = 30 * time.Second
	DefaultPongTimeout   = 10 * time.Second
	DefaultQueueMessages = 256     // outbound messages waiting per socket
	DefaultQueueBytes    = 1 << 20 // outbound bytes waiting per socket
	DefaultHeartbeat     = 5 * time.Second
	DefaultCloseTimeout  = 5 * time.Second  // for a graceful close to finish
	DefaultWriteTimeout  = 10 * time.Second // for one write to the peer
	// DefaultMaxRequestBytes caps an upgrade request's URL and headers.
	DefaultMaxRequestBytes = 32 << 10
)

// An Option configures an Endpoint. Options are applied in order by
// Handler; a later option overrides an earlier one of the same kind.
type Option interface {
	apply(*config)
}

// An EmitterOption configures an Endpoint or an Emitter: WithHeartbeat
// and WithLogger are the options that apply to both.
type EmitterOption interface {
	Option
	emitter()
}

// option is an Option for Endpoints only.
type option func(*config)

func (o option) apply(c *config) { o(c) }

// sharedOption is an Option for Endpoints and Emitters alike.
type sharedOption func(*config)

func (o sharedOption) apply(c *config) { o(c) }
func (sharedOption) emitter()          {}

// AuthFunc decides, before the upgrade, whether a request may open a
// socket. It returns the identity to attach to the socket (see
// Socket.Identity and Endpoint.SendIdentity; "" for none), or an error to
// refuse the upgrade: an *HTTPError refuses with its Status, any other
// error with 401 Unauthorized. It runs on the request's goroutine and may
// be called concurrently.
type AuthFunc func(r *http.Request) (identity string, err error)

// SlowPolicy says what happens when a send would take a socket's
// outbound queue over its budget (see WithSendQueue).
type SlowPolicy int

const (
	// CloseSlow closes the socket with 1008 "slow consumer" and cause
	// CauseSlowConsumer, dropping what was queued. It is the default: a
	// peer that cannot keep up is better reconnected than silently fed
	// gaps.
	CloseSlow SlowPolicy = iota
	// DropNewest refuses the new message (the send returns ErrQueueFull)
	// and keeps the socket open.
	DropNewest
	// DropOldest discards the oldest queued messages until the new one
	// fits, and keeps the socket open.
	DropOldest
)

type config struct {
	originPatterns  []string
	subprotocols    []string
	readLimit       int64
	auth            AuthFunc
	logger          *slog.Logger
	shared          *Shared
	pingInterval    time.Duration
	pongTimeout     time.Duration
	idleTimeout     time.Duration
	readIdle        time.Duration
	closeTimeout    time.Duration
	roomHook        RoomHook
	maxSockets      int
	maxPerKey       int
	capKey          func(*http.Request) string
	rateLimit       RateLimit
	compress        bool
	compressMin     int
	maxLifetime     time.Duration
	queueMessages   int
	queueBytes      int
	slowPolicy      SlowPolicy
	broker          Broker
	heartbeat       time.Duration
	lentData        bool
	writeTimeout    time.Duration
	historySize     int
	historyTTL      time.Duration
	maxRequestBytes int
	brokerTimeout   time.Duration
	nodeName        string
}

func newConfig[O Option](opts []O) config {
	c := config{
		readLimit:       DefaultReadLimit,
		pingInterval:    DefaultPingInterval,
		pongTimeout:     DefaultPongTimeout,
		queueMessages:   DefaultQueueMessages,
		queueBytes:      DefaultQueueBytes,
		heartbeat:       DefaultHeartbeat,
		closeTimeout:    DefaultCloseTimeout,
		writeTimeout:    DefaultWriteTimeout,
		maxRequestBytes: DefaultMaxRequestBytes,
	}
	for _, o := range opts {
		o.apply(&c)
	}
	// Zero or less means the default where off or unlimited makes no sense.
	if c.readLimit == 0 {
		c.readLimit = DefaultReadLimit
	}
	if c.pongTimeout <= 0 {
		c.pongTimeout = DefaultPongTimeout
	}
	if c.queueMessages <= 0 {
		c.queueMessages = DefaultQueueMessages
	}
	if c.queueBytes <= 0 {
		c.queueBytes = DefaultQueueBytes
	}
	if c.closeTimeout <= 0 {
		c.closeTimeout = DefaultCloseTimeout
	}
	if c.writeTimeout <= 0 {
		c.writeTimeout = DefaultWriteTimeout
	}
	if c.maxRequestBytes == 0 {
		c.maxRequestBytes = DefaultMaxRequestBytes
	}
	if c.heartbeat <= 0 {
		c.heartbeat = DefaultHeartbeat
	}
	if c.logger == nil {
		c.logger = slog.New(slog.DiscardHandler)
	}
	if c.shared == nil {
		c.shared = NewShared()
	}
	return c
}

// WithOriginPatterns allows cross-origin upgrades from origins matching
// any of the patterns, as coder/websocket's AcceptOptions.OriginPatterns does:
// host patterns matched with path.Match ("example.com", "*.example.com"),
// or "scheme://host" patterns. By default only same-origin requests (and
// requests with no Origin header, such as from non-browser clients) may
// upgrade; others get 403 Forbidden.
func WithOriginPatterns(patterns ...string) Option {
	return option(func(c *config) { c.originPatterns = append(c.originPatterns, patterns...) })
}

// WithWriteTimeout bounds every write to a socket's peer, data, ping,
// pong or close frame alike (default DefaultWriteTimeout, 10 s; zero or
// less means the default). A peer that stops reading fails the write
// after between half of d and d (the deadline is rearmed once per half
// d, not per write), whatever the slow policy and ping settings, and the
// socket closes with CauseAbnormal (1006).
func WithWriteTimeout(d time.Duration) Option {
	return option(func(c *config) { c.writeTimeout = d })
}

// WithMaxRequestBytes caps the bytes of an upgrade request's URL and
// header lines (default DefaultMaxRequestBytes, 32 KiB): a larger request
// gets 431 Request Header Fields Too Large and no socket. Socket.Request
// keeps the request for the socket's life, so the cap is also what a peer
// can make an idle socket hold of it. Zero means the default; a negative
// n removes the cap (net/http's own MaxHeaderBytes, 1 MiB by default,
// still applies).
func WithMaxRequestBytes(n int) Option {
	return option(func(c *config) { c.maxRequestBytes = n })
}

// WithSubprotocols lists the subprotocols the Endpoint negotiates, in
// order of preference. Socket.Subprotocol reports the one chosen.
func WithSubprotocols(protocols ...string) Option {
	return option(func(c *config) { c.subprotocols = append(c.subprotocols, protocols...) })
}

// WithReadLimit sets the largest incoming message, in bytes (default
// DefaultReadLimit, 32 KiB). A larger message fires an error event with
// ErrMessageTooBig and closes the socket with 1009. Zero means the
// default; a negative n removes the limit, which lets any peer make the
// server buffer without bound.
func WithReadLimit(n int64) Option {
	return option(func(c *config) { c.readLimit = n })
}

// WithAuth runs fn before every upgrade. See AuthFunc.
func WithAuth(fn AuthFunc) Option {
	return option(func(c *config) { c.auth = fn })
}

// WithLogger sends the Endpoint's logs (handler errors and panics, with
// their stacks) to l. By default nothing is logged.
func WithLogger(l *slog.Logger) EmitterOption {
	return sharedOption(func(c *config) { c.logger = l })
}

// WithShared makes the Endpoint use s as its store, so that several
// endpoints and plain HTTP handlers can share one, as Laf's functions
// share cloud.shared. By default each Endpoint has its own.
func WithShared(s *Shared) Option {
	return option(func(c *config) { c.shared = s })
}

// WithPing pings every socket once per interval (default
// DefaultPingInterval, 30 s), the first time at a random point in the
// second half of its first interval so that sockets connected together
// are not pinged together, and closes it with cause CausePingTimeout
// when no pong comes back within timeout (default DefaultPongTimeout,
// 10 s). One timer per Endpoint drives every socket's pings. This keeps idle connections alive through proxies and finds
// half-open TCP connections. Pongs are read between messages, so a ping
// sent while the Func is running is not held against the socket. An
// interval of zero or less turns pings off; a timeout of zero or less
// means the default.
func WithPing(interval, timeout time.Duration) Option {
	return option(func(c *config) { c.pingInterval, c.pongTimeout = interval, timeout })
}

// WithIdleTimeout closes a socket with 1000 "idle" and cause CauseIdle
// once no message has gone either way for d. Pings and pongs do not count
// as messages. Zero (the default) turns it off.
func WithIdleTimeout(d time.Duration) Option {
	return option(func(c *config) { c.idleTimeout = d })
}

// WithReadIdleTimeout closes a socket with 1000 "idle" and cause
// CauseIdle once the peer has sent no message for d, however much the
// server sends it: a client that stopped sending while a room's stream
// keeps flowing to it. Pings and pongs do not count. Zero (the default)
// turns it off. WithIdleTimeout, which counts messages either way, keeps
// its meaning, and the two may be used together.
func WithReadIdleTimeout(d time.Duration) Option {
	return option(func(c *config) { c.readIdle = d })
}

// WithCloseTimeout bounds a graceful close (Socket.Close, a handler
// error, an idle or lifetime close, Shutdown): if writing what was queued,
// the close frame, and the peer's close frame in reply have not all
// happened within d of the close being decided, the connection is
// dropped and the close event fires with the close as decided. The
// default is DefaultCloseTimeout, 5 s; zero or less means the default.
func WithCloseTimeout(d time.Duration) Option {
	return option(func(c *config) { c.closeTimeout = d })
}

// A RoomHook hears when a room gets its first socket on this Endpoint
// (occupied true) and when it loses its last (occupied false): when
// per-room work, such as a ticker that sends the room its state, should
// start and stop. See WithRoomHook.
type RoomHook func(room string, occupied bool)

// WithRoomHook calls fn as rooms of this Endpoint become occupied and
// empty (see RoomHook). Calls come in the order of the changes, one at a
// time, on the goroutine whose Join, Leave or close made the change (the
// socket's own, during its close event's setup for a close); fn may call
// any method of the Endpoint or its sockets, Join and Leave included, and
// should return promptly. A room emptied by a closing socket is reported
// just before that socket's close event. Only this node's sockets count.
func WithRoomHook(fn RoomHook) Option {
	return option(func(c *config) { c.roomHook = fn })
}

// WithMaxLifetime closes a socket with 1001 "lifetime" and cause
// CauseLifetime once it has been open for its lifetime, so that clients
// reconnect, perhaps to another server: behind a balancer, sockets that
// piled onto some nodes (after a rolling restart, say) spread over all of
// them again. Each socket's lifetime is drawn at random, uniformly
// between 0.9×d and d, so that sockets opened together (after a restart
// or an outage) do not all close, and reconnect, together. No socket
// outlives d. Zero (the default) turns it off.
func WithMaxLifetime(d time.Duration) Option {
	return option(func(c *config) { c.maxLifetime = d })
}

// lifetimeJitter is the part of WithMaxLifetime's d that a socket's
// lifetime may fall short of it by: a tenth.
const lifetimeJitter = 10

// lifetime draws a socket's lifetime for WithMaxLifetime: uniformly in
// [d-d/lifetimeJitter, d].
func (c *config) lifetime() time.Duration {
	d := c.maxLifetime
	return d - rand.N(d/lifetimeJitter+1)
}

// WithSendQueue sets each socket's outbound budget: at most messages
// messages and bytes payload bytes waiting to be written (defaults
// DefaultQueueMessages, 256, and DefaultQueueBytes, 1 MiB). A message that
// would go over either is handled by the SlowPolicy. A single message
// larger than bytes is still accepted when nothing else is waiting. Zero
// or less means the default.
func WithSendQueue(messages, bytes int) Option {
	return option(func(c *config) { c.queueMessages, c.queueBytes = messages, bytes })
}

// WithSlowPolicy sets what happens when a socket's send queue is over its
// budget (default CloseSlow).
func WithSlowPolicy(p SlowPolicy) Option {
	return option(func(c *config) { c.slowPolicy = p })
}

// WithLentData lends each message event to the Func instead of giving it:
// the FunctionContext and its Params.Data are valid only until the Func
// returns, and laf reuses their memory for the socket's next message, so a
// message costs no allocation. The Func must not keep either, nor hand
// them to another goroutine; to keep the payload, copy it (Data.String,
// laf.Binary). It may send Data back to its own socket with laf.Owned,
// which is the echo that allocates and copies nothing: laf reuses the
// memory only once what the event sent has been written. Sending Data
// with laf.Owned to any other socket is a misuse, as its memory may be
// reused before that socket writes it. Off by default: the Func owns its
// events and their Data.
func WithLentData() Option {
	return option(func(c *config) { c.lentData = true })
}
