package laf

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// A Broker carries messages between the nodes of a cluster: every process
// that serves the same Endpoint behind a load balancer, and any Emitter.
// Adapters for Redis and NATS live in their own modules; NewLocalBroker
// connects endpoints within one process. Messages are laf's own encoding
// and opaque to the broker.
//
// A broker has channels, named by laf. Channel "" is the broker's own
// channel, which every node hears: laf sends broadcasts, beats and
// presence queries there. Each node also has a channel of its own, which
// pushes and closes by socket id go to (a socket's id names its node),
// and, while it holds a member, the channel of each room and identity it
// has sockets in. So a push by id reaches one node, and a send to a room
// reaches only the nodes with members. Adapters map laf's names to the
// engine's (a prefix, a subject token); names are short, of the
// characters [A-Za-z0-9_.-].
//
// Delivery is at most once: a message published while a node is cut off
// from the broker is lost for that node. Messages that one publisher
// publishes to a node arrive in the order it published them, whatever
// their channels, if the broker keeps that order for one connection
// (Redis and NATS do) and the adapter delivers a node's channels from one
// connection in order, as these do. A send whose outcome is unknown
// (OutcomeUnknownError) may arrive late, after sends published later.
type Broker interface {
	// PublishTo sends msg to every subscriber of channel. It returns how
	// many subscriptions the broker handed it to, if the broker can tell
	// (Redis counts them; NATS says 0 or 1, for none or some), or -1 if it
	// cannot. laf relies on 0 being true: nothing was delivered.
	//
	// It returns by ctx's deadline, which laf sets from WithBrokerTimeout.
	// An error says what became of the message: one that wraps
	// ErrOutcomeUnknown if the message may have reached the broker (the
	// deadline passed, or the connection failed, after it was written), and
	// any other error only if nothing left for the broker (not connected,
	// connection refused, the broker refused the command). An adapter must
	// not retry a publish that may have left: delivery is at most once.
	PublishTo(ctx context.Context, channel string, msg []byte) (receivers int, err error)
	// Open starts a set of subscriptions, empty at first, whose channels
	// change while it runs (Channels), and calls fn with every message
	// published to any of them, one call at a time, in the order the
	// broker delivered them, until ctx is done; fn owns msg. The broker
	// reconnects by itself, and subscribes again to every channel the set
	// holds, whenever its connection is lost.
	Open(ctx context.Context, fn func(msg []byte)) (Channels, error)
}

// Channels is a set of a broker's channels that one Open subscribed to.
// Its methods are safe for concurrent use.
type Channels interface {
	// Subscribe adds channel to the set. It returns once the broker has
	// confirmed the subscription, so that a message published afterwards
	// by anyone is delivered; or with an error, after which the adapter
	// may still subscribe once reconnected, and calling it again is safe.
	Subscribe(ctx context.Context, channel string) error
	// Unsubscribe removes channel from the set. Messages already on their
	// way may still arrive.
	Unsubscribe(ctx context.Context, channel string) error
}

// A BrokerError is returned by a send that did not leave for other
// nodes: the broker refused it, or was not connected, or had no
// subscriber for it (Err is then ErrNoSubscriber). Nothing reached another
// node, so retrying is safe for them; but Local is how many of this
// node's sockets the message was queued on all the same (Broadcast,
// SendRoom and SendIdentity serve local sockets first): retrying the
// whole send would give those the message twice. Unwrap returns the
// broker's error.
type BrokerError struct {
	Local int
	Err   error
}

func (e *BrokerError) Error() string {
	return fmt.Sprintf("laf: broker: %v (delivered to %d local sockets)", e.Err, e.Local)
}

func (e *BrokerError) Unwrap() error { return e.Err }

// An OutcomeUnknownError is returned by a send to other nodes whose
// outcome is unknown: the broker timeout (WithBrokerTimeout) passed, or
// the connection failed, after the message may have left for the broker.
// It may have been delivered, now or once a hung broker resumes, or not.
// errors.Is(err, ErrOutcomeUnknown) is true for it. Retrying may deliver
// the message twice; not retrying may lose it: retry only what is safe
// to receive twice. Local is how many of this node's sockets had the
// message already, as for BrokerError. Unwrap returns the broker's error.
type OutcomeUnknownError struct {
	Local int
	Err   error
}

func (e *OutcomeUnknownError) Error() string {
	return fmt.Sprintf("laf: broker: outcome unknown: %v (delivered to %d local sockets)", e.Err, e.Local)
}

func (e *OutcomeUnknownError) Unwrap() error { return e.Err }

// Is reports whether target is ErrOutcomeUnknown.
func (e *OutcomeUnknownError) Is(target error) bool { return target == ErrOutcomeUnknown }

// WithBroker makes the Endpoint one node of a cluster joined by b: sends
// by id, room, identity and broadcast, and CloseSocket, reach sockets on
// every node, and Presence counts them all. Local sockets are served
// without a round trip through the broker.
func WithBroker(b Broker) Option {
	return option(func(c *config) { c.broker = b })
}

// WithHeartbeat sets how often a node publishes its beat, a summary of a
// few bytes (default DefaultHeartbeat, 5 s); every half heartbeat it also
// probes the broker with a ping to its own channel. A node not heard from
// for three heartbeats, counted while this node hears its own probes, is
// dropped from presence and sends to its sockets answer ErrNotFound: so
// a node that dies without saying goodbye disappears within 3×d plus the
// broker's latency. Until then a send to a node whose channel the broker
// has no subscriber for (a killed process, or one reconnecting) answers a
// *BrokerError with ErrNoSubscriber: nothing was delivered. A node is not
// ready (Endpoint.Ready) while its probes fail or go unanswered for half
// a heartbeat. Every node and Emitter of a cluster must use the same d.
// Zero or less means the default.
func WithHeartbeat(d time.Duration) EmitterOption {
	return sharedOption(func(c *config) { c.heartbeat = d })
}

// WithBrokerTimeout bounds how long a send to other nodes, a presence
// query, a beat or a subscription waits for the broker (default
// DefaultBrokerTimeout, 2 s): keep it well under a proxy's or a caller's
// timeout. A send that passes it answers a *BrokerError if nothing had
// left for the broker, else an *OutcomeUnknownError. Zero or less means
// the default.
func WithBrokerTimeout(d time.Duration) EmitterOption {
	return sharedOption(func(c *config) { c.brokerTimeout = d })
}

// WithNodeName names this node (default: its random id): the name is in
// every log line of the cluster ("node"), in Stats.Node, and in the beats
// that tell other nodes of it, whose logs name it ("peer"). Give the
// broker's connection the same name (redis.Options.ClientName,
// nats.Name), so that the broker's own monitoring names it too. Names
// need not be unique; the node's id, in its socket ids, is.
func WithNodeName(name string) EmitterOption {
	return sharedOption(func(c *config) { c.nodeName = name })
}

// LocalBroker is an in-process Broker: it connects endpoints and emitters
// in one process, for tests and for running several endpoints as one. It
// delivers synchronously, in publish order, and never fails.
type LocalBroker struct {
	mu    sync.RWMutex
	chans map[string]map[*localSub]struct{}
	hist  localHistory // see localbroker_history.go
}

// localSub is one Open's set of channels.
type localSub struct {
	b      *LocalBroker
	ctx    context.Context
	mu     sync.Mutex // one call of fn at a time
	fn     func([]byte)
	joined map[string]struct{} // guarded by b.mu
}

// NewLocalBroker returns an in-process broker.
func NewLocalBroker() *LocalBroker {
	return &LocalBroker{chans: make(map[string]map[*localSub]struct{})}
}

// PublishTo calls every subscriber of channel with its own copy of msg,
// and returns how many there were.
func (b *LocalBroker) PublishTo(ctx context.Context, channel string, msg []byte) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	b.mu.RLock()
	defer b.mu.RUnlock()
	set := b.chans[channel]
	for s := range set {
		s.deliver(msg)
	}
	return len(set), nil
}

func (s *localSub) deliver(msg []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ctx.Err() == nil {
		s.fn(append([]byte(nil), msg...))
	}
}

// Open returns an empty set of channels that calls fn until ctx is done.
func (b *LocalBroker) Open(ctx context.Context, fn func([]byte)) (Channels, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s := &localSub{b: b, ctx: ctx, fn: fn, joined: make(map[string]struct{})}
	context.AfterFunc(ctx, func() {
		b.mu.Lock()
		defer b.mu.Unlock()
		for ch := range s.joined {
			b.leave(s, ch)
		}
	})
	return s, nil
}

// Subscribe adds channel to the set.
func (s *localSub) Subscribe(ctx context.Context, channel string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	b := s.b
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := s.ctx.Err(); err != nil {
		return err
	}
	set := b.chans[channel]
	if set == nil {
		set = make(map[*localSub]struct{})
		b.chans[channel] = set
	}
	set[s] = struct{}{}
	s.joined[channel] = struct{}{}
	return nil
}

// Unsubscribe removes channel from the set.
func (s *localSub) Unsubscribe(ctx context.Context, channel string) error {
	s.b.mu.Lock()
	defer s.b.mu.Unlock()
	s.b.leave(s, channel)
	return nil
}

// leave removes s from channel. b.mu is held.
func (b *LocalBroker) leave(s *localSub, channel string) {
	delete(s.joined, channel)
	if set := b.chans[channel]; set != nil {
		delete(set, s)
		if len(set) == 0 {
			delete(b.chans, channel)
		}
	}
}
