package wsconn

import (
	"syscall"
)

// A parked connection's control frames are served where its poller sees
// them: a pong is counted and a ping answered without the goroutine that
// reads the connection, which a parked connection does not have. Only
// what needs that goroutine (data, a close frame, anything invalid or
// cut short, the end of the stream) wakes it.

// controlPeek is how many bytes Serve looks at per read: several control
// frames from a client (each at most 2+4+125 bytes).
const controlPeek = 512

// ControlIO writes and reads control frames without waiting, for
// connections that have no goroutine of their own: a parked connection's
// pings and pongs (Serve), and keepalive pings (Ping). It holds the
// buffers and callbacks that need, made once, so that a ping round or a
// poller's wake-up allocates nothing. One goroutine at a time may use it.
type ControlIO struct {
	buf   [controlPeek]byte
	frame [2 + 125]byte
	b     []byte // what read or write works on
	flags int    // read's recv flags
	n     int
	err   error
	read  func(fd uintptr) bool
	write func(fd uintptr) bool
}

// NewControlIO returns a ControlIO.
func NewControlIO() *ControlIO {
	cio := new(ControlIO)
	cio.read, cio.write = cio.readFD, cio.writeFD // made once: a method value allocates
	return cio
}

// Serve handles the control frames that have arrived on a parked
// connection, while nothing reads it (ReadMessage returned ErrPark and
// has not been called since), and reports whether it needs its reading
// goroutine after all: there is data, a close frame, a frame that is not
// a whole, valid control frame from a client, a ping whose pong could not
// be written without waiting, the end of the stream, or an error. The
// frames before the first such one are consumed; that one and what
// follows are left for ReadMessage. It reports false when everything
// that had arrived was consumed.
func (cio *ControlIO) Serve(c *Conn) (wake bool) {
	if c.raw == nil || !c.rd.parks || c.rd.br != nil || c.rd.failed {
		return true
	}
	for {
		n, err := cio.recv(c, cio.buf[:], syscall.MSG_PEEK)
		if err == syscall.EAGAIN {
			return false // a spurious wake-up
		}
		if err != nil || n == 0 {
			return true
		}
		done := cio.serveControl(c, n)
		if done > 0 {
			if m, err := cio.recv(c, cio.buf[:done], 0); err != nil || m != done {
				return true // cannot be: the bytes were there
			}
		}
		if done < n {
			return true
		}
		if n < len(cio.buf) {
			return false
		}
	}
}

// serveControl handles the whole control frames at the start of
// cio.buf[:n], up to the first it cannot, and returns how many bytes it
// handled.
func (cio *ControlIO) serveControl(c *Conn, n int) (done int) {
	for {
		f := cio.buf[done:n]
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
		} else if !cio.answerPing(c, f[2:6], f[6:6+size]) {
			return done
		}
		done += 2 + 4 + size
	}
}

// answerPing writes the pong for a ping whose payload is masked with key,
// in Open and CloseSent, if it can without waiting for the writer or for
// room in the socket's send buffer; it reports false, having written
// nothing, if it cannot.
func (cio *ControlIO) answerPing(c *Conn, key, masked []byte) bool {
	if !c.wmu.TryLock() {
		return false
	}
	if s := c.State(); s != Open && s != CloseSent {
		c.wmu.Unlock()
		return true // nothing to answer with
	}
	cio.frame[0], cio.frame[1] = 0x80|opPong, byte(len(masked))
	p := cio.frame[2 : 2+len(masked)]
	copy(p, masked)
	Unmask(p, [4]byte(key))
	return cio.tryWrite(c, cio.frame[:2+len(p)])
}

// Ping writes a ping with no payload to c if it can without waiting for
// the writer or for room in the socket's send buffer. It returns
// ErrWouldBlock, having written nothing, if it cannot (Conn.Ping then
// waits), and ErrCloseSent past Open.
func (cio *ControlIO) Ping(c *Conn) error {
	if c.raw == nil || !c.wmu.TryLock() {
		return ErrWouldBlock
	}
	if c.State() != Open {
		c.wmu.Unlock()
		return ErrCloseSent
	}
	cio.frame[0], cio.frame[1] = 0x80|opPing, 0
	if !cio.tryWrite(c, cio.frame[:2]) {
		return ErrWouldBlock
	}
	return nil
}

// tryWrite writes frame with one non-blocking write, c.wmu held, and
// releases c.wmu. It reports false if nothing could be written. Should
// only part of the frame go, a goroutine writes the rest, waiting as a
// write does, and releases c.wmu after it: the frame is never cut.
func (cio *ControlIO) tryWrite(c *Conn, frame []byte) bool {
	c.setDeadline() // an expired one would fail the write
	cio.b = frame
	werr := c.raw.Write(cio.write)
	n, err := cio.n, cio.err
	cio.b = nil
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
func (cio *ControlIO) recv(c *Conn, b []byte, flags int) (int, error) {
	cio.b, cio.flags = b, flags
	rerr := c.raw.Read(cio.read)
	cio.b = nil
	if rerr != nil {
		return 0, rerr
	}
	return cio.n, cio.err
}

func (cio *ControlIO) readFD(fd uintptr) bool {
	for {
		cio.n, _, cio.err = syscall.Recvfrom(int(fd), cio.b, cio.flags|syscall.MSG_DONTWAIT)
		if cio.err != syscall.EINTR {
			return true
		}
	}
}

func (cio *ControlIO) writeFD(fd uintptr) bool {
	for {
		cio.n, cio.err = syscall.Write(int(fd), cio.b)
		if cio.err != syscall.EINTR {
			return true
		}
	}
}
