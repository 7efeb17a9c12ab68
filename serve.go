package laf

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime/debug"
	"time"
	"unicode/utf8"

	"github.com/coder/websocket"
)

// ServeHTTP upgrades the request to a WebSocket and starts the socket's
// events on a goroutine of their own; it returns once the socket is in
// the registry. See Handler.
func (e *Endpoint) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// Shutdown sets shutting under the write lock, so no Add can race
	// its Wait.
	e.mu.RLock()
	if e.shutting {
		e.mu.RUnlock()
		e.stats.refused.Add(1)
		http.Error(w, "laf: endpoint is shutting down", http.StatusServiceUnavailable)
		return
	}
	e.conns.Add(1)
	e.mu.RUnlock()
	handedOver := false
	defer func() {
		if !handedOver {
			e.conns.Done()
		}
	}()

	var identity string
	if e.cfg.auth != nil {
		id, err := e.cfg.auth(r)
		if err != nil {
			e.stats.refused.Add(1)
			status, msg := http.StatusUnauthorized, ""
			var he *HTTPError
			if errors.As(err, &he) {
				status, msg = he.Status, he.Message
			}
			if msg == "" {
				msg = http.StatusText(status)
			}
			http.Error(w, msg, status)
			return
		}
		identity = id
	}

	hw := &hijackWriter{ResponseWriter: w}
	conn, err := websocket.Accept(hw, r, &websocket.AcceptOptions{
		Subprotocols:   e.cfg.subprotocols,
		OriginPatterns: e.cfg.originPatterns,
	})
	if err != nil {
		// Accept has written the response: 4xx for a bad or cross-origin
		// request.
		e.stats.refused.Add(1)
		e.cfg.logger.Debug("laf: upgrade refused", "remote", r.RemoteAddr, "err", err)
		return
	}
	e.stats.accepted.Add(1)
	// readMessage enforces the limit, so that the close frame's reason is
	// laf's own.
	conn.SetReadLimit(-1)

	// Without the request's cancellation, the socket's context does not
	// register with the server's: it is done when the socket closes.
	ctx, cancel := context.WithCancel(context.WithoutCancel(r.Context()))
	s := &Socket{
		id:       newID(),
		identity: identity,
		ep:       e,
		conn:     conn,
		netConn:  hw.conn,
		req:      r,
		ctx:      ctx,
		cancel:   cancel,
		born:     time.Now(),
	}
	s.writeFn = s.write
	s.traffic = &e.stats.traffic[e.stats.accepted.Load()%trafficStripes]
	if !e.register(s) {
		// Shutdown began during the upgrade: close as it closes the rest.
		s.closeWith(1001, "going away", CauseShutdown, false)
	}
	e.stats.live.Add(1)
	s.startTimers()
	// The socket runs on a goroutine of its own, and ServeHTTP returns: an
	// idle socket then keeps a small stack, not the one net/http grew
	// parsing the request.
	handedOver = true
	go func() {
		defer e.conns.Done()
		s.run()
	}()
}

// run delivers the socket's events until it closes.
func (s *Socket) run() {
	e := s.ep
	s.beginEvent()
	ok := s.call(s.event(MethodConnection, Params{}))
	s.endEvent()
	if ok {
		s.readLoop()
	}

	// The writer finishes the close handshake, or fails at once if the
	// connection is gone; then nothing of the connection is left running.
	s.writers.Wait()
	s.conn.CloseNow()
	s.stopTimers()

	e.unregister(s)
	e.stats.live.Add(-1)
	s.mu.Lock()
	code, reason, cause := s.code, s.reason, s.cause
	s.mu.Unlock()
	s.cancel()
	s.call(s.event(MethodClose, Params{Code: code, Reason: reason, Cause: cause}))
}

// readLoop reads and delivers messages until a close is decided.
func (s *Socket) readLoop() {
	e := s.ep
	// A context that is never done: coder/websocket allocates per frame for
	// one that can be. Closing the connection is what stops a read.
	ctx := context.Background()
	for {
		typ, r, err := s.conn.Reader(ctx)
		if err != nil {
			s.readFailed(err)
			return
		}
		bp, err := e.readMessage(r)
		if err != nil {
			s.readFailed(err)
			return
		}
		msg := *bp
		binary := typ == websocket.MessageBinary
		switch {
		case s.isClosing():
			// A close is under way; the peer's close frame ends the loop.
			e.putReadBuf(bp)
			continue
		case !binary && !utf8.Valid(msg):
			e.putReadBuf(bp)
			s.fail(1007, "invalid UTF-8", CauseProtocol, ErrInvalidUTF8)
			return
		}
		var fc *FunctionContext
		if e.cfg.lentData {
			fc = s.lentEvent(msg)
		} else {
			fc = s.messageEvent(msg)
			e.putReadBuf(bp)
		}
		fc.Params.IsBinary = binary
		s.traffic.messagesIn.Add(1)
		s.traffic.bytesIn.Add(uint64(len(msg)))
		if e.cfg.idleTimeout > 0 {
			s.touch()
		}
		s.beginEvent()
		ok := s.call(fc)
		written := s.endEvent()
		if e.cfg.lentData {
			*fc = FunctionContext{}
			if written {
				e.putReadBuf(bp)
			} // else a writer may still send Data: the buffer is left to the GC
		}
		if !ok {
			return
		}
	}
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
	*fc = FunctionContext{Method: MethodMessage, Params: Params{Data: data}, Socket: s, Request: s.req, Shared: s.ep.cfg.shared}
	return fc
}

// lentEvent returns the socket's reused message event, with msg as its
// Data (see WithLentData).
func (s *Socket) lentEvent(msg []byte) *FunctionContext {
	if s.lent == nil {
		s.lent = new(FunctionContext)
	}
	*s.lent = FunctionContext{Method: MethodMessage, Params: Params{Data: msg}, Socket: s, Request: s.req, Shared: s.ep.cfg.shared}
	return s.lent
}

// readMessage reads one message whole into a pooled buffer, which the
// caller returns with putReadBuf, or fails with ErrMessageTooBig as soon
// as the message is over the read limit.
func (e *Endpoint) readMessage(r io.Reader) (*[]byte, error) {
	limit := e.cfg.readLimit
	bp, _ := e.readBufs.Get().(*[]byte)
	if bp == nil {
		b := make([]byte, 0, 4096)
		bp = &b
	}
	buf := (*bp)[:0]
	for {
		if limit >= 0 && int64(len(buf)) > limit {
			*bp = buf
			e.putReadBuf(bp)
			return nil, ErrMessageTooBig
		}
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		room := buf[len(buf):cap(buf)]
		if limit >= 0 && int64(len(room)) > limit+1-int64(len(buf)) {
			room = room[:limit+1-int64(len(buf))] // one byte past the limit tells
		}
		n, err := r.Read(room)
		buf = buf[:len(buf)+n]
		*bp = buf
		if err == io.EOF {
			return bp, nil
		}
		if err != nil {
			e.putReadBuf(bp)
			return nil, err
		}
	}
}

// putReadBuf keeps ordinary read buffers for reuse, and lets a rare huge
// one go.
func (e *Endpoint) putReadBuf(bp *[]byte) {
	if cap(*bp) <= 64<<10 {
		*bp = (*bp)[:0]
		e.readBufs.Put(bp)
	}
}

// readFailed decides the close after a failed read.
func (s *Socket) readFailed(err error) {
	if s.isClosing() {
		return // the close we decided is what ended the read
	}
	if ce := (websocket.CloseError{}); errors.As(err, &ce) {
		s.closeWith(int(ce.Code), ce.Reason, CausePeer, true)
		return
	}
	switch {
	case errors.Is(err, ErrMessageTooBig):
		s.fail(1009, "message too big", CauseReadLimit, err)
	case isDropped(err):
		s.fail(1006, "", CauseAbnormal, err)
	default:
		s.fail(1002, "protocol error", CauseProtocol, fmt.Errorf("%w: %w", ErrProtocol, err))
	}
}

// fail fires the error event and closes with code.
func (s *Socket) fail(code int, reason string, cause CloseCause, err error) {
	// A broken or vanished peer will not answer a close handshake;
	// coder/websocket has already sent 1002 where it could.
	hard := code == 1006 || code == 1002
	if !s.closeWith(code, reason, cause, hard) {
		return
	}
	s.call(s.event(MethodError, Params{Err: err}))
}

func isDropped(err error) bool {
	var ne net.Error
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, net.ErrClosed) || errors.As(err, &ne)
}

func (s *Socket) isClosing() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closing
}

// event returns a new context for an event other than a message.
func (s *Socket) event(method string, p Params) *FunctionContext {
	return &FunctionContext{Method: method, Params: p, Socket: s, Request: s.req, Shared: s.ep.cfg.shared}
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
	code, reason := 1011, "internal error"
	var ce *CloseError
	if errors.As(err, &ce) {
		if checkClose(ce.Code, ce.Reason) == nil {
			code, reason = ce.Code, ce.Reason
		} else {
			s.ep.cfg.logger.Error("laf: handler's close error cannot be sent; closing with 1011",
				"socket", s.id, "code", ce.Code)
		}
	}
	s.closeWith(code, reason, CauseHandlerError, false)
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

// hijackWriter keeps the connection that websocket.Accept hijacks, so
// that a socket can be dropped even while coder/websocket waits on it.
type hijackWriter struct {
	http.ResponseWriter
	conn net.Conn
}

func (w *hijackWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c, brw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	w.conn = c
	return c, brw, err
}

func newID() string {
	var b [16]byte
	rand.Read(b[:]) // never fails (crypto/rand, Go 1.24+)
	return base64.RawURLEncoding.EncodeToString(b[:])
}
