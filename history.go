package laf

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lafgo/laf/internal/wire"
)

// Position is where a published message stands in its room's history.
type Position struct {
	Epoch  string // names one unbroken history of the room; a new epoch means history was lost
	Offset uint64 // 1 for the room's first published message in the epoch, then +1 for each
}

// String returns "EPOCH:OFFSET", or "" for the zero Position.
func (p Position) String() string {
	if p == (Position{}) {
		return ""
	}
	return p.Epoch + ":" + strconv.FormatUint(p.Offset, 10)
}

// ParsePosition parses what Position.String returns: "" is the zero
// Position.
func ParsePosition(s string) (Position, error) {
	if s == "" {
		return Position{}, nil
	}
	i := strings.LastIndexByte(s, ':')
	if i <= 0 {
		return Position{}, fmt.Errorf("laf: position %q is not EPOCH:OFFSET", s)
	}
	off, err := strconv.ParseUint(s[i+1:], 10, 64)
	if err != nil || off == 0 {
		return Position{}, fmt.Errorf("laf: position %q has no offset of 1 or more", s)
	}
	return Position{Epoch: s[:i], Offset: off}, nil
}

// Defaults of WithHistory.
const (
	DefaultHistorySize = 100
	DefaultHistoryTTL  = 2 * time.Minute
)

// WithHistory keeps each room's last size published messages (see
// Endpoint.Publish), each for ttl, so that Socket.JoinSince can send a
// socket what it missed while it reconnected. Zero or less means
// DefaultHistorySize, 100, and DefaultHistoryTTL, 2 minutes.
//
// Without a broker, or with one that is not a HistoryBroker, history is
// in memory, on this node: a restart loses it, which the room's new epoch
// tells clients. With a HistoryBroker it is the broker's, within size and
// ttl, and every node recovers from it; the node then keeps none. Measured (BenchmarkHistoryMemory), a
// kept 64-byte text message holds about 250 bytes, its envelope (which
// the sockets it went to share) included, and a room with one message
// about 470 bytes. A room nothing was published to for ttl is freed, with
// its history; so is a room only joined, ttl after it was made.
func WithHistory(size int, ttl time.Duration) Option {
	return option(func(c *config) {
		c.historySize, c.historyTTL = size, ttl
		if size <= 0 {
			c.historySize = DefaultHistorySize
		}
		if ttl <= 0 {
			c.historyTTL = DefaultHistoryTTL
		}
	})
}

// streams are an Endpoint's rooms' published positions and history.
type streams struct {
	size  int           // messages kept per room; 0: no history
	ttl   time.Duration // how long a message is kept, and a room with no publish lives
	mu    sync.Mutex    // guards rooms and sweep
	rooms map[string]*stream
	sweep *time.Timer // frees idle rooms; armed while there are rooms
	// cluster, with a HistoryBroker, keeps positions and history in the
	// broker instead (history_cluster.go).
	cluster *clusterHistory
}

// stream is one room's: its epoch, last offset and kept messages. Its mu
// orders the room's publishes and joins: see locks.go.
type stream struct {
	mu    sync.Mutex
	epoch string
	last  uint64       // the last offset published; 0 before the first
	at    atomic.Int64 // when the last was published, or the room made (UnixNano); read by the sweep without mu
	dead  bool         // freed by the sweep: look the room up again
	ring  []kept       // the kept messages, oldest at ring[start]
	start int
}

type kept struct {
	at int64 // UnixNano
	m  Message
}

func newStreams(size int, ttl time.Duration) *streams {
	if ttl <= 0 {
		ttl = DefaultHistoryTTL // rooms are freed all the same
	}
	return &streams{size: size, ttl: ttl, rooms: make(map[string]*stream)}
}

// lock returns room's stream, locked, made or made anew if it had been
// idle for ttl.
func (ss *streams) lock(room string, now int64) *stream {
	for {
		ss.mu.Lock()
		st := ss.rooms[room]
		if st == nil || now-st.at.Load() > int64(ss.ttl) && st.tryFree() {
			st = &stream{epoch: newEpoch()}
			st.at.Store(now)
			ss.rooms[room] = st
			if ss.sweep == nil {
				ss.sweep = time.AfterFunc(ss.ttl, ss.freeIdle)
			}
		}
		ss.mu.Unlock()
		st.mu.Lock()
		if !st.dead {
			return st
		}
		st.mu.Unlock()
	}
}

// tryFree marks an idle stream dead, unless it is in use. ss.mu is held.
func (st *stream) tryFree() bool {
	if !st.mu.TryLock() {
		return false
	}
	st.dead = true
	st.mu.Unlock()
	return true
}

// freeIdle frees the rooms nothing was published to for ttl, and comes
// back while any room is left.
func (ss *streams) freeIdle() {
	now := time.Now().UnixNano()
	ss.mu.Lock()
	defer ss.mu.Unlock()
	for room, st := range ss.rooms {
		if now-st.at.Load() > int64(ss.ttl) && st.tryFree() {
			delete(ss.rooms, room)
		}
	}
	if len(ss.rooms) > 0 {
		ss.sweep.Reset(ss.ttl)
	} else {
		ss.sweep = nil
	}
}

func newEpoch() string {
	var b [8]byte
	rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// keep adds a published message to the history. st.mu is held.
func (st *stream) keep(size int, m Message, now int64) {
	if size == 0 {
		return
	}
	if len(st.ring) < size {
		if len(st.ring) == cap(st.ring) {
			// Grow as append would, but never past size.
			ring := make([]kept, len(st.ring), min(max(2*cap(st.ring), 2), size))
			copy(ring, st.ring)
			st.ring = ring
		}
		st.ring = append(st.ring, kept{now, m})
		return
	}
	st.ring[st.start] = kept{now, m}
	st.start = (st.start + 1) % size
}

// since returns the kept messages after offset, oldest first, and whether
// they are all there: every message after offset is kept, and none is
// older than ttl. st.mu is held.
func (st *stream) since(offset uint64, ttl time.Duration, now int64) ([]Message, bool) {
	if offset > st.last {
		return nil, false
	}
	missed := int(st.last - offset)
	if missed > len(st.ring) {
		return nil, false
	}
	out := make([]Message, 0, missed)
	for i := len(st.ring) - missed; i < len(st.ring); i++ {
		k := st.ring[(st.start+i)%len(st.ring)]
		if now-k.at > int64(ttl) {
			return nil, false
		}
		out = append(out, k.m)
	}
	return out, true
}

// published marks a message made by Publish: its room and offset, so
// that Latest never lets an older one replace a newer one.
type published struct {
	room   string
	offset uint64
}

// olderThan reports whether m is a published message older than q in the
// same room.
func (m *Message) olderThan(q *Message) bool {
	return m.pub != nil && q.pub != nil && m.pub.room == q.pub.room && m.pub.offset < q.pub.offset
}

// envelope returns m as it goes out published at pos in room: one text
// frame holding {"room": ROOM, "pos": "EPOCH:OFFSET", "data": DATA}.
func envelope(room string, pos Position, m Message) (Message, error) {
	tail, err := envelopeTail(m)
	if err != nil {
		return Message{}, err
	}
	return envelopeWith(room, pos, tail, m.key)
}

// envelopeTail returns what follows the position in m's envelope:
// `,"data":DATA}`, with `,"binary":true` for a binary message.
func envelopeTail(m Message) ([]byte, error) {
	b := make([]byte, 0, len(m.data)+24)
	b = append(b, `,"data":`...)
	switch {
	case m.json:
		b = append(b, m.data...)
	case m.binary:
		b = append(b, '"')
		b = base64.StdEncoding.AppendEncode(b, m.data)
		b = append(b, `","binary":true`...)
	default:
		d, err := json.Marshal(string(m.data))
		if err != nil {
			return nil, err
		}
		b = append(b, d...)
	}
	return append(b, '}'), nil
}

// envelopeWith returns the envelope of room at pos whose tail is
// envelopeTail's, with Latest's key.
func envelopeWith(room string, pos Position, tail []byte, key string) (Message, error) {
	r, err := json.Marshal(room)
	if err != nil {
		return Message{}, err
	}
	b := make([]byte, 0, len(r)+len(tail)+len(pos.Epoch)+32)
	b = append(b, `{"room":`...)
	b = append(b, r...)
	b = append(b, `,"pos":"`...)
	b = append(b, pos.String()...)
	b = append(b, '"')
	b = append(b, tail...)
	return Message{data: b, key: key, pub: &published{room, pos.Offset}}, nil
}

// Publish gives m the room's next position, keeps it in the room's
// history (see WithHistory) and queues it on every socket in the room, as
// one text message holding the JSON object
//
//	{"room": ROOM, "pos": "EPOCH:OFFSET", "data": DATA}
//
// where DATA is m's JSON as it is for a message made by JSON (or sent
// with SendJSON), a JSON string for any other text message, and, for a
// binary message, its bytes in standard base64, with "binary": true
// added to the object. It records the message and succeeds even when
// nobody is in the room.
//
// Publishes to one room are totally ordered: every socket receives a
// room's published messages in offset order, whichever goroutines
// published them, and a slow socket's laf.Latest never lets an older
// position replace a newer one.
//
// With a broker that is a HistoryBroker, the broker gives the position
// and keeps the history, and the same holds across the cluster: every
// node's sockets in the room receive the room's messages in offset order,
// once each. Publish then returns once the broker has the message; if it
// cannot append it, Publish returns a *BrokerError (or an error wrapping
// ErrOutcomeUnknown, if a deadline passed after the append may have
// reached the broker) and queues the message on no socket, local ones
// included. With another broker, positions are this node's: other nodes'
// sockets in the room get the message too, with this node's position,
// and the broker's error is returned, as SendRoom's is (never
// ErrNotFound).
func (e *Endpoint) Publish(ctx context.Context, room string, m Message) (Position, error) {
	if err := ctx.Err(); err != nil {
		return Position{}, err
	}
	if e.streams.cluster != nil {
		return e.streams.cluster.publish(ctx, room, m)
	}
	now := time.Now().UnixNano()
	st := e.streams.lock(room, now)
	pos := Position{Epoch: st.epoch, Offset: st.last + 1}
	env, err := envelope(room, pos, m)
	if err != nil {
		st.mu.Unlock()
		return Position{}, err
	}
	st.last = pos.Offset
	st.at.Store(now)
	st.keep(e.streams.size, env, now)
	local := e.reg.sendTo(byRoom, room, e.compressible(env))
	st.mu.Unlock()
	if e.cluster != nil {
		if err := e.cluster.sendKey(ctx, wire.OpRoom, room, env, local); err != nil && !errors.Is(err, ErrNotFound) && !errors.Is(err, ErrNoSubscriber) {
			return pos, err
		}
	}
	return pos, nil
}

// JoinSince joins room, as Join does, and tells whether the socket missed
// nothing. If since is in the room's history (its epoch, and every
// message after it still kept), it first queues exactly the messages
// published after since, oldest first, then joins: the socket gets every
// message after since once, in offset order, even while other goroutines
// publish. It then reports recovered true. Otherwise (the zero since,
// another epoch, history gone by size or age, no WithHistory) it queues
// nothing from history, joins at the room's current position, and
// reports false: the application then sends a fresh snapshot.
//
// For a snapshot with no window, take the snapshot together with the
// position of the room's last published message (for instance inside
// the critical section where the application publishes), send it, then
// call JoinSince with that position.
//
// Recovered messages count against the send budget like any other; if
// the budget refuses one, JoinSince joins nothing and returns false and
// the send's error. It returns ErrClosed for a closed socket, and ctx's
// error if ctx is done.
//
// With a HistoryBroker (see Publish), JoinSince recovers from the
// broker, on any node: it first waits until this node hears the room
// (one subscribe round trip if no other local socket is in it), then
// reads the room's history (one round trip). If the broker cannot be
// read, it joins nothing and returns a *BrokerError.
func (s *Socket) JoinSince(ctx context.Context, room string, since Position) (recovered bool, err error) {
	recovered, _, err = s.joinSince(ctx, room, since, nil)
	return recovered, err
}

// joinSince is JoinSince, and also returns the room's position once the
// socket has joined (zero if nothing was ever published to it). If then
// is not nil, it is called with what JoinSince returns once the socket
// has joined, before any later message of the room is queued on it.
func (s *Socket) joinSince(ctx context.Context, room string, since Position, then func(recovered bool, at Position) error) (recovered bool, at Position, err error) {
	if err := ctx.Err(); err != nil {
		return false, at, err
	}
	e := s.ep
	if e.streams.cluster != nil {
		return e.streams.cluster.joinSince(ctx, s, room, since, then)
	}
	now := time.Now().UnixNano()
	st := e.streams.lock(room, now)
	defer e.reg.runHooks() // after the unlock: a hook may publish
	defer st.mu.Unlock()
	if st.last > 0 {
		at = Position{Epoch: st.epoch, Offset: st.last}
	}
	if since != (Position{}) && since.Epoch == st.epoch && e.streams.size > 0 {
		var missed []Message
		if missed, recovered = st.since(since.Offset, e.streams.ttl, now); recovered {
			for _, m := range missed {
				if err := s.out.enqueue(m); err != nil {
					return false, at, err
				}
			}
		}
	}
	if !e.reg.joinRoom(s, room) {
		return false, at, ErrClosed
	}
	if then != nil {
		if err := then(recovered, at); err != nil {
			return false, at, err
		}
	}
	return recovered, at, nil
}
