package wsconn

import (
	"syscall"
)

// A parked connection's control frames are served where its poller sees
// them: a pong is counted and a ping answered without the goroutine that
// reads the connection, which a parked connection does not have. Only
// what needs that goroutine (data, a close frame, anything invalid or
// cut short, the end of the stream) wakes it.

// parkedPeek is how many bytes ServeParked looks at per read: several
// control frames from a client (each at most 2+4+125 bytes).
const parkedPeek = 512

// ServeParked handles the control frames that have arrived on a parked
// connection, while nothing reads it (ReadMessage returned ErrPark and
// has not been called since), and reports whether it needs its reading
// goroutine after all: there is data, a close frame, a frame that is not
// a whole, valid control frame from a client, a ping whose pong could not
// be written without waiting, the end of the stream, or an error. The
// frames before the first such one are consumed; that one and what
// follows are left for ReadMessage. It reports false when everything
// that had arrived was consumed.
func (c *Conn) ServeParked() (wake bool) {
	if c.raw == nil || c.rd.ir == nil || c.rd.buffered() != 0 || c.rd.failed {
		return true
	}
	var buf [parkedPeek]byte
	for {
		n, err := c.recv(buf[:], syscall.MSG_PEEK)
		if err == syscall.EAGAIN {
			return false // a spurious wake-up
		}
		if err != nil || n == 0 {
			return true
		}
		done := c.serveControl(buf[:n])
		if done > 0 {
			if m, err := c.recv(buf[:done], 0); err != nil || m != done {
				return true // cannot be: the bytes were there
			}
		}
		if done < n {
			return true
		}
		if n < len(buf) {
			return false
		}
	}
}

// serveControl handles the whole control frames at the start of b, up to
// the first it cannot, and returns how many bytes it handled.
func (c *Conn) serveControl(b []byte) (done int) {
	for {
		f := b[done:]
		if len(f) < 2 {
			return done
		}
		op := f[0] & 0x0f
		if f[0]&0xf0 != 0x80 || (op != opPing && op != opPong) || f[1]&0x80 == 0 {
			return done // not FIN with no RSV bits, not a ping or pong, or not masked
		}
		size := int(f[1] & 0x7f)
		if size > 125 || len(f) < 2+4+size {
			return done
		}
		if op == opPong {
			c.pongs.Add(1)
		} else {
			var p [125]byte
			payload := p[:size]
			copy(payload, f[6:6+size])
			Unmask(payload, [4]byte(f[2:6]))
			if !c.tryAnswerPing(payload) {
				return done
			}
		}
		done += 2 + 4 + size
	}
}

// tryAnswerPing writes the pong for a ping, in Open and CloseSent, if it
// can without waiting for the writer or for room in the socket's send
// buffer; it reports false, having written nothing, if it cannot.
func (c *Conn) tryAnswerPing(payload []byte) bool {
	if !c.wmu.TryLock() {
		return false
	}
	if s := c.State(); s != Open && s != CloseSent {
		c.wmu.Unlock()
		return true // nothing to answer with
	}
	var b [2 + 125]byte
	b[0], b[1] = 0x80|opPong, byte(len(payload))
	n := copy(b[2:], payload)
	return c.tryWrite(b[:2+n])
}

// PingNow writes a ping with no payload if it can without waiting for the
// writer or for room in the socket's send buffer. It returns ErrWouldBlock,
// having written nothing, if it cannot (Ping then waits), and
// ErrCloseSent past Open.
func (c *Conn) PingNow() error {
	if c.raw == nil || !c.wmu.TryLock() {
		return ErrWouldBlock
	}
	if c.State() != Open {
		c.wmu.Unlock()
		return ErrCloseSent
	}
	if !c.tryWrite([]byte{0x80 | opPing, 0}) {
		return ErrWouldBlock
	}
	return nil
}

// tryWrite writes frame with one non-blocking write, c.wmu held, and
// releases c.wmu. It reports false if nothing could be written. Should
// only part of the frame go, a goroutine writes the rest, waiting as a
// write does, and releases c.wmu after it: the frame is never cut.
func (c *Conn) tryWrite(frame []byte) bool {
	var n int
	var err error
	werr := c.raw.Write(func(fd uintptr) bool {
		for {
			n, err = syscall.Write(int(fd), frame)
			if err != syscall.EINTR {
				return true
			}
		}
	})
	switch {
	case werr != nil || (err != nil && err != syscall.EAGAIN):
		c.wmu.Unlock()
		return true // the connection is failing: the reader will see it
	case n <= 0:
		c.wmu.Unlock()
		return false
	case n < len(frame):
		rest := append([]byte(nil), frame[n:]...)
		go func() {
			defer c.wmu.Unlock()
			c.setDeadline()
			c.nc.Write(rest)
		}()
	default:
		c.wmu.Unlock()
	}
	return true
}

// recv reads into b with flags, without waiting.
func (c *Conn) recv(b []byte, flags int) (n int, err error) {
	rerr := c.raw.Read(func(fd uintptr) bool {
		for {
			n, _, err = syscall.Recvfrom(int(fd), b, flags|syscall.MSG_DONTWAIT)
			if err != syscall.EINTR {
				return true
			}
		}
	})
	if rerr != nil {
		return 0, rerr
	}
	return n, err
}
