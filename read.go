package laf

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"time"
	"unicode/utf8"

	"github.com/coder/websocket"
)

// errPark is the read a socket fails to park; see parkAfter.
var errPark = errors.New("laf: socket parks")

// readChunk is the size of the pooled chunks an idleReader reads into,
// and of the largest payload laf gives memory before it arrives.
const readChunk = 4 << 10

// frontBuffer is the size of the bufio.Reader that coder/websocket reads
// frame headers through, over a TCP connection: enough for a header and
// its mask key, so that a small frame costs few calls.
const frontBuffer = 64

// readLoop reads and delivers messages until the read fails, or until the
// socket parks (it then reports true). Once a close is decided it reads on
// and drops what it reads: the peer's close frame, or the close timeout
// closing the connection, ends the read. After a close it decided itself
// (a bad message, the rate limit, the Func's error), it reads on only once
// the close frame is out: coder/websocket, reading what follows, could
// answer it with a close frame of its own first.
func (s *Socket) readLoop() (parked bool) {
	e := s.ep
	ir := s.gate.reader
	for {
		if ir != nil {
			ir.atBoundary()
		}
		msg, bp, fc, binary, r, err := s.nextMessage()
		if err != nil {
			if errors.Is(err, errPark) {
				return true
			}
			s.readFailed(err)
			if r != nil && errors.Is(err, ErrMessageTooBig) {
				// Read past the rest of the message, to the peer's close.
				s.out.awaitCloseFrame()
				if _, err := io.Copy(io.Discard, r); err == nil {
					continue
				}
			}
			return false
		}
		switch {
		case s.out.decided():
			// A close is under way; the peer's close frame ends the loop.
			e.putReadBuf(bp)
			continue
		case !binary && !utf8.Valid(msg):
			e.putReadBuf(bp)
			s.fail(invalidUTF8, ErrInvalidUTF8)
			s.out.awaitCloseFrame()
			continue
		}
		if s.limiter != nil && !s.withinRate(len(msg)) {
			e.putReadBuf(bp)
			s.out.awaitCloseFrame() // if it closed
			continue
		}
		switch {
		case fc != nil:
		case e.cfg.lentData:
			fc = s.lentEvent(msg)
		default:
			fc = s.messageEvent(msg)
			e.putReadBuf(bp)
		}
		fc.Params.IsBinary = binary
		s.traffic.messagesIn.Add(1)
		s.traffic.bytesIn.Add(uint64(len(msg)))
		if e.cfg.idleTimeout > 0 {
			s.touch()
		}
		if e.cfg.readIdle > 0 {
			s.lastRead.Store(int64(time.Since(s.born)))
		}
		s.out.beginEvent()
		ok := s.call(fc) // an error decides the close
		written := s.out.endEvent()
		if e.cfg.lentData {
			*fc = FunctionContext{}
			if written {
				e.putReadBuf(bp)
			} // else a writer may still send Data: the buffer is left to the GC
		}
		if !ok {
			s.out.awaitCloseFrame()
		}
	}
}

// nextMessage reads the next message, msg, into a pooled buffer, bp, or
// into fc, a message event made for it, whose Data it is. It reads a
// message that comes as one plain frame itself (see peekFrame), and any
// other with coder/websocket's reader, which it also returns, for the
// caller to read past the rest of a message over the read limit.
func (s *Socket) nextMessage() (msg []byte, bp *[]byte, fc *FunctionContext, binary bool, r io.Reader, err error) {
	e := s.ep
	front := s.gate.front
	n, key, bin, ok, err := peekFrame(front, e.cfg.readLimit)
	switch {
	case err != nil:
		return nil, nil, nil, false, nil, err
	case !ok:
	case n > readChunk && n > s.gate.buffered():
		// The header alone does not get n bytes of memory: what the
		// payload takes grows as it arrives.
		bp, err := e.readPayload(front, n)
		if err != nil {
			return nil, nil, nil, false, nil, err
		}
		unmask(*bp, key)
		return *bp, bp, nil, bin, nil, nil
	default:
		if e.cfg.lentData {
			bp = e.readBuf(n)
			msg = *bp
		} else {
			fc = s.newMessageEvent(n)
			msg = fc.Params.Data
		}
		if _, err := io.ReadFull(front, msg); err != nil {
			e.putReadBuf(bp)
			return nil, nil, nil, false, nil, err
		}
		unmask(msg, key)
		return msg, bp, fc, bin, nil, nil
	}
	// A context that is never done: coder/websocket allocates per frame for
	// one that can be. Closing the connection is what stops a read.
	typ, r, err := s.conn.Reader(context.Background())
	if err != nil {
		return nil, nil, nil, false, nil, err
	}
	if ir := s.gate.reader; ir != nil {
		ir.messageBegun()
	}
	bp, err = e.readMessage(r)
	if err != nil {
		return nil, nil, nil, false, r, err
	}
	return *bp, bp, nil, typ == websocket.MessageBinary, r, nil
}

// readBuf returns a pooled buffer holding n bytes.
func (e *Endpoint) readBuf(n int) *[]byte {
	bp, _ := e.readBufs.Get().(*[]byte)
	if bp == nil {
		b := make([]byte, 0, max(n, readChunk))
		bp = &b
	}
	if cap(*bp) < n {
		*bp = make([]byte, n)
	}
	*bp = (*bp)[:n]
	return bp
}

// readPayload reads an n-byte payload into a pooled buffer that grows as
// the payload arrives.
func (e *Endpoint) readPayload(r io.Reader, n int) (*[]byte, error) {
	bp := e.readBuf(0)
	buf := *bp
	for len(buf) < n {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		m, err := r.Read(buf[len(buf):min(n, cap(buf))])
		buf = buf[:len(buf)+m]
		if err != nil {
			*bp = buf
			e.putReadBuf(bp)
			return nil, err
		}
	}
	*bp = buf
	return bp, nil
}

// readMessage reads one message whole into a pooled buffer, which the
// caller returns with putReadBuf, or fails with ErrMessageTooBig as soon
// as the message is over the read limit.
func (e *Endpoint) readMessage(r io.Reader) (*[]byte, error) {
	limit := e.cfg.readLimit
	bp := e.readBuf(0)
	buf := *bp
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
		if limit >= 0 && int64(len(buf)) > limit {
			// Over the limit, even if this read also ended the message.
			e.putReadBuf(bp)
			return nil, ErrMessageTooBig
		}
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
	if bp != nil && cap(*bp) <= 64<<10 {
		*bp = (*bp)[:0]
		e.readBufs.Put(bp)
	}
}

// readFailed decides the close after a failed read.
func (s *Socket) readFailed(err error) {
	if s.out.decided() {
		return // the close we decided is what ended the read
	}
	if ce := (websocket.CloseError{}); errors.As(err, &ce) {
		if !utf8.ValidString(ce.Reason) {
			// The gate has answered 1007.
			s.fail(invalidUTF8, ErrInvalidUTF8)
			return
		}
		s.out.decide(closeFor(CausePeer).with(int(ce.Code), ce.Reason))
		return
	}
	switch {
	case errors.Is(err, ErrMessageTooBig):
		s.fail(closeFor(CauseReadLimit), err)
	case isDropped(err):
		s.fail(closeFor(CauseAbnormal), err)
	default:
		// coder/websocket has sent 1002 where it could.
		s.fail(closeFor(CauseProtocol), fmt.Errorf("%w: %w", ErrProtocol, err))
	}
}

// fail closes as c says and fires the error event.
func (s *Socket) fail(c closeSpec, err error) {
	if s.out.decide(c) {
		s.call(s.event(MethodError, Params{Err: err}))
	}
}

func isDropped(err error) bool {
	var ne net.Error
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, net.ErrClosed) || errors.As(err, &ne)
}

// withinRate applies the rate limit to a message of n bytes and reports
// whether it may be delivered.
func (s *Socket) withinRate(n int) bool {
	rl := s.limiter
	if rl.allow(n) {
		rl.dropping = false
		return true
	}
	if s.ep.cfg.rateLimit.Policy == DropOverRate {
		s.ep.stats.rateDropped.Add(1)
		if !rl.dropping {
			rl.dropping = true
			s.call(s.event(MethodError, Params{Err: ErrRateLimited}))
		}
		return false
	}
	s.fail(closeFor(CausePolicy), ErrRateLimited)
	return false
}
