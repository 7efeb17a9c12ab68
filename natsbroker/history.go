package natsbroker

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	mathrand "math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/lafgo/laf"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

var _ laf.HistoryBroker = (*Broker)(nil)

// Defaults of WithHistoryLimits: laf.WithHistory's.
const (
	DefaultHistoryPerRoom = laf.DefaultHistorySize
	DefaultHistoryMaxAge  = laf.DefaultHistoryTTL
)

// WithHistoryLimits sets what the history stream keeps of each room:
// its last perRoom messages (the stream's MaxMsgsPerSubject), each for
// maxAge (MaxAge). Set them at least as large as laf.WithHistory's size
// and ttl, or recovery fails sooner than WithHistory says. Zero or less
// means the defaults, 100 and 2 minutes.
func WithHistoryLimits(perRoom int, maxAge time.Duration) Option {
	return func(b *Broker) {
		if perRoom > 0 {
			b.hist.perRoom = perRoom
		}
		if maxAge > 0 {
			b.hist.maxAge = maxAge
		}
	}
}

// WithHistoryReplicas sets the history stream's replicas (default 1): on
// a JetStream cluster, 3 keeps every room's history through the loss of
// a server.
func WithHistoryReplicas(n int) Option {
	return func(b *Broker) { b.hist.replicas = n }
}

// History: rooms' history is one JetStream stream, named after the
// Broker's subject ("LAF_HISTORY_laf"), whose subjects are
// "laf_h.CHANNEL" (a room's channel, "laf_h.r.ROOM"), with the limits of
// WithHistoryLimits per subject. Each stored message is what laf's feed
// hears, "lafh EPOCH:OFFSET MSG"; the stream republishes it, once stored,
// to the room's channel ("laf.r.ROOM"), in the stream's order, so every
// subscriber gets a room's messages in offset order. Append numbers a
// message from the room's last (cached, or read by a direct get) and
// publishes it with Nats-Expected-Last-Subject-Sequence, so that two
// nodes never give one offset twice: the loser reads the new last and
// tries again. A room whose subject holds nothing (expired, purged, the
// stream lost) starts a new epoch at offset 1. History reads the room's
// last message, then the missed ones with batched direct gets.

// history is a Broker's JetStream state.
type history struct {
	perRoom  int
	maxAge   time.Duration
	replicas int

	stripes [64]sync.Mutex // one append at a time per room: by stripe(subject)

	mu    sync.Mutex
	ready bool                   // the stream exists, as far as this Broker knows
	lasts map[string]historyLast // subject → its last message, as this Broker last saw it
}

// historyLast is a room's last message: its stream sequence and position.
type historyLast struct {
	seq uint64
	pos laf.Position
}

const maxCachedLasts = 1 << 16

// stripe returns the stripe of subj's lock.
func stripe(subj string) int {
	h := fnv.New32a()
	h.Write([]byte(subj))
	return int(h.Sum32() % 64)
}

// limit returns the messages kept per room.
func (h *history) limit() int { return cmp.Or(h.perRoom, DefaultHistoryPerRoom) }

func (b *Broker) historyStream() string {
	return "LAF_HISTORY_" + strings.NewReplacer(".", "_", "*", "_", ">", "_").Replace(b.subject)
}

func (b *Broker) historySubject(channel string) string { return b.subject + "_h." + channel }

// ensureStream creates or updates the history stream, once it works.
func (b *Broker) ensureStream(ctx context.Context) error {
	h := &b.hist
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.ready {
		return nil
	}
	js, err := jetstream.New(b.nc)
	if err != nil {
		return err
	}
	ctx, cancel := b.bound(ctx)
	defer cancel()
	_, err = js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:              b.historyStream(),
		Subjects:          []string{b.subject + "_h.>"},
		MaxMsgsPerSubject: int64(h.limit()),
		MaxAge:            cmp.Or(h.maxAge, DefaultHistoryMaxAge),
		Replicas:          max(h.replicas, 1),
		Storage:           jetstream.FileStorage,
		AllowDirect:       true,
		RePublish:         &jetstream.RePublish{Source: b.subject + "_h.>", Destination: b.subject + ".>"},
	})
	if err != nil {
		return fmt.Errorf("natsbroker: history stream %s (is JetStream enabled? nats-server -js): %w", b.historyStream(), err)
	}
	h.ready = true
	return nil
}

// bound gives ctx the Broker's timeout (WithBrokerTimeout) if it has no deadline.
func (b *Broker) bound(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, b.timeout)
}

func (b *Broker) cachedLast(subj string) (historyLast, bool) {
	b.hist.mu.Lock()
	defer b.hist.mu.Unlock()
	l, ok := b.hist.lasts[subj]
	return l, ok
}

func (b *Broker) setLast(subj string, l *historyLast) {
	b.hist.mu.Lock()
	defer b.hist.mu.Unlock()
	if l == nil {
		delete(b.hist.lasts, subj)
		return
	}
	if b.hist.lasts == nil || len(b.hist.lasts) >= maxCachedLasts {
		b.hist.lasts = make(map[string]historyLast)
	}
	b.hist.lasts[subj] = *l
}

// readLast reads the last message of subj with a direct get.
func (b *Broker) readLast(ctx context.Context, subj string) (historyLast, error) {
	ctx, cancel := b.bound(ctx)
	defer cancel()
	m, err := b.nc.RequestWithContext(ctx, "$JS.API.DIRECT.GET."+b.historyStream()+"."+subj, nil)
	if err != nil {
		return historyLast{}, err
	}
	if st := m.Header.Get("Status"); st == "404" {
		return historyLast{}, nil
	} else if st != "" {
		return historyLast{}, fmt.Errorf("natsbroker: direct get: %s %s", st, m.Header.Get("Description"))
	}
	return parseStored(m)
}

// parseStored returns a stored message's sequence and position.
func parseStored(m *nats.Msg) (historyLast, error) {
	seq, err := strconv.ParseUint(m.Header.Get("Nats-Sequence"), 10, 64)
	if err != nil {
		return historyLast{}, fmt.Errorf("natsbroker: stored message without its sequence")
	}
	pos, _, err := parseFrame(m.Data)
	return historyLast{seq, pos}, err
}

// parseFrame splits "lafh EPOCH:OFFSET MSG".
func parseFrame(b []byte) (laf.Position, []byte, error) {
	s, ok := strings.CutPrefix(string(b[:min(len(b), 64)]), "lafh ")
	sp := strings.IndexByte(s, ' ')
	if !ok || sp < 0 {
		return laf.Position{}, nil, errors.New("natsbroker: stored message is not laf's")
	}
	pos, err := laf.ParsePosition(s[:sp])
	if err != nil {
		return laf.Position{}, nil, err
	}
	return pos, b[len("lafh ")+sp+1:], nil
}

type pubAck struct {
	Seq   uint64 `json:"seq"`
	Error *struct {
		Code    int    `json:"code"`
		ErrCode int    `json:"err_code"`
		Desc    string `json:"description"`
	} `json:"error"`
}

// errWrongLast is JetStream's answer to a publish whose expected last
// sequence of its subject is not the last.
const errWrongLast = 10071

// Append gives msg the room's next position and stores it in the history
// stream, which republishes it to channel. Another node's append in
// between makes it read the room's last and try again. A reply that does
// not come by the deadline is reported as laf.ErrOutcomeUnknown: the
// message may be stored and published.
func (b *Broker) Append(ctx context.Context, channel string, msg []byte, limits laf.HistoryLimits) (laf.Position, error) {
	if err := b.usable(ctx); err != nil {
		return laf.Position{}, err
	}
	if !b.nc.IsConnected() {
		return laf.Position{}, ErrDisconnected
	}
	if err := b.ensureStream(ctx); err != nil {
		return laf.Position{}, err
	}
	subj := b.historySubject(channel)
	// One append at a time per room in this process: the others would
	// only lose the race for the expected last sequence.
	lock := &b.hist.stripes[stripe(subj)]
	lock.Lock()
	defer lock.Unlock()
	for try := 0; ; try++ {
		last, ok := b.cachedLast(subj)
		if !ok {
			var err error
			if last, err = b.readLast(ctx, subj); err != nil {
				return laf.Position{}, err
			}
		}
		pos := laf.Position{Epoch: last.pos.Epoch, Offset: last.pos.Offset + 1}
		if last.seq == 0 {
			pos = laf.Position{Epoch: randomID(), Offset: 1}
		}
		m := nats.NewMsg(subj)
		m.Data = laf.AppendHistoryFrame(nil, pos, msg)
		m.Header.Set(jetstream.ExpectedLastSubjSeqHeader, strconv.FormatUint(last.seq, 10))
		rctx, cancel := b.bound(ctx)
		reply, err := b.nc.RequestMsgWithContext(rctx, m)
		cancel()
		if err != nil {
			b.setLast(subj, nil)
			if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout) {
				return laf.Position{}, fmt.Errorf("%w: %w", laf.ErrOutcomeUnknown, err)
			}
			if errors.Is(err, nats.ErrNoResponders) {
				b.hist.mu.Lock()
				b.hist.ready = false // the stream is gone: make it again next time
				b.hist.mu.Unlock()
			}
			return laf.Position{}, err
		}
		var ack pubAck
		if err := json.Unmarshal(reply.Data, &ack); err != nil {
			return laf.Position{}, fmt.Errorf("natsbroker: publish answered %q", reply.Data)
		}
		if ack.Error != nil {
			b.setLast(subj, nil)
			if ack.Error.ErrCode == errWrongLast && try < 100 {
				// Another process appended first: back off a random
				// while, longer each time, so that contenders spread.
				select {
				case <-ctx.Done():
					return laf.Position{}, ctx.Err()
				case <-time.After(time.Duration(mathrand.Int64N(int64(min(try+1, 20)) * int64(time.Millisecond)))):
				}
				continue
			}
			return laf.Position{}, fmt.Errorf("natsbroker: JetStream: %s (%d)", ack.Error.Desc, ack.Error.ErrCode)
		}
		b.setLast(subj, &historyLast{ack.Seq, pos})
		return pos, nil
	}
}

// History reads the room's last message with a direct get and, if since
// is in its epoch and behind it, the messages after since with batched
// direct gets: from a sequence guessed from the number missed, moved back
// fourfold while the first message it finds is already past since (other
// rooms' messages interleave in the stream). Without interleaving that is
// two round trips and the missed messages only; at worst a few more round
// trips, and every message the stream keeps of the room.
func (b *Broker) History(ctx context.Context, channel string, since laf.Position, limits laf.HistoryLimits) (laf.Position, []laf.HistoryEntry, error) {
	if err := b.usable(ctx); err != nil {
		return laf.Position{}, nil, err
	}
	if !b.nc.IsConnected() {
		return laf.Position{}, nil, ErrDisconnected
	}
	if err := b.ensureStream(ctx); err != nil {
		return laf.Position{}, nil, err
	}
	ctx, cancel := b.bound(ctx)
	defer cancel()
	subj := b.historySubject(channel)
	lastMsg, err := b.readLast(ctx, subj)
	if err != nil || lastMsg.seq == 0 {
		return laf.Position{}, nil, err
	}
	last := lastMsg.pos
	if since.Epoch != last.Epoch || since.Offset >= last.Offset || limits.Size <= 0 {
		return last, nil, nil
	}
	want := min(last.Offset-since.Offset, uint64(limits.Size))
	first := last.Offset - want + 1 // the oldest offset wanted
	back := want
	for {
		start := uint64(1)
		if back < lastMsg.seq {
			start = lastMsg.seq - back + 1
		}
		got, err := b.batchGet(ctx, subj, start, b.hist.limit())
		if err != nil {
			return laf.Position{}, nil, err
		}
		if start > 1 && (len(got) == 0 || got[0].pos.Offset > first || got[0].pos.Epoch != last.Epoch) {
			back *= 4 // started after the first wanted: go further back
			continue
		}
		var out []laf.HistoryEntry
		oldest := time.Now().Add(-limits.TTL)
		for _, g := range got {
			if g.pos.Epoch != last.Epoch || g.pos.Offset < first || g.pos.Offset > last.Offset {
				continue
			}
			if limits.TTL > 0 && g.at.Before(oldest) {
				continue
			}
			out = append(out, laf.HistoryEntry{Offset: g.pos.Offset, Msg: g.msg})
		}
		return last, out, nil
	}
}

// stored is a message of the history stream.
type stored struct {
	pos laf.Position
	at  time.Time
	msg []byte
}

// batchGet returns up to batch messages of subj from stream sequence
// start on, with one batched direct get.
func (b *Broker) batchGet(ctx context.Context, subj string, start uint64, batch int) ([]stored, error) {
	inbox := b.nc.NewInbox()
	sub, err := b.nc.SubscribeSync(inbox)
	if err != nil {
		return nil, err
	}
	defer sub.Unsubscribe()
	req, _ := json.Marshal(struct {
		Seq     uint64 `json:"seq"`
		NextFor string `json:"next_by_subj"`
		Batch   int    `json:"batch"`
	}{start, subj, batch})
	if err := b.nc.PublishRequest("$JS.API.DIRECT.GET."+b.historyStream(), inbox, req); err != nil {
		return nil, err
	}
	var out []stored
	for {
		m, err := sub.NextMsgWithContext(ctx)
		if err != nil {
			return nil, err
		}
		if st := m.Header.Get("Status"); st != "" {
			if st == "204" || st == "404" { // the end of the batch; or nothing
				return out, nil
			}
			return nil, fmt.Errorf("natsbroker: direct get: %s %s", st, m.Header.Get("Description"))
		}
		pos, body, err := parseFrame(m.Data)
		if err != nil {
			return nil, err
		}
		at, _ := time.Parse(time.RFC3339Nano, m.Header.Get("Nats-Time-Stamp"))
		out = append(out, stored{pos, at, body})
	}
}

// randomID returns 64 random bits in 11 characters of [A-Za-z0-9_-].
func randomID() string {
	var b [8]byte
	rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}
