package laf

import (
	"errors"
	"fmt"
	"time"

	"github.com/lafgo/laf/internal/wsconn"
)

// readChunk is the size of the largest payload laf gives memory before
// it arrives, and the smallest read buffer it pools.
const readChunk = 4 << 10

// readLoop reads and delivers messages until the read fails, or until the
// socket parks (it then reports true). Once a close is decided it reads on
// and drops what it reads, inflating nothing: the peer's close frame, or
// the close timeout closing the connection, ends the read. After a close
// it decided itself (a bad message, the rate limit, the Func's error), it
// reads on only once its close frame is out, so that the close frame the
// peer gets is the one laf decided, not the echo of the peer's own.
func (s *Socket) readLoop() (parked bool) {
	e := s.ep
	for {
		if s.out.decided() {
			s.conn.Discard()
		}
		msg, bp, fc, binary, err := s.nextMessage()
		if err != nil {
			if errors.Is(err, wsconn.ErrPark) {
				return true
			}
			s.readFailed(err)
			if _, ok := err.(*wsconn.ProtocolError); ok {
				// The reader skips what follows, to the peer's close frame.
				s.out.awaitCloseFrame()
				continue
			}
			return false
		}
		if s.out.decided() {
			// A close is under way; the peer's close frame ends the loop.
			e.putReadBuf(bp)
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

// nextMessage reads the next message, msg: into fc, a message event made
// for it, whose Data it is (a message that came as one small plain frame,
// without WithLentData), or else into bp, a pooled buffer (then fc is nil).
func (s *Socket) nextMessage() (msg []byte, bp *[]byte, fc *FunctionContext, binary bool, err error) {
	e := s.ep
	bp = e.readBuf()
	s.exactFC = nil
	msg, binary, err = s.conn.ReadMessage(bp, s.exact)
	if err != nil {
		e.putReadBuf(bp)
		return nil, nil, nil, false, err
	}
	if fc = s.exactFC; fc != nil {
		s.exactFC = nil
		e.putReadBuf(bp)
		return msg, nil, fc, binary, nil
	}
	return msg, bp, nil, binary, nil
}

// exactData is the reader's exact for a socket without WithLentData: the
// Data of a new message event, noted in exactFC.
func (s *Socket) exactData(n int) []byte {
	s.exactFC = s.newMessageEvent(n)
	return s.exactFC.Params.Data
}

// readBuf returns an empty pooled buffer.
func (e *Endpoint) readBuf() *[]byte {
	bp, _ := e.readBufs.Get().(*[]byte)
	if bp == nil {
		b := make([]byte, 0, readChunk)
		bp = &b
	}
	return bp
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
	var ce *wsconn.CloseError
	var pe *wsconn.ProtocolError
	switch {
	case errors.As(err, &ce):
		// The reader has answered it.
		s.out.decide(closeFor(CausePeer).with(ce.Code, ce.Reason))
	case errors.As(err, &pe):
		switch pe.Code {
		case 1009:
			s.fail(closeFor(CauseReadLimit), ErrMessageTooBig)
		case 1007:
			s.fail(invalidUTF8, ErrInvalidUTF8)
		default:
			s.fail(closeFor(CauseProtocol), fmt.Errorf("%w: %s", ErrProtocol, pe.Reason))
		}
	default:
		s.fail(closeFor(CauseAbnormal), err)
	}
}

// fail closes as c says and fires the error event.
func (s *Socket) fail(c closeSpec, err error) {
	if s.out.decide(c) {
		s.call(s.event(MethodError, Params{Err: err}))
	}
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
