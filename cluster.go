package laf

import (
	"context"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lafgo/laf/internal/wire"
)

// cluster is a node's view of the others through a Broker: it publishes
// sends and presence, delivers what other nodes publish to the local
// Endpoint (if any), and keeps every node's presence.
type cluster struct {
	id        string
	broker    Broker
	ep        *Endpoint // nil for an Emitter
	heartbeat time.Duration
	logger    *slog.Logger

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	outbox chan *wire.Envelope // presence changes, published in order

	mu    sync.RWMutex
	nodes map[string]*nodeState // other nodes, by id

	publishErrors atomic.Uint64 // sends the broker did not take
	cutOff        atomic.Bool   // the last publish failed
}

// nodeState is another node's presence.
type nodeState struct {
	seen       time.Time
	sockets    map[string]*wire.Socket
	identities map[string]int
	rooms      map[string]map[string]struct{}
}

func newNodeState() *nodeState {
	return &nodeState{
		sockets:    make(map[string]*wire.Socket),
		identities: make(map[string]int),
		rooms:      make(map[string]map[string]struct{}),
	}
}

func (n *nodeState) add(s wire.Socket) {
	n.remove(s.ID)
	n.sockets[s.ID] = &s
	if s.Identity != "" {
		n.identities[s.Identity]++
	}
	for _, r := range s.Rooms {
		n.join(s.ID, r)
	}
}

func (n *nodeState) remove(id string) {
	s, ok := n.sockets[id]
	if !ok {
		return
	}
	delete(n.sockets, id)
	if s.Identity != "" {
		if n.identities[s.Identity]--; n.identities[s.Identity] <= 0 {
			delete(n.identities, s.Identity)
		}
	}
	for _, r := range s.Rooms {
		n.leave(id, r)
	}
}

func (n *nodeState) join(id, room string) {
	members := n.rooms[room]
	if members == nil {
		members = make(map[string]struct{})
		n.rooms[room] = members
	}
	members[id] = struct{}{}
	if s := n.sockets[id]; s != nil && !slices.Contains(s.Rooms, room) {
		s.Rooms = append(s.Rooms, room)
	}
}

func (n *nodeState) leave(id, room string) {
	delete(n.rooms[room], id)
	if len(n.rooms[room]) == 0 {
		delete(n.rooms, room)
	}
	if s := n.sockets[id]; s != nil {
		if i := slices.Index(s.Rooms, room); i >= 0 {
			s.Rooms = slices.Delete(s.Rooms, i, i+1)
		}
	}
}

func newCluster(b Broker, ep *Endpoint, heartbeat time.Duration, logger *slog.Logger) *cluster {
	ctx, cancel := context.WithCancel(context.Background())
	c := &cluster{
		id:        newID(),
		broker:    b,
		ep:        ep,
		heartbeat: heartbeat,
		logger:    logger,
		ctx:       ctx,
		cancel:    cancel,
		outbox:    make(chan *wire.Envelope, 4096),
		nodes:     make(map[string]*nodeState),
	}
	c.wg.Add(2)
	go c.run()
	go c.publishPresence()
	return c
}

// run subscribes, retrying until it works, then keeps presence fresh.
func (c *cluster) run() {
	defer c.wg.Done()
	for backoff := 50 * time.Millisecond; ; backoff = min(2*backoff, c.heartbeat) {
		err := c.broker.Subscribe(c.ctx, c.receive)
		if err == nil {
			break
		}
		c.logger.Warn("laf: broker subscribe failed; retrying", "err", err, "in", backoff)
		select {
		case <-c.ctx.Done():
			return
		case <-time.After(backoff):
		}
	}
	// Ask every node for its presence now rather than at its next beat.
	c.queue(&wire.Envelope{Op: wire.OpSync})
	t := time.NewTicker(c.heartbeat)
	defer t.Stop()
	for {
		c.beat()
		select {
		case <-c.ctx.Done():
			return
		case <-t.C:
		}
	}
}

// beat publishes this node's snapshot and forgets nodes gone silent.
func (c *cluster) beat() {
	if c.ep != nil {
		c.queue(c.snapshot())
	}
	cutoff := time.Now().Add(-3 * c.heartbeat)
	c.mu.Lock()
	for id, n := range c.nodes {
		if n.seen.Before(cutoff) {
			delete(c.nodes, id)
		}
	}
	c.mu.Unlock()
}

func (c *cluster) snapshot() *wire.Envelope {
	return &wire.Envelope{Op: wire.OpSnapshot, Sockets: c.ep.reg.presence()}
}

// queue hands a presence change to publishPresence without blocking. If
// the broker is too far behind, the change is dropped: the next
// heartbeat's snapshot repairs it.
func (c *cluster) queue(env *wire.Envelope) {
	select {
	case c.outbox <- env:
	default:
	}
}

// publishPresence publishes queued presence changes in order.
func (c *cluster) publishPresence() {
	defer c.wg.Done()
	for {
		select {
		case <-c.ctx.Done():
			return
		case env := <-c.outbox:
			ctx, cancel := context.WithTimeout(c.ctx, c.heartbeat)
			c.publishRaw(ctx, env)
			cancel()
		}
	}
}

// publish publishes a send, counting it in Stats if the broker refuses it.
func (c *cluster) publish(ctx context.Context, env *wire.Envelope) error {
	err := c.publishRaw(ctx, env)
	if err != nil {
		c.publishErrors.Add(1)
	}
	return err
}

// publishRaw encodes and publishes env. When the broker takes a message
// after refusing one, this node may have missed presence changes and
// others may have dropped it: it asks every node for a snapshot and sends
// its own.
func (c *cluster) publishRaw(ctx context.Context, env *wire.Envelope) error {
	env.Origin = c.id
	if err := c.broker.Publish(ctx, wire.Append(nil, env)); err != nil {
		c.cutOff.Store(true)
		c.logger.Warn("laf: broker publish failed", "op", env.Op, "err", err)
		return err
	}
	if c.cutOff.Swap(false) {
		c.queue(&wire.Envelope{Op: wire.OpSync})
		if c.ep != nil {
			c.queue(c.snapshot())
		}
	}
	return nil
}

// receive handles a message from the broker.
func (c *cluster) receive(msg []byte) {
	env, err := wire.Decode(msg)
	if err != nil {
		c.logger.Warn("laf: bad message from broker", "err", err)
		return
	}
	if env.Origin == c.id {
		return // served locally when it was sent
	}
	switch env.Op {
	case wire.OpSync:
		if c.ep != nil {
			c.queue(c.snapshot())
		}
		return
	case wire.OpBye:
		c.mu.Lock()
		delete(c.nodes, env.Origin)
		c.mu.Unlock()
		return
	case wire.OpSnapshot, wire.OpAdd, wire.OpRemove, wire.OpJoin, wire.OpLeave:
		c.updatePresence(env)
		return
	}
	if c.ep != nil {
		c.ep.deliverLocal(env)
	}
}

func (c *cluster) updatePresence(env *wire.Envelope) {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := c.nodes[env.Origin]
	if n == nil || env.Op == wire.OpSnapshot {
		n = newNodeState()
		c.nodes[env.Origin] = n
	}
	n.seen = time.Now()
	switch env.Op {
	case wire.OpSnapshot, wire.OpAdd:
		for _, s := range env.Sockets {
			n.add(s)
		}
	case wire.OpRemove:
		n.remove(env.Target)
	case wire.OpJoin:
		n.join(env.Target, env.Room)
	case wire.OpLeave:
		n.leave(env.Target, env.Room)
	}
}

// live calls fn for each node heard from within three heartbeats, under
// the read lock.
func (c *cluster) live(fn func(*nodeState)) {
	cutoff := time.Now().Add(-3 * c.heartbeat)
	c.mu.RLock()
	defer c.mu.RUnlock()
	for _, n := range c.nodes {
		if !n.seen.Before(cutoff) {
			fn(n)
		}
	}
}

// sendSocket publishes m for a socket on another node, or returns
// ErrNotFound if presence knows no such socket.
func (c *cluster) sendSocket(ctx context.Context, id string, m Message) error {
	if !c.remoteOnline(id) {
		return ErrNotFound
	}
	return c.publishMessage(ctx, wire.OpSend, id, m)
}

// publishMessage publishes m for the sockets that op and target name.
func (c *cluster) publishMessage(ctx context.Context, op wire.Op, target string, m Message) error {
	return c.publish(ctx, &wire.Envelope{Op: op, Target: target, Binary: m.binary, Data: m.data, Key: m.key})
}

func (c *cluster) closeSocket(ctx context.Context, id string, code int, reason string) error {
	if err := checkClose(code, reason); err != nil {
		return err
	}
	if !c.remoteOnline(id) {
		return ErrNotFound
	}
	return c.publish(ctx, &wire.Envelope{Op: wire.OpClose, Target: id, Code: code, Reason: reason})
}

// remoteMembers reports whether presence knows a socket on another node
// in the room (op OpRoom) or with the identity (OpIdentity) key.
func (c *cluster) remoteMembers(op wire.Op, key string) bool {
	found := false
	c.live(func(n *nodeState) {
		if op == wire.OpRoom {
			found = found || len(n.rooms[key]) > 0
		} else {
			found = found || n.identities[key] > 0
		}
	})
	return found
}

func (c *cluster) remoteOnline(id string) bool {
	found := false
	c.live(func(n *nodeState) { found = found || n.sockets[id] != nil })
	return found
}

// stop says goodbye, so other nodes forget this one at once, and stops.
func (c *cluster) stop() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	c.publishRaw(ctx, &wire.Envelope{Op: wire.OpBye})
	cancel()
	c.cancel()
	c.wg.Wait()
}
