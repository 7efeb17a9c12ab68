package laf

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"runtime/debug"
	"time"
)

// run delivers the socket's events until it closes. A connection event
// that fails decides the close; the socket reads on all the same, to the
// peer's close frame.
func (s *Socket) run() {
	s.out.beginEvent()
	ok := s.call(s.event(MethodConnection, Params{}))
	s.out.endEvent()
	if !ok {
		s.out.awaitCloseFrame() // see readLoop
	}
	s.serve()
}

// parkAfter is how long, at least, a socket waits for its peer on its own
// goroutine before it parks (see wsconn.Config.ParkAfter); at most it is
// twice that.
const parkAfter = 250 * time.Millisecond

// serve reads and delivers messages until the socket closes, or until it
// parks: the Endpoint's poller then resumes it on a fresh goroutine once
// its peer sends, or its connection is closed.
func (s *Socket) serve() {
	for s.readLoop() {
		if s.ep.poll.park(s) {
			return
		}
	}
	s.finish()
}

// resume serves a socket the poller has taken out of parked.
func (s *Socket) resume() {
	s.ep.poll.forget(s)
	s.serve()
}

// finish closes the socket once its read has ended, and runs the close
// event.
func (s *Socket) finish() {
	e := s.ep
	defer e.conns.Done()
	defer e.releaseCapacity(s.capKey)

	// The writer finishes writing, or fails at once if the connection is
	// gone; then nothing of the connection is left running.
	s.out.writers.Wait()
	s.out.stopCloseTimer()
	s.conn.Close()
	s.stopTimers()

	e.reg.remove(s)
	e.stats.live.Add(-1)
	c := s.out.decision()
	e.stats.closes[c.cause].Add(1)
	s.endContext()
	s.call(s.event(MethodClose, Params{Code: c.code, Reason: c.reason, Cause: c.cause}))
}

// event returns a new context for an event other than a message.
func (s *Socket) event(method string, p Params) *FunctionContext {
	return &FunctionContext{Method: method, Params: p, Socket: s, Request: s.req, Shared: s.ep.cfg.shared, Endpoint: s.ep}
}

// call runs the Func for one event and reports whether the socket stays
// open. An error or panic from a connection or message event decides the
// close; from an error or close event it is only logged.
func (s *Socket) call(fc *FunctionContext) bool {
	err := s.invoke(fc)
	if err == nil {
		return true
	}
	if fc.Method == MethodError || fc.Method == MethodClose {
		return false
	}
	c := closeFor(CauseHandlerError)
	var ce *CloseError
	if errors.As(err, &ce) {
		if checkClose(ce.Code, ce.Reason) == nil {
			c = c.with(ce.Code, ce.Reason)
		} else {
			s.ep.cfg.logger.Error("laf: handler's close error cannot be sent; closing with 1011",
				"socket", s.id, "code", ce.Code)
		}
	}
	s.out.decide(c)
	return false
}

// invoke runs the Func, turning a panic into an error.
func (s *Socket) invoke(fc *FunctionContext) (err error) {
	e := s.ep
	method := fc.Method
	s.inHandler.Store(true)
	defer func() {
		s.inHandler.Store(false)
		if v := recover(); v != nil {
			e.stats.panics.Add(1)
			e.cfg.logger.Error("laf: handler panicked", "socket", s.id, "method", method,
				"panic", v, "stack", string(debug.Stack()))
			err = fmt.Errorf("laf: panic in %s handler: %v", method, v)
		}
	}()
	if err = e.fn(fc); err != nil {
		e.stats.handlerErrors.Add(1)
		e.cfg.logger.Error("laf: handler error", "socket", s.id, "method", method, "err", err)
	}
	return err
}

// smallMessage is the largest payload allocated together with its event.
const smallMessage = 128

// smallEvent is a message event with its payload, in one allocation.
type smallEvent struct {
	fc  FunctionContext
	buf [smallMessage]byte
}

// messageEvent returns a message event whose Data, which the Func will
// own, is a copy of msg.
func (s *Socket) messageEvent(msg []byte) *FunctionContext {
	var fc *FunctionContext
	var data []byte
	if len(msg) <= smallMessage {
		ev := new(smallEvent)
		fc, data = &ev.fc, ev.buf[:len(msg):len(msg)]
		copy(data, msg)
	} else {
		fc = new(FunctionContext)
		d := make([]byte, len(msg))
		copy(d, msg) // right after make, so the runtime skips zeroing d
		data = d
	}
	s.fillEvent(fc, data)
	return fc
}

// newMessageEvent returns a new message event with room for an n-byte
// payload, its Data, for the caller to fill.
func (s *Socket) newMessageEvent(n int) *FunctionContext {
	var fc *FunctionContext
	var data []byte
	if n <= smallMessage {
		ev := new(smallEvent)
		fc, data = &ev.fc, ev.buf[:n:n]
	} else {
		fc, data = new(FunctionContext), make([]byte, n)
	}
	s.fillEvent(fc, data)
	return fc
}

func (s *Socket) fillEvent(fc *FunctionContext, data []byte) {
	*fc = FunctionContext{Method: MethodMessage, Params: Params{Data: data}, Socket: s, Request: s.req, Shared: s.ep.cfg.shared, Endpoint: s.ep}
}

// lentEvent returns the socket's reused message event, with msg as its
// Data (see WithLentData).
func (s *Socket) lentEvent(msg []byte) *FunctionContext {
	if s.lent == nil {
		s.lent = new(FunctionContext)
	}
	s.fillEvent(s.lent, msg)
	return s.lent
}

func newID() string {
	var b [16]byte
	rand.Read(b[:]) // never fails (crypto/rand, Go 1.24+)
	return base64.RawURLEncoding.EncodeToString(b[:])
}
