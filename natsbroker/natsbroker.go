// Package natsbroker is a laf.Broker on NATS core publish/subscribe,
// through nats.go.
//
// Give every process of the cluster a connection to the same NATS
// system and the same subject. laf relies on the connection to come back
// by itself after an outage, so connect with reconnects that never give
// up; nats.go's default gives up after 60 tries, 2 s apart, and then
// closes the connection for good:
//
//	nc, err := nats.Connect(url,
//		nats.Name(node),                          // as laf.WithNodeName: the server's monitoring names the node
//		nats.MaxReconnects(-1),                   // never give up
//		nats.ReconnectWait(250*time.Millisecond), // retry soon
//		nats.RetryOnFailedConnect(true),          // start before NATS is up
//		nats.ErrorHandler(natsbroker.SlogErrorHandler(logger)), // nats.go's async errors into slog
//	)
//	b := natsbroker.New(nc)
//	ep := laf.Handler(fn, laf.WithBroker(b), laf.WithNodeName(node))
//
// # Subjects
//
// laf's channels are subjects under the Broker's subject: "laf" for
// channel "" (broadcasts, beats, presence queries), and "laf.n.NODE",
// "laf.r.ROOM", "laf.i.IDENTITY" for a node's, a room's and an
// identity's. Each Open feeds every subscription of its set into one Go
// channel, so that messages reach laf in the order the connection
// received them, whatever their subjects.
//
// NATS does not count subscribers. PublishTo publishes with a reply
// subject of the Broker's own and waits for a round trip to the server
// (a flush): a server with no subscriber for the subject answers "no
// responders" (NATS's status 503) before the flush's reply, so PublishTo
// returns 0 then, and 1 otherwise. That is what lets laf answer
// ErrNotFound for a room nobody holds, and refuse at once a send to a node
// whose process is gone, at the cost of one round trip to the server per
// send; subscribers get the message at the same time, so a send's
// latency barely changes.
//
// # Failures
//
// When the connection is lost, nats.go reconnects and subscribes again by
// itself. Messages published by others in the meantime are lost for this
// node, as laf.Broker allows. PublishTo refuses while the connection is
// down instead of letting nats.go buffer the message for later, so that
// laf counts the failure and a push is not delivered long after its
// sender gave up on it: a send fails at once, with ErrDisconnected.
// Nothing is ever retried.
//
// A send's wait is bounded by its context's deadline, which laf sets from
// laf.WithBrokerTimeout, and by the Broker's (WithBrokerTimeout). Its
// error says what became of the message, as laf.Broker asks: an error
// before the message was handed to nats.go (not connected, closed,
// over max_payload) means nothing left, and laf answers a
// *laf.BrokerError; a round trip that fails or times out after the
// message was handed over (a hung server, a connection lost meanwhile)
// wraps laf.ErrOutcomeUnknown: the server may have delivered it, and a
// hung server that resumes does, late.
//
// NATS core delivers every message to every subscriber of the subject, in
// the order each connection published them. Messages are limited to the
// server's max_payload (1 MiB by default); a subscriber that falls behind
// by more than its pending limits (nats.go's defaults: 500,000 messages
// or 64 MiB; 65,536 messages for an Open's set) loses messages, which
// nats.go reports to the connection's error handler as a slow consumer.
//
// # History
//
// Broker is a laf.HistoryBroker: Endpoint.Publish keeps each room's
// messages in JetStream, which the server must enable (nats-server -js,
// or a jetstream block in its configuration), so that Publish and
// Socket.JoinSince work the same on every node and a node that dies loses
// no history. Without JetStream, Publish fails; the other sends do not
// need it. The Broker makes one stream, "LAF_HISTORY_" and the subject
// (file storage; WithHistoryLimits per room, WithHistoryReplicas), with
// a subject per room; each publish is one request in the steady state,
// and a recovery two or more direct gets (the room's last message, then
// a batch from a sequence guessed from the number missed). See
// history.go.
package natsbroker

import (
	"context"
	"errors"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/lafgo/laf"
	"github.com/nats-io/nats.go"
)

// DefaultSubject is the NATS subject laf publishes to unless WithSubject
// names another.
const DefaultSubject = "laf"

// DefaultBrokerTimeout bounds the round trips that PublishTo and a set's
// Subscribe wait for, when the context has no earlier deadline, unless
// WithBrokerTimeout sets another. It matches laf.DefaultBrokerTimeout.
const DefaultBrokerTimeout = 2 * time.Second

var (
	// ErrClosed is returned by PublishTo and Open after Close.
	ErrClosed = errors.New("natsbroker: broker closed")
	// ErrDisconnected is returned by PublishTo while the connection is down
	// and nats.go is reconnecting.
	ErrDisconnected = errors.New("natsbroker: not connected to NATS")
)

// Broker is a laf.Broker on one NATS subject. Its methods are safe for
// concurrent use.
type Broker struct {
	nc           *nats.Conn
	subject      string
	timeout      time.Duration
	flushPublish bool

	mu     sync.Mutex
	closed bool
	done   chan struct{} // closed by Close
	subs   map[*nats.Subscription]struct{}

	// The "no responders" answers to PublishTo's messages arrive on
	// inbox.N, in noResp, pushed there by nats.go's reader before the
	// flush's reply. Its own lock, so that sends do not wait on mu.
	rmu     sync.Mutex
	inbox   string
	noResp  chan *nats.Msg
	respSub *nats.Subscription
	seq     uint64
	waiting map[string]bool // reply subjects of PublishTo calls under way: true once answered

	hist history // rooms' history in JetStream: history.go
}

var _ laf.Broker = (*Broker)(nil)

// An Option configures a Broker.
type Option func(*Broker)

// WithSubject sets the NATS subject (default DefaultSubject). Endpoints
// and emitters that share a subject form one cluster; give separate apps
// on one NATS system separate subjects.
func WithSubject(subject string) Option {
	return func(b *Broker) { b.subject = subject }
}

// WithBrokerTimeout bounds how long a set's Subscribe waits for the
// server to register a subscription, and PublishTo for its round trip,
// when the context has no earlier deadline (default DefaultBrokerTimeout).
// laf passes a context with its own deadline (laf.WithBrokerTimeout).
func WithBrokerTimeout(d time.Duration) Option {
	return func(b *Broker) { b.timeout = d }
}

// WithPublishFlush makes PublishTo on channel "" (broadcasts, beats,
// presence queries) wait for a round trip to the server after each
// message, as it does on every other channel, so that it returns an error
// unless the server has taken the message. Each broadcast then waits a
// round trip, which on a busy process costs far more than the publish
// (examples/cluster's clusterbench measures it). By default it returns
// once the message is in nats.go's write buffer, which nats.go flushes
// within microseconds; a connection that fails in between loses it
// silently.
func WithPublishFlush() Option {
	return func(b *Broker) { b.flushPublish = true }
}

// New returns a Broker on nc, which the caller keeps and closes after the
// Broker's users are done. See the package doc for the options nc needs:
// reconnects that never give up, and nats.Name set to the node's name
// (laf.WithNodeName), so that the server's monitoring (connz) tells the
// nodes apart. nats.go never retries a publish; PublishTo refuses while
// nc is reconnecting rather than let nats.go buffer it.
func New(nc *nats.Conn, opts ...Option) *Broker {
	b := &Broker{
		nc:      nc,
		subject: DefaultSubject,
		timeout: DefaultBrokerTimeout,
		subs:    make(map[*nats.Subscription]struct{}),
		done:    make(chan struct{}),
	}
	for _, o := range opts {
		o(b)
	}
	return b
}

// Subject returns the NATS subject of laf's channel "".
func (b *Broker) Subject() string { return b.subject }

// natsSubject returns the subject of laf's channel name.
func (b *Broker) natsSubject(name string) string {
	if name == "" {
		return b.subject
	}
	return b.subject + "." + name
}

// PublishTo sends msg to every subscriber of laf's channel name and
// returns 0 if the server had none, else 1; see the package doc. It
// returns ErrDisconnected at once while the connection is down, and an
// error wrapping laf.ErrOutcomeUnknown if the round trip does not finish
// within the context and the Broker's timeout. Channel "" is published
// without the round trip (unless WithPublishFlush) and counts -1: laf
// does not ask who heard a broadcast, and broadcasts are where throughput
// matters.
func (b *Broker) PublishTo(ctx context.Context, name string, msg []byte) (int, error) {
	if err := b.connected(ctx); err != nil {
		return 0, err
	}
	if name == "" {
		if err := b.nc.Publish(b.subject, msg); err != nil {
			return 0, err
		}
		if b.flushPublish {
			if err := b.flush(ctx); err != nil {
				return 0, &outcomeError{err: err}
			}
		}
		return -1, nil
	}
	reply, err := b.expect()
	if err != nil {
		return 0, err
	}
	defer b.unexpect(reply)
	if err := b.nc.PublishMsg(&nats.Msg{Subject: b.natsSubject(name), Reply: reply, Data: msg}); err != nil {
		return 0, err
	}
	if err := b.flush(ctx); err != nil {
		return 0, &outcomeError{err: err}
	}
	if b.answered(reply) {
		return 0, nil
	}
	return 1, nil
}

// connected returns the error that keeps a message from leaving now: ctx's,
// ErrClosed, or the connection's state. While reconnecting, nats.go would
// buffer the message and send it on reconnection, possibly long after;
// laf wants to hear of the failure. A connection lost after this check
// still buffers the message: its round trip then fails, and PublishTo
// says the outcome is unknown.
func (b *Broker) connected(ctx context.Context) error {
	if err := b.usable(ctx); err != nil {
		return err
	}
	if b.nc.IsClosed() {
		return nats.ErrConnectionClosed
	}
	if !b.nc.IsConnected() {
		return ErrDisconnected
	}
	return nil
}

// outcomeError is a publish handed to nats.go whose round trip failed: the
// server may have taken it.
type outcomeError struct{ err error }

func (e *outcomeError) Error() string {
	return "natsbroker: no round trip after the publish, it may have been delivered: " + e.err.Error()
}

func (e *outcomeError) Unwrap() []error { return []error{laf.ErrOutcomeUnknown, e.err} }

// expect returns a new reply subject for PublishTo, subscribing to the
// Broker's inbox the first time.
func (b *Broker) expect() (string, error) {
	b.rmu.Lock()
	defer b.rmu.Unlock()
	if b.respSub == nil {
		b.inbox = b.nc.NewRespInbox()
		b.noResp = make(chan *nats.Msg, 4096)
		sub, err := b.nc.ChanSubscribe(b.inbox+".*", b.noResp)
		if err != nil {
			return "", err
		}
		b.respSub = sub
		b.waiting = make(map[string]bool)
	}
	b.seq++
	reply := b.inbox + "." + strconv.FormatUint(b.seq, 36)
	b.waiting[reply] = false
	return reply, nil
}

// answered reports whether a "no responders" came for reply: it is in
// noResp by now if it came, since the server sends it before the flush's
// reply and nats.go's reader queues it before it reads that.
func (b *Broker) answered(reply string) bool {
	b.rmu.Lock()
	defer b.rmu.Unlock()
	for {
		select {
		case m := <-b.noResp:
			if _, ok := b.waiting[m.Subject]; ok && m.Header.Get("Status") == "503" {
				b.waiting[m.Subject] = true
			}
			continue
		default:
		}
		return b.waiting[reply]
	}
}

func (b *Broker) unexpect(reply string) {
	b.rmu.Lock()
	defer b.rmu.Unlock()
	delete(b.waiting, reply)
}

// Open returns an empty set of subscriptions whose messages go, through
// one Go channel, to fn, one at a time, in the order the connection
// received them, until ctx is done or the Broker is closed.
func (b *Broker) Open(ctx context.Context, fn func(msg []byte)) (laf.Channels, error) {
	if err := b.usable(ctx); err != nil {
		return nil, err
	}
	c := &channels{b: b, ctx: ctx, in: make(chan *nats.Msg, 1<<16), subs: make(map[string]*nats.Subscription)}
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-b.done:
				return
			case m := <-c.in:
				if ctx.Err() == nil {
					fn(m.Data)
				}
			}
		}
	}()
	context.AfterFunc(ctx, c.close)
	return c, nil
}

// channels is one Open's set.
type channels struct {
	b   *Broker
	ctx context.Context
	in  chan *nats.Msg

	mu   sync.Mutex
	subs map[string]*nats.Subscription // by subject
}

// Subscribe subscribes to laf's channel name and waits for the server to
// register it (a flush).
func (c *channels) Subscribe(ctx context.Context, name string) error {
	if err := c.b.usable(ctx); err != nil {
		return err
	}
	subj := c.b.natsSubject(name)
	c.mu.Lock()
	sub := c.subs[subj]
	if sub == nil {
		if err := c.ctx.Err(); err != nil {
			c.mu.Unlock()
			return err
		}
		var err error
		sub, err = c.b.nc.ChanSubscribe(subj, c.in)
		if err != nil {
			c.mu.Unlock()
			return err
		}
		c.subs[subj] = sub
		c.b.track(sub)
	}
	c.mu.Unlock()
	// While disconnected, nats.go accepts the SUB and sends it on
	// reconnection; the flush makes Subscribe fail instead, and laf retry.
	return c.b.flush(ctx)
}

// Unsubscribe unsubscribes from laf's channel name.
func (c *channels) Unsubscribe(ctx context.Context, name string) error {
	subj := c.b.natsSubject(name)
	c.mu.Lock()
	sub := c.subs[subj]
	delete(c.subs, subj)
	c.mu.Unlock()
	if sub == nil {
		return nil
	}
	c.b.untrack(sub)
	return sub.Unsubscribe()
}

func (c *channels) close() {
	c.mu.Lock()
	subs := c.subs
	c.subs = make(map[string]*nats.Subscription)
	c.mu.Unlock()
	for _, sub := range subs {
		c.b.untrack(sub)
		sub.Unsubscribe()
	}
}

func (b *Broker) track(sub *nats.Subscription) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.subs[sub] = struct{}{}
}

func (b *Broker) untrack(sub *nats.Subscription) {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.subs, sub)
}

// SlogErrorHandler returns a nats.ErrorHandler that logs nats.go's
// asynchronous errors (a slow consumer, a permissions violation) to l at
// level Warn. nats.go's connection events have handlers of their own
// (nats.DisconnectErrHandler, nats.ReconnectHandler), which a program
// logs as it likes; examples/cluster does.
func SlogErrorHandler(l *slog.Logger) nats.ErrHandler {
	return func(_ *nats.Conn, sub *nats.Subscription, err error) {
		if sub != nil {
			l.Warn("nats: async error", "subject", sub.Subject, "err", err)
			return
		}
		l.Warn("nats: async error", "err", err)
	}
}

// usable returns ctx's error, or ErrClosed once the Broker is closed.
func (b *Broker) usable(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return ErrClosed
	}
	return nil
}

// flush waits for a round trip to the server, bounded by ctx and the
// Broker's timeout (nats.go insists on a deadline).
func (b *Broker) flush(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, b.timeout)
	defer cancel()
	return b.nc.FlushWithContext(ctx)
}

// Close ends every subscription of the Broker and makes later calls fail
// with ErrClosed. It does not close the connection. Endpoints and
// emitters that use the Broker should be shut down first, so that they
// can say goodbye to the cluster.
func (b *Broker) Close() error {
	b.mu.Lock()
	if !b.closed {
		close(b.done)
	}
	b.closed = true
	subs := b.subs
	b.subs = make(map[*nats.Subscription]struct{})
	b.mu.Unlock()
	for sub := range subs {
		sub.Unsubscribe()
	}
	b.rmu.Lock()
	if b.respSub != nil {
		b.respSub.Unsubscribe()
	}
	b.rmu.Unlock()
	return nil
}
