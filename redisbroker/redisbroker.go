// Package redisbroker is a laf.Broker on Redis pub/sub, through
// go-redis's UniversalClient: one Redis server, Sentinel or Cluster.
//
// Give every process of the cluster a client of the same Redis and the
// same channel name:
//
//	rdb := redis.NewUniversalClient(&redis.UniversalOptions{
//		Addrs:                 []string{"127.0.0.1:6379"},
//		ClientName:            node,                   // as laf.WithNodeName: CLIENT LIST names the node
//		MaxRetries:            -1,                     // no retries: a retried PUBLISH may be delivered twice
//		ContextTimeoutEnabled: true,                   // laf's deadline (WithBrokerTimeout) bounds every command
//		DialTimeout:           500 * time.Millisecond, // a send fails in ~0.5 s, not ~1.7 s, while Redis refuses connections
//	})
//	b := redisbroker.New(rdb)
//	ep := laf.Handler(fn, laf.WithBroker(b), laf.WithNodeName(node))
//
// # Channels
//
// laf's channels are Redis channels named after the Broker's channel:
// "laf" for channel "" (broadcasts, beats, presence queries), and
// "laf:n.NODE", "laf:r.ROOM", "laf:i.IDENTITY" for a node's, a room's and
// an identity's. PublishTo returns PUBLISH's count of subscribers, which
// laf turns into ErrNotFound when it is 0; on a Redis Cluster that count
// is the receiving node's, so use WithSharded there.
//
// Each Open holds one Redis connection of its own, subscribed to every
// channel of its set, and the client runs commands on others. go-redis
// reconnects it and subscribes again to every channel of the set by itself
// when it is lost, and pings it every few seconds so that a half-open
// connection is noticed too.
//
// # Failures
//
// PublishTo gives every PUBLISH a deadline: the context's, which laf sets
// from laf.WithBrokerTimeout, or the Broker's (WithBrokerTimeout) if the
// context has none or a later one. It never retries a PUBLISH, whatever
// the client's MaxRetries says (its command opts out of go-redis's
// retries): a PUBLISH retried after Redis took it is delivered twice.
// Its error says what became of the message, as laf.Broker asks:
//
//   - nothing left for Redis (no connection could be had, Redis refused
//     the connection or answered with an error, the Broker is closed): an
//     error that laf turns into a *laf.BrokerError, so a retry is safe;
//   - the command was written, then the deadline passed or the connection
//     failed before Redis answered (Redis hung, or the network did): an
//     error wrapping laf.ErrOutcomeUnknown. A hung Redis that resumes
//     delivers such a message late.
//
// The deadline covers waiting for Redis's answer only with the client's
// ContextTimeoutEnabled; without it, go-redis waits up to its ReadTimeout
// (3 s by default) instead. While Redis refuses connections each PUBLISH
// dials once (go-redis dials up to DialerRetries times, 5 by default, in
// about 1.7 s with its defaults): lower DialerRetries and DialTimeout, as
// above, to fail fast. Messages published by others while this node's
// subscription is down are lost for it, as laf.Broker allows.
//
// go-redis logs its own troubles (pool and reconnect messages) through
// its internal logger, not slog. Route them into slog with
// redis.SetLogger:
//
//	redis.SetLogger(redisbroker.SlogLogger(logger))
//
// Redis pub/sub delivers every message to every subscriber of the
// channel, in the order each connection published them; it keeps nothing
// for a subscriber that is not connected, and disconnects one that falls
// too far behind (client-output-buffer-limit pubsub), which go-redis then
// reconnects. With a Redis Cluster, classic pub/sub sends every message to
// every node of the Redis cluster; WithSharded uses sharded pub/sub (Redis
// 7) instead, with every channel of the Broker under one hash tag
// ("{laf}:n.NODE"), so that one connection holds them all and their
// traffic stays on the shard that owns the tag.
//
// # History
//
// Broker is a laf.HistoryBroker: with laf.WithHistory, each room's
// published messages are a Redis Stream (Redis 5 or later), its positions
// given by Redis, so that Endpoint.Publish and Socket.JoinSince work the
// same on every node and a node that dies loses no history. One script
// per publish numbers the message, appends it (XADD, MAXLEN ~ the
// history's size; both of the room's keys expire its ttl after its last
// publish) and publishes it to the room's channel, in one round trip; one
// script per recovery reads it back. A room whose keys are gone (expired,
// FLUSHALL, a restart without persistence) starts a new epoch. See
// history.go for the keys.
package redisbroker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lafgo/laf"
	"github.com/redis/go-redis/v9"
)

// DefaultChannel is the Redis channel laf publishes to unless WithChannel
// names another.
const DefaultChannel = "laf"

// DefaultSubscribeTimeout bounds how long a set's Subscribe waits for Redis to
// confirm a subscription unless WithSubscribeTimeout sets another.
const DefaultSubscribeTimeout = 10 * time.Second

// DefaultBrokerTimeout bounds a PUBLISH whose context has no earlier
// deadline, unless WithBrokerTimeout sets another. It matches
// laf.DefaultBrokerTimeout.
const DefaultBrokerTimeout = 2 * time.Second

// ErrClosed is returned by PublishTo and Open after Close.
var ErrClosed = errors.New("redisbroker: broker closed")

// Broker is a laf.Broker on Redis pub/sub channels. Its methods are safe
// for concurrent use.
type Broker struct {
	client           redis.UniversalClient
	channel          string
	sharded          bool
	subscribeTimeout time.Duration
	timeout          time.Duration

	mu     sync.Mutex
	closed bool
	subs   map[*redis.PubSub]struct{}
}

var _ laf.Broker = (*Broker)(nil)

// An Option configures a Broker.
type Option func(*Broker)

// WithChannel sets the Redis channel (default DefaultChannel). Endpoints
// and emitters that share a channel form one cluster; give separate apps
// on one Redis separate channels.
func WithChannel(name string) Option {
	return func(b *Broker) { b.channel = name }
}

// WithSharded uses Redis 7's sharded pub/sub (SPUBLISH and SSUBSCRIBE)
// instead of classic pub/sub. Every process of the cluster must agree on
// it. On a Redis Cluster the channel's messages then stay on the shard
// that owns its slot instead of going to every node.
func WithSharded() Option {
	return func(b *Broker) { b.sharded = true }
}

// WithBrokerTimeout bounds how long PublishTo waits for Redis when its
// context has no earlier deadline (default DefaultBrokerTimeout). laf
// passes a context with its own deadline (laf.WithBrokerTimeout), so this
// matters for other callers.
func WithBrokerTimeout(d time.Duration) Option {
	return func(b *Broker) { b.timeout = d }
}

// WithSubscribeTimeout bounds how long a set's Subscribe waits for Redis to
// confirm the subscription (default DefaultSubscribeTimeout), so that an
// unresponsive server makes it fail, and laf retry, rather than hang.
func WithSubscribeTimeout(d time.Duration) Option {
	return func(b *Broker) { b.subscribeTimeout = d }
}

// New returns a Broker on client, which the caller keeps and closes after
// the Broker's users are done. Any UniversalClient works: *redis.Client,
// a Sentinel failover client or *redis.ClusterClient.
//
// Configure client for at most once delivery and a bounded send (see the
// package example): MaxRetries: -1, so that no command of the client is
// retried after Redis may have taken it (PublishTo's PUBLISH never is,
// whatever MaxRetries says); ContextTimeoutEnabled: true, so that laf's
// deadline bounds the wait for Redis's answer; and ClientName set to the
// node's name (laf.WithNodeName), so that CLIENT LIST tells the nodes'
// connections apart.
func New(client redis.UniversalClient, opts ...Option) *Broker {
	b := &Broker{
		client:           client,
		channel:          DefaultChannel,
		subscribeTimeout: DefaultSubscribeTimeout,
		timeout:          DefaultBrokerTimeout,
		subs:             make(map[*redis.PubSub]struct{}),
	}
	for _, o := range opts {
		o(b)
	}
	return b
}

// Channel returns the Redis channel of laf's channel "".
func (b *Broker) Channel() string { return b.channel }

// redisChannel returns the Redis channel of laf's channel name.
func (b *Broker) redisChannel(name string) string {
	switch {
	case name == "":
		return b.channel
	case b.sharded:
		// One hash tag, so that one connection can hold every channel.
		return "{" + b.channel + "}:" + name
	}
	return b.channel + ":" + name
}

// PublishTo sends msg to every subscriber of laf's channel name and
// returns how many Redis counted. It waits until the context's deadline
// or the Broker's timeout, whichever comes first, never retries, and
// returns an error wrapping laf.ErrOutcomeUnknown if the PUBLISH may have
// reached Redis; see the package doc.
func (b *Broker) PublishTo(ctx context.Context, name string, msg []byte) (int, error) {
	if err := b.usable(); err != nil {
		return 0, err
	}
	ctx, cancel := context.WithTimeout(ctx, b.timeout)
	defer cancel()
	verb := "publish"
	if b.sharded {
		verb = "spublish"
	}
	cmd := &publishCmd{IntCmd: redis.NewIntCmd(ctx, verb, b.redisChannel(name), msg)}
	err := b.client.Process(ctx, cmd)
	if err == nil {
		return int(cmd.Val()), nil
	}
	var rerr redis.Error
	if cmd.written.Load() && !errors.As(err, &rerr) {
		// Written, and no answer from Redis: it may have taken it.
		return 0, &outcomeError{err: err}
	}
	return 0, err
}

// publishCmd is a PUBLISH that go-redis never retries, and that knows
// whether it was written: go-redis asks a command for its arguments when
// it writes it to a connection it holds, and not before for PUBLISH on a
// client without hooks. A hook that asks earlier only makes PublishTo say
// "outcome unknown" of a failure that left nothing, never the reverse.
type publishCmd struct {
	*redis.IntCmd
	written atomic.Bool
}

func (c *publishCmd) Args() []any {
	c.written.Store(true)
	return c.IntCmd.Args()
}

// NoRetry tells go-redis not to retry the command: Redis may have taken
// it already.
func (c *publishCmd) NoRetry() bool { return true }

// outcomeError is a PUBLISH that may have reached Redis.
type outcomeError struct{ err error }

func (e *outcomeError) Error() string {
	return "redisbroker: PUBLISH written but not answered, it may have been delivered: " + e.err.Error()
}

func (e *outcomeError) Unwrap() []error { return []error{laf.ErrOutcomeUnknown, e.err} }

func (b *Broker) usable() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return ErrClosed
	}
	return nil
}

// Open returns an empty set of channels on a connection of its own. Its
// messages go to fn, one at a time, in the order Redis sent them, until
// ctx is done or the Broker or the client is closed.
func (b *Broker) Open(ctx context.Context, fn func(msg []byte)) (laf.Channels, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := b.usable(); err != nil {
		return nil, err
	}
	var ps *redis.PubSub
	if b.sharded {
		// No channel yet: the connection is made on the first
		// SSubscribe, to the shard of the Broker's hash tag.
		ps = b.client.SSubscribe(ctx)
	} else {
		ps = b.client.Subscribe(ctx)
	}
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		ps.Close()
		return nil, ErrClosed
	}
	b.subs[ps] = struct{}{}
	b.mu.Unlock()
	c := &channels{b: b, ps: ps, ctx: ctx, fn: fn, waiters: make(map[string][]chan struct{})}
	context.AfterFunc(ctx, func() { b.release(ps) })
	return c, nil
}

// channels is one Open's set: one PubSub.
type channels struct {
	b     *Broker
	ps    *redis.PubSub
	ctx   context.Context
	fn    func([]byte)
	start sync.Once

	mu      sync.Mutex
	waiters map[string][]chan struct{} // Redis channel → Subscribe calls awaiting its confirmation
}

// Subscribe subscribes to laf's channel name and waits for Redis to
// confirm it, up to the Broker's subscribe timeout.
func (c *channels) Subscribe(ctx context.Context, name string) error {
	if err := c.ctx.Err(); err != nil {
		return err
	}
	if err := c.b.usable(); err != nil {
		return err
	}
	ch := c.b.redisChannel(name)
	confirmed := make(chan struct{})
	c.mu.Lock()
	c.waiters[ch] = append(c.waiters[ch], confirmed)
	c.mu.Unlock()
	defer c.unwait(ch, confirmed)

	sctx, cancel := context.WithTimeout(ctx, c.b.subscribeTimeout)
	defer cancel()
	// go-redis keeps the channel in the set even if the command fails,
	// and subscribes again once it has reconnected.
	var err error
	if c.b.sharded {
		err = c.ps.SSubscribe(sctx, ch)
	} else {
		err = c.ps.Subscribe(sctx, ch)
	}
	if err != nil {
		return err
	}
	c.start.Do(c.receive)
	select {
	case <-confirmed:
		return nil
	case <-sctx.Done():
		return fmt.Errorf("redisbroker: subscribe %q not confirmed: %w", ch, sctx.Err())
	case <-c.ctx.Done():
		return c.ctx.Err()
	}
}

func (c *channels) unwait(ch string, w chan struct{}) {
	c.mu.Lock()
	defer c.mu.Unlock()
	ws := c.waiters[ch]
	for i, x := range ws {
		if x == w {
			ws = append(ws[:i], ws[i+1:]...)
			break
		}
	}
	if len(ws) == 0 {
		delete(c.waiters, ch)
	} else {
		c.waiters[ch] = ws
	}
}

// Unsubscribe unsubscribes from laf's channel name.
func (c *channels) Unsubscribe(ctx context.Context, name string) error {
	if c.b.sharded {
		return c.ps.SUnsubscribe(ctx, c.b.redisChannel(name))
	}
	return c.ps.Unsubscribe(ctx, c.b.redisChannel(name))
}

// receive starts the goroutine that hands messages to fn and
// confirmations to Subscribe. ChannelWithSubscriptions also pings the
// connection, so that a half-open one is replaced.
func (c *channels) receive() {
	in := c.ps.ChannelWithSubscriptions(redis.WithChannelSize(1024))
	go func() {
		for {
			select {
			case <-c.ctx.Done():
				return
			case m, ok := <-in:
				if !ok {
					return // the Broker or the client was closed
				}
				switch m := m.(type) {
				case *redis.Message:
					if c.ctx.Err() == nil {
						c.fn([]byte(m.Payload))
					}
				case *redis.Subscription:
					if m.Kind == "subscribe" || m.Kind == "ssubscribe" {
						c.confirm(m.Channel)
					}
				}
			}
		}
	}()
}

func (c *channels) confirm(ch string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, w := range c.waiters[ch] {
		close(w)
	}
	delete(c.waiters, ch)
}

// SlogLogger returns a logger for redis.SetLogger that writes go-redis's
// own messages (pool and reconnect troubles) to l at level Warn, so that
// they reach the same place as laf's.
func SlogLogger(l *slog.Logger) Logger { return Logger{l} }

// Logger is go-redis's logging interface on a slog.Logger; see
// SlogLogger.
type Logger struct{ l *slog.Logger }

// Printf logs one go-redis message at level Warn.
func (s Logger) Printf(ctx context.Context, format string, v ...any) {
	s.l.WarnContext(ctx, "go-redis: "+fmt.Sprintf(format, v...))
}

// release closes one subscription.
func (b *Broker) release(ps *redis.PubSub) {
	b.mu.Lock()
	delete(b.subs, ps)
	b.mu.Unlock()
	ps.Close()
}

// Close ends every subscription of the Broker and makes later calls fail
// with ErrClosed. It does not close the client. Endpoints and emitters
// that use the Broker should be shut down first, so that they can say
// goodbye to the cluster.
func (b *Broker) Close() error {
	b.mu.Lock()
	b.closed = true
	subs := b.subs
	b.subs = make(map[*redis.PubSub]struct{})
	b.mu.Unlock()
	for ps := range subs {
		ps.Close()
	}
	return nil
}
