package laf

import (
	"context"
	"sync"
	"time"
)

var _ HistoryBroker = (*LocalBroker)(nil)

// localHistory is a LocalBroker's rooms' history. Its mu orders a room's
// appends with their delivery: see locks.go.
type localHistory struct {
	mu    sync.Mutex
	rooms map[string]*localRoom
	now   func() time.Time // time.Now; tests may move it
}

// localRoom is one room's history, as a broker would keep it.
type localRoom struct {
	epoch string
	last  uint64
	at    time.Time    // the last append
	kept  []localEntry // oldest first
}

type localEntry struct {
	offset uint64
	at     time.Time
	msg    []byte
}

func (h *localHistory) clock() time.Time {
	if h.now != nil {
		return h.now()
	}
	return time.Now()
}

// room returns room's history, made anew if it was idle for ttl, as a
// broker's key expires. h.mu is held.
func (h *localHistory) room(room string, ttl time.Duration, now time.Time, make bool) *localRoom {
	r := h.rooms[room]
	if r != nil && ttl > 0 && now.Sub(r.at) > ttl {
		delete(h.rooms, room)
		r = nil
	}
	if r == nil && make {
		if h.rooms == nil {
			h.rooms = map[string]*localRoom{}
		}
		r = &localRoom{epoch: newEpoch(), at: now}
		h.rooms[room] = r
	}
	return r
}

// Append keeps msg as the next message of channel's room, within limits, and delivers
// its frame to channel's subscribers before any later append's.
func (b *LocalBroker) Append(ctx context.Context, channel string, msg []byte, limits HistoryLimits) (Position, error) {
	if err := ctx.Err(); err != nil {
		return Position{}, err
	}
	h := &b.hist
	h.mu.Lock()
	defer h.mu.Unlock()
	now := h.clock()
	r := h.room(channel, limits.TTL, now, true)
	r.last++
	r.at = now
	pos := Position{Epoch: r.epoch, Offset: r.last}
	r.kept = append(r.kept, localEntry{pos.Offset, now, append([]byte(nil), msg...)})
	drop := 0
	for drop < len(r.kept) && (len(r.kept)-drop > limits.Size || limits.TTL > 0 && now.Sub(r.kept[drop].at) > limits.TTL) {
		drop++
	}
	r.kept = append(r.kept[:0], r.kept[drop:]...)
	b.PublishTo(ctx, channel, AppendHistoryFrame(nil, pos, msg))
	return pos, nil
}

// History returns room's last position and the kept messages after
// since, within limits.
func (b *LocalBroker) History(ctx context.Context, channel string, since Position, limits HistoryLimits) (Position, []HistoryEntry, error) {
	if err := ctx.Err(); err != nil {
		return Position{}, nil, err
	}
	h := &b.hist
	h.mu.Lock()
	defer h.mu.Unlock()
	now := h.clock()
	r := h.room(channel, limits.TTL, now, false)
	if r == nil {
		return Position{}, nil, nil
	}
	last := Position{Epoch: r.epoch, Offset: r.last}
	if since.Epoch != r.epoch {
		return last, nil, nil
	}
	var out []HistoryEntry
	for _, e := range r.kept {
		if e.offset > since.Offset && (limits.TTL <= 0 || now.Sub(e.at) <= limits.TTL) {
			out = append(out, HistoryEntry{e.offset, append([]byte(nil), e.msg...)})
		}
	}
	if len(out) > limits.Size {
		out = out[len(out)-limits.Size:]
	}
	return last, out, nil
}

// Flush forgets every room's history, as a broker that lost its data
// would: each room's next append starts a new epoch.
func (b *LocalBroker) Flush() {
	b.hist.mu.Lock()
	defer b.hist.mu.Unlock()
	b.hist.rooms = nil
}
