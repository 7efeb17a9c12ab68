package laf

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/coder/websocket"
)

// Socket is one live WebSocket connection, Laf's ctx.socket. All its
// methods are safe to call from any goroutine, at any time, including
// after it has closed.
//
// Sends are queued and written in the order they were queued, so a send
// never waits for the peer's network. What is sent while one of the
// socket's own events runs is written by the socket's goroutine as soon as
// the event returns, or within about 1–2 ms if the event runs longer;
// other sends are written by a writer goroutine that runs only
// while the queue is not empty. Each socket's queue has a budget (see
// WithSendQueue and WithSlowPolicy).
type Socket struct {
	id       string
	identity string
	ep       *Endpoint
	conn     *websocket.Conn
	netConn  net.Conn // under conn, for closes that must not wait
	req      *http.Request
	ctx      context.Context
	cancel   context.CancelFunc
	born     time.Time

	mu      sync.Mutex
	queue   []Message // waiting to be written
	spare   []Message // the writer's last batch, reused
	qBytes  int       // bytes queued or being written
	writing bool      // a writer is running
	inEvent bool      // the socket's own event runs: its goroutine writes when it returns
	waiting bool      // the queue waits for the event's end, or for the late flusher
	waitSeq uint64    // counts the waits, so the late flusher starts only the one it saw
	closing bool      // a close was decided; sends return ErrClosed
	hard    bool      // the close drops the connection without a handshake
	code    int       // the close decided, valid once closing
	reason  string
	cause   CloseCause
	writers sync.WaitGroup
	writeFn func() // s.write, made once: "go s.write()" allocates a closure each time
	traffic *traffic
	wbuf    [maxHeader + smallMessage]byte // the writer's, for small frames
	lent    *FunctionContext               // the message event WithLentData reuses

	rooms map[string]struct{} // guarded by ep.mu

	inHandler  atomic.Bool
	lastActive atomic.Int64 // since born, in ns; kept only with an idle timeout

	timerMu   sync.Mutex // held by timer callbacks; stops them racing the end
	timersOff bool
	pingT     *time.Timer
	idleT     *time.Timer
	lifeT     *time.Timer
}

// ID returns the socket's id: 128 random bits, URL-safe, unique and
// unguessable. Endpoint.Socket and Endpoint.SendSocket find the socket by it.
func (s *Socket) ID() string { return s.id }

// Identity returns the identity the AuthFunc attached, or "".
func (s *Socket) Identity() string { return s.identity }

// Request returns the upgrade request.
func (s *Socket) Request() *http.Request { return s.req }

// Subprotocol returns the negotiated subprotocol, or "".
func (s *Socket) Subprotocol() string { return s.conn.Subprotocol() }

// Context returns a context that is done once the socket has closed, just
// before its close event runs. It carries the upgrade request's values.
func (s *Socket) Context() context.Context { return s.ctx }

// Send queues a text message. It returns ErrClosed if the socket is
// closing or closed, and ErrQueueFull if the queue budget refused it.
// Messages sent from one goroutine arrive in the order sent; messages from
// several goroutines each arrive whole.
func (s *Socket) Send(text string) error { return s.enqueue(Text(text)) }

// SendBinary queues a binary message holding a copy of b. It returns as
// Send does.
func (s *Socket) SendBinary(b []byte) error { return s.enqueue(Binary(b)) }

// SendJSON queues v encoded with encoding/json as a text message. It
// returns the encoding error, or as Send does.
func (s *Socket) SendJSON(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return s.enqueue(Message{data: b})
}

// SendMessage queues m. It returns as Send does.
func (s *Socket) SendMessage(m Message) error { return s.enqueue(m) }

// Close starts closing the socket with code and reason and returns at
// once. Messages queued before it are written first; then the close
// handshake runs, and the close event fires with this code and reason and
// CauseServer. Close returns ErrClosed if the socket is already closing,
// and an error if code may not be sent (valid: 1000–1003, 1007–1014,
// 3000–4999) or reason is over 123 bytes.
func (s *Socket) Close(code int, reason string) error {
	if err := checkClose(code, reason); err != nil {
		return err
	}
	if !s.closeWith(code, reason, CauseServer, false) {
		return ErrClosed
	}
	return nil
}

// Join adds the socket to room. Joining a room twice does nothing. A
// closed socket joins nothing.
func (s *Socket) Join(room string) { s.ep.join(s, room) }

// Leave removes the socket from room.
func (s *Socket) Leave(room string) { s.ep.leave(s, room) }

// Rooms returns the rooms the socket is in, in no particular order.
func (s *Socket) Rooms() []string { return s.ep.roomsOf(s) }

func checkClose(code int, reason string) error {
	switch {
	case code >= 1000 && code <= 1003, code >= 1007 && code <= 1014, code >= 3000 && code <= 4999:
	default:
		return fmt.Errorf("laf: close code %d may not be sent", code)
	}
	if len(reason) > 123 || !utf8.ValidString(reason) {
		return fmt.Errorf("laf: close reason must be at most 123 bytes of UTF-8, got %d bytes", len(reason))
	}
	return nil
}

// enqueue queues m under the budget and starts the writer if none runs.
func (s *Socket) enqueue(m Message) error {
	cfg := &s.ep.cfg
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		return ErrClosed
	}
	if s.qBytes > 0 && (len(s.queue)+1 > cfg.queueMessages || s.qBytes+len(m.data) > cfg.queueBytes) {
		switch cfg.slowPolicy {
		case DropNewest:
			s.mu.Unlock()
			s.ep.stats.dropped.Add(1)
			return ErrQueueFull
		case DropOldest:
			n := 0
			for n < len(s.queue) && (len(s.queue)-n+1 > cfg.queueMessages || s.qBytes+len(m.data) > cfg.queueBytes) {
				s.qBytes -= len(s.queue[n].data)
				n++
			}
			if len(s.queue)-n+1 > cfg.queueMessages || s.qBytes+len(m.data) > cfg.queueBytes {
				// What is left is being written; the new message cannot fit.
				s.dropFront(n)
				s.mu.Unlock()
				s.ep.stats.dropped.Add(uint64(n) + 1)
				return ErrQueueFull
			}
			s.dropFront(n)
			s.ep.stats.dropped.Add(uint64(n))
		default:
			s.decideClose(1008, "slow consumer", CauseSlowConsumer, true)
			s.mu.Unlock()
			s.ep.stats.slowClosed.Add(1)
			return ErrQueueFull
		}
	}
	s.queue = append(s.queue, m)
	s.qBytes += len(m.data)
	s.startWriter()
	s.mu.Unlock()
	return nil
}

// dropFront drops the n oldest queued messages. s.mu is held.
func (s *Socket) dropFront(n int) {
	kept := copy(s.queue, s.queue[n:])
	clear(s.queue[kept:])
	s.queue = s.queue[:kept]
}

// startWriter sees that the queue gets written: by a writer goroutine, or
// at the end of the socket's event that runs. s.mu is held.
func (s *Socket) startWriter() {
	if s.writing || s.waiting {
		return
	}
	if s.inEvent {
		s.waiting = true
		s.waitSeq++
		s.ep.late.add(s, s.waitSeq)
		return
	}
	s.writing = true
	s.writers.Add(1)
	go s.writeFn()
}

// write writes the queue until it is empty, then the close handshake if a
// graceful close was decided.
func (s *Socket) write() {
	defer s.writers.Done()
	for s.writeBatch() {
	}
}

// writeBatch writes what is queued and reports whether the writer goes on:
// it stops, with s.writing false, once the queue is empty and no close is
// decided, after the close handshake, or on an error.
func (s *Socket) writeBatch() bool {
	s.mu.Lock()
	if len(s.queue) == 0 {
		s.writing = false
		closing, hard, code, reason := s.closing, s.hard, s.code, s.reason
		s.mu.Unlock()
		if closing && !hard {
			s.conn.Close(websocket.StatusCode(code), reason)
		}
		return false
	}
	batch := s.queue
	s.queue, s.spare = s.spare, nil
	s.mu.Unlock()

	sent, err := s.writeFrames(batch)
	total, sentBytes := 0, 0
	for i, m := range batch {
		total += len(m.data)
		if i < sent {
			sentBytes += len(m.data)
		}
	}
	clear(batch)
	s.traffic.messagesOut.Add(uint64(sent))
	s.traffic.bytesOut.Add(uint64(sentBytes))
	if sent > 0 && s.ep.cfg.idleTimeout > 0 {
		s.touch()
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	s.qBytes -= total
	// Reuse the batch's array: for the queue if it has none (a burst
	// of one message at a time then allocates nothing), else later.
	if cap(s.queue) == 0 {
		s.queue = batch[:0]
	} else if s.spare == nil {
		s.spare = batch[:0]
	}
	if err != nil {
		// The connection is gone; the read loop sees it too and
		// decides the close. What is still queued cannot be written.
		s.writing = false
		s.qBytes = 0
		s.dropFront(len(s.queue))
		s.drop()
		return false
	}
	if len(s.queue) == 0 && !s.closing {
		s.writing = false
		return false
	}
	return true
}

// closeWith decides to close the socket unless a close was decided
// already, and reports whether it decided. A hard close drops the
// connection at once; a graceful one writes what is queued, then runs the
// close handshake.
func (s *Socket) closeWith(code int, reason string, cause CloseCause, hard bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.decideClose(code, reason, cause, hard)
}

// decideClose is closeWith with s.mu held.
func (s *Socket) decideClose(code int, reason string, cause CloseCause, hard bool) bool {
	if s.closing {
		return false
	}
	s.closing, s.hard = true, hard
	s.code, s.reason, s.cause = code, reason, cause
	if hard {
		s.dropFront(len(s.queue))
		s.drop()
		return true
	}
	s.startWriter()
	return true
}

// drop closes the TCP connection under the WebSocket. Whatever the
// WebSocket is doing, even a close handshake in progress, then fails at
// once, so nothing waits on a peer that is gone or not reading.
func (s *Socket) drop() {
	s.netConn.Close()
}

func (s *Socket) touch() {
	s.lastActive.Store(int64(time.Since(s.born)))
}
