package laf

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lafgo/laf/internal/wire"
)

// clusterHistory is an Endpoint's rooms' history kept by a HistoryBroker:
// Publish appends through the broker, and each room's feed hands local
// members the room's messages, from the broker's channel and from this
// node's appends, once each, in offset order.
type clusterHistory struct {
	hb     HistoryBroker
	ep     *Endpoint
	limits HistoryLimits

	mu    sync.Mutex // guards feeds and sweep
	feeds map[string]*feed
	sweep *time.Timer // frees the feeds of rooms with no local member

	fills    sync.WaitGroup // gap fills under way
	fillSlot chan struct{}  // bounds the reads of gap fills under way at once
	// lastHeard is when this node last heard anything from the broker
	// (UnixNano). Every node beats each heartbeat, so a longer silence
	// means this node's subscriptions were down, and its feeds may have
	// missed a room's last messages with nothing after them to show the
	// gap: they read the history again.
	lastHeard atomic.Int64
}

// feed is one room's live delivery on this node. Its mu orders the
// room's deliveries and the joins that recover from the broker: see
// locks.go.
type feed struct {
	mu      sync.Mutex
	state   feedState
	known   bool               // epoch and last say where the room is
	epoch   string             // the epoch of last; "" for a room with no message yet
	last    uint64             // the last offset handed to local members
	pending map[uint64]Message // offsets after last+1 that came early
	skip    map[*Socket]uint64 // members that skip offsets up to this (all, while they recover)
	filling bool               // a read of the broker fills a gap
	// recovering counts JoinSince calls under way, read without mu by the
	// registry's notify hook, which must not drop the feed meanwhile.
	recovering atomic.Int32
	// stale is set without mu when the room lost its last local member:
	// the node may have stopped hearing the room, so last means nothing.
	stale atomic.Bool
}

type feedState int

const (
	feedLive feedState = iota
	feedDead           // dropped from clusterHistory.feeds: look it up again
)

// historyJoinWait bounds how long JoinSince waits for this node to hold a
// room's channel before it reads the room's history.
const historyJoinWait = 5 * time.Second

// newClusterHistory returns the Endpoint's history through b, or nil if b
// keeps none.
func newClusterHistory(e *Endpoint, b Broker) *clusterHistory {
	hb, ok := b.(HistoryBroker)
	if !ok {
		return nil
	}
	return &clusterHistory{
		hb:     hb,
		ep:     e,
		limits: HistoryLimits{Size: e.cfg.historySize, TTL: e.cfg.historyTTL},
		feeds:  make(map[string]*feed),
		// A few reads at once, so that the feeds of a node that comes
		// back from an outage do not all read at the same moment.
		fillSlot: make(chan struct{}, 16),
	}
}

// heard notes a message from the broker; after a silence of two
// heartbeats it has every feed read what it may have missed.
func (ch *clusterHistory) heard() {
	now := time.Now().UnixNano()
	prev := ch.lastHeard.Swap(now)
	if prev != 0 && now-prev > 2*int64(ch.ep.cfg.heartbeat) {
		go ch.resync()
	}
}

// resync has every feed that knows where its room is read the room's
// history since then.
func (ch *clusterHistory) resync() {
	ch.mu.Lock()
	feeds := make(map[string]*feed, len(ch.feeds))
	for room, f := range ch.feeds {
		feeds[room] = f
	}
	ch.mu.Unlock()
	for room, f := range feeds {
		f.mu.Lock()
		if f.state != feedDead && !f.stale.Load() && f.known && f.epoch != "" {
			ch.fill(f, room)
		}
		f.mu.Unlock()
	}
}

// historyRouting wraps the Endpoint's broker so that the messages a
// HistoryBroker publishes to rooms' channels go to their feeds, and
// everything else to the cluster.
type historyRouting struct {
	HistoryBroker
	ch *clusterHistory
}

func (r historyRouting) Open(ctx context.Context, fn func(msg []byte)) (Channels, error) {
	return r.HistoryBroker.Open(ctx, func(msg []byte) {
		r.ch.heard()
		if pos, body, ok := parseHistoryFrame(msg); ok {
			r.ch.received(pos, body)
			return
		}
		fn(msg)
	})
}

// notify wraps the registry's notify hook (called under the registry's
// lock): a room that lost its last local member makes its feed stale,
// since the node stops hearing the room.
func (ch *clusterHistory) notify(next func(op wire.Op, key string)) func(op wire.Op, key string) {
	return func(op wire.Op, key string) {
		if op == wire.OpRoom && len(ch.ep.reg.rooms[key]) == 0 {
			ch.mu.Lock()
			if f := ch.feeds[key]; f != nil {
				f.stale.Store(true)
			}
			ch.mu.Unlock()
		}
		next(op, key)
	}
}

// lock returns room's feed, locked, made if need be.
func (ch *clusterHistory) lock(room string) *feed {
	for {
		ch.mu.Lock()
		f := ch.feeds[room]
		if f == nil {
			f = &feed{}
			ch.feeds[room] = f
			if ch.sweep == nil {
				ch.sweep = time.AfterFunc(feedSweep, ch.freeIdle)
			}
		}
		ch.mu.Unlock()
		f.mu.Lock()
		if f.state == feedDead {
			f.mu.Unlock()
			continue
		}
		f.fresh()
		return f
	}
}

// fresh forgets where a stale feed was. f.mu is held.
func (f *feed) fresh() {
	if f.stale.Swap(false) {
		f.known, f.epoch, f.last, f.pending = false, "", 0, nil
	}
}

// feedSweep is how often the feeds of rooms with no local member are
// freed.
const feedSweep = 30 * time.Second

// freeIdle frees the feeds of rooms with no local member and no join
// under way, and comes back while any feed is left.
func (ch *clusterHistory) freeIdle() {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	for room, f := range ch.feeds {
		if !f.stale.Load() || f.recovering.Load() > 0 || !f.mu.TryLock() {
			continue
		}
		if f.stale.Load() && f.recovering.Load() == 0 && !f.filling {
			f.state = feedDead
			delete(ch.feeds, room)
		}
		f.mu.Unlock()
	}
	if len(ch.feeds) > 0 {
		ch.sweep.Reset(feedSweep)
	} else {
		ch.sweep = nil
	}
}

// encodeHistory returns what a HistoryBroker keeps of m published to room.
func encodeHistory(room string, m Message) ([]byte, error) {
	tail, err := envelopeTail(m)
	if err != nil {
		return nil, err
	}
	return wire.Append(nil, &wire.Envelope{Op: wire.OpRoom, Target: room, Key: m.key, Data: tail}), nil
}

// decodeHistory returns the message a HistoryBroker kept, as it goes out
// to sockets at pos.
func (ch *clusterHistory) decodeHistory(pos Position, msg []byte) (room string, m Message, err error) {
	env, err := wire.Decode(msg)
	if err != nil {
		return "", Message{}, err
	}
	if env.Op != wire.OpRoom {
		return "", Message{}, fmt.Errorf("laf: history message of op %v", env.Op)
	}
	m, err = envelopeWith(env.Target, pos, env.Data, env.Key)
	return env.Target, ch.ep.compressible(m), err
}

// publish is Endpoint.Publish through the broker.
func (ch *clusterHistory) publish(ctx context.Context, room string, m Message) (Position, error) {
	msg, err := encodeHistory(room, m)
	if err != nil {
		return Position{}, err
	}
	pos, err := ch.hb.Append(ctx, keyChannel(wire.OpRoom, room), msg, ch.limits)
	if err != nil {
		ch.ep.cluster.publishErrors.Add(1)
		if errors.Is(err, ErrOutcomeUnknown) || errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
			return Position{}, fmt.Errorf("%w: %w", ErrOutcomeUnknown, err)
		}
		if ctx.Err() != nil {
			return Position{}, fmt.Errorf("%w: %w", ErrOutcomeUnknown, err)
		}
		return Position{}, &BrokerError{Err: err}
	}
	_, env, err := ch.decodeHistory(pos, msg)
	if err != nil {
		return pos, err
	}
	ch.offer(room, pos, env)
	return pos, nil
}

// received handles a message the broker published to a room's channel.
func (ch *clusterHistory) received(pos Position, msg []byte) {
	room, m, err := ch.decodeHistory(pos, msg)
	if err != nil {
		ch.ep.cfg.logger.Warn("laf: bad history message from broker", "err", err)
		return
	}
	ch.offer(room, pos, m)
}

// offer hands m, at pos in room, to the room's local members, once and in
// offset order: a message that came before its predecessors waits for
// them, and a gap is filled from the broker's history.
func (ch *clusterHistory) offer(room string, pos Position, m Message) {
	if ch.ep.reg.roomLen(room) == 0 {
		return
	}
	f := ch.lock(room)
	defer f.mu.Unlock()
	ch.take(f, room, pos, m)
}

// take is offer with f locked.
func (ch *clusterHistory) take(f *feed, room string, pos Position, m Message) {
	switch {
	case !f.known:
		// Members joined with Join alone: they get the room from here.
		f.known, f.epoch, f.last, f.pending = true, pos.Epoch, pos.Offset-1, nil
	case pos.Epoch != f.epoch:
		// The room's first epoch, or a new one after its history was
		// lost: it begins at offset 1.
		f.epoch, f.last, f.pending = pos.Epoch, 0, nil
	}
	switch {
	case pos.Offset <= f.last:
		return // had it
	case pos.Offset > f.last+1:
		if f.pending == nil {
			f.pending = make(map[uint64]Message)
		}
		f.pending[pos.Offset] = m
		ch.fill(f, room)
		return
	}
	ch.deliver(f, room, pos.Offset, m)
	ch.drain(f, room)
}

// drain delivers the pending messages that follow f.last. f.mu is held.
func (ch *clusterHistory) drain(f *feed, room string) {
	for {
		next, ok := f.pending[f.last+1]
		if !ok {
			return
		}
		delete(f.pending, f.last+1)
		ch.deliver(f, room, f.last+1, next)
	}
}

// deliver queues m, at offset, on the room's local members, but not on
// those that skip it. f.mu is held.
func (ch *clusterHistory) deliver(f *feed, room string, offset uint64, m Message) {
	f.last = offset
	if len(f.skip) == 0 {
		ch.ep.reg.sendTo(byRoom, room, m)
		return
	}
	for _, s := range ch.ep.reg.inRoom(room) {
		if upTo, ok := f.skip[s]; ok {
			if offset <= upTo {
				continue
			}
			delete(f.skip, s)
		}
		s.out.enqueue(m)
	}
}

// fill reads the broker's history of room to fill the gap before f's
// pending messages, unless a read is under way. If the broker no longer
// has them, the members go on from the first pending message: the gap is
// logged, and their clients see it in the offsets. f.mu is held.
func (ch *clusterHistory) fill(f *feed, room string) {
	if f.filling {
		return
	}
	f.filling = true
	since := Position{Epoch: f.epoch, Offset: f.last}
	ch.fills.Add(1)
	go func() {
		defer ch.fills.Done()
		select {
		case ch.fillSlot <- struct{}{}:
			defer func() { <-ch.fillSlot }()
		case <-ch.ep.cluster.ctx.Done():
		}
		// The broker may still be coming back (its subscriptions before
		// its commands): try for a while before giving up on the gap.
		var last Position
		var missed []HistoryEntry
		var err error
		giveUp := time.Now().Add(historyJoinWait)
		for wait := 50 * time.Millisecond; ; wait = min(2*wait, time.Second) {
			ctx, cancel := context.WithTimeout(ch.ep.cluster.ctx, historyJoinWait)
			last, missed, err = ch.hb.History(ctx, keyChannel(wire.OpRoom, room), since, HistoryLimits{Size: math.MaxInt32, TTL: ch.limits.TTL})
			cancel()
			if err == nil || ch.ep.cluster.ctx.Err() != nil || time.Now().Add(wait).After(giveUp) {
				break
			}
			select {
			case <-ch.ep.cluster.ctx.Done():
			case <-time.After(wait):
			}
		}
		f.mu.Lock()
		defer f.mu.Unlock()
		f.filling = false
		if f.state == feedDead || f.epoch != since.Epoch {
			return
		}
		if err == nil && last.Epoch == since.Epoch {
			for _, e := range missed {
				if _, m, err := ch.decodeHistory(Position{Epoch: since.Epoch, Offset: e.Offset}, e.Msg); err == nil {
					ch.take(f, room, Position{Epoch: since.Epoch, Offset: e.Offset}, m)
				}
			}
			if f.last >= last.Offset {
				// The broker had every message up to its last; those
				// pending after it are on their way on the channel, or
				// the next read finds them.
				if len(f.pending) > 0 {
					ch.fill(f, room)
				}
				return
			}
		}
		if len(f.pending) == 0 {
			return
		}
		// Still a gap: the broker lost those messages, or could not say.
		first := uint64(math.MaxUint64)
		for off := range f.pending {
			first = min(first, off)
		}
		ch.ep.cfg.logger.Warn("laf: messages of a room lost on this node", "room", room, "from", f.last+1, "to", first-1, "err", err)
		m := f.pending[first]
		delete(f.pending, first)
		f.last = first - 1
		ch.take(f, room, Position{Epoch: f.epoch, Offset: first}, m)
	}()
}

// joinSince is Socket.JoinSince through the broker: s joins room, skipped
// by the room's feed until it has what it missed from the broker's
// history.
func (ch *clusterHistory) joinSince(ctx context.Context, s *Socket, room string, since Position, then func(bool, Position) error) (recovered bool, at Position, err error) {
	e := ch.ep
	f := ch.lock(room)
	f.recovering.Add(1)
	defer f.recovering.Add(-1)
	if f.skip == nil {
		f.skip = make(map[*Socket]uint64)
	}
	f.skip[s] = math.MaxUint64
	f.mu.Unlock()
	fail := func(err error) (bool, Position, error) {
		f.mu.Lock()
		delete(f.skip, s)
		f.mu.Unlock()
		e.reg.leave(s, room)
		return false, Position{}, err
	}
	defer e.reg.runHooks()
	if !e.reg.joinRoom(s, room) {
		return fail(ErrClosed)
	}
	// Hear the room before reading its history, so that every message
	// after the read comes through the feed.
	if err := ch.awaitHeld(ctx, room); err != nil {
		return fail(err)
	}
	var missed []HistoryEntry
	read := since
	for try := 0; ; try++ {
		last, more, err := ch.hb.History(ctx, keyChannel(wire.OpRoom, room), read, ch.limits)
		if err != nil {
			if ctx.Err() != nil {
				return fail(ctx.Err())
			}
			return fail(&BrokerError{Err: err})
		}
		if try > 0 && last.Epoch != read.Epoch {
			missed, read = nil, since // the epoch changed between reads: start again
			if try < 8 {
				continue
			}
		}
		missed = append(missed, more...)
		f.mu.Lock()
		f.fresh()
		if f.known && f.epoch != "" && last.Epoch != f.epoch && try < 8 {
			f.mu.Unlock() // the read and the feed disagree on the epoch: read again
			missed, read = nil, since
			continue
		}
		if !f.known || f.epoch != last.Epoch {
			f.known, f.epoch, f.last = true, last.Epoch, last.Offset
			for off := range f.pending {
				if off <= f.last || last.Epoch == "" {
					delete(f.pending, off)
				}
			}
			ch.drain(f, room)
		}
		if f.last > last.Offset && try < 8 {
			// The feed went on after the read: read what came since.
			f.mu.Unlock()
			read = last
			continue
		}
		if f.last > last.Offset {
			// The feed keeps running ahead: join at its position, not
			// recovered.
			missed, last = nil, Position{Epoch: f.epoch, Offset: f.last}
			since = Position{}
		}
		recovered = since != (Position{}) && since.Epoch == last.Epoch && e.streams.size > 0 &&
			contiguous(missed, since.Offset, last.Offset, e.streams.size)
		if recovered {
			for _, h := range missed {
				_, m, err := ch.decodeHistory(Position{Epoch: last.Epoch, Offset: h.Offset}, h.Msg)
				if err == nil {
					err = s.out.enqueue(m)
				}
				if err != nil {
					f.mu.Unlock()
					return fail(err)
				}
			}
		}
		// The feed has handed members everything up to f.last; s has
		// everything up to last.Offset, which is as far or further.
		if last.Offset > f.last {
			f.skip[s] = last.Offset
		} else {
			delete(f.skip, s)
		}
		if last != (Position{}) {
			at = last
		}
		if then != nil {
			if err := then(recovered, at); err != nil {
				f.mu.Unlock()
				return fail(err)
			}
		}
		f.mu.Unlock()
		return recovered, at, nil
	}
}

// contiguous reports whether missed are exactly the offsets after since
// up to last, and no more than size of them.
func contiguous(missed []HistoryEntry, since, last uint64, size int) bool {
	if since > last || last-since > uint64(size) || uint64(len(missed)) != last-since {
		return false
	}
	for i, h := range missed {
		if h.Offset != since+1+uint64(i) {
			return false
		}
	}
	return true
}

// awaitHeld waits until this node holds room's channel, confirmed by the
// broker.
func (ch *clusterHistory) awaitHeld(ctx context.Context, room string) error {
	c := ch.ep.cluster
	name := keyChannel(wire.OpRoom, room)
	deadline := time.NewTimer(historyJoinWait)
	defer deadline.Stop()
	for wait := time.Millisecond; !c.holds(name); wait = min(2*wait, 20*time.Millisecond) {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-c.ctx.Done():
			return ErrNotReady
		case <-deadline.C:
			err := c.readyErr()
			if err == nil {
				err = errors.New("laf: room's channel not subscribed")
			}
			return &BrokerError{Err: fmt.Errorf("laf: room %q not heard within %v: %w", room, historyJoinWait, err)}
		case <-time.After(wait):
		}
	}
	return nil
}
