// Package redisbroker is a laf.Broker on Redis pub/sub, through
// go-redis's UniversalClient: one Redis server, Sentinel or Cluster.
//
// Give every process of the cluster a client of the same Redis and the
// same channel name:
//
//	rdb := redis.NewUniversalClient(&redis.UniversalOptions{Addrs: []string{"127.0.0.1:6379"}})
//	b := redisbroker.New(rdb)
//	ep := laf.Handler(fn, laf.WithBroker(b))
//
// Each Subscribe holds one Redis connection of its own, apart from those
// the client runs commands on. go-redis reconnects it and subscribes again by itself
// when it is lost, and pings it every few seconds so that a half-open
// connection is noticed too. While Redis is unreachable, Publish returns
// go-redis's error, and messages published by others in that time are lost
// for this node, as laf.Broker allows. With go-redis's defaults (3 command
// retries, 5 dial attempts each) a Publish takes about 1.7 s to fail while
// Redis refuses connections, and every send through the broker waits that
// long; lower the client's MaxRetries and DialerRetries, or give sends a
// context deadline, to fail sooner.
//
// Redis pub/sub delivers every message to every subscriber of the
// channel, in the order each connection published them; it keeps nothing
// for a subscriber that is not connected, and disconnects one that falls
// too far behind (client-output-buffer-limit pubsub), which go-redis then
// reconnects. With a Redis Cluster, classic
// pub/sub sends every message to every node of the Redis cluster;
// WithSharded uses sharded pub/sub (Redis 7) instead, which keeps the
// channel's traffic on the shard that owns it.
package redisbroker

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// DefaultChannel is the Redis channel laf publishes to unless WithChannel
// names another.
const DefaultChannel = "laf"

// DefaultSubscribeTimeout bounds how long Subscribe waits for Redis to
// confirm a subscription unless WithSubscribeTimeout sets another.
const DefaultSubscribeTimeout = 10 * time.Second

// ErrClosed is returned by Publish and Subscribe after Close.
var ErrClosed = errors.New("redisbroker: broker closed")

// Broker is a laf.Broker on one Redis pub/sub channel. Its methods are
// safe for concurrent use.
type Broker struct {
	client           redis.UniversalClient
	channel          string
	sharded          bool
	subscribeTimeout time.Duration

	mu     sync.Mutex
	closed bool
	subs   map[*redis.PubSub]struct{}
}

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

// WithSubscribeTimeout bounds how long Subscribe waits for Redis to
// confirm the subscription (default DefaultSubscribeTimeout), so that an
// unresponsive server makes it fail, and laf retry, rather than hang.
func WithSubscribeTimeout(d time.Duration) Option {
	return func(b *Broker) { b.subscribeTimeout = d }
}

// New returns a Broker on client, which the caller keeps and closes after
// the Broker's users are done. Any UniversalClient works: *redis.Client,
// a Sentinel failover client or *redis.ClusterClient.
func New(client redis.UniversalClient, opts ...Option) *Broker {
	b := &Broker{
		client:           client,
		channel:          DefaultChannel,
		subscribeTimeout: DefaultSubscribeTimeout,
		subs:             make(map[*redis.PubSub]struct{}),
	}
	for _, o := range opts {
		o(b)
	}
	return b
}

// Channel returns the Redis channel the Broker publishes to.
func (b *Broker) Channel() string { return b.channel }

// Publish sends msg to every subscriber of the channel, this process's
// included. It returns once Redis has taken the message, or with the error
// that stopped it (go-redis retries a failed command as its options say),
// or ctx's error.
func (b *Broker) Publish(ctx context.Context, msg []byte) error {
	b.mu.Lock()
	closed := b.closed
	b.mu.Unlock()
	if closed {
		return ErrClosed
	}
	if b.sharded {
		return b.client.SPublish(ctx, b.channel, msg).Err()
	}
	return b.client.Publish(ctx, b.channel, msg).Err()
}

// Subscribe subscribes to the channel and returns once Redis has
// confirmed the subscription, or with the error that prevented it. From
// then on it calls fn from one goroutine, one message at a time, with a
// copy of each message that fn owns, until ctx is done or the Broker or
// the client is closed. When the connection is lost, go-redis reconnects
// and subscribes again by itself; messages published meanwhile are lost.
func (b *Broker) Subscribe(ctx context.Context, fn func(msg []byte)) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	// The subscribe command and its confirmation get a deadline: go-redis
	// waits for a pub/sub reply with none, and laf passes a context that
	// has none.
	sctx, cancel := context.WithTimeout(ctx, b.subscribeTimeout)
	defer cancel()
	var ps *redis.PubSub
	if b.sharded {
		ps = b.client.SSubscribe(sctx, b.channel)
	} else {
		ps = b.client.Subscribe(sctx, b.channel)
	}
	// go-redis drops the subscribe command's error; the first reply is
	// the confirmation or that error.
	reply, err := ps.Receive(sctx)
	if err == nil {
		if _, ok := reply.(*redis.Subscription); !ok {
			err = errors.New("redisbroker: unexpected reply to subscribe")
		}
	}
	if err != nil {
		ps.Close()
		return err
	}

	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		ps.Close()
		return ErrClosed
	}
	b.subs[ps] = struct{}{}
	b.mu.Unlock()

	// Channel, unlike a loop over Receive, also pings the connection so
	// that a half-open one is replaced. Its buffer absorbs bursts while fn
	// runs; go-redis drops a message only if fn falls a minute behind.
	ch := ps.Channel(redis.WithChannelSize(1024))
	stop := context.AfterFunc(ctx, func() { b.release(ps) })
	go func() {
		defer func() {
			if stop() { // ended by a closed channel, not by ctx
				b.release(ps)
			}
		}()
		for {
			select {
			case <-ctx.Done():
				return
			case m, ok := <-ch:
				if !ok {
					return // the Broker or the client was closed
				}
				if ctx.Err() != nil {
					return
				}
				fn([]byte(m.Payload))
			}
		}
	}()
	return nil
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
