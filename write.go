package laf

import (
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lafgo/laf/internal/wsconn"
)

// outState is where a socket's write side stands. The states and the
// moves between them:
//
//	idle ──send──▶ writing ──queue written──▶ idle
//	idle ──event begins──▶ event ──event ends──▶ idle
//	event ──send──▶ held ──event ends: the socket's goroutine writes──▶ writing
//	held ──event runs past flushDelay: the late flusher──▶ writing
//	writing ──event begins──▶ eventWriting ──queue written──▶ event
//	eventWriting ──event ends──▶ writing
//	writing, eventWriting ──a write fails──▶ failed
//	idle … eventWriting ──close decided, graceful, the connection open──▶ closing
//	closing ──queue and close frame written, or a write failed──▶ closed
//	idle … eventWriting ──close decided, drop, or the connection past open──▶ closed
//	failed ──close decided──▶ closed
//
// A writer runs exactly in writing, eventWriting and closing; sends are
// taken in the states before failed.
type outState uint8

const (
	outIdle         outState = iota // nothing to write, no writer
	outEvent                        // the socket's event runs; nothing is queued
	outHeld                         // the event runs and holds its sends until it returns
	outWriting                      // a writer writes the queue
	outEventWriting                 // a writer writes while the event runs; after it, sends are held again
	outFailed                       // a write failed or a close frame went out: nothing more can be written; no close decided yet
	outClosing                      // a graceful close is decided: the writer writes the queue, then runs the close handshake
	outClosed                       // the close is decided and done with: nothing more is written
)

// outbox is a socket's write side, the one owner of everything that
// decides what reaches the connection: the send queue and its budget, the
// writer that empties it, the sends held back while the socket's own
// event runs, and the decision to close. A send never waits for the
// network; the writer is a goroutine that runs only while there is
// something to write, or the socket's own goroutine when its event ends.
//
// The lock order is written once, in locks.go.
type outbox struct {
	s *Socket

	mu      sync.Mutex
	state   outState
	queue   []Message   // waiting to be written
	spare   []Message   // the writer's last batch, reused
	qBytes  int         // bytes queued or being written
	dropped uint64      // messages the slow policy dropped
	heldSeq uint64      // counts the times sends were held, so the late flusher releases only the one it saw
	close   closeSpec   // the close decided, valid in closing and closed
	closing atomic.Bool // state is closing or closed: set with it, read without o.mu
	closeT  *time.Timer // drops the connection once a graceful close has taken the close timeout

	writers sync.WaitGroup // the running writer, if any
	writeFn func()         // o.write, made once: "go o.write()" allocates a closure each time
}

func (o *outbox) init(s *Socket) {
	o.s = s
	o.writeFn = o.write
}

// decided reports whether a close has been decided.
func (o *outbox) decided() bool { return o.closing.Load() }

// awaitCloseFrame waits, once a graceful close has been decided, until its
// writer has written the queue and the close frame (or failed): see
// readLoop.
func (o *outbox) awaitCloseFrame() {
	if o.decided() {
		o.writers.Wait() // no writer starts once a close is decided
	}
}

// decision returns the close decided.
func (o *outbox) decision() closeSpec {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.close
}

// enqueue queues m under the budget and sees that it gets written.
func (o *outbox) enqueue(m Message) error {
	cfg := &o.s.ep.cfg
	stats := &o.s.ep.stats
	if o.s.deflate {
		m = o.s.ep.compressible(m) // unless a fan-out made it so for every socket
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.state >= outFailed {
		return ErrClosed
	}
	if m.key != "" {
		for i := range o.queue {
			if o.queue[i].key == m.key {
				if m.olderThan(&o.queue[i]) {
					return nil // a newer position of the room is queued already
				}
				o.qBytes += len(m.data) - len(o.queue[i].data)
				o.queue[i] = m
				stats.replaced.Add(1)
				return nil // the queue was not empty: its writer is on the way
			}
		}
	}
	if o.qBytes > 0 && (len(o.queue)+1 > cfg.queueMessages || o.qBytes+len(m.data) > cfg.queueBytes) {
		switch cfg.slowPolicy {
		case DropNewest:
			o.countDropped(1)
			return ErrQueueFull
		case DropOldest:
			n := 0
			for n < len(o.queue) && (len(o.queue)-n+1 > cfg.queueMessages || o.qBytes+len(m.data) > cfg.queueBytes) {
				o.qBytes -= len(o.queue[n].data)
				n++
			}
			o.dropFront(n)
			if len(o.queue)+1 > cfg.queueMessages || o.qBytes+len(m.data) > cfg.queueBytes {
				// What is left is being written; the new message cannot fit.
				o.countDropped(n + 1)
				return ErrQueueFull
			}
			o.countDropped(n)
		default:
			o.decideLocked(closeFor(CauseSlowConsumer))
			stats.slowClosed.Add(1)
			return ErrQueueFull
		}
	}
	o.queue = append(o.queue, m)
	o.qBytes += len(m.data)
	o.kick()
	return nil
}

// countDropped counts n messages the slow policy dropped. o.mu is held.
func (o *outbox) countDropped(n int) {
	o.dropped += uint64(n)
	o.s.ep.stats.dropped.Add(uint64(n))
}

// figures returns the bytes queued or being written, and the messages
// the slow policy dropped.
func (o *outbox) figures() (buffered int, dropped uint64) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.qBytes, o.dropped
}

// dropFront drops the n oldest queued messages. o.mu is held.
func (o *outbox) dropFront(n int) {
	kept := copy(o.queue, o.queue[n:])
	clear(o.queue[kept:])
	o.queue = o.queue[:kept]
}

// kick sees that the queue gets written: by a new writer goroutine, or at
// the end of the socket's event. o.mu is held.
func (o *outbox) kick() {
	switch o.state {
	case outIdle:
		o.state = outWriting
		o.startWriter()
	case outEvent:
		o.state = outHeld
		o.heldSeq++
		o.s.ep.late.add(o, o.heldSeq)
	}
}

// startWriter starts a writer goroutine. o.mu is held.
func (o *outbox) startWriter() {
	o.writers.Add(1)
	go o.writeFn()
}

// beginEvent notes that the socket's own event runs: its sends are held
// until it returns.
func (o *outbox) beginEvent() {
	o.mu.Lock()
	switch o.state {
	case outIdle:
		o.state = outEvent
	case outWriting:
		o.state = outEventWriting
	}
	o.mu.Unlock()
}

// endEvent writes what the event held back, on the socket's goroutine.
// What more is queued meanwhile, and a close handshake, go to a writer
// goroutine, so that the socket goes back to reading promptly. It reports
// whether everything the event sent has been written (or has failed), so
// that nothing queued still refers to the event's Data.
func (o *outbox) endEvent() (written bool) {
	o.mu.Lock()
	switch o.state {
	case outEvent:
		o.state = outIdle
		o.mu.Unlock()
		return true
	case outIdle:
		// The late flusher released the event's sends, and they are written.
		o.mu.Unlock()
		return true
	case outHeld:
		o.state = outWriting
		o.writers.Add(1)
		o.mu.Unlock()
		// writeBatch takes the whole queue: once it returns, all that the
		// event sent is written, or has failed.
		if o.writeBatch() {
			go o.writeFn()
		} else {
			o.writers.Done()
		}
		return true
	case outEventWriting:
		o.state = outWriting
	}
	// A writer, or a close, has what the event sent.
	o.mu.Unlock()
	return false
}

// flushLate starts the writer of an event that still holds back the sends
// it held when the late flusher took note (seq); the rest of that event's
// sends start the writer at once.
func (o *outbox) flushLate(seq uint64) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.state == outHeld && o.heldSeq == seq {
		o.state = outWriting
		o.startWriter()
	}
}

// write is the writer goroutine: it writes the queue until it is empty,
// then the close handshake if a graceful close was decided.
func (o *outbox) write() {
	defer o.writers.Done()
	for o.writeBatch() {
	}
}

// writeBatch writes what is queued and reports whether the writer goes
// on: it stops once the queue is empty and no close is decided, after the
// close handshake, or on an error.
func (o *outbox) writeBatch() bool {
	o.mu.Lock()
	if len(o.queue) == 0 {
		return o.stopWriter()
	}
	batch := o.queue
	o.queue, o.spare = o.spare, nil
	o.mu.Unlock()

	sent, err := o.writeFrames(batch)
	total, sentBytes := 0, 0
	for i, m := range batch {
		total += len(m.data)
		if i < sent {
			sentBytes += len(m.data)
		}
	}
	clear(batch)
	s := o.s
	s.traffic.messagesOut.Add(uint64(sent))
	s.traffic.bytesOut.Add(uint64(sentBytes))
	if sent > 0 && s.ep.cfg.idleTimeout > 0 {
		s.touch()
	}

	o.mu.Lock()
	o.qBytes -= total
	// Reuse the batch's array: for the queue if it has none (a burst
	// of one message at a time then allocates nothing), else later.
	if cap(o.queue) == 0 {
		o.queue = batch[:0]
	} else if o.spare == nil {
		o.spare = batch[:0]
	}
	if err != nil {
		o.writeFailed(err)
		o.mu.Unlock()
		return false
	}
	if len(o.queue) > 0 || o.state == outClosing {
		o.mu.Unlock()
		return true
	}
	return o.stopWriter()
}

// stopWriter ends the writer once the queue is empty, after the close
// handshake if one is due, and unlocks o.mu. It reports false.
func (o *outbox) stopWriter() bool {
	switch o.state {
	case outWriting:
		o.state = outIdle
	case outEventWriting:
		o.state = outEvent
	case outClosing:
		c := o.close
		o.mu.Unlock()
		o.handshake(c)
		return false
	}
	o.mu.Unlock()
	return false
}

// handshake writes the close frame. The socket's goroutine reads on
// until the peer's close frame ends the read, or the close timeout drops
// the connection: the socket's goroutine is the connection's only reader.
func (o *outbox) handshake(c closeSpec) {
	if err := o.s.conn.WriteClose(c.code, c.reason); err != nil {
		o.s.closeConn() // no handshake can follow: end the read
	}
	o.mu.Lock()
	o.state = outClosed
	o.mu.Unlock()
}

// writeFailed gives up the queue after a failed write. o.mu is held.
func (o *outbox) writeFailed(err error) {
	o.qBytes = 0
	o.dropFront(len(o.queue))
	switch o.state {
	case outClosing:
		// No handshake can follow.
		o.state = outClosed
		o.s.closeConn()
	case outWriting, outEventWriting:
		o.state = outFailed
		if !errors.Is(err, wsconn.ErrCloseSent) {
			// The connection is broken; the read loop sees it and decides
			// the close.
			o.s.closeConn()
		}
		// Else the reader answered the peer's close frame, and the read
		// loop is about to decide the close from it.
	}
}

// decide decides to close the socket as c says, unless a close was
// decided already, and reports whether it decided.
func (o *outbox) decide(c closeSpec) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.decideLocked(c)
}

// decideLocked is decide with o.mu held.
func (o *outbox) decideLocked(c closeSpec) bool {
	prev := o.state
	if prev >= outClosing {
		return false
	}
	o.close = c
	if c.mode == drop || prev == outFailed || o.s.conn.State() != wsconn.Open {
		// Nothing more can be written, or need be.
		o.state = outClosed
		o.closing.Store(true)
		o.qBytes = 0
		o.dropFront(len(o.queue))
		o.s.closeConn()
		return true
	}
	o.state = outClosing
	o.closeT = time.AfterFunc(o.s.ep.cfg.closeTimeout, o.closeTimedOut)
	switch prev {
	case outIdle, outEvent, outHeld:
		// A held queue is written now, not at the event's end: the close
		// should not wait on the Func.
		o.startWriter()
	}
	o.closing.Store(true) // after the writer is counted, for awaitCloseFrame
	return true
}

// closeTimedOut drops the connection of a graceful close that has not
// finished within the close timeout: the peer does not read, or does not
// answer the close frame.
func (o *outbox) closeTimedOut() { o.s.closeConn() }

// stopCloseTimer stops the close timeout once the close is done.
func (o *outbox) stopCloseTimer() {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closeT != nil {
		o.closeT.Stop()
	}
}

// A socket's own goroutine writes what the socket's event sent once the
// event returns: a reply to a message then costs no goroutine to start and
// schedule. A per-socket timer would cost as much as the goroutine (arming
// one wakes the network poller), so one late flusher per Endpoint, running
// only while some socket waits, starts the writer of an event that runs
// past flushDelay.

// flushDelay is how long, at least, a long-running event holds back its
// socket's sends; at most it is twice that.
const flushDelay = time.Millisecond

// lateFlusher collects the outboxes whose sends are held for their event's
// end, and after one to two flushDelays starts the writers of those still
// held. Its goroutine runs only while some are held.
type lateFlusher struct {
	mu      sync.Mutex
	fresh   []lateWait // noted during this tick
	due     []lateWait // noted during the last tick, flushed at the end of this one
	free    []lateWait // an array to reuse
	running bool
}

type lateWait struct {
	o   *outbox
	seq uint64
}

// add notes an outbox whose sends are held. o.mu is held.
func (f *lateFlusher) add(o *outbox, seq uint64) {
	f.mu.Lock()
	f.fresh = append(f.fresh, lateWait{o, seq})
	if !f.running {
		f.running = true
		go f.run()
	}
	f.mu.Unlock()
}

func (f *lateFlusher) run() {
	for {
		time.Sleep(flushDelay)
		f.mu.Lock()
		due := f.due
		f.due, f.fresh, f.free = f.fresh, f.free, nil
		stop := len(due) == 0 && len(f.due) == 0
		if stop {
			f.running = false
		}
		f.mu.Unlock()
		for _, w := range due {
			w.o.flushLate(w.seq)
		}
		clear(due)
		f.mu.Lock()
		f.free = due[:0]
		f.mu.Unlock()
		if stop {
			return
		}
	}
}
