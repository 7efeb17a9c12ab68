package laf

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lafgo/laf/internal/wire"
)

// DefaultPresenceTimeout bounds the presence methods that ask other nodes
// (Presence.Online, RoomMembers, IdentitySockets) when called without a
// context.
const DefaultPresenceTimeout = 2 * time.Second

// ErrNotReady is returned by Endpoint.Ready and Emitter.Ready while the
// node is not, or no longer, connected to its cluster; the error says why.
var ErrNotReady = errors.New("laf: not connected to the cluster")

// The channels laf uses; see Broker.
const allChannel = ""

func nodeChannel(node string) string { return "n." + node }

// keyChannel returns the channel of a room (op OpRoom) or an identity
// (OpIdentity). A key of up to 64 characters of [A-Za-z0-9_-] is used as
// it is, for readable channels; any other is hashed, under another
// prefix. Receivers check the key in the envelope, so a collision could
// only cost a node a message it then ignores.
func keyChannel(op wire.Op, key string) string {
	prefix := "r."
	if op == wire.OpIdentity {
		prefix = "i."
	}
	if plainToken(key) {
		return prefix + key
	}
	sum := sha256.Sum256([]byte(key))
	return strings.ToUpper(prefix) + hex.EncodeToString(sum[:16])
}

func plainToken(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for i := range len(s) {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// newNodeID returns a node's id: 64 random bits, 11 characters of
// [A-Za-z0-9_-].
func newNodeID() string {
	var b [8]byte
	rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// nodeOf returns the node named in a socket id ("NODE.RANDOM"), or "".
func nodeOf(id string) string {
	node, _, ok := strings.Cut(id, ".")
	if !ok {
		return ""
	}
	return node
}

// Broker states, as Stats.Broker names them.
const (
	stateNone     int32 = iota // no broker
	stateStarting              // subscribing
	stateUp
	stateDown // the last publish failed, or this node stopped hearing itself
)

var stateNames = [...]string{"", "starting", "up", "down"}

// cluster is a node's part in a cluster through a Broker: it publishes
// sends to the channels of nodes, rooms and identities, holds the
// channels of this node and of its rooms and identities, answers and asks
// presence queries, and keeps a beat's summary of every other node.
type cluster struct {
	id        string
	broker    Broker
	ep        *Endpoint // nil for an Emitter
	heartbeat time.Duration
	logger    *slog.Logger

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	ready  chan struct{} // closed once this node's channels are held
	chans  Channels      // set before ready is closed

	beatWake chan struct{} // the socket count changed: beat soon
	iwake    chan struct{} // interest changed

	imu     sync.Mutex
	dirty   map[interest]struct{} // rooms and identities to reconcile
	held    map[string]bool       // room and identity channels subscribed
	failing bool                  // a subscription failed and is retried

	mu        sync.Mutex
	stopped   bool
	nodes     map[string]*peer
	gone      map[string]time.Time // nodes that said goodbye, never to return
	selfSeen  time.Time            // when this node last heard its own beat
	queries   map[uint64]*query
	nextQuery uint64

	publishErrors atomic.Uint64 // sends the broker did not take
	state         atomic.Int32
	liveNodes     atomic.Int64          // other endpoints heard from, for Stats
	lastErr       atomic.Pointer[error] // the broker's last
	fails         failLog
}

// interest is a room (op OpRoom) or identity (OpIdentity) whose channel
// this node should hold while it has a local member.
type interest struct {
	op  wire.Op
	key string
}

// peer is another endpoint, as its beats describe it.
type peer struct {
	seen    time.Time
	sockets int
	silent  bool // not heard for three heartbeats, or the broker found no subscriber
}

// query is a presence question waiting for the answers of want.
type query struct {
	want    map[string]bool
	replies []*wire.Envelope
	done    chan struct{}
}

func newCluster(b Broker, ep *Endpoint, heartbeat time.Duration, logger *slog.Logger) *cluster {
	ctx, cancel := context.WithCancel(context.Background())
	c := &cluster{
		id:        newNodeID(),
		broker:    b,
		ep:        ep,
		heartbeat: heartbeat,
		logger:    logger,
		ctx:       ctx,
		cancel:    cancel,
		ready:     make(chan struct{}),
		beatWake:  make(chan struct{}, 1),
		iwake:     make(chan struct{}, 1),
		dirty:     make(map[interest]struct{}),
		held:      make(map[string]bool),
		nodes:     make(map[string]*peer),
		gone:      make(map[string]time.Time),
		queries:   make(map[uint64]*query),
	}
	c.fails.every = 10 * time.Second
	c.state.Store(stateStarting)
	if ep != nil {
		// Socket ids name their node, so that a push by id goes to that
		// node's channel alone.
		ep.reg.idPrefix = c.id + "."
	}
	c.wg.Add(1)
	go c.run()
	return c
}

// run holds this node's channels, retrying until it can, then beats.
func (c *cluster) run() {
	defer c.wg.Done()
	if !c.join() {
		return
	}
	c.wg.Add(1)
	go c.reconcile()
	// Ask every node to beat now rather than at its next heartbeat.
	c.publish(c.ctx, allChannel, &wire.Envelope{Op: wire.OpSync})
	t := time.NewTicker(c.heartbeat)
	defer t.Stop()
	debounce := min(max(c.heartbeat/10, 10*time.Millisecond), 500*time.Millisecond)
	for {
		c.beat()
		select {
		case <-c.ctx.Done():
			return
		case <-t.C:
		case <-c.beatWake:
			// Coalesce a burst of changes into one beat.
			select {
			case <-c.ctx.Done():
				return
			case <-time.After(debounce):
			}
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
		c.lastErr.Store(&err)
		c.logger.Warn("laf: broker subscribe failed; retrying", "node", c.id, "err", err, "in", backoff)
		select {
		case <-c.ctx.Done():
			return false
		case <-time.After(backoff):
		}
	}
	c.chans = chans
	c.mu.Lock()
	c.selfSeen = time.Now()
	c.mu.Unlock()
	c.state.Store(stateUp)
	close(c.ready)
	c.logger.Info("laf: joined the cluster", "node", c.id)
	return true
}

func (c *cluster) subscribe(chans Channels, channel string) error {
	ctx, cancel := context.WithTimeout(c.ctx, max(c.heartbeat, time.Second))
	defer cancel()
	return chans.Subscribe(ctx, channel)
}

// beat publishes this node's summary (an Emitter pings its own channel
// instead) and marks nodes gone silent.
func (c *cluster) beat() {
	ctx, cancel := context.WithTimeout(c.ctx, c.heartbeat)
	defer cancel()
	if c.ep != nil {
		c.publish(ctx, allChannel, &wire.Envelope{Op: wire.OpBeat, Count: uint64(c.ep.Len())})
	} else {
		c.publish(ctx, nodeChannel(c.id), &wire.Envelope{Op: wire.OpPing})
	}
	c.expire()
}

// expire marks nodes not heard from for three heartbeats as silent, but
// only while this node hears its own beats: a node cut off from the
// broker keeps what it knew. It also forgets goodbyes and silent nodes
// long past.
func (c *cluster) expire() {
	now := time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	// Own beats come every heartbeat. Within one and a half of the last,
	// this node hears the broker, and any node it has not heard for three
	// fell silent on its own: its last beat came at least a heartbeat and
	// a half before the cut could have begun.
	hearing := now.Sub(c.selfSeen) < c.heartbeat*3/2
	if !hearing && c.state.Load() == stateUp && !c.selfSeen.IsZero() {
		c.state.Store(stateDown)
		c.logger.Warn("laf: not hearing this node's own beats; keeping the other nodes meanwhile", "node", c.id, "since", c.selfSeen)
	}
	for id, n := range c.nodes {
		age := now.Sub(n.seen)
		switch {
		case hearing && !n.silent && age > 3*c.heartbeat:
			c.silence(id, n, "silent for three heartbeats")
		case n.silent && age > 20*c.heartbeat:
			delete(c.nodes, id)
		}
	}
	for id, at := range c.gone {
		if now.Sub(at) > 20*c.heartbeat {
			delete(c.gone, id)
		}
	}
}

// silence drops node id from presence until it beats again. c.mu is held.
func (c *cluster) silence(id string, n *peer, why string) {
	if n.silent {
		return
	}
	n.silent = true
	c.liveNodes.Add(-1)
	c.logger.Info("laf: node left", "node", id, "why", why)
	c.unwait(id)
}

// unwait stops queries waiting for node id. c.mu is held.
func (c *cluster) unwait(id string) {
	for _, q := range c.queries {
		if q.want[id] {
			delete(q.want, id)
			if len(q.want) == 0 {
				close(q.done)
			}
		}
	}
}

// queue is the registry's notify hook, called under its lock: op OpBeat
// for a change of the socket count, OpRoom or OpIdentity for a room or
// identity that got its first local member or lost its last. It never
// blocks.
func (c *cluster) queue(op wire.Op, key string) {
	if op == wire.OpBeat {
		c.beatSoon()
		return
	}
	c.imu.Lock()
	c.dirty[interest{op, key}] = struct{}{}
	c.imu.Unlock()
	select {
	case c.iwake <- struct{}{}:
	default:
	}
}

func (c *cluster) beatSoon() {
	select {
	case c.beatWake <- struct{}{}:
	default:
	}
}

// reconcile holds the channel of every room and identity with a local
// member, and of no other, subscribing and unsubscribing as they change.
// It works from the registry's state when it runs, so changes that undo
// each other cost nothing.
func (c *cluster) reconcile() {
	defer c.wg.Done()
	var retry <-chan time.Time
	backoff := 50 * time.Millisecond
	for {
		select {
		case <-c.ctx.Done():
			return
		case <-c.iwake:
		case <-retry:
		}
		retry = nil
		c.imu.Lock()
		batch := c.dirty
		c.dirty = make(map[interest]struct{})
		c.imu.Unlock()
		failed := 0
		var lastErr error
		for k := range batch {
			if c.ctx.Err() != nil {
				return
			}
			if err := c.reconcileOne(k); err != nil {
				failed++
				lastErr = err
				c.imu.Lock()
				c.dirty[k] = struct{}{}
				c.imu.Unlock()
			}
		}
		c.imu.Lock()
		wasFailing := c.failing
		c.failing = failed > 0
		c.imu.Unlock()
		if failed > 0 {
			c.lastErr.Store(&lastErr)
			c.logger.Warn("laf: broker subscribe failed; retrying", "node", c.id, "channels", failed, "err", lastErr, "in", backoff)
			retry = time.After(backoff)
			backoff = min(2*backoff, c.heartbeat)
		} else {
			if wasFailing {
				c.logger.Info("laf: subscriptions recovered", "node", c.id)
			}
			backoff = 50 * time.Millisecond
		}
	}
}

func (c *cluster) reconcileOne(k interest) error {
	var want bool
	if k.op == wire.OpRoom {
		want = c.ep.reg.roomLen(k.key) > 0
	} else {
		want = c.ep.reg.identityLen(k.key) > 0
	}
	ch := keyChannel(k.op, k.key)
	c.imu.Lock()
	have := c.held[ch]
	if !want {
		delete(c.held, ch) // answer no query for it from now on
	}
	c.imu.Unlock()
	if want == have {
		return nil
	}
	ctx, cancel := context.WithTimeout(c.ctx, max(c.heartbeat, time.Second))
	defer cancel()
	if !want {
		return c.chans.Unsubscribe(ctx, ch)
	}
	if err := c.chans.Subscribe(ctx, ch); err != nil {
		return err
	}
	c.imu.Lock()
	c.held[ch] = true
	c.imu.Unlock()
	return nil
}

// holds reports whether this node holds channel ch, confirmed.
func (c *cluster) holds(ch string) bool {
	c.imu.Lock()
	defer c.imu.Unlock()
	return c.held[ch]
}

// publish encodes env and publishes it to channel. It returns how many
// subscriptions took it (-1: the broker cannot tell).
func (c *cluster) publish(ctx context.Context, channel string, env *wire.Envelope) (int, error) {
	env.Origin = c.id
	n, err := c.broker.PublishTo(ctx, channel, wire.Append(nil, env))
	if err != nil {
		if ctx.Err() == nil || c.ctx.Err() != nil {
			// The broker's fault, not a caller that gave up.
			c.lastErr.Store(&err)
			if c.state.Load() != stateStarting {
				c.state.Store(stateDown)
			}
		}
		c.fails.failed(c.logger, env.Op, err)
		return n, err
	}
	c.state.CompareAndSwap(stateDown, stateUp)
	c.fails.ok(c.logger)
	return n, nil
}

// send publishes a send, counting it in Stats if the broker refuses it.
func (c *cluster) send(ctx context.Context, channel string, env *wire.Envelope, local int) (int, error) {
	n, err := c.publish(ctx, channel, env)
	if err != nil {
		c.publishErrors.Add(1)
		return n, &BrokerError{Local: local, Err: err}
	}
	return n, nil
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
		if env.Op == wire.OpBeat || env.Op == wire.OpPing {
			c.heardSelf()
		}
		return // sends were served locally when they were sent
	}
	switch env.Op {
	case wire.OpBeat:
		c.heard(env.Origin, int(env.Count))
	case wire.OpBye:
		c.forget(env.Origin)
	case wire.OpSync:
		if c.ep != nil {
			c.beatSoon()
		}
	case wire.OpAskOnline, wire.OpAskRoom, wire.OpAskIdentity:
		if c.ep != nil {
			c.spawn(func() { c.answer(env) })
		}
	case wire.OpReply:
		c.replied(env)
	case wire.OpPing:
	default:
		if c.ep != nil {
			c.ep.deliverLocal(env)
		}
	}
}

// spawn runs fn on a goroutine that stop waits for, unless stopping.
func (c *cluster) spawn(fn func()) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stopped {
		return
	}
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		fn()
	}()
}

func (c *cluster) heardSelf() {
	now := time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	if gap := now.Sub(c.selfSeen); !c.selfSeen.IsZero() && gap >= 2*c.heartbeat {
		// This node was cut off: the others' silence meanwhile was not
		// theirs. Give each a fresh three heartbeats.
		for _, n := range c.nodes {
			if !n.silent {
				n.seen = now
			}
		}
		c.logger.Info("laf: hearing the broker again", "node", c.id, "after", gap.Round(time.Millisecond))
		c.state.CompareAndSwap(stateDown, stateUp)
	}
	c.selfSeen = now
}

func (c *cluster) heard(id string, sockets int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.gone[id]; ok {
		return // a beat that overtook the goodbye
	}
	n := c.nodes[id]
	if n == nil {
		n = &peer{silent: true}
		c.nodes[id] = n
	}
	if n.silent {
		n.silent = false
		c.liveNodes.Add(1)
		c.logger.Info("laf: node joined", "node", id)
	}
	n.seen = time.Now()
	n.sockets = sockets
}

// forget drops a node that said goodbye, for good.
func (c *cluster) forget(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gone[id] = time.Now()
	if n := c.nodes[id]; n != nil {
		c.silence(id, n, "goodbye")
		delete(c.nodes, id)
	}
}

// refused drops node id, whose channel the broker had no subscriber for:
// its process is gone, or its connection is. A beat brings it back.
func (c *cluster) refused(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if n := c.nodes[id]; n != nil {
		c.silence(id, n, "the broker has no subscriber for it")
	}
}

// reachable reports whether sends to node id may be published: it is not
// this node, has not said goodbye, and is not silent (unheard for three
// heartbeats, or refused by the broker since its last beat). A node not
// heard of yet is reachable: the broker's count of subscribers decides.
func (c *cluster) reachable(id string) bool {
	if id == "" || id == c.id {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.gone[id]; ok {
		return false
	}
	n := c.nodes[id]
	return n == nil || !n.silent
}

// sendSocket publishes env (a send or a close) to the node that holds
// socket id. See Endpoint.SendSocket for what its answers mean.
func (c *cluster) sendSocket(ctx context.Context, id string, env *wire.Envelope) error {
	node := nodeOf(id)
	if !c.reachable(node) {
		return ErrNotFound
	}
	env.Target = id
	n, err := c.send(ctx, nodeChannel(node), env, 0)
	if err != nil {
		return err
	}
	if n == 0 {
		c.refused(node)
		return ErrNotFound
	}
	return nil
}

func messageEnvelope(op wire.Op, target string, m Message) *wire.Envelope {
	return &wire.Envelope{Op: op, Target: target, Binary: m.binary, Data: m.data, Key: m.key}
}

// sendKey publishes m to the channel of a room (op OpRoom) or identity
// (OpIdentity); local is how many local sockets had it already. It
// returns ErrNotFound if there were none and the broker found no
// subscriber.
func (c *cluster) sendKey(ctx context.Context, op wire.Op, key string, m Message, local int) error {
	n, err := c.send(ctx, keyChannel(op, key), messageEnvelope(op, key, m), local)
	if err != nil {
		return err
	}
	if local == 0 && n == 0 {
		return ErrNotFound
	}
	return nil
}

// broadcast publishes m to every node.
func (c *cluster) broadcast(ctx context.Context, m Message, local int) error {
	_, err := c.send(ctx, allChannel, messageEnvelope(wire.OpBroadcast, "", m), local)
	return err
}

func (c *cluster) closeSocket(ctx context.Context, id string, code int, reason string) error {
	if err := checkClose(code, reason); err != nil {
		return err
	}
	return c.sendSocket(ctx, id, &wire.Envelope{Op: wire.OpClose, Code: code, Reason: reason})
}

// answer replies to a presence query from this node's registry. A room or
// identity counts only once its channel is held, so that a send published
// after the answer reaches the members it named.
func (c *cluster) answer(q *wire.Envelope) {
	reply := &wire.Envelope{Op: wire.OpReply, Query: q.Query}
	switch q.Op {
	case wire.OpAskOnline:
		if _, ok := c.ep.Socket(q.Target); ok {
			reply.Count = 1
		}
	case wire.OpAskRoom:
		if c.holds(keyChannel(wire.OpRoom, q.Target)) {
			reply.IDs = c.ep.reg.roomIDs(q.Target)
			reply.Count = uint64(len(reply.IDs))
		}
	case wire.OpAskIdentity:
		if c.holds(keyChannel(wire.OpIdentity, q.Target)) {
			reply.Count = uint64(c.ep.reg.identityLen(q.Target))
		}
	}
	ctx, cancel := context.WithTimeout(c.ctx, c.heartbeat)
	defer cancel()
	c.publish(ctx, nodeChannel(q.Origin), reply)
}

func (c *cluster) replied(env *wire.Envelope) {
	c.mu.Lock()
	defer c.mu.Unlock()
	q := c.queries[env.Query]
	if q == nil || !q.want[env.Origin] {
		return
	}
	delete(q.want, env.Origin)
	q.replies = append(q.replies, env)
	if len(q.want) == 0 {
		close(q.done)
	}
}

// ask publishes a query and waits for the answers: of node alone if it is
// not "", else of every live node. It returns the answers so far and an
// error if ctx ends first or the broker refuses the query.
func (c *cluster) ask(ctx context.Context, op wire.Op, target, node string) ([]*wire.Envelope, error) {
	select {
	case <-c.ready:
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-c.ctx.Done():
		return nil, ErrNotReady
	}
	c.mu.Lock()
	c.nextQuery++
	id := c.nextQuery
	q := &query{want: make(map[string]bool), done: make(chan struct{})}
	if node != "" {
		q.want[node] = true
	} else {
		for nid, n := range c.nodes {
			if !n.silent {
				q.want[nid] = true
			}
		}
	}
	if len(q.want) == 0 {
		c.mu.Unlock()
		return nil, nil
	}
	c.queries[id] = q
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		delete(c.queries, id)
		c.mu.Unlock()
	}()

	channel := allChannel
	if node != "" {
		channel = nodeChannel(node)
	}
	n, err := c.publish(ctx, channel, &wire.Envelope{Op: op, Target: target, Query: id})
	if err != nil {
		return nil, &BrokerError{Err: err}
	}
	if node != "" && n == 0 {
		c.refused(node)
		return nil, nil
	}
	select {
	case <-q.done:
	case <-ctx.Done():
		err = ctx.Err()
	case <-c.ctx.Done():
		err = ErrNotReady
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]*wire.Envelope(nil), q.replies...), err
}

// online asks the node that holds socket id whether it is live.
func (c *cluster) online(ctx context.Context, id string) (bool, error) {
	node := nodeOf(id)
	if !c.reachable(node) {
		return false, nil
	}
	replies, err := c.ask(ctx, wire.OpAskOnline, id, node)
	return len(replies) > 0 && replies[0].Count > 0, err
}

// sockets returns how many sockets the other live nodes hold, and how
// many nodes they are, from their beats.
func (c *cluster) sockets() (sockets, nodes int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, n := range c.nodes {
		if !n.silent {
			sockets += n.sockets
			nodes++
		}
	}
	return sockets, nodes
}

// readyErr says why this node is not ready, or returns nil.
func (c *cluster) readyErr() error {
	why := ""
	switch c.state.Load() {
	case stateStarting:
		why = "subscribing"
	case stateDown:
		why = "broker down"
	}
	if why == "" {
		c.imu.Lock()
		failing := c.failing
		c.imu.Unlock()
		if failing {
			why = "some subscriptions failed"
		}
	}
	if why == "" {
		return nil
	}
	if err := c.lastErr.Load(); err != nil {
		return &readyError{why: why, err: *err}
	}
	return &readyError{why: why}
}

type readyError struct {
	why string
	err error
}

func (e *readyError) Error() string {
	if e.err != nil {
		return "laf: not ready: " + e.why + ": " + e.err.Error()
	}
	return "laf: not ready: " + e.why
}

func (e *readyError) Is(target error) bool { return target == ErrNotReady }
func (e *readyError) Unwrap() error        { return e.err }

// stop stops every goroutine, then says goodbye, so other nodes forget
// this one at once, and for good: nothing this node publishes can follow
// its goodbye.
func (c *cluster) stop() {
	c.mu.Lock()
	c.stopped = true
	c.mu.Unlock()
	c.cancel()
	c.wg.Wait()
	if c.ep == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	env := &wire.Envelope{Op: wire.OpBye, Origin: c.id}
	if _, err := c.broker.PublishTo(ctx, allChannel, wire.Append(nil, env)); err != nil {
		c.logger.Warn("laf: goodbye not published; other nodes drop this one within three heartbeats", "node", c.id, "err", err)
		return
	}
	c.logger.Info("laf: left the cluster", "node", c.id)
}

// failLog logs the broker's failures without flooding: the first, then at
// most one per interval with how many it did not log, and the recovery.
type failLog struct {
	every      time.Duration
	mu         sync.Mutex
	failing    bool
	last       time.Time
	suppressed int
	total      int
}

func (f *failLog) failed(l *slog.Logger, op wire.Op, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failing = true
	f.total++
	if !f.last.IsZero() && time.Since(f.last) < f.every {
		f.suppressed++
		return
	}
	l.Warn("laf: broker publish failed", "op", op.String(), "err", err, "unlogged", f.suppressed)
	f.last, f.suppressed = time.Now(), 0
}

func (f *failLog) ok(l *slog.Logger) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.failing {
		return
	}
	l.Info("laf: broker publishes succeed again", "failed", f.total)
	f.failing, f.total, f.suppressed, f.last = false, 0, 0, time.Time{}
}
