package laf

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lafgo/laf/internal/wire"
)

// The cluster code, by concern, each part owning its state and lock:
//
//	cluster.go     the node: its name and id, joining, the loop that beats
//	               and probes, receiving from the broker, leaving
//	health.go      readiness: is the broker taking and echoing this node's messages
//	membership.go  the other nodes and failure detection
//	interest.go    the room and identity channels this node holds
//	routing.go     channel names, publishing sends, and what their answers mean
//	queries.go     presence questions to other nodes and their answers

// DefaultPresenceTimeout bounds the presence methods that ask other nodes
// (Presence.Online, RoomMembers, IdentitySockets) when called without a
// context.
const DefaultPresenceTimeout = 2 * time.Second

// ErrNotReady is returned by Endpoint.Ready and Emitter.Ready while the
// node is not, or no longer, connected to its cluster; the error says why.
var ErrNotReady = errors.New("laf: not connected to the cluster")

// cluster is a node's part in a cluster through a Broker. It publishes
// sends to the channels of nodes, rooms and identities (routing.go),
// holds the channels of this node and of its rooms and identities
// (interest.go), answers and asks presence queries (queries.go), keeps a
// beat's summary of every other node (membership.go), and knows whether
// the broker hears it (health.go).
type cluster struct {
	id        string // this process's id, in socket ids and channels
	name      string // this node's name, for people: logs, Stats, beats
	broker    Broker
	ep        *Endpoint // nil for an Emitter
	heartbeat time.Duration
	timeout   time.Duration // WithBrokerTimeout
	logger    *slog.Logger  // with the node's name

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	ready  chan struct{} // closed once this node's channels are held
	chans  Channels      // set before ready is closed

	beatWake  chan struct{} // the socket count changed: beat soon
	probeWake chan struct{} // the broker took a publish after trouble: probe now
	rejoined  chan struct{} // this node hears itself again: ask for beats

	health   health
	members  membership
	interest interests
	queries  queries
	fails    failLog

	stopMu  sync.Mutex
	stopped bool

	publishErrors  atomic.Uint64 // sends that failed for other nodes
	publishUnknown atomic.Uint64 // of those, with an unknown outcome
}

// DefaultBrokerTimeout is how long a send waits for the broker unless
// WithBrokerTimeout says otherwise.
const DefaultBrokerTimeout = 2 * time.Second

func newCluster(b Broker, ep *Endpoint, cfg *config) *cluster {
	ctx, cancel := context.WithCancel(context.Background())
	id := newNodeID()
	name := cfg.nodeName
	if name == "" {
		name = id
	}
	timeout := cfg.brokerTimeout
	if timeout <= 0 {
		timeout = DefaultBrokerTimeout
	}
	logger := cfg.logger.With("node", name)
	c := &cluster{
		id:        id,
		name:      name,
		broker:    b,
		ep:        ep,
		heartbeat: cfg.heartbeat,
		timeout:   timeout,
		logger:    logger,
		ctx:       ctx,
		cancel:    cancel,
		ready:     make(chan struct{}),
		beatWake:  make(chan struct{}, 1),
		probeWake: make(chan struct{}, 1),
		rejoined:  make(chan struct{}, 1),
	}
	c.health.init(cfg.heartbeat)
	c.members.init(cfg.heartbeat, logger)
	c.interest.init()
	c.queries.init()
	c.fails.every = 10 * time.Second
	if ep != nil {
		// Socket ids name their node, so that a push by id goes to that
		// node's channel alone.
		ep.reg.idPrefix = c.id + "."
	}
	c.wg.Add(1)
	go c.run()
	return c
}

// run holds this node's channels, retrying until it can, then beats every
// heartbeat and probes the broker every half heartbeat.
func (c *cluster) run() {
	defer c.wg.Done()
	if !c.join() {
		return
	}
	if c.ep != nil {
		c.wg.Add(1)
		go c.reconcile()
	}
	// Ask every node to beat now rather than at its next heartbeat.
	c.publishFor(allChannel, &wire.Envelope{Op: wire.OpSync})
	beat := time.NewTicker(c.heartbeat)
	defer beat.Stop()
	probe := time.NewTicker(c.heartbeat / 2)
	defer probe.Stop()
	debounce := min(max(c.heartbeat/10, 10*time.Millisecond), 500*time.Millisecond)
	c.beat()
	c.probe()
	for {
		select {
		case <-c.ctx.Done():
			return
		case <-beat.C:
			c.beat()
		case <-probe.C:
			c.probe()
			c.expire()
		case <-c.probeWake:
			// The broker takes publishes again: see at once whether it
			// echoes, rather than at the next tick.
			c.probe()
		case <-c.rejoined:
			c.publishFor(allChannel, &wire.Envelope{Op: wire.OpSync})
			c.beat()
		case <-c.beatWake:
			// Coalesce a burst of changes into one beat.
			select {
			case <-c.ctx.Done():
				return
			case <-time.After(debounce):
			}
			c.beat()
		}
	}
}

// join opens the broker's channels and subscribes to channel "" and this
// node's own, retrying until it works or the cluster stops.
func (c *cluster) join() bool {
	var chans Channels
	for backoff := 50 * time.Millisecond; ; backoff = min(2*backoff, c.heartbeat) {
		err := c.ctx.Err()
		if err == nil && chans == nil {
			chans, err = c.broker.Open(c.ctx, c.receive)
		}
		if err == nil {
			err = c.subscribe(chans, allChannel)
		}
		if err == nil {
			err = c.subscribe(chans, nodeChannel(c.id))
		}
		if err == nil {
			break
		}
		if c.ctx.Err() != nil {
			return false
		}
		c.health.joinFailed(err)
		c.logger.Warn("laf: broker subscribe failed; retrying", "err", err, "in", backoff)
		select {
		case <-c.ctx.Done():
			return false
		case <-time.After(backoff):
		}
	}
	c.chans = chans
	now := time.Now()
	c.members.rejoin(now)
	c.health.joined(now)
	close(c.ready)
	c.logger.Info("laf: joined the cluster", "id", c.id)
	return true
}

func (c *cluster) subscribe(chans Channels, channel string) error {
	ctx, cancel := context.WithTimeout(c.ctx, max(c.timeout, time.Second))
	defer cancel()
	return chans.Subscribe(ctx, channel)
}

// beat publishes this node's summary, with its name, to every node.
func (c *cluster) beat() {
	if c.ep == nil {
		return
	}
	c.publishFor(allChannel, &wire.Envelope{Op: wire.OpBeat, Target: c.name, Count: uint64(c.ep.Len())})
}

// probe publishes a numbered ping to this node's own channel: the broker
// must take it (a publish that counts its subscribers) and echo it back
// within half a heartbeat, or the node is not ready (health.go).
func (c *cluster) probe() {
	seq := c.health.probing(time.Now())
	c.publishFor(nodeChannel(c.id), &wire.Envelope{Op: wire.OpPing, Query: seq})
}

// expire drops nodes silent for three heartbeats, counted only while
// this node hears itself.
func (c *cluster) expire() {
	now := time.Now()
	since, hearing := c.health.hearing(now)
	for _, id := range c.members.expire(now, since, hearing) {
		c.queries.unwait(id)
	}
}

// publishFor publishes one of the cluster's own messages, bounded by the
// broker timeout (publish sets it: a failure at that deadline is the
// broker's, not a caller's that gave up) and the cluster's life.
func (c *cluster) publishFor(channel string, env *wire.Envelope) {
	c.publish(c.ctx, channel, env)
}

// receive handles a message from the broker. It runs on the adapter's
// delivery goroutine, so it never waits for the broker.
func (c *cluster) receive(msg []byte) {
	env, err := wire.Decode(msg)
	if err != nil {
		c.logger.Warn("laf: bad message from broker", "err", err)
		return
	}
	if env.Origin == c.id {
		if env.Op == wire.OpPing {
			c.heardSelf(env.Query)
		}
		return // sends were served locally when they were sent
	}
	switch env.Op {
	case wire.OpBeat:
		c.members.heard(env.Origin, env.Target, int(env.Count), time.Now())
	case wire.OpBye:
		if c.members.forget(env.Origin) {
			c.queries.unwait(env.Origin)
		}
	case wire.OpSync:
		if c.ep != nil {
			c.beatSoon()
		}
	case wire.OpAskOnline, wire.OpAskRoom, wire.OpAskIdentity:
		if c.ep != nil {
			c.spawn(func() { c.answer(env) })
		}
	case wire.OpReply:
		c.queries.replied(env)
	case wire.OpPing:
	default:
		if c.ep != nil {
			c.ep.deliverLocal(env)
		}
	}
}

// heardSelf takes the echo of probe seq. If this node had stopped hearing
// itself, the other nodes' silence meanwhile was not theirs: they get a
// fresh three heartbeats, and every node is asked to beat now.
func (c *cluster) heardSelf(seq uint64) {
	now := time.Now()
	if c.health.troubled(now) {
		// Before the echo ends the trouble, so that no send trusts the
		// broker's count of a room's subscribers before the other nodes
		// have beaten again.
		c.members.rejoin(now)
	}
	gap, back := c.health.echoed(seq, now)
	if !back {
		return
	}
	c.logger.Info("laf: hearing the broker again", "after", gap.Round(time.Millisecond))
	select {
	case c.rejoined <- struct{}{}:
	default:
	}
}

func (c *cluster) probeSoon() {
	select {
	case c.probeWake <- struct{}{}:
	default:
	}
}

func (c *cluster) beatSoon() {
	select {
	case c.beatWake <- struct{}{}:
	default:
	}
}

// spawn runs fn on a goroutine that stop waits for, unless stopping.
func (c *cluster) spawn(fn func()) {
	c.stopMu.Lock()
	defer c.stopMu.Unlock()
	if c.stopped {
		return
	}
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		fn()
	}()
}

// stop stops every goroutine, then says goodbye, so other nodes forget
// this one at once, and for good: nothing this node publishes can follow
// its goodbye.
func (c *cluster) stop() {
	c.stopMu.Lock()
	c.stopped = true
	c.stopMu.Unlock()
	c.cancel()
	c.wg.Wait()
	if c.ep == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), min(c.timeout, time.Second))
	defer cancel()
	env := &wire.Envelope{Op: wire.OpBye, Origin: c.id}
	if _, err := c.broker.PublishTo(ctx, allChannel, wire.Append(nil, env)); err != nil {
		c.logger.Warn("laf: goodbye not published; other nodes drop this one within three heartbeats", "err", err)
		return
	}
	c.logger.Info("laf: left the cluster")
}
