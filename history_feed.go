package laf

import (
	"context"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lafgo/laf/internal/wire"
)

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
	// recovering counts JoinSince calls under way, read by freeIdle,
	// which must not free the feed meanwhile.
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
	go func() {
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
