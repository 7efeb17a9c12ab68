package laf

import (
	"sync"
	"time"
)

// A socket's own goroutine writes what the socket's event sent once the
// event returns: a reply to a message then costs no goroutine to start and
// schedule. A per-socket timer would cost as much as the goroutine (arming
// one wakes the network poller), so one late flusher per Endpoint, running
// only while some socket waits, starts the writer of an event that runs
// past flushDelay.

// flushDelay is how long, at least, a long-running event holds back its
// socket's sends; at most it is twice that.
const flushDelay = time.Millisecond

// beginEvent marks the socket's own event as running.
func (s *Socket) beginEvent() {
	s.mu.Lock()
	s.inEvent = true
	s.mu.Unlock()
}

// endEvent writes what the event queued, on the socket's goroutine. What
// more is queued meanwhile, and a close handshake, go to a writer
// goroutine, so that the socket goes back to reading promptly. It reports
// whether everything the event sent has been written (or has failed), so
// that nothing queued still refers to the event's Data.
func (s *Socket) endEvent() (written bool) {
	s.mu.Lock()
	s.inEvent = false
	if !s.waiting {
		written = !s.writing
		s.mu.Unlock()
		return written
	}
	s.waiting = false
	s.writing = true
	s.writers.Add(1)
	if s.closing {
		go s.writeFn()
		s.mu.Unlock()
		return false
	}
	s.mu.Unlock()
	// writeBatch takes the whole queue: once it returns, all that the
	// event sent is written, or has failed.
	if s.writeBatch() {
		go s.writeFn()
	} else {
		s.writers.Done()
	}
	return true
}

// flushLate starts the writer of an event that still holds back the sends
// it held back when the late flusher took note (seq); the rest of that
// event's sends start the writer at once.
func (s *Socket) flushLate(seq uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.waiting && s.waitSeq == seq {
		s.waiting, s.inEvent = false, false
		s.startWriter()
	}
}

// lateFlusher collects the sockets whose sends wait for their event's end,
// and after one to two flushDelays starts the writers of those still
// waiting. Its goroutine runs only while sockets wait.
type lateFlusher struct {
	mu      sync.Mutex
	fresh   []lateWait // noted during this tick
	due     []lateWait // noted during the last tick, flushed at the end of this one
	free    []lateWait // an array to reuse
	running bool
}

type lateWait struct {
	s   *Socket
	seq uint64
}

// add notes a socket that waits. s.mu is held.
func (f *lateFlusher) add(s *Socket, seq uint64) {
	f.mu.Lock()
	f.fresh = append(f.fresh, lateWait{s, seq})
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
			w.s.flushLate(w.seq)
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
