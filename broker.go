package laf

import (
	"context"
	"sync"
	"time"
)

// A Broker carries messages between the nodes of a cluster: every process
// that serves the same Endpoint behind a load balancer, and any Emitter.
// laf uses it to deliver sends by socket id, room, identity and
// broadcast to sockets on other nodes, and to share presence. Adapters for
// Redis and NATS live in their own modules; NewLocalBroker connects
// endpoints within one process.
//
// laf publishes to one channel per broker; an adapter picks the channel's
// name. Messages are laf's own encoding and opaque to the broker.
//
// Delivery is at most once: a message published while a node is cut off
// from the broker is lost for that node. Messages from one publisher
// arrive in the order it published them, if the broker keeps that order
// (Redis and NATS do, for one connection).
type Broker interface {
	// Publish sends msg to every subscriber of the broker, including the
	// publisher's own. It returns an error if the message could not be
	// handed to the broker.
	Publish(ctx context.Context, msg []byte) error
	// Subscribe calls fn with every message published from the time it
	// returns, one call at a time, until ctx is done; fn owns msg. It
	// returns once the subscription is active, or the error that stopped
	// it. After that the broker reconnects and resubscribes by itself
	// whenever its connection is lost.
	Subscribe(ctx context.Context, fn func(msg []byte)) error
}

// WithBroker makes the Endpoint one node of a cluster joined by b: sends
// by id, room, identity and broadcast, and CloseSocket, reach sockets on
// every node, and Presence counts them all. Local sockets are served
// without a round trip through the broker.
func WithBroker(b Broker) Option {
	return option(func(c *config) { c.broker = b })
}

// WithHeartbeat sets how often a node publishes its presence (default
// DefaultHeartbeat, 5 s). A node not heard from for three heartbeats is
// dropped from presence, so a node that dies without saying goodbye
// disappears within 3×d plus the broker's latency. Zero or less means the
// default.
func WithHeartbeat(d time.Duration) EmitterOption {
	return sharedOption(func(c *config) { c.heartbeat = d })
}

// LocalBroker is an in-process Broker: it connects endpoints and emitters
// in one process, for tests and for running several endpoints as one. It
// delivers synchronously, in publish order.
type LocalBroker struct {
	mu   sync.RWMutex
	subs map[*localSub]struct{}
}

type localSub struct {
	mu sync.Mutex
	fn func([]byte)
}

// NewLocalBroker returns an in-process broker.
func NewLocalBroker() *LocalBroker {
	return &LocalBroker{subs: make(map[*localSub]struct{})}
}

// Publish calls every subscriber with its own copy of msg.
func (b *LocalBroker) Publish(ctx context.Context, msg []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	b.mu.RLock()
	defer b.mu.RUnlock()
	for s := range b.subs {
		s.mu.Lock()
		s.fn(append([]byte(nil), msg...))
		s.mu.Unlock()
	}
	return nil
}

// Subscribe adds fn until ctx is done.
func (b *LocalBroker) Subscribe(ctx context.Context, fn func([]byte)) error {
	s := &localSub{fn: fn}
	b.mu.Lock()
	b.subs[s] = struct{}{}
	b.mu.Unlock()
	context.AfterFunc(ctx, func() {
		b.mu.Lock()
		delete(b.subs, s)
		b.mu.Unlock()
	})
	return nil
}
