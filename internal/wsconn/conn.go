package wsconn

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// State is where a connection stands in the closing handshake.
type State uint32

const (
	// Open: data flows both ways.
	Open State = iota
	// CloseSent: our close frame is written; we wait for the peer's, and
	// still answer its pings.
	CloseSent
	// CloseReceived: the peer's close frame is read and ours is being
	// written in answer.
	CloseReceived
	// Closed: both close frames have passed, or the TCP connection is
	// closed. Nothing more is written.
	Closed
)

func (s State) String() string {
	switch s {
	case Open:
		return "open"
	case CloseSent:
		return "close sent"
	case CloseReceived:
		return "close received"
	default:
		return "closed"
	}
}

// ErrCloseSent refuses a frame that may not follow the close frames
// already written or read.
var ErrCloseSent = errors.New("wsconn: close frame already sent")

// ErrPark is returned by ReadMessage when the connection has been idle at
// a message boundary for Config.ParkAfter: nothing was consumed, and the
// caller may wait for the connection to become readable (see Conn.Raw)
// and call ReadMessage again.
var ErrPark = errors.New("wsconn: idle, park")

// ErrWouldBlock is returned by ControlIO.Ping when the ping could not be
// written without waiting: nothing was written.
var ErrWouldBlock = errors.New("wsconn: write would block")

// CloseError is the peer's close frame: ReadMessage returns it once the
// frame is read, and answered if it needed an answer.
type CloseError struct {
	Code   int // 1005 if the frame had no body
	Reason string
}

func (e *CloseError) Error() string {
	return fmt.Sprintf("wsconn: peer closed with %d %q", e.Code, e.Reason)
}

// ProtocolError is a violation of RFC 6455 or 7692 by the peer, or a
// message over the read limit: the connection must be failed with Code
// (1002, 1007 or 1009). ReadMessage writes no close frame for it; the
// caller does, with WriteClose, which then also ends the sending side of
// the TCP connection (RFC 6455 §7.1.7: a failed connection waits for no
// close frame, which may never come or may hide in a bogus frame's
// payload). Reads after it answer nothing and skip every frame until the
// peer's close frame or the end of the connection, or read the connection
// to its end where the framing can no longer be trusted.
type ProtocolError struct {
	Code   int
	Reason string // for the close frame, at most 123 bytes
}

func (e *ProtocolError) Error() string {
	return fmt.Sprintf("wsconn: %d %s", e.Code, e.Reason)
}

func protocolErr(reason string) *ProtocolError { return &ProtocolError{1002, reason} }

// The ProtocolErrors that are always the same; nothing changes them.
var (
	errInvalidUTF8 = &ProtocolError{1007, "invalid UTF-8"}
	errTooBig      = &ProtocolError{1009, "message too big"}
)

// Config is what a Conn is made with.
type Config struct {
	// ReadLimit is the largest message, in bytes, after inflating; a
	// larger one is a 1009 ProtocolError. Negative means no limit.
	ReadLimit int64
	// WriteTimeout bounds every write: a write fails once it has waited
	// between half of it and all of it. Zero means no bound.
	WriteTimeout time.Duration
	// ParkAfter, if positive, makes ReadMessage return ErrPark once it has
	// waited that long (up to twice that) at a message boundary with
	// nothing read; see ErrPark. Only over TCP on Unix.
	ParkAfter time.Duration
}

// Conn is one upgraded WebSocket connection, server side.
type Conn struct {
	nc   net.Conn
	tcp  *net.TCPConn // nc, if TCP
	raw  syscall.RawConn
	cfg  Config
	sub  string // the negotiated subprotocol
	defl bool   // permessage-deflate was negotiated

	state atomic.Uint32 // a State; changed under wmu (Close excepted)
	wmu   sync.Mutex    // held for each write
	wdl   time.Time     // the write deadline armed; guarded by wmu

	pongs   atomic.Uint64 // pongs read
	failing atomic.Bool   // the reader met a ProtocolError: the connection is being failed

	rd reader // the reading goroutine's
}

// Pongs returns how many pongs have been read: a keepalive compares it
// before and after a ping.
func (c *Conn) Pongs() uint64 { return c.pongs.Load() }

// Subprotocol returns the negotiated subprotocol, or "".
func (c *Conn) Subprotocol() string { return c.sub }

// Deflate reports whether permessage-deflate was negotiated: the peer may
// send compressed messages, and accepts them.
func (c *Conn) Deflate() bool { return c.defl }

// State returns the connection's state.
func (c *Conn) State() State { return State(c.state.Load()) }

// TCP reports whether the connection is TCP (writev is then worth it).
func (c *Conn) TCP() bool { return c.tcp != nil }

// Raw returns the TCP connection's raw connection, or nil: for waiting on
// it in an epoll set.
func (c *Conn) Raw() syscall.RawConn { return c.raw }

// Close closes the TCP connection at once. A write or read blocked on it
// fails.
func (c *Conn) Close() error {
	c.state.Store(uint32(Closed))
	return c.nc.Close()
}

// Buffered returns how many bytes have been read from the connection and
// not yet consumed.
func (c *Conn) Buffered() int { return c.rd.buffered() }

// newConn makes the Conn for a hijacked connection, given the bytes the
// peer sent behind its upgrade request.
func newConn(nc net.Conn, pending []byte, cfg Config, sub string, defl bool) *Conn {
	c := &Conn{nc: nc, cfg: cfg, sub: sub, defl: defl}
	c.tcp, _ = nc.(*net.TCPConn)
	if c.tcp != nil {
		c.raw, _ = c.tcp.SyscallConn()
	}
	c.rd.init(c, pending)
	return c
}

// prefixReader reads pending, then r.
type prefixReader struct {
	pending []byte
	r       io.Reader
}

func (p *prefixReader) Read(b []byte) (int, error) {
	if len(p.pending) > 0 {
		n := copy(b, p.pending)
		p.pending = p.pending[n:]
		if len(p.pending) == 0 {
			p.pending = nil
		}
		return n, nil
	}
	return p.r.Read(b)
}

// newBufReader is the bufio.Reader of a connection without an idle
// reader.
func newBufReader(r io.Reader) *bufio.Reader { return bufio.NewReaderSize(r, 4<<10) }
