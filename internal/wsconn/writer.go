package wsconn

import (
	"net"
	"time"
)

// The writer is the Conn's one lock, wmu, and the deadline set under it
// before each write: a peer that stops reading fails the write after
// Config.WriteTimeout rather than holding the writer for ever.

// setDeadline arms the write deadline, WriteTimeout from now, unless the
// one armed is still at least half of it away: each write then has
// between half of WriteTimeout and all of it, and a busy connection
// rearms its deadline (a runtime timer) once per half WriteTimeout, not
// once per write. c.wmu is held.
func (c *Conn) setDeadline() {
	d := c.cfg.WriteTimeout
	if d <= 0 {
		return
	}
	now := time.Now()
	if c.wdl.Sub(now) >= d/2 {
		return
	}
	c.wdl = now.Add(d)
	c.nc.SetWriteDeadline(c.wdl)
}

// WriteData writes whole data frames (see AppendHeader) in one write,
// unless the connection is past Open (ErrCloseSent).
func (c *Conn) WriteData(frames []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.State() != Open {
		return 0, ErrCloseSent
	}
	c.setDeadline()
	return c.nc.Write(frames)
}

// WriteVec writes whole data frames held in several buffers with one
// writev, as WriteData does. The connection must be TCP.
func (c *Conn) WriteVec(v *net.Buffers) (int64, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.State() != Open {
		return 0, ErrCloseSent
	}
	c.setDeadline()
	return v.WriteTo(c.tcp)
}

// Ping writes a ping frame with payload (at most 125 bytes), unless the
// connection is past Open.
func (c *Conn) Ping(payload []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.State() != Open {
		return ErrCloseSent
	}
	return c.writeControl(opPing, payload)
}

// WriteClose writes our close frame with code and reason (1005: a close
// frame without a body), unless one has been written already
// (ErrCloseSent). After it, data frames are refused and pings still
// answered, until the peer's close frame; but if the reader has met a
// ProtocolError, the connection is being failed: WriteClose then ends the
// sending side of the TCP connection after the frame.
func (c *Conn) WriteClose(code int, reason string) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.State() != Open {
		return ErrCloseSent
	}
	// Noted before the write: a close frame cut short counts as sent.
	c.state.Store(uint32(CloseSent))
	err := c.writeClose(code, reason)
	if err == nil && c.failing.Load() {
		// Failing the connection: the peer sees our close frame, then the
		// end of the stream, and need not answer.
		if cw, ok := c.nc.(interface{ CloseWrite() error }); ok {
			cw.CloseWrite()
		}
	}
	return err
}

// writeClose writes a close frame. c.wmu is held.
func (c *Conn) writeClose(code int, reason string) error {
	var b [2 + 125]byte
	if code == 1005 {
		return c.writeControl(opClose, nil)
	}
	b[0], b[1] = byte(code>>8), byte(code)
	n := copy(b[2:], reason)
	return c.writeControl(opClose, b[:2+n])
}

// writeControl writes a control frame. c.wmu is held.
func (c *Conn) writeControl(op byte, payload []byte) error {
	var b [2 + 125]byte
	b[0], b[1] = 0x80|op, byte(len(payload))
	n := copy(b[2:], payload)
	c.setDeadline()
	_, err := c.nc.Write(b[:2+n])
	return err
}

// answerPing writes the pong for a ping the reader read, in Open and
// CloseSent.
func (c *Conn) answerPing(payload []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if s := c.State(); s != Open && s != CloseSent {
		return nil
	}
	return c.writeControl(opPong, payload)
}

// answerClose moves the state on for the peer's close frame, and echoes
// its code and reason if ours is not written yet (RFC 6455 §5.5.1).
func (c *Conn) answerClose(code int, reason string) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	switch c.State() {
	case Open:
		c.state.Store(uint32(CloseReceived))
		err := c.writeClose(code, reason)
		c.state.Store(uint32(Closed))
		return err
	case CloseSent:
		c.state.Store(uint32(Closed))
	}
	return nil
}
