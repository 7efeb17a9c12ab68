package load

import (
	"context"
	"errors"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	"github.com/lafgo/laf/bench/internal/wire"
)

// Receivers reads every socket of conns in its own goroutine and tracks
// broadcasts: for the current sequence number, how many sockets have it
// and when each got it.
type Receivers struct {
	conns []*websocket.Conn
	cur   atomic.Uint64
	sent  atomic.Int64 // server's time in the current broadcast
	count atomic.Int64
	recv  []atomic.Int64
	done  chan struct{}
	wg    sync.WaitGroup
	other atomic.Uint64 // messages that were not the current broadcast
}

// Receive starts reading conns.
func Receive(conns []*websocket.Conn) *Receivers {
	r := &Receivers{conns: conns, recv: make([]atomic.Int64, len(conns)), done: make(chan struct{}, 1)}
	for i, c := range conns {
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			buf := make([]byte, 2048)
			for {
				var p []byte
				var err error
				if _, p, buf, err = readInto(c, buf); err != nil {
					return
				}
				now := time.Now().UnixNano()
				kind, seq, sent, err := wire.Parse(p)
				if err != nil || kind != wire.Broadcast || seq != r.cur.Load() {
					r.other.Add(1)
					continue
				}
				r.sent.Store(sent)
				r.recv[i].Store(now)
				if r.count.Add(1) == int64(len(r.conns)) {
					select {
					case r.done <- struct{}{}:
					default:
					}
				}
			}
		}()
	}
	return r
}

// Stop closes the sockets and waits for the readers.
func (r *Receivers) Stop() {
	CloseAll(r.conns)
	r.wg.Wait()
}

// BroadcastResult is the outcome of a series of broadcasts.
type BroadcastResult struct {
	Receivers int
	Times     []time.Duration // per broadcast: from the server's start to the last socket's receipt
	Timeouts  int             // broadcasts not every socket had within the timeout
}

// Median returns the median completion time.
func (b *BroadcastResult) Median() time.Duration { return b.quantile(0.5) }

// Max returns the slowest completion time.
func (b *BroadcastResult) Max() time.Duration { return b.quantile(1) }

func (b *BroadcastResult) quantile(q float64) time.Duration {
	if len(b.Times) == 0 {
		return 0
	}
	t := append([]time.Duration(nil), b.Times...)
	sort.Slice(t, func(i, j int) bool { return t[i] < t[j] })
	i := int(q*float64(len(t)-1) + 0.5)
	return t[i]
}

// DeliveriesPerSec is receivers over the median completion time.
func (b *BroadcastResult) DeliveriesPerSec() float64 {
	m := b.Median()
	if m <= 0 {
		return 0
	}
	return float64(b.Receivers) / m.Seconds()
}

// Broadcasts asks the server for n broadcasts of size bytes, one after
// the other, each once every reader had the previous one (or timeout
// passed), and times each.
func (t *Target) Broadcasts(r *Receivers, n, size int, timeout time.Duration) (*BroadcastResult, error) {
	return t.broadcasts(r, n, size, timeout, false)
}

func (t *Target) broadcasts(r *Receivers, n, size int, timeout time.Duration, chat bool) (*BroadcastResult, error) {
	res := &BroadcastResult{Receivers: len(r.conns)}
	for k := 1; k <= n; k++ {
		seq := uint64(time.Now().UnixNano())<<8 | uint64(k&0xff)
		r.count.Store(0)
		for i := range r.recv {
			r.recv[i].Store(0)
		}
		select {
		case <-r.done:
		default:
		}
		r.cur.Store(seq)
		if err := t.broadcast(size, seq, chat); err != nil {
			return res, err
		}
		select {
		case <-r.done:
		case <-time.After(timeout):
			res.Timeouts++
			continue
		}
		var last int64
		for i := range r.recv {
			if v := r.recv[i].Load(); v > last {
				last = v
			}
		}
		res.Times = append(res.Times, time.Duration(last-r.sent.Load()))
		time.Sleep(5 * time.Millisecond)
	}
	if len(res.Times) == 0 {
		return res, errors.New("load: no broadcast reached every socket")
	}
	return res, nil
}

// Stuck dials one socket that never reads, with a small receive buffer,
// and fills its path: it sends echo requests of 16 KiB that it never
// reads until a write stalls for stall or limit bytes are sent, so that
// the server's writes to it block. It returns the socket (close it when
// done) and the bytes sent.
func (t *Target) Stuck(limit int, stall time.Duration) (*websocket.Conn, int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := t.dialWith(ctx, t.stuckDialer, 0)
	if err != nil {
		return nil, 0, err
	}
	msg := wire.New(wire.Echo, 16<<10, 0, 0)
	sent := 0
	for sent < limit {
		c.SetWriteDeadline(time.Now().Add(stall))
		if c.WriteMessage(websocket.TextMessage, msg) != nil {
			break // stalled, or the server dropped it
		}
		sent += len(msg)
	}
	return c, sent, nil
}
