package laf

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
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

	fillSlot chan struct{} // bounds the reads of gap fills under way at once
	// lastHeard is when this node last heard anything from the broker
	// (UnixNano). Every node beats each heartbeat, so a longer silence
	// means this node's subscriptions were down, and its feeds may have
	// missed a room's last messages with nothing after them to show the
	// gap: they read the history again.
	lastHeard atomic.Int64
}

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
		// A deadline, the caller's or the connection's, may pass after
		// the append reached the broker: then nobody knows.
		var ne net.Error
		if errors.Is(err, ErrOutcomeUnknown) || errors.Is(err, context.DeadlineExceeded) ||
			errors.As(err, &ne) && ne.Timeout() || ctx.Err() != nil {
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
	for wait := time.Millisecond; !c.interest.holds(name); wait = min(2*wait, 20*time.Millisecond) {
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
