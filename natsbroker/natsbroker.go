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
//		nats.MaxReconnects(-1),                   // never give up
//		nats.ReconnectWait(250*time.Millisecond), // retry soon
//		nats.RetryOnFailedConnect(true),          // start before NATS is up
//	)
//	b := natsbroker.New(nc)
//	ep := laf.Handler(fn, laf.WithBroker(b))
//
// When the connection is lost, nats.go reconnects and subscribes again by
// itself. Messages published by others in the meantime are lost for this
// node, as laf.Broker allows. Publish refuses while the connection is
// down instead of letting nats.go buffer the message for later, so that
// laf counts the failure (Stats.PublishErrors) and a push is not delivered
// long after its sender gave up on it.
//
// NATS core delivers every message to every subscriber of the subject, in
// the order each connection published them. Messages are limited to the
// server's max_payload (1 MiB by default); a subscriber that falls behind
// by more than its pending limits (nats.go's defaults: 500,000 messages
// or 64 MiB) loses messages, which nats.go reports to the connection's
// error handler as a slow consumer.
package natsbroker

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
)

// DefaultSubject is the NATS subject laf publishes to unless WithSubject
// names another.
const DefaultSubject = "laf"

// DefaultFlushTimeout bounds the round trips that Subscribe, and Publish
// under WithPublishFlush, wait for, unless WithFlushTimeout sets another.
const DefaultFlushTimeout = 5 * time.Second

var (
	// ErrClosed is returned by Publish and Subscribe after Close.
	ErrClosed = errors.New("natsbroker: broker closed")
	// ErrDisconnected is returned by Publish while the connection is down
	// and nats.go is reconnecting.
	ErrDisconnected = errors.New("natsbroker: not connected to NATS")
)

// Broker is a laf.Broker on one NATS subject. Its methods are safe for
// concurrent use.
type Broker struct {
	nc           *nats.Conn
	subject      string
	flushTimeout time.Duration
	flushPublish bool

	mu     sync.Mutex
	closed bool
	subs   map[*nats.Subscription]struct{}
}

// An Option configures a Broker.
type Option func(*Broker)

// WithSubject sets the NATS subject (default DefaultSubject). Endpoints
// and emitters that share a subject form one cluster; give separate apps
// on one NATS system separate subjects.
func WithSubject(subject string) Option {
	return func(b *Broker) { b.subject = subject }
}

// WithFlushTimeout bounds how long Subscribe waits for the server to
// register a subscription, and Publish for its round trip under
// WithPublishFlush, when the context has no earlier deadline (default
// DefaultFlushTimeout).
func WithFlushTimeout(d time.Duration) Option {
	return func(b *Broker) { b.flushTimeout = d }
}

// WithPublishFlush makes Publish wait for a round trip to the server
// after each message, so that it returns an error unless the server has
// taken the message. Each send then waits a round trip, which on a busy
// process costs far more than the publish (examples/cluster's
// clusterbench measures it). By default Publish returns once the message
// is in nats.go's write buffer, which nats.go flushes within
// microseconds; a connection that fails in between loses it silently.
func WithPublishFlush() Option {
	return func(b *Broker) { b.flushPublish = true }
}

// New returns a Broker on nc, which the caller keeps and closes after the
// Broker's users are done. See the package doc for the reconnect options
// nc needs.
func New(nc *nats.Conn, opts ...Option) *Broker {
	b := &Broker{
		nc:           nc,
		subject:      DefaultSubject,
		flushTimeout: DefaultFlushTimeout,
		subs:         make(map[*nats.Subscription]struct{}),
	}
	for _, o := range opts {
		o(b)
	}
	return b
}

// Subject returns the NATS subject the Broker publishes to.
func (b *Broker) Subject() string { return b.subject }

// Publish sends msg to every subscriber of the subject, this process's
// included. It returns ErrDisconnected while the connection is down,
// nats.go's error if it refused the message (closed connection, message
// over max_payload), and with WithPublishFlush the error of the round
// trip.
func (b *Broker) Publish(ctx context.Context, msg []byte) error {
	if err := b.usable(ctx); err != nil {
		return err
	}
	// While reconnecting, nats.go would buffer the message and send it on
	// reconnection, possibly long after; laf wants to hear of the failure.
	// A connection lost after this check still buffers; that is rare, and
	// the message then arrives late rather than never.
	if b.nc.IsClosed() {
		return nats.ErrConnectionClosed
	}
	if !b.nc.IsConnected() {
		return ErrDisconnected
	}
	if err := b.nc.Publish(b.subject, msg); err != nil {
		return err
	}
	if b.flushPublish {
		return b.flush(ctx)
	}
	return nil
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
// flush timeout (nats.go insists on a deadline).
func (b *Broker) flush(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, b.flushTimeout)
	defer cancel()
	return b.nc.FlushWithContext(ctx)
}

// Subscribe subscribes to the subject and returns once the server has
// registered the subscription (a round trip after the SUB), or with the
// error that prevented it. From then on nats.go calls fn from one
// goroutine, one message at a time, with a message that fn owns, until
// ctx is done or the Broker or the connection is closed. When the
// connection is lost, nats.go reconnects and subscribes again by itself,
// as long as its reconnect options let it.
func (b *Broker) Subscribe(ctx context.Context, fn func(msg []byte)) error {
	if err := b.usable(ctx); err != nil {
		return err
	}
	// nats.go gives each message its own copy of the payload, so fn owns
	// m.Data.
	sub, err := b.nc.Subscribe(b.subject, func(m *nats.Msg) {
		if ctx.Err() == nil {
			fn(m.Data)
		}
	})
	if err != nil {
		return err
	}
	// While disconnected, nats.go accepts the SUB and sends it on
	// reconnection; the flush makes Subscribe fail instead, and laf retry.
	if err := b.flush(ctx); err != nil {
		sub.Unsubscribe()
		return err
	}

	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		sub.Unsubscribe()
		return ErrClosed
	}
	b.subs[sub] = struct{}{}
	b.mu.Unlock()
	context.AfterFunc(ctx, func() {
		b.mu.Lock()
		delete(b.subs, sub)
		b.mu.Unlock()
		sub.Unsubscribe()
	})
	return nil
}

// Close ends every subscription of the Broker and makes later calls fail
// with ErrClosed. It does not close the connection. Endpoints and
// emitters that use the Broker should be shut down first, so that they
// can say goodbye to the cluster.
func (b *Broker) Close() error {
	b.mu.Lock()
	b.closed = true
	subs := b.subs
	b.subs = make(map[*nats.Subscription]struct{})
	b.mu.Unlock()
	for sub := range subs {
		sub.Unsubscribe()
	}
	return nil
}
